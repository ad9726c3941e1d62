"""Regression diffs between two builds: pair their products, compare, attribute, record.

``diff_builds(catalog, store, "11.2", "11.3")`` finds the products each build made (the latest
run of every subject and stage, from ``run_steps``), pairs them by what they are
(subject, stage, product kind) and classifies every pair:

- ``identical``: the same product_id. Nothing is read: equal content ids are equal content.
- ``within`` / ``over``: the numeric comparison of ``transforms.compare`` (JWST regtest
  tolerances) says the difference is within or over tolerance; ``accepted`` is an ``over``
  whose exact pair of products was accepted earlier as a new baseline (``accept``).
- ``only_a`` / ``only_b``: a product one build made and the other did not.

Every changed pair is attributed from the recipe tables: both recipe chains are walked from the
stage's last step upstream, step by step, and every recorded difference (step version, a
parameter, a reference file, an input product — followed into the stage that made it) becomes a
``Cause``; the first step whose recipe differs is reported too. Pairs are grouped by their root
causes. ``record`` stores the result as rows of the ``diffs`` table, so SQL can ask how many
products of an instrument changed between two builds, and why (docs/diff.md).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from catalogs.catalog import check_read_only
from store.errors import CatalogError
from transforms import compare as cmp
from transforms import compare_cube as cmp_cube
from transforms import compare_spec as cmp_spec

STATUSES = ("identical", "within", "accepted", "over", "only_a", "only_b")
# The value of a ``status`` row in the diffs table (a number, so SQL can sort and threshold).
STATUS_CODE = {s: i for i, s in enumerate(STATUSES)}
FAILING = frozenset({"over", "only_a"})

# Product kinds compared beyond their arrays, declared once: kind -> (the PairResult field that
# holds the result, the pure comparison ``fn(model_a, model_b, config)``). Each result has
# ``.pairs`` (spectra, cubes) whose named attributes become ``diffs`` rows (``DEEP_ROWS``), and
# a report section draws it (flows.report_spec, flows.report_cube).
DEEP_COMPARISONS: dict[str, tuple[str, Any]] = {
    **{k: ("spectra", cmp_spec.compare_spectra) for k in cmp_spec.KINDS},
    **{k: ("cubes", cmp_cube.compare_cubes) for k in cmp_cube.KINDS},
}
# field -> (metric prefix, attribute of each item): one ``<prefix>:<item name>`` row per item
DEEP_ROWS: dict[str, tuple[tuple[str, str], ...]] = {
    "spectra": (("spec_ratio", "ratio_median"),),
    "cubes": (("cube_ratio", "ratio_worst"), ("cube_max_abs", "max_abs")),
}


@dataclass(frozen=True)
class Product:
    """One stage output of one build."""

    subject: str
    stage: str
    kind: str
    product_id: str
    stage_key: str  # recipe key of the stage's last step
    run_id: str
    instrument: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.subject, self.stage, self.kind)


@dataclass(frozen=True)
class Cause:
    """One recorded difference between the two recipes of a pair."""

    what: str  # reference, parameter, version, input, step_added, step_removed, nondeterministic, unexplained
    stage: str
    step: str
    name: str = ""  # reftype, parameter name or input role
    a: Any = None
    b: Any = None
    via: tuple[str, ...] = ()  # the hops from the compared product up to where it happened

    @property
    def label(self) -> str:
        """The cause without the hops: products sharing it share a root cause."""
        where = f"{self.stage}.{self.step}" if self.step else self.stage
        if self.what == "reference":
            return f"reference {self.name} ({where}): {self.a} -> {self.b}"
        if self.what == "parameter":
            return f"parameter {where}.{self.name}: {_short(self.a)} -> {_short(self.b)}"
        if self.what == "version":
            return f"version of {where}: {self.a} -> {self.b}"
        if self.what == "input":
            return f"input {self.name} of {where}: {_short(self.a)} -> {_short(self.b)}"
        if self.what in ("step_added", "step_removed"):
            return f"{where} {'run only in b' if self.what == 'step_added' else 'run only in a'}"
        if self.what == "nondeterministic":
            return f"nondeterministic: one recipe ({where}) realised as two products"
        return f"unexplained: recipe keys of {where} differ but the recorded recipes agree"

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "stage": self.stage, "step": self.step, "name": self.name,
                "a": self.a, "b": self.b, "via": list(self.via), "label": self.label}


@dataclass
class PairResult:
    """One product of build A against its counterpart in build B."""

    subject: str
    stage: str
    kind: str
    product_a: str | None
    product_b: str | None
    status: str
    instrument: str | None = None
    diff: cmp.ModelDiff | None = None
    causes: list[Cause] = field(default_factory=list)
    first_step: str | None = None  # first step where the two recipe chains diverge
    accepted: Mapping[str, Any] | None = None  # who/why/when of an accepted baseline
    score: float = 0.0  # how bad: the largest fraction of elements over tolerance
    images: Mapping[str, Any] | None = None  # large pictures (see ``pictures``) of the worst
    thumbs: Mapping[str, Any] | None = None  # small pictures of every over-tolerance pair
    sources: Mapping[str, Any] | None = None  # matched sources of two catalogs (``source_points``)
    steps: list[dict[str, Any]] = field(default_factory=list)  # the two recipes, step by step
    spectra: cmp_spec.SpectraDiff | None = None  # x1d/c1d: spectrum by spectrum
    cubes: cmp_cube.CubesDiff | None = None  # s3d: cube by cube, plane by plane

    @property
    def max_abs(self) -> float | None:
        """The largest |b - a| of the array elements and catalog columns; when none moved, of
        the numeric metadata values that differ (None when nothing was compared)."""
        if self.diff is None:
            return None
        arrs = list(self.diff.arrays.values()) + (list(self.diff.catalog.columns.values())
                                                  if self.diff.catalog else [])
        vals = [a.max_abs for a in arrs if a.mode in ("float", "exact")]
        if max(vals, default=0.0) > 0:
            return max(vals)
        # nothing moved in the arrays: the change is in numeric metadata (if any)
        for x, y in self.diff.meta_changed.values():
            if (isinstance(x, (int, float)) and isinstance(y, (int, float))
                    and not isinstance(x, bool) and not isinstance(y, bool)):
                with np.errstate(invalid="ignore", over="ignore"):
                    dv = abs(float(y) - float(x))
                if np.isfinite(dv):
                    vals.append(dv)
        return max(vals, default=0.0)

    @property
    def what(self) -> str:
        """What is over tolerance, in a few words: the arrays (DQ flags by name), sources,
        metadata keys; '' for pairs within tolerance."""
        if self.diff is None or not self.diff.over:
            return ""
        out = []
        arrs = list(self.diff.arrays.values()) + (list(self.diff.catalog.columns.values())
                                                  if self.diff.catalog else [])
        first = {"data": 0, "dq": 1, "err": 2}  # the science array first, then its DQ and error
        arrs.sort(key=lambda a: (first.get(a.name, 3), a.name))
        for a in arrs:
            if not a.over(0.0):
                continue
            if a.mode == "dq":
                flags = [f"+{k}" for k in a.dq_gained] + [f"-{k}" for k in a.dq_lost]
                out.append(f"{a.name} {' '.join(flags[:3])}{' …' if len(flags) > 3 else ''}")
            elif a.mode == "structural":
                out.append(f"{a.name} ({a.note})")
            else:
                out.append(a.name)
        cd = self.diff.catalog
        if cd and (cd.n_only_a or cd.n_only_b):
            out.insert(0, f"sources -{cd.n_only_a} +{cd.n_only_b}")
        if self.diff.meta_changed:
            keys = list(self.diff.meta_changed)
            out.append("metadata " + ", ".join(keys[:2]) + (" …" if len(keys) > 2 else ""))
        if not out:
            out = list(self.diff.reasons[:1])
        s = ", ".join(out[:4]) + (f" (+{len(out) - 4} more)" if len(out) > 4 else "")
        return s

    @property
    def group(self) -> str:
        """The root causes of the pair, as one label ('' for identical pairs)."""
        labels = sorted({c.label for c in self.causes})
        return "; ".join(labels)

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "stage": self.stage, "kind": self.kind,
                "product_a": self.product_a, "product_b": self.product_b,
                "status": self.status, "instrument": self.instrument, "score": self.score,
                "max_abs": self.max_abs, "what": self.what,
                "first_step": self.first_step, "group": self.group,
                "causes": [c.to_dict() for c in self.causes],
                "accepted": dict(self.accepted) if self.accepted else None,
                "steps": self.steps,
                "diff": self.diff.to_dict() if self.diff else None,
                "spectra": self.spectra.to_dict() if self.spectra else None,
                "cubes": self.cubes.to_dict() if self.cubes else None}


@dataclass
class BuildDiff:
    """The comparison of every product of two builds."""

    diff_id: str
    build_a: str
    build_b: str
    where: str | None
    config: cmp.CompareConfig
    pairs: list[PairResult]
    at: dt.datetime

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for p in self.pairs:
            out[p.status] += 1
        return out

    def groups(self) -> dict[str, list[PairResult]]:
        """Changed pairs by root cause: groups with failing pairs first, then the largest."""
        g: dict[str, list[PairResult]] = {}
        unpaired = {"only_a": f"made by {self.build_a} only (not run, or failed, in {self.build_b})",
                    "only_b": f"made by {self.build_b} only (not run, or failed, in {self.build_a})"}
        for p in self.pairs:
            if p.status not in ("identical",):
                label = p.group or unpaired.get(p.status) or "(no recorded cause)"
                g.setdefault(label, []).append(p)
        return dict(sorted(g.items(), key=lambda kv: (
            not any(p.status in FAILING for p in kv[1]), -len(kv[1]), kv[0])))

    @property
    def failed(self) -> bool:
        """True when a difference exceeds tolerance (and was not accepted) or a product is missing."""
        return any(p.status in FAILING for p in self.pairs)

    def worst(self, n: int = 5) -> list[PairResult]:
        """The ``n`` changed pairs that differ most: over tolerance first, then by score."""
        changed = [(i, p) for i, p in enumerate(self.pairs)
                   if p.status in ("over", "accepted", "within")]
        changed.sort(key=lambda ip: (ip[1].status != "over", -ip[1].score, ip[0]))
        return [p for _, p in changed[:n]]

    def to_dict(self) -> dict[str, Any]:
        t = self.config.tolerance
        return {"diff_id": self.diff_id, "build_a": self.build_a, "build_b": self.build_b,
                "where": self.where, "at": self.at.isoformat(),
                "tolerance": {"rtol": t.rtol, "atol": t.atol,
                              "per_array": {k: {"rtol": v.rtol, "atol": v.atol}
                                            for k, v in self.config.per_array.items()},
                              "nan_equal": self.config.nan_equal},
                "counts": self.counts(), "failed": self.failed,
                "groups": {k: [f"{p.subject}/{p.stage}/{p.kind}" for p in v]
                           for k, v in self.groups().items()},
                "pairs": [p.to_dict() for p in self.pairs]}


def clean_json(v: Any) -> Any:
    """``v`` with non-finite floats as strings ("nan", "inf"), so it is strict JSON."""
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)
    if isinstance(v, Mapping):
        return {str(k): clean_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [clean_json(x) for x in v]
    return v


def _short(v: Any) -> str:
    s = json.dumps(v, default=str) if not isinstance(v, str) else v
    if s.startswith(("sha256:", "blake2b:")) and len(s) > 20:
        return s[: s.index(":") + 13] + "…"
    return s if len(s) <= 60 else s[:59] + "…"


# --- the products of a build -----------------------------------------------------------------

_PRODUCTS = """
WITH latest AS (
    SELECT subject, stage, run_id, product_id AS outputs, "at" FROM run_steps
    WHERE build = ? AND status = 'ok' AND product_id LIKE '{%'
    QUALIFY row_number() OVER (PARTITION BY subject, stage
                               ORDER BY "at" DESC NULLS LAST, run_id DESC) = 1
),
steps AS (
    SELECT DISTINCT l.subject, l.stage, r.recipe_key FROM latest l JOIN run_steps r
        ON r.run_id = l.run_id AND r.subject = l.subject AND r.stage = l.stage AND r.build = ?
    WHERE coalesce(r.recipe_key, '') <> '' AND coalesce(r.status, '') <> 'skipped'
),
stage_keys AS (
    SELECT s.subject, s.stage, any_value(s.recipe_key) AS stage_key FROM steps s
    WHERE s.recipe_key IN (SELECT input_id FROM recipe_inputs WHERE role = 'recipe')
    GROUP BY s.subject, s.stage
),
outs AS (
    SELECT l.subject, l.stage, l.run_id, k AS kind,
           json_extract_string(l.outputs, '$."' || k || '"') AS product_id
    FROM latest l, unnest(json_keys(l.outputs)) AS t(k)
),
p AS (
    SELECT o.subject, o.stage, o.kind, o.product_id, o.run_id, sk.stage_key, pm.meta_json,
           {meta_columns}
    FROM outs o
    LEFT JOIN stage_keys sk ON sk.subject = o.subject AND sk.stage = o.stage
    LEFT JOIN (SELECT product_id, any_value(meta_json) AS meta_json FROM products
               GROUP BY product_id) pm ON pm.product_id = o.product_id
)
SELECT * FROM p WHERE ({where}) ORDER BY subject, stage, kind
"""


# The --where columns read from a product's metadata. A multi-cube s3d (an MRS product of two
# channels, a stage-3 product of several bands) keeps each cube's meta under
# ``cube.<name>.<key>`` (transforms.ifu.cube_product): its first cube's value then stands in.
_META_COLUMNS = {"instrument": "instrument.name", "detector": "instrument.detector",
                 "filter": "instrument.filter", "exp_type": "exposure.type",
                 "program": "observation.program_number"}


def _meta_column(col: str, key: str) -> str:
    m = "pm.meta_json"
    return (f"coalesce(json_extract_string({m}, '$.\"{key}\"'), json_extract_string({m}, "
            f"'$.\"cube.' || json_extract_string({m}, '$.cubes[0]') || '.{key}\"')) AS {col}")


_PRODUCTS = _PRODUCTS.replace("{meta_columns}", ",\n           ".join(
    _meta_column(c, k) for c, k in _META_COLUMNS.items()))


def build_products(con: Any, build: str, where: str | None = None) -> dict[tuple[str, str, str], Product]:
    """The products ``build`` made (latest run of each subject and stage), keyed by
    (subject, stage, kind). ``where`` is a SQL condition over the columns subject, stage,
    kind, product_id, instrument, detector, filter, exp_type, program, meta_json."""
    q = _PRODUCTS.replace("{where}", where.strip() if where and where.strip() else "true")
    try:
        check_read_only(q)
        rows = _dicts(con, q, [build, build])
    except Exception as exc:  # duckdb errors: a bad --where is the usual cause
        msg = " ".join(str(exc).split())[:300]
        raise CatalogError(f"cannot select the products of build {build!r}"
                           f"{' with --where ' + repr(where) if where else ''}: {msg}") from None
    out = {}
    for r in rows:
        p = Product(r["subject"], r["stage"], r["kind"], r["product_id"], r["stage_key"] or "",
                    r["run_id"], r["instrument"])
        out[p.key] = p
    return out


# --- the recipe graph ------------------------------------------------------------------------

@dataclass
class Graph:
    """The recipes upstream of some stage keys, loaded once."""

    recipes: dict[str, dict[str, Any]]  # key -> step, step_version, params, key_schema
    inputs: dict[str, dict[str, str]]  # key -> role -> input id
    refs: dict[str, dict[str, tuple[str | None, str | None]]]  # key -> reftype -> (file, hash)
    made_by: dict[str, list[str]]  # product id -> output recipe keys that realised it
    build_keys: dict[str, set[str]]  # build -> recipe keys its runs recorded


def _dicts(con: Any, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Rows of a query as dicts."""
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _in_list(con: Any, sql: str, ids: Sequence[str]) -> list[dict[str, Any]]:
    if not ids:
        return []
    return _dicts(con, sql, [list(ids)])


