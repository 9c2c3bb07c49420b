"""PettingZoo two-player AEC envs as rltransfer games: ``make("pettingzoo:go_v5", board_size=9)``.

:class:`OutsideGame` puts a batch of env instances behind the
:class:`~rltransfer.games.core.BoardGame` interface, so an outside env is a task in a
suite beside the native games, with the same collector, evaluation, network and transfer
code. What it reads from the env:

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

**Names, never import paths.** Game ids and options are read from files (suites, a run's
``config.toml``, a checkpoint's ``meta.json``), and a file is data: it must not be able to
run code. So ``pettingzoo:<name>`` is looked up in a table of allowed envs and nothing else
is ever imported or called. The table holds the PettingZoo classic envs that fit the
adapter (two agents, a 3-D board observation with an ``action_mask``): ``chess_v6``,
``connect_four_v3``, ``go_v5`` and ``tictactoe_v3`` (the card games have flat observations,
``rps_v2`` no mask). Your own env joins the table from Python code, which a file cannot do:
``register_env("my_env", my_pkg.env, options={...})``, then ``make("pettingzoo:my_env")``
(a script must register it before it loads a file that names it).

**Options are declared and checked before any env code runs.** Each env lists the options
its constructor takes (:class:`EnvOption`: type and range); ``go_v5`` takes ``board_size``
(an int in 2..25) and ``komi`` (a finite float), the other classic envs none. The adapter
adds two of its own: ``max_moves`` (a time limit, default ``10 * H * W`` plies; a game that
reaches it ends as a draw; 0 means the default) and ``illegal_action``. An unknown option
or a value of another type or outside the range is a ``ValueError`` naming the valid ones,
raised before the env's module is even imported.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rltransfer.errors import GameOptionError, UnknownGameError, UserError
from rltransfer.games.core import (
    Actions,
    BoardGame,
    BoardMask,
    IllegalActionError,
    IllegalActionMode,
    State,
    article,
    plain_value,
)

PREFIX = "pettingzoo:"


class OutsideEnvError(UserError, ValueError):
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
    #: what each observation plane means (``BoardGame.planes``); empty: unknown
    planes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class EnvOption:
    """One option an env's constructor takes, declared so that a value read from a file is
    checked before any env code runs.

    ``kind`` is ``int``, ``float``, ``bool`` or ``str``. The check is type-exact: an int
    takes ints (NumPy integers too) but never a bool or a float such as ``9.0``; a float
    takes ints and finite floats. ``low`` / ``high`` bound a number (inclusive) and
    ``choices`` lists the allowed values; ``default`` and ``help`` are for descriptions.
    """

    kind: type
    default: Any = None
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    help: str = ""

    def __post_init__(self) -> None:
        if self.kind not in (int, float, bool, str):
            raise ValueError(f"EnvOption kind must be int, float, bool or str, got {self.kind!r}")

    def check(self, value: Any) -> Any:
        """``value`` as a plain Python value of ``kind``; a ``ValueError`` saying what is
        expected if it has another type or lies outside the range or the choices."""
        try:
            plain = plain_value(value, self.kind)
        except TypeError:
            raise ValueError(
                f"expected {self.describe()}, got {article(type(value).__name__)}"
            ) from None
        too_low = self.low is not None and plain < self.low
        too_high = self.high is not None and plain > self.high
        if too_low or too_high or (self.choices and plain not in self.choices):
            raise ValueError(f"expected {self.describe()}")
        return plain

    def describe(self) -> str:
        """The allowed values in words: ``"an int in 2..25"``, ``"one of 'lose', 'raise'"``."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        what = article(self.kind.__name__) if self.kind is not float else "a finite float"
        if self.low is not None and self.high is not None:
            return f"{what} in {self.low}..{self.high}"
        if self.low is not None:
            return f"{what} >= {self.low}"
        if self.high is not None:
            return f"{what} <= {self.high}"
        return what


#: The adapter's own options, taken by every outside game (an env cannot declare them).
ADAPTER_OPTIONS: Mapping[str, EnvOption] = {
    "max_moves": EnvOption(
        int, default=0, low=0, help="time limit in plies, a draw when reached (0: 10 * H * W)"
    ),
    "illegal_action": EnvOption(
        str, default="lose", choices=("lose", "raise"), help="forfeit the game, or raise"
    ),
}


@dataclasses.dataclass(frozen=True)
class _EnvEntry:
    """An allowed env: how to get its constructor, its options, what its spaces do not say."""

    constructor: Callable[[], Callable[..., Any]]  # imports the env's module, if need be
    options: Mapping[str, EnvOption]
    known: KnownEnv
    builtin: bool


#: The planes of the envs whose observation is the mover's pieces, then the opponent's.
_OWN_OPPONENT = ("own", "opponent")


