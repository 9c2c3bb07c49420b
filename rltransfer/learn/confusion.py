"""Which game is this? Domain confusion for the shared trunk, and a probe that measures it.

The seed idea of the project: a trunk whose features do not tell the games apart carries
what it learned to a new game more readily. Two tools test that idea, neither assumes it:

* :class:`GameClassifier`, an opt-in auxiliary loss (``ppo.confusion_coef`` = lambda > 0):
  a linear classifier on the trunk's pooled features learns which game a position comes
  from, behind a gradient-reversal layer (Ganin & Lempitsky 2015, "Unsupervised Domain
  Adaptation by Backpropagation"): the classifier minimises its cross-entropy while the
  trunk receives ``-lambda`` times that gradient, i.e. learns to confuse it.
* :func:`game_probe`, a diagnostic every multitask run logs: a linear probe (logistic
  regression) fitted on frozen pooled trunk features of positions from random play, its
  accuracy on held-out positions. Board size alone separates games (pooled features of a
  3x3 and a 7x7 board differ whatever the weights), so the same probe on a randomly
  initialised trunk is the baseline to read it against.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rltransfer.games.core import BoardGame
from rltransfer.net.policy import PolicyNet


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient times ``-scale`` backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.scale * grad, None


def reverse_gradient(x: Tensor, scale: float) -> Tensor:
    """``x`` unchanged, with the gradient that flows back through it scaled by ``-scale``."""
    out: Tensor = _ReverseGradient.apply(x, scale)
    return out


class GameClassifier(nn.Module):
    """Pooled trunk features [N, D] -> logits over the suite's games [N, G]."""

    def __init__(self, tasks: list[str], channels: int) -> None:
        super().__init__()
        self.tasks = list(tasks)
        self.linear = nn.Linear(channels, len(self.tasks))

    def loss(self, features: Mapping[str, Tensor], coef: float) -> tuple[Tensor, Tensor]:
        """Cross-entropy of telling the games apart from trunk ``features`` [N, D, H, W] per
        task, through a gradient reversal of strength ``coef``; and the accuracy."""
        pooled = torch.cat([reverse_gradient(f.float().mean(dim=(2, 3)), coef)
                            for f in features.values()])  # fmt: skip
        labels = torch.cat([
            torch.full((f.shape[0],), self.tasks.index(t), device=f.device)
            for t, f in features.items()
        ])  # fmt: skip
        logits = self.linear(pooled)
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        return F.cross_entropy(logits, labels), accuracy.detach()


# ------------------------------------------------------------------------------ the probe
def random_positions(
    game: BoardGame, count: int, generator: torch.Generator, device: torch.device
) -> Tensor:
    """``count`` observations [count, C, H, W] of positions from uniformly random play,
    at every ply from the opening on (boards that end restart), the mover's view."""
    boards = max(1, count // 16)
    state = game.init(boards, generator, device)
    seen: list[Tensor] = []
    while sum(len(o) for o in seen) < count:
        seen.append(game.observe(state))
        state = game.step(state, game.random_action(state, generator))
        state = game.reset_where(state, state.terminated, generator)
    return torch.cat(seen)[:count]


@torch.no_grad()
def pooled_features(net: PolicyNet, task: str, obs: Tensor) -> Tensor:
    """The trunk's features of ``obs``, averaged over the board: [N, D]."""
    return net.features(task, obs).float().mean(dim=(2, 3))


def game_probe(
    net: PolicyNet,
    games: Mapping[str, BoardGame],
    generator: torch.Generator,
    positions: int = 256,
    steps: int = 200,
) -> float:
    """Held-out accuracy of a linear probe telling the games apart from frozen, pooled trunk
    features (``positions`` per game from random play, 3/4 to fit, 1/4 to score)."""
    device = next(net.parameters()).device
    features, labels = [], []
    for label, (task, game) in enumerate(games.items()):
        obs = random_positions(game, positions, generator, device)
        features.append(pooled_features(net, task, obs))
        labels.append(torch.full((positions,), label, device=device))
    x, y = torch.cat(features), torch.cat(labels)
    order = torch.randperm(len(y), generator=generator, device=generator.device).to(device)
    x, y = x[order], y[order]
    x = (x - x.mean(dim=0)) / (x.std(dim=0) + 1e-6)
    split = 3 * len(y) // 4
    seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
    with torch.random.fork_rng(devices=[]):  # the probe's init: from ``generator`` alone
        torch.manual_seed(seed)
        probe = nn.Linear(x.shape[1], len(games)).to(device)
    with torch.enable_grad():
        optimizer = torch.optim.Adam(probe.parameters(), lr=0.05)
        for _ in range(steps):
            optimizer.zero_grad()
            F.cross_entropy(probe(x[:split]), y[:split]).backward()
            optimizer.step()
    return float((probe(x[split:]).argmax(dim=1) == y[split:]).float().mean())
