#!/usr/bin/env python
"""Rerun the run-folder and input drills (run-folder-drills.md) and print their verdicts.

    .venv/bin/python scripts/drills/run_drills.py [--only 1,2.17,3.x] [--jobs 2]
        [--out drills.md] [--keep] [--scratch DIR]

Every case runs in a fresh folder under a scratch root (a new temporary folder unless
``--scratch`` names one), drives rltransfer as a user would and checks the expected
behaviour. The output is a markdown table of every case and a table of totals per drill.
See README.md beside this file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cases_api
import cases_checkpoints
import cases_cli
import cases_interrupts
import cases_system
from harness import (
    ERROR,
    NOTE,
    VERDICTS,
    Case,
    Ctx,
    FixtureError,
    Outcome,
    Session,
    case_key,
    log,
    markdown_cell,
    mounts_under,
    python_env,
    umount,
)

DRILLS = {
    1: "interrupts / resume",
    2: "corrupt & hostile checkpoints",
    3: "bad CLI input",
    4: "game API & views",
    5: "resources",
    6: "concurrency",
}


def all_cases() -> list[Case]:
    modules = (cases_interrupts, cases_checkpoints, cases_cli, cases_api, cases_system)
    return sorted((c for m in modules for c in m.CASES), key=lambda c: case_key(c.id))


def selected(cases: list[Case], only: str | None) -> list[Case]:
    """Cases whose id is one of ``only``'s tokens or starts with ``token.`` (or ``3.x``)."""
    if not only:
        return cases
    tokens = [t.strip() for t in only.split(",") if t.strip()]

    def wanted(case_id: str) -> bool:
        def match(t: str) -> bool:
            prefix = t if t.endswith("x") else t + "."
            return case_id == t or case_id.startswith(prefix)

        return any(match(t) for t in tokens)

    return [c for c in cases if wanted(c.id)]


def run_case(session: Session, case: Case) -> tuple[Outcome, float]:
    start = time.monotonic()
    folder = session.root / "cases" / case.id
    try:
        folder = session.case_dir(case.id)
        outcome = case.run(Ctx(session, folder, case.id))
    except FixtureError as e:
        outcome = Outcome(ERROR, str(e))
    except Exception as e:  # a bug in the drill itself: report it, go on with the others
        log(traceback.format_exc())
        outcome = Outcome(ERROR, f"drill script error: {type(e).__name__}: {e}")
    finally:
        for point in mounts_under(folder):
            umount(point)
    return outcome, time.monotonic() - start


def case_table(cases: list[Case], results: dict[str, Outcome]) -> str:
    rows = ["| # | drill | expected | observed | verdict |", "|---|---|---|---|---|"]
    for case in cases:
        o = results[case.id]
        verdict = o.verdict if case.counted else NOTE
        rows.append(
            f"| {case.id} | {markdown_cell(case.what)} | {markdown_cell(case.expected)} | "
            f"{markdown_cell(o.observed, 800)} | {verdict if verdict != 'FAIL' else '**FAIL**'} |"
        )
    return "\n".join(rows)


def totals_table(cases: list[Case], results: dict[str, Outcome]) -> str:
    rows = [
        "| drill | " + " | ".join(VERDICTS) + " | total |",
        "|---|" + "---|" * (len(VERDICTS) + 1),
    ]
    everything: Counter[str] = Counter()
    for drill, title in DRILLS.items():
        counted = [c for c in cases if c.drill == drill and c.counted]
        if not counted:
            continue
        n = Counter(results[c.id].verdict for c in counted)
        everything.update(n)
        cells = " | ".join(str(n[v]) for v in VERDICTS)
        rows.append(f"| {drill} {title} | {cells} | {len(counted)} |")
    cells = " | ".join(f"**{everything[v]}**" for v in VERDICTS)
    rows.append(f"| **all** | {cells} | **{sum(everything.values())}** |")
    return "\n".join(rows)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", help="cases or drills, e.g. 1,2.17,3.x (prefixes: 3 = all of 3.*)")
    p.add_argument("--jobs", type=int, default=1, help="cases run in parallel (default 1)")
    p.add_argument("--out", help="also write the tables to this markdown file")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    p.add_argument("--scratch", help="scratch root to use (fixtures cached there are reused)")
    p.add_argument("--python", default=sys.executable, help="interpreter with rltransfer")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cases = selected(all_cases(), args.only)
    if args.list or not cases:
        for c in cases:
            print(f"{c.id:6s} {c.what}")
        return 0 if cases else 2
    os.umask(0o022)
    root = Path(args.scratch or tempfile.mkdtemp(prefix="rltransfer-drills-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    session = Session(root, args.python, python_env())
    log(f"scratch root {root}; {len(cases)} cases, {args.jobs} at a time")
    start = time.monotonic()
    results: dict[str, Outcome] = {}
    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {pool.submit(run_case, session, c): c for c in cases}
            for n, future in enumerate(as_completed(futures), 1):
                case = futures[future]
                outcome, seconds = future.result()
                results[case.id] = outcome
                log(f"[{n}/{len(cases)}] {case.id} {outcome.verdict} ({seconds:.1f} s)")
    finally:
        for point in mounts_under(root):
            umount(point)
        if not args.keep and not args.scratch:
            shutil.rmtree(root, ignore_errors=True)
    elapsed = time.monotonic() - start
    report = (
        f"{case_table(cases, results)}\n\n## Totals\n\n{totals_table(cases, results)}\n\n"
        f"{len(cases)} cases in {elapsed / 60:.1f} min with --jobs {args.jobs}"
        f"{f' (scratch kept in {root})' if args.keep or args.scratch else ''}.\n"
    )
    print(report)
    if args.out:
        Path(args.out).write_text(report)
    return 1 if any(o.verdict == ERROR for o in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
