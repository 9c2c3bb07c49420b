"""The Elo ladder: random openings from both seats, the Bradley-Terry fit, the CLI and the
ratings of a run's checkpoints in TensorBoard."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tiny import tiny_config

from rltransfer.cli import main
from rltransfer.games import make
from rltransfer.games.core import BoardGame, State
from rltransfer.learn.training import train
from rltransfer.play import ladder as lad
from rltransfer.play.evaluate import EvalResult, play_match, random_openings, wilson_interval
from rltransfer.play.ladder import (
    ELO_PER_NAT,
    checkpoint_players,
    fit_ratings,
    ladder_players,
    pairing_seed,
    round_robin,
)
from rltransfer.play.players import GreedyPlayer, RandomPlayer
from rltransfer.runs.metrics import LADDER_DIR, ladder_tag, read_scalars


def pairing(a: str, b: str, wins: int, draws: int, losses: int) -> EvalResult:
    """A result whose every number agrees with its counts (all its games in seat 0)."""
    n = wins + draws + losses
    score = (wins + draws / 2) / n
    low, high = wilson_interval(score, n)
    return EvalResult(
        "tic_tac_toe", a, b, n, wins, draws, losses, score, low, high,
        n, wins / n, draws / n, losses / n, 0, 0.0, 0.0, 0.0,
    )  # fmt: skip


# ------------------------------------------------------------------------------ the fit
def test_two_players_match_the_closed_form_with_virtual_draws() -> None:
    ladder = fit_ratings([pairing("a", "b", 30, 10, 20)], anchor="b", prior_draws=2.0)
    # a's score 35 of 60 plus one virtual point of two: odds 36 : 26
    assert ladder.rating("a").elo == pytest.approx(ELO_PER_NAT * math.log(36 / 26), abs=1e-6)
    assert ladder.rating("b").elo == 0.0 and ladder.players == ["a", "b"]
    # the interval: 1.96 / sqrt(n p (1 - p)) in natural units, n = 62 games with the prior
    p = 36 / 62
    half = ELO_PER_NAT * 1.96 / math.sqrt(62 * p * (1 - p))
    r = ladder.rating("a")
    assert (r.ci_high - r.elo) == pytest.approx(half, rel=1e-6)
    assert r.games == 60 and r.score == pytest.approx(35 / 60)


def test_the_fit_recovers_known_ratings_and_the_anchor_shifts_them() -> None:
    truth = {"w": 0.0, "x": 150.0, "y": -300.0, "z": 420.0}
    n = 200_000
    results = []
    names = list(truth)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            p = 1 / (1 + 10 ** ((truth[b] - truth[a]) / 400))
            wins = round(n * p)
            results.append(pairing(a, b, wins, 0, n - wins))
    ladder = fit_ratings(results, anchor="w", prior_draws=0.0)
    for name, elo in truth.items():
        r = ladder.rating(name)
        assert r.elo == pytest.approx(elo, abs=1.0)
        assert r.ci_low <= elo + 1.0 and elo - 1.0 <= r.ci_high
    shifted = fit_ratings(results, anchor="x", prior_draws=0.0)
    assert shifted.rating("z").elo == pytest.approx(420.0 - 150.0, abs=1.0)
    assert [r.player for r in ladder.ratings] == ["z", "x", "w", "y"]  # best first


def test_a_clean_sweep_stays_finite_with_the_prior_and_is_refused_without() -> None:
    sweep = [pairing("strong", "random", 100, 0, 0), pairing("strong", "mid", 60, 0, 40),
             pairing("mid", "random", 100, 0, 0)]  # fmt: skip
    ladder = fit_ratings(sweep, anchor="random")
    assert all(np.isfinite([r.elo, r.ci_low, r.ci_high]).all() for r in ladder.ratings)
    assert ladder.rating("strong").elo > ladder.rating("mid").elo > 0
    with pytest.raises(ValueError, match="prior_draws > 0"):
        fit_ratings(sweep, anchor="random", prior_draws=0.0)


def test_bad_anchors_priors_and_disconnected_players_are_refused() -> None:
    two_islands = [pairing("a", "b", 5, 0, 5), pairing("c", "d", 5, 0, 5)]
    with pytest.raises(ValueError, match="not connected to the anchor"):
        fit_ratings(two_islands, anchor="a")
    with pytest.raises(ValueError, match="anchor 'zz' played no game"):
        fit_ratings(two_islands, anchor="zz")
    with pytest.raises(ValueError, match="prior_draws"):
        fit_ratings(two_islands, anchor="a", prior_draws=-1.0)


def test_more_games_narrow_the_interval() -> None:
    def width(k: int) -> float:
        r = fit_ratings([pairing("a", "b", 6 * k, 0, 4 * k)], anchor="b").rating("a")
        return r.ci_high - r.ci_low

    assert width(100) < width(10) / 2.5  # about sqrt(10) narrower


# ------------------------------------------------------------------------- openings
class FirstLegal:
    """A deterministic player that records the first position it is asked about."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.first: State | None = None

    def act(self, game: BoardGame, state: State, generator: torch.Generator | None) -> torch.Tensor:
        if self.first is None:
            self.first = state
        return game.legal_mask(state).to(torch.int64).argmax(dim=1)


