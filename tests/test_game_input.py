"""What callers hand the games is checked: ids and options from files never run code, option
values are type-exact, and ``init`` / ``step`` / ``observe`` name a wrong input instead of
failing deep inside (or silently broadcasting it).

New API (``register_env``, ``EnvOption``) is imported inside the tests that use it, so every
other test here fails on the code before these checks for its own reason.
"""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rltransfer.games import game_class, make, parse_game_spec
from rltransfer.games.core import Game, State

# other test modules register envs of their own, which the list then names too
UNKNOWN_ENV = (
    r"unknown PettingZoo env .*; available: chess_v6, connect_four_v3, .*go_v5, .*tictactoe"
)


@pytest.fixture
def own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Envs registered by a test stay in that test."""
    from rltransfer.games import outside

    monkeypatch.setattr(outside, "_ENVS", dict(outside._ENVS))


# ------------------------------------------------------------- ids from files run no code
def _hostile(marker: Path) -> list[tuple[str, dict[str, Any]]]:
    touch = f"touch {marker}"
    return [
        ("pettingzoo:subprocess.check_call", {"args": touch, "shell": True}),
        ("pettingzoo:subprocess.run", {"args": touch, "shell": True}),
        ("pettingzoo:os.system", {"command": touch}),
        ("pettingzoo:posix.system", {"command": touch}),
    ]


def test_hostile_ids_name_no_env_and_run_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for game_id, options in _hostile(marker):
        with pytest.raises(KeyError, match=UNKNOWN_ENV):
            make(game_id, **options)  # what GameSpec.make does with a suite's id and options
        with pytest.raises(KeyError, match=UNKNOWN_ENV):
            game_class(game_id)
        assert not marker.exists(), f"{game_id} ran a shell command"


def test_hostile_spec_string_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    game_id, options = parse_game_spec(f"pettingzoo:os.system:command=touch {marker}")
    with pytest.raises(KeyError, match=r"register your own with rltransfer.games.register_env"):
        make(game_id, **options)
    assert not marker.exists()


@pytest.mark.usefixtures("own_registry")
def test_registered_env_names_are_names_not_paths() -> None:
    from rltransfer.games import register_env

    def env() -> None:
        raise AssertionError("never built here")

    for bad in ("my_pkg.my_env", "os.system", "a:b", "../x", "", "9lives"):
        with pytest.raises(ValueError, match="must be a letter followed by"):
            register_env(bad, env)
    with pytest.raises(ValueError, match="built-in env"):
        register_env("go_v5", env)


# ------------------------------------------- options: declared, checked before any import
@pytest.fixture
def fake_go(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Put a recording stand-in where ``pettingzoo.classic.go_v5`` is imported from: the
    list it returns holds the keyword arguments of every constructor call."""
    import pettingzoo.classic
    from pettingzoo.classic.go.go import env as real_env

    calls: list[dict[str, Any]] = []

    def env(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return real_env(**kwargs)

    module = types.ModuleType("pettingzoo.classic.go_v5")
    module.env = env  # type: ignore[attr-defined]
    # the attribute first: reading the old one imports the real module (a lazy attribute)
    monkeypatch.setattr(pettingzoo.classic, "go_v5", module, raising=False)
    monkeypatch.setitem(sys.modules, "pettingzoo.classic.go_v5", module)
    return calls


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"size": 9}, r"unknown option 'size'; valid options: board_size, komi, max_moves"),
        ({"render_mode": "human"}, r"unknown option 'render_mode'"),
        ({"board_size": 9.0}, r"board_size=9.0 is not allowed: expected an int in 2..25"),
        ({"board_size": True}, r"board_size=True is not allowed: expected an int.*got a bool"),
        ({"board_size": "9"}, r"board_size='9' is not allowed: expected an int"),
        ({"board_size": 99}, r"board_size=99 is not allowed: expected an int in 2..25"),
        ({"komi": float("inf")}, r"komi=inf is not allowed: expected a finite float"),
        ({"komi": "7.5"}, r"komi='7.5' is not allowed: expected a finite float"),
        ({"max_moves": 1.5}, r"max_moves=1.5 is not allowed: expected an int >= 0"),
        ({"illegal_action": "ignore"}, r"illegal_action='ignore'.*one of 'lose', 'raise'"),
    ],
)
def test_go_options_are_checked_before_the_env_is_built(
    fake_go: list[dict[str, Any]], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=r"pettingzoo:go_v5: (option )?" + message):
        make("pettingzoo:go_v5", **options)
    assert fake_go == []  # the constructor never ran


def test_go_options_reach_the_env_as_plain_values(fake_go: list[dict[str, Any]]) -> None:
    game = make("pettingzoo:go_v5", board_size=np.int64(9), komi=6)
    assert game.height == 9 and fake_go and fake_go[0] == {"board_size": 9, "komi": 6.0}
    assert all(type(v) in (int, float) for v in fake_go[0].values())


