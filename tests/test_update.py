"""The multitask PPO update: per-game advantage normalisation, per-game loss weights, and the
whole update against a from-scratch reference (plain SGD on the weighted sum of per-game PPO
losses over mixed minibatches), on fake two-game rollouts with fixed random tensors.

Parameters and rollouts are float64 (the net still returns float32 logits and values), so
parameter steps can be compared to 1e-6 of the largest step."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping

import pytest
import torch
from torch import Tensor, nn

from rltransfer.games import make
from rltransfer.learn.collector import Rollout
from rltransfer.learn.update import NonFiniteLossError, make_batch, ppo_update
from rltransfer.net.policy import NetConfig, PolicyNet, TaskShape
from rltransfer.specs.config import AdvNorm, PPOConfig

GAMES = {"ttt": "tic_tac_toe", "c4": "connect_four"}
T, N = 4, 3  # rollout steps and boards per game: 12 samples
NET = NetConfig(channels=4, blocks=1, policy_channels=2, value_channels=2, value_hidden=4, groups=2)
LR = 0.1
# one plain step on the whole batch, no clipping: the parameter step is -LR * gradient
ONE_STEP = PPOConfig(update_epochs=1, num_minibatches=1, max_grad_norm=1e9)
Steps = dict[str, Tensor]


def make_net(seed: int = 0) -> PolicyNet:
    torch.manual_seed(seed)
    return PolicyNet({k: TaskShape.of(make(g)) for k, g in GAMES.items()}, NET).double()


def policy(net: nn.Module, task: str, obs: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
    """(log-probabilities [B, A], value [B]); illegal actions get a huge negative logit."""
    logits, value = net(task, obs)
    return torch.log_softmax(torch.where(masks, logits, -1e9), dim=1), value


def fake_rollout(net: PolicyNet, task: str, seed: int, scale: float = 1.0) -> Rollout:
    """Random observations, legal masks and actions; old log-probs near the net's (so some
    ratios clip); rewards, values and the bootstrap value multiplied by ``scale``, so the
    raw advantages and returns are ``scale`` times those of ``scale = 1``."""
    game, g = make(GAMES[task]), torch.Generator().manual_seed(seed)
    ro = Rollout.empty(game, T, N, torch.device("cpu"))
    for name in ("obs", "logprobs", "values", "rewards", "next_value"):
        setattr(ro, name, getattr(ro, name).double())
    a = game.num_actions
    f64 = torch.float64
    ro.obs.copy_(torch.randn(ro.obs.shape, generator=g, dtype=f64))
    some_legal = torch.randint(a, (T, N), generator=g)
    ro.masks.copy_((torch.rand(T, N, a, generator=g) < 0.5) | nn.functional.one_hot(some_legal, a))
    legal = ro.masks.flatten(0, 1).float()
    ro.actions.copy_(torch.multinomial(legal, 1, generator=g).view(T, N))
    with torch.no_grad():
        logp, _ = policy(net, task, ro.obs.flatten(0, 1), ro.masks.flatten(0, 1))
    chosen = logp.gather(1, ro.actions.view(-1, 1)).view(T, N)
    ro.logprobs.copy_(chosen + 0.3 * torch.randn(T, N, generator=g, dtype=f64))
    ro.values.copy_((torch.rand(T, N, generator=g, dtype=f64) * 1.8 - 0.9) * scale)
    ro.rewards.copy_(torch.randn(T, N, generator=g, dtype=f64) * scale)
    ro.dones.copy_(torch.rand(T, N, generator=g) < 0.3)
    ro.next_value.copy_((torch.rand(N, generator=g, dtype=f64) * 1.8 - 0.9) * scale)
    return ro


def rollouts(net: PolicyNet, c4_scale: float = 1.0) -> dict[str, Rollout]:
    return {"ttt": fake_rollout(net, "ttt", 1), "c4": fake_rollout(net, "c4", 2, c4_scale)}


# ---------------------------------------------------------------------------- reference
def reference_advantages(ro: Rollout, gamma: float, gae_lambda: float) -> Tensor:
    """GAE's forward-sum definition, one board and one step at a time: [T * N], t-major."""
    adv = torch.zeros(T, N, dtype=torch.float64)
    for n in range(N):
        for t in range(T):
            total, weight = 0.0, 1.0
            for k in range(t, T):
                v_next = float(ro.next_value[n] if k == T - 1 else ro.values[k + 1, n])
                bootstrap = 0.0 if ro.dones[k, n] else gamma * v_next
                total += weight * (float(ro.rewards[k, n]) + bootstrap - float(ro.values[k, n]))
                if ro.dones[k, n]:
                    break
                weight *= gamma * gae_lambda
            adv[t, n] = total
    return adv.flatten()


