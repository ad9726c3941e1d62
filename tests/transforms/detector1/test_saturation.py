"""saturation: thresholds, neighbour growth, read-pattern flagging; compared with stcal."""

import numpy as np
import pytest

from d1_helpers import DNU, SAT, ramp, ref, same, snapshot
from transforms import dq as DQ
from transforms.detector1 import saturation
from transforms.detector1.saturation import SaturationParams

stcal_sat = pytest.importorskip("stcal.saturation.saturation",
                                reason="stcal (test-only) is the reference implementation")


def _random_case(seed, nints=2, ngroups=6, ny=17, nx=13, nframes=1):
    rng = np.random.default_rng(seed)
    slope = rng.uniform(0, 15000, (ny, nx))
    g = np.arange(ngroups)[:, None, None]
    data = np.stack([1000 + slope * (g + 0.3 * i) + rng.normal(0, 50, (ngroups, ny, nx))
                     for i in range(nints)]).astype(np.float32)
    data[0, 0, 0, 0] = -5.0  # A/D floor
    thresh = rng.uniform(30000, 60000, (ny, nx)).astype(np.float32)
    thresh[3, 4] = np.nan
    sdq = np.zeros((ny, nx), np.uint32)
    sdq[5, 6] = DQ.NO_SAT_CHECK
    sdq[7, 7] = DQ.DO_NOT_USE
    bias = rng.uniform(9000, 11000, (ny, nx)).astype(np.float32)
    return data, thresh, sdq, bias


@pytest.mark.parametrize("nframes,use_readpatt,grow", [(1, True, 1), (8, True, 1), (8, False, 2),
                                                       (4, True, 0)])
def test_matches_stcal(nframes, use_readpatt, grow):
    data, thresh, sdq, bias = _random_case(nframes + grow)
    model = ramp(data, **{"exposure.nframes": nframes})
    refs = {"saturation": ref("saturation", data=thresh, dq=sdq),
            "superbias": ref("superbias", data=bias)}
    before = snapshot(model)
    out = saturation.apply(model, refs, SaturationParams(n_pix_grow_sat=grow,
                                                         use_readpatt=use_readpatt))
    assert same(model, before)
    ngroups = data.shape[1]
    rp = ([[x + 1 + g * nframes for x in range(nframes)] for g in range(ngroups)]
          if use_readpatt else None)
    gdq, pdq, _ = stcal_sat.flag_saturated_pixels(
        data.copy(), np.zeros(data.shape, np.uint32), np.zeros(thresh.shape, np.uint32),
        thresh.copy(), sdq.copy(), 65535.0, DQ.PIXEL, n_pix_grow_sat=grow, read_pattern=rp,
        bias=bias.copy() if use_readpatt else None)
    assert np.array_equal(out["groupdq"], gdq.astype(np.uint8))
    assert np.array_equal(out["pixeldq"], pdq)
    assert (out["groupdq"] & SAT).any() and out.get("cal_step.saturation") == "COMPLETE"


def test_flags_exactly_groups_at_or_above_threshold_plus_neighbours():
    data = np.zeros((1, 4, 9, 9), np.float32) + 100
    data[0, 2:, 4, 4] = 500  # reaches the threshold in group 2
    thresh = np.full((9, 9), 500, np.float32)
    out = saturation.apply(ramp(data), {"saturation": ref("saturation", data=thresh)},
                           SaturationParams(n_pix_grow_sat=1, use_readpatt=False))
    gdq = out["groupdq"][0]
    expect = np.zeros((4, 9, 9), bool)
    expect[2:, 3:6, 3:6] = True
    assert np.array_equal((gdq & SAT) != 0, expect)
    assert not (gdq & DNU).any()


def test_grouped_data_partial_saturation_gets_do_not_use():
    # MEDIUM8-like: a group whose 8-frame mean is 0.56 of the way to the last frame.
    nframes = 8
    data = np.full((1, 3, 5, 5), 100.0, np.float32)
    data[0, 0, 2, 2] = 400.0  # frames 1..8: mean 4.5/8 of the end value
    data[0, 1:, 2, 2] = 1000.0
    thresh = np.full((5, 5), 600.0, np.float32)  # 400 >= 600 * 4.5/8 = 337.5
    refs = {"saturation": ref("saturation", data=thresh)}
    meta = {"exposure.nframes": nframes}
    on = saturation.apply(ramp(data, **meta), refs, SaturationParams(n_pix_grow_sat=0))
    off = saturation.apply(ramp(data, **meta), refs,
                           SaturationParams(n_pix_grow_sat=0, use_readpatt=False))
    assert on["groupdq"][0, 0, 2, 2] & DNU and not on["groupdq"][0, 0, 2, 2] & SAT
    assert not off["groupdq"][0, 0, 2, 2] & DNU
    assert on["groupdq"][0, 1, 2, 2] & SAT and off["groupdq"][0, 1, 2, 2] & SAT


def test_nan_threshold_means_no_sat_check_and_bad_grow_is_refused():
    data = np.full((1, 2, 3, 3), 65000.0, np.float32)  # below the 65536 no-check value
    thresh = np.full((3, 3), np.nan, np.float32)
    out = saturation.apply(ramp(data), {"saturation": ref("saturation", data=thresh)},
                           SaturationParams())
    assert not (out["groupdq"] & SAT).any()
    assert np.all(out["pixeldq"] & DQ.NO_SAT_CHECK)
    with pytest.raises(ValueError, match="n_pix_grow_sat"):
        saturation.apply(ramp(data), {"saturation": ref("saturation", data=thresh)},
                         SaturationParams(n_pix_grow_sat=-1))
