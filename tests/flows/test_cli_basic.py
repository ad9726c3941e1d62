"""The basic CLI: init, sql (read-only, formats, one-line errors), lineage, verify, compact."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from flows.cli import main
from flows.workspace import CONFIG_NAME, Workspace
from store.identity import hash_bytes
from transforms.model import DataModel


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def filled(workspace):
    """A workspace with two stored products, one recipe and its realisation."""
    ws = workspace
    uncal = ws.store.put(DataModel("uncal", {"data": np.arange(8, dtype="u2").reshape(1, 2, 2, 2)}, {}))
    rate = ws.store.put(DataModel("rate", {"data": np.ones((2, 2), "f4")}, {"k": 1}))
    key = hash_bytes(b"recipe")
    with ws.catalog.batch("test") as b:
        b.add("products", {"product_id": uncal, "kind": "uncal"})
        b.add("products", {"product_id": rate, "kind": "rate", "subject": "jw_a|b"})
        b.add("recipes", {"recipe_key": key, "step": "ramp_fit", "step_version": "2"})
        b.add("recipe_inputs", {"recipe_key": key, "role": "input", "input_id": uncal})
        b.add("realisations", {"recipe_key": key, "product_id": rate})
    return ws, uncal, rate, key


def test_init_creates_a_workspace_and_is_idempotent(tmp_path, capsys, monkeypatch):
    home = tmp_path / "ws"
    code, out, _ = run(capsys, "init", str(home))
    assert code == 0 and "initialised workspace" in out
    assert (home / CONFIG_NAME).is_file() and (home / "store").is_dir() and (home / "catalog").is_dir()
    (home / CONFIG_NAME).write_text((home / CONFIG_NAME).read_text() + "\n# kept\n")
    code, out, _ = run(capsys, "init", str(home))
    assert code == 0 and "already initialised" in out
    assert "# kept" in (home / CONFIG_NAME).read_text()
    monkeypatch.setenv("CALOPS_HOME", str(tmp_path / "env-home"))
    assert run(capsys, "init")[0] == 0 and (tmp_path / "env-home" / CONFIG_NAME).exists()
    assert Workspace.resolve().root == tmp_path / "env-home"


def test_workspace_parts(workspace):
    ws = workspace
    assert ws.crds_contexts() == []
    mappings = ws.root / "crds" / "mappings" / "jwst"
    mappings.mkdir(parents=True)
    for name in ("jwst_0002.pmap", "jwst_0001.pmap", "jwst_nircam_0001.imap"):
        (mappings / name).write_text("")
    assert ws.crds_contexts() == ["jwst_0001.pmap", "jwst_0002.pmap"]
    assert ws.store.url == str(ws.root / "store") and ws.catalog.url == str(ws.root / "catalog")
    assert Workspace(ws.root).config["store"]["url"] == "store"
    (ws.root / CONFIG_NAME).write_text("[store\n")
    with pytest.raises(Exception, match="not valid TOML"):
        Workspace(ws.root)


def test_uninitialised_workspace_is_a_one_line_error(tmp_path, capsys):
    code, out, err = run(capsys, "--home", str(tmp_path / "nothing"), "sql", "SELECT 1")
    assert code == 2 and err.count("\n") == 1 and "run `calops init" in err


def test_home_before_or_after_the_command(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CALOPS_HOME", raising=False)
    assert run(capsys, "init", str(tmp_path / "a"))[0] == 0
    for argv in (("--home", str(tmp_path / "a"), "sql", "SELECT 42 AS x"),
                 ("sql", "--home", str(tmp_path / "a"), "SELECT 42 AS x")):
        code, out, err = run(capsys, *argv)
        assert code == 0 and out.splitlines()[2].strip() == "42", err


def test_sql_table_output(filled, capsys):
    ws, uncal, rate, _ = filled
    code, out, err = run(capsys, "sql", "SELECT product_id, kind FROM products ORDER BY kind DESC")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["product_id", "kind"] and set(lines[1]) <= {"-", " "}
    assert lines[2].split()[1] == "uncal" and lines[-1] == "(2 rows)"
    assert "…" not in lines[2] and lines[2].split()[0] == uncal  # ids are never cut: copyable
    code, out, _ = run(capsys, "sql", "SELECT 'x' || repeat('y', 60) AS long")
    assert "…" in out.splitlines()[2]  # other long cells are cut at the default width
    code, out, _ = run(capsys, "sql", "--max-width", "0", "SELECT product_id FROM products")
    assert uncal in out and rate in out


def test_sql_formats(filled, capsys, tmp_path):
    ws, uncal, rate, _ = filled
    q = "SELECT product_id, kind, subject FROM products ORDER BY kind"
    code, out, _ = run(capsys, "sql", "-f", "csv", q)
    assert code == 0 and out.splitlines() == ["product_id,kind,subject", f"{rate},rate,jw_a|b",
                                              f"{uncal},uncal,"]
    code, out, _ = run(capsys, "sql", "--format", "json", q)
    assert json.loads(out) == [{"product_id": rate, "kind": "rate", "subject": "jw_a|b"},
                               {"product_id": uncal, "kind": "uncal", "subject": None}]
    dest = tmp_path / "out.parquet"
    code, _, _ = run(capsys, "sql", "--format", "parquet", "-o", str(dest), q)
    assert code == 0 and pq.read_table(dest).column("kind").to_pylist() == ["rate", "uncal"]
    code, _, err = run(capsys, "sql", "--format", "parquet", q)
    assert code == 2 and "-o FILE" in err


@pytest.mark.parametrize("query", ["INSERT INTO products (product_id) VALUES ('x')",
                                   "COPY products TO 'leak.csv'", "ATTACH 'new.db' AS n",
                                   "CREATE TABLE t AS SELECT 1"])
def test_sql_refuses_writes(filled, capsys, query, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "sql", query)
    assert code == 2 and out == ""
    assert err.startswith("calops: error: refused") and err.count("\n") == 1
    assert not (tmp_path / "leak.csv").exists() and not (tmp_path / "new.db").exists()
    assert run(capsys, "sql", "SELECT count(*) FROM products")[1].splitlines()[2].strip() == "2"


def test_bad_sql_one_line_nonzero(filled, capsys):
    for q in ("SELEC 1", "SELECT * FROM no_such_table", "SELECT product_id + 1 FROM products"):
        code, out, err = run(capsys, "sql", q)
        assert code == 2 and out == "" and err.startswith("calops: error: ")
        assert err.count("\n") == 1, err


def test_lineage_tree_and_formats(filled, capsys):
    ws, uncal, rate, key = filled
    code, out, _ = run(capsys, "lineage", rate[:16])
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("rate sha256:") and "ramp_fit v2" in lines[1]
    assert "input: uncal" in lines[2]
    code, out, _ = run(capsys, "lineage", "--down", "--format", "json", uncal)
    assert [r["id"] for r in json.loads(out)] == [uncal, key, rate]
    code, _, err = run(capsys, "lineage", "sha256:0000")
    assert code == 2 and "no product or recipe" in err


def test_verify_finds_corruption_and_missing_objects(filled, capsys):
    ws, uncal, rate, _ = filled
    code, out, _ = run(capsys, "verify")
    assert code == 0 and "all intact" in out
    path = ws.store.path_of(rate)
    os.chmod(path, 0o644)
    data = bytearray(open(path, "rb").read())
    data[-1] ^= 0xFF
    open(path, "wb").write(data)
    code, out, _ = run(capsys, "verify")
    assert code == 1 and f"BAD {rate}" in out and uncal not in out
    os.remove(ws.store.path_of(uncal))
    code, out, _ = run(capsys, "verify")
    assert code == 1 and f"BAD {uncal}: recorded in the catalog but missing" in out


def test_compact_command(filled, capsys):
    ws = filled[0]
    ws.catalog.write("products", [{"product_id": hash_bytes(b"x"), "kind": "cal"}], "more")
    code, out, _ = run(capsys, "compact", "products")
    assert code == 0 and out.splitlines()[2].split() == ["products", "2", "1", "3", "3", "0"]
    assert ws.catalog.count("products") == 3 and len(ws.catalog.files("products")) == 1


def test_console_script_with_calops_home(filled, repo_root):
    ws = filled[0]
    exe = os.path.join(os.path.dirname(sys.executable), "calops")
    cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "flows.cli"]
    env = dict(os.environ, CALOPS_HOME=str(ws.root), PYTHONPATH=str(repo_root))
    ok = subprocess.run(cmd + ["sql", "-f", "csv", "SELECT count(*) AS n FROM products"],
                        capture_output=True, text=True, env=env, cwd=repo_root, timeout=120)
    assert ok.returncode == 0 and ok.stdout.split() == ["n", "2"], ok.stderr
    bad = subprocess.run(cmd + ["sql", "DROP VIEW products"], capture_output=True, text=True,
                         env=env, cwd=repo_root, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "refused" in bad.stderr


def test_program_exit_keeps_code_output_hooks_and_ignores_busy_daemon_threads(repo_root):
    """`calops` ends after main() without interpreter finalization (flows.cli.run): the exit
    code and every line printed survive, exit hooks (Prefect flushes its logs there) still
    run, non-daemon workers are joined, and a daemon thread still busy does not hold it up."""
    script = (
        "import atexit, sys, threading, time\n"
        "from flows import cli\n"
        "threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
        "done = []\n"
        "threading.Thread(target=lambda: (time.sleep(0.3), done.append(1))).start()\n"
        "atexit.register(lambda: print('exit hook ran after the worker', done))\n"
        "sys.argv = ['calops', 'no-such-command']\n"
        "print('before')\n"
        "cli.run()\n")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=repo_root, env=dict(os.environ, PYTHONPATH=str(repo_root)),
                         timeout=120)
    assert res.returncode == 2, res.stderr
    assert res.stdout.splitlines() == ["before", "exit hook ran after the worker [1]"]
    assert res.stderr.startswith("calops: error:") and res.stderr.count("\n") == 1
