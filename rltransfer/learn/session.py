"""A training session: everything the loop mutates, built fresh, saved and restored.

:class:`Session` holds the games, the network, the optimiser, each game's self-play
(PPO's collectors or search self-play), the generators and the counters; a checkpoint
saves all of it (:func:`save_session`) and :func:`restore_session` puts it back, so a
resumed run continues exactly. The loop itself is :mod:`rltransfer.learn.training`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import torch

from rltransfer.games.core import BoardGame
from rltransfer.learn.collector import GameCollector, SnapshotPool
from rltransfer.learn.compiled import Compiler
from rltransfer.learn.confusion import GameClassifier
from rltransfer.learn.distributed import Ranks
from rltransfer.learn.ppo import linear_lr
from rltransfer.learn.search_selfplay import SearchSelfPlay
from rltransfer.net.policy import PolicyNet, TaskShape
from rltransfer.runs.checkpoint import (
    load_into,
    load_meta,
    load_trainer,
    load_weights,
    save_checkpoint,
)
from rltransfer.specs.config import (
    ConfigError,
    TrainConfig,
    check_device,
)
from rltransfer.transfer.network import param_groups, transfer_net


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else the CPU; checks that a named CUDA device exists."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    check_device(name)
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {name!r} asked for, but torch sees no CUDA device (use cpu or auto)"
        )
    if device.type not in ("cpu", "cuda", "mps", "xpu"):
        raise ConfigError(f"device {name!r}: training runs on cpu, cuda or cuda:N (or mps, xpu)")
    if device.type != "cpu":
        try:
            torch.empty(0, device=device)  # e.g. cuda:7 on a one-GPU machine, mps without it
        except (RuntimeError, AssertionError) as e:
            first = (str(e).splitlines() or [""])[0].split(". ")[0][:120]
            raise ConfigError(f"device {name!r} cannot be used here ({first})") from None
    return device


@dataclasses.dataclass
class Session:
    """Everything the loop mutates; a checkpoint saves all of it."""

    cfg: TrainConfig
    path: Path
    device: torch.device
    games: dict[str, BoardGame]
    net: PolicyNet
    optimizer: torch.optim.Optimizer
    collectors: dict[str, GameCollector]
    pool: SnapshotPool
    gen_collect: torch.Generator
    gen_update: torch.Generator
    iteration: int = 0
    global_step: int = 0
    eval_history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: where the learning-rate decay restarts, ``(iteration, rate)``; set when a resume
    #: extends the budget or changes the rate (see :func:`rltransfer.learn.ppo.linear_lr`)
    lr_start: tuple[int, float] | None = None
    #: the domain-confusion classifier (``ppo.confusion_coef`` > 0), trained with the net
    classifier: GameClassifier | None = None
    #: this process among the training processes (``torchrun``; one by default)
    ranks: Ranks = dataclasses.field(default_factory=Ranks.single)
    #: search self-play per game (``train.algorithm = "alphazero"``; then no collectors)
    players: dict[str, SearchSelfPlay] = dataclasses.field(default_factory=dict)
    #: the loop's compiled functions (``train.compile``), shared by collectors and update
    compiler: Compiler = dataclasses.field(default_factory=Compiler)

    @property
    def steps_per_iteration(self) -> int:
        """Learner steps of one iteration, every rank's boards together: PPO's learner
        decisions, or the positions search self-play searched and recorded."""
        local = sum(c.num_envs * c.num_steps for c in self.collectors.values())
        local += sum(p.steps_per_iteration for p in self.players.values())
        return local * self.ranks.world_size

    @property
    def num_iterations(self) -> int:
        return self.iterations_for(self.cfg.train.total_steps)

    def iterations_for(self, total_steps: int) -> int:
        """Whole iterations a budget of ``total_steps`` learner decisions takes (the one
        home of that rule: experiments and resumes ask here)."""
        return max(1, math.ceil(total_steps / self.steps_per_iteration))

    def learning_rate(self, iteration: int) -> float:
        """The rate of 1-based ``iteration`` under this session's schedule."""
        return linear_lr(self.cfg.ppo, iteration, self.num_iterations, self.lr_start)


