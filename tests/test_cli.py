"""The command line: listing, benchmark table, and clean errors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rltransfer.cli import build_parser, main
from rltransfer.games import available_games


def _commands() -> list[str]:
    """Every subcommand of the parser (a new one is tested without editing this file)."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


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


def test_games_lists_each_option_as_the_game_declares_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["games"]) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    othello = "othello                    8x8 board, 65 actions, 3 planes"
    assert f"{othello} (own, opponent, black_to_move)" in lines
    assert (
        "size           int, default 8, one of 6, 8: board side (6x6 or the standard 8x8)" in lines
    )
    assert "size           int, default 9, 7..19: board side (size x size)" in lines  # gomoku
    connect_four = "connect_four               6x7 board, 42 actions, 2 planes"
    assert f"{connect_four} (own, opponent); no options" in lines
    assert "board_size     int, default 19, 2..25: board side" in lines  # pettingzoo:go_v5
    assert "pettingzoo:chess_v6        planes (unknown); no options" in lines
    assert any(
        line.startswith("illegal_action str, default 'lose', one of 'lose'") for line in lines
    )
    assert not any("(no options)" in line or "(6, 8)" in line for line in lines)


def test_bench_names_the_comparisons_it_skipped(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyspiel", None)  # imports fail as if not installed
    monkeypatch.setitem(sys.modules, "pettingzoo.classic", None)
    args = ["bench", "--games", "tic_tac_toe", "--batch", "8", "--device", "cpu", "--quiet"]
    assert main([*args, "--seconds", "0.01"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == (
        'skipped columns: x PettingZoo (no module pettingzoo.classic; pip install "rltransfer'
        '[outside]"); x OpenSpiel (no module pyspiel; pip install open_spiel)'
    )
    assert not any("1-board loop" in line for line in out)
    assert main([*args, "--seconds", "0.01", "--no-reference"]) == 0  # asked for: no note
    assert "skipped" not in capsys.readouterr().out


#: What each subcommand needs before an unknown argument is the only mistake left.
REQUIRED = {
    "eval": ["RUN"], "report": ["EXP"], "export": ["RUN", "--output", "p.onnx"], "play": ["RUN"],
    "ladder": ["--game", "g"],
}  # fmt: skip


@pytest.mark.parametrize(
    "command",
    [name for name in _commands() if name != "baseline"] + ["baseline sb3"],
)
def test_an_unknown_argument_shows_the_subcommand_usage(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    words = command.split()
    required = REQUIRED.get(
        command, ["--game", "g", "--steps", "1"] if words[0] == "baseline" else []
    )
    with pytest.raises(SystemExit) as done:
        main([*words, *required, "--bogus"])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"usage: rltransfer {command} ")
    assert err[-1] == f"rltransfer {command}: error: unrecognized arguments: --bogus"


def test_unknown_game_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--games", "chess", "--device", "cpu"]) == 2
    assert "rltransfer bench: error: unknown game 'chess'" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rltransfer", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith("rltransfer ")
