"""``check_game``: the conformance checker every game (ours or a user's) must pass.

It plays seeded random games and checks the contract of ``rltransfer.games.core``:
shapes, dtypes and device of every tensor; observation planes in [0, 1]; legal masks;
players alternating every ply (a pass is a ply); zero-sum rewards given only when
a game ends; termination within ``max_moves``; that ``step`` leaves its input untouched;
that batched play equals one-board-at-a-time play; determinism under a seed; illegal
actions and finished boards handled by the template; uniform random moves; rendering.

>>> from rltransfer.games import make
>>> from rltransfer.games.check import check_game
>>> check_game(make("connect_four"))
"""

from __future__ import annotations

import torch
from torch import Tensor

from rltransfer.games.core import BoardGame, State


class GameCheckError(AssertionError):
    """A game broke the contract; the message says which rule and where."""


def _require(ok: bool, game: BoardGame, message: str) -> None:
    if not ok:
        raise GameCheckError(f"{game!r}: {message}")


def check_game(
    game: BoardGame, *, num_boards: int = 64, seed: int = 0, device: str | torch.device = "cpu"
) -> None:
    """Raise :class:`GameCheckError` unless ``game`` follows the batched game contract."""
    device = torch.device(device)
    _check_attributes(game)
    gen = torch.Generator(device=device).manual_seed(seed)
    state = game.init(num_boards, gen, device=device)
    _check_state(game, state, num_boards, device)
    _require(not bool(state.terminated.any()), game, "a fresh board is already terminated")
    _require(bool((state.current_player == 0).all()), game, "player 0 must move first")
    trajectory = _check_random_play(game, state, gen)
    _check_one_at_a_time(game, trajectory, device)
    again = _check_random_play(game, game.init(num_boards, device=device),
                               torch.Generator(device=device).manual_seed(seed))  # fmt: skip
    _require(
        all(bool(torch.equal(a, b)) for a, b in zip(trajectory, again, strict=False))
        and len(again) == len(trajectory),
        game,
        "two runs with the same seed played different games (non-deterministic)",
    )
    _check_uniform_random_action(game, device)
    _check_illegal_and_finished(game, gen, device)
    _check_rendering(game, state)


def _check_attributes(game: BoardGame) -> None:
    cells = game.height * game.width
    expected = cells + (1 if game.has_pass else 0)
    _require(game.num_actions >= 1, game, "num_actions must be positive")
    _require(
        game.num_actions == expected or not hasattr(game, "height"),
        game,
        f"num_actions={game.num_actions}, but a {game.height}x{game.width} cell game "
        f"{'with' if game.has_pass else 'without'} a pass has {expected}",
    )
    _require(game.max_moves >= 1, game, "max_moves must be positive")
    _require(
        len(game.planes) == game.num_planes and all(isinstance(n, str) for n in game.planes),
        game,
        f"planes must name each of the {game.num_planes} observation planes, got {game.planes!r}",
    )


def _check_state(game: BoardGame, state: State, n: int, device: torch.device) -> None:
    for name, t in state.tensors().items():
        _require(
            t.shape[:1] == (n,),
            game,
            f"state field {name} has shape {list(t.shape)}, not [{n}, ...]",
        )
        _require(
            t.device.type == device.type, game, f"state field {name} is on {t.device}, not {device}"
        )
    _require(state.current_player.dtype == torch.int64, game, "current_player must be int64")
    _require(state.terminated.dtype == torch.bool, game, "terminated must be bool")
    _require(state.reward.dtype == torch.float32, game, "reward must be float32")
    _require(state.rewards.shape == (n, 2), game, "rewards must be [N, 2]")
    obs = game.observe(state)
    shape = (n, game.num_planes, game.height, game.width)
    _require(
        tuple(obs.shape) == shape, game, f"observe gave {list(obs.shape)}, expected {list(shape)}"
    )
    _require(obs.dtype == torch.float32, game, f"observe gave {obs.dtype}, expected float32")
    _require(obs.device.type == device.type, game, f"observation on {obs.device}, not {device}")
    _require(bool(torch.isfinite(obs).all()), game, "observation holds NaN or inf")
    mine = game.observe(state, player=state.current_player)
    _require(bool(torch.equal(mine, obs)), game, "observe(state, player=mover) != observe(state)")
    mask = game.legal_mask(state)
    _require(
        tuple(mask.shape) == (n, game.num_actions), game, f"legal_mask shape {list(mask.shape)}"
    )
    _require(mask.dtype == torch.bool, game, "legal_mask must be bool")
    _require(bool(mask.any(dim=1).all()), game, "a board has no legal action (a pass is missing?)")
    _require(
        bool(mask[state.terminated].all()), game, "a finished board's legal mask is not all True"
    )
    board = game.board(state)
    _require(tuple(board.shape) == (n, game.height, game.width), game, "board() must be [N, H, W]")


def _snapshot(state: State) -> dict[str, Tensor]:
    return {k: v.clone() for k, v in state.tensors().items()}


def _check_random_play(game: BoardGame, state: State, gen: torch.Generator) -> list[Tensor]:
    """Play random games to the end; returns the actions played (one [N] tensor a ply)."""
    n, device = state.batch_size, state.device
    actions: list[Tensor] = []
    for ply in range(game.max_moves + 1):
        if bool(state.terminated.all()):
            return actions
        _require(ply < game.max_moves, game, f"a game outlasted max_moves={game.max_moves}")
        mask = game.legal_mask(state)
        action = game.random_action(state, gen)
        _require(
            action.shape == (n,) and action.dtype == torch.int64, game, "random_action: [N] int64"
        )
        _require(
            bool(mask.gather(1, action[:, None]).all()), game, "random_action chose an illegal move"
        )
        before = _snapshot(state)
        nxt = game.step(state, action)
        _require(
            all(torch.equal(v, getattr(state, k)) for k, v in before.items()),
            game,
            "step mutated its input",
        )
        _check_state(game, nxt, n, device)
        _check_transition(game, state, nxt)
        if game.functional:  # a second step of one state: functional games only
            _check_step_legal(game, state, action)
        actions.append(action)
        state = nxt
    return actions


