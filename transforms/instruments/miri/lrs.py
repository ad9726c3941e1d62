"""MIRI LRS: the P750L prism on MIRIMAGE, through the slit (MIR_LRS-FIXEDSLIT) or slitless.

The model has jwst's structure (``jwst.assign_wcs.miri.lrs``), so its reference files are
jwst's: the ``specwcs`` reference (MiriLRSSpecwcsModel: the slit reference pixel IMX/IMY, the
slitless one IMXSLTL/IMYSLTL, the slit's V2/V3 corners, and the WAVETABLE of wavelengths with
the trace's x offset and y offset from the reference pixel) and the MIRIMAGE imaging
``distortion`` reference (pixel -> V2/V3).

**Frames**: ``detector`` (0-based pixels of the exposure's window) -> ``slit_frame``
(``x_slit`` across the slit in units of its width 0.51", ``y_slit`` along it in units of its
length 4.7", wavelength) -> ``v2v3`` -> ``world``.

* Wavelength depends on the row only: ``lam = L(y - y_ref)`` with ``L`` the WAVETABLE
  (``y_center`` -> ``wavelength``) linearly interpolated; its inverse interpolates the same
  nodes, so the two are exact inverses (jwst fits a smoothing spline through the same table).
* Along the slit (detector x; the slit's long axis is along the rows): ``alpha = ps (x - dx(y)
  - x_ref)`` arcsec, with the trace offset ``dx`` (WAVETABLE ``x_center`` vs ``y_center``) and
  ``ps`` the distortion's pixel scale at the reference pixel (jwst's ``pscale``). Across the
  slit the detector -> slit_frame transform assumes the slit centre (jwst: ``beta = 0``): a
  source off centre across the slit lands ``beta / ps`` rows away, at a shifted wavelength
  (MIRI has no wavecorr; the truth keeps the shift).
* Slit -> V2/V3: the point ``(x_ref + alpha/ps, y_ref + beta/ps)`` through the imaging
  distortion; V2/V3 -> sky through the exposure's pointing (``transforms.wcs``).

The default table is a prism law ``y - y_ref = -k (lam^2 - lam_ref^2)`` (k = 1.778 px/um^2:
R ~ 45 at 5 um, ~100 at 7.5 um, ~180 at 10 um, 4 - 14 um over rows ~370 .. ~50), sampled
every half row; ``x_center = t (y - y_ref)`` (a 0.4% trace tilt). Slit 0.51" x 4.7" centred
on IMX/IMY = (326.13, 300.70) (1-based, as the real file); slitless reference (38.5, 829.0)
(full frame; SLITLESSPRISM rows 529 - 944).

**Nods** (ALONG-SLIT-NOD): two positions along the slit at 30% and 70% of its length,
``x_offset = -/+0.94"`` in the MIRIM_SLIT ideal frame (``NOD_OFFSETS``), the ideal X axis
along the slit. jwst (build 10.0) stores the sky position of the nod in
``dither.dithered_ra/dec`` (``dithered_position``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

MODEL = "calops.miri_lrs"
EXP_TYPES = ("MIR_LRS-FIXEDSLIT", "MIR_LRS-SLITLESS")
SLIT_WIDTH, SLIT_LENGTH = 0.51, 4.7  # arcsec
IMX, IMY = 326.13, 300.70  # 1-based slit reference pixel
IMX_SLITLESS, IMY_SLITLESS = 38.5, 829.0
LAM_REF, K_DISP, TRACE_TILT = 7.5, 1.778, 0.004
LRANGE = (4.0, 14.0)
NOD_OFFSETS = (-0.94, 0.94)  # x_offset (arcsec) of the two ALONG-SLIT-NOD positions
FILTER = "P750L"


class LrsModelError(ValueError):
    """A specwcs or exposure the LRS model cannot use."""


def default_wavetable(lrange: tuple[float, float] = LRANGE, step_rows: float = 0.5
                      ) -> dict[str, np.ndarray]:
    """The WAVETABLE columns of the default specwcs (offsets from the reference pixel, rows
    in decreasing wavelength order as in the real file; one row per ``step_rows`` rows)."""
    lo, hi = lrange
    y_top = -K_DISP * (lo * lo - LAM_REF ** 2)
    y_bot = -K_DISP * (hi * hi - LAM_REF ** 2)
    yc = np.arange(y_top, y_bot - step_rows, -step_rows)
    yc = yc[yc >= y_bot - 1e-9]
    lam = np.sqrt(LAM_REF ** 2 - yc / K_DISP)
    xc = TRACE_TILT * yc
    half_l = 0.5 * SLIT_LENGTH / 0.1108
    return {"x_center": xc, "y_center": yc, "wavelength": lam,
            "x0": xc - half_l, "y0": yc + 0.5 * step_rows,
            "x1": xc + half_l, "y1": yc + 0.5 * step_rows,
            "x2": xc + half_l, "y2": yc - 0.5 * step_rows,
            "x3": xc - half_l, "y3": yc - 0.5 * step_rows}


def lrs_params(specwcs: Mapping[str, Any], distortion: Mapping[str, Any], exp_type: str,
               subarray: Mapping[str, Any], shape: tuple[int, int],
               pointing: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON-able parameters of an LRS exposure's WCS (the ``wcs.*`` meta of its product).

    ``specwcs``: ``{"x_ref", "y_ref", "x_ref_slitless", "y_ref_slitless"`` (1-based, as the
    header), ``"wavetable": {column: list}}``; ``distortion``: ``transforms.wcs.distortion_params``
    of the MIRIMAGE distortion; ``subarray``: xstart/ystart (1-based); ``shape``: (ny, nx)."""
    from transforms.wcs import distortion_model

    exp_type = str(exp_type).upper()
    if exp_type not in EXP_TYPES:
        raise LrsModelError(f"not an LRS exposure type: {exp_type}")
    if exp_type == "MIR_LRS-FIXEDSLIT":
        zx, zy = float(specwcs["x_ref"]) - 1.0, float(specwcs["y_ref"]) - 1.0
    else:
        zx, zy = float(specwcs["x_ref_slitless"]) - 1.0, float(specwcs["y_ref_slitless"]) - 1.0
    dist = distortion_model(dict(distortion))
    v2c, v3c = dist(zx, zy)
    v2o, v3o = dist(zx + 1.0, zy)
    ps = float(math.hypot(v2c - v2o, v3c - v3o))
    tab = {k: [float(v) for v in np.asarray(specwcs["wavetable"][k], np.float64)]
           for k in ("x_center", "y_center", "wavelength")}
    p = {"model": MODEL, "exp_type": exp_type, "x_ref": zx, "y_ref": zy, "pscale": ps,
         "width": SLIT_WIDTH, "length": SLIT_LENGTH, "wavetable": tab,
         "subarray": [int(subarray.get("xstart") or 1), int(subarray.get("ystart") or 1)],
         "shape": [int(shape[0]), int(shape[1])], "distortion": dict(distortion)}
    if pointing:
        p["pointing"] = {k: float(v) for k, v in pointing.items() if v is not None}
    return p