# The PettingZoo classic envs that fit the adapter, each imported by a fixed statement only
# when a game of it is made (python-chess and pygame are optional).
def _chess_v6() -> Callable[..., Any]:
    from pettingzoo.classic import chess_v6

    return chess_v6.env


def _connect_four_v3() -> Callable[..., Any]:
    from pettingzoo.classic import connect_four_v3

    return connect_four_v3.env


def _go_v5() -> Callable[..., Any]:
    from pettingzoo.classic import go_v5

    return go_v5.env


def _tictactoe_v3() -> Callable[..., Any]:
    from pettingzoo.classic import tictactoe_v3

    return tictactoe_v3.env


_GO_OPTIONS: Mapping[str, EnvOption] = {
    # GTP coordinates name 25 columns; every size from 2 plays (checked with random games)
    "board_size": EnvOption(int, default=19, low=2, high=25, help="board side"),
    "komi": EnvOption(float, default=7.5, help="points given to white, who moves second"),
}
_CHESS_PIECES = (tuple(range(7, 13)), tuple(range(13, 19)))  # own, opponent's piece planes
_ENVS: dict[str, _EnvEntry] = {
    "chess_v6": _EnvEntry(
        _chess_v6, {}, KnownEnv(cell_actions=False, stones=_CHESS_PIECES), builtin=True
    ),
    "connect_four_v3": _EnvEntry(  # actions are columns
        _connect_four_v3, {}, KnownEnv(cell_actions=False, planes=_OWN_OPPONENT), builtin=True
    ),
    "go_v5": _EnvEntry(  # action a is the cell (a // N, a % N), N * N the pass
        _go_v5, _GO_OPTIONS, KnownEnv(cell_actions=True, has_pass=True), builtin=True
    ),
    "tictactoe_v3": _EnvEntry(  # cells numbered column-major
        _tictactoe_v3, {}, KnownEnv(cell_actions=False, planes=_OWN_OPPONENT), builtin=True
    ),
}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def register_env(
    name: str,
    env_fn: Callable[..., Any],
    *,
    options: Mapping[str, EnvOption] | None = None,
    known: KnownEnv | None = None,
) -> None:
    """Make ``pettingzoo:<name>`` a game: ``env_fn(**options)`` builds one AEC env.

    Python code only, never a file: a suite or config naming ``pettingzoo:my_env`` loads in
    a process whose code registered ``my_env`` first. ``options`` declares every keyword
    ``env_fn`` may get (:class:`EnvOption`: type and range), checked before it is called;
    ``known`` says what the spaces do not (default: a flat policy head). The env must fit
    the adapter (two alternating agents, a ``[H, W, C]`` board with an ``action_mask``),
    which :func:`~rltransfer.games.make` checks. ``name`` is a letter followed by letters,
    digits and underscores (it ends up in task names and paths); registering a name again
    replaces the earlier env, but a built-in env cannot be replaced.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"env name {name!r} must be a letter followed by letters, digits or underscores"
        )
    if name in _ENVS and _ENVS[name].builtin:
        raise ValueError(f"{PREFIX}{name} is a built-in env; register yours under another name")
    if not callable(env_fn):
        raise TypeError(f"env_fn must be callable (it builds one env), got {env_fn!r}")
    declared = dict(options or {})
    for key, opt in declared.items():
        if key in ADAPTER_OPTIONS or not isinstance(opt, EnvOption):
            raise ValueError(
                f"{PREFIX}{name}: option {key!r} must be an EnvOption and not one of the "
                f"adapter's own options ({', '.join(ADAPTER_OPTIONS)})"
            )
    _ENVS[name] = _EnvEntry(
        lambda: env_fn, declared, known or KnownEnv(cell_actions=False), builtin=False
    )


def available_envs() -> list[str]:
    """Names ``pettingzoo:<name>`` accepts: the fitting classic envs and registered ones."""
    return sorted(_ENVS)


def env_planes(name: str) -> tuple[str, ...]:
    """What the observation planes of env ``name`` mean, from the table (nothing is
    imported); empty where the table does not say (``OutsideGame.planes``: ``unknown``)."""
    return _entry(name).known.planes


def env_options(name: str) -> dict[str, EnvOption]:
    """Every option ``pettingzoo:<name>`` takes: the env's, then the adapter's own."""
    return {**_entry(name).options, **ADAPTER_OPTIONS}


def _entry(name: str) -> _EnvEntry:
    """The table entry of ``name``, or a ``KeyError`` listing the valid names (nothing is
    imported: the name is a key, never a module path)."""
    entry = _ENVS.get(name) if isinstance(name, str) else None
    if entry is None:
        raise UnknownGameError(
            f"unknown PettingZoo env {name!r}; available: {', '.join(available_envs())} "
            "(register your own with rltransfer.games.register_env)"
        )
    return entry


def _checked_options(game_id: str, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` as plain values after checking them against ``env_options(name)``."""
    valid = env_options(name)
    checked = {}
    for key, value in options.items():
        if key not in valid:
            raise GameOptionError(
                f"{game_id}: unknown option {key!r}; valid options: {', '.join(valid)}"
            )
        try:
            checked[key] = valid[key].check(value)
        except ValueError as e:
            raise GameOptionError(
                f"{game_id}: option {key}={value!r} is not allowed: {e}"
            ) from None
    return checked


