"""photom: DN/s -> MJy/sr with the photom table row of the exposure's filter/pupil.

As ``jwst.photom`` for imaging: ``conversion = photmjsr`` of the matching row (columns
``filter``, ``pupil`` and optionally ``subarray`` held as arrays of the ``ref.photom`` model);
SCI and ERR are multiplied by it, the variances by its square. Pixel-area metadata
(``photometry.pixelarea_steradians/arcsecsq``) come from the AREA reference (else the photom
reference) and its ``data`` (subarray cut) becomes the product's ``area`` array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transforms.image2._common import Image2Error, cut_ref, match_nans_and_flags, need_arrays, \
    need_ref
from transforms.model import DataModel
from transforms.registry import register

NAME, VERSION = "photom", "1.0"
MJSR_TO_UJA2 = 1.0e12 * (np.pi / 180.0 / 3600.0) ** 2  # MJy/sr -> uJy/arcsec^2


@dataclass(frozen=True)
class PhotomParams:
    """JWST photom spec. ``source_type`` and ``apply_time_correction`` have no effect on imaging
    references without a time-dependence table (calops' references have none)."""

    inverse: bool = False
    source_type: str | None = None
    apply_time_correction: bool = True


def _s(v) -> str:
    return str(v).strip().upper()


def _column(ref: DataModel, name: str) -> np.ndarray | None:
    """A PHOTOM table column: ``phot_table.<name>`` as store.fits reads it (or bare ``name``)."""
    for key in (f"phot_table.{name}", name):
        if key in ref.arrays:
            return ref.arrays[key]
    return None


def find_row(ref: DataModel, filt: str, pupil: str, subarray: str | None) -> tuple[int, float]:
    """(row, photmjsr) of the photom row for filter/pupil(/subarray); a clear error if none."""
    filters, conv = _column(ref, "filter"), _column(ref, "photmjsr")
    if filters is None or conv is None:
        raise Image2Error(f"{NAME}: photom reference lacks the filter/photmjsr columns")
    n = len(conv)
    ok = np.array([_s(f) == _s(filt) for f in filters], bool)
    pupils, subarrays = _column(ref, "pupil"), _column(ref, "subarray")
    if pupils is not None:
        ok &= np.array([_s(p) == _s(pupil) for p in pupils], bool)
    if subarray is not None and subarrays is not None:
        ok &= np.array([_s(s) in (_s(subarray), "GENERIC") for s in subarrays], bool)
    rows = np.flatnonzero(ok[:n])
    if rows.size == 0:
        raise Image2Error(f"{NAME}: no photom row for filter={filt} pupil={pupil}; the reference "
                          "does not cover this exposure's optical elements")
    return int(rows[0]), float(conv[rows[0]])


@register(NAME, VERSION, "image2", PhotomParams, ("photom", "area"), keyword="S_PHOTOM")
def photom(model: DataModel, refs, params: PhotomParams) -> DataModel:
    """Calibrate to MJy/sr; record the conversion and the pixel area; attach the area map."""
    need_arrays(model, NAME, "data")
    ref = need_ref(refs, "photom", NAME)
    filt, pupil = model.require("instrument.filter")[0], model.get("instrument.pupil", "CLEAR")
    row, conv = find_row(ref, filt, pupil if pupil is not None else "CLEAR",
                         model.get("subarray.name"))
    if not np.isfinite(conv) or conv <= 0:
        raise Image2Error(f"{NAME}: photom row {row} has an invalid photmjsr ({conv})")
    area_ref = (refs or {}).get("area")
    src = area_ref if area_ref is not None and area_ref.get("photometry.pixelarea_steradians") \
        is not None else ref
    sr = src.get("photometry.pixelarea_steradians")
    a2 = src.get("photometry.pixelarea_arcsecsq")
    k = np.float32(1.0 / conv if params.inverse else conv)
    out: dict[str, np.ndarray] = {}
    for n in ("data", "err"):
        if n in model.arrays:
            out[n] = (np.asarray(model[n], np.float32) * k).astype(np.float32)
    for n in ("var_poisson", "var_rnoise", "var_flat"):
        if n in model.arrays:
            out[n] = (np.asarray(model[n], np.float32) * (k * k)).astype(np.float32)
    if "dq" in model.arrays:
        out["dq"] = np.asarray(model["dq"]).astype(np.uint32)
    match_nans_and_flags(out)
    shape = tuple(np.shape(model["data"])[-2:])
    if area_ref is not None and "data" in area_ref.arrays:
        out["area"] = np.ascontiguousarray(
            cut_ref(np.asarray(area_ref["data"], np.float32), area_ref.meta, model.meta, shape,
                    "area"))
    meta = {
        "photometry.conversion_megajanskys": conv,
        "photometry.conversion_microjanskys": conv * MJSR_TO_UJA2,
        "photometry.pixelarea_steradians": None if sr is None else float(sr),
        "photometry.pixelarea_arcsecsq": None if a2 is None else float(a2),
        "bunit_data": "DN/s" if params.inverse else "MJy/sr",
        "bunit_err": "DN/s" if params.inverse else "MJy/sr",
        "cal_step.photom": "COMPLETE",
    }
    return model.replace(arrays=out, meta=meta)
