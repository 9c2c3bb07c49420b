"""Resuming: SIGTERM, safe overrides, extended budgets, runs stopped before their first
checkpoint, moving devices, and transfer experiments continued as a whole."""

from __future__ import annotations

import itertools
import json
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny import PER_ITERATION, TINY, tiny_config, train_interrupted

from rltransfer import multitask
from rltransfer.cli import main
from rltransfer.learn.training import TrainingInterrupted, resume, train
from rltransfer.runs.checkpoint import checkpoint_dir, load_weights
from rltransfer.runs.metrics import read_scalars
from rltransfer.specs.config import ConfigError, TransferSettings, load_run_config
from rltransfer.transfer.experiment import reanalyse, resume_transfer, run_transfer


def _same_weights(a: Path, b: Path) -> None:
    wa, wb = load_weights(checkpoint_dir(a)), load_weights(checkpoint_dir(b))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), f"{k} differs"


def _learning_rates(run: Path) -> list[float]:
    return [v for _, v in read_scalars(run)["charts/learning_rate"]]


def test_sigterm_saves_and_the_resume_is_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = train(tiny_config(tmp_path, name="whole"), tmp_path / "runs", quiet=True)
    cut = train_interrupted(
        tiny_config(tmp_path, name="cut"), tmp_path / "runs", monkeypatch, signum=signal.SIGTERM
    )
    assert json.loads((checkpoint_dir(cut) / "meta.json").read_text())["iteration"] == 2
    resume(cut, quiet=True)
    _same_weights(whole, cut)


def test_resume_applies_safe_overrides_and_records_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cut = train_interrupted(tiny_config(tmp_path, name="cut"), tmp_path / "runs", monkeypatch)
    resume(cut, overrides=["ppo.learning_rate=1e-4", "train.eval_games=4"], threads=1, quiet=True)
    cfg = load_run_config(cut / "config.toml")
    assert cfg.ppo.learning_rate == 1e-4 and cfg.train.eval_games == 4
    # a new rate restarts the decay from itself over the iterations left (one here)
    assert _learning_rates(cut)[-1] == pytest.approx(1e-4)


@pytest.mark.parametrize(
    "override", ["net.channels=16", "ppo.num_steps=8", "selfplay.self=0.9", "train.seed=3"]
)
def test_resume_refuses_what_the_saved_run_depends_on(tmp_path: Path, override: str) -> None:
    path = train(tiny_config(tmp_path, iterations=1), tmp_path / "runs", quiet=True)
    before = (path / "config.toml").read_text()
    with pytest.raises(ConfigError, match=rf"--resume cannot change {override.split('=')[0]}"):
        resume(path, overrides=[override], total_steps=4 * PER_ITERATION, quiet=True)
    assert (path / "config.toml").read_text() == before


def test_a_finished_run_extends_without_the_learning_rate_jumping_back_up(tmp_path: Path) -> None:
    path = train(tiny_config(tmp_path, iterations=2), tmp_path / "runs", quiet=True)
    with pytest.raises(ConfigError, match=r"already finished.*larger --steps"):
        resume(path, quiet=True)
    before = _learning_rates(path)
    resume(path, total_steps=5 * PER_ITERATION, quiet=True)
    assert json.loads((path / "eval.json").read_text())["global_step"] == 5 * PER_ITERATION
    rates = _learning_rates(path)
    assert rates[:2] == before and len(rates) == 5
    assert all(a >= b > 0 for a, b in itertools.pairwise(rates)), rates
    assert load_run_config(path / "config.toml").train.total_steps == 5 * PER_ITERATION


def test_a_run_stopped_during_its_final_evaluation_finishes_it_on_resume(tmp_path: Path) -> None:
    path = train(tiny_config(tmp_path, iterations=1), tmp_path / "runs", quiet=True)
    (path / "eval.json").unlink()  # killed after its last checkpoint, before eval.json
    resume(path, quiet=True)
    assert json.loads((path / "eval.json").read_text())["global_step"] == PER_ITERATION


