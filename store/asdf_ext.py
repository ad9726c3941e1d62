"""The ASDF side of JWST files: the ``ASDF`` FITS extension and nested <-> flat metadata.

stdatamodels keeps what FITS headers cannot hold (the gwcs object ``meta.wcs``) in an ``ASDF``
binary-table extension: one row, one ``ASDF_METADATA`` column holding the bytes of an ASDF file.
calops writes the same extension, with two entries:

- ``meta.wcs``: the gwcs object when the product has one (what stdatamodels reads as ``model.meta.wcs``);
- ``calops``: ``{"format": 1, "kind": ..., "meta": {...}}``, the exact calops metadata, so a file
  round-trips bit for bit although a FITS card prints a float in at most 20 characters.

Everything here works in memory; the FITS reader/writer in ``store.fits`` does the file I/O.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import asdf
import numpy as np
from astropy.io import fits

EXTNAME = "ASDF"
COLUMN = "ASDF_METADATA"
CALOPS_FORMAT = 1


def plain(value: Any) -> Any:
    """``value`` with numpy scalars/arrays and asdf containers turned into JSON types."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.str_):
        return str(value)
    return value


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"instrument.name": x}`` -> ``{"instrument": {"name": x}}`` (ASDF/stdatamodels layout)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise ValueError(f"meta key {key!r} nests under {p!r}, which already has a value")
            node = nxt
        if isinstance(node.get(parts[-1]), dict):
            raise ValueError(f"meta key {key!r} has a value and also nested keys")
        node[parts[-1]] = value
    return out


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The inverse of ``nest``: nested dicts to dotted keys (lists and other values are leaves)."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def asdf_bytes(tree: Mapping[str, Any]) -> bytes:
    """An ASDF file for ``tree``, written to memory."""
    buf = io.BytesIO()
    asdf.AsdfFile(dict(tree)).write_to(buf)
    return buf.getvalue()


def read_asdf_bytes(raw: bytes) -> dict[str, Any]:
    """The tree of in-memory ASDF bytes, fully loaded (no lazy blocks, no memmap)."""
    with asdf.open(io.BytesIO(bytes(raw)), lazy_load=False, memmap=False) as af:
        return {k: v for k, v in af.tree.items() if not k.startswith("asdf_")}


def asdf_hdu(tree: Mapping[str, Any]) -> fits.BinTableHDU:
    """The ``ASDF`` extension holding ``tree``, as stdatamodels writes it."""
    data = np.frombuffer(asdf_bytes(tree), dtype=np.uint8)[None, :]
    col = fits.Column(name=COLUMN, format=f"{data.shape[1]}B", array=data)
    return fits.BinTableHDU.from_columns([col], name=EXTNAME)


def calops_tree(kind: str, meta: Mapping[str, Any], provenance: Mapping[str, Any] | None = None,
                wcs: Any = None) -> dict[str, Any]:
    """The tree calops puts in a file's ASDF extension."""
    tree: dict[str, Any] = {
        "calops": {"format": CALOPS_FORMAT, "kind": kind, "meta": plain(dict(meta)),
                   "provenance": plain(dict(provenance or {}))},
    }
    if wcs is not None:
        tree["meta"] = {"wcs": wcs}
    return tree


def _hdu_bytes(hdul: fits.HDUList) -> bytes | None:
    if EXTNAME not in hdul:
        return None
    return np.asarray(hdul[EXTNAME].data[COLUMN][0], dtype=np.uint8).tobytes()


def read_calops_node(hdul: fits.HDUList) -> dict[str, Any]:
    """The ``calops`` entry of a FITS file's ASDF extension as plain YAML data (``{}`` if none).

    Read with ``asdf.util.load_yaml`` (no tag conversion), so extensions written by other tools,
    whose arrays point into the FITS HDUs, do not have to be resolved.
    """
    raw = _hdu_bytes(hdul)
    if raw is None:
        return {}
    tree = asdf.util.load_yaml(io.BytesIO(raw), tagged=False)
    node = tree.get("calops") if isinstance(tree, Mapping) else None
    return dict(node) if isinstance(node, Mapping) else {}


def read_hdu_wcs(hdul: fits.HDUList) -> Any:
    """The ``meta.wcs`` object of a FITS file's ASDF extension, or None."""
    raw = _hdu_bytes(hdul)
    if raw is None:
        return None
    with asdf.open(io.BytesIO(raw), lazy_load=True, lazy_tree=True, memmap=False) as af:
        meta = af.tree.get("meta")
        return meta.get("wcs") if meta is not None else None
