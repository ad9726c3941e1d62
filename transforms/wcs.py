"""Imaging geometry: detector pixels -> V2/V3 -> sky, as gwcs objects built from metadata.

The pipeline is JWST's imaging one (``jwst.assign_wcs.nircam.imaging``), built here from
astropy.modeling pieces:

``detector`` --distortion--> ``v2v3`` --velocity aberration--> ``v2v3vacorr``
[--tweak--> ``v2v3corr``] --pointing--> ``world`` (ICRS, deg)

* The distortion reference is a ``DataModel("ref.distortion")`` whose meta holds the whole
  model (``distortion_meta`` makes one), or, for a real JWST distortion file, an ASDF-serialised
  astropy model in the uint8 array ``asdf_model``.
* Because ``DataModel.meta`` is JSON-only, a product carries the *inputs* of its WCS
  (``wcsinfo.*``, ``velocity_aberration.*``, ``wcs.distortion``, ``wcs.tweak``, ``wcs.kind``) and
  ``wcs_of(model)`` rebuilds the identical gwcs object; ``wcs_to_asdf_bytes`` serialises it (in
  memory, no files) for the FITS writer's ASDF extension.

Pixel coordinates are 0-based (x, y) = (column, row), pixel centres at integers, as in gwcs.
"""

from __future__ import annotations

import base64
import io
import threading
import math
from collections.abc import Mapping, Sequence
from typing import Any

import importlib
import typing

import numpy as np

from transforms.model import DataModel

if typing.TYPE_CHECKING:
    from astropy.modeling import Model


