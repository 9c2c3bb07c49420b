"""Hex against OpenSpiel: the same random games, move for move, must agree on everything.

OpenSpiel's ``hex`` (``swap=False`` by default; ``board_size`` sets both ``num_rows`` and
``num_cols``) uses our conventions on the board itself: action ``r * num_cols + c``, cell
``(r, c)`` touching ``(r-1, c)``, ``(r-1, c+1)``, ``(r, c±1)``, ``(r+1, c-1)``, ``(r+1, c)``
(its text board shifts each row right), player 0 ("x") joining top and bottom, player 1
("o") left and right. Only our mover's frame differs: player 1's actions are transposed,
so every action goes through ``board_action`` before OpenSpiel sees it.

All boards play as one batch in our engine; one OpenSpiel state per board steps beside it.
"""

from __future__ import annotations

import pytest
import torch

from rltransfer.games.hex import Hex

pyspiel = pytest.importorskip("pyspiel")


def assert_same_playouts(size: int, num_games: int, seed: int) -> None:
    game = Hex(size)
    spiel_game = pyspiel.load_game("hex", {"board_size": size})
    assert spiel_game.num_distinct_actions() == game.num_actions
    gen = torch.Generator().manual_seed(seed)
    state = game.init(num_games, gen)
    spiel_states = [spiel_game.new_initial_state() for _ in range(num_games)]
    all_actions = torch.arange(game.num_actions)
    for ply in range(game.max_moves + 1):
        live = (~state.terminated).tolist()
        if not any(live):
            break
        # Our legal mask is in the mover's frame: view action a is board cell board_action(a).
        view_cells = torch.stack(
            [game.board_action(state, a.expand(num_games)) for a in all_actions], dim=1
        )
        mask = game.legal_mask(state)
        legal_cells = [sorted(view_cells[i][mask[i]].tolist()) for i in range(num_games)]
        players = state.current_player.tolist()
        action = game.random_action(state, gen)
        cells = game.board_action(state, action).tolist()
        state = game.step(state, action)
        done, winner = state.terminated.tolist(), game.winner(state).tolist()
        steps = state.step_count.tolist()
        for i, s in enumerate(spiel_states):
            if not live[i]:
                continue
            where = f"board {i}, ply {ply}"
            assert s.current_player() == players[i], where
            assert sorted(s.legal_actions()) == legal_cells[i], where
            s.apply_action(cells[i])
            assert s.is_terminal() == done[i], where
            if done[i]:
                expected = [1.0, -1.0] if winner[i] == 0 else [-1.0, 1.0]
                assert s.returns() == expected, where
                assert steps[i] == len(s.history()) == ply + 1, where
    assert all(s.is_terminal() for s in spiel_states)
    assert bool(state.terminated.all())


@pytest.mark.parametrize("size", [7, 9])
def test_1000_random_games_match_openspiel(size: int) -> None:
    assert_same_playouts(size=size, num_games=1000, seed=size)


@pytest.mark.parametrize("size", [5, 11, 13])
def test_200_random_games_on_other_sizes_match_openspiel(size: int) -> None:
    assert_same_playouts(size=size, num_games=200, seed=100 + size)


@pytest.mark.slow
@pytest.mark.parametrize("size", [5, 11, 13])
def test_1000_random_games_on_other_sizes_match_openspiel(size: int) -> None:
    assert_same_playouts(size=size, num_games=1000, seed=200 + size)
