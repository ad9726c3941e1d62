"""Stage 2 spectroscopy (calwebb_spec2 for NIRSpec FS/MOS and MIRI LRS fixed slit):
rate -> cal (2-D calibrated spectra), s2d (rectified), x1d (1-D spectra).

The step order is jwst 3.0's Spec2Pipeline order of the steps calops has, one list for both
instruments (NIRSpec-only steps declare ``instruments=("NIRSPEC",)`` and drop out of MIRI
plans; steps not registered yet are simply left out of plans):

assign_wcs, msa_flagging, imprint_subtract, bkg_subtract, extract_2d, srctype, wavecorr,
flat_field, pathloss, barshadow, photom, pixel_replace, resample_spec, extract_1d.

(jwst subtracts the leakcal imprint before the background, runs extract_2d, srctype and
wavecorr before flat_field for NIRSpec, and srctype before flat_field for MIRI: one order
satisfies both.) The ``cal`` product is the result after photom, before pixel_replace, as
jwst saves it; pixel_replace works on the copy that resample_spec rectifies into the ``s2d``;
extract_1d extracts the ``x1d`` from the s2d (from the cal when resample_spec is skipped). A
skipped step records ``cal_step.<name> = SKIPPED``.

The association's imprint (leakcal) and background (nod) members reach imprint_subtract and
bkg_subtract through ``run_members(rate, plan, {"imprint": [...], "background": [...]})``:
those steps take the science exposure followed by the members; the members go through
assign_wcs and msa_flagging as the science does, and through a member step that declares
their role in ``also_members`` (imprint_subtract 1.1 on the background nods, as jwst).
``run`` (the stage's chain) has none: those two steps then record SKIPPED, as jwst without
such members.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping, Sequence
from typing import Any

from transforms.model import DataModel
from transforms.plans import OnStep, PlanError, check_plan
from transforms.spec2 import _ifu_chain
from transforms.registry import PlannedStep, Stage, register_stage

from transforms.spec2._common import Spec2Error, also_members

__all__ = ["EXP_TYPES", "MEMBER_STEPS", "STAGE", "STEPS", "Spec2Error", "is_leakcal", "level2_members", "run",
           "run_members"]

STEPS = ("assign_wcs", "msa_flagging", "imprint_subtract", "bkg_subtract", "extract_2d",
         "srctype", "wavecorr", "straylight", "flat_field", "fringe", "pathloss", "barshadow",
         "photom", "residual_fringe", "pixel_replace", "resample_spec", "cube_build",
         "extract_1d")
EXP_TYPES = ("NRS_FIXEDSLIT", "NRS_MSASPEC", "MIR_LRS-FIXEDSLIT", "NRS_IFU", "MIR_MRS")
# integral-field exposures make a cube (s3d) where slits make a rectified s2d
MODE_OUTPUTS = {"NRS_IFU": ("cal", "s3d", "x1d"), "MIR_MRS": ("cal", "s3d", "x1d")}
_BACK_HALF = ("pixel_replace", "resample_spec", "extract_1d")
_MEMBER_STEPS = {"imprint_subtract": "imprint", "bkg_subtract": "background"}
MEMBER_STEPS = dict(_MEMBER_STEPS)  # step -> the member role it subtracts (for reports)
_MEMBERS_FOLLOW = ("assign_wcs", "msa_flagging")


def _load_steps() -> None:
    """Import every step module of this package (the back half here, the front half added by
    the instrument work beside it), so their registrations run."""
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def run(rate: DataModel, plan: Sequence[PlannedStep], on_step: OnStep | None = None,
        members: dict[str, Sequence[DataModel]] | None = None) -> dict[str, DataModel]:
    """Run the spec2 steps of ``plan`` on a rate; returns ``{"cal", ["s2d"], ["x1d"]}``.
    ``members`` as ``run_members`` (the workspace runner passes those ``level2_members``
    finds)."""
    return run_members(rate, plan, members, on_step)


_IMPRINT_KEY = ("observation.program_number", "observation.observation_number",
                "observation.visit_number", "exposure.type", "instrument.grating",
                "instrument.filter")


def is_leakcal(meta: Mapping[str, Any]) -> bool:
    """A NIRSpec leakcal (imprint) exposure: IS_IMPRT, or the simulator's ``calops.leakcal``."""
    return bool(meta.get("exposure.imprint") or meta.get("calops.leakcal"))


