"""Multi-process training on the CPU (``gloo``, 2 processes): the update over two ranks
equals one process holding both ranks' samples, a gradual unfreeze keeps the ranks'
trunks equal, and a 2-process run trains, checkpoints, resumes and loads."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp
from tiny import SUITE, TINY

from rltransfer.games import make
from rltransfer.inference import load_policy
from rltransfer.learn.collector import GameCollector, Rollout
from rltransfer.learn.confusion import GameClassifier
from rltransfer.learn.distributed import Ranks
from rltransfer.learn.ppo import normalize
from rltransfer.learn.update import Batch, make_batch, ppo_update
from rltransfer.net.policy import PolicyNet, TaskShape
from rltransfer.runs.checkpoint import checkpoint_dir, load_trainer
from rltransfer.specs.config import NetConfig, PPOConfig, SelfPlayConfig
from rltransfer.transfer.network import set_trunk_frozen

GAMES = {"tic_tac_toe": make("tic_tac_toe"), "connect_four": make("connect_four")}
NET = NetConfig(channels=8, blocks=1, groups=2)
PPO = PPOConfig(update_epochs=2, num_minibatches=2, confusion_coef=0.1)
WORLD = 2


# ------------------------------------------------------------------------------ spawning
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _entry(rank: int, port: int, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
        WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank),
    )  # fmt: skip
    torch.set_num_threads(1)
    ranks = Ranks.from_env()
    ranks.init(torch.device("cpu"))
    try:
        fn(ranks, *args)
    finally:
        ranks.close()


def spawn(fn: Callable[..., None], *args: Any) -> None:
    """``fn(ranks, *args)`` in 2 gloo processes (a failure in either fails the test)."""
    mp.spawn(_entry, args=(_free_port(), fn, args), nprocs=WORLD, join=True)


# ------------------------------------------------------------------------------ fixtures
def _models(seed: int = 0) -> tuple[PolicyNet, GameClassifier, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    net = PolicyNet({k: TaskShape.of(g) for k, g in GAMES.items()}, NET)
    classifier = GameClassifier(list(GAMES), NET.channels)
    params = [*net.parameters(), *classifier.parameters()]
    return net, classifier, torch.optim.Adam(params, lr=3e-3, eps=1e-5)


@pytest.fixture(scope="module")
def rollouts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each rank's fixed rollouts of both games, from its own boards and seed."""
    net, _, _ = _models(seed=5)
    mix = SelfPlayConfig(self=0.5, snapshot=0.0, random=0.5, greedy=0.0)
    out = {}
    for rank in range(WORLD):
        gen = torch.Generator().manual_seed(100 + rank)
        out[rank] = {
            task: dataclasses.asdict(
                GameCollector(task, game, 8, 6, mix, torch.device("cpu"), gen).collect(net, None)
            )
            for task, game in GAMES.items()
        }
    path = tmp_path_factory.mktemp("distributed") / "rollouts.pt"
    torch.save(out, path)
    return path


def _load(path: Path, rank: int) -> dict[str, Rollout]:
    return {t: Rollout(**f) for t, f in torch.load(path)[rank].items()}


def _update(ranks: Ranks, rollouts: Path, out: Path) -> None:
    """One PPO update of this rank's samples, gradients averaged across the ranks."""
    net, classifier, optimizer = _models()
    batches = {t: make_batch(ro, PPO, ranks) for t, ro in _load(rollouts, ranks.rank).items()}
    gen = torch.Generator().manual_seed(9)
    ppo_update(net, optimizer, batches, {}, PPO, gen, classifier, ranks=ranks)
    torch.save([net.state_dict(), classifier.state_dict()], out / f"rank{ranks.rank}.pt")


