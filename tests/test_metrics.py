"""TensorBoard tags and RunLogger: what is written is read back exactly, resumes do not double."""

from __future__ import annotations

import dataclasses
import io
import math
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util

from rltransfer.runs import metrics
from rltransfer.runs.metrics import RunLogger, image_grid, load_events, read_scalars

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_tags_are_the_design_strings() -> None:
    assert metrics.win_rate_tag("tic_tac_toe", "random") == "games/tic_tac_toe/win_rate_vs_random"
    assert metrics.score_tag("connect_four", "greedy") == "games/connect_four/score_vs_greedy"
    assert metrics.game_tag("hex", "episode_length") == "games/hex/episode_length"
    assert metrics.game_tag("othello_6x6", "return") == "games/othello_6x6/return"
    for stat in ("approx_kl", "clipfrac", "entropy"):
        assert metrics.game_tag("gomoku", stat) == f"games/gomoku/{stat}"
    assert [metrics.loss_tag(m) for m in metrics.LOSS_METRICS] == [
        "losses/policy",
        "losses/value",
        "losses/entropy",
        "losses/approx_kl",
        "losses/clipfrac",
        "losses/explained_variance",
    ]
    assert metrics.train_win_rate_tag("hex", "self") == "games/hex/win_rate_vs_train_self"
    assert metrics.board_tag("othello_size6") == "boards/othello_size6"
    assert metrics.CHARTS_SPS == "charts/sps"
    assert metrics.CHARTS_COLLECT_SPS == "charts/collect_sps"
    assert metrics.CHARTS_LEARNING_RATE == "charts/learning_rate"
    assert metrics.CHARTS_MOVES == "charts/moves"
    assert metrics.CHARTS_MOVES_PER_S == "charts/moves_per_s"
    assert metrics.CHARTS_TRUNK_FROZEN == "charts/trunk_frozen"
    assert metrics.transfer_tag("jumpstart") == "transfer/jumpstart"
    assert metrics.hparam_metric_tag("hex/win_rate") == "hparams/hex/win_rate"


def test_stats_helpers_map_ppo_stats_to_tags() -> None:
    stats = {"policy": 0.5, "value": 0.25, "entropy": 1.0, "approx_kl": 0.01, "clipfrac": 0.1}
    assert metrics.loss_scalars(stats) == {
        "losses/policy": 0.5,
        "losses/value": 0.25,
        "losses/entropy": 1.0,
        "losses/approx_kl": 0.01,
        "losses/clipfrac": 0.1,
    }
    assert metrics.game_learning_scalars("hex", stats) == {
        "games/hex/approx_kl": 0.01,
        "games/hex/clipfrac": 0.1,
        "games/hex/entropy": 1.0,
    }


