"""Golden product ids of the detector1 steps written here: a silent change to a step's output
fails this test (then bump the step's version and re-pin in tests/transforms/golden_ids.py).

Inputs are integer-derived and the steps use IEEE-exact arithmetic (+ - * / sqrt, medians), so
the ids do not depend on the CPU. The ids were produced by running this file's ``_outputs``.
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

# The steps of the golden chain, in stage order; their ids live in tests/transforms/golden_ids.py
# under "name==1.0".
STEPS = ("group_scale", "dq_init", "saturation", "superbias", "refpix", "linearity",
         "dark_current", "charge_migration", "clean_flicker_noise")
VERSION = "1.0"
# Side pins on the input a chain step gets: older versions kept for archived builds, and
# charge_migration with a threshold this input reaches (at 5000 DN, in the chain, it flags
# nothing). Each must change groupdq. (golden key, step, version, parameter overrides)
SIDE = (("charge_migration==0.9", "charge_migration", "0.9", {"signal_threshold": 3000.0}),
        ("charge_migration==1.0#flagging", "charge_migration", "1.0",
         {"signal_threshold": 3000.0}))
PINNED = (tuple(f"{name}=={VERSION}" for name in STEPS)  # read by test_golden_registry.py
          + tuple(k for k, *_ in SIDE))


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
    for name in STEPS:
        for k, side_name, side_version, overrides in SIDE:
            if side_name == name:
                side = registry.get(name, side_version)
                out = side.apply(model, refs, side.make_params(overrides))
                assert np.any(out["groupdq"] != model["groupdq"]), k  # it flagged something
                ids[k] = identity.product_id(out)
        spec = registry.get(name, VERSION)
        params = spec.make_params({"signal_threshold": 5000.0} if name == "charge_migration"
                                  else None)
        model = spec.apply(model, refs, params)
        assert model.get(f"cal_step.{name}") == "COMPLETE", name  # every step did something
        ids[f"{name}=={VERSION}"] = identity.product_id(model)
    return ids


def test_golden_product_ids():
    check(_outputs(), PINNED)
