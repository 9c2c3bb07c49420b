"""Start the rltransfer CLI at the same moment as another process (a start barrier).

    python barrier.py READY GO -- ARGS...      (ARGS as for ``rltransfer``)

Imports rltransfer (and torch) first, writes its pid to the file READY, waits for the
file GO to appear, then runs the CLI: two of these released together race for real,
without the seconds of import time between them.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import time
from pathlib import Path


def main() -> int:
    ready, go, sep, *args = sys.argv[1:]
    if sep != "--":
        print(__doc__, file=sys.stderr)
        return 64
    from rltransfer.cli import main as cli_main

    for name in (
        "torch",
        "rltransfer.learn.training",
        "rltransfer.specs.config",
        "rltransfer.runs.checkpoint",
    ):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    Path(ready).write_text(str(os.getpid()))
    while not os.path.exists(go):
        time.sleep(0.0005)
    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
