"""Integral-field products as DataModels, and the geometry every IFU step shares.

Conventions (docs/spectroscopy.md, "Integral field"):

- An **IFU image** (MIRI MRS or NIRSpec IFU ``rate``/``cal``, JWST IFUImageModel) is the whole
  detector: ``data``, ``dq``, ``err``, ``var_poisson``, ``var_rnoise``, ``var_flat`` (2-D) and
  optional planes. After assign_wcs its meta carries ``wcs.model`` (``calops.mrs`` or
  ``calops.nrs_ifu``) and ``wcs.ifu``: the JSON parameters of the instrument model (the content
  of the references assign_wcs read) from which ``pixels`` evaluates, with numba, each pixel's
  slice, along-slice ``alpha`` and across-slice ``beta`` (arcsec) and wavelength, and ``gwcs``
  rebuilds the exposure's gwcs in jwst's layout. The pointing is the usual ``wcsinfo.*``.
- A **cube** (``s3d``, JWST IFUCubeModel) holds ``data``, ``dq``, ``err``, ``weightmap``
  (nz, ny, nx) and its ``wavelength`` table (nz); meta ``wcsinfo.crval1..3, cdelt1..3,
  crpix1..3, pc*_*, ctype*, cunit*`` (jwst's cube WCS keywords) and ``ifu.*``. A product of
  several cubes (a stage-3 ``s3d`` over several bands) names them in meta ``cubes`` and prefixes
  the arrays ``<cube>:data`` ...; each cube's own meta is ``cube.<cube>.<key>``.
- The ``x1d`` of a cube is an ordinary MultiSpecModel (``transforms.spectral``), one spectrum
  per cube, named by the cube.

Sky geometry (pure functions, numba): an instrument's local frame (alpha, beta) -> V2/V3
(affine per channel) -> velocity aberration -> the pointing's 3-D rotation -> (RA, Dec), and
jwst's cube tangent plane (``radec_to_std``: xi positive to the west, rotated by the cube's
position angle).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit

from transforms.model import DataModel

IFU_EXP_TYPES = ("MIR_MRS", "NRS_IFU")
MRS, NRS_IFU = "calops.mrs", "calops.nrs_ifu"
CUBES = "cubes"
CUBE_ARRAYS = ("data", "dq", "err", "weightmap", "wavelength")


class IfuError(ValueError):
    """An IFU product or geometry that cannot be used as asked."""


def is_ifu_exposure(meta: Mapping[str, Any]) -> bool:
    return str(meta.get("exposure.type", "")).upper() in IFU_EXP_TYPES


def is_ifu_image(model: DataModel) -> bool:
    """A 2-D IFU detector product (rate or cal of an IFU exposure)."""
    d = model.arrays.get("data")
    return (d is not None and d.ndim == 2 and is_ifu_exposure(model.meta)
            and "slits" not in model.meta)


def is_cube(model: DataModel) -> bool:
    """An IFU cube product (one cube, or several named in ``cubes``)."""
    if CUBES in model.meta:
        return True
    d = model.arrays.get("data")
    return d is not None and d.ndim == 3 and "wavelength" in model.arrays


def wcs_params(model: DataModel | Mapping[str, Any]) -> Mapping[str, Any]:
    meta = model.meta if isinstance(model, DataModel) else model
    p = meta.get("wcs.ifu")
    if not isinstance(p, Mapping):
        raise IfuError("the IFU exposure has no instrument model (wcs.ifu): run assign_wcs first")
    return p


def instrument_module(params: Mapping[str, Any]):
    """The instrument model module of an IFU parameter set."""
    m = params.get("model")
    if m == MRS:
        from transforms.instruments.miri import mrs
        return mrs
    if m == NRS_IFU:
        from transforms.instruments.nirspec import ifu
        return ifu
    raise IfuError(f"unknown IFU model {m!r} (calops knows {MRS}, {NRS_IFU})")


# --------------------------------------------------------------------------------------------
# Per-pixel geometry
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pixels:
    """Per pixel of an IFU exposure (arrays of the detector shape): slice label (0 = none),
    along-slice ``alpha`` and across-slice ``beta`` (arcsec, the instrument's local frame),
    wavelength (micron), the pixel's extent along the slice ``dalpha`` (arcsec), across it
    ``dbeta`` (the slice width, arcsec) and in wavelength ``dlam`` (micron)."""

    label: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    lam: np.ndarray
    dalpha: np.ndarray
    dbeta: np.ndarray
    dlam: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return self.label > 0


def pixels(model: DataModel | Mapping[str, Any], shape: Sequence[int] | None = None) -> Pixels:
    """The per-pixel geometry of an IFU exposure from its instrument model."""
    params = wcs_params(model)
    mod = instrument_module(params)
    if shape is None and isinstance(model, DataModel) and "data" in model.arrays:
        shape = model.arrays["data"].shape
    return mod.pixels(params, shape)


def exposure_gwcs(model: DataModel):
    """The gwcs of an IFU exposure (jwst's layout for its instrument), from its model and
    pointing: what a cal file carries as ``meta.wcs``."""
    params = wcs_params(model)
    return instrument_module(params).gwcs(params, model.meta)


def reference_tree(ref: DataModel) -> dict[str, Any] | None:
    """The tree entries of an IFU WCS reference that are astropy models (or arrays derived
    from the model parameters it carries), for its file; None for other references."""
    reftype = ref.kind[4:] if ref.kind.startswith("ref.") else ref.kind
    if isinstance(ref.get("calops.mrs"), Mapping):
        from transforms.instruments.miri import mrs

        return mrs.reference_trees(ref.get("calops.mrs"))[reftype]
    if isinstance(ref.get("calops.mrs_wavelengthrange"), Mapping):
        return dict(ref.get("calops.mrs_wavelengthrange"))
    if isinstance(ref.get("calops.nrs_ifu"), Mapping):
        from transforms.instruments.nirspec import ifu as nrs_ifu

        return nrs_ifu.reference_trees(ref.get("calops.nrs_ifu"))[reftype]
    return None


def file_wcs(model: DataModel) -> Any:
    """The gwcs objects an IFU product's file carries: an IFU cal's, a cube's (or, for a
    multi-cube s3d, cube name -> gwcs); None when it has none."""
    if model.kind == "s3d" or is_cube(model):
        cs = cubes(model)
        ws = {c.name: cube_gwcs(c.meta, cube_wavelengths(c.meta, c.arrays), c.shape)
              for c in cs}
        return ws if CUBES in model.meta else next(iter(ws.values()))
    if is_ifu_image(model) and model.get("wcs.ifu") is not None:
        return exposure_gwcs(model)
    return None


def local_to_v2v3(params: Mapping[str, Any], label: np.ndarray, alpha: np.ndarray,
                  beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(v2, v3) arcsec of local (alpha, beta) points of slices ``label``."""
    lut, table = instrument_module(params).local_affine(params)
    label = np.asarray(label, np.int64)
    a = np.asarray(alpha, np.float64)
    shape = np.broadcast(label, a).shape
    label, a, b = (np.ascontiguousarray(np.broadcast_to(v, shape)).ravel() for v in (
        label, a, np.asarray(beta, np.float64)))
    v2, v3 = _affine(label, a, b, lut, table)
    return v2.reshape(shape), v3.reshape(shape)


@njit(nogil=True, cache=True)
def _affine(label, a, b, lut, table):
    n = label.size
    v2 = np.empty(n)
    v3 = np.empty(n)
    for i in range(n):
        lb = label[i]
        r = lut[lb] if 0 <= lb < lut.size else -1
        if r < 0:
            v2[i] = np.nan
            v3[i] = np.nan
            continue
        t = table[r]
        v2[i] = t[0] * a[i] + t[1] * b[i] + t[4]
        v3[i] = t[2] * a[i] + t[3] * b[i] + t[5]
    return v2, v3


@njit(nogil=True, cache=True)
def _local_to_std(label, a, b, lut, table, m, s, v2r, v3r, ra0, dec0, rot, to_std):
    """local (alpha, beta) -> v2v3 -> sky (-> cube tangent plane when ``to_std``), fused."""
    n = label.size
    o1 = np.empty(n)
    o2 = np.empty(n)
    d2r = math.pi / 180.0
    a2r = d2r / 3600.0
    r2a = 180.0 * 3600.0 / math.pi
    sd0, cd0 = math.sin(dec0 * d2r), math.cos(dec0 * d2r)
    cr, sr = math.cos(-rot * d2r), math.sin(-rot * d2r)
    for i in range(n):
        lb = label[i]
        r = lut[lb] if 0 <= lb < lut.size else -1
        if r < 0 or not (math.isfinite(a[i]) and math.isfinite(b[i])):
            o1[i] = np.nan
            o2[i] = np.nan
            continue
        t = table[r]
        v2 = t[0] * a[i] + t[1] * b[i] + t[4]
        v3 = t[2] * a[i] + t[3] * b[i] + t[5]
        aa = (s * v2 + (1.0 - s) * v2r) * a2r
        bb = (s * v3 + (1.0 - s) * v3r) * a2r
        cb = math.cos(bb)
        x, y, z = cb * math.cos(aa), cb * math.sin(aa), math.sin(bb)
        xo = m[0, 0] * x + m[0, 1] * y + m[0, 2] * z
        yo = m[1, 0] * x + m[1, 1] * y + m[1, 2] * z
        zo = m[2, 0] * x + m[2, 1] * y + m[2, 2] * z
        ra = math.atan2(yo, xo)
        dec = math.asin(min(1.0, max(-1.0, zo)))
        if not to_std:
            rd = ra / d2r
            o1[i] = rd + 360.0 if rd < 0.0 else rd
            o2[i] = dec / d2r
            continue
        dr = ra - ra0 * d2r
        h = math.sin(dec) * sd0 + math.cos(dec) * cd0 * math.cos(dr)
        xs = -(math.cos(dec) * math.sin(dr) / h) * r2a
        ys = ((math.sin(dec) * cd0 - math.cos(dec) * sd0 * math.cos(dr)) / h) * r2a
        o1[i] = xs * cr - ys * sr
        o2[i] = xs * sr + ys * cr
    return o1, o2


def local_to_std(meta: Mapping[str, Any], label, alpha, beta, crval1: float, crval2: float,
                 rot_angle: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The cube tangent-plane (xi, eta) of local points, in one pass (``radec_to_std`` of
    ``local_to_radec``)."""
    return _fused(meta, label, alpha, beta, crval1, crval2, rot_angle, True)


def _fused(meta, label, alpha, beta, crval1, crval2, rot_angle, to_std):
    params = wcs_params(meta)
    lut, table = instrument_module(params).local_affine(params)
    label = np.asarray(label, np.int64)
    a = np.asarray(alpha, np.float64)
    shape = np.broadcast(label, a).shape
    label, a, b = (np.ascontiguousarray(np.broadcast_to(v, shape)).ravel() for v in (
        label, a, np.asarray(beta, np.float64)))
    s, v2r, v3r = va_params(meta)
    o1, o2 = _local_to_std(label, a, b, lut, table, pointing_matrix(meta), s, v2r, v3r,
                           float(crval1), float(crval2), float(rot_angle or 0.0), to_std)
    return o1.reshape(shape), o2.reshape(shape)


# --------------------------------------------------------------------------------------------
# V2/V3 -> sky -> cube tangent plane
# --------------------------------------------------------------------------------------------

def pointing_matrix(meta: Mapping[str, Any]) -> np.ndarray:
    """The 3x3 rotation of ``transforms.wcs.pointing_model`` (V frame unit vectors -> ICRS)."""
    from astropy.modeling.rotations import RotationSequence3D

    keys = ("wcsinfo.v2_ref", "wcsinfo.v3_ref", "wcsinfo.roll_ref", "wcsinfo.ra_ref",
            "wcsinfo.dec_ref")
    missing = [k for k in keys if meta.get(k) is None]
    if missing:
        raise IfuError(f"the exposure lacks its pointing ({', '.join(missing)})")
    v2, v3, roll, ra, dec = (float(meta[k]) for k in keys)
    rot = RotationSequence3D([v2 / 3600.0, -v3 / 3600.0, roll, dec, -ra], axes_order="zyxyz")
    cols = [np.asarray(rot(*e), np.float64) for e in np.eye(3)]
    return np.ascontiguousarray(np.stack(cols, axis=1))


def va_params(meta: Mapping[str, Any]) -> tuple[float, float, float]:
    """(scale, v2_ref, v3_ref) of the velocity-aberration correction (scale 1: none)."""
    s = meta.get("velocity_aberration.scale_factor")
    s = 1.0 if s is None else float(s)
    return s, float(meta.get("wcsinfo.v2_ref") or 0.0), float(meta.get("wcsinfo.v3_ref") or 0.0)


@njit(nogil=True, cache=True)
def _v2v3_to_radec(v2, v3, m, s, v2r, v3r):
    n = v2.size
    ra = np.empty(n)
    dec = np.empty(n)
    d2r = math.pi / 180.0 / 3600.0
    for i in range(n):
        a = (s * v2[i] + (1.0 - s) * v2r) * d2r
        b = (s * v3[i] + (1.0 - s) * v3r) * d2r
        if not (math.isfinite(a) and math.isfinite(b)):
            ra[i] = np.nan
            dec[i] = np.nan
            continue
        cb = math.cos(b)
        x, y, z = cb * math.cos(a), cb * math.sin(a), math.sin(b)
        xo = m[0, 0] * x + m[0, 1] * y + m[0, 2] * z
        yo = m[1, 0] * x + m[1, 1] * y + m[1, 2] * z
        zo = m[2, 0] * x + m[2, 1] * y + m[2, 2] * z
        r = math.atan2(yo, xo) * 180.0 / math.pi
        if r < 0.0:
            r += 360.0
        ra[i] = r
        dec[i] = math.asin(min(1.0, max(-1.0, zo))) * 180.0 / math.pi
    return ra, dec


@njit(nogil=True, cache=True)
def _radec_to_v2v3(ra, dec, m, s, v2r, v3r):
    n = ra.size
    v2 = np.empty(n)
    v3 = np.empty(n)
    d2r = math.pi / 180.0
    for i in range(n):
        cd = math.cos(dec[i] * d2r)
        x, y, z = cd * math.cos(ra[i] * d2r), cd * math.sin(ra[i] * d2r), math.sin(dec[i] * d2r)
        # inverse rotation = transpose
        xo = m[0, 0] * x + m[1, 0] * y + m[2, 0] * z
        yo = m[0, 1] * x + m[1, 1] * y + m[2, 1] * z
        zo = m[0, 2] * x + m[1, 2] * y + m[2, 2] * z
        a = math.atan2(yo, xo) * 180.0 * 3600.0 / math.pi
        b = math.asin(min(1.0, max(-1.0, zo))) * 180.0 * 3600.0 / math.pi
        v2[i] = (a - (1.0 - s) * v2r) / s
        v3[i] = (b - (1.0 - s) * v3r) / s
    return v2, v3


def v2v3_to_radec(meta: Mapping[str, Any], v2, v3) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) deg of (v2, v3) arcsec: velocity aberration and the pointing, as
    ``transforms.wcs`` (``va_model`` then ``pointing_model``)."""
    v2 = np.asarray(v2, np.float64)
    shape = v2.shape
    s, v2r, v3r = va_params(meta)
    ra, dec = _v2v3_to_radec(v2.ravel(), np.asarray(v3, np.float64).ravel(),
                             pointing_matrix(meta), s, v2r, v3r)
    return ra.reshape(shape), dec.reshape(shape)


def radec_to_v2v3(meta: Mapping[str, Any], ra, dec) -> tuple[np.ndarray, np.ndarray]:
    ra = np.asarray(ra, np.float64)
    shape = ra.shape
    s, v2r, v3r = va_params(meta)
    v2, v3 = _radec_to_v2v3(ra.ravel(), np.asarray(dec, np.float64).ravel(),
                            pointing_matrix(meta), s, v2r, v3r)
    return v2.reshape(shape), v3.reshape(shape)


def local_to_radec(meta: Mapping[str, Any], label, alpha, beta) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) of local (alpha, beta) points of an exposure (``meta`` carries ``wcs.ifu``)."""
    return _fused(meta, label, alpha, beta, 0.0, 0.0, None, False)


@njit(nogil=True, cache=True)
def _radec2std(ra, dec, ra0, dec0, rot):
    n = ra.size
    xi = np.empty(n)
    eta = np.empty(n)
    d2r = math.pi / 180.0
    r2a = 180.0 * 3600.0 / math.pi
    sd0, cd0 = math.sin(dec0 * d2r), math.cos(dec0 * d2r)
    cr, sr = math.cos(-rot * d2r), math.sin(-rot * d2r)
    for i in range(n):
        dr = ra[i] * d2r - ra0 * d2r
        d = dec[i] * d2r
        h = math.sin(d) * sd0 + math.cos(d) * cd0 * math.cos(dr)
        x = -(math.cos(d) * math.sin(dr) / h) * r2a
        y = ((math.sin(d) * cd0 - math.cos(d) * sd0 * math.cos(dr)) / h) * r2a
        xi[i] = x * cr - y * sr
        eta[i] = x * sr + y * cr
    return xi, eta


def radec_to_std(ra, dec, crval1: float, crval2: float, rot_angle: float | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """jwst's ``cube_build.coord.radec2std``: tangent-plane (xi, eta) arcsec about (crval1,
    crval2), xi positive to the west, rotated by ``-rot_angle`` deg."""
    ra = np.asarray(ra, np.float64)
    shape = ra.shape
    xi, eta = _radec2std(ra.ravel(), np.asarray(dec, np.float64).ravel(), float(crval1),
                         float(crval2), float(rot_angle or 0.0))
    return xi.reshape(shape), eta.reshape(shape)


def std_to_radec(xi, eta, crval1: float, crval2: float, rot_angle: float | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of ``radec_to_std``."""
    xi = np.asarray(xi, np.float64)
    eta = np.asarray(eta, np.float64)
    if rot_angle:
        r = math.radians(float(rot_angle))
        xi, eta = xi * math.cos(r) - eta * math.sin(r), xi * math.sin(r) + eta * math.cos(r)
    from transforms.spectral import tan_to_sky

    return tan_to_sky(-xi, eta, crval1, crval2)


