"""Drill 3: bad input on the command line (one case per input), names and --overwrite."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import tomllib
from harness import (
    Case,
    Checks,
    Ctx,
    Outcome,
    mount_tmpfs,
    new_entries,
    read_json,
    sets,
    succeeded,
    tree_snapshot,
    umount,
    user_error,
)

Argv = Callable[[Ctx], list[str]]
EVAL_SETS = sets("train.eval_games=16", "train.final_eval_games=32")
REFUSED = "one-line `error:`, rc != 0, no traceback"
REFUSED_TRAIN = REFUSED + ", no run folder left"


def train(*extra: str, steps: str | None = "512") -> Argv:
    """``train`` on the drills' suite, named ``x``; ``extra`` last (so it wins)."""
    budget = ["--steps", steps] if steps else []

    def argv(ctx: Ctx) -> list[str]:
        return ctx.train_args(*budget, "--name", "x", *extra)

    argv.trains = True  # type: ignore[attr-defined]
    return argv


def suite(content: str | bytes, file: str = "bad.toml") -> Argv:
    """``train --suite FILE``, FILE written with ``content`` first."""
    inner = train("--suite", file)

    def argv(ctx: Ctx) -> list[str]:
        ctx.write(file, content)
        return inner(ctx)

    argv.trains = True  # type: ignore[attr-defined]
    return argv


def transfer(*extra: str, to: str = "tic_tac_toe", source: str = "runs/src") -> Argv:
    return lambda ctx: ["transfer", "--from", source, "--to", to, "--steps", "256", "--seeds",
                        "1", "--baseline", "none", "--num-envs", "16", "--name", "tx",
                        *EVAL_SETS, *extra]  # fmt: skip


def fixed(*args: str) -> Argv:
    return lambda ctx: list(args)


def bench(*extra: str) -> Argv:
    return fixed("bench", "--device", "cpu", "--seconds", "0.05", "--no-reference", "--quiet",
                 *extra)  # fmt: skip


def sb3(*extra: str) -> Argv:
    return fixed("baseline", "sb3", "--game", "tic_tac_toe", "--steps", "256", "--eval-games",
                 "8", "--final-eval-games", "8", "--name", "sb", *extra)  # fmt: skip


def games_toml(*games: str, header: str = 'name = "bad"\n') -> str:
    return header + "".join(f"\n[[games]]\n{g}\n" for g in games)


def one_game(*lines: str) -> str:
    return games_toml("\n".join(lines))


ID_TTT = 'id = "tic_tac_toe"'
TTT = ID_TTT + "\nnum_envs = 16"


@dataclasses.dataclass
class Cli:
    id: str
    what: str
    argv: Argv
    expect: str = "error"  # error | ok
    mention: str | None = None
    files: dict[str, str | bytes | None] = dataclasses.field(default_factory=dict)
    needs: tuple[str, ...] = ()  # fixture runs copied into runs/
    no_cuda: bool = False  # the case assumes torch sees no CUDA device

    def case(self) -> Case:
        if self.expect == "ok":
            expected = "works (rc 0)"
        else:
            expected = REFUSED_TRAIN if getattr(self.argv, "trains", False) else REFUSED
        return Case(self.id, self.what, expected, self.run)

    def run(self, ctx: Ctx) -> Outcome:
        if self.no_cuda and ctx.s.cuda:
            return Outcome("SKIP", "torch sees a CUDA device here")
        for fixture in self.needs:
            ctx.copy_run(fixture, "src" if fixture == "done" else fixture)
        for rel, content in self.files.items():
            if content is None:
                (ctx.dir / rel).mkdir(parents=True)
            else:
                ctx.write(rel, content)
        runs = ctx.dir / "runs"
        before = os.listdir(runs) if runs.is_dir() else []
        r = ctx.cli(*self.argv(ctx))
        if self.expect == "ok":
            return succeeded(r).outcome()
        c = user_error(r, self.mention)
        left = new_entries(runs, before)
        if left and r.rc != 0:
            c.partial(f"left runs/{', runs/'.join(left)}")
        return c.outcome()


BIN = bytes(range(256)) * 4
SELFPLAY_ZERO = sets(*(f"selfplay.{k}=0" for k in ("self", "snapshot", "random", "greedy",
                                                    "perfect")))  # fmt: skip

