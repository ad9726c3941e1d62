"""Recovering the catalog from the store: record objects and ``calops repair``.

Every recording that matters for lineage is also stored as an object in the content-addressed
store, as Nix keeps its derivations next to its outputs: a **record object** is a
``DataModel("record")`` with no arrays whose metadata holds catalog rows by table (and, for a
build, the manifest and lock texts). It is verified like any object (its id is the hash of its
bytes), so the lineage can be rebuilt from the store alone.

Who stores what (docs/integrity.md):

- the workspace's catalog (``Catalog.record_store``), for every batch that records lineage
  (``RECORD_TRIGGERS``: a stage the runner computed, with its recipes, inputs, references,
  products, realisations and run steps; an exposure version at ingest; associations; run
  rows), before the batch's files are written: ``record_object(batch.rows)``. A runner that
  writes elsewhere can store ``recipe_object(rows)`` itself;
- the build lifecycle (catalogs/lifecycle.py): ``builds`` and ``build_events`` rows with the
  manifest and lock texts.

Batches of ``run_steps`` alone (cache hits, failures) are not stored: repair says so.

``record_object`` and ``rows_of`` are pure and inverse (``rows_of(record_object(r)) == r`` up to
timestamps becoming UTC datetimes). ``repair`` quarantines what is bad and rebuilds what the
store holds, and returns a report that says exactly what could not be rebuilt.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from catalogs.schema import TABLES, WRITE_ORDER, schema
from store.errors import CalopsError
from transforms.model import DataModel

RECORD_KIND = "record"
RECORD_VERSION = 1
# Tables a record object may carry.
RECORDED = ("products", "recipes", "recipe_inputs", "recipe_refs", "realisations", "run_steps",
            "runs", "exposures", "associations", "builds", "build_events")
# Identity of a row per table: a rebuilt row is written only if no row with its key exists.
KEYS: dict[str, tuple[str, ...]] = {
    "products": ("product_id", "subject"),
    "recipes": ("recipe_key",),
    "recipe_inputs": ("recipe_key", "role", "input_id"),
    "recipe_refs": ("recipe_key", "reftype", "filename", "ref_hash"),
    "realisations": ("recipe_key", "product_id", "run_id"),
    "run_steps": ("run_id", "subject", "stage", "step", "status"),
    "runs": ("run_id", "status", "finished_at"),
    "exposures": ("exposure_id", "version"),
    "associations": ("asn_name", "exposure_id"),
    "builds": ("name", "recorded_at"),
    "build_events": ("build", "event", "at"),
}
# What the store cannot give back, per table (said by `calops repair` when rows are lost).
NOT_IN_STORE = {
    "runs": "run rows (start and end times, status, summary) unless the runner stored them",
    "run_steps": "cache-hit and failed-stage rows, and timings of stages whose record does not "
                 "carry them",
    "tombstones": "tombstones (which payloads were garbage-collected, and why)",
    "diffs": "build comparison results (re-run `calops diff` to recompute them)",
    "associations": "the full association documents (members are rebuilt from the image3 "
                    "recipes)",
    "products": "nothing of this table (products rows are rebuilt from the objects)",
}


class RecoveryError(CalopsError):
    """A record object that is malformed, or a repair that cannot proceed."""


# --- record objects (pure) --------------------------------------------------------------------

def _plain(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=dt.timezone.utc)
        return v.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    return v


def record_object(rows: Mapping[str, Sequence[Mapping[str, Any]]],
                  files: Mapping[str, str] | None = None, what: str = "") -> DataModel:
    """A store object holding catalog rows by table (and optional small text files).

    ``rows`` is ``{table: [row, ...]}`` as a catalog batch holds them (``Batch.rows``); only
    the columns of each table's schema are kept, NULLs dropped, times as UTC ISO strings.
    Tables must be among ``RECORDED``."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in sorted(rows):
        if table not in RECORDED:
            raise RecoveryError(f"table {table} is not kept in record objects; "
                                f"recorded tables: {', '.join(RECORDED)}")
        names = schema(table).names
        out = []
        for r in rows[table]:
            unknown = sorted(set(r) - set(names))
            if unknown:
                raise RecoveryError(f"a {table} row has unknown column(s) {', '.join(unknown)}")
            out.append({c: _plain(r[c]) for c in names if r.get(c) is not None})
        if out:
            tables[table] = out
    meta: dict[str, Any] = {"record.version": RECORD_VERSION, "record.what": str(what),
                            "record.tables": tables}
    if files:
        meta["record.files"] = {str(k): str(v) for k, v in sorted(files.items())}
    return DataModel(RECORD_KIND, {}, meta)


