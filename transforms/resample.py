"""Drizzle and blot: resample images between WCSs (Fruchter & Hook 2002), kernels in numba.

``drizzle`` maps every input pixel's corners into the output grid through the WCS pipeline
(input pixel -> sky -> output pixel, evaluated in numpy on the shared pixel-corner grid, in row
chunks) and shrinks the quadrilateral by ``pixfrac`` about its centroid. A numba kernel then
computes its exact overlap with every output pixel it touches (Green's theorem over the four
edges, ``square`` kernel) or drops the pixel centre into one output pixel (``point``), and
accumulates ``value * dow`` and ``dow = w * overlap / drop area``. The output is the weighted
mean of the inputs (surface brightness is preserved, so total flux = sum(sci) * output pixel
area is conserved), WHT the summed ``dow``, CON the context bit planes (int32, bit ``k % 32`` of
plane ``k // 32`` set where image ``k`` contributed).

Variance arrays follow JWST/stcal: each image's variance is drizzled like its data, the images
are combined with per-output-pixel weights ``w_k`` (1/var_rnoise resampled, or exposure time)
as ``sum(w_k^2 var_k) / (sum w_k)^2``, then divided by ``pixel_scale_ratio**2``.

``blot`` interpolates a mosaic back onto an input frame (bilinear, NaN-aware) for outlier
detection. ``mosaic_grid`` chooses an output tangent-plane grid covering a set of inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit

from transforms import wcs as W

__all__ = [
    "ResampleError",
    "DrizzleResult",
    "drizzle",
    "drizzle_images",
    "blot",
    "mosaic_grid",
    "pixel_scale_arcsec",
    "footprint",
    "resample_models",
    "resample_inputs",
    "i2d_model",
    "ResampleInputs",
]

KERNELS = ("square", "point")
_CHUNK_ROWS = 256  # rows of input pixels mapped per WCS evaluation (bounds memory)


class ResampleError(ValueError):
    """Bad resampling input (shapes, kernel, pixfrac, WCS)."""


@dataclass(frozen=True)
class DrizzleResult:
    """Drizzled SCI (float32), WHT (float32), CON (int32 planes) and drizzled variances."""

    sci: np.ndarray
    wht: np.ndarray
    con: np.ndarray
    variances: dict[str, np.ndarray] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------------

@njit(nogil=True, cache=True, inline="always")
def _strip(xa, ya, xb, yb, x0, x1, y0, h):
    """Directed integral over x of clamp(y(x) - y0, 0, h) along the edge (xa,ya)->(xb,yb),
    restricted to x0 <= x <= x1 (Green's theorem: summed over a polygon's edges this is minus
    the polygon's area inside the box [x0,x1] x [y0,y0+h])."""
    if xa == xb:
        return 0.0
    sgn = 1.0
    if xb < xa:
        xa, ya, xb, yb = xb, yb, xa, ya
        sgn = -1.0
    xl = max(xa, x0)
    xr = min(xb, x1)
    if xr <= xl:
        return 0.0
    m = (yb - ya) / (xb - xa)
    c = ya - y0 - m * xa  # y(x) - y0 = c + m x
    # the clamp is linear between the crossings of y = y0 and y = y0 + h: trapezoids are exact
    if m != 0.0:
        ca = -c / m
        cb = (h - c) / m
        if ca > cb:
            ca, cb = cb, ca
    else:
        ca = xr
        cb = xr
    total = 0.0
    px = xl
    pf = min(max(c + m * xl, 0.0), h)
    for q in range(3):
        if q == 0:
            nx = ca
        elif q == 1:
            nx = cb
        else:
            nx = xr
        if nx <= px or nx > xr:
            continue
        nf = min(max(c + m * nx, 0.0), h)
        total += 0.5 * (pf + nf) * (nx - px)
        px = nx
        pf = nf
    return sgn * total


@njit(nogil=True, cache=True)
def _overlap(px, py, x0, x1, y0, y1):
    """Area of the (convex or not, simple) quadrilateral (px, py) inside the box."""
    h = y1 - y0
    a = 0.0
    for k in range(4):
        kk = (k + 1) % 4
        a += _strip(px[k], py[k], px[kk], py[kk], x0, x1, y0, h)
    return abs(a)


@njit(nogil=True, cache=True)
def _usable(values, w, j, i):
    """An input pixel drizzles only with a positive finite weight and finite values."""
    if not (w > 0.0) or not math.isfinite(w):
        return False
    for p in range(values.shape[0]):
        if not math.isfinite(values[p, j, i]):
            return False
    return True


@njit(nogil=True, cache=True)
def _drizzle_square(values, weight, row0, gxo, gyo, pixfrac, num, den, con, bit):
    """Accumulate rows row0.. of ``values`` (nplanes, ny, nx) with the square kernel.

    (gxo, gyo): output coordinates of the chunk's pixel-corner grid (nr+1, nx+1). The drop is
    the corner quadrilateral shrunk by ``pixfrac`` about its vertex centroid. Returns the number
    of pixels dropped (off the output or unmappable).
    """
    nplanes = values.shape[0]
    nr = gxo.shape[0] - 1
    nx = gxo.shape[1] - 1
    oy, ox = den.shape
    px = np.empty(4)
    py = np.empty(4)
    ndrop = 0
    for r in range(nr):
        j = row0 + r
        for i in range(nx):
            w = weight[j, i]
            if not _usable(values, w, j, i):
                continue
            # corners in order (-,-), (+,-), (+,+), (-,+)
            px[0] = gxo[r, i]
            py[0] = gyo[r, i]
            px[1] = gxo[r, i + 1]
            py[1] = gyo[r, i + 1]
            px[2] = gxo[r + 1, i + 1]
            py[2] = gyo[r + 1, i + 1]
            px[3] = gxo[r + 1, i]
            py[3] = gyo[r + 1, i]
            finite = True
            for k in range(4):
                if not (math.isfinite(px[k]) and math.isfinite(py[k])):
                    finite = False
            if not finite:
                ndrop += 1
                continue
            xc = 0.25 * (px[0] + px[1] + px[2] + px[3])
            yc = 0.25 * (py[0] + py[1] + py[2] + py[3])
            xmin = 1e300
            xmax = -1e300
            ymin = 1e300
            ymax = -1e300
            for k in range(4):
                px[k] = xc + pixfrac * (px[k] - xc)
                py[k] = yc + pixfrac * (py[k] - yc)
                xmin = min(xmin, px[k])
                xmax = max(xmax, px[k])
                ymin = min(ymin, py[k])
                ymax = max(ymax, py[k])
            # normalise by the drop's own area, as drizzle does: each input pixel hands out
            # exactly its weight w over the output pixels it covers
            area = 0.0
            for k in range(4):
                kk = (k + 1) % 4
                area += px[k] * py[kk] - px[kk] * py[k]
            area = abs(0.5 * area)
            if not area > 0.0:
                ndrop += 1
                continue
            i0 = max(int(math.floor(xmin + 0.5)), 0)
            i1 = min(int(math.floor(xmax + 0.5)), ox - 1)
            j0 = max(int(math.floor(ymin + 0.5)), 0)
            j1 = min(int(math.floor(ymax + 0.5)), oy - 1)
            if i0 > i1 or j0 > j1:
                ndrop += 1
                continue
            hit = False
            for jj in range(j0, j1 + 1):
                for ii in range(i0, i1 + 1):
                    a = _overlap(px, py, ii - 0.5, ii + 0.5, jj - 0.5, jj + 0.5)
                    if a <= 0.0:
                        continue
                    dow = a / area * w
                    den[jj, ii] += dow
                    for p in range(nplanes):
                        num[p, jj, ii] += values[p, j, i] * dow
                    con[jj, ii] |= bit
                    hit = True
            if not hit:
                ndrop += 1
    return ndrop


@njit(nogil=True, cache=True)
def _drizzle_point(values, weight, row0, cxo, cyo, num, den, con, bit):
    """Accumulate rows row0.. with the point kernel: each centre falls in one output pixel."""
    nplanes = values.shape[0]
    nr, nx = cxo.shape
    oy, ox = den.shape
    ndrop = 0
    for r in range(nr):
        j = row0 + r
        for i in range(nx):
            w = weight[j, i]
            if not _usable(values, w, j, i):
                continue
            xc = cxo[r, i]
            yc = cyo[r, i]
            if not (math.isfinite(xc) and math.isfinite(yc)):
                ndrop += 1
                continue
            ii = int(math.floor(xc + 0.5))
            jj = int(math.floor(yc + 0.5))
            if ii < 0 or jj < 0 or ii >= ox or jj >= oy:
                ndrop += 1
                continue
            den[jj, ii] += w
            for p in range(nplanes):
                num[p, jj, ii] += values[p, j, i] * w
            con[jj, ii] |= bit
    return ndrop


@njit(nogil=True, cache=True)
def _bilinear(img, xs, ys, fill, out):
    """NaN-aware bilinear interpolation of ``img`` at (xs, ys) into ``out`` (same shape as xs)."""
    ny, nx = img.shape
    flat_x = xs.ravel()
    flat_y = ys.ravel()
    res = out.ravel()
    for k in range(flat_x.size):
        x = flat_x[k]
        y = flat_y[k]
        if not (math.isfinite(x) and math.isfinite(y)) or x < -0.5 or y < -0.5 \
                or x > nx - 0.5 or y > ny - 0.5:
            res[k] = fill
            continue
        x = min(max(x, 0.0), nx - 1.0)
        y = min(max(y, 0.0), ny - 1.0)
        i0 = min(int(math.floor(x)), max(nx - 2, 0))
        j0 = min(int(math.floor(y)), max(ny - 2, 0))
        fx = x - i0
        fy = y - j0
        acc = 0.0
        wsum = 0.0
        for dj in range(2):
            jj = j0 + dj
            if jj >= ny:
                continue
            wy = fy if dj == 1 else 1.0 - fy
            for di in range(2):
                ii = i0 + di
                if ii >= nx:
                    continue
                wx = fx if di == 1 else 1.0 - fx
                v = img[jj, ii]
                ww = wx * wy
                if ww > 0.0 and math.isfinite(v):
                    acc += v * ww
                    wsum += ww
        res[k] = acc / wsum if wsum > 0.0 else fill
    return out


# --------------------------------------------------------------------------------------------
# WCS mapping
# --------------------------------------------------------------------------------------------

def _to_output(wcs_in: Any, wcs_out: Any, x: np.ndarray, y: np.ndarray):
    """Input pixel (x, y) -> output pixel, through the sky, ignoring bounding boxes."""
    ra, dec = wcs_in.forward_transform(x, y)
    xo, yo = wcs_out.backward_transform(ra, dec)
    return np.asarray(xo, dtype=np.float64), np.asarray(yo, dtype=np.float64)


def _chunks(ny: int):
    for r0 in range(0, ny, _CHUNK_ROWS):
        yield r0, min(r0 + _CHUNK_ROWS, ny)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------

def _check(kernel: str, pixfrac: float) -> None:
    if kernel not in KERNELS:
        raise ResampleError(f"unknown drizzle kernel {kernel!r}; use one of {KERNELS}")
    if not 0.0 < pixfrac <= 1.0:
        raise ResampleError(f"pixfrac must be in (0, 1], got {pixfrac}")


def _accumulate(values: np.ndarray, weight: np.ndarray, wcs_in: Any, out_wcs: Any,
                out_shape: tuple[int, int], pixfrac: float, kernel: str,
                num: np.ndarray, den: np.ndarray, con: np.ndarray, bit: np.int32) -> int:
    ny, nx = values.shape[1:]
    ndrop = 0
    xs = np.arange(nx, dtype=np.float64)
    xe = np.arange(nx + 1, dtype=np.float64) - 0.5
    for r0, r1 in _chunks(ny):
        if kernel == "square":
            ex, ey = np.meshgrid(xe, np.arange(r0, r1 + 1, dtype=np.float64) - 0.5)
            gxo, gyo = _to_output(wcs_in, out_wcs, ex, ey)
            ndrop += _drizzle_square(values, weight, r0, gxo, gyo, float(pixfrac),
                                     num, den, con, bit)
        else:
            gx, gy = np.meshgrid(xs, np.arange(r0, r1, dtype=np.float64))
            cxo, cyo = _to_output(wcs_in, out_wcs, gx, gy)
            ndrop += _drizzle_point(values, weight, r0, cxo, cyo, num, den, con, bit)
    return ndrop


def drizzle(
    images: Sequence[tuple[np.ndarray, np.ndarray, Any]],
    out_wcs: Any,
    out_shape: Sequence[int],
    pixfrac: float = 1.0,
    kernel: str = "square",
    fillval: float = float("nan"),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drizzle ``(data, weight, wcs_in)`` images onto ``out_wcs``; returns (sci, wht, con).

    ``weight`` is the per-pixel weight map (0 excludes a pixel; e.g. 1/var_rnoise masked by DQ).
    Pixels with non-finite data or weight are skipped. Output pixels no input reached get
    ``fillval`` in SCI and 0 in WHT.
    """
    r = drizzle_images([(d, w, wc, None) for d, w, wc in images], out_wcs, out_shape,
                       pixfrac=pixfrac, kernel=kernel, fillval=fillval)
    return r.sci, r.wht, r.con


def drizzle_images(
    images: Sequence[tuple[np.ndarray, np.ndarray, Any, Mapping[str, np.ndarray] | None]],
    out_wcs: Any,
    out_shape: Sequence[int],
    pixfrac: float = 1.0,
    kernel: str = "square",
    fillval: float = float("nan"),
    var_weights: Sequence[str | float] | None = None,
    pixel_scale_ratio: float = 1.0,
) -> DrizzleResult:
    """Drizzle images with their variance arrays.

    ``images`` holds ``(data, weight, wcs_in, variances)`` with ``variances`` a mapping name ->
    array (e.g. var_rnoise, var_poisson, var_flat) or None. ``var_weights`` gives, per image, the
    weight used to combine variances across images: ``"ivm"`` (1/resampled var_rnoise, the
    default) or a number (exposure time). Output variances are NaN where no input contributed.
    """
    _check(kernel, pixfrac)
    if len(out_shape) != 2 or min(out_shape) < 1:
        raise ResampleError(f"out_shape must be (ny, nx) with both >= 1, got {tuple(out_shape)}")
    oy, ox = int(out_shape[0]), int(out_shape[1])
    n = len(images)
    num_all = np.zeros((1, oy, ox))
    den_all = np.zeros((oy, ox))
    con = np.zeros((max(1, (n + 31) // 32), oy, ox), dtype=np.int32)
    var_names: list[str] = sorted({k for im in images for k in (im[3] or {})})
    var_sum = {k: np.zeros((oy, ox)) for k in var_names}
    var_wt = {k: np.zeros((oy, ox)) for k in var_names}
    for k, (data, weight, wcs_in, variances) in enumerate(images):
        data = np.asarray(data)
        weight = np.asarray(weight)
        if data.ndim != 2 or weight.shape != data.shape:
            raise ResampleError(f"image {k}: data must be 2-D and weight the same shape; got "
                                f"{data.shape} and {weight.shape}")
        names = [v for v in var_names if variances and v in variances]
        planes = [data] + [np.asarray(variances[v]) for v in names]  # type: ignore[index]
        for v, a in zip(names, planes[1:]):
            if a.shape != data.shape:
                raise ResampleError(f"image {k}: {v} shape {a.shape} != data shape {data.shape}")
        values = np.stack([np.asarray(a, dtype=np.float32) for a in planes])
        if data.size == 0:
            continue
        num = np.zeros((len(planes), oy, ox))
        den = np.zeros((oy, ox))
        bit = np.int32(np.uint32(1 << (k % 32)).view(np.int32))
        plane = con[k // 32]
        _accumulate(values, np.asarray(weight, dtype=np.float32), wcs_in, out_wcs, (oy, ox),
                    pixfrac, kernel, num, den, plane, bit)
        num_all[0] += num[0]
        den_all += den
        if not names:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            means = {v: num[p + 1] / den for p, v in enumerate(names)}
        vw = (var_weights[k] if var_weights is not None else "ivm")
        if vw == "ivm":
            rn = means.get("var_rnoise")
            wk = np.zeros((oy, ox))
            if rn is not None:
                ok = np.isfinite(rn) & (rn > 0)
                wk[ok] = 1.0 / rn[ok]
            else:
                wk[den > 0] = 1.0
        else:
            wk = np.where(den > 0, float(vw), 0.0)
        for v, m in means.items():
            ok = np.isfinite(m) & (m >= 0) & (wk > 0)
            var_sum[v][ok] += m[ok] * wk[ok] * wk[ok]
            var_wt[v][ok] += wk[ok]
    with np.errstate(invalid="ignore", divide="ignore"):
        sci = np.where(den_all > 0, num_all[0] / np.where(den_all > 0, den_all, 1.0), fillval)
        scale = 1.0 / float(pixel_scale_ratio) ** 2
        out_vars = {v: np.where(var_wt[v] > 0, var_sum[v] * scale / var_wt[v] / var_wt[v],
                                np.nan).astype(np.float32) for v in var_names}
    return DrizzleResult(sci.astype(np.float32), den_all.astype(np.float32), con, out_vars)


def blot(
    mosaic: np.ndarray,
    mosaic_wcs: Any,
    target_wcs: Any,
    target_shape: Sequence[int],
    fillval: float = float("nan"),
) -> np.ndarray:
    """Interpolate ``mosaic`` onto the pixel grid of ``target_wcs`` (bilinear, NaN-aware).

    Not flux conserving (a resampling of surface brightness); target pixels outside the mosaic
    or surrounded by NaN get ``fillval``.
    """
    ny, nx = int(target_shape[0]), int(target_shape[1])
    img = np.asarray(mosaic, dtype=np.float64)
    if img.ndim != 2:
        raise ResampleError(f"blot needs a 2-D mosaic, got shape {img.shape}")
    out = np.empty((ny, nx), dtype=np.float64)
    if ny == 0 or nx == 0 or img.size == 0:
        out[...] = fillval
        return out.astype(np.float32)
    xs = np.arange(nx, dtype=np.float64)
    for r0, r1 in _chunks(ny):
        gx, gy = np.meshgrid(xs, np.arange(r0, r1, dtype=np.float64))
        mx, my = _to_output(target_wcs, mosaic_wcs, gx, gy)
        _bilinear(img, mx, my, float(fillval), out[r0:r1])
    return out.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Output grids
# --------------------------------------------------------------------------------------------

def footprint(w: Any, shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) of the outer edges of an image (its pixel-corner boundary, 4*(n+m) points)."""
    ny, nx = int(shape[0]), int(shape[1])
    xs = np.arange(nx + 1) - 0.5
    ys = np.arange(ny + 1) - 0.5
    bx = np.concatenate([xs, np.full(ny + 1, nx - 0.5), xs[::-1], np.full(ny + 1, -0.5)])
    by = np.concatenate([np.full(nx + 1, -0.5), ys, np.full(nx + 1, ny - 0.5), ys[::-1]])
    ra, dec = w.forward_transform(bx, by)
    return np.asarray(ra), np.asarray(dec)


def _local_frame(w: Any, shape: Sequence[int]) -> tuple[float, float, float, float]:
    """(ra, dec, pixel scale arcsec, PA of +y deg) at an image's centre."""
    ny, nx = int(shape[0]), int(shape[1])
    cx, cy = (nx - 1) / 2.0, (ny - 1) / 2.0
    ra0, dec0 = w.forward_transform(cx, cy)
    probe = W.tangent_plane_wcs(float(ra0), float(dec0), 1.0, (1, 1), 0.0, crpix=(0.0, 0.0))
    xs = np.array([cx + 0.5, cx - 0.5, cx, cx])
    ys = np.array([cy, cy, cy + 0.5, cy - 0.5])
    ra, dec = w.forward_transform(xs, ys)
    # arcsec offsets in the tangent plane: +x of the probe is west, so east = -x
    px, py = probe.backward_transform(ra, dec)
    e, n = -np.asarray(px), np.asarray(py)
    dxe, dxn = e[0] - e[1], n[0] - n[1]
    dye, dyn = e[2] - e[3], n[2] - n[3]
    area = abs(dxe * dyn - dxn * dye)
    return float(ra0), float(dec0), math.sqrt(area), math.degrees(math.atan2(dye, dyn))


def pixel_scale_arcsec(w: Any, shape: Sequence[int]) -> float:
    """The mean linear pixel scale (arcsec) at an image's centre."""
    return _local_frame(w, shape)[2]


def mosaic_grid(
    wcs_list: Sequence[Any],
    shapes: Sequence[Sequence[int]],
    pixel_scale: float | None = None,
    pixel_scale_ratio: float = 1.0,
    rotation: float | None = None,
    crval: Sequence[float] | None = None,
    output_shape: Sequence[int] | None = None,
    crpix: Sequence[float] | None = None,
) -> dict[str, Any]:
    """A tangent-plane grid covering all inputs; returns ``wcs.tangent_plane_meta`` entries.

    Defaults as JWST resample: pixel scale = first input's scale * ``pixel_scale_ratio`` (unless
    ``pixel_scale`` in arcsec), rotation = first input's +y position angle, centre = the middle
    of the combined footprint; ``output_shape`` is (nx, ny) as JWST's parameter.
    """
    if not wcs_list or len(wcs_list) != len(shapes):
        raise ResampleError("mosaic_grid needs one shape per WCS and at least one WCS")
    ra0, dec0, scale0, pa0 = _local_frame(wcs_list[0], shapes[0])
    scale = float(pixel_scale) if pixel_scale else scale0 * float(pixel_scale_ratio)
    if not scale > 0:
        raise ResampleError(f"output pixel scale must be positive, got {scale}")
    rot = pa0 if rotation is None else float(rotation)
    ras, decs = zip(*(footprint(w, s) for w, s in zip(wcs_list, shapes)))
    ra_all, dec_all = np.concatenate(ras), np.concatenate(decs)
    if crval is None:
        vec = np.stack([np.cos(np.radians(dec_all)) * np.cos(np.radians(ra_all)),
                        np.cos(np.radians(dec_all)) * np.sin(np.radians(ra_all)),
                        np.sin(np.radians(dec_all))]).mean(axis=1)
        cra = math.degrees(math.atan2(vec[1], vec[0])) % 360.0
        cdec = math.degrees(math.atan2(vec[2], math.hypot(vec[0], vec[1])))
    else:
        cra, cdec = float(crval[0]), float(crval[1])
    probe = W.tangent_plane_wcs(cra, cdec, scale, (1, 1), rot, crpix=(0.0, 0.0))
    px, py = probe.backward_transform(ra_all, dec_all)
    if output_shape is not None:
        nx, ny = int(output_shape[0]), int(output_shape[1])
        cp = ((nx - 1) / 2.0, (ny - 1) / 2.0) if crpix is None else tuple(map(float, crpix))
    else:
        xmin, xmax = float(np.min(px)), float(np.max(px))
        ymin, ymax = float(np.min(py)), float(np.max(py))
        nx = max(1, int(math.ceil(xmax - xmin - 1e-9)))
        ny = max(1, int(math.ceil(ymax - ymin - 1e-9)))
        cp = (-xmin - 0.5, -ymin - 0.5) if crpix is None else tuple(map(float, crpix))
    return W.tangent_plane_meta(cra, cdec, scale, (ny, nx), rot, crpix=cp)


# --------------------------------------------------------------------------------------------
# Products
# --------------------------------------------------------------------------------------------

_BAD_FOR_RESAMPLE = 1 | (1 << 9)  # DO_NOT_USE | NON_SCIENCE: JWST's good_bits "~DO_NOT_USE+NON_SCIENCE"
VARIANCES = ("var_rnoise", "var_poisson", "var_flat")


def exposure_time(model: Any) -> float:
    """JWST's tmeasure: ``exposure.measurement_time``, else ``exposure.exposure_time``."""
    t = model.get("exposure.measurement_time")
    if t is None:
        t = model.get("exposure.exposure_time")
    if t is None or not float(t) > 0:
        raise ResampleError("weight_type='exptime' needs a positive exposure.measurement_time or "
                            "exposure.exposure_time")
    return float(t)


def weight_map(model: Any, weight_type: str | None = "ivm") -> np.ndarray:
    """The drizzle weight of a cal image: 1/var_rnoise (ivm), exposure time, or 1, times the DQ
    mask (0 where DO_NOT_USE or NON_SCIENCE), as stcal's ``build_driz_weight``."""
    data = np.asarray(model["data"])
    good = np.ones(data.shape, bool)
    if "dq" in model.arrays:
        good = (np.asarray(model["dq"]).astype(np.int64) & _BAD_FOR_RESAMPLE) == 0
    if weight_type == "ivm":
        if "var_rnoise" in model.arrays:
            with np.errstate(divide="ignore", invalid="ignore"):
                w = 1.0 / np.asarray(model["var_rnoise"], np.float64)
            w[~np.isfinite(w)] = 0.0
        else:
            w = np.ones(data.shape)
    elif weight_type == "exptime":
        w = np.full(data.shape, exposure_time(model))
    elif weight_type is None:
        w = np.ones(data.shape)
    else:
        raise ResampleError(f"unknown weight_type {weight_type!r}; use 'ivm', 'exptime' or None")
    return (w * good).astype(np.float32)


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
) -> Any:
    """Drizzle cal DataModels (each with ``wcs.*`` meta) into one ``i2d`` DataModel.

    Arrays: data, err (sqrt of the summed drizzled variances), wht, con (int32 planes),
    var_rnoise/var_poisson/var_flat. Meta: the first input's, the output tangent-plane WCS
    (``wcs.kind/tangent_plane``), ``resample.*``, the output pixel area, ``cal_step.resample``.
    ``output_grid`` (``wcs.tangent_plane_meta`` entries) overrides the grid parameters.
    """
    prep = resample_inputs(models, weight_type=weight_type, output_shape=output_shape,
                           crpix=crpix, crval=crval, rotation=rotation,
                           pixel_scale_ratio=pixel_scale_ratio, pixel_scale=pixel_scale,
                           output_grid=output_grid)
    r = drizzle_images(prep.images, prep.out_wcs, prep.out_shape, pixfrac=pixfrac,
                       kernel=kernel, fillval=fillval, var_weights=prep.var_weights,
                       pixel_scale_ratio=prep.ratio)
    return i2d_model(models, prep, r, pixfrac=pixfrac, kernel=kernel, fillval=fillval,
                     weight_type=weight_type)


@dataclass(frozen=True)
class ResampleInputs:
    """What ``resample_models`` drizzles: the output grid (``wcs.tangent_plane_meta`` entries),
    its WCS and shape, the ``(data, weight, wcs, variances)`` images, their variance weights
    and the output / input pixel scale ratio."""

    grid: dict[str, Any]
    out_wcs: Any
    out_shape: tuple[int, int]
    images: list[tuple[Any, np.ndarray, Any, dict[str, Any] | None]]
    var_weights: list[str | float]
    ratio: float


def resample_inputs(
    models: Sequence[Any],
    weight_type: str | None = "ivm",
    output_shape: Sequence[int] | None = None,
    crpix: Sequence[float] | None = None,
    crval: Sequence[float] | None = None,
    rotation: float | None = None,
    pixel_scale_ratio: float = 1.0,
    pixel_scale: float | None = None,
    output_grid: Mapping[str, Any] | None = None,
) -> ResampleInputs:
    """The output grid, weights and variances of cal DataModels (first half of
    ``resample_models``)."""
    if not models:
        raise ResampleError("resample needs at least one input image")
    wcss, shapes = [], []
    for m in models:
        if "data" not in m.arrays or np.ndim(m["data"]) != 2:
            raise ResampleError(f"resample needs 2-D images, got {m!r}")
        wcss.append(W.wcs_of(m))
        shapes.append(tuple(np.shape(m["data"])))
    grid = dict(output_grid) if output_grid else mosaic_grid(
        wcss, shapes, pixel_scale=pixel_scale, pixel_scale_ratio=pixel_scale_ratio,
        rotation=rotation, crval=crval, output_shape=output_shape, crpix=crpix)
    out_wcs = W.wcs_of(grid)
    oshape = tuple(grid["wcs.tangent_plane"]["shape"])
    images = []
    vw: list[str | float] = []
    for m, w in zip(models, wcss):
        variances = {v: m[v] for v in VARIANCES if v in m.arrays}
        images.append((m["data"], weight_map(m, weight_type), w, variances or None))
        vw.append("ivm" if weight_type == "ivm" else (exposure_time(m)
                                                       if weight_type == "exptime" else 1.0))
    # JWST scales variances by 1/pixel_scale_ratio**2 (output / input linear pixel size)
    in_scale = pixel_scale_arcsec(wcss[0], shapes[0])
    ratio = grid["wcs.tangent_plane"]["pixel_scale_arcsec"] / in_scale
    return ResampleInputs(grid, out_wcs, oshape, images, vw, ratio)


def i2d_model(models: Sequence[Any], prep: ResampleInputs, r: DrizzleResult, pixfrac: float,
              kernel: str, fillval: float, weight_type: str | None) -> Any:
    """The i2d DataModel of a drizzle result (``resample_models``'s second half)."""
    from transforms.model import DataModel

    grid, ratio = prep.grid, prep.ratio
    arrays: dict[str, np.ndarray] = {"data": r.sci, "wht": r.wht, "con": r.con}
    if r.variances:
        with np.errstate(invalid="ignore"):
            stack = np.stack([r.variances[v] for v in r.variances])
            allnan = np.all(np.isnan(stack), axis=0)
            err = np.sqrt(np.nansum(stack, axis=0))
        arrays["err"] = np.where(allnan, np.float32(np.nan), err).astype(np.float32)
        arrays.update(r.variances)
    scale = float(grid["wcs.tangent_plane"]["pixel_scale_arcsec"])
    meta = {k: v for k, v in models[0].meta.items()
            if not k.startswith(("wcs.", "subarray.")) and k != "wcsinfo.s_region"}
    meta.update(grid)
    meta.update({
        "resample.pixfrac": float(pixfrac),
        "resample.kernel": kernel,
        "resample.fillval": "NAN" if np.isnan(fillval) else float(fillval),
        "resample.weight_type": weight_type,
        "resample.pixel_scale_ratio": float(ratio),
        "resample.ninputs": len(models),
        "photometry.pixelarea_arcsecsq": scale * scale,
        "photometry.pixelarea_steradians": (scale * math.pi / 180.0 / 3600.0) ** 2,
        "cal_step.resample": "COMPLETE",
    })
    return DataModel("i2d", arrays, meta)
