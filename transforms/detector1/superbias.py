"""superbias: subtract the superbias reference from every group (and the zero frame).

As JWST's bias_sub: NaNs in the superbias are treated as 0, the reference's DQ is OR-ed into
pixeldq, and zero-frame pixels that are exactly 0 (unusable) stay 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from transforms.detector1._kernels_threads import for_rows, readonly
from transforms.model import DataModel
from transforms.registry import register

from ._subarray import apply_by_copy, cut_ref, need_ref

NAME = "superbias"
VERSION = "1.0"


@dataclass(frozen=True)
class SuperbiasParams:
    """JWST's superbias has no parameters."""


@njit(nogil=True, cache=True, error_model="numpy")
def _subtract_rows(row0, row1, data, bias):
    n, ny, nx = data.shape
    for y in range(row0, row1):
        for k in range(n):
            for x in range(nx):
                b = bias[y, x]
                if b == b:
                    data[k, y, x] -= b


def _subtract(data, bias):
    """data[..., y, x] -= bias[y, x] for a (n, ny, nx) stack, NaN bias counted as 0."""
    for_rows(_subtract_rows, data.shape[1], data, readonly(bias, bias.dtype))


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: SuperbiasParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Subtract the superbias from the ramp buffer in place."""
    ref = need_ref(refs, "superbias", NAME)
    data, pdq = arrays["data"], arrays["pixeldq"]
    nints, ngroups, ny, nx = data.shape
    bias = np.ascontiguousarray(cut_ref(ref, "data", meta, (ny, nx)),
                                dtype=np.float32)
    for i in range(nints):
        _subtract(data[i], bias)
    if "dq" in ref.arrays:
        np.bitwise_or(pdq, cut_ref(ref, "dq", meta, (ny, nx)).astype(np.uint32),
                      out=pdq)
    zf = arrays.get("zeroframe")
    if zf is not None:
        unusable = zf == 0.0
        _subtract(zf, bias)
        zf[unusable] = 0.0
    return {f"cal_step.{NAME}": "COMPLETE"}


@register(NAME, VERSION, "detector1", SuperbiasParams, ("superbias",),
          keyword="S_SUPERB", inplace=apply_inplace)
def apply(model: DataModel, refs: Mapping[str, DataModel], params: SuperbiasParams) -> DataModel:
    """Subtract the superbias (cut to the subarray) from each group."""
    return apply_by_copy(model, refs, params, NAME, apply_inplace)
