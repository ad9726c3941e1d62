"""ramp_fit: against stcal's OLS_C on the same arrays, against truth, and its properties."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))  # the test-local generator, package or not
from test_ramp_fit_sim import make_ramp  # noqa: E402
from transforms import dq as DQ  # noqa: E402
from transforms.detector1.ramp_fit import RampFitParams, apply, fit_ramps, fit_ramps_arrays
from transforms.model import DataModel
from transforms.registry import get

OUT = ("data", "var_poisson", "var_rnoise", "err")


def ours(s, gdq=None, zeroframe=None, **kw):
    return fit_ramps_arrays(s.data, s.groupdq if gdq is None else gdq, s.pixeldq, s.gain,
                            s.readnoise, frame_time=s.frame_time, group_time=s.group_time,
                            nframes=s.nframes, zeroframe=zeroframe, params=RampFitParams(**kw))


def stcal_fit(s, gdq, suppress=True, zeroframe=None):
    from stcal.ramp_fitting.ramp_fit import ramp_fit_data
    from stcal.ramp_fitting.ramp_fit_class import RampData
    from stdatamodels.jwst.datamodels import dqflags

    rd = RampData()
    orig = gdq.copy() if np.any(gdq & DQ.CHARGELOSS) else None  # as create_ramp_fit_class
    rd.set_arrays(s.data.copy(), gdq.copy(), s.pixeldq.copy(),
                  np.zeros(s.gain.shape, np.float32), orig_gdq=orig, zeroframe=zeroframe)
    rd.set_meta(name="NIRCAM", frame_time=s.frame_time, group_time=s.group_time, groupgap=0,
                nframes=s.nframes, drop_frames1=None)
    rd.algorithm = "OLS_C"  # as create_ramp_fit_class: set_dqflags needs it for CHARGELOSS
    rd.set_dqflags(dqflags.pixel)
    rd.suppress_one_group_ramps = suppress and s.data.shape[1] > 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img, integ, _ = ramp_fit_data(rd, False, s.readnoise.copy(), s.gain.copy(), "OLS_C",
                                      "optimal", "1")
    return img, integ


def assert_same(mine, theirs):
    names = {"data": "slope", "var_poisson": "var_poisson", "var_rnoise": "var_rnoise",
             "err": "err"}
    for k, sk in names.items():
        a, b = mine[k], theirs[sk]
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"{k}: NaN pattern differs"
        ok = np.isfinite(b)
        np.testing.assert_allclose(a[ok], b[ok], rtol=1e-4, atol=1e-30, err_msg=k)
    assert np.array_equal(mine["dq"], theirs["dq"])


CASES = {
    "jumps_sat_dnu": dict(nints=2, ngroups=8, jump_frac=0.03, sat_level=1500.0),
    "bright_many_groups": dict(nints=1, ngroups=20, rate_range=(0, 400), sat_level=9000.0),
    "three_groups": dict(nints=3, ngroups=3, jump_frac=0.05, sat_level=1200.0),
    "two_groups": dict(nints=2, ngroups=2, sat_level=1300.0),
    "one_group": dict(nints=2, ngroups=1, sat_level=1100.0),
    "nframes4": dict(nints=1, ngroups=6, nframes=4, jump_frac=0.02, sat_level=2500.0),
    "long_ramp": dict(nints=1, ngroups=40, rate_range=(0, 20), jump_frac=0.01, sat_level=9000.0),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("suppress", [True, False])
def test_matches_stcal(name, suppress):
    pytest.importorskip("stcal")
    s = make_ramp(11, ny=24, nx=40, **{"rate_range": (-1, 80), **CASES[name]})
    gdq = s.groupdq.copy()
    gdq[s.jump] |= DQ.JUMP_DET
    if s.data.shape[1] > 3:
        gdq[0, 2, :3, :] |= DQ.DO_NOT_USE
    gdq[:, :, 5, 7] |= DQ.DO_NOT_USE  # a fully unusable pixel
    pix = s.pixeldq
    s.pixeldq = pix.copy()
    s.pixeldq[6, 3] |= DQ.DO_NOT_USE
    s.gain[7, 8] = 0.0  # bad gain -> NO_GAIN_VALUE | DO_NOT_USE
    rate, ints = ours(s, gdq, suppress_one_group=suppress)
    img, integ = stcal_fit(s, gdq, suppress)
    assert_same(rate, img)
    assert_same(ints, integ)


def test_matches_stcal_zeroframe():
    pytest.importorskip("stcal")
    s = make_ramp(5, nints=2, ngroups=4, ny=16, nx=16, sat_level=1100.0, rate_range=(0, 60))
    zf = (s.data[:, 0] * 0.5 + 500).astype(np.float32)
    zf[0, 0, 0] = 0.0  # zero means "no zero frame" for that pixel
    rate, ints = ours(s, zeroframe=zf, suppress_one_group=False)
    img, integ = stcal_fit(s, s.groupdq, suppress=False, zeroframe=zf)
    assert np.any(np.all(s.groupdq[0] & DQ.SATURATED, axis=0))  # the case is exercised
    assert_same(rate, img)
    assert_same(ints, integ)


@pytest.mark.parametrize("suppress", [True, False])
def test_matches_stcal_chargeloss(suppress):
    """CHARGELOSS groups (set with DO_NOT_USE by charge_migration) give VAR_RNOISE as if they
    were usable, as stcal recomputes it."""
    pytest.importorskip("stcal")
    s = make_ramp(13, nints=2, ngroups=7, ny=20, nx=20, jump_frac=0.03, sat_level=1800.0,
                  rate_range=(0, 60))
    rng = np.random.default_rng(0)
    gdq = s.groupdq.copy()
    gdq[s.jump] |= DQ.JUMP_DET
    for i, y, x in zip(*np.nonzero(rng.random((2, 20, 20)) < 0.3)):
        g0 = int(rng.integers(1, 7))
        gdq[i, g0:, y, x] |= np.uint8(DQ.CHARGELOSS | DQ.DO_NOT_USE)
    gdq[0, 3, 0, :] |= DQ.CHARGELOSS  # CHARGELOSS without DO_NOT_USE (stcal toggles both)
    rate, ints = ours(s, gdq, suppress_one_group=suppress)
    img, integ = stcal_fit(s, gdq, suppress)
    assert_same(rate, img)
    assert_same(ints, integ)


def test_pull_against_truth():
    s = make_ramp(21, nints=2, ngroups=10, ny=128, nx=128, rate_range=(0.0, 50.0))
    rate, _ = ours(s)
    pull = (rate["data"] - s.rate) / rate["err"]
    assert abs(np.median(pull)) < 0.05
    assert abs(np.std(pull) - 1.0) < 0.1


def test_saturated_pixels_flagged_and_early_groups_give_rate():
    s = make_ramp(4, nints=1, ngroups=10, ny=64, nx=64, rate_range=(5.0, 100.0), sat_level=3000.0)
    partial = np.any(s.groupdq[0] & DQ.SATURATED, axis=0) & ~(s.groupdq[0, 1] & DQ.SATURATED > 0)
    assert partial.sum() > 100
    rate, ints = ours(s)
    assert np.all(rate["dq"][partial] & DQ.SATURATED)
    assert np.all(ints["dq"][0][partial] & DQ.SATURATED)
    pull = (rate["data"][partial] - s.rate[partial]) / rate["err"][partial]
    assert np.all(np.isfinite(pull))
    assert abs(np.median(pull)) < 0.2 and np.std(pull) < 1.3


def test_all_saturated_and_all_dnu():
    s = make_ramp(2, ngroups=5, ny=8, nx=8)
    gdq = s.groupdq.copy()
    gdq[:, :, 0, 0] = DQ.SATURATED
    gdq[:, :, 1, 1] = DQ.DO_NOT_USE
    rate, ints = ours(s, gdq)
    for r in (rate, {k: v[0] for k, v in ints.items()}):
        assert np.isnan(r["data"][0, 0]) and np.isnan(r["data"][1, 1])
        assert r["dq"][0, 0] & DQ.SATURATED and r["dq"][0, 0] & DQ.DO_NOT_USE
        assert r["dq"][1, 1] & DQ.DO_NOT_USE and not r["dq"][1, 1] & DQ.SATURATED
        assert r["err"][0, 0] == 0 and r["var_poisson"][1, 1] == 0
        assert np.all(np.isfinite(r["data"][2:, 2:]))


def test_firstgroup_lastgroup_window_matches_flagging_dnu():
    s = make_ramp(8, ngroups=8, ny=8, nx=8)
    rate, _ = ours(s, firstgroup=1, lastgroup=5)
    gdq = s.groupdq.copy()
    gdq[:, 0] |= DQ.DO_NOT_USE
    gdq[:, 6:] |= DQ.DO_NOT_USE
    ref, _ = ours(s, gdq)
    np.testing.assert_array_equal(rate["data"], ref["data"])


def _ramp_model(s, **meta):
    m = {"exposure.frame_time": s.frame_time, "exposure.group_time": s.group_time,
         "exposure.nframes": s.nframes, "exposure.groupgap": 0, "instrument.name": "NIRCAM"}
    m.update(meta)
    return DataModel("ramp", {"data": s.data, "groupdq": s.groupdq, "pixeldq": s.pixeldq}, m)


def _refs(gain, rn, **gain_meta):
    return {"gain": DataModel("ref.gain", {"data": gain}, {"reftype": "gain", **gain_meta}),
            "readnoise": DataModel("ref.readnoise", {"data": rn}, {"reftype": "readnoise"})}


def test_models_subarray_cut_and_registry():
    s = make_ramp(3, nints=2, ngroups=5, ny=10, nx=12)
    full_gain = np.full((30, 40), 7.0, np.float32)
    full_rn = np.full((30, 40), 99.0, np.float32)
    full_gain[5:15, 20:32] = s.gain
    full_rn[5:15, 20:32] = s.readnoise
    model = _ramp_model(s, **{"subarray.xstart": 21, "subarray.ystart": 6})
    rate, ints = fit_ramps(model, _refs(full_gain, full_rn, **{"exposure.gain_factor": 1.5}))
    direct, dints = ours(s)
    assert rate.kind == "rate" and ints.kind == "rateints"
    assert ints["data"].shape == (2, 10, 12)
    np.testing.assert_array_equal(rate["data"], direct["data"])
    np.testing.assert_array_equal(ints["err"], dints["err"])
    assert rate.get("cal_step.ramp_fit") == "COMPLETE"
    assert rate.get("exposure.gain_factor") == 1.5
    spec = get("ramp_fit", "1.0")  # 1.1 (NaN read noise -> DO_NOT_USE) is the newest
    assert spec.reftypes == ("gain", "readnoise") and spec.apply is apply
    assert spec.make_params().suppress_one_group is True
    via_apply = apply(model, _refs(full_gain, full_rn), spec.make_params())
    np.testing.assert_array_equal(via_apply["data"], rate["data"])


def test_bad_input_errors():
    s = make_ramp(3, ngroups=4, ny=4, nx=4)
    with pytest.raises(ValueError, match="algorithm"):
        RampFitParams(algorithm="GLS")
    with pytest.raises(ValueError, match="maximum_cores"):
        RampFitParams(maximum_cores="lots")
    with pytest.raises(KeyError, match="readnoise"):
        fit_ramps(_ramp_model(s), {"gain": _refs(s.gain, s.readnoise)["gain"]})
    with pytest.raises(KeyError, match="group_time"):
        fit_ramps(_ramp_model(s, **{"exposure.group_time": None}), _refs(s.gain, s.readnoise))


@settings(max_examples=20, deadline=None)
@given(nints=st.integers(1, 3), ngroups=st.integers(1, 6), ny=st.integers(1, 5),
       nx=st.integers(1, 5), seed=st.integers(0, 10_000), cores=st.sampled_from(["1", "all", 2]),
       suppress=st.booleans())
def test_odd_shapes_no_mutation_cores_invariant(nints, ngroups, ny, nx, seed, cores, suppress):
    rng = np.random.default_rng(seed)
    s = make_ramp(seed, nints=nints, ngroups=ngroups, ny=ny, nx=nx, jump_frac=0.1)
    gdq = rng.choice(np.array([0, 0, 0, DQ.SATURATED, DQ.DO_NOT_USE, DQ.JUMP_DET], np.uint8),
                     size=s.data.shape)
    s.readnoise[rng.random((ny, nx)) < 0.2] = np.nan
    s.gain[rng.random((ny, nx)) < 0.1] = np.nan
    before = (s.data.copy(), gdq.copy(), s.gain.copy(), s.readnoise.copy())
    r1, i1 = ours(s, gdq, suppress_one_group=suppress, maximum_cores="1")
    r2, i2 = ours(s, gdq, suppress_one_group=suppress, maximum_cores=cores)
    for a, b in zip(before, (s.data, gdq, s.gain, s.readnoise)):
        np.testing.assert_array_equal(a, b)
    for k in OUT + ("dq",):
        np.testing.assert_array_equal(r1[k], r2[k])
        np.testing.assert_array_equal(i1[k], i2[k])
    bad = (r1["dq"] & DQ.DO_NOT_USE) != 0  # SATURATED alone may be partial: early groups fit
    assert np.all(np.isnan(r1["data"][bad]))
    assert np.all(r1["err"][bad] == 0)
    assert np.all(np.isnan(i1["data"][(i1["dq"] & DQ.DO_NOT_USE) != 0]))
    assert np.all(r1["err"][~np.isnan(r1["err"])] >= 0)
    assert np.all((r1["dq"] & DQ.NO_GAIN_VALUE)[~(s.gain > 0)] != 0)
