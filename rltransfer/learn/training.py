"""``train(config) -> run_dir``: multitask self-play PPO, one readable loop.

Budgets and SPS count **learner decisions** (``global_step``): one move of the network
being trained on one board. Opponent moves are counted separately (``charts/moves``,
every ply of both sides).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from rltransfer.learn.alphazero import az_update
from rltransfer.learn.confusion import game_probe
from rltransfer.learn.distributed import Ranks
from rltransfer.learn.ppo import linear_lr
from rltransfer.learn.session import (
    Session,
    build_session,
    resolve_device,
    restore_session,
    save_session,
)
from rltransfer.learn.signals import (
    StopFlag,
    TrainingError,
    TrainingInterrupted,
    graceful_interrupt,
)
from rltransfer.learn.update import NonFiniteLossError, make_batch, ppo_update
from rltransfer.net.policy import PolicyNet
from rltransfer.play.evaluate import EvalResult, evaluate_against
from rltransfer.play.players import PolicyPlayer
from rltransfer.runs.checkpoint import (
    NoCheckpointError,
    checkpoint_dir,
    clean_leftovers,
)
from rltransfer.runs.folder import RunFolder, check_new_run, claim_run, open_run, write_text_atomic
from rltransfer.runs.metrics import (
    CHARTS_COLLECT_SPS,
    CHARTS_LEARNING_RATE,
    CHARTS_MOVES,
    CHARTS_MOVES_PER_S,
    CHARTS_SPS,
    CHARTS_TRUNK_FROZEN,
    DIAGNOSTICS_CLASSIFIER_ACCURACY,
    DIAGNOSTICS_CLASSIFIER_LOSS,
    DIAGNOSTICS_GAME_PROBE,
    DIAGNOSTICS_GAME_PROBE_RANDOM,
    GAME_LEARNING_METRICS,
    LOSS_METRICS,
    NullLogger,
    RunLogger,
    board_tag,
    game_learning_scalars,
    game_tag,
    loss_scalars,
    run_layout,
    score_tag,
    search_tag,
    tensorboard_command,
    train_win_rate_tag,
    win_rate_tag,
)
from rltransfer.specs.config import (
    ConfigError,
    TrainConfig,
    dump_toml,
    load_run_config,
    resume_config,
)
from rltransfer.transfer.network import set_trunk_frozen, trunk_frozen


# ------------------------------------------------------------------------- evaluation
def evaluate_session(s: Session, num_games: int, seed: int) -> dict[str, dict[str, EvalResult]]:
    """Every game against every evaluation opponent, both seats, the policy sampling."""
    gen = torch.Generator(device=s.device).manual_seed(seed)
    out: dict[str, dict[str, EvalResult]] = {}
    s.net.eval()
    for task, game in s.games.items():
        out[task] = evaluate_against(
            game, PolicyPlayer(s.net, task), s.cfg.train.eval_opponents, num_games, gen,
            task=task, device=s.device, skip_unplayable=True,  # perfect: tic-tac-toe only
        )  # fmt: skip
    s.net.train()
    return out


def _log_eval(logger: RunLogger, step: int, results: dict[str, dict[str, EvalResult]]) -> None:
    scalars = {}
    for task, per_opp in results.items():
        for opp, r in per_opp.items():
            scalars[score_tag(task, opp)] = r.score
            scalars[win_rate_tag(task, opp)] = r.wins / r.games
    logger.scalars(step, scalars)


def _log_probe(s: Session, logger: RunLogger, step: int, random_baseline: bool = False) -> None:
    """The game probe (:func:`rltransfer.learn.confusion.game_probe`) of a multitask run's
    trunk; with ``random_baseline`` also of a randomly initialised trunk, its yardstick."""
    if len(s.games) < 2:
        return
    gen = torch.Generator(device=s.device).manual_seed(s.cfg.train.seed + 13 * step + 5)
    s.net.eval()
    values = {DIAGNOSTICS_GAME_PROBE: game_probe(s.net, s.games, gen)}
    s.net.train()
    if random_baseline:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s.cfg.train.seed + 10_007)
            fresh = PolicyNet(s.net.tasks, s.net.cfg).to(s.device).eval()
        gen.manual_seed(s.cfg.train.seed + 5)  # the same positions as the trained trunk's
        values[DIAGNOSTICS_GAME_PROBE_RANDOM] = game_probe(fresh, s.games, gen)
    logger.scalars(step, values)


def _final_boards(s: Session, boards: int = 4) -> dict[str, list[torch.Tensor]]:
    """A few self-play games per task, played to the end, as images whose legend says
    which colour is which player and who won."""
    images = {}
    gen = torch.Generator(device=s.device).manual_seed(s.cfg.train.seed + 7)
    for task, game in s.games.items():
        player, state = PolicyPlayer(s.net, task), game.init(boards, device=s.device)
        for _ in range(game.max_moves):
            # finished boards stay out of the step: they keep the reward that says who won
            state = game.step(state, player.act(game, state, gen), where=~state.terminated)
            if bool(state.terminated.all()):
                break
        images[task] = [game.render_rgb(state, i, legend=True) for i in range(boards)]
    return images


# ------------------------------------------------------------------------- iteration
@dataclasses.dataclass
class Iteration:
    """What one :func:`run_iteration` did, and how long its two halves took."""

    stats: dict[str, float]  # ppo_update's losses and per-game statistics
    learning_rate: float
    trunk_frozen: bool
    collect_s: float  # rollouts of every game (device work finished)
    update_s: float  # the PPO update (and the pool's snapshot)
    moves: int  # plies of both sides played in this iteration's rollouts
    moves_total: int  # plies of both sides since the run began


def run_iteration(s: Session) -> Iteration:
    """One iteration of the loop: schedules, every game's self-play, one update (PPO's, or
    the fit to the search's policies and outcomes where ``train.algorithm`` says so).

    Advances ``s.iteration`` and ``s.global_step`` and, for PPO, adds a snapshot to the pool
    every ``snapshot_interval`` iterations. A non-finite loss restores the weights and
    optimizer from before the update, saves them as the checkpoint and raises
    :class:`TrainingError`.
    """
    cfg = s.cfg
    start = time.perf_counter()
    frozen = bool(cfg.transfer.source) and trunk_frozen(
        cfg.transfer.mode, s.iteration, cfg.transfer.unfreeze_after
    )
    set_trunk_frozen(s.net, frozen)
    lr = cfg.alphazero.learning_rate if s.players else s.learning_rate(s.iteration + 1)
    for group in s.optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
    moves_before = _moves(s)
    update, lower = _search_self_play(s) if s.players else _ppo_rollouts(s)
    if s.device.type == "cuda":
        torch.cuda.synchronize(s.device)  # time the collection's device work, not its launch
    collected = time.perf_counter()
    stats = _guarded(s, update, lower)
    s.iteration += 1
    s.global_step += s.steps_per_iteration
    if not s.players and s.iteration % cfg.selfplay.snapshot_interval == 0:
        s.pool.add(s.net)
    moves = _moves(s)  # waits for the device
    done = time.perf_counter()
    return Iteration(
        stats, lr, frozen, collected - start, done - collected, moves - moves_before, moves
    )


Update = Callable[[], dict[str, float]]


def _ppo_rollouts(s: Session) -> tuple[Update, str]:
    """Every game's PPO rollout against its opponent mix; returns the update to run on
    them and the ``--set`` that lowers its learning rate."""
    cfg = s.cfg
    snapshot = s.pool.sample(s.net, s.gen_collect)
    rollouts = {k: c.collect(s.net, snapshot) for k, c in s.collectors.items()}
    weights = {g.name: g.weight for g in cfg.suite.games}

    def update() -> dict[str, float]:
        batches = {k: make_batch(ro, cfg.ppo, s.ranks) for k, ro in rollouts.items()}
        return ppo_update(
            s.net, s.optimizer, batches, weights, cfg.ppo, s.gen_update, s.classifier,
            ranks=s.ranks, compiler=s.compiler,
        )  # fmt: skip

    return update, f"ppo.learning_rate={cfg.ppo.learning_rate / 10:g}"


def _search_self_play(s: Session) -> tuple[Update, str]:
    """Every game's search self-play (``train.algorithm = "alphazero"``); returns the fit
    to the recorded positions and the ``--set`` that lowers its learning rate."""
    cfg = s.cfg
    s.net.eval()
    for p in s.players.values():
        p.collect(s.net)
    s.net.train()
    weights = {g.name: g.weight for g in cfg.suite.games}

    def update() -> dict[str, float]:
        return az_update(
            s.net, s.optimizer, s.players, weights, cfg.alphazero, s.gen_update, s.ranks
        )

    return update, f"alphazero.learning_rate={cfg.alphazero.learning_rate / 10:g}"


def _moves(s: Session) -> int:
    """Plies of both sides since the run began, every game's (a host read)."""
    ppo = sum(int(c.moves) for c in s.collectors.values())
    return ppo + sum(p.moves for p in s.players.values())


