"""IFU reference files in the layouts of stdatamodels' reference models, written and read.

An IFU reference is a ``DataModel("ref.<reftype>")`` whose meta names its stdatamodels class
in ``model_type`` (``DistortionMRSModel``, ``SpecwcsModel``, ``RegionsModel``,
``WavelengthrangeModel``, ``MirMrsPhotomModel``, ``FlatModel`` (the MRS flat), ``FringeModel``,
``FringeFreqModel``, ``MirMrsXArtCorrModel``, ``MirMrsPtCorrModel``, ``MiriIFUCubeParsModel``,
``NirspecIFUCubeParsModel``, ``Extract1dIFUModel``, ``MirMrsApcorrModel``, ``NrsIfuApcorrModel``,
``IFUFOREModel``, ``IFUSlicerModel``, ``IFUPostModel``, ``NirspecFlatModel``,
``NrsMosPhotomModel``, ``NirspecIfuAreaModel``). Names follow the stdatamodels tree:

- arrays are tree paths: ``data``, ``pixsiz``, ``regions``; ``<node>.<field>`` is a table
  column when the schema gives ``<node>`` a table datatype (``ifucubepars_table.spaxelsize``,
  ``rfc_freq_short_table.ffreq``), else an array under that object (``apcorr_table.radius``,
  ``data.wavelength`` of Extract1dIFUModel);
- meta keys are ``meta.*`` paths without ``meta.``; ``tree.<path>`` keys are non-meta tree
  scalars (``tree.apcorr_table.radius_units``); ``calops.*`` keys are calops' own content (the
  instrument-model parameters a WCS reference carries beside jwst's fields).

The astropy models of the WCS references (the MRS ``alpha_model`` ... ``abv2v3_model``, the
specwcs ``model``) are not calops data: the writer is given them (``tree=``), built by
``transforms`` from the ``calops.*`` parameters (``catalogs.crds_cache.write_reference_file``
does that). Files are written by stdatamodels (``save``), with the calops node (exact meta,
array dtypes and names) in the tree, and the FITS ``DATE`` card removed so the bytes are a
function of the content. Reading uses the calops node (the same identity back) and otherwise
walks the stdatamodels tree of the declared arrays.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from store import asdf_ext
from transforms.model import DataModel

MODELS = ("DistortionMRSModel", "SpecwcsModel", "RegionsModel", "WavelengthrangeModel",
          "MirMrsPhotomModel", "FlatModel", "FringeModel", "FringeFreqModel",
          "MirMrsXArtCorrModel", "MirMrsPtCorrModel", "MiriIFUCubeParsModel",
          "NirspecIFUCubeParsModel", "Extract1dIFUModel", "MirMrsApcorrModel",
          "NrsIfuApcorrModel", "IFUFOREModel", "IFUSlicerModel", "IFUPostModel",
          "NirspecFlatModel", "NrsMosPhotomModel", "NirspecIfuAreaModel")
ASDF_MODELS = ("DistortionMRSModel", "SpecwcsModel", "WavelengthrangeModel",
               "Extract1dIFUModel", "IFUFOREModel", "IFUSlicerModel", "IFUPostModel",
               "MirMrsApcorrModel", "NrsIfuApcorrModel", "RegionsModel")
# ASDF references whose arrays are written inline in the YAML, as the CRDS files are: jwst
# 3.0's extract_1d reads Extract1dIFUModel's arrays after closing the model (ifu.py's
# get_extract_parameters), so arrays in binary blocks fail there with "Attempt to load block
# from closed file"; the operational files keep them readable in the YAML (jwst#5408).
INLINE_MODELS = ("Extract1dIFUModel",)
IFU_REFTYPES = ("distortion", "specwcs", "regions", "wavelengthrange", "photom", "flat",
                "fringe", "fringefreq", "mrsxartcorr", "mrsptcorr", "cubepar", "extract1d",
                "apcorr", "ifufore", "ifuslicer", "ifupost", "fflat", "sflat", "dflat", "area")


def _errors():
    from store.fits import BadFile, BadModel

    return BadFile, BadModel


def handles(model: DataModel) -> bool:
    """Whether ``write`` writes this reference."""
    return model.kind.startswith("ref.") and model.get("model_type") in MODELS and (
        model.get("calops.ifu_reference") is True)


def extension(model: DataModel) -> str:
    return ".asdf" if model.get("model_type") in ASDF_MODELS else ".fits"


def _model_class(name: str):
    from stdatamodels.jwst import datamodels as dm

    return getattr(dm, name)


def _is_table(m, node: str) -> np.dtype | None:
    try:
        return m.get_dtype(node)
    except (AttributeError, KeyError, ValueError, TypeError):
        return None


def _tables(model: DataModel) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {}
    for k, v in model.arrays.items():
        if "." in k:
            node, col = k.split(".", 1)
            out.setdefault(node, {})[col] = np.asarray(v)
    return out


def build(model: DataModel, tree: Mapping[str, Any] | None = None):
    """The stdatamodels model of a reference DataModel (``tree``: extra top-level tree
    entries, e.g. the astropy models of a WCS reference)."""
    _, BadModel = _errors()
    cls = _model_class(str(model.get("model_type")))
    m = cls()
    meta = {k: v for k, v in model.meta.items()
            if not k.startswith(("calops.", "tree.")) and k != "model_type"}
    for k, v in meta.items():
        try:
            m[f"meta.{k}"] = asdf_ext.plain(v)
        except KeyError:  # a key this model's schema does not have: the calops node keeps it
            continue
        except Exception as exc:  # stdatamodels raises several kinds on a value mismatch
            raise BadModel(f"{model.kind}: meta.{k}={v!r} does not fit {cls.__name__}: "
                           f"{exc}") from None
    for k, v in model.arrays.items():
        if "." not in k:
            setattr(m, k, np.asarray(v))
    for node, cols in _tables(model).items():
        dt = _is_table(m, node)
        if dt is not None:
            n = max(len(np.atleast_1d(c)) for c in cols.values())
            names = {f.lower(): f for f in dt.names}
            unknown = [c for c in cols if c.lower() not in names]
            if unknown:
                raise BadModel(f"{model.kind}: {node} has no column {unknown} in "
                               f"{cls.__name__} ({', '.join(dt.names)})")
            # columns given as (nrow, n) arrays are array cells (jwst's NELEM-style columns)
            shapes = {names[c.lower()]: np.shape(a)[1:] for c, a in cols.items()}
            dt = np.dtype([(f, dt[f].base, shapes.get(f, ())) if shapes.get(f) else
                           (f, dt[f]) for f in dt.names])
            rec = np.zeros(n, dtype=dt)
            for c, a in cols.items():
                rec[names[c.lower()]] = a
            setattr(m, node, rec)
        else:
            sub = {c: np.asarray(a) for c, a in cols.items()}
            for k, v in model.meta.items():
                if k.startswith(f"tree.{node}."):
                    sub[k[len(f"tree.{node}."):]] = v
            setattr(m, node, sub)
    for k, v in model.meta.items():
        if k.startswith("tree.") and k.count(".") == 1:
            setattr(m, k[5:], v)
    for k, v in (tree or {}).items():
        setattr(m, k, v)
    node = {"format": asdf_ext.CALOPS_FORMAT, "kind": model.kind,
            "meta": asdf_ext.plain(dict(model.meta)),
            "dtypes": {k: np.asarray(v).dtype.str for k, v in model.arrays.items()},
            "arrays": sorted(model.arrays)}
    m.instance["calops"] = node
    return m


def _asdf_tree(model: DataModel, tree: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ASDF tree of an ASDF reference, as stdatamodels would save it (written directly:
    stdatamodels' validation of large compound models takes tens of seconds; a test opens the
    files with stdatamodels and validates them)."""
    out: dict[str, Any] = {"meta": asdf_ext.nest(asdf_ext.plain(
        {k: v for k, v in model.meta.items() if not k.startswith(("calops.", "tree."))}))}
    for k, v in model.arrays.items():
        if "." not in k:
            out[k] = np.asarray(v)
    for node, cols in _tables(model).items():
        sub = {c: np.asarray(a) for c, a in cols.items()}
        for k, v in model.meta.items():
            if k.startswith(f"tree.{node}."):
                sub[k[len(f"tree.{node}."):]] = v
        out[node] = sub
    for k, v in model.meta.items():
        if k.startswith("tree.") and k.count(".") == 1:
            out[k[5:]] = v
    out.update(tree or {})
    out["calops"] = {"format": asdf_ext.CALOPS_FORMAT, "kind": model.kind,
                     "meta": asdf_ext.plain(dict(model.meta)),
                     "dtypes": {k: np.asarray(v).dtype.str for k, v in model.arrays.items()},
                     "arrays": sorted(model.arrays)}
    return out


