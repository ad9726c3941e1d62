"""tweakreg: geometry of the fit and match, and alignment of simulated dithered programs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from image3_synth import make_program, sky_errors
from transforms.image3.tweakreg import (Tweak, TweakregError, TweakregParams, apply_tweak, fit,
                                        from_plane, match, to_plane, tweakreg)
from transforms.model import DataModel
from transforms.wcs import wcs_of

P = TweakregParams(kernel_fwhm=2.0, minobj=10)


@settings(max_examples=20, deadline=None)
@given(ra0=st.floats(0, 359.9), dec0=st.floats(-89, 89), dx=st.floats(-300, 300),
       dy=st.floats(-300, 300))
def test_tangent_plane_round_trip(ra0, dec0, dx, dy):
    ra, dec = from_plane(dx, dy, ra0, dec0)
    xi, eta = to_plane(ra, dec, ra0, dec0)
    assert abs(xi - dx) < 1e-6 and abs(eta - dy) < 1e-6


@settings(max_examples=25, deadline=None)
@given(geometry=st.sampled_from(["shift", "rshift", "rscale", "general"]),
       rot=st.floats(-2, 2), scale=st.floats(0.998, 1.002), tx=st.floats(-1, 1),
       ty=st.floats(-1, 1), seed=st.integers(0, 1000))
def test_fit_recovers_the_transform_and_clips_outliers(geometry, rot, scale, tx, ty, seed):
    rng = np.random.default_rng(seed)
    src = rng.uniform(-60, 60, (40, 2))
    th = math.radians(rot) if geometry != "shift" else 0.0
    s = scale if geometry in ("rscale", "general") else 1.0
    m = s * np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    ref = src @ m.T + [tx, ty] + rng.normal(0, 1e-3, src.shape)
    ref[:3] += 5.0  # three gross mismatches
    f = fit(src, ref, geometry, nclip=3, sigma=3.0)
    assert not f.used[:3].any()
    assert np.allclose(f.matrix, m, atol=1e-4)
    assert np.allclose(f.shift, [tx, ty], atol=2e-3)
    assert f.rms < 3e-3


def test_fit_refuses_bad_geometry_and_too_few_points():
    with pytest.raises(TweakregError, match="fitgeometry"):
        fit(np.zeros((5, 2)), np.zeros((5, 2)), "affine")
    with pytest.raises(TweakregError, match="at least 3"):
        fit(np.zeros((2, 2)), np.zeros((2, 2)), "general")


def test_match_finds_shifted_shuffled_pairs_among_extras():
    rng = np.random.default_rng(5)
    ref = rng.uniform(-30, 30, (50, 2))
    perm = rng.permutation(50)[:35]
    src = ref[perm] - [0.9, -0.6] + rng.normal(0, 0.01, (35, 2))
    src = np.vstack([src, rng.uniform(-30, 30, (10, 2))])  # sources with no counterpart
    i, j = match(src, ref, searchrad=2.0, separation=0.5, tolerance=0.2)
    good = i < 35
    assert good.sum() >= 30
    assert np.array_equal(perm[i[good]], j[good])
    assert len(np.unique(j)) == len(j)  # one-to-one


def test_apply_tweak_is_the_plane_affine():
    t = Tweak(53.0, -27.0, ((1.0, 0.0), (0.0, 1.0)), dx=0.3, dy=-0.2)
    ra, dec = from_plane(np.array([0.0, 10.0]), np.array([0.0, 5.0]), 53.0, -27.0)
    ra2, dec2 = apply_tweak(ra, dec, t.to_meta())
    xi, eta = to_plane(ra2, dec2, 53.0, -27.0)
    assert np.allclose(xi, [0.3, 10.3], atol=1e-8) and np.allclose(eta, [-0.2, 4.8], atol=1e-8)
    assert Tweak.from_meta(t.to_meta()) == t


@pytest.fixture(scope="module")
def program():
    return make_program(seed=11, n_exp=4, max_err=0.5, rot_err_deg=0.02)


@pytest.fixture(scope="module")
def aligned(program):
    return tweakreg(program.cals, {}, P)


def test_relative_alignment_rms_within_10_mas(program, aligned):
    before = sky_errors(program.cals, program.truths)
    after = sky_errors(aligned, program.truths)

    def rel_rms(e):
        rel = e - e.mean(axis=0, keepdims=True)
        return float(np.sqrt(np.mean(np.sum(rel ** 2, axis=-1))))

    assert rel_rms(before) > 0.1  # the injected errors were real
    assert rel_rms(after) * 1000 <= 10.0
    for m in aligned:
        assert m.get("cal_step.tweakreg") == "COMPLETE"
        assert m.get("wcs.tweak")["nmatch"] >= P.minobj


def test_recorded_v2v3_tweak_reproduces_the_sky_correction(program, aligned):
    for raw, m in zip(program.cals, aligned):
        tw = m.get("wcs.tweak")
        ny, nx = m.shape
        gx, gy = np.meshgrid(np.linspace(0, nx - 1, 4), np.linspace(0, ny - 1, 4))
        ra0, dec0 = wcs_of(raw)(gx, gy)
        ra1, dec1 = wcs_of(m)(gx, gy)
        ra2, dec2 = apply_tweak(ra0, dec0, tw["sky"])
        d = np.hypot((ra1 - ra2) * np.cos(np.radians(dec2)), dec1 - dec2) * 3.6e6
        assert d.max() < 0.1  # mas


def test_absolute_alignment_to_a_reference_catalogue(program):
    refcat = DataModel("catalog", {"ra": program.ra, "dec": program.dec})
    out = tweakreg(program.cals, {"abs_refcat": refcat},
                   TweakregParams(kernel_fwhm=2.0, minobj=10, abs_minobj=10,
                                  abs_refcat="user"))
    err = sky_errors(out, program.truths)
    assert np.sqrt(np.mean(np.sum(err ** 2, axis=-1))) * 1000 < 10.0
    assert out[0].get("wcs.tweak")["abs_nmatch"] >= 10


def test_abs_refcat_without_catalogue_is_a_clear_error(program):
    with pytest.raises(TweakregError, match="refs\\['abs_refcat'\\]"):
        tweakreg(program.cals, {}, TweakregParams(abs_refcat="GAIADR3"))


def test_deterministic_and_inputs_untouched(program, aligned):
    before = [np.array(m["data"]) for m in program.cals]
    again = tweakreg(program.cals, {}, P)
    for a, b in zip(aligned, again):
        assert a.meta == b.meta
    for m, b in zip(program.cals, before):
        assert np.array_equal(m["data"], b)
        assert "wcs.tweak" not in m.meta


def test_single_exposure_and_sourceless_fields_are_skipped(program):
    one = tweakreg(program.cals[:1], {}, P)
    assert one[0].get("cal_step.tweakreg") == "SKIPPED"
    blank = tuple(m.replace(arrays={"data": np.zeros(m.shape, np.float32)})
                  for m in program.cals[:2])
    out = tweakreg(blank, {}, P)
    assert all(m.get("cal_step.tweakreg") == "SKIPPED" for m in out)
    assert all("wcs.tweak" not in m.meta for m in out)


def test_good_bits_follow_jwst_semantics():
    from transforms.image3.tweakreg import good_mask

    dq = np.array([0, 1, 2, 512, 513], np.uint32)
    assert good_mask(dq, "~DO_NOT_USE").tolist() == [True, False, True, True, False]
    assert good_mask(dq, "~DO_NOT_USE+NON_SCIENCE").tolist() == [True, False, True, False, False]
    assert good_mask(dq, "0").tolist() == [True, False, False, False, False]


def test_unimplemented_starfinder_is_refused(program):
    with pytest.raises(TweakregError, match="starfinder"):
        tweakreg(program.cals, {}, TweakregParams(starfinder="dao"))
