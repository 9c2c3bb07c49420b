"""Differential tests against PettingZoo's own Connect Four and tic-tac-toe.

1,000 random games each: our side plays all boards as one batch, PettingZoo steps one env
per board. At every ply the legal moves must agree; at the end, the ply and the winner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from pettingzoo.classic import connect_four_v3, tictactoe_v3

from rltransfer.games import make
from rltransfer.games.connect_four import ConnectFour

GAMES = 1000


def _run(
    game_id: str,
    make_env: Callable[[], Any],
    our_legal_to_theirs: Callable[[torch.Tensor], set[int]],
    our_action_to_theirs: Callable[[torch.Tensor, int], int],
) -> None:
    game = make(game_id)
    gen = torch.Generator().manual_seed(2024)
    state = game.init(GAMES, gen)
    envs = [make_env() for _ in range(GAMES)]
    for i, env in enumerate(envs):
        env.reset(seed=i)
    end_ply = [-1] * GAMES
    final = torch.zeros(GAMES)
    for ply in range(game.max_moves):
        mask = game.legal_mask(state)
        action = game.random_action(state, gen)
        live = (~state.terminated).tolist()
        for i, env in enumerate(envs):
            if not live[i]:
                continue
            agent = env.agent_selection
            theirs = {int(a) for a in env.observe(agent)["action_mask"].nonzero()[0]}
            assert our_legal_to_theirs(mask[i]) == theirs, f"game {i} ply {ply}: legal moves differ"
            env.step(our_action_to_theirs(action, i))
        state = game.step(state, action)
        final = torch.where(state.terminated & torch.tensor(live), state.reward, final)
        for i, env in enumerate(envs):
            if live[i]:
                done = all(env.terminations.values()) or all(env.truncations.values())
                assert done == bool(state.terminated[i]), f"game {i}: end differs at ply {ply + 1}"
                if done:
                    end_ply[i] = ply + 1
                    r = [env.rewards[agent] for agent in env.possible_agents]
                    assert r == state.rewards[i].tolist(), f"game {i}: result differs"
        if bool(state.terminated.all()):
            break
    assert all(p > 0 for p in end_ply)
    assert torch.equal(state.step_count, torch.tensor(end_ply))
    # the sample must hold wins for both players (and, in tic-tac-toe, draws) to mean much
    outcomes = set(final.tolist())
    assert {-1.0, 1.0} <= outcomes and (0.0 in outcomes or game_id == "connect_four")


def test_connect_four_matches_pettingzoo() -> None:
    c4 = make("connect_four")
    assert isinstance(c4, ConnectFour)

    def legal_columns(mask: torch.Tensor) -> set[int]:
        return {int(a) % 7 for a in mask.nonzero()[:, 0]}

    def to_column(action: torch.Tensor, i: int) -> int:
        return int(action[i]) % 7

    _run("connect_four", connect_four_v3.env, legal_columns, to_column)


def test_tic_tac_toe_matches_pettingzoo() -> None:
    # PettingZoo numbers cells column-major (0 3 6 / 1 4 7 / 2 5 8); ours are row-major.
    def ours_to_theirs(a: int) -> int:
        r, c = divmod(a, 3)
        return c * 3 + r

    def legal(mask: torch.Tensor) -> set[int]:
        return {ours_to_theirs(int(a)) for a in mask.nonzero()[:, 0]}

    _run("tic_tac_toe", tictactoe_v3.env, legal, lambda action, i: ours_to_theirs(int(action[i])))
