"""Baselines from outside rltransfer, measured with rltransfer's own yardstick.

``train_sb3`` trains sb3-contrib's ``MaskablePPO`` (a standard, well-tested single-task
PPO with action masking) on one game against a fixed opponent, through
:class:`~rltransfer.interop.sb3.BoardGameVecEnv`, and evaluates it exactly as rltransfer evaluates
its own runs: :func:`~rltransfer.play.evaluate.play_match` against ``random`` and ``greedy``,
both seats, the policy sampling its moves. Everything lands in ``runs/<name>/`` under the
same TensorBoard tags as an rltransfer run (``games/<task>/score_vs_random``,
``charts/sps``, ``losses/*``, ...), with the same ``eval.json``, so the two overlay in one
TensorBoard and compare in numbers. ``<task>`` is the name an rltransfer suite would give
the game (``othello_size6``). Steps count agent decisions, as rltransfer's learner steps.

Loss tags map SB3's names: ``train/policy_gradient_loss`` -> ``losses/policy``,
``train/value_loss`` -> ``losses/value`` (SB3: the plain MSE), ``-train/entropy_loss`` ->
``losses/entropy`` (SB3 logs the negated entropy), ``train/clip_fraction`` ->
``losses/clipfrac``; ``approx_kl`` and ``explained_variance`` keep their names.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecMonitor
from tqdm import tqdm

from rltransfer.games import parse_game_spec
from rltransfer.games.core import BoardGame
from rltransfer.interop.sb3 import BoardGameVecEnv, SB3Player
from rltransfer.learn.collector import SelfPlayConfig
from rltransfer.play.evaluate import EvalResult, evaluate_against, format_results
from rltransfer.play.players import GreedyPlayer, MixedPlayer, RandomPlayer
from rltransfer.runs.folder import check_new_run, claim_run, write_text_atomic
from rltransfer.runs.metrics import (
    CHARTS_LEARNING_RATE,
    CHARTS_SPS,
    RunLogger,
    game_tag,
    loss_tag,
    score_tag,
    tensorboard_command,
    train_win_rate_tag,
    win_rate_tag,
)
from rltransfer.specs.config import ConfigError, GameSpec, check_int

#: SB3 logger key -> (rltransfer tag, sign).
_SB3_STATS = {
    "train/policy_gradient_loss": (loss_tag("policy"), 1.0),
    "train/value_loss": (loss_tag("value"), 1.0),
    "train/entropy_loss": (loss_tag("entropy"), -1.0),
    "train/approx_kl": (loss_tag("approx_kl"), 1.0),
    "train/clip_fraction": (loss_tag("clipfrac"), 1.0),
    "train/explained_variance": (loss_tag("explained_variance"), 1.0),
    "train/learning_rate": (CHARTS_LEARNING_RATE, 1.0),
}


@dataclasses.dataclass(frozen=True)
class SB3Config:
    """One SB3 baseline run. PPO settings are ``MaskablePPO``'s arguments."""

    game: str  # "tic_tac_toe", "othello:size=6", ...
    steps: int  # agent decisions (rounded up to whole rollouts of n_envs * n_steps)
    seed: int = 0
    # the training opponent: "mix" (rltransfer's self-play mix: the model itself on the
    # self + snapshot share of the boards, random and greedy on theirs), a player name, or
    # a run path
    opponent: str = "mix"
    n_envs: int = 16
    n_steps: int = 128
    batch_size: int = 256
    n_epochs: int = 4
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    ent_coef: float = 0.01
    eval_games: int = 200  # games per opponent at each evaluation
    final_eval_games: int = 1000  # games per opponent in eval.json
    eval_interval: int = 0  # agent steps between evaluations; 0: about ten in a run
    eval_opponents: tuple[str, ...] = ("random", "greedy")
    device: str = "cpu"  # SB3's MLP policies run best on the CPU

    @property
    def rollout(self) -> int:
        return self.n_envs * self.n_steps

    @property
    def total_steps(self) -> int:
        return max(1, math.ceil(self.steps / self.rollout)) * self.rollout

    @property
    def task(self) -> str:
        game_id, options = parse_game_spec(self.game)
        return GameSpec(id=game_id, options=options).name

    def __post_init__(self) -> None:
        for name in ("steps", "n_envs", "n_steps", "batch_size", "n_epochs", "eval_games",
                     "final_eval_games"):  # fmt: skip
            check_int(name, getattr(self, name), 1)
        check_int("eval_interval", self.eval_interval, 0)

    def make_game(self) -> BoardGame:
        game_id, options = parse_game_spec(self.game)
        return GameSpec(id=game_id, options=options).make()


