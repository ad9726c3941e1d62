"""gain_scale: JWST's rescaling by GAINFACT, or SKIPPED."""

from __future__ import annotations

import numpy as np
import pytest

from transforms.detector1.gain_scale import GainScaleParams, apply
from transforms.model import DataModel
from transforms.registry import get


def _rate(kind="rate", shape=(3, 4), **meta):
    rng = np.random.default_rng(0)
    arrays = {k: rng.random(shape).astype(np.float32)
              for k in ("data", "err", "var_poisson", "var_rnoise")}
    arrays["dq"] = np.zeros(shape, np.uint32)
    return DataModel(kind, arrays, meta)


def test_scales_from_product_metadata_and_matches_jwst_formula():
    m = _rate(**{"exposure.gain_factor": 1.9})
    out = apply(m, {}, GainScaleParams())
    assert out.get("cal_step.gain_scale") == "COMPLETE"
    np.testing.assert_array_equal(out["data"], m["data"] * np.float32(1.9))
    np.testing.assert_array_equal(out["err"], m["err"] * np.float32(1.9))
    np.testing.assert_array_equal(out["var_poisson"], m["var_poisson"] * np.float32(1.9 ** 2))
    np.testing.assert_array_equal(out["dq"], m["dq"])
    assert not np.shares_memory(out["data"], m["data"])


def test_factor_from_gain_reference_and_rateints():
    m = _rate("rateints", (2, 3, 4))
    ref = DataModel("ref.gain", {"data": np.ones((3, 4), np.float32)},
                    {"exposure.gain_factor": 2.0})
    out = apply(m, {"gain": ref}, GainScaleParams())
    np.testing.assert_array_equal(out["var_rnoise"], m["var_rnoise"] * 4)
    assert out.get("exposure.gain_factor") == 2.0


def test_skipped_without_factor_and_bad_kind():
    m = _rate()
    out = apply(m, {"gain": DataModel("ref.gain", {"data": np.ones((3, 4))})}, GainScaleParams())
    assert out.get("cal_step.gain_scale") == "SKIPPED"
    assert out["data"] is m["data"] or np.shares_memory(out["data"], m["data"])
    with pytest.raises(ValueError, match="rate"):
        apply(DataModel("ramp", {"data": np.zeros((1, 1, 1, 1))}), {}, GainScaleParams())
    assert get("gain_scale").reftypes == ("gain",)


def test_matches_jwst_do_correction():
    pytest.importorskip("jwst")
    from jwst.gain_scale.gain_scale import do_correction
    from stdatamodels.jwst.datamodels import ImageModel

    m = _rate(**{"exposure.gain_factor": 1.37})
    jm = ImageModel(data=m["data"].copy(), err=m["err"].copy(),
                    var_poisson=m["var_poisson"].copy(), var_rnoise=m["var_rnoise"].copy())
    jm = do_correction(jm, 1.37)
    out = apply(m, {}, GainScaleParams())
    for k in ("data", "err", "var_poisson", "var_rnoise"):
        np.testing.assert_array_equal(out[k], getattr(jm, k))
