"""Calibrate the ``mcts:S`` yardstick against OpenSpiel's ``MCTSBot`` with the same settings.

Same settings, checked in OpenSpiel's ``open_spiel/python/algorithms/mcts.py``:

* UCT: OpenSpiel's ``SearchNode.uct_value`` is ``Q + uct_c * sqrt(ln N_parent / n)`` with
  ``Q`` the mean return in the game's own scale; tic-tac-toe, Connect Four and Hex return
  -1 / 0 / +1, the scale of rltransfer's values, so ``uct_c = 2`` is our ``c = 2`` as is (no
  rescaling; on [0, 1] rewards the same exploration would be ``c = 1``).
* One random rollout per leaf (``RandomRolloutEvaluator(n_rollouts=1)``), the solver on
  (``solve=True``), the most visited move played after proven wins first (its sort key).
* Simulations: OpenSpiel's first simulation evaluates the root itself (a rollout whose
  result no move choice uses); ``mcts:S`` evaluates the root once too but does not count
  it, so ``mcts:S`` searches like ``MCTSBot(max_simulations=S + 1)``.
* OpenSpiel stops once the root is proven; ``mcts:S`` keeps searching (one batch moves
  together) and picks by the same order, so a proven root gives the same kind of move.

Games start from random 2-ply openings (uniform moves, one RNG), each played twice with
the seats swapped, so two searches that would replay one game do not. Both sides play all
their boards' moves at each ply: ``mcts:S`` as one batched search, OpenSpiel board by board.

    python scripts/calibrate_mcts.py --game tic_tac_toe --simulations 100 --games 400
    python scripts/calibrate_mcts.py --game connect_four --simulations 100 1000 --games 400
    python scripts/calibrate_mcts.py --game hex_7 --simulations 100 --games 400

``hex_7`` is Hex on a 7 x 7 board (OpenSpiel's ``hex(board_size=7)``). The random
rollouts of tic-tac-toe and Hex are fills of the board (``Game.fill_result``) and Connect
Four's run in its own bitboard loop (``Game.playout_result``): the calibration checks those
shortcuts against OpenSpiel's move-by-move rollouts too.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import numpy as np
import pyspiel
import torch
from open_spiel.python.algorithms import mcts as os_mcts
from torch import Tensor

from rltransfer.games import make
from rltransfer.games.connect_four import ConnectFour
from rltransfer.games.core import BoardGame, State
from rltransfer.games.hex import Hex
from rltransfer.play.evaluate import wilson_interval
from rltransfer.search import MCTSPlayer

#: The calibrated games: (our game id and options, OpenSpiel's name and parameters).
GAMES: dict[str, tuple[str, dict[str, int], str, dict[str, int]]] = {
    "tic_tac_toe": ("tic_tac_toe", {}, "tic_tac_toe", {}),
    "connect_four": ("connect_four", {}, "connect_four", {}),
    "hex_7": ("hex", {"size": 7}, "hex", {"board_size": 7}),
}


@dataclasses.dataclass
class Calibration:
    game: str
    simulations: int
    games: int
    wins: int
    draws: int
    losses: int
    score: float
    ci_low: float
    ci_high: float
    ours_ms_per_move: float  # wall time of the batched search / boards searched
    openspiel_ms_per_move: float


def to_openspiel(game: BoardGame, state: State, action: Tensor) -> list[int]:
    """Our actions [N] on ``state`` as OpenSpiel's actions (Connect Four: columns; Hex:
    board cells, where ours are in the mover's frame)."""
    if isinstance(game, ConnectFour):
        return game.action_to_column(action).tolist()
    if isinstance(game, Hex):
        return game.board_action(state, action).tolist()
    return action.tolist()


def to_ours(game: BoardGame, state: State, actions: list[int]) -> Tensor:
    """OpenSpiel's actions as our actions [N] on ``state``."""
    a = torch.tensor(actions, dtype=torch.int64)
    if isinstance(game, ConnectFour):
        return game.column_to_action(state, a)
    if isinstance(game, Hex):
        return game.view_action(state, a)
    return a


