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
import math
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from tqdm import tqdm

from rltransfer.checkpoint import (
    checkpoint_dir,
    load_into,
    load_meta,
    load_trainer,
    load_weights,
    save_checkpoint,
)
from rltransfer.collector import GameCollector, SnapshotPool
from rltransfer.config import ConfigError, TrainConfig, dump_toml, load_run_config
from rltransfer.evaluate import EvalResult, play_match
from rltransfer.games.core import Game
from rltransfer.metrics import RunLogger, game_tag, score_tag, win_rate_tag
from rltransfer.multitask import NonFiniteLossError, make_batch, ppo_update
from rltransfer.opponents import PolicyPlayer, make_player, plays
from rltransfer.policy import PolicyNet, TaskShape
from rltransfer.ppo import linear_lr
from rltransfer.transfer import param_groups, set_trunk_frozen, transfer_net, trunk_frozen


class TrainingError(RuntimeError):
    """Training stopped on a problem the user must look at (the message says what)."""


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else the CPU; checks that a named CUDA device exists."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {name!r} asked for, but torch sees no CUDA device (use cpu or auto)"
        )
    return device


@dataclasses.dataclass
class Session:
    """Everything the loop mutates; a checkpoint saves all of it."""

    cfg: TrainConfig
    path: Path
    device: torch.device
    games: dict[str, Game]
    net: PolicyNet
    optimizer: torch.optim.Optimizer
    collectors: dict[str, GameCollector]
    pool: SnapshotPool
    gen_collect: torch.Generator
    gen_update: torch.Generator
    iteration: int = 0
    global_step: int = 0
    eval_history: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def steps_per_iteration(self) -> int:
        return sum(c.num_envs * c.num_steps for c in self.collectors.values())

    @property
    def num_iterations(self) -> int:
        return max(1, math.ceil(self.cfg.train.total_steps / self.steps_per_iteration))


def build_session(cfg: TrainConfig, path: Path, net: PolicyNet | None = None) -> Session:
    """Games, network, optimizer, collectors and generators for ``cfg`` (fresh state)."""
    device = resolve_device(cfg.train.device)
    seed = cfg.train.seed
    games = {g.name: g.make() for g in cfg.suite.games}
    torch.manual_seed(seed)  # network initialisation
    if net is None and cfg.transfer.source:
        if len(games) != 1:
            raise ConfigError(f"a transfer run trains one target game, not {list(games)}")
        ((task, game),) = games.items()
        net = transfer_net(cfg.transfer.source, task, game, cfg.transfer.keep_heads, device)
    elif net is None:
        net = PolicyNet({k: TaskShape.of(g) for k, g in games.items()}, cfg.net)
    net = net.to(device)
    groups = param_groups(net, cfg.transfer.trunk_lr_scale if cfg.transfer.source else 1.0)
    optimizer = torch.optim.Adam(groups, lr=cfg.ppo.learning_rate, eps=1e-5)
    gen_collect = torch.Generator(device=device).manual_seed(seed)
    gen_update = torch.Generator(device=device).manual_seed(seed + 1)
    collectors = {
        g.name: GameCollector(
            g.name,
            games[g.name],
            max(1, round(g.num_envs * cfg.train.num_envs_scale)),
            g.steps(cfg.ppo.num_steps),
            cfg.selfplay,
            device,
            gen_collect,
        )
        for g in cfg.suite.games
    }
    return Session(
        cfg, path, device, games, net, optimizer, collectors, SnapshotPool(cfg.selfplay.pool_size),
        gen_collect, gen_update,
    )  # fmt: skip


# ------------------------------------------------------------------------ checkpoints
def save_session(s: Session) -> Path:
    meta = {
        "tasks": {k: dataclasses.asdict(t) for k, t in s.net.tasks.items()},
        "net": dataclasses.asdict(s.net.cfg),
        "suite": s.cfg.sections()["suite"],
        "iteration": s.iteration,
        "global_step": s.global_step,
    }
    trainer = {
        "optimizer": s.optimizer.state_dict(),
        "gen_collect": s.gen_collect.get_state(),
        "gen_update": s.gen_update.get_state(),
        "collectors": {k: c.state_dict() for k, c in s.collectors.items()},
        "pool": s.pool.weights,
        "iteration": s.iteration,
        "global_step": s.global_step,
        "eval_history": json.dumps(s.eval_history),
    }
    return save_checkpoint(s.path, s.net.state_dict(), meta, trainer)