def _guarded(s: Session, update: Update, lower: str) -> dict[str, float]:
    """Run ``update``; on a non-finite loss restore the weights and optimiser from before
    it, save them as the checkpoint and raise :class:`TrainingError` (``lower``: the
    ``--set`` that would resume with a lower learning rate)."""
    # copies, not views: the update changes weights and Adam's moments in place
    classifier = s.classifier.state_dict() if s.classifier is not None else None
    good = copy.deepcopy((s.net.state_dict(), s.optimizer.state_dict(), classifier))
    try:
        return update()
    except NonFiniteLossError as e:
        s.net.load_state_dict(good[0])
        s.optimizer.load_state_dict(good[1])
        if s.classifier is not None and good[2] is not None:
            s.classifier.load_state_dict(good[2])
        ckpt = save_session(s)
        raise TrainingError(
            f"stopped at iteration {s.iteration}: {e}. Saved the last good weights (before "
            f"this update) to {ckpt}; continue with a lower learning rate: rltransfer train "
            f"--resume {s.path} --set {lower}"
        ) from None


# ----------------------------------------------------------------------------- train
__all__ = [
    "Iteration", "Session", "StopFlag", "TrainingError", "TrainingInterrupted", "build_session",
    "default_name", "evaluate_session", "graceful_interrupt", "resolve_device", "restore_session",
    "resume", "run_iteration", "save_session", "train",
]  # fmt: skip


