"""jump: flag cosmic-ray jumps in the group DQ of a ramp (JUMP_DET).

Two-point differences tested against a noise model from the readnoise reference and the pixel's
own median rate, with iterative rejection of the largest outlier and thresholds that depend on
the number of usable differences (JWST's rejection_threshold for five or more usable groups,
four_group_ and three_group_rejection_threshold for four and three); optional flagging of the
four neighbours, of groups after large jumps, and snowball expansion. Kernels in
``_kernels_jump`` (numba, parallel over rows). Differences from stcal are documented in
docs/detector1-ramp-jump.md.

``flag_jumps_inplace`` is the chain's entry point (writes the caller's groupdq/pixeldq);
``apply`` is the pure step: it copies only groupdq and pixeldq, never the 4-D data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms.detector1._kernels_jump import all_flagged, detect_kernel, post_kernel
from transforms.detector1._kernels_threads import n_threads, readonly, threads
from transforms.detector1._subarray import check_ramp, cut_ref, need_ref
from transforms.model import DataModel
from transforms.registry import register

NAME = "jump"
VERSION = "1.0"


@dataclass(frozen=True)
class JumpParams:
    """JWST's jump step parameters and defaults (jwst/jump/jump_step.py)."""

    rejection_threshold: float = 4.0
    three_group_rejection_threshold: float = 6.0
    four_group_rejection_threshold: float = 5.0
    maximum_cores: str = "1"
    flag_4_neighbors: bool = True
    max_jump_to_flag_neighbors: float = 1000.0
    min_jump_to_flag_neighbors: float = 10.0
    after_jump_flag_dn1: float = 0.0
    after_jump_flag_time1: float = 0.0
    after_jump_flag_dn2: float = 0.0
    after_jump_flag_time2: float = 0.0
    expand_large_events: bool = False
    min_sat_area: float = 1.0
    min_jump_area: float = 5.0
    expand_factor: float = 2.0
    use_ellipses: bool = False
    sat_required_snowball: bool = True
    min_sat_radius_extend: float = 2.5
    sat_expand: int = 2
    edge_size: int = 25
    mask_snowball_core_next_int: bool = True
    snowball_time_masked_next_int: int = 4000
    find_showers: bool = False
    max_shower_amplitude: float = 4.0
    extend_snr_threshold: float = 1.2
    extend_min_area: int = 90
    extend_inner_radius: float = 1.0
    extend_outer_radius: float = 2.6
    extend_ellipse_expand_ratio: float = 1.1
    time_masked_after_shower: float = 15.0
    min_diffs_single_pass: int = 10
    max_extended_radius: int = 200
    minimum_groups: int = 3
    minimum_sigclip_groups: int = 100
    only_use_ints: bool = True

    def __post_init__(self) -> None:
        for name in ("rejection_threshold", "three_group_rejection_threshold",
                     "four_group_rejection_threshold"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"jump: {name} must be positive, got {getattr(self, name)}")
        n_threads(self.maximum_cores)  # validates
        if self.find_showers:
            raise ValueError("jump: find_showers (MIRI shower flagging) is not implemented in "
                             "calops; leave it False (near-IR detectors do not need it)")


def usable_groups(groupdq: np.ndarray) -> int:
    """JWST's exposure-level count: groups minus the most groups that are DO_NOT_USE in every
    pixel of one integration."""
    nints, ngroups = groupdq.shape[:2]
    worst = 0
    for i in range(nints):
        worst = max(worst, sum(all_flagged(groupdq[i, g], DQ.DO_NOT_USE) for g in range(ngroups)))
    return ngroups - worst


