"""TensorBoard tags and RunLogger: what is written is read back exactly, resumes do not double."""

from __future__ import annotations

import dataclasses
import io
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util

from rltransfer import metrics
from rltransfer.runs.metrics import RunLogger, image_grid, load_events, read_scalars


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
    assert metrics.LOSSES_EXPLAINED_VARIANCE == "losses/explained_variance"
    assert metrics.CHARTS_SPS == "charts/sps"
    assert metrics.CHARTS_LEARNING_RATE == "charts/learning_rate"
    assert metrics.CHARTS_MOVES == "charts/moves"
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
                    metrics.LOSSES_POLICY: torch.tensor(-1.5 + step),  # tensors are accepted
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


def test_config_table_is_logged_once_as_markdown(tmp_path: Path) -> None:
    @dataclasses.dataclass(frozen=True)
    class Ppo:
        learning_rate: float = 0.00025
        adv_norm: str = "game"

    config = {"seed": 1, "ppo": Ppo(), "suite": {"games": ["hex", "othello"], "note": "a|b"}}
    with RunLogger(tmp_path) as logger:
        table = logger.config_table(config)
    expected = "\n".join(
        [
            "| key | value |",
            "| --- | --- |",
            "| seed | 1 |",
            "| ppo.learning_rate | 0.00025 |",
            "| ppo.adv_norm | 'game' |",
            "| suite.games | ['hex', 'othello'] |",
            "| suite.note | 'a\\|b' |",
        ]
    )
    assert table == expected
    events = load_events(tmp_path)
    # torch's add_text stores the text under "<tag>/text_summary".
    assert events.Tags()["tensors"] == ["config/text_summary"]
    (event,) = events.Tensors("config/text_summary")
    assert event.step == 0
    assert tensor_util.make_ndarray(event.tensor_proto).item().decode() == expected


def test_board_images_round_trip_as_one_grid(tmp_path: Path) -> None:
    boards = [torch.full((3, 4, 5), 40 * i, dtype=torch.uint8) for i in range(3)]
    boards[1][0, 0, 0] = 255  # one red-channel pixel, to check orientation
    grid = image_grid(boards, ncols=2)
    assert grid.shape == (3, 2 + 2 * (4 + 2), 2 + 2 * (5 + 2))
    assert torch.equal(grid[:, 2:6, 2:7], boards[0])
    assert torch.equal(grid[:, 2:6, 9:14], boards[1])
    assert torch.equal(grid[:, 8:12, 2:7], boards[2])
    assert int(grid[0, 0, 0]) == 128 and int(grid[0, 9, 12]) == 128  # separator, empty cell
    tag = metrics.game_tag("hex", "boards")
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


def _write_then_resume(log_dir: Path, k: int, purge: bool) -> dict[str, list[tuple[int, float]]]:
    """Steps 0..2k from a first run, then a resumed run from step k onwards."""
    tags = (metrics.LOSSES_POLICY, metrics.win_rate_tag("hex", "random"))
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
