"""image2.run: rate -> cal -> i2d, flux conservation through resample, skips, tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest
from image2_helpers import make_rate, make_refs
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms import dq as dqf
from transforms import resample as R
from transforms import wcs as W
from transforms.image2 import Image2Error, run
from transforms.registry import PlannedStep, get, stage

_REFS = make_refs()


def plan(skip=(), **overrides):
    out = []
    for name in stage("image2").steps:
        spec = get(name)
        refs = {r: _REFS[r] for r in spec.reftypes if r in _REFS}
        out.append(PlannedStep(spec, spec.make_params(overrides.get(name)), name in skip, refs))
    return out


def test_chain_makes_cal_and_i2d():
    rate = make_rate((64, 72), seed=4)
    out = run(rate, plan())
    cal, i2d = out["cal"], out["i2d"]
    assert cal.kind == "cal" and i2d.kind == "i2d"
    for step in ("assign_wcs", "flat_field", "photom"):
        assert cal.get(f"cal_step.{step}") == "COMPLETE"
    assert i2d.get("cal_step.resample") == "COMPLETE"
    assert set(i2d.arrays) >= {"data", "err", "wht", "con", "var_rnoise", "var_poisson",
                               "var_flat"}
    assert "dq" not in i2d.arrays and i2d["con"].dtype == np.int32
    w = W.wcs_of(i2d)  # the mosaic's WCS travels in its meta too
    assert w.pixel_shape == i2d.shape[::-1]
    assert i2d.get("resample.weight_type") == "ivm"


def test_i2d_conserves_total_flux():
    rate = make_rate((96, 100), seed=7, sky=0.0, nstars=10)
    for params in ({}, {"pixfrac": 0.7, "rotation": 30.0, "pixel_scale_ratio": 0.8}):
        out = run(rate, plan(resample=params))
        cal, i2d = out["cal"], out["i2d"]
        w = W.wcs_of(cal)
        # per-pixel solid angle of the cal image from its own WCS (distortion included)
        area_in = R.pixel_scale_arcsec(w, cal.shape) ** 2
        scale_out = i2d.get("wcs.tangent_plane")["pixel_scale_arcsec"]
        flux_in = np.nansum(cal["data"], dtype=np.float64) * area_in
        flux_out = np.nansum(i2d["data"], dtype=np.float64) * scale_out ** 2
        assert flux_out == pytest.approx(flux_in, rel=5e-3), params


def test_skips_are_recorded():
    out = run(make_rate((16, 16)), plan(skip=("flat_field", "resample")))
    assert out["cal"].get("cal_step.flat_field") == "SKIPPED"
    assert out["cal"].get("cal_step.photom") == "COMPLETE"
    assert "i2d" not in out and "var_flat" not in out["cal"].arrays


def test_exptime_weights_and_bad_params():
    rate = make_rate((32, 32))
    i2d = run(rate, plan(resample={"weight_type": "exptime"}))["i2d"]
    cov = i2d["wht"] > 0
    # a fully covered output pixel of the same scale collects ~ the measurement time
    assert np.median(i2d["wht"][cov]) == pytest.approx(100.0, rel=2e-2)
    assert np.all(np.isfinite(i2d["data"][cov]))
    with pytest.raises(Image2Error, match="kernel"):
        run(rate, plan(resample={"kernel": "lanczos3"}))
    with pytest.raises(Image2Error, match="rate"):
        run(rate.replace(kind="uncal"), plan())
    with pytest.raises(Image2Error, match="order"):
        run(rate, list(reversed(plan())))


@settings(max_examples=10, deadline=None)
@given(ny=st.integers(1, 7), nx=st.integers(1, 7), flag_all=st.booleans(),
       nstars=st.integers(0, 1), seed=st.integers(0, 100))
def test_chain_on_tiny_empty_and_flagged(ny, nx, flag_all, nstars, seed):
    rate = make_rate((ny, nx), seed=seed, nstars=nstars)
    if flag_all:
        rate = rate.replace(arrays={"dq": np.full((ny, nx), dqf.DO_NOT_USE, np.uint32)})
    out = run(rate, plan())
    i2d = out["i2d"]
    assert np.array_equal(np.isnan(i2d["data"]), i2d["wht"] == 0)
    if flag_all:
        assert np.all(i2d["wht"] == 0) and np.all(np.isnan(i2d["err"]))
    again = run(rate, plan())["i2d"]
    assert np.array_equal(i2d["data"], again["data"], equal_nan=True)


def test_resample_step_mosaics_several_exposures():
    """Stage 3 calls the same step/function on a tuple of cal models."""
    from transforms.image2.resample import ResampleParams, resample

    cals = []
    for k, dra in enumerate((0.0, 0.0003)):
        rate = make_rate((40, 48), seed=k).replace(meta={"wcsinfo.ra_ref": 53.16 + dra})
        cals.append(run(rate, plan(skip=("resample",)))["cal"])
    i2d = resample(tuple(cals), {}, ResampleParams())
    single = [resample(c, {}, ResampleParams(
        crval=tuple(i2d.get("wcs.tangent_plane")[k] for k in ("ra", "dec")),
        rotation=i2d.get("wcs.tangent_plane")["rotation_deg"],
        crpix=tuple(i2d.get("wcs.tangent_plane")["crpix"]),
        pixel_scale=i2d.get("wcs.tangent_plane")["pixel_scale_arcsec"],
        output_shape=tuple(i2d.get("wcs.tangent_plane")["shape"][::-1]))) for c in cals]
    assert i2d.get("resample.ninputs") == 2
    con = i2d["con"][0]
    both = con == 3
    assert both.any() and (con == 1).any() and (con == 2).any()
    # where both contribute with ivm weights, SCI is the weighted mean of the two singles
    w1, w2 = single[0]["wht"], single[1]["wht"]
    expect = (single[0]["data"] * w1 + single[1]["data"] * w2) / (w1 + w2)
    np.testing.assert_allclose(i2d["data"][both], expect[both], rtol=1e-4, atol=1e-6)


def test_rateints_calibrated_per_integration_not_resampled():
    rate = make_rate((16, 18), seed=2)
    cube = rate.replace(kind="rateints", arrays={k: np.stack([v, v]) for k, v in
                                                 rate.arrays.items()})
    out = run(cube, plan())
    assert "i2d" not in out and out["cal"].get("cal_step.resample") == "SKIPPED"
    single = run(rate, plan(skip=("resample",)))["cal"]
    for k in ("data", "err", "var_flat"):
        np.testing.assert_array_equal(out["cal"][k][1], single[k])
