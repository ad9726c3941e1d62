"""IFU scenes with a known 3-D truth: point sources and an extended source with velocity
structure, and the exact integrals the simulator and the tests need.

Units. Surface brightness is ``S_nu`` in MJy/sr per unit wavelength element, i.e. a cube's
units; a point source has a flux density ``F_nu`` in Jy; an emission line's strength is its
integral over wavelength (MJy/sr x micron for extended lines, Jy x micron for point-source
lines). The detector sees ``rate = R(lambda) x integral(S dalpha dbeta dlambda)`` over a pixel's
footprint (arcsec^2 x micron, ``R`` in DN/s per MJy/sr arcsec^2 micron), so photom's
per-pixel conversion ``1 / (R Omega_pix dlambda_pix)`` gives back ``S`` in MJy/sr.

Point sources: ``F_nu(lambda) = f0 (lambda / lref)^slope`` plus Gaussian lines, imaged with a
circular Gaussian PSF of the instrument's FWHM(lambda) and broadened by its line-spread
function (Gaussian, FWHM = lambda / R(lambda)).

The extended source: a circular Gaussian (radius ``sigma``) in continuum
``c0 (lambda / lref)^slope`` MJy/sr (peak) and in its lines, whose velocity is systemic plus a
solid-body gradient ``grad`` km/s per arcsec along position angle ``pa_kin``: the line at sky
offset ``r`` is centred at ``lambda0 (1 + (v_sys + grad u.r) / c)``. Line x space x wavelength is
then one 3-D Gaussian; the PSF (a spatial Gaussian) and the LSF (a spectral one) keep it one.
So every quantity has a closed form: the pixel integral across a slice (``ifu_render``), the
truth cube at any (RA, Dec, lambda), and the velocity the line centroid shows at any sky
position after the PSF, ``v_sys + grad s^2 / (s^2 + sigma_psf^2) u.r`` (``velocity_truth``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

C_KMS = 299792.458
FWHM = 2.0 * math.sqrt(2.0 * math.log(2.0))
ARCSEC2_SR = (math.pi / 180.0 / 3600.0) ** 2  # 2.3504e-11
JY_TO_MJYSR_ARCSEC2 = 1e-6 / ARCSEC2_SR  # F [Jy] spread over 1 arcsec^2 -> MJy/sr


@dataclass(frozen=True)
class Line:
    """An emission line: rest wavelength (micron), strength (point source: Jy um; extended:
    MJy/sr um at the peak of the spatial profile) and intrinsic dispersion (km/s)."""

    rest: float
    strength: float
    sigma_kms: float = 30.0


@dataclass(frozen=True)
class PointSource:
    ra: float
    dec: float
    f0_jy: float  # continuum at lref
    lref: float = 10.0
    slope: float = 0.0
    lines: tuple[Line, ...] = ()
    v_kms: float = 0.0  # line-of-sight velocity of its lines

    def continuum(self, lam) -> np.ndarray:
        return self.f0_jy * (np.asarray(lam, np.float64) / self.lref) ** self.slope


@dataclass(frozen=True)
class ExtendedSource:
    ra: float
    dec: float
    sigma_arcsec: float
    c0_mjysr: float  # continuum peak SB at lref
    lref: float = 10.0
    slope: float = 0.0
    lines: tuple[Line, ...] = ()
    v_sys: float = 0.0  # km/s
    grad_kms_arcsec: float = 0.0  # solid-body velocity gradient
    pa_kin: float = 0.0  # deg east of north: direction of increasing velocity

    def continuum(self, lam) -> np.ndarray:
        return self.c0_mjysr * (np.asarray(lam, np.float64) / self.lref) ** self.slope


@dataclass(frozen=True)
class IfuScene:
    """A field: point sources, extended sources and a uniform background (MJy/sr)."""

    points: tuple[PointSource, ...] = ()
    extended: tuple[ExtendedSource, ...] = ()
    background_mjysr: float = 0.0
    background_slope: float = 0.0  # (lambda / 10 um)^slope
    meta: dict = field(default_factory=dict)

    def background(self, lam) -> np.ndarray:
        return self.background_mjysr * (np.asarray(lam, np.float64) / 10.0
                                        ) ** self.background_slope


MRS_EXT_LINES = (5.511, 6.109, 6.985, 8.025, 9.665, 10.511, 12.279, 14.322, 17.035, 18.713,
                 22.925, 25.89)  # one line in each MRS sub-band (H2, [ArII]-like ...)
MRS_POINT_LINES = (5.34, 8.20)
NRS_EXT_LINES = (1.0941, 1.2570, 1.2822, 1.8756, 2.1218, 2.1661, 3.2962, 4.0523)
NRS_POINT_LINES = (1.0833, 1.6440, 2.0587, 3.0392)


def default_scene(ra: float, dec: float, lines: Sequence[float] = MRS_EXT_LINES,
                  point_lines: Sequence[float] = MRS_POINT_LINES, point_mjy: float = 30.0,
                  lref: float = 8.0) -> IfuScene:
    """The test scene: a point source (``point_mjy`` mJy at ``lref``) at (ra, dec) with weak
    lines, and, 1.1" away, a rotating extended source (sigma 0.7", solid-body gradient
    110 km/s per arcsec, systemic 120 km/s) with bright lines on a faint continuum, over a
    uniform background rising to the red."""
    from transforms.spectral import tan_to_sky

    ps = PointSource(ra, dec, point_mjy * 1e-3, lref=lref, slope=0.6,
                     lines=tuple(Line(w, 2.0e-4 * point_mjy / 30.0 * w / 6.0, 40.0)
                                 for w in point_lines), v_kms=0.0)
    era, edec = tan_to_sky(np.array([0.8]), np.array([-0.75]), ra, dec)
    ext = ExtendedSource(float(era[0]), float(edec[0]), 0.7, 1.5, lref=lref, slope=1.0,
                         lines=tuple(Line(w, 0.6 * w / 6.0, 35.0) for w in lines),
                         v_sys=120.0, grad_kms_arcsec=110.0, pa_kin=35.0)
    return IfuScene((ps,), (ext,), background_mjysr=0.4, background_slope=2.0)


def nirspec_scene(ra: float, dec: float) -> IfuScene:
    """The NIRSpec IFU test scene: as ``default_scene`` with near-IR lines."""
    return default_scene(ra, dec, NRS_EXT_LINES, NRS_POINT_LINES, point_mjy=2.0, lref=1.5)


# --------------------------------------------------------------------------------------------
# Instrument responses (passed in: PSF FWHM and resolving power are instrument properties)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Optics:
    """The instrument's PSF FWHM (arcsec) and resolving power as functions of wavelength."""

    psf_fwhm: Callable[[np.ndarray], np.ndarray]
    resolving_power: Callable[[np.ndarray], np.ndarray]

    def psf_sigma(self, lam) -> np.ndarray:
        return np.asarray(self.psf_fwhm(lam), np.float64) / FWHM

    def lsf_sigma(self, lam) -> np.ndarray:
        lam = np.asarray(lam, np.float64)
        return lam / np.asarray(self.resolving_power(lam), np.float64) / FWHM


