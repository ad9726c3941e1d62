"""Build lifecycle integrity over the catalog: what was recorded, whether a build's context
resolves for the data, whether a candidate has been run, and recording a change.

``catalogs.builds.BuildBook`` keeps the manifests; this module is the part that needs the
catalog (and the CRDS cache). docs/builds.md (the lifecycle) and docs/integrity.md describe the
rules:

- ``check_context(catalog, crds_path, build)``: a build leaves development (and becomes
  operations, or is restored by a rollback) only if its pinned context is in the CRDS cache and
  CRDS selects every reference its plan needs for every current exposure's mode.
- ``candidate_evidence(catalog, build)``: promotion to operations needs a recorded successful
  candidate run: since the build became a candidate, at least one run under it ended ``ok``,
  and every current exposure has a successful stage under it in a finished run (``ok`` or
  ``partial``), written after that exposure's current version was ingested.
- ``record_change(catalog, store, builds, events)``: the store copy of the manifests and rows
  (a record object, see catalogs/recovery.py), then one catalog batch of ``builds`` rows with
  their ``manifest_hash`` and the ``build_events``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from catalogs import builds as buildlib
from catalogs.builds import Build, BuildError
from store.errors import CalopsError
from transforms import registry

# Metadata that picks a mode: what CRDS selects references on for imaging and spectroscopy.
MODE_KEYS = ("instrument.name", "instrument.detector", "exposure.type", "instrument.filter",
             "instrument.pupil", "instrument.grating", "instrument.channel", "instrument.band",
             "instrument.module", "subarray.name", "subarray.xstart", "subarray.ystart",
             "subarray.xsize", "subarray.ysize", "exposure.readpatt", "exposure.nints",
             "exposure.ngroups", "observation.date")


def recorded_manifests(catalog: Any) -> dict[str, tuple[str | None, str | None]]:
    """``{build: (status, manifest_hash)}`` as the catalog last recorded each build. Rows
    written before ``manifest_hash`` existed give the hash of their ``manifest_json``."""
    rows = catalog.sql("SELECT name, status, manifest_hash, manifest_json FROM current_builds"
                       ).to_pylist()
    out: dict[str, tuple[str | None, str | None]] = {}
    for r in rows:
        h = r["manifest_hash"]
        if h is None and r["manifest_json"]:
            try:
                h = buildlib.manifest_hash(json.loads(r["manifest_json"]))
            except (ValueError, AttributeError):
                h = None
        out[r["name"]] = (r["status"], h)
    return out


def build_row(b: Build, now: dt.datetime) -> dict[str, Any]:
    return {"name": b.name, "status": b.status,
            "manifest_json": json.dumps(b.as_dict(), sort_keys=True), "recorded_at": now,
            "manifest_hash": buildlib.manifest_hash(b)}


def record_change(catalog: Any, store: Any, changed: Sequence[Build],
                  events: Sequence[Mapping[str, Any]]) -> None:
    """Record a lifecycle change: a store copy of the new manifests, locks and rows (so the
    builds tables and the manifests can be restored from the store), then the catalog rows."""
    from catalogs.recovery import record_object

    now = dt.datetime.now(dt.timezone.utc)
    rows = {"builds": [build_row(b, now) for b in changed],
            "build_events": [dict(e) for e in events]}
    if store is not None:
        files = {}
        for b in changed:
            files[f"{b.name}.toml"] = buildlib.dump_manifest(b)
            if b.lock is not None:
                files[f"{b.name}.lock.json"] = buildlib.lock_text(b.lock)
        store.put(record_object(rows, files=files, what="build"))
    with catalog.batch("builds") as batch:
        batch.record = store is None  # the record above also carries the manifest texts
        for table, rs in rows.items():
            batch.extend(table, rs)


# --- the context resolves for the data --------------------------------------------------------

def _exposure_metas(catalog: Any) -> list[tuple[str, dict[str, Any]]]:
    rows = catalog.sql(
        "SELECT e.exposure_id, any_value(p.meta_json) AS pix, any_value(q.meta_json) AS pnt "
        "FROM current_exposures e LEFT JOIN products p ON p.product_id = e.pixels_id "
        "LEFT JOIN products q ON q.product_id = e.pointing_id "
        "GROUP BY e.exposure_id ORDER BY e.exposure_id").to_pylist()
    out = []
    for r in rows:
        meta: dict[str, Any] = {}
        for col in ("pix", "pnt"):
            if r[col]:
                try:
                    meta.update(json.loads(r[col]))
                except ValueError:
                    pass
        out.append((r["exposure_id"], {**meta, "filename": r["exposure_id"]}))
    return out


def _short(text: str, n: int = 240) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def check_context(catalog: Any, crds_path: str | os.PathLike, build: Build) -> dict[str, Any]:
    """Refuse (BuildError, one line) unless ``build``'s context is in the CRDS cache at
    ``crds_path`` and CRDS selects, under it, every reference the build's plan needs for every
    current exposure's mode (instrument, detector, EXP_TYPE, optics, subarray, readout...), in
    every stage that calibrates that exposure. Returns what was checked."""
    from catalogs import crds_resolve

    if not build.fixed_context:
        raise BuildError(f"build {build.name} follows the 'latest' CRDS context; pin a fixed "
                         "context before it leaves development")
    ctx = build.crds_context
    maps = Path(crds_path) / "mappings" / "jwst"
    if not (maps / ctx).is_file():
        have = sorted(p.name for p in maps.glob("*.pmap")) if maps.is_dir() else []
        raise BuildError(f"build {build.name} pins CRDS context {ctx}, which is not in the CRDS "
                         f"cache {crds_path} (it has: {', '.join(have) or 'none'}); sync the "
                         "cache or pin a context it has")
    exposures = _exposure_metas(catalog)
    modes: dict[str, str | None] = {}
    failed: dict[str, list[str]] = {}
    for eid, meta in exposures:
        key = json.dumps({k: meta.get(k) for k in MODE_KEYS}, sort_keys=True, default=str)
        if key not in modes:
            modes[key] = _mode_problem(build, meta, ctx, crds_path, crds_resolve)
        if modes[key]:
            failed.setdefault(modes[key], []).append(eid)
    if failed:
        n = sum(len(v) for v in failed.values())
        problem, eids = next(iter(failed.items()))
        raise BuildError(f"build {build.name}: CRDS context {ctx} does not resolve for {n} of "
                         f"{len(exposures)} current exposure(s) (e.g. {eids[0]}: "
                         f"{_short(problem)}); pin a context that covers them")
    return {"context": ctx, "exposures": len(exposures), "modes": len(modes)}


def _mode_problem(build: Build, meta: Mapping[str, Any], ctx: str, crds_path: Any,
                  crds_resolve: Any) -> str | None:
    for st in registry.stages().values():
        if not st.calibrates(meta):
            continue
        try:
            planned = buildlib.plan(build, st.name, meta)
        except BuildError as exc:
            if "was locked before stage" in str(exc):
                continue  # a build that predates a stage never runs it
            return f"{st.name}: {exc}"
        reftypes = sorted({r for p in planned if not p.skip for r in p.spec.reftypes})
        if not reftypes:
            continue
        try:
            crds_resolve.resolve(meta, reftypes, ctx, crds_path)
        except CalopsError as exc:
            return f"{st.name}: {exc}"
        except Exception as exc:  # noqa: BLE001 - a CRDS failure on odd metadata
            return f"{st.name}: CRDS failed ({type(exc).__name__}: {exc})"
    return None


# --- a recorded successful candidate run ------------------------------------------------------

EVIDENCE_SQL = """
WITH since AS (
    SELECT coalesce(max("at"), CAST($2 AS TIMESTAMPTZ)) AS t
    FROM build_events WHERE build = $1 AND to_status = 'candidate'
),
finished AS (
    SELECT run_id, status FROM latest_runs
    WHERE build = $1 AND status IN ('ok', 'partial') AND started_at >= (SELECT t FROM since)
),
covered AS (
    SELECT DISTINCT e.exposure_id
    FROM current_exposures e
    JOIN run_steps s ON s.subject = e.exposure_id AND s.build = $1 AND s.status = 'ok'
         AND (e.ingested_at IS NULL OR s."at" >= e.ingested_at)
    JOIN finished f ON f.run_id = s.run_id
)
SELECT (SELECT count(*) FROM finished WHERE status = 'ok') AS ok_runs,
       (SELECT count(*) FROM current_exposures) AS exposures,
       (SELECT list(exposure_id ORDER BY exposure_id) FROM current_exposures
        WHERE exposure_id NOT IN (SELECT exposure_id FROM covered)) AS uncovered