def standardize(x: Tensor) -> Tensor:
    return (x - x.mean()) / (x.std(correction=0) + 1e-8)


def reference_loss(
    net: nn.Module, task: str, ro: Rollout, cfg: PPOConfig, weight: float, idx: Tensor
) -> tuple[Tensor, dict[str, float]]:
    """``weight`` times PPO's loss on samples ``idx`` of game ``task``, from scratch."""
    raw = reference_advantages(ro, cfg.gamma, cfg.gae_lambda)
    returns, old_value = (raw + ro.values.flatten())[idx], ro.values.flatten()[idx]
    adv = (standardize(raw) if cfg.adv_norm == "game" else raw)[idx]
    if cfg.adv_norm == "minibatch":
        adv = standardize(adv)
    logp, value = policy(net, task, ro.obs.flatten(0, 1)[idx], ro.masks.flatten(0, 1)[idx])
    logratio = logp.gather(1, ro.actions.flatten()[idx, None])[:, 0] - ro.logprobs.flatten()[idx]
    ratio, eps = logratio.exp(), cfg.clip_coef
    pg = torch.max(-adv * ratio, -adv * ratio.clamp(1 - eps, 1 + eps)).mean()
    v_loss = (value - returns) ** 2
    if cfg.clip_vloss:
        v_clipped = old_value + (value - old_value).clamp(-eps, eps)
        v_loss = torch.max(v_loss, (v_clipped - returns) ** 2)
    v = 0.5 * v_loss.mean()
    entropy = -(logp.exp() * logp).sum(1).mean()
    stats = {
        "policy": pg.item(),
        "value": v.item(),
        "entropy": entropy.item(),
        "approx_kl": (ratio - 1 - logratio).mean().item(),
        "clipfrac": ((ratio - 1).abs() > eps).double().mean().item(),
    }
    return weight * (pg - cfg.ent_coef * entropy + cfg.vf_coef * v), stats


def reference_update(
    net: PolicyNet,
    ros: Mapping[str, Rollout],
    weights: Mapping[str, float],
    cfg: PPOConfig,
    seed: int,
) -> tuple[PolicyNet, dict[str, float]]:
    """SGD steps on ``sum_g weight_g * loss_g`` over minibatches; the shuffles are drawn as
    the update draws them (per epoch, one permutation per game in batch order), which is
    what makes a resumed run repeat its updates."""
    assert cfg.target_kl is None
    ref, gen = copy.deepcopy(net), torch.Generator().manual_seed(seed)
    sums: dict[str, float] = {}
    for _ in range(cfg.update_epochs):
        splits = {k: torch.randperm(T * N, generator=gen) for k in ros}
        for mb in range(cfg.num_minibatches):
            ref.zero_grad()
            total = torch.zeros(())
            for k, ro in ros.items():
                idx = splits[k].tensor_split(cfg.num_minibatches)[mb]
                loss, stats = reference_loss(ref, k, ro, cfg, weights[k], idx)
                total = total + loss
                for name, value in stats.items():
                    sums[f"{k}/{name}"] = sums.get(f"{k}/{name}", 0.0) + value
            total.backward()
            with torch.no_grad():
                for p in ref.parameters():
                    assert p.grad is not None
                    p.sub_(LR * p.grad)
    count = cfg.update_epochs * cfg.num_minibatches
    return ref, {k: v / count for k, v in sums.items()}


