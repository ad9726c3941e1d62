"""firstframe: flag the first group of every MIRI integration DO_NOT_USE.

As jwst 3.0's (deprecated, skipped by default: jwst's rscd step now flags the first groups)
firstframe step: with more than 3 groups, group 0 gets DO_NOT_USE in every integration; with
``bright_use_group1`` (jwst's default) pixels whose group 3 (index 2) is SATURATED in an
integration keep their first group there, and pixels that kept it in any integration get
FLUX_ESTIMATED in pixeldq. With 3 groups or fewer the step is SKIPPED. MIRI only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms.model import DataModel
from transforms.registry import register

from ._subarray import apply_by_copy

NAME = "firstframe"
VERSION = "1.0"


@dataclass(frozen=True)
class FirstFrameParams:
    """jwst 3.0 defaults: keep group 1 of pixels that saturate by group 3."""

    bright_use_group1: bool = True


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: FirstFrameParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Flag group 0 DO_NOT_USE (ngroups > 3), sparing saturating pixels if asked."""
    gdq, pdq = arrays["groupdq"], arrays["pixeldq"]
    if gdq.shape[1] <= 3:
        return {f"cal_step.{NAME}": "SKIPPED"}
    dnu = np.uint8(DQ.DO_NOT_USE)
    if params.bright_use_group1:
        sat = (gdq[:, 2] & np.uint8(DQ.SATURATED)) != 0  # (nints, ny, nx)
        np.bitwise_or(gdq[:, 0], np.where(sat, np.uint8(0), dnu), out=gdq[:, 0])
        kept = sat.any(axis=0)
        pdq[kept] |= np.uint32(DQ.PIXEL["FLUX_ESTIMATED"])
    else:
        gdq[:, 0] |= dnu
    return {f"cal_step.{NAME}": "COMPLETE"}


@register(NAME, VERSION, "detector1", FirstFrameParams, (), keyword="S_FRSTFR",
          inplace=apply_inplace, skip_by_default=True, instruments=("MIRI",))
def apply(model: DataModel, refs: Mapping[str, DataModel], params: FirstFrameParams) -> DataModel:
    """Flag the first group of each integration DO_NOT_USE (MIRI, more than 3 groups)."""
    return apply_by_copy(model, refs, params, NAME, apply_inplace)