class _Lazy:
    """A module imported on first attribute access. gwcs, astropy.modeling and
    astropy.coordinates cost ~45 MB and ~0.7 s to import; every stage package imports this
    module (through its steps), but only the steps that build a WCS need them, so a detector1
    run (which imports every stage package to see every registered step) does not load them."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


coord = _Lazy("astropy.coordinates")
u = _Lazy("astropy.units")
am = _Lazy("astropy.modeling.models")
fitting = _Lazy("astropy.modeling.fitting")
cf = _Lazy("gwcs.coordinate_frames")
gwcs_wcs = _Lazy("gwcs.wcs")
_geometry = _Lazy("gwcs.geometry")

__all__ = [
    "WCSError",
    "DISTORTION_PREFIX",
    "distortion_meta",
    "distortion_ref",
    "distortion_params",
    "distortion_model",
    "va_model",
    "pointing_model",
    "tweak_model",
    "build_wcs",
    "wcs_meta",
    "wcs_of",
    "tangent_plane_wcs",
    "tangent_plane_meta",
    "wcs_to_asdf_bytes",
    "wcs_from_asdf_bytes",
    "pixel_corners",
]

DISTORTION_PREFIX = "distortion."
_DIST_KEYS = ("v2_ref", "v3_ref", "v3yangle", "vparity", "crpix1", "crpix2", "scale_x",
              "scale_y")


class WCSError(ValueError):
    """Metadata or a reference that cannot define a WCS."""


# --------------------------------------------------------------------------------------------
# The distortion reference
# --------------------------------------------------------------------------------------------

def distortion_meta(
    *,
    instrument: str = "NIRCAM",
    detector: str = "NRCA1",
    v2_ref: float,
    v3_ref: float,
    v3yangle: float = 0.0,
    vparity: int = -1,
    crpix1: float = 1023.5,
    crpix2: float = 1023.5,
    scale_x: float = 0.031,
    scale_y: float = 0.031,
    degree: int = 1,
    coeffs_x: Sequence[float] | Mapping[str, float] | None = None,
    coeffs_y: Sequence[float] | Mapping[str, float] | None = None,
    naxis1: int = 2048,
    naxis2: int = 2048,
    **extra: Any,
) -> dict[str, Any]:
    """The metadata of a ``ref.distortion`` model (every key under ``distortion.``).

    The model: pixel offsets ``dx = x - crpix1``, ``dy = y - crpix2`` (0-based) map to the ideal
    frame (arcsec) as ``xi = scale_x*dx + Px(dx, dy)``, ``yi = scale_y*dy + Py(dx, dy)``; Px, Py are
    astropy ``Polynomial2D(degree)`` residuals with coefficients ``coeffs_x``/``coeffs_y`` (a list
    in astropy's ``param_names`` order, or a ``{"c1_1": ...}`` dict; missing ones are 0). Ideal
    -> V2/V3 is the SIAF rotation: ``v2 = v2_ref + vparity*xi*cos(a) + yi*sin(a)``,
    ``v3 = v3_ref - vparity*xi*sin(a) + yi*cos(a)`` with ``a = v3yangle``. ``naxis1/2`` is the
    full-frame size used to fit the inverse polynomial.
    """
    degree = int(degree)
    if degree < 1:
        raise WCSError(f"distortion degree must be >= 1, got {degree}")
    if int(vparity) not in (-1, 1):
        raise WCSError(f"distortion vparity must be +1 or -1, got {vparity}")
    if scale_x <= 0 or scale_y <= 0:
        raise WCSError(f"distortion scales must be positive, got {scale_x}, {scale_y}")
    names = am.Polynomial2D(degree).param_names
    meta = {
        "instrument.name": instrument,
        "instrument.detector": detector,
        "reftype": "distortion",
        DISTORTION_PREFIX + "v2_ref": float(v2_ref),
        DISTORTION_PREFIX + "v3_ref": float(v3_ref),
        DISTORTION_PREFIX + "v3yangle": float(v3yangle),
        DISTORTION_PREFIX + "vparity": int(vparity),
        DISTORTION_PREFIX + "crpix1": float(crpix1),
        DISTORTION_PREFIX + "crpix2": float(crpix2),
        DISTORTION_PREFIX + "scale_x": float(scale_x),
        DISTORTION_PREFIX + "scale_y": float(scale_y),
        DISTORTION_PREFIX + "degree": degree,
        DISTORTION_PREFIX + "coeffs_x": _coeff_list(coeffs_x, names, "coeffs_x"),
        DISTORTION_PREFIX + "coeffs_y": _coeff_list(coeffs_y, names, "coeffs_y"),
        DISTORTION_PREFIX + "naxis1": int(naxis1),
        DISTORTION_PREFIX + "naxis2": int(naxis2),
    }
    meta.update(extra)
    return meta


def distortion_ref(**kwargs: Any) -> DataModel:
    """A ``ref.distortion`` DataModel from ``distortion_meta`` keyword arguments."""
    return DataModel("ref.distortion", {}, distortion_meta(**kwargs))


def _coeff_list(c: Any, names: Sequence[str], what: str) -> list[float]:
    if c is None:
        return [0.0] * len(names)
    if isinstance(c, Mapping):
        unknown = sorted(set(c) - set(names))
        if unknown:
            raise WCSError(f"distortion {what} has unknown coefficients {unknown}; "
                           f"a degree-{_degree_of(len(names))} polynomial has {list(names)}")
        return [float(c.get(n, 0.0)) for n in names]
    vals = [float(v) for v in c]
    if len(vals) != len(names):
        raise WCSError(f"distortion {what} has {len(vals)} coefficients; degree "
                       f"{_degree_of(len(names))} needs {len(names)} ({', '.join(names)})")
    return vals


def _degree_of(n: int) -> int:
    return int(round((math.sqrt(8 * n + 1) - 3) / 2))


def distortion_params(ref: DataModel) -> dict[str, Any]:
    """The distortion reference as a plain JSON dict (what a product records as ``wcs.distortion``)."""
    if "asdf_model" in ref.arrays:
        raw = np.ascontiguousarray(ref["asdf_model"], dtype=np.uint8).tobytes()
        return {"asdf_model_b64": base64.b64encode(raw).decode("ascii")}
    out = {k[len(DISTORTION_PREFIX):]: v for k, v in ref.meta.items()
           if k.startswith(DISTORTION_PREFIX)}
    missing = [k for k in _DIST_KEYS if out.get(k) is None]
    if missing:
        raise WCSError(f"distortion reference lacks {', '.join('distortion.' + k for k in missing)}"
                       "; build it with transforms.wcs.distortion_meta")
    return out


def distortion_model(ref: DataModel | Mapping[str, Any]) -> Model:
    """Pixel (x, y, 0-based, full frame) -> (v2, v3) arcsec, with a fitted inverse.

    ``ref`` is a ``ref.distortion`` DataModel (meta parameters, or an ASDF-serialised astropy
    model in the uint8 array ``asdf_model``) or the dict ``distortion_params`` returns.
    """
    p = distortion_params(ref) if isinstance(ref, DataModel) else dict(ref)
    if "asdf_model_b64" in p:
        return _model_from_asdf(base64.b64decode(p["asdf_model_b64"]))
    degree = int(p.get("degree", 1))
    names = am.Polynomial2D(degree).param_names
    cx = dict(zip(names, _coeff_list(p.get("coeffs_x"), names, "coeffs_x")))
    cy = dict(zip(names, _coeff_list(p.get("coeffs_y"), names, "coeffs_y")))
    cx["c1_0"] += float(p["scale_x"])
    cy["c0_1"] += float(p["scale_y"])
    px = am.Polynomial2D(degree, **cx)
    py = am.Polynomial2D(degree, **cy)
    crpix = (float(p["crpix1"]), float(p["crpix2"]))
    to_ideal = (am.Shift(-crpix[0]) & am.Shift(-crpix[1])) | am.Mapping((0, 1, 0, 1)) | (px & py)
    idl2v23 = _ideal_to_v2v3(float(p["v2_ref"]), float(p["v3_ref"]), float(p["v3yangle"]),
                             int(p["vparity"]))
    forward = to_ideal | idl2v23
    linear = degree == 1 or not any(
        v for k, v in list(cx.items()) + list(cy.items()) if k not in ("c1_0", "c0_1")
        and _order(k) > 1)
    inv_ideal = _fit_inverse(to_ideal, crpix, int(p.get("naxis1", 2048)),
                             int(p.get("naxis2", 2048)), 1 if linear else min(degree + 5, 9))
    forward.inverse = idl2v23.inverse | inv_ideal
    forward.name = "distortion"
    return forward


def _order(name: str) -> int:
    i, j = name[1:].split("_")
    return int(i) + int(j)


def _ideal_to_v2v3(v2_ref: float, v3_ref: float, v3yangle: float, vparity: int) -> Model:
    a = math.radians(v3yangle)
    c, s = math.cos(a), math.sin(a)
    matrix = np.array([[vparity * c, s], [-vparity * s, c]])
    m = am.AffineTransformation2D(matrix=matrix, translation=[v2_ref, v3_ref])
    m.inverse = (am.Shift(-v2_ref) & am.Shift(-v3_ref)) | am.AffineTransformation2D(
        matrix=np.linalg.inv(matrix))
    return m


def _fit_inverse(to_ideal: Model, crpix: tuple[float, float], nx: int, ny: int,
                 degree: int) -> Model:
    """Ideal (arcsec) -> pixel: polynomials fitted on a 64x64 grid over the detector (+10% margin).

    A least-squares fit in coordinates normalised to [-1, 1] (for conditioning), not an exact
    inverse: its accuracy is checked in tests (< 2e-4 pixel for the distortions the simulator
    makes). Linear models get an exact degree-1 fit. The fit is memoised on the model's
    parameters (a pure function of them), so rebuilding a WCS from metadata is cheap.
    """
    key = (tuple(float(v) for v in to_ideal.parameters), crpix, nx, ny, degree)
    lx, ly, cx, cy = _fit_inverse_cached(key, to_ideal)
    return ((am.Scale(1.0 / lx) & am.Scale(1.0 / ly)) | am.Mapping((0, 1, 0, 1))
            | (am.Polynomial2D(degree, **cx) & am.Polynomial2D(degree, **cy))
            | (am.Shift(crpix[0]) & am.Shift(crpix[1])))


_INVERSE_CACHE: dict[tuple, tuple] = {}


def _fit_inverse_cached(key: tuple, to_ideal: Model) -> tuple:
    hit = _INVERSE_CACHE.get(key)
    if hit is not None:
        return hit
    _, crpix, nx, ny, degree = key
    mx, my = 0.1 * nx, 0.1 * ny
    gx, gy = np.meshgrid(np.linspace(-mx, nx - 1 + mx, 64), np.linspace(-my, ny - 1 + my, 64))
    xi, yi = to_ideal(gx, gy)
    lx = float(np.max(np.abs(xi))) or 1.0
    ly = float(np.max(np.abs(yi))) or 1.0
    fitter = fitting.LinearLSQFitter()
    dx = fitter(am.Polynomial2D(degree), xi / lx, yi / ly, gx - crpix[0])
    dy = fitter(am.Polynomial2D(degree), xi / lx, yi / ly, gy - crpix[1])
    out = (lx, ly, dict(zip(dx.param_names, map(float, dx.parameters))),
           dict(zip(dy.param_names, map(float, dy.parameters))))
    if len(_INVERSE_CACHE) > 256:
        _INVERSE_CACHE.clear()
    _INVERSE_CACHE[key] = out
    return out


# asdf's first use in a process loads its extensions into shared registries without a lock;
# concurrent steps on worker threads must not race there.
_ASDF_LOCK = threading.Lock()


def _model_from_asdf(raw: bytes) -> Model:
    import asdf

    with _ASDF_LOCK, asdf.open(io.BytesIO(raw), lazy_load=False, memmap=False) as af:
        model = af.tree.get("model")
        if model is None:
            raise WCSError("asdf_model bytes hold no 'model' entry (a JWST distortion file has one)")
        return model.copy() if hasattr(model, "copy") else model


# --------------------------------------------------------------------------------------------
# Velocity aberration, pointing, tweak
# --------------------------------------------------------------------------------------------

def va_model(meta: Mapping[str, Any]) -> Model:
    """V2/V3 -> aberration-corrected V2/V3 (arcsec): offsets from (v2_ref, v3_ref) scaled.

    As JWST: ``v' = s*v + (1-s)*v_ref`` with ``s = velocity_aberration.scale_factor``; identity
    when the scale factor is absent or 1.
    """
    s = meta.get("velocity_aberration.scale_factor")
    if s is None or float(s) == 1.0:
        return am.Identity(2, name="va_corr")
    s = float(s)
    if not s > 0:
        raise WCSError(f"velocity_aberration.scale_factor must be positive, got {s}")
    v2r = float(meta.get("wcsinfo.v2_ref") or 0.0)
    v3r = float(meta.get("wcsinfo.v3_ref") or 0.0)
    m = (am.Scale(s) & am.Scale(s)) | (am.Shift((1 - s) * v2r) & am.Shift((1 - s) * v3r))
    m.name = "va_corr"
    return m


def pointing_model(meta: Mapping[str, Any]) -> Model:
    """(v2, v3) arcsec -> (ra, dec) deg from ``wcsinfo.v2_ref/v3_ref/ra_ref/dec_ref/roll_ref``.

    A 3-D rotation sequence (z: v2_ref, y: -v3_ref, x: roll_ref, y: dec_ref, z: -ra_ref) between
    unit vectors, as ``jwst.assign_wcs.pointing.v23tosky``. ``wcsinfo.ra_ref/dec_ref`` are the
    true (aberration-corrected) pointing as in JWST level-1b; ``velocity_aberration.va_ra_ref`` /
    ``va_dec_ref`` (the apparent position) are not used, exactly as JWST's imaging WCS.
    """
    keys = ("wcsinfo.v2_ref", "wcsinfo.v3_ref", "wcsinfo.roll_ref", "wcsinfo.ra_ref",
            "wcsinfo.dec_ref")
    missing = [k for k in keys if meta.get(k) is None]
    if missing:
        raise WCSError(f"cannot build the pointing: metadata lacks {', '.join(missing)}")
    v2, v3, roll, ra, dec = (float(meta[k]) for k in keys)
    angles = [v2 / 3600.0, -v3 / 3600.0, roll, dec, -ra]
    m = ((am.Scale(1 / 3600.0) & am.Scale(1 / 3600.0))
         | _geometry.SphericalToCartesian(wrap_lon_at=180)
         | am.RotationSequence3D(angles, axes_order="zyxyz")
         | _geometry.CartesianToSpherical(wrap_lon_at=360))
    m.name = "v23tosky"
    return m


def tweak_model(tweak: Mapping[str, Any], v2_ref: float, v3_ref: float) -> Model:
    """A tweakreg correction in the V2/V3 plane (arcsec) about (v2_ref, v3_ref).

    ``tweak`` keys: ``shift`` [dv2, dv3] arcsec (default 0), and either ``matrix`` (2x2) or
    ``rotation`` (deg, counter-clockwise in V2/V3) and ``scale`` (default 1).
    ``v' = ref + M @ (v - ref) + shift``.
    """
    shift = [float(v) for v in tweak.get("shift", (0.0, 0.0))]
    if "matrix" in tweak:
        mat = np.asarray(tweak["matrix"], dtype=float)
        if mat.shape != (2, 2):
            raise WCSError(f"wcs.tweak matrix must be 2x2, got shape {mat.shape}")
    else:
        a = math.radians(float(tweak.get("rotation", 0.0)))
        s = float(tweak.get("scale", 1.0))
        mat = s * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    if abs(np.linalg.det(mat)) < 1e-12:
        raise WCSError("wcs.tweak matrix is singular")
    ref = np.array([v2_ref, v3_ref])
    m = am.AffineTransformation2D(matrix=mat, translation=ref - mat @ ref + shift)
    m.name = "tweak"
    return m


# --------------------------------------------------------------------------------------------
# The detector WCS
# --------------------------------------------------------------------------------------------

def _frames(tweaked: bool) -> list:
    arcsec = (u.arcsec, u.arcsec)
    det = cf.Frame2D(name="detector", axes_order=(0, 1), unit=(u.pix, u.pix))
    v2v3 = cf.Frame2D(name="v2v3", axes_order=(0, 1), axes_names=("v2", "v3"), unit=arcsec)
    vacorr = cf.Frame2D(name="v2v3vacorr", axes_order=(0, 1), axes_names=("v2", "v3"),
                        unit=arcsec)
    out = [det, v2v3, vacorr]
    if tweaked:
        out.append(cf.Frame2D(name="v2v3corr", axes_order=(0, 1), axes_names=("v2", "v3"),
                              unit=arcsec))
    out.append(cf.CelestialFrame(reference_frame=coord.ICRS(), name="world",
                                 unit=(u.deg, u.deg)))
    return out


def _image_shape(meta: Mapping[str, Any], shape: Sequence[int] | None) -> tuple[int, int]:
    if shape is not None:
        return int(shape[-2]), int(shape[-1])
    ny, nx = meta.get("subarray.ysize"), meta.get("subarray.xsize")
    if ny is None or nx is None:
        raise WCSError("cannot size the WCS bounding box: pass shape or set subarray.xsize/ysize")
    return int(ny), int(nx)


def build_wcs(
    meta: Mapping[str, Any],
    distortion_ref: DataModel | Mapping[str, Any],
    shape: Sequence[int] | None = None,
) -> gwcs_wcs.WCS:
    """The imaging gwcs of one exposure: ``detector -> v2v3 -> v2v3vacorr [-> v2v3corr] -> world``.

    ``meta`` gives the pointing (``wcsinfo.*``), velocity aberration, subarray origin
    (``subarray.xstart/ystart``, 1-based; pixel 0 of a subarray is detector pixel xstart-1) and
    an optional ``wcs.tweak``; ``shape`` (ny, nx) or ``subarray.xsize/ysize`` sizes the bounding
    box. ``distortion_ref`` is a ``ref.distortion`` DataModel or ``distortion_params`` dict.
    Every transform has an analytic or fitted inverse, so ``wcs.invert(ra, dec)`` is direct.
    """
    ny, nx = _image_shape(meta, shape)
    dist = distortion_model(distortion_ref)
    x0 = float(meta.get("subarray.xstart") or 1) - 1.0
    y0 = float(meta.get("subarray.ystart") or 1) - 1.0
    if x0 or y0:
        dist = (am.Shift(x0) & am.Shift(y0)) | dist
    tweak = meta.get("wcs.tweak")
    frames = _frames(bool(tweak))
    steps: list[Model] = [dist, va_model(meta)]
    if tweak:
        steps.append(tweak_model(tweak, float(meta.get("wcsinfo.v2_ref") or 0.0),
                                 float(meta.get("wcsinfo.v3_ref") or 0.0)))
    steps.append(pointing_model(meta))
    pipeline = list(zip(frames, steps + [None]))
    w = gwcs_wcs.WCS(pipeline)
    w.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))
    return w


_WCS_META_PREFIXES = ("wcsinfo.", "velocity_aberration.", "subarray.")


def wcs_meta(meta: Mapping[str, Any], distortion_ref: DataModel,
             shape: Sequence[int] | None = None) -> dict[str, Any]:
    """The metadata entries that let ``wcs_of`` rebuild an exposure's WCS (assign_wcs records them)."""
    ny, nx = _image_shape(meta, shape)
    out: dict[str, Any] = {
        "wcs.kind": "imaging",
        "wcs.distortion": distortion_params(distortion_ref),
        "wcs.shape": [ny, nx],
    }
    # Fail now, not later, if the pointing is incomplete.
    pointing_model(meta)
    va_model(meta)
    return out


def tangent_plane_meta(ra: float, dec: float, pixel_scale_arcsec: float,
                       shape: Sequence[int], rotation_deg: float = 0.0,
                       crpix: Sequence[float] | None = None) -> dict[str, Any]:
    """Metadata entries that make ``wcs_of`` return a ``tangent_plane_wcs`` (used by i2d)."""
    ny, nx = int(shape[0]), int(shape[1])
    cp = [(nx - 1) / 2.0, (ny - 1) / 2.0] if crpix is None else [float(c) for c in crpix]
    return {
        "wcs.kind": "tangent_plane",
        "wcs.tangent_plane": {"ra": float(ra), "dec": float(dec),
                              "pixel_scale_arcsec": float(pixel_scale_arcsec),
                              "shape": [ny, nx], "rotation_deg": float(rotation_deg),
                              "crpix": cp},
    }


def wcs_of(model: DataModel | Mapping[str, Any]) -> gwcs_wcs.WCS:
    """Rebuild a product's gwcs from its metadata (deterministic: same meta, same transform)."""
    meta = model.meta if isinstance(model, DataModel) else model
    kind = meta.get("wcs.kind")
    if kind == "imaging":
        dist = meta.get("wcs.distortion")
        if not dist:
            raise WCSError("product has wcs.kind=imaging but no wcs.distortion; rerun assign_wcs")
        return build_wcs(meta, dist, shape=meta.get("wcs.shape"))
    if kind == "tangent_plane":
        tp = meta.get("wcs.tangent_plane")
        if not tp:
            raise WCSError("product has wcs.kind=tangent_plane but no wcs.tangent_plane")
        return tangent_plane_wcs(tp["ra"], tp["dec"], tp["pixel_scale_arcsec"], tp["shape"],
                                 tp.get("rotation_deg", 0.0), crpix=tp.get("crpix"))
    raise WCSError(f"product has no WCS (wcs.kind={kind!r}); run assign_wcs first")


# --------------------------------------------------------------------------------------------
# Output mosaics
# --------------------------------------------------------------------------------------------

def tangent_plane_wcs(
    ra: float,
    dec: float,
    pixel_scale_arcsec: float,
    shape: Sequence[int],
    rotation_deg: float = 0.0,
    crpix: Sequence[float] | None = None,
) -> gwcs_wcs.WCS:
    """A TAN-projection gwcs ``detector -> world`` for a mosaic of ``shape`` (ny, nx).

    (ra, dec) sits at ``crpix`` (0-based (x, y); default the image centre); ``rotation_deg`` is
    the position angle of the +y axis, east of north (0: north up, east left).
    """
    if not pixel_scale_arcsec > 0:
        raise WCSError(f"pixel_scale_arcsec must be positive, got {pixel_scale_arcsec}")
    if len(shape) != 2 or min(int(shape[0]), int(shape[1])) < 1:
        raise WCSError(f"mosaic shape must be (ny, nx) with both >= 1, got {tuple(shape)}")
    ny, nx = int(shape[0]), int(shape[1])
    cp = ((nx - 1) / 2.0, (ny - 1) / 2.0) if crpix is None else (float(crpix[0]),
                                                                   float(crpix[1]))
    a = math.radians(rotation_deg)
    sc = pixel_scale_arcsec / 3600.0
    cd = sc * np.array([[-math.cos(a), math.sin(a)], [math.sin(a), math.cos(a)]])
    lin = (am.Shift(-cp[0]) & am.Shift(-cp[1])) | am.AffineTransformation2D(matrix=cd)
    lin.inverse = am.AffineTransformation2D(matrix=np.linalg.inv(cd)) | (
        am.Shift(cp[0]) & am.Shift(cp[1]))
    sky = lin | am.Pix2Sky_TAN() | am.RotateNative2Celestial(float(ra), float(dec), 180.0)
    sky.name = "tangent_plane"
    det = cf.Frame2D(name="detector", axes_order=(0, 1), unit=(u.pix, u.pix))
    world = cf.CelestialFrame(reference_frame=coord.ICRS(), name="world", unit=(u.deg, u.deg))
    w = gwcs_wcs.WCS([(det, sky), (world, None)])
    w.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))
    w.pixel_shape = (nx, ny)
    return w


