"""Spectroscopic reference files in the layouts of stdatamodels' reference models, and the
NIRSpec MSA metadata file.

A spectroscopic reference is a ``DataModel("ref.<reftype>")`` whose meta names its
stdatamodels class in ``model_type`` (``NirspecFlatModel``, ``NirspecQuadFlatModel``,
``PathlossModel``, ``MirLrsPathlossModel``, ``BarshadowModel``, ``NrsFsPhotomModel``,
``NrsMosPhotomModel``, ``MirLrsPhotomModel``, ``NirspecSlitAreaModel``, ``NirspecMosAreaModel``,
``MiriLRSSpecwcsModel``, ``DisperserModel``, ``MSAModel``, ``WavelengthrangeModel``,
``WaveCorrModel``), or is a JSON reference (``msaoper``, ``extract1d``). Names follow the
stdatamodels tree:

- arrays are tree paths (``data``, ``quadrants.0.data``, ``apertures.1.pointsource_data``,
  ``data1x1``), table columns ``<table path>.<column>`` (``phot_table.relresponse``,
  ``flat_table.wavelength``, ``quadrants.2.flat_table.error``, ``wavetable.y_center``);
- meta keys are ``meta.*`` paths without ``meta.`` (``reftype``, ``instrument.name``,
  ``exposure.type``...), top-level tree scalars by their path (``apertures.0.name``,
  ``crval1``), and calops' own entries under ``calops.`` (e.g. ``calops.disperser``: the
  instrument-model parameters a reference carries beside jwst's fields).

FITS references are laid out by stdatamodels itself (``fits_support.to_fits``), then made
deterministic (no DATE card; the ASDF extension holds only the calops node: exact meta, array
dtypes) and written atomically with checksums, as ``store.fits`` writes. ASDF references are
the stdatamodels tree plus the calops node. Reading uses the calops node when present (so a
written reference reads back with the same identity) and otherwise opens the file with
stdatamodels and walks its tree (a real CRDS reference reads the same way).

The MSA metadata file (``_msa.fits``, MSAMETFL) travels in the uncal's meta as
``msa.shutter_info`` / ``msa.source_info`` (lists of row dicts with jwst's column names) and
is written beside the uncal by ``write_msa_metafile`` for jwst.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from store import asdf_ext
from transforms.model import DataModel

FITS_MODELS = ("NirspecFlatModel", "NirspecQuadFlatModel", "PathlossModel",
               "MirLrsPathlossModel", "BarshadowModel", "NrsFsPhotomModel", "NrsMosPhotomModel",
               "MirLrsPhotomModel", "NirspecSlitAreaModel", "NirspecMosAreaModel",
               "MiriLRSSpecwcsModel")
ASDF_MODELS = ("DisperserModel", "MSAModel", "WavelengthrangeModel", "WaveCorrModel")
JSON_REFTYPES = ("msaoper", "extract1d")  # extract1d: store.spec_products writes and reads it
SPEC_MODELS = FITS_MODELS + ASDF_MODELS
_DIGIT = re.compile(r"^\d+$")


def _errors():
    from store.fits import BadFile, BadModel

    return BadFile, BadModel


def handles(model: DataModel) -> bool:
    """Whether ``write`` writes this reference."""
    if not model.kind.startswith("ref."):
        return False
    return model.get("model_type") in SPEC_MODELS or model.kind[4:] in JSON_REFTYPES


def is_spec_reference(path: str | os.PathLike) -> bool:
    """A file this module reads: a spectroscopic FITS/ASDF model or a JSON msaoper/extract1d."""
    p = os.fspath(path)
    try:
        if p.endswith(".json"):  # (extract1d JSON is store.spec_products')
            with open(p) as f:
                doc = json.load(f)
            return isinstance(doc, Mapping) and "msaoper" in doc
        if p.endswith(".asdf"):
            import asdf

            with asdf.open(p, lazy_load=True, memmap=False) as af:
                meta = af.tree.get("meta") or {}
                return str(meta.get("model_type", "")) in ASDF_MODELS
        return str(fits.getheader(p, 0).get("DATAMODL", "")) in FITS_MODELS
    except Exception:
        return False


# --------------------------------------------------------------------------------------------
# tree paths
# --------------------------------------------------------------------------------------------

def _parts(path: str) -> list[str | int]:
    return [int(p) if _DIGIT.match(p) else p for p in path.split(".")]


def _schema_node(schema: Mapping[str, Any], parts: list) -> Mapping[str, Any] | None:
    node: Any = schema
    for p in parts:
        if node is None:
            return None
        for sub in node.get("allOf", []) if isinstance(node, Mapping) else []:
            if isinstance(sub, Mapping) and isinstance(p, str) and p in sub.get("properties", {}):
                node = sub
                break
        if isinstance(p, int):
            node = node.get("items") if isinstance(node, Mapping) else None
        else:
            node = (node.get("properties") or {}).get(p) if isinstance(node, Mapping) else None
    return node


def _is_table(schema: Mapping[str, Any], parts: list) -> bool:
    node = _schema_node(schema, parts)
    return isinstance(node, Mapping) and isinstance(node.get("datatype"), list)


def _set(tree: dict, parts: list, value: Any) -> None:
    node: Any = tree
    for i, p in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(p, int):
            while len(node) <= p:
                node.append({} if not isinstance(nxt, int) else [])
            node = node[p]
        else:
            if p not in node:
                node[p] = [] if isinstance(nxt, int) else {}
            node = node[p]
    last = parts[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
    node[last] = value


def _tree_of(model: DataModel, schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """The stdatamodels tree of a reference DataModel (tables assembled from columns)."""
    top = set((schema or {}).get("properties", {})) - {"meta"}
    tree: dict[str, Any] = {"meta": {}}
    for key, value in model.meta.items():
        if value is None:
            continue
        parts = _parts(key)
        if parts[0] == "calops":
            continue
        if parts[0] in top:
            _set(tree, parts, asdf_ext.plain(value))
        else:
            _set(tree["meta"], parts, asdf_ext.plain(value))
    tables: dict[tuple, dict[str, np.ndarray]] = {}
    for name, arr in model.arrays.items():
        parts = _parts(name)
        if len(parts) > 1 and schema is not None and _is_table(schema, parts[:-1]):
            tables.setdefault(tuple(parts[:-1]), {})[str(parts[-1])] = np.asarray(arr)
        else:
            _set(tree, parts, np.ascontiguousarray(arr))
    for tparts, cols in tables.items():
        _set(tree, list(tparts), _recarray(schema, list(tparts), cols))
    return tree


def _recarray(schema: Mapping[str, Any], parts: list, cols: Mapping[str, np.ndarray]
              ) -> np.ndarray:
    """A structured array of ``cols`` in the schema's column order and types."""
    _, BadModel = _errors()
    node = _schema_node(schema, parts)
    spec = {c["name"]: c for c in node["datatype"]}
    lengths = {len(v) for v in cols.values()}
    if len(lengths) != 1:
        raise BadModel(f"table {'.'.join(map(str, parts))}: columns of different lengths")
    n = lengths.pop()
    fields = []
    for name, c in list(spec.items()) + [(k, None) for k in cols if k not in spec]:
        a = cols.get(name)
        if a is None:
            continue
        a = np.asarray(a)
        dt = c["datatype"] if c is not None else None
        if isinstance(dt, list):  # [ascii, n]
            fields.append((name, f"S{int(dt[1])}", ()))
        elif dt is not None:
            fields.append((name, np.dtype(dt).str if dt != "float32" else "f4", a.shape[1:]))
        else:
            t = a.dtype.str if a.dtype.kind != "U" else f"S{a.dtype.itemsize // 4}"
            fields.append((name, t, a.shape[1:]))
    rec = np.zeros(n, dtype=[(f, t, s) if s else (f, t) for f, t, s in fields])
    for f, t, _ in fields:
        a = np.asarray(cols[f])
        rec[f] = np.char.encode(a, "ascii") if a.dtype.kind == "U" else a
    return rec


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------

