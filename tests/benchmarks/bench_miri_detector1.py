"""Benchmark: MIRI's detector1 chain on a full frame (1032x1024), per step, after a warm-up.

Run by hand (not collected by pytest):

    PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_miri_detector1.py [--ngroups 40]
        [--nints 2] [--emicorr]

The ramp is synthetic (a linear ramp plus read noise over the simulator's MIRIMAGE bias), with
the simulator's MIRI references; MIRI's refpix runs through the temporary plan entry of
tests/transforms/detector1/miri_helpers.py. ``chain peak alloc`` is tracemalloc's peak of new
allocations during the run (the 4-D float32 buffer included).
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transforms" / "detector1"))

import miri_helpers as mh  # noqa: E402

from transforms.detector1 import run  # noqa: E402
from transforms.model import DataModel  # noqa: E402
from transforms.sim import miri as sm  # noqa: E402
from transforms.sim import readout as ro  # noqa: E402
from transforms.sim.detector import Effects  # noqa: E402


def exposure(ng: int, ni: int) -> mh.MiriExposure:
    e = mh.exposure(sm.MiriEffects.off(), Effects.noiseless(), sub=mh.window("FULL"),
                    ngroups=2, nints=1, rate_e=np.full((1024, 1032), 50.0))
    rng = np.random.default_rng(0)
    base = np.asarray(e.uncal["data"][0, 0], np.float32)
    data = np.empty((ni, ng, 1024, 1032), np.uint16)
    for i in range(ni):
        for g in range(ng):
            data[i, g] = base + 20 * g + rng.normal(0, 4, base.shape).astype(np.float32)
    meta = dict(e.uncal.meta, **{"exposure.ngroups": ng, "exposure.nints": ni})
    tim = ro.timing("MIRI", "FAST", mh.window("FULL"), ng, ni)
    refs = dict(e.refs, dark=sm.dark_ref(e.props, mh.UA, tim, "FAST", ng, 3, sm.MiriEffects()),
                reset=sm.reset_ref(e.props, mh.UA, "FAST", ng, 3, sm.MiriEffects()))
    return mh.MiriExposure(DataModel("uncal", {"data": data}, meta), refs, None, e.props)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ngroups", type=int, default=40)
    ap.add_argument("--nints", type=int, default=2)
    ap.add_argument("--emicorr", action="store_true", help="turn emicorr on (jwst skips it)")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    e = exposure(a.ngroups, a.nints)
    plan = mh.plan(e, {"emicorr": not a.emicorr})
    run(e.uncal, plan)  # warm-up: numba kernels compiled / loaded
    times: dict[str, float] = {}
    last = [time.perf_counter()]

    def on(name, _snap):
        now = time.perf_counter()
        times[name] = now - last[0]
        last[0] = now

    tracemalloc.start()
    t0 = time.perf_counter()
    run(e.uncal, plan, on_step=on)
    total = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"MIRI full frame, {a.ngroups} groups x {a.nints} ints: {total:.1f} s, chain peak "
          f"alloc {peak / 2**20:.0f} MB (uncal {e.uncal['data'].nbytes / 2**20:.0f} MB)")
    for name, t in times.items():
        if t >= 0.005:
            print(f"  {name:20s} {t:6.2f} s")


if __name__ == "__main__":
    main()
