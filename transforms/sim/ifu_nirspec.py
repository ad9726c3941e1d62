"""NIRSpec IFU exposures with their truth, and every reference the IFU pipeline reads for them.

The light is the scene (``ifu_scene``) integrated over each pixel's footprint through the
NIRSpec IFU model (``instruments.nirspec.ifu``: the parameters the ifufore/ifuslicer/ifupost
references carry) by ``ifu_render``, times the response ``R(lambda)`` (DN/s per MJy/sr
arcsec^2 micron) and the true flats (D: the detector's QE; S: the spectrograph, per slice and
wavelength; F: the fore optics, per slice and wavelength), plus the MSA **imprint** (the
leakage pattern of the closed MSA, the same in the science and in its imprint exposure) and
the light of **failed-open MSA shutters** (background through each stuck shutter, dispersed:
``failed_open_mask``, which msa_flagging flags). A rate is that plus Poisson and read noise.

References (``nrs_ifu_references``): ifufore / ifuslicer / ifupost (the model, every grating
in ifupost), msaoper (the failed-open shutters, JWST's JSON), fflat / sflat / dflat
(NirspecFlatModel: per-slice fast-variation tables, the QE map), photom (NrsMosPhotomModel:
PHOTMJ and RELRESPONSE(lambda) per filter and grating), area (NirspecIfuAreaModel: the pixel
area per slice), cubepar, extract1d and apcorr.
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
from transforms.instruments.nirspec import ifu as N
from transforms.model import DataModel
from transforms.sim import ifu_render
from transforms.sim import ifu_scene as SC

USEAFTER = "2022-01-01T00:00:00"
PSF_LINEAR = (0.12, 0.025)  # N.psf_fwhm = a + b lambda
NON_SCIENCE = DQ.PIXEL["NON_SCIENCE"]
FAILED_OPEN = ((1, 300, 20), (2, 150, 120), (3, 60, 40))  # (quadrant, row, column)


def optics(grating: str) -> SC.Optics:
    return SC.Optics(N.psf_fwhm, N.resolving_power_of(grating))


@dataclass(frozen=True)
class NrsIfuExposureSpec:
    """One NIRSpec IFU exposure (one detector)."""

    detector: str = "NRS1"
    grating: str = "G140M"
    filter: str = "F100LP"
    ra: float = 53.16
    dec: float = -27.79
    roll: float = 40.0
    dither: tuple[float, float] = (0.0, 0.0)
    dither_position: int = 1
    dither_total: int = 1
    readpatt: str = "NRSRAPID"
    ngroups: int = 10
    nints: int = 1
    exposure_time: float = 700.0
    date: str = "2024-03-10T08:00:00"
    program: int = 1234
    observation: int = 9
    visit: int = 1
    exposure: int = 1
    bkgdtarg: bool = False
    target_type: str = "POINT"
    imprint: bool = False  # an imprint (leakcal) exposure: only the MSA leakage


@dataclass(frozen=True)
class NrsIfuEffects:
    """Sizes of the NIRSpec IFU effects the pipeline corrects (defaults: all on)."""

    imprint_dn: float = 0.04  # DN/s amplitude of the MSA imprint
    failed_open: bool = True
    flat_rms: float = 0.01
    slice_flat: float = 0.03  # S/F flat variation amplitude
    noise: bool = True
    read_noise_dn: float = 0.003
    gain: float = 1.0
    nsub: tuple[int, int] = (3, 2)
    bad_fraction: float = 0.0005

    @classmethod
    def none(cls, **kw: Any) -> "NrsIfuEffects":
        base = cls(imprint_dn=0.0, failed_open=False, flat_rms=0.0, slice_flat=0.0,
                   noise=False, bad_fraction=0.0)
        return replace(base, **kw)


def _rng(seed: int, *parts: Any) -> np.random.Generator:
    return np.random.default_rng([int(seed)] + [zlib.crc32(str(p).encode()) for p in parts])


def response(lam, grating: str) -> np.ndarray:
    lam = np.asarray(lam, np.float64)
    g = str(grating).upper()
    base = 1.5e5 if g != "PRISM" else 4.0e4
    return base * (1.2 / lam) ** 0.3


def exposure_meta(spec: NrsIfuExposureSpec) -> dict[str, Any]:
    from astropy.time import Time

    from transforms.sim.ifu_mrs import _offset

    det = str(spec.detector).upper()
    g, f = N.check(spec.grating, spec.filter)
    dx, dy = spec.dither
    a = math.radians(spec.roll)
    east = -(dx * math.cos(a) - dy * math.sin(a))
    north = dx * math.sin(a) + dy * math.cos(a)
    ra, dec = _offset(spec.ra, spec.dec, east, north)
    start = Time(spec.date, scale="utc")
    mjd0 = float(start.mjd)
    dur = spec.exposure_time
    tag = f"{spec.observation:03d}{spec.visit:03d}"
    name = (f"jw{spec.program:05d}{spec.observation:03d}{spec.visit:03d}_03101_"
            f"{spec.exposure:05d}_{det.lower()}_uncal.fits")
    return {
        "telescope": "JWST", "model_type": "IFUImageModel",
        "data_processing_software_version": "2024.3.1",
        "observation.program_number": f"{spec.program:05d}",
        "observation.observation_number": f"{spec.observation:03d}",
        "observation.visit_number": f"{spec.visit:03d}",
        "observation.visit_group": "03", "observation.sequence_id": "1",
        "observation.activity_id": "01",
        "observation.exposure_number": f"{spec.exposure:05d}",
        "observation.visit_id": f"{spec.program:05d}{tag}",
        "observation.obs_id": f"V{spec.program:05d}{tag}003P0000000003101",
        "observation.date": start.isot[:10], "observation.time": start.isot[11:23],
        "observation.bkgdtarg": bool(spec.bkgdtarg),
        "target.ra": spec.ra, "target.dec": spec.dec, "target.catalog_name": "CALOPS-IFU",
        "target.source_type_apt": spec.target_type,
        "instrument.name": "NIRSPEC", "instrument.detector": det,
        "instrument.grating": g, "instrument.filter": f,
        "instrument.lamp_mode": "NONE", "instrument.lamp_state": "NONE",
        "exposure.type": "NRS_IFU", "exposure.readpatt": spec.readpatt,
        "exposure.nints": spec.nints, "exposure.ngroups": spec.ngroups,
        "exposure.exposure_time": dur, "exposure.effective_exposure_time": dur,
        "exposure.measurement_time": dur, "exposure.duration": dur,
        "exposure.start_time": mjd0, "exposure.mid_time": mjd0 + dur / 2 / 86400.0,
        "exposure.end_time": mjd0 + dur / 86400.0,
        "subarray.name": "FULL", "subarray.xstart": 1, "subarray.ystart": 1,
        "subarray.xsize": 2048, "subarray.ysize": 2048,
        "aperture.name": "NRS_FULL_IFU", "pointing.pa_v3": spec.roll,
        "aperture.position_angle": (spec.roll - N.THETA) % 360.0,
        "wcsinfo.v2_ref": N.V2C, "wcsinfo.v3_ref": N.V3C, "wcsinfo.vparity": -1,
        "wcsinfo.v3yangle": N.THETA, "wcsinfo.ra_ref": ra, "wcsinfo.dec_ref": dec,
        "wcsinfo.roll_ref": spec.roll, "velocity_aberration.scale_factor": 1.0,
        "dither.primary_type": "NONE" if spec.dither_total == 1 else
        f"{spec.dither_total}-POINT-DITHER",
        "dither.position_number": spec.dither_position,
        "dither.total_points": spec.dither_total,
        "dither.x_offset": float(dx), "dither.y_offset": float(dy),
        "filename": name,
    }


def render_geometry(params: Mapping[str, Any], px: I.Pixels
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    sel = np.flatnonzero(px.label.ravel() > 0)
    ny, nx = px.label.shape
    y, x = np.divmod(sel, nx)
    lab = px.label.ravel()[sel]
    h = 0.5
    a_px, _, l_px = N.eval_points(params, lab, x + h, y)
    a_mx, _, l_mx = N.eval_points(params, lab, x - h, y)
    a_py, _, l_py = N.eval_points(params, lab, x, y + h)
    a_my, _, l_my = N.eval_points(params, lab, x, y - h)
    sl = params["slicer"]
    beta = px.beta.ravel()[sel]
    return sel, {"alpha": px.alpha.ravel()[sel], "lam": px.lam.ravel()[sel],
                 "j00": a_px - a_mx, "j01": a_py - a_my, "j10": l_px - l_mx,
                 "j11": l_py - l_my, "b_lo": beta - 0.5 * sl["width"],
                 "b_hi": beta + 0.5 * sl["width"],
                 "a_lo": np.full(sel.size, -sl["alpha_half"]),
                 "a_hi": np.full(sel.size, sl["alpha_half"])}


def local_jacobian(params: Mapping[str, Any], meta: Mapping[str, Any]) -> np.ndarray:
    from transforms.spectral import sky_to_tan

    pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    ra, dec = I.local_to_radec({**meta, "wcs.ifu": params}, np.full(3, 1), pts[:, 0],
                               pts[:, 1])
    xi, eta = sky_to_tan(ra, dec, ra[0], dec[0])
    return np.array([[xi[1] - xi[0], xi[2] - xi[0]], [eta[1] - eta[0], eta[2] - eta[0]]])


def scene_integral(params: Mapping[str, Any], meta: Mapping[str, Any], scene: SC.IfuScene,
                   nsub: tuple[int, int] = (3, 2)) -> np.ndarray:
    px = N.pixels(params)
    out = np.zeros(px.label.size)
    sel, geom = render_geometry(params, px)
    if sel.size:
        def to_local(ra, dec):
            v2, v3 = I.radec_to_v2v3(meta, ra, dec)
            return N.v2v3_to_local(params, v2, v3)

        packed = SC.pack(scene, to_local, local_jacobian(params, meta),
                         optics(params["grating"]), N.wavelength_range(params))
        out[sel] = ifu_render.render_pixels(geom, packed, PSF_LINEAR, nsub)
    return out.reshape(px.label.shape)


def slice_flat_factor(kind: str, lam: np.ndarray, slice_k: np.ndarray, amp: float
                      ) -> np.ndarray:
    """The true S (``kind`` "s") or F ("f") flat per slice and wavelength."""
    k = np.asarray(slice_k, np.float64)
    if kind == "s":
        return 1.0 + amp * np.sin(1.7 * np.asarray(lam) + 0.4 * k)
    return 1.0 + 0.7 * amp * np.cos(2.3 * np.asarray(lam) - 0.3 * k)


def true_dflat(seed: int, rms: float, shape) -> np.ndarray:
    if rms <= 0:
        return np.ones(shape)
    rng = _rng(seed, "nrs-ifu-dflat")
    return 1.0 + rms * rng.standard_normal(shape)


def imprint_pattern(amp: float, shape) -> np.ndarray:
    """The closed-MSA leakage (DN/s): a faint grid of shutter rows, the same in every exposure
    of the MSA configuration."""
    if amp <= 0:
        return np.zeros(shape)
    y, x = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    return amp * (0.5 + 0.5 * np.cos(2 * np.pi * y / 5.11)) * (0.6 + 0.4 * np.sin(x / 97.0))


@dataclass(frozen=True)
class NrsIfuTruth:
    sky: np.ndarray
    light: np.ndarray
    rate: np.ndarray
    calibrated: np.ndarray
    flat: np.ndarray
    imprint: np.ndarray
    failed_open: np.ndarray  # bool mask of pixels lit by failed-open shutters
    meta: Mapping[str, Any] = field(default_factory=dict)


def simulate_light(spec: NrsIfuExposureSpec, scene: SC.IfuScene, seed: int = 0,
                   effects: NrsIfuEffects = NrsIfuEffects()
                   ) -> tuple[dict[str, Any], NrsIfuTruth]:
    meta = exposure_meta(spec)
    params = N.nrs_ifu_params(spec.detector, spec.grating, spec.filter)
    px = N.pixels(params)
    ok = px.valid
    imprint = imprint_pattern(effects.imprint_dn, px.label.shape)
    if spec.imprint:
        sky = np.zeros(px.label.shape)
    else:
        sky = scene_integral(params, meta, scene, effects.nsub)
    omega = px.dalpha * px.dbeta
    light = np.zeros(sky.shape)
    light[ok] = sky[ok] * response(px.lam[ok], spec.grating)
    calibrated = np.full(sky.shape, np.nan)
    calibrated[ok] = sky[ok] / (omega[ok] * px.dlam[ok])
    flat = true_dflat(seed, effects.flat_rms, sky.shape)
    if effects.slice_flat:
        flat[ok] *= slice_flat_factor("s", px.lam[ok], px.label[ok] - 1, effects.slice_flat)
        flat[ok] *= slice_flat_factor("f", px.lam[ok], px.label[ok] - 1, effects.slice_flat)
    light = light * flat
    fo = np.zeros(sky.shape, bool)
    if effects.failed_open and not spec.imprint:
        fo = N.failed_open_mask(params, FAILED_OPEN, sky.shape)
        # background light through each stuck shutter, dispersed over its rows
        xs = np.arange(sky.shape[1])
        lam_col = np.clip(_column_lam(params, xs), *N.wavelength_range(params))
        bk = scene.background(lam_col) * 0.2 * 0.46 / 4.4 * np.abs(
            np.gradient(lam_col)) * response(lam_col, spec.grating)
        light = light + np.where(fo, 3.0 * bk[None, :], 0.0)
    rate = light + imprint
    return meta, NrsIfuTruth(sky, light, rate, calibrated, flat, imprint, fo,
                             {"params": params})


def _column_lam(params: Mapping[str, Any], xs: np.ndarray) -> np.ndarray:
    """The wavelength of each detector column at a slice centre (alpha 0, the first slice)."""
    table, law = N.pack(params)
    t = table[0]
    return np.array([N._lam_of_u(x + law[10] - law[4] - t[3], law) for x in xs], np.float64)


def simulate_rate(spec: NrsIfuExposureSpec, scene: SC.IfuScene, seed: int = 0,
                  effects: NrsIfuEffects = NrsIfuEffects()) -> tuple[DataModel, NrsIfuTruth]:
    """A rate-level NIRSpec IFU exposure and its truth."""
    meta, truth = simulate_light(spec, scene, seed, effects)
    rng = _rng(seed, "nrs-ifu-rate", spec.detector, spec.observation, spec.visit,
               spec.exposure, spec.imprint)
    rate = truth.rate.copy()
    t = spec.exposure_time
    var_p = np.maximum(rate, 0.0) / (effects.gain * t)
    var_r = np.full(rate.shape, effects.read_noise_dn ** 2)
    if effects.noise:
        rate = rate + rng.standard_normal(rate.shape) * np.sqrt(var_p + var_r)
    else:
        var_p[:] = 0.0
        var_r[:] = 0.0
    dq = np.zeros(rate.shape, np.uint32)
    dq[:4, :] |= DQ.REFERENCE_PIXEL | DQ.DO_NOT_USE
    dq[-4:, :] |= DQ.REFERENCE_PIXEL | DQ.DO_NOT_USE
    dq[:, :4] |= DQ.REFERENCE_PIXEL | DQ.DO_NOT_USE
    dq[:, -4:] |= DQ.REFERENCE_PIXEL | DQ.DO_NOT_USE
    if effects.bad_fraction > 0:
        bad = rng.random(rate.shape) < effects.bad_fraction
        dq[bad] |= DQ.DO_NOT_USE | DQ.HOT
        rate[bad] = np.nan
    meta = dict(meta)
    meta.update({"bunit_data": "DN/s", "bunit_err": "DN/s",
                 "filename": meta["filename"].replace("_uncal", "_rate")})
    if spec.imprint:
        meta["exposure.type"] = "NRS_IFU"
        meta["observation.imprint"] = True
    arrays = {"data": rate.astype(np.float32), "dq": dq,
              "err": np.sqrt(var_p + var_r).astype(np.float32),
              "var_poisson": var_p.astype(np.float32), "var_rnoise": var_r.astype(np.float32)}
    return DataModel("rate", arrays, meta), truth


# --------------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------------

def _ref_meta(reftype: str, model_type: str, description: str, **extra: Any) -> dict[str, Any]:
    m = {"reftype": reftype.upper(), "model_type": model_type, "instrument.name": "NIRSPEC",
         "exposure.type": "NRS_IFU", "useafter": USEAFTER, "pedigree": "GROUND",
         "description": description, "author": "calops simulator",
         "calops.ifu_reference": True}
    m.update(extra)
    return m


def wcs_references() -> dict[str, DataModel]:
    """ifufore, ifuslicer, ifupost: the model (ifupost holds every grating's spectrograph)."""
    base = N.nrs_ifu_params("NRS1", "G140M", "F100LP")
    by = {}
    for g, f in N.RANGES:
        by[f"{g}/{f}"] = N.nrs_ifu_params("NRS1", g, f)["post"]
    post_params = {**base, "post": {**base["post"], "by_grating": by}}
    out = {}
    for rt, mt in (("ifufore", "IFUFOREModel"), ("ifuslicer", "IFUSlicerModel"),
                   ("ifupost", "IFUPostModel")):
        p = post_params if rt == "ifupost" else base
        out[rt] = DataModel(f"ref.{rt}", {}, _ref_meta(
            rt, mt, f"NIRSpec IFU {rt} (simulated model)", **{"calops.nrs_ifu": p,
                                                             "instrument.lamp_mode": "N/A"}))
    return out


def msaoper_reference(shutters=FAILED_OPEN) -> DataModel:
    rows = [{"Q": int(q), "x": int(i), "y": int(j), "state": "open", "TA state": "open",
             "Internal state": "normal", "Vignetted": "no"} for q, i, j in shutters]
    return DataModel("ref.msaoper", {}, _ref_meta(
        "msaoper", "msaoper", "failed-open MSA shutters (simulated)", msaoper=rows))


def flat_references(seed: int, effects: NrsIfuEffects, detector: str = "NRS1"
                    ) -> dict[str, DataModel]:
    """dflat (the QE map), sflat and fflat (per-slice tables in wavelength), for every
    grating/filter (the F/S tables cover 0.6-5.3 um)."""
    lam = np.linspace(0.55, 5.35, 481)
    shape = N.SHAPE
    d = true_dflat(seed, effects.flat_rms, shape).astype(np.float32)
    out = {"dflat": DataModel("ref.dflat", {"data": d, "dq": np.zeros(shape, np.uint32),
                                             "err": np.full(shape, 0.001, np.float32)},
                              _ref_meta("dflat", "NirspecFlatModel", "NIRSpec D flat (simulated)",
                                        **{"instrument.detector": detector}))}
    for kind in ("s", "f"):
        names = np.array([f"SLICE_{k:02d}" for k in range(N.NSLICE)])
        vals = np.stack([slice_flat_factor(kind, lam, np.full(lam.size, k), effects.slice_flat)
                         for k in range(N.NSLICE)]).astype(np.float32)
        rt = f"{kind}flat"
        out[rt] = DataModel(f"ref.{rt}", {
            "flat_table.slit_name": names,
            "flat_table.nelem": np.full(N.NSLICE, lam.size, np.int32),
            "flat_table.wavelength": np.tile(lam.astype(np.float32), (N.NSLICE, 1)),
            "flat_table.data": vals,
            "flat_table.error": np.full(vals.shape, 0.0005, np.float32)},
            _ref_meta(rt, "NirspecFlatModel", f"NIRSpec IFU {kind.upper()} flat (simulated)",
                      **{"instrument.detector": detector} if kind == "s" else {}))
    return out


def photom_reference() -> DataModel:
    """NrsMosPhotomModel: per filter and grating, PHOTMJ x RELRESPONSE(lambda) = 1 / (R
    dlambda) (so the pixel area that photom divides by gives MJy/sr)."""
    keys = list(N.RANGES)
    n = 200
    wl = np.zeros((len(keys), n), np.float32)
    rr = np.zeros((len(keys), n), np.float32)
    pm = np.zeros(len(keys), np.float32)
    for i, (g, f) in enumerate(keys):
        p = N.nrs_ifu_params("NRS1", g, f)
        lo, hi = N.RANGES[(g, f)]
        lam = np.linspace(lo - 0.02, hi + 0.02, n)
        _, law = N.pack(p)
        dl = np.array([abs(N._dlam_du(v, law)) for v in lam])
        conv = 1.0 / (response(lam, g) * dl)  # MJy/sr arcsec^2 per DN/s
        pm[i] = float(np.median(conv)) * SC.ARCSEC2_SR
        wl[i] = lam
        rr[i] = conv * SC.ARCSEC2_SR / pm[i]
    return DataModel("ref.photom", {
        "phot_table.filter": np.array([f for _, f in keys]),
        "phot_table.grating": np.array([g for g, _ in keys]),
        "phot_table.photmj": pm, "phot_table.uncertainty": 0.01 * pm,
        "phot_table.nelem": np.full(len(keys), n, np.int16),
        "phot_table.wavelength": wl, "phot_table.relresponse": rr,
        "phot_table.reluncertainty": 0.01 * rr},
        _ref_meta("photom", "NrsMosPhotomModel", "NIRSpec IFU photometry (simulated)"))


def area_reference() -> DataModel:
    a = N.PIX_ALONG * N.SLICE_WIDTH
    return DataModel("ref.area", {"area_table.slice_id": np.arange(N.NSLICE, dtype=np.int16),
                                  "area_table.pixarea": np.full(N.NSLICE, a, np.float32)},
                     _ref_meta("area", "NirspecIfuAreaModel",
                               "NIRSpec IFU pixel area per slice (simulated)",
                               **{"photometry.pixelarea_arcsecsq": a,
                                  "photometry.pixelarea_steradians": a * SC.ARCSEC2_SR}))


def cubepar_reference() -> DataModel:
    keys = list(N.RANGES)
    a: dict[str, np.ndarray] = {}
    lo = np.array([N.RANGES[k][0] for k in keys])
    hi = np.array([N.RANGES[k][1] for k in keys])
    step = np.array([abs(N._dlam_du(0.5 * (l + h), N.pack(N.nrs_ifu_params("NRS1", *k))[1]))
                     for k, l, h in zip(keys, lo, hi)])
    a["ifucubepars_table.disperser"] = np.array([g for g, _ in keys])
    a["ifucubepars_table.filter"] = np.array([f for _, f in keys])
    a["ifucubepars_table.wavemin"] = lo.astype(np.float32)
    a["ifucubepars_table.wavemax"] = hi.astype(np.float32)
    a["ifucubepars_table.spaxelsize"] = np.full(len(keys), 0.1, np.float32)
    a["ifucubepars_table.spectralstep"] = step.astype(np.float32)
    for t in ("msm", "emsm"):
        a[f"ifucubepars_{t}_table.disperser"] = a["ifucubepars_table.disperser"]
        a[f"ifucubepars_{t}_table.filter"] = a["ifucubepars_table.filter"]
        a[f"ifucubepars_{t}_table.roispatial"] = np.full(len(keys), 0.1, np.float32)
        a[f"ifucubepars_{t}_table.roispectral"] = (2.0 * step).astype(np.float32)
    a["ifucubepars_msm_table.power"] = np.full(len(keys), 2.0, np.float32)
    a["ifucubepars_msm_table.softrad"] = np.full(len(keys), 0.01, np.float32)
    a["ifucubepars_emsm_table.scalerad"] = np.full(len(keys), 0.05, np.float32)
    for kind, res in (("prism", 100.0), ("med", 1000.0), ("high", 2700.0)):
        w = [0.6]
        while w[-1] < 5.3:
            w.append(w[-1] * (1.0 + 1.0 / (2.0 * res)))
        w = np.array(w, np.float32)
        for t in ("msm", "emsm", "driz"):
            a[f"ifucubepars_{kind}_{t}_wavetable.wavelength"] = w
        for t in ("msm", "emsm"):
            a[f"ifucubepars_{kind}_{t}_wavetable.roispatial"] = np.full(w.size, 0.1, np.float32)
            a[f"ifucubepars_{kind}_{t}_wavetable.roispectral"] = (w / res).astype(np.float32)
        a[f"ifucubepars_{kind}_msm_wavetable.power"] = np.full(w.size, 2.0, np.float32)
        a[f"ifucubepars_{kind}_msm_wavetable.softrad"] = np.full(w.size, 0.01, np.float32)
        a[f"ifucubepars_{kind}_emsm_wavetable.scalerad"] = np.full(w.size, 0.05, np.float32)
    return DataModel("ref.cubepar", a, _ref_meta("cubepar", "NirspecIFUCubeParsModel",
                                                  "NIRSpec IFU cube parameters (simulated)",
                                                  **{"instrument.lamp_mode": "NONE"}))


def extract1d_reference() -> DataModel:
    lam = np.linspace(0.5, 5.5, 40)
    fwhm = N.psf_fwhm(lam)
    return DataModel("ref.extract1d", {
        "data.wavelength": lam.astype(np.float32),
        "data.radius": np.maximum(2.0 * fwhm, 0.4).astype(np.float32),
        "data.inner_bkg": (np.maximum(2.0 * fwhm, 0.4) + 0.3).astype(np.float32),
        "data.outer_bkg": (np.maximum(2.0 * fwhm, 0.4) + 0.7).astype(np.float32),
        "data.axis_ratio": np.ones(lam.size, np.float32),
        "data.axis_pa": np.zeros(lam.size, np.float32)},
        _ref_meta("extract1d", "Extract1dIFUModel", "NIRSpec IFU extraction radii (simulated)",
                  **{"subtract_background": True, "method": "exact", "subpixels": 10,
                     "region_type": "target", "instrument.lamp_mode": "NONE",
                     "instrument.lamp_state": "NONE", "tree.data.wavelength_units": "micron",
                     "tree.data.radius_units": "arcsec", "tree.data.inner_bkg_units": "arcsec",
                     "tree.data.outer_bkg_units": "arcsec", "tree.data.axis_pa_units": "deg"}))


def apcorr_reference() -> DataModel:
    lam = np.linspace(0.5, 5.5, 30)
    radius = np.array([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    fwhm = N.psf_fwhm(lam)
    rad = np.outer(radius, fwhm)
    enc = 1.0 - 2.0 ** (-4.0 * radius[:, None] ** 2) * np.ones_like(rad)
    return DataModel("ref.apcorr", {
        "apcorr_table.wavelength": lam.astype(np.float32),
        "apcorr_table.radius": rad.astype(np.float32),
        "apcorr_table.apcorr": (1.0 / enc).astype(np.float32),
        "apcorr_table.apcorr_err": np.full(rad.shape, 0.001, np.float32)},
        _ref_meta("apcorr", "NrsIfuApcorrModel", "NIRSpec IFU aperture corrections (simulated)",
                  **{"tree.apcorr_table.radius_units": "arcsec",
                     "tree.apcorr_table.wavelength_units": "micron",
                     "tree.apcorr_table.filter": "ANY", "tree.apcorr_table.grating": "ANY"}))


def nrs_ifu_references(seed: int = 0, effects: NrsIfuEffects = NrsIfuEffects(),
                       detector: str = "NRS1") -> dict[str, DataModel]:
    refs = wcs_references()
    refs.update(flat_references(seed, effects, detector))
    refs.update({"msaoper": msaoper_reference(), "photom": photom_reference(),
                 "area": area_reference(), "cubepar": cubepar_reference(),
                 "extract1d": extract1d_reference(), "apcorr": apcorr_reference()})
    return refs
