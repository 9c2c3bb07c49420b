"""A run's policy for one game as an ONNX file, to deploy outside Python.

>>> export_onnx("runs/classic_ppo_small", "c4.onnx", game="connect_four")

The graph is the network of one task with the legal-move mask applied, batch dim dynamic::

    obs [N, C, H, W] float32, legal_mask [N, A] bool
        -> logits [N, A] float32 (illegal actions: float32's most negative finite value,
           as :func:`~rltransfer.net.policy.masked_logits` gives them, so softmax gives 0)
        -> value [N] float32 in [-1, 1], for the player to move

``obs`` and ``legal_mask`` are what the game's ``observe`` and ``legal_mask`` return. What
the model expects (game id and options, task, planes, board, actions, the rltransfer
version) is in the file's ``metadata_props`` (:func:`model_metadata`); onnxruntime reads
it back with ``session.get_modelmeta().custom_metadata_map``.

Exporter: torch's TorchScript-based one (``dynamo=False``). This network is a fixed
sequence of convolutions, norms and linear layers with no data-dependent control flow,
which tracing captures exactly; that exporter runs in about a second, needs no
``onnxscript``, writes the opsets 9..20 that deployment runtimes accept, and exists in
every torch this package supports (2.2 on). The torch.export-based one (``dynamo=True``,
the default since torch 2.9) gave the same graph here but takes ten times as long, needs
``onnxscript`` and writes opset 18 or later (asked for 17, it wrote 18). Every export is
checked before it is written: onnxruntime runs it on a batch of another size than the
traced one, and its outputs must match the PyTorch policy's.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import secrets
import tempfile
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor, nn

from rltransfer._version import __version__
from rltransfer.errors import UnknownTaskError, UserError
from rltransfer.inference import LoadedPolicy, load_policy
from rltransfer.net.policy import PolicyNet, TaskShape, masked_logits
from rltransfer.runs.checkpoint import load_meta
from rltransfer.runs.folder import fsync_dir, write_synced

DEFAULT_OPSET = 17  # onnxruntime 1.13 (2022) and later, TensorRT 8.6, onnxruntime-web
OPSETS = range(9, 21)  # what the TorchScript exporter writes for this network
INPUTS = ("obs", "legal_mask")
OUTPUTS = ("logits", "value")
INSTALL_HINT = 'pip install "rltransfer[export]"'
_TRACE_BATCH = 2  # traced at 2 boards, checked at 3: a batch size baked in would show


class MissingExtraError(UserError, ImportError):
    """``onnx`` or ``onnxruntime`` is not installed (the ``export`` extra)."""


class ExportError(UserError, ValueError):
    """An export that cannot be made as asked (opset, output path, which game)."""


class _MaskedPolicy(nn.Module):
    """One task of a :class:`PolicyNet`: (obs, legal_mask) -> (masked logits, value)."""

    def __init__(self, net: PolicyNet, task: str) -> None:
        super().__init__()
        self.net = net
        self.task = task

    def forward(self, obs: Tensor, legal_mask: Tensor) -> tuple[Tensor, Tensor]:
        logits, value = self.net(self.task, obs)
        return masked_logits(logits, legal_mask), value


def export_onnx(
    run_or_checkpoint: str | Path,
    output: str | Path,
    *,
    game: str | None = None,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Write the policy of ``game`` (a task name or a game id unique in the run; may be
    left out when the run has one task) to ``output``, atomically; returns its path.

    The graph computes in float32 (a ``bfloat16`` run's weights are float32; only its
    autocast is left out). Raises :class:`MissingExtraError` without onnx/onnxruntime,
    :class:`~rltransfer.errors.UnknownTaskError` (a ``KeyError``) for an unknown or ambiguous
    game, :class:`ExportError` (a ``ValueError``) for a bad opset or path.
    """
    onnx, ort = _import_extra()
    if opset not in OPSETS:
        raise ExportError(f"opset {opset} is not supported; use {OPSETS[0]}..{OPSETS[-1]}")
    output = _check_output(Path(output))
    policy = load_policy(run_or_checkpoint)
    task = pick_task(policy, game)
    net = policy.net
    net.cfg = dataclasses.replace(net.cfg, precision="float32")
    module = _MaskedPolicy(net, task).eval()
    shape = net.tasks[task]
    model = onnx.load_from_string(_trace(module, shape, opset))
    model.doc_string = f"rltransfer {__version__}: the policy of {task} from {policy.source}"
    for key, value in model_metadata(policy, task).items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    _verify(ort.InferenceSession(data, providers=["CPUExecutionProvider"]), module, shape)
    _write_atomic(output, data)
    return output


def pick_task(policy: LoadedPolicy, game: str | None) -> str:
    """The task to export: ``game`` resolved by the policy, or its only task."""
    if game is not None:
        return policy.task(game)
    if len(policy.games) == 1:
        return policy.games[0]
    raise UnknownTaskError(
        f"{policy.source} plays {len(policy.games)} games ({', '.join(policy.games)}); "
        "choose one (--game TASK, or a game id the run plays once)"
    )


