"""``train.compile``: the compiled loop gives the eager loop's results (issue 12).

The compiled functions are real ``torch.compile`` (Inductor) graphs on the CPU; CUDA is
covered by ``scripts/gpu_check.sh`` where a GPU is lent.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import torch
from tiny import tiny_config
from torch.distributions import Categorical

from rltransfer.cli import main
from rltransfer.games import make
from rltransfer.learn.collector import GameCollector, Rollout
from rltransfer.learn.compiled import Compiler
from rltransfer.learn.update import make_batch, ppo_update
from rltransfer.net.policy import NetConfig, PolicyNet, TaskShape, action_noise
from rltransfer.specs.config import (
    COMPILE_MODES,
    ConfigError,
    PPOConfig,
    SelfPlayConfig,
    resume_config,
)

CFG = NetConfig(channels=8, blocks=1, policy_channels=4, value_channels=4, value_hidden=8, groups=2)
MIX = SelfPlayConfig(self=0.5, snapshot=0.0, random=0.5, greedy=0.0)
PPO = PPOConfig(num_steps=6, num_minibatches=2, update_epochs=2)


def _net(seed: int = 0, device: str = "cpu") -> PolicyNet:
    game = make("tic_tac_toe")
    torch.manual_seed(seed)
    return PolicyNet({"ttt": TaskShape.of(game)}, CFG).to(device)


def _collect(net: PolicyNet, compiler: Compiler, seed: int = 3) -> Rollout:
    device = next(net.parameters()).device
    gen = torch.Generator(device).manual_seed(seed)
    collector = GameCollector(
        "ttt", make("tic_tac_toe"), 16, PPO.num_steps, MIX, device, gen, compiler
    )
    return collector.collect(net, None)


def _assert_same_rollout(a: Rollout, b: Rollout) -> None:
    for name in ("obs", "masks", "actions", "rewards", "dones"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    for name in ("logprobs", "values", "next_value"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=1e-5)


@pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None,
    reason="torch.compile on the CPU needs a C++ compiler",
)
def test_compiled_collection_and_update_equal_the_eager_ones() -> None:
    _check_compiled_equals_eager("cpu", "default")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_compiled_equals_eager_on_cuda(mode: str) -> None:
    _check_compiled_equals_eager("cuda", mode)


def _check_compiled_equals_eager(device: str, mode: str) -> None:
    net = _net(device=device)
    eager = _collect(net, Compiler("off"))
    compiler = Compiler(mode)
    compiled = _collect(net, compiler)
    _assert_same_rollout(eager, compiled)
    # the comparison can fail: another stream of noise samples other moves
    assert not torch.equal(eager.actions, _collect(net, Compiler("off"), seed=4).actions)

    nets = {m: copy.deepcopy(net) for m in ("off", mode)}
    weights = {}
    for m, n in nets.items():
        # plain SGD: Adam would blow rounding noise in gradients that are zero in exact
        # arithmetic (the policy's output bias: a shift of every logit) up to step size
        opt = torch.optim.SGD(n.parameters(), lr=0.5)
        batch = {"ttt": make_batch(eager, PPO)}
        gen = torch.Generator(device).manual_seed(5)
        c = compiler if m != "off" else Compiler("off")
        stats = ppo_update(n, opt, batch, {"ttt": 1.0}, PPO, gen, compiler=c)
        assert stats["epochs"] == PPO.update_epochs
        weights[m] = {k: v.detach().clone() for k, v in n.state_dict().items()}
    moved = max((weights["off"][k] - net.state_dict()[k]).abs().max() for k in weights["off"])
    assert moved > 1e-3  # the update changed the weights, so equal weights mean something
    for k, v in weights["off"].items():
        torch.testing.assert_close(weights[mode][k], v, rtol=0, atol=1e-5, msg=k)


def test_action_noise_up_front_samples_what_act_samples() -> None:
    """``act`` draws its noise first, from the same generator, so the pure
    ``act_with_noise`` (what the compiled actor runs) reproduces it exactly."""
    net, game = _net(), make("tic_tac_toe")
    state = game.init(32)
    for _ in range(3):
        state = game.step(state, game.random_action(state, torch.Generator().manual_seed(1)))
    obs, mask = game.observe(state), game.legal_mask(state)
    a = net.act("ttt", obs, mask, torch.Generator().manual_seed(9))
    gen = torch.Generator().manual_seed(9)
    b = net.act_with_noise("ttt", obs, mask, action_noise(mask, gen))
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    assert bool(mask.gather(1, a[0][:, None]).all())  # legal moves only


def test_policy_terms_equal_the_categorical_distribution() -> None:
    net, game = _net(), make("tic_tac_toe")
    state = game.step(game.init(8), torch.arange(8))
    obs, mask = game.observe(state), game.legal_mask(state)
    actions = torch.multinomial(mask.float(), 1, generator=torch.Generator().manual_seed(0))[:, 0]
    features = net.features("ttt", obs)
    logp, entropy, value = net.policy_terms("ttt", features, mask, actions)
    dist, value_ref = net.distribution_of("ttt", features, mask)
    torch.testing.assert_close(logp, dist.log_prob(actions))
    torch.testing.assert_close(entropy, dist.entropy())
    torch.testing.assert_close(value, value_ref)
    # the mask matters: without it the played cells would carry probability
    logits, _ = net.heads("ttt", features)
    assert not torch.allclose(entropy, Categorical(logits=logits).entropy())


def test_compiler_off_hands_back_the_game_and_eager_functions() -> None:
    game = make("connect_four")
    assert Compiler("off").game(game) is game
    fast = Compiler("default").game(game)
    assert fast is not game and type(fast) is type(game) and repr(fast) == repr(game)
    with pytest.raises(ValueError, match="compile mode must be one of"):
        Compiler("fast")


def test_the_compile_setting_is_checked_and_may_change_on_resume(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"train\.compile must be one of off, default"):
        tiny_config(tmp_path, overrides=("train.compile=fast",))
    cfg = tiny_config(tmp_path)
    assert cfg.train.compile == "off"
    resumed, changed = resume_config(cfg, ["train.compile=default"])
    assert resumed.train.compile == "default"
    assert changed == {"train.compile": ("off", "default")}
    assert set(COMPILE_MODES) >= {"off", "default", "reduce-overhead"}


def test_the_search_learner_refuses_compile(tmp_path: Path) -> None:
    from rltransfer.learn.session import build_session

    cfg = tiny_config(tmp_path, overrides=("train.algorithm=alphazero", "train.compile=default"))
    with pytest.raises(ConfigError, match="alphazero' runs uncompiled"):
        build_session(cfg, tmp_path / "run")


def test_bench_train_refuses_an_unknown_compile_mode(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench-train", "--compile", "off,turbo"])
    assert "expected comma-separated modes among off, default" in capsys.readouterr().err
