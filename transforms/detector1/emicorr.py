"""emicorr: fit and remove MIRI's EMI (electromagnetic interference) from the ramps.

jwst 3.0's default ("joint") algorithm, skipped by default as in jwst. For each frequency the
EMICORR reference lists for the exposure's subarray / read speed / detector (its
``subarray_cases``; full frame is ``FULL_FAST`` or ``FULL_SLOW``), in order:

1. the pixel (row ``j``, column ``x``) of group ``g`` of integration ``i`` is sampled at phase
   ``(j * rowclocks + (x // 4) * nsamples) / P + g * dphase + i * dphase_int`` (mod 1) of the
   wave, ``P = 1 / (f * 10 us)`` clocks, ``dphase = ((ny * rowclocks + (1024 - ny) * 7) / P)
   mod 1`` per group, ``dphase_int = ngroups * dphase (+ frameclocks / P for the R1 patterns)``
   (``instruments.miri.detector``);
2. "good" pixels (standard deviation over the groups below twice the median, pixeldq 0; the
   window's sample columns 1 and 2, i.e. columns 4-11, left out as jwst does) are summed per
   integration, group and phase bin (as many bins as waveform samples);
3. for 500 trial phase offsets the reference waveform (cubic spline of its samples, periodic) is
   placed at those phases; the amplitude that makes the binned ramps straightest (least-squares
   lines over the groups) and its chi-square follow in closed form (jwst's EMIfitter); the best
   offset is the vertex of a parabola through the three best trial offsets;
4. ``amplitude * waveform(phase)`` is subtracted from every pixel (the four outputs alike).

One amplitude and phase serve all integrations unless ``fit_ints_separately``. Fewer than 3
groups, a pattern other than FAST/SLOW(R1), or no subarray case: SKIPPED. The "sequential"
algorithm and on-the-fly frequencies (which jwst runs with it) are not available here, nor a
reference given as a file name (it comes through CRDS as the ``emicorr`` reference). Hot loops
(pixel statistics, phase binning, subtraction) are numba kernels; nothing 4-D is copied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit, prange

from transforms.instruments.miri import detector as md
from transforms.model import DataModel
from transforms.registry import register

from ._subarray import apply_by_copy, need_ref

NAME = "emicorr"
VERSION = "1.0"
READPATTS = ("FAST", "FASTR1", "SLOW", "SLOWR1")
NPHASES_OPT = 500


@dataclass(frozen=True)
class EmiCorrParams:
    """jwst 3.0's emicorr parameters and defaults (see the module doc for what is refused)."""

    algorithm: str = "joint"
    nints_to_phase: int | None = None
    nbins: int | None = None
    scale_reference: bool = True
    onthefly_corr_freq: tuple[float, ...] | None = None
    use_n_cycles: int | None = 3
    fit_ints_separately: bool = False
    user_supplied_reffile: str | None = None
    save_intermediate_results: bool = False

    def __post_init__(self) -> None:
        if self.algorithm not in ("joint", "sequential"):
            raise ValueError(f"emicorr: algorithm must be 'joint' or 'sequential', got "
                             f"{self.algorithm!r}")
        if self.algorithm == "sequential" or self.onthefly_corr_freq is not None:
            raise ValueError("emicorr: the 'sequential' algorithm (and on-the-fly frequencies, "
                             "which use it) is not available; use algorithm='joint' with the "
                             "EMICORR reference")
        if self.user_supplied_reffile is not None:
            raise ValueError("emicorr: user_supplied_reffile is a file name and transforms read "
                             "no files; give that file as the 'emicorr' reference instead")


# --- the reference -----------------------------------------------------------------------------

