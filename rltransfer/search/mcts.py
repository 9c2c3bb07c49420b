"""Batched Monte Carlo tree search: one search over N boards, trees held as tensors.

Every simulation advances all N trees together (:mod:`rltransfer.search.tree` holds the
layout): descend from the root by the selection rule to an unexpanded action or a finished
game, add the node there with one batched ``game.step``, evaluate it (random rollouts or a
network, :mod:`rltransfer.search.evaluators`), back the value up the path, and, with
``solve``, propagate proven results. Python loops run over simulations and tree depth,
never over boards. Host syncs: one per simulation reads the tree's depth (the bound of the
next descent), and rollouts check every 8 plies off the CPU whether all games are over.

Selection rules (``SearchConfig.rule``):

* ``"uct"``: ``Q + c * sqrt(ln N_parent / n)``, unvisited actions first (in a random order
  per node). With values in [-1, 1] this is OpenSpiel's ``SearchNode.uct_value``, so
  ``c = 2`` means what ``MCTSBot(uct_c=2)`` means.
* ``"puct"``: ``Q + c * P * sqrt(N_parent) / (1 + n)`` with the prior ``P`` of the
  evaluator (uniform for rollouts), ``Q = 0`` for unvisited actions; optional Dirichlet
  noise at the root (AlphaZero).
* ``"gumbel"``: Gumbel root selection with sequential halving, and the deterministic
  rule below the root (:mod:`rltransfer.search.gumbel`).

With ``solve`` a proven child scores its proven value (+1 / 0 / -1, no exploration bonus),
as in OpenSpiel's MCTS-solver, and the move played prefers proven wins: UCT and PUCT play
the best child by (proven result, visits, value), Gumbel its own choice unless a root
action is a proven win.

The root is evaluated once before the first simulation (a rollout, or the network's
prior and value) and counts one visit, as OpenSpiel's first simulation does: ``S``
simulations make ``S`` child visits at the root, the work of ``MCTSBot(max_simulations=S+1)``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
from torch import Tensor

from rltransfer.errors import UserError
from rltransfer.games.core import BoardGame, State
from rltransfer.search import gumbel, noise
from rltransfer.search.evaluators import Evaluator
from rltransfer.search.tree import UNPROVEN, Tree, add_node, backup, new_tree, solve

Rule = Literal["uct", "puct", "gumbel"]
RULES: tuple[Rule, ...] = ("uct", "puct", "gumbel")
#: The most simulations one search may run (a bound for values from files and flags).
MAX_SIMULATIONS = 100_000


class UnsearchableGameError(UserError, TypeError):
    """A game whose states cannot be stepped twice (forward-only PettingZoo envs)."""


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """How to search: simulations, selection rule and its constants (module docstring)."""

    simulations: int
    rule: Rule = "uct"
    c: float = 2.0  # UCT's or PUCT's exploration constant
    solve: bool = True  # propagate proven wins, losses and draws
    dirichlet: tuple[float, float] | None = None  # PUCT root noise (epsilon, alpha)
    max_considered: int = 16  # Gumbel: actions sampled at the root
    c_visit: float = 50.0  # Gumbel: sigma's constants (the paper's values)
    c_scale: float = 1.0

    def __post_init__(self) -> None:
        s = self.simulations
        if isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= MAX_SIMULATIONS:
            raise ValueError(f"simulations must be an int in 1..{MAX_SIMULATIONS}, got {s!r}")
        if self.rule not in RULES:
            raise ValueError(f"rule must be one of {', '.join(RULES)}, got {self.rule!r}")
        if not (math.isfinite(self.c) and self.c >= 0):
            raise ValueError(f"c must be a finite number >= 0, got {self.c!r}")
        if self.dirichlet is not None:
            eps, alpha = self.dirichlet
            if self.rule != "puct" or not (0 <= eps <= 1 and alpha > 0):
                raise ValueError(
                    f"dirichlet=(epsilon, alpha) needs rule='puct', 0 <= epsilon <= 1 and "
                    f"alpha > 0; got {self.dirichlet!r} with rule={self.rule!r}"
                )
        if self.max_considered < 1:
            raise ValueError(f"max_considered must be >= 1, got {self.max_considered}")


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """What a search found, per board; every value is from the root mover's view."""

    action: Tensor  # [N] int64: the move to play (0 on finished boards)
    visits: Tensor  # [N, A] float32: visits of each root action (they sum to S)
    q: Tensor  # [N, A] float32: mean value of each root action (0 where unvisited)
    proven: Tensor  # [N, A] int8: proven result of each root action, or UNPROVEN
    value: Tensor  # [N] float32: the root's mean value
    outcome: Tensor  # [N] int8: the root's proven result, or UNPROVEN
    policy: Tensor  # [N, A] float32: visit shares (uct, puct) or Gumbel's improved policy
    tree: Tree


