"""The drills' machinery: cases, scratch folders, commands, fixtures and verdicts.

Every case runs in its own scratch folder (its working directory, with ``runs/`` in it)
and drives rltransfer the way a user would: ``python -m rltransfer ...`` in a subprocess,
signals through ``Popen.send_signal``, small Python snippets for the library API. The
verdict comes from checking the expected behaviour, never from comparing old output.
"""

from __future__ import annotations

import dataclasses
import filecmp
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

PASS, FAIL, PARTIAL, SKIP, ERROR = "PASS", "FAIL", "PARTIAL", "SKIP", "ERROR"
VERDICTS = (PASS, FAIL, PARTIAL, SKIP, ERROR)
NOTE = "NOTE"  # a row shown but not counted
_RANK = {PASS: 0, SKIP: 1, PARTIAL: 2, FAIL: 3, ERROR: 4}

# The small setup of every training command (cf. the drill write-up: one tic-tac-toe game,
# 16 boards, 512 learner steps an iteration, small evaluations).
SMALL_NET = ("net.channels=8", "net.blocks=1", "net.groups=2")
SMALL_RUN = ("ppo.num_steps=32", "train.eval_games=16", "train.final_eval_games=32")
SEED = "7"
SUITES = {
    "ttt": """\
name = "ttt"
description = "tic-tac-toe on 16 boards (the drills' suite)"

[[games]]
id = "tic_tac_toe"
num_envs = 16
""",
    "c4": """\
name = "c4"
description = "Connect Four on 16 boards"

[[games]]
id = "connect_four"
num_envs = 16
""",
    "multi": """\
name = "multi"
description = "three games: tic-tac-toe, Othello 6x6 (passes), Hex 5x5"

[[games]]
id = "tic_tac_toe"
num_envs = 16

[[games]]
id = "othello"
options = { size = 6 }
num_envs = 8

[[games]]
id = "hex"
options = { size = 5 }
num_envs = 8
""",
}

DEFAULT_TIMEOUT = 240.0


def sets(*items: str) -> list[str]:
    """``sets("a=1", "b=2")`` -> ``["--set", "a=1", "--set", "b=2"]``."""
    return [x for item in items for x in ("--set", item)]


# ------------------------------------------------------------------------------ outcomes
@dataclasses.dataclass
class Outcome:
    verdict: str
    observed: str


class Checks:
    """A verdict built from several checks: the worst level wins; every note is kept."""

    def __init__(self) -> None:
        self.level = PASS
        self.notes: list[str] = []
        self.main: Run | None = None  # the run whose rc and last line head "observed"
        self.head = ""  # or this text

    def _lower(self, level: str, note: str) -> None:
        if _RANK[level] > _RANK[self.level]:
            self.level = level
        if note:
            self.notes.append(note)

    def fail(self, note: str) -> None:
        self._lower(FAIL, note)

    def partial(self, note: str) -> None:
        self._lower(PARTIAL, note)

    def skip(self, note: str) -> None:
        self._lower(SKIP, note)

    def note(self, note: str) -> None:
        self.notes.append(note)

    def require(self, ok: bool, note: str, level: str = FAIL) -> bool:
        """Lower the verdict to ``level`` with ``note`` unless ``ok``; returns ``ok``."""
        if not ok:
            self._lower(level, note)
        return ok

    def add(self, sub: Checks, label: str = "", width: int = 110) -> None:
        """Fold a sub-check in: its level, and its observed text (shortened) as a note."""
        prefix = f"{label}: " if label else ""
        self._lower(sub.level, "")
        text = sub.outcome().observed
        if len(text) > width:
            text = text[: width - 3] + "..."
        self.notes.append(f"{prefix}{sub.level} ({text})")

    def outcome(self) -> Outcome:
        head = self.head or (self.main.summary() if self.main is not None else "")
        return Outcome(self.level, "; ".join(x for x in [head, *self.notes] if x))


# ---------------------------------------------------------------------------------- runs
# a tqdm frame: "desc: 42%|##  | 42/100 [00:01<00:02, 9.0step/s, k=v]", "desc: 3run [00:01, ...]"
_BAR = re.compile(r"^.*?(?:\d+%\|[^|]*\|[^\[]*|\d+\w* )\[\d+:\d\d[^\]]*\]")
ERROR_LINE = re.compile(r"^(?:rltransfer(?: [\w-]+)*: )?error: (?P<msg>.*\S)\s*$")


