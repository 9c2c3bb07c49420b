"""Random playouts by a game's own loop (``Game.playout_result``; Connect Four's bitboard
loop): given the same random bits, the loop's result equals playing the same moves with
the game's checked ``step``, on live, won, drawn and forfeited boards, either mover to play;
its column choice is uniform over the open columns; games without a loop answer ``None``."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

from rltransfer.games import make
from rltransfer.games.connect_four import ConnectFour, ConnectFourState
from tests.test_games_fill import positions

DRAWS = 420  # the column table's range: lcm(1..7)


def play_by_stepping(game: ConnectFour, state: ConnectFourState, bits: Tensor) -> Tensor:
    """Player 0's results of playing every live board to its end, ply ``t`` in the column
    that ``bits[:, t]`` picks, one checked ``step`` at a time (a move into a full column
    would be illegal and forfeit: the checked step would say so)."""
    for ply in range(game.max_moves):
        free = ~(state.mover | state.other)
        column = game.random_column(free, (bits[:, ply] * DRAWS) >> 32)
        state = game.step(state, game.column_to_action(state, column), ~state.terminated)
    assert bool(state.terminated.all())
    return state.reward


def drawn_games() -> tuple[ConnectFourState, ConnectFourState]:
    """Random games that ended in a draw (a full board without four in a row; about 1 in
    400 random games): the finished boards, and the same boards one ply before the end."""
    game = ConnectFour()
    gen = torch.Generator().manual_seed(0)
    state = game.init(8192)
    for _ in range(game.max_moves - 1):
        state = game.step(state, game.random_action(state, gen), ~state.terminated)
    before = state
    state = game.step(state, game.random_action(state, gen), ~state.terminated)
    drawn = (state.reward == 0) & (state.step_count == game.max_moves)
    assert int(drawn.sum()) >= 2 and bool(state.terminated[drawn].all())
    return state.index(drawn), before.index(drawn)


def test_connect_fours_loop_gives_the_result_of_stepping_its_moves() -> None:
    game = ConnectFour()
    state = positions(game, 192, seed=7)
    live = ~state.terminated
    assert 0 < int(live.sum()) < 192 and 0 < int(state.current_player[live].sum()) < int(live.sum())
    for seed in range(3):
        bits = torch.randint(
            0, 2**32, (192, game.max_moves), generator=torch.Generator().manual_seed(seed)
        )
        expected = play_by_stepping(game, state, bits)
        assert {-1.0, 1.0} <= set(expected[live].tolist())  # both players win playouts
        assert {-1.0, 1.0} <= set(expected[~live].tolist())  # finished boards: their rewards
        assert torch.equal(game.playout_result(state, bits), expected)


def test_connect_fours_loop_keeps_finished_boards_and_plays_a_draw_out() -> None:
    game = ConnectFour()
    drawn, last_ply = drawn_games()
    assert not bool(last_ply.terminated.any())  # one open column left, no four to make
    forfeit = game.step(game.init(1), torch.tensor([0]))  # the top-left cell: illegal
    assert bool(forfeit.terminated) and float(forfeit.reward) == -1.0
    state = ConnectFourState.cat([drawn, forfeit, last_ply])
    n = state.batch_size
    expected = [0.0] * drawn.batch_size + [-1.0] + [0.0] * last_ply.batch_size
    bits = torch.randint(0, 2**32, (n, game.max_moves), generator=torch.Generator().manual_seed(0))
    assert game.playout_result(state, bits).tolist() == expected
    assert play_by_stepping(game, state, bits).tolist() == expected


def test_the_column_choice_is_uniform_over_the_open_columns() -> None:
    """Every pattern of open columns, every draw in [0, 420): each open column exactly
    420 / k times, never a full one."""
    game = ConnectFour()
    patterns = torch.arange(1, 128).repeat_interleave(DRAWS)
    u = torch.arange(DRAWS).repeat(127)
    free = patterns | ~torch.tensor(127)  # the top row says which columns are open
    column = game.random_column(free, u).view(127, DRAWS)
    for pattern in range(1, 128):
        open_columns = [c for c in range(7) if pattern >> c & 1]
        counts = torch.bincount(column[pattern - 1], minlength=7)
        assert counts.tolist() == [
            DRAWS // len(open_columns) if c in open_columns else 0 for c in range(7)
        ]


def test_an_empty_batch_plays_nothing() -> None:
    game = ConnectFour()
    empty = game.init(2).index(torch.tensor([], dtype=torch.int64))
    result = game.playout_result(empty, torch.zeros(0, game.max_moves, dtype=torch.int64))
    assert result.shape == (0,) and result.dtype == torch.float32


@pytest.mark.parametrize(
    ("game_id", "options"),
    [
        ("othello", {"size": 6}),
        ("mnk", {"m": 6, "n": 7, "k": 4, "gravity": True}),
        ("hex", {"size": 7}),
        ("tic_tac_toe", {}),
    ],
)
def test_games_without_their_own_loop_answer_none(game_id: str, options: dict[str, Any]) -> None:
    game = make(game_id, **options)
    assert (
        game.playout_result(game.init(4), torch.zeros(4, game.max_moves, dtype=torch.int64)) is None
    )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_connect_fours_loop_on_cuda_gives_the_result_of_stepping() -> None:
    game = ConnectFour()
    state = positions(game, 192, seed=3)
    bits = torch.randint(0, 2**32, (192, game.max_moves))
    expected = play_by_stepping(game, state, bits)
    assert torch.equal(game.playout_result(state.to("cuda"), bits.cuda()).cpu(), expected)
