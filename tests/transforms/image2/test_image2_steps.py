"""image2 steps: assign_wcs, flat_field, photom (formulas, DQ, subarrays, purity)."""

from __future__ import annotations

import numpy as np
import pytest
from image2_helpers import make_rate, make_refs
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms import dq as dqf
from transforms import wcs as W
from transforms.image2 import Image2Error
from transforms.image2.assign_wcs import AssignWcsParams, assign_wcs
from transforms.image2.flat_field import FlatFieldParams, flat_field
from transforms.image2.photom import PhotomParams, photom
from transforms.model import DataModel
from transforms.registry import get


def test_registered_with_reftypes():
    # image2's versions (spectroscopy registers newer ones of these names for spec2)
    assert get("assign_wcs", "1.0").reftypes == ("distortion",)
    assert get("flat_field", "1.0").reftypes == ("flat",)
    assert get("photom", "1.0").reftypes == ("photom", "area")
    assert get("resample").stage == "image2"


def test_assign_wcs_records_rebuildable_wcs(rate, refs):
    cal = assign_wcs(rate, refs, AssignWcsParams())
    assert cal.kind == "cal" and cal.get("cal_step.assign_wcs") == "COMPLETE"
    w = W.wcs_of(cal)
    direct = W.build_wcs(rate.meta, refs["distortion"], shape=rate.shape)
    x, y = np.array([0.0, 30.0, 71.0]), np.array([0.0, 20.0, 63.0])
    np.testing.assert_array_equal(np.array(w(x, y)), np.array(direct(x, y)))
    poly = [float(v) for v in cal.get("wcsinfo.s_region").split()[2:]]
    np.testing.assert_allclose(poly[:2], w(-0.5, -0.5), atol=1e-8)
    assert np.shares_memory(cal["data"], rate["data"])  # arrays untouched, not copied
    # bytes -> gwcs -> same values (what the FITS writer stores)
    w2 = W.wcs_from_asdf_bytes(W.wcs_to_asdf_bytes(w))
    np.testing.assert_array_equal(np.array(w2(x, y)), np.array(w(x, y)))


def test_assign_wcs_subarray_matches_full_frame(refs):
    full = assign_wcs(make_rate((128, 128)), refs, AssignWcsParams())
    sub = assign_wcs(make_rate((32, 40), xstart=51, ystart=21), refs, AssignWcsParams())
    np.testing.assert_allclose(W.wcs_of(sub)(0.0, 0.0), W.wcs_of(full)(50.0, 20.0), atol=1e-12)


def test_assign_wcs_errors(rate, refs):
    with pytest.raises(Image2Error, match="distortion"):
        assign_wcs(rate, {}, AssignWcsParams())
    bad = rate.replace(drop=("wcsinfo.roll_ref",))
    with pytest.raises(Image2Error, match="wcsinfo.roll_ref"):
        assign_wcs(bad, refs, AssignWcsParams())


def test_flat_field_formulas(rate, refs):
    out = flat_field(rate, refs, FlatFieldParams())
    f = refs["flat"]["data"][:64, :72]
    fe = refs["flat"]["err"][:64, :72]
    d = rate["data"] / f
    np.testing.assert_allclose(out["data"], d, rtol=1e-6)
    np.testing.assert_allclose(out["var_flat"], d ** 2 / f ** 2 * fe ** 2, rtol=1e-5)
    np.testing.assert_allclose(out["var_rnoise"], rate["var_rnoise"] / f ** 2, rtol=1e-6)
    np.testing.assert_allclose(out["err"], np.sqrt(out["var_rnoise"] + out["var_poisson"]
                                                   + out["var_flat"]), rtol=1e-6)
    assert out.get("cal_step.flat_field") == "COMPLETE"
    back = flat_field(out, refs, FlatFieldParams(inverse=True))
    np.testing.assert_allclose(back["data"], rate["data"], rtol=1e-6)


def test_flat_field_bad_flat_pixels_and_subarray(refs):
    flat = np.array(refs["flat"]["data"])
    fdq = np.array(refs["flat"]["dq"])
    flat[25, 55] = np.nan
    flat[26, 56] = 0.0
    fdq[27, 57] = dqf.NO_FLAT_FIELD
    ref = refs["flat"].replace(arrays={"data": flat, "dq": fdq})
    rate = make_rate((10, 12), xstart=51, ystart=21)  # covers rows 20..29, cols 50..61
    out = flat_field(rate, {"flat": ref}, FlatFieldParams())
    bad = dqf.DO_NOT_USE | dqf.NO_FLAT_FIELD
    for (y, x) in ((5, 5), (6, 6), (7, 7)):
        assert out["dq"][y, x] & bad == bad
        assert np.isnan(out["data"][y, x]) and np.isnan(out["err"][y, x])
    good = (out["dq"] & dqf.DO_NOT_USE) == 0
    assert good.sum() == 120 - 3
    np.testing.assert_allclose(out["data"][good],
                               (rate["data"] / refs["flat"]["data"][20:30, 50:62])[good],
                               rtol=1e-6)


