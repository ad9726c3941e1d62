"""Canonical encoding: a value as bytes such that two values encode alike exactly when they are
the same value under the documented rules (docs/identity.md).

It never uses ``hash()``, ``pickle``, ``repr`` or dict order, so an encoding is the same in every
process, on every machine and under every library version. Every encoded value starts with a
one-byte tag; variable-size payloads carry a u64 little-endian length or count. Floats:
``-0.0`` encodes as ``+0.0`` and every NaN as the one quiet NaN ``0x7ff8000000000000``; other
floats are their exact IEEE-754 binary64 bits. Arrays: their dtype normalised to little-endian,
their shape, and their C-order bytes. ``store.identity`` hashes these encodings;
``store.codec`` lays out objects with them.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from store.errors import IdentityError

_U64 = struct.Struct("<Q")
_F64 = struct.Struct(">d")
CANONICAL_NAN = b"\x7f\xf8\x00\x00\x00\x00\x00\x00"

# One-byte tags.
T_NONE, T_TRUE, T_FALSE = b"N", b"T", b"F"
T_INT, T_FLOAT, T_COMPLEX = b"I", b"D", b"X"
T_STR, T_BYTES = b"S", b"B"
T_SEQ, T_MAP, T_SET = b"L", b"M", b"U"
T_DATACLASS, T_ARRAY = b"C", b"A"


# --- encoding --------------------------------------------------------------------------------

def _len(n: int) -> bytes:
    return _U64.pack(n)


def canonical_float(x: float) -> bytes:
    """The 8 bytes a float encodes as: -0.0 -> +0.0, every NaN -> one quiet NaN."""
    if math.isnan(x):
        return CANONICAL_NAN
    if x == 0.0:
        x = 0.0
    return _F64.pack(x)


def array_descr(dtype: np.dtype) -> Any:
    """The little-endian dtype description hashed for an array (a str, or a list for records)."""
    dt = np.dtype(dtype)
    if dt.hasobject or dt.kind in "OT":
        raise IdentityError(f"arrays of dtype {dt} have no byte content to hash; "
                            "use a fixed-size dtype (numbers, bytes 'S', unicode 'U')")
    le = dt.newbyteorder("<")
    return np.lib.format.dtype_to_descr(le)


def le_contiguous(a: np.ndarray) -> np.ndarray:
    """``a`` as little-endian C-contiguous; a view (no copy) when it already is."""
    a = np.asarray(a)
    target = a.dtype.newbyteorder("<")
    if a.dtype != target:
        a = a.astype(target, order="C")
    # not np.ascontiguousarray: it turns a 0-d array into shape (1,)
    return a if a.flags.c_contiguous else a.copy(order="C")


def array_bytes(a: np.ndarray) -> memoryview:
    """A zero-copy byte view of a little-endian C-contiguous array."""
    return memoryview(a.reshape(-1).view(np.uint8))


def iter_encode(value: Any) -> Iterator[bytes | memoryview]:
    """The canonical encoding of ``value`` as a stream of parts (arrays are not copied)."""
    if value is None:
        yield T_NONE
    elif isinstance(value, (bool, np.bool_)):
        yield T_TRUE if value else T_FALSE
    elif isinstance(value, (int, np.integer)):
        s = str(int(value)).encode("ascii")
        yield T_INT + _len(len(s)) + s
    elif isinstance(value, (float, np.floating)):
        if isinstance(value, np.floating) and np.dtype(type(value)).itemsize > 8:
            raise IdentityError(f"{type(value).__name__} does not fit a float64 exactly; "
                                "convert it to float first")
        yield T_FLOAT + canonical_float(float(value))
    elif isinstance(value, (complex, np.complexfloating)):
        if isinstance(value, np.complexfloating) and np.dtype(type(value)).itemsize > 16:
            raise IdentityError(f"{type(value).__name__} does not fit a complex128 exactly")
        c = complex(value)
        yield T_COMPLEX + canonical_float(c.real) + canonical_float(c.imag)
    elif isinstance(value, (str, np.str_)):
        try:
            b = str(value).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise IdentityError(f"string with an unpaired surrogate cannot be encoded: {exc}") from None
        yield T_STR + _len(len(b)) + b
    elif isinstance(value, (bytes, bytearray, memoryview, np.bytes_)):
        b = memoryview(value).cast("B") if isinstance(value, memoryview) else bytes(value)
        yield T_BYTES + _len(len(b))
        yield b
    elif isinstance(value, np.ndarray):
        yield from _encode_array(value)
    elif isinstance(value, Mapping):
        yield from _encode_map(value.items())
    elif isinstance(value, (list, tuple)):
        yield T_SEQ + _len(len(value))
        for item in value:
            yield from iter_encode(item)
    elif isinstance(value, (set, frozenset)):
        items = sorted(encode(v) for v in value)
        yield T_SET + _len(len(items))
        yield from items
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        yield T_DATACLASS
        yield from iter_encode(type(value).__qualname__)
        yield from _encode_map((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
    else:
        raise IdentityError(f"cannot encode a value of type {type(value).__module__}."
                            f"{type(value).__qualname__} for hashing; use None, bool, int, float, "
                            "str, bytes, list, dict, set, a dataclass or a numpy array")


def _encode_map(items: Iterable[tuple[Any, Any]]) -> Iterator[bytes | memoryview]:
    pairs = sorted(((encode(k), v) for k, v in items), key=lambda kv: kv[0])
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise IdentityError("mapping has two keys with the same canonical encoding "
                            "(e.g. 1 and numpy.int64(1)); make the keys distinct")
    yield T_MAP + _len(len(pairs))
    for k, v in pairs:
        yield k
        yield from iter_encode(v)


def _encode_array(a: np.ndarray) -> Iterator[bytes | memoryview]:
    if isinstance(a, np.ma.MaskedArray):
        raise IdentityError("a masked array's mask would be lost; encode its data and mask "
                            "as two arrays")
    descr = array_descr(a.dtype)
    a = le_contiguous(a)
    yield T_ARRAY
    yield from iter_encode(descr)
    yield from iter_encode(list(a.shape))
    yield _len(a.nbytes)
    yield array_bytes(a)


def encode(value: Any) -> bytes:
    """The canonical bytes of ``value`` (see the module docstring and docs/identity.md)."""
    return b"".join(bytes(p) if isinstance(p, memoryview) else p for p in iter_encode(value))


# --- decoding (for object headers) -----------------------------------------------------------

def decode(buf: bytes | memoryview) -> Any:
    """The value of one canonical encoding: sequences come back as lists, dataclasses as dicts
    with a ``"__dataclass__"`` key, numpy scalars as Python numbers."""
    mv = memoryview(buf).cast("B")
    value, end = _decode(mv, 0)
    if end != len(mv):
        raise ValueError(f"{len(mv) - end} trailing bytes after an encoded value")
    return value


def _need(mv: memoryview, pos: int, n: int) -> None:
    if pos + n > len(mv):
        raise ValueError("encoded value is truncated")


def _read_len(mv: memoryview, pos: int) -> tuple[int, int]:
    _need(mv, pos, 8)
    return _U64.unpack_from(mv, pos)[0], pos + 8


def _decode(mv: memoryview, pos: int) -> tuple[Any, int]:
    _need(mv, pos, 1)
    tag = bytes(mv[pos:pos + 1])
    pos += 1
    if tag == T_NONE:
        return None, pos
    if tag == T_TRUE:
        return True, pos
    if tag == T_FALSE:
        return False, pos
    if tag == T_INT:
        n, pos = _read_len(mv, pos)
        _need(mv, pos, n)
        return int(bytes(mv[pos:pos + n]).decode("ascii")), pos + n
    if tag == T_FLOAT:
        _need(mv, pos, 8)
        return _F64.unpack_from(mv, pos)[0], pos + 8
    if tag == T_COMPLEX:
        _need(mv, pos, 16)
        return complex(_F64.unpack_from(mv, pos)[0], _F64.unpack_from(mv, pos + 8)[0]), pos + 16
    if tag in (T_STR, T_BYTES):
        n, pos = _read_len(mv, pos)
        _need(mv, pos, n)
        raw = bytes(mv[pos:pos + n])
        return (raw.decode("utf-8") if tag == T_STR else raw), pos + n
    if tag in (T_SEQ, T_SET):
        n, pos = _read_len(mv, pos)
        out = []
        for _ in range(n):
            item, pos = _decode(mv, pos)
            out.append(item)
        return (out if tag == T_SEQ else set(map(_hashable, out))), pos
    if tag == T_MAP:
        return _decode_map(mv, pos)
    if tag == T_DATACLASS:
        name, pos = _decode(mv, pos)
        fields, pos = _decode_map(mv, pos)
        return {"__dataclass__": name, **fields}, pos
    if tag == T_ARRAY:
        descr, pos = _decode(mv, pos)
        shape, pos = _decode(mv, pos)
        n, pos = _read_len(mv, pos)
        _need(mv, pos, n)
        dt = descr_dtype(descr)
        arr = np.frombuffer(bytes(mv[pos:pos + n]), dtype=dt).reshape(shape) if n else np.zeros(shape, dt)
        return arr, pos + n
    raise ValueError(f"unknown tag {tag!r} at byte {pos - 1}")


def _decode_map(mv: memoryview, pos: int) -> tuple[dict, int]:
    n, pos = _read_len(mv, pos)
    out: dict = {}
    for _ in range(n):
        k, pos = _decode(mv, pos)
        v, pos = _decode(mv, pos)
        out[_hashable(k)] = v
    return out, pos


def _hashable(v: Any) -> Any:
    return tuple(_hashable(x) for x in v) if isinstance(v, list) else v


def descr_dtype(descr: Any) -> np.dtype:
    """The numpy dtype of a decoded ``array_descr`` (lists back to the tuples numpy wants)."""
    if isinstance(descr, str):
        return np.dtype(descr)
    return np.lib.format.descr_to_dtype([_hashable(d) for d in descr])
