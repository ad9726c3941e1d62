"""resample_spec: rectify 2-D spectra onto a (wavelength, along-slit sky offset) grid -> s2d.

As jwst 3.0's ResampleSpecStep (drizzle, ``square`` kernel, ``pixfrac``, ivm weights, good
bits ``~DO_NOT_USE+NON_SCIENCE``), with the output grid built as its NIRSpec branch builds it:

- **dispersion axis**: a table of wavelengths, the per-column median wavelengths of the
  reference input merged with the other inputs' (jwst's
  ``_find_nirspec_output_sampling_wavelengths``: ranges joined in order of overlap, points
  closer than a tenth of the smallest spacing dropped). Dispersion stays along the input's
  axis (x for NIRSpec, y for MIRI LRS, whose table runs the way the detector does).
- **spatial axis**: the offset along the slit on the sky, in the tangent plane about the
  reference slit's centre, sampled at the input's spatial scale / ``pixel_scale_ratio`` (or
  ``pixel_scale`` arcsec), sized to cover every input and centred. Exposures of one source
  taken at different dither/nod positions therefore land on the same output rows (stage 3).
  Without a sky WCS the spatial coordinate is the cross-dispersion pixel index.
- **pixel map**: every input pixel centre is mapped to output (u, v) from its wavelength and
  sky position; the drop's corners are interpolated from the neighbouring centres (as
  drizzle's pixel map is), and the shared ``transforms.resample`` kernel computes exact
  overlaps. Output = weighted mean of the inputs (weights ``1/var_rnoise`` or exposure time);
  variances are drizzled and combined as jwst's ``from_var`` (``sum(w^2 var) / (sum w)^2``),
  ``err = sqrt(var_poisson + var_rnoise + var_flat)``.

Flux conservation: a surface brightness (MJy/sr) is conserved by the weighted mean. A per-pixel
flux density (``MJy``, NIRSpec point sources) is a density in wavelength but a sum across the
slit: each input value is divided by its pixel's spatial extent in output rows
(``|det J| / |du/dx|``, J the pixel map's Jacobian) before averaging, so the sum over output
rows at each wavelength equals the input's at any ``pixel_scale_ratio``. Counts (``DN/s``) are
extensive in both axes and are divided by ``|det J|``. (jwst averages all units alike; at the
default ratio 1 the two agree to the pixel-scale variation across the slit.)

DQ: output pixels no input reached are NaN with DO_NOT_USE | NON_SCIENCE; ``propagate_dq``
ORs the flags of the input pixels whose centres fall in each output pixel.

Stage 2 (one exposure): every slit is rectified alone, the s2d keeps the slit names. Stage 3
(a tuple of exposures): slits are grouped by source (``source_id``, as jwst's
``multislit_to_container``) and each source becomes one s2d slit named by its source key
(``s00001``), covering every exposure and slit of it (NIRSpec S200A1 + S200A2 data of the
primary target share source 1 and are combined into one grid covering both ranges).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from transforms import dq as DQ
from transforms import spectral as S
from transforms.model import DataModel
from transforms.registry import register
from transforms.resample import _drizzle_point, _drizzle_square

GOOD_BITS = "~DO_NOT_USE+NON_SCIENCE"
_BAD = np.uint32(DQ.DO_NOT_USE | DQ.PIXEL["NON_SCIENCE"])


class ResampleSpecError(ValueError):
    """Bad resample_spec parameters or inputs."""


@dataclass(frozen=True)
class ResampleSpecParams:
    """jwst 3.0 ResampleSpecStep parameters (spec defaults)."""

    pixfrac: float = 1.0
    kernel: str = "square"
    fillval: str = "NAN"
    weight_type: str | None = "ivm"
    output_shape: tuple[int, int] | None = None  # [x, y] order, as jwst
    pixel_scale_ratio: float = 1.0
    pixel_scale: float | None = None  # arcsec
    output_wcs: str = ""
    single: bool = False
    blendheaders: bool = True
    in_memory: bool = True
    propagate_dq: bool = False


def _check(p: ResampleSpecParams) -> float:
    if p.kernel not in ("square", "point"):
        raise ResampleSpecError(f"resample_spec kernel must be 'square' or 'point', got "
                                f"{p.kernel!r}")
    if not 0.0 < p.pixfrac <= 1.0:
        raise ResampleSpecError(f"pixfrac must be in (0, 1], got {p.pixfrac}")
    if p.weight_type not in ("ivm", "exptime", None):
        raise ResampleSpecError(f"weight_type must be 'ivm', 'exptime' or None, got "
                                f"{p.weight_type!r}")
    if p.output_wcs:
        raise ResampleSpecError("resample_spec output_wcs (a custom WCS file) is not supported; "
                                "leave it empty")
    if not p.pixel_scale_ratio > 0:
        raise ResampleSpecError(f"pixel_scale_ratio must be > 0, got {p.pixel_scale_ratio}")
    if p.pixel_scale is not None and not p.pixel_scale > 0:
        raise ResampleSpecError(f"pixel_scale must be > 0 arcsec, got {p.pixel_scale}")
    if p.output_shape is not None and (len(p.output_shape) != 2 or min(p.output_shape) < 1):
        raise ResampleSpecError(f"output_shape must be [nx, ny] >= 1, got {p.output_shape}")
    try:
        return float(p.fillval)
    except ValueError:
        if str(p.fillval).upper() in ("NAN", "INDEF"):
            return float("nan")
        raise ResampleSpecError(f"fillval must be a number or 'NAN', got {p.fillval!r}") from None


# --------------------------------------------------------------------------------------------
# Inputs in the dispersion-along-x frame
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Piece:
    """One input slit, transposed so the dispersion runs along axis 1."""

    slit: S.Slit
    meta: Mapping[str, Any]  # the product's top-level meta
    data: np.ndarray
    dq: np.ndarray
    variances: dict[str, np.ndarray]
    wavelength: np.ndarray
    ra: np.ndarray | None
    dec: np.ndarray | None
    slit_y: np.ndarray | None
    transposed: bool

    @property
    def good(self) -> np.ndarray:
        return (np.isfinite(self.data) & np.isfinite(self.wavelength)
                & ((self.dq & _BAD) == 0))


def piece(slit: S.Slit, meta: Mapping[str, Any]) -> Piece:
    """A slit and its geometry, transposed when its dispersion is vertical."""
    g = S.geometry(slit, meta)
    t = slit.dispaxis == S.VERTICAL

    def tr(a):
        if a is None:
            return None
        a = np.asarray(a)
        return np.ascontiguousarray(a.T) if t else a

    shape = slit.shape
    data = np.asarray(slit.arrays["data"], np.float32)
    dq = np.asarray(slit.arrays.get("dq", np.zeros(shape, np.uint32)), np.uint32)
    var = {v: tr(np.asarray(slit.arrays[v], np.float32)) for v in S.VARIANCES
           if v in slit.arrays}
    return Piece(slit, meta, tr(data), tr(dq), var, tr(g.wavelength), tr(g.ra), tr(g.dec),
                 tr(g.slit_y), t)


def _weight(p: Piece, weight_type: str | None) -> np.ndarray:
    good = p.good
    if weight_type == "ivm" and "var_rnoise" in p.variances:
        v = p.variances["var_rnoise"]
        ok = good & np.isfinite(v) & (v > 0)
        w = np.zeros(v.shape, np.float32)
        w[ok] = 1.0 / v[ok]
        return w
    if weight_type == "exptime":
        t = float(p.meta.get("exposure.measurement_time") or p.meta.get("exposure.exposure_time")
                  or 1.0)
        return good.astype(np.float32) * np.float32(t)
    return good.astype(np.float32)


# --------------------------------------------------------------------------------------------
# The output grid
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SpecGrid:
    """A rectified output grid (dispersion along axis 1 of the working frame)."""

    table: np.ndarray  # output wavelength per dispersion element, output order
    flip: bool  # table decreases (MIRI LRS keeps the detector's direction)
    sky: bool
    ra0: float
    dec0: float
    pa: float  # deg, direction of increasing s on the sky (E of N)
    s0: float  # arcsec (or pixels without sky) at spatial index 0
    ds: float
    nspatial: int
    slit_y0: float | None
    dslit_y: float | None
    disp_axis: int  # of the products (1 horizontal, 2 vertical)
    scale_in: float  # input spatial scale (arcsec or pixels per input row)

    @property
    def shape(self) -> tuple[int, int]:  # working frame (spatial, dispersion)
        return (self.nspatial, int(self.table.size))

    def params(self) -> dict[str, Any]:
        """The ``wcs`` parameters of an s2d slit on this grid (JSON)."""
        out: dict[str, Any] = {"model": S.S2D, "disp_axis": self.disp_axis,
                               "s0": float(self.s0), "ds": float(self.ds),
                               "nspatial": int(self.nspatial)}
        if self.sky:
            out.update(ra0=float(self.ra0), dec0=float(self.dec0), pa=float(self.pa))
        else:
            out.update(ra0=0.0, dec0=0.0, pa=0.0, sky=False)
        if self.slit_y0 is not None:
            out.update(slit_y0=float(self.slit_y0), dslit_y=float(self.dslit_y))
        return out

    def u_of(self, lam: np.ndarray) -> np.ndarray:
        """Output dispersion coordinate of wavelengths (linear in the table, extrapolated)."""
        t = self.table[::-1] if self.flip else self.table
        n = t.size
        idx = np.arange(n, dtype=np.float64)
        lam = np.asarray(lam, np.float64)
        if n == 1:
            u = np.zeros_like(lam)
        else:
            u = np.interp(lam, t, idx)
            lo, hi = lam < t[0], lam > t[-1]
            u[lo] = (lam[lo] - t[0]) / (t[1] - t[0])
            u[hi] = n - 1 + (lam[hi] - t[-1]) / (t[-1] - t[-2])
        u[~np.isfinite(lam)] = np.nan
        return (n - 1) - u if self.flip else u

    def s_of(self, p: Piece) -> np.ndarray:
        """Spatial coordinate (arcsec along the slit, or pixels) of every pixel of ``p``."""
        if not self.sky:
            return np.broadcast_to(np.arange(p.data.shape[0], dtype=np.float64)[:, None],
                                   p.data.shape).copy()
        xi, eta = S.sky_to_tan(p.ra, p.dec, self.ra0, self.dec0)
        a = math.radians(self.pa)
        return xi * math.sin(a) + eta * math.cos(a)

    def v_of(self, s: np.ndarray) -> np.ndarray:
        return (np.asarray(s, np.float64) - self.s0) / self.ds


def _median_columns(lam: np.ndarray) -> list[float]:
    cols = np.any(np.isfinite(lam), axis=0)
    if not cols.any():
        return []
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(lam[:, cols], axis=0)
    return sorted(float(v) for v in med)


def merge_wavelengths(tables: Sequence[list[float]]) -> list[float]:
    """jwst's ``_find_nirspec_output_sampling_wavelengths`` on per-input sorted tables: the
    first is the reference; the others are merged in order of best overlap, keeping only
    their parts outside the covered range; points closer than 0.1 of the smallest spacing
    are dropped."""
    tables = [t for t in tables if t]
    if not tables:
        return []
    ref = list(tables[0])
    lam1, lam2 = ref[0], ref[-1]
    min_delta = abs(np.ediff1d(ref).min()) if len(ref) > 1 else np.inf
    rest = [(t, min(t), max(t)) for t in tables[1:]]
    while rest:
        best, best_k = -np.inf, 0
        for k, (_, lmin, lmax) in enumerate(rest):
            ov = min(lam2, lmax) - max(lam1, lmin)
            if best < ov:
                best, best_k = ov, k
        lam, lmin, lmax = rest.pop(best_k)
        if lmax < lam1:
            ref = list(lam) + ref
            lam1 = lmin
        elif lmin > lam2:
            ref.extend(lam)
            lam2 = lmax
        else:
            arr = np.asarray(lam)
            if lmin < lam1:
                ref = arr[arr < lam1].tolist() + ref
                lam1 = ref[0]
            if lmax > lam2:
                ref = ref + arr[arr > lam2].tolist()
                lam2 = ref[-1]
    if len(ref) > 1:
        ed = np.abs(np.ediff1d(ref))
        tol = max(0.1 * (min_delta if np.isfinite(min_delta) else 0.0), 1e2 * np.finfo(1.0).eps)
        for i in np.flatnonzero(ed < tol)[::-1]:
            del ref[i]
    return ref


def _reference(pieces: Sequence[Piece]) -> int:
    """jwst: the first input with more than 100 good, non-zero pixels (else the first)."""
    for k, p in enumerate(pieces):
        if int(np.count_nonzero(p.good & (p.data != 0))) > 100:
            return k
    return 0


def build_grid(pieces: Sequence[Piece], params: ResampleSpecParams,
               spatial: list | None = None, *, slit_only: bool = False) -> SpecGrid:
    """The output grid covering every input (see the module docstring). ``spatial``, when
    given (an empty list), receives each piece's spatial coordinate (``SpecGrid.s_of``) for
    ``drizzle`` to reuse. ``slit_only`` (resample_spec 1.1): the reference column, the
    tangent point, the slit direction and scale and the slit-y fit use only the pixels that
    also have a finite wavelength (the slit's), not every pixel with a sky position (1.0; a
    MIRI LRS cal has sky positions on the whole imager)."""
    if not pieces:
        raise ResampleSpecError("resample_spec needs at least one slit")
    k = _reference(pieces)
    ref = pieces[k]
    order = [ref] + [p for i, p in enumerate(pieces) if i != k]
    table = merge_wavelengths([_median_columns(p.wavelength) for p in order])
    if not table:
        raise ResampleSpecError(f"slit {ref.slit.name} has no finite wavelengths to resample")
    # does the wavelength decrease along the reference's dispersion index?
    lam_c = S.column_reduce(np.nanmedian,
                            np.where(np.isfinite(ref.wavelength), ref.wavelength, np.nan)) \
        if np.isfinite(ref.wavelength).any() else np.zeros(1)
    fin = np.flatnonzero(np.isfinite(lam_c))
    flip = bool(fin.size > 1 and lam_c[fin[-1]] < lam_c[fin[0]])
    table_arr = np.asarray(table, np.float64)
    if flip:
        table_arr = table_arr[::-1].copy()
    disp_axis = S.VERTICAL if ref.transposed else S.HORIZONTAL
    sky = all(p.ra is not None for p in pieces)
    ny, nx = ref.data.shape
    col = nx // 2
    rows = np.arange(ny, dtype=np.float64)
    inslit = np.isfinite(ref.wavelength) if slit_only else np.ones(ref.data.shape, bool)
    if sky:
        okc = np.isfinite(ref.ra[:, col]) & np.isfinite(ref.dec[:, col]) & inslit[:, col]
        if okc.sum() < 2 and slit_only:  # off the slit: the middle of the slit's columns
            n_ok = np.sum(np.isfinite(ref.ra) & np.isfinite(ref.dec) & inslit, axis=0)
            cols = np.flatnonzero(n_ok >= 2)
            if cols.size:
                col = int(cols[cols.size // 2])
            okc = np.isfinite(ref.ra[:, col]) & np.isfinite(ref.dec[:, col]) & inslit[:, col]
        elif okc.sum() < 2:  # the middle column is off the slit: use the best-covered one
            col = int(np.argmax(np.sum(np.isfinite(ref.ra), axis=0)))
            okc = np.isfinite(ref.ra[:, col]) & np.isfinite(ref.dec[:, col])
        if okc.sum() < 2:
            raise ResampleSpecError(f"slit {ref.slit.name}: its WCS gives no sky positions")
        ra0 = float(np.mean(ref.ra[okc, col]))
        dec0 = float(np.mean(ref.dec[okc, col]))
        xi, eta = S.sky_to_tan(ref.ra[okc, col], ref.dec[okc, col], ra0, dec0)
        ax = np.polyfit(rows[okc], xi, 1)[0]
        ay = np.polyfit(rows[okc], eta, 1)[0]
        scale_in = math.hypot(ax, ay)
        if not scale_in > 0:
            raise ResampleSpecError(f"slit {ref.slit.name}: its WCS has no spatial extent")
        pa = math.degrees(math.atan2(ax, ay))
    else:
        ra0 = dec0 = pa = 0.0
        scale_in = 1.0
    if params.pixel_scale is not None and sky:
        ds = float(params.pixel_scale)
    else:
        ds = scale_in / float(params.pixel_scale_ratio)
    g0 = SpecGrid(table_arr, flip, sky, ra0, dec0, pa, 0.0, ds, 1, None, None, disp_axis,
                  scale_in)
    smin, smax = np.inf, -np.inf
    s_all = [g0.s_of(p) for p in pieces]
    if spatial is not None:
        spatial.extend(s_all)
    for p, s in zip(pieces, s_all):
        ok = np.isfinite(s) & np.isfinite(p.wavelength)
        if ok.any():
            smin = min(smin, float(s[ok].min()))
            smax = max(smax, float(s[ok].max()))
    if not np.isfinite(smin):
        raise ResampleSpecError(f"slit {ref.slit.name}: no pixel has a wavelength and position")
    nsp = int(math.ceil((smax - smin) / ds)) + 1
    if params.output_shape is not None:
        nsp = int(params.output_shape[0 if disp_axis == S.VERTICAL else 1])
    s0 = 0.5 * (smin + smax) - 0.5 * (nsp - 1) * ds
    slit_y0 = dslit_y = None
    if ref.slit_y is not None:
        s_ref = s_all[k][:, col]
        ok = np.isfinite(s_ref) & np.isfinite(ref.slit_y[:, col]) & inslit[:, col]
        if ok.sum() >= 2:
            v = (s_ref[ok] - s0) / ds
            dslit_y, slit_y0 = (float(c) for c in np.polyfit(v, ref.slit_y[ok, col], 1))
    return SpecGrid(table_arr, flip, sky, ra0, dec0, pa, s0, ds, nsp, slit_y0, dslit_y,
                    disp_axis, scale_in)


# --------------------------------------------------------------------------------------------
# Pixel maps and drizzling
# --------------------------------------------------------------------------------------------

@njit(nogil=True, cache=True)
def _fill_columns(a):
    """Fill NaNs of each column of ``a`` (in place) by linear inter/extrapolation from the
    finite values of that column (a column with < 2 finite values is filled with its one
    value, or left NaN)."""
    ny, nx = a.shape
    for i in range(nx):
        first = -1
        last = -1
        for j in range(ny):
            if math.isfinite(a[j, i]):
                if first < 0:
                    first = j
                last = j
        if first < 0:
            continue
        if first == last:
            for j in range(ny):
                a[j, i] = a[first, i]
            continue
        # interior gaps
        prev = first
        for j in range(first + 1, last + 1):
            if math.isfinite(a[j, i]):
                if j - prev > 1:
                    for q in range(prev + 1, j):
                        f = (q - prev) / (j - prev)
                        a[q, i] = a[prev, i] + f * (a[j, i] - a[prev, i])
                prev = j
        # ends: extrapolate with the slope of the two outermost finite values
        j2 = first + 1
        while j2 <= last and not math.isfinite(a[j2, i]):
            j2 += 1
        slope = a[j2, i] - a[first, i]
        for j in range(first):
            a[j, i] = a[first, i] - (first - j) * slope
        j2 = last - 1
        while j2 >= first and not math.isfinite(a[j2, i]):
            j2 -= 1
        slope = a[last, i] - a[j2, i]
        for j in range(last + 1, ny):
            a[j, i] = a[last, i] + (j - last) * slope


def _fill(a: np.ndarray) -> np.ndarray:
    """NaN-free copy of a pixel-map coordinate: gaps filled along columns, then rows."""
    out = np.array(a, dtype=np.float64, copy=True)
    if out.size == 0:
        return out
    _fill_columns(out)
    t = np.ascontiguousarray(out.T)
    _fill_columns(t)
    return np.ascontiguousarray(t.T)


def _corners(c: np.ndarray) -> np.ndarray:
    """Values at pixel corners (ny+1, nx+1) interpolated from values at centres (ny, nx):
    the mean of the four surrounding centres, the grid extended linearly at the edges."""
    ny, nx = c.shape
    e = np.empty((ny + 2, nx + 2))
    e[1:-1, 1:-1] = c
    if ny > 1:
        e[0, 1:-1] = 2 * c[0] - c[1]
        e[-1, 1:-1] = 2 * c[-1] - c[-2]
    else:
        e[0, 1:-1] = e[-1, 1:-1] = c[0]
    if nx > 1:
        e[:, 0] = 2 * e[:, 1] - e[:, 2]
        e[:, -1] = 2 * e[:, -2] - e[:, -3]
    else:
        e[:, 0] = e[:, -1] = e[:, 1]
    return 0.25 * (e[:-1, :-1] + e[1:, :-1] + e[:-1, 1:] + e[1:, 1:])


def pixmap(grid: SpecGrid, p: Piece, s: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Output (u, v) of every input pixel centre (NaN where the pixel has no wavelength or
    position); ``s``: the piece's spatial coordinate if already known."""
    u = grid.u_of(p.wavelength)
    v = grid.v_of(grid.s_of(p) if s is None else s)
    bad = ~(np.isfinite(u) & np.isfinite(v))
    u[bad] = np.nan
    v[bad] = np.nan
    return u, v


