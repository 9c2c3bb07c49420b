"""Any rltransfer game as a single-agent gymnasium environment against a built-in opponent.

Two views of the same thing, the agent in one seat and an opponent in the other:

* :class:`BoardGameEnv`, one board, NumPy in and out: for ``check_env``, Stable-Baselines3
  and sb3-contrib's ``MaskablePPO`` (it reads :meth:`BoardGameEnv.action_masks`).
* :class:`BoardGameVectorEnv`, N boards as one batch that stays on a torch device: a
  *torch-native* ``VectorEnv`` (observations, rewards, terminations, truncations and the
  action mask are torch tensors on ``device``, as after gymnasium's ``NumpyToTorch`` vector
  wrapper; the spaces stay NumPy spaces as gymnasium's do). No Python loop over boards.

Shared rules:

* **Seat.** ``agent_seat`` is ``0`` (move first), ``1`` (move second) or ``"random"`` (the
  default: a fresh fair coin per game, so one policy learns both sides, as in self-play).
  When the agent has seat 1 the opponent's opening move is made inside ``reset`` (and inside
  the vector env's autoreset), so every observation the agent gets is one where it is to move.
  ``info["agent_seat"]`` says which seat the agent has.
* **Opponent.** ``"random"`` (the default), ``"greedy"``, any
  :class:`rltransfer.play.players.Player` (e.g. a ``PolicyPlayer`` of a trained run), or any
  function ``opponent(game, state, generator) -> [N] int64`` actions. It is asked for a move
  on every board (as a batched policy would) and its moves are played only where it is to
  move (:mod:`rltransfer.play.match`, the collector's rule; PettingZoo envs step only those
  boards); with ``illegal_action="raise"`` those moves must be legal.
* **Observation.** ``[C, H, W]`` float32 planes from the agent's view (the mover's view, since
  the agent is to move whenever it observes; at the end of a game still the agent's view).
* **Reward.** ``+1`` / ``-1`` / ``0`` from the agent's seat when the game ends, whichever side
  made the last move; ``0`` before.
* **Action mask.** ``info["action_mask"]`` and ``action_masks()``: the game's legal mask
  (``game.legal_mask``; all ``True`` once a game is over, so masked samplers never meet an
  empty distribution).
* **Illegal actions.** The game's ``illegal_action`` option, passed through ``**options``:
  ``"lose"`` (default, the game's rule) ends the game with ``-1`` for the side that played it
  (the agent, or the opponent, which then gives the agent ``+1``); ``"raise"`` raises
  :class:`rltransfer.games.IllegalActionError`.
* **Truncation.** Never: every game ends within ``game.max_moves`` plies by its own rules.

The games are assumed to alternate turns strictly (every rltransfer game does; Othello passes
with an explicit pass action), so one opponent move always gives the turn back to the agent.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, SupportsIndex

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space
from torch import Tensor

from rltransfer.games import BoardGame, State
from rltransfer.play import match
from rltransfer.play.players import Player, player_for
from rltransfer.views._common import RENDER_MODES, build_game, check_render_mode, render_board

Seat = Literal[0, 1, "random"]
#: ``opponent(game, state, generator) -> [N] int64`` actions for the mover of every board.
Opponent = Callable[[BoardGame, State, torch.Generator], Tensor]


def random_opponent(game: BoardGame, state: State, generator: torch.Generator) -> Tensor:
    """Uniformly random legal moves (``game.random_action``): the default opponent."""
    return game.random_action(state, generator)


OpponentLike = str | Path | Player | Opponent | None


def _as_opponent(opponent: OpponentLike, game: BoardGame, device: torch.device) -> Opponent:
    """A name or run path (:func:`rltransfer.play.players.player_for`), a
    :class:`~rltransfer.play.players.Player` or a function -> a function."""
    if opponent is None:
        return random_opponent
    if isinstance(opponent, (str, Path, Player)):
        return player_for(opponent, game, device).act
    return opponent


class _Match:
    """The agent-versus-opponent rules both envs share, batched over N boards: those of
    :mod:`rltransfer.play.match` (the collector's too) with this view's seat rule.

    It holds no state of its own: the envs keep ``state`` and ``seat`` ([N] int64) and
    call these functions, so the single env is exactly the vector env's rules with N = 1.
    """

    def __init__(
        self, game: BoardGame, agent_seat: Seat, opponent: OpponentLike, device: torch.device
    ) -> None:
        if isinstance(agent_seat, bool) or agent_seat not in (0, 1, "random"):
            raise ValueError(f"agent_seat must be 0, 1 or 'random', got {agent_seat!r}")
        self.game = game
        self.agent_seat: Seat = agent_seat
        self.opponent: Opponent = _as_opponent(opponent, game, device)

    def _reply(self, generator: torch.Generator) -> match.Reply:
        """The opponent as :mod:`rltransfer.play.match` calls it, drawing from ``generator``."""
        return lambda state, moving: self.opponent(self.game, state, generator)

    def seats(self, n: int, generator: torch.Generator, device: torch.device) -> Tensor:
        """[N] int64 agent seats for new games."""
        if self.agent_seat == "random":
            return torch.randint(0, 2, (n,), generator=generator, device=device)
        return torch.full((n,), self.agent_seat, dtype=torch.int64, device=device)

    def new_games(
        self, n: int, generator: torch.Generator, device: torch.device
    ) -> tuple[State, Tensor]:
        """N fresh boards with the agent to move, and the agent's seats [N] int64."""
        state = self.game.init(n, generator, device)
        seat = self.seats(n, generator, device)
        return match.reply(self.game, state, seat, self._reply(generator)), seat

    def play(
        self, state: State, seat: Tensor, action: Tensor, generator: torch.Generator
    ) -> tuple[State, Tensor]:
        """The agent's move, then the opponent's reply where the game goes on; the new
        state and the agent's reward [N] float32 from both moves."""
        return match.play(self.game, state, seat, action, self._reply(generator))

    def restart(
        self, state: State, seat: Tensor, done: Tensor, generator: torch.Generator
    ) -> tuple[State, Tensor]:
        """Boards in ``done`` start a new game with a new seat (the opponent opening where
        the agent has seat 1); the new state and seats."""
        new_seat = self.seats(state.batch_size, generator, state.device)
        seat = torch.where(done, new_seat, seat)
        reply = self._reply(generator)
        return match.restart(self.game, state, done, seat, reply, generator), seat


def _board_spaces(game: BoardGame) -> tuple[spaces.Box, spaces.Discrete]:
    obs = spaces.Box(0.0, 1.0, (game.num_planes, game.height, game.width), dtype=np.float32)
    return obs, spaces.Discrete(game.num_actions)


class BoardGameEnv(gym.Env[np.ndarray, np.int64]):
    """One board against a built-in opponent (see the module docstring for the rules).

    Args:
        game: a game id from :func:`rltransfer.games.available_games` or a built game.
        agent_seat: ``0``, ``1`` or ``"random"`` (default: a new coin flip every reset).
        opponent: ``"random"`` (default), ``"greedy"``, a ``Player`` or a function
            ``opponent(game, state, generator) -> [N] actions``.
        render_mode: ``None``, ``"ansi"`` or ``"rgb_array"``.
        device: where the one board lives (``"cpu"`` is fastest for a single board).
        **options: game options, e.g. ``size=6`` or ``illegal_action="raise"``.

    ``step`` after the game is over raises: call ``reset`` (gymnasium's contract).
    """

    # Class-level, as gymnasium reads it before building the env (mutable: its convention).
    metadata: dict[str, Any] = {"render_modes": list(RENDER_MODES), "render_fps": 2}  # noqa: RUF012

    def __init__(
        self,
        game: str | BoardGame,
        *,
        agent_seat: Seat = "random",
        opponent: OpponentLike = None,
        render_mode: str | None = None,
        device: torch.device | str = "cpu",
        **options: Any,
    ) -> None:
        self.game = build_game(game, options)
        self.render_mode = check_render_mode(render_mode)
        self.device = torch.device(device)
        self._match = _Match(self.game, agent_seat, opponent, self.device)
        self.observation_space, self.action_space = _board_spaces(self.game)
        self._generator = torch.Generator(device=self.device)
        self._seeded = False
        self._state: State | None = None
        self._seat = torch.zeros(1, dtype=torch.int64, device=self.device)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """A new game; the opponent has already moved if the agent has seat 1.

        ``seed`` seeds ``np_random`` and, from it, the torch generator that draws the seat
        and drives the opponent; without a seed the generator runs on (seeded from entropy
        on the first reset), so ``reset(seed=s)`` then ``reset()`` repeats exactly.
        """
        super().reset(seed=seed)
        if seed is not None or not self._seeded:
            self._generator.manual_seed(int(self.np_random.integers(2**62)))
            self._seeded = True
        self._state, self._seat = self._match.new_games(1, self._generator, self.device)
        return self._observation(), self._info()

    def step(self, action: SupportsIndex) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """The agent's move and the opponent's reply; reward from the agent's seat."""
        state = self._require_state()
        if bool(state.terminated[0]):
            raise RuntimeError(f"{self.game.id}: the game is over; call reset() before step()")
        a = torch.tensor([operator.index(action)], device=self.device)
        self._state, reward = self._match.play(state, self._seat, a, self._generator)
        terminated = bool(self._state.terminated[0])
        if not terminated and int(self._state.current_player[0]) != int(self._seat[0]):
            raise RuntimeError(f"{self.game.id}: turns did not alternate; the view assumes so")
        return self._observation(), float(reward[0]), terminated, False, self._info()

    def action_masks(self) -> np.ndarray:
        """[A] bool legal actions (the name sb3-contrib's ``MaskablePPO`` looks for)."""
        return self.game.legal_mask(self._require_state())[0].cpu().numpy()

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass one to make()")
            return None
        return render_board(self.game, self._require_state(), self.render_mode)

    @property
    def game_state(self) -> State:
        """The underlying one-board game state (read it; do not replace it)."""
        return self._require_state()

    @property
    def agent_seat(self) -> int:
        """The agent's seat in the current game (0 moves first)."""
        return int(self._seat[0])

    def _require_state(self) -> State:
        if self._state is None:
            raise RuntimeError(f"{self.game.id}: call reset() before using the environment")
        return self._state

    def _observation(self) -> np.ndarray:
        return self.game.observe(self._require_state(), player=self._seat)[0].cpu().numpy()

    def _info(self) -> dict[str, Any]:
        return {"action_mask": self.action_masks(), "agent_seat": self.agent_seat}


class BoardGameVectorEnv(gym.vector.VectorEnv[Tensor, Tensor, Tensor]):
    """N boards against a built-in opponent, batched on a torch device (torch-native).

    ``step(actions [N])`` returns ``obs [N, C, H, W] float32``, ``reward [N] float32``,
    ``terminated [N] bool``, ``truncated [N] bool`` (always ``False``) and ``infos`` with
    ``action_mask [N, A] bool`` and ``agent_seat [N] int64``, all tensors on ``device``.

    **Autoreset: SAME_STEP** (``metadata["autoreset_mode"]``). A board whose game ended in
    this step (by the agent's move or by the opponent's reply) reports the final reward and
    ``terminated=True`` *and* is already a fresh game in ``obs`` (opponent's opening move
    made if the new seat is 1). Its last position is in ``infos["final_obs"]`` (the
    observation before any reset, for every board; ``infos["_final_obs"]`` is the [N] bool
    mask of the boards that ended) and its finished game's seat in
    ``infos["final_info"]["agent_seat"]``. Why not gymnasium's default NEXT_STEP: there
    every finished board wastes the following step on a reset, which for short games (a
    tic-tac-toe game is 3 to 5 agent moves) is up to a fifth of all steps; and the
    collector resets in place with ``torch.where`` anyway.

    Args:
        game: a game id or a built game.
        num_envs: the number of boards N.
        agent_seat: ``0``, ``1`` or ``"random"`` (default: a coin flip per board per game).
        opponent: ``"random"`` (default), ``"greedy"``, a ``Player`` or a function
            ``opponent(game, state, generator) -> [N] actions``.
        device: the torch device the boards, the generator and every output live on.
        render_mode: ``None``, ``"ansi"`` or ``"rgb_array"``; ``render()`` gives one frame
            per board.
        **options: game options, e.g. ``size=6`` or ``illegal_action="raise"``.
    """

    metadata: dict[str, Any] = {  # noqa: RUF012  (gymnasium's class-level convention)
        "render_modes": list(RENDER_MODES),
        "render_fps": 2,
        "autoreset_mode": AutoresetMode.SAME_STEP,
    }

    def __init__(
        self,
        game: str | BoardGame,
        num_envs: int,
        *,
        agent_seat: Seat = "random",
        opponent: OpponentLike = None,
        device: torch.device | str = "cpu",
        render_mode: str | None = None,
        **options: Any,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.game = build_game(game, options)
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.render_mode = check_render_mode(render_mode)
        self._match = _Match(self.game, agent_seat, opponent, self.device)
        self.single_observation_space, self.single_action_space = _board_spaces(self.game)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._generator = torch.Generator(device=self.device)
        self._seeded = False
        self._state: State | None = None
        self._seat = torch.zeros(num_envs, dtype=torch.int64, device=self.device)

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Tensor, dict[str, Any]]:
        """N new games. One int ``seed`` seeds the one generator that drives every board."""
        if isinstance(seed, list):
            raise TypeError(
                "BoardGameVectorEnv.reset takes one int seed (one torch generator drives all "
                f"boards), got a list of {len(seed)}"
            )
        super().reset(seed=seed)
        if seed is not None or not self._seeded:
            self._generator.manual_seed(int(self.np_random.integers(2**62)))
            self._seeded = True
        self._state, self._seat = self._match.new_games(self.num_envs, self._generator, self.device)
        return self._observation(self._state), self._infos()

    def step(self, actions: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        """The agent's moves [N], the opponent's replies, and SAME_STEP autoreset."""
        state = self._require_state()
        actions = torch.as_tensor(actions, device=self.device)
        state, reward = self._match.play(state, self._seat, actions, self._generator)
        done = state.terminated
        final_obs, final_seat = self._observation(state), self._seat
        self._state, self._seat = self._match.restart(state, self._seat, done, self._generator)
        infos = self._infos()
        infos["final_obs"], infos["_final_obs"] = final_obs, done
        infos["final_info"] = {"agent_seat": final_seat, "_agent_seat": done}
        infos["_final_info"] = done
        truncated = torch.zeros_like(done)
        return self._observation(self._state), reward, done, truncated, infos

    def action_masks(self) -> Tensor:
        """[N, A] bool legal actions of the agent on every board."""
        return self.game.legal_mask(self._require_state())

    def render(self) -> tuple[Any, ...] | None:
        """One frame per board (text or ``[H, W, 3]`` uint8), as ``SyncVectorEnv`` gives."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass one to make_vec()")
            return None
        state = self._require_state()
        return tuple(
            render_board(self.game, state, self.render_mode, i) for i in range(self.num_envs)
        )

    @property
    def game_state(self) -> State:
        """The underlying N-board game state (read it; do not replace it)."""
        return self._require_state()

    @property
    def agent_seat(self) -> Tensor:
        """[N] int64: the agent's seat on every board (0 moves first)."""
        return self._seat

    def _require_state(self) -> State:
        if self._state is None:
            raise RuntimeError(f"{self.game.id}: call reset() before using the environment")
        return self._state

    def _observation(self, state: State) -> Tensor:
        return self.game.observe(state, player=self._seat)

    def _infos(self) -> dict[str, Any]:
        return {"action_mask": self.action_masks(), "agent_seat": self._seat}
