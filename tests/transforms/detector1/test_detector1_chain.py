"""The detector1 chain: same result as the pure steps one by one, truth, plan handling."""

import numpy as np
import pytest

from d1_helpers import HAVE_SIM, same, sim_exposure, snapshot
from transforms import dq as DQ
from transforms import registry
from transforms.detector1 import PlanError, PlannedStep, default_plan, run

pytestmark = pytest.mark.skipif(not HAVE_SIM, reason="needs transforms.sim")


def _sequential(uncal, plan):
    """The chain done the slow, obviously-pure way: each registered apply on the last output."""
    model, products = uncal, None
    for step in plan:
        name = step.spec.name
        if step.skip:
            if products:
                products = {k: v.replace(meta={f"cal_step.{name}": "SKIPPED"})
                            for k, v in products.items()}
            else:
                model = model.replace(meta={f"cal_step.{name}": "SKIPPED"})
        elif products:
            products = {k: step.spec.apply(v, step.refs, step.params) for k, v in products.items()}
        elif name == "ramp_fit":
            from transforms.detector1.ramp_fit import fit_ramps
            rate, ints = fit_ramps(model, step.refs, step.params)
            products = {"rate": rate, "rateints": ints}
        else:
            model = step.spec.apply(model, step.refs, step.params)
    return products


def _noisy(**kw):
    from transforms.sim.detector import Effects
    rate = np.full((64, 64), 800.0)
    rate[20, 30] = 4e6  # saturates part-way up the ramp
    rate[40, 40] = 3e5
    return sim_exposure(readpatt="RAPID", ngroups=7, nints=2, effects=Effects(), rate_e=rate, **kw)


def test_chain_equals_pure_steps_one_by_one_and_leaves_input_alone():
    uncal, refs, *_ = _noisy()
    plan = default_plan(refs, skip={"clean_flicker_noise": False, "charge_migration": False})
    before = snapshot(uncal)
    seen = []
    out = run(uncal, plan, on_step=lambda name, snap: seen.append(name))
    ref_out = _sequential(uncal, plan)
    assert same(uncal, before)
    assert seen == [p.spec.name for p in plan]
    for kind in ("rate", "rateints"):
        assert out[kind].kind == kind
        assert set(out[kind].arrays) == set(ref_out[kind].arrays)
        for k in out[kind].arrays:
            assert np.array_equal(out[kind][k], ref_out[kind][k], equal_nan=True), (kind, k)
        assert dict(out[kind].meta) == dict(ref_out[kind].meta)


def test_rate_recovers_truth_and_saturated_pixels_keep_a_rate():
    from transforms.sim.detector import Effects
    rate = np.full((64, 64), 3000.0)
    rate[20, 30] = 3.2e5  # reaches saturation around group 4
    uncal, refs, truth, props, tim = sim_exposure(ngroups=8, effects=Effects.noiseless(),
                                                  rate_e=rate)
    out = run(uncal, default_plan(refs))
    r = out["rate"]
    sat_g = truth.saturation_group[0, 20, 30]
    assert 2 <= sat_g < 8  # saturates part-way: early groups must still give a rate
    got, want = r["data"][20, 30], truth.light_rate_dn[20, 30] + truth.dark_rate_dn[20, 30]
    assert r["dq"][20, 30] & DQ.SATURATED and np.isfinite(got)
    assert abs(got - want) < 0.02 * want
    sci = ~props.refpix & (props.flat > 0)
    sci[18:23, 28:33] = False
    want = (truth.light_rate_dn + truth.dark_rate_dn)[sci]
    err = np.abs(r["data"][sci] - want)
    assert np.nanmedian(err) < 0.01 * np.median(want) and np.isfinite(r["data"][sci]).all()
    for name in registry.stage("detector1").steps:
        if name not in registry.steps():
            continue
        assert r.get(f"cal_step.{name}") in ("COMPLETE", "SKIPPED")


def test_subarray_with_full_frame_references_equals_matching_references():
    from transforms.sim import readout
    sub = readout.custom_subarray(1001, 1501, 48, 40, 1, "CUSTOM")
    a_uncal, a_refs, *_ = sim_exposure(sub, ngroups=3)
    b_uncal, b_refs, *_ = sim_exposure(sub, ngroups=3, full_refs=True)
    assert b_refs["superbias"]["data"].shape == (2048, 2048)
    a = run(a_uncal, default_plan(a_refs))["rate"]
    b = run(b_uncal, default_plan(b_refs))["rate"]
    assert np.array_equal(a["data"], b["data"], equal_nan=True)
    assert np.array_equal(a["dq"], b["dq"])


