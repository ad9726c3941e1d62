"""Golden product ids of the detector1 steps written here: a silent change to a step's output
fails this test (then bump the step's version and re-pin).

Inputs are integer-derived and the steps use IEEE-exact arithmetic (+ - * / sqrt, medians), so
the ids do not depend on the CPU. The ids were produced by running this file's ``_outputs``.
"""

from __future__ import annotations

import numpy as np
import pytest

from transforms import dq as DQ
from transforms import registry
from transforms.model import DataModel

identity = pytest.importorskip("store.identity", reason="product ids come from store.identity")

GOLDEN = {
    "group_scale":
        "sha256:8fb48b7f096d1e1c9dbd502d5183eab5626f63e6232452810c173cc1e4b811db",
    "dq_init":
        "sha256:75972c50bdd2954ccb8cda5943df7df29684fa738f49c95a20f8b4ba2d194557",
    "saturation":
        "sha256:2bcd12384d0da73b209c49d674cb0d3ea45119266b3018a975dddf76a510e7d7",
    "superbias":
        "sha256:064a38fc28bad458214ef7de7d39ff60722786aabbc4c8a0a9002cf5b8880478",
    "refpix":
        "sha256:b0000007366e995de853645f4693e62317462839360ee3a443b458d1315e4c20",
    "linearity":
        "sha256:7319bc63fd45c90f8dbcf72aeea8732617dd0d6afb85f12d4339df84d10e27cb",
    "dark_current":
        "sha256:4bfeb3786e66191298982dc9af2108b8a66f50ecfbb65ee42a9e34be64b1c455",
    "charge_migration":
        "sha256:2233aa753477f108b2ce5e7eb973294db94aba0cbb8948e00c4eb3ae9aee9fd3",
    "clean_flicker_noise":
        "sha256:71062d96909a3eeceb1c22d28d13da7924bbdb0f493f8f36c14df3e073cd1d69",
}


def _inputs():
    rng = np.random.default_rng(42)
    nints, ngroups, ny, nx = 1, 4, 12, 10
    slope = rng.integers(0, 3000, (ny, nx))
    data = np.stack([1000 + slope * (g + 1) + rng.integers(0, 20, (ny, nx))
                     for g in range(ngroups)])[None].astype(np.uint16)
    mask = np.zeros((16, 16), np.uint32)
    mask[:4, :] = mask[:, :4] = DQ.REFERENCE_PIXEL
    mask[7, 7] = DQ.DEAD | DQ.DO_NOT_USE
    coeffs = np.zeros((3, 16, 16), np.float32)
    coeffs[1] = 1.0
    coeffs[2] = rng.integers(0, 8, (16, 16)) / 2.0**20
    mk = lambda kind, **a: DataModel(f"ref.{kind}", a, {"reftype": kind})  # noqa: E731
    refs = {
        "mask": mk("mask", dq=mask),
        "saturation": mk("saturation", data=np.full((16, 16), 9000.0, np.float32),
                         dq=np.zeros((16, 16), np.uint32)),
        "superbias": mk("superbias", data=(900 + rng.integers(0, 64, (16, 16))).astype(
            np.float32), dq=np.zeros((16, 16), np.uint32)),
        "linearity": mk("linearity", coeffs=coeffs, dq=np.zeros((16, 16), np.uint32)),
        "dark": mk("dark", data=(np.arange(1, 11)[:, None, None] * np.ones((16, 16)) / 8.0
                                 ).astype(np.float32)).replace(meta={"exposure.nframes": 1}),
    }
    meta = {"instrument.name": "NIRCAM", "instrument.detector": "NRCA1",
            "exposure.nframes": 3, "exposure.frame_divisor": 2, "exposure.groupgap": 1,
            "exposure.ngroups": ngroups, "exposure.nints": nints, "subarray.xstart": 1,
            "subarray.ystart": 1, "subarray.xsize": nx, "subarray.ysize": ny}
    return DataModel("uncal", {"data": data}, meta), refs


def _outputs():
    uncal, refs = _inputs()
    model, ids = uncal, {}
    for name in GOLDEN:
        spec = registry.get(name, "1.0")
        params = spec.make_params({"signal_threshold": 5000.0} if name == "charge_migration"
                                  else None)
        model = spec.apply(model, refs, params)
        assert model.get(f"cal_step.{name}") == "COMPLETE", name  # every step did something
        ids[name] = identity.product_id(model)
    return ids


def test_golden_product_ids():
    got = _outputs()
    assert got == GOLDEN, f"a detector1 step's output changed; bump its version. ids: {got}"
