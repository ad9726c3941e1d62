"""Benchmark (run by hand): product_id, put and verified get of a ramp-sized model.

    .venv/bin/python tests/benchmarks/bench_store.py [--mb 256] [--dir /tmp/x]

Prints MB/s for hashing, put (hash + write + fsync + link) and get (mmap + re-hash + decode),
and the number of catalog rows per second for a batch append and a DuckDB query.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time

import numpy as np

from catalogs.catalog import Catalog
from store.identity import product_id
from store.objects import ObjectStore
from transforms.model import DataModel


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=256)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    root = args.dir or tempfile.mkdtemp(prefix="calops-bench-")
    n = args.mb * (1 << 20) // 4
    side = int((n // 8) ** 0.5)
    ramp = np.random.default_rng(0).normal(size=(1, 8, side, side)).astype("f4")
    m = DataModel("ramp", {"data": ramp, "groupdq": np.zeros(ramp.shape, "u1")}, {"a": 1})
    size = sum(a.nbytes for a in m.arrays.values()) / 1e6
    t = time.perf_counter(); pid = product_id(m); th = time.perf_counter() - t
    s = ObjectStore(root + "/store")
    t = time.perf_counter(); s.put(m); tp = time.perf_counter() - t
    t = time.perf_counter(); back = s.get(pid); float(back["data"][0, 0, 0, 0]); tg = time.perf_counter() - t
    t = time.perf_counter(); s.put(m); tp2 = time.perf_counter() - t
    print(f"model {size:.0f} MB: product_id {size / th:.0f} MB/s, put {size / tp:.0f} MB/s, "
          f"get+verify {size / tg:.0f} MB/s, put of an existing object {tp2 * 1e3:.0f} ms")
    cat = Catalog(root + "/catalog")
    rows = [{"recipe_key": f"k{i}", "product_id": f"p{i}", "run_id": "r",
             "created_at": dt.datetime.now(dt.timezone.utc)} for i in range(100_000)]
    t = time.perf_counter(); cat.write("realisations", rows, "bench"); tw = time.perf_counter() - t
    t = time.perf_counter(); cat.realisations("k5"); tq = time.perf_counter() - t
    t = time.perf_counter(); cat.realisations("k6"); tq2 = time.perf_counter() - t
    print(f"catalog: append 100k rows {tw:.2f} s, first realisations() lookup {tq * 1e3:.0f} ms "
          f"(builds the views), next one {tq2 * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
