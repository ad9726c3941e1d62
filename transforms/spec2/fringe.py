"""fringe 1.0: divide MIRI MRS exposures by the fringe flat (jwst 3.0's FringeStep).

For MIR_MRS (anything else unchanged: jwst skips the step): ``data``, ``err`` divided by the
fringe reference's SCI, variances by its square, its DQ OR-ed in; pixels where the fringe
flat is not finite and positive get DO_NOT_USE (and NaN, jwst's NaN/flag consistency).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transforms import dq as DQ
from transforms.model import DataModel
from transforms.registry import register
from transforms.spec2._ifu_common import (IfuStepError, exp_type, match_nans_and_flags,
                                          scaled)

NAME, VERSION = "fringe", "1.0"


@dataclass(frozen=True)
class FringeParams:
    """jwst 3.0 FringeStep has no parameters."""


@register(NAME, VERSION, "spec2", FringeParams, (), keyword="S_FRINGE",
          optional_reftypes=("fringe",), instruments=("MIRI",))
def fringe(model: DataModel, refs: dict, params: FringeParams) -> DataModel:
    """MRS: divide by the fringe flat."""
    if exp_type(model) != "MIR_MRS":
        return model
    ref = (refs or {}).get("fringe")
    if ref is None:
        return model.replace(meta={"cal_step.fringe": "SKIPPED"})
    f = np.asarray(ref["data"], np.float64)
    if f.shape != model["data"].shape:
        raise IfuStepError(f"fringe: the fringe flat is {f.shape}, the data {model['data'].shape}")
    bad = ~np.isfinite(f) | (f <= 0)
    f = np.where(bad, 1.0, f)
    arrays = scaled(model, f, divide=True)
    dq = np.asarray(model["dq"]).astype(np.uint32) | np.asarray(
        ref.arrays.get("dq", np.zeros(f.shape, np.uint32))).astype(np.uint32)
    dq = np.where(bad, dq | DQ.DO_NOT_USE, dq)
    arrays = match_nans_and_flags(arrays, dq)
    return model.replace(arrays=arrays, meta={"cal_step.fringe": "COMPLETE"})
