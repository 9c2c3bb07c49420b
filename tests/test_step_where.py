"""The template's partial moves: ``step(state, action, where=...)`` and ``reset_where``.

On every native game: boards outside ``where`` come back bit for bit (reward included),
boards inside move exactly as a full step moves them, and ``where=None`` is a full step;
``reset_where`` gives fresh boards where asked and leaves the others alone.
"""

from __future__ import annotations

import pytest
import torch

from rltransfer.games import available_games, make
from rltransfer.games.core import Game, IllegalActionError, State


def _played(game: Game, plies: int, n: int = 16, seed: int = 0) -> State:
    gen = torch.Generator().manual_seed(seed)
    state = game.init(n, gen)
    for _ in range(plies):
        state = game.reset_where(state, state.terminated)
        state = game.step(state, game.random_action(state, gen))
    return state


def _same(a: State, b: State, rows: torch.Tensor) -> None:
    for k, v in a.tensors().items():
        assert torch.equal(v[rows], b.tensors()[k][rows]), k


@pytest.mark.parametrize("game_id", available_games())
def test_step_where_moves_only_the_selected_boards(game_id: str) -> None:
    game = make(game_id)
    gen = torch.Generator().manual_seed(1)
    state = _played(game, 5)  # some boards finished along the way, then restarted
    state = game.step(state, game.random_action(state, gen))  # some just finished: reward != 0
    action = game.random_action(state, gen)
    where = torch.arange(state.batch_size) % 3 == 0
    part, full = game.step(state, action, where=where), game.step(state, action)
    _same(part, state, ~where)  # untouched, reward and terminated included
    _same(part, full, where)
    _same(game.step(state, action, where=None), full, torch.ones_like(where))


def test_step_where_ignores_actions_of_unselected_boards() -> None:
    game = make("tic_tac_toe", illegal_action="raise")
    state = game.init(4)
    state = game.step(state, torch.tensor([0, 0, 0, 0]))
    where = torch.tensor([True, False, True, False])
    # cell 0 is taken now: illegal where selected, ignored (no raise, no forfeit) elsewhere
    after = game.step(state, torch.tensor([1, 0, 2, 0]), where=where)
    assert after.step_count.tolist() == [2, 1, 2, 1]
    assert not bool(after.terminated.any())
    with pytest.raises(IllegalActionError, match="board 0"):
        game.step(state, torch.tensor([0, 1, 1, 1]), where=where)
    lose = make("tic_tac_toe")
    forfeit = lose.step(state, torch.tensor([0, 0, 4, 4]), where=where)
    assert forfeit.terminated.tolist() == [True, False, False, False]
    assert forfeit.reward.tolist() == [1.0, 0.0, 0.0, 0.0]  # player 1 moved illegally


def test_step_where_keeps_the_result_of_a_finished_board() -> None:
    """The collector's opponent move: a board the learner's ply ended keeps its reward."""
    game = make("tic_tac_toe")
    state = game.init(2)
    for a in [0, 3, 1, 4]:
        state = game.step(state, torch.tensor([a, a]))
    won = game.step(state, torch.tensor([2, 8]))  # board 0: X completes the top row
    assert won.terminated.tolist() == [True, False] and won.reward[0] == 1.0
    reply = game.step(won, torch.tensor([5, 5]), where=~won.terminated)
    assert reply.reward[0] == 1.0 and bool(reply.terminated[0])
    # a selected finished board gets zero reward, as in a full step
    assert game.step(won, torch.tensor([5, 5])).reward[0] == 0.0


@pytest.mark.parametrize("game_id", available_games())
def test_reset_where_restarts_only_the_done_boards(game_id: str) -> None:
    game = make(game_id)
    state = _played(game, 4, n=8)
    done = torch.tensor([True, False] * 4)
    fresh = game.init(8)
    after = game.reset_where(state, done)
    _same(after, fresh, done)
    _same(after, state, ~done)
    assert game.reset_where(after, done) is not after  # a new state; input unchanged
    _same(after, game.reset_where(state, done), torch.ones(8, dtype=torch.bool))
