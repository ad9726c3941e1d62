"""The runner's hit/miss rules, proven from the catalog after real stage runs."""

from __future__ import annotations

import dataclasses
import json

import pytest

from catalogs import builds as buildlib
from flows import stages
from flows.runner import PeakRSS

STAGES = ("detector1", "image2")


def run_all(ws, build, run_id, stage_names=STAGES):
    out = {}
    for stage in stage_names:
        for eid in ws.catalog.current_exposure_ids():
            res = stages.run(ws, build, stage, eid, run_id)
            out[(stage, eid)] = res
    return out


def derived_build(ws, name, base="11.1.1", context=None, steps=None):
    """A development build that differs from ``base`` only as stated."""
    b = ws.builds.get(base)
    pins = buildlib.pins_of(b)
    for step, params in (steps or {}).items():
        old = pins.get(step, buildlib.StepPin())
        pins[step] = dataclasses.replace(old, params={**old.params, **params})
    new = dataclasses.replace(b, name=name, status="development", crds_context=context or b.crds_context,
                              steps=pins, operations_date=None, candidate_date=None,
                              lock=None, lock_hash=None)
    (ws.builds.dir / f"{name}.toml").write_text(buildlib.dump_manifest(new))
    return new


def n_objects(ws):
    """Stored products and inputs (record objects, the catalog's copies in the store, aside)."""
    from catalogs.recovery import product_ids

    return len(product_ids(ws.store))


def test_first_run_computes_and_records_every_recipe(sim_ws):
    res = run_all(sim_ws, "11.1.1", "r1")
    assert all(r.status == "ok" for r in res.values()), {k: r.error for k, r in res.items()}
    assert not any(r.hit for r in res.values())
    for (stage, eid), r in res.items():
        want = {"detector1": {"rate", "rateints"}, "image2": {"cal", "i2d"}}[stage]
        assert want <= set(r.outputs)
        for pid in r.outputs.values():
            assert sim_ws.store.check(pid) is None
    # every output is reachable from the catalog: realisation -> product row -> object
    rows = sim_ws.catalog.sql(
        "SELECT DISTINCT r.product_id FROM realisations r JOIN products p USING (product_id)").num_rows
    assert rows >= sum(len(r.outputs) for r in res.values())


def test_rerun_is_all_hits_and_writes_no_new_object(sim_ws):
    first = run_all(sim_ws, "11.1.1", "r1")
    before = n_objects(sim_ws)
    second = run_all(sim_ws, "11.1.1", "r2")
    assert all(r.hit for r in second.values())
    assert {k: r.outputs for k, r in second.items()} == {k: r.outputs for k, r in first.items()}
    assert n_objects(sim_ws) == before
    hits = sim_ws.catalog.sql(
        "SELECT bool_and(cache_hit) AS all_hit, count(*) AS n FROM run_steps "
        "WHERE run_id = 'r2' AND status != 'skipped'").to_pylist()[0]
    assert hits["all_hit"] is True and hits["n"] > 0


def test_stage2_reference_change_reuses_every_stage1_product(sim_ws):
    run_all(sim_ws, "11.1.1", "ops")
    derived_build(sim_ws, "flat-only", context="jwst_0003.pmap")
    res = run_all(sim_ws, "flat-only", "cand")
    # proven from the catalog: every stage-1 step of the candidate run was a hit
    d1 = sim_ws.catalog.sql(
        "SELECT bool_and(cache_hit) AS h, count(DISTINCT subject) AS n FROM run_steps "
        "WHERE run_id = 'cand' AND stage = 'detector1'").to_pylist()[0]
    assert d1 == {"h": True, "n": len(sim_ws.catalog.current_exposure_ids())}
    # and stage 2 recomputed where the flat changed, with the new flat in its recipe
    changed = [r for (stage, _), r in res.items() if stage == "image2" and not r.hit]
    assert changed, "context 3 changes a flat: some cal must be recomputed"
    flats = sim_ws.catalog.sql(
        "SELECT DISTINCT rr.filename FROM run_steps s JOIN recipe_refs rr USING (recipe_key) "
        "WHERE s.run_id = 'cand' AND rr.reftype = 'flat'").column("filename").to_pylist()
    ops_flats = sim_ws.catalog.sql(
        "SELECT DISTINCT rr.filename FROM run_steps s JOIN recipe_refs rr USING (recipe_key) "
        "WHERE s.run_id = 'ops' AND rr.reftype = 'flat'").column("filename").to_pylist()
    assert set(flats) != set(ops_flats)


