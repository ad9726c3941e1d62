"""What each stage reads and how it runs: the glue between the catalog, the runner and the
science chains in transforms/, driven by the stage table (``transforms.registry.stages()``).

A stage declares what it reads (``exposure:pixels``, ``exposure:pointing``, or an earlier
stage's output for the same subject or for every member of an association). The first read is
the chain's input (role ``input``; ``member:<exposure>`` for association members); the others
add their metadata to it under their own role (``pointing``), so an ephemeris reissue changes
only the stages that read the pointing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import crds  # noqa: F401  (imported once here: crds's lazy imports are not thread-safe)

from catalogs import builds as buildlib
from catalogs.recipes import Rows, failure_rows
from flows.runner import RunError, StageOutcome, StageRecipe, plan_stage, run_stage
from flows.workspace import Workspace
from transforms import registry
from transforms.model import DataModel

registry.stages()  # the chains, imported before any worker thread


def _build(ws: Workspace, name: str) -> tuple[buildlib.Build, str]:
    b = ws.builds.get(name)
    buildlib.require_runnable(b)
    return b, buildlib.resolve_context(b, ws.crds_contexts())


def _read(ws: Workspace, build: str, source: str, subject: str) -> str:
    """The product id a stage reads: ``exposure:<pixels|pointing>`` or ``<stage>:<output>``."""
    origin, what = source.split(":", 1)
    if origin == "exposure":
        return _exposure(ws, subject)[f"{what}_id"]
    return _upstream_output(ws, build, origin, subject, what)


def recipe_for(ws: Workspace, build: str, stage: str, subject: str
               ) -> tuple[StageRecipe, Callable[[], Any]]:
    """The stage's recipe (keys computed, nothing run) and a loader of its inputs."""
    try:
        st = registry.stage(stage)
    except registry.UnknownStep as exc:
        raise RunError(str(exc)) from None
    b, ctx = _build(ws, build)
    if st.subject == "association":
        (source,) = st.reads
        ids, left_out = {}, {}
        for e in ws.catalog.association_members(subject):
            why_not = st.exclusion(ws.catalog.product_meta(_exposure(ws, e)["pixels_id"]))
            if why_not:
                left_out[e] = why_not
                continue
            try:
                ids[f"member:{e}"] = _read(ws, build, source, e)
            except RunError as exc:  # left out, with its reason; the others still combine
                left_out[e] = str(exc).split(";")[0]
        if not ids:
            raise RunError(f"no member of {subject} has its {source}: "
                           + "; ".join(f"{e}: {why}" for e, why in sorted(left_out.items())))
        meta = {**ws.catalog.product_meta(next(iter(ids.values()))), "association.name": subject}
        recipe = plan_stage(stage, subject, b, ctx, ws.crds_path, meta, ids)
        recipe.left_out = left_out
        return recipe, lambda: tuple(ws.store.get(ids[k]) for k in sorted(ids))
    ids = {}
    for i, source in enumerate(st.reads):
        ids["input" if i == 0 else source.split(":", 1)[1]] = _read(ws, build, source, subject)
    meta: dict[str, Any] = {}
    for pid in ids.values():
        meta.update(ws.catalog.product_meta(pid))
    members = _members(ws, st, subject)
    for role, exps in members.items():
        for e in exps:
            for r, source in st.member_reads(role, e):
                try:
                    ids[r] = _read(ws, build, source, e)
                except RunError as exc:
                    raise RunError(f"{role} member {e} of {subject}: {exc}") from None
    recipe = plan_stage(stage, subject, b, ctx, ws.crds_path, meta, ids)

    def load() -> Any:
        science = _merged(ws, [pid for r, pid in ids.items() if ":" not in r])
        if not members:
            return science
        return science, {role: [_merged(ws, [pid for r, pid in ids.items()
                                             if r == f"{role}:{e}" or r.startswith(f"{role}:{e}:")])
                                for e in exps] for role, exps in members.items()}

    return recipe, load


