"""Ramp synthesis: noiseless ramps equal their analytic truth; events are where truth says."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from transforms.sim import readout as ro
from transforms.sim import references as rf
from transforms.sim.detector import (Effects, SimulationError, analytic_ramp, apply_linearity,
                                     ipc_forward, synthesize)

PATTERNS = [("NRCA1", p) for p in sorted(ro.PATTERNS["NIRCAM"])] + [
    ("NIS", p) for p in sorted(ro.PATTERNS["NIRISS"])] + [("NRCA5", "DEEP8")]


def _setup(pattern="RAPID", ngroups=4, nints=1, xstart=1, ystart=1, size=(24, 20), rate=40.0,
           det="NRCA1"):
    inst = rf.detector_spec(det).instrument
    sub = ro.custom_subarray(xstart, ystart, size[1], size[0])
    tim = ro.timing(inst, pattern, sub, ngroups, nints)
    props = rf.detector_properties(det, 5, sub)
    light = np.where(props.refpix, 0.0, rate).astype(np.float32)
    return sub, tim, props, light


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(PATTERNS), st.integers(1, 6), st.integers(1, 2), st.integers(1, 2040),
       st.integers(1, 2040), st.integers(1, 9), st.integers(1, 9), st.floats(0.0, 400.0))
def test_noiseless_ramp_equals_analytic_truth(dp, ngroups, nints, x0, y0, ny, nx, rate):
    det, pattern = dp
    sub, tim, props, light = _setup(pattern, ngroups, nints, x0, y0, (ny, nx), rate, det=det)
    eff = Effects.noiseless(charge_migration=False)
    data, truth = synthesize(light, props, sub, tim, np.random.default_rng(0), eff)
    assert data.shape == (nints, ngroups, ny, nx) and data.dtype == np.uint16
    expected = analytic_ramp(light, props, sub, tim, eff)
    assert np.all(np.abs(data - np.clip(expected, 0, 65535)) <= 0.5 + 1e-6)
    assert truth.cosmic_rays == () and truth.snowballs == ()


def test_linearity_reference_recovers_linear_signal():
    """The linearity polynomial applied to the raw ramp gives back rate * t / gain."""
    sub, tim, props, light = _setup("BRIGHT2", 8, 1, 5, 5, (16, 16), 5.0e5)
    eff = Effects.noiseless(bias_offsets=False, saturation=False, ipc=False)
    data, _ = synthesize(light, props, sub, tim, np.random.default_rng(0), eff)
    raw = data[0].astype(np.float64) - props.superbias
    corrected = apply_linearity(raw, props.lin_coeffs.astype(np.float64))
    t = np.array([tim.group_mean_time(g) for g in range(tim.ngroups)])
    truth = (light + props.dark_rate)[None] * t[:, None, None] / props.gain[None]
    assert np.max(raw[-1]) > 5000  # the test covers the non-linear regime
    # Rounding to whole DN (<= 0.5 DN before the polynomial) is the only difference.
    assert np.allclose(corrected, truth, atol=1.0, rtol=0)
    assert not np.allclose(raw, truth, atol=5.0)  # and the non-linearity is really there


def test_deterministic_and_inputs_untouched():
    sub, tim, props, light = _setup("MEDIUM8", 3, 2, size=(16, 16))
    before = light.copy()
    a, ta = synthesize(light, props, sub, tim, np.random.default_rng(11))
    b, tb = synthesize(light, props, sub, tim, np.random.default_rng(11))
    c, _ = synthesize(light, props, sub, tim, np.random.default_rng(12))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert ta.cosmic_rays == tb.cosmic_rays
    assert np.array_equal(light, before)


def test_cosmic_rays_appear_in_their_group():
    sub, tim, props, light = _setup("RAPID", 8, 1, 10, 10, (32, 32), 0.0)
    # the point-like hits of the 1.0 simulator, without IPC: each lands in one pixel
    eff = Effects.noiseless(cosmic_rays=True, cr_rate=0.2, cr_spill_fraction=0.0,
                            nonlinearity=False, dark=False, cr_model="point", ipc=False)
    data, truth = synthesize(light, props, sub, tim, np.random.default_rng(3), eff)
    crs = [c for c in truth.cosmic_rays if c.group > 0]
    assert len(crs) >= 5
    diff = np.diff(data[0].astype(np.float64), axis=0)
    hit = {}
    for c in truth.cosmic_rays:
        hit.setdefault((c.group, c.y, c.x), 0.0)
        hit[(c.group, c.y, c.x)] += c.amplitude_dn
    for (g, y, x), amp in hit.items():
        if g == 0 or amp > 30000:
            continue
        assert diff[g - 1, y, x] == pytest.approx(amp, abs=1.0)
    # Pixels/groups without an event do not jump.
    mask = np.ones(diff.shape, bool)
    for (g, y, x) in hit:
        if g > 0:
            mask[g - 1, y, x] = False
    assert np.all(np.abs(diff[mask]) <= 1.0)


def test_saturation_truth_matches_reference_threshold():
    sub, tim, props, light = _setup("RAPID", 10, 1, 10, 10, (8, 8), 0.0)
    light = light.copy()
    light[4, 4] = 9.0e6  # saturates within a few groups of these short frames
    eff = Effects.noiseless()
    data, truth = synthesize(light, props, sub, tim, np.random.default_rng(0), eff)
    sat = rf.saturation_ref(props, "2022-01-01T00:00:00")["data"]
    g = int(truth.saturation_group[0, 4, 4])
    assert g >= 0
    first = int(np.argmax(data[0, :, 4, 4] >= np.floor(sat[4, 4])))
    assert abs(first - g) <= 1
    assert np.all(truth.saturation_group[0][light < 1e3] == -1)


def test_niriss_charge_migration_and_bad_input():
    sub, tim, props, light = _setup("NISRAPID", 6, 1, 10, 1900, (8, 8), 0.0, det="NIS")
    light = light.copy()
    light[4, 4] = 1.0e7
    _, truth = synthesize(light, props, sub, tim, np.random.default_rng(0), Effects.noiseless())
    assert truth.migrated_pixels > 0
    with pytest.raises(SimulationError, match="non-negative"):
        synthesize(-light, props, sub, tim, np.random.default_rng(0))


def test_snowballs_saturate_their_core_from_their_group():
    sub, tim, props, light = _setup("RAPID", 6, 1, 100, 100, (40, 40), 0.0)
    eff = Effects.noiseless(snowballs=True, snowball_rate=2e-2, dark=False)
    data, truth = synthesize(light, props, sub, tim, np.random.default_rng(4), eff)
    assert truth.snowballs
    for s in truth.snowballs:
        y, x = int(round(s.y)), int(round(s.x))
        sg = truth.saturation_group[0, y, x]
        assert 0 <= sg <= s.group  # the core saturates when the snowball lands (or earlier)
        if s.group > 0:
            assert data[0, s.group - 1, y, x] < data[0, s.group, y, x]


@pytest.mark.parametrize("pattern", ["RAPID", "MEDIUM8", "DEEP8"])
def test_event_truth_is_what_the_ramp_gains(pattern):
    """Cosmic-ray tracks (charge diffusion, frame averaging splitting a hit over two groups)
    and IPC: the noiseless ramp minus its analytic form is exactly the IPC-convolved
    cumulative event signal (charge / gain) of ``truth.jumps`` (to the ADC's rounding)."""
    sub, tim, props, light = _setup(pattern, 6, 2, 200, 300, (48, 40), 3.0)
    rate = 25.0 / (light.size * tim.nframes_per_integration * tim.tframe)  # ~25 hits per int
    eff = Effects.noiseless(cosmic_rays=True, cr_rate=rate, nonlinearity=False, dark=False,
                            saturation=False)
    data, truth = synthesize(light, props, sub, tim, np.random.default_rng(8), eff)
    expected = analytic_ramp(light, props, sub, tim, eff)
    k = rf.ipc_kernel("NRCA1")
    j = truth.jumps
    assert j.size > 50 and len(truth.cosmic_rays) > 5
    assert np.all(j["charge_e"] > 0) and np.all(j["kind"] == 0)
    split = 0
    for it in range(tim.nints):
        ev = np.zeros((tim.ngroups,) + light.shape)
        m = j["integration"] == it
        np.add.at(ev, (j["group"][m], j["y"][m], j["x"][m]), j["charge_e"][m])
        cum = np.cumsum(ev, axis=0)
        pred = np.stack([ipc_forward(c / props.gain, k, ~props.refpix) for c in cum])
        ok = (data[it] < 65000).all(axis=0)
        assert np.abs(data[it].astype(float) - expected[it] - pred)[:, ok].max() <= 0.5 + 1e-6
        split += int(np.count_nonzero((ev[1:-1] > 0) & (ev[2:] > 0)))
    if tim.nframes > 1:
        assert split > 0  # hits during a group's frames appear in two differences
    # the hit's main pixel and its neighbours: tracks spread charge over several pixels
    assert np.mean([c.spill for c in truth.cosmic_rays]) > 0.5
