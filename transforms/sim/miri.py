"""The MIRI part of the simulator: ramps with MIRI's detector effects, and the references that
correct them.

The detector model (geometry, interleaved outputs, clocks, EMI timing) is
``transforms.instruments.miri.detector``; this module puts signal through it. A MIRI pixel has
no superbias step in the pipeline: the linearity polynomial is applied to the raw value with its
reset level, so the simulator works in the *linear* domain up to the non-linearity (the
linearity step then gives it back exactly) and adds the raw-domain effects after it:

``linear = P(bias) + fixed + drift[i, g] + charge / gain + rscd[i, g] + first/last frame``,
``raw = min(P^-1(linear), bias + well) + reset[i, g] + EMI(t) + read noise``,

where ``P`` is the linearity polynomial and ``bias`` the raw reset level. Reference columns get
``bias + fixed + drift + EMI + noise`` (no light, no dark, no non-linearity: the linearity
reference flags them NO_LIN_CORR). Every effect is the one a jwst 3.0 MIRI step corrects:

- EMI (emicorr): each documented frequency of the subarray/pattern (``emi_frequencies``) adds
  ``A sin(2 pi (t / period + phi))`` at the clock ``t`` each output samples the pixel, same for
  the four outputs; the EMICORR reference holds the unit sine as its waveform;
- reset anomaly (reset): ``A(y, x) k_i exp(-g / tau)`` in the first ``RESET_NGROUPS`` groups of
  each integration (``k_1 = 1``, later integrations ``reset_later_ints``), raw DN; the RESET
  reference holds exactly this for integration 1 and 2+;
- RSCD (rscd flags the groups): integrations after the first start with an offset of
  ``-rscd_fraction`` of the previous integration's last signal, decaying with
  ``RSCD_TAU_GROUPS``; the RSCD reference's group counts cover it;
- first- and last-frame effects (rscd / firstframe, lastframe flag those groups): per-pixel
  offsets of group 0 and of the last group of every integration;
- MIRI's dark: ``r t + T_i (1 - exp(-t / tau))`` electrons at ``t`` seconds into an integration
  (``T_1 = dark_first_int * T``), i.e. not a straight line, and steeper in the first
  integration; the 4-D DARK reference (integration 1 and 2+) holds it per group;
- reference-column drifts (refpix): per integration, group, output and row parity a random
  walk, the same in the reference columns and (linear domain) the science pixels.

Read noise, Poisson noise, cosmic rays and saturation are as for the near-IR detectors
(``transforms.sim.detector``). Every random draw comes from the generator passed in; per-pixel
amplitudes come from ``references``' window-independent fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from transforms import dq as dqbits
from transforms.instruments.miri import detector as md
from transforms.model import DataModel
from transforms.sim import references as rf
from transforms.sim.detector import (ADC_MAX, Effects, RampTruth, SimulationError, _events,
                                     apply_linearity, invert_linearity)
from transforms.sim.readout import Subarray, Timing

EXP_TYPE = "MIR_IMAGE"
RESET_NGROUPS = 8  # groups of each integration the reset anomaly (and its reference) covers
RESET_NINTS = 2  # integration 1 and integrations 2+ (as the RESET reference holds them)
DARK_NINTS = 2
RSCD_TAU_GROUPS = 0.6
EMI_WAVE_SAMPLES = 500
# EMI amplitudes (DN) of the simulated sources, by frequency family.
EMI_AMPLITUDE_DN = {"Hz390": 2.0, "Hz218": 1.0, "Hz10": 0.8}
# Fixed offsets (DN) per output (rows) and row parity (columns).
FIXED_OFFSETS = np.array([[12.0, -8.0], [-5.0, 9.0], [7.0, -11.0], [-9.0, 6.0]])
# Groups the RSCD reference flags (integration 1, integrations 2+), per subarray and speed.
# The FASTR1/SLOWR1 patterns (FAST/SLOW with a reset frame between integrations, which MIRI
# spectroscopy uses: LRS, MRS) have rows of their own in JWST's RSCD tables, and jwst matches
# READPATT exactly; the simulator gives them the FAST/SLOW counts.
_RSCD_SPEED = {("FULL", "FAST"): (1, 4), ("FULL", "SLOW"): (1, 1),
               **{(n, "FAST"): (1, 3) for n in md.SUBARRAYS if n != "FULL"}}
RSCD_SKIP = {**_RSCD_SPEED, **{(sub, f"{speed}R1"): v for (sub, speed), v in _RSCD_SPEED.items()}}
# Thermal + zodiacal background (MJy/sr) per MIRI filter: the sky is far brighter than in the
# near-IR and rises to the red.
BACKGROUND_MJYSR = {"F560W": 0.6, "F770W": 3.0, "F1000W": 8.0, "F1130W": 14.0, "F1280W": 20.0,
                    "F1500W": 35.0, "F1800W": 60.0, "F2100W": 120.0, "F2550W": 300.0}


@dataclass(frozen=True)
class MiriEffects:
    """Switches and sizes of the MIRI-specific effects (defaults: everything on)."""

    emi: bool = True
    emi_scale: float = 1.0  # multiplies EMI_AMPLITUDE_DN
    reset_anomaly: bool = True
    reset_dn: float = 60.0  # mean amplitude (raw DN) in group 0 of integration 1
    reset_tau_groups: float = 1.5
    reset_later_ints: float = 0.6
    rscd: bool = True
    rscd_fraction: float = 0.02
    first_frame: bool = True
    first_frame_dn: float = 20.0
    last_frame: bool = True
    last_frame_dn: float = 30.0
    dark_transient: bool = True
    dark_transient_e: float = 150.0
    dark_tau_s: float = 25.0
    dark_first_int: float = 1.6
    refcol_drift: bool = True
    drift_dn: float = 0.3  # rms of each group's step of the per-output, per-parity drift

    @classmethod
    def off(cls, **overrides: Any) -> "MiriEffects":
        """Every MIRI-specific effect off (a MIRI ramp as a near-IR one, bias aside)."""
        base = cls(emi=False, reset_anomaly=False, rscd=False, first_frame=False,
                   last_frame=False, dark_transient=False, refcol_drift=False)
        return replace(base, **overrides)


@dataclass(frozen=True)
class MiriProps:
    """Per-pixel amplitudes of the MIRI effects over a window (0 on reference columns)."""

    reset: np.ndarray  # raw DN, group 0 of integration 1
    first_frame: np.ndarray  # DN
    last_frame: np.ndarray  # DN
    dark_transient: np.ndarray  # electrons
    bias_linear: np.ndarray  # P(bias): the reset level after linearity correction


def miri_properties(props: rf.DetectorProps, seed: int, eff: MiriEffects = MiriEffects()
                    ) -> MiriProps:
    """The MIRI effect amplitudes of ``props``' window (window-independent per pixel)."""
    if props.spec.instrument != "MIRI":
        raise SimulationError(f"{props.spec.detector} is not a MIRI detector")
    win, det = props.window, props.spec.detector

    def f(qty, draw):
        return rf._field(seed, det, qty, win, draw)

    sci = ~props.refpix
    reset = f("miri_reset", lambda r, s: r.lognormal(0.0, 0.2, s)) * eff.reset_dn
    frame = f("miri_frame", lambda r, s: r.normal(1.0, 0.2, s))
    ff = frame * eff.first_frame_dn
    # The last-frame effect alternates with row parity (it comes from the next row pair's reset).
    rows = np.arange(win.ystart - 1, win.ystart - 1 + win.ysize)[:, None]
    lf = frame * eff.last_frame_dn * np.where(rows % 2 == 0, 1.0, -0.6)
    dark = f("miri_dark", lambda r, s: r.lognormal(0.0, 0.3, s)) * eff.dark_transient_e
    bias_lin = np.where(sci, apply_linearity(props.superbias.astype(np.float64),
                                             props.lin_coeffs.astype(np.float64)),
                        props.superbias)
    z = lambda a: np.where(sci, a, 0.0)  # noqa: E731
    return MiriProps(z(reset), z(ff), z(lf), z(dark), bias_lin)