def text_lines(text: str) -> list[str]:
    """Non-empty lines of output, progress-bar frames cut out (text after a frame is kept)."""
    lines = (_BAR.sub("", x, count=1).strip() for x in re.split(r"[\r\n]+", text))
    return [x for x in lines if x]


@dataclasses.dataclass
class Run:
    """One finished command: exit status and output."""

    argv: list[str]
    rc: int | None  # None: timed out
    out: str
    err: str
    seconds: float = 0.0

    @property
    def output(self) -> str:
        return self.out + "\n" + self.err

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.output

    def last_line(self) -> str:
        """The last non-progress line: of stderr for a failure, else of stdout (or stderr)."""
        err, out = text_lines(self.err), text_lines(self.out)
        if self.rc != 0 and err:
            return err[-1]
        return (out or err or [""])[-1]

    def summary(self, width: int = 160) -> str:
        rc = "timeout" if self.rc is None else f"rc {self.rc}"
        line = self.last_line()
        if len(line) > width:
            line = line[: width - 3] + "..."
        return f"{rc}: `{line}`" if line else rc

    def error_message(self) -> tuple[str | None, int]:
        """The last ``error:`` line's message, and how many lines follow it."""
        for where in (self.err, self.out):
            lines = text_lines(where)
            for i in range(len(lines) - 1, -1, -1):
                m = ERROR_LINE.match(lines[i])
                if m:
                    return m.group("msg"), len(lines) - 1 - i
        return None, 0


def bare(message: str) -> bool:
    """A message that is one bare token (``2``, ``utf-8``), which tells the user nothing."""
    return re.fullmatch(r"[\w.+:'\"/-]*", message.strip()) is not None or len(message) < 8


def user_error(run: Run, mention: str | None = None) -> Checks:
    """Checks for a refused user mistake: non-zero exit, no traceback, one clear line.

    ``mention``: a regex the message should match (else PARTIAL: the reporting is poor).
    """
    c = Checks()
    c.main = run
    if run.rc is None:
        c.fail("timed out")
        return c
    if run.rc == 0:
        c.fail("accepted silently (exit 0)")
        return c
    if run.rc < 0:
        c.fail(f"killed by signal {-run.rc}")
    if run.traceback:
        c.fail("Python traceback")
        return c
    msg, after = run.error_message()
    if msg is None:
        c.fail("no `error:` line (not refused up front)")
        return c
    if after:
        c.partial(f"the error message spans {after + 1} lines")
    if bare(msg):
        c.fail(f"unclear message {msg!r}")
    elif mention and not re.search(mention, msg, re.IGNORECASE):
        c.partial(f"the message does not say /{mention}/")
    return c


def succeeded(run: Run) -> Checks:
    """Checks for a command that must work: exit 0, no traceback."""
    c = Checks()
    c.main = run
    if run.rc != 0:
        c.fail("should work" if run.rc is not None else "timed out")
    elif run.traceback:
        c.partial("traceback printed")
    return c


def either(run: Run, mention: str | None = None) -> Checks:
    """Checks for a command that may work or refuse: exit 0, or a clean user error."""
    return succeeded(run) if run.rc == 0 else user_error(run, mention)


# ----------------------------------------------------------------------- API snippets
_API_TEMPLATE = """\
import json, sys
def _emit(d):
    print("@@RESULT " + json.dumps(d, default=repr), flush=True)
try:
{body}
except BaseException as _e:
    _emit({{"ok": False, "type": type(_e).__name__, "module": type(_e).__module__,
           "mro": [c.__name__ for c in type(_e).__mro__], "msg": str(_e)}})
else:
    _emit({{"ok": True, "result": result}})
"""
_CLEAN_BASES = ("ValueError", "LookupError", "TypeError", "OSError")
_UNCLEAR = ("AttributeError", "AssertionError", "ZeroDivisionError", "NameError")


def api_snippet(body: str) -> str:
    """A program that runs ``body`` (which sets ``result``) and prints its outcome as JSON."""
    indented = "\n".join("    " + line for line in body.strip("\n").splitlines())
    return _API_TEMPLATE.format(body=indented)


def api_result(run: Run) -> dict[str, Any] | None:
    for line in reversed(run.out.splitlines()):
        if line.startswith("@@RESULT "):
            return json.loads(line[len("@@RESULT ") :])
    return None