# --------------------------------------------------------------------------- helpers
def run_update(
    net: PolicyNet,
    ros: Mapping[str, Rollout],
    weights: Mapping[str, float],
    cfg: PPOConfig,
    seed: int = 0,
    adam: bool = False,
) -> tuple[PolicyNet, dict[str, float]]:
    """``make_batch`` + ``ppo_update`` on a copy of ``net`` (SGD at LR, or Adam)."""
    net = copy.deepcopy(net)
    opt = (
        torch.optim.Adam(net.parameters(), lr=1e-2)
        if adam
        else torch.optim.SGD(net.parameters(), lr=LR)
    )
    batches = {k: make_batch(ro, cfg) for k, ro in ros.items()}
    gen = torch.Generator().manual_seed(seed)
    return net, ppo_update(net, opt, batches, weights, cfg, gen)


def steps(before: nn.Module, after: nn.Module) -> Steps:
    start = dict(before.named_parameters())
    return {k: (p - start[k]).detach() for k, p in after.named_parameters()}


def own(task: str, s: Steps) -> Steps:
    """The steps of one game's stem and heads."""
    parts = (f"stems.{task}.", f"policy_heads.{task}.", f"value_heads.{task}.")
    return {k: v for k, v in s.items() if k.startswith(parts)}


def trunk(s: Steps) -> Steps:
    return {k: v for k, v in s.items() if k.startswith("trunk.")}


def assert_steps_close(a: Steps, b: Steps, rtol: float = 1e-6) -> None:
    """Equal to ``rtol`` of the largest step: some parameters, like the logits' shared
    bias (softmax ignores a shift), get no gradient, only rounding noise."""
    assert a.keys() == b.keys() and a
    atol = rtol * max(float(v.abs().max()) for v in b.values())
    torch.testing.assert_close(a, b, rtol=rtol, atol=atol)  # names the parameter that differs


# ------------------------------------------------------------ advantage normalisation
@pytest.mark.parametrize("adv_norm", ["game", "minibatch", "none"])
def test_make_batch_flattens_the_rollout_with_reference_advantages(adv_norm: AdvNorm) -> None:
    """Sample i = t * N + n everywhere; returns are the raw advantages plus the values in
    every mode; only "game" normalises the batch's advantages ("minibatch" leaves it to
    ``ppo_loss``)."""
    cfg = PPOConfig(adv_norm=adv_norm)
    net = make_net()
    ro = fake_rollout(net, "c4", 2)
    b = make_batch(ro, cfg)
    raw = reference_advantages(ro, cfg.gamma, cfg.gae_lambda)
    assert len(b) == T * N
    assert torch.equal(b.obs[N + 2], ro.obs[1, 2]) and torch.equal(b.masks[N + 2], ro.masks[1, 2])
    for name in ("actions", "logprobs", "values"):
        assert torch.equal(getattr(b, name), getattr(ro, name).flatten()), name
    torch.testing.assert_close(b.returns, raw + ro.values.flatten())
    torch.testing.assert_close(b.advantages, standardize(raw) if adv_norm == "game" else raw)


def test_game_norm_gives_each_game_mean_0_std_1_whatever_its_scale() -> None:
    net = make_net()
    small, big = fake_rollout(net, "ttt", 1, scale=1e-3), fake_rollout(net, "c4", 2, scale=1e3)
    raw = PPOConfig(adv_norm="none")
    assert make_batch(big, raw).advantages.std() > 1e5 * make_batch(small, raw).advantages.std()
    for ro in (small, big):
        adv = make_batch(ro, PPOConfig(adv_norm="game")).advantages
        assert abs(float(adv.mean())) < 1e-5
        assert abs(float(adv.std(correction=0)) - 1.0) < 1e-4


@pytest.mark.parametrize("adv_norm", ["game", "minibatch"])
def test_a_games_step_does_not_scale_with_its_rewards_when_normalised(adv_norm: AdvNorm) -> None:
    """Connect Four's rewards, values and bootstrap at 1e-2 and at 1e2: the whole update is
    the same. (The value loss regresses the raw returns, which scale by design: vf_coef 0.)"""
    cfg = dataclasses.replace(ONE_STEP, adv_norm=adv_norm, vf_coef=0.0, num_minibatches=2)
    net = make_net()
    weights = {"ttt": 1.0, "c4": 1.0}
    small, _ = run_update(net, rollouts(net, c4_scale=1e-2), weights, cfg)
    big, _ = run_update(net, rollouts(net, c4_scale=1e2), weights, cfg)
    assert_steps_close(steps(net, big), steps(net, small))


