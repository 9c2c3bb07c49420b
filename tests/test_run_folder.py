"""Run folders: names that cannot escape, --overwrite that loses nothing, one writer at a
time, configs that always read back, and no code from data files."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from tiny import SUITE, tiny_config

from rltransfer.cli import main
from rltransfer.learn.training import resume, train
from rltransfer.runs.folder import RunBusyError, RunLock, claim_run, open_run
from rltransfer.specs.config import ConfigError, load_run_config, load_suite


def _tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its content's hash (to prove nothing changed)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A finished one-iteration run at tmp/runs/victim."""
    return train(tiny_config(tmp_path, iterations=1, name="victim"), tmp_path / "runs", quiet=True)


def _cli_train(tmp_path: Path, *args: str) -> int:
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE)
    tiny = ["--set", "net.channels=8", "--set", "net.blocks=1", "--set", "net.groups=2"]
    tiny += ["--set", "ppo.num_steps=4", "--set", "ppo.num_minibatches=2"]
    tiny += ["--set", "train.eval_games=8", "--set", "train.final_eval_games=8"]
    base = ["train", "--suite", str(suite), "--run-dir", str(tmp_path / "runs"), "--quiet"]
    return main([*base, "--steps", "64", *tiny, *args])


@pytest.mark.parametrize("name", ["../../precious", ".", "..", "a/b", "/abs/x", "x\ny", "a" * 300])
def test_a_name_that_is_not_one_folder_name_is_refused_and_deletes_nothing(
    tmp_path: Path, victim: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    before = _tree(tmp_path)
    assert _cli_train(tmp_path, "--name", name, "--overwrite") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a run name is one folder name" in err[0]
    assert _tree(tmp_path) == before


def test_a_symlinked_run_folder_is_not_followed_out_of_run_dir(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "link").symlink_to(outside)
    with pytest.raises(ConfigError, match="symlink or lies outside"):
        train(tiny_config(tmp_path, iterations=1, name="link"), tmp_path / "runs", overwrite=True)
    assert (outside / "keep.txt").read_text() == "keep"


@pytest.mark.parametrize(
    "bad",
    [
        ["--device", "cuda"],  # checked when the session is built (no CUDA in CI)
        ["--set", "ppo.num_minibatches=100000"],  # larger than a game's batch
        ["--set", "train.eval_interval=0"],
        ["--device", "tpu"],
    ],
)
def test_overwrite_with_a_config_that_fails_late_keeps_the_old_run(
    tmp_path: Path, victim: Path, bad: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    if bad[0] == "--device" and bad[1] == "cuda":
        pytest.importorskip("torch").cuda.is_available() and pytest.skip("this machine has CUDA")
    before = _tree(victim)
    assert _cli_train(tmp_path, "--name", "victim", "--overwrite", *bad) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert _tree(victim) == before


def test_overwrite_that_crashes_before_its_first_checkpoint_puts_the_old_run_back(
    tmp_path: Path, victim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _tree(victim)

    def crash(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("rltransfer.learn.training.run_iteration", crash)
    with pytest.raises(RuntimeError, match="boom"):
        train(tiny_config(tmp_path, name="victim"), tmp_path / "runs", overwrite=True, quiet=True)
    assert _tree(victim) == before
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["victim"]


def test_overwrite_replaces_the_run_once_the_new_one_has_checkpointed(
    tmp_path: Path, victim: Path
) -> None:
    (victim / "old_file.txt").write_text("from the old run")
    path = train(
        tiny_config(tmp_path, iterations=2, name="victim"),
        tmp_path / "runs",
        overwrite=True,
        quiet=True,
    )
    assert not (path / "old_file.txt").exists()
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["victim"]  # nothing set aside
    assert load_run_config(path / "config.toml").train.total_steps == 2 * 16 * 4


def test_an_interrupted_experiment_that_replaced_another_keeps_its_progress(
    tmp_path: Path,
) -> None:
    old = tmp_path / "runs" / "exp"
    (old / "transfer_seed0").mkdir(parents=True)
    (old / "transfer_seed0" / "eval.json").write_text("{}")
    with pytest.raises(KeyboardInterrupt), claim_run(tmp_path / "runs", "exp", True) as folder:
        arm = folder.path / "transfer_seed0" / "checkpoints" / "latest"
        arm.mkdir(parents=True)  # an arm saved a checkpoint, then Ctrl-C
        raise KeyboardInterrupt
    assert arm.is_dir() and [p.name for p in (tmp_path / "runs").iterdir()] == ["exp"]
    # a start stopped right after creating its folder (only the lock file) is no run yet
    with claim_run(tmp_path / "runs", "early", False):
        pass
    claim_run(tmp_path / "runs", "early", False).release()


def test_one_writer_per_run_folder(tmp_path: Path, victim: Path) -> None:
    held = RunLock(victim).acquire()  # another process training or resuming it
    try:
        with pytest.raises(RunBusyError, match=r"in use by another rltransfer process \(pid "):
            train(tiny_config(tmp_path, name="victim"), tmp_path / "runs", overwrite=True)
        with pytest.raises(RunBusyError):
            resume(victim, total_steps=10_000, quiet=True)
        with pytest.raises(RunBusyError):
            open_run(victim)
    finally:
        held.release()
    with open_run(victim):  # free again
        pass
    # two starts of one new name: the second finds the first's folder and lock
    first = claim_run(tmp_path / "runs", "fresh", overwrite=False)
    try:
        with pytest.raises(ConfigError):
            claim_run(tmp_path / "runs", "fresh", overwrite=False)
    finally:
        first.release()


def test_config_toml_reads_back_whatever_the_strings_hold(tmp_path: Path) -> None:
    description = 'line one\nline "two" with \\ and \t tab\n'
    suite = tmp_path / "odd.toml"
    games = SUITE.split("\n", 2)[2]
    # a multi-line literal string: backslashes and quotes stay as they are
    suite.write_text("description = '''\n" + description + "'''\n" + games)
    assert load_suite(suite).description == description
    cfg = tiny_config(tmp_path, iterations=1, name="odd")
    cfg = type(cfg)(**{**cfg.__dict__, "suite": load_suite(suite)})
    path = train(cfg, tmp_path / "runs", quiet=True)
    assert load_run_config(path / "config.toml").suite.description == description
    resume(path, total_steps=2 * 16 * 4, quiet=True)  # resumable: the config reads back


HOSTILE = """
[[games]]
id = "pettingzoo:subprocess.check_call"
options = {{ args = "touch {marker}", shell = true }}
"""


def test_a_hostile_game_id_in_a_suite_or_config_toml_never_runs(
    tmp_path: Path, victim: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    hostile = tmp_path / "hostile.toml"
    hostile.write_text(HOSTILE.format(marker=marker))
    assert main(["train", "--suite", str(hostile), "--run-dir", str(tmp_path / "runs")]) == 2
    config = (victim / "config.toml").read_text()
    (victim / "config.toml").write_text(
        config.replace('id = "tic_tac_toe"', 'id = "pettingzoo:subprocess.check_call"').replace(
            "[suite.games.options]", f'[suite.games.options]\nargs = "touch {marker}"\nshell = true'
        )
    )
    assert main(["train", "--resume", str(victim)]) == 2
    assert not marker.exists()
    assert "unknown PettingZoo env" in capsys.readouterr().err


def test_a_planted_lock_symlink_is_never_written_through(tmp_path: Path, victim: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("years of work")
    (victim / ".lock").unlink()
    (victim / ".lock").symlink_to(precious)  # in a run folder someone shared
    with pytest.raises(ConfigError, match="a symlink, not a lock file"):
        resume(victim, total_steps=10_000, quiet=True)
    with pytest.raises(ConfigError, match="a symlink, not a lock file"):
        train(tiny_config(tmp_path, name="victim"), tmp_path / "runs", overwrite=True)
    assert precious.read_text() == "years of work"


def test_overwrite_waits_for_the_runs_inside_an_experiment(tmp_path: Path) -> None:
    arm = tmp_path / "runs" / "exp" / "transfer_seed0"
    arm.mkdir(parents=True)
    (arm / "config.toml").write_text("")
    held = RunLock(arm).acquire()  # `train --resume runs/exp/transfer_seed0` is running
    try:
        with pytest.raises(RunBusyError):
            claim_run(tmp_path / "runs", "exp", overwrite=True)
    finally:
        held.release()
    assert (arm / "config.toml").is_file()
    claim_run(tmp_path / "runs", "exp", overwrite=True).release()  # free now: no lock leaked
