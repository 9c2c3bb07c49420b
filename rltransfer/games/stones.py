"""Shared pieces of the games kept as two bitboards, the mover's and the other player's.

Tic-tac-toe and Connect Four store ``mover`` and ``other`` int64 bitboards ([N], one word
per board), the m,n,k-game packed row words ([N, L] int64, see ``rltransfer.games.mnk``):
a move adds a stone to ``mover`` and swaps the two, so no per-player select is ever needed;
a null move is a plain swap. Only the bit layout and the win test differ between the games.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

import torch
from torch import Tensor

from rltransfer.games.core import Game, State, bits_to_cells


@dataclasses.dataclass(frozen=True)
class StonesState(State):
    mover: Tensor  # [N] int64 bitboard (mnk: [N, L] int64): stones of the player to move
    other: Tensor  # the same for the other player


T = TypeVar("T", bound=StonesState)


def empty_boards(cls: type[T], game: Game, n: int, device: torch.device) -> T:
    empty = torch.zeros(n, dtype=torch.int64, device=device)
    return cls(**game._base_fields(n, device), mover=empty, other=empty)


def play(game: Game, state: T, placed: Tensor, won: Tensor) -> T:
    """The state after the mover's stones became ``placed`` (won: [N] bool); a full
    board (``game.max_moves`` plies) without a win is a draw."""
    return dataclasses.replace(
        state,
        mover=state.other,
        other=placed,
        current_player=1 - state.current_player,
        terminated=won | (state.step_count >= game.max_moves - 1),
        reward=game._mover_wins(state, won),
    )


def swap(state: T) -> T:
    """The null move: same stones, the other player to move."""
    return dataclasses.replace(
        state, mover=state.other, other=state.mover, current_player=1 - state.current_player
    )


def stone_board(state: StonesState, bits: Tensor, height: int, width: int) -> Tensor:
    """[N, H, W] int8 board (1: player 0, 2: player 1); ``bits[k]`` is cell k's bit."""
    first = state.current_player == 0
    stones = torch.stack(
        [
            torch.where(first, state.mover, state.other),
            torch.where(first, state.other, state.mover),
        ],
        dim=1,
    )
    cells = bits_to_cells(stones, bits).to(torch.int8)  # [N, 2, H*W]
    return (cells[:, 0] + 2 * cells[:, 1]).view(-1, height, width)
