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
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rltransfer.games import parse_game_spec
from rltransfer.learn.training import (
    StopFlag,
    TrainingInterrupted,
    build_session,
    graceful_interrupt,
    resolve_device,
    resume,
    train,
)
from rltransfer.runs.checkpoint import CheckpointError, checkpoint_dir, read_network, weights_sha256
from rltransfer.runs.folder import RunFolder, check_new_run, claim_run, open_run, write_text_atomic
from rltransfer.runs.metrics import RunLogger, tensorboard_command, transfer_layout, transfer_tag
from rltransfer.specs.config import (
    ConfigError,
    GameSpec,
    SuiteSpec,
    TrainConfig,
    TransferSettings,
    dump_toml,
    load_run_config,
    make_train_config,
)
from rltransfer.transfer.metrics import (
    Curve,
    area_ratio,
    asymptotic_gain,
    few_shot,
    jumpstart,
    time_to_threshold,
    time_to_threshold_ratio,
)

MIN_EVALUATIONS = 20
#: evaluations in a row that must reach the threshold for a crossing (time to threshold)
CONSECUTIVE = 2
#: the few-shot point: the score after this fraction of an arm's learner steps
FEW_SHOT = 0.05


MANIFEST = "experiment.json"
BASE_CONFIG = "experiment.toml"


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

    Everything is checked before the experiment folder is created; the folder then gets a
    manifest (``experiment.json``: the source's absolute path and checksum, the arms and
    seeds; ``experiment.toml``: the resolved config), so an interrupted experiment
    continues with :func:`resume_transfer` (``rltransfer transfer --resume``).
    """
    game_id, options = parse_game_spec(target)
    if not isinstance(num_envs, int) or num_envs < 1:
        raise ConfigError(f"--num-envs must be >= 1 (boards of the target game), got {num_envs}")
    spec = GameSpec(id=game_id, options=options, num_envs=num_envs)
    spec.make()  # unknown games and options fail here, before any training
    suite = SuiteSpec(name=f"target_{spec.name}", games=(spec,))
    base = make_train_config(
        suite=suite, agent=agent, overrides=list(overrides), total_steps=steps, device=device
    )
    settings = settings or base.transfer
    if settings.opponent not in base.train.eval_opponents:
        raise ConfigError(
            f"the transfer metrics score against {settings.opponent!r}, which the arms do not "
            f"evaluate against (train.eval_opponents: {list(base.train.eval_opponents)})"
        )
    if not Path(source).exists():
        raise ConfigError(f"source run {source} does not exist")
    # the checkpoint folder itself (ckpt-<iteration>), so that every arm and seed starts
    # from these weights even if the source run goes on training meanwhile
    source_ckpt = checkpoint_dir(source).resolve()
    base = dataclasses.replace(
        base, transfer=dataclasses.replace(settings, source=str(source_ckpt))
    )
    arms = ["transfer"] + (["scratch"] if settings.baseline == "scratch" else [])
    root_name = name or f"transfer_{spec.name}_{settings.mode}"
    root = check_new_run(run_dir, root_name, overwrite)
    # every arm built once before anything is written: a source that cannot give this
    # target fails here, not mid-way; the sessions also say how many iterations a budget is
    sessions = [build_session(_arm_config(base, arm, 0), root / f"{arm}_seed0") for arm in arms]
    interval = max(1, sessions[0].num_iterations // MIN_EVALUATIONS)  # >= 20 evaluations
    base = dataclasses.replace(base, train=dataclasses.replace(base.train, eval_interval=interval))
    del sessions
    manifest: dict[str, Any] = {
        "source": str(source_ckpt),
        "source_sha256": weights_sha256(source_ckpt),
        "target": spec.name,
        "arms": arms,
        "seeds": settings.seeds,
        "scratch_from": str(Path(scratch_from).resolve()) if scratch_from is not None else None,
    }
    if manifest["scratch_from"] is not None and "scratch" in arms:
        _reuse_scratch(Path(scratch_from or ""), spec.name, settings, base.train.total_steps)
    with claim_run(run_dir, root_name, overwrite) as folder:
        write_text_atomic(root / BASE_CONFIG, dump_toml(base.sections()))
        write_text_atomic(root / MANIFEST, json.dumps(manifest, indent=1))
        return _run_experiment(folder, base, manifest, quiet)


def resume_transfer(root: str | Path, *, quiet: bool = False) -> Path:
    """Continue an interrupted transfer experiment: finished arms are kept, the
    interrupted one resumes from its checkpoint, the rest train; then the report."""
    root = Path(root)
    if not (root / MANIFEST).is_file():
        raise ConfigError(f"{root} is not a transfer experiment (no {MANIFEST})")
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        base = load_run_config(root / BASE_CONFIG)
        source = Path(manifest["source"])
        expected = manifest["source_sha256"]
        arms, seeds = manifest["arms"], manifest["seeds"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
        raise ConfigError(f"{root}/{MANIFEST}: unreadable experiment manifest ({e})") from None
    if not (
        isinstance(arms, list)
        and set(arms) <= {"transfer", "scratch"}
        and isinstance(seeds, int)
        and not isinstance(seeds, bool)
        and 1 <= seeds <= 1000
    ):
        raise ConfigError(f"{root}/{MANIFEST}: arms or seeds are not an experiment's")
    try:
        now = weights_sha256(checkpoint_dir(source))
    except CheckpointError:
        raise ConfigError(
            f"the source checkpoint {source} of {root} is gone (deleted, or pruned from the "
            "source run's history); the remaining arms cannot start from it"
        ) from None
    if now != expected:
        raise ConfigError(
            f"the source checkpoint {source} changed since {root} started (its weights are "
            "not the ones recorded); the remaining transfer arms would start from other weights"
        )
    with open_run(root) as folder:
        return _run_experiment(folder, base, manifest, quiet)


def _arm_config(base: TrainConfig, arm: str, k: int) -> TrainConfig:
    """The config of one arm and seed: the transfer arm records the source's network."""
    transfer = base.transfer if arm == "transfer" else dataclasses.replace(base.transfer, source="")
    net = read_network(checkpoint_dir(transfer.source)).net if transfer.source else base.net
    return dataclasses.replace(
        base,
        name=f"{arm}_seed{k}",
        net=net,
        transfer=transfer,
        train=dataclasses.replace(base.train, seed=base.train.seed + k),
    )


