"""Training end to end: run folder, TensorBoard events, checkpoints, resume, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny import PER_ITERATION, SUITE, TINY, tiny_config, train_interrupted

import rltransfer
from rltransfer.cli import main
from rltransfer.learn import compiled
from rltransfer.learn.training import TrainingError, resume, train
from rltransfer.runs.checkpoint import CheckpointError, load_weights
from rltransfer.runs.metrics import load_events, read_scalars
from rltransfer.specs.config import ConfigError


def test_training_writes_a_complete_run(tmp_path: Path) -> None:
    path = train(tiny_config(tmp_path), tmp_path / "runs", quiet=True)
    assert path == tmp_path / "runs" / "run"
    assert (path / "config.toml").is_file()
    ckpt = path / "checkpoints" / "latest"
    assert {p.name for p in ckpt.iterdir()} == {"model.safetensors", "meta.json", "trainer.pt"}
    meta = json.loads((ckpt / "meta.json").read_text())
    assert (
        meta["global_step"] == 3 * PER_ITERATION and meta["versions"]["torch"] == torch.__version__
    )
    torch.load(ckpt / "trainer.pt", weights_only=True)  # no pickled objects in there
    evaluation = json.loads((path / "eval.json").read_text())
    assert set(evaluation["games"]) == {"tic_tac_toe", "othello_size6"}
    result = evaluation["games"]["othello_size6"]["random"]
    assert result["games"] == 8 and 0 <= result["score"] <= 1

    scalars = read_scalars(path)
    for tag in [
        "games/tic_tac_toe/score_vs_random",
        "games/othello_size6/win_rate_vs_greedy",
        "games/tic_tac_toe/episode_length",  # othello games outlast 12 decisions
        "games/tic_tac_toe/approx_kl",
        "losses/policy",
        "losses/value",
        "losses/entropy",
        "losses/approx_kl",
        "losses/clipfrac",
        "losses/explained_variance",
        "charts/sps",
        "charts/learning_rate",
        "charts/moves",
    ]:
        assert tag in scalars, f"missing tag {tag}"
        assert all(v == v and abs(v) != float("inf") for _, v in scalars[tag]), tag
    steps = [s for s, _ in scalars["charts/sps"]]
    assert steps == [PER_ITERATION, 2 * PER_ITERATION, 3 * PER_ITERATION]
    # evaluation before training is the first point of the score curve
    assert scalars["games/tic_tac_toe/score_vs_random"][0][0] == 0
    lr = [v for _, v in scalars["charts/learning_rate"]]
    assert lr[0] > lr[1] > lr[2] > 0  # annealed
    events = load_events(path)
    assert "config/text_summary" in events.Tags()["tensors"]
    assert any(t.startswith("boards/") for t in events.Tags()["images"])


def test_existing_run_dir_is_refused(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, iterations=1)
    train(cfg, tmp_path / "runs", quiet=True)
    with pytest.raises(ConfigError, match=r"already exists.*--resume.*--overwrite"):
        train(cfg, tmp_path / "runs", quiet=True)
    train(cfg, tmp_path / "runs", quiet=True, overwrite=True)


def test_resume_makes_the_same_next_update(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = train(tiny_config(tmp_path, name="whole"), tmp_path / "runs", quiet=True)

    cut = train_interrupted(tiny_config(tmp_path, name="cut"), tmp_path / "runs", monkeypatch)
    assert json.loads((cut / "checkpoints/latest/meta.json").read_text())["iteration"] == 2
    resume(cut, quiet=True)

    a = load_weights(whole / "checkpoints" / "latest")
    b = load_weights(cut / "checkpoints" / "latest")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"
    # TensorBoard: the resumed run continues its curves without doubled points
    steps = [s for s, _ in read_scalars(cut)["charts/sps"]]
    assert steps == sorted(set(steps)) == [PER_ITERATION, 2 * PER_ITERATION, 3 * PER_ITERATION]
    assert read_scalars(cut)["losses/policy"] == read_scalars(whole)["losses/policy"]


def test_nan_loss_stops_and_keeps_last_good_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_loss = compiled.ppo_loss  # task_loss's, which the update calls per game
    calls = {"n": 0}

    def poison_once(*args: Any, **kwargs: Any) -> Any:
        # one finite loss whose gradient is NaN: the optimizer step then turns weights and
        # Adam's moments into NaN, and the next minibatch's loss is NaN
        calls["n"] += 1
        loss, stats = real_loss(*args, **kwargs)
        if calls["n"] == 21:
            loss = loss + torch.sqrt(0 * args[0].sum())
        return loss, stats

    monkeypatch.setattr(compiled, "ppo_loss", poison_once)
    with pytest.raises(TrainingError, match=r"non-finite loss.*last good weights") as info:
        train(tiny_config(tmp_path, iterations=4), tmp_path / "runs", quiet=True)
    assert "--resume" in str(info.value)
    ckpt = tmp_path / "runs" / "run" / "checkpoints" / "latest"
    weights = load_weights(ckpt)
    assert all(bool(torch.isfinite(w).all()) for w in weights.values())
    adam = torch.load(ckpt / "trainer.pt", weights_only=True)["optimizer"]["state"]
    assert adam and all(bool(torch.isfinite(t).all()) for st in adam.values() for t in st.values())


def test_corrupt_and_incompatible_checkpoints_are_named(tmp_path: Path) -> None:
    path = train(tiny_config(tmp_path, iterations=1), tmp_path / "runs", quiet=True)
    ckpt = path / "checkpoints" / "latest"
    (ckpt / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match=r"model\.safetensors: cannot read weights"):
        rltransfer.load_policy(path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        rltransfer.load_policy(tmp_path / "nowhere")

    other = train(tiny_config(tmp_path, iterations=1, name="b"), tmp_path / "runs", quiet=True)
    cfg = (other / "config.toml").read_text().replace("channels = 8", "channels = 16")
    (other / "config.toml").write_text(cfg)
    with pytest.raises(CheckpointError, match=r"do not fit this network.*checkpoint \[8"):
        resume(other, quiet=True)


def test_load_policy_acts_legally(tmp_path: Path) -> None:
    path = train(tiny_config(tmp_path, iterations=1), tmp_path / "runs", quiet=True)
    policy = rltransfer.load_policy(path)
    assert policy.games == ["tic_tac_toe", "othello_size6"]
    game = policy.make_game("othello")  # a unique game id works too
    state = game.init(64)
    for _ in range(6):
        mask = game.legal_mask(state)
        action = policy.act("othello", game.observe(state), mask)
        assert bool(mask.gather(1, action[:, None]).all())
        state = game.step(state, action)
    with pytest.raises(KeyError, match="no policy for 'hex'"):
        policy.act("hex", torch.zeros(1, 2, 7, 7), torch.ones(1, 49, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"obs must be \[N, 3, 6, 6\]"):
        policy.act("othello", torch.zeros(1, 2, 6, 6), torch.ones(1, 37, dtype=torch.bool))


def test_training_with_a_perfect_opponent_evaluates_it_where_it_plays(tmp_path: Path) -> None:
    cfg = tiny_config(
        tmp_path,
        iterations=1,
        overrides=("selfplay.perfect=0.5", 'train.eval_opponents=["random", "perfect"]'),
    )
    path = rltransfer.train(cfg, tmp_path / "runs", quiet=True)
    games = json.loads((path / "eval.json").read_text())["games"]
    assert set(games["tic_tac_toe"]) == {"random", "perfect"}
    assert set(games["othello_size6"]) == {"random"}
    assert games["tic_tac_toe"]["perfect"]["wins"] == 0  # nobody beats it
    tags = read_scalars(path)
    assert "games/tic_tac_toe/win_rate_vs_train_perfect" in tags
    assert "games/othello_size6/score_vs_perfect" not in tags


def test_cli_train_and_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE)
    args = ["train", "--suite", str(suite), "--steps", str(PER_ITERATION), "--device", "cpu"]
    args += ["--name", "cli", "--run-dir", str(tmp_path / "runs"), "--quiet"]
    for item in TINY:
        args += ["--set", item]
    assert main(args) == 0
    assert main(args) == 2  # exists: refused with a clear message
    assert "already exists" in capsys.readouterr().err
    run = str(tmp_path / "runs" / "cli")
    opponents = ["--opponent", "random", "greedy", "perfect"]
    assert (
        main(["eval", run, "--game", "tic_tac_toe", *opponents, "--games", "20", "--device", "cpu"])
        == 0
    )
    out = capsys.readouterr().out
    assert "tic_tac_toe" in out and "random" in out and "greedy" in out and "perfect" in out
    assert main(["eval", run, "--opponent", run, "--games", "10", "--device", "cpu"]) == 0
    assert "run:cli" in capsys.readouterr().out
    # all games vs perfect: only tic-tac-toe has a perfect player; named, othello is an error
    assert main(["eval", run, "--opponent", "perfect", "--games", "10", "--device", "cpu"]) == 0
    rows = capsys.readouterr().out.splitlines()[3:]
    assert [r.split()[:2] for r in rows] == [["tic_tac_toe", "perfect"]]
    only_othello = ["--game", "othello_size6", "--opponent", "perfect", "--device", "cpu"]
    assert main(["eval", run, *only_othello]) == 2
    assert "perfect opponent cannot play othello" in capsys.readouterr().err
    assert main(["train", "--suite", "classic", "--set", "ppo.lr=1"]) == 2
    assert "unknown key(s) ['lr']" in capsys.readouterr().err


def test_public_api_names_stay_functions_after_every_submodule_is_imported() -> None:
    import importlib
    import pkgutil

    for mod in pkgutil.walk_packages(rltransfer.__path__, "rltransfer."):
        if mod.name.startswith(("rltransfer._presets", "rltransfer.__main__")):
            continue
        importlib.import_module(mod.name)
    for name in ("train", "resume", "load_policy", "make", "make_train_config"):
        assert callable(getattr(rltransfer, name)), name
