"""Cube-aware comparison of two IFU cube products (s3d, JWST IFUCubeModel) for build diffs.

Pure: two ``DataModel``s in, a ``CubesDiff`` out. ``transforms.compare`` already compares the
SCI/ERR/DQ/WMAP arrays element by element; this says what an IFU scientist asks of a pair of
cubes, with the wavelength axis kept apart:

- cubes are paired by name (``transforms.ifu.cubes``: one for a single-cube product, each band
  of a multi-cube stage-3 product); unpaired ones are listed; cubes of different shapes are a
  structural change (``moved``, no plane statistics);
- **per wavelength plane**: the median ratio B / A over the spaxels finite and non-zero in
  both, the largest |B - A|, and the spaxels over the comparison tolerance
  (``|a - b| > atol + rtol |b|``, the ``CompareConfig`` of the diff, tolerance of ``data``);
  summarised as the median, range and the one farthest from 1 of the plane medians, the planes that moved (as index
  ranges) and the worst plane (largest |B - A|);
- **the worst spaxel**: the one whose spectrum changed most (largest sum over wavelength of
  |B - A|); its spectrum in A and B is kept for the report's overlay and ratio plot;
- **the collapsed image**: the mean over wavelength of A, of B and of B - A (planes finite in
  both), for a difference picture on the sky;
- NaN in one only, DO_NOT_USE gained or lost (spaxel-planes), the median ERR ratio;
- a cube **moved** when any element is over tolerance, NaN in one only, or the shapes or
  wavelength grids differ.

Pictures (``plot``) are kept only for cubes that moved, reduced to at most ``max_size`` spaxels
a side; ``KINDS`` names the product kinds compared this way (``catalogs.diff``'s table of
deep comparisons reads it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transforms import compare as cmp
from transforms import dq as DQ
from transforms import ifu as IFU
from transforms.model import DataModel

KINDS = ("s3d",)


@dataclass(frozen=True)
class CubePair:
    """One cube of A against its counterpart in B."""

    name: str
    shape_a: tuple[int, ...]
    shape_b: tuple[int, ...]
    ratio_median: float  # median over planes of the per-plane median B / A
    ratio_lo: float  # smallest and largest per-plane median B / A
    ratio_hi: float
    ratio_worst: float  # the per-plane median B / A farthest from 1 (what a ``cube_ratio`` row holds)
    max_abs: float  # largest |B - A| of the cube
    worst_plane: int  # plane (0-based) of the largest |B - A|; -1 when none
    worst_wavelength: float
    worst_spaxel: tuple[int, int]  # (y, x) whose spectrum changed most; (-1, -1) when none
    spaxel_ratio_median: float  # median B / A of the worst spaxel's spectrum
    n_planes: int
    n_planes_moved: int  # planes with an element over tolerance
    moved_planes: tuple[tuple[int, int], ...]  # those planes as inclusive index ranges
    n_over: int  # elements (spaxel-planes) over tolerance
    n_compared: int
    nan_only_a: int
    nan_only_b: int
    dnu_gained: int
    dnu_lost: int
    err_ratio_median: float
    wl_max_shift: float  # largest |lambda_b - lambda_a| (micron) of the two wavelength axes
    moved: bool
    note: str = ""  # a structural difference (shapes)
    planes: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)
    plot: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in (
            "name", "ratio_median", "ratio_lo", "ratio_hi", "ratio_worst", "max_abs", "worst_plane",
            "worst_wavelength", "spaxel_ratio_median", "n_planes", "n_planes_moved", "n_over",
            "n_compared", "nan_only_a", "nan_only_b", "dnu_gained", "dnu_lost",
            "err_ratio_median", "wl_max_shift", "moved", "note")}
        out.update(shape_a=list(self.shape_a), shape_b=list(self.shape_b),
                   worst_spaxel=list(self.worst_spaxel),
                   moved_planes=[list(r) for r in self.moved_planes])
        return out


@dataclass(frozen=True)
class CubesDiff:
    """Every cube of two s3d products."""

    kind: str
    pairs: tuple[CubePair, ...]
    only_a: tuple[str, ...] = ()
    only_b: tuple[str, ...] = ()

    @property
    def moved(self) -> tuple[CubePair, ...]:
        return tuple(p for p in self.pairs if p.moved)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "pairs": [p.to_dict() for p in self.pairs],
                "only_a": list(self.only_a), "only_b": list(self.only_b),
                "moved": [p.name for p in self.moved]}


def _ranges(idx: np.ndarray) -> tuple[tuple[int, int], ...]:
    """Sorted indices as inclusive (first, last) runs."""
    if idx.size == 0:
        return ()
    breaks = np.flatnonzero(np.diff(idx) != 1)
    starts = np.r_[idx[0], idx[breaks + 1]]
    ends = np.r_[idx[breaks], idx[-1]]
    return tuple((int(s), int(e)) for s, e in zip(starts, ends))


def _nanstat(fn: Any, x: np.ndarray, default: float = float("nan")) -> float:
    return float(fn(x)) if np.isfinite(x).any() else default


def _shrink(x: np.ndarray, max_size: int) -> np.ndarray:
    """A 2-D map at most ``max_size`` a side (block mean ignoring NaN)."""
    f = max(1, -(-max(x.shape) // max(1, max_size)))
    if f == 1:
        return x.astype(np.float32)
    ny, nx = -(-x.shape[0] // f) * f, -(-x.shape[1] // f) * f
    pad = np.full((ny, nx), np.nan)
    pad[: x.shape[0], : x.shape[1]] = x
    blk = pad.reshape(ny // f, f, nx // f, f).transpose(0, 2, 1, 3).reshape(ny // f, nx // f, -1)
    fin = np.isfinite(blk)
    out = np.where(fin, blk, 0.0).sum(-1) / np.maximum(fin.sum(-1), 1)
    out[~fin.any(-1)] = np.nan
    return out.astype(np.float32)


def _structural(name: str, ca: IFU.Cube, cb: IFU.Cube, note: str) -> CubePair:
    nan = float("nan")
    return CubePair(name, ca.shape, cb.shape, nan, nan, nan, nan, nan, -1, nan, (-1, -1), nan,
                    int(ca.shape[0]) if ca.shape else 0, 0, (), 0, 0, 0, 0, 0, 0, nan,
                    float("inf"), True, note)


def compare_cube(name: str, ca: IFU.Cube, cb: IFU.Cube,
                 config: cmp.CompareConfig = cmp.CompareConfig(),
                 max_size: int = 128) -> CubePair:
    """Compare one cube of A with its counterpart of B."""
    a = np.asarray(ca.arrays["data"], np.float64)
    b = np.asarray(cb.arrays["data"], np.float64)
    if a.ndim != 3 or a.shape != b.shape:
        return _structural(name, ca, cb, f"shape {a.shape} vs {b.shape}")
    nz = a.shape[0]
    wa = IFU.cube_wavelengths(ca.meta, ca.arrays)
    wb = IFU.cube_wavelengths(cb.meta, cb.arrays)
    if wa.shape != wb.shape:
        return _structural(name, ca, cb, f"{wa.size} vs {wb.size} wavelengths")
    with np.errstate(invalid="ignore"):
        wl_shift = _nanstat(np.nanmax, np.abs(wb - wa), 0.0)
    tol = config.tol("data")
    both = np.isfinite(a) & np.isfinite(b)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        d = np.where(both, b - a, np.nan)
        ad = np.abs(d)
        over = both & (ad > tol.atol + tol.rtol * np.abs(b))
        okr = both & (a != 0)
        ratio = np.where(okr, b / np.where(okr, a, 1.0), np.nan)
    flat = ratio.reshape(nz, -1)
    anyr = np.isfinite(flat).any(axis=1)
    plane_ratio = np.full(nz, np.nan)
    plane_max = np.zeros(nz)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        plane_ratio[anyr] = np.nanmedian(flat[anyr], axis=1)
        anyd = np.isfinite(ad.reshape(nz, -1)).any(axis=1)
        plane_max[anyd] = np.nanmax(ad.reshape(nz, -1)[anyd], axis=1)
        spax = np.nansum(ad, axis=0)  # how much each spaxel's spectrum changed
    plane_over = over.reshape(nz, -1).sum(axis=1)
    moved_idx = np.flatnonzero(plane_over)
    max_abs = float(plane_max.max()) if nz else 0.0
    worst = int(plane_max.argmax()) if max_abs > 0 else -1
    if spax.size and float(spax.max()) > 0:
        y, x = (int(v) for v in np.unravel_index(int(spax.argmax()), spax.shape))
    else:
        y, x = -1, -1
    sp_ratio = _nanstat(np.nanmedian, ratio[:, y, x]) if y >= 0 else float("nan")
    ea = ca.arrays.get("err")
    eb = cb.arrays.get("err")
    emed = float("nan")
    if ea is not None and eb is not None and np.shape(ea) == np.shape(eb):
        ea, eb = np.asarray(ea, np.float64), np.asarray(eb, np.float64)
        ok = np.isfinite(ea) & np.isfinite(eb) & (ea != 0)
        if ok.any():
            emed = float(np.median(eb[ok] / ea[ok]))
    gained = lost = 0
    qa, qb = ca.arrays.get("dq"), cb.arrays.get("dq")
    if qa is not None and qb is not None and np.shape(qa) == np.shape(qb):
        da = (np.asarray(qa).astype(np.uint64) & DQ.DO_NOT_USE) != 0
        db = (np.asarray(qb).astype(np.uint64) & DQ.DO_NOT_USE) != 0
        gained, lost = int(np.sum(db & ~da)), int(np.sum(da & ~db))
    nan_a = int(np.sum(~np.isfinite(a) & np.isfinite(b)))
    nan_b = int(np.sum(np.isfinite(a) & ~np.isfinite(b)))
    moved = bool(over.any() or nan_a or nan_b or wl_shift > 0)
    planes = {"wavelength": wa, "ratio": plane_ratio, "max_abs": plane_max,
              "n_over": plane_over}
    plot: dict[str, Any] = {}
    if moved:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ma = np.where(both, a, np.nan)
            mb = np.where(both, b, np.nan)
            plot = {"collapsed_a": _shrink(np.nanmean(ma, axis=0), max_size),
                    "collapsed_b": _shrink(np.nanmean(mb, axis=0), max_size),
                    "collapsed_diff": _shrink(np.nanmean(d, axis=0), max_size),
                    "factor": max(1, -(-max(a.shape[1:]) // max(1, max_size))),
                    "spaxel": {"wavelength": wa, "a": a[:, y, x] if y >= 0 else wa * np.nan,
                               "b": b[:, y, x] if y >= 0 else wa * np.nan}}
    wl = float(wa[worst]) if worst >= 0 and wa.size > worst else float("nan")
    fin = np.isfinite(plane_ratio)
    rworst = float(plane_ratio[fin][np.abs(plane_ratio[fin] - 1).argmax()]) if fin.any() \
        else float("nan")
    return CubePair(name, a.shape, b.shape, _nanstat(np.nanmedian, plane_ratio),
                    _nanstat(np.nanmin, plane_ratio), _nanstat(np.nanmax, plane_ratio), rworst,
                    max_abs, worst, wl, (y, x), sp_ratio, nz, int(moved_idx.size),
                    _ranges(moved_idx), int(over.sum()), int(both.sum()), nan_a, nan_b,
                    gained, lost, emed, wl_shift, moved, "", planes, plot)


def compare_cubes(a: DataModel, b: DataModel,
                  config: cmp.CompareConfig = cmp.CompareConfig(),
                  max_size: int = 128) -> CubesDiff:
    """Compare every cube of two s3d products (paired by name)."""
    if a.kind not in KINDS or b.kind not in KINDS:
        raise cmp.CompareError(f"compare_cubes compares s3d products, got {a.kind} and {b.kind}")
    ca = {c.name: c for c in IFU.cubes(a)}
    cb = {c.name: c for c in IFU.cubes(b)}
    pairs = tuple(compare_cube(n, ca[n], cb[n], config, max_size) for n in ca if n in cb)
    return CubesDiff(a.kind, pairs, tuple(n for n in ca if n not in cb),
                     tuple(n for n in cb if n not in ca))
