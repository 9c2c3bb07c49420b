"""The ``rltransfer`` argument parser: every command, its options and its handler."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from rltransfer._version import __version__

if TYPE_CHECKING:
    pass
from rltransfer.cli.commands import (
    _cmd_baseline_sb3,
    _cmd_eval,
    _cmd_export,
    _cmd_ladder,
    _cmd_play,
    _cmd_report,
    _cmd_train,
    _cmd_transfer,
)
from rltransfer.cli.common import (
    _non_negative_int,
    _parse_compile_modes,
    _parse_floats,
    _parse_ints,
    _positive_int,
)
from rltransfer.cli.info import _cmd_bench, _cmd_bench_train, _cmd_games, _cmd_suites


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: an argument it does not know is its own error, shown with its
    own usage (argparse leaves leftovers to the top-level parser, whose usage says nothing
    about the subcommand's options)."""

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        parsed, extras = super().parse_known_args(*args, **kwargs)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


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
    p.add_argument(
        "--json", metavar="PATH",
        help="also write the ladder as JSON, saved after every pairing (see --resume)",
    )  # fmt: skip
    p.add_argument(
        "--resume", action="store_true",
        help="take the pairings already in --json PATH as played (an interrupted ladder, "
        "or a finished one with players added) and play the rest",
    )  # fmt: skip
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
    p.add_argument(
        "--compile", type=_parse_compile_modes, metavar="MODE,MODE",
        help="train.compile modes to time, e.g. off,default (default: the preset's); the "
        "compilation happens in the warm-up iterations",
    )  # fmt: skip
    _add_bench_options(p)
    p.set_defaults(fn=_cmd_bench_train)
    return parser
