"""calops' spec2 front half against jwst 3.0 on the same data and the same reference files.

jwst's steps run on stdatamodels models built from calops' products (slit arrays, attributes
and the slit's gwcs rebuilt from its parameters: ``transforms.instruments.slit_wcs``) with the
reference files calops writes for its CRDS cache. Compared: srctype, wavecorr, flat_field
(NIRSpec three-part flat, FS and MOS), pathloss (FS point, MOS), barshadow, photom (FS point,
MOS extended), background (nod pair) and imprint subtraction.

Not compared, and why (what blocks jwst): assign_wcs, extract_2d and msa_flagging need
jwst's NIRSpec optical model (camera, collimator, disperser, fore, fpa, msa, ote references
with their physical transforms); calops' NIRSpec model is not that chain, so its disperser/msa
references carry calops parameters beside placeholder jwst fields. The MIRI LRS WCS has jwst's
structure and reference layout: jwst's LRS WCS pipeline is built from calops' distortion and
specwcs files and compared (same sky, wavelengths within 0.2 px: jwst fits a smoothing spline
through the WAVETABLE where calops interpolates linearly).

The reference files calops writes for NIRSpec flats may cover a window of the detector
(``SUBSTRT1/2``); jwst indexes them in full-frame pixels, so for the comparison the jwst copy of
the science says its window starts where the reference does (same pixels, same arithmetic).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import spec2_helpers as H
from store.fits import write_reference
from transforms.instruments import slit_wcs
from transforms.spec2 import (barshadow, bkg_subtract, flat_field_v2, imprint_subtract,
                              pathloss, photom_v2, srctype, wavecorr)
from transforms.spec2 import _common as C

jwst = pytest.importorskip("jwst")
pytestmark = pytest.mark.filterwarnings("ignore")

SLIT_ATTRS = ("name", "xstart", "ystart", "xsize", "ysize", "slitlet_id", "source_id",
              "source_name", "source_alias", "stellarity", "source_xpos", "source_ypos",
              "shutter_state", "quadrant", "slit_xscale", "slit_yscale")


def to_jwst(model, ref_window=None):
    """A MultiSlitModel of calops' multi-slit product (``ref_window``: pretend the exposure
    window starts at the reference window's origin, see the module doc)."""
    from stdatamodels.jwst import datamodels as dm

    out = dm.MultiSlitModel()
    out.meta.exposure.type = model.get("exposure.type")
    out.meta.instrument.name = model.get("instrument.name")
    out.meta.instrument.detector = model.get("instrument.detector")
    out.meta.instrument.filter = model.get("instrument.filter")
    out.meta.instrument.grating = model.get("instrument.grating")
    out.meta.instrument.fixed_slit = model.get("instrument.fixed_slit")
    out.meta.exposure.mid_time = 60400.0
    sx, sy = model.get("subarray.xstart"), model.get("subarray.ystart")
    if ref_window is not None:
        sx, sy = sx - ref_window[0] + 1, sy - ref_window[1] + 1
    out.meta.subarray.xstart, out.meta.subarray.ystart = int(sx), int(sy)
    out.meta.subarray.name = model.get("subarray.name")
    for name in C.slit_names(model):
        arr, sm = C.slit_arrays(model, name), C.slit_meta(model, name)
        s = dm.SlitModel()
        for k in ("data", "dq", "err", "var_poisson", "var_rnoise", "var_flat", "wavelength"):
            if k in arr:
                setattr(s, k, np.array(arr[k]))
        for k in SLIT_ATTRS:
            if sm.get(k) is not None:
                setattr(s, k, sm[k])
        if sm.get("srctype"):
            s.source_type = sm["srctype"]
        if model.get("exposure.type") == "NRS_MSASPEC":  # the source shutter (jwst's Slit)
            sid = int(sm["shutter_id"])
            s.xcen, s.ycen = (sid - 1) % 365 + 1, (sid - 1) // 365 + 1
        s.meta.exposure.type = model.get("exposure.type")
        s.meta.wcsinfo.dispersion_direction = 1
        s.meta.wcs = slit_wcs(sm["wcs"])
        if sm.get("pixelarea_steradians") is not None:
            s.meta.photometry.pixelarea_steradians = sm["pixelarea_steradians"]
        out.slits.append(s)
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """calops' reference files of the FS and MOS programs, written as the CRDS cache has them."""
    d = tmp_path_factory.mktemp("refs")
    out = {}
    for tag, prog in (("fs", H.fs_offcentre(0.33, 0.17)), ("mos", H.mos())):
        refs = prog.refs[prog.exposures[0].truth.name]
        out[tag] = {}
        for rt, m in refs.items():
            from store.spec_references import reference_suffix

            p = Path(d) / f"{tag}_{rt}{reference_suffix(m)}"
            write_reference(m, p)
            out[tag][rt] = str(p)
    return out


