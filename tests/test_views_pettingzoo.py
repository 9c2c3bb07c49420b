"""The PettingZoo AEC view: PettingZoo's own api_test for every game, then exact behaviour.

Behaviour tests mirror every move on a plain game state, so a view that relabels agents,
flips a reward, shows the wrong player's planes or leaks a mask to the waiting agent fails.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from rltransfer.games import IllegalActionError, available_games, make
from rltransfer.views.pettingzoo import BoardGameAEC, make_aec

AGENTS = ("player_0", "player_1")

# api_test's generic advice that PettingZoo's own classic games also get: a dict observation
# (the classic games' format) is "not a NumPy array" nor a Box, and the opening board is empty.
KNOWN_API_TEST_ADVICE = (
    "Observation is not a NumPy array",
    "Observation space for each agent probably should be gymnasium.spaces.box",
    "Observation numpy array is all zeros.",
)


def _play(env: BoardGameAEC, actions: list[int | None]) -> None:
    for a in actions:
        env.step(a)


@pytest.mark.parametrize("game_id", available_games())
def test_pettingzoo_api_test(game_id: str) -> None:
    """PettingZoo's conformance test (one full game, then a seeded replay), with no
    warnings beyond the generic ones PettingZoo's own classic games get."""
    with warnings.catch_warnings():
        # pettingzoo.test imports the classic games the deprecated way; not our concern.
        warnings.simplefilter("ignore", DeprecationWarning)
        from pettingzoo.test import api_test
    env = make_aec(game_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        api_test(env, num_cycles=100)
    unexpected = [
        str(w.message) for w in caught if not str(w.message).startswith(KNOWN_API_TEST_ADVICE)
    ]
    assert unexpected == []
    assert env.metadata["is_parallelizable"] is False
    assert env.metadata["name"] == f"rltransfer_{game_id}_v0"


@pytest.mark.parametrize("game_id", available_games())
def test_observations_and_masks_match_the_game(game_id: str) -> None:
    """At every turn of random games: both agents' planes are the game's planes from their
    seat, the mover's mask is the game's legal mask, the waiting agent's mask is all zero."""
    env, game = make_aec(game_id), make(game_id)
    rng = np.random.default_rng(0)
    for seed in range(3):
        env.reset(seed=seed)
        state = game.init(1)
        while not bool(state.terminated[0]):
            mover = int(state.current_player[0])
            assert env.agent_selection == AGENTS[mover]
            legal = game.legal_mask(state)[0].numpy()
            for seat, agent in enumerate(AGENTS):
                obs = env.observe(agent)
                planes = game.observe(state, player=torch.tensor([seat]))[0].numpy()
                np.testing.assert_array_equal(obs["observation"], planes)
                expected_mask = legal if seat == mover else np.zeros_like(legal)
                np.testing.assert_array_equal(obs["action_mask"], expected_mask.astype(np.int8))
                assert env.observation_space(agent).contains(obs)
            action = int(rng.choice(np.flatnonzero(legal)))
            env.step(action)
            state = game.step(state, torch.tensor([action]))
        assert env.rewards == {a: float(state.rewards[0, i]) for i, a in enumerate(AGENTS)}
        assert all(env.terminations.values())


def test_connect_four_scripted_win_rewards_and_losers_final_view() -> None:
    """X drops four in column 0 (cells 35, 28, 21, 14), O answers in column 1."""
    env = make_aec("connect_four", render_mode="ansi")
    env.reset(seed=0)
    _play(env, [35, 36, 28, 29, 21, 22])
    assert env.agent_selection == "player_0"
    assert env.rewards == {"player_0": 0.0, "player_1": 0.0}
    env.step(14)

    # The loser is selected first and sees the final board and -1.
    assert env.agent_selection == "player_1"
    obs, reward, terminated, truncated, _ = env.last()
    assert (reward, terminated, truncated) == (-1.0, True, False)
    assert env.rewards == {"player_0": 1.0, "player_1": -1.0}
    own, opp = obs["observation"].reshape(2, -1)
    assert np.flatnonzero(own).tolist() == [22, 29, 36]  # O's stones, from O's view
    assert np.flatnonzero(opp).tolist() == [14, 21, 28, 35]
    assert not obs["action_mask"].any()
    assert env.render() == "\n".join(
        [".......", ".......", "X......", "XO.....", "XO.....", "XO....."]
    )

    env.step(None)
    assert env.agents == ["player_0"]
    obs, reward, terminated, _, _ = env.last()
    assert (reward, terminated) == (1.0, True)
    own, opp = obs["observation"].reshape(2, -1)
    assert np.flatnonzero(own).tolist() == [14, 21, 28, 35]
    env.step(None)
    assert env.agents == []


def test_tic_tac_toe_draw_ends_with_zero_rewards() -> None:
    env = make_aec("tic_tac_toe")
    env.reset()
    # X O X / X O O / O X X: nobody has three in a row.
    _play(env, [0, 1, 2, 4, 3, 5, 7, 6, 8])
    assert all(env.terminations.values())
    assert not any(env.truncations.values())
    assert env.rewards == {"player_0": 0.0, "player_1": 0.0}
    assert env.agent_selection == "player_1"  # X made the last move
    assert env.last()[1:3] == (0.0, True)


def test_illegal_action_loses_by_default() -> None:
    """Game rule, zero-sum: the mover gets -1, the other agent +1, the board is unchanged."""
    env = make_aec("tic_tac_toe", render_mode="ansi")
    env.reset()
    _play(env, [4, 4])  # player_1 plays the occupied centre
    assert all(env.terminations.values())
    assert env.rewards == {"player_0": 1.0, "player_1": -1.0}
    assert env.infos["player_1"]["illegal_action"] is True
    assert env.render() == "...\n.X.\n..."
    assert env.agent_selection == "player_0"
    assert env.last()[1] == 1.0


def test_illegal_action_raises_with_option_and_leaves_env_unchanged() -> None:
    env = make_aec("tic_tac_toe", illegal_action="raise")
    env.reset()
    env.step(4)
    with pytest.raises(IllegalActionError, match="action 4 is illegal"):
        env.step(4)
    assert env.agent_selection == "player_1"
    assert not any(env.terminations.values())
    env.step(0)
    assert env.agent_selection == "player_0"


def test_none_for_a_live_agent_and_an_action_for_a_dead_one_are_errors() -> None:
    env = make_aec("tic_tac_toe")
    env.reset()
    with pytest.raises(ValueError, match="must act"):
        env.step(None)
    with pytest.raises(TypeError):
        env.step(1.5)  # type: ignore[arg-type]  # the point of the test
    _play(env, [0, 3, 1, 4, 2])  # X wins on the top row
    with pytest.raises(ValueError, match="only valid action is None"):
        env.step(5)


def test_reset_starts_a_new_game_after_the_last_one_ended() -> None:
    env = make_aec("tic_tac_toe")
    env.reset()
    _play(env, [0, 3, 1, 4, 2, None, None])
    assert env.agents == []
    env.reset(seed=1)
    assert env.agents == list(AGENTS)
    assert env.agent_selection == "player_0"
    assert not env.observe("player_0")["observation"].any()


def test_render_modes() -> None:
    env = make_aec("connect_four", render_mode="rgb_array")
    env.reset()
    env.step(38)
    frame = env.render()
    assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.shape[2] == 3
    expected = env.game.render_rgb(env.game_state).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(frame, expected)

    silent = make_aec("connect_four")
    silent.reset()
    with pytest.warns(UserWarning, match="render_mode"):
        assert silent.render() is None
    with pytest.raises(ValueError, match="render_mode"):
        make_aec("connect_four", render_mode="human")
