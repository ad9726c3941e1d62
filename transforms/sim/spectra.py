"""Spectra, spectroscopic sources and how their light crosses a slit onto the detector.

The truth of the spectroscopic simulator:

- **Spectra** (``Spectrum``): a power-law continuum (F_nu at a reference wavelength, slope)
  with Gaussian emission lines (peak relative to the continuum) and absorption lines (depth),
  redshifted; ``fnu(lam)`` in MJy (point and extended sources: the total flux density) or
  MJy/sr (``uniform`` sources and the sky: a surface brightness). Observed line centroids are
  part of the truth.
- **Sources** (``SpecSource``): a point source, an extended Gaussian (``sigma_arcsec``) or a
  uniform surface brightness filling the aperture, at a sky position.
- **Optics** (per instrument): the telescope PSF at the slit is two Gaussians (a diffraction
  core ``0.44 lambda/D`` with 7 mas of jitter and a halo 5x wider holding 12% of the light),
  so a point source loses light at the slit edges (the path loss); a diffraction loss
  ``exp(-beta lambda / width)`` affects every source (the uniform path loss); the
  spectrograph blurs the slit image on the detector by ``detector_blur`` pixels (Gaussian).
- **Response**: the count rate per detector pixel column of a point source of 1 MJy is
  ``1e-20 A T(lam) (dlam/lam) / h / gain`` DN/s, ``dlam`` the wavelength span of one pixel,
  ``A`` = 25.4 m^2: what the photom reference inverts.

``render_slit`` is the numba kernel that puts a source (or the sky) through an aperture: it
steps along the dispersion in quarter pixels of the slit centre's trace, integrates the
source profile over cells of the open aperture (the exact erf integrals, so the light that
crosses is the analytic path loss), maps each cell through the instrument model's linear
local mapping (plus the trace curvature) and deposits it with the spectrograph blur.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numba import njit

H_PLANCK = 6.62607015e-34
AREA_M2 = 25.4
ARCSEC2_SR = (math.pi / 180.0 / 3600.0) ** 2
C_KMS = 299792.458
JITTER_ARCSEC = 0.007
HALO_FRACTION = 0.12
HALO_SCALE = 5.0
DIFFRACTION_BETA = {"NIRSPEC": 0.010, "MIRI": 0.004}  # arcsec per micron
BLUR_PIXELS = {"NIRSPEC": 0.45, "MIRI": 0.50}


@dataclass(frozen=True)
class Line:
    """A spectral line: ``kind`` "emission" (``strength`` = peak / continuum at the line) or
    "absorption" (``strength`` = depth, 0..1); ``fwhm_kms`` its intrinsic width."""

    rest: float  # micron
    strength: float
    fwhm_kms: float = 150.0
    kind: str = "emission"


@dataclass(frozen=True)
class Spectrum:
    """``amplitude`` (uJy for point/extended sources, MJy/sr for uniform ones and the sky) at
    ``lam_ref`` (observed frame), ``F ~ (lam/lam_ref)^slope``, lines at ``rest (1 + z)``."""

    amplitude: float
    lam_ref: float = 2.0
    slope: float = 0.0
    lines: tuple[Line, ...] = ()
    redshift: float = 0.0
    unit: str = "uJy"  # "uJy" | "MJy/sr"

    def continuum(self, lam) -> np.ndarray:
        lam = np.asarray(lam, np.float64)
        scale = 1e-12 if self.unit == "uJy" else 1.0  # -> MJy (or MJy/sr)
        return self.amplitude * scale * (lam / self.lam_ref) ** self.slope

    def fnu(self, lam) -> np.ndarray:
        """Flux density (MJy) or surface brightness (MJy/sr) at observed wavelength ``lam``."""
        lam = np.asarray(lam, np.float64)
        c = self.continuum(lam)
        f = c.copy()
        for ln in self.lines:
            l0 = ln.rest * (1.0 + self.redshift)
            sig = l0 * ln.fwhm_kms / C_KMS / 2.3548
            g = np.exp(-0.5 * ((lam - l0) / sig) ** 2)
            if ln.kind == "emission":
                f = f + ln.strength * c * g
            else:
                f = f * (1.0 - ln.strength * g)
        return f

    def centroids(self) -> list[float]:
        """Observed wavelengths of the lines (micron)."""
        return [ln.rest * (1.0 + self.redshift) for ln in self.lines]


@dataclass(frozen=True)
class SpecSource:
    """A source of the scene. ``kind``: "point", "extended" (Gaussian of ``sigma_arcsec``) or
    "uniform" (fills every aperture it is assigned to; ``spectrum`` in MJy/sr)."""

    id: int
    name: str
    ra: float
    dec: float
    spectrum: Spectrum
    kind: str = "point"
    sigma_arcsec: float = 0.0
    alias: str = ""
    stellarity: float = 1.0
    extra: dict = field(default_factory=dict)

    @property
    def srctype(self) -> str:
        return "POINT" if self.kind == "point" else "EXTENDED"


def sky_background(instrument: str, lam) -> np.ndarray:
    """Zodiacal (+ thermal, MIRI) background in MJy/sr at ``lam`` (micron)."""
    lam = np.asarray(lam, np.float64)
    if str(instrument).upper() == "MIRI":
        return 3.0 * (lam / 7.5) ** 4.2  # ~3 MJy/sr at 7.5 um, ~55 at 15 um
    # scattered sunlight falling to the blue, thermal zodi rising to the red
    return 0.12 * (lam / 2.0) ** -1.5 + 0.05 * (lam / 4.0) ** 5.0


def psf_params(instrument: str, lam) -> tuple[np.ndarray, np.ndarray, float]:
    """(core sigma, halo sigma, halo fraction) of the PSF at the slit (arcsec)."""
    lam = np.asarray(lam, np.float64)
    core = np.sqrt((0.44 * lam * 1e-6 / 6.5 * 206264.806) ** 2 + JITTER_ARCSEC ** 2)
    return core, HALO_SCALE * core, HALO_FRACTION


def detector_blur(instrument: str, lam) -> np.ndarray:
    """Spectrograph blur of the slit image on the detector (Gaussian sigma, pixels)."""
    return np.full(np.shape(lam), BLUR_PIXELS[str(instrument).upper()], np.float64)


def diffraction_loss(instrument: str, lam, width_arcsec: float) -> np.ndarray:
    """Fraction of the light of any source that survives the slit's diffraction losses."""
    return np.exp(-DIFFRACTION_BETA[str(instrument).upper()] * np.asarray(lam, np.float64)
                  / float(width_arcsec))


