"""flat_field 2.0: version 1.0 for imaging and MIRI LRS; NIRSpec's three-part flat for FS/MOS.

Imaging and MIRI LRS (one FLAT image) go to ``transforms.image2.flat_field`` (1.0) unchanged.
NIRSpec fixed slits and MOS slitlets are flat-fielded slit by slit as jwst 3.0's
``nirspec_fs_msa``, at each pixel's wavelength:

- **F-flat** (fore optics, FFLAT): the fast-variation row of the slit (FS) or the quadrant
  (MOS, multiplied by the shutter's 1-D flat from the quadrant cube, whose error array gives the
  2-D error); **S-flat** (SFLAT): its fast variation times its image (FS 2-D, MOS a cube over
  wavelength, interpolated linearly); **D-flat** (DFLAT): a cube over wavelength times a fast
  variation. Fast variations are averaged over each pixel's wavelength span with jwst's
  3-point Gauss rule; pixels outside a table or image get NO_FLAT_FIELD|DO_NOT_USE and 1.
- **Errors**: the 1-D error vectors of the tables (the F-flat's, build 10.0) are interpolated
  at each pixel's wavelength and added in quadrature to the image errors, then the three
  components combine as ``flat x sqrt(sum (err_i / flat_i)^2)``.
- **DQ**: the components' DQ OR-ed; NO_FLAT_FIELD implies DO_NOT_USE; DO_NOT_USE adds
  NO_FLAT_FIELD|UNRELIABLE_FLAT (jwst's BADFLAT); a flat <= 0 is NaN and BADFLAT.
- **Applying**: ``data /= flat``, Poisson and read-noise variances ``/= flat^2``,
  ``var_flat = (data / flat x flat_err)^2`` with the already-divided data (jwst 3.0's
  arithmetic), ``err`` their quadrature sum; then build 10.0's rule: every DO_NOT_USE pixel is
  NaN (``match_nans_and_flags``).
- For a fixed-slit point source the flat is evaluated at the wavecorr-corrected wavelengths
  (stored as the ``flatfield_point`` plane) and also at the uncorrected ones
  (``flatfield_uniform``), as jwst; the point version is applied.

References may cover a window of the detector (``subarray.xstart/ystart``, 1-based); pixels
outside it are NO_FLAT_FIELD. The per-slit arithmetic is vectorised numpy (searchsorted and
interp over the slit's pixels).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms.image2 import flat_field as v10
from transforms.instruments.nirspec import slits as N
from transforms.model import DataModel
from transforms.registry import register
from transforms.spec2._common import (NIRSPEC_SLIT_TYPES, Spec2Error, exp_type,
                                      match_nans_and_flags, slit_arrays, slit_meta,
                                      slit_names, srctype_of, update_slits)

NAME, VERSION = "flat_field", "2.0"
FlatFieldParams = v10.FlatFieldParams
BADFLAT = DQ.NO_FLAT_FIELD | DQ.DO_NOT_USE | DQ.UNRELIABLE_FLAT
_GAUSS = ((-math.sqrt(0.6) / 2.0, 5.0 / 18.0), (0.0, 8.0 / 18.0),
          (math.sqrt(0.6) / 2.0, 5.0 / 18.0))


# --------------------------------------------------------------------------------------------
# reference access
# --------------------------------------------------------------------------------------------

def flat_table(ref: DataModel, prefix: str, slit: str | None, fixed: bool
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(wavelength, flat, error) of a FAST_VARIATION table: the row of ``slit`` or ``ANY``
    (fixed slits), else the first row; trimmed to NELEM, NaN and non-positive entries dropped."""
    names = ref.arrays.get(f"{prefix}.slit_name")
    wl = np.atleast_2d(np.asarray(ref[f"{prefix}.wavelength"], np.float64))
    val = np.atleast_2d(np.asarray(ref[f"{prefix}.data"], np.float64))
    err = np.atleast_2d(np.asarray(ref[f"{prefix}.error"], np.float64))
    nelem = ref.arrays.get(f"{prefix}.nelem")
    row = 0
    if fixed and names is not None and slit is not None:
        low = [str(n).strip().lower() for n in names]
        for i, n in enumerate(low):
            if n in ("any", slit.lower()):
                row = i
                break
        else:
            raise Spec2Error(f"{NAME}: {slit} is not in the flat table (nor is ANY)")
    w, v, e = wl[row], val[row], err[row]
    if nelem is not None:
        n = int(np.asarray(nelem).ravel()[row])
        w, v, e = w[:n], v[:n], e[:n]
    ok = np.isfinite(w) & np.isfinite(v) & (w > 0) & (v != 0)
    return w[ok], v[ok], e[ok]


