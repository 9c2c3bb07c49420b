"""PettingZoo tasks in a suite: the shipped ``chess_go`` suite trains end to end (tiny), with
its own step budget per task, and its trunk transfers to a native game."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from tiny import TINY

from rltransfer.games import make
from rltransfer.learn.training import build_session, resume, train
from rltransfer.runs.checkpoint import load_weights
from rltransfer.runs.metrics import read_scalars
from rltransfer.specs.config import (
    ConfigError,
    TrainConfig,
    TransferSettings,
    load_suite,
    make_train_config,
)
from rltransfer.transfer import TransferError, transfer_net
from rltransfer.transfer.experiment import run_transfer

# chess and Go get 2 boards and 3 learner steps each, the native games 4 boards and 4 steps
# (ppo.num_steps in TINY); short time limits keep evaluation games short
OUTSIDE_STEPS, OUTSIDE_ENVS, NATIVE_ENVS = 3, 2, 4
PER_ITERATION = 2 * OUTSIDE_ENVS * OUTSIDE_STEPS + 2 * NATIVE_ENVS * 4
FAST = [*TINY, "train.eval_games=2", "train.final_eval_games=2"]


def chess_go_config(iterations: int, name: str = "chess_go") -> TrainConfig:
    suite = load_suite("chess_go")
    games = []
    for g in suite.games:
        if g.id.startswith("pettingzoo:"):
            options = {**g.options, "max_moves": 10}
            g = dataclasses.replace(
                g, options=options, num_envs=OUTSIDE_ENVS, num_steps=OUTSIDE_STEPS
            )
        else:
            g = dataclasses.replace(g, num_envs=NATIVE_ENVS)
        games.append(g)
    suite = dataclasses.replace(suite, games=tuple(games))
    return make_train_config(
        suite, "ppo_small", FAST, name=name, total_steps=iterations * PER_ITERATION, device="cpu"
    )


@pytest.fixture(scope="module")
def chess_go_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("chess_go")
    return train(chess_go_config(2), tmp / "runs", quiet=True)


def test_chess_go_suite_trains_end_to_end(chess_go_run: Path) -> None:
    meta = json.loads((chess_go_run / "checkpoints/latest/meta.json").read_text())
    assert meta["global_step"] == 2 * PER_ITERATION
    assert meta["tasks"]["chess"]["head"] == "flat" and meta["tasks"]["go9"]["head"] == "conv"
    assert [g["num_steps"] for g in meta["suite"]["games"]] == [3, 3, 0, 0]
    evaluation = json.loads((chess_go_run / "eval.json").read_text())["games"]
    assert set(evaluation) == {"chess", "go9", "othello_size6", "hex_size7"}
    assert evaluation["chess"]["greedy"]["opponent"] == "greedy(random)"  # no lookahead
    assert evaluation["hex_size7"]["greedy"]["opponent"] == "greedy"
    scalars = read_scalars(chess_go_run)
    for tag in ["games/go9/score_vs_random", "games/chess/approx_kl", "losses/policy"]:
        assert tag in scalars and all(v == v for _, v in scalars[tag]), tag
    assert [s for s, _ in scalars["charts/sps"]] == [PER_ITERATION, 2 * PER_ITERATION]


def test_rollouts_have_the_per_task_length(tmp_path: Path) -> None:
    session = build_session(chess_go_config(1), tmp_path)
    lengths = {k: c.num_steps for k, c in session.collectors.items()}
    assert lengths == {"chess": 3, "go9": 3, "othello_size6": 4, "hex_size7": 4}
    assert session.steps_per_iteration == PER_ITERATION
    rollout = session.collectors["chess"].collect(session.net, None)
    assert rollout.obs.shape == (3, OUTSIDE_ENVS, 111, 8, 8) and rollout.masks.shape[-1] == 4672
    # the learner only ever played legal moves
    assert bool(rollout.masks.gather(2, rollout.actions[..., None]).all())


def test_resume_restarts_the_outside_games(tmp_path: Path) -> None:
    """A checkpoint cannot hold the envs' positions; resuming restarts those games."""
    cfg = chess_go_config(1, name="short")
    path = train(cfg, tmp_path, quiet=True)
    config = path / "config.toml"
    steps = f"total_steps = {PER_ITERATION}"
    config.write_text(config.read_text().replace(steps, f"total_steps = {2 * PER_ITERATION}"))
    resume(path, quiet=True)
    meta = json.loads((path / "checkpoints/latest/meta.json").read_text())
    assert meta["iteration"] == 2 and meta["global_step"] == 2 * PER_ITERATION


def test_transfer_from_chess_go_to_connect_four(chess_go_run: Path, tmp_path: Path) -> None:
    settings = TransferSettings(mode="finetune", seeds=1, baseline="none")
    root = run_transfer(
        chess_go_run,
        "connect_four",
        settings,
        steps=2 * 4 * 4,
        num_envs=4,
        name="to_c4",
        run_dir=tmp_path,
        overrides=FAST,
        device="cpu",
        quiet=True,
    )
    before = load_weights(chess_go_run / "checkpoints/latest")
    after = load_weights(root / "transfer_seed0" / "checkpoints/latest")
    trunk = {k for k in before if k.startswith("trunk.")}
    assert trunk and trunk == {k for k in after if k.startswith("trunk.")}
    assert "policy_heads.connect_four.hidden.weight" in after  # a fresh conv head
    report = json.loads((root / "transfer.json").read_text())
    assert report["target"] == "connect_four"


def test_keep_heads_refuses_a_flat_head(chess_go_run: Path) -> None:
    with pytest.raises(TransferError, match=r"flat policy head.*leave out --keep-heads"):
        transfer_net(chess_go_run, "chess", make("pettingzoo:chess_v6"), keep_heads=True)
    net = transfer_net(chess_go_run, "go9", make("pettingzoo:go_v5", board_size=9), keep_heads=True)
    assert net.tasks["go9"].head == "conv"  # Go's cells + pass: the conv head carries over


def test_suite_rejects_a_bad_num_steps(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[games]]\nid = "tic_tac_toe"\nnum_steps = -1\n')
    with pytest.raises(ConfigError, match="num_steps must be an integer >= 0"):
        load_suite(bad)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[[games]]\nid = "pettingzoo:go_v5"\noptions = { size = 9 }\n')
    with pytest.raises(ConfigError, match=r"wrong.toml.*unknown option 'size'; valid options"):
        load_suite(wrong)


def test_suite_naming_an_import_path_runs_nothing(tmp_path: Path) -> None:
    """A suite file is data: its game id names an env of the table, never a callable."""
    marker = tmp_path / "pwned"
    hostile = tmp_path / "hostile.toml"
    hostile.write_text(
        '[[games]]\nid = "pettingzoo:subprocess.check_call"\nname = "hostile"\n'
        f"options = {{ args = 'touch {marker}', shell = true }}\n"
    )
    with pytest.raises(ConfigError, match=r"hostile.toml.*unknown PettingZoo env 'subprocess"):
        load_suite(hostile)
    assert not marker.exists()