@pytest.mark.usefixtures("own_registry")
def test_registered_env_options_are_checked_before_it_is_called() -> None:
    from rltransfer.games import EnvOption, register_env

    calls: list[dict[str, Any]] = []

    def recording_env(**kwargs: Any) -> None:
        calls.append(kwargs)
        raise AssertionError("the checks should have stopped this call")

    register_env("recording_v0", recording_env, options={"depth": EnvOption(int, low=1, high=4)})
    for options in ({"depth": 2.0}, {"depth": 0}, {"depth": False}, {"width": 3}):
        with pytest.raises(ValueError, match=r"pettingzoo:recording_v0: .*(depth|width)"):
            make("pettingzoo:recording_v0", **options)
    assert calls == []


# ------------------------------------------------------------ native options: type-exact
@pytest.mark.parametrize(
    ("game_id", "value"),
    [("othello", 6.0), ("hex", 7.0), ("gomoku", 9.0), ("othello", np.float64(8.0))],
)
def test_float_sizes_are_refused_by_name(game_id: str, value: Any) -> None:
    pattern = re.escape(f"{game_id}: option size={value!r} is not allowed (expected an int, got a")
    with pytest.raises(ValueError, match=pattern):
        make(game_id, size=value)
    with pytest.raises(ValueError, match=pattern):
        game_class(game_id)(size=value)  # type: ignore[call-arg]


def test_numpy_int_sizes_become_ints() -> None:
    game = make("othello", size=np.int64(6))
    assert type(game.size) is int and game.size == 6 and game.num_actions == 37


# --------------------------------------------------------------------- init and step input
@pytest.mark.parametrize("n", [2.5, True, "2", np.float32(2.0)])
def test_init_needs_an_int_number_of_boards(n: Any) -> None:
    with pytest.raises((TypeError, ValueError), match=r"number of boards must be an int >= 1"):
        make("tic_tac_toe").init(n)


@pytest.mark.parametrize(
    "game_id", ["tic_tac_toe", "connect_four", "othello", "pettingzoo:tictactoe_v3"]
)
def test_list_and_numpy_actions_are_converted(game_id: str) -> None:
    game = make(game_id)
    gen = torch.Generator().manual_seed(0)
    state = game.init(3, gen)
    actions = game.random_action(state, gen)
    expected = game.observe(game.step(state, actions)) if game.functional else None
    for given in (actions.tolist(), actions.numpy().astype(np.int32)):
        if not game.functional:
            state = game.init(3, gen)
        out = game.step(state, given)
        assert out.step_count.tolist() == [1, 1, 1]
        if expected is not None:
            assert torch.equal(game.observe(out), expected)


@pytest.mark.parametrize(
    "actions",
    [
        [0.0, 1.0],
        np.array([0.0, 1.0]),
        np.array([True, False]),
        torch.tensor([0, 1], dtype=torch.complex64),
        np.array([0, 1], dtype=np.complex128),
        "01",
    ],
    ids=["float_list", "float_numpy", "bool_numpy", "complex_tensor", "complex_numpy", "str"],
)
def test_non_integer_actions_are_refused(actions: Any) -> None:
    game = make("tic_tac_toe")
    with pytest.raises(TypeError, match=r"tic_tac_toe: actions must be a torch tensor of integers"):
        game.step(game.init(2), actions)


@pytest.mark.parametrize("game_id", ["tic_tac_toe", "hex", "pettingzoo:tictactoe_v3"])
def test_masks_of_the_wrong_shape_are_named(game_id: str) -> None:
    game = make(game_id)
    state = game.init(2)
    action = torch.tensor([0, 1])
    for mask in (torch.tensor([True]), torch.ones(2, 1, dtype=torch.bool), torch.ones(3).bool()):
        with pytest.raises(ValueError, match=r"where must have shape \[2\] .*got \["):
            game.step(state, action, where=mask)
        with pytest.raises(ValueError, match=r"done must have shape \[2\] .*got \["):
            game.reset_where(state, mask)


def _calls(game: Game) -> dict[str, Callable[[State], object]]:
    return {
        "step": lambda s: game.step(s, torch.zeros(2, dtype=torch.int64)),
        "observe": game.observe,
        "legal_mask": game.legal_mask,
        "board": game.board,
        "random_action": game.random_action,
        "reset_where": lambda s: game.reset_where(s, torch.ones(2, dtype=torch.bool)),
    }


@pytest.mark.parametrize(
    ("game_id", "other_id", "names"),
    [
        ("tic_tac_toe", "connect_four", "TicTacToeState, got ConnectFourState"),
        ("connect_four", "tic_tac_toe", "ConnectFourState, got TicTacToeState"),
        ("othello", "hex", "OthelloState, got HexState"),
        ("hex", "gomoku", "HexState, got GomokuState"),
        ("gomoku", "othello", "GomokuState, got OthelloState"),
    ],
)
@pytest.mark.parametrize(
    "call", ["step", "observe", "legal_mask", "board", "random_action", "reset_where"]
)
def test_a_state_of_another_game_is_named(
    game_id: str, other_id: str, names: str, call: str
) -> None:
    game, other = make(game_id), make(other_id)
    with pytest.raises(TypeError, match=rf"{game_id}: expected an? {names}"):
        _calls(game)[call](other.init(2))
