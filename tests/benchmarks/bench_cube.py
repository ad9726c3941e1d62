"""Benchmark: calops' cube_build against jwst 3.0's CubeBuildStep on the same cal files (run by
hand, not collected).

    PYTHONPATH=. nice -n 10 .venv/bin/python tests/benchmarks/bench_cube.py [weighting ...]

One noisy exposure per mode, every simulated effect on and calibrated by calops' default spec2
steps (as ``tests/transforms/ifu/test_ifu_vs_jwst.py``): MIRI MRS MIRIFUSHORT SHORT (the
channel 1 cube, 1156 x 41 x 41) and NIRSpec IFU NRS1 G140M/F100LP (1447 x 33 x 35). calops
writes the cal (IFUImageModel with its gwcs) and the cubepar reference; jwst's CubeBuildStep
builds the cube from the cal opened in stdatamodels (the file is read before the clock starts,
the cube is not written), offline (CRDS serverless, cubepar as an override: FIELD-NOTES);
calops' cube_build (the newest registered version) builds it from the same cal in memory. Each
is timed best of ``REPEAT`` after one warm-up run (imports, numba cache, gwcs); prints the
times, the ratio jwst / calops and the summed flux of both cubes. ``weighting``: drizzle
(default) and/or emsm.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_TESTS))

from jwst_offline import crds_environment

_ROOT = Path(tempfile.mkdtemp(prefix="bench_cube_"))
os.environ.update({k: v for k, v in crds_environment(_ROOT / "crds").items()
                   if k.startswith(("CRDS_", "STPIPE_"))})

import numpy as np

from store import fits as F
from transforms import registry
from transforms.ifu import file_wcs
from transforms.sim import ifu_mrs as SM
from transforms.sim import ifu_nirspec as SN
from transforms.sim import ifu_scene as SC

REPEAT = 3


def best(fn, repeat=REPEAT):
    fn()  # warm-up
    times = []
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def _app(name, version, model, refs, **kw):
    s = registry.get(name, version)
    return s.apply(model, refs, s.make_params(kw) if kw else s.make_params())


def mrs_cal():
    spec = SM.MrsExposureSpec()
    rate, _ = SM.simulate_rate(spec, SC.default_scene(spec.ra, spec.dec), seed=1)
    refs = SM.mrs_references(spec.detector, spec.band, 1)
    m = _app("assign_wcs", "2.1", rate, refs)
    for n, v in (("straylight", "1.0"), ("flat_field", "2.1"), ("fringe", "1.0"),
                 ("photom", "2.1")):
        m = _app(n, v, m, refs)
    return m, refs, {"channel": "1"}


def nrs_cal():
    eff = SN.NrsIfuEffects(imprint_dn=0.0)
    spec = SN.NrsIfuExposureSpec()
    rate, _ = SN.simulate_rate(spec, SC.nirspec_scene(spec.ra, spec.dec), seed=1, effects=eff)
    refs = SN.nrs_ifu_references(1, eff)
    m = _app("assign_wcs", "2.1", rate, refs)
    for n, v in (("msa_flagging", "1.1"), ("flat_field", "2.1"), ("photom", "2.1")):
        m = _app(n, v, m, refs)
    return m, refs, {}


def main(weightings=("drizzle",)) -> None:
    import logging

    from jwst.cube_build import CubeBuildStep

    for name in ("stpipe", "jwst", "stcal"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from stdatamodels.jwst import datamodels

    cb = registry.get("cube_build")  # the newest registered version
    version = cb.version
    print(f"load average {os.getloadavg()[0]:.1f}; calops cube_build {version}; "
          f"best of {REPEAT}")
    for name, make in (("MIRI MRS ch1 (MIRIFUSHORT SHORT)", mrs_cal),
                       ("NIRSpec IFU NRS1 G140M/F100LP", nrs_cal)):
        cal, refs, kw = make()
        path = F.write_product(cal, _ROOT / f"{name.split()[0].lower()}_cal.fits",
                               wcs=file_wcs(cal))
        cubepar = str(F.write_reference(refs["cubepar"], _ROOT / f"{path.stem}_cubepar.fits"))
        jm = datamodels.IFUImageModel(str(path))
        for w in weightings:
            params = cb.make_params({**kw, "weighting": w})
            t_c, ours = best(lambda cal=cal, refs=refs, params=params:
                             cb.apply(cal, refs, params))

            def run_jwst(jm=jm, cubepar=cubepar, w=w, kw=kw):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = CubeBuildStep.call(jm, override_cubepar=cubepar, weighting=w,
                                             output_type="channel" if kw else "band", **kw)
                return res[0] if not hasattr(res, "data") else res

            t_j, theirs = best(run_jwst)
            a = np.asarray(ours["data"], np.float64)
            b = np.asarray(theirs.data, np.float64)
            print(f"{name} {w}: cube {a.shape}; calops {t_c:.2f} s, jwst {t_j:.2f} s, "
                  f"jwst/calops {t_j / t_c:.1f}x; summed flux calops/jwst "
                  f"{np.nansum(a) / np.nansum(b):.5f}", flush=True)
        jm.close()


if __name__ == "__main__":
    main(tuple(sys.argv[1:]) or ("drizzle",))
