"""``train.compile``: the training loop's hot functions through ``torch.compile``.

On a GPU the loop is launch-bound: a collector step is dozens of small kernels (the
game's rules, the network, the sampling) whose launches, not their arithmetic, take the
time. ``torch.compile`` fuses each function below into a few kernels, and its
``reduce-overhead`` mode also replays them as CUDA graphs. On a CPU, Inductor's fused C++
loops help with large batches (1,024 boards) and cost with small ones, where a compiled
call's fixed overhead outweighs the fusion (the README's "Compiled loop" measurements).

What is compiled, each once per game (and per network for the acting functions):

* the game's ``step``, ``observe`` and ``legal_mask`` (:meth:`Compiler.game`);
* sampling an action: network, masked log-softmax and the Gumbel-max draw
  (:meth:`Compiler.actor`), with the uniform noise drawn *before* the compiled call from
  the run's generator, so compiled and eager code sample the same actions;
* PPO's per-game forward pass and loss, backward included (:meth:`Compiler.loss`).

Around them stays eager Python: the opponent mix, scripted and search opponents, resets,
GAE, gradient averaging, clipping and the optimiser step. With ``train.compile = "off"``
(the default) the same functions run uncompiled: one code path, two speeds. The
search learner (``train.algorithm = "alphazero"``) is not compiled.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from rltransfer.games.core import BoardGame
from rltransfer.learn.ppo import PPOConfig, ppo_loss
from rltransfer.net.policy import PolicyNet
from rltransfer.specs.config import COMPILE_MODES

#: ``actor(obs, mask, noise) -> (action, log-prob, value)``
Actor = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]
#: ``loss(obs, masks, actions, logprobs, advantages, values, returns)
#: -> (loss, stats, trunk features)``
Loss = Callable[..., tuple[Tensor, dict[str, Tensor], Tensor]]

#: Graphs one compiled function may hold (a game's step at every batch size it meets,
#: each network's actor per opponent slice): above torch's default of 8, so a multitask
#: run does not fall back to eager code after a few games.
RECOMPILE_LIMIT = 64


@dataclasses.dataclass(eq=False)
class Compiler:
    """Hands out the loop's hot functions, compiled with ``torch.compile(mode=mode)``
    unless ``mode`` is ``"off"``; each is compiled once and kept."""

    mode: str = "off"
    _actors: dict[tuple[int, str], tuple[PolicyNet, Actor]] = dataclasses.field(
        default_factory=dict
    )
    _losses: dict[tuple[int, str, PPOConfig, float], tuple[PolicyNet, Loss]] = dataclasses.field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        if self.mode not in COMPILE_MODES:
            raise ValueError(f"compile mode must be one of {COMPILE_MODES}, got {self.mode!r}")
        if self.enabled:
            limit = torch._dynamo.config.recompile_limit
            torch._dynamo.config.recompile_limit = max(limit, RECOMPILE_LIMIT)

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def _compile(self, fn: Callable[..., Any], *, inference: bool = True) -> Callable[..., Any]:
        if not self.enabled:
            return fn
        compiled = torch.compile(fn, mode=self.mode)
        if self.mode != "reduce-overhead" or not inference:
            return compiled

        def cloned(*args: Any, **kwargs: Any) -> Any:
            # CUDA graphs reuse their output memory at the next replay; the loop keeps
            # outputs (the next state) across calls, so they are copied out. (A loss's
            # replay is ordered by its backward pass instead: cudagraph trees track it.)
            torch.compiler.cudagraph_mark_step_begin()
            out = compiled(*args, **kwargs)
            return torch.utils._pytree.tree_map_only(Tensor, torch.clone, out)

        return cloned

    def game(self, game: BoardGame) -> BoardGame:
        """``game`` itself when off or when its boards cannot be traced (forward-only
        PettingZoo envs); otherwise a shallow copy whose ``step``, ``observe`` and
        ``legal_mask`` are compiled. The copy shares the game's options and caches."""
        if not self.enabled or not game.functional:
            return game
        fast = copy.copy(game)
        for name in ("step", "observe", "legal_mask"):
            object.__setattr__(fast, name, self._compile(getattr(game, name)))
        return fast

    def actor(self, net: PolicyNet, task: str) -> Actor:
        """``net.act_with_noise`` for ``task``: (obs, mask, noise) -> (action, log-prob,
        value), with no autograd graph."""
        key = (id(net), task)
        if key not in self._actors:

            def act(obs: Tensor, mask: Tensor, noise: Tensor) -> tuple[Tensor, Tensor, Tensor]:
                return net.act_with_noise(task, obs, mask, noise)

            self._actors[key] = (net, self._compile(act))  # the net kept: its id stays its own
        return self._actors[key][1]

    def loss(self, net: PolicyNet, task: str, cfg: PPOConfig, weight: float) -> Loss:
        """PPO's loss on one game's minibatch, through ``net``'s stem, trunk and heads:
        :func:`task_loss` for ``task``, ``cfg`` and ``weight``."""
        key = (id(net), task, cfg, weight)
        if key not in self._losses:

            def loss(*batch: Tensor) -> tuple[Tensor, dict[str, Tensor], Tensor]:
                return task_loss(net, task, cfg, weight, *batch)

            self._losses[key] = (net, self._compile(loss, inference=False))
        return self._losses[key][1]


def task_loss(
    net: PolicyNet,
    task: str,
    cfg: PPOConfig,
    weight: float,
    obs: Tensor,
    masks: Tensor,
    actions: Tensor,
    logprobs: Tensor,
    advantages: Tensor,
    values: Tensor,
    returns: Tensor,
) -> tuple[Tensor, dict[str, Tensor], Tensor]:
    """One game's minibatch through the network and :func:`ppo_loss`: (loss, statistics,
    trunk features; the features feed the domain-confusion classifier)."""
    features = net.features(task, obs)
    new_logprob, entropy, new_value = net.policy_terms(task, features, masks, actions)
    loss, stats = ppo_loss(
        new_logprob, logprobs, advantages, entropy, new_value, values, returns, cfg, weight=weight
    )
    return loss, stats, features