def _through(prog, ex, last, members=None):
    """calops' product just before step ``last`` (and the plan's step for it)."""
    plan = H.plan_for(prog, ex)
    from transforms import spec2

    idx = [p.name for p in plan].index(last)
    before = spec2.run_members(ex.model, plan[:idx], members)["cal"]
    return before, plan[idx]


def _fs_point():
    prog = H.fs_offcentre(0.33, 0.17)
    from test_spec2_truth import _with_position

    return prog, _with_position(prog.exposures[0], 0.33, 0.17)


def _compare_slits(ours, theirs, planes=("data", "err", "var_poisson", "var_rnoise"),
                   rtol=1e-5, same_mask=True):
    for s in theirs.slits:
        arr = C.slit_arrays(ours, s.name)
        for k in planes:
            a = np.asarray(arr[k], np.float64)
            b = np.asarray(getattr(s, k), np.float64)
            ok = np.isfinite(a) & np.isfinite(b)
            if same_mask:
                assert np.array_equal(np.isfinite(a), np.isfinite(b)), (s.name, k)
            else:  # jwst's gwcs has no NaN outside the slit; calops' wavelength plane does
                assert np.isfinite(b[np.isfinite(a)]).all(), (s.name, k)
            assert np.allclose(a[ok], b[ok], rtol=rtol, atol=0), (s.name, k,
                                                                  np.nanmax(np.abs(a / b - 1)))


def test_srctype_matches_jwst():
    from jwst.srctype.srctype import set_source_type

    for prog, ex in (_fs_point(), (H.mos(), H.mos().exposures[0])):
        before, step = _through(prog, ex, "srctype")
        ours = step.spec.apply(before, {}, step.params)
        theirs = to_jwst(before)
        theirs.meta.target.source_type_apt = before.get("target.source_type_apt")
        theirs.meta.dither.primary_type = before.get("dither.primary_type")
        set_source_type(theirs)
        for s in theirs.slits:
            assert C.slit_meta(ours, s.name)["srctype"] == s.source_type


def test_wavecorr_matches_jwst(files):
    from jwst.wavecorr.wavecorr import do_correction

    prog, ex = _fs_point()
    before, step = _through(prog, ex, "wavecorr")
    ours = wavecorr.wavecorr(before, step.refs, step.params)
    theirs = do_correction(to_jwst(before), files["fs"]["wavecorr"])
    _compare_slits(ours, theirs, ("wavelength",), rtol=1e-6, same_mask=False)
    assert C.slit_meta(ours, "S200A1")["wavelength_corrected"] is True


@pytest.mark.parametrize("tag", ["fs", "mos"])
def test_flat_field_matches_jwst(files, tag):
    from stdatamodels.jwst import datamodels as dm

    from jwst.flatfield.flat_field import do_correction

    prog, ex = _fs_point() if tag == "fs" else (H.mos(), H.mos().exposures[2])
    before, step = _through(prog, ex, "flat_field")
    ours = flat_field_v2.flat_field(before, step.refs, step.params)
    win = (step.refs["dflat"].get("subarray.xstart"), step.refs["dflat"].get("subarray.ystart"))
    theirs = to_jwst(before, win)
    f = files[tag]
    do_correction(theirs, fflat=dm.open(f["fflat"]), sflat=dm.open(f["sflat"]),
                  dflat=dm.open(f["dflat"]))
    _compare_slits(ours, theirs, ("data", "err", "var_poisson", "var_rnoise", "var_flat"),
                   rtol=2e-5)
    for s in theirs.slits:
        assert np.array_equal(C.slit_arrays(ours, s.name)["dq"], s.dq)


@pytest.mark.parametrize("tag", ["fs", "mos"])
def test_pathloss_matches_jwst(files, tag):
    from stdatamodels.jwst import datamodels as dm

    from jwst.pathloss.pathloss import do_correction

    prog, ex = _fs_point() if tag == "fs" else (H.mos(), H.mos().exposures[2])
    before, step = _through(prog, ex, "pathloss")
    ours = pathloss.pathloss(before, step.refs, step.params)
    theirs, _ = do_correction(to_jwst(before), dm.open(files[tag]["pathloss"]))
    _compare_slits(ours, theirs)
    for s in theirs.slits:
        sm = C.slit_meta(ours, s.name)
        assert sm.get("pathloss_correction_type") == s.pathloss_correction_type


def test_barshadow_matches_jwst(files):
    from stdatamodels.jwst import datamodels as dm

    from jwst.barshadow.bar_shadow import do_correction

    prog = H.mos()
    ex = prog.exposures[2]
    before, step = _through(prog, ex, "barshadow")
    ours = barshadow.barshadow(before, step.refs, step.params)
    theirs, _ = do_correction(to_jwst(before), dm.open(files["mos"]["barshadow"]))
    _compare_slits(ours, theirs, ("data",), rtol=1e-5)
    for s in theirs.slits:
        assert np.allclose(np.nan_to_num(C.slit_arrays(ours, s.name)["barshadow"]),
                           np.nan_to_num(s.barshadow), rtol=1e-5)