def write(model: DataModel, path: str | os.PathLike, overwrite: bool = True) -> Path:
    """Write a spectroscopic reference (FITS, ASDF or JSON by its type); returns the path."""
    _, BadModel = _errors()
    reftype = model.kind[4:]
    if reftype in JSON_REFTYPES:
        return _write_json(model, path, overwrite)
    mt = model.get("model_type")
    if mt in ASDF_MODELS:
        return _write_asdf(model, path, overwrite)
    if mt not in FITS_MODELS:
        raise BadModel(f"{model.kind}: model_type {mt!r} is not a spectroscopic reference model "
                       f"({', '.join(SPEC_MODELS)})")
    return _write_fits(model, path, overwrite)


def _node(model: DataModel) -> dict[str, Any]:
    tree = asdf_ext.calops_tree(model.kind, model.meta)
    tree["calops"]["dtypes"] = {k: v.dtype.str for k, v in model.arrays.items()}
    return tree


def _write_fits(model: DataModel, path: str | os.PathLike, overwrite: bool) -> Path:
    from stdatamodels import fits_support
    from stdatamodels.jwst import datamodels as dm

    from store import fits as F

    _, BadModel = _errors()
    cls = getattr(dm, model.get("model_type"))
    empty = cls()
    tree = _tree_of(model, empty._schema)
    tree["meta"]["model_type"] = model.get("model_type")
    tree["meta"].setdefault("telescope", "JWST")
    try:
        inst = cls()
        inst._instance.update(tree)
        hdul = fits_support.to_fits(inst._instance, inst._schema)
    except Exception as exc:  # stdatamodels raises many kinds for a bad tree
        raise BadModel(f"{model.kind} does not fit {model.get('model_type')}: {exc}") from exc
    out = [h for h in hdul if h.name != asdf_ext.EXTNAME]
    ph = out[0]
    for card in ("DATE",):
        if card in ph.header:
            del ph.header[card]
    ph.header["FILENAME"] = Path(path).name
    ph.header["ORIGIN"] = "calops"
    copies = [fits.PrimaryHDU(header=ph.header)]
    for h in out[1:]:
        copies.append(h.copy())
    copies.append(asdf_ext.asdf_hdu(_node(model)))
    return F._write_atomic(fits.HDUList(copies), path, overwrite)