def image_wavelengths(ref: DataModel, prefix: str) -> np.ndarray:
    w = np.asarray(ref[f"{prefix}wavelength.wavelength"], np.float64).ravel()
    return w[np.isfinite(w) & (w > 0)]


def _cut(arr: np.ndarray, ref: DataModel, x0: int, y0: int, nx: int, ny: int,
         fill: float) -> np.ndarray:
    """The part of a (..., ny, nx) reference image over full-frame pixels [y0:y0+ny, x0:x0+nx]
    (0-based), ``fill`` where the reference does not cover them."""
    rx = int(ref.get("subarray.xstart") or 1) - 1
    ry = int(ref.get("subarray.ystart") or 1) - 1
    out = np.full(arr.shape[:-2] + (ny, nx), fill, dtype=np.float64)
    ax0, ay0 = max(x0, rx), max(y0, ry)
    ax1, ay1 = min(x0 + nx, rx + arr.shape[-1]), min(y0 + ny, ry + arr.shape[-2])
    if ax1 > ax0 and ay1 > ay0:
        out[..., ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0] = arr[..., ay0 - ry:ay1 - ry,
                                                               ax0 - rx:ax1 - rx]
    return out


# --------------------------------------------------------------------------------------------
# jwst's building blocks, vectorised
# --------------------------------------------------------------------------------------------

def clean_wl(wl: np.ndarray) -> np.ndarray:
    """Non-positive wavelengths replaced by the column mean (horizontal dispersion), columns
    without any by the nearest good column (jwst's ``clean_wl``)."""
    w = np.where(wl > 0, wl, np.nan).astype(np.float64)
    good = np.isfinite(w).any(axis=0)
    if not good.any():
        return w
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        colmean = np.nanmean(w, axis=0)
    w = np.where(np.isfinite(w), w, colmean[None, :])
    idx = np.flatnonzero(good)
    i0, i1 = idx[0], idx[-1]
    w[:, :i0] = w[:, i0:i0 + 1]
    w[:, i1 + 1:] = w[:, i1:i1 + 1]
    return w


def combine_fast_slow(wl, flat_2d, flat_dq, flat_err, tab_wl, tab_flat, tab_err):
    """The image part times the fast variation averaged over each pixel's wavelength span
    (3-point Gauss), the table error added in quadrature (jwst's ``combine_fast_slow``)."""
    wl_c = clean_wl(wl)
    dwl = np.zeros_like(wl_c)
    if wl_c.shape[1] > 1:
        dwl[:, :-1] = wl_c[:, 1:] - wl_c[:, :-1]
        dwl[:, -1] = dwl[:, -2]
    values = np.zeros_like(wl_c)
    for off, w in _GAUSS:
        values += w * np.interp(wl_c + dwl * off, tab_wl, tab_flat, left=np.nan, right=np.nan)
    err_v = np.interp(wl_c, tab_wl, tab_err, left=np.nan, right=np.nan)
    bad = ~(wl > 0)
    values[bad] = 1.0
    err_v[bad] = 0.0
    missing = np.isnan(values)
    values[missing] = 1.0
    err_v[missing] = 0.0
    dq = (np.zeros(wl.shape, np.uint32) if flat_dq is None else flat_dq.astype(np.uint32).copy())
    dq[missing] |= np.uint32(DQ.NO_FLAT_FIELD | DQ.DO_NOT_USE)
    e2 = np.zeros(wl.shape) if flat_err is None else np.asarray(flat_err, np.float64)
    err = np.sqrt(np.nansum([np.square(err_v * flat_2d), np.square(e2 * values)], axis=0))
    return flat_2d * values, dq, err


