"""photom 2.0: version 1.0 for imaging; wavelength-dependent flux calibration of spectra.

Imaging goes to ``transforms.image2.photom`` (1.0) unchanged. For spectra, as jwst 3.0's
``photom_io`` with a spectroscopic PHOTOM table (columns filter, grating[, slit] or subarray,
PHOTMJ or PHOTMJSR, NELEM, WAVELENGTH, RELRESPONSE):

- **NIRSpec FS/MOS** (NrsFsPhotomModel row per filter/grating/slit; NrsMosPhotomModel per
  filter/grating): the conversion is ``PHOTMJ x RELRESPONSE(lambda)`` at each pixel's
  wavelength (MJy per DN/s): point sources come out in **MJy** (flux density per pixel, summing
  to the source's flux density across the slit); extended sources are divided by the pixel's
  solid angle from the AREA reference (``pixarea`` per slit, or per shutter: quadrant,
  shutter_x, shutter_y; arcsec^2) and come out in **MJy/sr**. A fixed-slit point source is
  calibrated at its wavecorr-corrected wavelengths (``photom_point``), the uniform version
  kept as ``photom_uniform``. BUNIT is set per slit; the exposure's is cleared.
- **MIRI LRS** (MirLrsPhotomModel row per filter/subarray): ``PHOTMJSR x RELRESPONSE``, output
  **MJy/sr** whatever the source type; the pixel solid angle (AREA, else PHOTOM header) goes to
  ``photometry.pixelarea_*``.

Pixels whose wavelength is outside the table get conversion 0 and DO_NOT_USE (then NaN).
``photometry.conversion_megajanskys`` holds the scalar (PHOTMJ, or PHOTMJ/area).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms.image2 import photom as v10
from transforms.instruments.nirspec import slits as N
from transforms.model import DataModel
from transforms.registry import register
from transforms.spec2._common import (MIRI_LRS_TYPES, NIRSPEC_SLIT_TYPES, Spec2Error, exp_type,
                                      match_nans_and_flags, need_ref, scale_arrays,
                                      slit_arrays, slit_meta, slit_names, srctype_of,
                                      update_slits)

NAME, VERSION = "photom", "2.0"
PhotomParams = v10.PhotomParams
A2_TO_SR = (np.pi / 180.0 / 3600.0) ** 2
MJSR_TO_UJA2 = v10.MJSR_TO_UJA2


def _col(ref: DataModel, name: str) -> np.ndarray | None:
    return ref.arrays.get(f"phot_table.{name}")


def _s(v) -> str:
    return str(v).strip().upper()


def find_row(ref: DataModel, match: Mapping[str, str]) -> int | None:
    """The first PHOTOM row whose columns equal ``match`` (case-insensitive)."""
    n = len(_col(ref, "wavelength"))
    ok = np.ones(n, bool)
    for col, val in match.items():
        c = _col(ref, col)
        if c is None:
            return None
        ok &= np.array([_s(v) == _s(val) for v in c], bool)
    rows = np.flatnonzero(ok)
    return int(rows[0]) if rows.size else None


def response(ref: DataModel, row: int) -> tuple[np.ndarray, np.ndarray]:
    """(wavelength in micron, relresponse) of a row, increasing, trimmed to NELEM."""
    w = np.asarray(_col(ref, "wavelength")[row], np.float64)
    r = np.asarray(_col(ref, "relresponse")[row], np.float64)
    ne = _col(ref, "nelem")
    if ne is not None:
        n = int(ne[row])
        w, r = w[:n], r[:n]
    if not np.all(np.diff(w) > 0):
        o = np.argsort(w)
        w, r = w[o], r[o]
    if 0 < w.max() < 1e-4:
        w = w * 1e6
    return w, r


def conversion_2d(scalar: float, w: np.ndarray, r: np.ndarray, wl: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(scalar x relresponse at each pixel's wavelength, mask of pixels without one)."""
    lam = np.where(np.isfinite(wl), wl, -1.0)
    conv = np.interp(lam, w, r, left=np.nan, right=np.nan)
    no = np.isnan(conv)
    return np.where(no, 0.0, scalar * conv), no


def nirspec_area_a2(area: DataModel | None, et: str, sm: Mapping[str, Any]) -> float | None:
    """Pixel solid angle (arcsec^2) of a slit from the AREA table; None if not found."""
    if area is None:
        return None
    pix = area.arrays.get("area_table.pixarea")
    if pix is None:
        return None
    if et == "NRS_MSASPEC":
        sid = int(sm.get("shutter_id") or 0)
        xcen, ycen = (sid - 1) % N.NROWS_Q + 1, (sid - 1) // N.NROWS_Q + 1
        q = area["area_table.quadrant"]
        sx, sy = area["area_table.shutter_x"], area["area_table.shutter_y"]
        hit = np.flatnonzero((q == int(sm.get("quadrant") or 0)) & (sx == xcen) & (sy == ycen))
    else:
        ids = [_s(v) for v in area["area_table.slit_id"]]
        hit = np.array([i for i, v in enumerate(ids) if v == _s(sm.get("name"))])
    return float(pix[hit[0]]) if hit.size else None


