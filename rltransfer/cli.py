"""The ``rltransfer`` command line (also ``python -m rltransfer``)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from rltransfer._version import __version__

if TYPE_CHECKING:
    from rltransfer.games import EnvOption
    from rltransfer.specs.config import TrainConfig


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


def _positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    return _int_at_least(text, 1)


def _non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    return _int_at_least(text, 0)


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
    return value


def _parse_ints(text: str) -> list[int]:
    """Comma-separated integers >= 1 (thread counts, batch sizes)."""
    values = [_positive_int(x) for x in text.split(",") if x.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    return values


def _parse_floats(text: str) -> list[float]:
    """Comma-separated finite numbers > 0 (board-count scales)."""
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers: {text!r}") from None
    if not values or not all(0 < v < float("inf") for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers > 0, got {text!r}")
    return values


def _bench_devices(device: str) -> list[str]:
    """The devices a benchmark's ``--device`` names; an error if it names absent CUDA."""
    if device == "cuda" and not torch.cuda.is_available():
        from rltransfer.specs.config import ConfigError

        raise ConfigError("--device cuda, but torch sees no CUDA device")
    return ["cpu", "cuda"] if device == "all" else [device]


@contextlib.contextmanager
def _progress(desc: str, unit: str, quiet: bool) -> Iterator[Callable[[str], None]]:
    """A progress bar for a benchmark; yields ``progress(msg)``: one more step, labelled."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit=unit, leave=False, disable=quiet)

    def progress(msg: str) -> None:
        bar.set_postfix_str(msg)
        bar.update()

    try:
        yield progress
    finally:
        bar.close()


def _print_rows(title: str, table: str, rows: Sequence[Any], json_path: str | None) -> None:
    """A benchmark's title line and table; its rows (dataclasses) as JSON if asked."""
    print(f"rltransfer {__version__}, torch {torch.__version__}: {title}")
    print(table)
    if json_path:
        with open(json_path, "w") as f:
            json.dump([dataclasses.asdict(r) for r in rows], f, indent=1)


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


def _cmd_train(args: argparse.Namespace) -> int:
    from rltransfer.learn.training import resume, train
    from rltransfer.specs.config import ConfigError, make_train_config

    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return _torchrun(args.nproc, _without_nproc(args.argv))
    if args.resume:
        fixed = [f"--{k}" for k in ("suite", "agent", "name", "overwrite") if getattr(args, k)]
        if fixed:
            raise ConfigError(
                f"{', '.join(fixed)}: not with --resume (a resumed run keeps its suite, agent "
                "and name); --steps, --device, --threads and some --set values may change"
            )
        extra = [f"train.seed={args.seed}"] if args.seed is not None else []
        resume(
            args.resume,
            quiet=args.quiet,
            overrides=[*args.set, *extra],
            total_steps=args.steps,
            device=args.device,
            threads=args.threads,
        )
        return 0
    cfg = make_train_config(
        suite=args.suite or "classic",
        agent=args.agent or "ppo_small",
        overrides=args.set,
        name=args.name or "",
        total_steps=args.steps,
        device=args.device,
        seed=args.seed,
        threads=args.threads,
    )
    train(cfg, args.run_dir, overwrite=args.overwrite, quiet=args.quiet)
    return 0


def _torchrun(nproc: int, argv: list[str]) -> int:
    """``rltransfer <argv>`` in ``nproc`` processes under ``torchrun`` on this node (its
    ``--standalone`` rendezvous); returns its exit status."""
    import subprocess

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={nproc}", "-m", "rltransfer", *argv]  # fmt: skip
    print(f"launching {nproc} processes: torchrun --standalone --nproc-per-node={nproc} "
          f"-m rltransfer {' '.join(argv)}", flush=True)  # fmt: skip
    return subprocess.call(command)


