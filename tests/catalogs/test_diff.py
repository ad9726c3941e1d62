"""Build diffs: pairing, attribution, identical-without-reading, recording, acceptance.

The catalogs here are written by the real ``flows.runner.run_stage`` (recipes, inputs,
references, products, realisations and run_steps rows exactly as a flow run writes them), with a
toy three-stage science chain and in-memory "reference files" instead of CRDS: the plan for
each stage is built the way ``flows.runner.plan_stage`` builds it (one recipe key per step,
chained by role ``input``; stage outputs addressed by ``runner.output_key``). ``make_world`` is
also used by tests/flows/test_diff_cli.py and tests/flows/test_report_chromium.py.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import types
from typing import Any

import numpy as np
import pytest

from catalogs import diff as D
from flows import runner
from store.errors import CatalogError
from store.identity import hash_bytes, recipe_key
from transforms import registry
from transforms import dq as dqflags
from transforms.compare import CompareConfig, Tolerance
from transforms.model import DataModel

# In-memory reference files: name -> value. Their "content hash" is the hash of name + value.
REFS = {"jwst_nircam_dark_0001.fits": 2.0, "jwst_nircam_dark_0002.fits": 2.5,
        "jwst_niriss_dark_0001.fits": 1.0,
        "jwst_nircam_flat_0001.fits": 1.1, "jwst_niriss_flat_0001.fits": 0.9,
        "jwst_niriss_flat_0002.fits": 0.95}

EXPOSURES = {"jw01_nrcb1": "NIRCAM", "jw02_nrcb1": "NIRCAM", "jw03_nis": "NIRISS"}
ASN = ("asn-nrc", ("jw01_nrcb1", "jw02_nrcb1"))

BASE_BUILD: dict[str, Any] = {
    "refs": {"NIRCAM": {"dark": "jwst_nircam_dark_0001.fits", "flat": "jwst_nircam_flat_0001.fits"},
             "NIRISS": {"dark": "jwst_niriss_dark_0001.fits", "flat": "jwst_niriss_flat_0001.fits"}},
    "params": {"jump": {"rejection_threshold": 40.0}, "photom": {"scale": 1.0},
               "source_catalog": {"snr": 3.0}},
    "versions": {},
}


def ref_identity(name: str) -> tuple[str, str]:
    return name, hash_bytes(f"{name}={REFS[name]}".encode())


def variant(**changes: Any) -> dict[str, Any]:
    """A build manifest: the base with nested changes, e.g. refs={"NIRCAM": {"dark": ...}}."""
    b = copy.deepcopy(BASE_BUILD)
    for section, sub in changes.items():
        for k, v in sub.items():
            if isinstance(v, dict):
                b[section].setdefault(k, {}).update(v)
            else:
                b[section][k] = v
    return b


# --- the toy science -------------------------------------------------------------------------

STAGE_STEPS = {
    "detector1": (("dq_init", ()), ("dark_current", ("dark",)), ("jump", ()), ("ramp_fit", ())),
    "image2": (("flat_field", ("flat",)), ("photom", ())),
    "image3": (("resample", ()), ("source_catalog", ())),
}


def _detector1(uncal: DataModel, steps: list) -> dict[str, DataModel]:
    data = uncal["data"].astype(np.float32)  # (nints, ngroups, ny, nx)
    dq = np.zeros(data.shape[-2:], np.uint32)
    for s, _ in steps:
        if s.name == "dark_current":  # dark current accumulates group by group
            ramp = np.arange(data.shape[1], dtype=np.float32)[None, :, None, None]
            data = data - np.float32(REFS[s.refs["dark"][0]]) * ramp
        elif s.name == "jump":
            jump = (data[:, -1] - data[:, 0]).max(axis=0) > s.params["rejection_threshold"]
            dq = dq | np.where(jump, dqflags.JUMP_DET, 0).astype(np.uint32)
    ints = (data[:, -1] - data[:, 0]).astype(np.float32) / np.float32(data.shape[1] - 1)
    rate = ints.mean(axis=0).astype(np.float32)
    meta = dict(uncal.meta)
    return {"rate": DataModel("rate", {"data": rate, "dq": dq, "err": np.sqrt(np.abs(rate))}, meta),
            "rateints": DataModel("rateints", {"data": ints, "dq": np.broadcast_to(dq, ints.shape).copy()},
                                  meta)}


def _image2(rate: DataModel, steps: list) -> dict[str, DataModel]:
    data = rate["data"]
    for s, _ in steps:
        if s.name == "flat_field":
            data = data / np.float32(REFS[s.refs["flat"][0]])
        elif s.name == "photom":
            data = data * np.float32(s.params["scale"])
    cal = rate.replace(kind="cal", arrays={"data": data.astype(np.float32)})
    return {"cal": cal, "i2d": cal.replace(kind="i2d", arrays={"wht": np.ones_like(data)})}


def _image3(cals: tuple, steps: list) -> dict[str, DataModel]:
    mosaic = np.mean([c["data"] for c in cals], axis=0).astype(np.float32)
    snr = next(s.params["snr"] for s, _ in steps if s.name == "source_catalog")
    ys, xs = np.nonzero(mosaic > snr * np.median(mosaic))
    order = np.argsort(ys * 1000 + xs)[:20]
    ys, xs = ys[order], xs[order]
    cat = {"label": np.arange(1, xs.size + 1), "xcentroid": xs.astype(float),
           "ycentroid": ys.astype(float),
           "sky_centroid_ra": 10.0 + xs * 0.06 / 3600, "sky_centroid_dec": -5.0 + ys * 0.06 / 3600,
           "aper_total_flux": mosaic[ys, xs].astype(float) * 1e-6}
    return {"i2d": DataModel("i2d", {"data": mosaic}, dict(cals[0].meta)),
            "catalog": DataModel("catalog", cat, {"instrument.name": cals[0].meta["instrument.name"]})}


CHAINS = {"detector1": _detector1, "image2": _image2, "image3": _image3}


def plan(stage: str, subject: str, build_name: str, build: dict, instrument: str,
         inputs: dict[str, str]) -> runner.StageRecipe:
    """The stage's recipe, keys chained as flows.runner.plan_stage chains them."""
    steps, prev = [], None
    for name, reftypes in STAGE_STEPS[stage]:
        refs = {r: ref_identity(build["refs"][instrument][r]) for r in reftypes}
        params = dict(build["params"].get(name, {}))
        version = build["versions"].get(name, "1")
        ins = dict(inputs) if prev is None else {"input": prev}
        sr = runner.StepRecipe(name, version, params, ins, refs, {}, False)
        # the spec stand-in carries the recipe: the fake chains read it directly
        sr.planned = registry.PlannedStep(types.SimpleNamespace(name=name, recipe=sr), params)
        sr.key = prev = recipe_key(name, version, params, ins, refs)
        steps.append(sr)
    return runner.StageRecipe(stage, subject, build_name, "jwst_0001.pmap", steps, dict(inputs),
                              {o: runner.output_key(prev, o)
                               for o in registry.stage(stage).outputs})