def interpolate_flat(cube, cube_dq, cube_err, planes, wl):
    """A 2-D flat from a cube over wavelength planes, linear between the two planes around each
    pixel's wavelength (jwst's ``interpolate_flat``); outside the planes DO_NOT_USE and 1."""
    if cube.ndim < 3:
        return cube, cube_dq, cube_err
    nz = cube.shape[0]
    if nz == 1:
        return cube[0], (cube_dq[0] if cube_dq.ndim == 3 else cube_dq), \
            (cube_err[0] if cube_err.ndim == 3 else cube_err)
    k = np.clip(np.searchsorted(planes, wl, side="right") - 1, 0, nz - 2)
    k = np.where(wl <= planes[0], 0, np.where(wl >= planes[-1], nz - 2, k))
    denom = planes[k + 1] - planes[k]
    zero = denom == 0
    p = np.where(zero, 0.0, (wl - planes[k]) / np.where(zero, 1.0, denom))
    q = 1.0 - p
    iy, ix = np.indices(wl.shape)
    flat = q * cube[k, iy, ix] + p * cube[k + 1, iy, ix]
    err = cube_err.copy() if cube_err.ndim == 2 else q * cube_err[k, iy, ix] + p * cube_err[
        k + 1, iy, ix]
    if cube_dq.ndim == 2:
        dq = cube_dq.astype(np.uint32).copy()
    else:
        dq = np.where(p == 0.0, cube_dq[k, iy, ix], cube_dq[k, iy, ix] | cube_dq[k + 1, iy, ix])
        dq = dq.astype(np.uint32)
        flat = np.where(dq & DQ.DO_NOT_USE, 1.0, flat)
    outside = (wl < planes[0]) | (wl > planes[-1])
    dq[outside] |= np.uint32(DQ.DO_NOT_USE)
    flat = np.where(dq & DQ.DO_NOT_USE, 1.0, flat)
    return flat, dq, err


def _flag_bad(flat, dq):
    bad = np.isnan(flat) | (flat == 0.0)
    dq = dq | np.where(bad, np.uint32(DQ.DO_NOT_USE | DQ.NO_FLAT_FIELD), np.uint32(0))
    return dq


def fore_optics(wl, ref: DataModel | None, slit: str, mos: Mapping[str, Any] | None):
    if ref is None:
        return np.ones(wl.shape), None, None
    if mos is not None:
        q = int(mos["quadrant"]) - 1
        pre = f"quadrants.{q}."
        tab_wl, tab_flat, tab_err = flat_table(ref, f"{pre}flat_table", None, False)
        planes = image_wavelengths(ref, pre)
        my, mx = int(mos["ycen"]) - 1, int(mos["xcen"]) - 1
        one_d = np.asarray(ref[f"{pre}data"], np.float64)[:, my, mx]
        one_e = np.asarray(ref[f"{pre}err"], np.float64)[:, my, mx] \
            if f"{pre}err" in ref.arrays else np.zeros(planes.size)
        tab_flat = tab_flat * np.interp(tab_wl, planes, one_d[:planes.size], 1.0, 1.0)
        err2d = np.interp(wl, planes, one_e[:planes.size], 0.0, 0.0)
    else:
        tab_wl, tab_flat, tab_err = flat_table(ref, "flat_table", slit, True)
        err2d = None
    f, dq, err = combine_fast_slow(wl, 1.0, None, err2d, tab_wl, tab_flat, tab_err)
    dq = _flag_bad(f, dq)
    f = np.where(dq & DQ.DO_NOT_USE, np.nan, f)  # F-flats carry the flux scale: no default
    return f, dq, err


