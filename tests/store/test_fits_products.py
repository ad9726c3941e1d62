"""rate / rateints / cal / i2d / catalog files: round trips, provenance, stdatamodels interop."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st

from store import fits as sf
from store.keywords import by_key
from store.names import association_filename, jwst_filename
from transforms.model import DataModel

sdm = pytest.importorskip("stdatamodels.jwst.datamodels",
                          reason="stdatamodels (test-only dependency) is not installed")

META = {
    "instrument.name": "NIRCAM", "instrument.detector": "NRCA1", "instrument.filter": "F200W",
    "instrument.pupil": "CLEAR", "exposure.type": "NRC_IMAGE", "exposure.readpatt": "BRIGHT1",
    "exposure.nints": 2, "exposure.ngroups": 3, "exposure.start_time": 60123.456789012345,
    "subarray.name": "SUB64P", "subarray.xstart": 1, "subarray.ystart": 1,
    "subarray.xsize": 6, "subarray.ysize": 5, "bunit_data": "DN/s",
    "wcsinfo.ra_ref": 80.48713297123456, "wcsinfo.dec_ref": -69.4983215,
    "wcsinfo.roll_ref": 113.2514, "wcsinfo.v2_ref": 120.6714, "wcsinfo.v3_ref": -527.3877,
    "wcsinfo.v3yangle": -0.5636, "wcsinfo.vparity": -1,
    "velocity_aberration.scale_factor": 1.000012345678912, "ephemeris.type": "PREDICTED",
    "data_processing_software_version": "2025_2a",
    "observation.program_number": "01234", "observation.observation_number": "001",
    "observation.visit_number": "001", "observation.visit_group": "01",
    "observation.sequence_id": "1", "observation.activity_id": "01",
    "observation.exposure_number": "00001",
    "cal_step.dq_init": "COMPLETE", "cal_step.jump": "COMPLETE", "cal_step.ramp_fit": "COMPLETE",
    "cal_step.clean_flicker_noise": "SKIPPED",
    "ref_file.gain": "crds://jwst_nircam_gain_0001.fits",
    "ref_file.readnoise": "crds://jwst_nircam_readnoise_0001.fits",
    "jump.params": {"rejection_threshold": 4.0},  # no keyword: kept in the ASDF extension
}
PROV = {"build": "11.2", "pipeline_version": "1.17.1", "crds_context": "jwst_0007.pmap",
        "crds_version": "14.0.3",
        "product_id": "sha256:" + "ab" * 32, "recipe_key": "sha256:" + "cd" * 32}


def image_arrays(shape, seed=0, extra=()):
    rng = np.random.default_rng(seed)
    f = lambda: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    arrays = {"data": f(), "err": np.abs(f()), "dq": rng.integers(0, 2**32, shape, dtype=np.uint32),
              "var_poisson": np.abs(f()), "var_rnoise": np.abs(f())}
    for name in extra:
        arrays[name] = np.abs(f())
    return arrays


def make(kind, shape=(5, 6), seed=0):
    if kind == "rate":
        return DataModel("rate", image_arrays(shape, seed), META)
    if kind == "cal":
        meta = dict(META, **{"bunit_data": "MJy/sr", "cal_step.flat_field": "COMPLETE",
                             "cal_step.photom": "COMPLETE",
                             "photometry.conversion_megajanskys": 0.4432,
                             "photometry.pixelarea_steradians": 2.29e-14})
        return DataModel("cal", image_arrays(shape, seed, ("var_flat", "area")), meta)
    if kind == "rateints":
        nints = 2
        arrays = image_arrays((nints, *shape), seed)
        arrays["int_times.integration_number"] = np.arange(1, nints + 1, dtype=np.int32)
        arrays["int_times.int_mid_MJD_UTC"] = 60123.5 + np.arange(nints) * 1e-3
        return DataModel("rateints", arrays, META)
    if kind == "i2d":
        arrays = image_arrays(shape, seed, ("wht",))
        arrays["con"] = np.ones((1, *shape), np.int32)
        return DataModel("i2d", arrays, dict(META, **{"cal_step.resample": "COMPLETE"}))
    if kind == "ramp":
        rng = np.random.default_rng(seed)
        ramp = rng.normal(size=(2, 3, *shape)).astype(np.float32)
        arrays = {"data": ramp, "groupdq": rng.integers(0, 5, ramp.shape, dtype=np.uint8),
                  "pixeldq": rng.integers(0, 2**32, shape, dtype=np.uint32)}
        return DataModel("ramp", arrays, META)
    raise ValueError(kind)


def name_of(m):
    if m.kind == "i2d":
        return association_filename(m.meta, "i2d")
    return jwst_filename(m.meta, m.kind)


def assert_same(a, b):
    assert a.kind == b.kind
    assert set(a.arrays) == set(b.arrays)
    for k in a.arrays:
        assert a[k].dtype == b[k].dtype, k
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert dict(a.meta) == dict(b.meta)


@pytest.mark.parametrize("kind", ["rate", "rateints", "cal", "i2d", "ramp"])
def test_round_trip(tmp_path, kind):
    m = make(kind)
    p = sf.write_product(m, tmp_path / name_of(m), provenance=PROV)
    back = sf.read_product(p)
    assert_same(back, m)


@settings(max_examples=10, deadline=None)
@given(kind=st.sampled_from(["rate", "rateints", "cal", "i2d", "ramp"]), ny=st.integers(1, 7),
       nx=st.integers(1, 7), seed=st.integers(0, 1000))
def test_round_trip_any_shape(tmp_path_factory, kind, ny, nx, seed):
    m = make(kind, (ny, nx), seed)
    p = sf.write_product(m, tmp_path_factory.mktemp("p") / name_of(m))
    assert_same(sf.read_product(p), m)


@pytest.mark.parametrize("kind,model_class", [("rate", "ImageModel"), ("rateints", "CubeModel"),
                                              ("cal", "ImageModel"), ("i2d", "ImageModel"),
                                              ("ramp", "RampModel")])
def test_opens_in_stdatamodels_and_validates(tmp_path, kind, model_class):
    m = make(kind)
    p = sf.write_product(m, tmp_path / name_of(m), provenance=PROV)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with sdm.open(p) as s:
            assert type(s).__name__ == model_class
            s.validate()
            for name in m.arrays:
                if "." in name:
                    table, col = name.split(".")
                    np.testing.assert_array_equal(getattr(s, table)[col], m[name])
                else:
                    np.testing.assert_array_equal(getattr(s, name), m[name])
            assert s.meta.calibration_software_version == "1.17.1"
            assert s.meta.ref_file.crds.sw_version == "14.0.3"
            assert s.meta.ref_file.crds.context_used == "jwst_0007.pmap"
            assert s.meta.ref_file.gain.name == "crds://jwst_nircam_gain_0001.fits"
            assert s.meta.cal_step.jump == "COMPLETE"
            assert s.meta.data_processing_software_version == "2025_2a"
            assert s.meta.ephemeris.type == "PREDICTED"
            assert s.meta.wcsinfo.ra_ref == META["wcsinfo.ra_ref"]


def test_provenance_keywords_are_plain_short_cards(tmp_path):
    m = make("rate")
    p = sf.write_product(m, tmp_path / name_of(m), provenance=PROV)
    with fits.open(p) as h:
        hdr = h[0].header
        assert hdr["CAL_VER"] == "1.17.1" and hdr["CO_BUILD"] == "11.2"
        assert hdr["CRDS_VER"] == "14.0.3"
        assert hdr["CRDS_CTX"] == "jwst_0007.pmap"
        assert hdr["CO_PID"] == PROV["product_id"]
        assert hdr["CO_RKEY"] == PROV["recipe_key"]
        assert hdr["S_JUMP"] == "COMPLETE" and hdr["R_GAIN"].endswith("gain_0001.fits")
        assert h["SCI"].header["EPH_TYPE"] == "PREDICTED"
        assert all(len(k) <= 8 for hdu in h for k in hdu.header)
        assert not any("HIERARCH" in str(c) for hdu in h for c in hdu.header.cards)
    prov = sf.read_provenance(p)
    assert prov["calops.product_id"] == PROV["product_id"]
    assert prov["calops.recipe_key"] == PROV["recipe_key"]
    assert prov["calibration_software_version"] == "1.17.1"
    assert prov["calops.build"] == "11.2"
    assert prov["cal_step.jump"] == "COMPLETE"
    # provenance describes the file, it is not science meta
    assert "calops.product_id" not in sf.read_product(p).meta


def test_provenance_does_not_change_identity(tmp_path):
    identity = pytest.importorskip("store.identity", reason="store.identity not written yet")
    m = make("rate")
    a = sf.read_product(sf.write_product(m, tmp_path / "a_rate.fits", provenance=PROV))
    b = sf.read_product(sf.write_product(m, tmp_path / "b_rate.fits",
                                         provenance=dict(PROV, build="other")))
    assert identity.product_id(a) == identity.product_id(b) == identity.product_id(m)


def test_unknown_provenance_key_is_refused(tmp_path):
    with pytest.raises(sf.BadModel, match="unknown provenance key 'colour'"):
        sf.write_product(make("rate"), tmp_path / "a_rate.fits", provenance={"colour": "red"})


def test_wcs_goes_to_the_asdf_extension(tmp_path):
    from astropy import coordinates as coord
    from astropy import units as u
    from astropy.modeling import models as am
    from gwcs import coordinate_frames as cf
    from gwcs import wcs as gw

    det = cf.Frame2D(name="detector", unit=(u.pix, u.pix))
    sky = cf.CelestialFrame(reference_frame=coord.ICRS(), name="world", unit=(u.deg, u.deg))
    tr = ((am.Shift(-2) & am.Shift(-2)) | (am.Scale(8.6e-6) & am.Scale(8.6e-6))
          | am.Pix2Sky_TAN() | am.RotateNative2Celestial(80.5, -69.5, 180))
    w = gw.WCS([(det, tr), (sky, None)])
    m = make("i2d")
    p = sf.write_product(m, tmp_path / name_of(m), wcs=w)
    back = sf.read_wcs(p)
    np.testing.assert_allclose(back(1.0, 3.0), w(1.0, 3.0), rtol=0, atol=1e-12)
    with sdm.open(p) as s:
        np.testing.assert_allclose(s.meta.wcs(1.0, 3.0), w(1.0, 3.0), rtol=0, atol=1e-12)
    assert sf.read_wcs(sf.write_product(make("rate"), tmp_path / "x_rate.fits")) is None


def test_stdatamodels_products_read_in_calops(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.normal(size=(5, 6)).astype(np.float32)
    dq = rng.integers(0, 8, (5, 6)).astype(np.uint32)
    s = sdm.ImageModel(data=data, dq=dq, err=np.ones_like(data), var_poisson=data ** 2)
    s.meta.instrument.name = "NIRCAM"
    s.meta.instrument.detector = "NRCB2"
    s.meta.wcsinfo.ra_ref = 12.345678901234
    s.meta.cal_step.jump = "COMPLETE"
    s.meta.ref_file.gain.name = "crds://jwst_nircam_gain_0002.fits"
    s.meta.calibration_software_version = "1.18.0"
    s.save(str(tmp_path / "jw01234001001_01101_00001_nrcb2_rate.fits"))
    m = sf.read_product(tmp_path / "jw01234001001_01101_00001_nrcb2_rate.fits")
    assert m.kind == "rate"
    for name, a in (("data", data), ("dq", dq), ("err", np.ones_like(data)),
                    ("var_poisson", data ** 2)):
        np.testing.assert_array_equal(m[name], a)
        assert m[name].dtype == a.dtype
    assert m.meta["instrument.detector"] == "NRCB2"
    assert m.meta["wcsinfo.ra_ref"] == 12.345678901234
    assert m.meta["cal_step.jump"] == "COMPLETE"
    assert m.meta["ref_file.gain"] == "crds://jwst_nircam_gain_0002.fits"
    assert "calibration_software_version" not in m.meta  # provenance, not science
    cube = sdm.CubeModel(data=np.zeros((2, 3, 4), np.float32))
    cube.save(str(tmp_path / "jw01234001001_01101_00001_nrcb2_rateints.fits"))
    c = sf.read_product(tmp_path / "jw01234001001_01101_00001_nrcb2_rateints.fits")
    assert c.kind == "rateints" and c["data"].shape == (2, 3, 4)


def test_catalog_round_trip_and_astropy(tmp_path):
    from astropy.table import Table

    cols = {"label": np.arange(1, 4, dtype=np.int32),
            "xcentroid": np.array([1.5, 2.25, 3.0]), "ycentroid": np.array([4.0, 5.5, 6.0]),
            "aper_total_flux": np.array([1.0, 2.0, np.nan], np.float32),
            "is_extended": np.array([True, False, True]), "flag": np.array(["a", "bb", ""])}
    m = DataModel("catalog", cols, {"instrument.name": "NIRCAM", "source_catalog.kernel_fwhm": 2.0})
    p = sf.write_product(m, tmp_path / association_filename(META, "cat"), provenance=PROV)
    assert p.name.endswith("_cat.ecsv")
    back = sf.read_product(p)
    assert back.kind == "catalog" and dict(back.meta) == dict(m.meta)
    for k in cols:
        assert back[k].dtype == cols[k].dtype
        np.testing.assert_array_equal(back[k], cols[k])
    t = Table.read(p)
    assert t.colnames == list(cols)
    assert sf.read_provenance(p)["calops.product_id"] == PROV["product_id"]


@pytest.mark.parametrize("change,message", [
    (lambda m: m.replace(arrays={"dq": m["dq"].astype(np.int64)}), "'dq' is int64"),
    (lambda m: m.replace(arrays={"err": m["err"][:2]}), "'err' has shape"),
    (lambda m: m.replace(arrays={"data": m["data"][None]}), "must be 2-D"),
    (lambda m: m.replace(meta={"wcsinfo.ra_ref": "80"}), "RA_REF needs float"),
    (lambda m: m.replace(meta={"instrument.filter": "F200W\u00b5"}), "printable ASCII"),
    (lambda m: m.replace(kind="pointing"), "not 'pointing'"),
])
def test_write_refuses_bad_models(tmp_path, change, message):
    with pytest.raises(sf.BadModel, match=message):
        sf.write_product(change(make("rate")), tmp_path / "x_rate.fits")
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_read_product_refuses_non_products(tmp_path):
    p = tmp_path / "x_rate.fits"
    fits.HDUList([fits.PrimaryHDU()]).writeto(p)
    with pytest.raises(sf.BadFile, match="no SCI extension"):
        sf.read_product(p)


def test_every_table_keyword_is_written_where_the_table_says(tmp_path):
    m = make("cal")
    p = sf.write_product(m, tmp_path / "x_cal.fits")
    table = by_key()
    with fits.open(p) as h:
        for key, value in m.meta.items():
            if key in table:
                hdu = 0 if table[key].hdu == "PRIMARY" else "SCI"
                got = h[hdu].header[table[key].keyword]
                assert got == pytest.approx(value, rel=1e-15) if isinstance(value, float) \
                    else got == value, key
