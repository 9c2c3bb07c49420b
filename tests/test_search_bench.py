"""The search benchmark runs, counts simulations per board and prints its table; the
profile splits the search's time into parts (shares, not timed asserts)."""

from __future__ import annotations

from rltransfer.bench.search import format_search_table, profile_search, run_search_bench
from rltransfer.games import make


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
