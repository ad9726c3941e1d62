"""NIRSpec IFU: 30 slices, one parameter set, two faces (the numba kernel and the gwcs).

The numba kernel ``pixel_map`` (detector pixel -> slice, along-slice ``alpha``, across-slice
``beta``, wavelength) is what the simulator puts light through and what every calops IFU step
takes it off with; ``nrs_ifu_gwcs`` builds the same transforms as a gwcs in jwst 3.0's
**coordinate-based IFU layout** (``coordinates -> detector -> slicer -> v2v3 -> v2v3vacorr ->
world``: a ``RegionsSelector`` over the slice map whose per-slice transforms give the slicer
plane ``(x_slice, y_slice, lam)`` in metres, with bounding boxes bound), which jwst's
``nrs_wcs_set_input``/``nrs_ifu_wcs`` and cube_build read. The parameters are the content of
the three IFU references (``ifufore``, ``ifuslicer``, ``ifupost``; ``reference_trees`` writes
them with their astropy models), so a reference change moves the simulator and the pipeline
together.

**Model** (calops' own, simpler than NIRSpec's optical chain, which it does not emulate;
wavelengths micron, sky offsets arcsec):

- *Fore optics* (ifufore): the IFU field (3" x 3") about the aperture ``(v2c, v3c)``, rotated
  by ``theta`` with the V frame's parity: ``(alpha, beta) -> (v2, v3)`` affine; the slicer
  plane is the field scaled by ``scale`` metres per arcsec (``x_slice = scale beta``,
  ``y_slice = scale alpha``).
- *Slicer* (ifuslicer): 30 slices of ``width`` 0.1" across (slice ``k`` = 0..29 centred at
  ``beta_k = -1.45 + 0.1 k``), each 3" long (|alpha| <= 1.5).
- *Spectrograph* (ifupost): slice ``k`` images onto a band of detector rows centred at
  ``y0_k`` (the slices stacked centre-out, jwst's slice map order), along-slice scale
  ``pix_along`` arcsec per row, a bow ``t2 ((xf - 1024) / 1024)^2`` rows; the dispersion along
  the columns ``xf = x0 + u(lambda) + dx_k + s alpha`` (``s`` the iso-wavelength tilt, columns
  per arcsec), ``u(lambda) = (lambda - lc) / d + e (lambda - lc)^2`` for the gratings (a
  quadratic root inverts it), ``u = a1 t + a3 t^3, t = ln(lambda / l0)`` for the prism (Newton
  inverts it). ``xf`` is the focal-plane column: NRS1 columns 0-2047, NRS2 ``xf - nrs2_x0``
  (the H gratings' long wavelengths fall there; the M gratings and the prism only on NRS1, as
  on NIRSpec).

Per pixel, alpha along the slice (from the row), beta the slice's centre, the wavelength of
the column (and row, through the tilt and bow); a pixel belongs to a slice when its centre
lies within the slice's 3" and its wavelength within the filter's range.

Also here: the MSA-plane map of failed-open shutters onto the detector (``failed_open_mask``,
what msa_flagging flags for NRS_IFU) and the F/S/D flats at each pixel's wavelength
(``flat_at_pixels``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numba import njit

MODEL = "calops.nrs_ifu"
DISPERSION_AXIS = 1  # wavelength runs along detector x (columns)
SHAPE = (2048, 2048)
NSLICE = 30
SLICE_WIDTH = 0.1
ALPHA_HALF = 1.5
SLICER_SCALE = 1.0e-2  # slicer-plane metres per arcsec on the sky (slices 1 mm apart)
PIX_ALONG = 0.1  # arcsec per detector row along a slice
SLICE_PITCH = 32.0  # rows between slice centres (30 rows of slice + 2 of gap)
Y_FIRST = 556.0  # row of the centre of the lowest slice on the detector
NRS2_X0 = 2068.0  # focal-plane column of NRS2's column 0 (a 20-column gap)
V2C, V3C, THETA = 299.8, -497.9, 138.5  # the IFU aperture (V2/V3 arcsec, V3 angle deg)
# jwst's NIRSpec slice map: detector order (bottom to top) of the slices 0..29
SLICEMAP = (15, 14, 16, 13, 17, 12, 18, 11, 19, 10, 20, 9, 21, 8, 22, 7, 23, 6, 24, 5, 25, 4,
            26, 3, 27, 2, 28, 1, 29, 0)
# grating -> (lc um, d um/px at lc, e 1/um^2 curvature, x0 column of lc)
GRATINGS: dict[str, tuple[float, float, float, float]] = {
    "G140M": (1.40, 0.000636, 4.0, 1000.0), "G235M": (2.40, 0.00106, 2.5, 1000.0),
    "G395M": (4.05, 0.00179, 1.5, 1000.0), "G140H": (1.40, 0.000235, 10.0, 2000.0),
    "G235H": (2.40, 0.000396, 6.0, 2000.0), "G395H": (4.05, 0.000665, 3.5, 2000.0),
}
PRISM = {"l0": 1.5, "a1": 120.0, "a3": 10.0, "x0": 1024.0}
# (grating, filter) -> wavelength range (um), as jwst's NIRSpec IFU wavelengthrange
RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("G140M", "F070LP"): (0.70, 1.27), ("G140M", "F100LP"): (0.97, 1.89),
    ("G235M", "F170LP"): (1.66, 3.17), ("G395M", "F290LP"): (2.87, 5.27),
    ("G140H", "F070LP"): (0.70, 1.27), ("G140H", "F100LP"): (0.97, 1.89),
    ("G235H", "F170LP"): (1.66, 3.17), ("G395H", "F290LP"): (2.87, 5.27),
    ("PRISM", "CLEAR"): (0.60, 5.30),
}
# the MSA (for failed-open shutters): quadrant lower-left corners (X, Y arcsec), shutter
# pitch and open size, and the focal-plane map xf = x0 + u(lambda) + 10 X, yf = 1024 + 9.66 Y
MSA = {"pitch_x": 0.268, "pitch_y": 0.529, "open_x": 0.20, "open_y": 0.46,
       "nrows": 365, "ncols": 171, "fx": 10.0, "fy": 9.66,
       "quadrants": {"1": [-101.5, 5.0], "2": [-101.5, -95.5], "3": [4.7, 5.0],
                     "4": [4.7, -95.5]}}


class NirspecIfuError(ValueError):
    """A grating, filter or detector the NIRSpec IFU model does not have."""


def psf_fwhm(lam_um) -> np.ndarray:
    """The IFU's effective PSF FWHM (arcsec)."""
    return 0.12 + 0.025 * np.asarray(lam_um, np.float64)


