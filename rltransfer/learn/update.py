"""The multitask PPO update: minibatches that mix every game of the suite.

Each game's rollout becomes a flat batch (``b_`` names) with its own GAE advantages,
normalised per game over the whole batch (``adv_norm = "game"``): games differ in how
long and how decided their episodes are, and one game's scale should not drown another's.
Every optimiser step then takes one minibatch slice (``mb_``) from every game, runs each
through its own stem and head and the shared trunk, and sums the per-game losses with the
suite's loss weights. Statistics are kept per game (approx_kl, clipfrac, entropy, ...).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from rltransfer.learn.advantage import gae
from rltransfer.learn.collector import Rollout
from rltransfer.learn.compiled import Compiler
from rltransfer.learn.confusion import GameClassifier
from rltransfer.learn.distributed import Ranks
from rltransfer.learn.ppo import PPOConfig, explained_variance
from rltransfer.net.policy import PolicyNet

SINGLE = Ranks.single()


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or inf; the update stopped before applying it."""


@dataclasses.dataclass
class Batch:
    """One game's rollout, flattened over ``[T, N]``."""

    obs: Tensor
    masks: Tensor
    actions: Tensor
    logprobs: Tensor
    values: Tensor
    advantages: Tensor
    returns: Tensor

    def __len__(self) -> int:
        return int(self.actions.shape[0])


def make_batch(ro: Rollout, cfg: PPOConfig, ranks: Ranks = SINGLE) -> Batch:
    """GAE over the ``[T, N]`` rollout, then flatten; per-game normalisation if configured
    (over the global batch: every rank's rollout of the game)."""
    advantages, returns = gae(
        ro.rewards,
        ro.values,
        ro.dones.to(ro.rewards.dtype),
        ro.next_value,
        cfg.gamma,
        cfg.gae_lambda,
    )
    b_adv = advantages.flatten()
    if cfg.adv_norm == "game":
        b_adv = ranks.normalize(b_adv)
    return Batch(
        obs=ro.obs.flatten(0, 1),
        masks=ro.masks.flatten(0, 1),
        actions=ro.actions.flatten(),
        logprobs=ro.logprobs.flatten(),
        values=ro.values.flatten(),
        advantages=b_adv,
        returns=returns.flatten(),
    )


