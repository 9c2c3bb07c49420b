"""Find TOML specs (``envs/`` suites, ``agents/`` presets) by name or by path.

The folders ``envs/`` and ``agents/`` sit at the top of a source checkout and ship inside
the wheel as ``rltransfer/_presets/envs`` and ``rltransfer/_presets/agents``; this module
is the one place that knows both locations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

SpecKind = Literal["envs", "agents"]

_PACKAGE = Path(__file__).resolve().parents[1]  # rltransfer/ (this file: rltransfer/specs/)


def spec_dirs(kind: SpecKind) -> list[Path]:
    """Folders searched for ``kind`` specs: the installed copy, then a source checkout."""
    return [d for d in (_PACKAGE / "_presets" / kind, _PACKAGE.parent / kind) if d.is_dir()]


def available_specs(kind: SpecKind) -> list[str]:
    """Names (file stems) of the shipped specs of ``kind``."""
    return sorted({p.stem for d in spec_dirs(kind) for p in d.glob("*.toml")})


def resolve_spec(kind: SpecKind, name_or_path: str | Path) -> Path:
    """A spec file from a name (``"classic"``) or a path (``"./my_suite.toml"``).

    A value that names an existing file, or ends in ``.toml``, is taken as a path;
    anything else as the name of a shipped spec. Errors list what is available.
    """
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    if text.endswith(".toml") or "/" in text:
        raise FileNotFoundError(f"{kind} spec file not found: {path}")
    for folder in spec_dirs(kind):
        candidate = folder / f"{text}.toml"
        if candidate.is_file():
            return candidate
    names = ", ".join(available_specs(kind)) or "none"
    raise FileNotFoundError(
        f"unknown {kind} spec {text!r}; available: {names} (or give a path to a .toml file)"
    )
