"""The search benchmark runs, counts simulations per board and prints its table; the
profile splits the search's time into parts (shares, not timed asserts)."""

from __future__ import annotations

import pytest
import torch

from rltransfer.bench.search import (
    format_rollout_table,
    format_search_table,
    profile_search,
    run_rollout_bench,
    run_search_bench,
)
from rltransfer.games import make
from rltransfer.search.evaluators import rollout


def test_search_bench_rows_and_table() -> None:
    games = (("tic_tac_toe", "tic_tac_toe", {}),)
    rows = run_search_bench(games, batches=(1, 4), simulations=3)
    assert [(r.label, r.batch, r.simulations) for r in rows] == [
        ("tic_tac_toe", 1, 3),
        ("tic_tac_toe", 4, 3),
    ]
    for r in rows:
        assert abs(r.sims_per_s * r.seconds - r.batch * r.simulations) < 1e-6
        assert r.openspiel_ms_per_move is not None and r.openspiel_ms_per_move > 0
    table = format_search_table(rows).splitlines()
    assert table[0].split()[:4] == ["game", "device", "batch", "S"]
    assert table[2].split()[:4] == ["tic_tac_toe", "cpu", "1", "3"]


def test_profile_shares() -> None:
    shares = dict(profile_search(make("tic_tac_toe"), batch=2, simulations=4))
    assert shares["search, all"] == 1.0
    assert 0 < shares["  leaf rollouts"] < 1 and 0 < shares["    rules: _apply"] < 1


def test_rollout_bench_rows_and_table() -> None:
    games = (
        ("tic_tac_toe", "tic_tac_toe", {}),
        ("connect_four", "connect_four", {}),
        ("othello", "othello", {"size": 6}),
    )
    rows = run_rollout_bench(games, batches=(1, 4))
    assert [(r.label, r.batch, r.shortcut) for r in rows] == [
        ("tic_tac_toe", 1, "fill"), ("tic_tac_toe", 4, "fill"),
        ("connect_four", 1, "own loop"), ("connect_four", 4, "own loop"),
        ("othello", 1, None), ("othello", 4, None),
    ]  # fmt: skip
    assert all(r.stepped_ms > 0 for r in rows)
    assert all(r.shortcut_ms is not None and r.shortcut_ms > 0 for r in rows[:4])
    assert all(r.shortcut_ms is None and r.speedup is None for r in rows[4:])  # stepped only
    table = format_rollout_table(rows).splitlines()
    assert table[0].split() == ["game", "device", "batch", "stepped", "ms", "shortcut",
                                "shortcut", "ms", "speed-up"]  # fmt: skip
    assert table[2].split()[4] == "fill" and table[4].split()[4:6] == ["own", "loop"]
    assert table[-1].split()[-3:] == ["-", "-", "-"]


@pytest.mark.parametrize(
    ("game_id", "options"), [("tic_tac_toe", {}), ("hex", {"size": 5}), ("connect_four", {})]
)
def test_shortcut_and_stepped_rollouts_agree_in_distribution(
    game_id: str, options: dict[str, int]
) -> None:
    """4,096 random playouts, stepped and by the game's shortcut (a fill; Connect Four's
    own loop; other random numbers), from the start and from a position with player 1 to
    move: the shares of wins, draws and losses agree within 0.04 (about 4 standard errors
    of their difference); a fill that gave the wrong player the first move would swap
    tic-tac-toe's 0.58 and 0.29 (Connect Four's 0.55 and 0.44). The shares hardly see a
    biased choice of moves (picking Connect Four's leftmost open column half the time
    moves them by 0.025): ``tests/test_games_playout.py`` checks its column choice over
    every pattern of open columns."""
    game = make(game_id, **options)
    start, keys = game.init(4096), torch.arange(4096)
    first = game.legal_mask(start).to(torch.uint8).argmax(dim=1)  # a corner; 1 to move
    second = game.step(start, first)
    # player 0's wins in tic-tac-toe at random: 0.585 from the start, 0.608 after a corner
    # (200,000 stepped playouts each)
    for state, wins in ((start, 0.585), (second, 0.608)):
        shares = []
        for shortcuts in (False, True):
            result = rollout(game, state, keys, 0, shortcuts=shortcuts)
            shares.append(torch.stack([(result == v).float().mean() for v in (1.0, 0.0, -1.0)]))
        assert float((shares[0] - shares[1]).abs().max()) < 0.04, shares
        if game_id == "tic_tac_toe":
            assert abs(float(shares[1][0]) - wins) < 0.03, shares