def default_name(cfg: TrainConfig) -> str:
    return f"{cfg.suite.name}_{cfg.agent}_{time.strftime('%Y%m%d-%H%M%S')}"


def train(
    config: TrainConfig,
    run_dir: str | Path = "runs",
    *,
    overwrite: bool = False,
    quiet: bool = False,
) -> Path:
    """Train ``config`` into ``run_dir/<name>``; returns the run's path.

    Everything is built and checked before the folder is touched; ``overwrite`` replaces
    an existing run only once the new one has saved its first checkpoint (see
    :mod:`rltransfer.runs.folder`). Ctrl-C or SIGTERM finish the iteration, save and raise
    :class:`TrainingInterrupted`; :func:`resume` continues the run.
    """
    ranks = _join(config)
    name = config.name or ranks.broadcast(default_name(config) if ranks.is_main else None)
    cfg = dataclasses.replace(config, name=name)
    checked = str(check_new_run(run_dir, cfg.name, overwrite)) if ranks.is_main else None
    path = Path(ranks.broadcast(checked))
    session = build_session(cfg, path, ranks=ranks)
    with (
        graceful_interrupt(quiet or not ranks.is_main) as stop,
        (
            claim_run(run_dir, cfg.name, overwrite) if ranks.is_main else contextlib.nullcontext()
        ) as folder,
    ):
        if ranks.is_main:
            write_text_atomic(path / "config.toml", dump_toml(cfg.sections()))
        return _run(session, folder, stop, quiet)


def _join(cfg: TrainConfig) -> Ranks:
    """This process's ranks (``torchrun``'s environment), in the process group; one process
    where the environment names none."""
    ranks = Ranks.from_env()
    if ranks.distributed:
        ranks.init(ranks.device(resolve_device(cfg.train.device)))
    return ranks


