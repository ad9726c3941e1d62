"""Builds whose lock predates a mode's steps refuse its exposures at planning, one line each.

The shipped locked builds (11.1.1, 11.2) were locked before calops calibrated IFU data: their
assign_wcs, flat_field and photom are 2.0 (no IFU model) and spec3's outlier_detection 2.0 (no
ifu mode). ``catalogs.builds.MODE_STEPS`` declares, as data, the step versions a mode needs;
whether a build calibrates it is read from its lock. A run under such a build refuses each IFU
exposure (and IFU association) with one line naming the build, the mode, the old steps and the
builds that do calibrate it, counts it as failed, writes no product, and runs the rest.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from catalogs import builds as B
from catalogs.builds import BuildBook, ModeRefused


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    return BuildBook(tmp_path_factory.mktemp("book") / "builds")


def test_modes_are_read_from_the_lock(book):
    for name in ("11.1.1", "11.2"):
        b = book.get(name)
        for stage in ("spec2", "spec3"):
            for mode in ("NRS_IFU", "MIR_MRS"):
                why = B.mode_refusal(b, stage, mode, book.all())
                assert why.startswith(f"build {name} does not calibrate {mode}: its lock "
                                      "predates the IFU steps (")
                assert why.endswith("use 11.3 or a build locked after them")
                assert "\n" not in why
        assert "assign_wcs 2.0 < 2.1" in B.mode_refusal(b, "spec2", "NRS_IFU")
        assert B.mode_refusal(b, "spec2", "NRS_FIXEDSLIT") is None  # slits it calibrates
        assert B.mode_refusal(b, "image2", "NRC_IMAGE") is None
        assert B.modes(b)["spec2"]["MIR_MRS"] and b.as_dict()["modes_refused"]["spec2"]
    dev = book.get("11.3")  # floats to every registered step
    assert all(why is None for ms in B.modes(dev).values() for why in ms.values())
    assert dev.as_dict()["modes_refused"] == {"spec2": {}, "spec3": {}}


def test_planning_an_ifu_exposure_under_an_old_lock_raises_the_line(book):
    meta = {"instrument.name": "NIRSPEC", "exposure.type": "NRS_IFU"}
    with pytest.raises(ModeRefused, match="build 11.2 does not calibrate NRS_IFU"):
        B.plan(book.get("11.2"), "spec2", meta)
    assert any(p.spec.name == "cube_build" for p in B.plan(book.get("11.3"), "spec2", meta))


def test_plans_are_memoised_per_mode_not_only_per_instrument(book, tmp_path, monkeypatch):
    """MIRI LRS and MIRI MRS share an instrument; cube_build applies to MRS only: one memo
    must not hand the LRS plan to MRS (or back)."""
    import flows.runner as R

    calls = []
    real = B.plan

    def plan(build, stage, meta):
        calls.append(meta["exposure.type"])
        return real(build, stage, meta)

    monkeypatch.setattr(R.buildlib, "plan", plan)
    monkeypatch.setattr(R.crds_resolve, "resolve_with_optional", lambda *a, **k: {})
    b, memo, steps = book.get("11.3"), {}, {}
    for et in ("MIR_LRS-FIXEDSLIT", "MIR_MRS", "MIR_LRS-FIXEDSLIT"):
        meta = {"instrument.name": "MIRI", "exposure.type": et}
        rec = R.plan_stage("spec2", "x", b, "jwst_0001.pmap", str(tmp_path), meta,
                           {"input": "sha256:0"}, memo)
        steps[et] = [s.name for s in rec.steps]
    assert calls == ["MIR_LRS-FIXEDSLIT", "MIR_MRS"]  # the third is the memoised LRS plan
    assert "cube_build" in steps["MIR_MRS"] and "cube_build" not in steps["MIR_LRS-FIXEDSLIT"]


def _make_ifu(ws, exposure: str, exp_type: str = "NRS_IFU") -> None:
    """Relabel one ingested exposure's mode as IFU (its pixels' newest metadata row): what the
    planner reads of it; nothing is run."""
    row = ws.catalog.current_exposures()[exposure]
    meta = ws.catalog.product_meta(row["pixels_id"])
    meta["exposure.type"] = exp_type  # its detector (and references) stay: detector1 plans
    with ws.catalog.batch("relabel") as b:
        b.add("products", {"product_id": row["pixels_id"], "kind": "uncal",
                           "subject": exposure, "meta_json": json.dumps(meta, sort_keys=True),
                           "created_at": dt.datetime.now(dt.timezone.utc)
                           + dt.timedelta(seconds=5)})


def test_the_planner_refuses_ifu_exposures_per_exposure_and_plans_the_rest(sim_ws):
    from flows.planner import FAILED, plan_run

    ifu = sorted(sim_ws.catalog.current_exposures())[0]
    _make_ifu(sim_ws, ifu)
    plan = plan_run(sim_ws, "11.2")
    spec2 = [i for i in plan.items if i.stage == "spec2"]
    assert [(i.subject, i.state) for i in spec2] == [(ifu, FAILED)]
    assert spec2[0].cause.startswith("build 11.2 does not calibrate NRS_IFU: its lock predates "
                                     "the IFU steps (assign_wcs 2.0 < 2.1")
    assert "use 11.3" in spec2[0].cause
    # its spec3 association is refused with the same line, not a "no member has its cal"
    # (its detector1 fails on CRDS: darks select on EXP_TYPE and the relabelled NIRCam
    # exposure has none; the refusal comes first, whatever happens upstream)
    fails = {(i.stage, i.subject): i.cause for i in plan.failures() if i.stage != "detector1"}
    (asn,) = [k for k in fails if k[0] == "spec3"]
    assert set(fails) == {("spec2", ifu), asn}
    assert fails[asn].startswith("build 11.2 does not calibrate NRS_IFU: its lock predates "
                                 "the IFU steps (outlier_detection 2.0 < 2.1)")
    # the other exposures are planned as usual
    work = plan.work()
    assert len(work["detector1"]) == 2 and len(work["image2"]) == 2
    # under the development build the mode is not refused (it goes on to its detector1, which
    # the relabelled exposure cannot pass here)
    dev = plan_run(sim_ws, "11.3", stages=["spec2"])
    (item,) = [i for i in dev.items if i.stage == "spec2"]
    assert "does not calibrate" not in item.cause and "detector1" in item.cause
