"""group_scale: rescale groups when on-board frame averaging divided by the wrong number.

On-board averaging divides the sum of NFRAMES frames by FRMDIVSR, a power of two; when NFRAMES
is not a power of two the stored groups are off by NFRAMES/FRMDIVSR. JWST multiplies every group
by FRMDIVSR/NFRAMES, and skips the step when either keyword is missing or they are equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms.model import DataModel
from transforms.registry import register

NAME = "group_scale"
VERSION = "1.0"


@dataclass(frozen=True)
class GroupScaleParams:
    """JWST's group_scale has no parameters."""


def scale_factor(meta: Mapping[str, Any]) -> float | None:
    """FRMDIVSR/NFRAMES, or None when JWST would skip the step."""
    nframes = meta.get("exposure.nframes")
    divisor = meta.get("exposure.frame_divisor")
    if nframes is None or divisor is None or int(nframes) == int(divisor):
        return None
    if int(nframes) <= 0:
        raise ValueError(f"group_scale: exposure.nframes must be positive, got {nframes}")
    return float(divisor) / float(nframes)


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: GroupScaleParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Scale the float32 ramp buffer in place; returns the metadata updates."""
    scale = scale_factor(meta)
    if scale is None:
        return {f"cal_step.{NAME}": "SKIPPED"}
    arrays["data"] *= np.float32(scale)
    return {f"cal_step.{NAME}": "COMPLETE"}


@register(NAME, VERSION, "detector1", GroupScaleParams, (),
          keyword="S_GRPSCL", inplace=apply_inplace)
def apply(model: DataModel, refs: Mapping[str, DataModel], params: GroupScaleParams) -> DataModel:
    """Rescale all groups by FRMDIVSR/NFRAMES (uncal or ramp in; same kind out)."""
    if model.kind not in ("uncal", "ramp"):
        raise ValueError(f"group_scale takes an 'uncal' or 'ramp' product, got {model.kind!r}")
    scale = scale_factor(model.meta)
    if scale is None:
        return model.replace(meta={f"cal_step.{NAME}": "SKIPPED"})
    data = np.asarray(model["data"], dtype=np.float32) * np.float32(scale)
    return model.replace(arrays={"data": data}, meta={f"cal_step.{NAME}": "COMPLETE"})
