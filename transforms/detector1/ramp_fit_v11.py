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
from transforms.detector1._subarray import cut_ref, need_ref
from transforms.model import DataModel
from transforms.registry import register

NAME = "ramp_fit"
VERSION = "1.1"
RampFitParams = v10.RampFitParams
SCIENCE = ("data", "err", "var_poisson", "var_rnoise")


def _flag(arrays: dict[str, np.ndarray], bad: np.ndarray) -> None:
    """Flag ``bad`` pixels in new arrays this step owns (in place: no copy of the products)."""
    for name in SCIENCE:
        if name in arrays:
            arrays[name][..., bad] = np.nan
    arrays["dq"][..., bad] |= np.uint32(DQ.DO_NOT_USE)


def fit_ramps(model: DataModel, refs: Mapping[str, DataModel],
              params: RampFitParams = RampFitParams()) -> tuple[DataModel, DataModel]:
    """As version 1.0, with pixels of non-finite read noise flagged DO_NOT_USE."""
    rate, ints, meta = v10.fit_ramps_owned(model, refs, params)
    rn = cut_ref(need_ref(refs, "readnoise", NAME), "data", model.meta, model["data"].shape[-2:])
    bad = np.isfinite(rn)
    np.logical_not(bad, out=bad)  # in place: this runs at the chain's memory peak
    if bad.any():
        _flag(rate, bad)
        _flag(ints, bad)
    return DataModel("rate", rate, meta), DataModel("rateints", ints, meta)


@register(NAME, VERSION, "detector1", RampFitParams, ("gain", "readnoise"),
          keyword="S_RAMP", fit=fit_ramps, exec_only=("maximum_cores",))
def apply(model: DataModel, refs: Mapping[str, DataModel], params: RampFitParams) -> DataModel:
    """Fit ramps to count rates; non-finite read noise gives DO_NOT_USE (see module doc)."""
    return fit_ramps(model, refs, params)[0]
