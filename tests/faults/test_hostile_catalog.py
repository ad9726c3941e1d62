"""Hostile damage to the catalog and the store: garbled, truncated, emptied and deleted catalog
files and objects. Every damaged file is named (by `verify` and by the command that trips over
it, in one line), `calops repair` sets it aside and rebuilds what the store holds, and
afterwards everything verifies and every row is back."""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import pytest

from tests.faults.conftest import BUILD, assert_intact, cli, one_error, snapshot


def _garble(p: Path) -> None:
    data = bytearray(p.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 16] = bytes(b ^ 0x5A for b in data[mid:mid + 16])
    os.chmod(p, 0o644)
    p.write_bytes(bytes(data))


def _truncate(p: Path) -> None:
    data = p.read_bytes()
    os.chmod(p, 0o644)
    p.write_bytes(data[: len(data) // 2])


def _empty(p: Path) -> None:
    os.chmod(p, 0o644)
    p.write_bytes(b"")


def _text(p: Path) -> None:
    os.chmod(p, 0o644)
    p.write_text("this is not parquet\n")


DAMAGE = {"garbled": _garble, "truncated": _truncate, "emptied": _empty, "replaced": _text,
          "deleted": Path.unlink}


def _catalog_file(ws, table: str) -> Path:
    files = sorted(glob.glob(f"{ws.catalog_url}/{table}/*.parquet"))
    assert files, table
    return Path(files[-1])


TABLES = ("products", "realisations", "recipes", "recipe_inputs", "recipe_refs", "run_steps",
          "exposures", "builds")


# every kind of damage on the two tables lineage and runs lean on most; the two worst kinds
# (silent garbling, deletion) on every other table
CASES = sorted({(t, d) for t in ("products", "run_steps") for d in DAMAGE} |
               {(t, d) for t in TABLES for d in ("garbled", "deleted")})


@pytest.mark.parametrize("table,damage", CASES)
def test_a_damaged_catalog_file_is_named_and_rebuilt(hws, table, damage):
    ws = hws
    before = snapshot(ws)
    f = _catalog_file(ws, table)
    DAMAGE[damage](f)
    rc, out, err = cli("--home", ws.root, "verify")
    one_error(rc, err, code=1)
    assert f"BAD catalog file {table}/{f.name}" in out
    if damage != "deleted":  # a read that needs the file names it
        rc, out, err = cli("--home", ws.root, "sql", f"SELECT count(*) FROM {table}")
        one_error(rc, err, f"{table}/{f.name}", "calops repair")
    rc, out, err = cli("--home", ws.root, "repair")
    assert rc == 0 and "nothing was lost" in out, out + err
    assert (f"quarantined catalog file {table}/{f.name}" in out) != (damage == "deleted")
    if damage != "deleted":
        assert (Path(ws.catalog_url) / "_quarantine" / table / f.name).exists()  # kept aside
    assert_intact(ws, before)  # every row is back, every file verifies


def _product(ws, kind: str) -> str:
    return ws.catalog.sql("SELECT product_id FROM products WHERE kind = ? ORDER BY subject "
                          "LIMIT 1", [kind]).column(0)[0].as_py()


def test_repair_twice_and_verify_after_it(hws):
    ws = hws
    _garble(_catalog_file(ws, "recipe_inputs"))
    assert cli("--home", ws.root, "repair")[0] == 0
    rc, out, err = cli("--home", ws.root, "verify")
    assert rc == 0 and "all intact" in out, out + err
    rc, out, err = cli("--home", ws.root, "repair")
    assert rc == 0 and "nothing to repair" in out  # idempotent


def test_the_issue_case_lineage_on_a_garbled_products_file(hws):
    """16 garbled bytes in a products file: lineage named no file, run and compact printed
    tracebacks."""
    ws = hws
    i2d = ws.catalog.sql("SELECT product_id FROM products WHERE kind = 'i2d' AND subject LIKE "
                         "'%-o%'").column(0)[0].as_py()
    f = _catalog_file(ws, "products")
    _garble(f)
    for argv in (("lineage", i2d), ("compact",), ("provenance", i2d), ("export", BUILD,
                                                                      ws.root / "out")):
        rc, out, err = cli("--home", ws.root, *argv)
        one_error(rc, err, f.name)
    assert len(list(Path(ws.catalog_url, "products").glob("*.parquet"))) > 1  # not compacted
    assert not (ws.root / "out").exists() or not any((ws.root / "out").iterdir())


def test_compaction_refuses_a_damaged_file_and_changes_nothing(hws):
    ws = hws
    f = _catalog_file(ws, "recipes")
    _garble(f)
    files = sorted(Path(ws.catalog_url, "recipes").glob("*.parquet"))
    rc, out, err = cli("--home", ws.root, "compact", "recipes")
    one_error(rc, err, "cannot compact recipes", f.name)
    assert sorted(Path(ws.catalog_url, "recipes").glob("*.parquet")) == files


def test_a_damaged_index_file(hws):
    ws = hws
    idx = sorted(Path(ws.catalog_url, "_files").glob("*.json"))[0]
    _garble(idx)
    rc, out, err = cli("--home", ws.root, "verify")
    one_error(rc, err, code=1)
    assert "index file is damaged" in out
    assert cli("--home", ws.root, "repair")[0] == 0
    assert cli("--home", ws.root, "verify")[0] == 0


def test_a_foreign_file_in_a_table(hws):
    ws = hws
    (Path(ws.catalog_url) / "products" / "evil.parquet").write_text("not parquet")
    rc, out, err = cli("--home", ws.root, "sql", "SELECT count(*) FROM products")
    one_error(rc, err, "evil.parquet")
    rc, out, err = cli("--home", ws.root, "verify")
    assert rc == 1 and "evil.parquet: is not a readable Parquet file" in out
    rc, out, err = cli("--home", ws.root, "repair")  # it was never indexed: its rows unknown
    assert rc == 1 and "quarantined catalog file products/evil.parquet" in out
    assert "LOST from products: an unknown number of rows" in out
    assert cli("--home", ws.root, "verify")[0] == 0


def test_a_stale_temporary_file_is_not_a_problem(hws):
    ws = hws
    (Path(ws.catalog_url) / "products" / ".deadbeef.parquet.tmp").write_bytes(b"half")
    rc, out, err = cli("--home", ws.root, "verify")
    assert rc == 0, out + err


def test_compaction_keeps_verify_clean_and_damage_after_it_is_rebuilt(hws):
    ws = hws
    before = snapshot(ws)
    assert cli("--home", ws.root, "compact")[0] == 0
    assert cli("--home", ws.root, "verify")[0] == 0
    assert len(list(Path(ws.catalog_url, "_files").glob("*.json"))) == 1  # the index too
    f = _catalog_file(ws, "realisations")
    f.unlink()  # the compacted file: every realisation at once
    rc, out, err = cli("--home", ws.root, "repair")
    assert rc == 0 and "rebuilt" in out and "realisations" in out, out + err
    assert_intact(ws, before)


def test_a_deleted_file_whose_records_are_gone_too_is_reported_lost(hws):
    """Lose the run_steps file and the store's record objects: repair says what it lost."""
    from catalogs.recovery import is_record

    ws = hws
    f = _catalog_file(ws, "run_steps")
    n = ws.catalog.count("run_steps")
    f.unlink()
    for ident in list(ws.store.ids()):
        if is_record(ws.store, ident):
            os.unlink(ws.store.path_of(ident))
    rc, out, err = cli("--home", ws.root, "repair")
    one_error(rc, err, "lost", code=1)
    assert "LOST from run_steps" in out and "not rebuilt" in out
    assert ws.catalog.count("run_steps") < n
    assert cli("--home", ws.root, "verify")[0] == 0  # what is left is consistent


def test_hits_and_failures_are_the_parts_the_store_does_not_keep(hws):
    """A cache-hit run's rows are not stored as records: losing them is reported as lost."""
    from flows import stages

    ws = hws
    eid = ws.catalog.current_exposure_ids()[0]
    assert stages.run(ws, BUILD, "detector1", eid, "hit-run").hit
    ws.catalog.close()
    f = _catalog_file(ws, "run_steps")
    assert "hit-run" in f.name
    f.unlink()
    rc, out, err = cli("--home", ws.root, "repair")
    assert rc == 1 and "LOST from run_steps" in out and "cache-hit" in out, out + err


# --- damaged objects ------------------------------------------------------------------------

def _damage_object(ws, pid: str, damage: str) -> None:
    p = Path(ws.store.path_of(pid))
    if damage == "deleted":
        p.unlink()
    else:
        DAMAGE[damage](p)


OBJ_DAMAGE = ("garbled", "truncated", "emptied", "deleted")


@pytest.mark.parametrize("kind,damage", sorted(
    {(k, d) for k in ("rate", "catalog") for d in OBJ_DAMAGE} |
    {(k, "garbled") for k in ("cal", "i2d")}))
def test_a_damaged_product_is_flagged_refused_and_recomputed(hws, tmp_path, kind, damage):
    from flows import stages

    ws = hws
    pid = _product(ws, kind)
    _damage_object(ws, pid, damage)
    rc, out, err = cli("--home", ws.root, "verify")
    one_error(rc, err, code=1)
    assert f"BAD {pid}" in out
    # lineage and provenance flag it
    rc, out, err = cli("--home", ws.root, "lineage", pid)
    one_error(rc, err, "fail verification", code=1)
    assert "!! " in out
    rc, out, err = cli("--home", ws.root, "provenance", pid, "-f", "json")
    one_error(rc, err, "fail verification", code=1)
    assert json.loads(out)[0]["section"] == "integrity"
    # export writes nothing
    rc, out, err = cli("--home", ws.root, "export", BUILD, tmp_path / "out")
    one_error(rc, err, "nothing was written")
    assert not any((tmp_path / "out").iterdir())
    # repair sets it aside; the next run recomputes the very same product
    rc, out, err = cli("--home", ws.root, "repair")
    assert rc == 1 and (f"quarantined object {pid}" in out or f"missing object {pid}" in out)
    eids = ws.catalog.current_exposure_ids()
    subjects = stages.subjects(ws, "image3", eids) if kind in ("i2d", "catalog") and \
        len(eids) > 1 else eids
    redo = {"rate": "detector1", "cal": "image2", "i2d": "image2", "catalog": "image3"}[kind]
    if kind == "i2d" and ws.catalog.sql("SELECT subject FROM products WHERE product_id = ?",
                                         [pid]).column(0)[0].as_py() not in eids:
        redo, subjects = "image3", stages.subjects(ws, "image3", eids)
    for s in subjects:
        assert stages.run(ws, BUILD, redo, s, "again").status == "ok"
    assert ws.store.check(pid) is None
    assert_intact(ws)
    rc, out, err = cli("--home", ws.root, "lineage", pid)
    assert rc == 0 and "!!" not in out


@pytest.mark.parametrize("damage", OBJ_DAMAGE)
@pytest.mark.parametrize("what", ["pixels", "pointing"])
def test_reingesting_the_original_file_repairs_a_damaged_input(hws, fault_sim_dir, what, damage):
    ws = hws
    src = sorted((fault_sim_dir / "uncal").glob("*.fits"))[0]
    eid = src.name[: -len("_uncal.fits")]
    pid = ws.catalog.current_exposure(eid)[f"{what}_id"]
    _damage_object(ws, pid, damage)
    assert cli("--home", ws.root, "verify")[0] == 1
    rc, out, err = cli("--home", ws.root, "ingest", src)
    assert rc == 0, err
    assert ("repaired" in err + out) == (damage != "deleted") or damage == "deleted"
    assert ws.store.check(pid) is None
    assert ws.catalog.current_exposure(eid)["version"] == 1  # no new version: same content
    rc, out, err = cli("--home", ws.root, "verify")
    assert rc == 0, out
    if damage != "deleted":
        assert list(Path(ws.store_url, "quarantine").rglob("*"))  # the bad copy is kept


@pytest.mark.parametrize("damage", ["garbled", "truncated", "deleted"])
def test_a_damaged_record_object(hws, damage):
    from catalogs.recovery import is_record

    ws = hws
    rec = next(i for i in sorted(ws.store.ids()) if is_record(ws.store, i))
    _damage_object(ws, rec, damage)
    rc, out, err = cli("--home", ws.root, "verify")
    assert rc == (0 if damage == "deleted" else 1), out  # nothing names a record object
    assert cli("--home", ws.root, "repair")[0] == 0
    assert cli("--home", ws.root, "verify")[0] == 0
