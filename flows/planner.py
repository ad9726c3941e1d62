"""Plan a run in bulk, before any task starts and without Prefect.

For every stage of the build, layer by layer (upstream first), every exposure's and
association's recipe is computed: the build's steps for its instrument, the references CRDS
picks (memoised per selector, see catalogs/crds_resolve.py), the input ids. One set-based query
per layer then finds which outputs are realised. A stage whose outputs are all realised and
stored is a **hit**; otherwise it is a **miss** (it runs), and the stages that read its products
**wait** for it (their recipes can only be known once it ran: if it reproduces the same products
they become hits then, the early cutoff). Misses can be explained (``explain=True``): the newest
earlier recipe of the same subject and stage is compared step by step (new data, stale
ephemeris, version, parameter, new reference).

Only misses and waits become Prefect tasks; hits are recorded in bulk.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from catalogs import builds as buildlib
from catalogs.recipes import StageOutcome, StageRecipe
from flows.runner import RunError, plan_stage
from flows.workspace import Workspace
from transforms import registry

HIT, MISS, WAITS, FAILED = "hit", "miss", "waits", "failed"


@dataclass
class Item:
    """One stage of one subject in a planned run."""

    stage: str
    subject: str
    state: str  # hit | miss | waits | failed
    recipe: StageRecipe | None = None
    outputs: dict[str, str] = field(default_factory=dict)  # for a hit: name -> product id
    cause: str = ""  # why it runs (or why it cannot)


@dataclass
class RunPlan:
    build: str
    context: str
    exposures: list[str]
    stages: tuple[str, ...]  # the stages asked for (others are planned only to find inputs)
    items: list[Item]
    seconds: float = 0.0

    def wanted(self) -> list[Item]:
        return [i for i in self.items if i.stage in self.stages]

    def work(self) -> dict[str, list[str]]:
        """stage -> subjects that must run (misses and waits), in stage order."""
        out: dict[str, list[str]] = {}
        for i in self.wanted():
            if i.state in (MISS, WAITS):
                out.setdefault(i.stage, []).append(i.subject)
        return out

    def hits(self) -> list[Item]:
        """Hits to record: of the chosen exposures and of associations (an association's
        other members are planned to find its inputs, not touched)."""
        chosen = set(self.exposures)
        return [i for i in self.wanted() if i.state == HIT
                and (i.subject in chosen or registry.stage(i.stage).subject == "association")]

    def failures(self) -> list[Item]:
        return [i for i in self.wanted() if i.state == FAILED]

    def counts(self) -> dict[str, Counter]:
        out: dict[str, Counter] = {s: Counter() for s in self.stages}
        for i in self.wanted():
            out[i.stage][i.state] += 1
        return out

    def causes(self) -> dict[str, Counter]:
        out: dict[str, Counter] = {s: Counter() for s in self.stages}
        for i in self.wanted():
            if i.state in (MISS, WAITS, FAILED) and i.cause:
                out[i.stage][i.cause] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        """The plan as plain data (``calops reprocess --plan --format json``)."""
        return {"build": self.build, "context": self.context, "seconds": round(self.seconds, 3),
                "exposures": len(self.exposures),
                "stages": {s: {"counts": dict(self.counts()[s]), "causes": dict(self.causes()[s])}
                           for s in self.stages},
                "work": self.work()}


def plan_run(ws: Workspace, build: str, exposures: Sequence[str] | None = None,
             stages: Sequence[str] | None = None, explain: bool = False) -> RunPlan:
    """The whole plan of running ``stages`` (default all) of ``build`` for ``exposures``
    (default: every current exposure). Refuses an archived build or a context the cache lacks
    up front, with one clear error."""
    t0 = time.perf_counter()
    b = ws.builds.get(build)
    buildlib.require_runnable(b)
    ctx = buildlib.resolve_context(b, ws.crds_contexts())
    table = registry.stages()
    wanted = tuple(s for s in table if stages is None or s in stages)
    unknown = sorted(set(stages or ()) - set(table))
    if unknown:
        raise RunError(f"unknown stage {', '.join(unknown)}; stages: {', '.join(table)}")
    rows = ws.catalog.current_exposures()
    chosen = sorted(rows) if exposures is None else [e for e in exposures]
    missing = [e for e in chosen if e not in rows]
    if missing:
        raise RunError(f"exposure {missing[0]} is not in the catalog; ingest it first "
                       f"(calops ingest){f' ({len(missing)} missing)' if len(missing) > 1 else ''}")
    needed = _needed_stages(wanted)
    ids = [r[k] for r in rows.values() for k in ("pixels_id", "pointing_id")]
    metas = ws.catalog.product_metas(ids)
    planner = _Planner(ws, b, ctx, rows, metas)
    # Associations touched by the chosen exposures are formed from all their members: those
    # members' earlier stages are planned too (hits, usually), so an association never shrinks
    # and never runs on a member's missing product.
    members = set(chosen)
    for st in table.values():
        if st.name in needed and st.subject == "association":
            planner.form_associations(st, chosen)
            members |= {m for ms in planner.members.values() for m in ms}
    exposures_all = sorted(members)
    # Exposure stages with a level-2 rule (spec2's nod backgrounds and leakcal imprints) read
    # their members' products too: the members' earlier stages are planned (not the stage
    # itself for them, unless they are chosen or in an association).
    extra: set[str] = set()
    for st in table.values():
        if st.name in needed and st.members is not None:
            extra |= planner.form_members(st, exposures_all)
    items: list[Item] = []
    for st in table.values():
        if st.name in needed:
            subjects = (chosen if st.subject == "association" else exposures_all
                        if st.members is not None else sorted(set(exposures_all) | extra))
            items += planner.layer(st, subjects)
    plan = RunPlan(b.name, ctx, list(chosen), wanted, items)
    if explain:
        explain_misses(ws, plan)
    plan.seconds = time.perf_counter() - t0
    return plan


def _needed_stages(wanted: Iterable[str]) -> set[str]:
    """The wanted stages and every stage upstream of them (planned to know their inputs)."""
    out: set[str] = set()
    todo = list(wanted)
    while todo:
        s = todo.pop()
        if s not in out:
            out.add(s)
            todo += list(registry.stage(s).upstream)
    return out


class _Planner:
    """Plans stages layer by layer, remembering each (stage, subject)'s state and outputs."""

    def __init__(self, ws: Workspace, build: buildlib.Build, context: str,
                 rows: Mapping[str, Mapping[str, Any]], metas: Mapping[str, dict[str, Any]]):
        self.ws, self.build, self.context, self.rows, self.metas = ws, build, context, rows, metas
        self.state: dict[tuple[str, str], Item] = {}
        self.members: dict[str, list[str]] = {}  # association -> member exposures
        self.members_of: dict[str, list[str]] = {}  # association stage -> its associations
        self.left_out: dict[tuple[str, str], dict[str, str]] = {}
        # (exposure stage, exposure) -> role -> member exposures (the stage's level-2 rule)
        self.exposure_members: dict[tuple[str, str], dict[str, list[str]]] = {}
        self.memo: dict = {}  # plan_stage's per-instrument plans and encoded keyers
        self.crds_path = ws.crds_path
        self._others: list[buildlib.Build] | None = None

    @property
    def others(self) -> list[buildlib.Build]:
        """The workspace's other builds (a mode refusal names those that calibrate the mode)."""
        if self._others is None:
            try:
                self._others = [o for o in self.ws.builds.all() if o.name != self.build.name]
            except buildlib.BuildError:  # a broken manifest elsewhere: name none
                self._others = []
        return self._others

    def _source(self, source: str, subject: str) -> tuple[str | None, Item | None]:
        """(product id, upstream item) of one read of a subject."""
        origin, what = source.split(":", 1)
        if origin == "exposure":
            return self.rows[subject][f"{what}_id"], None
        up = self.state.get((origin, subject))
        if up is None or up.state != HIT:
            return None, up
        return up.outputs.get(what), up

    def layer(self, st: registry.Stage, chosen: Sequence[str]) -> list[Item]:
        if st.subject == "association":
            subjects = sorted(self.members_of.get(st.name, []))
        else:
            subjects = [e for e in chosen
                        if st.calibrates(self.metas.get(self.rows[e]["pixels_id"], {}))]
        pending: list[tuple[Item, dict[str, str]]] = []
        items = []
        for subject in subjects:
            item, inputs = self._inputs(st, subject)
            items.append(item)
            self.state[(st.name, subject)] = item
            if item.state == "":
                pending.append((item, inputs))
        self._recipes(st, pending)
        keys = [k for item, _ in pending if item.recipe for k in item.recipe.output_keys.values()]
        realised = self.ws.catalog.realised(keys)
        for item, _ in pending:
            if item.state:
                continue
            found = {}
            for name, key in item.recipe.output_keys.items():
                good = [p for p in realised.get(key, ()) if self.ws.store.has(p)]
                if good:
                    found[name] = good[0]
            if len(found) == len(item.recipe.output_keys):
                item.state, item.outputs, item.cause = HIT, found, "all outputs realised"
            else:
                item.state, item.cause = MISS, "no realisation of this recipe"
        return items

    def _inputs(self, st: registry.Stage, subject: str) -> tuple[Item, dict[str, str]]:
        """The subject's input ids by role, or an item that waits for (or failed) upstream."""
        item = Item(st.name, subject, "")
        members = ([m for m in self.members.get(subject, ())] if st.subject == "association"
                   else [subject])
        mode = str(self.metas.get(self.rows[members[0]]["pixels_id"], {}).get(
            "exposure.type") or "") if members else ""
        why = buildlib.mode_refusal(self.build, st.name, mode, self.others) if mode else None
        if why:  # the build's lock predates this mode's steps: one line, nothing runs
            item.state, item.cause = FAILED, why
            return item, {}
        inputs: dict[str, str] = {}
        left_out: dict[str, str] = {}
        for m in members:
            why_not = (st.exclusion(self.metas.get(self.rows[m]["pixels_id"], {}))
                       if st.subject == "association" else None)
            if why_not:
                left_out[m] = why_not
                continue
            for i, source in enumerate(st.reads):
                pid, up = self._source(source, m)
                if pid is None:
                    state, why = _missing(up)
                    if state == WAITS:
                        item.state, item.cause = WAITS, f"waits for {why}"
                        return item, {}
                    if st.subject == "association":  # left out; the others still combine
                        left_out[m] = f"no {source}: {why}"
                        continue
                    item.state, item.cause = FAILED, f"no {source} for {m} ({why})"
                    return item, {}
                role = (f"member:{m}" if st.subject == "association"
                        else "input" if i == 0 else source.split(":", 1)[1])
                inputs[role] = pid
        for role, exps in self.exposure_members.get((st.name, subject), {}).items():
            for m in exps:
                for r, source in st.member_reads(role, m):
                    pid, up = self._source(source, m)
                    if pid is None:
                        state, why = _missing(up)
                        item.state, item.cause = state, (
                            f"waits for {why} of {m}" if state == WAITS
                            else f"{role} member {m} has no {source} ({why})")
                        return item, {}
                    inputs[r] = pid
        if left_out and not inputs:
            item.state, item.cause = FAILED, "no member can be combined: " + "; ".join(
                f"{m}: {why}" for m, why in sorted(left_out.items()))
            return item, {}
        self.left_out[(st.name, subject)] = left_out
        return item, inputs

    def _recipes(self, st: registry.Stage, pending: list[tuple[Item, dict[str, str]]]) -> None:
        ids = [pid for _, inputs in pending for pid in inputs.values()]
        metas = {**self.metas, **self.ws.catalog.product_metas(
            [p for p in ids if p not in self.metas])}
        for item, inputs in pending:
            if st.subject == "association":
                first = inputs[sorted(inputs)[0]]
                meta = {**metas.get(first, {}), "association.name": item.subject}
            else:
                meta = {}
                for role, pid in inputs.items():
                    if ":" not in role:  # the subject's own reads, not its members'
                        meta.update(metas.get(pid, {}))
            try:
                item.recipe = plan_stage(st.name, item.subject, self.build, self.context,
                                         self.crds_path, meta, inputs, self.memo)
                item.recipe.left_out = self.left_out.get((st.name, item.subject), {})
            except Exception as exc:  # noqa: BLE001 - a subject that cannot be planned
                item.state, item.cause = FAILED, f"{type(exc).__name__}: {exc}"

    def form_associations(self, st: registry.Stage, chosen: Sequence[str]) -> list[str]:
        """Associations formed from every current exposure the stage calibrates, those with a
        member among ``chosen`` (one member's reprocess never shrinks an association)."""
        metas = [{**self.metas.get(r["pixels_id"], {}), "filename": e}
                 for e, r in self.rows.items()]
        asns = st.associate([m for m in metas if st.calibrates(m)])
        if asns:
            self.ws.catalog.record_associations(asns)
        want = set(chosen)
        for a in asns:
            for p in a["products"]:
                members = sorted({_exposure_of(m["expname"]) for m in p["members"]})
                if want & set(members):
                    self.members[p["name"]] = members
                    self.members_of.setdefault(st.name, []).append(p["name"])
        return sorted(self.members_of.get(st.name, []))


    def form_members(self, st: registry.Stage, exposures: Sequence[str]) -> set[str]:
        """Each of ``exposures`` that ``st`` calibrates gets its members under the stage's
        level-2 rule, among every current exposure; returns the members."""
        metas = {e: self.metas.get(r["pixels_id"], {}) for e, r in self.rows.items()}
        found: set[str] = set()
        for e in exposures:
            if e in metas and st.calibrates(metas[e]):
                ms = st.member_exposures(e, metas)
                if ms:
                    self.exposure_members[(st.name, e)] = ms
                    found |= {m for exps in ms.values() for m in exps}
        return found


