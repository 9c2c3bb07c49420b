"""The command line: listing, benchmark table, and clean errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rltransfer.cli import main
from rltransfer.games import available_games


def test_games_lists_every_game(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["games"]) == 0
    out = capsys.readouterr().out
    for game_id in available_games():
        assert game_id in out


def test_bench_prints_table_with_references(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_json = tmp_path / "bench.json"
    args = ["bench", "--games", "connect_four", "--batch", "64,128", "--device", "cpu"]
    assert main([*args, "--seconds", "0.05", "--quiet", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "pettingzoo (1-board loop)" in out and "openspiel (1-board loop)" in out
    rows = json.loads(out_json.read_text())
    ours = [r for r in rows if r["impl"] == "rltransfer"]
    assert [r["batch"] for r in ours] == [64, 128]
    assert all(
        r["steps_per_s"] > 0 and set(r["reference"]) == {"pettingzoo", "openspiel"} for r in ours
    )


def test_unknown_game_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--games", "chess", "--device", "cpu"]) == 2
    assert "unknown game 'chess'" in capsys.readouterr().out


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rltransfer", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith("rltransfer ")
