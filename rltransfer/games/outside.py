"""PettingZoo two-player AEC envs as rltransfer games: ``make("pettingzoo:go_v5", board_size=9)``.

:class:`OutsideGame` puts a batch of env instances behind the :class:`~rltransfer.games.core.Game`
interface, so an outside env is a task in a suite beside the native games, with the same
collector, evaluation, network and transfer code. What it reads from the env:

* the observation of the agent to move (PettingZoo gives the mover's view), channels-last
  ``[H, W, C]`` -> our ``[N, C, H, W]`` float planes, as the env gives them;
* the legal moves from the observation dict's ``action_mask``;
* the rewards of both agents after every ply: zero until the game ends, then zero-sum;
* who moves: the agent to move after ``reset`` is player 0, the other one player 1, and
  every ply must hand the move to the other agent (checked: an error names the env).

**Forward-only.** Native games are functional (``step`` returns a new state and leaves the
old one usable). An env cannot be copied cheaply, so this is the one game whose ``step``
*moves the envs*: an :class:`OutsideState` holds env slot indices plus the cached
observation and mask, and a state that has been stepped (or reset) is stale: stepping it
again raises :class:`StaleStateError`. The game says so through its capabilities
(``functional = False``, ``supports_lookahead = False``), which is what the shared code
checks: the greedy player plays random moves here, and resuming a run restarts the games in
flight. ``step(state, action, where=...)`` and ``reset_where`` touch only the boards they
name, so the collector's partial moves and resets need no special case. Because of that,
:func:`rltransfer.games.check.check_game`'s functional checks do not apply; the adapter has
its own conformance test against direct PettingZoo play (``tests/test_game_outside.py``).

It is also the one exception to "no Python loop over environments": every ply loops over
the moving boards on the CPU and copies their observations to the device. A suite gives
such a task its own, smaller step budget (``num_steps`` in ``envs/*.toml``).

Options: ``max_moves`` (a time limit, default ``10 * H * W`` plies; a game that reaches it
ends as a draw) and ``illegal_action`` are the adapter's own; every other option goes to
the env constructor. ``pettingzoo:<name>`` takes ``env`` from ``pettingzoo.classic.<name>``;
a dotted name (``pettingzoo:my_pkg.my_env``) imports that module's ``env``, or that
attribute itself when the module path ends in it.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rltransfer.games.core import Game, IllegalActionError, IllegalActionMode, State

PREFIX = "pettingzoo:"


class OutsideEnvError(ValueError):
    """An outside env that does not fit the game contract; the message says what is missing."""


class StaleStateError(RuntimeError):
    """A forward-only state stepped or reset after its envs moved on."""


@dataclasses.dataclass(frozen=True)
class KnownEnv:
    """What an env's spaces do not say, for the PettingZoo classic board games."""

    #: actions are the observation's cells row-major (``r * W + c``), plus a last pass
    cell_actions: bool
    has_pass: bool = False
    #: observation planes holding the mover's and the opponent's pieces (for ``board``)
    stones: tuple[tuple[int, ...], tuple[int, ...]] = ((0,), (1,))


_KNOWN = {
    "go_v5": KnownEnv(cell_actions=True, has_pass=True),  # action (a // N, a % N), pass N*N
    "chess_v6": KnownEnv(cell_actions=False, stones=(tuple(range(7, 13)), tuple(range(13, 19)))),
    "connect_four_v3": KnownEnv(cell_actions=False),  # actions are columns
    "tictactoe_v3": KnownEnv(cell_actions=False),  # cells numbered column-major
}
_UNKNOWN = KnownEnv(cell_actions=False)


class EnvBatch:
    """The env instances behind one ``init`` call. States refer to it, so the envs live as
    long as some state does; ``version[slot]`` counts the plies and resets of each env."""

    def __init__(self, envs: list[Any]) -> None:
        self.envs = envs
        self.version = [0] * len(envs)


