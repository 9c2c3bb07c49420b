"""The one place that names TensorBoard tags, the run's TensorBoard writer and its layout.

Tags live in a few fixed namespaces, as in CleanRL, so every run of every suite lines up in
one TensorBoard. These are all the tags rltransfer writes (``<game>`` is a suite's game name
such as ``othello_size6``; ``a|b`` stands for one tag per name)::

    games/<game>/score_vs_<opponent>          evaluation: (wins + draws / 2) / games
    games/<game>/win_rate_vs_<opponent>       evaluation: wins / games
    games/<game>/win_rate_vs_train_<kind>     training episodes won, per opponent kind
    games/<game>/episode_length               learner moves per finished training episode
    games/<game>/return                       the learner's mean training-episode return
    games/<game>/approx_kl|clipfrac|entropy   that game's share of the PPO update
    losses/policy|value|entropy|approx_kl|clipfrac|explained_variance
    search/<game>/simulations|root_value|improvement_kl|target_entropy   alphazero runs
    charts/sps|collect_sps|learning_rate|moves|moves_per_s
    charts/trunk_frozen                       transfer runs only: 1 while the trunk is frozen
    diagnostics/game_probe|game_probe_random_trunk   a linear probe telling games apart
    diagnostics/game_classifier_loss|game_classifier_accuracy   ppo.confusion_coef > 0
    boards/<game>                             final self-play boards (images)
    config                                    the resolved config as TOML (text)
    hparams/games/<game>/score_vs_<opponent>  the final evaluation, for the HParams dashboard
    transfer/jumpstart|asymptotic_gain|time_to_threshold_ratio|area_ratio|few_shot_gain  experiment
    ladder/<game>/elo|elo_low|elo_high        ``rltransfer ladder --log``: checkpoints' Elo

Each run also gets a custom-scalars layout (:func:`run_layout`: every game's score on one
chart per opponent), and a transfer experiment's folder one that overlays its arms
(:func:`transfer_layout`). Other modules build tags with these functions and constants,
never with string literals, so a renamed tag is renamed everywhere and a typo fails loudly
instead of opening a new chart.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shlex
import shutil
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import torch
from tensorboard.backend.event_processing import event_accumulator
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from rltransfer.specs.config import dump_toml

CHARTS_SPS = "charts/sps"  # learner decisions per second, rollout and update
CHARTS_COLLECT_SPS = "charts/collect_sps"  # learner decisions per second of the rollouts
CHARTS_LEARNING_RATE = "charts/learning_rate"
CHARTS_MOVES = "charts/moves"  # every ply since the run began, the opponents' included
CHARTS_MOVES_PER_S = "charts/moves_per_s"
CHARTS_TRUNK_FROZEN = "charts/trunk_frozen"
CONFIG = "config"
#: held-out accuracy of a linear probe telling the games apart from the trunk's features
#: (multitask runs, at every evaluation), and of the same probe on a random trunk (step 0)
DIAGNOSTICS_GAME_PROBE = "diagnostics/game_probe"
DIAGNOSTICS_GAME_PROBE_RANDOM = "diagnostics/game_probe_random_trunk"
#: the domain-confusion classifier's loss and accuracy (``ppo.confusion_coef`` > 0)
DIAGNOSTICS_CLASSIFIER_LOSS = "diagnostics/game_classifier_loss"
DIAGNOSTICS_CLASSIFIER_ACCURACY = "diagnostics/game_classifier_accuracy"

LOSS_METRICS = ("policy", "value", "entropy", "approx_kl", "clipfrac", "explained_variance")
GAME_LEARNING_METRICS = ("approx_kl", "clipfrac", "entropy")
GAME_METRICS = ("episode_length", "return", *GAME_LEARNING_METRICS)
GAME_OPPONENT_METRICS = ("win_rate_vs_", "score_vs_")  # followed by the opponent's name
TRANSFER_METRICS = (
    "jumpstart",
    "asymptotic_gain",
    "time_to_threshold_ratio",
    "area_ratio",
    "few_shot_gain",
)

#: search self-play (``train.algorithm = "alphazero"``): simulations per move, the mean
#: root value, KL(improved policy || prior) and the entropy of the policy targets
SEARCH_METRICS = ("simulations", "root_value", "improvement_kl", "target_entropy")
LADDER_METRICS = ("elo", "elo_low", "elo_high")  # a rating and its 95% interval
#: The subfolder of a run where ``rltransfer ladder --log`` writes its ratings (apart from
#: the training's event files, whose resumes purge later steps).
LADDER_DIR = "ladder"

_NAME = re.compile(r"[A-Za-z0-9_.:\-]+")  # one tag segment: no "/", no spaces ("mcts:100" fits)

Scalar = float | int | Tensor
V = TypeVar("V", bound=Scalar)
#: A custom-scalars layout: ``{category: {chart title: ["Multiline", [tag regex, ...]]}}``.
Layout = dict[str, dict[str, list[Any]]]


def _check_name(kind: str, name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"{kind} {name!r} cannot be part of a TensorBoard tag: "
            "use letters, digits, '_', '.', ':' or '-' (no '/' or spaces)"
        )
    return name


def loss_tag(metric: str) -> str:
    """``losses/<metric>`` for one of ``LOSS_METRICS``."""
    if metric not in LOSS_METRICS:
        raise ValueError(f"unknown loss metric {metric!r}; known: {', '.join(LOSS_METRICS)}")
    return f"losses/{metric}"


def game_tag(game: str, metric: str) -> str:
    """``games/<game>/<metric>``, metric one of ``GAME_METRICS`` or ``win_rate_vs_<opponent>``
    / ``score_vs_<opponent>``."""
    _check_name("game", game)
    prefix = next((p for p in GAME_OPPONENT_METRICS if metric.startswith(p)), None)
    if prefix is not None:
        _check_name("opponent", metric[len(prefix) :])
    elif metric not in GAME_METRICS:
        raise ValueError(
            f"unknown game metric {metric!r}; known: {', '.join(GAME_METRICS)}, "
            "win_rate_vs_<opponent>, score_vs_<opponent>"
        )
    return f"games/{game}/{metric}"


def win_rate_tag(game: str, opponent: str) -> str:
    """``games/<game>/win_rate_vs_<opponent>``."""
    return game_tag(game, f"win_rate_vs_{opponent}")


def train_win_rate_tag(game: str, kind: str) -> str:
    """``games/<game>/win_rate_vs_train_<kind>``: training episodes won against one kind of
    opponent of the self-play mix (``self``, ``snapshot``, ``random``, ...)."""
    return win_rate_tag(game, f"train_{kind}")


def score_tag(game: str, opponent: str) -> str:
    """``games/<game>/score_vs_<opponent>``: draws count half, as in chess."""
    return game_tag(game, f"score_vs_{opponent}")


def board_tag(game: str) -> str:
    """``boards/<game>``: images of final boards, apart from the scalars' ``games/``."""
    return f"boards/{_check_name('game', game)}"