def _run_experiment(
    folder: RunFolder, base: TrainConfig, manifest: dict[str, Any], quiet: bool
) -> Path:
    """Train (or resume, or keep) every arm and seed, then write the report."""
    root, settings, task = folder.path, base.transfer, manifest["target"]
    arms = list(manifest["arms"])
    curves: dict[str, list[Curve]] = {arm: [] for arm in arms}
    scratch_from = manifest.get("scratch_from")
    if not quiet:
        print(
            f"Transfer experiment {root} on {resolve_device(base.train.device)}: {task} from "
            f"{manifest['source']}, mode {settings.mode}, arms {' and '.join(arms)}, "
            f"{manifest['seeds']} seed(s) each, {base.train.total_steps:,} learner steps per run"
        )
    if scratch_from is not None and "scratch" in arms:
        curves["scratch"] = _reuse_scratch(
            Path(scratch_from), task, settings, base.train.total_steps
        )
        arms.remove("scratch")
        if not quiet:
            print(f"scratch arm: the runs of {scratch_from}")
    with graceful_interrupt(quiet) as stop:  # also between two arms
        _run_arms(root, base, manifest, arms, curves, stop, quiet)
    report = transfer_report(curves, settings, task, manifest["source"])
    if scratch_from is not None:
        report["scratch_from"] = scratch_from
    _write_report(root, "transfer", report, curves)
    _log_summary(root, report, task, settings.opponent)
    if not quiet:
        print(format_report(report))
        print(f"Experiment saved in {root}. Look at it with:\n  {tensorboard_command(root)}")
    return root


def _run_arms(
    root: Path,
    base: TrainConfig,
    manifest: dict[str, Any],
    arms: list[str],
    curves: dict[str, list[Curve]],
    stop: StopFlag,
    quiet: bool,
) -> None:
    """Each arm and seed in turn: kept if finished, resumed if started, else trained.

    Prints one line before each run (its progress bar carries the run's name) and one after
    it, with both of its scores: the curve's last point and the larger final evaluation.
    """
    task, opponent = manifest["target"], base.transfer.opponent
    command = f"rltransfer transfer --resume {root}"
    seeds = int(manifest["seeds"])
    for k in range(seeds):
        for arm in arms:
            path = root / f"{arm}_seed{k}"
            if stop.signum is not None:  # a signal between two arms
                raise TrainingInterrupted(root, stop.signum, 0, command)
            finished, started = (path / "eval.json").is_file(), (path / "config.toml").is_file()
            if not quiet:
                doing = "kept (finished)" if finished else "resuming" if started else "training"
                print(f"{path.name} ({arm} arm, seed {k + 1} of {seeds}): {doing}")
            try:
                if finished:
                    pass  # finished before an interruption
                elif started:
                    resume(path, quiet=quiet)
                else:
                    train(_arm_config(base, arm, k), root, quiet=quiet)
            except TrainingInterrupted as e:
                raise TrainingInterrupted(root, e.signum, e.step, command) from None
            curve = read_curve(path, task, opponent)
            curves[arm].append(curve)
            if not quiet:
                final = json.loads((path / "eval.json").read_text())["games"][task][opponent]
                print(
                    f"{path.name}: score vs {opponent} {curve[-1][1]:.3f} at the "
                    f"curve's last point ({base.train.eval_games:,} games), {final['score']:.3f} "
                    f"in the final evaluation ({final['games']:,} games)"
                )