def restore_session(s: Session, ckpt: Path) -> None:
    """Load a checkpoint's weights and trainer state into a freshly built session."""
    load_meta(ckpt)
    load_into(s.net, load_weights(ckpt, s.device), ckpt / "model.safetensors")
    t = load_trainer(ckpt)
    try:
        s.optimizer.load_state_dict(t["optimizer"])
        s.gen_collect.set_state(t["gen_collect"])
        s.gen_update.set_state(t["gen_update"])
        for k, c in s.collectors.items():
            c.load_state_dict(t["collectors"][k])
        s.pool.weights = [{k: v.to(s.device) for k, v in w.items()} for w in t["pool"]]
        s.iteration, s.global_step = int(t["iteration"]), int(t["global_step"])
        s.eval_history = json.loads(t["eval_history"])
    except (KeyError, ValueError, RuntimeError) as e:
        raise ConfigError(f"{ckpt}/trainer.pt does not fit this run's config: {e}") from None


# ------------------------------------------------------------------------- evaluation
def evaluate_session(s: Session, num_games: int, seed: int) -> dict[str, dict[str, EvalResult]]:
    """Every game against every evaluation opponent, both seats, the policy sampling."""
    gen = torch.Generator(device=s.device).manual_seed(seed)
    out: dict[str, dict[str, EvalResult]] = {}
    s.net.eval()
    for task, game in s.games.items():
        player = PolicyPlayer(s.net, task)
        out[task] = {
            opp: play_match(game, player, opponent, num_games, gen, s.device, task=task)
            for opp, opponent in ((o, make_player(o)) for o in s.cfg.train.eval_opponents)
            if plays(opponent, game)  # the perfect player knows tic-tac-toe only
        }
    s.net.train()
    return out


def _log_eval(logger: RunLogger, step: int, results: dict[str, dict[str, EvalResult]]) -> None:
    scalars = {}
    for task, per_opp in results.items():
        for opp, r in per_opp.items():
            scalars[score_tag(task, opp)] = r.score
            scalars[win_rate_tag(task, opp)] = r.wins / r.games
    logger.scalars(step, scalars)


def _final_boards(s: Session, boards: int = 4) -> dict[str, list[torch.Tensor]]:
    """A few self-play games per task, played to the end, as images."""
    images = {}
    gen = torch.Generator(device=s.device).manual_seed(s.cfg.train.seed + 7)
    for task, game in s.games.items():
        player, state = PolicyPlayer(s.net, task), game.init(boards, device=s.device)
        for _ in range(game.max_moves):
            state = game.step(state, player.act(game, state, gen))
            if bool(state.terminated.all()):
                break
        images[task] = [game.render_rgb(state, i) for i in range(boards)]
    return images


# ---------------------------------------------------------------------------- Ctrl-C
class _StopFlag:
    def __init__(self) -> None:
        self.requested = False


