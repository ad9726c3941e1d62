"""Prefect flows: stage (one stage for named subjects), process and reprocess.

Tasks receive and return identities (strings and small dicts), never arrays: data moves through
the store, so the same flow runs threaded on a laptop, in processes, or on a Dask cluster. A task
is one stage for one exposure (or association); its steps run in memory inside it. A failing
exposure fails its own task, is recorded with its error, and the others complete.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from flows import prefect_env  # noqa: F401  (offline defaults before prefect is imported)
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from flows import stages
from flows.workspace import Workspace
from store.errors import CalopsError
from transforms import registry

# Called with each finished task's outcome (the CLI's progress bar listens here). Flow
# parameters go to the Prefect API as JSON, so a callback cannot be a parameter.
LISTENERS: list[Callable[[dict], None]] = []


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
    """One stage for one subject; returns the outcome (product ids, hit or miss and why)."""
    return stages.run(_workspace(home), build, stage, subject, run_id, save_intermediates).as_dict()


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


def _map_stage(home: str, build: str, stage: str, subjects: Sequence[str], run_id: str,
               save_intermediates: bool) -> list[dict]:
    futures = [stage_task.submit(home, build, stage, s, run_id, save_intermediates)
               for s in subjects]
    results = []
    for subject, fut in zip(subjects, futures):
        try:
            res = fut.result()
        except Exception as exc:  # the task itself crashed (not a recorded step failure)
            res = {"stage": stage, "subject": subject, "build": build, "status": "failed",
                   "error": str(exc), "hit": False, "reason": "", "outputs": {}}
        results.append(res)
        for listener in LISTENERS:
            listener(res)
    return results


def _run_id() -> str:
    return uuid.uuid4().hex[:12]


@flow(name="stage", log_prints=False)
def stage(home: str, build: str, stage: str, subjects: list[str], run_id: str | None = None,
          save_intermediates: bool = False) -> list[dict]:
    """One stage for each named subject (exposures, or associations for a stage 3)."""
    return _map_stage(home, build, stage, subjects, run_id or _run_id(), save_intermediates)


@flow(name="process", log_prints=False)
def process(home: str, build: str, exposures: list[str] | None = None, run_id: str | None = None,
            stages_to_run: Sequence[str] | None = None,
            save_intermediates: bool = False) -> list[dict]:
    """Every stage (or those named) for a set of exposures (default: all current exposures)
    under a build. Each exposure goes through the stages its EXP_TYPE selects; an exposure
    that fails a stage goes no further, and associations are formed from the rest."""
    ws = Workspace(home)
    run_id = run_id or _run_id()
    exposures = list(exposures or ws.catalog.current_exposure_ids())
    wanted = set(stages_to_run or registry.stage_names())
    results: list[dict] = []
    failed: set[str] = set()
    for st in registry.stages().values():
        if st.name not in wanted:
            continue
        ok = [e for e in exposures if e not in failed]
        if st.subject == "association":
            subjects = stages.subjects(ws, st.name, ws.catalog.current_exposure_ids(), touching=ok)
        else:
            subjects = stages.subjects(ws, st.name, ok)
        if not subjects:
            continue
        res = _map_stage(home, build, st.name, subjects, run_id, save_intermediates)
        results += res
        if st.subject == "exposure":
            failed |= {r["subject"] for r in res if r["status"] != "ok"}
    return results


@flow(name="reprocess", log_prints=False)
def reprocess(home: str, build: str, where: str | None = None, stale: bool = False,
              run_id: str | None = None) -> list[dict]:
    """Every exposure in the catalog (or those a SQL selection names) under a build."""
    ws = Workspace(home)
    if stale:
        exposures = ws.catalog.stale_exposure_ids(build, where)
    else:
        exposures = stages.select_exposures(ws, where)
    if not exposures:
        return []
    return process.fn(home, build, exposures, run_id=run_id)