def image_flat(wl, ref: DataModel | None, slit: str, fixed: bool, box: tuple[int, int, int, int]):
    """S- or D-flat: the image (2-D or a cube over wavelength) times the fast variation."""
    if ref is None:
        return np.ones(wl.shape), None, None
    x0, y0, nx, ny = box
    tab_wl, tab_flat, tab_err = flat_table(ref, "flat_table", slit, fixed)
    data = np.asarray(ref["data"], np.float64)
    dqa = np.asarray(ref["dq"]).astype(np.uint32) if "dq" in ref.arrays else \
        np.zeros(data.shape[-2:], np.uint32)
    erra = np.asarray(ref["err"], np.float64) if "err" in ref.arrays else \
        np.zeros(data.shape[-2:])
    img = _cut(data, ref, x0, y0, nx, ny, np.nan)
    idq = _cut(dqa.astype(np.float64), ref, x0, y0, nx, ny,
               float(DQ.NO_FLAT_FIELD | DQ.DO_NOT_USE)).astype(np.uint32)
    ierr = _cut(erra, ref, x0, y0, nx, ny, 0.0)
    if img.ndim == 3:
        flat2, dq, err = interpolate_flat(img, idq, ierr, image_wavelengths(ref, ""), wl)
    else:
        flat2, dq, err = img, idq, ierr
    dq = _flag_bad(flat2, dq)
    flat2 = np.where(dq & DQ.DO_NOT_USE, 1.0, flat2)
    return combine_fast_slow(wl, flat2, dq, err, tab_wl, tab_flat, tab_err)


def combine_dq(parts: list[np.ndarray | None], shape) -> np.ndarray:
    have = [p for p in parts if p is not None]
    dq = np.zeros(shape, np.uint32)
    if not have:
        return dq | np.uint32(BADFLAT)
    for p in have:
        dq |= p.astype(np.uint32)
    dq |= np.where(dq & DQ.NO_FLAT_FIELD, np.uint32(DQ.DO_NOT_USE), np.uint32(0))
    dq |= np.where(dq & DQ.DO_NOT_USE, np.uint32(BADFLAT), np.uint32(0))
    return dq


