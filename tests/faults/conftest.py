"""Flow-level fault fixtures: a two-exposure simulated program written once per session, and
helpers to run the ``calops`` CLI in its own process group (so SIGKILL takes the whole run,
Prefect's temporary server included, as a dead node would)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def fault_sim_dir(tmp_path_factory):
    """uncal files of a NIRCam dither pair and a matching local CRDS cache."""
    from catalogs.crds_cache import contexts_from_program, write_cache
    from store.fits import write_uncal
    from transforms.sim.program import simulate_program, small_program

    spec = small_program()
    spec = replace(spec, exposures=spec.exposures[:2], nstars=30, ngalaxies=5)
    program = simulate_program(spec, seed=5)
    d = tmp_path_factory.mktemp("fault-sim")
    (d / "uncal").mkdir()
    for e in program.exposures:
        write_uncal(e.uncal, d / "uncal" / e.truth.name)
    write_cache(d / "crds", contexts_from_program(program))
    return d


@pytest.fixture
def fault_workspace(tmp_path, fault_sim_dir):
    """A fresh workspace with the CRDS cache and both exposures ingested."""
    from flows.ingest import ingest_file
    from flows.workspace import Workspace

    ws, _ = Workspace.init(tmp_path / "home")
    shutil.rmtree(ws.crds_path)
    shutil.copytree(fault_sim_dir / "crds", ws.crds_path)
    rid = uuid.uuid4().hex[:8]
    for f in sorted((fault_sim_dir / "uncal").glob("*.fits")):
        ingest_file(ws, f, rid)
    return ws


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    """One Prefect API server for the module, as a deployment has: the `calops` children
    report to it (and a killed child does not take it down)."""
    from prefect.server.api.server import SubprocessASGIServer

    home = tmp_path_factory.mktemp("prefect-home")
    old = os.environ.get("PREFECT_HOME")
    os.environ["PREFECT_HOME"] = str(home)
    server = SubprocessASGIServer()
    try:
        server.start(timeout=300)
        yield server.api_url
    finally:
        server.stop()
        if old is None:
            os.environ.pop("PREFECT_HOME", None)
        else:
            os.environ["PREFECT_HOME"] = old


def calops_env(tmp: Path, api_url: str, **extra: str) -> dict[str, str]:
    """Environment of a child ``calops``: this checkout, offline CRDS, the module's Prefect."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(CRDS_MODE="local", DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_HOME=str(tmp / f"prefect-{uuid.uuid4().hex[:8]}"), PREFECT_API_URL=api_url)
    env.update(extra)
    return env


def start_calops(tmp: Path, api_url: str, *argv: str, **popen) -> subprocess.Popen:
    """``calops ARGV`` in a new session (process group), output to files under ``tmp``."""
    tag = uuid.uuid4().hex[:6]
    out = open(tmp / f"calops-{tag}.out", "w+")
    err = open(tmp / f"calops-{tag}.err", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", *argv], cwd=REPO,
                            env=calops_env(tmp, api_url), stdout=out, stderr=err,
                            start_new_session=True, **popen)
    proc.out_file, proc.err_file = out, err
    return proc


def output_of(proc: subprocess.Popen) -> tuple[str, str]:
    """What a ``start_calops`` child has printed so far: (stdout, stderr)."""
    proc.out_file.seek(0)
    proc.err_file.seek(0)
    return proc.out_file.read(), proc.err_file.read()


@pytest.fixture
def calops_proc(tmp_path, prefect_api):
    """Start ``calops ARGV`` as its own process group (``proc.out_file``/``err_file`` hold
    its output)."""
    return lambda *argv, **popen: start_calops(tmp_path, prefect_api, *argv, **popen)


# --- the hostile suite's shared fixtures (tests/faults/test_hostile_*.py) -----------------------

BUILD = "11.1.1"


@pytest.fixture(scope="session")
def ran_home(tmp_path_factory, fault_sim_dir):
    """A workspace with both exposures ingested and run through detector1, image2 and image3
    under the operations build, in-process (a few seconds once numba is warm). Tests copy it
    (``hws``) and damage the copy."""
    from flows import stages
    from flows.ingest import ingest_file
    from flows.workspace import Workspace

    root = tmp_path_factory.mktemp("hostile") / "home"
    ws, _ = Workspace.init(root)
    shutil.rmtree(ws.crds_path)
    shutil.copytree(fault_sim_dir / "crds", ws.crds_path)
    for f in sorted((fault_sim_dir / "uncal").glob("*.fits")):
        ingest_file(ws, f, "ingest")
    ws.builds.names()  # seed the manifests (recorded)
    eids = ws.catalog.current_exposure_ids()
    for stage in ("detector1", "image2"):
        for e in eids:
            out = stages.run(ws, BUILD, stage, e, "hostile-run")
            assert out.status == "ok", out.error
    for asn in stages.subjects(ws, "image3", eids):
        out = stages.run(ws, BUILD, "image3", asn, "hostile-run")
        assert out.status == "ok", out.error
    ws.catalog.close()
    return root


@pytest.fixture
def hws(tmp_path, ran_home):
    """A private copy of the run workspace (damage it freely)."""
    from flows.workspace import Workspace

    root = tmp_path / "home"
    shutil.copytree(ran_home, root, symlinks=True)
    return Workspace(root)


def cli(*argv: str) -> tuple[int, str, str]:
    """``calops ARGV`` in this process: (exit code, stdout, stderr)."""
    import contextlib
    import io

    from flows.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def one_error(rc: int, err: str, *words: str, code: int | None = 2) -> str:
    """The one clear line: no traceback, exactly one ``calops: error:`` line (containing
    ``words``), a non-zero exit (``code`` if given). Returns the line."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("calops: error:")]
    assert len(lines) == 1, err
    assert rc != 0 and (code is None or rc == code), (rc, err)
    for w in words:
        assert w.lower() in lines[0].lower(), (w, lines[0])
    assert "unexpected" not in lines[0] or code == 70, lines[0]
    return lines[0]


def snapshot(ws) -> dict:
    """Row counts of every table and the stored object ids."""
    from catalogs.schema import TABLES

    ws.catalog.close()
    counts = {t: ws.catalog.count(t) for t in TABLES}
    return {"counts": counts, "objects": sorted(ws.store.ids())}


def assert_intact(ws, before: dict | None = None, grown: tuple[str, ...] = ()) -> None:
    """Nothing lost: every object and catalog file verifies, nothing is missing, and (given a
    snapshot) no table lost rows and no object vanished (tables in ``grown`` may grow)."""
    ws.catalog.close()
    assert ws.store.verify() == []
    problems, _ = ws.catalog.check_files(deep=True)
    assert problems == [], [p.problem for p in problems]
    if before is not None:
        now = snapshot(ws)
        for t, n in before["counts"].items():
            if t in grown:
                assert now["counts"][t] >= n, t
            else:
                assert now["counts"][t] == n, (t, n, now["counts"][t])
        assert set(before["objects"]) <= set(now["objects"])