def test_without_normalisation_a_games_step_scales_with_its_rewards() -> None:
    """adv_norm "none", no value or entropy term: the policy gradient is linear in the
    advantages, so 1e4 times the rewards is 1e4 times Connect Four's own step, and
    tic-tac-toe's own step does not move."""
    cfg = dataclasses.replace(ONE_STEP, adv_norm="none", vf_coef=0.0, ent_coef=0.0)
    net = make_net()
    weights = {"ttt": 1.0, "c4": 1.0}
    small, _ = run_update(net, rollouts(net, c4_scale=1e-2), weights, cfg)
    big, _ = run_update(net, rollouts(net, c4_scale=1e2), weights, cfg)
    s_small, s_big = steps(net, small), steps(net, big)
    assert_steps_close(own("c4", s_big), {k: 1e4 * v for k, v in own("c4", s_small).items()})
    assert_steps_close(own("ttt", s_big), own("ttt", s_small))


def test_one_minibatch_normalised_per_minibatch_is_normalised_per_game() -> None:
    net = make_net()
    ros, weights = rollouts(net, c4_scale=30.0), {"ttt": 1.0, "c4": 1.0}
    game, _ = run_update(net, ros, weights, ONE_STEP)
    minibatch, _ = run_update(
        net, ros, weights, dataclasses.replace(ONE_STEP, adv_norm="minibatch")
    )
    assert_steps_close(steps(net, minibatch), steps(net, game))


# ------------------------------------------------------------------------ loss weights
def test_zero_weight_freezes_the_game_and_the_rest_is_a_one_game_update() -> None:
    """Adam and gradient clipping as in training; Connect Four first in the batches, so its
    shuffle is the same draw from the generator with or without tic-tac-toe."""
    cfg = PPOConfig(update_epochs=1, num_minibatches=2)
    net = make_net()
    ros = rollouts(net)
    ros = {"c4": ros["c4"], "ttt": ros["ttt"]}
    both, _ = run_update(net, ros, {"c4": 1.0, "ttt": 0.0}, cfg, adam=True)
    alone, _ = run_update(net, {"c4": ros["c4"]}, {"c4": 1.0}, cfg, adam=True)
    s_both, s_alone = steps(net, both), steps(net, alone)
    assert all(not v.any() for v in own("ttt", s_both).values())
    assert all(v.any() for v in own("c4", s_both).values())
    want = {**trunk(s_alone), **own("c4", s_alone)}
    torch.testing.assert_close({k: s_both[k] for k in want}, want, rtol=1e-12, atol=1e-15)


def test_doubling_a_weight_doubles_its_gradient_contribution() -> None:
    """With plain SGD the step is linear in the gradient: the step at weights (2, 1) minus
    the step at (1, 1) is tic-tac-toe's step alone, (1, 0); its own stem and heads move
    twice as far."""
    net = make_net()
    ros = rollouts(net)
    s = {
        w: steps(net, run_update(net, ros, {"ttt": w[0], "c4": w[1]}, ONE_STEP)[0])
        for w in ((2.0, 1.0), (1.0, 1.0), (1.0, 0.0))
    }
    diff = {k: s[2.0, 1.0][k] - s[1.0, 1.0][k] for k in s[1.0, 1.0]}
    assert_steps_close(trunk(diff), trunk(s[1.0, 0.0]))
    assert_steps_close(
        own("ttt", s[2.0, 1.0]), {k: 2 * v for k, v in own("ttt", s[1.0, 1.0]).items()}
    )
    assert_steps_close(own("c4", s[2.0, 1.0]), own("c4", s[1.0, 1.0]))


