"""Snowball expansion (``expand_large_events``): circles around large jump clusters with a
newly saturated core, in place on the group DQ.

For each integration and group: connected (8-neighbour) JUMP_DET regions of at least
``min_jump_area`` pixels are snowballs when they contain the centroid of a region of newly
saturated pixels (this group or the next) of at least ``min_sat_area`` pixels, or lie within
``edge_size`` of the detector edge (or always, when ``sat_required_snowball`` is False). A
snowball's enclosing circle, its radius times ``expand_factor``, is flagged JUMP_DET in that
group (not over saturated pixels); a saturated core whose radius exceeds
``min_sat_radius_extend`` grows by ``sat_expand`` pixels as SATURATED in that and later groups,
and, with ``mask_snowball_core_next_int``, its core is flagged JUMP_DET in the first groups of
the next integration. stcal fits ellipses; calops uses circles (documented difference).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from transforms.dq import JUMP_DET, SATURATED

_EIGHT = np.ones((3, 3), bool)


def _regions(mask: np.ndarray, min_area: float) -> list[tuple[float, float, float, int]]:
    """(cy, cx, enclosing radius, area) of connected regions with area >= min_area."""
    labels, n = ndimage.label(mask, structure=_EIGHT)
    if n == 0:
        return []
    out = []
    for idx, sl in enumerate(ndimage.find_objects(labels), start=1):
        ys, xs = np.nonzero(labels[sl] == idx)
        if ys.size < min_area:
            continue
        ys = ys + sl[0].start
        xs = xs + sl[1].start
        cy, cx = ys.mean(), xs.mean()
        r = float(np.sqrt(((ys - cy) ** 2 + (xs - cx) ** 2).max())) + 0.5
        out.append((float(cy), float(cx), r, int(ys.size)))
    return out


def _disk(shape: tuple[int, int], cy: float, cx: float,
          r: float) -> tuple[slice, slice, np.ndarray]:
    ny, nx = shape
    y0, y1 = max(int(np.floor(cy - r)), 0), min(int(np.ceil(cy + r)) + 1, ny)
    x0, x1 = max(int(np.floor(cx - r)), 0), min(int(np.ceil(cx + r)) + 1, nx)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    return slice(y0, y1), slice(x0, x1), (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def flag_snowballs(gdq: np.ndarray, params, group_time: float, edge: int = 25) -> int:
    """Expand snowballs in ``gdq`` in place; returns how many were found."""
    nints, ngroups, ny, nx = gdq.shape
    total = 0
    persist = np.zeros((nints, ny, nx), bool)
    for i in range(nints):
        for g in range(1, ngroups):
            sat = (gdq[i, g] & SATURATED) != 0
            new_sat = sat & ((gdq[i, g - 1] & SATURATED) == 0)
            cores = _regions(new_sat, params.min_sat_area)
            nxt = []
            if g < ngroups - 1:
                nxt = _regions(((gdq[i, g + 1] & SATURATED) != 0) & ~sat, params.min_sat_area)
            for cy, cx, r, _ in _regions((gdq[i, g] & JUMP_DET) != 0, params.min_jump_area):
                near_edge = (cy < edge or cx < edge or cy > ny - edge or cx > nx - edge)
                has_core = any((sy - cy) ** 2 + (sx - cx) ** 2 <= r * r
                               for sy, sx, _, _ in cores + nxt)
                if params.sat_required_snowball and not (near_edge or has_core):
                    continue
                total += 1
                ys, xs, disk = _disk((ny, nx), cy, cx, r * params.expand_factor)
                plane = gdq[i, g, ys, xs]
                plane[disk & ((plane & SATURATED) == 0)] |= JUMP_DET
            for cy, cx, r, _ in cores:
                if r > params.min_sat_radius_extend:
                    ys, xs, disk = _disk((ny, nx), cy, cx, r + params.sat_expand)
                    gdq[i, g:, ys, xs] |= (disk * SATURATED).astype(np.uint8)
                    ys, xs, core = _disk((ny, nx), cy, cx, r)
                    persist[i, ys, xs] |= core
    if params.mask_snowball_core_next_int:
        last = min(int(params.snowball_time_masked_next_int // group_time), ngroups)
        for i in range(1, nints):
            if last >= 2:
                gdq[i, 1:last][:, persist[i - 1]] |= np.uint8(JUMP_DET)
    return total
