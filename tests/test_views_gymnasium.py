"""The gymnasium views: check_env for every game, then exact behaviour.

The single env is checked against an independent replay of the same moves on a plain game
state (so a reward from the wrong seat or the wrong player's planes fails); the vector env
is checked against N single envs fed the same actions ("batched == per-board"), which also
pins its SAME_STEP autoreset to "a finished board is a fresh single-env reset".
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import rltransfer.views
from rltransfer.games import Game, IllegalActionError, State, available_games, game_class, make
from rltransfer.views import (
    BoardGameEnv,
    BoardGameVectorEnv,
    gymnasium_id,
    register_gymnasium_envs,
)

T = TypeVar("T")
NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, NO_CUDA])]


def lowest_legal(game: Game, state: State, generator: torch.Generator) -> torch.Tensor:
    """A deterministic opponent: the lowest-numbered legal action on every board."""
    return game.legal_mask(state).to(torch.int8).argmax(dim=1)


def _random_legal(mask: np.ndarray, rng: np.random.Generator) -> int:
    return int(rng.choice(np.flatnonzero(mask)))


def _no_warnings(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, failing on any warning it gives."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    assert [str(w.message) for w in caught] == []
    return result


# ------------------------------------------------------------------ single env
@pytest.mark.parametrize("game_id", available_games())
def test_check_env_with_render_checks(game_id: str) -> None:
    """gymnasium's checker, render modes included (they need a spec: built by make)."""
    env = gym.make(gymnasium_id(game_id))
    _no_warnings(check_env, env.unwrapped, skip_render_check=False)


@pytest.mark.parametrize("seat", [0, 1])
@pytest.mark.parametrize("game_id", ["tic_tac_toe", "connect_four"])
def test_reward_and_observation_are_from_the_agents_seat(game_id: str, seat: Literal[0, 1]) -> None:
    """Random agent vs the lowest-legal opponent; replay the same moves on a plain game and
    compare every observation and the final reward (from ``seat``) with the game's own."""
    env = BoardGameEnv(game_id, agent_seat=seat, opponent=lowest_legal)
    game = make(game_id)
    rng = np.random.default_rng(seat)
    seen = set()
    for episode in range(12):
        obs, info = env.reset(seed=episode)
        assert info["agent_seat"] == seat
        replay = game.init(1)
        if seat == 1:
            replay = game.step(replay, lowest_legal(game, replay, torch.Generator()))
        terminated, reward = False, 0.0
        while not terminated:
            np.testing.assert_array_equal(obs, game.observe(replay)[0].numpy())
            np.testing.assert_array_equal(info["action_mask"], game.legal_mask(replay)[0])
            action = _random_legal(env.action_masks(), rng)
            obs, reward, terminated, truncated, info = env.step(action)
            assert not truncated
            replay = game.step(replay, torch.tensor([action]))
            if not bool(replay.terminated[0]):
                replay = game.step(replay, lowest_legal(game, replay, torch.Generator()))
            assert terminated == bool(replay.terminated[0])
            assert terminated or reward == 0.0
        assert bool(replay.terminated[0])
        assert reward == float(replay.rewards[0, seat])
        player = torch.tensor([seat])
        np.testing.assert_array_equal(obs, game.observe(replay, player=player)[0].numpy())
        seen.add(reward)
    assert {1.0, -1.0} <= seen  # both the agent's and the opponent's winning moves were seen


def test_random_seat_is_seeded_and_takes_both_seats() -> None:
    env = BoardGameEnv("tic_tac_toe")
    seats = []
    for seed in range(16):
        obs, info = env.reset(seed=seed)
        # Seat 1: the opponent already made its opening move.
        assert obs[1].sum() == info["agent_seat"] and obs[0].sum() == 0
        again, info_again = env.reset(seed=seed)
        np.testing.assert_array_equal(obs, again)
        assert info_again["agent_seat"] == info["agent_seat"]
        seats.append(info["agent_seat"])
    assert set(seats) == {0, 1}


