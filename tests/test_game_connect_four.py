"""Scripted Connect Four games: exact boards, masks, rewards, terminal flags, column mapping."""

from __future__ import annotations

import pytest
import torch

from rltransfer.games import make
from rltransfer.games.connect_four import ConnectFour
from rltransfer.games.core import State


def play_columns(columns: list[int]) -> tuple[ConnectFour, State, list[State]]:
    game = make("connect_four")
    assert isinstance(game, ConnectFour)
    state = game.init(1)
    history = [state]
    for col in columns:
        action = game.column_to_action(state, torch.tensor([col]))
        state = game.step(state, action)
        history.append(state)
    return game, state, history


EMPTY_ROW = "......."


@pytest.mark.parametrize(
    ("columns", "bottom_rows", "winner"),
    [
        # horizontal, player 0 along the bottom
        ([0, 0, 1, 1, 2, 2, 3], ["OOO....", "XXXX..."], 0),
        # vertical, player 1 in column 6
        ([0, 6, 1, 6, 0, 6, 1, 6], ["......O", "......O", "XX....O", "XX....O"], 1),
        # diagonal rising to the right
        ([0, 1, 1, 2, 2, 3, 2, 3, 3, 5, 3], ["...X...", "..XX...", ".XXO...", "XOOO.O."], 0),
        # diagonal falling to the right (rising to the left)
        ([6, 5, 5, 4, 4, 3, 4, 3, 3, 1, 3], ["...X...", "...XX..", "...OXX.", ".O.OOOX"], 0),
    ],
)
def test_four_in_a_row_in_every_direction(
    columns: list[int], bottom_rows: list[str], winner: int
) -> None:
    game, state, history = play_columns(columns)
    rows = game.render_text(state).splitlines()
    assert rows[-len(bottom_rows) :] == bottom_rows
    assert all(r == EMPTY_ROW for r in rows[: -len(bottom_rows)])
    assert bool(state.terminated[0])
    assert state.rewards[0].tolist() == ([1.0, -1.0] if winner == 0 else [-1.0, 1.0])
    assert not any(bool(s.terminated[0]) for s in history[:-1])


def test_no_wrap_around_between_rows() -> None:
    # X holds the last three cells of one row and the first cell of the next: in row-major
    # cell order these are four consecutive cells, but not a line.
    game, state, _ = play_columns([0, 4, 4, 5, 5, 6, 6])
    assert game.render_text(state).splitlines()[-2:] == ["....XXX", "X...OOO"]
    assert not bool(state.terminated[0])


def test_legal_cells_are_landing_cells() -> None:
    game, state, _ = play_columns([3, 3, 3])
    mask = game.legal_mask(state)[0].view(6, 7)
    expected = torch.zeros(6, 7, dtype=torch.bool)
    expected[5] = True
    expected[5, 3] = False
    expected[2, 3] = True
    assert torch.equal(mask, expected)


def test_full_column_is_illegal_and_maps_to_its_top_cell() -> None:
    game, state, _ = play_columns([2] * 6)
    assert not bool(game.legal_mask(state)[0].view(6, 7)[:, 2].any())
    action = game.column_to_action(state, torch.tensor([2]))
    assert int(action[0]) == 2  # top cell of column 2
    lost = game.step(state, action)
    assert bool(lost.terminated[0]) and lost.rewards[0].tolist() == [-1.0, 1.0]
    assert game.render_text(lost) == game.render_text(state)


def test_floating_cell_is_illegal() -> None:
    game = make("connect_four")
    state = game.init(1)
    lost = game.step(state, torch.tensor([3]))  # row 0 of an empty column
    assert bool(lost.terminated[0]) and lost.rewards[0].tolist() == [-1.0, 1.0]
    assert game.render_text(lost) == "\n".join([EMPTY_ROW] * 6)


def test_draw_on_full_board() -> None:
    # A 42-ply game in which no four ever line up (found by search, checked by hand).
    order = [0, 1, 5, 5, 0, 2, 3, 2, 0, 3, 4, 5, 3, 6, 4, 3, 5, 6, 2, 2, 2]
    order += [2, 3, 0, 4, 1, 6, 1, 0, 4, 5, 0, 1, 1, 1, 4, 4, 3, 5, 6, 6, 6]
    game, state, history = play_columns(order)
    assert game.render_text(state) == "\n".join(
        ["OXOOXXO", "XOXXOXX", "OXOOOXO", "XOXXXOX", "XOOOXOO", "XOOXXXO"]
    )
    assert int(state.step_count[0]) == 42
    assert bool(state.terminated[0])
    assert state.rewards[0].tolist() == [0.0, 0.0]
    assert not any(bool(s.terminated[0]) for s in history[:-1])


def test_column_mapping_round_trip() -> None:
    game = make("connect_four")
    assert isinstance(game, ConnectFour)
    state = game.init(7)
    cols = torch.arange(7)
    actions = game.column_to_action(state, cols)
    assert actions.tolist() == [35, 36, 37, 38, 39, 40, 41]  # bottom row
    assert torch.equal(ConnectFour.action_to_column(actions), cols)


def test_column_to_action_survives_an_inexact_log2(monkeypatch: pytest.MonkeyPatch) -> None:
    """CUDA's log2 of 2^(8r) can come out just under 8r; the landing row must not drop."""
    exact = torch.Tensor.log2
    monkeypatch.setattr(torch.Tensor, "log2", lambda self: exact(self) - 1e-9)
    game = make("connect_four")
    gen = torch.Generator().manual_seed(0)
    state = game.init(512)
    for _ in range(20):
        action = game.random_action(state, gen)
        legal = game.legal_mask(state).gather(1, action[:, None]).squeeze(1)
        assert bool((legal | state.terminated).all())
        state = game.step(state, action)
