"""Golden product ids of jump, ramp_fit (rate and rateints) and gain_scale on a small fixed
ramp: any change of their output for the same input fails here, and must come with a version
bump of the step (DESIGN.md, "Identity"). The ids live in tests/transforms/golden_ids.py."""

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
from transforms.detector1 import gain_scale, jump, ramp_fit, ramp_fit_v11  # noqa: E402
from transforms.model import DataModel  # noqa: E402

identity = pytest.importorskip("store.identity", reason="product ids come from store.identity")

# The keys of tests/transforms/golden_ids.py this file pins (read by test_golden_registry.py);
# ramp_fit's registered output is the rate product, its rateints is pinned as an extra.
PINNED = ("jump==1.0", "ramp_fit==1.0", "ramp_fit==1.0#rateints", "gain_scale==1.0",
          "ramp_fit==1.1", "ramp_fit==1.1#rateints")


def _inputs():
    rng = np.random.default_rng(2024)
    nints, ngroups, ny, nx = 2, 6, 12, 10
    tg = 10.73677
    rate = rng.uniform(0.0, 80.0, (ny, nx))
    data = 1000.0 + rate * tg * np.arange(1, ngroups + 1)[None, :, None, None]
    data = data + rng.normal(0.0, 7.0, (nints, ngroups, ny, nx))
    for i, g, y, x in zip(*np.nonzero(rng.random((nints, ngroups, ny, nx)) < 0.05)):
        if g:
            data[i, g:, y, x] += rng.uniform(50.0, 500.0)
    gdq = np.zeros(data.shape, np.uint8)
    gdq[np.maximum.accumulate(data >= 4500.0, axis=1)] = DQ.SATURATED
    gdq[1, 2, 3, :] |= DQ.DO_NOT_USE
    pdq = np.zeros((ny, nx), np.uint32)
    pdq[5, 5] = DQ.DEAD | DQ.DO_NOT_USE
    meta = {"exposure.frame_time": tg, "exposure.group_time": tg, "exposure.nframes": 1,
            "exposure.groupgap": 0, "instrument.name": "NIRCAM"}
    ramp = DataModel("ramp", {"data": data.astype(np.float32), "groupdq": gdq, "pixeldq": pdq},
                     meta)
    gain = rng.uniform(1.9, 2.1, (ny, nx)).astype(np.float32)
    rn = rng.uniform(9.0, 11.0, (ny, nx)).astype(np.float32)
    refs = {"gain": DataModel("ref.gain", {"data": gain}, {"exposure.gain_factor": 1.25}),
            "readnoise": DataModel("ref.readnoise", {"data": rn})}
    return ramp, refs


def _outputs():
    ramp, refs = _inputs()
    j = jump.apply(ramp, refs, jump.JumpParams())
    rate, rateints = ramp_fit.fit_ramps(j, refs, ramp_fit.RampFitParams())
    g = gain_scale.apply(rate, refs, gain_scale.GainScaleParams())
    assert np.any(j["groupdq"] & DQ.JUMP_DET) and g.get("cal_step.gain_scale") == "COMPLETE"
    # 1.1 differs from 1.0 only where the read noise is not finite: pin it on such an input
    rn = np.array(refs["readnoise"]["data"])
    rn[2, 3] = np.nan
    refs11 = {**refs, "readnoise": DataModel("ref.readnoise", {"data": rn})}
    rate11, rateints11 = ramp_fit_v11.fit_ramps(j, refs11, ramp_fit.RampFitParams())
    assert rate11["dq"][2, 3] & DQ.DO_NOT_USE
    return {"jump==1.0": j, "ramp_fit==1.0": rate, "ramp_fit==1.0#rateints": rateints,
            "gain_scale==1.0": g, "ramp_fit==1.1": rate11, "ramp_fit==1.1#rateints": rateints11}


def test_golden_product_ids():
    check({k: identity.product_id(m) for k, m in _outputs().items()}, PINNED)
