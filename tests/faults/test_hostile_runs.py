"""Residue after faults of whole runs (issue 17): what must hold when a run is killed, runs out
of disk, or meets an exposure it cannot combine.

- a killed run's ``runs`` row is closed as ``abandoned`` (or ``failed``) by the next run;
- a temporary Prefect server dies with the ``calops`` process that started it;
- a full disk during a run gives one line, the summary and a closed ``runs`` row;
- an exposure that cannot be processed (a 1x1 subarray) is left out of its association with
  a recorded reason, and the association still runs on the others.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
from astropy.io import fits

from tests.faults.conftest import BUILD, REPO, calops_env




def _env(tmp: Path, api_url: str | None, **extra: str) -> dict[str, str]:
    env = calops_env(tmp, api_url or "", **extra)
    if api_url is None:  # a temporary Prefect server per command, as a user without one has
        env.pop("PREFECT_API_URL", None)
        env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "90"
    return env


def _start(tmp: Path, env: dict, *argv: str, **popen) -> subprocess.Popen:
    tag = uuid.uuid4().hex[:6]
    out, err = open(tmp / f"run-{tag}.out", "w+"), open(tmp / f"run-{tag}.err", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", *argv], cwd=REPO, env=env,
                            stdout=out, stderr=err, start_new_session=True, **popen)
    proc.files = (out, err)
    return proc


def _output(proc) -> tuple[str, str]:
    for f in proc.files:
        f.seek(0)
    return proc.files[0].read(), proc.files[1].read()


def _wait_for_running_row(ws, proc, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ws.catalog.close()
        rows = ws.catalog.sql("SELECT run_id FROM latest_runs WHERE status = 'running'"
                              ).column(0).to_pylist()
        if rows:
            return rows[0]
        assert proc.poll() is None, _output(proc)
        time.sleep(0.2)
    raise AssertionError("no running row")


def _kill_group(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)


def test_a_killed_runs_row_is_closed_by_the_next_run(fault_workspace, tmp_path, prefect_api):
    ws = fault_workspace
    env = _env(tmp_path, prefect_api)
    proc = _start(tmp_path, env, "--home", str(ws.root), "run", "detector1", "--build", BUILD)
    killed = _wait_for_running_row(ws, proc)
    _kill_group(proc)
    again = _start(tmp_path, env, "--home", str(ws.root), "run", "detector1", "--build", BUILD)
    again.wait(timeout=600)
    ws.catalog.close()
    status = ws.catalog.sql("SELECT status FROM latest_runs WHERE run_id = ?",
                            [killed]).column(0).to_pylist()
    assert status and status[0] in ("abandoned", "failed"), status


def test_a_temporary_prefect_server_dies_with_its_parent(fault_workspace, tmp_path):
    ws = fault_workspace
    proc = _start(tmp_path, _env(tmp_path, None), "--home", str(ws.root), "run", "all",
                  "--build", BUILD)
    try:
        _wait_for_running_row(ws, proc, timeout=400)  # the temporary server is up by now
        time.sleep(12)
        os.kill(proc.pid, signal.SIGKILL)  # the parent only, as an OOM killer would
        proc.wait(timeout=60)
        deadline = time.monotonic() + 30
        alive = True
        while alive and time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
                time.sleep(0.5)
            except ProcessLookupError:
                alive = False
        assert not alive, "processes of the killed calops (its Prefect server) are still alive"
    finally:
        _kill_group(proc)


def _limit_file_size(nbytes: int):
    def pre():
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return pre


def test_a_full_disk_during_a_run_is_one_line_a_summary_and_a_closed_row(fault_workspace,
                                                                         tmp_path):
    ws = fault_workspace
    proc = _start(tmp_path, _env(tmp_path, None), "--home", str(ws.root), "run", "all",
                  "--build", BUILD, preexec_fn=_limit_file_size(96 * 1024))
    try:
        proc.wait(timeout=900)
    finally:
        _kill_group(proc)
    out, err = _output(proc)
    assert proc.returncode not in (0, None)
    assert "Traceback" not in err, err[-3000:]
    assert len([ln for ln in err.splitlines() if ln.startswith("calops: error:")]) == 1, err[-3000:]
    assert f"build {BUILD}" in out  # the summary
    ws.catalog.close()
    assert "running" not in ws.catalog.sql("SELECT status FROM latest_runs").column(0).to_pylist()


def _tiny_subarray_copy(src: Path, dst: Path) -> Path:
    """The same exposure as a 1x1 subarray with a new exposure number (same association)."""
    with fits.open(src) as h:
        hdul = fits.HDUList([hdu.copy() for hdu in h if hdu.name != "ASDF"])
    sci = hdul["SCI"]
    sci.data = np.ascontiguousarray(sci.data[:, :, :1, :1])
    for hdu in hdul:
        for k, v in (("SUBSIZE1", 1), ("SUBSIZE2", 1), ("EXPOSURE", 9)):
            if k in hdu.header:
                hdu.header[k] = v
    for name in ("ZEROFRAME", "REFOUT"):
        if name in hdul:
            del hdul[name]
    out = dst / src.name.replace("_00001_", "_00009_")
    hdul.writeto(out, checksum=True)
    return out


def test_a_member_that_cannot_be_processed_is_left_out_with_a_reason(fault_workspace,
                                                                      fault_sim_dir, tmp_path,
                                                                      prefect_api):
    ws = fault_workspace
    src = sorted((fault_sim_dir / "uncal").glob("*.fits"))[0]
    tiny = _tiny_subarray_copy(src, tmp_path)
    env = _env(tmp_path, prefect_api)
    proc = _start(tmp_path, env, "--home", str(ws.root), "run", "all", str(tiny), "--build",
                  BUILD)
    proc.wait(timeout=900)
    out, err = _output(proc)
    ws.catalog.close()
    tiny_id = tiny.name[: -len("_uncal.fits")]
    image3 = ws.catalog.sql("SELECT DISTINCT subject, status FROM run_steps WHERE stage = "
                            "'image3'").to_pylist()
    assert image3 and all(r["status"] == "ok" for r in image3), (image3, out, err[-2000:])
    # the lead's contract (docs/builds.md): the reason is in the association's run_steps.reason
    reasons = ws.catalog.sql("SELECT DISTINCT reason FROM run_steps WHERE stage = 'image3' "
                             "AND status = 'ok'").column(0).to_pylist()
    assert any(r and tiny_id in r for r in reasons), (reasons, out, err[-2000:])
