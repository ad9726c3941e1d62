"""Spectroscopic programs: NIRSpec fixed slits and MOS, MIRI LRS fixed slit, with their truth.

``simulate_spec_program(spec, seed)`` turns a ``SpecProgramSpec`` (sources with spectra, an
optional MSA plan, a list of exposures with their nod offsets) into a ``SpecProgram``: per
exposure a count-rate product (``rate``, DN/s with Poisson and read noise) or, with
``level="uncal"``, a level-1b ramp through the stage-1 detector simulators (NIRSpec:
``sim.nirspec``, MIRI: ``sim.miri``), and its ``SpecTruth``; and the references the spec2
steps read (``spec_refs``), as CRDS cache entries with the real rmap parameters.

What an exposure sees: every open aperture (the five fixed slits are always open; the MSA
slitlets of the plan; failed-open shutters of the MSAOPER reference; LRS: the slit) receives
the sky and the sources whose light reaches it, rendered by ``spectra.render_slit`` through the
instrument model (``instruments.nirspec.slits``, ``instruments.miri.lrs``) into the detector
window, multiplied by the true flats at each pixel's nominal wavelength; NIRSpec MOS
exposures add the MSA leak (light through the closed shutters, dispersed over each quadrant's
footprint with the shutter grid's imprint), which the leakcal (imprint) exposure records.

**Keywords** as JWST writes them for each mode: EXP_TYPE, FXD_SLIT (primary slit), GRATING,
FILTER, OPMODE/LAMP, MSAMETFL/MSAMETID (MOS), PATTTYPE (2-POINT-NOD / 3-POINT-NOD,
3-SHUTTER-SLITLET, ALONG-SLIT-NOD), PATT_NUM, NUMDTHPT, NOD_TYPE, XOFFSET/YOFFSET (the target's
position in the aperture's ideal frame: jwst's extract_2d and assign_wcs read them), APERNAME,
the pointing (``wcsinfo.*`` at the aperture reference point), SRCTYPE (MIRI), BKGDTARG.
**The MSA metadata** (MSAMETFL) travels as ``msa.shutter_info`` and ``msa.source_info`` in the
exposure's meta (jwst's column names; ``estimated_source_in_shutter_x/y`` are the planned
positions, 0..1 over the open area); ``store.spec_references.write_msa_metafile`` writes the
``_msa.fits`` beside an exported uncal.

**Truth** (``SpecTruth``): the noiseless DN/s image and the sky's part of it, and per source
its spectrum (``fnu``), its true and planned positions in each aperture, its true path loss and
line centroids.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms.instruments.miri import lrs as L
from transforms.instruments.nirspec import slits as N
from transforms.model import DataModel
from transforms.sim import readout as ro
from transforms.sim import references as rf
from transforms.sim import spec_refs as R
from transforms.sim import spectra as SP
from transforms.sim.program import RefFile

DEFAULT_SDP = "2024.3.1"
DCELL_NIRSPEC = 0.025  # arcsec cells across the aperture
DCELL_MIRI = 0.03
DU = 0.25  # samples per pixel along the dispersion
MSA_LEAK = 3.0e-4  # fraction of the sky through a closed shutter


class SpecProgramError(ValueError):
    """A spectroscopic program the simulator cannot carry out."""


@dataclass(frozen=True)
class Slitlet:
    """One planned MSA slitlet: open ``columns`` (SHUTTER_COLUMN, along the slit) of one
    SHUTTER_ROW in a quadrant; ``source_id`` its primary source (0: background only)."""

    slitlet_id: int
    quadrant: int
    row: int
    columns: tuple[int, ...]
    source_id: int = 0


@dataclass(frozen=True)
class SpecExposureSpec:
    """One exposure of a spectroscopic program."""

    exp_type: str
    detector: str
    date: str
    grating: str = "G140M"
    filter: str = "F100LP"
    subarray: str = "SUBS200A1"
    fixed_slit: str | None = "S200A1"
    readpatt: str = "NRSRAPID"
    ngroups: int = 30
    nints: int = 1
    observation: int = 1
    visit: int = 1
    exposure: int = 1
    offset: tuple[float, float] = (0.0, 0.0)  # target position in the aperture's ideal frame
    pattern: str = "NONE"
    position: int = 1
    total: int = 1
    imprint: bool = False  # a leakcal exposure: the MSA closed
    bkgdtarg: bool = False


@dataclass(frozen=True)
class SpecProgramSpec:
    name: str
    program_id: int
    instrument: str  # "NIRSPEC" | "MIRI"
    ra: float  # the aperture reference point's target for offset (0, 0)
    dec: float
    roll: float
    sources: tuple[SP.SpecSource, ...]
    exposures: tuple[SpecExposureSpec, ...]
    msa_plan: tuple[Slitlet, ...] = ()
    failed_open: tuple[tuple[int, int, int], ...] = ()
    failed_closed: tuple[tuple[int, int, int], ...] = ()
    sky: bool = True
    msa_leak: float = MSA_LEAK
    noise: bool = True
    ref_window: tuple[int, int, int, int] | None = None  # NIRSpec S/D-flat window (1-based)
    sdp_version: str = DEFAULT_SDP
    # NIRSpec uncal: detector1 references over the full detector (the steps cut them, as
    # jwst's are) instead of the exposure's window, so a subarray exposure and a full-frame
    # one of another program can share them in one CRDS cache
    full_frame_refs: bool = False


@dataclass(frozen=True)
class SpecTruth:
    """What was simulated for one exposure."""

    name: str
    light_dn: np.ndarray  # noiseless DN/s in the window (after the flats)
    sky_dn: np.ndarray  # the part from the sky and the MSA leak
    sources: tuple[dict, ...]
    apertures: tuple[dict, ...]
    gain: float
    exposure_time: float
    flat: dict = field(default_factory=dict)  # aperture name -> true flat on its box

    def source(self, source_id: int) -> dict:
        for s in self.sources:
            if s["id"] == source_id:
                return s
        raise KeyError(f"no source {source_id} in the truth of {self.name}")


@dataclass(frozen=True)
class SpecExposure:
    spec: SpecExposureSpec
    model: DataModel  # rate (or uncal with level="uncal")
    truth: SpecTruth
    rate: DataModel | None = None  # the rate as well, for level="uncal"
    stage1_refs: Mapping[str, DataModel] | None = None  # level="uncal": detector1's references


@dataclass(frozen=True)
class SpecProgram:
    spec: SpecProgramSpec
    seed: int
    exposures: tuple[SpecExposure, ...]
    references: tuple[RefFile, ...]
    refs: Mapping[str, Mapping[str, DataModel]]  # exposure name -> reftype -> model

    def source(self, source_id: int) -> SP.SpecSource:
        for s in self.spec.sources:
            if s.id == source_id:
                return s
        raise KeyError(f"no source {source_id}")


# --------------------------------------------------------------------------------------------
# Pointing
# --------------------------------------------------------------------------------------------

def _seed(seed: int, *parts: Any) -> np.random.Generator:
    return np.random.default_rng([int(seed)] + [zlib.crc32(str(p).encode()) for p in parts])


def _aperture(spec: SpecProgramSpec, e: SpecExposureSpec) -> tuple[str, float, float, float,
                                                                    int]:
    """(APERNAME, v2_ref, v3_ref, v3yangle, vparity) of the exposure's aperture."""
    if spec.instrument == "MIRI":
        dist = _miri_distortion()
        from transforms.wcs import distortion_model

        v2, v3 = distortion_model(dist)(L.IMX - 1.0, L.IMY - 1.0)
        ds = rf.detector_spec("MIRIMAGE")
        return "MIRIM_SLIT", float(v2), float(v3), float(ds.v3yangle), int(ds.vparity)
    g = N.msa_geometry()
    if e.exp_type == "NRS_FIXEDSLIT":
        fs = N.fixed_slit(g, e.fixed_slit or "S200A1")
        x, y = fs["x"], fs["y"]
        name = f"NRS_{(e.fixed_slit or 'S200A1').upper()}_SLIT"
    else:
        x = y = 0.0
        name = "NRS_FULL_MSA"
    from transforms.wcs import _ideal_to_v2v3

    v2, v3 = _ideal_to_v2v3(g["v2_ref"], g["v3_ref"], g["v3yangle"], g["vparity"])(x, y)
    return name, float(v2), float(v3), float(g["v3yangle"]), int(g["vparity"])