TABLE = [
    Cli("3.0", "unknown suite name", train("--suite", "nosuch")),
    Cli("3.1", "unknown agent", train("--agent", "nosuch")),
    Cli("3.2", "suite path is a directory", train("--suite", "./adir"), files={"adir": None}),
    Cli("3.3", "suite: TOML syntax error", suite('name = "bad"\n[[games]\nid = 1\n')),
    Cli("3.4", "suite: games is a string", suite('games = "tic_tac_toe"\n')),
    Cli("3.5", "suite: games empty", suite("games = []\n")),
    Cli("3.6", "suite: unknown key", suite(games_toml(TTT + '\ncolour = "red"'))),
    Cli("3.7", "suite: missing id", suite(games_toml("num_envs = 16"))),
    Cli("3.8", "suite: num_envs string", suite(one_game(ID_TTT, 'num_envs = "many"'))),
    Cli("3.9", "suite: num_envs 0 (zero boards)", suite(one_game(ID_TTT, "num_envs = 0"))),
    Cli("3.10", "suite: num_envs 4.5", suite(one_game(ID_TTT, "num_envs = 4.5"))),
    Cli("3.11", "suite: num_envs true", suite(one_game(ID_TTT, "num_envs = true"))),
    Cli("3.12", "suite: weight -1", suite(games_toml(TTT + "\nweight = -1"))),
    Cli("3.13", "suite: duplicate games", suite(games_toml(TTT, TTT))),
    Cli("3.14", "suite: unknown game id", suite(games_toml('id = "nosuch"'))),
    Cli("3.15", "suite: othello size=3",
        suite(one_game('id = "othello"', "options = { size = 3 }"))),
    Cli("3.16", "suite: hex size='7' (string)",
        suite(one_game('id = "hex"', 'options = { size = "7" }'))),
    Cli("3.17", "suite: task name 'a/b c'", suite(games_toml(TTT + '\nname = "a/b c"'))),
    Cli("3.18", "suite: task name '../../evil'",
        suite(games_toml(TTT + '\nname = "../../evil"'), "evil_name.toml"), mention=r"evil_name"),
    Cli("3.19", "suite: binary file", suite(BIN)),
    Cli("3.20", "--set unknown key", train(*sets("ppo.nosuch=1"))),
    Cli("3.21", "--set unknown section", train(*sets("nosec.x=1"))),
    Cli("3.22", "--set without =", train(*sets("ppo.learning_rate"))),
    Cli("3.23", "--set lr=abc", train(*sets("ppo.learning_rate=abc"))),
    Cli("3.24", "--set lr=-1", train(*sets("ppo.learning_rate=-1"))),
    Cli("3.25", "--set lr=nan", train(*sets("ppo.learning_rate=nan"))),
    Cli("3.26", "--set lr=inf", train(*sets("ppo.learning_rate=inf"))),
    Cli("3.27", "--set gamma=2", train(*sets("ppo.gamma=2"))),
    Cli("3.28", "--set ppo.num_steps=0", train(*sets("ppo.num_steps=0"))),
    Cli("3.29", "--set ppo.num_minibatches=0", train(*sets("ppo.num_minibatches=0"))),
    Cli("3.30", "--set ppo.num_minibatches=100000", train(*sets("ppo.num_minibatches=100000"))),
    Cli("3.31", "--set ppo.update_epochs=-1", train(*sets("ppo.update_epochs=-1"))),
    Cli("3.32", "--set ppo.clip_coef=-1", train(*sets("ppo.clip_coef=-1"))),
    Cli("3.33", "--set ppo.adv_norm=bogus", train(*sets("ppo.adv_norm=bogus"))),
    Cli("3.34", "--set net.channels=0", train(*sets("net.channels=0"))),
    Cli("3.35", "--set net.channels=9 (not a multiple of net.groups=2)",
        train(*sets("net.channels=9"))),
    Cli("3.36", "--set net.blocks=-1", train(*sets("net.blocks=-1"))),
    Cli("3.37", "--set net.precision=float8", train(*sets("net.precision=float8"))),
    Cli("3.38", "--set train.num_envs_scale=0", train(*sets("train.num_envs_scale=0"))),
    Cli("3.39", "--set train.num_envs_scale=-1", train(*sets("train.num_envs_scale=-1"))),
    Cli("3.40", "--set train.eval_interval=0", train(*sets("train.eval_interval=0"))),
    Cli("3.41", "--set train.checkpoint_interval=0", train(*sets("train.checkpoint_interval=0"))),
    Cli("3.42", "--set train.eval_games=0", train(*sets("train.eval_games=0"))),
    Cli("3.43", "--set train.eval_opponents=['nobody']",
        train(*sets("train.eval_opponents=['nobody']"))),
    Cli("3.44", "--set selfplay.self=-1", train(*sets("selfplay.self=-1"))),
    Cli("3.45", "--set selfplay all zero", train(*SELFPLAY_ZERO)),
    Cli("3.46", "--set selfplay.pool_size=0", train(*sets("selfplay.pool_size=0"))),
    Cli("3.47", "--set train.total_steps=1e3 (float; no --steps)",
        train(*sets("train.total_steps=1e3"), steps=None)),
    Cli("3.48", "--steps -5", train("--steps", "-5")),
    Cli("3.49", "--steps 0", train("--steps", "0")),
    Cli("3.50", "--steps abc", train("--steps", "abc")),
    Cli("3.51", "--threads 0", train("--threads", "0")),
    Cli("3.52", "--threads -1", train("--threads", "-1")),
    Cli("3.53", "--device tpu", train("--device", "tpu")),
    Cli("3.54", "--device cuda (none present)", train("--device", "cuda"), no_cuda=True),
    Cli("3.55", "--seed -1 (valid)", train("--seed", "-1"), "ok"),
    Cli("3.56", "--resume nonexistent", fixed("train", "--resume", "runs/does_not_exist")),
    Cli("3.57", "--resume a file", fixed("train", "--resume", "afile"), files={"afile": "x\n"}),
    Cli("3.58", "--resume a non-run dir", fixed("train", "--resume", "adir"),
        files={"adir/notes.txt": "x\n"}),
    Cli("3.59", "--run-dir is a file", train("--run-dir", "afile"), files={"afile": "x\n"}),
    Cli("3.60", "eval nonexistent", fixed("eval", "runs/does_not_exist")),
    Cli("3.61", "eval a file", fixed("eval", "afile"), files={"afile": "x\n"}),
    Cli("3.62", "eval --games 0", fixed("eval", "runs/base", "--games", "0"), needs=("base",)),
    Cli("3.63", "eval --games -3", fixed("eval", "runs/base", "--games", "-3"), needs=("base",)),
    Cli("3.64", "eval --opponent nosuch", fixed("eval", "runs/base", "--opponent", "nosuch",
                                                "--games", "4"), needs=("base",)),
    Cli("3.65", "eval --game nosuch", fixed("eval", "runs/base", "--game", "nosuch",
                                            "--games", "4"), needs=("base",)),
    Cli("3.66", "eval --opponent perfect --game tic_tac_toe (valid)",
        fixed("eval", "runs/base", "--opponent", "perfect", "--game", "tic_tac_toe",
              "--games", "4"), "ok", needs=("base",)),
    Cli("3.67", "eval --device cuda (none)", fixed("eval", "runs/base", "--device", "cuda",
                                                   "--games", "4"), needs=("base",), no_cuda=True),
    Cli("3.68", "eval --threads 0", fixed("eval", "runs/base", "--threads", "0", "--games", "4"),
        needs=("base",)),
    Cli("3.69", "transfer --from nonexistent", transfer(source="runs/does_not_exist")),
    Cli("3.70", "transfer --to nosuch", transfer(to="nosuch"), needs=("done",)),
    Cli("3.71", "transfer --to othello:size=3", transfer(to="othello:size=3"), needs=("done",)),
    Cli("3.72", "transfer --to hex:size=-1", transfer(to="hex:size=-1"), needs=("done",)),
    Cli("3.73", "transfer --to gomoku:size=1000", transfer(to="gomoku:size=1000"),
        needs=("done",)),
    Cli("3.74", "transfer --to hex:size=abc", transfer(to="hex:size=abc"), needs=("done",)),
    Cli("3.75", "transfer --to hex:size=7.0", transfer(to="hex:size=7.0"),
        mention=r"5\.\.13|choose|allowed|integer", needs=("done",)),
    Cli("3.76", "transfer --to hex:bogus=1", transfer(to="hex:bogus=1"), needs=("done",)),
    Cli("3.77", "transfer --to hex:size", transfer(to="hex:size"), needs=("done",)),
    Cli("3.78", "transfer --seeds 0", transfer("--seeds", "0"), needs=("done",)),
    Cli("3.79", "transfer --num-envs 0", transfer("--num-envs", "0"), needs=("done",)),
    Cli("3.80", "transfer --threshold 2", transfer("--threshold", "2"), needs=("done",)),
    Cli("3.81", "transfer --from a file", transfer(source="afile"), files={"afile": "x\n"}),
    Cli("3.82", "report nonexistent", fixed("report", "runs/does_not_exist")),
    Cli("3.83", "report on a plain run", fixed("report", "runs/base"), needs=("base",)),
    Cli("3.84", "bench --games nosuch", bench("--games", "nosuch")),
    Cli("3.85", "bench --games hex:size=99", bench("--games", "hex:size=99")),
    Cli("3.86", "bench --batch 0", bench("--games", "tic_tac_toe", "--batch", "0")),
    Cli("3.87", "bench --batch -4", bench("--games", "tic_tac_toe", "--batch", "-4")),
    Cli("3.88", "bench --device cuda (none)", bench("--games", "tic_tac_toe", "--device", "cuda"),
        no_cuda=True),
    Cli("3.89", "bench --threads 0", bench("--games", "tic_tac_toe", "--batch", "4",
                                           "--threads", "0")),
    Cli("3.90", "baseline sb3 --game nosuch", sb3("--game", "nosuch")),
    Cli("3.91", "baseline sb3 --steps -1", sb3("--steps", "-1")),
    Cli("3.92", "baseline sb3 --n-envs 0", sb3("--n-envs", "0")),
    Cli("3.93", "bench-train --scale 0",
        lambda ctx: ["bench-train", "--suite", ctx.suite(), "--scale", "0", "--iterations", "1",
                     "--warmup", "0", "--quiet", *sets("net.channels=8", "net.groups=2")]),
    Cli("3.94", "no command", fixed()),
    Cli("3.95", "unknown command", fixed("frobnicate")),
    Cli("3.x1", "--set train.total_steps=-100 (no --steps)",
        train(*sets("train.total_steps=-100"), steps=None)),
    Cli("3.x2", "suite hex options={size=7.0} with an explicit name",
        suite(games_toml('id = "hex"\nname = "hex7"\noptions = { size = 7.0 }\nnum_envs = 16')),
        mention=r"5\.\.13|choose|allowed|integer"),
    Cli("3.x3", "suite options={illegal_action='explode'}",
        suite(games_toml(TTT + '\noptions = { illegal_action = "explode" }'))),
    Cli("3.x10", "--name of 300 characters", train("--name", "a" * 300)),
    Cli("3.x11", "--name containing a newline", train("--name", "bad\nname")),
]  # fmt: skip