def recipe_object(step_recipe_rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> DataModel:
    """The record the runner stores for one computed stage: ``step_recipe_rows`` is the
    batch it records (``{"recipes": [...], "recipe_inputs": [...], "recipe_refs": [...],
    "products": [...], "realisations": [...], "run_steps": [...]}``, e.g. ``batch.rows``)."""
    return record_object(step_recipe_rows, what="recipe")


def _parse_time(v: Any) -> Any:
    if isinstance(v, str):
        t = dt.datetime.fromisoformat(v)
        return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)
    return v


def rows_of(model: DataModel) -> dict[str, list[dict[str, Any]]]:
    """The catalog rows a record object holds, typed as the schema wants (times as datetimes)."""
    if model.kind != RECORD_KIND:
        raise RecoveryError(f"a {model.kind} object is not a record")
    if model.meta.get("record.version") != RECORD_VERSION:
        raise RecoveryError(f"record of version {model.meta.get('record.version')!r}; this "
                            f"calops reads version {RECORD_VERSION}")
    out: dict[str, list[dict[str, Any]]] = {}
    for table, rows in (model.meta.get("record.tables") or {}).items():
        if table not in RECORDED:
            raise RecoveryError(f"record holds an unknown table {table!r}")
        sch = schema(table)
        times = {f.name for f in sch if pa.types.is_timestamp(f.type)}
        out[table] = [{c: (_parse_time(r.get(c)) if c in times else r.get(c)) for c in sch.names}
                      for r in rows]
    return out


def files_of(model: DataModel) -> dict[str, str]:
    """The text files a record object carries (a build's manifest and lock)."""
    return dict(model.meta.get("record.files") or {})


# --- reading the store --------------------------------------------------------------------------

def peek_header(store: Any, ident: str) -> dict[str, Any] | None:
    """The header of a stored model object (``kind``, ``meta``, ``arrays`` as
    ``[name, dtype, shape, offset, nbytes]``, and ``size`` of the object) read without its
    payload and without verification, or None if it is not a readable model object."""
    from store.canonical import decode
    from store.codec import MAGIC

    path = store.path_of(ident)
    try:
        size = int(store.fs.size(path))
        with store.fs.open(path, "rb") as f:
            lead = f.read(16)
            if len(lead) < 16 or lead[:8] != MAGIC:
                return None
            hlen = int.from_bytes(lead[8:16], "little")
            if hlen > min(size, 64 << 20):
                return None
            header = decode(f.read(hlen))
        return {"kind": str(header["kind"]), "meta": dict(header["meta"]),
                "arrays": list(header.get("arrays") or []), "size": size}
    except Exception:  # noqa: BLE001 - a damaged object is simply not a readable model
        return None


def peek(store: Any, ident: str) -> tuple[str, dict[str, Any], int] | None:
    """(kind, meta, size) of a stored model object from its header alone (see
    ``peek_header``), or None."""
    head = peek_header(store, ident)
    return None if head is None else (head["kind"], head["meta"], head["size"])


def is_record(store: Any, ident: str) -> bool:
    """True if the stored object ``ident`` is a record object (from its header alone)."""
    head = peek(store, ident)
    return head is not None and head[0] == RECORD_KIND


def product_ids(store: Any) -> list[str]:
    """Every stored object that is not a record object (products, inputs, blobs)."""
    return [i for i in store.ids() if not is_record(store, i)]


def records(store: Any, problems: list[str] | None = None) -> Iterator[tuple[str, DataModel]]:
    """Every intact record object in the store: (id, model). A record that fails
    verification is skipped (and named in ``problems``)."""
    for ident in store.ids():
        head = peek(store, ident)
        if head is None or head[0] != RECORD_KIND:
            continue
        try:
            yield ident, store.get(ident)
        except CalopsError as exc:
            if problems is not None:
                problems.append(f"record {ident}: {exc}")


