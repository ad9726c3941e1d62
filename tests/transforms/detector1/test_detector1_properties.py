"""Hypothesis: the chain and each step on odd shapes and odd references (no crash, sane DQ,
deterministic, inputs untouched)."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from d1_helpers import same, snapshot
from transforms import dq as DQ
from transforms.detector1 import default_plan, run
from transforms.model import DataModel


def _ref(reftype, **arrays):
    return DataModel(f"ref.{reftype}", arrays, {"reftype": reftype})


@st.composite
def exposures(draw):
    nints = draw(st.integers(1, 2))
    ngroups = draw(st.integers(1, 4))
    ny, nx = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    seed = draw(st.integers(0, 2**16))
    case = draw(st.sampled_from(["normal", "all_saturated", "all_dnu", "nan_refs"]))
    rng = np.random.default_rng(seed)
    shape = (nints, ngroups, ny, nx)
    data = (10000 + np.cumsum(rng.uniform(0, 3000, shape), axis=1)).astype(np.uint16)
    sat = rng.uniform(20000, 60000, (ny, nx)).astype(np.float32)
    mask = np.zeros((ny, nx), np.uint32)
    mask[rng.random((ny, nx)) < 0.1] = DQ.DEAD | DQ.DO_NOT_USE
    bias = rng.uniform(9000, 10000, (ny, nx)).astype(np.float32)
    coeffs = np.zeros((3, ny, nx), np.float32)
    coeffs[1], coeffs[2] = 1.0, 1e-6
    dark = np.cumsum(rng.uniform(0, 1, (ngroups + 2, ny, nx)), axis=0).astype(np.float32)
    gain = rng.uniform(1.5, 2.5, (ny, nx)).astype(np.float32)
    rn = rng.uniform(5, 15, (ny, nx)).astype(np.float32)
    if case == "all_saturated":
        sat[:] = 5000.0
    elif case == "all_dnu":
        mask[:] = DQ.DO_NOT_USE
    elif case == "nan_refs":
        for a in (sat, bias, coeffs[2], dark[0], gain, rn):
            a[rng.random(a.shape) < 0.3] = np.nan
    meta = {"exposure.nframes": 1, "exposure.groupgap": 0, "exposure.ngroups": ngroups,
            "exposure.nints": nints, "exposure.frame_time": 10.0, "exposure.group_time": 10.0,
            "subarray.xstart": 1, "subarray.ystart": 1, "subarray.xsize": nx,
            "subarray.ysize": ny}
    refs = {"mask": _ref("mask", dq=mask), "saturation": _ref("saturation", data=sat),
            "superbias": _ref("superbias", data=bias),
            "linearity": _ref("linearity", coeffs=coeffs),
            "dark": _ref("dark", data=dark).replace(meta={"exposure.nframes": 1}),
            "gain": _ref("gain", data=gain), "readnoise": _ref("readnoise", data=rn)}
    return case, DataModel("uncal", {"data": data}, meta), refs


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exposures())
def test_chain_never_crashes_is_deterministic_and_flags_sanely(exp):
    case, uncal, refs = exp
    plan = default_plan(refs, skip={"clean_flicker_noise": False, "charge_migration": False})
    before = snapshot(uncal)
    ref_before = {k: snapshot(v) for k, v in refs.items()}
    out = run(uncal, plan)
    again = run(uncal, plan)
    assert same(uncal, before)
    assert all(same(refs[k], v) for k, v in ref_before.items())
    nints, ngroups, ny, nx = uncal["data"].shape
    rate, ints = out["rate"], out["rateints"]
    assert rate["data"].shape == (ny, nx) and ints["data"].shape == (nints, ny, nx)
    assert rate["dq"].dtype == np.uint32
    for k in rate.arrays:
        assert np.array_equal(rate[k], again["rate"][k], equal_nan=True)
    # No pixel has a NaN rate without DO_NOT_USE (ramp_fit 1.1 flags NaN read noise too).
    dnu = (rate["dq"] & DQ.DO_NOT_USE) != 0
    assert not np.any(np.isnan(rate["data"]) & ~dnu)
    assert not np.any(np.isnan(ints["data"]) & ~((ints["dq"] & DQ.DO_NOT_USE) != 0))
    if case == "all_saturated":
        assert np.all(rate["dq"] & DQ.SATURATED)
    if case == "all_dnu":
        assert np.all(dnu)


STEP_NAMES = ("saturation", "superbias", "refpix", "linearity", "dark_current",
              "charge_migration", "clean_flicker_noise")


@st.composite
def ramps_and_refs(draw):
    nints, ngroups = draw(st.integers(1, 2)), draw(st.integers(1, 4))
    ny, nx = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    shape = (nints, ngroups, ny, nx)
    data = rng.uniform(-100, 60000, shape).astype(np.float32)
    data[rng.random(shape) < 0.05] = np.nan
    gdq = np.where(rng.random(shape) < 0.2, DQ.DO_NOT_USE, 0).astype(np.uint8)
    pdq = np.where(rng.random((ny, nx)) < 0.3, DQ.REFERENCE_PIXEL, 0).astype(np.uint32)
    nanny = lambda a: np.where(rng.random(a.shape) < 0.2, np.nan, a).astype(np.float32)  # noqa
    coeffs = np.zeros((3, ny, nx), np.float32)
    coeffs[1] = 1.0
    refs = {"saturation": _ref("saturation", data=nanny(rng.uniform(1e4, 6e4, (ny, nx)))),
            "superbias": _ref("superbias", data=nanny(rng.uniform(0, 1e4, (ny, nx)))),
            "linearity": _ref("linearity", coeffs=nanny(coeffs)),
            "dark": _ref("dark", data=nanny(rng.uniform(0, 5, (ngroups + 1, ny, nx))))}
    meta = {"exposure.nframes": draw(st.sampled_from([1, 4])), "subarray.xstart": 1,
            "subarray.ystart": 1, "subarray.xsize": nx, "subarray.ysize": ny}
    model = DataModel("ramp", {"data": data, "groupdq": gdq, "pixeldq": pdq}, meta)
    return model, refs


@settings(max_examples=30, deadline=None)
@given(ramps_and_refs(), st.sampled_from(STEP_NAMES))
def test_each_step_is_pure_deterministic_and_only_adds_dq(case, name):
    from transforms import registry
    model, refs = case
    spec = registry.get(name)
    params = spec.make_params()
    before = snapshot(model)
    out = spec.apply(model, refs, params)
    again = spec.apply(model, refs, params)
    assert same(model, before)
    assert out.get(f"cal_step.{name}") in ("COMPLETE", "SKIPPED")
    for k in out.arrays:
        assert np.array_equal(out[k], again[k], equal_nan=True)
        assert out[k].shape == model[k].shape and out[k].dtype == model[k].dtype
    for k in ("groupdq", "pixeldq"):
        assert np.array_equal(out[k] & model[k], model[k])  # flags are never removed
