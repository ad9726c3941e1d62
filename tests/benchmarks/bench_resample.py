"""Benchmark: drizzle one full-frame NIRCam exposure into a mosaic grid, calops vs the C package.

    PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_resample.py [--size 2048] [--repeat 3]
        [--variances] [--blot]

Same inputs and output grid for every implementation: a size x size exposure with the
simulator's NIRCam-like distortion (degree-3 polynomial, ~0.3" at the corners) and 200 stars,
drizzled (square kernel, pixfrac 1) onto a tangent-plane grid 0.7x the input pixel scale,
rotated by 33 deg (3514 x 3528 pixels for 2048):

* ``calops 1.0``  -- ``transforms.resample.drizzle``: every pixel corner through the WCS;
* ``calops 1.1``  -- ``transforms.drizzle_fast.drizzle``: the map interpolated from a coarse
  grid (cubic, step chosen by the measured error, tolerance 1e-3 output pixel), column-wise
  overlap kernel; also with the exact map (tol=0) to separate the two gains;
* ``C drizzle``   -- the ``drizzle`` package jwst uses: ``calc_pixmap`` (every pixel centre
  through the WCS) + ``Drizzle.add_image``.

Each is split into the pixel map (WCS evaluation, interpolation) and the kernel (drizzling and
assembling the output); wall time is the best of ``--repeat`` runs (implementations
interleaved, so they share the machine's load), with the process CPU time of that run.
``--variances`` adds the step's work: the three variance arrays drizzled too (C: ``data2``).

Then the error 1.1's interpolation adds: its pixel map against the exact map at every corner,
and its output against 1.0's (exact map) and the C package's: pixel by pixel, total flux,
and the centroids of the stars.
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager

import numpy as np

from transforms import drizzle_fast as F
from transforms import resample as R
from transforms import wcs as W


def setup(n: int, nstars: int | None = None):
    """(wcs, image, star pixel positions) of an n x n NIRCam-like exposure."""
    ref = W.distortion_ref(v2_ref=86.0, v3_ref=-493.0, v3yangle=-0.3, vparity=-1, scale_x=0.031,
                           scale_y=0.0312, crpix1=(n - 1) / 2, crpix2=(n - 1) / 2, naxis1=n,
                           naxis2=n, degree=3,
                           coeffs_x={"c2_0": 2e-7, "c1_1": 1e-7, "c3_0": 1e-10, "c1_2": 5e-11},
                           coeffs_y={"c0_2": -2e-7, "c2_1": 8e-11, "c0_3": -6e-11})
    meta = {"wcsinfo.v2_ref": 86.0, "wcsinfo.v3_ref": -493.0, "wcsinfo.ra_ref": 53.16,
            "wcsinfo.dec_ref": -27.79, "wcsinfo.roll_ref": 20.0,
            "velocity_aberration.scale_factor": 1.00002}
    w = W.build_wcs(meta, ref, shape=(n, n))
    rng = np.random.default_rng(0)
    img = np.zeros((n, n))
    pos = []
    nstars = max(20, n // 10) if nstars is None else nstars
    for _ in range(nstars):
        x0, y0 = rng.uniform(20, n - 20, 2)
        amp = rng.uniform(5, 50)
        j0, i0 = int(y0), int(x0)
        y, x = np.mgrid[j0 - 12:j0 + 13, i0 - 12:i0 + 13]
        img[j0 - 12:j0 + 13, i0 - 12:i0 + 13] += amp * np.exp(
            -((x - x0) ** 2 + (y - y0) ** 2) / (2 * 1.6 ** 2))
        pos.append((x0, y0))
    return w, img.astype(np.float32), np.array(pos)


class Timer:
    """Wall and CPU seconds accumulated per part."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def part(self, name: str):
        t, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - t
            self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - c

    def wrap(self, module, attr: str, name: str):
        """Time every call of ``module.attr`` under ``name`` (it is looked up at call time)."""
        fn = getattr(module, attr)

        def timed(*a, **k):
            with self.part(name):
                return fn(*a, **k)
        setattr(module, attr, timed)
        return lambda: setattr(module, attr, fn)


