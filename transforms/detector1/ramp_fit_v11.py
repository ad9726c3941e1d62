"""ramp_fit 1.1: version 1.0, plus DO_NOT_USE where the read-noise reference is not finite.

Version 1.0 returns a NaN rate without DO_NOT_USE for a pixel whose READNOISE value is NaN
(found by a hypothesis property: every NaN rate must be flagged). Fixing it changes outputs, so
the fix is a new version beside 1.0: builds that pinned 1.0 reproduce their products exactly.
For such pixels the rate, its error and variances are NaN and DQ gets DO_NOT_USE, in the rate
and in every integration of the rateints.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from transforms import dq as DQ
from transforms.detector1 import ramp_fit as v10
from transforms.detector1._subarray import check_ramp, cut_ref, need_ref
from transforms.model import DataModel
from transforms.registry import register

NAME = "ramp_fit"
VERSION = "1.1"
RampFitParams = v10.RampFitParams
SCIENCE = ("data", "err", "var_poisson", "var_rnoise")


def _flag(model: DataModel, bad: np.ndarray) -> DataModel:
    arrays = {}
    for name in SCIENCE:
        if name in model.arrays:
            a = np.array(model[name])
            a[..., bad] = np.nan
            arrays[name] = a
    dq = np.array(model["dq"])
    dq[..., bad] |= np.uint32(DQ.DO_NOT_USE)
    arrays["dq"] = dq
    return model.replace(arrays=arrays)


def fit_ramps(model: DataModel, refs: Mapping[str, DataModel],
              params: RampFitParams = RampFitParams()) -> tuple[DataModel, DataModel]:
    """As version 1.0, with pixels of non-finite read noise flagged DO_NOT_USE."""
    rate, ints = v10.fit_ramps(model, refs, params)
    check_ramp(model, NAME)
    rn = cut_ref(need_ref(refs, "readnoise", NAME), "data", model.meta, model["data"].shape[-2:])
    bad = ~np.isfinite(rn)
    if not bad.any():
        return rate, ints
    return _flag(rate, bad), _flag(ints, bad)


@register(NAME, VERSION, "detector1", RampFitParams, ("gain", "readnoise"),
          keyword="S_RAMP", fit=fit_ramps, exec_only=("maximum_cores",))
def apply(model: DataModel, refs: Mapping[str, DataModel], params: RampFitParams) -> DataModel:
    """Fit ramps to count rates; non-finite read noise gives DO_NOT_USE (see module doc)."""
    return fit_ramps(model, refs, params)[0]
