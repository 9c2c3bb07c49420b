"""Hex rules on scripted games: exact boards, masks, rewards, and the mover's-frame mapping.

Scripts name *board* cells ``(r, c)``; :func:`play` turns each into the mover's-frame action
with ``view_action`` (player 1's actions are transposed), except where a test checks that
mapping itself.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rltransfer.games.check import check_game
from rltransfer.games.core import IllegalActionError, State
from rltransfer.games.hex import NEIGHBOUR_OFFSETS, Hex, HexState

SIZE = 5


def play(game: Hex, state: State, moves: list[tuple[int, int]]) -> HexState:
    """Play board cells ``(r, c)`` on every board in turn; board 0 stays live until the last."""
    for i, (r, c) in enumerate(moves):
        assert not bool(state.terminated[0]), f"game ended before move {i}"
        cell = torch.full((state.batch_size,), r * game.width + c)
        state = game.step(state, game.view_action(state, cell))
    assert isinstance(state, HexState)
    return state


def board_text(rows: str) -> str:
    return "\n".join(line.strip() for line in rows.strip().splitlines())


def test_options_and_shapes() -> None:
    game = Hex()
    assert (game.size, game.height, game.width, game.num_actions) == (9, 9, 9, 81)
    assert game.options["size"].choices == tuple(range(5, 14))
    state = game.init(3)
    assert game.observe(state).shape == (3, 2, 9, 9)
    assert game.legal_mask(state).shape == (3, 81)
    with pytest.raises(ValueError, match=r"5\.\.13"):
        Hex(4)


def test_adjacency_is_hex_and_survives_transposition() -> None:
    # (r-1, c-1) and (r+1, c+1) are NOT neighbours; the other six are.
    assert set(NEIGHBOUR_OFFSETS) == {(-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0)}
    assert {(dc, dr) for dr, dc in NEIGHBOUR_OFFSETS} == set(NEIGHBOUR_OFFSETS)


def test_bent_chain_wins_for_player_0_and_last_stone_merges_groups() -> None:
    game = Hex(SIZE)
    # X: (0,3) -(r+1,c-1)-> (1,2) -sideways-> (1,1) -down-> (2,1) -(r+1,c-1)-> (3,0) -> (4,0).
    # The last X stone, (1,2), joins the top group {(0,3)} and the bottom group.
    x_moves = [(0, 3), (1, 1), (3, 0), (4, 0), (2, 1), (1, 2)]
    o_moves = [(0, 0), (0, 1), (2, 3), (3, 3), (4, 4)]
    moves = [m for pair in zip(x_moves[:-1], o_moves, strict=True) for m in pair] + [x_moves[-1]]
    before = play(game, game.init(1), moves[:-1])
    assert not bool(before.terminated[0])
    # Two separate X groups before the merge: the top stone and the four-stone chain.
    labels = before.labels[0]
    assert labels[0 * SIZE + 3] != labels[1 * SIZE + 1]
    chain = [1 * SIZE + 1, 2 * SIZE + 1, 3 * SIZE + 0, 4 * SIZE + 0]
    assert len({int(labels[k]) for k in chain}) == 1

    state = play(game, before, moves[-1:])
    assert game.render_text(state) == board_text(
        """
        OO.X.
        .XX..
        .X.O.
        X..O.
        X...O
        """
    )
    assert state.terminated.tolist() == [True]
    assert state.rewards.tolist() == [[1.0, -1.0]]
    assert game.winner(state).tolist() == [0]
    x_cells = [r * SIZE + c for r, c in x_moves]
    assert {int(state.labels[0, k]) for k in x_cells} == {1 * SIZE + 2}  # the new stone
    o_cells = [r * SIZE + c for r, c in o_moves]
    assert not {int(state.labels[0, k]) for k in o_cells} & {1 * SIZE + 2}


def test_square_grid_diagonal_is_not_a_connection() -> None:
    game = Hex(SIZE)
    # X's (0,0)-(1,1) step is (r+1, c+1): connected on a square grid, not in hex.
    x_moves = [(0, 0), (1, 1), (2, 1), (3, 1), (4, 1)]
    o_moves = [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    moves = [m for pair in zip(x_moves, o_moves, strict=True) for m in pair]
    state = play(game, game.init(1), moves)
    assert game.render_text(state) == board_text(
        """
        X...O
        .X..O
        .X..O
        .X..O
        .X..O
        """
    )
    assert state.terminated.tolist() == [False]
    assert state.rewards.tolist() == [[0.0, 0.0]]
    # (1,0) touches (0,0) (up) and (1,1) (sideways): now the chain joins top and bottom.
    state = play(game, state, [(1, 0)])
    assert state.terminated.tolist() == [True]
    assert state.rewards.tolist() == [[1.0, -1.0]]


def test_player_1_wins_left_to_right() -> None:
    game = Hex(SIZE)
    # O: (2,0) -> (2,1) -(r-1,c+1)-> (1,2) -> (1,3) -(r-1,c+1)-> (0,4).
    o_moves = [(2, 0), (2, 1), (1, 2), (1, 3), (0, 4)]
    x_moves = [(4, 0), (4, 1), (4, 2), (4, 3), (3, 0)]
    moves = [m for pair in zip(x_moves, o_moves, strict=True) for m in pair]
    before = play(game, game.init(1), moves[:-1])
    assert before.terminated.tolist() == [False]
    state = play(game, before, moves[-1:])
    assert game.render_text(state) == board_text(
        """
        ....O
        ..OO.
        OO...
        X....
        XXXX.
        """
    )
    assert state.terminated.tolist() == [True]
    assert state.rewards.tolist() == [[-1.0, 1.0]]
    assert game.winner(state).tolist() == [1]
    assert int(state.step_count[0]) == 10


def test_top_bottom_chain_of_player_1_does_not_win() -> None:
    game = Hex(SIZE)
    # O fills column 2 top to bottom: that is player 0's goal, not O's.
    o_moves = [(r, 2) for r in range(SIZE)]
    x_moves = [(0, 0), (0, 4), (2, 0), (2, 4), (4, 4)]
    moves = [m for pair in zip(x_moves, o_moves, strict=True) for m in pair]
    state = play(game, game.init(1), moves)
    assert state.terminated.tolist() == [False]


def test_player_1_sees_and_plays_the_transposed_board() -> None:
    game = Hex(SIZE)
    state = play(game, game.init(1), [(0, 1)])  # X at board (0, 1); O to move
    assert state.current_player.tolist() == [1]
    board = game.board(state)[0]
    own, opp = (board == 2).float(), (board == 1).float()
    assert torch.equal(game.observe(state)[0], torch.stack([own.T, opp.T]))
    # O sees X's stone at view cell (1, 0), so that view action is the illegal one.
    mask = game.legal_mask(state)[0]
    assert mask.logical_not().nonzero()[:, 0].tolist() == [1 * SIZE + 0]

    view_action = torch.tensor([0 * SIZE + 3])  # view (0, 3) = board (3, 0)
    assert game.board_action(state, view_action).tolist() == [3 * SIZE + 0]
    assert game.view_action(state, torch.tensor([3 * SIZE + 0])).tolist() == [0 * SIZE + 3]
    after = game.step(state, view_action)
    assert game.render_text(after) == board_text(
        """
        .X...
        .....
        .....
        O....
        .....
        """
    )
    # Player 0's frame is the board itself, for actions and planes alike.
    assert game.board_action(after, torch.tensor([3])).tolist() == [3]
    board = game.board(after)[0]
    expected = torch.stack([(board == 1).float(), (board == 2).float()])
    assert torch.equal(game.observe(after)[0], expected)
    assert game.legal_mask(after)[0].logical_not().nonzero()[:, 0].tolist() == [1, 15]
    # Another viewer: player 1 looking at the same position sees it transposed.
    seen_by_1 = game.observe(after, torch.tensor([1]))[0]
    assert torch.equal(seen_by_1, torch.stack([expected[1].T, expected[0].T]))


def test_null_move_hands_over_the_turn_and_the_frame() -> None:
    game = Hex(SIZE)
    state = play(game, game.init(1), [(0, 1)])  # O to move: X's stone is view cell (1, 0)
    assert game.legal_mask(state)[0].logical_not().nonzero()[:, 0].tolist() == [5]
    swapped = game.null_move(state)
    assert swapped.current_player.tolist() == [0]
    assert torch.equal(game.board(swapped), game.board(state))
    assert game.legal_mask(swapped)[0].logical_not().nonzero()[:, 0].tolist() == [1]


def test_batched_boards_are_independent() -> None:
    game = Hex(SIZE)
    state = game.init(2)
    state = game.step(state, torch.tensor([24, 0]))
    state = game.step(state, torch.tensor([5, 1]))  # O's views (1,0), (0,1): board (0,1), (1,0)
    assert game.render_text(state, 0) == board_text(".O...\n.....\n.....\n.....\n....X")
    assert game.render_text(state, 1) == board_text("X....\nO....\n.....\n.....\n.....")
    assert state.terminated.tolist() == [False, False]


def test_illegal_move_loses_and_finished_board_is_frozen() -> None:
    game = Hex(SIZE)
    state = play(game, game.init(1), [(2, 2)])
    lost = game.step(state, torch.tensor([2 * SIZE + 2]))  # O's view (2,2) = board (2,2)
    assert lost.terminated.tolist() == [True]
    assert lost.rewards.tolist() == [[1.0, -1.0]]
    assert torch.equal(game.board(lost), game.board(state))

    again = game.step(lost, torch.tensor([0]))
    assert again.rewards.tolist() == [[0.0, 0.0]]
    assert torch.equal(game.board(again), game.board(lost))
    assert game.legal_mask(again).all()

    with pytest.raises(IllegalActionError, match="illegal"):
        Hex(SIZE, illegal_action="raise").step(state, torch.tensor([2 * SIZE + 2]))


def test_step_does_not_mutate_its_input() -> None:
    game = Hex(SIZE)
    state = play(game, game.init(2), [(1, 1), (2, 2)])
    before = {k: v.clone() for k, v in state.tensors().items()}
    game.step(state, torch.tensor([3, 4]))
    for k, v in state.tensors().items():
        assert torch.equal(v, before[k]), k
    assert dataclasses.fields(state)  # a dataclass state, replaced not edited


@pytest.mark.parametrize("size", [5, 9, 13])
def test_passes_check_game(size: int) -> None:
    check_game(Hex(size), num_boards=32)
