"""Tic-tac-toe on 9-bit bitboards: 3x3, three in a row wins, a full board is a draw.

Bit ``k`` of a bitboard is cell ``k = r * 3 + c``, which is also the action index. With
only 512 possible bitboards, "does this player have three in a row" is one lookup in a
512-entry table, and a uniform random legal move is one lookup in a table of
``512 x 2520`` (2520 = lcm(1..9), so every empty cell of a pattern appears equally often).
"""

from __future__ import annotations

import dataclasses
import functools

import torch
from torch import Tensor

from rltransfer.games.core import Game, IllegalActionMode, State, bits_to_cells
from rltransfer.games.fill import first_line_result
from rltransfer.games.stones import StonesState, empty_boards, play, stone_board, swap

_LINES = [
    [0, 1, 2], [3, 4, 5], [6, 7, 8],  # rows
    [0, 3, 6], [1, 4, 7], [2, 5, 8],  # columns
    [0, 4, 8], [2, 4, 6],  # diagonals
]  # fmt: skip
_FULL = (1 << 9) - 1
_DRAWS = 2520


@functools.cache
def _tables() -> tuple[Tensor, Tensor]:
    """(wins [512] bool, uniform empty-cell choice [512 * 2520] int64)."""
    masks = [sum(1 << k for k in line) for line in _LINES]
    wins = torch.tensor([any(b & m == m for m in masks) for b in range(_FULL + 1)])
    choice = torch.zeros(_FULL + 1, _DRAWS, dtype=torch.int64)
    for empty in range(1, _FULL + 1):
        cells = [k for k in range(9) if empty >> k & 1]
        choice[empty] = torch.tensor(cells * (_DRAWS // len(cells)))
    return wins, choice.view(-1)


@dataclasses.dataclass(frozen=True)
class TicTacToeState(StonesState):
    """``mover`` and ``other`` 9-bit bitboards (bit k = cell k)."""


class TicTacToe(Game[TicTacToeState]):
    id = "tic_tac_toe"
    state_type = TicTacToeState
    height, width = 3, 3
    num_planes = 2
    planes = ("own", "opponent")
    num_actions = 9
    max_moves = 9

    def __init__(self, *, illegal_action: IllegalActionMode = "lose") -> None:
        super().__init__(illegal_action=illegal_action)
        self._cache: dict[torch.device, tuple[Tensor, Tensor, Tensor]] = {}

    def _consts(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """(cell bit positions [9], win table, move-choice table) on ``device``."""
        if device not in self._cache:
            wins, choice = _tables()
            self._cache[device] = (
                torch.arange(9, device=device),
                wins.to(device),
                choice.to(device),
            )
        return self._cache[device]

    def _init(self, n: int, device: torch.device) -> TicTacToeState:
        return empty_boards(TicTacToeState, self, n, device)

    @staticmethod
    def _empty(state: TicTacToeState) -> Tensor:
        return ~(state.mover | state.other) & _FULL

    def _legal_mask(self, state: State) -> Tensor:
        state = self._own(state)
        return bits_to_cells(self._empty(state), self._consts(state.device)[0])

    def _is_legal(self, state: State, action: Tensor) -> Tensor:
        state = self._own(state)
        return ((self._empty(state) >> action) & 1).bool()

    def _apply(self, state: State, action: Tensor) -> TicTacToeState:
        state = self._own(state)
        _, wins, _ = self._consts(state.device)
        placed = state.mover | (1 << action)
        return play(self, state, placed, wins[placed])

    def null_move(self, state: State) -> TicTacToeState:
        state = self._own(state)
        return swap(state)

    def fill_result(self, state: State, priority: Tensor) -> Tensor:
        """A random playout's results as a fill (:mod:`rltransfer.games.fill`)."""
        return first_line_result(self.board(state), state, priority, 3)

    def board(self, state: State) -> Tensor:
        state = self._own(state)
        return stone_board(state, self._consts(state.device)[0], 3, 3)

    def random_action(self, state: State, generator: torch.Generator | None = None) -> Tensor:
        state = self._own(state)
        _, _, choice = self._consts(state.device)
        u = torch.randint(0, _DRAWS, state.mover.shape, generator=generator, device=state.device)
        return choice[self._empty(state) * _DRAWS + u]
