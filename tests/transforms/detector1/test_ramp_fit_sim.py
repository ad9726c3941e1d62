"""Test-local ramp generator shared by the ramp_fit and jump tests (imported by name).

Seeded, truth-carrying up-the-ramp groups: Poisson charge accumulation, per-read noise, cosmic
rays injected at known groups with a known significance (in units of the noise of a group
difference), saturation. Used because the project simulator does not provide per-group truth
for jumps; the two tests at the end check the generator itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transforms import dq as DQ

FRAME_TIME = 10.73677  # NIRCam full frame, s
GAIN = 2.0  # e-/DN
RN_CDS = 10.0  # DN per CDS


@dataclass
class SimRamp:
    data: np.ndarray  # (nints, ngroups, ny, nx) float32 DN
    groupdq: np.ndarray
    pixeldq: np.ndarray
    gain: np.ndarray
    readnoise: np.ndarray
    rate: np.ndarray  # true DN/s, (ny, nx)
    jump: np.ndarray  # bool (nints, ngroups, ny, nx): group where a jump was injected
    jump_sigma: np.ndarray  # float, significance of the injected jump (0 where none)
    group_time: float
    frame_time: float
    nframes: int


def sigma_diff(rate_dn_s, group_time, rn_cds, gain, nframes=1):
    """Noise (DN) of one group difference."""
    return np.sqrt(rn_cds ** 2 / nframes + np.maximum(rate_dn_s, 0) * group_time / gain)


def make_ramp(seed: int, nints: int = 1, ngroups: int = 10, ny: int = 64, nx: int = 64,
              rate_range=(0.0, 50.0), jump_frac: float = 0.0, sigma_range=(6.0, 10.0),
              sat_level: float | None = None, nframes: int = 1) -> SimRamp:
    rng = np.random.default_rng(seed)
    tg = FRAME_TIME * nframes
    gain = np.full((ny, nx), GAIN, np.float32) * rng.uniform(0.9, 1.1, (ny, nx)).astype(np.float32)
    rn = np.full((ny, nx), RN_CDS, np.float32) * rng.uniform(0.8, 1.2, (ny, nx)).astype(np.float32)
    rate = rng.uniform(*rate_range, (ny, nx))
    shape = (nints, ngroups, ny, nx)
    # electrons accumulated per group, then DN; read noise per group = rn_cds/sqrt(2 nframes)
    lam = np.maximum(rate, 0) * tg * gain
    inc = rng.poisson(np.broadcast_to(lam, shape)).astype(np.float64)
    inc += np.minimum(rate, 0) * tg * gain  # negative rates (over-subtracted) deterministic
    signal = np.cumsum(inc, axis=1) / gain
    noise = rng.normal(0, 1, shape) * (rn / np.sqrt(2.0 * nframes))
    data = 1000.0 + signal + noise
    jump = np.zeros(shape, bool)
    jsig = np.zeros(shape)
    if jump_frac > 0 and ngroups > 1:
        hit = rng.random(shape) < jump_frac
        hit[:, 0] = False
        sig = sigma_diff(rate, tg, rn, gain, nframes)
        for i, g, y, x in zip(*np.nonzero(hit)):
            s = rng.uniform(*sigma_range)
            data[i, g:, y, x] += s * sig[y, x]
            jump[i, g, y, x] = True
            jsig[i, g, y, x] = s
    gdq = np.zeros(shape, np.uint8)
    if sat_level is not None:
        sat = data >= sat_level
        sat = np.maximum.accumulate(sat, axis=1)
        gdq[sat] |= DQ.SATURATED
    return SimRamp(data.astype(np.float32), gdq, np.zeros((ny, nx), np.uint32), gain, rn,
                   rate, jump, jsig, tg, FRAME_TIME, nframes)


def test_generator_is_seeded():
    a, b = make_ramp(3, jump_frac=0.01), make_ramp(3, jump_frac=0.01)
    assert np.array_equal(a.data, b.data) and np.array_equal(a.jump, b.jump)


def test_generator_slope_matches_truth():
    s = make_ramp(1, ngroups=20)
    slope = (s.data[0, -1] - s.data[0, 0]) / (19 * s.group_time)
    assert abs(np.median(slope - s.rate)) < 0.05
