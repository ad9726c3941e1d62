"""Run bookkeeping: a ``runs`` row when a run starts and one when it ends, a lease while it
lives, and the closing of runs that died without ending.

A live run holds a lease file ``<workspace>/leases/<run_id>.json`` (host, pid, Prefect flow-run
id), touched every ``HEARTBEAT_S`` by a daemon thread. ``close_abandoned`` (called before every
run and by ``calops verify``) writes a final ``abandoned`` row for each run whose lease went
stale or whose process on this host is gone, and for each ``running`` row that has no lease at
all: so a SIGKILLed run is closed by the next one, and no row stays ``running`` for ever.
Rows are never changed; the latest row of a run (``latest_runs``) is its state.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalogs.recipes import Run
from flows.workspace import Workspace
from transforms import registry

HEARTBEAT_S = 10.0
STALE_AFTER_S = 6 * HEARTBEAT_S


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class RunHandle:
    ws: Workspace
    run: Run
    lease: Path
    _stop: threading.Event = field(default_factory=threading.Event)
    _beat: threading.Thread | None = None

    @property
    def run_id(self) -> str:
        return self.run.run_id


def _lease_dir(ws: Workspace) -> Path:
    return ws.root / "leases"


def start(ws: Workspace, build: str, command: str, run_id: str | None = None,
          flow_run_id: str | None = None, plan_id: str | None = None) -> RunHandle:
    """Record a run as ``running`` and hold its lease until ``finish``."""
    run_id = run_id or new_run_id()
    summary = {k: v for k, v in (("flow_run_id", flow_run_id), ("plan_id", plan_id)) if v}
    run = Run(run_id, build, command, _utcnow(), "running", socket.gethostname(), None, summary)
    lease = _lease_dir(ws) / f"{run_id}.json"
    lease.parent.mkdir(parents=True, exist_ok=True)
    lease.write_text(json.dumps({"run_id": run_id, "host": run.host, "pid": os.getpid(),
                                 "flow_run_id": flow_run_id}))
    ws.catalog.record_run(run)
    handle = RunHandle(ws, run, lease)
    handle._beat = threading.Thread(target=_heartbeat, args=(handle,), daemon=True,
                                    name=f"calops-lease-{run_id}")
    handle._beat.start()
    return handle


def _heartbeat(h: RunHandle) -> None:
    while not h._stop.wait(HEARTBEAT_S):
        with contextlib.suppress(OSError):
            os.utime(h.lease)


def finish(h: RunHandle, status: str, summary: dict[str, Any]) -> None:
    """Record the run's end (ok, partial, failed) and release its lease."""
    h._stop.set()
    try:
        h.ws.catalog.record_run(Run(h.run.run_id, h.run.build, h.run.command, h.run.started_at,
                                    status, h.run.host, _utcnow(), {**h.run.summary, **summary}))
    finally:
        with contextlib.suppress(OSError):
            h.lease.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def close_abandoned(ws: Workspace) -> list[str]:
    """Close every run that died without ending; returns their run ids."""
    host, now = socket.gethostname(), _utcnow().timestamp()
    live: set[str] = set()
    dead: dict[str, str] = {}
    d = _lease_dir(ws)
    for f in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            info = json.loads(f.read_text())
            age = now - f.stat().st_mtime
        except (OSError, ValueError):
            continue
        rid = info.get("run_id") or f.stem
        if info.get("host") == host and not _alive(int(info.get("pid", -1))):
            dead[rid] = "its process is gone"
        elif age > STALE_AFTER_S:
            dead[rid] = f"no heartbeat for {age:.0f} s"
        else:
            live.add(rid)
    running = ws.catalog.sql("SELECT run_id, build, command, started_at, host, summary_json "
                             "FROM latest_runs WHERE status = 'running'").to_pylist()
    closed = []
    for r in running:
        rid = r["run_id"]
        if rid in live:
            continue
        why = dead.get(rid, "it left no lease")
        summary = json.loads(r["summary_json"] or "{}")
        summary["abandoned_because"] = why
        ws.catalog.record_run(Run(rid, r["build"], r["command"], r["started_at"], "abandoned",
                                  r["host"] or "", _utcnow(), summary))
        closed.append(rid)
    for rid in dead:
        with contextlib.suppress(OSError):
            (d / f"{rid}.json").unlink()
    return closed


def summarise(results: list[dict], wall: float) -> dict[str, Any]:
    """Counts of a run's stage outcomes, for the runs row, the CLI and Prefect's artifact."""
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


def status_of(summary: dict[str, Any]) -> str:
    if summary["failed"] == 0:
        return "ok"
    return "failed" if summary["failed"] == summary["tasks"] else "partial"


def markdown(build: str, run_id: str, summary: dict[str, Any], results: list[dict]) -> str:
    """The run summary as a markdown table (a Prefect artifact)."""
    lines = [f"### calops run `{run_id}` under build `{build}`", "",
             "| tasks | hits | misses | failed | wall (s) |", "|---:|---:|---:|---:|---:|",
             f"| {summary['tasks']} | {summary['hits']} | {summary['misses']} | "
             f"{summary['failed']} | {summary['wall_s']} |", "",
             "| count | reason |", "|---:|---|"]
    lines += [f"| {n} | {why} |" for why, n in sorted(summary["reasons"].items(),
                                                       key=lambda kv: -kv[1])]
    fails = [r for r in results if r["status"] != "ok"]
    if fails:
        lines += ["", "| stage | subject | error |", "|---|---|---|"]
        lines += [f"| {r['stage']} | {r['subject']} | {r.get('error', '')} |" for r in fails]
    return "\n".join(lines) + "\n"