def _write_report(
    root: Path, stem: str, report: dict[str, Any], curves: dict[str, list[Curve]]
) -> Path:
    """``<stem>.json`` / ``<stem>_report.md`` / ``<stem>_curves.png``, each replaced by one
    rename (never written through a link); returns the markdown report's path."""
    task, opponent = report["target"], report["settings"]["opponent"]
    write_text_atomic(root / f"{stem}.json", json.dumps(report, indent=1))
    write_text_atomic(root / f"{stem}_report.md", format_report(report))
    plot_curves(curves, root / f"{stem}_curves.png", f"{task}: score vs {opponent}")
    return root / f"{stem}_report.md"


def reanalyse(
    root: str | Path, opponent: str | None = None, threshold: float | None = None
) -> Path:
    """Recompute an experiment's metrics from its runs, e.g. against another opponent.

    Every evaluation scores both random and greedy, so no run is repeated. Writes
    ``transfer_<opponent>.json`` / ``.md`` / ``_curves.png`` beside the original report
    (or replaces it when nothing changes); returns the markdown report's path.
    """
    root = Path(root)
    try:
        report = json.loads((root / "transfer.json").read_text())
    except FileNotFoundError:
        hint = (
            f"; finish it with rltransfer transfer --resume {root}"
            if (root / MANIFEST).is_file()
            else ""
        )
        raise ConfigError(
            f"{root} is not a finished transfer experiment (no transfer.json){hint}"
        ) from None
    except (OSError, ValueError, RecursionError) as e:
        raise ConfigError(f"{root}/transfer.json: unreadable ({e})") from None
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
    with open_run(root):  # one writer: not beside a running transfer --resume
        return _write_report(root, stem, new, curves)


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
    try:
        history = json.loads((run / "eval.json").read_text())["history"]
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"{run}/eval.json: no finished run's scores there ({e})") from None
    try:
        return [(int(h["global_step"]), float(h[task][opponent])) for h in history]
    except (KeyError, TypeError, ValueError):
        raise ConfigError(
            f"{run}/eval.json: no scores of {task} against {opponent!r} (the run evaluated "
            "against other opponents)"
        ) from None