def _missing(up: Item | None) -> tuple[str, str]:
    """Why a read has no product: (WAITS, the upstream stage that runs first) or (FAILED,
    the upstream's cause)."""
    if up is not None and up.state in (MISS, WAITS):
        return WAITS, up.stage
    return FAILED, up.cause if up is not None else "not planned"


def _exposure_of(expname: str) -> str:
    from catalogs.catalog import exposure_of

    return exposure_of(str(expname))


# --- why a miss runs ---------------------------------------------------------------------------

def explain_misses(ws: Workspace, plan: RunPlan) -> None:
    """Give each miss the reason it runs, against the newest earlier recipe of the same subject
    and stage (any build): new data, stale ephemeris, version, parameter or new reference."""
    misses = [i for i in plan.items if i.state == MISS and i.recipe is not None]
    if not misses:
        return
    subjects = sorted({i.subject for i in misses})
    prev = ws.catalog.sql(
        "WITH last AS (SELECT subject, stage, max(\"at\") AS t FROM run_steps WHERE status = 'ok' "
        "AND list_contains(?::VARCHAR[], subject) GROUP BY subject, stage) "
        "SELECT s.subject, s.stage, s.step, s.recipe_key FROM run_steps s JOIN last l "
        "ON s.subject = l.subject AND s.stage = l.stage AND s.\"at\" = l.t "
        "WHERE s.status = 'ok'", [subjects]).to_pylist()
    by_item: dict[tuple[str, str], dict[str, str]] = {}
    for r in prev:
        if r["recipe_key"] and r["step"] != r["stage"]:
            by_item.setdefault((r["subject"], r["stage"]), {})[r["step"]] = r["recipe_key"]
    keys = sorted({k for steps in by_item.values() for k in steps.values()})
    recipes = {r["recipe_key"]: r for r in ws.catalog.sql(
        "SELECT recipe_key, any_value(step_version) AS version, any_value(params_json) AS params "
        "FROM recipes WHERE list_contains(?::VARCHAR[], recipe_key) GROUP BY recipe_key",
        [keys]).to_pylist()}
    refs: dict[str, dict[str, str]] = {}
    for r in ws.catalog.sql("SELECT recipe_key, reftype, any_value(filename) AS f FROM recipe_refs "
                            "WHERE list_contains(?::VARCHAR[], recipe_key) GROUP BY ALL",
                            [keys]).to_pylist():
        refs.setdefault(r["recipe_key"], {})[r["reftype"]] = r["f"]
    inputs: dict[str, dict[str, str]] = {}
    for r in ws.catalog.sql("SELECT recipe_key, role, any_value(input_id) AS i FROM recipe_inputs "
                            "WHERE list_contains(?::VARCHAR[], recipe_key) GROUP BY ALL",
                            [keys]).to_pylist():
        inputs.setdefault(r["recipe_key"], {})[r["role"]] = r["i"]
    for item in misses:
        old = by_item.get((item.subject, item.stage))
        item.cause = _cause(item, old, recipes, refs, inputs, ws)