@pytest.mark.parametrize(
    ("make_tag", "match"),
    [
        (lambda: metrics.game_tag("tic tac toe", "return"), "game"),
        (lambda: metrics.game_tag("hex", "retrun"), "retrun"),
        (lambda: metrics.win_rate_tag("hex", "a/b"), "opponent"),
        (lambda: metrics.win_rate_tag("hex", ""), "opponent"),
        (lambda: metrics.loss_tag("kl"), "kl"),
        (lambda: metrics.transfer_tag(""), "transfer"),
        (lambda: metrics.board_tag("hex/7"), "game"),
        (lambda: metrics.game_tag("hex", "boards"), "boards"),  # images are boards/<game>
    ],
)
def test_bad_tag_names_fail_loudly(make_tag: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_tag()  # type: ignore[operator]  # parametrized callables


def test_scalars_round_trip_exactly(tmp_path: Path) -> None:
    win = metrics.win_rate_tag("tic_tac_toe", "random")
    with RunLogger(tmp_path) as logger:
        for step in range(3):
            skipped = logger.scalars(
                step * 100,
                {
                    win: 0.25 * step,
                    metrics.loss_tag("policy"): torch.tensor(-1.5 + step),  # tensors are accepted
                    metrics.CHARTS_MOVES: 1024 * step,
                },
            )
            assert skipped == []
    scalars = read_scalars(tmp_path)
    assert set(scalars) == {win, "losses/policy", "charts/moves"}
    assert scalars[win] == [(0, 0.0), (100, 0.25), (200, 0.5)]
    assert scalars["losses/policy"] == [(0, -1.5), (100, -0.5), (200, 0.5)]
    assert scalars["charts/moves"] == [(0, 0.0), (100, 1024.0), (200, 2048.0)]


def test_non_finite_scalars_are_skipped_and_reported(tmp_path: Path) -> None:
    with RunLogger(tmp_path) as logger:
        values: dict[str, metrics.Scalar] = {
            "losses/value": math.nan,
            "losses/policy": 0.5,
            "charts/sps": torch.tensor(math.inf),
        }
        assert logger.scalars(7, values) == ["losses/value", "charts/sps"]
        logger.scalars(8, {"losses/value": math.nan})
        assert logger.nonfinite == {"losses/value": 2, "charts/sps": 1}
    assert read_scalars(tmp_path) == {"losses/policy": [(7, 0.5)]}


def test_config_is_logged_once_as_toml(tmp_path: Path) -> None:
    """No Python reprs: what TensorBoard shows is the TOML of the run's config.toml."""

    @dataclasses.dataclass(frozen=True)
    class Ppo:
        learning_rate: float = 0.00025
        adv_norm: str = "game"
        target_kl: float | None = None  # TOML has no null: left out

    config = {
        "seed": 1,
        "ppo": Ppo(),
        "suite": {"games": [{"id": "hex", "options": {"size": 7}}], "opponents": ("random",)},
    }
    with RunLogger(tmp_path) as logger:
        text = logger.config_table(config)
    assert tomllib.loads(text) == {
        "seed": 1,
        "ppo": {"learning_rate": 0.00025, "adv_norm": "game"},
        "suite": {"games": [{"id": "hex", "options": {"size": 7}}], "opponents": ["random"]},
    }
    assert text.startswith('seed = 1\n\n[ppo]\nlearning_rate = 0.00025\nadv_norm = "game"\n')
    assert not any(python in text for python in ("'", "None", "Ppo(", "("))
    events = load_events(tmp_path)
    # torch's add_text stores the text under "<tag>/text_summary".
    assert events.Tags()["tensors"] == ["config/text_summary"]
    (event,) = events.Tensors("config/text_summary")
    assert event.step == 0
    shown = tensor_util.make_ndarray(event.tensor_proto).item().decode()
    assert shown == f"```toml\n{text}```"  # a fenced block: TensorBoard's markdown keeps it


def test_board_images_round_trip_as_one_grid(tmp_path: Path) -> None:
    boards = [torch.full((3, 4, 5), 40 * i, dtype=torch.uint8) for i in range(3)]
    boards[1][0, 0, 0] = 255  # one red-channel pixel, to check orientation
    grid = image_grid(boards, ncols=2)
    assert grid.shape == (3, 2 + 2 * (4 + 2), 2 + 2 * (5 + 2))
    assert torch.equal(grid[:, 2:6, 2:7], boards[0])
    assert torch.equal(grid[:, 2:6, 9:14], boards[1])
    assert torch.equal(grid[:, 8:12, 2:7], boards[2])
    assert int(grid[0, 0, 0]) == 128 and int(grid[0, 9, 12]) == 128  # separator, empty cell
    tag = metrics.board_tag("hex")
    with RunLogger(tmp_path) as logger:
        logger.board_images(tag, boards, step=5, ncols=2)
    (event,) = load_events(tmp_path).Images(tag)
    assert (event.step, event.width, event.height) == (5, 16, 14)
    decoded = np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("RGB"))
    assert np.array_equal(decoded, grid.permute(1, 2, 0).numpy())