# --------------------------------------------------------------------------------------------
# Cubes
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cube:
    """One cube: arrays (``data``, ``dq``, ``err``, ``weightmap``, ``wavelength``) and meta
    (the keys a single-cube product has at top level)."""

    name: str
    arrays: Mapping[str, np.ndarray]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.arrays["data"].shape)

    def get(self, key: str, default: Any = None) -> Any:
        return self.meta.get(key, default)


def cube_names(model: DataModel) -> list[str]:
    return [str(c) for c in model.meta.get(CUBES) or []]


def cubes(model: DataModel) -> list[Cube]:
    """The cubes of an s3d product (one for a single-cube product)."""
    names = cube_names(model)
    if not names:
        if not is_cube(model):
            raise IfuError(f"{model.kind} product is not a cube")
        meta = {k: v for k, v in model.meta.items() if not k.startswith("cube.")}
        return [Cube(str(model.get("cube.name") or "cube"), dict(model.arrays), meta)]
    out = []
    top = {k: v for k, v in model.meta.items() if not k.startswith("cube.") and k != CUBES}
    for n in names:
        pre, mpre = f"{n}:", f"cube.{n}."
        arrays = {k[len(pre):]: v for k, v in model.arrays.items() if k.startswith(pre)}
        meta = dict(top)
        meta.update({k[len(mpre):]: v for k, v in model.meta.items() if k.startswith(mpre)})
        out.append(Cube(n, arrays, meta))
    return out


