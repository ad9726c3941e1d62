"""Level-1b uncal files: round trips, stdatamodels interop both ways, malformed files."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st

from store import fits as sf
from store.names import jwst_filename
from transforms.model import DataModel

sdm = pytest.importorskip("stdatamodels.jwst.datamodels",
                          reason="stdatamodels (test-only dependency) is not installed")


def uncal_meta(nints: int, ngroups: int, ny: int, nx: int) -> dict:
    return {
        "instrument.name": "NIRCAM", "instrument.detector": "NRCA1", "instrument.filter": "F200W",
        "instrument.pupil": "CLEAR", "instrument.module": "A", "instrument.channel": "SHORT",
        "exposure.type": "NRC_IMAGE", "exposure.readpatt": "BRIGHT1", "exposure.nframes": 1,
        "exposure.groupgap": 1, "exposure.ngroups": ngroups, "exposure.nints": nints,
        "exposure.frame_time": 10.73677, "exposure.group_time": 21.47354,
        "exposure.start_time": 60123.456789012345, "exposure.zero_frame": True,
        "subarray.name": "SUB64P", "subarray.xstart": 17, "subarray.ystart": 33,
        "subarray.xsize": nx, "subarray.ysize": ny, "subarray.fastaxis": -1,
        "subarray.slowaxis": 2,
        "wcsinfo.ra_ref": 80.48713297123456, "wcsinfo.dec_ref": -69.4983215, "wcsinfo.roll_ref":
        113.2514, "wcsinfo.v2_ref": 120.6714, "wcsinfo.v3_ref": -527.3877,
        "wcsinfo.v3yangle": -0.5636, "wcsinfo.vparity": -1,
        "pointing.ra_v1": 80.4, "pointing.dec_v1": -69.3, "pointing.pa_v3": 113.8,
        "velocity_aberration.scale_factor": 1.000012345678912,
        "velocity_aberration.va_ra_ref": 80.48714, "velocity_aberration.va_dec_ref": -69.49831,
        "ephemeris.type": "DEFINITIVE", "ephemeris.spatial_x_bary": -1.23456789e8,
        "data_processing_software_version": "2025_2a",
        "observation.program_number": "01234", "observation.observation_number": "001",
        "observation.visit_number": "001", "observation.visit_group": "01",
        "observation.sequence_id": "1", "observation.activity_id": "01",
        "observation.exposure_number": "00001", "observation.date": "2023-06-01",
        "calops.sim_seed": 42,  # a key with no FITS keyword: kept through the ASDF extension
    }


def make_uncal(nints=2, ngroups=3, ny=4, nx=5, seed=0, zeroframe=True, tables=True) -> DataModel:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 65536, (nints, ngroups, ny, nx), dtype=np.uint16)
    arrays = {"data": data}
    if zeroframe:
        arrays["zeroframe"] = data[:, 0].copy()
    if tables:
        n = nints * ngroups
        arrays["group.integration_number"] = np.repeat(np.arange(1, nints + 1, dtype=np.int32), ngroups)
        arrays["group.group_number"] = np.tile(np.arange(1, ngroups + 1, dtype=np.int16), nints)
        arrays["group.group_end_time"] = np.array([f"2023-06-01T00:00:{i:02d}.000" for i in range(n)])
        arrays["int_times.integration_number"] = np.arange(1, nints + 1, dtype=np.int32)
        arrays["int_times.int_mid_MJD_UTC"] = 60096.0 + np.arange(nints) / 1000.0
    return DataModel("uncal", arrays, uncal_meta(nints, ngroups, ny, nx))


def assert_same(a: DataModel, b: DataModel) -> None:
    assert a.kind == b.kind
    assert set(a.arrays) == set(b.arrays)
    for k in a.arrays:
        assert a[k].dtype == b[k].dtype, k
        assert a[k].dtype.isnative or a[k].dtype.byteorder == "|"
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert dict(a.meta) == dict(b.meta)


def _path(tmp_path, model, suffix="uncal"):
    return tmp_path / jwst_filename(model.meta, suffix)


def test_uncal_round_trip(tmp_path):
    m = make_uncal()
    p = sf.write_uncal(m, _path(tmp_path, m))
    assert_same(sf.read_uncal(p), m)


@settings(max_examples=12, deadline=None)
@given(nints=st.integers(1, 3), ngroups=st.integers(1, 4), ny=st.integers(1, 6),
       nx=st.integers(1, 7), zf=st.booleans(), tables=st.booleans(), seed=st.integers(0, 99))
def test_uncal_round_trip_any_shape(tmp_path_factory, nints, ngroups, ny, nx, zf, tables, seed):
    m = make_uncal(nints, ngroups, ny, nx, seed, zf, tables)
    before = {k: v.copy() for k, v in m.arrays.items()}
    p = sf.write_uncal(m, tmp_path_factory.mktemp("u") / "x_uncal.fits")
    back = sf.read_uncal(p)
    assert_same(back, m)
    for k, v in before.items():  # writing does not touch the model
        np.testing.assert_array_equal(m[k], v)


def test_segmented_exposure_checks_its_own_integrations(tmp_path):
    m = make_uncal(nints=2)
    seg = m.replace(meta={"exposure.nints": 5, "exposure.integration_start": 3,
                          "exposure.integration_end": 4})
    assert_same(sf.read_uncal(sf.write_uncal(seg, tmp_path / "seg_uncal.fits")), seg)
    with pytest.raises(sf.BadModel, match="NINTS=3 but SCI has 2"):
        sf.write_uncal(seg.replace(meta={"exposure.integration_end": 5}), tmp_path / "b.fits")


def test_writing_is_deterministic(tmp_path):
    m = make_uncal()
    a = sf.write_uncal(m, tmp_path / "a_uncal.fits")
    b = sf.write_uncal(m, tmp_path / "b" / "a_uncal.fits")
    assert a.read_bytes() == b.read_bytes()


def test_product_id_survives_the_file(tmp_path):
    identity = pytest.importorskip("store.identity", reason="store.identity not written yet")
    m = make_uncal()
    back = sf.read_uncal(sf.write_uncal(m, tmp_path / "x_uncal.fits"))
    assert identity.product_id(back) == identity.product_id(m)


def test_calops_uncal_opens_in_stdatamodels(tmp_path):
    m = make_uncal()
    p = sf.write_uncal(m, _path(tmp_path, m))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no validation warnings either
        with sdm.open(p) as s:
            assert type(s).__name__ == "Level1bModel"
            s.validate()
            np.testing.assert_array_equal(s.data, m["data"])
            np.testing.assert_array_equal(s.zeroframe, m["zeroframe"])
            np.testing.assert_array_equal(s.group["group_number"], m["group.group_number"])
            np.testing.assert_array_equal(s.int_times["int_mid_MJD_UTC"],
                                          m["int_times.int_mid_MJD_UTC"])
            assert s.meta.exposure.readpatt == "BRIGHT1"
            assert s.meta.subarray.xstart == 17
            assert s.meta.wcsinfo.ra_ref == m.meta["wcsinfo.ra_ref"]
            assert s.meta.velocity_aberration.scale_factor == pytest.approx(1.000012345678912, rel=1e-15)
            assert s.meta.ephemeris.type == "DEFINITIVE"
            assert s.meta.data_processing_software_version == "2025_2a"
    with sdm.RampModel(str(p)) as r:  # the ramp view jwst's dq_init starts from
        assert r.data.shape == m["data"].shape


def _sdp_file(path, nints=2, ngroups=3, ny=4, nx=5):
    """An uncal written by stdatamodels, as the SDP writes one."""
    rng = np.random.default_rng(7)
    data = rng.integers(0, 65536, (nints, ngroups, ny, nx), dtype=np.uint16)
    m = sdm.Level1bModel(data=data, zeroframe=data[:, -1].copy())
    meta = uncal_meta(nints, ngroups, ny, nx)
    for key, value in meta.items():
        if key.startswith("calops."):
            continue
        node = m.meta
        parts = key.split(".")
        for part in parts[:-1]:
            node = getattr(node, part)
        setattr(node, parts[-1], value)
    group = np.zeros(nints * ngroups, dtype=list(sf.TABLE_DTYPES["group"].items()))
    group["integration_number"] = np.repeat(np.arange(1, nints + 1), ngroups)
    group["group_end_time"] = "2023-06-01T00:00:00.000"
    m.group = group
    m.save(str(path))
    return data, {k: v for k, v in meta.items() if not k.startswith("calops.")}


def test_stdatamodels_uncal_reads_in_calops(tmp_path):
    data, meta = _sdp_file(tmp_path / "sdp_uncal.fits")
    u = sf.read_uncal(tmp_path / "sdp_uncal.fits")
    assert u.kind == "uncal"
    assert u["data"].dtype == np.uint16 and u["data"].dtype.isnative
    np.testing.assert_array_equal(u["data"], data)
    np.testing.assert_array_equal(u["zeroframe"], data[:, -1])
    np.testing.assert_array_equal(u["group.integration_number"], [1, 1, 1, 2, 2, 2])
    assert u["group.group_end_time"][0] == "2023-06-01T00:00:00.000"
    assert "group.helio_end_time" in u.arrays  # a foreign file keeps every column
    for key, value in meta.items():
        assert u.meta[key] == pytest.approx(value, rel=1e-15) if isinstance(value, float) \
            else u.meta[key] == value, key


def test_read_uncal_does_not_keep_the_file(tmp_path):
    m = make_uncal()
    p = sf.write_uncal(m, tmp_path / "x_uncal.fits")
    u = sf.read_uncal(p)
    os.remove(p)  # the model is in memory: removing or rewriting the file cannot change it
    np.testing.assert_array_equal(u["data"], m["data"])
    assert not u["data"].flags.writeable


# --- malformed files ------------------------------------------------------------------------

def _good(tmp_path):
    return sf.write_uncal(make_uncal(), tmp_path / "good_uncal.fits")


def _rewrite(src, dst, edit):
    with fits.open(src) as h:
        hdul = fits.HDUList([hdu.copy() for hdu in h])
    edit(hdul)
    for hdu in hdul:  # an edited file has no (stale) checksum
        hdu.header.remove("CHECKSUM", ignore_missing=True)
        hdu.header.remove("DATASUM", ignore_missing=True)
    hdul.writeto(dst, overwrite=True)
    return dst


def test_missing_sci_extension(tmp_path):
    p = _rewrite(_good(tmp_path), tmp_path / "bad_uncal.fits", lambda h: h.pop(1))
    with pytest.raises(sf.BadFile, match=r"bad_uncal\.fits: no SCI extension"):
        sf.read_uncal(p)


def test_wrong_dtype(tmp_path):
    def edit(h):
        h["SCI"] = fits.ImageHDU(h["SCI"].data.astype(np.float32), header=None, name="SCI")
    p = _rewrite(_good(tmp_path), tmp_path / "bad_uncal.fits", edit)
    with pytest.raises(sf.BadFile, match=r"bad_uncal\.fits: SCI is float32.*uint16"):
        sf.read_uncal(p)


def test_wrong_ndim(tmp_path):
    def edit(h):
        h["SCI"] = fits.ImageHDU(h["SCI"].data[0], name="SCI")
    p = _rewrite(_good(tmp_path), tmp_path / "bad_uncal.fits", edit)
    with pytest.raises(sf.BadFile, match="SCI has 3 dimensions"):
        sf.read_uncal(p)


@pytest.mark.parametrize("keyword", ["READPATT", "NGROUPS", "SUBSTRT1", "TFRAME", "INSTRUME"])
def test_missing_keyword(tmp_path, keyword):
    def edit(h):
        del h[0].header[keyword]
        del h["ASDF"]  # a file from elsewhere: the header is all there is
    p = _rewrite(_good(tmp_path), tmp_path / "bad_uncal.fits", edit)
    with pytest.raises(sf.BadFile, match=f"missing required keyword.*{keyword}"):
        sf.read_uncal(p)


def test_header_disagrees_with_shape(tmp_path):
    def edit(h):
        h[0].header["NGROUPS"] = 7
    p = _rewrite(_good(tmp_path), tmp_path / "bad_uncal.fits", edit)
    with pytest.raises(sf.BadFile, match="NGROUPS=7 but SCI has 3"):
        sf.read_uncal(p)


def test_keyword_of_wrong_type(tmp_path):
    def edit(h):
        h[0].header["NINTS"] = "two"
    p = _rewrite(_good(tmp_path), tmp_path / "bad_uncal.fits", edit)
    with pytest.raises(sf.BadFile, match="keyword NINTS is 'two'; expected int"):
        sf.read_uncal(p)


@pytest.mark.parametrize("keep", [0.3, 0.7, 0.97])
def test_truncated_file(tmp_path, keep):
    raw = _good(tmp_path).read_bytes()
    p = tmp_path / "cut_uncal.fits"
    p.write_bytes(raw[: int(len(raw) * keep)])
    with pytest.raises(sf.BadFile, match=r"cut_uncal\.fits: .*(truncated|corrupt)"):
        sf.read_uncal(p)


def test_corrupted_bytes_fail_the_checksum(tmp_path):
    p = _good(tmp_path)
    raw = bytearray(p.read_bytes())
    with fits.open(p) as h:
        start = h["SCI"].fileinfo()["datLoc"]
    raw[start + 3] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(sf.BadFile, match="checksum"):
        sf.read_uncal(p)


def test_not_a_fits_file_and_no_file(tmp_path):
    p = tmp_path / "junk_uncal.fits"
    p.write_text("hello")
    with pytest.raises(sf.BadFile, match="junk_uncal.fits: not a readable FITS file"):
        sf.read_uncal(p)
    with pytest.raises(sf.BadFile, match="no such file"):
        sf.read_uncal(tmp_path / "absent_uncal.fits")


def test_write_uncal_refuses_bad_models(tmp_path):
    m = make_uncal()
    with pytest.raises(sf.BadModel, match="must be uint16"):
        sf.write_uncal(m.replace(arrays={"data": m["data"].astype(np.float32)}), tmp_path / "a.fits")
    with pytest.raises(sf.BadModel, match="NFRAMES"):
        sf.write_uncal(m.replace(drop=("exposure.nframes",)), tmp_path / "a.fits")
    with pytest.raises(sf.BadModel, match="needs int"):
        sf.write_uncal(m.replace(meta={"exposure.groupgap": "1"}), tmp_path / "a.fits")
    with pytest.raises(sf.BadModel, match="'uncal' model"):
        sf.write_uncal(m.replace(kind="rate"), tmp_path / "a.fits")
    assert not (tmp_path / "a.fits").exists()
