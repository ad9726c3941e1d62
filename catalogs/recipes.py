"""What the catalog records, as types: a stage's recipe, what happened when it ran, an ingest.

The runner and ingest build these; ``Catalog.record_*`` turns them into rows (``*_rows``
here), so no other module builds raw catalog rows. The identity rules (DESIGN.md): a step's
``key`` is its recipe key, a stage's outputs are addressed by ``output_key(last step key,
name)``, and a product is recorded before the realisation that names it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from store.identity import recipe_keyer


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class StepRecipe:
    """One planned step with everything its recipe key is made of."""

    name: str
    version: str
    params: dict[str, Any]  # science parameters only (execution-only ones change nothing)
    inputs: dict[str, str]  # role -> product id, or the previous step's recipe key
    refs: dict[str, tuple[str, str]]  # reftype -> (file name, content hash)
    ref_paths: dict[str, str]
    skip: bool
    planned: Any = None  # the build's transforms.registry.PlannedStep
    key: str = ""


@dataclass
class StageRecipe:
    """Every step of one stage for one subject under one build, keys computed before work."""

    stage: str
    subject: str
    build: str
    context: str
    steps: list[StepRecipe]
    inputs: dict[str, str]  # role -> product id of the stage's stored inputs
    output_keys: dict[str, str]  # output name -> recipe key
    left_out: dict[str, str] = field(default_factory=dict)  # association member -> why

    @property
    def key(self) -> str:
        keys = [s.key for s in self.steps if not s.skip]
        return keys[-1] if keys else ""


@dataclass
class StageOutcome:
    """What happened to one stage of one subject in a run."""

    stage: str
    subject: str
    build: str
    outputs: dict[str, str] = field(default_factory=dict)  # output name -> product id
    hit: bool = False
    reason: str = ""
    wall_s: float = 0.0
    peak_mem_bytes: int = 0
    status: str = "ok"
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        # shallow but for ``outputs`` (the only container): asdict's deep copy costs a
        # no-op reprocess of 10^5 exposures half a minute
        d = {f.name: getattr(self, f.name) for f in _OUTCOME_FIELDS}
        d["outputs"] = dict(self.outputs)
        return d


_OUTCOME_FIELDS = dataclasses.fields(StageOutcome)


_OUTPUT_KEYERS: dict[str, Any] = {}


def output_key(stage_key: str, name: str) -> str:
    """The recipe key of one named output of a stage (a stage can make several products)."""
    if name not in _OUTPUT_KEYERS:
        _OUTPUT_KEYERS[name] = recipe_keyer("output", "1", {"name": name})
    return _OUTPUT_KEYERS[name]({"recipe": stage_key}, {})


@dataclass(frozen=True)
class NewProduct:
    """A product a stage stored: its id, kind and metadata, and the recipe that made it."""

    product_id: str
    kind: str
    meta: Mapping[str, Any]
    recipe_key: str


Rows = dict[str, list[dict[str, Any]]]


def _meta_json(meta: Mapping[str, Any]) -> str:
    return json.dumps(dict(meta), sort_keys=True, default=str)


def product_row(pid: str, kind: str, meta: Mapping[str, Any], subject: str,
                at: dt.datetime) -> dict[str, Any]:
    return {"product_id": pid, "kind": kind, "meta_json": _meta_json(meta), "subject": subject,
            "created_at": at}


def stage_rows(run_id: str, recipe: StageRecipe, out: StageOutcome,
               new_products: Mapping[str, NewProduct] = {},
               step_times: Mapping[str, float] = {}) -> Rows:
    """The rows one stage run adds: for a miss its recipes, their inputs and references, the
    new products and their realisations; always one ``run_steps`` row per step."""
    now = utcnow()
    rows: Rows = {t: [] for t in ("recipes", "recipe_inputs", "recipe_refs", "products",
                                  "realisations", "run_steps")}
    if out.status == "ok" and not out.hit:
        for s in recipe.steps:
            if s.skip:
                continue
            rows["recipes"].append({"recipe_key": s.key, "step": s.name, "step_version": s.version,
                                    "params_json": json.dumps(s.params, sort_keys=True, default=str)})
            rows["recipe_inputs"] += [{"recipe_key": s.key, "role": role, "input_id": iid}
                                      for role, iid in s.inputs.items()]
            rows["recipe_refs"] += [{"recipe_key": s.key, "reftype": r, "filename": fname,
                                     "ref_hash": h} for r, (fname, h) in s.refs.items()]
        for name, key in recipe.output_keys.items():
            rows["recipes"].append({"recipe_key": key, "step": f"{recipe.stage}:{name}",
                                    "step_version": "1", "params_json": json.dumps({"name": name})})
            rows["recipe_inputs"].append({"recipe_key": key, "role": "recipe",
                                          "input_id": recipe.key})
        for p in new_products.values():
            rows["products"].append(product_row(p.product_id, p.kind, p.meta, recipe.subject, now))
            rows["realisations"].append({"recipe_key": p.recipe_key, "product_id": p.product_id,
                                         "run_id": run_id, "created_at": now})
    if out.status != "ok":
        rows["run_steps"].append(_run_step(run_id, recipe, out, recipe.stage, recipe.key, now))
        return rows
    base = _run_step(run_id, recipe, out, "", "", now)  # one stage run: its steps differ only in
    for s in recipe.steps:                             # step, key, time and status
        rows["run_steps"].append({**base, "step": s.name, "recipe_key": s.key,
                                  "wall_s": step_times.get(s.name, 0.0),
                                  "status": "skipped" if s.skip else out.status})
    return rows


def _run_step(run_id: str, recipe: StageRecipe, out: StageOutcome, step: str, key: str,
              at: dt.datetime) -> dict[str, Any]:
    reason = out.reason
    if recipe.left_out:
        reason += "; left out: " + ", ".join(f"{m} ({why})" for m, why in
                                             sorted(recipe.left_out.items()))
    return {"run_id": run_id, "build": recipe.build, "subject": recipe.subject,
            "stage": recipe.stage, "step": step, "crds_context": recipe.context,
            "recipe_key": key,
            "product_id": json.dumps(out.outputs, sort_keys=True) if out.outputs else None,
            "cache_hit": out.hit, "reason": reason, "wall_s": out.wall_s,
            "peak_mem_bytes": out.peak_mem_bytes, "status": out.status, "error": out.error,
            "at": at}


def failure_rows(run_id: str, build: str, stage: str, subject: str, error: str) -> Rows:
    """A stage that could not even be planned, as one ``run_steps`` row."""
    return {"run_steps": [{"run_id": run_id, "build": build, "subject": subject, "stage": stage,
                           "step": stage, "status": "failed", "cache_hit": False,
                           "error": error, "at": utcnow()}]}


@dataclass(frozen=True)
class Ingest:
    """One ingested version of an exposure: its stored pixels and pointing and where from."""

    exposure_id: str
    version: int
    pixels_id: str
    pointing_id: str
    pixels_meta: Mapping[str, Any]
    pointing_meta: Mapping[str, Any]
    sdp_ver: str | None
    eph_type: str | None
    filename: str
    program: str
    instrument: str | None
    detector: str | None
    supersedes: int | None


def ingest_rows(rec: Ingest) -> Rows:
    now = utcnow()
    return {
        "products": [product_row(rec.pixels_id, "uncal", rec.pixels_meta, rec.exposure_id, now),
                     product_row(rec.pointing_id, "pointing", rec.pointing_meta,
                                 rec.exposure_id, now)],
        "exposures": [{"exposure_id": rec.exposure_id, "version": rec.version,
                       "pixels_id": rec.pixels_id, "pointing_id": rec.pointing_id,
                       "sdp_ver": rec.sdp_ver, "eph_type": rec.eph_type,
                       "filename": rec.filename, "program": rec.program,
                       "instrument": rec.instrument, "detector": rec.detector,
                       "ingested_at": now, "supersedes": rec.supersedes}],
    }


@dataclass(frozen=True)
class Run:
    """One run of a command or flow: a row when it starts and one when it ends."""

    run_id: str
    build: str
    command: str
    started_at: dt.datetime
    status: str  # running, ok, partial, failed, abandoned
    host: str
    finished_at: dt.datetime | None = None
    summary: Mapping[str, Any] = field(default_factory=dict)


def run_rows(run: Run) -> Rows:
    return {"runs": [{"run_id": run.run_id, "build": run.build, "command": run.command,
                      "started_at": run.started_at, "finished_at": run.finished_at,
                      "status": run.status, "host": run.host,
                      "summary_json": json.dumps(dict(run.summary), default=str)}]}