def pixel_corners(w: gwcs_wcs.WCS, shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Sky positions (ra, dec) of the (ny+1, nx+1) pixel-corner grid of an image (no bounding box)."""
    ny, nx = int(shape[0]), int(shape[1])
    gx, gy = np.meshgrid(np.arange(nx + 1) - 0.5, np.arange(ny + 1) - 0.5)
    return w.forward_transform(gx, gy)


# --------------------------------------------------------------------------------------------
# Serialisation (in memory only)
# --------------------------------------------------------------------------------------------

def wcs_to_asdf_bytes(w: gwcs_wcs.WCS) -> bytes:
    """The gwcs as ASDF bytes (tree key ``wcs``), written to memory, never to a file."""
    import asdf

    buf = io.BytesIO()
    with _ASDF_LOCK:
        asdf.AsdfFile({"wcs": w}).write_to(buf)
    return buf.getvalue()


def wcs_from_asdf_bytes(raw: bytes) -> gwcs_wcs.WCS:
    """The gwcs stored by ``wcs_to_asdf_bytes`` (or any ASDF tree with a ``wcs`` entry)."""
    import asdf

    with _ASDF_LOCK, asdf.open(io.BytesIO(bytes(raw)), lazy_load=False, memmap=False) as af:
        w = af.tree.get("wcs")
        if w is None:
            raise WCSError("ASDF bytes hold no 'wcs' entry")
        return w