@dataclasses.dataclass(frozen=True)
class OutsideState(State):
    """Boards of an outside game: which env each one is, and its cached view."""

    slot: Tensor  # [N] int64: the board's env in ``batch.envs``
    version: Tensor  # [N] int64: that env's version when this state was made
    obs: Tensor  # [N, C, H, W] float32: the mover's observation
    mask: Tensor  # [N, A] bool: the mover's legal actions (as of the last ply)
    batch: EnvBatch = dataclasses.field(repr=False, compare=False)

    def tensors(self) -> dict[str, Tensor]:
        """The tensor fields (``batch`` is a reference, kept by ``map``/``where``/``index``)."""
        return {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "batch"
        }

    def where(self, cond: Tensor, other: OutsideState) -> OutsideState:
        # boards of another batch are other envs: a select between them means nothing
        if other.batch is not self.batch:
            raise ValueError("cannot mix boards of two OutsideGame.init batches (other envs)")
        return super().where(cond, other)

    @classmethod
    def cat(cls, states: list[OutsideState]) -> OutsideState:
        if any(s.batch is not states[0].batch for s in states):
            raise ValueError("cannot concatenate boards of two OutsideGame.init batches")
        return super().cat(states)


class OutsideGame(Game):
    """N instances of a PettingZoo two-player AEC env as one game (see the module docstring)."""

    id = "pettingzoo"  # replaced per instance by "pettingzoo:<env>"
    functional = False
    supports_lookahead = False

    def __init__(
        self,
        env: str,
        *,
        illegal_action: IllegalActionMode = "lose",
        max_moves: int = 0,
        **env_options: Any,
    ) -> None:
        super().__init__(illegal_action=illegal_action)
        self.env_name = env
        self.id = PREFIX + env
        self.env_options = dict(env_options)
        self._env_fn = _env_factory(env)
        probe = self._new_env()
        probe.reset(seed=0)
        self.agents = _agents(self.id, probe)
        obs = _obs_space_parts(self.id, probe, self.agents[0])
        self.height, self.width, self.num_planes = obs
        self.num_actions = int(probe.action_space(self.agents[0]).n)
        known = _KNOWN.get(env, _UNKNOWN)
        self.has_pass = known.has_pass
        self.cell_actions = known.cell_actions
        if self.cell_actions and self.num_actions != self.height * self.width + self.has_pass:
            self.cell_actions = False  # e.g. another board size than the table assumed
        self.stones = tuple(tuple(p for p in ps if p < self.num_planes) for ps in known.stones)
        if not isinstance(max_moves, int) or isinstance(max_moves, bool) or max_moves < 0:
            raise ValueError(f"{self.id}: max_moves must be an integer >= 0, got {max_moves!r}")
        self.max_moves = max_moves or 10 * self.height * self.width

    # -------------------------------------------------------------------------- envs
    def _new_env(self) -> Any:
        try:
            return self._env_fn(**self.env_options)
        except TypeError as e:
            raise ValueError(
                f"{self.id}: the env does not take the options {self.env_options}: {e}"
            ) from None

    def _view(self, env: Any) -> tuple[np.ndarray, np.ndarray]:
        """(observation [H, W, C], mask [A] bool) of the agent to move."""
        o = env.observe(env.agent_selection)
        return np.asarray(o["observation"]), np.asarray(o["action_mask"]).astype(bool)

    def _stack(
        self, views: Sequence[tuple[np.ndarray, np.ndarray]], device: torch.device
    ) -> tuple[Tensor, Tensor]:
        """Host views -> ([K, C, H, W] float32, [K, A] bool) on ``device`` (one copy each)."""
        obs = torch.from_numpy(np.stack([v[0] for v in views]).astype(np.float32))
        mask = torch.from_numpy(np.stack([v[1] for v in views]))
        return obs.permute(0, 3, 1, 2).contiguous().to(device), mask.to(device)

    def _reset_env(self, env: Any, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
        env.reset(seed=seed)
        if env.agent_selection != self.agents[0]:
            raise OutsideEnvError(
                f"{self.id}: {env.agent_selection} moves first after this reset, "
                f"{self.agents[0]} after the first; rltransfer needs a fixed first player"
            )
        return self._view(env)

    # -------------------------------------------------------------------- public API
    def init(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> OutsideState:
        """N new env instances, reset (seeds drawn from ``generator`` when given)."""
        if n < 1:
            raise ValueError(f"number of boards must be >= 1, got {n}")
        dev = torch.device(device) if device is not None else _device_of(generator)
        batch = EnvBatch([self._new_env() for _ in range(n)])
        views = [
            self._reset_env(e, s) for e, s in zip(batch.envs, _seeds(n, generator), strict=True)
        ]
        obs, mask = self._stack(views, dev)
        return OutsideState(
            **self._base_fields(n, dev),
            slot=torch.arange(n, device=dev),
            version=torch.zeros(n, dtype=torch.int64, device=dev),
            obs=obs,
            mask=mask,
            batch=batch,
        )

    def step(self, state: State, action: Tensor, where: Tensor | None = None) -> OutsideState:
        """Step the envs of the moving boards (live, and in ``where``); see ``Game.step``.

        Forward-only: the input state is stale afterwards for the boards that moved.
        """
        s = self._own(state)
        action = self._check_action(s, action)
        selected = torch.ones_like(s.terminated) if where is None else where.to(torch.bool)
        moving = selected & ~s.terminated
        rows = moving.nonzero()[:, 0]
        # finished selected boards get zero reward, unselected ones keep theirs
        reward = torch.where(selected, 0.0, s.reward)
        if rows.numel() == 0:
            return dataclasses.replace(s, reward=reward)
        idx = rows.tolist()
        acts, players = action[rows].tolist(), s.current_player[rows].tolist()
        slots, versions = s.slot[rows].tolist(), s.version[rows].tolist()
        plies, legal = s.step_count[rows].tolist(), s.mask[rows].cpu()
        done, r0, views = [], [], []
        for k, i in enumerate(idx):
            env = self._fresh_env(s.batch, slots[k], versions[k])
            a, p = acts[k], players[k]
            if 0 <= a < self.num_actions and bool(legal[k, a]):
                over, r = self._play(env, a, p, plies[k] + 1)
            elif self.illegal_action == "raise":
                shown = legal[k].nonzero()[:, 0].tolist()
                raise IllegalActionError(
                    f"{self.id}: action {a} is illegal on board {i}; legal actions there: {shown}"
                )
            else:  # forfeit, as in every game: the env is not stepped, the mover loses
                over, r = True, -1.0 if p == 0 else 1.0
            s.batch.version[slots[k]] += 1
            done.append(over)
            r0.append(r)
            views.append(self._view(env))
        dev = s.device
        obs, mask = self._stack(views, dev)
        return dataclasses.replace(
            s,
            current_player=s.current_player.index_put((rows,), 1 - s.current_player[rows]),
            terminated=s.terminated.index_put((rows,), torch.tensor(done, device=dev)),
            reward=reward.index_put((rows,), torch.tensor(r0, device=dev)),
            step_count=s.step_count.index_put((rows,), s.step_count[rows] + 1),
            version=s.version.index_put((rows,), s.version[rows] + 1),
            obs=s.obs.index_put((rows,), obs),
            mask=s.mask.index_put((rows,), mask),
        )

    def _play(self, env: Any, action: int, player: int, plies: int) -> tuple[bool, float]:
        """Step one env; (game over, player 0's reward), after checking the env's turn order
        and rewards. Reaching ``max_moves`` ends the game as a draw (a time limit)."""
        mover = env.agent_selection
        if mover != self.agents[player]:
            raise OutsideEnvError(
                f"{self.id}: the env has {mover} to move where the board has "
                f"{self.agents[player]} (player {player}); did the env change its turn order?"
            )
        env.step(action)
        rewards = [float(env.rewards.get(agent, 0.0)) for agent in self.agents]
        over = any(env.terminations.values()) or any(env.truncations.values())
        if abs(rewards[0] + rewards[1]) > 1e-6:
            raise OutsideEnvError(f"{self.id}: rewards {rewards} are not zero-sum")
        if not over and rewards[0] != 0.0:
            raise OutsideEnvError(
                f"{self.id}: reward {rewards} before the game ended; rltransfer games reward "
                "only the ply that ends a game"
            )
        if not over and env.agent_selection != self.agents[1 - player]:
            raise OutsideEnvError(
                f"{self.id}: {mover} moved and {env.agent_selection} is to move next; "
                "rltransfer needs two agents that strictly alternate"
            )
        if not over and plies >= self.max_moves:
            return True, 0.0
        return over, rewards[0]

    def reset_where(
        self, state: State, done: Tensor, generator: torch.Generator | None = None
    ) -> OutsideState:
        """Reset the envs of the boards in ``done``; the other boards are untouched."""
        s = self._own(state)
        rows = done.to(torch.bool).nonzero()[:, 0]
        if rows.numel() == 0:
            return s
        slots, versions = s.slot[rows].tolist(), s.version[rows].tolist()
        views = []
        for slot, version, seed in zip(slots, versions, _seeds(len(slots), generator), strict=True):
            views.append(self._reset_env(self._fresh_env(s.batch, slot, version), seed))
            s.batch.version[slot] += 1
        obs, mask = self._stack(views, s.device)
        zeros = torch.zeros_like(rows)
        return dataclasses.replace(
            s,
            current_player=s.current_player.index_put((rows,), zeros),
            terminated=s.terminated.index_put((rows,), zeros.bool()),
            reward=s.reward.index_put((rows,), zeros.float()),
            step_count=s.step_count.index_put((rows,), zeros),
            version=s.version.index_put((rows,), s.version[rows] + 1),
            obs=s.obs.index_put((rows,), obs),
            mask=s.mask.index_put((rows,), mask),
        )

    def observe(self, state: State, player: Tensor | None = None) -> Tensor:
        """[N, C, H, W] planes of the mover (the env's view; other viewers are not cached)."""
        s = self._own(state)
        if player is not None and not bool((player == s.current_player).all()):
            raise NotImplementedError(f"{self.id}: only the mover's observation is available")
        return s.obs

    def board(self, state: State) -> Tensor:
        """[N, H, W] int8 picture from the mover's view: the stone planes of the known envs
        (Go and Connect Four: the stones; chess: the pieces), the first two planes else."""
        s = self._own(state)
        own, opp = (s.obs[:, list(p)].sum(dim=1) > 0 if p else None for p in self.stones)
        me = (s.current_player + 1).view(-1, 1, 1).to(torch.int8)
        out = torch.zeros(s.batch_size, self.height, self.width, dtype=torch.int8, device=s.device)
        if own is not None:
            out = torch.where(own, me, out)
        if opp is not None:
            out = torch.where(opp, 3 - me, out)
        return out

    # ----------------------------------------------------- template parts (not used)
    def _init(self, n: int, device: torch.device) -> State:
        return self.init(n, device=device)

    def _legal_mask(self, state: State) -> Tensor:
        return self._own(state).mask

    def _apply(self, state: State, action: Tensor) -> State:
        raise NotImplementedError("OutsideGame overrides step; it has no functional _apply")

    # ------------------------------------------------------------------------ helpers
    def _own(self, state: State) -> OutsideState:
        if not isinstance(state, OutsideState):
            raise TypeError(f"{self.id}: expected boards from this game's init, got {type(state)}")
        return state

    def _fresh_env(self, batch: EnvBatch, slot: int, version: int) -> Any:
        if batch.version[slot] != version:
            raise StaleStateError(
                f"{self.id}: this state's board {slot} was already stepped or reset; outside "
                "games are forward-only, so only the latest state of a board can move"
            )
        return batch.envs[slot]

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.env_options.items())
        return f"OutsideGame({self.id!r}{', ' if opts else ''}{opts}, max_moves={self.max_moves})"


# ------------------------------------------------------------------------ env checks
def _env_factory(name: str) -> Callable[..., Any]:
    """The env constructor for ``pettingzoo:<name>`` (see the module docstring)."""
    if not name:
        raise KeyError(f"{PREFIX}: name an env, e.g. {PREFIX}connect_four_v3")
    if "." not in name:
        try:
            module = importlib.import_module(f"pettingzoo.classic.{name}")
        except ImportError as e:
            if e.name and e.name != f"pettingzoo.classic.{name}":
                hint = ' (pip install "rltransfer[outside]")' if e.name == "chess" else ""
                raise OutsideEnvError(
                    f"{PREFIX}{name} needs the package {e.name!r}{hint}"
                ) from None
            module = None
        fn: Callable[..., Any] | None = getattr(module, "env", None)
        if fn is None:  # also a subpackage such as pettingzoo.classic.chess
            raise KeyError(
                f"unknown PettingZoo env {name!r}; classic envs: {', '.join(classic_envs())}"
            )
        return fn
    try:
        fn = importlib.import_module(name).env
        return fn
    except ModuleNotFoundError:
        module_name, _, attr = name.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as e:
            raise KeyError(f"{PREFIX}{name}: cannot import it ({e})") from None
    except AttributeError:
        raise KeyError(f"{PREFIX}{name}: the module has no env() function") from None
    if not callable(obj):
        raise KeyError(f"{PREFIX}{name} is not callable")
    factory: Callable[..., Any] = obj
    return factory


def classic_envs() -> list[str]:
    """The env modules of ``pettingzoo.classic`` (e.g. ``chess_v6``, ``go_v5``)."""
    import pettingzoo.classic

    return sorted(
        m.name for m in pkgutil.iter_modules(pettingzoo.classic.__path__) if "_v" in m.name
    )


def _agents(game_id: str, env: Any) -> tuple[str, str]:
    agents = list(getattr(env, "possible_agents", []))
    if len(agents) != 2:
        raise OutsideEnvError(
            f"{game_id}: rltransfer games have two players; this env has {len(agents)} "
            f"agents {agents}"
        )
    first = env.agent_selection
    return first, agents[1 - agents.index(first)]


def _obs_space_parts(game_id: str, env: Any, agent: str) -> tuple[int, int, int]:
    """(H, W, C) of the board observation, after checking the observation and action spaces."""
    space = env.observation_space(agent)
    spaces: Any = getattr(space, "spaces", None)
    if not hasattr(spaces, "keys"):
        raise OutsideEnvError(
            f"{game_id}: the observation must be a dict with 'observation' (a [H, W, C] board) "
            f"and 'action_mask'; got {space}"
        )
    missing = [k for k in ("observation", "action_mask") if k not in spaces]
    if missing:
        raise OutsideEnvError(
            f"{game_id}: the observation dict lacks {missing} (it has {list(spaces)}); "
            "rltransfer needs the board as 'observation' and the legal moves as 'action_mask'"
        )
    shape = tuple(spaces["observation"].shape or ())
    if len(shape) != 3:
        raise OutsideEnvError(
            f"{game_id}: the observation is not a board: shape {shape}, expected 3-D "
            "[H, W, C] (channels-last planes)"
        )
    action_space = env.action_space(agent)
    n = getattr(action_space, "n", None)
    if n is None:
        raise OutsideEnvError(f"{game_id}: the action space must be Discrete, got {action_space}")
    if tuple(spaces["action_mask"].shape or ()) != (int(n),):
        raise OutsideEnvError(
            f"{game_id}: action_mask has shape {spaces['action_mask'].shape}, expected ({n},)"
        )
    return int(shape[0]), int(shape[1]), int(shape[2])


def _seeds(n: int, generator: torch.Generator | None) -> list[int | None]:
    if generator is None:
        return [None] * n
    draws = torch.randint(2**31 - 1, (n,), generator=generator, device=generator.device)
    return [int(x) for x in draws.tolist()]


def _device_of(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")
