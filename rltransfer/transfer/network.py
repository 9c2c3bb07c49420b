"""Carry a trained trunk to a new game: the target network and its training schedules.

**Building the target network** (:func:`transfer_net`). The target network has one task,
the target game. Its trunk is a copy of the source run's trunk. Its stem and heads are
one of

* new (the default): PyTorch's default initialisation of their layers (Kaiming-uniform
  weights, uniform biases, GroupNorm at identity), drawn from the run's seed, exactly as
  in a run from scratch; or
* with ``keep_heads``, copies of the source's stem and heads for the *same game* at any
  size (Othello 6x6 -> 8x8, Hex 7 -> 9, Gomoku 7 -> 9): the stem and policy head are
  convolutional and the value head pools globally, so their weights fit any board. A flat
  policy head (games whose actions are not cells, e.g. PettingZoo chess) is sized for one
  board and one action set, so ``keep_heads`` refuses it: such a target gets fresh heads;
* mapped from *another game* (``stem_from``, ``heads_from``): the stem's input channels
  matched by what the planes mean (:func:`map_stem`; a plane the source lacks starts at
  zero weight), the convolutional heads copied into any cell-action target
  (:func:`copy_heads`), the last layer of each optionally re-initialised
  (``reset_last``). The flags take a source task, or ``auto``: the best plane match.

**Schedules** (:func:`trunk_frozen`): ``finetune`` trains every weight; ``freeze`` keeps
the trunk fixed (a feature extractor: it gets no gradient and stays bit-for-bit equal);
``gradual`` freezes it for ``unfreeze_after`` iterations, then trains it too. The trunk's
learning rate can be scaled (``trunk_lr_scale``) in every mode.

The transfer metrics are in :mod:`rltransfer.transfer.metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from rltransfer.errors import UnknownTaskError, UserError
from rltransfer.games.core import BoardGame
from rltransfer.net.policy import PolicyNet, TaskShape
from rltransfer.runs.checkpoint import (
    AmbiguousTaskError,
    NetworkMeta,
    checkpoint_dir,
    load_into,
    load_weights,
    prefixed,
    read_network,
)


class TransferError(UserError, ValueError):
    """A transfer that cannot be built (e.g. ``keep_heads`` without a matching game)."""


# ----------------------------------------------------------------------- the network
#: ``stem_from`` / ``heads_from`` value that picks the source task whose planes match best
AUTO = "auto"


def transfer_net(
    source: str | Path,
    task: str,
    game: BoardGame,
    keep_heads: bool = False,
    device: torch.device | str = "cpu",
    *,
    stem_from: str = "",
    heads_from: str = "",
    reset_last: bool = False,
) -> PolicyNet:
    """A one-task network for ``game`` with the source run's trunk (see module docstring).

    ``keep_heads`` copies the stem and heads of the source's task for the same game.
    ``stem_from`` / ``heads_from`` (a source task name, or :data:`AUTO`) carry a stem and
    heads across games: :func:`map_stem` and :func:`copy_heads`. ``reset_last``
    re-initialises the last layer of each copied head (:func:`reset_last_layers`).

    Call it after seeding torch: the new stem and heads are drawn from the global RNG.
    """
    if keep_heads and (stem_from or heads_from):
        raise TransferError(
            "--keep-heads copies the same game's stem and heads; --stem-from / --heads-from "
            "map another game's: use one or the other"
        )
    if reset_last and not (keep_heads or heads_from):
        raise TransferError("--reset-last resets copied heads: give --heads-from or --keep-heads")
    ckpt = checkpoint_dir(source)
    meta = read_network(ckpt)
    net = PolicyNet({task: TaskShape.of(game)}, meta.net).to(device)
    weights, where = load_weights(ckpt, device), ckpt / "model.safetensors"
    load_into(net.trunk, weights, where, prefix="trunk.")
    if keep_heads:
        src = _same_game_task(meta, game, ckpt)
        load_into(net.stems[task], weights, where, prefix=f"stems.{src}.")
        load_into(net.policy_heads[task], weights, where, prefix=f"policy_heads.{src}.")
        load_into(net.value_heads[task], weights, where, prefix=f"value_heads.{src}.")
    if stem_from:
        src = pick_source_task(meta, game, stem_from, ckpt, "--stem-from")
        map_stem(net, task, game.planes, weights, src, source_planes(meta, src), where)
    if heads_from:
        src = pick_source_task(meta, game, heads_from, ckpt, "--heads-from")
        copy_heads(net, task, weights, src, meta.tasks[src], where)
    if reset_last:
        reset_last_layers(net, task)
    return net


def _same_game_task(meta: NetworkMeta, game: BoardGame, ckpt: Path) -> str:
    """``keep_heads``: the source task of the same game, whose stem and heads fit as they are."""
    try:
        src = meta.find_task(game, ckpt)
    except AmbiguousTaskError:
        raise
    except UnknownTaskError:
        raise TransferError(
            f"--keep-heads: the source {ckpt} has no {game.id} stem and heads to keep (its "
            f"games: {', '.join(meta.tasks)}); transfer to another game needs fresh heads, "
            "or mapped ones (--stem-from, --heads-from)"
        ) from None
    shape, target = meta.tasks[src], TaskShape.of(game)
    if "flat" in (shape.head, target.head):
        raise TransferError(
            f"--keep-heads: {game.id} has a flat policy head (its actions are not board "
            f"cells), which fits one board size and action set only and is not carried "
            f"over; transfer the trunk alone (leave out --keep-heads / keep_heads)"
        )
    if (shape.num_planes, shape.has_pass) != (target.num_planes, target.has_pass):
        raise TransferError(f"--keep-heads: source task {src} has {shape}, target needs {target}")
    return src


def source_planes(meta: NetworkMeta, task: str) -> tuple[str, ...]:
    """What a source task's planes meant in its run (recorded in the checkpoint); for a
    checkpoint written before planes were recorded, from its game built from its spec."""
    if task in meta.planes:
        return meta.planes[task]
    return meta.specs[task].make().planes


def shared_planes(target: Sequence[str], source: Sequence[str]) -> int:
    """How many of the target's planes a source stem has, by meaning (never ``unknown``)."""
    return sum(1 for name in target if name != "unknown" and name in source)