def resume(
    run_path: str | Path,
    *,
    quiet: bool = False,
    overrides: list[str] | tuple[str, ...] = (),
    total_steps: int | None = None,
    device: str | None = None,
    threads: int | None = None,
) -> Path:
    """Continue a run from its last checkpoint with its saved config.

    ``overrides`` (``--set`` items), ``total_steps``, ``device`` and ``threads`` change the
    settings a resume may change (:data:`rltransfer.specs.config.RESUMABLE`); they are written
    to the run's ``config.toml``. A larger ``total_steps`` extends a run, finished or not:
    the annealed learning rate then decays from the rate it had reached to 0 over the new
    remaining iterations (a new ``ppo.learning_rate`` restarts the decay from that rate).
    On another device type the random generators are reseeded, so the continuation is
    not bit-exact. A run interrupted before its first checkpoint starts from the beginning.
    """
    path = Path(run_path)
    if (path / "experiment.json").is_file():
        raise ConfigError(
            f"{path} is a transfer experiment; continue it with rltransfer transfer --resume {path}"
        )
    if not (path / "config.toml").is_file():
        raise ConfigError(f"{path} is not a run directory (no config.toml)")
    saved = load_run_config(path / "config.toml")
    cfg, changed = resume_config(
        saved, overrides, total_steps=total_steps, device=device, threads=threads
    )
    ranks = _join(cfg)
    quiet = quiet or not ranks.is_main
    with (
        graceful_interrupt(quiet) as stop,
        open_run(path) if ranks.is_main else contextlib.nullcontext() as folder,
    ):
        if ranks.is_main:
            clean_leftovers(path)
        ranks.barrier()  # the others read the checkpoint once rank 0 has tidied the folder
        try:
            ckpt: Path | None = checkpoint_dir(path)
        except NoCheckpointError:
            ckpt = None  # stopped before its first checkpoint: start it again
        session = build_session(cfg, path, ranks=ranks)
        if ckpt is not None:
            restore_session(session, ckpt)
        if session.iteration >= session.num_iterations and (path / "eval.json").is_file():
            # (without eval.json it stopped during its final evaluation: that runs now)
            raise ConfigError(
                f"{path} already finished its {cfg.train.total_steps:,} steps; give a larger "
                f"--steps to extend it"
            )
        if {"train.total_steps", "ppo.learning_rate", "ppo.anneal_lr"} & set(changed):
            # continue the decay from the rate the saved schedule had reached
            old_total = session.iterations_for(saved.train.total_steps)
            at = min(session.iteration + 1, old_total)
            reached = linear_lr(saved.ppo, at, old_total, session.lr_start)
            restart = cfg.ppo.learning_rate if "ppo.learning_rate" in changed else reached
            session.lr_start = (session.iteration, restart)
            save_session(session)  # the restart point on disk before the new budget is
        if changed and ranks.is_main:
            write_text_atomic(path / "config.toml", dump_toml(cfg.sections()))
            if not quiet:
                for key, (old, new) in changed.items():
                    print(f"resume: {key} {old!r} -> {new!r}")
                if cfg.ppo.anneal_lr and session.lr_start is not None:
                    print(
                        f"resume: learning rate {session.lr_start[1]:.3g}, decaying to 0 by "
                        f"step {session.num_iterations * session.steps_per_iteration:,}"
                    )
        return _run(session, folder, stop, quiet)


