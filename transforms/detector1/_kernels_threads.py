"""``maximum_cores`` as JWST spells it, and the threads that run the row kernels.

The kernels split work by image row and every row is computed independently, so the result is
bit-identical whatever the thread count; only the wall time changes. Rows are spread over
Python threads (``for_rows``) rather than numba's ``parallel=True``: the kernels release the
GIL (``nogil=True``), so the threads run them side by side, and a serial kernel compiles in a
fraction of the time of a parallel one (numba compiles the body of a ``prange`` loop again,
for an unsigned index, on top of its own machinery). That is most of a first run's wait on a
fresh install, where every kernel is compiled once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numba
import numpy as np

_local = threading.local()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
CHUNKS_PER_THREAD = 4  # row blocks per thread: a busy or slow block does not hold the others


def pool_size() -> int:
    """numba's configured thread count (``NUMBA_NUM_THREADS``, default: the CPUs)."""
    return int(numba.config.NUMBA_NUM_THREADS)


def n_threads(maximum_cores: str | int | None) -> int:
    """Threads for ``maximum_cores``: "none"/"1" -> 1, "quarter"/"half"/"all" -> that share of
    the pool (at least 1), an integer (or its string) -> that many, capped at the pool."""
    pool = pool_size()
    value = "1" if maximum_cores is None else str(maximum_cores).strip().lower()
    fractions = {"none": None, "quarter": 0.25, "half": 0.5, "all": 1.0}
    if value in fractions:
        frac = fractions[value]
        return 1 if frac is None else max(1, int(pool * frac))
    try:
        count = int(value)
    except ValueError:
        raise ValueError(
            f"maximum_cores must be 'none', 'quarter', 'half', 'all' or a positive integer, "
            f"got {maximum_cores!r}"
        ) from None
    if count < 1:
        raise ValueError(f"maximum_cores must be at least 1, got {count}")
    return min(count, pool)


def current_threads() -> int:
    """Threads the row kernels use here: set by ``threads()``, else the whole pool."""
    return getattr(_local, "count", None) or pool_size()


@contextmanager
def threads(maximum_cores: str | int | None) -> Iterator[int]:
    """Run the enclosed row kernels on ``n_threads(maximum_cores)`` threads (this thread's
    setting: concurrent tasks each keep their own), restoring afterwards."""
    want = n_threads(maximum_cores)
    before = getattr(_local, "count", None)
    _local.count = want
    try:
        yield want
    finally:
        _local.count = before


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=pool_size(), thread_name_prefix="calops-rows")
        return _pool


def for_rows(kernel: Callable[..., Any], nrows: int, *args: Any) -> None:
    """``kernel(lo, hi, *args)`` over row blocks [lo, hi) that cover ``range(nrows)``, on
    ``current_threads()`` threads. The kernel must treat every row independently (each row
    written by one block only) and release the GIL (``nogil=True``)."""
    k = min(current_threads(), nrows)
    if k <= 1 or getattr(_local, "in_pool", False):  # never wait on the pool from inside it
        kernel(0, nrows, *args)
        return
    nblocks = min(nrows, k * CHUNKS_PER_THREAD)
    bounds = [nrows * j // nblocks for j in range(nblocks + 1)]

    def worker(first: int) -> None:
        _local.in_pool = True
        for j in range(first, nblocks, k):
            kernel(bounds[j], bounds[j + 1], *args)

    futures = [_executor().submit(worker, t) for t in range(k)]
    for f in futures:
        f.result()


def readonly(a, dtype) -> np.ndarray:
    """``a`` as a C-contiguous read-only array of ``dtype`` (a view when it already is one).

    Kernel inputs are always passed read-only, so numba compiles one specialization whether the
    caller holds a writable buffer or a DataModel's read-only view (half the compile time)."""
    v = np.ascontiguousarray(a, dtype=dtype).view()
    v.flags.writeable = False
    return v


__all__ = ["current_threads", "for_rows", "n_threads", "pool_size", "readonly", "threads"]
