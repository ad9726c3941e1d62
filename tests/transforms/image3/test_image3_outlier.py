"""outlier_detection: the flagging rule, and cosmic rays stage 1 missed in a dithered program."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from image3_synth import covered_by_all, make_program
from transforms import dq as DQ
from transforms.image3.outlier_detection import (OutlierError, OutlierParams, abs_deriv,
                                                 flag_outliers, median_of_singles,
                                                 outlier_detection)


def test_flag_rule_on_arrays():
    blot = np.zeros((20, 20), np.float32)
    data = blot + np.float32(0.0)
    data[5, 5] = 10.0   # 10 sigma: flagged
    data[5, 6] = 4.5    # next to it and above the second threshold: flagged
    data[15, 15] = 4.5  # alone and below the first threshold: kept
    err = np.ones_like(blot)
    m = flag_outliers(data, err, blot, (5.0, 4.0), (1.2, 0.7))
    assert m[5, 5] and m[5, 6] and not m[15, 15]
    assert m.sum() == 2


def test_derivative_term_protects_sharp_sources():
    blot = np.zeros((9, 9), np.float32)
    blot[4, 4] = 100.0  # a sharp star in the median
    data = blot.copy()
    data[4, 4] = 110.0  # slightly different peak (interpolation error), not a cosmic ray
    m = flag_outliers(data, np.ones_like(blot), blot, (5.0, 4.0), (1.2, 0.7))
    assert not m.any()
    assert abs_deriv(blot)[4, 4] == 100.0


def test_median_ignores_low_weight_pixels():
    a = np.full((4, 4), 1.0, np.float32)
    b = np.full((4, 4), 50.0, np.float32)
    c = np.full((4, 4), 3.0, np.float32)
    wb = np.ones((4, 4), np.float32)
    wb[0, 0] = 0.01  # below maskpt * mean weight: ignored there
    med = median_of_singles([a, b, c], [np.ones((4, 4))] * 1 + [wb] + [np.ones((4, 4))], 0.7)
    assert med[0, 0] == 2.0 and med[1, 1] == 3.0


@pytest.fixture(scope="module")
def program():
    return make_program(seed=3, n_exp=4, max_err=0.0, n_cr=40, dither=0.4)


@pytest.fixture(scope="module")
def flagged(program):
    return outlier_detection(program.truths, {}, OutlierParams())


def test_cosmic_rays_missed_by_stage1_are_flagged(program, flagged):
    caught = total = false = 0
    for k, (m, cr) in enumerate(zip(flagged, program.cr_masks)):
        f = (np.asarray(m["dq"]) & (DQ.OUTLIER | DQ.DO_NOT_USE)) == (DQ.OUTLIER | DQ.DO_NOT_USE)
        y, x = np.nonzero(cr)
        inside = covered_by_all(program.truths, k, y, x)
        total += inside.sum()
        caught += f[y[inside], x[inside]].sum()
        fy, fx = np.nonzero(f & ~cr)
        false += covered_by_all(program.truths, k, fy, fx).sum()
        # where only two exposures overlap, a cosmic ray leaks into their median; the only
        # other pixels flagged are next to a cosmic ray (the 3x3 second pass)
        near_cr = ndimage.binary_dilation(cr, np.ones((3, 3), bool))
        assert near_cr[fy, fx].all()
        assert m.get("cal_step.outlier_detection") == "COMPLETE"
    assert total >= 100
    assert caught == total
    assert false == 0  # nothing but cosmic rays flagged where every exposure overlaps


def test_inputs_untouched_and_data_unchanged(program, flagged):
    for raw, m in zip(program.truths, flagged):
        assert np.array_equal(m["data"], raw["data"])
        assert not (np.asarray(raw["dq"]) & DQ.OUTLIER).any()


def test_resample_data_false_uses_the_input_grid(program):
    same = tuple(m.replace(meta=program.truths[0].meta) for m in program.truths)
    out = outlier_detection(same, {}, OutlierParams(resample_data=False))
    assert all(m.get("cal_step.outlier_detection") == "COMPLETE" for m in out)
    with pytest.raises(OutlierError, match="snr"):
        outlier_detection(same, {}, OutlierParams(snr="5"))


@settings(max_examples=8, deadline=None)
@given(kind=st.sampled_from(["flagged", "nan", "zeros", "single"]))
def test_degenerate_inputs_do_not_crash(program, kind):
    ms = program.truths[:2]
    if kind == "flagged":
        ms = tuple(m.replace(arrays={"dq": np.full(m.shape, DQ.DO_NOT_USE, np.uint32)})
                   for m in ms)
    elif kind == "nan":
        ms = tuple(m.replace(arrays={"data": np.full(m.shape, np.nan, np.float32)}) for m in ms)
    elif kind == "zeros":
        ms = tuple(m.replace(arrays={"data": np.zeros(m.shape, np.float32)}) for m in ms)
    else:
        ms = ms[:1]
    out = outlier_detection(ms, {}, OutlierParams(resample_data=False))
    assert len(out) == len(ms)
    if kind != "single":
        assert all(m.get("outlier_detection.nflagged") == 0 for m in out)
