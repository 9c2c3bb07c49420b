"""PettingZoo envs as games (``rltransfer.games.outside``): the adapter's own conformance test.

``check_game``'s functional checks (step twice from one state, compare copies) do not apply
to a forward-only game, so the adapter is checked against direct PettingZoo play instead:
the same seeded moves on the adapter's batch and on plain envs give the same observations,
legal moves, game ends and rewards, including partial moves (``where``) and resets.
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from gymnasium import spaces
from pettingzoo import AECEnv

from rltransfer.games import EnvOption, game_class, make, parse_game_spec, register_env
from rltransfer.games.core import IllegalActionError
from rltransfer.games.outside import OutsideEnvError, OutsideGame, StaleStateError
from rltransfer.net.policy import NetConfig, PolicyNet, TaskShape
from rltransfer.play.evaluate import play_match
from rltransfer.play.players import GreedyPlayer, RandomPlayer, winning_actions
from rltransfer.specs.config import GameSpec

TINY_NET = NetConfig(channels=8, blocks=1, policy_channels=4, value_channels=4, groups=2)


def _against_direct(env_id: str, options: dict[str, Any], n: int, plies: int, seed: int) -> None:
    """Play seeded random moves (some boards skipping some plies) on both sides; compare."""
    game = make(f"pettingzoo:{env_id}", **options)
    assert isinstance(game, OutsideGame)
    gen = torch.Generator().manual_seed(seed)
    state = game.init(n, gen)
    module = importlib.import_module(f"pettingzoo.classic.{env_id}")
    envs = [module.env(**options) for _ in range(n)]
    for env in envs:
        env.reset()
    ended = 0
    for ply in range(plies):
        live = (~state.terminated).tolist()
        obs, mask = game.observe(state), game.legal_mask(state)
        for i, env in enumerate(envs):
            if live[i]:
                theirs = env.observe(env.agent_selection)
                assert env.agent_selection == game.agents[int(state.current_player[i])]
                assert np.array_equal(mask[i].numpy(), theirs["action_mask"].astype(bool)), i
                planes = obs[i].permute(1, 2, 0).numpy()
                assert np.array_equal(planes, theirs["observation"].astype(np.float32)), i
        where = torch.rand(n, generator=gen) < 0.7
        action = game.random_action(state, gen)
        state = game.step(state, action, where=where)
        for i, env in enumerate(envs):
            if not (live[i] and bool(where[i])):
                continue
            env.step(int(action[i]))
            done = any(env.terminations.values()) or any(env.truncations.values())
            assert done == bool(state.terminated[i]), f"board {i} ply {ply}: end differs"
            if done:
                ended += 1
                expected = [float(env.rewards[a]) for a in game.agents]
                assert state.rewards[i].tolist() == expected, f"board {i}: result differs"
                env.reset()
        state = game.reset_where(state, state.terminated, gen)
    assert ended > 0 or env_id == "chess_v6"


@pytest.mark.parametrize(
    ("env_id", "options", "n", "plies"),
    [
        ("tictactoe_v3", {}, 16, 40),
        ("connect_four_v3", {}, 16, 60),
        ("go_v5", {"board_size": 9}, 4, 150),
        ("chess_v6", {}, 2, 30),
    ],
)
def test_adapter_matches_direct_pettingzoo_play(
    env_id: str, options: dict[str, Any], n: int, plies: int
) -> None:
    _against_direct(env_id, options, n, plies, seed=3)


def test_shapes_heads_and_names() -> None:
    go, chess = make("pettingzoo:go_v5", board_size=9), make("pettingzoo:chess_v6")
    assert (go.num_planes, go.height, go.width, go.num_actions) == (17, 9, 9, 82)
    assert go.has_pass and go.cell_actions and TaskShape.of(go).head == "conv"
    assert (chess.num_planes, chess.height, chess.width, chess.num_actions) == (111, 8, 8, 4672)
    assert not chess.cell_actions and TaskShape.of(chess).head == "flat"
    assert TaskShape.of(make("pettingzoo:connect_four_v3")).head == "flat"  # columns
    assert not (go.functional or go.supports_lookahead)
    assert go.id == "pettingzoo:go_v5" and go.max_moves == 810
    assert game_class("pettingzoo:go_v5") is OutsideGame
    spec = GameSpec(id="pettingzoo:go_v5", options={"board_size": 9})
    assert spec.name == "go_v5_board_size9"  # no ':' in tags and folders
    assert parse_game_spec("pettingzoo:go_v5:board_size=9,komi=6.5") == (
        "pettingzoo:go_v5",
        {"board_size": 9, "komi": 6.5},
    )
    assert parse_game_spec("pettingzoo:chess_v6") == ("pettingzoo:chess_v6", {})


def test_forward_only_states_are_checked() -> None:
    game = make("pettingzoo:tictactoe_v3")
    state = game.init(2)
    after = game.step(state, torch.tensor([0, 4]))
    with pytest.raises(StaleStateError, match="forward-only"):
        game.step(state, torch.tensor([1, 1]))
    # a partial move leaves the other board's state current
    part = game.step(after, torch.tensor([1, 1]), where=torch.tensor([True, False]))
    assert part.step_count.tolist() == [2, 1]
    game.step(part, torch.tensor([2, 2]))
    with pytest.raises(StaleStateError):
        game.reset_where(part, torch.tensor([True, True]))


def test_illegal_actions_forfeit_or_raise() -> None:
    game = make("pettingzoo:tictactoe_v3")
    state = game.step(game.init(2), torch.tensor([0, 0]))
    after = game.step(state, torch.tensor([0, 1]))  # board 0: player 1 plays a taken cell
    assert after.terminated.tolist() == [True, False] and after.reward.tolist() == [1.0, 0.0]
    strict = make("pettingzoo:tictactoe_v3", illegal_action="raise")
    state = strict.step(strict.init(1), torch.tensor([4]))
    with pytest.raises(IllegalActionError, match="action 4 is illegal on board 0"):
        strict.step(state, torch.tensor([4]))


def test_max_moves_ends_the_game_as_a_draw() -> None:
    game = make("pettingzoo:chess_v6", max_moves=6)
    gen = torch.Generator().manual_seed(0)
    state = game.init(3, gen)
    for _ in range(6):
        state = game.step(state, game.random_action(state, gen))
    assert bool(state.terminated.all()) and state.step_count.tolist() == [6, 6, 6]
    assert state.reward.tolist() == [0.0, 0.0, 0.0]
    assert bool(game.legal_mask(state).all())  # finished boards: all True, as every game


def test_flat_head_gives_illegal_chess_moves_probability_zero() -> None:
    game = make("pettingzoo:chess_v6")
    torch.manual_seed(0)
    net = PolicyNet({"chess": TaskShape.of(game)}, TINY_NET)
    gen = torch.Generator().manual_seed(0)
    state = game.init(4, gen)
    for _ in range(6):
        mask = game.legal_mask(state)
        dist, value = net.distribution("chess", game.observe(state), mask)
        assert dist.probs.shape == (4, 4672) and value.shape == (4,)
        assert bool((dist.probs[~mask] == 0).all()) and bool((dist.probs[mask] > 0).all())
        state = game.step(state, net.act("chess", game.observe(state), mask, gen)[0])


def test_greedy_is_random_without_lookahead_and_says_so() -> None:
    game = make("pettingzoo:connect_four_v3")
    state = game.init(8)
    greedy = GreedyPlayer().act(game, state, torch.Generator().manual_seed(5))
    random = RandomPlayer().act(game, state, torch.Generator().manual_seed(5))
    assert torch.equal(greedy, random)
    with pytest.raises(NotImplementedError, match="supports_lookahead"):
        winning_actions(game, state)
    gen = torch.Generator().manual_seed(0)
    result = play_match(game, RandomPlayer(), GreedyPlayer(), 6, gen)
    assert result.opponent == "greedy(random)" and result.games == 6


# ---------------------------------------------------------------- envs that do not fit
class FakeEnv(AECEnv):  # type: ignore[misc]
    """A configurable two-agent AEC env: three plies, then the first agent wins."""

    metadata: ClassVar[dict[str, Any]] = {"name": "fake_v0"}

    def __init__(
        self,
        agents: int = 2,
        shape: tuple[int, ...] = (3, 3, 2),
        mask: bool = True,
        alternate: bool = True,
        end_rewards: tuple[float, float] = (1.0, -1.0),
    ) -> None:
        super().__init__()
        self.possible_agents = [f"p{i}" for i in range(agents)]
        obs: dict[str, spaces.Space[Any]] = {"observation": spaces.Box(0, 1, shape)}
        if mask:
            obs["action_mask"] = spaces.Box(0, 1, (9,), np.int8)
        self._obs, self._shape, self.alternate, self.end = (
            spaces.Dict(obs),
            shape,
            alternate,
            end_rewards,
        )

    def observation_space(self, agent: str) -> spaces.Space[Any]:
        return self._obs

    def action_space(self, agent: str) -> spaces.Space[Any]:
        return spaces.Discrete(9)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        self.agents = self.possible_agents[:]
        self.agent_selection = self.agents[0]
        self.rewards = dict.fromkeys(self.agents, 0.0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0.0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.infos: dict[str, dict[str, Any]] = {a: {} for a in self.agents}
        self.plies = 0

    def observe(self, agent: str) -> dict[str, np.ndarray]:
        return {"observation": np.zeros(self._shape), "action_mask": np.ones(9, np.int8)}

    def step(self, action: int) -> None:
        self.plies += 1
        if self.plies == 3:
            self.terminations = dict.fromkeys(self.agents, True)
            self.rewards = dict(zip(self.agents, self.end, strict=True))
        if self.alternate:
            self.agent_selection = self.agents[self.plies % 2]


def three_agents() -> FakeEnv:
    return FakeEnv(agents=3)


def flat_obs() -> FakeEnv:
    return FakeEnv(shape=(18,))


def no_mask() -> FakeEnv:
    return FakeEnv(mask=False)


def repeats() -> FakeEnv:
    return FakeEnv(alternate=False)


def not_zero_sum() -> FakeEnv:
    return FakeEnv(end_rewards=(1.0, 1.0))


# registered from code, as a user's script would: a file can only name them
FAKES = {
    "fake_v0": FakeEnv,
    "fake_three_agents": three_agents,
    "fake_flat_obs": flat_obs,
    "fake_no_mask": no_mask,
    "fake_repeats": repeats,
    "fake_not_zero_sum": not_zero_sum,
}
for _name, _fn in FAKES.items():
    register_env(_name, _fn)
register_env("fake_options", FakeEnv, options={"agents": EnvOption(int, low=1, high=3)})


def _play_out(game_id: str) -> None:
    game = make(game_id)
    state = game.init(1)
    for _ in range(3):
        state = game.step(state, torch.tensor([0]))


def test_envs_that_do_not_fit_are_named() -> None:
    _play_out("pettingzoo:fake_v0")  # the fake itself fits
    with pytest.raises(OutsideEnvError, match=r"two players; this env has 3 agents"):
        make("pettingzoo:fake_three_agents")
    with pytest.raises(OutsideEnvError, match=r"not a board: shape \(18,\), expected 3-D"):
        make("pettingzoo:fake_flat_obs")
    with pytest.raises(OutsideEnvError, match=r"lacks \['action_mask'\]"):
        make("pettingzoo:fake_no_mask")
    with pytest.raises(OutsideEnvError, match=r"p0 moved and p0 is to move next.*alternate"):
        _play_out("pettingzoo:fake_repeats")
    with pytest.raises(OutsideEnvError, match="not zero-sum"):
        _play_out("pettingzoo:fake_not_zero_sum")
    with pytest.raises(KeyError, match=r"unknown PettingZoo env 'chess'.*chess_v6.*go_v5"):
        make("pettingzoo:chess")
    with pytest.raises(ValueError, match=r"unknown option 'size'; valid options: board_size, komi"):
        make("pettingzoo:go_v5", size=9)
    with pytest.raises(ValueError, match=r"max_moves=-1 is not allowed: expected an int >= 0"):
        make("pettingzoo:go_v5", max_moves=-1)


def test_registered_envs_take_their_declared_options_only() -> None:
    game = make("pettingzoo:fake_options", agents=2)
    assert isinstance(game, OutsideGame) and game.env_options == {"agents": 2}
    with pytest.raises(OutsideEnvError, match="this env has 3 agents"):
        make("pettingzoo:fake_options", agents=3)  # a declared option: reaches the env
    with pytest.raises(ValueError, match=r"agents=4 is not allowed: expected an int in 1..3"):
        make("pettingzoo:fake_options", agents=4)
    with pytest.raises(ValueError, match=r"unknown option 'shape'; valid options: agents"):
        make("pettingzoo:fake_options", shape=(9,))
    with pytest.raises(ValueError, match=r"unknown option 'agents'; valid options: max_moves"):
        make("pettingzoo:fake_v0", agents=2)  # registered without options: takes none


def test_the_adapter_implements_the_interface_not_the_template() -> None:
    from rltransfer.games import BoardGame, Game

    go = make("pettingzoo:go_v5", board_size=5)
    assert isinstance(go, BoardGame) and not isinstance(go, Game)
    assert not any(hasattr(go, name) for name in ("_apply", "_init", "_legal_mask"))
    assert isinstance(make("tic_tac_toe"), Game) and make("hex").functional