def ppo_update(
    net: PolicyNet,
    optimizer: torch.optim.Optimizer,
    batches: Mapping[str, Batch],
    weights: Mapping[str, float],
    cfg: PPOConfig,
    generator: torch.Generator,
    classifier: GameClassifier | None = None,
    *,
    ranks: Ranks = SINGLE,
    shards: int = 1,
    compiler: Compiler | None = None,
) -> dict[str, float]:
    """``update_epochs`` passes over every game's batch in mixed minibatches.

    With a ``classifier`` (``ppo.confusion_coef`` > 0), every minibatch also adds its
    cross-entropy of telling the games apart from the trunk's features, through a gradient
    reversal of strength ``confusion_coef`` (:mod:`rltransfer.learn.confusion`).

    Returns mean statistics: ``mean/<stat>`` over all games, ``<game>/<stat>`` per game,
    and with a classifier ``confusion/loss`` and ``confusion/accuracy``. Raises
    :class:`NonFiniteLossError` (before the optimiser step) on a NaN loss.

    Over several processes (``ranks``) every rank passes its own batches and the same
    ``generator`` state: gradients are averaged across ranks before clipping, and the
    statistics, the target-KL stop and the NaN stop are the ranks' means and agreement
    (:mod:`rltransfer.learn.distributed`). ``shards = k`` reproduces that update in one
    process holding the k ranks' batches back to back: each minibatch is then the union
    of the k ranks' minibatches (the equivalence tests use it).

    A ``compiler`` with ``train.compile`` on runs each game's forward pass and loss
    compiled (:mod:`rltransfer.learn.compiled`); the default runs them eagerly.
    """
    compiler = compiler if compiler is not None else Compiler()
    tasks = list(batches)
    sums: dict[str, Tensor] = {}
    count = 0
    params = [p for p in net.parameters() if p.requires_grad]
    synced = params + (list(classifier.parameters()) if classifier is not None else [])
    device = next(iter(batches.values())).actions.device
    for _epoch in range(cfg.update_epochs):
        # every sample of every game lands in exactly one minibatch per epoch
        splits = {
            k: _minibatches(len(b), cfg.num_minibatches, shards, generator, device)
            for k, b in batches.items()
        }
        epoch_kl: list[Tensor] = []
        for mb in range(cfg.num_minibatches):
            optimizer.zero_grad(set_to_none=True)
            total = torch.zeros((), device=device)
            features = {}
            for task in tasks:
                b, mb_inds = batches[task], splits[task][mb]
                task_loss = compiler.loss(net, task, cfg, float(weights.get(task, 1.0)))
                loss, stats, features[task] = task_loss(
                    b.obs[mb_inds],
                    b.masks[mb_inds],
                    b.actions[mb_inds],
                    b.logprobs[mb_inds],
                    b.advantages[mb_inds],
                    b.values[mb_inds],
                    b.returns[mb_inds],
                )
                total = total + loss
                for name, value in stats.items():
                    key = f"{task}/{name}"
                    sums[key] = sums.get(key, torch.zeros_like(value)) + value.detach()
                epoch_kl.append(stats["approx_kl"].detach())
            if classifier is not None:
                confusion, accuracy = classifier.loss(features, cfg.confusion_coef)
                total = total + confusion
                for name, value in (("loss", confusion), ("accuracy", accuracy)):
                    key = f"confusion/{name}"
                    sums[key] = sums.get(key, torch.zeros_like(value)) + value.detach()
            if ranks.any(not bool(torch.isfinite(total)), device):
                raise NonFiniteLossError(
                    f"non-finite loss {float(total.detach())} in minibatch {mb}"
                    + (f" (on rank {ranks.rank} or another)" if ranks.distributed else "")
                )
            total.backward()
            ranks.average_gradients(synced)
            nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            if classifier is not None:  # clipped apart: its gradient must not shrink PPO's
                nn.utils.clip_grad_norm_(classifier.parameters(), cfg.max_grad_norm)
            optimizer.step()
            count += 1
        kl = torch.stack(epoch_kl).mean()
        if cfg.target_kl is not None and float(ranks.mean(kl)) > cfg.target_kl:
            break
    keys = sorted(sums)
    means = ranks.mean(torch.stack([sums[k] for k in keys]).to(torch.float32)).tolist()
    out = {k: v / count for k, v in zip(keys, means, strict=True)}
    for stat in {k.split("/", 1)[1] for k in out if k.split("/", 1)[0] in batches}:
        per_game = [out[f"{t}/{stat}"] for t in tasks if f"{t}/{stat}" in out]
        out[f"mean/{stat}"] = sum(per_game) / len(per_game)
    for task, b in batches.items():
        out[f"{task}/explained_variance"] = explained_variance(b.values, b.returns)
    out["mean/explained_variance"] = sum(out[f"{t}/explained_variance"] for t in tasks) / len(tasks)
    out["epochs"] = float(count // cfg.num_minibatches)
    return out


def _minibatches(
    n: int, num_minibatches: int, shards: int, generator: torch.Generator, device: torch.device
) -> tuple[Tensor, ...]:
    """Index sets that split ``n`` samples into ``num_minibatches`` minibatches, drawn as
    one permutation of ``n // shards`` applied to each of ``shards`` equal blocks."""
    if n % shards:
        raise ValueError(f"{n} samples do not split into {shards} equal shards")
    block = n // shards
    splits = torch.randperm(block, generator=generator, device=device).tensor_split(num_minibatches)
    if shards == 1:
        return splits
    return tuple(torch.cat([s + k * block for k in range(shards)]) for s in splits)
