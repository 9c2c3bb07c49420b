"""How much a transfer bought: metrics on learning curves.

**Metrics** (Taylor & Stone 2009, "Transfer Learning for Reinforcement Learning Domains:
A Survey", JMLR 10), on learning curves of evaluation score against learner steps, both
arms evaluated on the same schedule:

* *jumpstart*: score at step 0 (before any training), transfer minus scratch;
* *asymptotic gain*: final score, transfer minus scratch;
* *time-to-threshold ratio*: steps for transfer to first reach the threshold score,
  divided by the steps scratch needs (< 1: transfer is faster); undefined ("not
  reached") when either arm never reaches it;
* *area ratio*: (area under the transfer curve - area under the scratch curve) / area
  under the scratch curve, areas by the trapezoid rule over steps (> 0: transfer better);
* beside them, the *few-shot* score: at the first evaluation past a small fixed budget
  (experiments: 5% of an arm's steps), and its gain, transfer minus scratch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

Curve = Sequence[tuple[int, float]]  # (learner steps, score), sorted by steps


def _check(curve: Curve) -> None:
    if not curve:
        raise ValueError("a learning curve needs at least one point")
    steps = [s for s, _ in curve]
    if steps != sorted(steps):
        raise ValueError("a learning curve's steps must be sorted")


def jumpstart(transfer: Curve, scratch: Curve) -> float:
    """Initial performance gain: first score of transfer minus first score of scratch."""
    _check(transfer)
    _check(scratch)
    return transfer[0][1] - scratch[0][1]


def asymptotic_gain(transfer: Curve, scratch: Curve) -> float:
    """Final performance gain: last score of transfer minus last score of scratch."""
    _check(transfer)
    _check(scratch)
    return transfer[-1][1] - scratch[-1][1]


def time_to_threshold(curve: Curve, threshold: float, consecutive: int = 1) -> int | None:
    """Learner steps at the first evaluation from which ``consecutive`` evaluations in a row
    reach ``threshold`` (one noisy point above it is not a crossing); None if never."""
    _check(curve)
    scores = [score for _, score in curve]
    for i, (step, _) in enumerate(curve):
        run = scores[i : i + consecutive]
        if len(run) == consecutive and all(score >= threshold for score in run):
            return step
    return None


def time_to_threshold_ratio(
    transfer: Curve, scratch: Curve, threshold: float, consecutive: int = 1
) -> float | None:
    """Steps to threshold, transfer / scratch; None ("not reached") if either never does.

    A transfer that starts at the threshold (step 0) against a scratch run that needs
    ``s > 0`` steps has ratio 0; both at step 0 is a ratio of 1 (no difference).
    """
    t = time_to_threshold(transfer, threshold, consecutive)
    s = time_to_threshold(scratch, threshold, consecutive)
    if t is None or s is None:
        return None
    if s == 0:
        return 1.0 if t == 0 else math.inf
    return t / s


def few_shot(curve: Curve, fraction: float) -> float:
    """The score after a small budget: at the first evaluation at or past ``fraction`` of
    the curve's last step (e.g. 0.05: after 5% of the arm's learner steps)."""
    _check(curve)
    budget = fraction * curve[-1][0]
    return next(score for step, score in curve if step >= budget)


def area(curve: Curve) -> float:
    """Area under a learning curve (trapezoid rule over steps)."""
    _check(curve)
    return sum((s1 - s0) * (y0 + y1) / 2 for (s0, y0), (s1, y1) in itertools.pairwise(curve))


def area_ratio(transfer: Curve, scratch: Curve) -> float | None:
    """(area(transfer) - area(scratch)) / area(scratch); None when scratch's area is 0."""
    a_s = area(scratch)
    return None if a_s == 0 else (area(transfer) - a_s) / a_s
