"""wavecorr: the wavelength zero-point correction of NIRSpec point sources off the slit centre.

The slit WCS assigns each pixel the wavelength of light entering at the slit centre across the
slit (``x_slit = 0``). A point source at ``source_xpos`` lands ``ax w xpos`` pixels away along
the dispersion. As jwst's ``apply_zero_point_correction``: the ``wavecorr`` reference's
zero-point offset (pixels, a table over (wavelength [m], position in the aperture); aperture
= the fixed slit's name, or ``MOS``) is evaluated at the slit's mean wavelength per column and
``source_xpos``, the corrected wavelengths ``lam + offset x dispersion`` (dispersion per pixel
from the WCS) become a table in the slit's WCS parameters (``wcs.wavecorr``: jwst's
``wavecorr_frame``), and the ``wavelength`` plane is recomputed. Only slits of point sources
(NRS_FIXEDSLIT, NRS_MSASPEC); ``wavelength_corrected`` records what was done.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms.instruments.nirspec import slits as N
from transforms.model import DataModel
from transforms.registry import register
from transforms.spectral import column_reduce
from transforms.spec2._common import (NIRSPEC_SLIT_TYPES, exp_type, need_ref, slit_arrays,
                                      slit_meta, slit_names, srctype_of, update_slits)

NAME, VERSION = "wavecorr", "1.0"


@dataclass(frozen=True)
class WavecorrParams:
    """jwst 3.0 WavecorrStep has no parameters."""


def offset_table(ref: DataModel, aperture: str) -> Mapping[str, Any] | None:
    """{lam_m, xpos, offset} of an aperture: calops' table, or jwst's Tabular2D read back."""
    tabs = ref.get("calops.wavecorr")
    if isinstance(tabs, Mapping) and aperture in tabs:
        return tabs[aperture]
    i = 0
    while ref.get(f"apertures.{i}.aperture_name") is not None:
        if str(ref.get(f"apertures.{i}.aperture_name")) == aperture:
            z = ref.get(f"apertures.{i}.zero_point_offset")
            if isinstance(z, Mapping):
                return {"lam_m": z["points"][0], "xpos": z["points"][1],
                        "offset": z["lookup_table"]}
        i += 1
    return None


def _bilinear(t: Mapping[str, Any], lam_m: np.ndarray, xpos: float) -> np.ndarray:
    lg = np.asarray(t["lam_m"], np.float64)
    xg = np.asarray(t["xpos"], np.float64)
    tab = np.asarray(t["offset"], np.float64)
    per_lam = np.array([np.interp(xpos, xg, row) for row in tab])
    return np.interp(lam_m, lg, per_lam)


def correction(params: Mapping[str, Any], wavelength: np.ndarray, table: Mapping[str, Any],
               xpos: float) -> dict[str, list[float]] | None:
    """The ``wcs.wavecorr`` table (uncorrected -> corrected wavelength) of one slit, or None
    when the corrected wavelengths would not increase (jwst skips the slit then)."""
    lam = np.asarray(wavelength, np.float64)
    ny, nx = lam.shape
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    _, left = N.pixel_coords(params, x - 0.5, y)
    _, right = N.pixel_coords(params, x + 0.5, y)
    disp = right - left
    with np.errstate(invalid="ignore"):  # columns off the slit have no finite value
        lam_mean = column_reduce(np.nanmean, np.where(np.isfinite(lam), lam, np.nan))
        disp_mean = column_reduce(np.nanmean, np.where(np.isfinite(disp), disp, np.nan))
    ok = np.isfinite(lam_mean) & np.isfinite(disp_mean)
    if ok.sum() < 2:
        return None
    lm, dm = lam_mean[ok], disp_mean[ok]
    corrected = lm + _bilinear(table, lm * 1e-6, xpos) * dm
    if not np.all(np.diff(corrected) > 0):
        return None
    return {"lam": [float(v) for v in lm], "lam_corrected": [float(v) for v in corrected]}


@register(NAME, VERSION, "spec2", WavecorrParams, ("wavecorr",), keyword="S_WAVCOR",
          instruments=("NIRSPEC",))
def wavecorr(model: DataModel, refs, params: WavecorrParams) -> DataModel:
    """Move point-source wavelengths to where the source sits across the slit."""
    et = exp_type(model)
    if et not in NIRSPEC_SLIT_TYPES or not slit_names(model):
        return model.replace(meta={"cal_step.wavecorr": "SKIPPED"})
    ref = need_ref(refs, "wavecorr", NAME)
    ups = {}
    done = False
    for name in slit_names(model):
        sm = slit_meta(model, name)
        if srctype_of(model, sm, None) != "POINT":
            ups[name] = ({}, {"wavelength_corrected": False})
            continue
        table = offset_table(ref, name if et == "NRS_FIXEDSLIT" else "MOS")
        p = sm.get("wcs")
        wl = slit_arrays(model, name).get("wavelength")
        if table is None or not isinstance(p, Mapping) or wl is None:
            ups[name] = ({}, {"wavelength_corrected": False})
            continue
        wc = correction(p, wl, table, float(sm.get("source_xpos") or 0.0))
        if wc is None:
            ups[name] = ({}, {"wavelength_corrected": False})
            continue
        p2 = {**dict(p), "wavecorr": wc}
        ups[name] = ({"wavelength": N.wavelength_array(p2)},
                     {"wcs": p2, "wavelength_corrected": True})
        done = True
    return update_slits(model, ups, {"cal_step.wavecorr": "COMPLETE" if done else "SKIPPED"})
