"""What a run leaves for its user: the TensorBoard tags the metrics docstring declares and no
others, the layout and hparams, and the console lines of a run and of a transfer experiment."""

from __future__ import annotations

import contextlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata
from tiny import TINY, tiny_config

from rltransfer.cli import main as cli_main
from rltransfer.learn.training import train
from rltransfer.runs import metrics
from rltransfer.runs.metrics import LADDER_DIR, load_events, read_scalars
from rltransfer.specs.config import TransferSettings
from rltransfer.transfer.experiment import run_transfer

LAYOUT = custom_scalar_metadata.CONFIG_SUMMARY_TAG  # TensorBoard's own name, not ours
AZ = ("train.algorithm=alphazero", "alphazero.simulations=4", "alphazero.num_steps=6",
      "alphazero.batch_size=16", "alphazero.replay_size=200")  # fmt: skip


@dataclass
class Runs:
    source: Path  # a plain tiny run: tic-tac-toe and Othello 6x6, 2 iterations
    experiment: Path  # a transfer experiment from it to tic-tac-toe: one seed, two arms
    run_console: str
    experiment_console: str


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    tmp = tmp_path_factory.mktemp("output")
    consoles = []
    for make in (
        lambda: train(  # with domain confusion on: its diagnostics are tags too
            tiny_config(tmp, iterations=2, name="src", overrides=("ppo.confusion_coef=0.1",)),
            tmp / "runs",
        ),
        lambda: run_transfer(
            tmp / "runs" / "src", "tic_tac_toe",
            TransferSettings(mode="gradual", unfreeze_after=1, keep_heads=True, seeds=1,
                             threshold=1e-6),  # reached at step 0: every metric is defined
            steps=2 * 8 * 4, num_envs=8, name="exp", run_dir=tmp / "runs", overrides=TINY,
            device="cpu",
        ),
    ):  # fmt: skip
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            make()
        consoles.append(out.getvalue())
    # a search-trained run writes the search/ tags (tic-tac-toe games end within its plies)
    az = tiny_config(tmp, iterations=2, name="az", overrides=AZ)
    train(az, tmp / "runs", quiet=True)
    # the checkpoints' ratings, written by ``rltransfer ladder --log`` into src/ladder
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_main([
            "ladder", "random", "greedy", "--game", "tic_tac_toe", "--games", "2", "--quiet",
            "--checkpoints", str(tmp / "runs" / "src"), "--log",
        ]) == 0  # fmt: skip
    return Runs(tmp / "runs" / "src", tmp / "runs" / "exp", *consoles)


def _declared() -> dict[str, re.Pattern[str]]:
    """The tag templates of the metrics docstring, ``a|b`` expanded, as regexes."""
    block = metrics.__doc__.split("::")[1].splitlines()
    templates = [line.split()[0] for line in block if line.startswith("    ")]
    out = {}
    for template in templates:
        head, _, names = template.rpartition("/")
        for name in names.split("|"):
            tag = f"{head}/{name}" if head else name
            out[tag] = re.compile(re.sub(r"<\w+>", r"[^/]+", re.escape(tag).replace(r"\<", "<")))
    return out


def _written(run: Path) -> set[str]:
    """Every tag of a run folder: scalars, images and text (torch's ``<tag>/text_summary``)."""
    tags = load_events(run).Tags()
    texts = {t.removesuffix("/text_summary") for t in tags["tensors"] if t != LAYOUT}
    return set(tags["scalars"]) | set(tags["images"]) | texts


def test_the_docstring_lists_exactly_the_tags_runs_write(runs: Runs) -> None:
    written = set()
    for run in [runs.source, runs.source / LADDER_DIR, runs.source.parent / "az", runs.experiment,
                *runs.experiment.glob("*_seed*")]:  # fmt: skip
        written |= _written(run)
    declared = _declared()
    undeclared = {t for t in written if not any(p.fullmatch(t) for p in declared.values())}
    assert not undeclared, f"tags written but not in the metrics docstring: {undeclared}"
    unwritten = {t for t, p in declared.items() if not any(p.fullmatch(w) for w in written)}
    assert not unwritten, f"tags in the metrics docstring that no run wrote: {unwritten}"


