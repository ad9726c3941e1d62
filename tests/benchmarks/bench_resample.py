"""Benchmark + validation numbers for transforms.resample (run by hand, not collected).

    .venv/bin/python tests/benchmarks/bench_resample.py [size]

Prints: drizzle wall time for one size x size exposure (square pixfrac 1 and 0.8, point), blot
time, agreement with the drizzle package, and the flux-conservation ratio on a rotated,
rescaled grid.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from transforms import resample as R
from transforms import wcs as W


def setup(n: int):
    ref = W.distortion_ref(v2_ref=86.0, v3_ref=-493.0, v3yangle=-0.3, vparity=-1, scale_x=0.031,
                           scale_y=0.0312, crpix1=(n - 1) / 2, crpix2=(n - 1) / 2, naxis1=n,
                           naxis2=n, degree=2, coeffs_x={"c2_0": 2e-7, "c1_1": 1e-7},
                           coeffs_y={"c0_2": -2e-7})
    meta = {"wcsinfo.v2_ref": 86.0, "wcsinfo.v3_ref": -493.0, "wcsinfo.ra_ref": 53.16,
            "wcsinfo.dec_ref": -27.79, "wcsinfo.roll_ref": 20.0,
            "velocity_aberration.scale_factor": 1.00002}
    w = W.build_wcs(meta, ref, shape=(n, n))
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:n, 0:n]
    img = np.zeros((n, n))
    for _ in range(max(20, n // 10)):
        x0, y0 = rng.uniform(20, n - 20, 2)
        img += rng.uniform(5, 50) * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * 1.6 ** 2))
    return w, img.astype(np.float32)


def main(n: int = 1024) -> None:
    w, data = setup(n)
    wt = np.ones_like(data)
    R.drizzle([(data[:8, :8], wt[:8, :8], w)], w, (8, 8))  # compile / load the numba cache
    grid = R.mosaic_grid([w], [data.shape], pixel_scale_ratio=0.7, rotation=33.0)
    wo, osh = W.wcs_of(grid), tuple(grid["wcs.tangent_plane"]["shape"])
    for kernel, pf in (("square", 1.0), ("square", 0.8), ("point", 1.0)):
        t = time.perf_counter()
        sci, wht, con = R.drizzle([(data, wt, w)], wo, osh, pixfrac=pf, kernel=kernel)
        dt = time.perf_counter() - t
        fin = np.nansum(data, dtype=np.float64) * R.pixel_scale_arcsec(w, data.shape) ** 2
        fout = np.nansum(sci, dtype=np.float64) * grid["wcs.tangent_plane"][
            "pixel_scale_arcsec"] ** 2
        print(f"{kernel:6s} pixfrac={pf}: {n}x{n} -> {osh[1]}x{osh[0]} in {dt:.2f} s; "
              f"flux out/in = {fout / fin:.5f}")
        if kernel == "square" and pf == 1.0:
            sq = sci
    t = time.perf_counter()
    R.blot(sq, wo, w, data.shape)
    print(f"blot {osh[1]}x{osh[0]} -> {n}x{n} in {time.perf_counter() - t:.2f} s")
    try:
        from drizzle.resample import Drizzle
        from drizzle.utils import calc_pixmap
    except ImportError:
        return
    t = time.perf_counter()
    d = Drizzle(out_shape=osh, kernel="square", fillval="NaN")
    d.add_image(data, exptime=1.0, pixmap=calc_pixmap(w, wo, shape=data.shape), weight_map=wt)
    print(f"drizzle package (incl. pixmap): {time.perf_counter() - t:.2f} s; max |SCI diff| / "
          f"peak = {np.nanmax(np.abs(d.out_img - sq)) / data.max():.2e}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1024)
