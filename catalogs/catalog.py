"""The catalog: append-only Parquet files per table, read through DuckDB views.

Every batch writes one new file per touched table, named
``<table>/<UTC time>-<writer>-<uuid>-<sha256>.parquet``, through a temporary name and an atomic
rename, so concurrent writer processes never collide and a crash leaves no visible partial file.
No file is ever modified. ``compact`` merges a table's files into one and removes the originals
only after proving that the merged file holds exactly the same multiset of rows (see
docs/catalog.md).

Integrity (docs/integrity.md): a file's name ends with the sha256 of its bytes, so any reader
can check it without a lookup (a local catalog checks every file the first time a process reads
it, and refuses a changed one by name). Each batch also appends a small index file under
``_files/`` listing the files it wrote (table, name, checksum, rows); compaction and repair
append the files they removed and why. ``check_files`` compares the two: a changed file, an
unreadable one, and a file the index lists that is gone are each named. Files written before
checksums (no hash in the name) are checked by reading them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import os
import re
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from catalogs.schema import SCHEMA_VERSION, TABLES, WRITE_ORDER, schema
from store.errors import CatalogError, QueryError

TMP_SUFFIX = ".parquet.tmp"
# Compaction sorts a table by the key its point lookups use (lineage walks up by product id
# and recipe key; products and recipes are looked up by id), so that Parquet's row-group
# statistics let a lookup skip all but one group of a large file.
SORT_KEYS = {"products": "product_id", "realisations": "product_id", "recipes": "recipe_key",
             "recipe_inputs": "recipe_key", "recipe_refs": "recipe_key",
             "exposures": "exposure_id", "run_steps": "subject"}
ROW_GROUP_ROWS = 16384
COMPACT_TAG = "-compact-"
META_VERSION = b"calops.schema_version"
META_TABLE = b"calops.table"
META_REPLACES = b"calops.replaces"
INDEX_DIR = "_files"  # the append-only index of written and removed files
QUARANTINE_DIR = "_quarantine"  # bad files moved aside by `calops repair` (kept, never deleted)
INDEX_VERSION = 1
# A batch touching any of these is also stored as a record object (see Catalog.record_store):
# everything lineage needs. Batches of run_steps alone (cache hits, failures) are not.
RECORD_TRIGGERS = {"products", "recipes", "recipe_inputs", "recipe_refs", "realisations",
                   "exposures", "associations", "builds", "build_events", "runs"}
_HASHED = re.compile(r"-([0-9a-f]{64})\.(parquet|json)$")
# path -> (size, mtime_ns) of local files whose bytes were checked against their name
_VETTED: dict[str, tuple[int, int]] = {}
_VET_LOCK = threading.Lock()


def name_checksum(path: str) -> str | None:
    """The sha256 hex a catalog file's name carries (None for a file written before checksums)."""
    m = _HASHED.search(path.rsplit("/", 1)[-1])
    return m.group(1) if m else None

# Statements ``sql`` accepts: reads only. PRAGMA is allowed only for these read-only ones.
_READ_TYPES = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN,
               duckdb.StatementType.PRAGMA}
_READ_PRAGMAS = re.compile(
    r"^\s*pragma\s+(show_tables|show_tables_expanded|table_info|show|version|platform|"
    r"database_list|database_size|collations|functions|user_agent|metadata_info|"
    r"storage_info)\b", re.IGNORECASE)

VIEWS = {
    "nondeterministic_recipes": """
        SELECT recipe_key, count(DISTINCT product_id) AS n_products,
               list(DISTINCT product_id ORDER BY product_id) AS product_ids
        FROM realisations GROUP BY recipe_key HAVING count(DISTINCT product_id) > 1""",
    "current_exposures": """
        SELECT * FROM exposures QUALIFY row_number() OVER
            (PARTITION BY exposure_id ORDER BY version DESC, ingested_at DESC) = 1""",
    "current_associations": """
        SELECT * FROM associations QUALIFY recorded_at IS NOT DISTINCT FROM
            max(recorded_at) OVER (PARTITION BY asn_name)""",
    "current_builds": """
        SELECT * FROM builds QUALIFY row_number() OVER
            (PARTITION BY name ORDER BY recorded_at DESC NULLS LAST) = 1""",
    "latest_runs": """
        SELECT * FROM runs QUALIFY row_number() OVER (PARTITION BY run_id
            ORDER BY finished_at DESC NULLS LAST, started_at DESC NULLS LAST) = 1""",
    # The provenance graph, child -> parent: a product is made by a recipe (role 'made_by');
    # a recipe reads its inputs by role. lineage.py walks it recursively.
    "lineage_edges": """
        SELECT DISTINCT product_id AS child, recipe_key AS parent, 'made_by' AS role
            FROM realisations
        UNION
        SELECT DISTINCT recipe_key AS child, input_id AS parent, role FROM recipe_inputs""",
}


VIEW_DEPS = {"nondeterministic_recipes": {"realisations"}, "current_exposures": {"exposures"},
             "current_associations": {"associations"},
             "current_builds": {"builds"}, "latest_runs": {"runs"},
             "lineage_edges": {"realisations", "recipe_inputs"}}
# Queries mentioning any of these words see every view (they list or describe the catalog).
_ALL_VIEWS_WORDS = {"show", "pragma", "information_schema", "duckdb_tables", "duckdb_views",
                    "duckdb_columns", "summarize", "describe"}


def tables_for(query: str) -> set[str] | None:
    """The tables a query can touch (by the words in it), or None for all of them. Building
    only the views a query needs keeps point lookups fast when a table has many files."""
    words = set(re.findall(r"[a-z_][a-z0-9_]*", query.lower()))
    if words & _ALL_VIEWS_WORDS:
        return None
    needed = words & set(TABLES)
    for view in words & set(VIEW_DEPS):
        needed |= VIEW_DEPS[view]
    return needed