def api_summary(res: dict[str, Any] | None, run: Run, width: int = 160) -> str:
    if res is None:
        text = f"no result ({run.summary()})"
    elif res["ok"]:
        text = "OK -> " + json.dumps(res["result"])
    else:
        text = f"{res['type']}: {res['msg']}"
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def clean_exception(res: dict[str, Any]) -> bool:
    """An exception a user can act on: rltransfer's own, or a ValueError/TypeError/..."""
    if res["type"] in _UNCLEAR:
        return False
    ours = str(res.get("module", "")).startswith("rltransfer")
    return ours or any(b in res["mro"] for b in _CLEAN_BASES)


def api_checks(
    run: Run,
    *,
    ok: Callable[[Any], bool] | None = None,
    raises: tuple[str, ...] = (),
    mention: str | None = None,
    poor: tuple[str, ...] = (),
) -> Checks:
    """Checks of an API snippet's outcome.

    ``ok``: a result is allowed and must satisfy it; ``raises``: exception types allowed
    (any of the class's bases counts; ``("clean",)``: any clear exception); ``mention``: a
    regex an exception's message must match (else PARTIAL); ``poor``: exception types that
    reject the input but say nothing useful (PARTIAL).
    """
    c = Checks()
    res = api_result(run)
    c.head = api_summary(res, run)
    if res is None:
        c.fail("the snippet crashed")
    elif res["ok"]:
        if ok is None:
            c.fail("no error raised")
        elif not ok(res["result"]):
            c.fail("wrong result")
    elif res["type"] in poor:
        c.partial(f"rejected, but with a cryptic {res['type']}")
    elif not raises:
        c.fail("raised")
    elif "clean" in raises and not clean_exception(res):
        c.fail(f"unclear {res['type']}")
    elif "clean" not in raises and not any(t in res["mro"] for t in raises):
        c.fail(f"{res['type']}, expected {' or '.join(raises)}")
    elif bare(res["msg"]) and res["type"] != "KeyboardInterrupt":
        c.fail(f"unclear message {res['msg']!r}")
    elif mention and not re.search(mention, res["msg"], re.IGNORECASE):
        c.partial(f"the message does not say /{mention}/")
    return c


# ---------------------------------------------------------------------------- the cases
@dataclasses.dataclass
class Case:
    id: str  # as in run-folder-drills.md: "1.1", "2.17", "3.x8", ...
    what: str  # the drill: what is tried
    expected: str
    run: Callable[[Ctx], Outcome]
    counted: bool = True  # False: a NOTE row

    @property
    def drill(self) -> int:
        return int(self.id.split(".")[0])


# ------------------------------------------------------------------------------ session
class Session:
    """The scratch root, the interpreter, the shared fixtures (built once, cached)."""

    def __init__(self, root: Path, python: str, env: dict[str, str]) -> None:
        self.root = root
        self.python = python
        self.env = env
        for name, text in SUITES.items():
            (root / f"{name}.toml").write_text(text)
        self.suite = root / "ttt.toml"
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._failed: dict[str, str] = {}
        self.cuda = self._probe_cuda()

    def _probe_cuda(self) -> bool:
        code = "import torch; print(torch.cuda.is_available())"
        r = subprocess.run([self.python, "-c", code], capture_output=True, text=True, env=self.env)
        return r.stdout.strip() == "True"

    def case_dir(self, case_id: str) -> Path:
        """A fresh, empty folder for one case (a previous session's is removed)."""
        path = self.root / "cases" / case_id.replace("/", "_")
        for point in mounts_under(path):
            umount(point)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def fixture(self, name: str, build: Callable[[Ctx], Path]) -> Path:
        """A shared run, built once by ``build`` in ``fixtures/<name>/`` (cached there)."""
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            if name in self._failed:
                raise FixtureError(self._failed[name])
            home = self.root / "fixtures" / name
            done = home / "READY"
            if done.is_file():
                return Path(done.read_text())
            if home.exists():
                shutil.rmtree(home)
            home.mkdir(parents=True)
            ctx = Ctx(self, home, f"fixture {name}")
            try:
                path = build(ctx)
            except FixtureError as e:
                self._failed[name] = f"fixture {name}: {e}"
                raise FixtureError(self._failed[name]) from None
            done.write_text(str(path))
            return path


class FixtureError(RuntimeError):
    """A shared run could not be built; the cases that need it cannot run."""


