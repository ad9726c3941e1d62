"""Spectroscopic products as DataModels, and the slit geometry the spectral steps need.

The shared conventions (docs/spectroscopy.md, "Data model"):

- **Multi-slit** products (JWST MultiSlitModel: NIRSpec FS/MOS ``cal`` after extract_2d, the
  ``s2d`` of resample_spec) have meta ``"slits"`` = the slit names in order, arrays
  ``"<slit>:data"``, ``"<slit>:dq"``, ``"<slit>:err"``, ``"<slit>:var_*"``,
  ``"<slit>:wavelength"`` (per pixel, micron) and optional planes, and per-slit metadata
  ``"slit.<slit>.<key>"`` (name, xstart, ystart, xsize, ysize, source_id, source_name,
  source_xpos, source_ypos, srctype, shutter_state, dispersion_direction, ``wcs`` ...).
- A **single spectral image** (MIRI LRS cal; a one-source ``s2d``, JWST SlitModel) is an
  ordinary 2-D product plus a ``wavelength`` array; its slit attributes are ``"slit.<key>"``
  (and, as specsim writes LRS, ``wcsinfo.dispersion_direction`` and ``wcs.*``).
- **1-D spectra** (``x1d``, JWST MultiSpecModel): meta ``"spectra"`` = spectrum names, table
  columns ``"<spec>:<column>"`` (stdatamodels' spec_table columns, lower case), per-spectrum
  meta ``"spec.<spec>.<key>"``.
- **Combined spectra** (``c1d``, CombinedSpecModel): columns ``wavelength, flux, error,
  surf_bright, sb_error, dq, weight, n_input``; a product of several sources names them in
  ``"spectra"`` and prefixes the columns as ``x1d`` does.

Geometry: a slit's ``wcs`` metadata is JSON-able parameters from which its gwcs
(``detector -> slit_frame -> world``) is rebuilt by a pure function. ``slit_gwcs`` dispatches on
``params["model"]``: ``"calops.analytic_slit"`` (a polynomial trace with known wavelengths and
sky positions, defined here, for tests and benchmarks), ``"calops.s2d"`` (a rectified product of
resample_spec), anything else to ``transforms.instruments.slit_wcs(params)`` (the instrument
models). ``geometry`` evaluates it at pixel centres (cutout pixel coordinates).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transforms.model import DataModel

SLITS = "slits"
SPECTRA = "spectra"
ANALYTIC = "calops.analytic_slit"
S2D = "calops.s2d"
# stdatamodels' spec_table columns (lower case), in table order
SPEC_COLUMNS = ("wavelength", "flux", "flux_error", "flux_var_poisson", "flux_var_rnoise",
                "flux_var_flat", "surf_bright", "sb_error", "sb_var_poisson", "sb_var_rnoise",
                "sb_var_flat", "dq", "background", "bkgd_error", "bkgd_var_poisson",
                "bkgd_var_rnoise", "bkgd_var_flat", "npixels")
C1D_COLUMNS = ("wavelength", "flux", "error", "surf_bright", "sb_error", "dq", "weight",
               "n_input")
VARIANCES = ("var_poisson", "var_rnoise", "var_flat")
HORIZONTAL, VERTICAL = 1, 2
# single-image products: slit attribute -> the top-level key that also carries it
_SINGLE_FALLBACK = {"dispersion_direction": "wcsinfo.dispersion_direction",
                    "srctype": "target.source_type"}


class SpectralError(ValueError):
    """A spectroscopic product or slit geometry that cannot be used as asked."""


# --------------------------------------------------------------------------------------------
# Slits of a 2-D spectral product
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Slit:
    """One 2-D spectrum: its name, arrays (``data``, ``dq``, ``wavelength``...) and attributes
    (the ``slit.<name>.<key>`` metadata without the prefix)."""

    name: str
    arrays: Mapping[str, np.ndarray]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.arrays["data"].shape) if "data" in self.arrays else ()

    def get(self, key: str, default: Any = None) -> Any:
        return self.meta.get(key, default)

    def replace(self, arrays: Mapping[str, np.ndarray] | None = None,
                meta: Mapping[str, Any] | None = None, name: str | None = None,
                drop: tuple[str, ...] = ()) -> Slit:
        a = {k: v for k, v in self.arrays.items() if k not in drop}
        a.update(arrays or {})
        m = {k: v for k, v in self.meta.items() if k not in drop}
        m.update(meta or {})
        return Slit(self.name if name is None else name, a, m)

    @property
    def dispaxis(self) -> int:
        d = self.meta.get("dispersion_direction")
        return int(d) if d in (1, 2) else HORIZONTAL


def column_reduce(reduce: Any, a: np.ndarray) -> np.ndarray:
    """``reduce(a, axis=0)`` for a NaN-skipping numpy reduction (``np.nanmean``,
    ``np.nanmedian``), NaN without numpy's RuntimeWarning ('Mean of empty slice', 'All-NaN
    slice') for the columns with no finite value. The array keeps its shape (those columns
    are reduced as zeros, then set to NaN), so every other column goes through exactly the
    same numpy code as ``reduce(a, axis=0)``: the same bits (a NaN's sign bit may differ from
    numpy's: use the finite columns only)."""
    a = np.asarray(a)
    empty = ~np.isfinite(a).any(axis=0)
    if not empty.any():
        return reduce(a, axis=0)
    out = np.asarray(reduce(np.where(empty, a.dtype.type(0), a), axis=0))
    out[empty] = np.nan
    return out


def is_multislit(model: DataModel) -> bool:
    """A product with named slits (MultiSlitModel layout)."""
    return SLITS in model.meta


def is_spectral_image(model: DataModel) -> bool:
    """A 2-D spectral product: multi-slit, or a single image that carries wavelengths."""
    return is_multislit(model) or ("wavelength" in model.arrays and "data" in model.arrays)


def slit_names(model: DataModel) -> list[str]:
    return [str(s) for s in model.meta.get(SLITS) or []]


def _single_name(model: DataModel) -> str:
    name = model.get("slit.name")
    if name:
        return str(name)
    return str(model.get("exposure.type") or "ANY")


def slits(model: DataModel) -> list[Slit]:
    """The slits of a 2-D spectral product, in order (one for a single spectral image)."""
    if is_multislit(model):
        out = []
        names = slit_names(model)
        if len(set(names)) != len(names):
            raise SpectralError(f"{model.kind} product names a slit twice: {names}")
        for name in names:
            pre = f"{name}:"
            arrays = {k[len(pre):]: v for k, v in model.arrays.items() if k.startswith(pre)}
            mpre = f"slit.{name}."
            meta = {k[len(mpre):]: v for k, v in model.meta.items() if k.startswith(mpre)}
            meta.setdefault("name", name)
            out.append(Slit(name, arrays, meta))
        return out
    meta = {k[5:]: v for k, v in model.meta.items()
            if k.startswith("slit.") and k.count(".") == 1}
    for k, top in _SINGLE_FALLBACK.items():
        if meta.get(k) is None and model.get(top) is not None:
            meta[k] = model.get(top)
    if meta.get("wcs") is None:
        wcs = {k[4:]: v for k, v in model.meta.items() if k.startswith("wcs.")}
        if wcs:
            meta["wcs"] = wcs
    name = _single_name(model)
    meta.setdefault("name", name)
    return [Slit(name, dict(model.arrays), meta)]


def with_slits(base: DataModel, new: Sequence[Slit], kind: str | None = None,
               meta: Mapping[str, Any] | None = None, single: bool | None = None) -> DataModel:
    """A product of ``base``'s kind (or ``kind``) holding ``new`` slits; top-level meta is
    ``base``'s (its per-slit keys dropped) updated by ``meta``. ``single`` writes one slit as a
    single spectral image (default: as ``base`` is)."""
    if single is None:
        single = not is_multislit(base)
    top = {k: v for k, v in base.meta.items()
           if not (k.startswith("slit.") or k == SLITS)}
    if single:
        if len(new) != 1:
            raise SpectralError(f"a single spectral image holds one slit, got {len(new)}")
        s = new[0]
        top.update({f"slit.{k}": v for k, v in s.meta.items()
                    if k not in ("wcs",) or not any(x.startswith("wcs.") for x in base.meta)})
        if s.meta.get("dispersion_direction") is not None and \
                "wcsinfo.dispersion_direction" in base.meta:
            top["wcsinfo.dispersion_direction"] = s.meta["dispersion_direction"]
        top.update(meta or {})
        return DataModel(kind or base.kind, dict(s.arrays), top)
    names = [s.name for s in new]
    if len(set(names)) != len(names):
        raise SpectralError(f"slit names must be unique, got {names}")
    arrays: dict[str, np.ndarray] = {}
    for s in new:
        if ":" in s.name:
            raise SpectralError(f"slit name {s.name!r} cannot contain ':'")
        for k, v in s.arrays.items():
            arrays[f"{s.name}:{k}"] = v
        for k, v in s.meta.items():
            top[f"slit.{s.name}.{k}"] = v
    top[SLITS] = names
    top.update(meta or {})
    return DataModel(kind or base.kind, arrays, top)


# --------------------------------------------------------------------------------------------
# 1-D spectra
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Spectrum:
    """One 1-D spectrum: table columns by name and its attributes (``spec.<name>.<key>``)."""

    name: str
    columns: Mapping[str, np.ndarray]
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, col: str) -> np.ndarray:
        return self.columns[col]

    def get(self, key: str, default: Any = None) -> Any:
        return self.meta.get(key, default)


