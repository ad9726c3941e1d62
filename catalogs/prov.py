"""A product's lineage as a W3C PROV-JSON document (https://www.w3.org/Submission/prov-json/).

Mapping from the catalog's provenance graph (docs/cookbook.md, "Export to W3C PROV"):

- **entities**: stored products (``product:<id>``, with kind, subject and, for ingested
  level-1b parts, the exposure versions with their SDP version and ephemeris type), in-memory
  intermediates (``intermediate:<recipe key>``: a step's output that was never stored; the next
  step read it by that key) and reference files (``crds:<file name>``, with reftype and content
  hash);
- **activities**: recipes (``recipe:<key>``): pipeline steps, and the stage-output recipes that
  name a stage's stored products;
- **agents**: builds (``build:<name>``, ``prov:SoftwareAgent``) whose runs computed or reused a
  recipe;
- relations ``used`` (role = input role or reftype), ``wasGeneratedBy`` (with the time the
  realisation was recorded), ``wasDerivedFrom`` (a product from the stored products its stage
  read) and ``wasAssociatedWith`` (recipe -> build).

Identifiers are QNames over ``urn:calops:`` namespaces, so ``product:sha256:…`` expands to
``urn:calops:product:sha256:…`` and the catalog id is the part after the prefix.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from typing import Any

from store.errors import CatalogError

PREFIXES = {
    "calops": "urn:calops:ns#",
    "product": "urn:calops:product:",
    "intermediate": "urn:calops:intermediate:",
    "recipe": "urn:calops:recipe:",
    "crds": "urn:calops:crds:",
    "build": "urn:calops:build:",
}
RELATIONS = ("used", "wasGeneratedBy", "wasDerivedFrom", "wasAssociatedWith")


def _qn(name: str) -> dict[str, str]:
    """A PROV-JSON typed literal of type prov:QUALIFIED_NAME."""
    return {"$": name, "type": "prov:QUALIFIED_NAME"}


def _time(t: Any) -> str | None:
    if t is None:
        return None
    if isinstance(t, dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.timezone.utc)
        return t.astimezone(dt.timezone.utc).isoformat()
    return str(t)


def _ids_sql(table: str, column: str, select: str = "*") -> str:
    return f"SELECT {select} FROM {table} WHERE {column} IN (SELECT unnest($1::VARCHAR[]))"


def prov_document(catalog: Any, product_id: str) -> dict[str, Any]:
    """The PROV-JSON document (a dict) of everything ``product_id`` was made from."""
    from catalogs.lineage import resolve, upstream

    pid = resolve(catalog, product_id)
    walk = upstream(catalog, pid).to_pylist()
    if not walk or walk[0]["node_type"] != "product":
        raise CatalogError(f"{pid} is not a product in the catalog; export-prov takes a "
                           "product id")
    nodes = {r["id"] for r in walk}
    recipe_keys = sorted(r["id"] for r in walk if r["node_type"] == "recipe")
    product_ids = sorted(r["id"] for r in walk if r["node_type"] == "product")

    products = {r["product_id"]: r for r in catalog.sql(
        _ids_sql("products", "product_id", "product_id, any_value(kind) AS kind, "
                 "any_value(subject) AS subject, min(created_at) AS created_at")
        + " GROUP BY product_id", [product_ids]).to_pylist()}
    recipes = {r["recipe_key"]: r for r in catalog.sql(
        _ids_sql("recipes", "recipe_key", "recipe_key, any_value(step) AS step, "
                 "any_value(step_version) AS step_version, any_value(params_json) AS params_json")
        + " GROUP BY recipe_key", [recipe_keys]).to_pylist()}
    inputs = catalog.sql(_ids_sql("recipe_inputs", "recipe_key",
                                  "DISTINCT recipe_key, role, input_id")
                         + " ORDER BY recipe_key, role", [recipe_keys]).to_pylist()
    refs = catalog.sql(_ids_sql("recipe_refs", "recipe_key",
                                "DISTINCT recipe_key, reftype, filename, ref_hash")
                       + " ORDER BY recipe_key, reftype", [recipe_keys]).to_pylist()
    made = catalog.sql(_ids_sql("realisations", "product_id",
                                "recipe_key, product_id, min(created_at) AS created_at")
                       + " GROUP BY recipe_key, product_id ORDER BY product_id",
                       [product_ids]).to_pylist()
    steps = catalog.sql(_ids_sql("run_steps", "recipe_key",
                                 "recipe_key, build, min(\"at\") FILTER (WHERE NOT cache_hit) "
                                 "AS computed_at, list(DISTINCT crds_context) AS contexts")
                        + " AND status = 'ok' GROUP BY recipe_key, build",
                        [recipe_keys]).to_pylist()
    exposures = catalog.sql(
        "SELECT * FROM exposures WHERE pixels_id IN (SELECT unnest($1::VARCHAR[])) "
        "OR pointing_id IN (SELECT unnest($1::VARCHAR[])) ORDER BY exposure_id, version",
        [product_ids]).to_pylist()
    builds = {r["name"]: r for r in catalog.sql(
        "SELECT name, status, manifest_json FROM current_builds").to_pylist()}

    doc: dict[str, Any] = {"prefix": dict(PREFIXES), "entity": {}, "activity": {}, "agent": {}}
    for rel in RELATIONS:
        doc[rel] = {}
    counters: dict[str, int] = defaultdict(int)

    def relation(kind: str, body: dict[str, Any]) -> None:
        counters[kind] += 1
        doc[kind][f"_:{kind}{counters[kind]}"] = {k: v for k, v in body.items() if v is not None}

    # Entities: products (with exposure provenance for ingested parts).
    by_part: dict[str, list[dict]] = defaultdict(list)
    for x in exposures:
        by_part[x["pixels_id"]].append(x)
        by_part[x["pointing_id"]].append(x)
    for p in product_ids:
        row = products.get(p, {})
        label = f"{row.get('kind', 'product')} {row.get('subject') or ''}".strip()
        ent: dict[str, Any] = {"prov:type": _qn("calops:Product"), "calops:productId": p,
                               "calops:kind": row.get("kind"),
                               "calops:subject": row.get("subject"), "prov:label": label}
        xs = by_part.get(p, [])
        if xs:
            ent["calops:exposure"] = [f"{x['exposure_id']} v{x['version']}" for x in xs]
            ent["calops:sdpVersion"] = sorted({x["sdp_ver"] for x in xs if x["sdp_ver"]})
            ent["calops:ephemerisType"] = sorted({x["eph_type"] for x in xs if x["eph_type"]})
        doc["entity"][f"product:{p}"] = {k: v for k, v in ent.items() if v is not None}

    # Activities: recipes, with the builds that ran or reused them.
    agents_of: dict[str, list[dict]] = defaultdict(list)
    for s in steps:
        agents_of[s["recipe_key"]].append(s)
    last_step = {i["recipe_key"]: i["input_id"] for i in inputs if i["role"] == "recipe"}
    for key in recipe_keys:
        r = recipes.get(key, {})
        step = r.get("step") or "unknown"
        act: dict[str, Any] = {
            "prov:type": _qn("calops:StageOutput" if ":" in step else "calops:Step"),
            "prov:label": f"{step} v{r.get('step_version', '?')}",
            "calops:step": step, "calops:stepVersion": r.get("step_version"),
            "calops:recipeKey": key,
        }
        if ":" not in step:
            act["calops:params"] = r.get("params_json")
        contexts = sorted({c for s in agents_of.get(key, []) for c in s["contexts"] or () if c})
        if contexts:
            act["calops:crdsContext"] = contexts
        computed = [s["computed_at"] for s in agents_of.get(key, []) if s["computed_at"]]
        if computed:
            act["prov:endTime"] = _time(min(computed))
        doc["activity"][f"recipe:{key}"] = {k: v for k, v in act.items() if v is not None}
        builds_here = agents_of.get(key) or agents_of.get(last_step.get(key, ""), [])
        for b in sorted({s["build"] for s in builds_here if s["build"]}):
            relation("wasAssociatedWith", {"prov:activity": f"recipe:{key}",
                                           "prov:agent": f"build:{b}"})
            if f"build:{b}" not in doc["agent"]:
                rec = builds.get(b) or {}
                man = json.loads(rec.get("manifest_json") or "{}")
                doc["agent"][f"build:{b}"] = {k: v for k, v in {
                    "prov:type": _qn("prov:SoftwareAgent"), "prov:label": f"build {b}",
                    "calops:status": rec.get("status"),
                    "calops:pipelineVersion": man.get("pipeline_version"),
                    "calops:crdsContext": man.get("crds_context"),
                }.items() if v is not None}

    # used: stored products, in-memory intermediates, reference files.
    for i in inputs:
        src = i["input_id"]
        if src in recipes:
            ent_id = f"intermediate:{src}"
            if ent_id not in doc["entity"]:
                doc["entity"][ent_id] = {"prov:type": _qn("calops:InMemoryIntermediate"),
                                         "calops:recipeKey": src,
                                         "prov:label": f"output of {recipes[src]['step']}"}
                relation("wasGeneratedBy", {"prov:entity": ent_id,
                                            "prov:activity": f"recipe:{src}"})
        else:
            ent_id = f"product:{src}"
            if ent_id not in doc["entity"]:  # an input the catalog has no product row for
                doc["entity"][ent_id] = {"prov:type": _qn("calops:Product"),
                                         "calops:productId": src, "calops:missing": True}
        relation("used", {"prov:activity": f"recipe:{i['recipe_key']}", "prov:entity": ent_id,
                          "prov:role": i["role"]})
    for r in refs:
        ent_id = f"crds:{r['filename']}"
        doc["entity"].setdefault(ent_id, {"prov:type": _qn("calops:ReferenceFile"),
                                          "calops:reftype": r["reftype"],
                                          "calops:contentHash": r["ref_hash"],
                                          "prov:label": r["filename"]})
        relation("used", {"prov:activity": f"recipe:{r['recipe_key']}", "prov:entity": ent_id,
                          "prov:role": r["reftype"]})

    # wasGeneratedBy (products) and wasDerivedFrom (a product from its stage's stored inputs).
    for m in made:
        if m["recipe_key"] not in nodes:
            continue
        relation("wasGeneratedBy", {"prov:entity": f"product:{m['product_id']}",
                                    "prov:activity": f"recipe:{m['recipe_key']}",
                                    "prov:time": _time(m["created_at"])})
        for src in _stage_inputs(m["recipe_key"], inputs, recipes):
            relation("wasDerivedFrom", {"prov:generatedEntity": f"product:{m['product_id']}",
                                        "prov:usedEntity": f"product:{src}",
                                        "prov:activity": f"recipe:{m['recipe_key']}"})
    return doc


def _stage_inputs(key: str, inputs: list[dict], recipes: dict[str, Any]) -> list[str]:
    """Stored products read by ``key`` or, through in-memory intermediates, by the steps
    before it (the inputs of its stage)."""
    by_recipe: dict[str, list[str]] = defaultdict(list)
    for i in inputs:
        by_recipe[i["recipe_key"]].append(i["input_id"])
    out, todo, seen = set(), [key], set()
    while todo:
        k = todo.pop()
        if k in seen:
            continue
        seen.add(k)
        for src in by_recipe.get(k, ()):
            if src in recipes:
                todo.append(src)
            else:
                out.add(src)
    return sorted(out)


def to_json(doc: dict[str, Any], indent: int | None = 1) -> str:
    """The document as PROV-JSON text (sorted keys: the same lineage gives the same text)."""
    return json.dumps(doc, indent=indent, sort_keys=True) + "\n"


def export(catalog: Any, product_id: str) -> str:
    """``to_json(prov_document(catalog, product_id))``."""
    return to_json(prov_document(catalog, product_id))
