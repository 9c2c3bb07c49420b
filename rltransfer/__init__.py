"""rltransfer: multitask and game-transfer RL on batched, PyTorch-native board games.

>>> import rltransfer
>>> cfg = rltransfer.make_train_config(suite="classic", agent="ppo_small")
>>> run_dir = rltransfer.train(cfg)
>>> policy = rltransfer.load_policy(run_dir)

The package is laid out by layer (``docs/architecture.md`` has the map): ``games``,
``views``, ``specs``, ``net``, ``play``, ``runs``, ``learn``, ``transfer``, ``interop``,
``bench``. The flat module paths of earlier versions (``rltransfer.sb3``,
``rltransfer.opponents``, ...) still import: they name the moved modules (:data:`MOVED`).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TYPE_CHECKING, Any

from rltransfer._version import __version__

if TYPE_CHECKING:
    from rltransfer.games import available_games, make
    from rltransfer.inference import load_policy
    from rltransfer.learn.training import resume, train
    from rltransfer.specs.config import make_train_config

_LAZY = {
    "make": "rltransfer.games",
    "available_games": "rltransfer.games",
    "make_train_config": "rltransfer.specs.config",
    "load_policy": "rltransfer.inference",
    "train": "rltransfer.learn.training",
    "resume": "rltransfer.learn.training",
}

#: Module paths of the flat layout (before the subpackages) -> where the module lives now.
#: (``rltransfer.bench`` is the benchmarks' package now; its old content is ``bench.games``.)
MOVED = {
    "rltransfer.advantage": "rltransfer.learn.advantage",
    "rltransfer.baseline": "rltransfer.interop.baseline",
    "rltransfer.bench_loop": "rltransfer.bench.loop",
    "rltransfer.checkpoint": "rltransfer.runs.checkpoint",
    "rltransfer.collector": "rltransfer.learn.collector",
    "rltransfer.config": "rltransfer.specs.config",
    "rltransfer.evaluate": "rltransfer.play.evaluate",
    "rltransfer.experiment": "rltransfer.transfer.experiment",
    "rltransfer.metrics": "rltransfer.runs.metrics",
    "rltransfer.multitask": "rltransfer.learn.update",
    "rltransfer.opponents": "rltransfer.play.players",
    "rltransfer.policy": "rltransfer.net.policy",
    "rltransfer.ppo": "rltransfer.learn.ppo",
    "rltransfer.presets": "rltransfer.specs.presets",
    "rltransfer.rundir": "rltransfer.runs.folder",
    "rltransfer.sb3": "rltransfer.interop.sb3",
    "rltransfer.training": "rltransfer.learn.training",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import rltransfer.sb3`` gives the module ``rltransfer.interop.sb3`` itself: one
    module object under both names, so its classes and monkeypatches are shared."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        module = importlib.import_module(MOVED[spec.name])
        self._spec = module.__spec__  # the import machinery overwrites it; restored below
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self._spec


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())


def __getattr__(name: str) -> Any:
    """Import the public API lazily, so ``import rltransfer`` stays light."""
    if name in _LAZY:
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
