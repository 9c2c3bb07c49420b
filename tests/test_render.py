"""Board images: Hex drawn as a rhombus of hexagons, and a legend that says who is who and
who won, read back pixel by pixel."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from rltransfer.games import make
from rltransfer.games.core import Game, State
from rltransfer.games.render import BACKGROUND, INK, STONES, hex_layout, legend_scale

CELL = 16
K = legend_scale(CELL)  # legend units: 2 pixels


def _play(game: Game, moves: list[int]) -> State:
    state = game.init(1)
    for move in moves:
        state = game.step(state, torch.tensor([move]))
    return state


def _colour(img: Tensor, y: int, x: int) -> tuple[int, ...]:
    return tuple(img[:, y, x].tolist())


def _centre(game: Game, cell: tuple[int, int]) -> tuple[float, float]:
    """(x, y) centroid of the pixels that change when player 0 plays ``cell``."""
    before = game.render_rgb(game.init(1), cell_px=CELL)
    after = game.render_rgb(_play(game, [cell[0] * game.width + cell[1]]), cell_px=CELL)
    ys, xs = torch.nonzero((before != after).any(dim=0), as_tuple=True)
    return xs.float().mean().item() + 0.5, ys.float().mean().item() + 0.5


def test_hex_cells_are_hexagons_in_a_rhombus() -> None:
    """Each row sits half a cell to the right of the row above (the adjacency of
    ``rltransfer.games.hex``), rows 1.5 radii apart: a rhombus, not a square grid."""
    game = make("hex", size=5)
    radius, margin, _ = hex_layout(CELL)
    x0, y0 = _centre(game, (0, 0))
    assert (x0, y0) == pytest.approx((margin + CELL / 2, margin + radius), abs=0.5)
    for r, c in [(0, 1), (1, 0), (2, 3), (4, 4)]:
        x, y = _centre(game, (r, c))
        assert (x - x0, y - y0) == pytest.approx((CELL * (c + r / 2), 1.5 * radius * r), abs=0.5)
    after = game.render_rgb(_play(game, [12]), cell_px=CELL)
    stone = (after != game.render_rgb(game.init(1), cell_px=CELL)).any(dim=0)
    rows, cols = stone.any(dim=1).sum().item(), stone.any(dim=0).sum().item()
    assert rows / cols == pytest.approx(2 / math.sqrt(3), abs=0.1)  # pointy-top, not square
    x, y = _centre(game, (2, 2))
    assert _colour(after, int(y), int(x)) == STONES[0]


def _runs(line: Tensor) -> list[tuple[int, ...]]:
    """The colours along a [3, L] line of pixels, each run of one colour once."""
    colours = [tuple(p) for p in line.T.tolist()]
    return [c for i, c in enumerate(colours) if i == 0 or c != colours[i - 1]]


def test_hex_goal_edges_wear_the_colours_of_the_players_who_join_them() -> None:
    """Player 0 joins the top and bottom rows, player 1 the left and right columns."""
    game = make("hex", size=5)
    img = game.render_rgb(game.init(1), cell_px=CELL)
    x_top, y_top = (round(v) for v in _centre(game, (0, 2)))
    x_bottom, y_bottom = (round(v) for v in _centre(game, (4, 2)))
    x_left, y_left = (round(v) for v in _centre(game, (2, 0)))
    x_right, y_right = (round(v) for v in _centre(game, (2, 4)))
    above, below = img[:, :y_top, x_top].flip(1), img[:, y_bottom:, x_bottom]
    left, right = img[:, y_left, :x_left].flip(1), img[:, y_right, x_right:]
    for line, player in [(above, 0), (below, 0), (left, 1), (right, 1)]:
        runs = _runs(line)  # from the cell outwards: cell, border, gap, goal band, outside
        assert STONES[player] in runs and STONES[1 - player] not in runs
        assert runs[-1] == BACKGROUND and runs.index(STONES[player]) >= 2


def _strip(img: Tensor) -> Tensor:
    return img[:, -9 * K :]


TTT_WINS_0 = [0, 3, 1, 4, 2]  # X takes the top row
TTT_WINS_1 = [0, 3, 1, 4, 8, 5]  # O takes the middle row
TTT_DRAW = [0, 1, 2, 4, 3, 5, 7, 6, 8]  # XOX / XOO / OXX


def test_legend_shows_each_players_colour_and_the_result() -> None:
    game = make("tic_tac_toe")
    boards = {
        "live": game.init(1),
        "0": _play(game, TTT_WINS_0),
        "1": _play(game, TTT_WINS_1),
        "draw": _play(game, TTT_DRAW),
    }
    assert [game.winner(s).item() for s in boards.values()][1:] == [0, 1, -1]
    strips = {k: _strip(game.render_rgb(s, cell_px=CELL, legend=True)) for k, s in boards.items()}
    result_x = 28 * K  # 2k margin + 13k per player
    for strip in strips.values():
        assert strip.shape[1] == 9 * K
        assert _colour(strip, 3 * K, 3 * K) == STONES[0]  # player 0's swatch, then "0"
        assert _colour(strip, 3 * K, 16 * K) == STONES[1]  # player 1's swatch, then "1"
    live = strips["live"]
    assert (live[:, :, result_x:] == torch.tensor(BACKGROUND)[:, None, None]).all()  # no result
    # "0 WON" and "1 WON" differ in the first glyph only; its middle row's left pixel is
    # ink in "0" (101) and blank in "1" (010)
    differ = (strips["0"] != strips["1"]).any(dim=0).nonzero()[:, 1]
    assert result_x <= differ.min() and differ.max() < result_x + 3 * K
    assert _colour(strips["0"], 4 * K + K // 2, result_x) == INK
    assert _colour(strips["1"], 4 * K + K // 2, result_x) == BACKGROUND
    assert (strips["draw"][:, :, result_x:] == torch.tensor(INK)[:, None, None]).all(0).any()
    assert not torch.equal(strips["draw"], strips["0"])


def test_legend_keeps_the_board_and_plain_images_are_the_board_only() -> None:
    game = make("connect_four")
    state = game.init(1)
    plain = game.render_rgb(state, cell_px=CELL)
    assert plain.shape == (3, 6 * CELL, 7 * CELL)
    with_legend = game.render_rgb(state, cell_px=CELL, legend=True)
    assert with_legend.shape == (3, 6 * CELL + 9 * K, 7 * CELL)
    assert torch.equal(with_legend[:, : 6 * CELL], plain)


def test_a_finished_board_kept_out_of_later_steps_keeps_its_result() -> None:
    """What the trainer's final boards do: a board that finished before the others is not
    stepped again, so its legend still names the winner."""
    game = make("tic_tac_toe")
    won = _play(game, TTT_WINS_0)
    kept = game.step(won, torch.tensor([5]), where=~won.terminated)
    stepped = game.step(won, torch.tensor([5]))  # a finished board stepped: reward 0
    strip = _strip(game.render_rgb(kept, cell_px=CELL, legend=True))
    assert torch.equal(strip, _strip(game.render_rgb(won, cell_px=CELL, legend=True)))
    assert game.winner(stepped).item() == -1  # why the trainer steps live boards only
