"""Opponents that move N boards at once: random, greedy (win, else block) and a policy.

A :class:`Player` is anything with a ``name`` and an ``act(game, state, generator)`` that
returns one legal action per board for the player to move. Players never loop over boards:
the greedy player finds winning moves for every board and every action in one batched
``step`` (the state expanded ``A`` times), so it runs on any game of ``rltransfer.games``
without game-specific rules, on the CPU or the GPU.

The greedy player is the classic scripted baseline of board-game RL (a policy that cannot
beat "win if you can, block if you must" has not learned tactics yet). Blocking needs to
ask where the *opponent* would win if it moved now, which needs a null move: the same
position with the other player to move (``BoardGame.null_move``). A game without one gets a
greedy player that only takes wins (win-or-random); see :func:`threat_actions`. A game that
cannot look ahead at all (``BoardGame.supports_lookahead`` false: PettingZoo envs, where a step is
a real env move) gets a greedy player that plays uniformly at random; evaluation names that
opponent ``greedy(random)`` (see :attr:`GreedyPlayer.needs_lookahead`).

``mcts:S`` names the search yardstick, :class:`rltransfer.search.MCTSPlayer` (UCT with
random rollouts and a solver, ``S`` simulations); it cannot play forward-only games.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from rltransfer.errors import UnknownPlayerError, UnknownTaskError
from rltransfer.games.core import BoardGame, State
from rltransfer.inference import load_policy
from rltransfer.net.policy import PolicyNet, TaskShape, masked_logits
from rltransfer.runs.checkpoint import CheckpointError
from rltransfer.search import MAX_SIMULATIONS, MCTSPlayer, SearchConfig, SearchPlayer


@runtime_checkable
class Player(Protocol):
    """Something that picks moves: ``act`` returns [N] int64 actions, legal on live boards."""

    name: str

    def act(self, game: BoardGame, state: State, generator: torch.Generator | None) -> Tensor: ...


# --------------------------------------------------------------------------- tactics
def winning_actions(game: BoardGame, state: State) -> Tensor:
    """[N, A] bool: the legal actions that end the game with a win for the player to move.

    Computed generically: every board is repeated ``A`` times (``repeat_interleave``, so
    board ``i`` owns rows ``i*A .. i*A + A - 1``), row ``i*A + a`` plays action ``a``, and a
    row counts where the step terminated the game with reward ``+1`` for the mover. Rows
    whose action is illegal, or whose board is finished, are not played (they are marked
    finished before the step). Memory and work are ``N * A`` board steps. Raises
    ``NotImplementedError`` for a game that cannot look ahead (``supports_lookahead``).
    """
    if not game.supports_lookahead:
        raise NotImplementedError(
            f"{game.id}: winning_actions steps copies of the boards, which this game does not "
            "allow (supports_lookahead is False: a step moves a real env)"
        )
    n, a = state.batch_size, game.num_actions
    legal = game.legal_mask(state) & ~state.terminated[:, None]
    expanded = state.map(lambda t: t.repeat_interleave(a, 0))
    # Rows with an illegal action are marked finished, so step leaves them alone instead
    # of forfeiting them (or raising, under ``illegal_action="raise"``).
    expanded = dataclasses.replace(expanded, terminated=~legal.view(-1))
    actions = torch.arange(a, device=state.device).repeat(n)
    after = game.step(expanded, actions)
    mover_sign = 1.0 - 2.0 * expanded.current_player.to(torch.float32)
    won = after.terminated & (after.reward * mover_sign > 0)
    return won.view(n, a) & legal


def null_move_or_none(game: BoardGame, state: State) -> State | None:
    """``game.null_move(state)``, or ``None`` where the game defines no null move.

    Duck-typed (``getattr``) and tolerant of the base class's ``NotImplementedError``, so
    games written before ``null_move`` existed, or outside this package, still work.
    """
    null_move = getattr(game, "null_move", None)
    if null_move is None:
        return None
    try:
        swapped: State = null_move(state)
    except NotImplementedError:
        return None
    return swapped


def threat_actions(game: BoardGame, state: State) -> Tensor:
    """[N, A] bool, in the mover's action frame: cells where the OPPONENT would win now.

    That is :func:`winning_actions` on the null-move position (same stones, opponent to
    move), mapped back to the mover's actions. In games where both players' actions name
    board cells the same way that map is the identity. Games whose actions are in a
    mover-relative frame (Hex: player 1's view is transposed) expose ``board_action``
    (action -> board cell) and ``view_action`` (board cell -> action); they are used here
    when present, so a threat cell is always the mover's action on that board cell.

    A threat cell need not be legal for the mover (mask it with the legal mask to get
    blocking moves). Raises ``NotImplementedError`` if the game has no null move.
    """
    threats = _threats_or_none(game, state)
    if threats is None:
        raise NotImplementedError(
            f"{game.id}: threat_actions needs game.null_move(state), which this game lacks"
        )
    return threats


def _threats_or_none(game: BoardGame, state: State) -> Tensor | None:
    """:func:`threat_actions`, or ``None`` where the game has no null move."""
    swapped = null_move_or_none(game, state)
    if swapped is None:
        return None
    threats = winning_actions(game, swapped)
    board_action = getattr(game, "board_action", None)
    view_action = getattr(game, "view_action", None)
    if board_action is None or view_action is None:
        return threats
    # Re-index: the opponent's action b names board cell board_action(swapped, b), which
    # the mover plays as view_action(state, cell). Both maps are per-board permutations.
    n, a = threats.shape
    opp_actions = torch.arange(a, device=state.device).repeat(n)
    cells = board_action(swapped.map(lambda t: t.repeat_interleave(a, 0)), opp_actions)
    mine = view_action(state.map(lambda t: t.repeat_interleave(a, 0)), cells).view(n, a)
    return torch.zeros_like(threats).scatter(1, mine, threats)


def _uniform_choice(mask: Tensor, generator: torch.Generator | None) -> Tensor:
    """[N] int64: one ``True`` column per row of ``mask`` [N, A], uniformly at random.

    The argmax of uniform noise over the allowed columns: uniform, seedable and batched.
    Rows without any ``True`` give column 0 (callers never pass such rows).
    """
    u = torch.rand(mask.shape, generator=generator, device=mask.device)
    return torch.where(mask, u, -1.0).argmax(dim=1)


# --------------------------------------------------------------------------- players
class RandomPlayer:
    """Uniformly random legal moves (the game's own fast ``random_action``)."""

    def __init__(self, name: str = "random") -> None:
        self.name = name

    def act(self, game: BoardGame, state: State, generator: torch.Generator | None) -> Tensor:
        return game.random_action(state, generator)


class GreedyPlayer:
    """Take a winning move; else block the opponent's winning move; else play randomly.

    Each tier is a uniform choice among its moves (several wins, or several threats, are
    picked uniformly), so the player is stochastic and a seeded generator reproduces it.
    On games without ``null_move`` it cannot see threats and plays win-or-random; on games
    that cannot look ahead (``game.supports_lookahead`` false) it plays at random.
    """

    #: Its tactics need ``game.supports_lookahead``; without it the player is random, and
    #: :func:`rltransfer.play.evaluate.play_match` says so in the opponent's name.
    needs_lookahead = True

    def __init__(self, name: str = "greedy") -> None:
        self.name = name

    def act(self, game: BoardGame, state: State, generator: torch.Generator | None) -> Tensor:
        if not game.supports_lookahead:
            return game.random_action(state, generator)
        legal = game.legal_mask(state)
        wins = winning_actions(game, state)
        choice = torch.where(wins.any(dim=1, keepdim=True), wins, legal)
        threats = _threats_or_none(game, state)
        if threats is not None:
            blocks = threats & legal
            use_block = blocks.any(dim=1, keepdim=True) & ~wins.any(dim=1, keepdim=True)
            choice = torch.where(use_block, blocks, choice)
        return _uniform_choice(choice, generator)


def split_boards(fractions: Sequence[float], n: int) -> list[slice]:
    """Contiguous board ranges in proportion to ``fractions`` (summing to ``n`` boards).

    Static ranges let several players share one batch without data-dependent shapes or
    host syncs: the self-play collector and :class:`MixedPlayer` both assign boards so.
    """
    total = sum(fractions)
    if any(f < 0 for f in fractions) or total <= 0:
        raise ValueError(f"fractions must be non-negative and not all zero, got {list(fractions)}")
    bounds, acc = [0], 0.0
    for f in fractions:
        acc += f / total
        bounds.append(round(acc * n))
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]


class MixedPlayer:
    """Several players in one seat, each on a fixed share of the boards (by index).

    E.g. ``MixedPlayer([(current, 0.7), (RandomPlayer(), 0.15), (GreedyPlayer(), 0.15)])``
    gives a single-opponent API (a gymnasium or SB3 view) rltransfer's self-play mix. A
    part's player may be set later (``parts[i][0]`` is read at every call), so the current
    policy of a model built after its environment can join.
    """

    def __init__(self, parts: Sequence[tuple[Player, float]], name: str = "mix") -> None:
        if not parts:
            raise ValueError("a mixed player needs at least one part")
        split_boards([w for _, w in parts], 1)  # checks the weights
        self.parts = list(parts)
        self.name = name

    def act(self, game: BoardGame, state: State, generator: torch.Generator | None) -> Tensor:
        slices = split_boards([w for _, w in self.parts], state.batch_size)
        actions = [
            player.act(game, state.index(sl), generator)
            for (player, _), sl in zip(self.parts, slices, strict=True)
            if sl.stop > sl.start
        ]
        return torch.cat(actions)


class PerfectTicTacToe:
    """Minimax-perfect tic-tac-toe, uniform among the optimal moves (a table lookup).

    The table maps every reachable (mover, other) bitboard pair to the set of moves that
    keep the best game-theoretic value, found once by exhaustive search (5,478 positions).
    It never loses; against a uniformly random opponent it scores about 0.94 (the ceiling
    is 0.98, reachable only by players that gamble on the opponent's mistakes).
    """

    #: The games it can play (see :func:`plays`); a player without this plays any game.
    games = ("tic_tac_toe",)

    def __init__(self, name: str = "perfect") -> None:
        self.name = name

    def act(self, game: BoardGame, state: State, generator: torch.Generator | None) -> Tensor:
        from rltransfer.games.tic_tac_toe import TicTacToeState

        if not plays(self, game) or not isinstance(state, TicTacToeState):
            raise TypeError(f"the perfect player plays tic_tac_toe only, not {game.id}")
        table = _perfect_table().to(state.device)
        best = table[state.mover * 512 + state.other]  # [N] 9-bit move sets
        cells = torch.arange(9, device=state.device)
        allowed = ((best[:, None] >> cells) & 1).bool() | state.terminated[:, None]
        return _uniform_choice(allowed, generator)


@functools.cache
def _perfect_table() -> Tensor:
    """[512 * 512] int64: optimal-move bit sets of tic-tac-toe positions (mover, other)."""
    lines = [7, 56, 448, 73, 146, 292, 273, 84]
    table = torch.zeros(512 * 512, dtype=torch.int64)

    def won(b: int) -> bool:
        return any(b & m == m for m in lines)

    @functools.cache
    def value(mover: int, other: int) -> int:  # the mover's best result: +1, 0 or -1
        empty = [k for k in range(9) if not (mover | other) >> k & 1]
        if not empty:
            return 0
        scores = {}
        for k in empty:
            placed = mover | 1 << k
            scores[k] = 1 if won(placed) else -value(other, placed)
        top = max(scores.values())
        table[mover * 512 + other] = sum(1 << k for k, v in scores.items() if v == top)
        return top

    value(0, 0)
    return table


class PolicyPlayer:
    """A :class:`~rltransfer.net.policy.PolicyNet` playing one of its tasks.

    ``sample=True`` (the default) samples from the masked policy, as in training, so an
    evaluation averages over the policy's own randomness; ``sample=False`` plays the most
    probable legal move (deterministic, hence the same game every time against a
    deterministic opponent). The network must be on the boards' device.
    """

    def __init__(
        self, net: PolicyNet, task: str, sample: bool = True, name: str | None = None
    ) -> None:
        if task not in net.tasks:
            raise KeyError(f"the network has no task {task!r}; its tasks: {', '.join(net.tasks)}")
        self.net = net
        self.task = task
        self.sample = sample
        self.name = name if name is not None else f"policy[{task}]"

    @torch.no_grad()
    def act(self, game: BoardGame, state: State, generator: torch.Generator | None) -> Tensor:
        obs = game.observe(state)
        mask = game.legal_mask(state)
        if self.sample:
            action, _, _ = self.net.act(self.task, obs, mask, generator)
            return action
        logits, _ = self.net(self.task, obs)
        return masked_logits(logits, mask).argmax(dim=1)


_PLAYERS: dict[str, type[RandomPlayer] | type[GreedyPlayer] | type[PerfectTicTacToe]] = {
    "random": RandomPlayer,
    "greedy": GreedyPlayer,
    "perfect": PerfectTicTacToe,  # tic_tac_toe only
}


def plays(player: Player, game: BoardGame) -> bool:
    """Whether ``player`` can play ``game``: players that know only some games (the
    perfect tic-tac-toe player) list them in a ``games`` attribute, matched against the
    game's registry id; players without one play every game. Players that search
    (``searches = True``) do not play forward-only games (``game.functional`` false)."""
    games = getattr(player, "games", None)
    if getattr(player, "searches", False) and not game.functional:
        return False  # a search steps copies of states, which forward-only games forbid
    return games is None or game.id in games


#: The family of search players ``mcts:S`` (:class:`rltransfer.search.MCTSPlayer`).
MCTS_PREFIX = "mcts:"


def available_players() -> list[str]:
    """Names accepted by :func:`make_player`: the fixed names, then ``mcts:S``."""
    return [*sorted(_PLAYERS), f"{MCTS_PREFIX}S"]


def is_player_name(name: str) -> bool:
    """Whether ``name`` names a scripted player (``mcts:S`` with any ``S``: a bad ``S`` is
    :func:`make_player`'s error, which says what would fit)."""
    return name in _PLAYERS or name.startswith(MCTS_PREFIX)


def make_player(name: str) -> Player:
    """A scripted player by name: ``"random"``, ``"greedy"``, ``"perfect"`` (tic-tac-toe),
    or ``"mcts:S"``, classic MCTS with ``S`` simulations (1..100000) per move."""
    if name.startswith(MCTS_PREFIX):
        return MCTSPlayer(_simulations(name[len(MCTS_PREFIX) :], name, "mcts:S", "mcts:100"))
    try:
        cls = _PLAYERS[name]
    except KeyError:
        raise UnknownPlayerError(
            f"unknown opponent {name!r}; valid opponents: {', '.join(available_players())}"
        ) from None
    return cls()


def _simulations(text: str, name: str, form: str, example: str) -> int:
    """The ``S`` that ``text`` gives (``mcts:S``, ``RUN+search:S``: the one rule for both);
    an :class:`UnknownPlayerError` about ``name`` saying what fits otherwise."""
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_SIMULATIONS:
        raise UnknownPlayerError(
            f"unknown opponent {name!r}: {form} takes a whole number of simulations S in "
            f"1..{MAX_SIMULATIONS}, e.g. {example}"
        )
    return int(text)


#: Suffixes of a run path naming how its policy plays: ``RUN+argmax`` plays the most
#: probable move, ``RUN+search:S`` searches ``S`` simulations before each move (Gumbel,
#: the policy's prior and value); a plain ``RUN`` samples its moves, as in training.
ARGMAX_SUFFIX = "+argmax"
SEARCH_SUFFIX = "+search:"


def run_player(
    run: str | Path,
    game: BoardGame,
    device: torch.device | str = "cpu",
    sample: bool = True,
    *,
    simulations: int | None = None,
    name: str | None = None,
) -> Player:
    """The policy of a trained run for ``game`` (its task by
    :func:`rltransfer.runs.checkpoint.find_task`, which must have the game's shape: planes,
    board and actions), sampling its moves unless ``sample=False``, or with ``simulations``
    searching that many simulations before each move (Gumbel root selection)."""
    policy = load_policy(run, device)
    try:
        task = policy.task(game)
    except UnknownTaskError as e:
        raise CannotPlayError(f"the run {run} cannot play {game.id}: {e}") from None
    shape, own = TaskShape.of(game), policy.net.tasks[task]
    if own != shape:
        raise UnknownPlayerError(
            f"{run}: its task {task} plays {game.id} with {own}, the game has {shape}"
        )
    label = name if name is not None else f"run:{Path(run).name}"
    if simulations is not None:
        config = SearchConfig(simulations=simulations, rule="gumbel")
        return SearchPlayer(policy.net, task, config, name=label)
    return PolicyPlayer(policy.net, task, sample=sample, name=label)


def _run_by_name(name: str, game: BoardGame, device: torch.device | str) -> Player:
    """A run path as a player: plain (sampling), ``RUN+argmax`` or ``RUN+search:S``."""
    run, how = split_run(name)
    if not Path(run).exists():
        raise UnknownPlayerError(
            f"unknown opponent {name!r}: not a player ({', '.join(available_players())}) "
            "and no run folder at that path"
        )
    try:
        if how is None:
            return run_player(run, game, device)
        if isinstance(how, int):
            return run_player(run, game, device, simulations=how, name=name)
        return run_player(run, game, device, sample=False, name=name)  # +argmax
    except CheckpointError as e:
        raise UnknownPlayerError(
            f"opponent {name!r} is neither a player ({', '.join(available_players())}) "
            f"nor a readable run: {e}"
        ) from None


def split_run(name: str) -> tuple[str, str | int | None]:
    """``(run, how)``: ``how`` is ``None`` (sample), ``"argmax"`` or the ``S`` of
    ``+search:S``. A path that exists as written is a run with no suffix."""
    if Path(name).exists():
        return name, None
    if name.endswith(ARGMAX_SUFFIX):
        return name[: -len(ARGMAX_SUFFIX)], "argmax"
    run, found, text = name.rpartition(SEARCH_SUFFIX)
    if not found:
        return name, None
    return run, _simulations(text, name, "RUN+search:S", f"{run}{SEARCH_SUFFIX}64")


def player_for(
    opponent: str | Path | Player | None, game: BoardGame, device: torch.device | str = "cpu"
) -> Player:
    """The one rule that turns what a user names as an opponent into a player for ``game``.

    ``None`` is ``random``; a :class:`Player` is itself; a name of :func:`available_players`
    is that scripted player (names win over folders of the same name); an existing path is
    the policy of that run sampling its moves (:func:`run_player`), ``RUN+argmax`` its most
    probable move and ``RUN+search:S`` the policy searching ``S`` simulations before each
    move (a path that exists as written wins over its reading with a suffix). Anything
    else, or a player that cannot play
    ``game`` (the perfect player knows tic-tac-toe only), is an
    :class:`~rltransfer.errors.UnknownPlayerError` that lists the valid names.
    """
    if opponent is None:
        return RandomPlayer()
    if isinstance(opponent, (str, Path)):
        name = str(opponent)
        player = make_player(name) if is_player_name(name) else _run_by_name(name, game, device)
    else:
        player = opponent
    if not plays(player, game):
        raise CannotPlayError(f"the {player.name} opponent cannot play {game.id}")
    return player


class CannotPlayError(UnknownPlayerError):
    """A known player that does not play the game (the perfect player off tic-tac-toe)."""


def players_for(
    opponents: Sequence[str | Path | Player],
    game: BoardGame,
    device: torch.device | str = "cpu",
    *,
    skip_unplayable: bool = False,
) -> dict[str, Player]:
    """:func:`player_for` of each opponent, by its label: the name or path as given, or a
    player's ``name``. ``skip_unplayable`` leaves out the players that cannot play ``game``
    (an evaluation list shared by every game of a suite) instead of raising."""
    out: dict[str, Player] = {}
    for opponent in opponents:
        label = str(opponent) if isinstance(opponent, (str, Path)) else opponent.name
        try:
            out[label] = player_for(opponent, game, device)
        except CannotPlayError:
            if not skip_unplayable:
                raise
    return out
