"""photom for IFU exposures: a pure function that photom 2.1 calls for MIR_MRS and NRS_IFU.

- **MIRI MRS** (jwst 3.0 ``calc_miri``, MirMrsPhotomModel): ``data``, ``err`` times the
  reference's per-pixel SCI (MJy/sr per DN/s), variances times its square, its DQ OR-ed in;
  then, when ``apply_time_correction`` and the reference has the ``timecoeff_powerlaw_ch*``
  tables, **the MRS time-dependent correction** (build 10.0): the power-law throughput
  ``((t - t0 + tsoft)^alpha) / ((365 + tsoft)^alpha / year1value)`` at the exposure's
  ``exposure.mid_time`` (bounded at 1), interpolated at each pixel's wavelength per channel
  (linear, extrapolated, as ``RegularGridInterpolator(fill_value=None)``), divides the data
  (the variances by its square). BUNIT MJy/sr; ``photometry.conversion_megajanskys`` from the
  reference.
- **NIRSpec IFU** (``calc_nirspec`` for NRS_IFU, NrsMosPhotomModel): the conversion
  ``PHOTMJ / pixel area x RELRESPONSE(lambda)`` of the exposure's filter and grating at each
  pixel's wavelength, the pixel area the mean of the AREA reference's per-slice areas
  (NirspecIfuAreaModel, arcsec^2): the IFU is always calibrated as surface brightness
  (MJy/sr), whatever the source type (jwst: point sources are handled in the extraction);
  pixels outside the table get DO_NOT_USE.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms import ifu as I
from transforms.model import DataModel
from transforms.spec2._ifu_common import (IfuStepError, exp_type, match_nans_and_flags,
                                          need_ref, scaled)

A2_TO_SR = (np.pi / 180.0 / 3600.0) ** 2
MJSR_TO_UJA2 = 1.0e12 * A2_TO_SR  # MJy/sr -> uJy/arcsec^2


def _powerlaw(mid_time: float, t: Mapping[str, np.ndarray]) -> np.ndarray:
    t0 = np.asarray(t["t0"], np.float64)
    y1 = np.asarray(t["year1value"], np.float64)
    ts = np.asarray(t["tsoft"], np.float64)
    al = np.asarray(t["alpha"], np.float64)
    norm = (365.0 + ts) ** al / y1
    return np.minimum((mid_time - t0 + ts) ** al / norm, 1.0)


def _interp_extrap(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    order = np.argsort(xp)
    xp, fp = xp[order], fp[order]
    out = np.interp(x, xp, fp)
    if xp.size > 1:
        lo, hi = x < xp[0], x > xp[-1]
        out = np.where(lo, fp[0] + (fp[1] - fp[0]) / (xp[1] - xp[0]) * (x - xp[0]), out)
        out = np.where(hi, fp[-1] + (fp[-1] - fp[-2]) / (xp[-1] - xp[-2]) * (x - xp[-1]), out)
    return out


def mrs_time_correction(model: DataModel, ref: DataModel, px: I.Pixels) -> np.ndarray | None:
    """The per-pixel throughput at the exposure's mid time (1 off the slices); None if the
    reference has no time coefficients."""
    mid = model.get("exposure.mid_time")
    if mid is None:
        raise IfuStepError("photom: the MRS time correction needs exposure.mid_time")
    corr = np.ones(px.label.shape)
    any_table = False
    for ch in sorted({int(v) // 100 for v in np.unique(px.label[px.valid])}):
        cols = {k: ref.arrays.get(f"timecoeff_powerlaw_ch{ch}.{k}")
                for k in ("binwave", "alpha", "year1value", "tsoft", "t0")}
        if any(v is None for v in cols.values()):
            continue
        any_table = True
        sel = (px.label // 100) == ch
        c = _interp_extrap(px.lam[sel], np.asarray(cols["binwave"], np.float64),
                           _powerlaw(float(mid), cols))
        c = np.where(np.isfinite(c) & (c != 0), c, 1.0)
        corr[sel] = c
    return corr if any_table else None


def photom_mrs(model: DataModel, refs: Mapping[str, DataModel], params: Any) -> DataModel:
    ref = need_ref(refs, "photom", "photom")
    sens = np.asarray(ref["data"], np.float64)
    if sens.shape != model["data"].shape:
        raise IfuStepError(f"photom: the MRS photom reference is {sens.shape}, the data "
                           f"{model['data'].shape}")
    inverse = bool(getattr(params, "inverse", False))
    rdq = np.asarray(ref.arrays.get("dq", np.zeros(sens.shape, np.uint32))).astype(np.uint32)
    rdq = np.where(np.isnan(sens), rdq | DQ.DO_NOT_USE, rdq)
    arrays = scaled(model, sens, divide=inverse)
    dq = np.asarray(model["dq"]).astype(np.uint32) | rdq
    meta: dict[str, Any] = {}
    if getattr(params, "apply_time_correction", True):
        corr = mrs_time_correction(model, ref, I.pixels(model))
        if corr is not None:
            arrays = scaled(DataModel("cal", arrays), corr, divide=not inverse)
            meta["photometry.mrs_time_correction"] = True
    arrays = match_nans_and_flags(arrays, dq)
    conv = ref.get("photometry.conversion_megajanskys")
    unit = "DN/s" if inverse else "MJy/sr"
    meta.update({"photometry.conversion_megajanskys": conv,
                 "photometry.conversion_microjanskys": None if conv is None
                 else float(conv) * MJSR_TO_UJA2,
                 "photometry.pixelarea_steradians": ref.get("photometry.pixelarea_steradians"),
                 "photometry.pixelarea_arcsecsq": ref.get("photometry.pixelarea_arcsecsq"),
                 "bunit_data": unit, "bunit_err": unit, "cal_step.photom": "COMPLETE"})
    return model.replace(arrays=arrays, meta=meta)


def photom_nrs_ifu(model: DataModel, refs: Mapping[str, DataModel], params: Any) -> DataModel:
    """jwst's NRS_IFU branch: ``PHOTMJ / pixel area`` (the mean of the AREA reference's
    per-slice areas) times RELRESPONSE at each pixel's wavelength."""
    ref = need_ref(refs, "photom", "photom")
    filt = str(model.get("instrument.filter") or "").upper()
    grat = str(model.get("instrument.grating") or "").upper()
    f = ref.arrays.get("phot_table.filter")
    g = ref.arrays.get("phot_table.grating")
    if f is None or g is None:
        raise IfuStepError("photom: the NIRSpec IFU photom reference has no filter/grating "
                           "columns")
    rows = [i for i in range(len(f)) if str(f[i]).strip().upper() == filt
            and str(g[i]).strip().upper() == grat]
    if not rows:
        raise IfuStepError(f"photom: no photom row for {filt} {grat}")
    r = rows[0]
    photmj = float(np.asarray(ref.arrays["phot_table.photmj"])[r])
    n = int(np.asarray(ref.arrays["phot_table.nelem"])[r])
    wl = np.atleast_2d(np.asarray(ref.arrays["phot_table.wavelength"]))[r][:n].astype(np.float64)
    rr = np.atleast_2d(np.asarray(ref.arrays["phot_table.relresponse"]))[r][:n].astype(
        np.float64)
    area = (refs or {}).get("area")
    sr = a2 = None
    if area is not None and "area_table.pixarea" in area.arrays:
        a2 = float(np.nanmean(np.asarray(area.arrays["area_table.pixarea"], np.float64)))
        sr = a2 * A2_TO_SR
    conv_factor = photmj / sr if sr else photmj
    px = I.pixels(model)
    conv = np.zeros(px.label.shape)
    ok = px.valid
    order = np.argsort(wl)
    wl, rr = wl[order], rr[order]
    inside = ok & (px.lam >= wl.min()) & (px.lam <= wl.max())
    conv[inside] = conv_factor * np.interp(px.lam[inside], wl, rr)
    inverse = bool(getattr(params, "inverse", False))
    bad = ~(conv > 0)
    factor = np.where(bad, 1.0, conv)
    arrays = scaled(model, factor, divide=inverse)
    dq = np.asarray(model["dq"]).astype(np.uint32)
    dq = np.where(bad & ok, dq | DQ.DO_NOT_USE, dq)
    arrays = match_nans_and_flags(arrays, dq)
    unit = ("DN/s" if inverse else "MJy/sr") if sr else ("DN/s" if inverse else "MJy")
    return model.replace(arrays=arrays, meta={
        "photometry.conversion_megajanskys": conv_factor,
        "photometry.conversion_microjanskys": conv_factor * MJSR_TO_UJA2,
        "photometry.pixelarea_steradians": sr, "photometry.pixelarea_arcsecsq": a2,
        "bunit_data": unit, "bunit_err": unit, "cal_step.photom": "COMPLETE"})


def photom_ifu(model: DataModel, refs: Mapping[str, DataModel], params: Any) -> DataModel:
    """IFU photometric calibration (see the module docstring)."""
    et = exp_type(model)
    if et == "MIR_MRS":
        return photom_mrs(model, refs, params)
    if et == "NRS_IFU":
        return photom_nrs_ifu(model, refs, params)
    raise IfuStepError(f"photom_ifu: {et} is not an IFU exposure type")
