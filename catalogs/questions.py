"""Provenance questions as SQL over the catalog, each one a function returning an Arrow table.

Every question's SQL is a module-level constant: ``docs/cookbook.md`` shows the very same text
(a test checks it), so what a user pastes into ``calops sql`` is what ``calops ask`` runs.
Parameters are DuckDB's numbered placeholders (``$1``, ``$2``); in ``calops sql`` replace them
with literals.

The provenance graph (docs/catalog.md): a product is realised by a recipe (``realisations``);
a recipe reads its inputs by role (``recipe_inputs``: stored products, or the recipe key of an
in-memory intermediate); ``lineage_edges`` is that graph as child -> parent edges. A stage's
output recipe (``<stage>:<output>``) reads the stage's last step by the role ``recipe``; the
builds that made or reused a product are the builds of the ``run_steps`` rows of that step.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from store.errors import CatalogError
from transforms import registry

# --- shared SQL pieces (kept textual so each question reads as one statement) ----------------

_PRODUCTS = """prods AS (  -- one row per product id
    SELECT product_id, any_value(kind) AS kind, any_value(subject) AS subject
    FROM products GROUP BY product_id
)"""

_MADE = """made AS (  -- product -> the step recipe that made it: a stage output's last step
           -- (its 'recipe' input), or the step itself for a saved intermediate
    SELECT DISTINCT r.product_id, coalesce(i.input_id, r.recipe_key) AS step_key
    FROM realisations r
    LEFT JOIN recipe_inputs i ON i.recipe_key = r.recipe_key AND i.role = 'recipe'
)"""

_PRODUCT_BUILDS = """product_builds AS (  -- builds whose runs made or reused each product
    SELECT DISTINCT m.product_id, s.build
    FROM made m JOIN run_steps s ON s.recipe_key = m.step_key AND s.status = 'ok'
)"""

# --- 1. products whose lineage includes a predicted ephemeris --------------------------------

PREDICTED_EPHEMERIS_SQL = f"""WITH RECURSIVE
predicted AS (  -- pointing products of exposure versions with a predicted ephemeris
    SELECT exposure_id, version, pointing_id FROM exposures WHERE upper(eph_type) = 'PREDICTED'
),
down(node, exposure_id, version) AS (  -- everything made from them
    SELECT pointing_id, exposure_id, version FROM predicted
    UNION
    SELECT e.child, d.exposure_id, d.version
    FROM down d JOIN lineage_edges e ON e.parent = d.node
),
{_PRODUCTS}
SELECT p.product_id, p.kind, p.subject,
       list(DISTINCT d.exposure_id || ' v' || d.version
            ORDER BY d.exposure_id || ' v' || d.version) AS predicted_exposures,
       bool_or(c.exposure_id IS NULL) AS reissued_since
FROM down d
JOIN prods p ON p.product_id = d.node
LEFT JOIN current_exposures c ON c.exposure_id = d.exposure_id AND c.version = d.version
WHERE p.kind <> 'pointing'
GROUP BY p.product_id, p.kind, p.subject
ORDER BY p.kind, p.subject, p.product_id"""

# --- 2. products made with a reference file (and their descendants) --------------------------

USES_REFERENCE_SQL = f"""WITH RECURSIVE
users AS (  -- recipes that read the file ($1: its name, or its content hash)
    SELECT DISTINCT recipe_key FROM recipe_refs WHERE filename = $1 OR ref_hash = $1
),
{_PRODUCTS},
down(node, generation) AS (  -- generation: stored products passed on the way
    SELECT recipe_key, 0 FROM users
    UNION
    SELECT e.child, d.generation + CASE WHEN p.product_id IS NULL THEN 0 ELSE 1 END
    FROM down d
    JOIN lineage_edges e ON e.parent = d.node
    LEFT JOIN prods p ON p.product_id = d.node
    WHERE $2 OR p.product_id IS NULL  -- $2 true: go on through products to descendants
),
{_MADE},
{_PRODUCT_BUILDS}
SELECT p.product_id, p.kind, p.subject, min(d.generation) AS generation,
       coalesce(list(DISTINCT b.build ORDER BY b.build)
                FILTER (WHERE b.build IS NOT NULL), []) AS builds
