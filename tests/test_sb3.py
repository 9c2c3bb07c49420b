"""The Stable-Baselines3 bridge, driven through SB3's and sb3-contrib's own code paths.

SB3's ``env_checker`` checks gymnasium envs, not ``VecEnv``s, so the VecEnv is checked by
what SB3 does with it (``learn`` of ``PPO`` and ``MaskablePPO``, ``get_action_masks``,
``VecMonitor``) and against an independent replay: every step is recomputed on a plain game
state with the same deterministic opponent, so rewards from the wrong seat, a missing or
wrong ``terminal_observation``, or a reset that is not a fresh game fail.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecMonitor
from tiny import tiny_config

from rltransfer.cli import main
from rltransfer.games import Game, State, make
from rltransfer.interop.sb3 import BoardGameVecEnv, PretrainedTrunk, SB3Player
from rltransfer.learn.training import train
from rltransfer.play.evaluate import play_match
from rltransfer.play.players import PolicyPlayer, make_player
from rltransfer.runs.checkpoint import CheckpointError, checkpoint_dir, load_weights
from rltransfer.runs.metrics import CHARTS_SPS, loss_tag, read_scalars, score_tag, win_rate_tag

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Using rltransfer with Stable-Baselines3 / PettingZoo / gymnasium"
SMALL_PPO: dict[str, Any] = {"n_steps": 16, "batch_size": 64, "n_epochs": 1, "seed": 0}


def lowest_legal(game: Game, state: State, generator: torch.Generator) -> torch.Tensor:
    """A deterministic opponent: the lowest-numbered legal action on every board."""
    return game.legal_mask(state).to(torch.int8).argmax(dim=1)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-iteration rltransfer run of tic_tac_toe and othello_size6 (a few seconds)."""
    tmp = tmp_path_factory.mktemp("tiny")
    return train(tiny_config(tmp, iterations=1, name="no_c4"), tmp / "runs", quiet=True)


# ------------------------------------------------------------------- the VecEnv
@pytest.mark.parametrize("game_id", ["tic_tac_toe", "connect_four"])
@pytest.mark.parametrize("algo", [MaskablePPO, PPO])
def test_sb3_learns_through_the_vecenv(game_id: str, algo: type[PPO] | type[MaskablePPO]) -> None:
    """SB3's rollout, buffer and update code accept the VecEnv (wrapped in VecMonitor)."""
    env = VecMonitor(BoardGameVecEnv(game_id, 8))
    model = algo("MlpPolicy", env, **SMALL_PPO).learn(256)
    assert model.num_timesteps == 256
    assert len(model.ep_info_buffer) > 0  # VecMonitor saw finished games


def test_get_action_masks_returns_the_games_legal_masks() -> None:
    env = BoardGameVecEnv("connect_four", 6, opponent="greedy")
    env.seed(1)
    env.reset()
    for _ in range(5):
        for wrapped in (env, VecMonitor(env)):
            assert is_masking_supported(wrapped)
            masks = get_action_masks(wrapped)
            expected = env.game.legal_mask(env.boards.game_state).numpy()
            assert masks.dtype == np.bool_ and masks.shape == (6, 42)
            np.testing.assert_array_equal(masks, expected)
        env.step(np.array([np.flatnonzero(m)[0] for m in masks]))