def model_metadata(policy: LoadedPolicy, task: str) -> dict[str, str]:
    """What a user of the file needs to know, as ONNX ``metadata_props`` (all strings)."""
    spec, shape = policy.specs[task], policy.net.tasks[task]
    meta = load_meta(policy.source)
    return {
        "rltransfer_version": __version__,
        "game": spec.id,
        "game_options": json.dumps(dict(spec.options), sort_keys=True),
        "task": task,
        "obs_shape": json.dumps(["N", shape.num_planes, shape.height, shape.width]),
        "num_planes": str(shape.num_planes),
        "height": str(shape.height),
        "width": str(shape.width),
        "num_actions": str(shape.num_actions),
        "has_pass": json.dumps(shape.has_pass),
        "iteration": str(meta.get("iteration", "")),
        "weights_sha256": str(meta.get("weights_sha256", "")),
    }


def sample_inputs(shape: TaskShape, n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Random ``obs`` [n, C, H, W] float32 and ``legal_mask`` [n, A] bool (every row with
    a legal action and, where A > 1, an illegal one), for checking an exported graph."""
    gen = torch.Generator().manual_seed(seed)
    obs = torch.rand((n, shape.num_planes, shape.height, shape.width), generator=gen)
    mask = torch.rand((n, shape.num_actions), generator=gen) < 0.5
    mask[:, 0] = True
    if shape.num_actions > 1:
        mask[:, -1] = False
    return obs, mask


def missing_packages() -> list[str]:
    """Which of the ``export`` extra's packages (onnx, onnxruntime) do not import."""
    missing = []
    for name in ("onnx", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    return missing


def _import_extra() -> tuple[ModuleType, ModuleType]:
    """The ``onnx`` and ``onnxruntime`` modules, or a :class:`MissingExtraError` saying how
    to install them."""
    missing = missing_packages()
    if missing:
        raise MissingExtraError(
            f"exporting to ONNX needs {' and '.join(missing)}, not installed: {INSTALL_HINT}"
        )
    import onnx
    import onnxruntime

    return onnx, onnxruntime


def _check_output(path: Path) -> Path:
    if path.is_dir():
        raise ExportError(
            f"{path} is a folder; give the file to write, e.g. {path / 'policy.onnx'}"
        )
    if not path.parent.is_dir():
        raise ExportError(f"cannot write {path}: there is no folder {path.parent}")
    return path


def _trace(module: _MaskedPolicy, shape: TaskShape, opset: int) -> bytes:
    """The ONNX bytes of ``module``, batch dim dynamic (see the module docstring)."""
    obs, mask = sample_inputs(shape, _TRACE_BATCH)
    batch = {0: "N"}
    # torch < 2.5 has no ``dynamo`` argument (and only the TorchScript exporter)
    has_choice = "dynamo" in inspect.signature(torch.onnx.export).parameters
    choice: dict[str, Any] = {"dynamo": False} if has_choice else {}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), torch.no_grad():
        # torch >= 2.9 says the TorchScript exporter is no longer its default (we chose it)
        # and its internals use deprecated helpers: nothing a user of ours could change.
        # Tracer warnings (GroupNorm's input check reads a size) are moot: _verify runs the
        # graph at another batch size, so a size baked in would not pass unnoticed.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        path = Path(tmp) / "policy.onnx"
        torch.onnx.export(
            module,
            (obs, mask),
            path,
            input_names=list(INPUTS),
            output_names=list(OUTPUTS),
            opset_version=opset,
            dynamic_axes=dict.fromkeys((*INPUTS, *OUTPUTS), batch),
            **choice,
        )
        return path.read_bytes()


def _verify(session: Any, module: _MaskedPolicy, shape: TaskShape) -> None:
    """An onnxruntime ``InferenceSession``'s outputs must match ``module``'s, on a batch
    size other than the traced one."""
    obs, mask = sample_inputs(shape, _TRACE_BATCH + 1, seed=1)
    got = session.run(list(OUTPUTS), {"obs": obs.numpy(), "legal_mask": mask.numpy()})
    with torch.no_grad():
        want = module(obs, mask)
    for name, g, w in zip(OUTPUTS, got, want, strict=True):
        g = torch.from_numpy(g)
        if g.shape != w.shape or not torch.allclose(g, w, rtol=1e-3, atol=1e-4):
            raise RuntimeError(
                f"the exported graph's {name} differs from the PyTorch policy's "
                f"(shape {list(g.shape)} vs {list(w.shape)}); this is a bug, please report it"
            )


def _write_atomic(path: Path, data: bytes) -> None:
    """``path`` through a temporary file and one rename: a crash leaves the old file or
    the new one (the bytes twin of :func:`rltransfer.runs.folder.write_text_atomic`)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        write_synced(tmp, data)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