@contextlib.contextmanager
def _graceful_interrupt(quiet: bool) -> Iterator[_StopFlag]:
    """First Ctrl-C: finish the iteration, save, stop. Second: abort at once."""
    flag = _StopFlag()

    def handler(signum: int, frame: FrameType | None) -> None:
        if flag.requested:
            raise KeyboardInterrupt
        flag.requested = True
        if not quiet:
            tqdm.write("Ctrl-C: finishing this iteration and saving (Ctrl-C again to abort)")

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: no handler, plain KeyboardInterrupt
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


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
    """One iteration of the loop: schedules, every game's rollout, one PPO update.

    Advances ``s.iteration`` and ``s.global_step`` and adds a snapshot to the pool every
    ``snapshot_interval`` iterations. A non-finite loss restores the weights and optimizer
    from before the update, saves them as the checkpoint and raises :class:`TrainingError`.
    """
    cfg = s.cfg
    start = time.perf_counter()
    frozen = bool(cfg.transfer.source) and trunk_frozen(
        cfg.transfer.mode, s.iteration, cfg.transfer.unfreeze_after
    )
    set_trunk_frozen(s.net, frozen)
    lr = linear_lr(cfg.ppo, s.iteration + 1, s.num_iterations)
    for group in s.optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
    snapshot = s.pool.sample(s.net, s.gen_collect)
    moves_before = sum(int(c.moves) for c in s.collectors.values())
    rollouts = {k: c.collect(s.net, snapshot) for k, c in s.collectors.items()}
    if s.device.type == "cuda":
        torch.cuda.synchronize(s.device)  # time the collection's device work, not its launch
    collected = time.perf_counter()
    batches = {k: make_batch(ro, cfg.ppo) for k, ro in rollouts.items()}
    weights = {g.name: g.weight for g in cfg.suite.games}
    # copies, not views: the update changes weights and Adam's moments in place
    good = copy.deepcopy((s.net.state_dict(), s.optimizer.state_dict()))
    try:
        stats = ppo_update(s.net, s.optimizer, batches, weights, cfg.ppo, s.gen_update)
    except NonFiniteLossError as e:
        s.net.load_state_dict(good[0])
        s.optimizer.load_state_dict(good[1])
        ckpt = save_session(s)
        raise TrainingError(
            f"stopped at iteration {s.iteration}: {e}. Saved the last good weights (before "
            f"this update) to {ckpt}; try a lower ppo.learning_rate, then --resume {s.path}"
        ) from None
    s.iteration += 1
    s.global_step += s.steps_per_iteration
    if s.iteration % cfg.selfplay.snapshot_interval == 0:
        s.pool.add(s.net)
    moves = sum(int(c.moves) for c in s.collectors.values())  # waits for the device
    done = time.perf_counter()
    return Iteration(
        stats, lr, frozen, collected - start, done - collected, moves - moves_before, moves
    )


