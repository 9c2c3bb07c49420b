"""Evaluation: seat-split batched matches reproduce known rates, count every game once, and
report a Wilson interval checked by hand."""

from __future__ import annotations

import dataclasses
import functools
import json
import math

import pytest
import torch
from torch import Tensor

from rltransfer.errors import UnknownPlayerError
from rltransfer.games import make
from rltransfer.games.core import Game, State
from rltransfer.games.tic_tac_toe import TicTacToe, TicTacToeState
from rltransfer.play.evaluate import (
    EvalResult,
    evaluate_against,
    format_results,
    play_match,
    wilson_interval,
)
from rltransfer.play.players import GreedyPlayer, RandomPlayer


class FirstLegalPlayer:
    """Deterministic: always the lowest-numbered legal action."""

    name = "first_legal"

    def act(self, game: Game, state: State, generator: torch.Generator | None) -> Tensor:
        return game.legal_mask(state).to(torch.int64).argmax(dim=1)


class SeatSpy(RandomPlayer):
    """A random player that records, per call, the batch size and who is to move."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.calls: list[tuple[int, set[int]]] = []
        self.finished: list[int] = []

    def act(self, game: Game, state: State, generator: torch.Generator | None) -> Tensor:
        live = ~state.terminated
        self.calls.append((state.batch_size, set(state.current_player[live].tolist())))
        self.finished.append(int(state.terminated.sum()))
        return super().act(game, state, generator)


_LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


@functools.cache
def exact_random_tic_tac_toe(board: tuple[int, ...] = (0,) * 9) -> tuple[float, float, float]:
    """(P first player wins, P draw, P second player wins) under uniform random play,
    by exhaustive recursion: a reference independent of the batched implementation."""
    for a, b, c in _LINES:
        if board[a] and board[a] == board[b] == board[c]:
            return (1.0, 0.0, 0.0) if board[a] == 1 else (0.0, 0.0, 1.0)
    empty = [k for k in range(9) if not board[k]]
    if not empty:
        return 0.0, 1.0, 0.0
    mover = 1 if len(empty) % 2 == 1 else 2
    total = [0.0, 0.0, 0.0]
    for k in empty:
        child = exact_random_tic_tac_toe((*board[:k], mover, *board[k + 1 :]))
        total = [t + x / len(empty) for t, x in zip(total, child, strict=True)]
    return total[0], total[1], total[2]


# ------------------------------------------------------------------------- wilson
def test_wilson_interval_by_hand() -> None:
    low, high = wilson_interval(0.5, 100)
    assert low == pytest.approx(0.40383, abs=1e-4) and high == pytest.approx(0.59617, abs=1e-4)
    # p = 0 and p = 1: one end is exact, the other is z^2 / (n + z^2) away from it
    z2 = 1.96**2
    assert wilson_interval(0.0, 10) == pytest.approx((0.0, z2 / (10 + z2)))
    assert wilson_interval(1.0, 10) == pytest.approx((10 / (10 + z2), 1.0))
    # center (p + z^2/2n) / (1 + z^2/n), half-width z/(1+z^2/n) * sqrt(p(1-p)/n + z^2/4n^2)
    assert wilson_interval(0.2, 50) == pytest.approx((0.11244, 0.33038), abs=1e-4)
    assert wilson_interval(0.3, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="proportion"):
        wilson_interval(1.5, 10)


# ------------------------------------------------------------------------ matches
def test_random_vs_random_tic_tac_toe_matches_the_exact_rates() -> None:
    p_first, p_draw, p_second = exact_random_tic_tac_toe()
    assert (p_first, p_draw, p_second) == pytest.approx((737 / 1260, 160 / 1260, 363 / 1260))
    gen = torch.Generator().manual_seed(0)
    r = play_match(TicTacToe(), RandomPlayer(), RandomPlayer(), 2000, gen)
    assert (r.seat0_games, r.seat1_games) == (1000, 1000)

    def close(measured: float, p: float) -> bool:
        return abs(measured - p) < 4 * math.sqrt(p * (1 - p) / 1000)

    assert close(r.seat0_win, p_first) and close(r.seat0_loss, p_second)
    assert close(r.seat0_draw, p_draw) and close(r.seat1_draw, p_draw)
    assert close(r.seat1_win, p_second) and close(r.seat1_loss, p_first)  # seats mirror
    assert r.ci_low < 0.5 < r.ci_high


def test_greedy_beats_random_at_connect_four() -> None:
    gen = torch.Generator().manual_seed(0)
    r = play_match(make("connect_four"), GreedyPlayer(), RandomPlayer(), 200, gen)
    assert r.score > 0.8
    assert r.player == "greedy" and r.opponent == "random" and r.game == "connect_four"


def test_deterministic_self_play_repeats_one_game_per_seat() -> None:
    """First-legal vs itself at tic-tac-toe: X plays 0, 2, 4, 6 and wins on the diagonal."""
    r = play_match(TicTacToe(), FirstLegalPlayer(), FirstLegalPlayer(), 7)
    assert (r.seat0_games, r.seat1_games) == (4, 3)  # odd count: seat 0 gets the extra game
    assert (r.seat0_win, r.seat0_draw, r.seat0_loss) == (1.0, 0.0, 0.0)
    assert (r.seat1_win, r.seat1_draw, r.seat1_loss) == (0.0, 0.0, 1.0)
    assert (r.wins, r.draws, r.losses, r.score) == (4, 0, 3, 4 / 7)
    c4 = play_match(make("connect_four"), FirstLegalPlayer(), FirstLegalPlayer(), 10)
    seat0 = (c4.seat0_win, c4.seat0_draw, c4.seat0_loss)
    assert sorted(seat0) == [0.0, 0.0, 1.0]  # every board played the same game
    assert (c4.seat1_win, c4.seat1_draw, c4.seat1_loss) == seat0[::-1]


@pytest.mark.parametrize("num_games", [1, 2, 9, 101])
def test_every_game_is_counted_once(num_games: int) -> None:
    gen = torch.Generator().manual_seed(num_games)
    r = play_match(make("connect_four"), RandomPlayer(), GreedyPlayer(), num_games, gen)
    assert r.games == r.wins + r.draws + r.losses == num_games
    assert (r.seat0_games, r.seat1_games) == ((num_games + 1) // 2, num_games // 2)
    for seat, n in ((0, r.seat0_games), (1, r.seat1_games)):
        rates = [getattr(r, f"seat{seat}_{k}") for k in ("win", "draw", "loss")]
        assert sum(rates) == pytest.approx(1.0 if n else 0.0)
    assert r.score == pytest.approx((r.wins + r.draws / 2) / num_games)
    assert (r.ci_low, r.ci_high) == pytest.approx(wilson_interval(r.score, num_games))


def test_each_player_moves_once_per_ply_on_its_seat_and_live_boards() -> None:
    player, opponent = SeatSpy("p"), SeatSpy("o")
    play_match(make("tic_tac_toe"), player, opponent, 9, torch.Generator().manual_seed(0))
    # boards 0..4 seat the player first, boards 5..8 second; at ply k the mover is k % 2
    assert 5 <= len(player.calls) <= 9 and 5 <= len(opponent.calls) <= 9
    for k, (p_size, p_movers) in enumerate(player.calls):
        assert 1 <= p_size <= (5 if k % 2 == 0 else 4) and p_movers == {k % 2}
    for k, (o_size, o_movers) in enumerate(opponent.calls):
        assert 1 <= o_size <= (4 if k % 2 == 0 else 5) and o_movers == {k % 2}
    # on the CPU a player is handed live boards only: finished games cost it nothing
    assert all(not finished for finished in player.finished + opponent.finished)


class _NeverEnds(TicTacToe):
    """Broken rules: nothing ever wins and the full board does not end the game."""

    def _apply(self, state: State, action: Tensor) -> TicTacToeState:
        played = super()._apply(state, action)
        return dataclasses.replace(
            played, terminated=torch.zeros_like(played.terminated), reward=played.reward * 0
        )


def test_a_game_past_max_moves_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="max_moves=9"):
        play_match(_NeverEnds(), FirstLegalPlayer(), FirstLegalPlayer(), 4)


# ------------------------------------------------------------------------ reports
def test_evaluate_against_names_and_players_and_formats() -> None:
    gen = torch.Generator().manual_seed(0)
    game = make("tic_tac_toe")
    by_label = evaluate_against(game, GreedyPlayer(), ["random", FirstLegalPlayer()], 20, gen)
    assert list(by_label) == ["random", "first_legal"]
    results = list(by_label.values())
    assert [r.opponent for r in results] == ["random", "first_legal"]
    assert all(isinstance(r, EvalResult) and r.games == 20 for r in results)
    assert json.loads(json.dumps(results[0].to_dict()))["opponent"] == "random"
    table = format_results(results).splitlines()
    assert len(table) == 4
    assert table[0].split()[:4] == ["game", "opponent", "games", "score"]
    assert table[2].split()[:3] == ["tic_tac_toe", "random", "20"]
    with pytest.raises(UnknownPlayerError, match="greedy, perfect, random"):
        evaluate_against(game, GreedyPlayer(), ["alphazero"], 4)


def test_players_that_cannot_play_are_refused_or_skipped() -> None:
    connect_four = make("connect_four")
    with pytest.raises(UnknownPlayerError, match="perfect opponent cannot play connect_four"):
        evaluate_against(connect_four, GreedyPlayer(), ["random", "perfect"], 2)
    kept = evaluate_against(
        connect_four, GreedyPlayer(), ["random", "perfect"], 2, skip_unplayable=True
    )
    assert list(kept) == ["random"]
