"""NIRSpec exposures and the references stage 1 reads: NRS1/NRS2, traditional and IRS2 readouts.

The ramp is synthesised in the *detector* frame (rows read along +x, four 512-column outputs,
alternate outputs read backwards: ``transforms.sim.detector.synthesize``) and turned into the
science frame of the file (``instruments.nirspec.detector``: NRS1 transposed, NRS2 transposed
and rotated by 180 deg), so 1/f stripes run along science y as on the real detectors. Detector
properties and every reference are drawn and written in the science frame, as JWST's NIRSpec
references are.

``simulate_nirspec(spec, seed)`` gives the uncal, its truth and the references by reftype;
``nirspec_refs(...)`` gives the references of a set of exposures as CRDS cache entries. The
light falling on the detector is the caller's (a spectral model's) business: by default a
few spectral traces along x over a faint background (``traces``). IRS2 exposures: see
``transforms/sim/nirspec_irs2.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from transforms.instruments.nirspec import detector as nrs
from transforms.model import DataModel
from transforms.sim import readout as ro
from transforms.sim import references as rf
from transforms.sim.detector import CosmicRay, Effects, RampTruth, Snowball, synthesize
from transforms.sim.program import RefFile, _cut

INSTRUMENT = "NIRSPEC"
USEAFTER = "2022-01-01T00:00:00"
TRADITIONAL = ("NRSRAPID", "NRS", "NRSRAPIDD1", "NRSRAPIDD2", "NRSRAPIDD6")
TRADITIONAL_MATCH = "|".join(TRADITIONAL)
IRS2_MATCH = "|".join(nrs.IRS2_PATTERNS)


@dataclass(frozen=True)
class NirspecExposureSpec:
    """One NIRSpec exposure: detector, readout, window, optics and identifiers."""

    detector: str = "NRS1"
    readpatt: str = "NRSRAPID"
    subarray: str = "SUBS200A1"
    ngroups: int = 5
    nints: int = 1
    exp_type: str = "NRS_FIXEDSLIT"
    filter: str = "F170LP"
    grating: str = "G235M"
    date: str = "2024-03-10T04:00:00"
    program: int = 1234
    observation: int = 1
    visit: int = 1
    exposure: int = 1


@dataclass(frozen=True)
class NirspecExposure:
    spec: NirspecExposureSpec
    uncal: DataModel
    truth: RampTruth  # science frame, the exposure's window
    refs: Mapping[str, DataModel]  # reftype -> model, as CRDS would select them
    props: rf.DetectorProps  # science frame, the exposure's window


def window(name: str, detector: str) -> ro.Subarray:
    """A NIRSpec subarray on ``detector`` (NRS2's windows sit at their own SUBSTRT2)."""
    sub = ro.subarray(INSTRUMENT, name)
    if nrs.check_detector(detector) == "NRS2" and sub.name in nrs.SUBARRAY_YSTART_NRS2:
        sub = replace(sub, ystart=nrs.SUBARRAY_YSTART_NRS2[sub.name])
    return sub


def detector_window(sub: ro.Subarray) -> ro.Subarray:
    """The same window seen in the detector frame (axes swapped)."""
    return ro.Subarray(sub.name, sub.ystart, sub.xstart, sub.ysize, sub.xsize, sub.noutputs)


_PROP_ARRAYS = ("superbias", "gain", "read_noise", "dark_rate", "flat", "well", "refpix", "hot",
                "dead", "new_hot", "flat_error", "lin_coeffs")


def props_in(props: rf.DetectorProps, detector: str, to: str) -> rf.DetectorProps:
    """Detector properties turned into the detector (``to="detector"``) or science frame."""
    f = nrs.to_detector if to == "detector" else nrs.to_science
    arrays = {k: np.ascontiguousarray(f(getattr(props, k), detector)) for k in _PROP_ARRAYS}
    return replace(props, window=detector_window(props.window), **arrays)


def truth_to_science(t: RampTruth, det_shape: tuple[int, int], detector: str) -> RampTruth:
    """A detector-frame RampTruth in the science frame (arrays and event positions)."""
    sci = lambda a: np.ascontiguousarray(nrs.to_science(a, detector))  # noqa: E731
    crs = []
    for c in t.cosmic_rays:
        y, x = nrs.detector_to_science_coords(c.y, c.x, det_shape, detector)
        crs.append(replace(c, y=int(y), x=int(x)))
    sbs = []
    for s in t.snowballs:
        r, c = det_shape
        y, x = (s.x, s.y) if detector == "NRS1" else (c - 1 - s.x, r - 1 - s.y)
        sbs.append(replace(s, y=float(y), x=float(x)))
    return replace(t, light_rate_e=sci(t.light_rate_e), dark_rate_e=sci(t.dark_rate_e),
                   gain=sci(t.gain), cosmic_rays=tuple(crs), snowballs=tuple(sbs),
                   saturation_group=sci(t.saturation_group))


def synthesize_nirspec(light_rate_e: np.ndarray, props: rf.DetectorProps, sub: ro.Subarray,
                       tim: ro.Timing, rng: np.random.Generator, effects: Effects,
                       detector: str) -> tuple[np.ndarray, RampTruth]:
    """The uint16 science-frame ramp of a traditional-readout NIRSpec window and its truth.

    ``light_rate_e`` and ``props`` are science-frame arrays over ``sub``."""
    dprops = props_in(props, detector, "detector")
    dlight = np.ascontiguousarray(nrs.to_detector(np.asarray(light_rate_e), detector))
    data, truth = synthesize(dlight, dprops, detector_window(sub), tim, rng, effects)
    return (np.ascontiguousarray(nrs.to_science(data, detector)),
            truth_to_science(truth, data.shape[-2:], detector))


def traces(sub: ro.Subarray, seed: int, background: float = 0.05,
           n: int | None = None) -> np.ndarray:
    """A default light image (e-/s, science frame): ``n`` spectral traces along x with a
    smooth continuum, a few emission lines, a Gaussian profile across (sigma 1.2 px), over a
    uniform background."""
    rng = np.random.default_rng([int(seed), 14])
    ny, nx = sub.ysize, sub.xsize
    n = n if n is not None else max(1, min(8, ny // 48))
    img = np.full((ny, nx), background, np.float64)
    x = np.arange(nx) + sub.xstart - 1
    yy = np.arange(ny)[:, None]
    for k in range(n):
        y0 = (k + 0.5) * ny / n + rng.uniform(-2, 2)
        tilt = rng.uniform(-0.004, 0.004)
        yc = y0 + tilt * (x - 1024)
        cont = rng.uniform(5.0, 60.0) * (1.0 + 0.5 * np.sin(2 * np.pi * x / 2048.0 + k))
        for _ in range(3):
            xl = rng.uniform(100, 1950)
            cont = cont + rng.uniform(20, 200) * np.exp(-0.5 * ((x - xl) / 1.5) ** 2)
        img += cont[None, :] * np.exp(-0.5 * ((yy - yc[None, :]) / 1.2) ** 2) / (1.2 * 2.5066)
    return img


def exposure_meta(e: NirspecExposureSpec, sub: ro.Subarray, tim: ro.Timing) -> dict[str, Any]:
    """Level-1b metadata of a NIRSpec exposure (what stage 1 reads, plus identifiers)."""
    from astropy.time import Time

    det = nrs.check_detector(e.detector)
    p = ro.pattern(INSTRUMENT, e.readpatt)
    irs2 = nrs.is_irs2_pattern(p.name)
    fast, slow = nrs.axes(det)
    start = Time(e.date, scale="utc")
    mjd0 = float(start.mjd)
    tag = f"{e.observation:03d}{e.visit:03d}"
    meta: dict[str, Any] = {
        "telescope": "JWST", "model_type": "Level1bModel",
        "data_processing_software_version": "2024.3.1",
        "observation.program_number": f"{e.program:05d}",
        "observation.observation_number": f"{e.observation:03d}",
        "observation.visit_number": f"{e.visit:03d}", "observation.visit_group": "01",
        "observation.sequence_id": "1", "observation.activity_id": "01",
        "observation.exposure_number": f"{e.exposure:05d}",
        "observation.visit_id": f"{e.program:05d}{tag}",
        "observation.date": start.isot[:10], "observation.time": start.isot[11:23],
        "instrument.name": INSTRUMENT, "instrument.detector": det,
        "instrument.filter": e.filter, "instrument.grating": e.grating,
        "exposure.type": e.exp_type, "exposure.readpatt": p.name,
        "exposure.nints": e.nints, "exposure.ngroups": e.ngroups,
        "exposure.nframes": p.nframes, "exposure.groupgap": p.groupgap,
        "exposure.nsamples": 1, "exposure.noutputs": 5 if irs2 else sub.noutputs,
        "exposure.frame_divisor": p.nframes, "exposure.sample_time": 10.0,
        "exposure.frame_time": tim.tframe, "exposure.group_time": tim.tgroup,
        "exposure.integration_time": tim.integration_time,
        "exposure.exposure_time": tim.exposure_time,
        "exposure.effective_exposure_time": tim.exposure_time,
        "exposure.measurement_time": tim.exposure_time, "exposure.duration": tim.duration,
        "exposure.start_time": mjd0, "exposure.mid_time": mjd0 + tim.duration / 2 / 86400.0,
        "exposure.end_time": mjd0 + tim.duration / 86400.0,
        "exposure.zero_frame": False, "exposure.drop_frames1": 0, "exposure.drop_frames3": 0,
        "exposure.nresets_at_start": 1, "exposure.nresets_between_ints": 1,
        "subarray.name": sub.name, "subarray.xstart": sub.xstart, "subarray.ystart": sub.ystart,
        "subarray.xsize": sub.xsize, "subarray.ysize": sub.ysize,
        "subarray.fastaxis": fast, "subarray.slowaxis": slow,
        "aperture.name": f"{det}_FULL" if sub.name == "FULL" else f"NRS_{sub.name}",
        "bunit_data": "DN",
    }
    if irs2:
        meta["exposure.nrs_normal"] = 16
        meta["exposure.nrs_reference"] = 4
    meta["filename"] = (f"jw{e.program:05d}{tag}_01101_{e.exposure:05d}_{det.lower()}"
                        "_uncal.fits")
    return meta


# --------------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------------

def _readpatt_class(readpatt: str) -> str:
    return IRS2_MATCH if nrs.is_irs2_pattern(readpatt) else TRADITIONAL_MATCH


def trad_refs(props: rf.DetectorProps, tim: ro.Timing, sub: ro.Subarray, exp_type: str,
              nframes_dark: int) -> dict[str, DataModel]:
    """Traditional-readout references of a detector: every reftype stage 1 reads except the
    IRS2 ones. ``props`` covers the references' window (full frame or the exposure's)."""
    dprops = props if props.window == sub else _cut(props, sub)
    return {
        "mask": rf.mask_ref(props, USEAFTER),
        "saturation": rf.saturation_ref(props, USEAFTER),
        "superbias": rf.superbias_ref(props, USEAFTER, "N/A"),
        "linearity": rf.linearity_ref(props, USEAFTER),
        "dark": rf.dark_ref(dprops, USEAFTER, tim.tframe, nframes_dark, exp_type),
        "gain": rf.gain_ref(props, USEAFTER),
        "readnoise": rf.readnoise_ref(props, USEAFTER),
    }


def picture_frame_pattern(detector: str) -> np.ndarray:
    """The shape of the thermal picture frame (science frame, full detector): a glow that
    falls off over ~40 pixels from the edges of the light-sensitive area, strongest in the
    corners, on a faint floor; NRS2 a little brighter. Also the PICTUREFRAME reference."""
    y, x = np.mgrid[:2048, :2048].astype(np.float64)
    d = np.minimum(np.minimum(y, 2047 - y), np.minimum(x, 2047 - x)) - 4
    corner = np.exp(-np.hypot(np.minimum(y, 2047 - y), np.minimum(x, 2047 - x)) / 300.0)
    gain = 1.0 if nrs.check_detector(detector) == "NRS1" else 1.2
    p = gain * (np.exp(-np.maximum(d, 0) / 40.0) + 0.5 * corner + 0.02)
    p[(d < 0)] = 0.0
    return p.astype(np.float32)


def pictureframe_ref(detector: str, useafter: str = USEAFTER) -> DataModel:
    """PICTUREFRAME: the pattern's rate image (DN/s at unit amplitude)."""
    return DataModel("ref.pictureframe", {"data": picture_frame_pattern(detector)}, {
        "reftype": "pictureframe", "telescope": "JWST", "instrument.name": INSTRUMENT,
        "instrument.detector": nrs.check_detector(detector), "useafter": useafter,
        "pedigree": "INFLIGHT 2023-01-01 2023-12-31", "author": "calops simulator",
        "description": "Picture frame (simulated)", "subarray.name": "FULL",
        "subarray.xstart": 1, "subarray.ystart": 1, "subarray.xsize": 2048,
        "subarray.ysize": 2048})


def add_picture_frame(data: np.ndarray, tim: ro.Timing, detector: str, rate: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The ramp with the thermal picture frame added: group g gets
    ``rate * t_g * (1 + w_g) * pattern`` DN (w_g: a slow thermal wobble of a few per cent),
    so each group's glow is a scaled copy of the pattern. Returns (ramp, DN added per group)."""
    pat = picture_frame_pattern(detector).astype(np.float64)
    t = np.array([tim.group_mean_time(g) for g in range(tim.ngroups)])
    amp = rate * t * (1.0 + 0.05 * np.sin(2 * np.pi * t / 600.0 + rng.uniform(0, 6.3)))
    out = data.astype(np.float64) + amp[None, :, None, None] * pat[None, None]
    return np.clip(np.rint(out), 0, 65535).astype(np.uint16), amp


def simulate_nirspec(spec: NirspecExposureSpec = NirspecExposureSpec(), seed: int = 0,
                     effects: Effects | None = None, light_rate_e: np.ndarray | None = None,
                     full_frame_refs: bool = False,
                     picture_frame: float = 0.0) -> NirspecExposure:
    """One simulated NIRSpec exposure with its truth and the references stage 1 reads.

    ``light_rate_e``: e-/s per science-frame pixel of the window (default ``traces``).
    ``full_frame_refs``: references over the full detector (the steps cut them) instead of
    the exposure's window. ``picture_frame``: DN/s of the thermal picture frame at the edges
    (full frame; ``add_picture_frame``). IRS2 patterns: ``nirspec_irs2.simulate_irs2``."""
    if nrs.is_irs2_pattern(spec.readpatt):
        from transforms.sim.nirspec_irs2 import simulate_irs2

        return simulate_irs2(spec, seed, effects, light_rate_e)
    det = nrs.check_detector(spec.detector)
    sub = window(spec.subarray, det)
    tim = ro.timing(INSTRUMENT, spec.readpatt, sub, spec.ngroups, spec.nints)
    eff = effects or Effects()
    props = rf.detector_properties(det, seed, sub)
    light = traces(sub, seed) if light_rate_e is None else np.asarray(light_rate_e, np.float64)
    light = np.where(props.refpix, 0.0, light * props.flat)
    rng = np.random.default_rng([int(seed), 1407, spec.observation, spec.visit, spec.exposure,
                                 0 if det == "NRS1" else 1])
    data, truth = synthesize_nirspec(light, props, sub, tim, rng, eff, det)
    if picture_frame:
        if sub.name != "FULL":
            raise ValueError("the picture frame is simulated on full-frame exposures only")
        data, amp = add_picture_frame(data, tim, det, picture_frame, rng)
        truth = replace(truth, extra={**truth.extra, "picture_frame_dn": amp})
    meta = exposure_meta(spec, sub, tim)
    uncal = DataModel("uncal", {"data": data}, meta)
    rprops = rf.detector_properties(det, seed) if full_frame_refs else props
    refs = trad_refs(rprops, tim, sub, spec.exp_type, tim.nframes_per_integration + 2)
    if sub.name == "FULL":
        refs["pictureframe"] = pictureframe_ref(det)
    return NirspecExposure(spec, uncal, truth, refs, props)


def cache_entries(exposures: Sequence[NirspecExposure]) -> list[RefFile]:
    """CRDS cache entries (``program.RefFile``, as ``Program.contexts`` holds them) serving the
    references of ``exposures``: one file per (reftype, detector, readout class[, window]),
    with the real NIRSpec rmap parameters (detector, readpatt, subarray; filter and grating
    N/A), and refpix N/A for traditional readouts."""
    out: dict[tuple, RefFile] = {}
    counters: dict[str, int] = {}
    na = "N/A"
    for ex in exposures:
        det = ex.spec.detector.upper()
        rp = _readpatt_class(ex.spec.readpatt)
        for rt, model in ex.refs.items():
            match: dict[str, str] = {"instrument.detector": det}
            key: tuple = (rt, det)
            if rt in ("mask", "readnoise", "superbias", "dark", "refpix"):
                match["exposure.readpatt"] = rp
                key += (rp,)
            if rt in ("mask", "saturation", "linearity", "gain", "readnoise", "dark"):
                match["instrument.filter"] = na
            if rt in ("superbias", "dark"):
                match["instrument.grating"] = na
                match["subarray.name"] = ex.spec.subarray if rt == "dark" else na
                key += (match["subarray.name"],)
            if key in out:
                continue
            counters[rt] = counters.get(rt, 0) + 1
            out[key] = RefFile(rt, INSTRUMENT, f"jwst_nirspec_{rt}_{counters[rt]:04d}.fits",
                               model, match, USEAFTER)
        if "refpix" not in ex.refs:
            key = ("refpix", det, rp)
            if key not in out:
                out[key] = RefFile("refpix", INSTRUMENT, "N/A", None,
                                   {"instrument.detector": det, "exposure.readpatt": rp}, USEAFTER)
    return list(out.values())


__all__ = ["NirspecExposureSpec", "NirspecExposure", "simulate_nirspec", "synthesize_nirspec",
           "traces", "window", "exposure_meta", "cache_entries", "CosmicRay", "Snowball"]