def _ideal_axes(v3yangle: float, vparity: int) -> tuple[np.ndarray, np.ndarray]:
    a = math.radians(v3yangle)
    return np.array([vparity * math.cos(a), -vparity * math.sin(a)]), \
        np.array([math.sin(a), math.cos(a)])


def pointing(spec: SpecProgramSpec, e: SpecExposureSpec) -> dict[str, Any]:
    """``wcsinfo.*`` placing the program's target at ideal (x_offset, y_offset) of the
    exposure's aperture (the reference point is then ``-offset`` from the target)."""
    from transforms.wcs import pointing_model

    name, v2r, v3r, ya, vp = _aperture(spec, e)
    ex, ey = _ideal_axes(ya, vp)
    v = np.array([v2r, v3r]) + e.offset[0] * ex + e.offset[1] * ey  # target's V2/V3
    meta = {"wcsinfo.v2_ref": v2r, "wcsinfo.v3_ref": v3r, "wcsinfo.v3yangle": ya,
            "wcsinfo.vparity": vp, "wcsinfo.roll_ref": float(spec.roll),
            "wcsinfo.ra_ref": float(spec.ra), "wcsinfo.dec_ref": float(spec.dec)}
    for _ in range(4):  # move the reference point until the target lands at v
        ra_t, dec_t = pointing_model(meta)(v[0], v[1])
        dra = (spec.ra - float(ra_t) + 180.0) % 360.0 - 180.0
        meta["wcsinfo.ra_ref"] += dra
        meta["wcsinfo.dec_ref"] += spec.dec - float(dec_t)
    meta["aperture.name"] = name
    return meta


def sky_to_msa(meta: Mapping[str, Any], ra, dec) -> tuple[np.ndarray, np.ndarray]:
    """NIRSpec MSA-plane (X, Y) arcsec of sky positions under an exposure's pointing."""
    from transforms.wcs import _ideal_to_v2v3, pointing_model

    g = N.msa_geometry()
    v2, v3 = pointing_model(meta).inverse(np.asarray(ra, np.float64),
                                          np.asarray(dec, np.float64))
    return _ideal_to_v2v3(g["v2_ref"], g["v3_ref"], g["v3yangle"],
                          g["vparity"]).inverse(v2, v3)


def msa_to_sky(meta: Mapping[str, Any], X, Y) -> tuple[np.ndarray, np.ndarray]:
    from transforms.wcs import _ideal_to_v2v3, pointing_model

    g = N.msa_geometry()
    v2, v3 = _ideal_to_v2v3(g["v2_ref"], g["v3_ref"], g["v3yangle"], g["vparity"])(X, Y)
    return pointing_model(meta)(v2, v3)


_MIRI_DIST: list = []


def _miri_distortion() -> dict[str, Any]:
    if not _MIRI_DIST:
        from transforms.wcs import distortion_params

        _MIRI_DIST.append(distortion_params(_miri_distortion_ref()))
    return _MIRI_DIST[0]


def _miri_distortion_ref() -> DataModel:
    return rf.distortion_ref(rf.detector_spec("MIRIMAGE"), R.USEAFTER, "MIR_IMAGE")


# --------------------------------------------------------------------------------------------
# Exposure metadata
# --------------------------------------------------------------------------------------------

def _window(spec: SpecProgramSpec, e: SpecExposureSpec) -> ro.Subarray:
    if spec.instrument == "MIRI":
        return ro.subarray("MIRI", e.subarray)
    from transforms.sim.nirspec import window

    return window(e.subarray, e.detector)


def exposure_meta(spec: SpecProgramSpec, e: SpecExposureSpec) -> dict[str, Any]:
    """Level-1b metadata of a spectroscopic exposure (stage 1's keys plus the mode's)."""
    from astropy.time import Time

    sub = _window(spec, e)
    tim = ro.timing(spec.instrument, e.readpatt, sub, e.ngroups, e.nints)
    if spec.instrument == "NIRSPEC":
        from transforms.sim.nirspec import NirspecExposureSpec
        from transforms.sim.nirspec import exposure_meta as nrs_meta

        meta = nrs_meta(NirspecExposureSpec(
            e.detector, e.readpatt, e.subarray, e.ngroups, e.nints, e.exp_type, e.filter,
            e.grating, e.date, spec.program_id, e.observation, e.visit, e.exposure), sub, tim)
        meta["instrument.lamp_mode"] = {"NRS_FIXEDSLIT": "FIXEDSLIT",
                                        "NRS_MSASPEC": "MSASPEC"}[e.exp_type]
        meta["instrument.lamp_state"] = "NONE"
        meta["instrument.gwa_xtilt"] = 0.0
        meta["instrument.gwa_ytilt"] = 0.0
        if e.exp_type == "NRS_FIXEDSLIT":
            meta["instrument.fixed_slit"] = (e.fixed_slit or "S200A1").upper()
        else:
            meta["instrument.fixed_slit"] = "NONE"
    else:
        from transforms.sim import miri as sim_miri

        start = Time(e.date, scale="utc")
        p = ro.pattern("MIRI", e.readpatt)
        tag = f"{e.observation:03d}{e.visit:03d}"
        meta = {
            "telescope": "JWST", "model_type": "Level1bModel",
            "data_processing_software_version": spec.sdp_version,
            "observation.program_number": f"{spec.program_id:05d}",
            "observation.observation_number": f"{e.observation:03d}",
            "observation.visit_number": f"{e.visit:03d}", "observation.visit_group": "01",
            "observation.sequence_id": "1", "observation.activity_id": "01",
            "observation.exposure_number": f"{e.exposure:05d}",
            "observation.visit_id": f"{spec.program_id:05d}{tag}",
            "observation.date": start.isot[:10], "observation.time": start.isot[11:23],
            "instrument.name": "MIRI", "instrument.detector": "MIRIMAGE",
            "instrument.filter": L.FILTER, "exposure.type": e.exp_type,
            "exposure.readpatt": p.name, "exposure.nints": e.nints,
            "exposure.ngroups": e.ngroups, "exposure.nframes": 1, "exposure.groupgap": 0,
            "exposure.frame_time": tim.tframe, "exposure.group_time": tim.tgroup,
            "exposure.integration_time": tim.integration_time,
            "exposure.exposure_time": tim.exposure_time,
            "exposure.effective_exposure_time": tim.exposure_time,
            "exposure.measurement_time": tim.exposure_time, "exposure.duration": tim.duration,
            "exposure.start_time": float(start.mjd),
            "exposure.mid_time": float(start.mjd) + tim.duration / 2 / 86400.0,
            "exposure.end_time": float(start.mjd) + tim.duration / 86400.0,
            "exposure.zero_frame": False, "exposure.drop_frames1": 0,
            "exposure.drop_frames3": 0, "exposure.nresets_at_start": 1,
            "subarray.name": sub.name, "subarray.xstart": sub.xstart,
            "subarray.ystart": sub.ystart, "subarray.xsize": sub.xsize,
            "subarray.ysize": sub.ysize, "subarray.fastaxis": 1, "subarray.slowaxis": 2,
            "bunit_data": "DN",
            "filename": f"jw{spec.program_id:05d}{tag}_01101_{e.exposure:05d}_mirimage_uncal.fits",
        }
        meta.update(sim_miri.exposure_extras(e.readpatt))
    meta["data_processing_software_version"] = spec.sdp_version
    if e.exp_type != "NRS_MSASPEC" and spec.sources:  # the APT source type of the target
        meta["target.source_type_apt"] = spec.sources[0].srctype
    meta["target.ra"] = float(spec.ra)
    meta["target.dec"] = float(spec.dec)
    meta["target.catalog_name"] = spec.name.upper()
    meta["observation.bkgdtarg"] = bool(e.bkgdtarg)
    meta.update(pointing(spec, e))
    meta["pointing.pa_v3"] = float(spec.roll)
    meta["velocity_aberration.scale_factor"] = 1.0
    meta["dither.primary_type"] = e.pattern
    meta["dither.position_number"] = int(e.position)
    meta["dither.total_points"] = int(e.total)
    meta["dither.primary_points"] = int(e.total)
    meta["dither.subpixel_total_points"] = 1
    meta["dither.x_offset"] = float(e.offset[0])
    meta["dither.y_offset"] = float(e.offset[1])
    if e.pattern != "NONE":
        meta["dither.nod_type"] = e.pattern
    if e.exp_type == "NRS_MSASPEC":
        meta["instrument.msa_metadata_file"] = (
            f"jw{spec.program_id:05d}{e.observation:03d}{e.visit:03d}_01_msa.fits")
        meta["instrument.msa_metadata_id"] = 1
        meta["instrument.msa_configuration_id"] = 1
    if e.imprint:  # a leakcal exposure: same pointing, the MSA closed (jwst's imprint member)
        meta["observation.bkgdtarg"] = False
        meta["calops.leakcal"] = True
    return meta