@pytest.mark.parametrize("game_id", ["tic_tac_toe", "connect_four"])
def test_steps_match_an_independent_replay(game_id: str) -> None:
    """Rewards from the agent's seat, ``terminal_observation`` exactly on finished boards
    and equal to the final position, and a fresh game (after the opponent's opening move
    where the agent now has seat 1) in ``obs`` of a finished board."""
    n = 8
    env = BoardGameVecEnv(game_id, n, opponent=lowest_legal)
    game = make(game_id)
    env.seed(0)
    obs = env.reset()
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(60):
        before, seat = env.boards.game_state, torch.as_tensor(env.get_attr("agent_seat"))
        np.testing.assert_array_equal(obs, game.observe(before, player=seat).numpy())
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in env.action_masks()])
        obs, rewards, dones, infos = env.step(actions)
        after = game.step(before, torch.as_tensor(actions))  # the agent's move, replayed
        reward = after.rewards.gather(1, seat[:, None])[:, 0]
        opp_turn = ~after.terminated
        replied = game.step(after, lowest_legal(game, after, torch.Generator()))
        final = replied.where(opp_turn, after)
        reward += torch.where(opp_turn, replied.rewards.gather(1, seat[:, None])[:, 0], 0.0)
        np.testing.assert_array_equal(dones, final.terminated.numpy())
        np.testing.assert_array_equal(rewards, reward.numpy())
        assert rewards.dtype == np.float32 and dones.dtype == np.bool_
        final_obs = game.observe(final, player=seat).numpy()
        new_seat = env.get_attr("agent_seat")
        for i in range(n):
            assert infos[i]["TimeLimit.truncated"] is False
            assert infos[i]["agent_seat"] == int(seat[i])
            assert ("terminal_observation" in infos[i]) == bool(dones[i])
            if dones[i]:
                np.testing.assert_array_equal(infos[i]["terminal_observation"], final_obs[i])
                fresh = game.init(1)
                if new_seat[i] == 1:
                    fresh = game.step(fresh, lowest_legal(game, fresh, torch.Generator()))
                np.testing.assert_array_equal(obs[i], game.observe(fresh)[0].numpy())
        finished += int(dones.sum())
    assert finished > 20


def test_scripted_games_reward_the_agents_seat() -> None:
    """Tic-tac-toe vs the lowest-legal opponent: seat 0 wins down column 0 (+1 on the
    agent's winning move); seat 1 loses along row 0 (-1 on the opponent's reply)."""
    env = BoardGameVecEnv("tic_tac_toe", 1, opponent=lowest_legal, agent_seat=0)
    env.reset()
    steps = [env.step(np.array([a])) for a in (0, 3, 6)]  # opponent plays 1, 2
    assert [float(r[0]) for _, r, _, _ in steps] == [0.0, 0.0, 1.0]
    assert [bool(d[0]) for _, _, d, _ in steps] == [False, False, True]
    terminal = steps[-1][3][0]["terminal_observation"]
    np.testing.assert_array_equal(terminal[0], [[1, 0, 0], [1, 0, 0], [1, 0, 0]])  # own
    np.testing.assert_array_equal(terminal[1], [[0, 1, 1], [0, 0, 0], [0, 0, 0]])  # opponent
    env = BoardGameVecEnv("tic_tac_toe", 1, opponent=lowest_legal, agent_seat=1)
    obs = env.reset()
    np.testing.assert_array_equal(obs[0, 1], [[1, 0, 0], [0, 0, 0], [0, 0, 0]])
    steps = [env.step(np.array([a])) for a in (4, 8)]  # opponent plays 0, 1, 2
    assert [(float(r[0]), bool(d[0])) for _, r, d, _ in steps] == [(0.0, False), (-1.0, True)]


