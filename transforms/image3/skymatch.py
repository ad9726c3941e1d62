"""skymatch: measure (and optionally subtract) the sky of each exposure so that overlaps agree.

Methods as JWST's ``skymatch`` step: ``local`` (each image's own sky statistic), ``global``
(the lowest of those, for every image), ``match`` (relative offsets that make overlapping
regions agree, solved by least squares over all overlapping pairs; ``match_down`` puts the
lowest sky at 0, otherwise the highest), ``global+match`` (match, then add the global sky of the
matched images). Overlaps are found by mapping a grid of pixels of one image onto the other
through their (tweaked) WCSs. The result is ``background.level``/``background.subtracted``/
``background.method`` meta; data change only when ``subtract`` is True.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from transforms.model import DataModel
from transforms.registry import register

METHODS = ("local", "global", "match", "global+match", "user")
STATS = ("median", "midpt", "mean", "mode")


class SkymatchError(ValueError):
    """Bad skymatch parameters or inputs."""


@dataclass(frozen=True)
class SkymatchParams:
    """JWST skymatch parameters (spec defaults)."""

    skymethod: str = "match"
    match_down: bool = True
    subtract: bool = False
    skylist: str | None = None
    stepsize: int | None = None
    skystat: str = "mode"
    dqbits: str = "~DO_NOT_USE+NON_SCIENCE"
    lower: float | None = None
    upper: float | None = None
    nclip: int = 5
    lsigma: float = 4.0
    usigma: float = 4.0
    binwidth: float = 0.1


def sky_statistic(values: np.ndarray, skystat: str = "mode", nclip: int = 5, lsigma: float = 4.0,
                  usigma: float = 4.0, binwidth: float = 0.1, lower: float | None = None,
                  upper: float | None = None) -> float:
    """A clipped sky statistic of a 1-D sample; NaN when no usable value remains."""
    if skystat not in STATS:
        raise SkymatchError(f"skystat {skystat!r} is not one of {', '.join(STATS)}")
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if lower is not None:
        v = v[v >= lower]
    if upper is not None:
        v = v[v <= upper]
    for _ in range(int(nclip)):
        if v.size < 3:
            break
        med, std = np.median(v), np.std(v)
        keep = (v >= med - lsigma * std) & (v <= med + usigma * std)
        if keep.all():
            break
        v = v[keep]
    if v.size == 0:
        return float("nan")
    if skystat == "mean":
        return float(np.mean(v))
    if skystat == "median" or v.size < 10:
        return float(np.median(v))
    std = float(np.std(v))
    if not std > 0:
        return float(v[0])
    width = max(binwidth, 1e-3) * std
    edges = np.arange(v.min(), v.max() + width, width)
    if edges.size < 3:
        return float(np.median(v))
    h, edges = np.histogram(v, bins=edges)
    centers = 0.5 * (edges[1:] + edges[:-1])
    if skystat == "midpt":  # histogram median
        c = np.cumsum(h)
        k = int(np.searchsorted(c, c[-1] / 2.0))
        return float(centers[min(k, centers.size - 1)])
    # mode: histogram peak, smoothed over ~0.5 sigma and refined with a parabola
    from scipy.ndimage import gaussian_filter1d  # here: every stage run imports this module

    hs = gaussian_filter1d(h.astype(np.float64), sigma=max(0.5 / max(binwidth, 1e-3), 1.0))
    k = int(np.argmax(hs))
    if 0 < k < hs.size - 1:
        a, b, c = hs[k - 1], hs[k], hs[k + 1]
        den = a - 2 * b + c
        off = 0.5 * (a - c) / den if den != 0 else 0.0
        return float(centers[k] + off * width)
    return float(centers[k])


def good_pixels(model: DataModel, dqbits: str) -> np.ndarray:
    """Usable pixels: finite data and DQ passing the JWST good-bits expression."""
    from transforms.image3.tweakreg import good_mask

    ok = np.isfinite(model["data"])
    if "dq" in model.arrays:
        ok &= good_mask(np.asarray(model["dq"]), dqbits)
    return ok


def _stat(model_vals: np.ndarray, p: SkymatchParams) -> float:
    return sky_statistic(model_vals, p.skystat, p.nclip, p.lsigma, p.usigma, p.binwidth,
                         p.lower, p.upper)


def _sample_grid(shape: tuple[int, int], step: int) -> tuple[np.ndarray, np.ndarray]:
    ny, nx = shape
    gy, gx = np.mgrid[0:ny:step, 0:nx:step]
    return gx.ravel(), gy.ravel()


def overlap_values(models, goods, step: int):
    """For each ordered overlapping pair (i, j): values of i and of j at the shared sky points."""
    from transforms.wcs import wcs_of

    wcss = [wcs_of(m) for m in models]
    out = {}
    for i, mi in enumerate(models):
        gx, gy = _sample_grid(mi.shape, step)
        ok = goods[i][gy, gx]
        gx, gy = gx[ok], gy[ok]
        if gx.size == 0:
            continue
        ra, dec = wcss[i](gx.astype(float), gy.astype(float), with_bounding_box=False)
        for j, mj in enumerate(models):
            if j <= i:
                continue
            x, y = wcss[j].invert(ra, dec, with_bounding_box=False)
            xr, yr = np.rint(x), np.rint(y)
            ny, nx = mj.shape
            inside = (np.isfinite(xr) & np.isfinite(yr) & (xr >= 0) & (yr >= 0)
                      & (xr < nx) & (yr < ny))
            xi, yi = xr[inside].astype(int), yr[inside].astype(int)
            both = goods[j][yi, xi]
            if both.sum() < 10:
                continue
            src = (gy[inside][both], gx[inside][both])
            out[(i, j)] = (np.asarray(mi["data"])[src], np.asarray(mj["data"])[yi[both], xi[both]])
    return out


def solve_offsets(n: int, diffs: dict[tuple[int, int], tuple[float, float]],
                  match_down: bool) -> np.ndarray:
    """Sky levels s with s_i - s_j ~ d_ij (weights w_ij), gauge fixed per connected group."""
    levels = np.zeros(n)
    # connected components of the overlap graph
    parent = list(range(n))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j in diffs:
        parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for k in range(n):
        groups.setdefault(find(k), []).append(k)
    for members in groups.values():
        if len(members) < 2:
            continue
        idx = {k: r for r, k in enumerate(members)}
        rows, rhs, wts = [], [], []
        for (i, j), (d, w) in diffs.items():
            if i in idx:
                row = np.zeros(len(members))
                row[idx[i]], row[idx[j]] = 1.0, -1.0
                rows.append(row)
                rhs.append(d)
                wts.append(np.sqrt(w))
        a = np.array(rows) * np.array(wts)[:, None]
        b = np.array(rhs) * np.array(wts)
        a = np.vstack([a, np.ones(len(members))])  # gauge: mean 0, then shifted below
        b = np.append(b, 0.0)
        s, *_ = np.linalg.lstsq(a, b, rcond=None)
        s = s - (s.min() if match_down else s.max())
        levels[members] = s
    return levels


def sky_levels(models: tuple[DataModel, ...], p: SkymatchParams) -> np.ndarray:
    """The sky level of each image for ``p.skymethod``."""
    goods = [good_pixels(m, p.dqbits) for m in models]
    local = np.array([_stat(np.asarray(m["data"])[g], p) for m, g in zip(models, goods)])
    if p.skymethod == "local":
        return np.nan_to_num(local)
    finite = local[np.isfinite(local)]
    if p.skymethod == "global":
        return np.full(len(models), float(finite.min()) if finite.size else 0.0)
    step = int(p.stepsize) if p.stepsize else 4
    pairs = overlap_values(models, goods, step)
    diffs = {}
    for (i, j), (vi, vj) in pairs.items():
        si, sj = _stat(vi, p), _stat(vj, p)
        if np.isfinite(si) and np.isfinite(sj):
            diffs[(i, j)] = (si - sj, float(vi.size))
    levels = solve_offsets(len(models), diffs, p.match_down)
    if p.skymethod == "global+match":
        rest = [_stat(np.asarray(m["data"])[g] - lv, p) for m, g, lv in zip(models, goods, levels)]
        rest = np.array(rest)
        rest = rest[np.isfinite(rest)]
        levels = levels + (float(rest.min()) if rest.size else 0.0)
    return levels


@register("skymatch", "1.0", "image3", SkymatchParams, (), keyword="S_SKYMAT")
def skymatch(cals: tuple[DataModel, ...], refs: dict, params: SkymatchParams
             ) -> tuple[DataModel, ...]:
    """Sky levels of the exposures (background.level meta); subtracted when ``subtract``."""
    cals = tuple(cals)
    if params.skymethod not in METHODS:
        raise SkymatchError(f"skymethod {params.skymethod!r} is not one of {', '.join(METHODS)}")
    if params.skymethod == "user":
        raise SkymatchError("skymethod='user' reads a skylist file; transforms never read files: "
                            "use another skymethod or subtract the levels before image3")
    if params.skystat not in STATS:
        raise SkymatchError(f"skystat {params.skystat!r} is not one of {', '.join(STATS)}")
    if not cals:
        return ()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        levels = sky_levels(cals, params)
    out = []
    for m, lv in zip(cals, levels):
        lv = float(lv) if np.isfinite(lv) else 0.0
        prev = float(m.get("background.level") or 0.0) if m.get("background.subtracted") else 0.0
        meta = {"background.level": lv + prev, "background.method": params.skymethod,
                "background.subtracted": bool(params.subtract or m.get("background.subtracted")),
                "cal_step.skymatch": "COMPLETE"}
        arrays = None
        if params.subtract:
            arrays = {"data": (np.asarray(m["data"]) - np.float32(lv)).astype(m["data"].dtype)}
        out.append(m.replace(arrays=arrays, meta=meta))
    return tuple(out)
