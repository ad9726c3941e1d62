"""reset: subtract the MIRI reset anomaly (RESET reference) from the first groups.

As jwst 3.0's reset step: the RESET reference holds, for its ``exposure.nints`` integrations
and ``exposure.ngroups`` groups, the offsets (raw DN) the reset leaves in the first groups of an
integration. Groups ``0 .. min(ngroups_ref, ngroups) - 1`` of integration ``i`` get
``reset[min(i, nints_ref - 1), g]`` subtracted (the last reference integration serves every
later one; a segmented exposure counts from ``exposure.integration_start``). NaN in the
reference counts as 0; the reference DQ is OR-ed into pixeldq. MIRI only; runs before
linearity, on raw values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms.model import DataModel
from transforms.registry import register

from ._subarray import apply_by_copy, cut_ref, need_ref

NAME = "reset"
VERSION = "1.0"


@dataclass(frozen=True)
class ResetParams:
    """jwst's reset step has no parameters."""


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: ResetParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Subtract the reset reference from the first groups of the ramp buffer in place."""
    ref = need_ref(refs, "reset", NAME)
    data, pdq = arrays["data"], arrays["pixeldq"]
    nints, ngroups, ny, nx = data.shape
    rdata = cut_ref(ref, "data", meta, (ny, nx))
    if rdata.ndim != 4:
        raise ValueError(f"reset: the RESET reference data must be 4-D (nints, ngroups, ny, "
                         f"nx), got {rdata.shape}")
    nints_r = min(int(ref.get("exposure.nints") or rdata.shape[0]), rdata.shape[0])
    ngroups_r = min(int(ref.get("exposure.ngroups") or rdata.shape[1]), rdata.shape[1])
    first = int(meta.get("exposure.integration_start") or 1) - 1
    used = sorted({min(first + i, nints_r - 1) for i in range(nints)})
    # NaN counts as 0: copy only the planes used, and only when they hold a NaN
    planes = {ir: rdata[ir, :min(ngroups_r, ngroups)] for ir in used}
    for ir, p in planes.items():
        if np.isnan(p).any():
            planes[ir] = np.nan_to_num(p, nan=0.0)
    for i in range(nints):
        r = planes[min(first + i, nints_r - 1)]
        for g in range(r.shape[0]):
            np.subtract(data[i, g], r[g], out=data[i, g], casting="same_kind")
    if "dq" in ref.arrays:
        np.bitwise_or(pdq, cut_ref(ref, "dq", meta, (ny, nx)).astype(np.uint32), out=pdq)
    return {f"cal_step.{NAME}": "COMPLETE"}


@register(NAME, VERSION, "detector1", ResetParams, ("reset",), keyword="S_RESET",
          inplace=apply_inplace, instruments=("MIRI",))
def apply(model: DataModel, refs: Mapping[str, DataModel], params: ResetParams) -> DataModel:
    """Subtract the reset anomaly from the first groups of each integration (MIRI)."""
    return apply_by_copy(model, refs, params, NAME, apply_inplace)
