"""The m,n,k-game: k in a row wins on an m x n board, optionally with gravity.

Rules. The board has ``m`` rows (its height) and ``n`` columns (its width). Players place
stones on empty cells in turn; the first to hold an unbroken line of at least ``k`` stones
across, down or along either diagonal wins (a longer line counts too: freestyle, as in
OpenSpiel's ``mnk`` and our ``gomoku``), and a full board without a line is a draw. With
``gravity`` a stone falls to the lowest empty cell of its column, so only that landing cell
of each column is a legal action, as in ``connect_four``. The family holds tic-tac-toe
(3,3,3), freestyle Gomoku (15,15,5; ``gomoku`` is m = n = size, k = 5) and Connect Four
(6,7,4 with gravity); the differential tests play each against its own module move for move.

Options: ``m`` and ``n`` in 3..19, ``k`` in 3..19 and at most ``max(m, n)`` (a longer line
cannot fit, so such a game is refused), ``gravity`` a bool. OpenSpiel's ``mnk`` names the
width ``m`` and the height ``n``; here ``m`` x ``n`` is rows x columns, as for a matrix.

**Layout: packed row words.** Each row of a player's stones is one small integer, bit ``c``
for column ``c``: int8 for ``n <= 7``, int16 for ``n <= 15``, int32 up to 19 columns. The
rows lie side by side in int64 words, so a state field is ``[N, L]`` int64 (``L = 1`` up to
8 rows of 7 columns, 4 for 15x15, 10 for 19x19) and the rules read it through a free
``view`` as ``[N, slots]`` rows; slots past the last row stay empty. Few int64 words keep the
template's board-wise selects cheap, and the smallest row type keeps unpacking cheap. As in
:mod:`rltransfer.games.stones`, the mover's and the other player's words swap every move.
Actions are the cells ``r * n + c``.

**Wins by run doubling over the whole board.** For a direction ``(dr, dc)`` a row array
``run`` has bit ``c`` of row ``r`` set where the ``span`` cells ``(r + i*dr, c + i*dc)``,
``i < span``, all hold the mover's stones. ANDing ``run`` with itself ``s <= span`` steps
further along (the rows ``s * dr`` on, shifted by ``s`` bits where ``dc != 0``) gives the
runs of ``span + s``; doubling ``span`` reaches ``k`` in ``ceil(log2 k)`` steps of one or two
ops, on rows laid out row-major (``[m, N]``) so every step reads contiguous memory. The mover
wins where a run of ``k`` is left. Only the new stone can complete a line (an earlier line
would have ended the game), so the whole-board scan answers the same as a check around the
stone, in fewer ops. Directions in which ``k`` cells cannot fit are skipped.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from rltransfer.errors import GameOptionError
from rltransfer.games.core import (
    LINE_DIRECTIONS,
    Game,
    IllegalActionMode,
    Option,
    State,
    bits_to_cells,
)
from rltransfer.games.fill import first_line_result
from rltransfer.games.stones import StonesState, play, swap

_SIDES = tuple(range(3, 20))
# Rows of up to 15 columns unpack to cells by one lookup in a [2 ** n, n] table (bool and
# float32: 0.5 and 2 MB at n = 15), several times faster than shifts; wider rows by shifts,
# as their tables would take 10 and 40 MB.
_UNPACK_TABLE_MAX = 15
_DEFAULTS: dict[str, Any] = {"m": 9, "n": 9, "k": 5, "gravity": False}


@dataclasses.dataclass(frozen=True)
class MNKState(StonesState):
    """``mover`` and ``other`` [N, L] int64: packed row words (see the module docstring)."""


class _Consts(NamedTuple):
    """Per-device lookup tensors (built once per device, see :meth:`MNK._consts`)."""

    cols: Tensor  # [n] row dtype: the bit of each column, 0..n-1
    cells: Tensor  # [m * n, L] int64: action a as packed words, only cell a's bit set
    board: Tensor  # [L] int64: every cell's bit set (no bit in the spare slots)
    floor: Tensor  # [L] int64: the bottom row's bits, "occupied" under it with gravity
    popcount: Tensor  # [2 ** n] int32: number of set bits of each row
    unpack: dict[torch.dtype, Tensor]  # bool, float32: [2 ** n, n] cells of each row, if any


class MNK(Game[MNKState]):
    """An m x n board (``m`` rows), ``k`` in a row wins; ``gravity`` as in Connect Four."""

    id = "mnk"
    state_type = MNKState
    options: ClassVar[Mapping[str, Option]] = {
        "m": Option(default=_DEFAULTS["m"], choices=_SIDES, help="board height (rows)"),
        "n": Option(default=_DEFAULTS["n"], choices=_SIDES, help="board width (columns)"),
        "k": Option(
            default=_DEFAULTS["k"], choices=_SIDES, help="stones in a row that win, <= max(m, n)"
        ),
        "gravity": Option(
            default=_DEFAULTS["gravity"],
            choices=(False, True),
            help="a stone falls to the lowest empty cell of its column (Connect Four)",
        ),
    }
    num_planes = 2
    planes = ("own", "opponent")

    def __init__(
        self,
        m: int = _DEFAULTS["m"],
        n: int = _DEFAULTS["n"],
        k: int = _DEFAULTS["k"],
        gravity: bool = _DEFAULTS["gravity"],
        *,
        illegal_action: IllegalActionMode = "lose",
    ) -> None:
        super().__init__(illegal_action=illegal_action)
        checked = self.validate_options({"m": m, "n": n, "k": k, "gravity": gravity})
        self.m, self.n, self.k = checked["m"], checked["n"], checked["k"]
        self.gravity: bool = checked["gravity"]
        if self.k > max(self.m, self.n):
            raise GameOptionError(
                f"mnk: k={self.k} stones in a row cannot fit on a {self.m}x{self.n} board "
                f"(m={self.m} rows, n={self.n} columns); choose k <= max(m, n) = "
                f"{max(self.m, self.n)}"
            )
        self.height, self.width = self.m, self.n
        self.num_actions = self.max_moves = self.m * self.n
        self._directions = line_directions(self.m, self.n, self.k)
        # the smallest signed row type with room for n bits, so rows are never negative
        self._row_type = torch.int8 if self.n <= 7 else torch.int16 if self.n <= 15 else torch.int32
        row_bytes = torch.empty(0, dtype=self._row_type).element_size()
        self._words = -(-self.m * row_bytes // 8)  # int64 words per board
        self._slots = self._words * 8 // row_bytes  # rows they hold, >= m
        self._cache: dict[torch.device, _Consts] = {}

    def _consts(self, device: torch.device) -> _Consts:
        if device not in self._cache:
            m, n, row = self.m, self.n, self._row_type
            cells = torch.zeros(m * n, self._slots, dtype=row)
            for r in range(m):
                cells[r * n : (r + 1) * n, r] = 1 << torch.arange(n, dtype=row)
            board = torch.zeros(self._slots, dtype=row)
            board[:m] = (1 << n) - 1
            floor = torch.zeros(self._slots, dtype=row)
            floor[m - 1] = (1 << n) - 1
            popcount, unpack = _row_tables(n)
            self._cache[device] = _Consts(
                cols=torch.arange(n, dtype=row, device=device),
                cells=cells.view(torch.int64).to(device),
                board=board.view(torch.int64).to(device),
                floor=floor.view(torch.int64).to(device),
                popcount=popcount.to(device),
                unpack={dtype: table.to(device) for dtype, table in unpack.items()},
            )
        return self._cache[device]

    def _rows(self, words: Tensor) -> Tensor:
        """[..., L] int64 packed words -> [..., slots] rows (a view, no copy)."""
        return words.view(self._row_type)

    # ----------------------------------------------------------------------------- rules
    def _init(self, n: int, device: torch.device) -> MNKState:
        empty = torch.zeros(n, self._words, dtype=torch.int64, device=device)
        return MNKState(**self._base_fields(n, device), mover=empty, other=empty)

    def _legal_words(self, state: MNKState) -> Tensor:
        """[N, L] int64 packed words of the legal cells: the empty ones, or with gravity
        the empty ones right above a stone or the bottom edge (one per open column)."""
        c = self._consts(state.device)
        occupied = state.mover | state.other
        legal = ~occupied & c.board
        if self.gravity:
            below = F.pad(self._rows(occupied)[:, 1:], (0, 1))  # row r + 1 in slot r
            legal = legal & (below.view(torch.int64) | c.floor)
        return legal

    def _legal_mask(self, state: State) -> Tensor:
        state = self._own(state)
        return self._cells(self._legal_words(state), torch.bool).view(-1, self.num_actions)

    def _is_legal(self, state: State, action: Tensor) -> Tensor:
        state = self._own(state)
        cell = self._consts(state.device).cells.index_select(0, action)
        return (self._legal_words(state) & cell).any(dim=1)

    def _apply(self, state: State, action: Tensor) -> MNKState:
        state = self._own(state)
        placed = state.mover | self._consts(state.device).cells.index_select(0, action)
        won = has_line(self._rows(placed)[:, : self.m], self.k, self._directions)
        return play(self, state, placed, won)

    def null_move(self, state: State) -> MNKState:
        state = self._own(state)
        return swap(state)

    def random_action(self, state: State, generator: torch.Generator | None = None) -> Tensor:
        """[N] int64 actions uniform among each board's legal cells, in two small draws.

        One uniform ``k`` in ``[0, count)`` per board names the k-th legal cell in
        row-major order: a running count of the legal cells per row (popcount table) gives
        its row, and a running count of that row's bits its column. With gravity the legal
        cells are one per open column, so this is uniform over the open columns. A
        finished board gets a legal cell, or cell 0 if it is full (its mask is all True).
        """
        state = self._own(state)
        c = self._consts(state.device)
        legal = self._rows(self._legal_words(state))  # [N, slots]
        count = c.popcount.index_select(0, legal.reshape(-1).to(torch.int32))
        count = count.view(legal.shape)  # [N, slots] int32 legal cells per row
        running = count.cumsum(dim=1, dtype=torch.int32)
        total = running[:, -1:]
        u = torch.rand(total.shape, generator=generator, device=state.device)
        k = torch.minimum((u * total).to(torch.int32), total - 1)  # [N, 1]; -1 if none
        row = torch.searchsorted(running, k + 1)  # the first row whose running count > k
        before = (running - count).gather(1, row)  # legal cells in the rows above it
        bits = ((legal.gather(1, row) >> c.cols) & 1).cumsum(dim=1, dtype=torch.int32)
        col = torch.searchsorted(bits, k - before + 1)  # its (k - before)-th legal cell
        return (row * self.n + col)[:, 0]

    # ------------------------------------------------------------------------- views
    def fill_result(self, state: State, priority: Tensor) -> Tensor | None:
        """A random playout's results as a fill (:mod:`rltransfer.games.fill`); ``None``
        with gravity, where only a column's lowest empty cell is legal."""
        if self.gravity:
            return None
        return first_line_result(self.board(state), state, priority, self.k)

    def board(self, state: State) -> Tensor:
        state = self._own(state)
        first = (state.current_player == 0)[:, None]
        stones = torch.stack(
            [
                torch.where(first, state.mover, state.other),
                torch.where(first, state.other, state.mover),
            ],
            dim=1,
        )
        cells = self._cells(stones, torch.int8)  # [N, 2, m, n]
        return cells[:, 0] + 2 * cells[:, 1]

    def observe(self, state: State, player: Tensor | None = None) -> Tensor:
        """[N, 2, m, n] float32: the viewer's stones, the other player's stones."""
        state = self._own(state)
        own, opp = state.mover, state.other
        if player is not None:
            mover_views = (player == state.current_player)[:, None]
            own, opp = torch.where(mover_views, own, opp), torch.where(mover_views, opp, own)
        return self._cells(torch.stack([own, opp], dim=1), torch.float32)

    def _cells(self, words: Tensor, dtype: torch.dtype) -> Tensor:
        """[..., L] int64 packed words -> [..., m, n] cells of ``dtype`` (0 / 1), a new
        tensor: one table lookup for bool and float32 rows up to 15 columns, else shifts."""
        c = self._consts(words.device)
        rows = self._rows(words)[..., : self.m]
        if dtype not in c.unpack:  # in place on the fresh shifted copy: one big temporary
            return (rows.unsqueeze(-1) >> c.cols).bitwise_and_(1).to(dtype)
        cells = c.unpack[dtype].index_select(0, rows.reshape(-1).to(torch.int32))
        return cells.view(*rows.shape, self.n)


