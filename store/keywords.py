"""The one table mapping calops meta keys <-> FITS keyword and header (PRIMARY or SCI).

Meta keys are stdatamodels schema paths without ``meta.``; every entry below was taken from the
stdatamodels 6.0 JWST schemas and ``tests/store/test_keywords.py`` checks each one against them
(keyword, header and value type). The table is deliberately small: the keywords the calops
steps read, the ones that name files, and provenance. Conventions that differ from the schema:

- ``ref_file.<reftype>`` holds the reference file name directly (the schema's
  ``ref_file.<reftype>.name``), e.g. ``ref_file.gain = "crds://jwst_nircam_gain_0001.fits"``.
- ``cal_step.<step>`` is keyed by the calops step name; its ``S_*`` keyword is the one the
  step's registration declares (``transforms.registry``; ``dark_current`` -> ``S_DARK``, the
  schema's ``cal_step.dark_sub``), so a step and its keyword are declared in one place.
- ``calops.product_id`` / ``calops.recipe_key`` / ``calops.build`` are calops's own provenance
  keywords (``CO_PID`` / ``CO_RKEY`` / ``CO_BUILD``; ``CO_NOTE`` says how a file-level run
  was customised: overrides, parameters and where they came from; plain 8-character names, long values use
  FITS CONTINUE cards). ``CAL_VER`` is the build's pipeline version, as in JWST products.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Keyword:
    """One meta key and where it lives in a JWST FITS file."""

    key: str  # calops meta key (schema path without "meta.")
    keyword: str  # FITS keyword, at most 8 characters
    hdu: str  # "PRIMARY" or "SCI"
    type: type  # str, int, float or bool
    schema_path: str | None  # stdatamodels path; None for calops-only keywords


def _k(key: str, keyword: str, hdu: str, typ: type, schema_path: str | None = "") -> Keyword:
    return Keyword(key, keyword, hdu, typ, ("meta." + key) if schema_path == "" else schema_path)


P, S = "PRIMARY", "SCI"

_BASE: tuple[Keyword, ...] = (
    # identity of the file and the software that made it
    _k("telescope", "TELESCOP", P, str),
    _k("data_processing_software_version", "SDP_VER", P, str),
    _k("calibration_software_version", "CAL_VER", P, str),
    _k("ref_file.crds.context_used", "CRDS_CTX", P, str),
    _k("ref_file.crds.sw_version", "CRDS_VER", P, str),
    # observation identifiers (file names)
    _k("observation.program_number", "PROGRAM", P, str),
    _k("observation.observation_number", "OBSERVTN", P, str),
    _k("observation.visit_number", "VISIT", P, str),
    _k("observation.visit_group", "VISITGRP", P, str),
    _k("observation.sequence_id", "SEQ_ID", P, str),
    _k("observation.activity_id", "ACT_ID", P, str),
    _k("observation.exposure_number", "EXPOSURE", P, str),
    _k("observation.date", "DATE-OBS", P, str),
    _k("observation.time", "TIME-OBS", P, str),
    _k("observation.visit_id", "VISIT_ID", P, str),
    _k("observation.obs_id", "OBS_ID", P, str),
    # target
    _k("target.ra", "TARG_RA", P, float),
    _k("target.dec", "TARG_DEC", P, float),
    _k("target.catalog_name", "TARGNAME", P, str),
    # instrument
    _k("instrument.name", "INSTRUME", P, str),
    _k("instrument.detector", "DETECTOR", P, str),
    _k("instrument.module", "MODULE", P, str),
    _k("instrument.channel", "CHANNEL", P, str),
    _k("instrument.filter", "FILTER", P, str),
    _k("instrument.pupil", "PUPIL", P, str),
    # exposure
    _k("exposure.type", "EXP_TYPE", P, str),
    _k("exposure.readpatt", "READPATT", P, str),
    _k("exposure.nints", "NINTS", P, int),
    _k("exposure.integration_start", "INTSTART", P, int),  # segmented exposures
    _k("exposure.integration_end", "INTEND", P, int),
    _k("exposure.ngroups", "NGROUPS", P, int),
    _k("exposure.nframes", "NFRAMES", P, int),
    _k("exposure.groupgap", "GROUPGAP", P, int),
    _k("exposure.nsamples", "NSAMPLES", P, int),
    _k("exposure.noutputs", "NOUTPUTS", P, int),
    _k("exposure.frame_divisor", "FRMDIVSR", P, int),
    _k("exposure.sample_time", "TSAMPLE", P, float),
    _k("exposure.frame_time", "TFRAME", P, float),
    _k("exposure.group_time", "TGROUP", P, float),
    _k("exposure.integration_time", "EFFINTTM", P, float),
    _k("exposure.exposure_time", "EFFEXPTM", P, float),
    _k("exposure.effective_exposure_time", "XPOSURE", S, float),
    _k("exposure.measurement_time", "TMEASURE", P, float),
    _k("exposure.duration", "DURATION", P, float),
    _k("exposure.start_time", "EXPSTART", P, float),
    _k("exposure.mid_time", "EXPMID", P, float),
    _k("exposure.end_time", "EXPEND", P, float),
    _k("exposure.zero_frame", "ZEROFRAM", P, bool),
    _k("exposure.drop_frames1", "DRPFRMS1", P, int),
    _k("exposure.drop_frames3", "DRPFRMS3", P, int),
    _k("exposure.nresets_at_start", "NRSTSTRT", P, int),
    _k("exposure.nresets_between_ints", "NRESETS", P, int),
    _k("exposure.gain_factor", "GAINFACT", P, float),
    # subarray
    _k("subarray.name", "SUBARRAY", P, str),
    _k("subarray.xstart", "SUBSTRT1", P, int),
    _k("subarray.ystart", "SUBSTRT2", P, int),
    _k("subarray.xsize", "SUBSIZE1", P, int),
    _k("subarray.ysize", "SUBSIZE2", P, int),
    _k("subarray.fastaxis", "FASTAXIS", P, int),
    _k("subarray.slowaxis", "SLOWAXIS", P, int),
    # aperture and dither (the simulator sets these; tweakreg/resample users look at them)
    _k("aperture.name", "APERNAME", P, str),
    _k("aperture.position_angle", "PA_APER", S, float),
    _k("dither.primary_type", "PATTTYPE", P, str),
    _k("dither.position_number", "PATT_NUM", P, int),
    _k("dither.total_points", "NUMDTHPT", P, int),
    _k("dither.x_offset", "XOFFSET", P, float),
    _k("dither.y_offset", "YOFFSET", P, float),
    # pointing and WCS reference (SCI header)
    _k("pointing.ra_v1", "RA_V1", S, float),
    _k("pointing.dec_v1", "DEC_V1", S, float),
    _k("pointing.pa_v3", "PA_V3", S, float),
    _k("wcsinfo.v2_ref", "V2_REF", S, float),
    _k("wcsinfo.v3_ref", "V3_REF", S, float),
    _k("wcsinfo.vparity", "VPARITY", S, int),
    _k("wcsinfo.v3yangle", "V3I_YANG", S, float),
    _k("wcsinfo.ra_ref", "RA_REF", S, float),
    _k("wcsinfo.dec_ref", "DEC_REF", S, float),
    _k("wcsinfo.roll_ref", "ROLL_REF", S, float),
    _k("wcsinfo.siaf_xref_sci", "XREF_SCI", S, float),
    _k("wcsinfo.siaf_yref_sci", "YREF_SCI", S, float),
    _k("wcsinfo.s_region", "S_REGION", S, str),
    # velocity aberration
    _k("velocity_aberration.scale_factor", "VA_SCALE", S, float),
    _k("velocity_aberration.va_ra_ref", "VA_RA", P, float),
    _k("velocity_aberration.va_dec_ref", "VA_DEC", P, float),
    # ephemeris (SCI header)
    _k("ephemeris.type", "EPH_TYPE", S, str),
    _k("ephemeris.reference_frame", "REFFRAME", S, str),
    _k("ephemeris.time", "EPH_TIME", S, float),
    _k("ephemeris.spatial_x_bary", "JWST_X", S, float),
    _k("ephemeris.spatial_y_bary", "JWST_Y", S, float),
    _k("ephemeris.spatial_z_bary", "JWST_Z", S, float),
    _k("ephemeris.velocity_x_bary", "JWST_DX", S, float),
    _k("ephemeris.velocity_y_bary", "JWST_DY", S, float),
    _k("ephemeris.velocity_z_bary", "JWST_DZ", S, float),
    # photometry and units (SCI header)
    _k("photometry.conversion_megajanskys", "PHOTMJSR", S, float),
    _k("photometry.conversion_microjanskys", "PHOTUJA2", S, float),
    _k("photometry.pixelarea_steradians", "PIXAR_SR", S, float),
    _k("photometry.pixelarea_arcsecsq", "PIXAR_A2", S, float),
    _k("bunit_data", "BUNIT", S, str),
    # NIRSpec (the grating selects references; IRS2 readout layout)
    _k("instrument.grating", "GRATING", P, str),
    _k("exposure.nrs_normal", "NRS_NORM", P, int),
    _k("exposure.nrs_reference", "NRS_REF", P, int),
    # spectroscopy: slit, MSA and nod keywords the spec2 steps read
    _k("instrument.fixed_slit", "FXD_SLIT", P, str),
    _k("instrument.msa_metadata_file", "MSAMETFL", P, str),
    _k("instrument.msa_metadata_id", "MSAMETID", P, int),
    _k("instrument.msa_configuration_id", "MSACONID", P, int),
    _k("instrument.lamp_mode", "OPMODE", P, str),
    _k("instrument.lamp_state", "LAMP", P, str),
    _k("instrument.gwa_xtilt", "GWA_XTIL", P, float),
    _k("instrument.gwa_ytilt", "GWA_YTIL", P, float),
    _k("target.source_type", "SRCTYPE", S, str),
    _k("target.source_type_apt", "SRCTYAPT", P, str),
    _k("observation.bkgdtarg", "BKGDTARG", P, bool),
    _k("dither.nod_type", "NOD_TYPE", P, str),
    _k("dither.primary_points", "PRIDTPTS", P, int),
    _k("dither.subpixel_total_points", "SUBPXPTS", P, int),
    _k("dither.dithered_ra", "DITH_RA", P, float),
    _k("dither.dithered_dec", "DITH_DEC", P, float),
    _k("wcsinfo.dispersion_direction", "DISPAXIS", S, int),
    _k("wcsinfo.spectral_order", "SPORDER", S, int),
    # calops provenance (not in the stdatamodels schema)
    _k("calops.product_id", "CO_PID", P, str, None),
    _k("calops.recipe_key", "CO_RKEY", P, str, None),
    _k("calops.build", "CO_BUILD", P, str, None),
    _k("calops.note", "CO_NOTE", P, str, None),  # how a file-level run was customised
)

# ref_file.<reftype> -> R_* keyword (schema path ref_file.<reftype>.name).
REF_FILE: dict[str, str] = {
    "mask": "R_MASK",
    "saturation": "R_SATURA",
    "superbias": "R_SUPERB",
    "refpix": "R_REFPIX",
    "linearity": "R_LINEAR",
    "dark": "R_DARK",
    "gain": "R_GAIN",
    "readnoise": "R_READNO",
    "persat": "R_PERSAT",
    "trapdensity": "R_TRPDEN",
    "trappars": "R_TRPPAR",
    "ipc": "R_IPC",
    "distortion": "R_DISTOR",
    "filteroffset": "R_FILOFF",
    "flat": "R_FLAT",
    "photom": "R_PHOTOM",
    "area": "R_AREA",
    "fflat": "R_FFLAT",  # spectroscopy
    "sflat": "R_SFLAT",
    "dflat": "R_DFLAT",
    "pathloss": "R_PTHLOS",
    "barshadow": "R_BARSHA",
    "wavecorr": "R_WAVCOR",
    "wavelengthrange": "R_WAVRAN",
    "disperser": "R_DISPER",
    "msa": "R_MSA",
    "msaoper": "R_MSAOPE",  # schema path ref_file.badshutter (REF_SCHEMA_NAME)
    "specwcs": "R_SPCWCS",
    "extract1d": "R_EXTR1D",
    "emicorr": "R_MIREMI",  # MIRI
    "rscd": "R_RSCD",
    "reset": "R_RESET",
    "regions": "R_REGION",  # integral-field units
    "fringe": "R_FRINGE",
    "fringefreq": "R_FRIFRQ",
    "mrsxartcorr": "R_MRSXAR",
    "mrsptcorr": "R_MRSPT",
    "cubepar": "R_CUBPAR",
    "ifufore": "R_IFUFOR",
    "ifuslicer": "R_IFUSLI",
    "ifupost": "R_IFUPOS",
}

# Reference-file header keywords (referencefile.schema + the CRDS match keys).
REFERENCE: tuple[Keyword, ...] = (
    _k("reftype", "REFTYPE", P, str),
    _k("pedigree", "PEDIGREE", P, str),
    _k("description", "DESCRIP", P, str),
    _k("author", "AUTHOR", P, str),
    _k("useafter", "USEAFTER", P, str),
    _k("telescope", "TELESCOP", P, str),
    _k("instrument.name", "INSTRUME", P, str),
    _k("instrument.detector", "DETECTOR", P, str),
    _k("instrument.module", "MODULE", P, str),
    _k("instrument.channel", "CHANNEL", P, str),
    _k("instrument.filter", "FILTER", P, str),
    _k("instrument.pupil", "PUPIL", P, str),
    _k("instrument.p_pupil", "P_PUPIL", P, str),
    _k("instrument.grating", "GRATING", P, str),
    _k("instrument.band", "BAND", P, str),
    _k("exposure.type", "EXP_TYPE", P, str),
    _k("exposure.p_exptype", "P_EXP_TY", P, str),
    _k("exposure.readpatt", "READPATT", P, str),
    _k("exposure.ngroups", "NGROUPS", P, int),
    _k("exposure.nints", "NINTS", P, int),  # MIRI RESET / DARK
    _k("exposure.nframes", "NFRAMES", P, int),
    _k("exposure.groupgap", "GROUPGAP", P, int),
    _k("exposure.gain_factor", "GAINFACT", P, float),
    _k("subarray.name", "SUBARRAY", P, str),
    _k("subarray.xstart", "SUBSTRT1", P, int),
    _k("subarray.ystart", "SUBSTRT2", P, int),
    _k("subarray.xsize", "SUBSIZE1", P, int),
    _k("subarray.ysize", "SUBSIZE2", P, int),
    _k("subarray.fastaxis", "FASTAXIS", P, int),
    _k("subarray.slowaxis", "SLOWAXIS", P, int),
    # PixelAreaModel keeps the pixel area in the PRIMARY header (products keep it in SCI)
    _k("photometry.pixelarea_steradians", "PIXAR_SR", P, float),
    _k("photometry.pixelarea_arcsecsq", "PIXAR_A2", P, float),
    _k("bunit_data", "BUNIT", S, str),
)

# reftypes the core schema records under another name (jwst's msaflagopen reads MSAOPER)
REF_SCHEMA_NAME = {"msaoper": "badshutter"}

KEYWORDS: tuple[Keyword, ...] = (
    _BASE
    + tuple(_k(f"ref_file.{r}", kw, P, str, f"meta.ref_file.{REF_SCHEMA_NAME.get(r, r)}.name")
            for r, kw in REF_FILE.items())
)


def cal_step_keywords() -> tuple[Keyword, ...]:
    """``cal_step.<step>`` -> the S_* keyword each registered step declares (PRIMARY, str;
    values COMPLETE/SKIPPED). Their schema paths are checked against stdatamodels by a test."""
    from transforms.registry import keywords  # the steps' declarations; no science runs here

    return tuple(_k(f"cal_step.{step}", kw, P, str, None)
                 for step, kw in sorted(keywords().items()))


@lru_cache(maxsize=1)
def product_table() -> dict[str, Keyword]:
    """Every product keyword by meta key: the fixed table plus the steps' S_* keywords."""
    return by_key(KEYWORDS + cal_step_keywords())