def test_stage1_parameter_change_recomputes_stage1_and_after(sim_ws):
    ops = run_all(sim_ws, "11.1.1", "ops")
    derived_build(sim_ws, "tight-jump", steps={"jump": {
        "rejection_threshold": 3.0, "four_group_rejection_threshold": 3.0,
        "three_group_rejection_threshold": 3.0}})
    res = run_all(sim_ws, "tight-jump", "cand")
    for (stage, eid), r in res.items():
        assert not r.hit, (stage, eid, r.reason)
        if stage == "detector1":
            assert r.outputs["rate"] != ops[(stage, eid)].outputs["rate"]
    # the new recipes record the changed parameter
    params = sim_ws.catalog.sql(
        "SELECT DISTINCT r.params_json FROM run_steps s JOIN recipes r USING (recipe_key) "
        "WHERE s.run_id = 'cand' AND s.step = 'jump'").column("params_json").to_pylist()
    assert params and all(json.loads(p)["rejection_threshold"] == 3.0 for p in params)


def test_execution_only_parameters_are_not_part_of_the_recipe(sim_ws):
    """The number of cores changes how, not what: the same recipe keys, all hits."""
    ops = run_all(sim_ws, "11.1.1", "ops")
    derived_build(sim_ws, "two-cores", steps={"jump": {"maximum_cores": "2"},
                                              "ramp_fit": {"maximum_cores": "2"}})
    res = run_all(sim_ws, "two-cores", "cand")
    assert all(r.hit and r.outputs == ops[k].outputs for k, r in res.items())
    params = sim_ws.catalog.sql("SELECT params_json FROM recipes WHERE step = 'jump'").column(0)
    assert all("maximum_cores" not in json.loads(p) for p in params.to_pylist())


def test_identical_stage1_output_stops_recomputation_downstream(sim_ws):
    """Early cutoff: a parameter value that cannot change this output (ramp_fit's first group
    named as 0, which is where it starts anyway) makes new stage-1 recipes, but their products
    are bit-identical, so every stage-2 recipe is a hit."""
    ops = run_all(sim_ws, "11.1.1", "ops")
    derived_build(sim_ws, "first-group-0", steps={"ramp_fit": {"firstgroup": 0}})
    res = run_all(sim_ws, "first-group-0", "cand")
    for (stage, eid), r in res.items():
        if stage == "detector1":
            assert not r.hit and r.outputs == ops[(stage, eid)].outputs
        else:
            assert r.hit and r.outputs == ops[(stage, eid)].outputs


def test_corrupt_stored_product_is_recomputed_not_reused(sim_ws):
    first = run_all(sim_ws, "11.1.1", "r1", ("detector1",))
    (stage, eid), r = next(iter(first.items()))
    pid = r.outputs["rate"]
    path = sim_ws.store.path_of(pid)
    import os

    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(-1, 2)
        b = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([b[0] ^ 0xFF]))
    assert sim_ws.store.check(pid) is not None
    again = stages.run(sim_ws, "11.1.1", "detector1", eid, "r2")
    assert not again.hit and "corrupt" in again.reason
    assert again.outputs["rate"] == pid  # deterministic: the same content again
    assert sim_ws.store.check(pid) is None  # and now intact


