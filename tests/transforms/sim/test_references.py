"""Detector properties are window-independent; reference models carry the JWST layouts."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from transforms import dq
from transforms.sim import readout as ro
from transforms.sim import references as rf

UA = "2022-01-01T00:00:00"


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(sorted(d for d, s in rf.DETECTORS.items() if s.instrument != "MIRI")),
       st.integers(1, 1973), st.integers(1, 1973),  # + 75 wide still fits 2048
       st.integers(1, 50), st.integers(1, 50), st.integers(0, 20), st.integers(0, 20))
def test_properties_do_not_depend_on_the_window(det, x0, y0, nx, ny, dx, dy):
    """(MIRI's 1032x1024 geometry: tests/transforms/sim/test_miri.py.)"""
    big = ro.custom_subarray(x0, y0, nx + dx + 5, ny + dy + 5)
    small = ro.custom_subarray(x0 + dx, y0 + dy, nx, ny)
    a = rf.detector_properties(det, 7, big)
    b = rf.detector_properties(det, 7, small)
    for name in ("superbias", "gain", "read_noise", "dark_rate", "flat", "well", "refpix"):
        assert np.array_equal(getattr(a, name)[dy:dy + ny, dx:dx + nx], getattr(b, name))
    assert np.array_equal(a.lin_coeffs[:, dy:dy + ny, dx:dx + nx], b.lin_coeffs)
    # Reference pixels are exactly the 4-pixel border of the 2048x2048 detector.
    rows, cols = small.slices
    yy, xx = np.meshgrid(np.arange(rows.start, rows.stop), np.arange(cols.start, cols.stop),
                         indexing="ij")
    border = (yy < 4) | (yy > 2043) | (xx < 4) | (xx > 2043)
    assert np.array_equal(b.refpix, border)
    m = rf.mask_ref(b, UA)["dq"]
    assert np.array_equal((m & dq.REFERENCE_PIXEL) != 0, border)
    assert np.all(b.dark_rate[border] == 0) and np.all(b.flat[border] == 0)


def test_reference_models_have_jwst_layout_and_meta():
    sub = ro.subarray("NIRCAM", "SUB64P")
    p = rf.detector_properties("NRCA1", 1, sub)
    refs = [rf.mask_ref(p, UA), rf.saturation_ref(p, UA), rf.superbias_ref(p, UA),
            rf.linearity_ref(p, UA), rf.gain_ref(p, UA), rf.readnoise_ref(p, UA),
            rf.flat_ref(p, UA, "F150W", "CLEAR"), rf.photom_ref(p, UA, (("F150W", "CLEAR"),)),
            rf.dark_ref(p, UA, 0.05, 7, "NRC_IMAGE")]
    for r in refs:
        assert r.kind == "ref." + r.meta["reftype"]
        for k in ("instrument.name", "instrument.detector", "useafter", "pedigree", "description"):
            assert r.meta[k]
        assert r.meta["subarray.xstart"] == 1 and r.meta["subarray.xsize"] == 64
    dark = refs[-1]
    assert dark["data"].shape == (7, 64, 64) and dark.meta["exposure.nframes"] == 1
    # dark grows linearly with frame number at the true dark rate
    assert np.allclose(dark["data"][6], 7 * dark["data"][0], rtol=1e-5)
    sat = refs[1]["data"]
    assert np.all(sat <= 65535) and np.all(sat > p.superbias)
    assert refs[3]["coeffs"].shape == (4, 64, 64)


def test_old_flat_and_old_dark_differ_from_the_new():
    p = rf.detector_properties("NIS", 3, ro.subarray("NIRISS", "SUB256"))
    new = rf.flat_ref(p, UA, "CLEAR", "F150W")["data"]
    old = rf.flat_ref(p, UA, "CLEAR", "F150W", old=True)["data"]
    assert 0.003 < np.std(old / new) < 0.03
    d_old = rf.dark_ref(p, UA, 1.0, 2, "NIS_IMAGE", include_new_hot=False)
    d_new = rf.dark_ref(p, UA, 1.0, 2, "NIS_IMAGE")
    changed = d_new["data"][1] != d_old["data"][1]
    assert changed.any() and np.array_equal(changed, p.new_hot)


def test_unknown_detector_and_filter():
    with pytest.raises(rf.ReferenceError, match="unknown detector 'NRCB9'"):
        rf.detector_spec("NRCB9")
    with pytest.raises(rf.ReferenceError, match="no photometric calibration"):
        rf.photom_values("NIRCAM", "F999W", rf.detector_spec("NRCA1"))
