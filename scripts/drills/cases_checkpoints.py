"""Drill 2: corrupt and hostile checkpoints, run configs and suite files.

Each variant changes a fresh copy of the ``base`` run (stopped half-way) for each of
four consumers: ``train --resume``, ``eval``, ``transfer --from`` and the Python API
(``load_policy(...)`` then ``make_game``). Hostile variants also check that their marker
file is never created.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import random
import re
import struct
from collections.abc import Callable
from pathlib import Path

import tomllib
from harness import (
    Case,
    Checks,
    Ctx,
    Outcome,
    Run,
    api_checks,
    api_snippet,
    ckpt_dir,
    either,
    read_json,
    sets,
    succeeded,
    toml_dumps,
    user_error,
)

HOSTILE_ID = "pettingzoo:subprocess.check_call"
CONSUMERS = ("resume", "eval", "transfer", "load_policy")
EVAL_SETS = sets("train.eval_games=16", "train.final_eval_games=32")
LOAD_POLICY = """\
import rltransfer
p = rltransfer.load_policy(sys.argv[1])
p.make_game(p.games[0])
result = p.games
"""


def hostile_options(marker: Path) -> dict[str, object]:
    return {"args": f"touch {marker}", "shell": True}


def consume(ctx: Ctx, consumer: str, run: Path, vmem_kb: int | None = None) -> Run:
    """Run one consumer on a run folder (under ``ulimit -v`` if ``vmem_kb``)."""
    rel = str(run.relative_to(ctx.dir))
    if consumer == "load_policy":
        argv = [ctx.s.python, "-c", api_snippet(LOAD_POLICY), rel]
    elif consumer == "resume":
        argv = ctx.rl("train", "--resume", rel)
    elif consumer == "eval":
        argv = ctx.rl("eval", rel, "--games", "8")
    else:
        argv = ctx.rl("transfer", "--from", rel, "--to", "connect_four", "--steps", "256",
                      "--seeds", "1", "--baseline", "none", "--num-envs", "16",
                      "--name", f"tr_{run.name}", *EVAL_SETS)  # fmt: skip
    return ctx.limited(argv, vmem_kb) if vmem_kb else ctx.run(argv)


FALLBACK = r"older|previous|fall(?:ing)? back|instead|incomplete|ckpt-\d+"


def grade(consumer: str, run: Run, expect: str, mention: str | None) -> Checks:
    """``expect``: ``error`` (a clean refusal), ``ok`` (works), ``either``, or ``fallback``
    (a clean refusal, or the previous complete checkpoint used, saying so)."""
    if expect == "fallback":
        worked = run.rc == 0 if consumer != "load_policy" else '"ok": true' in run.out
        if not worked:
            return grade(consumer, run, "error", mention)
        c = grade(consumer, run, "ok", mention)
        if not re.search(FALLBACK, run.output, re.IGNORECASE):
            c.partial("worked from an older checkpoint without saying so")
        return c
    if consumer == "load_policy":
        ok = None if expect == "error" else (lambda _: True)
        raises = () if expect == "ok" else ("clean",)
        return api_checks(run, ok=ok, raises=raises, mention=mention)
    if expect == "error":
        return user_error(run, mention)
    return succeeded(run) if expect == "ok" else either(run, mention)


# ---------------------------------------------------------------------- corruptions
Corrupt = Callable[[Path, Path], None]  # (run folder, marker path)


def _edit_bytes(rel: str, fn: Callable[[bytes], bytes]) -> Corrupt:
    def corrupt(run: Path, marker: Path) -> None:
        path = ckpt_dir(run) / rel
        path.write_bytes(fn(path.read_bytes()))

    return corrupt


def _scramble(data: bytes) -> bytes:
    """Shuffle the tensor bytes, keep the header: a well-formed file of wrong numbers."""
    (n,) = struct.unpack("<Q", data[:8])
    body = bytearray(data[8 + n :])
    random.Random(5).shuffle(body)
    return data[: 8 + n] + bytes(body)


def _rewrite_tensors(fn: Callable[[object], object]) -> Corrupt:
    """Rewrite model.safetensors with ``fn`` applied to every tensor (header metadata kept)."""

    def corrupt(run: Path, marker: Path) -> None:
        from safetensors import safe_open
        from safetensors.torch import save_file

        path = ckpt_dir(run) / "model.safetensors"
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata()
            tensors = {k: fn(f.get_tensor(k)) for k in f.keys()}  # noqa: SIM118
        save_file(tensors, str(path), metadata=metadata)

    return corrupt


def _nan(t: object) -> object:
    import torch

    assert isinstance(t, torch.Tensor)
    return torch.full_like(t, float("nan")) if t.is_floating_point() else t


def _half(t: object) -> object:
    import torch

    assert isinstance(t, torch.Tensor)
    return t.half() if t.is_floating_point() else t


def _edit_meta(fn: Callable[[dict, Path], None]) -> Corrupt:
    def corrupt(run: Path, marker: Path) -> None:
        path = ckpt_dir(run) / "meta.json"
        meta = json.loads(path.read_text())
        fn(meta, marker)
        path.write_text(json.dumps(meta, indent=1))

    return corrupt


def _set_net(key: str, value: object) -> Corrupt:
    return _edit_meta(lambda m, _: m["net"].__setitem__(key, value))


def _hostile_meta(meta: dict, marker: Path) -> None:
    game = meta["suite"]["games"][0]
    game["id"], game["options"] = HOSTILE_ID, hostile_options(marker)


def _hostile_config(run: Path, marker: Path) -> None:
    path = run / "config.toml"
    config = tomllib.loads(path.read_text())
    game = config["suite"]["games"][0]
    game["id"], game["options"] = HOSTILE_ID, hostile_options(marker)
    path.write_text(toml_dumps(config))


class _Evil:
    """Unpickling this runs ``touch marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, (f"touch {self.marker}",))


