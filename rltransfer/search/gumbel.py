"""Gumbel root selection with sequential halving, after Danihelka, Guez, Schrittwieser and
Silver (2022), "Policy improvement by planning with Gumbel" (ICLR).

At the root, ``m`` actions are *considered*: the top ``m`` of ``g(a) + logits(a)`` with
``g`` Gumbel noise (a sample without replacement from the prior). Sequential halving
spreads the simulations over ``ceil(log2 m)`` phases; each phase visits every remaining
action equally often, then keeps the better half by ``g + logits + sigma(q)``. The action
played is the best remaining one by the same score. With the sample and the scores tied
together so, the played action is an improvement on the prior in expectation even with a
few simulations (the paper's Theorem 1), where AlphaZero's visit counts need many.

Batched, the phases become a *visit schedule*: simulation ``k`` visits, among the considered
actions that have exactly ``schedule[m, k]`` visits, the one with the best score. The
actions a phase drops are simply never raised to the next visit level.

Below the root, the paper's deterministic rule picks ``argmax(pi'(a) - N(a) / (1 + sum N))``
with ``pi' = softmax(logits + sigma(completed q))``: unvisited actions get the *mixed value*
``v_mix`` (the node's own value and the prior-weighted values of the visited actions), and
``sigma(q) = (c_visit + max N) * c_scale * q`` on values rescaled from ``[-1, 1]`` to
``[0, 1]`` (our values are bounded, so the fixed rescale replaces the paper's min-max one).
``softmax(logits + sigma(completed q))`` at the root is the improved policy, a training target.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor


@functools.cache
def _schedule_rows(max_considered: int, simulations: int) -> tuple[tuple[int, ...], ...]:
    """Per number of considered actions ``m`` (0 .. max_considered): the visit count an
    action must have to be chosen at each simulation (see the module docstring)."""
    rows = [tuple(range(simulations))]  # m = 0 never happens; any row will do
    for m in range(1, max_considered + 1):
        phases = max(1, math.ceil(math.log2(m)))
        level, remaining = 0, m
        row: list[int] = []
        while len(row) < simulations:
            rounds = max(1, simulations // (phases * remaining))
            for _ in range(rounds):
                row.extend([level] * remaining)
                level += 1
            remaining = max(2, remaining // 2) if m > 1 else 1
        rows.append(tuple(row[:simulations]))
    return tuple(rows)


def visit_schedule(max_considered: int, simulations: int, device: torch.device) -> Tensor:
    """[max_considered + 1, simulations] int64: ``[m, k]`` is the visit count a considered
    action must have to be visited at simulation ``k`` when ``m`` actions are considered."""
    return torch.tensor(_schedule_rows(max_considered, simulations), device=device)


def considered(score: Tensor, legal: Tensor, max_considered: int) -> tuple[Tensor, Tensor]:
    """(considered [N, A] bool, their number m [N]): the top ``min(max_considered, legal
    count)`` legal actions by ``score`` = Gumbel + logits."""
    m = legal.sum(dim=1).clamp(max=max_considered)
    ranks = torch.where(legal, score, -math.inf).argsort(dim=1, descending=True).argsort(dim=1)
    return legal & (ranks < m[:, None]), m


def sigma(q01: Tensor, visits: Tensor, c_visit: float, c_scale: float) -> Tensor:
    """The paper's monotone transform of values in [0, 1], scaled by the most visits."""
    return (c_visit + visits.amax(dim=1, keepdim=True)) * c_scale * q01


def completed_q(q: Tensor, visits: Tensor, prior: Tensor, node_value: Tensor) -> Tensor:
    """[N, A] values in [0, 1] from the node's mover's view: the mean value ``q`` [N, A]
    (in [-1, 1]) of each visited action, ``v_mix`` for the unvisited ones.

    ``v_mix = (v + sum N * sum_visited(prior * q) / sum_visited(prior)) / (1 + sum N)``, with
    ``v`` = ``node_value`` [N], the evaluator's value of the node itself.
    """
    seen = visits > 0
    total = visits.sum(dim=1)
    mass = torch.where(seen, prior, 0.0).sum(dim=1)
    weighted = torch.where(seen, prior * q, 0.0).sum(dim=1) / mass.clamp(min=1e-12)
    v_mix = (node_value + total * weighted) / (1.0 + total)
    return (torch.where(seen, q, v_mix[:, None]) + 1.0) / 2.0


def improved_logits(
    logits: Tensor, legal: Tensor, q01: Tensor, visits: Tensor, c_visit: float, c_scale: float
) -> Tensor:
    """[N, A] ``logits + sigma(completed q)`` on legal actions, ``-inf`` elsewhere."""
    return torch.where(legal, logits + sigma(q01, visits, c_visit, c_scale), -math.inf)


def interior_scores(improved: Tensor, visits: Tensor) -> Tensor:
    """[N, A] the deterministic below-root rule: ``pi'(a) - N(a) / (1 + sum N)``
    (``-inf`` on illegal actions, where ``improved`` is ``-inf``)."""
    policy = torch.softmax(improved, dim=1)
    score = policy - visits / (1.0 + visits.sum(dim=1, keepdim=True))
    return torch.where(improved > -math.inf, score, -math.inf)
