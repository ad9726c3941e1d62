"""charge_migration 0.9: the step as it was before JWST build 10.0 (``undersampling_correction``).

Build 10.0 renamed undersampling_correction to charge_migration and changed it: the default
threshold went from 30,000 to 25,000 DN and the 4 neighbours of a pixel above it are flagged
too (release notes in shared/seeds). Version 0.9 keeps the old behaviour so that an archived
build can still be reproduced: from the first group above ``signal_threshold`` (and not already
DO_NOT_USE), that group and the later ones of *the pixel alone* get CHARGELOSS + DO_NOT_USE
(the flag was called UNDERSAMP then; it is the same bit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from transforms import dq as DQ
from transforms.detector1._kernels_threads import for_rows
from transforms.model import DataModel
from transforms.registry import NEAR_IR, register

from ._subarray import apply_by_copy

NAME = "charge_migration"
VERSION = "0.9"


@dataclass(frozen=True)
class UndersamplingParams:
    """The pre-10.0 default threshold (DN)."""

    signal_threshold: float = 30000.0


@njit(nogil=True, cache=True, error_model="numpy")
def _flag_pixels_rows(row0, row1, data, gdq, thr, dnu, flag):
    ng, ny, nx = data.shape
    for y in range(row0, row1):
        for x in range(nx):
            on = False
            for g in range(ng):
                if not on and data[g, y, x] > thr and (gdq[g, y, x] & dnu) == 0:
                    on = True
                if on:
                    gdq[g, y, x] |= flag


def _flag_pixels(data, gdq, thr, dnu, flag):
    """Flag each pixel's groups from its first one above thr (not DO_NOT_USE) on."""
    for_rows(_flag_pixels_rows, data.shape[1], data, gdq, thr, dnu, flag)


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: UndersamplingParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Flag undersampled (charge-losing) pixels in the ramp buffer's groupdq in place."""
    data, gdq = arrays["data"], arrays["groupdq"]
    flag = np.uint8(DQ.CHARGELOSS | DQ.DO_NOT_USE)
    for i in range(data.shape[0]):
        _flag_pixels(data[i], gdq[i], np.float32(params.signal_threshold),
                     np.uint8(DQ.DO_NOT_USE), flag)
    return {f"cal_step.{NAME}": "COMPLETE"}


@register(NAME, VERSION, "detector1", UndersamplingParams, (),
          keyword="S_CHGMIG", inplace=apply_inplace, skip_by_default=True,
          instruments=NEAR_IR)
def apply(model: DataModel, refs: Mapping[str, DataModel],
          params: UndersamplingParams) -> DataModel:
    """CHARGELOSS + DO_NOT_USE on a pixel's groups above signal_threshold (no neighbours)."""
    return apply_by_copy(model, refs, params, NAME, apply_inplace)