def _combined(rollouts: Path) -> dict[str, Batch]:
    """Both ranks' batches back to back, advantages normalised over the union."""
    raw = dataclasses.replace(PPO, adv_norm="none")
    parts = [{t: make_batch(ro, raw) for t, ro in _load(rollouts, r).items()} for r in range(2)]
    out = {}
    for task in GAMES:
        fields = {
            f.name: torch.cat([getattr(p[task], f.name) for p in parts])
            for f in dataclasses.fields(Batch)
        }
        fields["advantages"] = normalize(fields["advantages"])
        out[task] = Batch(**fields)
    return out


def _single(rollouts: Path, shards: int) -> list[dict[str, torch.Tensor]]:
    net, classifier, optimizer = _models()
    gen = torch.Generator().manual_seed(9)
    ppo_update(net, optimizer, _combined(rollouts), {}, PPO, gen, classifier, shards=shards)
    return [net.state_dict(), classifier.state_dict()]


def _close(a: list[dict[str, torch.Tensor]], b: list[dict[str, torch.Tensor]]) -> bool:
    return all(
        torch.allclose(x[k], y[k], atol=2e-5, rtol=1e-4)
        for x, y in zip(a, b, strict=True)
        for k in x
    )


# --------------------------------------------------------------------------------- tests
def _every_check(ranks: Ranks, rollouts: Path, out: Path) -> None:
    _update(ranks, rollouts, out)
    _normalised(ranks, rollouts, out)
    _unfreeze(ranks, rollouts, out)


