"""Lineage: where a product came from (upstream) and what was made from it (downstream).

The provenance graph has two kinds of node: products (content ids) and recipes (recipe keys).
A product is ``made_by`` the recipe(s) realised as it; a recipe reads its inputs by role, where an
input is a stored product's id or, for an in-memory intermediate, the recipe key of the step that
made it. Both walks are one recursive query over the ``lineage_edges`` view (child -> parent).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from store.errors import CatalogError

MAX_DEPTH = 500

_WALK = """
WITH RECURSIVE walk(depth, node, parent, role, path) AS (
    SELECT 0, CAST(? AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), [CAST(? AS VARCHAR)]
    UNION ALL
    SELECT w.depth + 1, e.{next}, w.node, e.role, list_append(w.path, e.{next})
    FROM walk w JOIN lineage_edges e ON e.{this} = w.node
    WHERE w.depth < {max_depth} AND NOT list_contains(w.path, e.{next})
)
SELECT w.depth, w.node AS id, w.parent, w.role,
       CASE WHEN r.step IS NOT NULL THEN 'recipe' WHEN p.kind IS NOT NULL THEN 'product'
            ELSE 'unknown' END AS node_type,
       coalesce(p.kind, '') AS kind, coalesce(r.step, '') AS step,
       coalesce(r.step_version, '') AS step_version, array_to_string(w.path, '/') AS path
FROM walk w
LEFT JOIN (SELECT product_id, any_value(kind) AS kind FROM products GROUP BY product_id) p
       ON p.product_id = w.node
LEFT JOIN (SELECT recipe_key, any_value(step) AS step, any_value(step_version) AS step_version
           FROM recipes GROUP BY recipe_key) r ON r.recipe_key = w.node
ORDER BY path
"""


_ALL_IDS = ("SELECT product_id AS id FROM products UNION SELECT recipe_key FROM recipes "
            "UNION SELECT product_id FROM realisations UNION SELECT input_id FROM recipe_inputs")


def resolve(catalog: Any, ident: str) -> str:
    """A full id from a full id or a unique prefix (with or without ``sha256:``) of a product
    id or recipe key the catalog knows; a clear error if none or several match."""
    ident = ident.strip()
    like = ident.replace("%", "").replace("_", "") + "%"
    t = catalog.sql(f"SELECT DISTINCT id FROM ({_ALL_IDS}) WHERE id = ? OR id LIKE ? "
                    "OR id LIKE 'sha256:' || ? ORDER BY id LIMIT 3", [ident, like, like])
    ids = t.column("id").to_pylist()
    if ident in ids:
        return ident
    if not ids:
        raise CatalogError(f"no product or recipe in the catalog matches {ident!r}")
    if len(ids) > 1:
        raise CatalogError(f"{ident!r} is ambiguous ({', '.join(i[:20] + '…' for i in ids)}); "
                           "give more of the id")
    return ids[0]


def _walk(catalog: Any, ident: str, upstream: bool, max_depth: int) -> pa.Table:
    this, nxt = ("child", "parent") if upstream else ("parent", "child")
    q = _WALK.format(this=this, next=nxt, max_depth=int(max_depth))
    return catalog.sql(q, [ident, ident])


def upstream(catalog: Any, ident: str, max_depth: int = MAX_DEPTH) -> pa.Table:
    """Rows (depth, id, parent, role, node_type, kind, step, step_version, path) of everything
    ``ident`` was made from, depth 0 being ``ident`` itself, in tree order."""
    return _walk(catalog, resolve(catalog, ident), True, max_depth)


def downstream(catalog: Any, ident: str, max_depth: int = MAX_DEPTH) -> pa.Table:
    """The same rows for everything made (directly or not) from ``ident``."""
    return _walk(catalog, resolve(catalog, ident), False, max_depth)


def object_problems(store: Any, ids: Any) -> dict[str, str]:
    """``{id: problem}`` for the ids whose stored object is missing or fails verification
    (re-hashed); ids that are not object ids (recipe keys are addressed the same way, so
    callers pass only product ids) are checked all the same."""
    out: dict[str, str] = {}
    for ident in dict.fromkeys(ids):
        try:
            problem = store.check(ident)
        except CatalogError:
            raise
        except Exception as exc:  # noqa: BLE001 - a malformed id is a problem of its own
            problem = str(exc)
        if problem:
            out[ident] = "missing from the store" if problem == "missing" else "corrupt"
    return out


def flag(rows: pa.Table, store: Any) -> pa.Table:
    """The walk with a ``problem`` column: for each product node whose stored object is
    missing or fails verification, what is wrong (NULL otherwise)."""
    listed = rows.to_pylist()
    bad = object_problems(store, [r["id"] for r in listed if r["node_type"] == "product"])
    unknown = object_problems(store, [r["id"] for r in listed if r["node_type"] == "unknown"])
    bad.update({i: p for i, p in unknown.items() if p == "corrupt"})  # a recipe key is "missing"
    if not bad:
        problems = [None] * rows.num_rows
    else:
        problems = [bad.get(i) if t != "recipe" else None
                    for i, t in zip(rows.column("id").to_pylist(),
                                    rows.column("node_type").to_pylist())]
    if "problem" in rows.column_names:
        rows = rows.drop(["problem"])
    return rows.append_column("problem", pa.array(problems, pa.string()))


def short(ident: str | None, n: int = 12) -> str:
    """``sha256:0123456789ab`` for display."""
    if not ident:
        return ""
    algo, _, hexd = ident.partition(":")
    return f"{algo}:{hexd[:n]}" if hexd else ident[:n + 7]


def format_tree(rows: pa.Table | list[dict[str, Any]], full_ids: bool = False) -> str:
    """The walk as an indented tree, one node per line."""
    rows = rows.to_pylist() if isinstance(rows, pa.Table) else list(rows)
    if not rows:
        return "(nothing)"
    lines = []
    last_at_depth: dict[int, bool] = {}
    # Pre-compute which rows are the last child of their parent, for the box drawing.
    is_last = [True] * len(rows)
    for i, r in enumerate(rows):
        for j in range(i + 1, len(rows)):
            d = rows[j]["depth"]
            if d < r["depth"]:
                break
            if d == r["depth"]:
                is_last[i] = False
                break
    for i, r in enumerate(rows):
        d = r["depth"]
        ident = r["id"] if full_ids else short(r["id"])
        if r["node_type"] == "recipe":
            label = f"recipe {ident}  {r['step']} v{r['step_version']}"
        elif r["node_type"] == "product":
            label = f"{r['kind'] or 'product'} {ident}"
        else:
            label = f"{ident}  (not in the catalog)"
        if r.get("problem"):
            label += f"  !! {r['problem'].upper()}: fails verification"
        if d == 0:
            lines.append(label)
            continue
        role = "" if r["role"] == "made_by" else f"{r['role']}: "
        prefix = "".join("   " if last_at_depth.get(k, True) else "│  " for k in range(1, d))
        lines.append(f"{prefix}{'└─ ' if is_last[i] else '├─ '}{role}{label}")
        last_at_depth[d] = is_last[i]
    return "\n".join(lines)
