"""Shared runs, built once per session in ``<scratch>/fixtures/`` and copied by the cases.

* ``base``: tic-tac-toe, stopped with Ctrl-C after 4,096 of 8,192 steps (resumable);
* ``done``: a finished 2,048-step run (``eval.json`` and a final checkpoint);
* ``c4net16``: a finished Connect Four run with a 16-channel network (another suite and
  another network shape than the others);
* ``nan``: a run stopped by a non-finite loss (learning rate 1e30);
* ``ref-...``: uninterrupted runs to compare resumed runs with (one per argument list).
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable
from pathlib import Path

from harness import (
    Ctx,
    FixtureError,
    ckpt_dir,
    meta_step,
    sets,
    wait_for,
)

BASE_STEPS = "8192"
BASE_STOP_AT = 4096
NAN_LR = "ppo.learning_rate=1e30"  # finite (inf itself should be refused), loss still NaN


def _finished(ctx: Ctx, name: str, argv: list[str]) -> Path:
    run = ctx.dir / "runs" / name
    r = ctx.cli(*argv, "--name", name)
    if r.rc != 0 or not (run / "eval.json").is_file():
        raise FixtureError(f"training failed: {r.summary()}")
    return run


def build_base(ctx: Ctx) -> Path:
    run = ctx.dir / "runs" / "base"
    argv = ctx.rl(*ctx.train_args("--steps", BASE_STEPS, "--name", "base",
                                  *sets("train.checkpoint_interval=1")))  # fmt: skip
    for sig in (signal.SIGINT, signal.SIGKILL):  # Ctrl-C, or kill -9 if Ctrl-C fails
        if run.exists():
            shutil.rmtree(run)
        proc = ctx.spawn(argv)
        wait_for(lambda: meta_step(run) >= BASE_STOP_AT, proc)
        proc.signal(sig)
        r = proc.wait()
        if meta_step(run) >= BASE_STOP_AT and not (run / "eval.json").exists():
            return run
    raise FixtureError(f"could not stop a run half-way: {r.summary()}")


def build_done(ctx: Ctx) -> Path:
    return _finished(ctx, "done", ctx.train_args("--steps", "2048"))


def build_c4net16(ctx: Ctx) -> Path:
    argv = ctx.train_args("--steps", "512", *sets("net.channels=16"), suite="c4")
    return _finished(ctx, "c4net16", argv)


def build_nan(ctx: Ctx) -> Path:
    run = ctx.dir / "runs" / "nan"
    r = ctx.cli(*ctx.train_args("--steps", "2048", "--name", "nan", *sets(NAN_LR)))
    if r.rc == 0 or not (ckpt_dir(run) / "meta.json").is_file():
        raise FixtureError(f"no NaN stop with {NAN_LR}: {r.summary()}")
    return run


def reference(ctx: Ctx, extra: list[str], suite: str) -> Path:
    """An uninterrupted run of ``train_args(*extra)``, named ``ref``."""
    return _finished(ctx, "ref", ctx.train_args(*extra, suite=suite))


BUILDERS: dict[str, Callable[[Ctx], Path]] = {
    "base": build_base,
    "done": build_done,
    "c4net16": build_c4net16,
    "nan": build_nan,
}