def _msa_tables(spec: SpecProgramSpec, meta_by_pos: Mapping[int, Mapping[str, Any]]
                ) -> tuple[list[dict], list[dict]]:
    """The MSA metadata file's SHUTTER_INFO and SOURCE_INFO rows: per dither position, the
    shutters of each planned slitlet, the primary flagged where the source is at that
    position, with its planned position in the shutter (0..1 over the open area)."""
    g = N.msa_geometry()
    srcs = {s.id: s for s in spec.sources}
    shutters: list[dict] = []
    for pos, meta in sorted(meta_by_pos.items()):
        for sl in spec.msa_plan:
            src = srcs.get(sl.source_id)
            where = None
            if src is not None:
                X, Y = sky_to_msa(meta, src.ra, src.dec)
                where = N.shutter_at(g, float(X), float(Y))
            for c in sl.columns:
                primary = (where is not None and where[0] == sl.quadrant and where[1] == sl.row
                           and where[2] == c)
                ex = ey = None
                if primary:
                    xs, ys = N.shutter_center(g, sl.quadrant, sl.row, c)
                    ex = 0.5 + (float(X) - xs) / g["open_x"]
                    ey = 0.5 + (float(Y) - ys) / g["open_y"]
                shutters.append({
                    "slitlet_id": sl.slitlet_id, "msa_metadata_id": 1,
                    "shutter_quadrant": sl.quadrant, "shutter_row": sl.row,
                    "shutter_column": c, "source_id": sl.source_id if src else 0,
                    "background": "N" if primary else "Y", "shutter_state": "OPEN",
                    "estimated_source_in_shutter_x": ex, "estimated_source_in_shutter_y": ey,
                    "dither_point_index": pos, "primary_source": "Y" if primary else "N",
                    "fixed_slit": "NONE"})
    sources = [{"program": spec.program_id, "source_id": s.id, "source_name": s.name,
                "alias": s.alias or f"S{s.id}", "ra": s.ra, "dec": s.dec,
                "preimage_id": "NONE", "stellarity": s.stellarity}
               for s in spec.sources if any(sl.source_id == s.id for sl in spec.msa_plan)]
    return shutters, sources


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

@dataclass
class _Aperture:
    name: str
    kind: str  # "fs" | "msa" | "open" (failed open) | "lrs"
    slit: N.SlitGeometry | None
    sources: list = field(default_factory=list)  # (SpecSource, xi0, eta0) arcsec


def _nirspec_apertures(spec: SpecProgramSpec, e: SpecExposureSpec, meta: Mapping[str, Any]
                       ) -> list[_Aperture]:
    g = N.msa_geometry()
    aps: list[_Aperture] = []
    for name in g["fixed_slits"]:
        aps.append(_Aperture(name, "fs", N.fs_slit(g, name)))
    if e.exp_type == "NRS_MSASPEC":
        closed = {(q, x, y) for q, x, y in spec.failed_closed}
        if not e.imprint:
            for sl in spec.msa_plan:
                cols = [c for c in sl.columns if (sl.quadrant, sl.row, c) not in closed]
                if cols:
                    aps.append(_Aperture(f"slitlet{sl.slitlet_id}", "msa", N.mos_slitlet(
                        g, sl.slitlet_id, sl.quadrant, sl.row, cols, None)))
        for i, (q, x, y) in enumerate(spec.failed_open):
            aps.append(_Aperture(f"failed_open{i}", "open",
                                 N.mos_slitlet(g, 9000 + i, q, x, [y], None)))
    # which sources reach which aperture
    if spec.sources:
        ra = np.array([s.ra for s in spec.sources])
        dec = np.array([s.dec for s in spec.sources])
        X, Y = sky_to_msa(meta, ra, dec)
        for ap in aps:
            sl = ap.slit
            ys = [(a * sl.h, b * sl.h) for a, b in sl.open_intervals]
            for s, x, y in zip(spec.sources, X, Y):
                xi, eta = float(x) - sl.xc, float(y) - sl.yc
                reach = 6.0 * SP.HALO_SCALE * 0.07 + 3.0 * s.sigma_arcsec
                if s.kind == "uniform":
                    continue
                if abs(xi) > 0.5 * sl.w + reach:
                    continue
                if eta < ys[0][0] - reach or eta > ys[-1][1] + reach:
                    continue
                ap.sources.append((s, xi, eta))
    return aps


def _fpa_det(disperser: Mapping[str, Any], detector: str, sub: ro.Subarray) -> np.ndarray:
    """(sx, ox, sy, oy): FPA -> window pixel coordinates of a detector window."""
    wx, wy = sub.xstart - 1.0, sub.ystart - 1.0
    if detector.upper() == "NRS2":
        return np.array([1.0, -disperser["nrs2_x0"] - wx, -1.0, disperser["nrs2_y0"] - wy])
    return np.array([1.0, -wx, 1.0, -wy])


