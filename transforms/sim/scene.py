"""Sky scenes: stars and galaxies at known sky positions and fluxes, rendered onto pixels.

A star is a pixel-integrated Gaussian PSF (exact, via erf); a galaxy is an astropy Sersic2D
profile sampled 3x3 per pixel within 4 effective radii, blurred by the same PSF and normalised to its total flux within a
stamp (so the truth flux equals the simulated counts). Rendering takes pixel positions: the
caller maps sky to pixels with the exposure's true WCS (``transforms.wcs.build_wcs``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.special import erf

ARCSEC = 1.0 / 3600.0


class SceneError(ValueError):
    """An impossible scene request."""


@dataclass(frozen=True)
class Source:
    """One sky source. ``flux_ujy`` is the total flux density in the filter (microjansky)."""

    id: int
    ra: float
    dec: float
    flux_ujy: float
    type: str  # "star" | "galaxy"
    r_eff_arcsec: float = 0.0
    sersic_n: float = 1.0
    ellipticity: float = 0.0
    theta_deg: float = 0.0

    def as_dict(self) -> dict:
        return dict(id=self.id, ra=self.ra, dec=self.dec, flux_ujy=self.flux_ujy, type=self.type,
                    r_eff_arcsec=self.r_eff_arcsec, sersic_n=self.sersic_n,
                    ellipticity=self.ellipticity, theta_deg=self.theta_deg)


def make_field(ra: float, dec: float, radius_arcsec: float, nstars: int, ngalaxies: int,
               seed: int, flux_range_ujy: tuple[float, float] = (0.5, 2000.0)) -> tuple[Source, ...]:
    """A random field of stars and galaxies in a disc, fluxes log-uniform (bright ones rare)."""
    if radius_arcsec <= 0 or nstars < 0 or ngalaxies < 0:
        raise SceneError("field radius must be > 0 and source counts >= 0")
    rng = np.random.default_rng([int(seed), 7])
    n = nstars + ngalaxies
    r = radius_arcsec * np.sqrt(rng.random(n))
    phi = 2 * np.pi * rng.random(n)
    dra = r * np.cos(phi) * ARCSEC / np.cos(np.radians(dec))
    ddec = r * np.sin(phi) * ARCSEC
    lo, hi = np.log10(flux_range_ujy[0]), np.log10(flux_range_ujy[1])
    flux = 10 ** (lo + (hi - lo) * rng.random(n) ** 2.0)
    out = []
    for i in range(n):
        if i < nstars:
            out.append(Source(i + 1, float(ra + dra[i]), float(dec + ddec[i]), float(flux[i]),
                              "star"))
        else:
            out.append(Source(i + 1, float(ra + dra[i]), float(dec + ddec[i]), float(flux[i]),
                              "galaxy", r_eff_arcsec=float(rng.uniform(0.08, 0.4)),
                              sersic_n=float(rng.choice([1.0, 1.5, 4.0])),
                              ellipticity=float(rng.uniform(0.0, 0.6)),
                              theta_deg=float(rng.uniform(0, 180))))
    return tuple(out)


def psf_fwhm_arcsec(pivot_um: float) -> float:
    """Diffraction-limited FWHM for the 6.5 m aperture plus a small jitter term."""
    diff = 1.025 * pivot_um * 1e-6 / 6.5 * 206264.806
    return float(np.hypot(diff, 0.010))


def _gauss_stamp(x: float, y: float, sigma: float, shape: tuple[int, int]) -> tuple:
    half = int(np.ceil(5 * sigma)) + 2
    x0, x1 = max(int(np.floor(x)) - half, 0), min(int(np.floor(x)) + half + 1, shape[1])
    y0, y1 = max(int(np.floor(y)) - half, 0), min(int(np.floor(y)) + half + 1, shape[0])
    if x0 >= x1 or y0 >= y1:
        return None
    s2 = np.sqrt(2.0) * sigma
    xe = np.arange(x0, x1 + 1) - 0.5
    ye = np.arange(y0, y1 + 1) - 0.5
    fx = np.diff(0.5 * erf((xe - x) / s2))
    fy = np.diff(0.5 * erf((ye - y) / s2))
    return (slice(y0, y1), slice(x0, x1)), np.outer(fy, fx)


def _galaxy_stamp(src: Source, x: float, y: float, sigma: float, scale: float,
                  shape: tuple[int, int]) -> tuple | None:
    from astropy.modeling.models import Sersic2D

    r_eff = max(src.r_eff_arcsec / scale, 0.3)
    half = int(np.ceil(min(4 * r_eff, 40) + 4 * sigma)) + 2
    cx, cy = int(np.floor(x)), int(np.floor(y))
    x0, x1, y0, y1 = cx - half, cx + half + 1, cy - half, cy + half + 1
    if x1 <= 0 or y1 <= 0 or x0 >= shape[1] or y0 >= shape[0]:
        return None
    os_ = 3
    sub = (np.arange((x1 - x0) * os_) + 0.5) / os_ - 0.5 + x0
    suby = (np.arange((y1 - y0) * os_) + 0.5) / os_ - 0.5 + y0
    X, Y = np.meshgrid(sub, suby)
    model = Sersic2D(amplitude=1.0, r_eff=r_eff, n=src.sersic_n, x_0=x, y_0=y,
                     ellip=src.ellipticity, theta=np.radians(src.theta_deg))
    img = model(X, Y)
    img = gaussian_filter(img, sigma * os_, mode="constant")
    img = img.reshape(y1 - y0, os_, x1 - x0, os_).sum(axis=(1, 3))
    total = img.sum()
    if not total > 0:
        return None
    img = img / total
    xs0, ys0 = max(x0, 0), max(y0, 0)
    xs1, ys1 = min(x1, shape[1]), min(y1, shape[0])
    cut = img[ys0 - y0:ys1 - y0, xs0 - x0:xs1 - x0]
    return (slice(ys0, ys1), slice(xs0, xs1)), cut


def render(sources: tuple[Source, ...], x: np.ndarray, y: np.ndarray, shape: tuple[int, int],
           counts_per_ujy: float, psf_fwhm_px: float, pixel_scale: float) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """Count-rate image (units of ``counts_per_ujy``) of the sources at pixel positions (x, y).

    Returns (image float64, fraction of each source's flux that fell on the image).
    """
    if psf_fwhm_px <= 0:
        raise SceneError(f"PSF FWHM must be positive, got {psf_fwhm_px}")
    sigma = psf_fwhm_px / 2.3548
    img = np.zeros(shape, np.float64)
    frac = np.zeros(len(sources))
    for i, (src, xi, yi) in enumerate(zip(sources, x, y)):
        if not (np.isfinite(xi) and np.isfinite(yi)):
            continue
        if src.type == "star":
            st = _gauss_stamp(float(xi), float(yi), sigma, shape)
        elif src.type == "galaxy":
            st = _galaxy_stamp(src, float(xi), float(yi), sigma, pixel_scale, shape)
        else:
            raise SceneError(f"source {src.id} has unknown type {src.type!r} (star or galaxy)")
        if st is None:
            continue
        sl, stamp = st
        img[sl] += stamp * (src.flux_ujy * counts_per_ujy)
        frac[i] = stamp.sum()
    return img, frac
