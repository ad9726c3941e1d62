"""Small numba helpers shared by the jump and ramp-fitting kernels.

One job each: copy one image row of a ramp (all integrations and groups) into contiguous
buffers; the median of short or long runs of finite values; the median of the finite entries
of a scratch array (NaN left out); the segments of a ramp (runs of good groups, split at jumps).
Explicit loops instead of slice assignments keep numba from compiling its shape-mismatch error
messages (seconds of compile time for nothing).

Switches typed None or True (``long``, and jump's ``after``): numba prunes an ``if x is None``
branch when the argument's type is None, so code a run cannot reach (medians of runs longer
than SHORT, after-jump flagging) is compiled only by the runs that need it, and cached apart.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from transforms.dq import JUMP_DET, PERSISTENCE

NOT_PERS = np.uint8(0xFF ^ PERSISTENCE)
SHORT = 24  # runs up to this long: rank counting; longer: numpy's median (quickselect)


@njit(nogil=True, cache=True, error_model="numpy")
def copy_row(data, gdq, y, drow, qrow):
    """drow[i, g, :] = data[i, g, y, :] and qrow[i, g, :] = gdq[i, g, y, :]: the 4-D cube of
    one row read once, in order."""
    nints, ngroups, _, nx = data.shape
    for i in range(nints):
        for g in range(ngroups):
            for x in range(nx):
                drow[i, g, x] = data[i, g, y, x]
                qrow[i, g, x] = gdq[i, g, y, x]


@njit(nogil=True, cache=True, error_model="numpy")
def median_rank(vals, n):
    """Median of vals[:n] (n >= 1, no NaN) by rank counting: branch-free, fast for short runs.
    Equal values are ranked by position, i.e. as a stable sort orders them."""
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
    if n & 1:
        return hi
    return 0.5 * (lo + hi)


@njit(nogil=True, cache=True, error_model="numpy")
def _partition(a, low, high):
    """numpy's (and numba's) quickselect partition of a[low:high + 1] about the median of
    three, the same swaps in the same order: the element it selects is numba's."""
    mid = (low + high) >> 1
    if a[mid] < a[low]:
        a[low], a[mid] = a[mid], a[low]
    if a[high] < a[mid]:
        a[high], a[mid] = a[mid], a[high]
    if a[mid] < a[low]:
        a[low], a[mid] = a[mid], a[low]
    pivot = a[mid]
    a[high], a[mid] = a[mid], a[high]
    i = low
    j = high - 1
    while True:
        while i < high and a[i] < pivot:
            i += 1
        while j >= low and pivot < a[j]:
            j -= 1
        if i >= j:
            break
        a[i], a[j] = a[j], a[i]
        i += 1
        j -= 1
    a[i], a[high] = a[high], a[i]
    return i


@njit(nogil=True, cache=True, error_model="numpy")
def median_select(vals, n):
    """Median of the n finite values vals[:n] (n >= 1, which keep their order) by quickselect
    on a copy: the same result as ``np.median(vals[:n])``, without compiling numba's generic
    implementation of it."""
    a = np.empty(n, np.float64)
    for k in range(n):
        a[k] = vals[k]
    half = n >> 1
    low = np.int64(0)  # int64, not literal 0: numba would compile the callee twice
    high = n - 1
    if n & 1:
        k = half
    else:
        k = half - 1
    while True:  # a[k] in place (and, for an even count, the smallest above it next)
        if high <= low:
            break
        i = _partition(a, low, high)
        if i == k:
            break
        if i < k:
            low = i + 1
        else:
            high = i - 1
    if n & 1:
        return a[k]
    b = a[k + 1]
    for j in range(k + 2, n):
        if a[j] < b:
            b = a[j]
    return (a[k] + b) / 2


@njit(nogil=True, cache=True, error_model="numpy")
def median(vals, n, long):
    """Median of the n finite values vals[:n], which keep their order: rank counting for short
    runs, quickselect for long ones, so many-integration data stay O(n). ``long`` is None when
    the caller knows no run is longer than SHORT: numba then prunes the quickselect branch on
    the argument's type and never compiles it (rank counting gives the same value for any n,
    only more slowly); pass True otherwise."""
    if long is None:
        return median_rank(vals, n)
    if n > SHORT:
        return median_select(vals, n)
    return median_rank(vals, n)


@njit(nogil=True, cache=True, error_model="numpy")
def nan_last_median(vals, n, long):
    """Median of the finite entries among vals[:n] (moved to the front, in place), stcal-style:
    the mean of the two middle values for an even count, NaN when there is none. ``long`` as
    for ``median``."""
    m = np.int64(0)  # int64, not literal 0: numba would compile the callee twice
    for k in range(n):
        v = vals[k]
        if not math.isnan(v):
            vals[m] = v
            m += 1
    if m == 0:
        return math.nan
    return median(vals, m, long)


@njit(nogil=True, cache=True, error_model="numpy")
def segments(q, n, seg_s, seg_e):
    """The fitted segments of one integration's group flags q[:n]: runs of groups with no flag
    but PERSISTENCE, a group flagged JUMP_DET alone opening the run after it. Returns how many,
    their [start, end) in seg_s/seg_e; when there are several, one-group segments are dropped
    (all but the first when no segment is longer), as stcal does."""
    nseg = 0
    in_seg = False
    start = 0
    maxlen = 0
    for g in range(n + 1):  # g == n closes the last run
        if g < n and (q[g] & NOT_PERS) == 0:
            if not in_seg:
                start = g
                if g > 0 and (q[g - 1] & NOT_PERS) == JUMP_DET:
                    start = g - 1
                in_seg = True
        elif in_seg:
            seg_s[nseg] = start
            seg_e[nseg] = g
            maxlen = max(maxlen, g - start)
            nseg += 1
            in_seg = False
    if nseg >= 2:
        if maxlen < 2:
            nseg = 1
        else:
            k2 = 0
            for k in range(nseg):
                if seg_e[k] - seg_s[k] > 1:
                    seg_s[k2] = seg_s[k]
                    seg_e[k2] = seg_e[k]
                    k2 += 1
            nseg = k2
    return nseg


__all__ = ["NOT_PERS", "copy_row", "median", "median_rank", "nan_last_median", "segments"]
