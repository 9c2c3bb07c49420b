"""The training-loop benchmark: real iterations timed, a table, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tiny import PER_ITERATION, SUITE, TINY, tiny_config

from rltransfer.bench.loop import format_loop_table, time_loop
from rltransfer.cli import main


def test_time_loop_counts_decisions_and_moves(tmp_path: Path) -> None:
    row = time_loop(tiny_config(tmp_path), iterations=2, warmup=1)
    assert (row.device, row.threads, row.boards, row.decisions) == ("cpu", 1, 16, PER_ITERATION)
    assert row.collect_s > 0 and row.update_s > 0
    # every learner decision is a move, and most get a reply: between 1x and 2x (+ openings)
    assert row.decisions < row.moves <= 2 * row.decisions + row.boards
    assert row.loop_decisions_per_s < row.collect_decisions_per_s
    table = format_loop_table([row]).splitlines()
    assert table[0].split()[:3] == ["suite", "agent", "device"]
    assert table[2].split()[:6] == ["tiny", "ppo_small", "cpu", "1", "off", "16"]


def test_time_loop_rejects_bad_counts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="iterations >= 1"):
        time_loop(tiny_config(tmp_path), iterations=0)


def test_cli_bench_train(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE)
    args = ["bench-train", "--suite", str(suite), "--scale", "1,2", "--iterations", "1"]
    args += ["--quiet", "--json", str(tmp_path / "rows.json")]
    for item in TINY:
        args += ["--set", item]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "training-loop throughput" in out
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert [r["boards"] for r in rows] == [16, 32]
    assert [r["decisions"] for r in rows] == [PER_ITERATION, 2 * PER_ITERATION]
    assert [r["compile"] for r in rows] == ["off", "off"]  # the preset's, as --set left it
    assert main(["bench-train", "--agent", "nope", "--quiet"]) == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], ["off"]),
        (["--set", "train.compile=default"], ["default"]),  # --set alone is kept
        (["--set", "train.compile=default", "--compile", "off,default"], ["off", "default"]),
    ],
)
def test_bench_train_times_the_compile_modes_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str], expected: list[str]
) -> None:
    from rltransfer.bench import loop

    timed: list[str] = []

    def fake_time_loop(cfg: Any, iterations: int, warmup: int) -> loop.LoopRow:
        timed.append(cfg.train.compile)
        return loop.LoopRow("s", "a", "cpu", 1, 1.0, 16, 64, 1, 1.0, 1.0, 100.0)

    monkeypatch.setattr(loop, "time_loop", fake_time_loop)
    assert main(["bench-train", "--quiet", *flags]) == 0
    assert timed == expected
