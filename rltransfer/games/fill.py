"""Random playouts as fills of the board, for games where stones never move or leave.

Where every empty cell is a legal move (no gravity, no captures, no pass), a uniformly
random playout is a uniformly random order of the empty cells, taken by the mover first
and then by the players in turn. Given that order up front (``priority``, one number per
cell, lowest first), the playout's result needs no step per ply:

* :func:`fill_ranks` turns the priorities into each empty cell's place in the order, and
  :func:`filled_board` into the full board (the mover's stones on the even places);
* **Hex** (:meth:`rltransfer.games.hex.Hex.fill_result`): the full board holds exactly one
  winning chain, and whoever owns it made it first, so one flood fill of the full board
  gives the result;
* **line games** (tic-tac-toe, Gomoku, the m,n,k-game without gravity; k or more in a row
  wins), :func:`first_line_result`: a line of k cells is complete when its last cell is
  filled, at the highest place among its cells; the game ends at the first complete line
  of one owner, and is drawn if the full board has none. Over every line of the board at
  once, as a gather through a table of lines.

Ties between priorities go to the lower cell (a stable sort), so a caller's reference
"the empty cell of lowest priority, ties to the lowest cell" plays the same order.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from rltransfer.games.core import LINE_DIRECTIONS, State


def fill_ranks(empty: Tensor, priority: Tensor) -> Tensor:
    """[N, H*W] int64: each empty cell's place (0, 1, ...) in the order of ``priority``
    [N, H*W] (lowest first, ties to the lower cell); occupied cells get places after every
    empty one. ``empty`` [N, H*W] bool."""
    if priority.shape != empty.shape:
        raise ValueError(
            f"priority must be [N, H*W] = {list(empty.shape)}, got {list(priority.shape)}"
        )
    order = priority.argsort(dim=1, stable=True)  # every cell, lowest priority first
    empty_in_order = empty.gather(1, order)
    # in that order: the empty cells count 0, 1, ...; the occupied ones E, E + 1, ...
    count = empty_in_order.sum(dim=1, keepdim=True)
    empties_before = empty_in_order.cumsum(dim=1) - empty_in_order.long()
    occupied_before = (~empty_in_order).cumsum(dim=1) - (~empty_in_order).long()
    places = torch.where(empty_in_order, empties_before, count + occupied_before)
    return torch.empty_like(order).scatter_(1, order, places)


def filled_board(cells: Tensor, mover: Tensor, rank: Tensor) -> Tensor:
    """[N, H*W] int8: ``cells`` [N, H*W] (0 empty, 1 player 0, 2 player 1) with every empty
    cell given to the mover (``mover`` [N]) at even places of ``rank``, to the other
    player at odd ones."""
    empty = cells == 0
    movers = (mover + 1).to(torch.int8)[:, None]
    filler = torch.where(rank % 2 == 0, movers, 3 - movers)
    return torch.where(empty, filler, cells)


@functools.cache
def _lines(height: int, width: int, k: int, device: torch.device) -> Tensor:
    """[L, k] int64: the cells ``r * W + c`` of every line of ``k`` cells on the board."""
    lines = [
        [(r + i * dr) * width + (c + i * dc) for i in range(k)]
        for dr, dc in LINE_DIRECTIONS
        for r in range(height)
        for c in range(width)
        if 0 <= r + (k - 1) * dr < height and 0 <= c + (k - 1) * dc < width
    ]
    return torch.tensor(lines, dtype=torch.int64, device=device).view(-1, k)


def first_line_result(board: Tensor, state: State, priority: Tensor, k: int) -> Tensor:
    """[N] float32: player 0's results of the line-game boards ``board`` [N, H, W] int8 (the
    game's :meth:`~rltransfer.games.core.BoardGame.board` of ``state``) filled in the order
    of ``priority`` [N, H*W], the mover first: the owner of the line of ``k`` completed
    first wins (+1 / -1), a full board without one is drawn (0); a finished board gives
    its reward."""
    n, height, width = board.shape
    cells = board.reshape(n, height * width)
    empty = cells == 0
    rank = fill_ranks(empty, priority)
    full = filled_board(cells, state.current_player, rank)
    # a cell's time: its place in the fill; stones already there, -1 (int16: a [N, L, k]
    # gather of it is the largest tensor here, and places stay below 19 * 19)
    time = torch.where(empty, rank, -1).to(torch.int16)
    lines = _lines(height, width, k, cells.device)
    owner = full[:, lines]  # [N, L, k]
    one_owner = (owner == owner[:, :, :1]).all(dim=2)
    never = torch.iinfo(torch.int16).max
    done = torch.where(one_owner, time[:, lines].amax(dim=2), never)  # [N, L]
    first, line = done.min(dim=1)
    winner = owner[:, :, 0].gather(1, line[:, None])[:, 0]
    sign = 3 - 2 * winner.to(torch.float32)  # +1 where player 0 owns the line, -1
    result = torch.where(first < never, sign, torch.zeros_like(sign))
    return torch.where(state.terminated, state.reward, result)
