"""Connect Four on int64 bitboards: 6 rows x 7 columns, four in a row wins.

Actions are the 42 cells (``r * 7 + c``, row 0 at the top), so the policy head is the same
fully convolutional head as for every other cell game. A cell is legal exactly where a
stone dropped into its column would land. The usual 7 "column" actions map both ways with
:meth:`ConnectFour.column_to_action` (column -> landing cell on each board) and
:meth:`ConnectFour.action_to_column` (``action % 7``).

Internally each player's stones are one int64 in the classic column-major layout with a
sentinel row: bit ``c * 7 + h`` is column ``c`` at height ``h`` from the bottom (``h`` 0..5,
``h = 6`` always empty). Then the landing cells of all columns are ``(stones + BOTTOM) &
BOARD`` and a four-in-a-row test is four shift-and-and pairs with no wrap-around.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from rltransfer.games.core import Game, IllegalActionMode, State, bits_to_cells

ROWS, COLS = 6, 7
_STRIDE = ROWS + 1
_BOTTOM = sum(1 << (c * _STRIDE) for c in range(COLS))
_BOARD = sum(((1 << ROWS) - 1) << (c * _STRIDE) for c in range(COLS))
# Shifts for the four line directions: vertical, horizontal and the two diagonals.
_DIRECTIONS = (1, _STRIDE, _STRIDE - 1, _STRIDE + 1)


@dataclasses.dataclass(frozen=True)
class ConnectFourState(State):
    stones: Tensor  # [N, 2] int64 bitboards of player 0 and player 1


class ConnectFour(Game):
    id = "connect_four"
    height, width = ROWS, COLS
    num_planes = 2
    num_actions = ROWS * COLS
    max_moves = ROWS * COLS

    def __init__(self, *, illegal_action: IllegalActionMode = "lose") -> None:
        super().__init__(illegal_action=illegal_action)
        # bit position of each action's cell: row r (from the top), column c
        self._pos_cpu = torch.tensor(
            [c * _STRIDE + (ROWS - 1 - r) for r in range(ROWS) for c in range(COLS)]
        )
        self._cache: dict[torch.device, tuple[Tensor, Tensor, Tensor]] = {}

    def _consts(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        if device not in self._cache:
            directions = torch.tensor(_DIRECTIONS, device=device)
            col_bits = torch.tensor([c * _STRIDE for c in range(COLS)], device=device)
            self._cache[device] = (self._pos_cpu.to(device), directions, col_bits)
        return self._cache[device]

    def _init(self, n: int, device: torch.device) -> ConnectFourState:
        return ConnectFourState(
            **self._base_fields(n, device),
            stones=torch.zeros(n, 2, dtype=torch.int64, device=device),
        )

    @staticmethod
    def _landing(state: ConnectFourState) -> Tensor:
        """[N] int64: one bit per non-full column, the cell where its next stone lands."""
        occupied = state.stones[:, 0] | state.stones[:, 1]
        return (occupied + _BOTTOM) & _BOARD

    def _legal_mask(self, state: State) -> Tensor:
        assert isinstance(state, ConnectFourState)
        pos, _, _ = self._consts(state.device)
        return bits_to_cells(self._landing(state), pos)

    def _is_legal(self, state: State, action: Tensor) -> Tensor:
        assert isinstance(state, ConnectFourState)
        pos, _, _ = self._consts(state.device)
        return ((self._landing(state) >> pos[action]) & 1).bool()

    def _apply(self, state: State, action: Tensor) -> ConnectFourState:
        assert isinstance(state, ConnectFourState)
        pos, directions, _ = self._consts(state.device)
        player = state.current_player
        move = torch.ones_like(action) << pos[action]
        mover_stones = state.stones.gather(1, player[:, None])[:, 0] | move
        stones = state.stones.scatter(1, player[:, None], mover_stones[:, None])
        won = _has_four(mover_stones, directions)
        full = state.step_count + 1 >= self.max_moves
        return dataclasses.replace(
            state,
            stones=stones,
            current_player=1 - player,
            terminated=won | full,
            rewards=self._mover_wins(state, won),
        )

    def board(self, state: State) -> Tensor:
        assert isinstance(state, ConnectFourState)
        pos, _, _ = self._consts(state.device)
        cells = bits_to_cells(state.stones, pos).to(torch.int8)  # [N, 2, 42]
        return (cells[:, 0] + 2 * cells[:, 1]).view(-1, ROWS, COLS)

    def random_action(self, state: State, generator: torch.Generator | None = None) -> Tensor:
        """Uniform over legal cells = uniform over non-full columns (7 draws, not 42)."""
        assert isinstance(state, ConnectFourState)
        _, _, col_bits = self._consts(state.device)
        open_cols = ((self._landing(state)[:, None] >> col_bits) & ((1 << ROWS) - 1)) != 0
        open_cols |= state.terminated[:, None]
        u = torch.rand(open_cols.shape, generator=generator, device=state.device)
        column = torch.where(open_cols, u, -1.0).argmax(dim=1)
        return self.column_to_action(state, column)

    # ---------------------------------------------------------------- column actions
    def column_to_action(self, state: State, column: Tensor) -> Tensor:
        """[N] column (0..6) -> [N] cell action where a stone in that column lands.

        A full column maps to its top cell, which is illegal, so the usual rule (a move
        into a full column is illegal) carries over.
        """
        assert isinstance(state, ConnectFourState)
        _, _, col_bits = self._consts(state.device)
        column = column.to(torch.int64)
        occupied = state.stones[:, 0] | state.stones[:, 1]
        col_stones = (occupied >> col_bits[column.clamp(0, COLS - 1)]) & ((1 << ROWS) - 1)
        height = _popcount6(col_stones)
        row = (ROWS - 1 - height).clamp(min=0)
        return row * COLS + column

    @staticmethod
    def action_to_column(action: Tensor) -> Tensor:
        """[N] cell action -> [N] column (``action % 7``)."""
        return action % COLS


def _has_four(stones: Tensor, directions: Tensor) -> Tensor:
    """[N] bool: whether bitboards [N] hold four in a row in any direction."""
    x = stones[:, None]
    pairs = x & (x >> directions)
    return ((pairs & (pairs >> (2 * directions))) != 0).any(dim=1)


def _popcount6(x: Tensor) -> Tensor:
    """Number of set bits in a column (x < 64): its stones stack from the bottom."""
    return sum(((x >> k) & 1 for k in range(ROWS)), torch.zeros_like(x))