def calibrate(name: str, simulations: int, num_games: int, seed: int = 0) -> Calibration:
    """``mcts:simulations`` against OpenSpiel's bot over ``num_games`` games (even) of the
    game ``name`` (a key of ``GAMES``)."""
    if num_games % 2:
        raise ValueError(f"num_games must be even (each opening twice), got {num_games}")
    game_id, options, spiel_id, spiel_params = GAMES[name]
    game, spiel = make(game_id, **options), pyspiel.load_game(spiel_id, spiel_params)
    rng = np.random.RandomState(seed)
    ours = MCTSPlayer(simulations)
    bot = os_mcts.MCTSBot(
        spiel, uct_c=2.0, max_simulations=simulations + 1, solve=True, random_state=rng,
        evaluator=os_mcts.RandomRolloutEvaluator(n_rollouts=1, random_state=rng),
    )  # fmt: skip
    n = num_games
    state, spiel_states = _openings(game, spiel, n, rng)
    our_seat = torch.arange(n) % 2  # the two games of an opening: one per seat
    gen = torch.Generator().manual_seed(seed)
    times = {"ours": [0.0, 0], "openspiel": [0.0, 0]}
    final = torch.where(state.terminated, state.reward, 0.0)
    for _ in range(game.max_moves):
        live = ~state.terminated
        if not bool(live.any()):
            break
        mine = (live & (state.current_player == our_seat)).nonzero()[:, 0]
        theirs = (live & (state.current_player != our_seat)).nonzero()[:, 0]
        action = torch.zeros(n, dtype=torch.int64)
        if len(mine):
            start = time.perf_counter()
            action[mine] = ours.act(game, state.index(mine), gen)
            _tally(times["ours"], start, len(mine))
        if len(theirs):
            start = time.perf_counter()
            picked = [bot.step(spiel_states[i]) for i in theirs.tolist()]
            _tally(times["openspiel"], start, len(theirs))
            action[theirs] = to_ours(game, state.index(theirs), picked)
        spiel_actions = to_openspiel(game, state, action)
        for i in live.nonzero()[:, 0].tolist():
            spiel_states[i].apply_action(spiel_actions[i])
        before = state.terminated
        state = game.step(state, action, where=live)
        final = torch.where(state.terminated & ~before, state.reward, final)
    _check_same_results(spiel_states, final)
    outcome = final * (1.0 - 2.0 * our_seat.to(torch.float32))  # ours: +1 win
    wins, draws = int((outcome > 0).sum()), int((outcome == 0).sum())
    score = (wins + draws / 2) / n
    low, high = wilson_interval(score, n)
    return Calibration(
        name, simulations, n, wins, draws, n - wins - draws, score, low, high,
        *(1e3 * t / max(k, 1) for t, k in (times["ours"], times["openspiel"])),
    )  # fmt: skip


def _openings(
    game: BoardGame, spiel: pyspiel.Game, n: int, rng: np.random.RandomState
) -> tuple[State, list[pyspiel.State]]:
    """N boards after 2 uniformly random plies, the same opening on boards 2k and 2k+1."""
    state = game.init(n)
    spiel_states = [spiel.new_initial_state() for _ in range(n)]
    for _ in range(2):
        picked = []
        for k in range(0, n, 2):
            a = int(rng.choice(spiel_states[k].legal_actions()))
            picked += [a, a]
        for s, a in zip(spiel_states, picked, strict=True):
            s.apply_action(a)
        state = game.step(state, to_ours(game, state, picked))
    return state, spiel_states


def _tally(acc: list[float], start: float, boards: int) -> None:
    acc[0] += time.perf_counter() - start
    acc[1] += boards


def _check_same_results(spiel_states: list[pyspiel.State], final: Tensor) -> None:
    """Both implementations played the same moves: OpenSpiel's returns equal ours."""
    theirs = torch.tensor([s.returns()[0] if s.is_terminal() else 9.0 for s in spiel_states])
    if not torch.equal(theirs, final):
        raise RuntimeError("our boards and OpenSpiel's went apart: a move mapping bug")


def format_table(rows: list[Calibration]) -> str:
    lines = [
        "game          S     games  W/D/L (mcts:S)   score  95% CI          ms/move ours  "
        "ms/move OpenSpiel",
    ]
    for r in rows:
        lines.append(
            f"{r.game:<13} {r.simulations:<5} {r.games:<6} "
            f"{f'{r.wins}/{r.draws}/{r.losses}':<16} {r.score:.3f}  "
            f"[{r.ci_low:.3f}, {r.ci_high:.3f}]  {r.ours_ms_per_move:>12.1f}  "
            f"{r.openspiel_ms_per_move:>17.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--game", choices=GAMES, nargs="+", default=list(GAMES))
    p.add_argument("--simulations", type=int, nargs="+", default=[100])
    p.add_argument("--games", type=int, default=400, help="games per setting (even)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the rows to this file")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for game_id in args.game:
        for s in args.simulations:
            rows.append(calibrate(game_id, s, args.games, args.seed))
            print(format_table(rows[-1:]).splitlines()[1], flush=True)
    print("\n" + format_table(rows))
    print("\ncommand: python " + " ".join(sys.argv))
    if args.json:
        with open(args.json, "w") as f:
            json.dump([dataclasses.asdict(r) for r in rows], f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
