"""Tic-tac-toe on 9-bit bitboards: 3x3, three in a row wins, a full board is a draw.

Bit ``k`` of a player's int64 is cell ``k = r * 3 + c``, which is also the action index.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from rltransfer.games.core import Game, IllegalActionMode, State, bits_to_cells

_LINES = [
    [0, 1, 2], [3, 4, 5], [6, 7, 8],  # rows
    [0, 3, 6], [1, 4, 7], [2, 5, 8],  # columns
    [0, 4, 8], [2, 4, 6],  # diagonals
]  # fmt: skip
_FULL = (1 << 9) - 1


@dataclasses.dataclass(frozen=True)
class TicTacToeState(State):
    stones: Tensor  # [N, 2] int64 bitboards of player 0 (X) and player 1 (O)


class TicTacToe(Game):
    id = "tic_tac_toe"
    height, width = 3, 3
    num_planes = 2
    num_actions = 9
    max_moves = 9

    def __init__(self, *, illegal_action: IllegalActionMode = "lose") -> None:
        super().__init__(illegal_action=illegal_action)
        self._cache: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def _consts(self, device: torch.device) -> tuple[Tensor, Tensor]:
        if device not in self._cache:
            lines = torch.tensor([sum(1 << k for k in line) for line in _LINES], device=device)
            self._cache[device] = (torch.arange(9, device=device), lines)
        return self._cache[device]

    def _init(self, n: int, device: torch.device) -> TicTacToeState:
        return TicTacToeState(
            **self._base_fields(n, device),
            stones=torch.zeros(n, 2, dtype=torch.int64, device=device),
        )

    def _empty(self, state: TicTacToeState) -> Tensor:
        return ~(state.stones[:, 0] | state.stones[:, 1]) & _FULL

    def _legal_mask(self, state: State) -> Tensor:
        assert isinstance(state, TicTacToeState)
        cells, _ = self._consts(state.device)
        return bits_to_cells(self._empty(state), cells)

    def _is_legal(self, state: State, action: Tensor) -> Tensor:
        assert isinstance(state, TicTacToeState)
        return ((self._empty(state) >> action) & 1).bool()

    def _apply(self, state: State, action: Tensor) -> TicTacToeState:
        assert isinstance(state, TicTacToeState)
        _, lines = self._consts(state.device)
        player = state.current_player
        mover_stones = state.stones.gather(1, player[:, None])[:, 0] | (1 << action)
        stones = state.stones.scatter(1, player[:, None], mover_stones[:, None])
        won = ((mover_stones[:, None] & lines) == lines).any(dim=1)
        full = state.step_count + 1 >= self.max_moves
        return dataclasses.replace(
            state,
            stones=stones,
            current_player=1 - player,
            terminated=won | full,
            rewards=self._mover_wins(state, won),
        )

    def board(self, state: State) -> Tensor:
        assert isinstance(state, TicTacToeState)
        cells, _ = self._consts(state.device)
        bits = bits_to_cells(state.stones, cells).to(torch.int8)  # [N, 2, 9]
        return (bits[:, 0] + 2 * bits[:, 1]).view(-1, 3, 3)
