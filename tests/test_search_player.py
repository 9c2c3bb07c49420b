"""``mcts:S`` as a player name: parsing and its bounds, the settings check, forward-only
games refused (and skipped where a suite-wide list allows), a match, and ``rltransfer eval
--opponent mcts:S`` on a tiny run (``-m slow``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rltransfer.errors import UnknownPlayerError
from rltransfer.games import make
from rltransfer.play.evaluate import play_match
from rltransfer.play.players import (
    CannotPlayError,
    RandomPlayer,
    available_players,
    make_player,
    player_for,
    players_for,
)
from rltransfer.search import MCTSPlayer, UnsearchableGameError
from rltransfer.specs.config import ConfigError, TrainSettings


def test_mcts_names_parse_with_bounded_simulations() -> None:
    player = make_player("mcts:100")
    assert isinstance(player, MCTSPlayer) and player.name == "mcts:100"
    assert player.config.simulations == 100 and player.config.c == 2.0 and player.config.solve
    assert make_player("mcts:100000").config.simulations == 100_000  # type: ignore[attr-defined]
    assert "mcts:S" in available_players()
    for bad in ("mcts:abc", "mcts:0", "mcts:-5", "mcts:100001", "mcts:", "mcts:1e3", "mcts: 5"):
        with pytest.raises(UnknownPlayerError, match=r"mcts:S takes a whole number .*1\.\.100000"):
            make_player(bad)
    game = make("tic_tac_toe")
    assert isinstance(player_for("mcts:7", game), MCTSPlayer)
    with pytest.raises(UnknownPlayerError, match="'mcts:zero'"):
        player_for("mcts:zero", game)


def test_eval_opponents_accept_mcts() -> None:
    assert TrainSettings(eval_opponents=("random", "mcts:100")).eval_opponents[1] == "mcts:100"
    with pytest.raises(ConfigError, match=r"train\.eval_opponents: unknown opponent 'mcts:0'"):
        TrainSettings(eval_opponents=("random", "mcts:0"))
    with pytest.raises(ConfigError, match=r"valid opponents: .*mcts:S"):
        TrainSettings(eval_opponents=("minimax",))


def test_forward_only_games_cannot_be_searched() -> None:
    game = make("pettingzoo:tictactoe_v3")
    with pytest.raises(CannotPlayError, match="mcts:10 opponent cannot play"):
        player_for("mcts:10", game)
    kept = players_for(["random", "mcts:10"], game, skip_unplayable=True)
    assert list(kept) == ["random"]
    with pytest.raises(UnsearchableGameError, match="pettingzoo:tictactoe_v3"):
        MCTSPlayer(10).act(game, game.init(1), None)


def test_mcts_beats_random_at_tic_tac_toe() -> None:
    game = make("tic_tac_toe")
    gen = torch.Generator().manual_seed(0)
    result = play_match(game, make_player("mcts:30"), RandomPlayer(), 20, gen)
    assert result.score >= 0.75  # random: 0.5


@pytest.mark.slow  # trains a tiny run first (seconds); the name path is tested above
def test_rltransfer_eval_takes_an_mcts_opponent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tiny import tiny_config

    from rltransfer.cli import main
    from rltransfer.learn.training import train

    run = train(tiny_config(tmp_path, iterations=1), tmp_path / "runs", quiet=True)
    capsys.readouterr()
    assert main(["eval", str(run), "--opponent", "mcts:5", "--games", "4"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[3:]]
    assert {(row[0], row[1], row[2]) for row in rows} == {
        ("tic_tac_toe", "mcts:5", "4"),
        ("othello_size6", "mcts:5", "4"),
    }


def test_a_run_evaluates_against_mcts_and_logs_it(tmp_path: Path) -> None:
    """``mcts:S`` in ``train.eval_opponents``: a TensorBoard tag segment may hold ':'."""
    from tiny import tiny_config

    from rltransfer.learn.training import train
    from rltransfer.runs.metrics import read_scalars

    overrides = ('train.eval_opponents=["random", "mcts:5"]',)
    run = train(
        tiny_config(tmp_path, iterations=1, overrides=overrides), tmp_path / "r", quiet=True
    )
    assert "games/tic_tac_toe/score_vs_mcts:5" in read_scalars(run)


def test_a_trained_policy_searches_states_and_eval_can_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tiny import tiny_config

    from rltransfer.cli import main
    from rltransfer.games import make
    from rltransfer.inference import load_policy
    from rltransfer.learn.training import train

    run = train(tiny_config(tmp_path, iterations=1), tmp_path / "r", quiet=True)
    policy, game = load_policy(run), make("tic_tac_toe")
    state = game.init(3)
    result = policy.search(game, state, 8, generator=torch.Generator().manual_seed(0))
    assert bool(game.legal_mask(state).gather(1, result.action[:, None]).all())
    args = ["eval", str(run), "--game", "tic_tac_toe", "--opponent", "random", "--games", "4",
            "--search", "4", "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    assert "the policy searching 4 simulations (gumbel) before each move" in capsys.readouterr().out
    assert main([*args[:-4], "--search", "1000000", "--device", "cpu"]) == 2
