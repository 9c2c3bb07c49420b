"""``mcts:100`` against OpenSpiel's ``MCTSBot`` with the same settings scores 0.40..0.60
over 400 games (``-m slow``: minutes; the full table is ``scripts/calibrate_mcts.py``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.slow


def _calibration() -> ModuleType:
    path = Path(__file__).parents[1] / "scripts" / "calibrate_mcts.py"
    spec = importlib.util.spec_from_file_location("calibrate_mcts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("game_id", ["tic_tac_toe", "connect_four", "hex_7"])
def test_mcts_100_matches_openspiel(game_id: str) -> None:
    pytest.importorskip("pyspiel")
    row = _calibration().calibrate(game_id, simulations=100, num_games=400, seed=1)
    assert 0.40 <= row.score <= 0.60, row
