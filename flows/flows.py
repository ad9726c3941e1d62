"""Prefect flows: process (plan, then run only the work), reprocess, and stage.

A run is planned in bulk first (flows/planner.py): hits are recorded at once and only misses
become tasks. Tasks receive and return identities (strings and small dicts) and the catalog
rows they made, never arrays: data moves through the store, so the same flow runs threaded on
a laptop, in processes, or on a Dask cluster; the flow writes each stage layer's rows in one
batch. A task is one stage for one exposure (or association); its steps run in memory. A
failing exposure fails its own task, is recorded with its error, the others complete, and the
flow run ends Failed so that Prefect tells the truth.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flows import prefect_env  # noqa: F401  (offline defaults before prefect is imported)
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from catalogs.catalog import Batch
from catalogs.recipes import Run, StageOutcome, failure_rows, stage_rows
from flows import planner, runs
from flows import stages as stages_mod
from flows.workspace import Workspace
from store.errors import CalopsError
from transforms import registry

# Called with each finished task's outcome (the CLI's progress bar listens here). Flow
# parameters go to the Prefect API as JSON, so a callback cannot be a parameter.
LISTENERS: list[Callable[[dict], None]] = []


def build_name(build: str | float | int) -> str:
    """A build name as given on a command line: ``-p build=11.2`` arrives as the number 11.2
    (Prefect reads parameter values as JSON), ``11.1.1`` as text."""
    if isinstance(build, bool):
        raise CalopsError(f"build must be a build name, not {build!r}")
    return repr(build) if isinstance(build, float) else str(build)


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only I/O hiccups (a flaky object store), never science errors."""
    try:
        state.result()
    except (OSError, TimeoutError, ConnectionError):
        return True
    except Exception:
        return False
    return False


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1, retry_condition_fn=_transient,
      task_run_name="{stage}-{subject}")
def stage_task(home: str, build: str, stage: str, subject: str, run_id: str,
               save_intermediates: bool = False) -> dict[str, Any]:
    """One stage for one subject; returns its outcome and the catalog rows to record (the flow
    writes a whole layer's rows in one batch)."""
    sink: list = []
    out = stages_mod.run(_workspace(home), build, stage, subject, run_id, save_intermediates, sink)
    return {"outcome": out.as_dict(), "rows": sink}


_LOCAL = threading.local()


def _workspace(home: str) -> Workspace:
    """One Workspace per worker thread and home: its catalog keeps a DuckDB connection and
    cached views (a fresh one costs 60-500 ms per query on a large catalog), and a DuckDB
    connection must not be shared between threads."""
    cache = _LOCAL.__dict__.setdefault("workspaces", {})
    if home not in cache:
        cache[home] = Workspace(home)
    return cache[home]


def task_runner(kind: str | None = None, workers: int | None = None) -> Any:
    """threads (default), processes, or dask (a `dask.distributed` address in CALOPS_DASK)."""
    kind = kind or os.environ.get("CALOPS_TASK_RUNNER", "threads")
    if kind == "threads":
        return ThreadPoolTaskRunner(max_workers=workers or 2)
    if kind == "processes":
        return ProcessPoolTaskRunner(max_workers=workers or 2)
    if kind == "dask":
        from prefect_dask import DaskTaskRunner  # optional: pip install prefect-dask

        if not os.environ.get("PREFECT_API_URL"):
            raise CalopsError("the dask task runner needs a Prefect server every worker can "
                             "reach: start one (prefect server start) and set PREFECT_API_URL; "
                             "without it each worker would start a temporary server of its own")

        address = os.environ.get("CALOPS_DASK")
        return DaskTaskRunner(address=address) if address else DaskTaskRunner()
    raise CalopsError(f"unknown task runner {kind!r}: use threads, processes or dask")


def _crashed(stage: str, subject: str, build: str, exc: BaseException) -> dict[str, Any]:
    return {"stage": stage, "subject": subject, "build": build, "status": "failed",
            "error": " ".join(str(exc).split()) or type(exc).__name__, "hit": False,
            "reason": "", "outputs": {}, "wall_s": 0.0, "peak_mem_bytes": 0}


