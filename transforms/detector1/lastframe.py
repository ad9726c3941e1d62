"""lastframe: flag the last group of every MIRI integration DO_NOT_USE.

As jwst 3.0's lastframe step: the final group of a MIRI ramp is disturbed by the reset of the
next row pair (the last-frame effect), so with more than 2 groups it gets DO_NOT_USE in every
integration; with 2 or fewer the step is SKIPPED. MIRI only (``instruments=("MIRI",)``).
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

NAME = "lastframe"
VERSION = "1.0"


@dataclass(frozen=True)
class LastFrameParams:
    """jwst's lastframe has no parameters."""


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: LastFrameParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """OR DO_NOT_USE into the last group's groupdq of every integration (ngroups > 2)."""
    gdq = arrays["groupdq"]
    if gdq.shape[1] <= 2:
        return {f"cal_step.{NAME}": "SKIPPED"}
    gdq[:, -1] |= np.uint8(DQ.DO_NOT_USE)
    return {f"cal_step.{NAME}": "COMPLETE"}


@register(NAME, VERSION, "detector1", LastFrameParams, (), keyword="S_LASTFR",
          inplace=apply_inplace, instruments=("MIRI",))
def apply(model: DataModel, refs: Mapping[str, DataModel], params: LastFrameParams) -> DataModel:
    """Flag the last group of each integration DO_NOT_USE (MIRI, more than 2 groups)."""
    return apply_by_copy(model, refs, params, NAME, apply_inplace)
