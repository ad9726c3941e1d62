"""Drizzle, version 1.1 numerics: an interpolated pixel map and a column-wise overlap kernel.

``transforms.resample`` (resample 1.0, spec2's resample_spec, outlier detection) maps every
input pixel corner through the full WCS pipeline (distortion polynomial, velocity aberration,
two 3-D rotations, two projections: ~4.2 M gwcs evaluations for a 2048x2048 frame) and computes
each drop's overlap with every output pixel of its bounding box edge by edge. This module is
what resample 1.1 runs instead; 1.0's code is untouched (its golden id pins it).

**Pixel map.** The detector -> output-pixel map is smooth (polynomial distortion, gnomonic
projections over arcminutes), so it is evaluated exactly on a coarse grid of nodes (step ``h``
input pixels, the last node on the last corner) and interpolated in between, separably:
bilinearly (``order=1``) or with 4-point Lagrange cubics (``order=3``, error ~h^4). The step is
chosen from a *measured* error bound: the exact map is also evaluated at check points (the
quarter, half and three-quarter points of every coarse cell in both axes, 9 per cell: where an
interpolant's error peaks), and the largest distance between interpolated and exact output
positions must be ``<= tol`` output pixels; otherwise the step shrinks (by the error's power
law, ``h^2`` or ``h^4``) and the check is repeated. A step below 2 pixels, or a non-finite
value at a node or a check point (a map that leaves the WCS's domain), falls back to the exact
map. ``tol = 0`` asks for the exact map (JWST's default ``pixmap_stepsize=1``); a fixed
``step > 1`` is JWST's ``pixmap_stepsize`` (no acceptance test, the error is still measured).

**Kernel.** One numba kernel (``nogil``, cached; one signature for both drizzle kernels) builds
each row of corner positions on the fly from the node rows (no full-frame map is materialised)
and, per drop, integrates column by column: by Green's theorem the drop's area inside an output
column and below a level ``Y`` is ``-sign * sum_edges int min(y(x), Y) dx`` over the edges
clipped to the column, so the overlap with output pixel (i, j) is the difference of two such
values at consecutive row boundaries, and each column needs only its own rows. The result is the
same exact overlap as 1.0's (to rounding), with a third of the work.

**Memory.** Each image accumulates into buffers the size of its own footprint on the output
grid (not the whole mosaic), which is also where its variance weights are combined.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from transforms import resample as R

__all__ = [
    "PixelMap",
    "pixel_map",
    "exact_map",
    "map_rows",
    "drizzle_images",
    "drizzle",
    "resample_models",
    "MapStats",
    "DEFAULT_TOL",
]

DEFAULT_TOL = 1e-3  # output pixels: the largest interpolation error accepted at check points
ORDERS = (1, 3)
_START_STEP = 64.0  # first coarse step tried (input pixels)
_MIN_STEP = 2.0  # below this the exact map is cheaper than checking an interpolant
_CHUNK_ROWS = 256  # rows per exact WCS evaluation (bounds memory)
_CHECK_FRACTIONS = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class PixelMap:
    """Output-pixel (x, y) of a regular input grid (pixel corners or centres).

    Row ``r`` of the fine map is ``sum_q wy[r, q] * rows[:, sy[r] + q, :]`` (nq = 1 exact,
    2 bilinear, 4 cubic); ``rows`` (2, nrows, ncols) holds the map already interpolated along x
    at every node row. ``step`` is the coarse step in input pixels (1.0 for the exact map),
    ``max_error`` the largest interpolation error measured at the check points (output pixels),
    ``nevals`` the number of WCS evaluations it took.
    """

    rows: np.ndarray
    sy: np.ndarray
    wy: np.ndarray
    corners: bool
    step: float
    order: int
    max_error: float
    nevals: int

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the fine grid."""
        return int(self.sy.shape[0]), int(self.rows.shape[2])

    @property
    def exact(self) -> bool:
        return self.wy.shape[1] == 1


# --------------------------------------------------------------------------------------------
# Interpolation weights (numpy, tiny arrays) and map construction
# --------------------------------------------------------------------------------------------

