"""Scripted tic-tac-toe games with exact boards, masks, rewards and terminal flags."""

from __future__ import annotations

import pytest
import torch

from rltransfer.games import IllegalActionError, make
from rltransfer.games.core import State


def play(moves: list[int], **options: object) -> tuple[State, list[State]]:
    game = make("tic_tac_toe", **options)
    state = game.init(1)
    history = [state]
    for m in moves:
        state = game.step(state, torch.tensor([m]))
        history.append(state)
    return state, history


@pytest.mark.parametrize(
    ("moves", "board", "winner"),
    [
        ([0, 3, 1, 4, 2], "XXX\nOO.\n...", 0),  # top row
        ([3, 0, 4, 1, 8, 2], "OOO\nXX.\n..X", 1),  # player 1, top row
        ([0, 1, 3, 2, 6], "XOO\nX..\nX..", 0),  # left column
        ([0, 1, 4, 2, 8], "XOO\n.X.\n..X", 0),  # main diagonal
        ([2, 0, 4, 1, 6], "OOX\n.X.\nX..", 0),  # anti-diagonal
    ],
)
def test_wins(moves: list[int], board: str, winner: int) -> None:
    game = make("tic_tac_toe")
    state, history = play(moves)
    assert game.render_text(state) == board
    assert bool(state.terminated[0])
    expected = [1.0, -1.0] if winner == 0 else [-1.0, 1.0]
    assert state.rewards[0].tolist() == expected
    assert all(not bool(s.terminated[0]) for s in history[:-1])
    assert all(s.rewards.abs().sum() == 0 for s in history[:-1])


def test_draw_on_full_board() -> None:
    game = make("tic_tac_toe")
    state, _ = play([0, 1, 2, 4, 3, 5, 7, 6, 8])
    assert game.render_text(state) == "XOX\nXOO\nOXX"
    assert bool(state.terminated[0])
    assert state.rewards[0].tolist() == [0.0, 0.0]
    assert int(state.step_count[0]) == 9


def test_legal_mask_and_observation_follow_the_mover() -> None:
    game = make("tic_tac_toe")
    state, _ = play([4, 0])
    assert game.legal_mask(state)[0].tolist() == [False, True, True, True, False] + [True] * 4
    obs = game.observe(state)[0]  # X to move: own = X stones
    assert obs[0].flatten().tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert obs[1].flatten().tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 0]
    other = game.observe(state, player=torch.tensor([1]))[0]
    assert torch.equal(other, obs.flip(0))


def test_occupied_cell_loses_and_leaves_board_unchanged() -> None:
    game = make("tic_tac_toe")
    state, _ = play([4])
    lost = game.step(state, torch.tensor([4]))
    assert game.render_text(lost) == game.render_text(state) == "...\n.X.\n..."
    assert bool(lost.terminated[0])
    assert lost.rewards[0].tolist() == [1.0, -1.0]  # O (the mover) loses


def test_raise_mode_names_the_board_and_legal_moves() -> None:
    game = make("tic_tac_toe", illegal_action="raise")
    state = game.step(game.init(2), torch.tensor([4, 0]))
    with pytest.raises(IllegalActionError, match=r"action 0 is illegal on board 1.*legal actions"):
        game.step(state, torch.tensor([0, 0]))


def test_finished_board_is_frozen() -> None:
    game = make("tic_tac_toe")
    state, _ = play([0, 3, 1, 4, 2])
    again = game.step(state, torch.tensor([8]))
    assert game.render_text(again) == game.render_text(state)
    assert again.rewards.abs().sum() == 0
    assert bool(again.terminated[0])
    assert game.legal_mask(again).all()


def test_wrong_action_shape_and_dtype_are_errors() -> None:
    game = make("tic_tac_toe")
    state = game.init(3)
    with pytest.raises(ValueError, match=r"shape \[3\]"):
        game.step(state, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="integers"):
        game.step(state, torch.tensor([0.0, 1.0, 2.0]))
