"""What the command modules share: argument types, progress bars, tables, torchrun."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch

from rltransfer._version import __version__

if TYPE_CHECKING:
    pass


def _positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    return _int_at_least(text, 1)


def _non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    return _int_at_least(text, 0)


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
    return value


def _parse_ints(text: str) -> list[int]:
    """Comma-separated integers >= 1 (thread counts, batch sizes)."""
    values = [_positive_int(x) for x in text.split(",") if x.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    return values


def _parse_floats(text: str) -> list[float]:
    """Comma-separated finite numbers > 0 (board-count scales)."""
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers: {text!r}") from None
    if not values or not all(0 < v < float("inf") for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers > 0, got {text!r}")
    return values


def _parse_compile_modes(text: str) -> list[str]:
    """Comma-separated ``train.compile`` modes (``off``, ``default``, ...)."""
    from rltransfer.specs.config import COMPILE_MODES

    values = [x.strip() for x in text.split(",") if x.strip()]
    bad = [v for v in values if v not in COMPILE_MODES]
    if not values or bad:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated modes among {', '.join(COMPILE_MODES)}, got {text!r}"
        )
    return values


def _bench_devices(device: str) -> list[str]:
    """The devices a benchmark's ``--device`` names; an error if it names absent CUDA."""
    if device == "cuda" and not torch.cuda.is_available():
        from rltransfer.specs.config import ConfigError

        raise ConfigError("--device cuda, but torch sees no CUDA device")
    return ["cpu", "cuda"] if device == "all" else [device]


@contextlib.contextmanager
def _progress(desc: str, unit: str, quiet: bool) -> Iterator[Callable[[str], None]]:
    """A progress bar for a benchmark; yields ``progress(msg)``: one more step, labelled."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit=unit, leave=False, disable=quiet)

    def progress(msg: str) -> None:
        bar.set_postfix_str(msg)
        bar.update()

    try:
        yield progress
    finally:
        bar.close()


def _print_rows(title: str, table: str, rows: Sequence[Any], json_path: str | None) -> None:
    """A benchmark's title line and table; its rows (dataclasses) as JSON if asked."""
    print(f"rltransfer {__version__}, torch {torch.__version__}: {title}")
    print(table)
    if json_path:
        with open(json_path, "w") as f:
            json.dump([dataclasses.asdict(r) for r in rows], f, indent=1)


def _torchrun(nproc: int, argv: list[str]) -> int:
    """``rltransfer <argv>`` in ``nproc`` processes under ``torchrun`` on this node (its
    ``--standalone`` rendezvous); returns its exit status."""
    import subprocess

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={nproc}", "-m", "rltransfer", *argv]  # fmt: skip
    print(f"launching {nproc} processes: torchrun --standalone --nproc-per-node={nproc} "
          f"-m rltransfer {' '.join(argv)}", flush=True)  # fmt: skip
    return subprocess.call(command)


def _without_nproc(argv: list[str]) -> list[str]:
    """``argv`` less its ``--nproc N`` / ``--nproc=N``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out
