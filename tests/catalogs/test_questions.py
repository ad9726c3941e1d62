"""The provenance questions of docs/cookbook.md, answered on a catalog made by real flow runs.

The catalog is the session's shared scenario of tests/flows/test_reissue.py (simulate, ingest,
run under 11.1.1, two reissues with `reprocess --stale`, a run under a build with a new CRDS
context, 11.1.1 archived). Each answer is checked against an independent derivation: lineage
walks of catalogs/lineage.py, product metadata, the runs' recorded outputs, build manifests.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from catalogs import questions as q
from catalogs.lineage import upstream
from store.errors import CatalogError
from transforms import registry

REF = "jwst_nircam_dark_0001.fits"


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


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    return _scenario_module().load_scenario(tmp_path_factory)


def _ask(home: str, *argv: str) -> tuple[int, str]:
    return _scenario_module().ask(home, *argv)


def _outputs(ws, run_id: str, subject: str, stage: str) -> dict[str, str]:
    return _scenario_module()._outputs(ws, run_id, subject, stage)


def _products(ws) -> dict[str, dict]:
    rows = ws.catalog.sql("SELECT product_id, any_value(kind) AS kind, any_value(subject) AS "
                          "subject FROM products GROUP BY product_id").to_pylist()
    return {r["product_id"]: r for r in rows}


@pytest.fixture(scope="module")
def walks(scenario):
    """Every non-pointing product's upstream walk (rows of catalogs.lineage.upstream)."""
    ws, _ = scenario
    return {pid: upstream(ws.catalog, pid).to_pylist()
            for pid, p in _products(ws).items() if p["kind"] not in ("pointing", "uncal")}


# --- 1. predicted ephemeris ------------------------------------------------------------------

def test_predicted_ephemeris_matches_lineage_walks(scenario, walks):
    ws, rec = scenario
    predicted = {r["pointing_id"] for r in ws.catalog.sql(
        "SELECT pointing_id FROM exposures WHERE eph_type = 'PREDICTED'").to_pylist()}
    expected = {pid for pid, rows in walks.items() if predicted & {r["id"] for r in rows}}
    table = q.predicted_ephemeris(ws.catalog)
    got = {r["product_id"]: r for r in table.to_pylist()}
    assert set(got) == expected and expected
    kinds = {r["kind"] for r in got.values()}
    assert not kinds & {"rate", "rateints", "uncal"}  # stage 1 never reads the pointing
    eid = rec["eph_exposure"]
    old_cal = _outputs(ws, rec["runs"]["initial"], eid, "image2")["cal"]
    new_cal = _outputs(ws, rec["runs"]["ephemeris"], eid, "image2")["cal"]
    assert got[old_cal]["reissued_since"] is True
    assert got[old_cal]["predicted_exposures"] == [f"{eid} v1"]
    assert new_cal not in got
    nis = next(e for e in rec["exposures"] if e.endswith("_nis"))
    nis_cal = _outputs(ws, rec["runs"]["initial"], nis, "image2")["cal"]
    assert got[nis_cal]["reissued_since"] is False  # never reissued: still predicted


# --- 2. products made with a reference file --------------------------------------------------

def _direct(rows: list[dict], users: set[str], products: set[str]) -> bool:
    """Some recipe using the file lies on a path with no stored product between."""
    for r in rows:
        if r["id"] in users:
            between = r["path"].split("/")[1:-1]
            if not products & set(between):
                return True
    return False


