"""Any rltransfer game as a PettingZoo AEC environment: one board, two agents taking turns.

This is the view for people who already have PettingZoo code (or want to compare with its
classic games): ``player_0`` moves first, ``player_1`` second, and every agent observes a
dict, as ``connect_four_v3`` and ``tictactoe_v3`` do::

    {"observation": [C, H, W] float32 planes from that agent's view,
     "action_mask": [A] int8, the legal actions (all zeros unless it is that agent's turn)}

The planes are the game's own (``game.observe(state, player=seat)``), channels first as
everywhere in rltransfer (PettingZoo's classic games are channels last); the action space is
``Discrete(game.num_actions)``, the game's own cell actions (Connect Four: the landing cell,
not the column).

Rewards are ``+1`` / ``-1`` / ``0`` when the game ends and zero before, zero-sum, exactly
the game's ``state.rewards``. After the last move both agents are terminated; the agent that
did *not* make the last move is selected first, so a loser's ``last()`` shows the final board
and ``-1``; then each agent steps ``None`` and is removed (the AEC dead-step protocol).

Illegal actions follow the game's ``illegal_action`` option, passed through ``**options``:

* ``"lose"`` (the default, the rule of every rltransfer game): the mover loses, the board is
  left as it was, both agents are terminated with ``-1`` for the mover and ``+1`` for the
  other, and ``infos[mover]["illegal_action"]`` is ``True``. PettingZoo's own classic games
  end the game as well (their ``TerminateIllegalWrapper``) but give the other agent ``0`` and
  mark both agents truncated; here the game's zero-sum rule wins, so training through this
  view and through the batched engine sees the same rewards.
* ``"raise"``: :class:`rltransfer.games.IllegalActionError` naming the action, the legal
  actions and the board; the environment is left unchanged.

Truncation never happens: every game ends within ``game.max_moves`` plies by its own rules.
"""

from __future__ import annotations

import operator
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from pettingzoo import AECEnv

from rltransfer.games import BoardGame, State
from rltransfer.views._common import RENDER_MODES, build_game, check_render_mode, render_board

AGENTS = ("player_0", "player_1")

Observation = dict[str, np.ndarray]


class BoardGameAEC(AECEnv[str, Observation, int]):
    """One board of an rltransfer game as a turn-based PettingZoo environment.

    Args:
        game: a game id from :func:`rltransfer.games.available_games` or a built game.
        render_mode: ``None``, ``"ansi"`` (text board) or ``"rgb_array"`` (``[H, W, 3]``
            uint8 from ``game.render_rgb``).
        **options: game options, e.g. ``size=6`` or ``illegal_action="raise"``.
    """

    def __init__(
        self, game: str | BoardGame, render_mode: str | None = None, **options: Any
    ) -> None:
        super().__init__()
        self.game = build_game(game, options)
        self.render_mode = check_render_mode(render_mode)
        self.metadata = {
            "name": f"rltransfer_{self.game.id}_v0",
            "render_modes": list(RENDER_MODES),
            "is_parallelizable": False,
            "render_fps": 2,
        }
        self.possible_agents = list(AGENTS)
        g = self.game
        obs_space = spaces.Dict(
            {
                "observation": spaces.Box(
                    0.0, 1.0, (g.num_planes, g.height, g.width), dtype=np.float32
                ),
                "action_mask": spaces.Box(0, 1, (g.num_actions,), dtype=np.int8),
            }
        )
        # One space object per agent, returned as is: PettingZoo seeds spaces by identity.
        self.observation_spaces = {a: obs_space for a in AGENTS}
        self.action_spaces = {a: spaces.Discrete(g.num_actions) for a in AGENTS}
        self._generator = torch.Generator()
        self._state: State | None = None

    # ------------------------------------------------------------------------ spaces
    def observation_space(self, agent: str) -> spaces.Space[Any]:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space[Any]:
        return self.action_spaces[agent]

    # ------------------------------------------------------------------------- API
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        """Start a new game; ``seed`` seeds the generator handed to ``game.init``."""
        if seed is not None:
            self._generator.manual_seed(seed)
        self._state = self.game.init(1, self._generator)
        self.agents = list(AGENTS)
        self.rewards = dict.fromkeys(AGENTS, 0.0)
        self._cumulative_rewards = dict.fromkeys(AGENTS, 0.0)
        self.terminations = dict.fromkeys(AGENTS, False)
        self.truncations = dict.fromkeys(AGENTS, False)
        self.infos: dict[str, dict[str, Any]] = {a: {} for a in AGENTS}
        self.agent_selection = AGENTS[int(self._state.current_player[0])]

    def observe(self, agent: str) -> Observation:
        state = self._require_state()
        seat = AGENTS.index(agent)
        planes = self.game.observe(state, player=torch.tensor([seat]))[0]
        mask = np.zeros(self.game.num_actions, dtype=np.int8)
        if self._is_to_move(state, seat):
            mask[:] = self.game.legal_mask(state)[0].numpy()
        return {"observation": planes.numpy(), "action_mask": mask}

    def step(self, action: int | None) -> None:
        """Play ``action`` for the selected agent (``None`` once that agent is terminated)."""
        state = self._require_state()
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        if action is None:
            raise ValueError(f"{agent} is still playing and must act; None is for dead agents")
        a = operator.index(action)  # ints and NumPy integers; floats are an error
        seat = AGENTS.index(agent)
        illegal = not 0 <= a < self.game.num_actions or not bool(self.game.legal_mask(state)[0, a])
        self._state = state = self.game.step(state, torch.tensor([a]))
        self._cumulative_rewards[agent] = 0.0
        self.rewards = {p: float(state.rewards[0, i]) for i, p in enumerate(AGENTS)}
        if bool(state.terminated[0]):
            self.terminations = dict.fromkeys(self.agents, True)
            self.infos[agent]["illegal_action"] = illegal
            # The agent that did not move sees the result first (a loser's final view).
            self.agent_selection = AGENTS[1 - seat]
        else:
            self.agent_selection = AGENTS[int(state.current_player[0])]
        self._accumulate_rewards()

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass one to make_aec")
            return None
        return render_board(self.game, self._require_state(), self.render_mode)

    def close(self) -> None:
        """Nothing to release: the board is a few CPU tensors."""

    # --------------------------------------------------------------------- helpers
    @property
    def game_state(self) -> State:
        """The underlying one-board game state (read it; do not replace it).

        Not called ``state``: PettingZoo reserves ``state()`` for a global observation.
        """
        return self._require_state()

    def _require_state(self) -> State:
        if self._state is None:
            raise RuntimeError(f"{self}: call reset() before using the environment")
        return self._state

    @staticmethod
    def _is_to_move(state: State, seat: int) -> bool:
        return not bool(state.terminated[0]) and int(state.current_player[0]) == seat


def make_aec(game_id: str, render_mode: str | None = None, **options: Any) -> BoardGameAEC:
    """``make_aec("connect_four")``: a :class:`BoardGameAEC` (unwrapped; see module doc)."""
    return BoardGameAEC(game_id, render_mode=render_mode, **options)