def _run(s: Session, folder: RunFolder | None, stop: StopFlag, quiet: bool) -> Path:
    """The training loop from wherever ``s`` stands, in ``folder`` (locked; ``None`` on
    the ranks other than 0, which neither log nor evaluate nor write)."""
    cfg = s.cfg
    main = s.ranks.is_main
    quiet = quiet or not main
    torch.set_num_threads(cfg.train.threads)
    if s.ranks.distributed:  # a signal stops every rank at once, saving nothing: a save
        # is collective, and torchrun signals the others when one rank has died
        stop.abort = lambda signum: TrainingInterrupted(s.path, signum, s.global_step, saved=False)
    first = s.global_step == 0
    total = s.num_iterations * s.steps_per_iteration
    # an arm of a transfer experiment (its folder holds the experiment's manifest): the
    # experiment prints what the run is and its results
    arm = (s.path.parent / "experiment.json").is_file()
    # points logged after the checkpoint (at steps > global_step) are dropped on resume;
    # a run started again from the beginning drops everything an earlier attempt logged
    logger = (
        RunLogger(s.path, purge_step=0 if first else s.global_step + 1) if main else NullLogger()
    )
    if not quiet and not arm:
        where = "" if first else f" at step {s.global_step:,}"
        print(
            f"{'Training' if first else 'Resuming'} run {s.path}{where} on {s.device}: suite "
            f"{cfg.suite.name} ({', '.join(s.games)}), agent {cfg.agent}, {total:,} learner steps"
        )
    saved_at = -1 if first else s.iteration  # a resumed session is its checkpoint
    with logger:
        if first and main:  # the untrained (or transferred: zero-shot) policy: the first point
            logger.config_table(cfg.sections())
            logger.layout(run_layout(cfg.train.eval_opponents))
            results = evaluate_session(s, cfg.train.eval_games, cfg.train.seed)
            _log_eval(logger, 0, results)
            s.eval_history.append({"global_step": 0, **_scores(results)})
            _log_probe(s, logger, 0, random_baseline=True)
        bar = tqdm(total=total, initial=s.global_step, desc=cfg.name if arm else None,
                   unit="step", disable=quiet, dynamic_ncols=True)  # fmt: skip
        while s.iteration < s.num_iterations:
            it = run_iteration(s)
            elapsed = it.collect_s + it.update_s
            scalars = {
                CHARTS_SPS: s.steps_per_iteration / elapsed,
                CHARTS_COLLECT_SPS: s.steps_per_iteration / it.collect_s,
                CHARTS_LEARNING_RATE: it.learning_rate,
                CHARTS_MOVES: float(it.moves_total),
                CHARTS_MOVES_PER_S: it.moves / elapsed,
            }
            if cfg.transfer.source:
                scalars[CHARTS_TRUNK_FROZEN] = float(it.trunk_frozen)
            scalars.update(_search_scalars(s, it.stats) if s.players else _ppo_scalars(s, it.stats))
            logger.scalars(s.global_step, scalars)
            evaluate = s.iteration % cfg.train.eval_interval == 0
            if main and (evaluate or s.iteration == s.num_iterations):
                results = evaluate_session(s, cfg.train.eval_games, cfg.train.seed + s.iteration)
                _log_eval(logger, s.global_step, results)
                s.eval_history.append({"global_step": s.global_step, **_scores(results)})
                _log_probe(s, logger, s.global_step)
            bar.set_postfix_str(f"{scalars[CHARTS_SPS]:,.0f} sps | {_latest_scores(s)}")
            bar.update(s.steps_per_iteration)
            if stop.requested or s.iteration % cfg.train.checkpoint_interval == 0:
                save_session(s)
                saved_at = s.iteration
                if folder is not None:
                    folder.commit()
            if stop.signum is not None:
                bar.close()
                raise TrainingInterrupted(s.path, stop.signum, s.global_step)
        bar.close()
        if saved_at != s.iteration:  # the trained weights, saved before eval.json says done
            save_session(s)
            if folder is not None:
                folder.commit()
        if not main:  # rank 0 alone evaluates and reports
            stop.abort = None
            return s.path
        # from here on the run is saved: a signal stops the final evaluation at once, and
        # --resume (no eval.json yet) runs it again
        stop.abort = lambda signum: TrainingInterrupted(s.path, signum, s.global_step)
        if stop.signum is not None:
            raise stop.abort(stop.signum)
        if not quiet:
            print(
                f"{cfg.name + ': ' if arm else ''}final evaluation: "
                f"{cfg.train.final_eval_games:,} games per game and opponent "
                f"({', '.join(cfg.train.eval_opponents)}), both seats ..."
            )
        final = evaluate_session(s, cfg.train.final_eval_games, cfg.train.seed + 10**6)
        for task, imgs in _final_boards(s).items():
            logger.board_images(board_tag(task), imgs, s.global_step)
        scores = {score_tag(t, o): r.score for t, per in final.items() for o, r in per.items()}
        logger.hparams(_hparams(cfg), scores, step=s.global_step)
        _write_eval(s, final)  # last: an arm with eval.json is finished
        stop.abort = None
    if not quiet and not arm:  # (an experiment prints its arms' scores and its report)
        from rltransfer.play.evaluate import format_results

        print(format_results([r for per in final.values() for r in per.values()]))
        print(f"Run saved in {s.path}. Look at it with:\n  {tensorboard_command(s.path.parent)}")
    return s.path


