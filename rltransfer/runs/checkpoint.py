"""Run checkpoints: versioned folders behind an atomic ``latest`` pointer; safe to load.

A run's ``checkpoints/`` folder holds a short history of checkpoint folders and a pointer::

    checkpoints/
      latest -> ckpt-0000120      a symlink, swapped by one rename
      ckpt-0000100/               the last ``keep`` checkpoints, plus the first of every
      ckpt-0000110/               ``milestone`` iterations (ladders read them)
      ckpt-0000120/

Each checkpoint folder holds

* ``model.safetensors``: the network's weights (safetensors never unpickles code);
* ``meta.json``: what the weights are for (tasks and their shapes, game specs, network
  config), counters, the versions that wrote it and the SHA-256 of the weights file;
* ``trainer.pt``: everything else the next update depends on (optimizer state, RNG
  states, boards in flight, the snapshot pool), saved with ``torch.save`` but made only
  of tensors, numbers, strings, lists and dicts, so it loads with ``weights_only=True``.

Writing: a hidden temporary folder is filled and fsynced, renamed to its version name,
then a new symlink replaces ``latest`` by one ``os.replace``. A crash or kill between any
two steps leaves a complete checkpoint that :func:`checkpoint_dir` finds: the old pointer
still names a whole folder, and a missing or dangling pointer falls back to the newest
complete version folder. Leftover temporary folders are removed by the next writer
(:func:`clean_leftovers`, called under the run's lock).

Reading treats the folder as untrusted data: sizes in ``meta.json`` are bounded and checked
against the shapes in the safetensors header before any tensor is allocated
(:func:`read_network`), the weights must match their checksum and be finite
(:func:`load_weights`), and ``trainer.pt`` loads with ``weights_only=True``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from rltransfer._version import __version__
from rltransfer.errors import UnknownTaskError, UserError
from rltransfer.games.core import BoardGame
from rltransfer.net.policy import NetConfig, PolicyNet, TaskShape
from rltransfer.runs.folder import fsync_dir, write_synced
from rltransfer.specs.config import GameSpec

CHECKPOINT_FORMAT = 1
LATEST = "latest"
_VERSION = re.compile(r"ckpt-(\d{7,})(?:-(\d+))?")
_LEFTOVERS = (".writing-", ".latest-")


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that is missing, corrupt, or made for another network."""


class NoCheckpointError(CheckpointError):
    """No checkpoint at all at a path (as opposed to a damaged one)."""


# ---------------------------------------------------------------------------- finding
def checkpoint_dir(run_or_checkpoint: str | Path) -> Path:
    """``runs/x`` or ``runs/x/checkpoints/latest`` (or a version folder) -> the checkpoint.

    A run whose ``latest`` pointer is missing or dangling (a writer killed mid-swap, or a
    run written by an older version that crashed between its two renames) gives its newest
    complete version folder instead. A pointer that names an incomplete folder is damage,
    not a crash (a folder is complete before any pointer names it): that is an error that
    names what is missing and the older checkpoints, never a silent step back.
    """
    path = Path(run_or_checkpoint)
    if _complete(path):
        return path
    root = path / "checkpoints"
    latest = root / LATEST
    if _complete(latest):
        return latest
    if latest.is_dir():  # it exists (its target too) but lacks a file
        missing = [f for f in ("meta.json", "model.safetensors") if not (latest / f).is_file()]
        older = [p.name for p in versions_in(root) if _complete(p) and p != latest.resolve()]
        hint = f"; older checkpoints: {', '.join(older)} (in {root})" if older else ""
        raise CheckpointError(f"{latest}: incomplete checkpoint (no {', '.join(missing)}){hint}")
    for candidate in [*reversed(versions_in(root)), root / ".old"]:
        if _complete(candidate):
            return candidate
    raise NoCheckpointError(
        f"no checkpoint at {path} (looked for meta.json there and in checkpoints/latest/)"
    )


def _complete(folder: Path) -> bool:
    return (folder / "meta.json").is_file() and (folder / "model.safetensors").is_file()


def versions_in(root: Path) -> list[Path]:
    """The version folders under ``checkpoints/``, oldest first."""
    if not root.is_dir():
        return []
    found = [(m, p) for p in root.iterdir() if (m := _VERSION.fullmatch(p.name)) and p.is_dir()]
    found.sort(key=lambda mp: (int(mp[0][1]), int(mp[0][2] or 0)))
    return [p for _, p in found]


