"""Golden product ids of the spec2 front-half steps: a silent change fails here (bump the step's
version). Each step is pinned on three small fixed inputs where it applies (NIRSpec FS, MOS,
MIRI LRS windows of the simulator's geometry, data and references built from integers), so the
id is a tuple. The slit WCS involves logarithms (none for gratings), sky trigonometry and, for
LRS, the distortion's fitted inverse, and background subtraction sums in SIMD order: every
step is pinned by its CANONICAL id (``golden_ids.Canon``: floats to 20 significant bits,
float32 arrays included), which a 0.1% change of one pixel still moves (test below).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

_HERE = str(Path(__file__).resolve().parents[1])
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from golden_ids import Canon, check, ids_of  # noqa: E402

from transforms.instruments.nirspec import slits as N  # noqa: E402
from transforms.model import DataModel  # noqa: E402
from transforms.sim import spec_refs as S  # noqa: E402
from transforms.spec2 import (assign_wcs_v2, barshadow, bkg_subtract, extract_2d,  # noqa: E402
                              flat_field_v2, imprint_subtract, msa_flagging, pathloss,
                              photom_v2, srctype, wavecorr)

PINNED = ("assign_wcs==2.0", "msa_flagging==1.0", "imprint_subtract==1.0",
          "bkg_subtract==1.0", "extract_2d==1.0", "srctype==1.0", "wavecorr==1.0",
          "flat_field==2.0", "pathloss==1.0", "barshadow==1.0", "photom==2.0")
CANON = Canon(bits=20, float32=True)
POINT = {"wcsinfo.v2_ref": 378.5, "wcsinfo.v3_ref": -428.25, "wcsinfo.roll_ref": 30.0,
         "wcsinfo.ra_ref": 53.125, "wcsinfo.dec_ref": -27.75, "wcsinfo.v3yangle": 138.5,
         "wcsinfo.vparity": -1}


def _ints(shape, seed, scale=16.0, lo=0, hi=400):
    return (np.random.default_rng(seed).integers(lo, hi, shape) / scale).astype(np.float32)


def _rate(meta, shape, seed):
    ny, nx = shape
    return DataModel("rate", {
        "data": _ints(shape, seed), "dq": np.zeros(shape, np.uint32),
        "err": np.full(shape, 0.25, np.float32), "var_poisson": np.full(shape, 1 / 32, np.float32),
        "var_rnoise": np.full(shape, 1 / 32, np.float32)}, {**POINT, **meta,
                                                             "subarray.xsize": nx,
                                                             "subarray.ysize": ny})


def _table_ref(reftype, mt, names, n, extra=None, window=None, planes=None, quad=False):
    lam = 0.5 + np.arange(n) * 0.125
    val = 1.0 + (np.arange(n) % 5) / 64.0
    arrays = {}
    pre = "flat_table"
    arrays[f"{pre}.slit_name"] = np.array(names)
    arrays[f"{pre}.nelem"] = np.full(len(names), n, np.int32)
    arrays[f"{pre}.wavelength"] = np.tile(lam, (len(names), 1)).astype(np.float32)
    arrays[f"{pre}.data"] = np.tile(val, (len(names), 1)).astype(np.float32)
    arrays[f"{pre}.error"] = np.full((len(names), n), 1 / 256, np.float32)
    if window is not None:
        x0, y0, nx, ny = window
        shape = (ny, nx) if planes is None else (len(planes), ny, nx)
        arrays["data"] = (1.0 + _ints(shape, 7, 1024.0, 0, 32)).astype(np.float32)
        arrays["dq"] = np.zeros((ny, nx), np.uint32)
        arrays["err"] = np.full((ny, nx), 1 / 512, np.float32)
        if planes is not None:
            arrays["wavelength.wavelength"] = np.array(planes, np.float32)
    meta = {"reftype": reftype.upper(), "model_type": mt, "instrument.name": "NIRSPEC",
            **(extra or {})}
    if window is not None:
        meta.update({"subarray.xstart": window[0], "subarray.ystart": window[1],
                     "subarray.xsize": window[2], "subarray.ysize": window[3]})
    return DataModel(f"ref.{reftype}", arrays, meta)


def _quad_fflat():
    arrays = {}
    for q in range(4):
        pre = f"quadrants.{q}"
        arrays[f"{pre}.data"] = np.full((2, 171, 365), 1.0 + q / 64.0, np.float32)
        arrays[f"{pre}.err"] = np.full((2, 171, 365), 1 / 256, np.float32)
        arrays[f"{pre}.dq"] = np.zeros((2, 171, 365), np.uint32)
        arrays[f"{pre}.wavelength.wavelength"] = np.array([0.5, 5.5], np.float32)
        lam = 0.5 + np.arange(48) * 0.125
        arrays[f"{pre}.flat_table.slit_name"] = np.array(["ANY"])
        arrays[f"{pre}.flat_table.nelem"] = np.array([48], np.int32)
        arrays[f"{pre}.flat_table.wavelength"] = lam[None].astype(np.float32)
        arrays[f"{pre}.flat_table.data"] = (1 + (np.arange(48) % 3) / 64)[None].astype(np.float32)
        arrays[f"{pre}.flat_table.error"] = np.full((1, 48), 1 / 256, np.float32)
    return DataModel("ref.fflat", arrays, {"model_type": "NirspecQuadFlatModel"})


def _pathloss(names, ys):
    arrays, meta = {}, {}
    for i, (name, nsh) in enumerate(names):
        pre = f"apertures.{i}"
        ny = len(ys[i])
        arrays[f"{pre}.pointsource_data"] = (0.5 + _ints((8, ny, 5), 9 + i, 256.0, 0, 64))
        arrays[f"{pre}.uniform_data"] = (0.75 + np.arange(8) / 256.0).astype(np.float32)
        meta.update({f"{pre}.name": name, f"{pre}.shutters": nsh,
                     f"{pre}.pointsource_wcs.crpix1": 1.0, f"{pre}.pointsource_wcs.crval1": -0.5,
                     f"{pre}.pointsource_wcs.cdelt1": 0.25, f"{pre}.pointsource_wcs.crpix2": 1.0,
                     f"{pre}.pointsource_wcs.crval2": float(ys[i][0]),
                     f"{pre}.pointsource_wcs.cdelt2": 0.25, f"{pre}.pointsource_wcs.crpix3": 1.0,
                     f"{pre}.pointsource_wcs.crval3": 0.5e-6,
                     f"{pre}.pointsource_wcs.cdelt3": 0.75e-6,
                     f"{pre}.uniform_wcs.crpix1": 1.0, f"{pre}.uniform_wcs.crval1": 0.5e-6,
                     f"{pre}.uniform_wcs.cdelt1": 0.75e-6})
    return DataModel("ref.pathloss", arrays, {"model_type": "PathlossModel", **meta})


def _photom(mt, rows, col="photmj"):
    n = 40
    lam = np.tile(0.5 + np.arange(n) * 0.375, (len(rows), 1)).astype(np.float32)
    arrays = {f"phot_table.{k}": np.array([r[k] for r in rows]) for k in rows[0]}
    arrays[f"phot_table.{col}"] = np.full(len(rows), 1 / 1024, np.float32)
    arrays["phot_table.nelem"] = np.full(len(rows), n, np.int16)
    arrays["phot_table.wavelength"] = lam
    arrays["phot_table.relresponse"] = np.tile(1 + (np.arange(n) % 4) / 32.0,
                                               (len(rows), 1)).astype(np.float32)
    return DataModel("ref.photom", arrays, {"model_type": mt,
                                            "photometry.pixelarea_steradians": 2.0 ** -40,
                                            "photometry.pixelarea_arcsecsq": 0.0123})


def _nirspec_refs(exp_type):
    refs = {"disperser": S.nirspec_disperser("G140M"), "msa": S.nirspec_msa(),
            "wavelengthrange": S.nirspec_wavelengthrange(), "wavecorr": S.nirspec_wavecorr(),
            "area": S.nirspec_area(exp_type)}
    return refs


def fs_case():
    win = (700, 1054, 96, 64)
    meta = {"instrument.name": "NIRSPEC", "instrument.detector": "NRS1",
            "instrument.grating": "G140M", "instrument.filter": "F100LP",
            "exposure.type": "NRS_FIXEDSLIT", "instrument.fixed_slit": "S200A1",
            "subarray.name": "SUBS200A1", "subarray.xstart": win[0],
            "subarray.ystart": win[1], "dither.x_offset": 0.0625, "dither.y_offset": -0.75,
            "dither.primary_type": "2-POINT-NOD", "dither.position_number": 1,
            "dither.total_points": 2, "target.source_type_apt": "POINT"}
    refs = _nirspec_refs("NRS_FIXEDSLIT")
    names = list(N.msa_geometry()["fixed_slits"])
    refs["fflat"] = _table_ref("fflat", "NirspecFlatModel", names, 48)
    refs["sflat"] = _table_ref("sflat", "NirspecFlatModel", names, 48, window=win)
    refs["dflat"] = _table_ref("dflat", "NirspecFlatModel", ["ANY"], 48, window=win,
                               planes=[0.5, 5.5])
    refs["pathloss"] = _pathloss([(n, 1) for n in names], [np.arange(5) * 0.25 - 0.5] * 5)
    refs["photom"] = _photom("NrsFsPhotomModel", [{"filter": "F100LP", "grating": "G140M",
                                                   "slit": n} for n in names])
    return _rate(meta, (win[3], win[2]), 1), _rate(meta, (win[3], win[2]), 2), refs


def mos_case():
    g = N.msa_geometry()
    d = N.disperser_params("G140M")
    sl = N.mos_slitlet(g, 1, 3, 40, [5, 6, 7], 6)
    bx = N.slit_box(sl, d, "G140M", "F100LP", "NRS1", (1, 1, 2048, 2048))
    win = (bx[0] + 600, bx[1] + 1 - 4, 96, bx[3] + 8)
    rows = [{"slitlet_id": 1, "msa_metadata_id": 1, "shutter_quadrant": 3,
             "shutter_row": 40, "shutter_column": c, "source_id": 10,
             "background": "N" if c == 6 else "Y", "shutter_state": "OPEN",
             "estimated_source_in_shutter_x": 0.5625 if c == 6 else None,
             "estimated_source_in_shutter_y": 0.375 if c == 6 else None,
             "dither_point_index": 1, "primary_source": "Y" if c == 6 else "N",
             "fixed_slit": "NONE"} for c in (5, 6, 7)]
    src = [{"program": 1234, "source_id": 10, "source_name": "src10", "alias": "S10",
            "ra": 53.125, "dec": -27.75, "preimage_id": "NONE", "stellarity": 0.5}]
    meta = {"instrument.name": "NIRSPEC", "instrument.detector": "NRS1",
            "instrument.grating": "G140M", "instrument.filter": "F100LP",
            "exposure.type": "NRS_MSASPEC", "subarray.name": "FULL",
            "subarray.xstart": win[0], "subarray.ystart": win[1],
            "dither.position_number": 1, "dither.total_points": 3,
            "instrument.msa_metadata_id": 1, "observation.program_number": "01234",
            "msa.shutter_info": rows, "msa.source_info": src}
    refs = _nirspec_refs("NRS_MSASPEC")
    refs["fflat"] = _quad_fflat()
    refs["sflat"] = _table_ref("sflat", "NirspecFlatModel", ["ANY"], 48, window=win,
                               planes=[0.5, 5.5])
    refs["dflat"] = _table_ref("dflat", "NirspecFlatModel", ["ANY"], 48, window=win,
                               planes=[0.5, 5.5])
    refs["pathloss"] = _pathloss([("MOS1X1", 1), ("MOS1X3", 3)],
                                 [np.arange(5) * 0.25 - 0.5, np.arange(13) * 0.25 - 1.5])
    refs["photom"] = _photom("NrsMosPhotomModel", [{"filter": "F100LP", "grating": "G140M"}])
    refs["msaoper"] = S.nirspec_msaoper([(3, 40, 9)])
    y = (np.arange(1001) - 500) / 500.0
    bs = np.clip(np.abs(np.abs(y)[:, None] - 0.5) * 4.0, 0.25, 1.0) + np.zeros((1, 101))
    refs["barshadow"] = DataModel("ref.barshadow", {"data1x1": bs.astype(np.float32),
                                                    "data1x3": bs.astype(np.float32)},
                                  {"model_type": "BarshadowModel", "crval1": 0.5e-6,
                                   "cdelt1": 0.0625e-6, "cdelt2": 1.0 / 500.0})
    shape = (win[3], win[2])
    return _rate(meta, shape, 3), _rate(meta, shape, 4), _rate(meta, shape, 5), refs


def lrs_case():
    tab = {"y_center": np.arange(80.0, -260.0, -0.5)}
    tab["wavelength"] = 4.0 + (80.0 - tab["y_center"]) / 32.0
    tab["x_center"] = tab["y_center"] / 256.0
    for k in ("x0", "y0", "x1", "y1", "x2", "y2", "x3", "y3"):
        tab[k] = np.zeros_like(tab["y_center"])
    specwcs = DataModel("ref.specwcs", {f"wavetable.{k}": v for k, v in tab.items()},
                        {"model_type": "MiriLRSSpecwcsModel", "x_ref": 326.125,
                         "y_ref": 300.75, "x_ref_slitless": 38.5, "y_ref_slitless": 829.0})
    from transforms.sim import references as rf

    dist = rf.distortion_ref(rf.detector_spec("MIRIMAGE"), "2022-01-01T00:00:00", "MIR_IMAGE")
    win = (300, 40, 56, 344)
    meta = {"instrument.name": "MIRI", "instrument.detector": "MIRIMAGE",
            "instrument.filter": "P750L", "exposure.type": "MIR_LRS-FIXEDSLIT",
            "subarray.name": "FULL", "subarray.xstart": win[0], "subarray.ystart": win[1],
            "dither.x_offset": 0.9375, "dither.y_offset": 0.0, "target.ra": 53.125,
            "target.dec": -27.75, "dither.primary_type": "ALONG-SLIT-NOD",
            "wcsinfo.v2_ref": -378.75, "wcsinfo.v3_ref": -344.875, "wcsinfo.v3yangle": 5.0}
    grid = (0.75 + _ints((12, 9, 21), 13, 256.0, 0, 64)).astype(np.float32)
    plr = DataModel("ref.pathloss", {"pathloss_table.wavelength": np.linspace(15, 3.5, 12,
                                                                              dtype=np.float32),
                                     "pathloss_table.pathloss": grid},
                    {"model_type": "MirLrsPathlossModel", "wcsinfo.crpix1": 1.0,
                     "wcsinfo.crval1": -10.0, "wcsinfo.cdelt1": 1.0, "wcsinfo.crpix2": 1.0,
                     "wcsinfo.crval2": -2.0, "wcsinfo.cdelt2": 0.5})
    flat = DataModel("ref.flat", {"data": (1 + _ints((1024, 1032), 17, 1024.0, 0, 32)),
                                  "dq": np.zeros((1024, 1032), np.uint32),
                                  "err": np.full((1024, 1032), 1 / 512, np.float32)}, {})
    refs = {"specwcs": specwcs, "distortion": dist, "pathloss": plr, "flat": flat,
            "photom": _photom("MirLrsPhotomModel", [{"filter": "P750L", "subarray": "FULL"}],
                              "photmjsr")}
    return _rate(meta, (win[3], win[2]), 6), refs


def _chain():
    aw = assign_wcs_v2.AssignWcsParams()
    out: dict[str, list] = {k: [] for k in PINNED}
    # NIRSpec FS: assign_wcs, bkg, extract_2d, srctype, wavecorr, flat, pathloss, photom
    sci, bkg, refs = fs_case()
    m = assign_wcs_v2.assign_wcs(sci, refs, aw)
    out["assign_wcs==2.0"].append(m)
    m = bkg_subtract.bkg_subtract((m, bkg), {}, bkg_subtract.BkgSubtractParams())
    out["bkg_subtract==1.0"].append(m)
    m = extract_2d.extract_2d(m, refs, extract_2d.Extract2dParams())
    out["extract_2d==1.0"].append(m)
    m = srctype.srctype(m, {}, srctype.SrctypeParams())
    out["srctype==1.0"].append(m)
    m = wavecorr.wavecorr(m, refs, wavecorr.WavecorrParams())
    out["wavecorr==1.0"].append(m)
    m = flat_field_v2.flat_field(m, refs, flat_field_v2.FlatFieldParams())
    out["flat_field==2.0"].append(m)
    m = pathloss.pathloss(m, refs, pathloss.PathlossParams())
    out["pathloss==1.0"].append(m)
    m = photom_v2.photom(m, refs, photom_v2.PhotomParams())
    out["photom==2.0"].append(m)
    # NIRSpec MOS: every front-half step
    sci, imp, bkg, refs = mos_case()
    m = assign_wcs_v2.assign_wcs(sci, refs, aw)
    out["assign_wcs==2.0"].append(m)
    m = msa_flagging.msa_flagging(m, refs, msa_flagging.MsaFlaggingParams())
    out["msa_flagging==1.0"].append(m)
    m = imprint_subtract.imprint_subtract((m, imp), {}, imprint_subtract.ImprintParams())
    out["imprint_subtract==1.0"].append(m)
    m = bkg_subtract.bkg_subtract((m, bkg, imp), {}, bkg_subtract.BkgSubtractParams())
    out["bkg_subtract==1.0"].append(m)
    m = extract_2d.extract_2d(m, refs, extract_2d.Extract2dParams())
    out["extract_2d==1.0"].append(m)
    m = srctype.srctype(m, {}, srctype.SrctypeParams())
    out["srctype==1.0"].append(m)
    m = wavecorr.wavecorr(m, refs, wavecorr.WavecorrParams())
    out["wavecorr==1.0"].append(m)
    m = flat_field_v2.flat_field(m, refs, flat_field_v2.FlatFieldParams())
    out["flat_field==2.0"].append(m)
    m = pathloss.pathloss(m, refs, pathloss.PathlossParams())
    out["pathloss==1.0"].append(m)
    m = barshadow.barshadow(m, refs, barshadow.BarshadowParams())
    out["barshadow==1.0"].append(m)
    m = photom_v2.photom(m, refs, photom_v2.PhotomParams())
    out["photom==2.0"].append(m)
    # MIRI LRS: assign_wcs, srctype, flat (1.0's path), pathloss, photom
    sci, refs = lrs_case()
    m = assign_wcs_v2.assign_wcs(sci, refs, aw)
    out["assign_wcs==2.0"].append(m)
    m = srctype.srctype(m, {}, srctype.SrctypeParams())
    out["srctype==1.0"].append(m)
    m = flat_field_v2.flat_field(m, refs, flat_field_v2.FlatFieldParams())
    out["flat_field==2.0"].append(m)
    m = pathloss.pathloss(m, refs, pathloss.PathlossParams())
    out["pathloss==1.0"].append(m)
    m = photom_v2.photom(m, refs, photom_v2.PhotomParams())
    out["photom==2.0"].append(m)
    return {k: tuple(v) if len(v) > 1 else v[0] for k, v in out.items()}


def test_golden_product_ids():
    got = {k: ids_of(v, CANON) for k, v in _chain().items()}
    check(got, PINNED)


def test_the_canonical_form_still_sees_a_small_change():
    sci, bkg, refs = fs_case()
    aw = assign_wcs_v2.AssignWcsParams()
    a = extract_2d.extract_2d(assign_wcs_v2.assign_wcs(sci, refs, aw), refs,
                              extract_2d.Extract2dParams())
    d = np.array(sci["data"])
    d[30, 40] *= 1.001
    b = extract_2d.extract_2d(assign_wcs_v2.assign_wcs(sci.replace(arrays={"data": d}), refs,
                                                       aw), refs, extract_2d.Extract2dParams())
    assert ids_of(a, CANON) != ids_of(b, CANON)


def test_every_step_did_something():
    for k, v in _chain().items():
        models = v if isinstance(v, tuple) else (v,)
        name = k.split("==")[0]
        assert any(m.get(f"cal_step.{name}") == "COMPLETE" for m in models), k


pytest.importorskip("store.identity")
