"""imprint_subtract 1.1: 1.0 (jwst's ImprintStep, same choice of imprint) where jwst 3.0's
Spec2Pipeline runs it, and on the background members too.

Spec2Pipeline subtracts the leakcal imprint only from NRS_MSASPEC and NRS_IFU exposures (and
NIRSpec IFU flat-lamp exposures); any other mode (fixed slit ...) records SKIPPED even with
imprint members, where 1.0 subtracted from every NIRSpec exposure. And it subtracts the
imprint from every background (nod) member before bkg_subtract, each member choosing its own
imprint as the science does: declared here as ``also_members=("background",)``, which the
spec2 chains read (1.0 leaves the members as they are, so the science kept the nods' imprint).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transforms.model import DataModel
from transforms.registry import register
from transforms.spec2 import imprint_subtract as v10
from transforms.spec2.imprint_subtract import ImprintParams

NAME, VERSION = "imprint_subtract", "1.1"
IMPRINT_EXP_TYPES = ("NRS_MSASPEC", "NRS_IFU")


def takes_imprint(meta: Mapping[str, Any]) -> bool:
    """Whether jwst's Spec2Pipeline runs imprint subtraction on an exposure of this mode."""
    if str(meta.get("exposure.type") or "").upper() in IMPRINT_EXP_TYPES:
        return True
    return (str(meta.get("instrument.lamp_mode") or "").lower() == "ifu"
            and str(meta.get("instrument.lamp_state") or "").lower()[:4] == "flat")


@register(NAME, VERSION, "spec2", ImprintParams, (), keyword="S_IMPRNT",
          instruments=("NIRSPEC",), also_members=("background",))
def imprint_subtract(model, refs, params: ImprintParams) -> DataModel:
    """Subtract the matching leakcal (imprint) from a NIRSpec MOS or IFU exposure."""
    science = model[0] if isinstance(model, (tuple, list)) else model
    if not takes_imprint(science.meta):
        return science.replace(meta={"cal_step.imprint_subtract": "SKIPPED"})
    return v10.imprint_subtract(model, refs, params)
