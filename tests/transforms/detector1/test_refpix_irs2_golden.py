"""Golden ids of refpix 1.1 and 0.9.

On the detector1 golden chain's input (a traditional readout) both must give refpix 1.0's
product exactly: its pinned id (not pinned again: distinct keys pin distinct ids). On a
synthetic IRS2 frame with zero Fourier coefficients (the
correction's FFTs then contribute exact zeros, so the id is CPU-independent) the ids pin the
IRS2 frame handling: bad-pair flagging, time order, slope removal, the removal of the
interleaved reference pixels and reference output, the 2048-row output. The Fourier part
itself is checked against jwst (test_nirspec_jwst.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

_HERE = str(Path(__file__).resolve().parents[1])
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from golden_ids import GOLDEN, check  # noqa: E402

from transforms import registry  # noqa: E402
from transforms.model import DataModel  # noqa: E402

identity = pytest.importorskip("store.identity", reason="product ids come from store.identity")

PINNED = ("refpix==1.1", "refpix==0.9")


def _traditional():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_detector1_golden import _inputs

    model, refs = _inputs()
    for name in ("group_scale", "dq_init", "saturation", "superbias"):
        spec = registry.get(name, "1.0")
        model = spec.apply(model, refs, spec.make_params())
    return model


def _irs2():
    """Two groups of an NRS2 IRS2 frame: integer ramps, some bad reference pairs, a DQ table."""
    rng = np.random.default_rng(2024)
    data = (5000 + rng.integers(0, 40, (1, 2, 3200, 2048))).astype(np.float32)
    data[0, 1] += rng.integers(0, 500, (3200, 2048))
    data[0, :, 1528:1530, :] += 60.0  # an intermittently bad pair (offset)
    data[0, :, 968:970, ::3] += 90.0  # and one with extra scatter
    meta = {"instrument.name": "NIRSPEC", "instrument.detector": "NRS2",
            "exposure.readpatt": "NRSIRS2RAPID", "exposure.nrs_normal": 16,
            "exposure.nrs_reference": 4, "subarray.fastaxis": -2, "subarray.slowaxis": -1,
            "subarray.xstart": 1, "subarray.ystart": 1, "subarray.xsize": 2048,
            "subarray.ysize": 2048, "exposure.ngroups": 2, "exposure.nints": 1}
    ramp = DataModel("ramp", {"data": data, "groupdq": np.zeros(data.shape, np.uint8),
                              "pixeldq": np.zeros((3200, 2048), np.uint32)}, meta)
    zeros = np.zeros(2 * 712 * 2048, np.float32)
    arrays = {f"irs2_table.{ab}_{i}": zeros for ab in ("alpha", "beta") for i in range(4)}
    arrays.update({"dq_table.OUTPUT": np.array([1, 1, 2, 2, 3, 3, 4, 4], np.uint16),
                   "dq_table.ODD_EVEN": np.array([1, 2] * 4, np.uint16),
                   "dq_table.MASK": np.array([0, 5, 1 << 31, 0, 0, 0, 1 << 7, 0], np.uint32)})
    return ramp, {"refpix": DataModel("ref.refpix", arrays, {"reftype": "refpix"})}


def _outputs():
    ids = {}
    ramp, refs = _irs2()
    for v in ("1.1", "0.9"):
        spec = registry.get("refpix", v)
        out = spec.apply(ramp, refs, spec.make_params())
        assert out["data"].shape == (1, 2, 2048, 2048) and out["pixeldq"].shape == (2048, 2048)
        ids[f"refpix=={v}"] = identity.product_id(out)
    return ids


def test_golden_product_ids():
    check(_outputs(), PINNED)


def test_traditional_readouts_give_refpix_1_0s_product():
    trad = _traditional()
    for v in ("1.1", "0.9"):
        spec = registry.get("refpix", v)
        out = spec.apply(trad, {}, spec.make_params())
        assert identity.product_id(out) == GOLDEN["refpix==1.0"], v