def _without_nproc(argv: list[str]) -> list[str]:
    """``argv`` less its ``--nproc N`` / ``--nproc=N``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def _cmd_eval(args: argparse.Namespace) -> int:
    from rltransfer.inference import load_policy
    from rltransfer.learn.training import resolve_device
    from rltransfer.play.evaluate import evaluate_against, format_results
    from rltransfer.play.players import players_for

    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    policy = load_policy(args.run, device)
    tasks = [policy.task(g) for g in args.game] if args.game else policy.games
    games = {task: policy.make_game(task) for task in tasks}
    # every opponent of every game resolved before the first game is played; without
    # --game, players that know other games only (perfect: tic-tac-toe) are left out
    opponents = {
        task: players_for(args.opponent, game, device, skip_unplayable=not args.game)
        for task, game in games.items()
    }
    gen = torch.Generator(device=device).manual_seed(args.seed)
    results = [
        result
        for task, game in games.items()
        for result in evaluate_against(
            game, _evaluated(policy.net, task, args.search, args.search_rule, args.argmax),
            opponents[task], args.games, gen, task=task, device=device,
            opening_plies=args.openings,
        ).values()
    ]  # fmt: skip
    how = (
        ("playing its most probable move" if args.argmax else "sampling its moves")
        if args.search is None
        else f"searching {args.search} simulations ({args.search_rule}) before each move"
    )
    if args.openings:
        how += f", from random {args.openings}-ply openings played from both seats"
    print(f"{policy.source}: the policy {how}")
    print(format_results(results))
    return 0


def _cmd_play(args: argparse.Namespace) -> int:
    from rltransfer.inference import load_policy
    from rltransfer.play.human import QuitGame, play_human
    from rltransfer.play.players import run_player
    from rltransfer.specs.config import ConfigError

    policy = load_policy(args.run)
    if args.game is None and len(policy.games) != 1:
        raise ConfigError(f"{args.run} plays {', '.join(policy.games)}: choose one with --game")
    game = policy.make_game(args.game or policy.games[0])
    agent = run_player(args.run, game, sample=False, simulations=args.search, name="rltransfer")
    try:
        play_human(game, agent, args.seat, generator=torch.Generator().manual_seed(args.seed))
    except QuitGame:
        print("\ngame left unfinished")
    return 0


def _cmd_ladder(args: argparse.Namespace) -> int:
    from rltransfer.games import make, parse_game_spec
    from rltransfer.learn.training import resolve_device
    from rltransfer.play import ladder as lad
    from rltransfer.specs.config import ConfigError

    if args.log and not args.checkpoints:
        raise ConfigError("--log writes the ratings of --checkpoints RUN: name the run")
    if args.games % 2:
        raise ConfigError(f"--games must be even (each opening from both seats), got {args.games}")
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    game_id, options = parse_game_spec(args.game)
    game = make(game_id, **options)
    history = lad.checkpoint_players(args.checkpoints) if args.checkpoints else {}
    names = {**{n: n for n in args.players}, **history}
    if len(names) != len(args.players) + len(history):
        raise ConfigError(f"a player is named twice: {args.players} {list(history)}")
    if len(names) < 2:
        raise ConfigError(f"a ladder needs at least two players, got {list(names)}")
    anchor = args.anchor if args.anchor is not None else next(iter(names), "")
    if anchor not in names:
        raise ConfigError(f"--anchor {anchor!r} is not one of the players: {', '.join(names)}")
    players = lad.ladder_players(game, names, device)  # all resolved before a game is played
    gen = torch.Generator(device=device).manual_seed(args.seed)
    pairs = len(players) * (len(players) - 1) // 2
    with _progress("ladder", "pairing", args.quiet) as progress:
        print(f"{args.game}: {len(players)} players, {pairs} pairings of {args.games} games")
        results = lad.round_robin(
            game, players, args.games, gen, device, opening_plies=args.openings,
            progress=progress,
        )  # fmt: skip
    ladder = lad.fit_ratings(
        results, anchor, prior_draws=args.prior_draws, game=args.game,
        opening_plies=args.openings,
    )  # fmt: skip
    print(lad.format_ladder(ladder))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(ladder.to_dict(), f, indent=1)
    if args.log:
        task = lad.run_task(args.checkpoints, game)
        where = lad.log_checkpoint_ratings(args.checkpoints, ladder, history, task)
        from rltransfer.runs.metrics import tensorboard_command

        print(f"ratings of the checkpoints written to {where}; look: {tensorboard_command(where)}")
    return 0


def _evaluated(net: Any, task: str, simulations: int | None, rule: str, argmax: bool) -> Any:
    """The player ``eval`` scores: the policy sampling its moves (``--argmax``: its most
    probable move), or with ``--search S`` the policy searching S simulations before each
    move (its prior and value)."""
    from rltransfer.play.players import PolicyPlayer
    from rltransfer.search import MAX_SIMULATIONS, SearchConfig, SearchPlayer

    if simulations is None:
        return PolicyPlayer(net, task, sample=not argmax)
    if simulations > MAX_SIMULATIONS:
        from rltransfer.specs.config import ConfigError

        raise ConfigError(f"--search takes 1..{MAX_SIMULATIONS:,} simulations, got {simulations}")
    config = SearchConfig(simulations=simulations, rule=rule)  # type: ignore[arg-type]
    return SearchPlayer(net, task, config, name=f"{task}+search:{simulations}")


def _cmd_bench_train(args: argparse.Namespace) -> int:
    from rltransfer.bench.loop import format_loop_table, format_scaling, run_loop_bench
    from rltransfer.learn.distributed import Ranks
    from rltransfer.specs.config import make_train_config

    devices = _bench_devices(args.device)

    def config(scale: float, device: str, threads: int) -> TrainConfig:
        return make_train_config(
            suite=args.suite, agent=args.agent, overrides=args.set, name="bench",
            num_envs_scale=scale, device=device, threads=threads,
        )  # fmt: skip

    config(args.scale[0], "cpu", 1)  # a bad suite, agent or --set fails before any timing
    ranks = Ranks.from_env()
    with _progress("bench-train", "config", args.quiet or not ranks.is_main) as progress:
        rows = run_loop_bench(
            config, args.scale, devices, args.threads, args.iterations, args.warmup, progress
        )
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


def _cmd_transfer(args: argparse.Namespace) -> int:
    from rltransfer.specs.config import ConfigError, make_train_config
    from rltransfer.transfer.experiment import resume_transfer, run_transfer

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(
            "a transfer experiment runs in one process; under torchrun use rltransfer train"
        )
    if args.resume:
        fixed = [o for o in ("source", "to", "name", "overwrite") if getattr(args, o)]
        if fixed:
            raise ConfigError(
                "--resume continues an experiment with its own settings; leave out "
                + ", ".join("--from" if o == "source" else f"--{o}" for o in fixed)
            )
        resume_transfer(args.resume, quiet=args.quiet)
        return 0
    if not (args.source and args.to):
        raise ConfigError("give --from RUN and --to GAME (or --resume EXPERIMENT)")

    preset = make_train_config(agent=args.agent, overrides=args.set).transfer
    given = {
        "mode": args.mode,
        "unfreeze_after": args.unfreeze_after,
        "trunk_lr_scale": args.trunk_lr_scale,
        "keep_heads": args.keep_heads or None,
        "stem_from": args.stem_from,
        "heads_from": args.heads_from,
        "reset_last": args.reset_last or None,
        "seeds": args.seeds,
        "baseline": args.baseline,
        "threshold": args.threshold,
        "opponent": args.opponent,
    }
    settings = dataclasses.replace(preset, **{k: v for k, v in given.items() if v is not None})
    run_transfer(
        args.source,
        args.to,
        settings,
        agent=args.agent,
        steps=args.steps,
        num_envs=args.num_envs,
        name=args.name or "",
        run_dir=args.run_dir,
        overrides=args.set,
        device=args.device,
        overwrite=args.overwrite,
        quiet=args.quiet,
        scratch_from=args.scratch_from,
    )
    return 0


def _cmd_baseline_sb3(args: argparse.Namespace) -> int:
    from rltransfer.interop.baseline import SB3Config, train_sb3

    torch.set_num_threads(args.threads)
    cfg = SB3Config(
        game=args.game,
        steps=args.steps,
        seed=args.seed,
        opponent=args.opponent,
        n_envs=args.n_envs,
        eval_games=args.eval_games,
        final_eval_games=args.final_eval_games,
        eval_interval=args.eval_interval,
        device=args.device,
    )
    train_sb3(cfg, args.run_dir, args.name or "", overwrite=args.overwrite, quiet=args.quiet)
    return 0


def _add_baseline(sub: argparse._SubParsersAction[_CommandParser]) -> None:
    p = sub.add_parser("baseline", help="train an outside library's agent, logged like our runs")
    algos = p.add_subparsers(dest="algo", required=True, metavar="ALGO")
    q = algos.add_parser("sb3", help="sb3-contrib MaskablePPO on one game vs a fixed opponent")
    q.add_argument("--game", required=True, metavar="GAME[:k=v,...]", help="e.g. othello:size=6")
    q.add_argument("--steps", type=int, required=True, help="agent decisions to train for")
    q.add_argument("--seed", type=int, default=0, help="seeds SB3, the boards and evaluation")
    q.add_argument(
        "--opponent",
        default="mix",
        help="training opponent: mix (our self-play mix, the default), random, greedy or a run",
    )
    q.add_argument("--n-envs", type=int, default=16, help="boards stepped together (default 16)")
    q.add_argument("--eval-games", type=int, default=200, help="games per opponent per eval")
    q.add_argument("--final-eval-games", type=int, default=1000, help="games for eval.json")
    q.add_argument(
        "--eval-interval", type=int, default=0, help="steps between evals (default: ~10 per run)"
    )
    q.add_argument("--name", help="run name (default sb3_<task>_<time>)")
    q.add_argument("--run-dir", default="runs", help="folder for runs (default runs)")
    q.add_argument("--device", default="cpu", help="SB3's device (default cpu)")
    q.add_argument("--threads", type=_positive_int, default=1, help="torch CPU threads (default 1)")
    q.add_argument("--overwrite", action="store_true", help="replace a run of the same name")
    q.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    q.set_defaults(fn=_cmd_baseline_sb3)


def _cmd_export(args: argparse.Namespace) -> int:
    from rltransfer.interop.export import DEFAULT_OPSET, export_onnx

    opset = DEFAULT_OPSET if args.opset is None else args.opset
    path = export_onnx(args.run, args.output, game=args.game, opset=opset)
    print(f"wrote {path}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from rltransfer.transfer.experiment import reanalyse

    path = reanalyse(args.experiment, opponent=args.opponent, threshold=args.threshold)
    print(path.read_text())
    return 0


def _add_bench_options(p: argparse.ArgumentParser) -> None:
    """The options both benchmarks take: CPU threads, JSON output, no progress bar."""
    p.add_argument(
        "--threads",
        type=_parse_ints,
        default=[1],
        metavar="N,N",
        help="torch CPU threads (default 1)",
    )
    p.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: an argument it does not know is its own error, shown with its
    own usage (argparse leaves leftovers to the top-level parser, whose usage says nothing
    about the subcommand's options)."""

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        parsed, extras = super().parse_known_args(*args, **kwargs)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rltransfer",
        description="Multitask and game-transfer RL on batched, PyTorch-native board games.",
    )
    parser.add_argument("--version", action="version", version=f"rltransfer {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_CommandParser
    )

    p = sub.add_parser("train", help="multitask self-play PPO on a suite of games")
    p.add_argument("--suite", help="suite name in envs/ or a .toml path (default classic)")
    p.add_argument("--agent", help="agent preset in agents/ or a .toml path (default ppo_small)")
    p.add_argument(
        "--steps", type=int, help="learner decisions to train for (default: the preset's)"
    )
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (default: the preset's, auto)")
    p.add_argument("--name", help="run name (default: <suite>_<agent>_<time>)")
    p.add_argument("--run-dir", default="runs", help="folder for runs (default runs)")
    p.add_argument("--seed", type=int, help="random seed (default: the preset's)")
    p.add_argument(
        "--threads", type=_positive_int, help="torch CPU threads (default: the preset's, 1)"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a preset value, e.g. --set ppo.learning_rate=3e-4 (repeatable)",
    )
    p.add_argument(
        "--resume",
        metavar="RUN",
        help="continue runs/<name> from its last checkpoint (--steps extends it; --device, "
        "--threads and optimiser or evaluation --set values may change)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing run of the same name"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument(
        "--nproc",
        type=_positive_int,
        default=1,
        metavar="N",
        help="train in N processes (torchrun, one node; each steps its own boards)",
    )
    p.set_defaults(fn=_cmd_train)

    p = sub.add_parser("transfer", help="carry a run's trunk to a new game; compare with scratch")
    p.add_argument("--from", dest="source", metavar="RUN", help="the source run")
    p.add_argument("--to", metavar="GAME[:k=v,...]", help="e.g. othello:size=8")
    p.add_argument(
        "--resume", metavar="EXPERIMENT", help="continue an interrupted transfer experiment"
    )
    p.add_argument("--mode", choices=["finetune", "freeze", "gradual"], help="default: preset's")
    p.add_argument("--unfreeze-after", type=int, metavar="ITERS", help="gradual: frozen iterations")
    p.add_argument("--trunk-lr-scale", type=float, metavar="X", help="trunk learning-rate factor")
    p.add_argument("--keep-heads", action="store_true", help="reuse the source game's stem/heads")
    p.add_argument(
        "--stem-from",
        nargs="?",
        const="auto",
        metavar="TASK",
        help="map a source task's stem to the target by plane meaning (no TASK: best match)",
    )
    p.add_argument(
        "--heads-from",
        nargs="?",
        const="auto",
        metavar="TASK",
        help="copy a source task's policy and value heads (no TASK: best plane match)",
    )
    p.add_argument(
        "--reset-last", action="store_true", help="re-initialise the last layer of copied heads"
    )
    p.add_argument("--steps", type=int, help="learner decisions per arm and seed")
    p.add_argument("--seeds", type=int, help="seeds per arm (paired between arms)")
    p.add_argument("--baseline", choices=["scratch", "none"], help="also train from scratch")
    p.add_argument("--scratch-from", metavar="EXPERIMENT", help="reuse an earlier scratch arm")
    p.add_argument(
        "--threshold",
        type=float,
        help="score for time-to-threshold (default: 90%% of scratch's final)",
    )
    p.add_argument(
        "--opponent", choices=["random", "greedy"], help="score against (default random)"
    )
    p.add_argument("--agent", default="ppo_small", help="agent preset (default ppo_small)")
    p.add_argument(
        "--num-envs", type=int, default=64, help="boards of the target game (default 64)"
    )
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--device", help="auto | cpu | cuda")
    p.add_argument("--name", help="experiment name (default transfer_<game>_<mode>)")
    p.add_argument("--run-dir", default="runs")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(fn=_cmd_transfer)

    p = sub.add_parser("report", help="recompute a transfer experiment's metrics (no training)")
    p.add_argument("experiment", help="runs/<name> of a transfer experiment")
    p.add_argument("--opponent", choices=["random", "greedy"], help="score against this one")
    p.add_argument("--threshold", type=float, help="score for time-to-threshold")
    p.set_defaults(fn=_cmd_report)

    p = sub.add_parser("eval", help="evaluate a trained run against random, greedy or another run")
    p.add_argument("run", help="a run folder (runs/<name>) or a checkpoint folder")
    p.add_argument("--game", nargs="+", help="games to evaluate (task names or ids; default all)")
    p.add_argument(
        "--opponent",
        nargs="+",
        default=["random", "greedy"],
        help="random, greedy, perfect (tic_tac_toe) or another run's path (default random greedy)",
    )
    p.add_argument(
        "--games",
        type=_positive_int,
        default=1000,
        help="games per game and opponent (default 1000)",
    )
    p.add_argument(
        "--search",
        type=_positive_int,
        metavar="S",
        help="the policy searches S simulations before each move (its prior and value)",
    )
    p.add_argument(
        "--search-rule", choices=["gumbel", "puct"], default="gumbel", help="default gumbel"
    )
    p.add_argument(
        "--argmax", action="store_true", help="play the most probable move (default: sample)"
    )
    p.add_argument(
        "--openings",
        type=_non_negative_int,
        default=0,
        metavar="PLIES",
        help="start from random openings of PLIES moves, each from both seats (default 0)",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=_positive_int, default=1)
    p.set_defaults(fn=_cmd_eval)

    p = sub.add_parser("play", help="play against a trained policy in the terminal")
    p.add_argument("run", help="a run folder (runs/<name>) or a checkpoint folder")
    p.add_argument("--game", help="task name or game id (default: the run's game, if only one)")
    p.add_argument(
        "--search", type=_positive_int, metavar="S", help="the policy searches S simulations"
    )
    p.add_argument(
        "--seat", type=int, choices=[0, 1], default=0, help="0: you move first (default); 1"
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=_cmd_play)

    p = sub.add_parser("ladder", help="rate players on one game: a round robin and Elo ratings")
    p.add_argument(
        "players",
        nargs="*",
        help="random, greedy, perfect, mcts:S, RUN (sampling), RUN+argmax, RUN+search:S",
    )
    p.add_argument("--game", required=True, metavar="GAME[:k=v,...]", help="e.g. hex:size=7")
    p.add_argument(
        "--checkpoints",
        metavar="RUN",
        help="add every checkpoint kept in RUN (RUN+argmax, RUN+search:S play so)",
    )
    p.add_argument(
        "--log", action="store_true", help="write the checkpoints' ratings to RUN/ladder (TB)"
    )
    p.add_argument("--anchor", help="the player rated 0 (default: the first one named)")
    p.add_argument(
        "--games", type=_positive_int, default=100, help="games per pairing, even (default 100)"
    )
    p.add_argument(
        "--openings", type=_non_negative_int, default=2, metavar="PLIES",
        help="random opening plies, each opening from both seats (default 2)",
    )  # fmt: skip
    p.add_argument(
        "--prior-draws", type=float, default=2.0, help="virtual draws per pairing (default 2)"
    )
    p.add_argument("--json", metavar="PATH", help="also write the ladder as JSON")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=_positive_int, default=1)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=_cmd_ladder)

    _add_baseline(sub)

    p = sub.add_parser("export", help="write a run's policy for one game as an ONNX file")
    p.add_argument("run", help="a run folder (runs/<name>) or a checkpoint folder")
    p.add_argument(
        "--game", help="task name or game id (default: the run's game, if it has one only)"
    )
    p.add_argument("--output", required=True, metavar="PATH", help="the file, e.g. policy.onnx")
    p.add_argument(  # the default is export.DEFAULT_OPSET (not imported here: startup time)
        "--opset", type=int, help="ONNX opset version (default 17)"
    )
    p.set_defaults(fn=_cmd_export)

    p = sub.add_parser("games", help="list the games and their options")
    p.set_defaults(fn=_cmd_games)

    p = sub.add_parser("suites", help="list the game suites in envs/")
    p.set_defaults(fn=_cmd_suites)

    p = sub.add_parser(
        "bench", help="random-play steps/s of every game vs PettingZoo and OpenSpiel"
    )
    p.add_argument(
        "--games", nargs="+", metavar="GAME[:k=v]", help="e.g. connect_four othello:size=8"
    )
    p.add_argument(
        "--batch", type=_parse_ints, metavar="N,N", help="batch sizes (default per device)"
    )
    p.add_argument(
        "--device", choices=["cpu", "cuda", "all"], default="all", help="default: all present"
    )
    p.add_argument("--seconds", type=float, default=0.5, help="time per measurement (default 0.5)")
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the step (slow first call)"
    )
    p.add_argument(
        "--no-reference", action="store_true", help="skip the PettingZoo/OpenSpiel loops"
    )
    _add_bench_options(p)
    p.set_defaults(fn=_cmd_bench)

    p = sub.add_parser(
        "bench-train", help="training-loop throughput (collect + update) and where time goes"
    )
    p.add_argument("--suite", default="classic", help="suite name or path (default classic)")
    p.add_argument("--agent", default="ppo_small", help="agent preset (default ppo_small)")
    p.add_argument(
        "--scale",
        type=_parse_floats,
        default=[1.0],
        metavar="X,X",
        help="num_envs_scale values: boards per game = the suite's num_envs x this (default 1)",
    )
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="cpu", help="default: cpu")
    p.add_argument(
        "--iterations", type=_positive_int, default=3, help="timed iterations (default 3)"
    )
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations first (default 1)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument(
        "--nproc", type=_positive_int, default=1, metavar="N",
        help="also time the loop in N processes (torchrun): per-rank, total, efficiency",
    )  # fmt: skip
    _add_bench_options(p)
    p.set_defaults(fn=_cmd_bench_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status.

    A :class:`~rltransfer.errors.UserError` (what the user gave does not fit: an unknown
    game or opponent, a bad spec, a damaged checkpoint) and a missing file print one line
    and return 2; a stopped or failed training run and what the machine refused (disk,
    memory) return their own status with one line. Anything else is a bug in rltransfer
    and keeps its traceback.
    """
    from rltransfer.errors import UserError

    args = build_parser().parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    where = f"rltransfer {args.command}"
    try:
        return int(args.fn(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        from rltransfer.learn.training import TrainingError, TrainingInterrupted

        if isinstance(e, TrainingInterrupted):
            print(str(e), file=sys.stderr)
            return e.exit_code
        if isinstance(e, TrainingError):
            print(f"{where}: {e}", file=sys.stderr)
            return 1
        if isinstance(e, (UserError, FileNotFoundError)):
            print(f"{where}: error: {_one_line(e)}", file=sys.stderr)
            return 2
        message = _environment_error(e)
        if message is None:
            raise  # a bug: keep the traceback
        print(f"{where}: error: {message}", file=sys.stderr)
        return 1


def _one_line(e: BaseException) -> str:
    text = str(e.args[0]) if e.args else str(e)
    if isinstance(e, FileNotFoundError) and e.filename:
        text = f"no such file or folder: {e.filename}"
    return text


def _environment_error(e: BaseException) -> str | None:
    """A one-line message for what the machine refused (disk, permissions, memory)."""
    if isinstance(e, OSError):
        where = f": {e.filename}" if e.filename else ""
        return f"{e.strerror or e}{where}"
    if isinstance(e, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(e, RuntimeError) and "can't allocate memory" in str(e)
    ):
        return (
            "out of memory; use fewer boards (train.num_envs_scale, num_envs) or a smaller network"
        )
    return None


if __name__ == "__main__":
    sys.exit(main())
