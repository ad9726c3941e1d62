"""charge_migration: flag groups where bright pixels start losing charge to their neighbours.

As JWST: in every integration, from the first group whose value exceeds ``signal_threshold``
(DN, strictly above, as JWST compares) and is not already DO_NOT_USE, that group and all later
ones of the pixel and of its 4 edge neighbours get CHARGELOSS + DO_NOT_USE. JWST skips this
step by default (``skip = True`` in its spec); a build pin turns it on.
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
from transforms.registry import NEAR_IR, register

from ._subarray import apply_by_copy

NAME = "charge_migration"
VERSION = "1.0"


@dataclass(frozen=True)
class ChargeMigrationParams:
    """JWST default threshold (DN)."""

    signal_threshold: float = 25000.0


@njit(nogil=True, cache=True, error_model="numpy")
def _first_over_rows(row0, row1, data, gdq, thr, dnu, first):
    ng, ny, nx = data.shape
    for y in range(row0, row1):
        for x in range(nx):
            first[y, x] = ng
        for g in range(ng):
            for x in range(nx):
                if first[y, x] == ng and data[g, y, x] > thr and (gdq[g, y, x] & dnu) == 0:
                    first[y, x] = g


def _first_over(data, gdq, thr, dnu, first):
    """first[y, x] = first group above thr and not DO_NOT_USE, or ngroups if none."""
    for_rows(_first_over_rows, data.shape[1], data, gdq, thr, dnu, first)


@njit(nogil=True, cache=True, error_model="numpy")
def _flag_from_rows(row0, row1, gdq, first, flag):
    ng, ny, nx = gdq.shape
    for y in range(row0, row1):
        f = np.empty(nx, dtype=first.dtype)
        lo = ng
        for x in range(nx):
            v = first[y, x]
            if y > 0:
                v = min(v, first[y - 1, x])
            if y < ny - 1:
                v = min(v, first[y + 1, x])
            if x > 0:
                v = min(v, first[y, x - 1])
            if x < nx - 1:
                v = min(v, first[y, x + 1])
            f[x] = v
            lo = min(lo, v)
        for g in range(lo, ng):
            for x in range(nx):
                if g >= f[x]:
                    gdq[g, y, x] |= flag


def _flag_from(gdq, first, flag):
    """Flag groups >= min(first of the pixel and its 4 neighbours)."""
    for_rows(_flag_from_rows, gdq.shape[1], gdq, readonly(first, first.dtype), flag)


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: ChargeMigrationParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Flag charge migration in the ramp buffer's groupdq in place."""
    data, gdq = arrays["data"], arrays["groupdq"]
    nints, ngroups, ny, nx = data.shape
    first = np.empty((ny, nx), dtype=np.int64)
    flag = np.uint8(DQ.CHARGELOSS | DQ.DO_NOT_USE)
    for i in range(nints):
        _first_over(data[i], gdq[i], np.float32(params.signal_threshold), np.uint8(DQ.DO_NOT_USE),
                    first)
        _flag_from(gdq[i], first, flag)
    return {f"cal_step.{NAME}": "COMPLETE"}


@register(NAME, VERSION, "detector1", ChargeMigrationParams, (),
          keyword="S_CHGMIG", inplace=apply_inplace, skip_by_default=True,
          instruments=NEAR_IR)
def apply(model: DataModel, refs: Mapping[str, DataModel],
          params: ChargeMigrationParams) -> DataModel:
    """CHARGELOSS + DO_NOT_USE on groups above signal_threshold and their 4 neighbours."""
    return apply_by_copy(model, refs, params, NAME, apply_inplace)