def _render_nirspec(spec: SpecProgramSpec, e: SpecExposureSpec, meta: Mapping[str, Any],
                    flats: R.NirspecFlats, gain: float, cache: dict | None = None
                    ) -> tuple[np.ndarray, np.ndarray, list, list, dict]:
    sub = _window(spec, e)
    d = N.disperser_params(e.grating)
    cf = N.pack(d)
    lo, hi = N.wavelength_range(e.grating, e.filter)
    u = np.arange(N.u_of_lam(cf, lo - 0.02), N.u_of_lam(cf, hi + 0.02), DU)
    lam = N.lam_from_u(cf, u)
    dlam = N.lam_from_u(cf, u + 0.5) - N.lam_from_u(cf, u - 0.5)
    resp = SP.response(N.throughput(d, e.filter, lam), lam, dlam, gain)
    sc, sh, fh = SP.psf_params("NIRSPEC", lam)
    blur = SP.detector_blur("NIRSPEC", lam)
    sky_sb = SP.sky_background("NIRSPEC", lam) if spec.sky else np.zeros_like(lam)
    M = np.array([[d["ax"], d["kx"]], [d["kyx"], d["by"]]])
    det = _fpa_det(d, e.detector, sub)
    light = np.zeros((sub.ysize, sub.xsize))
    sky = np.zeros_like(light)
    truths: list[dict] = []
    aps_out: list[dict] = []
    flat_truth: dict[str, np.ndarray] = {}
    for ap in _nirspec_apertures(spec, e, meta):
        sl = ap.slit
        box = N.slit_box(sl, d, e.grating, e.filter, e.detector,
                         (sub.xstart, sub.ystart, sub.xsize, sub.ysize), pad=4)
        if box is None:
            continue
        x0, y0, nx, ny = box
        A = d["x0"] + u + d["ax"] * sl.xc + d["kx"] * sl.yc
        B = d["y0"] + d["by"] * sl.yc + d["kyx"] * sl.xc
        Bk = np.full_like(A, B)
        ivals = np.array([(a * sl.h, b * sl.h) for a, b in sl.open_intervals])
        D = SP.diffraction_loss("NIRSPEC", lam, sl.w)
        local = np.zeros((ny, nx))
        bdet = det.copy()
        bdet[1] -= x0
        bdet[3] -= y0
        args = (M, d["c2"], d["xmid"], bdet, -0.5 * sl.w, 0.5 * sl.w, ivals)
        # the sky (uniform): DN/s per arcsec^2
        sk = np.zeros((ny, nx))
        if spec.sky:
            f = sky_sb * SP.ARCSEC2_SR * resp * D * DU
            SP.render_slit(sk, A, Bk, f, sc, sh, fh, blur, *args, 0.0, 0.0, True, DCELL_NIRSPEC)
        local += sk
        for s, xi, eta in ap.sources:
            f = s.spectrum.fnu(lam) * resp * D * DU
            es = s.sigma_arcsec if s.kind == "extended" else 0.0
            SP.render_slit(local, A, Bk, f, np.sqrt(sc ** 2 + es ** 2),
                           np.sqrt(sh ** 2 + es ** 2), fh, blur, *args, xi, eta, False,
                           DCELL_NIRSPEC)
            ys = [(a * sl.h, b * sl.h) for a, b in sl.open_intervals]
            pl = SP.point_transmission("NIRSPEC", lam, xi, eta, sl.w, ys, es)
            truths.append({"id": s.id, "name": s.name, "aperture": ap.name, "kind": s.kind,
                           "x_slit": xi / sl.w, "y_slit": eta / sl.h, "xi_arcsec": xi,
                           "eta_arcsec": eta, "pathloss_lam": lam[::8].copy(),
                           "pathloss": pl[::8].copy(), "centroids": s.spectrum.centroids(),
                           "srctype": s.srctype})
        # the flat at each pixel's nominal wavelength for this aperture
        params = N.slit_params(sl, d, N.msa_geometry(), e.grating, e.filter, e.detector,
                               (sub.xstart - 1 + x0, sub.ystart - 1 + y0), (ny, nx))
        yy, xx = np.mgrid[0:ny, 0:nx]
        _, lpix = N.pixel_coords(params, xx, yy, masked=False)
        fx = xx + sub.xstart - 1 + x0
        fy = yy + sub.ystart - 1 + y0
        flat = _nirspec_flat(flats, e, ap, fx, fy, lpix)
        flat = np.where(np.isfinite(flat), flat, 1.0)
        flat_truth[ap.name] = flat.astype(np.float32)
        light[y0:y0 + ny, x0:x0 + nx] += local * flat
        sky[y0:y0 + ny, x0:x0 + nx] += sk * flat
        aps_out.append({"name": ap.name, "kind": ap.kind, "box": box,
                        "slitlet_id": sl.slitlet_id, "quadrant": sl.quadrant,
                        "row": sl.xcen, "column": sl.ycen})
    if e.exp_type == "NRS_MSASPEC" and spec.msa_leak > 0 and spec.sky:
        # the sky is uniform: the leak does not depend on the pointing
        key = ("leak", e.grating, e.filter, e.detector, sub)
        if cache is None or key not in cache:
            leak = _msa_leak(spec, e, sub, d, lam, u, sky_sb * resp * DU, flats)
            if cache is not None:
                cache[key] = leak
        leak = cache[key] if cache is not None else leak
        light += leak
        sky += leak
    return light, sky, truths, aps_out, flat_truth


def _nirspec_flat(flats: R.NirspecFlats, e: SpecExposureSpec, ap: _Aperture, fx, fy, lam
                  ) -> np.ndarray:
    mos = e.exp_type == "NRS_MSASPEC"
    if ap.kind == "fs":
        f = flats.fflat_fs(ap.name, e.filter, lam)
        key = ap.name
    else:
        sl = ap.slit
        f = flats.fflat_mos(sl.quadrant, e.filter, sl.xcen, sl.ycen, lam)
        key = "ANY"
    s = flats.sflat(e.detector, e.grating, e.filter, key, fx, fy, lam,
                    mos and ap.kind != "fs")
    dd = flats.dflat(e.detector, fx, fy, lam)
    return f * s * dd


def _msa_leak(spec: SpecProgramSpec, e: SpecExposureSpec, sub: ro.Subarray,
              d: Mapping[str, Any], lam: np.ndarray, u: np.ndarray, sky_rate: np.ndarray,
              flats: R.NirspecFlats) -> np.ndarray:
    """Light leaking through the closed MSA: the sky dispersed over each quadrant's footprint
    (a column of the detector sees every shutter row's spectrum at a different wavelength),
    modulated by the shutter grid (bars) along y, times ``msa_leak``."""
    g = N.msa_geometry()
    ax, by = d["ax"], d["by"]
    out = np.zeros((sub.ysize, sub.xsize))
    yy, xx = np.mgrid[0:sub.ysize, 0:sub.xsize]
    xd = xx + sub.xstart - 1.0
    yd = yy + sub.ystart - 1.0
    xf, yf = N.detector_to_fpa(xd, yd, e.detector, d)
    # per unit area of the closed MSA: sky rate per arcsec^2 per sample, per pixel of y
    per_u = sky_rate / DU * SP.ARCSEC2_SR * g["open_x"] / by  # DN/s per pixel per arcsec of X
    cum = np.concatenate([[0.0], np.cumsum(per_u) * DU])
    for qs, (qx, qy) in g["quadrants"].items():
        x_lo, x_hi = qx, qx + g["nrows"] * g["pitch_x"]
        y_lo, y_hi = qy, qy + g["ncols"] * g["pitch_y"]
        Y = (yf - d["y0"] - d["c2"] * (xf - d["xmid"]) ** 2) / by
        inside = (Y >= y_lo) & (Y <= y_hi)
        if not inside.any():
            continue
        # u of the light at this column from X in [x_lo, x_hi]: u = xf - x0 - ax X - kx Y
        u_hi = xf - d["x0"] - ax * x_lo - d["kx"] * Y
        u_lo = xf - d["x0"] - ax * x_hi - d["kx"] * Y
        c_hi = np.interp(u_hi, np.append(u, u[-1] + DU), cum)
        c_lo = np.interp(u_lo, np.append(u, u[-1] + DU), cum)
        val = (c_hi - c_lo) / ax / g["pitch_x"] * g["open_x"]
        grid = 0.75 + 0.25 * np.cos(2 * math.pi * (Y - y_lo) / g["pitch_y"])
        out += np.where(inside, val * grid, 0.0)
    return spec.msa_leak * out


