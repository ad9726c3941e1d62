"""numba kernels for two-point-difference jump detection, in place on the group DQ.

Pass 1 (``detect_kernel``, rows spread over threads) tests each pixel's first differences,
pooled over integrations, and flags the largest outlier while it exceeds the threshold for the
current number of usable differences, then repeats without it (stcal's iterative clipping). The
test statistic is deliberately not stcal's (see docs/detector1-ramp-jump.md):

    t_k = (d_k - mean of the other differences) / (sigma * sqrt(1 + 1/(n-1)))

with sigma**2 = readnoise**2/nframes + max(median difference, 0)/gain (DN**2): a known noise
model from the readnoise reference and the pixel's own robust rate, instead of stcal's median of
absolute differences, which is noisy for short ramps and biased for faint pixels. Under the null
``t`` is a unit normal, so thresholds mean what they say.

Before the per-pixel loop, ``_screen_row`` settles most pixels of a row at once (vectorised
over columns): a pixel whose largest deviation stays under the threshold with the read-noise
variance alone cannot be flagged (the loop's variance is never smaller), so only the others
(about 1-2% of a typical full frame) run the loop; results are identical.

Pass 2 (``post_kernel``, rows spread over threads) flags the four neighbours of jumps whose
significance lies between the neighbour thresholds, flags groups after large jumps, and removes
JUMP_DET where DO_NOT_USE or SATURATED is set (as stcal does). Sources of neighbour flags are
kept in a separate array, so no thread reads a row another thread writes: results are
bit-identical for any thread count.

Rows go to Python threads through ``_kernels_threads.for_rows`` (the kernels release the GIL)
instead of numba's ``prange``, which compiles slowly; the row kernels keep the semantics they had
inside the parallel loop (numpy's error model: a division by zero gives inf or NaN).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from transforms.detector1._kernels_common import SHORT, copy_row, median
from transforms.detector1._kernels_threads import for_rows
from transforms.dq import DO_NOT_USE, JUMP_DET, SATURATED

_BAD = DO_NOT_USE | SATURATED
_CLEAR_JUMP = np.uint8(0xFF ^ JUMP_DET)


@njit(nogil=True, cache=True, error_model="numpy")
def _median(vals, n, buf):
    """Median of the finite vals[:n] (vals keeps its order; ``buf`` is no longer needed, kept
    for callers of this name): ``_kernels_common.median``."""
    return median(vals, n, True)


@njit(nogil=True, cache=True, error_model="numpy")
def _screen_row(y, drow, qrow, gain2d, rn2d, nframes, thr4, thr3, thr2, need):
    """Pixels of row ``y`` whose per-pixel loop cannot flag anything, found all at once (the
    loops run over columns, so the compiler vectorises them): ``need[x] = False`` for a bad
    gain or readnoise (the loop skips those), and for pixels whose differences are all usable
    and whose largest outlier stays under the threshold even with the read-noise variance
    alone: the loop's variance is ``rn_var + max(median, 0)/gain >= rn_var``, and rounded
    arithmetic is monotonic, so its statistic ``t`` is at most this bound and its first
    iteration stops without a flag. Same operations in the same order as the loop; the pixels
    left (jumps, flagged groups, non-finite differences) run the full loop."""
    nints, ngroups, nx = drow.shape
    nd = nints * (ngroups - 1)
    ok = np.empty(nx, np.bool_)
    rn_var = np.empty(nx, np.float64)
    for x in range(nx):
        gn = float(gain2d[y, x])
        rn = float(rn2d[y, x])
        good = (gn > 0.0) and (rn >= 0.0) and not math.isinf(gn) and not math.isinf(rn)
        need[x] = good
        ok[x] = good
        rn_var[x] = rn * rn / nframes
    dif = np.empty((nd, nx), np.float64)
    for i in range(nints):
        for g in range(ngroups):
            for x in range(nx):
                if qrow[i, g, x] & _BAD:
                    ok[x] = False
        for g in range(1, ngroups):
            k = i * (ngroups - 1) + g - 1
            for x in range(nx):
                v = float(drow[i, g, x]) - float(drow[i, g - 1, x])
                dif[k, x] = v
                if not math.isfinite(v):
                    ok[x] = False
    mean = np.zeros(nx, np.float64)
    for k in range(nd):
        for x in range(nx):
            mean[x] += dif[k, x]
    bdev = np.empty(nx, np.float64)
    bval = np.empty(nx, np.float64)
    for x in range(nx):
        mean[x] = mean[x] / nd
        bdev[x] = -1.0
        bval[x] = dif[0, x]
    for k in range(nd):
        for x in range(nx):
            dev = abs(dif[k, x] - mean[x])
            if nd == 2:
                dev = dif[k, x] - mean[x]
            if dev > bdev[x]:
                bdev[x] = dev
                bval[x] = dif[k, x]
    thr = thr4 if nd >= 4 else (thr3 if nd == 3 else thr2)
    sq = math.sqrt(nd / (nd - 1.0))
    for x in range(nx):
        sr = math.sqrt(rn_var[x])
        if ok[x] and sr > 0.0 and abs(bval[x] - mean[x]) * sq / sr <= thr:
            need[x] = False


@njit(nogil=True, cache=True, error_model="numpy")
def _detect_rows(y0, y1, data, gdq, gain2d, rn2d, nframes, thr4, thr3, thr2, nb_min, nb_max,
                 src, ncr, long):
    """Pass 1 on rows y0..y1-1: the screen first, then the iterative clipping per pixel.
    ``long``: None when no pixel has more than SHORT differences (see _kernels_common)."""
    nints, ngroups, _, nx = data.shape
    nd = nints * (ngroups - 1)
    vals = np.empty(max(nd, 1), np.float64)
    at_i = np.empty(max(nd, 1), np.int64)
    at_g = np.empty(max(nd, 1), np.int64)
    drow = np.empty((nints, ngroups, nx), np.float32)
    qrow = np.empty((nints, ngroups, nx), np.uint8)
    need = np.ones(nx, np.bool_)  # stays True unless _screen_row runs (on every row)
    for y in range(y0, y1):
        count = 0
        copy_row(data, gdq, y, drow, qrow)
        if 2 <= nd <= 64:  # row buffers stay small
            _screen_row(y, drow, qrow, gain2d, rn2d, nframes, thr4, thr3, thr2, need)
        for x in range(nx):
            if not need[x]:
                continue
            gain = float(gain2d[y, x])
            rn = float(rn2d[y, x])
            if not (gain > 0.0) or not (rn >= 0.0) or math.isinf(gain) or math.isinf(rn):
                continue
            rn_var = rn * rn / nframes
            n = np.int64(0)  # int64, not literal 0: numba would compile the callee twice
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
                med = median(vals, n, long)
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


def detect_kernel(data, gdq, gain2d, rn2d, nframes, thr4, thr3, thr2, nb_min, nb_max, src, ncr):
    """Pass 1: flag primary jumps in ``gdq``; mark neighbour-flag sources in ``src``."""
    nints, ngroups = data.shape[:2]
    long = True if nints * (ngroups - 1) > SHORT else None
    for_rows(_detect_rows, data.shape[2], data, gdq, gain2d, rn2d, nframes, thr4, thr3, thr2,
             nb_min, nb_max, src, ncr, long)


@njit(nogil=True, cache=True, error_model="numpy")
def _post_rows(y0, y1, data, gdq, gain2d, src, use_src, e1, n1, e2, n2, long, after):
    """Pass 2 on rows y0..y1-1 (each row writes only its own group DQ). ``after``: None when
    no after-jump flagging is asked for (n1 and n2 zero), ``long`` as in _detect_rows."""
    nints, ngroups, ny, nx = data.shape
    nd = nints * (ngroups - 1)
    vals = np.empty(max(nd, 1), np.float64)
    flag = np.zeros(ngroups, np.bool_)
    for y in range(y0, y1):
        if use_src:
            for i in range(nints):
                for g in range(ngroups):
                    for x in range(nx):
                        hit = ((y > 0 and src[i, g, y - 1, x])
                               or (y < ny - 1 and src[i, g, y + 1, x])
                               or (x > 0 and src[i, g, y, x - 1])
                               or (x < nx - 1 and src[i, g, y, x + 1]))
                        if hit and not (gdq[i, g, y, x] & _BAD):
                            gdq[i, g, y, x] |= JUMP_DET
        if after is not None:
            for x in range(nx):
                gain = float(gain2d[y, x])
                n = np.int64(0)  # int64, not literal 0: numba would compile the callee twice
                for i in range(nints):
                    for g in range(1, ngroups):
                        if (gdq[i, g, y, x] & _BAD) or (gdq[i, g - 1, y, x] & _BAD):
                            continue
                        v = float(data[i, g, y, x]) - float(data[i, g - 1, y, x])
                        if math.isfinite(v):
                            vals[n] = v
                            n += 1
                if n > 0:
                    med = median(vals, n, long)
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


def post_kernel(data, gdq, gain2d, src, use_src, e1, n1, e2, n2):
    """Pass 2: neighbour flags, after-jump flags, and JUMP_DET removed where DNU/SAT is set."""
    nints, ngroups = data.shape[:2]
    long = True if nints * (ngroups - 1) > SHORT else None
    after = True if (n1 > 0 or n2 > 0) else None
    for_rows(_post_rows, data.shape[2], data, gdq, gain2d, src, use_src, e1, n1, e2, n2, long,
             after)


@njit(nogil=True, cache=True, error_model="numpy")
def _all_flagged(plane, bit):
    ny, nx = plane.shape
    for y in range(ny):
        for x in range(nx):
            if not (plane[y, x] & bit):
                return False  # usually the first pixel: no full pass over the image
    return True


def all_flagged(plane: np.ndarray, bit: int) -> bool:
    """Whether every pixel of a group DQ plane has ``bit`` (stops at the first that has not)."""
    flat = np.ascontiguousarray(plane, dtype=np.uint8).reshape(1, -1)  # any shape: one 2-D kernel
    return bool(_all_flagged(flat, np.uint8(bit)))
