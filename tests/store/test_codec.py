"""The object codec: bytes are the canonical content; decoding is zero-copy and aligned."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from store import codec
from store.identity import hash_bytes, product_id
from transforms.model import DataModel

names = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=6)
arrays = hnp.arrays(st.sampled_from(["u1", "<u2", ">u2", "<f4", ">f4", "f8", "u4", "i8", "b1"]),
                    hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
metas = st.dictionaries(st.text(max_size=8), st.none() | st.booleans() | st.integers()
                        | st.floats(allow_nan=False) | st.text(max_size=5)
                        | st.lists(st.integers(), max_size=3), max_size=5)


@given(st.sampled_from(["rate", "uncal", "ref.gain"]), st.dictionaries(names, arrays, max_size=4), metas)
def test_roundtrip_and_id_is_hash_of_bytes(kind, arrs, meta):
    m = DataModel(kind, arrs, meta)
    before = {k: v.copy() for k, v in m.arrays.items()}
    buf = codec.encode_model(m)
    assert hash_bytes(buf) == product_id(m)
    back = codec.decode_model(buf)
    assert back.kind == kind and dict(back.meta) == meta
    assert sorted(back.arrays) == sorted(arrs)
    for k, a in arrs.items():
        b = back[k]
        assert b.shape == a.shape and b.dtype == a.dtype.newbyteorder("<")
        assert np.array_equal(a, b, equal_nan=True)
        assert not b.flags.writeable
    assert product_id(back) == product_id(m)
    for k, v in m.arrays.items():  # encoding never mutates its input
        assert np.array_equal(v, before[k], equal_nan=True)


def test_payloads_are_aligned_and_zero_copy():
    m = DataModel("rate", {"a": np.arange(7, dtype="u1"), "b": np.ones((3, 3), "f8"),
                           "c": np.zeros(5, "f4")}, {"k": "v"})
    buf = bytearray(codec.encode_model(m))
    back = codec.decode_model(buf)
    base = np.frombuffer(buf, np.uint8).ctypes.data
    for name in "abc":
        off = back[name].ctypes.data - base
        assert off % codec.ALIGN == 0, (name, off)
        assert np.shares_memory(back[name], np.frombuffer(buf, np.uint8))


def test_large_array_chunks_are_views_not_copies():
    data = np.arange(1 << 16, dtype="<f4")
    parts = codec.object_chunks(DataModel("rate", {"data": data}, {}))
    views = [p for p in parts if isinstance(p, memoryview)]
    assert len(views) == 1 and np.shares_memory(np.frombuffer(views[0], np.uint8), data)


def test_not_a_model():
    with pytest.raises(codec.NotAModel, match="not a calops model"):
        codec.decode_model(b"SIMPLE  =                    T")
