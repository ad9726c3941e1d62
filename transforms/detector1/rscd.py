"""rscd: flag the first groups of MIRI integrations DO_NOT_USE (reset switch charge decay).

As jwst 3.0's rscd step, which flags rather than corrects: the RSCD reference's
``rscd_group_skip_table`` gives, for the exposure's SUBARRAY (SUBPRISM read as SLITLESSPRISM)
and READPATT, how many initial groups to flag in integration 1 (``group_skip1``: the first-frame
effect; a negative value means 1) and in later integrations (``group_skip``: the RSCD transient).
No matching row: SKIPPED. Fewer than 3 groups: SKIPPED. With 5 groups or fewer one group is
flagged in every integration; the count is lowered to ``ngroups - 3`` when fewer than ``skip + 3``
groups would remain. Saturation backs the count off per pixel: while group ``skip + 1`` (and,
stepping down, earlier groups) is SATURATED and group 0 is not, one group fewer is flagged;
pixels backed off in any integration get FLUX_ESTIMATED. The counts are recorded as jwst
records them (``rscd.ngroups_skip_int1/int2p``, ``rscd.keep_groups_saturation_int1/int2p``,
``rscd.keep_bright_firstgroup_int1/int2p``). Segmented exposures count integrations from
``exposure.integration_start``. MIRI only; a pure flagging step (numpy on the uint8 groupdq).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms.model import DataModel
from transforms.registry import register

from ._subarray import apply_by_copy, need_ref

NAME = "rscd"
VERSION = "1.0"
TABLE = "rscd_group_skip_table"


@dataclass(frozen=True)
class RscdParams:
    """jwst's rscd step has no parameters."""


def skip_counts(ref: DataModel, subarray: str, readpatt: str) -> tuple[int, int] | None:
    """(group_skip1, group_skip) of the reference row for subarray/readpatt, or None."""
    sub = "SLITLESSPRISM" if str(subarray).upper() == "SUBPRISM" else str(subarray)
    cols = {c: ref.arrays.get(f"{TABLE}.{c}") for c in ("subarray", "readpatt", "group_skip1",
                                                         "group_skip")}
    if any(v is None for v in cols.values()):
        raise ValueError(f"rscd: the RSCD reference lacks its {TABLE} columns "
                         "(subarray, readpatt, group_skip1, group_skip)")
    for k in range(len(cols["subarray"])):
        if str(cols["subarray"][k]).strip() == sub and \
                str(cols["readpatt"][k]).strip() == str(readpatt):
            return int(cols["group_skip1"][k]), int(cols["group_skip"][k])
    return None


def _flag(gdq: np.ndarray, pdq: np.ndarray, skip: int) -> tuple[int, int]:
    """jwst's flag_rscd + apply_rscd_flags on integrations ``gdq`` (n, ngroups, ny, nx)."""
    sat = np.uint8(DQ.SATURATED)
    skip_arr = np.full((gdq.shape[0],) + gdq.shape[2:], skip, np.int64)
    min_group = skip + 2  # 1-based
    g1_sat = (gdq[:, 0] & sat) != 0
    problem = ((gdq[:, min_group - 1] & sat) != 0) & ~g1_sat
    lowered = only_one = 0
    if problem.any():
        while problem.any() and min_group > 1:
            skip_arr[problem] = np.maximum(skip_arr[problem] - 1, 0)
            min_group -= 1
            problem = ((gdq[:, min_group - 1] & sat) != 0) & ~g1_sat
        backed = np.any(skip_arr < skip, axis=0)
        lowered = int(backed.sum())
        if lowered:
            pdq[backed] |= np.uint32(DQ.PIXEL["FLUX_ESTIMATED"])
        skip_arr = np.maximum(skip_arr, 0)
        only_one = int(np.any(skip_arr == 0, axis=0).sum())
    # groups 0 .. skip-1 of each pixel: one 2-D mask per group (no 4-D temporary)
    for g in range(min(int(skip_arr.max(initial=0)), gdq.shape[1])):
        plane = gdq[:, g]
        plane[skip_arr > g] |= np.uint8(DQ.DO_NOT_USE)
    return lowered, only_one


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: RscdParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Flag the RSCD-affected initial groups in the ramp buffer's groupdq in place."""
    ref = need_ref(refs, "rscd", NAME)
    gdq, pdq = arrays["groupdq"], arrays["pixeldq"]
    skipped = {f"cal_step.{NAME}": "SKIPPED"}
    counts = skip_counts(ref, str(meta.get("subarray.name", "")),
                         str(meta.get("exposure.readpatt", "")))
    if counts is None:
        return skipped
    skip1, skip2 = counts
    skip1 = 1 if skip1 < 0 else skip1
    ngroups = int(meta.get("exposure.ngroups") or gdq.shape[1])
    nints = int(meta.get("exposure.nints") or gdq.shape[0])
    if ngroups < 3:
        return skipped
    if ngroups <= 5:
        skip1 = skip2 = 1
    if ngroups < skip1 + 3:
        skip1 = max(0, ngroups - 3)
    if nints > 1 and ngroups < skip2 + 3:
        skip2 = max(0, ngroups - 3)
    start = int(meta.get("exposure.integration_start") or 1)
    out: dict[str, Any] = {}
    if start == 1:
        lowered, one = _flag(gdq[0:1], pdq, skip1)
        out.update({"rscd.keep_bright_firstgroup_int1": one,
                    "rscd.keep_groups_saturation_int1": lowered,
                    "rscd.ngroups_skip_int1": skip1})
    first_later = 1 if start == 1 else 0
    if nints > 1 and gdq.shape[0] > first_later:
        lowered, one = _flag(gdq[first_later:], pdq, skip2)
        out.update({"rscd.keep_bright_firstgroup_int2p": one,
                    "rscd.keep_groups_saturation_int2p": lowered,
                    "rscd.ngroups_skip_int2p": skip2})
    out[f"cal_step.{NAME}"] = "COMPLETE"
    return out


@register(NAME, VERSION, "detector1", RscdParams, ("rscd",), keyword="S_RSCD",
          inplace=apply_inplace, instruments=("MIRI",))
def apply(model: DataModel, refs: Mapping[str, DataModel], params: RscdParams) -> DataModel:
    """Flag the initial groups of each integration DO_NOT_USE (MIRI, RSCD reference)."""
    return apply_by_copy(model, refs, params, NAME, apply_inplace)