def _ppo_scalars(s: Session, stats: dict[str, float]) -> dict[str, float]:
    """ppo_update's statistics ("mean/<stat>" over every game, "<task>/<stat>" per game)
    and the training episodes of each game, by their tags."""
    out = loss_scalars({m: stats[f"mean/{m}"] for m in LOSS_METRICS})
    if "confusion/loss" in stats:
        out[DIAGNOSTICS_CLASSIFIER_LOSS] = stats["confusion/loss"]
        out[DIAGNOSTICS_CLASSIFIER_ACCURACY] = stats["confusion/accuracy"]
    for task, c in s.collectors.items():
        out.update(_episode_scalars(task, c.pop_stats()))
        per_game = {m: stats[f"{task}/{m}"] for m in GAME_LEARNING_METRICS}
        out.update(game_learning_scalars(task, per_game))
    return out


def _search_scalars(s: Session, stats: dict[str, float]) -> dict[str, float]:
    """az_update's losses and each game's search self-play statistics, by their tags."""
    out = loss_scalars({m: stats[f"mean/{m}"] for m in ("policy", "value") if f"mean/{m}" in stats})
    for task, p in s.players.items():
        played = p.pop_stats()
        values = {"simulations": float(p.config.simulations)}
        values.update({m: played[m] for m in ("root_value", "improvement_kl") if m in played})
        if f"{task}/target_entropy" in stats:
            values["target_entropy"] = stats[f"{task}/target_entropy"]
        out.update({search_tag(task, m): v for m, v in values.items()})
        if "game_length" in played:
            out[game_tag(task, "episode_length")] = played["game_length"]
    return out


def _episode_scalars(task: str, stats: dict[str, dict[str, float]]) -> dict[str, float]:
    out = {}
    episodes = sum(v["episodes"] for v in stats.values())
    if episodes:
        out[game_tag(task, "episode_length")] = sum(v["length"] for v in stats.values()) / episodes
        wins = sum(v["wins"] for v in stats.values())
        losses = sum(v["losses"] for v in stats.values())
        out[game_tag(task, "return")] = (wins - losses) / episodes
    for kind, v in stats.items():
        if v["episodes"]:  # training episodes, by opponent kind
            out[train_win_rate_tag(task, kind)] = v["wins"] / v["episodes"]
    return out


def _latest_scores(s: Session) -> str:
    """The last evaluation's scores against the first evaluation opponent, for the progress
    bar: ``score vs random: tic_tac_toe 0.58, othello 0.57``. A game goes by its id where
    that is unambiguous in the suite (``othello`` for ``othello_size6``), else its name."""
    opponent = s.cfg.train.eval_opponents[0]
    last = s.eval_history[-1] if s.eval_history else {}
    ids = [g.id for g in s.cfg.suite.games]
    scores = [
        f"{g.id if ids.count(g.id) == 1 else g.name} {last[g.name][opponent]:.2f}"
        for g in s.cfg.suite.games
        if opponent in last.get(g.name, {})
    ]
    return f"score vs {opponent}: {', '.join(scores)}" if scores else ""


def _scores(results: dict[str, dict[str, EvalResult]]) -> dict[str, dict[str, float]]:
    return {t: {o: r.score for o, r in per.items()} for t, per in results.items()}


def _write_eval(s: Session, results: dict[str, dict[str, EvalResult]]) -> None:
    data = {
        "global_step": s.global_step,
        "games": {t: {o: r.to_dict() for o, r in per.items()} for t, per in results.items()},
        "history": s.eval_history,
    }
    write_text_atomic(s.path / "eval.json", json.dumps(data, indent=1))


def _hparams(cfg: TrainConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"suite": cfg.suite.name, "agent": cfg.agent}
    for section in ("net", "ppo", "train"):
        for k, v in dataclasses.asdict(getattr(cfg, section)).items():
            if isinstance(v, (int, float, str, bool)):
                out[f"{section}.{k}"] = v
    return out
