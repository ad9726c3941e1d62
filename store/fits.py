"""JWST files in and out: level-1b uncal, rate/rateints/cal/i2d products, catalogs, references.

The layouts are the ones stdatamodels defines (and tests check against it): a PRIMARY header with
the exposure keywords, a SCI extension whose header carries pointing/WCS/photometry keywords,
one image extension per array (``data`` -> SCI, ``dq`` -> DQ, ``var_poisson`` -> VAR_POISSON...),
binary tables for ``group``/``int_times``/``dq_def``/``phot_table`` (held in a DataModel as one
column array each, named ``<table>.<column>``), and an ``ASDF`` extension (see store.asdf_ext).
The meta key <-> keyword table is ``store.keywords``.

Decisions (docs/formats.md has the long form):
- Files are read fully into memory (``memmap=False``): a model must not change under a step
  when someone rewrites its file. Unsigned integers stored with BZERO are decoded in place, so
  reading an uncal costs one buffer of its size.
- Arrays and tables are native-endian. String table columns are numpy ``U`` arrays.
- Written files are deterministic (no DATE stamp); they carry CHECKSUM/DATASUM, verified on read.
- Files are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from store import asdf_ext
from store.keywords import (PROVENANCE_ALIASES, PROVENANCE_ONLY, REFERENCE, product_table,
                            UNCAL_REQUIRED, Keyword, by_key)
from store.names import jwst_filename, parse_filename  # noqa: F401  (re-exported: architecture.md)
from transforms.model import DataModel

try:
    from store.errors import CalopsError as _Base
except ImportError:  # pragma: no cover - store/errors.py is written by another engineer
    _Base = Exception  # type: ignore[misc,assignment]

__all__ = [
    "BadFile", "BadModel", "read_uncal", "write_uncal", "write_product", "read_product",
    "read_provenance", "read_wcs", "read_reference", "write_reference", "PRODUCT_MODEL",
    "REFERENCE_MODEL", "jwst_filename", "parse_filename",
]


class BadFile(_Base, ValueError):
    """A file that is not the JWST layout it should be (the message names file and problem)."""


class BadModel(_Base, ValueError):
    """A DataModel that cannot be written in the JWST layout asked for."""


# ---------------------------------------------------------------------------------------------
# Layouts
# ---------------------------------------------------------------------------------------------

# product kind -> (stdatamodels model class, ndim of data)
PRODUCT_MODEL: dict[str, tuple[str, int]] = {
    "rate": ("ImageModel", 2),
    "cal": ("ImageModel", 2),
    "i2d": ("ImageModel", 2),
    "rateints": ("CubeModel", 3),
    "ramp": ("RampModel", 4),  # an intermediate, saved on request
}

# reftype -> stdatamodels model class (photom and dark depend on instrument / ndim: see _ref_model)
REFERENCE_MODEL: dict[str, str] = {
    "gain": "GainModel",
    "readnoise": "ReadnoiseModel",
    "mask": "MaskModel",
    "saturation": "SaturationModel",
    "superbias": "SuperBiasModel",
    "linearity": "LinearityModel",
    "dark": "DarkModel",
    "flat": "FlatModel",
    "photom": "NrcImgPhotomModel",
    "area": "PixelAreaModel",
    "distortion": "DistortionModel",
    "rscd": "RSCDModel",  # MIRI
    "reset": "ResetModel",  # MIRI
    "emicorr": "EmiModel",  # MIRI (ASDF)
    "refpix": "IRS2Model",  # NIRSpec IRS2 coefficients
    "pictureframe": "PictureFrameModel",
    "ipc": "IPCModel",  # 2-D (kh, kw) or 4-D (kh, kw, ny, nx) deconvolution kernel
}
_PHOTOM_MODEL = {"NIRCAM": "NrcImgPhotomModel", "NIRISS": "NisImgPhotomModel",
                 "FGS": "FgsImgPhotomModel", "MIRI": "MirImgPhotomModel"}

# array name <-> EXTNAME (others: the upper-cased name)
ARRAY_HDU: dict[str, str] = {
    "data": "SCI", "dq": "DQ", "err": "ERR", "var_poisson": "VAR_POISSON",
    "var_rnoise": "VAR_RNOISE", "var_flat": "VAR_FLAT", "area": "AREA", "wht": "WHT",
    "con": "CON", "zeroframe": "ZEROFRAME", "groupdq": "GROUPDQ", "pixeldq": "PIXELDQ",
    "coeffs": "COEFFS", "inv_coeffs": "INV_COEFFS", "average_dark_current": "AVDRKCUR",
}
_HDU_ARRAY = {v: k for k, v in ARRAY_HDU.items()}

# table name <-> EXTNAME, and the stdatamodels column dtypes of the known ones
TABLE_HDU: dict[str, str] = {"group": "GROUP", "int_times": "INT_TIMES", "dq_def": "DQ_DEF",
                             "phot_table": "PHOTOM", "rscd_group_skip_table": "RSCD_GROUP_SKIP",
                             "irs2_table": "IRS2", "dq_table": "DQ"}
_HDU_TABLE = {v: k for k, v in TABLE_HDU.items()}
TABLE_DTYPES: dict[str, dict[str, str]] = {
    "group": {"integration_number": "i4", "group_number": "i2", "end_day": "i2",
              "end_milliseconds": "i4", "end_submilliseconds": "i2", "group_end_time": "S26",
              "number_of_columns": "i2", "number_of_rows": "i2", "number_of_gaps": "i2",
              "completion_code_number": "i2", "completion_code_text": "S36",
              "bary_end_time": "f8", "helio_end_time": "f8"},
    "int_times": {"integration_number": "i4", "int_start_MJD_UTC": "f8", "int_mid_MJD_UTC": "f8",
                  "int_end_MJD_UTC": "f8", "int_start_BJD_TDB": "f8", "int_mid_BJD_TDB": "f8",
                  "int_end_BJD_TDB": "f8"},
    "dq_def": {"BIT": "i4", "VALUE": "u4", "NAME": "S40", "DESCRIPTION": "S80"},
    "phot_table": {"filter": "S12", "pupil": "S12", "photmjsr": "f4", "uncertainty": "f4"},
    "rscd_group_skip_table": {"subarray": "S17", "readpatt": "S12", "group_skip1": "i4",
                              "group_skip": "i4"},
    "irs2_table": {f"{ab}_{i}": "f4" for ab in ("alpha", "beta") for i in range(4)},
    "dq_table": {"OUTPUT": "u2", "ODD_EVEN": "u2", "MASK": "u4"},  # IRS2Model's DQ table
}
# MIRI imaging photom tables have a subarray column and no pupil (MirImgPhotomModel).
MIRI_PHOT_DTYPES = {"filter": "S12", "subarray": "S17", "photmjsr": "f4", "uncertainty": "f4"}

# dtype each known array must have in a product / reference file (as stdatamodels declares it)
PRODUCT_DTYPES: dict[str, str] = {
    "data": "float32", "err": "float32", "dq": "uint32", "var_poisson": "float32",
    "var_rnoise": "float32", "var_flat": "float32", "area": "float32", "wht": "float32",
    "con": "int32", "zeroframe": "float32", "groupdq": "uint8", "pixeldq": "uint32",
}
REFERENCE_DTYPES: dict[str, str] = {
    "data": "float32", "err": "float32", "dq": "uint32", "coeffs": "float32",
    "inv_coeffs": "float32", "average_dark_current": "float32",
}

_REF_KW = by_key(REFERENCE)


# ---------------------------------------------------------------------------------------------
# Small helpers: opening, writing, headers
# ---------------------------------------------------------------------------------------------

def _open(path: str | os.PathLike, load_data: bool = True) -> fits.HDUList:
    """Open a FITS file fully into memory; any damage becomes a BadFile naming the file.
    ``load_data=False``: headers only, checksums unverified (``_verified`` reads and verifies
    one extension's data when it is used)."""
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise BadFile(f"{p}: no such file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hdul = None
        try:
            hdul = fits.open(p, memmap=False, lazy_load_hdus=False, checksum=load_data,
                             do_not_scale_image_data=True)
            for hdu in hdul:
                if load_data or hdu.name == asdf_ext.EXTNAME:
                    _ = hdu.data  # force the read so a truncated file fails here
        except (OSError, ValueError, TypeError, IndexError, fits.VerifyError) as exc:
            if hdul is not None:
                hdul.close()
            raise BadFile(f"{p}: not a readable FITS file ({exc}); is it truncated or corrupt?") from None
    size = os.path.getsize(p)
    last = hdul[-1].fileinfo() if len(hdul) else None
    end = last["datLoc"] + last["datSpan"] if last else 0
    if end != size:
        hdul.close()
        raise BadFile(f"{p}: the file is truncated or has a damaged extension (its readable "
                      f"extensions end at byte {end}, the file has {size} bytes)")
    for w in caught:
        msg = str(w.message)
        if msg.startswith("Error validating header"):
            hdul.close()
            raise BadFile(f"{p}: corrupt or truncated extension ({msg.splitlines()[0]})")
        if "truncated" in msg.lower():
            hdul.close()
            raise BadFile(f"{p}: the file is truncated ({msg})")
        if "checksum" in msg.lower() or "datasum" in msg.lower():
            hdul.close()
            raise BadFile(f"{p}: checksum mismatch, the file is corrupt ({msg})")
    return hdul


def _tmp_name(p: Path) -> Path:
    """A temporary name beside ``p``, unique per process and thread (Prefect runs threads)."""
    return p.with_name(f".{p.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def _write_atomic(hdul: fits.HDUList, path: str | os.PathLike, overwrite: bool) -> Path:
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass overwrite=True to replace it")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(p)
    for hdu in hdul:  # a fixed comment instead of astropy's timestamp keeps files deterministic
        hdu.add_checksum(when="calops")
    try:
        hdul.writeto(tmp, checksum=False, overwrite=True)
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def _check_value(key: str, kw: Keyword, value: Any) -> Any:
    """A meta value ready for a FITS card, or BadModel saying why not."""
    v = asdf_ext.plain(value)
    ok = {
        str: isinstance(v, str),
        int: isinstance(v, int) and not isinstance(v, bool),
        float: isinstance(v, (int, float)) and not isinstance(v, bool),
        bool: isinstance(v, bool),
    }[kw.type]
    if not ok:
        raise BadModel(f"meta {key}={value!r} is a {type(value).__name__}; FITS keyword "
                       f"{kw.keyword} needs {kw.type.__name__}")
    if isinstance(v, str) and not all(32 <= ord(c) < 127 for c in v):
        raise BadModel(f"meta {key}={value!r} has characters a FITS header cannot hold "
                       "(printable ASCII only)")
    if isinstance(v, float) and not np.isfinite(v):
        raise BadModel(f"meta {key}={value!r} is not finite; FITS headers hold finite numbers only")
    return v


def _put_meta(meta: Mapping[str, Any], table: Mapping[str, Keyword], primary: fits.Header,
              sci: fits.Header | None) -> None:
    for key, value in meta.items():
        kw = table.get(key)
        if kw is None and key.startswith("cal_step.") and table is product_table():
            raise BadModel(f"meta {key}: step {key[9:]} declares no S_* keyword (register it "
                           "with keyword=...); its status would be lost from the file")
        if kw is None or value is None:
            continue
        hdr = sci if (kw.hdu == "SCI" and sci is not None) else primary
        hdr[kw.keyword] = _check_value(key, kw, value)


def _coerce(kw: Keyword, value: Any, where: str) -> Any:
    t = kw.type
    if t is str:
        return value if isinstance(value, str) else str(value)
    if t is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
    elif t is int:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif t is float:
        if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            return float(value)
    raise BadFile(f"{where}: keyword {kw.keyword} is {value!r}; expected {t.__name__} "
                  f"(meta {kw.key})")


def _same(a: Any, b: Any) -> bool:
    """Header value ``a`` and exact value ``b`` agree (floats up to the 20-character card)."""
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return a == b or abs(a - b) <= 1e-12 * max(abs(a), abs(b))
    return a == b


def _get_meta(hdul: fits.HDUList, table: Mapping[str, Keyword], where: str,
              exact: Mapping[str, Any] | None) -> dict[str, Any]:
    """Meta from the headers; ``exact`` (from the ASDF extension) restores full float precision
    and keys without a keyword. The header wins where the two disagree (someone edited it)."""
    primary = hdul[0].header
    sci = hdul["SCI"].header if "SCI" in hdul else None
    meta: dict[str, Any] = {}
    for key, kw in table.items():
        hdr = sci if (kw.hdu == "SCI" and sci is not None and kw.keyword in sci) else primary
        if kw.keyword not in hdr:
            continue
        raw = hdr[kw.keyword]
        if raw is None or isinstance(raw, fits.card.Undefined):
            continue
        meta[key] = _coerce(kw, raw, where)
    if exact is not None:
        # a calops file: its meta keys are the ones written (TELESCOP and provenance the writer
        # added are not meta); values come from the header where it has them
        meta = {k: v for k, v in meta.items() if k in exact}
        for key, value in exact.items():
            if key in table:
                if key in meta and _same(meta[key], value):
                    meta[key] = value
                elif key not in meta and value is None:
                    meta[key] = None
            else:
                meta[key] = value
    return meta


def _native(a: np.ndarray) -> np.ndarray:
    """``a`` in native byte order, swapping in place when it owns a writable buffer."""
    if a.dtype.isnative or a.dtype.byteorder == "|":
        return a
    if a.flags.writeable:
        a.byteswap(inplace=True)
        return a.view(a.dtype.newbyteorder("="))
    return a.astype(a.dtype.newbyteorder("="))


def _image(hdu: fits.ImageHDU, where: str) -> np.ndarray:
    """The image of an HDU opened unscaled, decoded (BZERO unsigned convention) in place."""
    a = hdu.data
    if a is None:
        return np.zeros((0,), np.float32)
    a = np.asarray(a)
    bzero = hdu.header.get("BZERO", 0)
    bscale = hdu.header.get("BSCALE", 1)
    if bscale not in (1, 1.0):
        raise BadFile(f"{where}: extension {hdu.name} uses BSCALE={bscale}; calops reads unscaled data")
    if bzero in (0, 0.0):
        return _native(a)
    unsigned = {np.dtype("int16"): (32768, np.uint16), np.dtype("int32"): (2**31, np.uint32),
                np.dtype("int64"): (2**63, np.uint64)}
    spec = unsigned.get(a.dtype.newbyteorder("="))
    if spec is None or int(bzero) != spec[0]:
        raise BadFile(f"{where}: extension {hdu.name} has BZERO={bzero} with BITPIX="
                      f"{hdu.header.get('BITPIX')}; only the unsigned-integer convention is read")
    u = _native(a.view(a.dtype.str.replace("i", "u")))  # same bytes, unsigned, native order
    if not u.flags.writeable:
        u = u.copy()
    u ^= spec[1](spec[0])  # adding 2**(n-1) modulo 2**n flips the top bit
    return u.view(spec[1])


def _table_columns(hdu: fits.BinTableHDU, name: str) -> dict[str, np.ndarray]:
    out = {}
    for col in hdu.columns.names:
        a = np.asarray(hdu.data[col])
        if a.dtype.kind == "S":
            a = np.char.decode(np.char.rstrip(a), "ascii")
        out[f"{name}.{col}"] = np.ascontiguousarray(_native(np.array(a)))
    return out


def _table_hdu(name: str, cols: Mapping[str, np.ndarray], extname: str) -> fits.BinTableHDU:
    known = TABLE_DTYPES.get(name, {})
    if name == "phot_table" and "subarray" in cols and "pupil" not in cols:
        known = MIRI_PHOT_DTYPES
    lengths = {len(v) for v in cols.values()}
    if len(lengths) != 1:
        raise BadModel(f"table {name} has columns of different lengths {sorted(lengths)}")
    n = next(iter(lengths))
    if known:  # stdatamodels wants every schema column: missing ones are written as 0 / ""
        full = {c: cols[c] if c in cols else np.zeros(n, dtype=d) for c, d in known.items()}
        full.update({c: a for c, a in cols.items() if c not in known})
        cols = full
    fields, arrays = [], []
    for col, a in cols.items():
        a = np.asarray(a)
        if a.ndim != 1:
            raise BadModel(f"table column {name}.{col} must be 1-D, got shape {a.shape}")
        if a.dtype.kind == "U":
            try:
                a = np.char.encode(a, "ascii")
            except UnicodeEncodeError:
                raise BadModel(f"table column {name}.{col} has non-ASCII text") from None
        want = known.get(col)
        if want is not None:
            w = np.dtype(want)
            if w.kind == "S":
                longest = max((len(x) for x in a.tolist()), default=0) if a.dtype.kind == "S" else -1
                if not 0 <= longest <= w.itemsize:
                    raise BadModel(f"table column {name}.{col} must be text of at most "
                                   f"{w.itemsize} characters")
                c = a.astype(w)
            else:
                c = a.astype(w)
                if a.dtype.kind not in "iufb" or not np.array_equal(c, a, equal_nan=a.dtype.kind == "f"):
                    raise BadModel(f"table column {name}.{col} ({a.dtype}) does not fit the JWST "
                                   f"column type {w}")
            a = c
        fields.append((col, a.dtype.newbyteorder(">") if a.dtype.kind in "iuf" else a.dtype))
        arrays.append(a)
    rec = np.empty(n, dtype=fields)
    for (col, _), a in zip(fields, arrays):
        rec[col] = a
    return fits.BinTableHDU(rec, name=extname)


def _split(arrays: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    images: dict[str, np.ndarray] = {}
    tables: dict[str, dict[str, np.ndarray]] = {}
    for name, a in arrays.items():
        if "." in name:
            t, col = name.split(".", 1)
            tables.setdefault(t, {})[col] = a
        else:
            images[name] = a
    return images, tables


def _array_hdus(images: Mapping[str, np.ndarray], tables: Mapping[str, dict]) -> list:
    hdus: list = []
    if "data" in images:
        hdus.append(fits.ImageHDU(np.ascontiguousarray(images["data"]), name="SCI"))
    for name, a in images.items():
        if name != "data":
            hdus.append(fits.ImageHDU(np.ascontiguousarray(a), name=ARRAY_HDU.get(name, name.upper())))
    for t, cols in tables.items():
        hdus.append(_table_hdu(t, cols, TABLE_HDU.get(t, t.upper())))
    return hdus


def _ones_sum32(buf: np.ndarray, total: int = 0) -> int:
    """FITS's 32-bit ones'-complement sum of bytes (big-endian words, zero-padded), in chunks
    (no copy of the buffer)."""
    step = 1 << 22  # bytes per chunk, a multiple of 4
    for i in range(0, buf.size, step):
        c = buf[i:i + step]
        if c.size % 4:
            c = np.concatenate([c, np.zeros(4 - c.size % 4, np.uint8)])
        total += int(c.view(">u4").sum(dtype=np.uint64))
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


def _verified(hdu: Any, where: str) -> None:
    """An extension of a file opened with ``load_data=False``: read its data and check its
    DATASUM and CHECKSUM (the whole extension, header and data, sums to -0 in ones'
    complement), as ``_open`` checks every extension, without astropy's copy of the data."""
    raw = hdu.data
    if raw is None:
        return
    buf = np.ascontiguousarray(raw).reshape(-1).view(np.uint8)
    datasum = _ones_sum32(buf)
    h = hdu.header
    bad = "DATASUM" in h and str(h["DATASUM"]).strip() not in ("", str(datasum))
    if not bad and "CHECKSUM" in h:
        info = hdu.fileinfo()
        with open(info["file"].name, "rb") as f:
            f.seek(info["hdrLoc"])
            head = np.frombuffer(f.read(info["datLoc"] - info["hdrLoc"]), np.uint8)
        bad = _ones_sum32(head, datasum) != 0xFFFFFFFF
    if bad:
        raise BadFile(f"{where}: checksum mismatch in extension {hdu.name}, the file is corrupt")


def _read_arrays(hdul: fits.HDUList, where: str,
                 only: Collection[str] | None = None) -> dict[str, np.ndarray]:
    """Every extension's arrays, or only the arrays named in ``only`` (the others are not
    read: ``hdul`` was opened with ``load_data=False``)."""
    arrays: dict[str, np.ndarray] = {}
    for hdu in hdul[1:]:
        if hdu.name == asdf_ext.EXTNAME:
            continue
        if only is not None:
            name = _HDU_ARRAY.get(hdu.name, hdu.name.lower())
            if isinstance(hdu, fits.BinTableHDU) or name not in only:
                continue
            _verified(hdu, where)
        if isinstance(hdu, fits.BinTableHDU):
            arrays.update(_table_columns(hdu, _HDU_TABLE.get(hdu.name, hdu.name.lower())))
        elif isinstance(hdu, fits.ImageHDU) and hdu.data is not None:
            arrays[_HDU_ARRAY.get(hdu.name, hdu.name.lower())] = _image(hdu, where)
    return arrays


def _restore_dtypes(arrays: dict[str, np.ndarray], dtypes: Mapping[str, str] | None) -> None:
    """Give arrays back the dtypes they had when written (text width, int width), if lossless,
    and drop the table columns the writer only added to complete a JWST table."""
    if dtypes:
        for name in [n for n in arrays if "." in n and n not in dtypes]:
            del arrays[name]
    for name, d in (dtypes or {}).items():
        a = arrays.get(name)
        if a is None:
            continue
        want = np.dtype(d)
        same_kind = a.dtype.kind == want.kind or {a.dtype.kind, want.kind} <= {"i", "u"}
        if a.dtype != want and same_kind:
            c = a.astype(want)
            if np.array_equal(c, a, equal_nan=a.dtype.kind == "f"):
                arrays[name] = c


def _calops_node(tree: Mapping[str, Any]) -> dict[str, Any]:
    node = tree.get("calops") if isinstance(tree, Mapping) else None
    return dict(node) if isinstance(node, Mapping) else {}


def _primary(model_type: str) -> fits.PrimaryHDU:
    ph = fits.PrimaryHDU()
    ph.header["DATAMODL"] = model_type
    ph.header["TELESCOP"] = "JWST"
    ph.header["ORIGIN"] = "calops"
    return ph


def _provenance_meta(provenance: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (provenance or {}).items():
        key = PROVENANCE_ALIASES.get(k, k)
        if key not in product_table():
            raise BadModel(f"unknown provenance key {k!r}; use one of "
                           f"{', '.join(sorted(PROVENANCE_ALIASES))} or a meta key with a keyword "
                           "(cal_step.*, ref_file.*)")
        out[key] = v
    return out


def _check_arrays(model: DataModel, dtypes: Mapping[str, str], what: str) -> None:
    for name, want in dtypes.items():
        if name in model.arrays and model.arrays[name].dtype != np.dtype(want):
            raise BadModel(f"{what} array {name!r} is {model.arrays[name].dtype}; the JWST layout "
                           f"needs {want} (cast it before writing)")


# ---------------------------------------------------------------------------------------------
# uncal
# ---------------------------------------------------------------------------------------------

def _check_uncal(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], where: str,
                 err: type[Exception]) -> None:
    if "data" not in arrays:
        raise err(f"{where}: no SCI extension (data); a level-1b uncal keeps its ramps in SCI")
    data = arrays["data"]
    if data.ndim != 4:
        raise err(f"{where}: SCI has {data.ndim} dimensions {data.shape}; an uncal needs 4 "
                  "(nints, ngroups, ny, nx)")
    if data.dtype != np.uint16:
        raise err(f"{where}: SCI is {data.dtype}; an uncal's SCI must be uint16 "
                  "(BITPIX=16 with BZERO=32768)")
    missing = [f"{product_table()[k].keyword} ({k})" for k in UNCAL_REQUIRED if meta.get(k) is None]
    if missing:
        raise err(f"{where}: missing required keyword(s) {', '.join(missing)}")
    nints, ngroups, ny, nx = data.shape
    want_ints = int(meta["exposure.nints"])
    if meta.get("exposure.integration_start") is not None and meta.get("exposure.integration_end"):
        want_ints = int(meta["exposure.integration_end"]) - int(meta["exposure.integration_start"]) + 1
    irs2 = (ny, int(meta["subarray.ysize"])) == (3200, 2048)  # NIRSpec IRS2 raw frame
    checks = [("NINTS", nints, want_ints), ("NGROUPS", ngroups, int(meta["exposure.ngroups"])),
              ("SUBSIZE2", ny, 3200 if irs2 else int(meta["subarray.ysize"])),
              ("SUBSIZE1", nx, int(meta["subarray.xsize"]))]
    bad = [f"{k}={want} but SCI has {got}" for k, got, want in checks if got != want]
    if bad:
        raise err(f"{where}: SCI shape {data.shape} disagrees with the header: {'; '.join(bad)}")
    zf = arrays.get("zeroframe")
    if zf is not None:
        if zf.dtype != np.uint16 or zf.shape != (nints, ny, nx):
            raise err(f"{where}: ZEROFRAME is {zf.dtype}{list(zf.shape)}; it must be uint16 "
                      f"{[nints, ny, nx]}")


def read_uncal(path: str | os.PathLike) -> DataModel:
    """A level-1b uncal file as ``DataModel("uncal")``: ``data`` uint16 (nints, ngroups, ny, nx),
    ``zeroframe`` if present, ``group.<col>``/``int_times.<col>`` table columns, meta from the
    PRIMARY and SCI headers. Raises BadFile naming the file and the problem."""
    where = os.fspath(path)
    with _open(path) as hdul:
        if "SCI" not in hdul:
            raise BadFile(f"{where}: no SCI extension; a level-1b uncal keeps its ramps in SCI")
        node = asdf_ext.read_calops_node(hdul)
        meta = _get_meta(hdul, product_table(), where, node.get("meta"))
        arrays = _read_arrays(hdul, where)
    _restore_dtypes(arrays, node.get("dtypes", {}))
    if not node:
        meta = {k: v for k, v in meta.items() if k not in PROVENANCE_ONLY}
    _check_uncal(arrays, meta, where, BadFile)
    return DataModel("uncal", arrays, meta)


def write_uncal(model: DataModel, path: str | os.PathLike, overwrite: bool = True) -> Path:
    """Write an uncal as the SDP does (Level1bModel layout); returns the path written."""
    if model.kind != "uncal":
        raise BadModel(f"write_uncal needs an 'uncal' model, got {model.kind!r}")
    _check_uncal(model.arrays, model.meta, f"uncal for {os.fspath(path)}", BadModel)
    images, tables = _split(model.arrays)
    unknown = sorted(set(images) - {"data", "zeroframe", "refout"})
    if unknown:
        raise BadModel(f"an uncal holds data, zeroframe (and refout); it cannot hold {unknown}")
    ph = _primary("Level1bModel")
    hdus = _array_hdus(images, tables)
    _put_meta(model.meta, product_table(), ph.header, hdus[0].header)
    ph.header["FILENAME"] = Path(path).name
    tree = asdf_ext.calops_tree("uncal", model.meta)
    tree["calops"]["dtypes"] = {k: v.dtype.str for k, v in model.arrays.items()}
    return _write_atomic(fits.HDUList([ph, *hdus, asdf_ext.asdf_hdu(tree)]), path, overwrite)


# ---------------------------------------------------------------------------------------------
# products
# ---------------------------------------------------------------------------------------------

def write_product(model: DataModel, path: str | os.PathLike,
                  provenance: Mapping[str, Any] | None = None, wcs: Any = None,
                  overwrite: bool = True) -> Path:
    """Write a rate/rateints/cal/i2d (FITS, ImageModel/CubeModel layout), a ramp (RampModel, for
    intermediates saved on request) or a catalog (ECSV).

    ``provenance`` adds keywords that describe how the file was made: ``build`` (CAL_VER),
    ``crds_context`` (CRDS_CTX), ``product_id`` (CO_PID), ``recipe_key`` (CO_RKEY),
    ``sdp_version``, ``eph_type`` or any meta key of the keyword table (``cal_step.*``,
    ``ref_file.*``). ``wcs`` is a gwcs object written to the ASDF extension as ``meta.wcs``.
    """
    if model.kind == "catalog":
        return _write_catalog(model, path, provenance, overwrite)
    from store import ifu_products  # integral-field layouts (IFUImageModel, IFUCubeModel)
    from store import spec_products  # spectroscopic layouts (MultiSlit, x1d, c1d...)

    if ifu_products.handles(model):
        return ifu_products.write(model, path, provenance, wcs, overwrite)
    if spec_products.handles(model):
        return spec_products.write(model, path, provenance, wcs, overwrite)
    if model.kind not in PRODUCT_MODEL:
        raise BadModel(f"write_product writes {', '.join(PRODUCT_MODEL)} or catalog, not "
                       f"{model.kind!r} (use write_uncal / write_reference)")
    model_type, ndim = PRODUCT_MODEL[model.kind]
    if "data" not in model.arrays:
        raise BadModel(f"{model.kind} product has no 'data' array")
    data = model.arrays["data"]
    if data.ndim != ndim:
        raise BadModel(f"{model.kind} data must be {ndim}-D, got shape {data.shape}")
    _check_arrays(model, PRODUCT_DTYPES, model.kind)
    images, tables = _split(model.arrays)
    for name, a in images.items():
        if name in ("con", "zeroframe"):
            continue
        if a.ndim < 2 or a.shape != data.shape[data.ndim - a.ndim:]:  # per-pixel planes may drop leading axes
            raise BadModel(f"{model.kind} array {name!r} has shape {a.shape}, data has {data.shape}")
    prov = _provenance_meta(provenance)
    ph = _primary(model_type)
    hdus = _array_hdus(images, tables)
    _put_meta(model.meta, product_table(), ph.header, hdus[0].header)
    _put_meta(prov, product_table(), ph.header, hdus[0].header)
    ph.header["FILENAME"] = Path(path).name
    tree = asdf_ext.calops_tree(model.kind, model.meta, prov, wcs)
    tree["calops"]["dtypes"] = {k: v.dtype.str for k, v in model.arrays.items()}
    return _write_atomic(fits.HDUList([ph, *hdus, asdf_ext.asdf_hdu(tree)]), path, overwrite)


def _kind_from(model_type: str, path: str, arrays: Mapping[str, np.ndarray]) -> str:
    if model_type == "CubeModel":
        return "rateints"
    if model_type == "RampModel":
        return "ramp"
    stem = Path(path).name.split(".")[0]
    suffix = stem.rsplit("_", 1)[-1]
    if suffix in PRODUCT_MODEL:
        return suffix
    if "wht" in arrays:
        return "i2d"
    return "rate"


def read_product(path: str | os.PathLike) -> DataModel:
    """A rate/rateints/cal/i2d FITS file or a catalog ECSV as a DataModel.

    Provenance-only keywords (CAL_VER, CRDS_CTX, CRDS_VER, CO_PID, CO_RKEY) are not part of the
    meta (they describe the file, not the science); ``read_provenance`` returns them.
    """
    where = os.fspath(path)
    if where.endswith(".ecsv"):
        return _read_catalog(where)
    from store import ifu_products  # integral-field layouts (IFUImageModel, IFUCubeModel)
    from store import spec_products  # spectroscopic layouts (MultiSlit, x1d, c1d...)

    if ifu_products.is_ifu_file(where):
        return ifu_products.read(where)
    if spec_products.is_spec_file(where):
        return spec_products.read(where)
    with _open(path) as hdul:
        if "SCI" not in hdul:
            raise BadFile(f"{where}: no SCI extension; not a JWST image product")
        node = asdf_ext.read_calops_node(hdul)
        meta = _get_meta(hdul, product_table(), where, node.get("meta"))
        arrays = _read_arrays(hdul, where)
        model_type = str(hdul[0].header.get("DATAMODL", ""))
    _restore_dtypes(arrays, node.get("dtypes", {}))
    kind = node.get("kind") or _kind_from(model_type, where, arrays)
    if not node:
        meta = {k: v for k, v in meta.items() if k not in PROVENANCE_ONLY}
    if kind not in PRODUCT_MODEL:
        raise BadFile(f"{where}: holds a {kind!r}, not a {'/'.join(PRODUCT_MODEL)} product")
    return DataModel(kind, arrays, meta)


def read_provenance(path: str | os.PathLike) -> dict[str, Any]:
    """How a product file was made: CAL_VER, CRDS_CTX, SDP_VER, EPH_TYPE, CO_PID, CO_RKEY,
    S_* and R_* as meta keys (``calibration_software_version``, ``calops.product_id``...)."""
    where = os.fspath(path)
    if where.endswith(".ecsv"):
        from astropy.table import Table

        meta = Table.read(where, format="ascii.ecsv").meta
        by_kw = {kw.keyword: key for key, kw in product_table().items()}
        prov = {by_kw[k]: v for k, v in meta.items() if k in by_kw}
        old = dict(meta.get("calops", {}).get("provenance", {}))  # files before keywords
        return {**old, **prov}
    with _open(path) as hdul:
        meta = _get_meta(hdul, product_table(), where, None)
    keep = PROVENANCE_ONLY | {"data_processing_software_version", "ephemeris.type"}
    return {k: v for k, v in meta.items()
            if k in keep or k.startswith(("cal_step.", "ref_file."))}


def read_wcs(path: str | os.PathLike) -> Any:
    """The gwcs object in a product's ASDF extension (``meta.wcs``), or None."""
    with _open(path) as hdul:
        try:
            return asdf_ext.read_hdu_wcs(hdul)
        except Exception as exc:  # asdf raises many kinds for a damaged tree
            raise BadFile(f"{os.fspath(path)}: cannot read meta.wcs from the ASDF extension "
                          f"({exc})") from None


# catalog-level keys jwst's source_catalog writes into the ECSV meta (copied from the model)
JWST_CATALOG_META = ("aperture_params", "abvega_offset")


def _sky_column(name: str, a: np.ndarray) -> bool:
    """A (n, 2) [ra, dec] array that is written as one SkyCoord column (jwst's sky_centroid)."""
    return (name == "sky_centroid" or name.startswith("sky_bbox_")) and a.ndim == 2 \
        and a.shape[1] == 2


def _write_catalog(model: DataModel, path: str | os.PathLike,
                   provenance: Mapping[str, Any] | None, overwrite: bool) -> Path:
    """ECSV as jwst writes its catalogs: a sky position is one SkyCoord column, provenance is
    at the top of the meta under its FITS keyword names (CAL_VER, CRDS_CTX, CO_PID...), next to
    jwst's aperture_params/abvega_offset; calops's exact dtypes and meta sit under 'calops'."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.table import Table

    if not os.fspath(path).endswith(".ecsv"):
        raise BadModel(f"a catalog is written as ECSV (…_cat.ecsv), not {os.fspath(path)}")
    lengths = {len(a) for a in model.arrays.values()}
    if len(lengths) > 1 or any(a.ndim != 1 and not _sky_column(n, a)
                               for n, a in model.arrays.items()):
        raise BadModel("catalog arrays must be 1-D columns of one length (or (n, 2) sky "
                       "positions named sky_centroid / sky_bbox_*)")
    prov = _provenance_meta(provenance)
    cols = [SkyCoord(np.asarray(a[:, 0], np.float64) * u.deg,
                     np.asarray(a[:, 1], np.float64) * u.deg, frame="icrs")
            if _sky_column(n, a) else np.asarray(a) for n, a in model.arrays.items()]
    t = Table(cols, names=list(model.arrays))
    table = product_table()
    for key, value in prov.items():
        if value is not None:
            t.meta[table[key].keyword] = asdf_ext.plain(value)
    for key in JWST_CATALOG_META:
        if model.meta.get(key) is not None:
            t.meta[key] = asdf_ext.plain(model.meta[key])
    t.meta["calops"] = {"format": asdf_ext.CALOPS_FORMAT, "kind": "catalog",
                        "meta": asdf_ext.plain(dict(model.meta)),
                        "dtypes": {k: v.dtype.str for k, v in model.arrays.items()}}
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass overwrite=True to replace it")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(p)
    try:
        t.write(tmp, format="ascii.ecsv", overwrite=True)
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def _read_catalog(path: str) -> DataModel:
    from astropy.table import Table

    if not os.path.isfile(path):
        raise BadFile(f"{path}: no such file")
    try:
        t = Table.read(path, format="ascii.ecsv")
    except Exception as exc:  # astropy raises many kinds for a bad ECSV
        raise BadFile(f"{path}: not a readable ECSV catalog ({exc})") from None
    node = dict(t.meta.get("calops", {}))
    arrays = {}
    for name in t.colnames:
        col = t[name]
        if hasattr(col, "ra") and hasattr(col, "dec"):  # a SkyCoord column -> (n, 2) degrees
            arrays[name] = np.column_stack([np.asarray(col.ra.deg, np.float64),
                                            np.asarray(col.dec.deg, np.float64)])
            continue
        if hasattr(col, "mask"):  # ECSV reads empty cells back as masked
            kind = col.dtype.kind
            col = col.filled("" if kind in "US" else np.nan if kind == "f" else 0)
        arrays[name] = np.asarray(col)
    _restore_dtypes(arrays, node.get("dtypes", {}))
    return DataModel("catalog", arrays, dict(node.get("meta", {})))


# ---------------------------------------------------------------------------------------------
# reference files
# ---------------------------------------------------------------------------------------------

def _ref_model(reftype: str, model: DataModel) -> str:
    if reftype == "photom":
        inst = str(model.get("instrument.name", "NIRCAM")).upper()
        if inst not in _PHOTOM_MODEL:
            raise BadModel(f"photom references are written for {', '.join(_PHOTOM_MODEL)}, "
                           f"not {inst}")
        return _PHOTOM_MODEL[inst]
    if reftype == "dark" and "data" in model.arrays and model.arrays["data"].ndim == 4:
        return "DarkMIRIModel"
    return REFERENCE_MODEL[reftype]


def _reftype(model: DataModel) -> str:
    if not model.kind.startswith("ref."):
        raise BadModel(f"write_reference needs a 'ref.<reftype>' model, got {model.kind!r}")
    reftype = model.kind[4:]
    if reftype not in REFERENCE_MODEL:
        raise BadModel(f"unknown reference type {reftype!r}; calops writes "
                       f"{', '.join(REFERENCE_MODEL)}")
    return reftype


def write_reference(model: DataModel, path: str | os.PathLike, overwrite: bool = True,
                    astropy_model: Any = None) -> Path:
    """Write a ``ref.<reftype>`` model as the JWST CRDS reference file (FITS; ASDF for
    distortion, whose astropy model the caller gives: store knows bytes, not optics). Its
    header carries REFTYPE, INSTRUME, DETECTOR, USEAFTER, PEDIGREE, DESCRIP, AUTHOR and the
    match keys present in meta (FILTER, PUPIL, READPATT, SUBARRAY...)."""
    from store import ifu_references  # IFU references in stdatamodels' layouts

    if ifu_references.handles(model):
        return ifu_references.write(model, path, overwrite)
    if model.kind == "ref.extract1d":  # a JSON reference, as JWST's
        from store import spec_products

        return spec_products.write_extract1d(model, path, overwrite)
    from store import spec_references  # spectroscopic layouts (NIRSpec flats, pathloss, ...)

    if spec_references.handles(model):
        return spec_references.write(model, path, overwrite)
    reftype = _reftype(model)
    meta = dict(model.meta)
    meta.setdefault("reftype", reftype.upper())
    if reftype == "distortion":
        return _write_distortion(model, meta, path, overwrite, astropy_model)
    if reftype == "emicorr":
        return _write_emicorr(model, meta, path, overwrite)
    _check_arrays(model, REFERENCE_DTYPES, model.kind)
    images, tables = _split(model.arrays)
    if not images and not tables:
        raise BadModel(f"{model.kind} has no arrays to write")
    ph = _primary(_ref_model(reftype, model))
    hdus = _array_hdus(images, tables)
    sci = hdus[0].header if images.get("data") is not None else None
    _put_meta(meta, _REF_KW, ph.header, sci)
    _put_meta({k: v for k, v in meta.items() if k not in _REF_KW}, product_table(), ph.header, sci)
    ph.header["FILENAME"] = Path(path).name
    tree = asdf_ext.calops_tree(model.kind, model.meta)
    tree["calops"]["dtypes"] = {k: v.dtype.str for k, v in model.arrays.items()}
    return _write_atomic(fits.HDUList([ph, *hdus, asdf_ext.asdf_hdu(tree)]), path, overwrite)


def read_reference(path: str | os.PathLike, arrays: Collection[str] | None = None) -> DataModel:
    """A JWST reference file as ``DataModel("ref.<reftype>")`` (FITS, or ASDF for distortion).

    ``arrays``: read only these image arrays of a FITS reference (e.g. a dark's ``data`` and
    ``dq``, not its ``err``); the others are neither read nor in the model. Each array read
    is checksum-verified as in a full read."""
    where = os.fspath(path)
    from store import spec_references  # spectroscopic layouts (NIRSpec flats, pathloss, ...)

    if spec_references.is_spec_reference(where):
        return spec_references.read(where)
    from store import ifu_references  # IFU references in stdatamodels' layouts

    if ifu_references.is_ifu_reference(where):
        return ifu_references.read(where)
    if where.endswith(".asdf"):
        return _read_emicorr(where) if _is_emicorr(where) else _read_distortion(where)
    if where.endswith(".json"):  # extract1d (JWST's JSON references)
        from store import spec_products

        return spec_products.read_extract1d(where)
    only = None if arrays is None else frozenset(arrays)
    with _open(path, load_data=only is None) as hdul:
        node = asdf_ext.read_calops_node(hdul)
        table = dict(product_table())
        table.update(_REF_KW)
        meta = _get_meta(hdul, table, where, node.get("meta"))
        read = _read_arrays(hdul, where, only)
    dtypes = node.get("dtypes", {})
    _restore_dtypes(read, dtypes if only is None else {k: v for k, v in dtypes.items()
                                                        if k in read})
    kind = node.get("kind")
    if not kind:
        reftype = str(meta.get("reftype") or "").lower()
        if not reftype:
            raise BadFile(f"{where}: no REFTYPE keyword; not a JWST reference file")
        kind = f"ref.{reftype}"
    return DataModel(kind, read, meta)


def _write_distortion(model: DataModel, meta: dict[str, Any], path: str | os.PathLike,
                      overwrite: bool, astropy_model: Any) -> Path:
    import asdf

    astro = astropy_model
    if astro is None and "asdf_model" in model.arrays:
        raw = np.ascontiguousarray(model.arrays["asdf_model"], dtype=np.uint8).tobytes()
        astro = asdf_ext.read_asdf_bytes(raw).get("model")
    if astro is None:
        raise BadModel("a distortion reference needs its astropy model: pass astropy_model= "
                       "(transforms.wcs.distortion_model builds it from distortion.* meta) or "
                       "an asdf_model array")
    schema_meta = {k: v for k, v in meta.items() if k in _REF_KW and v is not None}
    for k, v in schema_meta.items():
        _check_value(k, _REF_KW[k], v)
    det = str(schema_meta.get("instrument.detector", "")).upper()
    if schema_meta.get("instrument.name") == "NIRCAM" and det.startswith("NRC") and len(det) >= 4:
        # module and channel follow from the detector (stdatamodels checks them for NIRCam)
        schema_meta.setdefault("instrument.module", det[3])
        schema_meta.setdefault("instrument.channel",
                               "LONG" if det.endswith(("5", "LONG")) else "SHORT")
    schema_meta["model_type"] = "DistortionModel"
    schema_meta["telescope"] = "JWST"
    schema_meta.setdefault("input_units", "pixel")
    schema_meta.setdefault("output_units", "arcsec")
    tree = {"meta": asdf_ext.nest(schema_meta), "model": astro}
    tree.update(asdf_ext.calops_tree(model.kind, model.meta))
    tree["calops"]["arrays"] = {k: np.ascontiguousarray(v) for k, v in model.arrays.items()}
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass overwrite=True to replace it")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(p)
    try:
        # zlib: an embedded ASDF file (asdf_model) must not show its own block index marker
        asdf.AsdfFile(tree).write_to(tmp, all_array_compression="zlib")
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def _read_distortion(path: str) -> DataModel:
    """A distortion ASDF file: calops's own carries its exact model; any other JWST distortion
    file becomes meta from its tree plus its bytes as the uint8 array ``asdf_model``
    (transforms.wcs.distortion_model reads the ``model`` entry from them)."""
    import asdf

    if not os.path.isfile(path):
        raise BadFile(f"{path}: no such file")
    try:
        raw = Path(path).read_bytes()
        with asdf.open(path, lazy_load=False, memmap=False) as af:
            tree = af.tree
            node = _calops_node(tree)
            if node:
                arrays = {k: np.array(v) for k, v in dict(node.get("arrays") or {}).items()}
                return DataModel(node.get("kind", "ref.distortion"), arrays,
                                 dict(node.get("meta") or {}))
            if tree.get("model") is None:
                raise BadFile(f"{path}: an ASDF distortion file needs a 'model' entry")
            flat = asdf_ext.flatten(asdf_ext.plain(
                {k: v for k, v in dict(tree.get("meta") or {}).items()
                 if isinstance(v, (str, int, float, bool, dict))}))
    except BadFile:
        raise
    except Exception as exc:  # asdf raises many kinds for a damaged file
        raise BadFile(f"{path}: not a readable ASDF file ({exc})") from None
    meta = {k: v for k, v in flat.items() if k in _REF_KW}
    meta.setdefault("reftype", "DISTORTION")
    return DataModel("ref.distortion", {"asdf_model": np.frombuffer(raw, dtype=np.uint8)}, meta)



# --- MIRI EMI correction (ASDF) --------------------------------------------------------------

def _write_emicorr(model: DataModel, meta: dict[str, Any], path: str | os.PathLike,
                   overwrite: bool) -> Path:
    """An EMICORR reference as jwst's EmiModel lays it out: ``frequencies.<name>.frequency``
    and ``.phase_amplitudes``, and ``subarray_cases``, at the top of the ASDF tree."""
    import asdf

    freqs: dict[str, dict[str, Any]] = {}
    for k, v in meta.items():
        if k.startswith("frequencies.") and k.endswith(".frequency"):
            freqs.setdefault(k.split(".")[1], {})["frequency"] = float(v)
    for k, a in model.arrays.items():
        if not (k.startswith("frequencies.") and k.endswith(".phase_amplitudes")):
            raise BadModel(f"an emicorr reference holds frequencies.<name>.phase_amplitudes "
                           f"arrays only, not {k!r}")
        freqs.setdefault(k.split(".")[1], {})["phase_amplitudes"] = np.ascontiguousarray(a)
    bad = sorted(n for n, f in freqs.items() if set(f) != {"frequency", "phase_amplitudes"})
    if bad or not freqs:
        raise BadModel(f"emicorr frequencies need both a frequency and phase_amplitudes: {bad}")
    if not isinstance(meta.get("subarray_cases"), Mapping):
        raise BadModel("an emicorr reference needs its subarray_cases (a mapping)")
    schema_meta = {k: v for k, v in meta.items() if k in _REF_KW and v is not None}
    for k, v in schema_meta.items():
        _check_value(k, _REF_KW[k], v)
    schema_meta["model_type"] = "EmiModel"
    schema_meta["telescope"] = "JWST"
    tree = {"meta": asdf_ext.nest(schema_meta), "frequencies": freqs,
            "subarray_cases": asdf_ext.plain(meta["subarray_cases"])}
    tree.update(asdf_ext.calops_tree(model.kind, model.meta))
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass overwrite=True to replace it")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(p)
    try:
        asdf.AsdfFile(tree).write_to(tmp)
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def _is_emicorr(path: str) -> bool:
    import asdf

    try:
        with asdf.open(path, lazy_load=True, memmap=False) as af:
            return "frequencies" in af.tree and "subarray_cases" in af.tree
    except Exception:
        return False  # _read_distortion reports the damage


def _read_emicorr(path: str) -> DataModel:
    """An EMICORR ASDF file (calops's or jwst's) as ``ref.emicorr``: phase amplitudes as arrays
    ``frequencies.<name>.phase_amplitudes``, frequencies and subarray cases in meta."""
    import asdf

    try:
        with asdf.open(path, lazy_load=False, memmap=False) as af:
            tree = af.tree
            freqs = {str(n): (float(f["frequency"]), np.array(f["phase_amplitudes"]))
                     for n, f in dict(tree["frequencies"]).items()}
            cases = asdf_ext.plain(tree["subarray_cases"])
            node = _calops_node(tree)
            flat = asdf_ext.flatten(asdf_ext.plain(
                {k: v for k, v in dict(tree.get("meta") or {}).items()
                 if isinstance(v, (str, int, float, bool, dict))}))
    except Exception as exc:
        raise BadFile(f"{path}: not a readable EMICORR file ({exc})") from None
    arrays = {f"frequencies.{n}.phase_amplitudes": a for n, (_, a) in freqs.items()}
    if node:
        return DataModel(node.get("kind", "ref.emicorr"), arrays, dict(node.get("meta") or {}))
    meta = {k: v for k, v in flat.items() if k in _REF_KW}
    meta.setdefault("reftype", "EMICORR")
    meta.update({f"frequencies.{n}.frequency": f for n, (f, _) in freqs.items()})
    meta["subarray_cases"] = cases
    return DataModel("ref.emicorr", arrays, meta)