@pytest.mark.parametrize("tag", ["fs", "mos"])
def test_photom_matches_jwst(files, tag):
    from jwst.photom.photom import DataSet

    prog, ex = _fs_point() if tag == "fs" else (H.mos(), H.mos().exposures[2])
    before, step = _through(prog, ex, "photom")
    ours = photom_v2.photom(before, step.refs, step.params)
    theirs = to_jwst(before)
    out = DataSet(theirs).apply_photom(files[tag]["photom"], files[tag]["area"])
    _compare_slits(ours, out, ("data", "err"), rtol=1e-5)
    for s in out.slits:
        assert C.slit_meta(ours, s.name)["bunit_data"] == s.meta.bunit_data


def test_background_and_imprint_match_jwst():
    from stdatamodels.jwst import datamodels as dm

    from jwst.background.background_sub import background_sub

    prog = H.fs_nod()
    a, b = prog.exposures

    def im(m):
        x = dm.ImageModel(data=np.array(m["data"]), dq=np.array(m["dq"]),
                          err=np.array(m["err"]))
        x.meta.subarray.xstart, x.meta.subarray.ystart = 1, 1
        x.meta.subarray.xsize = m["data"].shape[1]
        x.meta.subarray.ysize = m["data"].shape[0]
        return x

    ours = bkg_subtract.bkg_subtract((a.model, b.model), {}, bkg_subtract.BkgSubtractParams())
    _, theirs = background_sub(im(a.model), [im(b.model)], 3.0, None)
    assert np.allclose(ours["data"], theirs.data, rtol=0, atol=1e-6, equal_nan=True)
    assert np.array_equal(ours["dq"], theirs.dq)
    ours = imprint_subtract.imprint_subtract((a.model, b.model), {},
                                             imprint_subtract.ImprintParams())
    assert np.allclose(ours["data"], a.model["data"] - b.model["data"], atol=0)
    _ = srctype


def test_lrs_assign_wcs_matches_jwst(tmp_path):
    """jwst's MIRI LRS WCS pipeline built from calops' distortion and specwcs files: the same
    sky positions; wavelengths within 0.2 pixel (jwst fits a smoothing spline through the
    WAVETABLE where calops interpolates linearly; measured max 0.15 px, median 0.03 px)."""
    from gwcs import wcs as gw
    from stdatamodels.jwst import datamodels as dm

    from jwst.assign_wcs import miri

    from transforms.spec2 import assign_wcs_v2

    prog = H.lrs_single()
    ex = prog.exposures[0]
    refs = prog.refs[ex.truth.name]
    paths = {}
    from catalogs.crds_cache import write_reference_file

    for rt, ext in (("distortion", ".asdf"), ("specwcs", ".fits")):
        p = tmp_path / f"{rt}{ext}"
        write_reference_file(refs[rt], p)  # the CRDS cache's writer (distortion: its ASDF model)
        paths[rt] = str(p)
    ours = assign_wcs_v2.assign_wcs(ex.model, refs, assign_wcs_v2.AssignWcsParams())
    meta = ex.model.meta
    m = dm.ImageModel(data=np.array(ex.model["data"]))
    m.meta.instrument.name, m.meta.instrument.detector = "MIRI", "MIRIMAGE"
    m.meta.instrument.filter, m.meta.exposure.type = "P750L", "MIR_LRS-FIXEDSLIT"
    for k in ("xstart", "ystart", "xsize", "ysize"):
        setattr(m.meta.subarray, k, meta[f"subarray.{k}"])
    m.meta.subarray.name = meta["subarray.name"]
    for k in ("v2_ref", "v3_ref", "v3yangle", "vparity", "ra_ref", "dec_ref", "roll_ref"):
        setattr(m.meta.wcsinfo, k, meta[f"wcsinfo.{k}"])
    m.meta.velocity_aberration.scale_factor = 1.0
    m.meta.dither.x_offset = meta["dither.x_offset"]
    m.meta.dither.y_offset = meta["dither.y_offset"]
    theirs = gw.WCS(miri.create_pipeline(m, paths))

    x0, y0, nx, ny = ex.truth.apertures[0]["box"]
    yy, xx = np.mgrid[y0 + 8:y0 + ny - 8, x0 + 8:x0 + nx - 8].astype(float)
    ra, dec, lam = theirs(xx, yy)
    r2, d2, _ = slit_wcs({k[4:]: v for k, v in ours.meta.items() if k.startswith("wcs.")})(xx, yy)
    lo = np.asarray(ours["wavelength"], np.float64)[y0 + 8:y0 + ny - 8, x0 + 8:x0 + nx - 8]
    ok = np.isfinite(lam) & np.isfinite(lo)
    assert ok.sum() > 0.9 * lo.size
    sep = np.hypot((ra - r2) * np.cos(np.radians(dec)), dec - d2) * 3600.0
    assert np.nanmax(sep[ok]) < 1e-6
    dpx = np.abs(lam - lo) / np.abs(np.gradient(lo, axis=0))
    assert np.nanmax(dpx[ok]) < 0.2
    assert np.nanmedian(dpx[ok]) < 0.05
