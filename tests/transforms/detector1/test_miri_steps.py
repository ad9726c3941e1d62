"""The MIRI detector1 steps against jwst 3.0's own functions on the same arrays, and their
properties (purity, skip rules, DQ propagation, odd shapes).

jwst's step internals (``lastframe_sub``, ``firstframe_sub``, ``reset_sub``, ``rscd_sub``,
``emicorr.emicorr``, ``refpix.reference_pixels``) are called on stdatamodels built from the
same arrays; the calops step must give the same groupdq/pixeldq/data (bit for bit where the
arithmetic is the same; refpix within float32 rounding: jwst takes float32 means).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from d1_helpers import ramp, ref, same, snapshot  # noqa: E402

from transforms import dq as DQ  # noqa: E402
from transforms import registry  # noqa: E402
from transforms.detector1 import emicorr, refpix_miri  # noqa: E402
from transforms.detector1.refpix import RefPixParams  # noqa: E402
from transforms.model import DataModel  # noqa: E402

sdm = pytest.importorskip("stdatamodels.jwst.datamodels")
logging.getLogger("jwst").setLevel(logging.ERROR)
logging.getLogger("stpipe").setLevel(logging.ERROR)

SAT, DNU = DQ.SATURATED, DQ.DO_NOT_USE
FLUX_EST = DQ.PIXEL["FLUX_ESTIMATED"]


def miri_ramp(data, groupdq=None, pixeldq=None, **meta):
    m = {"instrument.name": "MIRI", "instrument.detector": "MIRIMAGE",
         "exposure.readpatt": "FAST", "subarray.name": "SUB256", "exposure.nsamples": 1}
    m.update(meta)
    return ramp(data, groupdq, pixeldq, **m)


def jwst_ramp(model: DataModel):
    """A stdatamodels RampModel over copies of a calops ramp."""
    r = sdm.RampModel(data=np.array(model["data"]), groupdq=np.array(model["groupdq"]),
                      pixeldq=np.array(model["pixeldq"]))
    m = model.meta
    r.meta.instrument.name = "MIRI"
    r.meta.instrument.detector = m.get("instrument.detector", "MIRIMAGE")
    r.meta.exposure.type = "MIR_IMAGE"
    r.meta.exposure.readpatt = m.get("exposure.readpatt", "FAST")
    r.meta.exposure.nints, r.meta.exposure.ngroups = model["data"].shape[:2]
    r.meta.exposure.nsamples = m.get("exposure.nsamples", 1)
    r.meta.subarray.name = m.get("subarray.name", "SUB256")
    for k in ("xstart", "ystart", "xsize", "ysize"):
        setattr(r.meta.subarray, k, m[f"subarray.{k}"])
    if m.get("exposure.integration_start"):
        r.meta.exposure.integration_start = m["exposure.integration_start"]
    return r


def run_step(name, model, refs=None, **params):
    spec = registry.get(name)
    return spec.apply(model, refs or {}, spec.make_params(params))


def random_gdq(rng, shape, p_sat=0.1):
    """groupdq with SATURATED from a random group on (as saturation leaves it)."""
    nints, ng, ny, nx = shape
    first = rng.integers(0, ng + ng // 2, (nints, ny, nx))  # >= ng: never saturated
    g = np.arange(ng)[None, :, None, None]
    sat = (g >= first[:, None]) & (rng.random((nints, 1, ny, nx)) < p_sat * 3)
    return np.where(sat, np.uint8(SAT), np.uint8(0))


shapes = st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 5), st.integers(1, 6))


# --- lastframe / firstframe ----------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(shapes, st.integers(0, 2**31))
def test_lastframe_matches_jwst(shape, seed):
    from jwst.lastframe import lastframe_sub

    rng = np.random.default_rng(seed)
    m = miri_ramp(rng.normal(100, 5, shape), random_gdq(rng, shape))
    snap = snapshot(m)
    out = run_step("lastframe", m)
    assert same(m, snap)
    want = lastframe_sub.do_correction(jwst_ramp(m))
    np.testing.assert_array_equal(out["groupdq"], want.groupdq)
    assert out.meta["cal_step.lastframe"] == want.meta.cal_step.lastframe
    assert out.meta["cal_step.lastframe"] == ("COMPLETE" if shape[1] > 2 else "SKIPPED")


@settings(max_examples=20, deadline=None)
@given(shapes, st.integers(0, 2**31), st.booleans())
def test_firstframe_matches_jwst(shape, seed, bright):
    from jwst.firstframe import firstframe_sub

    rng = np.random.default_rng(seed)
    m = miri_ramp(rng.normal(100, 5, shape), random_gdq(rng, shape),
                  rng.integers(0, 2, shape[2:]).astype(np.uint32))
    out = run_step("firstframe", m, bright_use_group1=bright)
    want = firstframe_sub.do_correction(jwst_ramp(m), bright_use_group1=bright)
    np.testing.assert_array_equal(out["groupdq"], want.groupdq)
    np.testing.assert_array_equal(out["pixeldq"], want.pixeldq)
    assert out.meta["cal_step.firstframe"] == want.meta.cal_step.firstframe
    assert registry.get("firstframe").skip_by_default  # deprecated in jwst 2.0, skip=True


# --- reset ---------------------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(shapes, st.integers(1, 3), st.integers(1, 10), st.integers(0, 2**31), st.booleans(),
       st.sampled_from([None, 2]))
def test_reset_matches_jwst(shape, rnints, rngroups, seed, nan, int_start):
    from jwst.reset import reset_sub

    rng = np.random.default_rng(seed)
    nints, ng, ny, nx = shape
    rd = rng.normal(0, 30, (rnints, rngroups, ny, nx)).astype(np.float32)
    if nan:
        rd[0, 0, 0, 0] = np.nan
    rdq = rng.integers(0, 4, (ny, nx)).astype(np.uint32)
    r = ref("reset", data=rd, dq=rdq).replace(meta={"exposure.nints": rnints,
                                                    "exposure.ngroups": rngroups})
    m = miri_ramp(rng.normal(1000, 50, shape), pixeldq=rng.integers(0, 3, (ny, nx)),
                  **({"exposure.integration_start": int_start} if int_start else {}))
    snap = snapshot(m)
    out = run_step("reset", m, {"reset": r})
    assert same(m, snap) and not np.isnan(rd[0, 0, 0, 0]) or nan
    rm = sdm.ResetModel(data=rd.copy(), dq=rdq.copy())
    rm.meta.exposure.nints, rm.meta.exposure.ngroups = rnints, rngroups
    jm = jwst_ramp(m)
    if int_start:  # jwst loops from integration_start to NINTS: give it that many
        jm.meta.exposure.nints = int_start - 1 + nints
    want = reset_sub.do_correction(jm, rm)
    np.testing.assert_array_equal(out["data"], want.data)
    np.testing.assert_array_equal(out["pixeldq"], want.pixeldq)


# --- rscd ----------------------------------------------------------------------------------

def rscd_reference(skip1, skip):
    return DataModel("ref.rscd", {
        "rscd_group_skip_table.subarray": np.array(["FULL", "SUB256", "SLITLESSPRISM"]),
        "rscd_group_skip_table.readpatt": np.array(["FAST", "FAST", "FAST"]),
        "rscd_group_skip_table.group_skip1": np.array([1, skip1, 1], np.int32),
        "rscd_group_skip_table.group_skip": np.array([4, skip, 3], np.int32)},
        {"reftype": "rscd"})


def jwst_rscd_model(r: DataModel):
    t = np.array(list(zip(*(np.asarray(r[f"rscd_group_skip_table.{c}"]) for c in
                            ("subarray", "readpatt", "group_skip1", "group_skip")))),
                 dtype=[("subarray", "S17"), ("readpatt", "S12"), ("group_skip1", "i4"),
                        ("group_skip", "i4")])
    return sdm.RSCDModel(rscd_group_skip_table=t)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 12), st.integers(-1, 4), st.integers(0, 5),
       st.integers(0, 2**31), st.sampled_from(["SUB256", "SUBPRISM", "MASK1550"]))
def test_rscd_matches_jwst(nints, ng, skip1, skip, seed, subarray):
    from jwst.rscd import rscd_sub

    rng = np.random.default_rng(seed)
    shape = (nints, ng, 4, 5)
    m = miri_ramp(rng.normal(100, 5, shape), random_gdq(rng, shape, 0.3),
                  rng.integers(0, 2, (4, 5)).astype(np.uint32), **{"subarray.name": subarray})
    r = rscd_reference(skip1, skip)
    snap = snapshot(m)
    out = run_step("rscd", m, {"rscd": r})
    assert same(m, snap)
    want = rscd_sub.do_correction(jwst_ramp(m), jwst_rscd_model(r))
    np.testing.assert_array_equal(out["groupdq"], want.groupdq)
    np.testing.assert_array_equal(out["pixeldq"], want.pixeldq)
    assert out.meta["cal_step.rscd"] == want.meta.cal_step.rscd
    for k in ("ngroups_skip_int1", "ngroups_skip_int2p", "keep_groups_saturation_int1",
              "keep_groups_saturation_int2p", "keep_bright_firstgroup_int1",
              "keep_bright_firstgroup_int2p"):
        assert out.meta.get(f"rscd.{k}") == getattr(want.meta.rscd, k), k


def test_rscd_flags_the_first_groups_and_backs_off_for_saturation():
    shape = (2, 10, 3, 3)
    gdq = np.zeros(shape, np.uint8)
    # saturates at group index 4 of integration 2: groups 2 and 3 must stay usable, so only
    # 2 of the 4 groups are flagged there (jwst backs off until group skip+1 is unsaturated)
    gdq[1, 4:, 0, 0] = SAT
    m = miri_ramp(np.zeros(shape), gdq)
    out = run_step("rscd", m, {"rscd": rscd_reference(1, 4)})
    flagged = (out["groupdq"] & DNU) != 0
    assert flagged[0, :1].all() and not flagged[0, 1:].any()
    assert flagged[1, :4, 1, 1].all() and not flagged[1, 4:, 1, 1].any()
    assert flagged[1, :2, 0, 0].all() and not flagged[1, 2:, 0, 0].any()
    assert out["pixeldq"][0, 0] & FLUX_EST and not out["pixeldq"][1, 1] & FLUX_EST
    assert out.meta["rscd.keep_groups_saturation_int2p"] == 1
    # no row for the configuration: SKIPPED, nothing changed
    other = run_step("rscd", m.replace(meta={"subarray.name": "SUB64"}),
                     {"rscd": rscd_reference(1, 4)})
    assert other.meta["cal_step.rscd"] == "SKIPPED"
    assert np.array_equal(other["groupdq"], gdq)


# --- emicorr -------------------------------------------------------------------------------

def emi_reference(hz=390.625, name="Hz390", sub="SLITLESSPRISM", rowclocks=28, frameclocks=0):
    wave = np.sin(2 * np.pi * (np.arange(64) + 0.5) / 64).astype(np.float32)
    return DataModel("ref.emicorr", {f"frequencies.{name}.phase_amplitudes": wave},
                     {"reftype": "emicorr", f"frequencies.{name}.frequency": hz,
                      "subarray_cases": {sub: {"rowclocks": rowclocks,
                                               "frameclocks": frameclocks,
                                               "freqs": {"FAST": [name],
                                                         "SLOW": {"MIRIMAGE": [name]}}}}})


def jwst_emi_model(r: DataModel):
    e = sdm.EmiModel()
    e.frequencies = {n.split(".")[1]: {"frequency": r.meta[n.replace("phase_amplitudes",
                                                                      "frequency")],
                                       "phase_amplitudes": np.array(a)}
                     for n, a in r.arrays.items()}
    e.subarray_cases = r.meta["subarray_cases"]
    return e


def emi_ramp(seed, nints=2, ng=6, ny=24, nx=32, amp=3.0, readpatt="FAST", sub="SLITLESSPRISM",
             rowclocks=28):
    """Ramps with a 390 Hz sine at jwst's sample times (what emicorr removes)."""
    from transforms.instruments.miri import detector as md

    rng = np.random.default_rng(seed)
    slope = rng.uniform(5, 50, (ny, nx))
    t = md.read_clocks(ny, nx, rowclocks, 1)
    fc = md.frame_clocks(ny, rowclocks)
    data = np.empty((nints, ng, ny, nx))
    for i in range(nints):
        for g in range(ng):
            clk = t + (i * ng + g) * fc
            data[i, g] = 1000 + slope * (g + 1) + amp * np.sin(2 * np.pi * (clk / 256.0 + 0.3))
    data += rng.normal(0, 0.5, data.shape)
    return miri_ramp(data, **{"subarray.name": sub, "exposure.readpatt": readpatt}), amp


