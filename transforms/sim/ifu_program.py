"""IFU observations of the default program: a MIRI MRS and a NIRSpec IFU dither pair at level
``uncal``, with their truth and every reference stage 1, spec2 and spec3 read.

``simulate_ifu_program(spec, seed)`` renders each exposure's noiseless count rate with the
rate-level IFU simulators (``sim.ifu_mrs``, ``sim.ifu_nirspec``: scene, flats, fringes,
straylight, MSA imprint ... every effect on) and turns it into a level-1b ramp through the
stage-1 detector simulators (MIRI: ``sim.miri``; NIRSpec: ``sim.nirspec``), as
``slit_program`` does for the slits: electrons = DN/s x the pixel's gain, the detector's own
pixel flat NOT applied (the IFU flats already hold the true flat). The result is a
``slit_program.SpecProgram`` (the same shape ``all_program.simulate_all`` composes), with a
``SpecTruth`` per exposure: ``light_dn`` the noiseless DN/s, ``sky_dn`` the part of it that is
not light from the scene through the optics (MRS: straylight + pedestal; NIRSpec IFU: the MSA
imprint and the failed-open shutters' light), ``sources`` the point source (position and
continuum law, ``ifu_scene.PointSource``), ``apertures`` the band/grating.

**References** are ``RefFile`` entries selected on the parameters of the real JWST rmaps
(``IFU_SELECTORS``, checked against ``crds/jwst/specs`` by a test) that the exposure has a
value for. The NIRSpec IFU exposures use NRS1 with G235M/F170LP, so that their detector1 files
(selected on detector, filter, grating, subarray, readout) never collide with the fixed-slit
part's NRS1 G140M/F100LP subarray files; NIRSpec's D-flat is selected on the detector only,
so the IFU's full-frame D-flat is told apart from the fixed slit's window D-flat by its
UseAfter date (``NRS_IFU_DATE``'s day; the slit exposures are dated before it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from transforms.model import DataModel
from transforms.sim import ifu_mrs as SM
from transforms.sim import ifu_nirspec as SN
from transforms.sim import ifu_scene as SC
from transforms.sim import readout as ro
from transforms.sim import references as rf
from transforms.sim import slit_program as SPG
from transforms.sim import spec_refs as R
from transforms.sim.program import ProgramError, RefFile

MRS_OBSERVATION = 7
NRS_IFU_OBSERVATION = 8
MRS_NGROUPS = 5  # FASTR1 full frame: 2.775 s a group (the point source's core nears the well)
NRS_IFU_NGROUPS = 5  # NRSRAPID full frame: 10.74 s a group
NRS_POINT_MJY = 0.2  # the NIRSpec IFU point source at 1.5 um (see ``scene``)
MRS_DATE = "2024-03-10T07:00:00"
NRS_IFU_DATE = "2024-03-11T08:00:00"
RA, DEC, ROLL = 53.16, -27.79, 40.0
DFLAT_USEAFTER = NRS_IFU_DATE[:10] + "T00:00:00"  # after the slit parts' NRS1 D-flat's dates
DITHER = ((0.0, 0.0), (0.3, 0.2))  # arcsec in the V frame: a 2-point dither

_DET, _FLT, _RP, _SUB, _GRT = ("instrument.detector", "instrument.filter", "exposure.readpatt",
                               "subarray.name", "instrument.grating")
_ET, _CH, _BND, _LM, _LS = ("exposure.type", "instrument.channel", "instrument.band",
                            "instrument.lamp_mode", "instrument.lamp_state")
# The parameters of the real JWST rmaps (crds/jwst/specs, as data-model paths) an IFU spec2/3
# reference is selected on: every one the exposure has a value for (N/A values left out).
IFU_SELECTORS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "MIRI": {
        "distortion": (_DET, _CH, _BND), "specwcs": (_DET, _CH, _BND, _SUB),
        "regions": (_DET, _CH, _BND), "wavelengthrange": (_ET,),
        "flat": (_DET, _FLT, _BND, _RP, _SUB), "fringe": (_DET, _BND), "photom": (_DET, _FLT),
        "mrsxartcorr": (_ET,), "mrsptcorr": (_ET,), "cubepar": (_ET,), "extract1d": (_ET,),
        "apcorr": (_ET, _CH), "fringefreq": (_DET,), "pathloss": (_ET,),
    },
    "NIRSPEC": {
        "ifufore": (_ET,), "ifuslicer": (_ET,), "ifupost": (_ET,), "msaoper": (_ET,),
        "photom": (_ET,), "area": (_DET, _FLT, _ET), "cubepar": (_ET, _LM),
        "extract1d": (_ET, _LM, _LS), "apcorr": (_ET, _LM, _LS), "dflat": (_DET,),
        "fflat": (_GRT, _FLT, _ET), "sflat": (_DET, _FLT, _GRT, _ET, _LM, _LS),
        "flat": (_DET, _FLT, _GRT, _ET), "distortion": (_DET,), "pathloss": (_ET,),
        "barshadow": (_ET,), "wavecorr": (_ET,),
    },
}
# Reftypes of the spec2 plan's steps that CRDS answers N/A for on these exposures: the slit
# steps the IFU chain does not run (pathloss, barshadow, wavecorr: the other parts' rmaps
# select them for the slit modes only), NIRSpec's flat (flat_field reads the F/S/D flats) and
# distortion (the IFU WCS is in ifufore/ifuslicer/ifupost).
NOT_APPLICABLE = {"MIRI": ("pathloss",),
                  "NIRSPEC": ("flat", "distortion", "pathloss", "barshadow", "wavecorr")}


@dataclass(frozen=True)
class IfuProgramSpec:
    """One IFU observation: its instrument and exposures (``ifu_mrs.MrsExposureSpec`` or
    ``ifu_nirspec.NrsIfuExposureSpec``, each simulated through detector1's simulators)."""

    name: str
    instrument: str  # "MIRI" | "NIRSPEC"
    exposures: tuple[Any, ...]


def mrs_program(ngroups: int = MRS_NGROUPS, detector: str = "MIRIFUSHORT",
                band: str = "SHORT") -> IfuProgramSpec:
    """A 2-point MRS dither of one detector and band (observation 7, FASTR1 full frame)."""
    exps = tuple(SM.MrsExposureSpec(
        detector=detector, band=band, ra=RA, dec=DEC, roll=ROLL, dither=d,
        dither_position=i + 1, dither_total=len(DITHER), readpatt="FASTR1", ngroups=ngroups,
        date=MRS_DATE, observation=MRS_OBSERVATION, exposure=i + 1)
        for i, d in enumerate(DITHER))
    return IfuProgramSpec("mrs", "MIRI", exps)


def nrs_ifu_program(ngroups: int = NRS_IFU_NGROUPS, grating: str = "G235M",
                    filt: str = "F170LP") -> IfuProgramSpec:
    """A 2-point NIRSpec IFU dither on NRS1 (observation 8, NRSRAPID full frame)."""
    exps = tuple(SN.NrsIfuExposureSpec(
        detector="NRS1", grating=grating, filter=filt, ra=RA, dec=DEC, roll=ROLL, dither=d,
        dither_position=i + 1, dither_total=len(DITHER), readpatt="NRSRAPID",
        ngroups=ngroups, date=NRS_IFU_DATE, observation=NRS_IFU_OBSERVATION, exposure=i + 1)
        for i, d in enumerate(DITHER))
    return IfuProgramSpec("nrs_ifu", "NIRSPEC", exps)


def scene(spec: IfuProgramSpec) -> SC.IfuScene:
    """The simulated field of an IFU observation (the closed-form truth): the test scenes, the
    NIRSpec point source at ``NRS_POINT_MJY`` (``nirspec_scene``'s 2 mJy reaches ~3000 DN/s
    in G235M's core: a full-frame NRSRAPID group of 10.7 s saturates it, and detector1 flags
    those pixels DO_NOT_USE)."""
    if spec.instrument == "MIRI":
        return SC.default_scene(RA, DEC)
    return SC.default_scene(RA, DEC, SC.NRS_EXT_LINES, SC.NRS_POINT_LINES,
                            point_mjy=NRS_POINT_MJY, lref=1.5)


def optics(spec: IfuProgramSpec) -> SC.Optics:
    """PSF and LSF of the observation's instrument (``ifu_scene.point_spectrum`` takes it)."""
    return SM.OPTICS if spec.instrument == "MIRI" else SN.optics(spec.exposures[0].grating)


def _level1b_meta(inst: str, e: Any, meta: Mapping[str, Any], sub: ro.Subarray,
                  tim: ro.Timing) -> dict[str, Any]:
    """The IFU simulator's metadata with the level-1b readout keys of the exposure."""
    from astropy.time import Time

    m = dict(meta)
    start = Time(e.date, scale="utc")
    mjd0 = float(start.mjd)
    if inst == "NIRSPEC":
        from transforms.sim.nirspec import NirspecExposureSpec
        from transforms.sim.nirspec import exposure_meta as nrs_meta

        base = nrs_meta(NirspecExposureSpec(
            e.detector, e.readpatt, "FULL", e.ngroups, e.nints, "NRS_IFU", e.filter,
            e.grating, e.date, e.program, e.observation, e.visit, e.exposure), sub, tim)
        m.update({k: v for k, v in base.items() if k.startswith(("exposure.", "subarray."))})
        m["exposure.type"] = "NRS_IFU"
        m["instrument.lamp_mode"] = "IFU"
        m["instrument.gwa_xtilt"] = 0.0
        m["instrument.gwa_ytilt"] = 0.0
        m["instrument.fixed_slit"] = "NONE"
    else:
        from transforms.sim import miri as sim_miri

        p = ro.pattern("MIRI", e.readpatt)
        m.update({
            "exposure.readpatt": p.name, "exposure.nframes": 1, "exposure.groupgap": 0,
            "exposure.frame_time": tim.tframe, "exposure.group_time": tim.tgroup,
            "exposure.integration_time": tim.integration_time,
            "exposure.zero_frame": False, "exposure.drop_frames1": 0,
            "exposure.drop_frames3": 0, "exposure.nresets_at_start": 1,
            "subarray.fastaxis": 1, "subarray.slowaxis": 2})
        m.update(sim_miri.exposure_extras(e.readpatt))
    m.update({
        "model_type": "Level1bModel", "bunit_data": "DN",
        "exposure.nints": e.nints, "exposure.ngroups": e.ngroups,
        "exposure.exposure_time": tim.exposure_time,
        "exposure.effective_exposure_time": tim.exposure_time,
        "exposure.measurement_time": tim.exposure_time, "exposure.duration": tim.duration,
        "exposure.start_time": mjd0, "exposure.mid_time": mjd0 + tim.duration / 2 / 86400.0,
        "exposure.end_time": mjd0 + tim.duration / 86400.0})
    return m


def _ramp(inst: str, e: Any, light_dn: np.ndarray, sub: ro.Subarray, tim: ro.Timing,
          seed: int) -> tuple[np.ndarray, dict[str, DataModel]]:
    """The uint16 ramp of a full-frame exposure and its detector1 references."""
    from transforms.sim.detector import Effects

    props = rf.detector_properties(e.detector, seed, sub)
    rng = SPG._seed(seed, "ifu-ramp", e.observation, e.visit, e.exposure, e.detector)
    light_e = np.where(props.refpix, 0.0, np.nan_to_num(light_dn) * props.gain)
    if inst == "NIRSPEC":
        from transforms.sim.nirspec import synthesize_nirspec, trad_refs

        data, _ = synthesize_nirspec(light_e, props, sub, tim, rng, Effects(), e.detector)
        return data, trad_refs(props, tim, sub, "NRS_IFU", tim.nframes_per_integration + 2)
    from transforms.sim import miri as sim_miri

    miri = sim_miri.MiriEffects()
    data, _ = sim_miri.synthesize(light_e.astype(np.float32), props, sub, tim, rng, Effects(),
                                  miri, readpatt=e.readpatt, seed=seed)
    rp = ro.pattern("MIRI", e.readpatt).name
    ua = SM.USEAFTER
    refs = {rt: fn(props, ua) for rt, fn in (
        ("mask", rf.mask_ref), ("saturation", rf.saturation_ref),
        ("linearity", rf.linearity_ref), ("gain", rf.gain_ref), ("readnoise", rf.readnoise_ref))}
    refs["dark"] = sim_miri.dark_ref(props, ua, tim, rp, e.ngroups, seed, miri)
    refs["reset"] = sim_miri.reset_ref(props, ua, rp, e.ngroups, seed, miri)
    refs["rscd"] = sim_miri.rscd_ref(ua, e.detector)
    refs["emicorr"] = sim_miri.emicorr_ref(ua)
    return data, refs


def _truth(name: str, inst: str, e: Any, t: Any, sc: SC.IfuScene, gain: float,
           exposure_time: float) -> SPG.SpecTruth:
    light = np.nan_to_num(np.asarray(t.rate, np.float64))
    scene_part = np.nan_to_num(np.asarray(t.light, np.float64))
    if inst == "NIRSPEC":  # the failed-open shutters' light is in t.light but not the scene's
        scene_part = np.where(t.failed_open, 0.0, scene_part)
    ps = sc.points[0]
    src = {"id": 1, "kind": "point", "ra": ps.ra, "dec": ps.dec, "f0_jy": ps.f0_jy,
           "lref_um": ps.lref, "slope": ps.slope,
           "lines_um": [ln.rest for ln in ps.lines]}
    ap = {"name": f"{e.detector} {getattr(e, 'band', None) or e.grating}", "kind": "ifu"}
    return SPG.SpecTruth(name, light.astype(np.float32),
                         (light - scene_part).astype(np.float32), (src,), (ap,), gain,
                         exposure_time)


def simulate_ifu_program(spec: IfuProgramSpec, seed: int = 0) -> SPG.SpecProgram:
    """Every exposure of an IFU observation as a level-1b ramp, with its truth, its detector1
    references (``stage1_refs``) and the spec2/spec3 references of the program."""
    inst = spec.instrument.upper()
    if inst not in ("MIRI", "NIRSPEC"):
        raise ProgramError(f"IFU observations are simulated for MIRI and NIRSPEC, not {inst}")
    sc = scene(spec)
    sub = ro.subarray(inst, "FULL")
    exposures = []
    for e in spec.exposures:
        tim = ro.timing(inst, e.readpatt, sub, e.ngroups, e.nints)
        e = replace(e, exposure_time=tim.exposure_time)
        if inst == "MIRI":
            meta, t = SM.simulate_light(e, sc, seed)
        else:
            meta, t = SN.simulate_light(e, sc, seed)
        meta = _level1b_meta(inst, e, meta, sub, tim)
        data, s1 = _ramp(inst, e, t.rate, sub, tim, seed)
        name = str(meta["filename"])
        truth = _truth(name, inst, e, t, sc, rf.detector_spec(e.detector).gain,
                       tim.exposure_time)
        exposures.append(SPG.SpecExposure(e, DataModel("uncal", {"data": data}, meta), truth,
                                          None, s1))
    refs, by_exp = ifu_references(spec, seed, exposures)
    return SPG.SpecProgram(spec, seed, tuple(exposures), tuple(refs), by_exp)


def _match(inst: str, reftype: str, meta: Mapping[str, Any]) -> dict[str, str]:
    keys = IFU_SELECTORS[inst].get(reftype)
    if keys is None:
        raise ProgramError(f"no CRDS selectors declared for {inst} {reftype}; add them to "
                           "IFU_SELECTORS")
    return {k: str(meta[k]) for k in keys
            if meta.get(k) not in (None, "") and str(meta[k]).upper() != "N/A"}


def ifu_references(spec: IfuProgramSpec, seed: int, exposures: Any
                   ) -> tuple[list[RefFile], dict[str, dict[str, DataModel]]]:
    """The spec2/spec3 references of an IFU observation (one file per distinct content and
    selection) and, per exposure, the model CRDS selects per reftype."""
    inst = spec.instrument.upper()
    out: list[RefFile] = []
    count: dict[str, int] = {}
    by_exp: dict[str, dict[str, DataModel]] = {}
    from transforms.sim.all_program import same_content
    for ex in exposures:
        e, meta = ex.spec, ex.model.meta
        if inst == "MIRI":
            models: dict[str, DataModel | None] = dict(SM.mrs_references(e.detector, e.band,
                                                                         seed))
        else:
            models = dict(SN.nrs_ifu_references(seed, detector=e.detector))
            # the failed-open shutters as the MOS part writes MSAOPER (JWST's JSON layout)
            models["msaoper"] = R.nirspec_msaoper(SN.FAILED_OPEN)
        models.update(dict.fromkeys(NOT_APPLICABLE[inst]))
        sel: dict[str, DataModel] = {}
        for rt, model in sorted(models.items()):
            match = _match(inst, rt, meta)
            ua = DFLAT_USEAFTER if (inst, rt) == ("NIRSPEC", "dflat") else SM.USEAFTER
            hit = next((r for r in out if r.reftype == rt and dict(r.match) == match
                        and same_content(r.model, model)), None)
            if hit is None:
                if model is None:
                    hit = RefFile(rt, inst, "N/A", None, match, ua)
                else:
                    count[rt] = count.get(rt, 0) + 1
                    hit = RefFile(rt, inst, f"jwst_{inst.lower()}_{rt}_{count[rt]:04d}"
                                  f"{_suffix(model)}", model, match, ua)
                out.append(hit)
            if hit.model is not None:
                sel[rt] = hit.model
        by_exp[ex.truth.name] = sel
    return out, by_exp


# stdatamodels' ASDF reference layouts (store.ifu_references.ASDF_MODELS; a test keeps them
# equal): every other IFU reference is FITS
ASDF_MODEL_TYPES = ("DistortionMRSModel", "SpecwcsModel", "WavelengthrangeModel",
                    "Extract1dIFUModel", "IFUFOREModel", "IFUSlicerModel", "IFUPostModel",
                    "MirMrsApcorrModel", "NrsIfuApcorrModel", "RegionsModel")


def _suffix(model: DataModel) -> str:
    """The file suffix of a reference (the IFU layouts' ASDF/FITS; msaoper JSON)."""
    if model.get("calops.ifu_reference"):
        return ".asdf" if model.get("model_type") in ASDF_MODEL_TYPES else ".fits"
    return R.file_suffix(model)