def _unit_scale(unit: str, u: np.ndarray, v: np.ndarray) -> np.ndarray | None:
    """Per-pixel factor turning an extensive per-pixel quantity into one per output pixel
    (None for surface brightness); u, v NaN-free."""
    unit = str(unit or "").replace(" ", "").lower()
    if not unit or "/sr" in unit or "sr-1" in unit or "arcsec" in unit:
        return None
    if unit not in ("mjy", "jy", "ujy", "dn/s", "dn/sec", "electrons/s", "dn"):
        return None
    uy, ux = np.gradient(u) if min(u.shape) > 1 else (np.zeros_like(u), np.ones_like(u))
    vy, vx = np.gradient(v) if min(v.shape) > 1 else (np.ones_like(v), np.zeros_like(v))
    det = np.abs(ux * vy - uy * vx)
    with np.errstate(divide="ignore", invalid="ignore"):
        if unit.endswith("jy"):
            g = np.abs(ux) / det
        else:
            g = 1.0 / det
    g[~np.isfinite(g)] = 0.0
    return g


def _unit(p: Piece) -> str:
    return str(p.slit.get("bunit_data") or p.meta.get("bunit_data") or "")


@dataclass
class Drizzled:
    """Accumulated output of one or more pieces on a grid (working frame)."""

    sci: np.ndarray
    wht: np.ndarray
    con: np.ndarray
    variances: dict[str, np.ndarray]
    dq: np.ndarray


