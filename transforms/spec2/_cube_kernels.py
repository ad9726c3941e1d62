"""cube_build's inner loops (numba): drizzle (exact polygon overlaps) and the point-cloud
weightings (EMSM, MSM), as jwst's C extensions define them, without their per-pixel scan over
every wavelength plane.

Coordinates: each detector pixel is a point (xi, eta, lambda) on the cube's tangent plane
(arcsec) and wavelength axis, or (drizzle) a quadrilateral (four corners) times a wavelength
interval ``lambda +- dlambda / 2``. The cube's spaxel ``(i, j)`` is the square
``[x0 + i c1 +- c1 / 2] x [y0 + j c2 +- c2 / 2]``; plane ``k`` covers ``[zlo[k], zhi[k]]``
(drizzle) or is centred at ``zc[k]`` with width ``zw[k]`` (point cloud). Accumulated per
voxel: sum(w f), sum(w), sum((w err)^2), count, as jwst.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def _clip(px, py, n, edge, value, keep_greater, ox, oy):
    """Sutherland-Hodgman: clip polygon (px, py)[:n] by x (edge 0) or y (edge 1) against
    ``value``; result in (ox, oy); returns its length."""
    m = 0
    if n == 0:
        return 0
    for i in range(n):
        j = (i + 1) % n
        ax, ay, bx, by = px[i], py[i], px[j], py[j]
        ca = ax if edge == 0 else ay
        cb = bx if edge == 0 else by
        ina = ca >= value if keep_greater else ca <= value
        inb = cb >= value if keep_greater else cb <= value
        if ina:
            ox[m] = ax
            oy[m] = ay
            m += 1
        if ina != inb:
            t = (value - ca) / (cb - ca)
            ox[m] = ax + t * (bx - ax)
            oy[m] = ay + t * (by - ay)
            m += 1
    return m


@njit(nogil=True, cache=True)
def overlap_area(qx, qy, xl, xr, yb, yt, b1x, b1y, b2x, b2y):
    """Area of the convex quadrilateral (qx, qy) inside the box [xl, xr] x [yb, yt]
    (``b1*``, ``b2*``: scratch arrays of length >= 8)."""
    n = _clip(qx, qy, 4, 0, xl, True, b1x, b1y)
    n = _clip(b1x, b1y, n, 0, xr, False, b2x, b2y)
    n = _clip(b2x, b2y, n, 1, yb, True, b1x, b1y)
    n = _clip(b1x, b1y, n, 1, yt, False, b2x, b2y)
    if n < 3:
        return 0.0
    a = 0.0
    for i in range(n):
        j = (i + 1) % n
        a += b2x[i] * b2y[j] - b2x[j] * b2y[i]
    return abs(a) * 0.5


@njit(nogil=True, cache=True)
def _first_plane(zhi, value):
    """The first plane k with zhi[k] > value (zhi increasing)."""
    lo, hi = 0, zhi.size
    while lo < hi:
        mid = (lo + hi) // 2
        if zhi[mid] > value:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(nogil=True, cache=True)
def drizzle(xi1, eta1, xi2, eta2, xi3, eta3, xi4, eta4, wave, dwave, flux, err,
            x0, c1, nx, y0, c2, ny, zlo, zhi, sflux, sweight, svar, siflux):
    """Accumulate every pixel's overlap (area x wavelength overlap) into the voxels. The
    spatial overlaps of a pixel are computed once, then spread over its planes."""
    qx = np.empty(4)
    qy = np.empty(4)
    b1x = np.empty(12)
    b1y = np.empty(12)
    b2x = np.empty(12)
    b2y = np.empty(12)
    cap = 256
    areas = np.empty(cap)
    cells = np.empty(cap, np.int64)
    nz = zlo.size
    nxy = nx * ny
    for p in range(wave.size):
        f = flux[p]
        e = err[p]
        if not (math.isfinite(f) and math.isfinite(e)):
            continue
        qx[0], qx[1], qx[2], qx[3] = xi1[p], xi2[p], xi3[p], xi4[p]
        qy[0], qy[1], qy[2], qy[3] = eta1[p], eta2[p], eta3[p], eta4[p]
        xmin = min(min(qx[0], qx[1]), min(qx[2], qx[3]))
        xmax = max(max(qx[0], qx[1]), max(qx[2], qx[3]))
        ymin = min(min(qy[0], qy[1]), min(qy[2], qy[3]))
        ymax = max(max(qy[0], qy[1]), max(qy[2], qy[3]))
        if not (math.isfinite(xmin) and math.isfinite(xmax) and math.isfinite(ymin)
                and math.isfinite(ymax)):
            continue
        i1 = max(0, int(math.floor((xmin - x0) / c1 + 0.5)))
        i2 = min(nx - 1, int(math.floor((xmax - x0) / c1 + 0.5)))
        j1 = max(0, int(math.floor((ymin - y0) / c2 + 0.5)))
        j2 = min(ny - 1, int(math.floor((ymax - y0) / c2 + 0.5)))
        if i1 > i2 or j1 > j2:
            continue
        pmin = wave[p] - 0.5 * dwave[p]
        pmax = wave[p] + 0.5 * dwave[p]
        k0 = _first_plane(zhi, pmin)
        if k0 >= nz or zlo[k0] >= pmax:
            continue
        ncell = 0
        for j in range(j1, j2 + 1):
            yc = y0 + j * c2
            for i in range(i1, i2 + 1):
                xc = x0 + i * c1
                area = overlap_area(qx, qy, xc - 0.5 * c1, xc + 0.5 * c1,
                                    yc - 0.5 * c2, yc + 0.5 * c2, b1x, b1y, b2x, b2y)
                if area > 0.0:
                    if ncell == cap:
                        cap *= 2
                        na = np.empty(cap)
                        nc = np.empty(cap, np.int64)
                        na[:ncell] = areas[:ncell]
                        nc[:ncell] = cells[:ncell]
                        areas, cells = na, nc
                    areas[ncell] = area
                    cells[ncell] = j * nx + i
                    ncell += 1
        if ncell == 0:
            continue
        for k in range(k0, nz):
            if zlo[k] >= pmax:
                break
            zov = min(pmax, zhi[k]) - max(pmin, zlo[k])
            if zov <= 0.0:
                continue
            base = k * nxy
            for c in range(ncell):
                w = areas[c] * zov
                idx = base + cells[c]
                sflux[idx] += f * w
                sweight[idx] += w
                svar[idx] += (e * w) * (e * w)
                siflux[idx] += 1.0


@njit(nogil=True, cache=True)
def pointcloud(xi, eta, wave, flux, err, rois, roiw, power, softrad, scalerad, emsm,
               x0, c1, nx, y0, c2, ny, zc, zw, sflux, sweight, svar, siflux):
    """Accumulate every pixel (a point) into the voxels within its region of interest:
    EMSM ``w = exp(-(dx^2 + dy^2 + dz^2) / (scalerad / c1))`` (distances in spaxels and
    planes), MSM ``w = 1 / max(r^p, softrad)``."""
    nz = zc.size
    nxy = nx * ny
    for p in range(wave.size):
        f = flux[p]
        e = err[p]
        if not (math.isfinite(f) and math.isfinite(e) and math.isfinite(xi[p])
                and math.isfinite(eta[p])):
            continue
        r = rois[p]
        i1 = max(0, int(math.ceil((xi[p] - r - x0) / c1)))
        i2 = min(nx - 1, int(math.floor((xi[p] + r - x0) / c1)))
        j1 = max(0, int(math.ceil((eta[p] - r - y0) / c2)))
        j2 = min(ny - 1, int(math.floor((eta[p] + r - y0) / c2)))
        if i1 > i2 or j1 > j2:
            continue
        # planes with |zc - wave| <= roiw (zc increasing)
        lo, hi = 0, nz
        target = wave[p] - roiw[p]
        while lo < hi:
            mid = (lo + hi) // 2
            if zc[mid] >= target:
                hi = mid
            else:
                lo = mid + 1
        for k in range(lo, nz):
            dz = zc[k] - wave[p]
            if dz > roiw[p]:
                break
            d3 = dz / zw[k]
            for j in range(j1, j2 + 1):
                ydist = abs(y0 + j * c2 - eta[p])
                for i in range(i1, i2 + 1):
                    xdist = abs(x0 + i * c1 - xi[p])
                    if math.sqrt(xdist * xdist + ydist * ydist) > r:
                        continue
                    d1 = xdist / c1
                    d2 = ydist / c2
                    wsum = d1 * d1 + d2 * d2 + d3 * d3
                    if emsm:
                        w = math.exp(-wsum / (scalerad[p] / c1))
                    else:
                        wn = math.sqrt(wsum) ** power[p]
                        if wn < softrad[p]:
                            wn = softrad[p]
                        w = 1.0 / wn
                    idx = k * nxy + j * nx + i
                    sflux[idx] += f * w
                    sweight[idx] += w
                    svar[idx] += (e * w) * (e * w)
                    siflux[idx] += 1.0


@njit(nogil=True, cache=True)
def final_dq(weight, nz, ny, nx, holes, dnu, non_science):
    """jwst's final flags: covered voxels 0; uncovered ones NON_SCIENCE | DO_NOT_USE, except
    (``holes``) an uncovered voxel inside the footprint (its four in-plane neighbours covered,
    not on the cube's edge) is a hole: DO_NOT_USE."""
    dq = np.zeros(nz * ny * nx, np.uint32)
    nxy = nx * ny
    for k in range(nz):
        for j in range(ny):
            for i in range(nx):
                idx = k * nxy + j * nx + i
                if weight[idx] > 0.0:
                    continue
                flag = non_science | dnu
                if holes and 0 < i < nx - 1 and 0 < j < ny - 1:
                    if (weight[idx - 1] > 0.0 and weight[idx + 1] > 0.0
                            and weight[idx - nx] > 0.0 and weight[idx + nx] > 0.0):
                        flag = dnu
                dq[idx] = flag
    return dq
