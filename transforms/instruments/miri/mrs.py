"""MIRI MRS: four channels x three bands on two detectors, one parameter set, two faces.

The numba kernel ``pixel_map`` (detector pixel -> slice label, alpha, beta, wavelength) is what
the simulator uses to put light on the detector and what every calops IFU step uses to take
it off; ``mrs_gwcs(params, meta)`` builds the same transforms as a gwcs in jwst's MRS layout
(``detector -> alpha_beta -> v2v3 -> v2v3vacorr -> world``, a ``RegionsSelector`` over the
slice label map, per-slice ``alpha_model & beta_model & lambda_model`` forward and
``x_model & y_model`` inverse, ``abv2v3_model`` per channel), so jwst's own cube_build reads a
calops cal file. ``reference_trees`` writes the parameters as the four JWST references
assign_wcs reads (``distortion`` = DistortionMRSModel, ``specwcs`` = SpecwcsModel, ``regions``
= RegionsModel, ``wavelengthrange`` = WavelengthrangeModel): a reference change moves the
simulator and the pipeline together.

**Layout** (synthetic but MRS-like; 1024 rows x 1032 columns, reference columns 0-3 and
1028-1031). MIRIFUSHORT holds channel 1 on the left half and channel 2 on the right;
MIRIFULONG channel 4 left and 3 right (jwst's convention). A band (SHORT/MEDIUM/LONG = A/B/C)
is one grating setting: one exposure covers the same band of both channels of its detector.
Columns 503-516 (channels 1/2) and 474-507 (3/4) stay dark: the straylight step measures the
pedestal there, as in jwst.

- Channel ``c`` has ``N_c`` slices (21, 17, 16, 12) of width ``beta_del`` (0.177, 0.280,
  0.390, 0.656 arcsec) across; slice ``k`` (1..N) is centred at ``beta = beta_zero + (k-1)
  beta_del`` (beta_zero = -(N-1)/2 beta_del), label ``100 c + k``.
- Along a slice, alpha spans the field (3.2, 4.0, 5.2, 6.6 arcsec) at ``dalpha`` arcsec per
  column (0.196, 0.196, 0.245, 0.273). Slices are laid side by side on the detector in an
  interleaved order (odd slices, then even), each at its own column ``x0``, with a tilt
  ``t1`` and bow ``t2`` (columns, over v = (y - 512)/512 in -1..1) and a small anamorphism
  ``e``: with ``xc(y) = x0 + w/2 + t1 v + t2 v^2`` the slice centre,
  ``alpha = dalpha (1 + e v) (x - xc(y))``; a pixel belongs to the slice when its centre lies
  within ``|x - xc(y)| < w/2`` (``w`` the slice image width in columns).
- Wavelength runs along the columns of a slice: ``lambda = L(t)``, ``t = (y + dy_k + s
  alpha) / 1024`` with ``L(t) = l0 + l1 t + l2 t^2`` per channel and band, ``dy_k`` the slice's
  row offset and ``s`` the tilt of the iso-wavelength lines (rows per arcsec of alpha).
  Channels 1/2 disperse towards +y, 3/4 towards -y. The inverse is closed-form
  (a quadratic root).
- ``(alpha, beta) -> (v2, v3)``: per channel an affine map (rotation by ``theta`` with the
  V-frame parity, centre ``v2c, v3c``); then JWST's velocity aberration and pointing
  (``transforms.wcs``).

A pixel's solid angle is ``|d alpha / dx| x beta_del`` and its wavelength width ``|d lambda /
dy|``; both come from the same formulas (``pixel_map`` returns them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numba import njit

MODEL = "calops.mrs"
DISPERSION_AXIS = 0  # wavelength runs along detector y (rows)
INSTRUMENT = "MIRI"
EXP_TYPE = "MIR_MRS"
SHAPE = (1024, 1032)
DETECTORS = {"MIRIFUSHORT": ("1", "2"), "MIRIFULONG": ("4", "3")}  # (left, right)
BANDS = ("SHORT", "MEDIUM", "LONG")
BAND_LETTER = {"SHORT": "A", "MEDIUM": "B", "LONG": "C"}
REF_COLUMNS = (4, 1028)  # science columns are [4, 1028)
DARK_COLUMNS = {"12": (503, 516), "34": (474, 507)}  # jwst straylight's inter-channel region
V2_REF, V3_REF, V3YANGLE = -502.65, -318.74, 8.26  # the MRS field (ch1A reference point)

# channel -> nslices, beta_del (arcsec), dalpha (arcsec/col), field along alpha (arcsec)
CHANNELS: dict[str, tuple[int, float, float, float]] = {
    "1": (21, 0.177, 0.196, 3.2), "2": (17, 0.280, 0.196, 4.0),
    "3": (16, 0.390, 0.245, 5.2), "4": (12, 0.656, 0.273, 6.6),
}
# (channel, band) -> (lambda_min, lambda_max) micron (JWST's nominal MRS sub-bands)
WAVE_RANGE: dict[tuple[str, str], tuple[float, float]] = {
    ("1", "SHORT"): (4.90, 5.74), ("1", "MEDIUM"): (5.66, 6.63), ("1", "LONG"): (6.53, 7.65),
    ("2", "SHORT"): (7.51, 8.77), ("2", "MEDIUM"): (8.67, 10.13), ("2", "LONG"): (10.02, 11.70),
    ("3", "SHORT"): (11.55, 13.47), ("3", "MEDIUM"): (13.34, 15.57),
    ("3", "LONG"): (15.41, 17.98),
    ("4", "SHORT"): (17.70, 20.95), ("4", "MEDIUM"): (20.69, 24.48),
    ("4", "LONG"): (24.19, 27.90),
}
# columns available to each channel's slices: left [12, ...), right (..., 1020]
_SPAN = {"1": (12.0, 498.0), "4": (12.0, 468.0), "2": (522.0, 1020.0), "3": (512.0, 1020.0)}
_ROWS = (8.0, 1016.0)  # rows the band's wavelength range spans


class MrsModelError(ValueError):
    """A channel, band or detector the MRS model does not have."""


def channels_of(detector: str) -> tuple[str, str]:
    """(left, right) channel of an MRS detector."""
    try:
        return DETECTORS[str(detector).upper()]
    except KeyError:
        raise MrsModelError(f"{detector!r} is not an MRS detector (MIRIFUSHORT, MIRIFULONG)"
                            ) from None


def check_band(band: str) -> str:
    b = str(band).upper()
    if b not in BANDS:
        raise MrsModelError(f"MRS band must be one of {', '.join(BANDS)}, got {band!r}")
    return b


def psf_fwhm(lam_um) -> np.ndarray:
    """The MRS PSF FWHM (arcsec) at a wavelength: diffraction-limited plus a floor."""
    return 0.033 * np.asarray(lam_um, np.float64) + 0.106


def resolving_power(lam_um) -> np.ndarray:
    """Spectral resolving power R = lambda / FWHM(LSF): ~3700 at 5 um, ~1500 at 28 um."""
    return 3700.0 - 95.0 * (np.asarray(lam_um, np.float64) - 4.9)


# --------------------------------------------------------------------------------------------
# Parameters (the content of the distortion/specwcs/regions/wavelengthrange references)
# --------------------------------------------------------------------------------------------

def _slice_order(n: int) -> list[int]:
    """Slice numbers in detector order, left to right: odd slices, then even ones."""
    return list(range(1, n + 1, 2)) + list(range(2, n + 1, 2))


def channel_params(channel: str, band: str, side: str) -> dict[str, Any]:
    """The model parameters of one channel in one band (JSON-able)."""
    ch = str(channel)
    band = check_band(band)
    if ch not in CHANNELS:
        raise MrsModelError(f"MRS channel must be 1-4, got {channel!r}")
    n, bdel, dalpha, fov = CHANNELS[ch]
    w = fov / dalpha  # slice image width in columns
    lo, hi = _SPAN[ch]
    gap = (hi - lo - n * w) / n
    order = _slice_order(n)
    lmin, lmax = WAVE_RANGE[(ch, band)]
    ib = BANDS.index(band)
    icn = int(ch)
    # lambda(t): t spans _ROWS/1024; a gentle curvature; channels 3/4 disperse towards -y
    t0, t1 = _ROWS[0] / 1024.0, _ROWS[1] / 1024.0
    curv = 0.04 * (lmax - lmin)
    if icn <= 2:
        a, b = lmin, lmax
    else:
        a, b = lmax, lmin
    # L(t) = l0 + l1 t + l2 t^2 through (t0, a), (t1, b), with l2 = +-curv/(t1-t0)^2
    l2 = curv / (t1 - t0) ** 2 * (1.0 if icn <= 2 else -1.0)
    l1 = (b - a) / (t1 - t0) - l2 * (t0 + t1)
    l0 = a - l1 * t0 - l2 * t0 * t0
    slices = []
    for j, k in enumerate(order):
        x0 = lo + gap / 2.0 + j * (w + gap)
        slices.append({
            "slice": 100 * icn + k, "k": k,
            "x0": float(x0),
            "t1": float(1.2 + 0.15 * math.sin(0.7 * j + icn)),  # tilt (columns over v)
            "t2": float(-0.8 + 0.1 * math.cos(0.5 * j)),  # bow
            "dy": float(2.5 * math.sin(1.3 * k + 0.4 * icn + ib)),  # row offset
        })
    theta = V3YANGLE + 0.15 * (icn - 1)
    return {
        "channel": ch, "band": band, "side": side, "nslices": n, "beta_del": bdel,
        "beta_zero": -(n - 1) / 2.0 * bdel, "dalpha": dalpha, "width": float(w),
        "alpha_min": -fov / 2.0, "alpha_max": fov / 2.0, "anamorph": 0.012,
        "shear": 0.35 if icn % 2 else -0.3, "lam": [float(l0), float(l1), float(l2)],
        "wrange": [lmin, lmax], "slices": slices,
        # (alpha, beta) -> (v2, v3): rotation theta with parity -1, channel centre offsets
        "v2v3": {"v2c": V2_REF + 0.04 * (icn - 1), "v3c": V3_REF - 0.03 * (icn - 1),
                 "theta": float(theta)},
    }


def mrs_params(detector: str, band: str) -> dict[str, Any]:
    """The model parameters of an MRS exposure (detector + band): both of its channels."""
    left, right = channels_of(detector)
    band = check_band(band)
    return {"model": MODEL, "detector": str(detector).upper(), "band": band,
            "shape": list(SHAPE), "channels": [left, right],
            "channel": {left: channel_params(left, band, "left"),
                        right: channel_params(right, band, "right")}}


# --------------------------------------------------------------------------------------------
# The kernel face: packed parameters and the per-pixel map
# --------------------------------------------------------------------------------------------

NPAR = 18  # per-slice packed parameters


def pack(params: Mapping[str, Any]) -> np.ndarray:
    """Per-slice parameters as a float64 table (rows: slices of both channels) for numba:
    label, k, beta, beta_del, x0, width, t1, t2, anamorph, dalpha, dy, shear, l0, l1, l2,
    alpha half-range, lambda_min, lambda_max (pixels outside the band's range belong to no
    slice, as jwst's wavelength-range label mapper has it)."""
    rows = []
    for ch in params["channels"]:
        c = params["channel"][ch]
        for s in c["slices"]:
            beta = c["beta_zero"] + (s["k"] - 1) * c["beta_del"]
            rows.append([s["slice"], s["k"], beta, c["beta_del"], s["x0"], c["width"], s["t1"],
                         s["t2"], c["anamorph"], c["dalpha"], s["dy"], c["shear"],
                         *c["lam"], (c["alpha_max"] - c["alpha_min"]) / 2.0, *c["wrange"]])
    return np.asarray(rows, np.float64)


@njit(nogil=True, cache=True)
def _lam(t, l0, l1, l2):
    return l0 + t * (l1 + t * l2)


@njit(nogil=True, cache=True)
def _alpha(x, y, p):
    v = (y - 512.0) / 512.0
    xc = p[4] + 0.5 * p[5] + p[6] * v + p[7] * v * v
    return p[9] * (1.0 + p[8] * v) * (x - xc), xc


@njit(nogil=True, cache=True)
def _pixel_map(table, ny, nx):
    """Per pixel: label, alpha, beta, lambda, d(alpha)/dx and d(lambda)/dy at the centre."""
    label = np.zeros((ny, nx), np.int32)
    alpha = np.full((ny, nx), np.nan)
    beta = np.full((ny, nx), np.nan)
    lam = np.full((ny, nx), np.nan)
    dadx = np.zeros((ny, nx))
    dldy = np.zeros((ny, nx))
    for s in range(table.shape[0]):
        p = table[s]
        half = 0.5 * p[5]
        for y in range(ny):
            v = (y - 512.0) / 512.0
            xc = p[4] + half + p[6] * v + p[7] * v * v
            x_lo = int(math.ceil(xc - half - 1e-12))
            x_hi = int(math.floor(xc + half - 1e-12))
            if x_hi < 0 or x_lo > nx - 1:
                continue
            if x_lo < 0:
                x_lo = 0
            if x_hi > nx - 1:
                x_hi = nx - 1
            for x in range(x_lo, x_hi + 1):
                if abs(x - xc) >= half:
                    continue
                a = p[9] * (1.0 + p[8] * v) * (x - xc)
                t = (y + p[10] + p[11] * a) / 1024.0
                lv = _lam(t, p[12], p[13], p[14])
                if lv < p[16] or lv > p[17]:
                    continue
                label[y, x] = int(p[0])
                alpha[y, x] = a
                beta[y, x] = p[2]
                lam[y, x] = lv
                dadx[y, x] = p[9] * (1.0 + p[8] * v)
                # d lambda / dy along the column at fixed x (alpha varies with y through xc)
                dv = 1.0 / 512.0
                dxc = (p[6] + 2.0 * p[7] * v) * dv
                da_dy = p[9] * (p[8] * dv * (x - xc) - (1.0 + p[8] * v) * dxc)
                dt = (1.0 + p[11] * da_dy) / 1024.0
                dldy[y, x] = (p[13] + 2.0 * p[14] * t) * dt
    return label, alpha, beta, lam, dadx, dldy


def pixel_map(params: Mapping[str, Any], shape: Sequence[int] | None = None
              ) -> dict[str, np.ndarray]:
    """Slice label (0 off the slices), alpha, beta (arcsec), wavelength (micron), the pixel's
    along-slice width ``dalpha`` (arcsec, |d alpha/dx|) and spectral width ``dlam`` (micron,
    |d lambda/dy|) at every pixel centre."""
    ny, nx = (int(v) for v in (shape or params["shape"]))
    label, alpha, beta, lam, dadx, dldy = _pixel_map(pack(params), ny, nx)
    return {"label": label, "alpha": alpha, "beta": beta, "lam": lam,
            "dalpha": np.abs(dadx), "dlam": np.abs(dldy)}


def pixels(params: Mapping[str, Any], shape: Sequence[int] | None = None):
    """``transforms.ifu.Pixels`` of an MRS exposure."""
    from transforms.ifu import Pixels

    pm = pixel_map(params, shape)
    dbeta = np.zeros(pm["label"].shape)
    for ch in params["channels"]:
        dbeta[pm["label"] // 100 == int(ch)] = params["channel"][ch]["beta_del"]
    return Pixels(pm["label"], pm["alpha"], pm["beta"], pm["lam"], pm["dalpha"], dbeta,
                  pm["dlam"])


def band_mask(params: Mapping[str, Any], px, band: tuple[str, str]) -> np.ndarray:
    """Pixels of a (channel, band) of this exposure."""
    ch, b = band
    if str(b).upper() != params["band"] or str(ch) not in params["channels"]:
        return np.zeros(px.label.shape, bool)
    return (px.label // 100) == int(ch)


def local_to_internal(params: Mapping[str, Any], alpha, beta):
    """The MRS local frame is (alpha, beta) arcsec itself."""
    return np.asarray(alpha, np.float64), np.asarray(beta, np.float64)


def local_affine(params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(label -> row lookup, rows [m00, m01, m10, m11, t2, t3]) of the channels' (alpha,
    beta) -> (v2, v3) maps, for ``transforms.ifu``'s kernels."""
    lut = np.full(500, -1, np.int64)
    table = np.zeros((len(params["channels"]), 6))
    for r, ch in enumerate(params["channels"]):
        mat, tr = ab_to_v2v3_matrix(params, ch)
        table[r] = [mat[0, 0], mat[0, 1], mat[1, 0], mat[1, 1], tr[0], tr[1]]
        for s in params["channel"][ch]["slices"]:
            lut[int(s["slice"])] = r
    return lut, table


def local_to_v2v3(params: Mapping[str, Any], label, alpha, beta
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(v2, v3) arcsec of (alpha, beta) in the channel of each slice label."""
    from transforms import ifu

    return ifu.local_to_v2v3(params, label, alpha, beta)


def v2v3_to_local(params: Mapping[str, Any], channel: str, v2, v3
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, beta) of (v2, v3) in a channel's frame."""
    mat, tr = ab_to_v2v3_matrix(params, channel)
    inv = np.linalg.inv(mat)
    d2 = np.asarray(v2, np.float64) - tr[0]
    d3 = np.asarray(v3, np.float64) - tr[1]
    return inv[0, 0] * d2 + inv[0, 1] * d3, inv[1, 0] * d2 + inv[1, 1] * d3


@njit(nogil=True, cache=True)
def _eval_points(table, rows, x, y):
    """alpha, beta, lambda at detector points (x, y) of slice rows ``rows`` (no bounds)."""
    n = x.size
    a = np.empty(n)
    b = np.empty(n)
    lam = np.empty(n)
    for i in range(n):
        p = table[rows[i]]
        v = (y[i] - 512.0) / 512.0
        xc = p[4] + 0.5 * p[5] + p[6] * v + p[7] * v * v
        ai = p[9] * (1.0 + p[8] * v) * (x[i] - xc)
        t = (y[i] + p[10] + p[11] * ai) / 1024.0
        a[i] = ai
        b[i] = p[2]
        lam[i] = _lam(t, p[12], p[13], p[14])
    return a, b, lam


def slice_rows(params: Mapping[str, Any]) -> dict[int, int]:
    """Slice label -> its row in ``pack(params)``."""
    return {int(v): i for i, v in enumerate(pack(params)[:, 0])}


def eval_points(params: Mapping[str, Any], labels: np.ndarray, x: np.ndarray, y: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """alpha, beta, lambda at arbitrary detector points of given slices (labels): the
    analytic continuation of each slice's formulas (used for pixel corners)."""
    table = pack(params)
    lut = np.full(int(table[:, 0].max()) + 2, -1, np.int64)
    lut[table[:, 0].astype(np.int64)] = np.arange(table.shape[0])
    labels = np.asarray(labels, np.int64).ravel()
    if labels.size and (labels.min() < 0 or labels.max() >= lut.size):
        raise MrsModelError("eval_points: a label names no slice of this exposure")
    r = lut[labels]
    if np.any(r < 0):
        raise MrsModelError("eval_points: a label names no slice of this exposure")
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    return _eval_points(table, r, x, y)


def inverse(params: Mapping[str, Any], label: int, alpha, lam) -> tuple[np.ndarray, np.ndarray]:
    """Detector (x, y) of (alpha, lambda) in slice ``label`` (closed form)."""
    ch = str(int(label) // 100)
    c = params["channel"][ch]
    s = next(s for s in c["slices"] if s["slice"] == int(label))
    alpha = np.asarray(alpha, np.float64)
    t = _lam_inverse(c["lam"], np.asarray(lam, np.float64))
    y = t * 1024.0 - s["dy"] - c["shear"] * alpha
    v = (y - 512.0) / 512.0
    xc = s["x0"] + 0.5 * c["width"] + s["t1"] * v + s["t2"] * v * v
    x = xc + alpha / (c["dalpha"] * (1.0 + c["anamorph"] * v))
    return x, y


def _lam_inverse(lam_coeffs: Sequence[float], lam: np.ndarray) -> np.ndarray:
    l0, l1, l2 = (float(v) for v in lam_coeffs)
    if l2 == 0.0:
        return (lam - l0) / l1
    sign = 1.0 if l1 > 0 else -1.0
    return (-l1 + sign * np.sqrt(l1 * l1 + 4.0 * l2 * (lam - l0))) / (2.0 * l2)


def ab_to_v2v3_matrix(params: Mapping[str, Any], channel: str) -> tuple[np.ndarray, np.ndarray]:
    """(2x2 matrix, translation) of the channel's (alpha, beta) -> (v2, v3) map (arcsec)."""
    vv = params["channel"][str(channel)]["v2v3"]
    th = math.radians(vv["theta"])
    c, s = math.cos(th), math.sin(th)
    matrix = np.array([[-c, s], [s, c]])  # a rotation with the V frame's parity (det -1)
    return matrix, np.array([vv["v2c"], vv["v3c"]])


def wavelength_range(params: Mapping[str, Any]) -> tuple[float, float]:
    lo = min(params["channel"][c]["wrange"][0] for c in params["channels"])
    hi = max(params["channel"][c]["wrange"][1] for c in params["channels"])
    return lo, hi


# --------------------------------------------------------------------------------------------
# The gwcs face (jwst's MRS layout)
# --------------------------------------------------------------------------------------------

def _slice_models(c: Mapping[str, Any], s: Mapping[str, Any]):
    """alpha_model, beta_model, lambda_model (inputs (y, x)) and x_model, y_model (inputs
    (lambda, alpha)) of one slice as astropy compound models."""
    from astropy.modeling import models as m

    beta = c["beta_zero"] + (s["k"] - 1) * c["beta_del"]
    Y = m.Mapping((0,), n_inputs=2)
    X = m.Mapping((1,), n_inputs=2)
    V = Y | m.Shift(-512.0) | m.Scale(1.0 / 512.0)
    xc = V | m.Polynomial1D(2, c0=s["x0"] + 0.5 * c["width"], c1=s["t1"], c2=s["t2"])
    gain = V | m.Polynomial1D(1, c0=c["dalpha"], c1=c["dalpha"] * c["anamorph"])
    alpha = (X - xc) * gain
    lamp = m.Polynomial1D(2, c0=c["lam"][0], c1=c["lam"][1], c2=c["lam"][2])
    lam = (Y + (alpha | m.Scale(c["shear"]))) | m.Shift(s["dy"]) | m.Scale(1.0 / 1024.0) | lamp
    beta_m = m.Const1D(beta)
    # inverse, inputs (lam, alpha)
    L = m.Mapping((0,), n_inputs=2)
    A = m.Mapping((1,), n_inputs=2)
    from transforms.spectral import _poly_inverse

    T = L | _poly_inverse(c["lam"]) | m.Scale(1024.0) | m.Shift(-s["dy"])
    yv = T - (A | m.Scale(c["shear"]))
    vv = yv | m.Shift(-512.0) | m.Scale(1.0 / 512.0)
    xcv = vv | m.Polynomial1D(2, c0=s["x0"] + 0.5 * c["width"], c1=s["t1"], c2=s["t2"])
    gv = vv | m.Polynomial1D(1, c0=c["dalpha"], c1=c["dalpha"] * c["anamorph"])
    xv = xcv + A / gv
    return alpha, beta_m, lam, xv, yv


def regions_array(params: Mapping[str, Any]) -> np.ndarray:
    """The slice label map (int32, 0 = no slice), as the RegionsModel's planes hold it."""
    return pixel_map(params)["label"].astype(np.int32)


def mrs_gwcs(params: Mapping[str, Any], meta: Mapping[str, Any]):
    """The exposure's gwcs in jwst's MRS layout (see the module docstring); ``meta`` gives
    the pointing (``wcsinfo.*``, ``velocity_aberration.scale_factor``)."""
    from astropy import coordinates as coord
    from astropy import units as u
    from astropy.modeling import bind_bounding_box
    from astropy.modeling import models as m
    from gwcs import coordinate_frames as cf
    from gwcs import selector
    from gwcs import wcs as gw
    from stdatamodels.jwst.transforms.models import MIRI_AB2Slice

    from transforms.wcs import pointing_model, va_model

    band = params["band"]
    transforms = {}
    for ch in params["channels"]:
        c = params["channel"][ch]
        for s in c["slices"]:
            alpha, beta_m, lam, xv, yv = _slice_models(c, s)
            fwd = m.Mapping((1, 0, 0, 1, 0)) | alpha & beta_m & lam
            fwd.inverse = m.Mapping((2, 0, 2, 0)) | xv & yv
            transforms[int(s["slice"])] = fwd
    label_mapper = selector.LabelMapperArray(regions_array(params))
    ch_dict = {}
    for ch in params["channels"]:
        c = params["channel"][ch]
        mapper = MIRI_AB2Slice(c["beta_zero"], c["beta_del"], int(ch))
        ch_dict[tuple(c["wrange"])] = selector.LabelMapper(
            inputs=("alpha", "beta", "lam"), mapper=mapper,
            inputs_mapping=m.Mapping((1,), n_inputs=3))
    label_mapper.inverse = selector.LabelMapperRange(("alpha", "beta", "lam"), ch_dict,
                                                     m.Mapping((2,)))
    det2ab = selector.RegionsSelector(("x", "y"), ("alpha", "beta", "lam"),
                                      label_mapper=label_mapper, selector=transforms)
    det2ab.name = "detector_to_abl"
    ny, nx = (int(v) for v in params["shape"])
    bind_bounding_box(det2ab, ((-0.5, nx - 0.5), (-0.5, ny - 0.5)), order="F")
    # alpha_beta -> v2v3, per channel by wavelength range
    dict_mapper, sel = {}, {}
    for ch in params["channels"]:
        c = params["channel"][ch]
        mat, tr = ab_to_v2v3_matrix(params, ch)
        aff = m.AffineTransformation2D(matrix=mat, translation=tr)
        aff.inverse = m.AffineTransformation2D(matrix=np.linalg.inv(mat),
                                               translation=-np.linalg.inv(mat) @ tr)
        dict_mapper[tuple(c["wrange"])] = m.Mapping((2,), name="mapping_lam") | m.Const1D(
            int(ch), name="channel #")
        ident = m.Identity(1, name="identity_lam")
        sel[int(ch)] = aff & ident
    wr_mapper = selector.LabelMapperRange(("alpha", "beta", "lam"), dict_mapper,
                                          inputs_mapping=m.Mapping([2]))
    wr_mapper.inverse = wr_mapper.copy()
    ab2v23 = selector.RegionsSelector(("alpha", "beta", "lam"), ("v2", "v3", "lam"),
                                      label_mapper=wr_mapper, selector=sel)
    ab2v23.name = "abl_to_v2v3l"
    det = cf.Frame2D(name="detector", axes_order=(0, 1), unit=(u.pix, u.pix))
    ab = cf.Frame2D(name="alpha_beta_spatial", axes_order=(0, 1), unit=(u.arcsec, u.arcsec),
                    axes_names=("alpha", "beta"))
    spec_local = cf.SpectralFrame(name="alpha_beta_spectral", axes_order=(2,),
                                  unit=(u.micron,), axes_names=("lambda",))
    miri_focal = cf.CompositeFrame([ab, spec_local], name="alpha_beta")
    spec = cf.SpectralFrame(name="spectral", axes_order=(2,), unit=(u.micron,),
                            axes_names=("lambda",))
    v23 = cf.CompositeFrame([cf.Frame2D(name="v2v3_spatial", axes_order=(0, 1),
                                        unit=(u.arcsec, u.arcsec), axes_names=("v2", "v3")),
                             spec], name="v2v3")
    v23va = cf.CompositeFrame([cf.Frame2D(name="v2v3vacorr_spatial", axes_order=(0, 1),
                                          unit=(u.arcsec, u.arcsec), axes_names=("v2", "v3")),
                               spec], name="v2v3vacorr")
    icrs = cf.CelestialFrame(name="icrs", reference_frame=coord.ICRS(), axes_order=(0, 1),
                             unit=(u.deg, u.deg), axes_names=("RA", "DEC"))
    world = cf.CompositeFrame([icrs, spec], name="world")
    return gw.WCS([(det, det2ab), (miri_focal, ab2v23), (v23, va_model(meta) & m.Identity(1)),
                   (v23va, pointing_model(meta) & m.Identity(1)), (world, None)])


def gwcs(params: Mapping[str, Any], meta: Mapping[str, Any]):
    """``transforms.ifu``'s entry point: the exposure's gwcs."""
    return mrs_gwcs(params, meta)


# --------------------------------------------------------------------------------------------
# The references' content (JWST layouts; store writes them)
# --------------------------------------------------------------------------------------------

def reference_trees(params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The stdatamodels trees (without ``meta``) of the ``distortion`` (DistortionMRSModel),
    ``specwcs`` (SpecwcsModel), ``regions`` (RegionsModel) and ``wavelengthrange``
    (WavelengthrangeModel) references of an exposure's detector and band."""
    from astropy.modeling import models as m

    slices, am_, bm_, lm_, xm_, ym_ = [], [], [], [], [], []
    bz, bd, v23 = {"channel_band": [], "beta_zero": []}, \
        {"channel_band": [], "delta_beta": []}, {"channel_band": [], "model": []}
    for ch in params["channels"]:
        c = params["channel"][ch]
        cb = f"{ch}{params['band']}"
        for s in c["slices"]:
            alpha, beta_m, lam, xv, yv = _slice_models(c, s)
            slices.append(int(s["slice"]))
            am_.append(alpha)
            bm_.append(beta_m)
            lm_.append(lam)
            xm_.append(xv)
            ym_.append(yv)
        bz["channel_band"].append(cb)
        bz["beta_zero"].append(float(c["beta_zero"]))
        bd["channel_band"].append(cb)
        bd["delta_beta"].append(float(c["beta_del"]))
        mat, tr = ab_to_v2v3_matrix(params, ch)
        aff = m.AffineTransformation2D(matrix=mat, translation=tr)
        aff.inverse = m.AffineTransformation2D(matrix=np.linalg.inv(mat),
                                               translation=-np.linalg.inv(mat) @ tr)
        v23["channel_band"].append(cb)
        v23["model"].append(aff)
    regions = regions_array(params)
    return {
        "distortion": {"slices": slices, "alpha_model": am_, "beta_model": bm_,
                       "x_model": xm_, "y_model": ym_, "bzero": bz, "bdel": bd,
                       "abv2v3_model": v23},
        "specwcs": {"slices": slices, "model": lm_},
        "regions": {"regions": np.repeat(regions[None], 9, axis=0)},
        "wavelengthrange": _wavelengthrange_tree(),
    }


def _wavelengthrange_tree() -> dict[str, Any]:
    sel, rng = [], []
    for ch in ("1", "2", "3", "4"):
        for band in BANDS:
            sel.append(f"{ch}{band}")
            rng.append(list(WAVE_RANGE[(ch, band)]))
    return {"waverange_selector": sel, "wavelengthrange": rng}
