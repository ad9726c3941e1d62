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
from transforms import compare_spec as cmp_spec

STATUSES = ("identical", "within", "accepted", "over", "only_a", "only_b")
# The value of a ``status`` row in the diffs table (a number, so SQL can sort and threshold).
STATUS_CODE = {s: i for i, s in enumerate(STATUSES)}
FAILING = frozenset({"over", "only_a"})


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
    images: Mapping[str, np.ndarray] | None = None  # a, b, diff (2-D float32) for the report
    spectra: cmp_spec.SpectraDiff | None = None  # x1d/c1d: spectrum by spectrum

    @property
    def group(self) -> str:
        """The root causes of the pair, as one label ('' for identical pairs)."""
        labels = sorted({c.label for c in self.causes})
        return "; ".join(labels)

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "stage": self.stage, "kind": self.kind,
                "product_a": self.product_a, "product_b": self.product_b,
                "status": self.status, "instrument": self.instrument, "score": self.score,
                "first_step": self.first_step, "group": self.group,
                "causes": [c.to_dict() for c in self.causes],
                "accepted": dict(self.accepted) if self.accepted else None,
                "diff": self.diff.to_dict() if self.diff else None,
                "spectra": self.spectra.to_dict() if self.spectra else None}


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
           json_extract_string(pm.meta_json, '$."instrument.name"') AS instrument,
           json_extract_string(pm.meta_json, '$."instrument.detector"') AS detector,
           json_extract_string(pm.meta_json, '$."instrument.filter"') AS filter,
           json_extract_string(pm.meta_json, '$."exposure.type"') AS exp_type,
           json_extract_string(pm.meta_json, '$."observation.program_number"') AS program
    FROM outs o
    LEFT JOIN stage_keys sk ON sk.subject = o.subject AND sk.stage = o.stage
    LEFT JOIN (SELECT product_id, any_value(meta_json) AS meta_json FROM products
               GROUP BY product_id) pm ON pm.product_id = o.product_id
)
SELECT * FROM p WHERE ({where}) ORDER BY subject, stage, kind
"""


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


def attribute(g: Graph, stage: str, key_a: str, key_b: str, build_a: str, build_b: str,
              via: tuple[str, ...] = (), _depth: int = 0) -> tuple[list[Cause], str | None]:
    """Why two stage recipes differ: every recorded difference, and the first step (as
    ``stage.step``) where the two chains diverge."""
    if key_a == key_b:
        return [], None
    ca, cb = _chain(g, key_a), _chain(g, key_b)
    by_a = {g.recipes[k]["step"]: k for k in ca}
    by_b = {g.recipes[k]["step"]: k for k in cb}
    order = [g.recipes[k]["step"] for k in ca]
    for k in cb:  # steps run only in b, placed after their predecessor
        name = g.recipes[k]["step"]
        if name not in by_a:
            prev = [g.recipes[x]["step"] for x in cb[: cb.index(k)]]
            pos = max([order.index(p) + 1 for p in prev if p in order], default=0)
            order.insert(pos, name)
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

def _score(d: cmp.ModelDiff) -> float:
    fr = [a.frac_over for a in d.arrays.values()]
    if d.catalog:
        fr += [c.frac_over for c in d.catalog.columns.values()]
        n = max(d.catalog.n_a, d.catalog.n_b, 1)
        fr.append((d.catalog.n_only_a + d.catalog.n_only_b) / n)
    return max(fr, default=0.0) + (1.0 if d.meta_changed and not fr else 0.0)


def _images(a: Any, b: Any, max_size: int) -> dict[str, np.ndarray] | None:
    if a.kind == "catalog" or "data" not in a.arrays or "data" not in b.arrays:
        return None
    x, y = a["data"], b["data"]
    if x.shape != y.shape or x.ndim < 2:
        return None
    pick = cmp.worst_plane(x, y)
    return {"a": cmp.preview(x, max_size, pick), "b": cmp.preview(y, max_size, pick),
            "diff": cmp.difference_image(x, y, max_size)}


def diff_builds(catalog: Any, store: Any, build_a: str, build_b: str, where: str | None = None,
                config: cmp.CompareConfig = cmp.CompareConfig(), n_images: int = 5,
                image_size: int = 256, workers: int = 2) -> BuildDiff:
    """Pair, compare and attribute every product of ``build_a`` against ``build_b``; keep
    pictures (A, B, B - A at most ``image_size`` a side) of the ``n_images`` worst pairs."""
    if build_a == build_b:
        raise CatalogError(f"diff needs two different builds, got {build_a!r} twice")
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
    def compare_pair(ab: tuple[Product, Product]) -> cmp.ModelDiff:
        return cmp.compare_models(store.get(ab[0].product_id), store.get(ab[1].product_id), config)

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
        d = diffs[key]
        causes, first = attribute(graph, stage, a.stage_key, b.stage_key, build_a, build_b)
        status = "over" if d.over else "within"
        acc = accepted.get((a.product_id, b.product_id)) if d.over else None
        if acc:
            status = "accepted"
        pairs.append(PairResult(subject, stage, kind, a.product_id, b.product_id, status, inst,
                                d, causes, first, acc, _score(d)))
    now = dt.datetime.now(dt.timezone.utc)
    diff_id = f"diff-{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"
    bd = BuildDiff(diff_id, build_a, build_b, where, config, pairs, now)
    for p in bd.worst(n_images):  # pictures for the report: the worst pairs are read again
        if p.kind != "catalog":
            p.images = _images(store.get(p.product_a), store.get(p.product_b), image_size)
    for p in bd.pairs:  # 1-D spectra: wavelength shifts and flux ratios, spectrum by spectrum
        if p.kind in cmp_spec.KINDS and p.status in ("over", "within", "accepted"):
            p.spectra = cmp_spec.compare_spectra(store.get(p.product_a),
                                                 store.get(p.product_b), config)
    return bd


# --- rows ------------------------------------------------------------------------------------

def rows(bd: BuildDiff) -> list[dict[str, Any]]:
    """The diff as ``diffs`` rows: per pair a ``status`` row (value: STATUS_CODE, detail: the
    status, instrument, stage, first diverging step, cause group), one ``cause`` row per root
    cause, and numeric rows ``max_abs:<array>``, ``max_rel:<array>``, ``frac_over:<array>``,
    ``dq_gained:<FLAG>``/``dq_lost:<FLAG>`` (pixels), ``sources_only_a``/``sources_only_b``,
    ``spec_ratio:<spectrum>`` (a 1-D spectrum's median flux ratio B/A; detail: its wavelength
    shift in pixels, largest deviation, elements over tolerance)."""
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
             "reasons": list(p.diff.reasons) if p.diff else [], "accepted": p.accepted})
        for c in p.causes:
            row(p, "cause", None, {**base, **c.to_dict(), "cause": c.label})
        for sp in (p.spectra.pairs if p.spectra else ()):
            row(p, f"spec_ratio:{sp.name}", sp.ratio_median, {**base, **sp.to_dict()})
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


def accept(catalog: Any, bd: BuildDiff, who: str, why: str) -> int:
    """Accept every over-tolerance difference of ``bd`` as the new baseline: one ``accepted``
    diffs row per pair and one ``diff_accepted`` build event (who, why). Later diffs of the
    same two products report ``accepted`` and do not fail. Returns the pairs accepted."""
    if not (who or "").strip() or not (why or "").strip():
        raise CatalogError("accepting a difference needs who and why (--who NAME --why TEXT)")
    over = [p for p in bd.pairs if p.status == "over"]
    if not over:  # nothing over tolerance: no baseline to record
        return 0
    with catalog.batch(f"accept-{bd.diff_id}") as b:
        for p in over:
            b.add("diffs", {"diff_id": bd.diff_id, "build_a": bd.build_a, "build_b": bd.build_b,
                            "subject": p.subject, "product_kind": p.kind,
                            "product_a": p.product_a, "product_b": p.product_b,
                            "identical": False, "metric": "accepted", "value": 1.0,
                            "detail_json": json.dumps({"who": who, "why": why,
                                                       "diff_id": bd.diff_id, "group": p.group,
                                                       "stage": p.stage}, sort_keys=True),
                            "at": dt.datetime.now(dt.timezone.utc)})
        b.add("build_events", {"build": bd.build_b, "event": "diff_accepted",
                               "at": dt.datetime.now(dt.timezone.utc), "who": who,
                               "why": f"{why} (diff {bd.diff_id} against {bd.build_a}: "
                                      f"{len(over)} product(s) accepted)"})
    for p in over:
        p.status, p.accepted = "accepted", {"who": who, "why": why, "diff_id": bd.diff_id}
    return len(over)
