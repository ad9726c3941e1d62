"""No residue after a kill: the temporary Prefect server dies with its calops command, and the
next run closes the killed run's row as abandoned (issue 17)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    """Every descendant process id of ``pid`` (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        out += [int(k) for k in kids]
        todo += [int(k) for k in kids]
    return out


def _is_server(pid: int) -> bool:
    try:
        return b"uvicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
    return " Z " not in stat  # a zombie is dead


def test_a_killed_run_takes_its_temporary_server_along_and_is_closed_next_time(fault_workspace):
    ws = fault_workspace
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PYTHONPATH=str(REPO), DO_NOT_TRACK="1")
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "--home", str(ws.root), "run",
                             "all"], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    server = None
    end = time.monotonic() + 240
    while time.monotonic() < end and proc.poll() is None and server is None:
        server = next((c for c in _children(proc.pid) if _is_server(c)), None)
        time.sleep(0.2)
    assert server is not None, "the run never started its temporary Prefect server"
    time.sleep(2)  # let it get going
    os.kill(proc.pid, signal.SIGKILL)  # only the calops process: its server must follow
    proc.wait()
    end = time.monotonic() + 20
    while time.monotonic() < end and _alive(server):
        time.sleep(0.2)
    assert not _alive(server), "the temporary Prefect server outlived its killed parent"
    running = ws.catalog.sql("SELECT run_id FROM latest_runs WHERE status = 'running'"
                             ).column(0).to_pylist()
    assert len(running) == 1
    from flows import runs

    assert runs.close_abandoned(ws) == running
    row = ws.catalog.sql("SELECT status, summary_json FROM latest_runs WHERE run_id = ?",
                         running).to_pylist()[0]
    assert row["status"] == "abandoned" and "process is gone" in row["summary_json"]
    assert runs.close_abandoned(ws) == []  # closed once, for good
