"""Hostile command lines and SQL: unknown commands and options, wrong types, missing and
broken workspaces, ids that do not exist, and SQL that tries to write, read outside the
catalog, or fail at run time. Each is one `calops: error:` line with exit code 2, and the
catalog is unchanged. Also: an unexpected failure is one line naming the log that has the
traceback, and the real `calops` entry point (a subprocess) prints no traceback either."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.conftest import REPO, assert_intact, cli, one_error, snapshot


ARGS = {
    "no-command": ((), ()),
    "unknown-command": (("frobnicate",), ("invalid choice",)),
    "unknown-option": (("verify", "--frob"), ("unrecognized",)),
    "sql-missing-query": (("sql",), ("query",)),
    "bad-format": (("sql", "SELECT 1", "--format", "xml"), ("invalid choice",)),
    "parquet-without-output": (("sql", "SELECT 1", "--format", "parquet"), ("-o FILE",)),
    "depth-not-a-number": (("lineage", "x", "--depth", "deep"), ("invalid int",)),
    "max-width-not-a-number": (("sql", "SELECT 1", "--max-width", "wide"), ("invalid int",)),
    "lineage-unknown-id": (("lineage", "sha256:ffff0000"), ("no product or recipe",)),
    "lineage-empty-id": (("lineage", ""), ()),
    "lineage-ambiguous": (("lineage", "sha256:"), ("ambiguous",)),
    "provenance-unknown": (("provenance", "sha256:ffff0000"), ("no product or recipe",)),
    "uses-reference-empty": (("ask", "uses-reference", " "), ("name a reference",)),
    "uses-reference-unknown": (("ask", "uses-reference", "nope.fits"), ("no recipe",)),
    "ask-unknown": (("ask", "why"), ("invalid choice",)),
    "affected-unknown-context": (("affected", "--context", "jwst_9999.pmap"), ("not in",)),
    "affected-no-context": (("affected",), ("--context",)),
    "run-unknown-stage": (("run", "stage9"), ("invalid choice",)),
    "run-unknown-build": (("run", "detector1", "--build", "nope"), ("unknown build",)),
    "run-archived-build": (("reprocess", "--build", "11.0.1", "--where", "false"),
                           ("nothing to do",)),
    "run-bad-where": (("reprocess", "--where", "exposure_id = ';"), ()),
    "run-where-writes": (("reprocess", "--where", "1=1); DROP TABLE products; --"), ()),
    "run-bad-runner": (("run", "detector1", "--runner", "mpi"), ("invalid choice",)),
    "compact-unknown-table": (("compact", "nope"), ("no catalog table",)),
    "export-prov-unknown": (("export-prov", "sha256:ffff0000"), ("no product or recipe",)),
    "diff-unknown-build": (("diff", "nope", "11.1.1"), ()),
    "ingest-no-files": (("ingest",), ("files",)),
    "init-on-a-file": (("init", "FILE"), ("is a file",)),
}


@pytest.mark.parametrize("case", sorted(ARGS))
def test_bad_command_lines(hws, tmp_path, case):
    argv, words = ARGS[case]
    f = tmp_path / "a-file"
    f.write_text("x")
    argv = tuple(str(f) if a == "FILE" else a for a in argv)
    before = snapshot(hws)
    rc, out, err = cli("--home", hws.root, *argv)
    if case == "no-command":
        assert rc == 2 and "Traceback" not in err and "usage" in err
        return
    if case == "run-archived-build":  # selecting nothing is not an error; running is refused
        assert rc == 0 and "nothing to do" in out
        rc, out, err = cli("--home", hws.root, "run", "detector1", "--build", "11.0.1",
                           "--where", "true")
        words = ("archived",)
        if rc == 1:  # recorded as a failed stage per exposure (the runner's way)
            assert "archived" in out and "Traceback" not in err
            return
    one_error(rc, err, *words)
    assert_intact(hws, before, grown=("builds",))


@pytest.mark.parametrize("case", ["missing", "a-file", "empty-dir", "bad-toml", "bad-options"])
def test_broken_workspaces(tmp_path, case):
    home = tmp_path / "home"
    if case == "a-file":
        home.write_text("x")
    elif case == "empty-dir":
        home.mkdir()
    elif case == "bad-toml":
        home.mkdir()
        (home / "calops.toml").write_text("[store\nurl=")
    elif case == "bad-options":
        home.mkdir()
        (home / "calops.toml").write_text('[store]\nurl = "store"\noptions = "fast"\n')
    for argv in (("verify",), ("sql", "SELECT 1"), ("build", "list")):
        rc, out, err = cli("--home", home, *argv)
        one_error(rc, err)


SQL = {
    "insert": "INSERT INTO products VALUES ('x')",
    "delete": "DELETE FROM products",
    "update": "UPDATE products SET kind = 'x'",
    "drop": "DROP VIEW products",
    "create": "CREATE TABLE t AS SELECT 1",
    "create-macro": "CREATE MACRO m(a) AS a",
    "copy-out": "COPY (SELECT * FROM products) TO '/tmp/calops-stolen.csv'",
    "copy-in": "COPY products FROM '/etc/passwd'",
    "attach": "ATTACH '/tmp/calops-x.db'",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "set": "SET enable_external_access = true",
    "reset": "RESET allowed_directories",
    "pragma-write": "PRAGMA memory_limit='1GB'",
    "export-database": "EXPORT DATABASE '/tmp/calops-export'",
    "two-statements": "SELECT 1; SELECT 2",
    "hidden-second": "SELECT 1; DROP VIEW products",
    "empty": "   ",
    "comment-only": "-- nothing",
    "syntax": "SELEC * FROM products",
    "unterminated": "SELECT 'abc",
    "unknown-table": "SELECT * FROM no_such_table",
    "unknown-column": "SELECT no_such_column FROM products",
    "read-csv-outside": "SELECT * FROM read_csv('/etc/passwd')",
    "read-text-outside": "SELECT * FROM read_text('/etc/passwd')",
    "read-parquet-outside": "SELECT * FROM read_parquet('/tmp/*.parquet')",
    "glob-outside": "SELECT * FROM glob('/etc/*')",
    "call": "CALL pragma_version()",
    "runtime-cast": "SELECT CAST('abc' AS INTEGER)",
    "runtime-divide": "SELECT 1 // 0 AS x, CAST(1/0 AS INTEGER)",
    "out-of-range": "SELECT CAST(1e300 AS INTEGER)",
    "recursion-huge": "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) "
                      "SELECT count(*) FROM r WHERE n > 'x'",
    "getenv": "SELECT getenv('HOME')",
    "big-string": "SELECT '" + "x" * 100_000 + "' = 1",
    "missing-parameter": "SELECT * FROM products WHERE product_id = $1",
    "checkpoint": "CHECKPOINT",
    "vacuum": "VACUUM",
    "begin": "BEGIN TRANSACTION",
}


@pytest.mark.parametrize("case", sorted(SQL))
def test_bad_sql(hws, case):
    before = snapshot(hws)
    rc, out, err = cli("--home", hws.root, "sql", SQL[case])
    one_error(rc, err)
    assert not Path("/tmp/calops-stolen.csv").exists() and not Path("/tmp/calops-x.db").exists()
    assert_intact(hws, before)


def test_sql_from_stdin_that_writes(hws, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("DELETE FROM products"))
    rc, out, err = cli("--home", hws.root, "sql", "-")
    one_error(rc, err, "read-only")


def test_an_unexpected_error_is_one_line_and_logged(hws, monkeypatch):
    """A bug (an exception calops does not know) is one line naming the log file, whose
    content is the traceback."""
    from flows.commands import store_cmds

    def boom(args):
        raise KeyError("a bug")

    monkeypatch.setattr(store_cmds, "cmd_verify", boom)
    rc, out, err = cli("--home", hws.root, "verify")
    line = one_error(rc, err, "unexpected KeyError", "details in", code=70)
    log = Path(line.rsplit("details in ", 1)[1].rstrip(")"))
    assert log == hws.root / "logs" / "errors.log"
    assert "Traceback" in log.read_text() and "a bug" in log.read_text()


def test_an_unexpected_error_without_a_workspace_logs_to_tmp(tmp_path, monkeypatch):
    from flows.commands import store_cmds

    monkeypatch.setattr(store_cmds, "cmd_init", lambda args: 1 / 0)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    rc, out, err = cli("init", tmp_path / "ws")
    line = one_error(rc, err, "ZeroDivisionError", code=70)
    assert str(tmp_path) in line and list(tmp_path.glob("calops-errors-*.log"))


@pytest.mark.parametrize("exc,words,code", [
    (OSError(28, "No space left on device", "/x/y"), ("/x/y", "No space left", "free"), 2),
    (PermissionError(13, "Permission denied", "/root/z"), ("/root/z", "permission"), 2),
    (MemoryError(), ("out of memory",), 3),
])
def test_known_system_errors_are_one_line(hws, monkeypatch, exc, words, code):
    from flows.commands import store_cmds

    def fail(args):
        raise exc

    monkeypatch.setattr(store_cmds, "cmd_verify", fail)
    rc, out, err = cli("--home", hws.root, "verify")
    one_error(rc, err, *words, code=code)


def test_a_failing_background_thread_is_one_warning(hws, monkeypatch):
    import threading

    from flows.commands import store_cmds

    def spawn(args):
        t = threading.Thread(target=lambda: 1 / 0)
        t.start()
        t.join()
        return 0

    monkeypatch.setattr(store_cmds, "cmd_verify", spawn)
    rc, out, err = cli("--home", hws.root, "verify")
    assert rc == 0 and "Traceback" not in err and "calops: warning: a background thread" in err


@pytest.mark.parametrize("argv", [("verify", "--frob"), ("sql", "DROP VIEW products"),
                                  ("build", "show", "nope"), ("lineage", "sha256:00")])
def test_the_real_entry_point_prints_no_traceback(hws, argv):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, "-m", "flows.cli", "--home", str(hws.root), *argv],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    one_error(res.returncode, res.stderr)


def test_a_broken_pipe_is_quiet(hws):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run(f"{sys.executable} -m flows.cli --home {hws.root} sql "
                         "'SELECT * FROM range(100000)' | head -1", shell=True, cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in res.stderr and "Error" not in res.stderr, res.stderr
