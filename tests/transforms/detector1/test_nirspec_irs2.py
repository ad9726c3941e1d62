"""NIRSpec IRS2 through stage 1: bad reference pairs, the Fourier correction, the 2048-row ramp,
against the simulator's truth (jwst itself: test_nirspec_jwst.py)."""

from __future__ import annotations

import numpy as np
import pytest

from transforms import registry
from transforms.detector1 import _kernels_irs2 as k2
from transforms.detector1 import default_plan, run
from transforms.instruments.nirspec import detector as nrs
from transforms.sim.detector import Effects
from transforms.sim.nirspec import NirspecExposureSpec, simulate_nirspec
from transforms.sim.nirspec_irs2 import irs2_truth

# a full-frame IRS2 exposure takes ~15 s to simulate and each refpix run ~5 s (warm)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def irs2_nrs2():
    eff = Effects(cosmic_rays=False, snowballs=False)
    return simulate_nirspec(NirspecExposureSpec(detector="NRS2", subarray="FULL",
                                                readpatt="NRSIRS2RAPID", ngroups=4,
                                                exp_type="NRS_MSASPEC"), seed=31, effects=eff)


@pytest.fixture(scope="module")
def before_refpix(irs2_nrs2):
    e = irs2_nrs2
    m = e.uncal
    for name in ("dq_init", "saturation", "superbias"):
        spec = registry.get(name)
        m = spec.apply(m, {r: e.refs[r] for r in spec.reftypes if r in e.refs}, spec.make_params())
    return m


@pytest.fixture(scope="module")
def after_refpix(irs2_nrs2, before_refpix):
    """refpix 1.1 and 0.9 on the same ramp."""
    out = {}
    for v in ("1.1", "0.9"):
        spec = registry.get("refpix", v)
        out[v] = spec.apply(before_refpix, {"refpix": irs2_nrs2.refs["refpix"]},
                            spec.make_params())
    return out


def test_uncal_is_a_raw_irs2_frame(irs2_nrs2):
    m = irs2_nrs2.uncal
    assert m["data"].shape == (1, 4, 3200, 2048) and m.meta["subarray.ysize"] == 2048
    assert m.meta["exposure.frame_time"] == pytest.approx(14.58889)
    assert m.meta["exposure.nrs_normal"] == 16 and m.meta["exposure.nrs_reference"] == 4
    assert irs2_nrs2.refs["mask"]["dq"].shape == (3200, 2048)
    assert irs2_nrs2.refs["superbias"]["data"].shape == (3200, 2048)
    assert irs2_nrs2.refs["saturation"]["data"].shape == (2048, 2048)


def test_robust_rejection_finds_every_intermittently_bad_pair(irs2_nrs2, before_refpix):
    m = before_refpix
    bad = k2.flag_bad_refpix(np.array(m["data"]), np.array(m["pixeldq"]), nrs.IRS2Layout(), 3.0)
    truth = irs2_truth(irs2_nrs2)
    inter = [p.science_row for p in truth.bad_pairs if p.kind != "permanent"]
    perm = [p.science_row for p in truth.bad_pairs if p.kind == "permanent"]
    assert all(bad[r] and bad[r + 1] for r in inter)
    expected = set(inter) | {r + 1 for r in inter} | set(perm) | {r + 1 for r in perm}
    false = set(np.flatnonzero(bad)) - expected
    assert len(false) <= 2 * 5  # at most about a pair per section by chance (3 sigma)


