"""Random-play throughput of the batched games, beside one-board reference loops.

A "step" is one move on one board: ``batch`` boards stepped once count ``batch`` steps.
Every figure includes drawing a uniform random legal move and resetting finished boards,
i.e. everything a rollout does except the network. References: PettingZoo's
``connect_four_v3`` / ``tictactoe_v3`` and OpenSpiel's games, each stepped in its usual
Python loop over one board, in the same process and run.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from rltransfer.games import make
from rltransfer.games.core import BoardGame, State
from rltransfer.games.mnk import MNK

#: (label, game id, options) of the benchmarked configurations.
DEFAULT_GAMES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("tic_tac_toe", "tic_tac_toe", {}),
    ("connect_four", "connect_four", {}),
    ("othello 6x6", "othello", {"size": 6}),
    ("othello 8x8", "othello", {"size": 8}),
    ("hex 7x7", "hex", {"size": 7}),
    ("hex 11x11", "hex", {"size": 11}),
    ("gomoku 9x9", "gomoku", {"size": 9}),
    ("gomoku 15x15", "gomoku", {"size": 15}),
    # the m,n,k-game as each of the three games above that it generalises
    ("mnk 3,3,3", "mnk", {"m": 3, "n": 3, "k": 3}),
    ("mnk 6,7,4 gravity", "mnk", {"m": 6, "n": 7, "k": 4, "gravity": True}),
    ("mnk 15,15,5", "mnk", {"m": 15, "n": 15, "k": 5}),
)
CPU_BATCHES = (1024, 4096, 16384, 65536)
CUDA_BATCHES = tuple(2**k for k in range(14, 21, 2))


@dataclasses.dataclass
class Row:
    label: str
    impl: str
    device: str
    threads: int
    batch: int
    steps_per_s: float
    reference: dict[str, float] = dataclasses.field(default_factory=dict)


def _play_fn(game: BoardGame) -> Callable[[State, torch.Generator], State]:
    def play(state: State, gen: torch.Generator) -> State:
        state = game.step(state, game.random_action(state, gen))
        return game.reset_where(state, state.terminated, gen)  # as the collector resets

    return play


def time_game(
    game: BoardGame, batch: int, device: torch.device, seconds: float, compile: bool = False
) -> float:
    """Random-play steps per second of ``game`` at ``batch`` boards on ``device``."""
    gen = torch.Generator(device=device).manual_seed(0)
    state = game.init(batch, device=device)
    play = _play_fn(game)
    if compile:
        play = torch.compile(play, dynamic=False)
    for _ in range(5):  # warm-up (and compilation)
        state = play(state, gen)
    _sync(device)
    plies, start = 0, time.perf_counter()
    while True:
        for _ in range(10):
            state = play(state, gen)
        plies += 10
        _sync(device)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return plies * batch / elapsed


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _pettingzoo_envs() -> dict[str, Callable[[], Any]]:
    """PettingZoo's versions of our games (env constructors); an ``ImportError`` where its
    classic envs do not import (they need ``pygame``)."""
    from pettingzoo.classic import connect_four_v3, tictactoe_v3

    return {"connect_four": connect_four_v3.env, "tic_tac_toe": tictactoe_v3.env}


def _pyspiel() -> Any:
    """OpenSpiel's Python module; an ``ImportError`` where it is not installed."""
    import pyspiel

    return pyspiel


#: The reference columns: the table's header, how to import the reference, how to install it.
REFERENCES: dict[str, tuple[str, Callable[[], Any], str]] = {
    "pettingzoo": ("x PettingZoo", _pettingzoo_envs, 'pip install "rltransfer[outside]"'),
    "openspiel": ("x OpenSpiel", _pyspiel, "pip install open_spiel"),
}


def missing_references() -> dict[str, str]:
    """The reference loops that cannot run here: ``{column: why}``, naming the package
    that fails to import and how to install it (``{}`` when both run)."""
    missing = {}
    for column, load, install in REFERENCES.values():
        try:
            load()
        except ImportError as e:
            missing[column] = f"no module {e.name or e}; {install}"
    return missing


def time_pettingzoo(game_id: str, seconds: float) -> float | None:
    """Steps per second of PettingZoo's own version of ``game_id`` in a one-board loop;
    ``None`` where PettingZoo has none or cannot be imported (see :func:`missing_references`)."""
    try:
        envs = _pettingzoo_envs()
    except ImportError:
        return None
    if game_id not in envs:
        return None
    env = envs[game_id]()
    rng = random.Random(0)
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            if any(env.terminations.values()):
                env.reset()
            mask = env.observe(env.agent_selection)["action_mask"]
            env.step(rng.choice(mask.nonzero()[0].tolist()))
        steps += 100
    return steps / (time.perf_counter() - start)