def _pickle_file(rel: str, kind: str) -> Corrupt:
    def corrupt(run: Path, marker: Path) -> None:
        import torch

        path = ckpt_dir(run) / rel
        evil = {"optimizer": _Evil(marker)}
        if kind == "raw":
            path.write_bytes(pickle.dumps(evil))
        else:
            torch.save(evil, path, _use_new_zipfile_serialization=kind == "zip")

    return corrupt


def _remove(rel: str) -> Corrupt:
    return lambda run, marker: (ckpt_dir(run) / rel).unlink()


def _drop_tasks(meta: dict, marker: Path) -> None:
    del meta["tasks"]


def _set_format(meta: dict, marker: Path) -> None:
    meta["format"] = 2


def _unknown_game(meta: dict, marker: Path) -> None:
    meta["suite"]["games"][0]["id"] = "chess_960"


def _ten_actions(meta: dict, marker: Path) -> None:
    for task in meta["tasks"].values():
        task["num_actions"] = 10


# ------------------------------------------------------------------------- variants
E, K, X = "error", "ok", "either"
ALL_ERR = dict.fromkeys(CONSUMERS, E)
NET_ERR = {"resume": X, "eval": E, "transfer": E, "load_policy": E}
WEIGHTS = r"safetensors|weights|checkpoint"
DETECTED = r"checksum|non-?finite|hash|digest"
TRAINER_ERR = {"resume": E, "eval": K, "transfer": K, "load_policy": K}


@dataclasses.dataclass
class Variant:
    id: str
    what: str
    expected: str
    corrupt: list[tuple[str, Corrupt]]  # (label, corruption); each is tried
    expect: dict[str, str]  # consumer -> error | ok | either
    mention: str | None = None
    vmem_kb: int | None = None
    hostile: bool = False

    def case(self) -> Case:
        return Case(self.id, self.what, self.expected, self.run)

    def run(self, ctx: Ctx) -> Outcome:
        c = Checks()
        for label, corrupt in self.corrupt:
            for consumer in CONSUMERS:
                tag = f"{label}_{consumer}" if label else consumer
                run = ctx.copy_run("base", f"v_{tag}")
                marker = ctx.dir / f"MARKER_{tag}"
                corrupt(run, marker)
                r = consume(ctx, consumer, run, self.vmem_kb)
                sub = grade(consumer, r, self.expect[consumer], self.mention)
                if marker.exists():
                    sub.fail("CODE EXECUTED: marker created")
                c.add(sub, f"{label} {consumer}".strip())
        if self.hostile and c.level != "FAIL":
            c.note("no marker created")
        return c.outcome()


def _single(fn: Corrupt) -> list[tuple[str, Corrupt]]:
    return [("", fn)]


