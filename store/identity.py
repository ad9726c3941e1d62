"""Identity: the two hashes built on the canonical encoding (``store.canonical``).

``product_id`` hashes a product's canonical content (the object bytes of ``store.codec``);
``recipe_key`` hashes what a step will be run with. Ids name their algorithm
(``sha256:<hex>``); see docs/identity.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any, BinaryIO

from store.canonical import (  # noqa: F401  (re-exported: the encoding is part of identity's API)
    CANONICAL_NAN,
    T_MAP,
    T_SEQ,
    T_STR,
    array_bytes,
    array_descr,
    canonical_float,
    decode,
    descr_dtype,
    encode,
    iter_encode,
    le_contiguous,
)
from store.codec import object_chunks
from store.errors import BadId, IdentityError

_U64 = struct.Struct("<Q")
_ONE = _U64.pack(1)
KEY_SCHEMA_VERSION = 1
RECIPE_DOMAIN = b"calops.recipe\x00"
DEFAULT_ALGO = "sha256"

# Algorithms an id may name. All have 256-bit digests, so ids are "<name>:<64 hex>".
_ALGOS = {
    "sha256": lambda: hashlib.sha256(),
    "blake2b": lambda: hashlib.blake2b(digest_size=32),
}
_ID_RE = re.compile(r"^(?P<algo>[a-z0-9]+):(?P<hex>[0-9a-f]{64})$")



def algorithms() -> tuple[str, ...]:
    """Names of the hash algorithms an id may use."""
    return tuple(_ALGOS)


def hasher(algo: str = DEFAULT_ALGO) -> Any:
    """A fresh hashlib object for ``algo``; a clear error for an unknown name."""
    try:
        return _ALGOS[algo]()
    except KeyError:
        raise IdentityError(
            f"unknown hash algorithm {algo!r}; use one of: {', '.join(_ALGOS)}") from None


def parse_id(ident: str) -> tuple[str, str]:
    """(algorithm, hex digest) of a well-formed id, else ``BadId`` saying what is wrong."""
    m = _ID_RE.match(ident) if isinstance(ident, str) else None
    if not m or m["algo"] not in _ALGOS:
        raise BadId(f"{ident!r} is not an id: expected '<algorithm>:<64 lowercase hex>' "
                    f"with algorithm one of {', '.join(_ALGOS)}")
    return m["algo"], m["hex"]


def is_id(value: Any) -> bool:
    """True if ``value`` is a well-formed id string."""
    try:
        parse_id(value)
    except BadId:
        return False
    return True



# --- hashes ----------------------------------------------------------------------------------

def digest(parts: Iterable[bytes | memoryview], algo: str = DEFAULT_ALGO) -> str:
    """``"<algo>:<hex>"`` of the concatenation of ``parts`` (streamed, nothing is joined)."""
    h = hasher(algo)
    for p in parts:
        h.update(p)
    return f"{algo}:{h.hexdigest()}"


def hash_bytes(data: bytes | bytearray | memoryview, algo: str = DEFAULT_ALGO) -> str:
    """The id of raw bytes (the same id ``ObjectStore.put_bytes`` gives them)."""
    return digest([data], algo)


def hash_file(path_or_fileobj: str | os.PathLike | BinaryIO, algo: str = DEFAULT_ALGO) -> str:
    """The id of a file's bytes, read in chunks (reference files are hashed this way)."""
    if isinstance(path_or_fileobj, (str, os.PathLike)):
        try:
            with open(path_or_fileobj, "rb") as f:
                return f"{algo}:{hashlib.file_digest(f, lambda: hasher(algo)).hexdigest()}"
        except FileNotFoundError:
            raise IdentityError(f"cannot hash {os.fspath(path_or_fileobj)}: no such file") from None
    return f"{algo}:{hashlib.file_digest(path_or_fileobj, lambda: hasher(algo)).hexdigest()}"


def product_id(model: Any, algo: str = DEFAULT_ALGO) -> str:
    """The id of a product's canonical content: the hash of its object bytes (store.codec).

    That content is the kind, the metadata and every array (name, little-endian dtype, shape,
    C-order bytes) in name order, so the id does not depend on dict order or byte order.
    """
    return digest(object_chunks(model), algo)


def _params_dict(params: Any) -> Mapping[str, Any]:
    if dataclasses.is_dataclass(params) and not isinstance(params, type):
        return dataclasses.asdict(params)
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise IdentityError(f"recipe params must be a mapping or a dataclass, not {type(params).__name__}")
    return params