# ------------------------------------------------------------------- names (escapes)
def nested(ctx: Ctx) -> Path:
    """A working directory two levels down (``a/b``), so ``runs/../../x`` stays in the case."""
    cwd = ctx.dir / "a" / "b"
    cwd.mkdir(parents=True)
    return cwd


def escape_case(argv: Argv, target: str, precious: bool = False) -> Callable[[Ctx], Outcome]:
    """A command whose ``--name`` points at ``a/<target>`` (outside ``a/b/runs``)."""

    def run(ctx: Ctx) -> Outcome:
        cwd = nested(ctx)
        ctx.copy_run("done", "src", into=cwd / "runs")
        victim = ctx.dir / "a" / target
        if precious:
            (victim / "data").mkdir(parents=True)
            (victim / "data" / "thesis.txt").write_text("irreplaceable\n")
        before = tree_snapshot(victim)
        c = user_error(ctx.cli(*argv(ctx), cwd=cwd))
        after = tree_snapshot(victim)
        if precious:
            c.require(after == before, "DATA LOSS: the folder outside runs/ changed or is gone")
        else:
            c.require(not victim.exists(), f"PATH ESCAPE: created {victim.relative_to(ctx.dir)}")
        return c.outcome()

    return run


def abs_name(ctx: Ctx) -> Outcome:
    target = ctx.dir / "abs_target"
    c = user_error(ctx.cli(*train("--name", str(target))(ctx)))
    c.require(not target.exists(), "PATH ESCAPE: absolute --name created outside runs/")
    return c.outcome()