def transfer_tag(metric: str) -> str:
    """``transfer/<metric>``, e.g. one of ``TRANSFER_METRICS`` (Taylor & Stone 2009)."""
    return f"transfer/{_check_name('transfer metric', metric)}"


def search_tag(game: str, metric: str) -> str:
    """``search/<game>/<metric>``, metric one of ``SEARCH_METRICS``."""
    if metric not in SEARCH_METRICS:
        raise ValueError(f"unknown search metric {metric!r}; known: {', '.join(SEARCH_METRICS)}")
    return f"search/{_check_name('game', game)}/{metric}"


def ladder_tag(game: str, metric: str) -> str:
    """``ladder/<game>/<metric>``, metric one of ``LADDER_METRICS``."""
    if metric not in LADDER_METRICS:
        raise ValueError(f"unknown ladder metric {metric!r}; known: {', '.join(LADDER_METRICS)}")
    return f"ladder/{_check_name('game', game)}/{metric}"


def hparam_metric_tag(name: str) -> str:
    """``hparams/<name>``: a final metric of the HParams dashboard, kept apart from the
    training curves so writing it adds no point to them. ``name`` may contain '/'."""
    for part in name.split("/"):
        _check_name("hparams metric", part)
    return f"hparams/{name}"


def loss_scalars(stats: Mapping[str, V]) -> dict[str, V]:
    """PPO statistics over every game (``policy``, ``value``, ...) keyed by their
    ``losses/`` tags."""
    return {loss_tag(name): value for name, value in stats.items()}