def test_illegal_actions_follow_the_game_rule() -> None:
    # The agent plays an occupied cell: it loses.
    env = BoardGameEnv("tic_tac_toe", agent_seat=1, opponent=lowest_legal)
    env.reset(seed=0)
    _, reward, terminated, _, _ = env.step(0)  # the opponent opened on cell 0
    assert (reward, terminated) == (-1.0, True)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(1)

    # The opponent plays an occupied cell: the agent wins.
    def always_zero(game: Game, state: State, generator: torch.Generator) -> torch.Tensor:
        return torch.zeros(state.batch_size, dtype=torch.int64)

    env = BoardGameEnv("tic_tac_toe", agent_seat=0, opponent=always_zero)
    env.reset(seed=0)
    _, reward, terminated, _, _ = env.step(0)
    assert (reward, terminated) == (1.0, True)

    strict = BoardGameEnv(
        "tic_tac_toe", agent_seat=1, opponent=lowest_legal, illegal_action="raise"
    )
    strict.reset(seed=0)
    with pytest.raises(IllegalActionError, match="action 0 is illegal"):
        strict.step(0)


def test_step_before_reset_and_bad_arguments_are_errors() -> None:
    with pytest.raises(RuntimeError, match="reset"):
        BoardGameEnv("tic_tac_toe").step(0)
    with pytest.raises(ValueError, match="agent_seat"):
        BoardGameEnv("tic_tac_toe", agent_seat=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="render_mode"):
        BoardGameEnv("tic_tac_toe", render_mode="human")
    with pytest.raises(ValueError, match="unknown option"):
        BoardGameEnv("tic_tac_toe", size=5)


def test_render_modes_show_the_board() -> None:
    env = BoardGameEnv("connect_four", agent_seat=0, opponent=lowest_legal, render_mode="ansi")
    env.reset(seed=0)
    env.step(38)  # column 3; the opponent's lowest legal cell, 31, is on top of it
    assert env.render() == "\n".join(
        [".......", ".......", ".......", ".......", "...O...", "...X..."]
    )
    rgb = BoardGameEnv("connect_four", render_mode="rgb_array")
    rgb.reset(seed=0)
    frame = rgb.render()
    assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8
    assert frame.shape == (6 * 16, 7 * 16, 3)


def test_maskable_ppo_reads_the_action_mask() -> None:
    """sb3-contrib finds ``action_masks`` through a VecEnv and gets the game's legal mask."""
    pytest.importorskip("sb3_contrib")
    from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported
    from stable_baselines3.common.vec_env import DummyVecEnv

    vec = DummyVecEnv([lambda: BoardGameEnv("connect_four", agent_seat=1)])
    vec.seed(0)
    vec.reset()
    assert is_masking_supported(vec)
    inner = vec.envs[0].unwrapped
    assert isinstance(inner, BoardGameEnv)
    expected = inner.game.legal_mask(inner.game_state).numpy()
    np.testing.assert_array_equal(get_action_masks(vec), expected)


# ------------------------------------------------------------------ vector env
@pytest.mark.parametrize("device", DEVICES)
def test_vector_env_outputs_are_tensors_on_the_device(device: str) -> None:
    envs = BoardGameVectorEnv("connect_four", 6, device=device)
    n, a = 6, envs.game.num_actions
    obs, infos = envs.reset(seed=0)
    dev = torch.device(device)
    for _ in range(30):
        actions = envs.action_masks().float().multinomial(1)[:, 0]
        obs, reward, terminated, truncated, infos = envs.step(actions)
        assert obs.shape == (n, 2, 6, 7) and obs.dtype == torch.float32
        assert reward.shape == (n,) and reward.dtype == torch.float32
        assert terminated.dtype == torch.bool and truncated.dtype == torch.bool
        assert infos["action_mask"].shape == (n, a) and infos["action_mask"].dtype == torch.bool
        tensors = [obs, reward, terminated, truncated, infos["action_mask"], infos["agent_seat"]]
        tensors += [infos["final_obs"], infos["_final_obs"], envs.action_masks()]
        assert all(t.device.type == dev.type for t in tensors)
    assert envs.observation_space.shape == (n, 2, 6, 7)
    assert envs.action_space.shape == (n,)
    assert envs.single_action_space == gym.spaces.Discrete(a)