def test_each_random_opening_is_played_once_from_each_seat() -> None:
    game = make("connect_four")
    a, b = FirstLegal("a"), FirstLegal("b")
    result = play_match(game, a, b, 16, torch.Generator().manual_seed(0), opening_plies=2)
    assert result.games == 16 and result.seat0_games == result.seat1_games == 8
    assert a.first is not None and b.first is not None
    # at ply 2, a moves first on boards 0..7 and b on boards 8..15: the same openings
    assert torch.equal(game.board(a.first), game.board(b.first))
    assert (a.first.step_count == 2).all()
    assert len({tuple(x.flatten().tolist()) for x in game.board(a.first)}) > 1  # not all alike
    with pytest.raises(ValueError, match="even"):
        play_match(game, a, b, 15, opening_plies=2)


def test_random_openings_play_legal_plies_and_refuse_games_they_end() -> None:
    ttt = make("tic_tac_toe")
    state = random_openings(ttt, 50, 4, torch.Generator().manual_seed(1))
    assert (state.step_count == 4).all() and not state.terminated.any()
    assert (game_stones(ttt, state) == 4).all()
    with pytest.raises(ValueError, match="ended a game"):
        random_openings(ttt, 500, 8, torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match="opening plies"):
        random_openings(ttt, 1, 9)


def game_stones(game: BoardGame, state: State) -> torch.Tensor:
    return (game.board(state) != 0).flatten(1).sum(dim=1)


# --------------------------------------------------------------------------- end to end
def test_round_robin_rates_greedy_above_random_on_tic_tac_toe() -> None:
    ttt = make("tic_tac_toe")
    players = {"random": RandomPlayer(), "greedy": GreedyPlayer(), "mcts:30": None}
    players = ladder_players(ttt, list(players))
    seen: list[str] = []
    results = round_robin(ttt, players, 60, seed=0, progress=seen.append)
    assert [(r.player, r.opponent) for r in results] == [
        ("random", "greedy"), ("random", "mcts:30"), ("greedy", "mcts:30")
    ]  # fmt: skip
    assert len(seen) == 3 and all(r.games == 60 for r in results)
    ladder = fit_ratings(results, anchor="random")
    assert ladder.rating("greedy").ci_low > 0  # greedy beats random, clearly
    assert ladder.rating("mcts:30").elo > 0
    with pytest.raises(ValueError, match="even"):
        round_robin(ttt, players, 7)


