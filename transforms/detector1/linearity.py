"""linearity: correct each group for the detector's non-linear response with a polynomial.

As stcal's group-by-group correction: ``corrected = sum_k coeffs[k] * counts**k`` for every group
not flagged SATURATED (saturated groups are left as measured). Pixels whose coefficients hold a
NaN, whose linear term is 0, or whose reference DQ says NO_LIN_CORR are left uncorrected and
get NO_LIN_CORR in pixeldq; the reference DQ is OR-ed into pixeldq. A zero frame is corrected
too (its exact zeros, meaning unusable, stay 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from transforms import dq as DQ
from transforms.detector1._kernels_threads import for_rows, readonly
from transforms.model import DataModel
from transforms.registry import register

from ._subarray import apply_by_copy, cut_ref, need_ref

NAME = "linearity"
VERSION = "1.0"


@dataclass(frozen=True)
class LinearityParams:
    """JWST's linearity has no parameters."""


@njit(nogil=True, cache=True, error_model="numpy")
def _correct_rows(row0, row1, data, gdq, coeffs, skip, sat):
    ng, ny, nx = data.shape
    nc = coeffs.shape[0]
    for y in range(row0, row1):
        sk = skip[y]
        acc = np.empty(nx, coeffs.dtype)
        top = coeffs[nc - 1, y]
        for g in range(ng):
            d = data[g, y]
            q = gdq[g, y]
            for x in range(nx):
                acc[x] = top[x]
            for k in range(nc - 2, -1, -1):
                c = coeffs[k, y]
                for x in range(nx):
                    acc[x] = acc[x] * d[x] + c[x]
            for x in range(nx):
                if not sk[x] and (q[x] & sat) == 0:
                    d[x] = acc[x]


def _correct(data, gdq, coeffs, skip, sat):
    """Horner evaluation of the polynomial per pixel (in the coefficients' precision: float32
    for JWST references, as stcal), for groups not SATURATED of pixels not skipped. One row at
    a time, the loops run over columns so the compiler vectorises them (same operations, in the
    same order, for every pixel)."""
    for_rows(_correct_rows, data.shape[1], data, gdq, readonly(coeffs, coeffs.dtype),
             readonly(skip, np.bool_), sat)


def prepare(lin: DataModel, meta: Mapping[str, Any],
            shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(coefficients (ncoeffs, ny, nx), a view when possible; skip mask; dq for pixeldq)."""
    if "coeffs" not in lin.arrays:
        raise ValueError("linearity: the linearity reference has no 'coeffs' array")
    coeffs = cut_ref(lin, "coeffs", meta, shape)
    if coeffs.ndim != 3 or coeffs.shape[0] < 2:
        raise ValueError(f"linearity: coeffs must be (ncoeffs >= 2, ny, nx), got {coeffs.shape}")
    if coeffs.dtype not in (np.float32, np.float64):
        coeffs = coeffs.astype(np.float64)
    if "dq" in lin.arrays:
        ldq = np.array(cut_ref(lin, "dq", meta, shape), dtype=np.uint32)
    else:
        ldq = np.zeros(shape, dtype=np.uint32)
    bad = np.isnan(coeffs).any(axis=0) | (coeffs[1] == 0)
    ldq[bad] |= np.uint32(DQ.NO_LIN_CORR)
    skip = (ldq & np.uint32(DQ.NO_LIN_CORR)) != 0
    return coeffs, skip, ldq


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: LinearityParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Linearize the ramp buffer in place."""
    data, gdq, pdq = arrays["data"], arrays["groupdq"], arrays["pixeldq"]
    nints, ngroups, ny, nx = data.shape
    coeffs, skip, ldq = prepare(need_ref(refs, "linearity", NAME), meta, (ny, nx))
    sat = np.uint8(DQ.SATURATED)
    for i in range(nints):
        _correct(data[i], gdq[i], coeffs, skip, sat)
    zf = arrays.get("zeroframe")
    if zf is not None:
        unusable = zf == 0.0
        _correct(zf, np.zeros(zf.shape, np.uint8), coeffs, skip, sat)
        zf[unusable] = 0.0
    np.bitwise_or(pdq, ldq, out=pdq)
    return {f"cal_step.{NAME}": "COMPLETE"}


@register(NAME, VERSION, "detector1", LinearityParams, ("linearity",),
          keyword="S_LINEAR", inplace=apply_inplace)
def apply(model: DataModel, refs: Mapping[str, DataModel], params: LinearityParams) -> DataModel:
    """Polynomial linearity correction of unsaturated groups; NO_LIN_CORR where impossible."""
    return apply_by_copy(model, refs, params, NAME, apply_inplace)
