"""The NIRSpec slit/MSA model and the MIRI LRS model: one parameter set, two faces (numba
kernels for the simulator, gwcs for the pipeline), exact inverses, sub-0.01-pixel round trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.instruments import slit_wcs
from transforms.instruments.miri import lrs as L
from transforms.instruments.nirspec import slits as N
from transforms.sim import references as rf
from transforms.wcs import distortion_params, wcs_from_asdf_bytes, wcs_to_asdf_bytes

POINTING = {"wcsinfo.v2_ref": 378.0, "wcsinfo.v3_ref": -428.0, "wcsinfo.ra_ref": 53.1,
            "wcsinfo.dec_ref": -27.8, "wcsinfo.roll_ref": 40.0,
            "velocity_aberration.scale_factor": 1.00001}
G = N.msa_geometry()


def _fs_params(grating, filt, slit="S200A1", detector="NRS1"):
    d = N.disperser_params(grating)
    sl = N.fs_slit(G, slit, 1)
    box = N.slit_box(sl, d, grating, filt, detector, (1, 1, 2048, 2048))
    return N.slit_params(sl, d, G, grating, filt, detector, (box[0], box[1]), (box[3], box[2]),
                         POINTING)


def _mos_params(grating, filt, detector, q, row, col):
    d = N.disperser_params(grating)
    sl = N.mos_slitlet(G, 7, q, row, [col - 1, col, col + 1], col, 12)
    box = N.slit_box(sl, d, grating, filt, detector, (1, 1, 2048, 2048))
    assert box is not None
    return N.slit_params(sl, d, G, grating, filt, detector, (box[0], box[1]),
                         (box[3], box[2]), POINTING)


CONFIGS = sorted(N.WAVELENGTH_RANGES)


@pytest.mark.parametrize("grating,filt", CONFIGS)
def test_nirspec_wavelength_solution_round_trips(grating, filt):
    """slit frame -> detector -> slit frame, through the gwcs and the numpy model: < 0.01 px
    (measured ~1e-9 px: both directions are closed form)."""
    p = _fs_params(grating, filt)
    w = slit_wcs(p)
    ny, nx = p["shape"]
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    ys, lam = N.pixel_coords(p, xx, yy)
    ok = np.isfinite(lam)
    assert ok.sum() > 0.5 * ok.size
    xs, ys2, lam2 = w.get_transform("detector", "slit_frame")(xx, yy)  # meters, as jwst
    assert np.nanmax(np.abs(lam2[ok] * 1e6 - lam[ok])) < 1e-10  # gwcs == numpy model
    xb, yb = w.get_transform("slit_frame", "detector")(xs[ok], ys2[ok], lam2[ok])
    assert np.max(np.hypot(xb - xx[ok], yb - yy[ok])) < 0.01
    xn, yn = N.slit_to_detector(p, 0.0, ys[ok], lam[ok])
    assert np.max(np.hypot(xn - xx[ok], yn - yy[ok])) < 1e-6
    # world and back
    ra, dec, l3 = w(xx[ok][::97], yy[ok][::97])
    xi, yi = w.invert(ra, dec, l3)
    assert np.max(np.hypot(xi - xx[ok][::97], yi - yy[ok][::97])) < 0.01


def test_nirspec_kernel_and_gwcs_are_one_model():
    """The numba kernel the simulator uses and the gwcs's inverse put light at the same pixel."""
    p = _fs_params("G235M", "F170LP")
    cf = N.pack(p["disperser"])
    rng = np.random.default_rng(1)
    lam = rng.uniform(1.7, 3.1, 50)
    xsl = rng.uniform(-0.5, 0.5, 50)
    ysl = rng.uniform(-0.5, 0.5, 50)
    X = p["xc"] + p["w"] * xsl
    Y = p["yc"] + p["h"] * ysl
    xf = np.empty(50)
    yf = np.empty(50)
    for i in range(50):
        xf[i], yf[i] = N.fpa_xy(cf, X[i], Y[i], lam[i])
    xg, yg = slit_wcs(p).get_transform("slit_frame", "detector")(xsl, ysl, lam * 1e-6)
    assert np.allclose(xg + p["origin"][0], xf, atol=1e-6)
    assert np.allclose(yg + p["origin"][1], yf, atol=1e-6)


