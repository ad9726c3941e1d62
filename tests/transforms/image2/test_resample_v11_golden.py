"""Golden product id of resample 1.1 (interpolated pixel map, column-wise kernel), and its
agreement with 1.0 on the same golden input.

Same fixed input and the same canonical form as resample 1.0's golden (test_image2_golden.py:
12 significant bits of every float absorb the ~1e-9 relative cross-CPU noise of the WCS round
trip). The 12 x 10 input is large enough for 1.1 to interpolate its map (a coarse step of 3
pixels, 5 x 5 nodes), so the golden pins the interpolating path, not the exact fallback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

_HERE = str(Path(__file__).resolve().parents[1])  # tests/transforms: the shared golden table
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from golden_ids import canonical, check, ids_of  # noqa: E402
from test_image2_golden import RESAMPLE_CANON, _resample_input  # noqa: E402

from transforms.image2 import resample as v10  # noqa: E402
from transforms.image2 import resample_v11 as v11  # noqa: E402

identity = pytest.importorskip("store.identity")

# The keys of tests/transforms/golden_ids.py this file pins (read by test_golden_registry.py).
PINNED = ("resample==1.1",)


def test_resample_v11_golden_product_id():
    cal = _resample_input()
    out = v11.resample(cal, {}, v11.ResampleParams())
    assert out.kind == "i2d" and out.get("cal_step.resample") == "COMPLETE"
    assert out.get("resample.pixmap_stepsize") > 1  # the map was interpolated
    assert out.get("resample.pixmap_order") == 3
    assert np.isfinite(out["data"]).sum() > 0.8 * cal["data"].size
    check({"resample==1.1": ids_of(out, RESAMPLE_CANON)}, PINNED)
    again = v11.resample(cal, {}, v11.ResampleParams())
    assert identity.product_id(again) == identity.product_id(out), "resample 1.1 is not " \
        "deterministic"


def test_resample_v11_agrees_with_v10_on_the_golden_input():
    """Same coverage, context and grid; data, weights and variances within 1e-6 relative
    (the interpolated map is within ~1e-9 output pixel of the exact one here)."""
    cal = _resample_input()
    a = v10.resample(cal, {}, v10.ResampleParams())
    b = v11.resample(cal, {}, v11.ResampleParams())
    assert set(a.arrays) == set(b.arrays)
    for k, v in a.meta.items():
        assert b.meta[k] == v, k
    np.testing.assert_array_equal(a["con"], b["con"])
    for name in ("data", "wht", "err", "var_rnoise", "var_poisson"):
        x, y = np.asarray(a[name]), np.asarray(b[name])
        assert np.array_equal(np.isnan(x), np.isnan(y)), name
        ok = np.isfinite(x)
        np.testing.assert_allclose(y[ok], x[ok], rtol=1e-6, atol=1e-6 * np.max(np.abs(x[ok])),
                                   err_msg=name)


def test_resample_v11_canonical_form_still_sees_a_small_change():
    cal = _resample_input()
    data = np.array(cal["data"])
    data[6, 5] *= np.float32(1.005)
    a = v11.resample(cal, {}, v11.ResampleParams())
    b = v11.resample(cal.replace(arrays={"data": data}), {}, v11.ResampleParams())
    assert not np.array_equal(canonical(a, RESAMPLE_CANON)["data"],
                              canonical(b, RESAMPLE_CANON)["data"])
