"""The agent-against-opponent rule, batched: one home for the collector and the views.

An *agent* holds seat ``seat[i]`` (0 or 1) on board ``i`` and an opponent the other seat.
The agent only ever observes boards where it is to move, so

1. :func:`reply`: wherever the game goes on and the opponent is to move, it moves, through
   ``game.step(..., where=)``: every other board comes back exactly as it was, its
   ``reward`` included, so the result of a game that the agent's own move just ended
   survives the reply. Forward-only games (PettingZoo envs) step only the boards that move.
2. :func:`play`: the agent's move on every board, then the reply; the agent's reward is
   read once, after both plies (at most one of them ended the game).
3. :func:`restart`: finished boards start again (``game.reset_where``) with the agent in
   its new seat; where that seat is 1 the opponent opens at once.

``opponent(state, moving)`` gives ``[N]`` actions; it may ignore ``moving`` (the boards
where its move is played; any legal-or-not action elsewhere is discarded) or use it to
skip work, as the collector does for scripted opponents with nobody to move.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from rltransfer.games.core import BoardGame, State

#: ``opponent(state, moving) -> [N] int64`` actions; only the boards in ``moving`` play them.
Reply = Callable[[State, Tensor], Tensor]


def opponent_to_move(state: State, seat: Tensor) -> Tensor:
    """[N] bool: live boards where the player who is not ``seat`` is to move."""
    return ~state.terminated & (state.current_player != seat)


def seat_reward(state: State, seat: Tensor) -> Tensor:
    """[N] float32: the reward of player ``seat`` [N] for the step that produced ``state``."""
    return state.reward * (1.0 - 2.0 * seat.to(torch.float32))


def reply(game: BoardGame, state: State, seat: Tensor, opponent: Reply) -> State:
    """The opponent's move wherever it is to move; every other board unchanged."""
    moving = opponent_to_move(state, seat)
    return game.step(state, opponent(state, moving), where=moving)


def play(
    game: BoardGame, state: State, seat: Tensor, action: Tensor, opponent: Reply
) -> tuple[State, Tensor]:
    """The agent's ``action`` [N] on every board, then the opponent's reply.

    Returns the new state and the agent's reward [N] (from its seat) for the two plies.
    """
    state = reply(game, game.step(state, action), seat, opponent)
    return state, seat_reward(state, seat)


def restart(
    game: BoardGame,
    state: State,
    done: Tensor,
    seat: Tensor,
    opponent: Reply,
    generator: torch.Generator | None = None,
) -> State:
    """Boards in ``done`` start again, the agent in ``seat`` [N] (its seat in the new
    game); where the opponent moves first there, it opens. Other boards are unchanged."""
    return reply(game, game.reset_where(state, done, generator), seat, opponent)