class Proc:
    """A running command (``Popen``), its output going to files in the case folder."""

    def __init__(
        self, argv: list[str], cwd: Path, env: dict[str, str], logs: Path, tag: str
    ) -> None:
        self.argv = argv
        self.out_path = logs / f".{tag}.out"
        self.err_path = logs / f".{tag}.err"
        self.start = time.monotonic()
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.popen = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> bool:
        """Send ``sig`` if the process still runs; returns whether it did."""
        if not self.alive():
            return False
        self.popen.send_signal(sig)
        return True

    def wait(self, timeout: float = DEFAULT_TIMEOUT) -> Run:
        try:
            rc: int | None = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            rc = None
        return Run(
            self.argv,
            rc,
            self.out_path.read_text(errors="replace"),
            self.err_path.read_text(errors="replace"),
            time.monotonic() - self.start,
        )


class Ctx:
    """What a case works with: its scratch folder and ways to run commands in it."""

    def __init__(self, session: Session, folder: Path, label: str) -> None:
        self.s = session
        self.dir = folder
        self.label = label
        self._count = 0

    # ------------------------------------------------------------------- commands
    def rl(self, *args: str) -> list[str]:
        """argv of ``python -m rltransfer ARGS``."""
        return [self.s.python, "-m", "rltransfer", *args]

    def suite(self, name: str = "ttt") -> str:
        """Path of one of the drills' suite files (``ttt``, ``c4``, ``multi``)."""
        return str(self.s.root / f"{name}.toml")

    def train_args(self, *extra: str, suite: str = "ttt", small_net: bool = True) -> list[str]:
        """``train`` on a drills' suite, seed 7, small budgets; ``extra`` after them."""
        net = sets(*SMALL_NET) if small_net else []
        return ["train", "--suite", self.suite(suite), "--seed", SEED, *net,
                *sets(*SMALL_RUN), *extra]  # fmt: skip

    def _tag(self) -> str:
        self._count += 1
        return f"cmd{self._count}"

    def spawn(self, argv: Sequence[str], cwd: Path | None = None) -> Proc:
        return Proc(list(argv), cwd or self.dir, self.s.env, self.dir, self._tag())

    def run(
        self, argv: Sequence[str], cwd: Path | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> Run:
        return self.spawn(argv, cwd).wait(timeout)

    def cli(self, *args: str, cwd: Path | None = None, timeout: float = DEFAULT_TIMEOUT) -> Run:
        """``python -m rltransfer ARGS`` in the case folder (or ``cwd``), waited for."""
        return self.run(self.rl(*args), cwd, timeout)

    def limited(self, argv: Sequence[str], vmem_kb: int, cwd: Path | None = None) -> Run:
        """``argv`` under ``ulimit -v vmem_kb`` (through ``bash -c``)."""
        quoted = " ".join(shlex_quote(a) for a in argv)
        return self.run(["bash", "-c", f"ulimit -v {vmem_kb}; exec {quoted}"], cwd)

    def script(self, name: str, *args: str) -> list[str]:
        """argv of one of the helper scripts beside this file (``inject.py``, ...)."""
        return [self.s.python, str(HERE / name), *args]

    def python(self, code: str, cwd: Path | None = None, timeout: float = 120) -> Run:
        return self.run([self.s.python, "-c", code], cwd, timeout)

    # --------------------------------------------------------------------- fixtures
    def fixture(self, name: str) -> Path:
        from fixtures import BUILDERS

        return self.s.fixture(name, BUILDERS[name])

    def ref(self, *extra: str, suite: str = "ttt") -> Path:
        """The uninterrupted run of ``train_args(*extra)`` (a fixture per argument list)."""
        from fixtures import reference

        key = f"ref-{suite}-" + re.sub(r"[^\w.=-]+", "_", "_".join(extra))[:120]
        return self.s.fixture(key, lambda ctx: reference(ctx, list(extra), suite))

    def copy_run(self, fixture: str, name: str | None = None, into: Path | None = None) -> Path:
        """A private copy of a fixture run at ``runs/<name>`` (default: the fixture's name)."""
        src = self.fixture(fixture)
        dest = (into or self.dir / "runs") / (name or fixture)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dest, symlinks=True)
        return dest

    def write(self, rel: str, content: str | bytes) -> Path:
        path = self.dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path


def shlex_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


# ------------------------------------------------------------------ run-folder helpers
def ckpt_dir(run: Path) -> Path:
    return run / "checkpoints" / "latest"