def test_uses_reference_and_descendants_match_lineage_walks(scenario, walks):
    ws, rec = scenario
    users = set(ws.catalog.sql("SELECT recipe_key FROM recipe_refs WHERE filename = $1",
                               [REF]).column(0).to_pylist())
    products = set(_products(ws))
    direct = {pid for pid, rows in walks.items() if _direct(rows, users, products)}
    desc = {pid for pid, rows in walks.items() if users & {r["id"] for r in rows}}
    got = q.uses_reference(ws.catalog, REF).to_pylist()
    got_desc = q.uses_reference(ws.catalog, REF, descendants=True).to_pylist()
    assert {r["product_id"] for r in got} == direct
    assert {r["product_id"] for r in got_desc} == desc
    assert {r["product_id"] for r in got_desc if r["generation"] == 0} == direct
    assert direct < desc  # cal, i2d and catalogs descend from the rates
    assert {r["kind"] for r in got} == {"rate", "rateints"}
    assert not any(r["subject"].endswith("_nis") or "niriss" in r["subject"] for r in got_desc)
    # The exposures CRDS gave that dark (simulator truth, either context) and no others.
    truth = rec["expected_refs"]
    users_truth = {e for ctx in truth.values() for e, refs in ctx.items()
                   if refs.get("dark") == REF}
    assert {r["subject"] for r in got} == users_truth and users_truth < set(rec["exposures"])
    # By content hash and by path: the same answer.
    h = ws.catalog.sql("SELECT any_value(ref_hash) FROM recipe_refs WHERE filename = $1",
                       [REF]).column(0)[0].as_py()
    assert q.uses_reference(ws.catalog, h).to_pylist() == got
    assert q.uses_reference(ws.catalog, f"/some/cache/{REF}").to_pylist() == got
    with pytest.raises(CatalogError, match="no recipe in the catalog used reference"):
        q.uses_reference(ws.catalog, "jwst_nircam_dark_9999.fits")


# --- 3. archived builds ------------------------------------------------------------------------

def test_archived_builds_matches_the_runs_recorded_outputs(scenario):
    ws, rec = scenario
    assert ws.builds.get("11.1.1").status == "archived"  # the new-context build was promoted
    rc, out = _ask(rec["home"], "ask", "archived-builds", "-f", "json")
    assert rc == 0
    got = {r["product_id"]: r for r in json.loads(out)}

    def made_by(build: str) -> set[str]:
        rows = ws.catalog.sql("SELECT DISTINCT product_id FROM run_steps WHERE build = $1 AND "
                              "status = 'ok' AND product_id LIKE '{%'", [build]).column(0)
        return {p for text in rows.to_pylist() for p in json.loads(text).values()}

    ctx_build = _scenario_module().CTX_BUILD
    old, ctx = made_by("11.1.1"), made_by(ctx_build)
    assert set(got) == old
    for pid, r in got.items():
        assert r["archived_builds"] == ["11.1.1"]
        assert r["live_builds"] == ([ctx_build] if pid in ctx else [])
    assert old & ctx and old - ctx  # shared stage-1 products and replaced ones both occur


# --- 4. one product's provenance -------------------------------------------------------------

def _param_value(row: dict):
    return row["value"] if row["detail"] == "VARCHAR" or row["value"] is None else json.loads(
        row["value"])


