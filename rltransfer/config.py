"""Frozen config dataclasses and strict TOML loading.

Specs are data: a suite in ``envs/`` says which games to play, with which options, on how
many boards and with what loss weight. Loading is strict: an unknown key is an error
that names the key, the file and the valid keys, because a typo silently ignored is a
run silently wrong.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rltransfer.games import game_class, make
from rltransfer.games.core import Game
from rltransfer.presets import resolve_spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


class ConfigError(ValueError):
    """A spec or config value that cannot be used; the message names the file and key."""


@dataclasses.dataclass(frozen=True)
class GameSpec:
    """One game of a suite."""

    id: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    num_envs: int = 256  # boards stepped in parallel for this game
    weight: float = 1.0  # this game's weight in the multitask loss
    name: str = ""  # unique task name (TensorBoard tags, heads); derived when empty

    def __post_init__(self) -> None:
        if not self.name:
            suffix = "".join(f"_{k}{v}" for k, v in sorted(self.options.items()))
            object.__setattr__(self, "name", self.id + suffix)
        object.__setattr__(self, "options", dict(self.options))

    def make(self, **extra: Any) -> Game:
        return make(self.id, **self.options, **extra)


@dataclasses.dataclass(frozen=True)
class SuiteSpec:
    """A set of games trained together (a file in ``envs/``)."""

    name: str
    games: tuple[GameSpec, ...]
    description: str = ""

    def game(self, name: str) -> GameSpec:
        for g in self.games:
            if g.name == name:
                return g
        valid = ", ".join(g.name for g in self.games)
        raise KeyError(f"suite {self.name!r} has no game {name!r}; its games: {valid}")


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def check_keys(table: Mapping[str, Any], valid: set[str], where: str) -> None:
    """Raise :class:`ConfigError` for any key of ``table`` not in ``valid``."""
    unknown = sorted(set(table) - valid)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(valid)}")


def _game_spec(raw: Mapping[str, Any], where: str) -> GameSpec:
    check_keys(raw, {f.name for f in dataclasses.fields(GameSpec)}, where)
    if "id" not in raw:
        raise ConfigError(f"{where}: missing key 'id' (the game id, e.g. 'connect_four')")
    try:
        spec = GameSpec(**raw)
        game_class(spec.id)
        spec.make()  # validates the options against the game
    except (KeyError, ValueError, TypeError) as e:
        raise ConfigError(f"{where}: {e.args[0] if e.args else e}") from None
    if not isinstance(spec.num_envs, int) or spec.num_envs < 1:
        raise ConfigError(f"{where}: num_envs must be a positive integer, got {spec.num_envs!r}")
    if not isinstance(spec.weight, (int, float)) or spec.weight < 0:
        raise ConfigError(f"{where}: weight must be a number >= 0, got {spec.weight!r}")
    return spec


def load_suite(name_or_path: str | Path) -> SuiteSpec:
    """Load a suite spec by name (``"classic"``) or path, strictly."""
    path = resolve_spec("envs", name_or_path)
    raw = read_toml(path)
    check_keys(raw, {"name", "description", "games"}, str(path))
    games_raw = raw.get("games")
    if not isinstance(games_raw, list) or not games_raw:
        raise ConfigError(f"{path}: a suite needs at least one [[games]] table")
    games = tuple(_game_spec(g, f"{path} [[games]] #{i + 1}") for i, g in enumerate(games_raw))
    names = [g.name for g in games]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: two games share a name in {names}; give one a distinct 'name'")
    return SuiteSpec(
        name=raw.get("name", path.stem), games=games, description=raw.get("description", "")
    )
