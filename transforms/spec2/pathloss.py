"""pathloss: correct the light a slit loses, as jwst 3.0's PathLossStep (build 10.0 fixes).

- **NIRSpec FS and MOS**: the PATHLOSS reference holds per aperture (a fixed slit by name; for
  the MSA ``MOS1X1`` when the shutters above and below the source shutter are closed, else
  ``MOS1X3``) the point-source transmission on a grid of source positions x wavelength and the
  uniform-source transmission vs wavelength (wavelengths in meters in the file). The source
  position is the slit's ``source_xpos/ypos`` (moved by -/+1 for a closed shutter below/above in
  a 1x3 grid; a two-shutter slitlet's uniform loss averages 1x1 and 1x3). The point vector at
  the source is interpolated **bilinearly with the weights of build 10.0's fix** (the upper and
  right neighbours were swapped before); a source outside the grid gets no correction (the
  slit is left alone). Vectors are interpolated onto each pixel's wavelength (NaN outside,
  which flags the pixel). Point sources are divided by the point correction (at the
  wavecorr-corrected wavelengths for a fixed slit, as jwst), others by the uniform one; both
  are kept as ``pathloss_point``/``pathloss_uniform`` planes with ``pathloss_correction_type``.
- **MIRI LRS** (point sources only, else SKIPPED): the MirLrsPathlossModel grid is indexed by
  the target's offset (pixels) from the slit reference point, computed from the target RA/Dec
  through the WCS at the reference wavelength (or ``source_xpos/ypos`` if set); ``user_slit_loc``
  (arcsec across the slit, edges at +-0.255") moves it; build 10.0: a target outside the grid
  uses the slit centre. The LRS correction is multiplicative (data x correction).

``source_type`` overrides the per-slit type; ``inverse`` undoes the correction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms.instruments.miri import lrs as L
from transforms.model import DataModel
from transforms.registry import register
from transforms.spec2._common import (MIRI_LRS_TYPES, NIRSPEC_SLIT_TYPES, Spec2Error, exp_type,
                                      match_nans_and_flags, need_ref, scale_arrays,
                                      slit_arrays, slit_meta, slit_names, srctype_of,
                                      update_slits)

NAME, VERSION = "pathloss", "1.0"


@dataclass(frozen=True)
class PathlossParams:
    """jwst 3.0 PathLossStep spec."""

    inverse: bool = False
    source_type: str | None = None
    user_slit_loc: float | None = None


# --------------------------------------------------------------------------------------------
# the reference grids
# --------------------------------------------------------------------------------------------

def _wcs(ref: DataModel, pre: str, keys: tuple[str, ...]) -> dict[str, float]:
    return {k: float(ref.get(f"{pre}.{k}")) for k in keys}


def pathloss_vector(data: np.ndarray, w: Mapping[str, float], xc: float, yc: float,
                    calc_wave: bool = True) -> tuple[np.ndarray, np.ndarray, bool]:
    """(wavelength, pathloss, inside) at source position (xc, yc) of a reference grid:
    1-D uniform data pass through; 3-D point data are interpolated bilinearly at the grid
    index of the position (build 10.0's weights: a11 on [row+1, col+1], a12 on [row, col+1],
    a21 on [row+1, col], a22 on [row, col])."""
    nw = data.shape[0]
    if data.ndim == 1:
        wave = w["crval1"] + (np.arange(nw) + 1.0 - w["crpix1"]) * w["cdelt1"]
        return wave, np.asarray(data, np.float64), True
    wave = (w["crval3"] + (np.arange(nw) + 1.0 - w["crpix3"]) * w["cdelt3"]) if calc_wave \
        else np.zeros(nw)
    _, nrows, ncols = data.shape
    col = w["crpix1"] + (xc - w["crval1"]) / w["cdelt1"] - 1.0
    row = w["crpix2"] + (yc - w["crval2"]) / w["cdelt2"] - 1.0
    if col < 0 or col >= ncols - 1 or row < 0 or row >= nrows - 1:
        return wave, np.zeros(nw), False
    j, i = int(col), int(row)
    dx1 = col - j
    dy1 = row - i
    dx2, dy2 = 1.0 - dx1, 1.0 - dy1
    d = np.asarray(data, np.float64)
    vec = (dx2 * dy2 * d[:, i, j] + dx2 * dy1 * d[:, i + 1, j]
           + dx1 * dy2 * d[:, i, j + 1] + dx1 * dy1 * d[:, i + 1, j + 1])
    return wave, vec, True


def onto_grid(wl2d: np.ndarray, wave: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """The vector interpolated at each pixel's wavelength; NaN outside its range (jwst)."""
    wl = np.asarray(wl2d, np.float64)
    return np.interp(wl, wave, vec, left=np.nan, right=np.nan)