def plane_match(target: Sequence[str], source: Sequence[str]) -> tuple[int, int]:
    """How well a source stem fits a target, best first when sorted descending: (planes
    shared, minus the source planes the target lacks)."""
    return shared_planes(target, source), -sum(1 for name in source if name not in target)


def pick_source_task(meta: NetworkMeta, game: BoardGame, choice: str, ckpt: Path, flag: str) -> str:
    """The source task a stem or heads come from: ``choice`` by name, or with :data:`AUTO`
    the task whose planes match the target's best. A tie between tasks is an error that
    asks for a name (never a silent pick); so is a source that shares no plane."""
    if choice != AUTO:
        if choice not in meta.tasks:
            raise TransferError(
                f"{flag} {choice}: the source {ckpt} has no such task; its tasks: "
                f"{', '.join(meta.tasks)}"
            )
        return choice
    # the most planes shared, then the fewest source planes the target lacks (a stem that
    # also read a plane the target does not have computes something else without it)
    scores = {src: plane_match(game.planes, source_planes(meta, src)) for src in meta.tasks}
    best = max(scores.values())
    if best[0] == 0:
        raise TransferError(
            f"{flag}: no task of {ckpt} shares a plane with {game.id} "
            f"({', '.join(game.planes)}); its tasks' planes: "
            + "; ".join(f"{t}: {', '.join(source_planes(meta, t))}" for t in meta.tasks)
        )
    tied = [src for src, score in scores.items() if score == best]
    if len(tied) > 1:
        raise TransferError(
            f"{flag}: {', '.join(tied)} of {ckpt} match {game.id}'s planes equally well "
            f"({best[0]} of {len(game.planes)} shared); name one: {flag} TASK"
        )
    return tied[0]


def map_stem(
    net: PolicyNet,
    task: str,
    planes: Sequence[str],
    weights: Mapping[str, Tensor],
    src: str,
    src_planes: Sequence[str],
    where: Path,
) -> None:
    """Copy source task ``src``'s stem into ``task``'s, mapping input channels by meaning.

    The stem's first convolution reads planes: each target plane takes the source's
    weights for the plane of the same name; a plane the source lacks starts at zero weight.
    So on the planes they share (every other input plane zero) the mapped stem computes
    exactly what the source's did. The normalisation (and bias) are copied as they are.
    """
    stem = net.stems[task]
    part = prefixed(weights, f"stems.{src}.")
    kernel = part["conv.weight"]  # [D, C_source, 3, 3]
    if shared_planes(planes, src_planes) == 0:
        raise TransferError(
            f"--stem-from {src}: its planes ({', '.join(src_planes)}) share none with the "
            f"target's ({', '.join(planes)})"
        )
    mapped = torch.zeros_like(stem.state_dict()["conv.weight"])
    for j, name in enumerate(planes):
        if name != "unknown" and name in src_planes:
            mapped[:, j] = kernel[:, list(src_planes).index(name)]
    part["conv.weight"] = mapped
    load_into(stem, part, where)


def copy_heads(
    net: PolicyNet,
    task: str,
    weights: Mapping[str, Tensor],
    src: str,
    src_shape: TaskShape,
    where: Path,
) -> None:
    """Copy source task ``src``'s policy and value heads into ``task``'s, across games.

    Both heads are convolutional or pooled, so they fit a cell-action target of any size;
    the pass logit is copied where both games have one, stays fresh where only the target
    has one, and is dropped where only the source has one. Flat heads (actions that are
    not cells) do not map: refused.
    """
    target = net.tasks[task]
    if "flat" in (src_shape.head, target.head):
        raise TransferError(
            f"--heads-from {src}: a flat policy head (actions that are not board cells) does "
            "not map to another game; transfer the trunk (and stem) alone"
        )
    policy = net.policy_heads[task]
    part = prefixed(weights, f"policy_heads.{src}.")
    if not target.has_pass:
        part = {k: v for k, v in part.items() if not k.startswith("pass_logit.")}
    elif not src_shape.has_pass:  # the target's own fresh pass logit stays
        own = policy.state_dict()
        part.update({k: v for k, v in own.items() if k.startswith("pass_logit.")})
    load_into(policy, part, where)
    load_into(net.value_heads[task], weights, where, prefix=f"value_heads.{src}.")


def reset_last_layers(net: PolicyNet, task: str) -> None:
    """Re-initialise the last layer of each head of ``task`` (PyTorch's default init, from
    the global RNG): the policy's output convolution and pass logit, the value's output."""
    policy, value = net.policy_heads[task], net.value_heads[task]
    last = [getattr(policy, "out", None), getattr(policy, "pass_logit", None), value.fc2]
    for layer in last:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            layer.reset_parameters()


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