def _chain(stage: str):
    def chain(data, plan, on_step):
        return CHAINS[stage](data, [(p.spec.recipe, None) for p in plan])
    return chain


def raw_inputs(ws: Any) -> dict[str, dict[str, str]]:
    """Store each exposure's uncal and pointing (as ingest would) and record their products."""
    out = {}
    with ws.catalog.batch("ingest") as b:
        for i, (eid, inst) in enumerate(sorted(EXPOSURES.items())):
            rng = np.random.default_rng(i)
            ramp = np.cumsum(rng.integers(0, 20, (2, 3, 12, 12)), axis=1).astype(np.uint16) + 100
            ramp[:, :, 3 + i, 4] += np.array([0, 150, 300], np.uint16)[None, :]  # a bright source
            uncal = DataModel("uncal", {"data": ramp}, {"instrument.name": inst,
                                                        "instrument.detector": "NRCB1"})
            pointing = DataModel("pointing", {}, {"wcsinfo.ra_ref": 10.0 + i})
            ids = {"input": ws.store.put(uncal), "pointing": ws.store.put(pointing)}
            for pid, m in ((ids["input"], uncal), (ids["pointing"], pointing)):
                b.add("products", {"product_id": pid, "kind": m.kind, "subject": eid,
                                   "meta_json": json.dumps(dict(m.meta), sort_keys=True)})
            out[eid] = ids
    return out


