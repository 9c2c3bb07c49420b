"""The multitask network: masking, per-board independence, any board size."""

from __future__ import annotations

import pytest
import torch

from rltransfer.games import available_games, make
from rltransfer.net.policy import NetConfig, PolicyNet, TaskShape, masked_logits, sample_logits

CFG = NetConfig(channels=8, blocks=1, policy_channels=4, value_channels=4, value_hidden=8, groups=2)


def _net(*game_ids: str) -> tuple[PolicyNet, dict[str, object]]:
    games = {g: make(g) for g in game_ids}
    return PolicyNet({k: TaskShape.of(g) for k, g in games.items()}, CFG), games


@pytest.mark.parametrize("game_id", available_games())
def test_illegal_actions_get_probability_exactly_zero(game_id: str) -> None:
    torch.manual_seed(0)
    game = make(game_id)
    net = PolicyNet({game_id: TaskShape.of(game)}, CFG)
    gen = torch.Generator().manual_seed(0)
    state = game.init(32, gen)
    for _ in range(5):
        state = game.step(state, game.random_action(state, gen))
    mask = game.legal_mask(state)
    dist, value = net.distribution(game_id, game.observe(state), mask)
    assert dist.probs.shape == mask.shape
    assert bool((dist.probs[~mask] == 0).all())
    assert torch.allclose(dist.probs.sum(1), torch.ones(32))
    assert bool(torch.isfinite(dist.entropy()).all())
    assert bool((value.abs() <= 1).all())
    action, logprob, _ = net.act(game_id, game.observe(state), mask, gen)
    assert bool(mask.gather(1, action[:, None]).all())
    assert torch.allclose(logprob, dist.log_prob(action), atol=1e-5)


def test_masked_logits_use_finite_minimum_not_inf() -> None:
    logits = torch.zeros(2, 3)
    mask = torch.tensor([[True, False, False], [True, True, True]])
    out = masked_logits(logits, mask)
    assert bool(torch.isfinite(out).all())
    assert out[0, 1] == torch.finfo(torch.float32).min


def test_output_of_a_board_does_not_depend_on_the_batch() -> None:
    torch.manual_seed(0)
    net, _ = _net("connect_four")
    obs = torch.rand(16, 2, 6, 7).round()
    logits_all, value_all = net("connect_four", obs)
    logits_one, value_one = net("connect_four", obs[3:4])
    assert torch.allclose(logits_all[3:4], logits_one, atol=1e-6)
    assert torch.allclose(value_all[3:4], value_one, atol=1e-6)


def test_shared_trunk_and_per_game_heads() -> None:
    net, _ = _net("tic_tac_toe", "othello", "hex")
    assert set(net.stems) == set(net.policy_heads) == {"tic_tac_toe", "othello", "hex"}
    logits, value = net("othello", torch.zeros(5, 3, 8, 8))
    assert logits.shape == (5, 65) and value.shape == (5,)  # 64 cells + pass
    logits, _ = net("hex", torch.zeros(5, 2, 9, 9))
    assert logits.shape == (5, 81)
    # one trunk for all games: one block of two convs and two GroupNorms (weight, bias)
    assert sum(1 for n, _ in net.named_parameters() if n.startswith("trunk.")) == 6


def test_heads_work_on_other_board_sizes() -> None:
    small = make("othello", size=6)
    net = PolicyNet({"othello": TaskShape.of(small)}, CFG)
    big = make("othello", size=8)
    state = big.init(4)
    logits, _ = net("othello", big.observe(state))
    assert logits.shape == (4, big.num_actions)


def test_unknown_task_is_named() -> None:
    net, _ = _net("tic_tac_toe")
    with pytest.raises(KeyError, match=r"no task 'chess'.*tic_tac_toe"):
        net("chess", torch.zeros(1, 2, 3, 3))


def test_gumbel_sampling_matches_the_distribution() -> None:
    logits = torch.log(torch.tensor([[0.1, 0.6, 0.3, 0.0]])).expand(40_000, 4)
    gen = torch.Generator().manual_seed(0)
    counts = torch.bincount(sample_logits(masked_logits(logits, logits > -1e9), gen), minlength=4)
    freq = counts.float() / counts.sum()
    assert torch.allclose(freq, torch.tensor([0.1, 0.6, 0.3, 0.0]), atol=0.01)
    assert counts[3] == 0


def test_bfloat16_precision_matches_float32_closely_and_keeps_illegal_moves_at_zero() -> None:
    game = make("othello", size=6)
    task = {"oth": TaskShape.of(game)}
    torch.manual_seed(0)
    full = PolicyNet(task, NetConfig(channels=16, blocks=2))
    low = PolicyNet(task, NetConfig(channels=16, blocks=2, precision="bfloat16"))
    low.load_state_dict(full.state_dict())
    state = game.init(64)
    obs, mask = game.observe(state), game.legal_mask(state)
    (lf, vf), (lb, vb) = full("oth", obs), low("oth", obs)
    assert lb.dtype == vb.dtype == torch.float32  # outputs in float32 for the losses
    assert not torch.equal(lf, lb)  # bfloat16 did run
    assert torch.allclose(lf, lb, atol=0.05) and torch.allclose(vf, vb, atol=0.05)
    dist, _ = low.distribution("oth", obs, mask)
    assert bool((dist.probs[~mask] == 0).all())
    # gradients flow to float32 weights
    (lb.sum() + vb.sum()).backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in low.trunk.parameters())


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match=r"net\.precision must be one of"):
        NetConfig(precision="float16")
