"""Golden product ids: a silent change to an image2 step's output fails here (bump its version).

Inputs use only integer-derived values and IEEE-exact arithmetic (+ - * / sqrt), so the pinned
ids do not depend on the CPU's transcendental-function implementation. assign_wcs pins its
metadata (the WCS inputs and an S_REGION at 1e-9 deg).

resample is pinned by its CANONICAL id (``golden_ids.canonical`` with ``RESAMPLE_CANON``): the
sky -> pixel round trip through an RA of 53 deg turns last-bit differences of the BLAS kernels
(measured: OpenBLAS Sandybridge/Prescott vs SkylakeX/Haswell/Zen) into ~1e-9 relative changes of
the drizzle overlaps, so ~3% of the float32 pixels and the grid meta (crpix, rotation: 2.5e-10
relative) differ in the last bits between machines. Every float (float32 arrays included) is
rounded to 12 significant bits (2.4e-4 relative) before hashing; a 0.5% change of one input
pixel still shows (test below). The ids live in ``tests/transforms/golden_ids.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from image2_helpers import make_refs

_HERE = str(Path(__file__).resolve().parents[1])  # tests/transforms: the shared golden table
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from golden_ids import Canon, check, ids_of  # noqa: E402

from transforms import dq as DQ  # noqa: E402
from transforms.image2.assign_wcs import AssignWcsParams, assign_wcs  # noqa: E402
from transforms.image2.flat_field import FlatFieldParams, flat_field  # noqa: E402
from transforms.image2.photom import PhotomParams, photom  # noqa: E402
from transforms.image2.resample import ResampleParams, resample  # noqa: E402
from transforms.model import DataModel  # noqa: E402
from transforms.wcs import wcs_meta  # noqa: E402

identity = pytest.importorskip("store.identity")

# The keys of tests/transforms/golden_ids.py this file pins (read by test_golden_registry.py).
PINNED = ("assign_wcs==1.0", "flat_field==1.0", "photom==1.0", "resample==1.0")


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
    check({"assign_wcs==1.0": identity.product_id(a), "flat_field==1.0": identity.product_id(f),
           "photom==1.0": identity.product_id(p)})


# 12 significant bits (relative 2.4e-4) of every float, float32 arrays included: see the module
# docstring for the measured cross-CPU noise this absorbs.
RESAMPLE_CANON = Canon(bits=12, float32=True)


def _resample_input() -> DataModel:
    """The exact rate as a cal with its WCS meta (built by transforms.wcs, not by assign_wcs,
    so an assign_wcs change does not fail this golden) and two unusable pixels."""
    rate, refs = _exact_inputs()
    dq = np.zeros(rate.shape, np.uint32)
    dq[4, 6] = DQ.DO_NOT_USE
    dq[8, 2] = DQ.DO_NOT_USE | DQ.SATURATED
    return rate.replace(kind="cal", arrays={"dq": dq},
                        meta=wcs_meta(rate.meta, refs["distortion"], rate.shape))


def test_resample_golden_product_id():
    cal = _resample_input()
    out = resample(cal, {}, ResampleParams())
    assert out.kind == "i2d" and out.get("cal_step.resample") == "COMPLETE"
    assert np.isfinite(out["data"]).sum() > 0.8 * cal["data"].size  # it drizzled the image
    check({"resample==1.0": ids_of(out, RESAMPLE_CANON)})
    # deterministic on one machine: a second run gives the same exact id
    again = resample(cal, {}, ResampleParams())
    assert identity.product_id(again) == identity.product_id(out), "resample is not deterministic"


def test_resample_canonical_form_still_sees_a_small_change():
    """12 significant bits absorb CPU noise (~1e-9 relative) but not a real change: one input
    pixel 0.5% brighter changes the canonicalised drizzled data."""
    from golden_ids import canonical

    cal = _resample_input()
    data = np.array(cal["data"])
    data[6, 5] *= np.float32(1.005)
    a = resample(cal, {}, ResampleParams())
    b = resample(cal.replace(arrays={"data": data}), {}, ResampleParams())
    assert not np.array_equal(canonical(a, RESAMPLE_CANON)["data"],
                              canonical(b, RESAMPLE_CANON)["data"])