def _render_lrs(spec: SpecProgramSpec, e: SpecExposureSpec, meta: Mapping[str, Any],
                params: Mapping[str, Any], gain: float, detector_flat: np.ndarray | None,
                seed: int) -> tuple[np.ndarray, np.ndarray, list, list, dict]:
    sub = _window(spec, e)
    ps = params["pscale"]
    yc, wl, xc = L._table(params)
    y = np.arange(yc.min(), yc.max(), DU) + params["y_ref"]  # full-frame rows
    lam = L.lam_of_row(params, y)
    ok = np.isfinite(lam)
    y, lam = y[ok], lam[ok]
    resp = R.lrs_response(params, lam, gain)
    sc, sh, fh = SP.psf_params("MIRI", lam)
    blur = SP.detector_blur("MIRI", lam)
    sky_sb = SP.sky_background("MIRI", lam) if spec.sky else np.zeros_like(lam)
    D = SP.diffraction_loss("MIRI", lam, params["width"])
    xc = params["x_ref"] + L.dx_of_row(params, y)  # full-frame x of the slit centre
    # the dispersion runs along y: render into the transposed cutout, where the first axis
    # (x_T = detector y) follows xi across the slit and the second (detector x) eta along it
    M = np.array([[1.0 / ps, 0.0], [0.0, 1.0 / ps]])
    box = L.slit_box(params, pad=6)
    x0, y0, nx, ny = box
    det = np.array([1.0, -(sub.ystart - 1.0) - y0, 1.0, -(sub.xstart - 1.0) - x0])
    ivals = np.array([[-0.5 * params["length"], 0.5 * params["length"]]])
    args = (M, 0.0, 0.0, det, -0.5 * params["width"], 0.5 * params["width"], ivals)
    localT = np.zeros((nx, ny))
    skT = np.zeros((nx, ny))
    if spec.sky:
        SP.render_slit(skT, y, xc, sky_sb * SP.ARCSEC2_SR * resp * D * DU, sc, sh, fh, blur,
                       *args, 0.0, 0.0, True, DCELL_MIRI)
    localT += skT
    truths = []
    for s in spec.sources:
        if s.kind == "uniform":
            continue
        from transforms.wcs import pointing_model

        v2, v3 = pointing_model(meta).inverse(s.ra, s.dec)
        xs, ys_ = L.v2v3_to_slit(params, v2, v3)
        xi, eta = float(xs) * params["width"], float(ys_) * params["length"]
        if abs(xi) > 3.0 or abs(eta) > 0.5 * params["length"] + 3.0:
            continue
        es = s.sigma_arcsec if s.kind == "extended" else 0.0
        SP.render_slit(localT, y, xc, s.spectrum.fnu(lam) * resp * D * DU,
                       np.sqrt(sc ** 2 + es ** 2), np.sqrt(sh ** 2 + es ** 2), fh, blur,
                       *args, xi, eta, False, DCELL_MIRI)
        pl = SP.point_transmission("MIRI", lam, xi, eta, params["width"],
                                   [(-0.5 * params["length"], 0.5 * params["length"])], es)
        truths.append({"id": s.id, "name": s.name, "aperture": "LRS", "kind": s.kind,
                       "x_slit": xi / params["width"], "y_slit": eta / params["length"],
                       "xi_arcsec": xi, "eta_arcsec": eta, "pathloss_lam": lam[::4].copy(),
                       "pathloss": pl[::4].copy(), "centroids": s.spectrum.centroids(),
                       "srctype": s.srctype})
    local, sk = localT.T, skT.T
    yy, xx = np.mgrid[0:ny, 0:nx]
    fx = xx + sub.xstart - 1 + x0
    fy = yy + sub.ystart - 1 + y0
    flat = R.lrs_flat(seed, fx, fy, detector_flat)
    light = np.zeros((sub.ysize, sub.xsize))
    sky = np.zeros_like(light)
    light[y0:y0 + ny, x0:x0 + nx] = local * flat
    sky[y0:y0 + ny, x0:x0 + nx] = sk * flat
    return light, sky, truths, [{"name": "LRS", "kind": "lrs", "box": box}], \
        {"LRS": flat.astype(np.float32)}


# --------------------------------------------------------------------------------------------
# Noise and products
# --------------------------------------------------------------------------------------------

def _rate_product(light: np.ndarray, meta: Mapping[str, Any], rn_dn: float, gain: float,
                  tim: ro.Timing, rng: np.random.Generator, noise: bool,
                  refpix: np.ndarray) -> DataModel:
    """A rate (DN/s) with the noise of an up-the-ramp fit: Poisson ``S / (g T)`` and read
    noise ``12 RN^2 / (N (N^2 - 1) tg^2)``; reference pixels DO_NOT_USE|REFERENCE_PIXEL."""
    n = tim.ngroups
    t = tim.exposure_time
    vr = np.full(light.shape, 12.0 * rn_dn ** 2 / (n * (n * n - 1) * tim.tgroup ** 2)
                 / max(tim.nints, 1) if n > 1 else rn_dn ** 2, np.float64)
    vp = np.maximum(light, 0.0) / (gain * t)
    data = light + (rng.standard_normal(light.shape) * np.sqrt(vp + vr) if noise else 0.0)
    dq = np.where(refpix, np.uint32(DQ.DO_NOT_USE | DQ.REFERENCE_PIXEL), np.uint32(0))
    data = np.where(refpix, 0.0, data)
    m = dict(meta)
    m["bunit_data"] = "DN/s"
    m["model_type"] = "ImageModel"
    m["filename"] = str(meta.get("filename", "")).replace("_uncal", "_rate")
    return DataModel("rate", {"data": data.astype(np.float32), "dq": dq.astype(np.uint32),
                              "err": np.sqrt(vp + vr).astype(np.float32),
                              "var_poisson": vp.astype(np.float32),
                              "var_rnoise": vr.astype(np.float32)}, m)


def _refpix_mask(instrument: str, sub: ro.Subarray) -> np.ndarray:
    ys = np.arange(sub.ystart - 1, sub.ystart - 1 + sub.ysize)[:, None]
    xs = np.arange(sub.xstart - 1, sub.xstart - 1 + sub.xsize)[None, :]
    if instrument == "MIRI":
        return np.broadcast_to((xs < 4) | (xs >= 1028), (sub.ysize, sub.xsize))
    return (ys < 4) | (ys >= 2044) | (xs < 4) | (xs >= 2044)


