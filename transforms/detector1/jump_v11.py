"""jump 1.1: flag cosmic-ray jumps with a generalised-least-squares step test (JUMP_DET).

Same parameters (JWST's, ``jump.JumpParams``), references (gain, readnoise), outputs and
post-processing (neighbours, after-jump flags, snowballs) as jump 1.0; the detection statistic
is new (``_kernels_jump_v11``): for each first difference ``k`` of a pixel, the significance
``z_k`` of a jump there given every other group of the ramp and the pixel's full noise
covariance (read noise shared by adjacent differences, Poisson noise of frame-averaged groups,
and the correlated read noise the exposure shows beyond its read-noise reference, measured on
the exposure itself). ``z`` is a unit normal under the null hypothesis, so the thresholds mean
sigma. Differences from stcal and from 1.0, and the measured recall/false-flag rates, are in
docs/detector1-ramp-jump.md and docs/validation.md.

Decisions (``SIDED``, ``LOOK_ELSEWHERE``, measured on the simulator, see the docs):
cosmic rays add charge, so a jump is a *positive* ``z`` above the threshold (stcal tests
``|d - median|``: 1.0 and stcal also flag negative steps); the threshold is applied to each
difference as in stcal (no correction for the number of differences searched).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms.detector1._kernels_jump import all_flagged, post_kernel
from transforms.detector1._kernels_jump_v11 import detect_kernel, excess_kernel, exposure_basis
from transforms.detector1._kernels_threads import readonly, threads
from transforms.detector1._subarray import check_ramp, cut_ref, need_ref
from transforms.detector1.jump import JumpParams, usable_groups
from transforms.model import DataModel
from transforms.registry import register

NAME = "jump"
VERSION = "1.1"
SIDED = 1  # 1: positive jumps only (cosmic rays add charge); 2: |z| as stcal
LOOK_ELSEWHERE = False  # True: thresholds corrected for the number of differences searched
SPLIT = True  # frame-averaged groups: also test a hit shared by two adjacent differences


def thresholds(params: JumpParams, ntot: int, sided: int = SIDED,
               look_elsewhere: bool = LOOK_ELSEWHERE) -> np.ndarray:
    """``thr[n]``: the z threshold for n usable differences (JWST's three thresholds)."""
    from statistics import NormalDist

    thr = np.full(ntot + 1, np.inf)
    for n in range(2, ntot + 1):
        t = float(params.rejection_threshold if n >= 4 else
                  params.four_group_rejection_threshold if n == 3 else
                  params.three_group_rejection_threshold)
        if look_elsewhere:
            p = (1.0 - NormalDist().cdf(t)) / n
            t = NormalDist().inv_cdf(1.0 - p)
        thr[n] = t
    return thr


def flag_jumps_inplace(
    data: np.ndarray,
    groupdq: np.ndarray,
    pixeldq: np.ndarray,
    gain2d: np.ndarray,
    readnoise2d: np.ndarray,
    *,
    group_time: float,
    frame_time: float,
    nframes: int,
    groupgap: int = 0,
    params: JumpParams = JumpParams(),
    sided: int = SIDED,
    look_elsewhere: bool = LOOK_ELSEWHERE,
    split: bool = SPLIT,
) -> dict[str, Any]:
    """Flag jumps in ``groupdq`` (and bad-gain pixels in ``pixeldq``) in place; ``data`` is only
    read. Returns {"status", "primary_crs", "snowballs", "excess_read_var"}."""
    if data.ndim != 4 or groupdq.shape != data.shape or pixeldq.shape != data.shape[2:]:
        raise ValueError(f"jump: expected data/groupdq (nints, ngroups, ny, nx) and pixeldq "
                         f"(ny, nx), got {data.shape}, {groupdq.shape}, {pixeldq.shape}")
    if groupdq.dtype != np.uint8 or not groupdq.flags.writeable:
        raise ValueError("jump: groupdq must be a writable uint8 array")
    nints, ngroups, ny, nx = data.shape
    if not group_time > 0 or not frame_time > 0 or nframes < 1 or groupgap < 0:
        raise ValueError(f"jump: group_time and frame_time must be > 0, nframes >= 1 and "
                         f"groupgap >= 0, got {group_time}, {frame_time}, {nframes}, {groupgap}")
    gain = readonly(gain2d, np.float32)
    rn = readonly(readnoise2d, np.float32)
    if gain.shape != (ny, nx) or rn.shape != (ny, nx):
        raise ValueError(f"jump: gain {gain.shape} / readnoise {rn.shape} != image {(ny, nx)}")
    skipped = {"status": "SKIPPED", "primary_crs": 0, "snowballs": 0, "excess_read_var": 0.0}
    if ngroups <= 2:  # JWST skips the step
        return skipped
    pixeldq[~(gain > 0)] |= np.uint32(DQ.NO_GAIN_VALUE | DQ.DO_NOT_USE)
    if usable_groups(groupdq) < params.minimum_groups:  # stcal: runs, flags nothing
        return dict(skipped, status="COMPLETE")
    tmat, pmat, lam, vmat = exposure_basis(ngroups, nframes, groupgap)
    d = readonly(data, np.float32)
    ntot = nints * (ngroups - 1)
    thr = thresholds(params, ntot, sided, look_elsewhere)
    neigh = bool(params.flag_4_neighbors)
    src = np.zeros(data.shape if neigh else (1, 1, 1, 1), np.uint8)
    nb_min = float(params.min_jump_to_flag_neighbors) if neigh else np.inf
    nb_max = float(params.max_jump_to_flag_neighbors) if neigh else -np.inf
    ncr = np.zeros(ny, np.int64)
    n1 = int(params.after_jump_flag_time1 // group_time)
    n2 = int(params.after_jump_flag_time2 // group_time)
    gmed = 0.0
    if n1 > 0 or n2 > 0:
        finite_gain = gain[np.isfinite(gain)]
        gmed = float(np.median(finite_gain)) if finite_gain.size else 0.0
    with threads(params.maximum_cores):
        excess = excess_kernel(d, groupdq, gain, rn, float(nframes), float(frame_time),
                               float(group_time), tmat, pmat)
        detect_kernel(d, groupdq, gain, rn, float(nframes), excess, float(frame_time),
                      float(group_time), tmat, pmat, lam, vmat, thr, int(sided),
                      bool(split and nframes > 1), nb_min, nb_max, src, ncr)
        post_kernel(d, groupdq, gain, src, neigh,
                    float(params.after_jump_flag_dn1) * gmed, n1,
                    float(params.after_jump_flag_dn2) * gmed, n2)
    snowballs = 0
    if params.expand_large_events:
        from transforms.detector1._kernels_snowball import flag_snowballs
        snowballs = flag_snowballs(groupdq, params, float(group_time), edge=int(params.edge_size))
    return {"status": "COMPLETE", "primary_crs": int(ncr.sum()), "snowballs": snowballs,
            "excess_read_var": float(np.median(excess))}


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: JumpParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The chain's form: flag jumps in ``arrays['groupdq']``/``['pixeldq']``; returns the
    metadata updates."""
    data = arrays["data"]
    shape = data.shape[-2:]
    gain2d = cut_ref(need_ref(refs, "gain", NAME), "data", meta, shape)
    rn2d = cut_ref(need_ref(refs, "readnoise", NAME), "data", meta, shape)
    group_time = meta.get("exposure.group_time")
    frame_time = meta.get("exposure.frame_time")
    nframes = meta.get("exposure.nframes")
    if group_time is None or nframes is None or frame_time is None:
        raise KeyError("jump: ramp is missing metadata exposure.group_time / frame_time / "
                       "nframes")
    groupgap = int(meta.get("exposure.groupgap") or 0)
    out = flag_jumps_inplace(data, arrays["groupdq"], arrays["pixeldq"], gain2d, rn2d,
                             group_time=float(group_time), frame_time=float(frame_time),
                             nframes=int(nframes), groupgap=groupgap, params=params)
    updates: dict[str, Any] = {f"cal_step.{NAME}": out["status"]}
    if out["status"] == "COMPLETE":
        nints, ngroups, ny, nx = data.shape
        all_dnu = sum(all_flagged(arrays["groupdq"][i, g], DQ.DO_NOT_USE)
                      for i in range(nints) for g in range(ngroups))
        total_groups = nints * ngroups - all_dnu - nints
        if total_groups >= 1:
            total = float(group_time) * total_groups * ny * nx
            updates["exposure.primary_cosmic_rays"] = 1000.0 * out["primary_crs"] / total
            updates["exposure.extended_emission_events"] = 1e6 * out["snowballs"] / total
    return updates


@register(NAME, VERSION, "detector1", JumpParams, ("gain", "readnoise"),
          keyword="S_JUMP", inplace=apply_inplace, exec_only=("maximum_cores",))
def apply(model: DataModel, refs: Mapping[str, DataModel], params: JumpParams) -> DataModel:
    """Flag cosmic-ray jumps (JUMP_DET) with a generalised-least-squares step test."""
    check_ramp(model, NAME)
    arrays = {"data": model["data"],  # read only: never copied
              "groupdq": np.array(model["groupdq"], dtype=np.uint8, copy=True),
              "pixeldq": np.array(model["pixeldq"], dtype=np.uint32, copy=True)}
    updates = apply_inplace(arrays, refs, params, model.meta)
    if updates[f"cal_step.{NAME}"] == "SKIPPED":
        return model.replace(meta=updates)
    return model.replace(arrays={"groupdq": arrays["groupdq"], "pixeldq": arrays["pixeldq"]},
                         meta=updates)
