"""What to run, as data: the settings dataclasses and strict TOML loading.

Specs are data that the learning modules read (this module imports none of them): a suite
in ``envs/`` says which games to play, with which options, on how many boards and with
what loss weight; an agent preset in ``agents/`` holds the tables ``[net]``
(:class:`NetConfig`), ``[ppo]`` (:class:`PPOConfig`), ``[selfplay]``
(:class:`SelfPlayConfig`), ``[train]`` (:class:`TrainSettings`) and ``[transfer]``
(:class:`TransferSettings`), and may ``extends`` another preset, listing only what it
changes (:func:`load_agent`). The dataclass defaults are the ``ppo_small`` preset's.

Loading is strict: an unknown key is an error that names the key, the file and the valid
keys, because a typo silently ignored is a run silently wrong. Loading never executes
anything a file names.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import tomli_w
import torch

from rltransfer.errors import UnknownPlayerError, UserError
from rltransfer.games import game_class, make
from rltransfer.games.core import BoardGame
from rltransfer.specs.presets import resolve_spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


class ConfigError(UserError, ValueError):
    """A spec or config value that cannot be used; the message names the file and key."""


TASK_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclasses.dataclass(frozen=True)
class GameSpec:
    """One game of a suite."""

    id: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    num_envs: int = 256  # boards stepped in parallel for this game
    weight: float = 1.0  # this game's weight in the multitask loss
    name: str = ""  # unique task name (TensorBoard tags, heads); derived when empty
    # learner decisions per board per iteration; 0: the PPO rollout length (ppo.num_steps).
    # A slow task (PettingZoo envs step on the CPU in Python) can collect fewer.
    num_steps: int = 0

    def __post_init__(self) -> None:
        if not self.name:
            # "pettingzoo:go_v5" + board_size=9 -> "go_v5_board_size9" (no ':' in tags, paths)
            suffix = "".join(f"_{k}{v}" for k, v in sorted(self.options.items()))
            derived = re.sub(r"[^A-Za-z0-9_-]", "_", self.id.rpartition(":")[2] + suffix)
            object.__setattr__(self, "name", derived)
        if not isinstance(self.name, str) or not TASK_NAME.fullmatch(self.name):
            raise ConfigError(
                f"game name {self.name!r} is not allowed: use 1-64 letters, digits, '_' or '-' "
                "(it names the game's heads, TensorBoard tags and files)"
            )
        object.__setattr__(self, "options", dict(self.options))

    def steps(self, default: int) -> int:
        """This game's rollout length: ``num_steps``, or ``default`` where it is 0."""
        return self.num_steps or default

    def make(self, **extra: Any) -> BoardGame:
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
    except RecursionError:
        raise ConfigError(f"{path}: not a config (nested too deeply to read)") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a TOML text file (not UTF-8: {e.reason})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it ({e.strerror or e})") from None


def check_keys(table: Mapping[str, Any], valid: set[str], where: str) -> None:
    """Raise :class:`ConfigError` for any key of ``table`` not in ``valid``."""
    unknown = sorted(set(table) - valid)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(valid)}")


def _game_spec(raw: Mapping[str, Any], where: str) -> GameSpec:
    check_keys(raw, {f.name for f in dataclasses.fields(GameSpec)}, where)
    if "id" not in raw:
        raise ConfigError(f"{where}: missing key 'id' (the game id, e.g. 'connect_four')")
    if not isinstance(raw["id"], str):
        raise ConfigError(f"{where}: id must be a string (a game id), got {raw['id']!r}")
    if not isinstance(raw.get("options", {}), Mapping):
        raise ConfigError(f"{where}: options must be a table, got {raw['options']!r}")
    try:
        spec = GameSpec(**raw)
        game_class(spec.id)
        spec.make()  # validates the options against the game
    except (KeyError, ValueError, TypeError) as e:
        raise ConfigError(f"{where}: {e.args[0] if e.args else e}") from None
    if not is_int(spec.num_envs) or spec.num_envs < 1:
        raise ConfigError(f"{where}: num_envs must be a positive integer, got {spec.num_envs!r}")
    if not is_number(spec.weight) or spec.weight < 0:
        raise ConfigError(f"{where}: weight must be a number >= 0, got {spec.weight!r}")
    if not is_int(spec.num_steps) or spec.num_steps < 0:
        raise ConfigError(
            f"{where}: num_steps must be an integer >= 0 (0: ppo.num_steps), got {spec.num_steps!r}"
        )
    return spec


