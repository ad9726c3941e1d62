"""Golden product ids of jump, ramp_fit (rate and rateints) and gain_scale on a small fixed
ramp: any change of their output for the same input fails here, and must come with a version
bump of the step (DESIGN.md, "Identity")."""

from __future__ import annotations

import numpy as np
import pytest

from transforms import dq as DQ
from transforms.detector1 import gain_scale, jump, ramp_fit
from transforms.model import DataModel

identity = pytest.importorskip("store.identity", reason="product ids come from store.identity")

GOLDEN = {
    "jump": "sha256:aaa788853f2997d83d65950bd8f24fe4171fa4424afc106979bfc4e36e1fafeb",
    "rate": "sha256:5ed46daa27006f73db1a66414513ed662bd008868eaf90583e551b03e4640afd",
    "rateints": "sha256:ca030cc619ce0e1c95b6be8553d5eb471fa5f0100f68ea814d9aaf8caaf9f57f",
    "gain_scale": "sha256:2f23bd2b64b5cbbff938efe6792c6f18741bb5e6f18903fe7e1f5002a10a5b14",
}


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
    return {"jump": j, "rate": rate, "rateints": rateints, "gain_scale": g}


def test_golden_product_ids():
    got = {k: identity.product_id(m) for k, m in _outputs().items()}
    assert got == GOLDEN, "output changed: bump the step version and update GOLDEN"
