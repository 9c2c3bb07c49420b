"""Play against a trained policy in the terminal (``rltransfer play``).

Moves are written in the game's natural notation: a column number where stones drop
(Connect Four, ``mnk`` with ``gravity``: ``1`` is the leftmost column), otherwise a cell
as a column letter and a row number, ``a1`` at the top left as drawn (Othello, Hex,
Gomoku, tic-tac-toe, ``mnk``), and ``pass`` where the game has a pass move. Hex's second
player sees a transposed board in its observations; moves here always name the board as
drawn (:func:`cell_action` maps them through ``view_action``).

The loop reads and writes through two callables (``input`` and ``print`` by default), so
tests drive it with scripted lines and read what it printed.
"""

from __future__ import annotations

import string
from collections.abc import Callable

import torch
from torch import Tensor

from rltransfer.games.core import BoardGame, State
from rltransfer.play.players import Player

PASS = "pass"
QUIT = ("quit", "exit", "q")
_STONES = ".XO"  # empty, player 0 (moves first), player 1


class QuitGame(Exception):
    """The human left the game (``quit`` or the end of input)."""


# ----------------------------------------------------------------------------- notation
def cell_action(game: BoardGame, state: State, cell: int) -> int:
    """The mover's action for board cell ``r * W + c`` as drawn (Hex transposes the second
    player's frame; other games' actions are the cells themselves)."""
    view_action = getattr(game, "view_action", None)
    if view_action is None:
        return cell
    return int(view_action(state, torch.tensor([cell], device=state.device))[0])


def action_cell(game: BoardGame, state: State, action: int) -> int:
    """The board cell (as drawn) of the mover's ``action``: :func:`cell_action`'s inverse."""
    board_action = getattr(game, "board_action", None)
    if board_action is None:
        return action
    return int(board_action(state, torch.tensor([action], device=state.device))[0])


def move_name(game: BoardGame, state: State, action: int) -> str:
    """``action`` of the player to move in ``state`` (one board) in the game's notation."""
    if game.has_pass and action == game.height * game.width:
        return PASS
    r, c = divmod(action_cell(game, state, action), game.width)
    return str(c + 1) if game.gravity else f"{string.ascii_lowercase[c]}{r + 1}"


def parse_move(game: BoardGame, state: State, text: str) -> int:
    """The action named by ``text`` for the player to move in ``state`` (one board);
    ``ValueError`` with a message a player can act on where it is not a legal move."""
    legal = game.legal_mask(state)[0]
    move = text.strip().lower()
    if game.has_pass and move == PASS:
        action = game.height * game.width
        if not bool(legal[action]):
            raise ValueError("you cannot pass: you have a move")
        return action
    if game.gravity:
        if not move.isdigit() or not 1 <= int(move) <= game.width:
            raise ValueError(f"name a column, 1 to {game.width}")
        c = int(move) - 1
        landing = [
            r * game.width + c for r in range(game.height) if bool(legal[r * game.width + c])
        ]
        if not landing:
            raise ValueError(f"column {c + 1} is full")
        return landing[0]  # one empty cell per column takes a stone: the lowest
    letters = string.ascii_lowercase[: game.width]
    if len(move) < 2 or move[0] not in letters or not move[1:].isdigit():
        last = f"{letters[-1]}{game.height}"
        raise ValueError(f"name a cell as a column letter and a row number, a1 to {last}")
    c, r = letters.index(move[0]), int(move[1:]) - 1
    if not 0 <= r < game.height:
        raise ValueError(f"rows run from 1 to {game.height}")
    action = cell_action(game, state, r * game.width + c)
    if not bool(legal[action]):
        must_pass = game.has_pass and bool(legal[game.height * game.width])
        raise ValueError(f"{move} is not a legal move" + ("; you must pass" if must_pass else ""))
    return action


def draw(game: BoardGame, state: State) -> str:
    """One board with its coordinates: column numbers where stones drop, else column
    letters over the board and row numbers beside it (``X`` moves first, ``O`` second)."""
    cells = game.board(state)[0].tolist()
    width = len(str(game.height))
    if game.gravity:
        head = " ".join(str(c + 1) for c in range(game.width))
        rows = [" ".join(_STONES[v] for v in row) for row in cells]
        return "\n".join([*rows, head])
    head = " " * (width + 1) + " ".join(string.ascii_lowercase[: game.width])
    rows = [f"{r + 1:>{width}} " + " ".join(_STONES[v] for v in row) for r, row in enumerate(cells)]
    return "\n".join([head, *rows])


# -------------------------------------------------------------------------------- game
def play_human(
    game: BoardGame,
    agent: Player,
    human_seat: int = 0,
    *,
    read: Callable[[str], str] = input,
    write: Callable[[str], None] = print,
    generator: torch.Generator | None = None,
) -> float:
    """One game of a human (``read`` / ``write``) against ``agent``; the human moves for
    player ``human_seat`` (0 moves first, as ``X``). Illegal or unreadable input is
    answered with the reason and asked again. Returns the human's result, 1.0 / 0.5 / 0.0;
    raises :class:`QuitGame` on ``quit`` or the end of input."""
    if human_seat not in (0, 1):
        raise ValueError(f"the human's seat is 0 (moves first) or 1, got {human_seat}")
    state = game.init(1, generator)
    stones = f"you are {_STONES[1 + human_seat]}, the agent {_STONES[2 - human_seat]}"
    write(f"{game.id}: {stones}; {'you move' if human_seat == 0 else 'the agent moves'} first")
    while not bool(state.terminated[0]):
        write(draw(game, state))
        if int(state.current_player[0]) == human_seat:
            action = _ask(game, state, read, write)
        else:
            action = int(agent.act(game, state, generator)[0])
            write(f"{agent.name} plays {move_name(game, state, action)}")
        state = game.step(state, torch.tensor([action], device=state.device))
    write(draw(game, state))
    winner = int(game.winner(state)[0])
    result = 0.5 if winner < 0 else float(winner == human_seat)
    write({1.0: "You win.", 0.5: "A draw.", 0.0: f"{agent.name} wins."}[result])
    return result


def _ask(
    game: BoardGame, state: State, read: Callable[[str], str], write: Callable[[str], None]
) -> int:
    """The human's move, asked until it is legal."""
    while True:
        try:
            text = read("your move: ")
        except EOFError:
            raise QuitGame from None
        if text.strip().lower() in QUIT:
            raise QuitGame
        try:
            return parse_move(game, state, text)
        except ValueError as e:
            write(f"{text.strip()!r}: {e}; legal: {', '.join(legal_names(game, state))}")


def legal_names(game: BoardGame, state: State) -> list[str]:
    """Every legal move of the player to move (one board) in the game's notation."""
    actions: Tensor = game.legal_mask(state)[0].nonzero().flatten()
    names = [move_name(game, state, int(a)) for a in actions]
    return sorted(names, key=int) if game.gravity else names
