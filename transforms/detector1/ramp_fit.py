"""ramp_fit: count rates from up-the-ramp groups (rate and rateints products).

Ordinary least squares with optimal (Fixsen et al. 2000) weighting, ramps split into segments
at jumps, saturated and DO_NOT_USE groups left out, segments and integrations combined by
inverse variance; VAR_POISSON, VAR_RNOISE, ERR and DQ as stcal's OLS_C defines them. The work
is one numba kernel (``_kernels_ramp``) parallel over rows; nothing 4-D is copied.

``fit_ramps(model, refs, params) -> (rate, rateints)`` is what the detector1 chain calls;
the registered ``apply`` returns the rate alone. ``fit_ramps_arrays`` is the array-level entry
point for a chain that owns its ramp buffer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms.detector1._kernels_ramp import fit_ramps_kernel, weight_table
from transforms.detector1._kernels_threads import n_threads, readonly, threads
from transforms.detector1._subarray import check_ramp, cut_ref, need_ref
from transforms.model import DataModel
from transforms.registry import register

NAME = "ramp_fit"
VERSION = "1.0"


@dataclass(frozen=True)
class RampFitParams:
    """JWST's ramp_fit parameters and defaults (jwst/ramp_fitting/ramp_fit_step.py)."""

    algorithm: str = "OLS_C"
    weighting: str = "optimal"
    suppress_one_group: bool = True
    firstgroup: int | None = None
    lastgroup: int | None = None
    maximum_cores: str = "1"

    def __post_init__(self) -> None:
        if str(self.algorithm).upper() != "OLS_C":
            raise ValueError(f"ramp_fit: algorithm {self.algorithm!r} is not available; "
                             "use 'OLS_C'")
        if self.weighting != "optimal":
            raise ValueError(f"ramp_fit: weighting {self.weighting!r} is not available; "
                             "use 'optimal'")
        n_threads(self.maximum_cores)  # validates


def group_window(firstgroup: int | None, lastgroup: int | None, ngroups: int) -> tuple[int, int]:
    """The (first, last) groups used, JWST rules: out-of-range values are clamped and an empty
    or inverted window is ignored."""
    lo = 0 if firstgroup is None else max(int(firstgroup), 0)
    hi = ngroups - 1 if lastgroup is None else min(int(lastgroup), ngroups - 1)
    if lo >= hi:
        lo, hi = 0, ngroups - 1
    return lo, hi