def _write_asdf(model: DataModel, path: str | os.PathLike, overwrite: bool) -> Path:
    import asdf
    from stdatamodels.jwst import datamodels as dm

    from store import fits as F

    cls = getattr(dm, model.get("model_type"))
    tree = _tree_of(model, cls()._schema)
    tree["meta"]["model_type"] = model.get("model_type")
    tree["meta"].setdefault("telescope", "JWST")
    if model.get("model_type") == "WaveCorrModel":
        tree["apertures"] = _wavecorr_apertures(model.get("calops.wavecorr") or {})
    calops = {k[len("calops."):]: asdf_ext.plain(v) for k, v in model.meta.items()
              if k.startswith("calops.")}
    if calops:
        tree["calops_model"] = calops
    tree.update(_node(model))
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass overwrite=True to replace it")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = F._tmp_name(p)
    try:
        asdf.AsdfFile(tree).write_to(tmp)
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def _wavecorr_apertures(tabs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """jwst's WaveCorrModel apertures: the zero-point offset (pixels) as a Tabular2D of
    (wavelength [m], position in the aperture)."""
    from astropy.modeling.models import Tabular2D

    out = []
    for name, t in tabs.items():
        table = np.asarray(t["offset"], np.float64)
        model = Tabular2D(points=(np.asarray(t["lam_m"], np.float64),
                                  np.asarray(t["xpos"], np.float64)),
                          lookup_table=table, bounds_error=False, fill_value=None)
        out.append({"aperture_name": str(name), "width": float(t.get("width", 0.0)),
                    "variance": np.zeros(table.shape, np.float32),
                    "zero_point_offset": model})
    return out


_JSON_HEADER = {"reftype": "reftype", "instrument": "instrument.name",
                "exp_type": "exposure.type", "useafter": "useafter", "pedigree": "pedigree",
                "description": "description", "author": "author", "telescope": "telescope"}


def _write_json(model: DataModel, path: str | os.PathLike, overwrite: bool) -> Path:
    from store import fits as F

    _, BadModel = _errors()
    reftype = model.kind[4:]
    body = "msaoper" if reftype == "msaoper" else "apertures"
    if not isinstance(model.get(body), (list, tuple)):
        raise BadModel(f"a {reftype} reference needs meta {body!r} (a list)")
    doc: dict[str, Any] = {k: model.get(m) for k, m in _JSON_HEADER.items()
                           if model.get(m) is not None}
    doc["reftype"] = reftype.upper()
    doc[body] = asdf_ext.plain(list(model.get(body)))
    doc["calops"] = {"format": asdf_ext.CALOPS_FORMAT, "kind": model.kind,
                     "meta": asdf_ext.plain(dict(model.meta))}
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass overwrite=True to replace it")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = F._tmp_name(p)
    try:
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------

def read(path: str | os.PathLike) -> DataModel:
    """A spectroscopic reference file as a ``DataModel`` (calops' or jwst's)."""
    BadFile, _ = _errors()
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise BadFile(f"{p}: no such file")
    if p.endswith(".json"):
        return _read_json(p)
    if p.endswith(".asdf"):
        return _read_asdf(p)
    return _read_fits(p)


def _walk(value: Any, prefix: str, arrays: dict, meta: dict, in_meta: bool) -> None:
    if isinstance(value, np.ndarray) and value.dtype.names:
        for col in value.dtype.names:
            a = np.asarray(value[col])
            if a.dtype.kind == "S":
                a = np.char.decode(np.char.rstrip(a), "ascii")
            arrays[f"{prefix}.{col}"] = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("="))
                                                             if a.dtype.kind in "iuf" else a)
        return
    if isinstance(value, np.ndarray):
        a = np.asarray(value)
        arrays[prefix] = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("="))
                                              if a.dtype.kind in "iufc" else a)
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            _walk(v, f"{prefix}.{k}" if prefix else str(k), arrays, meta, in_meta)
        return
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Mapping) for v in value):
        for i, v in enumerate(value):
            _walk(v, f"{prefix}.{i}", arrays, meta, in_meta)
        return
    from astropy.modeling.models import Tabular2D

    if isinstance(value, Tabular2D):  # jwst's wavecorr zero-point offsets
        meta[prefix] = {"points": [np.asarray(p, np.float64).tolist() for p in value.points],
                        "lookup_table": np.asarray(value.lookup_table, np.float64).tolist()}
        return
    try:
        meta[prefix] = asdf_ext.plain(value)
    except Exception:  # another astropy model: keep it out of the meta
        pass


