"""The ``rltransfer`` command line (also ``python -m rltransfer``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import torch

from rltransfer.cli.parser import build_parser

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status.

    A :class:`~rltransfer.errors.UserError` (what the user gave does not fit: an unknown
    game or opponent, a bad spec, a damaged checkpoint) and a missing file print one line
    and return 2; a stopped or failed training run and what the machine refused (disk,
    memory) return their own status with one line. Anything else is a bug in rltransfer
    and keeps its traceback.
    """
    from rltransfer.errors import UserError

    args = build_parser().parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    where = f"rltransfer {args.command}"
    try:
        return int(args.fn(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        from rltransfer.learn.training import TrainingError, TrainingInterrupted

        if isinstance(e, TrainingInterrupted):
            print(str(e), file=sys.stderr)
            return e.exit_code
        if isinstance(e, TrainingError):
            print(f"{where}: {e}", file=sys.stderr)
            return 1
        if isinstance(e, (UserError, FileNotFoundError)):
            print(f"{where}: error: {_one_line(e)}", file=sys.stderr)
            return 2
        message = _environment_error(e)
        if message is None:
            raise  # a bug: keep the traceback
        print(f"{where}: error: {message}", file=sys.stderr)
        return 1


def _one_line(e: BaseException) -> str:
    text = str(e.args[0]) if e.args else str(e)
    if isinstance(e, FileNotFoundError) and e.filename:
        text = f"no such file or folder: {e.filename}"
    return text


def _environment_error(e: BaseException) -> str | None:
    """A one-line message for what the machine refused (disk, permissions, memory)."""
    if isinstance(e, OSError):
        where = f": {e.filename}" if e.filename else ""
        return f"{e.strerror or e}{where}"
    if isinstance(e, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(e, RuntimeError) and "can't allocate memory" in str(e)
    ):
        return (
            "out of memory; use fewer boards (train.num_envs_scale, num_envs) or a smaller network"
        )
    return None


if __name__ == "__main__":
    sys.exit(main())