def flag_jumps_inplace(
    data: np.ndarray,
    groupdq: np.ndarray,
    pixeldq: np.ndarray,
    gain2d: np.ndarray,
    readnoise2d: np.ndarray,
    *,
    group_time: float,
    nframes: int,
    params: JumpParams = JumpParams(),
) -> dict[str, Any]:
    """Flag jumps in ``groupdq`` (and bad-gain pixels in ``pixeldq``) in place; ``data`` is
    only read. Returns counts and the step status: {"status", "primary_crs", "snowballs"}."""
    if data.ndim != 4 or groupdq.shape != data.shape or pixeldq.shape != data.shape[2:]:
        raise ValueError(f"jump: expected data/groupdq (nints, ngroups, ny, nx) and pixeldq "
                         f"(ny, nx),"
                         f" got {data.shape}, {groupdq.shape}, {pixeldq.shape}")
    if groupdq.dtype != np.uint8 or not groupdq.flags.writeable:
        raise ValueError("jump: groupdq must be a writable uint8 array")
    nints, ngroups, ny, nx = data.shape
    if not group_time > 0 or nframes < 1:
        raise ValueError(f"jump: group_time must be > 0 and nframes >= 1, got {group_time}, "
                         f"{nframes}")
    gain = readonly(gain2d, np.float32)
    rn = readonly(readnoise2d, np.float32)
    if gain.shape != (ny, nx) or rn.shape != (ny, nx):
        raise ValueError(f"jump: gain {gain.shape} / readnoise {rn.shape} != image {(ny, nx)}")
    if ngroups <= 2:  # JWST skips the step
        return {"status": "SKIPPED", "primary_crs": 0, "snowballs": 0}
    pixeldq[~(gain > 0)] |= np.uint32(DQ.NO_GAIN_VALUE | DQ.DO_NOT_USE)
    if usable_groups(groupdq) < params.minimum_groups:  # stcal: runs, flags nothing
        return {"status": "COMPLETE", "primary_crs": 0, "snowballs": 0}
    neigh = bool(params.flag_4_neighbors)
    src = np.zeros(data.shape if neigh else (1, 1, 1, 1), np.uint8)
    nb_min = float(params.min_jump_to_flag_neighbors) if neigh else np.inf
    nb_max = float(params.max_jump_to_flag_neighbors) if neigh else -np.inf
    ncr = np.zeros(ny, np.int64)
    n1 = int(params.after_jump_flag_time1 // group_time)
    n2 = int(params.after_jump_flag_time2 // group_time)
    gmed = 0.0
    if n1 > 0 or n2 > 0:  # the after-jump thresholds are in electrons: only then needed
        finite_gain = gain[np.isfinite(gain)]
        gmed = float(np.median(finite_gain)) if finite_gain.size else 0.0
    d = readonly(data, np.float32)
    with threads(params.maximum_cores):
        detect_kernel(d, groupdq, gain, rn, float(nframes),
                      float(params.rejection_threshold),
                      float(params.four_group_rejection_threshold),
                      float(params.three_group_rejection_threshold),
                      nb_min, nb_max, src, ncr)
        post_kernel(d, groupdq, gain, src, neigh,
                    float(params.after_jump_flag_dn1) * gmed, n1,
                    float(params.after_jump_flag_dn2) * gmed, n2)
    snowballs = 0
    if params.expand_large_events:
        from transforms.detector1._kernels_snowball import flag_snowballs
        snowballs = flag_snowballs(groupdq, params, float(group_time), edge=int(params.edge_size))
    return {"status": "COMPLETE", "primary_crs": int(ncr.sum()), "snowballs": snowballs}


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: JumpParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The chain's form: flag jumps in ``arrays['groupdq']``/``['pixeldq']`` (writable buffers
    the chain owns); returns the metadata updates."""
    data = arrays["data"]
    shape = data.shape[-2:]
    gain2d = cut_ref(need_ref(refs, "gain", NAME), "data", meta, shape)
    rn2d = cut_ref(need_ref(refs, "readnoise", NAME), "data", meta, shape)
    group_time = meta.get("exposure.group_time")
    nframes = meta.get("exposure.nframes")
    if group_time is None or nframes is None:
        raise KeyError("jump: ramp is missing metadata exposure.group_time / exposure.nframes")
    out = flag_jumps_inplace(data, arrays["groupdq"], arrays["pixeldq"], gain2d, rn2d,
                             group_time=float(group_time), nframes=int(nframes), params=params)
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
    """Flag cosmic-ray jumps (JUMP_DET) in the group DQ of a ramp."""
    check_ramp(model, NAME)
    arrays = {"data": model["data"],  # read only: never copied
              "groupdq": np.array(model["groupdq"], dtype=np.uint8, copy=True),
              "pixeldq": np.array(model["pixeldq"], dtype=np.uint32, copy=True)}
    updates = apply_inplace(arrays, refs, params, model.meta)
    if updates[f"cal_step.{NAME}"] == "SKIPPED":
        return model.replace(meta=updates)
    return model.replace(arrays={"groupdq": arrays["groupdq"], "pixeldq": arrays["pixeldq"]},
                         meta=updates)