# ----------------------------------------------------------------------------- train
def prepare_run_dir(run_dir: str | Path, name: str, overwrite: bool) -> Path:
    path = Path(run_dir) / name
    if path.exists() and any(path.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"run directory {path} already exists; continue it with --resume {path}, "
                f"replace it with --overwrite, or choose another --name"
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_name(cfg: TrainConfig) -> str:
    return f"{cfg.suite.name}_{cfg.agent}_{time.strftime('%Y%m%d-%H%M%S')}"


def train(
    config: TrainConfig,
    run_dir: str | Path = "runs",
    *,
    overwrite: bool = False,
    quiet: bool = False,
    session: Session | None = None,
) -> Path:
    """Train ``config`` into ``run_dir/<name>``; returns the run's path.

    ``session`` continues a restored session (see :func:`resume`).
    """
    if session is None:
        cfg = config if config.name else dataclasses.replace(config, name=default_name(config))
        path = prepare_run_dir(run_dir, cfg.name, overwrite)
        (path / "config.toml").write_text(dump_toml(cfg.sections()))
        session = build_session(cfg, path)
    s, cfg = session, session.cfg
    torch.set_num_threads(cfg.train.threads)
    first = s.global_step == 0
    # points logged after the checkpoint (at steps > global_step) are dropped on resume
    logger = RunLogger(s.path, purge_step=None if first else s.global_step + 1)
    if first:  # the untrained (or just transferred: zero-shot) policy is the curve's first point
        logger.config_table(cfg.sections())
        results = evaluate_session(s, cfg.train.eval_games, cfg.train.seed)
        _log_eval(logger, 0, results)
        s.eval_history.append({"global_step": 0, **_scores(results)})
    bar = tqdm(total=s.num_iterations * s.steps_per_iteration, initial=s.global_step, unit="step",
               disable=quiet, dynamic_ncols=True)  # fmt: skip
    with _graceful_interrupt(quiet) as stop, logger:
        while s.iteration < s.num_iterations:
            it = run_iteration(s)
            elapsed = it.collect_s + it.update_s
            scalars = {
                "charts/sps": s.steps_per_iteration / elapsed,
                "charts/collect_sps": s.steps_per_iteration / it.collect_s,
                "charts/learning_rate": it.learning_rate,
                "charts/moves": float(it.moves_total),
                "charts/moves_per_s": it.moves / elapsed,
                "charts/trunk_frozen": float(it.trunk_frozen),
            }
            scalars.update({k: v for k, v in it.stats.items() if k.startswith("losses/")})
            for task, c in s.collectors.items():
                scalars.update(_episode_scalars(task, c.pop_stats()))
                for stat in ("approx_kl", "clipfrac", "entropy"):
                    scalars[game_tag(task, stat)] = it.stats[f"{task}/{stat}"]
            logger.scalars(s.global_step, scalars)
            if s.iteration % cfg.train.eval_interval == 0 or s.iteration == s.num_iterations:
                results = evaluate_session(s, cfg.train.eval_games, cfg.train.seed + s.iteration)
                _log_eval(logger, s.global_step, results)
                s.eval_history.append({"global_step": s.global_step, **_scores(results)})
            bar.set_postfix({"sps": f"{scalars['charts/sps']:,.0f}", **_latest_scores(s)})
            bar.update(s.steps_per_iteration)
            if stop.requested or s.iteration % cfg.train.checkpoint_interval == 0:
                save_session(s)
            if stop.requested:
                bar.close()
                print(f"Stopped at step {s.global_step:,}. Continue with:")
                print(f"  rltransfer train --resume {s.path}")
                return s.path
        bar.close()
        final = evaluate_session(s, cfg.train.final_eval_games, cfg.train.seed + 10**6)
        _write_eval(s, final)
        for task, imgs in _final_boards(s).items():
            logger.board_images(f"boards/{task}", imgs, s.global_step)
        logger.hparams(_hparams(cfg), {game_tag(t, "score_vs_random"): r["random"].score
                                       for t, r in final.items() if "random" in r})  # fmt: skip
        save_session(s)
    if not quiet:
        from rltransfer.evaluate import format_results

        print(format_results([r for per in final.values() for r in per.values()]))
        print(f"Run saved in {s.path}. Look at it with:\n  tensorboard --logdir {s.path.parent}")
    return s.path


def resume(run_path: str | Path, *, quiet: bool = False) -> Path:
    """Continue a run from its last checkpoint with its saved config."""
    path = Path(run_path)
    cfg = load_run_config(path / "config.toml") if (path / "config.toml").is_file() else None
    if cfg is None:
        raise ConfigError(f"{path} is not a run directory (no config.toml)")
    ckpt = checkpoint_dir(path)
    session = build_session(cfg, path)
    restore_session(session, ckpt)
    if session.iteration >= session.num_iterations:
        raise ConfigError(
            f"{path} already finished its {cfg.train.total_steps:,} steps; nothing to resume"
        )
    return train(cfg, path.parent, quiet=quiet, session=session)


def _episode_scalars(task: str, stats: dict[str, dict[str, float]]) -> dict[str, float]:
    out = {}
    episodes = sum(v["episodes"] for v in stats.values())
    if episodes:
        out[game_tag(task, "episode_length")] = sum(v["length"] for v in stats.values()) / episodes
        wins = sum(v["wins"] for v in stats.values())
        losses = sum(v["losses"] for v in stats.values())
        out[game_tag(task, "return")] = (wins - losses) / episodes
    for kind, v in stats.items():
        if v["episodes"]:
            # training episodes, by opponent kind: games/<task>/win_rate_vs_train_<kind>
            out[win_rate_tag(task, f"train_{kind}")] = v["wins"] / v["episodes"]
    return out


def _latest_scores(s: Session) -> dict[str, str]:
    """The last evaluation's scores against random, short, for the progress bar."""
    if not s.eval_history:
        return {}
    last = s.eval_history[-1]
    return {t[:8]: f"{last[t]['random']:.2f}" for t in s.games if "random" in last.get(t, {})}


def _scores(results: dict[str, dict[str, EvalResult]]) -> dict[str, dict[str, float]]:
    return {t: {o: r.score for o, r in per.items()} for t, per in results.items()}


def _write_eval(s: Session, results: dict[str, dict[str, EvalResult]]) -> None:
    data = {
        "global_step": s.global_step,
        "games": {t: {o: r.to_dict() for o, r in per.items()} for t, per in results.items()},
        "history": s.eval_history,
    }
    (s.path / "eval.json").write_text(json.dumps(data, indent=1))


def _hparams(cfg: TrainConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"suite": cfg.suite.name, "agent": cfg.agent}
    for section in ("net", "ppo", "train"):
        for k, v in dataclasses.asdict(getattr(cfg, section)).items():
            if isinstance(v, (int, float, str, bool)):
                out[f"{section}.{k}"] = v
    return out
