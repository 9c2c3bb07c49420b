"""Carry a trained trunk to a new game: the target network and its training schedules.

**Building the target network** (:func:`transfer_net`). The target network has one task,
the target game. Its trunk is a copy of the source run's trunk. Its stem and heads are
either

* new (the default): PyTorch's default initialisation of their layers (Kaiming-uniform
  weights, uniform biases, GroupNorm at identity), drawn from the run's seed, exactly as
  in a run from scratch; or
* with ``keep_heads``, copies of the source's stem and heads for the *same game* at any
  size (Othello 6x6 -> 8x8, Hex 7 -> 9, Gomoku 7 -> 9): the stem and policy head are
  convolutional and the value head pools globally, so their weights fit any board. A flat
  policy head (games whose actions are not cells, e.g. PettingZoo chess) is sized for one
  board and one action set, so ``keep_heads`` refuses it: such a target gets fresh heads.

**Schedules** (:func:`trunk_frozen`): ``finetune`` trains every weight; ``freeze`` keeps
the trunk fixed (a feature extractor: it gets no gradient and stays bit-for-bit equal);
``gradual`` freezes it for ``unfreeze_after`` iterations, then trains it too. The trunk's
learning rate can be scaled (``trunk_lr_scale``) in every mode.

The transfer metrics are in :mod:`rltransfer.transfer.metrics`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rltransfer.errors import UnknownTaskError, UserError
from rltransfer.games.core import BoardGame
from rltransfer.net.policy import PolicyNet, TaskShape
from rltransfer.runs.checkpoint import (
    AmbiguousTaskError,
    checkpoint_dir,
    load_into,
    load_weights,
    read_network,
)


class TransferError(UserError, ValueError):
    """A transfer that cannot be built (e.g. ``keep_heads`` without a matching game)."""


# ----------------------------------------------------------------------- the network
def transfer_net(
    source: str | Path,
    task: str,
    game: BoardGame,
    keep_heads: bool,
    device: torch.device | str = "cpu",
) -> PolicyNet:
    """A one-task network for ``game`` with the source run's trunk (see module docstring).

    Call it after seeding torch: the new stem and heads are drawn from the global RNG.
    """
    ckpt = checkpoint_dir(source)
    meta = read_network(ckpt)
    net = PolicyNet({task: TaskShape.of(game)}, meta.net).to(device)
    weights, where = load_weights(ckpt, device), ckpt / "model.safetensors"
    load_into(net.trunk, weights, where, prefix="trunk.")
    if keep_heads:
        try:
            src = meta.find_task(game, ckpt)
        except AmbiguousTaskError:
            raise
        except UnknownTaskError:
            raise TransferError(
                f"--keep-heads: the source {ckpt} has no {game.id} stem and heads to keep (its "
                f"games: {', '.join(meta.tasks)}); transfer to another game needs fresh heads"
            ) from None
        shape, target = meta.tasks[src], TaskShape.of(game)
        if "flat" in (shape.head, target.head):
            raise TransferError(
                f"--keep-heads: {game.id} has a flat policy head (its actions are not board "
                f"cells), which fits one board size and action set only and is not carried "
                f"over; transfer the trunk alone (leave out --keep-heads / keep_heads)"
            )
        if (shape.num_planes, shape.has_pass) != (target.num_planes, target.has_pass):
            raise TransferError(
                f"--keep-heads: source task {src} has {shape}, target needs {target}"
            )
        load_into(net.stems[task], weights, where, prefix=f"stems.{src}.")
        load_into(net.policy_heads[task], weights, where, prefix=f"policy_heads.{src}.")
        load_into(net.value_heads[task], weights, where, prefix=f"value_heads.{src}.")
    return net


def trunk_frozen(mode: str, iteration: int, unfreeze_after: int) -> bool:
    """Whether the trunk is frozen during ``iteration`` (0-based) under a schedule."""
    if mode == "freeze":
        return True
    if mode == "gradual":
        return iteration < unfreeze_after
    return False


def set_trunk_frozen(net: PolicyNet, frozen: bool) -> None:
    """Freeze (no gradients, no updates) or unfreeze the shared trunk."""
    for p in net.trunk.parameters():
        p.requires_grad_(not frozen)


def param_groups(net: PolicyNet, trunk_lr_scale: float) -> list[dict[str, object]]:
    """Optimizer groups: the trunk (with its learning-rate scale) and everything else."""
    trunk = list(net.trunk.parameters())
    ids = {id(p) for p in trunk}
    rest = [p for p in net.parameters() if id(p) not in ids]
    return [
        {"params": trunk, "lr_scale": trunk_lr_scale, "name": "trunk"},
        {"params": rest, "lr_scale": 1.0, "name": "stems_and_heads"},
    ]
