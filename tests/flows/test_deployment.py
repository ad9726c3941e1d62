"""A real Prefect server on loopback, `calops serve`, a run triggered through the client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.server

CALOPS = [sys.executable, "-m", "flows.cli"]
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str, procs=()) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"{what}: process exited early with {p.returncode}")
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def prefect_server(tmp_path):
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "DO_NOT_TRACK": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host",
                             "127.0.0.1", "--port", str(port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        _wait(lambda: _healthy(url), 180, "the Prefect server", [proc])
        yield url, env
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_served_deployment_runs_and_lands_in_the_catalog(prefect_server, sim_ws, tmp_path):
    url, env = prefect_server
    env = {**env, "PREFECT_API_URL": url, "PYTHONPATH": str(ROOT)}
    serve_log = open(tmp_path / "serve.log", "w")
    serve = subprocess.Popen(CALOPS + ["--home", str(sim_ws.root), "serve", "--build", "11.1.1"],
                             env=env, cwd=ROOT, stdout=serve_log, stderr=subprocess.STDOUT)
    eid = sim_ws.catalog.current_exposure_ids()[0]
    trigger = (
        "import sys\n"
        "from prefect.deployments import run_deployment\n"
        "fr = run_deployment('process/calops-process', timeout=600, parameters={\n"
        f"    'exposures': [{eid!r}], 'stages': ['detector1']}})\n"
        "print(fr.state.type.value)\n"
        "sys.exit(0 if fr.state.is_completed() else 1)\n"
    )
    try:
        def deployed() -> bool:
            r = subprocess.run([sys.executable, "-m", "prefect", "deployment", "ls"], env=env,
                               capture_output=True, text=True, timeout=60)
            return "calops-process" in r.stdout

        _wait(deployed, 180, "calops serve to register its deployments", [serve])
        run = subprocess.run([sys.executable, "-c", trigger], env=env, capture_output=True,
                             text=True, timeout=900)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "COMPLETED" in run.stdout
    finally:
        serve.terminate()
        try:
            serve.wait(20)
        except subprocess.TimeoutExpired:
            serve.kill()
        serve_log.close()
    # the flow run served by the deployment left its products in the sim_ws's catalog
    rows = sim_ws.catalog.sql(
        "SELECT p.kind FROM run_steps s, products p WHERE s.subject = ? AND s.stage = 'detector1' "
        "AND p.subject = s.subject AND p.kind IN ('rate', 'rateints')", [eid]).column("kind")
    assert set(rows.to_pylist()) == {"rate", "rateints"}