def response(throughput, lam, dlam_per_pixel, gain: float) -> np.ndarray:
    """DN/s per pixel of dispersion for a point source of 1 MJy."""
    lam = np.asarray(lam, np.float64)
    return 1e-20 * AREA_M2 * np.asarray(throughput) * np.abs(dlam_per_pixel) / lam / H_PLANCK \
        / float(gain)


# --------------------------------------------------------------------------------------------
# The slit transmission of a point source (the path loss truth)
# --------------------------------------------------------------------------------------------

def _phi(z):
    from scipy.special import ndtr

    return ndtr(z)


def profile_fraction(lo, hi, x0, sc, sh, fh) -> np.ndarray:
    """Fraction of the two-Gaussian profile centred at ``x0`` between ``lo`` and ``hi``."""
    lo, hi, x0, sc, sh = (np.asarray(v, np.float64) for v in (lo, hi, x0, sc, sh))
    core = _phi((hi - x0) / sc) - _phi((lo - x0) / sc)
    halo = _phi((hi - x0) / sh) - _phi((lo - x0) / sh)
    return (1.0 - fh) * core + fh * halo


def point_transmission(instrument: str, lam, x0: float, y0: float, width: float,
                       y_intervals: Sequence[tuple[float, float]], extra_sigma: float = 0.0
                       ) -> np.ndarray:
    """Fraction of a point (or Gaussian ``extra_sigma``) source at slit offset (x0, y0) arcsec
    (x across, y along) that crosses an aperture ``width`` wide with open ``y_intervals``
    (arcsec): the PSF integral over the opening times the diffraction loss."""
    sc, sh, fh = psf_params(instrument, lam)
    sc = np.sqrt(sc ** 2 + extra_sigma ** 2)
    sh = np.sqrt(sh ** 2 + extra_sigma ** 2)
    px = profile_fraction(-0.5 * width, 0.5 * width, x0, sc, sh, fh)
    py = sum(profile_fraction(a, b, y0, sc, sh, fh) for a, b in y_intervals)
    return px * py * diffraction_loss(instrument, lam, width)


