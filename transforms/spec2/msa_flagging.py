"""msa_flagging: flag pixels that see light through failed-open MSA shutters (MSA_FAILED_OPEN).

As jwst's MSAFlagOpenStep: the MSAOPER reference lists shutters whose ``state``, ``Internal
state`` or ``TA state`` is ``open``; each becomes a one-shutter slitlet (slit y -0.5..0.5) and
every pixel of the exposure where its WCS (``instruments.nirspec.slits``, the same model
assign_wcs used) gives a wavelength within range gets MSA_FAILED_OPEN. Runs on the exposure
(before extract_2d) for NIRSpec MOS (and IFU in jwst); other exposure types are SKIPPED.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from transforms import dq as DQ
from transforms.instruments.nirspec import slits as N
from transforms.model import DataModel
from transforms.registry import register
from transforms.spec2._common import Spec2Error, exp_type, need_ref

NAME, VERSION = "msa_flagging", "1.0"
FLAGGABLE_STATES = ("Internal state", "TA state", "state")
FAILED_OPEN = DQ.PIXEL["MSA_FAILED_OPEN"]


@dataclass(frozen=True)
class MsaFlaggingParams:
    """jwst 3.0 MSAFlagOpenStep has no parameters."""


def failed_open_shutters(ref: DataModel) -> list[tuple[int, int, int]]:
    """(quadrant, x = SHUTTER_ROW, y = SHUTTER_COLUMN) of every failed-open shutter."""
    rows = ref.get("msaoper")
    if isinstance(rows, str):
        rows = json.loads(rows)
    if not isinstance(rows, (list, tuple)):
        raise Spec2Error(f"{NAME}: the msaoper reference has no 'msaoper' list")
    out = []
    for r in rows:
        if any(str(r.get(s, "")).lower() == "open" for s in FLAGGABLE_STATES):
            out.append((int(r["Q"]), int(r["x"]), int(r["y"])))
    return out


@register(NAME, VERSION, "spec2", MsaFlaggingParams, ("msaoper",), keyword="S_MSAFLG",
          optional_reftypes=("disperser", "msa", "wavelengthrange"), instruments=("NIRSPEC",))
def msa_flagging(model: DataModel, refs, params: MsaFlaggingParams) -> DataModel:
    """DQ MSA_FAILED_OPEN where failed-open shutters put light on the detector."""
    if exp_type(model) != "NRS_MSASPEC":
        return model.replace(meta={"cal_step.msa_flagging": "SKIPPED"})
    if "dq" not in model.arrays:
        raise Spec2Error(f"{NAME}: the exposure has no dq array")
    shutters = failed_open_shutters(need_ref(refs, "msaoper", NAME))
    disperser = N.disperser_from_ref(need_ref(refs, "disperser", NAME))
    geometry = N.geometry_from_ref(need_ref(refs, "msa", NAME))
    grating, filt, det = model.require("instrument.grating", "instrument.filter",
                                       "instrument.detector")
    lo, hi = N.range_from_ref(need_ref(refs, "wavelengthrange", NAME), grating, filt)
    dq = np.array(model["dq"], dtype=np.uint32)
    ny, nx = dq.shape[-2:]
    sx = int(model.get("subarray.xstart") or 1)
    sy = int(model.get("subarray.ystart") or 1)
    for i, (q, x, y) in enumerate(shutters):
        sl = N.mos_slitlet(geometry, 1 + i, q, x, [y], y, 0, (-0.5, 0.5))
        sl = N.SlitGeometry(**{**sl.__dict__, "ymin": -0.5, "ymax": 0.5})
        box = N.slit_box(sl, disperser, grating, filt, det, (sx, sy, nx, ny), pad=0)
        if box is None:
            continue
        bx, by_, bnx, bny = box
        p = N.slit_params(sl, disperser, geometry, grating, filt, det,
                          (sx - 1 + bx, sy - 1 + by_), (bny, bnx))
        p["lrange"] = [lo, hi]
        flag = np.isfinite(N.wavelength_array(p))
        dq[..., by_:by_ + bny, bx:bx + bnx] |= np.where(flag, np.uint32(FAILED_OPEN),
                                                         np.uint32(0))
    return model.replace(arrays={"dq": dq}, meta={"cal_step.msa_flagging": "COMPLETE"})
