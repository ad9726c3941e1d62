"""``spectral.column_reduce``: numpy's NaN-skipping column reductions, bit for bit, without
numpy's RuntimeWarning for all-NaN columns (what ``calops run`` used to print)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from transforms.spectral import column_reduce

_SHAPES = hnp.array_shapes(min_dims=2, max_dims=2, max_side=40)
_FLOATS = st.one_of(st.floats(-1e6, 1e6, width=32), st.just(float("nan")))


def _same_bits(got, want):
    """Every number bit for bit; NaN where numpy gives NaN (its sign bit is not promised:
    the callers use only the finite columns)."""
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    fin = ~np.isnan(want)
    np.testing.assert_array_equal(got[fin].view(np.uint8), want[fin].view(np.uint8))


@settings(max_examples=60, deadline=None)
@given(a=st.one_of(*(hnp.arrays(t, _SHAPES, elements=_FLOATS) for t in (np.float64, np.float32))),
    reduce=st.sampled_from([np.nanmean, np.nanmedian]), nan_cols=st.data())
def test_same_bits_as_numpy_and_no_warning(a, reduce, nan_cols):
    a = a.copy()
    cols = nan_cols.draw(st.lists(st.integers(0, a.shape[1] - 1), max_size=a.shape[1]))
    a[:, cols] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = reduce(a, axis=0)
    before = a.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = column_reduce(reduce, a)
    _same_bits(got, np.asarray(want))
    np.testing.assert_array_equal(a, before)  # the input is not changed


@pytest.mark.parametrize("reduce", [np.nanmean, np.nanmedian])
def test_large_array_with_an_empty_column(reduce):
    # > 600 elements: nanmedian's other code path
    a = np.random.default_rng(1).normal(size=(50, 30))
    a[:, 7] = np.nan
    a[3:9, 2] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = reduce(a, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = column_reduce(reduce, a)
    _same_bits(got, want)
    assert np.isnan(got[7]) and np.isfinite(got[2])
