"""Shared test setup: offline environment, a hypothesis profile, workspace fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO_ROOT = Path(__file__).resolve().parents[1]

# Nothing may touch the network: CRDS works from the local cache only.
os.environ["CRDS_MODE"] = "local"
if "serverless" not in os.environ.get("CRDS_SERVER_URL", "serverless"):
    os.environ.pop("CRDS_SERVER_URL")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

# Small, deadline-free property tests on a shared 2-core CI machine.
settings.register_profile("calops", deadline=None, max_examples=20,
                          suppress_health_check=[HealthCheck.too_slow])
# CI (.ci/run) explores the same examples every run, so its verdict is about the commit, not
# the draw; local runs keep drawing new ones, and what they find becomes an @example.
settings.register_profile("ci", parent=settings.get_profile("calops"), derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "calops"))


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python that imports calops from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run_python(code: str, *, input: bytes | None = None, timeout: float = 120,
               **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (same venv) from the repository root."""
    return subprocess.run([sys.executable, "-c", code], input=input, capture_output=True,
                          timeout=timeout, cwd=REPO_ROOT, env=subprocess_env(**env))


@pytest.fixture(name="run_python", scope="session")
def run_python_fixture():
    """``run_python(code, input=..., **env)``: a fresh interpreter from the repository root."""
    return run_python


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A fresh initialised workspace, also set as $CALOPS_HOME."""
    from flows.workspace import Workspace

    ws, _ = Workspace.init(tmp_path / "home")
    monkeypatch.setenv("CALOPS_HOME", str(ws.root))
    return ws


@pytest.fixture(scope="module")
def jwst_offline(tmp_path_factory):
    """jwst in this process, offline (FIELD-NOTES): no CRDS server, no cache, every reference
    an override; the CRDS environment is restored afterwards. Yields the empty CRDS root."""
    from jwst_offline import crds_environment  # tests/ is on sys.path (this conftest's dir)

    root = tmp_path_factory.mktemp("crds")
    env = {k: v for k, v in crds_environment(root).items()
           if k.startswith(("CRDS_", "STPIPE_"))}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield root
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
