"""flows/jit.py and `calops warmup`: the numba cache location, the first-run notice, warm-up."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import pytest

from flows import jit
from flows.cli import main
from flows.workspace import CONFIG_NAME

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, cache: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture
def no_env(monkeypatch):
    """No $NUMBA_CACHE_DIR, and numba's config restored after the test."""
    monkeypatch.delenv(jit.ENV, raising=False)
    monkeypatch.setattr(numba.config, "CACHE_DIR", numba.config.CACHE_DIR)
    yield monkeypatch
    os.environ.pop(jit.ENV, None)


def test_cache_dir_from_workspace_config_relative_to_the_file(tmp_path, no_env):
    home = tmp_path / "ws"
    home.mkdir()
    (home / CONFIG_NAME).write_text('[workspace]\nversion = 1\n[numba]\ncache_dir = "jit"\n')
    assert jit.configure(["run", "detector1", "--home", str(home)]) == str(home / "jit")
    assert os.environ[jit.ENV] == str(home / "jit")  # exported: process workers share it
    assert numba.config.CACHE_DIR == str(home / "jit")


def test_cache_dir_home_forms_and_absolute_path(tmp_path, no_env):
    home = tmp_path / "ws"
    home.mkdir()
    (home / CONFIG_NAME).write_text(f'[numba]\ncache_dir = "{tmp_path / "abs"}"\n')
    assert jit.configure([f"--home={home}", "sql", "x"]) == str(tmp_path / "abs")
    os.environ.pop(jit.ENV)
    no_env.setenv("CALOPS_HOME", str(home))
    assert jit.configure(["sql", "x"]) == str(tmp_path / "abs")


def test_environment_wins_and_no_setting_means_numba_default(tmp_path, no_env):
    home = tmp_path / "ws"
    home.mkdir()
    (home / CONFIG_NAME).write_text("[workspace]\nversion = 1\n")
    assert jit.configure(["--home", str(home)]) is None
    assert jit.ENV not in os.environ
    (home / CONFIG_NAME).write_text('[numba]\ncache_dir = "jit"\n')
    no_env.setenv(jit.ENV, str(tmp_path / "mine"))
    assert jit.configure(["--home", str(home)]) == str(tmp_path / "mine")
    # no workspace at all, or a config that does not parse: numba's default, no error
    no_env.delenv(jit.ENV)
    assert jit.configure(["--home", str(tmp_path / "none")]) is None
    (home / CONFIG_NAME).write_text("[numba\n")
    assert jit.configure(["--home", str(home)]) is None


def test_notice_printed_once_when_numba_compiles():
    buf = io.StringIO()
    jit.reset_notice()
    try:
        jit.announce(stream=buf)  # kernels cached in this test process or not: at most once

        @numba.njit
        def fresh(x):  # compiled now, whatever the cache holds
            return x + 1

        fresh(1)
        fresh(2.0)
        assert buf.getvalue().count(jit.MESSAGE) == 1
    finally:
        jit.reset_notice()


def test_cold_cache_is_detected_and_announced_without_compiling(tmp_path):
    out = _python("import json; from flows import jit\n"
                  "with jit.Compiles() as c:\n"
                  "    cold = jit.cold_kernels()\n"
                  "    said = jit.announce()\n"
                  "    jit.announce()\n"
                  "print(json.dumps([cold, said, c.count]))", tmp_path / "empty")
    assert out.returncode == 0, out.stderr
    cold, said, compiled = json.loads(out.stdout.splitlines()[-1])
    assert sorted(cold) == sorted(f"{m}.{n}" for m, n in jit.SENTINELS)
    assert said and out.stderr.count(jit.MESSAGE) == 1  # once, on stderr
    assert compiled == 0


def test_warmup_unknown_group_is_a_one_line_error(capsys):
    assert main(["warmup", "nosuchgroup"]) == 2
    err = capsys.readouterr().err
    assert "unknown kernel group" in err and "detector1" in err


def test_warmup_compare_then_cached(tmp_path):
    """A group compiles into the cache once; the next process finds everything cached."""
    code = ("from flows.cli import main; import sys; sys.exit(main(['warmup', 'compare']))")
    first = _python(code, tmp_path / "cache")
    assert first.returncode == 0, first.stderr
    assert "compare" in first.stdout and "compiled" in first.stdout
    again = _python(code, tmp_path / "cache")
    assert again.returncode == 0, again.stderr
    assert "all cached" in again.stdout and "(0 kernels compiled)" in again.stdout


@pytest.mark.slow
def test_after_warmup_detector1_compiles_nothing(tmp_path):
    """`calops warmup` into an empty cache, then a new process simulates an exposure and runs
    detector1 on it (with its zero frame and several integrations): no kernel is compiled."""
    cache = tmp_path / "cache"
    warm = _python("from flows.cli import main; import sys; "
                   "sys.exit(main(['warmup', 'detector1', 'simulator']))", cache, timeout=1200)
    assert warm.returncode == 0, warm.stderr
    run = _python(
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT / 'tests' / 'transforms' / 'detector1')!r})\n"
        "from d1_helpers import sim_exposure\n"
        "from flows import jit\n"
        "from transforms.detector1 import default_plan, run\n"
        "with jit.Compiles() as c:\n"
        "    for nints, ng in ((1, 5), (2, 8)):\n"
        "        uncal, refs, *_ = sim_exposure(ngroups=ng, nints=nints)\n"
        "        run(uncal, default_plan(refs, meta=uncal.meta))\n"
        "print(json.dumps(sorted(set(c.names))))\n", cache)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[-1]) == []