def game_learning_scalars(game: str, stats: Mapping[str, V]) -> dict[str, V]:
    """A game's ``approx_kl``, ``clipfrac`` and ``entropy`` keyed by ``games/<game>/...``."""
    return {game_tag(game, k): stats[k] for k in GAME_LEARNING_METRICS if k in stats}


# ------------------------------------------------------------------------ layouts
def every_game(metric: str) -> str:
    """The regex of ``games/<any game>/<metric>``: one chart line per game (and run)."""
    game_tag("game", metric)  # an unknown metric fails here
    return f"^games/[^/]+/{re.escape(metric)}$"


def run_layout(opponents: Sequence[str]) -> Layout:
    """A run's custom-scalars layout: the evaluation scores of every game at a glance, one
    chart per opponent, then win rates, episode lengths and returns the same way.

    The patterns name no game, so the layouts of runs of different suites are identical
    and TensorBoard, which merges the layouts of all runs, shows each chart once.
    """
    return {
        "scores, every game": {
            f"score vs {o}": ["Multiline", [every_game(f"score_vs_{o}")]] for o in opponents
        },
        "games, every game": {
            **{
                f"win rate vs {o}": ["Multiline", [every_game(f"win_rate_vs_{o}")]]
                for o in opponents
            },
            "episode length (training)": ["Multiline", [every_game("episode_length")]],
            "return (training)": ["Multiline", [every_game("return")]],
        },
    }


def transfer_layout(task: str, opponent: str) -> Layout:
    """A transfer experiment's layout: the target's score and episode length, every arm and
    seed on one chart."""
    return {
        "transfer": {
            f"{task}: score vs {opponent}, every arm and seed": [
                "Multiline",
                [f"^{re.escape(score_tag(task, opponent))}$"],
            ],
            f"{task}: episode length": [
                "Multiline",
                [f"^{re.escape(game_tag(task, 'episode_length'))}$"],
            ],
        }
    }


def tensorboard_command(logdir: str | Path) -> str:
    """The shell command that opens TensorBoard on ``logdir``, runnable as printed.

    ``tensorboard`` when it is on the PATH; otherwise the script beside the running Python,
    as in a virtual environment that is installed but not activated (the README's quick
    start), or ``<python> -m tensorboard.main`` where there is no such script.
    """
    if shutil.which("tensorboard"):
        program = "tensorboard"
    else:
        script = Path(sys.executable).parent / "tensorboard"
        python = shlex.quote(sys.executable)
        program = shlex.quote(str(script)) if script.is_file() else f"{python} -m tensorboard.main"
    return f"{program} --logdir {shlex.quote(str(logdir))}"


