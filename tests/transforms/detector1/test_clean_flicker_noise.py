"""clean_flicker_noise: lowers the row-correlated (1/f) noise on a simulated exposure."""

import numpy as np
import pytest

from d1_helpers import HAVE_SIM, ramp, same, sim_exposure, snapshot
from transforms.detector1 import clean_flicker_noise, dq_init, superbias
from transforms.detector1.clean_flicker_noise import CleanFlickerNoiseParams

pytestmark = pytest.mark.skipif(not HAVE_SIM, reason="needs transforms.sim")


def _row_power(model, light_dn_per_group, bg):
    """Variance of the per-row medians of each group difference minus its true signal."""
    d = np.diff(model["data"][0].astype(np.float64), axis=0) - light_dn_per_group[None]
    d = np.where(bg[None], d, np.nan)
    return float(np.mean([np.nanvar(np.nanmedian(x, axis=1)) for x in d]))


def _exposure():
    from transforms.sim import readout
    from transforms.sim.detector import Effects
    sub = readout.subarray("NIRCAM", "SUB160")
    rate = np.full((160, 160), 200.0)
    yy, xx = np.mgrid[:160, :160]
    for y0, x0 in ((40, 50), (110, 120), (80, 20)):
        rate += 2e5 * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / (2 * 2.0 ** 2))
    eff = Effects.noiseless(read_noise=True, one_over_f=True, one_over_f_rms=3.0)
    uncal, refs, truth, props, tim = sim_exposure(sub, "RAPID", ngroups=6, effects=eff,
                                                  rate_e=rate)
    model = dq_init.apply(uncal, refs, dq_init.DQInitParams())
    model = superbias.apply(model, refs, superbias.SuperbiasParams())
    per_group = (truth.light_rate_dn + truth.dark_rate_dn) * tim.tgroup
    return model, per_group, rate < 300


def test_lowers_row_correlated_noise_and_keeps_sources():
    model, per_group, bg = _exposure()
    before = snapshot(model)
    out = clean_flicker_noise.apply(model, {}, CleanFlickerNoiseParams())
    assert same(model, before) and out.get("cal_step.clean_flicker_noise") == "COMPLETE"
    p0, p1 = _row_power(model, per_group, bg), _row_power(out, per_group, bg)
    assert p1 < 0.2 * p0, (p0, p1)
    src = ~bg
    gain_before = np.diff(model["data"][0], axis=0)[:, src].mean()
    gain_after = np.diff(out["data"][0], axis=0)[:, src].mean()
    assert abs(gain_after - gain_before) < 0.01 * abs(gain_before)  # sources not eaten
    assert np.array_equal(out["data"][0, 0], model["data"][0, 0])  # group 0 untouched


def test_fit_by_channel_and_no_background_run_and_unsupported_options_are_refused():
    data = np.random.default_rng(0).normal(0, 1, (1, 3, 16, 16)).astype(np.float32)
    out = clean_flicker_noise.apply(ramp(data), {}, CleanFlickerNoiseParams(
        fit_by_channel=True, background_method=None))
    assert np.isfinite(out["data"]).all()
    with pytest.raises(NotImplementedError, match="fit_method"):
        clean_flicker_noise.apply(ramp(data), {}, CleanFlickerNoiseParams(fit_method="fft"))
    with pytest.raises(ValueError, match="flat"):
        clean_flicker_noise.apply(ramp(data), {}, CleanFlickerNoiseParams(apply_flat_field=True))
    one = clean_flicker_noise.apply(ramp(data[:, :1]), {}, CleanFlickerNoiseParams())
    assert one.get("cal_step.clean_flicker_noise") == "SKIPPED"
