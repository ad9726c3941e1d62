"""source_catalog: positions, aperture photometry in Jy/AB, references, empty mosaics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from image3_synth import SCALE, covered_by_all, make_program
from transforms.image3.source_catalog import (SourceCatalogError, SourceCatalogParams, abmag,
                                              gaussian_ee_radius, source_catalog)
from transforms.model import DataModel
from transforms.resample import resample_models
from transforms.wcs import tangent_plane_meta, wcs_of

PIX_SR = (SCALE / 206264.80624709636) ** 2


@pytest.fixture(scope="module")
def mosaic_and_truth():
    p = make_program(seed=4, n_exp=2, max_err=0.0, flux_range=(300.0, 3000.0))
    return resample_models(p.truths), p


def _match(cat, p):
    ra, dec = cat["sky_centroid_ra"], cat["sky_centroid_dec"]
    d = np.hypot((ra[:, None] - p.ra[None]) * np.cos(np.radians(dec[:, None])),
                 dec[:, None] - p.dec[None]) * 3600
    return d.argmin(axis=1), d.min(axis=1)


@pytest.mark.parametrize("ees,tol", [((30, 50, 70), 0.035), ((50, 70, 90), 0.02)])
def test_positions_and_total_fluxes_of_isolated_stars(mosaic_and_truth, ees, tol):
    """Total fluxes (EE3 aperture x correction) of bright isolated stars against truth.

    The PSF is undersampled (FWHM 2 px), so a small aperture's flux depends on where the star
    falls within a pixel: the JWST-default EE70 aperture scatters by ~3%, an EE90 one by ~1%.
    """
    i2d, p = mosaic_and_truth
    cat = source_catalog(i2d, {}, SourceCatalogParams(aperture_ee1=ees[0], aperture_ee2=ees[1],
                                                      aperture_ee3=ees[2]))
    j, d = _match(cat, p)
    # isolated stars clear of every exposure edge (drizzle at an edge mixes pixel phases)
    x, y = wcs_of(p.truths[0]).invert(cat["sky_centroid_ra"], cat["sky_centroid_dec"],
                                      with_bounding_box=False)
    inside = covered_by_all(p.truths, 0, np.asarray(y), np.asarray(x), margin=10)
    ny, nx = p.truths[0].shape
    inside &= (x > 10) & (y > 10) & (x < nx - 11) & (y < ny - 11)
    sel = inside & (cat["nn_dist"] > 20) & (d < 0.1)
    assert sel.sum() >= 8
    assert np.all(d[sel] * 1000 < 5.0)  # mas
    truth_jy = p.flux[j] * PIX_SR * 1e6
    ratio = cat["aper_total_flux"][sel] / truth_jy[sel]
    assert np.all(np.abs(ratio - 1) < tol), ratio
    assert abs(np.median(ratio) - 1) < 0.01
    assert np.allclose(cat["aper_total_abmag"][sel],
                       -2.5 * np.log10(cat["aper_total_flux"][sel] / 3631.0))
    assert not cat["is_extended"][sel].any()
    assert cat.kind == "catalog"
    n = cat["label"].size
    assert all(a.shape == (n,) for a in cat.arrays.values())


def test_apcorr_reference_sets_radii_and_corrections(mosaic_and_truth):
    i2d, _ = mosaic_and_truth
    ref = DataModel("ref.apcorr", {"eefraction": np.array([0.3, 0.5, 0.7]),
                                   "radius": np.array([1.0, 1.5, 2.0]),
                                   "apcorr": np.array([3.0, 2.0, 1.5])}, {})
    cat = source_catalog(i2d, {"apcorr": ref}, SourceCatalogParams())
    assert cat.meta["source_catalog.aperture_source"] == "apcorr reference"
    assert cat.meta["source_catalog.aperture_radii_pix"] == {"30": 1.0, "50": 1.5, "70": 2.0}
    assert np.allclose(cat["aper_total_flux"], cat["aper70_flux"] * 1.5)


def test_gaussian_ee_radius_and_abmag():
    r = gaussian_ee_radius(0.5, 2.0)
    sigma = 2.0 / 2.3548200450309493
    assert math.isclose(1 - math.exp(-r * r / (2 * sigma * sigma)), 0.5, rel_tol=1e-9)
    assert abmag(np.array([3631.0]))[0] == 0.0
    assert np.isnan(abmag(np.array([-1.0]))[0])


def test_bad_parameters_are_refused(mosaic_and_truth):
    i2d, _ = mosaic_and_truth
    with pytest.raises(SourceCatalogError, match="aperture_ee"):
        source_catalog(i2d, {}, SourceCatalogParams(aperture_ee1=60))
    with pytest.raises(SourceCatalogError, match="2-D"):
        source_catalog(DataModel("i2d", {"data": np.zeros(5)}), {}, SourceCatalogParams())


@settings(max_examples=12, deadline=None)
@given(ny=st.integers(1, 30), nx=st.integers(1, 30),
       kind=st.sampled_from(["zeros", "noise", "nan", "nowht"]))
def test_empty_and_tiny_mosaics_give_empty_catalogues(ny, nx, kind):
    rng = np.random.default_rng(ny * 31 + nx)
    data = {"zeros": np.zeros((ny, nx)), "noise": rng.normal(0, 1, (ny, nx)),
            "nan": np.full((ny, nx), np.nan), "nowht": rng.normal(0, 1, (ny, nx))}[kind]
    wht = np.zeros((ny, nx)) if kind == "nowht" else np.ones((ny, nx))
    meta = tangent_plane_meta(53.0, -27.0, SCALE, (ny, nx))
    i2d = DataModel("i2d", {"data": data.astype(np.float32), "wht": wht.astype(np.float32)}, meta)
    cat = source_catalog(i2d, {}, SourceCatalogParams())
    assert cat.kind == "catalog"
    assert cat.meta["source_catalog.nsources"] == cat["label"].size
    if kind != "noise":
        assert cat["label"].size == 0


def test_deterministic_and_storable(mosaic_and_truth):
    i2d, _ = mosaic_and_truth
    a = source_catalog(i2d, {}, SourceCatalogParams())
    b = source_catalog(i2d, {}, SourceCatalogParams())
    assert a.meta == b.meta and set(a.arrays) == set(b.arrays)
    for k in a.arrays:
        assert np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f")
    from store.identity import product_id

    assert product_id(a) == product_id(b)
