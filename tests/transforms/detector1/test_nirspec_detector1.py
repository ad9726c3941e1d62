"""NIRSpec traditional-readout exposures through stage 1 as development build 11.3 runs it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from catalogs import builds as buildlib
from transforms.detector1 import run
from transforms.sim.detector import Effects
from transforms.sim.nirspec import NirspecExposureSpec, simulate_nirspec


@pytest.fixture(scope="module")
def build_113(tmp_path_factory):
    return buildlib.BuildBook(tmp_path_factory.mktemp("builds") / "b").get("11.3")


def plan_for(build, exposure):
    plan = buildlib.plan(build, "detector1", exposure.uncal.meta)
    return [dataclasses.replace(p, refs={r: exposure.refs[r] for r in
                                         p.spec.reftypes + p.spec.optional_reftypes
                                         if r in exposure.refs}) for p in plan]


@pytest.mark.parametrize("det,sub,exp_type", [("NRS1", "SUBS200A1", "NRS_FIXEDSLIT"),
                                              ("NRS2", "ALLSLITS", "NRS_MSASPEC"),
                                              ("NRS2", "SUB2048", "NRS_BRIGHTOBJ")])
def test_rate_recovers_the_truth(build_113, det, sub, exp_type):
    """Dark-subtracted rate = the light the simulator put in, within the noise (no 1/f here:
    a subarray's refpix removes one offset per group, so 1/f leaves a per-exposure slope
    error that one realisation cannot average)."""
    eff = Effects(one_over_f=False, cosmic_rays=False, snowballs=False)
    e = simulate_nirspec(NirspecExposureSpec(detector=det, subarray=sub, ngroups=6,
                                             exp_type=exp_type), seed=11, effects=eff)
    out = run(e.uncal, plan_for(build_113, e))
    rate, truth = out["rate"], e.truth.light_rate_dn
    assert rate["data"].shape == truth.shape == e.uncal["data"].shape[-2:]
    good = ((rate["dq"] & 1) == 0) & ~e.props.refpix
    assert good.mean() > 0.99
    d = rate["data"][good] - truth[good]
    tg = e.uncal.meta["exposure.group_time"]
    # slope noise of 6 equally spaced groups: sqrt(12 / (n (n^2 - 1))) * rn_cds/sqrt(2) / tgroup
    expect = np.sqrt(12 / (6 * 35)) * np.median(e.props.read_noise) / tg
    assert np.std(d) == pytest.approx(expect, rel=0.25)
    # a subarray's refpix subtracts one mean of its reference pixels per group and column
    # parity: their read noise is a slope error common to the whole window
    common = expect / np.sqrt(e.props.refpix.sum() / 2)
    assert abs(np.median(d)) < 4 * common + 5 * expect / np.sqrt(d.size)
    assert rate.meta["cal_step.refpix"] == "COMPLETE"
    assert rate.meta["cal_step.clean_flicker_noise"] == "COMPLETE"  # 11.3 turns it on


def test_full_frame_with_one_over_f(build_113):
    """Full frame NRS1 with every effect on: side reference pixels take the 1/f out of each
    science column (science x = detector row), so the rate is unbiased."""
    eff = Effects(cosmic_rays=True, snowballs=False)
    e = simulate_nirspec(NirspecExposureSpec(detector="NRS1", subarray="FULL", ngroups=4,
                                             exp_type="NRS_IFU"), seed=12, effects=eff)
    out = run(e.uncal, plan_for(build_113, e))
    rate, truth = out["rate"], e.truth.light_rate_dn
    good = ((rate["dq"] & 1) == 0) & ~e.props.refpix
    d = rate["data"][good] - truth[good]
    # per output, the top/bottom reference rows' read noise is a common slope error of
    # ~0.33 DN / sqrt(5) / 10.7 s = 0.014 DN/s
    assert abs(np.median(d)) < 0.05
    # the cosmic rays were found: their pixels are not biased high
    hit = [(c.y, c.x) for c in e.truth.cosmic_rays if c.sigma > 20 and c.group > 0]
    assert hit
    ys, xs = np.array(hit).T
    assert np.nanmedian(rate["data"][ys, xs] - truth[ys, xs]) < 1.0
    assert np.mean((rate["dq"][ys, xs] & 4) != 0) > 0.9  # JUMP_DET
