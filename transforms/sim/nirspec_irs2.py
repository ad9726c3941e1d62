"""NIRSpec IRS2 exposures and their references (``instruments.nirspec.detector.IRS2Layout``).

The normal pixels are synthesised as for a traditional full frame (light, dark, cosmic rays,
non-linearity, saturation, white read noise of the IRS2 readout; no 1/f there). Then, in the
detector frame, per group, every sample gets the correlated noise of its output at the time it
was read (row y, time slot s: t = 712 y + s):

- a common 1/f component ``c(t)`` seen by all five outputs (the reference output too);
- a 1/f component ``n_k(t)`` of each science output k = 1..4;
- alternating-column noise ``a(t) (-1)^t``: a slowly varying amplitude at the pixel-clock
  Nyquist frequency, seen by all outputs;
- an offset and a linear drift per output and group;

band-limited to ``BAND`` cycles/sample (the 1/f components) and ``BAND`` around Nyquist (the ACN),
the bands the IRS2 correction works in. The interleaved reference pixels and the reference
output have a bias of their own and white noise. Some interleaved reference pairs are bad: a
few permanently (listed in the reference file's DQ table) and a few *intermittently* (this
exposure only: a positive offset, extra scatter, or one pixel of the pair off), which is what
refpix must find. Everything is rounded to 16 bits and turned into the science frame:
(nints, ngroups, 3200, 2048).

The IRS2 ``refpix`` reference is made for that model: ``beta_k`` = 712/256 (the inverse density
of the spread reference samples) over the low band, ``alpha_k`` = 1 around Nyquist (the
reference output carries the same ACN), zero elsewhere, each stored as jwst expects (a complex
spectrum of 712 x 2048 bins as interleaved float32 real/imaginary columns), with the DQ table of
the permanently bad pairs (OUTPUT, ODD_EVEN, MASK bits).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from transforms import dq as dqbits
from transforms.instruments.nirspec import detector as nrs
from transforms.model import DataModel
from transforms.sim import readout as ro
from transforms.sim import references as rf
from transforms.sim.detector import Effects, RampTruth

BAND = 0.016  # cycles/sample: band of the correlated noise (jwst's fill keeps < 0.0208)
IRS2_NOISE = 0.6  # IRS2 white read noise relative to the traditional readout's


@dataclass(frozen=True)
class IRS2Noise:
    """Amplitudes (DN rms per frame) of the correlated noise and the bad reference pairs."""

    common: float = 4.0
    output: float = 3.0
    acn: float = 2.0
    offset: float = 15.0
    drift: float = 4.0  # DN across a frame
    ref_white: float = 6.0  # white noise of the reference samples
    n_permanent: int = 3  # bad pairs per science output, listed in the DQ table
    n_intermittent: int = 2  # bad pairs per section (5 sections) in this exposure
    intermittent_offset: float = 40.0
    intermittent_scatter: float = 30.0


@dataclass(frozen=True)
class BadPair:
    science_row: int  # first row (science frame) of the pair
    kind: str  # "permanent", "offset", "scatter", "split"


@dataclass(frozen=True)
class IRS2Truth:
    bad_pairs: tuple[BadPair, ...]
    dq_table: dict = field(default_factory=dict)


def _band_noise(rng: np.random.Generator, n: int, rms: float, nyquist: bool) -> np.ndarray:
    """A circular 1/f series of n samples band-limited to BAND (around Nyquist if asked)."""
    from scipy import fft

    nf = n // 2 + 1
    f = np.arange(nf) / n
    amp = np.zeros(nf)
    if nyquist:
        d = 0.5 - f
        sel = (d > 0) & (d < BAND)
        amp[sel] = 1.0 / np.sqrt(np.maximum(d[sel], 1.0 / n))
    else:
        sel = (f > 0) & (f < BAND)
        amp[sel] = 1.0 / np.sqrt(f[sel])
    spec = amp * (rng.standard_normal(nf) + 1j * rng.standard_normal(nf))
    s = fft.irfft(spec, n=n)
    s *= rms / max(s.std(), 1e-12)
    if nyquist:
        return s  # band around 0.5: already alternates sample to sample
    return s


def _bad_pairs(rng: np.random.Generator, noise: IRS2Noise, layout: nrs.IRS2Layout):
    """Permanently bad pairs per science output (DQ table) and intermittently bad ones.

    Pairs are given in the detector frame: output k (1..4), block b (0..31), odd_even (1, 2),
    i.e. columns ``640 k + 8 + 20 b + 2 (oe_row - 1)`` + (0, 1) as jwst's clobber_ref reads
    the table (oe_row = odd_even, swapped on even outputs)."""
    w = layout.width
    period = layout.n + layout.r
    perm = []
    for k in range(1, 5):
        for b in rng.choice(32, noise.n_permanent, replace=False):
            oe = int(rng.integers(1, 3))
            oe_row = 3 - oe if k % 2 == 0 else oe
            col = k * w + layout.n // 2 + int(b) * period + 2 * (oe_row - 1)
            perm.append((k, oe, int(b), col))
    inter = []
    kinds = ("offset", "scatter", "split")
    taken = {c for *_, c in perm}
    for k in range(5):
        n = 0
        while n < noise.n_intermittent:
            b = int(rng.integers(0, 32))
            p = int(rng.integers(0, 2))
            col = k * w + layout.n // 2 + b * period + 2 * p
            if col in taken:
                continue
            taken.add(col)
            inter.append((col, kinds[(k + n) % 3]))
            n += 1
    return perm, inter


def dq_table(perm) -> dict[str, np.ndarray]:
    """The refpix reference's DQ table: 8 rows (output 1-4 x odd_even 1-2), MASK bits = blocks."""
    rows = {(k, oe): 0 for k in range(1, 5) for oe in (1, 2)}
    for k, oe, b, _ in perm:
        rows[(k, oe)] |= 1 << b
    keys = sorted(rows)
    return {"OUTPUT": np.array([k for k, _ in keys], np.uint16),
            "ODD_EVEN": np.array([oe for _, oe in keys], np.uint16),
            "MASK": np.array([rows[key] for key in keys], np.uint32)}