def run_build(ws: Any, name: str, build: dict, raw: dict[str, dict[str, str]],
              subjects: tuple[str, ...] | None = None) -> dict[tuple[str, str], dict[str, str]]:
    """Run detector1 and image2 on every exposure and image3 on the association."""
    outs: dict[tuple[str, str], dict[str, str]] = {}
    run_id = f"run-{name}"
    for eid, inst in sorted(EXPOSURES.items()):
        if subjects and eid not in subjects:
            continue
        r1 = plan("detector1", eid, name, build, inst, {"input": raw[eid]["input"]})
        o1 = runner.run_stage(ws, r1, lambda e=eid: ws.store.get(raw[e]["input"]),
                              _chain("detector1"), run_id)
        assert o1.status == "ok", o1.error
        rate = o1.outputs["rate"]
        r2 = plan("image2", eid, name, build, inst, {"input": rate, "pointing": raw[eid]["pointing"]})
        o2 = runner.run_stage(ws, r2, lambda r=rate: ws.store.get(r), _chain("image2"), run_id)
        assert o2.status == "ok", o2.error
        outs[(eid, "detector1")], outs[(eid, "image2")] = o1.outputs, o2.outputs
    asn, members = ASN
    if not subjects or asn in subjects:
        cals = {f"member:{e}": outs[(e, "image2")]["cal"] for e in members}
        r3 = plan("image3", asn, name, build, "NIRCAM", cals)
        o3 = runner.run_stage(ws, r3, lambda: tuple(ws.store.get(cals[k]) for k in sorted(cals)),
                              _chain("image3"), run_id)
        assert o3.status == "ok", o3.error
        outs[(asn, "image3")] = o3.outputs
    return outs


def make_world(ws: Any) -> dict[str, dict]:
    """A baseline and several candidate builds, all run into ``ws``."""
    raw = raw_inputs(ws)
    builds = {
        "base": BASE_BUILD,
        "newdark": variant(refs={"NIRCAM": {"dark": "jwst_nircam_dark_0002.fits"}}),
        "nisflat": variant(refs={"NIRISS": {"flat": "jwst_niriss_flat_0002.fits"}}),
        "jumpthr": variant(params={"jump": {"rejection_threshold": 20.0}}),
        "tiny": variant(params={"photom": {"scale": 1.0 + 2e-7}}),
        "photom2": variant(versions={"photom": "2"}, params={"photom": {"scale": 1.01}}),
    }
    outs = {name: run_build(ws, name, b, raw) for name, b in builds.items()}
    outs["partial"] = run_build(ws, "partial", BASE_BUILD, raw, subjects=("jw01_nrcb1",))
    return outs


class CountingStore:
    """The object store, recording which ids were read."""

    def __init__(self, store: Any):
        self.store, self.read = store, []

    def get(self, ident: str) -> DataModel:
        self.read.append(ident)
        return self.store.get(ident)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from flows.workspace import Workspace

    ws, _ = Workspace.init(tmp_path_factory.mktemp("diffworld") / "home")
    outs = make_world(ws)
    return ws, outs


# --- tests -----------------------------------------------------------------------------------


def _by(bd: D.BuildDiff) -> dict[tuple[str, str, str], D.PairResult]:
    return {(p.subject, p.stage, p.kind): p for p in bd.pairs}