def load_graph(con: Any, stage_keys: Sequence[str], builds: Sequence[str]) -> Graph:
    """Everything upstream of ``stage_keys`` (recursive over ``lineage_edges``)."""
    start = sorted({k for k in stage_keys if k})
    nodes = [r["node"] for r in _in_list(con, """
        WITH RECURSIVE up(node) AS (
            SELECT unnest(CAST(? AS VARCHAR[]))
            UNION SELECT e.parent FROM up JOIN lineage_edges e ON e.child = up.node)
        SELECT node FROM up""", start)]
    recipes: dict[str, dict[str, Any]] = {}
    for r in _in_list(con, "SELECT recipe_key, any_value(step) AS step, any_value(step_version) "
                           "AS step_version, any_value(params_json) AS params_json, "
                           "any_value(key_schema) AS key_schema FROM recipes WHERE "
                           "recipe_key IN (SELECT unnest(CAST(? AS VARCHAR[]))) GROUP BY recipe_key", nodes):
        recipes[r["recipe_key"]] = {"step": r["step"], "step_version": r["step_version"],
                                    "params": json.loads(r["params_json"] or "{}"),
                                    "key_schema": r["key_schema"]}
    inputs: dict[str, dict[str, str]] = {}
    for r in _in_list(con, "SELECT DISTINCT recipe_key, role, input_id FROM recipe_inputs "
                           "WHERE recipe_key IN (SELECT unnest(CAST(? AS VARCHAR[])))", nodes):
        inputs.setdefault(r["recipe_key"], {})[r["role"]] = r["input_id"]
    refs: dict[str, dict[str, tuple[str | None, str | None]]] = {}
    for r in _in_list(con, "SELECT DISTINCT recipe_key, reftype, filename, ref_hash FROM "
                           "recipe_refs WHERE recipe_key IN (SELECT unnest(CAST(? AS VARCHAR[])))", nodes):
        refs.setdefault(r["recipe_key"], {})[r["reftype"]] = (r["filename"], r["ref_hash"])
    made_by: dict[str, list[str]] = {}
    for r in _in_list(con, "SELECT DISTINCT product_id, recipe_key FROM realisations WHERE "
                           "product_id IN (SELECT unnest(CAST(? AS VARCHAR[]))) ORDER BY recipe_key", nodes):
        if r["recipe_key"] in recipes and ":" in (recipes[r["recipe_key"]]["step"] or ""):
            made_by.setdefault(r["product_id"], []).append(r["recipe_key"])
    build_keys = {b: {r["recipe_key"] for r in _dicts(
        con, "SELECT DISTINCT recipe_key FROM run_steps WHERE build = ? AND recipe_key IS NOT NULL",
        [b])} for b in builds}
    return Graph(recipes, inputs, refs, made_by, build_keys)