def _load(game_id: str, entry: _EnvEntry) -> Callable[..., Any]:
    """The env constructor, naming a missing optional package (python-chess, pygame)."""
    try:
        return entry.constructor()
    except ImportError as e:
        if not e.name:
            raise
        install = '"rltransfer[outside]"' if e.name == "chess" else e.name
        raise OutsideEnvError(
            f"{game_id} needs the package {e.name!r} (pip install {install})"
        ) from None


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


class OutsideGame(BoardGame[OutsideState]):
    """N instances of a PettingZoo two-player AEC env as one game (see the module docstring)."""

    id = "pettingzoo"  # replaced per instance by "pettingzoo:<env>"
    state_type = OutsideState
    functional = False
    supports_lookahead = False

    def __init__(
        self,
        env: str,
        /,
        *,
        illegal_action: IllegalActionMode = "lose",
        max_moves: int = 0,
        **env_options: Any,
    ) -> None:
        """``env``: a name of :func:`available_envs`; the options are checked first (see the
        module docstring), then the env is imported and one instance probed."""
        entry = _entry(env)
        game_id = PREFIX + env
        adapter = {"illegal_action": illegal_action, "max_moves": max_moves}
        checked = _checked_options(game_id, env, {**env_options, **adapter})
        super().__init__(illegal_action=checked.pop("illegal_action"))
        max_moves = checked.pop("max_moves")
        self.env_name = env
        self.id = game_id
        self.env_options = checked
        self._env_fn = _load(game_id, entry)
        probe = self._new_env()
        probe.reset(seed=0)
        self.agents = _agents(self.id, probe)
        obs = _obs_space_parts(self.id, probe, self.agents[0])
        self.height, self.width, self.num_planes = obs
        self.num_actions = int(probe.action_space(self.agents[0]).n)
        known = entry.known
        self.has_pass = known.has_pass
        self.cell_actions = known.cell_actions
        if self.cell_actions and self.num_actions != self.height * self.width + self.has_pass:
            self.cell_actions = False  # e.g. another board size than the table assumed
        self.stones = tuple(tuple(p for p in ps if p < self.num_planes) for ps in known.stones)
        fits = len(known.planes) == self.num_planes
        self.planes = known.planes if fits else ("unknown",) * self.num_planes
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
        n = self._board_count(n)
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

    def step(self, state: State, action: Actions, where: BoardMask | None = None) -> OutsideState:
        """Step the envs of the moving boards (live, and in ``where``); see ``Game.step``.

        Forward-only: the input state is stale afterwards for the boards that moved.
        """
        s = self._own(state)
        action = self._check_action(s, action)
        selected = self._selected(s, where)
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
        self, state: State, done: BoardMask, generator: torch.Generator | None = None
    ) -> OutsideState:
        """Reset the envs of the boards in ``done``; the other boards are untouched."""
        s = self._own(state)
        rows = self._check_mask(s, done, "done").nonzero()[:, 0]
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
        """[N, C, H, W] planes from the view of ``player`` [N] (default: the mover).

        The mover's view is cached in the state; another viewer's (e.g. the agent's view
        of a game its own move just ended) is asked from the env, which must not have
        moved on since (:class:`StaleStateError` otherwise).
        """
        s = self._own(state)
        if player is None:
            return s.obs
        rows = (self._check_mask(s, player != s.current_player, "player")).nonzero()[:, 0]
        if rows.numel() == 0:
            return s.obs
        views = []
        for i in rows.tolist():
            env = self._fresh_env(s.batch, int(s.slot[i]), int(s.version[i]))
            o = env.observe(self.agents[int(player[i])])
            views.append((np.asarray(o["observation"]), np.asarray(o["action_mask"])))
        obs, _ = self._stack(views, s.device)
        return s.obs.index_put((rows,), obs)

    def legal_mask(self, state: State) -> Tensor:
        """[N, A] bool: the env's action mask for the mover; all ``True`` on finished boards."""
        s = self._own(state)
        return s.mask | s.terminated[:, None]

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

    # ------------------------------------------------------------------------ helpers
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