def _apertures(ref: DataModel) -> list[str]:
    out, i = [], 0
    while ref.get(f"apertures.{i}.name") is not None:
        out.append(f"apertures.{i}")
        i += 1
    return out


def shutter_closed_below(state: str) -> bool:
    k = state.find("x")
    return k == 0 or state[k - 1] == "0"


def shutter_closed_above(state: str) -> bool:
    k = state.find("x")
    return k == len(state) - 1 or state[k + 1] == "0"


def find_aperture(ref: DataModel, et: str, match: str) -> str | None:
    aps = _apertures(ref)
    if et == "NRS_MSASPEC":
        size = 1 if (shutter_closed_below(match) and shutter_closed_above(match)) else 3
        for a in aps:
            if int(ref.get(f"{a}.shutters") or 0) == size:
                return a
        return None
    for a in aps:
        if str(ref.get(f"{a}.name")).upper() == str(match).upper():
            return a
    return None


def _uniform_two_shutter(ref: DataModel) -> tuple[np.ndarray, np.ndarray] | None:
    by = {str(ref.get(f"{a}.name")).upper(): a for a in _apertures(ref)}
    if set(by) != {"MOS1X1", "MOS1X3"}:
        return None
    a1, a3 = by["MOS1X1"], by["MOS1X3"]
    keys = ("crval1", "crpix1", "cdelt1")
    w1, w3 = _wcs(ref, f"{a1}.uniform_wcs", keys), _wcs(ref, f"{a3}.uniform_wcs", keys)
    u1, u3 = np.asarray(ref[f"{a1}.uniform_data"]), np.asarray(ref[f"{a3}.uniform_data"])
    if w1 != w3 or u1.shape != u3.shape:
        return None
    wave, _, _ = pathloss_vector(u1, w1, 0.0, 0.0)
    return wave, 0.5 * (u1.astype(np.float64) + u3.astype(np.float64))


# --------------------------------------------------------------------------------------------
# NIRSpec
# --------------------------------------------------------------------------------------------

