"""`calops ingest`, `calops run`, `calops reprocess`: the flows behind a progress bar."""

from __future__ import annotations

import contextlib
import glob
import json
import os
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
    p.add_argument("--plan", action="store_true",
                   help="print what would run and why (hits, misses and their causes) and stop")
    p.add_argument("--format", "-f", choices=("text", "json"), default="text",
                   help="--plan output format")


def _expand(patterns: Sequence[str]) -> list[str]:
    """The files the patterns name; MSA metadata files (``*_msa.fits``, beside a MOS uncal
    as jwst expects them) are not exposures: ingest reads each with its exposure."""
    from flows.ingest import is_msa_metafile

    out: list[str] = []
    for pat in patterns:
        hits = sorted(glob.glob(pat))
        if not hits:
            raise CalopsError(f"no file matches {pat}")
        out += [h for h in hits if not is_msa_metafile(h)]
    return out


def cmd_ingest(args: Any) -> int:
    from flows.ingest import ingest_file

    ws = from_args(args)
    files = _expand(args.files)
    run_id = uuid.uuid4().hex[:12]
    counts: Counter[str] = Counter()
    done = []
    with _bar(len(files), "ingest") as tick:
        for f in files:
            res = ingest_file(ws, f, run_id)
            done.append(res)
            counts[res.status] += 1
            note = f" ({', '.join(res.changed)} changed)" if res.changed else ""
            tick(f"{res.exposure_id} v{res.version} {res.status}{note}")
    print(f"ingested {len(files)} file(s): " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    from flows.events import emit_ingested

    sent = emit_ingested(str(ws.root), done)
    if sent:
        print(f"told Prefect: {sent} ingest event(s) ({os.environ['PREFECT_API_URL']})")
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
    """Plan in bulk (no Prefect), then record the hits and run only the work as a flow."""
    from flows import jit, planner, prefect_env, runs

    build = _build_name(ws, args.build)
    if args.runner:
        os.environ["CALOPS_TASK_RUNNER"] = args.runner
    exposures = list(exposures if exposures is not None else ws.catalog.current_exposure_ids())
    if not exposures:
        print("nothing to do: no exposures selected (ingest some with `calops ingest`)")
        return 0
    closed = runs.close_abandoned(ws)
    if closed:
        print(f"closed {len(closed)} run(s) that died without ending: {', '.join(closed)}",
              file=sys.stderr)
    plan = planner.plan_run(ws, build, exposures, stages, explain=getattr(args, "plan", False))
    if getattr(args, "plan", False):
        print(format_plan(plan) if args.format == "text" else json.dumps(plan.as_dict(), indent=1))
        return 0
    work = plan.work()
    n_work = sum(len(v) for v in work.values())
    if n_work:
        jit.announce()  # "compiling kernels, first run only" when the JIT will run
    handle = runs.start(ws, build, command)
    t0 = time.perf_counter()
    total = len(plan.hits()) + len(plan.failures()) + n_work
    results: list[dict] = []
    stopped = None  # why the run could not go on (a full disk, no Prefect server ...)
    try:
        with _bar(total, f"{build}") as tick:
            def listener(res: dict) -> None:
                what = "hit " if res.get("hit") else ("FAIL" if res["status"] != "ok" else "run ")
                # a spec3 association's name is jwst's per-source template: shown without
                # its fields, as the exporter names the association's file
                tick(f"{res['stage']:<9} {what} {untemplated(res['subject'])}")

            from flows import flows
            from flows.export import untemplated

            flows.LISTENERS.append(listener)
            try:
                results += flows.record_hits(ws, plan, handle.run_id)
                if n_work:
                    jit_notice()
                    process = flows.process.with_options(task_runner=flows.task_runner())
                    with prefect_env.TemporaryServer(str(ws.root)):
                        state = process(str(ws.root), build, run_id=handle.run_id, work=work,
                                        command=command,
                                        save_intermediates=args.save_intermediates,
                                        return_state=True)
                    results += state.result(raise_on_failure=False) or []
            except Exception as exc:  # noqa: BLE001 - the run stops here; say what was done
                stopped = " ".join(str(exc).split()) or type(exc).__name__
                done = {(r["stage"], r["subject"]) for r in results}
                results += [{"stage": i.stage, "subject": i.subject, "build": build,
                             "status": "failed", "hit": False, "reason": "",
                             "error": f"not run: {stopped}"}
                            for i in plan.wanted() if (i.stage, i.subject) not in done]
            finally:
                flows.LISTENERS.remove(listener)
    except BaseException as exc:  # interrupted: close the run, then let it through
        with contextlib.suppress(Exception):
            runs.finish(handle, "failed", {"error": " ".join(str(exc).split())})
        raise
    wall = time.perf_counter() - t0
    summary = runs.summarise(results, wall)
    summary["plan_s"] = round(plan.seconds, 3)
    try:
        if stopped is None:
            _compact_if_many(ws)
        runs.finish(handle, runs.status_of(summary) if stopped is None else "failed",
                    {**summary, **({"error": stopped} if stopped else {})})
    except CalopsError as exc:  # e.g. the disk is full: the next run closes it (lease)
        stopped = stopped or str(exc)
        print(f"calops: warning: could not record the end of run {handle.run_id}; the next "
              "run will close it", file=sys.stderr)
    shown = [r for r in results if not str(r.get("error", "")).startswith("not run:")]
    print(format_summary(build, handle.run_id, summary, shown))
    if stopped:
        raise CalopsError(f"run {handle.run_id} stopped: {stopped}")
    return 0 if summary["failed"] == 0 else 1


def jit_notice() -> None:
    """Say once when kernels will be compiled (the first run on a fresh install)."""
    try:
        from flows.jit import notice
    except ImportError:  # flows/jit.py arrives with the cold-start work
        return
    notice()


def format_plan(plan: Any) -> str:
    """``--plan``: per stage, how many subjects are hits, run, wait or cannot run, and why."""
    lines = [f"plan for build {plan.build} (context {plan.context}): {len(plan.exposures)} "
             f"exposures, planned in {plan.seconds:.2f} s"]
    counts, causes = plan.counts(), plan.causes()
    lines.append(f"  {'stage':<10} {'hits':>7} {'run':>7} {'waits':>7} {'cannot':>7}")
    for st in plan.stages:
        c = counts[st]
        lines.append(f"  {st:<10} {c['hit']:>7} {c['miss']:>7} {c['waits']:>7} {c['failed']:>7}")
    for st in plan.stages:
        for why, n in sorted(causes[st].items(), key=lambda kv: -kv[1]):
            lines.append(f"  {st:<10} {n:>7} x {why}")
    work = sum(len(v) for v in plan.work().values())
    lines.append(f"  {work} stage run(s) to do" if work else "  nothing to do: every product "
                 "is already made under this build")
    return "\n".join(lines)


COMPACT_ABOVE = 200  # files in one table; queries slow down as files accumulate


def _compact_if_many(ws: Workspace) -> None:
    """Merge a table's small files once it has many (every row kept; docs/catalog.md)."""
    from catalogs.schema import TABLES

    for table in TABLES:
        if len(ws.catalog.files(table)) > COMPACT_ABOVE:
            ws.catalog.compact(table)


def format_summary(build: str, run_id: str, s: dict[str, Any], results: list[dict]) -> str:
    lines = [f"build {build}  run {run_id}",
             f"  exposures {s['exposures']}   stage runs {s['tasks']}   hits {s['hits']}   "
             f"misses {s['misses']}   failed {s['failed']}   wall {s['wall_s']:.1f} s"]
    if s["reasons"]:
        lines.append(f"  {'count':>5}  reason")
    for reason, n in sorted(s["reasons"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  {n:>5} x {reason}")
    for r in results:
        if r["status"] != "ok":
            lines.append(f"  FAILED {r['stage']} {r['subject']}: {r.get('error', '')}")
    return "\n".join(lines)


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
