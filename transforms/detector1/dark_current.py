"""dark_current: subtract the dark reference, averaged to the exposure's readout pattern.

As stcal.dark_current: the dark reference is a stack of single frames (NFRAMES=1, GROUPGAP=0
for NIR darks). When the science NFRAMES/GROUPGAP differ, dark group ``g`` is the mean of dark
frames ``g*(nframes+groupgap) ... + nframes - 1`` (so MEDIUM8 averages 8 frames and skips 2);
when they match the dark groups are subtracted directly. A dark with larger NFRAMES or GROUPGAP
than the science makes the step SKIPPED. A dark too short for the exposure is extended by
linear extrapolation of its last two frames (JWST extrapolates too). NaNs in the dark count
as 0; the dark's DQ is OR-ed into pixeldq. The averaged dark is computed pixel by pixel while
subtracting (one parallel pass per integration), so the step allocates nothing and reads only
the dark frames the exposure's groups use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from transforms.detector1._kernels_threads import for_rows, readonly
from transforms.model import DataModel
from transforms.registry import register

from ._subarray import apply_by_copy, cut_ref, need_ref

NAME = "dark_current"
VERSION = "1.0"


@dataclass(frozen=True)
class DarkCurrentParams:
    """JWST dark_current parameters (dark_output is a file name: not used in transforms).

    ``average_dark_current`` (e-/s), when given, is recorded as metadata
    ``exposure.average_dark_current`` for ramp fitting's Poisson variance."""

    dark_output: str | None = None
    average_dark_current: float | None = None


@njit(nogil=True, cache=True, error_model="numpy")
def _dark_value(frames, start, nframes, y, x):
    """Mean of frames[start:start+nframes] at (y, x), extrapolating past the end linearly;
    NaN frames count as 0."""
    nd = frames.shape[0]
    acc = 0.0
    for f in range(start, start + nframes):
        if f < nd:
            v = frames[f, y, x]
            acc += v if v == v else 0.0
        else:
            last = frames[nd - 1, y, x]
            prev = frames[nd - 2, y, x] if nd > 1 else last
            last = last if last == last else 0.0
            prev = prev if prev == prev else 0.0
            acc += last + (f - nd + 1) * (last - prev)
    return acc / nframes


@njit(nogil=True, cache=True, error_model="numpy")
def _subtract_dark_rows(row0, row1, stack, frames, direct, step, nframes):
    ng, ny, nx = stack.shape
    nd = frames.shape[0]
    for y in range(row0, row1):
        for g in range(ng):
            row = stack[g, y]
            if direct and g < nd:
                drow = frames[g, y]
                for x in range(nx):
                    d = drow[x]
                    if d == d:
                        row[x] -= d
            else:
                s = 1 if direct else step
                n = 1 if direct else nframes
                for x in range(nx):
                    d = np.float32(_dark_value(frames, g * s, n, y, x))
                    if d == d:
                        row[x] -= d


def _subtract_dark(stack, frames, direct, step, nframes):
    """stack[g] -= dark group g for every group of one integration, in one parallel pass over
    rows: the dark frame itself when ``direct`` and it exists, else the mean of
    frames[g*step : g*step+nframes] rounded to float32 (as a float32 image of it would be).
    NaN dark values count as 0 (the science value is left as it is)."""
    for_rows(_subtract_dark_rows, stack.shape[1], stack, readonly(frames, frames.dtype), direct,
             step, nframes)


def readout(meta: Mapping[str, Any]) -> tuple[int, int]:
    """(nframes, groupgap) of a product, JWST defaults 1 and 0 when absent."""
    return int(meta.get("exposure.nframes") or 1), int(meta.get("exposure.groupgap") or 0)


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: DarkCurrentParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Subtract the (averaged) dark from the ramp buffer in place."""
    dark = need_ref(refs, "dark", NAME)
    data, pdq = arrays["data"], arrays["pixeldq"]
    nints, ngroups, ny, nx = data.shape
    sci_nf, sci_gap = readout(meta)
    drk_nf, drk_gap = readout(dark.meta)
    if drk_nf > sci_nf or drk_gap > sci_gap:
        return {f"cal_step.{NAME}": "SKIPPED"}
    ddata = cut_ref(dark, "data", meta, (ny, nx))
    if ddata.ndim == 3:
        ddata = ddata[np.newaxis]
    if ddata.ndim != 4:
        raise ValueError(f"dark_current: dark data must be 3-D or 4-D, got {ddata.shape}")
    direct = sci_nf == drk_nf and sci_gap == drk_gap
    for i in range(nints):
        frames = ddata[min(i, ddata.shape[0] - 1)]  # no copy: only the frames used are read
        _subtract_dark(data[i], frames, direct, sci_nf + sci_gap, sci_nf)
    if "dq" in dark.arrays:
        ddq = np.asarray(cut_ref(dark, "dq", meta, (ny, nx))).astype(np.uint32, copy=False)
        while ddq.ndim > 2:
            ddq = np.bitwise_or.reduce(ddq, axis=0)
        np.bitwise_or(pdq, ddq, out=pdq)
    updates: dict[str, Any] = {f"cal_step.{NAME}": "COMPLETE"}
    adc = params.average_dark_current
    if adc is None:
        adc = dark.get("exposure.average_dark_current")
    if adc is not None:
        updates["exposure.average_dark_current"] = float(adc)
    return updates


@register(NAME, VERSION, "detector1", DarkCurrentParams, ("dark",),
          keyword="S_DARK", inplace=apply_inplace, ref_arrays={"dark": ("data", "dq")})
def apply(model: DataModel, refs: Mapping[str, DataModel], params: DarkCurrentParams) -> DataModel:
    """Subtract the dark averaged to the science NFRAMES/GROUPGAP."""
    return apply_by_copy(model, refs, params, NAME, apply_inplace)