def _from_tree(tree: Mapping[str, Any], reftype_default: str) -> DataModel:
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    for k, v in tree.items():
        if k in ("asdf_library", "history", "calops", "_fits_hash"):
            continue
        if k == "meta":
            _walk(v, "", arrays, meta, True)
        else:
            _walk(v, k, arrays, meta, False)
    for k in [k for k in meta if k.startswith("extra_fits.") or k in ("date", "filename")]:
        del meta[k]
    reftype = str(meta.get("reftype") or reftype_default).lower()
    return DataModel(f"ref.{reftype}", arrays, meta)


def _restore(model: DataModel, node: Mapping[str, Any]) -> DataModel:
    dtypes = node.get("dtypes") or {}
    arrays = {}
    for name, d in dtypes.items():
        a = model.arrays.get(name)
        if a is None:
            continue
        want = np.dtype(d)
        if want.kind == "U" and a.dtype.kind in "US":
            a = np.asarray(a).astype(want)
        elif a.dtype != want:
            a = np.asarray(a).astype(want)
        arrays[name] = a
    return DataModel(node.get("kind", model.kind), arrays, dict(node.get("meta") or {}))


def _read_fits(p: str) -> DataModel:
    from stdatamodels.jwst import datamodels as dm

    from store import fits as F

    BadFile, _ = _errors()
    with F._open(p) as hdul:
        node = asdf_ext.read_calops_node(hdul)
        mt = str(hdul[0].header.get("DATAMODL", ""))
        reftype = str(hdul[0].header.get("REFTYPE", ""))
    cls = getattr(dm, mt, None)
    if cls is None:
        raise BadFile(f"{p}: DATAMODL {mt!r} is not a stdatamodels reference model")
    try:  # stdatamodels decodes the unsigned-integer convention (store.fits reads raw)
        with cls(p) as m:
            model = _from_tree(m._instance, reftype)
    except Exception as exc:
        raise BadFile(f"{p}: not a readable {mt} ({exc})") from None
    if node:
        return _restore(model, node)
    return model.replace(meta={"model_type": mt})


def _read_asdf(p: str) -> DataModel:
    import asdf

    BadFile, _ = _errors()
    try:
        with asdf.open(p, lazy_load=False, memmap=False) as af:
            tree = af.tree
            node = dict(tree.get("calops") or {})
            body = {k: v for k, v in tree.items() if k not in ("calops", "calops_model")}
            model = _from_tree(body, "")
    except Exception as exc:
        raise BadFile(f"{p}: not a readable ASDF reference ({exc})") from None
    if node:
        return _restore(model, node)
    return model


def _read_json(p: str) -> DataModel:
    BadFile, _ = _errors()
    try:
        doc = json.loads(Path(p).read_text())
    except (OSError, ValueError) as exc:
        raise BadFile(f"{p}: not a readable JSON reference ({exc})") from None
    node = doc.get("calops")
    if isinstance(node, Mapping) and node.get("meta") is not None:
        return DataModel(node.get("kind", "ref.json"), {}, dict(node["meta"]))
    body = "msaoper" if "msaoper" in doc else "apertures"
    reftype = str(doc.get("reftype") or body).lower()
    meta = {m: doc[k] for k, m in _JSON_HEADER.items() if k in doc}
    meta["reftype"] = reftype.upper()
    meta[body] = doc[body]
    return DataModel(f"ref.{reftype if reftype != 'apertures' else 'extract1d'}", {}, meta)


