"""assign_wcs 2.0: version 1.0 for imaging, the spectral WCS for NIRSpec FS/MOS and MIRI LRS.

Imaging EXP_TYPEs go to ``transforms.image2.assign_wcs`` (1.0) unchanged, so their products
are bit-identical. For spectra the gwcs is not JSON, so the step records the parameters from
which ``transforms.instruments.slit_wcs`` rebuilds it (the ``disperser``/``msa``/
``wavelengthrange`` or ``specwcs``/``distortion`` reference content, the pointing, the slit):

- **NIRSpec** (NRS_FIXEDSLIT, NRS_MSASPEC): the open slits, as jwst's ``get_open_slits``:
  fixed slits by SUBARRAY (SUBS200A1 -> S200A1, SUB2048/SUB512/SUB1024A/B -> S1600A1,
  ALLSLITS/FULL -> all five) with the build 10.0 SOURCEID rule (the primary slit FXD_SLIT gets
  SOURCEID 1, a secondary slit ``10 x primary number + its number``); MOS slitlets from the MSA
  metadata (``msa.shutter_info`` rows of MSAMETID and dither position PATT_NUM), the source
  shutter (primary) defining the slit frame, background slitlets their middle shutter, source
  positions ``estimated_source_in_shutter - 0.5``, the slit-frame extent
  ``slit_y_high + 0.5 + (jmax - j) 1.15`` (jwst's, with build 10.0's margin). Slits whose
  spectrum misses the detector window are dropped; none left is an error, as jwst.
  Meta: ``wcs.model = calops.nirspec_slits``, ``wcs.slits`` = per slit ``{name, geometry,
  params, bbox}`` (params: ``instruments.nirspec.slits.slit_params`` over the whole window;
  bbox: the slit's cutout in the window, what extract_2d cuts), ``wcsinfo.dispersion_direction
  = 1``, ``wcsinfo.spectral_order``, ``wcsinfo.s_region`` (the first slit's footprint).
- **MIRI LRS fixed slit**: ``wcs.*`` = ``instruments.miri.lrs.lrs_params`` (flat keys), the
  ``wavelength`` array (NaN off the slit), ``wcsinfo.dispersion_direction = 2``,
  ``wcsinfo.s_region`` (the slit's footprint) and build 10.0's ``dither.dithered_ra/dec``: the
  sky position of the nod (XOFFSET/YOFFSET in the MIRIM_SLIT ideal frame).

Kind becomes ``cal`` as in version 1.0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from transforms.image2 import assign_wcs as v10
from transforms.instruments.miri import lrs as L
from transforms.instruments.nirspec import slits as N
from transforms.model import DataModel
from transforms.registry import register
from transforms.spec2._common import (MIRI_LRS_TYPES, NIRSPEC_SLIT_TYPES, Spec2Error,
                                      exp_type, need_ref)

NAME, VERSION = "assign_wcs", "2.0"
AssignWcsParams = v10.AssignWcsParams
POINTING_KEYS = ("wcsinfo.v2_ref", "wcsinfo.v3_ref", "wcsinfo.roll_ref", "wcsinfo.ra_ref",
                 "wcsinfo.dec_ref", "velocity_aberration.scale_factor")
FS_BY_SUBARRAY = {"SUBS200A1": ("S200A1",), "SUBS200A2": ("S200A2",),
                  "SUBS400A1": ("S400A1",), "SUBS200B1": ("S200B1",),
                  "SUB2048": ("S1600A1",), "SUB512": ("S1600A1",), "SUB512S": ("S1600A1",),
                  "SUB1024A": ("S1600A1",), "SUB1024B": ("S1600A1",)}
ALL_FS = ("S200A1", "S200A2", "S400A1", "S1600A1", "S200B1")


def pointing_of(meta: Mapping[str, Any]) -> dict[str, float]:
    missing = [k for k in POINTING_KEYS[:5] if meta.get(k) is None]
    if missing:
        raise Spec2Error(f"{NAME}: the exposure lacks its pointing ({', '.join(missing)})")
    return {k: float(meta[k]) for k in POINTING_KEYS if meta.get(k) is not None}


def fs_source_id(slit: str, primary: str) -> int:
    """Build 10.0: the primary slit has SOURCEID 1; a secondary slit the two-digit
    ``10 x (primary slit number) + (its number)``."""
    if str(slit).upper() == str(primary).upper():
        return 1
    return 10 * N.FIXED_SLIT_NUMS.get(str(primary).upper(), 0) + N.FIXED_SLIT_NUMS[slit]


def open_fixed_slits(meta: Mapping[str, Any], geometry: Mapping[str, Any],
                     y_range: tuple[float, float]) -> list[N.SlitGeometry]:
    sub = str(meta.get("subarray.name") or "FULL").upper()
    primary = str(meta.get("instrument.fixed_slit") or "NONE").upper()
    names = FS_BY_SUBARRAY.get(sub, ALL_FS)
    return [N.fs_slit(geometry, n, fs_source_id(n, primary), y_range) for n in names]


def _nan05(v) -> float:
    return 0.5 if v is None or not np.isfinite(float(v)) else float(v)


def open_msa_slitlets(meta: Mapping[str, Any], geometry: Mapping[str, Any],
                      y_range: tuple[float, float]) -> list[N.SlitGeometry]:
    """MOS slitlets of the exposure's MSA metadata at its dither position (jwst's rules)."""
    rows = meta.get("msa.shutter_info")
    if not isinstance(rows, (list, tuple)):
        raise Spec2Error(f"{NAME}: an NRS_MSASPEC exposure needs its MSA metadata "
                         f"(msa.shutter_info, from MSAMETFL "
                         f"{meta.get('instrument.msa_metadata_file')})")
    srcs = {int(s["source_id"]): s for s in meta.get("msa.source_info") or []}
    mid = int(meta.get("instrument.msa_metadata_id") or 1)
    pos = int(meta.get("dither.position_number") or 1)
    prog = str(meta.get("observation.program_number") or "")
    sets: dict[int, list[Mapping[str, Any]]] = {}
    for r in rows:
        if (int(r.get("msa_metadata_id", mid)) != mid
                or int(r.get("dither_point_index", pos)) != pos):
            continue
        if str(r.get("fixed_slit") or "NONE").upper() not in ("NONE", ""):
            continue  # fixed slits in an MSA file are not MOS slitlets
        sets.setdefault(int(r["slitlet_id"]), []).append(r)
    out = []
    for sid, srows in sets.items():
        cols = [int(r["shutter_column"]) for r in srows]
        prim = [r for r in srows if str(r.get("primary_source", "N")).upper() == "Y"]
        q, row = int(srows[0]["shutter_quadrant"]), int(srows[0]["shutter_row"])
        if len(prim) > 1:
            raise Spec2Error(f"{NAME}: slitlet {sid} has more than one primary shutter")
        if prim:
            p = prim[0]
            j = int(p["shutter_column"])
            source_id = int(p["source_id"])
            s = srcs.get(source_id)
            extra = dict(source_xpos=_nan05(p.get("estimated_source_in_shutter_x")) - 0.5,
                         source_ypos=_nan05(p.get("estimated_source_in_shutter_y")) - 0.5)
            if s is not None:
                extra.update(source_name=str(s.get("source_name")),
                             source_alias=str(s.get("alias")),
                             stellarity=float(s.get("stellarity") or 0.0),
                             source_ra=float(s.get("ra") or 0.0),
                             source_dec=float(s.get("dec") or 0.0))
            else:
                extra.update(source_name=f"{prog}_VRT{sid}", source_alias=f"VRT{sid}")
        else:  # background only: jwst gives it the middle shutter and source_id = slitlet id
            j = min(cols) + (max(cols) - min(cols)) // 2
            source_id = sid
            extra = dict(source_name=f"{prog}_BKG{sid}", source_alias=f"BKG{sid}",
                         stellarity=0.0)
        sl = N.mos_slitlet(geometry, sid, q, row, cols, j, source_id, y_range, **extra)
        out.append(sl)
    return out


def s_region_of(params: Mapping[str, Any], ymin: float, ymax: float) -> str:
    """The sky footprint of a NIRSpec slit (its corners at the mid wavelength)."""
    from transforms.wcs import pointing_model, va_model

    xs = np.array([-0.5, 0.5, 0.5, -0.5])
    ys = np.array([ymin, ymin, ymax, ymax])
    X = params["xc"] + params["w"] * xs
    Y = params["yc"] + params["h"] * ys
    v2, v3 = N.msa_to_v2v3(params, X, Y)
    ra, dec = (va_model(params["pointing"]) | pointing_model(params["pointing"]))(v2, v3)
    return "POLYGON ICRS " + " ".join(f"{a:.9f} {d:.9f}" for a, d in zip(ra, dec))


def nirspec(model: DataModel, refs: Mapping[str, DataModel], params: AssignWcsParams
            ) -> DataModel:
    et = exp_type(model)
    disperser = N.disperser_from_ref(need_ref(refs, "disperser", NAME))
    geometry = N.geometry_from_ref(need_ref(refs, "msa", NAME))
    grating, filt = model.require("instrument.grating", "instrument.filter")
    lrange = N.range_from_ref(need_ref(refs, "wavelengthrange", NAME), grating, filt)
    order = (refs["wavelengthrange"].get("order") or [-1])[0]
    det = str(model.require("instrument.detector")[0]).upper()
    y_range = (float(params.slit_y_low), float(params.slit_y_high))
    if et == "NRS_FIXEDSLIT":
        slits = open_fixed_slits(model.meta, geometry, y_range)
    else:
        slits = open_msa_slitlets(model.meta, geometry, y_range)
    ny, nx = np.shape(model["data"])[-2:]
    sx = int(model.get("subarray.xstart") or 1)
    sy = int(model.get("subarray.ystart") or 1)
    window = (sx, sy, nx, ny)
    pointing = pointing_of(model.meta)
    records = []
    for sl in slits:
        box = N.slit_box(sl, disperser, grating, filt, det, window, pad=0)
        if box is None:
            continue
        p = N.slit_params(sl, disperser, geometry, grating, filt, det, (sx - 1, sy - 1),
                          (ny, nx), pointing)
        p["lrange"] = [float(lrange[0]), float(lrange[1])]
        records.append({"name": sl.name, "geometry": dataclasses.asdict(sl), "params": p,
                        "bbox": [int(v) for v in box]})
    if not records:
        raise Spec2Error(f"{NAME}: no open slit of this exposure has data on {det} "
                         f"({et}, {grating}/{filt}); jwst stops here too")
    first = records[0]
    meta = {"wcs.model": "calops.nirspec_slits", "wcs.slits": records,
            "wcsinfo.dispersion_direction": 1, "wcsinfo.spectral_order": int(order),
            "wcsinfo.s_region": s_region_of(first["params"], first["geometry"]["ymin"],
                                            first["geometry"]["ymax"]),
            "cal_step.assign_wcs": "COMPLETE"}
    return model.replace(kind="cal" if model.kind == "rate" else model.kind, meta=meta)


def miri_lrs(model: DataModel, refs: Mapping[str, DataModel], params: AssignWcsParams
             ) -> DataModel:
    from transforms.wcs import distortion_params

    spec = L.specwcs_content(need_ref(refs, "specwcs", NAME))
    dist = distortion_params(need_ref(refs, "distortion", NAME))
    ny, nx = np.shape(model["data"])[-2:]
    sub = {"xstart": model.get("subarray.xstart") or 1,
           "ystart": model.get("subarray.ystart") or 1}
    p = L.lrs_params(spec, dist, exp_type(model), sub, (ny, nx), pointing_of(model.meta))
    wl = L.wavelength_array(p)
    ra, dec = L.dithered_position(model.meta)
    from transforms.wcs import pointing_model, va_model

    xs = np.array([-0.5, 0.5, 0.5, -0.5])
    ys = np.array([-0.5, -0.5, 0.5, 0.5])
    v2, v3 = L.slit_to_v2v3(p, xs, ys)
    sra, sdec = (va_model(model.meta) | pointing_model(model.meta))(v2, v3)
    meta = {f"wcs.{k}": v for k, v in p.items()}
    meta.update({"wcsinfo.dispersion_direction": 2, "dither.dithered_ra": ra,
                 "dither.dithered_dec": dec,
                 "wcsinfo.s_region": "POLYGON ICRS " + " ".join(
                     f"{a:.9f} {d:.9f}" for a, d in zip(sra, sdec)),
                 "cal_step.assign_wcs": "COMPLETE"})
    return model.replace(kind="cal" if model.kind == "rate" else model.kind,
                         arrays={"wavelength": wl}, meta=meta)


@register(NAME, VERSION, "spec2", AssignWcsParams, ("distortion",), keyword="S_WCS",
          optional_reftypes=("disperser", "msa", "wavelengthrange", "specwcs"))
def assign_wcs(model: DataModel, refs, params: AssignWcsParams) -> DataModel:
    """Imaging as version 1.0; NIRSpec FS/MOS and MIRI LRS: the spectral WCS parameters."""
    et = exp_type(model)
    if et in NIRSPEC_SLIT_TYPES:
        return nirspec(model, refs or {}, params)
    if et in MIRI_LRS_TYPES:
        return miri_lrs(model, refs or {}, params)
    if et.startswith(("NRS_", "MIR_LRS", "MIR_MRS", "NIS_SOSS", "NRC_WFSS", "NIS_WFSS")) \
            and et not in ("NRS_IMAGE", "NRS_MIMF"):
        raise Spec2Error(f"{NAME}: EXP_TYPE {et} has no spectral model in calops yet "
                         f"(NIRSpec FS/MOS and MIRI LRS fixed slit have)")
    return v10.assign_wcs(model, refs, params)


def slit_records(model: DataModel) -> list[dict[str, Any]]:
    """The open slits assign_wcs recorded (NIRSpec), or an error saying to run it."""
    recs = model.get("wcs.slits")
    if not isinstance(recs, Sequence) or model.get("wcs.model") != "calops.nirspec_slits":
        raise Spec2Error("the exposure has no NIRSpec slit WCS; run assign_wcs (2.0) first")
    return [dict(r) for r in recs]