def _chain(g: Graph, stage_key: str) -> list[str]:
    """The stage's step keys, first step first (following role 'input' between recipes)."""
    out, k, seen = [], stage_key, set()
    while k and k in g.recipes and k not in seen:
        seen.add(k)
        out.append(k)
        k = g.inputs.get(k, {}).get("input", "")
    return out[::-1]


def _producer(g: Graph, pid: str, build: str) -> tuple[str, str] | None:
    """(stage, stage key) of the stage output that ``pid`` is, preferring ``build``'s recipe."""
    keys = g.made_by.get(pid, [])
    cands = []
    for ok in keys:
        sk = g.inputs.get(ok, {}).get("recipe")
        if sk:
            cands.append((sk not in g.build_keys.get(build, set()), ok, sk))
    if not cands:
        return None
    _, ok, sk = min(cands)
    return g.recipes[ok]["step"].split(":", 1)[0], sk


def _aligned(g: Graph, key_a: str, key_b: str) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """The two stage chains by step name, and the step names in run order (a step run only in
    b is placed after its predecessor)."""
    ca, cb = _chain(g, key_a), _chain(g, key_b)
    by_a = {g.recipes[k]["step"]: k for k in ca}
    by_b = {g.recipes[k]["step"]: k for k in cb}
    order = [g.recipes[k]["step"] for k in ca]
    for k in cb:
        name = g.recipes[k]["step"]
        if name not in by_a:
            prev = [g.recipes[x]["step"] for x in cb[: cb.index(k)]]
            pos = max([order.index(p) + 1 for p in prev if p in order], default=0)
            order.insert(pos, name)
    return by_a, by_b, order


