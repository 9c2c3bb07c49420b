"""Run checkpoints: safetensors weights, JSON metadata, trainer state; atomic; safe to load.

A checkpoint is a folder ``<run>/checkpoints/latest/`` holding

* ``model.safetensors``: the network's weights (safetensors never unpickles code);
* ``meta.json``: what the weights are for (tasks and their shapes, game specs, network
  config), counters and the versions that wrote it;
* ``trainer.pt``: everything else the next update depends on (optimizer state, RNG
  states, boards in flight, the snapshot pool), saved with ``torch.save`` but made only
  of tensors, numbers, strings, lists and dicts, so it loads with ``weights_only=True``.

Writing goes to a temporary folder that then replaces ``latest`` by rename, so a crash
mid-write leaves the previous checkpoint whole. Errors name the file and the mismatch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from rltransfer import __version__
from rltransfer.config import GameSpec
from rltransfer.policy import NetConfig, TaskShape

CHECKPOINT_FORMAT = 1


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt, or made for another network."""


def checkpoint_dir(run_or_checkpoint: str | Path) -> Path:
    """``runs/x`` or ``runs/x/checkpoints/latest`` -> the checkpoint folder."""
    path = Path(run_or_checkpoint)
    for candidate in (path, path / "checkpoints" / "latest"):
        if (candidate / "meta.json").is_file():
            return candidate
    raise CheckpointError(
        f"no checkpoint at {path} (looked for meta.json there and in checkpoints/latest/)"
    )


def versions() -> dict[str, str]:
    return {
        "rltransfer": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def save_checkpoint(
    run_dir: Path,
    weights: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
    trainer: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``run_dir/checkpoints/latest`` atomically; returns its path."""
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".writing-", dir=root))
    try:
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in weights.items()},
            tmp / "model.safetensors",
        )
        full_meta = {"format": CHECKPOINT_FORMAT, "versions": versions(), **meta}
        (tmp / "meta.json").write_text(json.dumps(full_meta, indent=1))
        if trainer is not None:
            torch.save(_to_cpu(trainer), tmp / "trainer.pt")
        final = root / "latest"
        old = root / ".old"
        if old.exists():
            shutil.rmtree(old)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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
    except (OSError, json.JSONDecodeError) as e:
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


def read_network(ckpt: Path) -> NetworkMeta:
    """The network a checkpoint holds, from its ``meta.json`` (clear error if incomplete)."""
    meta = load_meta(ckpt)
    try:
        return NetworkMeta(
            net=NetConfig(**meta["net"]),
            tasks={k: TaskShape(**v) for k, v in meta["tasks"].items()},
            specs={g["name"]: GameSpec(**g) for g in meta["suite"]["games"]},
        )
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(
            f"{ckpt}/meta.json: incomplete or from another version ({e})"
        ) from None


def load_weights(ckpt: Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    path = ckpt / "model.safetensors"
    try:
        return load_file(path, device=str(device))
    except (OSError, SafetensorError) as e:
        raise CheckpointError(f"{path}: cannot read weights ({e})") from None


def load_trainer(ckpt: Path) -> dict[str, Any]:
    path = ckpt / "trainer.pt"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing; this checkpoint cannot resume training") from None
    except Exception as e:  # torch raises several types for a corrupt file
        raise CheckpointError(
            f"{path}: corrupt or not a trainer state ({type(e).__name__}: {e})"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a trainer state")
    return state


def load_into(module: torch.nn.Module, weights: Mapping[str, torch.Tensor], source: Path) -> None:
    """Load ``weights`` into ``module`` strictly, with an error that lists the mismatch."""
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
        raise CheckpointError(f"{source}: weights do not fit this network: " + "; ".join(detail))
    module.load_state_dict(weights)
