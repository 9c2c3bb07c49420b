"""Search self-play for one game: both seats searched and recorded, outcomes as targets.

Unlike PPO's :class:`~rltransfer.learn.collector.GameCollector`, which records the
learner's seat against an opponent mix, every ply of every board here is a search by the
current network (Gumbel root selection with sequential halving,
:func:`rltransfer.search.search`), and every searched position is recorded, whichever
seat moved: its observation from the mover's view, its legal mask and the search's
**improved policy** ``softmax(logits + sigma(completed q))`` (the policy target). The move
played is the search's own choice, which samples through its Gumbel noise: self-play
explores without a temperature.

A position's **value target** is the game's final result from the view of the player to
move there, so it is known only when the game ends. Each board keeps its game so far in
``[N, L, ...]`` pending tensors (``L = max_moves``); when a board's game ends, its
positions move to a ring buffer of the newest ``replay_size`` positions, with targets
+1 / 0 / -1, and the board restarts. Minibatches are drawn from that buffer uniformly.

A learner step is one position searched and recorded: an iteration records
``num_envs * num_steps`` of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch
from torch import Tensor

from rltransfer.games.core import BoardGame, State
from rltransfer.net.policy import PolicyNet
from rltransfer.search import NetworkEvaluator, SearchConfig, search
from rltransfer.specs.config import AlphaZeroConfig


@dataclasses.dataclass
class Samples:
    """A minibatch of recorded positions."""

    obs: Tensor  # [B, C, H, W] float32, the mover's view
    masks: Tensor  # [B, A] bool
    policy: Tensor  # [B, A] float32: the search's improved policy (0 on illegal actions)
    value: Tensor  # [B] float32: the outcome for the mover, +1 / 0 / -1


class SearchSelfPlay:
    """Search self-play and the replay buffer of one game (task); see the module docstring."""

    def __init__(
        self,
        task: str,
        game: BoardGame,
        num_envs: int,
        cfg: AlphaZeroConfig,
        device: torch.device,
        generator: torch.Generator,
    ) -> None:
        self.task, self.game, self.device, self.gen = task, game, device, generator
        self.num_envs, self.num_steps = num_envs, cfg.num_steps
        self.config = SearchConfig(
            simulations=cfg.simulations, rule="gumbel", max_considered=cfg.max_considered
        )
        n, length, a = num_envs, game.max_moves, game.num_actions
        planes = (game.num_planes, game.height, game.width)

        def z(*shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
            return torch.zeros(shape, dtype=dtype, device=device)

        self.state: State = game.init(n, device=device)
        # the game so far on each board
        self.pending_obs = z(n, length, *planes)
        self.pending_masks = z(n, length, a, dtype=torch.bool)
        self.pending_policy = z(n, length, a)
        self.pending_mover = z(n, length, dtype=torch.int64)
        self.length = z(n, dtype=torch.int64)
        # the newest finished positions
        r = cfg.replay_size
        self.obs, self.masks, self.policy, self.value = (
            z(r, *planes), z(r, a, dtype=torch.bool), z(r, a), z(r),
        )  # fmt: skip
        self.filled = 0  # positions in the buffer (up to replay_size)
        self.cursor = 0  # where the next one goes
        # since the last pop_stats: searches, root value sum, KL sum; games and their plies
        self.stats = z(6, dtype=torch.float64)
        self.moves = 0  # plies played (every one searched and recorded) since the start

    @property
    def steps_per_iteration(self) -> int:
        return self.num_envs * self.num_steps

    # ------------------------------------------------------------------------ self-play
    @torch.no_grad()
    def collect(self, net: PolicyNet) -> None:
        """``num_steps`` plies on every board, each searched and recorded; finished games
        go to the replay buffer with their outcomes, and their boards restart."""
        game, n = self.game, self.num_envs
        evaluator = NetworkEvaluator(net, self.task)
        boards = torch.arange(n, device=self.device)
        for _ in range(self.num_steps):
            state = self.state
            result = search(game, state, evaluator, self.config, self.gen)
            t = self.length
            self.pending_obs[boards, t] = game.observe(state)
            self.pending_masks[boards, t] = game.legal_mask(state)
            self.pending_policy[boards, t] = result.policy
            self.pending_mover[boards, t] = state.current_player
            self.length = t + 1
            self.moves += n
            self._record_search(result.policy, result.tree.logits[:, 0], result.value, state)
            state = game.step(state, result.action)
            done = state.terminated
            if bool(done.any()):  # one host read per ply: which games ended
                self._finish(done, state.reward)
                state = game.reset_where(state, done, self.gen)
            self.state = state

    def _record_search(self, policy: Tensor, logits: Tensor, value: Tensor, state: State) -> None:
        """Accumulate the search statistics: root values and KL(search policy || prior)."""
        legal = self.game.legal_mask(state)
        prior = torch.log_softmax(torch.where(legal, logits, -torch.inf), dim=1)
        log_policy = torch.log(policy.clamp_min(1e-12))
        kl = torch.where(policy > 0, policy * (log_policy - prior), 0.0).sum(dim=1)
        self.stats[0] += len(value)
        self.stats[1] += value.sum()
        self.stats[2] += kl.sum()

    def _finish(self, done: Tensor, reward: Tensor) -> None:
        """Move the positions of the games that ended on ``done`` boards into the buffer,
        each with the result from its mover's view (``reward`` is player 0's)."""
        lengths = self.length[done]
        steps = torch.arange(self.game.max_moves, device=self.device)
        kept = steps[None, :] < lengths[:, None]  # [D, L]
        mover = self.pending_mover[done][kept]
        result = reward[done][:, None].expand_as(kept)[kept]
        self._push(
            self.pending_obs[done][kept],
            self.pending_masks[done][kept],
            self.pending_policy[done][kept],
            torch.where(mover == 0, result, -result),
        )
        self.stats[3] += float(done.sum())
        self.stats[4] += float(lengths.sum())
        self.stats[5] += float((reward[done] == 0).sum())
        self.length = torch.where(done, 0, self.length)

    def _push(self, obs: Tensor, masks: Tensor, policy: Tensor, value: Tensor) -> None:
        """Write positions into the ring buffer (the oldest are overwritten)."""
        size = self.value.shape[0]
        k = value.shape[0]
        if k >= size:  # more than the buffer holds: keep the newest
            obs, masks, policy, value = obs[-size:], masks[-size:], policy[-size:], value[-size:]
            k = size
        where = (self.cursor + torch.arange(k, device=self.device)) % size
        self.obs[where], self.masks[where], self.policy[where], self.value[where] = (
            obs, masks, policy, value,
        )  # fmt: skip
        self.cursor = (self.cursor + k) % size
        self.filled = min(size, self.filled + k)

    # ------------------------------------------------------------------------- replay
    def sample(self, batch_size: int, generator: torch.Generator) -> Samples | None:
        """``batch_size`` positions drawn uniformly (with replacement) from the buffer;
        ``None`` while it holds no finished game yet."""
        if self.filled == 0:
            return None
        i = torch.randint(self.filled, (batch_size,), generator=generator, device=self.device)
        return Samples(self.obs[i], self.masks[i], self.policy[i], self.value[i])

    def pop_stats(self) -> dict[str, float]:
        """Search and game statistics since the last call (one host read), then reset."""
        searches, value, kl, games, plies, draws = self.stats.tolist()
        self.stats.zero_()
        out = {"searches": searches, "games": games}
        if searches:
            out.update(root_value=value / searches, improvement_kl=kl / searches)
        if games:
            out.update(game_length=plies / games, draw_rate=draws / games)
        return out

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Tensor]:
        """Everything in flight: boards, games so far, the buffer, counters."""
        out = {f"state.{k}": v for k, v in self.state.tensors().items()}
        out.update(
            pending_obs=self.pending_obs, pending_masks=self.pending_masks,
            pending_policy=self.pending_policy, pending_mover=self.pending_mover,
            length=self.length, obs=self.obs, masks=self.masks, policy=self.policy,
            value=self.value, stats=self.stats,
            cursor=torch.tensor(self.cursor), filled=torch.tensor(self.filled),
            moves=torch.tensor(self.moves),
        )  # fmt: skip
        return out

    def load_state_dict(self, tensors: Mapping[str, Tensor]) -> None:
        fields = {k[len("state.") :]: v.to(self.device) for k, v in tensors.items()
                  if k.startswith("state.")}  # fmt: skip
        self.state = dataclasses.replace(self.state, **fields)
        for name in ("pending_obs", "pending_masks", "pending_policy", "pending_mover", "length",
                     "obs", "masks", "policy", "value", "stats"):  # fmt: skip
            mine, saved = getattr(self, name), tensors[name]
            if saved.shape != mine.shape:
                raise ValueError(
                    f"{self.task}: saved {name} has shape {list(saved.shape)}, this run "
                    f"{list(mine.shape)} (alphazero.replay_size or the boards changed)"
                )
            setattr(self, name, saved.to(self.device, mine.dtype))
        self.cursor, self.filled = int(tensors["cursor"]), int(tensors["filled"])
        self.moves = int(tensors["moves"])
