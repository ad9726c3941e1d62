"""Programs of dithered exposures with their truth, reference files and reissues.

``simulate_program(spec, seed)`` turns a ``ProgramSpec`` (a field of sources and a list of
exposures) into a ``Program``: for each exposure an ``uncal`` DataModel with full level-1b
metadata and an ``ExposureTruth``; the reference models of two CRDS contexts (context 2 has a
new flat and a dark with a later UseAfter); and, per exposure and context, the reference file
CRDS must select. ``reissue`` makes the level-1b reissue of an exposure (definitive ephemeris,
new SDP version; optionally new pixels). Pure: every random draw derives from ``seed``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.time import Time

from transforms.model import DataModel
from transforms.sim import miri as sim_miri
from transforms.sim import readout as ro
from transforms.sim import references as rf
from transforms.sim.detector import Effects, RampTruth, synthesize
from transforms.sim.scene import Source, make_field, psf_fwhm_arcsec, render

C_KMS = 299792.458
DEFAULT_SDP = "2024.3.1"
REISSUE_SDP = "2025.1.0"
EXP_TYPE = {"NIRCAM": "NRC_IMAGE", "NIRISS": "NIS_IMAGE", "MIRI": "MIR_IMAGE"}
USEAFTER_1 = "2022-01-01T00:00:00"
USEAFTER_DARK2 = "2024-06-01T00:00:00"


class ProgramError(ValueError):
    """A program specification the simulator cannot carry out."""


@dataclass(frozen=True)
class ExposureSpec:
    """One exposure of a program (numbers are the JWST file-name fields)."""

    detector: str
    filter: str
    pupil: str
    readpatt: str
    subarray: str
    ngroups: int
    nints: int
    date: str  # ISO start, UTC
    observation: int = 1
    visit: int = 1
    exposure: int = 1
    dither: tuple[float, float] = (0.0, 0.0)  # arcsec offset (x, y) in the ideal frame
    dither_position: int = 1
    dither_total: int = 1


@dataclass(frozen=True)
class ProgramSpec:
    name: str
    program_id: int
    ra: float
    dec: float
    pa_v3: float
    exposures: tuple[ExposureSpec, ...]
    nstars: int = 110
    ngalaxies: int = 70
    field_radius_arcsec: float = 12.0
    flux_range_ujy: tuple[float, float] = (0.02, 300.0)
    sky_mjysr: float = 0.15
    pointing_error_arcsec: float = 0.0  # max error injected in the header pointing
    sdp_version: str = DEFAULT_SDP
    effects: Effects = Effects()
    full_frame_references: bool = False  # references over the full detector (else the used window)
    miri: sim_miri.MiriEffects = sim_miri.MiriEffects()  # MIRI's own detector effects


@dataclass(frozen=True)
class RefFile:
    """One reference file of the generated CRDS cache and the CRDS selection it answers."""

    reftype: str
    instrument: str
    filename: str
    model: DataModel
    match: Mapping[str, str]  # meta key (e.g. "instrument.detector") -> value or "N/A"
    useafter: str


@dataclass(frozen=True)
class ExposureTruth:
    """What was simulated: pointing, rates, events, sources (everything a test may check)."""

    name: str
    true_meta: Mapping[str, Any]  # pointing, velocity aberration, ephemeris as they really were
    pointing_error_arcsec: tuple[float, float]  # header - true, (dRA*cos(dec), dDec)
    flat_rate_dn: np.ndarray  # DN/s after flat fielding (what cal/PHOTMJSR should give)
    ramp: RampTruth
    sources: tuple[dict, ...]  # per source: id, x, y (0-based in the exposure), dn_per_s, ...
    photmjsr: float
    pixar_sr: float

    @property
    def light_rate_dn(self) -> np.ndarray:
        """DN/s of the sky and sources (what ramp_fit should return after dark subtraction)."""
        return self.ramp.light_rate_dn


@dataclass(frozen=True)
class Exposure:
    spec: ExposureSpec
    uncal: DataModel
    truth: ExposureTruth
    seed: int  # the per-exposure seed (reissue with new pixels uses it)
    program: ProgramSpec


@dataclass(frozen=True)
class Program:
    spec: ProgramSpec
    seed: int
    sources: tuple[Source, ...]
    exposures: tuple[Exposure, ...]
    contexts: tuple[tuple[RefFile, ...], ...]  # index 0 -> jwst_0001.pmap, ...
    expected: tuple[Mapping[str, Mapping[str, str]], ...]  # ctx -> exposure -> reftype -> file
    extra: Mapping[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Programs
# --------------------------------------------------------------------------------------------

def small_program(**overrides: Any) -> ProgramSpec:
    """A test-sized program: NIRCam F150W and NIRISS F150W, subarrays, 5 readout patterns."""
    e = ExposureSpec
    exps = (
        e("NRCA1", "F150W", "CLEAR", "RAPID", "SUB160", 5, 1, "2024-03-10T04:00:00", 1, 1, 1,
          (0.0, 0.0), 1, 2),
        e("NRCA1", "F150W", "CLEAR", "RAPID", "SUB160", 5, 1, "2024-03-10T04:05:00", 1, 1, 2,
          (0.9, 0.6), 2, 2),
        e("NRCA1", "F150W", "CLEAR", "BRIGHT2", "SUB320", 4, 1, "2024-07-15T10:00:00", 1, 2, 1),
        e("NRCA1", "F150W", "CLEAR", "MEDIUM8", "SUB64P", 3, 2, "2024-07-15T10:10:00", 1, 2, 2),
        e("NRCA1", "F150W", "CLEAR", "DEEP8", "SUB160", 3, 1, "2024-07-15T10:20:00", 1, 2, 3),
        e("NIS", "CLEAR", "F150W", "NIS", "SUB128", 4, 1, "2024-03-10T05:00:00", 2, 1, 1),
        e("NIS", "CLEAR", "F150W", "NISRAPID", "SUB64", 6, 1, "2024-07-15T11:00:00", 2, 2, 1,
          (0.5, -0.4)),
    )
    spec = ProgramSpec("small", 1234, 53.1625, -27.7914, 45.0, exps)
    return replace(spec, **overrides)


def full_program(**overrides: Any) -> ProgramSpec:
    """A benchmark-sized program: full-frame NIRCam and NIRISS, four dithers each."""
    dith = ((0.0, 0.0), (2.1, 1.3), (-1.7, 2.4), (1.2, -2.2))
    exps = []
    for i, d in enumerate(dith):
        exps.append(ExposureSpec("NRCA1", "F150W", "CLEAR", "BRIGHT2", "FULL", 6, 1,
                                 f"2024-03-10T04:{10 * i:02d}:00", 1, 1, i + 1, d, i + 1, 4))
        exps.append(ExposureSpec("NIS", "CLEAR", "F150W", "NIS", "FULL", 5, 1,
                                 f"2024-07-15T05:{10 * i:02d}:00", 2, 1, i + 1, d, i + 1, 4))
    spec = ProgramSpec("full", 1234, 53.1625, -27.7914, 45.0, tuple(exps), nstars=1500,
                       ngalaxies=1500, field_radius_arcsec=90.0, full_frame_references=True)
    return replace(spec, **overrides)


def miri_program(**overrides: Any) -> ProgramSpec:
    """A test-sized MIRI imaging program (F770W, FAST): a SUB256 dither pair of two
    integrations each and one BRIGHTSKY exposure; thermal background as in ``sim.miri``."""
    e = ExposureSpec
    exps = (
        e("MIRIMAGE", "F770W", "N/A", "FAST", "SUB256", 10, 2, "2024-03-10T06:00:00", 3, 1, 1,
          (0.0, 0.0), 1, 2),
        e("MIRIMAGE", "F770W", "N/A", "FAST", "SUB256", 10, 2, "2024-03-10T06:05:00", 3, 1, 2,
          (0.9, 0.6), 2, 2),
        e("MIRIMAGE", "F770W", "N/A", "FAST", "BRIGHTSKY", 6, 1, "2024-07-15T12:00:00", 3, 2, 1),
    )
    spec = ProgramSpec("miri", 1234, 53.1625, -27.7914, 45.0, exps, nstars=60, ngalaxies=30,
                       field_radius_arcsec=14.0, flux_range_ujy=(0.5, 500.0))
    return replace(spec, **overrides)


PROGRAMS = {"small": small_program, "full": full_program, "miri": miri_program}


def program_spec(name: str, **overrides: Any) -> ProgramSpec:
    """A named program ("small" or "full")."""
    try:
        return PROGRAMS[name](**overrides)
    except KeyError:
        raise ProgramError(f"unknown program {name!r}; known: {', '.join(PROGRAMS)}") from None


# --------------------------------------------------------------------------------------------
# Pointing, ephemeris
# --------------------------------------------------------------------------------------------

def _seed(seed: int, *parts: Any) -> np.random.Generator:
    return np.random.default_rng([int(seed)] + [zlib.crc32(str(p).encode()) for p in parts])


def _ephemeris(rng: np.random.Generator, mjd: float, ra: float, dec: float) -> dict[str, Any]:
    """A plausible barycentric position/velocity near L2 and the velocity aberration it implies."""
    lon = 2 * np.pi * ((mjd - 60000.0) / 365.25 % 1.0)
    r = 1.496e8 + 1.5e6
    pos = np.array([r * np.cos(lon), r * np.sin(lon) * 0.917, r * np.sin(lon) * 0.398])
    vel = np.array([-29.8 * np.sin(lon), 29.8 * np.cos(lon) * 0.917, 29.8 * np.cos(lon) * 0.398])
    vel = vel + rng.normal(0.0, 0.3, 3)
    pos = pos + rng.normal(0.0, 3e4, 3)
    return _eph_meta(mjd, pos, vel, ra, dec)


def _eph_meta(mjd: float, pos, vel, ra: float, dec: float) -> dict[str, Any]:
    d = np.array([np.cos(np.radians(dec)) * np.cos(np.radians(ra)),
                  np.cos(np.radians(dec)) * np.sin(np.radians(ra)), np.sin(np.radians(dec))])
    beta = np.asarray(vel) / C_KMS
    b = float(np.linalg.norm(beta))
    cos_t = float(beta @ d) / b if b else 0.0
    scale = (1 + b * cos_t) / math.sqrt(1 - b * b)
    # apparent direction (first order): d + beta - (d.beta) d
    app = d + beta - (d @ beta) * d
    app /= np.linalg.norm(app)
    va_ra = math.degrees(math.atan2(app[1], app[0])) % 360.0
    va_dec = math.degrees(math.asin(app[2]))
    return {
        "ephemeris.time": float(mjd), "ephemeris.reference_frame": "EME2000",
        "ephemeris.spatial_x_bary": float(pos[0]), "ephemeris.spatial_y_bary": float(pos[1]),
        "ephemeris.spatial_z_bary": float(pos[2]), "ephemeris.velocity_x_bary": float(vel[0]),
        "ephemeris.velocity_y_bary": float(vel[1]), "ephemeris.velocity_z_bary": float(vel[2]),
        "velocity_aberration.scale_factor": float(scale),
        "velocity_aberration.va_ra_ref": float(va_ra),
        "velocity_aberration.va_dec_ref": float(va_dec),
    }


def _offset(ra: float, dec: float, east: float, north: float) -> tuple[float, float]:
    c = SkyCoord(ra * u.deg, dec * u.deg)
    sep = math.hypot(east, north)
    if sep == 0:
        return ra, dec
    pa = math.degrees(math.atan2(east, north))
    o = c.directional_offset_by(pa * u.deg, sep * u.arcsec)
    return float(o.ra.deg), float(o.dec.deg)


# --------------------------------------------------------------------------------------------
# One exposure
# --------------------------------------------------------------------------------------------

def _window(spec: ProgramSpec, inst: str, det: str) -> ro.Subarray:
    """The detector region the references cover: full frame, or the union of used subarrays."""
    if spec.full_frame_references:
        return ro.subarray(inst, "FULL")
    subs = [ro.subarray(inst, e.subarray) for e in spec.exposures if e.detector == det]
    x0 = min(s.xstart for s in subs)
    y0 = min(s.ystart for s in subs)
    x1 = max(s.xstart + s.xsize for s in subs)
    y1 = max(s.ystart + s.ysize for s in subs)
    names = {s.name for s in subs}
    for s in subs:
        if (s.xstart, s.ystart, s.xstart + s.xsize, s.ystart + s.ysize) == (x0, y0, x1, y1):
            return s if s.name == "FULL" or len(names) == 1 else replace(s, name="GENERIC")
    return ro.custom_subarray(x0, y0, x1 - x0, y1 - y0, 1, "GENERIC")


def _cut(props: rf.DetectorProps, sub: ro.Subarray) -> rf.DetectorProps:
    """Properties of ``sub`` taken from a larger window."""
    w = props.window
    ys = slice(sub.ystart - w.ystart, sub.ystart - w.ystart + sub.ysize)
    xs = slice(sub.xstart - w.xstart, sub.xstart - w.xstart + sub.xsize)
    if ys.start < 0 or xs.start < 0 or ys.stop > w.ysize or xs.stop > w.xsize:
        raise ProgramError(f"subarray {sub.name} lies outside the reference window {w.name}")
    arrays = {}
    for name in ("superbias", "gain", "read_noise", "dark_rate", "flat", "well", "refpix", "hot",
                 "dead", "new_hot", "flat_error"):
        arrays[name] = np.ascontiguousarray(getattr(props, name)[ys, xs])
    arrays["lin_coeffs"] = np.ascontiguousarray(props.lin_coeffs[:, ys, xs])
    return replace(props, window=sub, **arrays)


def exposure_meta(spec: ProgramSpec, e: ExposureSpec, dist: DataModel, seed: int) -> tuple[
        dict[str, Any], dict[str, Any], tuple[float, float]]:
    """(header meta, true meta, pointing error) of one exposure."""
    from transforms.wcs import distortion_model

    ds = rf.detector_spec(e.detector)
    inst = ds.instrument
    sub = ro.subarray(inst, e.subarray)
    tim = ro.timing(inst, e.readpatt, sub, e.ngroups, e.nints)
    rng = _seed(seed, "meta", e.observation, e.visit, e.exposure, e.detector)
    # Aperture reference point: the centre of the subarray.
    xc = sub.xstart - 1 + (sub.xsize - 1) / 2.0
    yc = sub.ystart - 1 + (sub.ysize - 1) / 2.0
    v2r, v3r = (float(v) for v in distortion_model(dist)(xc, yc))
    roll = spec.pa_v3
    a = math.radians(roll)
    dx, dy = e.dither
    east = -(dx * math.cos(a) - dy * math.sin(a))
    north = dx * math.sin(a) + dy * math.cos(a)
    ra, dec = _offset(spec.ra, spec.dec, east, north)
    start = Time(e.date, scale="utc")
    mjd0 = float(start.mjd)
    dur = tim.duration
    true_eph = _ephemeris(rng, mjd0, ra, dec)
    # The predicted ephemeris differs a little from the definitive (true) one.
    pred_pos = np.array([true_eph[f"ephemeris.spatial_{c}_bary"] for c in "xyz"]) + rng.normal(
        0.0, 150.0, 3)
    pred_vel = np.array([true_eph[f"ephemeris.velocity_{c}_bary"] for c in "xyz"]) + rng.normal(
        0.0, 0.002, 3)
    pred_eph = _eph_meta(mjd0, pred_pos, pred_vel, ra, dec)
    err = (0.0, 0.0)
    hra, hdec = ra, dec
    if spec.pointing_error_arcsec > 0:
        r = spec.pointing_error_arcsec * math.sqrt(rng.random())
        phi = 2 * math.pi * rng.random()
        err = (r * math.cos(phi), r * math.sin(phi))
        hra, hdec = _offset(ra, dec, err[0], err[1])
    tag = f"{e.observation:03d}{e.visit:03d}"
    pattern = ro.pattern(inst, e.readpatt)
    meta: dict[str, Any] = {
        "telescope": "JWST",
        "model_type": "Level1bModel",
        "data_processing_software_version": spec.sdp_version,
        "observation.program_number": f"{spec.program_id:05d}",
        "observation.observation_number": f"{e.observation:03d}",
        "observation.visit_number": f"{e.visit:03d}",
        "observation.visit_group": "01",
        "observation.sequence_id": "1",
        "observation.activity_id": "01",
        "observation.exposure_number": f"{e.exposure:05d}",
        "observation.visit_id": f"{spec.program_id:05d}{tag}",
        "observation.obs_id": f"V{spec.program_id:05d}{tag}001P0000000001101",
        "observation.date": start.isot[:10],
        "observation.time": start.isot[11:23],
        "target.ra": spec.ra, "target.dec": spec.dec, "target.catalog_name": "CALOPS-FIELD",
        "instrument.name": inst, "instrument.detector": ds.detector,
        "instrument.filter": e.filter, "instrument.pupil": e.pupil,
        "exposure.type": EXP_TYPE[inst], "exposure.readpatt": pattern.name,
        "exposure.nints": e.nints, "exposure.ngroups": e.ngroups,
        "exposure.nframes": pattern.nframes, "exposure.groupgap": pattern.groupgap,
        "exposure.nsamples": 1, "exposure.noutputs": sub.noutputs,
        "exposure.frame_divisor": pattern.nframes, "exposure.sample_time": 10.0,
        "exposure.frame_time": tim.tframe, "exposure.group_time": tim.tgroup,
        "exposure.integration_time": tim.integration_time,
        "exposure.exposure_time": tim.exposure_time,
        "exposure.effective_exposure_time": tim.exposure_time,
        "exposure.measurement_time": tim.exposure_time,
        "exposure.duration": dur,
        "exposure.start_time": mjd0, "exposure.mid_time": mjd0 + dur / 2 / 86400.0,
        "exposure.end_time": mjd0 + dur / 86400.0,
        "exposure.zero_frame": False, "exposure.drop_frames1": 0, "exposure.drop_frames3": 0,
        "exposure.nresets_at_start": 1, "exposure.nresets_between_ints": 1,
        "subarray.name": sub.name, "subarray.xstart": sub.xstart, "subarray.ystart": sub.ystart,
        "subarray.xsize": sub.xsize, "subarray.ysize": sub.ysize,
        "subarray.fastaxis": 1, "subarray.slowaxis": 2,
        "aperture.name": f"{ds.aperture.split('_')[0]}_{sub.name}" if sub.name != "FULL"
        else ds.aperture,
        "pointing.pa_v3": roll,
        "aperture.position_angle": (roll - ds.v3yangle) % 360.0,
        "bunit_data": "DN",
        "wcsinfo.v2_ref": v2r, "wcsinfo.v3_ref": v3r, "wcsinfo.vparity": ds.vparity,
        "wcsinfo.v3yangle": ds.v3yangle, "wcsinfo.ra_ref": hra, "wcsinfo.dec_ref": hdec,
        "wcsinfo.roll_ref": roll,
        "wcsinfo.siaf_xref_sci": (sub.xsize + 1) / 2.0,
        "wcsinfo.siaf_yref_sci": (sub.ysize + 1) / 2.0,
        "ephemeris.type": "PREDICTED",
        "dither.primary_type": "NONE" if e.dither_total == 1 else f"{e.dither_total}-POINT",
        "dither.position_number": e.dither_position, "dither.total_points": e.dither_total,
        "dither.x_offset": dx, "dither.y_offset": dy,
    }
    if ds.channel:
        meta["instrument.channel"] = ds.channel
        meta["instrument.module"] = ds.module
    if inst == "MIRI":  # no pupil wheel; interleaved outputs, FAST/SLOW samples
        del meta["instrument.pupil"]
        meta.update(sim_miri.exposure_extras(e.readpatt))
    meta.update(pred_eph)
    true_meta = dict(meta)
    true_meta.update(true_eph)
    true_meta.update({"wcsinfo.ra_ref": ra, "wcsinfo.dec_ref": dec,
                      "ephemeris.type": "DEFINITIVE"})
    meta["pointing.ra_v1"] = hra
    meta["pointing.dec_v1"] = hdec
    return meta, true_meta, err


def _simulate_exposure(spec: ProgramSpec, e: ExposureSpec, sources: tuple[Source, ...],
                       props_win: rf.DetectorProps, dist: DataModel, area_win: np.ndarray,
                       seed: int, effects: Effects, traps: dict | None = None) -> Exposure:
    from transforms.wcs import build_wcs

    ds = rf.detector_spec(e.detector)
    inst = ds.instrument
    sub = ro.subarray(inst, e.subarray)
    tim = ro.timing(inst, e.readpatt, sub, e.ngroups, e.nints)
    meta, true_meta, err = exposure_meta(spec, e, dist, seed)
    props = _cut(props_win, sub)
    w = props_win.window
    area = area_win[sub.ystart - w.ystart:sub.ystart - w.ystart + sub.ysize,
                    sub.xstart - w.xstart:sub.xstart - w.xstart + sub.xsize]
    wcs = build_wcs(true_meta, dist, shape=(sub.ysize, sub.xsize))
    meta["wcsinfo.s_region"] = _s_region(build_wcs(meta, dist, shape=(sub.ysize, sub.xsize)),
                                         sub)
    ra = np.array([s.ra for s in sources])
    dec = np.array([s.dec for s in sources])
    x, y = wcs.backward_transform(ra, dec) if len(sources) else (np.zeros(0), np.zeros(0))
    pv = rf.photom_values(inst, rf.band(e.filter, e.pupil), ds)
    # DN/s (flat-fielded) per microjansky at the source's local pixel area.
    dn_per_ujy = 1e-12 / (pv["photmjsr"] * pv["pixar_sr"])
    img, frac = render(sources, x, y, (sub.ysize, sub.xsize), dn_per_ujy,
                       psf_fwhm_arcsec(pv["pivot"]) / ds.pixel_scale, ds.pixel_scale)
    sky = spec.sky_mjysr + (sim_miri.background_mjysr(e.filter) if inst == "MIRI" else 0.0)
    flat_rate = img + sky / pv["photmjsr"] * area
    flat_rate = np.where(props.refpix, 0.0, flat_rate)
    light_e = flat_rate * props.flat * props.gain
    rng = _seed(seed, "ramp", e.observation, e.visit, e.exposure, e.detector)
    if inst == "MIRI":
        data, ramp_truth = sim_miri.synthesize(light_e.astype(np.float32), props, sub, tim, rng,
                                               effects, spec.miri, readpatt=e.readpatt,
                                               seed=seed)
    else:
        pers = _persistence_in(traps, props_win, sub, meta["exposure.start_time"])
        data, ramp_truth = synthesize(light_e.astype(np.float32), props, sub, tim, rng, effects,
                                      **pers)
        if pers.get("traps") is not None:  # sparse, for a reissue with new pixels
            t0 = pers["traps"].reshape(pers["traps"].shape[0], -1)
            at = np.nonzero(t0.sum(axis=0) > 0)[0]
            ramp_truth.extra["traps_start"] = (at, t0[:, at].astype(np.float32))
        _persistence_out(traps, props_win, sub, ramp_truth,
                         meta["exposure.start_time"] + tim.duration / 86400.0)
    from_sources = []
    for s, xi, yi, fr in zip(sources, x, y, frac):
        if fr <= 0:
            continue
        d = s.as_dict()
        d.update(x=float(xi), y=float(yi), dn_per_s=float(s.flux_ujy * dn_per_ujy),
                 fraction_on_image=float(fr))
        from_sources.append(d)
    name = _filename(meta)
    meta["filename"] = name
    truth = ExposureTruth(name, true_meta, err, flat_rate.astype(np.float32), ramp_truth,
                          tuple(from_sources), pv["photmjsr"], pv["pixar_sr"])
    uncal = DataModel("uncal", {"data": data, **_int_times(meta, tim)}, meta)
    return Exposure(e, uncal, truth, seed, spec)


def _persistence_in(state: dict | None, props_win: rf.DetectorProps, sub: ro.Subarray,
                    start_mjd: float) -> dict:
    """synthesize's persistence arguments for an exposure of ``sub``: the trap density and the
    traps still filled at its start (the earlier exposures' traps, decayed since they ended)."""
    if not state:
        return {}
    w = props_win.window
    ys = slice(sub.ystart - w.ystart, sub.ystart - w.ystart + sub.ysize)
    xs = slice(sub.xstart - w.xstart, sub.xstart - w.xstart + sub.xsize)
    filled = None
    if state["filled"] is not None:
        gap = max(0.0, (start_mjd - state["t_end"]) * 86400.0)
        decay = np.exp(np.array([f[3] for f in rf.TRAP_FAMILIES]) * gap)[:, None, None]
        state["filled"] *= decay
        state["t_end"] = start_mjd
        filled = state["filled"][:, ys, xs]
    return {"trap_density": state["density"][ys, xs], "traps": filled}


def _persistence_out(state: dict | None, props_win: rf.DetectorProps, sub: ro.Subarray,
                     truth: RampTruth, end_mjd: float) -> None:
    """Keep the traps an exposure left filled (outside its subarray they only decayed)."""
    if not state or "traps_e" not in truth.extra:
        return
    w = props_win.window
    if state["filled"] is None:
        state["filled"] = np.zeros((len(rf.TRAP_FAMILIES), w.ysize, w.xsize))
    else:
        gap = max(0.0, (end_mjd - state["t_end"]) * 86400.0)
        decay = np.exp(np.array([f[3] for f in rf.TRAP_FAMILIES]) * gap)[:, None, None]
        state["filled"] *= decay
    ys = slice(sub.ystart - w.ystart, sub.ystart - w.ystart + sub.ysize)
    xs = slice(sub.xstart - w.xstart, sub.xstart - w.xstart + sub.xsize)
    state["filled"][:, ys, xs] = truth.extra["traps_e"]
    state["t_end"] = end_mjd


def _s_region(wcs: Any, sub: ro.Subarray) -> str:
    """S_REGION of the header WCS: the footprint polygon of the pixel-edge corners."""
    x = np.array([-0.5, sub.xsize - 0.5, sub.xsize - 0.5, -0.5])
    y = np.array([-0.5, -0.5, sub.ysize - 0.5, sub.ysize - 0.5])
    ra, dec = wcs.forward_transform(x, y)
    return "POLYGON ICRS " + " ".join(f"{a:.9f} {d:.9f}" for a, d in zip(ra, dec))


def _int_times(meta: Mapping[str, Any], tim: ro.Timing) -> dict[str, np.ndarray]:
    """The INT_TIMES table (MJD UTC; the BJD columns approximated by the same values)."""
    n = np.arange(1, tim.nints + 1)
    per = (tim.integration_time + tim.tframe) / 86400.0
    start = meta["exposure.start_time"] + (n - 1) * per + tim.tframe / 86400.0
    end = start + tim.integration_time / 86400.0
    cols = {"integration_number": n.astype(np.int32), "int_start_MJD_UTC": start,
            "int_mid_MJD_UTC": (start + end) / 2, "int_end_MJD_UTC": end,
            "int_start_BJD_TDB": start, "int_mid_BJD_TDB": (start + end) / 2,
            "int_end_BJD_TDB": end}
    return {f"int_times.{k}": np.asarray(v) for k, v in cols.items()}


def _filename(meta: Mapping[str, Any]) -> str:
    return (f"jw{meta['observation.program_number']}{meta['observation.observation_number']}"
            f"{meta['observation.visit_number']}_{meta['observation.visit_group']}"
            f"{meta['observation.sequence_id']}{meta['observation.activity_id']}_"
            f"{meta['observation.exposure_number']}_{str(meta['instrument.detector']).lower()}"
            "_uncal.fits")


# --------------------------------------------------------------------------------------------
# References and contexts
# --------------------------------------------------------------------------------------------

class _Namer:
    def __init__(self) -> None:
        self.n: dict[tuple[str, str], int] = {}

    def __call__(self, inst: str, reftype: str) -> str:
        k = (inst.lower(), reftype)
        self.n[k] = self.n.get(k, 0) + 1
        ext = "asdf" if reftype in ("distortion", "emicorr") else "fits"
        return f"jwst_{k[0]}_{reftype}_{self.n[k]:04d}.{ext}"


def _references(spec: ProgramSpec, seed: int, props: dict[str, rf.DetectorProps],
                dists: dict[str, DataModel], areas: dict[str, np.ndarray]):
    """Both contexts' reference files and, per exposure, the file each context selects."""
    name = _Namer()
    ctx1: list[RefFile] = []
    new_in_2: list[RefFile] = []
    replaced: dict[str, RefFile] = {}  # ctx1 filename -> its ctx2 replacement
    per_exp: list[tuple[dict[str, RefFile], dict[str, RefFile]]] = []
    by_key: dict[tuple, RefFile] = {}

    def add(key, reftype, inst, model, match, useafter=USEAFTER_1, ctx2_only=False,
            na_file=False):
        if key in by_key:
            return by_key[key]
        fname = "N/A" if na_file else name(inst, reftype)  # "N/A": does not apply
        r = RefFile(reftype, inst, fname, model, dict(match), useafter)
        by_key[key] = r
        (new_in_2 if ctx2_only else ctx1).append(r)
        return r

    na = "N/A"
    for e in spec.exposures:
        ds = rf.detector_spec(e.detector)
        inst, det = ds.instrument, ds.detector
        p = props[det]
        sub = ro.subarray(inst, e.subarray)
        et = EXP_TYPE[inst]
        if inst == "MIRI":
            per_exp.append(_miri_references(spec, seed, e, p, dists[det], areas[det], add,
                                            replaced))
            continue
        c1: dict[str, RefFile] = {}
        for rt, fn in (("mask", rf.mask_ref), ("saturation", rf.saturation_ref),
                       ("linearity", rf.linearity_ref), ("gain", rf.gain_ref),
                       ("readnoise", rf.readnoise_ref)):
            c1[rt] = add((rt, det), rt, inst, fn(p, USEAFTER_1),
                         {"instrument.detector": det, "instrument.filter": na})
        if rf.ipc_kernel(det) is not None:  # the kernel the simulator's IPC is undone with
            c1["ipc"] = add(("ipc", det), "ipc", inst, rf.ipc_ref(p, USEAFTER_1),
                            {"instrument.detector": det})
        c1["superbias"] = add(("superbias", det), "superbias", inst,
                              rf.superbias_ref(p, USEAFTER_1, "N/A"),
                              {"instrument.detector": det, "exposure.readpatt": na,
                               "subarray.name": na})
        elements = tuple(sorted({(x.filter, x.pupil) for x in spec.exposures
                                 if x.detector == e.detector}))
        c1["photom"] = add(("photom", det), "photom", inst,
                           rf.photom_ref(p, USEAFTER_1, elements),
                           {"instrument.detector": det, "instrument.filter": na})
        c1["area"] = add(("area", det, e.filter, e.pupil), "area", inst,
                         rf.area_ref(p, USEAFTER_1, e.filter, e.pupil, areas[det]),
                         {"instrument.detector": det, "instrument.filter": e.filter,
                          "instrument.pupil": e.pupil})
        flat_match = {"instrument.detector": det, "instrument.filter": e.filter}
        if inst == "NIRCAM":
            flat_match["instrument.pupil"] = e.pupil
        c1["flat"] = add(("flat", det, e.filter, e.pupil), "flat", inst,
                         rf.flat_ref(p, USEAFTER_1, e.filter, e.pupil, old=True), flat_match)
        if inst == "NIRCAM":
            dmatch = {"exposure.type": et, "instrument.detector": det,
                      "instrument.channel": ds.channel}
        else:
            dmatch = {"exposure.type": et, "instrument.filter": na, "instrument.pupil": na}
        c1["distortion"] = add(("distortion", det), "distortion", inst, dists[det], dmatch)
        # Darks: one per subarray (frame time depends on it), long enough for every exposure.
        nfr = max(ro.timing(inst, x.readpatt, sub, x.ngroups, x.nints).nframes_per_integration
                  for x in spec.exposures if x.detector == det and x.subarray == e.subarray)
        tf = ro.frame_time(inst, sub)
        dp = _cut(p, sub) if p.window != sub else p
        kmatch = ({"exposure.type": et, "instrument.detector": det, "subarray.name": sub.name,
                   "exposure.noutputs": str(sub.noutputs)} if inst == "NIRCAM" else
                  {"instrument.detector": det, "instrument.filter": na,
                   "subarray.name": sub.name})
        c1["dark"] = add(("dark", det, sub.name), "dark", inst,
                         rf.dark_ref(dp, USEAFTER_1, tf, nfr, et, include_new_hot=False), kmatch)
        # Context 2: a corrected flat replaces the old one; a new dark applies after USEAFTER_DARK2.
        c2 = dict(c1)
        newflat = add(("flat2", det, e.filter, e.pupil), "flat", inst,
                      rf.flat_ref(p, USEAFTER_1, e.filter, e.pupil, old=False), flat_match,
                      ctx2_only=True)
        replaced[c1["flat"].filename] = newflat
        dark2 = add(("dark2", det, sub.name), "dark", inst,
                    rf.dark_ref(dp, USEAFTER_DARK2, tf, nfr, et, include_new_hot=True), kmatch,
                    USEAFTER_DARK2, ctx2_only=True)
        c2["flat"] = newflat
        if e.date >= USEAFTER_DARK2:
            c2["dark"] = dark2
        per_exp.append((c1, c2))
    ctx2 = [replaced.get(r.filename, r) for r in ctx1]
    ctx2 += [r for r in new_in_2 if r.reftype != "flat"]
    expected = (
        {ex: {k: r.filename for k, r in c[0].items()} for ex, c in zip(_names(spec), per_exp)},
        {ex: {k: r.filename for k, r in c[1].items()} for ex, c in zip(_names(spec), per_exp)},
    )
    return (tuple(ctx1), tuple(ctx2)), expected


def _miri_references(spec: ProgramSpec, seed: int, e: ExposureSpec, p: rf.DetectorProps,
                     dist: DataModel, area: np.ndarray, add, replaced: dict
                     ) -> tuple[dict[str, RefFile], dict[str, RefFile]]:
    """Both contexts' references of a MIRI imaging exposure, selected by the real MIRI rmaps'
    parameters (``sim_miri.matches``): superbias is N/A for MIRI, as in JWST's contexts."""
    det, inst = p.spec.detector, "MIRI"
    sub = ro.subarray(inst, e.subarray)
    rp = ro.pattern(inst, e.readpatt).name

    def m(rt: str, filt: str = "N/A") -> dict[str, str]:
        return sim_miri.matches(rt, det, filt, sub.name, rp)

    c1: dict[str, RefFile] = {}
    for rt, fn in (("mask", rf.mask_ref), ("saturation", rf.saturation_ref),
                   ("linearity", rf.linearity_ref), ("gain", rf.gain_ref),
                   ("readnoise", rf.readnoise_ref)):
        c1[rt] = add((rt, det), rt, inst, fn(p, USEAFTER_1), m(rt))
    c1["superbias"] = add(("superbias", inst), "superbias", inst, None, {}, na_file=True)
    filters = tuple(sorted({x.filter for x in spec.exposures if x.detector == det}))
    c1["photom"] = add(("photom", det), "photom", inst,
                       sim_miri.photom_ref(p, USEAFTER_1, filters), m("photom"))
    c1["area"] = add(("area", det, e.filter), "area", inst,
                     rf.area_ref(p, USEAFTER_1, e.filter, None, area), m("area", e.filter))
    c1["flat"] = add(("flat", det, e.filter), "flat", inst,
                     rf.flat_ref(p, USEAFTER_1, e.filter, None, old=True), m("flat", e.filter))
    c1["distortion"] = add(("distortion", det), "distortion", inst, dist, m("distortion"))
    same = [x for x in spec.exposures
            if x.detector == det and x.subarray == e.subarray and x.readpatt == e.readpatt]
    ng = max(x.ngroups for x in same)
    tim = ro.timing(inst, rp, sub, ng, 1)
    dp = _cut(p, sub) if p.window != sub else p
    c1["dark"] = add(("dark", det, sub.name, rp), "dark", inst,
                     sim_miri.dark_ref(dp, USEAFTER_1, tim, rp, ng, seed, spec.miri,
                                       include_new_hot=False), m("dark"))
    c1["reset"] = add(("reset", det, sub.name, rp), "reset", inst,
                      sim_miri.reset_ref(dp, USEAFTER_1, rp, ng, seed, spec.miri), m("reset"))
    c1["rscd"] = add(("rscd", det), "rscd", inst, sim_miri.rscd_ref(USEAFTER_1, det), m("rscd"))
    c1["emicorr"] = add(("emicorr", inst), "emicorr", inst, sim_miri.emicorr_ref(USEAFTER_1),
                        m("emicorr"))
    c2 = dict(c1)
    newflat = add(("flat2", det, e.filter), "flat", inst,
                  rf.flat_ref(p, USEAFTER_1, e.filter, None, old=False), m("flat", e.filter),
                  ctx2_only=True)
    replaced[c1["flat"].filename] = newflat
    dark2 = add(("dark2", det, sub.name, rp), "dark", inst,
                sim_miri.dark_ref(dp, USEAFTER_DARK2, tim, rp, ng, seed, spec.miri,
                                  include_new_hot=True), m("dark"), USEAFTER_DARK2,
                ctx2_only=True)
    c2["flat"] = newflat
    if e.date >= USEAFTER_DARK2:
        c2["dark"] = dark2
    return c1, c2


def _names(spec: ProgramSpec) -> list[str]:
    out = []
    for e in spec.exposures:
        out.append(f"jw{spec.program_id:05d}{e.observation:03d}{e.visit:03d}_01101_"
                   f"{e.exposure:05d}_{e.detector.lower()}_uncal.fits")
    if len(set(out)) != len(out):
        raise ProgramError("two exposures of the program have the same file name; give them "
                           "different observation/visit/exposure numbers")
    return out


def simulate_program(spec: ProgramSpec | str = "small", seed: int = 0,
                     effects: Effects | None = None) -> Program:
    """Simulate every exposure of ``spec`` with its truth and both contexts' references."""
    if isinstance(spec, str):
        spec = program_spec(spec)
    if not spec.exposures:
        raise ProgramError("the program has no exposures")
    _names(spec)
    eff = effects or spec.effects
    sources = make_field(spec.ra, spec.dec, spec.field_radius_arcsec, spec.nstars,
                         spec.ngalaxies, seed, spec.flux_range_ujy)
    props: dict[str, rf.DetectorProps] = {}
    dists: dict[str, DataModel] = {}
    areas: dict[str, np.ndarray] = {}
    for e in spec.exposures:
        ds = rf.detector_spec(e.detector)
        ro.pattern(ds.instrument, e.readpatt)
        ro.subarray(ds.instrument, e.subarray)
        if ds.detector not in props:
            win = _window(spec, ds.instrument, ds.detector)
            props[ds.detector] = rf.detector_properties(ds.detector, seed, win)
            dists[ds.detector] = rf.distortion_ref(ds, USEAFTER_1, EXP_TYPE[ds.instrument])
            areas[ds.detector] = rf.pixel_area_map(dists[ds.detector], win)
    # Exposures in time order: each detector's charge traps carry from one exposure to the
    # next (persistence); the tuple keeps the spec's order.
    traps: dict[str, dict] = {}
    done: dict[int, Exposure] = {}
    for k in sorted(range(len(spec.exposures)), key=lambda j: spec.exposures[j].date):
        e = spec.exposures[k]
        det = e.detector.upper()
        if eff.persistence and det not in traps:
            dens = rf.trap_density(props[det], seed)
            traps[det] = {"density": dens, "filled": None, "t_end": None} if dens is not None \
                else None
        done[k] = _simulate_exposure(spec, e, sources, props[det], dists[det], areas[det], seed,
                                     eff, traps.get(det))
    exposures = tuple(done[k] for k in range(len(spec.exposures)))
    contexts, expected = _references(spec, seed, props, dists, areas)
    return Program(spec, seed, sources, exposures, contexts, expected)


# --------------------------------------------------------------------------------------------
# Reissues
# --------------------------------------------------------------------------------------------

def reissue(exposure: Exposure, kind: str = "ephemeris", sdp_version: str = REISSUE_SDP,
            program: Program | None = None) -> Exposure:
    """The level-1b reissue of an exposure.

    ``"ephemeris"``: same pixels (the very same array), EPH_TYPE PREDICTED -> DEFINITIVE with the
    definitive position/velocity and velocity-aberration keywords, new SDP_VER.
    ``"pixels"``: the same, and the ramp re-synthesised with a new noise realisation (as when a
    level-1b processing fix changes the pixel payload); the truth is updated accordingly.
    """
    if kind not in ("ephemeris", "pixels"):
        raise ProgramError(f"reissue kind must be 'ephemeris' or 'pixels', got {kind!r}")
    old = exposure.uncal
    if old.get("ephemeris.type") == "DEFINITIVE" and kind == "ephemeris":
        raise ProgramError(f"{exposure.truth.name} already has a DEFINITIVE ephemeris")
    keys = [k for k in exposure.truth.true_meta if k.startswith(("ephemeris.",
                                                                 "velocity_aberration."))]
    new_meta = {k: exposure.truth.true_meta[k] for k in keys}
    new_meta["ephemeris.type"] = "DEFINITIVE"
    new_meta["data_processing_software_version"] = sdp_version
    if kind == "ephemeris":
        return replace(exposure, uncal=old.replace(meta=new_meta))
    spec = exposure.program
    prog = program or simulate_program(spec, exposure.seed)
    idx = spec.exposures.index(exposure.spec)
    e = prog.exposures[idx]
    ds = rf.detector_spec(e.spec.detector)
    sub = ro.subarray(ds.instrument, e.spec.subarray)
    tim = ro.timing(ds.instrument, e.spec.readpatt, sub, e.spec.ngroups, e.spec.nints)
    props = rf.detector_properties(ds.detector, exposure.seed, sub)
    rng = _seed(exposure.seed, "reissue", sdp_version, e.truth.name)
    pers = {}
    if spec.effects.persistence and rf.trap_density(props, exposure.seed) is not None:
        pers["trap_density"] = rf.trap_density(props, exposure.seed)
        start = e.truth.ramp.extra.get("traps_start")
        if start is not None:  # the same traps as the original exposure had at its start
            filled = np.zeros((len(rf.TRAP_FAMILIES), props.window.ysize * props.window.xsize))
            filled[:, start[0]] = start[1]
            pers["traps"] = filled.reshape((-1, props.window.ysize, props.window.xsize))
    data, ramp = synthesize(e.truth.ramp.light_rate_e, props, sub, tim, rng, spec.effects,
                            **pers)
    truth = replace(e.truth, ramp=ramp)
    return replace(exposure, uncal=old.replace(arrays={"data": data}, meta=new_meta), truth=truth)