def test_a_changed_reference_shows_exactly_the_affected_products_with_that_cause(world):
    ws, _ = world
    bd = D.diff_builds(ws.catalog, ws.store, "base", "newdark")
    by = _by(bd)
    assert len(by) == 3 * 4 + 2  # 3 exposures x (rate, rateints, cal, i2d) + asn (i2d, catalog)
    expected = {(e, st, k) for e in ("jw01_nrcb1", "jw02_nrcb1")
                for st, ks in (("detector1", ("rate", "rateints")), ("image2", ("cal", "i2d")))
                for k in ks} | {("asn-nrc", "image3", "i2d"), ("asn-nrc", "image3", "catalog")}
    assert {k for k, p in by.items() if p.status != "identical"} == expected
    label = ("reference dark (detector1.dark_current): jwst_nircam_dark_0001.fits -> "
             "jwst_nircam_dark_0002.fits")
    for k in expected:
        assert by[k].status == "over", (k, by[k].status)
        assert {c.label for c in by[k].causes} == {label}, k
    for k in set(by) - expected:
        assert by[k].causes == [] and by[k].product_a == by[k].product_b
        assert by[k].diff is None
    assert by[("jw01_nrcb1", "detector1", "rate")].first_step == "detector1.dark_current"
    # stage-2 and stage-3 products are traced through their upstream inputs to the dark
    cal = by[("jw01_nrcb1", "image2", "cal")]
    assert cal.first_step == "image2.flat_field"
    assert cal.causes[0].via == ("image2.flat_field input input <- detector1",)
    cat = by[("asn-nrc", "image3", "catalog")]
    assert cat.first_step == "image3.resample" and len(cat.causes[0].via) == 2
    assert list(bd.groups()) == [label] and len(bd.groups()[label]) == len(expected)
    assert bd.failed


def test_numbers_match_a_direct_comparison_of_the_stored_products(world):
    ws, _ = world
    from transforms.compare import compare_models

    bd = D.diff_builds(ws.catalog, ws.store, "base", "newdark")
    assert any(p.diff is not None for p in bd.pairs)
    for p in bd.pairs:
        if p.diff is not None:
            direct = compare_models(ws.store.get(p.product_a), ws.store.get(p.product_b))
            assert direct.reasons == p.diff.reasons
            assert p.status == ("over" if direct.over else "within")


def test_a_build_that_changes_nothing_a_product_depends_on_is_identical_without_reading(world):
    ws, _ = world
    store = CountingStore(ws.store)
    bd = D.diff_builds(ws.catalog, store, "base", "nisflat")
    by = _by(bd)
    nircam = [p for k, p in by.items() if k[0] != "jw03_nis"]
    assert nircam and all(p.status == "identical" for p in nircam)
    assert by[("jw03_nis", "detector1", "rate")].status == "identical"
    for p in nircam + [by[("jw03_nis", "detector1", "rate")]]:
        assert p.product_a not in store.read and p.product_b not in store.read
    cal, i2d = by[("jw03_nis", "image2", "cal")], by[("jw03_nis", "image2", "i2d")]
    assert set(store.read) == {cal.product_a, cal.product_b, i2d.product_a, i2d.product_b}
    assert cal.status == "over"
    assert [c.label for c in cal.causes] == [
        "reference flat (image2.flat_field): jwst_niriss_flat_0001.fits -> jwst_niriss_flat_0002.fits"]
    assert cal.first_step == "image2.flat_field"
    assert bd.failed


def test_a_parameter_that_only_moves_dq_flags_is_a_dq_only_change(world):
    ws, _ = world
    bd = D.diff_builds(ws.catalog, ws.store, "base", "jumpthr")
    rates = [p for p in bd.pairs if p.kind == "rate" and p.status != "identical"]
    assert rates, "a lower jump threshold must flag more pixels somewhere"
    for p in rates:
        assert p.status == "over"
        assert p.diff.arrays["data"].n_over == 0 and p.diff.arrays["dq"].n_over > 0
        assert set(p.diff.arrays["dq"].dq_gained) == {"JUMP_DET"}
        assert [c.label for c in p.causes] == ["parameter detector1.jump.rejection_threshold: 40.0 -> 20.0"]
        assert p.first_step == "detector1.jump"