def _iteration_of(folder: Path) -> int:
    m = _VERSION.fullmatch(folder.name)
    return int(m[1]) if m else -1


def versions() -> dict[str, str]:
    return {
        "rltransfer": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


# ---------------------------------------------------------------------------- writing
def save_checkpoint(
    run_dir: Path,
    weights: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
    trainer: Mapping[str, Any] | None = None,
    *,
    keep: int = 3,
    milestone: int = 0,
) -> Path:
    """Write a new checkpoint of ``run_dir`` and point ``checkpoints/latest`` at it.

    ``meta["iteration"]`` names the version folder. Keeps the last ``keep`` checkpoints
    and, with ``milestone`` > 0, the first checkpoint of every ``milestone`` iterations.
    Non-finite weights are refused. Returns ``run_dir/checkpoints/latest``.
    """
    cpu = {k: v.detach().contiguous().cpu() for k, v in weights.items()}
    _check_finite(cpu, "refusing to save")
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".writing-", dir=root))
    try:
        blob = save_safetensors(cpu)
        write_synced(tmp / "model.safetensors", blob)
        full_meta = {
            "format": CHECKPOINT_FORMAT,
            "versions": versions(),
            "weights_sha256": hashlib.sha256(blob).hexdigest(),
            **meta,
        }
        write_synced(tmp / "meta.json", json.dumps(full_meta, indent=1).encode())
        if trainer is not None:
            buffer = io.BytesIO()
            torch.save(_to_cpu(trainer), buffer)
            write_synced(tmp / "trainer.pt", buffer.getvalue())
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; files follow the umask
        fsync_dir(tmp)
        final = _version_name(root, int(meta.get("iteration", 0)))
        os.rename(tmp, final)
        fsync_dir(root)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, (OSError, RuntimeError)) and not isinstance(e, CheckpointError):
            raise CheckpointError(_write_failure(root, e)) from e
        raise
    _point_latest(root, final)
    _prune(root, keep, milestone)
    return root / LATEST


def _version_name(root: Path, iteration: int) -> Path:
    """``ckpt-<iteration>``, or ``ckpt-<iteration>-<k>`` if that folder exists already."""
    path, k = root / f"ckpt-{iteration:07d}", 0
    while path.exists():
        k += 1
        path = root / f"ckpt-{iteration:07d}-{k}"
    return path


def _point_latest(root: Path, target: Path) -> None:
    """Make ``root/latest`` name ``target`` with one atomic rename of a fresh symlink."""
    latest = root / LATEST
    if latest.is_dir() and not latest.is_symlink():  # a folder written by an older version
        os.rename(latest, _version_name(root, _legacy_iteration(latest)))
    link = root / f".latest-{os.getpid()}-{target.name}"
    if link.is_symlink():
        link.unlink()
    os.symlink(target.name, link)
    os.replace(link, latest)
    fsync_dir(root)


def _legacy_iteration(folder: Path) -> int:
    try:
        return int(json.loads((folder / "meta.json").read_text()).get("iteration", 0))
    except (OSError, ValueError, AttributeError):
        return 0


def _prune(root: Path, keep: int, milestone: int) -> None:
    """Remove version folders beyond the last ``keep`` and the milestones."""
    current = (root / LATEST).resolve()
    folders = versions_in(root)  # oldest first: the first of each milestone block stays
    keep_set = set(folders[-max(keep, 1) :])
    kept_blocks: set[int] = set()
    for folder in folders:
        block = _iteration_of(folder) // milestone if milestone > 0 else None
        if block is not None and block not in kept_blocks:
            kept_blocks.add(block)
            keep_set.add(folder)
    for folder in folders:
        if folder not in keep_set and folder.resolve() != current:
            shutil.rmtree(folder, ignore_errors=True)


