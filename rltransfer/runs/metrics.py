"""The one place that names TensorBoard tags, and the run's TensorBoard writer.

Tags live in a few fixed namespaces, as in CleanRL, so every run of every suite lines up in
one TensorBoard::

    games/<game>/win_rate_vs_<opponent>   wins / games against that opponent
    games/<game>/score_vs_<opponent>      (wins + draws / 2) / games
    games/<game>/episode_length           learner-and-opponent moves per finished episode
    games/<game>/return                   the learner's mean episode return
    games/<game>/approx_kl|clipfrac|entropy   that game's share of the PPO update
    games/<game>/boards                   sample final boards (images)
    losses/policy|value|entropy|approx_kl|clipfrac|explained_variance
    charts/sps  charts/learning_rate  charts/moves (every move, the opponents' included)
    transfer/<metric>                     jumpstart, asymptotic_gain, ...
    hparams/<metric>                      final metrics shown by the HParams dashboard
    config                                the resolved config, once, as a markdown table

Other modules build tags with these functions and constants, never with string literals, so a
renamed tag is renamed everywhere and a typo fails loudly instead of opening a new chart.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import torch
from tensorboard.backend.event_processing import event_accumulator
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summaries

LOSSES_POLICY = "losses/policy"
LOSSES_VALUE = "losses/value"
LOSSES_ENTROPY = "losses/entropy"
LOSSES_APPROX_KL = "losses/approx_kl"
LOSSES_CLIPFRAC = "losses/clipfrac"
LOSSES_EXPLAINED_VARIANCE = "losses/explained_variance"
CHARTS_SPS = "charts/sps"
CHARTS_LEARNING_RATE = "charts/learning_rate"
CHARTS_MOVES = "charts/moves"
CONFIG = "config"

LOSS_METRICS = ("policy", "value", "entropy", "approx_kl", "clipfrac", "explained_variance")
GAME_LEARNING_METRICS = ("approx_kl", "clipfrac", "entropy")
GAME_METRICS = ("episode_length", "return", *GAME_LEARNING_METRICS, "boards")
GAME_OPPONENT_METRICS = ("win_rate_vs_", "score_vs_")  # followed by the opponent's name
TRANSFER_METRICS = ("jumpstart", "asymptotic_gain", "time_to_threshold_ratio", "area_ratio")

_NAME = re.compile(r"[A-Za-z0-9_.\-]+")  # one tag segment: no '/', no spaces

Scalar = float | int | Tensor


def _check_name(kind: str, name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"{kind} {name!r} cannot be part of a TensorBoard tag: "
            "use letters, digits, '_', '.' or '-' (no '/' or spaces)"
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


def score_tag(game: str, opponent: str) -> str:
    """``games/<game>/score_vs_<opponent>``: draws count half, as in chess."""
    return game_tag(game, f"score_vs_{opponent}")


def transfer_tag(metric: str) -> str:
    """``transfer/<metric>``, e.g. one of ``TRANSFER_METRICS`` (Taylor & Stone 2009)."""
    return f"transfer/{_check_name('transfer metric', metric)}"


def hparam_metric_tag(name: str) -> str:
    """``hparams/<name>``: a final metric of the HParams dashboard, kept apart from the
    training curves so writing it adds no point to them. ``name`` may contain '/'."""
    for part in name.split("/"):
        _check_name("hparams metric", part)
    return f"hparams/{name}"


def loss_scalars(stats: Mapping[str, Scalar]) -> dict[str, Scalar]:
    """``ppo_loss``'s stats (``policy``, ``value``, ...) keyed by their ``losses/`` tags."""
    return {loss_tag(name): value for name, value in stats.items()}


def game_learning_scalars(game: str, stats: Mapping[str, Scalar]) -> dict[str, Scalar]:
    """A game's ``approx_kl``, ``clipfrac`` and ``entropy`` keyed by ``games/<game>/...``."""
    return {game_tag(game, k): stats[k] for k in GAME_LEARNING_METRICS if k in stats}


class RunLogger:
    """TensorBoard writer of one run: scalars, the config table, board images, hparams.

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
        return skipped

    def config_table(self, config: Mapping[str, Any], step: int = 0) -> str:
        """Log the resolved config once, as a markdown ``| key | value |`` table under
        ``config`` (nested tables and dataclasses flattened to dotted keys); returns it."""
        rows = [f"| {key} | {_cell(value)} |" for key, value in flatten_config(config).items()]
        table = "\n".join(["| key | value |", "| --- | --- |", *rows])
        self.writer.add_text(CONFIG, table, global_step=step)
        return table

    def board_images(self, tag: str, images: list[Tensor], step: int, ncols: int = 8) -> None:
        """Log boards ([3, H, W] uint8 each, one size) as one grid image under ``tag``."""
        self.writer.add_image(tag, image_grid(images, ncols), global_step=step, dataformats="CHW")

    def hparams(
        self, hparams: Mapping[str, Any], metrics: Mapping[str, Scalar], step: int = 0
    ) -> list[str]:
        """Log the run's hyperparameters and final ``metrics`` for the HParams dashboard.

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
        file_writer = self.writer._get_file_writer()  # what add_hparams itself writes with
        for summary in summaries:
            file_writer.add_summary(summary, step)
        return self.scalars(step, floats)

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


def _cell(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


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