@njit(nogil=True, cache=True)
def _or_dq(dq, good, u, v, out):
    """OR the DQ of good input pixels into the output pixel holding their centre."""
    ny, nx = dq.shape
    oy, ox = out.shape
    for j in range(ny):
        for i in range(nx):
            if not good[j, i]:
                continue
            uu = u[j, i]
            vv = v[j, i]
            if not (math.isfinite(uu) and math.isfinite(vv)):
                continue
            ii = int(math.floor(uu + 0.5))
            jj = int(math.floor(vv + 0.5))
            if 0 <= ii < ox and 0 <= jj < oy:
                out[jj, ii] |= dq[j, i]


def drizzle(grid: SpecGrid, pieces: Sequence[Piece], params: ResampleSpecParams,
            fillval: float, spatial: Sequence[np.ndarray] | None = None) -> Drizzled:
    """Drizzle ``pieces`` onto ``grid`` (one weighted mean), with variances as jwst's
    ``from_var``; ``spatial``: the pieces' spatial coordinates from ``build_grid``."""
    oy, ox = grid.shape
    n = len(pieces)
    num_all = np.zeros((oy, ox))
    den_all = np.zeros((oy, ox))
    con = np.zeros((max(1, (n + 31) // 32), oy, ox), dtype=np.int32)
    names = sorted({v for p in pieces for v in p.variances})
    var_sum = {v: np.zeros((oy, ox)) for v in names}
    var_wt = {v: np.zeros((oy, ox)) for v in names}
    dq_or = np.zeros((oy, ox), np.uint32)
    for k, p in enumerate(pieces):
        if p.data.size == 0:
            continue
        u, v = pixmap(grid, p, None if spatial is None else spatial[k])
        weight = _weight(p, params.weight_type)
        weight[~np.isfinite(u)] = 0.0
        uf, vf = _fill(u), _fill(v)
        if not np.isfinite(uf).all() or not np.isfinite(vf).all():
            weight[~(np.isfinite(uf) & np.isfinite(vf))] = 0.0
            uf = np.nan_to_num(uf)
            vf = np.nan_to_num(vf)
        g = _unit_scale(_unit(p), uf, vf)
        vnames = [x for x in names if x in p.variances]
        planes = [p.data] + [p.variances[x] for x in vnames]
        values = np.stack([np.asarray(a, np.float32) for a in planes])
        if g is not None:
            values = values * np.stack([g] + [g * g] * len(vnames)).astype(np.float32)
        num = np.zeros((len(planes), oy, ox))
        den = np.zeros((oy, ox))
        bit = np.int32(np.uint32(1 << (k % 32)).view(np.int32))
        if params.kernel == "square":
            _drizzle_square(values, weight, 0, _corners(uf), _corners(vf),
                            float(params.pixfrac), num, den, con[k // 32], bit)
        else:
            _drizzle_point(values, weight, 0, uf, vf, num, den, con[k // 32], bit)
        if params.propagate_dq:
            _or_dq(p.dq, weight > 0, u, v, dq_or)
        num_all += num[0]
        den_all += den
        if not vnames:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            means = {x: num[q + 1] / den for q, x in enumerate(vnames)}
        if params.weight_type == "ivm":
            rn = means.get("var_rnoise")
            wk = np.zeros((oy, ox))
            if rn is not None:
                ok = np.isfinite(rn) & (rn > 0)
                wk[ok] = 1.0 / rn[ok]
            else:
                wk[den > 0] = 1.0
        else:
            wk = np.where(den > 0, float(np.max(weight)) if weight.size else 1.0, 0.0)
        for x, mval in means.items():
            ok = np.isfinite(mval) & (mval >= 0) & (wk > 0)
            var_sum[x][ok] += mval[ok] * wk[ok] * wk[ok]
            var_wt[x][ok] += wk[ok]
    with np.errstate(invalid="ignore", divide="ignore"):
        sci = np.where(den_all > 0, num_all / np.where(den_all > 0, den_all, 1.0), fillval)
        out_vars = {x: np.where(var_wt[x] > 0, var_sum[x] / var_wt[x] / var_wt[x], np.nan
                                ).astype(np.float32) for x in names}
    nodata = den_all <= 0
    dq = dq_or
    dq[nodata] |= _BAD
    for x in out_vars.values():
        x[nodata] = np.nan
    return Drizzled(sci.astype(np.float32), den_all.astype(np.float32), con, out_vars, dq)


# --------------------------------------------------------------------------------------------
# Products
# --------------------------------------------------------------------------------------------

def _untranspose(a: np.ndarray, grid: SpecGrid) -> np.ndarray:
    return np.ascontiguousarray(a.T if grid.disp_axis == S.VERTICAL else a)


def rectified_slit(name: str, grid: SpecGrid, d: Drizzled, meta: Mapping[str, Any]) -> S.Slit:
    """The s2d slit of a drizzle result: arrays in the products' orientation."""
    lam = np.broadcast_to(grid.table[None, :], grid.shape).astype(np.float32)
    arrays = {"data": d.sci, "dq": d.dq, "wht": d.wht}
    err = None
    for v, a in d.variances.items():
        arrays[v] = a
        err = a.astype(np.float64) if err is None else err + a
    if err is not None:
        arrays["err"] = np.sqrt(err).astype(np.float32)
    arrays["wavelength"] = lam
    arrays = {k: _untranspose(v, grid) for k, v in arrays.items()}
    arrays["con"] = np.ascontiguousarray(
        np.transpose(d.con, (0, 2, 1)) if grid.disp_axis == S.VERTICAL else d.con)
    m = {k: v for k, v in meta.items() if k not in ("wcs",)}
    m["wcs"] = grid.params()
    m["dispersion_direction"] = grid.disp_axis
    return S.Slit(name, arrays, m)


def resample_group(slits_meta: Sequence[tuple[S.Slit, Mapping[str, Any]]], name: str,
                   params: ResampleSpecParams, meta: Mapping[str, Any] | None = None,
                   *, slit_only: bool = False) -> tuple[S.Slit, SpecGrid]:
    """Rectify several slits of one source onto one grid (one s2d slit named ``name``);
    ``slit_only`` as ``build_grid``'s."""
    fill = _check(params)
    pieces = [piece(s, m) for s, m in slits_meta]
    ref = pieces[_reference(pieces)]
    spatial: list = []
    grid = build_grid(pieces, params, spatial, slit_only=slit_only)
    d = drizzle(grid, pieces, params, fill, spatial)
    out_meta = dict(ref.slit.meta)
    out_meta.update(meta or {})
    return rectified_slit(name, grid, d, out_meta), grid


def _area(meta: Mapping[str, Any], params: ResampleSpecParams, grid: SpecGrid
          ) -> dict[str, Any]:
    """Output pixel area (jwst: nominal area / pixel_scale_ratio; one spatial dimension)."""
    area = meta.get("photometry.pixelarea_steradians")
    if area is None:
        return {}
    ratio = grid.scale_in / grid.ds if grid.sky else float(params.pixel_scale_ratio)
    sr = float(area) / ratio
    return {"photometry.pixelarea_steradians": sr,
            "photometry.pixelarea_arcsecsq": sr * (180.0 / math.pi * 3600.0) ** 2}


def _status(model: DataModel) -> dict[str, Any]:
    return {"cal_step.resample_spec": "COMPLETE"}


def _base(model: DataModel, own_wcs: bool) -> DataModel:
    """The product the s2d's top-level metadata comes from: ``model``, or (``own_wcs``,
    resample_spec 1.1) ``model`` without its input WCS parameters (``wcs.*``: a single
    spectral image's, e.g. a MIRI LRS cal's full-frame model), so that the s2d carries its
    grid's WCS (``with_slits`` keeps a base's ``wcs.*`` over the slit's ``wcs``)."""
    if not own_wcs or not any(k.startswith("wcs.") for k in model.meta):
        return model
    return DataModel(model.kind, {}, {k: v for k, v in model.meta.items()
                                      if not k.startswith("wcs.")})


def resample_exposure(model: DataModel, params: ResampleSpecParams, *,
                      slit_only: bool = False, own_wcs: bool = False) -> DataModel:
    """Stage 2: every slit of one exposure rectified alone; the s2d keeps the slit names
    (``slit_only`` as ``build_grid``'s, ``own_wcs`` as ``_base``'s)."""
    fill = _check(params)
    if not S.is_spectral_image(model):
        raise ResampleSpecError(f"resample_spec needs a 2-D spectral product (slits, or an "
                                f"image with a wavelength array); got {model!r}")
    out, area = [], {}
    for s in S.slits(model):
        if len(s.shape) != 2:
            raise ResampleSpecError(f"resample_spec: slit {s.name} has {len(s.shape)}-D data; "
                                    "3-D (rateints) spectra are not resampled, as in jwst")
        p = piece(s, model.meta)
        spatial: list = []
        grid = build_grid([p], params, spatial, slit_only=slit_only)
        d = drizzle(grid, [p], params, fill, spatial)
        out.append(rectified_slit(s.name, grid, d, s.meta))
        area = area or _area(model.meta, params, grid)
    return S.with_slits(_base(model, own_wcs), out, kind="s2d",
                        meta={**_status(model), **area})


def group_by_source(models: Sequence[DataModel]) -> list[tuple[str, list[tuple[S.Slit, DataModel]]]]:
    """Slits of several exposures grouped by source key, in order of first appearance
    (jwst's ``multislit_to_container``); single spectral images form one group."""
    groups: dict[str, list[tuple[S.Slit, DataModel]]] = {}
    for m in models:
        for s in S.slits(m):
            key = S.source_key(s) if S.is_multislit(m) else "target"
            groups.setdefault(key, []).append((s, m))
    return list(groups.items())


def slit_name_field(members: Sequence[tuple[S.Slit, DataModel]]) -> str:
    """jwst's ``_create_nrsfs_slit_name``: the slit names of a source, lower case, in order of
    first appearance, joined with '-' (``s200a1-s200a2``)."""
    names: list[str] = []
    for s, _ in members:
        n = str(s.get("name") or s.name).lower()
        if n not in names:
            names.append(n)
    return "-".join(names)


def resample_sources(models: Sequence[DataModel], params: ResampleSpecParams, *,
                     slit_only: bool = False, own_wcs: bool = False) -> DataModel:
    """Stage 3: one s2d slit per source, combining every exposure and slit of it
    (``slit_only`` as ``build_grid``'s, ``own_wcs`` as ``_base``'s)."""
    _check(params)
    models = tuple(models)
    if not models:
        raise ResampleSpecError("resample_spec needs at least one exposure")
    single = not S.is_multislit(models[0])
    out, area = [], {}
    for key, members in group_by_source(models):
        extra = {"product.source_id": key, "product.slit_name": slit_name_field(members),
                 "n_inputs": len(members)}
        s, grid = resample_group([(sl, m.meta) for sl, m in members], key, params, extra,
                                 slit_only=slit_only)
        out.append(s)
        area = area or _area(models[0].meta, params, grid)
    base = _base(models[0], own_wcs)
    return S.with_slits(base, out, kind="s2d", single=single,
                        meta={"cal_step.resample_spec": "COMPLETE", **area})


@dataclass(frozen=True)
class Resampler:
    """What one registered resample_spec version computes, for the steps that rectify on
    its grid (spec3's per-exposure extraction for combine_1d, outlier_detection's singles,
    master_background's background spectra): they take the planned version's ``Resampler``
    (``resampler(version)``) instead of calling one version's functions."""

    version: str
    slit_only: bool  # build_grid's
    own_wcs: bool  # _base's

    def build_grid(self, pieces: Sequence[Piece], params: ResampleSpecParams,
                   spatial: list | None = None) -> SpecGrid:
        return build_grid(pieces, params, spatial, slit_only=self.slit_only)

    def resample_exposure(self, model: DataModel, params: ResampleSpecParams) -> DataModel:
        return resample_exposure(model, params, slit_only=self.slit_only,
                                 own_wcs=self.own_wcs)

    def resample_sources(self, models: Sequence[DataModel], params: ResampleSpecParams
                         ) -> DataModel:
        return resample_sources(models, params, slit_only=self.slit_only,
                                own_wcs=self.own_wcs)


RESAMPLERS: dict[str, Resampler] = {"1.0": Resampler("1.0", slit_only=False, own_wcs=False)}


def resampler(version: str | None = None) -> Resampler:
    """The ``Resampler`` of resample_spec ``version`` (None: 1.0)."""
    v = "1.0" if version is None else str(version)
    if v not in RESAMPLERS:
        raise ResampleSpecError(f"resample_spec has no version {v!r}; it has: "
                                f"{', '.join(sorted(RESAMPLERS))}")
    return RESAMPLERS[v]


@register("resample_spec", "1.0", "spec2", ResampleSpecParams, (), keyword="S_RESAMP",
          exec_only=("in_memory", "blendheaders"), instruments=("NIRSPEC", "MIRI"))
def resample_spec(model, refs: dict, params: ResampleSpecParams) -> DataModel:
    """Rectify 2-D spectra onto a wavelength x slit-offset grid (s2d); a tuple of exposures
    (stage 3) gives one s2d slit per source."""
    if isinstance(model, DataModel):
        return resample_exposure(model, params)
    return resample_sources(tuple(model), params)
