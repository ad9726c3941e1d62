"""The NIRSpec detector model: frames, outputs, IRS2 layout (against jwst's own functions)."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from transforms.instruments.nirspec import detector as nrs


@given(st.sampled_from(nrs.DETECTORS), st.integers(1, 9), st.integers(1, 9))
def test_science_and_detector_frames_invert_each_other(det, ny, nx):
    a = np.arange(ny * nx).reshape(ny, nx)
    d = nrs.to_detector(a, det)
    assert d.shape == (nx, ny)
    assert np.array_equal(nrs.to_science(d, det), a)
    # every detector pixel lands where detector_to_science_coords says
    r, c = np.mgrid[:nx, :ny]
    y, x = nrs.detector_to_science_coords(r, c, d.shape, det)
    assert np.array_equal(a[y, x], d)


def test_orientations_are_jwsts():
    """jwst's refpix: NRS1 = swapaxes, NRS2 = swapaxes then flip both axes; FASTAXIS/SLOWAXIS
    as in the level-1b headers."""
    a = np.arange(12).reshape(3, 4)
    assert np.array_equal(nrs.to_detector(a, "NRS1"), np.swapaxes(a, 0, 1))
    assert np.array_equal(nrs.to_detector(a, "NRS2"), np.swapaxes(a, 0, 1)[::-1, ::-1])
    assert nrs.axes("NRS1") == (2, 1) and nrs.axes("NRS2") == (-2, -1)
    with pytest.raises(ValueError, match="NIRSpec has NRS1, NRS2"):
        nrs.axes("NRCA1")


def test_outputs_are_row_stripes_in_the_science_frame():
    y = np.arange(2048)
    assert np.array_equal(nrs.output_of_science_row(y, "NRS1"), y // 512)
    assert np.array_equal(nrs.output_of_science_row(y, "NRS2"), (2047 - y) // 512)
    x1, _ = nrs.fpa_origin("NRS1")
    x2, _ = nrs.fpa_origin("NRS2")
    assert x2 - x1 > 2048


def test_frame_times():
    assert nrs.frame_time(2048, 2048, 4) == pytest.approx(10.73677)
    assert nrs.frame_time(32, 2048, 1) == pytest.approx(0.90156)  # SUB2048
    lay = nrs.IRS2Layout()
    assert (lay.row * 2048 + 714) * nrs.PIXEL_TIME_S == pytest.approx(nrs.FRAME_TIME_IRS2)


def test_irs2_layout_counts():
    lay = nrs.IRS2Layout()
    assert (lay.row, lay.width, lay.nx) == (712, 640, 3200)
    m = lay.mask()
    assert m.sum() == 2048 and (~m[:640]).all()
    assert lay.interleaved().sum() == 4 * 128
    # in time order: 32 blocks of 16 normal + jump + 4 reference + jump, then 8 pad pixels
    slots = np.sort(lay.slot)
    assert slots.size == 640 and len(set(slots)) == 640 and slots.max() < lay.row - lay.pad
    assert set(lay.slot[lay.href]) == set(lay.href1)


def test_irs2_mask_and_index_arrays_equal_jwsts():
    irs2 = pytest.importorskip("jwst.refpix.irs2_subtract_reference")
    x_irs2 = pytest.importorskip("jwst.saturation.x_irs2")
    lay = nrs.IRS2Layout()
    assert np.array_equal(lay.mask(), irs2.make_irs2_mask(3200, 2048, 16, 4))
    assert np.array_equal(lay.mask(), x_irs2.make_mask(np.zeros((3200, 2048))))
    a = np.random.default_rng(1).random((3200, 5))
    for det in nrs.DETECTORS:
        assert np.array_equal(nrs.from_irs2(a, det), x_irs2.from_irs2(a, lay.mask(), det))
        b = a.copy()
        nrs.to_irs2(b, np.zeros((2048, 5)), det)
        c = a.copy()
        x_irs2.to_irs2(c, np.zeros((2048, 5)), lay.mask(), det)
        assert np.array_equal(b, c)