def test_board_images_reject_wrong_images(tmp_path: Path) -> None:
    with RunLogger(tmp_path) as logger:
        with pytest.raises(ValueError, match="uint8"):
            logger.board_images("games/hex/boards", [torch.zeros(3, 4, 4)], step=0)
        with pytest.raises(ValueError, match="one shape"):
            two_sizes = [torch.zeros(3, 4, 4, dtype=torch.uint8)] * 2
            two_sizes[1] = torch.zeros(3, 5, 5, dtype=torch.uint8)
            logger.board_images("games/hex/boards", two_sizes, step=0)


def test_hparams_go_into_the_run_directory(tmp_path: Path) -> None:
    hparams = {"ppo": {"learning_rate": 0.5, "anneal_lr": True}, "suite": "classic", "seed": None}
    final: dict[str, metrics.Scalar] = {
        "win_rate": 0.75,
        "hex/return": torch.tensor(-0.5),
        "broken": math.nan,
    }
    with RunLogger(tmp_path) as logger:
        skipped = logger.hparams(hparams, final, step=9)
    assert skipped == ["hparams/broken"]
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == []  # no timestamped sub-run
    assert read_scalars(tmp_path) == {
        "hparams/win_rate": [(9, 0.75)],
        "hparams/hex/return": [(9, -0.5)],
    }
    content = load_events(tmp_path).PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    values = start.session_start_info.hparams
    assert values["ppo.learning_rate"].number_value == 0.5
    assert values["ppo.anneal_lr"].number_value == 1.0  # torch's writer stores bools as 0/1
    assert values["suite"].string_value == "classic"
    assert values["seed"].string_value == "None"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    metric_tags = [m.name.tag for m in experiment.experiment.metric_infos]
    assert metric_tags == ["hparams/win_rate", "hparams/hex/return"]


def test_hparams_default_to_the_last_step_logged(tmp_path: Path) -> None:
    """The final metrics sit where training ended, not as a point at step 0."""
    with RunLogger(tmp_path) as logger:
        logger.scalars(100, {metrics.CHARTS_SPS: 1.0})
        logger.scalars(300, {metrics.CHARTS_SPS: 1.0})
        logger.hparams({"seed": 1}, {"score": 0.5})
    assert read_scalars(tmp_path)["hparams/score"] == [(300, 0.5)]


def test_run_layout_puts_every_game_on_one_chart_per_opponent(tmp_path: Path) -> None:
    layout = metrics.run_layout(["random", "greedy"])
    charts = {title: spec for category in layout.values() for title, spec in category.items()}
    assert list(layout["scores, every game"]) == ["score vs random", "score vs greedy"]
    assert {"win rate vs random", "episode length (training)", "return (training)"} <= set(charts)
    (pattern,) = charts["score vs random"][1]
    matched = {
        tag
        for tag in [
            metrics.score_tag("tic_tac_toe", "random"),
            metrics.score_tag("othello_size6", "random"),
            metrics.score_tag("hex_size7", "greedy"),
            metrics.win_rate_tag("hex_size7", "random"),
            metrics.score_tag("hex_size7", "random_2"),
        ]
        if re.match(pattern, tag)
    }
    assert matched == {"games/tic_tac_toe/score_vs_random", "games/othello_size6/score_vs_random"}
    with RunLogger(tmp_path) as logger:
        logger.layout(layout)
    (event,) = load_events(tmp_path).Tensors(custom_scalar_metadata.CONFIG_SUMMARY_TAG)
    written = layout_pb2.Layout.FromString(tensor_util.make_ndarray(event.tensor_proto).item())
    assert [c.title for c in written.category] == list(layout)
    first = written.category[0].chart[0]
    assert (first.title, list(first.multiline.tag)) == ("score vs random", [pattern])