@torch.no_grad()
def search(
    game: BoardGame,
    state: State,
    evaluator: Evaluator,
    config: SearchConfig,
    generator: torch.Generator | None = None,
    keys: Tensor | None = None,
) -> SearchResult:
    """Search every board of ``state`` with ``config.simulations`` simulations.

    Random numbers come from per-board ``keys`` [N] (drawn from ``generator`` unless given;
    see :mod:`rltransfer.search.noise`), so a board searched alone with its key gives the
    same result as in a batch. Dirichlet noise, the one exception, is drawn from
    ``generator``. Raises :class:`UnsearchableGameError` for a forward-only game.
    """
    if not game.functional:
        raise UnsearchableGameError(
            f"{game.id}: search steps copies of the boards, which this game does not allow "
            "(a forward-only game, e.g. a PettingZoo env); search works on rltransfer's "
            "own games"
        )
    n, s = state.batch_size, config.simulations
    keys = (
        noise.board_keys(n, generator, state.device)
        if keys is None
        else noise.check_keys(keys, n, state.device)
    )
    with_logits = evaluator.gives_priors or config.dirichlet is not None
    tree = new_tree(game, state, s + 2, keys, with_logits)
    _evaluate_root(tree, game, state, evaluator, keys, config, generator)
    root = _GumbelRoot.make(tree, keys, config) if config.rule == "gumbel" else None
    depth = 0  # the deepest node of any tree, known on the host
    for sim in range(s):
        walk = _descend(tree, config, depth + 1, sim, root)
        node, leaf_state = add_node(tree, game, keys, walk.parent, walk.action, walk.added)
        value = _leaf_value(tree, game, leaf_state, evaluator, keys, sim, node, walk)
        columns = torch.arange(walk.path.shape[1], device=node.device).expand_as(walk.path)
        path = torch.cat([walk.path, node[:, None]], dim=1)
        backup(tree, path, torch.cat([columns, walk.depth[:, None] + 1], dim=1), value)
        if config.solve:
            solve(tree, path, walk.added & leaf_state.terminated)
        new_depth = torch.where(walk.added, walk.depth + 1, 0)
        depth = max(depth, int(new_depth.max()))  # the one host sync per simulation
    return _result(tree, config, root)


def _evaluate_root(
    tree: Tree,
    game: BoardGame,
    state: State,
    evaluator: Evaluator,
    keys: Tensor,
    config: SearchConfig,
    generator: torch.Generator | None,
) -> None:
    """The root's first visit: the evaluator's value (and prior), Dirichlet noise."""
    ev = evaluator.evaluate(game, state, keys, config.simulations)
    live = ~state.terminated
    tree.visits[:, 0] = 1.0
    tree.value_sum[:, 0] = torch.where(live, ev.value, 0.0)
    tree.net_value[:, 0] = tree.value_sum[:, 0]
    if ev.logits is not None:
        tree.logits[:, 0] = ev.logits
    if config.dirichlet is not None:
        eps, alpha = config.dirichlet
        legal = tree.legal[:, 0]
        where = generator.device if generator is not None else torch.device("cpu")
        alphas = torch.full(legal.shape, alpha, device=where)
        # one Gamma(alpha) draw per action; normalised over the legal ones, a Dirichlet
        draw = torch._standard_gamma(alphas, generator=generator).to(legal.device)
        share = torch.where(legal, draw, 0.0)
        share = share / share.sum(dim=1, keepdim=True).clamp(min=1e-30)
        prior = torch.softmax(torch.where(legal, tree.logits[:, 0], -math.inf), dim=1)
        mixed = (1 - eps) * prior + eps * share
        tree.logits[:, 0] = torch.where(legal, mixed.clamp(min=1e-30).log(), 0.0)