@pytest.fixture(scope="module")
def ran(rollouts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 2-process part of every check below, in one spawn (starting processes is slow)."""
    out = tmp_path_factory.mktemp("ranks")
    spawn(_every_check, rollouts, out)
    return out


def test_two_ranks_update_as_one_process_holding_both_ranks_samples(
    rollouts: Path, ran: Path
) -> None:
    rank0, rank1 = (torch.load(ran / f"rank{r}.pt") for r in range(2))
    for a, b in zip(rank0, rank1, strict=True):  # one update applied on both ranks
        assert all(torch.equal(a[k], b[k]) for k in a)
    reference = _single(rollouts, shards=2)
    assert _close(rank0, reference)
    # the comparison can fail: other minibatches, or no averaging, give other weights
    assert not _close(rank0, _single(rollouts, shards=1))
    net, classifier, optimizer = _models()
    alone = {t: make_batch(ro, PPO) for t, ro in _load(rollouts, 0).items()}
    ppo_update(net, optimizer, alone, {}, PPO, torch.Generator().manual_seed(9), classifier)
    assert not _close(rank0, [net.state_dict(), classifier.state_dict()])


def test_advantages_are_normalised_over_the_global_batch(ran: Path) -> None:
    mine = [torch.load(ran / f"adv{r}.pt") for r in range(2)]
    union = torch.cat(mine)
    assert abs(float(union.mean())) < 1e-5 and float(union.std(correction=0)) == pytest.approx(1)
    assert abs(float(mine[0].mean())) > 1e-3  # each rank's share alone is not centred


def _normalised(ranks: Ranks, rollouts: Path, out: Path) -> None:
    ro = _load(rollouts, ranks.rank)["connect_four"]
    torch.save(make_batch(ro, PPO, ranks).advantages, out / f"adv{ranks.rank}.pt")


def _unfreeze(ranks: Ranks, rollouts: Path, out: Path) -> None:
    """A frozen-trunk update, then an unfrozen one: trunks after each, synced and not."""
    for synced in (True, False):
        use = ranks if synced else Ranks.single()
        net, classifier, optimizer = _models()
        batches = {t: make_batch(ro, PPO, use) for t, ro in _load(rollouts, ranks.rank).items()}
        trunks = [{k: v.clone() for k, v in net.trunk.state_dict().items()}]
        for frozen in (True, False):
            set_trunk_frozen(net, frozen)
            gen = torch.Generator().manual_seed(9)
            ppo_update(net, optimizer, batches, {}, PPO, gen, classifier, ranks=use)
            trunks.append({k: v.clone() for k, v in net.trunk.state_dict().items()})
        torch.save(trunks, out / f"trunks{ranks.rank}_{'synced' if synced else 'alone'}.pt")


def test_after_a_gradual_unfreeze_both_ranks_trunks_are_equal(ran: Path) -> None:
    synced = [torch.load(ran / f"trunks{r}_synced.pt") for r in range(2)]
    alone = [torch.load(ran / f"trunks{r}_alone.pt") for r in range(2)]
    start, frozen, unfrozen = synced[0]
    assert all(torch.equal(start[k], frozen[k]) for k in start)  # frozen: untouched
    assert not all(torch.equal(frozen[k], unfrozen[k]) for k in start)  # then trained
    assert all(torch.equal(unfrozen[k], synced[1][2][k]) for k in unfrozen)
    # without averaging, the ranks' different boards pull the trunks apart
    assert not all(torch.equal(alone[0][2][k], alone[1][2][k]) for k in unfrozen)


# ----------------------------------------------------------------------- end to end
def _rltransfer(*args: str, nproc: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc is None:
        command = [sys.executable, "-m", "rltransfer", *args]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc-per-node={nproc}", "-m", "rltransfer", *args]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_a_two_process_run_trains_checkpoints_resumes_and_loads(tmp_path: Path) -> None:
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE)
    settings = [a for item in TINY for a in ("--set", item)]
    common = ["--run-dir", str(tmp_path / "runs"), "--quiet", *settings]
    per_iteration = 2 * (8 + 8) * 4  # two ranks' boards, 4 steps each
    first = _rltransfer(
        "train", "--suite", str(suite), "--name", "duo", "--steps", str(2 * per_iteration),
        *common, nproc=2,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    run = tmp_path / "runs" / "duo"
    trainer = load_trainer(checkpoint_dir(run))
    assert trainer["world_size"] == 2 and len(trainer["ranks"]) == 1
    assert trainer["global_step"] == 2 * per_iteration
    boards = [trainer["collectors"], trainer["ranks"][0]["collectors"]]
    assert not torch.equal(  # each rank stepped boards of its own
        boards[0]["tic_tac_toe"]["state.mover"], boards[1]["tic_tac_toe"]["state.mover"]
    )
    # a resume with another number of processes is refused, and says why
    alone = _rltransfer("train", "--resume", str(run), "--steps", str(4 * per_iteration))
    assert alone.returncode == 2 and "saved by 2 training process(es)" in alone.stderr
    again = _rltransfer(
        "train", "--resume", str(run), "--steps", str(3 * per_iteration), "--quiet", "--nproc", "2"
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert load_trainer(checkpoint_dir(run))["global_step"] == 3 * per_iteration
    history = json.loads((run / "eval.json").read_text())["history"]
    assert [h["global_step"] for h in history][-1] == 3 * per_iteration
    policy = load_policy(run)
    assert set(policy.games) == {"tic_tac_toe", "othello_size6"}


def test_bench_train_reports_each_rank_the_total_and_the_efficiency(tmp_path: Path) -> None:
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE)
    settings = [a for item in TINY for a in ("--set", item)]
    out = _rltransfer(
        "bench-train", "--suite", str(suite), *settings, "--iterations", "1", "--warmup", "0",
        "--nproc", "2", "--quiet",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert any(line.startswith("0/2 ") for line in lines)
    assert any(line.startswith("1/2 ") for line in lines)
    scaling = lines[lines.index(next(x for x in lines if x.startswith("device"))) + 2].split()
    assert scaling[0] == "cpu" and scaling[2] == "2"  # device, boards per rank, processes
    per_rank = [float(x.replace(",", "")) for x in " ".join(scaling[3:6]).split(" / ")]
    assert float(scaling[6].replace(",", "")) == pytest.approx(sum(per_rank), abs=2)
    assert float(scaling[-1]) > 0  # the efficiency against the one-process run first
