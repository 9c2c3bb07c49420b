"""Leaf evaluation for the search: random rollouts, or a network's policy and value.

An evaluator sees the game states of N new leaves and returns their values, from the view
of the player to move at each leaf, in ``[-1, 1]``; a network also returns prior logits
over the actions. The search never evaluates a finished game (it knows the result), so an
evaluator may return anything for a board that is already over.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import torch
from torch import Tensor

from rltransfer.games.core import BoardGame, State
from rltransfer.net.policy import PolicyNet
from rltransfer.search import noise


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Values [N] (the mover's view, in [-1, 1]) and, from a network, logits [N, A]."""

    value: Tensor
    logits: Tensor | None = None


class Evaluator(Protocol):
    """What the search calls on its leaves (see the module docstring)."""

    #: Whether :meth:`evaluate` gives prior logits (the tree then keeps them per node).
    gives_priors: bool

    def evaluate(self, game: BoardGame, state: State, keys: Tensor, draw: int) -> Evaluation:
        """Evaluate N leaves. ``keys`` [N] and ``draw`` (which evaluation of the search
        this is) name the random numbers an evaluator may use (:mod:`.noise`), so a board's
        evaluation does not depend on the other boards of the batch."""
        ...


class RolloutEvaluator:
    """One random rollout per leaf: uniform legal moves to the end of the game, played
    on every leaf at once with the game's own batched ``step``, or by a shortcut where the
    game has one (a fill of the board, or the game's own playout loop: :func:`rollout`);
    the value is the result."""

    gives_priors = False

    def evaluate(self, game: BoardGame, state: State, keys: Tensor, draw: int) -> Evaluation:
        mover_sign = 1.0 - 2.0 * state.current_player.to(torch.float32)
        return Evaluation(value=rollout(game, state, keys, draw) * mover_sign)


def rollout(
    game: BoardGame, state: State, keys: Tensor, draw: int, *, shortcuts: bool = True
) -> Tensor:
    """[N] float32: player 0's result when every board of ``state`` is played to its end
    with uniformly random legal moves (ply ``t`` of board ``b`` drawn by
    ``noise.bits(keys[b], ROLLOUT, draw, t)``).

    Only live boards are stepped (``where``; the moves are legal by construction, so the
    game's unchecked ``step_legal``), so a finished board keeps the reward of the
    move that ended it and the last state's rewards are the results. The loop stops once
    every board is over: checked at every ply on the CPU, where the check is free, and
    every 8 plies elsewhere, where it is a host sync.

    Two shortcuts play the same uniformly random playouts faster (``shortcuts=False``
    steps anyway: the benchmark's comparison):

    * a game whose playouts are fills (:meth:`~rltransfer.games.core.BoardGame.fill_result`:
      Hex, tic-tac-toe, Gomoku, mnk without gravity) is not stepped: board ``b`` fills its
      empty cells in the order of ``noise.bits(keys[b], ROLLOUT, draw, cell)``;
    * a game with its own playout loop
      (:meth:`~rltransfer.games.core.BoardGame.playout_result`: Connect Four) plays it
      with the same bits per ply as the stepped loop, mapped to moves its own way.
    """
    stream = noise.bits(keys, noise.ROLLOUT, draw)
    if shortcuts and (found := rollout_shortcut(game, state, stream)) is not None:
        return found[1]
    check_every = 1 if state.device.type == "cpu" else 8
    for ply in range(game.max_moves):
        if ply % check_every == 0 and bool(state.terminated.all()):
            break
        action = noise.choose_legal(game.legal_mask(state), noise.bits(stream, ply))
        state = game.step_legal(state, action, ~state.terminated)
    return torch.where(state.terminated, state.reward, 0.0)


def rollout_shortcut(game: BoardGame, state: State, stream: Tensor) -> tuple[str, Tensor] | None:
    """The first shortcut ``game`` offers for random playouts of ``state``, with its
    results: ``("fill", results)`` (:meth:`~rltransfer.games.core.BoardGame.fill_result`,
    priorities ``noise.bits(stream[b], cell)``), ``("own loop", results)``
    (:meth:`~rltransfer.games.core.BoardGame.playout_result`, bits ``noise.bits(stream[b],
    ply)``), or ``None`` where the game has neither and is stepped. ``stream`` [N] is each
    board's rollout stream. The random bits are drawn only where the game's class overrides
    a hook (a class check), and a hook may still answer ``None`` (mnk with gravity)."""
    if type(game).fill_result is not BoardGame.fill_result:
        cells = torch.arange(game.height * game.width, device=stream.device)
        filled = game.fill_result(state, noise.bits(stream[:, None], cells))
        if filled is not None:
            return "fill", filled
    if type(game).playout_result is not BoardGame.playout_result:
        plies = torch.arange(game.max_moves, device=stream.device)
        played = game.playout_result(state, noise.bits(stream[:, None], plies))
        if played is not None:
            return "own loop", played
    return None


class NetworkEvaluator:
    """A :class:`~rltransfer.net.policy.PolicyNet` task: prior logits over the legal
    actions and the value head's value (already the mover's view, in [-1, 1]). The
    network must be on the boards' device."""

    gives_priors = True

    def __init__(self, net: PolicyNet, task: str) -> None:
        if task not in net.tasks:
            raise KeyError(f"the network has no task {task!r}; its tasks: {', '.join(net.tasks)}")
        self.net = net
        self.task = task

    def evaluate(self, game: BoardGame, state: State, keys: Tensor, draw: int) -> Evaluation:
        logits, value = self.net(self.task, game.observe(state))
        legal = game.legal_mask(state)
        return Evaluation(value=value, logits=torch.where(legal, logits, 0.0))
