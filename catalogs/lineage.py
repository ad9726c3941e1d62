"""Lineage: where a product came from (upstream) and what was made from it (downstream).

The provenance graph has two kinds of node: products (content ids) and recipes (recipe keys).
A product is ``made_by`` the recipe(s) realised as it; a recipe reads its inputs by role, where an
input is a stored product's id or, for an in-memory intermediate, the recipe key of the step that
made it. Both walks go breadth first, one query per level with the level's ids as a literal IN list,
so on a compacted (sorted) catalog each level reads one row group per table instead of the
whole provenance graph: milliseconds per level at a million products (docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from store.errors import CatalogError

MAX_DEPTH = 500

_COLUMNS = ["depth", "id", "parent", "role", "node_type", "kind", "step", "step_version",
            "path"]
_UP = ("SELECT product_id AS near, recipe_key AS far, 'made_by' AS role FROM realisations "
       "WHERE product_id IN ({ph}) UNION ALL "
       "SELECT recipe_key, input_id, role FROM recipe_inputs WHERE recipe_key IN ({ph})")
_DOWN = ("SELECT recipe_key AS near, product_id AS far, 'made_by' AS role FROM realisations "
         "WHERE recipe_key IN ({ph}) UNION ALL "
         "SELECT input_id, recipe_key, role FROM recipe_inputs WHERE input_id IN ({ph})")


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
    """Breadth first from ``ident``; rows in tree order (by path), each node once per path."""
    with catalog.session({"realisations", "recipe_inputs", "products", "recipes"}) as q:
        return _walk_in(q, ident, upstream, max_depth)


def _walk_in(q: Any, ident: str, upstream: bool, max_depth: int) -> pa.Table:
    query = _UP if upstream else _DOWN
    edges: dict[str, list[tuple[str, str]]] = {}  # node -> [(next node, role)]
    frontier, seen, depth = [ident], {ident}, 0
    while frontier and depth < max_depth:
        rows = []
        for i in range(0, len(frontier), 2000):
            chunk = frontier[i:i + 2000]
            ph = ", ".join("?" * len(chunk))
            rows += q(query.format(ph=ph), chunk + chunk)
        nxt = []
        for r in sorted({(r["near"], r["far"], r["role"]) for r in rows}):
            edges.setdefault(r[0], []).append((r[1], r[2]))
            if r[1] not in seen:
                seen.add(r[1])
                nxt.append(r[1])
        frontier, depth = nxt, depth + 1
    kinds, steps = _annotate(q, sorted(seen))
    out: list[dict[str, Any]] = []

    def visit(node: str, parent: str | None, role: str | None, path: list[str]) -> None:
        d = len(path) - 1
        step = steps.get(node)
        out.append({"depth": d, "id": node, "parent": parent, "role": role,
                    "node_type": "recipe" if step else "product" if node in kinds else "unknown",
                    "kind": kinds.get(node, ""), "step": step[0] if step else "",
                    "step_version": step[1] if step else "", "path": "/".join(path)})
        if d >= max_depth:
            return
        for nxt, r in edges.get(node, ()):
            if nxt not in path:
                visit(nxt, node, r, path + [nxt])

    visit(ident, None, None, [ident])
    out.sort(key=lambda r: r["path"])
    schema = pa.schema([("depth", pa.int32()), ("id", pa.string()), ("parent", pa.string()),
                        ("role", pa.string()), ("node_type", pa.string()), ("kind", pa.string()),
                        ("step", pa.string()), ("step_version", pa.string()),
                        ("path", pa.string())])
    return pa.Table.from_pylist(out, schema=schema)


def _annotate(q: Any, ids: list[str]) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """Kind of each product and (step, version) of each recipe among ``ids``."""
    kinds: dict[str, str] = {}
    steps: dict[str, tuple[str, str]] = {}
    for i in range(0, len(ids), 2000):
        chunk = ids[i:i + 2000]
        ph = ", ".join("?" * len(chunk))
        for r in q(f"SELECT product_id, any_value(kind) AS kind FROM products "
                   f"WHERE product_id IN ({ph}) GROUP BY product_id", chunk):
            kinds[r["product_id"]] = r["kind"] or ""
        for r in q(f"SELECT recipe_key, any_value(step) AS step, any_value(step_version) "
                   f"AS v FROM recipes WHERE recipe_key IN ({ph}) GROUP BY recipe_key", chunk):
            steps[r["recipe_key"]] = (r["step"] or "", r["v"] or "")
    return kinds, steps


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