def test_provenance_of_a_reissued_cal(scenario):
    from catalogs import builds as buildlib

    ws, rec = scenario
    eid = rec["eph_exposure"]
    cal = _outputs(ws, rec["runs"]["ephemeris"], eid, "image2")["cal"]
    rows = q.provenance(ws.catalog, cal[:20]).to_pylist()  # a unique prefix is enough
    by = lambda s: [r for r in rows if r["section"] == s]  # noqa: E731
    assert by("product")[0]["value"] == "cal" and by("product")[0]["detail"] == eid
    assert [(r["name"], r["value"]) for r in by("build")] == [("11.1.1", "archived")]
    assert [(r["step"], r["name"], r["value"]) for r in by("crds_context")] == [
        ("image2", "11.1.1", "jwst_0001.pmap")]
    # Every reference of every step in its lineage: what the simulator says CRDS must pick.
    build = ws.builds.get("11.1.1")
    truth = rec["expected_refs"]["jwst_0001.pmap"][eid]
    reftypes = {r for stage in ("detector1", "image2") for p in buildlib.plan(build, stage)
                if not p.skip for r in p.spec.reftypes
                + tuple(o for o in p.spec.optional_reftypes if truth.get(o, "N/A") != "N/A")}
    assert {(r["name"], r["value"]) for r in by("reference")} == {(t, truth[t]) for t in reftypes}
    # Every parameter: the build's plan for both stages, the 11.1.1 workaround included.
    expected = {}
    for stage in ("detector1", "image2"):
        for p in buildlib.plan(build, stage):
            if not p.skip:
                for k, v in p.spec.science_params(p.params).items():
                    expected[(p.spec.name, k)] = json.loads(json.dumps(v, default=str))
    got = {(r["step"], r["name"]): _param_value(r) for r in by("parameter")}
    assert got == expected
    assert got[("saturation", "use_readpatt")] is False
    # SDP version and ephemeris type of the exposure version it came from.
    assert [(r["name"], r["value"], r["detail"]) for r in by("sdp_version")] == [
        (f"{eid} v2", "2025.1.0", "pixels and pointing")]
    assert [(r["name"], r["value"]) for r in by("ephemeris")] == [(f"{eid} v2", "DEFINITIVE")]
    # The rate (shared by both versions: same pixels) names both versions.
    rate = _outputs(ws, rec["runs"]["ephemeris"], eid, "detector1")["rate"]
    eph = {(r["name"], r["value"]) for r in q.provenance(ws.catalog, rate).to_pylist()
           if r["section"] == "ephemeris"}
    assert eph == {(f"{eid} v1", "PREDICTED"), (f"{eid} v2", "DEFINITIVE")}
    with pytest.raises(CatalogError, match="no product or recipe"):
        q.provenance(ws.catalog, "sha256:ffffffffffffffff0000")


# --- 5. what a new context would affect ------------------------------------------------------

def test_affected_predicts_exactly_what_the_new_context_run_recomputed(scenario):
    ws, rec = scenario
    predicted = {tuple(x) for x in rec["affected"]}
    ran = ws.catalog.sql("SELECT DISTINCT subject, stage, cache_hit FROM run_steps WHERE "
                         "run_id = $1 AND status = 'ok'", [rec["runs"]["ctx"]]).to_pylist()
    recomputed = {(r["subject"], r["stage"]) for r in ran if not r["cache_hit"]}
    reused = {(r["subject"], r["stage"]) for r in ran if r["cache_hit"]}
    assert predicted == recomputed
    assert predicted and reused  # the prediction discriminates


def test_affected_cli_names_the_changed_references(scenario):
    ws, rec = scenario
    rc, out = _ask(rec["home"], "affected", "--context", "jwst_0002.pmap", "--build", "11.1.1",
                   "-f", "json")
    assert rc == 0
    rows = json.loads(out)
    # Exactly the references the simulator's truth says differ between the two contexts.
    from catalogs import builds as buildlib

    truth = rec["expected_refs"]
    build = ws.builds.get("11.1.1")
    got = {(r["subject"], r["reftype"], r["old_file"], r["new_file"]) for r in rows if r["step"]}
    expected = set()
    for e in rec["exposures"]:
        old, new = truth["jwst_0001.pmap"][e], truth["jwst_0002.pmap"][e]
        for stage in ("detector1", "image2"):
            for p in buildlib.plan(build, stage):
                for r in p.spec.reftypes if not p.skip else ():
                    if old.get(r) != new.get(r):
                        expected.add((e, r, old.get(r), new.get(r)))
    assert got == expected
    assert {r for _, r, _, _ in got} == {"dark", "flat"}
    assert all(r["products"] for r in rows)
    # The build's own context changes nothing.
    rc, out = _ask(rec["home"], "affected", "--context", "jwst_0001.pmap", "--build", "11.1.1",
                   "-f", "json")
    assert rc == 0 and json.loads(out) == []


# --- 6. nondeterministic recipes -------------------------------------------------------------