def build_session(
    cfg: TrainConfig, path: Path, net: PolicyNet | None = None, ranks: Ranks | None = None
) -> Session:
    """Games, network, optimizer, collectors and generators for ``cfg`` (fresh state).

    Over several processes (``ranks``) every rank builds the same network (rank 0's
    weights are broadcast), steps its own boards with its own collection generator
    (seeded ``seed + 7919 * rank``) and shares the update generator (the same minibatches).
    """
    ranks = ranks if ranks is not None else Ranks.single()
    device = ranks.device(resolve_device(cfg.train.device))
    ranks.init(device)
    seed = cfg.train.seed
    games = {g.name: g.make() for g in cfg.suite.games}
    torch.manual_seed(seed)  # network initialisation
    if net is None and cfg.transfer.source:
        if len(games) != 1:
            raise ConfigError(f"a transfer run trains one target game, not {list(games)}")
        ((task, game),) = games.items()
        t = cfg.transfer
        net = transfer_net(
            t.source, task, game, t.keep_heads, device,
            stem_from=t.stem_from, heads_from=t.heads_from, reset_last=t.reset_last,
        )  # fmt: skip
    elif net is None:
        net = PolicyNet({k: TaskShape.of(g) for k, g in games.items()}, cfg.net)
    net = net.to(device)
    groups = param_groups(net, cfg.transfer.trunk_lr_scale if cfg.transfer.source else 1.0)
    classifier = None
    search_trained = cfg.train.algorithm == "alphazero"
    if search_trained and cfg.ppo.confusion_coef > 0:
        raise ConfigError("ppo.confusion_coef is PPO's; train.algorithm = 'alphazero' has none")
    if search_trained and cfg.train.compile != "off":
        raise ConfigError(
            "train.compile compiles PPO's loop; train.algorithm = 'alphazero' runs uncompiled "
            "(leave train.compile = 'off')"
        )
    if cfg.ppo.confusion_coef > 0:
        if len(games) < 2:
            raise ConfigError(
                "ppo.confusion_coef > 0 trains the trunk to confuse the suite's games: it needs "
                f"two or more games, this suite has {list(games)}"
            )
        classifier = GameClassifier(list(games), cfg.net.channels).to(device)
        groups.append({"params": list(classifier.parameters()), "lr_scale": 1.0,
                       "name": "game_classifier"})  # fmt: skip
    ranks.broadcast_parameters(net)
    if classifier is not None:
        ranks.broadcast_parameters(classifier)
    optimizer: torch.optim.Optimizer = (
        torch.optim.AdamW(
            groups, lr=cfg.alphazero.learning_rate, weight_decay=cfg.alphazero.weight_decay
        )
        if search_trained
        else torch.optim.Adam(groups, lr=cfg.ppo.learning_rate, eps=1e-5)
    )
    gen_collect = torch.Generator(device=device).manual_seed(seed + 7919 * ranks.rank)
    gen_update = torch.Generator(device=device).manual_seed(seed + 1)
    boards = {g.name: max(1, round(g.num_envs * cfg.train.num_envs_scale)) for g in cfg.suite.games}
    players = {
        g.name: SearchSelfPlay(
            g.name, games[g.name], boards[g.name], cfg.alphazero, device, gen_collect
        )
        for g in cfg.suite.games
        if search_trained
    }
    compiler = Compiler(cfg.train.compile)
    collectors = {
        g.name: GameCollector(
            g.name,
            games[g.name],
            max(1, round(g.num_envs * cfg.train.num_envs_scale)),
            g.steps(cfg.ppo.num_steps),
            cfg.selfplay,
            device,
            gen_collect,
            compiler,
        )
        for g in cfg.suite.games
        if not search_trained
    }
    for name, c in collectors.items():
        if c.num_envs * c.num_steps < cfg.ppo.num_minibatches:
            raise ConfigError(
                f"ppo.num_minibatches ({cfg.ppo.num_minibatches}) is larger than {name}'s batch "
                f"({c.num_envs} boards x {c.num_steps} steps = {c.num_envs * c.num_steps}); "
                "lower it or give the game more boards"
            )
    return Session(
        cfg, path, device, games, net, optimizer, collectors, SnapshotPool(cfg.selfplay.pool_size),
        gen_collect, gen_update, classifier=classifier, ranks=ranks, players=players,
        compiler=compiler,
    )  # fmt: skip


