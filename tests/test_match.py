"""The agent-against-opponent rule (``rltransfer.play.match``), shared by the collector,
the gymnasium views and the SB3 VecEnv; and every view on forward-only PettingZoo games,
which stepped all boards and crashed (``StaleStateError``) before the rule had one home."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import rltransfer.views  # noqa: F401  (registers the gymnasium ids)
from rltransfer.games import Game, State, make
from rltransfer.interop.sb3 import BoardGameVecEnv
from rltransfer.play import match
from rltransfer.views.gymnasium import BoardGameEnv, BoardGameVectorEnv


def lowest(game: Game) -> match.Reply:
    """The lowest legal action on every board."""
    return lambda state, moving: game.legal_mask(state).to(torch.uint8).argmax(dim=1)


def test_the_agents_winning_move_keeps_its_reward_through_the_reply() -> None:
    game = make("tic_tac_toe")
    seat = torch.tensor([0])
    state = game.init(1)
    for agent in (0, 3):  # opponent (lowest legal) answers 1, then 2
        state, reward = match.play(game, state, seat, torch.tensor([agent]), lowest(game))
        assert float(reward[0]) == 0.0 and not bool(state.terminated[0])
    state, reward = match.play(game, state, seat, torch.tensor([6]), lowest(game))
    assert float(reward[0]) == 1.0 and bool(state.terminated[0])  # column 0: the agent's


def test_the_replys_win_is_the_agents_loss_from_either_seat() -> None:
    game = make("tic_tac_toe")
    seat = torch.tensor([1])
    state = match.reply(game, game.init(1), seat, lowest(game))  # the opponent opens at 0
    assert int(state.current_player[0]) == 1
    for agent, expected in ((4, 0.0), (8, -1.0)):  # opponent: 1, then 2 (row 0)
        state, reward = match.play(game, state, seat, torch.tensor([agent]), lowest(game))
        assert float(reward[0]) == expected


def test_an_illegal_agent_move_loses_and_the_opponent_does_not_move() -> None:
    game = make("tic_tac_toe")
    seat = torch.tensor([0, 0])
    state, _ = match.play(game, game.init(2), seat, torch.tensor([0, 0]), lowest(game))
    calls: list[torch.Tensor] = []

    def spy(state: State, moving: torch.Tensor) -> torch.Tensor:
        calls.append(moving.clone())
        return lowest(game)(state, moving)

    state, reward = match.play(game, state, seat, torch.tensor([0, 4]), spy)  # 0 is taken
    assert reward.tolist() == [-1.0, 0.0]
    assert calls[0].tolist() == [False, True]  # the forfeited board gets no reply


def test_restart_gives_the_opening_to_the_opponent_where_the_agent_is_second() -> None:
    game = make("connect_four")
    state = game.init(3)
    seat = torch.tensor([0, 1, 1])
    done = torch.tensor([True, True, False])
    state = game.step(state, torch.tensor([38, 38, 38]))  # every board: one stone (d1)
    fresh = match.restart(game, state, done, seat, lowest(game))
    # restarted; restarted and the opening played; kept (the agent, seat 1, is to move)
    assert fresh.step_count.tolist() == [0, 1, 1]
    assert (fresh.current_player == seat).tolist() == [True, True, True]


@pytest.mark.parametrize("game_id", ["pettingzoo:tictactoe_v3", "pettingzoo:connect_four_v3"])
def test_vector_view_plays_forward_only_games(game_id: str) -> None:
    env = BoardGameVectorEnv(game_id, 3, opponent="random")
    _, infos = env.reset(seed=0)
    finished = 0
    for _ in range(60):
        mask = infos["action_mask"]
        actions = mask.to(torch.uint8).argmax(dim=1)
        _obs, reward, done, _truncated, infos = env.step(actions)
        state = env.game_state
        assert (state.current_player == env.agent_seat).all()  # the agent is to move
        assert not state.terminated.any()  # finished boards restarted at once
        assert set(reward.tolist()) <= {-1.0, 0.0, 1.0}
        assert bool((reward[~done] == 0).all())
        finished += int(done.sum())
    assert finished >= 6


def test_single_env_and_gymnasium_make_play_forward_only_games() -> None:
    env = BoardGameEnv("pettingzoo:tictactoe_v3", opponent="greedy")
    _, info = env.reset(seed=1)
    results = []
    for _ in range(40):
        _, reward, terminated, _truncated, info = env.step(int(np.argmax(info["action_mask"])))
        if terminated:
            results.append(reward)
            _obs, info = env.reset()
    assert len(results) >= 5 and set(results) <= {-1.0, 0.0, 1.0}
    vec = gym.make_vec("rltransfer/ConnectFour-v0", num_envs=2)  # native, same code path
    _, infos = vec.reset(seed=0)
    _, reward, done, _, _ = vec.step(infos["action_mask"].to(torch.uint8).argmax(dim=1))
    assert reward.tolist() == [0.0, 0.0] and not done.any()  # legal openings end nothing


def test_sb3_vecenv_plays_forward_only_games() -> None:
    env = BoardGameVecEnv("pettingzoo:connect_four_v3", 2, opponent="random")
    env.seed(0)
    env.reset()
    dones = 0
    for _ in range(50):
        obs, _rewards, done, _infos = env.step(env.action_masks().argmax(axis=1))
        assert obs.shape == (2, 2, 6, 7)
        dones += int(done.sum())
    assert dones >= 2
