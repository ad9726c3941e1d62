"""Ramp synthesis: from a true count-rate image to uint16 groups, with truth.

Per integration, charge accumulates frame by frame (Poisson, or its expectation when
noiseless) from the light and the dark current; cosmic rays and snowballs add charge from the
frame they hit onward; frames are averaged into groups (``nframes``) and ``groupgap`` frames are
dropped. Each group then goes through the detector chain: NIRISS charge migration, the inverse
of the linearity polynomial (so the linearity step recovers the truth), the full well, bias
(superbias + per-output even/odd column offsets + a slow drift), read noise (per frame, so
averaged over ``nframes``), 1/f noise along the fast-read direction of each output, the 16-bit
ADC. Every random draw comes from the generator passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from numba import njit, prange

from transforms.sim.readout import Subarray, Timing, amplifier_columns
from transforms.sim.references import SATURATION_FRACTION, DetectorProps

ADC_MAX = 65535


class SimulationError(ValueError):
    """Inputs the ramp synthesis cannot use."""


@dataclass(frozen=True)
class Effects:
    """Switches and rates of every simulated effect (defaults: everything on)."""

    poisson: bool = True
    dark: bool = True
    read_noise: bool = True
    one_over_f: bool = True
    one_over_f_rms: float = 1.5  # DN per group, white-equivalent rms of the 1/f component
    bias_offsets: bool = True  # per-output even/odd column offsets (deterministic per exposure)
    bias_drift: bool = True  # random offsets and slow drift per integration
    nonlinearity: bool = True
    saturation: bool = True
    cosmic_rays: bool = True
    cr_rate: float = 1.6e-5  # hits per pixel per second
    cr_spill_fraction: float = 0.35  # share of cosmic rays that spill charge into neighbours
    snowballs: bool = True
    snowball_rate: float = 1.2e-8  # per pixel per second
    charge_migration: bool | None = None  # None: on for detectors that have it (NIRISS)

    @classmethod
    def noiseless(cls, **overrides) -> "Effects":
        """Every random effect off: the ramp equals its analytic truth up to ADC rounding."""
        base = cls(poisson=False, read_noise=False, one_over_f=False, bias_drift=False,
                   cosmic_rays=False, snowballs=False)
        return replace(base, **overrides)


@dataclass(frozen=True)
class CosmicRay:
    integration: int
    frame: int
    group: int  # first group whose value includes the charge
    y: int  # 0-based in the exposure window
    x: int
    amplitude_e: float
    amplitude_dn: float
    sigma: float  # amplitude in read-noise sigma of a group difference
    spill: bool

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Snowball:
    integration: int
    frame: int
    group: int
    y: float
    x: float
    radius: float  # core radius in pixels

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RampTruth:
    """What the synthesis knows and the pipeline must recover."""

    light_rate_e: np.ndarray  # e-/s from sky and sources (after QE/flat)
    dark_rate_e: np.ndarray  # e-/s dark current
    gain: np.ndarray  # e-/DN used for conversion
    cosmic_rays: tuple[CosmicRay, ...]
    snowballs: tuple[Snowball, ...]
    saturation_group: np.ndarray  # (nints, ny, nx) int16: first saturated group or -1
    migrated_pixels: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def light_rate_dn(self) -> np.ndarray:
        return (self.light_rate_e / self.gain).astype(np.float32)

    @property
    def dark_rate_dn(self) -> np.ndarray:
        return (self.dark_rate_e / self.gain).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------

@njit(nogil=True, cache=True, parallel=True)
def invert_linearity(linear: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """Raw DN whose linearity-corrected value is ``linear``: Newton on sum c_i r^i = linear."""
    ny, nx = linear.shape
    nc = coeffs.shape[0]
    out = np.empty((ny, nx), np.float32)
    for j in prange(ny):
        for i in range(nx):
            target = np.float64(linear[j, i])
            r = target
            for _ in range(30):
                f = 0.0
                df = 0.0
                p = 1.0
                for k in range(nc):
                    c = np.float64(coeffs[k, j, i])
                    f += c * p
                    if k + 1 < nc:
                        df += (k + 1) * np.float64(coeffs[k + 1, j, i]) * p
                    p *= r
                f -= target
                if df <= 0.0:
                    break
                step = f / df
                r -= step
                if abs(step) < 1e-6:
                    break
            out[j, i] = r
    return out


def apply_linearity(raw: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """The linearity polynomial: corrected = sum_i coeffs[i] * raw**i (Horner)."""
    out = np.zeros(raw.shape, np.float64)
    for c in coeffs[::-1]:
        out = out * raw + c
    return out


def one_over_f(rng: np.random.Generator, sub: Subarray, ny: int, rms: float) -> np.ndarray:
    """1/f noise image (DN) for one group: a 1/f time series per output read along rows.

    Each output reads its columns pixel by pixel (12 overhead pixels per row); odd outputs read
    right to left, as the JWST detectors in DMS orientation.
    """
    from scipy import fft

    amps = amplifier_columns(sub)
    w = amps[0][1] - amps[0][0]
    n = ny * (w + 12)
    nfft = fft.next_fast_len(n, real=True)  # a longer series, cut to n: FFT sizes stay fast
    white = rng.standard_normal((len(amps), nfft))
    spec = fft.rfft(white, axis=1)
    f = fft.rfftfreq(nfft)
    filt = np.zeros_like(f)
    filt[1:] = 1.0 / np.sqrt(f[1:] / f[1])
    series = fft.irfft(spec * filt, n=nfft, axis=1)[:, :n]
    series *= rms / np.maximum(series.std(axis=1, keepdims=True), 1e-12)
    img = np.empty((ny, sub.xsize), np.float32)
    for a, (c0, c1) in enumerate(amps):
        block = series[a].reshape(ny, w + 12)[:, :w]
        img[:, c0:c1] = block[:, ::-1] if a % 2 else block
    return img


def _first_group(frame: int, nframes: int, groupgap: int) -> int:
    """First group whose frames include charge deposited at ``frame``."""
    per = nframes + groupgap
    return max(0, -(-(frame - nframes + 1) // per))


def _events(rng, eff: Effects, props: DetectorProps, tim: Timing, nint: int):
    """Cosmic rays and snowballs of one integration: truth records + a deposit list."""
    ny, nx = props.superbias.shape
    sci = ~props.refpix
    nsci = int(sci.sum())
    nfr = tim.nframes_per_integration
    tint = nfr * tim.tframe
    deposits: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    crs: list[CosmicRay] = []
    sbs: list[Snowball] = []
    sig_diff = np.sqrt(2.0) * props.read_noise / np.sqrt(tim.nframes)
    ys, xs = np.nonzero(sci)
    well_e = float(np.median(props.well * props.gain)) if eff.snowballs and nsci else 0.0
    if eff.cosmic_rays and nsci:
        n = rng.poisson(eff.cr_rate * nsci * tint)
        pick = rng.integers(0, nsci, n)
        frames = rng.integers(0, nfr, n)
        amps = np.clip(rng.lognormal(np.log(1000.0), 1.0, n), 50.0, 60000.0)
        spill = rng.random(n) < eff.cr_spill_fraction
        sfrac = rng.uniform(0.01, 0.05, n)
        for k in range(n):
            y, x, fr, a = int(ys[pick[k]]), int(xs[pick[k]]), int(frames[k]), float(amps[k])
            py, px, pq = [y], [x], [a]
            if spill[k]:
                for dy, dx, s in ((0, 1, 1), (0, -1, 1), (1, 0, 1), (-1, 0, 1), (1, 1, .5),
                                  (1, -1, .5), (-1, 1, .5), (-1, -1, .5)):
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < ny and 0 <= xx < nx and sci[yy, xx]:
                        py.append(yy); px.append(xx); pq.append(a * sfrac[k] * s)
            deposits.append((fr, np.array(py), np.array(px), np.array(pq)))
            g = _first_group(fr, tim.nframes, tim.groupgap)
            a_dn = a / float(props.gain[y, x])
            crs.append(CosmicRay(nint, fr, g, y, x, a, a_dn, float(a_dn / sig_diff[y, x]),
                                 bool(spill[k])))
    if eff.snowballs and nsci:
        n = rng.poisson(eff.snowball_rate * nsci * tint)
        for _ in range(n):
            j = int(rng.integers(0, nsci))
            y, x = float(ys[j]) + rng.uniform(-.5, .5), float(xs[j]) + rng.uniform(-.5, .5)
            radius = float(rng.uniform(2.0, 6.0))
            fr = int(rng.integers(0, nfr))
            r0 = int(np.ceil(radius * 4))
            yy, xx = np.mgrid[max(0, int(y) - r0):min(ny, int(y) + r0 + 1),
                              max(0, int(x) - r0):min(nx, int(x) + r0 + 1)]
            r = np.hypot(yy - y, xx - x)
            q = np.where(r <= radius, 1.5 * well_e, 0.15 * well_e * np.exp(-(r - radius) / radius))
            keep = sci[yy, xx] & (q > 1.0)
            deposits.append((fr, yy[keep], xx[keep], q[keep]))
            sbs.append(Snowball(nint, fr, _first_group(fr, tim.nframes, tim.groupgap), y, x,
                                radius))
    deposits.sort(key=lambda d: d[0])
    return deposits, crs, sbs


def _migrate(charge: np.ndarray, threshold_e: np.ndarray, fraction: float) -> tuple[np.ndarray, int]:
    """NIRISS charge migration: a share of the charge above threshold leaks to 4 neighbours."""
    excess = np.maximum(charge - threshold_e, 0.0)
    n = int(np.count_nonzero(excess))
    if not n:
        return charge, 0
    moved = fraction * excess
    out = charge - moved
    q = moved / 4.0
    out[1:, :] += q[:-1, :]
    out[:-1, :] += q[1:, :]
    out[:, 1:] += q[:, :-1]
    out[:, :-1] += q[:, 1:]
    return out, n


def synthesize(light_rate_e: np.ndarray, props: DetectorProps, sub: Subarray, tim: Timing,
               rng: np.random.Generator, effects: Effects = Effects()) -> tuple[np.ndarray,
                                                                                RampTruth]:
    """Simulate the uint16 ramp (nints, ngroups, ny, nx) of a window and its truth.

    ``light_rate_e`` is the e-/s the sky and sources deliver to each pixel of the window (flat
    applied, zero on reference pixels); ``props`` the detector's true properties over the same
    window.
    """
    ny, nx = props.superbias.shape
    if light_rate_e.shape != (ny, nx) or (sub.ysize, sub.xsize) != (ny, nx):
        raise SimulationError(f"rate image {light_rate_e.shape}, properties {(ny, nx)} and "
                              f"subarray {sub.ysize}x{sub.xsize} must have the same shape")
    if np.any(~np.isfinite(light_rate_e)) or np.any(light_rate_e < 0):
        raise SimulationError("the count-rate image must be finite and non-negative")
    eff = effects
    light = np.where(props.refpix, 0.0, light_rate_e).astype(np.float64)
    dark = props.dark_rate.astype(np.float64) if eff.dark else np.zeros((ny, nx))
    rate = light + dark
    gain = props.gain.astype(np.float64)
    migr = eff.charge_migration
    if migr is None:
        migr = props.spec.charge_migration_dn is not None
    mig_thr = (props.spec.charge_migration_dn or 25000.0) * gain
    amps = amplifier_columns(sub)
    par = (np.arange(nx) % 2)
    amp_of = np.zeros(nx, np.int64)
    for a, (c0, c1) in enumerate(amps):
        amp_of[c0:c1] = a
    # Deterministic per-output even/odd offsets (a property of the exposure's readout).
    fixed = np.zeros(nx)
    if eff.bias_offsets:
        base = np.array([[35.0, -20.0], [-15.0, 25.0], [10.0, -30.0], [-25.0, 15.0]])
        fixed = base[amp_of % 4, par]
    out = np.empty((tim.nints, tim.ngroups, ny, nx), np.uint16)
    satg = np.full((tim.nints, ny, nx), -1, np.int16)
    sat_thr = SATURATION_FRACTION * props.well
    all_crs: list[CosmicRay] = []
    all_sbs: list[Snowball] = []
    migrated = 0
    for it in range(tim.nints):
        deposits, crs, sbs = _events(rng, eff, props, tim, it)
        all_crs += crs
        all_sbs += sbs
        drift0 = np.zeros((len(amps), 2))
        slope = np.zeros(len(amps))
        if eff.bias_drift:
            drift0 = rng.normal(0.0, 20.0, (len(amps), 2))
            slope = rng.normal(0.0, 0.05, len(amps))
        q = np.zeros((ny, nx))
        last = -1
        di = 0
        for g in range(tim.ngroups):
            start = tim.frame_of_group(g)
            acc = np.zeros((ny, nx))
            for k in range(start, start + tim.nframes):
                mean = rate * (k - last) * tim.tframe
                q += rng.poisson(mean) if eff.poisson else mean
                while di < len(deposits) and deposits[di][0] <= k:
                    _, py, px, pq = deposits[di]
                    np.add.at(q, (py, px), pq)
                    di += 1
                last = k
                acc += q
            charge = acc / tim.nframes
            if migr:
                charge, n = _migrate(charge, mig_thr, 0.2)
                migrated += n
            lin_dn = (charge / gain).astype(np.float32)
            raw = (invert_linearity(lin_dn, props.lin_coeffs) if eff.nonlinearity
                   else lin_dn).astype(np.float64)
            if eff.saturation:
                raw = np.minimum(raw, props.well)
                newly = (raw >= sat_thr) & (satg[it] < 0)
                satg[it][newly] = g
            t = tim.group_mean_time(g)
            bias = props.superbias + fixed[None, :]
            if eff.bias_drift:
                bias = bias + (drift0[amp_of, par] + slope[amp_of] * t)[None, :]
            sig = raw + bias
            if eff.read_noise:
                sig += rng.standard_normal((ny, nx)) * (props.read_noise / np.sqrt(tim.nframes))
            if eff.one_over_f and eff.one_over_f_rms > 0:
                sig += one_over_f(rng, sub, ny, eff.one_over_f_rms)
            out[it, g] = np.clip(np.rint(sig), 0, ADC_MAX).astype(np.uint16)
    truth = RampTruth(light.astype(np.float32), dark.astype(np.float32), props.gain,
                      tuple(all_crs), tuple(all_sbs), satg, migrated)
    return out, truth


def analytic_ramp(light_rate_e: np.ndarray, props: DetectorProps, sub: Subarray, tim: Timing,
                  effects: Effects) -> np.ndarray:
    """The noiseless ramp in closed form (float64 DN, before ADC rounding).

    Group g holds rate * tframe * (first frame index + (nframes + 1) / 2) electrons.
    Only meaningful for ``Effects.noiseless()``-like settings without charge migration.
    """
    light = np.where(props.refpix, 0.0, light_rate_e)
    rate = light + (props.dark_rate if effects.dark else 0.0)
    t = np.array([tim.group_mean_time(g) for g in range(tim.ngroups)])
    lin = rate[None] * t[:, None, None] / props.gain[None]
    ny, nx = rate.shape
    amps = amplifier_columns(sub)
    amp_of = np.zeros(nx, np.int64)
    for a, (c0, c1) in enumerate(amps):
        amp_of[c0:c1] = a
    fixed = np.zeros(nx)
    if effects.bias_offsets:
        base = np.array([[35.0, -20.0], [-15.0, 25.0], [10.0, -30.0], [-25.0, 15.0]])
        fixed = base[amp_of % 4, np.arange(nx) % 2]
    if effects.nonlinearity:
        raw = np.stack([invert_linearity(x.astype(np.float32), props.lin_coeffs) for x in lin])
    else:
        raw = lin
    if effects.saturation:
        raw = np.minimum(raw, props.well[None])
    ramp = raw + props.superbias[None] + fixed[None, None, :]
    return np.broadcast_to(ramp, (tim.nints,) + ramp.shape)
