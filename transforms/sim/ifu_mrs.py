"""MIRI MRS exposures with their truth, and every reference the IFU pipeline reads for them.

The light is the scene (``ifu_scene``) integrated over each pixel's footprint through the MRS
model (``instruments.miri.mrs``: the same parameters the WCS references carry) by
``ifu_render``, times the response ``R(lambda)`` (DN/s per MJy/sr arcsec^2 micron), the
time-dependent throughput loss (the photom reference's power law: photom divides it out), the
fringes (the fringe flat's pattern plus a weaker residual fringe the fringe flat does not hold),
the flat (QE), then the straylight: the cross artifact (each row's light convolved with the
mrsxartcorr kernel: Lorentzian + two Gaussian pairs) and a uniform detector-glow pedestal. A
rate is that plus Poisson and read noise (``simulate_rate``); an uncal puts the light through the
MIRI ramp simulator (``transforms.sim.miri.synthesize``).

References (``mrs_references``), all from the same numbers: distortion / specwcs / regions /
wavelengthrange (the model), photom (per-pixel conversion ``1 / (R Omega dlambda)`` MJy/sr per
DN/s, PIXSIZ, the power-law time coefficients), flat (QE, NON_SCIENCE off the slices), fringe
(the main fringe pattern), mrsxartcorr (the cross-artifact kernel per channel/band),
mrsptcorr (spectral leak fraction), cubepar (spaxel sizes, ROIs), extract1d (radii) and apcorr.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms import ifu as I
from transforms.instruments.miri import mrs
from transforms.model import DataModel
from transforms.sim import ifu_render
from transforms.sim import ifu_scene as SC

USEAFTER = "2022-01-01T00:00:00"
T0_MJD = 59720.0  # the time-dependence reference epoch (mid-2022)
OPTICS = SC.Optics(mrs.psf_fwhm, mrs.resolving_power)
PSF_LINEAR = (0.106, 0.033)  # mrs.psf_fwhm = a + b lambda
FRINGE_ND = 730.0  # um: optical thickness n d of the detector's fringing cavity
NON_SCIENCE = DQ.PIXEL["NON_SCIENCE"]


class MrsSimError(ValueError):
    """An MRS exposure the simulator cannot make."""


@dataclass(frozen=True)
class MrsExposureSpec:
    """One MRS exposure (one detector; the band is the grating setting)."""

    detector: str = "MIRIFUSHORT"
    band: str = "SHORT"
    ra: float = 53.16
    dec: float = -27.79
    roll: float = 40.0  # PA_V3
    dither: tuple[float, float] = (0.0, 0.0)  # arcsec offset of the pointing (alpha-ish, beta-ish)
    dither_position: int = 1
    dither_total: int = 1
    readpatt: str = "FASTR1"
    ngroups: int = 20
    nints: int = 1
    exposure_time: float = 555.0  # rate-level noise: effective exposure time (s)
    date: str = "2024-03-10T06:00:00"
    program: int = 1234
    observation: int = 7
    visit: int = 1
    exposure: int = 1
    bkgdtarg: bool = False
    target_type: str = "POINT"  # SRCTYAPT


@dataclass(frozen=True)
class MrsEffects:
    """Sizes of the MRS effects the pipeline corrects (defaults: all on)."""

    straylight: bool = True
    pedestal_dn: float = 0.03  # DN/s detector glow
    fringe: float = 0.12  # main fringe amplitude (the fringe flat holds it)
    residual_fringe: float = 0.04  # residual fringe amplitude (not in the fringe flat)
    residual_period: float = 0.0015  # residual fringe period in wavenumber (1/um)
    flat_rms: float = 0.01
    time_loss: bool = True
    noise: bool = True
    read_noise_dn: float = 0.004  # DN/s rms per pixel of the rate (read noise part)
    gain: float = 5.5
    nsub: tuple[int, int] = (3, 4)  # sub-pixel samples (x, y)
    bad_fraction: float = 0.0005  # DO_NOT_USE pixels in the rate

    @classmethod
    def none(cls, **kw: Any) -> "MrsEffects":
        """No detector artefacts and no noise: the pure light, for exact tests."""
        base = cls(straylight=False, pedestal_dn=0.0, fringe=0.0, residual_fringe=0.0,
                   flat_rms=0.0, time_loss=False, noise=False, bad_fraction=0.0)
        return replace(base, **kw)


def _rng(seed: int, *parts: Any) -> np.random.Generator:
    return np.random.default_rng([int(seed)] + [zlib.crc32(str(p).encode()) for p in parts])


# --------------------------------------------------------------------------------------------
# Response, throughput loss, fringes, straylight
# --------------------------------------------------------------------------------------------

def response(lam) -> np.ndarray:
    """R(lambda): DN/s per (MJy/sr arcsec^2 micron)."""
    lam = np.asarray(lam, np.float64)
    return 1.7e4 * (5.0 / lam) ** 0.6


def time_coefficients(channel: str) -> dict[str, np.ndarray]:
    """The power-law throughput loss of a channel (jwst's timecoeff_powerlaw columns):
    a larger loss at long wavelengths."""
    lo = min(mrs.WAVE_RANGE[(channel, b)][0] for b in mrs.BANDS)
    hi = max(mrs.WAVE_RANGE[(channel, b)][1] for b in mrs.BANDS)
    binwave = np.linspace(lo, hi, 16)
    year1 = 1.0 - 0.004 * (binwave - 4.0) ** 1.2
    return {"binwave": binwave.astype(np.float32), "alpha": np.full(16, -0.6, np.float32),
            "year1value": year1.astype(np.float32), "tsoft": np.full(16, 30.0, np.float32),
            "t0": np.full(16, T0_MJD, np.float32)}


def powerlaw_correction(mid_time: float, coeffs: Mapping[str, np.ndarray], lam) -> np.ndarray:
    """The relative throughput at ``mid_time`` (MJD) and wavelengths ``lam`` (jwst's
    power law, bounded at 1, interpolated linearly in wavelength, extrapolated flat)."""
    t0 = np.asarray(coeffs["t0"], np.float64)
    y1 = np.asarray(coeffs["year1value"], np.float64)
    ts = np.asarray(coeffs["tsoft"], np.float64)
    al = np.asarray(coeffs["alpha"], np.float64)
    norm = (365.0 + ts) ** al / y1
    corr = np.minimum((mid_time - t0 + ts) ** al / norm, 1.0)
    bw = np.asarray(coeffs["binwave"], np.float64)
    lam = np.asarray(lam, np.float64)
    # RegularGridInterpolator with fill_value=None extrapolates linearly
    out = np.interp(lam, bw, corr)
    lo, hi = lam < bw[0], lam > bw[-1]
    s0 = (corr[1] - corr[0]) / (bw[1] - bw[0])
    s1 = (corr[-1] - corr[-2]) / (bw[-1] - bw[-2])
    out = np.where(lo, corr[0] + s0 * (lam - bw[0]), out)
    return np.where(hi, corr[-1] + s1 * (lam - bw[-1]), out)


def fringe_pattern(px: I.Pixels, amplitude: float) -> np.ndarray:
    """The main fringe transmission (what the fringe flat holds): ``1 + A cos(4 pi n d /
    lambda + phase)``, the phase drifting slowly across each slice."""
    out = np.ones(px.label.shape)
    ok = px.valid
    phase = 0.6 * np.sin(0.37 * px.label[ok]) + 0.9 * px.alpha[ok]
    out[ok] = 1.0 + amplitude * np.cos(4.0 * np.pi * FRINGE_ND / px.lam[ok] + phase)
    return out


def residual_fringe_pattern(px: I.Pixels, amplitude: float, period: float) -> np.ndarray:
    """A weaker fringe in wavenumber (period ``period`` 1/um) that the fringe flat does not
    hold (the residual fringe the residual_fringe step fits)."""
    out = np.ones(px.label.shape)
    ok = px.valid
    phase = 1.3 * np.cos(0.23 * px.label[ok])
    out[ok] = 1.0 + amplitude * np.cos(2.0 * np.pi / period / px.lam[ok] + phase)
    return out


def xart_table(channel: str, band: str) -> dict[str, np.ndarray]:
    """The cross-artifact kernel of a channel/band, per detector row (mrsxartcorr columns)."""
    y = np.arange(1024)
    lam_mid = float(np.mean(mrs.WAVE_RANGE[(channel, band)]))
    grow = (lam_mid / 5.0) ** 0.5
    return {"yrow": y.astype(np.int16),
            "lor_fwhm": np.full(1024, 60.0 * grow, np.float32),
            "lor_scale": np.full(1024, 6e-5 / grow, np.float32),
            "gau_fwhm": np.full(1024, 9.0, np.float32),
            "gau_xoff": np.full(1024, 22.0 + 2.0 * int(channel), np.float32),
            "gau_scale1": np.full(1024, 3e-4, np.float32),
            "gau_scale2": np.full(1024, 1.5e-4, np.float32)}


def xart_model(image: np.ndarray, tables: Mapping[str, Mapping[str, np.ndarray]]
               ) -> np.ndarray:
    """The cross-artifact light of ``image``: each half's rows convolved with its kernel
    (jwst's ``makemodel_composite``: left half columns 0-516, right half 516-1024)."""
    from transforms.spec2._straylight_kernels import xart_convolve

    left, right = tables["left"], tables["right"]
    model = np.zeros(image.shape)
    f = np.where(np.isfinite(image) & (image > 0), image, 0.0).astype(np.float64)
    for (lo, hi), t in (((0, 516), left), ((516, 1024), right)):
        model += xart_convolve(f, lo, hi, *(np.asarray(t[k], np.float64) for k in (
            "lor_fwhm", "lor_scale", "gau_fwhm", "gau_xoff", "gau_scale1", "gau_scale2")))
    model[:, 1028:] = 0.0
    model[:, :4] = 0.0
    return model


def xart_tables(detector: str, band: str) -> dict[str, dict[str, np.ndarray]]:
    left, right = mrs.channels_of(detector)
    return {"left": xart_table(left, band), "right": xart_table(right, band)}


# --------------------------------------------------------------------------------------------
# Exposure metadata
# --------------------------------------------------------------------------------------------

def _offset(ra: float, dec: float, east: float, north: float) -> tuple[float, float]:
    from transforms.spectral import tan_to_sky

    r, d = tan_to_sky(np.array([east]), np.array([north]), ra, dec)
    return float(r[0]), float(d[0])


def exposure_meta(spec: MrsExposureSpec) -> dict[str, Any]:
    """Level-1b style metadata of an MRS exposure (pointing at the MRS reference point)."""
    from astropy.time import Time

    det = str(spec.detector).upper()
    left, right = mrs.channels_of(det)
    band = mrs.check_band(spec.band)
    # dither offsets are given in the V frame (arcsec along V2, V3); the sky offset follows
    # the roll: V3 points to PA_V3 east of north, V2 to PA_V3 - 90 (parity -1)
    dx, dy = spec.dither
    a = math.radians(spec.roll)
    east = -(dx * math.cos(a) - dy * math.sin(a))
    north = dx * math.sin(a) + dy * math.cos(a)
    ra, dec = _offset(spec.ra, spec.dec, east, north)
    start = Time(spec.date, scale="utc")
    mjd0 = float(start.mjd)
    dur = spec.exposure_time
    tag = f"{spec.observation:03d}{spec.visit:03d}"
    chan = "".join(sorted(left + right))
    name = (f"jw{spec.program:05d}{spec.observation:03d}{spec.visit:03d}_02101_"
            f"{spec.exposure:05d}_{det.lower()}_uncal.fits")
    return {
        "telescope": "JWST", "model_type": "IFUImageModel",
        "data_processing_software_version": "2024.3.1",
        "observation.program_number": f"{spec.program:05d}",
        "observation.observation_number": f"{spec.observation:03d}",
        "observation.visit_number": f"{spec.visit:03d}",
        "observation.visit_group": "02", "observation.sequence_id": "1",
        "observation.activity_id": "01",
        "observation.exposure_number": f"{spec.exposure:05d}",
        "observation.visit_id": f"{spec.program:05d}{tag}",
        "observation.obs_id": f"V{spec.program:05d}{tag}002P0000000002101",
        "observation.date": start.isot[:10], "observation.time": start.isot[11:23],
        "observation.bkgdtarg": bool(spec.bkgdtarg),
        "target.ra": spec.ra, "target.dec": spec.dec, "target.catalog_name": "CALOPS-IFU",
        "target.source_type_apt": spec.target_type,
        "instrument.name": "MIRI", "instrument.detector": det,
        "instrument.channel": chan, "instrument.band": band,
        "instrument.filter": "N/A",
        "exposure.type": mrs.EXP_TYPE, "exposure.readpatt": spec.readpatt,
        "exposure.nints": spec.nints, "exposure.ngroups": spec.ngroups,
        "exposure.exposure_time": dur, "exposure.effective_exposure_time": dur,
        "exposure.measurement_time": dur, "exposure.duration": dur,
        "exposure.start_time": mjd0, "exposure.mid_time": mjd0 + dur / 2 / 86400.0,
        "exposure.end_time": mjd0 + dur / 86400.0,
        "subarray.name": "FULL", "subarray.xstart": 1, "subarray.ystart": 1,
        "subarray.xsize": 1032, "subarray.ysize": 1024,
        "aperture.name": f"MIRIFU_CHANNEL{left}{mrs.BAND_LETTER[band]}",
        "pointing.pa_v3": spec.roll,
        "aperture.position_angle": (spec.roll - mrs.V3YANGLE) % 360.0,
        "wcsinfo.v2_ref": mrs.V2_REF, "wcsinfo.v3_ref": mrs.V3_REF, "wcsinfo.vparity": -1,
        "wcsinfo.v3yangle": mrs.V3YANGLE, "wcsinfo.ra_ref": ra, "wcsinfo.dec_ref": dec,
        "wcsinfo.roll_ref": spec.roll,
        "velocity_aberration.scale_factor": 1.0,
        "dither.primary_type": "NONE" if spec.dither_total == 1 else
        f"{spec.dither_total}-POINT",
        "dither.position_number": spec.dither_position,
        "dither.total_points": spec.dither_total,
        "dither.x_offset": float(dx), "dither.y_offset": float(dy),
        "filename": name,
    }


# --------------------------------------------------------------------------------------------
# Light
# --------------------------------------------------------------------------------------------

def render_geometry(params: Mapping[str, Any], px: I.Pixels, channel: str
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(flat pixel indices, per-pixel geometry for ``ifu_render``) of one channel."""
    sel = np.flatnonzero((px.label // 100).ravel() == int(channel))
    ny, nx = px.label.shape
    y, x = np.divmod(sel, nx)
    lab = px.label.ravel()[sel]
    h = 0.5
    a_px, _, l_px = mrs.eval_points(params, lab, x + h, y)
    a_mx, _, l_mx = mrs.eval_points(params, lab, x - h, y)
    a_py, _, l_py = mrs.eval_points(params, lab, x, y + h)
    a_my, _, l_my = mrs.eval_points(params, lab, x, y - h)
    c = params["channel"][channel]
    v = (y - 512.0) / 512.0
    half = 0.5 * (c["alpha_max"] - c["alpha_min"]) * (1.0 + c["anamorph"] * v)
    beta = px.beta.ravel()[sel]
    geom = {"alpha": px.alpha.ravel()[sel], "lam": px.lam.ravel()[sel],
            "j00": a_px - a_mx, "j01": a_py - a_my, "j10": l_px - l_mx, "j11": l_py - l_my,
            "b_lo": beta - 0.5 * c["beta_del"], "b_hi": beta + 0.5 * c["beta_del"],
            "a_lo": -half, "a_hi": half}
    return sel, geom


def scene_integral(params: Mapping[str, Any], meta: Mapping[str, Any], scene: SC.IfuScene,
                   nsub: tuple[int, int] = (3, 4)) -> np.ndarray:
    """The scene integrated over every pixel (MJy/sr arcsec^2 micron; 0 off the slices)."""
    px = mrs.pixels(params)
    out = np.zeros(px.label.size)
    for ch in params["channels"]:
        sel, geom = render_geometry(params, px, ch)
        if sel.size == 0:
            continue

        def to_local(ra, dec, ch=ch):
            v2, v3 = I.radec_to_v2v3(meta, ra, dec)
            return mrs.v2v3_to_local(params, ch, v2, v3)

        jac = local_jacobian(params, meta, ch)
        lo, hi = params["channel"][ch]["wrange"]
        packed = SC.pack(scene, to_local, jac, OPTICS, (lo, hi))
        out[sel] = ifu_render.render_pixels(geom, packed, PSF_LINEAR, nsub)
    return out.reshape(px.label.shape)


def local_jacobian(params: Mapping[str, Any], meta: Mapping[str, Any], channel: str
                   ) -> np.ndarray:
    """d(xi, eta)/d(alpha, beta) (tangent plane east/north arcsec per local arcsec) at the
    channel's field centre."""
    from transforms.spectral import sky_to_tan

    lab = int(channel) * 100 + 1
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    ra, dec = I.local_to_radec({**meta, "wcs.ifu": params}, np.full(3, lab), pts[:, 0],
                               pts[:, 1])
    xi, eta = sky_to_tan(ra, dec, ra[0], dec[0])
    return np.array([[xi[1] - xi[0], xi[2] - xi[0]], [eta[1] - eta[0], eta[2] - eta[0]]])


@dataclass(frozen=True)
class MrsTruth:
    """What was simulated (per pixel, the detector's shape)."""

    sky: np.ndarray  # integral of the scene over each pixel (MJy/sr arcsec^2 um)
    light: np.ndarray  # DN/s of the sky through the instrument before straylight and noise
    rate: np.ndarray  # DN/s expected (light + straylight + pedestal), noiseless
    calibrated: np.ndarray  # what cal should hold: mean S over the pixel (MJy/sr)
    flat: np.ndarray
    fringe: np.ndarray
    residual_fringe: np.ndarray
    throughput: np.ndarray  # time-dependent loss at the exposure's mid time
    xart: np.ndarray
    meta: Mapping[str, Any] = field(default_factory=dict)


def simulate_light(spec: MrsExposureSpec, scene: SC.IfuScene, seed: int = 0,
                   effects: MrsEffects = MrsEffects()) -> tuple[dict[str, Any], MrsTruth]:
    """(exposure meta, truth) of an MRS exposure: the noiseless count rate and everything
    that went into it."""
    meta = exposure_meta(spec)
    params = mrs.mrs_params(spec.detector, spec.band)
    px = mrs.pixels(params)
    sky = scene_integral(params, meta, scene, effects.nsub)
    ok = px.valid
    omega = px.dalpha * px.dbeta
    light = np.zeros(sky.shape)
    light[ok] = sky[ok] * response(px.lam[ok])
    calibrated = np.full(sky.shape, np.nan)
    calibrated[ok] = sky[ok] / (omega[ok] * px.dlam[ok])
    flat = true_flat(spec.detector, spec.band, seed, effects.flat_rms, px)
    fr = fringe_pattern(px, effects.fringe) if effects.fringe else np.ones(sky.shape)
    rfr = (residual_fringe_pattern(px, effects.residual_fringe, effects.residual_period)
           if effects.residual_fringe else np.ones(sky.shape))
    thr = np.ones(sky.shape)
    if effects.time_loss:
        for ch in params["channels"]:
            sel = (px.label // 100) == int(ch)
            thr[sel] = powerlaw_correction(meta["exposure.mid_time"], time_coefficients(ch),
                                           px.lam[sel])
    light = light * fr * rfr * thr * flat
    xart = np.zeros(sky.shape)
    if effects.straylight:
        xart = xart_model(light, xart_tables(spec.detector, spec.band))
    rate = light + xart + effects.pedestal_dn
    rate[:, :4] = 0.0
    rate[:, 1028:] = 0.0
    return meta, MrsTruth(sky, light, rate, calibrated, flat, fr, rfr, thr, xart,
                          {"params": params})


def true_flat(detector: str, band: str, seed: int, rms: float, px: I.Pixels) -> np.ndarray:
    """The detector's QE map (1 off the slices; the flat reference holds it)."""
    if rms <= 0:
        return np.ones(px.label.shape)
    rng = _rng(seed, "mrs-flat", detector)
    f = 1.0 + rms * rng.standard_normal(px.label.shape)
    f += 0.5 * rms * np.sin(np.arange(px.label.shape[1]) / 37.0)[None, :]
    return f


def simulate_rate(spec: MrsExposureSpec, scene: SC.IfuScene, seed: int = 0,
                  effects: MrsEffects = MrsEffects()) -> tuple[DataModel, MrsTruth]:
    """A rate-level MRS exposure (the output of detector1: DN/s with variances) and its
    truth: the fast way to test stage 2 and 3."""
    meta, truth = simulate_light(spec, scene, seed, effects)
    rng = _rng(seed, "mrs-rate", spec.detector, spec.band, spec.observation, spec.visit,
               spec.exposure)
    rate = truth.rate.copy()
    t = spec.exposure_time
    var_p = np.maximum(rate, 0.0) / (effects.gain * t)
    var_r = np.full(rate.shape, effects.read_noise_dn ** 2)
    if effects.noise:
        rate = rate + rng.standard_normal(rate.shape) * np.sqrt(var_p + var_r)
    else:
        var_r[:] = 0.0
        var_p[:] = 0.0
    dq = np.zeros(rate.shape, np.uint32)
    dq[:, :4] |= DQ.REFERENCE_PIXEL | DQ.DO_NOT_USE
    dq[:, 1028:] |= DQ.REFERENCE_PIXEL | DQ.DO_NOT_USE
    if effects.bad_fraction > 0:
        bad = rng.random(rate.shape) < effects.bad_fraction
        dq[bad] |= DQ.DO_NOT_USE | DQ.HOT
        rate[bad] = np.nan
    arrays = {"data": rate.astype(np.float32), "dq": dq,
              "err": np.sqrt(var_p + var_r).astype(np.float32),
              "var_poisson": var_p.astype(np.float32), "var_rnoise": var_r.astype(np.float32)}
    meta = dict(meta)
    meta.update({"bunit_data": "DN/s", "bunit_err": "DN/s",
                 "filename": meta["filename"].replace("_uncal", "_rate")})
    return DataModel("rate", arrays, meta), truth


# --------------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------------

def _ref_meta(reftype: str, model_type: str, detector: str | None, description: str,
              **extra: Any) -> dict[str, Any]:
    m = {"reftype": reftype.upper(), "model_type": model_type, "instrument.name": "MIRI",
         "exposure.type": mrs.EXP_TYPE, "useafter": USEAFTER, "pedigree": "GROUND",
         "description": description, "author": "calops simulator",
         "calops.ifu_reference": True}
    if detector is not None:
        m["instrument.detector"] = detector
    m.update(extra)
    return m


def wcs_references(detector: str, band: str) -> dict[str, DataModel]:
    """distortion, specwcs, regions, wavelengthrange of a detector and band: the model's
    parameters (``calops.mrs``); the files are written in jwst's layouts from them."""
    params = mrs.mrs_params(detector, band)
    chan = "".join(sorted(params["channels"]))
    common = {"instrument.channel": chan, "instrument.band": band}
    out = {}
    units = {"distortion": {"input_units": "pixel", "output_units": "arcsec"},
             "specwcs": {"input_units": "pixel", "output_units": "micron"}, "regions": {}}
    for rt, mt in (("distortion", "DistortionMRSModel"), ("specwcs", "SpecwcsModel"),
                   ("regions", "RegionsModel")):
        out[rt] = DataModel(f"ref.{rt}", {}, _ref_meta(
            rt, mt, detector, f"MRS {rt} (simulated model)", **common, **units[rt],
            **{"calops.mrs": params}))
    out["wavelengthrange"] = DataModel("ref.wavelengthrange", {}, _ref_meta(
        "wavelengthrange", "WavelengthrangeModel", None, "MRS wavelength ranges",
        **{"calops.mrs_wavelengthrange": mrs._wavelengthrange_tree()}))
    return out


def photom_reference(detector: str, band: str) -> DataModel:
    """MirMrsPhotomModel: SCI = MJy/sr per DN/s per pixel (NaN off the slices), PIXSIZ
    (arcsec^2), the four channels' time coefficients."""
    params = mrs.mrs_params(detector, band)
    px = mrs.pixels(params)
    ok = px.valid
    conv = np.full(px.label.shape, np.nan, np.float32)
    omega = px.dalpha * px.dbeta
    conv[ok] = 1.0 / (response(px.lam[ok]) * omega[ok] * px.dlam[ok])
    pixsiz = np.where(ok, omega, np.nan).astype(np.float32)
    dq = np.where(ok, 0, DQ.DO_NOT_USE | NON_SCIENCE).astype(np.uint32)
    arrays = {"data": conv, "err": np.where(ok, 0.01 * conv, np.nan).astype(np.float32),
              "dq": dq, "pixsiz": pixsiz}
    for ch in ("1", "2", "3", "4"):
        for k, v in time_coefficients(ch).items():
            arrays[f"timecoeff_powerlaw_ch{ch}.{k}"] = v
    chan = "".join(sorted(params["channels"]))
    return DataModel("ref.photom", arrays, _ref_meta(
        "photom", "MirMrsPhotomModel", detector, "MRS photometric conversion (simulated)",
        **{"instrument.channel": chan, "instrument.band": band, "instrument.filter": "N/A",
           "photometry.conversion_megajanskys": 1.0,
           "photometry.pixelarea_steradians": float(np.nanmedian(pixsiz)) * SC.ARCSEC2_SR,
           "photometry.pixelarea_arcsecsq": float(np.nanmedian(pixsiz))}))


def flat_reference(detector: str, band: str, seed: int, rms: float) -> DataModel:
    params = mrs.mrs_params(detector, band)
    px = mrs.pixels(params)
    f = true_flat(detector, band, seed, rms, px).astype(np.float32)
    ok = px.valid
    dq = np.where(ok, 0, DQ.DO_NOT_USE | NON_SCIENCE).astype(np.uint32)
    f = np.where(ok, f, np.nan).astype(np.float32)
    return DataModel("ref.flat", {"data": f, "dq": dq,
                                  "err": np.where(ok, 0.002, np.nan).astype(np.float32)},
                     _ref_meta("flat", "FlatModel", detector, "MRS flat (simulated)",
                               **{"instrument.band": band, "instrument.filter": "N/A",
                                  "exposure.readpatt": "ANY", "subarray.name": "FULL"}))


def fringe_reference(detector: str, band: str, amplitude: float) -> DataModel:
    params = mrs.mrs_params(detector, band)
    px = mrs.pixels(params)
    fr = fringe_pattern(px, amplitude).astype(np.float32)
    ok = px.valid
    fr = np.where(ok, fr, np.nan).astype(np.float32)
    dq = np.where(ok, 0, DQ.DO_NOT_USE | NON_SCIENCE).astype(np.uint32)
    return DataModel("ref.fringe", {"data": fr, "dq": dq,
                                    "err": np.where(ok, 0.001, np.nan).astype(np.float32)},
                     _ref_meta("fringe", "FringeModel", detector, "MRS fringe flat (simulated)",
                               **{"instrument.band": band}))


def xartcorr_reference() -> DataModel:
    """MirMrsXArtCorrModel: a table per channel and band (CH1A ... CH4C)."""
    arrays = {}
    for ch in ("1", "2", "3", "4"):
        for band in mrs.BANDS:
            name = f"ch{ch}{mrs.BAND_LETTER[band].lower()}_table"
            for k, v in xart_table(ch, band).items():
                arrays[f"{name}.{k}"] = v
    return DataModel("ref.mrsxartcorr", arrays, _ref_meta(
        "mrsxartcorr", "MirMrsXArtCorrModel", None, "MRS cross-artifact kernel (simulated)"))


def ptcorr_reference() -> DataModel:
    """MirMrsPtCorrModel: the spectral leak (second-order ch1B light in ch3A near 12.2 um)."""
    lam = np.linspace(11.55, 13.47, 64)
    frac = 0.03 * np.exp(-0.5 * ((lam - 12.2) / 0.12) ** 2)
    arrays = {"leakcor_table.wavelength": lam.astype(np.float32),
              "leakcor_table.frac_leak": frac.astype(np.float32),
              "leakcor_table.err_leak": (0.1 * frac).astype(np.float32)}
    return DataModel("ref.mrsptcorr", arrays, _ref_meta(
        "mrsptcorr", "MirMrsPtCorrModel", None, "MRS spectral leak (simulated)"))


def cubepar_reference() -> DataModel:
    """MiriIFUCubeParsModel: spaxel and spectral steps per band, MSM/EMSM ROIs, and the
    multichannel wavelength tables (jwst's columns)."""
    rows = [(ch, b) for ch in ("1", "2", "3", "4") for b in mrs.BANDS]
    spax = {"1": 0.13, "2": 0.17, "3": 0.20, "4": 0.35}
    a: dict[str, np.ndarray] = {}
    lo = np.array([mrs.WAVE_RANGE[r][0] for r in rows])
    hi = np.array([mrs.WAVE_RANGE[r][1] for r in rows])
    step = np.array([0.5 * (l + h) / 2 / float(mrs.resolving_power(0.5 * (l + h)))
                     for l, h in zip(lo, hi)])
    a["ifucubepars_table.channel"] = np.array([r[0] for r in rows])
    a["ifucubepars_table.band"] = np.array([r[1] for r in rows])
    a["ifucubepars_table.wavemin"] = lo.astype(np.float32)
    a["ifucubepars_table.wavemax"] = hi.astype(np.float32)
    a["ifucubepars_table.spaxelsize"] = np.array([spax[r[0]] for r in rows], np.float32)
    a["ifucubepars_table.spectralstep"] = step.astype(np.float32)
    for t in ("msm", "emsm"):
        a[f"ifucubepars_{t}_table.channel"] = a["ifucubepars_table.channel"]
        a[f"ifucubepars_{t}_table.band"] = a["ifucubepars_table.band"]
        a[f"ifucubepars_{t}_table.roispatial"] = np.array([spax[r[0]] * 1.0 for r in rows],
                                                          np.float32)
        a[f"ifucubepars_{t}_table.roispectral"] = (step * 2.0).astype(np.float32)
    a["ifucubepars_msm_table.power"] = np.full(len(rows), 2.0, np.float32)
    a["ifucubepars_msm_table.softrad"] = np.full(len(rows), 0.01, np.float32)
    a["ifucubepars_emsm_table.scalerad"] = np.array([spax[r[0]] * 0.5 for r in rows],
                                                    np.float32)
    # multichannel tables: a wavelength grid at the channels' native resolution
    w = [4.90]
    while w[-1] < 27.9:
        ch = "1" if w[-1] < 7.65 else "2" if w[-1] < 11.7 else "3" if w[-1] < 17.98 else "4"
        w.append(w[-1] * (1.0 + 1.0 / (2.0 * float(mrs.resolving_power(w[-1])))))
    w = np.array(w, np.float32)

    def sroi(lam):
        return np.where(lam < 7.65, 0.13, np.where(lam < 11.7, 0.17,
                                                   np.where(lam < 17.98, 0.20, 0.35)))
    for t in ("msm", "emsm", "driz"):
        a[f"ifucubepars_multichannel_{t}_wavetable.wavelength"] = w
    for t in ("msm", "emsm"):
        a[f"ifucubepars_multichannel_{t}_wavetable.roispatial"] = sroi(w).astype(np.float32)
        a[f"ifucubepars_multichannel_{t}_wavetable.roispectral"] = (
            2.0 * w / (2.0 * mrs.resolving_power(w))).astype(np.float32)
    a["ifucubepars_multichannel_msm_wavetable.power"] = np.full(w.size, 2.0, np.float32)
    a["ifucubepars_multichannel_msm_wavetable.softrad"] = np.full(w.size, 0.01, np.float32)
    a["ifucubepars_multichannel_emsm_wavetable.scalerad"] = (0.5 * sroi(w)).astype(np.float32)
    return DataModel("ref.cubepar", a, _ref_meta(
        "cubepar", "MiriIFUCubeParsModel", None, "MRS cube parameters (simulated)"))


def extract1d_reference() -> DataModel:
    """Extract1dIFUModel: extraction radius 2 x PSF FWHM and a background annulus, per
    wavelength; background subtraction on."""
    lam = np.linspace(4.8, 28.0, 60)
    fwhm = mrs.psf_fwhm(lam)
    return DataModel("ref.extract1d", {
        "data.wavelength": lam.astype(np.float32),
        "data.radius": (2.0 * fwhm).astype(np.float32),
        "data.inner_bkg": (2.5 * fwhm + 0.3).astype(np.float32),
        "data.outer_bkg": (3.5 * fwhm + 0.6).astype(np.float32),
        "data.axis_ratio": np.ones(lam.size, np.float32),
        "data.axis_pa": np.zeros(lam.size, np.float32)},
        _ref_meta("extract1d", "Extract1dIFUModel", None, "MRS extraction radii (simulated)",
                  **{"subtract_background": True, "method": "exact", "subpixels": 10,
                     "region_type": "target", "tree.data.wavelength_units": "micron",
                     "tree.data.radius_units": "arcsec", "tree.data.inner_bkg_units": "arcsec",
                     "tree.data.outer_bkg_units": "arcsec", "tree.data.axis_pa_units": "deg"}))


def apcorr_reference() -> DataModel:
    """MirMrsApcorrModel: the aperture correction of a Gaussian PSF at radius r (in PSF
    FWHMs), ``1 / (1 - 2^(-4 r^2))``, as a function of wavelength and radius."""
    lam = np.linspace(4.8, 28.0, 30)
    radius = np.array([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])  # FWHM units
    fwhm = mrs.psf_fwhm(lam)
    rad = np.outer(radius, fwhm)  # arcsec, (nrad, nwave)
    enc = 1.0 - 2.0 ** (-4.0 * radius[:, None] ** 2) * np.ones_like(rad)
    return DataModel("ref.apcorr", {
        "apcorr_table.wavelength": lam.astype(np.float32),
        "apcorr_table.radius": rad.astype(np.float32),
        "apcorr_table.apcorr": (1.0 / enc).astype(np.float32),
        "apcorr_table.apcorr_err": np.full(rad.shape, 0.001, np.float32)},
        _ref_meta("apcorr", "MirMrsApcorrModel", None, "MRS aperture corrections (simulated)",
                  **{"instrument.channel": "N/A", "tree.apcorr_table.radius_units": "arcsec",
                     "tree.apcorr_table.wavelength_units": "micron",
                     "tree.apcorr_table.channel": "ANY", "tree.apcorr_table.band": "ANY"}))


def fringefreq_reference() -> DataModel:
    """FringeFreqModel: per band a table with a row per slice (all channels): the residual
    fringe frequency ``ffreq`` (1 / period, the period in wavenumber 1/um), its search range
    ``dffreq``, ``min_nfringes``, ``max_nfringes``, ``min_snr``, ``pgram_res``; and the
    ``max_amp_table`` (largest fringe amplitude accepted per wavelength)."""
    eff = MrsEffects()
    labels = [100 * int(c) + k for c in ("1", "2", "3", "4")
              for k in range(1, mrs.CHANNELS[c][0] + 1)]
    n = len(labels)
    arrays = {}
    for band in ("short", "medium", "long"):
        t = f"rfc_freq_{band}_table"
        arrays[f"{t}.slice"] = np.asarray(labels, np.float64)
        arrays[f"{t}.ffreq"] = np.full(n, 1.0 / eff.residual_period)
        arrays[f"{t}.dffreq"] = np.full(n, 0.15 / eff.residual_period)
        arrays[f"{t}.min_nfringes"] = np.full(n, 6, np.int64)
        arrays[f"{t}.max_nfringes"] = np.full(n, 60, np.int64)
        arrays[f"{t}.min_snr"] = np.full(n, 10.0)
        arrays[f"{t}.pgram_res"] = np.full(n, 1e-3)
    arrays["max_amp_table.wavelength"] = np.linspace(4.8, 28.0, 30)
    arrays["max_amp_table.amplitude"] = np.full(30, 0.2)
    return DataModel("ref.fringefreq", arrays, _ref_meta(
        "fringefreq", "FringeFreqModel", None, "MRS residual fringe frequencies (simulated)"))


def mrs_references(detector: str, band: str, seed: int = 0,
                   effects: MrsEffects = MrsEffects()) -> dict[str, DataModel]:
    """Every stage-2/3 reference of an MRS exposure of ``detector`` and ``band``."""
    refs = wcs_references(detector, band)
    refs.update({
        "photom": photom_reference(detector, band),
        "flat": flat_reference(detector, band, seed, effects.flat_rms),
        "fringe": fringe_reference(detector, band, effects.fringe),
        "mrsxartcorr": xartcorr_reference(),
        "mrsptcorr": ptcorr_reference(),
        "cubepar": cubepar_reference(),
        "extract1d": extract1d_reference(),
        "apcorr": apcorr_reference(),
        "fringefreq": fringefreq_reference(),
    })
    return refs