def write(model: DataModel, path: str | os.PathLike, overwrite: bool = True,
          tree: Mapping[str, Any] | None = None) -> Path:
    """Write an IFU reference (FITS through stdatamodels, ASDF as stdatamodels lays it out),
    deterministic."""
    import asdf

    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass overwrite=True to replace it")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.stem}.{os.getpid()}.tmp{p.suffix}")
    try:
        if p.suffix == ".asdf":
            with asdf.config_context() as cfg:
                cfg.validate_on_write = False  # the layout is checked by a test instead
                inline = model.get("model_type") in INLINE_MODELS
                asdf.AsdfFile(_asdf_tree(model, tree)).write_to(
                    str(tmp), all_array_storage="inline" if inline else None)
        else:
            from astropy.io import fits as afits

            m = build(model, tree)
            node = m.instance.pop("calops")  # reference FITS carry no ASDF tree of their own
            try:
                m.save(str(tmp))
            finally:
                m.close()
            with afits.open(tmp) as h:
                hdus = [x.copy() for x in h if x.name != asdf_ext.EXTNAME]
            for hdu in hdus:
                for card in ("DATE", "IRAF-TLM"):
                    if card in hdu.header:
                        del hdu.header[card]
            hdus.append(asdf_ext.asdf_hdu({"calops": node}))
            afits.HDUList(hdus).writeto(tmp, overwrite=True, checksum=True)
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def _node_of(path: str) -> dict[str, Any] | None:
    if path.endswith(".asdf"):
        import asdf

        tree = asdf.util.load_yaml(path, tagged=False)  # the YAML only: no model conversion
        n = tree.get("calops") if isinstance(tree, Mapping) else None
        return asdf_ext.plain(dict(n)) if isinstance(n, Mapping) else None
    from astropy.io import fits as afits

    with afits.open(path) as h:
        n = asdf_ext.read_calops_node(h)
        return n or None


