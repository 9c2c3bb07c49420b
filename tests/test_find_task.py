"""One rule finds a run's task for a game (``rltransfer.runs.checkpoint.find_task``):
inference, opponents, the SB3 stem, export and transfer all follow it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny import TINY

from rltransfer.errors import UnknownTaskError
from rltransfer.games import make
from rltransfer.learn.training import train
from rltransfer.net.policy import TaskShape
from rltransfer.runs.checkpoint import AmbiguousTaskError, checkpoint_dir, find_task, load_weights
from rltransfer.specs.config import GameSpec, make_train_config
from rltransfer.transfer import transfer_net

SPECS = {
    s.name: s
    for s in (
        GameSpec("hex", {"size": 5}),
        GameSpec("hex", {"size": 7}),
        GameSpec("tic_tac_toe"),
    )
}
SHAPES = {name: TaskShape.of(spec.make()) for name, spec in SPECS.items()}


def test_a_task_name_or_a_unique_game_id_names_the_task() -> None:
    assert find_task(SPECS, SHAPES, "hex_size7", "run") == "hex_size7"
    assert find_task(SPECS, SHAPES, "tic_tac_toe", "run") == "tic_tac_toe"
    assert find_task(SPECS, SHAPES, make("tic_tac_toe"), "run") == "tic_tac_toe"


def test_a_built_game_picks_among_same_id_tasks_by_its_shape() -> None:
    assert find_task(SPECS, SHAPES, make("hex", size=5), "run") == "hex_size5"
    assert find_task(SPECS, SHAPES, make("hex", size=7), "run") == "hex_size7"


def test_ambiguity_and_absence_are_errors_that_list_the_tasks() -> None:
    with pytest.raises(AmbiguousTaskError, match="hex_size5, hex_size7; name the task"):
        find_task(SPECS, SHAPES, "hex", "run")
    with pytest.raises(AmbiguousTaskError):  # a size no task has: no silent first pick
        find_task(SPECS, SHAPES, make("hex", size=9), "run")
    with pytest.raises(UnknownTaskError, match="run has no policy for 'othello'; it plays: hex"):
        find_task(SPECS, SHAPES, "othello", "run")
    with pytest.raises(KeyError):  # a KeyError for Python callers, one clean line in str()
        find_task(SPECS, SHAPES, "othello", "run")
    assert str(UnknownTaskError("plain")) == "plain"


SUITE = """
name = "two_hexes"
[[games]]
id = "hex"
options = { size = 5 }
num_envs = 8
[[games]]
id = "hex"
options = { size = 7 }
num_envs = 8
"""


def test_keep_heads_refuses_to_pick_one_of_two_source_tasks_silently(tmp_path: Path) -> None:
    suite = tmp_path / "two.toml"
    suite.write_text(SUITE)
    cfg = make_train_config(
        suite=str(suite), agent="ppo_small", overrides=TINY, name="two", total_steps=64,
        device="cpu",
    )  # fmt: skip
    source = train(cfg, tmp_path / "runs", quiet=True)
    torch.manual_seed(0)
    # the size of one source task: its stem and heads, exactly
    net = transfer_net(source, "hex_size7", make("hex", size=7), keep_heads=True)
    src = load_weights(checkpoint_dir(source))
    for k, v in net.policy_heads["hex_size7"].state_dict().items():
        assert torch.equal(v, src[f"policy_heads.hex_size7.{k}"])
    with pytest.raises(AmbiguousTaskError, match="hex_size5, hex_size7"):
        transfer_net(source, "hex_size9", make("hex", size=9), keep_heads=True)
