"""numba kernels for two-point-difference jump detection, in place on the group DQ.

Pass 1 (``detect_kernel``, parallel over rows) tests each pixel's first differences, pooled over
integrations, and flags the largest outlier while it exceeds the threshold for the current
number of usable differences, then repeats without it (stcal's iterative clipping). The test
statistic is deliberately not stcal's (see docs/detector1-ramp-jump.md):

    t_k = (d_k - mean of the other differences) / (sigma * sqrt(1 + 1/(n-1)))

with sigma**2 = readnoise**2/nframes + max(median difference, 0)/gain (DN**2): a known noise
model from the readnoise reference and the pixel's own robust rate, instead of stcal's median of
absolute differences, which is noisy for short ramps and biased for faint pixels. Under the null
``t`` is a unit normal, so thresholds mean what they say.

Pass 2 (``neighbours_kernel``, parallel over rows) flags the four neighbours of jumps whose
significance lies between the neighbour thresholds, flags groups after large jumps, and removes
JUMP_DET where DO_NOT_USE or SATURATED is set (as stcal does). Sources of neighbour flags are
kept in a separate array, so no thread reads a row another thread writes: results are
bit-identical for any thread count.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from transforms.dq import DO_NOT_USE, JUMP_DET, SATURATED

_BAD = DO_NOT_USE | SATURATED
_CLEAR_JUMP = np.uint8(0xFF ^ JUMP_DET)


@njit(nogil=True, cache=True)
def _median(vals, n, buf):
    """Median of the finite vals[:n]: rank counting (branch-free) for short ramps, else numpy's
    median of a copy in buf (vals keeps its order)."""
    if n <= 24:
        h = n >> 1
        lo = 0.0
        hi = 0.0
        for k in range(n):
            v = vals[k]
            r = 0
            for j in range(n):
                r += (vals[j] < v) | ((vals[j] == v) & (j < k))
            if r == h:
                hi = v
            if r == h - 1:
                lo = v
        return hi if n & 1 else 0.5 * (lo + hi)
    buf[:n] = vals[:n]
    return np.median(buf[:n])  # quickselect on a copy: many-integration data stay O(n)


@njit(nogil=True, cache=True)
def _detect_row(y, data, gdq, gain2d, rn2d, nframes, thr4, thr3, thr2, nb_min, nb_max,
                src, ncr):
    nints, ngroups, _, nx = data.shape
    nd = nints * (ngroups - 1)
    vals = np.empty(max(nd, 1), np.float64)
    at_i = np.empty(max(nd, 1), np.int64)
    at_g = np.empty(max(nd, 1), np.int64)
    buf = np.empty(max(nd, 1), np.float64)
    count = 0
    drow = np.empty((nints, ngroups, nx), np.float32)
    qrow = np.empty((nints, ngroups, nx), np.uint8)
    for i in range(nints):
        for g in range(ngroups):
            drow[i, g, :] = data[i, g, y, :]
            qrow[i, g, :] = gdq[i, g, y, :]
    for x in range(nx):
        gain = float(gain2d[y, x])
        rn = float(rn2d[y, x])
        if not (gain > 0.0) or not (rn >= 0.0) or math.isinf(gain) or math.isinf(rn):
            continue
        rn_var = rn * rn / nframes
        n = 0
        for i in range(nints):
            for g in range(1, ngroups):
                if (qrow[i, g, x] & _BAD) or (qrow[i, g - 1, x] & _BAD):
                    continue
                v = float(drow[i, g, x]) - float(drow[i, g - 1, x])
                if math.isfinite(v):
                    vals[n] = v
                    at_i[n] = i
                    at_g[n] = g
                    n += 1
        while n >= 2:
            s = 0.0
            for k in range(n):
                s += vals[k]
            mean = s / n
            med = _median(vals, n, buf)
            var = rn_var + (med / gain if med > 0.0 else 0.0)
            if not (var > 0.0):
                break
            best = 0
            bdev = -1.0
            for k in range(n):
                dev = abs(vals[k] - mean)
                if n == 2:
                    dev = vals[k] - mean  # a tie: blame the larger difference (CRs add charge)
                if dev > bdev:
                    bdev = dev
                    best = k
            t = abs(vals[best] - mean) * math.sqrt(n / (n - 1.0)) / math.sqrt(var)
            thr = thr4 if n >= 4 else (thr3 if n == 3 else thr2)
            if not (t > thr):
                break
            i = at_i[best]
            g = at_g[best]
            gdq[i, g, y, x] |= JUMP_DET
            count += 1
            if t > nb_min and t < nb_max:
                src[i, g, y, x] = 1
            n -= 1
            vals[best] = vals[n]
            at_i[best] = at_i[n]
            at_g[best] = at_g[n]
    ncr[y] = count


@njit(nogil=True, cache=True, parallel=True)
def detect_kernel(data, gdq, gain2d, rn2d, nframes, thr4, thr3, thr2, nb_min, nb_max, src, ncr):
    """Pass 1: flag primary jumps in ``gdq``; mark neighbour-flag sources in ``src``."""
    for y in prange(data.shape[2]):
        _detect_row(y, data, gdq, gain2d, rn2d, nframes, thr4, thr3, thr2, nb_min, nb_max,
                    src, ncr)


@njit(nogil=True, cache=True)
def _post_row(y, data, gdq, gain2d, src, use_src, e1, n1, e2, n2):
    nints, ngroups, ny, nx = data.shape
    nd = nints * (ngroups - 1)
    vals = np.empty(max(nd, 1), np.float64)
    buf = np.empty(max(nd, 1), np.float64)
    flag = np.zeros(ngroups, np.bool_)
    after = n1 > 0 or n2 > 0
    if use_src:
        for i in range(nints):
            for g in range(ngroups):
                for x in range(nx):
                    hit = ((y > 0 and src[i, g, y - 1, x]) or (y < ny - 1 and src[i, g, y + 1, x])
                           or (x > 0 and src[i, g, y, x - 1])
                           or (x < nx - 1 and src[i, g, y, x + 1]))
                    if hit and not (gdq[i, g, y, x] & _BAD):
                        gdq[i, g, y, x] |= JUMP_DET
    for x in range(nx):
        if after:
            gain = float(gain2d[y, x])
            n = 0
            for i in range(nints):
                for g in range(1, ngroups):
                    if (gdq[i, g, y, x] & _BAD) or (gdq[i, g - 1, y, x] & _BAD):
                        continue
                    v = float(data[i, g, y, x]) - float(data[i, g - 1, y, x])
                    if math.isfinite(v):
                        vals[n] = v
                        n += 1
            if n > 0:
                med = _median(vals, n, buf)
                jmax1 = min(n1, ngroups - 2)
                jmax2 = min(n2, ngroups - 2)
                for i in range(nints):
                    for g in range(ngroups):
                        flag[g] = False
                    for g in range(1, ngroups):
                        if not (gdq[i, g, y, x] & JUMP_DET):
                            continue
                        if (gdq[i, g, y, x] & _BAD) or (gdq[i, g - 1, y, x] & _BAD):
                            continue
                        e = (float(data[i, g, y, x]) - float(data[i, g - 1, y, x]) - med) * gain
                        if n1 > 0 and e >= e1:
                            for j in range(g, min(g + jmax1, ngroups - 1) + 1):
                                flag[j] = True
                        if n2 > 0 and e >= e2:
                            for j in range(g, min(g + jmax2, ngroups - 1) + 1):
                                flag[j] = True
                    for g in range(ngroups):
                        if flag[g] and not (gdq[i, g, y, x] & _BAD):
                            gdq[i, g, y, x] |= JUMP_DET
    for i in range(nints):
        for g in range(ngroups):
            for x in range(nx):
                q = gdq[i, g, y, x]
                if (q & JUMP_DET) and (q & _BAD):
                    gdq[i, g, y, x] = q & _CLEAR_JUMP


@njit(nogil=True, cache=True, parallel=True)
def post_kernel(data, gdq, gain2d, src, use_src, e1, n1, e2, n2):
    """Pass 2: neighbour flags, after-jump flags, and JUMP_DET removed where DNU/SAT is set."""
    for y in prange(data.shape[2]):
        _post_row(y, data, gdq, gain2d, src, use_src, e1, n1, e2, n2)
