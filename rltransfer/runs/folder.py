"""Run folders: safe names, one writer at a time, and ``--overwrite`` that loses nothing.

Every command that writes a run folder (``train``, ``transfer``, ``baseline sb3``) goes
through here:

* :func:`run_path` checks the name (one folder name of letters, digits, ``.``, ``_``,
  ``-``; no leading dot) and that the folder, symlinks followed, lies inside ``--run-dir``.
* :func:`claim_run` takes a new folder: ``mkdir`` without ``exist_ok`` (two starts of one
  name cannot both win) and a lock. With ``overwrite`` the old run is renamed aside to a
  hidden name no run can have (``.replaced-<name>-<random>``) once the new run's config
  has been built and checked; :meth:`RunFolder.commit` deletes it after the new run's
  first checkpoint, and :meth:`RunFolder.abandon` puts it back if the new run fails first.
* :func:`open_run` locks an existing folder for ``--resume``.

The lock is ``flock`` on ``<run>/.lock`` holding the writer's pid and host, so a second
writer gets a message naming the holder; the kernel releases it when the process dies
(``kill -9`` included). Readers (``eval``, ``load_policy``) never need it.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import stat
from pathlib import Path
from types import TracebackType

from rltransfer.specs.config import ConfigError

try:  # POSIX; on Windows runs are not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows only
    fcntl = None  # type: ignore[assignment]

RUN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
LOCK_FILE = ".lock"
_ASIDE = ".replaced-"


class RunBusyError(ConfigError):
    """Another process is writing this run folder."""


def check_run_name(name: str, what: str = "--name") -> str:
    """``name`` if it is a plain folder name; a :class:`ConfigError` otherwise."""
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name):
        raise ConfigError(
            f"{what} {name!r}: a run name is one folder name of 1-128 letters, digits, '_', "
            "'-' and '.', not starting with '.' (no '/', spaces or newlines), e.g. c4_long"
        )
    return name


def run_path(run_dir: str | Path, name: str) -> Path:
    """``run_dir/name`` after checking the name and that it stays inside ``run_dir``."""
    check_run_name(name)
    root = Path(run_dir)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--run-dir {root} is a file, not a folder")
    path = root / name
    if path.is_symlink() or not path.resolve().is_relative_to(root.resolve()):
        raise ConfigError(f"run folder {path} is a symlink or lies outside {root}; not using it")
    return path


def check_new_run(run_dir: str | Path, name: str, overwrite: bool) -> Path:
    """The path of a new run, checked without touching anything: the name, and that an
    existing non-empty folder is only replaced with ``overwrite``."""
    path = run_path(run_dir, name)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} is a file, not a run folder")
    if path.is_dir() and _holds_anything(path) and not overwrite:
        raise ConfigError(
            f"run directory {path} already exists; continue it with --resume {path}, "
            f"replace it with --overwrite, or choose another --name"
        )
    return path


def _holds_anything(path: Path) -> bool:
    """Whether a folder holds more than a lock file (a start stopped before writing)."""
    return any(p.name != LOCK_FILE for p in path.iterdir())


class RunLock:
    """An exclusive ``flock`` on ``<run>/.lock``, with the holder's pid and host in it."""

    def __init__(self, run: Path) -> None:
        self.run = run
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        path = self.run / LOCK_FILE
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(path, flags, 0o644)  # never through a symlink a folder's sharer planted
        except OSError as e:
            why = "a symlink, not a lock file" if path.is_symlink() else e.strerror
            raise ConfigError(f"cannot lock run folder {self.run} ({path}: {why})") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ConfigError(f"cannot lock run folder {self.run}: {path} is not a regular file")
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.lseek(fd, 0, os.SEEK_SET)
                holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise RunBusyError(
                    f"run folder {self.run} is in use by another rltransfer process ({holder}); "
                    "wait for it to finish or stop it first"
                ) from None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None


class RunFolder:
    """A run folder this process holds the lock of (a context manager that releases it)."""

    def __init__(self, path: Path, lock: RunLock, aside: Path | None = None) -> None:
        self.path = path
        self.lock = lock
        self.aside = aside  # the replaced run, kept until the new one has a checkpoint

    def commit(self) -> None:
        """The new run has its first checkpoint: delete the run it replaced."""
        if self.aside is not None:
            shutil.rmtree(self.aside, ignore_errors=True)
            self.aside = None

    def abandon(self) -> None:
        """The new run failed before its first checkpoint: put the replaced run back."""
        if self.aside is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        os.rename(self.aside, self.path)
        self.aside = None

    def release(self) -> None:
        self.lock.release()

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.aside is not None:
                # the replaced run goes once the new one finished or has a checkpoint (its
                # own, or an arm's in an experiment); a new run that failed before gives it back
                if kind is None or self.has_checkpoint():
                    self.commit()
                else:
                    self.abandon()
        finally:
            self.release()

    def has_checkpoint(self) -> bool:
        """Whether the run, or a run folder directly inside it, has saved a checkpoint."""
        return any(
            (folder / "checkpoints" / "latest").exists()
            for folder in (self.path, *self.path.iterdir())
            if folder.is_dir()
        )


def claim_run(run_dir: str | Path, name: str, overwrite: bool) -> RunFolder:
    """Create and lock the folder of a new run (call once its config is fully checked).

    An existing run is only replaced with ``overwrite``, and only when no process holds
    it: it is renamed aside, and :meth:`RunFolder.commit` / ``abandon`` finish the swap.
    """
    path = check_new_run(run_dir, name, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = None
    if path.is_dir():
        # the run and any run folder inside it (an experiment's arms) must be free
        locks = [RunLock(path).acquire()]
        try:
            for inner in path.iterdir():
                if (inner / LOCK_FILE).is_file():
                    locks.append(RunLock(inner).acquire())
            if not _holds_anything(path):
                held, locks = locks[0], locks[1:]
                return RunFolder(path, held)  # an empty folder: take it as it is
            aside = path.parent / f"{_ASIDE}{name}-{secrets.token_hex(4)}"
            os.rename(path, aside)  # the locks move with it; released below
        finally:
            for lock in locks:
                lock.release()
    try:
        path.mkdir()
        return RunFolder(path, RunLock(path).acquire(), aside)
    except (FileExistsError, RunBusyError):
        if aside is not None:
            raise ConfigError(
                f"run directory {path} was just created by another process; the run it was "
                f"to replace is kept, whole, at {aside}"
            ) from None
        raise ConfigError(
            f"run directory {path} was just created by another process; choose another --name"
        ) from None


def open_run(path: str | Path) -> RunFolder:
    """Lock an existing run folder (``--resume``)."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"{path} is not a run directory")
    return RunFolder(path, RunLock(path).acquire())


def write_synced(path: Path, data: bytes) -> None:
    """Write ``path`` and fsync it: its bytes are on disk before anything names it."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    """fsync a folder, so the renames inside it survive a power loss (where folders can
    be opened; elsewhere, e.g. Windows, a rename is still atomic)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``path`` through a temporary file and one rename (fsynced): a crash leaves
    the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        write_synced(tmp, text.encode("utf-8"))
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
