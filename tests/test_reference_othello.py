"""Othello against OpenSpiel's implementation, ply by ply, over many random playouts.

All playouts run as one batch in our engine; beside it one OpenSpiel state per board steps
in a Python loop. At every ply the two must agree on the board, the player to move, the
legal moves (passes included) and whether the game is over; at the end on the winner.

OpenSpiel's conventions (``pyspiel.load_game("othello")``, 8x8 only) line up with ours:
player 0 is Black (``x``) and moves first, White holds d4 and e5 at the start, cell actions
are ``r * 8 + c`` from a1 in the top-left, and the pass is action 64, legal only when no
cell move is. ``observation_tensor(0)`` is three planes [empty, Black, White], so its
argmax is our ``board`` encoding (0 empty, 1 Black, 2 White).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rltransfer.games.othello import Othello

pyspiel = pytest.importorskip("pyspiel")


def play_both(num_games: int, seed: int) -> dict[str, int]:
    """Random playouts in both engines; asserts agreement, returns outcome counts."""
    game = Othello(8)
    reference = pyspiel.load_game("othello")
    ref_states = [reference.new_initial_state() for _ in range(num_games)]
    gen = torch.Generator().manual_seed(seed)
    state = game.init(num_games)
    passes = 0
    for ply in range(game.max_moves + 1):
        live = (~state.terminated).tolist()
        mask = game.legal_mask(state).numpy()
        board = game.board(state).numpy()
        player = state.current_player.tolist()
        for i, ref in enumerate(ref_states):
            assert ref.is_terminal() != live[i], f"board {i}: terminal differs at ply {ply}"
            if not live[i]:
                continue
            where = f"board {i}, ply {ply}:\n{game.render_text(state, i)}\n{ref}"
            assert ref.current_player() == player[i], where
            assert ref.legal_actions() == np.flatnonzero(mask[i]).tolist(), where
            ref_board = np.asarray(ref.observation_tensor(0)).reshape(3, 8, 8).argmax(0)
            assert (ref_board == board[i]).all(), where
        if not any(live):
            break
        action = game.random_action(state, gen)
        passes += int(((action == game.pass_action) & ~state.terminated).sum())
        for i, a in enumerate(action.tolist()):
            if live[i]:
                ref_states[i].apply_action(a)
        before = state.terminated
        state = game.step(state, action)
        ended = state.terminated & ~before
        for i in ended.nonzero()[:, 0].tolist():
            assert ref_states[i].returns() == state.rewards[i].tolist(), f"board {i} result"
    assert state.terminated.all(), "a game ran past max_moves"
    return {"passes": passes, "games": num_games}


def test_matches_openspiel_on_1000_random_playouts() -> None:
    counts = play_both(1000, seed=0)
    assert counts["passes"] > 0  # the sample does exercise forced passes


@pytest.mark.slow
def test_matches_openspiel_on_10000_random_playouts() -> None:
    play_both(10000, seed=1)
