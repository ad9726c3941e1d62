"""The catalog's tables: one pyarrow schema per table, every column documented.

Bump ``SCHEMA_VERSION`` when a column is added, removed or changes meaning; files record the
version they were written under (Parquet key-value metadata ``calops.schema_version``). Views
read every file with ``union_by_name`` over a typed empty table, so files written before a column
was added read back with that column NULL. docs/catalog.md is written from these definitions.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 3  # 2: run_steps.crds_context; 3: builds.manifest_hash (tamper evidence)

_TS = pa.timestamp("us", tz="UTC")


def _f(name: str, type_: pa.DataType, doc: str, required: bool = False) -> pa.Field:
    return pa.field(name, type_, nullable=not required, metadata={"doc": doc})


def _s(*fields: pa.Field, doc: str) -> pa.Schema:
    return pa.schema(list(fields), metadata={"doc": doc})


S, I64, F64, B = pa.string(), pa.int64(), pa.float64(), pa.bool_()

TABLES: dict[str, pa.Schema] = {
    "products": _s(
        _f("product_id", S, "content id of the stored object (sha256:...)", True),
        _f("kind", S, "product kind: uncal, pointing, rate, rateints, cal, i2d, catalog, ref.<type>"),
        _f("size_bytes", I64, "size of the stored object in bytes"),
        _f("meta_json", S, "the product's metadata as JSON (sorted keys)"),
        _f("subject", S, "exposure or association the product belongs to"),
        _f("created_at", _TS, "when this row was written (UTC)"),
        doc="A product seen by the catalog; one row per recording (the same id may appear again).",
    ),
    "recipes": _s(
        _f("recipe_key", S, "the recipe's key (identity.recipe_key)", True),
        _f("step", S, "step name, or '<stage>:<output>' for a stage output", True),
        _f("step_version", S, "declared transform version"),
        _f("params_json", S, "every parameter value, defaults included, as JSON"),
        _f("key_schema", I64, "identity.KEY_SCHEMA_VERSION the key was computed under"),
        doc="What a step was (or will be) run with.",
    ),
    "recipe_inputs": _s(
        _f("recipe_key", S, "the recipe", True),
        _f("role", S, "the input's role (input, uncal, pointing, recipe, ...)", True),
        _f("input_id", S, "a product_id, or the recipe_key of an in-memory intermediate", True),
        doc="Inputs of a recipe by role.",
    ),
    "recipe_refs": _s(
        _f("recipe_key", S, "the recipe", True),
        _f("reftype", S, "CRDS reference type (gain, dark, ...)", True),
        _f("filename", S, "reference file name chosen by CRDS"),
        _f("ref_hash", S, "content hash of the reference file (identity.hash_file)"),
        doc="Reference files of a recipe by reftype.",
    ),
    "realisations": _s(
        _f("recipe_key", S, "the recipe", True),
        _f("product_id", S, "the product it produced", True),
        _f("run_id", S, "the run that produced it"),
        _f("created_at", _TS, "when (UTC)"),
        doc="recipe_key -> product_id. Two product ids for one key is nondeterminism: both kept.",
    ),
    "runs": _s(
        _f("run_id", S, "unique run id", True),
        _f("build", S, "build name the run used"),
        _f("command", S, "command line or flow name"),
        _f("started_at", _TS, "start (UTC)"),
        _f("finished_at", _TS, "end (UTC); NULL in the row written at start"),
        _f("status", S, "running, ok, failed, partial"),
        _f("host", S, "host name"),
        _f("summary_json", S, "counts, hits, failures as JSON"),
        doc="One row when a run starts and one when it ends (latest by finished_at wins).",
    ),
    "run_steps": _s(
        _f("run_id", S, "the run", True),
        _f("build", S, "build name"),
        _f("subject", S, "exposure or association id"),
        _f("stage", S, "detector1, image2, image3"),
        _f("step", S, "step name (or the stage name for a stage-level row)"),
        _f("crds_context", S, "the CRDS context the build resolved references from"),
        _f("recipe_key", S, "the step's recipe key"),
        _f("product_id", S, "output product id(s): an id or a JSON object name -> id"),
        _f("cache_hit", B, "true if the stage was reused from a realisation"),
        _f("reason", S, "why it ran or was reused"),
        _f("wall_s", F64, "wall time in seconds"),
        _f("peak_mem_bytes", I64, "peak resident memory of the stage in bytes"),
        _f("status", S, "ok, failed, skipped"),
        _f("error", S, "one-line error for a failed step"),
        _f("at", _TS, "when the row was written (UTC)"),
        doc="What each step of each stage did in a run.",
    ),
    "builds": _s(
        _f("name", S, "build name (e.g. 11.2)", True),
        _f("status", S, "development, candidate, operations, archived"),
        _f("manifest_json", S, "the build manifest as JSON"),
        _f("recorded_at", _TS, "when (UTC)"),
        _f("manifest_hash", S, "hash of the manifest's content (catalogs.builds.manifest_hash) "
           "when recorded; a candidate, operations or archived manifest must still match it"),
        doc="Build manifests as recorded; the latest row per name is current.",
    ),
    "build_events": _s(
        _f("build", S, "build name", True),
        _f("event", S, "created, promoted, archived, rolled_back, restored, seeded, ...", True),
        _f("from_status", S, "status before"),
        _f("to_status", S, "status after"),
        _f("at", _TS, "when (UTC)"),
        _f("who", S, "user"),
        _f("why", S, "reason given"),
        doc="Lifecycle history of builds.",
    ),
    "exposures": _s(
        _f("exposure_id", S, "JWST exposure name (file name without _uncal.fits)", True),
        _f("version", I64, "1, 2, ... for each reissue with different content", True),
        _f("pixels_id", S, "product id of the pixel payload (kind uncal)"),
        _f("pointing_id", S, "product id of the pointing metadata (kind pointing)"),
        _f("sdp_ver", S, "SDP version that wrote the level-1b file"),
        _f("eph_type", S, "ephemeris type (PREDICTED, DEFINITIVE)"),
        _f("filename", S, "ingested file name"),
        _f("program", S, "program number"),
        _f("instrument", S, "instrument name"),
        _f("detector", S, "detector name"),
        _f("ingested_at", _TS, "when (UTC)"),
        _f("supersedes", I64, "the version this one replaces, NULL for the first"),
        doc="Ingested level-1b exposures; a reissue is a new version, never an overwrite.",
    ),
    "associations": _s(
        _f("asn_name", S, "stage-3 product name (jw<ppppp>-o<ooo>_t<ttt>_<instrument>_<optics>)", True),
        _f("exposure_id", S, "a member exposure", True),
        _f("exptype", S, "member type (science, background, ...)"),
        _f("asn_json", S, "the whole association as JSON (JWST _asn.json shape)"),
        _f("recorded_at", _TS, "when (UTC); the latest recording of a name is current"),
        doc="Stage-3 associations, one row per member.",
    ),
    "tombstones": _s(
        _f("product_id", S, "an object whose payload was garbage-collected", True),
        _f("reason", S, "why"),
        _f("at", _TS, "when (UTC)"),
        doc="Objects deliberately removed from the store; their rows stay.",
    ),
    "diffs": _s(
        _f("diff_id", S, "id of the comparison", True),
        _f("build_a", S, "first build"),
        _f("build_b", S, "second build"),
        _f("subject", S, "exposure or association"),
        _f("product_kind", S, "kind compared"),
        _f("product_a", S, "product id in build a"),
        _f("product_b", S, "product id in build b"),
        _f("identical", B, "true if the product ids are equal"),
        _f("metric", S, "name of a comparison metric"),
        _f("value", F64, "its value"),
        _f("detail_json", S, "anything else, as JSON"),
        _f("at", _TS, "when (UTC)"),
        doc="Results of comparing one build's products against another's.",
    ),
}

# Files of one batch are written in this order, so a row that names another table's row is
# never visible before it (products before realisations, realisations before run steps).
WRITE_ORDER = ("products", "recipes", "recipe_inputs", "recipe_refs", "exposures",
               "associations", "builds", "build_events", "realisations", "runs", "run_steps", "tombstones", "diffs")


def schema(table: str) -> pa.Schema:
    """The schema of ``table``; a clear error for an unknown name."""
    from store.errors import CatalogError

    try:
        return TABLES[table]
    except KeyError:
        raise CatalogError(f"no catalog table {table!r}; tables: {', '.join(TABLES)}") from None


def column_docs(table: str) -> list[tuple[str, str, str]]:
    """(column, type, doc) for each column of ``table`` (used to write docs/catalog.md)."""
    return [(f.name, str(f.type), (f.metadata or {}).get(b"doc", b"").decode())
            for f in schema(table)]
