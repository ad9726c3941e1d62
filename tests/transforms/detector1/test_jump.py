"""jump: agreement with stcal, detection against injected truth, options and properties."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))  # the test-local generator, package or not
from test_ramp_fit_sim import make_ramp  # noqa: E402

from transforms import dq as DQ  # noqa: E402
from transforms.detector1.jump import JumpParams, apply, flag_jumps_inplace  # noqa: E402
from transforms.model import DataModel  # noqa: E402
from transforms.registry import get  # noqa: E402


def ours(s, gdq=None, **kw):
    gdq = (s.groupdq if gdq is None else gdq).copy()
    pdq = s.pixeldq.copy()
    out = flag_jumps_inplace(s.data, gdq, pdq, s.gain, s.readnoise, group_time=s.group_time,
                             nframes=s.nframes, params=JumpParams(**kw))
    return gdq, pdq, out


def stcal_jump(s, flag_4_neighbors=True):
    from stcal.jump.jump import detect_jumps_data
    from stcal.jump.jump_class import JumpData
    from stdatamodels.jwst.datamodels import dqflags

    jd = JumpData(gain2d=s.gain.copy(), rnoise2d=s.readnoise.copy(), dqflags=dqflags.pixel)
    jd.init_arrays_from_arrays(s.data.copy(), s.groupdq.copy(), s.pixeldq.copy())
    jd.nframes = s.nframes
    jd.dt_group = np.ones(1)
    jd.n_reads_groupdiff = np.ones(1) * 2 * s.nframes
    jd.set_detection_settings(4.0, 6.0, 5.0, 1000, 10, flag_4_neighbors)
    jd.set_after_jump(0, 0, 0, 0)
    jd.set_snowball_info(False, 5.0, 1.0, 2.0, True, 2.5, 4, 25)
    jd.set_shower_info(False, 1.2, 90, 1, 2.6, 1.1, 10, 400)
    jd.set_sigma_clipping_info(3, 100, True)
    jd.max_cores = "1"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gdq, _, _, _ = detect_jumps_data(jd)
    return gdq


@pytest.mark.parametrize("ngroups,nints,neighbours", [(10, 1, True), (6, 2, True), (5, 1, False)])
def test_flags_agree_with_stcal(ngroups, nints, neighbours):
    pytest.importorskip("stcal")
    s = make_ramp(31 + ngroups, nints=nints, ngroups=ngroups, ny=64, nx=64, jump_frac=0.01,
                  sigma_range=(5.0, 40.0), sat_level=4000.0, rate_range=(0, 60))
    mine, _, _ = ours(s, flag_4_neighbors=neighbours)
    theirs = stcal_jump(s, neighbours)
    agree = np.mean((mine & DQ.JUMP_DET) == (theirs & DQ.JUMP_DET))
    assert agree >= 0.995, agree
    assert np.array_equal(mine & ~np.uint8(DQ.JUMP_DET), theirs & ~np.uint8(DQ.JUMP_DET))


def _rates(s, gdq):
    flagged = (gdq & DQ.JUMP_DET) != 0
    clean = ~s.jump
    clean[:, 0] = False  # group 0 can never be a jump
    return flagged[s.jump], flagged[clean]


@pytest.mark.parametrize("ngroups", [10, 5])
def test_detection_against_truth(ngroups):
    """>= 99.8% of >10 sigma, >= 90% of 6-10 sigma jumps flagged; <= 0.1% clean groups flagged
    (neighbour flagging off: it flags clean groups around real jumps by design)."""
    hits = {"6-10": [], ">10": []}
    false = []
    cases = [(seed, "6-10", (6.0, 10.0)) for seed in (1, 2, 3)]
    cases += [(seed, ">10", (10.0, 60.0)) for seed in (4, 5, 6)]
    for seed, band, rng in cases:
        s = make_ramp(100 * ngroups + seed, nints=1, ngroups=ngroups, ny=128, nx=128,
                      jump_frac=0.012, sigma_range=rng, rate_range=(0, 50))
        gdq, _, _ = ours(s, flag_4_neighbors=False)
        det, ff = _rates(s, gdq)
        hits[band].append(det)
        false.append(ff)
    six = np.concatenate(hits["6-10"])
    big = np.concatenate(hits[">10"])
    clean = np.concatenate(false)
    assert six.size > 2000 and big.size > 2000
    assert big.mean() >= 0.998, big.mean()
    assert six.mean() >= 0.90, six.mean()
    assert clean.mean() <= 0.001, clean.mean()


def test_many_integrations_and_long_ramps():
    """TSO-like data (more integrations than minimum_sigclip_groups; stcal would sigma-clip):
    calops runs its pooled test, in O(n) per iteration."""
    for nints, ngroups in ((120, 4), (1, 60)):
        s = make_ramp(5, nints=nints, ngroups=ngroups, ny=6, nx=6, jump_frac=0.01,
                      sigma_range=(15.0, 40.0))
        gdq, _, _ = ours(s, flag_4_neighbors=False)
        det, false = _rates(s, gdq)
        assert det.size > 20 and det.mean() >= 0.95 and false.mean() <= 0.001


def test_neighbours_and_after_jump_flags():
    s = make_ramp(7, ngroups=8, ny=9, nx=9, rate_range=(1, 2))
    s.data[0, 3:, 4, 4] += 2000.0  # a ~100 sigma jump
    gdq, _, _ = ours(s)
    jump = (gdq[0] & DQ.JUMP_DET) != 0
    assert jump[3, 4, 4] and jump[3, 3, 4] and jump[3, 5, 4] and jump[3, 4, 3] and jump[3, 4, 5]
    assert not jump[3, 3, 3]
    gdq2, _, _ = ours(s, flag_4_neighbors=False, after_jump_flag_dn1=500.0,
                      after_jump_flag_time1=2.5 * s.group_time)
    jump2 = (gdq2[0] & DQ.JUMP_DET) != 0
    assert jump2[3:6, 4, 4].all() and not jump2[6, 4, 4] and not jump2[3, 4, 3]
    gdq3, _, _ = ours(s, flag_4_neighbors=False, max_jump_to_flag_neighbors=50.0)
    assert ((gdq3[0] & DQ.JUMP_DET) != 0).sum() == 1


def test_snowball_expansion_option():
    s = make_ramp(9, ngroups=6, ny=80, nx=80, rate_range=(0, 1))
    yy, xx = np.mgrid[:80, :80]
    r = np.hypot(yy - 40, xx - 40)
    s.data[0, 3:, r < 6] += 5000.0
    s.groupdq[0, 3:, r < 3] |= DQ.SATURATED
    plain, _, _ = ours(s)
    gdq, _, out = ours(s, expand_large_events=True)
    assert out["snowballs"] == 1
    n_plain = ((plain[0, 3] & DQ.JUMP_DET) != 0).sum()
    n_snow = ((gdq[0, 3] & DQ.JUMP_DET) != 0).sum()
    assert n_snow > 2 * n_plain
    added = ((gdq[0, 3] & ~plain[0, 3]) & DQ.JUMP_DET) != 0
    assert added.any() and r[added].max() <= 2 * 7.5 + 1  # within expand_factor x enclosing radius
    assert not np.any(gdq[0, 3][r < 3] & DQ.JUMP_DET)  # not over the saturated core


def _model(s, **meta):
    m = {"exposure.group_time": s.group_time, "exposure.frame_time": s.frame_time,
         "exposure.nframes": s.nframes}
    m.update(meta)
    return DataModel("ramp", {"data": s.data, "groupdq": s.groupdq, "pixeldq": s.pixeldq}, m)


def _refs(gain, rn):
    return {"gain": DataModel("ref.gain", {"data": gain}), "readnoise": DataModel("ref.readnoise",
                                                                                  {"data": rn})}


def test_apply_model_copies_only_dq_and_skips_short_ramps():
    s = make_ramp(5, ngroups=6, ny=10, nx=12, jump_frac=0.05, sigma_range=(20, 30))
    full_gain = np.ones((20, 30), np.float32)
    full_rn = np.ones((20, 30), np.float32)
    full_gain[2:12, 5:17] = s.gain
    full_rn[2:12, 5:17] = s.readnoise
    model = _model(s, **{"subarray.xstart": 6, "subarray.ystart": 3})
    out = apply(model, _refs(full_gain, full_rn), JumpParams())
    assert out.get("cal_step.jump") == "COMPLETE"
    assert out.get("exposure.primary_cosmic_rays") > 0
    assert np.shares_memory(out["data"], model["data"])  # the 4-D data is not copied
    direct, _, _ = ours(s)
    np.testing.assert_array_equal(out["groupdq"], direct)
    assert not np.any(model["groupdq"] & DQ.JUMP_DET)
    spec = get("jump", "1.0")  # this file tests 1.0 (1.1, the newest: test_jump_v11.py)
    assert spec.reftypes == ("gain", "readnoise") and spec.apply is apply
    p = spec.make_params()
    assert (p.rejection_threshold, p.three_group_rejection_threshold,
            p.four_group_rejection_threshold, p.minimum_groups) == (4.0, 6.0, 5.0, 3)
    short = make_ramp(5, ngroups=2, ny=4, nx=4)
    res = apply(_model(short), _refs(short.gain, short.readnoise), p)
    assert res.get("cal_step.jump") == "SKIPPED" and res["groupdq"] is not None
    with pytest.raises(ValueError, match="find_showers"):
        JumpParams(find_showers=True)
    with pytest.raises(KeyError, match="gain"):
        apply(model, {}, p)


@settings(max_examples=25, deadline=None)
@given(nints=st.integers(1, 3), ngroups=st.integers(1, 7), ny=st.integers(1, 6),
       nx=st.integers(1, 6), seed=st.integers(0, 10_000), cores=st.sampled_from(["all", 2, "half"]),
       neighbours=st.booleans())
def test_odd_shapes_no_mutation_cores_invariant(nints, ngroups, ny, nx, seed, cores, neighbours):
    rng = np.random.default_rng(seed)
    s = make_ramp(seed, nints=nints, ngroups=ngroups, ny=ny, nx=nx, jump_frac=0.2,
                  sigma_range=(3, 50))
    s.groupdq = rng.choice(np.array([0, 0, 0, DQ.SATURATED, DQ.DO_NOT_USE], np.uint8),
                           size=s.data.shape)
    s.readnoise[rng.random((ny, nx)) < 0.2] = np.nan
    s.gain[rng.random((ny, nx)) < 0.2] = 0.0
    s.data[rng.random(s.data.shape) < 0.05] = np.nan
    before = [a.copy() for a in (s.data, s.groupdq, s.pixeldq, s.gain, s.readnoise)]
    g1, p1, o1 = ours(s, maximum_cores="1", flag_4_neighbors=neighbours)
    g2, p2, o2 = ours(s, maximum_cores=cores, flag_4_neighbors=neighbours)
    for a, b in zip(before, (s.data, s.groupdq, s.pixeldq, s.gain, s.readnoise)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_array_equal(p1, p2)
    assert o1 == o2
    # only JUMP_DET is ever added, never on DO_NOT_USE/SATURATED groups, never on group 0
    np.testing.assert_array_equal(g1 & ~np.uint8(DQ.JUMP_DET), s.groupdq)
    jump = (g1 & DQ.JUMP_DET) != 0
    assert not np.any(jump & ((g1 & (DQ.DO_NOT_USE | DQ.SATURATED)) != 0))
    assert not np.any(jump[:, 0]) or ngroups <= 2
    if ngroups > 2:
        assert np.all(p1[~(s.gain > 0)] & DQ.NO_GAIN_VALUE)
