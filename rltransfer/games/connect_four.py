"""Connect Four on int64 bitboards: 6 rows x 7 columns, four in a row wins.

Actions are the 42 cells (``r * 7 + c``, row 0 at the top), so the policy head is the same
fully convolutional head as for every other cell game. A cell is legal exactly where a
stone dropped into its column would land. The usual 7 "column" actions map both ways with
:meth:`ConnectFour.column_to_action` (column -> the cell where that column's stone lands)
and :meth:`ConnectFour.action_to_column` (``action % 7``).

Layout: a board is two int64 bitboards, the stones of the player to move (``mover``) and
of the other player (``other``); a move swaps them, so no per-player select is needed.
Cell (r, c) is bit ``r * 8 + c``: rows of 8 bits whose eighth bit is always empty, so
the line shifts (1 across, 8 down, 7 and 9 diagonally) never wrap from one row into the
next. The landing cell of every column is ``empty & (occupied >> 8 | bottom row)``.
All state fields are 1-D, because on the CPU an op on ``[N]`` costs a fraction of one on
``[N, k]``; the whole step is about forty such ops.
"""

from __future__ import annotations

import dataclasses
import functools

import torch
from torch import Tensor

from rltransfer.games.core import Game, IllegalActionMode, State, bits_to_cells
from rltransfer.games.stones import StonesState, empty_boards, play, stone_board, swap

ROWS, COLS = 6, 7
_W = COLS + 1  # bits per row, one always-empty guard bit
_ROW = (1 << COLS) - 1
_BOARD = sum(_ROW << (r * _W) for r in range(ROWS))
_BOTTOM = _ROW << ((ROWS - 1) * _W)
_COLUMN0 = sum(1 << (r * _W) for r in range(ROWS))
_DIRECTIONS = (1, _W, _W - 1, _W + 1)  # across, down, the two diagonals
# A uniform choice among k open columns is table[pattern, u] with u uniform in [0, 420):
# 420 = lcm(1..7), so every open column appears exactly 420 / k times in its row.
_DRAWS = 420


@functools.cache
def _column_table() -> Tensor:
    table = torch.zeros(1 << COLS, _DRAWS, dtype=torch.int64)
    for pattern in range(1, 1 << COLS):
        open_cols = [c for c in range(COLS) if pattern >> c & 1]
        table[pattern] = torch.tensor(open_cols * (_DRAWS // len(open_cols)))
    return table.view(-1)


@dataclasses.dataclass(frozen=True)
class ConnectFourState(StonesState):
    """``mover`` and ``other`` bitboards in the layout of the module docstring."""


class ConnectFour(Game[ConnectFourState]):
    id = "connect_four"
    state_type = ConnectFourState
    height, width = ROWS, COLS
    num_planes = 2
    planes = ("own", "opponent")
    num_actions = ROWS * COLS
    max_moves = ROWS * COLS
    gravity = True

    def __init__(self, *, illegal_action: IllegalActionMode = "lose") -> None:
        super().__init__(illegal_action=illegal_action)
        self._tables: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def _consts(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """(bit of each action's cell [42], column-choice table [128 * 420]) on ``device``."""
        if device not in self._tables:
            bits = torch.tensor([r * _W + c for r in range(ROWS) for c in range(COLS)])
            self._tables[device] = (bits.to(device), _column_table().to(device))
        return self._tables[device]

    def _init(self, n: int, device: torch.device) -> ConnectFourState:
        return empty_boards(ConnectFourState, self, n, device)

    @staticmethod
    def _landing(state: ConnectFourState) -> Tensor:
        """[N] int64: one bit per non-full column, the cell where its next stone lands."""
        occupied = state.mover | state.other
        return ~occupied & _BOARD & ((occupied >> _W) | _BOTTOM)

    def _legal_mask(self, state: State) -> Tensor:
        state = self._own(state)
        return bits_to_cells(self._landing(state), self._consts(state.device)[0])

    def _is_legal(self, state: State, action: Tensor) -> Tensor:
        state = self._own(state)
        return ((self._landing(state) >> _action_bit(action)) & 1).bool()

    def _apply(self, state: State, action: Tensor) -> ConnectFourState:
        state = self._own(state)
        placed = state.mover | (1 << _action_bit(action))
        return play(self, state, placed, _has_four(placed))

    def null_move(self, state: State) -> ConnectFourState:
        state = self._own(state)
        return swap(state)

    def board(self, state: State) -> Tensor:
        state = self._own(state)
        return stone_board(state, self._consts(state.device)[0], ROWS, COLS)

    def observe(self, state: State, player: Tensor | None = None) -> Tensor:
        state = self._own(state)
        own, opp = state.mover, state.other
        if player is not None:
            mover_views = player == state.current_player
            own, opp = torch.where(mover_views, own, opp), torch.where(mover_views, opp, own)
        cells = bits_to_cells(torch.stack([own, opp], dim=1), self._consts(state.device)[0])
        return cells.view(-1, 2, ROWS, COLS).to(torch.float32)

    def random_action(self, state: State, generator: torch.Generator | None = None) -> Tensor:
        """Uniform over legal cells = uniform over open columns, drawn with one table lookup."""
        state = self._own(state)
        _, table = self._consts(state.device)
        open_cols = ~(state.mover | state.other) & _ROW  # top row empty <=> column open
        u = torch.randint(0, _DRAWS, open_cols.shape, generator=generator, device=state.device)
        column = table[open_cols * _DRAWS + u]
        return self.column_to_action(state, column)

    # ---------------------------------------------------------------- column actions
    def column_to_action(self, state: State, column: Tensor) -> Tensor:
        """[N] column (0..6) -> [N] cell action where a stone in that column lands.

        A full column maps to its top cell, which is then illegal, so the usual rule
        (a move into a full column is illegal) carries over.
        """
        state = self._own(state)
        column = column.to(torch.int64).clamp(0, COLS - 1)
        landing = (self._landing(state) >> column) & _COLUMN0  # 1 << 8r, or 0 if full
        # log2 of 2^(8r) is 8r up to rounding (CUDA's log2 is not exact: truncating
        # 7.9999... picked the wrong row there), so round before the cast
        row = (landing.to(torch.float64).log2() / _W).round().clamp(min=0).to(torch.int64)
        return row * COLS + column

    @staticmethod
    def action_to_column(action: Tensor) -> Tensor:
        """[N] cell action -> [N] column (``action % 7``)."""
        return action % COLS


def _action_bit(action: Tensor) -> Tensor:
    """Cell action ``r * 7 + c`` -> bit ``r * 8 + c``."""
    return action + action // COLS


def _has_four(stones: Tensor) -> Tensor:
    """[N] bool: whether bitboards [N] hold four in a row in any direction."""
    found = torch.zeros_like(stones)
    for shift in _DIRECTIONS:
        pairs = stones & (stones >> shift)
        found |= pairs & (pairs >> (2 * shift))
    return found != 0
