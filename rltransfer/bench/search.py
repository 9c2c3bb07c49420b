"""Search throughput: simulations per second of the batched MCTS at several batch sizes,
beside the time per move of one board searched at a time, and where the time goes.

A *simulation* is one descent, expansion, leaf evaluation and backup in one tree; a batch
of N boards searched with S simulations counts N * S. Every figure is the ``mcts:S``
setting (UCT, c = 2, one random rollout per leaf, the solver), from the start position,
where rollouts are longest. The reference is OpenSpiel's ``MCTSBot`` with the same
settings (``max_simulations = S + 1``, see ``scripts/calibrate_mcts.py``) on one board.

    python -m rltransfer.bench.search                       # the table
    python -m rltransfer.bench.search --profile connect_four
    python -m rltransfer.bench.search --rollouts            # stepped against shortcuts

``--rollouts`` times one random rollout of every board from the start position, played
move by move with the game's ``step`` and by the shortcut the search takes where the game
offers one: a fill of the board (``Game.fill_result``, :mod:`rltransfer.games.fill`) or
the game's own playout loop (``Game.playout_result``: Connect Four's bitboards). The start
is where stepped rollouts are longest and a fill costs what it costs anywhere, so the
ratio is the largest there; whole searches (the table) measure the gain at the search's
own leaves.
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
from rltransfer.search.evaluators import rollout, rollout_shortcut

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


#: (label, game id, options) of the rollout benchmark: the games whose rollouts are fills,
#: and Connect Four, which plays them in its own loop.
ROLLOUT_GAMES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("tic_tac_toe", "tic_tac_toe", {}),
    ("connect_four", "connect_four", {}),
    ("hex 7x7", "hex", {"size": 7}),
    ("hex 11x11", "hex", {"size": 11}),
    ("gomoku 9x9", "gomoku", {"size": 9}),
    ("gomoku 15x15", "gomoku", {"size": 15}),
    ("mnk 6,7,4", "mnk", {"m": 6, "n": 7, "k": 4}),
)


@dataclasses.dataclass
class RolloutRow:
    label: str
    device: str
    batch: int
    stepped_ms: float  # one rollout of every board, move by move
    shortcut: str | None  # "fill", "own loop", or None where the game has neither
    shortcut_ms: float | None  # the same rollouts by the shortcut

    @property
    def speedup(self) -> float | None:
        return None if self.shortcut_ms is None else self.stepped_ms / self.shortcut_ms


def time_rollouts(
    game: BoardGame, batch: int, device: torch.device, shortcuts: bool, repeats: int = 5
) -> float:
    """Seconds of one rollout of ``batch`` start positions (best of ``repeats``: the
    machine's noise only ever adds time)."""
    state = game.init(batch, device=device)
    keys = torch.arange(batch, device=device)
    rollout(game, state, keys, 0, shortcuts=shortcuts).cpu()  # warm-up
    best = float("inf")
    for draw in range(repeats):
        start = time.perf_counter()
        rollout(game, state, keys, draw + 1, shortcuts=shortcuts).cpu()  # .cpu(): waits
        best = min(best, time.perf_counter() - start)
    return best


def run_rollout_bench(
    games: Sequence[tuple[str, str, dict[str, Any]]] = ROLLOUT_GAMES,
    batches: Sequence[int] = BATCHES,
    device: str = "cpu",
) -> list[RolloutRow]:
    """One row per (game, batch): rollouts stepped, and by the game's shortcut where it
    has one."""
    rows = []
    dev = torch.device(device)
    for label, game_id, options in games:
        game = make(game_id, **options)
        probe = game.init(1, device=dev)
        found = rollout_shortcut(game, probe, torch.zeros(1, dtype=torch.int64, device=dev))
        shortcut = None if found is None else found[0]
        for batch in batches:
            stepped = time_rollouts(game, batch, dev, shortcuts=False)
            fast = time_rollouts(game, batch, dev, shortcuts=True) if shortcut else None
            rows.append(
                RolloutRow(label, device, batch, 1e3 * stepped, shortcut,
                           None if fast is None else 1e3 * fast)
            )  # fmt: skip
    return rows


def format_rollout_table(rows: Sequence[RolloutRow]) -> str:
    lines = [["game", "device", "batch", "stepped ms", "shortcut", "shortcut ms", "speed-up"]]
    for r in rows:
        fast = "-" if r.shortcut_ms is None else f"{r.shortcut_ms:,.2f}"
        speedup = "-" if r.speedup is None else f"{r.speedup:,.1f}x"
        lines.append([r.label, r.device, f"{r.batch:,}", f"{r.stepped_ms:,.2f}",
                      r.shortcut or "-", fast, speedup])  # fmt: skip
    return text_table(lines, left=2)


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
    p.add_argument(
        "--rollouts",
        action="store_true",
        help="rollouts: stepped against the shortcuts (fills, own loops)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.rollouts:
        print(format_rollout_table(run_rollout_bench(batches=args.batch, device=args.device)))
        return 0
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
