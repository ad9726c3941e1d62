"""What each stage reads and how it runs: the glue between the catalog, the runner and the
science chains in transforms/."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import crds  # noqa: F401  (imported once here: crds's lazy imports are not thread-safe)

import transforms.detector1  # noqa: F401  (the chains, imported before any worker thread)
import transforms.image2  # noqa: F401
import transforms.image3  # noqa: F401
from catalogs import builds as buildlib
from flows.runner import RunError, StageOutcome, StageRecipe, plan_stage, run_stage
from transforms.model import DataModel


def _chain(stage: str) -> Callable:
    """The pure chain function of a stage, called with (data, [(StepRecipe, refs)], on_step)."""

    def chain(data: Any, steps: Sequence[tuple[Any, Mapping[str, DataModel]]], on_step: Any):
        if stage == "detector1":
            plan = [transforms.detector1.PlannedStep(s.planned.spec, s.planned.params, refs, s.skip)
                    for s, refs in steps]
            return transforms.detector1.run(data, plan, on_step=on_step)
        plan = [(s.planned.spec, s.planned.params, refs, s.skip) for s, refs in steps]
        mod = transforms.image2 if stage == "image2" else transforms.image3
        return mod.run(data, plan)

    return chain


def _build(ws: Any, name: str) -> tuple[buildlib.Build, str]:
    b = ws.builds.get(name)
    buildlib.require_runnable(b)
    return b, buildlib.resolve_context(b, ws.crds_contexts())


def recipe_for(ws: Any, build: str, stage: str, subject: str) -> tuple[StageRecipe, Callable[[], Any]]:
    """The stage's recipe (keys computed, nothing run) and a loader of its inputs."""
    b, ctx = _build(ws, build)
    if stage == "detector1":
        exp = _exposure(ws, subject)
        meta = ws.catalog.product_meta(exp["pixels_id"])
        recipe = plan_stage(stage, subject, b, ctx, ws.crds_path, meta, {"input": exp["pixels_id"]})
        return recipe, lambda: ws.store.get(exp["pixels_id"])
    if stage == "image2":
        exp = _exposure(ws, subject)
        rate_id = _upstream_output(ws, build, "detector1", subject, "rate")
        meta = {**ws.catalog.product_meta(rate_id), **ws.catalog.product_meta(exp["pointing_id"])}
        recipe = plan_stage(stage, subject, b, ctx, ws.crds_path, meta,
                            {"input": rate_id, "pointing": exp["pointing_id"]})

        def load() -> DataModel:
            rate, pointing = ws.store.get(rate_id), ws.store.get(exp["pointing_id"])
            return rate.replace(meta=dict(pointing.meta))

        return recipe, load
    if stage == "image3":
        members = ws.catalog.association_members(subject)
        cal_ids = {f"member:{e}": _upstream_output(ws, build, "image2", e, "cal") for e in members}
        meta = ws.catalog.product_meta(next(iter(cal_ids.values())))
        meta = {**meta, "association.name": subject}
        recipe = plan_stage(stage, subject, b, ctx, ws.crds_path, meta, cal_ids)
        return recipe, lambda: tuple(ws.store.get(cal_ids[k]) for k in sorted(cal_ids))
    raise RunError(f"unknown stage {stage!r}; stages: detector1, image2, image3")


def _exposure(ws: Any, eid: str) -> Mapping[str, Any]:
    exp = ws.catalog.current_exposure(eid)
    if exp is None:
        raise RunError(f"exposure {eid} is not in the catalog; ingest it first (calops ingest)")
    return exp


def _upstream_output(ws: Any, build: str, stage: str, subject: str, name: str) -> str:
    """The product id an earlier stage made for this subject under this build."""
    recipe, _ = recipe_for(ws, build, stage, subject)
    pids = ws.catalog.realisations(recipe.output_keys[name])
    if not pids:
        raise RunError(f"{subject} has no {name} from {stage} under build {build}; run {stage} first")
    return pids[0]


def run(ws: Any, build: str, stage: str, subject: str, run_id: str,
        save_intermediates: bool = False) -> StageOutcome:
    """Run one stage for one subject; every failure is recorded and returned, not raised."""
    try:
        recipe, load = recipe_for(ws, build, stage, subject)
    except Exception as exc:  # noqa: BLE001 - recorded as this subject's failure
        out = StageOutcome(stage, subject, build, status="failed", error=f"{type(exc).__name__}: {exc}")
        ws.catalog.record_failure(run_id, build, stage, subject, out.error)
        return out
    return run_stage(ws, recipe, load, _chain(stage), run_id, save_intermediates)


def select_exposures(ws: Any, where: str | None) -> list[str]:
    """Current exposure ids, optionally those a SQL WHERE clause over `exposures` selects."""
    return ws.catalog.current_exposure_ids(where)


def associations(ws: Any, exposures: Sequence[str], touching: Sequence[str] | None = None
                 ) -> list[str]:
    """Stage-3 associations of these exposures (recorded in the catalog), by product name;
    with ``touching``, only those with a member among them (an association is always formed
    from every exposure given, so reprocessing one member never shrinks it)."""
    from transforms.associations import image3_associations

    metas = [{**ws.catalog.product_meta(_exposure(ws, e)["pixels_id"]), "filename": e}
             for e in exposures]
    asns = image3_associations(metas)
    ws.catalog.record_associations(asns)
    want = None if touching is None else set(touching)
    return sorted(p["name"] for a in asns for p in a["products"]
                  if want is None or want & {str(m["expname"]) for m in p["members"]})
