"""Data-parallel training over several processes (``torchrun``): what crosses between ranks.

Each rank steps its own boards with its own collection generator; only three things cross,
through ``torch.distributed`` collectives (``gloo`` on CPUs, ``nccl`` on GPUs):

* **gradients**, averaged after every backward pass (:meth:`Ranks.average_gradients`). We
  reduce them ourselves, one flat buffer per call, rather than wrap the network in
  ``DistributedDataParallel``: the update calls the network's parts (stems, trunk, heads)
  one by one, not through ``forward``, and DDP fixes at wrap time which parameters take
  part, so a trunk frozen when it wrapped would stay unsynchronised after a gradual
  unfreeze. Here each call reduces the parameters that have gradients now.
* **statistics the update normalises or decides on**: per-game advantage normalisation
  uses the mean and variance of the global batch (:meth:`Ranks.normalize`); the target-KL
  stop and the non-finite-loss stop are agreed (:meth:`Ranks.mean`, :meth:`Ranks.any`), so
  every rank takes the same number of optimiser steps or none deadlocks;
* **checkpoint state**: rank 0 writes every rank's boards and generators
  (:meth:`Ranks.gather`).

A single process is ``Ranks.single()``: every method is then the identity, with no
``torch.distributed`` call, so the one-process code path is unchanged.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as tdist
from torch import Tensor

from rltransfer.learn.ppo import normalize

#: How long a collective waits for the other ranks before it fails (a dead peer).
TIMEOUT = timedelta(minutes=10)


@dataclasses.dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def single(cls) -> Ranks:
        return cls()

    @classmethod
    def from_env(cls) -> Ranks:
        """The ranks ``torchrun`` describes in the environment (``RANK``, ``WORLD_SIZE``,
        ``LOCAL_RANK``); a single process where it describes none."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls.single()
        return cls(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that evaluates, logs, holds the run folder and writes checkpoints."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """The training device of this rank: its own GPU (``cuda:LOCAL_RANK``) where the
        run trains on CUDA without a device index, else ``device``."""
        if self.distributed and device.type == "cuda" and device.index is None:
            return torch.device("cuda", self.local_rank)
        return device

    def init(self, device: torch.device) -> None:
        """Join the process group (``nccl`` for CUDA, else ``gloo``) if not joined yet."""
        if not self.distributed or tdist.is_initialized():
            return
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        tdist.init_process_group(
            backend, rank=self.rank, world_size=self.world_size, timeout=TIMEOUT
        )

    # ------------------------------------------------------------------ collectives
    def sum(self, x: Tensor) -> Tensor:
        """``x`` summed over the ranks (a new tensor; ``x`` itself where single)."""
        if not self.distributed:
            return x
        out = x.clone()
        tdist.all_reduce(out, op=tdist.ReduceOp.SUM)
        return out

    def mean(self, x: Tensor) -> Tensor:
        """``x`` averaged over the ranks."""
        return self.sum(x) / self.world_size if self.distributed else x

    def any(self, flag: bool, device: torch.device) -> bool:
        """Whether ``flag`` is true on any rank (every rank gets the same answer)."""
        if not self.distributed:
            return flag
        return bool(self.sum(torch.tensor([float(flag)], device=device)) > 0)

    def normalize(self, x: Tensor, eps: float = 1e-8) -> Tensor:
        """``(x - mean) / (std + eps)`` with the mean and population std of the global
        batch: every rank's ``x`` together (one all-reduce of count, sum and sum of
        squares). A single process is :func:`rltransfer.learn.ppo.normalize`."""
        if not self.distributed:
            return normalize(x, eps)
        x64 = x.to(torch.float64)
        moments = self.sum(torch.stack([x64.new_tensor(x.numel()), x64.sum(), (x64 * x64).sum()]))
        count, total, squares = moments.unbind()
        mean = total / count
        var = (squares / count - mean * mean).clamp_min(0.0)
        return ((x64 - mean) / (var.sqrt() + eps)).to(x.dtype)

    def average_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Replace each parameter's gradient by its mean over the ranks, in one flat
        all-reduce. Parameters without a gradient (frozen, or unused) are left out; every
        rank runs the same network on the same games, so every rank leaves out the same."""
        if not self.distributed:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        tdist.all_reduce(flat, op=tdist.ReduceOp.SUM)
        flat /= self.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank (one identical start)."""
        if not self.distributed:
            return
        for t in [*module.parameters(), *module.buffers()]:
            tdist.broadcast(t.data, src=0)

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` (picklable, CPU tensors), in rank order, on rank 0;
        ``None`` on the others. A single process gets ``[obj]``."""
        if not self.distributed:
            return [obj]
        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        tdist.gather_object(obj, out, dst=0)
        return out

    def scatter(self, objs: list[Any] | None) -> Any:
        """Rank ``r`` gets ``objs[r]`` of rank 0's list (the other ranks pass ``None``)."""
        if not self.distributed:
            assert objs is not None
            return objs[0]
        out: list[Any] = [None]
        tdist.scatter_object_list(out, objs if self.is_main else None, src=0)
        return out[0]

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.distributed:
            return obj
        box = [obj if self.is_main else None]
        tdist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.distributed:
            tdist.barrier()

    def close(self) -> None:
        """Leave the process group (at the end of a run; harmless where single)."""
        if self.distributed and tdist.is_initialized():
            tdist.destroy_process_group()