def _summary(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean, spread and per-seed values. ``None`` (undefined) is left out of the mean; an
    infinite value (a failure: a transfer arm that never reached the threshold) is not:
    it makes the mean infinite, as a failed seed must not vanish from it."""
    known = [v for v in values if v is not None and not math.isnan(v)]
    out: dict[str, Any] = {"per_seed": list(values), "defined": len(known), "seeds": len(values)}
    out["failures"] = sum(1 for v in known if math.isinf(v))
    if known:
        finite = [v for v in known if math.isfinite(v)]
        out.update(mean=statistics.fmean(known), min=min(known), max=max(known))
        spread = statistics.stdev(finite) if len(finite) > 1 else 0.0
        out["std"] = spread if not out["failures"] else math.inf
    return out


def _ratio_or_failure(transfer: Curve, scratch: Curve, threshold: float) -> float | None:
    """The time-to-threshold ratio of one paired seed; ``inf`` when scratch reaches the
    threshold and the transfer arm never does (a failure); ``None`` when scratch never does
    (no yardstick)."""
    ratio = time_to_threshold_ratio(transfer, scratch, threshold, CONSECUTIVE)
    if ratio is None and time_to_threshold(scratch, threshold, CONSECUTIVE) is not None:
        return math.inf
    return ratio


def transfer_report(
    curves: dict[str, list[Curve]], settings: TransferSettings, task: str, source: str
) -> dict[str, Any]:
    """The metrics per paired seed, their mean and spread (:mod:`rltransfer.transfer.metrics`)."""
    report: dict[str, Any] = {
        "target": task,
        "source": source,
        "settings": dataclasses.asdict(settings),
        "curves": {arm: [list(map(list, c)) for c in cs] for arm, cs in curves.items()},
        "final_score": {arm: _summary([c[-1][1] for c in cs]) for arm, cs in curves.items()},
        "few_shot": {
            arm: _summary([few_shot(c, FEW_SHOT) for c in cs]) for arm, cs in curves.items()
        },
        "few_shot_fraction": FEW_SHOT,
        "consecutive": CONSECUTIVE,
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
        "time_to_threshold_ratio": _summary([_ratio_or_failure(t, s, threshold) for t, s in pairs]),
        "area_ratio": _summary([area_ratio(t, s) for t, s in pairs]),
        "few_shot_gain": _summary(
            [few_shot(t, FEW_SHOT) - few_shot(s, FEW_SHOT) for t, s in pairs]
        ),
    }
    report["steps_to_threshold"] = {
        arm: [time_to_threshold(c, threshold, CONSECUTIVE) for c in cs]
        for arm, cs in curves.items()
    }
    return report


def _mapping(settings: dict[str, Any]) -> str:
    """The mapped stem and heads of a cross-game transfer, for the report ('' if none)."""
    parts = [
        f"{what} from {settings[key]}"
        for what, key in (("stem", "stem_from"), ("heads", "heads_from"))
        if settings.get(key)
    ]
    if settings.get("reset_last"):
        parts.append("last head layers reset")
    return ", ".join(parts) + ", " if parts else ""


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
        + _mapping(s)
        + f"{s['seeds']} seed(s) per arm, score against {s['opponent']}.",
        "",
        "| arm | final score: the curve's last point (mean) | min | max |",
        "|---|---|---|---|",
    ]
    for arm, fs in report["final_score"].items():
        mean, lo, hi = (fs.get(k, float("nan")) for k in ("mean", "min", "max"))
        lines.append(f"| {arm} | {mean:.3f} | {lo:.3f} | {hi:.3f} |")
    if "few_shot" in report:  # reports written before the few-shot point have none
        fraction = report["few_shot_fraction"]
        lines += ["", f"Few-shot score (after {fraction:.0%} of the steps), mean over seeds: "]
        lines[-1] += "; ".join(
            f"{arm} {fs['mean']:.3f}" for arm, fs in report["few_shot"].items() if fs["defined"]
        )
    lines += [
        "",
        "Every score here and every metric below comes from the learning curves (the runs' "
        "periodic evaluations, `train.eval_games` games each); each run's larger final "
        "evaluation (`train.final_eval_games` games) is in its `eval.json`.",
    ]
    if report["metrics"]:
        lines += [
            "",
            f"Threshold: {report['threshold']:.3f}, reached when "
            f"{report.get('consecutive', 1)} evaluation(s) in a row score at least that. "
            "Steps to reach it per seed: "
            + "; ".join(f"{arm} {v}" for arm, v in report["steps_to_threshold"].items()),
            "",
            "| metric | mean | std | min | max | per seed |",
            "|---|---|---|---|---|---|",
        ]
        for metric, m in report["metrics"].items():
            per_seed = ", ".join(
                "no yardstick" if v is None else "never reached" if math.isinf(v) else f"{v:.3f}"
                for v in m["per_seed"]
            )
            if m["defined"]:
                row = f"{m['mean']:.3f} | {m['std']:.3f} | {m['min']:.3f} | {m['max']:.3f}"
            else:
                row = "not reached | | |"
            lines.append(f"| {metric} | {row} | {per_seed} |")
        lines += [
            "",
            "Jumpstart: score at step 0, transfer minus scratch. Asymptotic gain: the curves' "
            "last points, transfer minus scratch. Time-to-threshold ratio: learner steps to "
            "reach the threshold, transfer / scratch (< 1 is faster). Area ratio: (area under "
            "transfer curve - area under scratch curve) / area under scratch curve (Taylor & "
            "Stone 2009). Few-shot gain: the few-shot scores, transfer minus scratch. A seed "
            "that never reaches the threshold has no ratio (not reached): it is a failure, "
            "counted in the per-seed column, not dropped.",
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
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)  # replaces a link itself, never writes through it


def _log_summary(root: Path, report: dict[str, Any], task: str, opponent: str) -> None:
    """Experiment-level TensorBoard: the custom-scalars layout and the transfer metrics,
    at the curves' last step (what they summarise), not as points before any training."""
    last = max(c[-1][0] for cs in report["curves"].values() for c in cs)
    with RunLogger(root) as logger:
        logger.layout(transfer_layout(task, opponent))
        values = {
            transfer_tag(metric): m["mean"]
            for metric, m in report["metrics"].items()
            if m.get("defined") and math.isfinite(m["mean"])  # a failed seed: no point
        }
        logger.scalars(last, values)
