"""Every registered game passes ``check_game``; the checker itself catches broken games."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import Tensor

from rltransfer.games import available_games, make, parse_game_spec
from rltransfer.games.check import GameCheckError, check_game
from rltransfer.games.core import State
from rltransfer.games.tic_tac_toe import TicTacToe


@pytest.mark.parametrize("game_id", available_games())
def test_every_game_passes_check_game(game_id: str) -> None:
    check_game(make(game_id), num_boards=32)


def test_registry_lists_the_five_games() -> None:
    assert {"tic_tac_toe", "connect_four"} <= set(available_games())


def test_unknown_game_lists_valid_ids() -> None:
    with pytest.raises(KeyError, match=r"unknown game 'chess'.*connect_four.*tic_tac_toe"):
        make("chess")


def test_unknown_option_and_bad_value_are_named() -> None:
    with pytest.raises(ValueError, match=r"unknown option 'size'; valid options: none"):
        make("tic_tac_toe", size=4)
    with pytest.raises(ValueError, match="illegal_action must be"):
        make("connect_four", illegal_action="ignore")


def test_parse_game_spec() -> None:
    assert parse_game_spec("othello:size=6") == ("othello", {"size": 6})
    assert parse_game_spec("connect_four") == ("connect_four", {})
    with pytest.raises(ValueError, match="expected key=value"):
        parse_game_spec("hex:size")


# ---------------------------------------------------------------- the checker can fail
class _RewardsMidGame(TicTacToe):
    def _apply(self, state: State, action: Tensor) -> State:
        out = super()._apply(state, action)
        return dataclasses.replace(out, reward=torch.ones_like(out.reward))  # every move pays


class _Mutating(TicTacToe):
    def _apply(self, state: State, action: Tensor) -> State:
        state.step_count.add_(0)
        state.current_player.zero_()  # writes into the caller's tensors
        return super()._apply(state, action)


class _NeverEnds(TicTacToe):
    def _apply(self, state: State, action: Tensor) -> State:
        out = super()._apply(state, action)
        never = torch.zeros_like(out.terminated)
        return dataclasses.replace(out, terminated=never, reward=torch.zeros_like(out.reward))


class _BiasedRandom(TicTacToe):
    def random_action(self, state: State, generator: torch.Generator | None = None) -> Tensor:
        mask = self.legal_mask(state)
        return mask.to(torch.uint8).argmax(dim=1)  # always the first legal cell


class _BatchDependent(TicTacToe):
    def _apply(self, state: State, action: Tensor) -> State:
        out = super()._apply(state, action)
        ended = out.terminated | (action == action.max())  # depends on the other boards
        return dataclasses.replace(out, terminated=ended & (state.step_count >= 4))


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (_RewardsMidGame, "reward was given while the game went on"),
        (_Mutating, "mutated its input"),
        (_NeverEnds, "a board has no legal action"),
        (_BiasedRandom, "not uniform"),
        (_BatchDependent, "played alone differs"),
    ],
)
def test_check_game_catches_broken_games(broken: type[TicTacToe], message: str) -> None:
    with pytest.raises(GameCheckError, match=message):
        check_game(broken(), num_boards=32)


class _SloppyStepLegal(TicTacToe):
    def step_legal(self, state: State, action: Tensor, where: Tensor) -> State:
        return self._apply(state, action)  # ignores where and step_count


def test_check_game_catches_a_step_legal_that_is_not_step() -> None:
    with pytest.raises(GameCheckError, match="step_legal differs from step"):
        check_game(_SloppyStepLegal())