@dataclasses.dataclass(frozen=True)
class _GumbelRoot:
    """What the Gumbel rule fixes at the root before the first simulation."""

    score: Tensor  # [N, A] Gumbel noise + prior logits (-inf where illegal)
    considered: Tensor  # [N, A] bool
    targets: Tensor  # [N, S] int64: the visit count a root action needs at simulation k

    @classmethod
    def make(cls, tree: Tree, keys: Tensor, config: SearchConfig) -> _GumbelRoot:
        legal = tree.legal[:, 0]
        actions = torch.arange(legal.shape[1], device=keys.device)
        g = noise.gumbel(noise.bits(noise.bits(keys, noise.GUMBEL)[:, None], actions))
        score = torch.where(legal, g + tree.logits[:, 0], -math.inf)
        chosen, m = gumbel.considered(score, legal, config.max_considered)
        table = gumbel.visit_schedule(config.max_considered, config.simulations, keys.device)
        return cls(score=score, considered=chosen, targets=table[m])

    def scores(self, tree: Tree, config: SearchConfig) -> Tensor:
        """[N, A] ``g + logits + sigma(q)`` of the root actions (-inf where illegal)."""
        root = torch.zeros(tree.batch_size, dtype=torch.int64, device=self.score.device)
        q01, visits, _ = _completed(tree, root, config)
        return self.score + gumbel.sigma(q01, visits, config.c_visit, config.c_scale)

    def select(self, tree: Tree, config: SearchConfig, sim: int) -> Tensor:
        """[N] the root action of simulation ``sim``: the best considered action among
        those with the visit count the schedule asks for."""
        score = self.scores(tree, config)
        kids, _ = tree.edges(torch.zeros_like(self.targets[:, 0]))
        visits, _, _ = tree.child_stats(kids)
        due = self.considered & (visits == self.targets[:, sim : sim + 1])
        due = torch.where(due.any(dim=1, keepdim=True), due, self.considered)
        return _best(torch.where(due, score, -math.inf), tree.order[:, 0])


@dataclasses.dataclass(frozen=True)
class _Descent:
    """One simulation's way down: ``path`` [N, L] (node at depth d in column d, the
    scratch slot below the end), where it ended (``end``, at ``depth``) and, where it
    reached an unexpanded action, that action of ``parent`` (``added``)."""

    path: Tensor
    end: Tensor
    depth: Tensor
    parent: Tensor
    action: Tensor
    added: Tensor


def _descend(
    tree: Tree, config: SearchConfig, levels: int, sim: int, root: _GumbelRoot | None
) -> _Descent:
    """Walk every tree from the root for at most ``levels`` steps (the deepest node + 1:
    enough for every board to reach an unexpanded action or a finished game). On the CPU
    the walk ends once every board has stopped (a free check there); the path's later
    entries would all have been padding."""
    n, dev = tree.batch_size, tree.visits.device
    ar = torch.arange(n, device=dev)
    node = torch.zeros(n, dtype=torch.int64, device=dev)
    depth = torch.zeros_like(node)
    action = torch.zeros_like(node)
    stop = tree.terminal[:, 0].clone()
    added = torch.zeros_like(stop)
    path = [node]
    for level in range(levels):
        if level > 0 and dev.type == "cpu" and bool(stop.all()):
            break
        if level == 0 and root is not None:
            choice = root.select(tree, config, sim)
        else:
            choice = _best(_scores(tree, node, config), tree.order[ar, node])
        child = tree.children[ar, node, choice].long()
        new = ~stop & (child < 0)
        action = torch.where(new, choice, action)
        added = added | new
        down = ~stop & (child >= 0)
        node = torch.where(down, child, node)
        depth = depth + down.to(torch.int64)
        path.append(torch.where(down, child, tree.scratch))
        stop = stop | new | (down & tree.terminal[ar, node])
    return _Descent(torch.stack(path, dim=1), node, depth, node, action, added)


def _scores(tree: Tree, node: Tensor, config: SearchConfig) -> Tensor:
    """[N, A] selection scores of the actions of ``node`` [N] (-inf where illegal)."""
    kids, legal = tree.edges(node)
    if config.rule == "gumbel":
        q01, visits, logits = _completed(tree, node, config)
        improved = gumbel.improved_logits(
            logits, legal, q01, visits, config.c_visit, config.c_scale
        )
        return gumbel.interior_scores(improved, visits)
    visits, value, proven = tree.child_stats(kids)
    ar = torch.arange(tree.batch_size, device=node.device)
    parent_visits = tree.visits[ar, node][:, None]
    q = value / visits.clamp(min=1.0)
    if config.rule == "uct":
        bonus = torch.sqrt(torch.log(parent_visits.clamp(min=1.0)) / visits.clamp(min=1.0))
        score = torch.where(visits > 0, q + config.c * bonus, math.inf)
    else:
        prior = torch.softmax(torch.where(legal, tree.logits[ar, node], -math.inf), dim=1)
        score = q + config.c * prior * parent_visits.sqrt() / (1.0 + visits)
    if config.solve:
        score = torch.where(proven != UNPROVEN, proven.to(score.dtype), score)
    return torch.where(legal, score, -math.inf)