# ------------------------------------------------------------------------ checkpoints
def save_session(s: Session) -> Path:
    """Write a checkpoint; over several processes a collective call of every rank: rank 0
    writes, with every rank's boards and collection generator (``trainer["ranks"]``, rank
    1 on, beside rank 0's own in the single-process places). Returns the checkpoint."""
    mine = {
        "gen_collect": s.gen_collect.get_state(),
        "collectors": {k: c.state_dict() for k, c in s.collectors.items()},
        "players": {k: p.state_dict() for k, p in s.players.items()},
    }
    everyone = s.ranks.gather(_to_host(mine) if s.ranks.distributed else mine)
    if everyone is None:  # not rank 0: it writes, and says where
        return Path(s.ranks.broadcast(None))
    meta = {
        "tasks": {k: dataclasses.asdict(t) for k, t in s.net.tasks.items()},
        "planes": {k: list(game.planes) for k, game in s.games.items()},
        "net": dataclasses.asdict(s.net.cfg),
        "suite": s.cfg.sections()["suite"],
        "iteration": s.iteration,
        "global_step": s.global_step,
    }
    trainer = {
        "optimizer": s.optimizer.state_dict(),
        "gen_collect": mine["gen_collect"],
        "gen_update": s.gen_update.get_state(),
        "collectors": mine["collectors"],
        "players": mine["players"],
        "pool": s.pool.weights,
        "iteration": s.iteration,
        "global_step": s.global_step,
        "eval_history": json.dumps(s.eval_history),
        "device": s.device.type,
    }
    if s.lr_start is not None:
        trainer["lr_start"] = [s.lr_start[0], s.lr_start[1]]
    if s.classifier is not None:
        trainer["classifier"] = s.classifier.state_dict()
    if s.ranks.distributed:
        trainer["world_size"] = s.ranks.world_size
        trainer["ranks"] = everyone[1:]
    t = s.cfg.train
    ckpt = save_checkpoint(
        s.path, s.net.state_dict(), meta, trainer,
        keep=t.keep_checkpoints, milestone=t.milestone_interval,
    )  # fmt: skip
    return Path(s.ranks.broadcast(str(ckpt)))


def _to_host(obj: Any) -> Any:
    """Tensors of a nested dict on the CPU (to cross between ranks as objects)."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _to_host(v) for k, v in obj.items()}
    return obj


def restore_session(s: Session, ckpt: Path) -> None:
    """Load a checkpoint's weights and trainer state into a freshly built session."""
    load_meta(ckpt)
    load_into(s.net, load_weights(ckpt, s.device), ckpt / "model.safetensors")
    t = load_trainer(ckpt)
    saved_world = int(t.get("world_size", 1))
    if saved_world != s.ranks.world_size:
        raise ConfigError(
            f"{ckpt} was saved by {saved_world} training process(es); resume it with as many "
            f"(this is {s.ranks.world_size}): each one's boards and generator are in it"
        )
    own = t if s.ranks.rank == 0 else t["ranks"][s.ranks.rank - 1]
    try:
        s.optimizer.load_state_dict(t["optimizer"])
        if t.get("device", s.device.type) == s.device.type:
            s.gen_collect.set_state(own["gen_collect"])
            s.gen_update.set_state(t["gen_update"])
        else:  # another device's generator state does not fit: reseed (not bit-exact)
            reseed = s.cfg.train.seed + 1_000_003 * (int(t["iteration"]) + 1)
            s.gen_collect.manual_seed(reseed + 7919 * s.ranks.rank)
            s.gen_update.manual_seed(reseed + 1)
        for k, c in s.collectors.items():
            c.load_state_dict(own["collectors"][k])
        for k, p in s.players.items():
            p.load_state_dict(own["players"][k])
        s.pool.weights = [{k: v.to(s.device) for k, v in w.items()} for w in t["pool"]]
        s.iteration, s.global_step = int(t["iteration"]), int(t["global_step"])
        s.eval_history = json.loads(t["eval_history"])
        if "lr_start" in t:
            s.lr_start = (int(t["lr_start"][0]), float(t["lr_start"][1]))
        if s.classifier is not None:
            s.classifier.load_state_dict(t["classifier"])
    except (KeyError, ValueError, RuntimeError, TypeError, IndexError) as e:
        raise ConfigError(f"{ckpt}/trainer.pt does not fit this run's config: {e}") from None