@pytest.mark.parametrize("separately", [False, True])
def test_emicorr_matches_jwst_joint_algorithm(separately):
    from jwst.emicorr import emicorr as jem

    m, _ = emi_ramp(3)
    r = emi_reference()
    snap = snapshot(m)
    out = run_step("emicorr", m, {"emicorr": r}, fit_ints_separately=separately)
    assert same(m, snap)
    want = jem.apply_emicorr(jwst_ramp(m), jwst_emi_model(r), algorithm="joint",
                             fit_ints_separately=separately)
    np.testing.assert_array_equal(out["data"], want.data)
    assert out.meta["cal_step.emicorr"] == "COMPLETE"


def test_emicorr_removes_the_emi_it_was_given():
    m, amp = emi_ramp(4, amp=5.0)
    clean, _ = emi_ramp(4, amp=0.0)
    out = run_step("emicorr", m, {"emicorr": emi_reference()})
    before = np.abs(np.diff(m["data"] - clean["data"], axis=1)).std()
    after = np.abs(np.diff(out["data"] - clean["data"], axis=1)).std()
    assert after < 0.05 * before  # the group-to-group EMI is gone
    fit = out.meta["emicorr.fitted"]["Hz390"]
    assert fit["amplitude"][0] == pytest.approx(amp, rel=0.05)  # 6 groups: a 4% fit error
    assert (fit["phase"][0] - 0.3 + 0.5) % 1 - 0.5 == pytest.approx(0.0, abs=0.01)


