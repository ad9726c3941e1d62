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


def _prefect(env, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "prefect", *args], env={**env, "COLUMNS": "300"},
                          capture_output=True, text=True, timeout=timeout)


def _client_call(env, code: str, timeout=120) -> str:
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_prefect_tells_the_truth(prefect_server, sim_ws, sim_program, tmp_path):
    """On a real server: `-p build=11.2` works as typed; a served run records its runs row with
    the flow-run id, is named after its build, publishes its summary as an artifact and in its
    logs; a run with a failed stage ends FAILED; `serve --cron --on-ingest` schedules
    calops-new-data and `calops ingest` triggers it."""
    import json

    url, env = prefect_server
    env = {**env, "PREFECT_API_URL": url, "PYTHONPATH": str(ROOT)}
    serve_log = open(tmp_path / "serve.log", "w")
    serve = subprocess.Popen(CALOPS + ["--home", str(sim_ws.root), "serve", "--cron",
                                       "0 3 * * *", "--on-ingest", "--build", "11.1.1"],
                             env=env, cwd=ROOT, stdout=serve_log, stderr=subprocess.STDOUT)
    eids = sim_ws.catalog.current_exposure_ids()
    try:
        _wait(lambda: "calops-new-data" in _prefect(env, "deployment", "ls").stdout, 240,
              "calops serve to register its deployments", [serve])
        # 1. typed as on the command line, watched to the end
        r = _prefect(env, "deployment", "run", "process/calops-process", "-p", "build=11.2",
                     "-p", f"exposures=[\"{eids[0]}\"]", "-p", 'stages=["detector1"]',
                     "--watch", timeout=900)
        assert r.returncode == 0 and "Completed" in r.stdout + r.stderr, r.stdout + r.stderr
        rows = sim_ws.catalog.sql("SELECT run_id, status, summary_json FROM latest_runs "
                                  "WHERE build = '11.2'").to_pylist()
        assert len(rows) == 1 and rows[0]["status"] == "ok", rows
        frid = json.loads(rows[0]["summary_json"])["flow_run_id"]
        info = json.loads(_client_call(env, (
            "import asyncio, json\n"
            "from prefect.client.orchestration import get_client\n"
            "async def main():\n"
            "    async with get_client() as c:\n"
            f"        fr = await c.read_flow_run('{frid}')\n"
            "        arts = await c.read_artifacts()\n"
            "        logs = await c.read_logs()\n"
            "        print(json.dumps({'name': fr.name, 'state': fr.state.type.value,\n"
            "            'artifacts': [a.key for a in arts if str(a.flow_run_id) == str(fr.id)],\n"
            "            'logs': [l.message for l in logs if str(l.flow_run_id) == str(fr.id)]}))\n"
            "asyncio.run(main())\n")))
        assert "11.2" in info["name"] and "detector1" in info["name"], info
        assert info["state"] == "COMPLETED"
        assert "calops-run-summary" in info["artifacts"]
        assert any("hits" in m and "misses" in m for m in info["logs"]), info["logs"]
        # 2. a run whose stage fails ends FAILED: this exposure's dark is gone from the cache
        import glob

        for f in glob.glob(str(sim_ws.root / "crds" / "references" / "jwst" / "niriss" /
                               "*dark*")):
            os.remove(f)
        nis = [e for e in eids if e.endswith("_nis")]
        r = _prefect(env, "deployment", "run", "process/calops-process", "-p",
                     f"exposures={json.dumps(nis)}", "-p", 'stages=["detector1"]', "--watch",
                     timeout=900)
        assert "Failed" in r.stdout + r.stderr, r.stdout + r.stderr
        failed = sim_ws.catalog.sql("SELECT count(*) FROM latest_runs WHERE status = 'failed'"
                                    ).column(0)[0].as_py()
        assert failed == 1
        # 3. the schedule and the automation, then an ingest that triggers a reprocess
        out = _prefect(env, "deployment", "inspect", "reprocess/calops-new-data").stdout
        assert "0 3 * * *" in out, out
        autos = _prefect(env, "automation", "ls").stdout
        assert "reprocess newly ingested exposures" in autos, autos
        before = sim_ws.catalog.sql("SELECT count(*) FROM runs").column(0)[0].as_py()
        ingest = subprocess.run(CALOPS + ["--home", str(sim_ws.root), "ingest",
                                          str(_reissued(sim_program, tmp_path))],
                                env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert ingest.returncode == 0 and "ingest event" in ingest.stdout, ingest.stdout + ingest.stderr
        _wait(lambda: sim_ws.catalog.sql("SELECT count(*) FROM latest_runs WHERE command = "
                                         "'flow reprocess' AND status != 'running'"
                                         ).column(0)[0].as_py() >= 1, 600,
              "the ingest automation to reprocess", [serve])
        assert sim_ws.catalog.sql("SELECT count(*) FROM runs").column(0)[0].as_py() > before
    finally:
        serve.terminate()
        try:
            serve.wait(20)
        except subprocess.TimeoutExpired:
            serve.kill()
        serve_log.close()


def _reissued(program, tmp_path):
    """An ephemeris reissue of the program's first exposure, as an uncal file."""
    from store.fits import write_uncal
    from transforms.sim.program import reissue

    e = program.exposures[0]
    d = tmp_path / "reissue"
    d.mkdir()
    return write_uncal(reissue(e, "ephemeris", program=program).uncal, d / e.truth.name)
