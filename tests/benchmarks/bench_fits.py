"""Benchmark of store.fits on full-frame NIRCam sizes (run by hand, not collected by pytest).

    .venv/bin/python tests/benchmarks/bench_fits.py [ngroups]

Prints wall time and peak Python-allocated memory (tracemalloc) of write/read for an uncal of
(1, ngroups, 2048, 2048) uint16 and a rate of 2048x2048 (5 float32/uint32 planes), and the time
stdatamodels takes to open the same files, for comparison.
"""

from __future__ import annotations

import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from store import fits as sf  # noqa: E402
from transforms.model import DataModel  # noqa: E402


def measure(label, fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{label:38s} {dt:7.3f} s   peak {peak / 2**20:8.1f} MiB")
    return out


def main(ngroups: int = 10) -> None:
    rng = np.random.default_rng(0)
    shape = (1, ngroups, 2048, 2048)
    data = rng.integers(0, 65536, shape, dtype=np.uint16)
    meta = {"instrument.name": "NIRCAM", "instrument.detector": "NRCA1",
            "exposure.type": "NRC_IMAGE", "exposure.readpatt": "MEDIUM8", "exposure.nframes": 8,
            "exposure.groupgap": 2, "exposure.ngroups": ngroups, "exposure.nints": 1,
            "exposure.frame_time": 10.73677, "exposure.group_time": 107.3677,
            "subarray.name": "FULL", "subarray.xstart": 1, "subarray.ystart": 1,
            "subarray.xsize": 2048, "subarray.ysize": 2048}
    uncal = DataModel("uncal", {"data": data}, meta)
    from store import asdf_ext

    measure("asdf first use (once per process)", lambda: asdf_ext.asdf_bytes({"x": 1}))
    print(f"uncal {shape} uint16 = {data.nbytes / 2**20:.0f} MiB")
    with tempfile.TemporaryDirectory() as tmp:
        up = Path(tmp) / "x_uncal.fits"
        measure("write_uncal", lambda: sf.write_uncal(uncal, up))
        back = measure("read_uncal", lambda: sf.read_uncal(up))
        assert np.array_equal(back["data"], data)
        del back
        f = lambda: rng.normal(size=(2048, 2048)).astype(np.float32)  # noqa: E731
        rate = DataModel("rate", {"data": f(), "err": f(), "dq": np.zeros((2048, 2048), np.uint32),
                                  "var_poisson": f(), "var_rnoise": f()}, meta)
        rp = Path(tmp) / "x_rate.fits"
        measure("write_product (rate, 5 planes)", lambda: sf.write_product(rate, rp))
        measure("read_product (rate)", lambda: sf.read_product(rp))
        try:
            from stdatamodels.jwst import datamodels as dm
        except ImportError:
            return

        def sdm_open(p):
            with dm.open(p) as m:
                _ = m.data.sum()

        measure("stdatamodels open uncal (comparison)", lambda: sdm_open(up))
        measure("stdatamodels open rate (comparison)", lambda: sdm_open(rp))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
