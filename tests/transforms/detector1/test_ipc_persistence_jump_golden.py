"""Golden product ids of ipc 1.0, persistence 1.0 and jump 1.1 on small fixed inputs: a change
of their output for the same input fails here and must come with a version bump (DESIGN.md,
"Identity"). The ids live in tests/transforms/golden_ids.py.

Inputs are integer-derived; ipc is float32 products and sums in a fixed order, persistence
float64 epoch arithmetic, and jump 1.1's input is built so that every statistic is far from
its threshold (clean ramps with a +-2 DN pattern, jumps of hundreds of DN), so the last bits
of the eigen-decomposition (LAPACK) cannot flip a flag: the ids do not depend on the CPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

_HERE = str(Path(__file__).resolve().parents[1])  # tests/transforms: the shared golden table
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from golden_ids import check  # noqa: E402

from transforms import dq as DQ  # noqa: E402
from transforms import registry  # noqa: E402
from transforms.model import DataModel  # noqa: E402

identity = pytest.importorskip("store.identity", reason="product ids come from store.identity")

PINNED = ("ipc==1.0", "persistence==1.0", "jump==1.1")  # read by test_golden_registry.py


def _ramp():
    nints, ngroups, ny, nx = 2, 6, 12, 10
    yy, xx = np.mgrid[0:ny, 0:nx]
    slope = (yy * 7 + xx * 3) % 40  # DN per group
    pattern = np.array([2, -2, 1, -1, 2, -2])  # a small, fixed read-noise stand-in
    g = np.arange(ngroups)
    data = (1000 + slope[None, None] * (g + 1)[None, :, None, None]
            + pattern[None, :, None, None] * ((xx + yy) % 2 * 2 - 1)[None, None])
    data = np.repeat(data, nints, axis=0).astype(np.float32)
    data[0, 3:, 4, 4] += 600.0  # a jump
    data[1, 2:, 7, 2] += 350.0  # a hit shared by two differences (nframes 4)
    data[1, 3:, 7, 2] += 350.0
    data[0, 1:, 9, 8] += 900.0
    gdq = np.zeros(data.shape, np.uint8)
    gdq[:, 4:, 2, 6] = DQ.SATURATED
    gdq[1, 5, 0, :] |= DQ.DO_NOT_USE
    pdq = np.zeros((ny, nx), np.uint32)
    pdq[6, 6] = DQ.DEAD | DQ.DO_NOT_USE
    meta = {"instrument.name": "NIRCAM", "instrument.detector": "NRCA1",
            "exposure.nframes": 4, "exposure.groupgap": 1, "exposure.frame_time": 10.73677,
            "exposure.group_time": 5 * 10.73677, "exposure.ngroups": ngroups,
            "exposure.nints": nints, "exposure.integration_time": 6 * 5 * 10.73677,
            "exposure.start_time": 60000.25, "subarray.xstart": 1, "subarray.ystart": 1,
            "subarray.xsize": nx, "subarray.ysize": ny}
    return DataModel("ramp", {"data": data, "groupdq": gdq, "pixeldq": pdq}, meta)


def _outputs():
    ramp = _ramp()
    ny, nx = ramp["data"].shape[-2:]
    ids = {}
    kern = np.array([[-1, -12, -1], [-11, 1060, -11], [-1, -12, -1]], np.float32) / 1024.0
    ipc = registry.get("ipc", "1.0")
    out = ipc.apply(ramp, {"ipc": DataModel("ref.ipc", {"data": kern}, {})}, ipc.make_params())
    assert out.get("cal_step.ipc") == "COMPLETE"
    ids["ipc==1.0"] = identity.product_id(out)
    pers = registry.get("persistence", "1.0")
    out = pers.apply(ramp, {}, pers.make_params({"persistence_time": 200,
                                                  "dn_threshold": 1350.0}))
    assert np.any(out["groupdq"] & DQ.PERSISTENCE)
    ids["persistence==1.0"] = identity.product_id(out)
    jump = registry.get("jump", "1.1")
    yy, xx = np.mgrid[0:ny, 0:nx]
    refs = {"gain": DataModel("ref.gain", {"data": (2.0 + (yy + xx) % 3 / 16).astype(
                np.float32)}),
            "readnoise": DataModel("ref.readnoise", {"data": (10.0 + (yy * xx) % 5 / 4).astype(
                np.float32)})}
    out = jump.apply(ramp, refs, jump.make_params())
    flags = (out["groupdq"] & DQ.JUMP_DET) != 0
    assert flags[0, 3, 4, 4] and flags[0, 1, 9, 8] and flags[1, 2, 7, 2] and flags[1, 3, 7, 2]
    ids["jump==1.1"] = identity.product_id(out)
    return ids


def test_golden_product_ids():
    check(_outputs(), PINNED)