def test_trunk_frozen_is_charted_for_transfer_runs_only(runs: Runs) -> None:
    assert metrics.CHARTS_TRUNK_FROZEN not in read_scalars(runs.source)
    frozen = read_scalars(runs.experiment / "transfer_seed0")[metrics.CHARTS_TRUNK_FROZEN]
    assert [v for _, v in frozen] == [1.0, 0.0]  # gradual: frozen for the first iteration
    assert metrics.CHARTS_TRUNK_FROZEN not in read_scalars(runs.experiment / "scratch_seed0")


def test_hparams_and_transfer_metrics_sit_at_the_final_step(runs: Runs) -> None:
    scalars = read_scalars(runs.source)
    final_step = json.loads((runs.source / "eval.json").read_text())["global_step"]
    assert final_step > 0
    hparams = {t: points for t, points in scalars.items() if t.startswith("hparams/")}
    assert set(hparams) == {
        metrics.hparam_metric_tag(metrics.score_tag(game, opponent))
        for game in ("tic_tac_toe", "othello_size6")
        for opponent in ("random", "greedy")
    }
    assert all(points == [(final_step, points[0][1])] for points in hparams.values())
    summary = read_scalars(runs.experiment)
    assert {t: [s for s, _ in p] for t, p in summary.items()} == {
        metrics.transfer_tag(m): [2 * 8 * 4] for m in metrics.TRANSFER_METRICS
    }


def test_every_run_has_a_layout_with_all_games_scores(runs: Runs) -> None:
    for run in (runs.source, runs.experiment / "transfer_seed0"):
        assert LAYOUT in load_events(run).Tags()["tensors"]
    assert LAYOUT in load_events(runs.experiment).Tags()["tensors"]  # the arms on one chart


def test_a_run_says_what_it_is_what_it_scores_and_how_to_look(runs: Runs) -> None:
    out, src = runs.run_console, runs.source
    assert out.startswith(
        f"Training run {src} on cpu: suite tiny (tic_tac_toe, othello_size6), "
        f"agent ppo_small, 128 learner steps\n"
    )
    # the bar labels its scores and names the games (othello: the suite's only othello)
    assert "score vs random: tic_tac_toe " in out and ", othello " in out
    assert "tic_tac_" not in out.replace("tic_tac_toe", "")
    assert "final evaluation: 8 games per game and opponent (random, greedy)" in out
    assert out.endswith(
        f"Run saved in {src}. Look at it with:\n  {metrics.tensorboard_command(src.parent)}\n"
    )


def test_an_experiment_labels_its_arms_and_reports_one_final_score(runs: Runs) -> None:
    out, root = runs.experiment_console, runs.experiment
    assert "Run saved" not in out and out.count("Look at it with") == 1
    assert out.startswith(f"Transfer experiment {root} on cpu: tic_tac_toe from ")
    assert "transfer_seed0 (transfer arm, seed 1 of 1): training\n" in out
    assert "scratch_seed0 (scratch arm, seed 1 of 1): training\n" in out
    assert "transfer_seed0: " in out  # the progress bar's label
    assert "transfer_seed0: final evaluation: 8 games per game and opponent" in out
    assert "transfer_seed0: tic_tac_toe" not in out  # no results table or line of the run's own
    report = json.loads((root / "transfer.json").read_text())
    for arm in ("transfer", "scratch"):
        eval_json = json.loads((root / f"{arm}_seed0" / "eval.json").read_text())
        final = eval_json["games"]["tic_tac_toe"]["random"]
        (last_point,) = report["final_score"][arm]["per_seed"]
        assert (
            f"{arm}_seed0: score vs random {last_point:.3f} at the curve's last point (8 games), "
            f"{final['score']:.3f} in the final evaluation (8 games)\n"
        ) in out
    assert "| arm | final score: the curve's last point (mean) |" in out
    assert out.endswith(
        f"Experiment saved in {root}. Look at it with:\n  {metrics.tensorboard_command(root)}\n"
    )
