"""Small pieces shared by the gymnasium and PettingZoo views."""

from __future__ import annotations

from typing import Any

import numpy as np

from rltransfer.games import BoardGame, State, make

#: Render modes every view offers: a text board and an ``[H, W, 3]`` uint8 image.
RENDER_MODES = ("ansi", "rgb_array")


def build_game(game: str | BoardGame, options: dict[str, Any]) -> BoardGame:
    """A game from an id and options, or a built game (which then takes no options)."""
    if isinstance(game, BoardGame):
        if options:
            raise ValueError(f"options {sorted(options)} given with an already built {game!r}")
        return game
    return make(game, **options)


def check_render_mode(render_mode: str | None) -> str | None:
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(
            f"render_mode must be None or one of {list(RENDER_MODES)}, got {render_mode!r}"
        )
    return render_mode


def render_board(
    game: BoardGame, state: State, render_mode: str, index: int = 0
) -> str | np.ndarray:
    """Board ``index`` as text (``"ansi"``) or as an ``[H, W, 3]`` uint8 array."""
    if render_mode == "ansi":
        return game.render_text(state, index)
    return game.render_rgb(state, index).permute(1, 2, 0).cpu().numpy()
