"""calops' MIRI detector1 against jwst 3.0's Detector1Pipeline, run offline on the same simulated
uncal with the same (calops-written) references given as overrides (FIELD-NOTES).

Both run jwst 3.0's MIRI order and skip defaults; ipc is skipped in jwst (calops has no ipc step
yet) and calops' refpix is MIRI's (``refpix_miri``, as refpix 1.1 will dispatch). What must
agree and what may not (docs/validation.md, MIRI table):

- the calibrated ramp (group_scale .. clean_flicker_noise, saved by jwst before ramp_fit) is
  bit-identical, EMI correction and full-frame refpix included;
- groupdq may differ only by jump flags (calops' jump is not stcal's: docs/detector1-ramp-jump.md);
- rates agree to float32 rounding except in the few pixels whose jump flags differ.

A small harness runs jwst in a subprocess (CRDS must be configured before jwst is imported).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import miri_helpers as mh  # noqa: E402

pytestmark = pytest.mark.slow  # one jwst pipeline run each (~1 min; the full frame ~2 min)
pytest.importorskip("jwst.pipeline", reason="jwst (test-only) runs the reference pipeline")
sdm = pytest.importorskip("stdatamodels.jwst.datamodels")

JWST_SCRIPT = r'''
import json, os, sys, tempfile
from pathlib import Path
crds = Path(tempfile.mkdtemp())
(crds / "config" / "jwst").mkdir(parents=True)
(crds / "config" / "jwst" / "server_config").write_text(repr({
    "observatory": "jwst", "operational_context": "jwst_0000.pmap",
    "edit_context": "jwst_0000.pmap", "bad_files_list": [], "force_remote_mode": False,
    "last_synced": "calops", "mappings": [], "crds_version": {"str": "calops"}}))
os.environ.update(CRDS_PATH=str(crds), CRDS_MODE="local", CRDS_OBSERVATORY="jwst",
                  CRDS_SERVER_URL="https://localhost:9/jwst-serverless-mode",
                  CRDS_CONTEXT="jwst_0000.pmap", CRDS_READONLY_CACHE="1",
                  STPIPE_DISABLE_CRDS_STEPPARS="True")
from jwst.pipeline import Detector1Pipeline
uncal, outdir = sys.argv[1], sys.argv[2]
refs, steps = json.loads(sys.argv[3]), json.loads(sys.argv[4])
pipe = Detector1Pipeline()
for name, pars in steps.items():
    for k, v in pars.items():
        setattr(getattr(pipe, name), k, v)
for name in pipe.step_defs:
    step = getattr(pipe, name)
    if not step.skip:
        for rt in step.reference_file_types:
            setattr(step, f"override_{rt}", refs.get(rt, "N/A"))
pipe.save_results = True
pipe.output_dir = outdir
pipe.save_calibrated_ramp = True
pipe.run(uncal)
'''


def run_jwst_detector1(uncal: Path, outdir: Path, refs: dict[str, str],
                       steps: dict[str, dict]) -> tuple:
    """jwst's Detector1Pipeline on ``uncal``; every reftype from ``refs`` (or N/A). Returns the
    (rate, calibrated ramp) stdatamodels."""
    root = str(Path(__file__).resolve().parents[3])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get(
        "PYTHONPATH")]))}
    p = subprocess.run([sys.executable, "-c", JWST_SCRIPT, str(uncal), str(outdir),
                        json.dumps(refs), json.dumps(steps)], capture_output=True, text=True,
                       timeout=1200, env=env)
    assert p.returncode == 0, p.stderr[-4000:]
    stem = uncal.name.replace("_uncal.fits", "")
    return sdm.open(str(outdir / f"{stem}_rate.fits")), sdm.open(str(outdir / f"{stem}_ramp.fits"))


def simulate(tmp_path: Path, subarray: str, ngroups: int, nints: int):
    """A one-exposure MIRI program (all MIRI effects on), its uncal and references on disk."""
    from catalogs.crds_cache import write_reference_file
    from store.fits import write_uncal
    from transforms.sim.program import ExposureSpec, miri_program, simulate_program

    spec = miri_program(exposures=(ExposureSpec(
        "MIRIMAGE", "F770W", "N/A", "FAST", subarray, ngroups, nints, "2024-03-10T06:00:00",
        3, 1, 1),), nstars=30, ngalaxies=10, field_radius_arcsec=20.0)
    prog = simulate_program(spec, seed=5)
    e = prog.exposures[0]
    uncal = write_uncal(e.uncal, tmp_path / e.truth.name)
    paths, models = {}, {}
    for rt, fn in prog.expected[0][e.truth.name].items():
        if fn == "N/A":
            paths[rt] = "N/A"
            continue
        r = next(r for r in prog.contexts[0] if r.filename == fn)
        paths[rt] = str(write_reference_file(r.model, tmp_path / fn))
        models[rt] = r.model
    return e, uncal, paths, models


def compare(tmp_path, subarray, ngroups, nints, emicorr: bool):
    from transforms.detector1 import run as run_chain

    e, uncal, paths, refs = simulate(tmp_path, subarray, ngroups, nints)
    steps = {"ipc": {"skip": True}, "emicorr": {"skip": not emicorr}}
    jrate, jramp = run_jwst_detector1(uncal, tmp_path, paths, steps)
    ex = mh.MiriExposure(e.uncal, refs, e.truth.ramp, None)
    snaps = {}
    out = run_chain(e.uncal, mh.plan(ex, {"emicorr": not emicorr}),
                    on_step=lambda n, snap: snaps.__setitem__(n, snap())
                    if n == "clean_flicker_noise" else None)
    return e, out["rate"], snaps["clean_flicker_noise"], jrate, jramp


def check(rate, ramp, jrate, jramp, truth):
    # the calibrated ramp: bit for bit
    np.testing.assert_array_equal(np.asarray(ramp["data"]), jramp.data)
    np.testing.assert_array_equal(np.asarray(ramp["pixeldq"]), jramp.pixeldq)
    gd = np.asarray(ramp["groupdq"]) != jramp.groupdq
    jump_bits = np.uint8(4 | 1)  # JUMP_DET, and the DO_NOT_USE stcal's jump sets with it
    assert not ((np.asarray(ramp["groupdq"]) ^ jramp.groupdq) & ~jump_bits).any()
    assert gd.mean() < 1e-3
    # rates: float32 rounding, except where the jump flags differ
    good = ((rate["dq"] & 1) == 0) & ((jrate.dq & 1) == 0)
    diff = (rate["data"] - jrate.data)[good].astype(np.float64)
    rel = np.abs(diff) / np.maximum(np.abs(jrate.data[good]), 1e-3)
    assert np.median(diff) == 0.0
    assert np.mean(rel > 1e-6) < 0.005, np.mean(rel > 1e-6)
    assert np.mean(rate["dq"] == jrate.dq) > 0.995
    # and both against the truth
    for r in (rate["data"], jrate.data):
        bright = good & (truth > np.percentile(truth[good], 95))
        assert abs(np.median((r - truth)[bright] / truth[bright])) < 0.02


def test_miri_subarray_with_emicorr_agrees_with_jwst(tmp_path):
    e, rate, ramp, jrate, jramp = compare(tmp_path, "SLITLESSPRISM", 8, 2, emicorr=True)
    assert jrate.meta.cal_step.emicorr == rate.meta["cal_step.emicorr"] == "COMPLETE"
    for step in ("reset", "rscd", "lastframe"):
        assert getattr(jrate.meta.cal_step, step) == rate.meta[f"cal_step.{step}"] == "COMPLETE"
    assert jrate.meta.rscd.ngroups_skip_int2p == rate.meta["rscd.ngroups_skip_int2p"]
    check(rate, ramp, jrate, jramp, e.truth.light_rate_dn)


def test_miri_full_frame_refpix_agrees_with_jwst(tmp_path):
    e, rate, ramp, jrate, jramp = compare(tmp_path, "FULL", 6, 2, emicorr=False)
    assert jrate.meta.cal_step.refpix == rate.meta["cal_step.refpix"] == "COMPLETE"
    check(rate, ramp, jrate, jramp, e.truth.light_rate_dn)