def _table(params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y offsets ascending, wavelengths, x offsets) of the WAVETABLE."""
    t = params["wavetable"]
    yc = np.asarray(t["y_center"], np.float64)
    order = np.argsort(yc)
    return yc[order], np.asarray(t["wavelength"], np.float64)[order], \
        np.asarray(t["x_center"], np.float64)[order]


def lam_of_row(params: Mapping[str, Any], yfull) -> np.ndarray:
    """Wavelength at full-frame row ``yfull`` (NaN off the table)."""
    yc, lam, _ = _table(params)
    return np.interp(np.asarray(yfull, np.float64) - params["y_ref"], yc, lam,
                     left=np.nan, right=np.nan)


def row_of_lam(params: Mapping[str, Any], lam) -> np.ndarray:
    """Full-frame row where wavelength ``lam`` falls for a source centred across the slit."""
    yc, wl, _ = _table(params)
    o = np.argsort(wl)
    return np.interp(np.asarray(lam, np.float64), wl[o], yc[o], left=np.nan,
                     right=np.nan) + params["y_ref"]


def dx_of_row(params: Mapping[str, Any], yfull) -> np.ndarray:
    """Trace x offset at full-frame row ``yfull``."""
    yc, _, xc = _table(params)
    return np.interp(np.asarray(yfull, np.float64) - params["y_ref"], yc, xc,
                     left=np.nan, right=np.nan)


def pixel_coords(params: Mapping[str, Any], x, y, masked: bool = True
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(y_slit, wavelength) at window pixels (x, y) (x_slit = 0 assumed). ``masked``: NaN
    outside the slit's length (fixed slit) and the table's wavelengths."""
    xs = np.asarray(x, np.float64) + params["subarray"][0] - 1
    ys = np.asarray(y, np.float64) + params["subarray"][1] - 1
    lam = lam_of_row(params, ys)
    alpha = params["pscale"] * (xs - dx_of_row(params, ys) - params["x_ref"])
    ysl = alpha / params["length"]
    if masked:
        bad = ~np.isfinite(lam)
        if params["exp_type"] == "MIR_LRS-FIXEDSLIT":
            bad |= ~(np.abs(ysl) <= 0.5)
        lam = np.where(bad, np.nan, lam)
        ysl = np.where(bad, np.nan, ysl)
    return ysl, lam


