"""calops' NIRSpec stage 1 against jwst 3.0's Detector1Pipeline run offline on the same files
(the simulator's uncal and references, given as overrides). Slow: each jwst run is 10-90 s."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nirspec_jwst import detector1, offline_env  # noqa: E402

pytest.importorskip("jwst")
pytestmark = pytest.mark.slow

from store.fits import write_reference, write_uncal  # noqa: E402
from transforms.detector1 import default_plan, run  # noqa: E402
from transforms.sim.detector import Effects  # noqa: E402
from transforms.sim.nirspec import NirspecExposureSpec, simulate_nirspec  # noqa: E402

QUIET = Effects(cosmic_rays=False, snowballs=False)
# steps both sides run; charge_migration and clean_flicker_noise are compared elsewhere
SKIP = {"charge_migration": True, "clean_flicker_noise": True}


@pytest.fixture(scope="module")
def crds_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("crds")
    offline_env(root)
    return root


def _both(tmp, exposure, run_steps=None, params=None, calops_params=None, skip=None):
    """(calops rate, jwst rate, good-pixel mask) for one simulated exposure."""
    from stdatamodels.jwst import datamodels as dm

    path = write_uncal(exposure.uncal, tmp / exposure.uncal.meta["filename"])
    refs = {rt: str(write_reference(m, tmp / f"{rt}.fits")) for rt, m in exposure.refs.items()}
    kw = {"run_steps": run_steps} if run_steps else {}
    rate_path = detector1(path, refs, tmp / "jwst", params=params, **kw)
    (tmp / "jwst").mkdir(exist_ok=True)
    with dm.ImageModel(str(rate_path)) as j:
        jdata, jdq = np.array(j.data), np.array(j.dq)
    plan = default_plan(exposure.refs, overrides=calops_params, meta=exposure.uncal.meta,
                        skip={**SKIP, **(skip or {})})
    rate = run(exposure.uncal, plan)["rate"]
    good = ((rate["dq"] & 1) == 0) & ((jdq & 1) == 0)
    return rate, jdata, jdq, good


def _prepare(tmp):
    (tmp / "jwst").mkdir(exist_ok=True)
    return tmp


def _compare(name, rate, j, jdq, good, truth=None):
    """Rates where both agree on every flag but JUMP_DET (calops' jump uses a different,
    documented test statistic: docs/detector1-ramp-jump.md) must agree to float32 rounding."""
    cdq = rate["dq"]
    same = good & ((cdq | 4) == (jdq | 4)) & (((cdq & 4) == 0) == ((jdq & 4) == 0))
    d = rate["data"][same] - j[same]
    njc, njj = int(((cdq & 4) > 0).sum()), int(((jdq & 4) > 0).sum())
    line = (f"{name}: {same.mean():.4%} of pixels agree on DQ; there max |calops - jwst| "
            f"{np.abs(d).max():.2e}, rms {d.std():.2e} DN/s; JUMP_DET calops {njc} jwst {njj}")
    if truth is not None:
        r = rate["data"][good] - truth[good]
        line += f"; calops - truth median {np.median(r):+.4f} rms {r.std():.4f}"
    print(line)
    assert np.array_equal(cdq & ~np.uint32(4), jdq & ~np.uint32(4))
    assert np.abs(d).max() < 0.05 and d.std() < 1e-3
    return d


def test_traditional_subarray(crds_root, tmp_path):
    e = simulate_nirspec(NirspecExposureSpec(detector="NRS2", subarray="ALLSLITS", ngroups=5,
                                             exp_type="NRS_MSASPEC"), seed=51, effects=QUIET)
    _compare("ALLSLITS NRS2 NRSRAPID", *_both(_prepare(tmp_path), e)[:4],
             truth=e.truth.light_rate_dn)


def test_irs2_full_frame(crds_root, tmp_path):
    e = simulate_nirspec(NirspecExposureSpec(detector="NRS1", subarray="FULL",
                                             readpatt="NRSIRS2RAPID", ngroups=3,
                                             exp_type="NRS_IFU"), seed=52, effects=QUIET)
    _compare("FULL NRS1 NRSIRS2RAPID", *_both(_prepare(tmp_path), e)[:4],
             truth=e.truth.light_rate_dn)


def test_picture_frame(crds_root, tmp_path, monkeypatch):
    """jwst's picture_frame fits a draft rate with a RampFitStep of its own, which asks CRDS for
    gain and readnoise: here the generated cache serves the simulator's references."""
    from catalogs.crds_cache import CacheRef, ContextSpec, write_cache
    from transforms.sim.nirspec import cache_entries

    e = simulate_nirspec(NirspecExposureSpec(detector="NRS2", subarray="FULL", ngroups=4,
                                             exp_type="NRS_MSASPEC"), seed=53, effects=QUIET,
                         picture_frame=0.05)
    write_cache(crds_root, [ContextSpec(tuple(CacheRef(r.reftype, r.instrument, r.filename,
                                                       dict(r.match), r.useafter, r.model)
                                              for r in cache_entries([e])))])
    monkeypatch.setenv("CRDS_CONTEXT", "jwst_0001.pmap")
    steps = ("dq_init", "saturation", "superbias", "refpix", "linearity", "dark_current",
             "jump", "picture_frame", "ramp_fit", "gain_scale")
    rate, j, jdq, good = _both(_prepare(tmp_path), e, run_steps=steps,
                               params={"picture_frame": {"mask_science_regions": False}},
                               calops_params={"picture_frame": {"mask_science_regions": False}},
                               skip={"picture_frame": False})
    assert rate.meta["cal_step.picture_frame"] == "COMPLETE"
    _compare("FULL NRS2 NRSRAPID + picture_frame", rate, j, jdq, good)