def cube_product(cubes_: Sequence[Cube], kind: str = "s3d",
                 shared: Mapping[str, Any] | None = None) -> DataModel:
    """An s3d product of ``cubes_``: a single-cube product for one (its meta at top level, and
    ``cube.name``), else the multi-cube layout (``shared`` meta at top level, each cube's meta
    that differs from it under ``cube.<name>.``)."""
    if not cubes_:
        raise IfuError("a cube product needs at least one cube")
    if len(cubes_) == 1:
        c = cubes_[0]
        return DataModel(kind, dict(c.arrays), {**c.meta, "cube.name": c.name})
    names = [c.name for c in cubes_]
    if len(set(names)) != len(names) or any(":" in n or "." in n for n in names):
        raise IfuError(f"cube names must be unique, without ':' or '.', got {names}")
    top = dict(shared or {})
    arrays: dict[str, np.ndarray] = {}
    for c in cubes_:
        for k, v in c.arrays.items():
            arrays[f"{c.name}:{k}"] = v
        for k, v in c.meta.items():
            if k not in top or top[k] != v:
                top[f"cube.{c.name}.{k}"] = v
    top[CUBES] = names
    return DataModel(kind, arrays, top)


def cube_wavelengths(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    w = arrays.get("wavelength")
    if w is not None:
        return np.asarray(w, np.float64)
    n = arrays["data"].shape[0]
    return float(meta["wcsinfo.crval3"]) + (np.arange(n) + 1.0 - float(
        meta["wcsinfo.crpix3"])) * float(meta["wcsinfo.cdelt3"])


def cube_gwcs(meta: Mapping[str, Any], wavelength: np.ndarray, shape: Sequence[int]):
    """The cube's gwcs (``detector`` (x, y, z) -> ``world`` (RA, Dec, lambda)) from its FITS
    WCS keywords, as ``jwst.assign_wcs.pointing.create_fitswcs`` builds it: TAN projection with
    the PC matrix and CDELT (deg), a linear wavelength axis or the wavelength table."""
    from astropy import coordinates as coord
    from astropy import units as u
    from astropy.modeling import models as m
    from gwcs import coordinate_frames as cf
    from gwcs import wcs as gw

    nz, ny, nx = (int(v) for v in shape)
    internal = str(meta.get("wcsinfo.ctype1", "RA---TAN")).upper() in ("MRSALPHA", "NRSSLICERX")
    pc = np.array([[float(meta.get("wcsinfo.pc1_1", -1.0)), float(meta.get("wcsinfo.pc1_2", 0))],
                   [float(meta.get("wcsinfo.pc2_1", 0.0)), float(meta.get("wcsinfo.pc2_2", 1))]])
    c1, c2 = float(meta["wcsinfo.cdelt1"]), float(meta["wcsinfo.cdelt2"])
    shift = m.Shift(1.0 - float(meta["wcsinfo.crpix1"])) & m.Shift(
        1.0 - float(meta["wcsinfo.crpix2"]))
    # FITS paper I: intermediate x_i = CDELT_i sum_j PC_ij (p_j - CRPIX_j)
    aff = m.AffineTransformation2D(matrix=np.diag([c1, c2]) @ pc)
    lam = np.asarray(wavelength, np.float64)
    if meta.get("wcsinfo.cdelt3") is not None and str(meta.get("wcsinfo.ctype3", "WAVE")) \
            == "WAVE":
        spec = (m.Shift(1.0 - float(meta["wcsinfo.crpix3"])) | m.Scale(
            float(meta["wcsinfo.cdelt3"])) | m.Shift(float(meta["wcsinfo.crval3"])))
    else:
        pts = np.arange(lam.size, dtype=np.float64)
        spec = m.Tabular1D(points=pts, lookup_table=lam, bounds_error=False, fill_value=np.nan)
        if lam.size > 1:
            spec.inverse = m.Tabular1D(points=lam, lookup_table=pts, bounds_error=False,
                                       fill_value=np.nan)
    specf = cf.SpectralFrame(name="spectral", axes_order=(2,), unit=(u.micron,),
                             axes_names=("wavelength",))
    detector = cf.CoordinateFrame(naxes=3, axes_type=("PIXEL", "PIXEL", "PIXEL"),
                                  axes_order=(0, 1, 2), unit=(u.pix, u.pix, u.pix),
                                  name="detector", axes_names=("x", "y", "z"))
    if internal:
        spatial = shift | aff | (m.Shift(float(meta["wcsinfo.crval1"])) & m.Shift(
            float(meta["wcsinfo.crval2"])))
        unit = str(meta.get("wcsinfo.cunit1", "arcsec"))
        sp = cf.Frame2D(name="local", axes_order=(0, 1), unit=(unit, unit),
                        axes_names=("along", "across") if unit == "arcsec" else ("x", "y"))
    else:
        spatial = (shift | aff | m.Pix2Sky_TAN() | m.RotateNative2Celestial(
            float(meta["wcsinfo.crval1"]), float(meta["wcsinfo.crval2"]), 180.0))
        sp = cf.CelestialFrame(name="sky", axes_order=(0, 1), reference_frame=coord.ICRS(),
                               unit=(u.deg, u.deg), axes_names=("RA", "DEC"))
    world = cf.CompositeFrame([sp, specf], name="world")
    transform = spatial & spec
    w = gw.WCS([(detector, transform), (world, None)])
    w.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5), (-0.5, nz - 0.5))
    return w