# --------------------------------------------------------------------------------------------
# Ramps
# --------------------------------------------------------------------------------------------

def dark_electrons(t: np.ndarray | float, rate: np.ndarray, transient: np.ndarray,
                   integration: int, eff: MiriEffects) -> np.ndarray:
    """Dark electrons ``t`` seconds into integration ``integration`` (0-based)."""
    k = eff.dark_first_int if integration == 0 else 1.0
    trans = transient * k * (1.0 - np.exp(-np.asarray(t) / eff.dark_tau_s)) \
        if eff.dark_transient else 0.0
    return rate * t + trans


def reset_anomaly(mp: MiriProps, integration: int, group: int, eff: MiriEffects) -> np.ndarray:
    """The reset anomaly (raw DN) of one group; 0 from group RESET_NGROUPS on."""
    if not eff.reset_anomaly or group >= RESET_NGROUPS:
        return np.zeros_like(mp.reset)
    k = 1.0 if integration == 0 else eff.reset_later_ints
    return mp.reset * (k * np.exp(-group / eff.reset_tau_groups))


def emi_amplitude(name: str) -> float:
    return EMI_AMPLITUDE_DN[name.split("_")[0]]


def emi_signal(sub: Subarray, readpatt: str, detector: str, tim: Timing, integration: int,
               group: int, sources: list[tuple[str, float, float, float]]) -> np.ndarray:
    """The EMI (DN) every pixel of one group picks up: ``sources`` are (name, Hz, amplitude,
    phase) tuples; timing as ``instruments.miri.detector`` describes it."""
    p = md.pattern(readpatt)
    rc = md.row_clocks(sub.name, sub.xsize, readpatt)
    fc = md.frame_clocks(sub.ysize, rc)
    t0 = integration * md.integration_clocks(tim.ngroups, fc, readpatt) + group * fc
    clocks = md.read_clocks(sub.ysize, sub.xsize, rc, p.nsamples) + t0
    out = np.zeros((sub.ysize, sub.xsize))
    for _, hz, amp, phi in sources:
        ph = np.mod(clocks / md.period_clocks(hz) + phi, 1.0)
        out += amp * np.sin(2.0 * np.pi * ph)
    return out


