"""Batched board games and their registry.

>>> from rltransfer.games import make
>>> game = make("othello", size=6)
>>> state = game.init(1024)

PettingZoo two-player board envs are games too, stepped on the CPU (see
``rltransfer.games.outside``): ``make("pettingzoo:go_v5", board_size=9)``. Ids and options
are data (they come from files), so they only ever name registered things: a game id is a
key of the game registry or of the PettingZoo env table (:func:`available_envs`, grown from
Python code by :func:`register_env`), and options are checked against each game's declared
options, by type and range, before any constructor runs.
"""

from __future__ import annotations

from typing import Any

from rltransfer.errors import GameOptionError, UnknownGameError
from rltransfer.games.connect_four import ConnectFour
from rltransfer.games.core import BoardGame, Game, IllegalActionError, Option, State
from rltransfer.games.gomoku import Gomoku
from rltransfer.games.hex import Hex
from rltransfer.games.mnk import MNK
from rltransfer.games.othello import Othello
from rltransfer.games.outside import PREFIX as OUTSIDE_PREFIX
from rltransfer.games.outside import (
    EnvOption,
    KnownEnv,
    OutsideGame,
    available_envs,
    env_options,
    register_env,
)
from rltransfer.games.tic_tac_toe import TicTacToe

_REGISTRY: dict[str, type[Game]] = {}


def register(cls: type[Game]) -> type[Game]:
    """Add a game class to the registry under ``cls.id`` (usable as a decorator)."""
    if cls.id in _REGISTRY and _REGISTRY[cls.id] is not cls:
        raise ValueError(f"a different game is already registered as {cls.id!r}")
    _REGISTRY[cls.id] = cls
    return cls


def available_games() -> list[str]:
    """Ids of every registered game, sorted."""
    return sorted(_REGISTRY)


def game_class(game_id: str) -> type[BoardGame]:
    """The class registered as ``game_id``, or an :class:`UnknownGameError` (a ``KeyError``)
    that lists the valid ids.

    ``pettingzoo:<env>`` ids give :class:`~rltransfer.games.outside.OutsideGame` for a name
    of :func:`available_envs` (a ``KeyError`` listing them otherwise; nothing is imported).
    """
    if game_id.startswith(OUTSIDE_PREFIX):
        env_options(game_id[len(OUTSIDE_PREFIX) :])  # the name must be in the table
        return OutsideGame
    return native_class(game_id)


def native_class(game_id: str) -> type[Game]:
    """The :class:`Game` subclass registered as ``game_id`` (a native game; its options
    are ``cls.options``), or an :class:`UnknownGameError` that lists the valid ids."""
    try:
        return _REGISTRY[game_id]
    except KeyError:
        raise UnknownGameError(
            f"unknown game {game_id!r}; available games: {', '.join(available_games())}"
        ) from None


def make(game_id: str, **options: Any) -> BoardGame:
    """Build a game by id with its options, e.g. ``make("hex", size=7)``.

    Every game also takes ``illegal_action="lose"|"raise"`` (see ``rltransfer.games.core``).
    Unknown ids, unknown options and values outside an option's range raise errors that
    name the valid choices; every check runs before the game (or env) is constructed, and
    a value must have the option's type (``size=6.0`` is refused). ``make("pettingzoo:go_v5",
    board_size=9)`` wraps a PettingZoo env of :func:`available_envs`; its declared options go
    to the env constructor (``max_moves`` is the adapter's time limit).
    """
    if not isinstance(game_id, str):
        raise TypeError(f"a game id is a str, got {type(game_id).__name__}")
    if game_id.startswith(OUTSIDE_PREFIX):
        return OutsideGame(game_id[len(OUTSIDE_PREFIX) :], **options)
    cls = native_class(game_id)
    return cls(**cls.validate_options(options))


def parse_game_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"othello:size=8"`` -> ``("othello", {"size": 8})``; numbers become ints or floats,
    ``true`` / ``false`` (any case) bools: ``"mnk:m=6,gravity=true"`` ->
    ``("mnk", {"m": 6, "gravity": True})``. Anything else stays a string.

    PettingZoo ids keep their prefix: ``"pettingzoo:go_v5:board_size=9"`` ->
    ``("pettingzoo:go_v5", {"board_size": 9})``.
    """
    game_id, _, rest = spec.partition(":")
    if game_id.strip() + ":" == OUTSIDE_PREFIX:
        env, _, rest = rest.partition(":")
        game_id = OUTSIDE_PREFIX + env.strip()
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise GameOptionError(f"bad game option {item!r} in {spec!r}: expected key=value")
        options[key.strip()] = _option_value(value.strip())
    return game_id.strip(), options


def _option_value(value: str) -> bool | int | float | str:
    """One option value of a spec string as the type a suite file would give it."""
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    if value.lstrip("-").isdigit():
        return int(value)
    try:
        return float(value)
    except ValueError:
        return value


for _cls in (TicTacToe, ConnectFour, Othello, Hex, Gomoku, MNK):
    register(_cls)

__all__ = [
    "BoardGame",
    "EnvOption",
    "Game",
    "IllegalActionError",
    "KnownEnv",
    "Option",
    "OutsideGame",
    "State",
    "available_envs",
    "available_games",
    "env_options",
    "game_class",
    "make",
    "native_class",
    "parse_game_spec",
    "register",
    "register_env",
]