def clean_leftovers(run_dir: Path) -> list[str]:
    """Remove what interrupted writers left in ``run_dir/checkpoints`` (call under the lock):
    temporary folders, stray pointer links and an older version's ``.old`` folder once a
    complete checkpoint exists. Returns the names removed."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    removed = []
    for p in root.iterdir():
        if p.name.startswith(_LEFTOVERS):
            if p.is_symlink() or p.is_file():
                p.unlink()
            else:
                shutil.rmtree(p, ignore_errors=True)
            removed.append(p.name)
    old = root / ".old"
    if old.is_dir() and (_complete(root / LATEST) or versions_in(root)):
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old.name)
    return removed


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_failure(root: Path, e: BaseException) -> str:
    """A one-line reason a checkpoint could not be written (disk full, read-only, ...)."""
    reason = f"{type(e).__name__}: {e}".splitlines()[0]
    try:
        if shutil.disk_usage(root).free < 16 * 2**20:
            reason = f"the disk is full ({reason})"
    except OSError:
        pass
    return f"cannot write a checkpoint in {root}: {reason}; the previous checkpoint is kept"


def _check_finite(weights: Mapping[str, torch.Tensor], what: str) -> None:
    bad = [k for k, v in weights.items() if v.is_floating_point() and not bool(v.isfinite().all())]
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise CheckpointError(f"{what} non-finite weights (NaN or inf) in {bad[:3]}{more}")


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, Mapping):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_cpu(v) for v in obj]
    return obj


def load_meta(ckpt: Path) -> dict[str, Any]:
    path = ckpt / "meta.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as e:  # bad JSON, not UTF-8, too deep
        raise CheckpointError(f"{path}: cannot read checkpoint metadata ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an rltransfer checkpoint of format {CHECKPOINT_FORMAT}")
    return meta


@dataclasses.dataclass(frozen=True)
class NetworkMeta:
    """What a checkpoint's weights are: the network config, its tasks, their game specs."""

    net: NetConfig
    tasks: dict[str, TaskShape]
    specs: dict[str, GameSpec]
    #: what each task's observation planes mean (``BoardGame.planes``) as the run saw
    #: them; checkpoints written before it was recorded have none
    planes: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    def find_task(self, game: str | BoardGame, where: str | Path) -> str:
        """This network's task for ``game`` (see :func:`find_task`)."""
        return find_task(self.specs, self.tasks, game, where)


class AmbiguousTaskError(UnknownTaskError):
    """A game that several tasks of a run play, none singled out by its shape."""


def find_task(
    specs: Mapping[str, GameSpec],
    shapes: Mapping[str, TaskShape],
    game: str | BoardGame,
    where: str | Path,
) -> str:
    """The task of a run (``specs``, ``shapes``: its tasks) that plays ``game``.

    The one rule every lookup follows (inference, opponents, transfer, SB3 stems, export):

    * a task name (``othello_size6``) is that task;
    * a game id (``othello``) is the one task with that id;
    * a built :class:`~rltransfer.games.core.BoardGame` is the one task with its id or, when
      several have it, the one of its shape (planes, board, actions).

    No task, or several left: :class:`UnknownTaskError` (a ``KeyError``) listing the run's
    tasks; for several, :class:`AmbiguousTaskError` asking for a task name. ``where`` (the
    run or checkpoint) names the source in messages.
    """
    if isinstance(game, str) and game in shapes:
        return game
    game_id = game if isinstance(game, str) else game.id
    matches = [task for task, spec in specs.items() if spec.id == game_id and task in shapes]
    if len(matches) > 1 and not isinstance(game, str):
        shape = TaskShape.of(game)
        matches = [task for task in matches if shapes[task] == shape] or matches
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise AmbiguousTaskError(
            f"game {game_id!r} is ambiguous in {where}: it plays it as {', '.join(matches)}; "
            "name the task instead"
        )
    raise UnknownTaskError(f"{where} has no policy for {game_id!r}; it plays: {', '.join(shapes)}")


