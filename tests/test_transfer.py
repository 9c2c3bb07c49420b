"""Transfer: building the target network, freeze schedules, metrics, the experiment."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from tiny import TINY, tiny_config

from rltransfer.cli import main
from rltransfer.games import make
from rltransfer.learn.training import train
from rltransfer.net.policy import PolicyNet, TaskShape
from rltransfer.runs.checkpoint import load_weights
from rltransfer.runs.metrics import load_events, read_scalars
from rltransfer.specs.config import TransferSettings
from rltransfer.transfer import (
    TransferError,
    area,
    area_ratio,
    asymptotic_gain,
    jumpstart,
    time_to_threshold,
    time_to_threshold_ratio,
    transfer_net,
    trunk_frozen,
)
from rltransfer.transfer.experiment import reanalyse, run_transfer


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained run on tic-tac-toe and Othello 6x6."""
    tmp = tmp_path_factory.mktemp("source")
    return train(tiny_config(tmp, iterations=2, name="src"), tmp / "runs", quiet=True)


def _trunk(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in weights.items() if k.startswith("trunk.")}


# ------------------------------------------------------------------------ the network
def test_new_heads_are_fresh_and_the_trunk_is_copied(source: Path) -> None:
    game = make("othello", size=8)
    torch.manual_seed(7)
    net = transfer_net(source, "othello_size8", game, keep_heads=False)
    torch.manual_seed(7)
    scratch = PolicyNet({"othello_size8": TaskShape.of(game)}, net.cfg)
    src = load_weights(source / "checkpoints" / "latest")
    mine = net.state_dict()
    for k, v in _trunk(src).items():
        assert torch.equal(mine[k], v)
    for k, v in scratch.state_dict().items():
        if not k.startswith("trunk."):  # stems and heads: the seed's fresh draw, not the source's
            assert torch.equal(mine[k], v), k
    src_head = src["policy_heads.othello_size6.hidden.weight"]
    assert not torch.equal(mine["policy_heads.othello_size8.hidden.weight"], src_head)


def test_keep_heads_copies_the_same_games_stem_and_heads(source: Path) -> None:
    net = transfer_net(source, "othello_size8", make("othello", size=8), keep_heads=True)
    src = load_weights(source / "checkpoints" / "latest")
    for k, v in net.state_dict().items():
        src_key = k.replace("othello_size8", "othello_size6")
        assert torch.equal(v, src[src_key]), k


def test_keep_heads_needs_the_same_game(source: Path) -> None:
    with pytest.raises(TransferError, match=r"no connect_four stem and heads.*othello_size6"):
        transfer_net(source, "connect_four", make("connect_four"), keep_heads=True)


def test_transferred_policy_masks_the_target_games_moves(source: Path) -> None:
    game = make("othello", size=8)
    net = transfer_net(source, "othello", game, keep_heads=True)
    gen = torch.Generator().manual_seed(0)
    state = game.init(64, gen)
    for _ in range(10):
        mask = game.legal_mask(state)
        dist, _ = net.distribution("othello", game.observe(state), mask)
        assert dist.probs.shape == (64, 65)
        assert bool((dist.probs[~mask] == 0).all())
        state = game.step(state, game.random_action(state, gen))


# ------------------------------------------------------------------------- schedules
def test_schedules() -> None:
    assert [trunk_frozen("freeze", i, 2) for i in range(4)] == [True] * 4
    assert [trunk_frozen("finetune", i, 2) for i in range(4)] == [False] * 4
    assert [trunk_frozen("gradual", i, 2) for i in range(4)] == [True, True, False, False]


def _transfer_run(tmp: Path, source: Path, mode: str, iterations: int = 3) -> Path:
    cfg = tiny_config(tmp, iterations=iterations, name=mode)
    suite = cfg.suite
    one_game = type(suite)(name="target", games=(suite.game("othello_size6"),))
    settings = TransferSettings(source=str(source), mode=mode, unfreeze_after=2, keep_heads=True)
    from dataclasses import replace

    per_iteration = 8 * cfg.ppo.num_steps
    cfg = replace(cfg, suite=one_game, transfer=settings)
    cfg = replace(cfg, train=replace(cfg.train, total_steps=iterations * per_iteration))
    return train(cfg, tmp / "runs", quiet=True)


