"""Search throughput: simulations per second of the batched MCTS at several batch sizes,
beside the time per move of one board searched at a time, and where the time goes.

A *simulation* is one descent, expansion, leaf evaluation and backup in one tree; a batch
of N boards searched with S simulations counts N * S. Every figure is the ``mcts:S``
setting (UCT, c = 2, one random rollout per leaf, the solver), from the start position,
where rollouts are longest. The reference is OpenSpiel's ``MCTSBot`` with the same
settings (``max_simulations = S + 1``, see ``scripts/calibrate_mcts.py``) on one board.

    python -m rltransfer.bench.search                       # the table
    python -m rltransfer.bench.search --profile connect_four
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import pstats
import time
from collections.abc import Sequence
from typing import Any

import torch

from rltransfer.bench.games import openspiel_version, text_table
from rltransfer.games import make
from rltransfer.games.core import BoardGame
from rltransfer.search import MCTSPlayer, RolloutEvaluator, SearchConfig, search

#: (label, game id, options) of the benchmarked games.
DEFAULT_GAMES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("connect_four", "connect_four", {}),
    ("hex 7x7", "hex", {"size": 7}),
)
BATCHES = (1, 16, 256)


@dataclasses.dataclass
class SearchRow:
    label: str
    device: str
    batch: int
    simulations: int
    seconds: float  # one search of the whole batch
    sims_per_s: float  # batch * simulations / seconds
    ms_per_move: float  # seconds / batch: a board's move, amortised over the batch
    openspiel_ms_per_move: float | None  # OpenSpiel's MCTSBot, one board, same settings


def time_search(
    game: BoardGame, batch: int, simulations: int, device: torch.device, repeats: int = 1
) -> float:
    """Seconds of one ``mcts:S`` search of ``batch`` start positions (best of ``repeats``)."""
    config = MCTSPlayer(simulations).config
    state = game.init(batch, device=device)
    search(game, state, RolloutEvaluator(), SearchConfig(simulations=2))  # warm-up
    best = float("inf")
    for k in range(repeats):
        gen = torch.Generator(device=device).manual_seed(k)
        start = time.perf_counter()
        result = search(game, state, RolloutEvaluator(), config, gen)
        result.action.cpu()  # waits for the device
        best = min(best, time.perf_counter() - start)
    return best


def time_openspiel_search(game: BoardGame, simulations: int, moves: int = 3) -> float | None:
    """Seconds per move of OpenSpiel's ``MCTSBot`` with the ``mcts:S`` settings on the
    start position (mean of ``moves`` searches); ``None`` without OpenSpiel or its game."""
    version = openspiel_version(game)
    try:
        import numpy as np
        import pyspiel
        from open_spiel.python.algorithms import mcts
    except ImportError:
        return None
    if version is None:
        return None
    spiel = pyspiel.load_game(*version)
    rng = np.random.RandomState(0)
    bot = mcts.MCTSBot(
        spiel, uct_c=2.0, max_simulations=simulations + 1, solve=True, random_state=rng,
        evaluator=mcts.RandomRolloutEvaluator(n_rollouts=1, random_state=rng),
    )  # fmt: skip
    start = time.perf_counter()
    for _ in range(moves):
        bot.step(spiel.new_initial_state())
    return (time.perf_counter() - start) / moves


def run_search_bench(
    games: Sequence[tuple[str, str, dict[str, Any]]] = DEFAULT_GAMES,
    batches: Sequence[int] = BATCHES,
    simulations: int = 100,
    device: str = "cpu",
    references: bool = True,
) -> list[SearchRow]:
    """One row per (game, batch)."""
    rows = []
    dev = torch.device(device)
    for label, game_id, options in games:
        game = make(game_id, **options)
        ref = time_openspiel_search(game, simulations) if references else None
        for batch in batches:
            seconds = time_search(game, batch, simulations, dev)
            rows.append(
                SearchRow(
                    label, device, batch, simulations, seconds, batch * simulations / seconds,
                    1e3 * seconds / batch, None if ref is None else 1e3 * ref,
                )
            )  # fmt: skip
    return rows


def format_search_table(rows: Sequence[SearchRow]) -> str:
    lines = [["game", "device", "batch", "S", "search s", "sims/s", "ms/move", "OpenSpiel ms/move"]]
    for r in rows:
        ref = "" if r.openspiel_ms_per_move is None else f"{r.openspiel_ms_per_move:,.1f}"
        lines.append(
            [r.label, r.device, f"{r.batch:,}", str(r.simulations), f"{r.seconds:.2f}",
             f"{r.sims_per_s:,.0f}", f"{r.ms_per_move:,.2f}", ref]
        )  # fmt: skip
    return text_table(lines, left=2)


#: The parts a profile reports: (label, file suffix, function name), by cumulative time.
_PARTS = (
    ("search, all", "search/mcts.py", "search"),
    ("  leaf rollouts", "search/evaluators.py", "rollout"),
    ("  game.step (rollouts + expansion)", "games/core.py", "step"),
    ("    rules: _apply", "", "_apply"),
    ("    rules: _is_legal", "", "_is_legal"),
    ("    template: State.where", "games/core.py", "where"),
    ("  game.legal_mask", "games/core.py", "legal_mask"),
    ("  random moves (choose_legal)", "search/noise.py", "choose_legal"),
    ("  random bits (hash)", "search/noise.py", "bits"),
    ("  descent (selection)", "search/mcts.py", "_descend"),
    ("  expansion (add_node)", "search/tree.py", "add_node"),
    ("  backup", "search/tree.py", "backup"),
    ("  solver", "search/tree.py", "solve"),
)


def profile_search(game: BoardGame, batch: int, simulations: int) -> list[tuple[str, float]]:
    """(part, share of the search's time) under cProfile (which inflates Python-heavy
    parts a little; shares, not absolute times, are the point). Parts nest by indent; a
    function called from several places (``step``) counts all its calls."""
    state = game.init(batch)
    config = MCTSPlayer(simulations).config
    search(game, state, RolloutEvaluator(), SearchConfig(simulations=2))
    profile = cProfile.Profile()
    profile.enable()
    search(game, state, RolloutEvaluator(), config, torch.Generator().manual_seed(0))
    profile.disable()
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    # pstats keeps (file, line, name) -> (calls, primitive calls, own time, cumulative, ...)

    def cumulative(suffix: str, name: str) -> float:
        return sum(v[3] for (f, _, n), v in stats.items() if n == name and f.endswith(suffix))

    total = cumulative("search/mcts.py", "search")
    return [(label, cumulative(suffix, name) / total) for label, suffix, name in _PARTS]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--simulations", type=int, default=100)
    p.add_argument("--batch", type=int, nargs="+", default=list(BATCHES))
    p.add_argument("--device", default="cpu")
    p.add_argument("--profile", metavar="GAME", help="profile one game (connect_four, hex)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.profile:
        label, game_id, options = next(g for g in DEFAULT_GAMES if g[1] == args.profile)
        for batch in args.batch:
            print(f"\n{label}, batch {batch}, S = {args.simulations} (share of search time)")
            for part, share in profile_search(make(game_id, **options), batch, args.simulations):
                print(f"  {part:<40} {100 * share:5.1f}%")
        return 0
    rows = run_search_bench(batches=args.batch, simulations=args.simulations, device=args.device)
    print(format_search_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
