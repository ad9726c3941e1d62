"""Spectrum-aware comparison of two 1-D spectral products (x1d, c1d) for build diffs.

Pure: two ``DataModel``s in, a ``SpectraDiff`` out. ``transforms.compare`` already compares
every column as an array; this says what a spectroscopist asks of a pair of spectra:

- spectra are paired by name (a stage-3 product's source keys, a stage-2 product's slit
  names); unpaired ones are listed;
- **wavelength**: the largest shift between the two wavelength arrays, in units of the local
  pixel spacing (arrays of different lengths are compared where they overlap);
- **flux** (and its error): B is interpolated onto A's wavelengths when the grids differ; the
  ratio B / A over elements finite and non-zero in both: its median and largest deviation
  from 1; elements over the comparison tolerance (``|a - b| > atol + rtol |b|``, the
  ``CompareConfig`` of the diff); NaN in one only; DO_NOT_USE gained or lost;
- a spectrum **moved** when its wavelengths shifted by more than ``wl_tol_pix`` pixels or any
  flux element is over tolerance; the pictures of the report are drawn for those.

Decimated copies of (wavelength, flux A, flux B) are kept for the report's overlay and ratio
plots (at most ``max_points`` points, every k-th element).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transforms import compare as cmp
from transforms import dq as DQ
from transforms import spectral as S
from transforms.model import DataModel

KINDS = ("x1d", "c1d")
WL_TOL_PIX = 0.01  # a wavelength shift larger than this (pixels) counts as moved


@dataclass(frozen=True)
class SpecPair:
    """One spectrum of A against its counterpart in B."""

    name: str
    n_a: int
    n_b: int
    wl_shift_pix: float  # largest |lambda_b - lambda_a| over the local pixel spacing
    ratio_median: float  # of flux_b / flux_a
    ratio_max_dev: float  # max |flux_b / flux_a - 1|
    err_ratio_median: float
    n_over: int  # flux elements over tolerance
    n_compared: int
    nan_only_a: int
    nan_only_b: int
    dnu_gained: int
    dnu_lost: int
    moved: bool
    flux_col: str = "flux"
    plot: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (
            "name", "n_a", "n_b", "wl_shift_pix", "ratio_median", "ratio_max_dev",
            "err_ratio_median", "n_over", "n_compared", "nan_only_a", "nan_only_b",
            "dnu_gained", "dnu_lost", "moved", "flux_col")}


@dataclass(frozen=True)
class SpectraDiff:
    """Every spectrum of two 1-D spectral products."""

    kind: str
    pairs: tuple[SpecPair, ...]
    only_a: tuple[str, ...] = ()
    only_b: tuple[str, ...] = ()

    @property
    def moved(self) -> tuple[SpecPair, ...]:
        return tuple(p for p in self.pairs if p.moved)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "pairs": [p.to_dict() for p in self.pairs],
                "only_a": list(self.only_a), "only_b": list(self.only_b),
                "moved": [p.name for p in self.moved]}


def _pix_spacing(w: np.ndarray) -> np.ndarray:
    if w.size < 2:
        return np.ones_like(w)
    g = np.abs(np.gradient(w))
    g[g == 0] = np.nan
    return g


def _interp(w_from: np.ndarray, y: np.ndarray, w_to: np.ndarray) -> np.ndarray:
    ok = np.isfinite(w_from) & np.isfinite(y)
    if ok.sum() < 2:
        return np.full(w_to.shape, np.nan)
    order = np.argsort(w_from[ok])
    wf, yf = w_from[ok][order], y[ok][order]
    out = np.interp(w_to, wf, yf, left=np.nan, right=np.nan)
    return out


def _decimate(n: int, max_points: int) -> np.ndarray:
    step = max(1, int(np.ceil(n / max(max_points, 1))))
    return np.arange(0, n, step)


def compare_pair(name: str, a: S.Spectrum, b: S.Spectrum,
                 config: cmp.CompareConfig = cmp.CompareConfig(),
                 wl_tol_pix: float = WL_TOL_PIX, max_points: int = 2000) -> SpecPair:
    """Compare one spectrum of A with its counterpart of B."""
    fcol = "flux" if "flux" in a.columns else "surf_bright"
    ecol = "flux_error" if "flux_error" in a.columns else "error"
    wa = np.asarray(a.columns.get("wavelength", []), np.float64)
    wb = np.asarray(b.columns.get("wavelength", []), np.float64)
    fa = np.asarray(a.columns.get(fcol, np.full(wa.shape, np.nan)), np.float64)
    fb_raw = np.asarray(b.columns.get(fcol, np.full(wb.shape, np.nan)), np.float64)
    same_grid = wa.shape == wb.shape
    if same_grid and wa.size:
        with np.errstate(invalid="ignore"):
            shift = np.nanmax(np.abs(wb - wa) / _pix_spacing(wa)) if np.isfinite(wa).any() else 0.0
        fb = fb_raw
        eb = np.asarray(b.columns.get(ecol, np.full(wb.shape, np.nan)), np.float64)
        qb = np.asarray(b.columns.get("dq", np.zeros(wb.shape, np.uint32)), np.uint32)
    else:
        # different grids: the shift of the range ends, and B interpolated onto A
        ends = [abs(wb[0] - wa[0]), abs(wb[-1] - wa[-1])] if wa.size and wb.size else [np.inf]
        sp = np.nanmedian(_pix_spacing(wa)) if wa.size > 1 else 1.0
        shift = float(max(ends) / sp) if np.isfinite(sp) and sp > 0 else float("inf")
        fb = _interp(wb, fb_raw, wa)
        eb = _interp(wb, np.asarray(b.columns.get(ecol, np.full(wb.shape, np.nan)),
                                    np.float64), wa)
        qb = np.zeros(wa.shape, np.uint32)
    ea = np.asarray(a.columns.get(ecol, np.full(wa.shape, np.nan)), np.float64)
    qa = np.asarray(a.columns.get("dq", np.zeros(wa.shape, np.uint32)), np.uint32)
    tol = config.tol(fcol)
    both = np.isfinite(fa) & np.isfinite(fb)
    with np.errstate(invalid="ignore", divide="ignore"):
        over = both & (np.abs(fa - fb) > tol.atol + tol.rtol * np.abs(fb))
        okr = both & (fa != 0)
        ratio = np.where(okr, fb / np.where(okr, fa, 1.0), np.nan)
        okerr = np.isfinite(ea) & np.isfinite(eb) & (ea != 0)
        eratio = np.where(okerr, eb / np.where(okerr, ea, 1.0), np.nan)
    rmed = float(np.nanmedian(ratio)) if np.isfinite(ratio).any() else float("nan")
    rdev = float(np.nanmax(np.abs(ratio - 1))) if np.isfinite(ratio).any() else 0.0
    emed = float(np.nanmedian(eratio)) if np.isfinite(eratio).any() else float("nan")
    dnu_a = (qa & DQ.DO_NOT_USE) != 0
    dnu_b = (qb & DQ.DO_NOT_USE) != 0
    nan_a = int(np.sum(~np.isfinite(fa) & np.isfinite(fb)))
    nan_b = int(np.sum(np.isfinite(fa) & ~np.isfinite(fb)))
    shift = float(shift) if np.isfinite(shift) else float("inf")
    moved = bool(shift > wl_tol_pix or over.any() or nan_a or nan_b
                 or wa.shape != wb.shape)
    keep = _decimate(wa.size, max_points)
    plot = {"wavelength": wa[keep], "a": fa[keep], "b": fb[keep]} if moved else {}
    return SpecPair(name, int(wa.size), int(wb.size), shift, rmed, rdev, emed,
                    int(over.sum()), int(both.sum()), nan_a, nan_b,
                    int(np.sum(dnu_b & ~dnu_a)) if same_grid else 0,
                    int(np.sum(dnu_a & ~dnu_b)) if same_grid else 0, moved, fcol, plot)


def compare_spectra(a: DataModel, b: DataModel,
                    config: cmp.CompareConfig = cmp.CompareConfig(),
                    wl_tol_pix: float = WL_TOL_PIX, max_points: int = 2000) -> SpectraDiff:
    """Compare every spectrum of two x1d/c1d products (paired by name)."""
    if a.kind not in KINDS or b.kind not in KINDS:
        raise cmp.CompareError(f"compare_spectra compares x1d/c1d products, got {a.kind} and "
                               f"{b.kind}")
    sa = {s.name: s for s in S.spectra(a)}
    sb = {s.name: s for s in S.spectra(b)}
    pairs = tuple(compare_pair(n, sa[n], sb[n], config, wl_tol_pix, max_points)
                  for n in sa if n in sb)
    return SpectraDiff(a.kind, pairs, tuple(n for n in sa if n not in sb),
                       tuple(n for n in sb if n not in sa))
