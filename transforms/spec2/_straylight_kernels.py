"""The MRS cross-artifact kernel (shared by the straylight step and the simulator).

jwst's model (``straylight.makemodel_composite``): along each detector row, every source
column ``i`` in ``[lo, hi)`` spreads its flux ``f`` over the row with
``K(dx) = a_L g^2 / (g^2 + dx^2) + a_1 [G(dx - d) + G(dx + d)] + a_2 [G2(dx - 2d) + G2(dx + 2d)]``,
``g = FWHM_L / 2``, ``G`` a Gaussian of FWHM ``FWHM_G`` (peak 1) and ``G2`` one twice as wide,
with per-row parameters. The sum over sources is a convolution, computed here by FFT, row by
row (exact up to rounding; jwst's C loop is O(rows x columns^2)).
"""

from __future__ import annotations

import numpy as np


def kernel(dx: np.ndarray, lor_fwhm, lor_scale, gau_fwhm, gau_xoff, g1, g2) -> np.ndarray:
    """K(dx) per row: parameters are (nrow,) arrays, ``dx`` (n,); returns (nrow, n)."""
    gam = (np.asarray(lor_fwhm, np.float64) / 2.0)[:, None]
    gstd = (np.asarray(gau_fwhm, np.float64) / (2 * np.sqrt(2.0 * np.log(2))))[:, None]
    d = np.asarray(gau_xoff, np.float64)[:, None]
    a_l = np.asarray(lor_scale, np.float64)[:, None]
    a1 = np.asarray(g1, np.float64)[:, None]
    a2 = np.asarray(g2, np.float64)[:, None]
    x = np.asarray(dx, np.float64)[None, :]
    k = a_l * gam * gam / (gam * gam + x * x)
    k = k + a1 * (np.exp(-((x - d) ** 2) / (2 * gstd * gstd))
                  + np.exp(-((x + d) ** 2) / (2 * gstd * gstd)))
    k = k + a2 * (np.exp(-((x - 2 * d) ** 2) / (8 * gstd * gstd))
                  + np.exp(-((x + 2 * d) ** 2) / (8 * gstd * gstd)))
    return k


def xart_convolve(f: np.ndarray, lo: int, hi: int, lor_fwhm, lor_scale, gau_fwhm, gau_xoff,
                  g1, g2) -> np.ndarray:
    """sum over source columns i in [lo, hi) of f[y, i] K_y(x - i) (float64, f's shape)."""
    f = np.asarray(f, np.float64)
    ny, nx = f.shape
    src = np.zeros_like(f)
    src[:, lo:hi] = f[:, lo:hi]
    n = 1
    while n < 2 * nx:
        n *= 2
    dx = np.arange(n, dtype=np.float64)
    dx[dx >= n // 2] -= n  # circular offsets: 0..n/2-1, -n/2..-1
    pars = np.stack([np.asarray(v, np.float64)[:ny] for v in (lor_fwhm, lor_scale, gau_fwhm,
                                                               gau_xoff, g1, g2)], axis=1)
    uniq, inv = np.unique(pars, axis=0, return_inverse=True)  # rows sharing a kernel
    kf = np.fft.rfft(kernel(dx, *uniq.T), n, axis=1)
    out = np.fft.irfft(np.fft.rfft(src, n, axis=1) * kf[inv.ravel()], n, axis=1)
    return out[:, :nx]