def test_tiny_changes_are_within_tolerance_and_do_not_fail(world):
    ws, _ = world
    bd = D.diff_builds(ws.catalog, ws.store, "base", "tiny")
    changed = [p for p in bd.pairs if p.status != "identical"]
    assert changed and all(p.status == "within" for p in changed)
    assert not bd.failed
    strict = D.diff_builds(ws.catalog, ws.store, "base", "tiny",
                           config=CompareConfig(tolerance=Tolerance(rtol=0.0, atol=0.0)))
    assert strict.failed and {p.status for p in strict.pairs} == {"identical", "over"}


def test_version_and_parameter_causes_are_both_listed(world):
    ws, _ = world
    bd = D.diff_builds(ws.catalog, ws.store, "base", "photom2", where="stage = 'image2'")
    assert {p.stage for p in bd.pairs} == {"image2"}
    for p in bd.pairs:
        assert {c.label for c in p.causes} == {"version of image2.photom: 1 -> 2",
                                               "parameter image2.photom.scale: 1.0 -> 1.01"}
        assert p.first_step == "image2.photom"


def test_where_filters_by_instrument_and_results_are_sql_rows(world):
    ws, _ = world
    bd = D.diff_builds(ws.catalog, ws.store, "base", "nisflat", where="instrument = 'NIRISS'")
    assert {p.subject for p in bd.pairs} == {"jw03_nis"}
    n = D.record(ws.catalog, bd)
    assert n == len(D.rows(bd)) > len(bd.pairs)
    t = ws.catalog.sql(
        "SELECT json_extract_string(detail_json, '$.cause') AS why, count(*) AS n FROM diffs "
        "WHERE diff_id = ? AND metric = 'cause' "
        "AND json_extract_string(detail_json, '$.instrument') = 'NIRISS' GROUP BY why",
        [bd.diff_id]).to_pylist()
    assert t == [{"why": "reference flat (image2.flat_field): jwst_niriss_flat_0001.fits -> "
                         "jwst_niriss_flat_0002.fits", "n": 2}]
    st = ws.catalog.sql("SELECT value FROM diffs WHERE diff_id = ? AND metric = 'status' "
                        "ORDER BY subject, product_kind", [bd.diff_id]).column(0).to_pylist()
    assert sorted(st) == sorted(float(D.STATUS_CODE[p.status]) for p in bd.pairs)


def test_products_made_by_only_one_build(world):
    ws, _ = world
    bd = D.diff_builds(ws.catalog, ws.store, "base", "partial")
    st = {(p.subject, p.stage, p.kind): p.status for p in bd.pairs}
    assert st[("jw01_nrcb1", "detector1", "rate")] == "identical"
    assert st[("jw03_nis", "image2", "cal")] == "only_a"
    assert bd.failed  # a product the candidate did not make fails the gate
    back = D.diff_builds(ws.catalog, ws.store, "partial", "base")
    assert {(p.subject, p.stage, p.kind): p.status for p in back.pairs}[
        ("jw03_nis", "image2", "cal")] == "only_b"
    assert not back.failed


def test_bad_requests_say_what_is_wrong(world):
    ws, _ = world
    with pytest.raises(CatalogError, match="no recorded runs.*base"):
        D.diff_builds(ws.catalog, ws.store, "base", "nosuchbuild")
    with pytest.raises(CatalogError, match="two different builds"):
        D.diff_builds(ws.catalog, ws.store, "base", "base")
    with pytest.raises(CatalogError, match="--where"):
        D.diff_builds(ws.catalog, ws.store, "base", "tiny", where="no_such_column = 1")


