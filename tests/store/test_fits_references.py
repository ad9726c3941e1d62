"""CRDS reference files: every layout round-trips and opens in stdatamodels as its model."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits

from store import fits as sf
from transforms.model import DataModel
from transforms.wcs import distortion_model

sdm = pytest.importorskip("stdatamodels.jwst.datamodels",
                          reason="stdatamodels (test-only dependency) is not installed")

BASE = {"instrument.name": "NIRCAM", "instrument.detector": "NRCA1", "subarray.name": "FULL",
        "useafter": "2022-01-01T00:00:00", "pedigree": "DUMMY",
        "description": "calops synthetic reference", "author": "calops tests"}
SHAPE = (4, 5)


def _f(*shape, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape).astype(np.float32)


def _dq(seed=1):
    """DQ made of the bits DQ_DEF names (stdatamodels maps reference DQ through DQ_DEF)."""
    bits = np.random.default_rng(seed).integers(0, 8, SHAPE)
    return ((bits & 1) | (bits & 2) | ((bits & 4) << 29)).astype(np.uint32)


DQ_DEF = {"dq_def.BIT": np.array([0, 1, 31], np.int32),
          "dq_def.VALUE": np.array([1, 2, 2**31], np.uint32),
          "dq_def.NAME": np.array(["DO_NOT_USE", "SATURATED", "REFERENCE_PIXEL"]),
          "dq_def.DESCRIPTION": np.array(["Bad pixel", "Saturated pixel", "Reference pixel"])}

CASES = {
    "gain": ({"data": _f(*SHAPE)}, {}, "GainModel"),
    "readnoise": ({"data": _f(*SHAPE)}, {"exposure.readpatt": "ANY"}, "ReadnoiseModel"),
    "mask": ({"dq": _dq(), **DQ_DEF}, {}, "MaskModel"),
    "saturation": ({"data": _f(*SHAPE) * 6e4, "dq": _dq(), **DQ_DEF}, {}, "SaturationModel"),
    "superbias": ({"data": _f(*SHAPE), "err": _f(*SHAPE), "dq": _dq(), **DQ_DEF}, {},
                  "SuperBiasModel"),
    "linearity": ({"coeffs": _f(5, *SHAPE), "dq": _dq(), **DQ_DEF}, {}, "LinearityModel"),
    "dark": ({"data": _f(3, *SHAPE), "err": _f(3, *SHAPE), "dq": _dq(), **DQ_DEF},
             {"exposure.readpatt": "BRIGHT1", "exposure.nframes": 1, "exposure.groupgap": 1,
              "exposure.ngroups": 3}, "DarkModel"),
    "flat": ({"data": _f(*SHAPE), "err": _f(*SHAPE), "dq": _dq(), **DQ_DEF},
             {"instrument.filter": "F200W", "instrument.pupil": "CLEAR"}, "FlatModel"),
    "photom": ({"phot_table.filter": np.array(["F200W", "F150W"]),
                "phot_table.pupil": np.array(["CLEAR", "CLEAR"]),
                "phot_table.photmjsr": np.array([0.443, 0.61], np.float32),
                "phot_table.uncertainty": np.array([0.01, 0.02], np.float32)},
               {}, "NrcImgPhotomModel"),
    "area": ({"data": _f(*SHAPE)}, {"photometry.pixelarea_steradians": 2.29e-14,
                                    "photometry.pixelarea_arcsecsq": 9.74e-04}, "PixelAreaModel"),
}


def make(reftype):
    arrays, extra, _ = CASES[reftype]
    return DataModel(f"ref.{reftype}", arrays, {**BASE, "reftype": reftype.upper(), **extra})


def assert_same(a, b):
    assert a.kind == b.kind
    assert set(a.arrays) == set(b.arrays)
    for k in a.arrays:
        assert a[k].dtype == b[k].dtype, k
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert dict(a.meta) == dict(b.meta)


@pytest.mark.parametrize("reftype", sorted(CASES))
def test_reference_round_trip_and_stdatamodels(tmp_path, reftype):
    m = make(reftype)
    p = sf.write_reference(m, tmp_path / f"jwst_nircam_{reftype}_0001.fits")
    assert_same(sf.read_reference(p), m)
    with fits.open(p) as h:  # the CRDS match keys are in the primary header
        hdr = h[0].header
        assert (hdr["REFTYPE"], hdr["INSTRUME"], hdr["DETECTOR"]) == (reftype.upper(), "NIRCAM", "NRCA1")
        assert (hdr["USEAFTER"], hdr["PEDIGREE"], hdr["AUTHOR"]) == (
            "2022-01-01T00:00:00", "DUMMY", "calops tests")
        assert hdr["DESCRIP"] == "calops synthetic reference"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with sdm.open(p) as s:
            assert type(s).__name__ == CASES[reftype][2]
            s.validate()
            for name, a in m.arrays.items():
                if "." in name:
                    table, col = name.split(".")
                    np.testing.assert_array_equal(getattr(s, table)[col], a)
                else:
                    np.testing.assert_array_equal(getattr(s, name), a)
            assert s.meta.reftype == reftype.upper()


def test_area_keywords_reach_stdatamodels(tmp_path):
    p = sf.write_reference(make("area"), tmp_path / "area.fits")
    with sdm.open(p) as s:
        assert s.meta.photometry.pixelarea_steradians == 2.29e-14


def test_stdatamodels_references_read_in_calops(tmp_path):
    gain = sdm.GainModel(data=_f(*SHAPE, seed=5))
    for k, v in (("reftype", "GAIN"), ("pedigree", "GROUND"), ("description", "d"),
                 ("author", "a"), ("useafter", "2020-01-01T00:00:00")):
        setattr(gain.meta, k, v)
    gain.meta.instrument.name = "NIRCAM"
    gain.meta.instrument.detector = "NRCB1"
    gain.save(str(tmp_path / "g.fits"))
    m = sf.read_reference(tmp_path / "g.fits")
    assert m.kind == "ref.gain"
    np.testing.assert_array_equal(m["data"], _f(*SHAPE, seed=5))
    assert (m.meta["instrument.detector"], m.meta["pedigree"]) == ("NRCB1", "GROUND")

    dq = _dq(4) & 1  # only the bit its DQ_DEF defines, so stdatamodels keeps it as is
    mask = sdm.MaskModel(dq=dq)
    mask.meta.reftype = "MASK"
    mask.dq_def = np.array([(0, 1, "DO_NOT_USE", "bad")],
                           dtype=list(sf.TABLE_DTYPES["dq_def"].items()))
    mask.save(str(tmp_path / "m.fits"))
    mm = sf.read_reference(tmp_path / "m.fits")
    np.testing.assert_array_equal(mm["dq"], dq)
    assert mm["dq_def.NAME"].tolist() == ["DO_NOT_USE"]


def test_reference_errors(tmp_path):
    with pytest.raises(sf.BadModel, match="unknown reference type 'colour'"):
        sf.write_reference(DataModel("ref.colour", {"data": _f(*SHAPE)}, BASE), tmp_path / "a.fits")
    with pytest.raises(sf.BadModel, match="'data' is float64"):
        sf.write_reference(DataModel("ref.gain", {"data": np.ones(SHAPE)}, BASE), tmp_path / "a.fits")
    with pytest.raises(sf.BadModel, match="at most 40 characters"):
        bad = dict(DQ_DEF, **{"dq_def.NAME": np.array(["X" * 41, "A", "B"])})
        sf.write_reference(DataModel("ref.mask", {"dq": _dq(), **bad}, BASE), tmp_path / "a.fits")
    p = tmp_path / "noref.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(_f(*SHAPE), name="SCI")]).writeto(p)
    with pytest.raises(sf.BadFile, match="no REFTYPE"):
        sf.read_reference(p)


# --- distortion (ASDF) ----------------------------------------------------------------------

def _distortion_ref():
    wcs = pytest.importorskip("transforms.wcs", reason="transforms.wcs not written yet")
    d = wcs.distortion_ref(v2_ref=120.67, v3_ref=-527.39, v3yangle=-0.56, degree=2,
                           coeffs_x={"c2_0": 1e-7}, coeffs_y={"c0_2": -2e-7},
                           naxis1=64, naxis2=64, crpix1=31.5, crpix2=31.5)
    meta = {**BASE, "reftype": "DISTORTION", "exposure.type": "NRC_IMAGE",
            "instrument.p_pupil": "CLEAR|", "instrument.filter": "N/A"}
    return wcs, d.replace(meta=meta)


def test_distortion_round_trip_and_stdatamodels(tmp_path):
    wcs, d = _distortion_ref()
    p = sf.write_reference(d, tmp_path / "jwst_nircam_distortion_0001.asdf",
                           astropy_model=distortion_model(d))
    back = sf.read_reference(p)
    assert_same(back, d)
    x, y = np.array([0.0, 10.0, 63.0]), np.array([0.0, 40.0, 63.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with sdm.open(p) as s:
            assert type(s).__name__ == "DistortionModel"
            s.validate()
            np.testing.assert_allclose(s.model(x, y), wcs.distortion_model(d)(x, y), rtol=0,
                                       atol=1e-9)
            assert s.meta.instrument.module == "A" and s.meta.instrument.channel == "SHORT"


def test_foreign_distortion_becomes_an_asdf_model(tmp_path):
    wcs, d = _distortion_ref()
    astro = wcs.distortion_model(d)
    s = sdm.DistortionModel()
    s.model = astro
    for k, v in (("reftype", "DISTORTION"), ("pedigree", "GROUND"), ("description", "real"),
                 ("author", "STScI"), ("useafter", "2022-01-01T00:00:00"),
                 ("input_units", "pixel"), ("output_units", "arcsec")):
        setattr(s.meta, k, v)
    s.meta.instrument.name = "NIRCAM"
    s.meta.instrument.detector = "NRCA1"
    s.meta.instrument.module = "A"
    s.meta.instrument.channel = "SHORT"
    s.meta.instrument.p_pupil = "CLEAR|"
    s.meta.exposure.type = "NRC_IMAGE"
    s.save(str(tmp_path / "real_distortion.asdf"))
    m = sf.read_reference(tmp_path / "real_distortion.asdf")
    assert m.kind == "ref.distortion" and m["asdf_model"].dtype == np.uint8
    assert m.meta["instrument.detector"] == "NRCA1" and m.meta["pedigree"] == "GROUND"
    x, y = np.array([1.0, 30.0]), np.array([2.0, 50.0])
    np.testing.assert_allclose(wcs.distortion_model(m)(x, y), astro(x, y), rtol=0, atol=1e-12)
    # and it can be written back out as a reference stdatamodels opens
    p = sf.write_reference(m, tmp_path / "again.asdf")
    with sdm.open(p) as s2:
        np.testing.assert_allclose(s2.model(x, y), astro(x, y), rtol=0, atol=1e-12)
    assert_same(sf.read_reference(p), m)


@pytest.mark.filterwarnings("ignore::UserWarning")  # asdf warns before it fails
def test_bad_asdf_file(tmp_path):
    p = tmp_path / "bad.asdf"
    p.write_bytes(b"#ASDF 1.0.0\nnot really")
    with pytest.raises(sf.BadFile, match="bad.asdf"):
        sf.read_reference(p)
