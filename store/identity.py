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
from collections.abc import Iterable, Mapping
from typing import Any, BinaryIO

from store.canonical import (  # noqa: F401  (re-exported: the encoding is part of identity's API)
    CANONICAL_NAN,
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
    if not isinstance(step, str) or not step:
        raise IdentityError("recipe step must be a non-empty string")
    for role, ident in inputs.items():
        if not isinstance(role, str) or not isinstance(ident, str) or not ident:
            raise IdentityError(f"recipe input {role!r} -> {ident!r}: roles and ids must be non-empty strings")
    ref_enc = {}
    for reftype, pair in refs.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise IdentityError(f"reference {reftype!r} must be (filename, content hash), got {pair!r}")
        ref_enc[str(reftype)] = [str(pair[0]), str(pair[1])]
    body = {
        "schema": KEY_SCHEMA_VERSION,
        "step": step,
        "version": str(version),
        "params": dict(_params_dict(params)),
        "inputs": dict(inputs),
        "refs": ref_enc,
    }
    return digest([RECIPE_DOMAIN, *iter_encode(body)], algo)
