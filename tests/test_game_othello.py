"""Othello rules on scripted positions: exact boards, legal masks, passes, endings, rewards.

Every expected board below was worked out by hand from the rules, so a wrong flip, a wrapped
ray or a missed pass changes a string and fails the test. ``X`` is Black (player 0, moves
first), ``O`` is White (player 1). Positions other than the start are built from ASCII with
:func:`position` (``Othello.position`` derives the mover's moves and whether it is over).
"""

from __future__ import annotations

import textwrap

import pytest
import torch

from rltransfer.games.check import check_game
from rltransfer.games.core import IllegalActionError, int64_const
from rltransfer.games.othello import Othello, OthelloState

START_8 = """
........
........
........
...OX...
...XO...
........
........
........
"""
START_6 = """
......
......
..OX..
..XO..
......
......
"""


def ascii_board(text: str) -> list[str]:
    return textwrap.dedent(text).strip().splitlines()


def position(game: Othello, text: str, player: int) -> OthelloState:
    """One board from ASCII rows of ``.XO`` (X Black, O White), ``player`` to move."""
    rows = ascii_board(text)
    assert len(rows) == game.size and all(len(r) == game.size for r in rows), rows
    black = white = 0
    for r, row in enumerate(rows):
        for c, ch in enumerate(row):
            bit = 1 << (r * game.size + c)
            black |= bit if ch == "X" else 0
            white |= bit if ch == "O" else 0
    stones = torch.tensor([[int64_const(black), int64_const(white)]])
    return game.position(stones, torch.tensor([player]))


def legal(game: Othello, state: OthelloState, i: int = 0) -> list[int]:
    return game.legal_mask(state)[i].nonzero()[:, 0].tolist()


def play(game: Othello, state: OthelloState, action: int) -> OthelloState:
    return game.step(state, torch.full((state.batch_size,), action))


def assert_board(game: Othello, state: OthelloState, text: str, i: int = 0) -> None:
    assert game.render_text(state, i).splitlines() == ascii_board(text)


# --------------------------------------------------------------------------- setup
@pytest.mark.parametrize("size", [6, 8])
def test_passes_check_game(size: int) -> None:
    check_game(Othello(size), num_boards=32)


def test_sizes_and_attributes() -> None:
    for size in (6, 8):
        game = Othello(size)
        assert (game.height, game.width) == (size, size)
        assert game.num_actions == size * size + 1 and game.pass_action == size * size
        assert game.has_pass and game.num_planes == 3
        assert game.max_moves == 2 * (size * size - 4)
    assert Othello().size == 8
    with pytest.raises(ValueError, match="size"):
        Othello(7)


@pytest.mark.parametrize(
    ("size", "start", "moves"),
    [(8, START_8, [19, 26, 37, 44]), (6, START_6, [8, 13, 22, 27])],
)
def test_start_position_and_its_four_moves(size: int, start: str, moves: list[int]) -> None:
    """White on the top-left and bottom-right centre squares; Black opens with 4 moves."""
    game = Othello(size)
    state = game.init(3)
    for i in range(3):
        assert_board(game, state, start, i)
        assert legal(game, state, i) == moves  # the pass (last action) is not legal
    assert state.current_player.tolist() == [0, 0, 0]
    assert not state.terminated.any()
    assert state.rewards.tolist() == [[0.0, 0.0]] * 3


def test_scripted_opening_8x8() -> None:
    game = Othello()
    state = play(game, game.init(1), 19)  # Black d3 flips d4
    assert_board(
        game,
        state,
        """
        ........
        ........
        ...X....
        ...XX...
        ...XO...
        ........
        ........
        ........
        """,
    )
    assert state.current_player.tolist() == [1]
    # White may play c3 (flips d4 diagonally), e3 (flips e4 upwards) or c5 (flips d5).
    assert legal(game, state) == [18, 20, 34]
    state = play(game, state, 18)  # White c3
    assert_board(
        game,
        state,
        """
        ........
        ........
        ..OX....
        ...OX...
        ...XO...
        ........
        ........
        ........
        """,
    )
    assert state.current_player.tolist() == [0]
    assert legal(game, state) == [17, 26, 37, 44]
    assert state.step_count.tolist() == [2]


