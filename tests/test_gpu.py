"""The CUDA paths: the same code as on the CPU, checked on a GPU (``-m gpu``).

Deselected by default (CI has no GPU); run on a machine with one as
``python -m pytest -m gpu``. Every test here also compares against, or reuses, the
CPU path that the default suite covers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny import PER_ITERATION, tiny_config, train_interrupted

import rltransfer
from rltransfer.bench.loop import time_loop
from rltransfer.games import make
from rltransfer.games.check import check_game
from rltransfer.learn.collector import GameCollector, SelfPlayConfig
from rltransfer.learn.training import resolve_device, resume
from rltransfer.net.policy import NetConfig, PolicyNet, TaskShape
from rltransfer.play.evaluate import play_match
from rltransfer.play.players import GreedyPlayer, PerfectTicTacToe, PolicyPlayer, RandomPlayer
from rltransfer.runs.checkpoint import load_weights

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

GAMES = [
    ("tic_tac_toe", {}),
    ("connect_four", {}),
    ("othello", {"size": 6}),
    ("othello", {"size": 8}),
    ("hex", {"size": 7}),
    ("hex", {"size": 11}),  # over 64 cells: the int8 cell-tensor path
    ("gomoku", {"size": 9}),
]
IDS = [f"{g}{o.get('size', '')}" for g, o in GAMES]


@pytest.mark.parametrize(("game_id", "options"), GAMES, ids=IDS)
def test_every_game_passes_check_game_on_cuda(game_id: str, options: dict[str, Any]) -> None:
    check_game(make(game_id, **options), num_boards=64, device="cuda")


@pytest.mark.parametrize(("game_id", "options"), GAMES, ids=IDS)
def test_cuda_plays_the_same_games_as_the_cpu(game_id: str, options: dict[str, Any]) -> None:
    """The same moves on both devices give the same boards, masks, rewards and ends."""
    game = make(game_id, **options)
    gen = torch.Generator().manual_seed(0)
    cpu, gpu = game.init(256), game.init(256, device="cuda")
    for _ in range(game.max_moves):
        assert torch.equal(game.legal_mask(cpu), game.legal_mask(gpu).cpu())
        assert torch.equal(game.observe(cpu), game.observe(gpu).cpu())
        action = game.random_action(cpu, gen)
        cpu, gpu = game.step(cpu, action), game.step(gpu, action.cuda())
        for name, t in cpu.tensors().items():
            assert torch.equal(t, gpu.tensors()[name].cpu()), name
        if bool(cpu.terminated.all()):
            break
    assert bool(cpu.terminated.all())


def test_random_actions_on_cuda_are_legal_and_cover_every_move() -> None:
    game = make("hex", size=7)
    state = game.init(4096, device="cuda")
    gen = torch.Generator(device="cuda").manual_seed(0)
    counts = torch.bincount(game.random_action(state, gen), minlength=game.num_actions)
    assert int(counts.min()) > 0 and int(counts.sum()) == 4096  # all 49 cells, none other


def test_scripted_players_on_cuda() -> None:
    game = make("tic_tac_toe")
    gen = torch.Generator(device="cuda").manual_seed(0)
    r = play_match(game, PerfectTicTacToe(), GreedyPlayer(), 400, gen, device="cuda")
    assert r.losses == 0 and r.wins > 0
    c4 = make("connect_four")
    r = play_match(c4, GreedyPlayer(), RandomPlayer(), 400, gen, device="cuda")
    assert r.score > 0.8  # greedy beats random most of the time, as on the CPU


def test_collector_on_cuda_keeps_everything_on_the_device() -> None:
    game = make("connect_four")
    cfg = NetConfig(channels=8, blocks=1, policy_channels=4, value_channels=4, value_hidden=8)
    net = PolicyNet({"c4": TaskShape.of(game)}, cfg).cuda()
    gen = torch.Generator(device="cuda").manual_seed(0)
    mix = SelfPlayConfig(self=0.4, snapshot=0.2, random=0.2, greedy=0.2)
    col = GameCollector("c4", game, 128, 16, mix, torch.device("cuda"), gen)
    ro = col.collect(net, None)
    for name in ("obs", "masks", "actions", "logprobs", "values", "rewards", "dones"):
        assert getattr(ro, name).is_cuda, name
    assert bool(ro.masks.gather(2, ro.actions[..., None]).all())  # learner moves legal
    stats = col.pop_stats()
    assert sum(v["episodes"] for v in stats.values()) > 0


@pytest.mark.parametrize("game_id", ["connect_four", "othello", "hex"])
def test_the_collector_step_loop_never_waits_on_the_gpu(game_id: str) -> None:
    """No host synchronisation inside ``collect``'s step loop (issue 12): torch raises
    on any operation that makes the host wait for the device while the debug mode is on.
    (The rollout's end, ``next_value`` and the statistics, are after the loop.)"""
    game = make(game_id)
    cfg = NetConfig(channels=8, blocks=1, policy_channels=4, value_channels=4, value_hidden=8)
    net = PolicyNet({"g": TaskShape.of(game)}, cfg).cuda()
    gen = torch.Generator(device="cuda").manual_seed(0)
    mix = SelfPlayConfig(self=0.4, snapshot=0.2, random=0.2, greedy=0.2)
    col = GameCollector("g", game, 256, 8, mix, torch.device("cuda"), gen)
    col.collect(net, None)  # first call: allocations and caches outside the check
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        col.collect(net, None)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_auto_device_picks_cuda() -> None:
    assert resolve_device("auto").type == "cuda"


def test_training_on_cuda_resumes_and_loads_on_the_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cut = train_interrupted(
        tiny_config(tmp_path, name="cut", device="cuda"), tmp_path / "runs", monkeypatch
    )
    assert json.loads((cut / "checkpoints/latest/meta.json").read_text())["iteration"] == 2
    resume(cut, quiet=True)
    meta = json.loads((cut / "checkpoints/latest/meta.json").read_text())
    assert meta["global_step"] == 3 * PER_ITERATION
    games = json.loads((cut / "eval.json").read_text())["games"]
    assert set(games) == {"tic_tac_toe", "othello_size6"}
    # weights saved from the GPU load on the CPU and play the same moves there
    weights = load_weights(cut / "checkpoints/latest")
    assert all(t.device.type == "cpu" for t in weights.values())
    on_cpu, on_gpu = rltransfer.load_policy(cut), rltransfer.load_policy(cut, "cuda")
    game = on_cpu.make_game("othello_size6")
    state = game.init(64)
    obs, mask = game.observe(state), game.legal_mask(state)
    a = PolicyPlayer(on_cpu.net, "othello_size6", sample=False).act(game, state, None)
    logits_cpu, _ = on_cpu.net("othello_size6", obs)
    logits_gpu, _ = on_gpu.net("othello_size6", obs.cuda())
    assert torch.allclose(logits_cpu, logits_gpu.cpu(), atol=1e-4)
    assert bool(mask.gather(1, a[:, None]).all())


def test_loop_benchmark_on_cuda(tmp_path: Path) -> None:
    row = time_loop(tiny_config(tmp_path, device="cuda"), iterations=2, warmup=1)
    assert row.device.startswith("cuda") and row.decisions == PER_ITERATION
    assert row.collect_s > 0 and row.update_s > 0 and row.moves >= row.decisions
