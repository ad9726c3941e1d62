"""Small synthetic dithered imaging programs with truth, for the image3 tests.

Stars (pixel-integrated Gaussian PSFs) at known sky positions are rendered through each
exposure's TRUE WCS; the header carries a pointing with an injected error. Data are in
MJy/sr-like units; a star's total flux in image units x pixel area is its truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from transforms.model import DataModel
from transforms.wcs import distortion_ref, wcs_meta, wcs_of

SCALE = 0.031  # arcsec / pixel
RA0, DEC0 = 53.16, -27.78
FWHM = 2.0  # pixels


@dataclass(frozen=True)
class Program:
    cals: tuple[DataModel, ...]
    truths: tuple[DataModel, ...]  # same exposures with the true pointing (for checking)
    ra: np.ndarray
    dec: np.ndarray
    flux: np.ndarray  # total star flux in data units summed over pixels
    cr_masks: tuple[np.ndarray, ...]
    clean: tuple[np.ndarray, ...]  # each exposure's data without the cosmic rays


def base_meta(shape, ra, dec, roll, v2_ref=0.0, v3_ref=0.0, exposure=1):
    ny, nx = shape
    dref = distortion_ref(v2_ref=v2_ref, v3_ref=v3_ref, crpix1=(nx - 1) / 2, crpix2=(ny - 1) / 2,
                          scale_x=SCALE, scale_y=SCALE, naxis1=nx, naxis2=ny)
    meta = {
        "instrument.name": "NIRCAM", "instrument.detector": "NRCA1",
        "instrument.filter": "F200W", "instrument.pupil": "CLEAR",
        "observation.program_number": "01234", "observation.observation_number": "001",
        "observation.visit_number": "001", "observation.exposure_number": str(exposure),
        "exposure.exposure_time": 100.0, "exposure.type": "NRC_IMAGE",
        "wcsinfo.v2_ref": v2_ref, "wcsinfo.v3_ref": v3_ref, "wcsinfo.roll_ref": roll,
        "wcsinfo.ra_ref": ra, "wcsinfo.dec_ref": dec,
        "photometry.pixelarea_steradians": (SCALE / 206264.806) ** 2,
        "bunit_data": "MJy/sr",
    }
    meta.update(wcs_meta(meta, dref, shape))
    return meta


def render(shape, x, y, flux, fwhm=FWHM):
    """Pixel-integrated Gaussian stars (0-based centres) on a zero image."""
    ny, nx = shape
    s = fwhm / 2.3548
    img = np.zeros(shape, np.float64)
    xe = np.arange(nx + 1) - 0.5
    ye = np.arange(ny + 1) - 0.5
    for xi, yi, fi in zip(x, y, flux):
        if not (-10 < xi < nx + 10 and -10 < yi < ny + 10):
            continue
        ex = np.diff(0.5 * erf((xe - xi) / (np.sqrt(2) * s)))
        ey = np.diff(0.5 * erf((ye - yi) / (np.sqrt(2) * s)))
        img += fi * np.outer(ey, ex)
    return img


def make_program(seed=0, n_exp=3, shape=(256, 256), nstars=45, max_err=0.5, dither=1.0,
                 noise=0.05, sky=(0.0,), n_cr=0, rot_err_deg=0.0, flux_range=(30.0, 300.0),
                 min_sep_arcsec=1.1, star_half=None):
    rng = np.random.default_rng(seed)
    half = shape[0] * SCALE / 2 + dither if star_half is None else star_half
    # stars spread over the union of the fields, kept apart so they are isolated
    ra_l, dec_l = [], []
    for _ in range(200 * nstars):
        if len(ra_l) == nstars:
            break
        dx, dy = rng.uniform(-half, half, 2)
        if all(np.hypot(dx - a, dy - b) > min_sep_arcsec for a, b in zip(ra_l, dec_l)):
            ra_l.append(dx)
            dec_l.append(dy)
    dx, dy = np.array(ra_l), np.array(dec_l)
    dec = DEC0 + dy / 3600
    ra = RA0 + dx / 3600 / np.cos(np.radians(DEC0))
    flux = rng.uniform(*flux_range, nstars)
    cals, truths, crs, clean = [], [], [], []
    for k in range(n_exp):
        off = rng.uniform(-dither, dither, 2)
        tra = RA0 + off[0] / 3600 / np.cos(np.radians(DEC0))
        tdec = DEC0 + off[1] / 3600
        roll = 30.0
        tmeta = base_meta(shape, tra, tdec, roll, exposure=k + 1)
        w = wcs_of(tmeta)
        x, y = w.invert(ra, dec, with_bounding_box=False)
        img = render(shape, x, y, flux)
        img += sky[k % len(sky)] + rng.normal(0, noise, shape)
        err = np.full(shape, noise, np.float32)
        dq = np.zeros(shape, np.uint32)
        crm = np.zeros(shape, bool)
        clean.append(img.astype(np.float32))
        if n_cr:
            iy, ix = rng.integers(5, shape[0] - 5, n_cr), rng.integers(5, shape[1] - 5, n_cr)
            img[iy, ix] += rng.uniform(5, 50, n_cr)
            crm[iy, ix] = True
        # header pointing with an injected error (up to max_err arcsec) and roll error
        e = rng.uniform(-1, 1, 2)
        e = e / max(np.hypot(*e), 1e-9) * rng.uniform(0.5, 1.0) * max_err
        hmeta = base_meta(shape, tra + e[0] / 3600 / np.cos(np.radians(tdec)), tdec + e[1] / 3600,
                          roll + rng.uniform(-1, 1) * rot_err_deg, exposure=k + 1)
        arrays = {"data": img.astype(np.float32), "err": err, "dq": dq,
                  "var_poisson": np.zeros(shape, np.float32),
                  "var_rnoise": (err ** 2).astype(np.float32)}
        cals.append(DataModel("cal", arrays, hmeta))
        truths.append(DataModel("cal", arrays, tmeta))
        crs.append(crm)
    return Program(tuple(cals), tuple(truths), ra, dec, flux, tuple(crs), tuple(clean))


def sky_errors(models, truths, n=5):
    """(n_exp, n*n, 2) arcsec offsets (east, north) of each model's WCS from its true WCS."""
    res = []
    for m, tr in zip(models, truths):
        ny, nx = m.shape
        gx, gy = np.meshgrid(np.linspace(0, nx - 1, n), np.linspace(0, ny - 1, n))
        a = np.array(wcs_of(m)(gx, gy))
        b = np.array(wcs_of(tr)(gx, gy))
        res.append(np.stack([((a[0] - b[0]) * np.cos(np.radians(b[1])) * 3600).ravel(),
                             ((a[1] - b[1]) * 3600).ravel()], axis=-1))
    return np.array(res)


def covered_by_all(models, k, y, x, margin=3):
    """True where pixel (y, x) of exposure k lies inside every other exposure (by margin px)."""
    ra, dec = wcs_of(models[k])(x.astype(float), y.astype(float), with_bounding_box=False)
    ok = np.ones(np.shape(x), bool)
    for j, m in enumerate(models):
        if j == k:
            continue
        xx, yy = wcs_of(m).invert(ra, dec, with_bounding_box=False)
        ny, nx = m.shape
        ok &= (xx > margin) & (yy > margin) & (xx < nx - 1 - margin) & (yy < ny - 1 - margin)
    return ok