def openspiel_version(game: BoardGame) -> tuple[str, dict[str, Any]] | None:
    """OpenSpiel's name and parameters for the same game as ``game``; ``None`` where it has
    none. Its ``othello`` is 8x8 only; its ``mnk`` calls the width ``m`` and has no gravity,
    and its ``connect_four`` takes any shape, so an m,n,k-game with gravity is that."""
    size = getattr(game, "size", None)
    if game.id in ("tic_tac_toe", "connect_four") or (game.id == "othello" and size == 8):
        return game.id, {}
    if game.id in ("hex", "gomoku"):
        return game.id, {"board_size" if game.id == "hex" else "size": size}
    if isinstance(game, MNK) and game.gravity:
        return "connect_four", {"rows": game.m, "columns": game.n, "x_in_row": game.k}
    if isinstance(game, MNK):
        return "mnk", {"m": game.n, "n": game.m, "k": game.k}
    return None


def time_openspiel(game: BoardGame, seconds: float) -> float | None:
    """Steps per second of OpenSpiel's version of ``game`` in its usual Python loop;
    ``None`` where OpenSpiel has none or cannot be imported (see :func:`missing_references`)."""
    version = openspiel_version(game)
    try:
        pyspiel = _pyspiel()
    except ImportError:
        return None
    if version is None:
        return None
    spiel = pyspiel.load_game(*version)
    rng = random.Random(0)
    state, steps, start = spiel.new_initial_state(), 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            if state.is_terminal():
                state = spiel.new_initial_state()
            state.apply_action(rng.choice(state.legal_actions()))
        steps += 100
    return steps / (time.perf_counter() - start)


def run_bench(
    games: Sequence[tuple[str, str, dict[str, Any]]] = DEFAULT_GAMES,
    batches: Sequence[int] | None = None,
    devices: Sequence[str] = ("cpu", "cuda"),
    threads: Sequence[int] = (1,),
    seconds: float = 0.5,
    compile: bool = False,
    references: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[Row]:
    """Measure every (game, device, threads, batch); returns the table rows."""
    rows: list[Row] = []
    say = progress or (lambda msg: None)
    old_threads = torch.get_num_threads()
    try:
        for label, game_id, options in games:
            game = make(game_id, **options)
            refs: dict[str, float] = {}
            if references:
                torch.set_num_threads(1)
                say(f"{label}: reference one-board loops")
                measured = {
                    "pettingzoo": time_pettingzoo(game_id, seconds),
                    "openspiel": time_openspiel(game, seconds),
                }
                for impl, sps in measured.items():
                    if sps is not None:
                        refs[impl] = sps
                        rows.append(Row(label, f"{impl} (1-board loop)", "cpu", 1, 1, sps))
            for dev in devices:
                if dev == "cuda" and not torch.cuda.is_available():
                    continue
                device = torch.device(dev)
                dev_threads = threads if device.type == "cpu" else threads[:1]
                for n_threads in dev_threads:
                    torch.set_num_threads(n_threads)
                    sizes = batches or (CPU_BATCHES if device.type == "cpu" else CUDA_BATCHES)
                    for batch in sizes:
                        say(f"{label}: {dev} batch {batch} threads {n_threads}")
                        sps = time_game(game, batch, device, seconds, compile=compile)
                        impl = "rltransfer" + (" compiled" if compile else "")
                        rows.append(Row(label, impl, dev, n_threads, batch, sps, refs))
    finally:
        torch.set_num_threads(old_threads)
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """A plain-text table; ratios are against the references measured in the same run."""
    header = [
        "game",
        "implementation",
        "device",
        "threads",
        "batch",
        "steps/s",
        *(column for column, _, _ in REFERENCES.values()),
    ]
    lines: list[list[str]] = [header]
    for r in rows:
        ratio = [
            f"{r.steps_per_s / r.reference[k]:,.1f}x" if k in r.reference else ""
            for k in REFERENCES
        ]
        lines.append(
            [
                r.label,
                r.impl,
                r.device,
                str(r.threads),
                f"{r.batch:,}",
                f"{r.steps_per_s:,.0f}",
                *ratio,
            ]
        )
    return text_table(lines, left=3)


def text_table(lines: Sequence[Sequence[str]], left: int) -> str:
    """Rows of cells (the first row the header) as aligned text: the first ``left``
    columns left-aligned, the rest right-aligned, a rule under the header."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = []
    for j, line in enumerate(lines):
        cells = enumerate(zip(line, widths, strict=True))
        out.append("  ".join(c.rjust(w) if i >= left else c.ljust(w) for i, (c, w) in cells))
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