# ---------------------------------------------------------------- the whole update
@pytest.mark.parametrize("adv_norm", ["game", "minibatch", "none"])
@pytest.mark.parametrize(("epochs", "minibatches"), [(1, 1), (2, 3)])
def test_update_is_sgd_on_the_weighted_sum_of_per_game_losses(
    adv_norm: AdvNorm, epochs: int, minibatches: int
) -> None:
    cfg = PPOConfig(
        adv_norm=adv_norm,
        update_epochs=epochs,
        num_minibatches=minibatches,
        max_grad_norm=1e9,
    )
    net = make_net()
    ros, weights = rollouts(net, c4_scale=5.0), {"ttt": 2.0, "c4": 0.5}
    got, stats = run_update(net, ros, weights, cfg, seed=7)
    want, want_stats = reference_update(net, ros, weights, cfg, seed=7)
    assert_steps_close(steps(net, got), steps(net, want))
    assert stats["epochs"] == epochs
    for key, value in want_stats.items():
        assert stats[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    for name in ("policy", "value", "entropy", "approx_kl", "clipfrac"):
        mean = (stats[f"ttt/{name}"] + stats[f"c4/{name}"]) / 2
        assert stats[f"mean/{name}"] == pytest.approx(mean), name


def test_every_sample_is_in_exactly_one_minibatch_per_epoch() -> None:
    """Each sample carries its index in its first plane; the stems record what they see.
    Every optimiser step runs every game, in batch order."""
    cfg = PPOConfig(update_epochs=3, num_minibatches=5)
    net = make_net()
    ros = rollouts(net)
    seen: list[tuple[str, Tensor]] = []
    for k, ro in ros.items():
        ro.obs[:, :, 0, 0, 0] = torch.arange(T * N).view(T, N)
        net.stems[k].register_forward_pre_hook(
            lambda _m, args, k=k: seen.append((k, args[0][:, 0, 0, 0].long()))
        )
    batches = {k: make_batch(ro, cfg) for k, ro in ros.items()}
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    stats = ppo_update(net, opt, batches, {}, cfg, torch.Generator().manual_seed(0))
    assert stats["epochs"] == 3
    assert [k for k, _ in seen] == ["ttt", "c4"] * (3 * 5)
    for k in GAMES:
        mbs = [idx for task, idx in seen if task == k]
        orders = [torch.cat(mbs[e * 5 : (e + 1) * 5]) for e in range(3)]
        assert sorted(len(i) for i in mbs[:5]) == [2, 2, 2, 3, 3]
        for order in orders:
            assert torch.equal(order.sort().values, torch.arange(T * N))
        assert not torch.equal(orders[0], orders[1])  # shuffled again each epoch


@pytest.mark.parametrize("where", ["reward", "obs"])
def test_non_finite_loss_raises_before_any_parameter_changes(where: str) -> None:
    net = make_net()
    ros = rollouts(net)
    if where == "reward":  # GAE carries it back, normalisation spreads it over the game
        ros["c4"].rewards[T - 1, 0] = float("nan")
    else:
        ros["ttt"].obs.fill_(float("inf"))
    after = copy.deepcopy(net)
    opt = torch.optim.Adam(after.parameters(), lr=1e-2)
    batches = {k: make_batch(ro, PPOConfig()) for k, ro in ros.items()}
    with pytest.raises(NonFiniteLossError, match="minibatch 0"):
        ppo_update(after, opt, batches, {}, PPOConfig(), torch.Generator().manual_seed(0))
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), after.parameters(), strict=True))
    assert not opt.state


def test_target_kl_stops_after_the_epoch_whose_mean_kl_exceeds_it() -> None:
    """The first epoch's mean approx_kl over games and minibatches decides: a target just
    below it stops after one epoch, one just above does not."""
    net = make_net()
    ros = rollouts(net)

    def epochs(target_kl: float | None) -> tuple[float, float]:
        cfg = PPOConfig(update_epochs=4, num_minibatches=2, target_kl=target_kl)
        _, stats = run_update(net, ros, {}, cfg, adam=True)
        return stats["epochs"], stats["mean/approx_kl"]

    assert epochs(None)[0] == 4 and epochs(1e6)[0] == 4
    n, first_kl = epochs(1e-9)
    assert n == 1 and first_kl > 1e-3
    assert epochs(first_kl * 0.999)[0] == 1
    assert epochs(first_kl * 1.001)[0] > 1
