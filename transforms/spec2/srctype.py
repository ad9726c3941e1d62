"""srctype: decide POINT or EXTENDED per slit, as jwst 3.0's SourceTypeStep.

- NIRSpec FS and MIRI LRS (and the other single-target modes): the user's ``source_type``
  parameter; else EXTENDED for a background target (BKGDTARG); else the APT source type
  (SRCTYAPT, falling back to SRCTYPE); else POINT when the exposure is nodded (PATTTYPE
  contains NOD or POINT-SOURCE); else POINT. The result is ``target.source_type``; for
  NIRSpec FS the primary slit (FXD_SLIT) takes it (EXTENDED also zeroes its source_xpos/ypos)
  and the secondary slits are EXTENDED.
- NIRSpec MOS: per slitlet from the MSA source's stellarity: < 0 or > 0.75 POINT, else
  EXTENDED (background slitlets have stellarity 0); the exposure's SRCTYPE is cleared.
"""

from __future__ import annotations

from dataclasses import dataclass

from transforms.model import DataModel
from transforms.registry import register
from transforms.spec2._common import exp_type, slit_meta, slit_names, update_slits

NAME, VERSION = "srctype", "1.0"
SINGLE_TARGET = ("MIR_LRS-FIXEDSLIT", "MIR_LRS-SLITLESS", "MIR_MRS", "NRC_TSGRISM", "NIS_SOSS",
                 "NRS_FIXEDSLIT", "NRS_BRIGHTOBJ", "NRS_IFU")


@dataclass(frozen=True)
class SrctypeParams:
    """jwst 3.0 SourceTypeStep spec: ``source_type`` POINT or EXTENDED overrides."""

    source_type: str | None = None

    def __post_init__(self) -> None:
        if self.source_type is not None and str(self.source_type).upper() not in ("POINT",
                                                                                 "EXTENDED"):
            raise ValueError("srctype source_type must be POINT, EXTENDED or None")


def exposure_source_type(model: DataModel, user: str | None) -> str:
    et = exp_type(model)
    patt = str(model.get("dither.primary_type") or "").upper()
    apt = model.get("target.source_type_apt") or model.get("target.source_type")
    apt = str(apt).upper() if apt is not None else None
    if user is not None:
        return str(user).upper()
    if model.get("observation.bkgdtarg"):
        return "EXTENDED"
    if model.get("visit.tsovisit") or et in ("NRS_BRIGHTOBJ", "NRC_TSGRISM"):
        return "POINT"
    if apt in ("POINT", "EXTENDED"):
        return apt
    if "NOD" in patt or "POINT-SOURCE" in patt:
        return "POINT"
    return "EXTENDED" if et in ("MIR_MRS", "NRS_IFU") else "POINT"


@register(NAME, VERSION, "spec2", SrctypeParams, (), keyword="S_SRCTYP")
def srctype(model: DataModel, refs, params: SrctypeParams) -> DataModel:
    """Set SRCTYPE (per slit for NIRSpec) from user input, APT, nods or stellarity."""
    et = exp_type(model)
    done = {"cal_step.srctype": "COMPLETE"}
    if et == "NRS_MSASPEC":
        ups = {}
        for name in slit_names(model):
            st = slit_meta(model, name).get("stellarity")
            st = 0.0 if st is None else float(st)
            ups[name] = ({}, {"srctype": "POINT" if (st < 0.0 or st > 0.75) else "EXTENDED"})
        return update_slits(model, ups, {**done, "target.source_type": None})
    if et in SINGLE_TARGET:
        st = exposure_source_type(model, params.source_type)
        meta = {**done, "target.source_type": st,
                "target.source_type_apt": model.get("target.source_type_apt")
                or model.get("target.source_type")}
        if et == "NRS_FIXEDSLIT" and slit_names(model):
            primary = str(model.get("instrument.fixed_slit") or "").upper()
            ups = {}
            for name in slit_names(model):
                if name == primary:
                    s = {"srctype": st}
                    if st == "EXTENDED":
                        s.update(source_xpos=0.0, source_ypos=0.0)
                else:
                    s = {"srctype": "EXTENDED"}
                ups[name] = ({}, s)
            return update_slits(model, ups, meta)
        if slit_names(model):
            return update_slits(model, {n: ({}, {"srctype": st}) for n in slit_names(model)},
                                meta)
        return model.replace(meta=meta)
    return model.replace(meta={"cal_step.srctype": "SKIPPED"})