def level2_members(science: Mapping[str, Any], candidates: Sequence[Mapping[str, Any]]
                   ) -> dict[str, list[int]]:
    """jwst's level-2 association members of one spectroscopic exposure, as indices of
    ``candidates`` (exposure metadata with ``filename``): ``background``, the other nod
    positions (``bkg_subtract.nod_backgrounds``: ALONG-SLIT-NOD, 2-/3-POINT-NOD,
    3-SHUTTER-SLITLET), and ``imprint``, the NIRSpec leakcal exposures of the same
    observation, visit and optical path (imprint_subtract chooses among them). A leakcal
    exposure itself has no members, nor an IFU exposure (calops' IFU chain takes none)."""
    from transforms.spec2.bkg_subtract import nod_backgrounds

    if is_leakcal(science) or _ifu_chain.is_ifu(science):
        return {}
    out: dict[str, list[int]] = {}
    bkg = nod_backgrounds(science, candidates)
    if bkg:
        out["background"] = bkg
    if str(science.get("instrument.name") or "").upper() == "NIRSPEC":
        imp = [i for i, c in enumerate(candidates)
               if is_leakcal(c) and c.get("filename") != science.get("filename")
               and all(c.get(k) == science.get(k) for k in _IMPRINT_KEY)]
        if imp:
            out["imprint"] = imp
    return out


def run_members(rate: DataModel, plan: Sequence[PlannedStep],
                members: dict[str, Sequence[DataModel]] | None = None,
                on_step: OnStep | None = None) -> dict[str, DataModel]:
    """``run`` with the association's ``members`` ("imprint", "background": rate products of
    the same window) for imprint_subtract and bkg_subtract."""
    members = {k: list(v) for k, v in (members or {}).items()}
    if rate.kind not in ("rate", "cal", "s2d"):
        raise Spec2Error(f"spec2 takes a rate product, got kind {rate.kind!r}")
    try:
        check_plan("spec2", plan, rate.meta)
    except PlanError as exc:
        raise Spec2Error(f"spec2 plan: {exc}") from None
    if _ifu_chain.is_ifu(rate.meta):  # MIR_MRS, NRS_IFU: the IFU chain (cube, x1d)
        return _ifu_chain.run_ifu(rate, plan, on_step)
    plan = [p for p in plan if p.spec.name not in _ifu_chain.IFU_ONLY]
    model = rate
    out: dict[str, DataModel] = {}
    for p in plan:
        spec, params, refs, skip = p.spec, p.params, p.refs or {}, p.skip
        if spec.name in _BACK_HALF and "cal" not in out:
            out["cal"] = model.replace(kind="cal") if model.kind == "rate" else model
            model = out["cal"]
        if spec.name == "extract_1d":
            if not skip:
                out["x1d"] = spec.apply(model, refs, params)
        elif skip:
            model = model.replace(meta={f"cal_step.{spec.name}": "SKIPPED"})
        elif spec.name in _MEMBER_STEPS:
            mem = members.get(_MEMBER_STEPS[spec.name], ())
            model = spec.apply((model, *mem), refs, params)
            members = also_members(spec, members, mem, refs, params)
        else:
            model = spec.apply(model, refs, params)
            if spec.name in _MEMBERS_FOLLOW:
                members = {k: [spec.apply(m, refs, params) for m in ms]
                           for k, ms in members.items()}
            if spec.name == "resample_spec":
                out["s2d"] = model
        if on_step is not None:
            on_step(spec.name, lambda m=out.get("x1d", model): m)
    if "cal" not in out:
        out["cal"] = model.replace(kind="cal") if model.kind == "rate" else model
    return out


_load_steps()

STAGE = register_stage(Stage(
    name="spec2", subject="exposure", reads=("detector1:rate", "exposure:pointing"),
    outputs=("cal", "s2d", "x1d"), steps=STEPS, exp_types=EXP_TYPES, run=run,
    mode_outputs=MODE_OUTPUTS, members=level2_members,
    asn_exptypes=("science", "background", "imprint"),
    doc="count rates -> calibrated, rectified and extracted spectra (calwebb_spec2)"))
