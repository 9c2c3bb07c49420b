"""Commands that describe and measure: ``games``, ``suites``, ``bench``, ``bench-train``."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rltransfer.games import EnvOption
    from rltransfer.specs.config import TrainConfig
from rltransfer.cli.common import (
    _bench_devices,
    _print_rows,
    _progress,
    _torchrun,
    _without_nproc,
)


def _cmd_games(args: argparse.Namespace) -> int:
    from rltransfer.games import available_envs, available_games, env_options, make, native_class
    from rltransfer.games.outside import ADAPTER_OPTIONS, env_planes

    print("Games (GAME, or GAME:key=value,... with options, e.g. othello:size=6):")
    for game_id in available_games():
        game, options = make(game_id), native_class(game_id).options
        shape = f"{game.height}x{game.width} board, {game.num_actions} actions"
        print(
            f"  {game_id:26s} {shape}, {game.num_planes} planes ({', '.join(game.planes)})"
            + ("" if options else "; no options")
        )
        for name, o in options.items():
            _print_option(name, type(o.choices[0]), o.default, _allowed(o.choices), o.help)
    print("  every game also takes")
    _print_env_options({"illegal_action": ADAPTER_OPTIONS["illegal_action"]})
    print("\nPettingZoo two-player board envs as games, on the CPU (pettingzoo:ENV:key=value,...):")
    for env in available_envs():
        own = {k: o for k, o in env_options(env).items() if k not in ADAPTER_OPTIONS}
        planes = ", ".join(env_planes(env)) or "unknown"
        print(f"  {'pettingzoo:' + env:26s} planes ({planes})" + ("" if own else "; no options"))
        _print_env_options(own)
    print("  every env also takes")
    _print_env_options(ADAPTER_OPTIONS)
    return 0


def _print_env_options(options: Mapping[str, EnvOption]) -> None:
    for name, o in options.items():
        allowed = _allowed(o.choices, o.low, o.high, o.kind)
        _print_option(name, o.kind, o.default, allowed, o.help)


def _print_option(name: str, kind: type, default: Any, allowed: str, help: str) -> None:
    """One option as a line: ``size  int, default 9, 7..19: board side``."""
    words = f"{kind.__name__}, default {default!r}, {allowed}"
    print(f"      {name:14s} {words}: {help}" if help else f"      {name:14s} {words}")


def _allowed(
    choices: Sequence[Any], low: float | None = None, high: float | None = None, kind: type = int
) -> str:
    """An option's allowed values in a few words: ``7..19``, ``one of 6, 8``, ``>= 0``."""
    ints = all(type(c) is int for c in choices)
    if ints and len(choices) > 2 and list(choices) == list(range(choices[0], choices[-1] + 1)):
        low, high, choices = choices[0], choices[-1], ()  # a run of ints
    if choices:
        return "one of " + ", ".join(repr(c) for c in choices)
    if low is not None and high is not None:
        return f"{low}..{high}"
    if low is not None or high is not None:
        return f">= {low}" if low is not None else f"<= {high}"
    return "any finite float" if kind is float else f"any {kind.__name__}"


def _cmd_suites(args: argparse.Namespace) -> int:
    from rltransfer.specs.config import ConfigError, load_suite
    from rltransfer.specs.presets import available_specs

    for name in available_specs("envs"):
        try:
            suite = load_suite(name)
        except ConfigError as e:  # e.g. a PettingZoo suite without its extra installed
            print(f"{name:12s} (cannot load: {e})")
            continue
        games = ", ".join(f"{g.name} x{g.num_envs}" for g in suite.games)
        print(f"{name:12s} {suite.description}\n{'':12s} {games}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from rltransfer.bench.games import DEFAULT_GAMES, format_table, missing_references, run_bench
    from rltransfer.games import native_class, parse_game_spec

    if args.games:
        games = []
        for spec in args.games:
            game_id, options = parse_game_spec(spec)
            native_class(game_id)  # an unknown game: UnknownGameError, one line from main
            games.append((spec, game_id, options))
    else:
        games = list(DEFAULT_GAMES)
    devices = _bench_devices(args.device)
    with _progress("bench", "run", args.quiet) as progress:
        rows = run_bench(
            games,
            batches=args.batch,
            devices=devices,
            threads=args.threads,
            seconds=args.seconds,
            compile=args.compile,
            references=not args.no_reference,
            progress=progress,
        )
    _print_rows("random-play moves per second", format_table(rows), rows, args.json)
    missing = {} if args.no_reference else missing_references()
    if missing:
        print("skipped columns: " + "; ".join(f"{c} ({why})" for c, why in missing.items()))
    return 0


def _cmd_bench_train(args: argparse.Namespace) -> int:
    from rltransfer.bench.loop import format_loop_table, format_scaling, run_loop_bench
    from rltransfer.learn.distributed import Ranks
    from rltransfer.specs.config import make_train_config

    devices = _bench_devices(args.device)

    def config(scale: float, device: str, threads: int, compile: str | None) -> TrainConfig:
        """``compile`` None: the preset's mode, as ``--set`` leaves it."""
        mode = [] if compile is None else [f"train.compile={compile}"]
        return make_train_config(
            suite=args.suite, agent=args.agent, overrides=[*args.set, *mode], name="bench",
            num_envs_scale=scale, device=device, threads=threads,
        )  # fmt: skip

    # a bad suite, agent, --set or mode fails before any timing
    modes = args.compile or [config(args.scale[0], "cpu", 1, None).train.compile]
    for mode in modes:
        config(args.scale[0], "cpu", 1, mode)
    ranks = Ranks.from_env()
    with _progress("bench-train", "config", args.quiet or not ranks.is_main) as progress:
        rows = run_loop_bench(
            config, args.scale, devices, args.threads, args.iterations, args.warmup, progress,
            modes,
        )  # fmt: skip
    title = (
        "training-loop throughput (dec = learner decisions, moves = plies of both sides; "
        f"mean of {args.iterations} iterations)"
    )
    if not ranks.distributed:
        _print_rows(title + ", 1 process", format_loop_table(rows), rows, args.json)
        if args.nproc > 1:  # the same grid in nproc processes, scaled against this one
            baseline = json.dumps([r.loop_decisions_per_s for r in rows])
            os.environ[_BASELINE] = baseline
            return _torchrun(args.nproc, _without_nproc(args.argv))
        return 0
    everyone = ranks.gather(rows)
    if everyone is not None:
        flat = [r for per_rank in everyone for r in per_rank]
        _print_rows(f"{title}, each rank's share", format_loop_table(flat), flat, args.json)
        print(format_scaling(everyone, json.loads(os.environ.get(_BASELINE, "[]"))))
    ranks.close()
    return 0


#: The one-process rates a multi-process ``bench-train`` compares against (set by the
#: launching process for its torchrun children).
_BASELINE = "RLTRANSFER_BENCH_BASELINE"