def _norm(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return _plain(v)
    return v


def _key(table: str, row: Mapping[str, Any]) -> tuple:
    return tuple(_norm(row.get(c)) for c in KEYS[table])


# --- repair -----------------------------------------------------------------------------------

@dataclass
class RepairReport:
    quarantined_files: list[tuple[str, str, str]] = field(default_factory=list)  # name, why, dest
    written_off: list[tuple[str, str]] = field(default_factory=list)  # missing files: name, why
    lost_rows: dict[str, int] = field(default_factory=dict)  # table -> rows the bad files held
    unknown_rows: set[str] = field(default_factory=set)  # tables whose lost count is unknown
    restored: dict[str, int] = field(default_factory=dict)  # table -> rows rebuilt
    quarantined_objects: list[tuple[str, str]] = field(default_factory=list)
    missing_objects: list[str] = field(default_factory=list)
    records: int = 0
    bad_records: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    indexed: int = 0

    @property
    def clean(self) -> bool:
        return not (self.quarantined_files or self.written_off or self.quarantined_objects
                    or self.missing_objects or self.bad_records or self.manifests
                    or any(self.restored.values()))

    def lost(self) -> dict[str, str]:
        """Per table with bad files: what could not be rebuilt, in words."""
        out = {}
        for table in sorted(set(self.lost_rows) | self.unknown_rows):
            held = self.lost_rows.get(table)
            got = self.restored.get(table, 0)
            if table in self.unknown_rows and held is None:
                out[table] = (f"an unknown number of rows (a bad file the index did not list); "
                              f"{got} rebuilt from the store. The store never holds: "
                              f"{NOT_IN_STORE.get(table, 'nothing of this table')}")
            elif held is not None and got < held:
                out[table] = (f"{held - got} of {held} row(s) not rebuilt (their record objects "
                              "are not in the store). The store never holds: "
                              f"{NOT_IN_STORE.get(table, 'nothing of this table')}")
        return out

    def lines(self) -> list[str]:
        out = []
        for name, why, dest in self.quarantined_files:
            out.append(f"quarantined catalog file {name}: {why} (moved to {dest})")
        for name, why in self.written_off:
            out.append(f"written off catalog file {name}: {why}")
        for ident, dest in self.quarantined_objects:
            out.append(f"quarantined object {ident} (moved to {dest}); the next run recomputes "
                       "it, or re-ingest its file")
        for ident in self.missing_objects:
            out.append(f"missing object {ident}: the next run recomputes it, or re-ingest its file")
        for r in self.bad_records:
            out.append(f"unusable record: {r}")
        for m in self.manifests:
            out.append(m)
        for table, n in sorted(self.restored.items()):
            if n:
                out.append(f"rebuilt {n} {table} row(s) from {self.records} record object(s) in "
                           "the store")
        for table, what in self.lost().items():
            out.append(f"LOST from {table}: {what}")
        if self.indexed:
            out.append(f"recorded {self.indexed} unlisted catalog file(s) in the file index")
        return out


def _existing_keys(catalog: Any, table: str) -> set[tuple]:
    cols = ", ".join(f'"{c}"' for c in KEYS[table])
    t = catalog.sql(f"SELECT DISTINCT {cols} FROM {table}")
    return {tuple(_norm(v) for v in r.values()) for r in t.to_pylist()}


def rebuild_rows(catalog: Any, recs: Iterable[DataModel], store: Any = None
                 ) -> dict[str, list[dict[str, Any]]]:
    """Rows held by ``recs`` that the catalog does not have (by each table's key), plus
    ``products`` rows for realised objects that have none (read from the objects' headers) and
    association members for image3 subjects whose association is gone."""
    from transforms import registry

    wanted: dict[str, dict[tuple, dict[str, Any]]] = defaultdict(dict)
    for rec in recs:
        for table, rows in rows_of(rec).items():
            for r in rows:
                wanted[table].setdefault(_key(table, r), r)
    # associations: members of association-stage subjects, from their recipes' member inputs
    assoc_stages = {s.name for s in registry.stages().values() if s.subject == "association"}
    by_key_inputs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in wanted.get("recipe_inputs", {}).values():
        by_key_inputs[r["recipe_key"]].append(r)
    for r in list(wanted.get("run_steps", {}).values()):
        if r.get("stage") in assoc_stages and r.get("recipe_key"):
            for i in by_key_inputs.get(r["recipe_key"], []):
                if str(i["role"]).startswith("member:"):
                    eid = i["role"].split(":", 1)[1]
                    row = {"asn_name": r["subject"], "exposure_id": eid, "exptype": "science",
                           "asn_json": None, "recorded_at": r.get("at")}
                    wanted["associations"].setdefault(_key("associations", row), row)
    out: dict[str, list[dict[str, Any]]] = {}
    for table in WRITE_ORDER:
        if table not in wanted:
            continue
        have = _existing_keys(catalog, table)
        new = [r for k, r in wanted[table].items() if k not in have]
        if new:
            out[table] = new
    if store is not None:
        have = {k[0] for k in _existing_keys(catalog, "products")}
        have |= {r["product_id"] for r in out.get("products", [])}
        realised = {r["product_id"] for r in wanted.get("realisations", {}).values()}
        realised |= {k[0] for k in _existing_keys(catalog, "realisations")}
        subject_of = {r["product_id"]: r.get("subject") for r in wanted.get("products", {}).values()}
        now = dt.datetime.now(dt.timezone.utc)
        for pid in sorted(realised - have):
            head = peek(store, pid) if store.has(pid) else None
            if head is None:
                continue
            kind, meta, size = head
            out.setdefault("products", []).append({
                "product_id": pid, "kind": kind, "size_bytes": size,
                "meta_json": json.dumps(meta, sort_keys=True, default=str),
                "subject": subject_of.get(pid) or meta.get("filename"), "created_at": now})
    return out


def repair(catalog: Any, store: Any, builds_dir: str | os.PathLike | None = None) -> RepairReport:
    """Quarantine bad catalog files and bad objects, rebuild from the store's record objects
    what they held, restore tampered manifests from their recorded copies, and report exactly
    what could not be rebuilt. Safe to run again (a second run finds nothing to do)."""
    rep = RepairReport()
    # 1. objects: corrupt ones aside (the runner recomputes them; ingest re-stores inputs)
    for ident, problem in store.verify():
        if problem == "missing":
            continue
        dest = store.quarantine(ident)
        if dest:
            rep.quarantined_objects.append((ident, dest))
    # 2. catalog files: bad ones aside, gone ones written off
    problems, _ = catalog.check_files(deep=True)
    for p in problems:
        why = f"{p.kind}: {p.problem}"
        if p.kind == "missing":
            catalog.quarantine_file(p, "written off by calops repair (file was gone)")
            rep.written_off.append((p.name, p.problem))
        else:
            dest = catalog.quarantine_file(p, f"quarantined by calops repair ({p.kind})")
            rep.quarantined_files.append((p.name, why, dest or ""))
        if p.table in TABLES:
            if p.rows is None:
                rep.unknown_rows.add(p.table)
            else:
                rep.lost_rows[p.table] = rep.lost_rows.get(p.table, 0) + int(p.rows)
    catalog.close()
    # 3. rebuild from the store's records
    recs = []
    for _, rec in records(store, rep.bad_records):
        recs.append(rec)
    rep.records = len(recs)
    new = rebuild_rows(catalog, recs, store)
    if new:
        with catalog.batch("repair") as b:
            b.record = False  # rebuilt from records already in the store
            for table, rows in new.items():
                b.extend(table, rows)
                rep.restored[table] = len(rows)
        catalog.close()
    # 4. manifests refused as tampered: restore the recorded copy from the store
    if builds_dir is not None:
        rep.manifests = restore_manifests(catalog, recs, builds_dir)
    # 5. objects the catalog names that are gone
    rep.missing_objects = sorted(
        pid for pid in catalog.sql(
            "SELECT DISTINCT product_id FROM realisations WHERE product_id NOT IN "
            "(SELECT product_id FROM tombstones)").column(0).to_pylist()
        if not store.has(pid))
    rep.indexed = catalog.index_all()
    return rep


def restore_manifests(catalog: Any, recs: Sequence[DataModel], builds_dir: str | os.PathLike
                      ) -> list[str]:
    """Put back the recorded manifest (and lock) of every build whose file no longer matches
    the catalog; the edited file is kept beside it as ``<name>.toml.edited-<time>``."""
    from catalogs import builds as buildlib
    from catalogs.lifecycle import recorded_manifests

    d = Path(builds_dir)
    recorded = recorded_manifests(catalog)
    copies: dict[str, dict[str, str]] = {}
    for rec in recs:
        files = files_of(rec)
        for fname, text in files.items():
            if not fname.endswith(".toml"):
                continue
            name = fname[:-5]
            try:
                b = buildlib.parse_manifest(text, fname, files.get(f"{name}.lock.json"))
            except CalopsError:
                continue
            copies[buildlib.manifest_hash(b)] = {fname: text, **{
                k: v for k, v in files.items() if k == f"{name}.lock.json"}}
    out = []
    book = buildlib.BuildBook(d)  # a bare book: reads files without the catalog check
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    for name, (status, want) in sorted(recorded.items()):
        if want is None or status not in buildlib.LOCKED:
            continue
        path = d / f"{name}.toml"
        try:
            ok = path.exists() and buildlib.manifest_hash(book.get(name)) == want
        except CalopsError:
            ok = False
        if ok:
            continue
        copy = copies.get(want)
        if copy is None:
            out.append(f"manifest {d.name}/{name}.toml does not match the catalog and the store "
                       "has no recorded copy of it: restore it from a backup")
            continue
        if path.exists():
            os.replace(path, d / f"{name}.toml.edited-{stamp}-{uuid.uuid4().hex[:4]}")
        for fname, text in copy.items():
            tmp = d / f".{fname}.{uuid.uuid4().hex[:8]}.tmp"
            tmp.write_text(text)
            os.replace(tmp, d / fname)
        out.append(f"restored manifest {d.name}/{name}.toml as recorded ({status}); the edited "
                   f"file is kept as {name}.toml.edited-{stamp}-…")
    return out