def nirspec(model: DataModel, refs: Mapping[str, DataModel], params: PhotomParams
            ) -> DataModel:
    et = exp_type(model)
    ref = need_ref(refs, "photom", NAME)
    area = (refs or {}).get("area")
    filt, grating = model.require("instrument.filter", "instrument.grating")
    ups = {}
    for name in slit_names(model):
        arrays = slit_arrays(model, name)
        sm = slit_meta(model, name)
        if "data" not in arrays or np.size(arrays["data"]) == 0:
            continue
        match = {"filter": filt, "grating": grating}
        if et == "NRS_FIXEDSLIT":
            match["slit"] = name
        row = find_row(ref, match)
        if row is None:
            continue
        photmj = float(_col(ref, "photmj")[row])
        w, r = response(ref, row)
        point = srctype_of(model, sm, params.source_type) == "POINT"
        a2 = nirspec_area_a2(area, et, sm)
        sr = None if a2 is None else a2 * A2_TO_SR
        wl = np.asarray(arrays.get("wavelength"), np.float64)
        planes: dict[str, np.ndarray] = {}
        smeta: dict[str, Any] = {"pixelarea_steradians": sr, "pixelarea_arcsecsq": a2}
        if point:
            scalar = photmj
            unit = "MJy"
            if et == "NRS_FIXEDSLIT" and sr is not None:
                p = sm.get("wcs")
                wl_u = wl
                if isinstance(p, Mapping) and p.get("wavecorr"):
                    wl_u = N.wavelength_array({k: v for k, v in p.items() if k != "wavecorr"})
                planes["photom_uniform"] = conversion_2d(photmj / sr, w, r, wl_u)[0].astype(
                    np.float32)
        else:
            if sr is None:
                raise Spec2Error(f"{NAME}: slit {name} of an extended source needs its pixel "
                                 "area (AREA reference) to give MJy/sr")
            scalar = photmj / sr
            unit = "MJy/sr"
        conv, no = conversion_2d(scalar, w, r, wl)
        if et == "NRS_FIXEDSLIT" and point and "photom_uniform" in planes:
            planes["photom_point"] = conv.astype(np.float32)
        out = scale_arrays(arrays, np.where(no, 1.0, conv), not params.inverse)
        out["dq"] = out["dq"] | np.where(no, np.uint32(DQ.DO_NOT_USE), np.uint32(0))
        out = {k: (np.where(no, np.nan, v) if k != "dq" else v) for k, v in out.items()}
        match_nans_and_flags(out)
        out.update(planes)
        smeta.update({"bunit_data": "DN/s" if params.inverse else unit,
                      "bunit_err": "DN/s" if params.inverse else unit,
                      "conversion_megajanskys": scalar,
                      "conversion_microjanskys": scalar * MJSR_TO_UJA2})
        ups[name] = (out, smeta)
    meta = {"cal_step.photom": "COMPLETE" if ups else "SKIPPED",
            "bunit_data": "DN/s" if params.inverse else None,
            "bunit_err": "DN/s" if params.inverse else None}
    return update_slits(model, ups, meta)


def miri_lrs(model: DataModel, refs: Mapping[str, DataModel], params: PhotomParams
             ) -> DataModel:
    ref = need_ref(refs, "photom", NAME)
    filt = model.require("instrument.filter")[0]
    sub = str(model.get("subarray.name") or "FULL")
    row = find_row(ref, {"filter": filt, "subarray": sub})
    if row is None:
        row = find_row(ref, {"filter": filt, "subarray": "GENERIC"})
    if row is None:
        raise Spec2Error(f"{NAME}: no MIRI LRS photom row for {filt}/{sub}")
    photmjsr = float(_col(ref, "photmjsr")[row])
    w, r = response(ref, row)
    wl = np.asarray(model["wavelength"], np.float64) if "wavelength" in model.arrays else None
    if wl is None:
        raise Spec2Error(f"{NAME}: the LRS exposure has no wavelength plane; run assign_wcs")
    conv, no = conversion_2d(photmjsr, w, r, wl)
    arrays = {n: model[n] for n in ("data", "err", "var_poisson", "var_rnoise", "var_flat", "dq")
              if n in model.arrays}
    out = scale_arrays(arrays, np.where(no, 1.0, conv), not params.inverse)
    if "dq" in out:
        out["dq"] = out["dq"] | np.where(no, np.uint32(DQ.DO_NOT_USE), np.uint32(0))
    out = {k: (np.where(no, np.nan, v) if k != "dq" else v) for k, v in out.items()}
    match_nans_and_flags(out)
    area = (refs or {}).get("area")
    src = area if area is not None and area.get("photometry.pixelarea_steradians") else ref
    sr = src.get("photometry.pixelarea_steradians")
    a2 = src.get("photometry.pixelarea_arcsecsq")
    unit = "DN/s" if params.inverse else "MJy/sr"
    meta = {"cal_step.photom": "COMPLETE", "bunit_data": unit, "bunit_err": unit,
            "photometry.conversion_megajanskys": photmjsr,
            "photometry.conversion_microjanskys": photmjsr * MJSR_TO_UJA2,
            "photometry.pixelarea_steradians": None if sr is None else float(sr),
            "photometry.pixelarea_arcsecsq": None if a2 is None else float(a2)}
    return model.replace(arrays=out, meta=meta)


@register(NAME, VERSION, "spec2", PhotomParams, ("photom", "area"), keyword="S_PHOTOM")
def photom(model: DataModel, refs, params: PhotomParams) -> DataModel:
    """Imaging as version 1.0; NIRSpec FS/MOS in MJy (point) or MJy/sr, MIRI LRS in MJy/sr."""
    et = exp_type(model)
    if et in NIRSPEC_SLIT_TYPES:
        if not slit_names(model):
            raise Spec2Error(f"{NAME}: NIRSpec slits are calibrated after extract_2d")
        return nirspec(model, refs or {}, params)
    if et in MIRI_LRS_TYPES:
        return miri_lrs(model, refs or {}, params)
    return v10.photom(model, refs, params)