def test_accepting_a_difference_is_a_provenance_event_and_passes_the_gate(tmp_path):
    from flows.workspace import Workspace

    ws, _ = Workspace.init(tmp_path / "home")
    raw = raw_inputs(ws)
    run_build(ws, "base", BASE_BUILD, raw, subjects=("jw03_nis",))
    run_build(ws, "cand", variant(refs={"NIRISS": {"flat": "jwst_niriss_flat_0002.fits"}}), raw,
              subjects=("jw03_nis",))
    bd = D.diff_builds(ws.catalog, ws.store, "base", "cand")
    assert bd.failed
    with pytest.raises(CatalogError, match="who and why"):
        D.accept(ws.catalog, bd, "", "", ["all"])
    with pytest.raises(CatalogError, match="needs a scope"):
        D.accept(ws.catalog, bd, "ana", "why", [""])
    plan = D.accept(ws.catalog, bd, "ana", "new NIRISS flat is better",
                    ["jwst_niriss_flat_0002.fits"])
    assert len(plan.pairs) == 2 and not plan.partial and not bd.failed
    assert plan.causes == ["reference flat (image2.flat_field): jwst_niriss_flat_0001.fits -> "
                           "jwst_niriss_flat_0002.fits"]
    ev = ws.catalog.sql("SELECT build, event, who, why FROM build_events").to_pylist()
    assert len(ev) == 1 and ev[0]["build"] == "cand" and ev[0]["event"] == "diff_accepted"
    assert ev[0]["who"] == "ana" and "new NIRISS flat" in ev[0]["why"]
    rows = ws.catalog.sql("SELECT detail_json FROM diffs WHERE metric = 'accepted'").column(0)
    details = [json.loads(x) for x in rows.to_pylist()]
    assert len(details) == 2
    assert all(d["who"] == "ana" and d["scope"] == ["jwst_niriss_flat_0002.fits"]
               and d["causes"] == plan.causes for d in details)
    again = D.diff_builds(ws.catalog, ws.store, "base", "cand")
    assert not again.failed
    acc = [p for p in again.pairs if p.status == "accepted"]
    assert len(acc) == 2 and all(p.accepted["who"] == "ana" for p in acc)


@pytest.fixture(scope="module")
def two_causes(tmp_path_factory):
    """A candidate that changes the NIRCam dark and the NIRISS flat, and a third build that
    also changes the photom scale (pairs with two causes)."""
    from flows.workspace import Workspace

    ws, _ = Workspace.init(tmp_path_factory.mktemp("twocauses") / "home")
    raw = raw_inputs(ws)
    refs = {"NIRCAM": {"dark": "jwst_nircam_dark_0002.fits"},
            "NIRISS": {"flat": "jwst_niriss_flat_0002.fits"}}
    run_build(ws, "base", BASE_BUILD, raw)
    run_build(ws, "cand", variant(refs=refs), raw)
    run_build(ws, "cand2", variant(refs=refs, params={"photom": {"scale": 1.01}}), raw)
    return ws


def test_accept_is_scoped_to_a_cause_and_the_gate_fails_for_the_rest(two_causes):
    ws = two_causes
    bd = D.diff_builds(ws.catalog, ws.store, "base", "cand")
    nis = {(p.subject, p.kind) for p in bd.pairs if p.status == "over" and p.instrument == "NIRISS"}
    nrc = {(p.subject, p.kind) for p in bd.pairs if p.status == "over" and p.instrument == "NIRCAM"}
    assert nis and nrc
    with pytest.raises(CatalogError, match=r"names no cause.*\[1\]"):
        D.plan_accept(bd, ["jwst_miri_flat_0009.fits"])
    plan = D.accept(ws.catalog, bd, "ana", "the new NIRISS flat", ["jwst_niriss_flat_0002.fits"])
    assert {(p.subject, p.kind) for p in plan.pairs} == nis
    assert bd.failed  # the NIRCam dark is not accepted
    again = D.diff_builds(ws.catalog, ws.store, "base", "cand")
    st = {(p.subject, p.kind): p.status for p in again.pairs}
    assert {k for k, v in st.items() if v == "accepted"} == nis
    assert {k for k, v in st.items() if v == "over"} == nrc and again.failed
    # a step names its causes too; then the gate passes
    plan = D.accept(ws.catalog, again, "ana", "new darks", ["detector1.dark_current"])
    assert {(p.subject, p.kind) for p in plan.pairs} == nrc
    assert not D.diff_builds(ws.catalog, ws.store, "base", "cand").failed


