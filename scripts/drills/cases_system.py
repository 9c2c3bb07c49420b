"""Drills 5 and 6: resources (a full disk, huge boards) and concurrent runs of one folder."""

from __future__ import annotations

import re

from harness import (
    Case,
    Checks,
    Ctx,
    Outcome,
    Proc,
    Run,
    leftovers,
    meta_step,
    mount_tmpfs,
    new_entries,
    read_json,
    sets,
    umount,
    user_error,
    wait_for,
)

NO_SPACE = r"space|disk|full|ENOSPC"


# ------------------------------------------------------------------------- resources
def c5_1(ctx: Ctx) -> Outcome:
    point = ctx.dir / "full"
    why = mount_tmpfs(point, "size=1000k")
    if why:
        return Outcome("SKIP", f"cannot mount a small tmpfs here: {why}")
    try:
        argv = ctx.train_args("--run-dir", "full", "--name", "full", "--steps", "8192",
                              *sets("train.checkpoint_interval=1", "selfplay.snapshot_interval=1"),
                              small_net=False)  # fmt: skip
        r = ctx.cli(*argv)
        run = point / "full"
        if r.rc == 0:
            return Outcome("SKIP", f"the 1,000 KiB disk did not fill ({r.summary()})")
        # the data must be safe (else FAIL); a poor report of it is PARTIAL
        c = Checks()
        c.main = r
        step = meta_step(run)
        loads = ctx.cli("eval", "full/full", "--games", "4")
        if c.require(loads.rc == 0, f"previous checkpoint ({step}) not loadable"):
            c.note(f"previous checkpoint ({step}) loads")
        c.require(not leftovers(run), f"left {leftovers(run)}", "PARTIAL")
        report = user_error(r, NO_SPACE)
        if report.level != "PASS":
            c.partial("; ".join(report.notes))
        return c.outcome()
    finally:
        umount(point)


def c5_2(ctx: Ctx) -> Outcome:
    argv = ctx.rl(*ctx.train_args("--steps", "512", "--name", "big",
                                  *sets("train.num_envs_scale=1e6")))  # fmt: skip
    r = ctx.limited(argv, 8_000_000)
    c = user_error(r, r"memory|boards|too many|allocate|RAM")
    left = new_entries(ctx.dir / "runs", [])
    if left and r.rc != 0:
        c.partial(f"left runs/{', runs/'.join(left)}")
    return c.outcome()


def c5_3(ctx: Ctx) -> Outcome:
    return Outcome("SKIP", "read-only run folder: run as 3.x13 and 3.x14")


# ----------------------------------------------------------------------- concurrency
def released_together(ctx: Ctx, argv: list[str], tag: str) -> list[tuple[Proc, Run]]:
    """Two CLI runs started through ``barrier.py``, released at the same moment."""
    go = ctx.dir / f"GO_{tag}"
    ready = [ctx.dir / f"READY_{tag}_{i}" for i in range(2)]
    procs = [ctx.spawn(ctx.script("barrier.py", str(r), str(go), "--", *argv)) for r in ready]
    wait_for(lambda: all(r.exists() for r in ready), timeout=120)
    go.touch()
    return [(p, p.wait()) for p in procs]


def exactly_one(pairs: list[tuple[Proc, Run]], folder: str) -> Checks:
    """One run works (rc 0), the other refuses with a one-line error naming the folder."""
    won = [(p, r) for p, r in pairs if r.rc == 0]
    lost = [(p, r) for p, r in pairs if r.rc != 0]
    c = Checks()
    if len(won) != 1:
        c.main = pairs[1][1]
        c.fail("both ran (exit 0)" if len(won) == 2 else "neither ran")
        return c
    (winner, _), (_, refused) = won[0], lost[0]
    c = user_error(refused, re.escape(folder))
    msg = refused.error_message()[0] or ""
    if str(winner.pid) in msg:
        c.note("names the holder's pid")
    return c


def train_conc(ctx: Ctx, name: str, steps: str = "2048", *extra: str) -> list[str]:
    return ctx.train_args("--steps", steps, "--name", name, *extra)