def sibling_case(name: str, overwrite: bool) -> Callable[[Ctx], Outcome]:
    """``--name`` that resolves to ``runs/`` itself (or above); a sibling run must survive."""

    def run(ctx: Ctx) -> Outcome:
        keep = ctx.copy_run("done", "keepme")
        ctx.write("notes.txt", "the user's file beside runs/\n")
        before, notes = tree_snapshot(keep), (ctx.dir / "notes.txt").read_bytes()
        extra = ["--overwrite"] if overwrite else []
        c = user_error(ctx.cli(*train("--name", name, *extra)(ctx)))
        c.require(tree_snapshot(keep) == before, "DATA LOSS: runs/keepme changed or deleted")
        notes_ok = (ctx.dir / "notes.txt").is_file()
        c.require(notes_ok and (ctx.dir / "notes.txt").read_bytes() == notes,
                  "DATA LOSS: a file beside runs/ is gone")  # fmt: skip
        c.require(not (ctx.dir / "runs" / "config.toml").exists(), "wrote into runs/ itself")
        return c.outcome()

    return run


def slash_name(ctx: Ctx) -> Outcome:
    c = user_error(ctx.cli(*train("--name", "a/b")(ctx)))
    c.require(not (ctx.dir / "runs" / "a").exists(), "created runs/a/b")
    return c.outcome()


