"""gain_scale: rescale rates taken in a non-standard gain mode (NIRSpec/NIRISS GAINFACT).

As JWST: the factor is ``exposure.gain_factor`` of the product (ramp_fit copies it from the gain
reference) or else of the gain reference; without one the step is SKIPPED. DATA and ERR are
multiplied by the factor, VAR_POISSON and VAR_RNOISE by its square. Works on rate and rateints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from transforms.model import DataModel
from transforms.registry import register

NAME = "gain_scale"
VERSION = "1.0"


@dataclass(frozen=True)
class GainScaleParams:
    """JWST's gain_scale has no parameters."""


def gain_factor(model: DataModel, refs: Mapping[str, DataModel] | None) -> float | None:
    """The factor JWST would use, or None (step skipped)."""
    factor = model.get("exposure.gain_factor")
    if factor is None and refs and refs.get("gain") is not None:
        factor = refs["gain"].get("exposure.gain_factor")
    return None if factor is None else float(factor)


@register(NAME, VERSION, "detector1", GainScaleParams, ("gain",),
          keyword="S_GANSCL")
def apply(model: DataModel, refs: Mapping[str, DataModel], params: GainScaleParams) -> DataModel:
    """Multiply a rate/rateints by the gain factor (variances by its square), else SKIPPED."""
    if model.kind not in ("rate", "rateints"):
        raise ValueError(f"gain_scale takes a 'rate' or 'rateints' product, got {model.kind!r}")
    factor = gain_factor(model, refs)
    if factor is None:
        return model.replace(meta={f"cal_step.{NAME}": "SKIPPED"})
    f = np.float32(factor)
    arrays = {}
    for name in ("data", "err"):
        if name in model.arrays:
            arrays[name] = model[name] * f
    for name in ("var_poisson", "var_rnoise"):
        if name in model.arrays and model[name].size:
            arrays[name] = model[name] * np.float32(factor ** 2)
    return model.replace(arrays=arrays, meta={"exposure.gain_factor": factor,
                                              f"cal_step.{NAME}": "COMPLETE"})
