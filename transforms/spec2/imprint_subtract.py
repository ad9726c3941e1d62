"""imprint_subtract: subtract the NIRSpec MSA imprint (leakcal) exposure, as jwst's ImprintStep.

The step takes the science exposure and the association's imprint members:
``apply((science, imprint1, ...), refs, params)`` (a science exposure alone has nothing to
subtract: SKIPPED, as jwst without imprint members). The imprint used: the only one given;
else, among those of the same background-target flag, the one of the same observation number
and dither position (PATT_NUM); else the only one of that flag; else none (SKIPPED). As jwst,
``data -= imprint.data`` and ``dq |= imprint.dq``; err and variances are left as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from transforms.model import DataModel
from transforms.registry import register
from transforms.spec2._common import Spec2Error

NAME, VERSION = "imprint_subtract", "1.0"


@dataclass(frozen=True)
class ImprintParams:
    """jwst 3.0 ImprintStep has no parameters."""


def choose_imprint(science: DataModel, imprints: Sequence[DataModel]) -> DataModel | None:
    """The imprint exposure jwst's ImprintStep would subtract from ``science``."""
    if len(imprints) == 1:
        return imprints[0]
    bkg = bool(science.get("observation.bkgdtarg"))
    same = [m for m in imprints if bool(m.get("observation.bkgdtarg")) == bkg]
    for m in same:
        if (m.get("dither.position_number") == science.get("dither.position_number")
                and m.get("observation.observation_number")
                == science.get("observation.observation_number")):
            return m
    return same[0] if len(same) == 1 else None


@register(NAME, VERSION, "spec2", ImprintParams, (), keyword="S_IMPRNT",
          instruments=("NIRSPEC",))
def imprint_subtract(model, refs, params: ImprintParams) -> DataModel:
    """Subtract the matching leakcal (imprint) exposure from a NIRSpec exposure."""
    models = tuple(model) if isinstance(model, (tuple, list)) else (model,)
    science, imprints = models[0], models[1:]
    match = choose_imprint(science, imprints) if imprints else None
    if match is None:
        return science.replace(meta={"cal_step.imprint_subtract": "SKIPPED"})
    if np.shape(match["data"]) != np.shape(science["data"]):
        raise Spec2Error(f"{NAME}: the imprint exposure is {np.shape(match['data'])}, the "
                         f"science {np.shape(science['data'])}; they must be the same window")
    data = (np.asarray(science["data"], np.float32) - np.asarray(match["data"], np.float32))
    dq = np.asarray(science["dq"]).astype(np.uint32) | np.asarray(match["dq"]).astype(np.uint32)
    return science.replace(arrays={"data": data.astype(np.float32), "dq": dq},
                           meta={"cal_step.imprint_subtract": "COMPLETE"})