def synthesize_irs2(normal_sci: np.ndarray, props: rf.DetectorProps, detector: str,
                    rng: np.random.Generator, noise: IRS2Noise, perm, inter,
                    nframes: int, layout: nrs.IRS2Layout = nrs.IRS2Layout()) -> np.ndarray:
    """The raw uint16 IRS2 ramp (nints, ngroups, 3200, 2048), science frame, from the ramp of
    the normal pixels (nints, ngroups, 2048, 2048, science frame, DN with bias)."""
    nints, ng = normal_sci.shape[:2]
    ny, nx, w, row = nrs.FULL, layout.nx, layout.width, layout.row
    n = ny * row
    mask = layout.mask()
    cols = np.arange(nx)
    k_of = cols // w
    j = cols % w
    slot = layout.slot[np.where(k_of % 2 == 0, w - 1 - j, j)]
    tidx = (np.arange(ny)[:, None] * row + slot[None, :])  # (ny, nx) time index per pixel
    ref_bias = _ref_field(props, detector, layout)
    white = noise.ref_white / np.sqrt(nframes)
    out = np.empty((nints, ng, layout.nx, nrs.FULL), np.uint16)
    bad_cols = {c: kind for c, kind in inter}
    perm_cols = [c for *_, c in perm]
    for i in range(nints):
        for g in range(ng):
            raw = np.empty((ny, nx))
            raw[:, mask] = nrs.to_detector(normal_sci[i, g].astype(np.float64), detector)
            raw[:, ~mask] = ref_bias[:, ~mask] + rng.standard_normal((ny, int((~mask).sum()))) * white
            s = 1.0 / np.sqrt(nframes)
            common = _band_noise(rng, n, noise.common * s, False)
            acn = _band_noise(rng, n, noise.acn * s, True)
            tt = (np.arange(n) - n / 2) / n
            for k in range(5):
                series = common + acn
                if k > 0:
                    series = series + _band_noise(rng, n, noise.output * s, False)
                series = series + rng.normal(0.0, noise.offset) + rng.normal(0.0, noise.drift) * tt
                sl = slice(k * w, (k + 1) * w)
                raw[:, sl] += series[tidx[:, sl]]
            for c in perm_cols:
                raw[:, c:c + 2] += rng.normal(300.0, 200.0, (ny, 2))
            for c, kind in bad_cols.items():
                if kind == "offset":
                    raw[:, c:c + 2] += noise.intermittent_offset
                elif kind == "scatter":
                    raw[:, c:c + 2] += rng.normal(0.0, noise.intermittent_scatter, (ny, 2))
                else:
                    raw[:, c + 1] += noise.intermittent_offset
            out[i, g] = nrs.to_science(np.clip(np.rint(raw), 0, 65535).astype(np.uint16),
                                       detector)
    return out