def test_snapshots_are_materialised_only_on_request_and_skips_are_recorded():
    uncal, refs, *_ = _noisy()
    plan = default_plan(refs, skip={"superbias": True})
    snaps = {}

    def on_step(name, snap):
        if name in ("dq_init", "ipc", "superbias", "ramp_fit"):
            snaps[name] = snap()

    out = run(uncal, plan, on_step=on_step)
    assert snaps["dq_init"].kind == "ramp" and snaps["dq_init"]["data"].dtype == np.float32
    assert np.array_equal(snaps["dq_init"]["data"], uncal["data"])
    assert snaps["superbias"].get("cal_step.superbias") == "SKIPPED"
    # the skipped step leaves the ramp as the step before it (ipc) left it
    assert np.array_equal(snaps["superbias"]["data"], snaps["ipc"]["data"])
    assert not np.array_equal(snaps["ipc"]["data"], snaps["dq_init"]["data"])
    assert snaps["ramp_fit"].kind == "rate"
    assert out["rate"].get("cal_step.superbias") == "SKIPPED"


def test_bad_plans_are_refused_with_clear_errors():
    _, refs, *_ = sim_exposure(ngroups=2)
    uncal = sim_exposure(ngroups=2)[0]
    plan = default_plan(refs)
    with pytest.raises(PlanError, match="out of order"):
        run(uncal, plan[::-1])
    with pytest.raises(PlanError, match="ramp_fit"):
        run(uncal, [p for p in plan if p.spec.name != "ramp_fit"])
    with pytest.raises(PlanError, match="twice"):
        run(uncal, plan[:2] + plan[1:])
    with pytest.raises(PlanError, match="PlannedStep"):
        run(uncal, [("dq_init",)])
    rf = next(p for p in plan if p.spec.name == "ramp_fit")
    with pytest.raises(PlanError, match="ramp_fit"):
        run(uncal, [PlannedStep(rf.spec, rf.params, skip=True, refs=rf.refs)])


def _pure_offset_step(model, refs, params):
    """A step with only a pure apply (no apply_inplace): adds 1 DN and a DQ bit."""
    gdq = np.array(model["groupdq"])
    gdq[..., 0, 0] |= DQ.JUMP_DET
    return model.replace(arrays={"data": model["data"] + np.float32(1), "groupdq": gdq},
                         meta={"cal_step.superbias": "COMPLETE"})


def test_a_step_without_inplace_kernel_is_run_through_its_pure_apply():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class NoParams:
        pass

    uncal, refs, *_ = sim_exposure(ngroups=3)
    plan = default_plan(refs)
    spec = registry.StepSpec("superbias", "test", "detector1", NoParams, (), _pure_offset_step,
                             "S_SUPERB")
    plan = [PlannedStep(spec, NoParams()) if p.spec.name == "superbias" else p for p in plan]
    snaps = {}
    run(uncal, plan, on_step=lambda n, s: snaps.setdefault(n, s()) if n in (
        "ipc", "superbias") else None)
    a, b = snaps["ipc"], snaps["superbias"]  # ipc runs just before superbias
    np.testing.assert_array_equal(b["data"], a["data"] + 1)
    assert np.all(b["groupdq"][..., 0, 0] & DQ.JUMP_DET)
    assert b.get("cal_step.superbias") == "COMPLETE"


def test_near_ir_only_steps_stay_out_of_miri_plans():
    """charge_migration (a threshold on raw near-IR counts) and clean_flicker_noise (row
    medians, where MIRI would need columns) are declared near-IR only: a MIRI plan has neither,
    even when a build turns them on."""
    meta = {"instrument.name": "MIRI"}
    plan = default_plan({}, skip={"charge_migration": False, "clean_flicker_noise": False},
                        meta=meta)
    names = [p.spec.name for p in plan]
    assert "charge_migration" not in names and "clean_flicker_noise" not in names
    nir = [p.spec.name for p in default_plan({}, meta={"instrument.name": "NIRCAM"})]
    assert "charge_migration" in nir and "clean_flicker_noise" in nir
