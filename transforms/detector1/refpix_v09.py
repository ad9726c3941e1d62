"""refpix 0.9: refpix 1.1 with the IRS2 bad-reference-pixel handling of before build 10.0.

As jwst 1.11 (build 9.3) did it, for the archived builds that must reproduce their products:
the reference file's bad interleaved pairs are set to 0 (their DQ-table bits counted along
each output's readout direction), then, on the last group of the last integration only, a
reference column is "intermittently bad" when its mean, its scatter or its pair's |odd - even|
exceeds ``ovr_corr_mitigation_ftr`` (1.8 by default) times the average over its output; it is
replaced by the nearest good column of the same parity. Relative thresholds on bias-subtracted
means that sit near zero make this erratic (a negative average flags most columns, which are
then left alone), which is what build 10.0 replaced (refpix 1.1). Nothing is flagged in
pixeldq. Everything else (traditional readouts, the IRS2 Fourier correction, the output shape)
is refpix 1.1's; MIRI likewise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms.instruments.nirspec import detector as nrs
from transforms.model import DataModel
from transforms.registry import register

from ._subarray import apply_by_copy
from .refpix import RefPixParams
from .refpix import apply_inplace as near_ir_inplace
from .refpix_v11 import LEGACY, irs2_inplace, miri_inplace

NAME = "refpix"
VERSION = "0.9"


@dataclass(frozen=True)
class RefPixParamsV09(RefPixParams):
    """jwst 1.11's defaults: the overcorrection factor was a ratio, 1.8."""

    ovr_corr_mitigation_ftr: float = 1.8


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: RefPixParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    if str(meta.get("instrument.name", "")).upper() == "MIRI":
        return miri_inplace(arrays, refs, params, meta)
    if nrs.is_irs2_shape(arrays["data"].shape):
        return irs2_inplace(arrays, refs, params, meta, LEGACY)
    return near_ir_inplace(arrays, refs, params, meta)


@register(NAME, VERSION, "detector1", RefPixParamsV09, (), optional_reftypes=("refpix",),
          keyword="S_REFPIX", inplace=apply_inplace)
def apply(model: DataModel, refs: Mapping[str, DataModel], params: RefPixParams) -> DataModel:
    """Reference-pixel correction with the pre-10.0 IRS2 intermittent-bad-pixel handling."""
    return apply_by_copy(model, refs, params, NAME, apply_inplace)