def subarray_case(ref: DataModel, subarray: str, readpatt: str, detector: str
                  ) -> tuple[int, int, list[str]] | None:
    """(rowclocks, frameclocks, frequency names) for the exposure, or None (jwst's
    get_subarcase: full frame is keyed FULL_FAST / FULL_SLOW)."""
    rp = str(readpatt).upper()
    speed = "SLOW" if "SLOW" in rp else "FAST" if "FAST" in rp else None
    if speed is None:
        return None
    name = f"{subarray}_{speed}" if "FULL" in str(subarray) else str(subarray)
    case = (ref.get("subarray_cases") or {}).get(name)
    if not isinstance(case, Mapping):
        return None
    try:
        freqs = case["freqs"][speed]
        if speed == "SLOW":
            freqs = freqs[str(detector)]
        return int(case["rowclocks"]), int(case["frameclocks"]), [str(f) for f in freqs]
    except (KeyError, TypeError):
        return None


def frequency(ref: DataModel, name: str) -> tuple[float, np.ndarray]:
    """(Hz, waveform samples) of a named frequency of the reference."""
    hz = ref.get(f"frequencies.{name}.frequency")
    wave = ref.arrays.get(f"frequencies.{name}.phase_amplitudes")
    if hz is None or wave is None:
        raise ValueError(f"emicorr: the EMICORR reference lists {name} for this configuration "
                         f"but has no frequency/phase_amplitudes for it")
    return float(hz), np.asarray(wave, dtype=np.float64)


# --- kernels -----------------------------------------------------------------------------------

@njit(parallel=True, nogil=True, cache=True)
def _pixel_std(data, out):
    """out[i, y, x] = standard deviation over the groups (two-pass, float64)."""
    nints, ng, ny, nx = data.shape
    for r in prange(nints * ny):
        i = r // ny
        y = r % ny
        for x in range(nx):
            s = 0.0
            for g in range(ng):
                s += data[i, g, y, x]
            m = s / ng
            v = 0.0
            for g in range(ng):
                d = data[i, g, y, x] - m
                v += d * d
            out[i, y, x] = np.sqrt(v / ng)


@njit(nogil=True, cache=True)
def _bin_by_phase(data, ok, idx, all_y, all_n):
    """Sum good pixels per integration, phase bin and group (sample columns 1, 2 skipped)."""
    nints, ng, ny, nx = data.shape
    nx4 = nx // 4
    for i in range(nints):
        for y in range(ny):
            for k in range(nx4):
                if k == 1 or k == 2:
                    continue
                p = idx[y, k]
                for out in range(4):
                    c = 4 * k + out
                    if ok[i, y, c]:
                        all_n[i, p] += 1.0
                        for g in range(ng):
                            all_y[i, p, g] += data[i, g, y, c]