def wavelength_array(params: Mapping[str, Any]) -> np.ndarray:
    ny, nx = params["shape"]
    y, x = np.mgrid[0:ny, 0:nx]
    return pixel_coords(params, x, y)[1].astype(np.float32)


def slit_to_detector(params: Mapping[str, Any], x_slit, y_slit, lam):
    """Window pixel (x, y) where light of ``lam`` from slit point (x_slit, y_slit) lands (the
    truth: the across-slit offset moves it by ``beta / ps`` rows)."""
    ps = params["pscale"]
    beta = np.asarray(x_slit, np.float64) * params["width"]
    alpha = np.asarray(y_slit, np.float64) * params["length"]
    yf = row_of_lam(params, lam) + beta / ps
    xf = params["x_ref"] + alpha / ps + dx_of_row(params, row_of_lam(params, lam))
    return xf - (params["subarray"][0] - 1), yf - (params["subarray"][1] - 1)


def slit_to_v2v3(params: Mapping[str, Any], x_slit, y_slit):
    from transforms.wcs import distortion_model

    ps = params["pscale"]
    px = params["x_ref"] + np.asarray(y_slit, np.float64) * params["length"] / ps
    py = params["y_ref"] + np.asarray(x_slit, np.float64) * params["width"] / ps
    return distortion_model(params["distortion"])(px, py)


def v2v3_to_slit(params: Mapping[str, Any], v2, v3):
    from transforms.wcs import distortion_model

    ps = params["pscale"]
    px, py = distortion_model(params["distortion"]).inverse(v2, v3)
    return ((np.asarray(py) - params["y_ref"]) * ps / params["width"],
            (np.asarray(px) - params["x_ref"]) * ps / params["length"])


def lrs_gwcs(params: Mapping[str, Any]):
    """The exposure's gwcs ``detector -> slit_frame -> v2v3 -> world`` (without a pointing:
    ``... -> v2v3``), from ``lrs_params`` output."""
    from astropy import coordinates as coord
    from astropy import units as u
    from astropy.modeling import models as m
    from gwcs import coordinate_frames as cf
    from gwcs import wcs as gw

    from transforms.wcs import distortion_model, pointing_model, va_model

    yc, lam, xc = _table(params)
    zx, zy = float(params["x_ref"]), float(params["y_ref"])
    ps, wid, ln = float(params["pscale"]), float(params["width"]), float(params["length"])
    sx, sy = (float(v) - 1.0 for v in params["subarray"])
    order = np.argsort(lam)
    wave = m.Tabular1D(points=yc + zy, lookup_table=lam, bounds_error=False, fill_value=np.nan)
    wave.inverse = m.Tabular1D(points=lam[order], lookup_table=(yc + zy)[order],
                               bounds_error=False, fill_value=np.nan)
    dx = m.Tabular1D(points=yc + zy, lookup_table=xc, bounds_error=False, fill_value=np.nan)
    pick = lambda i, n: m.Mapping((i,), n_inputs=n)  # noqa: E731
    full = m.Shift(sx) & m.Shift(sy)
    # (x, y) full frame -> (0, alpha/length, lam)
    along = ((pick(0, 2) - (pick(1, 2) | dx)) | m.Shift(-zx) | m.Scale(ps / ln))
    det2slit = full | m.Mapping((0, 1, 0, 1, 0, 1)) | (
        (pick(0, 2) | m.Const1D(0.0)) & along & (pick(1, 2) | wave))
    # inverse: y = row(lam) + beta/ps; x = x_ref + alpha/ps + dx(row(lam))
    row = pick(2, 3) | wave.inverse
    yi = row + (pick(0, 3) | m.Scale(wid / ps))
    xi = (pick(1, 3) | m.Scale(ln / ps) | m.Shift(zx)) + (row | dx)
    det2slit.inverse = m.Mapping((0, 1, 2, 0, 1, 2)) | (xi & yi) | (m.Shift(-sx) & m.Shift(-sy))
    det = cf.Frame2D(name="detector", axes_order=(0, 1), unit=(u.pix, u.pix))
    spec = cf.SpectralFrame(name="spectral", axes_order=(2,), unit=(u.micron,),
                            axes_names=("wavelength",))
    slit_frame = cf.CompositeFrame([cf.Frame2D(name="slit_spatial", axes_order=(0, 1),
                                               unit=("", ""), axes_names=("x_slit", "y_slit")),
                                    spec], name="slit_frame")
    v2v3 = cf.CompositeFrame([cf.Frame2D(name="v2v3_spatial", axes_order=(0, 1),
                                         unit=(u.arcsec, u.arcsec), axes_names=("v2", "v3")),
                              spec], name="v2v3")
    dist = distortion_model(params["distortion"])
    to_pix = (m.Scale(wid / ps) | m.Shift(zy)) & (m.Scale(ln / ps) | m.Shift(zx))
    to_pix.inverse = (m.Shift(-zy) | m.Scale(ps / wid)) & (m.Shift(-zx) | m.Scale(ps / ln))
    swap = m.Mapping((1, 0))
    swap.inverse = m.Mapping((1, 0))
    slit2v = (to_pix | swap | dist) & m.Identity(1)
    steps = [(det, det2slit), (slit_frame, slit2v)]
    pointing = params.get("pointing")
    if pointing:
        meta = {k if k.startswith(("wcsinfo.", "velocity_aberration.")) else f"wcsinfo.{k}": v
                for k, v in pointing.items()}
        sky = cf.CelestialFrame(name="sky", axes_order=(0, 1), reference_frame=coord.ICRS())
        world = cf.CompositeFrame([sky, spec], name="world")
        steps += [(v2v3, (va_model(meta) | pointing_model(meta)) & m.Identity(1)),
                  (world, None)]
    else:
        steps += [(v2v3, None)]
    w = gw.WCS(steps)
    ny, nx = params["shape"]
    w.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))
    w.array_shape = (ny, nx)
    return w