def is_ifu_reference(path: str | os.PathLike) -> bool:
    """A file written by ``write`` (a calops IFU reference)."""
    p = os.fspath(path)
    if not p.endswith((".fits", ".asdf")):
        return False
    try:
        n = _node_of(p)
    except Exception:  # not an ASDF/FITS file calops can parse
        return False
    return bool(n) and bool((n.get("meta") or {}).get("calops.ifu_reference"))


def read(path: str | os.PathLike) -> DataModel:
    """An IFU reference written by ``write``: its meta from the calops node, its arrays from
    the stdatamodels tree."""
    BadFile, _ = _errors()
    p = os.fspath(path)
    node = _node_of(p)
    if not node:
        raise BadFile(f"{p}: not a calops IFU reference")
    meta = dict(node.get("meta") or {})
    names = list(node.get("arrays") or [])
    arrays: dict[str, np.ndarray] = {}
    if not names:
        return DataModel(str(node.get("kind")), arrays, meta)
    if p.endswith(".asdf"):  # the tree as asdf reads it (no schema validation)
        import asdf

        with asdf.open(p, lazy_load=False, memmap=False) as af:
            for name in names:
                obj = af.tree
                for part in name.split("."):
                    obj = obj[part]
                arrays[name] = _restore(np.asarray(obj), name, node)
        return DataModel(str(node.get("kind")), arrays, meta)
    cls = _model_class(str(meta.get("model_type")))
    with cls(p) as m:
        for name in names:
            if "." in name:
                nd, col = name.split(".", 1)
                obj = getattr(m, nd)
                if hasattr(obj, "dtype") and obj.dtype.names:
                    fields = {f.lower(): f for f in obj.dtype.names}
                    a = np.asarray(obj[fields[col.lower()]])
                else:
                    a = np.asarray(getattr(obj, col) if not isinstance(obj, Mapping)
                                   else obj[col])
            else:
                a = np.asarray(getattr(m, name))
            arrays[name] = _restore(a, name, node)
    return DataModel(str(node.get("kind")), arrays, meta)


def _restore(a: np.ndarray, name: str, node: Mapping[str, Any]) -> np.ndarray:
    """An array read back with the dtype it was written with, native byte order."""
    want = (node.get("dtypes") or {}).get(name)
    a = np.array(a, copy=True)
    if want is not None:
        wd = np.dtype(want)
        if a.dtype.kind in "SU" and wd.kind in "SU":
            a = a.astype(str).astype(wd)
        elif a.dtype != wd:
            a = a.astype(wd)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("="))
    return np.ascontiguousarray(a)
