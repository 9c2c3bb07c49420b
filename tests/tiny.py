"""A tiny suite and config for tests that train (seconds, not minutes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rltransfer.config import TrainConfig, make_train_config

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
