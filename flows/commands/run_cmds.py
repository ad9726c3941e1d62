"""`calops ingest`, `calops run`, `calops reprocess`: the flows behind a progress bar."""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import json
import os
import socket
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from flows.workspace import Workspace, from_args
from store.errors import CalopsError
from transforms import registry


def register(sub: Any) -> None:
    p = sub.add_parser("ingest", help="store level-1b uncal files and record the exposures",
                       description="Store each uncal file's pixels and pointing apart and "
                                   "record the exposure; a changed file becomes a new version.")
    p.add_argument("files", nargs="+", help="uncal FITS files (globs allowed)")
    p.set_defaults(func=cmd_ingest)

    names = registry.stage_names()
    p = sub.add_parser("run", help="run one stage (or all) under a build",
                       description=f"Run STAGE ({', '.join(names)} or all) for the named "
                                   "files' exposures, the exposures a SQL WHERE clause selects, "
                                   "or every current exposure. Each exposure goes through the "
                                   "stages its EXP_TYPE selects.")
    p.add_argument("stage", choices=names + ("all",))
    p.add_argument("files", nargs="*", help="uncal files to ingest and run (optional)")
    _common(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("reprocess", help="every exposure (or a selection) under a build",
                       description="Run every stage for the current version of every exposure "
                                   "(or those --where selects) under --build; only recipes that "
                                   "changed are computed.")
    _common(p)
    p.add_argument("--stale", action="store_true",
                   help="only exposures reissued since the build last processed them")
    p.set_defaults(func=cmd_reprocess)


def _common(p: Any) -> None:
    p.add_argument("--build", "-b", help="build name (default: the operations build)")
    p.add_argument("--where", help="SQL WHERE clause over the current_exposures view")
    p.add_argument("--save-intermediates", action="store_true",
                   help="also store every step's in-between product")
    p.add_argument("--runner", choices=("threads", "processes", "dask"),
                   help="Prefect task runner (default: threads, or $CALOPS_TASK_RUNNER)")


def _expand(patterns: Sequence[str]) -> list[str]:
    out: list[str] = []
    for pat in patterns:
        hits = sorted(glob.glob(pat))
        if not hits:
            raise CalopsError(f"no file matches {pat}")
        out += hits
    return out


def cmd_ingest(args: Any) -> int:
    from flows.ingest import ingest_file

    ws = from_args(args)
    files = _expand(args.files)
    run_id = uuid.uuid4().hex[:12]
    counts: Counter[str] = Counter()
    with _bar(len(files), "ingest") as tick:
        for f in files:
            res = ingest_file(ws, f, run_id)
            counts[res.status] += 1
            note = f" ({', '.join(res.changed)} changed)" if res.changed else ""
            tick(f"{res.exposure_id} v{res.version} {res.status}{note}")
    print(f"ingested {len(files)} file(s): " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    return 0


def _build_name(ws: Workspace, name: str | None) -> str:
    if name:
        return ws.builds.get(name).name
    ops = ws.builds.operations()
    if ops is None:
        raise CalopsError("no operations build; name one with --build")
    return ops.name


def cmd_run(args: Any) -> int:
    ws = from_args(args)
    exposures = None
    if args.files:
        from flows.ingest import ingest_file

        rid = uuid.uuid4().hex[:12]
        exposures = [ingest_file(ws, f, rid).exposure_id for f in _expand(args.files)]
    elif args.where:
        exposures = ws.catalog.current_exposure_ids(args.where)
    stages = registry.stage_names() if args.stage == "all" else (args.stage,)
    return _execute(ws, args, stages, exposures, f"calops run {args.stage}")


def cmd_reprocess(args: Any) -> int:
    ws = from_args(args)
    build = _build_name(ws, args.build)
    if args.stale:
        exposures = ws.catalog.stale_exposure_ids(build, args.where)
    else:
        exposures = ws.catalog.current_exposure_ids(args.where)
    return _execute(ws, args, registry.stage_names(), exposures, "calops reprocess")


def _execute(ws: Workspace, args: Any, stages: Sequence[str], exposures: list[str] | None,
             command: str) -> int:
    from flows import jit, prefect_env

    prefect_env.configure(str(ws.root))
    jit.announce()  # "compiling kernels, first run only" when the JIT will run
    from flows import flows

    build = _build_name(ws, args.build)
    if args.runner:
        os.environ["CALOPS_TASK_RUNNER"] = args.runner
    exposures = list(exposures if exposures is not None else ws.catalog.current_exposure_ids())
    if not exposures:
        print("nothing to do: no exposures selected (ingest some with `calops ingest`)")
        return 0
    run_id = uuid.uuid4().hex[:12]
    started = dt.datetime.now(dt.timezone.utc)
    _record_run(ws, run_id, build, command, started, None, "running", {})
    t0 = time.perf_counter()
    # Rough total for the bar: one task per exposure per exposure-stage, associations unknown.
    total = len(exposures) * sum(registry.stage(s).subject == "exposure" for s in stages)
    with _bar(total, f"{build}") as tick, _quiet_prefect():
        def listener(res: dict) -> None:
            what = "hit " if res.get("hit") else ("FAIL" if res["status"] != "ok" else "miss")
            tick(f"{res['stage']:<9} {what} {res['subject']}")
        flows.LISTENERS.append(listener)
        try:
            # --runner / $CALOPS_TASK_RUNNER pick the task runner (dask: $CALOPS_DASK address)
            process = flows.process.with_options(task_runner=flows.task_runner())
            results = process(str(ws.root), build, exposures, run_id=run_id,
                                    stages_to_run=tuple(stages),
                                    save_intermediates=args.save_intermediates)
        finally:
            flows.LISTENERS.remove(listener)
    wall = time.perf_counter() - t0
    _compact_if_many(ws)
    summary = summarise(results, wall)
    status = "ok" if summary["failed"] == 0 else "partial"
    _record_run(ws, run_id, build, command, started, dt.datetime.now(dt.timezone.utc), status, summary)
    print(format_summary(build, run_id, summary, results))
    return 0 if summary["failed"] == 0 else 1


COMPACT_ABOVE = 200  # files in one table; queries slow down as files accumulate


def _compact_if_many(ws: Workspace) -> None:
    """Merge a table's small files once it has many (every row kept; docs/catalog.md)."""
    from catalogs.schema import TABLES

    for table in TABLES:
        if len(ws.catalog.files(table)) > COMPACT_ABOVE:
            ws.catalog.compact(table)


def summarise(results: list[dict], wall: float) -> dict[str, Any]:
    reasons = Counter(r.get("reason", "") for r in results if r["status"] == "ok")
    return {
        "tasks": len(results),
        "exposures": len({r["subject"] for r in results
                          if registry.stage(r["stage"]).subject == "exposure"}),
        "hits": sum(1 for r in results if r.get("hit")),
        "misses": sum(1 for r in results if r["status"] == "ok" and not r.get("hit")),
        "failed": sum(1 for r in results if r["status"] != "ok"),
        "reasons": dict(reasons),
        "wall_s": round(wall, 2),
    }


def format_summary(build: str, run_id: str, s: dict[str, Any], results: list[dict]) -> str:
    lines = [f"build {build}  run {run_id}",
             f"  exposures {s['exposures']}   tasks {s['tasks']}   hits {s['hits']}   "
             f"misses {s['misses']}   failed {s['failed']}   wall {s['wall_s']:.1f} s"]
    for reason, n in sorted(s["reasons"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  {n:>4} x {reason}")
    for r in results:
        if r["status"] != "ok":
            lines.append(f"  FAILED {r['stage']} {r['subject']}: {r.get('error', '')}")
    return "\n".join(lines)


def _record_run(ws: Workspace, run_id: str, build: str, command: str, started: dt.datetime,
                finished: dt.datetime | None, status: str, summary: dict) -> None:
    with ws.catalog.batch(run_id) as b:
        b.add("runs", {"run_id": run_id, "build": build, "command": command,
                       "started_at": started, "finished_at": finished, "status": status,
                       "host": socket.gethostname(), "summary_json": json.dumps(summary)})


@contextlib.contextmanager
def _bar(total: int, label: str) -> Iterator[Callable[[str], None]]:
    """A progress bar on a terminal; one line per item otherwise (logs, CI)."""
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), TextColumn("{task.fields[last]}"),
                      transient=False) as prog:
            tid = prog.add_task(label, total=total or None, last="")
            yield lambda msg: prog.update(tid, advance=1, last=msg)
        return
    done = [0]

    def tick(msg: str) -> None:
        done[0] += 1
        print(f"[{done[0]}/{total}] {msg}", file=sys.stderr)

    yield tick


@contextlib.contextmanager
def _quiet_prefect() -> Iterator[None]:
    """Prefect's own INFO logs drown the progress bar; keep warnings and errors."""
    import logging

    loggers = [logging.getLogger(n) for n in ("prefect", "prefect.flow_runs", "prefect.task_runs")]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, old):
            lg.setLevel(lvl)
