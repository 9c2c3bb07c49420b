"""Board images ([3, H, W] uint8) for ``render_mode="rgb_array"`` and TensorBoard.

A board image can stand above a legend strip that says who is who and who won (as the
boards in TensorBoard do): each player's stone colour next to the player's number (``0``
moves first, ``1`` second), then the result of a finished board (``0 WON``, ``1 WON`` or
``DRAW``; nothing while it is live). Square boards are a grid of cells
(:func:`square_board`). Hex is a rhombus of hexagons, each row half a cell to the right of
the one above, its goal edges in the colours of the players who join them
(:func:`hex_board`). Drawing is plain tensor work on the CPU: no image library.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

EMPTY = (214, 181, 110)  # an empty cell
STONES = ((20, 20, 20), (240, 240, 240))  # player 0's stones, player 1's
LINES = (90, 70, 40)  # cell borders
BACKGROUND = (96, 96, 96)  # around the board, and the legend strip
INK = (255, 255, 255)  # legend text

#: 5-pixel-high glyphs, top row first ("1": ink); "O" is round, "0" square.
FONT = {
    " ": ("00", "00", "00", "00", "00"),
    "0": ("111", "101", "101", "101", "111"),
    "1": ("010", "110", "010", "010", "111"),
    "A": ("010", "101", "111", "101", "101"),
    "D": ("110", "101", "101", "101", "110"),
    "N": ("1001", "1101", "1011", "1001", "1001"),
    "O": ("010", "101", "101", "101", "010"),
    "R": ("110", "101", "110", "101", "101"),
    "W": ("10001", "10001", "10101", "10101", "01010"),
}
RESULTS = ("0 WON", "1 WON", "DRAW")  # the strip always has room for the longest


def _rgb(colour: tuple[int, int, int]) -> Tensor:
    return torch.tensor(colour, dtype=torch.uint8)


def _palette() -> Tensor:
    """[3, 3] uint8: colours of board values 0 (empty), 1 (player 0), 2 (player 1)."""
    return torch.tensor([EMPTY, *STONES], dtype=torch.uint8)


def square_board(cells: Tensor, cell_px: int) -> Tensor:
    """[H, W] board (0 empty, 1 player 0, 2 player 1) -> [3, H*cell_px, W*cell_px] uint8:
    one square per cell, a border line along each cell's top and left and the board's
    bottom and right."""
    img = _palette()[cells.long().cpu()]  # [H, W, 3]
    img = img.repeat_interleave(cell_px, 0).repeat_interleave(cell_px, 1)
    grid = torch.zeros(img.shape[:2], dtype=torch.bool)
    grid[::cell_px, :] = True
    grid[:, ::cell_px] = True
    grid[-1, :] = grid[:, -1] = True  # the board's bottom and right edges
    img[grid] = _rgb(LINES)
    return img.permute(2, 0, 1).contiguous()


def hex_layout(cell_px: int) -> tuple[float, float, int]:
    """``(radius, margin, band)`` of a Hex image: hexagons ``cell_px`` wide (flat side to
    flat side) have corners ``radius`` from their centres; the board starts ``margin``
    pixels from the image's top and left edges, inside a goal band ``band`` pixels wide
    and a one-pixel gap.

    Cell ``(r, c)`` is centred at ``x = margin + cell_px * (c + r / 2 + 1 / 2)``,
    ``y = margin + radius * (1 + 3 r / 2)`` (pixel centres at ``+0.5``).
    """
    band = max(2, cell_px // 5)
    return cell_px / math.sqrt(3), float(band + 2), band


def hex_board(cells: Tensor, cell_px: int) -> Tensor:
    """[n, n] Hex board -> [3, H, W] uint8: a rhombus of pointy-top hexagons (see
    :func:`hex_layout`), a band in player 0's colour along the top and bottom rows it must
    join, and one in player 1's colour along the left and right columns."""
    n = cells.shape[0]
    radius, margin, band = hex_layout(cell_px)
    width = math.ceil(cell_px * (1.5 * (n - 1) + 1) + 2 * margin)
    height = math.ceil(radius * (1.5 * (n - 1) + 2) + 2 * margin)
    y, x = torch.meshgrid(
        torch.arange(height) + 0.5 - margin - radius,
        torch.arange(width) + 0.5 - margin - cell_px / 2,
        indexing="ij",
    )  # pixel centres, relative to the centre of cell (0, 0)
    row, col = _hex_round((math.sqrt(3) * x - y) / (3 * radius), 2 * y / (3 * radius))
    on = (row >= 0) & (row < n) & (col >= 0) & (col < n)
    img = _rgb(BACKGROUND).expand(height, width, 3).clone()
    img[on] = _palette()[cells.long().cpu()[row[on], col[on]]]
    ring = _near(on, band + 1) & ~_near(on, 1)  # a one-pixel gap, then the band
    img[ring & ((row == -1) | (row == n)) & (col >= 0) & (col < n)] = _rgb(STONES[0])
    img[ring & ((col == -1) | (col == n)) & (row >= 0) & (row < n)] = _rgb(STONES[1])
    img[on & _borders(torch.where(on, row * n + col, -1))] = _rgb(LINES)
    return img.permute(2, 0, 1).contiguous()