def test_refpix_removes_the_reference_pixels_and_the_correlated_noise(irs2_nrs2, before_refpix,
                                                                      after_refpix):
    e, m, out = irs2_nrs2, before_refpix, after_refpix["1.1"]
    assert out["data"].shape == (1, 4, 2048, 2048)
    assert out["pixeldq"].shape == (2048, 2048) and out["groupdq"].shape == (1, 4, 2048, 2048)
    assert np.array_equal(out["pixeldq"], nrs.from_irs2(m["pixeldq"], "NRS2"))
    # group differences of pixels without light: corrected scatter close to the white noise
    raw = nrs.from_irs2(np.asarray(m["data"][0], np.float64), "NRS2")
    cor = np.asarray(out["data"][0], np.float64)
    dark = (e.truth.light_rate_e < 0.1) & ~e.props.refpix
    rn = float(np.median(e.props.read_noise)) * np.sqrt(2)
    before = np.std((raw[3] - raw[0])[dark])
    after = np.std((cor[3] - cor[0])[dark])
    assert after < 0.65 * before  # measured: 21.6 -> 12.5 DN (white CDS noise 9.8 DN)
    assert after < 1.4 * rn
    # 1/f runs along detector rows = science columns: the column means of a group
    # difference (light taken out) carry it; after the correction they are near white
    signal = 3 * e.uncal.meta["exposure.group_time"] * (e.truth.light_rate_dn
                                                       + e.truth.dark_rate_dn)
    cols = {name: ((x[3] - x[0]) - signal)[4:-4, 4:-4].mean(axis=0)
            for name, x in (("before", raw), ("after", cor))}
    white_col = rn / np.sqrt(2040)
    assert cols["after"].std() < 0.2 * cols["before"].std()
    assert cols["after"].std() < 4 * white_col


def test_pre_10_rejection_is_what_refpix_0_9_does(after_refpix):
    """0.9 (jwst 1.11) leaves the intermittently bad pairs in, or replaces good ones: its
    corrected frames are noisier along science y than 1.1's."""
    outs = after_refpix
    assert registry.get("refpix", "0.9").make_params().ovr_corr_mitigation_ftr == 1.8
    d = {v: np.asarray(o["data"][0, 3], float) - o["data"][0, 0] for v, o in outs.items()}
    s = {v: x[4:-4, 4:-4].mean(axis=0).std() for v, x in d.items()}
    assert s["0.9"] > s["1.1"]
    print(f"column-mean rms: 1.1 {s['1.1']:.3f} DN, 0.9 {s['0.9']:.3f} DN")


def test_chain_rate_recovers_the_truth(irs2_nrs2):
    e = irs2_nrs2
    plan = default_plan(e.refs, meta=e.uncal.meta)
    assert [p.spec.version for p in plan if p.name == "refpix"] == ["1.1"]
    rate = run(e.uncal, plan)["rate"]
    truth = e.truth.light_rate_dn
    good = ((rate["dq"] & 1) == 0) & ~e.props.refpix
    d = rate["data"][good] - truth[good]
    tg = e.uncal.meta["exposure.group_time"]
    white = np.sqrt(12 / (4 * 15)) * float(np.median(e.props.read_noise)) / tg
    assert abs(np.median(d)) < 0.01
    assert np.std(d) < 1.3 * white


def test_irs2_without_its_reference_is_refused(irs2_nrs2, before_refpix):
    m = before_refpix
    spec = registry.get("refpix", "1.1")
    with pytest.raises(ValueError, match="needs the IRS2 'refpix' reference"):
        spec.apply(m, {}, spec.make_params())
    with pytest.raises(ValueError, match="preserve_irs2_refpix"):
        spec.apply(m, {"refpix": irs2_nrs2.refs["refpix"]},
                   spec.make_params({"preserve_irs2_refpix": True}))


def test_miri_goes_to_the_miri_refpix():
    """refpix 1.1 (and 0.9) dispatch MIRI exposures to refpix_miri: same product."""
    from transforms.detector1 import refpix_miri
    from transforms.model import DataModel

    rng = np.random.default_rng(3)
    data = (1000 + rng.normal(0, 5, (1, 3, 1024, 1032))).astype(np.float32)
    m = DataModel("ramp", {"data": data, "groupdq": np.zeros(data.shape, np.uint8),
                           "pixeldq": np.zeros((1024, 1032), np.uint32)},
                  {"instrument.name": "MIRI", "subarray.name": "FULL", "subarray.xstart": 1,
                   "subarray.ystart": 1, "subarray.xsize": 1032, "subarray.ysize": 1024})
    spec = registry.get("refpix", "1.1")
    want = refpix_miri.apply_miri(m, spec.make_params())
    for v in ("1.1", "0.9"):
        spec = registry.get("refpix", v)
        got = spec.apply(m, {}, spec.make_params())
        assert np.array_equal(got["data"], want["data"]), v
        assert got.get("cal_step.refpix") == want.get("cal_step.refpix")
