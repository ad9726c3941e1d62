"""The spec2 chain for IFU exposures (MIR_MRS, NRS_IFU), as jwst 3.0's Spec2Pipeline runs
them: the plan's steps in the stage's order, minus those jwst never calls for IFU data
(extract_2d, wavecorr, pathloss, barshadow, resample_spec).

``cal`` is the product after photom and residual_fringe (jwst saves it before
pixel_replace); pixel_replace works on the copy that cube_build turns into the ``s3d``
(``skip_dqflagging`` forced on, as jwst's Spec2Pipeline does); extract_1d extracts the ``x1d``
from the cube (no cube, no x1d, as jwst). Imprint and background members (``members``:
"imprint"/"background" -> products at the rate stage) reach imprint_subtract and bkg_subtract
as ``(science, *members)``, after going through assign_wcs and msa_flagging like the science
(and through a member step that declares their role in ``also_members``);
without members those steps record SKIPPED. Skipped steps record ``cal_step.<name> =
SKIPPED``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from transforms.ifu import is_ifu_exposure as is_ifu
from transforms.model import DataModel
from transforms.plans import OnStep
from transforms.registry import PlannedStep
from transforms.spec2._common import also_members

IFU_ONLY = ("straylight", "fringe", "residual_fringe", "cube_build")
NOT_FOR_IFU = ("extract_2d", "wavecorr", "pathloss", "barshadow", "resample_spec")
BACK_HALF = ("pixel_replace", "cube_build", "extract_1d")
MEMBER_STEPS = {"imprint_subtract": "imprint", "bkg_subtract": "background"}
STATUS_KEY = {"imprint_subtract": "imprint_subtract"}


def run_ifu(rate: DataModel, plan: Sequence[PlannedStep], on_step: OnStep | None = None,
            members: Mapping[str, Sequence[DataModel]] | None = None) -> dict[str, DataModel]:
    members = {k: list(v) for k, v in (members or {}).items()}
    model = rate
    out: dict[str, DataModel] = {}
    for p in plan:
        spec, params, refs, skip = p.spec, p.params, p.refs or {}, p.skip
        name = spec.name
        if name in NOT_FOR_IFU:
            continue
        if name in BACK_HALF and "cal" not in out:
            out["cal"] = model.replace(kind="cal") if model.kind == "rate" else model
            model = out["cal"]
        if name == "cube_build":
            if not skip:
                out["s3d"] = spec.apply(model, refs,
                                        dataclasses.replace(params, skip_dqflagging=True))
        elif name == "extract_1d":
            if not skip and "s3d" in out:
                out["x1d"] = spec.apply(out["s3d"], refs, params)
        elif skip:
            model = model.replace(meta={f"cal_step.{name}": "SKIPPED"})
        elif name in MEMBER_STEPS:
            mem = members.get(MEMBER_STEPS[name], [])
            if not mem:
                model = model.replace(meta={f"cal_step.{STATUS_KEY.get(name, name)}":
                                            "SKIPPED"})
            else:
                model = spec.apply((model, *mem), refs, params)
                members = also_members(spec, members, mem, refs, params)
        else:
            model = spec.apply(model, refs, params)
            if name in ("assign_wcs", "msa_flagging"):
                for k, ms in members.items():
                    members[k] = [spec.apply(m, refs, params) for m in ms]
        if on_step is not None:
            on_step(name, lambda m=out.get("x1d") or out.get("s3d") or model: m)
    if "cal" not in out:
        out["cal"] = model.replace(kind="cal") if model.kind == "rate" else model
    return out
