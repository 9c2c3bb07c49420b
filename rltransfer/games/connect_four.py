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
class _Tables:
    """Connect Four's constants on one device."""

    cell_bits: Tensor  # [42] the bit of each action's cell
    columns: Tensor  # [128 * 420] the column-choice table (see _column_table)
    column_bits: Tensor  # [7] the bits of each column
    shifts: Tensor  # [4, 1] the four line directions as shifts
    doubled: Tensor  # [4, 1] twice them

    @classmethod
    def on(cls, device: torch.device) -> _Tables:
        return cls(
            cell_bits=torch.tensor([r * _W + c for r in range(ROWS) for c in range(COLS)]),
            columns=_column_table(),
            column_bits=torch.tensor([_COLUMN0 << c for c in range(COLS)]),
            shifts=torch.tensor(_DIRECTIONS)[:, None],
            doubled=2 * torch.tensor(_DIRECTIONS)[:, None],
        ).to(device)

    def to(self, device: torch.device) -> _Tables:
        return _Tables(
            **{f.name: getattr(self, f.name).to(device) for f in dataclasses.fields(self)}
        )


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
        self._tables: dict[torch.device, _Tables] = {}

    def _consts(self, device: torch.device) -> _Tables:
        """The lookup tables on ``device`` (built once per device: no per-step copies)."""
        if device not in self._tables:
            self._tables[device] = _Tables.on(device)
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
        return bits_to_cells(self._landing(state), self._consts(state.device).cell_bits)

    def _is_legal(self, state: State, action: Tensor) -> Tensor:
        state = self._own(state)
        return ((self._landing(state) >> _action_bit(action)) & 1).bool()

    def _apply(self, state: State, action: Tensor) -> ConnectFourState:
        state = self._own(state)
        placed = state.mover | (1 << _action_bit(action))
        return play(self, state, placed, _has_four(placed, self._consts(state.device)))

    def null_move(self, state: State) -> ConnectFourState:
        state = self._own(state)
        return swap(state)

    def board(self, state: State) -> Tensor:
        state = self._own(state)
        return stone_board(state, self._consts(state.device).cell_bits, ROWS, COLS)

    def observe(self, state: State, player: Tensor | None = None) -> Tensor:
        state = self._own(state)
        own, opp = state.mover, state.other
        if player is not None:
            mover_views = player == state.current_player
            own, opp = torch.where(mover_views, own, opp), torch.where(mover_views, opp, own)
        cells = bits_to_cells(torch.stack([own, opp], dim=1), self._consts(state.device).cell_bits)
        return cells.view(-1, 2, ROWS, COLS).to(torch.float32)

    def random_action(self, state: State, generator: torch.Generator | None = None) -> Tensor:
        """Uniform over legal cells = uniform over open columns, drawn with one table lookup."""
        state = self._own(state)
        free = ~(state.mover | state.other)
        u = torch.randint(0, _DRAWS, free.shape, generator=generator, device=state.device)
        return self.column_to_action(state, self.random_column(free, u))

    def random_column(self, free: Tensor, u: Tensor) -> Tensor:
        """[N] int64: an open column uniform among a board's open columns, picked by ``u``
        [N] uniform in ``[0, 420)``; ``free`` [N] is the board's empty cells (``~(mover |
        other)``; a column is open while its top cell is empty). A full board gives
        column 0."""
        return self._consts(free.device).columns.take((free & _ROW) * _DRAWS + u)

    def playout_result(self, state: State, bits: Tensor) -> Tensor:
        """Player 0's results [N] float32 of uniformly random playouts
        (:meth:`Game.playout_result`), played on the two bitboards alone.

        Ply ``t`` drops the mover's stone into :meth:`random_column` with ``u = bits[:, t]
        * 420 >> 32`` (uniform in ``[0, 420)``) and tests four in a row: about 22 ops on
        [N] a ply, none of them a ``where`` with a scalar (on the CPU a small op costs its
        dispatch, and that one costs three). ``alive`` is -1 on a live board and 0 on a
        finished one: a finished board plays on (its moves cost nothing extra) but its
        stones are masked out of the win test, so its result never changes. A board that
        fills without a win has no open column, so nothing lands (column 0's landing cell
        is then empty) and its result stays 0, a draw.
        """
        state = self._own(state)
        tables = self._consts(state.device)
        mover, other = state.mover, state.other
        alive = state.terminated.to(torch.int64) - 1
        result = torch.where(state.terminated, state.reward, 0.0)
        wins = (self._mover_sign(state), -self._mover_sign(state))  # the mover's, by ply parity
        draws = (bits * _DRAWS) >> 32
        on_cpu = state.device.type == "cpu"
        # the most plies any board has left; elsewhere that would be one more host sync
        plies = (
            self.max_moves - int(state.step_count.min()) if on_cpu and len(bits) else self.max_moves
        )
        check_every = 1 if on_cpu else 8
        for ply in range(plies):
            if ply % check_every == 0 and not bool(alive.any()):
                break
            occupied = mover | other
            free = ~occupied
            landing = free & ((occupied >> _W) | _BOTTOM)
            column = self.random_column(free, draws[:, ply])
            placed = mover | (landing & tables.column_bits.take(column))
            won = _has_four(placed & alive, tables)
            result = torch.where(won, wins[ply % 2], result)
            alive = alive * ~won
            mover, other = other, placed
        return result

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


def _has_four(stones: Tensor, tables: _Tables) -> Tensor:
    """[N] bool: whether bitboards [N] hold four in a row in any direction (all four
    directions at once on [4, N]: six ops instead of twenty, which is most of a random
    playout's ply)."""
    pairs = stones & (stones >> tables.shifts)
    return (pairs & (pairs >> tables.doubled)).any(dim=0)
