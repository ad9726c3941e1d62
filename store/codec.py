"""Object codec: a DataModel as bytes and back, where the bytes ARE the canonical content.

Layout of an object (format version 1)::

    0   MAGIC  b"CALOPSO\\x01"              8 bytes, the last byte is the format version
    8   H      u64 little-endian            length of the header
    16  header identity.encode({"kind", "meta", "arrays": [[name, descr, shape, offset, nbytes]]})
        zero padding to a multiple of 64
    D   array payloads in name order, each little-endian C-order, each starting at D + offset
        (offsets are multiples of 64; zero padding between payloads)

Everything is a function of the content alone (no clocks, no library versions), so the
product_id is simply the hash of these bytes: verifying an object is hashing it, and decoding is
``np.frombuffer`` on the read buffer (zero-copy; payloads 64-byte aligned in a mapped file).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

from store.errors import StoreError
from store.canonical import (
    array_bytes,
    array_descr,
    descr_dtype,
    encode,
    decode,
    le_contiguous,
)
from transforms.model import DataModel

MAGIC = b"CALOPSO\x01"
ALIGN = 64
_U64 = struct.Struct("<Q")
_ZEROS = bytes(ALIGN)


class NotAModel(StoreError):
    """Bytes that are not a calops model object (a raw blob, or a different format)."""


def _pad(n: int) -> int:
    return (-n) % ALIGN


def object_chunks(model: DataModel) -> list[bytes | memoryview]:
    """The object's bytes as a list of parts; array payloads are views, never concatenated.

    An array is copied only if it is not already little-endian and C-contiguous.
    """
    if not isinstance(model, DataModel):
        raise StoreError(f"expected a transforms.model.DataModel, got {type(model).__name__}")
    meta = dict(model.meta)
    for k in meta:
        if not isinstance(k, str):
            raise StoreError(f"metadata key {k!r} of a {model.kind} product is not a string")
    names = sorted(model.arrays)
    arrays = []
    table = []
    offset = 0
    for name in names:
        src = model.arrays[name]
        descr = array_descr(src.dtype)
        a = le_contiguous(src)
        table.append([name, descr, list(a.shape), offset, a.nbytes])
        arrays.append(a)
        offset += a.nbytes + _pad(a.nbytes)
    header = encode({"kind": model.kind, "meta": meta, "arrays": table})
    lead = MAGIC + _U64.pack(len(header)) + header
    parts: list[bytes | memoryview] = [lead, _ZEROS[: _pad(len(lead))]]
    for i, a in enumerate(arrays):
        if a.nbytes:
            parts.append(array_bytes(a))
        if i < len(arrays) - 1:
            parts.append(_ZEROS[: _pad(a.nbytes)])
    return [p for p in parts if len(p)]


def encode_model(model: DataModel) -> bytes:
    """The object's bytes in one buffer (convenient for small models; ``put`` streams instead)."""
    return b"".join(bytes(p) if isinstance(p, memoryview) else p for p in object_chunks(model))


def is_model_object(buf: bytes | memoryview) -> bool:
    """True if ``buf`` starts like a model object."""
    return bytes(memoryview(buf)[: len(MAGIC)]) == MAGIC


def decode_model(buf: Any) -> DataModel:
    """A DataModel whose arrays are read-only views into ``buf`` (bytes, mmap, memoryview)."""
    mv = memoryview(buf).cast("B") if not isinstance(buf, memoryview) or buf.format != "B" else buf
    if len(mv) < 16 or bytes(mv[:8]) != MAGIC:
        raise NotAModel("object is not a calops model (no CALOPSO\\x01 header); "
                        "read it with get_bytes")
    (hlen,) = _U64.unpack_from(mv, 8)
    if 16 + hlen > len(mv):
        raise NotAModel("object header is truncated")
    try:
        header = decode(mv[16:16 + hlen])
        kind, meta, table = header["kind"], header["meta"], header["arrays"]
    except (ValueError, KeyError, TypeError) as exc:
        raise NotAModel(f"object header is malformed: {exc}") from None
    base = 16 + hlen + _pad(16 + hlen)
    arrays: dict[str, np.ndarray] = {}
    for name, descr, shape, offset, nbytes in table:
        dt = descr_dtype(descr)
        start = base + offset
        if start + nbytes > len(mv):
            raise NotAModel(f"array {name!r} runs past the end of the object")
        if nbytes == 0 or dt.itemsize == 0:
            arr = np.zeros(shape, dt)
        else:
            arr = np.frombuffer(buf, dtype=dt, count=nbytes // dt.itemsize, offset=start)
            arr = arr.reshape(shape)
        arr.flags.writeable = False
        arrays[name] = arr
    if not isinstance(meta, Mapping):
        raise NotAModel("object metadata is not a mapping")
    return DataModel(kind, arrays, meta)
