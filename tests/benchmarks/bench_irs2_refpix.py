"""Benchmark: NIRSpec IRS2 refpix on a full frame (3200 x 2048 raw rows per group), calops'
refpix 1.1 against jwst 3.0's RefPixStep on the same ramp and reference; prints the times,
the ratio and how far the two results are apart.

Run by hand (not collected by pytest):

    PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_irs2_refpix.py [--ngroups 5]
        [--detector NRS1] [--repeat 2] [--workers 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transforms" / "detector1"))
from nirspec_jwst import offline_env  # noqa: E402

offline_env(tempfile.mkdtemp())

from store.fits import write_reference  # noqa: E402
from transforms import registry  # noqa: E402
from transforms.sim.detector import Effects  # noqa: E402
from transforms.sim.nirspec import NirspecExposureSpec, simulate_nirspec  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ngroups", type=int, default=5)
    ap.add_argument("--detector", default="NRS1")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    e = simulate_nirspec(NirspecExposureSpec(detector=args.detector, subarray="FULL",
                                             readpatt="NRSIRS2RAPID", ngroups=args.ngroups,
                                             exp_type="NRS_IFU"), seed=61,
                         effects=Effects(cosmic_rays=False, snowballs=False))
    m = e.uncal
    for name in ("dq_init", "saturation", "superbias"):
        spec = registry.get(name)
        m = spec.apply(m, {r: e.refs[r] for r in spec.reftypes if r in e.refs},
                       spec.make_params())
    spec = registry.get("refpix", "1.1")
    refs = {"refpix": e.refs["refpix"]}
    spec.apply(m, refs, spec.make_params())  # warm-up: numba kernels load
    t_c = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        out = spec.apply(m, refs, spec.make_params())
        t_c.append(time.perf_counter() - t)

    from stdatamodels.jwst import datamodels as dm
    from jwst.refpix import RefPixStep

    path = write_reference(e.refs["refpix"], Path(tempfile.mkdtemp()) / "refpix.fits")
    t_j = []
    for _ in range(args.repeat):
        rm = dm.RampModel(data=np.array(m["data"]), pixeldq=np.array(m["pixeldq"]),
                          groupdq=np.array(m["groupdq"]))
        rm.meta.instrument.name = "NIRSPEC"
        rm.meta.instrument.detector = args.detector
        rm.meta.exposure.nrs_normal, rm.meta.exposure.nrs_reference = 16, 4
        rm.meta.subarray.name = "FULL"
        rm.meta.subarray.fastaxis, rm.meta.subarray.slowaxis = m.meta["subarray.fastaxis"], \
            m.meta["subarray.slowaxis"]
        step = RefPixStep()
        step.override_refpix, step.override_sirskernel = str(path), "N/A"
        t = time.perf_counter()
        jo = step.run(rm)
        t_j.append(time.perf_counter() - t)
    d = np.asarray(out["data"]) - jo.data
    print(f"IRS2 refpix, {args.detector}, {args.ngroups} groups, full frame:")
    print(f"  calops refpix 1.1: {min(t_c):6.2f} s   jwst 3.0 RefPixStep: {min(t_j):6.2f} s   "
          f"ratio jwst/calops {min(t_j) / min(t_c):.1f}x")
    print(f"  max |calops - jwst| {np.abs(d).max():.2e} DN, rms {d.std():.2e} DN")


if __name__ == "__main__":
    main()
