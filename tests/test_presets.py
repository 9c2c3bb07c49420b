"""Agent presets: ``extends`` instead of copies, and dataclass defaults that agree with the
default preset (``ppo_small``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rltransfer.specs.config import (
    SECTIONS,
    ConfigError,
    load_agent,
    make_train_config,
)
from rltransfer.specs.presets import available_specs


def _flat(agent: str | Path) -> dict[str, object]:
    sections = make_train_config(suite="classic", agent=agent).sections()
    return {f"{s}.{k}": v for s in SECTIONS for k, v in sections[s].items()}


def test_the_dataclass_defaults_are_the_default_presets_values() -> None:
    preset = load_agent("ppo_small")
    for section, cls in SECTIONS.items():
        defaults = dataclasses.asdict(cls())
        for key, value in preset[section].items():
            expected = tuple(value) if isinstance(value, list) else value
            assert defaults[key] == expected, f"{section}.{key}"


@pytest.mark.parametrize(
    ("agent", "changes"),
    [
        (
            "transfer_small",
            {"train.total_steps", "transfer.mode", "transfer.unfreeze_after",
             "transfer.trunk_lr_scale"},
        ),
        (
            "ppo_small_long",
            {"selfplay.self", "selfplay.snapshot", "selfplay.random", "selfplay.greedy",
             "selfplay.perfect", "train.total_steps", "train.eval_interval",
             "train.eval_opponents"},
        ),
    ],
)  # fmt: skip
def test_a_preset_that_extends_ppo_small_differs_only_where_it_says(
    agent: str, changes: set[str]
) -> None:
    base, derived = _flat("ppo_small"), _flat(agent)
    assert {k for k in base if base[k] != derived[k]} == changes


def test_the_gpu_search_preset_is_the_gpu_preset_learning_from_search() -> None:
    base, derived = _flat("ppo_resnet"), _flat("az_resnet")
    assert {k for k in base if base[k] != derived[k]} == {
        "train.algorithm", "train.eval_interval", "train.checkpoint_interval",
        "alphazero.simulations", "alphazero.replay_size", "alphazero.batch_size",
    }  # fmt: skip
    assert derived["train.algorithm"] == "alphazero" and derived["net.blocks"] == 6


def test_every_shipped_preset_loads() -> None:
    for agent in available_specs("agents"):
        make_train_config(suite="classic", agent=agent)


def test_user_presets_extend_by_name_or_relative_path(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('extends = "ppo_small"\n[ppo]\nlearning_rate = 3e-4\n')
    (tmp_path / "yours.toml").write_text('extends = "mine.toml"\n[net]\nchannels = 16\n')
    cfg = make_train_config(suite="classic", agent=tmp_path / "yours.toml")
    assert (cfg.ppo.learning_rate, cfg.net.channels, cfg.net.blocks) == (3e-4, 16, 2)


def test_bad_extends_are_errors_that_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('extends = "b.toml"\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\n')
    with pytest.raises(ConfigError, match="cycle: a -> b -> a"):
        load_agent(tmp_path / "a.toml")
    (tmp_path / "c.toml").write_text('extends = "no_such_preset"\n')
    with pytest.raises(FileNotFoundError, match="unknown agents spec 'no_such_preset'"):
        load_agent(tmp_path / "c.toml")
    (tmp_path / "d.toml").write_text("extends = 3\n")
    with pytest.raises(ConfigError, match="extends must name a preset"):
        load_agent(tmp_path / "d.toml")
    (tmp_path / "e.toml").write_text('extends = "ppo_small"\nppo = 1\n')
    with pytest.raises(ConfigError, match=r"\[ppo\] must be a table"):
        load_agent(tmp_path / "e.toml")
