"""Suite specs: resolved by name or path, loaded strictly."""

from __future__ import annotations

from pathlib import Path

import pytest

from rltransfer.specs.config import ConfigError, load_suite
from rltransfer.specs.presets import available_specs, resolve_spec


def test_shipped_suites_load() -> None:
    assert {"classic", "full"} <= set(available_specs("envs"))
    classic = load_suite("classic")
    assert [g.name for g in classic.games] == [
        "tic_tac_toe",
        "connect_four",
        "othello_size6",
        "hex_size7",
    ]
    assert classic.game("othello_size6").make().height == 6
    full = load_suite("full")
    assert {g.id for g in full.games} == {"tic_tac_toe", "connect_four", "othello", "hex", "gomoku"}


def test_suite_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('[[games]]\nid = "connect_four"\nnum_envs = 8\nweight = 2.0\n')
    suite = load_suite(str(path))
    assert suite.name == "mine"
    assert suite.games[0].num_envs == 8 and suite.games[0].weight == 2.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[games]]\nid = "connect_four"\nnum_env = 8\n', r"unknown key\(s\) \['num_env'\]"),
        ('[[games]]\nid = "chess"\n', "unknown game 'chess'"),
        ('[[games]]\nid = "hex"\noptions = { size = 3 }\n', r"size=3 is not allowed"),
        ('[[games]]\nid = "hex"\noptions = { colour = 1 }\n', "unknown option 'colour'"),
        ('[[games]]\nid = "connect_four"\nnum_envs = 0\n', "num_envs must be a positive integer"),
        ("[[games]]\nnum_envs = 4\n", "missing key 'id'"),
        ('nmae = "x"\n[[games]]\nid = "tic_tac_toe"\n', r"unknown key\(s\) \['nmae'\]"),
        ('name = "x"\n', "at least one"),
        ("[[games]\n", "not valid TOML"),
        ('[[games]]\nid = "tic_tac_toe"\n[[games]]\nid = "tic_tac_toe"\n', "share a name"),
    ],
)
def test_bad_suites_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_suite(path)
    assert str(path) in str(info.value)


def test_unknown_spec_name_lists_available() -> None:
    with pytest.raises(
        FileNotFoundError, match=r"unknown envs spec 'clasic'; available: .*classic"
    ):
        resolve_spec("envs", "clasic")
    with pytest.raises(FileNotFoundError, match="not found"):
        resolve_spec("envs", "./nowhere.toml")
