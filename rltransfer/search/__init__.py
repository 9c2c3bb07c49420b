"""Batched tree search over the functional games (MCTS with rollouts or a network).

* :mod:`.mcts`: the engine, :func:`search` with :class:`SearchConfig` (UCT, PUCT, Gumbel).
* :mod:`.tree`: the trees of N boards as tensors; backup and the solver.
* :mod:`.evaluators`: leaf values from random rollouts or a :class:`PolicyNet`.
* :mod:`.gumbel`: Gumbel root selection with sequential halving.
* :mod:`.noise`: per-board random numbers, so a batch searches as its boards would alone.
* :mod:`.player`: ``mcts:S`` and network players that search.
"""

from rltransfer.search.evaluators import Evaluation, Evaluator, NetworkEvaluator, RolloutEvaluator
from rltransfer.search.mcts import (
    MAX_SIMULATIONS,
    SearchConfig,
    SearchResult,
    UnsearchableGameError,
    search,
)
from rltransfer.search.player import MCTSPlayer, SearchPlayer
from rltransfer.search.tree import UNPROVEN

__all__ = [
    "MAX_SIMULATIONS",
    "UNPROVEN",
    "Evaluation",
    "Evaluator",
    "MCTSPlayer",
    "NetworkEvaluator",
    "RolloutEvaluator",
    "SearchConfig",
    "SearchPlayer",
    "SearchResult",
    "UnsearchableGameError",
    "search",
]
