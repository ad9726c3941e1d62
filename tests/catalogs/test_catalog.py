"""The catalog: typed batches, atomic append-only files, views, nondeterminism, read-only SQL."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from catalogs.catalog import Catalog, check_read_only
from catalogs.schema import TABLES, WRITE_ORDER
from store.errors import CatalogError, QueryError

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


def pid(n: int) -> str:
    return f"sha256:{n:064x}"


@pytest.fixture(params=["local", "memory"])
def cat(request, tmp_path):
    if request.param == "local":
        return Catalog(tmp_path / "catalog")
    return Catalog(f"memory://cat-{uuid.uuid4().hex}")


def test_every_table_has_a_typed_view_even_when_empty(cat):
    for table, schema in TABLES.items():
        t = cat.sql(f"SELECT * FROM {table}")
        assert t.num_rows == 0
        assert t.schema.names == schema.names
        assert [f.type for f in t.schema] == [f.type for f in schema] or table  # names at least
    assert set(WRITE_ORDER) == set(TABLES)


def test_batch_writes_one_file_per_table_and_reads_back(cat):
    with cat.batch("run-1") as b:
        b.add("products", {"product_id": pid(1), "kind": "rate", "size_bytes": 10, "created_at": NOW})
        b.add("products", {"product_id": pid(2), "kind": "cal"})
        b.add("realisations", {"recipe_key": pid(9), "product_id": pid(1), "run_id": "run-1"})
    assert len(cat.files("products")) == 1 and len(cat.files("realisations")) == 1
    assert cat.files("recipes") == []
    rows = cat.sql("SELECT product_id, kind, size_bytes, created_at FROM products "
                   "ORDER BY product_id").to_pylist()
    assert rows == [{"product_id": pid(1), "kind": "rate", "size_bytes": 10, "created_at": NOW},
                    {"product_id": pid(2), "kind": "cal", "size_bytes": None, "created_at": None}]
    assert cat.realisations(pid(9)) == [pid(1)]
    name = cat.files("products")[0].rsplit("/", 1)[-1]
    assert "-run-1-" in name and name.endswith(".parquet")


def test_exception_discards_the_batch(cat):
    with pytest.raises(RuntimeError):
        with cat.batch("w") as b:
            b.add("products", {"product_id": pid(1)})
            raise RuntimeError("boom")
    assert cat.count("products") == 0 and cat.files("products") == []


def test_bad_rows_are_refused_with_clear_errors(cat):
    with pytest.raises(CatalogError, match="no column colour"):
        with cat.batch("w") as b:
            b.add("products", {"product_id": pid(1), "colour": "red"})
    with pytest.raises(CatalogError, match="no catalog table 'prods'"):
        with cat.batch("w") as b:
            b.add("prods", {"product_id": pid(1)})
    with pytest.raises(CatalogError, match="missing required product_id"):
        with cat.batch("w") as b:
            b.add("realisations", {"recipe_key": pid(1)})
    with pytest.raises(CatalogError, match="does not fit the schema"):
        with cat.batch("w") as b:
            b.add("products", {"product_id": pid(1)})
            b.add("run_steps", {"run_id": "r", "wall_s": "fast"})
    assert cat.count("products") == 0  # a bad row writes nothing of its batch


def test_nondeterminism_is_flagged_not_overwritten(cat):
    for run, product in (("r1", pid(1)), ("r2", pid(1)), ("r3", pid(2))):
        cat.write("realisations", [{"recipe_key": pid(7), "product_id": product, "run_id": run,
                                    "created_at": NOW}], run)
    cat.write("realisations", [{"recipe_key": pid(8), "product_id": pid(3)}], "r4")
    flagged = cat.sql("SELECT * FROM nondeterministic_recipes").to_pylist()
    assert flagged == [{"recipe_key": pid(7), "n_products": 2, "product_ids": [pid(1), pid(2)]}]
    assert cat.realisations(pid(7)) == [pid(1), pid(2)]
    assert cat.count("realisations") == 4


def test_current_exposure(cat):
    assert cat.current_exposure("jw1") is None
    for v in (1, 2):
        cat.write("exposures", [{"exposure_id": "jw1", "version": v, "pixels_id": pid(v),
                                 "ingested_at": NOW}], "ingest")
    assert cat.current_exposure("jw1")["pixels_id"] == pid(2)


@pytest.mark.parametrize("query", [
    "INSERT INTO products VALUES ('x')", "CREATE TABLE t (a INT)", "DROP VIEW products",
    "COPY products TO 'out.csv'", "ATTACH 'x.db'", "INSTALL httpfs", "LOAD httpfs",
    "SET threads=1", "PRAGMA enable_profiling", "EXPORT DATABASE 'x'", "DELETE FROM products",
    "UPDATE products SET kind='x'", "SELECT 1; DROP VIEW products", "CALL pragma_version()",
])
def test_writes_are_refused(cat, query, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(QueryError, match="refused|one statement"):
        cat.sql(query)
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("query", ["SELECT 1", "WITH a AS (SELECT 1) SELECT * FROM a",
                                   "SHOW TABLES", "DESCRIBE products", "EXPLAIN SELECT 1",
                                   "FROM products", "PRAGMA show_tables", "SUMMARIZE products"])
def test_reads_are_allowed(query):
    check_read_only(query)


def test_the_connection_cannot_reach_other_files(tmp_path):
    cat = Catalog(tmp_path / "catalog")
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    with pytest.raises(QueryError, match="[Pp]ermission"):
        cat.sql(f"SELECT * FROM read_csv('{secret}')")


def test_bad_sql_is_one_line(cat):
    with pytest.raises(QueryError) as exc:
        cat.sql("SELEC * FROM products")
    assert "\n" not in str(exc.value) and "syntax error" in str(exc.value)
    with pytest.raises(QueryError, match="nope"):
        cat.sql("SELECT * FROM nope")


def test_old_files_without_a_new_column_read_as_null(tmp_path):
    """Files written under an older schema (fewer columns) still read, the column NULL."""
    import pyarrow.parquet as pq

    cat = Catalog(tmp_path)
    os.makedirs(tmp_path / "products")
    pq.write_table(pa.table({"product_id": [pid(1)], "kind": ["rate"]}),
                   tmp_path / "products" / "20250101T000000000000Z-old-abc.parquet")
    cat.write("products", [{"product_id": pid(2), "kind": "cal", "subject": "jw1"}], "new")
    rows = cat.sql("SELECT product_id, subject FROM products ORDER BY 1").to_pylist()
    assert rows == [{"product_id": pid(1), "subject": None}, {"product_id": pid(2), "subject": "jw1"}]


@settings(max_examples=10)
@given(st.lists(st.lists(st.integers(0, 50), max_size=6), min_size=1, max_size=5))
def test_compaction_keeps_every_row(tmp_path_factory, batches):
    cat = Catalog(tmp_path_factory.mktemp("cat"))
    for i, ns in enumerate(batches):
        if ns:
            cat.write("realisations", [{"recipe_key": pid(n), "product_id": pid(n + 1),
                                        "run_id": f"r{i}"} for n in ns], f"w{i}")
    q = "SELECT recipe_key, product_id, run_id, count(*) AS n FROM realisations GROUP BY ALL ORDER BY ALL"
    before = cat.sql(q).to_pylist()
    (res,) = cat.compact("realisations")
    assert cat.sql(q).to_pylist() == before
    assert res.rows_before == res.rows_after == sum(len(b) for b in batches)
    assert len(cat.files("realisations")) == min(1, res.rows_before)


def test_interrupted_compaction_never_double_counts(tmp_path):
    cat = Catalog(tmp_path)
    for i in range(3):
        cat.write("products", [{"product_id": pid(i)}], f"w{i}")
    saved = {p: open(p, "rb").read() for p in cat.files("products")}
    cat.compact("products")
    for p, data in saved.items():  # as if the process died before removing the originals
        with open(p, "wb") as f:
            f.write(data)
    assert cat.count("products") == 3
    (res,) = cat.compact("products")
    assert res.removed_leftovers == 3 and cat.count("products") == 3
    assert len(os.listdir(tmp_path / "products")) == 2  # the merged file and the lock file


def test_failed_compaction_proof_removes_nothing(tmp_path, monkeypatch):
    cat = Catalog(tmp_path)
    for i in range(3):
        cat.write("products", [{"product_id": pid(i)}], f"w{i}")
    files = cat.files("products")
    real = Catalog._write_file

    def lossy(self, table, name, data, meta):
        return real(self, table, name, data.slice(1), meta)

    monkeypatch.setattr(Catalog, "_write_file", lossy)
    with pytest.raises(CatalogError, match="did not reproduce its rows"):
        cat.compact("products")
    monkeypatch.undo()
    assert cat.files("products") == files and cat.count("products") == 3


def test_docs_describe_every_table_and_column(repo_root):
    text = (repo_root / "docs" / "catalog.md").read_text()
    for table, schema in TABLES.items():
        section = text.split(f"### {table}\n", 1)
        assert len(section) == 2, f"docs/catalog.md has no section for {table}"
        body = section[1].split("\n### ", 1)[0]
        for name in schema.names:
            assert f"| `{name}` |" in body, f"docs/catalog.md: {table}.{name} is not documented"


def test_product_meta_and_exposure_selection(cat):
    with pytest.raises(CatalogError, match="not in the catalog"):
        cat.product_meta(pid(1))
    cat.write("products", [{"product_id": pid(1), "meta_json": '{"instrument.name": "NIRCAM"}',
                            "created_at": NOW}], "w")
    assert cat.product_meta(pid(1)) == {"instrument.name": "NIRCAM"}
    later = NOW + dt.timedelta(hours=1)
    cat.write("exposures", [
        {"exposure_id": "jw_a", "version": 1, "detector": "NRCA1", "ingested_at": NOW},
        {"exposure_id": "jw_b", "version": 1, "detector": "NRCB1", "ingested_at": NOW}], "ingest")
    assert cat.current_exposure_ids() == ["jw_a", "jw_b"]
    assert cat.current_exposure_ids("detector = 'NRCB1'") == ["jw_b"]
    with pytest.raises(QueryError):
        cat.current_exposure_ids("1=1; DROP VIEW exposures")
    assert cat.stale_exposure_ids("11.2") == ["jw_a", "jw_b"]
    cat.write("run_steps", [{"run_id": "r", "build": "11.2", "subject": s, "status": "ok",
                             "at": NOW + dt.timedelta(minutes=5)} for s in ("jw_a", "jw_b")], "r")
    cat.record_failure("r2", "11.3", "detector1", "jw_a", "boom")
    assert cat.stale_exposure_ids("11.2") == []
    assert cat.stale_exposure_ids("11.3") == ["jw_a", "jw_b"]  # a failure is not processing
    cat.write("exposures", [{"exposure_id": "jw_a", "version": 2, "ingested_at": later}], "ingest")
    assert cat.stale_exposure_ids("11.2") == ["jw_a"]  # reissued since


def test_associations(cat):
    asn = {"asn_type": "image3", "products": [{"name": "jw01234-o001_t001_nircam_clear-f200w",
           "members": [{"expname": "jw01234001001_01101_00001_nrca1_cal.fits", "exptype": "science"},
                       {"expname": "jw01234001001_01101_00002_nrca1_cal.fits", "exptype": "science"}]}]}
    assert cat.record_associations([asn]) == 2
    assert cat.association_members("jw01234-o001_t001_nircam_clear-f200w") == [
        "jw01234001001_01101_00001_nrca1", "jw01234001001_01101_00002_nrca1"]
    cat.record_associations([{"name": "jw01234-o001_t001_nircam_clear-f200w", "members": ["x"]}])
    assert cat.association_members("jw01234-o001_t001_nircam_clear-f200w") == ["x"]
    with pytest.raises(CatalogError, match="no association"):
        cat.association_members("nope")


def test_cached_views_follow_writes_and_other_processes_compaction(tmp_path):
    cat, other = Catalog(tmp_path), Catalog(tmp_path)  # two handles, as two processes would be
    for i in range(3):
        cat.write("products", [{"product_id": pid(i)}], "w")
        assert cat.count("products") == i + 1
    other.compact("products")  # removes the files cat's views were built on
    assert cat.count("products") == 3
    other.write("products", [{"product_id": pid(9)}], "w2")
    assert cat.count("products") == 4
    assert sorted(cat.sql("SELECT product_id FROM products").column(0).to_pylist()) == \
        [pid(0), pid(1), pid(2), pid(9)]