# --------------------------------------------------------------------------------------------
# Truths
# --------------------------------------------------------------------------------------------

def line_center(line: Line, v_kms: float) -> float:
    return line.rest * (1.0 + v_kms / C_KMS)


def point_spectrum(ps: PointSource, lam, optics: Optics) -> np.ndarray:
    """What a perfect extraction of the point source gives (Jy): continuum plus lines
    convolved with the line-spread function."""
    lam = np.asarray(lam, np.float64)
    out = ps.continuum(lam)
    for ln in ps.lines:
        lc = line_center(ln, ps.v_kms)
        sig = math.hypot(lc * ln.sigma_kms / C_KMS, float(optics.lsf_sigma(lc)))
        out = out + ln.strength * np.exp(-0.5 * ((lam - lc) / sig) ** 2) / (
            math.sqrt(2 * math.pi) * sig)
    return out


def _offsets(ra, dec, ra0, dec0):
    from transforms.spectral import sky_to_tan

    return sky_to_tan(np.asarray(ra, np.float64), np.asarray(dec, np.float64), ra0, dec0)


def cube_truth(scene: IfuScene, ra, dec, lam, optics: Optics, include_points: bool = True
               ) -> np.ndarray:
    """The scene's surface brightness (MJy/sr) after the PSF and the LSF at points (ra, dec,
    lambda) (broadcast)."""
    ra, dec, lam = np.broadcast_arrays(np.asarray(ra, np.float64), np.asarray(dec, np.float64),
                                       np.asarray(lam, np.float64))
    out = scene.background(lam).astype(np.float64)
    sp = optics.psf_sigma(lam)
    if include_points:
        for ps in scene.points:
            xi, eta = _offsets(ra, dec, ps.ra, ps.dec)
            prof = np.exp(-0.5 * (xi ** 2 + eta ** 2) / sp ** 2) / (2 * math.pi * sp ** 2)
            out = out + point_spectrum(ps, lam, optics) * prof * JY_TO_MJYSR_ARCSEC2
    for ex in scene.extended:
        xi, eta = _offsets(ra, dec, ex.ra, ex.dec)
        s2 = ex.sigma_arcsec ** 2
        se2 = s2 + sp ** 2
        out = out + ex.continuum(lam) * s2 / se2 * np.exp(-0.5 * (xi ** 2 + eta ** 2) / se2)
        for ln in ex.lines:
            out = out + _ext_line(ex, ln, xi, eta, lam, optics)
    return out


def _kin_vector(ex: ExtendedSource) -> np.ndarray:
    """Unit vector (xi east, eta north) of increasing velocity."""
    pa = math.radians(ex.pa_kin)
    return np.array([math.sin(pa), math.cos(pa)])