def resolving_power_of(grating: str):
    g = str(grating).upper()

    def r(lam):
        lam = np.asarray(lam, np.float64)
        if g == "PRISM":
            return 30.0 + 60.0 * np.abs(lam - 1.2)
        lc = GRATINGS[g][0]
        return (2700.0 if g.endswith("H") else 1000.0) * lam / lc
    return r


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------

def check(grating: str, filt: str) -> tuple[str, str]:
    g, f = str(grating).upper(), str(filt).upper()
    if (g, f) not in RANGES:
        raise NirspecIfuError(f"the NIRSpec IFU model has no {g}/{f}; it has "
                              f"{', '.join('/'.join(k) for k in RANGES)}")
    return g, f


def nrs_ifu_params(detector: str, grating: str, filt: str) -> dict[str, Any]:
    """The model of a NIRSpec IFU exposure (JSON-able): fore optics, slicer, spectrograph."""
    det = str(detector).upper()
    if det not in ("NRS1", "NRS2"):
        raise NirspecIfuError(f"{detector!r} is not a NIRSpec detector (NRS1, NRS2)")
    g, f = check(grating, filt)
    if g == "PRISM":
        law = {"kind": "prism", **PRISM}
    else:
        lc, d, e, x0 = GRATINGS[g]
        law = {"kind": "grating", "lc": lc, "d": d, "e": e, "x0": x0}
    slices = []
    for j, k in enumerate(SLICEMAP):
        slices.append({"slice": k, "y0": Y_FIRST + j * SLICE_PITCH,
                       "dx": float(1.5 * math.sin(0.9 * k + 0.3)),
                       "t2": float(2.0 + 0.3 * math.cos(0.4 * k)),
                       "shear": 0.6})
    return {"model": MODEL, "detector": det, "grating": g, "filter": f, "shape": list(SHAPE),
            "fore": {"v2c": V2C, "v3c": V3C, "theta": THETA, "scale": SLICER_SCALE},
            "slicer": {"nslice": NSLICE, "width": SLICE_WIDTH,
                       "beta0": -(NSLICE - 1) / 2.0 * SLICE_WIDTH, "alpha_half": ALPHA_HALF},
            "post": {"slices": slices, "pix_along": PIX_ALONG, "xmid": 1024.0,
                     "nrs2_x0": NRS2_X0, "law": law, "wrange": list(RANGES[(g, f)])},
            "msa": MSA}