def recipe_steps(g: Graph, key_a: str, key_b: str) -> list[dict[str, Any]]:
    """The two recipes of a stage side by side, one dict per step in run order: ``step``,
    ``key_a``/``key_b`` (recipe keys, None where the step did not run), ``version_a/b``,
    ``refs_a/b`` (reftype -> file name), ``params`` (name -> [a, b] for parameters that differ)
    and ``same`` (equal recipe keys)."""
    by_a, by_b, order = _aligned(g, key_a, key_b)
    out = []
    for name in order:
        xa, xb = by_a.get(name), by_b.get(name)
        ra, rb = g.recipes.get(xa or "", {}), g.recipes.get(xb or "", {})
        pa, pb = ra.get("params", {}), rb.get("params", {})
        out.append({"step": name, "key_a": xa, "key_b": xb, "same": xa == xb,
                    "version_a": ra.get("step_version"), "version_b": rb.get("step_version"),
                    "refs_a": {t: f for t, (f, _) in sorted(g.refs.get(xa or "", {}).items())},
                    "refs_b": {t: f for t, (f, _) in sorted(g.refs.get(xb or "", {}).items())},
                    "params": {k: [pa.get(k), pb.get(k)] for k in sorted(set(pa) | set(pb))
                               if xa and xb and pa.get(k) != pb.get(k)}})
    return out


def attribute(g: Graph, stage: str, key_a: str, key_b: str, build_a: str, build_b: str,
              via: tuple[str, ...] = (), _depth: int = 0) -> tuple[list[Cause], str | None]:
    """Why two stage recipes differ: every recorded difference, and the first step (as
    ``stage.step``) where the two chains diverge."""
    if key_a == key_b:
        return [], None
    by_a, by_b, order = _aligned(g, key_a, key_b)
    causes: list[Cause] = []
    first: str | None = None
    for name in order:
        xa, xb = by_a.get(name), by_b.get(name)
        if xa == xb:
            continue
        first = first or f"{stage}.{name}"
        if xa is None or xb is None:
            causes.append(Cause("step_added" if xa is None else "step_removed", stage, name,
                                via=via))
            continue
        ra, rb = g.recipes[xa], g.recipes[xb]
        if ra["step_version"] != rb["step_version"]:
            causes.append(Cause("version", stage, name, "", ra["step_version"],
                                rb["step_version"], via))
        for p in sorted(set(ra["params"]) | set(rb["params"])):
            va, vb = ra["params"].get(p), rb["params"].get(p)
            if va != vb:
                causes.append(Cause("parameter", stage, name, p, va, vb, via))
        fa, fb = g.refs.get(xa, {}), g.refs.get(xb, {})
        for t in sorted(set(fa) | set(fb)):
            if fa.get(t) != fb.get(t):
                na = (fa.get(t) or (None, None))[0]
                nb = (fb.get(t) or (None, None))[0]
                if na == nb:  # same name, other content: say so
                    na, nb = f"{na} [{_short((fa.get(t) or (0, ''))[1])}]", \
                             f"{nb} [{_short((fb.get(t) or (0, ''))[1])}]"
                causes.append(Cause("reference", stage, name, t, na, nb, via))
        ia, ib = g.inputs.get(xa, {}), g.inputs.get(xb, {})
        for role in sorted(set(ia) | set(ib)):
            pa, pb = ia.get(role), ib.get(role)
            if pa == pb or (pa in g.recipes and pb in g.recipes):
                continue  # the link to the previous step: its own differences are listed
            up_a = _producer(g, pa, build_a) if pa else None
            up_b = _producer(g, pb, build_b) if pb else None
            if up_a and up_b and up_a[0] == up_b[0] and _depth < 20:
                hop = via + (f"{stage}.{name} input {role} <- {up_a[0]}",)
                sub, _ = attribute(g, up_a[0], up_a[1], up_b[1], build_a, build_b, hop,
                                   _depth + 1)
                if up_a[1] == up_b[1]:
                    sub = [Cause("nondeterministic", up_a[0], "", role, pa, pb, hop)]
                causes.extend(sub)
            else:
                causes.append(Cause("input", stage, name, role, pa, pb, via))
        if not causes and ra.get("key_schema") != rb.get("key_schema"):
            causes.append(Cause("version", stage, name, "key_schema", ra.get("key_schema"),
                                rb.get("key_schema"), via))
    if not causes:
        causes.append(Cause("unexplained", stage, first.split(".", 1)[1] if first else "",
                            via=via))
    return causes, first


# --- accepted baselines ----------------------------------------------------------------------

