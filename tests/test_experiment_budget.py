"""A transfer experiment plans its evaluations from the iterations its arms really run.

The budget rule (learner steps per iteration = every game's boards x boards scale x its
rollout length) has one home, ``Session.steps_per_iteration``; an experiment that
planned with boards x ``ppo.num_steps`` instead evaluated far fewer than the promised
``MIN_EVALUATIONS`` times whenever the agent scaled its boards (``ppo_resnet``)."""

from __future__ import annotations

import json
from pathlib import Path

from tiny import TINY, tiny_config

from rltransfer.learn.training import build_session, train
from rltransfer.specs.config import TransferSettings
from rltransfer.transfer.experiment import MIN_EVALUATIONS, run_transfer


def test_every_arm_is_evaluated_at_least_min_evaluations_times(tmp_path: Path) -> None:
    source = train(tiny_config(tmp_path, iterations=1), tmp_path / "runs", quiet=True)
    scaled = [*TINY, "train.num_envs_scale=3", "train.eval_games=2"]
    settings = TransferSettings(mode="finetune", seeds=1)
    per_iteration = 8 * 3 * 4  # boards x scale x rollout length
    iterations = MIN_EVALUATIONS  # boards x ppo.num_steps would plan 60: one point in 3
    root = run_transfer(
        source, "tic_tac_toe", settings, steps=iterations * per_iteration, num_envs=8,
        name="exp", run_dir=tmp_path / "runs", overrides=scaled, device="cpu", quiet=True,
    )  # fmt: skip
    for arm in ("transfer_seed0", "scratch_seed0"):
        history = json.loads((root / arm / "eval.json").read_text())["history"]
        steps = [h["global_step"] for h in history]
        assert steps[0] == 0 and steps[-1] == iterations * per_iteration
        assert len(steps) - 1 >= MIN_EVALUATIONS  # points after the zero-shot one
        config = (root / arm / "config.toml").read_text()
        assert f"eval_interval = {iterations // MIN_EVALUATIONS}\n" in config


def test_the_session_is_the_one_home_of_the_budget_rule(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, overrides=("train.num_envs_scale=3",))
    session = build_session(cfg, tmp_path / "unused")
    # tic-tac-toe and othello, 8 boards each, x3, 4 learner steps per board
    assert session.steps_per_iteration == 2 * 8 * 3 * 4
    assert not (tmp_path / "unused").exists()