def test_transfer_layout_names_the_target_only() -> None:
    ((_, charts),) = metrics.transfer_layout("othello_size8", "random").items()
    patterns = [spec[1][0] for spec in charts.values()]
    assert re.match(patterns[0], "games/othello_size8/score_vs_random")
    assert not re.match(patterns[0], "games/othello_size6/score_vs_random")
    assert not re.match(patterns[0], "games/othello_size8/score_vs_randomx")


def test_tensorboard_command_runs_without_an_active_venv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's quick start leaves the venv inactive: ``tensorboard`` is not on the PATH
    then, and the printed command names the script beside the running Python."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no tensorboard here
    bindir = tmp_path / "venv bin"
    bindir.mkdir()
    (bindir / "tensorboard").write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "executable", str(bindir / "python"))
    assert metrics.tensorboard_command("runs") == f"'{bindir}/tensorboard' --logdir runs"
    (bindir / "tensorboard").unlink()  # no script either: the module
    assert metrics.tensorboard_command(Path("my runs")) == (
        f"'{bindir}/python' -m tensorboard.main --logdir 'my runs'"
    )
    on_path = tmp_path / "tensorboard"
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    assert metrics.tensorboard_command("runs") == "tensorboard --logdir runs"


def test_docstring_names_the_constants() -> None:
    """The tag list in the module docstring says what the constants say, name for name
    (tests/test_run_output.py checks it against what a run writes)."""
    block = metrics.__doc__.split("::")[1].splitlines()
    lines = [line.split()[0] for line in block if line.startswith("    ")]
    split = [line.rsplit("/", 1) for line in lines if "|" in line]
    declared = {prefix: names.split("|") for prefix, names in split}
    assert declared["losses"] == list(metrics.LOSS_METRICS)
    assert declared["games/<game>"][-3:] == list(metrics.GAME_LEARNING_METRICS)
    assert declared["transfer"] == list(metrics.TRANSFER_METRICS)
    charts = [metrics.CHARTS_SPS, metrics.CHARTS_COLLECT_SPS, metrics.CHARTS_LEARNING_RATE,
              metrics.CHARTS_MOVES, metrics.CHARTS_MOVES_PER_S]  # fmt: skip
    assert [f"charts/{name}" for name in declared["charts"][:5]] == charts
    assert "charts/trunk_frozen" in lines and metrics.CHARTS_TRUNK_FROZEN == "charts/trunk_frozen"
    assert metrics.CONFIG in lines


def _write_then_resume(log_dir: Path, k: int, purge: bool) -> dict[str, list[tuple[int, float]]]:
    """Steps 0..2k from a first run, then a resumed run from step k onwards."""
    tags = (metrics.loss_tag("policy"), metrics.win_rate_tag("hex", "random"))
    with RunLogger(log_dir) as logger:
        for step in range(2 * k + 1):
            logger.scalars(step, dict.fromkeys(tags, float(step)))
    started = int(time.time())
    while int(time.time()) == started:  # event files sort by their creation second
        time.sleep(0.05)
    with RunLogger(log_dir, purge_step=k if purge else None) as logger:
        for step in range(k, 3 * k):
            logger.scalars(step, dict.fromkeys(tags, 100.0 + step))
    assert len(list(log_dir.iterdir())) == 2
    return read_scalars(log_dir)


def test_purge_step_resume_leaves_no_duplicate_steps(tmp_path: Path) -> None:
    k = 3
    scalars = _write_then_resume(tmp_path, k, purge=True)
    expected = [(s, float(s)) for s in range(k)] + [(s, 100.0 + s) for s in range(k, 3 * k)]
    assert set(scalars) == {"losses/policy", "games/hex/win_rate_vs_random"}
    for points in scalars.values():
        assert points == expected


def test_without_purge_step_a_resume_doubles_steps(tmp_path: Path) -> None:
    """The control: the purge test above would pass vacuously if readers deduplicated anyway."""
    points = _write_then_resume(tmp_path, 3, purge=False)["losses/policy"]
    steps = [step for step, _ in points]
    assert len(steps) > len(set(steps))
