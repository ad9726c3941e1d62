"""saturation: flag groups at or above the saturation threshold, and their neighbours.

As JWST (stcal.saturation) does it: a group is SATURATED once the pixel reached the reference
threshold in that group or any earlier one; values <= 0 are AD_FLOOR + DO_NOT_USE; each
group's SATURATED pixels are grown by ``n_pix_grow_sat`` pixels (a square box). With
``use_readpatt`` and frame-averaged groups (NFRAMES > 1), a group whose average already reached
the diluted threshold ``thresh * mean(frames)/last frame`` just before a saturated group is
flagged DO_NOT_USE (grown likewise), and group 2 is flagged DO_NOT_USE when group 3 saturated
and group 2's frames would have saturated part-way through. Thresholds that are NaN or flagged
NO_SAT_CHECK become 65536 (never reached by 16-bit data); NaN ones get NO_SAT_CHECK in pixeldq.
The saturation reference's DQ is OR-ed into pixeldq. A zero frame is zeroed where saturated.
NIRSpec IRS2 ramps (3200 raw rows) are flagged on their normal pixels only, as jwst's
irs2_flag_saturation does (``_saturation_irs2``; such ramps were refused before).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from transforms import dq as DQ
from transforms.detector1._kernels_threads import for_rows, readonly
from transforms.model import DataModel
from transforms.registry import register

from transforms.instruments.nirspec.detector import is_irs2_shape

from . import _saturation_irs2 as _irs2
from ._subarray import apply_by_copy, cut_ref, need_ref

NAME = "saturation"
VERSION = "1.0"
ATOD_LIMIT = 65535.0  # hard limit of the 16-bit A-to-D converter

_SAT = np.uint8(DQ.SATURATED)
_DNU = np.uint8(DQ.DO_NOT_USE)
_FLOOR_DNU = np.uint8(DQ.AD_FLOOR | DQ.DO_NOT_USE)


@dataclass(frozen=True)
class SaturationParams:
    """JWST defaults: grow saturation by 1 pixel; use the read pattern for grouped data."""

    n_pix_grow_sat: int = 1
    use_readpatt: bool = True


@njit(nogil=True, cache=True, error_model="numpy")
def _flag_threshold_rows(row0, row1, data, gdq, thresh, sat, floor_dnu):
    ng, ny, nx = data.shape
    for y in range(row0, row1):
        reached = np.zeros(nx, dtype=np.bool_)
        for g in range(ng):
            for x in range(nx):
                v = data[g, y, x]
                if v >= thresh[y, x]:
                    reached[x] = True
                f = gdq[g, y, x]
                if reached[x]:
                    f |= sat
                if v <= 0:
                    f |= floor_dnu
                gdq[g, y, x] = f


def _flag_threshold(data, gdq, thresh, sat, floor_dnu):
    """Per pixel: SATURATED from the first group at/above threshold on; AD floor at <= 0."""
    for_rows(_flag_threshold_rows, data.shape[1], data, gdq, readonly(thresh, thresh.dtype), sat,
             floor_dnu)


@njit(nogil=True, cache=True, error_model="numpy")
def _grow_into(plane, srcbit, dstbit, n, pos, cnt):
    """plane |= dstbit wherever a (2n+1)^2 box around the pixel holds srcbit (clipped at edges).

    Sparse: the columns holding srcbit are listed per row first (``pos``/``cnt``, scratch of
    the plane's shape, 8 pixels tested at a time), then each row ORs the boxes of the listed
    pixels of its 2n+1 neighbouring rows. About 1 ms per 2048x2048 plane on one thread: not
    worth a parallel region (thread wake-ups cost more than that on a busy machine)."""
    ny, nx = plane.shape
    nw = nx // 8
    wmask = np.uint64(srcbit) * np.uint64(0x0101010101010101)
    for y in range(ny):
        c = 0
        row = plane[y]
        words = row[:nw * 8].view(np.uint64)  # 8 pixels per test: most words hold no flag
        for w in range(nw):
            if words[w] & wmask:
                for x in range(8 * w, 8 * w + 8):
                    if row[x] & srcbit:
                        pos[y, c] = x
                        c += 1
        for x in range(nw * 8, nx):
            if row[x] & srcbit:
                pos[y, c] = x
                c += 1
        cnt[y] = c
    for y in range(ny):
        row = plane[y]
        for yy in range(max(0, y - n), min(ny, y + n + 1)):
            for k in range(cnt[yy]):
                x = pos[yy, k]
                for xx in range(max(0, x - n), min(nx, x + n + 1)):
                    row[xx] |= dstbit


@njit(nogil=True, cache=True, error_model="numpy")
def _partial_saturation(plane, thisdq, nextdq, thresh, dilution, nosat, sat, dnu, out):
    """out = DNU where the group average reached the diluted threshold before saturating."""
    ny, nx = plane.shape
    for y in range(ny):
        for x in range(nx):
            t = thresh[y, x] if nosat[y, x] else thresh[y, x] * dilution
            hit = (plane[y, x] >= t) and (thisdq[y, x] & (sat | dnu)) == 0 \
                and (nextdq[y, x] & sat) != 0
            out[y, x] = dnu if hit else 0


@njit(nogil=True, cache=True, error_model="numpy")
def _group2_check(d0, d1, dq1, dq2, thresh, bias, mean0, last2, nframes1, sat, dnu):
    """Flag group 2 DO_NOT_USE when group 3 saturated and group 2 saturated part-way through."""
    ny, nx = d0.shape
    for y in range(ny):
        for x in range(nx):
            b = bias[y, x]
            t = thresh[y, x]
            ok = ((d0[y, x] - b) / mean0) * last2 + b < t
            ok = ok and (d1[y, x] - d0[y, x]) > (t - d0[y, x]) / nframes1
            ok = ok and (dq2[y, x] & sat) != 0 and (dq1[y, x] & sat) == 0
            if ok:
                dq1[y, x] |= dnu


@njit(nogil=True, cache=True, error_model="numpy")
def _thresholds(raw, rdq, nocheck_bit, limit, thresh, sdq, nocheck):
    """One pass over the reference: NaN -> NO_SAT_CHECK; unchecked thresholds -> limit."""
    ny, nx = raw.shape
    for y in range(ny):
        for x in range(nx):
            t = raw[y, x]
            q = rdq[y, x]
            nan = t != t
            if nan:
                q |= nocheck_bit
            off = nan or (q & nocheck_bit) != 0
            thresh[y, x] = limit if off else t
            sdq[y, x] = q
            nocheck[y, x] = off


def prepare_thresholds(sat_ref: DataModel, meta: Mapping[str, Any],
                       shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(threshold float32, reference dq uint32 with NO_SAT_CHECK on NaNs, no-check mask)."""
    raw = np.ascontiguousarray(cut_ref(sat_ref, "data", meta, shape), dtype=np.float32)
    if "dq" in sat_ref.arrays:
        rdq = np.ascontiguousarray(cut_ref(sat_ref, "dq", meta, shape), dtype=np.uint32)
    else:
        rdq = np.zeros(shape, dtype=np.uint32)
    thresh = np.empty(shape, dtype=np.float32)
    sdq = np.empty(shape, dtype=np.uint32)
    nocheck = np.empty(shape, dtype=np.bool_)
    _thresholds(_ro(raw), _ro(rdq), np.uint32(DQ.NO_SAT_CHECK), np.float32(ATOD_LIMIT + 1),
                thresh, sdq, nocheck)
    return thresh, sdq, nocheck


def _ro(a: np.ndarray) -> np.ndarray:
    """A read-only view, so kernels compile once whether given a reference or a copy."""
    v = a.view()
    v.flags.writeable = False
    return v


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: SaturationParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Flag saturation in the ramp buffer's groupdq/pixeldq (and zero frame) in place."""
    if params.n_pix_grow_sat < 0:
        raise ValueError(f"saturation: n_pix_grow_sat must be >= 0, got {params.n_pix_grow_sat}")
    data, gdq, pdq = arrays["data"], arrays["groupdq"], arrays["pixeldq"]
    nints, ngroups, ny, nx = data.shape
    if is_irs2_shape(data.shape):  # NIRSpec IRS2 (3200 raw rows): only the normal pixels
        thresh, sdq, _ = prepare_thresholds(need_ref(refs, "saturation", NAME), meta, (nx, nx))
        scratch = (np.empty((nx, nx), np.int32), np.empty(nx, np.int64))
        _irs2.flag(arrays, refs, params, meta, thresh, sdq,
                   lambda plane, n: _grow_into(plane, _SAT, _SAT, n, *scratch))
        return {f"cal_step.{NAME}": "COMPLETE"}
    thresh, sdq, nocheck = prepare_thresholds(need_ref(refs, "saturation", NAME), meta, (ny, nx))
    bias = None
    if refs.get("superbias") is not None and params.use_readpatt and ngroups > 2:
        bias = np.asarray(cut_ref(refs["superbias"], "data", meta, (ny, nx)), dtype=np.float32)
        if not np.isfinite(bias).all():  # usually finite: no copy
            bias = np.nan_to_num(bias)
    nframes = int(meta.get("exposure.nframes") or 1)
    n = int(params.n_pix_grow_sat)
    pos = np.empty((ny, nx), dtype=np.int32)  # _grow_into's scratch (touched only where used)
    cnt = np.empty(ny, dtype=np.int64)
    part = np.empty((ny, nx), dtype=np.uint8)
    for i in range(nints):
        _flag_threshold(data[i], gdq[i], thresh, _SAT, _FLOOR_DNU)
        if n > 0:
            for g in range(ngroups):
                _grow_into(gdq[i, g], _SAT, _SAT, n, pos, cnt)
        if not params.use_readpatt:
            continue
        # read_pattern[g] = frames g*nframes+1 .. g*nframes+nframes (1-based), as JWST builds it
        for g in range(ngroups - 2, -1, -1):
            first, last = g * nframes + 1, g * nframes + nframes
            dilution = 0.5 * (first + last) / last
            if dilution == 1.0:
                continue
            _partial_saturation(data[i, g], gdq[i, g], gdq[i, g + 1], thresh,
                                np.float32(dilution), nocheck, _SAT, _DNU, part)
            if n > 0:
                _grow_into(part, _DNU, _DNU, n, pos, cnt)
            np.bitwise_or(gdq[i, g], part, out=gdq[i, g])
        if ngroups > 2:
            b = _ro(bias if bias is not None else np.zeros((ny, nx), dtype=np.float32))
            _group2_check(data[i, 0], data[i, 1], gdq[i, 1], gdq[i, 2], thresh, b,
                          np.float32(0.5 * (1 + nframes)), np.float32(2 * nframes + nframes),
                          np.float32(nframes), _SAT, _DNU)
    zf = arrays.get("zeroframe")
    if zf is not None:
        for i in range(zf.shape[0]):
            zdq = np.where(zf[i] >= thresh, _SAT, np.uint8(0))
            zdq |= np.where(zf[i] <= 0, _FLOOR_DNU, np.uint8(0))
            if n > 0:
                _grow_into(zdq, _SAT, _SAT, n, pos, cnt)
            zf[i][zdq != 0] = 0.0
    np.bitwise_or(pdq, sdq, out=pdq)
    return {f"cal_step.{NAME}": "COMPLETE"}


@register(NAME, VERSION, "detector1", SaturationParams, ("saturation",),
          optional_reftypes=("superbias",), keyword="S_SATURA", inplace=apply_inplace)
def apply(model: DataModel, refs: Mapping[str, DataModel], params: SaturationParams) -> DataModel:
    """Flag saturated groups (+ neighbours, + read-pattern partial saturation)."""
    return apply_by_copy(model, refs, params, NAME, apply_inplace)
