"""PPO loss: each term's maths, its gradients where clipping matters, and a tiny learning check."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.distributions import Categorical

from rltransfer.learn.ppo import PPOConfig, explained_variance, linear_lr, normalize, ppo_loss

NO_NORM = PPOConfig(adv_norm="none")


def loss_inputs(b: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    old_logprob = -torch.rand(b, generator=g) * 2
    old_value = torch.rand(b, generator=g) * 2 - 1
    advantages = torch.randn(b, generator=g)
    return {
        "new_logprob": old_logprob.clone().requires_grad_(True),
        "old_logprob": old_logprob,
        "advantages": advantages,
        "entropy": torch.rand(b, generator=g),
        "new_value": old_value.clone().requires_grad_(True),
        "old_value": old_value,
        "returns": advantages + old_value,
    }


@pytest.mark.parametrize("adv_norm", ["none", "game"])
def test_ratio_one_policy_loss_is_minus_mean_advantage(adv_norm: str) -> None:
    x = loss_inputs()
    cfg = PPOConfig(adv_norm=adv_norm)  # type: ignore[arg-type]  # str from parametrize
    _, stats = ppo_loss(**x, cfg=cfg)
    torch.testing.assert_close(stats["policy"], -x["advantages"].mean())
    assert stats["clipfrac"].item() == 0.0


def test_clipped_samples_get_no_policy_gradient() -> None:
    clip = NO_NORM.clip_coef
    old_logprob = torch.full((4,), -1.0)
    # ratios: 1.5 (A>0, clipped), 0.5 (A<0, clipped), 1.5 (A<0: NOT clipped, pessimistic),
    # 1.1 (A>0, inside the trust region)
    ratios = torch.tensor([1.5, 0.5, 1.5, 1.1])
    new_logprob = (old_logprob + ratios.log()).requires_grad_(True)
    advantages = torch.tensor([10.0, -10.0, -10.0, 10.0])
    zeros = torch.zeros(4)
    loss, stats = ppo_loss(
        new_logprob, old_logprob, advantages, zeros, zeros, zeros, zeros, cfg=NO_NORM
    )
    loss.backward()
    assert new_logprob.grad is not None
    # d(-A * r)/d logp = -A * r / B where unclipped; exactly 0 where the clip is active.
    expected_grad = torch.tensor([0.0, 0.0, 10.0 * 1.5 / 4, -10.0 * 1.1 / 4])
    torch.testing.assert_close(new_logprob.grad, expected_grad)
    expected_policy = -(10 * (1 + clip) - 10 * (1 - clip) - 10 * 1.5 + 10 * 1.1) / 4
    torch.testing.assert_close(stats["policy"], torch.tensor(expected_policy))
    assert stats["clipfrac"].item() == 0.75


def test_value_loss_takes_the_larger_of_clipped_and_unclipped_error() -> None:
    clip = NO_NORM.clip_coef
    old_value = torch.tensor([0.0, 0.0])
    new_value = torch.tensor([0.9, 0.1], requires_grad=True)
    returns = torch.tensor([1.0, -0.5])
    zeros = torch.zeros(2)
    _, stats = ppo_loss(zeros, zeros, zeros, zeros, new_value, old_value, returns, cfg=NO_NORM)
    # Sample 0: unclipped error 0.1^2, clipped (value 0.2) error 0.8^2 -> the clipped one.
    # Sample 1: |0.1| < clip, both errors 0.6^2.
    expected = 0.5 * ((1.0 - clip) ** 2 + 0.6**2) / 2
    torch.testing.assert_close(stats["value"], torch.tensor(expected))
    cfg = dataclasses.replace(NO_NORM, clip_vloss=False)
    _, stats = ppo_loss(zeros, zeros, zeros, zeros, new_value, old_value, returns, cfg=cfg)
    torch.testing.assert_close(stats["value"], torch.tensor(0.5 * (0.1**2 + 0.6**2) / 2))


def test_approx_kl_is_zero_for_equal_policies_and_positive_otherwise() -> None:
    x = loss_inputs()
    _, stats = ppo_loss(**x, cfg=NO_NORM)
    assert stats["approx_kl"].item() == 0.0
    logratio = torch.linspace(-0.3, 0.3, 8)
    x["new_logprob"] = (x["old_logprob"] + logratio).requires_grad_(True)
    _, stats = ppo_loss(**x, cfg=NO_NORM)
    expected = ((logratio.exp() - 1) - logratio).mean()
    assert stats["approx_kl"].item() > 0.0
    torch.testing.assert_close(stats["approx_kl"], expected)


def test_minibatch_normalisation_gives_zero_mean_unit_std_advantages() -> None:
    x = loss_inputs(b=16)
    x["advantages"] = x["advantages"] * 5 + 3
    loss, stats = ppo_loss(**x, cfg=PPOConfig(adv_norm="minibatch", ent_coef=0.0, vf_coef=0.0))
    # At ratio 1 the policy loss is -mean(normalised advantages) = 0 ...
    assert abs(stats["policy"].item()) < 1e-6
    # ... and its gradient w.r.t. each log-prob is -normalised_advantage / B.
    loss.backward()
    assert x["new_logprob"].grad is not None
    effective = -x["new_logprob"].grad * 16
    assert abs(effective.mean().item()) < 1e-6
    assert effective.std(correction=0).item() == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(effective, normalize(x["advantages"]))


def test_normalize_constant_and_single_inputs_are_finite() -> None:
    assert torch.equal(normalize(torch.tensor([2.0])), torch.tensor([0.0]))
    assert torch.equal(normalize(torch.full((3,), 7.0)), torch.zeros(3))


def test_total_loss_combines_terms_and_weight_scales_it() -> None:
    x = loss_inputs()
    cfg = PPOConfig(adv_norm="none", ent_coef=0.02, vf_coef=0.7)
    x["new_logprob"] = (x["old_logprob"] + 0.1).requires_grad_(True)
    x["new_value"] = (x["old_value"] + 0.05).requires_grad_(True)
    loss, stats = ppo_loss(**x, cfg=cfg)
    combined = stats["policy"] - 0.02 * stats["entropy"] + 0.7 * stats["value"]
    torch.testing.assert_close(loss.detach(), combined)
    weighted, weighted_stats = ppo_loss(**x, cfg=cfg, weight=3.0)
    torch.testing.assert_close(weighted.detach(), 3.0 * loss.detach())
    assert weighted_stats["policy"].item() == stats["policy"].item()  # stats are unweighted


def test_stats_are_detached_scalars() -> None:
    _, stats = ppo_loss(**loss_inputs(), cfg=NO_NORM)
    assert set(stats) == {"policy", "value", "entropy", "approx_kl", "clipfrac"}
    for value in stats.values():
        assert value.shape == () and not value.requires_grad


def test_mismatched_shapes_are_rejected() -> None:
    x = loss_inputs()
    x["new_value"] = x["new_value"][:, None]  # [B, 1] against [B] would broadcast to [B, B]
    with pytest.raises(ValueError, match="new_value"):
        ppo_loss(**x, cfg=NO_NORM)


def test_a_few_ppo_steps_raise_the_advantaged_action_within_the_trust_region() -> None:
    torch.manual_seed(0)
    logits = torch.zeros(3, requires_grad=True)
    actions = torch.arange(3).repeat(20)  # 60 samples, each action alike
    old_logprob = Categorical(logits=logits.detach()).log_prob(actions)
    advantages = (actions == 0).float()  # only action 0 was better than expected
    zeros = torch.zeros(actions.shape)
    cfg = PPOConfig(adv_norm="none", ent_coef=0.0)
    # Plain SGD: it stops where the gradient is 0 (Adam's momentum would coast past the clip).
    optimizer = torch.optim.SGD([logits], lr=0.2)
    for _ in range(40):
        dist = Categorical(logits=logits.expand(len(actions), 3))
        loss, stats = ppo_loss(
            dist.log_prob(actions), old_logprob, advantages, dist.entropy(),
            zeros, zeros, zeros, cfg=cfg,
        )  # fmt: skip
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    p0 = torch.softmax(logits.detach(), 0)[0].item()
    assert p0 > 1 / 3 + 0.03  # the better action gained probability ...
    assert p0 < (1 / 3) * (1 + cfg.clip_coef) + 0.02  # ... but not much past the clip
    assert stats["clipfrac"].item() > 0.0


def test_linear_lr() -> None:
    cfg = PPOConfig(learning_rate=1e-3)
    assert linear_lr(cfg, 1, 10) == 1e-3
    assert linear_lr(cfg, 10, 10) == pytest.approx(1e-4)
    assert linear_lr(cfg, 6, 10) == pytest.approx(5e-4)
    constant = PPOConfig(learning_rate=1e-3, anneal_lr=False)
    assert linear_lr(constant, 7, 10) == 1e-3
    with pytest.raises(ValueError, match="iteration"):
        linear_lr(cfg, 0, 10)
    with pytest.raises(ValueError, match="iteration"):
        linear_lr(cfg, 11, 10)


def test_explained_variance() -> None:
    returns = torch.tensor([1.0, -1.0, 0.5, 0.0])
    assert explained_variance(returns, returns) == 1.0
    assert explained_variance(torch.full((4,), returns.mean().item()), returns) == 0.0
    assert explained_variance(-returns, returns) == pytest.approx(-3.0)
    assert math.isnan(explained_variance(returns, torch.ones(4)))


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="adv_norm"):
        PPOConfig(adv_norm="batch")  # type: ignore[arg-type]  # the point of the test
    with pytest.raises(ValueError, match="num_minibatches"):
        PPOConfig(num_minibatches=0)
    with pytest.raises(ValueError, match="gae_lambda"):
        PPOConfig(gae_lambda=1.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        PPOConfig().gamma = 0.5  # type: ignore[misc]  # frozen on purpose
