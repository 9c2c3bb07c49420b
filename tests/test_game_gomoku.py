"""Gomoku rules on scripted games: exact boards, masks, rewards, wins, draws, illegal moves."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rltransfer.games.check import check_game
from rltransfer.games.core import IllegalActionError, State
from rltransfer.games.gomoku import Gomoku, GomokuState

SIZE = 9
# Player 1's filler moves, away from every line the tests build and never five in a row.
FILLER = [(8, 0), (8, 2), (8, 4), (8, 6), (8, 8), (7, 1), (7, 3), (7, 5)]


def play(game: Gomoku, state: State, moves: list[tuple[int, int]]) -> GomokuState:
    """Play cells ``(r, c)`` on every board in turn; board 0 stays live until the last."""
    for i, (r, c) in enumerate(moves):
        assert not bool(state.terminated[0]), f"game ended before move {i}"
        state = game.step(state, torch.full((state.batch_size,), r * game.width + c))
    assert isinstance(state, GomokuState)
    return state


def x_line(x_moves: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """X plays ``x_moves``, O answers with ``FILLER`` in between (X plays last)."""
    moves: list[tuple[int, int]] = []
    for x, o in zip(x_moves, FILLER[: len(x_moves)], strict=True):
        moves += [x, o]
    return moves[:-1]


def board_text(rows: str) -> str:
    return "\n".join(line.strip() for line in rows.strip().splitlines())


def naive_has_five(text: str, mark: str) -> bool:
    """Independent reference: any five consecutive ``mark`` in a row, column or diagonal."""
    rows = text.splitlines()
    n = len(rows)
    for r in range(n):
        for c in range(n):
            for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
                cells = [(r + k * dr, c + k * dc) for k in range(5)]
                if all(0 <= a < n and 0 <= b < n and rows[a][b] == mark for a, b in cells):
                    return True
    return False


def test_options_and_shapes() -> None:
    game = Gomoku()
    assert (game.size, game.num_actions, game.max_moves) == (9, 81, 81)
    assert game.options["size"].choices == tuple(range(7, 20))
    assert game.observe(game.init(2)).shape == (2, 2, 9, 9)
    with pytest.raises(ValueError, match=r"7\.\.19"):
        Gomoku(20)


# The last stone lands inside the line, so forward and backward runs must add up.
FIVES = {
    "horizontal": [(3, 1), (3, 2), (3, 4), (3, 5), (3, 3)],
    "vertical": [(0, 6), (1, 6), (3, 6), (4, 6), (2, 6)],
    "diagonal": [(2, 2), (3, 3), (5, 5), (6, 6), (4, 4)],
    "anti_diagonal": [(0, 8), (1, 7), (3, 5), (4, 4), (2, 6)],
}
FIVE_BOARDS = {
    "horizontal": """
        .........
        .........
        .........
        .XXXXX...
        .........
        .........
        .........
        .........
        O.O.O.O..
        """,
    "vertical": """
        ......X..
        ......X..
        ......X..
        ......X..
        ......X..
        .........
        .........
        .........
        O.O.O.O..
        """,
    "diagonal": """
        .........
        .........
        ..X......
        ...X.....
        ....X....
        .....X...
        ......X..
        .........
        O.O.O.O..
        """,
    "anti_diagonal": """
        ........X
        .......X.
        ......X..
        .....X...
        ....X....
        .........
        .........
        .........
        O.O.O.O..
        """,
}


@pytest.mark.parametrize("direction", sorted(FIVES))
def test_five_in_a_row_wins_in_every_direction(direction: str) -> None:
    game = Gomoku(SIZE)
    moves = x_line(FIVES[direction])
    before = play(game, game.init(1), moves[:-1])
    assert before.terminated.tolist() == [False]
    state = play(game, before, moves[-1:])
    assert game.render_text(state) == board_text(FIVE_BOARDS[direction])
    assert state.terminated.tolist() == [True]
    assert state.rewards.tolist() == [[1.0, -1.0]]
    assert game.winner(state).tolist() == [0]


def test_player_1_can_win_too() -> None:
    game = Gomoku(SIZE)
    x_moves = [(0, 0), (0, 2), (0, 4), (0, 6), (2, 0)]
    o_moves = [(5, c) for c in range(5)]
    moves = [m for pair in zip(x_moves, o_moves, strict=True) for m in pair]
    state = play(game, game.init(1), moves)
    assert state.terminated.tolist() == [True]
    assert state.rewards.tolist() == [[-1.0, 1.0]]
    assert int(state.step_count[0]) == 10


def test_six_in_a_row_wins_freestyle() -> None:
    game = Gomoku(SIZE)
    # X X X . X X: two runs of 3 and 2, then the gap makes six.
    moves = x_line([(0, 0), (0, 1), (0, 2), (0, 4), (0, 5), (0, 3)])
    before = play(game, game.init(1), moves[:-1])
    assert before.terminated.tolist() == [False]
    state = play(game, before, moves[-1:])
    assert game.render_text(state).splitlines()[0] == "XXXXXX..."
    assert state.rewards.tolist() == [[1.0, -1.0]]


def test_four_in_a_row_and_broken_lines_do_not_win() -> None:
    game = Gomoku(SIZE)
    moves = x_line([(4, 0), (4, 1), (4, 2), (4, 3), (4, 5), (4, 7), (4, 6)])
    state = play(game, game.init(1), moves[:7])
    assert game.render_text(state).splitlines()[4] == "XXXX....."
    assert state.terminated.tolist() == [False]
    assert state.rewards.tolist() == [[0.0, 0.0]]
    # The last stone sees X at (4,7) on one side and four X beyond a gap on the other:
    # seven X on the row, but only three in a row through the new stone.
    state = play(game, state, moves[7:])
    assert game.render_text(state).splitlines()[4] == "XXXX.XXX."
    assert state.terminated.tolist() == [False]
    assert state.step_count.tolist() == [13]


@pytest.mark.parametrize(
    "x_moves",
    [
        [(0, 6), (0, 7), (0, 8), (1, 0), (1, 1)],  # cells 6..10: consecutive indices
        [(0, 6), (1, 7), (2, 8), (4, 0), (5, 1)],  # stride W+1 = 10 wraps past the edge
        [(2, 1), (3, 0), (3, 8), (4, 7), (5, 6)],  # stride W-1 = 8 wraps past the edge
    ],
)
def test_lines_do_not_wrap_around_the_edge(x_moves: list[tuple[int, int]]) -> None:
    game = Gomoku(SIZE)
    state = play(game, game.init(1), x_line(x_moves))
    assert state.terminated.tolist() == [False]
    assert state.step_count.tolist() == [9]


def test_full_board_without_a_line_is_a_draw() -> None:
    game = Gomoku(7)
    final = board_text(
        """
        XXOOXXO
        OOXXOOX
        XXOOXXO
        OOXXOOX
        XXOOXXO
        OOXXOOX
        XXOOXXO
        """
    )
    assert not naive_has_five(final, "X") and not naive_has_five(final, "O")
    # The position one move earlier: X to play the last empty cell, (3, 3).
    cells = [".XO".index(ch) for ch in final.replace("\n", "")] + [0]
    cells[3 * 7 + 3] = 0
    fresh = game.init(1)
    assert isinstance(fresh, GomokuState)
    state = dataclasses.replace(
        fresh,
        cells=torch.tensor([cells], dtype=torch.int8),
        step_count=torch.tensor([48]),
    )
    assert game.legal_mask(state)[0].nonzero()[:, 0].tolist() == [24]
    end = game.step(state, torch.tensor([24]))
    assert game.render_text(end) == final
    assert end.terminated.tolist() == [True]
    assert end.rewards.tolist() == [[0.0, 0.0]]
    assert game.winner(end).tolist() == [-1]


def test_null_move_lets_the_same_player_move_again() -> None:
    game = Gomoku(SIZE)
    state = play(game, game.init(1), x_line([(2, 2), (2, 3), (2, 4), (2, 5)]))  # O to move
    swapped = game.null_move(state)
    assert swapped.current_player.tolist() == [0]
    assert torch.equal(game.board(swapped), game.board(state))
    won = game.step(swapped, torch.tensor([2 * SIZE + 6]))
    assert won.rewards.tolist() == [[1.0, -1.0]]


def test_legal_mask_is_the_empty_cells() -> None:
    game = Gomoku(SIZE)
    state = play(game, game.init(1), [(0, 0), (4, 4), (8, 8)])
    assert game.legal_mask(state)[0].logical_not().nonzero()[:, 0].tolist() == [0, 40, 80]


def test_illegal_move_loses_and_leaves_the_board() -> None:
    game = Gomoku(SIZE)
    state = play(game, game.init(2), [(4, 4)])
    lost = game.step(state, torch.tensor([40, 41]))  # board 0: O plays onto X's stone
    assert lost.terminated.tolist() == [True, False]
    assert lost.rewards.tolist() == [[1.0, -1.0], [0.0, 0.0]]
    assert game.render_text(lost, 0) == game.render_text(state, 0)
    assert game.render_text(lost, 1).splitlines()[4] == "....XO..."
    with pytest.raises(IllegalActionError, match="illegal"):
        Gomoku(SIZE, illegal_action="raise").step(state, torch.tensor([40, 41]))


def test_stepping_a_finished_board_changes_nothing() -> None:
    game = Gomoku(SIZE)
    done = play(game, game.init(1), x_line(FIVES["horizontal"]))
    assert done.terminated.tolist() == [True]
    again = game.step(done, torch.tensor([0]))
    assert again.terminated.tolist() == [True]
    assert again.rewards.tolist() == [[0.0, 0.0]]
    assert again.step_count.tolist() == done.step_count.tolist()
    assert game.render_text(again) == game.render_text(done)
    assert game.legal_mask(again).all()


def test_observe_is_own_then_opponent() -> None:
    game = Gomoku(SIZE)
    state = play(game, game.init(1), [(0, 0), (1, 1)])  # X to move
    obs = game.observe(state)[0]
    assert obs[0].nonzero().tolist() == [[0, 0]]
    assert obs[1].nonzero().tolist() == [[1, 1]]
    state = play(game, state, [(2, 2)])  # O to move: planes swap
    obs = game.observe(state)[0]
    assert obs[0].nonzero().tolist() == [[1, 1]]
    assert obs[1].nonzero().tolist() == [[0, 0], [2, 2]]


def test_step_does_not_mutate_its_input() -> None:
    game = Gomoku(SIZE)
    state = play(game, game.init(1), [(3, 3)])
    before = {k: v.clone() for k, v in state.tensors().items()}
    game.step(state, torch.tensor([4]))
    for k, v in state.tensors().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("size", [7, 9, 19])
def test_passes_check_game(size: int) -> None:
    check_game(Gomoku(size), num_boards=32)
