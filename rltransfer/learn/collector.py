"""Device-resident self-play rollout collection for every game of a suite.

For each game, N boards play in lockstep. On every board the learner holds one seat and an
opponent the other; the learner's seat flips after each game on that board, so it learns
both sides. Opponents are assigned to boards by fixed index ranges, in the proportions of
the :class:`SelfPlayConfig` mix (the current policy, a past snapshot, random, greedy, the
``mcts:S`` search, and a perfect player for the games that have one): static slices keep
the step loop free of host syncs and data-dependent shapes.

One collector step for a game is one learner decision on every board:

1. the learner observes (it is the learner's turn on every board) and acts;
2. the opponent replies on every board where the game goes on;
3. the learner's reward for the step is the outcome of both moves from its seat, so when
   the opponent's reply ends the game the learner's last move still gets the result
   (done, -1/0/+1); the next observation, whose value bootstraps this step, is the
   learner's own next turn;
4. finished boards restart, the learner switching seats; where it now plays second, the
   opponent opens at once.

Opponent moves never enter the rollout. Everything lives in preallocated ``[T, N, ...]``
tensors on the training device; episode statistics accumulate there too and are read
once per iteration (:meth:`GameCollector.pop_stats`).

With ``train.compile`` on, the game's rules and the networks' acting run compiled
(:mod:`rltransfer.learn.compiled`); the noise that samples each action is drawn here, from
the collection generator, before the call, so compiled and eager collection agree.

Steps 2-4 are :mod:`rltransfer.play.match`'s rule, shared with the gymnasium and SB3 views.
Partial moves and restarts go through the game (``step(..., where=moves)``,
``reset_where``), so the same code drives PettingZoo envs (``rltransfer.games.outside``):
the one exception to "no Python loop over environments", they step on the CPU inside the
game and have their own rollout length ``T`` (a suite's ``num_steps``).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping

import torch
from torch import Tensor

from rltransfer.games.core import BoardGame, State
from rltransfer.learn.compiled import Compiler
from rltransfer.net.policy import PolicyNet, action_noise
from rltransfer.play import match
from rltransfer.play.players import Player, make_player, plays, split_boards
from rltransfer.specs.config import OPPONENT_KINDS, SelfPlayConfig

_SCRIPTED = ("random", "greedy", "perfect", "mcts")


def scripted_players(mix: SelfPlayConfig) -> dict[str, Player]:
    """The scripted opponents of the mix, by kind (``mcts`` searches
    ``mix.mcts_simulations`` simulations: the ``mcts:S`` yardstick)."""
    names = {k: k for k in _SCRIPTED} | {"mcts": f"mcts:{mix.mcts_simulations}"}
    return {kind: make_player(name) for kind, name in names.items()}


def board_slices(mix: SelfPlayConfig, n: int, game: BoardGame | None = None) -> dict[str, slice]:
    """Board index ranges per opponent kind of ``mix``; sizes follow the mix, summing to ``n``.

    Given a ``game`` that a scripted kind cannot play (the perfect player off tic-tac-toe,
    a search on a forward-only game), that kind's share goes to greedy.
    """
    share = {k: getattr(mix, k) for k in OPPONENT_KINDS}
    if game is not None:
        for kind, player in scripted_players(mix).items():
            if not plays(player, game):
                share["greedy"] += share[kind]
                share[kind] = 0.0
    fractions = [share[k] for k in OPPONENT_KINDS]
    return dict(zip(OPPONENT_KINDS, split_boards(fractions, n), strict=True))


@dataclasses.dataclass
class Rollout:
    """One game's ``[T, N, ...]`` rollout of learner decisions (CleanRL names)."""

    obs: Tensor  # [T, N, C, H, W] float32
    masks: Tensor  # [T, N, A] bool: legal actions, re-applied in the update
    actions: Tensor  # [T, N] int64
    logprobs: Tensor  # [T, N] float32
    values: Tensor  # [T, N] float32
    rewards: Tensor  # [T, N] float32: outcome of the decision and the reply, learner's seat
    dones: Tensor  # [T, N] bool: the game ended after this decision
    next_value: Tensor  # [N] float32: value of the observation after the last step

    @classmethod
    def empty(cls, game: BoardGame, num_steps: int, num_envs: int, device: torch.device) -> Rollout:
        t, n = num_steps, num_envs

        def z(*shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
            return torch.zeros(shape, dtype=dtype, device=device)

        return cls(
            obs=z(t, n, game.num_planes, game.height, game.width),
            masks=z(t, n, game.num_actions, dtype=torch.bool),
            actions=z(t, n, dtype=torch.int64),
            logprobs=z(t, n),
            values=z(t, n),
            rewards=z(t, n),
            dones=z(t, n, dtype=torch.bool),
            next_value=z(n),
        )


_STAT_FIELDS = ("episodes", "wins", "draws", "losses", "length")


class GameCollector:
    """Self-play collection for one game (task) of a suite; see the module docstring."""

    def __init__(
        self,
        task: str,
        game: BoardGame,
        num_envs: int,
        num_steps: int,
        mix: SelfPlayConfig,
        device: torch.device,
        generator: torch.Generator,
        compiler: Compiler | None = None,
    ) -> None:
        self.task, self.game, self.device, self.gen = task, game, device, generator
        self.compiler = compiler if compiler is not None else Compiler()
        # the learner's full batch of boards goes through the compiled rules; opponents
        # play their slices (and scripted players their own batches) with ``game``
        self.fast = self.compiler.game(game)  # ``game`` itself unless compiling
        self.num_envs, self.num_steps = num_envs, num_steps
        self.slices = board_slices(mix, num_envs, game)
        self.scripted = scripted_players(mix)
        self.rollout = Rollout.empty(game, num_steps, num_envs, device)
        self.state: State = game.init(num_envs, device=device)
        # learner seat per board: alternate from the start so both seats are played at once
        self.seat = torch.arange(num_envs, device=device) % 2
        self.episode_length = torch.zeros(num_envs, dtype=torch.int64, device=device)
        self.stats = torch.zeros(len(OPPONENT_KINDS), len(_STAT_FIELDS), device=device)
        self.kind = torch.zeros(num_envs, dtype=torch.int64, device=device)
        for i, k in enumerate(OPPONENT_KINDS):
            self.kind[self.slices[k]] = i
        self.moves = torch.zeros((), dtype=torch.int64, device=device)  # all plies, both sides
        # On the CPU reading a tensor costs nothing extra, so opponents with no board to move
        # are skipped (their small-batch forward passes dominate CPU collection); on a GPU
        # that read would stall the launch queue, so every slice computes its moves.
        self.skip_idle = device.type == "cpu"

    # ------------------------------------------------------------------------ rollout
    @torch.no_grad()
    def collect(self, net: PolicyNet, snapshot: PolicyNet | None) -> Rollout:
        """Fill :attr:`rollout` with ``num_steps`` learner decisions on every board.

        The rule of a learner step (reply where the opponent is to move, reward from the
        learner's seat, restarts) is :mod:`rltransfer.play.match`'s, shared with the views.
        """
        ro, game = self.rollout, self.fast

        def opponent(state: State, moving: Tensor) -> Tensor:
            return self._opponent_actions(state, moving, net, snapshot)

        # fresh boards where the learner plays second wait for the opponent's opening
        self.state = match.reply(game, self.state, self.seat, opponent)
        act = self.compiler.actor(net, self.task)
        for t in range(self.num_steps):
            obs, mask = game.observe(self.state), game.legal_mask(self.state)
            action, logprob, value = act(obs, mask, action_noise(mask, self.gen))
            ro.obs[t], ro.masks[t], ro.actions[t] = obs, mask, action
            ro.logprobs[t], ro.values[t] = logprob, value
            self.moves += self.num_envs
            state, ro.rewards[t] = match.play(game, self.state, self.seat, action, opponent)
            ro.dones[t] = state.terminated
            self._record(state.terminated, ro.rewards[t])
            # restart finished boards, the learner switching seats; where it now plays
            # second the opponent opens, so the next step again starts at the learner's turn
            self.seat = torch.where(state.terminated, 1 - self.seat, self.seat)
            self.state = match.restart(game, state, state.terminated, self.seat, opponent, self.gen)
        _, ro.next_value = net(self.task, game.observe(self.state))
        return ro

    def _opponent_actions(
        self, state: State, moving: Tensor, net: PolicyNet, snapshot: PolicyNet | None
    ) -> Tensor:
        """[N] opponent actions, each slice of boards from its kind of opponent; only the
        boards in ``moving`` play them."""
        parts = []
        for kind in OPPONENT_KINDS:
            sl = self.slices[kind]
            if sl.stop == sl.start:
                continue
            if self.skip_idle and not bool(moving[sl].any()):
                # nobody in this slice is to move (e.g. no restart seated the learner
                # second): skip the network or the search; these actions are not played
                parts.append(torch.zeros(sl.stop - sl.start, dtype=torch.int64))
                continue
            part = state.index(sl)
            if kind in self.scripted:
                parts.append(self.scripted[kind].act(self.game, part, self.gen))
            else:
                player = snapshot if kind == "snapshot" and snapshot is not None else net
                obs, mask = self.game.observe(part), self.game.legal_mask(part)
                act = self.compiler.actor(player, self.task)
                parts.append(act(obs, mask, action_noise(mask, self.gen))[0])
        self.moves += moving.sum()
        return torch.cat(parts)

    # -------------------------------------------------------------------- statistics
    def _record(self, done: Tensor, reward: Tensor) -> None:
        self.episode_length += 1
        d = done.to(torch.float32)
        per_board = torch.stack(
            [
                d,
                d * (reward > 0),
                d * (reward == 0),
                d * (reward < 0),
                d * self.episode_length,
            ],
            dim=1,
        )
        self.stats.index_add_(0, self.kind, per_board)
        self.episode_length = torch.where(done, 0, self.episode_length)

    def pop_stats(self) -> dict[str, dict[str, float]]:
        """Episode statistics since the last call, per opponent kind (one host read)."""
        rows = self.stats.tolist()
        self.stats.zero_()
        out = {}
        for kind, row in zip(OPPONENT_KINDS, rows, strict=True):
            out[kind] = dict(zip(_STAT_FIELDS, row, strict=True))
        return out

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Tensor]:
        """Everything in flight: boards, seats, episode counters (for exact resume).

        A forward-only game (``game.functional`` false: PettingZoo envs) cannot save its
        boards; its state is left out and :meth:`load_state_dict` restarts those games.
        """
        out = {f"state.{k}": v for k, v in self.state.tensors().items() if self.game.functional}
        out.update(
            seat=self.seat, episode_length=self.episode_length, stats=self.stats, moves=self.moves
        )
        return out

    def load_state_dict(self, tensors: Mapping[str, Tensor]) -> None:
        fields = {
            k[len("state.") :]: v.to(self.device)
            for k, v in tensors.items()
            if k.startswith("state.")
        }
        self.seat = tensors["seat"].to(self.device)
        self.episode_length = tensors["episode_length"].to(self.device)
        if self.game.functional:
            self.state = dataclasses.replace(self.state, **fields)
        else:  # the envs' positions were not saved: the games in flight restart
            self.episode_length.zero_()
        if tensors["stats"].shape == self.stats.shape:  # older runs had fewer kinds
            self.stats = tensors["stats"].to(self.device)
        self.moves = tensors["moves"].to(self.device)


class SnapshotPool:
    """Past policies kept on the device; one is sampled per iteration as an opponent.

    The sampled snapshot is loaded in place into one opponent network, built once, not
    into a fresh copy of the learner every iteration."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.weights: list[dict[str, Tensor]] = []
        self._opponent: PolicyNet | None = None

    def add(self, net: PolicyNet) -> None:
        self.weights.append({k: v.detach().clone() for k, v in net.state_dict().items()})
        del self.weights[: -self.size]

    def sample(self, net: PolicyNet, generator: torch.Generator) -> PolicyNet | None:
        """A copy of ``net`` holding a random past snapshot's weights (None if empty)."""
        if not self.weights:
            return None
        i = int(
            torch.randint(len(self.weights), (1,), generator=generator, device=generator.device)
        )
        if self._opponent is None:
            self._opponent = copy.deepcopy(net).eval()
            self._opponent.requires_grad_(False)
        self._opponent.load_state_dict(self.weights[i])
        return self._opponent