def test_nondeterministic_is_empty_for_real_runs_and_finds_a_forced_one(scenario, tmp_path):
    from flows import stages
    from flows.runner import run_stage
    from flows.workspace import Workspace

    ws, rec = scenario
    assert q.nondeterministic(ws.catalog).num_rows == 0
    assert _ask(rec["home"], "ask", "nondeterministic")[0] == 0
    # A copy of the workspace, where one stage is re-run with a chain that is not a function
    # of its recipe (a perturbed rate): the same recipe key now has two products.
    home = tmp_path / "copy"
    shutil.copytree(rec["home"], home, ignore=shutil.ignore_patterns(".prefect"))
    ws2 = Workspace(home)
    ctx_build = _scenario_module().CTX_BUILD
    eid = rec["exposures"][0]
    recipe, load = stages.recipe_for(ws2, ctx_build, "detector1", eid)
    real = registry.stage("detector1").run

    def noisy(data, steps, on_step):
        out = dict(real(data, steps, on_step))
        rate = out["rate"]
        out["rate"] = rate.replace(arrays={"data": rate["data"] + np.float32(1e-3)})
        return out

    outcome = run_stage(ws2, recipe, load, noisy, "nondeterminism-test", force=True)
    assert outcome.status == "ok"
    rows = q.nondeterministic(ws2.catalog).to_pylist()
    assert [r["recipe_key"] for r in rows] == [recipe.output_keys["rate"]]
    assert rows[0]["n_products"] == 2 and outcome.outputs["rate"] in rows[0]["product_ids"]
    assert rows[0]["subjects"] == [eid] and rows[0]["step"] == "detector1:rate"
    assert _ask(str(home), "ask", "nondeterministic")[0] == 1


# --- the CLI and the cookbook ----------------------------------------------------------------

def test_questions_write_nothing(scenario):
    """Asking (affected included: "before anything runs") leaves every catalog file as it was,
    once the build manifests are recorded."""
    ws, rec = scenario
    q.record_builds(ws.catalog, ws.builds.all())
    from catalogs.schema import TABLES

    before = {t: ws.catalog.files(t) for t in TABLES}
    store_before = sorted(p.name for p in Path(ws.store_url).rglob("*") if p.is_file())
    cal = _outputs(ws, rec["runs"]["initial"], rec["exposures"][0], "image2")["cal"]
    for argv in (("ask", "predicted-ephemeris"), ("ask", "uses-reference", REF),
                 ("ask", "archived-builds"), ("ask", "nondeterministic"), ("provenance", cal),
                 ("affected", "--context", "jwst_0002.pmap", "--build", "11.1.1"),
                 ("export-prov", cal)):
        assert _ask(rec["home"], *argv)[0] == 0, argv
    assert {t: ws.catalog.files(t) for t in TABLES} == before
    assert sorted(p.name for p in Path(ws.store_url).rglob("*") if p.is_file()) == store_before


def test_cli_answers_equal_the_functions(scenario):
    ws, rec = scenario
    rc, out = _ask(rec["home"], "ask", "predicted-ephemeris", "-f", "json")
    assert rc == 0
    assert [r["product_id"] for r in json.loads(out)] == \
        q.predicted_ephemeris(ws.catalog).column("product_id").to_pylist()
    rc, out = _ask(rec["home"], "ask", "uses-reference", REF, "--descendants", "-f", "csv")
    assert rc == 0
    assert out.splitlines()[1:] and len(out.splitlines()) - 1 == \
        q.uses_reference(ws.catalog, REF, True).num_rows
    rc, out = _ask(rec["home"], "ask", "uses-reference", "--show-sql", "x")
    assert rc == 0 and out.strip() == q.USES_REFERENCE_SQL.strip()


def test_cookbook_shows_the_sql_the_code_runs(repo_root):
    text = (repo_root / "docs" / "cookbook.md").read_text()
    for name, sql in q.QUESTIONS.items():
        assert sql in text, f"docs/cookbook.md lacks the SQL of {name}"
    for cmd in ("calops ask predicted-ephemeris", "calops ask uses-reference",
                "calops ask archived-builds", "calops provenance", "calops affected",
                "calops ask nondeterministic", "calops export-prov"):
        assert cmd in text