def test_emicorr_skip_rules_and_refusals():
    m, _ = emi_ramp(5)
    r = emi_reference()
    assert registry.get("emicorr").skip_by_default
    for meta in ({"exposure.readpatt": "FASTGRPAVG"}, {"subarray.name": "SUB64"},
                 {"instrument.name": "NIRCAM"}):
        assert run_step("emicorr", m.replace(meta=meta), {"emicorr": r}).meta[
            "cal_step.emicorr"] == "SKIPPED"
    short, _ = emi_ramp(5, ng=2)
    assert run_step("emicorr", short, {"emicorr": r}).meta["cal_step.emicorr"] == "SKIPPED"
    with pytest.raises(ValueError, match="sequential"):
        emicorr.EmiCorrParams(algorithm="sequential")
    with pytest.raises(registry.UnknownStep, match="sequential"):  # also through a build pin
        registry.get("emicorr").make_params({"onthefly_corr_freq": (390.625,)})
    with pytest.raises(ValueError, match="'emicorr' reference"):
        emicorr.EmiCorrParams(user_supplied_reffile="my_emi.asdf")
    with pytest.raises(Exception, match="reference"):
        run_step("emicorr", m, {})


# --- MIRI refpix ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def full_frame_ramp():
    """A full-frame MIRI ramp (1 int, 3 groups) with per-output, per-row-parity drifts."""
    rng = np.random.default_rng(11)
    shape = (2, 3, 1024, 1032)
    drift = rng.normal(0, 20, (2, 3, 4, 2))
    amp = np.arange(1032) % 4
    par = np.arange(1024) % 2
    data = 10000 + rng.normal(0, 3, shape)
    data[..., 4:1028] += np.arange(3)[None, :, None, None] * 50.0  # light: not in the reference
    data += drift[:, :, amp[None, :], par[:, None]]
    pdq = np.zeros((1024, 1032), np.uint32)
    pdq[:, :4] = pdq[:, -4:] = DQ.REFERENCE_PIXEL | DQ.PIXEL["NON_SCIENCE"]
    pdq[7, 1] |= DNU  # a bad reference pixel is left out
    m = miri_ramp(data.astype(np.float32), pixeldq=pdq, **{"subarray.name": "FULL",
                                                          "subarray.xsize": 1032,
                                                          "subarray.ysize": 1024})
    return m, drift