def meta_step(run: Path) -> int:
    """global_step of a run's latest checkpoint (-1 if none can be read now)."""
    try:
        return int(json.loads((ckpt_dir(run) / "meta.json").read_text())["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1


def wait_for(cond: Callable[[], bool], proc: Proc | None = None, timeout: float = 120) -> bool:
    """Poll ``cond`` until true (False on timeout, or when ``proc`` ended before)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        if proc is not None and not proc.alive():
            return cond()
        time.sleep(0.01)
    return False


def leftovers(run: Path) -> list[str]:
    """Temporary checkpoint folders (``.writing-*``) under a run."""
    root = run / "checkpoints"
    return sorted(p.name for p in root.glob(".writing-*")) if root.is_dir() else []


def tree_snapshot(path: Path) -> dict[str, bytes]:
    """Relative path -> content of every file below ``path`` (for byte-for-byte checks)."""
    if not path.exists():
        return {}
    out = {}
    for p in sorted(path.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(path))] = p.read_bytes()
    return out


def same_tree(a: dict[str, bytes], path: Path) -> bool:
    return a == tree_snapshot(path)


def identical_weights(a: Path, b: Path) -> tuple[bool, str]:
    """Whether two runs' latest ``model.safetensors`` hold equal tensors (and why not)."""
    import torch
    from safetensors.torch import load_file

    try:
        x = load_file(str(ckpt_dir(a) / "model.safetensors"))
        y = load_file(str(ckpt_dir(b) / "model.safetensors"))
    except Exception as e:  # a missing or corrupt file: say so
        return False, f"cannot compare weights ({type(e).__name__}: {e})"
    if x.keys() != y.keys():
        return False, "different tensor names"
    diff = [k for k in x if x[k].shape != y[k].shape or not torch.equal(x[k], y[k])]
    if diff:
        return False, f"NOT identical ({len(diff)} of {len(x)} tensors differ, e.g. {diff[0]})"
    return True, "IDENTICAL"


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def dirs_equal(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    return not (cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files)


def new_entries(folder: Path, before: Iterable[str]) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(set(os.listdir(folder)) - set(before))


def kill_quietly(proc: Proc) -> None:
    if proc.alive():
        proc.popen.send_signal(signal.SIGKILL)
        proc.popen.wait()


def mounts_under(root: Path) -> list[str]:
    """Mount points below ``root`` (to unmount what a case left mounted)."""
    found = []
    with open("/proc/mounts") as f:
        for line in f:
            point = line.split()[1].encode().decode("unicode_escape")
            if point.startswith(str(root) + os.sep):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def mount_tmpfs(point: Path, options: str) -> str | None:
    """Mount a tmpfs at ``point`` (needs root); returns why not, or None."""
    point.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                       capture_output=True, text=True)  # fmt: skip
    return None if r.returncode == 0 else (r.stderr.strip() or f"mount rc {r.returncode}")


def umount(point: Path | str) -> None:
    subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)


def markdown_cell(text: str, width: int | None = None) -> str:
    text = " ".join(str(text).split())
    if width and len(text) > width:
        text = text[: width - 3] + "..."
    return text.replace("|", "\\|")


def python_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- TOML out
def toml_dumps(data: dict[str, Any]) -> str:
    """A small TOML writer (tables, arrays of tables, inline values) for edited configs."""
    lines: list[str] = []
    _toml_table(data, "", lines)
    return "\n".join(lines).strip() + "\n"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v != v:
        return "nan"
    if isinstance(v, float) and v in (float("inf"), float("-inf")):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {v!r} as TOML")


def _toml_table(data: dict[str, Any], prefix: str, lines: list[str]) -> None:
    def table_list(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)

    for k, v in data.items():
        if not isinstance(v, dict) and not table_list(v):
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    for k, v in data.items():
        name = prefix + _toml_key(k)
        if isinstance(v, dict):
            lines.append(f"\n[{name}]")
            _toml_table(v, name + ".", lines)
        elif table_list(v):
            for item in v:
                lines.append(f"\n[[{name}]]")
                _toml_table(item, name + ".", lines)


def case_key(case_id: str) -> tuple[int, int, int]:
    """Natural order of case ids: 3.2 < 3.10 < 3.95 < 3.x1 < 3.x16."""
    drill, _, rest = case_id.partition(".")
    extra = rest.startswith("x")
    return int(drill), int(extra), int(rest.lstrip("x") or 0)
