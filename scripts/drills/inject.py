"""Run the rltransfer CLI with a fault injected into its checkpoint saves.

    python inject.py MODE K -- ARGS...      (ARGS as for ``rltransfer``)

MODE:
  replace-kbint  raise KeyboardInterrupt at the K-th os.replace / os.rename / os.symlink
                 under a ``checkpoints`` folder (before it happens): a second Ctrl-C there;
  replace-exit   os._exit(137) at that call: a crash between two steps of the swap;
  save-kill      SIGKILL itself at the K-th fsync of a ``trainer.pt`` inside a
                 ``checkpoints/.writing-*`` folder (one per save, whatever serialises it):
                 a crash while a checkpoint's files are being written.

Exits 0 only if the command ran to its end without the fault firing (``fired`` never
printed); the patches go in before rltransfer is imported.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any


def _in_checkpoints(*paths: Any) -> bool:
    """Whether a path (or an open file's name) lies under a ``checkpoints`` folder."""
    names = (os.fspath(p) if isinstance(p, (str, os.PathLike)) else getattr(p, "name", "")
             for p in paths)  # fmt: skip
    return any("checkpoints" in str(n) for n in names)


def _fire(mode: str) -> None:
    print(f"inject.py: fault {mode} fires now", file=sys.stderr, flush=True)
    if mode == "replace-kbint":
        raise KeyboardInterrupt
    if mode == "replace-exit":
        os._exit(137)
    os.kill(os.getpid(), signal.SIGKILL)


def _writing_trainer(fd: Any) -> bool:
    """Whether a file descriptor is a ``trainer.pt`` being written in ``.writing-*``."""
    try:
        name = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return False
    return "/.writing-" in name and name.endswith("/trainer.pt")


def _counting(
    fn: Callable[..., Any],
    mode: str,
    k: int,
    count: list[int],
    paths: slice,
    hit: Callable[..., bool] = _in_checkpoints,
) -> Callable[..., Any]:
    """``fn`` that fires the fault at its k-th call whose ``args[paths]`` are a ``hit``
    (by default: name a checkpoint)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if hit(*args[paths]):
            count[0] += 1
            if count[0] == k:
                _fire(mode)
        return fn(*args, **kwargs)

    return wrapper


def main() -> int:
    mode, k, sep, *args = sys.argv[1:]
    if sep != "--" or mode not in ("replace-kbint", "replace-exit", "save-kill"):
        print(__doc__, file=sys.stderr)
        return 64
    count = [0]
    if mode == "save-kill":
        os.fsync = _counting(os.fsync, mode, int(k), count, slice(0, 1), _writing_trainer)
    else:
        for name in ("replace", "rename", "symlink"):
            setattr(os, name, _counting(getattr(os, name), mode, int(k), count, slice(0, 2)))
    from rltransfer.cli import main as cli_main

    rc = cli_main(args)
    return 3 if rc == 0 and count[0] >= int(k) else rc  # 3: fired, yet the command went on


if __name__ == "__main__":
    sys.exit(main())