# --------------------------------------------------------------------------------------------
# The NIRSpec MSA metadata file (MSAMETFL)
# --------------------------------------------------------------------------------------------

SHUTTER_COLUMNS = (("slitlet_id", "i4"), ("msa_metadata_id", "i4"), ("shutter_quadrant", "i4"),
                   ("shutter_row", "i4"), ("shutter_column", "i4"), ("source_id", "i4"),
                   ("background", "S1"), ("shutter_state", "S6"),
                   ("estimated_source_in_shutter_x", "f4"),
                   ("estimated_source_in_shutter_y", "f4"), ("dither_point_index", "i4"),
                   ("primary_source", "S1"), ("fixed_slit", "S7"))
SOURCE_COLUMNS = (("program", "i4"), ("source_id", "i4"), ("source_name", "S31"),
                  ("alias", "S31"), ("ra", "f8"), ("dec", "f8"), ("preimage_id", "S31"),
                  ("stellarity", "f4"))


def _table(rows: list[Mapping[str, Any]], columns: tuple, name: str) -> fits.BinTableHDU:
    rec = np.zeros(len(rows), dtype=[(c, t) for c, t in columns])
    for i, r in enumerate(rows):
        for c, t in columns:
            v = r.get(c)
            if v is None:
                v = np.nan if t[0] == "f" else ("" if t[0] == "S" else 0)
            rec[c][i] = v.encode("ascii") if isinstance(v, str) else v
    return fits.BinTableHDU(rec, name=name)


def write_msa_metafile(meta: Mapping[str, Any], path: str | os.PathLike,
                       overwrite: bool = True) -> Path:
    """Write the ``_msa.fits`` jwst reads (SHUTTER_INFO, SOURCE_INFO) from an exposure's
    ``msa.shutter_info`` / ``msa.source_info`` meta."""
    from store import fits as F

    _, BadModel = _errors()
    shutters, sources = meta.get("msa.shutter_info"), meta.get("msa.source_info")
    if not isinstance(shutters, (list, tuple)) or not isinstance(sources, (list, tuple)):
        raise BadModel("an MSA metadata file needs meta msa.shutter_info and msa.source_info")
    ph = fits.PrimaryHDU()
    ph.header["TELESCOP"] = "JWST"
    ph.header["INSTRUME"] = "NIRSPEC"
    ph.header["ORIGIN"] = "calops"
    ph.header["FILENAME"] = Path(path).name
    if meta.get("observation.program_number") is not None:
        ph.header["PROGRAM"] = str(meta["observation.program_number"])
    hdul = fits.HDUList([ph, _table(list(shutters), SHUTTER_COLUMNS, "SHUTTER_INFO"),
                         _table(list(sources), SOURCE_COLUMNS, "SOURCE_INFO")])
    return F._write_atomic(hdul, path, overwrite)


def read_msa_metafile(path: str | os.PathLike) -> dict[str, Any]:
    """``{"msa.shutter_info": [...], "msa.source_info": [...]}`` of an ``_msa.fits`` file."""
    from store import fits as F

    out: dict[str, Any] = {}
    with F._open(path) as hdul:
        for ext, key in (("SHUTTER_INFO", "msa.shutter_info"), ("SOURCE_INFO", "msa.source_info")):
            data = hdul[ext].data
            rows = []
            for r in data:
                row = {}
                for c in data.names:
                    v = r[c]
                    if isinstance(v, bytes):
                        v = v.decode("ascii").rstrip()
                    elif isinstance(v, (np.floating,)):
                        v = None if not np.isfinite(v) else float(v)
                    elif isinstance(v, (np.integer,)):
                        v = int(v)
                    row[c] = v
                rows.append(row)
            out[key] = rows
    return out


def reference_suffix(model: DataModel) -> str:
    """The file extension a reference of this type is written with."""
    if model.kind[4:] in JSON_REFTYPES:
        return ".json"
    if model.get("model_type") in ASDF_MODELS:
        return ".asdf"
    return ".fits"


__all__ = ["handles", "is_spec_reference", "write", "read", "write_msa_metafile",
           "read_msa_metafile", "reference_suffix", "SPEC_MODELS"]

