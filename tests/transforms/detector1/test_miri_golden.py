"""Golden product ids of the MIRI detector1 steps: a silent change to a step's output fails here
(then bump the step's version and re-pin in tests/transforms/golden_ids.py).

Each step is applied to one fixed, integer-derived MIRI ramp (2 integrations, 7 groups, 8x12,
some pixels saturating) with small hand-made references. The flagging steps and reset use exact
arithmetic, so their ids are exact. emicorr evaluates a cubic spline and a parabola fit (LAPACK:
CPU-dependent last bits, far below float32's), so its output is pinned in canonical form:
float32 and float64 values rounded to 20 significant bits.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

_HERE = str(Path(__file__).resolve().parents[1])  # tests/transforms: the shared golden table
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from golden_ids import Canon, canonical, check  # noqa: E402

from transforms import dq as DQ  # noqa: E402
from transforms import registry  # noqa: E402
from transforms.model import DataModel  # noqa: E402

identity = pytest.importorskip("store.identity", reason="product ids come from store.identity")

STEPS = ("emicorr", "firstframe", "lastframe", "reset", "rscd")
VERSION = "1.0"
PINNED = tuple(f"{name}=={VERSION}" for name in STEPS)  # read by test_golden_registry.py
EMI_CANON = Canon(bits=20, float32=True)
# An integer waveform (exact in float32), 12 samples per period of 48 clocks.
WAVE = np.array([0, 3, 5, 6, 5, 3, 0, -3, -5, -6, -5, -3], np.float32)


def _inputs():
    rng = np.random.default_rng(2024)
    nints, ng, ny, nx = 2, 7, 8, 12
    slope = rng.integers(0, 400, (ny, nx))
    g = np.arange(ng)[None, :, None, None]
    t = np.arange(ny)[:, None] * 20 + (np.arange(nx) // 4)[None, :]  # rowclocks 20
    frame = ny * 20 + (1024 - ny) * 7
    clocks = t[None, None] + (np.arange(nints)[:, None, None, None] * ng + g) * frame
    emi = WAVE[(clocks % 48) // 4]
    data = (11000 + slope * (g + 1) + rng.integers(0, 8, (nints, ng, ny, nx)) + emi)
    gdq = np.zeros(data.shape, np.uint8)
    gdq[:, 2:, 1, 1] = DQ.SATURATED  # saturates by group 3: firstframe keeps its group 1
    gdq[1, 4:, 2, 5] = DQ.SATURATED  # rscd backs off in integration 2
    pdq = np.zeros((ny, nx), np.uint32)
    pdq[0, 0] = DQ.DO_NOT_USE | DQ.DEAD
    meta = {"instrument.name": "MIRI", "instrument.detector": "MIRIMAGE",
            "exposure.type": "MIR_IMAGE", "exposure.readpatt": "FAST", "exposure.nsamples": 1,
            "exposure.nframes": 1, "exposure.groupgap": 0, "exposure.ngroups": ng,
            "exposure.nints": nints, "exposure.frame_time": 0.1, "exposure.group_time": 0.1,
            "subarray.name": "MASK1550", "subarray.xstart": 1, "subarray.ystart": 467,
            "subarray.xsize": nx, "subarray.ysize": ny}
    model = DataModel("ramp", {"data": data.astype(np.float32), "groupdq": gdq,
                               "pixeldq": pdq}, meta)
    mk = lambda kind, arrays, **m: DataModel(f"ref.{kind}", arrays, {"reftype": kind, **m})  # noqa
    refs = {
        "emicorr": mk("emicorr", {"frequencies.G.phase_amplitudes": WAVE},
                      **{"frequencies.G.frequency": 1.0 / (48 * 10e-6),
                         "subarray_cases": {"MASK1550": {"rowclocks": 20, "frameclocks": frame,
                                                         "freqs": {"FAST": ["G"]}}}}),
        "reset": mk("reset", {"data": (rng.integers(-64, 64, (2, 4, ny, nx)) / 4.0).astype(
            np.float32), "dq": np.where(np.arange(ny * nx).reshape(ny, nx) == 7, 1, 0).astype(
            np.uint32)}, **{"exposure.nints": 2, "exposure.ngroups": 4}),
        "rscd": mk("rscd", {"rscd_group_skip_table.subarray": np.array(["MASK1550", "FULL"]),
                            "rscd_group_skip_table.readpatt": np.array(["FAST", "FAST"]),
                            "rscd_group_skip_table.group_skip1": np.array([1, 1], np.int32),
                            "rscd_group_skip_table.group_skip": np.array([3, 4], np.int32)}),
    }
    return model, refs


def _outputs():
    model, refs = _inputs()
    ids = {}
    for name in STEPS:
        spec = registry.get(name, VERSION)
        out = spec.apply(model, refs, spec.make_params())
        assert out.get(f"cal_step.{name}") == "COMPLETE", name  # every step did something
        changed = [k for k in out.arrays if not np.array_equal(out[k], model[k])]
        assert changed, f"{name} changed nothing"
        ids[f"{name}=={VERSION}"] = identity.product_id(
            canonical(out, EMI_CANON) if name == "emicorr" else out)
    return ids


def test_golden_product_ids():
    check(_outputs(), PINNED)
