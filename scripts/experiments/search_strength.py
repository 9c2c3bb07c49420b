"""How much stronger a trained policy plays when it searches: one run, several search
budgets S, against one opponent (the ``mcts:1000`` yardstick by default), from random
2-ply openings played from both seats, with the milliseconds per move of both sides.

    python scripts/experiments/search_strength.py runs/quick --game connect_four \\
        --searches 0 16 64 256 --opponent mcts:1000 --games 200 --json strength.json

S = 0 is the network alone (its most probable move); S > 0 searches S simulations with
its prior and value (Gumbel root selection). A move's time is the wall time of the
player's batched calls divided by the moves it made on live boards, so it is the cost per
move *at this batch size* (half the games: one seat), not the latency of one lone board.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import Tensor

from rltransfer.games.core import BoardGame, State
from rltransfer.inference import load_policy
from rltransfer.play.evaluate import play_match
from rltransfer.play.players import Player, player_for, run_player


class Timed:
    """A player that keeps the wall time of its calls and the moves it made."""

    def __init__(self, player: Player) -> None:
        self.player, self.name = player, player.name
        self.seconds, self.moves = 0.0, 0

    def act(self, game: BoardGame, state: State, generator: torch.Generator | None) -> Tensor:
        start = time.perf_counter()
        action = self.player.act(game, state, generator)
        if action.is_cuda:
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - start
        self.moves += int((~state.terminated).sum())
        return action

    @property
    def ms_per_move(self) -> float:
        return 1000 * self.seconds / max(self.moves, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run")
    p.add_argument("--game", required=True, help="task name or game id of the run")
    p.add_argument("--searches", type=int, nargs="+", default=[0, 16, 64, 256])
    p.add_argument("--opponent", default="mcts:1000")
    p.add_argument("--games", type=int, default=200)
    p.add_argument("--openings", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(1)
    game = load_policy(args.run).make_game(args.game)
    rows = []
    print("S    score  95% CI          W/D/L        ms/move (net)  ms/move (opponent)")
    for s in args.searches:
        player = Timed(run_player(args.run, game, sample=False, simulations=s or None))
        opponent = Timed(player_for(args.opponent, game))
        gen = torch.Generator().manual_seed(args.seed)
        r = play_match(game, player, opponent, args.games, gen, opening_plies=args.openings)
        row = {
            "simulations": s, "opponent": args.opponent, "games": r.games, "score": r.score,
            "ci_low": r.ci_low, "ci_high": r.ci_high, "wins": r.wins, "draws": r.draws,
            "losses": r.losses, "ms_per_move": player.ms_per_move,
            "opponent_ms_per_move": opponent.ms_per_move,
        }  # fmt: skip
        rows.append(row)
        print(
            f"{s:<4} {r.score:.3f}  [{r.ci_low:.3f}, {r.ci_high:.3f}]  "
            f"{r.wins}/{r.draws}/{r.losses:<6}  {player.ms_per_move:13.2f}  "
            f"{opponent.ms_per_move:18.2f}",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"run": args.run, "game": args.game, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