def train_sb3(
    cfg: SB3Config,
    run_dir: str | Path = "runs",
    name: str = "",
    *,
    overwrite: bool = False,
    quiet: bool = False,
) -> Path:
    """Train ``MaskablePPO`` per ``cfg`` into ``run_dir/<name>``; returns the run's path.

    Writes TensorBoard events, ``eval.json`` (final evaluation and the score history),
    ``baseline.json`` (the settings and versions) and ``model.zip`` (``MaskablePPO.load``).
    """
    try:
        from sb3_contrib import MaskablePPO
    except ImportError:
        raise ConfigError(
            "the SB3 baseline needs sb3-contrib (MaskablePPO): pip install sb3-contrib"
        ) from None
    game = cfg.make_game()
    name = name or f"sb3_{cfg.task}_{time.strftime('%Y%m%d-%H%M%S')}"
    path = check_new_run(run_dir, name, overwrite)
    mix = _self_play_mix() if cfg.opponent == "mix" else None
    env = VecMonitor(BoardGameVecEnv(game, cfg.n_envs, opponent=mix or cfg.opponent))
    ppo = ("learning_rate", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "ent_coef")
    kwargs = {k: getattr(cfg, k) for k in ppo}
    model = MaskablePPO("MlpPolicy", env, seed=cfg.seed, device=cfg.device, verbose=0, **kwargs)
    if mix is not None:  # the model exists now: it takes the self-play share of the boards
        mix.parts[0] = (SB3Player(model), mix.parts[0][1])
    with claim_run(run_dir, name, overwrite):  # a replaced run goes once this one is done
        write_text_atomic(path / "baseline.json", json.dumps(_describe(cfg), indent=1))
        final = _learn(cfg, game, model, path, quiet)
        model.save(path / "model.zip")
    env.close()
    if not quiet:
        print(format_results(list(final.values())))
        print(f"Run saved in {path}. Look at it with:\n  {tensorboard_command(path.parent)}")
    return path


def _learn(
    cfg: SB3Config, game: BoardGame, model: Any, path: Path, quiet: bool
) -> dict[str, EvalResult]:
    """Train ``model`` with rltransfer's logging and evaluation; the final evaluation."""
    with RunLogger(path) as logger:
        logger.config_table(_describe(cfg))
        callback = RltransferCallback(cfg, game, logger, quiet)
        model.learn(cfg.total_steps, callback=callback)
        callback.bar.close()
        final = _evaluate(cfg, game, SB3Player(model), cfg.final_eval_games, cfg.seed + 10**6)
        data = {
            "global_step": model.num_timesteps,
            "games": {cfg.task: {o: r.to_dict() for o, r in final.items()}},
            "history": callback.history,
        }
        write_text_atomic(path / "eval.json", json.dumps(data, indent=1))
        logger.hparams(_describe(cfg), {score_tag(cfg.task, o): r.score for o, r in final.items()})
    return final


def _self_play_mix() -> MixedPlayer:
    """rltransfer's default opponent mix (``SelfPlayConfig``) for one SB3 model.

    SB3 keeps no snapshot pool, so the self and snapshot shares both go to the current
    model (set once it exists; random moves stand in before that).
    """
    mix = SelfPlayConfig()
    return MixedPlayer(
        [
            (RandomPlayer(), mix.self + mix.snapshot),
            (RandomPlayer(), mix.random),
            (GreedyPlayer(), mix.greedy),
        ]
    )


