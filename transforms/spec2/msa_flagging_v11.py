"""msa_flagging 1.1: version 1.0 (NIRSpec MOS) plus NIRSpec IFU (``msa_flagging_ifu``: the
failed-open shutters' light on the IFU's detector area). Other exposure types record SKIPPED,
as in jwst (NIRSpec FS, MIRI have no MSA)."""

from __future__ import annotations

from dataclasses import dataclass

from transforms.registry import register
from transforms.spec2._ifu_common import base_step, exp_type, delegate
from transforms.spec2.msa_flagging_ifu import msa_flagging_ifu

NAME, VERSION = "msa_flagging", "1.1"


@dataclass(frozen=True)
class MsaFlaggingParams:
    """jwst 3.0 MSAFlagOpenStep has no parameters."""


@register(NAME, VERSION, "spec2", MsaFlaggingParams, ("msaoper",), keyword="S_MSAFLG",
          optional_reftypes=("disperser", "msa", "wavelengthrange"), instruments=("NIRSPEC",))
def msa_flagging(model, refs, params):
    """MSA_FAILED_OPEN where failed-open shutters put light on the detector (MOS, IFU)."""
    et = exp_type(model)
    if et == "NRS_IFU":
        return msa_flagging_ifu(model, refs, params)
    if et == "NRS_MSASPEC" or base_step(NAME, ("1.0",)) is not None:
        return delegate(NAME, ("1.0",), model, refs, params, f"{et} data")
    return model.replace(meta={"cal_step.msa_flagging": "SKIPPED"})