def _check_step_legal(game: BoardGame, state: State, action: Tensor) -> None:
    """``step_legal`` (no checks) must equal ``step`` for legal moves on live boards,
    here on two boards of every three (the others must come back unchanged)."""
    board = torch.arange(state.batch_size, device=state.device)
    where = ~state.terminated & (board % 3 != 0)
    fast, checked = game.step_legal(state, action, where), game.step(state, action, where)
    differ = [k for k, v in checked.tensors().items() if not torch.equal(v, getattr(fast, k))]
    _require(not differ, game, f"step_legal differs from step on legal moves in {differ}")


def _check_transition(game: BoardGame, prev: State, nxt: State) -> None:
    rewards = nxt.rewards
    _require(bool((rewards.sum(dim=1) == 0).all()), game, "rewards are not zero-sum")
    _require(bool((rewards.abs() <= 1).all()), game, "a reward is outside [-1, 1]")
    ended = nxt.terminated & ~prev.terminated
    _require(bool((rewards[~ended] == 0).all()), game, "a reward was given while the game went on")
    _require(
        bool((nxt.terminated | ~prev.terminated).all()), game, "a finished board came back to life"
    )
    live = ~prev.terminated
    _require(
        bool((nxt.step_count[live] == prev.step_count[live] + 1).all()),
        game,
        "step_count did not advance",
    )
    turned = nxt.current_player[live] == 1 - prev.current_player[live]
    _require(bool(turned.all()), game, "the player to move did not alternate (a pass is a ply too)")
    _require(
        bool((nxt.step_count[~live] == prev.step_count[~live]).all()),
        game,
        "a finished board's step_count moved",
    )


def _check_one_at_a_time(game: BoardGame, actions: list[Tensor], device: torch.device) -> None:
    """Replay a few boards alone with the batch's actions: every field must match."""
    if not actions:
        return
    n = actions[0].shape[0]
    batched = game.init(n, device=device)
    states = [batched]
    for a in actions:
        batched = game.step(batched, a)
        states.append(batched)
    for i in sorted({0, n // 2, n - 1}):
        single = game.init(1, device=device)
        for ply, a in enumerate(actions):
            single = game.step(single, a[i : i + 1])
            expected = states[ply + 1].index(i)
            for k, v in single.tensors().items():
                _require(
                    bool(torch.equal(v, getattr(expected, k))),
                    game,
                    f"board {i} played alone differs from the batch in field {k} at ply {ply + 1}",
                )


def _check_uniform_random_action(game: BoardGame, device: torch.device) -> None:
    """Draw many moves from the start position: every legal move must turn up, roughly evenly."""
    draws = 200 * game.num_actions
    state = game.init(draws, device=device)
    gen = torch.Generator(device=device).manual_seed(1)
    counts = torch.bincount(game.random_action(state, gen), minlength=game.num_actions).cpu()
    legal = game.legal_mask(state.index(0))[0].cpu()
    _require(bool((counts[~legal] == 0).all()), game, "random_action drew an illegal move")
    expected = draws / int(legal.sum())
    spread = (counts[legal].float() - expected).abs().max().item()
    _require(
        spread < 6 * expected**0.5 + 1,
        game,
        f"random_action is not uniform: counts {counts.tolist()}",
    )


def _check_illegal_and_finished(
    game: BoardGame, gen: torch.Generator, device: torch.device
) -> None:
    state = game.init(8, gen, device=device)
    mask = game.legal_mask(state)
    if not bool(mask.all()):
        illegal = (~mask).to(torch.uint8).argmax(dim=1)
        lost = game.step(state, illegal)
        _require(bool(lost.terminated.all()), game, "an illegal move did not end the game")
        _require(
            bool((lost.rewards[:, 0] == -1).all()),
            game,
            "an illegal move did not lose for the mover",
        )
        for k, v in state.tensors().items():
            if k not in ("terminated", "reward", "step_count"):
                _require(
                    bool(torch.equal(v, getattr(lost, k))),
                    game,
                    f"an illegal move changed field {k}",
                )
        again = game.step(lost, game.random_action(lost, gen))
        _require(bool((again.reward == 0).all()), game, "stepping a finished board gave a reward")
        for k, v in lost.tensors().items():
            if k != "reward":
                _require(
                    bool(torch.equal(v, getattr(again, k))),
                    game,
                    f"stepping a finished board changed {k}",
                )
    for bad in (torch.full((8,), -1), torch.full((8,), game.num_actions)):
        out = game.step(state, bad.to(device))
        _require(
            bool(out.terminated.all()), game, f"out-of-range action {int(bad[0])} was not a forfeit"
        )


def _check_rendering(game: BoardGame, state: State) -> None:
    text = game.render_text(state, 0)
    rows = text.splitlines()
    _require(len(rows) >= game.height, game, "render_text has fewer lines than the board has rows")
    img = game.render_rgb(state, 0)
    _require(
        img.dim() == 3 and img.shape[0] == 3 and img.dtype == torch.uint8,
        game,
        "render_rgb: [3, H, W] uint8",
    )
