"""rltransfer: multitask and game-transfer RL on batched, PyTorch-native board games.

>>> import rltransfer
>>> cfg = rltransfer.make_train_config(suite="classic", agent="ppo_small")
>>> run_dir = rltransfer.train(cfg)
>>> policy = rltransfer.load_policy(run_dir)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from rltransfer.config import make_train_config
    from rltransfer.games import available_games, make
    from rltransfer.inference import load_policy
    from rltransfer.training import resume, train

_LAZY = {
    "make": "rltransfer.games",
    "available_games": "rltransfer.games",
    "make_train_config": "rltransfer.config",
    "load_policy": "rltransfer.inference",
    "train": "rltransfer.training",
    "resume": "rltransfer.training",
}


def __getattr__(name: str) -> Any:
    """Import the public API lazily, so ``import rltransfer`` stays light."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rltransfer' has no attribute {name!r}")


__all__ = [
    "__version__",
    "available_games",
    "load_policy",
    "make",
    "make_train_config",
    "resume",
    "train",
]
