"""Generalised advantage estimation (GAE) as one pure function.

GAE (Schulman et al. 2016, https://arxiv.org/abs/1506.02438) blends n-step returns with an
exponential weight ``gae_lambda``::

    delta[t] = rewards[t] + gamma * V(s[t+1]) * (1 - dones[t]) - values[t]
    A[t]     = delta[t] + gamma * gae_lambda * (1 - dones[t]) * A[t+1]

``gae_lambda = 0`` is one-step TD, ``gae_lambda = 1`` the Monte-Carlo return minus the baseline
(exact inside the batch when the episode ends in it; bootstrapped from ``next_value`` at the
cut otherwise). The recursion runs backwards over the T steps of a rollout only; all N
environments (boards) advance together as one vector, as in CleanRL's ``ppo.py`` (and
"The 37 Implementation Details of PPO", detail 5: GAE with bootstrapping at the rollout cut).

**What one step is.** Step t is one *decision of the learner* on one board: ``values[t]`` is
V(obs_t) for the observation the learner decided on, ``rewards[t]`` what the learner received
for that decision up to its next decision (so it includes the outcome of the opponent's reply:
a loss suffered on the opponent's move lands here), and ``dones[t]`` says that the episode ended
after decision t (by the learner's move or by the reply). In self-play where both sides are
the learner, each side's decisions form their own such sequence; the collector builds them.

**Dones.** Here ``dones[t]`` means "ended after step t" (the flag cuts the bootstrap from t+1).
CleanRL stores the other flag, "obs_t starts a new episode", and so needs an extra
``next_done``; with this convention ``dones[T-1]`` already says whether ``next_value`` counts,
so there is no ``next_done`` argument.
"""

from __future__ import annotations

import torch
from torch import Tensor


def gae(
    rewards: Tensor,
    values: Tensor,
    dones: Tensor,
    next_value: Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[Tensor, Tensor]:
    """Advantages and returns for a rollout of T learner decisions on N boards.

    Args:
        rewards: [T, N] float; reward for decision t (including the opponent's reply).
        values: [T, N] float; V(obs_t) as computed during the rollout.
        dones: [T, N] bool (or 0/1 float); the episode ended after decision t, so nothing
            is bootstrapped from step t+1 (which belongs to the next episode, if any).
        next_value: [N] float; V of the observation after the last step, used unless
            ``dones[T-1]``.
        gamma: discount factor in [0, 1].
        gae_lambda: GAE's lambda in [0, 1].

    Returns:
        ``(advantages, returns)``, both [T, N] with the dtype and device of ``values``;
        ``returns = advantages + values`` (the value-function target, "37 details" no. 5).

    Pass detached tensors (values from the rollout, under ``torch.no_grad()``): the targets
    must not carry gradients into the update.
    """
    if values.dim() != 2:
        raise ValueError(f"values must be [T, N], got shape {tuple(values.shape)}")
    for name, x in (("rewards", rewards), ("dones", dones)):
        if x.shape != values.shape:
            raise ValueError(
                f"{name} must have the shape of values {tuple(values.shape)}, got {tuple(x.shape)}"
            )
    if next_value.shape != values.shape[1:]:
        raise ValueError(
            f"next_value must be [N] = {tuple(values.shape[1:])}, got {tuple(next_value.shape)}"
        )
    if not (0.0 <= gamma <= 1.0 and 0.0 <= gae_lambda <= 1.0):
        raise ValueError(f"gamma and gae_lambda must lie in [0, 1], got {gamma}, {gae_lambda}")

    nonterminal = 1.0 - dones.to(values.dtype)
    advantages = torch.zeros_like(values)
    last_advantage = torch.zeros_like(next_value, dtype=values.dtype)
    for t in reversed(range(values.shape[0])):
        next_values = next_value if t == values.shape[0] - 1 else values[t + 1]
        delta = rewards[t] + gamma * next_values * nonterminal[t] - values[t]
        last_advantage = delta + gamma * gae_lambda * nonterminal[t] * last_advantage
        advantages[t] = last_advantage
    return advantages, advantages + values
