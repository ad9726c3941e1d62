"""The IFU rendering kernel: a scene's light integrated over each detector pixel's footprint.

A pixel of slice ``k`` sees the sky strip ``beta in [b_lo, b_hi]`` (the slice) times the
pixel's footprint in (alpha, lambda). The footprint is the pixel square mapped through the
instrument model, affine within the pixel (``jac`` = d(alpha, lambda)/d(x, y) at the centre);
it is sampled at ``nx x ny`` sub-pixel points (midpoint rule; points beyond the slice's
alpha limits ``[a_lo, a_hi]`` receive nothing, so partly covered edge pixels get partial
light). At each point the integral across the slice is exact (``ifu_scene``: every component is
Gaussian across the slice, conditioned on alpha and lambda). The result is
``integral S dalpha dbeta dlambda`` in MJy/sr arcsec^2 micron.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from transforms.sim.ifu_scene import JY_TO_MJYSR_ARCSEC2

_SQ2 = math.sqrt(2.0)
_SQ2PI = math.sqrt(2.0 * math.pi)


@njit(nogil=True, cache=True)
def _phi(x):
    return 0.5 * math.erfc(-x / _SQ2)


@njit(nogil=True, cache=True)
def _across(b_lo, b_hi, mu, sig):
    return _phi((b_hi - mu) / sig) - _phi((b_lo - mu) / sig)


@njit(nogil=True, cache=True)
def _value(a, lam, b_lo, b_hi, pts, plines, exts, elines, bkg, psf_a, psf_b):
    """integral over beta in [b_lo, b_hi] of S(a, beta, lam) (MJy/sr arcsec).

    ``elines`` rows are precomputed (``_line_table``): source, centre, total strength
    (MJy/sr um arcsec^2), A, c_a, c_b, L, det, sqrt(L)."""
    out = bkg[0] * (lam / 10.0) ** bkg[1] * (b_hi - b_lo)
    sp = (psf_a + psf_b * lam) / 2.3548200450309493
    bm = 0.5 * (b_lo + b_hi)
    hw = 0.5 * (b_hi - b_lo)
    for i in range(pts.shape[0]):
        a0, b0 = pts[i, 0], pts[i, 1]
        da = a - a0
        if abs(da) > 7.0 * sp or abs(bm - b0) > hw + 7.0 * sp:
            continue
        spat = math.exp(-0.5 * da * da / (sp * sp)) / (_SQ2PI * sp) * _across(b_lo, b_hi, b0, sp)
        f = pts[i, 2] * (lam / pts[i, 3]) ** pts[i, 4]
        for j in range(plines.shape[0]):
            if int(plines[j, 0]) == i:
                dl = (lam - plines[j, 1]) / plines[j, 3]
                if abs(dl) < 12.0:
                    f += plines[j, 2] * math.exp(-0.5 * dl * dl) / (_SQ2PI * plines[j, 3])
        out += f * spat * JY_TO_MJYSR_ARCSEC2
    for i in range(exts.shape[0]):
        ac, bc, s = exts[i, 0], exts[i, 1], exts[i, 2]
        s2 = s * s
        se2 = s2 + sp * sp
        se = math.sqrt(se2)
        da = a - ac
        if abs(da) > 7.0 * se or abs(bm - bc) > hw + 7.0 * se:
            continue
        c = exts[i, 3] * (lam / exts[i, 4]) ** exts[i, 5]
        out += c * s2 / se2 * math.exp(-0.5 * da * da / se2) * _SQ2PI * se * _across(
            b_lo, b_hi, bc, se)
        for j in range(elines.shape[0]):
            if int(elines[j, 0]) != i:
                continue
            dl = lam - elines[j, 1]
            if abs(dl) > 12.0 * elines[j, 8]:
                continue
            A, ca, cb, L, det = elines[j, 3], elines[j, 4], elines[j, 5], elines[j, 6], \
                elines[j, 7]
            q = (L * da * da - 2.0 * ca * da * dl + A * dl * dl) / det
            dens = math.exp(-0.5 * q) / (2.0 * math.pi * math.sqrt(det))
            mu = bc + cb * (A * dl - ca * da) / det
            var = A - cb * cb * A / det
            out += elines[j, 2] * dens * _across(b_lo, b_hi, mu, math.sqrt(var))
    return out


def _line_table(packed: dict[str, np.ndarray], psf: tuple[float, float]) -> np.ndarray:
    """Per extended-source line, the constants of its 3-D Gaussian in the local frame."""
    el, ex = packed["ext_lines"], packed["ext"]
    out = np.zeros((el.shape[0], 9))
    for j in range(el.shape[0]):
        i = int(el[j, 0])
        lc, amp, sl, ka, kb = el[j, 1:6]
        s2 = ex[i, 2] ** 2
        spl = (psf[0] + psf[1] * lc) / 2.3548200450309493
        A = s2 + spl * spl
        L = sl * sl + s2 * (ka * ka + kb * kb)
        out[j] = [i, lc, amp * 2.0 * math.pi * s2, A, s2 * ka, s2 * kb, L,
                  A * L - (s2 * ka) ** 2, math.sqrt(L)]
    return out


@njit(nogil=True, cache=True)
def render(alpha, lam, j00, j01, j10, j11, b_lo, b_hi, a_lo, a_hi, nsx, nsy,
           pts, plines, exts, elines, bkg, psf_a, psf_b):
    """Per pixel (flattened arrays): integral of the scene over the footprint, MJy/sr
    arcsec^2 micron. The PSF FWHM is ``psf_a + psf_b lambda`` arcsec."""
    n = alpha.size
    out = np.zeros(n)
    for p in range(n):
        det = abs(j00[p] * j11[p] - j01[p] * j10[p])
        w = det / (nsx * nsy)
        acc = 0.0
        for iy in range(nsy):
            dy = (iy + 0.5) / nsy - 0.5
            for ix in range(nsx):
                dx = (ix + 0.5) / nsx - 0.5
                a = alpha[p] + j00[p] * dx + j01[p] * dy
                if a < a_lo[p] or a > a_hi[p]:
                    continue
                lv = lam[p] + j10[p] * dx + j11[p] * dy
                acc += _value(a, lv, b_lo[p], b_hi[p], pts, plines, exts, elines, bkg, psf_a,
                              psf_b)
        out[p] = acc * w
    return out


def render_pixels(geom: dict[str, np.ndarray], packed: dict[str, np.ndarray],
                  psf: tuple[float, float], nsub: tuple[int, int] = (3, 4)) -> np.ndarray:
    """``render`` on a dict of flattened per-pixel geometry (alpha, lam, j00, j01, j10, j11,
    b_lo, b_hi, a_lo, a_hi) and a packed scene (``ifu_scene.pack``)."""
    g = {k: np.ascontiguousarray(v, np.float64) for k, v in geom.items()}
    return render(g["alpha"], g["lam"], g["j00"], g["j01"], g["j10"], g["j11"], g["b_lo"],
                  g["b_hi"], g["a_lo"], g["a_hi"], int(nsub[0]), int(nsub[1]),
                  packed["points"], packed["point_lines"], packed["ext"],
                  _line_table(packed, psf), packed["background"], float(psf[0]), float(psf[1]))