def test_a_pair_with_a_cause_out_of_scope_is_not_accepted(two_causes):
    ws = two_causes
    bd = D.diff_builds(ws.catalog, ws.store, "base", "cand2")
    for p in bd.pairs:  # as before any acceptance (the test above may have accepted stage 1)
        if p.status == "accepted":
            p.status, p.accepted = "over", None
    plan = D.plan_accept(bd, ["jwst_nircam_dark_0002.fits"])
    # NIRCam stage-1 products changed only for the dark; their stage-2 products also for photom
    assert plan.pairs and all(p.stage == "detector1" for p in plan.pairs)
    assert plan.partial and all(p.stage != "detector1" for p, _ in plan.partial)
    assert all(others == ["parameter image2.photom.scale: 1.0 -> 1.01"]
               for p, others in plan.partial if p.instrument == "NIRCAM" and p.stage == "image2")
    both = D.plan_accept(bd, ["jwst_nircam_dark_0002.fits", "image2.photom"])
    assert {id(p) for p in plan.pairs} < {id(p) for p in both.pairs}
    assert len(D.plan_accept(bd, ["all"]).pairs) == sum(p.status == "over" for p in bd.pairs)


def test_a_metadata_only_change_is_scored_and_measured():
    """The report showed a catalog over tolerance with frac 0 and max |Δ| 0: its only change
    was a measured keyword (source_catalog.bkg_rms), which the score ignored."""
    from transforms.compare import compare_models

    cols = {"sky_centroid_ra": np.zeros(0), "sky_centroid_dec": np.zeros(0),
            "aper_total_flux": np.zeros(0)}
    a = DataModel("catalog", cols, {"instrument.name": "NIRISS", "source_catalog.bkg_rms": 0.8103,
                                    "date": "x"})
    b = DataModel("catalog", cols, {"instrument.name": "NIRISS", "source_catalog.bkg_rms": 0.8099,
                                    "date": "y"})
    cfg = CompareConfig()
    d = compare_models(a, b, cfg)
    assert d.over and d.reasons == ("metadata differs: source_catalog.bkg_rms",)
    n = D.meta_compared(a, b, cfg)
    assert n == 2  # instrument.name and bkg_rms; date is not compared
    p = D.PairResult("asn", "image3", "catalog", "sha256:a", "sha256:b", "over", "NIRISS", d,
                     score=D._score(d, n))
    assert p.score == pytest.approx(0.5)
    assert p.max_abs == pytest.approx(4e-4)
    assert p.what == "metadata source_catalog.bkg_rms"
    from flows.report import text_summary

    bd = D.BuildDiff("diff-x", "a", "b", None, cfg, [p], dt.datetime.now(dt.timezone.utc))
    line = next(ln for ln in text_summary(bd).splitlines() if ln.strip().startswith("asn/"))
    assert line.split()[1:5] == ["over", "0.5", "0.0004", "metadata"]