def test_failing_exposure_leaves_the_others_complete(sim_ws, monkeypatch):
    eids = sim_ws.catalog.current_exposure_ids()
    bad = eids[0]
    real_get = sim_ws.store.get
    pixels_bad = sim_ws.catalog.current_exposure(bad)["pixels_id"]

    def flaky_get(pid):
        if pid == pixels_bad:
            raise ValueError("simulated failure reading this exposure")
        return real_get(pid)

    monkeypatch.setattr(sim_ws.store, "get", flaky_get)
    res = {e: stages.run(sim_ws, "11.1.1", "detector1", e, "r1") for e in eids}
    assert res[bad].status == "failed" and "simulated failure" in res[bad].error
    for e in eids[1:]:
        assert res[e].status == "ok" and set(res[e].outputs) == {"rate", "rateints"}
    rows = sim_ws.catalog.sql(
        "SELECT subject, status, error FROM run_steps WHERE run_id = 'r1'").to_pylist()
    assert any(r["subject"] == bad and r["status"] == "failed" and "simulated" in r["error"]
               for r in rows)
    # no product row from the failed exposure
    n = sim_ws.catalog.sql(
        "SELECT count(*) AS n FROM products WHERE subject = ? AND kind IN ('rate', 'rateints')",
        [bad]).to_pylist()[0]["n"]
    assert n == 0


def test_archived_build_runs_nothing(sim_ws):
    res = stages.run(sim_ws, "11.0.1", "detector1", sim_ws.catalog.current_exposure_ids()[0], "r")
    assert res.status == "failed" and "archived" in res.error


def test_recipe_keys_are_known_before_any_work(sim_ws):
    eid = sim_ws.catalog.current_exposure_ids()[0]
    recipe, _ = stages.recipe_for(sim_ws, "11.1.1", "detector1", eid)
    assert recipe.output_keys["rate"].startswith("sha256:")
    assert n_objects(sim_ws) == 2 * len(sim_ws.catalog.current_exposure_ids())  # only inputs
    res = stages.run(sim_ws, "11.1.1", "detector1", eid, "r")
    assert sim_ws.catalog.realisations(recipe.output_keys["rate"]) == [res.outputs["rate"]]


def test_save_intermediates_stores_each_step(sim_ws):
    eid = sim_ws.catalog.current_exposure_ids()[0]
    res = stages.run(sim_ws, "11.1.1", "detector1", eid, "r", save_intermediates=True)
    kinds = sim_ws.catalog.sql(
        "SELECT p.kind, count(*) AS n FROM products p WHERE subject = ? GROUP BY p.kind",
        [eid]).to_pylist()
    assert res.status == "ok"
    assert {k["kind"] for k in kinds} >= {"ramp", "rate", "rateints"}


def test_peak_rss_sampler_sees_an_allocation():
    import numpy as np

    with PeakRSS() as m:
        base = PeakRSS.rss()
        a = np.ones(50_000_000, np.uint8)  # 50 MB touched
        a[::4096] = 2
    assert m.peak >= base + 40_000_000


def test_save_intermediates_of_image3_keeps_each_steps_own_product(sim_ws):
    """A stage over a set of exposures saves what a step makes under that step's key: the
    i2d under resample's, the catalog under source_catalog's; the steps that change the set
    (tweakreg, skymatch, outlier_detection) have no one product and save none."""
    eids = sim_ws.catalog.current_exposure_ids()
    for stage in ("detector1", "image2"):
        for eid in eids:
            assert stages.run(sim_ws, "11.1.1", stage, eid, "r").status == "ok"
    (asn, *_) = stages.subjects(sim_ws, "image3", eids)
    res = stages.run(sim_ws, "11.1.1", "image3", asn, "r", save_intermediates=True)
    assert res.status == "ok", res.error
    recipe, _ = stages.recipe_for(sim_ws, "11.1.1", "image3", asn)
    saved = {s.name: sim_ws.catalog.realisations(s.key) for s in recipe.steps}
    assert saved["resample"] == [res.outputs["i2d"]]
    assert saved["source_catalog"] == [res.outputs["catalog"]]
    assert all(not saved[n] for n in ("tweakreg", "skymatch", "outlier_detection"))