def test_seed_makes_reset_and_steps_reproducible() -> None:
    def play(seed: int) -> list[np.ndarray]:
        env = BoardGameVecEnv("connect_four", 4, opponent="random")
        assert list(env.seed(seed)) == [seed, seed + 1, seed + 2, seed + 3]
        out = [env.reset()]
        for _ in range(10):
            out.append(env.step(env.action_masks().argmax(axis=1))[0])
        return out

    a, b, c = play(3), play(3), play(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_per_env_access() -> None:
    env = BoardGameVecEnv("tic_tac_toe", 3, agent_seat=1, render_mode="rgb_array")
    env.reset()
    assert env.get_attr("render_mode") == ["rgb_array"] * 3
    assert env.get_attr("agent_seat", indices=[0, 2]) == [1, 1]
    masks = env.env_method("action_masks", indices=1)
    assert len(masks) == 1 and masks[0].shape == (9,)
    assert env.env_is_wrapped(VecMonitor) == [False] * 3
    assert [f.shape for f in env.get_images()] == [(48, 48, 3)] * 3
    assert env.render().shape[2] == 3  # SB3 tiles the frames
    env.set_attr("render_mode", None)
    assert env.get_attr("render_mode", indices=0) == [None]
    with pytest.raises(ValueError, match="share one env"):
        env.set_attr("render_mode", "ansi", indices=[0])
    with pytest.raises(AttributeError):
        env.get_attr("no_such_attribute")
    with pytest.raises(ValueError, match="expected 3 actions"):
        env.step(np.zeros(2, dtype=np.int64))


def test_a_run_path_is_an_opponent(tiny_run: Path) -> None:
    env = BoardGameVecEnv("tic_tac_toe", 4, opponent=str(tiny_run))
    opponent = env.boards._match.opponent
    assert isinstance(getattr(opponent, "__self__", None), PolicyPlayer)
    env.reset()
    env.step(env.action_masks().argmax(axis=1))
    with pytest.raises(ValueError, match=r"cannot play connect_four: .* has no policy for"):
        BoardGameVecEnv("connect_four", 2, opponent=tiny_run)
    with pytest.raises(ValueError, match=r"not a player .* and no run folder at that path"):
        BoardGameVecEnv("tic_tac_toe", 2, opponent="no/such/run")


# ----------------------------------------------------------------- the extractor
def _trunk_kwargs(run: Path, game: str, freeze: bool) -> dict[str, Any]:
    return {
        "features_extractor_class": PretrainedTrunk,
        "features_extractor_kwargs": {"run": str(run), "game": game, "freeze": freeze},
    }


def test_pretrained_trunk_loads_the_run_and_frozen_weights_stay(tiny_run: Path) -> None:
    """Built by SB3 itself, so its orthogonal re-initialisation (``ortho_init``, on by
    default) has run: the run's weights must survive it, then ``learn``."""
    env = BoardGameVecEnv("tic_tac_toe", 8)
    kwargs = _trunk_kwargs(tiny_run, "tic_tac_toe", True)
    model = MaskablePPO("MlpPolicy", env, policy_kwargs=kwargs, **SMALL_PPO)
    ext = model.policy.features_extractor
    assert isinstance(ext, PretrainedTrunk) and ext.stem_task == "tic_tac_toe"
    assert ext.features_dim == 8 + 8 * 3 * 3
    weights = load_weights(checkpoint_dir(tiny_run))
    for prefix, module in (("stems.tic_tac_toe.", ext.stem), ("trunk.", ext.trunk)):
        for k, v in module.state_dict().items():
            torch.testing.assert_close(v, weights[prefix + k], rtol=0, atol=0)
    loaded = {**ext.stem.state_dict(prefix="stem."), **ext.trunk.state_dict(prefix="trunk.")}
    frozen = {k: v.clone() for k, v in loaded.items()}
    head = model.policy.action_net.weight.clone()
    cells = ext.cells.weight.clone()
    model.learn(256)
    after = {**ext.stem.state_dict(prefix="stem."), **ext.trunk.state_dict(prefix="trunk.")}
    assert all(torch.equal(frozen[k], after[k]) for k in frozen)
    assert not torch.equal(head, model.policy.action_net.weight)
    assert not torch.equal(cells, ext.cells.weight)


def test_pretrained_trunk_without_the_game_gets_a_new_trainable_stem(tiny_run: Path) -> None:
    """Connect Four is not in the run: trunk from the run (frozen), stem new (trained).
    ``CnnPolicy`` with default ``normalize_images`` works: float planes are not images."""
    env = BoardGameVecEnv("connect_four", 8)
    kwargs = _trunk_kwargs(tiny_run, "connect_four", True)
    model = PPO("CnnPolicy", env, policy_kwargs=kwargs, **SMALL_PPO)
    ext = model.policy.features_extractor
    assert isinstance(ext, PretrainedTrunk) and ext.stem_task is None
    trunk, stem = ext.trunk.state_dict(), ext.stem.conv.weight.clone()
    obs = torch.as_tensor(env.reset())
    torch.testing.assert_close(model.policy.extract_features(obs), ext(obs))  # no /255
    model.learn(128)
    assert all(torch.equal(v, ext.trunk.state_dict()[k]) for k, v in trunk.items())
    assert not torch.equal(stem, ext.stem.conv.weight)


def test_pretrained_trunk_errors(tiny_run: Path, tmp_path: Path) -> None:
    space = BoardGameVecEnv("tic_tac_toe", 1).observation_space
    with pytest.raises(CheckpointError, match="no checkpoint"):
        PretrainedTrunk(space, run=tmp_path / "missing", game="tic_tac_toe")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "meta.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"meta\.json"):
        PretrainedTrunk(space, run=corrupt, game="tic_tac_toe")
    othello = BoardGameVecEnv("othello", 1, size=6).observation_space
    with pytest.raises(CheckpointError, match="takes 3 planes, the observation has 2"):
        PretrainedTrunk(space, run=tiny_run, game="othello")
    assert PretrainedTrunk(othello, run=tiny_run, game="othello").stem_task == "othello_size6"


# -------------------------------------------------------------------- the player
def test_sb3_player_masks_illegal_moves_and_is_seeded() -> None:
    """An untrained plain-PPO policy puts mass on illegal moves; SB3Player never plays
    them (the game raises on any), and a seeded match repeats exactly."""
    model = PPO("MlpPolicy", BoardGameVecEnv("connect_four", 2), seed=0)
    game = make("connect_four", illegal_action="raise")

    def match(seed: int) -> dict[str, Any]:
        gen = torch.Generator().manual_seed(seed)
        return play_match(game, SB3Player(model), make_player("random"), 40, gen).to_dict()

    assert match(1) == match(1)
    assert play_match(game, SB3Player(model, sample=False), make_player("greedy"), 10).games == 10


# ------------------------------------------------------------ the baseline CLI
def test_cli_baseline_sb3_writes_eval_json_and_our_tags(tmp_path: Path) -> None:
    args = ["baseline", "sb3", "--game", "tic_tac_toe", "--steps", "2048", "--quiet"]
    args += ["--run-dir", str(tmp_path), "--name", "b", "--eval-games", "20"]
    assert main([*args, "--final-eval-games", "40"]) == 0
    run = tmp_path / "b"
    data = json.loads((run / "eval.json").read_text())
    assert data["global_step"] == 2048
    assert set(data["games"]["tic_tac_toe"]) == {"random", "greedy"}
    assert data["games"]["tic_tac_toe"]["random"]["games"] == 40
    assert [h["global_step"] for h in data["history"]] == [0, 2048]
    scalars = read_scalars(run)
    for opp in ("random", "greedy"):
        assert [s for s, _ in scalars[score_tag("tic_tac_toe", opp)]] == [0, 2048]
        assert win_rate_tag("tic_tac_toe", opp) in scalars
    assert CHARTS_SPS in scalars and loss_tag("policy") in scalars
    # trained against rltransfer's self-play mix by default (the model itself, random, greedy)
    assert json.loads((run / "baseline.json").read_text())["opponent"] == "mix"
    assert win_rate_tag("tic_tac_toe", "train_mix") in scalars
    assert MaskablePPO.load(run / "model.zip").num_timesteps == 2048
    assert main([*args, "--final-eval-games", "40"]) == 2  # the run exists: a clean error


# ------------------------------------------------------------------- the README
def readme_examples() -> list[str]:
    """The Python blocks of the README's SB3 / PettingZoo / gymnasium section."""
    text = README.read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_examples_run(tiny_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Python block of the section, in order in one namespace, in a folder that has
    a tiny ``runs/no_c4``; step counts and game counts are cut to tiny ones."""
    blocks = readme_examples()
    assert len(blocks) >= 4
    monkeypatch.chdir(tiny_run.parent.parent)
    tiny = {"total_timesteps": 128, "n_steps": 8, "num_games": 10, "num_envs": 16}
    namespace: dict[str, Any] = {}
    for block in blocks:
        for name, value in tiny.items():
            block = re.sub(rf"\b{name}=[\d_]+", f"{name}={value}", block)
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["model"].num_timesteps == 128