def c6_1(ctx: Ctx) -> Outcome:
    argv = ctx.rl(*train_conc(ctx, "conc"))
    procs = [ctx.spawn(argv), ctx.spawn(argv)]
    return exactly_one([(p, p.wait()) for p in procs], "conc").outcome()


def c6_2(ctx: Ctx) -> Outcome:
    c = Checks()
    for k in range(3):
        pairs = released_together(ctx, train_conc(ctx, f"race{k}"), f"try{k}")
        c.add(exactly_one(pairs, f"race{k}"), f"try {k}")
    return c.outcome()


def c6_3(ctx: Ctx) -> Outcome:
    first = ctx.spawn(ctx.rl(*train_conc(ctx, "conc2", "8192")))
    wait_for(lambda: meta_step(ctx.dir / "runs/conc2") > 0, first)
    late = ctx.cli(*train_conc(ctx, "conc2", "8192"))
    c = user_error(late, "conc2")
    done = first.wait()
    c.require(done.rc == 0, f"the first run: {done.summary()}")
    return c.outcome()


def c6_4(ctx: Ctx) -> Outcome:
    ctx.copy_run("base", "conc3")
    pairs = released_together(ctx, ["train", "--resume", "runs/conc3"], "resume")
    return exactly_one(pairs, "conc3").outcome()


def c6_5(ctx: Ctx) -> Outcome:
    run = ctx.dir / "runs/conc4"
    live = train_conc(ctx, "conc4", "16384", *sets("train.checkpoint_interval=2"))
    first = ctx.spawn(ctx.rl(*live))
    wait_for(lambda: meta_step(run) > 0, first)
    second = ctx.cli(*train_conc(ctx, "conc4", "2048", "--overwrite", "--seed", "3"))
    still_live = first.alive()
    done = first.wait()
    if second.rc == 0 and not still_live:  # not a race: a plain --overwrite of a finished run
        skipped = Checks()
        skipped.main = second
        skipped.skip("the live run ended before --overwrite got to it")
        return skipped.outcome()
    c = user_error(second, "conc4")
    c.require(done.rc == 0, f"the live run failed: {done.summary()}")
    config = (run / "config.toml").read_text() if (run / "config.toml").is_file() else ""
    c.require(re.search(r"(?m)^seed = 7$", config) is not None, "config.toml is not the live run's")
    step = (read_json(run / "eval.json") or {}).get("global_step")
    c.require(step == 16384, f"the live run's eval.json: global_step {step}, expected 16384")
    return c.outcome()


REFUSED = "one-line error, rc != 0, no traceback"
CASES = [
    Case("5.1", "disk full: a 1,000 KiB tmpfs as --run-dir, checkpoint and snapshot every "
         "iteration (ppo_small's 32-channel net)",
         f"fail cleanly ({REFUSED}, ideally saying the disk is full); previous checkpoint "
         "intact; no `.writing-*` left", c5_1),
    Case("5.2", "16M boards: `--set train.num_envs_scale=1e6` under `ulimit -v 8000000`",
         f"{REFUSED}, before allocating; no run folder left", c5_2),
    Case("5.3", "run folder read-only", "see 3.x13 and 3.x14", c5_3, counted=False),
    Case("6.1", "two `train --name conc` started together (plain Popen)",
         "exactly one runs; the other refuses with a one-line error naming the folder", c6_1),
    Case("6.2", "the same, released together after their imports (barrier), 3 tries",
         "exactly one runs each time; the other refuses naming the folder (ideally the "
         "holder's pid)", c6_2),
    Case("6.3", "a second `train --name conc2` while the first is training",
         "the second refuses; the first finishes (rc 0)", c6_3),
    Case("6.4", "two `train --resume runs/conc3` at once (barrier)",
         "one resumes (rc 0), the other refuses (lock)", c6_4),
    Case("6.5", "`train --name conc4 --overwrite` while conc4 is training",
         "refused; the live run unharmed and finishes (rc 0, its config, its eval.json)",
         c6_5),
]  # fmt: skip
