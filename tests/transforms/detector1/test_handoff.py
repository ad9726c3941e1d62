"""detector1 given its uncal as a Handoff: the same products, and the chain holds the uncal
no longer than the conversion to its ramp buffer (the caller keeps nothing of it)."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from transforms.detector1 import default_plan, run
from transforms.model import DataModel, Handoff
from transforms.sim import references as R

N = 48


def _refs():
    props = R.detector_properties("NRCA1", 2)
    ua = "2022-01-01T00:00:00"
    refs = {"mask": R.mask_ref(props, ua), "saturation": R.saturation_ref(props, ua),
            "superbias": R.superbias_ref(props, ua), "linearity": R.linearity_ref(props, ua),
            "dark": R.dark_ref(props, ua, 10.73676, 4, "NRC_IMAGE"),
            "gain": R.gain_ref(props, ua), "readnoise": R.readnoise_ref(props, ua)}
    meta = {"subarray.name": "SUBX", "subarray.xstart": 1, "subarray.ystart": 1,
            "subarray.xsize": N, "subarray.ysize": N}
    return {rt: DataModel(m.kind, {k: np.ascontiguousarray(v[..., :N, :N]) if v.ndim >= 2 else v
                                   for k, v in m.arrays.items()}, {**m.meta, **meta})
            for rt, m in refs.items()}


def _uncal(seed):
    rng = np.random.default_rng(seed)
    data = (9000 + np.cumsum(rng.integers(0, 300, (1, 4, N, N)), axis=1)).astype(np.uint16)
    meta = {"instrument.name": "NIRCAM", "instrument.detector": "NRCA1",
            "exposure.readpatt": "RAPID", "exposure.nframes": 1, "exposure.groupgap": 0,
            "exposure.ngroups": 4, "exposure.nints": 1, "exposure.frame_time": 10.73676,
            "exposure.group_time": 10.73676, "subarray.name": "SUBX", "subarray.xstart": 1,
            "subarray.ystart": 1, "subarray.xsize": N, "subarray.ysize": N,
            "subarray.fastaxis": -1, "subarray.slowaxis": 2}
    return DataModel("uncal", {"data": data}, meta)


@pytest.mark.parametrize("seed", [0, 1])
def test_handoff_gives_the_same_products_and_lets_the_uncal_go(seed):
    plan = default_plan(_refs(), skip={"clean_flicker_noise": True})
    want = run(_uncal(seed), plan)
    box = Handoff(_uncal(seed))
    alive = weakref.ref(box._model.arrays["data"].base)
    seen = []

    def on_step(name, _snap):
        gc.collect()
        seen.append(alive() is not None)

    got = run(box, plan, on_step)
    assert not any(seen), "the uncal's pixels outlived the conversion to the ramp buffer"
    for name in ("rate", "rateints"):
        assert dict(got[name].meta) == dict(want[name].meta)
        for k, a in want[name].arrays.items():
            np.testing.assert_array_equal(got[name][k], a)
    with pytest.raises(ValueError, match="already taken"):
        box.take()
