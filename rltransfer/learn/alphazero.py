"""Learning from search: the update of ``train.algorithm = "alphazero"``.

The network is fitted to what the search self-play of
:mod:`rltransfer.learn.search_selfplay` recorded: for each game, the cross-entropy between
the search's improved policy and the network's masked policy, plus ``value_coef`` times the
squared error between the value head and the game's outcome for the mover. Every
minibatch takes ``batch_size`` positions of every game, as PPO's minibatches mix every
game; the per-game losses are summed with the suite's loss weights. An iteration takes
``ceil(sample_reuse * new positions per game / batch_size)`` optimiser steps, so each
recorded position is drawn ``sample_reuse`` times on average while it is new.

Over several processes gradients are averaged across ranks as in PPO
(:mod:`rltransfer.learn.distributed`), and a non-finite loss stops every rank.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from rltransfer.learn.distributed import Ranks
from rltransfer.learn.search_selfplay import SearchSelfPlay
from rltransfer.learn.update import NonFiniteLossError
from rltransfer.net.policy import PolicyNet, masked_log_probs
from rltransfer.specs.config import AlphaZeroConfig


def steps_for(players: Mapping[str, SearchSelfPlay], cfg: AlphaZeroConfig) -> int:
    """Optimiser steps of one iteration (module docstring)."""
    new = max(p.steps_per_iteration for p in players.values())
    return max(1, math.ceil(cfg.sample_reuse * new / cfg.batch_size))


def az_update(
    net: PolicyNet,
    optimizer: torch.optim.Optimizer,
    players: Mapping[str, SearchSelfPlay],
    weights: Mapping[str, float],
    cfg: AlphaZeroConfig,
    generator: torch.Generator,
    ranks: Ranks | None = None,
) -> dict[str, float]:
    """One iteration's optimiser steps; returns the mean losses: ``<task>/policy``,
    ``<task>/value``, ``<task>/target_entropy`` per game and ``mean/<stat>`` over the games
    (empty while no game has finished a game yet)."""
    ranks = ranks if ranks is not None else Ranks.single()
    params = [p for p in net.parameters() if p.requires_grad]
    device = next(iter(players.values())).device
    sums: dict[str, Tensor] = {}
    steps = 0
    for _ in range(steps_for(players, cfg)):
        batches = {t: p.sample(cfg.batch_size, generator) for t, p in players.items()}
        ready = {t: b for t, b in batches.items() if b is not None}
        # a rank with no finished game yet still joins the gradient average, with zeros
        total = torch.zeros((), device=device)
        for task, b in ready.items():
            logits, value = net(task, b.obs)
            log_p = masked_log_probs(logits, b.masks)
            policy_loss = -(b.policy * log_p).sum(dim=1).mean()
            value_loss = ((value - b.value) ** 2).mean()
            total = total + weights.get(task, 1.0) * (policy_loss + cfg.value_coef * value_loss)
            target = b.policy.clamp_min(1e-12)
            entropy = -(b.policy * target.log()).sum(dim=1).mean()
            for name, v in (("policy", policy_loss), ("value", value_loss),
                            ("target_entropy", entropy)):  # fmt: skip
                key = f"{task}/{name}"
                sums[key] = sums.get(key, torch.zeros((), device=device)) + v.detach()
        if not ranks.any(bool(ready), device):
            return {}  # no finished game on any rank yet: nothing to learn from
        if ranks.any(not bool(torch.isfinite(total)), device):
            raise NonFiniteLossError(f"non-finite alphazero loss {float(total.detach())}")
        optimizer.zero_grad(set_to_none=True)
        if ready:
            total.backward()
        if ranks.distributed:  # every rank reduces the same tensors, learned from or not
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
        ranks.average_gradients(params)
        nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
        steps += 1
    out = {k: float(v) / steps for k, v in sums.items()}
    for stat in ("policy", "value", "target_entropy"):
        per_game = [v for k, v in out.items() if k.endswith(f"/{stat}")]
        if per_game:
            out[f"mean/{stat}"] = sum(per_game) / len(per_game)
    out["optimizer_steps"] = float(steps)
    return out
