"""Stage-3 spectroscopic associations and product names (build 10.0 rules).

Pure: exposure metadata in (a mapping per exposure, keyed like ``DataModel.meta`` plus
``filename``), JWST-shaped level-3 association dicts out (``asn_type: spec3``, ``asn_rule``,
``asn_id``, ``program``, ``target``, ``products: [{name, members: [{expname, exptype}]}]``),
as ``transforms.associations`` does for imaging.

Rules (JWST's ``Asn_Lv3NRSFSS``, ``Asn_Lv3SpectralSource``, ``Asn_Lv3SpectralTarget`` with the
build 10.0 changes):

- **NIRSpec fixed slit** (NRS_FIXEDSLIT): science exposures (no TSO) grouped by program,
  observation, target, optical path (filter + grating) and primary slit (``FXD_SLIT``), except
  that **S200A1 and S200A2 share one group** (build 10.0: observations that put the primary
  target in both slits are combined, so the combined products cover both wavelength ranges).
  The product name leaves the source and slit fields to the pipeline, as the build 10.0
  template does: ``jw01234-o003_{source_id}_nirspec_f100lp-g140h-{slit_name}``; spec3 fills
  them per source (``s00001`` and ``s200a1-s200a2`` for the primary target seen in both slits;
  ``s00031`` and ``s200a1`` for the S200A1 data of a target in S400A1).
- **NIRSpec MOS** (NRS_MSASPEC): grouped by program, observation, target and optical path;
  one product per source: ``jw01234-o003_{source_id}_nirspec_f170lp-g235m``.
- **MIRI LRS fixed slit** (MIR_LRS-FIXEDSLIT): nodded science exposures (dither pattern
  ``*-NOD``, or any pattern when none is recorded) grouped by program, observation, target and
  filter; ``jw01234-o005_t001_miri_p750l``.
- **Background** exposures (``observation.bkgdtarg`` true; NIRSpec FS and MIRI LRS, as
  ``Asn_Lv3SpecAux``) of the same program, instrument and optical path join every such
  science association as ``exptype: background`` members.

Source ids in names follow build 10.0: ``s<id>`` with five digits (``b``/``v`` for MOS
background/virtual slitlets).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from transforms.associations import AssociationError, _req, _target_numbers

SPEC3_EXP_TYPES = ("NRS_FIXEDSLIT", "NRS_MSASPEC", "MIR_LRS-FIXEDSLIT")
_EMPTY = ("", "N/A", "NONE", "NULL", "ANY")
_S200A = frozenset({"S200A1", "S200A2"})
# calops-only field keeping apart the names of two fixed-slit groups of one observation
PRIMARY_FIELD = re.compile(r"\{primary:[^}]*\}")
# the slit numbers of build 10.0's fixed-slit SOURCEID codes
FS_SLIT_NUMBER = {"S200A1": 1, "S200A2": 2, "S400A1": 3, "S1600A1": 4, "S200B1": 5}


def _true(v: Any) -> bool:
    return v in (True, "T", "True", "true", 1)


def spec_opt_element(meta: Mapping[str, Any]) -> str:
    """Filter and grating (NIRSpec) or filter (MIRI), lower case, sorted, joined with '-'."""
    vals = [str(meta.get(k)).strip().lower() for k in ("instrument.filter", "instrument.grating",
                                                       "instrument.pupil")
            if meta.get(k) is not None and str(meta.get(k)).strip().upper() not in _EMPTY]
    vals.sort()
    return "-".join(vals) or "clear"


def fs_slit_group(slit: Any) -> str:
    """The primary-slit group of a fixed-slit exposure: S200A1 and S200A2 share one."""
    s = str(slit or "").strip().upper()
    return "S200A1|S200A2" if s in _S200A else s


def fs_source_id(primary_slit: str, slit: str) -> int:
    """Build 10.0's SOURCEID of fixed-slit data: 1 for the slit holding the primary target,
    else ``10 * primary slit number + slit number`` (S200A1 primary, S200A2 data -> 12)."""
    p = FS_SLIT_NUMBER.get(str(primary_slit).upper())
    s = FS_SLIT_NUMBER.get(str(slit).upper())
    if p is None or s is None:
        raise AssociationError(f"unknown NIRSpec fixed slit {primary_slit!r} or {slit!r}; "
                               f"the slits are {', '.join(FS_SLIT_NUMBER)}")
    return 1 if p == s else 10 * p + s


def source_field(source_id: int, kind: str = "s") -> str:
    """``s00001``: the source field of a stage-3 product name (build 10.0: five digits)."""
    return f"{kind}{abs(int(source_id)):05d}"


def _kind(meta: Mapping[str, Any]) -> str | None:
    exp = str(meta.get("exposure.type", "")).upper()
    if exp not in SPEC3_EXP_TYPES:
        return None
    if _true(meta.get("visit.tsovisit")) or "WFSC" in str(meta.get("visit.type", "")).upper():
        return None
    return exp


def _is_nod(meta: Mapping[str, Any]) -> bool:
    patt = str(meta.get("dither.primary_type") or "").upper()
    return not patt or "NOD" in patt


def spec3_associations(exposures: Sequence[Mapping[str, Any]], pool: str = "calops"
                       ) -> list[dict[str, Any]]:
    """Level-3 spectroscopic associations of a set of exposures, in a deterministic order."""
    sci: list[tuple[int, Mapping[str, Any], str]] = []
    bkg: list[tuple[int, Mapping[str, Any], str]] = []
    for i, m in enumerate(exposures):
        exp = _kind(m)
        if exp is None:
            continue
        (bkg if _true(m.get("observation.bkgdtarg")) else sci).append((i, m, exp))
    targets = _target_numbers([m for _, m, _ in sci])
    groups: dict[tuple, list[tuple[int, Mapping[str, Any]]]] = {}
    for (i, m, exp), tgt in zip(sci, targets):
        prog = int(_req(m, "observation.program_number", i))
        obs = int(_req(m, "observation.observation_number", i))
        inst = str(_req(m, "instrument.name", i)).upper()
        _req(m, "filename", i)
        _req(m, "instrument.filter", i)
        slit = ""
        if exp == "NRS_FIXEDSLIT":
            slit = fs_slit_group(_req(m, "instrument.fixed_slit", i))
        elif exp == "MIR_LRS-FIXEDSLIT" and not _is_nod(m):
            continue
        key = (prog, obs, tgt, inst, exp, spec_opt_element(m), slit)
        groups.setdefault(key, []).append((i, m))
    out = []
    fs_groups: dict[tuple, int] = {}
    for key in groups:
        if key[4] == "NRS_FIXEDSLIT":
            fs_groups[key[:6]] = fs_groups.get(key[:6], 0) + 1
    for (prog, obs, tgt, inst, exp, opt, slit), members in sorted(groups.items()):
        base = f"jw{prog:05d}-o{obs:03d}"
        if exp == "NRS_FIXEDSLIT":
            name, rule = f"{base}_{{source_id}}_{inst.lower()}_{opt}-{{slit_name}}", \
                "candidate_Asn_Lv3NRSFSS"
            if fs_groups[(prog, obs, tgt, inst, exp, opt)] > 1:
                # two primary-slit groups of one observation share the template: a field
                # that filling drops keeps the association names apart
                name += f"{{primary:{slit.lower().replace('|', '+')}}}"
        elif exp == "NRS_MSASPEC":
            name, rule = f"{base}_{{source_id}}_{inst.lower()}_{opt}", \
                "candidate_Asn_Lv3SpectralSource"
        else:
            name, rule = f"{base}_t{tgt:03d}_{inst.lower()}_{opt}", \
                "candidate_Asn_Lv3SpectralTarget"
        mem = [{"expname": str(m["filename"]), "exptype": "science"} for _, m in members]
        if exp in ("NRS_FIXEDSLIT", "MIR_LRS-FIXEDSLIT"):
            for _, b, bexp in bkg:
                if (bexp == exp and int(b.get("observation.program_number") or -1) == prog
                        and str(b.get("instrument.name", "")).upper() == inst
                        and spec_opt_element(b) == opt):
                    mem.append({"expname": str(b["filename"]), "exptype": "background"})
        out.append({
            "asn_type": "spec3", "asn_rule": rule, "asn_id": f"o{obs:03d}", "asn_pool": pool,
            "program": f"{prog:05d}", "target": f"t{tgt:03d}",
            "constraints": {"program": f"{prog:05d}", "observation": f"{obs:03d}",
                            "target": f"{tgt:03d}", "instrument": inst.lower(),
                            "exp_type": exp.lower(), "opt_elem": opt,
                            **({"fxd_slit": slit.lower()} if slit else {})},
            "products": [{"name": name, "members": mem}],
        })
    out.extend(ifu_associations(exposures, pool))
    return out


# --------------------------------------------------------------------------------------------
# Integral field (MIRI MRS, NIRSpec IFU)
# --------------------------------------------------------------------------------------------

IFU_EXP_TYPES = ("MIR_MRS", "NRS_IFU")


def ifu_associations(exposures: Sequence[Mapping[str, Any]], pool: str = "calops"
                     ) -> list[dict[str, Any]]:
    """Level-3 IFU associations (JWST's ``Asn_Lv3MIRMRS`` and ``Asn_Lv3NRSIFU``), in a
    deterministic order.

    - **MIRI MRS**: science exposures (not TSO, not background targets) grouped by program,
      observation and target: both detectors, every band and dither in one association, as
      cube_build combines channels and bands; product ``jw01234-o007_t001_miri_{cube}``, the
      ``{cube}`` field filled per cube (``ch1-short``, ``ch1-2-3-4-shortmediumlong`` ...).
    - **NIRSpec IFU**: grouped by program, observation, target and grating + filter (NRS1 and
      NRS2 together); ``jw01234-o009_t001_nirspec_{cube}`` (``g140m-f100lp``).
    - **Background** exposures (``observation.bkgdtarg``) of the same program, instrument and
      (NIRSpec) optical path join as ``exptype: background`` (master_background uses them).
    """
    sci: list[tuple[int, Mapping[str, Any], str]] = []
    bkg: list[tuple[int, Mapping[str, Any], str]] = []
    for i, m in enumerate(exposures):
        exp = str(m.get("exposure.type", "")).upper()
        if exp not in IFU_EXP_TYPES or _true(m.get("visit.tsovisit")):
            continue
        if _true(m.get("observation.imprint")):
            continue  # imprint (leakcal) exposures belong to stage 2
        (bkg if _true(m.get("observation.bkgdtarg")) else sci).append((i, m, exp))
    targets = _target_numbers([m for _, m, _ in sci])
    groups: dict[tuple, list[tuple[int, Mapping[str, Any]]]] = {}
    for (i, m, exp), tgt in zip(sci, targets):
        prog = int(_req(m, "observation.program_number", i))
        obs = int(_req(m, "observation.observation_number", i))
        _req(m, "filename", i)
        opt = "" if exp == "MIR_MRS" else ifu_opt_element(m)
        groups.setdefault((prog, obs, tgt, exp, opt), []).append((i, m))
    out = []
    for (prog, obs, tgt, exp, opt), members in sorted(groups.items()):
        inst = "miri" if exp == "MIR_MRS" else "nirspec"
        name = f"jw{prog:05d}-o{obs:03d}_t{tgt:03d}_{inst}_{{cube}}"
        rule = "candidate_Asn_Lv3MIRMRS" if exp == "MIR_MRS" else "candidate_Asn_Lv3NRSIFU"
        mem = [{"expname": str(m["filename"]), "exptype": "science"} for _, m in members]
        for _, b, bexp in bkg:
            if (bexp == exp and int(b.get("observation.program_number") or -1) == prog
                    and (exp == "MIR_MRS" or ifu_opt_element(b) == opt)):
                mem.append({"expname": str(b["filename"]), "exptype": "background"})
        out.append({
            "asn_type": "spec3", "asn_rule": rule, "asn_id": f"o{obs:03d}", "asn_pool": pool,
            "program": f"{prog:05d}", "target": f"t{tgt:03d}",
            "constraints": {"program": f"{prog:05d}", "observation": f"{obs:03d}",
                            "target": f"{tgt:03d}", "instrument": inst,
                            "exp_type": exp.lower(), **({"opt_elem": opt} if opt else {})},
            "products": [{"name": name, "members": mem}],
        })
    return out


def ifu_opt_element(meta: Mapping[str, Any]) -> str:
    """NIRSpec IFU grating and filter, as the cube names order them (``g140m-f100lp``)."""
    return (f"{str(meta.get('instrument.grating') or '').lower()}-"
            f"{str(meta.get('instrument.filter') or '').lower()}")


def fill_cube_name(template: str, cube: str | None) -> str:
    """An IFU product name with its ``{cube}`` field filled (dropped, with its underscore,
    when ``cube`` is None)."""
    if cube is None:
        return str(template).replace("_{cube}", "").replace("{cube}", "")
    return str(template).replace("{cube}", str(cube).lower())


def fill_product_name(template: str, source_id: str | None = None,
                      slit_name: str | None = None) -> str:
    """A product name with its ``{source_id}``/``{slit_name}`` fields filled (jwst's
    ``format_product``; fields without a value are left as they are)."""
    out = PRIMARY_FIELD.sub("", str(template))
    if source_id is not None:
        out = out.replace("{source_id}", str(source_id).lower())
    if slit_name is not None:
        out = out.replace("{slit_name}", str(slit_name).lower())
    return out


def product_filenames(name: str) -> dict[str, str]:
    """The stage-3 spectroscopic products of a (filled) product name, by suffix."""
    return {k: f"{name}_{k}.fits" for k in ("cal", "crf", "s2d", "x1d", "c1d")}