def test_freeze_keeps_the_trunk_bit_for_bit_and_trains_the_heads(
    tmp_path: Path, source: Path
) -> None:
    run = _transfer_run(tmp_path, source, "freeze")
    before = load_weights(source / "checkpoints" / "latest")
    after = load_weights(run / "checkpoints" / "latest")
    for k, v in _trunk(before).items():
        assert torch.equal(after[k], v), f"{k} changed under freeze"
    heads = [k for k in after if k.startswith(("policy_heads.", "value_heads.", "stems."))]
    changed = [k for k in heads if not torch.equal(after[k], before[k])]
    assert len(changed) >= len(heads) // 2  # the heads did learn
    assert [v for _, v in read_scalars(run)["charts/trunk_frozen"]] == [1.0, 1.0, 1.0]


def test_gradual_unfreezes_exactly_at_the_configured_iteration(
    tmp_path: Path, source: Path
) -> None:
    run = _transfer_run(tmp_path, source, "gradual", iterations=4)
    assert [v for _, v in read_scalars(run)["charts/trunk_frozen"]] == [1.0, 1.0, 0.0, 0.0]
    before = _trunk(load_weights(source / "checkpoints" / "latest"))
    after = load_weights(run / "checkpoints" / "latest")
    assert any(not torch.equal(after[k], v) for k, v in before.items())  # trained after unfreezing


# --------------------------------------------------------------------------- metrics
T = [(0, 0.5), (100, 0.8), (200, 0.9), (300, 0.9)]
S = [(0, 0.3), (100, 0.5), (200, 0.7), (300, 0.9)]


def test_metrics_on_hand_made_curves() -> None:
    assert jumpstart(T, S) == pytest.approx(0.2)
    assert asymptotic_gain(T, S) == pytest.approx(0.0)
    assert time_to_threshold(T, 0.8) == 100 and time_to_threshold(S, 0.8) == 300
    assert time_to_threshold_ratio(T, S, 0.8) == pytest.approx(1 / 3)
    assert area(T) == pytest.approx(100 * (0.65 + 0.85 + 0.9))  # 240
    assert area(S) == pytest.approx(100 * (0.4 + 0.6 + 0.8))  # 180
    assert area_ratio(T, S) == pytest.approx((240 - 180) / 180)
    assert time_to_threshold_ratio(T, S, 0.95) is None  # not reached: reported, not invented
    assert time_to_threshold_ratio([(0, 0.9)], [(0, 0.1), (50, 0.9)], 0.9) == 0.0
    assert area_ratio(T, [(0, 0.0), (300, 0.0)]) is None
    with pytest.raises(ValueError, match="sorted"):
        area([(100, 0.1), (0, 0.2)])


# ------------------------------------------------------------------------ experiment
def test_transfer_experiment_writes_report_and_tensorboard(tmp_path: Path, source: Path) -> None:
    settings = TransferSettings(mode="gradual", unfreeze_after=1, keep_heads=True, seeds=2)
    root = run_transfer(
        source,
        "othello:size=8",
        settings,
        steps=3 * 8 * 4,
        num_envs=8,
        name="exp",
        run_dir=tmp_path / "runs",
        overrides=TINY,
        device="cpu",
        quiet=True,
    )
    assert {p.name for p in root.iterdir() if p.is_dir()} == {
        "transfer_seed0",
        "scratch_seed0",
        "transfer_seed1",
        "scratch_seed1",
    }
    report = json.loads((root / "transfer.json").read_text())
    assert set(report["metrics"]) == {
        "jumpstart",
        "asymptotic_gain",
        "time_to_threshold_ratio",
        "area_ratio",
        "few_shot_gain",
    }
    assert report["metrics"]["jumpstart"]["seeds"] == 2
    curve = report["curves"]["transfer"][0]
    assert curve[0][0] == 0 and len(curve) == 4  # zero-shot point, then every iteration
    js = report["metrics"]["jumpstart"]["per_seed"]
    t0 = [c[0][1] for c in report["curves"]["transfer"]]
    s0 = [c[0][1] for c in report["curves"]["scratch"]]
    assert js == pytest.approx([a - b for a, b in zip(t0, s0, strict=True)])
    text = (root / "transfer_report.md").read_text()
    assert "| jumpstart |" in text and "Taylor & Stone" in text
    assert (root / "transfer_curves.png").stat().st_size > 1000
    events = load_events(root)
    assert "custom_scalars__config__" in events.Tags()["tensors"]
    arm = read_scalars(root / "transfer_seed0")
    assert "games/othello_size8/score_vs_random" in arm
    assert math.isfinite(report["final_score"]["scratch"]["mean"])

    # the same runs scored against greedy: no training, a second report beside the first
    md = reanalyse(root, opponent="greedy")
    greedy = json.loads((root / "transfer_greedy.json").read_text())
    assert md.name == "transfer_greedy_report.md" and "score against greedy" in md.read_text()
    history = json.loads((root / "scratch_seed1" / "eval.json").read_text())["history"]
    assert greedy["curves"]["scratch"][1] == [
        [h["global_step"], h["othello_size8"]["greedy"]] for h in history
    ]
    assert json.loads((root / "transfer.json").read_text()) == report  # the original is kept

    # another mode against the same scratch arm, without training it again
    frozen = TransferSettings(mode="freeze", keep_heads=True, seeds=2)
    again = run_transfer(
        source, "othello:size=8", frozen, steps=3 * 8 * 4, num_envs=8, name="exp_freeze",
        run_dir=tmp_path / "runs", overrides=TINY, device="cpu", quiet=True, scratch_from=root,
    )  # fmt: skip
    assert {p.name for p in again.iterdir() if p.is_dir()} == {"transfer_seed0", "transfer_seed1"}
    reused = json.loads((again / "transfer.json").read_text())
    assert reused["curves"]["scratch"] == report["curves"]["scratch"]
    assert reused["settings"]["mode"] == "freeze"
    reanalyse(again)  # same opponent: rewrites transfer.json, keeping where scratch came from
    reanalyse(again, opponent="greedy")  # reads the reused scratch arm from its own folder
    greedy_again = json.loads((again / "transfer_greedy.json").read_text())
    assert greedy_again["curves"]["scratch"] == greedy["curves"]["scratch"]


