"""Integral-field products as JWST files: IFUImageModel (an IFU ``cal``), IFUCubeModel
(``s3d``, one cube or several) and MRSMultiSpecModel (a MIRI MRS ``x1d``, with the residual
fringe columns); and the split of a multi-cube product into per-cube files.

Layouts (as stdatamodels writes them; tests open the files in stdatamodels and jwst's
cube_build reads the cal files):

- **IFUImageModel**: ``SCI``, ``DQ``, ``ERR``, ``VAR_POISSON``, ``VAR_RNOISE``, ``VAR_FLAT`` and
  any other plane (``REGIONS`` int32 for NIRSpec); the exposure's keywords; the gwcs, when the
  writer is given one, as ``meta.wcs`` in the ASDF extension (jwst's MRS / coordinate-based
  NIRSpec IFU layout, built by ``transforms.ifu.gwcs``).
- **IFUCubeModel**: ``SCI``, ``ERR``, ``DQ`` (3-D), ``WMAP`` (the weight map) and ``WCS-TABLE``
  (one row, a ``WAVELENGTH`` float32 cell of shape (1, nz), TDIM ``(1,nz)``); the cube WCS
  keywords (CRVAL/CDELT/CRPIX/CTYPE/CUNIT 1-3, PC, WCSAXES) in the SCI header, ``ifu.*`` as
  the schema places them; the gwcs (``transforms.ifu.cube_gwcs``) as ``meta.wcs``. A product of
  several cubes repeats the set with EXTVER = cube index + 1 (stdatamodels reads the first;
  ``calops export`` writes one file per cube, ``split_by_cube``).
- **MRSMultiSpecModel**: one ``EXTRACT1D`` table per spectrum with stdatamodels'
  mrs_spectable columns (the 18 of spec_table plus RF_FLUX, RF_SURF_BRIGHT, RF_BACKGROUND).

Every file carries the calops node in its ASDF extension (exact meta, dtypes, and where each
array lives), so ``read`` gives back the same product id. Files jwst wrote are read from their
headers and extensions (an IFU cal then has no ``wcs.ifu``: calops cannot rebuild its
instrument model from a foreign gwcs).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits as afits

from store import asdf_ext
from store.keywords import Keyword, product_table
from transforms.model import DataModel

IFU_MODELS = ("IFUImageModel", "IFUCubeModel", "MRSMultiSpecModel")
IFU_EXP_TYPES = ("MIR_MRS", "NRS_IFU")
P, SCI = "PRIMARY", "SCI"
_PLANES = {"data": "SCI", "dq": "DQ", "err": "ERR", "var_poisson": "VAR_POISSON",
           "var_rnoise": "VAR_RNOISE", "var_flat": "VAR_FLAT", "regions": "REGIONS",
           "area": "AREA", "weightmap": "WMAP"}
_HDU_PLANE = {v: k for k, v in _PLANES.items()}
_IMAGE_ORDER = ("data", "dq", "err", "var_poisson", "var_rnoise", "var_flat")
_CUBE_ORDER = ("data", "err", "dq", "weightmap")
_DTYPES = {"data": "float32", "dq": "uint32", "err": "float32", "var_poisson": "float32",
           "var_rnoise": "float32", "var_flat": "float32", "weightmap": "float32",
           "regions": "int32"}
RF_COLUMNS = ("rf_flux", "rf_surf_bright", "rf_background")


def _kw(key: str, keyword: str, hdu: str, typ: type) -> Keyword:
    return Keyword(key, keyword, hdu, typ, "meta." + key)


# keywords an IFU file needs that the imaging/spectroscopy tables may not have
EXTRA: tuple[Keyword, ...] = (
    _kw("instrument.band", "BAND", P, str),
    _kw("instrument.grating", "GRATING", P, str),
    _kw("observation.bkgdtarg", "BKGDTARG", P, bool),
    _kw("target.source_type", "SRCTYPE", P, str),
    _kw("target.source_type_apt", "SRCTYAPT", P, str),
    _kw("wcsinfo.dispersion_direction", "DISPAXIS", SCI, int),
    _kw("wcsinfo.wcsaxes", "WCSAXES", SCI, int),
    *(_kw(f"wcsinfo.{k}{i}", f"{k.upper()}{i}", SCI, t) for i in (1, 2, 3)
      for k, t in (("crval", float), ("cdelt", float), ("crpix", float), ("ctype", str),
                   ("cunit", str))),
    *(_kw(f"wcsinfo.pc{i}_{j}", f"PC{i}_{j}", SCI, float) for i in (1, 2, 3)
      for j in (1, 2, 3)),
    _kw("wcsinfo.ps3_0", "PS3_0", SCI, str),
    _kw("wcsinfo.ps3_1", "PS3_1", SCI, str),
    _kw("ifu.flux_extension", "FLUXEXT", P, str),
    _kw("ifu.error_extension", "ERREXT", P, str),
    _kw("ifu.dq_extension", "MASKEXT", P, str),
    _kw("ifu.roi_spatial", "ROIS", P, float),
    _kw("ifu.roi_wave", "ROIW", P, float),
    _kw("ifu.weighting", "WTYPE", P, str),
    _kw("ifu.weight_power", "WPOWER", P, float),
    _kw("bunit_err", "BUNIT", "ERR", str),
)


def _errors():
    from store.fits import BadFile, BadModel

    return BadFile, BadModel


def table() -> dict[str, Keyword]:
    t = dict(product_table())
    used = {(k.hdu, k.keyword) for k in t.values()}
    for k in EXTRA:
        if k.key not in t and (k.hdu, k.keyword) not in used:
            t[k.key] = k
    return t


def _is_ifu(meta: Mapping[str, Any]) -> bool:
    return str(meta.get("exposure.type", "")).upper() in IFU_EXP_TYPES


def handles(model: DataModel) -> bool:
    """Whether ``write`` writes this product: an IFU cal (2-D, with or without its model), an
    s3d, or an MRS x1d (``model_type`` MRSMultiSpecModel)."""
    if model.kind == "s3d":
        return True
    if model.kind == "cal" and _is_ifu(model.meta) and "slits" not in model.meta:
        d = model.arrays.get("data")
        return d is not None and d.ndim == 2 and "wavelength" not in model.arrays
    return model.kind == "x1d" and model.get("model_type") == "MRSMultiSpecModel"


def is_ifu_file(path: str | os.PathLike) -> bool:
    try:
        h = afits.getheader(os.fspath(path), 0)
    except (OSError, ValueError):
        return False
    return str(h.get("DATAMODL", "")) in IFU_MODELS


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------

def _primary(model_type: str) -> afits.PrimaryHDU:
    ph = afits.PrimaryHDU()
    ph.header["DATAMODL"] = model_type
    ph.header["TELESCOP"] = "JWST"
    ph.header["ORIGIN"] = "calops"
    ph.header["CO_IFU"] = (True, "written by calops store.ifu_products")
    return ph


def _check(arrays: Mapping[str, np.ndarray], what: str, ndim: int) -> None:
    _, BadModel = _errors()
    if "data" not in arrays:
        raise BadModel(f"{what} has no 'data' array")
    if arrays["data"].ndim != ndim:
        raise BadModel(f"{what} data must be {ndim}-D, got {arrays['data'].shape}")
    for name, want in _DTYPES.items():
        a = arrays.get(name)
        if a is not None and a.dtype != np.dtype(want):
            raise BadModel(f"{what} array {name!r} is {a.dtype}; the JWST layout needs {want}")


def _image_hdus(arrays: Mapping[str, np.ndarray], order: tuple[str, ...], ver: int | None,
                prefix: str, layout: dict[str, list]) -> list[afits.ImageHDU]:
    names = [n for n in order if n in arrays] + sorted(
        n for n in arrays if n not in order and n != "wavelength" and np.ndim(arrays[n]) >= 2)
    out = []
    for n in names:
        ext = _PLANES.get(n, n.upper())
        h = afits.ImageHDU(np.ascontiguousarray(arrays[n]), name=ext, ver=ver or 1)
        if ver is not None:
            h.header["EXTVER"] = ver
        out.append(h)
        layout[prefix + n] = [ext, ver or 1, None]
    return out


def _wavetable(w: np.ndarray, ver: int | None) -> afits.BinTableHDU:
    w = np.asarray(w, np.float32)
    n = w.size
    col = afits.Column(name="WAVELENGTH", format=f"{n}E", dim=f"(1,{n})",
                       array=w.reshape(1, n, 1))
    h = afits.BinTableHDU.from_columns([col], name="WCS-TABLE")
    h.header["EXTVER"] = ver or 1
    return h


def _put(meta: Mapping[str, Any], t: Mapping[str, Keyword], ph: afits.PrimaryHDU,
         hdus: list) -> None:
    from store import fits as F

    sci = next((h.header for h in hdus if h.name == "SCI"), None)
    err = next((h.header for h in hdus if h.name == "ERR"), None)
    prim = {k: v for k, v in meta.items() if k in t and t[k].hdu in (P, SCI)
            and not isinstance(v, (dict, list))}
    F._put_meta(prim, {k: v for k, v in t.items() if v.hdu in (P, SCI)}, ph.header, sci)
    if err is not None:
        for k, v in meta.items():
            if k in t and t[k].hdu == "ERR" and isinstance(v, str):
                err[t[k].keyword] = v


def write(model: DataModel, path: str | os.PathLike,
          provenance: Mapping[str, Any] | None = None, wcs: Any = None,
          overwrite: bool = True) -> Path:
    """Write an IFU product in its JWST layout. ``wcs``: the gwcs (IFU cal; a single cube), or
    a mapping cube name -> gwcs (multi-cube s3d; spectrum name -> gwcs for an x1d)."""
    from store import fits as F
    from store import spec_products as SP

    _, BadModel = _errors()
    prov = F._provenance_meta(provenance)
    layout: dict[str, list] = {}
    hdus: list = []
    tree_extra: dict[str, Any] = {}
    t = table()
    if model.kind == "cal":
        model_type = "IFUImageModel"
        _check(model.arrays, "IFU cal", 2)
        hdus = _image_hdus(model.arrays, _IMAGE_ORDER, None, "", layout)
        meta_for_header = model.meta
        if wcs is not None:
            tree_extra["meta"] = {"wcs": wcs}
    elif model.kind == "s3d":
        model_type = "IFUCubeModel"
        names = [str(c) for c in model.meta.get("cubes") or []]
        groups = ([(n, {k[len(n) + 1:]: v for k, v in model.arrays.items()
                        if k.startswith(f"{n}:")}) for n in names] if names
                  else [(None, dict(model.arrays))])
        wmap = wcs if isinstance(wcs, Mapping) else {None: wcs}
        for i, (name, arrays) in enumerate(groups, start=1):
            _check(arrays, f"cube {name or ''}", 3)
            if "wavelength" not in arrays:
                raise BadModel(f"cube {name or ''} has no wavelength table")
            ver = i if names else None
            pre = f"{name}:" if name else ""
            hdus += _image_hdus(arrays, _CUBE_ORDER, ver, pre, layout)
            wt = _wavetable(arrays["wavelength"], ver)
            hdus.append(wt)
            layout[pre + "wavelength"] = ["WCS-TABLE", ver or 1, "WAVELENGTH"]
            if name is not None:  # this cube's WCS keywords in its SCI header
                sci = next(h for h in hdus if h.name == "SCI" and int(h.ver) == i)
                cm = {k[len(f"cube.{name}."):]: v for k, v in model.meta.items()
                      if k.startswith(f"cube.{name}.")}
                full = {**{k: v for k, v in model.meta.items() if not k.startswith("cube.")},
                        **cm}
                tmp = afits.PrimaryHDU()
                F._put_meta({k: v for k, v in full.items() if k in t and t[k].hdu == SCI
                             and not isinstance(v, (dict, list))},
                            {k: v for k, v in t.items() if v.hdu in (P, SCI)}, tmp.header,
                            sci.header)
        meta_for_header = (model.meta if not names else
                           {**model.meta, **{k[len(f"cube.{names[0]}."):]: v
                                             for k, v in model.meta.items()
                                             if k.startswith(f"cube.{names[0]}.")}})
        w0 = wmap.get(names[0] if names else None) if wmap else None
        if w0 is not None:
            tree_extra["meta"] = {"wcs": w0}
    elif model.kind == "x1d":
        model_type = "MRSMultiSpecModel"
        specs = []
        wmap = wcs if isinstance(wcs, Mapping) else {}
        order = SP.SPEC_COLUMNS + RF_COLUMNS
        for i, (name, cols, meta) in enumerate(SP._spectra(model), start=1):
            units = SP._units(meta)
            fu = units.get("flux", "Jy")
            units.update({"rf_flux": fu, "rf_surf_bright": units.get("surf_bright", "MJy/sr"),
                          "rf_background": units.get("background", "MJy/sr")})
            h = SP._table_hdu(cols, order, "EXTRACT1D", i, units)
            SP._put(h.header, {**meta, "name": meta.get("name", name)}, SP.SPEC_KEYWORDS)
            for c in cols:
                layout[f"{name}:{c}"] = ["EXTRACT1D", i, c.upper()]
            hdus.append(h)
            w = wmap.get(name)
            specs.append({"meta": {"wcs": w}} if w is not None else {})
        if any(specs):
            tree_extra["spec"] = specs
        meta_for_header = {k: v for k, v in model.meta.items()
                           if not k.startswith("spec.") and k != "spectra"}
    else:
        raise BadModel(f"store.ifu_products writes IFU cal/s3d/MRS x1d, not {model.kind!r}")
    ph = _primary(model_type)
    _put({k: v for k, v in meta_for_header.items() if not k.startswith("cal_step.")
          or k in t}, t, ph, hdus)
    _put(prov, t, ph, hdus)
    ph.header["FILENAME"] = Path(path).name
    tree = asdf_ext.calops_tree(model.kind, model.meta, prov)
    tree["calops"]["dtypes"] = {k: v.dtype.str for k, v in model.arrays.items()}
    tree["calops"]["layout"] = layout
    tree.update(tree_extra)
    return F._write_atomic(afits.HDUList([ph, *hdus, asdf_ext.asdf_hdu(tree)]), path, overwrite)


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------

def read(path: str | os.PathLike) -> DataModel:
    """An IFU file as a DataModel (exact for calops files; from headers otherwise)."""
    from store import fits as F
    from store import spec_products as SP

    BadFile, _ = _errors()
    where = os.fspath(path)
    with F._open(path) as hdul:
        node = asdf_ext.read_calops_node(hdul)
        top = F._get_meta(hdul, table(), where, node.get("meta"))
        model_type = str(hdul[0].header.get("DATAMODL", ""))
        if node.get("layout") is not None:
            arrays = SP._read_layout(hdul, node["layout"], where)
            for k, (ext, ver, col) in node["layout"].items():
                if col == "WAVELENGTH" and ext == "WCS-TABLE":
                    arrays[k] = np.asarray(arrays[k]).ravel()
            F._restore_dtypes(arrays, node.get("dtypes", {}))
            meta = dict(node.get("meta") or {})
            return DataModel(node.get("kind"), arrays, meta)
        top = {k: v for k, v in top.items() if k not in F.PROVENANCE_ONLY}
        if model_type == "IFUImageModel":
            arrays = {}
            for h in hdul[1:]:
                if isinstance(h, afits.ImageHDU) and h.data is not None:
                    arrays[_HDU_PLANE.get(h.name, h.name.lower())] = F._image(h, where)
            return DataModel("cal", arrays, top)
        if model_type == "IFUCubeModel":
            arrays = {}
            for h in hdul[1:]:
                if isinstance(h, afits.ImageHDU) and h.data is not None and int(h.ver) == 1:
                    arrays[_HDU_PLANE.get(h.name, h.name.lower())] = F._image(h, where)
                elif h.name == "WCS-TABLE" and int(h.ver) == 1:
                    arrays["wavelength"] = np.asarray(h.data["WAVELENGTH"][0],
                                                      np.float64).ravel()
            if "wavelength" not in arrays and top.get("wcsinfo.cdelt3") is not None:
                n = arrays["data"].shape[0]
                arrays["wavelength"] = top["wcsinfo.crval3"] + (
                    np.arange(n) + 1.0 - top["wcsinfo.crpix3"]) * top["wcsinfo.cdelt3"]
            return DataModel("s3d", arrays, top)
        if model_type == "MRSMultiSpecModel":
            tabs = [h for h in hdul[1:] if h.name == "EXTRACT1D"]
            arrays, meta, names = {}, dict(top), []
            for i, h in enumerate(tabs, start=1):
                attrs = SP._get(h.header, SP.SPEC_KEYWORDS)
                name = str(attrs.get("name") or i)
                names.append(name)
                for c in h.columns.names:
                    a = SP._col(h, c)
                    arrays[f"{name}:{c.lower()}"] = a.astype(np.uint32) if c == "DQ" else a
                meta.update({f"spec.{name}.{k}": v for k, v in attrs.items()})
            meta["spectra"] = names
            meta["model_type"] = "MRSMultiSpecModel"
            return DataModel("x1d", arrays, meta)
    raise BadFile(f"{where}: DATAMODL {model_type!r} is not an IFU model")


# --------------------------------------------------------------------------------------------
# per-cube files
# --------------------------------------------------------------------------------------------

def split_by_cube(model: DataModel) -> list[tuple[str | None, DataModel]]:
    """(cube name, single-cube product) for each cube of an s3d (one entry, name None, for a
    single-cube product), and for an x1d of several cubes one single-spectrum x1d per cube."""
    if model.kind == "s3d":
        names = [str(c) for c in model.meta.get("cubes") or []]
        if not names:
            return [(None, model)]
        out = []
        top = {k: v for k, v in model.meta.items() if not k.startswith("cube.") and k != "cubes"}
        for n in names:
            arrays = {k[len(n) + 1:]: v for k, v in model.arrays.items() if k.startswith(f"{n}:")}
            meta = dict(top)
            meta.update({k[len(f"cube.{n}."):]: v for k, v in model.meta.items()
                         if k.startswith(f"cube.{n}.")})
            meta["cube.name"] = n
            out.append((n, DataModel("s3d", arrays, meta)))
        return out
    if model.kind == "x1d":
        names = [str(c) for c in model.meta.get("spectra") or []]
        if len(names) <= 1:
            return [(names[0] if names else None, model)]
        out = []
        top = {k: v for k, v in model.meta.items() if not k.startswith("spec.")
               and k != "spectra"}
        for n in names:
            arrays = {k: v for k, v in model.arrays.items() if k.startswith(f"{n}:")}
            meta = dict(top)
            meta.update({k: v for k, v in model.meta.items() if k.startswith(f"spec.{n}.")})
            meta["spectra"] = [n]
            out.append((n, DataModel("x1d", arrays, meta)))
        return out
    return [(None, model)]
