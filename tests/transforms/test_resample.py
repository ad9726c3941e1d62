"""transforms.resample: drizzle against the drizzle package, flux conservation, CON, blot."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms import resample as R
from transforms import wcs as W


def _input_wcs(shape=(80, 90), ra=53.1, dec=-27.8, roll=20.0, scale=0.062, degree=2):
    ny, nx = shape
    ref = W.distortion_ref(v2_ref=86.0, v3_ref=-493.0, v3yangle=-0.3, vparity=-1,
                           scale_x=scale, scale_y=scale * 1.01, crpix1=(nx - 1) / 2,
                           crpix2=(ny - 1) / 2, naxis1=nx, naxis2=ny, degree=degree,
                           coeffs_x={"c2_0": 2e-5, "c1_1": 1e-5} if degree > 1 else None,
                           coeffs_y={"c0_2": -2e-5} if degree > 1 else None)
    meta = {"wcsinfo.v2_ref": 86.0, "wcsinfo.v3_ref": -493.0, "wcsinfo.ra_ref": ra,
            "wcsinfo.dec_ref": dec, "wcsinfo.roll_ref": roll}
    return W.build_wcs(meta, ref, shape=shape)


def _stars(shape, seed, n=12, sigma=1.6):
    rng = np.random.default_rng(seed)
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx]
    img = np.zeros(shape, np.float64)
    for _ in range(n):
        x0, y0 = rng.uniform(12, nx - 12), rng.uniform(12, ny - 12)
        img += rng.uniform(5, 50) * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma ** 2))
    return img.astype(np.float32)


def _drizzle_pkg(data, weight, w_in, w_out, out_shape, pixfrac, kernel):
    drz = pytest.importorskip("drizzle.resample")
    utils = pytest.importorskip("drizzle.utils")
    pixmap = utils.calc_pixmap(w_in, w_out, shape=data.shape)
    d = drz.Drizzle(out_shape=out_shape, kernel=kernel, fillval="NaN")
    d.add_image(data, exptime=1.0, pixmap=pixmap, weight_map=weight, pixfrac=pixfrac)
    return d.out_img, d.out_wht


@pytest.mark.parametrize("degree", [1, 2])
@pytest.mark.parametrize("kernel,pixfrac", [("square", 1.0), ("square", 0.6), ("point", 1.0)])
def test_agrees_with_drizzle_package(kernel, pixfrac, degree):
    shape = (80, 90)
    w_in = _input_wcs(shape, degree=degree)
    rng = np.random.default_rng(3)
    data = (_stars(shape, 3) + rng.normal(1.0, 0.1, shape)).astype(np.float32)
    weight = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    weight[10:14, 20:30] = 0
    grid = R.mosaic_grid([w_in], [shape], pixel_scale=0.05, rotation=37.0)
    w_out, oshape = W.wcs_of(grid), tuple(grid["wcs.tangent_plane"]["shape"])
    sci, wht, con = R.drizzle([(data, weight, w_in)], w_out, oshape, pixfrac=pixfrac,
                              kernel=kernel)
    ref_sci, ref_wht = _drizzle_pkg(data, weight, w_in, w_out, oshape, pixfrac, kernel)
    assert np.array_equal(np.isnan(sci), np.isnan(ref_sci))
    ok = np.isfinite(sci)
    # Tolerances. Linear WCS: float32 rounding (1e-6). Distorted WCS: the drizzle package
    # interpolates its pixel map bilinearly at the drop corners where we map corners exactly,
    # so SCI agrees to 1e-4 of the peak and WHT to 1e-3 of the largest weight (edge slivers).
    sci_tol, wht_tol = (1e-6, 1e-6) if degree == 1 else (1e-4, 1e-3)
    assert np.max(np.abs(sci[ok] - ref_sci[ok])) < sci_tol * np.max(data)
    assert np.max(np.abs(wht - ref_wht)) < wht_tol * weight.max()
    assert np.array_equal(con[0] != 0, wht > 0)


def test_total_flux_conserved_on_rotated_rescaled_grid():
    shape = (120, 110)
    w_in = _input_wcs(shape, roll=10.0)
    data = _stars(shape, 11, n=20)
    in_scale = R.pixel_scale_arcsec(w_in, shape)
    grid = R.mosaic_grid([w_in], [shape], pixel_scale=0.043, rotation=61.0)
    w_out, oshape = W.wcs_of(grid), tuple(grid["wcs.tangent_plane"]["shape"])
    for kernel, pixfrac in (("square", 1.0), ("square", 0.8)):
        sci, wht, _ = R.drizzle([(data, np.ones(shape, np.float32), w_in)], w_out, oshape,
                                pixfrac=pixfrac, kernel=kernel)
        # surface brightness in, surface brightness out: flux = sum * pixel area
        flux_in = data.sum(dtype=np.float64) * in_scale ** 2
        flux_out = np.nansum(sci, dtype=np.float64) * 0.043 ** 2
        assert flux_out == pytest.approx(flux_in, rel=5e-3), (kernel, pixfrac)


def test_context_bits_and_weight_combination():
    shape = (20, 24)
    w_in = _input_wcs(shape, degree=1)
    grid = R.mosaic_grid([w_in], [shape], pixel_scale_ratio=1.0)
    w_out, oshape = W.wcs_of(grid), tuple(grid["wcs.tangent_plane"]["shape"])
    n = 34  # three bits into the second CON plane
    imgs = [(np.full(shape, float(k), np.float32), np.full(shape, 1.0, np.float32), w_in)
            for k in range(n)]
    imgs[33] = (imgs[33][0], np.zeros(shape, np.float32), w_in)  # contributes nothing
    sci, wht, con = R.drizzle(imgs, w_out, oshape)
    assert con.shape == (2, *oshape) and con.dtype == np.int32
    covered = wht > 0
    assert np.all(con[0][covered] == -1)  # all 32 bits set (int32 view)
    assert np.all(con[1][covered] == 1)  # image 32 only; image 33 had zero weight
    # equal weights: the mean of 0..32
    np.testing.assert_allclose(sci[covered], np.mean(np.arange(33)), rtol=1e-5)


def test_variance_preserved_on_same_grid():
    shape = (30, 40)
    w_in = _input_wcs(shape, degree=1)
    grid = R.mosaic_grid([w_in], [shape], pixel_scale_ratio=1.0)
    w_out, oshape = W.wcs_of(grid), tuple(grid["wcs.tangent_plane"]["shape"])
    var = {"var_rnoise": np.full(shape, 4.0, np.float32),
           "var_poisson": np.full(shape, 1.0, np.float32)}
    r = R.drizzle_images([(np.ones(shape, np.float32), np.full(shape, 0.25, np.float32), w_in,
                           var)] * 2, w_out, oshape)
    inner = r.wht > 0.9 * np.nanmax(r.wht)
    # two identical exposures, ivm weights: each variance halves
    np.testing.assert_allclose(r.variances["var_rnoise"][inner], 2.0, rtol=1e-5)
    np.testing.assert_allclose(r.variances["var_poisson"][inner], 0.5, rtol=1e-5)
    assert np.all(np.isnan(r.variances["var_rnoise"][r.wht == 0]))


def test_blot_returns_smooth_image():
    shape = (60, 70)
    w_in = _input_wcs(shape)
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    data = (10 + 0.05 * x + 0.03 * y).astype(np.float32)  # linear: bilinear-exact
    grid = R.mosaic_grid([w_in], [shape], pixel_scale_ratio=0.7)
    w_out, oshape = W.wcs_of(grid), tuple(grid["wcs.tangent_plane"]["shape"])
    sci, wht, _ = R.drizzle([(data, np.ones(shape, np.float32), w_in)], w_out, oshape,
                            kernel="square")
    back = R.blot(sci, w_out, w_in, shape)
    inner = (slice(5, -5), slice(5, -5))
    np.testing.assert_allclose(back[inner], data[inner], atol=0.02)
    far = R.blot(sci, w_out, _input_wcs(shape, ra=60.0), shape)
    assert np.all(np.isnan(far))  # no overlap: all fill


def test_mosaic_grid_covers_every_input_pixel():
    shape = (40, 50)
    ws = [_input_wcs(shape, ra=53.1 + k * 0.0004, roll=20 + 5 * k) for k in range(3)]
    grid = R.mosaic_grid(ws, [shape] * 3, pixel_scale=0.05)
    w_out, (ny, nx) = W.wcs_of(grid), grid["wcs.tangent_plane"]["shape"]
    for w in ws:
        ra, dec = R.footprint(w, shape)
        xo, yo = w_out.backward_transform(ra, dec)
        assert xo.min() >= -0.5 - 1e-6 and xo.max() <= nx - 0.5 + 1e-6
        assert yo.min() >= -0.5 - 1e-6 and yo.max() <= ny - 0.5 + 1e-6


@settings(max_examples=20, deadline=None)
@given(ny=st.integers(0, 6), nx=st.integers(0, 6), kernel=st.sampled_from(R.KERNELS),
       pixfrac=st.floats(0.05, 1.0), flagged=st.booleans(), oshape=st.tuples(
           st.integers(1, 8), st.integers(1, 8)), seed=st.integers(0, 2 ** 16))
def test_tiny_empty_and_flagged_inputs(ny, nx, kernel, pixfrac, flagged, oshape, seed):
    shape = (ny, nx)
    w_in = _input_wcs((max(ny, 1), max(nx, 1)), degree=1)
    rng = np.random.default_rng(seed)
    data = rng.normal(0, 1, shape).astype(np.float32)
    weight = np.zeros(shape, np.float32) if flagged else np.ones(shape, np.float32)
    before = (data.copy(), weight.copy())
    w_out = W.tangent_plane_wcs(53.1, -27.8, 0.06, oshape)
    args = ([(data, weight, w_in)], w_out, oshape)
    sci, wht, con = R.drizzle(*args, pixfrac=pixfrac, kernel=kernel)
    sci2, wht2, con2 = R.drizzle(*args, pixfrac=pixfrac, kernel=kernel)
    assert sci.shape == wht.shape == oshape and con.shape == (1, *oshape)
    assert np.array_equal(sci, sci2, equal_nan=True) and np.array_equal(wht, wht2)
    assert np.array_equal(np.isnan(sci), wht == 0)
    if flagged or data.size == 0:
        assert np.all(wht == 0) and np.all(con == 0)
    assert np.array_equal(data, before[0]) and np.array_equal(weight, before[1])


def test_bad_parameters_raise():
    w = W.tangent_plane_wcs(0.0, 0.0, 0.1, (4, 4))
    img = [(np.ones((4, 4), np.float32), np.ones((4, 4), np.float32), w)]
    with pytest.raises(R.ResampleError, match="kernel"):
        R.drizzle(img, w, (4, 4), kernel="lanczos3")
    with pytest.raises(R.ResampleError, match="pixfrac"):
        R.drizzle(img, w, (4, 4), pixfrac=0.0)
    with pytest.raises(R.ResampleError, match="same shape"):
        R.drizzle([(np.ones((4, 4)), np.ones((3, 4)), w)], w, (4, 4))


@settings(max_examples=30, deadline=None)
@given(cx=st.floats(-3, 3), cy=st.floats(-3, 3), a=st.floats(0.1, 3), b=st.floats(0.1, 3),
       theta=st.floats(0, 6.3), shear=st.floats(-0.8, 0.8), flip=st.booleans())
def test_overlap_partitions_quad_area(cx, cy, a, b, theta, shear, flip):
    """The kernel's pixel overlaps of any parallelogram sum to its area, and each is in [0, 1]."""
    u = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    m = np.array([[a, shear * b], [0.0, b]])
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    q = u @ (rot @ m).T + [cx, cy]
    if flip:
        q = q[::-1]
    px, py = q[:, 0].copy(), q[:, 1].copy()
    area = abs(np.linalg.det(rot @ m))
    total = 0.0
    for jj in range(-8, 9):
        for ii in range(-8, 9):
            o = R._overlap(px, py, ii - 0.5, ii + 0.5, jj - 0.5, jj + 0.5)
            assert -1e-12 <= o <= 1.0 + 1e-12
            total += o
    assert total == pytest.approx(area, rel=1e-9, abs=1e-12)
