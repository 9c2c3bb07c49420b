"""The m,n,k-game against OpenSpiel: the same random games, move for move, must agree.

Without gravity the reference is OpenSpiel's ``mnk``, which names the width ``m`` and the
height ``n`` (ours: ``m`` rows, ``n`` columns), so our ``MNK(m, n, k)`` is its
``mnk(m=n, n=m, k=k)``; its cell actions are ``r * width + c`` like ours. With gravity it is
OpenSpiel's ``connect_four(rows=m, columns=n, x_in_row=k)``, whose actions are columns:
our cell action maps to ``action % n``. Both count a line longer than ``k`` as a win
(checked below) and call a full board a draw, as we do.

The mapping is the benchmark's (:func:`rltransfer.bench.games.openspiel_version`). All boards
play as one batch in our engine; one OpenSpiel state per board steps beside it.
At every ply the player to move, the legal moves, the board as text and the end of the game
must agree, and at the end the returns.
"""

from __future__ import annotations

import pytest
import torch

from rltransfer.bench.games import openspiel_version
from rltransfer.games.mnk import MNK

pyspiel = pytest.importorskip("pyspiel")


def reference(game: MNK) -> object:
    """OpenSpiel's version of ``game``, as the benchmark maps it (so the benchmark's
    OpenSpiel column times the same game)."""
    version = openspiel_version(game)
    assert version is not None
    return pyspiel.load_game(*version)


@pytest.mark.parametrize("gravity", [False, True])
def test_openspiel_counts_a_longer_line_as_a_win(gravity: bool) -> None:
    """The premise of the comparison: X X . X X on the bottom row, then the gap, wins
    with k = 3 on a 4 x 6 board (O plays the cells above, or the top row)."""
    state = reference(MNK(4, 6, 3, gravity)).new_initial_state()
    for col in [0, 1, 3, 4]:
        state.apply_action(col if gravity else 18 + col)  # X: a column, or a bottom cell
        state.apply_action(col)  # O: the same column, or the top row's cell
    assert not state.is_terminal()
    state.apply_action(2 if gravity else 20)
    assert state.is_terminal() and state.returns() == [1.0, -1.0]


def assert_same_playouts(game: MNK, num_games: int, seed: int) -> tuple[int, int]:
    """Play ``num_games`` random games in both engines; returns (decisive games, draws)."""
    spiel_game = reference(game)
    gen = torch.Generator().manual_seed(seed)
    state = game.init(num_games, gen)
    spiel_states = [spiel_game.new_initial_state() for _ in range(num_games)]
    draws = 0
    for ply in range(game.max_moves + 1):
        live = (~state.terminated).tolist()
        if not any(live):
            break
        mask = game.legal_mask(state)
        legal = [sorted({a % game.n if game.gravity else a for a in m.nonzero()[:, 0].tolist()})
                 for m in mask]  # fmt: skip
        players = state.current_player.tolist()
        boards = [game.render_text(state, i).lower() for i in range(num_games)]
        action = game.random_action(state, gen)
        state = game.step(state, action)
        actions, done = action.tolist(), state.terminated.tolist()
        winner, steps = game.winner(state).tolist(), state.step_count.tolist()
        for i, s in enumerate(spiel_states):
            if not live[i]:
                continue
            where = f"{game!r}, board {i}, ply {ply}"
            assert s.current_player() == players[i], where
            assert s.legal_actions() == legal[i], where
            assert str(s).strip() == boards[i], where
            s.apply_action(actions[i] % game.n if game.gravity else actions[i])
            assert s.is_terminal() == done[i], where
            if done[i]:
                expected = {0: [1.0, -1.0], 1: [-1.0, 1.0], -1: [0.0, 0.0]}[winner[i]]
                assert s.returns() == expected, where
                assert steps[i] == len(s.history()) == ply + 1, where
                draws += winner[i] == -1
    assert all(s.is_terminal() for s in spiel_states)
    assert bool(state.terminated.all())
    return num_games - draws, draws


@pytest.mark.parametrize(
    ("m", "n", "k", "gravity"),
    [(3, 3, 3, False), (4, 7, 3, False), (7, 4, 4, False), (6, 6, 4, False), (5, 8, 5, False),
     (6, 7, 4, True), (4, 5, 3, True), (7, 5, 4, True), (3, 6, 5, True)],
)  # fmt: skip
def test_random_games_match_openspiel(m: int, n: int, k: int, gravity: bool) -> None:
    decisive, _ = assert_same_playouts(MNK(m, n, k, gravity), num_games=150, seed=m * n + k)
    assert decisive > 10


def test_draws_match_openspiel() -> None:
    """A shape where random play often fills the board, so draws get compared too."""
    decisive, draws = assert_same_playouts(MNK(4, 4, 4), num_games=200, seed=5)
    assert decisive > 10 and draws > 10


@pytest.mark.slow
@pytest.mark.parametrize(
    ("m", "n", "k", "gravity"),
    [(9, 9, 5, False), (15, 15, 5, False), (19, 19, 5, False), (8, 13, 6, False),
     (19, 5, 9, False), (9, 9, 5, True), (19, 19, 6, True), (6, 7, 4, True)],
)  # fmt: skip
def test_more_random_games_match_openspiel(m: int, n: int, k: int, gravity: bool) -> None:
    assert_same_playouts(MNK(m, n, k, gravity), num_games=500, seed=m + n + k)
