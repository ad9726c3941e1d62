"""Cutting references to subarrays, dq_init and group_scale."""

import numpy as np
import pytest

from transforms import dq as DQ
from transforms.detector1 import dq_init, group_scale
from transforms.detector1._subarray import MissingReference, SubarrayMismatch, cut, cut_ref
from transforms.model import DataModel

from d1_helpers import ref, same, snapshot


def test_cut_full_frame_reference_to_subarray_window():
    full = np.arange(20 * 30).reshape(20, 30)
    meta = {"subarray.xstart": 5, "subarray.ystart": 3, "subarray.xsize": 4, "subarray.ysize": 2}
    out = cut(full, meta, (2, 4))
    assert np.array_equal(out, full[2:4, 4:8])
    assert out.flags.c_contiguous  # one layout for the numba kernels
    same_shape = np.zeros((2, 4))
    assert cut(same_shape, meta, (2, 4)) is same_shape  # a matching reference is not copied


def test_cut_honours_a_subarray_reference_origin():
    full = np.arange(20 * 30).reshape(20, 30)
    sub_ref = DataModel("ref.x", {"data": full[5:15, 10:20]},
                        {"subarray.xstart": 11, "subarray.ystart": 6})
    meta = {"subarray.xstart": 13, "subarray.ystart": 8, "subarray.xsize": 3, "subarray.ysize": 4}
    assert np.array_equal(cut_ref(sub_ref, "data", meta, (4, 3)), full[7:11, 12:15])


def test_cut_refuses_a_reference_that_does_not_cover_the_window():
    meta = {"subarray.xstart": 28, "subarray.ystart": 1, "subarray.xsize": 4, "subarray.ysize": 2}
    with pytest.raises(SubarrayMismatch, match="does not cover"):
        cut(np.zeros((20, 30)), meta, (2, 4))
    with pytest.raises(SubarrayMismatch, match="xsize"):
        cut(np.zeros((20, 30)), {"subarray.xsize": 5}, (2, 4))


def _uncal(shape=(1, 3, 4, 5), **meta):
    data = (np.arange(np.prod(shape)) % 60000).reshape(shape).astype(np.uint16)
    return DataModel("uncal", {"data": data}, {"exposure.nframes": 1, **meta})


def test_dq_init_converts_once_and_ors_mask():
    uncal = _uncal()
    mask = np.zeros((4, 5), np.uint32)
    mask[1, 2] = DQ.DEAD | DQ.DO_NOT_USE
    before = snapshot(uncal)
    out = dq_init.apply(uncal, {"mask": ref("mask", dq=mask)}, dq_init.DQInitParams())
    assert out.kind == "ramp" and out.get("cal_step.dq_init") == "COMPLETE"
    assert out["data"].dtype == np.float32 and np.array_equal(out["data"], uncal["data"])
    assert out["groupdq"].dtype == np.uint8 and not out["groupdq"].any()
    assert out["pixeldq"].dtype == np.uint32 and np.array_equal(out["pixeldq"], mask)
    assert same(uncal, before)


def test_dq_init_needs_a_mask_and_no_user_file():
    with pytest.raises(MissingReference, match="mask"):
        dq_init.apply(_uncal(), {}, dq_init.DQInitParams())
    with pytest.raises(ValueError, match="user_supplied_dq"):
        dq_init.apply(_uncal(), {"mask": ref("mask", dq=np.zeros((4, 5), np.uint32))},
                      dq_init.DQInitParams(user_supplied_dq="x.fits"))
    with pytest.raises(ValueError, match="4-D"):
        dq_init.apply(DataModel("uncal", {"data": np.zeros((4, 5), np.uint16)}), {},
                      dq_init.DQInitParams())


def test_group_scale_rescales_by_frame_divisor_over_nframes():
    uncal = _uncal(**{"exposure.nframes": 5, "exposure.frame_divisor": 4})
    out = group_scale.apply(uncal, {}, group_scale.GroupScaleParams())
    assert out.get("cal_step.group_scale") == "COMPLETE"
    np.testing.assert_allclose(out["data"], uncal["data"] * 4 / 5, rtol=1e-6)
    same_n = _uncal(**{"exposure.nframes": 4, "exposure.frame_divisor": 4})
    skipped = group_scale.apply(same_n, {}, group_scale.GroupScaleParams())
    assert skipped.get("cal_step.group_scale") == "SKIPPED"
    assert skipped["data"].dtype == np.uint16
    missing = group_scale.apply(_uncal(), {}, group_scale.GroupScaleParams())
    assert missing.get("cal_step.group_scale") == "SKIPPED"


def test_zero_frame_follows_the_ramp_through_the_steps():
    from transforms.detector1 import linearity, saturation, superbias
    data = np.full((1, 2, 3, 3), 5000, np.uint16)
    zf = np.full((1, 3, 3), 1200, np.uint16)
    zf[0, 0, 0] = 0  # unusable zero-frame pixel stays 0
    zf[0, 2, 2] = 9500  # above the 9000 threshold: zeroed by saturation
    uncal = DataModel("uncal", {"data": data, "zeroframe": zf}, {"exposure.nframes": 1})
    refs = {"mask": ref("mask", dq=np.zeros((3, 3), np.uint32)),
            "saturation": ref("saturation", data=np.full((3, 3), 9000.0, np.float32)),
            "superbias": ref("superbias", data=np.full((3, 3), 1000.0, np.float32)),
            "linearity": ref("linearity", coeffs=np.stack([np.zeros((3, 3)), np.full((3, 3), 2.0)]
                                                          ).astype(np.float32))}
    m = dq_init.apply(uncal, refs, dq_init.DQInitParams())
    assert m["zeroframe"].dtype == np.float32
    m = saturation.apply(m, refs, saturation.SaturationParams(n_pix_grow_sat=0))
    assert m["zeroframe"][0, 2, 2] == 0 and m["zeroframe"][0, 1, 1] == 1200
    m = superbias.apply(m, refs, superbias.SuperbiasParams())
    assert m["zeroframe"][0, 1, 1] == 200 and m["zeroframe"][0, 0, 0] == 0
    m = linearity.apply(m, refs, linearity.LinearityParams())
    assert m["zeroframe"][0, 1, 1] == 400 and m["zeroframe"][0, 0, 0] == 0