def test_position_rejects_impossible_boards() -> None:
    game = Othello(6)
    with pytest.raises(ValueError, match="both a Black and a White disc"):
        game.position(torch.tensor([[1, 1]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="outside the 6x6 board"):
        game.position(torch.tensor([[1 << 36, 0]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="current_player must be 0 or 1"):
        game.position(torch.tensor([[1, 2]]), torch.tensor([2]))


# ------------------------------------------------------------------------- flipping
def test_move_flips_in_seven_directions_at_once() -> None:
    """d4 brackets lines in 7 directions (one of them two discs long); the line going up
    ends in an empty cell, so it stays White."""
    game = Othello()
    before = """
        ........
        .X...X..
        ..OOO...
        .XO.OX..
        ..OOO...
        .X.O.X..
        ...X....
        ........
        """
    after = """
        ........
        .X...X..
        ..XOX...
        .XXXXX..
        ..XXX...
        .X.X.X..
        ...X....
        ........
        """
    state = position(game, before, player=0)
    state = play(game, state, 3 * 8 + 3)
    assert_board(game, state, after)
    assert state.current_player.tolist() == [1]
    assert not state.terminated.any()


@pytest.mark.parametrize("size", [6, 8])
def test_longest_bracketed_run_flips(size: int) -> None:
    """A move may bracket W - 2 discs in a line (the flood fill's full depth)."""
    game = Othello(size)
    empty = "." * size + "\n"
    row = "X" + "O" * (size - 2) + "."
    state = position(game, row + "\n" + empty * (size - 1), player=0)
    assert legal(game, state) == [size - 1]
    state = play(game, state, size - 1)
    assert game.render_text(state).splitlines()[0] == "X" * size
    assert state.terminated.tolist() == [True]  # White has no disc left


def test_corner_h8_uses_bit_63() -> None:
    """Bit 63 is the sign bit: a move on h8 that flips along a row, a column and a diagonal
    must still be exact (and here it ends the game: a1's disc can no longer be reached)."""
    game = Othello()
    state = position(
        game,
        """
        ........
        ........
        ........
        ........
        ........
        .....X.X
        ......OO
        O....XO.
        """,
        player=0,
    )
    assert legal(game, state) == [63]
    state = play(game, state, 63)
    assert_board(
        game,
        state,
        """
        ........
        ........
        ........
        ........
        ........
        .....X.X
        ......XX
        O....XXX
        """,
    )
    assert state.terminated.tolist() == [True]
    assert state.rewards.tolist() == [[1.0, -1.0]]  # 7 discs to 1


def test_rays_do_not_wrap_around_rows() -> None:
    """h1/a2 and h7/a8 are neighbours as bits (7, 8 and 55, 56) but not on the board: a
    wrapped ray would give Black b2/b8 and White g1/g7 as extra moves."""
    game = Othello()
    board = """
        .......X
        O.......
        ........
        ...OX...
        ...XO...
        ........
        .......X
        O.......
        """
    assert legal(game, position(game, board, player=0)) == [19, 26, 37, 44]
    assert legal(game, position(game, board, player=1)) == [20, 29, 34, 43]


# ------------------------------------------------------------------- pass and ending
def test_forced_pass_then_wipe_out() -> None:
    game = Othello(6)
    state = position(
        game,
        """
        OX....
        ......
        ......
        ......
        ......
        ......
        """,
        player=0,
    )
    assert not state.terminated.any()
    assert legal(game, state) == [36]  # Black cannot bracket a8's disc: pass only
    obs = game.observe(state)
    assert obs.shape == (1, 3, 6, 6)
    assert obs[0, 2].eq(1.0).all()  # Black to move
    assert obs[0, 0, 0].tolist() == [0, 1, 0, 0, 0, 0]  # own (Black) discs
    assert obs[0, 1, 0].tolist() == [1, 0, 0, 0, 0, 0]  # opponent (White) discs

    state = play(game, state, 36)
    assert game.render_text(state).splitlines()[0] == "OX...."
    assert state.current_player.tolist() == [1]
    assert not state.terminated.any() and state.rewards.tolist() == [[0.0, 0.0]]
    assert state.step_count.tolist() == [1]
    assert legal(game, state) == [2]
    obs = game.observe(state)
    assert obs[0, 2].eq(0.0).all()  # after the pass White is to move
    assert obs[0, 0, 0].tolist() == [1, 0, 0, 0, 0, 0]  # own (White) discs
    assert obs[0, 1, 0].tolist() == [0, 1, 0, 0, 0, 0]

    state = play(game, state, 2)  # White takes Black's last disc: nobody can move
    assert game.render_text(state).splitlines()[0] == "OOO..."
    assert state.terminated.tolist() == [True]
    assert state.rewards.tolist() == [[-1.0, 1.0]]
    assert game.winner(state).tolist() == [1]


def test_pass_forced_by_a_move() -> None:
    """After a1 White's only disc (b6) cannot bracket anything but Black can still take it:
    White must pass, then Black plays on."""
    game = Othello(6)
    state = position(
        game,
        """
        .OX...
        ......
        ......
        ......
        ......
        XO....
        """,
        player=0,
    )
    assert legal(game, state) == [0, 32]
    state = play(game, state, 0)
    assert game.render_text(state).splitlines()[0] == "XXX..."
    assert not state.terminated.any()
    assert state.current_player.tolist() == [1]
    assert legal(game, state) == [36]
    state = play(game, state, 36)
    assert state.current_player.tolist() == [0]
    assert legal(game, state) == [32]
    state = play(game, state, 32)
    assert game.render_text(state).splitlines()[-1] == "XXX..."
    assert state.terminated.tolist() == [True]
    assert state.rewards.tolist() == [[1.0, -1.0]]
    assert state.step_count.tolist() == [3]


def test_full_board_winner_is_decided_by_the_flips() -> None:
    """Before the last move White leads 19-16; the move flips 7 discs, Black wins 24-12."""
    game = Othello(6)
    state = position(
        game,
        """
        .OXXXX
        OOOOOO
        OOOOOO
        OOOOOO
        XXXXXX
        XXXXXX
        """,
        player=0,
    )
    assert legal(game, state) == [0]
    state = play(game, state, 0)
    assert_board(
        game,
        state,
        """
        XXXXXX
        XXOOOO
        XOXOOO
        XOOXOO
        XXXXXX
        XXXXXX
        """,
    )
    assert state.terminated.tolist() == [True]
    assert state.rewards.tolist() == [[1.0, -1.0]]
    assert game.winner(state).tolist() == [0]


def test_full_board_draw() -> None:
    game = Othello(6)
    state = position(
        game,
        """
        .OXXXX
        OOOOOO
        OOOOOO
        OOOOOO
        XOOOXO
        XXXXOO
        """,
        player=0,
    )
    state = play(game, state, 0)
    assert_board(
        game,
        state,
        """
        XXXXXX
        XXOOOO
        XOXOOO
        XOOXOO
        XOOOXO
        XXXXOO
        """,
    )  # 18 discs each
    assert state.terminated.tolist() == [True]
    assert state.rewards.tolist() == [[0.0, 0.0]]
    assert game.winner(state).tolist() == [-1]


@pytest.mark.parametrize(("flip", "reward"), [(None, 0.0), ((0, 0, "X"), 1.0), ((7, 6, "O"), -1.0)])
def test_full_8x8_board_counts_every_disc(flip: tuple[int, int, str] | None, reward: float) -> None:
    """A full board is over; 32-32 is a draw. Black holds h8 (bit 63, the sign bit), so a
    popcount that dropped or doubled it would call the draw a win."""
    game = Othello()
    rows = ["OOOOOOOO"] * 4 + ["XXXXXXXX"] * 4
    if flip is not None:
        r, c, ch = flip
        rows[r] = rows[r][:c] + ch + rows[r][c + 1 :]
    state = position(game, "\n".join(rows), player=0)
    assert state.terminated.tolist() == [True]
    assert state.rewards.tolist() == [[reward, -reward]]


def test_game_ends_with_empty_cells_when_both_are_stuck() -> None:
    """After f1 White's only disc (a1) lies on no line through the last empty cell (e6)."""
    game = Othello(6)
    state = position(
        game,
        """
        OXXXO.
        XXXXXX
        XXXXXX
        XXXXXX
        XXXXXX
        XXXX.X
        """,
        player=0,
    )
    assert legal(game, state) == [5]
    state = play(game, state, 5)
    assert game.render_text(state).splitlines()[0] == "OXXXXX"
    assert state.terminated.tolist() == [True]
    assert state.rewards.tolist() == [[1.0, -1.0]]  # 34 to 1 with one cell empty
    # The same position set up directly is already over, with its outcome as reward.
    again = position(game, game.render_text(state), player=1)
    assert again.terminated.tolist() == [True]
    assert again.rewards.tolist() == [[1.0, -1.0]]


# ------------------------------------------------------------------ illegal actions
@pytest.mark.parametrize("action", [0, 64, 65, -1])
def test_illegal_action_loses_and_leaves_the_board(action: int) -> None:
    """A corner, the pass while a cell move exists, and out-of-range ids are all illegal."""
    game = Othello()
    start = game.init(1)
    state = play(game, start, action)
    assert_board(game, state, START_8)
    assert state.terminated.tolist() == [True]
    assert state.rewards.tolist() == [[-1.0, 1.0]]  # Black, the mover, loses


def test_illegal_action_raises_in_raise_mode() -> None:
    game = Othello(illegal_action="raise")
    with pytest.raises(IllegalActionError, match="illegal"):
        play(game, game.init(1), 64)  # passing while cell moves exist
    state = play(game, game.init(1), 19)  # a legal move still plays
    assert state.current_player.tolist() == [1]


def test_finished_board_does_not_change() -> None:
    game = Othello(6)
    over = play(game, position(game, "OX....\n" + "......\n" * 5, player=1), 2)
    assert over.terminated.tolist() == [True]
    for action in (0, 3, 36):
        again = play(game, over, action)
        assert torch.equal(again.stones, over.stones)
        assert again.terminated.tolist() == [True]
        assert again.rewards.tolist() == [[0.0, 0.0]]


# -------------------------------------------------------------------------- batching
@pytest.mark.parametrize("size", [6, 8])
def test_batched_equals_per_board_and_input_is_not_mutated(size: int) -> None:
    game = Othello(size)
    gen = torch.Generator().manual_seed(size)
    n = 16
    state = game.init(n)
    singles = [state.index(i) for i in range(n)]
    for _ in range(game.max_moves + 1):
        action = game.random_action(state, gen)
        before = {k: v.clone() for k, v in state.tensors().items()}
        nxt = game.step(state, action)
        for k, v in state.tensors().items():
            assert torch.equal(v, before[k]), f"step mutated {k}"
        singles = [game.step(s, action[i : i + 1]) for i, s in enumerate(singles)]
        state = nxt
    assert state.terminated.all()
    for i, single in enumerate(singles):
        for k, v in single.tensors().items():
            assert torch.equal(v, getattr(state, k)[i : i + 1]), k


def test_random_action_is_uniform_over_legal_moves() -> None:
    game = Othello()
    state = game.init(8000)
    counts = torch.bincount(game.random_action(state, torch.Generator().manual_seed(0)))
    hits = {a: int(counts[a]) for a in counts.nonzero()[:, 0].tolist()}
    assert sorted(hits) == [19, 26, 37, 44]
    assert all(abs(c - 2000) < 200 for c in hits.values()), hits  # ~5 sigma
    # With no cell move, the pass is the only draw.
    must_pass = position(game, "OX......\n" + "........\n" * 7, player=0)
    assert not must_pass.terminated.any()
    assert game.random_action(must_pass).tolist() == [64]


def test_observe_from_either_viewer() -> None:
    game = Othello()
    state = game.init(2)
    viewer = torch.tensor([0, 1])
    obs = game.observe(state, viewer)
    black = obs[0, 0].nonzero().tolist()
    white = obs[0, 1].nonzero().tolist()
    assert black == [[3, 4], [4, 3]] and white == [[3, 3], [4, 4]]
    assert torch.equal(obs[1, 0], obs[0, 1]) and torch.equal(obs[1, 1], obs[0, 0])
    assert obs[:, 2].eq(1.0).all()  # Black is to move whoever looks
    assert torch.equal(game.observe(state), obs[[0, 0]])