def run_layer(home: str, build: str, stage: str, subjects: Sequence[str], run_id: str,
              save_intermediates: bool = False) -> list[dict]:
    """Every subject of one stage as Prefect tasks; their rows land in one catalog batch."""
    return run_wave(home, build, {stage: list(subjects)}, run_id, save_intermediates)[stage]


def run_wave(home: str, build: str, work: Mapping[str, Sequence[str]], run_id: str,
             save_intermediates: bool = False) -> dict[str, list[dict]]:
    """Every subject of stages that do not read each other (e.g. image2 and spec2) as Prefect
    tasks submitted together, so that neither waits for the other's slowest task; once all
    are done, each stage's rows land in one catalog batch (no catalog write while a task of
    the wave may read it)."""
    futures = {stage: [stage_task.submit(home, build, stage, s, run_id, save_intermediates)
                       for s in subjects] for stage, subjects in work.items()}
    out: dict[str, list[dict]] = {}
    batches: list[Batch] = []
    for stage, subjects in work.items():
        results: list[dict] = []
        batch = Batch(run_id)
        for subject, fut in zip(subjects, futures[stage]):
            try:
                res = fut.result()
                for rows in res["rows"]:
                    batch.add_rows(rows)
                o = res["outcome"]
            except Exception as exc:  # the task itself crashed (not a recorded step failure)
                o = _crashed(stage, subject, build, exc)
                batch.add_rows(failure_rows(run_id, build, stage, subject, o["error"]))
            results.append(o)
            for listener in LISTENERS:
                listener(o)
        out[stage] = results
        batches.append(batch)
    for batch in batches:
        _workspace(home).catalog.write_batch(batch)
    return out


def record_hits(ws: Workspace, plan: planner.RunPlan, run_id: str) -> list[dict]:
    """The planned hits and the subjects that could not be planned, recorded in one batch."""
    batch = Batch(run_id)
    results = []
    for item in plan.hits():
        out = planner.outcome_of_hit(item, plan.build)
        batch.add_rows(stage_rows(run_id, item.recipe, out))
        results.append(out.as_dict())
    for item in plan.failures():
        out = StageOutcome(item.stage, item.subject, plan.build, status="failed",
                           error=item.cause)
        batch.add_rows(failure_rows(run_id, plan.build, item.stage, item.subject, item.cause))
        results.append(out.as_dict())
    ws.catalog.write_batch(batch)
    for r in results:
        for listener in LISTENERS:
            listener(r)
    return results


def waves() -> list[list[str]]:
    """The stages in waves: a stage runs in the wave after the last of its upstream stages
    (detector1; image2 and spec2; image3 and spec3), in the stage table's order within one."""
    depth: dict[str, int] = {}
    for st in registry.stages().values():  # upstream before downstream
        depth[st.name] = 1 + max((depth[u] for u in st.upstream if u in depth), default=-1)
    out: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for name, d in depth.items():
        out[d].append(name)
    return out


def execute(home: str, build: str, work: dict[str, list[str]], run_id: str,
            save_intermediates: bool = False) -> list[dict]:
    """The planned work, wave by wave (upstream first; stages of one wave side by side); a
    subject whose exposure failed an earlier stage goes no further."""
    results: list[dict] = []
    failed: set[str] = set()
    table = registry.stages()
    for wave in waves():
        todo: dict[str, list[str]] = {}
        for name in wave:
            subjects = work.get(name, [])
            if table[name].subject == "exposure":
                subjects = [s for s in subjects if s not in failed]
            if subjects:
                todo[name] = subjects
        if not todo:
            continue
        done = run_wave(home, build, todo, run_id, save_intermediates)
        for name, res in done.items():
            results += res
            if table[name].subject == "exposure":
                failed |= {r["subject"] for r in res if r["status"] != "ok"}
    return results


def _flow_run_name() -> str:
    from prefect.runtime import flow_run

    p = flow_run.parameters or {}
    what = (f"{len(p['exposures'])} exposures" if p.get("exposures")
            else f"where {p['where']}" if p.get("where") else "all exposures")
    stages_ = "+".join(p.get("stages") or []) or "all stages"
    return f"{flow_run.flow_name} {build_name(p.get('build', '?'))}: {stages_}, {what}"