def synthesize(light_rate_e: np.ndarray, props: rf.DetectorProps, sub: Subarray, tim: Timing,
               rng: np.random.Generator, effects: Effects = Effects(),
               miri: MiriEffects = MiriEffects(), *, readpatt: str = "FAST", seed: int = 0
               ) -> tuple[np.ndarray, RampTruth]:
    """Simulate the uint16 MIRI ramp (nints, ngroups, ny, nx) of a window and its truth.

    ``light_rate_e``: e-/s from sky and sources per pixel (flat applied); ``props`` the
    detector's true properties over the window; ``seed`` selects the per-pixel MIRI amplitudes
    (as the references are made with it). ``truth.extra`` holds the EMI sources, the drift, the
    dark electrons per group and the RSCD offsets.
    """
    ny, nx = props.superbias.shape
    if props.spec.instrument != "MIRI":
        raise SimulationError(f"{props.spec.detector} is not a MIRI detector; use "
                              "transforms.sim.detector.synthesize")
    if light_rate_e.shape != (ny, nx) or (sub.ysize, sub.xsize) != (ny, nx):
        raise SimulationError(f"rate image {light_rate_e.shape}, properties {(ny, nx)} and "
                              f"subarray {sub.ysize}x{sub.xsize} must have the same shape")
    if np.any(~np.isfinite(light_rate_e)) or np.any(light_rate_e < 0):
        raise SimulationError("the count-rate image must be finite and non-negative")
    if tim.nframes != 1 or tim.groupgap != 0:
        raise SimulationError("MIRI groups are single frames (NFRAMES=1, GROUPGAP=0)")
    eff = replace(effects, snowballs=False, charge_migration=False)
    mp = miri_properties(props, seed, miri)
    sci = ~props.refpix
    light = np.where(sci, light_rate_e, 0.0).astype(np.float64)
    drate = props.dark_rate.astype(np.float64) if eff.dark else np.zeros((ny, nx))
    dtrans = mp.dark_transient if eff.dark else np.zeros((ny, nx))
    gain = props.gain.astype(np.float64)
    amp = md.amplifiers(sub.xstart, sub.xsize)
    rowpar = (np.arange(sub.ystart - 1, sub.ystart - 1 + ny) % 2)[:, None]
    fixed = FIXED_OFFSETS[amp[None, :], rowpar] if eff.bias_offsets else np.zeros((ny, nx))
    bias = props.superbias.astype(np.float64)
    sat_raw = bias + rf.SATURATION_FRACTION * props.well
    top_raw = bias + props.well
    emi_src: list[tuple[str, float, float, float]] = []
    if miri.emi:
        for name in md.emi_frequencies(sub.name, readpatt, props.spec.detector):
            a = emi_amplitude(name) * miri.emi_scale * (1.0 + 0.1 * rng.standard_normal())
            emi_src.append((name, md.EMI_FREQUENCIES[name], float(a), float(rng.random())))
    ng, ni, tf = tim.ngroups, tim.nints, tim.tframe
    out = np.empty((ni, ng, ny, nx), np.uint16)
    satg = np.full((ni, ny, nx), -1, np.int16)
    drift = np.zeros((ni, ng, md.NAMP, 2))
    dark_dn = np.zeros((ni, ng), np.float64)  # median dark (DN) per group, for the record
    rscd_dn = np.zeros(ni)
    all_crs, prev_last = [], None
    for it in range(ni):
        deposits, crs, _ = _events(rng, eff, props, tim, it)
        all_crs += crs
        if miri.refcol_drift and eff.bias_drift:
            steps = rng.normal(0.0, miri.drift_dn, (ng, md.NAMP, 2))
            steps[0] = rng.normal(0.0, 20.0, (md.NAMP, 2))
            drift[it] = np.cumsum(steps, axis=0)
        rscd0 = np.zeros((ny, nx))
        if miri.rscd and it > 0 and prev_last is not None:
            rscd0 = -miri.rscd_fraction * prev_last
            rscd_dn[it] = float(np.median(rscd0[sci])) if sci.any() else 0.0
        q = np.zeros((ny, nx))
        d_prev = np.zeros((ny, nx))
        di = 0
        for g in range(ng):
            t1 = (g + 1) * tf
            d_now = dark_electrons(t1, drate, dtrans, it, miri)
            mean = light * tf + (d_now - d_prev)
            d_prev = d_now
            q += rng.poisson(np.maximum(mean, 0.0)) if eff.poisson else mean
            while di < len(deposits) and deposits[di][0] <= g:
                _, py, px, pq = deposits[di]
                np.add.at(q, (py, px), pq)
                di += 1
            if sci.any():
                dark_dn[it, g] = float(np.median((d_now / gain)[sci]))
            d = drift[it, g][amp[None, :], rowpar]
            lin = mp.bias_linear + fixed + d + q / gain
            if miri.rscd and it > 0:
                lin = lin + rscd0 * np.exp(-g / RSCD_TAU_GROUPS)
            if miri.first_frame and g == 0:
                lin = lin + mp.first_frame
            if miri.last_frame and g == ng - 1 and ng > 1:
                lin = lin + mp.last_frame
            if eff.nonlinearity:
                raw = invert_linearity(lin.astype(np.float32), props.lin_coeffs).astype(np.float64)
            else:
                raw = lin
            raw = np.where(sci, raw, bias + fixed + d)
            if eff.saturation:
                raw = np.where(sci, np.minimum(raw, top_raw), raw)
                newly = sci & (raw >= sat_raw) & (satg[it] < 0)
                satg[it][newly] = g
            sig = raw + reset_anomaly(mp, it, g, miri)
            if emi_src:
                sig += emi_signal(sub, readpatt, props.spec.detector, tim, it, g, emi_src)
            if eff.read_noise:
                sig += rng.standard_normal((ny, nx)) * props.read_noise
            out[it, g] = np.clip(np.rint(sig), 0, ADC_MAX).astype(np.uint16)
        prev_last = q / gain
    truth = RampTruth(light.astype(np.float32), drate.astype(np.float32), props.gain,
                      tuple(all_crs), (), satg, 0,
                      extra={"emi": emi_src, "drift": drift, "dark_dn_median": dark_dn,
                             "rscd_dn_median": rscd_dn})
    return out, truth


