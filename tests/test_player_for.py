"""``player_for``: the one rule that turns an opponent name or a run path into a player."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny import tiny_config

from rltransfer.errors import UnknownPlayerError
from rltransfer.games import make
from rltransfer.learn.training import train
from rltransfer.play.players import (
    CannotPlayError,
    GreedyPlayer,
    PolicyPlayer,
    RandomPlayer,
    player_for,
    players_for,
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("player_for")
    return train(tiny_config(tmp, iterations=1), tmp / "runs", quiet=True)  # ttt + othello 6


def test_names_players_and_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ttt = make("tic_tac_toe")
    assert isinstance(player_for(None, ttt), RandomPlayer)
    greedy = GreedyPlayer()
    assert player_for(greedy, ttt) is greedy
    (tmp_path / "greedy").mkdir()  # a folder named like a player: the name wins
    monkeypatch.chdir(tmp_path)
    assert isinstance(player_for("greedy", ttt), GreedyPlayer)
    with pytest.raises(UnknownPlayerError, match="no run folder at that path"):
        player_for("minimax", ttt)


def test_a_run_plays_the_games_it_has_at_their_shape(run: Path) -> None:
    player = player_for(str(run), make("othello", size=6))
    assert isinstance(player, PolicyPlayer) and player.task == "othello_size6"
    assert player.name == f"run:{run.name}"
    with pytest.raises(UnknownPlayerError, match=r"othello with .* the game has"):
        player_for(run, make("othello", size=8))  # the same game at another size
    with pytest.raises(CannotPlayError, match="cannot play connect_four"):
        player_for(run, make("connect_four"))


def test_players_for_labels_as_given_and_skips_what_cannot_play(run: Path) -> None:
    c4 = make("connect_four")
    got = players_for(["random", "perfect", str(run)], c4, skip_unplayable=True)
    assert list(got) == ["random"]
    ttt = make("tic_tac_toe")
    got = players_for(["perfect", str(run)], ttt)
    assert list(got) == ["perfect", str(run)]
