"""Freestyle gomoku on a size x size board (7..19, default 9): five or more in a row wins.

Players alternate placing stones on empty cells; the first to hold an unbroken line of at
least five stones (horizontal, vertical or diagonal; six or more counts too, as in
freestyle gomoku and OpenSpiel's ``gomoku``) wins. A full board without a line is a draw.

**Layout.** Boards up to 19 x 19 = 361 cells do not fit an int64 bitboard, so the state is
one cell tensor ``cells`` [N, H*W + 1] int8 (0 empty, 1 player 0, 2 player 1). The extra
last column is a dummy cell that is always empty.

**Win check around the new stone only.** Only the placed stone can complete a line, so
the rules never scan the board: a table precomputed per cell lists, for 4 directions x 2
senses x 4 steps, the cells walked from it, with off-board steps pointing at the dummy
cell (so lines stop at the edge instead of wrapping onto the next row). One gather fetches
those 32 cells, a cumprod along the steps counts the unbroken run of the mover's stones in
each sense, and the mover wins if ``1 + forward + backward >= 5`` in some direction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor

from rltransfer.games.core import LINE_DIRECTIONS, Game, IllegalActionMode, Option, State
from rltransfer.games.fill import first_line_result

_SIZES = tuple(range(7, 20))
_DEFAULT_SIZE = 9
CONNECT = 5


@dataclasses.dataclass(frozen=True)
class GomokuState(State):
    cells: Tensor  # [N, H*W + 1] int8: 0 empty, 1 player 0, 2 player 1; last = dummy cell


class Gomoku(Game[GomokuState]):
    id = "gomoku"
    state_type = GomokuState
    options: ClassVar[Mapping[str, Option]] = {
        "size": Option(default=_DEFAULT_SIZE, choices=_SIZES, help="board side (size x size)")
    }
    num_planes = 2
    planes = ("own", "opponent")

    def __init__(
        self, size: int = _DEFAULT_SIZE, *, illegal_action: IllegalActionMode = "lose"
    ) -> None:
        super().__init__(illegal_action=illegal_action)
        self._square_board(size)
        self.max_moves = size * size
        self._cache: dict[torch.device, Tensor] = {}

    def _rays(self, device: torch.device) -> Tensor:
        """[H*W, 32] int64: the cells of the 4 x 2 x 4 rays from each cell (see docstring)."""
        if device not in self._cache:
            self._cache[device] = _build_rays(self.size, device)
        return self._cache[device]

    def _init(self, n: int, device: torch.device) -> GomokuState:
        return GomokuState(
            **self._base_fields(n, device),
            cells=torch.zeros(n, self.num_actions + 1, dtype=torch.int8, device=device),
        )

    def _legal_mask(self, state: State) -> Tensor:
        state = self._own(state)
        return state.cells[:, :-1] == 0

    def _is_legal(self, state: State, action: Tensor) -> Tensor:
        state = self._own(state)
        return state.cells.gather(1, action[:, None])[:, 0] == 0

    def _apply(self, state: State, action: Tensor) -> GomokuState:
        state = self._own(state)
        n, player = state.batch_size, state.current_player
        stone = (player + 1).to(torch.int8)[:, None]
        cells = state.cells.scatter(1, action[:, None], stone)
        # The rays never contain the cell itself, so reading them from the new board is safe.
        own = cells.gather(1, self._rays(state.device)[action]) == stone  # [N, 32]
        run = own.view(n, len(LINE_DIRECTIONS), 2, CONNECT - 1).cumprod(dim=3).sum(dim=3)
        won = (run.sum(dim=2) >= CONNECT - 1).any(dim=1)
        full = state.step_count + 1 >= self.max_moves
        return dataclasses.replace(
            state,
            cells=cells,
            current_player=1 - player,
            terminated=won | full,
            reward=self._mover_wins(state, won),
        )

    def null_move(self, state: State) -> GomokuState:
        """The same stones with the other player to move (scripted opponents' "what if")."""
        state = self._own(state)
        return dataclasses.replace(state, current_player=1 - state.current_player)

    def fill_result(self, state: State, priority: Tensor) -> Tensor:
        """A random playout's results as a fill (:mod:`rltransfer.games.fill`)."""
        return first_line_result(self.board(state), state, priority, CONNECT)

    def board(self, state: State) -> Tensor:
        """[N, H, W] int8: a view of ``state.cells`` (no copy); read it, do not write into it."""
        state = self._own(state)
        return state.cells[:, :-1].view(-1, self.size, self.size)


def _build_rays(size: int, device: torch.device) -> Tensor:
    """[H*W, 4 * 2 * 4] int64 ray table: off-board steps point at the dummy cell H*W."""

    def at(r: int, c: int) -> int:
        return r * size + c if 0 <= r < size and 0 <= c < size else size * size

    rays = [
        [
            at(r + sense * step * dr, c + sense * step * dc)
            for dr, dc in LINE_DIRECTIONS
            for sense in (1, -1)
            for step in range(1, CONNECT)
        ]
        for r in range(size)
        for c in range(size)
    ]
    return torch.tensor(rays, dtype=torch.int64, device=device)