def test_miri_refpix_matches_jwst_and_removes_the_drift(full_frame_ramp):
    from jwst.refpix import reference_pixels as jrp

    m, drift = full_frame_ramp
    snap = snapshot(m)
    out = refpix_miri.apply_miri(m, RefPixParams())
    assert same(m, snap) and out.meta["cal_step.refpix"] == "COMPLETE"
    jm = jwst_ramp(m)
    jm.meta.exposure.noutputs = 4
    ck = {"refpix_algorithm": "median", "sirs_kernel_model": None, "sigreject": 4.0,
          "gaussmooth": 1.0, "halfwidth": 30}
    assert jrp.correct_model(jm, True, True, 11, 1.0, True, ck, 3.0) == jrp.REFPIX_OK
    d = np.abs(np.asarray(out["data"], np.float64) - jm.data)
    assert d.max() < 2e-3, d.max()  # jwst's means are float32, calops' float64
    # the drift relative to group 0 is gone from every output and row parity
    amp = np.arange(1032) % 4
    for g in (1, 2):  # science columns; the reference estimate has ~0.15 DN of noise
        resid = (out["data"][1, g] - out["data"][1, 0]).astype(np.float64)[:, 4:1028] - 50.0 * g
        raw = (m["data"][1, g] - m["data"][1, 0]).astype(np.float64)[:, 4:1028] - 50.0 * g
        for a in range(4):
            for p in range(2):
                assert abs(np.median(resid[p::2, amp[4:1028] == a])) < 0.6
        assert np.abs(np.median(raw[0::2], axis=0)).max() > 5


