"""Hex on a size x size rhombus (5..13, default 9), no swap rule; a game cannot end drawn.

Cell ``(r, c)`` touches ``(r-1, c)``, ``(r-1, c+1)``, ``(r, c-1)``, ``(r, c+1)``,
``(r+1, c-1)`` and ``(r+1, c)``: the rhombus drawn with each row shifted half a cell to the
right of the one above (OpenSpiel's picture). Player 0 (``X``) joins the top and bottom rows,
player 1 (``O``) joins the left and right columns. A full board always holds exactly one
winning chain, so the move that fills the last cell (at the latest) wins and no draw exists.

**Mover's frame.** A policy should not have to learn two goal directions. Swapping rows and
columns maps the hex adjacency onto itself (the six offsets ``(dr, dc)`` transposed are the
same six offsets) and turns player 1's left-right goal into a top-bottom goal. So
observations, the legal mask and the actions of :meth:`Game.step` are all in the *mover's
frame*: the board as it is for player 0, the board transposed for player 1. For player 1,
action ``a = r' * W + c'`` of the transposed view plays board cell ``(c', r')``.
:meth:`Hex.board_action` and :meth:`Hex.view_action` map between the two frames;
:meth:`Hex.board` and :meth:`Game.render_text` always show the real (untransposed) board.

**Layout.** A 13 x 13 board has 169 cells, more than one int64 bitboard holds, so the
state is per-cell tensors: ``cells`` [N, H*W + 1] int8 (0 empty, 1 player 0, 2 player 1)
and ``labels`` [N, H*W + 1] int16, each stone's group label. The extra last column is a
dummy cell that is always empty: off-board neighbours in the precomputed [H*W, 6]
neighbour table point at it, so gathering neighbours needs no bounds masks.

**Groups without flood fill.** A group's label is the cell index of one of its stones;
empty cells carry the label ``H*W``. When a stone is placed at ``k``, every cell whose label
equals the label of one of the stone's same-coloured neighbours is relabelled ``k``
(union-find by relabelling, as in pgx's Hex): a scatter of the <= 6 neighbour labels into
a per-board lookup table, then one gather. The mover wins when label ``k`` appears on both
of its goal edges. Work per move is O(H*W) per board, with no loop to a fixed point.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor

from rltransfer.games import render
from rltransfer.games.core import Game, IllegalActionMode, Option, State
from rltransfer.games.fill import fill_ranks, filled_board

_SIZES = tuple(range(5, 14))
_DEFAULT_SIZE = 9
# The six neighbours of (r, c) as (dr, dc); transposing each offset gives the same set.
NEIGHBOUR_OFFSETS = ((-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0))


@dataclasses.dataclass(frozen=True)
class HexState(State):
    cells: Tensor  # [N, H*W + 1] int8: 0 empty, 1 player 0, 2 player 1; last = dummy cell
    labels: Tensor  # [N, H*W + 1] int16: group label of each stone, H*W where empty


class _Tables(NamedTuple):
    neighbours: Tensor  # [H*W, 6] int64 neighbour cells, H*W (dummy) off the board
    edges: Tensor  # [2, 2*W] int64 goal-edge cells of player 0 (top, bottom), 1 (left, right)
    transpose: Tensor  # [H*W] int64 cell (r, c) -> cell (c, r); its own inverse
    identity: Tensor  # [H*W + 2] int16 label lookup table before a merge


class Hex(Game[HexState]):
    id = "hex"
    state_type = HexState
    options: ClassVar[Mapping[str, Option]] = {
        "size": Option(
            default=_DEFAULT_SIZE, choices=_SIZES, help="board side (size x size rhombus)"
        )
    }
    num_planes = 2
    planes = ("own", "opponent")

    def __init__(
        self, size: int = _DEFAULT_SIZE, *, illegal_action: IllegalActionMode = "lose"
    ) -> None:
        super().__init__(illegal_action=illegal_action)
        self._square_board(size)
        self.max_moves = size * size
        self._cache: dict[torch.device, _Tables] = {}

    def _tables(self, device: torch.device) -> _Tables:
        if device not in self._cache:
            self._cache[device] = _build_tables(self.size, device)
        return self._cache[device]

    # ----------------------------------------------------------------------------- rules
    def _init(self, n: int, device: torch.device) -> HexState:
        cells = self.size * self.size
        return HexState(
            **self._base_fields(n, device),
            cells=torch.zeros(n, cells + 1, dtype=torch.int8, device=device),
            labels=torch.full((n, cells + 1), cells, dtype=torch.int16, device=device),
        )

    def _legal_mask(self, state: State) -> Tensor:
        state = self._own(state)
        view = _view_board(self.board(state), state.current_player)
        return (view == 0).reshape(state.batch_size, -1)

    def _is_legal(self, state: State, action: Tensor) -> Tensor:
        state = self._own(state)
        cell = self.board_action(state, action)
        return state.cells.gather(1, cell[:, None])[:, 0] == 0

    def _apply(self, state: State, action: Tensor) -> HexState:
        state = self._own(state)
        t = self._tables(state.device)
        n, player = state.batch_size, state.current_player
        cell = self.board_action(state, action)[:, None]  # [N, 1]
        stone = (player + 1).to(torch.int8)[:, None]
        cells = state.cells.scatter(1, cell, stone)

        # Merge: the labels of same-coloured neighbours all become the new label ``cell``.
        # Other neighbours write into the last (trash) slot of the lookup table.
        nbr = t.neighbours[cell[:, 0]]  # [N, 6]
        same = state.cells.gather(1, nbr) == stone
        trash = t.identity.shape[0] - 1
        merged = torch.where(same, state.labels.gather(1, nbr).long(), trash)
        new_label = cell.to(torch.int16)
        lookup = t.identity.expand(n, -1).scatter(1, merged, new_label.expand(-1, 6))
        labels = lookup.gather(1, state.labels.long()).scatter(1, cell, new_label)

        on_edges = labels.gather(1, t.edges[player]) == new_label  # [N, 2W]
        won = on_edges.view(n, 2, -1).any(dim=2).all(dim=1)
        return dataclasses.replace(
            state,
            cells=cells,
            labels=labels,
            current_player=1 - player,
            terminated=won,
            reward=self._mover_wins(state, won),
        )

    def fill_result(self, state: State, priority: Tensor) -> Tensor:
        """Player 0's results [N] of filling every live board (:meth:`Game.fill_result`,
        :mod:`rltransfer.games.fill`): one flood fill of the full board says whether
        player 0's stones join top and bottom (on a full board one player's do, never
        both)."""
        state = self._own(state)
        cells = state.cells[:, :-1]
        full = filled_board(cells, state.current_player, fill_ranks(cells == 0, priority))
        zero = (full == 1).view(-1, self.size, self.size)
        won = _joins_top_and_bottom(zero, check_every=1 if state.device.type == "cpu" else 4)
        result = 2 * won.to(torch.float32) - 1  # +1 where player 0's stones join
        return torch.where(state.terminated, state.reward, result)

    def board(self, state: State) -> Tensor:
        """[N, H, W] int8 real board (not the mover's frame): 1 player 0, 2 player 1.

        A view of ``state.cells`` (no copy); read it, do not write into it.
        """
        state = self._own(state)
        return state.cells[:, :-1].view(-1, self.size, self.size)

    def observe(self, state: State, player: Tensor | None = None) -> Tensor:
        """[N, 2, H, W] float32 (own, opponent) in the viewer's frame.

        The viewer is ``player`` [N] (default: the mover); player 1's planes are transposed,
        so every viewer's goal joins the top and bottom rows.
        """
        viewer = state.current_player if player is None else player
        view = _view_board(self.board(state), viewer)
        own = view == (viewer + 1).to(torch.int8).view(-1, 1, 1)
        opp = (view != 0) & ~own
        return torch.stack([own, opp], dim=1).float()

    def null_move(self, state: State) -> HexState:
        """The same stones with the other player to move (scripted opponents' "what if").

        Group labels do not depend on whose turn it is, so only ``current_player`` changes;
        note that the mover's frame (and so every action) changes with it.
        """
        state = self._own(state)
        return dataclasses.replace(state, current_player=1 - state.current_player)

    def _draw_board(self, cells: Tensor, cell_px: int) -> Tensor:
        """A rhombus of hexagons ``cell_px`` wide, rows shifted as the adjacency says, with
        each player's goal edges in its colour (:func:`rltransfer.games.render.hex_board`)."""
        return render.hex_board(cells, cell_px)

    # ------------------------------------------------------------------ frame mapping
    def board_action(self, state: State, action: Tensor) -> Tensor:
        """[N] action in the mover's frame -> [N] int64 board cell ``r * W + c``.

        Identity for player 0; for player 1 the view cell ``(r', c')`` is board cell
        ``(c', r')``. Actions must lie in ``[0, H*W)``.
        """
        perm = self._tables(state.device).transpose
        action = action.to(torch.int64)
        return torch.where(state.current_player == 1, perm[action], action)

    def view_action(self, state: State, cell: Tensor) -> Tensor:
        """[N] board cell -> [N] int64 action in the mover's frame (inverse of
        :meth:`board_action`; the same map, since a transposition is its own inverse)."""
        return self.board_action(state, cell)


def _view_board(board: Tensor, viewer: Tensor) -> Tensor:
    """[N, H, W] board in the frame of ``viewer`` [N]: transposed where the viewer is 1."""
    return torch.where((viewer == 1).view(-1, 1, 1), board.transpose(1, 2), board)


def _joins_top_and_bottom(stones: Tensor, check_every: int) -> Tensor:
    """[N] bool: whether ``stones`` [N, H, W] bool hold a chain from the top row to the
    bottom row. A flood fill from the top row on row bitboards ([N, H] int64, bit ``c`` of
    row ``r`` is cell ``(r, c)``): cell ``(r, c)`` grows from ``(r, c +- 1)`` (shifts within
    the row), from ``(r-1, c)``, ``(r-1, c+1)`` (the row above shifted right) and from
    ``(r+1, c-1)``, ``(r+1, c)`` (the row below shifted left). It stops when nothing grows,
    tested every ``check_every`` rounds (a host sync off the CPU)."""
    _, height, width = stones.shape
    weights = torch.ones(width, dtype=torch.int64, device=stones.device) << torch.arange(
        width, device=stones.device
    )
    rows = (stones.to(torch.int64) * weights).sum(dim=2)  # [N, H]
    reach = torch.zeros_like(rows)
    reach[:, 0] = rows[:, 0]
    for i in range(height * width):
        grow = reach | (reach << 1) | (reach >> 1)
        grow[:, 1:] |= reach[:, :-1] | (reach[:, :-1] >> 1)
        grow[:, :-1] |= reach[:, 1:] | (reach[:, 1:] << 1)
        grow &= rows
        if i % check_every == 0 and torch.equal(grow, reach):
            break
        reach = grow
    return reach[:, -1] != 0


def _build_tables(size: int, device: torch.device) -> _Tables:
    """Neighbour, goal-edge and transposition index tables for a size x size board."""
    cells = size * size
    neighbours = [
        [
            (r + dr) * size + (c + dc) if 0 <= r + dr < size and 0 <= c + dc < size else cells
            for dr, dc in NEIGHBOUR_OFFSETS
        ]
        for r in range(size)
        for c in range(size)
    ]
    line = range(size)
    edges = [
        [c for c in line] + [(size - 1) * size + c for c in line],  # player 0: top, bottom
        [r * size for r in line] + [r * size + size - 1 for r in line],  # 1: left, right
    ]
    transpose = [c * size + r for r in line for c in line]
    return _Tables(
        neighbours=torch.tensor(neighbours, dtype=torch.int64, device=device),
        edges=torch.tensor(edges, dtype=torch.int64, device=device),
        transpose=torch.tensor(transpose, dtype=torch.int64, device=device),
        # slots 0..H*W-1 are stone labels, H*W the "empty" label, H*W + 1 the trash slot
        identity=torch.arange(cells + 2, dtype=torch.int16, device=device),
    )