def simulate_spec_program(spec: SpecProgramSpec, seed: int = 0, level: str = "rate"
                          ) -> SpecProgram:
    """Simulate every exposure of a spectroscopic program, with its truth and references."""
    if level not in ("rate", "uncal"):
        raise SpecProgramError(f"level must be 'rate' or 'uncal', got {level!r}")
    inst = spec.instrument.upper()
    if inst not in ("NIRSPEC", "MIRI"):
        raise SpecProgramError(f"spectroscopy is simulated for NIRSPEC and MIRI, not {inst}")
    det_flat = detector_flats(spec, seed)
    flats = R.NirspecFlats(seed, det_flat) if inst == "NIRSPEC" else None
    lrs_par = None
    if inst == "MIRI":
        specwcs = R.lrs_specwcs(distortion=_miri_distortion())
        lrs_spec = _specwcs_content(specwcs)
    exposures = []
    cache: dict = {}
    msa_meta: dict[int, dict] = {}
    for e in spec.exposures:
        msa_meta.setdefault(e.position, dict(pointing(spec, e)))
    shutter_info, source_info = _msa_tables(spec, msa_meta) if spec.msa_plan else ([], [])
    for e in spec.exposures:
        meta = exposure_meta(spec, e)
        sub = _window(spec, e)
        tim = ro.timing(inst, e.readpatt, sub, e.ngroups, e.nints)
        ds = rf.detector_spec(e.detector)
        gain = ds.gain
        if inst == "NIRSPEC":
            light, sky, truths, aps, ftruth = _render_nirspec(spec, e, meta, flats, gain,
                                                              cache)
        else:
            lrs_par = L.lrs_params(lrs_spec, _miri_distortion(), e.exp_type,
                                   {"xstart": sub.xstart, "ystart": sub.ystart},
                                   (sub.ysize, sub.xsize))
            light, sky, truths, aps, ftruth = _render_lrs(spec, e, meta, lrs_par, gain,
                                                          det_flat.get("MIRIMAGE"), seed)
        if e.exp_type == "NRS_MSASPEC" and spec.msa_plan:  # the whole file, every position
            meta["msa.shutter_info"] = shutter_info
            meta["msa.source_info"] = source_info
        refpix = _refpix_mask(inst, sub)
        light = np.where(refpix, 0.0, light)
        sky = np.where(refpix, 0.0, sky)
        rng = _seed(seed, "rate", e.observation, e.visit, e.exposure, e.detector)
        rate = _rate_product(light, meta, ds.read_noise, gain, tim, rng, spec.noise, refpix)
        truth = SpecTruth(str(meta.get("filename", "")), light.astype(np.float32),
                          sky.astype(np.float32), tuple(truths), tuple(aps), gain,
                          tim.exposure_time, ftruth)
        model, s1 = rate, None
        if level == "uncal":
            model, s1 = _uncal(spec, e, meta, light, sub, tim, seed)
        exposures.append(SpecExposure(e, model, truth, rate if level == "uncal" else None, s1))
    refs, by_exp = spec_references(spec, seed, exposures, det_flat)
    return SpecProgram(spec, seed, tuple(exposures), tuple(refs), by_exp)


def detector_flats(spec: SpecProgramSpec, seed: int) -> dict[str, tuple[np.ndarray, int, int]]:
    """Per detector the pixel flat (``references.detector_properties``) over the union of the
    exposures' windows and the reference window, with its 0-based origin."""
    out = {}
    for det in sorted({e.detector.upper() for e in spec.exposures}):
        wins = [_window(spec, e) for e in spec.exposures if e.detector.upper() == det]
        boxes = [(w.xstart, w.ystart, w.xsize, w.ysize) for w in wins]
        if spec.ref_window is not None and spec.instrument == "NIRSPEC":
            boxes.append(spec.ref_window)
        x0 = min(b[0] for b in boxes)
        y0 = min(b[1] for b in boxes)
        x1 = max(b[0] + b[2] for b in boxes)
        y1 = max(b[1] + b[3] for b in boxes)
        win = ro.custom_subarray(x0, y0, x1 - x0, y1 - y0, 1, "GENERIC")
        out[det] = (rf.detector_properties(det, seed, win).flat, x0 - 1, y0 - 1)
    return out


def _specwcs_content(specwcs: DataModel) -> dict[str, Any]:
    return L.specwcs_content(specwcs)


def _uncal(spec: SpecProgramSpec, e: SpecExposureSpec, meta: Mapping[str, Any],
           light_dn: np.ndarray, sub: ro.Subarray, tim: ro.Timing, seed: int
           ) -> tuple[DataModel, Mapping[str, DataModel] | None]:
    """The level-1b ramp of an exposure through the stage-1 detector simulator (electrons =
    DN/s x the pixel's gain; the light already holds the true flats, the D-flat's pixel part
    being the detector's own pixel flat) and its detector1 references (NIRSpec:
    ``sim.nirspec.trad_refs``; MIRI: ``sim.references`` and ``sim.miri``'s dark, reset, rscd,
    emicorr)."""
    props = rf.detector_properties(e.detector, seed, sub)
    rng = _seed(seed, "ramp", e.observation, e.visit, e.exposure, e.detector)
    refs = None
    if spec.instrument == "NIRSPEC":
        from transforms.sim.detector import Effects
        from transforms.sim.nirspec import synthesize_nirspec, trad_refs

        light_e = np.where(props.refpix, 0.0, light_dn * props.gain)
        data, _ = synthesize_nirspec(light_e, props, sub, tim, rng, Effects(), e.detector)
        rprops = (rf.detector_properties(e.detector, seed)
                  if spec.full_frame_refs and sub.name != "FULL" else props)
        refs = trad_refs(rprops, tim, sub, e.exp_type, tim.nframes_per_integration + 2)
    else:
        from transforms.sim import miri as sim_miri
        from transforms.sim.detector import Effects

        light_e = np.where(props.refpix, 0.0, light_dn * props.gain)
        miri = sim_miri.MiriEffects()
        data, _ = sim_miri.synthesize(light_e.astype(np.float32), props, sub, tim, rng,
                                      Effects(), miri, readpatt=e.readpatt, seed=seed)
        rp = ro.pattern("MIRI", e.readpatt).name
        refs = {rt: fn(props, R.USEAFTER) for rt, fn in (
            ("mask", rf.mask_ref), ("saturation", rf.saturation_ref),
            ("linearity", rf.linearity_ref), ("gain", rf.gain_ref),
            ("readnoise", rf.readnoise_ref))}
        refs["dark"] = sim_miri.dark_ref(props, R.USEAFTER, tim, rp, e.ngroups, seed, miri)
        refs["reset"] = sim_miri.reset_ref(props, R.USEAFTER, rp, e.ngroups, seed, miri)
        refs["rscd"] = sim_miri.rscd_ref(R.USEAFTER, "MIRIMAGE")
        refs["emicorr"] = sim_miri.emicorr_ref(R.USEAFTER)
    m = dict(meta)
    m["bunit_data"] = "DN"
    return DataModel("uncal", {"data": data}, m), refs


# --------------------------------------------------------------------------------------------
# References as CRDS cache entries
# --------------------------------------------------------------------------------------------