def analytic_ramp(light_rate_e: np.ndarray, props: rf.DetectorProps, sub: Subarray, tim: Timing,
                  miri: MiriEffects = MiriEffects(), *, seed: int = 0) -> np.ndarray:
    """The noiseless, effect-free-of-randomness ramp in the *linear* domain (float64 DN, what
    the pipeline holds after linearity, before dark subtraction): bias, fixed offsets, light
    and MIRI's dark; no drift, EMI, RSCD or frame effects. (nints, ngroups, ny, nx)."""
    mp = miri_properties(props, seed, miri)
    sci = ~props.refpix
    light = np.where(sci, light_rate_e, 0.0)
    amp = md.amplifiers(sub.xstart, sub.xsize)
    rowpar = (np.arange(sub.ystart - 1, sub.ystart - 1 + sub.ysize) % 2)[:, None]
    fixed = FIXED_OFFSETS[amp[None, :], rowpar]
    out = np.empty((tim.nints, tim.ngroups) + light.shape)
    for it in range(tim.nints):
        for g in range(tim.ngroups):
            t = (g + 1) * tim.tframe
            q = light * t + dark_electrons(t, props.dark_rate, mp.dark_transient, it, miri)
            out[it, g] = np.where(sci, mp.bias_linear + fixed + q / props.gain,
                                  props.superbias + fixed)
    return out