def params_from_refs(meta: Mapping[str, Any], refs: Mapping[str, Any]) -> dict[str, Any]:
    """The exposure's model from its ifufore/ifuslicer/ifupost references (which all carry
    ``calops.nrs_ifu``; the grating and filter sections must match the exposure's)."""
    ps = []
    for rt in ("ifufore", "ifuslicer", "ifupost"):
        p = refs[rt].get("calops.nrs_ifu")
        if not isinstance(p, Mapping):
            raise NirspecIfuError(f"assign_wcs: the {rt} reference holds no calops NIRSpec IFU "
                                  "model (a CRDS reference calops cannot parse)")
        ps.append(p)
    g = str(meta.get("instrument.grating") or "").upper()
    f = str(meta.get("instrument.filter") or "").upper()
    det = str(meta.get("instrument.detector") or "").upper()
    check(g, f)
    base = nrs_ifu_params(det, g, f)
    out = dict(base)
    out["fore"] = dict(ps[0]["fore"])
    out["slicer"] = dict(ps[1]["slicer"])
    post = ps[2]["post"]
    if isinstance(post, Mapping) and "by_grating" in post:
        key = f"{g}/{f}"
        if key not in post["by_grating"]:
            raise NirspecIfuError(f"assign_wcs: the ifupost reference has no {key}")
        out["post"] = dict(post["by_grating"][key])
    else:
        out["post"] = dict(post)
    out["msa"] = dict(ps[2].get("msa") or MSA)
    return out


# --------------------------------------------------------------------------------------------
# The kernel face
# --------------------------------------------------------------------------------------------

