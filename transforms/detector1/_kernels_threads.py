"""``maximum_cores`` as JWST spells it, mapped onto numba's thread pool for one call.

The kernels split work by image row and every row is computed independently, so the result is
bit-identical whatever the thread count; only the wall time changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numba
import numpy as np


def n_threads(maximum_cores: str | int | None) -> int:
    """Threads for ``maximum_cores``: "none"/"1" -> 1, "quarter"/"half"/"all" -> that share of
    numba's pool (at least 1), an integer (or its string) -> that many, capped at the pool."""
    pool = numba.config.NUMBA_NUM_THREADS
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


@contextmanager
def threads(maximum_cores: str | int | None) -> Iterator[int]:
    """Run the enclosed kernels on ``n_threads(maximum_cores)`` threads, restoring afterwards."""
    want = n_threads(maximum_cores)
    before = numba.get_num_threads()
    numba.set_num_threads(want)
    try:
        yield want
    finally:
        numba.set_num_threads(before)


def readonly(a, dtype) -> np.ndarray:
    """``a`` as a C-contiguous read-only array of ``dtype`` (a view when it already is one).

    Kernel inputs are always passed read-only, so numba compiles one specialization whether the
    caller holds a writable buffer or a DataModel's read-only view (half the compile time)."""
    v = np.ascontiguousarray(a, dtype=dtype).view()
    v.flags.writeable = False
    return v


__all__ = ["n_threads", "readonly", "threads"]
