"""A tiny suite and config for tests that train (seconds, not minutes)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from rltransfer.learn import training
from rltransfer.learn.training import TrainingInterrupted, train
from rltransfer.specs.config import TrainConfig, make_train_config

SUITE = """
name = "tiny"
[[games]]
id = "tic_tac_toe"
num_envs = 8
[[games]]
id = "othello"
options = { size = 6 }
num_envs = 8
"""
TINY = [
    "net.channels=8",
    "net.blocks=1",
    "net.groups=2",
    "ppo.num_steps=4",
    "ppo.num_minibatches=2",
    "train.eval_games=8",
    "train.final_eval_games=8",
    "train.eval_interval=1",
    "train.checkpoint_interval=1",
    "selfplay.snapshot_interval=1",
]
PER_ITERATION = 16 * 4


def tiny_config(
    tmp_path: Path,
    iterations: int = 3,
    name: str = "run",
    overrides: tuple[str, ...] = (),
    device: str = "cpu",
    **extra: Any,
) -> TrainConfig:
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE)
    return make_train_config(
        suite=str(suite),
        agent="ppo_small",
        overrides=[*TINY, *overrides],
        name=name,
        total_steps=iterations * PER_ITERATION,
        device=device,
        **extra,
    )


def train_interrupted(
    cfg: TrainConfig,
    run_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    at: int = 2,
    signum: int = signal.SIGINT,
    update: str = "ppo_update",
) -> Path:
    """``train(cfg)`` with a Ctrl-C (SIGINT; or ``signum``, e.g. SIGTERM) in the middle of
    iteration ``at``'s update; the run stops after that iteration, as a user's Ctrl-C or a
    scheduler's SIGTERM stops it."""
    real_update = getattr(training, update)  # ppo_update, or az_update
    calls = {"n": 0}

    def interrupting(*args: Any, **kwargs: Any) -> dict[str, float]:
        calls["n"] += 1
        if calls["n"] == at:
            signal.raise_signal(signum)
        return real_update(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(f"rltransfer.learn.training.{update}", interrupting)
        with pytest.raises(TrainingInterrupted) as stopped:
            train(cfg, run_dir, quiet=True)
    assert stopped.value.exit_code == 128 + signum and "--resume" in str(stopped.value)
    return stopped.value.path