def _cause(item: Item, old: Mapping[str, str] | None, recipes: Mapping[str, Any],
           refs: Mapping[str, Mapping[str, str]], inputs: Mapping[str, Mapping[str, str]],
           ws: Workspace) -> str:
    if not old:
        return "new data (never processed)"
    steps = [s for s in item.recipe.steps if not s.skip]
    if set(old) != {s.name for s in steps}:
        added = sorted({s.name for s in steps} - set(old))
        removed = sorted(set(old) - {s.name for s in steps})
        what = ", ".join([f"+{n}" for n in added] + [f"-{n}" for n in removed])
        return f"steps changed ({what})"
    first = old[steps[0].name]
    before = inputs.get(first, {})
    for role, pid in steps[0].inputs.items():
        if before.get(role) not in (None, pid):
            if role == "pointing":
                return "stale ephemeris (new pointing)"
            return "new data (reissued)" if item.stage == "detector1" else f"new input ({role})"
    for s in steps:
        r = recipes.get(old[s.name])
        if r is None:
            continue
        if str(r["version"]) != s.version:
            return f"version: {s.name} {r['version']} -> {s.version}"
        params = json.loads(r["params"] or "{}")
        changed = sorted(k for k in set(params) | set(s.params)
                         if params.get(k) != json.loads(json.dumps(s.params.get(k), default=str)))
        if changed:
            return f"parameter: {s.name}.{changed[0]}"
        was = refs.get(old[s.name], {})
        for rt, (fname, _) in s.refs.items():
            if was.get(rt) != fname:
                return f"new reference: {rt}"
    return "same recipe, output not stored (recompute)"


def outcome_of_hit(item: Item, build: str) -> StageOutcome:
    """The outcome a planned hit records."""
    return StageOutcome(item.stage, item.subject, build, outputs=dict(item.outputs), hit=True,
                        reason="hit: all outputs realised")
