"""transforms.wcs: the imaging gwcs against jwst's pointing/DVA models, inverses, serialisation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms import wcs as W
from transforms.model import DataModel

V2, V3 = 120.6, -527.5


def _ref(**kw):
    args = dict(v2_ref=V2, v3_ref=V3, v3yangle=-0.6, vparity=-1, scale_x=0.031, scale_y=0.0315,
                crpix1=1023.5, crpix2=1023.5, degree=3,
                coeffs_x={"c2_0": 2e-6, "c1_1": -1e-6, "c3_0": 1e-10},
                coeffs_y={"c0_2": -1.5e-6, "c2_1": 2e-10})
    args.update(kw)
    return W.distortion_ref(**args)


def _meta(**kw):
    m = {"wcsinfo.v2_ref": V2, "wcsinfo.v3_ref": V3, "wcsinfo.ra_ref": 80.49,
         "wcsinfo.dec_ref": -69.49, "wcsinfo.roll_ref": 73.2,
         "velocity_aberration.scale_factor": 1.00003, "subarray.xstart": 1, "subarray.ystart": 1}
    m.update(kw)
    return m


class _Node:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def test_pointing_matches_jwst_v23tosky():
    pointing = pytest.importorskip("jwst.assign_wcs.pointing")
    meta = _meta()
    jmodel = _Node(meta=_Node(wcsinfo=_Node(v2_ref=V2, v3_ref=V3, roll_ref=73.2, ra_ref=80.49,
                                            dec_ref=-69.49)))
    v2 = np.array([V2, V2 + 30.0, V2 - 55.0, 0.0])
    v3 = np.array([V3, V3 - 20.0, V3 + 41.0, 0.0])
    ours = np.array(W.pointing_model(meta)(v2, v3))
    theirs = np.array(pointing.v23tosky(jmodel)(v2, v3))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours[:, 0], [80.49, -69.49], atol=1e-9)


def test_velocity_aberration_matches_jwst():
    pointing = pytest.importorskip("jwst.assign_wcs.pointing")
    v2 = np.array([V2, V2 + 60.0, V2 - 10.0])
    v3 = np.array([V3, V3 + 5.0, V3 - 70.0])
    for s in (1.0, 1.00003, 0.99991):
        ours = np.array(W.va_model(_meta(**{"velocity_aberration.scale_factor": s}))(v2, v3))
        theirs = np.array(pointing.dva_corr_model(s, V2, V3)(v2, v3))
        np.testing.assert_allclose(ours, theirs, atol=1e-10)
    # the reference point is a fixed point of the correction
    np.testing.assert_allclose(W.va_model(_meta())(V2, V3), (V2, V3), atol=1e-10)


def test_distortion_follows_siap_convention():
    ref = _ref(degree=1, coeffs_x=None, coeffs_y=None, v3yangle=30.0)
    m = W.distortion_model(ref)
    v2, v3 = m(1023.5 + 10.0, 1023.5)  # +10 px in x: xi = 0.31"
    a = np.radians(30.0)
    assert v2 == pytest.approx(V2 - 0.31 * np.cos(a), abs=1e-9)
    assert v3 == pytest.approx(V3 + 0.31 * np.sin(a), abs=1e-9)
    np.testing.assert_allclose(m(1023.5, 1023.5), (V2, V3), atol=1e-10)


def test_reference_pixel_lands_on_pointing():
    w = W.build_wcs(_meta(), _ref(), shape=(2048, 2048))
    ra, dec = w(1023.5, 1023.5)
    assert ra == pytest.approx(80.49, abs=1e-9) and dec == pytest.approx(-69.49, abs=1e-9)
    assert [f for f in w.available_frames] == ["detector", "v2v3", "v2v3vacorr", "world"]


@settings(max_examples=10, deadline=None)
@given(ra=st.floats(0, 359.9), dec=st.floats(-89, 89), roll=st.floats(0, 360),
       s=st.floats(0.9999, 1.0001))
def test_inverse_round_trip(ra, dec, roll, s):
    meta = _meta(**{"wcsinfo.ra_ref": ra, "wcsinfo.dec_ref": dec, "wcsinfo.roll_ref": roll,
                    "velocity_aberration.scale_factor": s})
    w = W.build_wcs(meta, _ref(), shape=(2048, 2048))
    x = np.array([0.0, 2047.0, 1000.3, 17.0, 2000.0])
    y = np.array([0.0, 2047.0, 999.1, 1900.0, 33.0])
    xr, yr = w.invert(*w(x, y))
    np.testing.assert_allclose(xr, x, atol=2e-4)
    np.testing.assert_allclose(yr, y, atol=2e-4)


def test_subarray_origin():
    full = W.build_wcs(_meta(), _ref(), shape=(2048, 2048))
    sub = W.build_wcs(_meta(**{"subarray.xstart": 101, "subarray.ystart": 1601}), _ref(),
                      shape=(64, 160))
    np.testing.assert_allclose(sub(0.0, 0.0), full(100.0, 1600.0), atol=1e-12)
    np.testing.assert_allclose(sub(159.0, 63.0), full(259.0, 1663.0), atol=1e-12)
    assert np.all(np.isnan(sub(200.0, 10.0)))  # outside the subarray's bounding box
    x, y = np.array([0.0, 10.0, 159.0]), np.array([0.0, 30.0, 63.0])
    np.testing.assert_allclose(np.array(sub.invert(*sub(x, y))), [x, y], atol=2e-4)


def test_asdf_round_trip_same_values():
    w = W.build_wcs(_meta(**{"wcs.tweak": {"shift": [0.2, -0.1], "rotation": 0.01}}), _ref(),
                    shape=(128, 256))
    w2 = W.wcs_from_asdf_bytes(W.wcs_to_asdf_bytes(w))
    x, y = np.meshgrid(np.linspace(0, 255, 7), np.linspace(0, 127, 5))
    np.testing.assert_array_equal(np.array(w2(x, y)), np.array(w(x, y)))
    np.testing.assert_allclose(np.array(w2.invert(*w(x, y))), np.array([x, y]), atol=2e-4)
    assert w2.available_frames == w.available_frames


def test_distortion_from_asdf_model_bytes():
    import asdf
    import io

    ref = _ref()
    buf = io.BytesIO()
    asdf.AsdfFile({"model": W.distortion_model(ref)}).write_to(buf)
    raw = np.frombuffer(buf.getvalue(), dtype=np.uint8)
    ref2 = DataModel("ref.distortion", {"asdf_model": raw}, {"reftype": "distortion"})
    x, y = np.array([0.0, 512.0, 2047.0]), np.array([3.0, 1500.0, 2047.0])
    np.testing.assert_allclose(W.distortion_model(ref2)(x, y), W.distortion_model(ref)(x, y),
                               atol=1e-12)
    # the product carries the bytes, so wcs_of rebuilds the same WCS
    meta = {**_meta(), **W.wcs_meta(_meta(), ref2, shape=(2048, 2048))}
    np.testing.assert_allclose(W.wcs_of(meta)(x, y), W.build_wcs(_meta(), ref, (2048, 2048))(x, y),
                               atol=1e-12)


def test_wcs_of_is_deterministic_and_applies_tweak():
    meta = {**_meta(), **W.wcs_meta(_meta(), _ref(), shape=(100, 100))}
    a = np.array(W.wcs_of(meta)(50.0, 50.0))
    assert np.array_equal(a, np.array(W.wcs_of(dict(meta))(50.0, 50.0)))
    tweaked = {**meta, "wcs.tweak": {"shift": [1.0, 0.0]}}  # 1 arcsec in V2
    w = W.wcs_of(tweaked)
    assert "v2v3corr" in w.available_frames
    b = np.array(w(50.0, 50.0))
    sep = np.hypot((b[0] - a[0]) * np.cos(np.radians(a[1])), b[1] - a[1]) * 3600
    assert sep == pytest.approx(1.0, rel=1e-3)


def test_tangent_plane_orientation_and_scale():
    w = W.tangent_plane_wcs(150.0, 2.0, 0.1, (101, 201))
    ra0, dec0 = w(100.0, 50.0)
    assert (ra0, dec0) == (pytest.approx(150.0), pytest.approx(2.0))
    _, dec_up = w(100.0, 60.0)
    ra_right, _ = w(110.0, 50.0)
    assert (dec_up - dec0) * 3600 == pytest.approx(1.0, rel=1e-6)  # +y is north
    assert ra_right < ra0  # +x is west (east left)
    r = W.tangent_plane_wcs(150.0, 2.0, 0.1, (101, 201), rotation_deg=90.0)
    ra_up, dec_up = r(100.0, 60.0)
    assert ra_up > ra0 and dec_up == pytest.approx(dec0, abs=1e-8)  # +y points east
    np.testing.assert_allclose(r.invert(*r(3.0, 7.0)), (3.0, 7.0), atol=1e-8)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(W.WCSError, match="wcsinfo.ra_ref"):
        W.build_wcs({k: v for k, v in _meta().items() if k != "wcsinfo.ra_ref"}, _ref(),
                    shape=(10, 10))
    with pytest.raises(W.WCSError, match="coefficients"):
        W.distortion_meta(v2_ref=0, v3_ref=0, degree=2, coeffs_x=[0.0, 1.0])
    with pytest.raises(W.WCSError, match="run assign_wcs"):
        W.wcs_of({"instrument.name": "NIRCAM"})
    with pytest.raises(W.WCSError, match="distortion.v2_ref"):
        W.distortion_model(DataModel("ref.distortion", {}, {}))
    with pytest.raises(W.WCSError, match="positive"):
        W.build_wcs(_meta(**{"velocity_aberration.scale_factor": -1.0}), _ref(), shape=(4, 4))
