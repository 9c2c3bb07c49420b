"""``rltransfer export``: the ONNX graph gives the PyTorch policy's masked logits and value
at any batch size, says what it expects in its metadata, and refuses unclear requests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from tiny import TINY

from rltransfer.cli import main
from rltransfer.inference import load_policy
from rltransfer.interop.export import DEFAULT_OPSET, export_onnx
from rltransfer.learn.training import train
from rltransfer.net.policy import masked_logits
from rltransfer.specs.config import make_train_config

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

THREE_GAMES = """
[[games]]
id = "tic_tac_toe"
name = "ttt_a"
num_envs = 4
[[games]]
id = "tic_tac_toe"
name = "ttt_b"
num_envs = 4
[[games]]
id = "othello"
options = { size = 6 }
num_envs = 4
"""
ONE_GAME = '[[games]]\nid = "connect_four"\nnum_envs = 4\n'


def _train(tmp: Path, name: str, suite: str) -> Path:
    """A run of one training iteration on ``suite`` (about a second)."""
    path = tmp / f"{name}.toml"
    path.write_text(suite)
    quick = ["train.eval_games=2", "train.final_eval_games=2", 'train.eval_opponents=["random"]']
    overrides = [*TINY, *quick]
    cfg = make_train_config(
        suite=str(path), agent="ppo_small", overrides=overrides, name=name, total_steps=1
    )
    return train(cfg, tmp / "runs", quiet=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("export")
    return {"three": _train(tmp, "three", THREE_GAMES), "one": _train(tmp, "one", ONE_GAME)}


def _boards(run: Path, task: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Observations and legal masks of ``n`` real positions (a few random moves in)."""
    game = load_policy(run).make_game(task)
    gen = torch.Generator().manual_seed(n)
    state = game.init(n)
    for _ in range(3):
        state = game.step(state, game.random_action(state, gen))
    return game.observe(state), game.legal_mask(state)


@pytest.mark.parametrize("task", ["ttt_b", "othello_size6"])  # no pass / a pass action
def test_onnx_gives_the_pytorch_policy_at_any_batch_size(
    runs: dict[str, Path], tmp_path: Path, task: str
) -> None:
    out = export_onnx(runs["three"], tmp_path / "p.onnx", game=task)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    net = load_policy(runs["three"]).net
    for n in (1, 7):
        obs, mask = _boards(runs["three"], task, n)
        logits, value = session.run(None, {"obs": obs.numpy(), "legal_mask": mask.numpy()})
        with torch.no_grad():
            want_logits, want_value = net(task, obs)
        want_logits = masked_logits(want_logits, mask)
        assert logits.shape == (n, mask.shape[1]) and value.shape == (n,)
        torch.testing.assert_close(torch.from_numpy(logits), want_logits, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(torch.from_numpy(value), want_value, rtol=1e-5, atol=1e-5)
        # illegal actions: the most negative float32, so softmax gives them exactly 0
        assert (logits[~mask.numpy()] == torch.finfo(torch.float32).min).all()
        probs = torch.softmax(torch.from_numpy(logits), dim=1)
        assert (probs[~mask] == 0).all() and (probs[mask] > 0).all()


def test_the_metadata_says_what_the_model_expects(runs: dict[str, Path], tmp_path: Path) -> None:
    out = export_onnx(runs["three"], tmp_path / "p.onnx", game="othello")  # a unique game id
    model = onnx.load(str(out))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["game"] == "othello" and json.loads(meta["game_options"]) == {"size": 6}
    assert meta["task"] == "othello_size6" and meta["rltransfer_version"]
    assert json.loads(meta["obs_shape"]) == ["N", 3, 6, 6] and meta["num_actions"] == "37"
    assert model.opset_import[0].version == DEFAULT_OPSET
    names = [i.name for i in model.graph.input], [o.name for o in model.graph.output]
    assert names == (["obs", "legal_mask"], ["logits", "value"])


def test_the_cli_exports_a_one_game_run_without_game(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "c4.onnx"
    out.write_bytes(b"an older export")  # replaced whole
    assert main(["export", str(runs["one"]), "--output", str(out), "--opset", "13"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert [p.name for p in tmp_path.iterdir()] == ["c4.onnx"]  # no temporary file left
    model = onnx.load(str(out))
    assert model.opset_import[0].version == 13
    assert {p.key: p.value for p in model.metadata_props}["task"] == "connect_four"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "plays 3 games (ttt_a, ttt_b, othello_size6); choose one (--game"),
        (["--game", "tic_tac_toe"], "'tic_tac_toe' is ambiguous in"),
        (["--game", "hex"], "has no policy for 'hex'; it plays: ttt_a, ttt_b, othello_size6"),
        (["--game", "ttt_a", "--opset", "99"], "opset 99 is not supported; use 9..20"),
    ],
)
def test_unclear_requests_are_one_line_errors(
    runs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    out = tmp_path / "p.onnx"
    assert main(["export", str(runs["three"]), "--output", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rltransfer export: error:") and message in err and "\n" not in err
    assert not out.exists()


def test_an_output_in_a_missing_folder_is_refused(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nowhere" / "p.onnx"
    assert main(["export", str(runs["one"]), "--output", str(out)]) == 2
    assert f"there is no folder {out.parent}" in capsys.readouterr().err


def test_without_onnxruntime_the_error_names_the_extra(
    runs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    assert main(["export", str(runs["one"]), "--output", str(tmp_path / "p.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "rltransfer export: error: exporting to ONNX needs onnxruntime, not installed: "
        'pip install "rltransfer[export]"'
    )


def test_the_help_names_the_default_opset(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert f"(default {DEFAULT_OPSET})" in capsys.readouterr().out