def nirspec_correction(ref: DataModel, et: str, sm: Mapping[str, Any], wl: np.ndarray,
                       wl_uncorr: np.ndarray | None, point: bool
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(correction applied, point 2-D, uniform 2-D) for one slit, None when there is none."""
    xc = float(sm.get("source_xpos") or 0.0)
    yc = float(sm.get("source_ypos") or 0.0)
    state = str(sm.get("shutter_state") or "x")
    ap = find_aperture(ref, et, state if et == "NRS_MSASPEC" else str(sm.get("name")))
    if ap is None:
        return None
    if et == "NRS_MSASPEC":
        below, above = shutter_closed_below(state), shutter_closed_above(state)
        if below and not above:
            yc -= 1.0
        elif above and not below:
            yc += 1.0
    pkeys = ("crpix1", "crval1", "cdelt1", "crpix2", "crval2", "cdelt2", "crpix3", "crval3",
             "cdelt3")
    wave_p, vec_p, inside = pathloss_vector(np.asarray(ref[f"{ap}.pointsource_data"]),
                                            _wcs(ref, f"{ap}.pointsource_wcs", pkeys), xc, yc)
    if et == "NRS_MSASPEC" and len(state) == 2 and _uniform_two_shutter(ref) is not None:
        wave_u, vec_u = _uniform_two_shutter(ref)
    else:
        wave_u, vec_u, _ = pathloss_vector(np.asarray(ref[f"{ap}.uniform_data"]),
                                           _wcs(ref, f"{ap}.uniform_wcs",
                                                ("crpix1", "crval1", "cdelt1")), xc, yc)
    if not inside:
        return None
    wave_p, wave_u = wave_p * 1e6, wave_u * 1e6  # meters in the file
    if point and et == "NRS_FIXEDSLIT" and wl_uncorr is not None:
        ps = onto_grid(wl, wave_p, vec_p)
        un = onto_grid(wl_uncorr, wave_u, vec_u)
    else:
        ps = onto_grid(wl, wave_p, vec_p)
        un = onto_grid(wl, wave_u, vec_u)
    return (ps if point else un), ps, un


def nirspec(model: DataModel, ref: DataModel, params: PathlossParams) -> DataModel:
    from transforms.instruments.nirspec import slits as N

    et = exp_type(model)
    ups = {}
    for name in slit_names(model):
        arrays = slit_arrays(model, name)
        sm = slit_meta(model, name)
        if "data" not in arrays or np.size(arrays["data"]) == 0 or "wavelength" not in arrays:
            continue
        point = srctype_of(model, sm, params.source_type) == "POINT"
        wl = np.asarray(arrays["wavelength"], np.float64)
        wl_u = None
        p = sm.get("wcs")
        if isinstance(p, Mapping) and p.get("wavecorr"):
            wl_u = N.wavelength_array({k: v for k, v in p.items() if k != "wavecorr"})
        corr = nirspec_correction(ref, et, sm, wl, wl_u if wl_u is not None else wl, point)
        if corr is None:
            continue
        c, ps, un = corr
        out = scale_arrays(arrays, c, params.inverse)
        match_nans_and_flags(out)
        out["pathloss_point"] = ps.astype(np.float32)
        out["pathloss_uniform"] = un.astype(np.float32)
        ups[name] = (out, {"pathloss_correction_type": "POINT" if point else "UNIFORM"})
    return update_slits(model, ups, {"cal_step.pathloss": "COMPLETE" if ups else "SKIPPED"})


# --------------------------------------------------------------------------------------------
# MIRI LRS
# --------------------------------------------------------------------------------------------

def lrs_target_offset(model: DataModel) -> tuple[float, float]:
    """The target's (x, y) offset in pixels from the slit reference point, from the target
    RA/Dec through the slit model (x along the slit, y across it)."""
    from transforms.wcs import pointing_model, va_model

    p = {k[4:]: v for k, v in model.meta.items() if k.startswith("wcs.")}
    if p.get("model") != L.MODEL:
        raise Spec2Error(f"{NAME}: the exposure has no LRS WCS; run assign_wcs (2.0) first")
    ra, dec = model.require("target.ra", "target.dec")
    v2, v3 = (va_model(model.meta) | pointing_model(model.meta)).inverse(float(ra), float(dec))
    xs, ys = L.v2v3_to_slit(p, v2, v3)
    ps = p["pscale"]
    return float(ys) * p["length"] / ps, float(xs) * p["width"] / ps


def miri_lrs(model: DataModel, ref: DataModel, params: PathlossParams) -> DataModel:
    if srctype_of(model, None, params.source_type) != "POINT":
        return model.replace(meta={"cal_step.pathloss": "SKIPPED"})
    xc, yc = lrs_target_offset(model)  # (jwst 3.0's targ_centroid would refine it)
    p = {k[4:]: v for k, v in model.meta.items() if k.startswith("wcs.")}
    w = {k: float(ref.get(f"wcsinfo.{k}")) for k in ("crpix1", "crval1", "cdelt1", "crpix2",
                                                     "crval2", "cdelt2")}
    data = np.asarray(ref["pathloss_table.pathloss"], np.float64)
    if params.user_slit_loc is not None:  # arcsec across the slit -> pixels
        yc = yc + float(params.user_slit_loc) / float(p["pscale"])
    _, vec, inside = pathloss_vector(data, w, xc, yc, calc_wave=False)
    centred = False
    if not inside:  # build 10.0: outside the slit -> the slit centre's correction
        _, vec, _ = pathloss_vector(data, w, 0.0, 0.0, calc_wave=False)
        centred = True
    wave = np.asarray(ref["pathloss_table.wavelength"], np.float64)
    order = np.argsort(wave)
    wl = np.asarray(model["wavelength"], np.float64) if "wavelength" in model.arrays else \
        L.wavelength_array(p).astype(np.float64)
    corr = onto_grid(wl, wave[order], vec[order])
    arrays = {n: model[n] for n in ("data", "err", "var_poisson", "var_rnoise", "var_flat", "dq")
              if n in model.arrays}
    out = scale_arrays(arrays, corr, not params.inverse)  # LRS: multiplicative
    match_nans_and_flags(out)
    out["pathloss_point"] = corr.astype(np.float32)
    return model.replace(arrays=out, meta={"cal_step.pathloss": "COMPLETE",
                                           "calops.pathloss_target_offset": [xc, yc],
                                           "calops.pathloss_centred": centred})


@register(NAME, VERSION, "spec2", PathlossParams, ("pathloss",), keyword="S_PTHLOS")
def pathloss(model: DataModel, refs, params: PathlossParams) -> DataModel:
    """Correct NIRSpec FS/MOS slits and MIRI LRS point sources for slit losses."""
    et = exp_type(model)
    if et in NIRSPEC_SLIT_TYPES:
        if not slit_names(model):
            raise Spec2Error(f"{NAME}: NIRSpec slits are corrected after extract_2d")
        return nirspec(model, need_ref(refs, "pathloss", NAME), params)
    if et in MIRI_LRS_TYPES:
        return miri_lrs(model, need_ref(refs, "pathloss", NAME), params)
    return model.replace(meta={"cal_step.pathloss": "SKIPPED"})