def read_network(ckpt: Path) -> NetworkMeta:
    """The network a checkpoint holds, from its ``meta.json``, checked before use.

    ``NetConfig`` and ``TaskShape`` bound every size, and the network the metadata
    describes is built on the ``meta`` device (no memory) and compared with the shapes in
    the safetensors header, so an edited ``meta.json`` cannot make anything allocate a
    network that the weights file does not hold.
    """
    meta = load_meta(ckpt)
    try:
        network = NetworkMeta(
            net=NetConfig(**meta["net"]),
            tasks={k: TaskShape(**v) for k, v in meta["tasks"].items()},
            specs={g["name"]: GameSpec(**g) for g in meta["suite"]["games"]},
            planes=_planes(meta.get("planes", {})),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(
            f"{ckpt}/meta.json: incomplete or from another version ({e})"
        ) from None
    for task, names in network.planes.items():
        if task not in network.tasks or len(names) != network.tasks[task].num_planes:
            raise CheckpointError(f"{ckpt}/meta.json: the plane names of {task} do not fit it")
    _check_header(ckpt, network)
    return network


def _planes(raw: Any) -> dict[str, tuple[str, ...]]:
    """``meta.json``'s plane names, checked: task -> a list of short strings."""
    if not isinstance(raw, dict) or not all(
        isinstance(names, list) and len(names) <= 4096
        and all(isinstance(n, str) and len(n) <= 64 for n in names)
        for names in raw.values()
    ):  # fmt: skip
        raise ValueError("planes must map each task to a list of plane names")
    return {str(task): tuple(names) for task, names in raw.items()}


def _check_header(ckpt: Path, network: NetworkMeta) -> None:
    """The shapes the metadata implies must be the shapes the weights file declares."""
    path = ckpt / "model.safetensors"
    try:
        with safe_open(str(path), framework="pt") as f:
            declared = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except (OSError, SafetensorError) as e:
        raise CheckpointError(f"{path}: cannot read weights ({e})") from None
    try:
        with torch.device("meta"):
            expected = {
                k: tuple(v.shape)
                for k, v in PolicyNet(network.tasks, network.net).state_dict().items()
            }
    except (ValueError, RuntimeError) as e:
        raise CheckpointError(f"{ckpt}/meta.json: describes no valid network ({e})") from None
    if declared != expected:
        diff = sorted(set(declared) ^ set(expected)) or sorted(
            k for k in expected if declared[k] != expected[k]
        )
        raise CheckpointError(
            f"{ckpt}: meta.json and model.safetensors disagree about the network "
            f"(e.g. {diff[:3]}); the checkpoint was edited or mixed from two runs"
        )


def weights_sha256(ckpt: Path) -> str:
    """The SHA-256 of a checkpoint's ``model.safetensors`` as it is on disk now."""
    path = ckpt / "model.safetensors"
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read weights ({e})") from None


def load_weights(ckpt: Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """The checkpoint's weights, after checking their SHA-256 (when ``meta.json`` has one,
    as every checkpoint since it was added does) and that they are finite."""
    path = ckpt / "model.safetensors"
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read weights ({e})") from None
    expected = load_meta(ckpt).get("weights_sha256")
    if expected is not None and hashlib.sha256(blob).hexdigest() != expected:
        raise CheckpointError(
            f"{path}: checksum mismatch (the file is not the one this checkpoint wrote: "
            "corrupt or edited)"
        )
    try:
        weights = load_safetensors(blob)
    except (SafetensorError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read weights ({e})") from None
    _check_finite(weights, f"{path}: holds")
    return {k: v.to(device) for k, v in weights.items()}


def load_trainer(ckpt: Path) -> dict[str, Any]:
    path = ckpt / "trainer.pt"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing; this checkpoint cannot resume training") from None
    except Exception as e:  # torch raises several types for a corrupt file
        # torch's messages run to pages (and suggest weights_only=False, which would run
        # the file's code): keep the line that says what was refused
        lines = [line for line in str(e).splitlines() if line.strip()] or [""]
        reason = next((line for line in lines if "GLOBAL" in line), lines[0])
        raise CheckpointError(
            f"{path}: corrupt or not a trainer state, not loaded ({type(e).__name__}: {reason})"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a trainer state")
    return state


def prefixed(weights: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The weights under ``prefix`` (``"stems.connect_four."``), the prefix stripped."""
    return {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}


def load_into(
    module: torch.nn.Module, weights: Mapping[str, torch.Tensor], source: Path, prefix: str = ""
) -> None:
    """Load ``weights`` into ``module`` strictly, with an error that lists the mismatch.

    With a ``prefix`` (``"trunk."``, ``"stems.connect_four."``), only the weights under it
    are loaded, the prefix stripped: one part of a network into a module of its own.
    """
    if prefix:
        weights = prefixed(weights, prefix)
    own = module.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    wrong = sorted(k for k in set(own) & set(weights) if own[k].shape != weights[k].shape)
    if missing or unexpected or wrong:
        detail = []
        if missing:
            detail.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            detail.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        for k in wrong[:5]:
            detail.append(
                f"{k}: checkpoint {list(weights[k].shape)} vs network {list(own[k].shape)}"
            )
        part = f" under {prefix!r}" if prefix else ""
        raise CheckpointError(
            f"{source}: the weights{part} do not fit this network: " + "; ".join(detail)
        )
    module.load_state_dict(weights)
