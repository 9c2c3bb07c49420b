"""Does a network's search improve when its leaf values mix in random rollouts?

AlphaGo mixed its value network with a rollout's result at every leaf, ``lam * rollout +
(1 - lam) * network``. This plays a run's policy searching ``S`` simulations (Gumbel root
selection, its own prior) with such mixed leaf values against one opponent (the
``mcts:1000`` yardstick by default), from random 2-ply openings played from both seats:

    python scripts/experiments/mixed_values.py runs/quick --game connect_four \\
        --mix 0.5 --simulations 256 --games 40

``--mix 0`` is the network's own search (``RUN+search:S``); ``--mix 1`` keeps the prior and
takes values from rollouts alone. Prints one JSON line.
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
from rltransfer.play.players import player_for
from rltransfer.search import NetworkEvaluator, RolloutEvaluator, SearchConfig, search
from rltransfer.search.evaluators import Evaluation


class MixedEvaluator:
    """The network's prior, and ``mix`` x a rollout's value + (1 - mix) x the network's."""

    gives_priors = True

    def __init__(self, network: NetworkEvaluator, mix: float) -> None:
        self.network, self.rollouts, self.mix = network, RolloutEvaluator(), mix

    def evaluate(self, game: BoardGame, state: State, keys: Tensor, draw: int) -> Evaluation:
        net = self.network.evaluate(game, state, keys, draw)
        rolled = self.rollouts.evaluate(game, state, keys, draw)
        value = self.mix * rolled.value + (1.0 - self.mix) * net.value
        return Evaluation(value=value, logits=net.logits)


class MixedSearchPlayer:
    searches = True

    def __init__(self, evaluator: MixedEvaluator, simulations: int) -> None:
        self.evaluator = evaluator
        self.config = SearchConfig(simulations=simulations, rule="gumbel")
        self.name = f"mixed{evaluator.mix:g}:{simulations}"
        self.seconds = 0.0

    def act(self, game: BoardGame, state: State, generator: torch.Generator | None) -> Tensor:
        start = time.perf_counter()
        action = search(game, state, self.evaluator, self.config, generator).action
        self.seconds += time.perf_counter() - start
        return action


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run")
    p.add_argument("--game", required=True, help="task name or game id of the run")
    p.add_argument("--mix", type=float, default=0.5, help="rollouts' share of a leaf value")
    p.add_argument("--simulations", type=int, default=256)
    p.add_argument("--opponent", default="mcts:1000")
    p.add_argument("--games", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if not 0.0 <= args.mix <= 1.0:
        p.error(f"--mix must lie in [0, 1], got {args.mix}")
    torch.set_num_threads(1)
    policy = load_policy(args.run)
    game = policy.make_game(args.game)
    network = NetworkEvaluator(policy.net.eval(), policy.task(game))
    player = MixedSearchPlayer(MixedEvaluator(network, args.mix), args.simulations)
    opponent = player_for(args.opponent, game)
    gen = torch.Generator().manual_seed(args.seed)
    r = play_match(game, player, opponent, args.games, gen, opening_plies=2)
    print(json.dumps({
        "run": args.run, "game": args.game, "mix": args.mix, "simulations": args.simulations,
        "opponent": args.opponent, "games": r.games, "score": r.score,
        "ci": [r.ci_low, r.ci_high], "wins_draws_losses": [r.wins, r.draws, r.losses],
        "search_s": player.seconds,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
