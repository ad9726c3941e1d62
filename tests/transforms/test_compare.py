"""transforms.compare: tolerance edges, NaN/Inf policy, DQ per flag, catalogs, pictures, purity."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.utils.diff import where_not_allclose
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from transforms import compare as C
from transforms import dq as dqflags
from transforms.model import DataModel


# --- tolerance -------------------------------------------------------------------------------

def test_tolerance_edge_is_inclusive_and_scales_with_b():
    tol = C.Tolerance(rtol=0.5, atol=0.25)  # threshold at b = 1 is exactly 0.75
    b = np.array([1.0, 1.0, 1.0, -2.0])
    a = np.array([1.75, np.nextafter(1.75, 2.0), 0.25, -3.25])  # |a-b|: 0.75, >0.75, 0.75, 1.25
    d = C.compare_arrays(a, b, tol=tol)
    assert d.n_over == 1 and d.n == 4
    # relative to b, not a: |2 - 4| = 2 <= 0.25 + 0.5*4, but > 0.25 + 0.5*2
    assert C.compare_arrays(np.array([2.0]), np.array([4.0]), tol=tol).n_over == 0
    assert C.compare_arrays(np.array([4.0]), np.array([2.0]), tol=tol).n_over == 1


def test_defaults_are_the_jwst_regtest_ones():
    assert C.Tolerance() == C.Tolerance(rtol=1e-5, atol=1e-7)
    x = np.float32(1000.0)
    within = C.compare_arrays(np.array([x]), np.array([x * np.float32(1 + 5e-6)]))
    over = C.compare_arrays(np.array([x]), np.array([x * np.float32(1 + 5e-5)]))
    assert (within.n_over, over.n_over) == (0, 1)
    b = np.float64(x * np.float32(1 + 5e-5))
    assert over.max_rel == pytest.approx((b - np.float64(x)) / b, rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(-1e6, 1e6, width=32)),
       st.floats(0, 1e-2), st.floats(0, 1e-2), st.integers(0, 2**32 - 1))
def test_over_count_agrees_with_astropy_fitsdiff_rule(a, rtol, atol, seed):
    rng = np.random.default_rng(seed)
    b = a * (1 + rng.normal(0, 1e-2, a.shape)) + rng.normal(0, 1e-3, a.shape)
    d = C.compare_arrays(a, b, tol=C.Tolerance(rtol, atol))
    ref = where_not_allclose(a, b, rtol=rtol, atol=atol)[0]
    assert d.n_over == len(ref)
    assert d.max_abs == pytest.approx(float(np.abs(a - b).max()))
    assert sum(d.hist_counts) == int(np.count_nonzero(a != b))


def test_per_array_tolerance_overrides_the_default():
    a = DataModel("cal", {"data": np.ones(4, np.float32), "err": np.ones(4, np.float32)})
    b = a.replace(arrays={"data": np.full(4, 1.001, np.float32), "err": np.full(4, 1.001, np.float32)})
    cfg = C.CompareConfig(per_array={"err": C.Tolerance(rtol=1e-2, atol=0)})
    d = C.compare_models(a, b, cfg)
    assert d.arrays["err"].n_over == 0 and d.arrays["data"].n_over == 4
    assert [r.split(":")[0] for r in d.reasons] == ["data"]
    assert not C.compare_models(a, b, C.CompareConfig(max_fraction_over=1.0)).over


def test_bad_settings_are_refused_with_a_message():
    with pytest.raises(C.CompareError, match="rtol must be a finite number >= 0"):
        C.Tolerance(rtol=-1)
    with pytest.raises(C.CompareError, match="max_fraction_over"):
        C.CompareConfig(max_fraction_over=2)
    with pytest.raises(C.CompareError, match="two DataModels"):
        C.compare_models(np.zeros(2), np.zeros(2))


def test_integers_are_compared_exactly():
    d = C.compare_arrays(np.array([100000, 5], np.int32), np.array([100001, 5], np.int32))
    assert d.mode == "exact" and d.n_over == 1 and d.rtol == 0


# --- NaN and Inf -----------------------------------------------------------------------------

def test_nan_and_inf_policy_counts_every_case():
    nan, inf = np.nan, np.inf
    a = np.array([nan, nan, 1.0, inf, inf, -inf, 1.0, 2.0], np.float32)
    b = np.array([nan, 1.0, nan, inf, -inf, 1.0, inf, 2.0], np.float32)
    d = C.compare_arrays(a, b)
    assert (d.nan_both, d.nan_only_a, d.nan_only_b) == (1, 1, 1)
    assert (d.inf_both, d.inf_mismatch) == (1, 3)
    assert d.n_over == 1 + 1 + 3  # NaN in one, NaN in the other, three Inf mismatches
    assert d.n_equal == 3  # both NaN, +Inf/+Inf, 2.0/2.0
    strict = C.compare_arrays(a, b, nan_equal=False)
    assert strict.n_over == d.n_over + 1 and strict.n_equal == d.n_equal - 1
    assert d.max_abs == 0.0  # no finite pair differs


def test_nan_in_both_does_not_fail_a_product_by_default():
    x = np.array([[np.nan, 1.0]], np.float32)
    a, b = DataModel("rate", {"data": x}), DataModel("rate", {"data": x.copy()})
    assert not C.compare_models(a, b).over
    assert C.compare_models(a, b, C.CompareConfig(nan_equal=False)).over


# --- DQ --------------------------------------------------------------------------------------

def test_dq_changes_are_counted_per_flag_name():
    a = np.zeros((3, 4), np.uint32)
    b = a.copy()
    b[0, 0] = dqflags.bits("JUMP_DET", "DO_NOT_USE")
    b[0, 1] = dqflags.JUMP_DET
    a[2, 3] = dqflags.SATURATED | dqflags.REFERENCE_PIXEL
    b[2, 3] = dqflags.REFERENCE_PIXEL
    d = C.compare_dq(a, b)
    assert d.n_over == 3 and d.n == 12
    assert d.dq_gained == {"DO_NOT_USE": 1, "JUMP_DET": 2}
    assert d.dq_lost == {"SATURATED": 1}


def test_a_dq_only_change_fails_the_product_and_names_the_flag():
    data = np.ones((2, 2), np.float32)
    dq = np.zeros((2, 2), np.uint32)
    a = DataModel("rate", {"data": data, "dq": dq})
    b = a.replace(arrays={"dq": dq | np.uint32(dqflags.HOT)})
    d = C.compare_models(a, b)
    assert d.arrays["data"].n_over == 0
    assert d.over and len(d.reasons) == 1 and "+HOT 4" in d.reasons[0]


def test_groupdq_uses_group_flag_names():
    a = np.zeros((1, 2, 2, 2), np.uint8)
    b = a.copy()
    b[0, 1, 0, 0] = dqflags.SATURATED
    assert C.compare_dq(a, b, "groupdq").dq_gained == {"SATURATED": 1}


# --- structure and metadata ------------------------------------------------------------------

def test_missing_arrays_shapes_and_metadata_are_reported():
    a = DataModel("cal", {"data": np.zeros((2, 2), np.float32), "err": np.zeros(2)},
                  {"cal_step.flat_field": "COMPLETE", "ref_file.flat": "crds://a.fits"})
    b = DataModel("cal", {"data": np.zeros((2, 3), np.float32), "wht": np.zeros(2)},
                  {"cal_step.flat_field": "SKIPPED", "ref_file.flat": "crds://b.fits"})
    d = C.compare_models(a, b)
    assert {k: v.mode for k, v in d.arrays.items()} == {
        "data": "structural", "err": "structural", "wht": "structural"}
    assert d.meta_changed == {"cal_step.flat_field": ("COMPLETE", "SKIPPED")}  # ref_file ignored
    assert d.meta_ignored == ("ref_file.flat",)
    assert any("metadata differs: cal_step.flat_field" in r for r in d.reasons)


# --- catalogs --------------------------------------------------------------------------------

def _catalog(ra, dec, flux) -> DataModel:
    n = len(ra)
    return DataModel("catalog", {"label": np.arange(1, n + 1), "sky_centroid_ra": np.asarray(ra, float),
                                 "sky_centroid_dec": np.asarray(dec, float),
                                 "aper_total_flux": np.asarray(flux, float)})


def test_catalogs_match_sources_on_the_sky_regardless_of_order():
    rng = np.random.default_rng(3)
    ra = 150 + rng.uniform(0, 0.01, 30)
    dec = 2 + rng.uniform(0, 0.01, 30)
    flux = rng.uniform(1e-6, 1e-4, 30)
    a = _catalog(ra, dec, flux)
    perm = rng.permutation(30)
    shifted = dec[perm] + 0.02 / 3600  # 0.02" moves: still the same sources
    b = _catalog(ra[perm], shifted, flux[perm])
    d = C.compare_models(a, b)
    assert d.catalog.n_matched == 30 and not d.over
    assert d.catalog.max_sep_arcsec == pytest.approx(0.02, rel=1e-3)


def test_catalog_flux_changes_and_lost_sources_are_over():
    ra, dec = np.array([10.0, 10.001, 10.002]), np.array([0.0, 0.0, 0.0])
    a = _catalog(ra, dec, [1e-5, 2e-5, 3e-5])
    b = _catalog(ra[:2] + [0, 0.5 / 3600], dec[:2], [1e-5, 2.2e-5])
    d = C.compare_models(a, b)
    cd = d.catalog
    assert (cd.n_matched, cd.n_only_a, cd.n_only_b) == (1, 2, 1)  # the 0.5" move is unmatched
    assert d.over and any("only in a" in r for r in d.reasons)
    c = C.compare_models(a, _catalog(ra, dec, [1e-5, 2.2e-5, 3e-5]), C.CompareConfig(
        per_array={"aper_total_flux": C.Tolerance(rtol=1e-3, atol=0)})).catalog
    assert c.columns["aper_total_flux"].n_over == 1 and c.n_matched == 3


# --- pictures --------------------------------------------------------------------------------

def test_difference_image_keeps_a_single_changed_pixel_visible():
    a = np.zeros((1000, 600), np.float32)
    b = a.copy()
    b[517, 301] = -3.0
    b[5, 5] = np.nan
    img = C.difference_image(a, b, max_size=100)
    assert img.shape == (100, 60) and img.dtype == np.float32
    assert np.nanmin(img) == -3.0 and np.isnan(img).sum() == 0  # one NaN in a block of zeros
    assert img[517 // 10, 301 // 10] == -3.0


def test_difference_image_of_a_cube_shows_its_worst_plane():
    a = np.zeros((3, 8, 8))
    b = a.copy()
    b[1, 2, 2] = 1.0
    b[2, 4, 4] = 5.0
    assert C.worst_plane(a, b) == (2,)
    assert C.difference_image(a, b)[4, 4] == 5.0
    with pytest.raises(C.CompareError, match="one shape"):
        C.difference_image(a, b[:, :4])


# --- purity ----------------------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_deterministic_and_inputs_untouched(ny, nx, seed):
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(ny, nx)).astype(np.float32)
    data[rng.random((ny, nx)) < 0.2] = np.nan
    dq = rng.integers(0, 2**31, (ny, nx)).astype(np.uint32)
    a = DataModel("rate", {"data": data, "dq": dq}, {"x": 1.0})
    b = a.replace(arrays={"data": data + np.float32(rng.normal(0, 1e-3)),
                          "dq": dq ^ rng.integers(0, 8, (ny, nx)).astype(np.uint32)})
    before = {k: v.copy() for k, v in b.arrays.items()}
    d1, d2 = C.compare_models(a, b), C.compare_models(a, b)
    assert d1.to_dict() == d2.to_dict()
    assert all(np.array_equal(before[k], b[k], equal_nan=True) for k in before)
    same = C.compare_models(a, a)
    assert not same.over and all(x.n_over == 0 for x in same.arrays.values())