@pytest.mark.parametrize("seat", [0, 1])
@pytest.mark.parametrize("game_id", ["tic_tac_toe", "connect_four"])
def test_vector_env_equals_single_envs_with_same_step_autoreset(
    game_id: str, seat: Literal[0, 1]
) -> None:
    """N boards batched == N single envs given the same actions, where every single env is
    reset right after its game ends: that is exactly SAME_STEP autoreset."""
    n = 8
    game = make(game_id)  # one built game serves every env (games hold no board state)
    envs = BoardGameVectorEnv(game, n, agent_seat=seat, opponent=lowest_legal)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    singles = [BoardGameEnv(game, agent_seat=seat, opponent=lowest_legal) for _ in range(n)]
    obs, _ = envs.reset(seed=0)
    single_obs = np.stack([env.reset(seed=i)[0] for i, env in enumerate(singles)])
    np.testing.assert_array_equal(obs.numpy(), single_obs)
    rng = np.random.default_rng(seat)
    finished = 0
    for _ in range(40):
        masks = envs.action_masks().numpy()
        actions = [_random_legal(m, rng) for m in masks]
        obs, reward, terminated, _, infos = envs.step(torch.tensor(actions))
        for i, env in enumerate(singles):
            o, r, t, _, _ = env.step(actions[i])
            assert (float(reward[i]), bool(terminated[i])) == (r, t)
            np.testing.assert_array_equal(infos["final_obs"][i].numpy(), o)
            if t:
                o, _ = env.reset()
                finished += 1
            np.testing.assert_array_equal(obs[i].numpy(), o)
            np.testing.assert_array_equal(infos["action_mask"][i].numpy(), env.action_masks())
        np.testing.assert_array_equal(infos["_final_obs"].numpy(), terminated.numpy())
    assert finished > n  # several autoresets happened


def test_vector_env_autoreset_gives_fresh_boards_with_the_agent_to_move() -> None:
    envs = BoardGameVectorEnv("tic_tac_toe", 64)  # random seats, random opponent
    obs, infos = envs.reset(seed=1)
    assert set(infos["agent_seat"].tolist()) == {0, 1}
    done_count = 0
    for _ in range(8):
        before = envs.agent_seat.clone()
        actions = envs.action_masks().float().multinomial(1)[:, 0]
        obs, reward, terminated, _, infos = envs.step(actions)
        state = envs.game_state
        # Every board, fresh or not, waits for the agent to move.
        assert not state.terminated.any()
        assert torch.equal(state.current_player, infos["agent_seat"])
        # Finished boards: the final reward, the last position in final_obs, a fresh board.
        done = terminated
        done_count += int(done.sum())
        assert (reward[~done] == 0).all()
        assert torch.equal(infos["final_info"]["agent_seat"], before)
        stones = obs[done].sum(dim=(1, 2, 3))
        assert torch.equal(stones, infos["agent_seat"][done].float())  # 0 or 1 opening stone
        assert torch.equal(state.step_count[done], infos["agent_seat"][done])
        assert (infos["final_obs"][done].sum(dim=(1, 2, 3)) >= 5).all()  # a decided game
        assert torch.equal(infos["final_obs"][~done], obs[~done])
    assert done_count > 32


def test_vector_env_illegal_action_ends_only_that_board() -> None:
    envs = BoardGameVectorEnv("tic_tac_toe", 3, agent_seat=1, opponent=lowest_legal)
    envs.reset(seed=0)  # the opponent opened on cell 0 on every board
    _, reward, terminated, _, _ = envs.step(torch.tensor([0, 4, 4]))
    assert reward.tolist() == [-1.0, 0.0, 0.0]
    assert terminated.tolist() == [True, False, False]


def test_vector_env_calls_the_opponent_a_fixed_number_of_times_per_step() -> None:
    """No Python loop over boards: opponent calls per step do not grow with N."""
    calls: list[int] = []

    def counting(game: Game, state: State, generator: torch.Generator) -> torch.Tensor:
        calls.append(state.batch_size)
        return game.random_action(state, generator)

    counts = {}
    for n in (1, 32):
        envs = BoardGameVectorEnv("connect_four", n, opponent=counting)
        envs.reset(seed=0)
        calls.clear()
        for _ in range(5):
            envs.step(envs.action_masks().float().multinomial(1)[:, 0])
        counts[n] = len(calls)
        assert set(calls) == {n}
    assert counts[1] == counts[32]