def test_miri_refpix_contract(full_frame_ramp):
    m, _ = full_frame_ramp
    arrays = {k: np.array(v) for k, v in m.arrays.items()}
    before = {k: v.copy() for k, v in arrays.items()}
    upd = refpix_miri.correct_miri(arrays, RefPixParams(odd_even_rows=False), m.meta)
    assert upd == {"cal_step.refpix": "COMPLETE"}
    assert not np.array_equal(arrays["data"], before["data"])
    for k in ("groupdq", "pixeldq"):
        assert np.array_equal(arrays[k], before[k])  # only data is written
    # group 0 is the anchor: unchanged
    np.testing.assert_array_equal(arrays["data"][:, 0], before["data"][:, 0])
    # subarrays are skipped, as jwst does for MIRI; near-IR products are refused
    sub = miri_ramp(np.zeros((1, 3, 8, 8), np.float32))
    assert refpix_miri.apply_miri(sub, RefPixParams()).meta["cal_step.refpix"] == "SKIPPED"
    with pytest.raises(ValueError, match="not a MIRI product"):
        refpix_miri.apply_miri(ramp(np.zeros((1, 3, 8, 8))), RefPixParams())


def test_miri_refpix_stops_where_jwst_stops_when_a_reference_is_all_bad(full_frame_ramp):
    from jwst.refpix import reference_pixels as jrp

    m, _ = full_frame_ramp
    pdq = np.array(m["pixeldq"])
    pdq[0::2, 2] |= DNU  # output 2, even rows: no usable left reference pixel
    bad = m.replace(arrays={"pixeldq": pdq})
    out = refpix_miri.apply_miri(bad, RefPixParams())
    jm = jwst_ramp(bad)
    jm.meta.exposure.noutputs = 4
    ck = {"refpix_algorithm": "median", "sirs_kernel_model": None, "sigreject": 4.0,
          "gaussmooth": 1.0, "halfwidth": 30}
    jrp.correct_model(jm, True, True, 11, 1.0, True, ck, 3.0)
    np.testing.assert_allclose(out["data"], jm.data, rtol=0, atol=2e-3)
    np.testing.assert_array_equal(out["data"], bad["data"])  # nothing was corrected
