"""How a run stops: the errors it stops with, and Ctrl-C / SIGTERM handling."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from tqdm import tqdm

from rltransfer.errors import UserError


class TrainingError(UserError, RuntimeError):
    """Training stopped on a problem the user must look at (the message says what)."""


class TrainingInterrupted(Exception):
    """Ctrl-C (SIGINT) or SIGTERM stopped a run after it finished its iteration and saved.

    ``path`` is the run; ``rltransfer train --resume <path>`` continues it exactly.
    ``exit_code`` is what a shell reports for that signal (130, 143).
    """

    def __init__(
        self, path: Path, signum: int, step: int, command: str = "", *, saved: bool = True
    ) -> None:
        self.path, self.signum, self.step = path, signum, step
        self.exit_code = 128 + signum
        self.command = command or f"rltransfer train --resume {path}"
        name = signal.Signals(signum).name
        what = (
            f"stopped at step {step:,} and saved"
            if saved
            else "stopped at once (a multi-process run does not wait for its peers to save); "
            "its last checkpoint is kept"
        )
        super().__init__(f"{name}: {what}. Continue with:\n  {self.command}")


# ------------------------------------------------------------------- Ctrl-C, SIGTERM
class StopFlag:
    def __init__(self) -> None:
        self.signum: int | None = None
        #: set once the run is saved for good (its final evaluation): a signal then raises
        #: what this returns at once instead of waiting for the end of an iteration
        self.abort: Callable[[int], BaseException] | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None


@contextlib.contextmanager
def graceful_interrupt(quiet: bool) -> Iterator[StopFlag]:
    """First Ctrl-C or SIGTERM (what schedulers and ``docker stop`` send): finish the
    iteration, save, stop. A second one: abort at once (the last checkpoint stays).

    Nested uses (an experiment around its arms' runs) each see the signals while they are
    the innermost, and the outer handler comes back when an inner one ends.
    """
    flag = StopFlag()

    def handler(signum: int, frame: FrameType | None) -> None:
        if flag.requested:
            raise KeyboardInterrupt
        flag.signum = signum
        if flag.abort is not None:
            raise flag.abort(signum)
        if not quiet:
            name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            tqdm.write(f"{name}: finishing this iteration and saving (Ctrl-C again to abort)")

    signals = [signal.SIGINT, signal.SIGTERM]
    try:
        previous = {sig: signal.signal(sig, handler) for sig in signals}
    except ValueError:  # not the main thread: no handler, plain KeyboardInterrupt
        yield flag
        return
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
