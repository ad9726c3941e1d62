"""dq_init: turn a level-1b ``uncal`` into a ``ramp`` and seed its pixel DQ from the mask.

This is the one place the uint16 -> float32 conversion of the 4-D ramp happens: ``to_ramp``
makes the float32 ``data``, zeroed uint8 ``groupdq`` and uint32 ``pixeldq`` (and a float32
``zeroframe`` when the exposure has one). ``pixeldq |= mask.dq`` (cut to the subarray) as in
JWST's dq_initialization.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from transforms.detector1._kernels_threads import for_rows
from transforms.dq import GROUPDQ_DTYPE, PIXELDQ_DTYPE
from transforms.model import DataModel
from transforms.registry import register

from ._subarray import cut_ref, need_ref

NAME = "dq_init"
VERSION = "1.0"


@dataclass(frozen=True)
class DQInitParams:
    """JWST's dq_init parameters. A user DQ file must come in as the 'mask' reference."""

    user_supplied_dq: str | None = None


@njit(nogil=True, cache=True, error_model="numpy")
def _convert_rows(row0, row1, src, dst):
    nints, ngroups, ny, nx = src.shape
    for r in range(row0, row1):
        i = r // (ngroups * ny)
        g = (r // ny) % ngroups
        y = r % ny
        s = src[i, g, y]
        d = dst[i, g, y]
        for x in range(nx):
            d[x] = np.float32(s[x])


def _convert(src, dst):
    """dst[...] = src as float32, in parallel over image rows (first touch of the new buffer
    is spread over the threads too)."""
    for_rows(_convert_rows, src.shape[0] * src.shape[1] * src.shape[2], src, dst)


def _as_float32(data: np.ndarray) -> np.ndarray:
    """A new float32 copy of the 4-D ramp (numba for the usual uint16 uncal, numpy otherwise)."""
    if data.dtype == np.uint16 and data.flags.c_contiguous and data.size >= 1 << 16:
        out = np.empty(data.shape, dtype=np.float32)
        v = data.view()
        v.flags.writeable = False
        _convert(v, out)
        return out
    return np.array(data, dtype=np.float32, copy=True)


def to_ramp(uncal: DataModel) -> dict[str, np.ndarray]:
    """Fresh writable ramp arrays from an uncal: the single uint16 -> float32 conversion."""
    if uncal.kind not in ("uncal", "ramp"):
        raise ValueError(f"dq_init takes an 'uncal' product, got {uncal.kind!r}")
    if "data" not in uncal.arrays or uncal["data"].ndim != 4:
        shape = uncal["data"].shape if "data" in uncal.arrays else None
        raise ValueError(f"dq_init: uncal data must be 4-D (nints, ngroups, ny, nx), got {shape}")
    data = uncal["data"]
    out = {"data": _as_float32(data)}
    if "groupdq" in uncal.arrays:
        out["groupdq"] = np.array(uncal["groupdq"], dtype=GROUPDQ_DTYPE, copy=True)
    else:
        out["groupdq"] = np.zeros(data.shape, dtype=GROUPDQ_DTYPE)
    if "pixeldq" in uncal.arrays:
        out["pixeldq"] = np.array(uncal["pixeldq"], dtype=PIXELDQ_DTYPE, copy=True)
    else:
        out["pixeldq"] = np.zeros(data.shape[-2:], dtype=PIXELDQ_DTYPE)
    if "zeroframe" in uncal.arrays:
        out["zeroframe"] = np.array(uncal["zeroframe"], dtype=np.float32, copy=True)
    return out


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: DQInitParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """OR the mask reference's DQ into pixeldq; returns the metadata updates."""
    if params.user_supplied_dq is not None:
        raise ValueError("dq_init: user_supplied_dq is a file path and transforms read no files; "
                         "pass that DQ as the 'mask' reference instead")
    mask = need_ref(refs, "mask", NAME)
    if "dq" not in mask.arrays:
        raise ValueError("dq_init: the mask reference has no 'dq' array")
    pdq = arrays["pixeldq"]
    mdq = cut_ref(mask, "dq", meta, pdq.shape)
    np.bitwise_or(pdq, mdq.astype(PIXELDQ_DTYPE, copy=False), out=pdq)
    return {f"cal_step.{NAME}": "COMPLETE"}


@register(NAME, VERSION, "detector1", DQInitParams, ("mask",),
          keyword="S_DQINIT", inplace=apply_inplace)
def apply(model: DataModel, refs: Mapping[str, DataModel], params: DQInitParams) -> DataModel:
    """uncal -> ramp: float32 data, zero groupdq, pixeldq from the mask reference."""
    arrays = to_ramp(model)
    updates = apply_inplace(arrays, refs, params, model.meta)
    return model.replace(kind="ramp", arrays=arrays, meta=updates)
