"""Throughput of the whole training loop (collect + update), and where its time goes.

Runs real iterations of :func:`rltransfer.learn.training.run_iteration` (the loop ``train``
runs, evaluation and logging aside) for a suite and agent preset at several board counts
(``num_envs_scale``), devices and CPU thread counts, and reports per iteration:

- **decisions**: learner decisions (what budgets and ``charts/sps`` count), and
- **moves**: plies of both sides (the learner's and its opponents'), i.e. env steps,

per second of collection alone and of the whole loop, with the seconds spent collecting
and updating. The first ``warmup`` iterations (allocations, cuDNN autotuning) are not
timed.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from rltransfer.bench.games import text_table
from rltransfer.learn.distributed import Ranks
from rltransfer.learn.training import build_session, run_iteration
from rltransfer.specs.config import TrainConfig


@dataclasses.dataclass
class LoopRow:
    suite: str
    agent: str
    device: str
    threads: int
    scale: float  # num_envs_scale
    boards: int  # boards of all games together
    decisions: int  # learner decisions per iteration
    iterations: int  # timed iterations
    collect_s: float  # seconds per iteration
    update_s: float
    moves: float  # plies of both sides per iteration (mean)
    rank: int = 0  # this process among ``world_size`` training processes (torchrun)
    world_size: int = 1
    compile: str = "off"  # train.compile

    @property
    def collect_decisions_per_s(self) -> float:
        return self.decisions / self.collect_s

    @property
    def collect_moves_per_s(self) -> float:
        return self.moves / self.collect_s

    @property
    def loop_decisions_per_s(self) -> float:
        return self.decisions / (self.collect_s + self.update_s)

    @property
    def loop_moves_per_s(self) -> float:
        return self.moves / (self.collect_s + self.update_s)


def time_loop(cfg: TrainConfig, iterations: int = 3, warmup: int = 1) -> LoopRow:
    """Time ``iterations`` training iterations of ``cfg`` after ``warmup`` untimed ones.

    Under ``torchrun`` every rank times its own share of the multi-process loop (its boards,
    the shared update): the row's decisions are that rank's."""
    if iterations < 1 or warmup < 0:
        raise ValueError(f"need iterations >= 1 and warmup >= 0, got {iterations}, {warmup}")
    # a budget the timed iterations never near: the annealed learning rate stays at its start
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, total_steps=10**15))
    old_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.train.threads)
    try:
        with tempfile.TemporaryDirectory() as tmp:  # a NaN stop would save a checkpoint here
            ranks = Ranks.from_env()
            s = build_session(cfg, Path(tmp), ranks=ranks)
            for _ in range(warmup):
                run_iteration(s)
            timed = [run_iteration(s) for _ in range(iterations)]
    finally:
        torch.set_num_threads(old_threads)
    return LoopRow(
        suite=cfg.suite.name,
        agent=cfg.agent,
        device=str(s.device),
        threads=cfg.train.threads,
        scale=cfg.train.num_envs_scale,
        boards=sum(c.num_envs for c in s.collectors.values())
        + sum(p.num_envs for p in s.players.values()),
        decisions=s.steps_per_iteration // ranks.world_size,
        iterations=iterations,
        collect_s=sum(t.collect_s for t in timed) / iterations,
        update_s=sum(t.update_s for t in timed) / iterations,
        moves=sum(t.moves for t in timed) / iterations,
        rank=ranks.rank,
        world_size=ranks.world_size,
        compile=cfg.train.compile,
    )


def run_loop_bench(
    make_config: Callable[[float, str, int, str], TrainConfig],
    scales: Sequence[float],
    devices: Sequence[str],
    threads: Sequence[int] = (1,),
    iterations: int = 3,
    warmup: int = 1,
    progress: Callable[[str], None] | None = None,
    compiles: Sequence[str] = ("off",),
) -> list[LoopRow]:
    """One :func:`time_loop` per (device, threads, compile mode, scale); ``make_config(scale,
    device, threads, compile)`` builds each configuration. CUDA is skipped where torch sees
    none; thread counts apply to the CPU only. A compiled loop's compilation happens in the
    warm-up iterations (give it 2: the snapshot opponent joins in the second)."""
    rows = []
    for dev in devices:
        if dev.startswith("cuda") and not torch.cuda.is_available():
            continue
        for n_threads in threads if dev == "cpu" else threads[:1]:
            for mode in compiles:
                for scale in scales:
                    if progress:
                        progress(f"{dev} threads {n_threads} compile {mode} scale {scale:g}")
                    cfg = make_config(scale, dev, n_threads, mode)
                    rows.append(time_loop(cfg, iterations, warmup))
    return rows


def format_loop_table(rows: Sequence[LoopRow]) -> str:
    """A plain-text table; "dec" = learner decisions, "moves" = plies of both sides."""
    header = [
        "suite", "agent", "device", "threads", "compile", "boards", "dec/iter", "collect s",
        "update s",
        "collect dec/s", "collect moves/s", "loop dec/s", "loop moves/s",
    ]  # fmt: skip
    ranked = any(r.world_size > 1 for r in rows)
    lines = [["rank", *header] if ranked else header]
    for r in rows:
        lines.append([
            *([f"{r.rank}/{r.world_size}"] if ranked else []),
            r.suite, r.agent, r.device, str(r.threads), r.compile, f"{r.boards:,}",
            f"{r.decisions:,}",
            f"{r.collect_s:.3f}", f"{r.update_s:.3f}", f"{r.collect_decisions_per_s:,.0f}",
            f"{r.collect_moves_per_s:,.0f}", f"{r.loop_decisions_per_s:,.0f}",
            f"{r.loop_moves_per_s:,.0f}",
        ])  # fmt: skip
    return text_table(lines, left=4 if ranked else 3)


def format_scaling(ranks_rows: Sequence[Sequence[LoopRow]], baseline: Sequence[float]) -> str:
    """Per configuration of a multi-process bench: each rank's and the total loop decisions
    per second, and the scaling efficiency: the total over ``world_size`` times one lone
    process's rate (``baseline``, in the same order; 1.0 is perfect scaling)."""
    header = ["device", "boards/rank", "procs", "per-rank loop dec/s", "total loop dec/s",
              "1 process dec/s", "efficiency"]  # fmt: skip
    lines = [header]
    for k, per_rank in enumerate(zip(*ranks_rows, strict=True)):
        total = sum(r.loop_decisions_per_s for r in per_rank)
        alone = baseline[k] if k < len(baseline) else float("nan")
        lines.append([
            per_rank[0].device, f"{per_rank[0].boards:,}", str(len(per_rank)),
            " / ".join(f"{r.loop_decisions_per_s:,.0f}" for r in per_rank), f"{total:,.0f}",
            f"{alone:,.0f}", f"{total / (len(per_rank) * alone):.2f}",
        ])  # fmt: skip
    return text_table(lines, left=2)