_SUFFIXES = ("_uncal", "_rate", "_rateints", "_cal", "_crf", "_i2d")


def exposure_of(expname: str) -> str:
    """The exposure id in a member file name (``jw..._nrca1_cal.fits`` -> ``jw..._nrca1``)."""
    name = expname.rsplit("/", 1)[-1]
    for ext in (".fits", ".fits.gz"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def check_read_only(query: str) -> None:
    """Refuse anything but one read statement (SELECT/WITH/FROM/SHOW/DESCRIBE/SUMMARIZE,
    EXPLAIN, read-only PRAGMA), with a message saying why."""
    try:
        stmts = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise QueryError(_one_line(exc)) from None
    if not stmts:
        raise QueryError("empty SQL statement")
    if len(stmts) > 1:
        raise QueryError(f"one statement at a time please ({len(stmts)} given)")
    st = stmts[0]
    if st.type not in _READ_TYPES or (st.type == duckdb.StatementType.PRAGMA
                                      and not _READ_PRAGMAS.match(st.query)):
        kind = st.type.name.replace("_", " ")
        raise QueryError(f"refused: the catalog is read-only through SQL and this is a "
                         f"statement of type {kind}; only SELECT/WITH/SHOW/DESCRIBE/EXPLAIN and read-only PRAGMA "
                         "are allowed (catalog rows are written by calops itself)")


# Errors in the statement itself (not in reading a file).
_QUERY_ERRORS = tuple(getattr(duckdb, n) for n in (
    "ParserException", "BinderException", "CatalogException", "ConversionException",
    "OutOfRangeException", "InvalidTypeException", "NotImplementedException",
    "PermissionException", "ConstraintException", "DivideByZeroException", "TypeMismatchException",
    "SyntaxException", "InterruptException") if hasattr(duckdb, n))

_DUCK_TYPES = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.float64(): "DOUBLE",
               pa.bool_(): "BOOLEAN"}


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    return _DUCK_TYPES[t]


def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return " ".join(lines[:2]) if lines else type(exc).__name__


def _os_reason(exc: OSError) -> str:
    """An OSError as a short reason: ``[Errno 28] No space left on device`` (no path)."""
    if exc.errno is not None and exc.strerror:
        return f"[Errno {exc.errno}] {exc.strerror}"
    return " ".join(str(exc).split()) or type(exc).__name__


class CatalogWriteError(CatalogError):
    """A catalog batch could not be written (full disk, no permission, unreachable bucket);
    none of its rows became visible. ``__cause__`` is the underlying OSError."""


class CatalogFileError(CatalogError):
    """A catalog file that is corrupt (its bytes no longer match its checksum), unreadable, or
    gone; the message names it and says to run `calops repair`."""

    def __init__(self, message: str, path: str = ""):
        super().__init__(message)
        self.path = path


@dataclass
class FileProblem:
    """One bad catalog file: ``kind`` is corrupt, unreadable, missing or index."""

    table: str
    path: str
    kind: str
    problem: str
    rows: int | None = None  # rows the index says it held, if known

    @property
    def name(self) -> str:
        return f"{self.table}/{self.path.rsplit('/', 1)[-1]}"


def _sanitize(writer: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(writer)).strip("._-")[:64]
    return s or "writer"


@dataclass
class CompactResult:
    table: str
    files_before: int
    files_after: int
    rows_before: int
    rows_after: int
    removed_leftovers: int = 0


