"""Property tests of the IFU cube and spectrum steps on awkward inputs (issue #16: empty slices,
NaNs, all-flagged pixels, a single exposure): cube_build (drizzle / emsm, skyalign / ifualign),
extract_1d on the cube and the spec3 IFU chain must not crash and must give sane products:

- every finite cube value lies within the range of the finite input values (drizzle and emsm
  are averages with positive weights), voxels without data are NaN and flagged DO_NOT_USE, the
  cube's shape and WCS do not depend on which pixels hold data;
- blanked slices leave no data where only they reach; an all-NaN / all-flagged exposure gives
  an all-NaN cube (flagged), not an error;
- extract_1d gives one row per plane, finite where the cube's plane has data;
- spec3 on one exposure (no background member, nothing to compare for outliers) gives its cube
  and spectrum.

Small inputs: a noiseless MRS channel 1 exposure whose surface brightness is an arithmetic
function of the pixel (no rendering), cubes cut to a 0.08 um window (``wavemin/wavemax``).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms import dq as DQ
from transforms import plans, registry
from transforms.instruments.miri import mrs
from transforms.registry import PlannedStep
from transforms.sim import ifu_mrs as SM

WMIN, WMAX = 5.30, 5.38  # channel 1 SHORT: ~100 planes


@functools.cache
def _refs():
    return SM.mrs_references("MIRIFUSHORT", "SHORT", 0, SM.MrsEffects.none())


@functools.cache
def _cal():
    """assign_wcs' model of an MRS exposure with channel 1 lit by a smooth positive surface
    brightness (MJy/sr), channel 2 and the gaps NaN."""
    from transforms.model import DataModel

    meta = SM.exposure_meta(SM.MrsExposureSpec())
    p = mrs.mrs_params("MIRIFUSHORT", "SHORT")
    px = mrs.pixels(p)
    lit = px.label // 100 == 1
    val = 2.0 + np.exp(-np.where(lit, px.alpha, 0.0) ** 2) + 0.1 * np.where(lit, px.lam, 0.0) \
        + 0.05 * np.sin(np.where(lit, px.label, 0))
    data = np.where(lit, val, np.nan).astype(np.float32)
    dq = np.where(lit, 0, DQ.DO_NOT_USE).astype(np.uint32)
    err = np.where(lit, 0.01, np.nan).astype(np.float32)
    rate = DataModel("rate", {"data": data, "dq": dq, "err": err,
                              "var_poisson": (err * err).astype(np.float32),
                              "var_rnoise": np.zeros_like(err)}, {**meta, "bunit_data": "MJy/sr"})
    s = registry.get("assign_wcs", "2.1")
    return s.apply(rate, _refs(), s.make_params())


def _damage(cal, empty: list[int], nan_frac: float, seed: int, all_flagged: bool):
    d = np.array(cal["data"])
    dq = np.array(cal["dq"])
    px = mrs.pixels(mrs.mrs_params("MIRIFUSHORT", "SHORT"))
    for lab in empty:
        d[px.label == lab] = np.nan
    if nan_frac:
        rng = np.random.default_rng(seed)
        hit = rng.random(d.shape) < nan_frac
        d[hit & (rng.random(d.shape) < 0.5)] = np.nan  # NaN with a clean DQ
        dq[hit] |= DQ.DO_NOT_USE  # or flagged with a finite value
    if all_flagged:
        dq |= DQ.DO_NOT_USE
    return cal.replace(arrays={**cal.arrays, "data": d, "dq": dq})


CB = "1.2"  # 1.1 raised on an exposure without good pixels and moved its grid with the data


def _cube(models, version=CB, **kw):
    cb = registry.get("cube_build", version)
    return cb.apply(models, _refs(), cb.make_params({"channel": "1", "wavemin": WMIN,
                                                     "wavemax": WMAX, **kw}))


def _check_cube(cube, cal, reference=None):
    d = np.asarray(cube["data"], np.float64)
    dq = np.asarray(cube["dq"])
    assert d.ndim == 3 and d.shape == np.asarray(cube["dq"]).shape
    inp = np.asarray(cal["data"], np.float64)
    good_in = np.isfinite(inp) & ((np.asarray(cal["dq"]) & DQ.DO_NOT_USE) == 0)
    fin = np.isfinite(d)
    if fin.any():
        lo, hi = inp[good_in].min(), inp[good_in].max()
        assert d[fin].min() >= lo * (1 - 1e-5) and d[fin].max() <= hi * (1 + 1e-5)
    assert np.all((dq[~fin] & DQ.DO_NOT_USE) != 0)  # no data -> flagged
    assert np.all(np.isfinite(np.asarray(cube["err"])[fin]))
    if reference is not None:  # the same sampling and wavelength axis as the clean cube
        assert d.shape == np.asarray(reference["data"]).shape
        for k in ("crval1", "crval2", "crval3", "cdelt1", "cdelt2", "cdelt3", "crpix1"):
            assert cube.meta[f"wcsinfo.{k}"] == reference.meta[f"wcsinfo.{k}"], k


def _check_x1d(x1d, cube):
    (fk,) = [k for k in x1d.arrays if k.endswith(":flux")]
    f = np.asarray(x1d[fk], np.float64)
    nz = np.asarray(cube["data"]).shape[0]
    assert f.size == nz
    planes = np.any(np.isfinite(np.asarray(cube["data"])), axis=(1, 2))
    w = np.asarray(x1d[fk.replace(":flux", ":wavelength")], np.float64)
    assert np.all(np.isfinite(w)) and np.all(np.diff(w) > 0)
    assert np.all(np.isfinite(f[planes]))


@functools.cache
def _clean_cube(weighting, coord):
    return _cube(_cal(), weighting=weighting, coord_system=coord)


@settings(max_examples=8)
@given(empty=st.lists(st.integers(101, 121), max_size=6, unique=True),
       nan_frac=st.sampled_from([0.0, 0.01, 0.3]), seed=st.integers(0, 2 ** 16),
       weighting=st.sampled_from(["drizzle", "emsm"]),
       coord=st.sampled_from(["skyalign", "ifualign"]))
def test_cube_build_and_extract_1d_survive_empty_slices_and_nans(empty, nan_frac, seed,
                                                                 weighting, coord):
    cal = _damage(_cal(), empty, nan_frac, seed, False)
    cube = _cube(cal, weighting=weighting, coord_system=coord)
    _check_cube(cube, cal, _clean_cube(weighting, coord))
    x1 = registry.get("extract_1d", "1.1")
    _check_x1d(x1.apply(cube, _refs(), x1.make_params({"ifu_rfcorr": False})), cube)


@pytest.mark.parametrize("coord", ["skyalign", "ifualign"])
def test_cube_grid_does_not_depend_on_missing_pixels(coord):
    """jwst 3.0 (``cube_build_wcs_util.find_corners_miri``) takes the footprint from the WCS
    of every pixel of the channel's region, whatever their data; cube_build 1.2 too. 1.1 took
    it from the good pixels only: blanking the first slice moved crval (measured: 0.07" in RA,
    0.06" in Dec). 1.2 gives 1.1's cube when the band's pixels are all good."""
    clean = _clean_cube("drizzle", coord)
    blanked = _damage(_cal(), [101], 0.0, 0, False)
    cube = _cube(blanked, coord_system=coord)
    for k in ("crval1", "crval2", "crpix1", "crpix2", "naxis1", "naxis2"):
        assert cube.meta.get(f"wcsinfo.{k}") == clean.meta.get(f"wcsinfo.{k}"), k
    old = _cube(blanked, "1.1", coord_system=coord)
    assert old.meta["wcsinfo.crval1"] != clean.meta["wcsinfo.crval1"]
    same = _cube(_cal(), "1.1", coord_system=coord)
    for k in ("data", "dq", "err", "weightmap"):
        np.testing.assert_array_equal(np.asarray(same[k]), np.asarray(clean[k]))


def test_blanked_slices_leave_their_sky_empty():
    """With every other slice blanked (drizzle), the cube keeps data only near the lit slices:
    fewer voxels with data than the clean cube, none outside the clean cube's."""
    labels = list(range(101, 122, 2))
    cal = _damage(_cal(), labels, 0.0, 0, False)
    cube = _cube(cal)
    clean = _clean_cube("drizzle", "skyalign")
    f, fc = np.isfinite(np.asarray(cube["data"])), np.isfinite(np.asarray(clean["data"]))
    assert 0 < f.sum() < fc.sum()
    # the lit slices alone: every voxel with data is within one slice width of a lit slice's
    # pixel, so no plane has more data than the clean cube's
    assert np.all(f.sum(axis=(1, 2)) <= fc.sum(axis=(1, 2)))


@pytest.mark.parametrize("how", ["all_flagged", "all_nan"])
@pytest.mark.parametrize("weighting", ["drizzle", "emsm"])
def test_all_flagged_exposure_gives_an_empty_cube(how, weighting):
    cal = _cal()
    if how == "all_flagged":
        cal = _damage(cal, [], 0.0, 0, True)
    else:
        cal = _damage(cal, list(range(101, 122)), 0.0, 0, False)
    cube = _cube(cal, weighting=weighting)
    d = np.asarray(cube["data"])
    assert d.shape == np.asarray(_clean_cube(weighting, "skyalign")["data"]).shape
    assert not np.isfinite(d).any()
    assert np.all((np.asarray(cube["dq"]) & DQ.DO_NOT_USE) != 0)
    x1 = registry.get("extract_1d", "1.1")
    x1d = x1.apply(cube, _refs(), x1.make_params({"ifu_rfcorr": False}))
    (fk,) = [k for k in x1d.arrays if k.endswith(":flux")]
    assert np.asarray(x1d[fk]).size == d.shape[0]


def _plan3(meta):
    out = []
    for p in plans.default_plan("spec3", {}, meta=meta):
        prm = p.params
        if p.name == "cube_build":
            prm = dataclasses.replace(prm, channel="1", wavemin=WMIN, wavemax=WMAX)
        out.append(PlannedStep(p.spec, prm, p.skip, _refs()))
    return out


@settings(max_examples=4)
@given(empty=st.lists(st.integers(101, 121), max_size=4, unique=True),
       nan_frac=st.sampled_from([0.0, 0.05]), seed=st.integers(0, 2 ** 16))
def test_spec3_chain_on_a_single_exposure(empty, nan_frac, seed):
    from transforms import spec3

    cal = _damage(_cal(), empty, nan_frac, seed, False)
    cal = cal.replace(meta={"cal_step.photom": "COMPLETE"})
    out = spec3.run((cal,), _plan3(cal.meta))
    assert len(out["crf"]) == 1
    _check_cube(out["s3d"], cal, _clean_cube("drizzle", "skyalign"))
    _check_x1d(out["x1d"], out["s3d"])