FROM down d
JOIN prods p ON p.product_id = d.node
LEFT JOIN product_builds b ON b.product_id = p.product_id
GROUP BY p.product_id, p.kind, p.subject
ORDER BY generation, p.kind, p.subject, p.product_id"""

# --- 3. products made by archived builds ----------------------------------------------------

ARCHIVED_BUILDS_SQL = f"""WITH
{_MADE},
{_PRODUCT_BUILDS},
{_PRODUCTS}
SELECT p.product_id, p.kind, p.subject,
       list(DISTINCT pb.build ORDER BY pb.build)
           FILTER (WHERE b.status = 'archived') AS archived_builds,
       coalesce(list(DISTINCT pb.build ORDER BY pb.build)
           FILTER (WHERE b.status IS DISTINCT FROM 'archived'), []) AS live_builds
FROM product_builds pb
JOIN prods p ON p.product_id = pb.product_id
LEFT JOIN current_builds b ON b.name = pb.build
GROUP BY p.product_id, p.kind, p.subject
HAVING count(*) FILTER (WHERE b.status = 'archived') > 0
ORDER BY p.kind, p.subject, p.product_id"""

# --- 4. everything about one product --------------------------------------------------------

PROVENANCE_SQL = f"""WITH RECURSIVE
up(node) AS (  -- the product ($1) and everything it was made from
    SELECT CAST($1 AS VARCHAR)
    UNION
    SELECT e.parent FROM up JOIN lineage_edges e ON e.child = up.node
),
{_MADE},
recipe AS (
    SELECT recipe_key, any_value(step) AS step, any_value(params_json) AS params_json
    FROM recipes GROUP BY recipe_key
),
lineage_exposures AS (  -- exposure versions whose pixels (and pointing, if used) it was made from
    SELECT x.*, x.pointing_id IN (SELECT node FROM up) AS pointing_used
    FROM exposures x
    WHERE x.pixels_id IN (SELECT node FROM up)
      AND (x.pointing_id IN (SELECT node FROM up) OR NOT EXISTS (
          SELECT 1 FROM exposures y WHERE y.exposure_id = x.exposure_id
          AND y.pixels_id IN (SELECT node FROM up) AND y.pointing_id IN (SELECT node FROM up)))
),
facts AS (
    SELECT 1 AS o, 'product' AS section, CAST(NULL AS VARCHAR) AS step, 'kind' AS name,
           CAST(any_value(kind) AS VARCHAR) AS value, CAST(any_value(subject) AS VARCHAR) AS detail
    FROM products WHERE product_id = $1
    UNION ALL
    SELECT DISTINCT 2, 'build', s.stage, s.build, coalesce(b.status, 'not recorded'),
           b.manifest_json::JSON ->> 'pipeline_version'
    FROM made m JOIN run_steps s ON s.recipe_key = m.step_key AND s.status = 'ok'
    LEFT JOIN current_builds b ON b.name = s.build
    WHERE m.product_id = $1
    UNION ALL
    SELECT DISTINCT 3, 'crds_context', s.stage, s.build, s.crds_context, NULL
    FROM made m JOIN run_steps s ON s.recipe_key = m.step_key AND s.status = 'ok'
    WHERE m.product_id = $1
    UNION ALL
    SELECT DISTINCT 4, 'reference', r.step, rr.reftype, rr.filename, rr.ref_hash
    FROM up JOIN recipe r ON r.recipe_key = up.node
    JOIN recipe_refs rr ON rr.recipe_key = up.node
    UNION ALL
    SELECT DISTINCT 5, 'parameter', r.step, j.key, j.value ->> '$', j.type
    FROM up JOIN recipe r ON r.recipe_key = up.node, json_each(r.params_json) j
    WHERE r.step NOT LIKE '%:%'  -- stage-output recipes only name an output
    UNION ALL
    SELECT 6, 'sdp_version', NULL, exposure_id || ' v' || version, sdp_ver,
           CASE WHEN pointing_used THEN 'pixels and pointing' ELSE 'pixels only' END
    FROM lineage_exposures
    UNION ALL
    SELECT 7, 'ephemeris', NULL, exposure_id || ' v' || version, eph_type,
           CASE WHEN pointing_used THEN 'pointing used'
                ELSE 'pointing not used (stage-1 product)' END
    FROM lineage_exposures
)
SELECT section, step, name, value, detail FROM facts
ORDER BY o, step NULLS FIRST, name, value"""

# --- 5. what a new CRDS context would affect: the references used now ------------------------

AFFECTED_USED_SQL = """WITH
latest AS (  -- the latest successful run of each subject and stage under the build ($1)
    SELECT subject, stage, arg_max(run_id, "at") AS run_id
    FROM run_steps WHERE build = $1 AND status = 'ok' GROUP BY subject, stage
),
current_subjects AS (
    SELECT exposure_id AS subject FROM current_exposures
    UNION SELECT asn_name FROM current_associations
)
SELECT DISTINCT l.subject, l.stage, s.step, s.recipe_key, s.product_id AS outputs,
       rr.reftype, rr.filename