# --------------------------------------------------------------------------------------------
# The rendering kernel
# --------------------------------------------------------------------------------------------

@njit(nogil=True, cache=True)
def _ndtr(z):
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


@njit(nogil=True, cache=True)
def _frac(lo, hi, x0, sc, sh, fh):
    return ((1.0 - fh) * (_ndtr((hi - x0) / sc) - _ndtr((lo - x0) / sc))
            + fh * (_ndtr((hi - x0) / sh) - _ndtr((lo - x0) / sh)))


@njit(nogil=True, cache=True)
def _box_integral(t, sig):
    """G(t) = integral of Phi(s / sig) ds from -inf to t."""
    z = t / sig
    return sig * (z * 0.5 * math.erfc(-z / math.sqrt(2.0))
                  + math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi))


@njit(nogil=True, cache=True)
def _gauss_weights(out, c0, n, pos, blur, weight):
    """Add ``weight`` x the blurred point at ``pos`` over pixels c0..c0+n-1 of ``out``."""
    s = blur * math.sqrt(2.0)
    lo = max(int(math.floor(pos - 4.0 * blur + 0.5)), c0)
    hi = min(int(math.floor(pos + 4.0 * blur + 0.5)), c0 + n - 1)
    if hi < lo:
        return
    prev = 0.5 * math.erfc(-((lo - 0.5) - pos) / s)
    for c in range(lo, hi + 1):
        cur = 0.5 * math.erfc(-((c + 0.5) - pos) / s)
        out[c - c0] += weight * (cur - prev)
        prev = cur


@njit(nogil=True, cache=True)
def _box_weights(out, c0, n, ya, yb, blur, weight):
    """Add ``weight`` spread uniformly over [ya, yb], blurred, over pixels c0..c0+n-1."""
    if yb < ya:
        ya, yb = yb, ya
    width = yb - ya
    if width < 1e-6:
        _gauss_weights(out, c0, n, 0.5 * (ya + yb), blur, weight)
        return
    lo = max(int(math.floor(ya - 4.0 * blur + 0.5)), c0)
    hi = min(int(math.floor(yb + 4.0 * blur + 0.5)), c0 + n - 1)
    k = weight / width
    for c in range(lo, hi + 1):
        w = ((_box_integral(c + 0.5 - ya, blur) - _box_integral(c - 0.5 - ya, blur))
             - (_box_integral(c + 0.5 - yb, blur) - _box_integral(c - 0.5 - yb, blur)))
        out[c - c0] += k * w


PIECE_ARCSEC = 0.5


