"""Stage 2 spectroscopy, front half (PROVISIONAL declaration until specpipe's arrives).

The front half of calwebb_spec2 for NIRSpec FS/MOS and MIRI LRS fixed slit, in jwst 3.0's
order: assign_wcs (2.0), msa_flagging, imprint_subtract, bkg_subtract, extract_2d, srctype,
wavecorr, flat_field (2.0), pathloss, barshadow, photom (2.0). At integration the lead keeps
specpipe's declaration of this package (the whole spec2 chain, back half included) and adds
the imports of these step modules; ``run_members`` shows how the association's imprint and
background members reach imprint_subtract and bkg_subtract (their ``apply`` takes the science
exposure followed by the members).
"""

from __future__ import annotations

from collections.abc import Sequence

from transforms.model import DataModel
from transforms.plans import OnStep, PlanError, check_plan
from transforms.registry import PlannedStep, Stage, register_stage
from transforms.spec2 import (assign_wcs_v2, barshadow, bkg_subtract, extract_2d,  # noqa: F401
                              flat_field_v2, imprint_subtract, msa_flagging, pathloss,
                              photom_v2, srctype, wavecorr)
from transforms.spec2._common import Spec2Error

__all__ = ["run", "run_members", "Spec2Error", "STAGE", "STEPS", "EXP_TYPES"]

STEPS = ("assign_wcs", "msa_flagging", "imprint_subtract", "bkg_subtract", "extract_2d",
         "srctype", "wavecorr", "flat_field", "pathloss", "barshadow", "photom")
EXP_TYPES = ("NRS_FIXEDSLIT", "NRS_MSASPEC", "MIR_LRS-FIXEDSLIT")
_MEMBER_STEPS = {"imprint_subtract": "imprint", "bkg_subtract": "background"}


def run_members(rate: DataModel, plan: Sequence[PlannedStep],
                members: dict[str, Sequence[DataModel]] | None = None,
                on_step: OnStep | None = None) -> dict[str, DataModel]:
    """Run the spec2 front half on a rate; ``members`` maps "imprint"/"background" to the
    association's member products at the same stage (calibrated up to the step's input: the
    imprint and background members go through assign_wcs and msa_flagging as the science)."""
    if rate.kind not in ("rate", "cal"):
        raise Spec2Error(f"spec2 takes a rate product, got kind {rate.kind!r}")
    try:
        check_plan("spec2", plan, rate.meta)
    except PlanError as exc:
        raise Spec2Error(f"spec2 plan: {exc}") from None
    members = {k: list(v) for k, v in (members or {}).items()}
    model = rate
    for p in plan:
        spec, params, refs, skip = p.spec, p.params, p.refs or {}, p.skip
        role = _MEMBER_STEPS.get(spec.name)
        if skip:
            model = model.replace(meta={f"cal_step.{spec.name}": "SKIPPED"})
        elif role is not None:
            model = spec.apply((model, *members.get(role, ())), refs, params)
        else:
            model = spec.apply(model, refs, params)
            if spec.name in ("assign_wcs", "msa_flagging"):
                for k, ms in members.items():
                    members[k] = [spec.apply(m, refs, params) for m in ms]
        if on_step is not None:
            on_step(spec.name, lambda m=model: m)
    return {"cal": model.replace(kind="cal") if model.kind == "rate" else model}


def run(rate: DataModel, plan: Sequence[PlannedStep], on_step: OnStep | None = None
        ) -> dict[str, DataModel]:
    """The stage chain on one exposure (no association members: imprint and background
    subtraction record SKIPPED)."""
    return run_members(rate, plan, None, on_step)


STAGE = register_stage(Stage(
    name="spec2", subject="exposure", reads=("detector1:rate", "exposure:pointing"),
    outputs=("cal",), steps=STEPS, exp_types=EXP_TYPES, run=run,
    doc="count rates -> calibrated 2-D spectra (calwebb_spec2 front half; provisional)"))