@functools.cache
def _row_tables(n: int) -> tuple[Tensor, dict[torch.dtype, Tensor]]:
    """(popcount [2 ** n] int32, {bool, float32: [2 ** n, n] cells of each row}) of the
    rows of ``n`` columns, on the CPU; no cell tables above ``_UNPACK_TABLE_MAX`` columns."""
    rows = torch.arange(1 << n)
    popcount = sum(((rows >> c) & 1 for c in range(n)), torch.zeros_like(rows))
    if n > _UNPACK_TABLE_MAX:
        return popcount.to(torch.int32), {}
    cells = bits_to_cells(rows, torch.arange(n))
    return popcount.to(torch.int32), {
        dtype: cells.to(dtype) for dtype in (torch.bool, torch.float32)
    }


def line_directions(m: int, n: int, k: int) -> tuple[tuple[int, int], ...]:
    """The :data:`~rltransfer.games.core.LINE_DIRECTIONS` in which ``k`` cells fit on a
    board of ``m`` rows, ``n`` columns."""
    return tuple(
        (dr, dc) for dr, dc in LINE_DIRECTIONS if (dr == 0 or k <= m) and (dc == 0 or k <= n)
    )


def has_line(
    rows: Tensor, k: int, directions: tuple[tuple[int, int], ...] = LINE_DIRECTIONS
) -> Tensor:
    """[N] bool: whether the rows ``rows`` [N, H] (bit ``c`` = column ``c``, never negative)
    hold ``k`` stones in an unbroken line along one of ``directions`` ((rows down, columns
    right) per step; one that goes down needs ``k <= H``). Run doubling, see the module
    docstring; the rows are transposed once so that every step slices contiguous memory."""
    rows = rows.t().contiguous()  # [H, N]
    won = torch.zeros(rows.shape[1], dtype=torch.bool, device=rows.device)
    for dr, dc in directions:
        run, span = rows, 1
        while span < k:
            s = min(span, k - span)  # s <= span: the two runs overlap or touch
            ahead = run[s * dr :]
            if dc:
                ahead = ahead >> s if dc > 0 else ahead << s
            run = run[: run.shape[0] - s * dr] & ahead
            span += s
        won |= run.any(dim=0)
    return won
