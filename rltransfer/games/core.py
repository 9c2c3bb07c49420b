"""The batched game contract: :class:`State`, the :class:`BoardGame` interface and the
:class:`Game` template of a functional game.

Every game holds N boards as tensors with a leading batch dimension and moves all of them
with one call to :meth:`Game.step`. ``step`` is written once here (the pgx pattern): it
handles boards that are already finished, illegal actions and the terminal legal mask, so
a game module writes only its rules (``_init``, ``_legal_mask``, ``_apply``, ``board``).

Conventions shared by every game:

* Players are ``0`` (moves first) and ``1`` and strictly alternate: every ply, a pass
  included, hands the move to the other player. Observation planes lie in ``[0, 1]``.
* ``state.rewards[:, p]`` is player ``p``'s reward
  for the step that produced the state: ``+1`` / ``-1`` / ``0`` when the game ends, ``0``
  otherwise. Every game here is two-player zero-sum, so a state stores player 0's reward
  (``state.reward``, [N]) and ``rewards`` derives the pair: 1-D fields keep ``step`` cheap.
* Actions are cells numbered row-major from the top-left (``r * W + c``), seen from the
  player to move; games with a pass action put it last. Only Hex uses a mover frame that
  differs from the board (see ``rltransfer.games.hex``).
* A finished board keeps its final position; stepping it again changes nothing and gives
  zero rewards. Its legal mask is all ``True`` so batched sampling never meets an empty
  distribution.
* An illegal action on a live board loses the game for the mover (the board is left as it
  was, ``terminated`` is set, the mover gets ``-1``), as in pgx. With
  ``illegal_action="raise"`` the game checks first and raises :class:`IllegalActionError`
  instead (this costs one host sync per step, so it is meant for tests and user-facing
  wrappers, not for the collector).

``step`` never mutates its input: it returns a new :class:`State`, so search, snapshots
and the conformance checker can hold on to old states. The one exception is
:class:`rltransfer.games.outside.OutsideGame` (PettingZoo envs stepped on the CPU), which is
*forward-only*: its states name env instances that ``step`` moves. It implements the
:class:`BoardGame` interface directly, not the template, and says so through the interface's
capabilities (``functional = False``, ``supports_lookahead = False``); callers that need
old states (lookahead players, exact resume) check those capabilities.

Input checks. The public methods check what a caller hands them, on the host and without
a device sync: a state of another game is a ``TypeError`` naming both state types (each game
names its state class in ``state_type``); actions must be integers, one per board (a list
or a NumPy integer array is converted to a tensor on the state's device; floats, complex
numbers and bools are refused); a ``where`` or ``done`` mask must have one entry per board;
``init`` takes an int number of boards. Options are type-exact: an int option takes an int
(a NumPy integer is converted), never a bool or a float such as ``6.0``.

Two template methods serve partial moves without a special case per game:
``step(state, action, where=mask)`` moves only the boards in ``mask`` and returns every
other board exactly as it was (its reward included), and ``reset_where(state, done)``
restarts the boards in ``done``. For a functional game both equal a ``torch.where`` between
the input and a full step / fresh boards; a forward-only game must not touch the other
boards at all, so it overrides them.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Generic, Literal, TypeAlias, TypeVar, cast

import numpy as np
import torch
from torch import Tensor

from rltransfer.errors import GameOptionError, UserError
from rltransfer.games import render

S = TypeVar("S", bound="State")
#: The state class of one game (``Game[TicTacToeState]``), so that ``Game._own`` narrows.
StateT = TypeVar("StateT", bound="State")

IllegalActionMode = Literal["lose", "raise"]
#: What ``Game.step`` takes as actions: [N] integers, as a tensor or on the host.
Actions: TypeAlias = Tensor | Sequence[int] | np.ndarray
#: What ``Game.step`` (``where``) and ``reset_where`` (``done``) take: [N] bools.
BoardMask: TypeAlias = Tensor | Sequence[bool] | np.ndarray


class IllegalActionError(UserError, ValueError):
    """An action that is not legal on a live board, raised when ``illegal_action='raise'``."""


@dataclasses.dataclass(frozen=True)
class State:
    """N boards of one game. Games subclass it with their own board tensors.

    Every field is a tensor whose first dimension is the batch dimension N.
    """

    current_player: Tensor  # [N] int64: 0 or 1, the player to move
    terminated: Tensor  # [N] bool: the game on this board is over
    reward: Tensor  # [N] float32: player 0's reward for the last step (player 1: -reward)
    step_count: Tensor  # [N] int64: plies played on this board (passes count)

    @property
    def rewards(self) -> Tensor:
        """[N, 2] float32: each player's reward for the step that produced this state."""
        return torch.stack([self.reward, 0.0 - self.reward], dim=1)

    @property
    def batch_size(self) -> int:
        return int(self.terminated.shape[0])

    @property
    def device(self) -> torch.device:
        return self.terminated.device

    def tensors(self) -> dict[str, Tensor]:
        """The fields by name (shallow: the tensors themselves, not copies)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def map(self: S, fn: Callable[[Tensor], Tensor]) -> S:
        """A new state with ``fn`` applied to every field."""
        return dataclasses.replace(self, **{k: fn(v) for k, v in self.tensors().items()})

    def index(self: S, idx: Tensor | slice | int) -> S:
        """The boards selected by ``idx`` along the batch dimension (an int keeps the dim)."""
        if isinstance(idx, int):
            idx = slice(idx, idx + 1)
        return self.map(lambda t: t[idx])

    def to(self: S, device: torch.device | str) -> S:
        return self.map(lambda t: t.to(device))

    def where(self: S, cond: Tensor, other: S) -> S:
        """Board-wise select: ``self`` where ``cond`` [N] is true, else ``other``."""
        mine, theirs = self.tensors(), other.tensors()
        out = {}
        for k, a in mine.items():
            c = cond.view(-1, *([1] * (a.dim() - 1)))
            out[k] = torch.where(c, a, theirs[k])
        return dataclasses.replace(self, **out)

    @classmethod
    def cat(cls: type[S], states: list[S]) -> S:
        """Concatenate states of the same game along the batch dimension."""
        first = states[0]
        return dataclasses.replace(
            first, **{k: torch.cat([getattr(s, k) for s in states]) for k in first.tensors()}
        )


@dataclasses.dataclass(frozen=True)
class Option:
    """One constructor option of a game: its default and the values it accepts."""

    default: Any
    choices: tuple[Any, ...]
    help: str = ""


class BoardGame(ABC, Generic[StateT]):
    """What the rest of rltransfer uses of a game: the collector, the views, players,
    evaluation and the network's shapes. Two kinds implement it: :class:`Game`, the
    template of a functional game (every native game), and
    :class:`~rltransfer.games.outside.OutsideGame`, PettingZoo envs stepped forward only.

    Type code that takes any game against this class; write a new game by subclassing
    :class:`Game`, which fills in everything here from a game's rules.
    """

    #: The game's id in the registry. A class attribute for rltransfer's own games; an
    #: instance attribute where one class serves many games (``"pettingzoo:go_v5"``).
    id: str
    #: The class of this game's states: the public methods refuse any other state with a
    #: ``TypeError`` (see :meth:`_own`) instead of failing somewhere inside the rules.
    state_type: ClassVar[type[State]] = State

    #: Board height and width; observation planes are ``[N, num_planes, height, width]``.
    height: int
    width: int
    num_planes: int
    num_actions: int
    has_pass: bool = False
    #: Upper bound on the plies of one game (passes included).
    max_moves: int
    #: What each observation plane means, in order: ``"own"`` (the mover's stones),
    #: ``"opponent"`` (the other player's), then game-specific names (Othello:
    #: ``"black_to_move"``); ``"unknown"`` where a game does not say (PettingZoo envs
    #: outside the known table). Transfer maps a stem's input channels by these names.
    planes: tuple[str, ...]
    #: Actions are the cells ``r * W + c`` (+ a last pass action where ``has_pass``), so a
    #: fully convolutional policy head fits; False asks the network for a flat head.
    cell_actions: bool = True
    #: A stone drops to the lowest empty cell of its column (Connect Four), so a move is
    #: named by its column alone (``rltransfer play``'s notation).
    gravity: bool = False
    #: States are values: ``step`` leaves its input usable, so a state can be stepped twice,
    #: copied, saved and restored (exact resume). False for forward-only games.
    functional: ClassVar[bool]
    #: ``step`` may try moves on expanded copies of a state (``winning_actions``, the greedy
    #: player's win/block search). False where a step costs a real env move.
    supports_lookahead: ClassVar[bool]

    def __init__(self, *, illegal_action: IllegalActionMode = "lose") -> None:
        if not isinstance(illegal_action, str) or illegal_action not in ("lose", "raise"):
            raise GameOptionError(
                f"illegal_action must be 'lose' or 'raise', got {illegal_action!r}"
            )
        self.illegal_action: IllegalActionMode = illegal_action

    # ------------------------------------------------------------------------ public API
    @abstractmethod
    def init(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> State:
        """N boards at the start position on ``device`` (default: the generator's device)."""

    @abstractmethod
    def step(self, state: State, action: Actions, where: BoardMask | None = None) -> State:
        """Play one action [N] on every board, or only where ``where`` [N] bool is true;
        boards outside ``where`` come back exactly as they were, ``reward`` included."""

    def step_legal(self, state: State, action: Tensor, where: Tensor) -> State:
        """:meth:`step` for callers that guarantee their moves: ``action`` [N] int64 on the
        state's device is legal on every board of ``where`` [N] bool, and those boards are
        live. The result is :meth:`step`'s; nothing is checked (random rollouts of the
        search step millions of known-legal moves). This default simply calls :meth:`step`."""
        return self.step(state, action, where)

    def fill_result(self, state: State, priority: Tensor) -> Tensor | None:
        """Player 0's results [N] float32 of random playouts, computed without stepping, or
        ``None`` (the default) where the game has no such shortcut.

        A game may answer where the result of playing a board to its end is the result of
        *filling* it: every empty cell of :meth:`board` taken in the order of ``priority``
        [N, H*W] int64 (row-major cells, lowest first, ties to the lower cell), the mover
        first and then the players in turn. Hex can (a stone never leaves the board and the
        full board holds exactly one winning chain, so whoever joins their edges on it
        joined them first), and so can the line games without gravity (the first line of k
        completed wins; :mod:`rltransfer.games.fill`); random rollouts then cost one winner
        test instead of a step per ply. A finished board gives its reward."""
        return None

    def playout_result(self, state: State, bits: Tensor) -> Tensor | None:
        """Player 0's results [N] float32 of uniformly random playouts played by the
        game's own loop, or ``None`` (the default) where it has none and the search steps
        the game move by move.

        ``bits`` [N, max_moves] int64 holds 32 random bits per board and ply (values in
        ``[0, 2**32)``): ply ``t`` of board ``b`` draws its move from ``bits[b, t]`` alone,
        uniformly among the legal moves (how it maps bits to a move is the game's own).
        Connect Four has such a loop: its bitboards alone, about 22 small ops a ply where a
        step with its legal mask and random choice costs about 65 (at 16 boards, counted by
        the profiler). A finished board gives its reward.
        """
        return None

    @abstractmethod
    def reset_where(
        self, state: State, done: BoardMask, generator: torch.Generator | None = None
    ) -> State:
        """Boards where ``done`` [N] is true restart at the start position; others stay."""

    @abstractmethod
    def legal_mask(self, state: State) -> Tensor:
        """[N, A] bool legal actions of the player to move; all ``True`` on finished boards."""

    @abstractmethod
    def observe(self, state: State, player: Tensor | None = None) -> Tensor:
        """[N, C, H, W] float32 planes from the view of ``player`` [N] (default: the mover)."""

    @abstractmethod
    def board(self, state: State) -> Tensor:
        """[N, H, W] int8 board as drawn: 0 empty, 1 player 0's stone, 2 player 1's stone."""

    def random_action(self, state: State, generator: torch.Generator | None = None) -> Tensor:
        """[N] int64 actions drawn uniformly among each board's legal actions.

        One uniform draw per board picks the k-th legal action (k < the count of legal
        actions) from a running count over the mask: several times cheaper than one draw
        per action for large boards.
        """
        count = self.legal_mask(state).to(torch.int16).cumsum(dim=1, dtype=torch.int16)
        total = count[:, -1]
        u = torch.rand(total.shape, generator=generator, device=total.device)
        k = torch.minimum((u * total).to(torch.int16), total - 1)  # float rounding guard
        return (count > k[:, None]).to(torch.uint8).argmax(dim=1)

    def null_move(self, state: State) -> State:
        """The same positions with the other player to move (no stone placed).

        Not a legal move of any game here: scripted opponents use it to ask "where would
        my opponent win if it moved now?" (see ``rltransfer.play.players``).
        """
        raise NotImplementedError(f"{self.id} does not define a null move")

    def winner(self, state: State) -> Tensor:
        """[N] int64: the winning player of a finished board, -1 for a draw or a live board."""
        r = state.reward
        return torch.where(r > 0, 0, torch.where(r < 0, 1, -1)).to(torch.int64)

    # ------------------------------------------------------------------------- rendering
    def render_text(self, state: State, index: int = 0) -> str:
        """ASCII board of board ``index``: ``X`` player 0, ``O`` player 1, ``.`` empty."""
        cells = self.board(state.index(index))[0].tolist()
        return "\n".join("".join(".XO"[v] for v in row) for row in cells)

    def render_rgb(
        self, state: State, index: int = 0, cell_px: int = 16, legend: bool = False
    ) -> Tensor:
        """[3, H, W] uint8 image of board ``index`` (``rgb_array`` frames, TensorBoard): the
        board as :meth:`_draw_board` draws it, with ``legend`` above a strip that shows each
        player's colour and number and the result of a finished board.

        The result is :meth:`winner`'s, read from the reward of the step that produced
        ``state``: draw a board in the state its game ended in (a finished board stepped
        again has reward 0 and would show as drawn; ``step(..., where=~state.terminated)``
        keeps finished boards as they were).
        """
        one = state.index(index)
        board = self._draw_board(self.board(one)[0], cell_px)
        if not legend:
            return board
        winner = int(self.winner(one)[0]) if bool(one.terminated[0]) else None
        return render.with_legend(board, winner, cell_px)

    def _draw_board(self, cells: Tensor, cell_px: int) -> Tensor:
        """[H, W] board as drawn by :meth:`board` -> [3, H', W'] uint8; square cells, ``cell_px``
        pixels each, unless a game draws its board otherwise (Hex: hexagons)."""
        return render.square_board(cells, cell_px)

    # --------------------------------------------------------------------------- helpers
    def _base_fields(self, n: int, device: torch.device) -> dict[str, Tensor]:
        return {
            "current_player": torch.zeros(n, dtype=torch.int64, device=device),
            "terminated": torch.zeros(n, dtype=torch.bool, device=device),
            "reward": torch.zeros(n, dtype=torch.float32, device=device),
            "step_count": torch.zeros(n, dtype=torch.int64, device=device),
        }

    @staticmethod
    def _mover_sign(state: State) -> Tensor:
        """[N] float32: +1 where player 0 is to move, -1 where player 1 is."""
        return 1.0 - 2.0 * state.current_player.to(torch.float32)

    @classmethod
    def _mover_wins(cls, state: State, won: Tensor) -> Tensor:
        """[N] ``reward`` (player 0's) where the player to move in ``state`` won on ``won``."""
        return won.to(torch.float32) * cls._mover_sign(state)

    def _own(self, state: State) -> StateT:
        """``state``, typed as this game's state; a ``TypeError`` naming both state classes
        when it belongs to another game (one ``isinstance``: no device work)."""
        if not isinstance(state, self.state_type):
            expected, got = self.state_type.__name__, type(state).__name__
            raise TypeError(f"{self.id}: expected {article(expected)}, got {got}")
        return cast(StateT, state)

    def _board_count(self, n: Any) -> int:
        """``n`` as a number of boards: an int >= 1 (a NumPy integer is converted)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"{self.id}: number of boards must be an int >= 1, got {n!r}")
        if n < 1:
            raise ValueError(f"{self.id}: number of boards must be an int >= 1, got {n!r}")
        return int(n)

    def _check_action(self, state: State, action: Actions) -> Tensor:
        """``action`` as int64 on the state's device, after checking its type, shape and dtype.

        A list or a NumPy array of integers is converted (a host copy, as the caller made
        the actions on the host anyway); floats, complex numbers and bools are refused, as
        a silent rounding or cast would play other moves than the caller meant.
        """
        what = f"{self.id}: actions must be a torch tensor of integers (or a list of ints)"
        if not isinstance(action, Tensor):
            action = _host_integers(action, what)
        if action.dtype.is_floating_point or action.dtype.is_complex or action.dtype == torch.bool:
            raise TypeError(f"{what}, got {action.dtype}")
        if action.shape != (state.batch_size,):
            raise ValueError(
                f"{self.id}: action must have shape [{state.batch_size}] (one per board), "
                f"got {list(action.shape)}"
            )
        return action.to(device=state.device, dtype=torch.int64)

    def _check_mask(self, state: State, mask: BoardMask, name: str) -> Tensor:
        """``mask`` [N] as bool on the state's device; a ``ValueError`` naming the expected
        and the given shape otherwise (a [1] mask would silently broadcast to every board).
        Lists and NumPy arrays are converted; nonzero numbers count as ``True``."""
        if not isinstance(mask, Tensor):
            mask = torch.as_tensor(np.asarray(mask))
        if mask.shape != (state.batch_size,):
            raise ValueError(
                f"{self.id}: {name} must have shape [{state.batch_size}] (one per board), "
                f"got {list(mask.shape)}"
            )
        return mask.to(device=state.device, dtype=torch.bool)

    def _selected(self, state: State, where: BoardMask | None) -> Tensor:
        """[N] bool boards that ``step`` moves: ``where`` (checked), or all of them."""
        if where is None:
            return torch.ones_like(state.terminated)
        return self._check_mask(state, where, "where")

    def _raise_illegal(self, state: State, action: Tensor, bad: Tensor) -> None:
        i = int(bad.nonzero()[0, 0])
        legal = self.legal_mask(state.index(i))[0].nonzero()[:, 0].tolist()
        raise IllegalActionError(
            f"{self.id}: action {int(action[i])} is illegal on board {i} "
            f"({int(bad.sum())} board(s) in all); legal actions there: {legal}\n"
            f"{self.render_text(state, i)}"
        )


class Game(BoardGame[StateT]):
    """Template for a batched functional two-player board game. See the module docstring.

    A game writes only its rules (``_init``, ``_legal_mask``, ``_apply``, ``board``); the
    template's ``step`` handles finished boards, illegal actions, partial steps
    (``where``) and the step counter once for every game.
    """

    options: ClassVar[Mapping[str, Option]] = {}
    #: the default :meth:`observe`'s two planes; a game with other planes declares its own
    planes: tuple[str, ...] = ("own", "opponent")
    functional: ClassVar[bool] = True
    supports_lookahead: ClassVar[bool] = True

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options as plain Python values, after checking them; a ``ValueError`` naming
        the game, the option and the allowed values for an unknown option or a bad value.

        The check is type-exact (options come from files): a value must have the type of
        the option's choices, so ``size=6.0`` or ``size=True`` is refused even though
        ``6.0 == 6``; a NumPy scalar of the right kind is converted (``np.int64(6)`` -> 6).
        ``illegal_action`` is passed through (``Game.__init__`` checks it).
        """
        checked: dict[str, Any] = {}
        for key, value in options.items():
            if key == "illegal_action":
                checked[key] = value
                continue
            if key not in cls.options:
                valid = ", ".join(sorted(cls.options)) or "none"
                raise GameOptionError(f"{cls.id}: unknown option {key!r}; valid options: {valid}")
            choices = cls.options[key].choices
            shown = f"{choices[0]}..{choices[-1]}" if len(choices) > 4 else list(choices)
            try:
                plain = plain_value(value, type(choices[0]))
            except TypeError as e:
                raise GameOptionError(
                    f"{cls.id}: option {key}={value!r} is not allowed ({e}); choose {shown}"
                ) from None
            if plain not in choices:
                raise GameOptionError(
                    f"{cls.id}: option {key}={value!r} is not allowed; choose {shown}"
                )
            checked[key] = plain
        return checked

    def _square_board(self, size: int) -> None:
        """Set up a ``size`` x ``size`` cell game (checked against the ``size`` option):
        ``size``, ``height``, ``width`` and the cell actions (+ the pass, if ``has_pass``)."""
        size = self.validate_options({"size": size})["size"]
        self.size = size
        self.height = self.width = size
        self.num_actions = size * size + int(self.has_pass)

    # ----------------------------------------------------------------------------- rules
    @abstractmethod
    def _init(self, n: int, device: torch.device) -> State:
        """N fresh boards (base fields set by :meth:`_base_fields`)."""

    @abstractmethod
    def _legal_mask(self, state: State) -> Tensor:
        """[N, A] bool legal actions of the player to move on live boards."""

    @abstractmethod
    def _apply(self, state: State, action: Tensor) -> State:
        """Play ``action`` [N] (in ``[0, A)``) and return the next state.

        Sets the game's own fields plus ``current_player``, ``terminated`` and ``reward``.
        ``step_count``, finished boards and illegal actions are handled by :meth:`step`,
        which discards this result wherever the action was not legal; so the rules must
        merely not fail on an illegal action, never check for one.
        """

    def _is_legal(self, state: State, action: Tensor) -> Tensor:
        """[N] bool: whether ``action`` (already in ``[0, A)``) is legal on a live board.

        The default reads the legal mask; bitboard games override it with a bit test.
        """
        return self._legal_mask(state).gather(1, action[:, None])[:, 0]

    # ------------------------------------------------------------------------ public API
    def init(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> State:
        """N boards at the start position on ``device`` (default: the generator's device)."""
        n = self._board_count(n)
        dev = torch.device(device) if device is not None else _generator_device(generator)
        return self._init(n, dev)

    def step(self, state: State, action: Actions, where: BoardMask | None = None) -> State:
        """Play one action [N] on every board, or only where ``where`` [N] bool is true.

        Returns the new state (input unchanged). Boards outside ``where`` come back exactly
        as they were, ``reward`` included, so a step of some boards keeps the result of a
        game another ply just ended (the collector's opponent move relies on it); their
        actions are ignored (any integer will do).

        ``action`` may also be a list or a NumPy array of integers (converted to a tensor on
        the state's device). A state of another game, float, complex or bool actions and a
        ``where`` of another shape than [N] raise errors that say what was expected.
        """
        state = self._own(state)
        action = self._check_action(state, action)
        in_range = (action >= 0) & (action < self.num_actions)
        clamped = action.clamp(0, self.num_actions - 1)
        selected = self._selected(state, where)
        moving = selected & ~state.terminated
        legal = in_range & self._is_legal(state, clamped)
        if self.illegal_action == "raise":
            bad = moving & ~legal
            if bool(bad.any()):
                self._raise_illegal(state, action, bad)
        ok = moving & legal
        # ``_apply`` sees every board; where the action was illegal (or the board finished,
        # or was not selected) its result is computed but discarded here, so rules never
        # need a legal input. A moving board with an illegal action is forfeited by the
        # mover; a selected finished board gets zero reward; unselected boards keep theirs.
        played = self._apply(state, clamped).where(ok, state)
        reward = torch.where(ok, played.reward, torch.where(moving, -self._mover_sign(state), 0.0))
        return dataclasses.replace(
            played,
            terminated=played.terminated | (moving & ~ok),
            reward=torch.where(selected, reward, state.reward),
            step_count=state.step_count + moving.to(torch.int64),
        )

    def step_legal(self, state: State, action: Tensor, where: Tensor) -> State:
        """The rules alone (:meth:`BoardGame.step_legal`): no type, range or legality
        check, no forfeit; for legal moves on live boards it equals :meth:`step`."""
        played = self._apply(state, action).where(where, state)
        return dataclasses.replace(played, step_count=state.step_count + where.to(torch.int64))

    def reset_where(
        self, state: State, done: BoardMask, generator: torch.Generator | None = None
    ) -> State:
        """Boards where ``done`` [N] is true restart at the start position; others stay.

        The default selects from fresh boards (``init``, cached per batch size and device:
        they are values, and the collector resets every step). ``generator`` serves games
        whose start is random or whose reset needs a seed.
        """
        state = self._own(state)
        done = self._check_mask(state, done, "done")
        key = (state.batch_size, state.device)
        # setdefault: subclasses written without calling Game.__init__ still work
        fresh: dict[tuple[int, torch.device], State] = self.__dict__.setdefault("_fresh", {})
        if key not in fresh:
            fresh[key] = self.init(state.batch_size, device=state.device)
        return fresh[key].where(done, state)

    def legal_mask(self, state: State) -> Tensor:
        """[N, A] bool; all ``True`` on finished boards (see module docstring)."""
        state = self._own(state)
        return self._legal_mask(state) | state.terminated[:, None]

    def observe(self, state: State, player: Tensor | None = None) -> Tensor:
        """[N, C, H, W] float32 planes from the view of ``player`` [N] (default: the mover).

        The default gives two planes, the viewer's stones and the opponent's stones.
        Policies always see the mover's view; other viewers serve multi-agent APIs.
        """
        state = self._own(state)
        board = self.board(state)
        viewer = state.current_player if player is None else player
        me = (viewer + 1).view(-1, 1, 1).to(board.dtype)
        own = board == me
        opp = (board != 0) & ~own
        return torch.stack([own, opp], dim=1).float()

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.options)
        return f"{type(self).__name__}({opts})"


def _generator_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _host_integers(values: Any, what: str) -> Tensor:
    """A list or NumPy array of integers as an int64 CPU tensor; ``TypeError`` (starting
    with ``what``) for anything else, naming what was given."""
    if not isinstance(values, (list, tuple, np.ndarray)):
        raise TypeError(f"{what}, got {type(values).__name__}")
    try:
        array = np.asarray(values)
    except ValueError:  # ragged nested lists
        raise TypeError(f"{what}, got a ragged {type(values).__name__}") from None
    if array.dtype.kind not in "iu":  # b bool, f float, c complex, O object, U str ...
        raise TypeError(f"{what}, got {article(type(values).__name__)} of {array.dtype}")
    return torch.from_numpy(array.astype(np.int64))


def plain_value(value: Any, kind: type) -> Any:
    """``value`` as a plain Python ``kind`` (``int``, ``float``, ``bool`` or ``str``).

    Option values come from files, so the check is exact: an int takes ints (NumPy integers
    too) but never a bool or a float such as ``6.0``; a float takes ints and finite floats;
    a bool takes only bools. Raises ``TypeError`` saying what was expected and given.
    """
    is_bool = isinstance(value, (bool, np.bool_))
    if kind is bool and is_bool:
        return bool(value)
    if kind is int and isinstance(value, (int, np.integer)) and not is_bool:
        return int(value)
    if kind is float and isinstance(value, (int, float, np.integer, np.floating)) and not is_bool:
        if not math.isfinite(value):
            raise TypeError(f"expected a finite float, got {value!r}")
        return float(value)
    if kind is str and isinstance(value, str):
        return str(value)
    raise TypeError(f"expected {article(kind.__name__)}, got {article(type(value).__name__)}")


def article(noun: str) -> str:
    """``noun`` with "a" or "an" in front, for messages: ``"an int"``, ``"a float"``."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


#: The directions of a line of stones as (rows down, columns right) per step: across,
#: down and both diagonals (the line games' wins: tic-tac-toe, Gomoku, mnk, the fills).
LINE_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))


def bits_to_cells(bits: Tensor, positions: Tensor) -> Tensor:
    """Unpack bitboards: ``[...] int64`` -> ``[..., len(positions)] bool``.

    ``positions[k]`` is the bit index of cell k. Shared by the bitboard games.
    """
    return ((bits.unsqueeze(-1) >> positions) & 1).bool()


def int64_const(value: int) -> int:
    """A 64-bit pattern as the signed int64 that torch stores (bit 63 set -> negative)."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value
