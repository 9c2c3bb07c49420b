"""Random playouts as fills (``Game.fill_result``, :mod:`rltransfer.games.fill`): the
result of filling a board in a given order equals the result of stepping that order move
by move with the game's checked ``step``, on live and finished boards, either mover to
play, for every game that offers the shortcut; the others answer ``None``."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

from rltransfer.games import make
from rltransfer.games.core import BoardGame, State
from rltransfer.games.fill import fill_ranks
from rltransfer.games.hex import Hex

FILLS = [
    ("hex", {"size": 5}), ("hex", {"size": 7}), ("hex", {"size": 8}), ("hex", {"size": 13}),
    ("tic_tac_toe", {}), ("gomoku", {"size": 7}), ("gomoku", {"size": 9}),
    ("mnk", {"m": 3, "n": 3, "k": 3}), ("mnk", {"m": 4, "n": 6, "k": 3}),
    ("mnk", {"m": 6, "n": 4, "k": 4}), ("mnk", {"m": 9, "n": 9, "k": 5}),
]  # fmt: skip


def positions(game: BoardGame, n: int, seed: int) -> State:
    """``n`` boards after 0 .. max_moves random plies each (some finished)."""
    gen = torch.Generator().manual_seed(seed)
    state = game.init(n)
    plies = torch.randint(0, game.max_moves + 1, (n,), generator=gen)
    for ply in range(game.max_moves):
        moving = ~state.terminated & (plies > ply)
        state = game.step(state, game.random_action(state, gen), moving)
    return state


def fill_by_stepping(game: BoardGame, state: State, priority: Tensor) -> Tensor:
    """Player 0's results of playing every live board to its end, each ply on the empty
    cell of lowest priority (ties: the lowest cell), one checked step at a time."""
    for _ in range(game.max_moves):
        empty = game.board(state).flatten(1) == 0
        cell = torch.where(empty, priority, torch.iinfo(torch.int64).max).argmin(dim=1)
        action = game.view_action(state, cell) if isinstance(game, Hex) else cell
        state = game.step(state, action, ~state.terminated)
    assert bool(state.terminated.all())
    return state.reward


@pytest.mark.parametrize(("game_id", "options"), FILLS)
@pytest.mark.parametrize("top", [2**32, 6], ids=["distinct", "ties"])
def test_a_fill_gives_the_result_of_playing_its_order_move_by_move(
    game_id: str, options: dict[str, Any], top: int
) -> None:
    game = make(game_id, **options)
    state = positions(game, 96, seed=game.max_moves)
    live = ~state.terminated
    assert 0 < int(live.sum()) < 96 and 0 < int(state.current_player[live].sum()) < int(live.sum())
    gen = torch.Generator().manual_seed(top)
    priority = torch.randint(0, top, (96, game.height * game.width), generator=gen)
    expected = fill_by_stepping(game, state, priority)
    results = set(expected[live].tolist())
    assert {-1.0, 1.0} <= results  # both players win some playouts
    assert torch.equal(game.fill_result(state, priority), expected)


@pytest.mark.parametrize(
    ("game_id", "options"),
    [
        ("connect_four", {}),
        ("othello", {"size": 6}),
        ("mnk", {"m": 6, "n": 7, "k": 4, "gravity": True}),
    ],
)
def test_games_whose_playouts_are_not_fills_answer_none(
    game_id: str, options: dict[str, Any]
) -> None:
    game = make(game_id, **options)
    priority = torch.zeros(4, game.height * game.width, dtype=torch.int64)
    assert game.fill_result(game.init(4), priority) is None


def test_fill_ranks_order_the_empty_cells_and_refuse_a_wrong_shape() -> None:
    empty = torch.tensor([[True, False, True, True]])
    rank = fill_ranks(empty, torch.tensor([[5, 0, 5, 1]]))
    assert rank[0, [3, 0, 2]].tolist() == [0, 1, 2]  # ties to the lower cell
    assert int(rank[0, 1]) == 3  # the occupied cell comes after every empty one
    top = torch.iinfo(torch.int64).max  # no sentinel value: any priority orders
    assert fill_ranks(torch.tensor([[False, True]]), torch.tensor([[0, top]])).tolist() == [[1, 0]]
    with pytest.raises(ValueError, match=r"priority must be \[N, H\*W\]"):
        fill_ranks(empty, torch.zeros(1, 5, dtype=torch.int64))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(("game_id", "options"), [("hex", {"size": 7}), ("gomoku", {"size": 9})])
def test_a_fill_on_cuda_gives_the_result_of_playing_its_order(
    game_id: str, options: dict[str, Any]
) -> None:
    game = make(game_id, **options)
    state = positions(game, 96, seed=1)
    priority = torch.randint(0, 6, (96, game.height * game.width))  # many ties
    expected = fill_by_stepping(game, state, priority)
    on_cuda = game.fill_result(state.to("cuda"), priority.cuda())
    assert on_cuda is not None and torch.equal(on_cuda.cpu(), expected)
