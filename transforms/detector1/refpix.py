"""refpix: remove bias drifts measured in the reference pixels (JWST's NIR "median" algorithm).

Full frame (2048x2048), per group, in the detector frame (the DMS image is transposed when the
fast axis is y, as for NIRSpec; flips do not change this algorithm's result):

1. top/bottom: for each of the 4 amplifiers (512-column stripes) the sigma-clipped mean
   (``siglimit``) of the 4 bottom and the 4 top reference rows, separately for even and odd
   columns (``odd_even_columns``), averaged top with bottom, is subtracted from that amplifier's
   columns of that parity;
2. side (``use_side_ref_pixels``): the running median over ``side_smoothing_length`` rows (ends
   reflected) of the 4 left and of the 4 right reference columns, averaged left with right,
   times ``side_gain``, is subtracted from each row.

Subarrays: one sigma-clipped mean of the pixels flagged REFERENCE_PIXEL (and not DO_NOT_USE),
per column parity, is subtracted from every pixel of that parity; with no reference pixels the
step is SKIPPED, as in JWST. Reference pixels flagged DO_NOT_USE are never used. The IRS2, MIRI
and "sirs" options are accepted with JWST's defaults but not implemented: "sirs" falls back to
the running median, as JWST does when it has no SIRS kernel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from transforms import dq as DQ
from transforms.detector1._kernels_threads import for_rows
from transforms.model import DataModel
from transforms.registry import register

from ._subarray import apply_by_copy

NAME = "refpix"
VERSION = "1.0"
NREF = 4  # reference pixels on each edge of a full-frame NIR detector
NAMP = 4  # amplifiers (512-column stripes) of a full-frame NIR detector


@dataclass(frozen=True)
class RefPixParams:
    """JWST refpix parameters and defaults (IRS2/MIRI/sirs ones accepted, see module doc)."""

    odd_even_columns: bool = True
    use_side_ref_pixels: bool = True
    side_smoothing_length: int = 11
    side_gain: float = 1.0
    odd_even_rows: bool = True
    ovr_corr_mitigation_ftr: float = 3.0
    preserve_irs2_refpix: bool = False
    irs2_mean_subtraction: bool = False
    refpix_algorithm: str = "median"
    sigreject: float = 4.0
    gaussmooth: float = 1.0
    halfwidth: int = 30
    siglimit: float = 3.0


@njit(nogil=True, cache=True, error_model="numpy")
def _clipped_mean(vals, n, siglimit):
    """scipy.stats.sigmaclip(vals[:n], siglimit, siglimit) mean; NaN when n == 0."""
    if n == 0:
        return np.nan
    c = vals[:n].copy()
    size = n
    while True:
        s = 0.0
        for k in range(size):
            s += c[k]
        mean = s / size
        v = 0.0
        for k in range(size):
            v += (c[k] - mean) ** 2
        std = np.sqrt(v / size)
        if std == 0.0:
            return mean
        lo, hi = mean - std * siglimit, mean + std * siglimit
        m = 0
        for k in range(size):
            if c[k] >= lo and c[k] <= hi:
                c[m] = c[k]
                m += 1
        if m == size or m == 0:
            if m == 0:
                return mean
            s = 0.0
            for k in range(m):
                s += c[k]
            return s / m
        size = m


@njit(nogil=True, cache=True, error_model="numpy")
def _avg_none(a, b):
    if a != a:
        return b
    if b != b:
        return a
    return 0.5 * (a + b)


@njit(nogil=True, cache=True, error_model="numpy")
def _reflect(k, b, n):
    """Row of the input for row k of the array extended by b rows, reflected (JWST style)."""
    if k < b:
        return b - k
    if k < b + n:
        return k - b
    return n - 2 - (k - b - n)


@njit(nogil=True, cache=True, error_model="numpy")
def _side_signal(cols, pdq, c0, smooth, out):
    """Running median over ``smooth`` rows of the 4 reference columns ``cols`` (ny, 4), which
    are detector columns c0..c0+3; DO_NOT_USE excluded."""
    ny = cols.shape[0]
    b = smooth // 2
    buf = np.empty(smooth * NREF, dtype=np.float64)
    for r in range(ny):
        m = 0
        for k in range(r, r + smooth):
            rr = _reflect(k, b, ny)
            for j in range(NREF):
                v = cols[rr, j]
                if (pdq[rr, c0 + j] & 1) == 0 and v == v:
                    buf[m] = v
                    m += 1
        out[r] = np.median(buf[:m]) if m > 0 else np.nan


@njit(nogil=True, cache=True, error_model="numpy")
def _fullframe_plane(plane, pdq, odd_even, use_side, smooth, side_gain, siglimit):
    """Top/bottom then side correction of one full-frame group, in place, in one pass over
    the plane: the top/bottom offsets come from the (uncorrected) reference rows, the side
    signal from the reference columns after their top/bottom correction, then every pixel
    gets ``float32(float32(v - offset) - side)``, the rounding two separate passes give."""
    ny, nx = plane.shape
    width = nx // NAMP
    buf = np.empty(NREF * width, dtype=np.float64)
    sig = np.full((NAMP, 2), np.nan)
    applied = np.zeros(NAMP, np.bool_)
    for a in range(NAMP):
        c0 = a * width
        npar = 2 if odd_even else 1
        for p in range(npar):
            ends = np.empty(2)
            for e in range(2):
                r0 = 0 if e == 0 else ny - NREF
                m = np.int64(0)  # int64, not literal 0: numba would compile the callee twice
                for r in range(r0, r0 + NREF):
                    for c in range(c0 + p, c0 + width, npar):
                        v = plane[r, c]
                        if (pdq[r, c] & 1) == 0 and v == v:
                            buf[m] = v
                            m += 1
                ends[e] = _clipped_mean(buf, m, siglimit)
            sig[a, p] = _avg_none(ends[0], ends[1])
        if not odd_even:
            sig[a, 1] = sig[a, 0]
        applied[a] = sig[a, 0] == sig[a, 0] and sig[a, 1] == sig[a, 1]
    side = np.zeros(ny)
    if use_side:
        left = np.empty(ny)
        right = np.empty(ny)
        cols = np.empty((ny, NREF), plane.dtype)
        for e in range(2):
            c0 = 0 if e == 0 else nx - NREF
            a = c0 // width
            for r in range(ny):
                for j in range(NREF):
                    v = plane[r, c0 + j]
                    if applied[a]:
                        v = plane.dtype.type(v - sig[a, (c0 + j - a * width) % 2])
                    cols[r, j] = v
            _side_signal(cols, pdq, c0, smooth, left if e == 0 else right)
        for r in range(ny):
            s = _avg_none(left[r], right[r])
            if s != s:
                s = 0.0
            side[r] = s * side_gain
    for r in range(ny):
        s = side[r]
        row = plane[r]
        for a in range(NAMP):
            c0 = a * width
            s0 = sig[a, 0]
            s1 = sig[a, 1]
            if applied[a] and use_side:
                for c in range(c0, c0 + width):
                    o = s0 if (c - c0) % 2 == 0 else s1
                    row[c] = row.dtype.type(row.dtype.type(row[c] - o) - s)
            elif applied[a]:
                for c in range(c0, c0 + width):
                    o = s0 if (c - c0) % 2 == 0 else s1
                    row[c] = row[c] - o
            elif use_side:
                for c in range(c0, c0 + width):
                    row[c] = row[c] - s


@njit(nogil=True, cache=True, error_model="numpy")
def _fullframe_rows(row0, row1, stack, pdq, odd_even, use_side, smooth, side_gain, siglimit,
                    transpose):
    for k in range(row0, row1):
        if transpose:
            _fullframe_plane(stack[k].T, pdq.T, odd_even, use_side, smooth, side_gain, siglimit)
        else:
            _fullframe_plane(stack[k], pdq, odd_even, use_side, smooth, side_gain, siglimit)


def _fullframe(stack, pdq, odd_even, use_side, smooth, side_gain, siglimit, transpose):
    """_fullframe_plane on every plane of an (n, ny, nx) stack, in parallel over planes."""
    for_rows(_fullframe_rows, stack.shape[0], stack, pdq, odd_even, use_side, smooth, side_gain,
             siglimit, transpose)


@njit(nogil=True, cache=True, error_model="numpy")
def _subarray_rows(row0, row1, stack, rows, cols, parity, odd_even, siglimit, transpose):
    n = rows.size
    for k in range(row0, row1):
        plane = stack[k].T if transpose else stack[k]
        buf = np.empty(max(n, 1), dtype=np.float64)
        sig = np.full(2, np.nan)
        for p in range(2 if odd_even else 1):
            m = np.int64(0)  # int64, not literal 0: numba would compile the callee twice
            for j in range(n):
                if (not odd_even) or parity[j] == p:
                    v = plane[rows[j], cols[j]]
                    if v == v:
                        buf[m] = v
                        m += 1
            sig[p] = _clipped_mean(buf, m, siglimit)
        if not odd_even:
            sig[1] = sig[0]
        ny, nx = plane.shape
        for r in range(ny):
            for c in range(nx):
                s = sig[c % 2]
                if s == s:
                    plane[r, c] -= s


def _subarray(stack, rows, cols, parity, odd_even, siglimit, transpose):
    """Subtract the clipped mean of the listed reference pixels, per column parity."""
    for_rows(_subarray_rows, stack.shape[0], stack, rows, cols, parity, odd_even, siglimit,
             transpose)


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: RefPixParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Reference-pixel correction of the ramp buffer in place."""
    if params.refpix_algorithm not in ("median", "sirs"):
        raise ValueError(f"refpix: refpix_algorithm must be 'median' or 'sirs', "
                         f"got {params.refpix_algorithm!r}")
    if params.side_smoothing_length < 1:
        raise ValueError("refpix: side_smoothing_length must be >= 1")
    data, pdq = arrays["data"], arrays["pixeldq"]
    nints, ngroups, ny, nx = data.shape
    transpose = abs(int(meta.get("subarray.fastaxis") or 1)) == 2
    smooth = int(params.side_smoothing_length)
    smooth += 1 - smooth % 2  # JWST makes it odd by adding 1
    stacks = [data[i] for i in range(nints)]
    zf = arrays.get("zeroframe")
    if (ny, nx) == (2048, 2048):
        for st in stacks + ([zf] if zf is not None else []):
            _fullframe(st, pdq, params.odd_even_columns, params.use_side_ref_pixels, smooth,
                       float(params.side_gain), float(params.siglimit), transpose)
    else:
        det_dq = pdq.T if transpose else pdq
        good = ((det_dq & np.uint32(DQ.REFERENCE_PIXEL)) != 0) & ((det_dq & 1) == 0)
        rows, cols = np.nonzero(good)
        if rows.size == 0:
            return {f"cal_step.{NAME}": "SKIPPED"}
        parity = (cols % 2).astype(np.int64)
        for st in stacks + ([zf] if zf is not None else []):
            _subarray(st, rows, cols, parity, params.odd_even_columns, float(params.siglimit),
                      transpose)
    return {f"cal_step.{NAME}": "COMPLETE"}


@register(NAME, VERSION, "detector1", RefPixParams, (),
          keyword="S_REFPIX", inplace=apply_inplace)
def apply(model: DataModel, refs: Mapping[str, DataModel], params: RefPixParams) -> DataModel:
    """Subtract reference-pixel bias drifts (amplifier, column parity, smoothed side drift)."""
    return apply_by_copy(model, refs, params, NAME, apply_inplace)
