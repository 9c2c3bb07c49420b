"""Domain confusion (a game classifier behind a gradient reversal) and the game probe."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch
from tiny import tiny_config, train_interrupted

from rltransfer.games import make
from rltransfer.learn.confusion import GameClassifier, game_probe, reverse_gradient
from rltransfer.learn.training import build_session, resume, train
from rltransfer.net.policy import PolicyNet, TaskShape
from rltransfer.runs.checkpoint import checkpoint_dir, load_trainer, load_weights
from rltransfer.runs.metrics import (
    DIAGNOSTICS_CLASSIFIER_ACCURACY,
    DIAGNOSTICS_GAME_PROBE,
    DIAGNOSTICS_GAME_PROBE_RANDOM,
    read_scalars,
)
from rltransfer.specs.config import ConfigError, NetConfig

CONFUSE = ("ppo.confusion_coef=0.5",)


def test_the_reversal_is_the_identity_forward_and_minus_lambda_backward() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    y = reverse_gradient(x, 0.25)
    assert torch.equal(y, x)
    (y * torch.arange(3.0)).sum().backward()
    assert torch.equal(x.grad, -0.25 * torch.arange(3.0).expand(4, 3))


def test_the_classifier_learns_to_tell_games_apart_while_the_trunk_is_pushed_the_other_way() -> (
    None
):
    torch.manual_seed(0)
    classifier = GameClassifier(["a", "b"], channels=4)
    features = {t: torch.randn(8, 4, 3, 3, requires_grad=True) for t in ("a", "b")}
    loss, accuracy = classifier.loss(features, coef=0.5)
    loss.backward()
    grads = {t: f.grad.clone() for t, f in features.items()}
    classifier.zero_grad()
    for f in features.values():
        f.grad = None
    plain = torch.nn.functional.cross_entropy(
        classifier.linear(torch.cat([f.mean(dim=(2, 3)) for f in features.values()])),
        torch.tensor([0] * 8 + [1] * 8),
    )
    plain.backward()
    assert torch.allclose(loss, plain) and 0.0 <= float(accuracy) <= 1.0
    for t, f in features.items():  # the features get minus lambda times the plain gradient
        assert torch.allclose(grads[t], -0.5 * f.grad)


def test_the_probe_reads_game_differences_not_task_names() -> None:
    """Two tasks of one game, with the same stem: no probe can tell them apart; board size
    alone makes two games easy to tell apart, even for a random trunk."""
    torch.manual_seed(0)
    ttt = make("tic_tac_toe")
    net = PolicyNet({"x": TaskShape.of(ttt), "y": TaskShape.of(ttt)}, NetConfig(channels=8))
    net.stems["y"].load_state_dict(net.stems["x"].state_dict())
    same = game_probe(net, {"x": ttt, "y": ttt}, torch.Generator().manual_seed(0))
    assert 0.3 <= same <= 0.7
    hex7 = make("hex", size=7)
    net = PolicyNet({"ttt": TaskShape.of(ttt), "hex": TaskShape.of(hex7)}, NetConfig(channels=8))
    apart = game_probe(net, {"ttt": ttt, "hex": hex7}, torch.Generator().manual_seed(0))
    assert apart >= 0.75  # far above the 0.5 of chance, with random weights


def test_a_run_with_confusion_logs_it_and_resumes_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = train(
        tiny_config(tmp_path, name="whole", overrides=CONFUSE), tmp_path / "runs", quiet=True
    )
    scalars = read_scalars(whole)
    assert len(scalars[DIAGNOSTICS_CLASSIFIER_ACCURACY]) == 3  # one per iteration
    assert [s for s, _ in scalars[DIAGNOSTICS_GAME_PROBE_RANDOM]] == [0]
    assert len(scalars[DIAGNOSTICS_GAME_PROBE]) == 4  # step 0 and every evaluation
    assert "classifier" in load_trainer(checkpoint_dir(whole))
    cut = train_interrupted(
        tiny_config(tmp_path, name="cut", overrides=CONFUSE), tmp_path / "runs", monkeypatch,
        signum=signal.SIGTERM,
    )  # fmt: skip
    resume(cut, quiet=True)
    a, b = load_weights(checkpoint_dir(whole)), load_weights(checkpoint_dir(cut))
    assert all(torch.equal(a[k], b[k]) for k in a)
    ta, tb = load_trainer(checkpoint_dir(whole)), load_trainer(checkpoint_dir(cut))
    for k, v in ta["classifier"].items():
        assert torch.equal(v, tb["classifier"][k])


def test_confusion_changes_the_trunk_and_needs_two_games(tmp_path: Path) -> None:
    plain = build_session(tiny_config(tmp_path), tmp_path / "a")
    confused = build_session(tiny_config(tmp_path, overrides=CONFUSE), tmp_path / "b")
    assert plain.classifier is None and confused.classifier is not None
    assert [g["name"] for g in confused.optimizer.param_groups][-1] == "game_classifier"
    with pytest.raises(ConfigError, match="two or more games"):
        from rltransfer.specs.config import GameSpec, SuiteSpec, make_train_config

        one = SuiteSpec(name="one", games=(GameSpec("tic_tac_toe", num_envs=8),))
        build_session(make_train_config(suite=one, overrides=list(CONFUSE)), tmp_path / "c")


def test_the_confusion_loss_reaches_the_update_through_the_trunk_reversed(tmp_path: Path) -> None:
    """With plain SGD and no clipping: the classifier moves, and the trunk's step with
    confusion equals the step without plus minus lambda times the classifier's own
    gradient of its loss through the trunk."""
    import copy

    from rltransfer.learn.update import make_batch, ppo_update
    from rltransfer.specs.config import PPOConfig

    cfg = tiny_config(tmp_path, overrides=CONFUSE)
    session = build_session(cfg, tmp_path / "s")
    rollouts = {k: c.collect(session.net, None) for k, c in session.collectors.items()}
    ppo = PPOConfig(num_steps=4, num_minibatches=1, update_epochs=1, max_grad_norm=1e9,
                    confusion_coef=0.5, learning_rate=0.1)  # fmt: skip
    batches = {k: make_batch(r, ppo) for k, r in rollouts.items()}

    def step(
        coef: float, with_classifier: bool
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        net, clf = copy.deepcopy(session.net), copy.deepcopy(session.classifier)
        assert clf is not None
        params = [*net.parameters(), *clf.parameters()]
        sgd = torch.optim.SGD(params, lr=0.1)
        cfg_k = PPOConfig(**{**ppo.__dict__, "confusion_coef": coef})
        ppo_update(net, sgd, batches, {}, cfg_k, torch.Generator().manual_seed(0),
                   clf if with_classifier else None)  # fmt: skip
        return net.trunk.state_dict(), clf.state_dict()

    before = session.net.trunk.state_dict()
    plain, clf_plain = step(0.5, with_classifier=False)
    half, clf_half = step(0.5, with_classifier=True)
    one, _ = step(1.0, with_classifier=True)
    assert any(not torch.equal(clf_half[k], clf_plain[k]) for k in clf_plain)  # it learns
    for k in before:
        if not before[k].is_floating_point():
            continue
        d_half, d_one = half[k] - plain[k], one[k] - plain[k]
        torch.testing.assert_close(d_one, 2 * d_half, rtol=1e-3, atol=1e-7)  # linear in lambda
    assert any(float((half[k] - plain[k]).abs().max()) > 0 for k in before)  # it reaches the trunk
