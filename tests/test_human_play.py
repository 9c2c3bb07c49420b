"""``rltransfer play``: the games' notation, the terminal loop and the command, all driven
through their input and output."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from tiny import tiny_config

from rltransfer.cli import main
from rltransfer.games import make
from rltransfer.games.core import BoardGame, State
from rltransfer.learn.training import train
from rltransfer.play.human import (
    QuitGame,
    draw,
    legal_names,
    move_name,
    parse_move,
    play_human,
)

GAMES = [
    ("tic_tac_toe", {}),
    ("connect_four", {}),
    ("othello", {"size": 6}),
    ("hex", {"size": 7}),
    ("gomoku", {"size": 9}),
    ("mnk", {"m": 5, "n": 6, "k": 4, "gravity": True}),
]


def positions(game: BoardGame, plies: int, seed: int = 0) -> list[State]:
    """One board after each of ``plies`` random moves (fewer if the game ends)."""
    gen = torch.Generator().manual_seed(seed)
    state, out = game.init(1, gen), []
    for _ in range(plies):
        if bool(state.terminated[0]):
            break
        out.append(state)
        state = game.step(state, game.random_action(state, gen))
    return out


@pytest.mark.parametrize(("game_id", "options"), GAMES)
def test_every_legal_move_reads_back_as_itself(game_id: str, options: dict) -> None:
    game = make(game_id, **options)
    for state in positions(game, 12):
        legal = game.legal_mask(state)[0].nonzero().flatten().tolist()
        names = [move_name(game, state, a) for a in legal]
        assert len(set(names)) == len(names)  # no two moves share a name
        assert [parse_move(game, state, n) for n in names] == legal
        assert sorted(legal_names(game, state)) == sorted(names)


def test_connect_four_names_columns_and_stones_drop_to_the_bottom() -> None:
    game = make("connect_four")
    state = game.init(1)
    state = game.step(state, torch.tensor([parse_move(game, state, "4")]))
    assert draw(game, state).splitlines()[-2:] == [". . . X . . .", "1 2 3 4 5 6 7"]
    for bad, why in [("9", "column, 1 to 7"), ("d", "column, 1 to 7"), ("", "column")]:
        with pytest.raises(ValueError, match=why):
            parse_move(game, state, bad)
    for _ in range(5):
        state = game.step(state, torch.tensor([parse_move(game, state, "4")]))
    with pytest.raises(ValueError, match="column 4 is full"):
        parse_move(game, state, "4")


def test_hex_moves_name_the_board_as_drawn_for_both_players() -> None:
    game = make("hex", size=7)
    state = game.init(1)
    state = game.step(state, torch.tensor([parse_move(game, state, "a2")]))  # X
    state = game.step(state, torch.tensor([parse_move(game, state, "c1")]))  # O: transposed frame
    board = game.board(state)[0]
    assert int(board[1, 0]) == 1 and int(board[0, 2]) == 2
    assert " ".join(draw(game, state).splitlines()[1].split()[1:4]) == ". . O"
    with pytest.raises(ValueError, match="a2 is not a legal move"):
        parse_move(game, state, "a2")
    with pytest.raises(ValueError, match="rows run from 1 to 7"):
        parse_move(game, state, "a8")
    with pytest.raises(ValueError, match="a1 to g7"):
        parse_move(game, state, "h1")


def test_othello_pass_is_named_and_refused_while_a_move_exists() -> None:
    game = make("othello", size=6)
    state = game.init(1)
    with pytest.raises(ValueError, match="cannot pass"):
        parse_move(game, state, "pass")
    assert move_name(game, state, 36) == "pass"


class ColumnOne:
    """Plays the leftmost legal cell: column 1 until it fills."""

    name = "bot"

    def act(self, game: BoardGame, state: State, generator: torch.Generator | None) -> torch.Tensor:
        column = torch.arange(game.num_actions) % game.width
        return torch.where(game.legal_mask(state), -column, -game.width).argmax(dim=1)


def scripted(lines: list[str]) -> tuple[list[str], object]:
    feed, out = iter(lines), []

    def read(prompt: str) -> str:
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    return out, (read, out.append)


def test_a_game_reports_bad_input_and_the_result() -> None:
    out, (read, write) = scripted(["9", "x", "4", "4", "4", "4"])
    result = play_human(make("connect_four"), ColumnOne(), 0, read=read, write=write)
    assert result == 1.0 and out[-1] == "You win."
    text = "\n".join(out)
    assert "'9': name a column, 1 to 7; legal: 1, 2, 3, 4, 5, 6, 7" in text
    assert text.count("bot plays 1") == 3


def test_the_agent_opens_when_the_human_takes_the_second_seat() -> None:
    out, (read, write) = scripted(["2", "2", "2"])  # X fills column 1 and wins first
    result = play_human(make("connect_four"), ColumnOne(), 1, read=read, write=write)
    assert result == 0.0 and out[-1] == "bot wins."
    assert out[0].startswith("connect_four: you are O, the agent X; the agent moves first")


def test_quit_and_end_of_input_leave_the_game() -> None:
    for lines in (["quit"], []):
        _, (read, write) = scripted(lines)
        with pytest.raises(QuitGame):
            play_human(make("tic_tac_toe"), ColumnOne(), 0, read=read, write=write)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("play")
    return train(tiny_config(tmp, iterations=1), tmp / "runs", quiet=True)  # ttt + othello 6


def test_cli_play_with_search_to_the_end(
    run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cells = [f"{c}{r}" for r in (1, 2, 3) for c in "abc"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(cells * 2) + "\n"))
    code = main(["play", str(run), "--game", "tic_tac_toe", "--seat", "1", "--search", "4"])
    assert code == 0
    out = capsys.readouterr().out
    assert "the agent moves first" in out and "rltransfer plays" in out
    assert out.rstrip().splitlines()[-1] in ("You win.", "A draw.", "rltransfer wins.")


def test_cli_play_asks_for_a_game_and_leaves_on_quit(
    run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["play", str(run)]) == 2
    assert "choose one with --game" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("quit\n"))
    assert main(["play", str(run), "--game", "othello"]) == 0
    assert "game left unfinished" in capsys.readouterr().out