def spec_references(spec: SpecProgramSpec, seed: int, exposures: Sequence[SpecExposure],
                    det_flat: Mapping[str, np.ndarray]
                    ) -> tuple[list[RefFile], dict[str, dict[str, DataModel]]]:
    """The spec2 references of a program (one file per distinct selection) and, per
    exposure, the models CRDS selects for it."""
    out: dict[tuple, RefFile] = {}
    counters: dict[tuple[str, str], int] = {}
    by_exp: dict[str, dict[str, DataModel]] = {}

    def add(key: tuple, reftype: str, inst: str, make, match: Mapping[str, str]) -> RefFile:
        if key in out:
            return out[key]
        model = make()
        if model is None:
            r = RefFile(reftype, inst, "N/A", None, dict(match), R.USEAFTER)
        else:
            counters[(inst, reftype)] = counters.get((inst, reftype), 0) + 1
            ext = R.file_suffix(model)
            fname = f"jwst_{inst.lower()}_{reftype}_{counters[(inst, reftype)]:04d}{ext}"
            r = RefFile(reftype, inst, fname, model, dict(match), R.USEAFTER)
        out[key] = r
        return r

    inst = spec.instrument.upper()
    for ex in exposures:
        e = ex.spec
        sub = _window(spec, e)
        sel: dict[str, RefFile] = {}
        if inst == "NIRSPEC":
            det, et = e.detector.upper(), e.exp_type
            win = spec.ref_window or (sub.xstart, sub.ystart, sub.xsize, sub.ysize)
            flats = R.NirspecFlats(seed, det_flat)
            sel["disperser"] = add(("disperser", e.grating), "disperser", inst,
                                   lambda: R.nirspec_disperser(e.grating),
                                   {"instrument.grating": e.grating,
                                    "exposure.type": "NRS_FIXEDSLIT|NRS_MSASPEC"})
            sel["msa"] = add(("msa",), "msa", inst, R.nirspec_msa,
                             {"exposure.type": "NRS_FIXEDSLIT|NRS_MSASPEC"})
            sel["wavelengthrange"] = add(("wavelengthrange",), "wavelengthrange", inst,
                                         R.nirspec_wavelengthrange,
                                         {"exposure.type": "NRS_FIXEDSLIT|NRS_MSASPEC"})
            sel["distortion"] = add(("distortion", det), "distortion", inst, lambda: None,
                                    {"instrument.detector": det})
            sel["flat"] = add(("flat", det, e.grating, e.filter, et), "flat", inst,
                              lambda: None, {"instrument.detector": det,
                                             "instrument.filter": e.filter,
                                             "instrument.grating": e.grating,
                                             "exposure.type": et})
            sel["fflat"] = add(("fflat", e.grating, e.filter, et), "fflat", inst,
                               lambda: R.nirspec_fflat(flats, e.grating, e.filter, et),
                               {"instrument.grating": e.grating, "instrument.filter": e.filter,
                                "exposure.type": et})
            sel["sflat"] = add(("sflat", det, e.grating, e.filter, et, win), "sflat", inst,
                               lambda: R.nirspec_sflat(flats, det, e.grating, e.filter, et,
                                                       win),
                               {"instrument.detector": det, "instrument.filter": e.filter,
                                "instrument.grating": e.grating, "exposure.type": et})
            sel["dflat"] = add(("dflat", det, win), "dflat", inst,
                               lambda: R.nirspec_dflat(flats, det, win),
                               {"instrument.detector": det})
            sel["pathloss"] = add(("pathloss", et), "pathloss", inst,
                                  lambda: R.nirspec_pathloss(et), {"exposure.type": et})
            configs = sorted({(x.spec.grating, x.spec.filter) for x in exposures})
            sel["photom"] = add(("photom", et), "photom", inst,
                                lambda: R.nirspec_photom(et, configs,
                                                         rf.detector_spec(det).gain),
                                {"exposure.type": et})
            sel["area"] = add(("area", det, e.filter, et), "area", inst,
                              lambda: R.nirspec_area(et),
                              {"instrument.detector": det, "instrument.filter": e.filter,
                               "exposure.type": et})
            sel["wavecorr"] = add(("wavecorr",), "wavecorr", inst, R.nirspec_wavecorr,
                                  {"exposure.type": "NRS_FIXEDSLIT|NRS_MSASPEC"})
            sel["extract1d"] = add(("extract1d", et), "extract1d", inst,
                                   lambda: R.extract1d(et), {"exposure.type": et})
            if et == "NRS_MSASPEC":
                sel["barshadow"] = add(("barshadow",), "barshadow", inst, R.nirspec_barshadow,
                                       {"exposure.type": et})
                sel["msaoper"] = add(("msaoper",), "msaoper", inst,
                                     lambda: R.nirspec_msaoper(spec.failed_open,
                                                               spec.failed_closed),
                                     {"exposure.type": et})
            else:  # the MSA's references do not apply to fixed slits (CRDS answers N/A)
                for rt in ("barshadow", "msaoper"):
                    sel[rt] = add((rt, et), rt, inst, lambda: None, {"exposure.type": et})
        else:
            dist = _miri_distortion_ref()
            params = L.lrs_params(_specwcs_content(R.lrs_specwcs()), _miri_distortion(),
                                  e.exp_type, {"xstart": sub.xstart, "ystart": sub.ystart},
                                  (sub.ysize, sub.xsize))
            ds = rf.detector_spec("MIRIMAGE")
            pv = rf.photom_values("MIRI", "F770W", ds)
            sel["specwcs"] = add(("specwcs",), "specwcs", inst,
                                 lambda: R.lrs_specwcs(distortion=_miri_distortion()),
                                 {"instrument.detector": "MIRIMAGE",
                                  "subarray.name": "FULL|SLITLESSPRISM"})
            sel["distortion"] = add(("distortion",), "distortion", inst,
                                    lambda: dist.replace(meta={
                                        "exposure.type": "MIR_IMAGE|MIR_LRS-FIXEDSLIT"}),
                                    {"instrument.detector": "MIRIMAGE"})
            sel["flat"] = add(("flat", sub.name), "flat", inst,
                              lambda: _lrs_flat_ref(seed, sub, det_flat.get("MIRIMAGE")),
                              {"instrument.detector": "MIRIMAGE", "instrument.filter": L.FILTER,
                               "subarray.name": sub.name})
            sel["pathloss"] = add(("pathloss",), "pathloss", inst,
                                  lambda: R.lrs_pathloss(params), {"exposure.type": e.exp_type})
            sel["photom"] = add(("photom",), "photom", inst,
                                lambda: R.lrs_photom(params, ds.gain, pv["pixar_sr"]),
                                {"instrument.detector": "MIRIMAGE",
                                 "instrument.filter": L.FILTER})
            sel["area"] = add(("area",), "area", inst,
                              lambda: _lrs_area_ref(sub, pv), {"instrument.detector": "MIRIMAGE",
                                                               "instrument.filter": L.FILTER})
            sel["extract1d"] = add(("extract1d",), "extract1d", inst,
                                   lambda: R.extract1d(e.exp_type),
                                   {"exposure.type": e.exp_type})
        by_exp[ex.truth.name] = {k: r.model for k, r in sel.items() if r.model is not None}
    return list(out.values()), by_exp


def _lrs_flat_ref(seed: int, sub: ro.Subarray, detector_flat: np.ndarray | None) -> DataModel:
    y, x = np.mgrid[sub.ystart - 1:sub.ystart - 1 + sub.ysize,
                    sub.xstart - 1:sub.xstart - 1 + sub.xsize]
    data = R.lrs_flat(seed, x, y, detector_flat).astype(np.float32)
    return DataModel("ref.flat", {"data": data, "dq": np.zeros(data.shape, np.uint32),
                                  "err": np.full(data.shape, 0.002, np.float32)},
                     {"reftype": "FLAT", "telescope": "JWST", "instrument.name": "MIRI",
                      "instrument.detector": "MIRIMAGE", "instrument.filter": L.FILTER,
                      "exposure.type": "MIR_LRS-FIXEDSLIT", "useafter": R.USEAFTER,
                      "pedigree": R.PEDIGREE, "author": R.AUTHOR,
                      "description": "MIRI LRS flat (simulated)", "subarray.name": sub.name,
                      "subarray.xstart": sub.xstart, "subarray.ystart": sub.ystart,
                      "subarray.xsize": sub.xsize, "subarray.ysize": sub.ysize})


def _lrs_area_ref(sub: ro.Subarray, pv: Mapping[str, float]) -> DataModel:
    data = np.ones((sub.ysize, sub.xsize), np.float32)
    return DataModel("ref.area", {"data": data},
                     {"reftype": "AREA", "telescope": "JWST", "instrument.name": "MIRI",
                      "instrument.detector": "MIRIMAGE", "instrument.filter": L.FILTER,
                      "useafter": R.USEAFTER, "pedigree": R.PEDIGREE, "author": R.AUTHOR,
                      "description": "MIRI LRS pixel area (simulated)",
                      "photometry.pixelarea_steradians": float(pv["pixar_sr"]),
                      "photometry.pixelarea_arcsecsq": float(pv["pixar_a2"]),
                      "subarray.xstart": sub.xstart, "subarray.ystart": sub.ystart,
                      "subarray.xsize": sub.xsize, "subarray.ysize": sub.ysize})