def is_int(v: Any) -> bool:
    """An int that is not a bool (TOML and JSON files give both)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_int(name: str, value: object, lo: int, hi: int | None = None) -> None:
    """Raise :class:`ConfigError` (a ``ValueError``) unless ``value`` is an int (not a
    bool) in ``[lo, hi]``."""
    if not is_int(value) or value < lo or (hi is not None and value > hi):  # type: ignore[operator]
        allowed = f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
        raise ConfigError(f"{name} must be {allowed}, got {value!r}")


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


# ------------------------------------------------- the network, PPO and self-play tables
@dataclasses.dataclass(frozen=True)
class NetConfig:
    """Network sizes (the ``[net]`` table of an agent preset)."""

    channels: int = 32  # D: trunk width
    blocks: int = 2  # residual blocks in the shared trunk
    policy_channels: int = 8  # hidden channels of the convolutional policy head
    value_channels: int = 8  # hidden channels of the value head before pooling
    value_hidden: int = 32  # width of the value head's MLP
    groups: int = 4  # GroupNorm groups (0: no normalisation)
    # float32, or bfloat16: stems, trunk and heads run under autocast (about 2x faster
    # on CPUs with AVX512-BF16 and on GPUs); logits and values come out as float32
    precision: str = "float32"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"net.precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name, (lo, hi) in _NET_BOUNDS.items():
            check_int(f"net.{name}", getattr(self, name), lo, hi)
        if self.groups and self.channels % self.groups:
            raise ConfigError(
                f"net.channels ({self.channels}) must be divisible by net.groups ({self.groups})"
            )


#: Allowed ranges of the network's sizes. They bound what a config or a checkpoint's
#: ``meta.json`` (untrusted data) can make us allocate before anything is checked.
_NET_BOUNDS = {
    "channels": (1, 4096),
    "blocks": (0, 256),
    "policy_channels": (1, 1024),
    "value_channels": (1, 1024),
    "value_hidden": (1, 8192),
    "groups": (0, 4096),
}

PRECISIONS = ("float32", "bfloat16")


AdvNorm = Literal["game", "minibatch", "none"]
ADV_NORMS: tuple[str, ...] = ("game", "minibatch", "none")


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters (the ``[ppo]`` table of an agent preset).

    The defaults are the ``ppo_small`` preset's (a test keeps them equal): CleanRL's,
    except the learning rate (CleanRL's Atari setting is 2.5e-4)."""

    learning_rate: float = 1e-3
    anneal_lr: bool = True  # linear decay to 0 over the run ("37 details" no. 4)
    num_steps: int = 32  # T: learner decisions per board per rollout
    update_epochs: int = 4  # K epochs over each rollout
    num_minibatches: int = 4  # the batch is shuffled and cut into this many ("37 details" no. 6)
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_coef: float = 0.2  # epsilon of the clipped surrogate (and of value clipping)
    clip_vloss: bool = True  # "37 details" no. 9; it may not help (Andrychowicz et al. 2021)
    ent_coef: float = 0.01  # entropy bonus ("37 details" no. 10)
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5  # global gradient clipping ("37 details" no. 11)
    target_kl: float | None = None  # stop the epochs early once approx_kl exceeds it
    # Advantage normalisation ("37 details" no. 7). "game": the trainer normalises each game's
    # advantages over its whole batch, so games with different reward scales or lengths
    # weigh alike; "minibatch": CleanRL's per-minibatch normalisation inside ppo_loss.
    adv_norm: AdvNorm = "game"
    # Domain confusion (rltransfer.learn.confusion): > 0 adds a game classifier on the pooled
    # trunk features behind a gradient reversal of this strength (lambda); 0: off.
    confusion_coef: float = 0.0

    def __post_init__(self) -> None:
        if self.adv_norm not in ADV_NORMS:
            raise ConfigError(f"ppo.adv_norm must be one of {ADV_NORMS}, got {self.adv_norm!r}")
        for name in ("num_steps", "update_epochs", "num_minibatches"):
            if isinstance(getattr(self, name), bool) or getattr(self, name) < 1:
                raise ConfigError(f"ppo.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"ppo.{name} must lie in [0, 1], got {getattr(self, name)}")
        for name in ("learning_rate", "clip_coef", "max_grad_norm"):
            if not 0.0 < getattr(self, name) < math.inf:
                raise ConfigError(f"ppo.{name} must be finite and > 0, got {getattr(self, name)}")
        for name in ("ent_coef", "vf_coef"):
            if not 0.0 <= getattr(self, name) < math.inf:
                raise ConfigError(f"ppo.{name} must be finite and >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.confusion_coef < math.inf:
            raise ConfigError(
                f"ppo.confusion_coef must be finite and >= 0, got {self.confusion_coef}"
            )
        if self.target_kl is not None and not self.target_kl > 0.0:
            raise ConfigError(f"ppo.target_kl must be > 0 or unset, got {self.target_kl}")


OPPONENT_KINDS = ("self", "snapshot", "random", "greedy", "perfect", "mcts")


@dataclasses.dataclass(frozen=True)
class SelfPlayConfig:
    """The opponent mix (fractions of each game's boards) and the snapshot pool."""

    self: float = 0.5  # the current policy
    snapshot: float = 0.2  # a past policy from the pool (the current one while it is empty)
    random: float = 0.15
    greedy: float = 0.15
    # a minimax-perfect player (tic_tac_toe); in games without one these boards play greedy
    perfect: float = 0.0
    # the mcts:S yardstick (S = mcts_simulations; random rollouts, costly on the CPU); in
    # games it cannot search (forward-only PettingZoo tasks) these boards play greedy
    mcts: float = 0.0
    mcts_simulations: int = 32
    snapshot_interval: int = 10  # iterations between snapshots added to the pool
    pool_size: int = 8  # snapshots kept (oldest dropped)

    def __post_init__(self) -> None:
        fractions = [getattr(self, k) for k in OPPONENT_KINDS]
        if any(not math.isfinite(f) or f < 0 for f in fractions) or sum(fractions) <= 0:
            raise ConfigError(
                f"opponent mix must be non-negative and not all zero, got {fractions}"
            )
        from rltransfer.search.mcts import MAX_SIMULATIONS

        check_int("selfplay.mcts_simulations", self.mcts_simulations, 1, MAX_SIMULATIONS)
        check_int("selfplay.snapshot_interval", self.snapshot_interval, 1)
        check_int("selfplay.pool_size", self.pool_size, 1, 1024)


@dataclasses.dataclass(frozen=True)
class AlphaZeroConfig:
    """The search-trained learner (``train.algorithm = "alphazero"``): Gumbel search
    self-play of both seats, the network fitted to the search's improved policy and to the
    games' outcomes (:mod:`rltransfer.learn.alphazero`). A learner step is one position
    searched and recorded, either seat's."""

    simulations: int = 16  # per move, Gumbel root selection with sequential halving
    max_considered: int = 16  # root actions Gumbel samples (m)
    num_steps: int = 8  # plies searched per board per iteration (both seats)
    replay_size: int = 20_000  # positions kept per game (the newest)
    batch_size: int = 256  # positions per game in a minibatch
    sample_reuse: float = 4.0  # mean times a new position is drawn into a minibatch
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4  # AdamW's decoupled decay
    value_coef: float = 1.0  # weight of the value loss beside the policy's cross-entropy
    max_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        from rltransfer.search.mcts import MAX_SIMULATIONS

        check_int("alphazero.simulations", self.simulations, 1, MAX_SIMULATIONS)
        for name in ("max_considered", "num_steps", "replay_size", "batch_size"):
            check_int(f"alphazero.{name}", getattr(self, name), 1)
        for name in ("sample_reuse", "learning_rate", "value_coef", "max_grad_norm"):
            value = getattr(self, name)
            if not is_number(value) or value <= 0:
                raise ConfigError(f"alphazero.{name} must be a finite number > 0, got {value!r}")
        if not is_number(self.weight_decay) or self.weight_decay < 0:
            raise ConfigError(f"alphazero.weight_decay must be >= 0, got {self.weight_decay!r}")


ALGORITHMS = ("ppo", "alphazero")
#: ``train.compile``: off, or a ``torch.compile`` mode (:mod:`rltransfer.learn.compiled`)
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune-no-cudagraphs")


# ------------------------------------------------------------------ training configuration
@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """The ``[train]`` table: budget, evaluation, checkpoints, device (defaults: ``ppo_small``)."""

    # the learner: "ppo" (self-play PPO) or "alphazero" (learning from search, [alphazero])
    algorithm: str = "ppo"
    total_steps: int = 700_000  # learner decisions, all games together (what SPS counts)
    num_envs_scale: float = 1.0  # multiplies every game's num_envs (GPU presets: more boards)
    eval_interval: int = 10  # iterations between evaluations
    eval_games: int = 256  # games per game and opponent during training
    final_eval_games: int = 1000  # games per game and opponent at the end
    eval_opponents: tuple[str, ...] = ("random", "greedy")
    checkpoint_interval: int = 10  # iterations between checkpoints
    keep_checkpoints: int = 3  # the last checkpoints kept in checkpoints/ (>= 1)
    # also keep the first checkpoint of every this many iterations (0: none); ladders and
    # later analysis read them
    milestone_interval: int = 100
    seed: int = 1
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 1  # torch intra-op threads on the CPU (1 is fastest on 2 cores)
    # torch.compile the loop's hot functions (games' rules, acting, PPO's loss): "off", or
    # a torch.compile mode; "reduce-overhead" adds CUDA graphs on GPUs (see README)
    compile: str = "off"

    def __post_init__(self) -> None:
        from rltransfer.play.players import available_players, is_player_name, make_player

        unknown = [o for o in self.eval_opponents if not is_player_name(o)]
        if unknown:
            raise ConfigError(
                f"train.eval_opponents: unknown opponent(s) {unknown}; valid opponents: "
                f"{', '.join(available_players())}"
            )
        for name in self.eval_opponents:
            try:
                make_player(name)  # mcts:S checks its S
            except UnknownPlayerError as e:
                raise ConfigError(f"train.eval_opponents: {e}") from None
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(
                f"train.algorithm must be one of {', '.join(ALGORITHMS)}, got {self.algorithm!r}"
            )
        for name, (lo, hi) in _TRAIN_BOUNDS.items():
            check_int(f"train.{name}", getattr(self, name), lo, hi)
        if not is_number(self.num_envs_scale) or self.num_envs_scale <= 0:
            raise ConfigError(
                f"train.num_envs_scale must be a finite number > 0, got {self.num_envs_scale!r}"
            )
        check_device(self.device)
        if self.compile not in COMPILE_MODES:
            raise ConfigError(
                f"train.compile must be one of {', '.join(COMPILE_MODES)}, got {self.compile!r}"
            )


_TRAIN_BOUNDS: dict[str, tuple[int, int | None]] = {
    "total_steps": (1, None),
    "eval_interval": (1, None),
    "eval_games": (1, None),
    "final_eval_games": (1, None),
    "checkpoint_interval": (1, None),
    "keep_checkpoints": (1, None),
    "milestone_interval": (0, None),
    "threads": (1, 4096),
}


def check_device(name: str) -> None:
    """Raise :class:`ConfigError` unless ``name`` is ``auto`` or a device string torch
    parses (``cpu``, ``cuda``, ``cuda:N``, ...). Whether the device is there is for
    ``rltransfer.learn.training.resolve_device`` to say, where it is used."""
    if name == "auto":
        return
    try:
        torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None


TRANSFER_MODES = ("finetune", "freeze", "gradual")


@dataclasses.dataclass(frozen=True)
class TransferSettings:
    """The ``[transfer]`` table: how a run starts from another run's trunk.

    ``source`` empty means a run from scratch; the other fields then do nothing.
    """

    source: str = ""  # the source run (or checkpoint folder)
    mode: str = "finetune"  # finetune: all weights train; freeze: trunk fixed; gradual: both
    unfreeze_after: int = 10  # gradual: iterations with the trunk frozen
    trunk_lr_scale: float = 1.0  # the trunk's learning rate relative to the rest
    keep_heads: bool = False  # reuse the source game's stem and heads (same game, any size)
    # carry a stem / heads across games: a source task name, or "auto" (the task whose
    # planes match best); "" keeps them fresh. See rltransfer.transfer.network.
    stem_from: str = ""
    heads_from: str = ""
    reset_last: bool = False  # re-initialise the last layer of each copied head
    seeds: int = 3  # seeds per arm of a transfer experiment
    baseline: str = "scratch"  # scratch: train the target from scratch too; none: skip it
    threshold: float = 0.0  # score for time-to-threshold; 0: 90% of scratch's final score
    opponent: str = "random"  # the evaluation opponent whose score the metrics use

    def __post_init__(self) -> None:
        if self.mode not in TRANSFER_MODES:
            raise ConfigError(f"transfer.mode must be one of {TRANSFER_MODES}, got {self.mode!r}")
        if self.baseline not in ("scratch", "none"):
            raise ConfigError(
                f"transfer.baseline must be 'scratch' or 'none', got {self.baseline!r}"
            )
        if self.unfreeze_after < 0 or self.trunk_lr_scale < 0 or self.seeds < 1:
            raise ConfigError(
                "transfer: unfreeze_after and trunk_lr_scale must be >= 0, seeds >= 1"
            )
        if not 0 <= self.threshold <= 1:
            raise ConfigError(f"transfer.threshold is a score in [0, 1], got {self.threshold}")
        for name in ("stem_from", "heads_from"):
            value = getattr(self, name)
            if value and value != "auto" and not TASK_NAME.fullmatch(value):
                raise ConfigError(
                    f"transfer.{name} must be a source task name or 'auto', got {value!r}"
                )


#: The tables of an agent preset and of a run's ``config.toml``, and their types.
SECTIONS: dict[str, type] = {
    "net": NetConfig,
    "ppo": PPOConfig,
    "selfplay": SelfPlayConfig,
    "train": TrainSettings,
    "transfer": TransferSettings,
    "alphazero": AlphaZeroConfig,
}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; saved to ``<run>/config.toml``."""

    suite: SuiteSpec
    agent: str
    net: NetConfig
    ppo: PPOConfig
    selfplay: SelfPlayConfig
    train: TrainSettings
    transfer: TransferSettings = dataclasses.field(default_factory=TransferSettings)
    alphazero: AlphaZeroConfig = dataclasses.field(default_factory=AlphaZeroConfig)
    name: str = ""

    def sections(self) -> dict[str, Any]:
        """The config as plain TOML-able tables (the resolved ``config.toml``)."""
        out: dict[str, Any] = {"name": self.name, "agent": self.agent}
        out["suite"] = {
            "name": self.suite.name,
            "description": self.suite.description,
            "games": [
                {
                    "id": g.id,
                    "options": dict(g.options),
                    "num_envs": g.num_envs,
                    "weight": g.weight,
                    "name": g.name,
                    "num_steps": g.num_steps,
                }
                for g in self.suite.games
            ],
        }
        for section in SECTIONS:
            out[section] = dataclasses.asdict(getattr(self, section))
        return out


def _build_section(cls: type, table: Mapping[str, Any], where: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    check_keys(table, set(fields), where)
    values = {}
    for key, value in table.items():
        default = fields[key].default
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        expected = (
            type(default) if default is not None and default is not dataclasses.MISSING else None
        )
        if expected in (int, float) and isinstance(value, bool):
            raise ConfigError(f"{where}: {key} must be a number, got {value!r}")
        if expected is not None and not isinstance(value, expected):
            raise ConfigError(f"{where}: {key} must be {expected.__name__}, got {value!r}")
        values[key] = value
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None


def parse_override(text: str) -> tuple[str, str, Any]:
    """``"ppo.learning_rate=1e-3"`` -> ``("ppo", "learning_rate", 0.001)`` (TOML values)."""
    key, eq, raw = text.partition("=")
    section, dot, name = key.strip().partition(".")
    if not eq or not dot or not name:
        raise ConfigError(
            f"bad --set {text!r}: expected section.key=value, e.g. ppo.learning_rate=1e-3"
        )
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word: take it as a string
    return section, name, value


#: How deep ``extends`` chains of agent presets may go.
MAX_EXTENDS = 8


def load_agent(name_or_path: str | Path) -> dict[str, dict[str, Any]]:
    """An agent preset's tables (``net``, ``ppo``, ``selfplay``, ``train``, ``transfer``),
    strictly, with ``extends`` followed.

    ``extends = "ppo_small"`` (a preset name, or a path relative to this file) starts from
    that preset's tables and overrides key by key, so a preset lists only what it changes.
    Chains are followed up to :data:`MAX_EXTENDS` presets; a cycle is an error.
    """
    path = resolve_spec("agents", name_or_path)
    chain: list[Path] = []
    layers: list[dict[str, Any]] = []
    while True:
        if path.resolve() in chain:
            names = " -> ".join(p.stem for p in [*chain, path.resolve()])
            raise ConfigError(f"{chain[0]}: agent presets extend each other in a cycle: {names}")
        if len(chain) == MAX_EXTENDS:
            raise ConfigError(f"{chain[0]}: more than {MAX_EXTENDS} presets in an extends chain")
        chain.append(path.resolve())
        raw = read_toml(path)
        check_keys(raw, {*SECTIONS, "description", "extends"}, str(path))
        for section in SECTIONS:
            if not isinstance(raw.get(section, {}), Mapping):
                raise ConfigError(f"{path}: [{section}] must be a table")
        layers.append(raw)
        base = raw.get("extends")
        if base is None:
            break
        if not isinstance(base, str) or not base:
            raise ConfigError(f"{path}: extends must name a preset, got {base!r}")
        relative = path.parent / base
        path = relative if relative.is_file() else resolve_spec("agents", base)
    tables: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    for raw in reversed(layers):  # the base first, each preset over it
        for section in SECTIONS:
            tables[section].update(raw.get(section, {}))
    return tables


def make_train_config(
    suite: str | Path | SuiteSpec = "classic",
    agent: str | Path = "ppo_small",
    overrides: list[str] | tuple[str, ...] = (),
    name: str = "",
    **train: Any,
) -> TrainConfig:
    """Agent preset -> suite -> ``--set`` overrides -> explicit ``train`` settings."""
    suite_spec = suite if isinstance(suite, SuiteSpec) else load_suite(suite)
    path = resolve_spec("agents", agent)
    tables = load_agent(path)
    sections = SECTIONS
    for item in overrides:
        section, key, value = parse_override(item)
        if section not in tables:
            raise ConfigError(f"--set {item}: unknown section {section!r}; valid: {sorted(tables)}")
        tables[section][key] = value
    tables["train"].update({k: v for k, v in train.items() if v is not None})
    built = {
        s: _build_section(cls, tables[s], f"{path} [{s}] (with overrides)")
        for s, cls in sections.items()
    }
    return TrainConfig(suite=suite_spec, agent=path.stem, name=name, **built)


#: What ``train --resume`` may change: settings that no saved state depends on. The rest
#: (network, suite, boards, rollout length, self-play mix, seed, transfer) shape the saved
#: weights, boards in flight or optimiser state, so changing them needs a new run.
RESUMABLE: dict[str, tuple[str, ...]] = {
    "train": (
        "total_steps", "device", "threads", "compile", "eval_interval", "eval_games",
        "final_eval_games", "eval_opponents", "checkpoint_interval", "keep_checkpoints",
        "milestone_interval",
    ),
    "ppo": (
        "learning_rate", "anneal_lr", "update_epochs", "num_minibatches", "clip_coef",
        "clip_vloss", "ent_coef", "vf_coef", "max_grad_norm", "target_kl",
    ),
    "alphazero": (
        "simulations", "max_considered", "batch_size", "sample_reuse", "learning_rate",
        "weight_decay", "value_coef", "max_grad_norm",
    ),
}  # fmt: skip


def resume_config(
    cfg: TrainConfig, overrides: list[str] | tuple[str, ...] = (), **train: Any
) -> tuple[TrainConfig, dict[str, tuple[Any, Any]]]:
    """``cfg`` with the changes a resume asks for (``--set`` items and ``train`` settings
    such as ``total_steps``, ``device``, ``threads``; ``None`` means unchanged).

    Returns the new config and ``{"section.key": (old, new)}`` for what changed. A key a
    resume may not change raises :class:`ConfigError` naming the ones it may.
    """
    tables = {sec: dataclasses.asdict(getattr(cfg, sec)) for sec in RESUMABLE}
    items = [parse_override(o) for o in overrides]
    items += [("train", k, v) for k, v in train.items() if v is not None]
    for section, key, value in items:
        if key not in RESUMABLE.get(section, ()):
            allowed = ", ".join(f"{sec}.{k}" for sec, keys in RESUMABLE.items() for k in keys)
            raise ConfigError(
                f"--resume cannot change {section}.{key}: the saved run depends on it (start a "
                f"new run, or transfer from this one, to change it). A resume may change: "
                f"{allowed}"
            )
        tables[section][key] = value
    sections = SECTIONS
    built = {sec: _build_section(sections[sec], tables[sec], f"--resume [{sec}]") for sec in tables}
    new = dataclasses.replace(cfg, **built)
    changed = {}
    for sec in tables:
        before, after = dataclasses.asdict(getattr(cfg, sec)), dataclasses.asdict(built[sec])
        changed.update(
            {f"{sec}.{k}": (before[k], after[k]) for k in after if before[k] != after[k]}
        )
    return new, changed


def load_run_config(path: Path) -> TrainConfig:
    """Read a run's resolved ``config.toml`` back (for ``--resume`` and ``eval``)."""
    raw = read_toml(path)
    sections = SECTIONS
    check_keys(raw, {*sections, "suite", "name", "agent"}, str(path))
    suite_raw = raw.get("suite", {})
    games = tuple(
        _game_spec(g, f"{path} [[suite.games]] #{i + 1}")
        for i, g in enumerate(suite_raw.get("games", []))
    )
    suite = SuiteSpec(
        name=suite_raw.get("name", ""), games=games, description=suite_raw.get("description", "")
    )
    built = {s: _build_section(cls, raw.get(s, {}), f"{path} [{s}]") for s, cls in sections.items()}
    return TrainConfig(suite=suite, agent=raw.get("agent", ""), name=raw.get("name", ""), **built)


def dump_toml(data: Mapping[str, Any]) -> str:
    """Configs as TOML (tomli-w, which escapes every string correctly); ``None`` values are
    left out, as TOML has no null and a missing key means the default."""
    return tomli_w.dumps(_drop_none(data))


def _drop_none(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _drop_none(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [_drop_none(x) for x in v]
    return v
