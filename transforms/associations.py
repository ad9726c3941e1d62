"""Stage-3 associations: which calibrated exposures are combined into which product.

Pure: takes exposure metadata (a mapping per exposure, keyed like ``DataModel.meta`` plus a
``filename``), returns association dicts shaped like JWST's level-3 ``_asn.json`` (``asn_type``,
``asn_rule``, ``asn_id``, ``program``, ``target``, ``products`` with ``members``).

The imaging rule follows JWST's ``Asn_Lv3Image`` for observation candidates: science imaging
exposures (no TSO, no background target, no wavefront-sensing visit) are grouped by program,
observation, target, instrument and optical path (filter, pupil). The product name is JWST's
``jw<ppppp>-o<ooo>_t<ttt>_<instrument>_<optical elements>``, lower case, where the optical
elements are the filter and pupil values, sorted alphabetically (case-insensitive) and joined
with ``-`` as the JWST rules do (``clear-f200w``; empty/N/A values dropped; nothing left ->
``clear``). ``t<ttt>`` is ``target.target_id`` when the metadata has it; otherwise targets are
numbered 1, 2, ... in sorted order of their names within the program.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

IMAGING_EXP_TYPES = frozenset({"NRC_IMAGE", "MIR_IMAGE", "NIS_IMAGE", "FGS_IMAGE"})
_EMPTY = ("", "N/A", "NONE", "NULL", "ANY")


class AssociationError(ValueError):
    """Exposure metadata that cannot be associated."""


def _req(meta: Mapping[str, Any], key: str, i: int) -> Any:
    v = meta.get(key)
    if v is None or str(v).strip() == "":
        raise AssociationError(f"exposure {i} ({meta.get('filename', '?')}) lacks {key}; "
                               "stage-3 associations need it")
    return v


def opt_element(filter_: Any, pupil: Any) -> str:
    """JWST's product-name optical element string for a filter/pupil pair."""
    vals = [str(v).strip().lower() for v in (filter_, pupil)
            if v is not None and str(v).strip().upper() not in _EMPTY]
    vals.sort()
    return "-".join(vals) or "clear"


def product_name(program: Any, observation: Any, target: int, instrument: str,
                 filter_: Any, pupil: Any) -> str:
    """``jw<ppppp>-o<ooo>_t<ttt>_<instrument>_<opt elements>`` in lower case."""
    try:
        prog, obs, tgt = int(program), int(observation), int(target)
    except (TypeError, ValueError) as exc:
        raise AssociationError(f"program {program!r}, observation {observation!r} and target "
                               f"{target!r} must be integers") from exc
    return (f"jw{prog:05d}-o{obs:03d}_t{tgt:03d}_{str(instrument).strip().lower()}_"
            f"{opt_element(filter_, pupil)}")


def is_stage3_imaging(meta: Mapping[str, Any]) -> bool:
    """A science imaging exposure that JWST's image3 rule accepts."""
    if str(meta.get("exposure.type", "")).upper() not in IMAGING_EXP_TYPES:
        return False
    if meta.get("observation.bkgdtarg") in (True, "T", "True", "true"):
        return False
    if "WFSC" in str(meta.get("visit.type", "")).upper():
        return False
    if meta.get("visit.tsovisit") in (True, "T", "True", "true"):
        return False
    return True


def _target_numbers(exposures: Sequence[Mapping[str, Any]]) -> list[int]:
    names: dict[str, set[str]] = {}
    for m in exposures:
        if m.get("target.target_id") is None:
            prog = str(m.get("observation.program_number"))
            names.setdefault(prog, set()).add(str(m.get("target.catalog_name")
                                                  or m.get("target.proposer_name") or ""))
    numbering = {prog: {n: k + 1 for k, n in enumerate(sorted(ns))} for prog, ns in names.items()}
    out = []
    for m in exposures:
        if m.get("target.target_id") is not None:
            out.append(int(m["target.target_id"]))
        else:
            prog = str(m.get("observation.program_number"))
            out.append(numbering[prog][str(m.get("target.catalog_name")
                                           or m.get("target.proposer_name") or "")])
    return out


def image3_associations(exposures: Sequence[Mapping[str, Any]], pool: str = "calops"
                        ) -> list[dict[str, Any]]:
    """Level-3 imaging associations of a set of cal exposures, in a deterministic order.

    Each exposure is a mapping with ``filename`` and the metadata keys
    ``observation.program_number``, ``observation.observation_number``,
    ``instrument.name``, ``instrument.filter`` (``instrument.pupil`` optional),
    ``exposure.type``. Non-imaging exposures are ignored. Members keep input order.
    """
    chosen = [(i, m) for i, m in enumerate(exposures) if is_stage3_imaging(m)]
    targets = _target_numbers([m for _, m in chosen])
    groups: dict[tuple, list[tuple[int, Mapping[str, Any]]]] = {}
    for (i, m), tgt in zip(chosen, targets):
        prog = int(_req(m, "observation.program_number", i))
        obs = int(_req(m, "observation.observation_number", i))
        inst = str(_req(m, "instrument.name", i)).upper()
        filt = _req(m, "instrument.filter", i)
        _req(m, "filename", i)
        key = (prog, obs, tgt, inst, opt_element(filt, m.get("instrument.pupil")))
        groups.setdefault(key, []).append((i, m))
    out = []
    for (prog, obs, tgt, inst, opt), members in sorted(groups.items()):
        first = members[0][1]
        name = product_name(prog, obs, tgt, inst, first.get("instrument.filter"),
                            first.get("instrument.pupil"))
        out.append({
            "asn_type": "image3",
            "asn_rule": "candidate_Asn_Lv3Image",
            "asn_id": f"o{obs:03d}",
            "asn_pool": pool,
            "program": f"{prog:05d}",
            "target": f"t{tgt:03d}",
            "constraints": {"program": f"{prog:05d}", "observation": f"{obs:03d}",
                            "target": f"{tgt:03d}", "instrument": inst.lower(),
                            "opt_elem": opt},
            "products": [{
                "name": name,
                "members": [{"expname": str(m["filename"]), "exptype": "science"}
                            for _, m in members],
            }],
        })
    return out


def product_filenames(name: str) -> dict[str, str]:
    """The stage-3 products of an association product name, by suffix (JWST file names)."""
    return {"i2d": f"{name}_i2d.fits", "catalog": f"{name}_cat.ecsv",
            "segm": f"{name}_segm.fits"}


def crf_filename(expname: str, asn_id: str) -> str:
    """JWST's per-exposure outlier-flagged product name: ``<exposure root>_<asn_id>_crf.fits``."""
    root = str(expname).rsplit("/", 1)[-1]
    for suffix in ("_cal.fits", "_crf.fits", ".fits"):
        if root.endswith(suffix):
            root = root[: -len(suffix)]
            break
    return f"{root}_{asn_id}_crf.fits"
