"""Small synthetic rate products and references for the image2 tests (shared helpers)."""

from __future__ import annotations

import numpy as np

from transforms import wcs as W
from transforms.model import DataModel

V2, V3 = 86.0, -493.0


def make_rate(shape=(64, 72), seed=0, xstart=1, ystart=1, nstars=8, sky=0.5):
    rng = np.random.default_rng(seed)
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx]
    img = np.full(shape, sky, np.float64)
    for _ in range(nstars):
        x0, y0 = rng.uniform(8, max(nx - 8, 9)), rng.uniform(8, max(ny - 8, 9))
        img += rng.uniform(5, 40) * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * 1.5 ** 2))
    vr = np.full(shape, 0.04, np.float32)
    vp = (np.abs(img) / 100.0).astype(np.float32)
    data = (img + rng.normal(0, 0.2, shape)).astype(np.float32)
    meta = {"instrument.name": "NIRCAM", "instrument.detector": "NRCA1",
            "instrument.filter": "F200W", "instrument.pupil": "CLEAR",
            "exposure.type": "NRC_IMAGE", "exposure.measurement_time": 100.0,
            "subarray.name": "FULL" if (xstart, ystart) == (1, 1) else "SUB",
            "subarray.xstart": xstart, "subarray.ystart": ystart,
            "subarray.xsize": nx, "subarray.ysize": ny,
            "wcsinfo.v2_ref": V2, "wcsinfo.v3_ref": V3, "wcsinfo.ra_ref": 53.16,
            "wcsinfo.dec_ref": -27.79, "wcsinfo.roll_ref": 45.0,
            "velocity_aberration.scale_factor": 1.00002}
    arrays = {"data": data, "dq": np.zeros(shape, np.uint32), "var_rnoise": vr,
              "var_poisson": vp, "err": np.sqrt(vr + vp)}
    return DataModel("rate", arrays, meta)


def make_refs(full=(128, 128), seed=1):
    rng = np.random.default_rng(seed)
    ny, nx = full
    # a smooth illumination pattern and 1% pixel-to-pixel response, as real flats
    yy, xx = np.mgrid[0:ny, 0:nx] / max(nx, ny)
    flat = (1.0 + 0.05 * (xx - 0.5) - 0.03 * (yy - 0.5) ** 2
            + rng.normal(0.0, 0.01, full)).astype(np.float32)
    flat_err = np.full(full, 0.01, np.float32)
    fdq = np.zeros(full, np.uint32)
    dist = W.distortion_ref(v2_ref=V2, v3_ref=V3, v3yangle=-0.3, vparity=-1, scale_x=0.031,
                            scale_y=0.0312, crpix1=(nx - 1) / 2, crpix2=(ny - 1) / 2,
                            naxis1=nx, naxis2=ny, degree=2, coeffs_x={"c2_0": 1e-6},
                            coeffs_y={"c1_1": -1e-6})
    meta = {"instrument.name": "NIRCAM", "instrument.detector": "NRCA1"}
    sr = (0.031 * 0.0312) * (np.pi / 180 / 3600) ** 2
    return {
        "distortion": dist,
        "flat": DataModel("ref.flat", {"data": flat, "err": flat_err, "dq": fdq},
                          {**meta, "reftype": "flat"}),
        "photom": DataModel("ref.photom", {
            "filter": np.array(["F150W", "F200W"]), "pupil": np.array(["CLEAR", "CLEAR"]),
            "photmjsr": np.array([0.25, 0.2143], np.float32),
            "uncertainty": np.array([0.002, 0.002], np.float32)},
            {**meta, "reftype": "photom", "photometry.pixelarea_steradians": sr,
             "photometry.pixelarea_arcsecsq": 0.031 * 0.0312}),
        "area": DataModel("ref.area", {"data": rng.uniform(0.99, 1.01, full).astype(np.float32)},
                          {**meta, "reftype": "area", "photometry.pixelarea_steradians": sr,
                           "photometry.pixelarea_arcsecsq": 0.031 * 0.0312}),
    }
