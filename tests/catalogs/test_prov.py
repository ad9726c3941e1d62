"""W3C PROV-JSON export of a product's lineage, on the catalog of real flow runs.

The document is validated against the shape of the PROV-JSON schema of the W3C member
submission (https://www.w3.org/Submission/prov-json/, section 4 and its JSON schema),
restricted to the record types calops writes; then its content is checked against the
catalog's own lineage walk.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sys
from pathlib import Path

import jsonschema
import pytest

from catalogs.lineage import upstream
from catalogs.prov import PREFIXES, export, prov_document, to_json
from store.errors import CatalogError



def _scenario_module():
    """tests/flows/test_reissue.py, loaded once under a fixed name (it builds the scenario)."""
    name = "calops_reissue_scenario"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "flows" / "test_reissue.py"
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def _ask(home: str, *argv: str) -> tuple[int, str]:
    return _scenario_module().ask(home, *argv)


def _outputs(ws, run_id: str, subject: str, stage: str) -> dict[str, str]:
    return _scenario_module()._outputs(ws, run_id, subject, stage)

_ID = {"type": "string", "pattern": r"^[A-Za-z_][\w.\-]*:.+$"}  # a QName
_TIME = {"type": "string", "format": "date-time"}
_TYPED = {"type": "object", "properties": {"$": {"type": "string"}, "type": {"type": "string"},
                                           "lang": {"type": "string"}},
          "required": ["$"], "additionalProperties": False}
_VALUE = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}, _TYPED,
                    {"type": "array", "minItems": 1,
                     "items": {"anyOf": [{"type": "string"}, {"type": "number"},
                                         {"type": "boolean"}, _TYPED]}}]}


def _relation(required: list[str], ids: list[str], times: tuple[str, ...] = ()) -> dict:
    props = {k: _ID for k in ids} | {k: _TIME for k in times}
    return {"type": "object", "additionalProperties": {
        "type": "object", "properties": props, "required": required,
        "additionalProperties": _VALUE}}


PROV_JSON_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "prefix": {"type": "object", "patternProperties": {
            r"^[A-Za-z_][\w.\-]*$": {"type": "string", "format": "uri"}},
            "additionalProperties": False},
        "entity": {"type": "object", "additionalProperties": {
            "type": "object", "additionalProperties": _VALUE}},
        "activity": {"type": "object", "additionalProperties": {
            "type": "object", "properties": {"prov:startTime": _TIME, "prov:endTime": _TIME},
            "additionalProperties": _VALUE}},
        "agent": {"type": "object", "additionalProperties": {
            "type": "object", "additionalProperties": _VALUE}},
        "wasGeneratedBy": _relation(["prov:entity"], ["prov:entity", "prov:activity"],
                                    ("prov:time",)),
        "used": _relation(["prov:activity"], ["prov:activity", "prov:entity"], ("prov:time",)),
        "wasDerivedFrom": _relation(["prov:generatedEntity", "prov:usedEntity"],
                                    ["prov:generatedEntity", "prov:usedEntity", "prov:activity",
                                     "prov:generation", "prov:usage"]),
        "wasAssociatedWith": _relation(["prov:activity"],
                                       ["prov:activity", "prov:agent", "prov:plan"]),
    },
}
# Which kind of record each relation's id attributes must name.
_TARGETS = {"prov:entity": "entity", "prov:activity": "activity", "prov:agent": "agent",
            "prov:generatedEntity": "entity", "prov:usedEntity": "entity"}


@pytest.fixture(scope="module")
def cal_doc(tmp_path_factory):
    ws, rec = _scenario_module().load_scenario(tmp_path_factory)
    cal = _outputs(ws, rec["runs"]["ephemeris"], rec["eph_exposure"], "image2")["cal"]
    return ws, rec, cal, prov_document(ws.catalog, cal)


def test_document_has_the_prov_json_shape(cal_doc):
    _, _, _, doc = cal_doc
    jsonschema.validate(doc, PROV_JSON_SCHEMA, format_checker=jsonschema.FormatChecker())
    declared = set(doc["prefix"]) | {"prov", "xsd"}
    for section in ("entity", "activity", "agent"):
        for ident in doc[section]:
            assert ident.split(":", 1)[0] in declared, ident
    for rel in ("wasGeneratedBy", "used", "wasDerivedFrom", "wasAssociatedWith"):
        assert doc[rel], f"no {rel} records"
        for rid, body in doc[rel].items():
            assert rid.startswith("_:")
            for attr, section in _TARGETS.items():
                if attr in body:
                    assert body[attr] in doc[section], (rel, attr, body[attr])
            for t in ("prov:time",):
                if t in body:
                    assert dt.datetime.fromisoformat(body[t]).tzinfo is not None
    # Every id a relation names is a record of the right kind, and nothing is both.
    assert not set(doc["entity"]) & set(doc["activity"])


def test_a_bad_document_fails_the_schema(cal_doc):
    """The schema check can fail: a generation without its entity, a non-QName id."""
    _, _, _, doc = cal_doc
    bad = json.loads(json.dumps(doc))
    rid = next(iter(bad["wasGeneratedBy"]))
    del bad["wasGeneratedBy"][rid]["prov:entity"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, PROV_JSON_SCHEMA)
    bad = json.loads(json.dumps(doc))
    bad["used"]["_:x"] = {"prov:activity": "no qname here"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, PROV_JSON_SCHEMA)


def test_document_holds_the_whole_lineage(cal_doc):
    ws, rec, cal, doc = cal_doc
    walk = upstream(ws.catalog, cal).to_pylist()
    products = {r["id"] for r in walk if r["node_type"] == "product"}
    recipes = {r["id"] for r in walk if r["node_type"] == "recipe"}
    assert {f"product:{p}" for p in products} <= set(doc["entity"])
    assert {f"recipe:{k}" for k in recipes} == set(doc["activity"])
    ent = doc["entity"][f"product:{cal}"]
    assert ent["calops:kind"] == "cal" and ent["calops:productId"] == cal
    gen = [g for g in doc["wasGeneratedBy"].values() if g["prov:entity"] == f"product:{cal}"]
    assert len(gen) == 1 and "prov:time" in gen[0]
    assert doc["activity"][gen[0]["prov:activity"]]["calops:step"] == "image2:cal"
    # Every reference file each recipe used, with its role.
    refs = ws.catalog.sql("SELECT DISTINCT recipe_key, reftype, filename FROM recipe_refs "
                          "WHERE recipe_key IN (SELECT unnest($1::VARCHAR[]))",
                          [sorted(recipes)]).to_pylist()
    used = {(u["prov:activity"], u["prov:entity"], u.get("prov:role"))
            for u in doc["used"].values()}
    assert refs and all((f"recipe:{r['recipe_key']}", f"crds:{r['filename']}", r["reftype"])
                        in used for r in refs)
    # The exposure version it came from: definitive ephemeris, reissue SDP version.
    cur = ws.catalog.current_exposure(rec["eph_exposure"])
    pointing = doc["entity"][f"product:{cur['pointing_id']}"]
    assert pointing["calops:ephemerisType"] == ["DEFINITIVE"]
    assert pointing["calops:sdpVersion"] == [cur["sdp_ver"]]
    # Derived from the stored products its stage read: the rate and the pointing.
    derived = {d["prov:usedEntity"] for d in doc["wasDerivedFrom"].values()
               if d["prov:generatedEntity"] == f"product:{cal}"}
    rate = _outputs(ws, rec["runs"]["ephemeris"], rec["eph_exposure"], "detector1")["rate"]
    assert derived == {f"product:{rate}", f"product:{cur['pointing_id']}"}
    # The builds: 11.1.1 ran image2; the rate's recipes were also reused by the new build.
    agents = {a["prov:agent"] for a in doc["wasAssociatedWith"].values()
              if a["prov:activity"] == gen[0]["prov:activity"]}
    assert agents == {"build:11.1.1"}
    assert doc["agent"]["build:11.1.1"]["calops:status"] == "archived"
    assert all(v.startswith("urn:calops:") for v in doc["prefix"].values()) and \
        doc["prefix"] == PREFIXES


def test_export_is_deterministic_and_the_cli_writes_it(cal_doc, tmp_path):
    ws, rec, cal, doc = cal_doc
    assert export(ws.catalog, cal) == export(ws.catalog, cal) == to_json(doc)
    out = tmp_path / "cal.prov.json"
    rc, _ = _ask(rec["home"], "export-prov", cal[:24], "-o", str(out))
    assert rc == 0 and json.loads(out.read_text()) == doc


def test_export_refuses_what_is_not_a_product(cal_doc):
    ws, _, cal, doc = cal_doc
    recipe = next(iter(doc["activity"])).removeprefix("recipe:")
    with pytest.raises(CatalogError, match="not a product"):
        prov_document(ws.catalog, recipe)
    with pytest.raises(CatalogError, match="no product or recipe"):
        prov_document(ws.catalog, "sha256:0000000000000000ffff")


def test_every_product_exports_a_valid_document_of_its_lineage(cal_doc):
    """Property over the products of the real runs (hypothesis picks them)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    ws = cal_doc[0]
    pids = sorted(ws.catalog.sql("SELECT DISTINCT product_id FROM products").column(0)
                  .to_pylist())

    @settings(max_examples=10, deadline=None)
    @given(st.sampled_from(pids))
    def check(pid):
        doc = prov_document(ws.catalog, pid)
        jsonschema.validate(doc, PROV_JSON_SCHEMA)
        walk = upstream(ws.catalog, pid).to_pylist()
        products = {f"product:{r['id']}" for r in walk if r["node_type"] == "product"}
        assert {e for e in doc["entity"] if e.startswith("product:")} == products
        generated = {g["prov:entity"] for g in doc["wasGeneratedBy"].values()}
        kind = doc["entity"][f"product:{pid}"]["calops:kind"]
        # Ingested parts are made by no recipe; everything else by exactly its recipe(s).
        assert (f"product:{pid}" in generated) == (kind not in ("uncal", "pointing"))

    check()
