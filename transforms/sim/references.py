"""Per-pixel detector properties and the JWST-layout reference models made from them.

Every property of a detector pixel (bias level, gain, read noise, dark rate, hot/dead pixels,
flat, non-linearity, full well) is drawn from a generator seeded by (seed, detector, quantity,
64-row block), so a pixel's value does not depend on the window asked for: a SUB64 exposure and
a full-frame reference agree pixel by pixel. Reference models carry the JWST reference layouts
(``data``/``dq``/``err``, ``coeffs`` for linearity, ``dq_def``-free) and the meta CRDS selects on.
References may cover a window of the detector (``subarray.*`` meta, 1-based), as JWST subarray
references do; steps cut the science window out by the offsets.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transforms import dq as dqbits
from transforms.instruments.miri import detector as _miri
from transforms.model import DataModel
from transforms.sim.readout import FULL_SIZE, REF_BORDER, Subarray, custom_subarray

BLOCK_ROWS = 64


class ReferenceError(ValueError):
    """A detector or reference request the simulator cannot satisfy."""


@dataclass(frozen=True)
class DetectorSpec:
    """The nominal characteristics of one detector (what the references are drawn around)."""

    instrument: str
    detector: str
    channel: str | None  # NIRCam SHORT/LONG, None for NIRISS
    module: str | None
    gain: float  # e-/DN
    read_noise: float  # DN, one frame
    bias: float  # DN, mean reset level
    dark_rate: float  # e-/s, typical pixel
    well: float  # DN above bias where the pixel saturates (raw, non-linear)
    lin_c2: float  # correction coefficient of raw^2 (1/DN)
    lin_c3: float  # correction coefficient of raw^3 (1/DN^2)
    pixel_scale: float  # arcsec/pixel
    v2_ref: float  # arcsec, aperture reference point (SIAF-like)
    v3_ref: float
    v3yangle: float  # deg
    vparity: int
    aperture: str
    charge_migration_dn: float | None = None  # NIRISS: DN above which charge leaks


DETECTORS: dict[str, DetectorSpec] = {
    "NRCA1": DetectorSpec("NIRCAM", "NRCA1", "SHORT", "A", 2.05, 9.0, 12000.0, 0.003, 40000.0,
                          2.5e-6, 2.0e-11, 0.0311, 120.6714, -527.3877, -0.5799, -1,
                          "NRCA1_FULL"),
    "NRCA5": DetectorSpec("NIRCAM", "NRCA5", "LONG", "A", 1.82, 8.5, 13000.0, 0.03, 42000.0,
                          2.2e-6, 1.5e-11, 0.0630, 86.1035, -493.2275, -0.1186, -1,
                          "NRCA5_FULL"),
    "NIS": DetectorSpec("NIRISS", "NIS", None, None, 1.61, 11.0, 11000.0, 0.02, 45000.0,
                        2.0e-6, 1.0e-11, 0.0656, -290.1, -697.5, -0.5680, -1, "NIS_CEN",
                        charge_migration_dn=25000.0),
    # NIRSpec (science frame; transforms/instruments/nirspec/detector.py): gain, noise, bias and
    # aperture values are typical, not calibrated; the spectral WCS lives in instruments/nirspec.
    "NRS1": DetectorSpec("NIRSPEC", "NRS1", None, None, 1.00, 10.5, 12500.0, 0.006, 48000.0,
                         2.0e-6, 1.0e-11, 0.1035, 378.6, -428.4, 138.5, -1, "NRS1_FULL"),
    "NRS2": DetectorSpec("NIRSPEC", "NRS2", None, None, 1.14, 11.5, 11800.0, 0.008, 48000.0,
                         2.2e-6, 1.2e-11, 0.1035, 378.6, -491.0, 138.5, -1, "NRS2_FULL"),
    # MIRI (transforms/instruments/miri/detector.py): 1032x1024, 4 interleaved outputs; the
    # bias is the raw reset level; the MRS detectors' aperture values are nominal.
    **{d: DetectorSpec("MIRI", d, None, None, 5.5, 4.0, 11000.0, 0.1, 45000.0, 1.2e-6, 1.0e-12,
                       s, v2, v3, ya, -1, ap) for d, s, v2, v3, ya, ap in (
        ("MIRIMAGE", 0.1108, -453.559, -373.814, 5.0152, "MIRIM_FULL"),
        ("MIRIFULONG", 0.196, -502.65, -318.74, 8.26, "MIRIFU_CHANNEL3A"),
        ("MIRIFUSHORT", 0.13, -502.65, -318.74, 8.26, "MIRIFU_CHANNEL1A"))},
}

# Interpixel capacitance of the simulated near-IR detectors: the fraction of a pixel's signal
# that appears in each horizontal (alpha_x) and vertical (alpha_y) neighbour and in each
# diagonal one (beta). Typical H2RG values (NIRCam/NIRISS ~0.5-0.7% nearest-neighbour coupling,
# slightly anisotropic, ~0.05% diagonal); a detector missing here has no simulated IPC.
IPC_COUPLING: dict[str, tuple[float, float, float]] = {
    "NRCA1": (0.0055, 0.0062, 0.0005),
    "NRCA5": (0.0060, 0.0068, 0.0006),
    "NIS": (0.0058, 0.0064, 0.0005),
}

# Charge traps (persistence), in the parametrisation of JWST's TRAPPARS references: per trap
# family, ``capture0`` the share of a pixel's traps (TRAPDENSITY) the family holds when the
# pixel reaches its persistence saturation (PERSAT) level, ``capture1`` (1/s, negative) the
# rate at which they fill, ``capture2`` (1/s) a linear slow capture (none here), and
# ``decay_param`` (1/s, negative) the rate at which filled traps release their charge. Release
# times of minutes to hours and ~0.5 e-/s just after a saturation are typical of NIR H2RGs.
TRAP_FAMILIES: tuple[tuple[float, float, float, float], ...] = (
    (0.5, -1.0 / 50.0, 0.0, -1.0 / 300.0),
    (0.3, -1.0 / 100.0, 0.0, -1.0 / 1500.0),
    (0.2, -1.0 / 200.0, 0.0, -1.0 / 6000.0),
)
TRAP_DENSITY: dict[str, float] = {"NRCA1": 300.0, "NRCA5": 400.0, "NIS": 350.0}  # traps/pixel
PERSAT_FRACTION = 0.8  # persistence saturation level, as a share of the full well

# Conversion DN/s -> MJy/sr and pixel solid angle per (instrument, filter), JWST-like values.
PHOTOM: dict[tuple[str, str], dict[str, float]] = {
    ("NIRCAM", "F150W"): {"photmjsr": 0.2556, "pivot": 1.501},
    ("NIRCAM", "F200W"): {"photmjsr": 0.2143, "pivot": 1.990},
    ("NIRCAM", "F444W"): {"photmjsr": 0.4283, "pivot": 4.421},
    ("NIRISS", "F150W"): {"photmjsr": 0.2541, "pivot": 1.497},
    ("NIRISS", "F200W"): {"photmjsr": 0.2218, "pivot": 1.993},
    **{("MIRI", f): {"photmjsr": c, "pivot": w} for f, c, w in (
        ("F560W", 0.512, 5.635), ("F770W", 0.233, 7.639), ("F1000W", 0.367, 9.953),
        ("F1130W", 1.060, 11.309), ("F1280W", 0.456, 12.810), ("F1500W", 0.377, 15.064),
        ("F1800W", 0.581, 17.984), ("F2100W", 0.493, 20.795), ("F2550W", 1.531, 25.365))},
}

_QTY = {name: i for i, name in enumerate(
    ("bias", "gain", "rnoise", "dark", "hot", "dead", "flat", "lin", "well", "flat_err",
     "newhot", "miri_reset", "miri_rscd", "miri_frame", "miri_dark", "traps"))}


def detector_spec(detector: str) -> DetectorSpec:
    """The spec of a simulated detector by its DETECTOR name."""
    try:
        return DETECTORS[detector.upper()]
    except KeyError:
        raise ReferenceError(f"unknown detector {detector!r}; the simulator knows "
                             f"{', '.join(DETECTORS)}") from None


def detector_shape(spec: DetectorSpec) -> tuple[int, int]:
    """(rows, columns) of a full frame of the detector (MIRI: 1024 x 1032)."""
    return (_miri.NROWS, _miri.NCOLS) if spec.instrument == "MIRI" else (FULL_SIZE, FULL_SIZE)


def band(filt: str, pupil: str | None) -> str:
    """The passband of a filter/pupil pair (NIRISS imaging puts F150W in the pupil wheel)."""
    if str(filt).upper() == "CLEAR" and pupil and str(pupil).upper() not in ("CLEAR", "N/A"):
        return str(pupil).upper()
    return str(filt).upper()


def photom_values(instrument: str, filt: str, spec: DetectorSpec) -> dict[str, float]:
    """PHOTMJSR, PIXAR_SR and PIXAR_A2 for one instrument/filter."""
    try:
        p = PHOTOM[(instrument.upper(), filt.upper())]
    except KeyError:
        raise ReferenceError(f"no photometric calibration for {instrument} {filt}; known: "
                             f"{sorted(PHOTOM)}") from None
    a2 = spec.pixel_scale ** 2
    return {"photmjsr": p["photmjsr"], "pivot": p["pivot"], "pixar_a2": a2,
            "pixar_sr": a2 * (np.pi / 180.0 / 3600.0) ** 2}


def _block_rng(seed: int, detector: str, qty: str, block: int) -> np.random.Generator:
    det = zlib.crc32(detector.encode())
    return np.random.default_rng([int(seed), det, _QTY[qty], int(block)])


def _field(seed: int, detector: str, qty: str, win: Subarray, draw) -> np.ndarray:
    """A full-width per-pixel field drawn block by block, cut to ``win``."""
    rows, cols = win.slices
    b0, b1 = rows.start // BLOCK_ROWS, (rows.stop - 1) // BLOCK_ROWS
    parts = [draw(_block_rng(seed, detector, qty, b), (BLOCK_ROWS, FULL_SIZE))
             for b in range(b0, b1 + 1)]
    full = np.concatenate(parts, axis=0)
    r0 = rows.start - b0 * BLOCK_ROWS
    return np.ascontiguousarray(full[r0:r0 + win.ysize, cols])


@dataclass(frozen=True)
class DetectorProps:
    """True per-pixel properties of a detector window (what the simulation uses)."""

    spec: DetectorSpec
    window: Subarray
    superbias: np.ndarray  # DN float32
    gain: np.ndarray  # e-/DN float32
    read_noise: np.ndarray  # DN per frame float32
    dark_rate: np.ndarray  # e-/s float32 (0 on reference pixels)
    flat: np.ndarray  # relative QE float32 (0 dead, 0 on reference pixels)
    lin_coeffs: np.ndarray  # (4, ny, nx) float32: corrected = sum c_i raw^i
    well: np.ndarray  # DN above bias where the signal stops (raw)
    refpix: np.ndarray  # bool, reference border
    hot: np.ndarray  # bool
    dead: np.ndarray  # bool
    new_hot: np.ndarray  # bool: hot pixels that appeared after the first dark was made
    flat_error: np.ndarray  # float32 multiplicative error of the old flat
    extra: Mapping[str, Any] = field(default_factory=dict)


def detector_properties(detector: str, seed: int, window: Subarray | None = None) -> DetectorProps:
    """The true properties of ``detector`` over ``window`` (default full frame)."""
    spec = detector_spec(detector)
    miri = spec.instrument == "MIRI"
    win = window or (custom_subarray(1, 1, _miri.NCOLS, _miri.NROWS, 4, "FULL") if miri
                     else custom_subarray(1, 1, FULL_SIZE, FULL_SIZE, 4, "FULL"))
    det = spec.detector

    def f(qty, draw):
        return _field(seed, det, qty, win, draw)

    bias = f("bias", lambda r, s: spec.bias + r.normal(0.0, 250.0, s))
    gain = f("gain", lambda r, s: spec.gain * (1.0 + r.normal(0.0, 0.02, s)))
    rn = f("rnoise", lambda r, s: spec.read_noise * r.lognormal(0.0, 0.1, s))
    dark = f("dark", lambda r, s: spec.dark_rate * r.lognormal(0.0, 0.5, s))
    hot = f("hot", lambda r, s: r.random(s) < 5e-4)
    hot_rate = f("hot", lambda r, s: r.uniform(0.5, 20.0, s))
    new_hot = f("newhot", lambda r, s: r.random(s) < 2e-4)
    dead = f("dead", lambda r, s: r.random(s) < 2e-4)
    flat = f("flat", lambda r, s: 1.0 + r.normal(0.0, 0.02, s))
    lin = f("lin", lambda r, s: 1.0 + r.normal(0.0, 0.05, s))
    well = f("well", lambda r, s: spec.well * (1.0 + r.normal(0.0, 0.03, s)))
    ferr = f("flat_err", lambda r, s: 1.0 + r.normal(0.0, 0.01, s))

    rows, cols = win.slices
    yy, xx = np.meshgrid(np.arange(rows.start, rows.stop), np.arange(cols.start, cols.stop),
                         indexing="ij")
    ref = ((yy < REF_BORDER) | (yy >= FULL_SIZE - REF_BORDER)
           | (xx < REF_BORDER) | (xx >= FULL_SIZE - REF_BORDER))
    if miri:  # reference columns only (instruments.miri.detector)
        ref = _miri.reference_mask(win.xstart, win.ystart, win.xsize, win.ysize)
    # A gentle large-scale QE pattern on top of the pixel-to-pixel one.
    flat = flat * (1.0 + 0.03 * np.cos(2 * np.pi * xx / 2048.0) * np.sin(np.pi * yy / 2048.0))
    hot = hot & ~ref
    new_hot = new_hot & ~ref & ~hot
    dead = dead & ~ref & ~hot & ~new_hot
    dark = np.where(hot | new_hot, hot_rate, dark)
    dark = np.where(ref, 0.0, dark)
    flat = np.where(dead | ref, 0.0, flat)
    coeffs = np.zeros((4,) + bias.shape, np.float32)
    coeffs[1] = 1.0
    coeffs[2] = spec.lin_c2 * lin
    coeffs[3] = spec.lin_c3 * lin
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    return DetectorProps(spec, win, f32(bias), f32(gain), f32(rn), f32(dark), f32(flat), coeffs,
                         f32(well), ref, hot, dead, new_hot, f32(ferr))


# --------------------------------------------------------------------------------------------
# Reference models
# --------------------------------------------------------------------------------------------

_NON_SCIENCE = dqbits.PIXEL["NON_SCIENCE"]
SATURATION_FRACTION = 0.97  # the saturation reference sits this far up the full well


def _ref_meta(reftype: str, props: DetectorProps, useafter: str, description: str,
              **extra: Any) -> dict[str, Any]:
    s, w = props.spec, props.window
    meta = {
        "reftype": reftype,
        "telescope": "JWST",
        "instrument.name": s.instrument,
        "instrument.detector": s.detector,
        "useafter": useafter,
        "pedigree": "INFLIGHT 2023-01-01 2023-12-31",
        "description": description,
        "author": "calops simulator",
        "subarray.name": w.name,
        "subarray.xstart": w.xstart,
        "subarray.ystart": w.ystart,
        "subarray.xsize": w.xsize,
        "subarray.ysize": w.ysize,
    }
    if s.channel:
        meta["instrument.channel"] = s.channel
        meta["instrument.module"] = s.module
    meta.update({k: v for k, v in extra.items() if v is not None})
    return meta


def _refpix_dq(props: DetectorProps) -> np.ndarray:
    return np.where(props.refpix, np.uint32(dqbits.REFERENCE_PIXEL | _NON_SCIENCE),
                    np.uint32(0)).astype(np.uint32)


def mask_ref(props: DetectorProps, useafter: str, filt: str = "N/A") -> DataModel:
    """MASK: DEAD, HOT (known hot pixels), reference pixels."""
    dq = _refpix_dq(props)
    dq |= np.where(props.dead, np.uint32(dqbits.DEAD | dqbits.DO_NOT_USE), np.uint32(0))
    dq |= np.where(props.hot, np.uint32(dqbits.HOT), np.uint32(0))
    return DataModel("ref.mask", {"dq": dq}, _ref_meta("mask", props, useafter,
                     "Bad pixel mask (simulated)"))


def saturation_ref(props: DetectorProps, useafter: str) -> DataModel:
    """SATURATION: raw DN (bias included) above which a group is saturated."""
    data = props.superbias + SATURATION_FRACTION * props.well
    data = np.minimum(data, 65535.0).astype(np.float32)
    dq = np.where(props.refpix, np.uint32(dqbits.NO_SAT_CHECK), np.uint32(0)).astype(np.uint32)
    return DataModel("ref.saturation", {"data": data, "dq": dq},
                     _ref_meta("saturation", props, useafter, "Saturation thresholds (simulated)"))


def superbias_ref(props: DetectorProps, useafter: str, readpatt: str = "ANY") -> DataModel:
    """SUPERBIAS: the mean reset level (DN)."""
    err = np.full(props.superbias.shape, 2.0, np.float32)
    return DataModel("ref.superbias",
                     {"data": props.superbias.copy(), "err": err,
                      "dq": np.zeros(props.superbias.shape, np.uint32)},
                     _ref_meta("superbias", props, useafter, "Super bias (simulated)",
                               **{"exposure.readpatt": readpatt}))


def linearity_ref(props: DetectorProps, useafter: str) -> DataModel:
    """LINEARITY: ``coeffs`` (ncoeffs, ny, nx); corrected = sum_i coeffs[i] * raw**i."""
    dq = np.where(props.refpix, np.uint32(dqbits.NO_LIN_CORR), np.uint32(0)).astype(np.uint32)
    return DataModel("ref.linearity", {"coeffs": props.lin_coeffs.copy(), "dq": dq},
                     _ref_meta("linearity", props, useafter, "Linearity correction (simulated)"))


def dark_ref(props: DetectorProps, useafter: str, tframe: float, nframes: int,
             exp_type: str, include_new_hot: bool = True) -> DataModel:
    """DARK: (nframes, ny, nx) DN with nframes=1, groupgap=0 sampling, as JWST darks.

    ``include_new_hot=False`` makes the older dark that predates the new hot pixels.
    """
    rate = props.dark_rate if include_new_hot else np.where(
        props.new_hot, 0.0, props.dark_rate).astype(np.float32)
    t = tframe * np.arange(1, nframes + 1, dtype=np.float32)
    data = (t[:, None, None] * (rate / props.gain)[None]).astype(np.float32)
    hot = props.hot | (props.new_hot if include_new_hot else False)
    dq = np.where(hot, np.uint32(dqbits.HOT), np.uint32(0)).astype(np.uint32)
    err = np.full(data.shape, 0.5, np.float32)
    return DataModel("ref.dark", {"data": data, "dq": dq, "err": err},
                     _ref_meta("dark", props, useafter, "Dark current (simulated)",
                               **{"exposure.nframes": 1, "exposure.groupgap": 0,
                                  "exposure.ngroups": int(nframes),
                                  "exposure.frame_time": float(tframe),
                                  "exposure.type": exp_type,
                                  "exposure.noutputs": props.window.noutputs}))


def gain_ref(props: DetectorProps, useafter: str) -> DataModel:
    """GAIN: e-/DN per pixel."""
    return DataModel("ref.gain", {"data": props.gain.copy()},
                     _ref_meta("gain", props, useafter, "Gain (simulated)"))


def readnoise_ref(props: DetectorProps, useafter: str) -> DataModel:
    """READNOISE: the CDS read noise (DN) per pixel, as JWST's READNOISE references hold it:
    sqrt(2) times the noise of one frame that the simulator adds."""
    cds = (props.read_noise * np.float32(np.sqrt(2.0))).astype(props.read_noise.dtype)
    return DataModel("ref.readnoise", {"data": cds},
                     _ref_meta("readnoise", props, useafter, "Read noise (simulated)"))


def flat_ref(props: DetectorProps, useafter: str, filt: str, pupil: str,
             old: bool = False) -> DataModel:
    """FLAT: relative response; ``old=True`` is an earlier flat that is off by ~1%."""
    data = props.flat * (props.flat_error if old else 1.0)
    bad = props.dead | props.refpix
    data = np.where(bad, 1.0, data).astype(np.float32)
    dq = np.where(bad, np.uint32(dqbits.NO_FLAT_FIELD | dqbits.DO_NOT_USE), np.uint32(0))
    err = np.full(data.shape, 0.005, np.float32)
    return DataModel("ref.flat", {"data": data, "dq": dq.astype(np.uint32), "err": err},
                     _ref_meta("flat", props, useafter,
                               "Flat field (simulated" + (", early version)" if old else ")"),
                               **{"instrument.filter": filt, "instrument.pupil": pupil}))


def photom_ref(props: DetectorProps, useafter: str,
               elements: tuple[tuple[str, str], ...]) -> DataModel:
    """PHOTOM: a ``phot_table`` row (filter, pupil, photmjsr, uncertainty) per optical element,
    as the JWST imaging photom files (one file per detector, all filters), + PIXAR_* meta."""
    vals = [photom_values(props.spec.instrument, band(f, p), props.spec) for f, p in elements]
    arrays = {
        "phot_table.filter": np.array([f for f, _ in elements]),
        "phot_table.pupil": np.array([p for _, p in elements]),
        "phot_table.photmjsr": np.array([v["photmjsr"] for v in vals], np.float32),
        "phot_table.uncertainty": np.array([0.01 * v["photmjsr"] for v in vals], np.float32),
    }
    return DataModel("ref.photom", arrays,
                     _ref_meta("photom", props, useafter, "Photometric calibration (simulated)",
                               **{"photometry.pixelarea_steradians": vals[0]["pixar_sr"],
                                  "photometry.pixelarea_arcsecsq": vals[0]["pixar_a2"]}))


def area_ref(props: DetectorProps, useafter: str, filt: str, pupil: str,
             area: np.ndarray) -> DataModel:
    """AREA: pixel area relative to nominal (from the distortion)."""
    p = photom_values(props.spec.instrument, band(filt, pupil), props.spec)
    return DataModel("ref.area", {"data": np.asarray(area, np.float32)},
                     _ref_meta("area", props, useafter, "Pixel area map (simulated)",
                               **{"instrument.filter": filt, "instrument.pupil": pupil,
                                  "photometry.pixelarea_steradians": p["pixar_sr"],
                                  "photometry.pixelarea_arcsecsq": p["pixar_a2"]}))


# A modest second-order distortion (arcsec per pixel^2), scaled by pixel scale.
_DIST_C2 = {"c2_0": 2.0e-8, "c1_1": 1.0e-8, "c0_2": -1.5e-8}


def distortion_ref(spec: DetectorSpec, useafter: str, exp_type: str, filt: str = "N/A",
                   pupil: str = "N/A") -> DataModel:
    """DISTORTION in the representation transforms.wcs reads (``distortion.*`` meta)."""
    from transforms.wcs import distortion_meta

    k = spec.pixel_scale / 0.0311
    ny, nx = detector_shape(spec)
    cx = {n: v * k for n, v in _DIST_C2.items()}
    cy = {"c2_0": -0.5e-8 * k, "c1_1": 1.2e-8 * k, "c0_2": 0.8e-8 * k}
    meta = distortion_meta(instrument=spec.instrument, detector=spec.detector,
                           v2_ref=spec.v2_ref, v3_ref=spec.v3_ref, v3yangle=spec.v3yangle,
                           vparity=spec.vparity, crpix1=(nx - 1) / 2.0, crpix2=(ny - 1) / 2.0,
                           scale_x=spec.pixel_scale, scale_y=spec.pixel_scale, degree=2,
                           coeffs_x=cx, coeffs_y=cy, naxis1=nx, naxis2=ny)
    meta.update({"telescope": "JWST", "useafter": useafter,
                 "pedigree": "INFLIGHT 2023-01-01 2023-12-31",
                 "description": "Distortion (simulated, SIAF-like aperture " + spec.aperture + ")",
                 "author": "calops simulator", "exposure.type": exp_type,
                 "aperture.name": spec.aperture})
    if spec.channel:
        meta["instrument.channel"] = spec.channel
        meta["instrument.module"] = spec.module
        # The pupils this (imaging) distortion serves, as the real NIRCam files list them.
        meta["instrument.p_pupil"] = "CLEAR|F162M|F164N|GDHS0|GDHS60|WLM8|WLP8|PINHOLES|MASKIPR|FLAT|"
    if spec.instrument == "NIRISS":
        meta["instrument.filter"] = filt
        meta["instrument.pupil"] = pupil
    return DataModel("ref.distortion", {}, meta)


def pixel_area_map(dist: DataModel, window: Subarray) -> np.ndarray:
    """Relative pixel area over ``window`` from the distortion's Jacobian (coarse grid, bilinear)."""
    from scipy.interpolate import RegularGridInterpolator

    from transforms.wcs import distortion_model

    m = distortion_model(dist)
    p = {k.split(".", 1)[1]: v for k, v in dist.meta.items() if k.startswith("distortion.")}
    nominal = p["scale_x"] * p["scale_y"]
    rows, cols = window.slices
    gy = np.linspace(rows.start, rows.stop - 1, min(window.ysize, 17))
    gx = np.linspace(cols.start, cols.stop - 1, min(window.xsize, 17))
    X, Y = np.meshgrid(gx, gy)
    h = 0.5
    v2a, v3a = m(X + h, Y)
    v2b, v3b = m(X - h, Y)
    v2c, v3c = m(X, Y + h)
    v2d, v3d = m(X, Y - h)
    jac = np.abs((v2a - v2b) * (v3c - v3d) - (v2c - v2d) * (v3a - v3b)) / (2 * h) ** 2
    rel = jac / nominal
    if len(gx) == 1 or len(gy) == 1:
        return np.full((window.ysize, window.xsize), float(np.mean(rel)), np.float32)
    interp = RegularGridInterpolator((gy, gx), rel)
    yy, xx = np.meshgrid(np.arange(rows.start, rows.stop), np.arange(cols.start, cols.stop),
                         indexing="ij")
    return interp((yy, xx)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Interpixel capacitance
# --------------------------------------------------------------------------------------------

def ipc_kernel(detector: str) -> np.ndarray | None:
    """The forward IPC kernel (3x3, rows = y, sums to 1) the simulator convolves the collected
    charge with, or None for a detector without simulated IPC (``IPC_COUPLING``)."""
    c = IPC_COUPLING.get(detector_spec(detector).detector)
    if c is None:
        return None
    ax, ay, b = c
    k = np.array([[b, ay, b], [ax, 0.0, ax], [b, ay, b]], np.float64)
    k[1, 1] = 1.0 - k.sum()
    return k


def ipc_deconvolution_kernel(forward: np.ndarray, size: int = 3) -> np.ndarray:
    """The ``size`` x ``size`` deconvolution kernel of a forward IPC kernel, as JWST's IPC
    references hold it: the central cells of the exact inverse (computed on a 64x64 periodic
    grid by FFT), renormalised to sum to 1 so that a uniform image is unchanged. Truncation
    leaves an O(alpha**2) residual: +1.9e-4 of a point source's peak pixel and -4e-5 two pixels
    away for 0.6% coupling (the real 3x3 references have the same limitation)."""
    from numpy import fft

    n = 64
    grid = np.zeros((n, n))
    kh, kw = forward.shape
    grid[:kh, :kw] = forward
    grid = np.roll(grid, (-(kh // 2), -(kw // 2)), axis=(0, 1))  # centre at (0, 0)
    inv = np.real(fft.ifft2(1.0 / fft.fft2(grid)))
    h = size // 2
    core = np.roll(inv, (h, h), axis=(0, 1))[:size, :size].copy()
    core[h, h] += 1.0 - core.sum()
    return core


def ipc_ref(props: DetectorProps, useafter: str) -> DataModel:
    """IPC: the 3x3 deconvolution kernel of the detector's simulated coupling (float32), as
    JWST's NIRCam/NIRISS IPC references (a kernel that the ipc step convolves each group with)."""
    k = ipc_kernel(props.spec.detector)
    if k is None:
        raise ReferenceError(f"{props.spec.detector} has no simulated IPC (IPC_COUPLING)")
    data = ipc_deconvolution_kernel(k).astype(np.float32)
    meta = _ref_meta("ipc", props, useafter, "IPC deconvolution kernel (simulated)")
    for key in ("subarray.name", "subarray.xstart", "subarray.ystart", "subarray.xsize",
                "subarray.ysize"):
        meta.pop(key)  # a 3x3 kernel applies to every window
    return DataModel("ref.ipc", {"data": data}, meta)


# --------------------------------------------------------------------------------------------
# Persistence (charge traps)
# --------------------------------------------------------------------------------------------

def trap_density(props: DetectorProps, seed: int) -> np.ndarray | None:
    """Traps per pixel (electrons they can hold) over ``props.window``, or None for a detector
    without simulated persistence (``TRAP_DENSITY``); drawn per 64-row block like every
    property, so any window agrees with the full frame. Zero on reference pixels."""
    mean = TRAP_DENSITY.get(props.spec.detector)
    if mean is None:
        return None
    d = _field(seed, props.spec.detector, "traps", props.window,
               lambda r, s: mean * r.lognormal(0.0, 0.3, s))
    return np.where(props.refpix, 0.0, d).astype(np.float32)


def persat(props: DetectorProps) -> np.ndarray:
    """Persistence saturation level (DN above bias): the signal at which every trap fills."""
    return (PERSAT_FRACTION * props.well).astype(np.float32)


def trapdensity_ref(props: DetectorProps, useafter: str, seed: int) -> DataModel:
    """TRAPDENSITY: traps per pixel (the simulator's persistence, ``TRAP_DENSITY``)."""
    d = trap_density(props, seed)
    if d is None:
        raise ReferenceError(f"{props.spec.detector} has no simulated persistence")
    return DataModel("ref.trapdensity", {"data": d, "dq": _refpix_dq(props)},
                     _ref_meta("trapdensity", props, useafter, "Trap density (simulated)"))


def persat_ref(props: DetectorProps, useafter: str) -> DataModel:
    """PERSAT: persistence saturation level, DN above bias."""
    return DataModel("ref.persat", {"data": persat(props), "dq": _refpix_dq(props)},
                     _ref_meta("persat", props, useafter,
                               "Persistence saturation threshold (simulated)"))


def trappars_ref(props: DetectorProps, useafter: str) -> DataModel:
    """TRAPPARS: capture0, capture1, capture2, decay_param per trap family (``TRAP_FAMILIES``)."""
    cols = np.array(TRAP_FAMILIES, np.float64)
    arrays = {f"trappars_table.{n}": cols[:, i].copy()
              for i, n in enumerate(("capture0", "capture1", "capture2", "decay_param"))}
    meta = _ref_meta("trappars", props, useafter, "Trap capture and decay parameters (simulated)")
    for key in ("subarray.name", "subarray.xstart", "subarray.ystart", "subarray.xsize",
                "subarray.ysize"):
        meta.pop(key)
    return DataModel("ref.trappars", arrays, meta)