def slit_vertices_v2v3(params: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    """V2/V3 of the slit's four corners (the specwcs V2VERTn/V3VERTn)."""
    xs = np.array([-0.5, 0.5, 0.5, -0.5])
    ys = np.array([-0.5, -0.5, 0.5, 0.5])
    v2, v3 = slit_to_v2v3(params, xs, ys)
    return [float(v) for v in v2], [float(v) for v in v3]


def dithered_position(meta: Mapping[str, Any]) -> tuple[float, float]:
    """(RA, Dec) of the exposure's dither/nod position: the ideal-frame point
    (``dither.x_offset``, ``dither.y_offset``) of the aperture through its V2/V3 placement
    (``wcsinfo.v2_ref/v3_ref/v3yangle/vparity``) and the pointing (jwst 1.12's
    ``store_dithered_position``)."""
    from transforms.wcs import _ideal_to_v2v3, pointing_model, va_model

    keys = ("wcsinfo.v2_ref", "wcsinfo.v3_ref", "wcsinfo.v3yangle", "wcsinfo.vparity")
    missing = [k for k in keys if meta.get(k) is None]
    if missing:
        raise LrsModelError(f"cannot place the nod position: metadata lacks {', '.join(missing)}")
    v2r, v3r, ya, vp = (meta[k] for k in keys)
    xo = float(meta.get("dither.x_offset") or 0.0)
    yo = float(meta.get("dither.y_offset") or 0.0)
    v2, v3 = _ideal_to_v2v3(float(v2r), float(v3r), float(ya), int(vp))(xo, yo)
    ra, dec = (va_model(meta) | pointing_model(meta))(v2, v3)
    return float(ra), float(dec)


def slit_box(params: Mapping[str, Any], pad: int = 2) -> tuple[int, int, int, int] | None:
    """(x0, y0, nx, ny) of the region of the window the slit's spectrum covers."""
    ny, nx = params["shape"]
    yc, _, xc = _table(params)
    half = 0.5 * params["length"] / params["pscale"]
    sx, sy = params["subarray"][0] - 1, params["subarray"][1] - 1
    x0 = int(math.floor(params["x_ref"] + xc.min() - half)) - pad - sx
    x1 = int(math.ceil(params["x_ref"] + xc.max() + half)) + pad - sx
    y0 = int(math.floor(params["y_ref"] + yc.min())) - pad - sy
    y1 = int(math.ceil(params["y_ref"] + yc.max())) + pad - sy
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, nx - 1), min(y1, ny - 1)
    if x1 < x0 or y1 < y0:
        return None
    return x0, y0, x1 - x0 + 1, y1 - y0 + 1


def specwcs_content(ref) -> dict[str, Any]:
    """The specwcs reference's content as ``lrs_params`` takes it."""
    if ref is None or ref.get("x_ref") is None:
        raise LrsModelError("the specwcs reference lacks IMX/IMY (x_ref, y_ref)")
    tab = {k.split(".", 1)[1]: np.asarray(v) for k, v in ref.arrays.items()
           if k.startswith("wavetable.")}
    missing = {"x_center", "y_center", "wavelength"} - set(tab)
    if missing:
        raise LrsModelError(f"the specwcs WAVETABLE lacks {sorted(missing)}")
    return {"x_ref": ref.get("x_ref"), "y_ref": ref.get("y_ref"),
            "x_ref_slitless": ref.get("x_ref_slitless"),
            "y_ref_slitless": ref.get("y_ref_slitless"), "wavetable": tab}
