"""Properties of the spectroscopy steps under hypothesis: odd shapes, empty slits, sources at
the slit edge, everything flagged. No crash, inputs untouched, deterministic, DQ propagated
(output pixels without data are NaN and flagged; a 1-D flux is NaN exactly where DO_NOT_USE)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

import spec_synth as T  # noqa: E402

from store.identity import product_id  # noqa: E402
from transforms import dq as DQ  # noqa: E402
from transforms import spectral as S  # noqa: E402
from transforms.spec2 import extract_1d as ex  # noqa: E402
from transforms.spec2 import pixel_replace as pr  # noqa: E402
from transforms.spec2 import resample_spec as rs  # noqa: E402
from transforms.spec3 import combine_1d as cb  # noqa: E402

BAD = DQ.DO_NOT_USE | DQ.PIXEL["NON_SCIENCE"]
REF = ex.extract1d_ref([{"id": "ANY", "extract_width": 5, "use_source_posn": True,
                         "bkg_coeff": [[-0.5], [1.5], [-2.5], [-0.5]], "bkg_order": 0}])
SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def slits(draw):
    ny = draw(st.integers(3, 14))
    nx = draw(st.integers(4, 40))
    ypos = draw(st.one_of(st.none(), st.floats(-0.7, 0.7)))
    tilt = draw(st.floats(-0.05, 0.05))
    shear = draw(st.floats(-0.05, 0.05))
    frac_bad = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    empty = draw(st.booleans())
    seed = draw(st.integers(0, 2 ** 16))
    disp_axis = draw(st.sampled_from([1, 2]))  # NIRSpec-like or MIRI LRS-like
    rng = np.random.default_rng(seed)
    sp = T.SlitSpec(shape=(ny, nx), trace=((ny - 1) / 2, tilt, 0.0), shear=shear,
                    slit_pix=max(ny - 2, 1.0), source_ypos=ypos, sigma=0.8, disp_axis=disp_axis)
    s = T.make_slit(sp, rng, noise=1e-12)
    a = {k: np.array(v, copy=True) for k, v in s.arrays.items()}
    bad = rng.random(a["data"].shape) < frac_bad
    a["dq"][bad] |= np.uint32(DQ.DO_NOT_USE)
    a["data"][bad] = np.nan
    if empty:
        a["data"][:] = np.nan
        a["dq"][:] |= np.uint32(DQ.DO_NOT_USE)
    return s.replace(arrays=a)


def _copy(m):
    return {k: np.array(v, copy=True) for k, v in m.arrays.items()}


@SETTINGS
@given(slits(), st.sampled_from([0.5, 1.0, 2.0]), st.booleans())
def test_resample_spec_never_crashes_and_flags_what_has_no_data(slit, ratio, propagate):
    cal = T.cal_product([slit])
    before = _copy(cal)
    p = rs.ResampleSpecParams(pixel_scale_ratio=ratio, propagate_dq=propagate)
    out = rs.resample_spec(cal, {}, p)
    assert all(np.array_equal(before[k], v, equal_nan=True) for k, v in cal.arrays.items())
    assert product_id(rs.resample_spec(cal, {}, p)) == product_id(out)
    s = S.slits(out)[0]
    data, dq, wht = s.arrays["data"], s.arrays["dq"], s.arrays["wht"]
    nodata = wht <= 0
    assert np.all(np.isnan(data[nodata]))
    assert np.all((dq[nodata] & BAD) == BAD)
    assert np.all(np.isfinite(data[~nodata]))
    assert np.all((dq[~nodata] & np.uint32(DQ.PIXEL["NON_SCIENCE"])) == 0)
    if not np.isfinite(np.asarray(slit.arrays["data"])).any():
        assert nodata.all()
    if propagate:  # flags of the inputs that landed in a pixel are ORed into it
        assert dq.dtype == np.uint32
    assert out.get("cal_step.resample_spec") == "COMPLETE"


@SETTINGS
@given(slits(), st.booleans())
def test_extract_1d_never_crashes_and_dq_marks_every_nan(slit, via_s2d):
    cal = T.cal_product([slit])
    src = rs.resample_spec(cal, {}, rs.ResampleSpecParams()) if via_s2d else cal
    before = _copy(src)
    x1d = ex.extract_1d(src, {"extract1d": REF}, ex.Extract1dParams())
    assert all(np.array_equal(before[k], v, equal_nan=True) for k, v in src.arrays.items())
    assert product_id(ex.extract_1d(src, {"extract1d": REF}, ex.Extract1dParams())) == \
        product_id(x1d)
    specs = S.spectra(x1d)
    if not specs:
        assert x1d.get("cal_step.extract_1d") == "SKIPPED"
        return
    for sp in specs:
        f, dq = sp["flux"], sp["dq"]
        assert dq.dtype == np.uint32 and len(f) == len(sp["wavelength"])
        assert np.array_equal(np.isnan(f), (dq & DQ.DO_NOT_USE) != 0)
        assert np.all(np.isfinite(sp["wavelength"]))
        assert np.all(sp["npixels"] >= 0)
    if not np.isfinite(np.asarray(slit.arrays["data"])).any():
        assert all(np.isnan(sp["flux"]).all() for sp in specs)


@SETTINGS
@given(slits(), st.sampled_from(["fit_profile", "mingrad"]))
def test_pixel_replace_flags_what_it_replaces_and_leaves_good_pixels(slit, algorithm):
    cal = T.cal_product([slit])
    out = S.slits(pr.pixel_replace(cal, {}, pr.PixelReplaceParams(algorithm=algorithm)))[0]
    d0, q0 = np.asarray(slit.arrays["data"]), np.asarray(slit.arrays["dq"])
    d1, q1 = out.arrays["data"], out.arrays["dq"]
    good = (q0 & DQ.DO_NOT_USE) == 0
    assert np.array_equal(d0[good], d1[good], equal_nan=True)
    est = ((q1 & DQ.PIXEL["FLUX_ESTIMATED"]) != 0) & ((q0 & DQ.PIXEL["FLUX_ESTIMATED"]) == 0)
    assert np.all(np.isfinite(d1[est]))
    assert np.all((q1[est] & DQ.DO_NOT_USE) == 0)
    assert np.all(est <= ~good)  # only flagged pixels are estimated


@SETTINGS
@given(st.integers(2, 60), st.integers(1, 4), st.floats(0.5, 5.0))
def test_combine_1d_of_copies_is_the_spectrum(n, copies, t):
    w = 1.0 + np.arange(n) * 1e-3
    f = 1.0 + np.sin(w * 50)
    sp = S.Spectrum("A", {"wavelength": w, "flux": f, "flux_error": np.full(n, 0.1),
                          "surf_bright": f, "sb_error": np.full(n, 0.1),
                          "dq": np.zeros(n, np.uint32)}, {"source_id": 1})
    x1ds = tuple(S.spectra_product("x1d", {"exposure.exposure_time": t}, [sp])
                 for _ in range(copies))
    c = S.spectra(cb.combine_1d(x1ds, {}, cb.Combine1dParams()))[0]
    assert np.allclose(c["wavelength"], w) and np.allclose(c["flux"], f)
    assert np.all(c["n_input"] == copies)
    assert np.allclose(c["error"], 0.1 / np.sqrt(copies))


def test_a_slit_extracts_the_same_alone_or_among_others():
    """Apertures with background coefficients moved to each slit's source position do not
    leak from one slit to the next (jwst 3.0 shifts the reference's coefficient lists in
    place, so in a multi-slit product every slit inherits the previous slits' offsets)."""
    rng = np.random.default_rng(4)
    s1 = T.make_slit(T.SlitSpec(name="1", source_ypos=0.3, source_id=1), rng, noise=1e-12)
    s2 = T.make_slit(T.SlitSpec(name="2", source_ypos=-0.2, source_id=2), rng, noise=1e-12)
    ref = ex.extract1d_ref([{"id": "ANY", "extract_width": 7, "use_source_posn": True,
                             "bkg_coeff": [[0.5], [5.5], [25.5], [30.5]], "bkg_order": 1}])
    both = S.spectra(ex.extract_1d(T.cal_product([s1, s2]), {"extract1d": ref},
                                   ex.Extract1dParams()))
    alone = S.spectra(ex.extract_1d(T.cal_product([s2]), {"extract1d": ref},
                                    ex.Extract1dParams()))[0]
    np.testing.assert_array_equal(both[1]["flux"], alone["flux"])
    assert ref.get("apertures")[0]["bkg_coeff"] == [[0.5], [5.5], [25.5], [30.5]]