FROM latest l
JOIN current_subjects c ON c.subject = l.subject
JOIN run_steps s ON s.run_id = l.run_id AND s.subject = l.subject AND s.stage = l.stage
                AND s.status = 'ok'
LEFT JOIN recipe_refs rr ON rr.recipe_key = s.recipe_key
ORDER BY l.subject, l.stage, s.step, rr.reftype"""

STAGE_INPUTS_SQL = """SELECT DISTINCT i.role, i.input_id
FROM recipe_inputs i JOIN products p ON p.product_id = i.input_id
WHERE i.recipe_key IN (SELECT unnest($1::VARCHAR[]))
ORDER BY i.role"""

# --- 6. nondeterministic recipes ------------------------------------------------------------

NONDETERMINISTIC_SQL = """SELECT n.recipe_key, r.step, r.step_version, n.n_products, n.product_ids,
       list(DISTINCT p.subject ORDER BY p.subject) AS subjects,
       list(DISTINCT re.run_id ORDER BY re.run_id) AS runs
FROM nondeterministic_recipes n
LEFT JOIN (SELECT recipe_key, any_value(step) AS step, any_value(step_version) AS step_version
           FROM recipes GROUP BY recipe_key) r ON r.recipe_key = n.recipe_key
LEFT JOIN realisations re ON re.recipe_key = n.recipe_key
LEFT JOIN products p ON p.product_id = re.product_id
GROUP BY n.recipe_key, r.step, r.step_version, n.n_products, n.product_ids
ORDER BY r.step, n.recipe_key"""

QUESTIONS = {
    "predicted-ephemeris": PREDICTED_EPHEMERIS_SQL,
    "uses-reference": USES_REFERENCE_SQL,
    "archived-builds": ARCHIVED_BUILDS_SQL,
    "provenance": PROVENANCE_SQL,
    "affected (references used now)": AFFECTED_USED_SQL,
    "nondeterministic": NONDETERMINISTIC_SQL,
}


# --- the questions as functions --------------------------------------------------------------

def predicted_ephemeris(catalog: Any) -> pa.Table:
    """Products whose lineage includes a PREDICTED ephemeris (``reissued_since``: a newer
    version of that exposure has been ingested, so reprocessing would change them)."""
    return catalog.sql(PREDICTED_EPHEMERIS_SQL)


def uses_reference(catalog: Any, reference: str, descendants: bool = False) -> pa.Table:
    """Products made with a reference file (a name, a path or a content hash); with
    ``descendants`` also everything made from them (``generation`` 1, 2, ...)."""
    ref = reference.strip()
    if not ref:
        raise CatalogError("name a reference file (e.g. jwst_nircam_dark_0001.fits) or its hash")
    key = ref if ref.startswith(("sha256:", "b3:")) else os.path.basename(ref)
    known = catalog.sql("SELECT count(*) AS n FROM recipe_refs WHERE filename = $1 OR "
                        "ref_hash = $1", [key]).column(0)[0].as_py()
    if not known:
        raise CatalogError(f"no recipe in the catalog used reference {key!r}; list the "
                           "references in use with: calops sql \"SELECT DISTINCT reftype, "
                           "filename FROM recipe_refs ORDER BY 1, 2\"")
    return catalog.sql(USES_REFERENCE_SQL, [key, bool(descendants)])


def archived_builds(catalog: Any) -> pa.Table:
    """Products made (or reused) by builds whose recorded status is archived; ``live_builds``
    lists the other builds that made the same product."""
    return catalog.sql(ARCHIVED_BUILDS_SQL)


def provenance(catalog: Any, product_id: str) -> pa.Table:
    """One product's build(s) and the CRDS context each ran it under, every reference and
    parameter of every step in its lineage, and the SDP version and ephemeris type of each
    exposure version it came from, as rows ``(section, step, name, value, detail)``."""
    from catalogs.lineage import resolve

    pid = resolve(catalog, product_id)
    if not catalog.sql("SELECT 1 FROM products WHERE product_id = $1 LIMIT 1", [pid]).num_rows:
        raise CatalogError(f"{pid} is a recipe key, not a product; give a product id")
    return catalog.sql(PROVENANCE_SQL, [pid])


def integrity_rows(catalog: Any, store: Any, product_id: str) -> list[dict[str, Any]]:
    """Provenance rows ``(section 'integrity', step, name = product id, value = 'corrupt' or
    'missing from the store', detail)`` for ``product_id`` and every stored product in its
    lineage whose object fails verification (none if all are intact)."""
    from catalogs.lineage import object_problems, resolve, upstream

    pid = resolve(catalog, product_id)
    nodes = [r for r in upstream(catalog, pid).to_pylist() if r["node_type"] == "product"]
    ids = [pid] + [r["id"] for r in nodes if r["id"] != pid]
    kinds = {r["id"]: r["kind"] for r in nodes}
    return [{"section": "integrity", "step": None, "name": ident, "value": problem,
             "detail": ("this product" if ident == pid else f"a {kinds.get(ident) or 'product'} "
                        "it was made from") + ": re-run its recipe or re-ingest its file"}
            for ident, problem in object_problems(store, ids).items()]


def with_integrity(table: pa.Table, rows: list[dict[str, Any]]) -> pa.Table:
    """A provenance table with integrity rows first."""
    if not rows:
        return table
    return pa.concat_tables([pa.Table.from_pylist(rows, schema=table.schema), table])


def nondeterministic(catalog: Any) -> pa.Table:
    """Recipes realised as more than one distinct product (same recipe, different bytes)."""
    return catalog.sql(NONDETERMINISTIC_SQL)


# --- builds into the catalog -----------------------------------------------------------------

def record_builds(catalog: Any, builds: Iterable[Any], writer_id: str = "builds-sync") -> int:
    """Record each build manifest whose status or content differs from the latest ``builds``
    row (questions join on ``current_builds``); returns the number of rows written."""
    import datetime as dt

    rows = catalog.sql("SELECT name, status, manifest_json FROM current_builds").to_pylist()
    have = {r["name"]: (r["status"], r["manifest_json"]) for r in rows}
    now = dt.datetime.now(dt.timezone.utc)
    new = []
    for b in builds:
        from catalogs.builds import manifest_hash

        text = json.dumps(b.as_dict(), sort_keys=True)
        if have.get(b.name) != (b.status, text):
            new.append({"name": b.name, "status": b.status, "manifest_json": text,
                        "recorded_at": now, "manifest_hash": manifest_hash(b)})
    if new:
        catalog.write("builds", new, writer_id)
    return len(new)


# --- what a new CRDS context would affect -----------------------------------------------------

AFFECTED_COLUMNS = ("subject", "stage", "step", "reftype", "old_file", "new_file", "reason",
                    "products")


def affected(catalog: Any, build: Any, new_context: str, crds_path: str | os.PathLike) -> pa.Table:
    """What running ``build`` with ``new_context`` would change, before anything runs.

    For the latest successful run of each current exposure (and association) under ``build``,
    every non-skipped step's references are chosen again by CRDS under ``new_context`` (from
    the same metadata the runner selects with) and compared with the files recorded for that
    run. A changed file changes the step's recipe and so the stage's products; a stage whose
    input changes is affected too (image2 after detector1, image3 after any member's image2).
    Rows: ``subject, stage, step, reftype, old_file, new_file, reason, products`` (the products
    of that stage under ``build`` that would be replaced)."""
    from catalogs import builds as buildlib
    from catalogs.crds_resolve import CrdsResolutionError, resolve_with_optional

    used = catalog.sql(AFFECTED_USED_SQL, [build.name]).to_pylist()
    if not used:
        raise CatalogError(f"build {build.name} has no successful runs of current exposures in "
                           "the catalog; nothing to compare against")
    stages: dict[tuple[str, str], dict[str, Any]] = {}
    for r in used:
        st = stages.setdefault((r["subject"], r["stage"]),
                               {"keys": set(), "refs": defaultdict(dict), "outputs": {}})
        st["keys"].add(r["recipe_key"])
        if r["reftype"]:
            st["refs"][r["step"]][r["reftype"]] = r["filename"]
        if r["outputs"] and r["outputs"].startswith("{"):
            st["outputs"] = json.loads(r["outputs"])
    rows: list[dict[str, Any]] = []
    changed: set[tuple[str, str]] = set()
    for (subject, stage), st in sorted(stages.items()):
        meta = _selection_meta(catalog, subject, stage, st["keys"])
        for p in buildlib.plan(build, stage, meta):
            types = p.spec.reftypes + p.spec.optional_reftypes
            if p.skip or not types:
                continue
            old = {r: st["refs"].get(p.spec.name, {}).get(r, "N/A") for r in types}
            try:  # as the runner resolves them: optional ones only when the context has them
                paths = resolve_with_optional(meta, p.spec.reftypes, p.spec.optional_reftypes,
                                              new_context, crds_path)
                new = {r: os.path.basename(paths[r]) if paths.get(r, "N/A") != "N/A" else "N/A"
                       for r in types}
                note = "reference changes"
            except CrdsResolutionError as exc:
                new = {r: None for r in types}
                note = f"CRDS cannot select under {new_context}: {exc}"
            for r in types:
                if old[r] != new[r]:
                    changed.add((subject, stage))
                    rows.append({"subject": subject, "stage": stage, "step": p.spec.name,
                                 "reftype": r, "old_file": old[r], "new_file": new[r],
                                 "reason": note,
                                 "products": sorted(st["outputs"].values())})
    # Propagate, upstream first: a changed stage changes the stages that read its products.
    members = _association_members(catalog)
    table = registry.stages()
    order = {name: i for i, name in enumerate(table)}
    for (subject, stage), st in sorted(stages.items(), key=lambda kv: order.get(kv[0][1], 99)):
        if (subject, stage) in changed or stage not in table:
            continue
        decl, why = table[stage], None
        if decl.subject == "exposure":
            hit = [u for u in decl.upstream if (subject, u) in changed]
            if hit:
                why = f"input changes: {', '.join(hit)} of this exposure"
        else:
            hit = sorted(e for e in members.get(subject, ())
                         if any((e, u) in changed for u in table))
            if hit:
                why = f"input changes: {', '.join(decl.upstream)} of member " + ", ".join(hit)
        if why:
            changed.add((subject, stage))
            rows.append({"subject": subject, "stage": stage, "step": None, "reftype": None,
                         "old_file": None, "new_file": None, "reason": why,
                         "products": sorted(st["outputs"].values())})
    rows.sort(key=lambda r: (order.get(r["stage"], 99), r["subject"], r["step"] or "",
                             r["reftype"] or ""))
    schema = pa.schema([(c, pa.list_(pa.string()) if c == "products" else pa.string())
                        for c in AFFECTED_COLUMNS])
    return pa.Table.from_pylist(rows, schema=schema)


def _selection_meta(catalog: Any, subject: str, stage: str, keys: Iterable[str]) -> dict[str, Any]:
    """The metadata CRDS selects with, as the runner builds it (flows/stages.recipe_for): the
    stage input's metadata, then the pointing's; stage 3 uses its first member's."""
    inputs = catalog.sql(STAGE_INPUTS_SQL, [sorted(k for k in keys if k)]).to_pylist()
    by_role = {r["role"]: r["input_id"] for r in inputs}
    member = sorted(k for k in by_role if k.startswith("member:"))
    if member:
        return {**catalog.product_meta(by_role[member[0]]), "association.name": subject}
    meta: dict[str, Any] = {}
    for role in ["input"] + sorted(r for r in by_role if r != "input"):
        if role in by_role:
            meta.update(catalog.product_meta(by_role[role]))
    if not meta:
        raise CatalogError(f"{stage} of {subject} has no recorded stored input")
    return meta


def _association_members(catalog: Any) -> Mapping[str, list[str]]:
    rows = catalog.sql("SELECT asn_name, exposure_id FROM current_associations").to_pylist()
    out: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        out[r["asn_name"]].append(r["exposure_id"])
    return out
