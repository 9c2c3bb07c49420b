"""Players that search: the ``mcts:S`` yardstick, and a network that thinks before moving.

Both meet :class:`rltransfer.play.players.Player` (a ``name`` and ``act``) and run one
batched search over all the boards they are handed. Neither can play a forward-only game
(a PettingZoo env): ``searches = True`` tells ``rltransfer.play.players.plays`` so, and
``act`` raises :class:`~rltransfer.search.mcts.UnsearchableGameError` if called anyway.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rltransfer.games.core import BoardGame, State
from rltransfer.net.policy import PolicyNet
from rltransfer.search.evaluators import NetworkEvaluator, RolloutEvaluator
from rltransfer.search.mcts import SearchConfig, search

#: The yardstick's fixed settings: UCT with c = 2 on results in [-1, 1] (OpenSpiel's
#: ``MCTSBot(uct_c=2)``), one random rollout per leaf, proven results propagated.
MCTS_C = 2.0


class MCTSPlayer:
    """``mcts:S``: classic UCT with random rollouts and a solver, ``S`` simulations per
    move; plays a proven win if it found one, else the most visited move (ties broken by
    the per-board random order of :mod:`rltransfer.search.noise`, drawn from the
    generator). A fixed, documented yardstick: nothing about it is tunable but ``S``."""

    searches = True

    def __init__(self, simulations: int, name: str | None = None) -> None:
        self.config = SearchConfig(simulations=simulations, rule="uct", c=MCTS_C, solve=True)
        self.evaluator = RolloutEvaluator()
        self.name = name if name is not None else f"mcts:{simulations}"

    def act(self, game: BoardGame, state: State, generator: torch.Generator | None) -> Tensor:
        return search(game, state, self.evaluator, self.config, generator).action


class SearchPlayer:
    """A network's task searched with ``config`` (PUCT or Gumbel) before every move."""

    searches = True

    def __init__(
        self, net: PolicyNet, task: str, config: SearchConfig, name: str | None = None
    ) -> None:
        self.evaluator = NetworkEvaluator(net, task)
        self.config = config
        self.name = name if name is not None else f"search[{task}]:{config.simulations}"

    def act(self, game: BoardGame, state: State, generator: torch.Generator | None) -> Tensor:
        return search(game, state, self.evaluator, self.config, generator).action