def run_v10(data, wt, w, wo, osh, variances):
    t = Timer()
    undo = [t.wrap(R, "_to_output", "map"), t.wrap(R, "_drizzle_square", "kern")]
    try:
        with t.part("total"):
            if variances:
                r = R.drizzle_images([(data, wt, w, variances)], wo, osh)
                out = (r.sci, r.wht)
            else:
                out = R.drizzle([(data, wt, w)], wo, osh)[:2]
    finally:
        for u in undo:
            u()
    return out, t


def run_v11(data, wt, w, wo, osh, variances, tol=F.DEFAULT_TOL):
    t = Timer()
    undo = [t.wrap(F, "pixel_map", "map")]
    try:
        with t.part("total"):
            r, stats = F.drizzle_images([(data, wt, w, variances)], wo, osh, tol=tol)
    finally:
        for u in undo:
            u()
    return (r.sci, r.wht), t, stats


def run_c(data, wt, w, wo, osh, variances):
    from drizzle.resample import Drizzle
    from drizzle.utils import calc_pixmap

    t = Timer()
    with t.part("total"):
        with t.part("map"):
            pixmap = calc_pixmap(w, wo, shape=data.shape)
        d = Drizzle(out_shape=osh, kernel="square", fillval="NaN")
        d.add_image(data, exptime=1.0, pixmap=pixmap, weight_map=wt,
                    data2=list(variances.values()) if variances else None)
    return (d.out_img, d.out_wht), t