def test_nirspec_mos_slitlet_on_nrs2_round_trips_and_serialises():
    """A shutter far along X puts its spectrum on NRS2 (mirrored in y): still exact."""
    p = _mos_params("G395M", "F290LP", "NRS2", 3, 330, 100)
    w = slit_wcs(p)
    ny, nx = p["shape"]
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    ys, lam = N.pixel_coords(p, xx, yy)
    ok = np.isfinite(lam)
    assert ok.any()
    xb, yb = w.get_transform("slit_frame", "detector")(0.0, ys[ok], lam[ok] * 1e-6)
    assert np.max(np.hypot(xb - xx[ok], yb - yy[ok])) < 0.01
    w2 = wcs_from_asdf_bytes(wcs_to_asdf_bytes(w))  # a file can carry it
    a = w(xx[ok][:20], yy[ok][:20])
    b = w2(xx[ok][:20], yy[ok][:20])
    assert all(np.allclose(u, v, rtol=0, atol=1e-12) for u, v in zip(a, b))
    assert [str(f) for f in w.available_frames] == ["detector", "slit_frame", "msa_frame",
                                                    "v2v3", "world"]


@pytest.mark.parametrize("grating,filt,r_mid", [("G140M", "F100LP", (700, 1500)),
                                                ("PRISM", "CLEAR", (25, 320))])
def test_nirspec_resolving_power(grating, filt, r_mid):
    """R = lambda / (2 pixels of dispersion): 800..1400 for G140M (R ~ lambda), 30..300 for
    the prism."""
    d = N.disperser_params(grating)
    cf = N.pack(d)
    lo, hi = N.wavelength_range(grating, filt)
    lam = np.linspace(lo, hi, 50)
    u = np.array([N.u_of_lam(cf, v) for v in lam])
    r = lam / (2.0 * np.abs(np.gradient(lam, u)))
    assert r_mid[0] <= np.min(r) and np.max(r) <= r_mid[1] * 1.05
    if grating == "PRISM":
        assert np.argmin(r) not in (0, len(r) - 1)  # minimum near 1.2 um


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(CONFIGS), st.floats(-0.5, 0.5), st.floats(0.0, 1.0))
def test_nirspec_inverse_is_exact_property(cfg, ysl, f):
    grating, filt = cfg
    p = _fs_params(grating, filt, "S400A1")
    lo, hi = N.wavelength_range(grating, filt)
    lam = lo + f * (hi - lo)
    x, y = N.slit_to_detector(p, 0.0, ysl, lam)
    ys2, lam2 = N.pixel_coords(p, x, y, masked=False)
    assert abs(float(lam2) - lam) < 1e-9 and abs(float(ys2) - ysl) < 1e-9


def test_fixed_slits_fall_in_their_subarrays():
    """Every fixed slit's trace sits inside its NRS1 window and the NRS2 window (mirrored)."""
    from transforms.sim.nirspec import window

    subs = {"S200A1": "SUBS200A1", "S200A2": "SUBS200A2", "S400A1": "SUBS400A1",
            "S200B1": "SUBS200B1", "S1600A1": "SUB2048"}
    d = N.disperser_params("G140M")
    for slit, sub in subs.items():
        for det in ("NRS1", "NRS2"):
            sl = N.fs_slit(G, slit)
            w = window(sub, det)
            lam = np.linspace(0.97, 1.89, 9)
            _, yd = N.fpa_to_detector(*N._fpa_arrays(N.pack(d), np.full(9, sl.xc),
                                                     np.full(9, sl.yc), lam), det, d)
            assert np.all((yd >= w.ystart - 1) & (yd <= w.ystart - 1 + w.ysize - 1)), (slit, det)