@njit(nogil=True, cache=True)
def render_slit(img, A, B, flux, sc, sh, fh, blur, M, c2, xmid, det, xi_lo, xi_hi, ivals,
                xi0, eta0, uniform, dcell):
    """Add one source's light through one aperture into ``img`` (a detector window).

    Per dispersion sample ``k``: ``A[k], B[k]`` the FPA position of the slit centre,
    ``flux[k]`` the light of the sample (DN/s for a point source; DN/s per arcsec^2 for a
    uniform source), ``sc/sh`` the PSF sigmas (arcsec), ``blur`` the detector blur (pixels).
    A slit-plane offset (xi across, eta along, arcsec) lands at
    ``x = A + M00 xi + M01 eta``, ``y = B + M10 xi + M11 eta + c2 (x - xmid)^2`` (FPA), then
    ``(det[0] x + det[1], det[2] y + det[3])`` in the window: x must follow xi and y eta
    (pass a transposed image for a model whose dispersion runs along y). The aperture is
    ``[xi_lo, xi_hi]`` x the open ``ivals`` (n, 2) along eta. Point and extended sources sit
    at (xi0, eta0): their profile is integrated exactly over ``dcell``-arcsec cells; a
    ``uniform`` source fills the opening (an exactly blurred box along eta). Along eta the
    opening is cut in pieces of at most 0.5", within which the weak cross terms (M01, M10,
    the curvature) are evaluated at the piece's centre, so each piece deposits as a separable
    product of column and row weights."""
    ny, nx = img.shape
    wx = np.zeros(nx)
    wy = np.zeros(ny)
    nk = A.shape[0]
    for k in range(nk):
        f = flux[k]
        if f == 0.0 or not math.isfinite(f):
            continue
        s_c, s_h, bl = sc[k], sh[k], blur[k]
        reach = 7.0 * s_h
        if uniform:
            xa, xb = xi_lo, xi_hi
        else:
            xa, xb = max(xi_lo, xi0 - reach), min(xi_hi, xi0 + reach)
        if xb <= xa:
            continue
        nxc = max(1, int(math.ceil((xb - xa) / dcell)))
        dxc = (xb - xa) / nxc
        xi_c = 0.5 * (xa + xb) if uniform else xi0
        for q in range(ivals.shape[0]):
            if uniform:
                ea, eb = ivals[q, 0], ivals[q, 1]
            else:
                ea, eb = max(ivals[q, 0], eta0 - reach), min(ivals[q, 1], eta0 + reach)
            if eb <= ea:
                continue
            npc = max(1, int(math.ceil((eb - ea) / PIECE_ARCSEC)))
            dpc = (eb - ea) / npc
            for p in range(npc):
                pa = ea + p * dpc
                pb = pa + dpc
                pm = 0.5 * (pa + pb)
                # columns: the xi profile at this piece's eta
                xcen = A[k] + M[0, 0] * xi_c + M[0, 1] * pm
                x_lo = det[0] * (A[k] + M[0, 0] * xa + M[0, 1] * pm) + det[1]
                x_hi = det[0] * (A[k] + M[0, 0] * xb + M[0, 1] * pm) + det[1]
                if x_hi < x_lo:
                    x_lo, x_hi = x_hi, x_lo
                c0 = max(int(math.floor(x_lo - 4.0 * bl + 0.5)), 0)
                c1 = min(int(math.floor(x_hi + 4.0 * bl + 0.5)), nx - 1)
                if c1 < c0:
                    continue
                ncol = c1 - c0 + 1
                for i in range(ncol):
                    wx[i] = 0.0
                tx = 0.0
                for i in range(nxc):
                    a = xa + i * dxc
                    b = a + dxc
                    w = dxc if uniform else _frac(a, b, xi0, s_c, s_h, fh)
                    if w <= 0.0:
                        continue
                    tx += w
                    xw = det[0] * (A[k] + M[0, 0] * 0.5 * (a + b) + M[0, 1] * pm) + det[1]
                    _gauss_weights(wx, c0, ncol, xw, bl, w)
                if tx <= 0.0:
                    continue
                # rows: the eta profile over the piece
                ycurv = c2 * (xcen - xmid) ** 2
                y_a = det[2] * (B[k] + M[1, 0] * xi_c + M[1, 1] * pa + ycurv) + det[3]
                y_b = det[2] * (B[k] + M[1, 0] * xi_c + M[1, 1] * pb + ycurv) + det[3]
                ylo, yhi = min(y_a, y_b), max(y_a, y_b)
                r0 = max(int(math.floor(ylo - 4.0 * bl + 0.5)), 0)
                r1 = min(int(math.floor(yhi + 4.0 * bl + 0.5)), ny - 1)
                if r1 < r0:
                    continue
                nrow = r1 - r0 + 1
                for j in range(nrow):
                    wy[j] = 0.0
                if uniform:
                    _box_weights(wy, r0, nrow, y_a, y_b, bl, dpc)
                else:
                    nec = max(1, int(math.ceil(dpc / dcell)))
                    dec = dpc / nec
                    for j in range(nec):
                        ca = pa + j * dec
                        cb = ca + dec
                        w = _frac(ca, cb, eta0, s_c, s_h, fh)
                        if w <= 0.0:
                            continue
                        yw = det[2] * (B[k] + M[1, 0] * xi_c + M[1, 1] * 0.5 * (ca + cb)
                                       + ycurv) + det[3]
                        _gauss_weights(wy, r0, nrow, yw, bl, w)
                for j in range(nrow):
                    if wy[j] == 0.0:
                        continue
                    fj = f * wy[j]
                    for i in range(ncol):
                        img[r0 + j, c0 + i] += fj * wx[i]