def _near(mask: Tensor, d: int) -> Tensor:
    """[H, W] bool: pixels at most ``d`` pixels (in x and in y) from one of ``mask``."""
    return F.max_pool2d(mask[None].float(), 2 * d + 1, stride=1, padding=d)[0] > 0


def _hex_round(q: Tensor, r: Tensor) -> tuple[Tensor, Tensor]:
    """Fractional axial coordinates -> the hexagon holding them, as ``(row, col)`` int64
    (cube rounding: round all three cube coordinates, fix the one that moved most)."""
    s = -q - r
    rq, rr, rs = q.round(), r.round(), s.round()
    dq, dr, ds = (rq - q).abs(), (rr - r).abs(), (rs - s).abs()
    fix_q = (dq > dr) & (dq > ds)
    fix_r = ~fix_q & (dr > ds)
    rq = torch.where(fix_q, -rr - rs, rq)
    rr = torch.where(fix_r, -rq - rs, rr)
    return rr.long(), rq.long()


def _borders(index: Tensor) -> Tensor:
    """[H, W] bool: pixels whose right or lower neighbour lies in another cell, and pixels
    on the board's edge (any neighbour off the board: ``index`` -1)."""
    out = torch.zeros(index.shape, dtype=torch.bool)
    out[:, :-1] |= index[:, :-1] != index[:, 1:]
    out[:-1, :] |= index[:-1, :] != index[1:, :]
    out[:, 1:] |= index[:, :-1] < 0
    out[1:, :] |= index[:-1, :] < 0
    return out


def legend_scale(cell_px: int) -> int:
    """Pixels per glyph pixel in the legend: 2 for the default 16-pixel cells."""
    return max(1, cell_px // 8)


def text_width(text: str, k: int) -> int:
    """Pixels that :func:`_write` takes for ``text``: each glyph and a ``k`` gap after it."""
    return sum(k * (len(FONT[char][0]) + 1) for char in text)


def with_legend(board: Tensor, winner: int | None, cell_px: int) -> Tensor:
    """``board`` [3, H, W] uint8 above a legend strip ``9k`` pixels high, widened (the board
    centred) when the legend needs more room; ``winner``: 0 or 1, -1 for a draw, None for a
    live board.

    The strip, in units of ``k = legend_scale(cell_px)`` pixels: a ``2k`` margin, then per
    player a ``5k`` square of its stone colour at ``2k`` from the top, a ``k`` gap, its
    number and a ``4k`` gap (``13k`` per player); then the result. Glyphs are ``5k`` high.
    """
    k = legend_scale(cell_px)
    result = "" if winner is None else "DRAW" if winner < 0 else f"{winner} WON"
    start = 2 * k + 2 * 13 * k  # of the result
    width = max(board.shape[2], start + max(text_width(r, k) for r in RESULTS) + k)
    strip = _rgb(BACKGROUND).expand(9 * k, width, 3).clone()  # [h, W, 3]
    for player in (0, 1):
        left = 2 * k + 13 * k * player
        strip[2 * k : 7 * k, left : left + 5 * k] = _rgb(STONES[player])
        _write(strip, str(player), 2 * k, left + 6 * k, k)
    _write(strip, result, 2 * k, start, k)
    out = _rgb(BACKGROUND).expand(board.shape[1] + 9 * k, width, 3).clone()
    left = (width - board.shape[2]) // 2
    out[: board.shape[1], left : left + board.shape[2]] = board.permute(1, 2, 0)
    out[board.shape[1] :] = strip
    return out.permute(2, 0, 1).contiguous()


def _write(img: Tensor, text: str, top: int, left: int, k: int) -> None:
    """Draw ``text`` in ``INK`` into ``img`` [H, W, 3], glyph pixels ``k`` x ``k``."""
    for char in text:
        rows = torch.tensor([[c == "1" for c in row] for row in FONT[char]])
        ink = rows.repeat_interleave(k, 0).repeat_interleave(k, 1)  # [5k, width * k]
        img[top : top + 5 * k, left : left + ink.shape[1]][ink] = _rgb(INK)
        left += text_width(char, k)
