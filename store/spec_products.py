"""Spectroscopic products as JWST files: MultiSlitModel, SlitModel, ImageModel with wavelengths,
MultiSpecModel (x1d), CombinedSpecModel / MultiCombinedSpecModel (c1d); the extract1d JSON
reference; and the split of a stage-3 product into per-source files.

Layouts (as stdatamodels writes them, checked by tests that open the files in stdatamodels):

- **MultiSlitModel** (``cal``/``s2d`` with ``slits``): per slit, in slit order, the extensions
  ``SCI``, ``DQ``, ``ERR``, ``VAR_POISSON``, ``VAR_RNOISE``, ``VAR_FLAT``, ``WAVELENGTH`` and any
  other plane (``WHT``, ``CON``, ``AREA``, ``BARSHADOW``, ``PATHLOSS_POINT``...) with
  ``EXTVER`` = slit index + 1; the slit's attributes are keywords of its SCI header (SLTNAME,
  SLTSTRT1, SLTSIZE1, SLTSTRT2, SLTSIZE2, SOURCEID, SRCNAME, SRCXPOS, SRCYPOS, SRCTYPE, SHUTSTA,
  DISPAXIS, BUNIT...). A slit's gwcs, when the writer is given one, is ``slits[i].meta.wcs``
  in the ASDF extension.
- **SlitModel** (a single-slit ``s2d``) and **ImageModel** (a single-image ``cal``, MIRI LRS):
  one SCI/DQ/ERR/VAR_*/WAVELENGTH set; the SlitModel's attributes in its SCI header.
- **MultiSpecModel** (``x1d``): one ``EXTRACT1D`` binary table per spectrum (EXTVER = index
  + 1) with stdatamodels' 18 spec_table columns (float64, DQ uint32; units in TUNITn), the
  spectrum's attributes in the table header (SLTNAME, SOURCEID, SRCTYPE, EXTRXSTR...).
- **CombinedSpecModel** (single-source ``c1d``): one ``COMBINE1D`` table (WAVELENGTH, FLUX,
  ERROR, SURF_BRIGHT, SB_ERROR, DQ, WEIGHT, N_INPUT); a multi-source c1d is a
  **MultiCombinedSpecModel** (one COMBINE1D per source), as jwst 3.0 writes.

Every file also carries the calops node in its ASDF extension (``store.asdf_ext``): the exact
meta, the array dtypes and where each array lives (``layout``: array -> [EXTNAME, EXTVER,
column]), so ``read`` gives back the product with the same product id. Files jwst wrote (no
calops node) are read from their headers and extensions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits as afits

from store import asdf_ext
from store.keywords import Keyword, product_table
from transforms.model import DataModel

SPEC_KINDS = ("s2d", "x1d", "c1d")
SPEC_MODELS = ("MultiSlitModel", "SlitModel", "MultiSpecModel", "CombinedSpecModel",
               "MultiCombinedSpecModel")
P, SCI = "PRIMARY", "SCI"


def _kw(key: str, keyword: str, hdu: str, typ: type) -> Keyword:
    return Keyword(key, keyword, hdu, typ, "meta." + key)


# top-level keywords spectroscopy needs that the imaging table may not have (used only where
# store.keywords has no entry for the key)
EXTRA: tuple[Keyword, ...] = (
    _kw("instrument.grating", "GRATING", P, str),
    _kw("instrument.fixed_slit", "FXD_SLIT", P, str),
    _kw("instrument.msa_metadata_file", "MSAMETFL", P, str),
    _kw("observation.bkgdtarg", "BKGDTARG", P, bool),
    _kw("dither.dithered_ra", "DITH_RA", P, float),
    _kw("dither.dithered_dec", "DITH_DEC", P, float),
    _kw("target.source_type", "SRCTYPE", P, str),
    _kw("wcsinfo.dispersion_direction", "DISPAXIS", SCI, int),
    _kw("wcsinfo.spectral_order", "SPORDER", SCI, int),
)

# slit attribute (calops per-slit meta key) -> (keyword, type, stdatamodels attribute)
SLIT_KEYWORDS: dict[str, tuple[str, type, str]] = {
    "name": ("SLTNAME", str, "name"), "xstart": ("SLTSTRT1", int, "xstart"),
    "xsize": ("SLTSIZE1", int, "xsize"), "ystart": ("SLTSTRT2", int, "ystart"),
    "ysize": ("SLTSIZE2", int, "ysize"), "slitlet_id": ("SLITID", int, "slitlet_id"),
    "shutter_id": ("SHUTTRID", int, "shutter_id"), "source_id": ("SOURCEID", int, "source_id"),
    "source_name": ("SRCNAME", str, "source_name"),
    "source_alias": ("SRCALIAS", str, "source_alias"),
    "stellarity": ("STLARITY", float, "stellarity"), "srctype": ("SRCTYPE", str, "source_type"),
    "source_xpos": ("SRCXPOS", float, "source_xpos"),
    "source_ypos": ("SRCYPOS", float, "source_ypos"),
    "shutter_state": ("SHUTSTA", str, "shutter_state"), "quadrant": ("MSAQUAD", int, "quadrant"),
    "source_ra": ("SRCRA", float, "source_ra"), "source_dec": ("SRCDEC", float, "source_dec"),
    "slit_xscale": ("SLTXSCL", float, "slit_xscale"),
    "slit_yscale": ("SLTYSCL", float, "slit_yscale"),
    "wavelength_corrected": ("WAVECOR", bool, "wavelength_corrected"),
    "pathloss_correction_type": ("PTHLOSS", str, "pathloss_correction_type"),
    "barshadow_corrected": ("BARSHDW", bool, "barshadow_corrected"),
    "dispersion_direction": ("DISPAXIS", int, "meta.wcsinfo.dispersion_direction"),
    "bunit_data": ("BUNIT", str, "meta.bunit_data"),
    "pixelarea_steradians": ("PIXAR_SR", float, "meta.photometry.pixelarea_steradians"),
}
# spectrum attribute -> (keyword, type) in an EXTRACT1D header (specmeta.schema)
SPEC_KEYWORDS: dict[str, tuple[str, type]] = {
    "name": ("SLTNAME", str), "slitlet_id": ("SLITID", int), "source_id": ("SOURCEID", int),
    "source_name": ("SRCNAME", str), "source_alias": ("SRCALIAS", str),
    "stellarity": ("STLARITY", float), "source_type": ("SRCTYPE", str),
    "source_xpos": ("SRCXPOS", float), "source_ypos": ("SRCYPOS", float),
    "source_ra": ("SRCRA", float), "source_dec": ("SRCDEC", float),
    "extraction_xstart": ("EXTRXSTR", float), "extraction_xstop": ("EXTRXSTP", float),
    "extraction_ystart": ("EXTRYSTR", float), "extraction_ystop": ("EXTRYSTP", float),
    "shutter_state": ("SHUTSTA", str), "slit_ra": ("SLIT_RA", float),
    "slit_dec": ("SLIT_DEC", float), "quadrant": ("MSAQUAD", int),
    "spectral_order": ("SPORDER", int), "dispersion_direction": ("DISPAXIS", int),
    "detector": ("DETECTOR", str),
}
C1D_KEYWORDS: dict[str, tuple[str, type]] = {
    "spectral_order": ("SPORDER", int), "dispersion_direction": ("DISPAXIS", int),
    "source_id": ("SOURCEID", int), "source_type": ("SRCTYPE", str),
}
SPEC_COLUMNS = ("wavelength", "flux", "flux_error", "flux_var_poisson", "flux_var_rnoise",
                "flux_var_flat", "surf_bright", "sb_error", "sb_var_poisson", "sb_var_rnoise",
                "sb_var_flat", "dq", "background", "bkgd_error", "bkgd_var_poisson",
                "bkgd_var_rnoise", "bkgd_var_flat", "npixels")
C1D_COLUMNS = ("wavelength", "flux", "error", "surf_bright", "sb_error", "dq", "weight",
               "n_input")
_PLANE_HDU = {"data": "SCI", "dq": "DQ", "err": "ERR", "var_poisson": "VAR_POISSON",
              "var_rnoise": "VAR_RNOISE", "var_flat": "VAR_FLAT", "wavelength": "WAVELENGTH",
              "wht": "WHT", "con": "CON", "area": "AREA", "barshadow": "BARSHADOW",
              "trace_model": "TRACEMODEL"}
_HDU_PLANE = {v: k for k, v in _PLANE_HDU.items()}
_PLANE_ORDER = ("data", "dq", "err", "var_poisson", "var_rnoise", "var_flat", "wavelength")
_PLANE_DTYPES = {"data": "float32", "dq": "uint32", "err": "float32", "var_poisson": "float32",
                 "var_rnoise": "float32", "var_flat": "float32", "wavelength": "float32",
                 "wht": "float32", "con": "int32"}


def _errors():
    from store.fits import BadFile, BadModel

    return BadFile, BadModel


def table() -> dict[str, Keyword]:
    """Top-level keywords of a spectroscopic file: the product table plus ``EXTRA``."""
    t = dict(product_table())
    used = {(k.hdu, k.keyword) for k in t.values()}
    for k in EXTRA:
        if k.key not in t and (k.hdu, k.keyword) not in used:
            t[k.key] = k
    return t


def handles(model: DataModel) -> bool:
    """Whether ``write`` writes this product (spectral kinds, or a cal with slits/wavelengths)."""
    if model.kind in SPEC_KINDS:
        return True
    return model.kind == "cal" and ("slits" in model.meta or "wavelength" in model.arrays)


def is_spec_file(path: str | os.PathLike) -> bool:
    """A FITS file whose DATAMODL is a spectroscopic model (or a calops spectral product)."""
    try:
        h = afits.getheader(os.fspath(path), 0)
    except (OSError, ValueError):
        return False
    return str(h.get("DATAMODL", "")) in SPEC_MODELS or h.get("CO_SPEC") is True


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------

def _card_value(kw: str, typ: type, value: Any) -> Any:
    from store.fits import BadModel

    v = asdf_ext.plain(value)
    ok = {str: isinstance(v, str), int: isinstance(v, int) and not isinstance(v, bool),
          float: isinstance(v, (int, float)) and not isinstance(v, bool),
          bool: isinstance(v, bool)}[typ]
    if not ok:
        raise BadModel(f"{kw}={value!r} is a {type(value).__name__}; it needs {typ.__name__}")
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, str) and not all(32 <= ord(c) < 127 for c in v):
        raise BadModel(f"{kw}={value!r} has characters a FITS header cannot hold")
    return float(v) if typ is float else v


def _put(header: afits.Header, attrs: Mapping[str, Any], kws: Mapping[str, tuple]) -> None:
    for key, value in attrs.items():
        spec = kws.get(key)
        if spec is None or value is None:
            continue
        v = _card_value(spec[0], spec[1], value)
        if v is not None:
            header[spec[0]] = v


def _check_planes(arrays: Mapping[str, np.ndarray], what: str) -> None:
    from store.fits import BadModel

    for name, want in _PLANE_DTYPES.items():
        a = arrays.get(name)
        if a is not None and a.dtype != np.dtype(want):
            raise BadModel(f"{what} array {name!r} is {a.dtype}; the JWST layout needs {want}")
    if "data" not in arrays:
        raise BadModel(f"{what} has no 'data' array")


def _plane_hdus(arrays: Mapping[str, np.ndarray], ver: int | None, prefix: str,
                layout: dict[str, list]) -> list[afits.ImageHDU]:
    names = [n for n in _PLANE_ORDER if n in arrays] + sorted(
        n for n in arrays if n not in _PLANE_ORDER)
    out = []
    for n in names:
        ext = _PLANE_HDU.get(n, n.upper())
        h = afits.ImageHDU(np.ascontiguousarray(arrays[n]), name=ext, ver=ver or 1)
        if ver is not None:
            h.header["EXTVER"] = ver
        out.append(h)
        layout[prefix + n] = [ext, ver or 1, None]
    return out


def _split_slits(model: DataModel) -> list[tuple[str, dict[str, np.ndarray], dict[str, Any]]]:
    out = []
    for name in [str(s) for s in model.meta.get("slits") or []]:
        pre, mpre = f"{name}:", f"slit.{name}."
        arrays = {k[len(pre):]: v for k, v in model.arrays.items() if k.startswith(pre)}
        meta = {k[len(mpre):]: v for k, v in model.meta.items() if k.startswith(mpre)}
        meta.setdefault("name", name)
        out.append((name, arrays, meta))
    return out


def _top_meta(model: DataModel) -> dict[str, Any]:
    return {k: v for k, v in model.meta.items()
            if not k.startswith(("slit.", "spec.")) and k not in ("slits", "spectra")}


def _primary(model_type: str, kind: str) -> afits.PrimaryHDU:
    ph = afits.PrimaryHDU()
    ph.header["DATAMODL"] = model_type
    ph.header["TELESCOP"] = "JWST"
    ph.header["ORIGIN"] = "calops"
    ph.header["CO_SPEC"] = (True, "written by calops store.spec_products")
    return ph


def _put_top(model: DataModel, prov: Mapping[str, Any], ph: afits.PrimaryHDU,
             sci: afits.Header | None) -> None:
    from store import fits as F

    t = table()
    F._put_meta({k: v for k, v in _top_meta(model).items() if not k.startswith("cal_step.")
                 or k in t}, t, ph.header, sci)
    F._put_meta(prov, t, ph.header, sci)


def _table_hdu(cols: Mapping[str, np.ndarray], order: tuple[str, ...], extname: str,
               ver: int, units: Mapping[str, str]) -> afits.BinTableHDU:
    from store.fits import BadModel

    lengths = {len(v) for v in cols.values()}
    if len(lengths) > 1:
        raise BadModel(f"{extname} {ver}: columns of different lengths {sorted(lengths)}")
    n = next(iter(lengths)) if lengths else 0
    fcols = []
    for c in order:
        a = np.asarray(cols[c]) if c in cols else np.zeros(n)
        if c == "dq":
            fc = afits.Column(name=c.upper(), format="J", array=a.astype(np.uint32),
                              bzero=2 ** 31)
        else:
            fc = afits.Column(name=c.upper(), format="D", array=a.astype(np.float64),
                              unit=units.get(c))
        fcols.append(fc)
    extra = sorted(c for c in cols if c not in order)
    for c in extra:
        a = np.asarray(cols[c])
        if a.dtype.kind not in "fiub":
            raise BadModel(f"{extname} column {c} must be numeric, got {a.dtype}")
        fcols.append(afits.Column(name=c.upper(), format="D", array=a.astype(np.float64)))
    h = afits.BinTableHDU.from_columns(fcols, name=extname)
    h.header["EXTVER"] = ver
    return h


def _units(meta: Mapping[str, Any], c1d: bool = False) -> dict[str, str]:
    fu = str(meta.get("flux_unit") or "Jy")
    su = str(meta.get("sb_unit") or "MJy/sr")
    fv = "Jy^2" if fu == "Jy" else "DN^2 / s^2"
    sv = "MJy^2 / sr^2" if su == "MJy/sr" else "DN^2 / s^2"
    if c1d:
        return {"wavelength": "um", "flux": fu, "error": fu, "surf_bright": su, "sb_error": su}
    return {"wavelength": "um", "flux": fu, "flux_error": fu, "flux_var_poisson": fv,
            "flux_var_rnoise": fv, "flux_var_flat": fv, "surf_bright": su, "sb_error": su,
            "sb_var_poisson": sv, "sb_var_rnoise": sv, "sb_var_flat": sv, "background": su,
            "bkgd_error": su, "bkgd_var_poisson": sv, "bkgd_var_rnoise": sv,
            "bkgd_var_flat": sv}


def _spectra(model: DataModel) -> list[tuple[str, dict[str, np.ndarray], dict[str, Any]]]:
    names = [str(s) for s in model.meta.get("spectra") or []]
    if not names:
        meta = {k[5:]: v for k, v in model.meta.items()
                if k.startswith("spec.") and k.count(".") == 1}
        return [(str(meta.get("name") or "spectrum"),
                 {k: v for k, v in model.arrays.items() if ":" not in k}, meta)]
    out = []
    for name in names:
        pre, mpre = f"{name}:", f"spec.{name}."
        cols = {k[len(pre):]: v for k, v in model.arrays.items() if k.startswith(pre)}
        meta = {k[len(mpre):]: v for k, v in model.meta.items() if k.startswith(mpre)}
        out.append((name, cols, meta))
    return out


def write(model: DataModel, path: str | os.PathLike,
          provenance: Mapping[str, Any] | None = None, wcs: Any = None,
          overwrite: bool = True) -> Path:
    """Write a spectroscopic product in its JWST layout (see the module docstring). ``wcs``:
    a gwcs (single slit), or a mapping slit/spectrum name -> gwcs."""
    from store import fits as F

    _, BadModel = _errors()
    prov = F._provenance_meta(provenance)
    layout: dict[str, list] = {}
    hdus: list = []
    wcs_tree: dict[str, Any] = {}
    wmap = wcs if isinstance(wcs, Mapping) else ({} if wcs is None else {None: wcs})
    if model.kind in ("cal", "s2d") and "slits" in model.meta:
        model_type = "MultiSlitModel"
        slits = _split_slits(model)
        if not slits:
            raise BadModel(f"{model.kind} product names no slits")
        tree_slits = []
        top = model.meta
        # jwst's slits carry the exposure's meta (extract_2d copies it): give them the
        # schema keys the file has
        known = table()
        shared = asdf_ext.nest({k: asdf_ext.plain(v) for k, v in _top_meta(model).items()
                                if k in known and known[k].schema_path and v is not None
                                and not k.startswith(("calops.", "ref_file."))})
        for i, (name, arrays, meta) in enumerate(slits, start=1):
            _check_planes(arrays, f"slit {name}")
            planes = _plane_hdus(arrays, i, f"{name}:", layout)
            # jwst keeps the pixel area and units per slit
            inherited = {"pixelarea_steradians": top.get("photometry.pixelarea_steradians"),
                         "bunit_data": top.get("bunit_data")}
            _put(planes[0].header, {**inherited, **meta}, SLIT_KEYWORDS)
            hdus += planes
            w = wmap.get(name)
            # each slit is a SlitModel in the tree (jwst's exp_to_source asks), with its gwcs
            tree_slits.append({"meta": {**shared, "model_type": "SlitModel",
                                        **({"wcs": w} if w is not None else {})}})
        wcs_tree["slits"] = tree_slits
    elif model.kind in ("cal", "s2d"):
        model_type = "ImageModel" if model.kind == "cal" else "SlitModel"
        _check_planes(model.arrays, model.kind)
        if model.arrays["data"].ndim != 2:
            raise BadModel(f"{model.kind} data must be 2-D, got {model.arrays['data'].shape}")
        hdus = _plane_hdus(model.arrays, None, "", layout)
        if model_type == "SlitModel":
            attrs = {k[5:]: v for k, v in model.meta.items()
                     if k.startswith("slit.") and k.count(".") == 1}
            _put(hdus[0].header, attrs, SLIT_KEYWORDS)
        w = wmap.get(None) or (next(iter(wmap.values())) if len(wmap) == 1 else None)
        if w is not None:
            wcs_tree["meta"] = {"wcs": w}
    elif model.kind == "x1d":
        model_type = "MultiSpecModel"
        specs = []
        for i, (name, cols, meta) in enumerate(_spectra(model), start=1):
            h = _table_hdu(cols, SPEC_COLUMNS, "EXTRACT1D", i, _units(meta))
            _put(h.header, {**meta, "name": meta.get("name", name)}, SPEC_KEYWORDS)
            for c in cols:
                layout[f"{name}:{c}"] = ["EXTRACT1D", i, c.upper()]
            hdus.append(h)
            w = wmap.get(name)
            specs.append({"meta": {"wcs": w}} if w is not None else {})
        if any(specs):
            wcs_tree["spec"] = specs
    elif model.kind == "c1d":
        specs = _spectra(model)
        multi = "spectra" in model.meta
        model_type = "MultiCombinedSpecModel" if multi else "CombinedSpecModel"
        for i, (name, cols, meta) in enumerate(specs, start=1):
            h = _table_hdu(cols, C1D_COLUMNS, "COMBINE1D", i, _units(meta, c1d=True))
            _put(h.header, meta, C1D_KEYWORDS)
            for c in cols:
                layout[(f"{name}:{c}" if multi else c)] = ["COMBINE1D", i, c.upper()]
            hdus.append(h)
    else:
        raise BadModel(f"store.spec_products writes cal/s2d/x1d/c1d, not {model.kind!r}")
    ph = _primary(model_type, model.kind)
    sci = hdus[0].header if hdus and hdus[0].name == "SCI" else None
    _put_top(model, prov, ph, sci)
    ph.header["FILENAME"] = Path(path).name
    tree = asdf_ext.calops_tree(model.kind, model.meta, prov)
    tree["calops"]["dtypes"] = {k: v.dtype.str for k, v in model.arrays.items()}
    tree["calops"]["layout"] = layout
    tree.update(wcs_tree)
    return F._write_atomic(afits.HDUList([ph, *hdus, asdf_ext.asdf_hdu(tree)]), path, overwrite)


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------

def _coerce(value: Any, typ: type) -> Any:
    if isinstance(value, afits.card.Undefined) or value is None:
        return None
    if typ is int and isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if typ is float and isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return float(value)
    if typ is bool:
        return bool(value)
    if typ is str:
        return str(value)
    return value


def _get(header: afits.Header, kws: Mapping[str, tuple]) -> dict[str, Any]:
    out = {}
    for key, spec in kws.items():
        if spec[0] in header:
            v = _coerce(header[spec[0]], spec[1])
            if v is not None:
                out[key] = v
    return out


def _col(hdu: afits.BinTableHDU, col: str) -> np.ndarray:
    from store.fits import _native

    a = np.asarray(hdu.data[col])
    return np.ascontiguousarray(_native(np.array(a)))


def read(path: str | os.PathLike) -> DataModel:
    """A spectroscopic file as a DataModel (exact for calops files; from headers otherwise)."""
    from store import fits as F

    where = os.fspath(path)
    with F._open(path) as hdul:
        node = asdf_ext.read_calops_node(hdul)
        top = F._get_meta(hdul, table(), where, node.get("meta"))
        model_type = str(hdul[0].header.get("DATAMODL", ""))
        if node.get("layout") is not None:
            arrays = _read_layout(hdul, node["layout"], where)
            F._restore_dtypes(arrays, node.get("dtypes", {}))
            meta = dict(node.get("meta") or {})
            meta.update({k: v for k, v in top.items() if k in meta})
            return DataModel(node.get("kind"), arrays, meta)
        top = {k: v for k, v in top.items() if k not in F.PROVENANCE_ONLY}
        return _read_foreign(hdul, model_type, top, where)


def _read_layout(hdul: afits.HDUList, layout: Mapping[str, list], where: str
                 ) -> dict[str, np.ndarray]:
    from store import fits as F

    BadFile, _ = _errors()
    by = {(h.name, int(h.ver)): h for h in hdul[1:]}
    arrays = {}
    for name, (ext, ver, col) in layout.items():
        h = by.get((ext, int(ver)))
        if h is None:
            raise BadFile(f"{where}: extension {ext},{ver} holding {name} is missing")
        if col is None:
            arrays[name] = F._image(h, where)
        else:
            arrays[name] = _col(h, col)
    return arrays


def _read_foreign(hdul: afits.HDUList, model_type: str, top: dict[str, Any], where: str
                  ) -> DataModel:
    from store import fits as F

    BadFile, _ = _errors()
    if model_type in ("MultiSlitModel", "SlitModel", "ImageModel"):
        groups: dict[int, dict[str, np.ndarray]] = {}
        heads: dict[int, afits.Header] = {}
        for h in hdul[1:]:
            if isinstance(h, afits.ImageHDU) and h.data is not None:
                groups.setdefault(int(h.ver), {})[_HDU_PLANE.get(h.name, h.name.lower())] = \
                    F._image(h, where)
                if h.name == "SCI":
                    heads[int(h.ver)] = h.header
        if model_type != "MultiSlitModel":
            arrays = groups.get(1, {})
            attrs = _get(heads.get(1, afits.Header()), SLIT_KEYWORDS)
            kind = "s2d" if model_type == "SlitModel" else "cal"
            return DataModel(kind, arrays, {**top, **{f"slit.{k}": v for k, v in attrs.items()}})
        arrays, meta, names = {}, dict(top), []
        for ver in sorted(groups):
            attrs = _get(heads.get(ver, afits.Header()), SLIT_KEYWORDS)
            name = str(attrs.get("name") or ver)
            names.append(name)
            arrays.update({f"{name}:{k}": v for k, v in groups[ver].items()})
            meta.update({f"slit.{name}.{k}": v for k, v in attrs.items()})
        meta["slits"] = names
        kind = "s2d" if Path(where).name.split(".")[0].endswith("_s2d") else "cal"
        return DataModel(kind, arrays, meta)
    if model_type in ("MultiSpecModel", "CombinedSpecModel", "MultiCombinedSpecModel"):
        ext = "EXTRACT1D" if model_type == "MultiSpecModel" else "COMBINE1D"
        kws = SPEC_KEYWORDS if ext == "EXTRACT1D" else C1D_KEYWORDS
        tabs = [h for h in hdul[1:] if h.name == ext]
        arrays, meta, names = {}, dict(top), []
        for i, h in enumerate(tabs, start=1):
            attrs = _get(h.header, kws)
            name = str(attrs.get("name") or i)
            names.append(name)
            for c in h.columns.names:
                a = _col(h, c)
                arrays[f"{name}:{c.lower()}"] = a.astype(np.uint32) if c == "DQ" else a
            meta.update({f"spec.{name}.{k}": v for k, v in attrs.items()})
        meta["spectra"] = names
        return DataModel("x1d" if ext == "EXTRACT1D" else "c1d", arrays, meta)
    raise BadFile(f"{where}: DATAMODL {model_type!r} is not a spectroscopic model")


# --------------------------------------------------------------------------------------------
# the extract1d reference (JSON)
# --------------------------------------------------------------------------------------------

def write_extract1d(model: DataModel, path: str | os.PathLike, overwrite: bool = True) -> Path:
    """An extract1d reference as JWST's JSON (``{"apertures": [...]}`` plus the header-like
    keys CRDS matches on); the calops meta is kept whole under ``calops``."""
    from store import fits as F

    _, BadModel = _errors()
    if not isinstance(model.meta.get("apertures"), (list, tuple)):
        raise BadModel("an extract1d reference needs meta 'apertures' (a list of apertures)")
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass overwrite=True to replace it")
    doc = {"reftype": "EXTRACT1D", "instrument": model.get("instrument.name"),
           "exp_type": model.get("exposure.type"), "useafter": model.get("useafter"),
           "pedigree": model.get("pedigree"), "description": model.get("description"),
           "author": model.get("author"), "apertures": asdf_ext.plain(model.meta["apertures"]),
           "calops": {"format": asdf_ext.CALOPS_FORMAT, "kind": model.kind,
                      "meta": asdf_ext.plain(dict(model.meta))}}
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = F._tmp_name(p)
    try:
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def read_extract1d(path: str | os.PathLike) -> DataModel:
    """A JSON extract1d reference (calops' or JWST's) as ``DataModel("ref.extract1d")``."""
    BadFile, _ = _errors()
    where = os.fspath(path)
    try:
        doc = json.loads(Path(where).read_text())
    except (OSError, ValueError) as exc:
        raise BadFile(f"{where}: not a readable JSON extract1d reference ({exc})") from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("apertures"), list):
        raise BadFile(f"{where}: an extract1d reference needs an 'apertures' list")
    node = doc.get("calops")
    if isinstance(node, Mapping) and isinstance(node.get("meta"), Mapping):
        return DataModel(node.get("kind", "ref.extract1d"), {}, dict(node["meta"]))
    meta = {"reftype": "EXTRACT1D", "apertures": doc["apertures"]}
    for k, key in (("instrument", "instrument.name"), ("exp_type", "exposure.type"),
                   ("useafter", "useafter"), ("pedigree", "pedigree")):
        if doc.get(k) is not None:
            meta[key] = doc[k]
    return DataModel("ref.extract1d", {}, meta)


# --------------------------------------------------------------------------------------------
# per-source files of a stage-3 product
# --------------------------------------------------------------------------------------------

def _fill(template: str, source: Any, slits: Any) -> str:
    """transforms.associations_spec.fill_product_name (store may not import it)."""
    import re

    out = re.sub(r"\{primary:[^}]*\}", "", str(template))
    if source is not None:
        out = out.replace("{source_id}", str(source).lower())
    if slits:
        out = out.replace("{slit_name}", str(slits).lower())
    return out


def split_by_source(model: DataModel, product_name: str) -> list[tuple[str, DataModel]]:
    """The per-source products of a stage-3 product, each with its JWST product name (the
    association's template filled with the source's ``product.source_id`` and
    ``product.slit_name``): an s2d slit becomes a SlitModel, a spectrum its own x1d/c1d. A
    product whose slits/spectra name no source (stage 2) stays whole, under ``product_name``."""
    out: list[tuple[str, DataModel]] = []
    if not any(k.endswith("product.source_id") for k in model.meta):
        return [(_fill(product_name, None, None), model)]
    top = _top_meta(model)
    if model.kind in ("s2d", "cal") and "slits" in model.meta:
        for name, arrays, meta in _split_slits(model):
            fname = _fill(product_name, meta.get("product.source_id", name),
                          meta.get("product.slit_name"))
            out.append((fname, DataModel(model.kind, arrays,
                                         {**top, **{f"slit.{k}": v for k, v in meta.items()}})))
        return out
    if model.kind in ("x1d", "c1d") and "spectra" in model.meta:
        for name, cols, meta in _spectra(model):
            fname = _fill(product_name, meta.get("product.source_id", name),
                          meta.get("product.slit_name"))
            if model.kind == "x1d":
                m = DataModel("x1d", {f"{name}:{c}": v for c, v in cols.items()},
                              {**top, "spectra": [name],
                               **{f"spec.{name}.{k}": v for k, v in meta.items()}})
            else:
                m = DataModel("c1d", dict(cols), {**top, **{f"spec.{k}": v
                                                          for k, v in meta.items()}})
            out.append((fname, m))
        return out
    src = model.get("slit.product.source_id") or model.get("spec.product.source_id")
    slits = model.get("slit.product.slit_name") or model.get("spec.product.slit_name")
    return [(_fill(product_name, src, slits), model)]
