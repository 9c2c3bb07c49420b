"""The multitask policy: per-game stems, one shared trunk, per-game heads.

::

    planes [N, C_g, H, W] -stem[g]-> [N, D, H, W] -trunk-> features [N, D, H, W]
    features -policy_head[g]-> logits [N, A_g]      features -value_head[g]-> value [N] in [-1, 1]

Everything is convolutional or globally pooled, so one trunk serves every board size and
a head trained on Othello 6x6 runs unchanged on 8x8 (the transfer module relies on it).
The one exception is the *flat* policy head of games whose actions are not cells (chess's
4,672 moves through PettingZoo): a 1x1 convolution, then a linear layer from the whole
board to the actions, so it is tied to one board size and one action set.
Normalisation is GroupNorm, computed per board: a board's output never depends on the
other boards or games in the batch (BatchNorm would mix them).

Illegal actions get probability exactly 0: their logits are set to the dtype's most
negative finite value (not ``-inf``, which turns the entropy into NaN).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.distributions import Categorical

from rltransfer.games.core import BoardGame
from rltransfer.specs.config import NetConfig, check_int

_TASK_BOUNDS = {
    "num_planes": (1, 4096),
    "height": (1, 256),
    "width": (1, 256),
    "num_actions": (1, 1 << 20),
}


HEAD_TYPES = ("conv", "flat")


@dataclasses.dataclass(frozen=True)
class TaskShape:
    """What the network needs to know about one game (a task) of a suite."""

    num_planes: int
    height: int
    width: int
    num_actions: int
    has_pass: bool
    #: ``"conv"``: actions are cells (+ pass), the fully convolutional head; ``"flat"``: any
    #: other action set, a linear head over the whole board (fixed size). Checkpoints
    #: written before flat heads existed have no such key and mean ``"conv"``.
    head: str = "conv"

    def __post_init__(self) -> None:
        for name, (lo, hi) in _TASK_BOUNDS.items():
            check_int(f"task {name}", getattr(self, name), lo, hi)
        if self.head not in HEAD_TYPES:
            raise ValueError(f"policy head type must be one of {HEAD_TYPES}, got {self.head!r}")
        if self.head == "conv":
            cells = self.height * self.width + int(self.has_pass)
            if cells != self.num_actions:
                raise ValueError(
                    f"a convolutional policy head gives H*W (+1 pass) = {cells} logits, but the "
                    f"game has {self.num_actions} actions; use head='flat'"
                )

    @classmethod
    def of(cls, game: BoardGame) -> TaskShape:
        head = "conv" if game.cell_actions else "flat"
        return cls(game.num_planes, game.height, game.width, game.num_actions, game.has_pass, head)


def _norm(cfg: NetConfig) -> nn.Module:
    return nn.GroupNorm(cfg.groups, cfg.channels) if cfg.groups else nn.Identity()


class Stem(nn.Module):
    """A game's planes -> D trunk channels."""

    def __init__(self, num_planes: int, cfg: NetConfig) -> None:
        super().__init__()
        self.conv = nn.Conv2d(num_planes, cfg.channels, 3, padding=1, bias=not cfg.groups)
        self.norm = _norm(cfg)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.norm(self.conv(x)))


class ResidualBlock(nn.Module):
    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        d = cfg.channels
        self.conv1 = nn.Conv2d(d, d, 3, padding=1, bias=not cfg.groups)
        self.norm1 = _norm(cfg)
        self.conv2 = nn.Conv2d(d, d, 3, padding=1, bias=not cfg.groups)
        self.norm2 = _norm(cfg)

    def forward(self, x: Tensor) -> Tensor:
        y = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(x + self.norm2(self.conv2(y)))


class Trunk(nn.Module):
    """The shared part: residual blocks at constant width, any board size."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(ResidualBlock(cfg) for _ in range(cfg.blocks)))

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x)


class PolicyHead(nn.Module):
    """Fully convolutional cell logits, plus a pooled pass logit where the game has one."""

    def __init__(self, task: TaskShape, cfg: NetConfig) -> None:
        super().__init__()
        self.hidden = nn.Conv2d(cfg.channels, cfg.policy_channels, 1)
        self.out = nn.Conv2d(cfg.policy_channels, 1, 1)
        self.pass_logit = nn.Linear(cfg.channels, 1) if task.has_pass else None

    def forward(self, x: Tensor) -> Tensor:
        cells = self.out(torch.relu(self.hidden(x))).flatten(1)  # [N, H*W]
        if self.pass_logit is None:
            return cells
        return torch.cat([cells, self.pass_logit(x.mean(dim=(2, 3)))], dim=1)


class FlatPolicyHead(nn.Module):
    """Logits for actions that are not cells: 1x1 conv to a few channels, flatten, linear.

    The few channels keep the linear layer small (chess: 8 x 64 inputs x 4,672 actions,
    2.4M weights, against 32 x 64 x 4,672 straight from the trunk) while every square's
    features still reach every move, as in AlphaZero's chess policy head.
    """

    def __init__(self, task: TaskShape, cfg: NetConfig) -> None:
        super().__init__()
        self.hidden = nn.Conv2d(cfg.channels, cfg.policy_channels, 1)
        self.out = nn.Linear(cfg.policy_channels * task.height * task.width, task.num_actions)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(torch.relu(self.hidden(x)).flatten(1))  # [N, A]


def make_policy_head(task: TaskShape, cfg: NetConfig) -> nn.Module:
    """The policy head that fits a task's action set (see :attr:`TaskShape.head`)."""
    return FlatPolicyHead(task, cfg) if task.head == "flat" else PolicyHead(task, cfg)