def test_a_resumed_round_robin_plays_only_the_missing_pairings_and_what_they_would_have_been(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ttt = make("tic_tac_toe")
    players = ladder_players(ttt, ["random", "greedy", "mcts:10"])
    whole = round_robin(ttt, players, 8, seed=3)
    again = round_robin(ttt, players, 8, seed=3)
    assert again == whole  # a seed fixes every pairing
    assert round_robin(ttt, players, 8, seed=4) != whole
    played: list[tuple[str, str]] = []
    real = lad.play_match

    def counting(game, a, b, *args, **kwargs):  # type: ignore[no-untyped-def]
        played.append((a.name, b.name))
        return real(game, a, b, *args, **kwargs)

    monkeypatch.setattr(lad, "play_match", counting)
    # the middle pairing saved (its sides the other way round: it still counts), and a
    # pairing of another length, which does not
    flipped = dataclasses.replace(whole[1], player=whole[1].opponent, opponent=whole[1].player)
    other_length = dataclasses.replace(whole[0], games=10, wins=whole[0].wins + 2)
    saved: list[EvalResult] = []
    resumed = round_robin(
        ttt, players, 8, seed=3, done=[flipped, other_length], on_result=saved.append
    )
    assert len(played) == 2 and saved == [whole[0], whole[2]]
    assert resumed == [whole[0], flipped, whole[2]]
    assert pairing_seed(3, "a", "b") == pairing_seed(3, "b", "a") != pairing_seed(4, "a", "b")


def test_cli_ladder_resumes_an_interrupted_ladder_from_its_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    players = ["random", "greedy", "mcts:10"]
    options = ["--game", "tic_tac_toe", "--games", "8", "--quiet", "--seed", "5", "--device", "cpu"]
    whole, part = tmp_path / "whole.json", tmp_path / "part.json"
    assert main(["ladder", *players, *options, "--json", str(whole)]) == 0
    real, played = lad.play_match, []

    def stop_at(n: int):  # type: ignore[no-untyped-def]
        """play_match that counts the pairings played and is interrupted at the n-th."""

        def play(game, a, b, *args, **kwargs):  # type: ignore[no-untyped-def]
            played.append({a.name, b.name})
            if len(played) == n:
                raise KeyboardInterrupt
            return real(game, a, b, *args, **kwargs)

        return play

    monkeypatch.setattr(lad, "play_match", stop_at(2))
    assert main(["ladder", *players, *options, "--json", str(part)]) == 130
    assert "1 of 3 pairings saved" in capsys.readouterr().err
    saved = json.loads(part.read_text())
    assert saved["complete"] is False and len(saved["pairings"]) == 1
    # the unfinished file is not overwritten by a run that forgot --resume
    assert main(["ladder", *players, *options, "--json", str(part)]) == 2
    assert "holds an unfinished ladder (1 pairings played)" in capsys.readouterr().err
    assert json.loads(part.read_text()) == saved
    played.clear()
    monkeypatch.setattr(lad, "play_match", stop_at(0))
    assert main(["ladder", *players, *options, "--json", str(part), "--resume"]) == 0
    assert "(1 already played" in capsys.readouterr().out
    assert played == [{"random", "mcts:10"}, {"greedy", "mcts:10"}]  # not the saved one
    finished, expected = json.loads(part.read_text()), json.loads(whole.read_text())
    assert finished["complete"] is True and finished == expected
    # a finished ladder with a player added plays only the new player's pairings
    played.clear()
    monkeypatch.setattr(lad, "play_match", stop_at(2))
    more = ["ladder", *players, "mcts:3", *options, "--json", str(part), "--resume"]
    assert main(more) == 130  # stopped at the second of its 3 new pairings
    assert all("mcts:3" in pair for pair in played)
    pairings = json.loads(part.read_text())["pairings"]
    assert len(pairings) == 4 and "mcts:3" in (pairings[-1]["player"], pairings[-1]["opponent"])


def test_cli_ladder_stops_on_sigterm_with_its_pairings_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real, calls = lad.play_match, []

    def terminated(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:  # what a scheduler sends to stop a job
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(lad, "play_match", terminated)
    path = tmp_path / "ladder.json"
    argv = ["ladder", "random", "greedy", "mcts:3", "--game", "tic_tac_toe", "--games", "4",
            "--quiet", "--json", str(path)]  # fmt: skip
    before = signal.getsignal(signal.SIGTERM)
    assert main(argv) == 130
    assert "1 of 3 pairings saved" in capsys.readouterr().err
    assert len(json.loads(path.read_text())["pairings"]) == 1
    assert signal.getsignal(signal.SIGTERM) is before  # the ladder's handler is gone


def ladder_file(case: str) -> str:
    """A ladder JSON of random against greedy (8 games, seed 0), broken as ``case`` says."""
    good: dict[str, Any] = {
        "game": "tic_tac_toe", "games_per_pair": 8, "opening_plies": 2, "seed": 0,
        "device": "cpu", "complete": False,
        "pairings": [pairing("random", "greedy", 1, 2, 5).to_dict()],
    }  # fmt: skip
    if case == "old file":
        del good["device"]
    elif case == "bool seed":
        good["seed"] = False
    elif case == "cuda":
        good["device"] = "cuda"
    elif case == "bad score":
        good["pairings"][0]["score"] = 0.99
    elif case == "bad seats":
        good["pairings"][0]["seat0_games"] = 100
    elif case == "other game":
        good["pairings"][0]["game"] = "connect_four"
    elif case == "bad counts":
        good["pairings"][0]["wins"] = 3
    elif case == "short pairing":
        good["pairings"].append(pairing("greedy", "mcts:3", 1, 0, 1).to_dict())
    elif case == "self":
        good["pairings"].append(pairing("greedy", "greedy", 4, 0, 4).to_dict())
    elif case == "wrong type":
        good["pairings"][0]["games"] = "8"
    elif case == "stranger":
        good["pairings"].append(pairing("random", "mcts:3", 1, 2, 5).to_dict())
    elif case == "twice":
        good["pairings"].append(pairing("greedy", "random", 5, 2, 1).to_dict())
    elif case == "not json":
        return "{not json"
    elif case == "no pairings":
        return '{"game": "tic_tac_toe"}'
    return json.dumps(good)


@pytest.mark.parametrize(
    ("case", "extra", "message"),
    [
        ("missing", [], "no such file to resume"),
        ("not json", [], "not a readable ladder JSON"),
        ("no pairings", [], "no list of pairings"),
        ("good", ["--games", "10"], "games_per_pair 8 there, 10 here"),
        ("good", ["--seed", "1"], "seed 0 there, 1 here"),
        ("good", ["--openings", "4"], "opening_plies 2 there, 4 here"),
        ("old file", [], "not a ladder that can be resumed (no device"),
        ("bool seed", [], "seed False there, 0 here"),
        ("cuda", [], "device 'cuda' there, 'cpu' here"),
        ("bad counts", [], "must add up to its games"),
        ("bad score", [], "score and interval do not match its counts"),
        ("bad seats", [], "seats' games must add up to its games"),
        ("wrong type", [], "'games' must be an int, got '8'"),
        ("other game", [], "random vs greedy (8 games of connect_four) is not one of"),
        ("stranger", [], "players not named here: mcts:3"),
        ("twice", [], "a pairing is listed twice"),
        ("short pairing", [], "greedy vs mcts:3 (2 games of tic_tac_toe) is not one of"),
        ("self", [], "greedy vs greedy (8 games of tic_tac_toe) is not one of"),
    ],
)
def test_cli_ladder_refuses_a_file_it_cannot_resume_and_leaves_it_alone(
    tmp_path: Path, case: str, extra: list[str], message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    path = tmp_path / "ladder.json"
    if case != "missing":
        path.write_text(ladder_file(case))
    argv = ["ladder", "random", "greedy", "--game", "tic_tac_toe", "--games", "8", "--quiet",
            "--device", "cpu", "--json", str(path), "--resume", *extra]  # fmt: skip
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert path.is_file() == (case != "missing")
    if case != "missing":
        assert path.read_text() == ladder_file(case)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("ladder")
    config = tiny_config(tmp, iterations=3, overrides=("train.keep_checkpoints=2",))
    return train(config, tmp / "runs", quiet=True)


def test_cli_ladder_with_checkpoints_logs_their_ratings(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ladder.json"
    history = checkpoint_players(f"{run}+argmax")
    assert list(history) == [f"run@{k}+argmax" for k in (1, 2, 3)][-len(history) :]
    code = main([
        "ladder", "random", "greedy", f"{run}+search:4", "--game", "tic_tac_toe",
        "--checkpoints", str(run), "--log", "--games", "8", "--json", str(out), "--quiet",
    ])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "rank  player" in printed and "anchor" in printed
    data = json.loads(out.read_text())
    assert data["anchor"] == "random" and data["opening_plies"] == 2
    labels = {r["player"] for r in data["ratings"]}
    checkpoints = set(checkpoint_players(run))
    assert labels == {"random", "greedy", f"{run}+search:4", *checkpoints}
    n = len(labels)
    assert len(data["pairings"]) == n * (n - 1) // 2
    scalars = read_scalars(run / LADDER_DIR)
    elo = scalars[ladder_tag("tic_tac_toe", "elo")]
    assert len(elo) == len(checkpoints)
    by_label = {r["player"]: r["elo"] for r in data["ratings"]}
    steps = sorted(s for s, _ in elo)
    assert steps == sorted(set(steps)) and steps[-1] > 0
    assert sorted(v for _, v in elo) == pytest.approx(sorted(by_label[c] for c in checkpoints))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["random", "greedy", "--log"], "--log writes the ratings of --checkpoints"),
        (["random", "greedy", "--anchor", "mcts:5"], "--anchor 'mcts:5' is not one of"),
        (["random", "{run}+search:0"], "search:S takes a whole number"),
        (["random", "{run}"], "cannot play connect_four"),
        (["random", "random"], "named twice"),
        (["random", "greedy", "--games", "7"], "even"),
        (["random", "greedy", "--resume"], "--resume continues the ladder saved in --json"),
    ],
)
def test_cli_ladder_refuses_what_it_cannot_rate(
    run: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    game = "connect_four" if args == ["random", "{run}"] else "tic_tac_toe"
    argv = ["ladder", *(a.format(run=run) for a in args), "--game", game, "--quiet"]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
