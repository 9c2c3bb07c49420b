"""Gomoku against OpenSpiel: the same random games, move for move, must agree on everything.

OpenSpiel's ``gomoku`` (``size``, ``connect``; ``wrap=False`` and ``anti=False`` by default)
numbers cells ``r * size + c`` like we do, lets player 0 move first, and counts a line of
*at least* ``connect`` stones as a win (six in a row wins: freestyle, our rule too), with a
full board a draw. So the rules are directly comparable, including the draws.

All boards play as one batch in our engine; one OpenSpiel state per board steps beside it.
"""

from __future__ import annotations

import pytest
import torch

from rltransfer.games.gomoku import Gomoku

pyspiel = pytest.importorskip("pyspiel")


def test_openspiel_counts_six_in_a_row_as_a_win() -> None:
    """The premise of the comparison: OpenSpiel's gomoku is freestyle, like ours."""
    state = pyspiel.load_game("gomoku", {"size": 9, "connect": 5}).new_initial_state()
    for action in [0, 18, 1, 19, 2, 20, 4, 21, 5, 30]:  # X X X . X X on the top row
        state.apply_action(action)
    assert not state.is_terminal()
    state.apply_action(3)
    assert state.is_terminal() and state.returns() == [1.0, -1.0]


def assert_same_playouts(size: int, num_games: int, seed: int) -> tuple[int, int]:
    """Play ``num_games`` random games in both engines; returns (decisive games, draws)."""
    game = Gomoku(size)
    spiel_game = pyspiel.load_game("gomoku", {"size": size, "connect": 5})
    assert spiel_game.num_distinct_actions() == game.num_actions
    gen = torch.Generator().manual_seed(seed)
    state = game.init(num_games, gen)
    spiel_states = [spiel_game.new_initial_state() for _ in range(num_games)]
    draws = 0
    for ply in range(game.max_moves + 1):
        live = (~state.terminated).tolist()
        if not any(live):
            break
        mask = game.legal_mask(state)
        legal = [m.nonzero()[:, 0].tolist() for m in mask]
        players = state.current_player.tolist()
        action = game.random_action(state, gen)
        state = game.step(state, action)
        actions, done = action.tolist(), state.terminated.tolist()
        winner, steps = game.winner(state).tolist(), state.step_count.tolist()
        for i, s in enumerate(spiel_states):
            if not live[i]:
                continue
            where = f"board {i}, ply {ply}"
            assert s.current_player() == players[i], where
            assert s.legal_actions() == legal[i], where
            s.apply_action(actions[i])
            assert s.is_terminal() == done[i], where
            if done[i]:
                expected = {0: [1.0, -1.0], 1: [-1.0, 1.0], -1: [0.0, 0.0]}[winner[i]]
                assert s.returns() == expected, where
                assert steps[i] == len(s.history()) == ply + 1, where
                draws += winner[i] == -1
    assert all(s.is_terminal() for s in spiel_states)
    assert bool(state.terminated.all())
    return num_games - draws, draws


def test_1000_random_games_on_9x9_match_openspiel() -> None:
    decisive, _ = assert_same_playouts(size=9, num_games=1000, seed=0)
    assert decisive > 500  # mostly wins, so the win check is what gets compared


def test_random_games_on_7x7_match_openspiel_including_draws() -> None:
    decisive, draws = assert_same_playouts(size=7, num_games=300, seed=7)
    assert draws > 0 and decisive > 0


@pytest.mark.parametrize("size", [15, 19])
def test_200_random_games_on_big_boards_match_openspiel(size: int) -> None:
    assert_same_playouts(size=size, num_games=200, seed=100 + size)


@pytest.mark.slow
@pytest.mark.parametrize("size", [7, 15, 19])
def test_1000_random_games_on_other_sizes_match_openspiel(size: int) -> None:
    assert_same_playouts(size=size, num_games=1000, seed=200 + size)