def spectrum_names(model: DataModel) -> list[str]:
    return [str(s) for s in model.meta.get(SPECTRA) or []]


def spectra(model: DataModel) -> list[Spectrum]:
    """The spectra of an ``x1d`` or ``c1d`` product (a single-source c1d has one, unnamed)."""
    names = spectrum_names(model)
    if not names:
        if "wavelength" in model.arrays:
            meta = {k[5:]: v for k, v in model.meta.items()
                    if k.startswith("spec.") and k.count(".") == 1}
            return [Spectrum(str(model.get("spec.name") or "spectrum"),
                             {k: v for k, v in model.arrays.items() if ":" not in k}, meta)]
        return []
    out = []
    for name in names:
        pre, mpre = f"{name}:", f"spec.{name}."
        cols = {k[len(pre):]: v for k, v in model.arrays.items() if k.startswith(pre)}
        meta = {k[len(mpre):]: v for k, v in model.meta.items() if k.startswith(mpre)}
        out.append(Spectrum(name, cols, meta))
    return out


def spectra_product(kind: str, base_meta: Mapping[str, Any], specs: Sequence[Spectrum],
                    meta: Mapping[str, Any] | None = None, single: bool = False) -> DataModel:
    """An ``x1d``/``c1d`` product of ``specs`` (``single``: one unprefixed spectrum, the
    CombinedSpecModel layout)."""
    top = {k: v for k, v in base_meta.items()
           if not (k.startswith(("slit.", "spec.")) or k in (SLITS, SPECTRA))}
    top.update(meta or {})
    if single:
        if len(specs) != 1:
            raise SpectralError(f"a single-spectrum product holds one spectrum, got {len(specs)}")
        s = specs[0]
        top.update({f"spec.{k}": v for k, v in s.meta.items()})
        return DataModel(kind, dict(s.columns), top)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise SpectralError(f"spectrum names must be unique, got {names}")
    arrays: dict[str, np.ndarray] = {}
    for s in specs:
        if ":" in s.name:
            raise SpectralError(f"spectrum name {s.name!r} cannot contain ':'")
        lengths = {len(v) for v in s.columns.values()}
        if len(lengths) > 1:
            raise SpectralError(f"spectrum {s.name}: columns of different lengths {lengths}")
        for k, v in s.columns.items():
            arrays[f"{s.name}:{k}"] = v
        for k, v in s.meta.items():
            top[f"spec.{s.name}.{k}"] = v
    top[SPECTRA] = names
    return DataModel(kind, arrays, top)