# --------------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------------

def _meta(reftype: str, props: rf.DetectorProps, useafter: str, description: str,
          **extra: Any) -> dict[str, Any]:
    return rf._ref_meta(reftype, props, useafter, description, **extra)


def dark_ref(props: rf.DetectorProps, useafter: str, tim: Timing, readpatt: str, ngroups: int,
             seed: int, miri: MiriEffects = MiriEffects(), include_new_hot: bool = True
             ) -> DataModel:
    """DARK (DarkMIRIModel): (2, ngroups, ny, nx) DN, integration 1 and integrations 2+, the
    dark with its transient at each group; ``include_new_hot=False`` is the older dark."""
    mp = miri_properties(props, seed, miri)
    rate = props.dark_rate if include_new_hot else np.where(props.new_hot, 0.0, props.dark_rate)
    data = np.empty((DARK_NINTS, ngroups) + rate.shape, np.float32)
    for it in range(DARK_NINTS):
        for g in range(ngroups):
            e = dark_electrons((g + 1) * tim.tframe, rate, mp.dark_transient, it, miri)
            data[it, g] = np.where(props.refpix, 0.0, e / props.gain)
    hot = props.hot | (props.new_hot if include_new_hot else False)
    # one DQ plane per integration, as stcal's MIRI dark subtraction reads it
    dq = np.repeat(np.where(hot, np.uint32(dqbits.HOT), np.uint32(0)).astype(np.uint32)[None, None],
                   DARK_NINTS, axis=0)
    err = np.full((1, 1) + rate.shape, 0.2, np.float32)  # one plane: the steps do not read it
    return DataModel("ref.dark", {"data": data, "dq": dq, "err": err},
                     _meta("dark", props, useafter, "MIRI dark with its transient (simulated)",
                           **{"exposure.nframes": 1, "exposure.groupgap": 0,
                              "exposure.ngroups": int(ngroups), "exposure.nints": DARK_NINTS,
                              "exposure.frame_time": float(tim.tframe),
                              "exposure.readpatt": readpatt, "exposure.type": EXP_TYPE}))


def reset_ref(props: rf.DetectorProps, useafter: str, readpatt: str, ngroups: int, seed: int,
              miri: MiriEffects = MiriEffects()) -> DataModel:
    """RESET (ResetModel): the reset anomaly (raw DN) of the first ``min(ngroups,
    RESET_NGROUPS)`` groups, for integration 1 and integrations 2+ (zeros when the simulated
    detector has none: ``miri.reset_anomaly`` off)."""
    mp = miri_properties(props, seed, miri)
    ng = max(1, min(int(ngroups), RESET_NGROUPS))
    data = np.stack([np.stack([reset_anomaly(mp, it, g, miri) for g in range(ng)])
                     for it in range(RESET_NINTS)]).astype(np.float32)
    dq = np.zeros(mp.reset.shape, np.uint32)
    err = np.full((1, 1) + mp.reset.shape, 0.5, np.float32)
    return DataModel("ref.reset", {"data": data, "dq": dq, "err": err},
                     _meta("reset", props, useafter, "MIRI reset anomaly (simulated)",
                           **{"exposure.readpatt": readpatt, "exposure.ngroups": ng,
                              "exposure.nints": RESET_NINTS}))


def rscd_ref(useafter: str, detector: str = "MIRIMAGE") -> DataModel:
    """RSCD (RSCDModel): groups to flag at the start of integration 1 (``group_skip1``) and of
    later integrations (``group_skip``) per subarray and readout pattern."""
    rows = sorted(RSCD_SKIP.items())
    arrays = {
        "rscd_group_skip_table.subarray": np.array([s for (s, _), _ in rows]),
        "rscd_group_skip_table.readpatt": np.array([p for (_, p), _ in rows]),
        "rscd_group_skip_table.group_skip1": np.array([v[0] for _, v in rows], np.int32),
        "rscd_group_skip_table.group_skip": np.array([v[1] for _, v in rows], np.int32),
    }
    meta = {"reftype": "rscd", "telescope": "JWST", "instrument.name": "MIRI",
            "instrument.detector": detector, "useafter": useafter,
            "pedigree": "INFLIGHT 2023-01-01 2023-12-31",
            "description": "RSCD groups to flag (simulated)", "author": "calops simulator"}
    return DataModel("ref.rscd", arrays, meta)