def fit_ramps_arrays(
    data: np.ndarray,
    groupdq: np.ndarray,
    pixeldq: np.ndarray,
    gain2d: np.ndarray,
    readnoise2d: np.ndarray,
    *,
    frame_time: float,
    group_time: float,
    nframes: int,
    params: RampFitParams = RampFitParams(),
    zeroframe: np.ndarray | None = None,
    dark2d: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Fit every pixel; returns (rate arrays, rateints arrays) named data/dq/err/var_poisson/
    var_rnoise. Inputs are read, never written. Readnoise is DN per CDS, gain e-/DN."""
    if data.ndim != 4:
        raise ValueError(f"ramp_fit: data must be 4-D (nints, ngroups, ny, nx), got {data.shape}")
    nints, ngroups, ny, nx = data.shape
    if groupdq.shape != data.shape or pixeldq.shape != (ny, nx):
        raise ValueError(f"ramp_fit: groupdq {groupdq.shape} / pixeldq {pixeldq.shape} do not "
                         f"match data {data.shape}")
    if nints < 1 or ngroups < 1:
        raise ValueError(f"ramp_fit: ramp has no groups (shape {data.shape})")
    if not (group_time > 0 and frame_time > 0 and nframes >= 1):
        raise ValueError(f"ramp_fit: exposure timing must be positive (group_time={group_time}, "
                         f"frame_time={frame_time}, nframes={nframes})")
    suppress = bool(params.suppress_one_group) and ngroups > 1
    g_lo, g_hi = group_window(params.firstgroup, params.lastgroup, ngroups)
    has_zf = zeroframe is not None
    zf = readonly(zeroframe if has_zf else np.zeros((nints, 1, 1)), np.float32)
    if has_zf and zf.shape != (nints, ny, nx):
        raise ValueError(f"ramp_fit: zeroframe shape {zf.shape} != {(nints, ny, nx)}")
    # float32 zeros are calloc'd pages the kernel only reads: no 16 MB full-frame copy
    dark = readonly(np.zeros((ny, nx), np.float32) if dark2d is None else dark2d, np.float32)
    rate = {k: np.empty((ny, nx), np.float32) for k in ("data", "var_poisson", "var_rnoise", "err")}
    rate["dq"] = np.empty((ny, nx), np.uint32)
    ints = {k: np.empty((nints, ny, nx), np.float32)
            for k in ("data", "var_poisson", "var_rnoise", "err")}
    ints["dq"] = np.empty((nints, ny, nx), np.uint32)
    with threads(params.maximum_cores):
        fit_ramps_kernel(
            readonly(data, np.float32), readonly(groupdq, np.uint8),
            readonly(pixeldq, np.uint32), readonly(gain2d, np.float32),
            readonly(readnoise2d, np.float32), dark, zf, has_zf, suppress,
            float(frame_time), float(group_time), float(nframes), g_lo, g_hi,
            weight_table(ngroups),
            rate["data"], rate["dq"], rate["var_poisson"], rate["var_rnoise"], rate["err"],
            ints["data"], ints["dq"], ints["var_poisson"], ints["var_rnoise"], ints["err"],
        )
    return rate, ints


def _timing(meta: Mapping[str, Any]) -> dict[str, Any]:
    missing = [k for k in ("exposure.frame_time", "exposure.group_time", "exposure.nframes")
               if meta.get(k) is None]
    if missing:
        raise KeyError(f"ramp_fit: ramp is missing metadata {', '.join(missing)}")
    return {"frame_time": float(meta["exposure.frame_time"]),
            "group_time": float(meta["exposure.group_time"]),
            "nframes": int(meta["exposure.nframes"])}


def fit_ramps(model: DataModel, refs: Mapping[str, DataModel],
              params: RampFitParams = RampFitParams()) -> tuple[DataModel, DataModel]:
    """The rate and rateints products of a ramp (gain e-/DN and readnoise DN references)."""
    rate, ints, meta = fit_ramps_owned(model, refs, params)
    return DataModel("rate", rate, meta), DataModel("rateints", ints, meta)


def fit_ramps_owned(model: DataModel, refs: Mapping[str, DataModel],
                    params: RampFitParams = RampFitParams()
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """``fit_ramps`` before its products are made: the new (writable, unshared) rate and
    rateints arrays and their metadata, for a later version to amend without copying."""
    check_ramp(model, NAME)
    shape = model["data"].shape[-2:]
    gain_ref = need_ref(refs, "gain", NAME)
    rn_ref = need_ref(refs, "readnoise", NAME)
    gain2d = cut_ref(gain_ref, "data", model.meta, shape)
    rn2d = cut_ref(rn_ref, "data", model.meta, shape)
    rate, ints = fit_ramps_arrays(
        model["data"], model["groupdq"], model["pixeldq"], gain2d, rn2d,
        params=params, zeroframe=model.arrays.get("zeroframe"),
        dark2d=model.arrays.get("average_dark_current"), **_timing(model.meta),
    )
    meta = {k: v for k, v in model.meta.items()}
    meta.update({f"cal_step.{NAME}": "COMPLETE", "bunit_data": "DN/s", "bunit_err": "DN/s"})
    gain_factor = gain_ref.get("exposure.gain_factor")
    if gain_factor is not None:  # carried for gain_scale, as JWST does
        meta["exposure.gain_factor"] = gain_factor
    return rate, ints, meta


@register(NAME, VERSION, "detector1", RampFitParams, ("gain", "readnoise"),
          keyword="S_RAMP", fit=fit_ramps, exec_only=("maximum_cores",))
def apply(model: DataModel, refs: Mapping[str, DataModel], params: RampFitParams) -> DataModel:
    """Fit ramps to count rates (the rate product; ``fit_ramps`` also gives rateints)."""
    return fit_ramps(model, refs, params)[0]