"""


def candidate_evidence(catalog: Any, build: Build) -> dict[str, Any]:
    """The recorded successful candidate run that promotion to operations requires (see the
    module docstring), or a BuildError saying what is missing."""
    since = f"{build.candidate_date}T00:00:00+00:00" if build.candidate_date else \
        "1970-01-01T00:00:00+00:00"
    row = catalog.sql(EVIDENCE_SQL, [build.name, since]).to_pylist()[0]
    if not row["ok_runs"]:
        raise BuildError(f"build {build.name} has no successful candidate run recorded since it "
                         f"became a candidate; run it over the current exposures (calops "
                         f"reprocess --build {build.name}) and promote it again")
    if not row["exposures"]:
        raise BuildError(f"build {build.name}: no exposures are ingested, so no candidate run can "
                         "show it works; ingest and run a representative set first")
    uncovered = row["uncovered"] or []
    if uncovered:
        raise BuildError(f"build {build.name}'s candidate runs do not cover {len(uncovered)} of "
                         f"{row['exposures']} current exposure(s) (e.g. {uncovered[0]}); run "
                         f"`calops reprocess --build {build.name}` until every exposure succeeds")
    return {"ok_runs": row["ok_runs"], "exposures": row["exposures"]}


def previous_operations(catalog: Any, current: Build) -> str | None:
    """The build that was operations before ``current`` (the one its promotion archived), from
    the recorded events; None if the catalog does not say."""
    rows = catalog.sql(
        "WITH promoted AS (SELECT max(\"at\") AS t FROM build_events WHERE build = $1 "
        "AND to_status = 'operations') "
        "SELECT build FROM build_events WHERE from_status = 'operations' AND to_status = "
        "'archived' AND build <> $1 AND \"at\" <= coalesce((SELECT t FROM promoted), now()) "
        "ORDER BY \"at\" DESC LIMIT 1", [current.name]).to_pylist()
    return rows[0]["build"] if rows else None