# --------------------------------------------------------------------------------------------
# Programs
# --------------------------------------------------------------------------------------------

def demo_spectrum(amplitude_ujy: float = 300.0, lam_ref: float = 1.4, z: float = 0.0,
                  instrument: str = "NIRSPEC") -> SP.Spectrum:
    """A continuum with two emission lines and an absorption line inside the band."""
    if instrument == "MIRI":
        lines = (SP.Line(7.0, 1.5, 1500.0), SP.Line(9.8, 0.4, 4000.0, "absorption"),
                 SP.Line(11.3, 1.0, 2000.0))
    else:
        lines = (SP.Line(1.282, 2.0, 200.0), SP.Line(1.094, 1.0, 200.0),
                 SP.Line(1.6, 0.5, 300.0, "absorption"))
    return SP.Spectrum(amplitude_ujy, lam_ref, -1.0, lines, z)


def fs_program(grating: str = "G140M", filt: str = "F100LP", slit: str = "S200A1",
               subarray: str | None = None, nod: str | None = "2-POINT-NOD",
               source: SP.SpecSource | None = None, detector: str = "NRS1",
               ngroups: int = 40, readpatt: str = "NRS", **overrides: Any) -> SpecProgramSpec:
    """A NIRSpec fixed-slit program: one target in ``slit`` (nodded along it: 2-POINT-NOD at
    +-0.8", 3-POINT-NOD at -0.9/0/+0.9"), the sky in every slit."""
    ra, dec = 53.1625, -27.7914
    src = source or SP.SpecSource(1, "target", ra, dec, demo_spectrum())
    sub = subarray or {"S200A1": "SUBS200A1", "S200A2": "SUBS200A2", "S400A1": "SUBS400A1",
                       "S200B1": "SUBS200B1", "S1600A1": "SUB2048"}[slit.upper()]
    offs = {None: [0.0], "NONE": [0.0], "2-POINT-NOD": [-0.8, 0.8],
            "3-POINT-NOD": [-0.9, 0.0, 0.9]}[nod]
    exps = tuple(SpecExposureSpec(
        "NRS_FIXEDSLIT", detector, f"2024-03-10T04:{10 * i:02d}:00", grating, filt, sub, slit,
        readpatt, ngroups, 1, 1, 1, i + 1, (0.0, dy), nod or "NONE", i + 1, len(offs))
        for i, dy in enumerate(offs))
    spec = SpecProgramSpec("fs", 1234, "NIRSPEC", ra, dec, 30.0, (src,), exps)
    return replace(spec, **overrides)


def mos_program(grating: str = "G140M", filt: str = "F100LP", nsources: int = 3,
                nod: bool = True, imprint: bool = True, ngroups: int = 30,
                readpatt: str = "NRS", **overrides: Any) -> SpecProgramSpec:
    """A NIRSpec MOS program: ``nsources`` sources (a point source with lines, an extended
    galaxy, more point sources) each in the middle shutter of a 3-shutter slitlet of quadrant
    3 (their spectra land in rows ~1150-1400 of NRS1), a background-only slitlet, a failed-open
    shutter; 3-SHUTTER-SLITLET nods (offset -pitch, 0, +pitch along the slit), each with its
    leakcal (imprint) exposure."""
    g = N.msa_geometry()
    ra0, dec0 = 53.1625, -27.7914
    base = SpecProgramSpec("mos", 1234, "NIRSPEC", ra0, dec0, 30.0, (), ())
    e0 = SpecExposureSpec("NRS_MSASPEC", "NRS1", "2024-03-10T04:00:00", grating, filt, "FULL",
                          None, readpatt, ngroups)
    meta0 = pointing(base, e0)
    q = 3
    srcs, plan = [], []
    rows = [40, 95, 150, 210, 260][:nsources]
    cols = [6, 14, 22, 30, 38][:nsources]
    rng = np.random.default_rng(7)
    for i, (r, c) in enumerate(zip(rows, cols)):
        xs, ys = N.shutter_center(g, q, r, c)
        dx, dy = rng.uniform(-0.03, 0.03), rng.uniform(-0.06, 0.06)
        ra, dec = msa_to_sky(meta0, xs + dx, ys + dy)
        kind, sig = ("extended", 0.15) if i == 1 else ("point", 0.0)
        z = 0.05 * i
        srcs.append(SP.SpecSource(10 + i, f"src{10 + i}", float(ra), float(dec),
                                  demo_spectrum(400.0 - 80 * i, 1.4, z), kind, sig,
                                  stellarity=1.0 if kind == "point" else 0.1))
        plan.append(Slitlet(i + 1, q, r, (c - 1, c, c + 1), 10 + i))
    plan.append(Slitlet(nsources + 1, q, 120, (45, 46, 47), 0))  # background only
    pitch = g["pitch_y"]
    offs = [-pitch, 0.0, pitch] if nod else [0.0]
    exps = []
    for i, dy in enumerate(offs):
        n = len(offs)
        common = dict(grating=grating, filter=filt, subarray="FULL", fixed_slit=None,
                      readpatt=readpatt, ngroups=ngroups, nints=1, observation=1, visit=1,
                      offset=(0.0, dy), pattern="3-SHUTTER-SLITLET" if nod else "NONE",
                      position=i + 1, total=n)
        exps.append(SpecExposureSpec("NRS_MSASPEC", "NRS1", f"2024-03-10T05:{20 * i:02d}:00",
                                     exposure=2 * i + 1, **common))
        if imprint:
            exps.append(SpecExposureSpec("NRS_MSASPEC", "NRS1",
                                         f"2024-03-10T05:{20 * i + 10:02d}:00",
                                         exposure=2 * i + 2, imprint=True, **common))
    spec = SpecProgramSpec("mos", 1234, "NIRSPEC", ra0, dec0, 30.0, tuple(srcs), tuple(exps),
                           tuple(plan), failed_open=((q, 330, 60),),
                           ref_window=(1, 1001, 2048, 600))
    return replace(spec, **overrides)


def lrs_program(source: SP.SpecSource | None = None, nod: bool = True, ngroups: int = 40,
                **overrides: Any) -> SpecProgramSpec:
    """A MIRI LRS fixed-slit program: a point source nodded along the slit (ALONG-SLIT-NOD at
    x_offset -/+0.94"), the thermal sky."""
    ra, dec = 53.1625, -27.7914
    src = source or SP.SpecSource(1, "target", ra, dec,
                                  demo_spectrum(3000.0, 7.5, 0.0, "MIRI"))
    offs = list(L.NOD_OFFSETS) if nod else [0.0]
    exps = tuple(SpecExposureSpec(
        "MIR_LRS-FIXEDSLIT", "MIRIMAGE", f"2024-03-10T06:{10 * i:02d}:00", "N/A", L.FILTER,
        "FULL", None, "FASTR1", ngroups, 1, 1, 1, i + 1, (dx, 0.0),
        "ALONG-SLIT-NOD" if nod else "NONE", i + 1, len(offs)) for i, dx in enumerate(offs))
    spec = SpecProgramSpec("lrs", 1234, "MIRI", ra, dec, 30.0, (src,), exps)
    return replace(spec, **overrides)


PROGRAMS = {"fs": fs_program, "mos": mos_program, "lrs": lrs_program}