def centroids(img, xy, r=5):
    """First-moment centroids of ``img`` in (2r+1)^2 boxes around ``xy`` (output pixels)."""
    out = []
    for x, y in xy:
        i, j = int(round(x)), int(round(y))
        box = img[j - r:j + r + 1, i - r:i + r + 1].astype(np.float64)
        yy, xx = np.mgrid[j - r:j + r + 1, i - r:i + r + 1]
        good = np.isfinite(box)
        s = box[good].sum()
        out.append((np.sum(xx[good] * box[good]) / s, np.sum(yy[good] * box[good]) / s))
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--variances", action="store_true", help="also drizzle 3 variance arrays")
    ap.add_argument("--blot", action="store_true", help="also time blot (unchanged in 1.1)")
    a = ap.parse_args()
    n = a.size
    w, data, stars = setup(n)
    wt = np.ones_like(data)
    rng = np.random.default_rng(1)
    variances = ({v: rng.uniform(0.5, 2.0, data.shape).astype(np.float32)
                  for v in R.VARIANCES} if a.variances else None)
    # compile or load every kernel first (numba cache)
    R.drizzle_images([(data[:40, :40], wt[:40, :40], w, None)], w, (40, 40))
    F.drizzle_images([(data[:40, :40], wt[:40, :40], w,
                       {k: v[:40, :40] for k, v in variances.items()} if variances else None)],
                     w, (40, 40))
    grid = R.mosaic_grid([w], [data.shape], pixel_scale_ratio=0.7, rotation=33.0)
    wo, osh = W.wcs_of(grid), tuple(grid["wcs.tangent_plane"]["shape"])
    try:
        import drizzle  # noqa: F401
        have_c = True
    except ImportError:
        have_c = False
    runs = {
        "calops 1.0": lambda: run_v10(data, wt, w, wo, osh, variances),
        "calops 1.1": lambda: run_v11(data, wt, w, wo, osh, variances),
        "calops 1.1 exact map": lambda: run_v11(data, wt, w, wo, osh, variances, tol=0.0),
    }
    if have_c:
        runs["C drizzle"] = lambda: run_c(data, wt, w, wo, osh, variances)
    best: dict[str, tuple] = {}
    for _ in range(a.repeat):
        for name, fn in runs.items():
            res = fn()
            t = res[1]
            if name not in best or t.wall["total"] < best[name][1].wall["total"]:
                best[name] = res
    planes = "SCI + 3 variances" if variances else "SCI"
    print(f"{n}x{n} -> {osh[1]}x{osh[0]} (square, pixfrac 1, {planes}); best of {a.repeat} "
          f"wall s (CPU s of that run)")
    print(f"{'':22s} {'pixel map':>16s} {'kernel+output':>16s} {'total':>16s}")
    for name, res in best.items():
        t = res[1]
        kw = t.wall["total"] - t.wall.get("map", 0.0)
        kc = t.cpu["total"] - t.cpu.get("map", 0.0)
        print(f"{name:22s} {t.wall.get('map', 0):7.2f} ({t.cpu.get('map', 0):5.2f})  "
              f"{kw:7.2f} ({kc:5.2f})  {t.wall['total']:7.2f} ({t.cpu['total']:5.2f})")
    tot = {k: v[1].wall["total"] for k, v in best.items()}
    if have_c:
        print(f"C drizzle / calops 1.0 = {tot['C drizzle'] / tot['calops 1.0']:.2f}; "
              f"C drizzle / calops 1.1 = {tot['C drizzle'] / tot['calops 1.1']:.2f} "
              f"(> 1: calops faster)")
    print(f"calops 1.0 / 1.1 = {tot['calops 1.0'] / tot['calops 1.1']:.2f}")
    stats = best["calops 1.1"][2]
    print(f"1.1 map: step {stats.steps[0]:.1f} px, {stats.nevals} WCS evaluations "
          f"(exact: {(n + 1) ** 2}), error at check points {stats.max_error:.2e} px")

    # --- the error the interpolation adds ---------------------------------------------------
    pm = F.pixel_map(w, wo, data.shape)
    ex = F.exact_map(w, wo, data.shape)
    d = np.hypot(*(F.map_rows(pm) - ex.rows))
    print(f"map error over all {d.size} corners: max {d.max():.2e}, 99.9% {np.quantile(d, 0.999):.2e}"
          f" output px")
    s10, w10 = best["calops 1.0"][0]
    s11, w11 = best["calops 1.1"][0]
    peak = float(np.nanmax(s10))
    ok = np.isfinite(s10) & np.isfinite(s11)
    print(f"1.1 vs 1.0: coverage differs at {int(np.sum(np.isfinite(s10) != np.isfinite(s11)))}"
          f" px; max |SCI diff| / peak = {np.max(np.abs(s11[ok] - s10[ok])) / peak:.2e}, "
          f"rms / peak = {np.sqrt(np.mean((s11[ok] - s10[ok]) ** 2)) / peak:.2e}; "
          f"max |WHT diff| = {np.max(np.abs(w11 - w10)):.2e}")
    area_in = R.pixel_scale_arcsec(w, data.shape) ** 2
    area_out = grid["wcs.tangent_plane"]["pixel_scale_arcsec"] ** 2
    fin = float(np.sum(data, dtype=np.float64)) * area_in
    line = "flux out/in:"
    for name, res in best.items():
        line += f" {name} {np.nansum(res[0][0], dtype=np.float64) * area_out / fin:.6f};"
    print(line)
    f10 = np.nansum(s10, dtype=np.float64)
    print(f"1.1 vs 1.0 total flux: {np.nansum(s11, dtype=np.float64) / f10 - 1:+.2e}")
    xo, yo = R._to_output(w, wo, stars[:, 0], stars[:, 1])
    inside = (xo > 8) & (yo > 8) & (xo < osh[1] - 9) & (yo < osh[0] - 9)
    truth = np.stack([xo, yo], axis=1)[inside]
    c10 = centroids(s10, truth)
    c11 = centroids(s11, truth)
    print(f"star centroids ({len(truth)} stars): |1.1 - 1.0| max "
          f"{np.max(np.hypot(*(c11 - c10).T)):.2e} px; |1.0 - truth| median "
          f"{np.median(np.hypot(*(c10 - truth).T)):.2e} px")
    if have_c:
        sc, wc = best["C drizzle"][0]
        okc = ok & np.isfinite(sc)
        print(f"1.1 vs C drizzle: max |SCI diff| / peak = "
              f"{np.max(np.abs(s11[okc] - sc[okc])) / peak:.2e}; 1.0 vs C: "
              f"{np.max(np.abs(s10[okc] - sc[okc])) / peak:.2e}; centroids |1.1 - C| max "
              f"{np.max(np.hypot(*(c11 - centroids(sc, truth)).T)):.2e} px")
    if a.blot:
        t = time.perf_counter()
        R.blot(s10, wo, w, data.shape)
        print(f"blot {osh[1]}x{osh[0]} -> {n}x{n} in {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
