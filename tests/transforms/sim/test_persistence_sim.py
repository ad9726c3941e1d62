"""Simulated persistence: traps filled by a saturating exposure release charge into the next."""

import numpy as np
import pytest

from transforms.sim import readout as ro
from transforms.sim import references as rf
from transforms.sim.detector import Effects, synthesize


def _window(ny=24, nx=512, patt="DEEP8", ngroups=10, nints=1):
    """A window with long enough frames (68 s of reads) for traps to fill."""
    sub = ro.custom_subarray(301, 301, nx, ny)
    tim = ro.timing("NIRCAM", patt, sub, ngroups, nints)
    props = rf.detector_properties("NRCA1", 4, sub)
    return sub, tim, props


def test_traps_fill_where_saturated_and_release_in_the_next_exposure():
    sub, tim, props = _window()
    dens = rf.trap_density(props, 4)
    light = np.full((24, 512), 0.5, np.float32)
    light[10:13, 10:13] = 5e6  # saturates in the first group
    eff = Effects.noiseless(cosmic_rays=False)
    _, t1 = synthesize(light, props, sub, tim, np.random.default_rng(0), eff, trap_density=dens)
    traps = t1.extra["traps_e"].astype(np.float64)
    assert traps[:, 11, 11].sum() > 50.0 and traps[:, :5, :5].sum() == 0.0
    # 60 s later, no light: the ramp of the saturated pixel rises by what the traps release
    gap = 60.0
    decay = np.exp(np.array([f[3] for f in rf.TRAP_FAMILIES]) * gap)[:, None, None]
    dark_sky = np.zeros((24, 512), np.float32)
    eff2 = Effects.noiseless(cosmic_rays=False, dark=False, nonlinearity=False, ipc=False)
    data, t2 = synthesize(dark_sky, props, sub, tim, np.random.default_rng(1), eff2,
                          trap_density=dens, traps=traps * decay)
    rate = t2.extra["persistence_e_per_s"]
    assert rate[11, 11] > 0.01 and rate[0, 0] == 0.0
    ramp = data[0, :, 11, 11].astype(np.float64) * props.gain[11, 11]
    t0, t1 = tim.group_mean_time(0), tim.group_mean_time(tim.ngroups - 1)
    measured = (ramp[-1] - ramp[0]) / (t1 - t0)
    expected = sum(traps[k, 11, 11] * decay[k, 0, 0] * (np.exp(f[3] * t0) - np.exp(f[3] * t1))
                   for k, f in enumerate(rf.TRAP_FAMILIES)) / (t1 - t0)  # released meanwhile
    assert measured == pytest.approx(expected, rel=0.1)
    assert np.all(t2.extra["traps_e"] <= traps * decay + 1e-9)  # only emptying
    # switched off: nothing
    _, t3 = synthesize(dark_sky, props, sub, tim, np.random.default_rng(1),
                       Effects.noiseless(persistence=False), trap_density=dens, traps=traps)
    assert "persistence_e_per_s" not in t3.extra


def test_program_carries_traps_between_exposures():
    from transforms.sim.program import ExposureSpec, program_spec, simulate_program

    e = ExposureSpec
    exps = (e("NRCA1", "F150W", "CLEAR", "BRIGHT2", "SUB400P", 6, 1, "2024-03-10T04:00:00", 1,
              1, 1, (0.0, 0.0), 1, 2),
            e("NRCA1", "F150W", "CLEAR", "BRIGHT2", "SUB400P", 6, 1, "2024-03-10T04:03:00", 1,
              1, 2, (0.3, 0.2), 2, 2))
    spec = program_spec("small", exposures=exps, nstars=40, ngalaxies=0,
                        flux_range_ujy=(2e4, 2e5), field_radius_arcsec=2.5)
    prog = simulate_program(spec, 3)
    first, second = (x.truth.ramp for x in prog.exposures)
    assert np.any(first.saturation_group >= 0)
    assert first.extra["persistence_e_per_s"].max() > 0  # released within the exposure
    sat1 = first.saturation_group[0] >= 0
    p2 = second.extra["persistence_e_per_s"]
    # pixels saturated in the first exposure release charge throughout the second
    assert np.median(p2[sat1]) > 0.02 and np.median(p2[~sat1]) < 1e-3
    assert "traps_start" in second.extra and "traps_start" not in first.extra
