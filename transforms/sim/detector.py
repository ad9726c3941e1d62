"""Ramp synthesis: from a true count-rate image to uint16 groups, with truth.

Per integration, charge accumulates frame by frame (Poisson, or its expectation when
noiseless) from the light and the dark current; cosmic rays (tracks through the absorber with
charge diffusion, ``CR_PHYSICS``) and snowballs add charge from the frame they hit onward;
frames are averaged into groups (``nframes``) and ``groupgap`` frames are dropped. Each group
then goes through the detector chain: NIRISS charge migration, the inverse of the linearity
polynomial (so the linearity step recovers the truth), the full well, interpixel capacitance
(the pixels' raw signals, as node voltages couple, convolved with ``references.ipc_kernel``:
what jwst's ipc step, which runs on the raw ramp, undoes), bias
(superbias + per-output even/odd column offsets + a slow drift), read noise (per frame, so
averaged over ``nframes``), 1/f noise along the fast-read direction of each output, the 16-bit
ADC. Every random draw comes from the generator passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from numba import njit, prange

from transforms.sim.readout import Subarray, Timing, amplifier_columns
from transforms.sim.references import (SATURATION_FRACTION, TRAP_FAMILIES, DetectorProps,
                                       ipc_kernel, persat)

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
    cr_rate: float = 1.6e-5  # hits per pixel per second (5 /cm2/s on 18 um pixels)
    cr_model: str = "tracks"  # "tracks" (docs/simulator.md) or "point" (the 1.0 simulator's)
    cr_spill_fraction: float = 0.35  # "point" model: share of hits that spill into neighbours
    cr_scale: float = 1.0  # "tracks" model: multiplies every deposit (a softer/harder spectrum)
    snowballs: bool = True
    snowball_rate: float = 1.2e-8  # per pixel per second
    charge_migration: bool | None = None  # None: on for detectors that have it (NIRISS)
    ipc: bool = True  # interpixel capacitance of the raw signal (detectors in IPC_COUPLING)
    persistence: bool = True  # charge traps (when synthesize is given the trap density)

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
    # Charge every event adds to each group difference (JUMP_DTYPE rows, before IPC): see
    # ``event_jumps``. None where the synthesis does not record it (MIRI).
    jumps: np.ndarray | None = None

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


@dataclass(frozen=True)
class CosmicRayPhysics:
    """How a cosmic ray deposits charge in one kind of detector (the "tracks" model).

    A hit crosses an absorber ``thickness_um`` thick at an angle drawn from an isotropic flux
    (cos(theta) has density 2 cos(theta) through a flat surface), losing ``e_per_um`` charges
    per micron of path (times a Landau-like straggling factor and the square of the ion's
    charge); the track's projection on the detector (pixel pitch ``pitch_um``) is sampled and
    every sample spreads laterally by charge diffusion, a Gaussian of ``diffusion_px`` pixels.
    """

    e_per_um: float
    thickness_um: float = 5.0
    pitch_um: float = 18.0
    diffusion_px: float = 0.25


# LET of the shielded L2 flux 0.86 keV/um (Rauscher & Fixsen 2025, NIRSpec, ~6 keV per hit,
# ~5200 charges at 5.4 um cutoff); charges per keV from Klein's rule (pair energy ~2.8 Eg +
# 0.5 eV): ~1.15 eV at 5 um cutoff, ~1.9 eV at 2.5 um (NIRCam SW).
CR_PHYSICS: dict[tuple[str, str | None], CosmicRayPhysics] = {
    ("NIRCAM", "SHORT"): CosmicRayPhysics(e_per_um=450.0),
    ("NIRCAM", "LONG"): CosmicRayPhysics(e_per_um=745.0),
    ("NIRISS", None): CosmicRayPhysics(e_per_um=720.0),
}
# Ion species of the galactic cosmic rays (by number) and the charge-squared factor of their
# energy loss: protons, alpha particles, heavier nuclei (C..Fe, Z**2 ~ 36..676).
_SPECIES_P = (0.87, 0.12, 0.01)
MAX_TRACK_COS = 0.02  # grazing hits: path capped at thickness / 0.02


def cr_physics(props: DetectorProps) -> CosmicRayPhysics | None:
    """The "tracks" physics of a detector, or None (then the "point" model is used)."""
    return CR_PHYSICS.get((props.spec.instrument, props.spec.channel))


def _track(rng, phys: CosmicRayPhysics, y0: float, x0: float, scale: float):
    """One hit: (total charge, rows, cols, charges) of its footprint before windowing."""
    c = max(math.sqrt(rng.random()), MAX_TRACK_COS)
    u = rng.random()
    z2 = 1.0 if u < _SPECIES_P[0] else (4.0 if u < _SPECIES_P[0] + _SPECIES_P[1]
                                        else float(rng.uniform(36.0, 676.0)))
    zz = rng.standard_normal()
    straggle = max(0.3, 1.0 + 0.2 * (-math.log(max(zz * zz, 1e-300))))  # Moyal (Landau-like)
    path = phys.thickness_um / c
    total = phys.e_per_um * path * z2 * straggle * scale
    proj = phys.thickness_um * math.sqrt(max(1.0 - c * c, 0.0)) / c / phys.pitch_um
    phi = rng.uniform(0.0, 2.0 * math.pi)
    npts = max(4, int(proj * 6.0) + 1)
    t = (np.arange(npts) + 0.5) / npts - 0.5
    py = y0 + t * proj * math.sin(phi)
    px = x0 + t * proj * math.cos(phi)
    sd = phys.diffusion_px
    r = 3.0 * sd + 1.0
    ylo, yhi = int(math.floor(py.min() - r)), int(math.ceil(py.max() + r))
    xlo, xhi = int(math.floor(px.min() - r)), int(math.ceil(px.max() + r))
    ye = np.arange(ylo, yhi + 1) - 0.5  # pixel edges (pixel k spans k-0.5..k+0.5)
    xe = np.arange(xlo, xhi + 1) - 0.5
    s2 = sd * math.sqrt(2.0)
    fy = np.diff(_erf((ye[None, :] - py[:, None]) / s2), axis=1) * 0.5
    fx = np.diff(_erf((xe[None, :] - px[:, None]) / s2), axis=1) * 0.5
    stamp = (fy.T @ fx) * (total / npts)
    rows, cols = np.nonzero(stamp > 0.5)
    return total, rows + ylo, cols + xlo, stamp[rows, cols]


def _erf(x):
    from scipy.special import erf

    return erf(x)


def _events_ex(rng, eff: Effects, props: DetectorProps, tim: Timing, nint: int):
    """Cosmic rays and snowballs of one integration: (deposits, kinds, cosmic rays, snowballs);
    deposits are (frame, rows, cols, charges) sorted by frame, kinds 0 for a cosmic ray and 1
    for a snowball."""
    ny, nx = props.superbias.shape
    sci = ~props.refpix
    nsci = int(sci.sum())
    nfr = tim.nframes_per_integration
    tint = nfr * tim.tframe
    deposits: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    kinds: list[int] = []
    crs: list[CosmicRay] = []
    sbs: list[Snowball] = []
    sig_diff = np.sqrt(2.0) * props.read_noise / np.sqrt(tim.nframes)
    ys, xs = np.nonzero(sci)
    well_e = float(np.median(props.well * props.gain)) if eff.snowballs and nsci else 0.0
    phys = cr_physics(props) if eff.cr_model == "tracks" else None
    if eff.cr_model not in ("tracks", "point"):
        raise SimulationError(f"cr_model must be 'tracks' or 'point', got {eff.cr_model!r}")
    if eff.cosmic_rays and nsci:
        n = rng.poisson(eff.cr_rate * nsci * tint)
        pick = rng.integers(0, nsci, n)
        frames = rng.integers(0, nfr, n)
        if phys is None:
            amps = np.clip(rng.lognormal(np.log(1000.0), 1.0, n), 50.0, 60000.0)
            spill = rng.random(n) < eff.cr_spill_fraction
            sfrac = rng.uniform(0.01, 0.05, n)
        for k in range(n):
            y, x, fr = int(ys[pick[k]]), int(xs[pick[k]]), int(frames[k])
            if phys is None:
                a = float(amps[k])
                py, px, pq = [y], [x], [a]
                if spill[k]:
                    for dy, dx, s in ((0, 1, 1), (0, -1, 1), (1, 0, 1), (-1, 0, 1), (1, 1, .5),
                                      (1, -1, .5), (-1, 1, .5), (-1, -1, .5)):
                        yy, xx = y + dy, x + dx
                        if 0 <= yy < ny and 0 <= xx < nx and sci[yy, xx]:
                            py.append(yy); px.append(xx); pq.append(a * sfrac[k] * s)
                py, px, pq = np.array(py), np.array(px), np.array(pq)
                spilled = bool(spill[k])
            else:
                a, py, px, pq = _track(rng, phys, y + rng.uniform(-0.5, 0.5),
                                       x + rng.uniform(-0.5, 0.5), eff.cr_scale)
                keep = (py >= 0) & (py < ny) & (px >= 0) & (px < nx)
                py, px, pq = py[keep], px[keep], pq[keep]
                keep = sci[py, px]
                py, px, pq = py[keep], px[keep], pq[keep]
                if not py.size:
                    continue
                j = int(np.argmax(pq))
                y, x = int(py[j]), int(px[j])
                spilled = bool(np.count_nonzero(pq > 0.01 * a) > 1)
            deposits.append((fr, py, px, pq))
            kinds.append(0)
            g = _first_group(fr, tim.nframes, tim.groupgap)
            peak = float(pq.max())
            a_dn = a / float(props.gain[y, x])
            crs.append(CosmicRay(nint, fr, g, y, x, a, a_dn,
                                 float(peak / float(props.gain[y, x]) / sig_diff[y, x]), spilled))
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
            kinds.append(1)
            sbs.append(Snowball(nint, fr, _first_group(fr, tim.nframes, tim.groupgap), y, x,
                                radius))
    order = sorted(range(len(deposits)), key=lambda i: deposits[i][0])
    return [deposits[i] for i in order], [kinds[i] for i in order], crs, sbs


def _events(rng, eff: Effects, props: DetectorProps, tim: Timing, nint: int):
    """Cosmic rays and snowballs of one integration: (deposits, cosmic rays, snowballs)."""
    deposits, _, crs, sbs = _events_ex(rng, eff, props, tim, nint)
    return deposits, crs, sbs


JUMP_DTYPE = np.dtype([("integration", np.int32), ("group", np.int32), ("y", np.int32),
                       ("x", np.int32), ("charge_e", np.float32), ("kind", np.int8)])


def event_jumps(deposits, kinds, tim: Timing, nint: int) -> np.ndarray:
    """What each group difference gains from the events of one integration: rows of
    ``JUMP_DTYPE`` (group ``g`` = the difference group g - group g-1; group 0 = charge already in
    the first group, invisible to jump detection), summed per pixel, charge before IPC.

    A deposit in frame ``k`` of a group that averages ``nframes`` frames appears in that group
    only for the frames read after it: a share ``(frames from k to the group's end)/nframes``
    in that group's difference and the rest in the next one (frame averaging splits jumps)."""
    recs = []
    per = tim.nframes + tim.groupgap
    for (fr, py, px, pq), kind in zip(deposits, kinds):
        g = _first_group(fr, tim.nframes, tim.groupgap)
        if g >= tim.ngroups:
            continue
        start = g * per
        f = min(1.0, (start + tim.nframes - fr) / tim.nframes)
        for gg, share in ((g, f), (g + 1, 1.0 - f)):
            if share > 0.0 and gg < tim.ngroups:
                recs.append((np.full(py.size, gg), py, px, pq * share, np.full(py.size, kind)))
    if not recs:
        return np.zeros(0, JUMP_DTYPE)
    g = np.concatenate([r[0] for r in recs]).astype(np.int64)
    y = np.concatenate([r[1] for r in recs]).astype(np.int64)
    x = np.concatenate([r[2] for r in recs]).astype(np.int64)
    q = np.concatenate([r[3] for r in recs])
    k = np.concatenate([r[4] for r in recs]).astype(np.int64)
    key = (g * (1 << 20) + y) * (1 << 20) + x
    uk, inv = np.unique(key, return_inverse=True)
    out = np.zeros(uk.size, JUMP_DTYPE)
    out["integration"] = nint
    out["group"] = uk >> 40
    out["y"] = (uk >> 20) & ((1 << 20) - 1)
    out["x"] = uk & ((1 << 20) - 1)
    out["charge_e"] = np.bincount(inv, weights=q, minlength=uk.size)
    kk = np.zeros(uk.size, np.int64)
    np.maximum.at(kk, inv, k)
    out["kind"] = kk
    return out


def ipc_forward(image: np.ndarray, kernel: np.ndarray, sci: np.ndarray) -> np.ndarray:
    """The image a detector with IPC ``kernel`` (3x3, rows y) reports for pixel signals
    ``image``: each pixel's signal is shared with its neighbours; outside the window counts as
    zero and reference pixels (no photodiode) stay zero."""
    ny, nx = image.shape
    kh, kw = kernel.shape
    pad = np.zeros((ny + kh - 1, nx + kw - 1))
    pad[kh // 2:kh // 2 + ny, kw // 2:kw // 2 + nx] = np.where(sci, image, 0.0)
    out = np.zeros((ny, nx))
    for j in range(kh):
        for i in range(kw):
            # charge at (y - dy, x - dx) couples into (y, x) with weight kernel[j, i]
            out += kernel[j, i] * pad[kh - 1 - j:kh - 1 - j + ny, kw - 1 - i:kw - 1 - i + nx]
    return np.where(sci, out, 0.0)


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


class Traps:
    """Charge traps of a window (``references.TRAP_FAMILIES``): filled charge per family, e-.

    ``release(dt)`` empties them as they decay for ``dt`` seconds and returns the charge freed
    per pixel; ``fill(raw, dt)`` fills them toward ``density * capture0 * min(raw / persat, 1)``
    where the signal is high (>= 10% of PERSAT). Only pixels that ever held charge are touched.
    """

    def __init__(self, density: np.ndarray, persat_dn: np.ndarray, filled: np.ndarray | None):
        self.fam = np.array(TRAP_FAMILIES, np.float64)  # (nfam, 4)
        self.density = np.asarray(density, np.float64)
        self.persat = np.asarray(persat_dn, np.float64)
        shape = (len(self.fam),) + self.density.shape
        self.n = np.zeros(shape) if filled is None else np.array(filled, np.float64, copy=True)
        if self.n.shape != shape:
            raise SimulationError(f"traps {self.n.shape} do not match the window {shape}")
        self.active = np.nonzero(self.n.sum(axis=0).ravel() > 1e-6)[0]

    def release(self, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """(flat pixel indices, charge freed there) over ``dt`` seconds."""
        if not self.active.size or dt <= 0:
            return self.active, np.zeros(self.active.size)
        nf = self.n.reshape(len(self.fam), -1)
        keep = np.exp(self.fam[:, 3] * dt)[:, None]
        cur = nf[:, self.active]
        freed = cur * (1.0 - keep)
        nf[:, self.active] = cur - freed
        return self.active, freed.sum(axis=0)

    def fill(self, raw: np.ndarray, dt: float) -> None:
        hot = np.nonzero((raw >= 0.1 * self.persat).ravel())[0]
        if not hot.size:
            return
        frac = np.minimum(raw.ravel()[hot] / self.persat.ravel()[hot], 1.0)
        nf = self.n.reshape(len(self.fam), -1)
        target = self.fam[:, 0][:, None] * self.density.ravel()[hot][None] * frac[None]
        rate = (1.0 - np.exp(self.fam[:, 1] * dt))[:, None]
        cur = nf[:, hot]
        nf[:, hot] = np.where(target > cur, cur + (target - cur) * rate, cur)
        self.active = np.union1d(self.active, hot)


def synthesize(light_rate_e: np.ndarray, props: DetectorProps, sub: Subarray, tim: Timing,
               rng: np.random.Generator, effects: Effects = Effects(), *,
               trap_density: np.ndarray | None = None,
               traps: np.ndarray | None = None) -> tuple[np.ndarray, RampTruth]:
    """Simulate the uint16 ramp (nints, ngroups, ny, nx) of a window and its truth.

    ``light_rate_e`` is the e-/s the sky and sources deliver to each pixel of the window (flat
    applied, zero on reference pixels); ``props`` the detector's true properties over the same
    window. Persistence: with ``trap_density`` (``references.trap_density``) and
    ``effects.persistence``, charge traps filled by high signals (and ``traps``: the charge
    already trapped at the exposure's start, (families, ny, nx), e.g. by the previous
    exposure) release charge into the ramp; ``truth.extra`` then has ``traps_e`` (trapped at the
    end) and ``persistence_e_per_s`` (the mean release rate over the integrations' reads).
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
    jumps: list[np.ndarray] = []
    migrated = 0
    kipc = ipc_kernel(props.spec.detector) if eff.ipc else None
    sci = ~props.refpix
    tr = None
    if eff.persistence and trap_density is not None:
        tr = Traps(np.where(sci, trap_density, 0.0), persat(props), traps)
        pers_q = np.zeros(ny * nx)
    for it in range(tim.nints):
        if it and tr is not None:
            tr.release(tim.tframe)  # the reset between integrations clears what is freed
        deposits, kinds, crs, sbs = _events_ex(rng, eff, props, tim, it)
        all_crs += crs
        all_sbs += sbs
        jumps.append(event_jumps(deposits, kinds, tim, it))
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
                dt = (k - last) * tim.tframe
                mean = rate * dt
                if tr is not None:
                    idx, freed = tr.release(dt)
                    if idx.size:
                        mean = mean.copy()
                        mean.ravel()[idx] += freed
                        pers_q[idx] += freed
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
            if tr is not None:
                tr.fill(raw, tim.tgroup)
            if kipc is not None:  # capacitive coupling of the node voltages (non-linear, capped)
                raw = ipc_forward(raw, kipc, sci)
            if eff.saturation:
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
    extra: dict = {}
    if tr is not None:
        t_reads = tim.nints * tim.tframe * (tim.frame_of_group(tim.ngroups - 1) + tim.nframes)
        extra["traps_e"] = tr.n.astype(np.float32)
        extra["persistence_e_per_s"] = (pers_q / t_reads).reshape(ny, nx).astype(np.float32)
    truth = RampTruth(light.astype(np.float32), dark.astype(np.float32), props.gain,
                      tuple(all_crs), tuple(all_sbs), satg, migrated, extra=extra,
                      jumps=np.concatenate(jumps) if jumps else np.zeros(0, JUMP_DTYPE))
    return out, truth


def analytic_ramp(light_rate_e: np.ndarray, props: DetectorProps, sub: Subarray, tim: Timing,
                  effects: Effects) -> np.ndarray:
    """The noiseless ramp in closed form (float64 DN, before ADC rounding).

    Group g holds rate * tframe * (first frame index + (nframes + 1) / 2) electrons.
    Only meaningful for ``Effects.noiseless()``-like settings without charge migration. IPC
    (deterministic) is applied as in ``synthesize``.
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
    kipc = ipc_kernel(props.spec.detector) if effects.ipc else None
    if kipc is not None:
        raw = np.stack([ipc_forward(x, kipc, ~props.refpix) for x in raw])
    ramp = raw + props.superbias[None] + fixed[None, None, :]
    return np.broadcast_to(ramp, (tim.nints,) + ramp.shape)
