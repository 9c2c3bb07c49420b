"""Batched evaluation: a player against opponents, win/draw/loss per seat, with a 95% CI.

:func:`play_match` plays every game of a match in one batch of boards. Half the boards
seat the evaluated player first and half second, because the first mover's advantage is
large in these games (random tic-tac-toe: the first player wins 58%, the second 29%); a
score from one seat alone would mostly measure the seat.

Every game here alternates plies strictly (Othello's pass is an explicit action), so on
boards that start together the player to move at ply ``k`` is ``k % 2`` on every live
board. The seats are therefore two fixed slices of the batch, and each player is called
exactly once per ply on one slice: no gather by a per-board mask, no Python loop over
boards. The host syncs only every few plies, to see whether every game is over.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rltransfer.games.core import BoardGame, State
from rltransfer.play.players import Player, players_for
from rltransfer.specs.config import is_int, is_number

#: Plies between two "is every game over?" checks (each check is one host sync).
_SYNC_EVERY = 8


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """Outcome of one match, from the evaluated player's side.

    ``score`` counts a draw as half a win. ``ci_low`` / ``ci_high`` are the 95% Wilson
    interval of the score taken as a proportion over ``games`` (exact for win/loss only;
    draws make the true spread narrower, so with draws the interval is conservative).
    ``seatK_*`` are rates over the ``seatK_games`` games where the player sat in seat K
    (seat 0 moves first); they are 0.0 when that seat played no game.
    """

    game: str
    player: str
    opponent: str
    games: int
    wins: int
    draws: int
    losses: int
    score: float
    ci_low: float
    ci_high: float
    seat0_games: int
    seat0_win: float
    seat0_draw: float
    seat0_loss: float
    seat1_games: int
    seat1_win: float
    seat1_draw: float
    seat1_loss: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (str, int and float values only)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> EvalResult:
        """The result that :meth:`to_dict` wrote, checked: a ``ValueError`` naming what
        is missing, extra or of the wrong type, or numbers that do not agree with its
        counts (its score and interval, its seats' games and rates)."""
        if not isinstance(data, dict):
            raise ValueError(f"a match result must be a JSON object, got {type(data).__name__}")
        kinds = typing.get_type_hints(cls)
        missing, extra = kinds.keys() - data.keys(), data.keys() - kinds.keys()
        if missing or extra:
            raise ValueError(
                f"a match result has missing keys {sorted(missing)} / unknown keys {sorted(extra)}"
            )
        check = {str: lambda v: isinstance(v, str) and v != "", int: is_int, float: is_number}
        for name, kind in kinds.items():
            if not check[kind](data[name]):
                what = {str: "a non-empty string", int: "an int", float: "a finite number"}[kind]
                raise ValueError(f"a match result's {name!r} must be {what}, got {data[name]!r}")
        r = cls(**data)
        counts = (r.wins, r.draws, r.losses, r.seat0_games, r.seat1_games)
        if min(counts) < 0 or r.wins + r.draws + r.losses != r.games:
            raise ValueError(
                f"a match result's wins, draws and losses must add up to its games: {data}"
            )
        if r.seat0_games + r.seat1_games != r.games:
            raise ValueError(f"a match result's seats' games must add up to its games: {data}")
        score = (r.wins + 0.5 * r.draws) / r.games if r.games else 0.0
        expected = (score, *wilson_interval(score, r.games))
        if any(
            abs(a - b) > 1e-9 for a, b in zip((r.score, r.ci_low, r.ci_high), expected, strict=True)
        ):
            raise ValueError(f"a match result's score and interval do not match its counts: {data}")
        for seat, n in ((0, r.seat0_games), (1, r.seat1_games)):
            rates = [getattr(r, f"seat{seat}_{k}") for k in ("win", "draw", "loss")]
            if min(rates) < 0 or abs(sum(rates) - (1.0 if n else 0.0)) > 1e-9:
                raise ValueError(f"a match result's seat {seat} rates do not add up: {data}")
        return r


def wilson_interval(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` observed over ``n`` trials.

    Preferred over the normal ("Wald") interval because it stays inside [0, 1] and does
    not collapse to a point at ``p = 0`` or ``p = 1`` (a 20-0 sweep is not proof of a
    100% win rate). See Brown, Cai & DasGupta (2001), "Interval Estimation for a Binomial
    Proportion". ``n = 0`` gives the uninformative ``(0.0, 1.0)``.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a proportion in [0, 1], got {p}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n == 0:
        return 0.0, 1.0
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def play_match(
    game: BoardGame,
    player: Player,
    opponent: Player,
    num_games: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    task: str | None = None,
    *,
    opening_plies: int = 0,
) -> EvalResult:
    """Play ``num_games`` games of ``player`` against ``opponent`` in one batch.

    Boards ``[0, n0)`` seat ``player`` first and boards ``[n0, num_games)`` seat it second,
    with ``n0 = ceil(num_games / 2)``: an odd count gives the extra game to seat 0. Both
    players share ``generator`` (so a seed fixes the whole match). ``task`` names the game
    in the result (default ``game.id``). Raises ``RuntimeError`` if a game outlasts
    ``game.max_moves`` plies (a broken game). A player that needs lookahead (greedy) on a
    game without it plays randomly, and its name in the result says ``greedy(random)``.

    ``opening_plies > 0`` starts every game from a random opening (:func:`random_openings`:
    that many uniformly random legal plies), each opening played once from each seat
    (board ``i`` and board ``n0 + i`` share it), so two deterministic players do not replay
    one game; ``num_games`` must then be even. "Seat 0" is the player who moves for player 0
    after the opening.
    """
    if num_games < 1:
        raise ValueError(f"num_games must be >= 1, got {num_games}")
    n0 = (num_games + 1) // 2
    first, second = slice(0, n0), slice(n0, num_games)
    if opening_plies:
        if num_games % 2:
            raise ValueError(
                f"num_games must be even with openings (each opening from both seats), "
                f"got {num_games}"
            )
        half = random_openings(game, n0, opening_plies, generator, device)
        state = type(half).cat([half, half])
    else:
        state = game.init(num_games, generator, device)
    final = torch.zeros(num_games, device=state.device)  # player 0's reward at the end
    for ply in range(opening_plies, game.max_moves):
        # Seat ply % 2 moves: on the first slice that is `player` at even plies.
        movers = (player, opponent) if ply % 2 == 0 else (opponent, player)
        actions = _act_on_slices(game, state, movers, (first, second), generator)
        before = state.terminated
        state = game.step(state, actions)
        final = torch.where(state.terminated & ~before, state.reward, final)
        if (ply + 1) % _SYNC_EVERY == 0 and bool(state.terminated.all()):
            break
    if not bool(state.terminated.all()):
        raise RuntimeError(
            f"{game!r}: {int((~state.terminated).sum())} game(s) still running after "
            f"max_moves={game.max_moves} plies"
        )
    seat_sign = torch.ones(num_games, device=state.device)
    seat_sign[second] = -1.0
    names = (_played_as(player, game), _played_as(opponent, game))
    return _result(task or game.id, *names, final * seat_sign, n0)


def random_openings(
    game: BoardGame,
    num_boards: int,
    plies: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> State:
    """``num_boards`` fresh boards after ``plies`` uniformly random legal moves (the game's
    ``random_action``), every board its own opening. Raises ``ValueError`` where an opening
    ends a game (ask for fewer plies) or ``plies`` is not in ``0 .. max_moves - 1``."""
    if not 0 <= plies < game.max_moves:
        raise ValueError(f"opening plies must be in 0..{game.max_moves - 1}, got {plies}")
    state = game.init(num_boards, generator, device)
    for _ in range(plies):
        state = game.step(state, game.random_action(state, generator))
    if plies and bool(state.terminated.any()):
        raise ValueError(f"{game.id}: a random {plies}-ply opening ended a game; use fewer plies")
    return state


def _played_as(player: Player, game: BoardGame) -> str:
    """The player's name, marked ``(random)`` where its tactics need a lookahead that the
    game lacks (the greedy player on PettingZoo envs plays random moves there)."""
    if getattr(player, "needs_lookahead", False) and not game.supports_lookahead:
        return f"{player.name}(random)"
    return player.name


def _act_on_slices(
    game: BoardGame,
    state: State,
    movers: tuple[Player, Player],
    slices: tuple[slice, slice],
    generator: torch.Generator | None,
) -> Tensor:
    """[N] actions: ``movers[i]`` acts on the boards ``slices[i]`` (empty slices skipped).

    On the CPU a mover sees only its slice's live boards (finished games would cost a
    search or a network pass for nothing; reading which are live is free there); on other
    devices it sees the whole slice, so no ply waits on the host. Finished boards get
    action 0, which ``step`` ignores on them."""
    parts = []
    for mover, part in zip(movers, slices, strict=True):
        if part.stop == part.start:
            continue
        boards = state.index(part)
        if state.device.type != "cpu":
            parts.append(mover.act(game, boards, generator).to(torch.int64))
            continue
        live = (~boards.terminated).nonzero().flatten()
        actions = torch.zeros(boards.batch_size, dtype=torch.int64)
        if len(live):
            actions[live] = mover.act(game, boards.index(live), generator).to(torch.int64)
        parts.append(actions)
    return torch.cat(parts)


def _result(task: str, player: str, opponent: str, outcome: Tensor, n0: int) -> EvalResult:
    """Count an [N] tensor of the player's final rewards (+1/0/-1; seat 0 first n0)."""
    won, drawn, lost = (outcome > 0), (outcome == 0), (outcome < 0)
    counts = torch.stack([won, drawn, lost]).to(torch.int64)  # [3, N]
    seat0 = counts[:, :n0].sum(dim=1).tolist()
    seat1 = counts[:, n0:].sum(dim=1).tolist()  # one host transfer per seat
    n1 = int(outcome.shape[0]) - n0
    games = n0 + n1
    wins, draws, losses = (a + b for a, b in zip(seat0, seat1, strict=True))
    score = (wins + 0.5 * draws) / games
    ci_low, ci_high = wilson_interval(score, games)

    def rates(c: list[int], n: int) -> list[float]:
        return [x / n if n else 0.0 for x in c]

    s0, s1 = rates(seat0, n0), rates(seat1, n1)
    return EvalResult(
        game=task,
        player=player,
        opponent=opponent,
        games=games,
        wins=wins,
        draws=draws,
        losses=losses,
        score=score,
        ci_low=ci_low,
        ci_high=ci_high,
        seat0_games=n0,
        seat0_win=s0[0],
        seat0_draw=s0[1],
        seat0_loss=s0[2],
        seat1_games=n1,
        seat1_win=s1[0],
        seat1_draw=s1[1],
        seat1_loss=s1[2],
    )


def evaluate_against(
    game: BoardGame,
    player: Player,
    opponents: Sequence[str | Path | Player] | Mapping[str, Player],
    num_games: int,
    generator: torch.Generator | None = None,
    task: str | None = None,
    device: torch.device | str | None = None,
    *,
    skip_unplayable: bool = False,
    opening_plies: int = 0,
) -> dict[str, EvalResult]:
    """One :func:`play_match` per opponent, by the opponent's label: every evaluation
    against named opponents goes through here. Names (``"random"``, ``"greedy"``) and run
    paths become players by :func:`~rltransfer.play.players.players_for` (all of them
    before the first game); ``skip_unplayable`` leaves out the players that do not play
    ``game`` (the perfect player off tic-tac-toe) instead of raising. Players already
    resolved come as a mapping from their labels (``players_for``'s result).
    ``opening_plies``: random openings, each from both seats (:func:`play_match`)."""
    where = device if device is not None else generator.device if generator else "cpu"
    if isinstance(opponents, Mapping):
        players = dict(opponents)
    else:
        players = players_for(opponents, game, where, skip_unplayable=skip_unplayable)
    return {
        label: play_match(
            game,
            player,
            opponent,
            num_games,
            generator,
            device=device,
            task=task,
            opening_plies=opening_plies,
        )
        for label, opponent in players.items()
    }


def format_results(results: Sequence[EvalResult]) -> str:
    """A plain-text table, one row per result (W/D/L per seat as percentages)."""

    def wdl(w: float, d: float, lo: float) -> str:
        return f"{100 * w:.0f}/{100 * d:.0f}/{100 * lo:.0f}"

    header = ("game", "opponent", "games", "score", "95% CI", "W/D/L", "seat0 W/D/L %",
              "seat1 W/D/L %")  # fmt: skip
    rows = [header] + [
        (
            r.game,
            r.opponent,
            str(r.games),
            f"{r.score:.3f}",
            f"[{r.ci_low:.3f}, {r.ci_high:.3f}]",
            f"{r.wins}/{r.draws}/{r.losses}",
            wdl(r.seat0_win, r.seat0_draw, r.seat0_loss),
            wdl(r.seat1_win, r.seat1_draw, r.seat1_loss),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)