# --------------------------------------------------------------------------------------------
# Source identities and stage-3 names
# --------------------------------------------------------------------------------------------

def source_key(slit: Slit) -> str:
    """The source field of a stage-3 product name: ``s<id>`` (5 digits, as in build 10.0),
    ``b<id>`` for a MOS background slitlet, ``v<id>`` for a virtual one (negative id)."""
    sid = slit.get("source_id")
    if sid is None:
        return "s00000"
    sid = int(sid)
    name = str(slit.get("source_name") or "")
    if "BKG" in name.upper():
        return f"b{sid:05d}"
    if sid < 0:
        return f"v{-sid:05d}"
    return f"s{sid:05d}"


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Geometry:
    """Per-pixel coordinates of one slit (arrays of the slit's shape, float64): wavelength
    (micron), sky position (deg; None without a sky WCS) and slit-frame y (None if unknown)."""

    wavelength: np.ndarray
    ra: np.ndarray | None = None
    dec: np.ndarray | None = None
    slit_y: np.ndarray | None = None

    @property
    def sky(self) -> bool:
        return self.ra is not None and self.dec is not None


def _poly(c: Sequence[float], x: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x, dtype=np.float64)
    for k in reversed(list(c)):
        out = out * x + float(k)
    return out


def tan_to_sky(xi_arcsec: np.ndarray, eta_arcsec: np.ndarray, ra0: float, dec0: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic (TAN) deprojection: tangent-plane offsets (arcsec; xi east, eta north) about
    (ra0, dec0) to (ra, dec) in degrees."""
    xi = np.radians(np.asarray(xi_arcsec, np.float64) / 3600.0)
    eta = np.radians(np.asarray(eta_arcsec, np.float64) / 3600.0)
    d0 = math.radians(dec0)
    den = math.cos(d0) - eta * math.sin(d0)
    ra = math.radians(ra0) + np.arctan2(xi, den)
    dec = np.arctan2(math.sin(d0) + eta * math.cos(d0), np.hypot(xi, den))
    return np.degrees(ra) % 360.0, np.degrees(dec)


def sky_to_tan(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic projection of (ra, dec) (deg) about (ra0, dec0): (xi, eta) in arcsec."""
    r = np.radians(np.asarray(ra, np.float64) - ra0)
    d = np.radians(np.asarray(dec, np.float64))
    d0 = math.radians(dec0)
    cosc = math.sin(d0) * np.sin(d) + math.cos(d0) * np.cos(d) * np.cos(r)
    with np.errstate(invalid="ignore", divide="ignore"):
        xi = np.cos(d) * np.sin(r) / cosc
        eta = (math.cos(d0) * np.sin(d) - math.sin(d0) * np.cos(d) * np.cos(r)) / cosc
    return np.degrees(xi) * 3600.0, np.degrees(eta) * 3600.0


def analytic_slit_params(*, disp_axis: int = 1, trace: Sequence[float] = (10.0, 0.0, 0.0),
                         dispersion: Sequence[float] = (1.0, 1e-3, 0.0), shear: float = 0.0,
                         slit_pix: float = 5.0, scale: float = 0.1, ra: float = 53.0,
                         dec: float = -27.8, pa: float = 0.0) -> dict[str, Any]:
    """Parameters of the analytic slit model (cutout pixel coordinates; ``xd`` along the
    dispersion, ``yd`` across it):

    ``T(xd) = trace[0] + trace[1] xd + trace[2] xd^2`` is the slit centre's cross-dispersion
    position; ``d = yd - T(xd)``; the wavelength is ``P(xd + shear d)`` with
    ``P(u) = dispersion[0] + dispersion[1] u + dispersion[2] u^2`` (micron: iso-wavelength
    lines tilted by ``shear``); the slit coordinate is ``y_slit = d / slit_pix`` (so the open
    slit, ``|y_slit| <= 0.5``, is ``slit_pix`` pixels high); the sky position is ``d * scale``
    arcsec from (ra, dec) along position angle ``pa`` (deg E of N).
    """
    return {"model": ANALYTIC, "disp_axis": int(disp_axis),
            "trace": [float(t) for t in trace], "dispersion": [float(c) for c in dispersion],
            "shear": float(shear), "slit_pix": float(slit_pix), "scale": float(scale),
            "ra": float(ra), "dec": float(dec), "pa": float(pa)}


def _analytic(params: Mapping[str, Any], x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """(wavelength, ra, dec, slit_y, d) of the analytic model at cutout pixels (x, y)."""
    if int(params.get("disp_axis", 1)) == VERTICAL:
        xd, yd = y, x
    else:
        xd, yd = x, y
    d = yd - _poly(params["trace"], xd)
    lam = _poly(params["dispersion"], xd + float(params.get("shear", 0.0)) * d)
    s = d * float(params["scale"])
    pa = math.radians(float(params.get("pa", 0.0)))
    ra, dec = tan_to_sky(s * math.sin(pa), s * math.cos(pa), float(params["ra"]),
                         float(params["dec"]))
    return lam, ra, dec, d / float(params["slit_pix"]), d


def _pick(i: int, n: int):
    from astropy.modeling import models as m

    return m.Mapping((i,), n_inputs=n)


def analytic_gwcs(params: Mapping[str, Any]):
    """The analytic slit model as a gwcs (``detector -> slit_frame -> world``), built from
    standard astropy models only (so it serialises to ASDF), with exact inverses where jwst
    needs them (slit_frame -> detector, world -> slit_frame). Wavelengths in micron."""
    from astropy import coordinates as coord
    from astropy import units as u
    from astropy.modeling import models as m
    from gwcs import coordinate_frames as cf
    from gwcs import wcs as gw

    t = (list(params["trace"]) + [0.0] * 3)[:3]
    c = (list(params["dispersion"]) + [0.0] * 3)[:3]
    shear = float(params.get("shear", 0.0))
    slit_pix, scale = float(params["slit_pix"]), float(params["scale"])
    vertical = int(params.get("disp_axis", 1)) == VERTICAL
    T = m.Polynomial1D(2, c0=t[0], c1=t[1], c2=t[2])
    P = m.Polynomial1D(2, c0=c[0], c1=c[1], c2=c[2])
    # forward, from (xd, yd): d = yd - T(xd); lam = P(xd + shear d); y_slit = d / slit_pix
    d = _pick(1, 2) - (_pick(0, 2) | T)
    lam = (_pick(0, 2) + (d | m.Scale(shear))) | P
    det2slit = ((m.Mapping((1, 0)) if vertical else m.Mapping((0, 1)))
                | m.Mapping((0, 1, 0, 1, 0, 1))
                | ((_pick(0, 2) | m.Const1D(0.0)) & (d | m.Scale(1.0 / slit_pix)) & lam))
    # inverse, from (x_slit, y_slit, lam): d = y_slit slit_pix; xd = Pinv(lam) - shear d;
    # yd = d + T(xd)
    di = _pick(1, 3) | m.Scale(slit_pix)
    xd = (_pick(2, 3) | _poly_inverse(c)) - (di | m.Scale(shear))
    yd = di + (xd | T)
    inv = m.Mapping((0, 1, 2, 0, 1, 2)) | (xd & yd)
    if vertical:
        inv = inv | m.Mapping((1, 0))
    det2slit.inverse = inv
    # slit_frame -> world: the slit y offset lies along position angle pa on the sky
    pa = math.radians(float(params.get("pa", 0.0)))
    k = slit_pix * scale / 3600.0  # deg per unit y_slit
    sky = m.Pix2Sky_TAN() | m.RotateNative2Celestial(float(params["ra"]), float(params["dec"]),
                                                     180.0)
    xi = _pick(1, 3) | m.Scale(k * math.sin(pa))
    eta = _pick(1, 3) | m.Scale(k * math.cos(pa))
    slit2world = (m.Mapping((0, 1, 2, 0, 1, 2, 0, 1, 2)) | (xi & eta & _pick(2, 3))
                  | (sky & m.Identity(1)))
    along = ((_pick(0, 3) | m.Scale(math.sin(pa))) + (_pick(1, 3) | m.Scale(math.cos(pa))))
    slit2world.inverse = ((sky.inverse & m.Identity(1)) | m.Mapping((0, 1, 2, 0, 1, 2, 0, 1, 2))
                          | ((_pick(0, 3) | m.Const1D(0.0)) & (along | m.Scale(1.0 / k))
                             & _pick(2, 3)))
    det = cf.Frame2D(name="detector", axes_order=(0, 1))
    slit_spatial = cf.Frame2D(name="slit_spatial", axes_order=(0, 1), unit=("", ""),
                              axes_names=("x_slit", "y_slit"))
    spec = cf.SpectralFrame(name="spectral", axes_order=(2,), unit=(u.micron,),
                            axes_names=("wavelength",))
    slit_frame = cf.CompositeFrame([slit_spatial, spec], name="slit_frame")
    skyf = cf.CelestialFrame(name="sky", axes_order=(0, 1), reference_frame=coord.ICRS())
    world = cf.CompositeFrame([skyf, spec], name="world")
    return gw.WCS([(det, det2slit), (slit_frame, slit2world), (world, None)])


def _poly_inverse(c: Sequence[float]):
    """An astropy model of the inverse of ``P(u) = c0 + c1 u + c2 u^2`` (the root continuous
    with the linear solution)."""
    from astropy.modeling import models as m

    c0, c1, c2 = (float(v) for v in c)
    if c1 == 0.0:
        raise SpectralError("the analytic slit model needs a non-zero linear dispersion")
    if c2 == 0.0:
        return m.Shift(-c0) | m.Scale(1.0 / c1)
    # u = (-c1 + sign(c1) sqrt(c1^2 + 4 c2 (lam - c0))) / (2 c2)
    sign = 1.0 if c1 > 0 else -1.0
    root = (m.Shift(-c0) | m.Scale(4.0 * c2) | m.Shift(c1 * c1)) ** m.Const1D(0.5)
    return root | m.Scale(sign) | m.Shift(-c1) | m.Scale(1.0 / (2.0 * c2))


def s2d_gwcs(params: Mapping[str, Any], wavelength: np.ndarray):
    """The gwcs of a rectified ``s2d`` slit (``detector -> slit_frame -> world``), as jwst's
    resample_spec builds for NIRSpec: the dispersion axis is a wavelength table (``wavelength``:
    one value per output column, or row for vertical dispersion), the spatial axis is linear
    along the slit on the sky (``s = s0 + ds * i`` arcsec from (ra0, dec0) along ``pa``) and
    the slit frame's y is linear in the spatial index (``slit_y0 + dslit_y * i``)."""
    from astropy import coordinates as coord
    from astropy import units as u
    from astropy.modeling import models as m
    from gwcs import coordinate_frames as cf
    from gwcs import wcs as gw

    lam = np.asarray(wavelength, np.float64)
    n = lam.size
    pts = np.arange(n, dtype=np.float64)
    good = np.isfinite(lam)
    if good.sum() < 2:
        raise SpectralError("an s2d WCS needs at least two finite wavelengths")
    lam = np.interp(pts, pts[good], lam[good])
    tab = m.Tabular1D(points=pts, lookup_table=lam, bounds_error=False, fill_value=None)
    order = np.argsort(lam)
    tab.inverse = m.Tabular1D(points=lam[order], lookup_table=pts[order], bounds_error=False,
                              fill_value=None)
    vertical = int(params.get("disp_axis", 1)) == VERTICAL
    s0, ds = float(params["s0"]), float(params["ds"])
    y0, dy = float(params.get("slit_y0", 0.0)), float(params.get("dslit_y", 1.0))
    # detector (x, y) -> slit_frame (0, y_slit, lam): index i is the spatial pixel
    disp, spat = (1, 0) if vertical else (0, 1)
    ys = m.Scale(dy) | m.Shift(y0)
    det2slit = (m.Mapping((disp, spat, disp)) | ((_pick(0, 1) | m.Const1D(0.0)) & ys & tab))
    inv_ys = m.Shift(-y0) | m.Scale(1.0 / dy)
    inv = m.Mapping((1, 2)) | (inv_ys & tab.inverse)  # (spatial index, disp index)
    det2slit.inverse = inv | (m.Mapping((1, 0)) if not vertical else m.Identity(2))
    pa = math.radians(float(params.get("pa", 0.0)))
    sky = m.Pix2Sky_TAN() | m.RotateNative2Celestial(float(params["ra0"]),
                                                     float(params["dec0"]), 180.0)
    # y_slit -> spatial index -> s arcsec -> (xi, eta) deg
    to_s = inv_ys | m.Scale(ds) | m.Shift(s0) | m.Scale(1.0 / 3600.0)
    xi = _pick(1, 3) | to_s | m.Scale(math.sin(pa))
    eta = _pick(1, 3) | to_s | m.Scale(math.cos(pa))
    slit2world = (m.Mapping((0, 1, 2, 0, 1, 2, 0, 1, 2)) | (xi & eta & _pick(2, 3))
                  | (sky & m.Identity(1)))
    along = ((_pick(0, 3) | m.Scale(math.sin(pa))) + (_pick(1, 3) | m.Scale(math.cos(pa))))
    from_s = m.Scale(3600.0) | m.Shift(-s0) | m.Scale(1.0 / ds) | ys
    slit2world.inverse = ((sky.inverse & m.Identity(1)) | m.Mapping((0, 1, 2, 0, 1, 2, 0, 1, 2))
                          | ((_pick(0, 3) | m.Const1D(0.0)) & (along | from_s) & _pick(2, 3)))
    det = cf.Frame2D(name="detector", axes_order=(0, 1))
    slit_spatial = cf.Frame2D(name="slit_spatial", axes_order=(0, 1), unit=("", ""),
                              axes_names=("x_slit", "y_slit"))
    spec = cf.SpectralFrame(name="spectral", axes_order=(2,), unit=(u.micron,),
                            axes_names=("wavelength",))
    slit_frame = cf.CompositeFrame([slit_spatial, spec], name="slit_frame")
    skyf = cf.CelestialFrame(name="sky", axes_order=(0, 1), reference_frame=coord.ICRS())
    world = cf.CompositeFrame([skyf, spec], name="world")
    w = gw.WCS([(det, det2slit), (slit_frame, slit2world), (world, None)])
    nspat = int(params.get("nspatial", 0)) or None
    if nspat:
        shape = (n, nspat) if vertical else (nspat, n)
        w.bounding_box = ((-0.5, shape[1] - 0.5), (-0.5, shape[0] - 0.5))
        w.array_shape = shape
    return w


def spectral_gwcs(ra: float, dec: float, wavelength: np.ndarray):
    """The 1-D spectral WCS jwst's extract_1d attaches to a spectrum (pixel -> ra, dec,
    wavelength), as ``jwst.extract_1d.spec_wcs.create_spectral_wcs`` builds it."""
    from astropy import coordinates as coord
    from astropy import units as u
    from astropy.modeling import models as m
    from gwcs import coordinate_frames as cf
    from gwcs import wcs as gw

    lam = np.asarray(wavelength, np.float64)
    pix = np.arange(lam.size, dtype=np.float64)
    inp = cf.CoordinateFrame(naxes=1, axes_type=("SPATIAL",), axes_order=(0,), unit=(u.pix,),
                             name="pixel_frame")
    skyf = cf.CelestialFrame(name="sky", axes_order=(0, 1), reference_frame=coord.ICRS())
    spec = cf.SpectralFrame(name="spectral", axes_order=(2,), unit=(u.micron,),
                            axes_names=("wavelength",))
    world = cf.CompositeFrame([skyf, spec], name="world")
    tab = m.Mapping((0, 0, 0)) | (m.Const1D(float(ra)) & m.Const1D(float(dec))
                                  & m.Tabular1D(points=pix, lookup_table=lam,
                                                bounds_error=False, fill_value=None))
    tab.name = "pixel_to_world"
    if lam.size > 1 and np.all(np.diff(lam) > 0):
        tab.inverse = m.Mapping((2,)) | m.Tabular1D(points=lam, lookup_table=pix,
                                                    bounds_error=False)
    elif lam.size > 1 and np.all(np.diff(lam) < 0):
        tab.inverse = m.Mapping((2,)) | m.Tabular1D(points=lam[::-1], lookup_table=pix[::-1],
                                                    bounds_error=False)
    return gw.WCS([(inp, tab), (world, None)])


def slit_gwcs(slit: Slit, meta: Mapping[str, Any] | None = None):
    """The gwcs of a slit from its ``wcs`` parameters (None when it has none).

    ``"calops.analytic_slit"`` and ``"calops.s2d"`` are built here; any other model is handed
    to the instrument models, ``transforms.instruments.slit_wcs(params)``."""
    params = slit.get("wcs")
    if not isinstance(params, Mapping) or not params:
        return None
    model = params.get("model")
    if model == ANALYTIC:
        return analytic_gwcs(params)
    if model == S2D:
        lam = slit.arrays.get("wavelength")
        if lam is None:
            raise SpectralError(f"s2d slit {slit.name} has no wavelength array for its WCS")
        lam = np.asarray(lam, np.float64)
        table = _table_of(lam, int(params.get("disp_axis", 1)))
        return s2d_gwcs({**params, "nspatial": lam.shape[0 if int(params.get("disp_axis", 1))
                                                             == HORIZONTAL else 1]}, table)
    try:
        from transforms.instruments import slit_wcs  # the instrument models (specsim)
    except ImportError:
        raise SpectralError(
            f"slit {slit.name}: no builder for WCS model {model!r} "
            "(transforms.instruments.slit_wcs is not available)") from None
    return slit_wcs(dict(params))


def _table_of(lam2d: np.ndarray, disp_axis: int) -> np.ndarray:
    """One wavelength per dispersion element of a rectified array (the first finite value
    along the spatial axis)."""
    a = lam2d if disp_axis == HORIZONTAL else lam2d.T
    if a.size == 0:
        return np.zeros(a.shape[1] if a.ndim == 2 else 0)
    finite = np.isfinite(a)
    first = np.argmax(finite, axis=0)
    out = a[first, np.arange(a.shape[1])].astype(np.float64)
    out[~finite.any(axis=0)] = np.nan
    return out


def geometry(slit: Slit, meta: Mapping[str, Any] | None = None) -> Geometry:
    """Wavelength, sky position and slit-frame y at every pixel centre of ``slit``.

    The wavelength is the slit's ``wavelength`` array when present (it is what the product
    says), else the WCS's. Without any WCS the sky position and slit y are None."""
    shape = slit.shape
    if len(shape) != 2:
        raise SpectralError(f"slit {slit.name}: spectral steps need 2-D data, got {shape}")
    ny, nx = shape
    params = slit.get("wcs")
    lam = slit.arrays.get("wavelength")
    lam = None if lam is None else np.asarray(lam, np.float64)
    if lam is not None and lam.shape != shape:
        raise SpectralError(f"slit {slit.name}: wavelength shape {lam.shape} != data {shape}")
    if isinstance(params, Mapping) and params.get("model") == ANALYTIC:
        y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
        wl, ra, dec, sy, _ = _analytic(params, x, y)
        return Geometry(wl if lam is None else lam, ra, dec, sy)
    if isinstance(params, Mapping) and params.get("model") == S2D:
        return _s2d_geometry(slit, params, lam)
    w = slit_gwcs(slit, meta)
    if w is None:
        if lam is None:
            raise SpectralError(f"slit {slit.name} has neither a wavelength array nor a WCS")
        return Geometry(lam)
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    ra, dec, wl = (np.asarray(a, np.float64) for a in w(x, y, with_bounding_box=False))
    sy = None
    if "slit_frame" in [str(f) for f in w.available_frames]:
        sy = np.asarray(w.get_transform(w.available_frames[0], "slit_frame")(x, y)[1],
                        np.float64)
    return Geometry(wl if lam is None else lam, ra, dec, sy)


def _s2d_geometry(slit: Slit, p: Mapping[str, Any], lam: np.ndarray | None) -> Geometry:
    ny, nx = slit.shape
    vertical = int(p.get("disp_axis", 1)) == VERTICAL
    nsp = nx if vertical else ny
    i = np.arange(nsp, dtype=np.float64)
    s = float(p["s0"]) + float(p["ds"]) * i
    sy = float(p.get("slit_y0", 0.0)) + float(p.get("dslit_y", 1.0)) * i
    pa = math.radians(float(p.get("pa", 0.0)))
    ra, dec = tan_to_sky(s * math.sin(pa), s * math.cos(pa), float(p["ra0"]), float(p["dec0"]))
    if vertical:
        ra, dec, sy = (np.broadcast_to(a[None, :], (ny, nx)) for a in (ra, dec, sy))
    else:
        ra, dec, sy = (np.broadcast_to(a[:, None], (ny, nx)) for a in (ra, dec, sy))
    if lam is None:
        raise SpectralError(f"s2d slit {slit.name} has no wavelength array")
    return Geometry(lam, np.array(ra), np.array(dec), np.array(sy))


def file_wcs(model: DataModel) -> dict[str | None, Any] | None:
    """The gwcs objects a spectroscopic product's file carries (slit or spectrum name -> gwcs;
    ``None`` keys a single slit), built from its parameters; None when it has none."""
    out: dict[str | None, Any] = {}
    if model.kind in ("x1d",):
        for sp in spectra(model):
            ra, dec = sp.get("slit_ra"), sp.get("slit_dec")
            w = np.asarray(sp.columns.get("wavelength", []), np.float64)
            if ra is not None and dec is not None and w.size > 1:
                out[sp.name] = spectral_gwcs(float(ra), float(dec), w)
        return out or None
    if not is_spectral_image(model):
        return None
    single = not is_multislit(model)
    for s in slits(model):
        try:
            w = slit_gwcs(s, model.meta)
        except SpectralError:
            w = None
        if w is not None:
            ny, nx = s.shape
            w.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))
            out[None if single else s.name] = w
    return out or None