def test_cli_transfer_errors(
    tmp_path: Path, source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["transfer", "--from", str(source), "--to", "connect_four", "--keep-heads"]
    args += ["--steps", "32", "--num-envs", "8", "--run-dir", str(tmp_path), "--quiet"]
    assert main([*args, "--set", "net.channels=8"]) == 2
    assert "no connect_four stem and heads" in capsys.readouterr().err
    assert main(["transfer", "--from", str(tmp_path / "nope"), "--to", "hex"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["transfer", "--from", str(source), "--to", "chess"]) == 2
    assert "unknown game 'chess'" in capsys.readouterr().err


def test_a_crossing_needs_consecutive_evaluations_and_few_shot_reads_the_budget() -> None:
    from rltransfer.transfer.metrics import few_shot

    curve = [(0, 0.1), (10, 0.9), (20, 0.2), (30, 0.8), (40, 0.85), (50, 0.3)]
    assert time_to_threshold(curve, 0.8) == 10  # one noisy point counts with consecutive=1
    assert time_to_threshold(curve, 0.8, consecutive=2) == 30
    assert time_to_threshold(curve, 0.8, consecutive=3) is None  # never: a failure
    scratch = [(0, 0.0), (10, 0.85), (20, 0.9), (30, 0.9)]
    assert time_to_threshold_ratio(curve, scratch, 0.8, consecutive=2) == 3.0
    assert few_shot(curve, 0.05) == 0.9  # 5% of 50 steps: the first point at or past 2.5
    assert few_shot(curve, 0.0) == 0.1 and few_shot(curve, 1.0) == 0.3


def test_a_seed_whose_transfer_never_crosses_is_a_failure_not_dropped() -> None:
    from rltransfer.specs.config import TransferSettings
    from rltransfer.transfer.experiment import transfer_report

    scratch = [(0, 0.0), (10, 0.9), (20, 0.9)]
    crossing = [(0, 0.9), (10, 0.9), (20, 0.9)]
    never = [(0, 0.1), (10, 0.1), (20, 0.2)]
    curves = {"transfer": [crossing, never], "scratch": [scratch, scratch]}
    report = transfer_report(curves, TransferSettings(seeds=2, threshold=0.5), "ttt", "src")
    ratio = report["metrics"]["time_to_threshold_ratio"]
    assert ratio["per_seed"] == [0.0, math.inf] and ratio["failures"] == 1
    assert ratio["mean"] == math.inf  # not the mean of the one seed that crossed
    no_yardstick = {"transfer": [crossing], "scratch": [never]}
    report = transfer_report(no_yardstick, TransferSettings(seeds=1, threshold=0.5), "ttt", "s")
    assert report["metrics"]["time_to_threshold_ratio"]["per_seed"] == [None]


def test_metrics_against_an_opponent_the_arms_do_not_play_are_refused_up_front(
    tmp_path: Path, source: Path
) -> None:
    from rltransfer.specs.config import ConfigError, TransferSettings

    with pytest.raises(ConfigError, match="which the arms do not evaluate against"):
        run_transfer(
            source, "tic_tac_toe", TransferSettings(opponent="greedy", seeds=1), steps=64,
            num_envs=8, name="x", run_dir=tmp_path, device="cpu", quiet=True,
            overrides=[*TINY, 'train.eval_opponents=["random"]'],
        )  # fmt: skip
    assert not (tmp_path / "x").exists()