@flow(name="stage", flow_run_name=_flow_run_name, log_prints=False)
def stage(home: str, build: str | float, stage: str, subjects: list[str],
          run_id: str | None = None, save_intermediates: bool = False) -> list[dict]:
    """One stage for each named subject (exposures, or associations for a stage 3)."""
    return _run(home, build_name(build), f"flow stage {stage}", run_id, save_intermediates,
                work={stage: list(subjects)}, owner=True)


@flow(name="process", flow_run_name=_flow_run_name, log_prints=False)
def process(home: str, build: str | float, exposures: list[str] | None = None,
            stages: list[str] | None = None, run_id: str | None = None,
            work: dict[str, list[str]] | None = None, command: str = "flow process",
            save_intermediates: bool = False) -> list[dict]:
    """Every stage (or those named) for a set of exposures (default: all current exposures)
    under a build: planned in bulk first, hits recorded at once, only the work as tasks. Each
    exposure goes through the stages its EXP_TYPE selects. ``work`` (stage -> subjects) is a
    plan made by the caller (the CLI plans before it starts Prefect)."""
    return _run(home, build_name(build), command, run_id, save_intermediates, exposures,
                stages, work, owner=work is None)


@flow(name="reprocess", flow_run_name=_flow_run_name, log_prints=False)
def reprocess(home: str, build: str | float, where: str | None = None, stale: bool = False,
              exposures: list[str] | None = None, run_id: str | None = None) -> list[dict]:
    """Every exposure in the catalog (or those a SQL selection or list names; with ``stale``
    only those reissued since the build last processed them) under a build."""
    ws = Workspace(home)
    build = build_name(build)
    if stale:
        chosen = ws.catalog.stale_exposure_ids(build, where)
    elif where:
        chosen = stages_mod.select_exposures(ws, where)
    else:
        chosen = exposures
    if chosen is not None and not chosen:
        return []
    return _run(home, build, "flow reprocess", run_id, False, chosen, owner=True)


def _run(home: str, build: str, command: str, run_id: str | None, save_intermediates: bool,
         exposures: list[str] | None = None, stage_names: list[str] | None = None,
         work: dict[str, list[str]] | None = None, owner: bool = True) -> Any:
    """Plan (unless given the work), record hits, run the work, record the run and tell
    Prefect the truth: a summary in the logs and as a markdown artifact, and a failed state
    when any stage failed."""
    import time

    from prefect import get_run_logger
    from prefect.artifacts import create_markdown_artifact
    from prefect.runtime import flow_run
    from prefect.states import Completed, Failed

    ws = Workspace(home)
    logger = get_run_logger()
    t0 = time.perf_counter()
    # An owner records its run; otherwise it runs the work for a caller (the CLI) that
    # planned and records the run, and only adds its flow-run id to the run's rows.
    handle = (runs.start(ws, build, command, run_id=run_id, flow_run_id=str(flow_run.id))
              if owner else None)
    run_id = handle.run_id if handle else (run_id or runs.new_run_id())
    if not owner:
        ws.catalog.record_run(Run(run_id, build, command, runs._utcnow(), "running", "",
                                  None, {"flow_run_id": str(flow_run.id)}))
    results: list[dict] = []
    try:
        if work is None:
            runs.close_abandoned(ws)
            plan = planner.plan_run(ws, build, exposures, stage_names)
            results += record_hits(ws, plan, run_id)
            work = plan.work()
        results += execute(home, build, work, run_id, save_intermediates)
    except BaseException as exc:
        if handle:
            runs.finish(handle, "failed", {"error": " ".join(str(exc).split())})
        raise
    summary = runs.summarise(results, time.perf_counter() - t0)
    text = runs.markdown(build, run_id, summary, results)
    logger.info("calops run %s under %s: %s hits, %s misses, %s failed", run_id, build,
                summary["hits"], summary["misses"], summary["failed"])
    create_markdown_artifact(markdown=text, key="calops-run-summary",
                             description=f"calops run {run_id} under build {build}")
    if handle:
        runs.finish(handle, runs.status_of(summary), summary)
    if summary["failed"]:
        return Failed(message=f"{summary['failed']} of {summary['tasks']} stage runs failed "
                              f"(calops run {run_id})", data=results)
    return Completed(message=f"calops run {run_id}: {summary['hits']} hits, "
                             f"{summary['misses']} misses", data=results)
