"""GAE: the vectorised recursion equals an independent scalar reference, and known cases."""

from __future__ import annotations

import pytest
import torch

from rltransfer.learn.advantage import gae


def reference_gae(
    rewards: list[list[float]],
    values: list[list[float]],
    dones: list[list[bool]],
    next_value: list[float],
    gamma: float,
    gae_lambda: float,
) -> list[list[float]]:
    """The forward-sum definition, one board and one step at a time (no recursion):
    A[t] = sum_l (gamma * lambda)^l * delta[t + l], stopping after the step that ends the
    episode, or at the end of the rollout."""
    num_steps, num_envs = len(rewards), len(rewards[0])
    advantages = [[0.0] * num_envs for _ in range(num_steps)]
    for n in range(num_envs):
        for t in range(num_steps):
            total, weight = 0.0, 1.0
            for k in range(t, num_steps):
                v_next = next_value[n] if k == num_steps - 1 else values[k + 1][n]
                bootstrap = 0.0 if dones[k][n] else gamma * v_next
                total += weight * (rewards[k][n] + bootstrap - values[k][n])
                if dones[k][n]:
                    break
                weight *= gamma * gae_lambda
            advantages[t][n] = total
    return advantages


def random_rollout(
    num_steps: int, num_envs: int, dtype: torch.dtype, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randint(-1, 2, (num_steps, num_envs), generator=g).to(dtype)
    rewards += 0.1 * torch.randn(num_steps, num_envs, generator=g, dtype=dtype)
    values = torch.rand(num_steps, num_envs, generator=g, dtype=dtype) * 2 - 1
    dones = torch.rand(num_steps, num_envs, generator=g) < 0.25
    next_value = torch.rand(num_envs, generator=g, dtype=dtype) * 2 - 1
    return rewards, values, dones, next_value


@pytest.mark.parametrize(
    ("gamma", "gae_lambda"), [(0.99, 0.95), (0.9, 0.5), (1.0, 1.0), (0.97, 1.0), (0.9, 0.0)]
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gae_matches_scalar_reference(gamma: float, gae_lambda: float, seed: int) -> None:
    rewards, values, dones, next_value = random_rollout(13, 7, torch.float64, seed)
    advantages, returns = gae(rewards, values, dones, next_value, gamma, gae_lambda)
    expected = reference_gae(
        rewards.tolist(), values.tolist(), dones.tolist(), next_value.tolist(), gamma, gae_lambda
    )
    torch.testing.assert_close(advantages, torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(returns, advantages + values)


def test_gae_lambda_one_is_monte_carlo_return_within_finished_episodes() -> None:
    rewards, values, dones, next_value = random_rollout(20, 5, torch.float64, seed=3)
    dones[-1] = True  # every episode ends inside the batch: no bootstrap anywhere
    gamma = 0.9
    _, returns = gae(rewards, values, dones, next_value, gamma, gae_lambda=1.0)
    for n in range(5):
        running = 0.0
        for t in reversed(range(20)):
            running = rewards[t, n].item() + (0.0 if dones[t, n] else gamma * running)
            assert returns[t, n].item() == pytest.approx(running, abs=1e-12)


def test_gae_lambda_zero_is_one_step_td() -> None:
    rewards, values, dones, next_value = random_rollout(9, 4, torch.float64, seed=4)
    gamma = 0.95
    advantages, _ = gae(rewards, values, dones, next_value, gamma, gae_lambda=0.0)
    next_values = torch.cat([values[1:], next_value[None]])
    td = rewards + gamma * next_values * (~dones) - values
    torch.testing.assert_close(advantages, td)


def test_gae_hand_computed_three_steps() -> None:
    # Board 0: win on the last decision (done), next_value ignored.
    # Board 1: episode ends after step 0; steps 1-2 bootstrap from next_value = 0.5.
    rewards = torch.tensor([[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    values = torch.tensor([[0.5, 0.2], [0.6, -0.1], [0.7, 0.3]], dtype=torch.float64)
    dones = torch.tensor([[False, True], [False, False], [True, False]])
    next_value = torch.tensor([0.9, 0.5], dtype=torch.float64)
    advantages, returns = gae(rewards, values, dones, next_value, gamma=0.9, gae_lambda=0.5)
    # Board 0: deltas 0.04, 0.03, 0.3;  A2 = 0.3, A1 = 0.03 + 0.45 * 0.3, A0 = 0.04 + 0.45 * A1
    # Board 1: deltas 0.8, 0.37, 0.15; A2 = 0.15, A1 = 0.37 + 0.45 * 0.15, A0 = 0.8 (cut)
    expected = torch.tensor([[0.11425, 0.8], [0.165, 0.4375], [0.3, 0.15]], dtype=torch.float64)
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(
        returns, torch.tensor([[0.61425, 1.0], [0.765, 0.3375], [1.0, 0.45]], dtype=torch.float64)
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("float_dones", [False, True])
def test_gae_preserves_shape_and_dtype(dtype: torch.dtype, float_dones: bool) -> None:
    rewards, values, dones, next_value = random_rollout(6, 3, dtype, seed=5)
    done_flags = dones.to(dtype) if float_dones else dones
    advantages, returns = gae(rewards, values, done_flags, next_value, 0.99, 0.95)
    assert advantages.shape == returns.shape == (6, 3)
    assert advantages.dtype == returns.dtype == dtype
    reference, _ = gae(rewards.double(), values.double(), dones, next_value.double(), 0.99, 0.95)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(advantages.double(), reference, atol=tolerance, rtol=tolerance)


def test_gae_rejects_mismatched_shapes() -> None:
    rewards, values, dones, next_value = random_rollout(4, 3, torch.float32, seed=6)
    with pytest.raises(ValueError, match="rewards"):
        gae(rewards[:, :2], values, dones, next_value, 0.99, 0.95)
    with pytest.raises(ValueError, match="next_value"):
        gae(rewards, values, dones, next_value[:, None], 0.99, 0.95)
    with pytest.raises(ValueError, match="gae_lambda"):
        gae(rewards, values, dones, next_value, 0.99, 1.5)