def recipe_key(
    step: str,
    version: str,
    params: Any,
    inputs: Mapping[str, str],
    refs: Mapping[str, tuple[str, str]],
    algo: str = DEFAULT_ALGO,
) -> str:
    """The key of a recipe: step, declared version, every parameter, inputs by role and the
    references by reftype (file name, content hash), under ``KEY_SCHEMA_VERSION``.

    Order of ``params``/``inputs``/``refs`` does not matter; their values do, typed (1 != 1.0).
    """
    return recipe_keyer(step, version, params, algo)(inputs, refs)


_BODY_KEYS = ("schema", "step", "version", "params", "inputs", "refs")
_ENC_KEYS = {k: encode(k) for k in _BODY_KEYS}
_KEY_ORDER = sorted(_BODY_KEYS, key=lambda k: _ENC_KEYS[k])  # the canonical map order


def recipe_keyer(step: str, version: str, params: Any, algo: str = DEFAULT_ALGO
                 ) -> Callable[[Mapping[str, str], Mapping[str, tuple[str, str]]], str]:
    """``recipe_key`` with step, version and params fixed and encoded once: a planner computes
    the keys of thousands of exposures' steps at the cost of their inputs and references.
    ``recipe_keyer(s, v, p)(inputs, refs) == recipe_key(s, v, p, inputs, refs)``: the bytes
    hashed are exactly the canonical encoding of the recipe's body map."""
    if not isinstance(step, str) or not step:
        raise IdentityError("recipe step must be a non-empty string")
    fixed = {"schema": encode(KEY_SCHEMA_VERSION), "step": encode(step),
             "version": encode(str(version)), "params": encode(dict(_params_dict(params)))}
    lead = RECIPE_DOMAIN + T_MAP + _U64.pack(len(_BODY_KEYS))

    def key(inputs: Mapping[str, str], refs: Mapping[str, tuple[str, str]]) -> str:
        for role, ident in inputs.items():
            if not isinstance(role, str) or not isinstance(ident, str) or not ident:
                raise IdentityError(f"recipe input {role!r} -> {ident!r}: roles and ids must be "
                                    "non-empty strings")
        for reftype, pair in refs.items():
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise IdentityError(f"reference {reftype!r} must be (filename, content hash), "
                                    f"got {pair!r}")
        values = {**fixed, "inputs": _encode_str_map(inputs), "refs": _encode_refs(refs)}
        return digest([lead, *(b for k in _KEY_ORDER for b in (_ENC_KEYS[k], values[k]))], algo)

    def bound(refs: Mapping[str, tuple[str, str]]) -> Callable[[Mapping[str, str]], str]:
        """The key as a function of the inputs alone, for fixed references: everything around
        the inputs' encoding is joined once."""
        values = {**fixed, "refs": _encode_refs(refs)}
        at = _KEY_ORDER.index("inputs")
        prefix = lead + b"".join(_ENC_KEYS[k] + values[k] for k in _KEY_ORDER[:at])
        prefix += _ENC_KEYS["inputs"]
        suffix = b"".join(_ENC_KEYS[k] + values[k] for k in _KEY_ORDER[at + 1:])
        new = _ALGOS[algo] if algo in _ALGOS else hasher

        def key_of(inputs: Mapping[str, str]) -> str:
            h = new()
            h.update(prefix + _encode_str_map(inputs) + suffix)
            return f"{algo}:{h.hexdigest()}"

        return key_of

    key.bound = bound  # type: ignore[attr-defined]
    return key


def _encode_str(s: str) -> bytes:
    b = s.encode("utf-8")
    return T_STR + _U64.pack(len(b)) + b


def _encode_str_map(d: Mapping[str, str]) -> bytes:
    """``encode(dict(d))`` for a str -> str mapping, without the generic walk."""
    if len(d) == 1:
        ((k, v),) = d.items()
        return T_MAP + _ONE + _encode_str(k) + _encode_str(v)
    pairs = sorted((_encode_str(k), _encode_str(v)) for k, v in d.items())
    return T_MAP + _U64.pack(len(pairs)) + b"".join(k + v for k, v in pairs)


_REFS_ENC: dict[tuple, bytes] = {}


def _encode_refs(refs: Mapping[str, tuple[str, str]]) -> bytes:
    """``encode({reftype: [file, hash]})``; memoised (exposures share their references)."""
    key = tuple(sorted((str(r), str(f), str(h)) for r, (f, h) in refs.items()))
    enc = _REFS_ENC.get(key)
    if enc is None:
        pairs = sorted((_encode_str(r), T_SEQ + _U64.pack(2) + _encode_str(f) + _encode_str(h))
                       for r, f, h in key)
        enc = T_MAP + _U64.pack(len(pairs)) + b"".join(k + v for k, v in pairs)
        if len(_REFS_ENC) < 100_000:
            _REFS_ENC[key] = enc
    return enc
