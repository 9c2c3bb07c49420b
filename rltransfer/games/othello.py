"""Othello (Reversi) on int64 bitboards, on a 6x6 or an 8x8 board.

Rules. Player 0 is Black and moves first; the start position has White on the top-left and
bottom-right squares of the centre 2x2 (d4 and e5 on 8x8) and Black on the other two. A move
places a disc on an empty cell so that it brackets, in at least one of the 8 directions, a
contiguous line of opponent discs ending in one of the mover's discs; every bracketed line
flips. A player with no such move must pass (action ``H * W``, the last one), and may pass
only then. The game ends when neither player can move; more discs wins, equal is a draw.

Bit layout. Each player's discs are one int64 per board: bit ``r * W + c`` is row ``r``
(counted from the top) and column ``c``, the same number as the cell action. On 8x8 all 64
bits are cells and bit 63 (the bottom-right corner, h8) is the sign bit; on 6x6 only bits
0..35 are used and the rest stay zero.

Directions. Stepping to a neighbour ``(dr, dc)`` is a shift by ``dr * W + dc``: to higher
bits (``<<``) for E, SW, S and SE, to lower bits (``>>``) for W, NE, N and NW. All 8 run at
once along a last dimension of size 8 as ``(x << left) >> right``, one of the two amounts
being zero. After every shift the result is ANDed with the direction's *destination mask*,
the cells whose source cell ``(r - dr, c - dc)`` is on the board. That one mask removes

* bits that wrapped from one row's edge to the other edge of the next row,
* bits pushed past the last cell (on 6x6),
* the copies of the sign bit that torch's arithmetic ``>>`` on int64 brings in at the top:
  a right shift by ``s`` fills bits ``64 - s .. 63``, and a destination ``d`` is in the
  mask only if its source ``d + s`` is a cell, so ``d < 64 - s``.

Moves and flips are "dumb7fill" flood fills along those 8 rays, ``W - 2`` shifts deep (the
longest line of opponent discs a move can bracket). Each step computes the next player's
moves and the following player's moves together; the first is kept in the state (so the
legal mask and the legality test are bit reads), and where both are empty the game is over.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor

from rltransfer.games.core import Game, IllegalActionMode, Option, State, bits_to_cells, int64_const

# (dr, dc) of the 8 directions; the first four shift left (to higher bits), the rest right.
_DIRECTIONS = ((0, 1), (1, -1), (1, 0), (1, 1), (0, -1), (-1, 1), (-1, 0), (-1, -1))

# SWAR popcount masks (bit 63 is cleared before use, so every partial sum stays >= 0).
_M1 = int64_const(0x5555_5555_5555_5555)
_M2 = int64_const(0x3333_3333_3333_3333)
_M4 = int64_const(0x0F0F_0F0F_0F0F_0F0F)
_LOW63 = int64_const((1 << 63) - 1)


@dataclasses.dataclass(frozen=True)
class OthelloState(State):
    stones: Tensor  # [N, 2] int64 bitboards of player 0 (Black) and player 1 (White)
    moves: Tensor  # [N] int64 bitboard of the cells the player to move may play (0: pass)


class _Consts(NamedTuple):
    """Per-device lookup tensors (built once per device, see :meth:`Othello._consts`)."""

    left: Tensor  # [8] int64 left-shift amount of each direction (0 for right shifts)
    right: Tensor  # [8] int64 right-shift amount of each direction (0 for left shifts)
    dest: Tensor  # [8] int64 destination mask of each direction
    action_bits: Tensor  # [A] int64 bit of each action's cell; 0 for the pass action
    cells: Tensor  # [H * W] int64 bit index of each cell (0..H*W-1)


class Othello(Game[OthelloState]):
    """Othello on ``size`` x ``size`` (6 or 8) bitboards; actions are cells plus a last pass."""

    id = "othello"
    state_type = OthelloState
    options: ClassVar[Mapping[str, Option]] = {
        "size": Option(default=8, choices=(6, 8), help="board side (6x6 or the standard 8x8)")
    }
    has_pass = True
    planes = ("own", "opponent", "black_to_move")

    def __init__(self, size: int = 8, *, illegal_action: IllegalActionMode = "lose") -> None:
        super().__init__(illegal_action=illegal_action)
        self._square_board(size)  # cells + the pass (has_pass)
        self.pass_action = size * size
        # planes: own discs, opponent discs, 1.0 everywhere when Black is to move
        self.num_planes = 3
        # Every pass is followed by a cell move (two passes in a row end the game first),
        # and there are size*size - 4 cell moves at most.
        self.max_moves = 2 * (size * size - 4)
        self._board_mask = int64_const((1 << (size * size)) - 1)
        self._cache: dict[torch.device, _Consts] = {}

    # ------------------------------------------------------------------------- constants
    def _consts(self, device: torch.device) -> _Consts:
        if device not in self._cache:
            n = self.size
            left, right, dest = [], [], []
            for dr, dc in _DIRECTIONS:
                shift = dr * n + dc
                left.append(max(shift, 0))
                right.append(max(-shift, 0))
                on = [
                    r * n + c
                    for r in range(n)
                    for c in range(n)
                    if 0 <= r - dr < n and 0 <= c - dc < n
                ]
                dest.append(int64_const(sum(1 << k for k in on)))
            action_bits = [int64_const(1 << k) for k in range(n * n)] + [0]
            self._cache[device] = _Consts(
                left=torch.tensor(left, device=device),
                right=torch.tensor(right, device=device),
                dest=torch.tensor(dest, device=device),
                action_bits=torch.tensor(action_bits, device=device),
                cells=torch.arange(n * n, device=device),
            )
        return self._cache[device]

    # ----------------------------------------------------------------------------- rules
    def _init(self, n: int, device: torch.device) -> OthelloState:
        h = self.size // 2
        white = (1 << ((h - 1) * self.size + h - 1)) | (1 << (h * self.size + h))
        black = (1 << ((h - 1) * self.size + h)) | (1 << (h * self.size + h - 1))
        stones = torch.tensor([[black, white]], dtype=torch.int64, device=device).repeat(n, 1)
        return self._setup(stones, torch.zeros(n, dtype=torch.int64, device=device))

    def position(self, stones: Tensor, current_player: Tensor) -> OthelloState:
        """N boards set up from bitboards, e.g. for tests, puzzles or opening books.

        ``stones`` [N, 2] int64 holds Black's and White's discs (bit ``r * W + c``, see
        :func:`~rltransfer.games.core.int64_const` for bit 63), ``current_player`` [N] the
        player to move. The mover's moves and whether the game is already over are derived
        here; a finished board gets its final reward (so :meth:`winner` reads it), and
        ``step_count`` starts at 0. The input is checked (one host sync), unlike in ``step``.
        """
        stones = stones.to(torch.int64)
        player = current_player.to(device=stones.device, dtype=torch.int64)
        if stones.dim() != 2 or stones.shape[1] != 2 or player.shape != stones.shape[:1]:
            raise ValueError(
                f"othello: expected stones [N, 2] and current_player [N], got "
                f"{list(stones.shape)} and {list(player.shape)}"
            )
        if bool(((player != 0) & (player != 1)).any()):
            raise ValueError(f"othello: current_player must be 0 or 1, got {player.tolist()}")
        if bool(((stones[:, 0] & stones[:, 1]) != 0).any()):
            raise ValueError("othello: a cell holds both a Black and a White disc")
        if bool(((stones & ~self._board_mask) != 0).any()):
            raise ValueError(f"othello: disc bits outside the {self.size}x{self.size} board")
        return self._setup(stones.clone(), player.clone())

    def _setup(self, stones: Tensor, player: Tensor) -> OthelloState:
        """The state of positions ``stones`` [N, 2] with ``player`` [N] to move (no checks)."""
        mover_view = torch.where((player == 0)[:, None], stones, stones.flip(1))  # own, opp
        both = self._moves(mover_view, mover_view.flip(1))  # [N, 2] mover's, other's moves
        over = (both == 0).all(dim=1)
        return OthelloState(
            current_player=player,
            terminated=over,
            reward=_disc_reward(stones, over),
            step_count=torch.zeros_like(player),
            stones=stones,
            moves=both[:, 0],
        )

    def null_move(self, state: State) -> OthelloState:
        state = self._own(state)
        flipped = self._setup(state.stones, 1 - state.current_player)
        return dataclasses.replace(flipped, step_count=state.step_count)

    def _legal_mask(self, state: State) -> Tensor:
        state = self._own(state)
        c = self._consts(state.device)
        cells = bits_to_cells(state.moves, c.cells)
        return torch.cat([cells, (state.moves == 0)[:, None]], dim=1)

    def _is_legal(self, state: State, action: Tensor) -> Tensor:
        """A cell is legal if its bit is in ``moves``; the pass only where ``moves`` is 0."""
        state = self._own(state)
        c = self._consts(state.device)
        cell_ok = (state.moves & c.action_bits[action]) != 0
        return cell_ok | ((action == self.pass_action) & (state.moves == 0))

    def _apply(self, state: State, action: Tensor) -> OthelloState:
        state = self._own(state)
        c = self._consts(state.device)
        player = state.current_player
        is_black = (player == 0)[:, None]
        own, opp = torch.where(is_black, state.stones, state.stones.flip(1)).unbind(1)
        disc = c.action_bits[action]  # 0 for the pass: nothing placed, nothing flipped
        flips = self._flips(own, opp, disc)
        mover_view = torch.stack([own | disc | flips, opp ^ flips], dim=1)
        next_view = mover_view.flip(1)  # the next player's own, opp
        both = self._moves(next_view, mover_view)  # [N, 2] next player's, mover's moves
        over = (both == 0).all(dim=1)
        stones = torch.where(is_black, mover_view, next_view)
        return dataclasses.replace(
            state,
            stones=stones,
            moves=both[:, 0],
            current_player=1 - player,
            terminated=over,
            reward=_disc_reward(stones, over),
        )

    def _rays(self, start: Tensor, opp: Tensor, c: _Consts) -> Tensor:
        """[..., 8] int64: from the discs ``start`` [...], the run of ``opp`` discs along
        each direction (dumb7fill, ``W - 2`` steps: the longest run a move can bracket).

        In-place ops on the fresh intermediates: each step is 4 ops with no allocation.
        """
        opp8 = opp[..., None] & c.dest  # opponent discs a shift may land on
        run = start[..., None] << c.left
        run.bitwise_right_shift_(c.right).bitwise_and_(opp8)
        step = torch.empty_like(run)
        for _ in range(self.size - 3):
            torch.bitwise_left_shift(run, c.left, out=step)
            run.bitwise_or_(step.bitwise_right_shift_(c.right).bitwise_and_(opp8))
        return run

    @staticmethod
    def _next_cells(run: Tensor, c: _Consts) -> Tensor:
        """[..., 8] int64: the cell one step further along each direction (in place)."""
        return run.bitwise_left_shift_(c.left).bitwise_right_shift_(c.right).bitwise_and_(c.dest)

    def _moves(self, own: Tensor, opp: Tensor) -> Tensor:
        """[...] int64 -> [...] int64: the cells where ``own`` may play against ``opp``.

        From every own disc, walk each ray through opponent discs; an empty cell right
        after at least one opponent disc is a move.
        """
        c = self._consts(own.device)
        ends = self._next_cells(self._rays(own, opp, c), c)
        ends = ends[..., :4] | ends[..., 4:]  # OR over the 8 directions
        ends = ends[..., :2] | ends[..., 2:]
        empty = ~(own | opp) & self._board_mask
        return (ends[..., 0] | ends[..., 1]) & empty

    def _flips(self, own: Tensor, opp: Tensor, disc: Tensor) -> Tensor:
        """[N] int64: the opponent discs that a disc placed on bit ``disc`` [N] flips.

        Walk each ray from the new disc through opponent discs; the run flips if the cell
        after it holds an own disc. The runs of different directions are disjoint, so their
        sum is their union (also for bit 63: no carries), one op instead of three ORs.
        """
        c = self._consts(own.device)
        run = self._rays(disc, opp, c)
        closed = self._next_cells(run.clone(), c).bitwise_and_(own[:, None]) != 0
        return torch.where(closed, run, 0).sum(dim=1)

    def random_action(self, state: State, generator: torch.Generator | None = None) -> Tensor:
        """[N] int64 actions uniform among each board's legal actions.

        Cheaper than the default (which draws [N, A] uniforms and takes an argmax): draw one
        uniform ``k`` in ``[0, count)`` per board and take the k-th set bit of ``moves``,
        found by a binary search in the running count of its bits. With no cell move the
        search runs off the end, at ``H * W``: the pass. A finished board gets a cell move
        or the pass, both inside its all-True legal mask.
        """
        state = self._own(state)
        c = self._consts(state.device)
        running = (state.moves[:, None] >> c.cells).bitwise_and_(1).cumsum_(dim=1)
        count = running[:, -1]
        u = torch.rand(count.shape, generator=generator, device=state.device)
        k = torch.minimum((u * count).to(torch.int64), count - 1)  # count 0 -> k = -1
        return torch.searchsorted(running, (k + 1).clamp_(min=1)[:, None])[:, 0]

    # ------------------------------------------------------------------------- views
    def board(self, state: State) -> Tensor:
        state = self._own(state)
        c = self._consts(state.device)
        cells = bits_to_cells(state.stones, c.cells).to(torch.int8)  # [N, 2, H*W]
        return (cells[:, 0] + 2 * cells[:, 1]).view(-1, self.size, self.size)

    def observe(self, state: State, player: Tensor | None = None) -> Tensor:
        """[N, 3, H, W] float32: viewer's discs, the other player's discs, Black-to-move.

        The third plane is 1.0 everywhere when Black (player 0) is to move, else 0.0. Own
        and opponent planes alone cannot tell the colours apart, and after a pass the mover
        is not the one whose turn the disc count suggests, so the plane says it outright.
        """
        state = self._own(state)
        c = self._consts(state.device)
        viewer = state.current_player if player is None else player.to(torch.int64)
        order = torch.stack([viewer, 1 - viewer], dim=1)  # [N, 2] own, opp
        stones = state.stones.gather(1, order)
        planes = bits_to_cells(stones, c.cells).float()  # [N, 2, H*W]
        black_to_move = (state.current_player == 0).float()[:, None, None]
        planes = torch.cat([planes, black_to_move.expand(-1, 1, self.size * self.size)], dim=1)
        return planes.view(-1, 3, self.size, self.size)


def _popcount(x: Tensor) -> Tensor:
    """Number of set bits of each int64 (SWAR), bit 63 included.

    Bit 63 is counted apart (``x < 0``) and cleared first, so every partial sum below is
    non-negative and arithmetic ``>>`` brings in only zeros.
    """
    top = (x < 0).to(torch.int64)
    x = x & _LOW63
    x = x - ((x >> 1) & _M1)  # 2-bit counts
    x = (x & _M2) + ((x >> 2) & _M2)  # 4-bit counts
    x = (x + (x >> 4)) & _M4  # byte counts
    x = x + (x >> 8)
    x = x + (x >> 16)
    x = x + (x >> 32)
    return (x & 0x7F) + top


def _disc_reward(stones: Tensor, over: Tensor) -> Tensor:
    """[N] float32 ``reward`` (player 0's): on boards ``over`` [N], +1 if Black has more
    discs, -1 if fewer, 0 if equal; 0 on boards still in play.

    The core's ``_mover_wins`` credits the player who just moved; in Othello the winner is
    read off the final disc count instead, whoever made the last move.
    """
    counts = _popcount(stones)  # [N, 2]
    return torch.sign(counts[:, 0] - counts[:, 1]).to(torch.float32) * over.to(torch.float32)