class ValueHead(nn.Module):
    """Global average pooling, then a small MLP to a value in [-1, 1]."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cfg.channels, cfg.value_channels, 1)
        self.fc1 = nn.Linear(cfg.value_channels, cfg.value_hidden)
        self.fc2 = nn.Linear(cfg.value_hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.relu(self.conv(x)).mean(dim=(2, 3))
        return torch.tanh(self.fc2(torch.relu(self.fc1(pooled))))[:, 0]


class PolicyNet(nn.Module):
    """Stems and heads per task (keyed by task name), one shared trunk."""

    def __init__(self, tasks: Mapping[str, TaskShape], cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tasks = dict(tasks)
        self.stems = nn.ModuleDict({k: Stem(t.num_planes, cfg) for k, t in tasks.items()})
        self.trunk = Trunk(cfg)
        self.policy_heads = nn.ModuleDict({k: make_policy_head(t, cfg) for k, t in tasks.items()})
        self.value_heads = nn.ModuleDict({k: ValueHead(cfg) for k, t in tasks.items()})

    def forward(self, task: str, obs: Tensor) -> tuple[Tensor, Tensor]:
        """``obs`` [N, C, H, W] -> (raw logits [N, A], value [N])."""
        return self.heads(task, self.features(task, obs))

    def features(self, task: str, obs: Tensor) -> Tensor:
        """The shared trunk's output for ``obs`` [N, C, H, W]: [N, D, H, W]."""
        if task not in self.tasks:
            raise KeyError(f"the network has no task {task!r}; its tasks: {', '.join(self.tasks)}")
        with self._autocast(obs):
            return self.trunk(self.stems[task](obs))

    def heads(self, task: str, features: Tensor) -> tuple[Tensor, Tensor]:
        """Trunk ``features`` [N, D, H, W] -> (raw logits [N, A], value [N]) of ``task``."""
        with self._autocast(features):
            logits, value = self.policy_heads[task](features), self.value_heads[task](features)
        return logits.float(), value.float()

    def _autocast(self, x: Tensor) -> torch.autocast:
        low = self.cfg.precision == "bfloat16"
        return torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=low)

    def distribution(self, task: str, obs: Tensor, mask: Tensor) -> tuple[Categorical, Tensor]:
        """(masked action distribution, value) for ``obs`` with legal ``mask`` [N, A]."""
        return self.distribution_of(task, self.features(task, obs), mask)

    def distribution_of(
        self, task: str, features: Tensor, mask: Tensor
    ) -> tuple[Categorical, Tensor]:
        """:meth:`distribution` from trunk ``features`` already computed."""
        logits, value = self.heads(task, features)
        # no argument validation: NaN logits must reach the loss, where training stops cleanly
        return Categorical(logits=masked_logits(logits, mask), validate_args=False), value

    @torch.no_grad()
    def act(
        self, task: str, obs: Tensor, mask: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Sample actions: (action [N] int64, log-prob [N], value [N])."""
        return self.act_with_noise(task, obs, mask, action_noise(mask, generator))

    @torch.no_grad()
    def act_with_noise(
        self, task: str, obs: Tensor, mask: Tensor, noise: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`act` with its uniform ``noise`` [N, A] drawn by the caller
        (:func:`action_noise`): a pure function of its inputs, so a compiled copy
        (:mod:`rltransfer.learn.compiled`) samples exactly the actions the eager one does."""
        logits, value = self(task, obs)
        logp = masked_log_probs(logits, mask)
        action = gumbel_argmax(logp, noise)
        return action, logp.gather(1, action[:, None])[:, 0], value

    def policy_terms(
        self, task: str, features: Tensor, mask: Tensor, actions: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(log pi(actions) [N], entropy [N], value [N]) from trunk ``features``: what
        PPO's loss needs, as plain tensor operations (no ``Categorical``), so the update
        compiles to one graph. The same numbers as :meth:`distribution_of`'s."""
        logits, value = self.heads(task, features)
        logp = masked_log_probs(logits, mask)
        entropy = -(logp.exp() * logp).sum(dim=1)
        return logp.gather(1, actions[:, None])[:, 0], entropy, value


def masked_logits(logits: Tensor, mask: Tensor) -> Tensor:
    """Illegal actions -> the most negative finite value, so their probability is 0."""
    return logits.masked_fill(~mask, torch.finfo(logits.dtype).min)


def masked_log_probs(logits: Tensor, mask: Tensor) -> Tensor:
    """Log-probabilities [N, A] of the policy restricted to the legal ``mask``: illegal
    actions get log-probability about -3.4e38 (probability exactly 0), never -inf."""
    return torch.log_softmax(masked_logits(logits, mask), dim=1)


def sample_logits(logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One categorical sample per row via the Gumbel-max trick (seedable by ``generator``)."""
    return gumbel_argmax(logits, action_noise(logits, generator))


def action_noise(like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Uniform noise [N, A] in float32 for :func:`gumbel_argmax`, shaped like the logits
    or the legal mask ``like``, from ``generator``."""
    return torch.rand(like.shape, generator=generator, device=like.device, dtype=torch.float32)


def gumbel_argmax(logits: Tensor, noise: Tensor) -> Tensor:
    """The Gumbel-max trick: argmax(logits + Gumbel(uniform ``noise``)) samples a row's
    categorical distribution."""
    gumbel = -torch.log(-torch.log(noise.clamp_min(1e-20)))
    return (logits + gumbel).argmax(dim=1)
