"""The run commands as a user types them: init --crds, ingest, build, run, reprocess."""

from __future__ import annotations

import re

from flows.cli import main


def calops(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_init_ingest_run_reprocess(tmp_path, sim_dir, capsys):
    home = str(tmp_path / "home")
    code, out, _ = calops(capsys, "--home", home, "init", "--crds", str(sim_dir / "crds"))
    assert code == 0 and str(sim_dir / "crds") in out
    files = sorted(str(p) for p in (sim_dir / "uncal").glob("*.fits"))
    code, out, _ = calops(capsys, "--home", home, "ingest", *files)
    assert code == 0 and f"ingested {len(files)} file(s): {len(files)} new" in out
    code, out, _ = calops(capsys, "--home", home, "ingest", *files)
    assert code == 0 and f"{len(files)} unchanged" in out

    code, out, _ = calops(capsys, "--home", home, "build", "list")
    assert code == 0 and re.search(r"11\.1\.1\s+operations", out)

    code, out, err = calops(capsys, "--home", home, "run", "detector1")
    assert code == 0, err
    assert f"exposures {len(files)}" in out and f"misses {len(files)}" in out
    assert "build 11.1.1" in out  # the operations build by default
    code, out, err = calops(capsys, "--home", home, "reprocess", "--build", "11.1.1")
    assert code == 0, err
    assert f"hits {len(files)}" in out  # stage 1 reused, stages 2 and 3 computed
    assert re.search(r"x miss: no realisation of this recipe", out)


def test_run_errors_are_one_line(tmp_path, sim_dir, capsys):
    home = str(tmp_path / "home")
    assert calops(capsys, "--home", home, "init", "--crds", str(sim_dir / "crds"))[0] == 0
    code, _, err = calops(capsys, "--home", home, "run", "detector1", "--build", "10.0")
    assert code == 2 and err.count("\n") == 1 and "unknown build '10.0'" in err
    code, _, err = calops(capsys, "--home", home, "ingest", str(tmp_path / "nope.fits"))
    assert code == 2 and "no file matches" in err
    bad = tmp_path / "bad_uncal.fits"
    bad.write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    code, _, err = calops(capsys, "--home", home, "ingest", str(bad))
    assert code == 2 and err.startswith("calops: error:") and "bad_uncal.fits" in err


def test_runs_compact_tables_that_grew_many_files(sim_ws, monkeypatch):
    from catalogs.schema import TABLES
    from flows.commands import run_cmds

    counts = {t: sim_ws.catalog.count(t) for t in TABLES}
    assert len(sim_ws.catalog.files("products")) > 1
    monkeypatch.setattr(run_cmds, "COMPACT_ABOVE", 1)
    run_cmds._compact_if_many(sim_ws)
    assert all(len(sim_ws.catalog.files(t)) <= 1 for t in TABLES)
    assert {t: sim_ws.catalog.count(t) for t in TABLES} == counts