def test_vector_env_seeding() -> None:
    envs = BoardGameVectorEnv("connect_four", 16)
    obs1, info1 = envs.reset(seed=7)
    obs2, info2 = envs.reset(seed=7)
    assert torch.equal(obs1, obs2) and torch.equal(info1["agent_seat"], info2["agent_seat"])
    with pytest.raises(TypeError, match="one int seed"):
        envs.reset(seed=[1] * 16)


def test_vector_env_render_gives_one_frame_per_board() -> None:
    envs = BoardGameVectorEnv("tic_tac_toe", 3, agent_seat=0, render_mode="ansi")
    envs.reset(seed=0)
    assert envs.render() == ("...\n...\n...",) * 3


# ------------------------------------------------------------------ registration
@pytest.mark.parametrize("game_id", available_games())
def test_make_and_make_vec_by_id(game_id: str) -> None:
    env_id = gymnasium_id(game_id)
    env = gym.make(env_id, agent_seat=0)
    assert isinstance(env.unwrapped, BoardGameEnv) and env.unwrapped.game.id == game_id
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape

    for mode in ("vector_entry_point", None):
        envs = gym.make_vec(env_id, num_envs=8, vectorization_mode=mode)
        assert isinstance(envs.unwrapped, BoardGameVectorEnv) and envs.num_envs == 8
        obs, _ = envs.reset(seed=0)
        assert isinstance(obs, torch.Tensor) and obs.shape[0] == 8

    sync = gym.make_vec(env_id, num_envs=2, vectorization_mode="sync")
    obs, infos = sync.reset(seed=0)
    assert obs.shape[0] == 2 and obs.shape[1:] == env.observation_space.shape
    assert infos["action_mask"].shape == (2, make(game_id).num_actions)


@pytest.mark.parametrize("game_id", available_games())
def test_game_options_pass_through_make(game_id: str) -> None:
    env = gym.make(gymnasium_id(game_id), illegal_action="raise")
    assert env.unwrapped.game.illegal_action == "raise"  # type: ignore[attr-defined]
    for key, option in game_class(game_id).options.items():
        other = next(c for c in option.choices if c != option.default)
        game = gym.make(gymnasium_id(game_id), **{key: other}).unwrapped.game  # type: ignore[attr-defined]
        assert getattr(game, key) == other
        envs = gym.make_vec(gymnasium_id(game_id), num_envs=2, **{key: other})
        assert getattr(envs.unwrapped.game, key) == other  # type: ignore[attr-defined]


def test_ids_and_idempotent_registration() -> None:
    expected = {gymnasium_id(g) for g in available_games()}
    assert set(_no_warnings(register_gymnasium_envs)) == expected
    assert expected <= set(gym.registry)
    _no_warnings(importlib.reload, rltransfer.views)
    assert gymnasium_id("tic_tac_toe") == "rltransfer/TicTacToe-v0"
    assert gymnasium_id("connect_four") == "rltransfer/ConnectFour-v0"
    assert gymnasium_id("othello") == "rltransfer/Othello-v0"


def test_an_id_taken_by_another_env_is_an_error() -> None:
    env_id = gymnasium_id("tic_tac_toe")
    spec = gym.registry.pop(env_id)
    try:
        gym.register(env_id, entry_point="gymnasium.envs.classic_control:CartPoleEnv")
        with pytest.raises(ValueError, match="already registered"):
            register_gymnasium_envs()
    finally:
        gym.registry[env_id] = spec


def test_opponent_by_name_or_player() -> None:
    from rltransfer.play.players import GreedyPlayer

    # An agent that always plays the left-most legal cell only ever stacks column 0
    # (then 1, ...): greedy blocks every vertical three, so that agent never wins.
    for opponent in ("greedy", GreedyPlayer()):
        env = BoardGameEnv("connect_four", agent_seat=1, opponent=opponent)
        wins = 0
        for seed in range(5):
            _, info = env.reset(seed=seed)
            done, reward = False, 0.0
            while not done:
                mask = info["action_mask"]
                _, r, done, _, info = env.step(int(mask.nonzero()[0][0]))
                reward = float(r)
            wins += reward > 0
        assert wins == 0
    with pytest.raises(ValueError, match=r"unknown opponent 'champion'.*random"):
        BoardGameEnv("connect_four", opponent="champion")