# ------------------------------------------------------------------------ overwrite
def victim_case(*bad: str) -> Callable[[Ctx], Outcome]:
    """``--name victim --overwrite`` with a setting checked late: victim must survive."""

    def run(ctx: Ctx) -> Outcome:
        if "cuda" in bad and ctx.s.cuda:
            return Outcome("SKIP", "torch sees a CUDA device here")
        victim = ctx.copy_run("done", "victim")
        before = tree_snapshot(victim)
        c = user_error(ctx.cli(*train("--name", "victim", "--overwrite", *bad)(ctx)))
        loads = ctx.cli("eval", "runs/victim", "--games", "4").rc == 0
        c.require(loads and (victim / "eval.json").is_file(),
                  "DATA LOSS: victim's checkpoint or eval.json gone")  # fmt: skip
        if tree_snapshot(victim) != before:
            c.note("victim's files changed")
        elif c.level == "PASS":
            c.note("victim intact")
        return c.outcome()

    return run


def overwrite_works(ctx: Ctx) -> Outcome:
    victim = ctx.copy_run("done", "victim")
    old = {str(p.relative_to(victim)) for p in victim.rglob("*") if p.is_file()}
    r = ctx.cli(*train("--name", "victim", "--overwrite", "--seed", "3", steps="1024")(ctx))
    c = succeeded(r)
    config = tomllib.loads((victim / "config.toml").read_text()) if r.rc == 0 else {}
    c.require(config.get("train", {}).get("seed") == 3, "config.toml is not the new run's")
    step = (read_json(victim / "eval.json") or {}).get("global_step")
    c.require(step == 1024, f"eval.json global_step {step}, expected 1024")
    events = {n for n in old if n.startswith("events.out")}
    stale = sorted(n for n in events if (victim / n).exists())
    c.require(not stale, f"old files left: {stale}")
    others = [n for n in os.listdir(ctx.dir / "runs") if n != "victim"]
    c.require(not others, f"left beside it: {others}")
    return c.outcome()