def _ext_line(ex: ExtendedSource, ln: Line, xi, eta, lam, optics: Optics) -> np.ndarray:
    """The extended line after PSF and LSF at tangent offsets (xi east, eta north)."""
    lc = line_center(ln, ex.v_sys)
    sp2 = float(optics.psf_sigma(lc)) ** 2
    s2 = ex.sigma_arcsec ** 2
    k = _kin_vector(ex) * ln.rest * ex.grad_kms_arcsec / C_KMS  # micron per arcsec
    sl2 = (lc * ln.sigma_kms / C_KMS) ** 2 + float(optics.lsf_sigma(lc)) ** 2
    # joint Gaussian of (xi, eta, lambda): spatial (s2 + sp2) I, cross s2 k, lambda var
    cov = np.zeros((3, 3))
    cov[0, 0] = cov[1, 1] = s2 + sp2
    cov[0, 2] = cov[2, 0] = s2 * k[0]
    cov[1, 2] = cov[2, 1] = s2 * k[1]
    cov[2, 2] = sl2 + s2 * float(k @ k)
    inv = np.linalg.inv(cov)
    det = np.linalg.det(cov)
    d = np.stack([xi, eta, lam - lc], axis=-1)
    q = np.einsum("...i,ij,...j->...", d, inv, d)
    total = ln.strength * 2 * math.pi * s2  # MJy/sr um arcsec^2
    return total * np.exp(-0.5 * q) / math.sqrt((2 * math.pi) ** 3 * det)


def velocity_truth(ex: ExtendedSource, line: Line, ra, dec, optics: Optics) -> np.ndarray:
    """Line-of-sight velocity (km/s) of the line's centroid at (ra, dec) after the PSF."""
    xi, eta = _offsets(ra, dec, ex.ra, ex.dec)
    lc = line_center(line, ex.v_sys)
    sp2 = float(optics.psf_sigma(lc)) ** 2
    s2 = ex.sigma_arcsec ** 2
    u = _kin_vector(ex)
    return ex.v_sys + ex.grad_kms_arcsec * s2 / (s2 + sp2) * (u[0] * xi + u[1] * eta)


# --------------------------------------------------------------------------------------------
# Packing for the rendering kernel (one exposure, one local frame)
# --------------------------------------------------------------------------------------------

def pack(scene: IfuScene, to_local: Callable, jac: np.ndarray, optics: Optics,
         lam_range: tuple[float, float]) -> dict[str, np.ndarray]:
    """The scene in an exposure's local frame (alpha, beta arcsec) for ``ifu_render``.

    ``to_local(ra, dec) -> (alpha, beta)`` places positions; ``jac`` is d(xi, eta)/d(alpha,
    beta) (2x2, orthonormal up to parity) that turns directions. Lines outside ``lam_range``
    (widened by 10 sigma) are dropped."""
    lo, hi = lam_range
    pts, plines = [], []
    for i, ps in enumerate(scene.points):
        a, b = to_local(np.array([ps.ra]), np.array([ps.dec]))
        pts.append([float(a[0]), float(b[0]), ps.f0_jy, ps.lref, ps.slope])
        for ln in ps.lines:
            lc = line_center(ln, ps.v_kms)
            sig = math.hypot(lc * ln.sigma_kms / C_KMS, float(optics.lsf_sigma(lc)))
            if lo - 10 * sig <= lc <= hi + 10 * sig:
                plines.append([i, lc, ln.strength, sig])
    exts, elines = [], []
    jinv = np.linalg.inv(jac)
    for i, ex in enumerate(scene.extended):
        a, b = to_local(np.array([ex.ra]), np.array([ex.dec]))
        exts.append([float(a[0]), float(b[0]), ex.sigma_arcsec, ex.c0_mjysr, ex.lref, ex.slope])
        # gradient direction: v = g u.(xi, eta) = g u.(J (alpha, beta)) = g (J^T u).(alpha, beta)
        uloc = jac.T @ _kin_vector(ex)
        for ln in ex.lines:
            lc = line_center(ln, ex.v_sys)
            sl = math.hypot(lc * ln.sigma_kms / C_KMS, float(optics.lsf_sigma(lc)))
            kk = uloc * ln.rest * ex.grad_kms_arcsec / C_KMS
            reach = 10 * sl + 4 * ex.sigma_arcsec * float(np.hypot(*kk))
            if lo - reach <= lc <= hi + reach:
                elines.append([i, lc, ln.strength, sl, kk[0], kk[1]])
    del jinv

    def arr(rows, n):
        return np.asarray(rows, np.float64).reshape(len(rows), n)

    return {"points": arr(pts, 5), "point_lines": arr(plines, 4), "ext": arr(exts, 6),
            "ext_lines": arr(elines, 6),
            "background": np.array([scene.background_mjysr, scene.background_slope])}
