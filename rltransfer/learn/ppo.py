"""PPO's loss and its small helpers, as plain functions over flat minibatch tensors.

The clipped surrogate objective is from Schulman et al. 2017, "Proximal Policy Optimization
Algorithms" (https://arxiv.org/abs/1707.06347), eq. 7 and 9. The choices that the paper leaves
open follow CleanRL's ``ppo.py`` and Huang et al. 2022, "The 37 Implementation Details of
Proximal Policy Optimization" (https://iclr-blog-track.github.io/2022/03/25/ppo-implementation-details/),
cited below as "37 details" with the detail's number.

The update around it (GAE, epochs over shuffled minibatches, gradient clipping, early stop
on ``target_kl``) is :mod:`rltransfer.learn.update`; this module only knows one minibatch.
In a multitask suite each game's minibatch gets its own ``ppo_loss`` (with that game's
``weight``), so per-game statistics come for free and the totals are summed.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rltransfer.specs.config import PPOConfig


def normalize(x: Tensor, eps: float = 1e-8) -> Tensor:
    """``(x - mean) / (std + eps)`` over all elements.

    The population std (no Bessel correction) keeps a one-element or constant input finite:
    it maps to zeros instead of NaN.
    """
    return (x - x.mean()) / (x.std(correction=0) + eps)


def ppo_loss(
    new_logprob: Tensor,
    old_logprob: Tensor,
    advantages: Tensor,
    entropy: Tensor,
    new_value: Tensor,
    old_value: Tensor,
    returns: Tensor,
    cfg: PPOConfig,
    weight: float | Tensor = 1.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO's total loss for one minibatch of B samples, and its statistics.

    Args:
        new_logprob: [B] log pi(a|s) under the current parameters (carries the gradient).
        old_logprob: [B] log pi_old(a|s) recorded during the rollout.
        advantages: [B] GAE advantages (normalised by the caller unless
            ``cfg.adv_norm == "minibatch"``, which normalises them here).
        entropy: [B] entropy of the current policy at s.
        new_value: [B] V(s) under the current parameters (carries the gradient).
        old_value: [B] V(s) recorded during the rollout (the centre of value clipping).
        returns: [B] value targets, ``advantages + old_value`` before any normalisation.
        cfg: the PPO settings used: clip_coef, clip_vloss, ent_coef, vf_coef, adv_norm.
        weight: this minibatch's (game's) weight in a multitask sum.

    Returns:
        ``(loss, stats)``: ``loss = weight * (pg - ent_coef * entropy + vf_coef * v_loss)``,
        a scalar to minimise; ``stats`` holds detached scalars ``policy``, ``value``,
        ``entropy``, ``approx_kl`` and ``clipfrac``.
    """
    _check_same_shape(
        new_logprob=new_logprob,
        old_logprob=old_logprob,
        advantages=advantages,
        entropy=entropy,
        new_value=new_value,
        old_value=old_value,
        returns=returns,
    )
    logratio = new_logprob - old_logprob
    ratio = logratio.exp()
    with torch.no_grad():
        # The low-variance, always non-negative KL estimator k3 = (r - 1) - log r
        # (http://joschu.net/blog/kl-approx.html; "37 details" no. 12).
        approx_kl = ((ratio - 1.0) - logratio).mean()
        clipfrac = ((ratio - 1.0).abs() > cfg.clip_coef).to(ratio.dtype).mean()

    if cfg.adv_norm == "minibatch":
        advantages = normalize(advantages)
    # Clipped surrogate, PPO paper eq. 7: the pessimistic (max of the negated) of the
    # unclipped and clipped objectives, so moving the ratio past 1 +- clip_coef in the
    # direction the advantage favours earns nothing and has zero gradient ("37 details" no. 8).
    pg_loss1 = -advantages * ratio
    pg_loss2 = -advantages * torch.clamp(ratio, 1.0 - cfg.clip_coef, 1.0 + cfg.clip_coef)
    pg_loss = torch.max(pg_loss1, pg_loss2).mean()

    # Value loss, optionally clipped around the rollout's value like the policy
    # ("37 details" no. 9): the larger of the two squared errors.
    v_loss_unclipped = (new_value - returns) ** 2
    if cfg.clip_vloss:
        v_clipped = old_value + torch.clamp(new_value - old_value, -cfg.clip_coef, cfg.clip_coef)
        v_loss = 0.5 * torch.max(v_loss_unclipped, (v_clipped - returns) ** 2).mean()
    else:
        v_loss = 0.5 * v_loss_unclipped.mean()

    entropy_loss = entropy.mean()
    loss = weight * (pg_loss - cfg.ent_coef * entropy_loss + cfg.vf_coef * v_loss)
    stats = {
        "policy": pg_loss.detach(),
        "value": v_loss.detach(),
        "entropy": entropy_loss.detach(),
        "approx_kl": approx_kl,
        "clipfrac": clipfrac,
    }
    return loss, stats


def _check_same_shape(**tensors: Tensor) -> None:
    """Mismatched shapes ([B, 1] against [B]) would broadcast to [B, B] silently."""
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    first = next(iter(shapes.values()))
    if len(first) != 1 or any(shape != first for shape in shapes.values()):
        raise ValueError(f"ppo_loss needs 1-D tensors of one shape [B], got {shapes}")


def linear_lr(
    cfg: PPOConfig,
    iteration: int,
    num_iterations: int,
    start: tuple[int, float] | None = None,
) -> float:
    """The learning rate for ``iteration`` (1-based, as in CleanRL) of ``num_iterations``.

    With ``anneal_lr`` it decays linearly from ``learning_rate`` at iteration 1 towards 0
    (``learning_rate / num_iterations`` at the last iteration), "37 details" no. 4;
    without it, it is constant. ``start = (k, lr)`` restarts the decay after iteration
    ``k`` at ``lr`` over the iterations left: a resumed run whose budget was extended (or
    whose learning rate was changed) continues from the rate it had reached, instead of
    jumping back up from near 0.
    """
    if not 1 <= iteration <= num_iterations:
        raise ValueError(f"iteration must lie in [1, {num_iterations}], got {iteration}")
    if not cfg.anneal_lr:
        return cfg.learning_rate
    done, lr = start or (0, cfg.learning_rate)
    if not 0 <= done < iteration:
        raise ValueError(f"the schedule restarts after iteration {done}, before {iteration}")
    return lr * (1.0 - (iteration - 1.0 - done) / (num_iterations - done))


def explained_variance(values: Tensor, returns: Tensor) -> float:
    """``1 - Var[returns - values] / Var[returns]``: 1 is a perfect value function, 0 no
    better than a constant, negative worse; NaN when the returns are constant.

    Reads one number back to the host: call it once per iteration on the flat batch.
    """
    y = returns.detach().flatten()
    var_y = y.var(correction=0)
    explained = 1.0 - (y - values.detach().flatten()).var(correction=0) / var_y
    return float(torch.where(var_y == 0, torch.nan, explained))