def nirspec_slit_flat(wl: np.ndarray, refs: Mapping[str, DataModel], slit: str,
                      box: tuple[int, int, int, int], mos: Mapping[str, Any] | None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flat, dq, err) of one slit cutout at full-frame ``box`` (x0, y0, nx, ny; 0-based)."""
    wl = np.where(np.isfinite(wl), wl, 0.0).astype(np.float64)
    fixed = mos is None
    f, fdq, ferr = fore_optics(wl, refs.get("fflat"), slit, mos)
    s, sdq, serr = image_flat(wl, refs.get("sflat"), slit, fixed, box)
    d, ddq, derr = image_flat(wl, refs.get("dflat"), slit, fixed, box)
    flat = f * s * d
    dq = combine_dq([fdq, sdq, ddq], flat.shape)
    var = np.zeros(flat.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        for comp, e in ((f, ferr), (s, serr), (d, derr)):
            if e is not None:
                c = np.where(comp == 0, 1.0, comp)
                var = var + (np.asarray(e) / c) ** 2
        err = flat * np.sqrt(var)
    flat = np.where(dq & DQ.DO_NOT_USE, 1.0, flat)
    badv = ~(flat > 0)
    flat = np.where(badv, np.nan, flat)
    dq = dq | np.where(badv, np.uint32(BADFLAT), np.uint32(0))
    return flat, dq, err


def _apply(arrays: Mapping[str, np.ndarray], flat, fdq, ferr, inverse: bool
           ) -> dict[str, np.ndarray]:
    data = np.asarray(arrays["data"], np.float64)
    f2 = flat * flat
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if not inverse:
            data = data / flat
            for v in ("var_poisson", "var_rnoise"):
                if v in arrays:
                    out[v] = np.asarray(arrays[v], np.float64) / f2
            out["var_flat"] = (data / flat * ferr) ** 2
        else:
            data = data * flat
            for v in ("var_poisson", "var_rnoise"):
                if v in arrays:
                    out[v] = np.asarray(arrays[v], np.float64) * f2
            out["var_flat"] = np.zeros_like(data)
        out["data"] = data
        out["err"] = np.sqrt(sum(out[v] for v in ("var_poisson", "var_rnoise", "var_flat")
                                 if v in out))
    out = {k: v.astype(np.float32) for k, v in out.items()}
    out["dq"] = np.asarray(arrays["dq"]).astype(np.uint32) | fdq
    match_nans_and_flags(out)
    return out


def nirspec(model: DataModel, refs: Mapping[str, DataModel], params: FlatFieldParams
            ) -> DataModel:
    et = exp_type(model)
    if not any(r in refs for r in ("fflat", "sflat", "dflat")):
        raise Spec2Error(f"{NAME}: NIRSpec needs its fflat/sflat/dflat references")
    sx = int(model.get("subarray.xstart") or 1) - 1
    sy = int(model.get("subarray.ystart") or 1) - 1
    ups = {}
    for name in slit_names(model):
        arrays = slit_arrays(model, name)
        sm = slit_meta(model, name)
        if "data" not in arrays or np.size(arrays["data"]) == 0:
            continue
        ny, nx = np.shape(arrays["data"])[-2:]
        box = (sx + int(sm.get("xstart", 1)) - 1, sy + int(sm.get("ystart", 1)) - 1, nx, ny)
        mos = None
        if et == "NRS_MSASPEC":  # shutter_id = xcen + (ycen - 1) 365 (jwst)
            sid = int(sm.get("shutter_id") or 0)
            mos = {"quadrant": sm.get("quadrant"), "xcen": (sid - 1) % N.NROWS_Q + 1
                   if sid else 1, "ycen": (sid - 1) // N.NROWS_Q + 1 if sid else 1}
        wl = arrays.get("wavelength")
        if wl is None:
            raise Spec2Error(f"{NAME}: slit {name} has no wavelength plane; run extract_2d")
        planes: dict[str, np.ndarray] = {}
        if et == "NRS_FIXEDSLIT" and srctype_of(model, sm, None) == "POINT" \
                and isinstance(sm.get("wcs"), Mapping) and sm["wcs"].get("wavecorr"):
            p0 = {k: v for k, v in sm["wcs"].items() if k != "wavecorr"}
            wl_u = N.wavelength_array(p0)
            fu, _, _ = nirspec_slit_flat(wl_u, refs, name, box, mos)
            planes["flatfield_uniform"] = fu.astype(np.float32)
        flat, fdq, ferr = nirspec_slit_flat(np.asarray(wl, np.float64), refs, name, box, mos)
        if planes:
            planes["flatfield_point"] = flat.astype(np.float32)
        out = _apply(arrays, flat, fdq, ferr, params.inverse)
        out.update(planes)
        ups[name] = (out, {})
    status = "COMPLETE" if ups else "SKIPPED"
    return update_slits(model, ups, {"cal_step.flat_field": status})


@register(NAME, VERSION, "spec2", FlatFieldParams, ("flat",), keyword="S_FLAT",
          optional_reftypes=("fflat", "sflat", "dflat"))
def flat_field(model: DataModel, refs, params: FlatFieldParams) -> DataModel:
    """Imaging and MIRI LRS as version 1.0; NIRSpec FS/MOS with the F, S and D flats."""
    if exp_type(model) in NIRSPEC_SLIT_TYPES:
        if not slit_names(model):
            raise Spec2Error(f"{NAME}: NIRSpec slits are flat-fielded after extract_2d")
        return nirspec(model, refs or {}, params)
    return v10.flat_field(model, refs, params)
