"""The rltransfer games seen through other APIs: gymnasium and PettingZoo.

Importing this package registers one gymnasium id per registered game, the CamelCase of
the game id under the ``rltransfer`` namespace (``tic_tac_toe`` -> ``rltransfer/TicTacToe-v0``)::

    import gymnasium, rltransfer.views
    env = gymnasium.make("rltransfer/ConnectFour-v0")             # BoardGameEnv, NumPy
    envs = gymnasium.make_vec("rltransfer/ConnectFour-v0", num_envs=8)  # BoardGameVectorEnv
    env = gymnasium.make("rltransfer/Othello-v0", size=6)          # game options pass through

``make_vec`` picks the batched torch-native env through the spec's ``vector_entry_point``
(``vectorization_mode="vector_entry_point"``, also the default when the mode is omitted);
``"sync"`` / ``"async"`` build gymnasium's own vector envs of single boards instead.

The PettingZoo view lives in :mod:`rltransfer.views.pettingzoo` (``make_aec``); it is not
imported here so that gymnasium users do not pay for PettingZoo.
"""

from __future__ import annotations

# ``gymnasium`` is also the name of a submodule of this package; once that submodule is
# imported it becomes the package attribute ``gymnasium``, so the library goes by ``gym``.
import gymnasium as gym

from rltransfer.games import available_games
from rltransfer.views.gymnasium import BoardGameEnv, BoardGameVectorEnv, random_opponent

_ENTRY_POINT = "rltransfer.views.gymnasium:BoardGameEnv"
_VECTOR_ENTRY_POINT = "rltransfer.views.gymnasium:BoardGameVectorEnv"


def gymnasium_id(game_id: str) -> str:
    """``"connect_four"`` -> ``"rltransfer/ConnectFour-v0"``."""
    camel = "".join(part.capitalize() for part in game_id.split("_"))
    return f"rltransfer/{camel}-v0"


def register_gymnasium_envs() -> list[str]:
    """Register every game in :func:`rltransfer.games.available_games`; returns the ids.

    Idempotent: ids already registered by this function are left alone (gymnasium warns
    when an id is registered twice), so calling it again, e.g. after more games were added
    to the game registry, only adds the new ones. An id held by something else is an error.
    """
    ids = []
    for game_id in available_games():
        env_id = gymnasium_id(game_id)
        existing = gym.registry.get(env_id)
        if existing is None:
            gym.register(
                id=env_id,
                entry_point=_ENTRY_POINT,
                vector_entry_point=_VECTOR_ENTRY_POINT,
                kwargs={"game": game_id},
            )
        elif existing.entry_point != _ENTRY_POINT or existing.kwargs.get("game") != game_id:
            raise ValueError(
                f"gymnasium id {env_id!r} is already registered to {existing.entry_point} "
                f"with {existing.kwargs}; rltransfer wants it for the game {game_id!r}"
            )
        ids.append(env_id)
    return ids


register_gymnasium_envs()

__all__ = [
    "BoardGameEnv",
    "BoardGameVectorEnv",
    "gymnasium_id",
    "random_opponent",
    "register_gymnasium_envs",
]
