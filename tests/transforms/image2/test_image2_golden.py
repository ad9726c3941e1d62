"""Golden product ids: a silent change to an image2 step's output fails here (bump its version).

Inputs use only integer-derived values and IEEE-exact arithmetic (+ - * / sqrt), so the pinned
ids do not depend on the CPU's transcendental-function implementation. assign_wcs pins its
metadata (the WCS inputs and an S_REGION at 1e-9 deg). resample is not pinned by id: its float32
output comes from trig-based WCS evaluation that may differ in the last bit between CPUs
(SIMD sin/cos); its behaviour is pinned by the drizzle-package comparison instead.
"""

from __future__ import annotations

import numpy as np
import pytest
from image2_helpers import make_refs

from transforms.image2.assign_wcs import AssignWcsParams, assign_wcs
from transforms.image2.flat_field import FlatFieldParams, flat_field
from transforms.image2.photom import PhotomParams, photom
from transforms.model import DataModel

identity = pytest.importorskip("store.identity")

GOLDEN = {
    "assign_wcs": "sha256:f05ca26eab87c9dbaa6ceddd4e5c335d54da21d0998b33faf8d83cdd26f6b21a",
    "flat_field": "sha256:dcdf14a21cf61cdd61272bf7ad96671f8f3cc1eeecf2ec54a02e3728adb0c2d9",
    "photom": "sha256:2ba447aedbd83c55540b8d71286973f61a218e173ab8e05666d70ec0530eb1d4",
}


def _exact_inputs():
    rng = np.random.default_rng(2024)
    shape = (12, 10)
    refs = make_refs((16, 16))
    flat = (1.0 + rng.integers(-50, 50, (16, 16)) / 1000.0).astype(np.float32)
    flat[3, 3] = 0.0
    refs["flat"] = DataModel("ref.flat", {
        "data": flat, "err": np.full((16, 16), 0.015625, np.float32),
        "dq": np.zeros((16, 16), np.uint32)}, dict(refs["flat"].meta))
    meta = {"instrument.name": "NIRCAM", "instrument.detector": "NRCA1",
            "instrument.filter": "F200W", "instrument.pupil": "CLEAR",
            "subarray.name": "SUB", "subarray.xstart": 3, "subarray.ystart": 2,
            "subarray.xsize": 10, "subarray.ysize": 12, "wcsinfo.v2_ref": 86.0,
            "wcsinfo.v3_ref": -493.0, "wcsinfo.ra_ref": 53.16, "wcsinfo.dec_ref": -27.79,
            "wcsinfo.roll_ref": 45.0, "velocity_aberration.scale_factor": 1.00002}
    arrays = {"data": (rng.integers(0, 4000, shape) / 16.0).astype(np.float32),
              "dq": np.zeros(shape, np.uint32),
              "var_rnoise": (rng.integers(1, 64, shape) / 64.0).astype(np.float32),
              "var_poisson": (rng.integers(1, 64, shape) / 64.0).astype(np.float32),
              "err": np.ones(shape, np.float32)}
    return DataModel("rate", arrays, meta), refs


def test_golden_product_ids():
    rate, refs = _exact_inputs()
    a = assign_wcs(rate, refs, AssignWcsParams())
    f = flat_field(a, refs, FlatFieldParams())
    p = photom(f, refs, PhotomParams())
    got = {"assign_wcs": identity.product_id(a), "flat_field": identity.product_id(f),
           "photom": identity.product_id(p)}
    assert got == GOLDEN, f"an image2 step's output changed; bump its version. ids: {got}"
