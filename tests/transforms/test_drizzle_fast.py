"""transforms.drizzle_fast (resample 1.1): the interpolated pixel map and its measured error,
the column-wise kernel against 1.0's overlaps, and the output against 1.0 and the C drizzle
package on small images."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_resample import _drizzle_pkg, _input_wcs, _stars

from transforms import drizzle_fast as F
from transforms import resample as R
from transforms import wcs as W


def _case(shape=(80, 90), degree=2, scale=0.05, rotation=37.0, seed=3):
    w_in = _input_wcs(shape, degree=degree)
    rng = np.random.default_rng(seed)
    data = (_stars(shape, seed) + rng.normal(1.0, 0.1, shape)).astype(np.float32)
    weight = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    weight[10:14, 20:30] = 0
    grid = R.mosaic_grid([w_in], [shape], pixel_scale=scale, rotation=rotation)
    return w_in, data, weight, W.wcs_of(grid), tuple(grid["wcs.tangent_plane"]["shape"])


# --- against the C drizzle package (jwst's) ---------------------------------------------------

@pytest.mark.parametrize("degree", [1, 2])
@pytest.mark.parametrize("kernel,pixfrac", [("square", 1.0), ("square", 0.6), ("point", 1.0)])
def test_v11_agrees_with_the_c_drizzle_package(kernel, pixfrac, degree):
    """Pixel by pixel and in total flux, on the same inputs and output grid. Tolerances as 1.0's
    (test_resample.py): the C package interpolates its map of pixel centres bilinearly at the
    drop corners, where 1.1 interpolates a cubic through exact corner nodes."""
    w_in, data, weight, w_out, oshape = _case(degree=degree)
    sci, wht, con = F.drizzle([(data, weight, w_in)], w_out, oshape, pixfrac=pixfrac,
                              kernel=kernel)
    ref_sci, ref_wht = _drizzle_pkg(data, weight, w_in, w_out, oshape, pixfrac, kernel)
    assert np.array_equal(np.isnan(sci), np.isnan(ref_sci))
    ok = np.isfinite(sci)
    sci_tol, wht_tol = (1e-6, 1e-6) if degree == 1 else (1e-4, 1e-3)
    assert np.max(np.abs(sci[ok] - ref_sci[ok])) < sci_tol * np.max(data)
    assert np.max(np.abs(wht - ref_wht)) < wht_tol * weight.max()
    # total flux (sum of weighted surface brightness): the same to 1e-5
    flux = np.sum(sci[ok] * wht[ok], dtype=np.float64)
    ref_flux = np.sum(ref_sci[ok] * ref_wht[ok], dtype=np.float64)
    assert flux == pytest.approx(ref_flux, rel=1e-5)
    assert np.array_equal(con[0] != 0, wht > 0)


# --- against 1.0 (transforms.resample) --------------------------------------------------------

@pytest.mark.parametrize("kernel,pixfrac", [("square", 1.0), ("square", 0.7), ("point", 1.0)])
def test_exact_map_reproduces_v10_and_interpolated_map_stays_close(kernel, pixfrac):
    w_in, data, weight, w_out, oshape = _case(shape=(70, 64), degree=2, scale=0.043,
                                              rotation=61.0)
    a = R.drizzle([(data, weight, w_in)], w_out, oshape, pixfrac=pixfrac, kernel=kernel)
    exact = F.drizzle([(data, weight, w_in)], w_out, oshape, pixfrac=pixfrac, kernel=kernel,
                      tol=0.0)
    fast = F.drizzle([(data, weight, w_in)], w_out, oshape, pixfrac=pixfrac, kernel=kernel)
    peak = float(np.nanmax(a[0]))
    for b, tol in ((exact, 1e-6), (fast, 2e-6)):
        assert np.array_equal(np.isnan(a[0]), np.isnan(b[0]))
        np.testing.assert_array_equal(a[2], b[2])
        ok = np.isfinite(a[0])
        assert np.max(np.abs(a[0][ok] - b[0][ok])) <= tol * peak
        assert np.max(np.abs(a[1] - b[1])) <= tol * float(weight.max())


def test_variances_and_several_images_match_v10():
    """Per-image footprint buffers (1.1) give what full-grid buffers (1.0) give: two offset,
    rotated exposures with variances, ivm and exposure-time weights."""
    shape = (40, 50)
    ws = [_input_wcs(shape, ra=53.1 + k * 0.0006, roll=20 + 7 * k) for k in range(2)]
    grid = R.mosaic_grid(ws, [shape] * 2, pixel_scale=0.05)
    w_out, oshape = W.wcs_of(grid), tuple(grid["wcs.tangent_plane"]["shape"])
    rng = np.random.default_rng(5)
    imgs = []
    for k, w in enumerate(ws):
        var = {"var_rnoise": rng.uniform(1, 2, shape).astype(np.float32),
               "var_poisson": rng.uniform(0, 1, shape).astype(np.float32)}
        imgs.append((_stars(shape, k), rng.uniform(0.5, 1, shape).astype(np.float32), w, var))
    for vw in (None, [100.0, 200.0]):
        a = R.drizzle_images(imgs, w_out, oshape, var_weights=vw, pixel_scale_ratio=0.8)
        b, stats = F.drizzle_images(imgs, w_out, oshape, var_weights=vw, pixel_scale_ratio=0.8)
        assert len(stats.steps) == 2 and min(stats.steps) > 1
        np.testing.assert_array_equal(a.con, b.con)
        for x, y in [(a.sci, b.sci), (a.wht, b.wht)] + [
                (a.variances[v], b.variances[v]) for v in a.variances]:
            assert np.array_equal(np.isnan(x), np.isnan(y))
            ok = np.isfinite(x)
            np.testing.assert_allclose(y[ok], x[ok], rtol=1e-5, atol=1e-6 * np.max(np.abs(x[ok])))


def test_an_image_off_the_grid_contributes_nothing():
    w_in, data, weight, w_out, oshape = _case(shape=(30, 34))
    far = _input_wcs((30, 34), ra=60.0, dec=-20.0)
    var = {"var_rnoise": np.ones((30, 34), np.float32)}
    r, _ = F.drizzle_images([(data, weight, w_in, var), (data, weight, far, var)], w_out,
                            oshape)
    alone, _ = F.drizzle_images([(data, weight, w_in, var)], w_out, oshape)
    np.testing.assert_array_equal(r.sci, alone.sci)
    assert not np.any(r.con[0] & 2)


# --- the kernel: overlaps, tiny inputs, purity ------------------------------------------------

def _one_drop(qx, qy, pixfrac=1.0, size=17, off=8):
    """Drizzle one input pixel whose corners map to the quad (qx, qy) (order (-,-), (+,-),
    (+,+), (-,+)) with weight 1: returns den (the drop's overlaps / its area)."""
    rows = np.empty((2, 2, 2))
    rows[0] = [[qx[0], qx[1]], [qx[3], qx[2]]]
    rows[1] = [[qy[0], qy[1]], [qy[3], qy[2]]]
    num = np.zeros((1, size, size))
    den = np.zeros((size, size))
    con = np.zeros((size, size), np.int32)
    F._drizzle_map(np.ones((1, 1, 1), np.float32), np.ones((1, 1), np.float32), 0, 1, rows,
                   np.arange(2, dtype=np.int64), np.ones((2, 1)), pixfrac, False, -off, -off,
                   num, den, con, np.int32(1))
    return den


@settings(max_examples=40, deadline=None)
@given(cx=st.floats(-3, 3), cy=st.floats(-3, 3), a=st.floats(0.1, 3), b=st.floats(0.1, 3),
       theta=st.floats(0, 6.3), shear=st.floats(-0.8, 0.8), flip=st.booleans(),
       dent=st.floats(0.0, 0.45))
def test_column_kernel_overlaps_equal_v10_overlaps(cx, cy, a, b, theta, shear, flip, dent):
    """Each output pixel's share of a drop is 1.0's Green's-theorem overlap / the drop area, for
    parallelograms and non-convex quads (one vertex pushed in), either orientation."""
    u = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    u[2] *= 1.0 - 2 * dent  # dent > 0.25: the (+,+) vertex is pushed past the diagonal
    m = np.array([[a, shear * b], [0.0, b]])
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    q = u @ (rot @ m).T + [cx, cy]
    if flip:  # mirror: the corners run the other way round
        q[:, 0] = -q[:, 0]
    den = _one_drop(q[:, 0], q[:, 1])
    px, py = q[:, 0].copy(), q[:, 1].copy()
    area = 0.5 * abs(np.dot(px, np.roll(py, -1)) - np.dot(py, np.roll(px, -1)))
    for jj in range(-8, 9):
        for ii in range(-8, 9):
            o = R._overlap(px, py, ii - 0.5, ii + 0.5, jj - 0.5, jj + 0.5)
            assert den[jj + 8, ii + 8] * area == pytest.approx(o, abs=1e-12)
    assert den.sum() == pytest.approx(1.0, rel=1e-12)


@settings(max_examples=20, deadline=None)
@example(ny=7, nx=9, kernel="point", pixfrac=1.0, flagged=False, oshape=(1, 2), seed=0)
@given(ny=st.integers(0, 9), nx=st.integers(0, 9), kernel=st.sampled_from(R.KERNELS),
       pixfrac=st.floats(0.05, 1.0), flagged=st.booleans(), oshape=st.tuples(
           st.integers(1, 8), st.integers(1, 8)), seed=st.integers(0, 2 ** 16))
def test_tiny_empty_and_flagged_inputs_and_purity(ny, nx, kernel, pixfrac, flagged, oshape,
                                                  seed):
    shape = (ny, nx)
    w_in = _input_wcs((max(ny, 1), max(nx, 1)), degree=2)
    rng = np.random.default_rng(seed)
    data = rng.normal(0, 1, shape).astype(np.float32)
    weight = np.zeros(shape, np.float32) if flagged else np.ones(shape, np.float32)
    data.flags.writeable = False  # DataModel arrays are read-only views
    weight.flags.writeable = False
    w_out = W.tangent_plane_wcs(53.1, -27.8, 0.06, oshape)
    args = ([(data, weight, w_in)], w_out, oshape)
    sci, wht, con = F.drizzle(*args, pixfrac=pixfrac, kernel=kernel)
    sci2, wht2, con2 = F.drizzle(*args, pixfrac=pixfrac, kernel=kernel)
    ref = R.drizzle(*args, pixfrac=pixfrac, kernel=kernel)
    assert sci.shape == wht.shape == oshape and con.shape == (1, *oshape)
    assert np.array_equal(sci, sci2, equal_nan=True) and np.array_equal(wht, wht2)
    assert np.array_equal(np.isnan(sci), wht == 0)
    assert np.array_equal(con[0] != 0, wht > 0)
    if kernel == "point" and data.size and _centre_on_an_edge(w_in, w_out, shape):
        # a centre on an output pixel's edge may fall either side within the interpolated
        # map's error (hypothesis found one): the weight is conserved, not its pixel
        np.testing.assert_allclose(wht.sum(), ref[1].sum(), rtol=1e-5)
    else:
        np.testing.assert_allclose(wht, ref[1], rtol=1e-5, atol=1e-6)
    if flagged or data.size == 0:
        assert np.all(wht == 0) and np.all(con == 0)


def _centre_on_an_edge(w_in, w_out, shape, eps: float = 1e-6) -> bool:
    """Whether an input pixel centre maps within ``eps`` of an output pixel edge."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    ox, oy = w_out.invert(*w_in(xx.astype(float), yy.astype(float)))
    frac = np.abs(np.mod(np.stack([ox, oy]), 1.0) - 0.5)
    return bool(np.any(frac < eps))


def test_bad_parameters_raise():
    w = W.tangent_plane_wcs(0.0, 0.0, 0.1, (4, 4))
    img = [(np.ones((4, 4), np.float32), np.ones((4, 4), np.float32), w)]
    with pytest.raises(R.ResampleError, match="kernel"):
        F.drizzle(img, w, (4, 4), kernel="lanczos3")
    with pytest.raises(R.ResampleError, match="pixfrac"):
        F.drizzle(img, w, (4, 4), pixfrac=0.0)
    with pytest.raises(R.ResampleError, match="order"):
        F.drizzle(img, w, (4, 4), order=2)
    with pytest.raises(R.ResampleError, match="tolerance"):
        F.drizzle(img, w, (4, 4), tol=-1.0)


# --- the pixel map -----------------------------------------------------------------------------

@settings(max_examples=10, deadline=None)
@given(c20=st.floats(-4e-5, 4e-5), c11=st.floats(-4e-5, 4e-5), c02=st.floats(-4e-5, 4e-5),
       roll=st.floats(0, 360), rotation=st.floats(0, 360), ratio=st.floats(0.5, 1.5),
       order=st.sampled_from(F.ORDERS), tol=st.sampled_from([1e-2, 1e-3, 1e-4]),
       corners=st.booleans())
def test_map_error_is_measured_and_bounded(c20, c11, c02, roll, rotation, ratio, order, tol,
                                           corners):
    """The chosen step's error, checked against the exact map at every grid point, stays within
    twice the tolerance (the check points sample where an interpolant's error peaks; the step
    aims at half the tolerance). Cubic maps are interpolated for these distortions (up to 3%
    scale change across the frame, 3x NIRCam's); bilinear ones may need the exact map."""
    shape = (150, 130)
    ref = W.distortion_ref(v2_ref=86.0, v3_ref=-493.0, v3yangle=-0.3, vparity=-1,
                           scale_x=0.062, scale_y=0.063, crpix1=64.5, crpix2=74.5, naxis1=130,
                           naxis2=150, degree=2, coeffs_x={"c2_0": c20, "c1_1": c11},
                           coeffs_y={"c0_2": c02, "c1_1": -c11})
    meta = {"wcsinfo.v2_ref": 86.0, "wcsinfo.v3_ref": -493.0, "wcsinfo.ra_ref": 53.1,
            "wcsinfo.dec_ref": -27.8, "wcsinfo.roll_ref": roll}
    w_in = W.build_wcs(meta, ref, shape=shape)
    grid = R.mosaic_grid([w_in], [shape], pixel_scale_ratio=ratio, rotation=rotation)
    w_out = W.wcs_of(grid)
    pm = F.pixel_map(w_in, w_out, shape, corners=corners, order=order, tol=tol)
    ex = F.exact_map(w_in, w_out, shape, corners=corners)
    assert pm.shape == ex.shape == ((151, 131) if corners else (150, 130))
    assert pm.max_error <= tol
    assert pm.step > 1 or (order == 1 and pm.exact)
    err = np.hypot(*(F.map_rows(pm) - ex.rows))
    assert err.max() <= 2 * tol
    assert err.max() <= 4 * pm.max_error + 1e-9


def test_fixed_step_and_exact_fallbacks():
    w_in, data, weight, w_out, oshape = _case(shape=(60, 50))
    fixed = F.pixel_map(w_in, w_out, (60, 50), order=1, step=8.0)
    assert fixed.order == 1 and fixed.step <= 8.0 and fixed.wy.shape[1] == 2
    assert F.pixel_map(w_in, w_out, (60, 50), tol=0.0).exact
    assert F.pixel_map(w_in, w_out, (3, 50)).exact  # too few rows to interpolate

    class Edge:
        """A WCS whose sky -> pixel is undefined past x = 20 (the map leaves its domain)."""

        def forward_transform(self, x, y):
            return np.asarray(x, float), np.asarray(y, float)

        def backward_transform(self, ra, dec):
            ra = np.asarray(ra, float)
            return np.where(ra > 20, np.nan, ra), np.asarray(dec, float)

    pm = F.pixel_map(Edge(), Edge(), (30, 30))
    assert pm.exact and pm.step == 1.0
    assert np.isnan(F.map_rows(pm)[0][:, 25]).all()
