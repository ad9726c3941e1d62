"""Benchmark (run by hand): time the simulator and the CRDS cache writer.

    .venv/bin/python tests/benchmarks/bench_simulate.py [small|full] [--write DIR]
"""

from __future__ import annotations

import argparse
import resource
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("program", nargs="?", default="small", choices=("small", "full"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", metavar="DIR", help="also write the CRDS cache to DIR")
    a = ap.parse_args()
    from transforms.sim.program import simulate_program

    simulate_program("small", a.seed)  # warm numba and imports
    t0, c0 = time.perf_counter(), time.process_time()
    prog = simulate_program(a.program, a.seed)
    t1, c1 = time.perf_counter(), time.process_time()
    npix = sum(e.uncal["data"].size for e in prog.exposures)
    print(f"{a.program}: {len(prog.exposures)} exposures, {npix / 1e6:.1f} M group-pixels, "
          f"{len(prog.sources)} sources: {t1 - t0:.1f} s wall, {c1 - c0:.1f} s CPU "
          f"({(t1 - t0) / npix * 1e9:.0f} ns per group-pixel)")
    if a.write:
        from catalogs.crds_cache import contexts_from_program, write_cache

        paths = write_cache(a.write, contexts_from_program(prog))
        print(f"cache: {len(paths)} files in {time.perf_counter() - t1:.1f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