def pack(params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(per-slice table [slice, beta, y0, dx, t2, shear], law [kind, p1..p4, lo, hi,
    pix_along, alpha_half, xmid, xoff])."""
    sl = params["slicer"]
    post = params["post"]
    rows = []
    for s in post["slices"]:
        beta = sl["beta0"] + s["slice"] * sl["width"]
        rows.append([s["slice"], beta, s["y0"], s["dx"], s["t2"], s["shear"]])
    law = post["law"]
    xoff = 0.0 if params["detector"] == "NRS1" else float(post["nrs2_x0"])
    if law["kind"] == "grating":
        lw = [0.0, law["lc"], law["d"], law["e"], law["x0"]]
    else:
        lw = [1.0, law["l0"], law["a1"], law["a3"], law["x0"]]
    lw += [post["wrange"][0], post["wrange"][1], post["pix_along"], sl["alpha_half"],
           post["xmid"], xoff]
    return np.asarray(rows, np.float64), np.asarray(lw, np.float64)


@njit(nogil=True, cache=True)
def _u_of_lam(lam, law):
    if law[0] == 0.0:
        dl = lam - law[1]
        return dl / law[2] + law[3] * dl * dl
    t = math.log(lam / law[1])
    return law[2] * t + law[3] * t * t * t


@njit(nogil=True, cache=True)
def _lam_of_u(u, law):
    if law[0] == 0.0:
        d, e = law[2], law[3]
        if e == 0.0:
            return law[1] + u * d
        # e dl^2 + dl / d - u = 0, the root continuous with dl = u d
        a = e
        b = 1.0 / d
        disc = b * b + 4.0 * a * u
        if disc < 0.0:
            return np.nan
        return law[1] + 2.0 * u / (b + math.sqrt(disc))
    # prism: a1 t + a3 t^3 = u (monotonic): Newton from the linear guess
    t = u / law[2]
    for _ in range(30):
        f = law[2] * t + law[3] * t * t * t - u
        df = law[2] + 3.0 * law[3] * t * t
        step = f / df
        t -= step
        if abs(step) < 1e-15:
            break
    return law[1] * math.exp(t)


@njit(nogil=True, cache=True)
def _dlam_du(lam, law):
    if law[0] == 0.0:
        return 1.0 / (1.0 / law[2] + 2.0 * law[3] * (lam - law[1]))
    t = math.log(lam / law[1])
    return lam / (law[2] + 3.0 * law[3] * t * t)


@njit(nogil=True, cache=True)
def _pixel_map(table, law, ny, nx):
    label = np.zeros((ny, nx), np.int32)
    alpha = np.full((ny, nx), np.nan)
    beta = np.full((ny, nx), np.nan)
    lam = np.full((ny, nx), np.nan)
    dldx = np.zeros((ny, nx))
    pa, ah, xmid, xoff = law[7], law[8], law[9], law[10]
    half_rows = ah / pa
    for s in range(table.shape[0]):
        k, b, y0, dx, t2, sh = table[s, 0], table[s, 1], table[s, 2], table[s, 3], \
            table[s, 4], table[s, 5]
        for x in range(nx):
            xf = x + xoff
            v = (xf - xmid) / 1024.0
            yc = y0 + t2 * v * v
            y_lo = int(math.ceil(yc - half_rows - 1e-12))
            y_hi = int(math.floor(yc + half_rows - 1e-12))
            if y_hi < 0 or y_lo > ny - 1:
                continue
            for y in range(max(y_lo, 0), min(y_hi, ny - 1) + 1):
                a = (y - yc) * pa
                if abs(a) >= ah:
                    continue
                u = xf - law[4] - dx - sh * a
                lv = _lam_of_u(u, law)
                if not (lv >= law[5] and lv <= law[6]):
                    continue
                label[y, x] = int(k) + 1
                alpha[y, x] = a
                beta[y, x] = b
                lam[y, x] = lv
                dldx[y, x] = _dlam_du(lv, law)
    return label, alpha, beta, lam, dldx


def pixel_map(params: Mapping[str, Any], shape: Sequence[int] | None = None
              ) -> dict[str, np.ndarray]:
    """Slice label (1..30, 0 off the slices), alpha, beta (arcsec), wavelength (micron), the
    pixel's along-slice width (``dalpha`` = pix_along) and spectral width ``dlam``."""
    ny, nx = (int(v) for v in (shape or params["shape"]))
    table, law = pack(params)
    label, alpha, beta, lam, dldx = _pixel_map(table, law, ny, nx)
    return {"label": label, "alpha": alpha, "beta": beta, "lam": lam,
            "dalpha": np.where(label > 0, law[7], 0.0), "dlam": np.abs(dldx)}


def pixels(params: Mapping[str, Any], shape: Sequence[int] | None = None):
    from transforms.ifu import Pixels

    pm = pixel_map(params, shape)
    dbeta = np.where(pm["label"] > 0, params["slicer"]["width"], 0.0)
    return Pixels(pm["label"], pm["alpha"], pm["beta"], pm["lam"], pm["dalpha"], dbeta,
                  pm["dlam"])


@njit(nogil=True, cache=True)
def _eval_points(table, law, rows, x, y):
    n = x.size
    a = np.empty(n)
    b = np.empty(n)
    lam = np.empty(n)
    pa, xmid, xoff = law[7], law[9], law[10]
    for i in range(n):
        t = table[rows[i]]
        xf = x[i] + xoff
        v = (xf - xmid) / 1024.0
        yc = t[2] + t[4] * v * v
        ai = (y[i] - yc) * pa
        a[i] = ai
        b[i] = t[1]
        lam[i] = _lam_of_u(xf - law[4] - t[3] - t[5] * ai, law)
    return a, b, lam


def eval_points(params: Mapping[str, Any], labels, x, y):
    """alpha, beta, lambda at arbitrary detector points of given slices (labels 1..30)."""
    table, law = pack(params)
    lut = np.full(NSLICE + 2, -1, np.int64)
    lut[table[:, 0].astype(np.int64) + 1] = np.arange(table.shape[0])
    labels = np.asarray(labels, np.int64).ravel()
    if labels.size and (labels.min() < 1 or labels.max() > NSLICE):
        raise NirspecIfuError("eval_points: slice labels are 1..30")
    return _eval_points(table, law, lut[labels], np.asarray(x, np.float64).ravel(),
                        np.asarray(y, np.float64).ravel())


def band_mask(params: Mapping[str, Any], px, band: tuple[str, str]) -> np.ndarray:
    g, f = band
    if str(g).upper() != params["grating"] or str(f).upper() != params["filter"]:
        return np.zeros(px.label.shape, bool)
    return px.label > 0


def local_to_internal(params: Mapping[str, Any], alpha, beta):
    """The slicer plane (metres): x_slice across (from beta), y_slice along (from alpha)."""
    k = params["fore"]["scale"]
    return k * np.asarray(beta, np.float64), k * np.asarray(alpha, np.float64)


def ab_to_v2v3_matrix(params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    f = params["fore"]
    th = math.radians(f["theta"])
    c, s = math.cos(th), math.sin(th)
    return np.array([[-c, s], [s, c]]), np.array([f["v2c"], f["v3c"]])


def local_affine(params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    lut = np.full(NSLICE + 2, -1, np.int64)
    lut[1:NSLICE + 1] = 0
    mat, tr = ab_to_v2v3_matrix(params)
    return lut, np.array([[mat[0, 0], mat[0, 1], mat[1, 0], mat[1, 1], tr[0], tr[1]]])


def v2v3_to_local(params: Mapping[str, Any], v2, v3):
    mat, tr = ab_to_v2v3_matrix(params)
    inv = np.linalg.inv(mat)
    d2 = np.asarray(v2, np.float64) - tr[0]
    d3 = np.asarray(v3, np.float64) - tr[1]
    return inv[0, 0] * d2 + inv[0, 1] * d3, inv[1, 0] * d2 + inv[1, 1] * d3


def wavelength_range(params: Mapping[str, Any]) -> tuple[float, float]:
    lo, hi = params["post"]["wrange"]
    return float(lo), float(hi)


def lam_to_column(params: Mapping[str, Any], lam, slice_k: int, alpha=0.0) -> np.ndarray:
    """Detector column (this detector) of a wavelength in a slice at along-slice alpha."""
    table, law = pack(params)
    t = table[[i for i in range(table.shape[0]) if int(table[i, 0]) == int(slice_k)][0]]
    lam = np.asarray(lam, np.float64)
    u = np.array([_u_of_lam(v, law) for v in lam.ravel()]).reshape(lam.shape)
    return u + law[4] + t[3] + t[5] * np.asarray(alpha, np.float64) - law[10]


# --------------------------------------------------------------------------------------------
# Failed-open MSA shutters and the flats
# --------------------------------------------------------------------------------------------

def failed_open_mask(params: Mapping[str, Any], shutters: Sequence[tuple[int, int, int]],
                     shape: Sequence[int] | None = None) -> np.ndarray:
    """Pixels lit by light through failed-open MSA shutters ((quadrant, row along X, column
    along Y)): each shutter's open area dispersed over the filter's range."""
    ny, nx = (int(v) for v in (shape or params["shape"]))
    msa = params.get("msa") or MSA
    _, law = pack(params)
    out = np.zeros((ny, nx), bool)
    lo, hi = params["post"]["wrange"]
    u_lo, u_hi = _u_of_lam(lo, law), _u_of_lam(hi, law)
    for q, i, j in shutters:
        q0 = msa["quadrants"].get(str(int(q)))
        if q0 is None:
            continue
        xc = q0[0] + (int(i) - 0.5) * msa["pitch_x"]
        yc = q0[1] + (int(j) - 0.5) * msa["pitch_y"]
        x0 = law[4] + msa["fx"] * (xc - msa["open_x"] / 2) - law[10]
        x1 = law[4] + msa["fx"] * (xc + msa["open_x"] / 2) - law[10]
        xa, xb = int(math.floor(x0 + u_lo)), int(math.ceil(x1 + u_hi))
        y0 = 1024.0 + msa["fy"] * (yc - msa["open_y"] / 2)
        y1 = 1024.0 + msa["fy"] * (yc + msa["open_y"] / 2)
        ya, yb = int(math.floor(y0 + 0.5)), int(math.floor(y1 + 0.5))
        xa, xb = max(xa, 0), min(xb, nx - 1)
        ya, yb = max(ya, 0), min(yb, ny - 1)
        if xa <= xb and ya <= yb:
            out[ya:yb + 1, xa:xb + 1] = True
    return out


def _slice_of(name: Any) -> int | None:
    """Slice index of a flat_table row name (``SLICE_07``), None for any other name."""
    t = str(name.decode() if isinstance(name, bytes) else name).strip().upper()
    if t.startswith("SLICE_"):
        try:
            return int(t[6:])
        except ValueError:
            return None
    return None


def _flat_value(ref: Any, lam: np.ndarray, labels: np.ndarray, ys: np.ndarray,
                xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One flat's value, error and DQ at pixels: ``data`` (ny, nx) when present, times the
    fast-variation table ``flat_table`` (a row per slice, ``SLICE_<k>``: wavelength, data,
    error arrays of ``nelem`` points; a row named otherwise applies to every slice),
    interpolated at each pixel's wavelength (NaN outside the table)."""
    val = np.ones(lam.size)
    err = np.zeros(lam.size)
    dq = np.zeros(lam.size, np.uint32)
    if ref is None:
        return val, err, dq
    d = ref.arrays.get("data")
    if d is not None and np.ndim(d) == 2:
        d = np.asarray(d, np.float64)
        val = val * d[ys, xs]
        e = ref.arrays.get("err")
        if e is not None:
            err = np.hypot(err, np.asarray(e, np.float64)[ys, xs])
        q = ref.arrays.get("dq")
        if q is not None:
            dq = dq | np.asarray(q).astype(np.uint32)[ys, xs]
    w = ref.arrays.get("flat_table.wavelength")
    if w is not None:
        names = np.asarray(ref.arrays["flat_table.slit_name"])
        nel = np.asarray(ref.arrays.get("flat_table.nelem", np.full(len(names), -1)))
        w = np.atleast_2d(np.asarray(w, np.float64))
        fv = np.atleast_2d(np.asarray(ref.arrays["flat_table.data"], np.float64))
        fe = np.atleast_2d(np.asarray(ref.arrays.get("flat_table.error", np.zeros_like(fv)),
                                      np.float64))
        fac = np.full(lam.size, np.nan)
        ferr = np.zeros(lam.size)
        rows = {_slice_of(nm): i for i, nm in enumerate(names)}
        for k in np.unique(labels):
            r = rows.get(int(k) - 1, rows.get(None))
            if r is None:
                continue
            n = int(nel[r]) if int(nel[r]) > 0 else w.shape[1]
            o = np.argsort(w[r, :n])
            ww, vv, ee = w[r, :n][o], fv[r, :n][o], fe[r, :n][o]
            sel = labels == k
            inside = (lam[sel] >= ww[0]) & (lam[sel] <= ww[-1])
            fac[sel] = np.where(inside, np.interp(lam[sel], ww, vv), np.nan)
            ferr[sel] = np.interp(lam[sel], ww, ee)
        val = val * fac
        err = np.hypot(err, ferr)
    return val, err, dq


def flat_at_pixels(refs: Mapping[str, Any], meta: Mapping[str, Any], px
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flat, error, DQ) per pixel: the product of the D, S and F flats at each pixel's
    wavelength (NaN where a flat does not cover it; 1 off the slices)."""
    ok = px.valid
    ys, xs = np.nonzero(ok)
    lam = px.lam[ys, xs]
    lab = px.label[ys, xs]
    flat = np.ones(px.label.shape)
    ferr = np.zeros(px.label.shape)
    fdq = np.zeros(px.label.shape, np.uint32)
    val = np.ones(lam.size)
    err2 = np.zeros(lam.size)
    dq = np.zeros(lam.size, np.uint32)
    for rt in ("dflat", "sflat", "fflat"):
        v, e, q = _flat_value(refs.get(rt), lam, lab, ys, xs)
        val = val * v
        err2 = err2 + (e / np.where(v != 0, v, 1.0)) ** 2
        dq |= q
    flat[ys, xs] = val
    ferr[ys, xs] = np.abs(val) * np.sqrt(err2)
    fdq[ys, xs] = dq
    return flat, ferr, fdq


# --------------------------------------------------------------------------------------------
# The gwcs face (jwst 3.0's coordinate-based NIRSpec IFU WCS)
# --------------------------------------------------------------------------------------------

def _law_models(law: Mapping[str, Any]):
    """(u(lambda), lambda(u)) as astropy models (lambda in micron, u in columns)."""
    from astropy.modeling import models as m

    if law["kind"] == "grating":
        lc, d, e = float(law["lc"]), float(law["d"]), float(law["e"])
        fwd = m.Shift(-lc) | m.Polynomial1D(2, c0=0.0, c1=1.0 / d, c2=e)
        # dl = 2u / (1/d + sqrt(1/d^2 + 4 e u))
        inv = ((m.Scale(2.0)) / ((m.Scale(4.0 * e) | m.Shift(1.0 / d ** 2))
                                 ** m.Const1D(0.5) | m.Shift(1.0 / d))) | m.Shift(lc)
        return fwd, inv
    # prism: tabulated (monotonic), exact to interpolation
    lo, hi = 0.5, 5.5
    lam = np.linspace(lo, hi, 20001)
    t = np.log(lam / law["l0"])
    u = law["a1"] * t + law["a3"] * t ** 3
    fwd = m.Tabular1D(points=lam, lookup_table=u, bounds_error=False, fill_value=np.nan)
    inv = m.Tabular1D(points=u, lookup_table=lam, bounds_error=False, fill_value=np.nan)
    return fwd, inv


def _slice_transform(params: Mapping[str, Any], s: Mapping[str, Any]):
    """detector (x, y) -> slicer (x_slice, y_slice, lam [m]) of one slice, with its inverse."""
    from astropy.modeling import models as m

    post, sl = params["post"], params["slicer"]
    law = post["law"]
    k = params["fore"]["scale"]
    beta = sl["beta0"] + s["slice"] * sl["width"]
    xoff = 0.0 if params["detector"] == "NRS1" else float(post["nrs2_x0"])
    X = m.Mapping((0,), n_inputs=2)
    Y = m.Mapping((1,), n_inputs=2)
    XF = X | m.Shift(xoff)
    bow = XF | m.Shift(-post["xmid"]) | m.Scale(1.0 / 1024.0) | m.Polynomial1D(
        2, c0=s["y0"], c1=0.0, c2=s["t2"])
    alpha = (Y - bow) | m.Scale(post["pix_along"])
    u_fwd, u_inv = _law_models(law)
    x0 = law["x0"]
    u = XF - (alpha | m.Scale(s["shear"])) | m.Shift(-x0 - s["dx"])
    lam = u | u_inv | m.Scale(1e-6)
    fwd = m.Mapping((0, 1, 0, 1, 0, 1)) | ((X | m.Const1D(k * beta)) & (alpha | m.Scale(k))
                                           & lam)
    # inverse (x_slice, y_slice, lam m) -> (x, y)
    A = m.Mapping((1,), n_inputs=3) | m.Scale(1.0 / k)
    L = m.Mapping((2,), n_inputs=3) | m.Scale(1e6)
    xf = (L | u_fwd | m.Shift(x0 + s["dx"])) + (A | m.Scale(s["shear"]))
    xv = xf | m.Shift(-xoff)
    ybow = xf | m.Shift(-post["xmid"]) | m.Scale(1.0 / 1024.0) | m.Polynomial1D(
        2, c0=s["y0"], c1=0.0, c2=s["t2"])
    yv = ybow + (A | m.Scale(1.0 / post["pix_along"]))
    fwd.inverse = m.Mapping((0, 1, 2, 0, 1, 2)) | (xv & yv)
    return fwd


def regions_array(params: Mapping[str, Any]) -> np.ndarray:
    return pixel_map(params)["label"].astype(np.int32)


def nrs_ifu_gwcs(params: Mapping[str, Any], meta: Mapping[str, Any]):
    """The exposure's gwcs in jwst 3.0's coordinate-based IFU layout."""
    from astropy import coordinates as coord
    from astropy import units as u
    from astropy.modeling import bind_bounding_box
    from astropy.modeling import models as m
    from gwcs import coordinate_frames as cf
    from gwcs import selector
    from gwcs import wcs as gw

    from transforms.wcs import pointing_model, va_model

    regions = regions_array(params)
    transforms = {}
    slice_by_x = {}
    k = params["fore"]["scale"]
    for s in params["post"]["slices"]:
        lab = int(s["slice"]) + 1
        ys, xs = np.nonzero(regions == lab)
        if ys.size == 0:
            continue
        t = _slice_transform(params, s)
        bind_bounding_box(t, ((xs.min() - 0.5, xs.max() + 0.5), (ys.min() - 0.5, ys.max() + 0.5)),
                          order="F")
        transforms[lab] = t
        beta = params["slicer"]["beta0"] + s["slice"] * params["slicer"]["width"]
        slice_by_x[round(k * beta, 5)] = m.Mapping((0,), n_inputs=3) | m.Const1D(lab)
    label_mapper = selector.LabelMapperArray(regions)
    label_mapper.inverse = selector.LabelMapperDict(
        inputs=("x_slice", "y_slice", "lam"), mapper=slice_by_x,
        inputs_mapping=m.Mapping((0,), n_inputs=3), atol=1e-4)
    det2slicer = selector.RegionsSelector(("x", "y"), ("x_slice", "y_slice", "lam"),
                                          label_mapper=label_mapper, selector=transforms,
                                          name="det2slicer")
    coord2det = m.Identity(2, name="coord2det")
    # slicer (m, m, lam m) -> v2v3 (arcsec, arcsec, lam um)
    mat, tr = ab_to_v2v3_matrix(params)
    # (x_slice, y_slice) = k (beta, alpha): (alpha, beta) = (y_slice, x_slice) / k
    aff = m.AffineTransformation2D(matrix=mat / k @ np.array([[0.0, 1.0], [1.0, 0.0]]),
                                   translation=tr)
    aff.inverse = m.AffineTransformation2D(
        matrix=np.linalg.inv(mat / k @ np.array([[0.0, 1.0], [1.0, 0.0]])),
        translation=-np.linalg.inv(mat / k @ np.array([[0.0, 1.0], [1.0, 0.0]])) @ tr)
    slicer2v23 = aff & m.Scale(1e6)
    coords = cf.Frame2D(name="coordinates", axes_order=(0, 1))
    det = cf.Frame2D(name="detector", axes_order=(0, 1))
    spec_m = cf.SpectralFrame(name="spectral", axes_order=(2,), unit=(u.m,),
                              axes_names=("wavelength",))
    slicer = cf.CompositeFrame([cf.Frame2D(name="slicer_spatial", axes_order=(0, 1),
                                           unit=(u.m, u.m), axes_names=("x_slice", "y_slice")),
                                spec_m], name="slicer")
    spec = cf.SpectralFrame(name="spectral", axes_order=(2,), unit=(u.micron,),
                            axes_names=("wavelength",))
    v23 = cf.CompositeFrame([cf.Frame2D(name="v2v3_spatial", axes_order=(0, 1),
                                        unit=(u.arcsec, u.arcsec), axes_names=("v2", "v3")),
                             spec], name="v2v3")
    v23va = cf.CompositeFrame([cf.Frame2D(name="v2v3vacorr_spatial", axes_order=(0, 1),
                                          unit=(u.arcsec, u.arcsec), axes_names=("v2", "v3")),
                               spec], name="v2v3vacorr")
    world = cf.CompositeFrame([cf.CelestialFrame(name="sky", axes_order=(0, 1),
                                                 reference_frame=coord.ICRS()), spec],
                              name="world")
    return gw.WCS([(coords, coord2det), (det, det2slicer), (slicer, slicer2v23),
                   (v23, va_model(meta) & m.Identity(1)),
                   (v23va, pointing_model(meta) & m.Identity(1)), (world, None)])


def gwcs(params: Mapping[str, Any], meta: Mapping[str, Any]):
    return nrs_ifu_gwcs(params, meta)


def reference_trees(params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The stdatamodels trees (without ``meta``) of the ifufore, ifuslicer and ifupost
    references: calops' model as astropy models in the references' fields (``model`` of
    IFUFOREModel, ``model``/``data`` of IFUSlicerModel, per-slice ``slice_<n>`` of IFUPostModel)."""
    from astropy.modeling import models as m

    mat, tr = ab_to_v2v3_matrix(params)
    fore = m.AffineTransformation2D(matrix=mat, translation=tr)
    fore.inverse = m.AffineTransformation2D(matrix=np.linalg.inv(mat),
                                            translation=-np.linalg.inv(mat) @ tr)
    sl = params["slicer"]
    data = np.array([[sl["beta0"] + k * sl["width"], 0.0, sl["width"], 2 * sl["alpha_half"]]
                     for k in range(sl["nslice"])], np.float64)
    slicer_model = m.Scale(params["fore"]["scale"]) & m.Scale(params["fore"]["scale"])
    post = {}
    for s in params["post"]["slices"]:
        post[f"slice_{int(s['slice'])}"] = {"linear": _slice_transform(params, s),
                                            "xpoly": None, "xpoly_distortion": None,
                                            "ypoly": None, "ypoly_distortion": None}
    return {"ifufore": {"model": fore},
            "ifuslicer": {"model": slicer_model, "data": data},
            "ifupost": post}