def emicorr_ref(useafter: str) -> DataModel:
    """EMICORR (EmiModel): every documented frequency with a unit sine as its waveform
    (sample k at phase (k + 0.5)/n, as jwst reads it) and the subarray cases."""
    k = (np.arange(EMI_WAVE_SAMPLES) + 0.5) / EMI_WAVE_SAMPLES
    wave = np.sin(2.0 * np.pi * k).astype(np.float32)
    arrays = {f"frequencies.{n}.phase_amplitudes": wave.copy() for n in md.EMI_FREQUENCIES}
    meta: dict[str, Any] = {
        "reftype": "emicorr", "telescope": "JWST", "instrument.name": "MIRI",
        "useafter": useafter, "pedigree": "INFLIGHT 2023-01-01 2023-12-31",
        "description": "EMI frequencies and waveforms (simulated)", "author": "calops simulator",
        "subarray_cases": md.emi_subarray_cases()}
    meta.update({f"frequencies.{n}.frequency": hz for n, hz in md.EMI_FREQUENCIES.items()})
    return DataModel("ref.emicorr", arrays, meta)


def photom_ref(props: rf.DetectorProps, useafter: str, filters: tuple[str, ...],
               subarrays: tuple[str, ...] = ("FULL", "BRIGHTSKY", "SUB256", "SUB128", "SUB64")
               ) -> DataModel:
    """PHOTOM (MirImgPhotomModel): a row per filter and subarray (columns filter, subarray,
    photmjsr, uncertainty), PIXAR_* meta."""
    rows = [(f, s) for f in filters for s in subarrays]
    vals = [rf.photom_values("MIRI", f, props.spec) for f, _ in rows]
    arrays = {
        "phot_table.filter": np.array([f for f, _ in rows]),
        "phot_table.subarray": np.array([s for _, s in rows]),
        "phot_table.photmjsr": np.array([v["photmjsr"] for v in vals], np.float32),
        "phot_table.uncertainty": np.array([0.01 * v["photmjsr"] for v in vals], np.float32),
    }
    return DataModel("ref.photom", arrays,
                     _meta("photom", props, useafter, "MIRI imaging photometry (simulated)",
                           **{"exposure.type": EXP_TYPE,
                              "photometry.pixelarea_steradians": vals[0]["pixar_sr"],
                              "photometry.pixelarea_arcsecsq": vals[0]["pixar_a2"]}))


def matches(reftype: str, detector: str, filt: str, subarray: str, readpatt: str
            ) -> dict[str, str]:
    """The CRDS selection a MIRI reference answers (values of the real rmaps' parameters)."""
    na = "N/A"
    return {
        "mask": {"instrument.detector": detector},
        "saturation": {"instrument.detector": detector, "instrument.filter": na},
        "linearity": {"instrument.detector": detector, "instrument.filter": na},
        "readnoise": {"instrument.detector": detector, "instrument.filter": na},
        "gain": {"instrument.detector": detector},
        "photom": {"instrument.detector": detector, "instrument.filter": na},
        "area": {"instrument.detector": detector, "instrument.filter": filt},
        "flat": {"instrument.detector": detector, "instrument.filter": filt},
        "distortion": {"instrument.detector": detector},
        "dark": {"instrument.detector": detector, "exposure.readpatt": readpatt,
                 "subarray.name": subarray},
        "reset": {"instrument.detector": detector, "subarray.name": subarray,
                  "exposure.readpatt": readpatt},
        "rscd": {"instrument.detector": detector},
        "emicorr": {},
        "superbias": {},
    }[reftype]


def background_mjysr(filt: str) -> float:
    """The thermal + zodiacal background of a MIRI filter (MJy/sr)."""
    try:
        return BACKGROUND_MJYSR[str(filt).upper()]
    except KeyError:
        raise SimulationError(f"no MIRI background for filter {filt}; known: "
                              f"{', '.join(BACKGROUND_MJYSR)}") from None


def exposure_extras(readpatt: str) -> Mapping[str, Any]:
    """The level-1b keywords a MIRI exposure carries that differ from the near-IR ones."""
    p = md.pattern(readpatt)
    return {"exposure.nsamples": p.nsamples, "exposure.noutputs": md.NAMP,
            "exposure.frame_divisor": 1, "exposure.sample_time": 10.0,
            "exposure.nresets_between_ints": 1 if p.extra_reset else 0}