def test_pictures_keep_sparse_changes_ratios_and_dq_changes():
    rng = np.random.default_rng(3)
    a = rng.normal(100, 5, (2, 300, 260)).astype(np.float32)
    b = a.copy()
    b[1, 17, 211] += 50.0  # one pixel of integration 1
    qa = np.zeros(a.shape, np.uint32)
    qb = qa.copy()
    qb[1, 17, 211] = dqflags.JUMP_DET
    qa[0, 5, 5] = dqflags.SATURATED  # lost in b
    pic = D.pictures(DataModel("rateints", {"data": a, "dq": qa}, {}),
                     DataModel("rateints", {"data": b, "dq": qb}, {}), max_size=64)
    assert pic["plane"] == (1,) and pic["factor"] == 5 and pic["diff"].shape == (60, 52)
    assert pic["n_changed"] == 1 and pic["changed_at"].tolist() == [[17, 211]]
    assert np.nanmax(pic["diff"]) == pytest.approx(50.0)  # kept through the reduction
    assert np.nanmax(pic["ratio"]) == pytest.approx((a[1, 17, 211] + 50) / a[1, 17, 211])
    assert pic["dq"][17 // 5, 211 // 5] == 1 and pic["dq"][1, 1] == 2
    assert pic["dq_changed"] == 2 and np.count_nonzero(pic["dq"]) == 2
    # a flat change is multiplicative: the ratio is the flat, the difference follows the data
    flat = np.linspace(0.9, 1.1, 260, dtype=np.float32)[None, :]
    m = D.pictures(DataModel("cal", {"data": a[0]}, {}), DataModel("cal", {"data": a[0] * flat}, {}),
                   max_size=130)
    assert m["dq"] is None and m["factor"] == 3
    assert np.allclose(m["ratio"][:, 0], flat[0, 1], rtol=1e-3)
    assert np.allclose(m["ratio"][:, -1], flat[0, -2], rtol=2e-3)


def test_source_points_give_magnitudes_and_offsets():
    ra = 10.0 + np.arange(5) * 1e-3
    dec = np.full(5, -5.0)
    flux = np.array([1e-5, 2e-5, 4e-5, 8e-5, 1.6e-4])
    a = DataModel("catalog", {"sky_centroid_ra": ra, "sky_centroid_dec": dec,
                              "aper_total_flux": flux}, {})
    shift = 10 / 3.6e6  # 10 mas north
    b = DataModel("catalog", {"sky_centroid_ra": ra[:4], "sky_centroid_dec": dec[:4] + shift,
                              "aper_total_flux": flux[:4] * 1.1}, {})
    sp = D.source_points(a, b)
    assert sp["mag_column"] == "AB mag from aper_total_flux"
    assert np.allclose(sp["ddec_mas"], 10.0) and np.allclose(sp["dra_mas"], 0.0, atol=1e-6)
    assert np.allclose(sp["mag_b"] - sp["mag_a"], -2.5 * np.log10(1.1))
    assert np.allclose(sp["mag_a"], -2.5 * np.log10(flux[:4]) + 8.9)
    assert len(sp["only_a"]["ra"]) == 1 and len(sp["only_b"]["ra"]) == 0


def test_diff_keeps_pictures_of_over_pairs_and_the_recipes_side_by_side(world):
    ws, _ = world
    bd = D.diff_builds(ws.catalog, ws.store, "base", "newdark", n_images=2, thumb_size=8)
    over = [p for p in bd.pairs if p.status == "over"]
    assert all((p.sources if p.kind == "catalog" else p.thumbs) for p in over)
    assert all(p.thumbs is None and p.sources is None for p in bd.pairs if p.status == "identical")
    assert max(p.thumbs["diff"].shape for p in over if p.thumbs) <= (8, 8)
    assert sum(1 for p in bd.pairs if p.images) == 1  # the two worst: a catalog and an i2d
    rate = _by(bd)[("jw01_nrcb1", "detector1", "rate")]
    dark = next(s for s in rate.steps if s["step"] == "dark_current")
    assert not dark["same"] and dark["refs_a"] == {"dark": "jwst_nircam_dark_0001.fits"}
    assert dark["refs_b"] == {"dark": "jwst_nircam_dark_0002.fits"}
    assert [s["same"] for s in rate.steps] == [True, False, False, False]
    none = D.diff_builds(ws.catalog, ws.store, "base", "newdark", n_images=0, thumbnails="none")
    assert all(p.thumbs is None and p.images is None for p in none.pairs)