def test_a_run_stopped_before_its_first_checkpoint_restarts_with_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def ctrl_c(*args: Any) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr("rltransfer.learn.training.evaluate_session", ctrl_c)  # during start-up
        with pytest.raises(KeyboardInterrupt):
            train(tiny_config(tmp_path, iterations=1), tmp_path / "runs", quiet=True)
    path = tmp_path / "runs" / "run"
    with pytest.raises(ConfigError, match=r"already exists; continue it with --resume"):
        train(tiny_config(tmp_path, iterations=1), tmp_path / "runs", quiet=True)
    resume(path, quiet=True)
    assert json.loads((path / "eval.json").read_text())["global_step"] == PER_ITERATION


def test_a_checkpoint_from_another_device_resumes_with_fresh_generators(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cut = train_interrupted(tiny_config(tmp_path, name="cut"), tmp_path / "runs", monkeypatch)
    trainer_path = checkpoint_dir(cut) / "trainer.pt"
    trainer = torch.load(trainer_path, weights_only=True)
    trainer["device"] = "cuda"  # as if saved on a GPU
    trainer["gen_collect"] = trainer["gen_update"] = torch.zeros(16, dtype=torch.uint8)
    torch.save(trainer, trainer_path)
    resume(cut, quiet=True)  # a CUDA generator state would not load into a CPU generator
    assert json.loads((cut / "eval.json").read_text())["global_step"] == 3 * PER_ITERATION


def test_cli_resume_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = train(tiny_config(tmp_path, iterations=1), tmp_path / "runs", quiet=True)
    assert main(["train", "--resume", str(path), "--name", "x"]) == 2
    assert "--name: not with --resume" in capsys.readouterr().err
    assert main(["train", "--resume", str(path), "--set", "net.blocks=3"]) == 2
    assert "--resume cannot change net.blocks" in capsys.readouterr().err
    more = ["--steps", str(2 * PER_ITERATION), "--threads", "1", "--quiet"]
    assert main(["train", "--resume", str(path), *more]) == 0


# -------------------------------------------------------------------- transfer experiments
@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("source")
    return train(tiny_config(tmp, iterations=1, name="src"), tmp / "runs", quiet=True)


def test_an_interrupted_transfer_experiment_continues_with_resume(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_update = multitask.ppo_update
    calls = {"n": 0}

    def interrupt_the_scratch_arm(*args: Any, **kwargs: Any) -> dict[str, float]:
        calls["n"] += 1
        if calls["n"] == 3:  # the transfer arm ran 2 iterations; this is scratch's first
            signal.raise_signal(signal.SIGINT)
        return real_update(*args, **kwargs)

    settings = TransferSettings(seeds=1)
    no_net = [o for o in TINY if not o.startswith("net.")]  # the preset's network: 32 channels
    with monkeypatch.context() as m:
        m.setattr("rltransfer.learn.training.ppo_update", interrupt_the_scratch_arm)
        with pytest.raises(TrainingInterrupted) as stopped:
            run_transfer(
                source, "tic_tac_toe", settings, steps=2 * 8 * 4, num_envs=8, name="exp",
                run_dir=tmp_path / "runs", overrides=no_net, device="cpu", quiet=True,
            )  # fmt: skip
    root = tmp_path / "runs" / "exp"
    assert stopped.value.path == root
    assert f"rltransfer transfer --resume {root}" in str(stopped.value)
    assert main(["report", str(root)]) == 2  # not finished: says how to finish it

    # the arm's config names the source's checkpoint folder itself (absolute: the arms all
    # start from these weights even if the source trains on) and records its real network
    arm = load_run_config(root / "transfer_seed0" / "config.toml")
    assert Path(arm.transfer.source).is_absolute() and arm.net.channels == 8
    assert Path(arm.transfer.source) == checkpoint_dir(source).resolve()
    finished = (root / "transfer_seed0" / "eval.json").stat().st_mtime_ns

    resume_transfer(root, quiet=True)
    assert (root / "transfer_seed0" / "eval.json").stat().st_mtime_ns == finished  # kept
    report = json.loads((root / "transfer.json").read_text())
    assert [len(c) for c in report["curves"]["scratch"]] == [3]  # steps 0, 32, 64
    assert (root / "transfer_report.md").is_file()

    # `report` replaces its files; a link planted in a shared folder is not written through
    precious = tmp_path / "precious.txt"
    precious.write_text("years of work")
    (root / "transfer_report.md").unlink()
    (root / "transfer_report.md").symlink_to(precious)
    reanalyse(root)
    assert precious.read_text() == "years of work"
    assert not (root / "transfer_report.md").is_symlink()


def test_an_experiment_evaluates_at_least_20_times_whatever_the_board_scale(
    source: Path, tmp_path: Path
) -> None:
    # 8 boards x scale 4 x 4 steps = 128 decisions an iteration: 20 iterations. Counting
    # boards without the scale planned 80 iterations (interval 4), so 5 evaluations.
    root = run_transfer(
        source, "tic_tac_toe", TransferSettings(seeds=1, baseline="none"), steps=20 * 128,
        num_envs=8, name="scaled", run_dir=tmp_path / "runs",
        overrides=[*TINY, "train.num_envs_scale=4"], device="cpu", quiet=True,
    )  # fmt: skip
    curve = json.loads((root / "transfer.json").read_text())["curves"]["transfer"][0]
    assert len(curve) == 21 and curve[-1][0] == 20 * 128


def test_an_extension_that_crashes_before_its_first_checkpoint_keeps_its_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = train(tiny_config(tmp_path, iterations=3), tmp_path / "runs", quiet=True)
    with monkeypatch.context() as m:
        m.setattr(
            "rltransfer.learn.training.run_iteration", lambda s: (_ for _ in ()).throw(OSError)
        )
        with pytest.raises(OSError):
            resume(path, total_steps=6 * PER_ITERATION, quiet=True)
    resume(path, quiet=True)  # config.toml already says 6 iterations: nothing "changes" now
    rates = _learning_rates(path)
    assert len(rates) == 6 and all(a >= b for a, b in itertools.pairwise(rates)), rates


def test_the_trained_weights_are_saved_before_eval_json_says_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rltransfer import training

    real = training._write_eval
    seen = []

    def check(s: Any, results: Any) -> None:
        seen.append(json.loads((checkpoint_dir(s.path) / "meta.json").read_text())["iteration"])
        real(s, results)

    monkeypatch.setattr(training, "_write_eval", check)
    cfg = tiny_config(tmp_path, iterations=3, overrides=("train.checkpoint_interval=2",))
    path = train(cfg, tmp_path / "runs", quiet=True)
    assert seen == [3]
    names = [p.name for p in (path / "checkpoints").iterdir() if p.name.startswith("ckpt")]
    assert sorted(names) == ["ckpt-0000002", "ckpt-0000003"]  # the last one saved once


def test_sigterm_during_the_final_evaluation_stops_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rltransfer import training

    real = training.evaluate_session

    def terminated_in_final(s: Any, num_games: int, seed: int) -> Any:
        if num_games == s.cfg.train.final_eval_games and seed >= 10**6:
            signal.raise_signal(signal.SIGTERM)
            raise AssertionError("the final evaluation went on after SIGTERM")
        return real(s, num_games, seed)

    with monkeypatch.context() as m:
        m.setattr(training, "evaluate_session", terminated_in_final)
        with pytest.raises(TrainingInterrupted) as stopped:
            train(tiny_config(tmp_path, iterations=2), tmp_path / "runs", quiet=True)
    assert stopped.value.exit_code == 143
    path = stopped.value.path
    assert not (path / "eval.json").exists()
    resume(path, quiet=True)  # runs the final evaluation, nothing else
    assert json.loads((path / "eval.json").read_text())["global_step"] == 2 * PER_ITERATION
