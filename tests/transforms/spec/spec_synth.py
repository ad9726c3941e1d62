"""Synthetic 2-D spectra with known truth, for the spectroscopy tests (until specsim's
simulator is on main): analytic slits (``transforms.spectral.analytic_slit_params``: tilted,
curved trace, sheared iso-wavelength lines, known sky positions), a point source of known
spectrum at a known slit position, optional background, noise and bad pixels.

Point-source pixels are a flux density per pixel (MJy, as NIRSpec photom makes them): the
counts a pixel collects from the source's F_nu(lambda) phi(s) (phi: the spatial profile)
divided by the pixel's dispersion along the row, d lambda / dx. With iso-wavelength lines
sheared against a tilted trace this is F phi |det J| / |d lambda / dx| = F phi / (1 - shear
T'(x)), J the Jacobian of (lambda, s) in pixels: the sum over a detector column differs from
F_nu by that factor (< 0.1 % here), the sum along an iso-wavelength line is F_nu.

test_spec_golden.py builds its inputs with ``make_slit``: a change here changes the golden ids
of the spectroscopy steps (re-pin them in tests/transforms/golden_ids.py, no version bump: the
steps did not change).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import erf

from transforms import dq as DQ
from transforms import spectral as S
from transforms.model import DataModel

LINES = ((1.12, 0.6e-3, 2.5e-3), (1.31, 0.8e-3, 1.5e-3))  # (micron, Jy peak, sigma micron)


def continuum(lam: np.ndarray) -> np.ndarray:
    """Truth F_nu (Jy): a smooth continuum."""
    lam = np.asarray(lam, np.float64)
    return 1.0e-3 * (1.0 + 0.3 * (lam - 1.2)) 


def spectrum(lam: np.ndarray, lines: Sequence[tuple[float, float, float]] = LINES) -> np.ndarray:
    """Truth F_nu (Jy): continuum plus Gaussian emission lines."""
    f = continuum(lam)
    for l0, amp, sig in lines:
        f = f + amp * np.exp(-0.5 * ((lam - l0) / sig) ** 2)
    return f


@dataclass
class SlitSpec:
    name: str = "S200A1"
    shape: tuple[int, int] = (31, 240)  # (ny, nx) of the cutout, dispersion along x
    trace: tuple[float, float, float] = (15.0, 0.01, 1.5e-5)
    dispersion: tuple[float, float, float] = (0.95, 2.0e-3, 1.0e-7)
    shear: float = 0.04
    slit_pix: float = 24.0
    scale: float = 0.1
    ra: float = 53.16
    dec: float = -27.78
    pa: float = 20.0
    source_ypos: float | None = 0.05  # planned position in the slit (slit units)
    sigma: float = 1.1  # PSF sigma, pixels across the slit
    source_id: int = 1
    srctype: str = "POINT"
    background: float = 0.0  # MJy per pixel
    spectrum: Callable[[np.ndarray], np.ndarray] = spectrum
    extra: dict[str, Any] = field(default_factory=dict)
    disp_axis: int = 1


def make_slit(sp: SlitSpec, rng: np.random.Generator | None = None, noise: float = 0.0,
              bad: Sequence[tuple[int, int]] = ()) -> S.Slit:
    """One slit: data (MJy per pixel), err, var_*, dq, wavelength, and its metadata."""
    params = S.analytic_slit_params(disp_axis=sp.disp_axis, trace=sp.trace,
                                    dispersion=sp.dispersion, shear=sp.shear,
                                    slit_pix=sp.slit_pix, scale=sp.scale, ra=sp.ra, dec=sp.dec,
                                    pa=sp.pa)
    ny, nx = sp.shape
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    # the cutout is generated with the dispersion along x, then transposed for vertical slits
    lam, ra, dec, sy, d = S._analytic({**params, "disp_axis": 1}, x, y)
    data = np.full((ny, nx), sp.background, np.float64)
    if sp.source_ypos is not None:
        dc = sp.source_ypos * sp.slit_pix
        # fraction of a Gaussian profile (in d) inside each pixel's extent in d
        frac = 0.5 * (erf((d + 0.5 - dc) / (math.sqrt(2) * sp.sigma))
                      - erf((d - 0.5 - dc) / (math.sqrt(2) * sp.sigma)))
        tprime = sp.trace[1] + 2.0 * sp.trace[2] * x
        data = data + sp.spectrum(lam) * 1e-6 * frac / (1.0 - sp.shear * tprime)
    vr = np.full((ny, nx), (2e-3 * 1e-6) ** 2)
    vp = np.abs(data) * 1e-9
    if rng is not None and noise > 0:
        data = data + rng.normal(0.0, noise, data.shape)
    dq = np.zeros((ny, nx), np.uint32)
    for j, i in bad:
        dq[j, i] |= DQ.DO_NOT_USE
        data[j, i] = np.nan
    arrays = {"data": data.astype(np.float32), "dq": dq,
              "err": np.sqrt(vr + vp).astype(np.float32), "var_rnoise": vr.astype(np.float32),
              "var_poisson": vp.astype(np.float32), "var_flat": np.zeros((ny, nx), np.float32),
              "wavelength": lam.astype(np.float32)}
    if sp.disp_axis == S.VERTICAL:
        arrays = {k: np.ascontiguousarray(v.T) for k, v in arrays.items()}
    meta = {"name": sp.name, "xstart": 100, "ystart": 200, "xsize": arrays["data"].shape[1],
            "ysize": arrays["data"].shape[0], "source_id": sp.source_id,
            "source_name": f"{sp.source_id}_src", "source_xpos": 0.0,
            "source_ypos": sp.source_ypos if sp.source_ypos is not None else 0.0,
            "srctype": sp.srctype, "shutter_state": "x", "dispersion_direction": sp.disp_axis,
            "wcs": params, "bunit_data": "MJy", **sp.extra}
    return S.Slit(sp.name, arrays, meta)


def base_meta(exp_type: str = "NRS_FIXEDSLIT", **kw: Any) -> dict[str, Any]:
    m = {"instrument.name": "NIRSPEC" if exp_type.startswith("NRS") else "MIRI",
         "instrument.detector": "NRS1" if exp_type.startswith("NRS") else "MIRIMAGE",
         "instrument.filter": "F100LP" if exp_type.startswith("NRS") else "P750L",
         "exposure.type": exp_type, "exposure.exposure_time": 1000.0,
         "observation.program_number": "01234", "observation.observation_number": "003",
         "cal_step.photom": "COMPLETE", "photometry.pixelarea_steradians": 2.35e-13}
    if exp_type.startswith("NRS"):
        m["instrument.grating"] = "G140H"
    m.update(kw)
    return m


def cal_product(slits: Sequence[S.Slit], **meta: Any) -> DataModel:
    """A multi-slit cal product of ``slits``."""
    base = DataModel("cal", {}, base_meta(**meta))
    return S.with_slits(base, list(slits), kind="cal", single=False)