def _lrs(shape=(1024, 1032), sub=(1, 1)):
    dist = distortion_params(rf.distortion_ref(rf.detector_spec("MIRIMAGE"),
                                               "2022-01-01T00:00:00", "MIR_IMAGE"))
    spec = {"x_ref": L.IMX, "y_ref": L.IMY, "x_ref_slitless": L.IMX_SLITLESS,
            "y_ref_slitless": L.IMY_SLITLESS, "wavetable": L.default_wavetable()}
    return L.lrs_params(spec, dist, "MIR_LRS-FIXEDSLIT", {"xstart": sub[0], "ystart": sub[1]},
                        shape, POINTING)


def test_lrs_wavelength_solution_round_trips():
    p = _lrs()
    w = slit_wcs(p)
    x0, y0, nx, ny = L.slit_box(p)
    yy, xx = np.mgrid[y0:y0 + ny, x0:x0 + nx].astype(float)
    ys, lam = L.pixel_coords(p, xx, yy)
    ok = np.isfinite(lam)
    assert ok.sum() > 1000
    xs, ys2, lam2 = w.get_transform("detector", "slit_frame")(xx, yy)
    assert np.nanmax(np.abs(lam2[ok] - lam[ok])) < 1e-10
    xb, yb = w.get_transform("slit_frame", "detector")(xs[ok], ys2[ok], lam2[ok])
    assert np.max(np.hypot(xb - xx[ok], yb - yy[ok])) < 0.01
    ra, dec, l3 = w(xx[ok][::53], yy[ok][::53])
    xi, yi = w.invert(ra, dec, l3)
    assert np.max(np.hypot(xi - xx[ok][::53], yi - yy[ok][::53])) < 0.01
    # the prism: short wavelengths at large y, 4..14 um over ~320 rows
    assert lam[ok][np.argmax(yy[ok])] < lam[ok][np.argmin(yy[ok])]
    w2 = wcs_from_asdf_bytes(wcs_to_asdf_bytes(w))
    assert np.allclose(w2(xx[ok][:5], yy[ok][:5])[2], lam[ok][:5])


def test_lrs_subarray_origin_and_slit_geometry():
    full = _lrs()
    sub = _lrs((416, 72), (1, 529))
    # the same full-frame pixel has the same wavelength in both windows
    assert np.isfinite(L.lam_of_row(full, 200.0))
    assert np.isclose(L.lam_of_row(full, 200.0), L.lam_of_row(sub, 200.0))
    yf, lf = L.pixel_coords(full, 330.0, 199.0)
    ysb, lsb = L.pixel_coords(sub, 330.0, 199.0 - 528.0)
    assert np.isclose(lf, lsb) and np.isclose(yf, ysb)
    v2, v3 = L.slit_vertices_v2v3(full)
    width = np.hypot(v2[1] - v2[0], v3[1] - v3[0])  # first edge: across the slit
    length = np.hypot(v2[2] - v2[1], v3[2] - v3[1])
    assert width == pytest.approx(L.SLIT_WIDTH, rel=0.02)
    assert length == pytest.approx(L.SLIT_LENGTH, rel=0.02)


def test_lrs_dithered_position_is_the_nod_on_the_sky():
    from transforms.wcs import _ideal_to_v2v3, pointing_model

    meta = {**POINTING, "wcsinfo.v3yangle": 5.0, "wcsinfo.vparity": -1,
            "dither.x_offset": 0.94, "dither.y_offset": 0.0}
    ra, dec = L.dithered_position(meta)
    v2, v3 = _ideal_to_v2v3(378.0, -428.0, 5.0, -1)(0.94, 0.0)
    ra0, dec0 = pointing_model(meta)(v2, v3)
    sep = np.hypot((ra - ra0) * np.cos(np.radians(dec)), dec - dec0) * 3600
    assert sep < 2e-3  # the velocity aberration scale moves it by ~1e-5 of the offset
    with pytest.raises(L.LrsModelError, match="wcsinfo"):
        L.dithered_position({"dither.x_offset": 1.0})