@functools.lru_cache(maxsize=None)
def _columns(table: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """A table's column names and its required (non-nullable) ones."""
    sch = schema(table)
    return frozenset(sch.names), tuple(f.name for f in sch if not f.nullable)


class Batch:
    """Rows collected for one write; ``add`` checks table and column names at once."""

    def __init__(self, writer_id: str):
        self.writer_id = writer_id
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        # False: the writer stored its own record object (or the rows are rebuilt from records)
        self.record = True

    def add(self, table: str, row: Mapping[str, Any]) -> None:
        names, required = _columns(table)
        if not isinstance(row, Mapping):
            raise CatalogError(f"a {table} row must be a mapping, not {type(row).__name__}")
        if not names.issuperset(row):
            raise CatalogError(f"table {table} has no column {', '.join(sorted(set(row) - names))}"
                               f"; its columns: {', '.join(schema(table).names)}")
        missing = [n for n in required if row.get(n) is None]
        if missing:
            raise CatalogError(f"{table} row is missing required {', '.join(missing)}")
        self.rows[table].append(dict(row))

    def extend(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        for r in rows:
            self.add(table, r)

    def add_rows(self, rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        """Rows of several tables (what ``catalogs.recipes.*_rows`` build)."""
        for table, rs in rows.items():
            self.extend(table, rs)

    def tables(self) -> dict[str, pa.Table]:
        """The collected rows as typed Arrow tables (a clear error for a value of a wrong type)."""
        out = {}
        for table in WRITE_ORDER:
            rows = self.rows.get(table)
            if not rows:
                continue
            try:
                out[table] = pa.Table.from_pylist(rows, schema=schema(table))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
                raise CatalogError(f"a {table} row does not fit the schema: {_one_line(exc)}") from None
        return out


class Catalog:
    """Append-only Parquet tables under ``root_url`` (a path or any fsspec URL)."""

    def __init__(self, root_url: str | os.PathLike, fsync: bool = True, **storage_options: Any):
        self.url = os.fspath(root_url)
        try:
            self.fs, root = fsspec.core.url_to_fs(self.url, **storage_options)
        except (ValueError, ImportError) as exc:
            raise CatalogError(f"cannot open catalog {self.url!r}: {exc}") from None
        self.root = root.rstrip("/") or "/"
        self.local = isinstance(self.fs, LocalFileSystem)
        self.fsync = fsync
        self._lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._con_pid = 0
        self._con_files: dict[str, tuple[str, ...]] = {}
        self._excluded: set[str] = set()
        # An ObjectStore: every batch that records lineage is first stored there as a record
        # object (catalogs/recovery.py), so `calops repair` can rebuild it. Set by Workspace.
        self.record_store: Any = None

    def __repr__(self) -> str:
        return f"Catalog({self.url!r})"

    def close(self) -> None:
        """Close the cached query connection (it is reopened on the next query)."""
        with self._lock:
            if self._con is not None:
                self._con.close()
            self._con, self._con_files = None, {}

    def __getstate__(self) -> dict[str, Any]:  # picklable: the connection is not carried over
        state = dict(self.__dict__)
        state.update(_lock=None, _con=None, _con_files={})
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # --- writing --------------------------------------------------------------------------

    @contextlib.contextmanager
    def batch(self, writer_id: str) -> Iterator[Batch]:
        """Collect rows; on a clean exit write one file per touched table (an exception
        inside the block discards the batch)."""
        b = Batch(writer_id)
        yield b
        self.write_batch(b)

    def write(self, table: str, rows: Sequence[Mapping[str, Any]], writer_id: str) -> None:
        """Append ``rows`` to ``table`` as one file."""
        with self.batch(writer_id) as b:
            b.extend(table, rows)

    def write_batch(self, b: Batch) -> list[str]:
        """Write a batch's tables (in WRITE_ORDER); returns the new files' paths.

        Every table's file is first written (and fsynced) under a temporary name; only when
        all are written are they renamed into place, in WRITE_ORDER. So a full disk or an
        unwritable catalog makes none of the batch visible (``CatalogWriteError``), and a
        writer killed at any moment leaves at most a prefix of the batch in WRITE_ORDER
        (objects before rows, products before realisations, realisations before run steps)."""
        tables = b.tables()  # convert everything first: a bad row writes nothing
        if self.record_store is not None and b.record and set(tables) & RECORD_TRIGGERS:
            from catalogs.recovery import RECORDED, record_object

            self.record_store.put(record_object(  # the store copy first, as objects before rows
                {t: rows for t, rows in b.rows.items() if t in RECORDED and rows},
                what=b.writer_id))
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
        writer = _sanitize(b.writer_id)
        staged: list[tuple[str, str]] = []
        paths: list[str] = []
        try:
            for table, data in tables.items():
                name = f"{stamp}-{writer}-{uuid.uuid4().hex[:12]}"
                staged.append(self._stage_file(table, name, data, {}))
            for tmp, final in staged:
                paths.append(self._commit_file(tmp, final))
            self._index_quietly(added=[(t, p, d.num_rows) for (t, d), p in zip(tables.items(), paths)],
                                writer=writer)
            return paths
        except OSError as exc:
            raise CatalogWriteError(
                f"cannot write to the catalog {self.url}: {_os_reason(exc)}; this batch "
                f"({', '.join(tables)}) was not recorded and nothing already recorded was "
                "touched (free space or fix access to the catalog, then re-run)") from exc
        finally:
            for tmp, _ in staged[len(paths):]:
                self._discard(tmp)

    def _write_file(self, table: str, name: str, data: pa.Table,
                    extra_meta: Mapping[bytes, bytes]) -> str:
        tmp, final = self._stage_file(table, name, data, extra_meta)
        try:
            return self._commit_file(tmp, final)
        finally:
            self._discard(tmp)

    def _stage_file(self, table: str, name: str, data: pa.Table,
                    extra_meta: Mapping[bytes, bytes]) -> tuple[str, str]:
        """Write ``data`` under a temporary name next to its final one; (tmp, final). The final
        name is ``<name>-<sha256 of the bytes>.parquet``."""
        meta = dict(data.schema.metadata or {})
        meta.update({META_VERSION: str(SCHEMA_VERSION).encode(), META_TABLE: table.encode()})
        meta.update(extra_meta)
        data = data.replace_schema_metadata(meta)
        sink = pa.BufferOutputStream()
        # small row groups: a compacted file is sorted by its lookup key (SORT_KEYS), so a
        # point lookup reads one group of it (Parquet min/max statistics)
        pq.write_table(data, sink, compression="zstd", row_group_size=ROW_GROUP_ROWS)
        payload = sink.getvalue()
        digest = hashlib.sha256(memoryview(payload)).hexdigest()
        d = f"{self.root}/{table}"
        final, tmp = f"{d}/{name}-{digest}.parquet", f"{d}/.{uuid.uuid4().hex}{TMP_SUFFIX}"
        return self._stage_bytes(d, final, tmp, payload)

    def _stage_bytes(self, d: str, final: str, tmp: str, payload: Any) -> tuple[str, str]:
        if self.local:
            os.makedirs(d, exist_ok=True)
            try:
                with open(tmp, "xb") as f:
                    f.write(memoryview(payload))
                    if self.fsync:
                        f.flush()
                        os.fsync(f.fileno())
            except BaseException:
                self._discard(tmp)
                raise
        else:
            self.fs.makedirs(d, exist_ok=True)
            self.fs.pipe_file(tmp, payload if isinstance(payload, bytes) else payload.to_pybytes())
        return tmp, final

    def _commit_file(self, tmp: str, final: str) -> str:
        """Make a staged file visible (names are unique; a local rename is atomic)."""
        if self.local:
            os.replace(tmp, final)
            if self.fsync:
                with contextlib.suppress(OSError):
                    dfd = os.open(os.path.dirname(final), os.O_RDONLY)
                    try:
                        os.fsync(dfd)
                    finally:
                        os.close(dfd)
        else:
            self.fs.mv(tmp, final)
        return final

    def _discard(self, tmp: str) -> None:
        """Remove a temporary file if it is still there (best effort)."""
        with contextlib.suppress(OSError):
            if self.local:
                os.unlink(tmp)
            elif self.fs.exists(tmp):
                self.fs.rm(tmp)

    # --- the file index and checksums ------------------------------------------------------

    def _index_quietly(self, **kw: Any) -> None:
        """Append an index entry; a failure here (full disk) loses only the ability to notice
        that these files are deleted later, never the rows themselves (whose names still carry
        their checksums): so it is not an error of the batch."""
        with contextlib.suppress(OSError, CatalogError):
            self.append_index(**kw)

    def append_index(self, added: Sequence[tuple[str, str, int]] = (),
                     removed: Sequence[tuple[str, str, str]] = (), writer: str = "calops") -> str | None:
        """Append one index file: ``added`` (table, path, rows) files written, ``removed``
        (table, name, why) files taken away on purpose (compacted, quarantined, written off)."""
        if not added and not removed:
            return None
        entry = {"v": INDEX_VERSION, "at": utcnow().isoformat(), "writer": writer,
                 "added": [{"table": t, "name": p.rsplit("/", 1)[-1], "sha256": name_checksum(p),
                            "rows": int(n)} for t, p, n in added],
                 "removed": [{"table": t, "name": n.rsplit("/", 1)[-1], "why": why}
                             for t, n, why in removed]}
        payload = (json.dumps(entry, sort_keys=True, indent=0) + "\n").encode()
        digest = hashlib.sha256(payload).hexdigest()
        d = f"{self.root}/{INDEX_DIR}"
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
        final = f"{d}/{stamp}-{_sanitize(writer)}-{uuid.uuid4().hex[:12]}-{digest}.json"
        tmp, final = self._stage_bytes(d, final, f"{d}/.{uuid.uuid4().hex}{TMP_SUFFIX}", payload)
        try:
            return self._commit_file(tmp, final)
        finally:
            self._discard(tmp)

    def index_files(self) -> list[str]:
        d = f"{self.root}/{INDEX_DIR}"
        if not self.local:
            self.fs.invalidate_cache(d)
        try:
            names = self.fs.ls(d, detail=False)
        except FileNotFoundError:
            return []
        return sorted(p for p in names if p.endswith(".json")
                      and not p.rsplit("/", 1)[-1].startswith("."))

    def read_index(self) -> tuple[dict[tuple[str, str], dict[str, Any]], list[FileProblem]]:
        """The files the index says are live, ``{(table, name): entry}`` (written and not
        removed on purpose), and the index files that are themselves damaged."""
        live: dict[tuple[str, str], dict[str, Any]] = {}
        gone: set[tuple[str, str]] = set()
        bad: list[FileProblem] = []
        for p in self.index_files():
            try:
                data = self.fs.cat_file(p)
                want = name_checksum(p)
                if want and hashlib.sha256(data).hexdigest() != want:
                    raise ValueError("its bytes no longer match the checksum in its name")
                entry = json.loads(data)
                added, removed = entry.get("added", []), entry.get("removed", [])
            except (OSError, ValueError, AttributeError) as exc:
                bad.append(FileProblem(INDEX_DIR, p, "index", f"index file is damaged ({exc})"))
                continue
            for a in added:
                live[(a["table"], a["name"])] = {**a, "at": entry.get("at"),
                                                 "writer": entry.get("writer")}
            gone |= {(r["table"], r["name"]) for r in removed}
        return {k: v for k, v in live.items() if k not in gone}, bad

    def _read_bytes(self, path: str) -> bytes:
        if self.local:
            with open(path, "rb") as f:
                return f.read()
        return self.fs.cat_file(path)

    def check_file(self, path: str, deep: bool = False) -> str | None:
        """None if a catalog file is intact, else its problem in a few words: its bytes are
        re-hashed against the checksum in its name (a file written before checksums is read
        instead; ``deep`` also reads a checksummed one)."""
        want = name_checksum(path)
        try:
            data = self._read_bytes(path)
        except FileNotFoundError:
            return "gone"
        except OSError as exc:
            return f"cannot be read ({_os_reason(exc)})"
        if want is not None:
            got = hashlib.sha256(data).hexdigest()
            if got != want:
                return (f"its bytes no longer match the checksum written into its name "
                        f"(sha256:{want[:12]}…, now sha256:{got[:12]}…)")
            if not deep:
                return None
        try:
            pq.read_table(pa.BufferReader(data))
        except Exception as exc:  # noqa: BLE001 - any decoding failure means unreadable
            return f"is not a readable Parquet file ({_one_line(exc)})"
        return None

    def _vet(self, table: str, files: Sequence[str]) -> None:
        """Refuse a local file whose bytes no longer match its name's checksum (each file is
        hashed once per process: files are immutable)."""
        if not self.local:
            return
        for p in files:
            if name_checksum(p) is None:
                continue
            try:
                st = os.stat(p)
            except FileNotFoundError:
                continue  # vanished under us (compaction): the query retries
            sig = (st.st_size, st.st_mtime_ns)
            if _VETTED.get(p) == sig:
                continue
            problem = self.check_file(p)
            if problem and problem != "gone":
                raise CatalogFileError(f"catalog file {table}/{p.rsplit('/', 1)[-1]} is corrupt: "
                                       f"{problem}; run `calops repair` to set it aside and rebuild "
                                       "what the store holds", p)
            with _VET_LOCK:
                _VETTED[p] = sig

    def check_files(self, tables: Sequence[str] | None = None,
                    deep: bool = False) -> tuple[list[FileProblem], dict[str, int]]:
        """Every catalog file checked: (problems, counts). Problems: a file whose bytes changed
        (``corrupt``), one that cannot be read (``unreadable``), one the index lists that is
        gone (``missing``), a damaged index file (``index``). Counts: files checked, files
        without a checksum (written before checksums), files not in the index."""
        live, problems = self.read_index()
        counts = {"files": 0, "legacy": 0, "unindexed": 0, "index_files": len(self.index_files())}
        present: set[tuple[str, str]] = set()
        replaced: set[str] = set()
        for table in (tables or TABLES):
            files = self._all_files(table)
            for p in files:
                base = p.rsplit("/", 1)[-1]
                present.add((table, base))
                counts["files"] += 1
                if name_checksum(p) is None:
                    counts["legacy"] += 1
                if (table, base) not in live:
                    counts["unindexed"] += 1
                problem = self.check_file(p, deep=deep)
                if problem == "gone":
                    present.discard((table, base))
                elif problem:
                    kind = "corrupt" if problem.startswith("its bytes") else "unreadable"
                    rows = live.get((table, base), {}).get("rows")
                    problems.append(FileProblem(table, p, kind, problem, rows))
                elif COMPACT_TAG in base:
                    with contextlib.suppress(Exception):
                        replaced |= self._replaced([p])
        for (table, base), e in sorted(live.items()):
            if tables and table not in tables:
                continue
            if (table, base) not in present and base not in replaced:
                problems.append(FileProblem(
                    table, f"{self.root}/{table}/{base}", "missing",
                    f"is gone: the index lists it (written {e.get('at')} by {e.get('writer')}, "
                    f"{e.get('rows')} rows)", e.get("rows")))
        return problems, counts

    def quarantine_file(self, problem: FileProblem, why: str) -> str | None:
        """Move a bad file to ``_quarantine/<table>/`` (kept, not deleted) and record in the
        index that it was removed on purpose; a missing file is only written off. Returns
        where it went (None for a missing one)."""
        dest = None
        if problem.kind == "index":
            dest = f"{self.root}/{QUARANTINE_DIR}/{INDEX_DIR}/{problem.path.rsplit('/', 1)[-1]}"
            self.fs.makedirs(dest.rsplit("/", 1)[0], exist_ok=True)
            self.fs.mv(problem.path, dest)
            return dest
        if problem.kind != "missing":
            base = problem.path.rsplit("/", 1)[-1]
            dest = f"{self.root}/{QUARANTINE_DIR}/{problem.table}/{base}"
            self.fs.makedirs(dest.rsplit("/", 1)[0], exist_ok=True)
            if self.fs.exists(dest):
                dest = f"{dest}.{uuid.uuid4().hex[:8]}"
            self.fs.mv(problem.path, dest)
        self.append_index(removed=[(problem.table, problem.path, why)], writer="repair")
        return dest

    def exclude(self, paths: Sequence[str]) -> None:
        """Leave these files out of every view from now on (verify and repair read around bad
        files this way)."""
        with self._lock:
            self._excluded |= set(paths)
            self._con_files = {}
            if self._con is not None:
                self._con.close()
                self._con = None

    def index_all(self) -> int:
        """Record in the index every current file it does not list (files of writers killed
        between their rename and their index entry, or written before the index existed)."""
        live, _ = self.read_index()
        added = []
        for table in TABLES:
            for p in self.files(table):
                if (table, p.rsplit("/", 1)[-1]) not in live and self.check_file(p, deep=True) is None:
                    added.append((table, p, self._rows([p], table)))
        if added:
            self.append_index(added=added, writer="repair")
        return len(added)

    # --- files ----------------------------------------------------------------------------

    def _all_files(self, table: str) -> list[str]:
        d = f"{self.root}/{table}"
        if not self.local:  # s3fs caches listings per process: see other writers' files
            self.fs.invalidate_cache(d)
        try:
            names = self.fs.ls(d, detail=False)
        except FileNotFoundError:
            return []
        return sorted(p for p in names if p.endswith(".parquet")
                      and not p.rsplit("/", 1)[-1].startswith("."))

    def _replaced(self, files: Sequence[str]) -> set[str]:
        """Base names that a compacted file says it replaces (leftovers of an unfinished
        compaction: their rows are already in the compacted file)."""
        out: set[str] = set()
        for p in files:
            if COMPACT_TAG in p.rsplit("/", 1)[-1] and p not in self._excluded:
                try:
                    with self.fs.open(p, "rb") as f:
                        md = pq.read_schema(f).metadata or {}
                    out.update(json.loads(md.get(META_REPLACES, b"[]")))
                except FileNotFoundError:
                    continue
                except Exception as exc:  # noqa: BLE001 - a damaged compacted file
                    table = p.rsplit("/", 2)[-2]
                    raise CatalogFileError(
                        f"catalog file {table}/{p.rsplit('/', 1)[-1]} is unreadable "
                        f"({_one_line(exc)}); run `calops repair`", p) from None
        return out

    def files(self, table: str) -> list[str]:
        """The files whose rows make up ``table`` now."""
        schema(table)
        files = [p for p in self._all_files(table) if p not in self._excluded]
        replaced = self._replaced(files)
        return [p for p in files if p.rsplit("/", 1)[-1] not in replaced]

    def clean_tmp(self, min_age_s: float = 3600.0) -> int:
        """Remove staged files (``.<uuid>.parquet.tmp``) that writers killed mid-batch left
        behind; returns how many. Readers never see them; only files older than ``min_age_s``
        are removed, so a live writer's staged batch is left alone."""
        now, n = utcnow(), 0
        for table in (*TABLES, INDEX_DIR):
            d = f"{self.root}/{table}"
            if not self.local:
                self.fs.invalidate_cache(d)
            try:
                names = self.fs.ls(d, detail=False)
            except FileNotFoundError:
                continue
            for p in names:
                base = p.rsplit("/", 1)[-1]
                if not (base.startswith(".") and base.endswith(TMP_SUFFIX)):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    mtime = self.fs.modified(p)
                    if mtime.tzinfo is None:
                        mtime = mtime.replace(tzinfo=dt.timezone.utc)
                    if (now - mtime).total_seconds() >= min_age_s:
                        self.fs.rm(p)
                        n += 1
        return n

    # --- reading --------------------------------------------------------------------------

    def _ref(self, path: str) -> str:
        p = path if self.local else self.fs.unstrip_protocol(path)
        return "'" + p.replace("'", "''") + "'"

    def _select(self, table: str, files: Sequence[str]) -> str:
        """The table's rows: a typed empty select (every schema column, even when no file has
        it yet) unioned by name with every current file."""
        cols = ", ".join(f'CAST(NULL AS {_duck_type(f.type)}) AS "{f.name}"' for f in schema(table))
        empty = f"SELECT {cols} WHERE false"
        if not files:
            return empty
        lst = ", ".join(self._ref(p) for p in files)
        return (f"{empty} UNION ALL BY NAME "
                f"SELECT * FROM read_parquet([{lst}], union_by_name=true)")

    def connect(self, read_only: bool = True,
                tables: set[str] | None = None) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with one view per table (typed even when empty) and
        the convenience views (only those of ``tables`` if given). ``read_only`` also locks it
        away from every other file."""
        return self._connect(read_only, tables)[0]

    def _connect(self, read_only: bool, tables: set[str] | None
                 ) -> tuple[duckdb.DuckDBPyConnection, dict[str, tuple[str, ...]]]:
        con = duckdb.connect(":memory:")
        if not self.local:
            con.register_filesystem(self.fs)
        wanted = set(TABLES) if tables is None else set(tables)
        used: dict[str, tuple[str, ...]] = {}
        for table in TABLES:
            if table in wanted:
                used[table] = tuple(self.files(table))
                self._vet(table, used[table])
                con.execute(f"CREATE VIEW {table} AS {self._select(table, used[table])}")
        for name, body in VIEWS.items():
            if VIEW_DEPS[name] <= wanted:
                con.execute(f"CREATE VIEW {name} AS {body}")
        if read_only:
            settings = ["SET autoinstall_known_extensions=false",
                        "SET autoload_known_extensions=false"]
            if self.local:
                root = os.path.abspath(self.root).rstrip("/") + "/"
                settings += [f"SET allowed_directories=['{root}']",
                             "SET enable_external_access=false"]
            for s in settings + ["SET lock_configuration=true"]:
                con.execute(s)
        return con, used

    def _cached(self, tables: set[str] | None) -> duckdb.DuckDBPyConnection:
        """A long-lived read-only connection whose views are refreshed when a table's files
        changed (a new DuckDB database per query costs ~30 ms; a refresh only lists files)."""
        if self._con is None or self._con_pid != os.getpid():
            self._con = None
            self._con, self._con_files = self._connect(True, None)
            self._con_pid = os.getpid()
            return self._con
        for table in (TABLES if tables is None else tables):
            files = tuple(self.files(table))
            if files != self._con_files.get(table):
                self._vet(table, files)
                self._con.execute(f"CREATE OR REPLACE VIEW {table} AS {self._select(table, files)}")
                self._con_files[table] = files
        return self._con

    def sql(self, query: str, params: Sequence[Any] | None = None) -> pa.Table:
        """The result of one read-only statement as an Arrow table (errors are one line)."""
        check_read_only(query)
        with self._lock:
            for attempt in (0, 1):
                try:
                    con = self._cached(tables_for(query))
                    rel = con.sql(query, params=list(params) if params else None)
                    return pa.table({}) if rel is None else rel.to_arrow_table()
                except duckdb.IOException as exc:
                    self._con_files = {}  # a file vanished under us (compaction): refresh, retry
                    if attempt:
                        self._blame(tables_for(query))
                        raise QueryError(_one_line(exc)) from None
                except _QUERY_ERRORS as exc:
                    raise QueryError(_one_line(exc)) from None
                except duckdb.Error as exc:  # reading a file failed: name the file
                    self._blame(tables_for(query))
                    raise QueryError(_one_line(exc)) from None
        raise AssertionError("unreachable")

    def _blame(self, tables: set[str] | None) -> None:
        """After a read failed: raise CatalogFileError naming the first bad file of
        ``tables`` (checksum, then a full read), if there is one."""
        for table in sorted(TABLES if tables is None else tables):
            for p in self.files(table):
                problem = self.check_file(p, deep=True)
                if problem and problem != "gone":
                    raise CatalogFileError(f"catalog file {table}/{p.rsplit('/', 1)[-1]} "
                                           f"{'is corrupt: ' if problem.startswith('its') else ''}"
                                           f"{problem}; run `calops repair`", p)

    @contextlib.contextmanager
    def session(self, tables: set[str]) -> Iterator[Any]:
        """A read-only query function over one snapshot of ``tables`` (their files listed
        once): for a walk of many small queries, such as lineage, one level at a time.
        ``q(sql, params) -> list of row dicts``."""
        with self._lock:
            con = self._cached(set(tables))

            def q(query: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
                check_read_only(query)
                try:
                    return con.sql(query, params=list(params) if params else None
                                   ).to_arrow_table().to_pylist()
                except _QUERY_ERRORS as exc:
                    raise QueryError(_one_line(exc)) from None
                except duckdb.Error as exc:  # reading a file failed: name the file
                    self._blame(set(tables))
                    raise QueryError(_one_line(exc)) from None

            yield q

    def count(self, table: str) -> int:
        return self.sql(f"SELECT count(*) AS n FROM {schema(table) and table}").column(0)[0].as_py()

    def realisations(self, recipe_key: str) -> list[str]:
        """Distinct product ids realised for ``recipe_key``, oldest first."""
        t = self.sql("SELECT product_id, min(created_at) AS t FROM realisations "
                     "WHERE recipe_key = ? GROUP BY product_id ORDER BY t NULLS LAST, product_id",
                     [recipe_key])
        return t.column("product_id").to_pylist()

    # --- bulk reads (one query for many keys: what planning a whole archive needs) ----------

    def realised(self, recipe_keys: Sequence[str]) -> dict[str, list[str]]:
        """recipe key -> its distinct product ids (oldest first), for the keys that have any."""
        if not recipe_keys:
            return {}
        t = self.sql("SELECT r.recipe_key, r.product_id, min(r.created_at) AS t "
                     "FROM realisations r SEMI JOIN (SELECT unnest(?::VARCHAR[]) AS recipe_key) k "
                     "USING (recipe_key) GROUP BY ALL ORDER BY t NULLS LAST, product_id",
                     [list(recipe_keys)])
        out: dict[str, list[str]] = {}
        for k, pid in zip(t.column("recipe_key").to_pylist(), t.column("product_id").to_pylist()):
            out.setdefault(k, []).append(pid)
        return out

    def product_metas(self, product_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """product id -> its recorded metadata (latest row), for the ids the catalog has."""
        if not product_ids:
            return {}
        t = self.sql("SELECT product_id, first(meta_json ORDER BY created_at DESC NULLS LAST) AS meta_json "
                     "FROM products "
                     "SEMI JOIN (SELECT unnest(?::VARCHAR[]) AS product_id) k USING (product_id) "
                     "GROUP BY product_id", [list(set(product_ids))])
        return {pid: json.loads(m or "{}") for pid, m in
                zip(t.column("product_id").to_pylist(), t.column("meta_json").to_pylist())}

    def current_exposures(self, exposure_ids: Sequence[str] | None = None
                          ) -> dict[str, dict[str, Any]]:
        """exposure id -> its current version's row (all current exposures when no ids)."""
        if exposure_ids is None:
            rows = self.sql("SELECT * FROM current_exposures ORDER BY exposure_id").to_pylist()
        else:
            rows = self.sql("SELECT * FROM current_exposures SEMI JOIN "
                            "(SELECT unnest(?::VARCHAR[]) AS exposure_id) k USING (exposure_id) "
                            "ORDER BY exposure_id", [list(exposure_ids)]).to_pylist()
        return {r["exposure_id"]: r for r in rows}

    def current_exposure(self, exposure_id: str) -> dict[str, Any] | None:
        """The latest version of an exposure as a dict, or None if never ingested."""
        rows = self.sql("SELECT * FROM current_exposures WHERE exposure_id = ?",
                        [exposure_id]).to_pylist()
        return rows[0] if rows else None

    def product_meta(self, product_id: str) -> dict[str, Any]:
        """The metadata recorded for a product (its latest ``products`` row)."""
        rows = self.sql("SELECT meta_json FROM products WHERE product_id = ? "
                        "ORDER BY created_at DESC NULLS LAST LIMIT 1", [product_id]).to_pylist()
        if not rows:
            raise CatalogError(f"product {product_id} is not in the catalog")
        return json.loads(rows[0]["meta_json"] or "{}")

    def current_exposure_ids(self, where: str | None = None) -> list[str]:
        """Ids of the current exposures, optionally those a SQL condition over the
        ``current_exposures`` columns selects (e.g. ``"detector = 'NRCA1'"``)."""
        cond = f" WHERE ({where})" if where and where.strip() else ""
        return self.sql(f"SELECT exposure_id FROM current_exposures{cond} "
                        "ORDER BY exposure_id").column(0).to_pylist()

    def stale_exposure_ids(self, build: str, where: str | None = None) -> list[str]:
        """Current exposures that ``build`` has not processed successfully since their current
        version was ingested (new ones and reissues)."""
        cond = f" AND ({where})" if where and where.strip() else ""
        return self.sql(
            "SELECT e.exposure_id FROM current_exposures e WHERE NOT EXISTS ("
            "  SELECT 1 FROM run_steps s WHERE s.build = ? AND s.subject = e.exposure_id"
            "  AND s.status = 'ok' AND (e.ingested_at IS NULL OR s.at >= e.ingested_at))"
            f"{cond} ORDER BY e.exposure_id", [build]).column(0).to_pylist()

    # --- typed writes: the only way rows get in (catalogs/recipes.py builds them) ---------

    def record(self, rows: Mapping[str, Sequence[Mapping[str, Any]]], writer_id: str) -> None:
        """Write rows of several tables as one batch (objects they name are stored already)."""
        with self.batch(writer_id) as b:
            b.add_rows(rows)

    def record_stage(self, run_id: str, recipe: Any, outcome: Any,
                     new_products: Mapping[str, Any] = {}, step_times: Mapping[str, float] = {}
                     ) -> None:
        """What one stage run did: recipes, products and realisations of a miss, run steps."""
        from catalogs.recipes import stage_rows

        self.record(stage_rows(run_id, recipe, outcome, new_products, step_times), run_id)

    def record_failure(self, run_id: str, build: str, stage: str, subject: str,
                       error: str) -> None:
        """A failed stage that could not even be planned, as a ``run_steps`` row."""
        from catalogs.recipes import failure_rows

        self.record(failure_rows(run_id, build, stage, subject, error), run_id)

    def record_ingest(self, rec: Any, writer_id: str) -> None:
        """One ingested exposure version (``catalogs.recipes.Ingest``) and its two products."""
        from catalogs.recipes import ingest_rows

        self.record(ingest_rows(rec), writer_id)

    def record_run(self, run: Any) -> None:
        """A run's start or end row (``catalogs.recipes.Run``)."""
        from catalogs.recipes import run_rows

        self.record(run_rows(run), run.run_id)

    def record_associations(self, asns: Sequence[Mapping[str, Any]],
                            writer_id: str = "associations") -> int:
        """Record stage-3 associations; returns the member rows written. Each association is
        JWST-shaped (``products: [{name, members: [{expname, exptype}]}]``, member exposure
        ids taken from ``expname`` without its ``_<suffix>.fits``) or ``{name, members:
        [exposure_id, ...]}``."""
        now = utcnow()
        rows = []
        for asn in asns:
            text = json.dumps(asn, sort_keys=True, default=str)
            products = asn.get("products") or [asn]
            for prod in products:
                for m in prod.get("members", []):
                    expname = m.get("expname") if isinstance(m, Mapping) else m
                    rows.append({"asn_name": prod["name"], "exposure_id": exposure_of(str(expname)),
                                 "exptype": m.get("exptype", "science") if isinstance(m, Mapping)
                                 else "science", "asn_json": text, "recorded_at": now})
        if rows:
            self.write("associations", rows, writer_id)
        return len(rows)

    def association_members(self, asn_name: str) -> list[str]:
        """Member exposure ids of an association (its latest recording)."""
        ids = self.sql("SELECT DISTINCT exposure_id FROM current_associations WHERE asn_name = ? "
                       "ORDER BY exposure_id", [asn_name]).column(0).to_pylist()
        if not ids:
            raise CatalogError(f"no association named {asn_name!r} in the catalog")
        return ids

    # --- compaction -----------------------------------------------------------------------

    def compact(self, table: str | None = None) -> list[CompactResult]:
        """Merge each table's files into one file; every row is kept (proved before removal)."""
        out = [self._compact(t) for t in ([table] if table else list(TABLES))]
        if table is None:
            with contextlib.suppress(OSError, CatalogError):
                self.compact_index()
        return out

    @contextlib.contextmanager
    def _compaction_lock(self, table: str) -> Iterator[None]:
        if not self.local:
            yield
            return
        import fcntl

        d = f"{self.root}/{table}"
        os.makedirs(d, exist_ok=True)
        with open(f"{d}/.compact.lock", "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CatalogError(f"another process is compacting {table}; try again later") from None
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _compact(self, table: str) -> CompactResult:
        schema(table)
        with self._compaction_lock(table):
            files = [p for p in self._all_files(table) if p not in self._excluded]
            replaced = self._replaced(files)
            leftovers = [p for p in files if p.rsplit("/", 1)[-1] in replaced]
            for p in leftovers:  # finish an interrupted compaction
                self.fs.rm(p)
            sources = [p for p in files if p not in leftovers]
            for p in sources:  # never fold a damaged file into a fresh, valid-looking one
                problem = self.check_file(p, deep=name_checksum(p) is None)
                if problem and problem != "gone":
                    raise CatalogFileError(f"cannot compact {table}: catalog file {table}/"
                                           f"{p.rsplit('/', 1)[-1]} {problem}; run `calops "
                                           "repair` first (nothing was changed)", p)
            n_before = self._rows(sources, table)
            if len(sources) <= 1:
                return CompactResult(table, len(sources), len(sources), n_before, n_before,
                                     len(leftovers))
            con = duckdb.connect(":memory:")
            try:
                if not self.local:
                    con.register_filesystem(self.fs)
                cols = ", ".join(f'"{c}"' for c in schema(table).names)
                old = f"SELECT {cols} FROM ({self._select(table, sources)})"
                order = f' ORDER BY "{SORT_KEYS[table]}"' if table in SORT_KEYS else ""
                merged = con.sql(old + order).to_arrow_table().cast(schema(table))
                names = sorted(p.rsplit("/", 1)[-1] for p in sources)
                stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
                new = self._write_file(table, f"{stamp}{COMPACT_TAG}{uuid.uuid4().hex[:12]}",
                                       merged, {META_REPLACES: json.dumps(names).encode()})
                new_sel = f"SELECT {cols} FROM read_parquet([{self._ref(new)}])"
                n_new = con.execute(f"SELECT count(*) FROM ({new_sel})").fetchone()[0]
                diff = con.execute(f"SELECT (SELECT count(*) FROM ({old} EXCEPT ALL {new_sel})) + "
                               f"(SELECT count(*) FROM ({new_sel} EXCEPT ALL {old}))").fetchone()[0]
                if n_new != n_before or diff:
                    self.fs.rm(new)
                    raise CatalogError(f"compaction of {table} did not reproduce its rows "
                                       f"({n_before} -> {n_new}, {diff} differ); nothing removed")
            finally:
                con.close()
            why = f"compacted into {new.rsplit('/', 1)[-1]}"
            self._index_quietly(added=[(table, new, n_new)],
                                removed=[(table, p, why) for p in sources], writer="compact")
            for p in sources:
                self.fs.rm(p)
            return CompactResult(table, len(sources), 1, n_before, n_new, len(leftovers))

    def compact_index(self) -> int:
        """Merge the index files into one that lists only the files still live (and those
        gone without being removed on purpose, so their loss stays visible); returns how
        many index files were merged. Damaged index files are left for `calops repair`."""
        files = self.index_files()
        if len(files) <= 1:
            return len(files)
        live, bad = self.read_index()
        if bad:
            return 0
        added = [(t, f"{self.root}/{t}/{n}", e.get("rows") or 0) for (t, n), e in sorted(live.items())]
        if not self.append_index(added=added, writer="compact-index"):
            return 0
        for p in files:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(p)
        return len(files)

    def _rows(self, files: Sequence[str], table: str) -> int:
        n = 0
        for p in files:
            with self.fs.open(p, "rb") as f:
                n += pq.ParquetFile(f).metadata.num_rows
        return n