class RunLogger:
    """TensorBoard writer of one run: scalars, the config, board images, hparams, layout.

    ``purge_step``: when a run resumes from a checkpoint at global step k, pass k. The new
    event file then starts with a restart marker, and TensorBoard drops every event with
    step >= k from the earlier files, so the steps logged again are not doubled.
    """

    def __init__(
        self, log_dir: str | Path, purge_step: int | None = None, flush_secs: int = 30
    ) -> None:
        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(str(log_dir), purge_step=purge_step, flush_secs=flush_secs)
        self.nonfinite: Counter[str] = Counter()  # tags skipped for NaN/inf, over the run
        self.last_step = 0  # the largest step a scalar was logged at

    def scalars(self, step: int, values: Mapping[str, Scalar]) -> list[str]:
        """Log ``{tag: value}`` at ``step``; returns the tags skipped as NaN or infinite.

        Non-finite values are not written (one NaN flattens a TensorBoard chart) but counted
        in ``self.nonfinite`` and returned, so the trainer can stop or warn. Tensor values are
        copied to the host in one transfer per device, not one per tag.
        """
        floats = _host_floats(values)
        skipped = [tag for tag, value in floats.items() if not math.isfinite(value)]
        for tag, value in floats.items():
            if math.isfinite(value):
                self.writer.add_scalar(tag, value, global_step=step)
        self.nonfinite.update(skipped)
        self.last_step = max(self.last_step, step)
        return skipped

    def config_table(self, config: Mapping[str, Any] | Any, step: int = 0) -> str:
        """Log the resolved config once under ``config``, as the TOML of the run's
        ``config.toml`` (nested tables and dataclasses become TOML tables, ``None`` values
        are left out); returns the TOML."""
        text = dump_toml(_plain(config))
        self.writer.add_text(CONFIG, f"```toml\n{text}```", global_step=step)
        return text

    def board_images(self, tag: str, images: list[Tensor], step: int, ncols: int = 8) -> None:
        """Log boards ([3, H, W] uint8 each, one size) as one grid image under ``tag``."""
        self.writer.add_image(tag, image_grid(images, ncols), global_step=step, dataformats="CHW")

    def hparams(
        self, hparams: Mapping[str, Any], metrics: Mapping[str, Scalar], step: int | None = None
    ) -> list[str]:
        """Log the run's hyperparameters and final ``metrics`` for the HParams dashboard.

        ``step``: where the metrics were measured, the run's final step; by default the last
        step this logger wrote a scalar at. (The dashboard reads each metric as a scalar, so
        ``hparams/...`` charts exist; at step 0 they would show a final score as a point
        before any training.)

        Written into this run's own directory: ``SummaryWriter.add_hparams`` would open a
        timestamped subdirectory, which TensorBoard shows as a second run. Nested hparams are
        flattened to dotted keys; values other than bool/int/float/str are logged as text (and
        bools as 0/1, as torch's writer does).
        Metrics go to ``hparams/<name>``; returns the non-finite ones, which are skipped.
        """
        flat = {key: _hparam_value(value) for key, value in flatten_config(hparams).items()}
        tagged = {hparam_metric_tag(name): value for name, value in metrics.items()}
        floats = _host_floats(tagged)
        summaries = hparams_summaries(flat, {t: v for t, v in floats.items() if math.isfinite(v)})
        step = self.last_step if step is None else step
        file_writer = self.writer._get_file_writer()  # what add_hparams itself writes with
        for summary in summaries:
            file_writer.add_summary(summary, step)
        return self.scalars(step, floats)

    def layout(self, layout: Layout) -> None:
        """Write a custom-scalars layout (:func:`run_layout`, :func:`transfer_layout`), once
        per writer; TensorBoard merges the layouts of every run it shows."""
        self.writer.add_custom_scalars(layout)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class NullLogger(RunLogger):
    """A :class:`RunLogger` that writes nothing: the ranks other than 0 of a multi-process
    run, where rank 0 alone logs."""

    def __init__(self) -> None:  # no writer, no folder
        self.nonfinite = Counter()
        self.last_step = 0

    def scalars(self, step: int, values: Mapping[str, Scalar]) -> list[str]:
        return []

    def config_table(self, config: Mapping[str, Any] | Any, step: int = 0) -> str:
        return ""

    def board_images(self, tag: str, images: list[Tensor], step: int, ncols: int = 8) -> None:
        pass

    def hparams(
        self, hparams: Mapping[str, Any], metrics: Mapping[str, Scalar], step: int | None = None
    ) -> list[str]:
        return []

    def layout(self, layout: Layout) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def image_grid(images: list[Tensor], ncols: int = 8, pad: int = 2) -> Tensor:
    """Tile [3, H, W] uint8 images row by row into one [3, H', W'] uint8 image, separated
    by ``pad`` grey (128) pixels."""
    if not images:
        raise ValueError("board_images needs at least one image")
    shape = tuple(images[0].shape)
    for i, image in enumerate(images):
        if image.dtype != torch.uint8 or image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(
                f"image {i} must be [3, H, W] uint8, got {tuple(image.shape)} {image.dtype}"
            )
        if tuple(image.shape) != shape:
            raise ValueError(
                f"images must share one shape: image 0 is {shape}, image {i} is "
                f"{tuple(image.shape)}"
            )
    _, h, w = shape
    cols = min(ncols, len(images))
    rows = math.ceil(len(images) / cols)
    grid = torch.full((3, pad + rows * (h + pad), pad + cols * (w + pad)), 128, dtype=torch.uint8)
    for i, image in enumerate(images):
        top, left = pad + (i // cols) * (h + pad), pad + (i % cols) * (w + pad)
        grid[:, top : top + h, left : left + w] = image.detach().cpu()
    return grid


def flatten_config(config: Mapping[str, Any] | Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings and dataclass instances -> ``{"ppo.learning_rate": 2.5e-4, ...}``."""
    flat: dict[str, Any] = {}
    for key, value in _table(config).items():
        name = f"{prefix}{key}"
        is_table = isinstance(value, Mapping) or _is_dataclass_instance(value)
        flat.update(flatten_config(value, f"{name}.") if is_table else {name: value})
    return flat


def _is_dataclass_instance(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _table(config: Mapping[str, Any] | Any) -> Mapping[str, Any]:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    if isinstance(config, Mapping):
        return config
    raise TypeError(f"a config must be a mapping or a dataclass instance, got {type(config)}")


def _plain(config: Mapping[str, Any] | Any) -> dict[str, Any]:
    """Nested mappings and dataclass instances -> plain dicts (what TOML writes)."""
    out: dict[str, Any] = {}
    for key, value in _table(config).items():
        is_table = isinstance(value, Mapping) or _is_dataclass_instance(value)
        out[str(key)] = _plain(value) if is_table else value
    return out


def _hparam_value(value: Any) -> bool | int | float | str:
    if isinstance(value, Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)  # None, lists, paths: shown as text rather than dropped


def _host_floats(values: Mapping[str, Scalar]) -> dict[str, float]:
    """Python floats for numbers and one-element tensors, one device->host copy per device."""
    tensors: dict[torch.device, list[tuple[str, Tensor]]] = {}
    host: dict[str, float] = {}
    for tag, value in values.items():
        if isinstance(value, Tensor):
            if value.numel() != 1:
                raise ValueError(f"scalar {tag!r} must hold one number, got {tuple(value.shape)}")
            tensors.setdefault(value.device, []).append((tag, value))
        else:
            host[tag] = float(value)
    for items in tensors.values():
        stacked = torch.stack([v.detach().reshape(()).to(torch.float32) for _, v in items])
        host.update(zip((tag for tag, _ in items), stacked.tolist(), strict=True))
    return {tag: host[tag] for tag in values}  # the caller's order


def load_events(log_dir: str | Path) -> event_accumulator.EventAccumulator:
    """An ``EventAccumulator`` over ``log_dir`` with every event kept (its defaults sample
    scalars down to 10,000 and images to 4 per tag), restart purges applied."""
    keep_all = {kind: 0 for kind in event_accumulator.DEFAULT_SIZE_GUIDANCE}
    events = event_accumulator.EventAccumulator(str(log_dir), size_guidance=keep_all)
    events.Reload()
    return events


def read_scalars(log_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of a run: ``{tag: [(step, value), ...]}`` in logged order.

    Values come back as float32, which is how TensorBoard stores them.
    """
    events = load_events(log_dir)
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }
