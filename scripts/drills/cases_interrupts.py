"""Drill 1: interrupts (Ctrl-C, SIGTERM, kill -9, crashes inside a save) and resume."""

from __future__ import annotations

import random
import shutil
import signal
import time
from pathlib import Path

from harness import (
    Case,
    Checks,
    Ctx,
    Outcome,
    Proc,
    Run,
    ckpt_dir,
    identical_weights,
    leftovers,
    meta_step,
    read_json,
    sets,
    succeeded,
    tree_snapshot,
    user_error,
    wait_for,
)


def budget(steps: int = 8192, ci: int | None = 2, *more: str) -> list[str]:
    """``--steps`` and a checkpoint interval (None: the preset's, 10 iterations)."""
    ci_set = sets(f"train.checkpoint_interval={ci}") if ci is not None else []
    return ["--steps", str(steps), *ci_set, *sets(*more)]


def start(ctx: Ctx, name: str, extra: list[str], suite: str = "ttt") -> tuple[Proc, Path]:
    argv = ctx.rl(*ctx.train_args(*extra, "--name", name, suite=suite))
    return ctx.spawn(argv), ctx.dir / "runs" / name


def first_checkpoint(proc: Proc, run: Path, at_least: int = 1) -> bool:
    return wait_for(lambda: meta_step(run) >= at_least, proc)


def check_stop(c: Checks, r: Run, rcs: tuple[int, ...], label: str = "") -> None:
    """A graceful stop: no traceback, the resume command printed, an expected exit code."""
    c.main = c.main or r
    c.require(not r.traceback, f"{label}traceback")
    c.require("--resume" in r.output, f"{label}no resume command printed")
    if r.rc not in rcs:
        level = "FAIL" if r.rc is None or r.rc < 0 else "PARTIAL"
        c.require(False, f"{label}rc {r.rc}, expected {' or '.join(map(str, rcs))}", level)


def resume_identical(
    ctx: Ctx, c: Checks, run: Path, extra: list[str], suite: str = "ttt", label: str = ""
) -> None:
    """``--resume`` must work and end with the uninterrupted run's weights and eval.json."""
    r = ctx.cli("train", "--resume", str(run.relative_to(ctx.dir)))
    if not c.require(r.rc == 0 and not r.traceback, f"{label}resume {r.summary()}"):
        return
    ref = ctx.ref(*extra, suite=suite)
    same, why = identical_weights(run, ref)
    if c.require(same, f"{label}{why}"):
        c.note(f"{label}resume rc 0, {why}")
    if read_json(run / "eval.json") != read_json(ref / "eval.json"):
        c.partial(f"{label}eval.json differs from the uninterrupted run's")


def signal_once(ctx: Ctx, name: str, sig: int, rcs: tuple[int, ...]) -> Outcome:
    """1.1 and 1.8: one signal after the first checkpoint; then resume, exact."""
    extra = budget()
    proc, run = start(ctx, name, extra)
    c = Checks()
    first_checkpoint(proc, run)
    if not proc.signal(sig):
        c.main = proc.wait()
        c.skip("the run ended before the signal")
        return c.outcome()
    check_stop(c, proc.wait(), rcs)
    resume_identical(ctx, c, run, extra)
    return c.outcome()


def c1_1(ctx: Ctx) -> Outcome:
    return signal_once(ctx, "sig1", signal.SIGINT, (130, 0))


def c1_8(ctx: Ctx) -> Outcome:
    return signal_once(ctx, "term", signal.SIGTERM, (143,))


def c1_2(ctx: Ctx) -> Outcome:
    extra = budget(ci=3)
    proc, run = start(ctx, "sig2", extra)
    c = Checks()
    first_checkpoint(proc, run)
    proc.signal(signal.SIGINT)
    time.sleep(0.03)
    if not proc.signal(signal.SIGINT):
        c.main = proc.wait()
        c.skip("the run ended before the second Ctrl-C")
        return c.outcome()
    r = c.main = proc.wait()
    c.require(r.rc not in (0, None) and r.rc > 0, f"rc {r.rc}, expected 130")
    c.require(not r.traceback, "traceback")
    e = ctx.cli("eval", "runs/sig2", "--games", "4")
    c.require(e.rc == 0, f"previous checkpoint not loadable: {e.summary()}")
    c.require(not leftovers(run), f"stray {leftovers(run)}")
    resume_identical(ctx, c, run, extra)
    return c.outcome()


def c1_3(ctx: Ctx) -> Outcome:
    extra = budget(ci=1)
    rng = random.Random("1.3")
    c = Checks()
    fired = 0
    for k in range(5):
        proc, run = start(ctx, f"k9_{k}", extra)
        first_checkpoint(proc, run)
        time.sleep(rng.uniform(0.0, 2.0))
        if not proc.signal(signal.SIGKILL):
            proc.wait()
            c.note(f"try {k}: finished before kill -9")
            continue
        proc.wait()
        fired += 1
        step = meta_step(run)
        e = ctx.cli("eval", f"runs/{run.name}", "--games", "4")
        c.require(e.rc == 0, f"try {k}: checkpoint at {step} not loadable: {e.summary()}")
        resume_identical(ctx, c, run, extra, label=f"try {k} (killed at step {step}): ")
    if not fired:
        c.skip("every run ended before its kill")
    return c.outcome()


def tensorboard_steps(run: Path, tag: str) -> list[int]:
    """Steps of a scalar tag as TensorBoard shows them (restart purges applied)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)]


def c1_4(ctx: Ctx) -> Outcome:
    extra = budget(ci=None)
    proc, run = start(ctx, "k9tb", extra)
    c = Checks()
    first_checkpoint(proc, run)
    time.sleep(0.6)
    if not proc.signal(signal.SIGKILL):
        c.main = proc.wait()
        c.skip("the run ended before kill -9")
        return c.outcome()
    proc.wait()
    c.note(f"killed after the checkpoint at {meta_step(run)}")
    resume_identical(ctx, c, run, extra)
    try:
        steps = tensorboard_steps(run, "charts/sps")
    except Exception as e:  # a missing tag or tensorboard itself
        c.fail(f"cannot read TensorBoard events ({type(e).__name__}: {e})")
        return c.outcome()
    dup = len(steps) - len(set(steps))
    if c.require(dup == 0 and len(steps) == 16, f"TensorBoard: {len(steps)} points, {dup} dup"):
        c.note("TensorBoard: 16 points, no duplicates")
    return c.outcome()


def c1_5(ctx: Ctx) -> Outcome:
    """kill -9 while a checkpoint's files are being written (in ``.writing-*``)."""
    extra = budget(4096, ci=1)
    c = Checks()
    fired = 0
    for k in (2, 3, 4):
        name = f"wr{k}"
        run = ctx.dir / "runs" / name
        argv = ctx.script("inject.py", "save-kill", str(k), "--",
                          *ctx.train_args(*extra, "--name", name))  # fmt: skip
        r = ctx.run(argv)
        if r.rc == 0:
            c.note(f"k={k}: the injection point was not reached")
            continue
        fired += 1
        step = meta_step(run)
        e = ctx.cli("eval", f"runs/{name}", "--games", "4")
        c.require(e.rc == 0, f"k={k}: previous checkpoint not loadable: {e.summary()}")
        resume_identical(ctx, c, run, extra, label=f"k={k} (checkpoint {step}): ")
        c.require(not leftovers(run), f"k={k}: {leftovers(run)} left after the resumed run")
    if not fired:
        c.skip("no injection fired")
    elif c.level == "PASS":
        c.note("no .writing-* left")
    return c.outcome()


def c1_6(ctx: Ctx) -> Outcome:
    """Killed between two filesystem steps of a checkpoint save (strace, or Python).

    The faults go into ``--resume`` of a copy of ``base`` (a checkpoint every iteration),
    so a complete checkpoint is on disk before the first step the fault can hit.
    """
    from fixtures import BASE_STEPS

    syscalls = "rename,renameat,renameat2,symlink,symlinkat"
    have_strace = shutil.which("strace") is not None
    tries: list[tuple[str, list[str]]] = [
        (f"strace SIGKILL@{n}", [
            "strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={syscalls}",
            "-e", f"inject={syscalls}:signal=SIGKILL:when={n}", *ctx.rl(),
        ])
        for n in ((1, 2, 3, 4, 5) if have_strace else ())
    ]  # fmt: skip
    for mode, k in (("replace-kbint", 1), ("replace-kbint", 2), ("replace-kbint", 3),
                    ("replace-exit", 2)):  # fmt: skip
        tries.append((f"{mode}@{k}", [*ctx.script("inject.py", mode, str(k), "--")]))
    c = Checks()
    if not have_strace:
        c.note("strace not found: its tries skipped")
    fired = 0
    for i, (label, prefix) in enumerate(tries):
        name = f"inj{i}"
        run = ctx.copy_run("base", name)
        r = ctx.run([*prefix, "train", "--resume", f"runs/{name}"])
        if r.rc == 0:
            c.note(f"{label}: not reached")
            continue
        fired += 1
        e = ctx.cli("eval", f"runs/{name}", "--games", "4")
        res = ctx.cli("train", "--resume", f"runs/{name}")
        parts = [f"eval rc {e.rc}", f"resume rc {res.rc}"]
        if res.rc == 0:
            ref = ctx.ref("--steps", BASE_STEPS, *sets("train.checkpoint_interval=1"))
            parts.append(identical_weights(run, ref)[1])
            parts += [f"{leftovers(run)} left"] if leftovers(run) else []
        else:
            parts.append(f"`{(res.error_message()[0] or res.last_line())[:70]}`")
        ok = e.rc == 0 and res.rc == 0 and not leftovers(run)
        c.require(ok, f"{label}: {', '.join(parts)}")
        if ok:
            c.note(f"{label}: {', '.join(parts)}")
    if not fired:
        c.skip("no injection fired")
    return c.outcome()


def c1_7(ctx: Ctx) -> Outcome:
    extra = budget(2048)
    proc, run = start(ctx, "early", extra)
    c = Checks()
    wait_for(lambda: (run / "config.toml").exists(), proc, timeout=60)
    proc.signal(signal.SIGINT)
    r = c.main = proc.wait()
    c.require(not r.traceback, "traceback on Ctrl-C")
    again = ctx.cli("train", "--resume", "runs/early")
    if again.rc == 0:
        c.note("--resume rc 0")
        return c.outcome()
    rerun = ctx.cli(*ctx.train_args(*extra, "--name", "early"))
    if c.require(rerun.rc == 0, f"--resume {again.summary()}; re-run {rerun.summary()}"):
        c.note(f"--resume {again.summary()}; the plain re-run works")
    return c.outcome()


def c1_9(ctx: Ctx) -> Outcome:
    extra = budget(8192, 2, "selfplay.snapshot_interval=2")
    c = Checks()
    for label, sig, after in (("Ctrl-C", signal.SIGINT, 1), ("kill -9", signal.SIGKILL, 4096)):
        proc, run = start(ctx, f"multi_{sig}", extra, suite="multi")
        first_checkpoint(proc, run, after)
        time.sleep(0.3 if sig == signal.SIGKILL else 0)
        if not proc.signal(sig):
            proc.wait()
            c.note(f"{label}: the run ended first")
            continue
        r = proc.wait()
        if sig == signal.SIGINT:
            check_stop(c, r, (130, 0), f"{label}: ")
        resume_identical(ctx, c, run, extra, "multi", f"{label} at {meta_step(run)}: ")
    return c.outcome()


def c1_10(ctx: Ctx) -> Outcome:
    from fixtures import NAN_LR

    c = Checks()
    r = c.main = ctx.cli(*ctx.train_args("--steps", "2048", "--name", "nan", *sets(NAN_LR)))
    if r.rc != 0 and r.error_message()[0] is not None and not (ctx.dir / "runs/nan").exists():
        c.skip(f"{NAN_LR} is refused up front: no NaN stop to follow")
        return c.outcome()
    c.require(r.rc not in (0, None) and not r.traceback, "no clean NaN stop")
    c.require("--resume" in r.output, "no resume advice")
    c.require(finite_weights(ctx.dir / "runs/nan"), "the saved weights are not finite")
    again = ctx.cli("train", "--resume", "runs/nan", *sets("ppo.learning_rate=1e-4"))
    ok = again.rc == 0 and "non-finite" not in again.output
    if c.require(ok, f"resume with ppo.learning_rate=1e-4: {again.summary()}"):
        c.note("resume with the lower rate: rc 0, no NaN stop")
    return c.outcome()


def finite_weights(run: Path) -> bool:
    import torch
    from safetensors.torch import load_file

    try:
        weights = load_file(str(ckpt_dir(run) / "model.safetensors"))
    except Exception:
        return False
    return all(bool(torch.isfinite(t).all()) for t in weights.values() if t.is_floating_point())


def arm_interrupted(ctx: Ctx, name: str, baseline: str) -> tuple[Checks, Run | None]:
    """``transfer`` from a copy of ``done``, Ctrl-C once its first arm has a checkpoint."""
    ctx.copy_run("done", "src")
    argv = ctx.rl("transfer", "--from", "runs/src", "--to", "tic_tac_toe", "--steps", "4096",
                  "--seeds", "1", "--baseline", baseline, "--num-envs", "16", "--name", name,
                  *sets("train.eval_games=16", "train.final_eval_games=32",
                        "train.checkpoint_interval=2"))  # fmt: skip
    proc = ctx.spawn(argv)
    c = Checks()
    first_checkpoint(proc, ctx.dir / "runs" / name / "transfer_seed0")
    if not proc.signal(signal.SIGINT):
        c.main = proc.wait()
        c.skip("the experiment ended before Ctrl-C")
        return c, None
    return c, proc.wait()


def c1_11(ctx: Ctx) -> Outcome:
    c, r = arm_interrupted(ctx, "trint", "scratch")
    if r is None:
        return c.outcome()
    check_stop(c, r, (130, 0))
    msg = r.error_message()[0]
    c.require(msg is None, f"error line after the stop: {msg!r}")
    again = ctx.cli("transfer", "--resume", "runs/trint")
    report = ctx.dir / "runs/trint/transfer_report.md"
    if c.require(again.rc == 0 and report.is_file(), f"transfer --resume: {again.summary()}"):
        c.note("transfer --resume rc 0, transfer_report.md written")
    return c.outcome()


def c1_12(ctx: Ctx) -> Outcome:
    c, r = arm_interrupted(ctx, "trcwd", "none")
    if r is None:
        return c.outcome()
    elsewhere = ctx.dir / "elsewhere"
    elsewhere.mkdir()
    arm = (ctx.dir / "runs/trcwd/transfer_seed0").resolve()
    res = c.main = ctx.cli("train", "--resume", str(arm), cwd=elsewhere)
    c.require(res.rc == 0, "resume from another directory fails")
    return c.outcome()


def c1_13(ctx: Ctx) -> Outcome:
    run = ctx.copy_run("done", "ext")
    before = (read_json(run / "eval.json") or {}).get("global_step", 0)
    c = succeeded(ctx.cli("train", "--resume", "runs/ext", "--steps", "4096"))
    after = (read_json(run / "eval.json") or {}).get("global_step", 0)
    if c.require(after > before, f"eval.json global_step {before} -> {after}"):
        c.note(f"global_step {before} -> {after}")
    return c.outcome()


def c1_14(ctx: Ctx) -> Outcome:
    run = ctx.copy_run("base", "safe")
    args = ["--device", "cpu", "--threads", "1",
            *sets("train.final_eval_games=8", "train.checkpoint_interval=3")]  # fmt: skip
    c = succeeded(ctx.cli("train", "--resume", "runs/safe", *args))
    games = (read_json(run / "eval.json") or {}).get("games", {})
    counts = {v.get("games") for per in games.values() for v in per.values()}
    if c.require(counts == {8}, f"final evaluation games {sorted(counts)}, asked 8"):
        c.note("train.final_eval_games=8 applied")
    return c.outcome()


UNSAFE = (  # (label, arguments, what the message should name); "@c4": the c4 suite's path
    ("net.channels=16", sets("net.channels=16"), r"net|channels"),
    ("another suite", ["--suite", "@c4"], r"suite"),
    ("ppo.num_steps=16", sets("ppo.num_steps=16"), r"num_steps"),
    ("selfplay.pool_size=2", sets("selfplay.pool_size=2"), r"selfplay|pool_size"),
)


def c1_15(ctx: Ctx) -> Outcome:
    c = Checks()
    for k, (label, args, mention) in enumerate(UNSAFE):
        run = ctx.copy_run("base", f"unsafe{k}")
        before = tree_snapshot(run / "checkpoints")
        args = [ctx.suite(a[1:]) if a.startswith("@") else a for a in args]
        sub = user_error(ctx.cli("train", "--resume", f"runs/unsafe{k}", *args), mention)
        sub.require(tree_snapshot(run / "checkpoints") == before, "the checkpoint changed")
        c.add(sub, label)
    return c.outcome()


INT = "rc 130 (or 0)"
CASES = [
    Case("1.1", "Ctrl-C once after the first checkpoint, then `--resume`",
         f"finish the iteration, save, print `--resume`, {INT}; resume IDENTICAL", c1_1),
    Case("1.2", "Ctrl-C twice 30 ms apart (checkpoint_interval 3), then resume",
         "abort (rc 130); previous checkpoint whole, no stray files; resume IDENTICAL", c1_2),
    Case("1.3", "kill -9 at 5 random times (checkpoint every iteration), then resume",
         "a whole checkpoint is always there; every resume IDENTICAL", c1_3),
    Case("1.4", "kill -9 after the checkpoint at iteration 10 (default interval)",
         "resume IDENTICAL; TensorBoard shows each step once", c1_4),
    Case("1.5", "kill -9 inside a save (while `.writing-*` is written), k = 2, 3, 4",
         "previous checkpoint whole; resume IDENTICAL; no `.writing-*` left after it", c1_5),
    Case("1.6", "killed between two filesystem steps of a save during `--resume` of a "
         "checkpointed run (strace SIGKILL at rename/symlink call 1-5; KeyboardInterrupt at "
         "os.replace/rename/symlink call 1-3, os._exit at call 2)",
         "`eval` and `--resume` both work (a loadable checkpoint always exists); "
         "no `.writing-*` left", c1_6),
    Case("1.7", "Ctrl-C during start-up (as soon as `config.toml` appears)",
         "clean stop; then `--resume` or the same command again works (rc 0)", c1_7),
    Case("1.8", "SIGTERM after the first checkpoint (`Popen.send_signal`), then resume",
         "as Ctrl-C: save, print `--resume`, rc 143; resume IDENTICAL", c1_8),
    Case("1.9", "three games (ttt, Othello 6, Hex 5; snapshots): Ctrl-C, and kill -9",
         "resume IDENTICAL to an uninterrupted run", c1_9),
    Case("1.10", "NaN stop (`ppo.learning_rate=1e30`), then `--resume --set "
         "ppo.learning_rate=1e-4` as advised",
         "stop with finite last-good weights and advice; the resume applies the new rate "
         "(rc 0, no second NaN stop)", c1_10),
    Case("1.11", "Ctrl-C during `rltransfer transfer ... --name trint`, then "
         "`transfer --resume runs/trint`",
         "save, say how to continue (no `error:`); the resume finishes the experiment "
         "(rc 0, transfer_report.md)", c1_11),
    Case("1.12", "resume a transfer arm from another directory (absolute path)",
         "rc 0 (the source is not looked up relative to the cwd)", c1_12),
    Case("1.13", "`--resume` a finished 2,048-step run with `--steps 4096`",
         "extends it: rc 0, eval.json global_step grows", c1_13),
    Case("1.14", "`--resume` with safe overrides (`--device cpu --threads 1 --set "
         "train.final_eval_games=8 --set train.checkpoint_interval=3`)",
         "rc 0; the overrides apply (final evaluation of 8 games)", c1_14),
    Case("1.15", "`--resume` with unsafe overrides (`net.channels`, `--suite`, "
         "`ppo.num_steps`, `selfplay.pool_size`)",
         "each refused with a one-line error; the checkpoint unchanged", c1_15),
]  # fmt: skip
