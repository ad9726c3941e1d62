"""Lineage walks: upstream through in-memory intermediates, downstream, prefixes, cycles."""

from __future__ import annotations

import pytest

from catalogs import lineage as L
from catalogs.catalog import Catalog
from store.errors import CatalogError
from store.identity import hash_bytes, recipe_key

UNCAL, POINTING, RATE, CAL = (hash_bytes(n.encode()) for n in ("uncal", "pointing", "rate", "cal"))
K_DQ = recipe_key("dq_init", "1", {}, {"uncal": UNCAL, "pointing": POINTING}, {})
K_JUMP = recipe_key("jump", "1", {"threshold": 4.0}, {"input": K_DQ}, {})
K_RATE = recipe_key("output", "1", {"name": "rate"}, {"recipe": K_JUMP}, {})
K_FLAT = recipe_key("flat_field", "1", {}, {"input": RATE}, {})


@pytest.fixture
def cat(tmp_path):
    cat = Catalog(tmp_path)
    with cat.batch("run") as b:
        for p, kind in ((UNCAL, "uncal"), (POINTING, "pointing"), (RATE, "rate"), (CAL, "cal")):
            b.add("products", {"product_id": p, "kind": kind})
        for k, step, inputs in ((K_DQ, "dq_init", {"uncal": UNCAL, "pointing": POINTING}),
                                (K_JUMP, "jump", {"input": K_DQ}),
                                (K_RATE, "detector1:rate", {"recipe": K_JUMP}),
                                (K_FLAT, "flat_field", {"input": RATE})):
            b.add("recipes", {"recipe_key": k, "step": step, "step_version": "1"})
            for role, i in inputs.items():
                b.add("recipe_inputs", {"recipe_key": k, "role": role, "input_id": i})
        b.add("realisations", {"recipe_key": K_RATE, "product_id": RATE})
        b.add("realisations", {"recipe_key": K_FLAT, "product_id": CAL})
    cat.write("realisations", [{"recipe_key": K_RATE, "product_id": RATE}], "rerun")  # a hit
    return cat


def test_upstream_walks_through_intermediates_to_the_raw_inputs(cat):
    rows = L.upstream(cat, CAL).to_pylist()
    got = [(r["depth"], r["id"], r["role"], r["node_type"]) for r in rows]
    assert sorted(got) == sorted([
        (0, CAL, None, "product"), (1, K_FLAT, "made_by", "recipe"), (2, RATE, "input", "product"),
        (3, K_RATE, "made_by", "recipe"), (4, K_JUMP, "recipe", "recipe"),
        (5, K_DQ, "input", "recipe"), (6, POINTING, "pointing", "product"),
        (6, UNCAL, "uncal", "product")])
    seen = set()
    for r in rows:  # tree order: every node comes after its parent
        assert r["parent"] is None or r["parent"] in seen
        seen.add(r["id"])
    tree = L.format_tree(rows)
    assert tree.splitlines()[0] == f"cal {L.short(CAL)}"
    assert "uncal: uncal " + L.short(UNCAL) in tree and "jump v1" in tree


def test_downstream(cat):
    ids = {r["id"]: r["depth"] for r in L.downstream(cat, UNCAL).to_pylist()}
    assert ids == {UNCAL: 0, K_DQ: 1, K_JUMP: 2, K_RATE: 3, RATE: 4, K_FLAT: 5, CAL: 6}
    assert {r["id"] for r in L.downstream(cat, CAL).to_pylist()} == {CAL}


def test_prefixes_resolve_or_fail_clearly(cat):
    assert L.upstream(cat, CAL[:20]).to_pylist()[0]["id"] == CAL
    assert L.resolve(cat, CAL.split(":")[1][:16]) == CAL
    with pytest.raises(CatalogError, match="no product or recipe"):
        L.resolve(cat, "sha256:ffffffffffffffff0")
    with pytest.raises(CatalogError, match="no product or recipe"):
        L.upstream(cat, hash_bytes(b"never recorded"))
    with pytest.raises(CatalogError, match="ambiguous"):
        L.resolve(cat, "sha256:")


def test_a_cycle_terminates(tmp_path):
    cat = Catalog(tmp_path)
    a, b = hash_bytes(b"a"), hash_bytes(b"b")
    cat.write("recipe_inputs", [{"recipe_key": a, "role": "input", "input_id": b},
                                {"recipe_key": b, "role": "input", "input_id": a}], "w")
    cat.write("recipes", [{"recipe_key": a, "step": "x"}, {"recipe_key": b, "step": "y"}], "w")
    rows = L.upstream(cat, a).to_pylist()
    assert [r["id"] for r in rows] == [a, b]