def _ref_field(props: rf.DetectorProps, detector: str, layout: nrs.IRS2Layout) -> np.ndarray:
    """Bias of the interleaved reference pixels and of the reference output (detector frame
    (2048, 3200); the normal columns are left 0), deterministic per detector."""
    rng = np.random.default_rng([int(props.extra.get("seed", 0)), 3200,
                                 0 if detector == "NRS1" else 1])
    base = float(np.median(props.superbias))
    return base + rng.normal(0.0, 150.0, (nrs.FULL, layout.nx))


def irs2_superbias(props: rf.DetectorProps, detector: str, useafter: str,
                   layout: nrs.IRS2Layout = nrs.IRS2Layout()) -> DataModel:
    """SUPERBIAS in IRS2 format (3200 x 2048, science frame): the normal pixels' bias and the
    reference samples' own."""
    full = nrs.to_science(_ref_field(props, detector, layout), detector).astype(np.float32)
    nrs.to_irs2(full, props.superbias, detector, layout)
    base = rf.superbias_ref(props, useafter, "N/A")
    return base.replace(arrays={"data": full, "err": np.full(full.shape, 2.0, np.float32),
                                "dq": np.zeros(full.shape, np.uint32)})


def irs2_mask(props: rf.DetectorProps, detector: str, useafter: str,
              layout: nrs.IRS2Layout = nrs.IRS2Layout()) -> DataModel:
    """MASK in IRS2 format: the normal rows as the traditional mask, REFERENCE_PIXEL on the
    interleaved reference pixels and the reference output."""
    base = rf.mask_ref(props, useafter)
    dq = np.full((layout.nx, nrs.FULL), dqbits.REFERENCE_PIXEL, np.uint32)
    nrs.to_irs2(dq, base["dq"], detector, layout)
    return base.replace(arrays={"dq": dq})