def _completed(tree: Tree, node: Tensor, config: SearchConfig) -> tuple[Tensor, Tensor, Tensor]:
    """(completed q in [0, 1], visits, prior logits) [N, A] of the actions of ``node``;
    proven results replace the estimates where ``solve`` is on."""
    ar = torch.arange(tree.batch_size, device=node.device)
    kids, legal = tree.edges(node)
    visits, value, proven = tree.child_stats(kids)
    q = value / visits.clamp(min=1.0)
    if config.solve:
        q = torch.where(proven != UNPROVEN, proven.to(q.dtype), q)
    logits = tree.logits[ar, node]
    prior = torch.softmax(torch.where(legal, logits, -math.inf), dim=1)
    return gumbel.completed_q(q, visits, prior, tree.net_value[ar, node]), visits, logits


def _best(score: Tensor, order: Tensor) -> Tensor:
    """[N] the column of the highest ``score`` [N, A], ties to the highest ``order``."""
    top = score == score.amax(dim=1, keepdim=True)
    return torch.where(top, order, -1).argmax(dim=1)


def _leaf_value(
    tree: Tree,
    game: BoardGame,
    leaf: State,
    evaluator: Evaluator,
    keys: Tensor,
    sim: int,
    node: Tensor,
    walk: _Descent,
) -> Tensor:
    """[N] the value of each simulation's leaf for its mover: a finished game's result
    (new or met again), else the evaluator's value of the new node, stored with its
    prior."""
    ar = torch.arange(tree.batch_size, device=node.device)
    ev = evaluator.evaluate(game, leaf, keys, sim)
    result = tree.outcome[ar, node].to(torch.float32)  # proven at once where terminal
    fresh = torch.where(leaf.terminated, result, ev.value)
    tree.net_value[ar, node] = fresh
    if ev.logits is not None:
        tree.logits[ar, node] = ev.logits
    met = tree.outcome[ar, walk.end].to(torch.float32)
    return torch.where(walk.added, fresh, torch.where(tree.terminal[ar, walk.end], met, 0.0))


def _result(tree: Tree, config: SearchConfig, root: _GumbelRoot | None) -> SearchResult:
    """The move to play and the root's statistics (see :class:`SearchResult`)."""
    zero = torch.zeros(tree.batch_size, dtype=torch.int64, device=tree.visits.device)
    kids, legal = tree.edges(zero)
    visits, value, proven = tree.child_stats(kids)
    q = value / visits.clamp(min=1.0)
    order = tree.order[:, 0]
    win = legal & (proven == 1) if config.solve else torch.zeros_like(legal)
    if root is None:
        policy = visits / visits.sum(dim=1, keepdim=True).clamp(min=1.0)
        result = torch.where(proven != UNPROVEN, proven, 0) if config.solve else 0 * proven
        first = torch.where(legal, result.to(torch.float32), -math.inf)
        action = _lexicographic([first, visits, value], order)
    else:
        q01, _, logits = _completed(tree, zero, config)
        improved = gumbel.improved_logits(
            logits, legal, q01, visits, config.c_visit, config.c_scale
        )
        policy = torch.softmax(improved, dim=1).nan_to_num(0.0)
        most = root.considered & (visits == torch.where(root.considered, visits, -1).amax(1, True))
        action = _best(torch.where(most, root.scores(tree, config), -math.inf), order)
        action = torch.where(win.any(dim=1), _best(torch.where(win, visits, -1.0), order), action)
    root_visits = tree.visits[:, 0]
    return SearchResult(
        action=action,
        visits=visits,
        q=q,
        proven=proven.to(torch.int8),
        value=tree.value_sum[:, 0] / root_visits.clamp(min=1.0),
        outcome=tree.outcome[:, 0],
        policy=policy,
        tree=tree,
    )


def _lexicographic(scores: list[Tensor], order: Tensor) -> Tensor:
    """[N] the column that is best by ``scores[0]``, then ``scores[1]``, ... (each [N, A]),
    remaining ties to the highest ``order``."""
    keep = torch.ones_like(scores[0], dtype=torch.bool)
    for score in scores:
        masked = torch.where(keep, score, -math.inf)
        keep = keep & (masked == masked.amax(dim=1, keepdim=True))
    return torch.where(keep, order, -1).argmax(dim=1)
