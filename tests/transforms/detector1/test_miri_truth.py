"""MIRI detector1 against the simulator's truth: each MIRI effect is removed by the step that
is meant to remove it (and is not without it), and the whole chain recovers the true rate.

Small windows (64 rows of the LRS slitless strip, 10 groups) except the reference-pixel test,
which needs the full 1032x1024 frame (jwst corrects MIRI full frames only).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import miri_helpers as mh  # noqa: E402

from transforms.sim import miri as sm  # noqa: E402
from transforms.sim.detector import Effects  # noqa: E402

OFF = sm.MiriEffects.off()


@pytest.fixture(scope="module")
def baseline():
    return mh.rate_vs_truth(mh.exposure(OFF, nints=3), mh.plan(mh.exposure(OFF, nints=3)))


@pytest.mark.parametrize("effect,step,min_bias", [
    ("reset_anomaly", "reset", 5.0),  # DN/s of median error when the step is skipped
    ("rscd", "rscd", 0.3),
    ("first_frame", "rscd", 3.0),  # jwst 3.0 flags the first group in rscd (firstframe: off)
    ("last_frame", "lastframe", 2.0),
    ("dark_transient", "dark_current", 0.5),
])
def test_each_effect_is_removed_by_its_step(baseline, effect, step, min_bias):
    e = mh.exposure(replace(OFF, **{effect: True}), nints=3)
    on = mh.rate_vs_truth(e, mh.plan(e))
    skipped = mh.rate_vs_truth(e, mh.plan(e, {step: True}))
    # with the step: as good as an exposure without the effect
    assert abs(on["median_err"] - baseline["median_err"]) < 0.15, on
    assert abs(on["rel_bright"]) < 0.006 and 0.95 < on["pull_std"] < 1.1, on
    # without it: biased
    assert abs(skipped["median_err"] - baseline["median_err"]) > min_bias, skipped


def test_emicorr_removes_out_of_phase_emi():
    """390 and 218 Hz are out of phase with this subarray's frame time (jwst skips emicorr by
    default; turned on, it takes the EMI out and the rate scatter back to the noise)."""
    e = mh.exposure(replace(OFF, emi=True, emi_scale=3.0), nints=2)
    on = mh.rate_vs_truth(e, mh.plan(e, {"emicorr": False}))
    off = mh.rate_vs_truth(e, mh.plan(e))
    assert on["pull_std"] < 1.07 < off["pull_std"], (on, off)
    fit = on["rate"].meta["emicorr.fitted"]
    truth = {name: (amp, phi) for name, _, amp, phi in e.truth.extra["emi"]}
    for name in ("Hz390", "Hz218"):
        amp, phi = truth[name]
        a, p = fit[name]["amplitude"][0], fit[name]["phase"][0]
        if a < 0:  # -a sin(x) = a sin(x + pi): the same wave
            a, p = -a, p + 0.5
        assert a == pytest.approx(amp, rel=0.1)
        assert abs((p - phi + 0.5) % 1 - 0.5) < 0.02


def test_the_whole_miri_chain_recovers_the_true_rate():
    e = mh.exposure(sm.MiriEffects(), Effects(), nints=3)  # cosmic rays too
    r = mh.rate_vs_truth(e, mh.plan(e))
    assert abs(r["rel_bright"]) < 0.005, r
    assert abs(r["pull_median"]) < 0.15 and r["pull_std"] < 1.35, r
    assert r["good"] > 0.93


@pytest.fixture(scope="module")
def full_frame():
    rate = np.full((1024, 1032), 40.0)
    return mh.exposure(replace(OFF, refcol_drift=True, drift_dn=2.0),
                       Effects(cosmic_rays=False), sub=mh.window("FULL"), ngroups=5, nints=1,
                       rate_e=rate)


def test_miri_refpix_removes_the_reference_column_drift_on_full_frames(full_frame):
    e = full_frame
    on = mh.rate_vs_truth(e, mh.plan(e))
    off = mh.rate_vs_truth(e, mh.plan(e, {"refpix": True}))
    assert on["rate"].meta["cal_step.refpix"] == "COMPLETE"
    # per output and row parity the drift is one offset per group: removed with refpix
    def per_output(r):  # median error per output and row parity (science columns)
        err = (r["rate"]["data"] - e.light_rate_dn)[:, 4:1028]
        amp = np.arange(4, 1028) % 4
        return np.array([[np.nanmedian(err[p::2, amp == a]) for p in range(2)] for a in range(4)])

    assert abs(on["median_err"]) < 0.03 and on["pull_std"] < 1.1, on
    # what is left is the noise of the reference estimate (512 pixels per side, output and
    # parity: ~0.03 DN/s on the slope of 5 groups)
    assert np.abs(per_output(on)).max() < 0.1
    assert np.abs(per_output(off)).max() > 2 * np.abs(per_output(on)).max(), per_output(off)