# ------------------------------------------------------------------- odd run configs
def multiline_description(ctx: Ctx) -> Outcome:
    desc = "two lines:\nthe second one"
    text = f'name = "ml"\ndescription = """{desc}"""\n' + games_toml(TTT, header="")
    ctx.write("ml.toml", text)
    c = succeeded(ctx.cli(*train("--suite", "ml.toml", "--name", "ml")(ctx)))
    try:
        config = tomllib.loads((ctx.dir / "runs/ml/config.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        c.fail(f"config.toml unreadable, so --resume is impossible: {e}")
        return c.outcome()
    c.require(config["suite"]["description"] == desc, "the description changed in config.toml")
    return c.outcome()


def nan_resume(ctx: Ctx) -> Outcome:
    ctx.copy_run("nan")
    r = ctx.cli("train", "--resume", "runs/nan", *sets("ppo.learning_rate=1e-4"))
    c = succeeded(r)
    c.require("non-finite" not in r.output, "the same NaN stop again: the override was ignored")
    return c.outcome()


# ------------------------------------------------------------------- read-only folders
def read_only_dir(ctx: Ctx) -> Outcome:
    ro = ctx.dir / "ro"
    why = mount_tmpfs(ro, "ro,size=1m")
    if why:
        return Outcome("SKIP", f"cannot mount a read-only tmpfs here: {why}")
    try:
        ctx.copy_run("done", "src")
        c = Checks()
        c.head = "--run-dir / --json on a read-only tmpfs"
        mention = r"read-only|permission|cannot write|not writable"
        c.add(user_error(ctx.cli(*train("--run-dir", "ro")(ctx)), mention), "train")
        c.add(user_error(ctx.cli(*transfer("--run-dir", "ro")(ctx)), mention), "transfer")
        c.add(user_error(ctx.cli(*bench("--games", "tic_tac_toe", "--batch", "4", "--json",
                                        "ro/b.json")(ctx)), mention), "bench --json")  # fmt: skip
        return c.outcome()
    finally:
        umount(ro)


def read_only_resume(ctx: Ctx) -> Outcome:
    point = ctx.dir / "rofs"
    why = mount_tmpfs(point, "size=64m")
    if why:
        return Outcome("SKIP", f"cannot mount a tmpfs here: {why}")
    try:
        run = ctx.copy_run("base", into=point)
        remount = subprocess.run(["mount", "-o", "remount,ro", str(point)], capture_output=True)
        if remount.returncode:
            return Outcome("SKIP", "cannot remount the tmpfs read-only")
        before = tree_snapshot(run)
        c = user_error(ctx.cli("train", "--resume", "rofs/base"),
                       r"read-only|permission|cannot write|not writable")  # fmt: skip
        c.require(tree_snapshot(run) == before, "the checkpoint changed")
        return c.outcome()
    finally:
        umount(point)


DATA_SAFE = REFUSED + "; nothing outside `runs/` created or deleted"
CUSTOM = [
    Case("3.x4", "--name ../../escape_rel", DATA_SAFE,
         escape_case(train("--name", "../../escape_rel"), "escape_rel")),
    Case("3.x5", "--name <absolute path>", DATA_SAFE, abs_name),
    Case("3.x6", "--name ../../precious (existing folder, no --overwrite)", DATA_SAFE,
         escape_case(train("--name", "../../precious"), "precious", precious=True)),
    Case("3.x7", "--name ../../precious --overwrite", DATA_SAFE + " (precious intact)",
         escape_case(train("--name", "../../precious", "--overwrite"), "precious", True)),
    Case("3.x8", "--name . --overwrite (runs/ holds another run)",
         REFUSED + "; runs/keepme intact byte for byte", sibling_case(".", overwrite=True)),
    Case("3.x9", "transfer --name ../../tr_escape", DATA_SAFE,
         escape_case(transfer("--name", "../../tr_escape"), "tr_escape")),
    Case("3.x12", "suite with a multi-line description (valid TOML \"\"\"...\"\"\")",
         "trains; its config.toml stays valid TOML (resumable)", multiline_description),
    Case("3.x13", "--run-dir on a read-only fs (train / transfer / bench --json)", REFUSED,
         read_only_dir),
    Case("3.x14", "--resume of a run whose folder became read-only",
         REFUSED + "; checkpoint intact", read_only_resume),
    Case("3.x15", "train --name victim --overwrite --device cuda (no CUDA), victim finished",
         REFUSED + "; victim intact (still evaluates, eval.json kept)",
         victim_case("--device", "cuda")),
    Case("3.x16", "train --resume runs/nan --set ppo.learning_rate=1e-4",
         "the override applies: rc 0, no second NaN stop", nan_resume),
    Case("3.x17", "--name . (no --overwrite)", REFUSED + "; runs/keepme intact",
         sibling_case(".", overwrite=False)),
    Case("3.x18", "--name ..", REFUSED + "; runs/keepme and the files beside runs/ intact",
         sibling_case("..", overwrite=False)),
    Case("3.x19", "--name a/b", REFUSED + "; nothing created", slash_name),
    Case("3.x20", "baseline sb3 --name ../../sb_escape", DATA_SAFE,
         escape_case(sb3("--name", "../../sb_escape"), "sb_escape")),
    Case("3.x21", "--name victim --overwrite --set train.eval_interval=0",
         REFUSED + "; victim intact", victim_case(*sets("train.eval_interval=0"))),
    Case("3.x22", "--name victim --overwrite --set net.channels=0",
         REFUSED + "; victim intact", victim_case(*sets("net.channels=0"))),
    Case("3.x23", "--name victim --overwrite --threads 0", REFUSED + "; victim intact",
         victim_case("--threads", "0")),
    Case("3.x24", "--name victim --overwrite --device tpu", REFUSED + "; victim intact",
         victim_case("--device", "tpu")),
    Case("3.x25", "--name victim --overwrite (valid: --seed 3, 1,024 steps)",
         "rc 0; the run is replaced (new config.toml and eval.json, no old event files)",
         overwrite_works),
]  # fmt: skip

CASES = [*(c.case() for c in TABLE), *CUSTOM]
