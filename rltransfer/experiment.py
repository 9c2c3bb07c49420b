"""Transfer experiments: transfer and scratch arms over paired seeds, with a report.

``run_transfer`` trains the target game once per seed from the source run's trunk (the
*transfer* arm) and, with ``baseline="scratch"``, once per seed from scratch with the
same budget, seed and evaluation schedule (the *scratch* arm). Each arm and seed is its
own run folder (``runs/<name>/<arm>_seed<k>/``) with the same TensorBoard tags, so
TensorBoard overlays them; the experiment folder also holds a custom-scalars layout that
puts both arms on one chart, ``transfer.json``, ``transfer_report.md`` and a plot.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rltransfer.config import ConfigError, GameSpec, SuiteSpec, TransferSettings, make_train_config
from rltransfer.games import parse_game_spec
from rltransfer.metrics import RunLogger, transfer_tag
from rltransfer.training import prepare_run_dir, train
from rltransfer.transfer import (
    Curve,
    area_ratio,
    asymptotic_gain,
    jumpstart,
    time_to_threshold,
    time_to_threshold_ratio,
)

METRICS = ("jumpstart", "asymptotic_gain", "time_to_threshold_ratio", "area_ratio")
MIN_EVALUATIONS = 20


def run_transfer(
    source: str | Path,
    target: str,
    settings: TransferSettings | None = None,
    *,
    agent: str | Path = "ppo_small",
    steps: int | None = None,
    num_envs: int = 64,
    name: str = "",
    run_dir: str | Path = "runs",
    overrides: Sequence[str] = (),
    device: str | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    scratch_from: str | Path | None = None,
) -> Path:
    """Run a transfer experiment to ``target`` (``"othello:size=8"``); returns its folder.

    ``settings`` defaults to the agent preset's ``[transfer]`` table. ``scratch_from``
    reuses the scratch arm of an earlier experiment on the same target (same budget and
    seeds, checked) instead of training it again, e.g. to compare several modes.
    """
    game_id, options = parse_game_spec(target)
    spec = GameSpec(id=game_id, options=options, num_envs=num_envs)
    spec.make()  # unknown games and options fail here, before any training
    suite = SuiteSpec(name=f"target_{spec.name}", games=(spec,))
    base = make_train_config(
        suite=suite, agent=agent, overrides=list(overrides), total_steps=steps, device=device
    )
    settings = settings or base.transfer
    if not Path(source).exists():
        raise ConfigError(f"source run {source} does not exist")
    iterations = math.ceil(base.train.total_steps / (spec.num_envs * base.ppo.num_steps))
    interval = max(1, iterations // MIN_EVALUATIONS)  # at least 20 evaluations per budget
    train_settings = dataclasses.replace(base.train, eval_interval=interval)
    root = prepare_run_dir(run_dir, name or f"transfer_{spec.name}_{settings.mode}", overwrite)
    arms = ["transfer"] + (["scratch"] if settings.baseline == "scratch" else [])
    curves: dict[str, list[Curve]] = {arm: [] for arm in arms}
    if scratch_from is not None and "scratch" in arms:
        curves["scratch"] = _reuse_scratch(
            Path(scratch_from), spec.name, settings, base.train.total_steps
        )
        arms.remove("scratch")
    for k in range(settings.seeds):
        for arm in arms:
            arm_settings = dataclasses.replace(
                settings, source=str(source) if arm == "transfer" else ""
            )
            cfg = dataclasses.replace(
                base,
                name=f"{arm}_seed{k}",
                transfer=arm_settings,
                train=dataclasses.replace(train_settings, seed=base.train.seed + k),
            )
            path = train(cfg, root, quiet=quiet)
            curves[arm].append(read_curve(path, spec.name, settings.opponent))
    report = transfer_report(curves, settings, spec.name, str(source))
    if scratch_from is not None:
        report["scratch_from"] = str(scratch_from)
    (root / "transfer.json").write_text(json.dumps(report, indent=1))
    (root / "transfer_report.md").write_text(format_report(report))
    plot_curves(curves, root / "transfer_curves.png", f"{spec.name}: score vs {settings.opponent}")
    _log_summary(root, report, spec.name, settings.opponent)
    if not quiet:
        print(format_report(report))
        print(f"Experiment saved in {root}. Look at it with:\n  tensorboard --logdir {root}")
    return root


def reanalyse(
    root: str | Path, opponent: str | None = None, threshold: float | None = None
) -> Path:
    """Recompute an experiment's metrics from its runs, e.g. against another opponent.

    Every evaluation scores both random and greedy, so no run is repeated. Writes
    ``transfer_<opponent>.json`` / ``.md`` / ``_curves.png`` beside the original report
    (or replaces it when nothing changes); returns the markdown report's path.
    """
    root = Path(root)
    report = json.loads((root / "transfer.json").read_text())
    settings = TransferSettings(**report["settings"])
    settings = dataclasses.replace(
        settings,
        opponent=opponent or settings.opponent,
        threshold=settings.threshold if threshold is None else threshold,
    )
    task = report["target"]
    arms = sorted({p.name.rsplit("_seed", 1)[0] for p in root.glob("*_seed*") if p.is_dir()})
    curves = {
        arm: [
            read_curve(root / f"{arm}_seed{k}", task, settings.opponent)
            for k in range(settings.seeds)
        ]
        for arm in arms
    }
    if "scratch" not in curves and "scratch_from" in report:  # a reused scratch arm
        earlier = Path(report["scratch_from"])
        curves["scratch"] = [
            read_curve(earlier / f"scratch_seed{k}", task, settings.opponent)
            for k in range(settings.seeds)
        ]
    new = transfer_report(curves, settings, task, report["source"])
    if "scratch_from" in report:
        new["scratch_from"] = report["scratch_from"]
    stem = (
        "transfer"
        if settings.opponent == report["settings"]["opponent"]
        else f"transfer_{settings.opponent}"
    )
    (root / f"{stem}.json").write_text(json.dumps(new, indent=1))
    (root / f"{stem}_report.md").write_text(format_report(new))
    plot_curves(curves, root / f"{stem}_curves.png", f"{task}: score vs {settings.opponent}")
    return root / f"{stem}_report.md"


def _reuse_scratch(earlier: Path, task: str, settings: TransferSettings, steps: int) -> list[Curve]:
    """The scratch curves of an earlier experiment, checked to match this one."""
    try:
        report = json.loads((earlier / "transfer.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"--scratch-from {earlier}: no readable transfer.json ({e})") from None
    if report.get("target") != task or "scratch" not in report.get("curves", {}):
        raise ConfigError(f"--scratch-from {earlier}: not a scratch arm for {task}")
    earlier_settings = report["settings"]
    curves = [
        read_curve(earlier / f"scratch_seed{k}", task, settings.opponent)
        for k in range(settings.seeds)
    ]
    if earlier_settings["seeds"] < settings.seeds or any(c[-1][0] < steps for c in curves):
        raise ConfigError(f"--scratch-from {earlier}: fewer seeds or a smaller budget than asked")
    return curves


def read_curve(run: Path, task: str, opponent: str) -> Curve:
    """(learner steps, score vs ``opponent``) at every evaluation of a run, from eval.json."""
    history = json.loads((run / "eval.json").read_text())["history"]
    return [(int(h["global_step"]), float(h[task][opponent])) for h in history]


def _summary(values: Sequence[float | None]) -> dict[str, Any]:
    known = [v for v in values if v is not None and math.isfinite(v)]
    out: dict[str, Any] = {"per_seed": list(values), "defined": len(known), "seeds": len(values)}
    if known:
        out.update(mean=statistics.fmean(known), min=min(known), max=max(known))
        out["std"] = statistics.stdev(known) if len(known) > 1 else 0.0
    return out


def transfer_report(
    curves: dict[str, list[Curve]], settings: TransferSettings, task: str, source: str
) -> dict[str, Any]:
    """The metrics per paired seed and their mean and spread (see ``rltransfer.transfer``)."""
    report: dict[str, Any] = {
        "target": task,
        "source": source,
        "settings": dataclasses.asdict(settings),
        "curves": {arm: [list(map(list, c)) for c in cs] for arm, cs in curves.items()},
        "final_score": {arm: _summary([c[-1][1] for c in cs]) for arm, cs in curves.items()},
    }
    if "scratch" not in curves:
        report["metrics"] = {}
        return report
    threshold = settings.threshold or 0.9 * statistics.fmean(c[-1][1] for c in curves["scratch"])
    report["threshold"] = threshold
    pairs = list(zip(curves["transfer"], curves["scratch"], strict=True))
    report["metrics"] = {
        "jumpstart": _summary([jumpstart(t, s) for t, s in pairs]),
        "asymptotic_gain": _summary([asymptotic_gain(t, s) for t, s in pairs]),
        "time_to_threshold_ratio": _summary(
            [time_to_threshold_ratio(t, s, threshold) for t, s in pairs]
        ),
        "area_ratio": _summary([area_ratio(t, s) for t, s in pairs]),
    }
    report["steps_to_threshold"] = {
        arm: [time_to_threshold(c, threshold) for c in cs] for arm, cs in curves.items()
    }
    return report


def format_report(report: dict[str, Any]) -> str:
    """``transfer_report.md``: settings, metrics table (mean, spread, per seed)."""
    s = report["settings"]
    lines = [
        f"# Transfer to {report['target']}",
        "",
        f"Source: `{report['source']}`; mode `{s['mode']}`"
        + (
            f" (trunk frozen for {s['unfreeze_after']} iterations)"
            if s["mode"] == "gradual"
            else ""
        )
        + f", trunk learning-rate scale {s['trunk_lr_scale']}, keep heads: {s['keep_heads']}, "
        f"{s['seeds']} seed(s) per arm, score against {s['opponent']}.",
        "",
        "| arm | final score (mean) | min | max |",
        "|---|---|---|---|",
    ]
    for arm, fs in report["final_score"].items():
        mean, lo, hi = (fs.get(k, float("nan")) for k in ("mean", "min", "max"))
        lines.append(f"| {arm} | {mean:.3f} | {lo:.3f} | {hi:.3f} |")
    if report["metrics"]:
        lines += [
            "",
            f"Threshold: {report['threshold']:.3f}. Steps to reach it per seed: "
            + "; ".join(f"{arm} {v}" for arm, v in report["steps_to_threshold"].items()),
            "",
            "| metric | mean | std | min | max | per seed |",
            "|---|---|---|---|---|---|",
        ]
        for metric, m in report["metrics"].items():
            per_seed = ", ".join("not reached" if v is None else f"{v:.3f}" for v in m["per_seed"])
            if m["defined"]:
                row = f"{m['mean']:.3f} | {m['std']:.3f} | {m['min']:.3f} | {m['max']:.3f}"
            else:
                row = "not reached | | |"
            lines.append(f"| {metric} | {row} | {per_seed} |")
        lines += [
            "",
            "Jumpstart: score at step 0, transfer minus scratch. Asymptotic gain: final score, "
            "transfer minus scratch. Time-to-threshold ratio: learner steps to reach the "
            "threshold, transfer / scratch (< 1 is faster). Area ratio: (area under transfer "
            "curve - area under scratch curve) / area under scratch curve (Taylor & Stone 2009).",
        ]
    return "\n".join(lines) + "\n"


def plot_curves(curves: dict[str, list[Curve]], path: Path, title: str) -> None:
    """Score vs learner steps: each arm's mean over seeds, with its min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for arm, cs in curves.items():
        steps = [s for s, _ in cs[0]]
        n = min(len(c) for c in cs)
        rows = [[y for _, y in c[:n]] for c in cs]
        mean = [statistics.fmean(col) for col in zip(*rows, strict=True)]
        lo = [min(col) for col in zip(*rows, strict=True)]
        hi = [max(col) for col in zip(*rows, strict=True)]
        (line,) = ax.plot(steps[:n], mean, label=f"{arm} ({len(cs)} seeds)")
        ax.fill_between(steps[:n], lo, hi, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("learner steps")
    ax.set_ylabel("score")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _log_summary(root: Path, report: dict[str, Any], task: str, opponent: str) -> None:
    """Experiment-level TensorBoard: the custom-scalars layout and the transfer metrics."""
    with RunLogger(root) as logger:
        logger.writer.add_custom_scalars(
            {
                "transfer": {
                    f"{task}: score vs {opponent}, every arm and seed": [
                        "Multiline",
                        [rf"games/{task}/score_vs_{opponent}"],
                    ],
                    f"{task}: episode length": ["Multiline", [rf"games/{task}/episode_length"]],
                }
            }
        )
        values = {
            transfer_tag(metric): m["mean"]
            for metric, m in report["metrics"].items()
            if m.get("defined")
        }
        logger.scalars(0, values)
