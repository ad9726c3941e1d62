"""jump and ramp_fit against the truth of the project simulator (``transforms.sim``).

Read-noise-dominated NIRCam RAPID ramps with many cosmic rays (the rate is raised for
statistics); 1/f noise, bias drift, non-linearity and snowballs are switched off, since the steps
before jump would remove them. The simulator adds read noise per frame; its READNOISE
reference (like JWST's, and as these steps expect) holds the CDS value, sqrt(2) x per frame.
"""

from __future__ import annotations

import numpy as np
import pytest

from transforms import dq as DQ
from transforms.detector1.jump import JumpParams, flag_jumps_inplace
from transforms.detector1.ramp_fit import fit_ramps_arrays

sim_detector = pytest.importorskip("transforms.sim.detector")
sim_readout = pytest.importorskip("transforms.sim.readout")
sim_refs = pytest.importorskip("transforms.sim.references")

N = 256


def simulate(seed: int, ngroups: int = 10, cr_rate: float = 2.5e-2):
    rng = np.random.default_rng(seed)
    sub = sim_readout.custom_subarray(601, 601, N, N, 1)
    tim = sim_readout.timing("NIRCAM", "RAPID", sub, ngroups, 1)
    props = sim_refs.detector_properties("NRCA1", seed, sub)
    light = rng.uniform(0.0, 5.0, (N, N))
    # The 1.0 simulator's point-like hits without IPC: the population these numbers (and
    # docs/detector1-ramp-jump.md) describe. The harder, realistic population (tracks, charge
    # diffusion, IPC) is tests/transforms/detector1/test_jump_v11.py's.
    eff = sim_detector.Effects(one_over_f=False, bias_drift=False, bias_offsets=False,
                               nonlinearity=False, snowballs=False, cr_rate=cr_rate,
                               cr_model="point", ipc=False)
    raw, truth = sim_detector.synthesize(light, props, sub, tim, rng, eff)
    data = raw.astype(np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    sat = truth.saturation_group
    for g in range(ngroups):
        gdq[:, g][(sat >= 0) & (sat <= g)] |= DQ.SATURATED
    return data, gdq, props, tim, truth


def test_jump_recovers_simulated_cosmic_rays():
    six, big, clean_flags = [], [], []
    for seed in (1, 2, 3):
        data, gdq, props, tim, truth = simulate(seed)
        out = gdq.copy()
        flag_jumps_inplace(data, out, np.zeros((N, N), np.uint32), props.gain,
                           np.sqrt(2.0) * props.read_noise, group_time=tim.tgroup,
                           nframes=tim.nframes, params=JumpParams(flag_4_neighbors=False))
        flagged = (out & DQ.JUMP_DET) != 0
        hit = np.zeros(data.shape, bool)
        near = np.zeros(data.shape, bool)  # spilled charge makes small real jumps next door
        for cr in truth.cosmic_rays:
            if cr.group < 1:
                continue  # before the first read: no jump in the ramp
            hit[cr.integration, cr.group, cr.y, cr.x] = True
            ys, xs = slice(max(cr.y - 1, 0), cr.y + 2), slice(max(cr.x - 1, 0), cr.x + 2)
            near[cr.integration, cr.group, ys, xs] = True
            if gdq[cr.integration, cr.group, cr.y, cr.x] & DQ.SATURATED:
                continue
            (big if cr.sigma > 10 else six if cr.sigma >= 6 else []).append(
                flagged[cr.integration, cr.group, cr.y, cr.x])
        clean = ~near & ((gdq & DQ.SATURATED) == 0)
        clean[:, 0] = False
        clean_flags.append(flagged[clean])
    six, big, clean_flags = np.array(six), np.array(big), np.concatenate(clean_flags)
    print(f"sim truth: 6-10 sigma {six.mean():.4f} of {six.size}, >10 sigma {big.mean():.5f} of "
          f"{big.size}, clean groups flagged {clean_flags.mean():.5f} of {clean_flags.size}")
    assert six.size > 1000 and big.size > 20000
    assert big.mean() >= 0.998, big.mean()
    assert six.mean() >= 0.90, six.mean()
    assert clean_flags.mean() <= 0.001, clean_flags.mean()


def test_ramp_fit_pull_on_simulated_exposure():
    data, gdq, props, tim, truth = simulate(7, cr_rate=2e-3)
    gdq_j = gdq.copy()
    rn = np.sqrt(2.0) * props.read_noise
    flag_jumps_inplace(data, gdq_j, np.zeros((N, N), np.uint32), props.gain, rn,
                       group_time=tim.tgroup, nframes=tim.nframes)
    rate, _ = fit_ramps_arrays(data, gdq_j, np.zeros((N, N), np.uint32), props.gain, rn,
                               frame_time=tim.tframe, group_time=tim.tgroup, nframes=tim.nframes)
    true = (truth.light_rate_e + truth.dark_rate_e) / truth.gain
    ok = np.isfinite(rate["data"]) & ((rate["dq"] & DQ.SATURATED) == 0)
    pull = ((rate["data"] - true) / rate["err"])[ok]
    assert ok.mean() > 0.99
    assert abs(np.median(pull)) < 0.05, np.median(pull)
    assert abs(np.std(pull) - 1.0) < 0.1, np.std(pull)
