"""Commands that train, play and carry policies: ``train``, ``eval``, ``play``, ``ladder``,
``transfer``, ``report``, ``export``, ``baseline-sb3``."""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    pass
from rltransfer.cli.common import (
    _progress,
    _torchrun,
    _without_nproc,
)


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
    from rltransfer.learn.signals import graceful_interrupt
    from rltransfer.learn.training import resolve_device
    from rltransfer.play import ladder as lad
    from rltransfer.play.evaluate import EvalResult
    from rltransfer.specs.config import ConfigError

    if args.log and not args.checkpoints:
        raise ConfigError("--log writes the ratings of --checkpoints RUN: name the run")
    if args.resume and not args.json:
        raise ConfigError("--resume continues the ladder saved in --json PATH: name the file")
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
    settings = lad.ladder_settings(args.game, args.games, args.openings, args.seed, device)
    if args.resume:
        done = lad.load_progress(args.json, settings, game.id, names.keys())
    else:
        done = []
        lad.refuse_to_overwrite_progress(args.json)
    players = lad.ladder_players(game, names, device)  # all resolved before a game is played
    pairs = len(players) * (len(players) - 1) // 2
    saved = list(done)

    def save(result: EvalResult) -> None:
        saved.append(result)
        lad.save_progress(args.json, settings, saved)

    with _progress("ladder", "pairing", args.quiet) as progress:
        print(
            f"{args.game}: {len(players)} players, {pairs} pairings of {args.games} games"
            + (f" ({len(done)} already played, from {args.json})" if args.resume else "")
        )
        try:
            # Ctrl-C or SIGTERM (a scheduler's stop) end the ladder at once: every pairing
            # finished is already saved, and a pairing may take minutes
            with graceful_interrupt(quiet=True) as stop:
                stop.abort = lambda signum: KeyboardInterrupt(signal.Signals(signum).name)
                results = lad.round_robin(
                    game, players, args.games, args.seed, device, opening_plies=args.openings,
                    done=done, progress=progress, on_result=save if args.json else None,
                )  # fmt: skip
        except KeyboardInterrupt:
            if args.json:
                print(
                    f"ladder stopped: {len(saved)} of {pairs} pairings saved in {args.json}; "
                    "continue with the same command and --resume",
                    file=sys.stderr,
                )
            raise
    ladder = lad.fit_ratings(
        results, anchor, prior_draws=args.prior_draws, game=args.game,
        opening_plies=args.openings,
    )  # fmt: skip
    print(lad.format_ladder(ladder))
    if args.json:
        lad.save_progress(args.json, settings, results, ladder)
    if args.log:
        task = lad.run_task(args.checkpoints, game)
        where = lad.log_checkpoint_ratings(args.checkpoints, ladder, history, task)
        from rltransfer.runs.metrics import tensorboard_command

        print(f"ratings of the checkpoints written to {where}; look: {tensorboard_command(where)}")
    return 0


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