def _weights(u: np.ndarray, m: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """First node index and weights (n, nq) of positions ``u`` in node units (0..m)."""
    u = np.asarray(u, dtype=np.float64)
    k = np.clip(np.floor(u).astype(np.int64), 0, m - 1)
    if order == 1:
        f = u - k
        return k, np.stack([1.0 - f, f], axis=-1)
    s = np.clip(k - 1, 0, m - 3)
    t = u - s
    w = np.stack([-(t - 1.0) * (t - 2.0) * (t - 3.0) / 6.0,
                  t * (t - 2.0) * (t - 3.0) / 2.0,
                  -t * (t - 1.0) * (t - 3.0) / 2.0,
                  t * (t - 1.0) * (t - 2.0) / 6.0], axis=-1)
    return s, w


def _along_x(nodes: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Interpolate node rows ``nodes`` (..., m+1) at columns with first nodes ``s``, weights w."""
    out = w[:, 0] * nodes[..., s]
    for q in range(1, w.shape[1]):
        out = out + w[:, q] * nodes[..., s + q]
    return out


def _to_output(wcs_in: Any, wcs_out: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(2, ...) output pixel positions of input pixel positions (x, y), through the sky."""
    xo, yo = R._to_output(wcs_in, wcs_out, x, y)
    return np.stack([xo, yo])


def exact_map(wcs_in: Any, wcs_out: Any, shape: Sequence[int], corners: bool = True
              ) -> PixelMap:
    """The exact map: every grid point through the WCS (in row chunks, as 1.0 does)."""
    ny, nx = int(shape[0]), int(shape[1])
    off = -0.5 if corners else 0.0
    nr, nc = (ny + 1, nx + 1) if corners else (ny, nx)
    rows = np.empty((2, nr, nc))
    xs = np.arange(nc, dtype=np.float64) + off
    for r0 in range(0, nr, _CHUNK_ROWS):
        r1 = min(r0 + _CHUNK_ROWS, nr)
        gx, gy = np.meshgrid(xs, np.arange(r0, r1, dtype=np.float64) + off)
        rows[:, r0:r1] = _to_output(wcs_in, wcs_out, gx, gy)
    return PixelMap(rows, np.arange(nr, dtype=np.int64), np.ones((nr, 1)), corners, 1.0, 1,
                    0.0, nr * nc)


def _coarse(wcs_in: Any, wcs_out: Any, nr: int, nc: int, off: float, step: float, order: int):
    """Nodes, interpolated node rows, row weights and the measured error for one step."""
    mx = max(int(math.ceil((nc - 1) / step)), order)
    my = max(int(math.ceil((nr - 1) / step)), order)
    hx, hy = (nc - 1) / mx, (nr - 1) / my
    kx, ky = np.arange(mx + 1) * hx + off, np.arange(my + 1) * hy + off
    gx, gy = np.meshgrid(kx, ky)
    nodes = _to_output(wcs_in, wcs_out, gx, gy)  # (2, my+1, mx+1)
    # check points: 3 per cell and axis
    fr = np.asarray(_CHECK_FRACTIONS)
    ux = (np.arange(mx)[:, None] + fr).ravel()
    uy = (np.arange(my)[:, None] + fr).ravel()
    sxc, wxc = _weights(ux, mx, order)
    syc, wyc = _weights(uy, my, order)
    along = _along_x(nodes, sxc, wxc)  # (2, my+1, ncheck_x)
    interp = wyc[:, 0, None] * along[:, syc]
    for q in range(1, wyc.shape[1]):
        interp = interp + wyc[:, q, None] * along[:, syc + q]
    cx, cy = np.meshgrid(ux * hx + off, uy * hy + off)
    exact = _to_output(wcs_in, wcs_out, cx, cy)
    nevals = nodes[0].size + exact[0].size
    if not (np.all(np.isfinite(nodes)) and np.all(np.isfinite(exact))):
        return None, nevals
    err = float(np.max(np.hypot(interp[0] - exact[0], interp[1] - exact[1])))
    # the fine grid: columns 0..nc-1, rows 0..nr-1 in node units
    sx, wx = _weights(np.arange(nc) / hx, mx, order)
    sy, wy = _weights(np.arange(nr) / hy, my, order)
    rows = _along_x(nodes, sx, wx)  # (2, my+1, nc)
    return (rows, sy, wy, max(hx, hy), err), nevals


def pixel_map(wcs_in: Any, wcs_out: Any, shape: Sequence[int], corners: bool = True,
              order: int = 3, tol: float = DEFAULT_TOL, step: float | None = None) -> PixelMap:
    """The map of an input grid into the output, interpolated where the error allows.

    ``corners``: the (ny+1, nx+1) pixel-corner grid (square kernel) or the (ny, nx) centres
    (point kernel). ``order``: 1 (bilinear) or 3 (cubic). ``tol``: the largest error accepted
    at the check points, in output pixels (0: exact map). ``step``: a fixed coarse step in input
    pixels (JWST's ``pixmap_stepsize``; no acceptance test; <= 1 means exact when ``tol`` is 0
    and automatic otherwise).
    """
    if order not in ORDERS:
        raise R.ResampleError(f"pixmap order must be 1 (bilinear) or 3 (cubic), got {order}")
    if not (tol >= 0 and math.isfinite(tol)):
        raise R.ResampleError(f"pixmap tolerance must be >= 0 output pixels, got {tol}")
    ny, nx = int(shape[0]), int(shape[1])
    nr, nc = (ny + 1, nx + 1) if corners else (ny, nx)
    off = -0.5 if corners else 0.0
    fixed = step is not None and step > 1
    if (tol == 0 and not fixed) or min(nr, nc) < 2 * max(order, 2) + 1:
        return exact_map(wcs_in, wcs_out, shape, corners)
    h = float(step) if fixed else min(_START_STEP, (max(nr, nc) - 1) / 4.0)
    spent = 0
    p = 2 if order == 1 else 4  # error ~ h**p
    for _ in range(6):
        if h < _MIN_STEP:
            break
        got, n = _coarse(wcs_in, wcs_out, nr, nc, off, h, order)
        spent += n
        if got is None:
            break
        rows, sy, wy, hh, err = got
        if fixed or err <= tol:
            # C-contiguous (fancy indexing along the last axis is not): one kernel signature
            return PixelMap(np.ascontiguousarray(rows), np.ascontiguousarray(sy, np.int64),
                            np.ascontiguousarray(wy), corners, hh, order, err, spent)
        # aim at half the tolerance; shrink at least by 2 (the error law is asymptotic)
        h = min(h / 2.0, h * (0.5 * tol / err) ** (1.0 / p))
    m = exact_map(wcs_in, wcs_out, shape, corners)
    return PixelMap(m.rows, m.sy, m.wy, corners, 1.0, order, 0.0, spent + m.nevals)


def map_rows(pm: PixelMap, r0: int = 0, r1: int | None = None) -> np.ndarray:
    """Rows r0..r1 of the fine map as (2, r1 - r0, ncols) (for tests and error checks)."""
    r1 = pm.shape[0] if r1 is None else r1
    sy, wy = pm.sy[r0:r1], pm.wy[r0:r1]
    out = wy[:, 0, None] * pm.rows[:, sy]
    for q in range(1, wy.shape[1]):
        out = out + wy[:, q, None] * pm.rows[:, sy + q]
    return out


# --------------------------------------------------------------------------------------------
# numba: one kernel (square and point), its row builder, and the footprint bounds
# --------------------------------------------------------------------------------------------

@njit(nogil=True, cache=True, inline="always")
def _map_row(rows, sy, wy, r, ox, oy):
    """Fine row ``r`` of the map into (ox, oy)."""
    s = sy[r]
    nq = wy.shape[1]
    n = ox.shape[0]
    w0 = wy[r, 0]
    for c in range(n):
        ox[c] = w0 * rows[0, s, c]
        oy[c] = w0 * rows[1, s, c]
    for q in range(1, nq):
        wq = wy[r, q]
        for c in range(n):
            ox[c] += wq * rows[0, s + q, c]
            oy[c] += wq * rows[1, s + q, c]


@njit(nogil=True, cache=True)
def _map_bounds(rows, sy, wy, r0, r1):
    """(xmin, xmax, ymin, ymax) of the finite points of fine rows r0..r1-1."""
    n = rows.shape[2]
    ox = np.empty(n)
    oy = np.empty(n)
    b = np.array([np.inf, -np.inf, np.inf, -np.inf])
    for r in range(r0, r1):
        _map_row(rows, sy, wy, r, ox, oy)
        for c in range(n):
            x = ox[c]
            y = oy[c]
            if math.isfinite(x) and math.isfinite(y):
                b[0] = min(b[0], x)
                b[1] = max(b[1], x)
                b[2] = min(b[2], y)
                b[3] = max(b[3], y)
    return b


@njit(nogil=True, cache=True, inline="always")
def _below(ne, ew, eyl, eyr, yy):
    """sum over the clipped edges of (directed width) * mean of min(y(x), yy) along it."""
    s = 0.0
    for e in range(ne):
        yl = eyl[e]
        yr = eyr[e]
        if yl <= yy and yr <= yy:
            v = 0.5 * (yl + yr)
        elif yl >= yy and yr >= yy:
            v = yy
        else:
            t = (yy - yl) / (yr - yl)
            if yl < yy:
                v = t * 0.5 * (yl + yy) + (1.0 - t) * yy
            else:
                v = t * yy + (1.0 - t) * 0.5 * (yy + yr)
        s += ew[e] * v
    return s


@njit(nogil=True, cache=True)
def _drizzle_map(values, weight, row0, row1, rows, sy, wy, pixfrac, point, oj, oi,
                 num, den, con, bit):
    """Accumulate input rows row0..row1-1 of ``values`` (nplanes, ny, nx) into the buffers.

    The map (rows, sy, wy) is of pixel corners (square kernel) or centres (``point``). The
    buffers num (nplanes, by, bx), den, con (by, bx) hold output pixels (oj.., oi..). A drop
    is the corner quadrilateral shrunk by ``pixfrac`` about its vertex centroid; its overlaps
    are normalised by its own area. Returns the number of usable pixels that fell off the
    buffers or could not be mapped.
    """
    nplanes = values.shape[0]
    nx = values.shape[2]
    by, bx = den.shape
    ncol = rows.shape[2]
    ax = np.empty(ncol)
    ay = np.empty(ncol)
    bxr = np.empty(ncol)
    byr = np.empty(ncol)
    px = np.empty(4)
    py = np.empty(4)
    ew = np.empty(4)
    eyl = np.empty(4)
    eyr = np.empty(4)
    exa = np.empty(4)
    eya = np.empty(4)
    elo = np.empty(4)
    ehi = np.empty(4)
    ed = np.empty(4)
    esl = np.empty(4)
    ndrop = 0
    if not point:
        _map_row(rows, sy, wy, row0, ax, ay)
    for j in range(row0, row1):
        if point:
            _map_row(rows, sy, wy, j, ax, ay)
        else:
            _map_row(rows, sy, wy, j + 1, bxr, byr)
        for i in range(nx):
            w = weight[j, i]
            if not (w > 0.0) or not math.isfinite(w):
                continue
            usable = True
            for p in range(nplanes):
                if not math.isfinite(values[p, j, i]):
                    usable = False
            if not usable:
                continue
            if point:
                xc = ax[i]
                yc = ay[i]
                if not (math.isfinite(xc) and math.isfinite(yc)):
                    ndrop += 1
                    continue
                ii = int(math.floor(xc + 0.5)) - oi
                jj = int(math.floor(yc + 0.5)) - oj
                if ii < 0 or jj < 0 or ii >= bx or jj >= by:
                    ndrop += 1
                    continue
                den[jj, ii] += w
                for p in range(nplanes):
                    num[p, jj, ii] += values[p, j, i] * w
                con[jj, ii] |= bit
                continue
            # corners in order (-,-), (+,-), (+,+), (-,+)
            px[0] = ax[i]
            py[0] = ay[i]
            px[1] = ax[i + 1]
            py[1] = ay[i + 1]
            px[2] = bxr[i + 1]
            py[2] = byr[i + 1]
            px[3] = bxr[i]
            py[3] = byr[i]
            if not (math.isfinite(px[0] + px[1] + px[2] + px[3])
                    and math.isfinite(py[0] + py[1] + py[2] + py[3])):
                ndrop += 1
                continue
            if pixfrac != 1.0:
                xc = 0.25 * (px[0] + px[1] + px[2] + px[3])
                yc = 0.25 * (py[0] + py[1] + py[2] + py[3])
                for k in range(4):
                    px[k] = xc + pixfrac * (px[k] - xc)
                    py[k] = yc + pixfrac * (py[k] - yc)
            xmin = min(min(px[0], px[1]), min(px[2], px[3]))
            xmax = max(max(px[0], px[1]), max(px[2], px[3]))
            ymin = min(min(py[0], py[1]), min(py[2], py[3]))
            ymax = max(max(py[0], py[1]), max(py[2], py[3]))
            # global index of the output pixels holding the extremes; local frame whose
            # origin is the lower-left corner of output pixel (gi0, gj0)
            gi0 = int(math.floor(xmin + 0.5))
            gi1 = int(math.floor(xmax + 0.5))
            gj0 = int(math.floor(ymin + 0.5))
            gj1 = int(math.floor(ymax + 0.5))
            c0 = max(gi0 - oi, 0)
            c1 = min(gi1 - oi, bx - 1)
            rlo = max(gj0 - oj, 0)
            rhi = min(gj1 - oj, by - 1)
            if c0 > c1 or rlo > rhi:
                ndrop += 1
                continue
            x0 = gi0 - 0.5
            y0 = gj0 - 0.5
            for k in range(4):
                px[k] -= x0
                py[k] -= y0
            area2 = 0.0
            for k in range(4):
                kk = (k + 1) & 3
                area2 += px[k] * py[kk] - px[kk] * py[k]
            area = 0.5 * abs(area2)
            if not area > 0.0:
                ndrop += 1
                continue
            sgn = -1.0 if area2 > 0.0 else 1.0  # area below a level = sgn * sum of integrals
            scale = w / area
            for k in range(4):  # edges: start, x range, direction, slope
                kk = (k + 1) & 3
                dx = px[kk] - px[k]
                exa[k] = px[k]
                eya[k] = py[k]
                elo[k] = min(px[k], px[kk])
                ehi[k] = max(px[k], px[kk])
                ed[k] = 1.0 if dx > 0.0 else (-1.0 if dx < 0.0 else 0.0)
                esl[k] = (py[kk] - py[k]) / dx if dx != 0.0 else 0.0
            hit = False
            for cb in range(c0, c1 + 1):
                xl = float(cb + oi - gi0)  # this column's left edge, local
                xr = xl + 1.0
                ne = 0
                ylo = np.inf
                yhi = -np.inf
                tot = 0.0
                for k in range(4):
                    if ed[k] == 0.0:
                        continue
                    lo = max(elo[k], xl)
                    hi = min(ehi[k], xr)
                    if hi <= lo:
                        continue
                    yl = eya[k] + esl[k] * (lo - exa[k])
                    yr = eya[k] + esl[k] * (hi - exa[k])
                    wd = ed[k] * (hi - lo)
                    ew[ne] = wd
                    eyl[ne] = yl
                    eyr[ne] = yr
                    ne += 1
                    ylo = min(ylo, min(yl, yr))
                    yhi = max(yhi, max(yl, yr))
                    tot += wd * 0.5 * (yl + yr)
                if ne == 0:
                    continue
                # local rows this column touches, within the buffer
                ra = max(int(math.floor(ylo)), rlo + oj - gj0)
                rb = min(int(math.floor(yhi)), rhi + oj - gj0)
                if ra > rb:
                    continue
                prev = 0.0 if ra <= ylo else _below(ne, ew, eyl, eyr, float(ra))
                for r in range(ra, rb + 1):
                    top = r + 1.0
                    cur = tot if top >= yhi else _below(ne, ew, eyl, eyr, top)
                    a = sgn * (cur - prev)
                    prev = cur
                    if not a > 0.0:
                        continue
                    dow = a * scale
                    jb = r + gj0 - oj
                    den[jb, cb] += dow
                    for p in range(nplanes):
                        num[p, jb, cb] += values[p, j, i] * dow
                    con[jb, cb] |= bit
                    hit = True
            if not hit:
                ndrop += 1
        if not point:
            ax, bxr = bxr, ax
            ay, byr = byr, ay
    return ndrop


# --------------------------------------------------------------------------------------------
# Public API: as transforms.resample's, with the pixel-map options
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MapStats:
    """What the pixel maps of one drizzle call cost and how accurate they were."""

    steps: tuple[float, ...]
    max_errors: tuple[float, ...]
    nevals: int

    @property
    def max_error(self) -> float:
        return max(self.max_errors, default=0.0)


def _footprint(pm: PixelMap, oy: int, ox: int) -> tuple[int, int, int, int] | None:
    """(j0, j1, i0, i1) output pixel ranges (inclusive) an image can reach, or None."""
    b = _map_bounds(pm.rows, pm.sy, pm.wy, 0, pm.shape[0])
    if not np.all(np.isfinite(b)):
        return None
    i0 = max(int(math.floor(b[0] + 0.5)), 0)
    i1 = min(int(math.floor(b[1] + 0.5)), ox - 1)
    j0 = max(int(math.floor(b[2] + 0.5)), 0)
    j1 = min(int(math.floor(b[3] + 0.5)), oy - 1)
    if i0 > i1 or j0 > j1:
        return None
    return j0, j1, i0, i1


def drizzle_images(
    images: Sequence[tuple[np.ndarray, np.ndarray, Any, Mapping[str, np.ndarray] | None]],
    out_wcs: Any,
    out_shape: Sequence[int],
    pixfrac: float = 1.0,
    kernel: str = "square",
    fillval: float = float("nan"),
    var_weights: Sequence[str | float] | None = None,
    pixel_scale_ratio: float = 1.0,
    order: int = 3,
    tol: float = DEFAULT_TOL,
    step: float | None = None,
) -> tuple[R.DrizzleResult, MapStats]:
    """``transforms.resample.drizzle_images`` with interpolated pixel maps (see module doc).

    Same inputs, same output layout and the same variance combination; ``order``, ``tol`` and
    ``step`` choose the pixel map (``pixel_map``). Returns the result and the maps' statistics.
    """
    R._check(kernel, pixfrac)
    if len(out_shape) != 2 or min(out_shape) < 1:
        raise R.ResampleError(f"out_shape must be (ny, nx) with both >= 1, got {tuple(out_shape)}")
    oy, ox = int(out_shape[0]), int(out_shape[1])
    n = len(images)
    num_all = np.zeros((oy, ox))  # C-contiguous: the kernel takes num_all[None] as is
    den_all = np.zeros((oy, ox))
    con = np.zeros((max(1, (n + 31) // 32), oy, ox), dtype=np.int32)
    var_names: list[str] = sorted({k for im in images for k in (im[3] or {})})
    var_sum = {k: np.zeros((oy, ox)) for k in var_names}
    var_wt = {k: np.zeros((oy, ox)) for k in var_names}
    steps: list[float] = []
    errors: list[float] = []
    nevals = 0
    point = kernel == "point"
    for k, (data, weight, wcs_in, variances) in enumerate(images):
        data = np.asarray(data)
        weight = np.asarray(weight)
        if data.ndim != 2 or weight.shape != data.shape:
            raise R.ResampleError(f"image {k}: data must be 2-D and weight the same shape; got "
                                  f"{data.shape} and {weight.shape}")
        names = [v for v in var_names if variances and v in variances]
        planes = [data] + [np.asarray(variances[v]) for v in names]  # type: ignore[index]
        for v, a in zip(names, planes[1:]):
            if a.shape != data.shape:
                raise R.ResampleError(f"image {k}: {v} shape {a.shape} != data shape "
                                      f"{data.shape}")
        if data.size == 0:
            continue
        pm = pixel_map(wcs_in, out_wcs, data.shape, corners=not point, order=order, tol=tol,
                       step=step)
        steps.append(pm.step)
        errors.append(pm.max_error)
        nevals += pm.nevals
        # one numba specialisation: writable C-contiguous inputs and buffers, always
        values = np.stack([np.asarray(a, dtype=np.float32) for a in planes])
        wt = np.require(weight, np.float32, ["C", "W"])
        bit = np.int32(np.uint32(1 << (k % 32)).view(np.int32))
        if not names:
            # no per-image variance weights needed: accumulate straight into the totals
            _drizzle_map(values, wt, 0, data.shape[0], pm.rows, pm.sy, pm.wy, float(pixfrac),
                         point, 0, 0, num_all[None], den_all, con[k // 32], bit)
            continue
        box = _footprint(pm, oy, ox)
        if box is None:
            continue
        j0, j1, i0, i1 = box
        sl = (slice(j0, j1 + 1), slice(i0, i1 + 1))
        by, bx = j1 - j0 + 1, i1 - i0 + 1
        num = np.zeros((len(planes), by, bx))
        den = np.zeros((by, bx))
        cbuf = np.zeros((by, bx), np.int32)
        _drizzle_map(values, wt, 0, data.shape[0], pm.rows, pm.sy, pm.wy, float(pixfrac),
                     point, j0, i0, num, den, cbuf, bit)
        con[k // 32][sl] |= cbuf
        num_all[sl] += num[0]
        den_all[sl] += den
        with np.errstate(invalid="ignore", divide="ignore"):
            means = {v: num[p + 1] / den for p, v in enumerate(names)}
        vw = (var_weights[k] if var_weights is not None else "ivm")
        if vw == "ivm":
            rn = means.get("var_rnoise")
            wk = np.zeros((by, bx))
            if rn is not None:
                ok = np.isfinite(rn) & (rn > 0)
                wk[ok] = 1.0 / rn[ok]
            else:
                wk[den > 0] = 1.0
        else:
            wk = np.where(den > 0, float(vw), 0.0)
        for v, mv in means.items():
            ok = np.isfinite(mv) & (mv >= 0) & (wk > 0)
            var_sum[v][sl][ok] += mv[ok] * wk[ok] * wk[ok]
            var_wt[v][sl][ok] += wk[ok]
    covered = den_all > 0
    np.divide(num_all, den_all, out=num_all, where=covered)
    np.copyto(num_all, fillval, where=~covered)
    sci = num_all.astype(np.float32)
    scale = 1.0 / float(pixel_scale_ratio) ** 2
    out_vars = {}
    for v in var_names:
        vs, vt = var_sum[v], var_wt[v]
        ok = vt > 0
        np.multiply(vs, scale, out=vs)
        np.divide(vs, vt, out=vs, where=ok)
        np.divide(vs, vt, out=vs, where=ok)
        np.copyto(vs, np.nan, where=~ok)
        out_vars[v] = vs.astype(np.float32)
    res = R.DrizzleResult(sci, den_all.astype(np.float32), con, out_vars)
    return res, MapStats(tuple(steps), tuple(errors), nevals)


def drizzle(
    images: Sequence[tuple[np.ndarray, np.ndarray, Any]],
    out_wcs: Any,
    out_shape: Sequence[int],
    pixfrac: float = 1.0,
    kernel: str = "square",
    fillval: float = float("nan"),
    order: int = 3,
    tol: float = DEFAULT_TOL,
    step: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``transforms.resample.drizzle`` with interpolated pixel maps: (sci, wht, con)."""
    r, _ = drizzle_images([(d, w, wc, None) for d, w, wc in images], out_wcs, out_shape,
                          pixfrac=pixfrac, kernel=kernel, fillval=fillval, order=order,
                          tol=tol, step=step)
    return r.sci, r.wht, r.con


def resample_models(
    models: Sequence[Any],
    pixfrac: float = 1.0,
    kernel: str = "square",
    fillval: float = float("nan"),
    weight_type: str | None = "ivm",
    output_shape: Sequence[int] | None = None,
    crpix: Sequence[float] | None = None,
    crval: Sequence[float] | None = None,
    rotation: float | None = None,
    pixel_scale_ratio: float = 1.0,
    pixel_scale: float | None = None,
    output_grid: Mapping[str, Any] | None = None,
    order: int = 3,
    tol: float = DEFAULT_TOL,
    step: float | None = None,
) -> Any:
    """``transforms.resample.resample_models`` with interpolated pixel maps: an i2d DataModel.

    Its meta also records the map: ``resample.pixmap_stepsize`` (the finest coarse step used,
    input pixels; 1 = exact), ``resample.pixmap_order`` and ``resample.pixmap_tolerance``.
    """
    prep = R.resample_inputs(models, weight_type=weight_type, output_shape=output_shape,
                             crpix=crpix, crval=crval, rotation=rotation,
                             pixel_scale_ratio=pixel_scale_ratio, pixel_scale=pixel_scale,
                             output_grid=output_grid)
    r, stats = drizzle_images(prep.images, prep.out_wcs, prep.out_shape, pixfrac=pixfrac,
                              kernel=kernel, fillval=fillval, var_weights=prep.var_weights,
                              pixel_scale_ratio=prep.ratio, order=order, tol=tol, step=step)
    out = R.i2d_model(models, prep, r, pixfrac=pixfrac, kernel=kernel, fillval=fillval,
                      weight_type=weight_type)
    return out.replace(meta={
        "resample.pixmap_stepsize": float(min(stats.steps, default=1.0)),
        "resample.pixmap_order": int(order),
        "resample.pixmap_tolerance": float(tol),
    })
