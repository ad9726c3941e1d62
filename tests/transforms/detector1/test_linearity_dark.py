"""linearity (vs stcal and the simulator's non-linearity) and dark_current averaging."""

import numpy as np
import pytest

from d1_helpers import HAVE_SIM, SAT, ramp, ref, same, snapshot
from transforms import dq as DQ
from transforms.detector1 import dark_current, linearity
from transforms.detector1.dark_current import DarkCurrentParams
from transforms.detector1.linearity import LinearityParams


def _coeffs(ny, nx, seed=0):
    rng = np.random.default_rng(seed)
    c = np.zeros((4, ny, nx), np.float32)
    c[1] = 1.0
    c[2] = rng.uniform(1e-6, 4e-6, (ny, nx))
    c[3] = rng.uniform(0, 2e-11, (ny, nx))
    return c


def test_linearity_matches_stcal_including_nan_zero_and_flagged_coefficients():
    stcal_lin = pytest.importorskip("stcal.linearity.linearity", reason="test-only reference")
    rng = np.random.default_rng(2)
    ny, nx = 11, 9
    data = np.sort(rng.uniform(0, 40000, (2, 5, ny, nx)), axis=1).astype(np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    gdq[0, 3:, 2, 2] = SAT
    c = _coeffs(ny, nx)
    c[2, 4, 4] = np.nan
    c[1, 5, 5] = 0.0
    ldq = np.zeros((ny, nx), np.uint32)
    ldq[6, 6] = DQ.NO_LIN_CORR
    model = ramp(data, gdq)
    before = snapshot(model)
    out = linearity.apply(model, {"linearity": ref("linearity", coeffs=c, dq=ldq)},
                          LinearityParams())
    assert same(model, before)
    exp, pdq, _ = stcal_lin.linearity_correction(data.copy(), gdq.copy(),
                                                 np.zeros((ny, nx), np.uint32), c.copy(),
                                                 ldq.copy(), DQ.PIXEL)
    np.testing.assert_allclose(out["data"], exp, rtol=2e-6, atol=1e-3)
    assert np.array_equal(out["pixeldq"], pdq)
    for y, x in ((4, 4), (5, 5), (6, 6)):
        assert out["pixeldq"][y, x] & DQ.NO_LIN_CORR
        assert np.array_equal(out["data"][:, :, y, x], data[:, :, y, x])
    assert np.array_equal(out["data"][0, 3:, 2, 2], data[0, 3:, 2, 2])  # saturated: untouched


@pytest.mark.skipif(not HAVE_SIM, reason="needs transforms.sim")
def test_linearity_inverts_the_simulators_nonlinearity():
    from transforms.sim.detector import invert_linearity
    c = _coeffs(8, 8, seed=4)
    truth = np.linspace(100, 45000, 64, dtype=np.float32).reshape(8, 8)
    raw = invert_linearity(truth, c)
    out = linearity.apply(ramp(raw[None, None]), {"linearity": ref("linearity", coeffs=c)},
                          LinearityParams())
    np.testing.assert_allclose(out["data"][0, 0], truth, rtol=1e-5, atol=0.05)
    assert np.abs(raw - truth).max() > 100  # the non-linearity was not negligible


@pytest.mark.parametrize("nframes,groupgap", [(1, 0), (8, 2), (8, 12), (2, 3)])
def test_dark_is_averaged_to_the_readout_pattern(nframes, groupgap):
    ny, nx, ngroups, tframe = 5, 6, 4, 10.0
    rate = np.random.default_rng(3).uniform(0.001, 0.5, (ny, nx)).astype(np.float32)
    nd = ngroups * (nframes + groupgap)
    frames = (tframe * np.arange(1, nd + 1)[:, None, None] * rate[None]).astype(np.float32)
    dark = DataModel_dark(frames)
    model = ramp(np.zeros((1, ngroups, ny, nx)), **{"exposure.nframes": nframes,
                                                      "exposure.groupgap": groupgap})
    out = dark_current.apply(model, {"dark": dark}, DarkCurrentParams())
    t = tframe * (np.arange(ngroups) * (nframes + groupgap) + (nframes + 1) / 2)
    np.testing.assert_allclose(-out["data"][0], t[:, None, None] * rate[None], rtol=1e-5)
    assert out.get("cal_step.dark_current") == "COMPLETE"


def DataModel_dark(frames, nframes=1, groupgap=0, dq=None):
    arrays = {"data": frames}
    if dq is not None:
        arrays["dq"] = dq
    m = ref("dark", **arrays)
    return m.replace(meta={"exposure.nframes": nframes, "exposure.groupgap": groupgap})


def test_short_dark_is_extrapolated_nan_is_zero_and_dq_is_ored():
    frames = np.stack([np.full((3, 3), 2.0 * k, np.float32) for k in (1, 2)])
    frames[:, 0, 0] = np.nan
    ddq = np.zeros((3, 3), np.uint32)
    ddq[1, 1] = DQ.HOT
    model = ramp(np.zeros((1, 4, 3, 3)))
    before = snapshot(model)
    out = dark_current.apply(model, {"dark": DataModel_dark(frames, dq=ddq)},
                             DarkCurrentParams())
    np.testing.assert_allclose(-out["data"][0, :, 1, 2], [2, 4, 6, 8])
    assert np.all(out["data"][0, :, 0, 0] == 0)
    assert out["pixeldq"][1, 1] == DQ.HOT
    assert same(model, before)


def test_dark_with_coarser_sampling_than_science_is_skipped():
    frames = np.ones((4, 3, 3), np.float32)
    out = dark_current.apply(ramp(np.zeros((1, 2, 3, 3))),
                             {"dark": DataModel_dark(frames, nframes=4)}, DarkCurrentParams())
    assert out.get("cal_step.dark_current") == "SKIPPED" and not out["data"].any()
