"""``load_policy``: a trained run's network, ready for inference in users' own code.

>>> policy = rltransfer.load_policy("runs/classic_ppo_small")
>>> actions = policy.act("connect_four", obs, legal_mask)   # obs [N, 2, 6, 7], mask [N, 42]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rltransfer.games.core import BoardGame, State
from rltransfer.net.policy import PolicyNet, masked_logits, sample_logits
from rltransfer.runs.checkpoint import (
    checkpoint_dir,
    find_task,
    load_into,
    load_weights,
    read_network,
)
from rltransfer.search import NetworkEvaluator, SearchConfig, SearchResult, search
from rltransfer.search.mcts import Rule
from rltransfer.specs.config import GameSpec


class LoadedPolicy:
    """A run's policy network with its games; :meth:`act` picks moves."""

    def __init__(self, net: PolicyNet, specs: dict[str, GameSpec], source: Path) -> None:
        self.net = net.eval()
        self.specs = specs
        self.source = source

    @property
    def games(self) -> list[str]:
        """Task names this policy plays (e.g. ``othello_size6``)."""
        return list(self.net.tasks)

    def task(self, game: str | BoardGame) -> str:
        """A task name from a task name, a game id that one task plays, or a built game
        (:func:`rltransfer.runs.checkpoint.find_task`: the one rule of every lookup)."""
        return find_task(self.specs, self.net.tasks, game, self.source)

    def search(
        self,
        game: BoardGame,
        state: State,
        simulations: int,
        *,
        rule: Rule = "gumbel",
        generator: torch.Generator | None = None,
    ) -> SearchResult:
        """Think before moving: a batched tree search of ``state`` [N boards] with this
        policy's prior and value (:func:`rltransfer.search.search`; ``rule`` ``"gumbel"``
        or ``"puct"``). ``result.action`` [N] are the moves; a search needs game *states*
        (observations alone cannot be searched) of a functional game."""
        evaluator = NetworkEvaluator(self.net, self.task(game))
        config = SearchConfig(simulations=simulations, rule=rule)
        return search(game, state, evaluator, config, generator)

    def make_game(self, game: str, **extra: Any) -> BoardGame:
        """The game (with the options it was trained on) for a task."""
        return self.specs[self.task(game)].make(**extra)

    @torch.no_grad()
    def act(
        self,
        game: str,
        obs: Tensor,
        legal_mask: Tensor,
        *,
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Actions [N] for observations [N, C, H, W] and legal masks [N, A].

        Deterministic (the most probable legal action) unless ``sample=True``.
        """
        task = self.task(game)
        shape = self.net.tasks[task]
        expected = (shape.num_planes, shape.height, shape.width)
        if obs.dim() != 4 or tuple(obs.shape[1:]) != expected:
            raise ValueError(
                f"{task}: obs must be [N, {', '.join(map(str, expected))}], got {list(obs.shape)}"
            )
        if legal_mask.shape != (obs.shape[0], shape.num_actions) or legal_mask.dtype != torch.bool:
            raise ValueError(
                f"{task}: legal_mask must be bool [{obs.shape[0]}, {shape.num_actions}], "
                f"got {legal_mask.dtype} {list(legal_mask.shape)}"
            )
        device = next(self.net.parameters()).device
        logits, _ = self.net(task, obs.to(device, torch.float32))
        logits = masked_logits(logits, legal_mask.to(device))
        action = sample_logits(logits, generator) if sample else logits.argmax(dim=1)
        return action.to(obs.device)


def load_policy(run_or_checkpoint: str | Path, device: str | torch.device = "cpu") -> LoadedPolicy:
    """Load the latest checkpoint of a run (or a checkpoint folder) for inference."""
    ckpt = checkpoint_dir(run_or_checkpoint)
    meta = read_network(ckpt)
    net = PolicyNet(meta.tasks, meta.net).to(device)
    load_into(net, load_weights(ckpt, device), ckpt / "model.safetensors")
    return LoadedPolicy(net, meta.specs, ckpt)