VARIANTS = [
    Variant("2.1", "`model.safetensors` truncated to half", "clear error, rc != 0 (all 4)",
            _single(_edit_bytes("model.safetensors", lambda b: b[: len(b) // 2])),
            ALL_ERR, WEIGHTS),
    Variant("2.2", "`model.safetensors` = random bytes", "clear error (all 4)",
            _single(_edit_bytes("model.safetensors",
                                lambda b: random.Random(2).randbytes(len(b)))),
            ALL_ERR, WEIGHTS),
    Variant("2.3", "empty `model.safetensors`", "clear error (all 4)",
            _single(_edit_bytes("model.safetensors", lambda b: b"")), ALL_ERR, WEIGHTS),
    Variant("2.4", "header length set to 2^62", "clear error, no memory blow-up (all 4)",
            _single(_edit_bytes("model.safetensors", lambda b: struct.pack("<Q", 2**62) + b[8:])),
            ALL_ERR, WEIGHTS, vmem_kb=6_000_000),
    Variant("2.5", "tensor data scrambled, valid header",
            "detected by every consumer: one-line error naming a checksum / non-finite weights",
            _single(_edit_bytes("model.safetensors", _scramble)), ALL_ERR, DETECTED),
    Variant("2.6", "every weight NaN", "detected by every consumer (checksum / non-finite)",
            _single(_rewrite_tensors(_nan)), ALL_ERR, DETECTED),
    Variant("2.7", "weights saved as float16", "load (cast) or a clear error",
            _single(_rewrite_tensors(_half)), dict.fromkeys(CONSUMERS, X), WEIGHTS),
    Variant("2.8", "`meta.json` deleted",
            "clear error (all 4), or the previous complete checkpoint used, saying so",
            _single(_remove("meta.json")), dict.fromkeys(CONSUMERS, "fallback"),
            r"checkpoint|meta"),
    Variant("2.9", "`meta.json` = `{not json`", "clear error (all 4)",
            _single(_edit_bytes("meta.json", lambda b: b"{not json")), ALL_ERR, r"meta"),
    Variant("2.10", "`meta.json` net.channels 8 -> 16 (wrong shapes)",
            "eval / transfer / load_policy: clear error; resume may work (config.toml)",
            _single(_set_net("channels", 16)), NET_ERR),
    Variant("2.11", "`meta.json` game id -> `chess_960` (unknown)",
            "clear error where the game is needed (eval)", _single(_edit_meta(_unknown_game)),
            {"resume": X, "eval": E, "transfer": X, "load_policy": X}, r"chess_960"),
    Variant("2.12", "`meta.json` tasks num_actions 9 -> 10", "clear error",
            _single(_edit_meta(_ten_actions)),
            {"resume": X, "eval": E, "transfer": X, "load_policy": E}),
    Variant("2.13", "`meta.json` format 2", "clear error (all 4)",
            _single(_edit_meta(_set_format)), ALL_ERR, r"format"),
    Variant("2.14", "`meta.json` without `tasks` / with an extra `net.evil` key",
            "clear error", [("no-tasks", _edit_meta(_drop_tasks)),
                            ("net.evil", _set_net("evil", 1))], NET_ERR),
    Variant("2.15", "`meta.json` net.groups = 5 (8 channels)", "clear error",
            _single(_set_net("groups", 5)), NET_ERR),
    Variant("2.16", "`meta.json` net.channels = 200000 (under `ulimit -v 6000000`)",
            "one-line error before anything big is allocated, no traceback",
            _single(_set_net("channels", 200_000)), NET_ERR, vmem_kb=6_000_000),
    Variant("2.17", f"**`meta.json` game id `{HOSTILE_ID}`, options `{{args: \"touch "
            "<marker>\", shell: true}`**",
            "no code runs (marker never created); eval and load_policy+make_game refuse "
            "with a clean one-line error", _single(_edit_meta(_hostile_meta)),
            {"resume": X, "eval": E, "transfer": X, "load_policy": E}, hostile=True),
    Variant("2.18", "**same id in the run's `config.toml`**",
            "no code runs; `--resume` refuses with a clean one-line error",
            _single(_hostile_config), {"resume": E, "eval": X, "transfer": X, "load_policy": X},
            hostile=True),
    Variant("2.20", "`trainer.pt` = malicious pickle (`os.system(\"touch <marker>\")`) as "
            "torch.save zip, legacy and raw pickle",
            "marker never created; resume: clear error; eval, transfer, load_policy work",
            [(kind, _pickle_file("trainer.pt", kind)) for kind in ("zip", "legacy", "raw")],
            TRAINER_ERR, r"trainer", hostile=True),
    Variant("2.21", "`model.safetensors` replaced by a malicious torch.save pickle",
            "no code runs; clear error (all 4)", _single(_pickle_file("model.safetensors", "zip")),
            ALL_ERR, WEIGHTS, hostile=True),
    Variant("2.22", "`trainer.pt` truncated / deleted",
            "resume: clear error naming trainer.pt; inference still works",
            [("truncated", _edit_bytes("trainer.pt", lambda b: b[: len(b) // 2])),
             ("deleted", _remove("trainer.pt"))], TRAINER_ERR, r"trainer"),
]  # fmt: skip


# ---------------------------------------------------------------------- other cases
def c2_19(ctx: Ctx) -> Outcome:
    marker = ctx.dir / "MARKER"
    game = {"id": HOSTILE_ID, "options": hostile_options(marker), "num_envs": 16}
    suite = toml_dumps({"name": "hostile", "games": [game]})
    ctx.write("hostile_suite.toml", suite)
    ctx.write("hostile_envs/hostile_suite.toml", suite)
    c = user_error(ctx.cli("train", "--suite", "hostile_suite.toml", "--steps", "512",
                           "--name", "h", *EVAL_SETS))  # fmt: skip
    c.require(not marker.exists(), "CODE EXECUTED by train --suite: marker created")
    marker.unlink(missing_ok=True)
    listing = ctx.cli("suites", "hostile_envs")
    sub = either(listing)
    sub.require(not marker.exists(), "CODE EXECUTED by suites: marker created")
    c.add(sub, "`suites hostile_envs`")
    if c.level != "FAIL":
        c.note("no marker created")
    return c.outcome()


def c2_23(ctx: Ctx) -> Outcome:
    ctx.copy_run("base")
    ctx.copy_run("c4net16")
    c = user_error(ctx.cli("eval", "runs/base", "--opponent", "runs/c4net16", "--games", "4"),
                   r"connect_four|tic_tac_toe")  # fmt: skip
    other = ctx.cli("eval", "runs/base", "--game", "connect_four", "--games", "4")
    c.add(user_error(other, r"connect_four|tic_tac_toe"), "--game connect_four")
    return c.outcome()


def c2_24(ctx: Ctx) -> Outcome:
    src = ctx.copy_run("c4net16")
    r = ctx.cli("transfer", "--from", "runs/c4net16", "--to", "tic_tac_toe", "--steps", "256",
                "--seeds", "1", "--baseline", "none", "--num-envs", "16", "--name", "tr24",
                *EVAL_SETS)  # fmt: skip
    if r.rc != 0:
        return user_error(r).outcome()
    c = succeeded(r)
    config = tomllib.loads((ctx.dir / "runs/tr24/transfer_seed0/config.toml").read_text())
    source_net = read_json(ckpt_dir(src) / "meta.json")["net"]
    wrong = {k: (config["net"].get(k), v) for k, v in source_net.items()
             if config["net"].get(k) != v}  # fmt: skip
    if c.require(not wrong, f"arm config.toml [net] differs from the source's: {wrong}",
                 "PARTIAL"):  # fmt: skip
        c.note(f"arm config.toml records the source's network (channels {source_net['channels']})")
    return c.outcome()


def c2_25(ctx: Ctx) -> Outcome:
    ctx.copy_run("base")
    r = ctx.cli("transfer", "--from", "runs/base", "--to", "connect_four", "--keep-heads",
                "--steps", "256", "--seeds", "1", "--num-envs", "16", "--name", "trkh",
                *EVAL_SETS)  # fmt: skip
    c = user_error(r, r"keep-heads|keep_heads")
    left = ctx.dir / "runs/trkh"
    if left.exists() and any(left.iterdir()):
        c.partial(f"left {sorted(p.name for p in left.iterdir())} in runs/trkh")
    return c.outcome()


def c2_26(ctx: Ctx) -> Outcome:
    run = ctx.fixture("done")
    c = Checks()
    c.head = "umask 022"
    private = []
    for path in [run / "config.toml", *sorted((run / "checkpoints").rglob("*"))]:
        mode = path.stat().st_mode & 0o777
        need = 0o055 if path.is_dir() else 0o044
        if mode & need != need:
            private.append(f"{path.relative_to(run)} {mode:o}")
    if c.require(not private, f"not readable by others: {', '.join(private)}"):
        c.note("every file under checkpoints/ readable by others")
    return c.outcome()


CASES = [
    *(v.case() for v in VARIANTS),
    Case("2.19", f"**`{HOSTILE_ID}` in a suite file**: `train --suite hostile_suite.toml`; "
         "`rltransfer suites <folder holding it>`",
         "no code runs (marker never created); train refuses with a one-line error", c2_19),
    Case("2.23", "another suite's checkpoint: `eval runs/base --opponent runs/c4net16`, "
         "`eval runs/base --game connect_four`", "clear error naming the games", c2_23),
    Case("2.24", "transfer from a 16-channel run (`c4net16`) to tic_tac_toe with ppo_small "
         "(32 channels)", "works (or a clear error); the arm's config.toml records the "
         "source's network", c2_24),
    Case("2.25", "`transfer --from runs/base --to connect_four --keep-heads` (no Connect Four "
         "in the source)", "clear error, nothing created", c2_25),
    Case("2.26", "permissions of a run's checkpoint (defect 14), umask 022",
         "files under `checkpoints/latest/` readable by others like the rest of the run",
         c2_26),
]  # fmt: skip
