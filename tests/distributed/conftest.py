"""An S3-compatible server (moto) on loopback for the whole session, and S3 workspaces on it."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

S3_ENV = {"AWS_ACCESS_KEY_ID": "calops-test", "AWS_SECRET_ACCESS_KEY": "calops-test",
          "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def s3_endpoint():
    """``http://127.0.0.1:<port>`` of a moto S3 server (loopback only), with test credentials
    in the environment (as a real deployment would have them) and a bucket ``calops``."""
    moto_server = pytest.importorskip("moto.server", reason="moto[server] is a test extra")
    s3fs = pytest.importorskip("s3fs", reason="s3fs is a test extra (pip install -e '.[test]')")
    old = {k: os.environ.get(k) for k in list(S3_ENV) + ["AWS_ENDPOINT_URL"]}
    os.environ.update(S3_ENV)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    srv = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    assert host == "127.0.0.1"
    url = f"http://{host}:{port}"
    try:
        s3fs.S3FileSystem(endpoint_url=url, skip_instance_cache=True).mkdir("calops")
        yield url
    finally:
        srv.stop()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def s3_workspace(root: Path, endpoint: str, prefix: str | None = None, crds: str = "crds",
                 with_options: bool = True):
    """A workspace directory whose store and catalog live in ``s3://calops/<prefix>/``; the
    endpoint is given as ``[store] options`` (the catalog inherits it) unless told not to."""
    from flows.workspace import CONFIG_NAME, Workspace

    prefix = prefix or uuid.uuid4().hex[:12]
    opts = f'options = {{ endpoint_url = "{endpoint}" }}\n' if with_options else ""
    root.mkdir(parents=True, exist_ok=True)
    (root / CONFIG_NAME).write_text(
        "[workspace]\nversion = 1\n"
        f'[store]\nurl = "s3://calops/{prefix}/store"\n{opts}'
        f'[catalog]\nurl = "s3://calops/{prefix}/catalog"\n'
        f'[crds]\npath = "{crds}"\n[builds]\npath = "builds"\n')
    ws, created = Workspace.init(root)
    assert not created
    return ws


@pytest.fixture
def make_s3_workspace(s3_endpoint, tmp_path):
    """``make_s3_workspace(name="ws", **kw)``: a fresh workspace on the session's S3 server."""
    def make(name: str = "ws", **kw):
        return s3_workspace(tmp_path / name, s3_endpoint, **kw)
    return make


@pytest.fixture(scope="session")
def dist_sim_dir(tmp_path_factory):
    """uncal files of a NIRCam dither pair and a matching local CRDS cache."""
    from dataclasses import replace

    from catalogs.crds_cache import contexts_from_program, write_cache
    from store.fits import write_uncal
    from transforms.sim.program import simulate_program, small_program

    spec = small_program()
    spec = replace(spec, exposures=spec.exposures[:2], nstars=30, ngalaxies=5)
    program = simulate_program(spec, seed=6)
    d = tmp_path_factory.mktemp("dist-sim")
    (d / "uncal").mkdir()
    for e in program.exposures:
        write_uncal(e.uncal, d / "uncal" / e.truth.name)
    write_cache(d / "crds", contexts_from_program(program))
    return d


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    """One Prefect API server for the module (its URL also in the environment, so Dask
    workers spawned afterwards report to it instead of each starting their own)."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
    home = tmp_path_factory.mktemp("prefect-home")
    old = {k: os.environ.get(k) for k in ("PREFECT_HOME", "PREFECT_API_URL")}
    os.environ["PREFECT_HOME"] = str(home)
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    server = SubprocessASGIServer()
    server.start(timeout=300)
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url, PREFECT_HOME: str(home)}):
            yield server.api_url
    finally:
        server.stop()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def dask_cluster(prefect_api, s3_endpoint):
    """A local dask.distributed cluster: 2 worker processes on loopback (started once)."""
    distributed = pytest.importorskip("distributed", reason="dask[distributed] is a test extra")
    pytest.importorskip("prefect_dask", reason="prefect-dask is a test extra")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    try:
        yield cluster
    finally:
        cluster.close()