def refpix_reference(detector: str, useafter: str, table: dict[str, np.ndarray],
                     layout: nrs.IRS2Layout = nrs.IRS2Layout()) -> DataModel:
    """The IRS2 ``refpix`` reference for this simulator's noise model (see module doc)."""
    n = nrs.FULL * layout.row
    f = np.fft.fftfreq(n)
    taper = 0.003  # cos taper width (cycles/sample) at the band edges
    edge = BAND + taper

    def band(d):
        out = np.zeros(d.shape)
        out[d <= BAND] = 1.0
        mid = (d > BAND) & (d < edge)
        out[mid] = 0.5 * (1 + np.cos(np.pi * (d[mid] - BAND) / taper))
        return out

    beta = band(np.abs(f)) * (layout.row / (2 * layout.r * 512 // layout.n))
    alpha = band(np.abs(0.5 - np.abs(f)))
    arrays = {}
    for name, spec in (("alpha", alpha), ("beta", beta)):
        inter = np.zeros(2 * n, np.float32)
        inter[0::2] = spec
        for i in range(4):
            arrays[f"irs2_table.{name}_{i}"] = inter
    for c, v in table.items():
        arrays[f"dq_table.{c}"] = v
    meta = {"reftype": "refpix", "telescope": "JWST", "instrument.name": "NIRSPEC",
            "instrument.detector": detector, "useafter": useafter,
            "pedigree": "INFLIGHT 2023-01-01 2023-12-31", "author": "calops simulator",
            "description": "IRS2 reference-pixel coefficients (simulated)",
            "exposure.readpatt": "ANY"}
    return DataModel("ref.refpix", arrays, meta)


def simulate_irs2(spec, seed: int = 0, effects: Effects | None = None,
                  light_rate_e: np.ndarray | None = None, noise: IRS2Noise = IRS2Noise()):
    """One IRS2 exposure (``NirspecExposureSpec`` with NRSIRS2RAPID or NRSIRS2, full frame):
    ``NirspecExposure`` whose truth is that of the 2048 x 2048 normal pixels and whose
    ``truth.extra["irs2"]`` lists the bad reference pairs."""
    from transforms.sim import nirspec as sn

    det = nrs.check_detector(spec.detector)
    if spec.subarray != "FULL":
        raise ro.ReadoutError(f"{spec.readpatt} reads full frame only, not {spec.subarray}")
    sub = sn.window("FULL", det)
    tim = ro.timing(sn.INSTRUMENT, spec.readpatt, sub, spec.ngroups, spec.nints)
    eff = replace(effects or Effects(), one_over_f=False, bias_offsets=False, bias_drift=False)
    props = rf.detector_properties(det, seed, sub)
    props = replace(props, read_noise=(props.read_noise * IRS2_NOISE).astype(np.float32),
                    extra={"seed": seed})
    light = sn.traces(sub, seed) if light_rate_e is None else np.asarray(light_rate_e, float)
    light = np.where(props.refpix, 0.0, light * props.flat)
    rng = np.random.default_rng([int(seed), 2020, spec.observation, spec.visit, spec.exposure,
                                 0 if det == "NRS1" else 1])
    normal, truth = sn.synthesize_nirspec(light, props, sub, tim, rng, eff, det)
    layout = nrs.IRS2Layout()
    perm, inter = _bad_pairs(np.random.default_rng([int(seed), 2021, 0 if det == "NRS1" else 1]),
                             noise, layout)
    data = synthesize_irs2(normal, props, det, rng, noise, perm, inter, tim.nframes, layout)
    table = dq_table(perm)
    sci_row = (lambda c: c) if det == "NRS1" else (lambda c: layout.nx - 2 - c)
    bad = tuple([BadPair(sci_row(c), "permanent") for *_, c in perm]
                + [BadPair(sci_row(c), kind) for c, kind in inter])
    truth = replace(truth, extra={"irs2": IRS2Truth(bad, table)})
    meta = sn.exposure_meta(spec, sub, tim)
    uncal = DataModel("uncal", {"data": data}, meta)
    refs = sn.trad_refs(props, tim, sub, spec.exp_type, tim.nframes_per_integration + 2)
    refs["mask"] = irs2_mask(props, det, sn.USEAFTER, layout)
    refs["superbias"] = irs2_superbias(props, det, sn.USEAFTER, layout)
    refs["refpix"] = refpix_reference(det, sn.USEAFTER, table, layout)
    refs["pictureframe"] = sn.pictureframe_ref(det)
    return sn.NirspecExposure(spec, uncal, truth, refs, props)


def irs2_truth(exposure) -> IRS2Truth:
    return exposure.truth.extra["irs2"]


__all__ = ["IRS2Noise", "simulate_irs2", "synthesize_irs2", "refpix_reference", "irs2_mask",
           "irs2_superbias", "dq_table", "BAD_PAIR_KINDS", "RampTruth"]
BAD_PAIR_KINDS = ("permanent", "offset", "scatter", "split")