@njit(parallel=True, nogil=True, cache=True)
def _subtract(plane, emi, amp):
    """plane[y, 4k + l] -= amp * emi[y, k] (in float64, stored as float32)."""
    ny, nx = plane.shape
    for y in prange(ny):
        for c in range(nx):
            plane[y, c] = plane[y, c] - amp * emi[y, c // 4]


# --- the fit -----------------------------------------------------------------------------------

class _Wave:
    """The reference waveform as jwst interpolates it: periodic, cubic spline of the samples
    (sample k at phase (k + 0.5) / n)."""

    def __init__(self, wave: np.ndarray):
        from scipy import interpolate

        n = len(wave)
        ext = np.concatenate([[wave[-1]], wave, [wave[0]]])
        self.phase_ext = (np.arange(n + 2) - 0.5) / n
        self.f = interpolate.interp1d(self.phase_ext, ext, kind="cubic")
        self.n = n

    def __call__(self, ph: np.ndarray) -> np.ndarray:
        return self.f(ph)


def _chisq_amplitudes(all_y, all_n, syz, stz, sz, szz, s_t, s_tt, delta, ng, phaselist,
                      dphase_int, ints: Sequence[int], phases: Sequence[float]
                      ) -> tuple[list[float], list[float]]:
    """jwst's calc_chisq_amplitudes: best chi-square and amplitude at each phase offset
    (``syz[k, i]`` is its per-phase-bin sum of waveform x binned ramp for trial offset k)."""
    all_sy = all_y.sum(axis=2)
    all_sty = (all_y * np.arange(ng)).sum(axis=2)
    chisq, amps = [], []
    for phase in phases:
        a_ = 0.0
        b_ = 0.0
        for i in ints:
            n_, s_y, s_ty = all_n[i], all_sy[i], all_sty[i]
            k = int(np.argmin(np.abs((phaselist - phase - dphase_int * i) % 1)))
            s_yz = syz[k, i]
            a_ += np.sum(n_ / delta * (-s_tt * sz[k] ** 2 + 2 * s_t * sz[k] * stz[k]
                                       - ng * stz[k] ** 2 + szz[k] * delta))
            b_ += (2 / delta) * np.sum(s_tt * sz[k] * s_y - s_t * stz[k] * s_y
                                       - s_t * sz[k] * s_ty + ng * stz[k] * s_ty)
            b_ -= 2 * np.sum(s_yz)
        if np.isclose(a_, 0, atol=1e-8) or not np.isfinite(a_) or not np.isfinite(b_):
            chisq.append(np.nan)
            amps.append(0.0)
        else:
            c = -b_ / (2 * a_)
            chisq.append(a_ * c ** 2 + b_ * c)
            amps.append(c)
    return chisq, amps


def best_phase(phases: np.ndarray, chisq: Sequence[float]) -> float:
    """The vertex of the parabola through the lowest chi-square and its two (periodic)
    neighbours (jwst's get_best_phase)."""
    chisq = np.asarray(chisq, dtype=np.float64)
    if not np.isfinite(chisq).any():
        return float(phases[0])
    ib = int(np.nanargmin(chisq))
    im, ip = ib - 1, ib + 1 if ib + 1 < len(chisq) else 0
    c3 = np.array([chisq[im], chisq[ib], chisq[ip]])
    if not np.isfinite(c3).all() or np.nanstd(c3) == 0:
        return float(phases[ib])
    a, b, _ = np.polyfit([phases[im], phases[ib], phases[ip]], c3, 2)
    return float(-b / (2 * a))


def fit_frequency(data: np.ndarray, pdq: np.ndarray, wave: np.ndarray, nsamples: int,
                  rowclocks: int, frameclocks: int, period: float,
                  fit_ints_separately: bool = False) -> tuple[np.ndarray, np.ndarray, Any]:
    """Fit one frequency: (amplitude per integration, phase offset per integration, a
    function ``emi(i, g)`` giving the (ny, nx/4) signal to subtract). ``data`` is read only."""
    nints, ng, ny, nx = data.shape
    nx4 = nx // 4
    frametime = ny * rowclocks + (1024.0 - ny) * (4 + 3.0)
    t0 = (np.arange(ny)[:, None] * rowclocks + np.arange(nx4)[None, :] * nsamples).astype(
        np.float64)
    phase = (t0 / period) % 1
    dphase = (frametime / period) % 1
    dphase_int = dphase * ng + frameclocks / period
    w = _Wave(wave)
    nph = w.n
    template = (w.phase_ext[1:-1, None] + np.arange(ng) * dphase) % 1  # (nph, ng)
    std = np.empty((nints, ny, nx), np.float64)
    _pixel_std(data, std)
    ok = (std < 2 * np.median(std)) & (pdq == 0)[None]
    idx = (phase * nph).astype(np.int64)
    all_y = np.zeros((nints, nph, ng))
    all_n = np.zeros((nints, nph))
    _bin_by_phase(data, ok, idx, all_y, all_n)
    # the waveform at every trial offset (jwst's EMIfitter)
    phaselist = np.arange(NPHASES_OPT) / NPHASES_OPT
    t = np.arange(ng)
    s_tt, s_t = float(np.sum(t ** 2)), float(np.sum(t))
    delta = ng * s_tt - s_t ** 2
    # per trial offset: the sums over groups jwst's EMIfitter keeps (the waveform itself is
    # not kept: NPHASES_OPT x nph x ngroups values would be 100 MB at 50 groups)
    stz, sz, szz = (np.empty((NPHASES_OPT, nph)) for _ in range(3))
    syz = np.empty((NPHASES_OPT, nints, nph))
    for k, dp in enumerate(phaselist):
        zk = w((template.T + dp) % 1).T  # (nph, ng)
        stz[k], sz[k], szz[k] = np.sum(t * zk, axis=1), np.sum(zk, axis=1), np.sum(zk ** 2, axis=1)
        for i in range(nints):
            syz[k, i] = np.sum(zk * all_y[i], axis=1)

    def fit(ints, phases):
        return _chisq_amplitudes(all_y, all_n, syz, stz, sz, szz, s_t, s_tt, delta, ng,
                                 phaselist, dphase_int, ints, phases)

    if fit_ints_separately:
        amps, phs = [], []
        for i in range(nints):
            chisq, _ = fit([i], phaselist)
            bp = best_phase(phaselist, chisq)
            phs.append(bp + i * dphase_int)
            amps += fit([i], [bp])[1]
        amps, phs = np.array(amps), np.array(phs)
    else:
        chisq, _ = fit(range(nints), phaselist)
        bp = best_phase(phaselist, chisq)
        c = fit(range(nints), [bp])[1][0]
        phs = (bp + np.arange(nints) * dphase_int) % 1
        amps = np.full(nints, c)

    def emi(i: int, g: int) -> np.ndarray:
        return w((phase + dphase * g + phs[i]) % 1)

    return amps, phs, emi


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: EmiCorrParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Fit and subtract each listed EMI frequency from the ramp buffer in place."""
    skipped = {f"cal_step.{NAME}": "SKIPPED"}
    if str(meta.get("instrument.name", "")).upper() != "MIRI":
        return skipped
    readpatt = str(meta.get("exposure.readpatt", "")).upper()
    if readpatt not in READPATTS:
        return skipped
    data, pdq = arrays["data"], arrays["pixeldq"]
    nints, ng, ny, nx = data.shape
    if ng < 3:
        return skipped
    if nx % 4:
        raise ValueError(f"emicorr: a MIRI window is a multiple of 4 columns wide, got {nx}")
    ref = need_ref(refs, "emicorr", NAME)
    case = subarray_case(ref, str(meta.get("subarray.name", "")), readpatt,
                         str(meta.get("instrument.detector", "")))
    if case is None or not case[2]:
        return skipped
    rowclocks, frameclocks, names = case
    fc = frameclocks if md.pattern(readpatt).extra_reset else 0
    nsamples = int(meta.get("exposure.nsamples") or md.pattern(readpatt).nsamples)
    fitted = {}
    for name in names:
        hz, wave = frequency(ref, name)
        view = data.view()
        view.flags.writeable = False
        amps, phs, emi = fit_frequency(view, pdq, wave, nsamples, rowclocks, fc,
                                       md.period_clocks(hz), params.fit_ints_separately)
        for i in range(nints):
            for g in range(ng):
                _subtract(data[i, g], emi(i, g), float(amps[i]))
        fitted[name] = {"amplitude": [float(a) for a in amps],
                        "phase": [float(p) for p in phs]}
    return {f"cal_step.{NAME}": "COMPLETE", "emicorr.fitted": fitted}


@register(NAME, VERSION, "detector1", EmiCorrParams, ("emicorr",), keyword="S_MIREMI",
          inplace=apply_inplace, skip_by_default=True, instruments=("MIRI",),
          exec_only=("save_intermediate_results",))
def apply(model: DataModel, refs: Mapping[str, DataModel], params: EmiCorrParams) -> DataModel:
    """Fit the EMI waveforms of the reference to the ramps and subtract them (MIRI)."""
    return apply_by_copy(model, refs, params, NAME, apply_inplace)
