"""Every user mistake the drills found is one line naming what is wrong, a non-zero exit,
no traceback, and no run folder left behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tiny import SUITE

from rltransfer.cli import main


def _main(args: list[str]) -> int:
    """``main(args)``'s exit code, also for argparse's own errors (which exit)."""
    try:
        return main(args)
    except SystemExit as e:
        return int(e.code or 0)


def _suite(tmp_path: Path, text: str = SUITE) -> str:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return str(path)


TRAIN_MISTAKES = {
    "--threads 0": (["--threads", "0"], "expected an integer >= 1"),
    "--device tpu": (["--device", "tpu"], "unknown device 'tpu'"),
    "--device meta": (["--device", "meta"], "training runs on cpu, cuda"),
    "--steps 0": (["--steps", "0"], "train.total_steps must be an integer >= 1"),
    "--steps -5": (["--steps", "-5"], "train.total_steps must be an integer >= 1"),
    "net.blocks=-1": (["--set", "net.blocks=-1"], r"net.blocks must be an integer in \[0, 256\]"),
    "net.channels=0": (["--set", "net.channels=0"], r"net.channels must be an integer in \[1,"),
    "num_envs_scale=0": (["--set", "train.num_envs_scale=0"], "num_envs_scale must be a finite"),
    "pool_size=0": (["--set", "selfplay.pool_size=0"], "selfplay.pool_size must be an integer"),
    "lr=inf": (["--set", "ppo.learning_rate=inf"], "learning_rate must be finite and > 0"),
    "eval_interval=0": (["--set", "train.eval_interval=0"], "eval_interval must be an integer"),
    "checkpoint_interval=0": (["--set", "train.checkpoint_interval=0"], "checkpoint_interval"),
    "minibatches": (["--set", "ppo.num_minibatches=100000"], "larger than tic_tac_toe's batch"),
    "bool scale": (["--set", "train.eval_games=true"], "eval_games must be a number"),
}


@pytest.mark.parametrize("case", sorted(TRAIN_MISTAKES))
def test_train_mistakes_are_one_line_and_leave_no_run(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args, message = TRAIN_MISTAKES[case]
    runs = tmp_path / "runs"
    base = ["train", "--suite", _suite(tmp_path), "--run-dir", str(runs), "--name", "x"]
    assert _main([*base, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rltransfer train: error:"), err
    assert len(err) == 1 or err[0].startswith("usage:"), err  # argparse shows the usage first
    assert re.search(message, err[-1]), err[-1]
    assert not (runs / "x").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[games]]\nid = "tic_tac_toe"\nnum_envs = true\n', "num_envs must be a positive"),
        ('[[games]]\nid = "tic_tac_toe"\nname = "../../evil"\n', "game name '../../evil' is not"),
        ('[[games]]\nid = "hex"\noptions = { size = 7.0 }\nname = "h"\n', "size=7.0"),
        ('[[games]]\nid = "hex"\nweight = nan\n', "weight must be a number >= 0"),
    ],
)
def test_suite_mistakes_name_the_file_and_key(
    tmp_path: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = _suite(tmp_path, text)
    assert main(["train", "--suite", suite, "--run-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert suite in err and message in err and "\n" not in err


def test_a_binary_suite_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "binary.toml"
    path.write_bytes(bytes(range(256)))
    assert main(["train", "--suite", str(path)]) == 2
    assert "not a TOML text file (not UTF-8" in capsys.readouterr().err


def test_run_dir_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["train", "--suite", _suite(tmp_path), "--run-dir", str(afile)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "{tmp}/nowhere"], "not a finished transfer experiment"),
        (["eval", "{tmp}", "--threads", "0"], "expected an integer >= 1"),
        (["bench", "--threads", "0", "--device", "cpu"], "expected an integer >= 1"),
        (["bench-train", "--scale", "0"], "expected comma-separated numbers > 0"),
        (["transfer", "--from", "{tmp}", "--to", "tic_tac_toe", "--num-envs", "0"], "--num-envs"),
        (["transfer", "--to", "tic_tac_toe"], "give --from RUN and --to GAME"),
        (["baseline", "sb3", "--game", "tic_tac_toe", "--steps", "9", "--n-envs", "0"], "n_envs"),
    ],
)
def test_other_commands_mistakes(
    tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _main([a.format(tmp=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and not any("Traceback" in line for line in err)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny import tiny_config

    from rltransfer.learn.training import train

    tmp = tmp_path_factory.mktemp("eval")
    return train(tiny_config(tmp, iterations=1), tmp / "runs", quiet=True)


@pytest.mark.parametrize(
    ("opponent", "message"),
    [
        ("minimax", "unknown opponent 'minimax': not a player (greedy, perfect, random, mcts:S)"),
        ("{tmp}", "'{tmp}' is neither a player (greedy, perfect, random, mcts:S) nor a readable"),
    ],
)
def test_an_unknown_opponent_lists_the_valid_ones(
    tiny_run: Path,
    tmp_path: Path,
    opponent: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    played = []
    monkeypatch.setattr("rltransfer.play.evaluate.play_match", lambda *a, **k: played.append(a))
    opponents = ["random", opponent.format(tmp=tmp_path)]  # an existing folder, not a run
    assert main(["eval", str(tiny_run), "--opponent", *opponents, "--games", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rltransfer eval: error: ") and "\n" not in err
    assert message.format(tmp=tmp_path) in err
    assert not played  # refused before the first game against the valid opponent


def test_what_the_machine_refuses_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(30, "Read-only file system", str(tmp_path / "runs" / "x"))

    monkeypatch.setattr("rltransfer.learn.training.claim_run", read_only)
    base = ["train", "--suite", _suite(tmp_path), "--run-dir", str(tmp_path / "runs")]
    assert main([*base, "--name", "x", "--steps", "1", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"rltransfer train: error: Read-only file system: {tmp_path / 'runs' / 'x'}"

    def no_memory(*args: object, **kwargs: object) -> None:
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] can't allocate memory: 36 GB")

    monkeypatch.setattr("rltransfer.learn.training.build_session", no_memory)
    assert main([*base, "--name", "y", "--steps", "1", "--quiet"]) == 1
    assert "out of memory; use fewer boards" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "y").exists()