def _merged(ws: Workspace, pids: Sequence[str]) -> DataModel:
    """The first product with the metadata of the others (a rate with its pointing)."""
    models = [ws.store.get(pid) for pid in pids]
    extra: dict[str, Any] = {}
    for m in models[1:]:
        extra.update(m.meta)
    return models[0].replace(meta=extra) if extra else models[0]


def _members(ws: Workspace, st: registry.Stage, subject: str) -> dict[str, list[str]]:
    """The subject's members by role under the stage's level-2 rule, among every current
    exposure."""
    if st.members is None:
        return {}
    rows = ws.catalog.current_exposures()
    metas = ws.catalog.product_metas([r["pixels_id"] for r in rows.values()])
    return st.member_exposures(subject, {e: metas.get(r["pixels_id"], {})
                                         for e, r in rows.items()})


def chain_of(st: registry.Stage) -> Callable[..., Any]:
    """The stage's chain as run_stage calls it: a stage with members gets ``(science,
    members)`` from its loader when the subject has any."""
    if st.members is None:
        return st.run

    def chain(data: Any, plan: Any, on_step: Any = None) -> Any:
        if isinstance(data, tuple):
            return st.run(data[0], plan, on_step, members=data[1])
        return st.run(data, plan, on_step)

    return chain


def _exposure(ws: Workspace, eid: str) -> Mapping[str, Any]:
    exp = ws.catalog.current_exposure(eid)
    if exp is None:
        raise RunError(f"exposure {eid} is not in the catalog; ingest it first (calops ingest)")
    return exp


def _upstream_output(ws: Workspace, build: str, stage: str, subject: str, name: str) -> str:
    """The product id an earlier stage made for this subject under this build."""
    recipe, _ = recipe_for(ws, build, stage, subject)
    pids = ws.catalog.realisations(recipe.output_keys[name])
    if not pids:
        raise RunError(f"{subject} has no {name} from {stage} under build {build}; run {stage} first")
    return pids[0]


def run(ws: Workspace, build: str, stage: str, subject: str, run_id: str,
        save_intermediates: bool = False, sink: list[Rows] | None = None) -> StageOutcome:
    """Run one stage for one subject; every failure is recorded and returned, not raised.
    With a ``sink``, the rows go there instead of straight into the catalog."""
    try:
        recipe, load = recipe_for(ws, build, stage, subject)
    except Exception as exc:  # noqa: BLE001 - recorded as this subject's failure
        out = StageOutcome(stage, subject, build, status="failed", error=f"{type(exc).__name__}: {exc}")
        rows = failure_rows(run_id, build, stage, subject, out.error)
        if sink is None:
            ws.catalog.record(rows, run_id)
        else:
            sink.append(rows)
        return out
    return run_stage(ws, recipe, load, chain_of(registry.stage(stage)), run_id, save_intermediates,
                     sink=sink)


def select_exposures(ws: Workspace, where: str | None) -> list[str]:
    """Current exposure ids, optionally those a SQL WHERE clause over `exposures` selects."""
    return ws.catalog.current_exposure_ids(where)


def exposure_meta(ws: Workspace, exposures: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each exposure's pixel metadata (what selects its stages), with its file name."""
    return {e: {**ws.catalog.product_meta(_exposure(ws, e)["pixels_id"]), "filename": e}
            for e in exposures}


def subjects(ws: Workspace, stage: str, exposures: Sequence[str],
             touching: Sequence[str] | None = None) -> list[str]:
    """The subjects of ``stage`` among ``exposures``: those whose EXP_TYPE the stage
    calibrates, or, for an association stage, the associations its rule forms from them (with
    ``touching``, only those with a member among them: an association is formed from every
    exposure given, so reprocessing one member never shrinks it)."""
    st = registry.stage(stage)
    metas = exposure_meta(ws, exposures)
    if st.subject == "exposure":
        want = set(exposures if touching is None else touching)
        return [e for e in exposures if e in want and st.calibrates(metas[e])]
    asns = st.associate([m for m in metas.values() if st.calibrates(m)])
    if asns:
        ws.catalog.record_associations(asns)
    want = None if touching is None else set(touching)
    return sorted(p["name"] for a in asns for p in a["products"]
                  if want is None or want & {str(m["expname"]) for m in p["members"]})