class RltransferCallback(BaseCallback):
    """Logs rltransfer's tags during ``learn`` and evaluates every ``eval_interval`` steps.

    An SB3 iteration is a rollout then an update; the update's statistics are in SB3's
    logger when the next rollout starts (SB3 dumps them only after that rollout), so each
    iteration is logged at the start of the next one and at the end of training, at the
    step count the iteration reached. ``charts/sps`` covers rollout and update, like
    rltransfer's; evaluations are not timed.
    """

    def __init__(self, cfg: SB3Config, game: BoardGame, logger: RunLogger, quiet: bool) -> None:
        super().__init__()
        self.cfg, self.game, self.run_logger = cfg, game, logger
        self.interval = cfg.eval_interval or max(1, cfg.total_steps // 10)
        self.next_eval = self.interval
        self.history: list[dict[str, Any]] = []
        self.evaluations = 0
        self.bar = tqdm(total=cfg.total_steps, unit="step", disable=quiet, dynamic_ncols=True)
        self._start: tuple[float, int] | None = None
        self._outcomes: list[float] = []

    def _on_training_start(self) -> None:
        self._evaluate(0)  # the untrained policy: the curve's first point, as in rltransfer

    def _on_rollout_start(self) -> None:
        self._finish_iteration()
        self._start = (time.perf_counter(), self.num_timesteps)

    def _on_step(self) -> bool:
        dones = self.locals["dones"]
        if dones.any():  # a game's only non-zero reward is its result
            self._outcomes.extend(self.locals["rewards"][dones].tolist())
        return True

    def _on_training_end(self) -> None:
        self._finish_iteration()

    def _finish_iteration(self) -> None:
        if self._start is None:
            return
        started, steps_before = self._start
        self._start = None
        step = self.num_timesteps
        scalars = {CHARTS_SPS: (step - steps_before) / (time.perf_counter() - started)}
        logged = self.model.logger.name_to_value
        for key, (tag, sign) in _SB3_STATS.items():
            if key in logged:
                scalars[tag] = sign * float(logged[key])
        scalars.update(self._episode_scalars())
        self.run_logger.scalars(step, scalars)
        if step >= self.next_eval or step >= self.cfg.total_steps:
            self._evaluate(step)
            self.next_eval = step + self.interval
        self.bar.set_postfix({"sps": f"{scalars[CHARTS_SPS]:,.0f}", **self._latest()})
        self.bar.update(step - self.bar.n)

    def _episode_scalars(self) -> dict[str, float]:
        outcomes, self._outcomes = self._outcomes, []
        if not outcomes:
            return {}
        task, n = self.cfg.task, len(outcomes)
        wins = sum(o > 0 for o in outcomes)
        return {
            game_tag(task, "return"): sum(outcomes) / n,
            train_win_rate_tag(task, _tag_name(self.cfg.opponent)): wins / n,
        }

    def _evaluate(self, step: int) -> None:
        player = SB3Player(self.model)
        seed = self.cfg.seed + self.evaluations
        results = _evaluate(self.cfg, self.game, player, self.cfg.eval_games, seed)
        self.evaluations += 1
        scalars: dict[str, float] = {}
        for opp, r in results.items():
            scalars[score_tag(self.cfg.task, opp)] = r.score
            scalars[win_rate_tag(self.cfg.task, opp)] = r.wins / r.games
        self.run_logger.scalars(step, scalars)
        self.history.append(
            {"global_step": step, self.cfg.task: {o: r.score for o, r in results.items()}}
        )

    def _latest(self) -> dict[str, str]:
        last = self.history[-1][self.cfg.task] if self.history else {}
        return {f"vs_{o}": f"{s:.2f}" for o, s in last.items()}


def _evaluate(
    cfg: SB3Config, game: BoardGame, player: SB3Player, num_games: int, seed: int
) -> dict[str, EvalResult]:
    gen = torch.Generator().manual_seed(seed)
    return evaluate_against(game, player, cfg.eval_opponents, num_games, gen, task=cfg.task)


def _tag_name(opponent: str) -> str:
    """A run path as an opponent: its folder name, so the tag stays one segment."""
    return Path(opponent).name if "/" in opponent else opponent


def _describe(cfg: SB3Config) -> dict[str, Any]:
    import sb3_contrib
    import stable_baselines3

    from rltransfer._version import __version__

    return {
        "algorithm": "sb3_contrib.MaskablePPO",
        "policy": "MlpPolicy",
        "task": cfg.task,
        **{k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()},
        "total_steps": cfg.total_steps,
        "versions": {
            "rltransfer": __version__,
            "stable_baselines3": stable_baselines3.__version__,
            "sb3_contrib": sb3_contrib.__version__,
            "torch": torch.__version__,
        },
    }