def test_flat_field_matches_jwst(rate, refs):
    dm = pytest.importorskip("stdatamodels.jwst.datamodels")
    ff = pytest.importorskip("jwst.flatfield.flat_field")
    sci = dm.ImageModel(data=np.array(rate["data"]), dq=np.array(rate["dq"]),
                        err=np.array(rate["err"]), var_poisson=np.array(rate["var_poisson"]),
                        var_rnoise=np.array(rate["var_rnoise"]))
    flat_data = np.array(refs["flat"]["data"][:64, :72])
    flat_data[3, 4] = np.nan
    flat = dm.FlatModel(data=flat_data.copy(), dq=np.zeros((64, 72), np.uint32),
                        err=np.array(refs["flat"]["err"][:64, :72]))
    for m in (sci, flat):
        m.meta.instrument.name = "NIRCAM"
        m.meta.subarray.xstart, m.meta.subarray.ystart = 1, 1
        m.meta.subarray.xsize, m.meta.subarray.ysize = 72, 64
    ff.apply_flat_field(sci, flat)
    ref = refs["flat"].replace(arrays={"data": flat_data, "dq": np.zeros((64, 72), np.uint32),
                                       "err": refs["flat"]["err"][:64, :72]})
    ours = flat_field(rate, {"flat": ref}, FlatFieldParams())
    for name in ("data", "err", "var_flat", "var_rnoise", "var_poisson"):
        np.testing.assert_allclose(ours[name], getattr(sci, name), rtol=1e-6, equal_nan=True,
                                   err_msg=name)
    np.testing.assert_array_equal(ours["dq"], sci.dq)


def test_photom_conversion_and_area(rate, refs):
    out = photom(flat_field(rate, refs, FlatFieldParams()), refs, PhotomParams())
    c = 0.2143
    assert out.get("photometry.conversion_megajanskys") == pytest.approx(c, rel=1e-6)
    np.testing.assert_allclose(out["data"], flat_field(rate, refs, FlatFieldParams())["data"] * c,
                               rtol=1e-6)
    np.testing.assert_allclose(out["var_rnoise"], rate["var_rnoise"] / refs["flat"]["data"][
        :64, :72] ** 2 * c * c, rtol=1e-5)
    assert out["area"].shape == rate.shape
    np.testing.assert_array_equal(out["area"], refs["area"]["data"][:64, :72])
    assert out.get("photometry.pixelarea_arcsecsq") == pytest.approx(0.031 * 0.0312)
    assert out.get("bunit_data") == "MJy/sr"


def test_photom_needs_matching_row(rate, refs):
    with pytest.raises(Image2Error, match="F444W"):
        photom(rate.replace(meta={"instrument.filter": "F444W"}), refs, PhotomParams())
    with pytest.raises(Image2Error, match="photom"):
        photom(rate, {}, PhotomParams())


@settings(max_examples=15, deadline=None)
@given(ny=st.integers(1, 9), nx=st.integers(1, 9), seed=st.integers(0, 1000),
       flag_all=st.booleans(), nstars=st.integers(0, 2))
def test_steps_pure_deterministic_on_tiny_and_flagged(ny, nx, seed, flag_all, nstars):
    refs = _REFS
    rate = make_rate((ny, nx), seed=seed, nstars=nstars)
    if flag_all:
        rate = rate.replace(arrays={"dq": np.full((ny, nx), dqf.DO_NOT_USE, np.uint32)})
    snapshot = {k: np.array(v) for k, v in rate.arrays.items()}
    meta_before = dict(rate.meta)
    a = photom(flat_field(assign_wcs(rate, refs, AssignWcsParams()), refs, FlatFieldParams()),
               refs, PhotomParams())
    b = photom(flat_field(assign_wcs(rate, refs, AssignWcsParams()), refs, FlatFieldParams()),
               refs, PhotomParams())
    for k in a.arrays:
        assert np.array_equal(a[k], b[k], equal_nan=True)
    assert dict(a.meta) == dict(b.meta)
    for k, v in snapshot.items():
        assert np.array_equal(rate[k], v, equal_nan=True)
    assert dict(rate.meta) == meta_before
    # NaN and DO_NOT_USE agree everywhere
    assert np.array_equal(np.isnan(a["data"]), (a["dq"] & dqf.DO_NOT_USE) != 0)
    if flag_all:
        assert np.all(np.isnan(a["data"]))


_REFS = make_refs()


def test_steps_refuse_non_images(refs):
    cube = DataModel("rate", {"data": np.zeros((2, 2, 2, 2), np.float32),
                              "dq": np.zeros((2, 2, 2, 2), np.uint32)}, make_rate().meta)
    with pytest.raises(Image2Error, match="image"):
        flat_field(cube, refs, FlatFieldParams())