def accepted_pairs(con: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(product_a, product_b) -> who/why/when of every accepted difference (latest wins)."""
    rows = _dicts(con, 'SELECT product_a, product_b, detail_json, "at" FROM diffs '
                       "WHERE metric = 'accepted' ORDER BY \"at\"")
    out = {}
    for r in rows:
        d = json.loads(r["detail_json"] or "{}")
        d["at"] = r["at"].isoformat() if r["at"] else None
        out[(r["product_a"], r["product_b"])] = d
    return out


# --- the diff --------------------------------------------------------------------------------

def _score(d: cmp.ModelDiff, n_meta: int = 0) -> float:
    """How bad a pair is: the largest fraction of elements over tolerance among its arrays,
    catalog columns, unmatched sources and compared metadata values (``n_meta`` of them).

    (Metadata used to count only when the product had no array at all, so a catalog whose
    only change was a measured keyword, e.g. ``source_catalog.bkg_rms``, was ``over`` with a
    score of 0 and looked like a false alarm.)"""
    fr = [a.frac_over for a in d.arrays.values()]
    if d.catalog:
        fr += [c.frac_over for c in d.catalog.columns.values()]
        n = max(d.catalog.n_a, d.catalog.n_b, 1)
        fr.append((d.catalog.n_only_a + d.catalog.n_only_b) / n)
    if d.meta_changed:
        fr.append(len(d.meta_changed) / max(n_meta, len(d.meta_changed)))
    return max(fr, default=0.0)


def meta_compared(a: Any, b: Any, config: cmp.CompareConfig) -> int:
    """How many metadata keys of a pair are compared (not matched by ``ignore_meta``)."""
    return sum(1 for k in set(a.meta) | set(b.meta)
               if not any(fnmatch.fnmatchcase(k, p) for p in config.ignore_meta))


THUMBNAILS = ("over", "changed", "none")


def diff_builds(catalog: Any, store: Any, build_a: str, build_b: str, where: str | None = None,
                config: cmp.CompareConfig = cmp.CompareConfig(), n_images: int = 5,
                image_size: int = 384, thumbnails: str = "over", thumb_size: int = 128,
                workers: int = 2) -> BuildDiff:
    """Pair, compare and attribute every product of ``build_a`` against ``build_b``.

    For the report: ``thumbnails`` (``over``: every pair over tolerance, accepted or not;
    ``changed``: every pair compared; ``none``) keeps small ``pictures`` (at most
    ``thumb_size`` a side) of image pairs and ``source_points`` of catalog pairs, made while the
    products are in memory for the comparison; the ``n_images`` worst image pairs are read
    again for large pictures (``image_size`` a side)."""
    if build_a == build_b:
        raise CatalogError(f"diff needs two different builds, got {build_a!r} twice")
    if thumbnails not in THUMBNAILS:
        raise CatalogError(f"thumbnails must be one of {', '.join(THUMBNAILS)}, got {thumbnails!r}")
    con = catalog.connect()
    try:
        known = {r[0] for r in con.execute("SELECT DISTINCT build FROM run_steps").fetchall()}
        for b in (build_a, build_b):
            if b not in known:
                raise CatalogError(f"build {b!r} has no recorded runs; builds with runs: "
                                   f"{', '.join(sorted(x for x in known if x)) or '(none)'}")
        pa_, pb_ = build_products(con, build_a, where), build_products(con, build_b, where)
        accepted = accepted_pairs(con)
        changed = [(pa_[k], pb_[k]) for k in pa_ if k in pb_
                   and pa_[k].product_id != pb_[k].product_id]
        graph = load_graph(con, [x.stage_key for pair in changed for x in pair],
                           [build_a, build_b])
    finally:
        con.close()

    def compare_pair(ab: tuple[Product, Product]) -> tuple[cmp.ModelDiff, int, Any, Any]:
        ma, mb = store.get(ab[0].product_id), store.get(ab[1].product_id)
        d = cmp.compare_models(ma, mb, config)
        n_meta = meta_compared(ma, mb, config) if d.meta_changed else 0
        thumbs = points = None
        if thumbnails == "changed" or (thumbnails == "over" and d.over):
            if ma.kind == "catalog" and mb.kind == "catalog":
                points = _guarded(source_points, ma, mb, config)
            else:
                thumbs = _guarded(pictures, ma, mb, thumb_size)
        return d, n_meta, thumbs, points

    # numeric comparisons in threads: the numba kernels release the GIL, reads overlap
    with ThreadPoolExecutor(max(1, workers)) as pool:
        diffs = dict(zip([a.key for a, _ in changed], pool.map(compare_pair, changed)))
    pairs: list[PairResult] = []
    for key in sorted(set(pa_) | set(pb_)):
        a, b = pa_.get(key), pb_.get(key)
        subject, stage, kind = key
        inst = (b or a).instrument
        if a is None or b is None:
            pairs.append(PairResult(subject, stage, kind, a and a.product_id,
                                    b and b.product_id, "only_b" if a is None else "only_a", inst))
            continue
        if a.product_id == b.product_id:  # equal content ids: identical, nothing is read
            pairs.append(PairResult(subject, stage, kind, a.product_id, b.product_id,
                                    "identical", inst))
            continue
        d, n_meta, thumbs, points = diffs[key]
        causes, first = attribute(graph, stage, a.stage_key, b.stage_key, build_a, build_b)
        status = "over" if d.over else "within"
        acc = accepted.get((a.product_id, b.product_id)) if d.over else None
        if acc:
            status = "accepted"
        pairs.append(PairResult(subject, stage, kind, a.product_id, b.product_id, status, inst,
                                d, causes, first, acc, _score(d, n_meta), thumbs=thumbs, sources=points,
                                steps=recipe_steps(graph, a.stage_key, b.stage_key)))
    now = dt.datetime.now(dt.timezone.utc)
    diff_id = f"diff-{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"
    bd = BuildDiff(diff_id, build_a, build_b, where, config, pairs, now)
    for p in bd.worst(n_images):  # large pictures for the report: the worst pairs are read again
        if p.kind != "catalog":
            p.images = _guarded(pictures, store.get(p.product_a), store.get(p.product_b),
                                image_size)
    for p in bd.pairs:  # spectra and cubes: compared as such (DEEP_COMPARISONS)
        if p.kind in DEEP_COMPARISONS and p.status in ("over", "within", "accepted"):
            attr, fn = DEEP_COMPARISONS[p.kind]
            setattr(p, attr, fn(store.get(p.product_a), store.get(p.product_b), config))
    return bd


def _guarded(fn: Any, *args: Any) -> Any:
    """A picture, or ``{"error": ...}``: a product the report cannot draw must not stop the
    diff (its numbers and verdict do not depend on pictures)."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - reported in the page, never hidden
        return {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"}


# --- pictures for the report -----------------------------------------------------------------
# Reduced copies of a pair's science plane, small enough to keep for every over-tolerance pair
# (the report draws them; nothing here knows about colours). A full-frame 2048 x 2048 plane at
# 128 px a side keeps 4 float32 maps and one uint8 map: about 260 kB per pair.

DQ_PICTURE_ARRAYS = ("dq", "pixeldq")
# Magnitude columns of a source catalog, best first; else AB magnitudes from a flux in Jy.
MAG_COLUMNS = ("aper_total_abmag", "isophotal_abmag", "aper_total_vegamag", "isophotal_vegamag")
FLUX_COLUMNS = ("aper_total_flux", "isophotal_flux")


def _science_array(m: Any) -> str | None:
    """The array a picture shows: ``data``, else the first float array of >= 2 dimensions."""
    if "data" in m.arrays and np.ndim(m.arrays["data"]) >= 2:
        return "data"
    for name, arr in m.arrays.items():
        arr = np.asarray(arr)
        if arr.ndim >= 2 and arr.dtype.kind == "f":
            return name
    return None


def _blocks(x: np.ndarray, f: int, fill: Any) -> np.ndarray:
    """``x`` (2-D) as (ny/f, nx/f, f*f) blocks, padded with ``fill``."""
    ny, nx = -(-x.shape[0] // f) * f, -(-x.shape[1] // f) * f
    if (ny, nx) != x.shape:
        pad = np.full((ny, nx), fill, x.dtype)
        pad[: x.shape[0], : x.shape[1]] = x
        x = pad
    return x.reshape(ny // f, f, nx // f, f).transpose(0, 2, 1, 3).reshape(ny // f, nx // f, f * f)


def _reduce(x: np.ndarray, f: int, how: str) -> np.ndarray:
    """Block-reduce a 2-D map by ``f``: ``mean``/``median`` (ignoring NaN), ``maxabs`` (the value
    of largest magnitude, so one changed pixel stays visible) or ``or`` (bitwise, for codes)."""
    if f == 1:
        return x.copy()
    if how == "or":
        return np.bitwise_or.reduce(_blocks(x, f, 0), axis=-1)
    blk = _blocks(x.astype(np.float32, copy=False), f, np.nan)
    fin = np.isfinite(blk)
    anyf = fin.any(axis=-1)
    if how == "maxabs":
        k = np.abs(np.where(fin, blk, 0.0)).argmax(axis=-1)[..., None]
        out = np.take_along_axis(blk, k, axis=-1)[..., 0]
    elif how == "maxdev1":  # the value farthest from 1 (ratios)
        k = np.abs(np.where(fin, blk - 1.0, 0.0)).argmax(axis=-1)[..., None]
        out = np.take_along_axis(blk, k, axis=-1)[..., 0]
    elif how == "median":
        out = np.full(blk.shape[:2], np.nan, np.float32)
        out[anyf] = np.nanmedian(blk[anyf], axis=-1)
    else:
        out = np.where(fin, blk, 0.0).sum(axis=-1) / np.maximum(fin.sum(axis=-1), 1)
    out = out.astype(np.float32)
    out[~anyf] = np.nan
    return out


def pictures(a: Any, b: Any, max_size: int = 128) -> dict[str, Any] | None:
    """Maps of a pair of image products, at most ``max_size`` pixels a side, for the report:

    - ``a``, ``b``: the science plane of each (block mean);
    - ``diff``: ``b - a`` (in each block the difference of largest magnitude, so a single changed
      pixel stays visible), NaN where either is not finite;
    - ``ratio``: ``b / a`` where ``a != 0`` (a flat-field change is multiplicative and shows as
      the flat's structure here, where the difference follows the signal); reduced by the block
      median when more than 5 % of the pixels changed, else by the value farthest from 1;
    - ``dq``: per pixel 0 (flags unchanged), 1 (gained a flag), 2 (lost one), 3 (both), OR-ed
      over integrations and blocks; None without a DQ array.

    Arrays of more than two dimensions show the plane (integration) with the largest |b - a|
    (``plane``). Also ``n_changed`` (pixels of that plane whose value changed), ``changed_at``
    (their (y, x) in the full plane when at most 200, for markers), ``dq_changed`` (pixels whose
    flags changed) and ``dq_at`` (where, when at most 200), ``factor`` (the reduction) and ``shape`` (of the full plane)."""
    name = _science_array(a)
    if name is None or name not in b.arrays:
        return None
    x, y = np.asarray(a[name]), np.asarray(b[name])
    if x.shape != y.shape:
        return None
    pick = cmp.worst_plane(x, y)
    x2 = np.asarray(x[pick] if pick else x, np.float64)
    y2 = np.asarray(y[pick] if pick else y, np.float64)
    f = max(1, -(-max(x2.shape) // max(1, max_size)))
    fin = np.isfinite(x2) & np.isfinite(y2)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        d = np.where(fin, y2 - x2, np.nan)
        r = np.where(fin & (x2 != 0), y2 / np.where(x2 != 0, x2, 1.0), np.nan)
    changed = fin & (d != 0)
    n_changed = int(np.count_nonzero(changed))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out: dict[str, Any] = {
            "array": name, "plane": tuple(pick), "shape": tuple(x2.shape), "factor": f,
            "a": _reduce(x2, f, "mean"), "b": _reduce(y2, f, "mean"),
            "diff": _reduce(d, f, "maxabs"),
            "ratio": _reduce(r, f, "maxdev1" if n_changed < 0.05 * x2.size else "median"),
            "n_changed": n_changed, "n": int(x2.size),
            "changed_at": np.argwhere(changed) if 0 < n_changed <= 200 else None,
            "dq": None, "dq_array": None, "dq_changed": 0}
    dq_name = next((n for n in DQ_PICTURE_ARRAYS if n in a.arrays and n in b.arrays), None)
    if dq_name:
        qa, qb = np.asarray(a[dq_name]), np.asarray(b[dq_name])
        if qa.shape == qb.shape and qa.ndim >= 2 and qa.dtype.kind in "iu" and qb.dtype.kind in "iu":
            qa, qb = qa.astype(np.uint64), qb.astype(np.uint64)
            code = (((~qa & qb) != 0).astype(np.uint8) | (((qa & ~qb) != 0).astype(np.uint8) << 1))
            if code.ndim > 2:
                code = np.bitwise_or.reduce(code.reshape(-1, *code.shape[-2:]), axis=0)
            n_dq = int(np.count_nonzero(code))
            out.update(dq=_reduce(code, max(1, -(-max(code.shape) // max(1, max_size))), "or"),
                       dq_array=dq_name, dq_changed=n_dq,
                       dq_at=np.argwhere(code) if 0 < n_dq <= 200 else None)
    return out


def _column(m: Any, names: Sequence[str]) -> tuple[str, np.ndarray] | None:
    for n in names:
        if n in m.arrays:
            return n, np.asarray(m[n], np.float64)
    return None


def source_points(a: Any, b: Any, config: cmp.CompareConfig = cmp.CompareConfig()) -> dict[str, Any] | None:
    """Matched sources of two catalogs, for plots: magnitudes (``mag_a``, ``mag_b``, from the
    first of MAG_COLUMNS both have, else AB magnitudes of a flux in Jy), positions of A
    (``ra``, ``dec``, degrees) and the offsets B - A (``dra_mas`` = Δα·cos δ, ``ddec_mas``),
    and the sources of only one catalog (``only_a``, ``only_b``: ra, dec, mag). None without
    sky positions."""
    rc, dc = config.ra_col, config.dec_col
    a, b = cmp.sky_radec(a, config), cmp.sky_radec(b, config)  # jwst's one sky_centroid too
    if not {rc, dc} <= set(a.arrays) or not {rc, dc} <= set(b.arrays):
        return None
    ra_a, de_a = np.asarray(a[rc], np.float64), np.asarray(a[dc], np.float64)
    ra_b, de_b = np.asarray(b[rc], np.float64), np.asarray(b[dc], np.float64)
    ok_a, ok_b = np.isfinite(ra_a) & np.isfinite(de_a), np.isfinite(ra_b) & np.isfinite(de_b)
    wa, wb = np.flatnonzero(ok_a), np.flatnonzero(ok_b)
    ia, ib, _ = cmp.match_sources(ra_a[wa], de_a[wa], ra_b[wb], de_b[wb],
                                    config.match_radius_arcsec)
    ia, ib = wa[ia], wb[ib]
    mag_col = next((n for n in MAG_COLUMNS if n in a.arrays and n in b.arrays), None)
    if mag_col:
        ma, mb, label = np.asarray(a[mag_col], float), np.asarray(b[mag_col], float), mag_col
    else:
        fa, fb = _column(a, FLUX_COLUMNS), _column(b, FLUX_COLUMNS)
        if fa and fb and fa[0] == fb[0]:
            with np.errstate(invalid="ignore", divide="ignore"):
                ma = np.where(fa[1] > 0, -2.5 * np.log10(np.where(fa[1] > 0, fa[1], 1)) + 8.9, np.nan)
                mb = np.where(fb[1] > 0, -2.5 * np.log10(np.where(fb[1] > 0, fb[1], 1)) + 8.9, np.nan)
            label = f"AB mag from {fa[0]}"
        else:
            ma, mb, label = np.full(ra_a.size, np.nan), np.full(ra_b.size, np.nan), ""
    dra = ((ra_b[ib] - ra_a[ia] + 180.0) % 360.0 - 180.0) * np.cos(np.radians(de_a[ia])) * 3.6e6
    only_a = np.setdiff1d(np.arange(ra_a.size), ia)
    only_b = np.setdiff1d(np.arange(ra_b.size), ib)
    return {"mag_column": label, "mag_a": ma[ia], "mag_b": mb[ib], "ra": ra_a[ia],
            "dec": de_a[ia], "dra_mas": dra, "ddec_mas": (de_b[ib] - de_a[ia]) * 3.6e6,
            "radius_arcsec": config.match_radius_arcsec, "n_a": int(ra_a.size),
            "n_b": int(ra_b.size),
            "only_a": {"ra": ra_a[only_a], "dec": de_a[only_a], "mag": ma[only_a]},
            "only_b": {"ra": ra_b[only_b], "dec": de_b[only_b], "mag": mb[only_b]}}


# --- rows ------------------------------------------------------------------------------------

def rows(bd: BuildDiff) -> list[dict[str, Any]]:
    """The diff as ``diffs`` rows: per pair a ``status`` row (value: STATUS_CODE, detail: the
    status, instrument, stage, first diverging step, cause group), one ``cause`` row per root
    cause, and numeric rows ``max_abs:<array>``, ``max_rel:<array>``, ``frac_over:<array>``,
    ``dq_gained:<FLAG>``/``dq_lost:<FLAG>`` (pixels), ``sources_only_a``/``sources_only_b``,
    ``spec_ratio:<spectrum>`` (a 1-D spectrum's median flux ratio B/A; detail: its wavelength
    shift in pixels, largest deviation, elements over tolerance), ``cube_ratio:<cube>`` (of a
    cube's per-plane median ratios B/A the one farthest from 1) and
    ``cube_max_abs:<cube>`` (its largest |B - A|; detail of both: the planes that moved, the
    worst plane and its wavelength, the worst spaxel and its ratio) (``DEEP_ROWS``)."""
    out: list[dict[str, Any]] = []

    def row(p: PairResult, metric: str, value: float | None, detail: Mapping[str, Any]) -> None:
        out.append({"diff_id": bd.diff_id, "build_a": bd.build_a, "build_b": bd.build_b,
                    "subject": p.subject, "product_kind": p.kind, "product_a": p.product_a,
                    "product_b": p.product_b, "identical": p.status == "identical",
                    "metric": metric, "value": value,
                    "detail_json": json.dumps(clean_json(detail), sort_keys=True, default=str),
                    "at": bd.at})

    for p in bd.pairs:
        base = {"status": p.status, "instrument": p.instrument, "stage": p.stage}
        row(p, "status", float(STATUS_CODE[p.status]),
            {**base, "first_step": p.first_step, "group": p.group, "score": p.score,
             "max_abs": p.max_abs, "what": p.what,
             "reasons": list(p.diff.reasons) if p.diff else [], "accepted": p.accepted})
        for c in p.causes:
            row(p, "cause", None, {**base, **c.to_dict(), "cause": c.label})
        for attr, metrics in DEEP_ROWS.items():
            deep = getattr(p, attr)
            for item in (deep.pairs if deep is not None else ()):
                for prefix, value in metrics:
                    row(p, f"{prefix}:{item.name}", getattr(item, value),
                        {**base, **item.to_dict()})
        if p.diff is None:
            continue
        arrays = dict(p.diff.arrays)
        if p.diff.catalog:
            arrays.update(p.diff.catalog.columns)
            row(p, "sources_only_a", float(p.diff.catalog.n_only_a), base)
            row(p, "sources_only_b", float(p.diff.catalog.n_only_b), base)
        for name, a in arrays.items():
            info = {**base, "array": name, "mode": a.mode}
            if a.mode == "dq":
                for flag, n in a.dq_gained.items():
                    row(p, f"dq_gained:{flag}", float(n), {**info, "flag": flag})
                for flag, n in a.dq_lost.items():
                    row(p, f"dq_lost:{flag}", float(n), {**info, "flag": flag})
            elif a.mode == "structural":
                row(p, f"structural:{name}", 1.0, {**info, "note": a.note})
            elif a.n_over or a.max_abs:
                info.update(rtol=a.rtol, atol=a.atol, n_over=a.n_over, n=a.n,
                            nan_only_a=a.nan_only_a, nan_only_b=a.nan_only_b,
                            inf_mismatch=a.inf_mismatch, hist=list(a.hist_counts))
                row(p, f"max_abs:{name}", a.max_abs, info)
                row(p, f"max_rel:{name}", a.max_rel, info)
                row(p, f"frac_over:{name}", a.frac_over, info)
    return out


def record(catalog: Any, bd: BuildDiff) -> int:
    """Store the diff's rows in the catalog; returns how many."""
    r = rows(bd)
    with catalog.batch(f"diff-{bd.diff_id}") as b:
        b.extend("diffs", r)
    return len(r)


ACCEPT_ALL = "all"


def cause_matches(c: Cause, scope: str) -> bool:
    """Whether ``scope`` names cause ``c``: a part of its label as printed (a reference file
    name, ``dark``, ``detector1.jump.rejection_threshold`` ...), or exactly its step
    (``stage.step``) or stage."""
    s = scope.strip()
    if not s:
        return False
    where = f"{c.stage}.{c.step}" if c.step else c.stage
    return s in c.label or s in (where, c.stage)


@dataclass
class AcceptPlan:
    """What ``--accept SCOPE...`` would accept: the over-tolerance pairs all of whose root
    causes are in scope. A pair that also changed for a cause out of scope is not accepted
    (``partial``, with those other causes): its difference may come from them."""

    scopes: tuple[str, ...]
    pairs: list[PairResult]
    partial: list[tuple[PairResult, list[str]]]
    causes: list[str]  # the labels in scope, among the causes of over-tolerance pairs


def plan_accept(bd: BuildDiff, scopes: Sequence[str]) -> AcceptPlan:
    """The pairs ``scopes`` accepts (see ``AcceptPlan``). ``all`` accepts every over-tolerance
    pair. A scope that names no cause of an over-tolerance pair is an error listing the causes
    there are (a typo must not pass silently, nor accept something else)."""
    scopes = tuple(s.strip() for s in scopes)
    if not scopes or not all(scopes):
        raise CatalogError("--accept needs a scope: part of a cause as printed under 'by cause' "
                           "(e.g. a reference file name), a step (stage.step), or 'all'")
    over = [p for p in bd.pairs if p.status == "over"]
    if ACCEPT_ALL in scopes:
        return AcceptPlan(scopes, over, [], sorted({c.label for p in over for c in p.causes}))
    acc, partial, labels = [], [], set()
    for p in over:
        inside = {c.label: any(cause_matches(c, s) for s in scopes) for c in p.causes}
        labels |= {k for k, v in inside.items() if v}
        if inside and all(inside.values()):
            acc.append(p)
        elif any(inside.values()):
            partial.append((p, sorted(k for k, v in inside.items() if not v)))
    if over and not labels:
        known = sorted({c.label for p in over for c in p.causes})
        raise CatalogError(
            f"--accept {' '.join(repr(s) for s in scopes)} names no cause of an over-tolerance "
            f"pair; their causes: " + "; ".join(f"[{i}] {k}" for i, k in enumerate(known, 1)))
    return AcceptPlan(scopes, acc, partial, sorted(labels))


def accept(catalog: Any, bd: BuildDiff, who: str, why: str,
           scopes: Sequence[str]) -> AcceptPlan:
    """Accept as the new baseline the over-tolerance pairs of ``bd`` whose every root cause is
    in ``scopes`` (``plan_accept``): one ``accepted`` row per pair in the ``diffs`` table
    (detail: who, why, scope, the causes, diff_id) and one ``diff_accepted`` build event. Later
    diffs of the same two products report ``accepted`` and do not fail; every other pair is
    judged as before. Returns the plan (``.pairs`` were accepted)."""
    if not (who or "").strip() or not (why or "").strip():
        raise CatalogError("accepting a difference needs who and why (--who NAME --why TEXT)")
    plan = plan_accept(bd, scopes)
    if not plan.pairs:  # nothing over tolerance in scope: no baseline to record
        return plan
    now = dt.datetime.now(dt.timezone.utc)
    with catalog.batch(f"accept-{bd.diff_id}") as b:
        for p in plan.pairs:
            b.add("diffs", {"diff_id": bd.diff_id, "build_a": bd.build_a, "build_b": bd.build_b,
                            "subject": p.subject, "product_kind": p.kind,
                            "product_a": p.product_a, "product_b": p.product_b,
                            "identical": False, "metric": "accepted", "value": 1.0,
                            "detail_json": json.dumps(clean_json(
                                {"who": who, "why": why, "diff_id": bd.diff_id,
                                 "scope": list(plan.scopes), "group": p.group, "stage": p.stage,
                                 "instrument": p.instrument,
                                 "causes": sorted({c.label for c in p.causes})}),
                                sort_keys=True, default=str),
                            "at": now})
        b.add("build_events", {"build": bd.build_b, "event": "diff_accepted", "at": now,
                               "who": who,
                               "why": f"{why} (diff {bd.diff_id} against {bd.build_a}: "
                                      f"{len(plan.pairs)} product(s) accepted for "
                                      f"{' | '.join(plan.scopes)})"})
    for p in plan.pairs:
        p.status = "accepted"
        p.accepted = {"who": who, "why": why, "diff_id": bd.diff_id, "scope": list(plan.scopes),
                      "at": now.isoformat()}
    return plan
