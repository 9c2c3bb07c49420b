"""The search on a GPU equals the search on the CPU (``-m gpu``; deselected by default).

Random numbers are per-board integer hashes (``rltransfer.search.noise``), identical on
both devices, and rollouts play the same games (stepped, filled, or in Connect Four's own
loop, all integer ops); only UCT's float ``log`` / ``sqrt`` could differ in the last bit,
which matters only at an exact tie.
"""

from __future__ import annotations

import pytest
import torch

from rltransfer.games import make
from rltransfer.net.policy import NetConfig, PolicyNet, TaskShape
from rltransfer.search import NetworkEvaluator, RolloutEvaluator, SearchConfig, search

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize(
    ("game_id", "options"),
    [("connect_four", {}), ("hex", {"size": 7}), ("gomoku", {"size": 9})],  # Hex, Gomoku: fills
)
def test_rollout_search_on_cuda_equals_the_cpu(game_id: str, options: dict[str, int]) -> None:
    game = make(game_id, **options)
    gen = torch.Generator().manual_seed(0)
    state = game.init(64)
    for _ in range(4):
        state = game.step(state, game.random_action(state, gen))
    keys = torch.randint(0, 2**32, (64,), generator=gen)
    config = SearchConfig(simulations=64)
    cpu = search(game, state, RolloutEvaluator(), config, keys=keys)
    cuda = search(game, state.to("cuda"), RolloutEvaluator(), config, keys=keys.cuda())
    assert torch.equal(cpu.action, cuda.action.cpu())
    assert torch.equal(cpu.visits, cuda.visits.cpu())


def test_gumbel_network_search_on_cuda_matches_the_cpu() -> None:
    game = make("connect_four")
    cfg = NetConfig(
        channels=8, blocks=1, policy_channels=4, value_channels=4, value_hidden=8, groups=2
    )
    torch.manual_seed(0)
    net = PolicyNet({"c4": TaskShape.of(game)}, cfg).eval()
    state = game.init(32)
    keys = torch.arange(32)
    config = SearchConfig(simulations=32, rule="gumbel")
    cpu = search(game, state, NetworkEvaluator(net, "c4"), config, keys=keys)
    cuda_net = NetworkEvaluator(net.cuda(), "c4")
    cuda = search(game, state.to("cuda"), cuda_net, config, keys=keys.cuda())
    assert (cpu.action == cuda.action.cpu()).float().mean() >= 0.9  # float nets differ a little
    torch.testing.assert_close(cpu.policy, cuda.policy.cpu(), atol=1e-3, rtol=0)