# Keywords an uncal must carry for the detector1 steps to run (read_uncal refuses a file without).
UNCAL_REQUIRED: tuple[str, ...] = (
    "instrument.name", "instrument.detector", "exposure.type", "exposure.readpatt",
    "exposure.nframes", "exposure.groupgap", "exposure.ngroups", "exposure.nints",
    "exposure.frame_time", "exposure.group_time", "subarray.name", "subarray.xstart",
    "subarray.ystart", "subarray.xsize", "subarray.ysize",
)

# Provenance written by write_product(provenance=...): short names accepted there -> meta key.
PROVENANCE_ALIASES: dict[str, str] = {
    "build": "calops.build",
    "pipeline_version": "calibration_software_version",
    "cal_ver": "calibration_software_version",
    "crds_context": "ref_file.crds.context_used",
    "crds_version": "ref_file.crds.sw_version",
    "sdp_version": "data_processing_software_version",
    "eph_type": "ephemeris.type",
    "product_id": "calops.product_id",
    "recipe_key": "calops.recipe_key",
    "note": "calops.note",
}

# Keys that describe how a file was made, not its science content: read_product reports them
# through read_provenance() and leaves them out of the model's meta (so identity is unchanged).
PROVENANCE_ONLY: frozenset[str] = frozenset({
    "calibration_software_version", "ref_file.crds.context_used", "ref_file.crds.sw_version",
    "calops.product_id", "calops.recipe_key", "calops.build", "calops.note",
})


def by_key(table: tuple[Keyword, ...] = KEYWORDS) -> dict[str, Keyword]:
    """The table indexed by meta key."""
    return {k.key: k for k in table}


def by_keyword(table: tuple[Keyword, ...] = KEYWORDS) -> dict[tuple[str, str], Keyword]:
    """The table indexed by (hdu, FITS keyword)."""
    return {(k.hdu, k.keyword): k for k in table}
