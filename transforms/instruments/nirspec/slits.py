"""NIRSpec slit spectroscopy: the fixed slits, the MSA, the dispersers and each slit's gwcs.

One model, two faces. The numba functions here (``fpa_xy``, ``msa_y_lam``) put light on the
detector in the simulator; ``slit_gwcs(params)`` builds the same transforms as a gwcs from
astropy models (serialisable to ASDF, so a file carries it), which assign_wcs records and
every downstream step evaluates. Both read one parameter set: the content of the ``msa``
reference (slit and shutter geometry) and of the ``disperser`` reference (dispersion law and
focal-plane mapping), so a reference change moves the simulator and the pipeline together.
A test checks that the two faces agree (< 1e-6 pixel) and that the wavelength solution
round-trips (< 0.01 pixel; measured ~1e-9).

**Frames** (all angles in arcsec, wavelengths in micron):

``detector`` (pixels of a cutout, 0-based; ``origin`` gives the science-frame position of its
pixel (0, 0) on NRS1 or NRS2) -> ``slit_frame`` (wavelengths in meters up to ``v2v3``, in
micron in ``world``, as jwst's NIRSpec frames) (``x_slit`` across the slit in units of the
open width, ``y_slit`` along it in units of the open height, wavelength) -> ``msa_frame``
(the MSA plane, X along the dispersion, Y along the slits) -> ``v2v3`` -> ``world`` (ICRS
RA, Dec and wavelength).

* MSA plane -> V2/V3: ``transforms.wcs._ideal_to_v2v3`` with the ``msa`` reference's
  ``v2_ref, v3_ref, v3yangle, vparity`` (the MSA plane is the ideal frame of NRS_FULL_MSA; a
  fixed slit's ideal frame is the same shifted to the slit centre).
* V2/V3 -> sky: ``transforms.wcs.pointing_model`` of the exposure (``wcsinfo.*``), after the
  velocity-aberration scale, as for imaging.
* Slit frame -> MSA plane: ``X = Xc + w x_slit``, ``Y = Yc + h y_slit`` (``Xc, Yc`` the
  centre of the slit, or of the MOS source shutter; ``w, h`` its open width and height; for MOS
  the shutter pitch is 1.34 x 1.15 of these units, jwst's slit scales).
* MSA plane + wavelength -> focal plane (FPA pixels, the NRS1 science frame extended over NRS2):

  ``xf = x0 + u(lam) + ax X + kx Y``,
  ``yf = y0 + by Y + kyx X + c2 (xf - xmid)^2`` (the trace's curvature),

  with the dispersion law ``u(lam)`` (pixels): gratings ``u = (lam - lc)/d + e (lam - lc)^2``;
  the prism ``u = a1 s + a3 s^3``, ``s = ln(lam / l0)`` (resolving power ``R = (a1 + 3 a3 s^2)/2``
  per two pixels: ~30 at 1.2 um, ~300 at 5.3 um, ~90 at 0.6 um). Both have exact closed-form
  inverses (a quadratic root; Cardano's formula for the monotonic cubic).
* FPA -> detector: NRS1 is the FPA; NRS2 sits ``nrs2_x0`` pixels along x (2048 + the gap) and,
  as the NRS2 subarray table of ``instruments.nirspec.detector`` implies (its fixed-slit windows
  are in the reverse order of NRS1's), ``y_NRS2 = nrs2_y0 - yf``.

**Inverse** (detector -> slit frame): a pixel sees light from every point across the slit at
slightly different wavelengths; like jwst, the detector -> slit_frame transform assumes the
light entered at the slit centre across the slit (``x_slit = 0``), which makes it exact and
closed-form: ``Y = (yf - y0 - c2 (xf - xmid)^2 - kyx Xc) / by``, ``u = xf - x0 - ax Xc - kx Y``,
``lam = u^-1``. A point source off centre across the slit appears at a shifted wavelength;
wavecorr corrects that (``wavecorr_offset``).

**Geometry** (content of the ``msa`` reference): five fixed slits (S200A1/A2/B1 0.2"x3.3",
S400A1 0.4"x3.8", S1600A1 1.6"x1.6") between four MSA quadrants of 365 (along the dispersion)
x 171 shutters, pitch 0.268" x 0.529", open area 0.20" x 0.46" (bars 0.068" and 0.069"). The
fixed slits' y positions put their traces inside the NRS1 subarray windows SUBS200A1 ...
ALLSLITS of ``transforms.sim.readout`` (and NRS2's, through the y mirror). Shutter ``(i, j)``
of quadrant ``q`` (``i`` = SHUTTER_ROW 1..365 along X, ``j`` = SHUTTER_COLUMN 1..171 along Y) is
centred at ``X = Xq + (i - 0.5) px``, ``Y = Yq + (j - 0.5) py``. Simpler than NIRSpec's optics
(no OTE/FORE/collimator/camera chain, no anamorphism), but a documented gwcs pipeline with the
same frames and the same slit-frame conventions as jwst (``source_xpos/ypos`` in -0.5..0.5 of
the open aperture, ``slit_yscale`` 1.15).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

MODEL = "calops.nirspec_slit"
INSTRUMENT = "NIRSPEC"
FS_EXP_TYPES = ("NRS_FIXEDSLIT", "NRS_BRIGHTOBJ")
MOS_EXP_TYPE = "NRS_MSASPEC"
FIXED_SLIT_NUMS = {"NONE": 0, "S200A1": 1, "S200A2": 2, "S400A1": 3, "S1600A1": 4, "S200B1": 5}
NROWS_Q, NCOLS_Q = 365, 171  # shutters per quadrant along X (dispersion) and Y
SLIT_Y_LOW, SLIT_Y_HIGH = -0.55, 0.55  # jwst assign_wcs defaults (slit_y_low/high)
MOS_MARGIN = 0.5  # jwst: extra slit-frame y around a MOS slitlet (build 10.0's larger margin)
DETECTORS = ("NRS1", "NRS2")


class NirspecModelError(ValueError):
    """A slit, shutter, disperser or filter the NIRSpec model does not have."""


# --------------------------------------------------------------------------------------------
# The "msa" reference content: fixed slits and the MSA
# --------------------------------------------------------------------------------------------

# FPA scale: 10 pixels per arcsec in both directions (NIRSpec's ~0.1"/pixel).
_AX, _BY = 10.0, 10.0
_Y0 = 1024.0  # FPA row of MSA-plane Y = 0


def _fs(number: int, x: float, row_nrs1: float, width: float, height: float) -> dict[str, float]:
    return {"number": number, "x": x, "y": (row_nrs1 - _Y0) / _BY, "width": width,
            "height": height}


def msa_geometry() -> dict[str, Any]:
    """The default ``msa`` reference content (JSON-able): fixed slits, quadrants, shutters and
    where the MSA plane sits in V2/V3."""
    px, py = 0.268, 0.529
    qw, qh = NROWS_Q * px, NCOLS_Q * py
    gx, y_in = 9.4, 11.5  # gap between the quadrant pairs along X; inner edge along Y
    return {
        "v2_ref": 378.6, "v3_ref": -428.4, "v3yangle": 138.5, "vparity": -1,
        "pitch_x": px, "pitch_y": py, "open_x": 0.20, "open_y": 0.46,
        "nrows": NROWS_Q, "ncols": NCOLS_Q,
        # lower-left corner (X, Y) of shutter (1, 1) of each quadrant
        "quadrants": {"1": [-gx / 2 - qw, y_in], "2": [-gx / 2 - qw, -y_in - qh],
                      "3": [gx / 2, y_in], "4": [gx / 2, -y_in - qh]},
        # centres chosen so the traces sit in the NRS1 windows (0-based centre rows)
        "fixed_slits": {
            "S200A1": _fs(1, -2.0, 1085.5, 0.20, 3.30),
            "S200A2": _fs(2, 2.0, 1049.5, 0.20, 3.30),
            "S400A1": _fs(3, 0.0, 1009.5, 0.40, 3.80),
            "S1600A1": _fs(4, 1.0, 978.5, 1.60, 1.60),
            "S200B1": _fs(5, -5.0, 949.5, 0.20, 3.30),
        },
    }


def fixed_slit(geometry: Mapping[str, Any], name: str) -> dict[str, float]:
    """One fixed slit's centre and open size (arcsec) from the ``msa`` content."""
    try:
        return dict(geometry["fixed_slits"][str(name).upper()])
    except KeyError:
        raise NirspecModelError(f"no fixed slit {name!r}; NIRSpec has "
                                f"{', '.join(geometry['fixed_slits'])}") from None


def shutter_center(geometry: Mapping[str, Any], quadrant: int, row: int, column: int
                   ) -> tuple[float, float]:
    """MSA-plane centre (X, Y) arcsec of shutter (row 1..365 along X, column 1..171 along Y)."""
    q = geometry["quadrants"].get(str(int(quadrant)))
    if q is None or not (1 <= row <= geometry["nrows"] and 1 <= column <= geometry["ncols"]):
        raise NirspecModelError(f"no MSA shutter Q{quadrant} row {row} column {column}")
    return (q[0] + (row - 0.5) * geometry["pitch_x"], q[1] + (column - 0.5) * geometry["pitch_y"])


def shutter_at(geometry: Mapping[str, Any], x: float, y: float) -> tuple[int, int, int] | None:
    """(quadrant, row, column) of the shutter whose pitch cell contains MSA-plane (x, y)."""
    for qs, (x0, y0) in geometry["quadrants"].items():
        i = math.floor((x - x0) / geometry["pitch_x"]) + 1
        j = math.floor((y - y0) / geometry["pitch_y"]) + 1
        if 1 <= i <= geometry["nrows"] and 1 <= j <= geometry["ncols"]:
            return int(qs), int(i), int(j)
    return None


# --------------------------------------------------------------------------------------------
# The "disperser" reference content: dispersion law, focal-plane mapping, throughput
# --------------------------------------------------------------------------------------------

# (grating, filter) -> wavelength range (micron): the wavelengthrange reference content.
WAVELENGTH_RANGES = {
    ("G140M", "F100LP"): (0.97, 1.89), ("G235M", "F170LP"): (1.66, 3.17),
    ("G395M", "F290LP"): (2.87, 5.27), ("PRISM", "CLEAR"): (0.60, 5.30),
}
GRATINGS = ("G140M", "G235M", "G395M", "PRISM")


def _fpa_common() -> dict[str, float]:
    return {"ax": _AX, "by": _BY, "kx": 0.05, "kyx": -0.02, "c2": 1.0e-6, "xmid": 1100.0,
            "y0": _Y0, "nrs2_x0": 2048.0 + 152.0, "nrs2_y0": 2047.0}


def disperser_params(grating: str) -> dict[str, Any]:
    """The default ``disperser`` reference content of one grating (JSON-able)."""
    g = str(grating).upper()
    common = _fpa_common()
    if g == "PRISM":
        r0, rmax, l0, lmax = 30.0, 300.0, 1.2, 5.3
        c = (rmax - r0) / math.log(lmax / l0) ** 2
        law = {"kind": "prism", "l0": l0, "a1": 2.0 * r0, "a3": 2.0 * c / 3.0}
        x0 = 1024.0 - _u({"kind": "prism", **law}, 2.2)  # 2.2 um at x 1024 for X = 0
    else:
        table = {"G140M": (1.43, 6.36e-4), "G235M": (2.415, 1.06e-3), "G395M": (4.07, 1.79e-3)}
        if g not in table:
            raise NirspecModelError(f"no disperser {grating!r}; known: {', '.join(GRATINGS)}")
        lc, d = table[g]
        # the local dispersion grows by ~5% from the blue to the red end of the band
        law = {"kind": "grating", "lc": lc, "d": d, "e": -0.0543 / d / 1.0}
        x0 = 1024.0
    efficiency = {"G140M": (1.35, 0.45), "G235M": (2.3, 0.75), "G395M": (3.9, 1.2),
                  "PRISM": (2.5, 2.2)}[g]
    return {"grating": g, **law, "x0": x0, **common,
            "blaze": efficiency[0], "blaze_width": efficiency[1], "peak_efficiency": 0.32}


def _u(law: Mapping[str, Any], lam: float | np.ndarray) -> np.ndarray:
    lam = np.asarray(lam, np.float64)
    if law["kind"] == "prism":
        s = np.log(lam / law["l0"])
        return law["a1"] * s + law["a3"] * s ** 3
    dl = lam - law["lc"]
    return dl / law["d"] + law["e"] * dl * dl


def wavelength_range(grating: str, filt: str) -> tuple[float, float]:
    try:
        return WAVELENGTH_RANGES[(str(grating).upper(), str(filt).upper())]
    except KeyError:
        raise NirspecModelError(f"no NIRSpec configuration {grating}/{filt}; known: "
                                f"{', '.join('/'.join(k) for k in WAVELENGTH_RANGES)}") from None


def throughput(disperser: Mapping[str, Any], filt: str, lam: np.ndarray) -> np.ndarray:
    """Total system throughput (telescope, fore optics, filter, grating, detector QE) at
    ``lam``: a blaze-like Gaussian with the filter's cut-on/off as soft edges."""
    lam = np.asarray(lam, np.float64)
    lo, hi = wavelength_range(disperser["grating"], filt)
    b, bw = float(disperser["blaze"]), float(disperser["blaze_width"])
    edge = 0.01 * (hi - lo)
    t = float(disperser["peak_efficiency"]) * np.exp(-0.5 * ((lam - b) / bw) ** 2)
    t *= 1.0 / (1.0 + np.exp(-(lam - lo) / edge)) / (1.0 + np.exp((lam - hi) / edge))
    return t


# --------------------------------------------------------------------------------------------
# Packed coefficients for the numba kernels
# --------------------------------------------------------------------------------------------

# layout of the float64 vector ``cf`` every kernel takes
_K = ("kind", "p1", "p2", "p3", "x0", "ax", "by", "kx", "kyx", "c2", "xmid", "y0")
KIND_GRATING, KIND_PRISM = 0.0, 1.0


def pack(disperser: Mapping[str, Any]) -> np.ndarray:
    """The coefficient vector the kernels take (see ``_K``)."""
    if disperser["kind"] == "prism":
        head = (KIND_PRISM, disperser["l0"], disperser["a1"], disperser["a3"])
    else:
        head = (KIND_GRATING, disperser["lc"], disperser["d"], disperser["e"])
    tail = tuple(float(disperser[k]) for k in _K[4:])
    return np.array(head + tail, np.float64)


@njit(nogil=True, cache=True)
def u_of_lam(cf, lam):
    """Dispersion law: pixels along x from the disperser zero point at wavelength ``lam``."""
    if cf[0] == 1.0:
        s = math.log(lam / cf[1])
        return cf[2] * s + cf[3] * s * s * s
    dl = lam - cf[1]
    return dl / cf[2] + cf[3] * dl * dl


@njit(nogil=True, cache=True)
def lam_of_u(cf, u):
    """The exact inverse of ``u_of_lam`` (quadratic root; Cardano for the monotonic cubic)."""
    if cf[0] == 1.0:
        a1, a3 = cf[2], cf[3]
        p = a1 / a3
        q = u / a3
        disc = math.sqrt(q * q / 4.0 + p * p * p / 27.0)
        s = np.cbrt(q / 2.0 + disc) + np.cbrt(q / 2.0 - disc)
        return cf[1] * math.exp(s)
    d, e = cf[2], cf[3]
    if e == 0.0:
        return cf[1] + u * d
    # e dl^2 + dl/d - u = 0, the root continuous with dl = u d
    b = 1.0 / d
    disc = b * b + 4.0 * e * u
    if disc < 0.0:
        return math.nan
    return cf[1] + 2.0 * u / (b + math.sqrt(disc))


@njit(nogil=True, cache=True)
def fpa_xy(cf, X, Y, lam):
    """Focal-plane pixel (xf, yf) of light of wavelength ``lam`` from MSA-plane (X, Y)."""
    xf = cf[4] + u_of_lam(cf, lam) + cf[5] * X + cf[7] * Y
    yf = cf[11] + cf[6] * Y + cf[8] * X + cf[9] * (xf - cf[10]) ** 2
    return xf, yf


@njit(nogil=True, cache=True)
def msa_y_lam(cf, xf, yf, X):
    """(Y, lam) of the light at FPA pixel (xf, yf) that entered the MSA plane at X."""
    Y = (yf - cf[11] - cf[9] * (xf - cf[10]) ** 2 - cf[8] * X) / cf[6]
    u = xf - cf[4] - cf[5] * X - cf[7] * Y
    return Y, lam_of_u(cf, u)


def fpa_to_detector(xf, yf, detector: str, disperser: Mapping[str, Any]):
    """Science-frame pixel of ``detector`` for FPA pixel (xf, yf) (arrays)."""
    if str(detector).upper() == "NRS2":
        return np.asarray(xf) - disperser["nrs2_x0"], disperser["nrs2_y0"] - np.asarray(yf)
    return np.asarray(xf), np.asarray(yf)


def detector_to_fpa(x, y, detector: str, disperser: Mapping[str, Any]):
    if str(detector).upper() == "NRS2":
        return np.asarray(x) + disperser["nrs2_x0"], disperser["nrs2_y0"] - np.asarray(y)
    return np.asarray(x), np.asarray(y)


def lam_from_u(cf: np.ndarray, u: np.ndarray) -> np.ndarray:
    return _lam_from_u_arr(cf, np.ascontiguousarray(u, np.float64).ravel()).reshape(np.shape(u))


@njit(nogil=True, cache=True)
def _lam_from_u_arr(cf, u):
    out = np.empty(u.size)
    for i in range(u.size):
        out[i] = lam_of_u(cf, u[i])
    return out


# --------------------------------------------------------------------------------------------
# One slit: parameters, numpy evaluation, gwcs
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SlitGeometry:
    """One slit or MOS slitlet as assign_wcs opens it (the jwst ``Slit`` tuple, in spirit)."""

    name: str
    kind: str  # "fs" | "msa"
    xc: float  # MSA-plane centre of the slit (FS) or of its source shutter (MOS), arcsec
    yc: float
    w: float  # open width / height (slit-frame units), arcsec
    h: float
    ymin: float  # slit-frame extent along the slit
    ymax: float
    shutter_state: str = "x"
    quadrant: int = 5
    xcen: int = 0  # MOS: SHUTTER_ROW of the source shutter
    ycen: int = 0  # MOS: SHUTTER_COLUMN
    slitlet_id: int = 0
    source_id: int = 0
    source_name: str = ""
    source_alias: str = ""
    stellarity: float = 0.0
    source_xpos: float = 0.0
    source_ypos: float = 0.0
    source_ra: float = 0.0
    source_dec: float = 0.0
    open_intervals: tuple[tuple[float, float], ...] = ((-0.5, 0.5),)  # y_slit open ranges

    def meta(self) -> dict[str, Any]:
        """Per-slit metadata (the ``slit.<name>.<key>`` keys of the data model)."""
        return {"name": self.name, "slitlet_id": self.slitlet_id, "source_id": self.source_id,
                "source_name": self.source_name, "source_alias": self.source_alias,
                "stellarity": self.stellarity, "source_xpos": self.source_xpos,
                "source_ypos": self.source_ypos, "source_ra": self.source_ra,
                "source_dec": self.source_dec, "shutter_state": self.shutter_state,
                "quadrant": self.quadrant, "shutter_id": self.shutter_id,
                "slit_xscale": 1.0 if self.kind == "fs" else 1.34,
                "slit_yscale": 1.0 if self.kind == "fs" else 1.15}

    @property
    def shutter_id(self) -> int:
        if self.kind == "fs":
            return FIXED_SLIT_NUMS.get(self.name, 1) - 1
        return int(self.xcen) + (int(self.ycen) - 1) * NROWS_Q


def fs_slit(geometry: Mapping[str, Any], name: str, source_id: int = 0,
            y_range: tuple[float, float] = (SLIT_Y_LOW, SLIT_Y_HIGH), **extra: Any
            ) -> SlitGeometry:
    """A fixed slit as an open slit (quadrant 5, as jwst numbers them)."""
    fs = fixed_slit(geometry, name)
    return SlitGeometry(str(name).upper(), "fs", fs["x"], fs["y"], fs["width"], fs["height"],
                        float(y_range[0]), float(y_range[1]), "x", 5, 0, 0,
                        int(fs["number"]), int(source_id), **extra)


def mos_slitlet(geometry: Mapping[str, Any], slitlet_id: int, quadrant: int, row: int,
                columns: Sequence[int], source_column: int | None, source_id: int = 0,
                y_range: tuple[float, float] = (SLIT_Y_LOW, SLIT_Y_HIGH), **extra: Any
                ) -> SlitGeometry:
    """An MSA slitlet: open shutters ``columns`` of one row; the source shutter (jwst's
    primary, or the middle one for a background slitlet) defines the slit frame's origin.
    Its slit-frame extent is jwst's: ``y_high + margin + (jmax - j) 1.15`` and likewise below."""
    cols = sorted(int(c) for c in columns)
    if not cols:
        raise NirspecModelError(f"slitlet {slitlet_id} has no open shutter")
    j = int(source_column) if source_column is not None else cols[0] + (cols[-1] - cols[0]) // 2
    xc, yc = shutter_center(geometry, quadrant, row, j)
    py = geometry["pitch_y"]
    w, h = geometry["open_x"], geometry["open_y"]
    yscale = py / h
    ylow, yhigh = y_range
    ymax = yhigh + MOS_MARGIN + (cols[-1] - j) * yscale
    ymin = -(-ylow + MOS_MARGIN) + (cols[0] - j) * yscale
    # jwst's shutter_state: one character per shutter from the lowest column, "x" at the
    # source (or middle) shutter, "1" open, "0" closed
    state = "".join("x" if c == j else ("1" if c in cols else "0")
                    for c in range(cols[0], cols[-1] + 1))
    intervals = tuple(((c - j) * yscale - 0.5, (c - j) * yscale + 0.5) for c in cols)
    return SlitGeometry(str(slitlet_id), "msa", xc, yc, w, h, ymin, ymax, state, int(quadrant),
                        int(row), j, int(slitlet_id), int(source_id),
                        open_intervals=intervals, **extra)


def slit_params(slit: SlitGeometry, disperser: Mapping[str, Any], geometry: Mapping[str, Any],
                grating: str, filt: str, detector: str, origin: tuple[float, float],
                shape: tuple[int, int], pointing: Mapping[str, Any] | None = None
                ) -> dict[str, Any]:
    """The JSON-able parameters from which ``slit_gwcs`` rebuilds a slit's gwcs (the
    ``slit.<name>.wcs`` of a product). ``origin``: science-frame (x, y) of cutout pixel (0, 0);
    ``shape``: (ny, nx) of the cutout; ``pointing``: the exposure's ``wcsinfo.*`` and
    ``velocity_aberration.scale_factor`` (None: no sky frame)."""
    lo, hi = wavelength_range(grating, filt)
    p = {"model": MODEL, "name": slit.name, "kind": slit.kind, "xc": float(slit.xc),
         "yc": float(slit.yc), "w": float(slit.w), "h": float(slit.h),
         "ymin": float(slit.ymin), "ymax": float(slit.ymax),
         "open_intervals": [list(map(float, iv)) for iv in slit.open_intervals],
         "detector": str(detector).upper(), "origin": [float(origin[0]), float(origin[1])],
         "shape": [int(shape[0]), int(shape[1])], "lrange": [float(lo), float(hi)],
         "grating": str(grating).upper(), "filter": str(filt).upper(),
         "disperser": {k: v for k, v in disperser.items()},
         "msa": {k: geometry[k] for k in ("v2_ref", "v3_ref", "v3yangle", "vparity")}}
    if pointing:
        p["pointing"] = {k: float(v) for k, v in pointing.items() if v is not None}
    return p


def with_origin(params: Mapping[str, Any], origin: tuple[float, float], shape: tuple[int, int]
                ) -> dict[str, Any]:
    """The same slit's parameters for another cutout (extract_2d)."""
    out = dict(params)
    out["origin"] = [float(origin[0]), float(origin[1])]
    out["shape"] = [int(shape[0]), int(shape[1])]
    return out


def _fpa_of_pixels(params: Mapping[str, Any], x: np.ndarray, y: np.ndarray):
    d = params["disperser"]
    xs = np.asarray(x, np.float64) + params["origin"][0]
    ys = np.asarray(y, np.float64) + params["origin"][1]
    return detector_to_fpa(xs, ys, params["detector"], d)


@njit(nogil=True, cache=True)
def _eval_pixels(cf, xf, yf, X):
    n = xf.size
    Y = np.empty(n)
    lam = np.empty(n)
    for i in range(n):
        Y[i], lam[i] = msa_y_lam(cf, xf[i], yf[i], X)
    return Y, lam


def pixel_coords(params: Mapping[str, Any], x: np.ndarray, y: np.ndarray, masked: bool = True
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(y_slit, wavelength) at cutout pixels (x, y), assuming x_slit = 0 (jwst's convention).
    ``masked``: NaN outside the slit's [ymin, ymax] and the configuration's wavelength range
    (the product's ``wavelength`` array). ``wavecorr`` in the parameters is applied."""
    shape = np.broadcast(np.asarray(x), np.asarray(y)).shape
    xf, yf = _fpa_of_pixels(params, np.broadcast_to(x, shape), np.broadcast_to(y, shape))
    cf = pack(params["disperser"])
    Y, lam = _eval_pixels(cf, np.ascontiguousarray(xf, np.float64).ravel(),
                          np.ascontiguousarray(yf, np.float64).ravel(), float(params["xc"]))
    ys = ((Y - params["yc"]) / params["h"]).reshape(shape)
    lam = lam.reshape(shape)
    wc = params.get("wavecorr")
    if wc:
        lam = np.interp(lam, wc["lam"], wc["lam_corrected"], left=np.nan, right=np.nan)
    if masked:
        lo, hi = params["lrange"]
        bad = (ys < params["ymin"]) | (ys > params["ymax"]) | ~(lam >= lo) | ~(lam <= hi)
        lam = np.where(bad, np.nan, lam)
        ys = np.where(bad, np.nan, ys)
    return ys, lam


def wavelength_array(params: Mapping[str, Any]) -> np.ndarray:
    """The ``wavelength`` plane of a cutout (float32, NaN outside the slit)."""
    ny, nx = params["shape"]
    y, x = np.mgrid[0:ny, 0:nx]
    return pixel_coords(params, x, y)[1].astype(np.float32)


def slit_to_detector(params: Mapping[str, Any], x_slit, y_slit, lam):
    """Cutout pixel (x, y) of slit-frame (x_slit, y_slit, lam) (the exact inverse)."""
    d = params["disperser"]
    cf = pack(d)
    X = params["xc"] + params["w"] * np.asarray(x_slit, np.float64)
    Y = params["yc"] + params["h"] * np.asarray(y_slit, np.float64)
    lam = np.asarray(lam, np.float64)
    wc = params.get("wavecorr")
    if wc:  # the corrected wavelength back to the WCS's own
        lam = np.interp(lam, wc["lam_corrected"], wc["lam"])
    X, Y, lam = np.broadcast_arrays(X, Y, lam)
    xf, yf = _fpa_arrays(cf, X.ravel().copy(), Y.ravel().copy(), lam.ravel().copy())
    xd, yd = fpa_to_detector(xf, yf, params["detector"], d)
    return ((xd - params["origin"][0]).reshape(X.shape),
            (yd - params["origin"][1]).reshape(X.shape))


@njit(nogil=True, cache=True)
def _fpa_arrays(cf, X, Y, lam):
    n = X.size
    xf = np.empty(n)
    yf = np.empty(n)
    for i in range(n):
        xf[i], yf[i] = fpa_xy(cf, X[i], Y[i], lam[i])
    return xf, yf


def msa_to_v2v3(params: Mapping[str, Any], X, Y):
    from transforms.wcs import _ideal_to_v2v3

    m = params["msa"]
    return _ideal_to_v2v3(m["v2_ref"], m["v3_ref"], m["v3yangle"], int(m["vparity"]))(X, Y)


def v2v3_to_msa(params: Mapping[str, Any], v2, v3):
    from transforms.wcs import _ideal_to_v2v3

    m = params["msa"]
    return _ideal_to_v2v3(m["v2_ref"], m["v3_ref"], m["v3yangle"],
                          int(m["vparity"])).inverse(v2, v3)


def wavecorr_offset(params: Mapping[str, Any], source_xpos: float) -> float:
    """Pixel shift along x of a point source at ``source_xpos`` (slit-frame x) relative to the
    slit centre: ``ax w xpos``. jwst's wavecorr zero-point correction in pixels is its negative."""
    return float(params["disperser"]["ax"]) * float(params["w"]) * float(source_xpos)


# ---- gwcs ----------------------------------------------------------------------------------

def _pick(i: int, n: int):
    from astropy.modeling import models as m

    return m.Mapping((i,), n_inputs=n)


def _law_models(d: Mapping[str, Any]):
    """(u(lam), lam(u)) as astropy models, exact inverses of each other."""
    from astropy.modeling import math_functions as mf
    from astropy.modeling import models as m

    if d["kind"] == "prism":
        l0, a1, a3 = float(d["l0"]), float(d["a1"]), float(d["a3"])
        s = m.Scale(1.0 / l0) | mf.LogUfunc()
        u = (s | m.Scale(a1)) + (s | m.Polynomial1D(3, c3=a3))
        p, = (a1 / a3,)
        # s = cbrt(q/2 + D) + cbrt(q/2 - D), q = u/a3, D = sqrt(q^2/4 + p^3/27)
        half_q = m.Scale(0.5 / a3)
        disc = (m.Polynomial1D(2, c0=p ** 3 / 27.0, c2=1.0 / (4.0 * a3 * a3))) | mf.SqrtUfunc()
        root = ((half_q + disc) | mf.CbrtUfunc()) + ((half_q - disc) | mf.CbrtUfunc())
        lam = root | mf.ExpUfunc() | m.Scale(l0)
    else:
        lc, dd, e = float(d["lc"]), float(d["d"]), float(d["e"])
        u = m.Shift(-lc) | m.Polynomial1D(2, c1=1.0 / dd, c2=e)
        b = 1.0 / dd
        # dl = 2u / (b + sqrt(b^2 + 4 e u))
        den = m.Const1D(b) + (m.Polynomial1D(1, c0=b * b, c1=4.0 * e) | mf.SqrtUfunc())
        lam = (m.Scale(2.0) / den) | m.Shift(lc) if e != 0.0 else (m.Scale(dd) | m.Shift(lc))
    u.inverse = lam
    lam.inverse = u
    return u, lam


def slit_gwcs(params: Mapping[str, Any]):
    """The slit's gwcs, ``detector -> slit_frame -> msa_frame -> v2v3 -> world`` (without a
    pointing: ``... -> msa_frame`` only), from ``slit_params`` output. Exact inverses.
    Wavelengths are in meters in the intermediate frames and in micron in ``world``, as in
    jwst's NIRSpec WCS (its wavecorr and barshadow evaluate the slit frame)."""
    from astropy import coordinates as coord
    from astropy import units as u
    from astropy.modeling import models as m
    from gwcs import coordinate_frames as cf
    from gwcs import wcs as gw

    d = params["disperser"]
    xc, yc, w, h = (float(params[k]) for k in ("xc", "yc", "w", "h"))
    ox, oy = (float(v) for v in params["origin"])
    x0, ax, by, kx, kyx, c2, xmid, y0 = (float(d[k]) for k in
                                         ("x0", "ax", "by", "kx", "kyx", "c2", "xmid", "y0"))
    U, LAM = _law_models(d)
    nrs2 = str(params["detector"]).upper() == "NRS2"
    # cutout pixel -> FPA (xf, yf)
    if nrs2:
        to_fpa = (m.Shift(ox + float(d["nrs2_x0"])) & (m.Shift(oy) | m.Scale(-1.0)
                                                        | m.Shift(float(d["nrs2_y0"]))))
    else:
        to_fpa = m.Shift(ox) & m.Shift(oy)
    # (xf, yf) -> Y = (yf - y0 - c2 (xf - xmid)^2 - kyx xc) / by
    curv = m.Polynomial1D(2, c0=c2 * xmid * xmid, c1=-2.0 * c2 * xmid, c2=c2)
    Ymod = ((_pick(1, 2) - (_pick(0, 2) | curv)) | m.Shift(-y0 - kyx * xc) | m.Scale(1.0 / by))
    # u = xf - x0 - ax xc - kx Y
    umod = (_pick(0, 2) | m.Shift(-x0 - ax * xc)) - (Ymod | m.Scale(kx))
    # as jwst's NIRSpec frames, the slit, MSA and V2/V3 frames carry wavelengths in meters
    det2slit = (to_fpa | m.Mapping((0, 1, 0, 1, 0, 1))
                | ((_pick(0, 2) | m.Const1D(0.0)) & (Ymod | m.Shift(-yc) | m.Scale(1.0 / h))
                   & (umod | LAM | m.Scale(1e-6))))
    # inverse: (x_slit, y_slit, lam) -> X, Y -> xf, yf -> cutout pixel
    Xi = _pick(0, 3) | m.Scale(w) | m.Shift(xc)
    Yi = _pick(1, 3) | m.Scale(h) | m.Shift(yc)
    xf = (_pick(2, 3) | m.Scale(1e6) | U | m.Shift(x0)) + (Xi | m.Scale(ax)) + (Yi | m.Scale(kx))
    yf = ((Yi | m.Scale(by) | m.Shift(y0)) + (Xi | m.Scale(kyx))
          + (xf | m.Shift(-xmid) | m.Polynomial1D(2, c2=c2)))
    if nrs2:
        back = (m.Shift(-float(d["nrs2_x0"]) - ox)
                & (m.Scale(-1.0) | m.Shift(float(d["nrs2_y0"]) - oy)))
    else:
        back = m.Shift(-ox) & m.Shift(-oy)
    det2slit.inverse = m.Mapping((0, 1, 2, 0, 1, 2)) | (xf & yf) | back
    slit2msa = (m.Scale(w) | m.Shift(xc)) & (m.Scale(h) | m.Shift(yc)) & m.Identity(1)
    slit2msa.inverse = ((m.Shift(-xc) | m.Scale(1.0 / w)) & (m.Shift(-yc) | m.Scale(1.0 / h))
                        & m.Identity(1))
    wc = params.get("wavecorr")
    if wc:  # jwst's wavecorr frame: the zero-point corrected wavelength as a table
        lam_t, lam_c = (np.asarray(wc[k], np.float64) * 1e-6 for k in ("lam", "lam_corrected"))
        fwd = m.Tabular1D(points=lam_t, lookup_table=lam_c, bounds_error=False, fill_value=None)
        fwd.inverse = m.Tabular1D(points=lam_c, lookup_table=lam_t, bounds_error=False,
                                  fill_value=None)
        corr = m.Identity(2) & fwd
    det = cf.Frame2D(name="detector", axes_order=(0, 1), unit=(u.pix, u.pix))
    spec = cf.SpectralFrame(name="spectral", axes_order=(2,), unit=(u.m,),
                            axes_names=("wavelength",))
    spec_um = cf.SpectralFrame(name="spectral", axes_order=(2,), unit=(u.micron,),
                               axes_names=("wavelength",))
    slit_spatial = cf.Frame2D(name="slit_spatial", axes_order=(0, 1), unit=("", ""),
                              axes_names=("x_slit", "y_slit"))
    slit_frame = cf.CompositeFrame([slit_spatial, spec], name="slit_frame")
    msa_spatial = cf.Frame2D(name="msa_spatial", axes_order=(0, 1), unit=(u.arcsec, u.arcsec),
                             axes_names=("x_msa", "y_msa"))
    msa_frame = cf.CompositeFrame([msa_spatial, spec], name="msa_frame")
    steps: list = [(det, det2slit)]
    if wc:
        wc_frame = cf.CompositeFrame([slit_spatial, spec], name="wavecorr_frame")
        steps = [(det, det2slit), (slit_frame, corr)]
        slit_frame_out = wc_frame
    else:
        slit_frame_out = slit_frame
    pointing = params.get("pointing")
    if not pointing:
        steps += [(slit_frame_out, slit2msa), (msa_frame, None)]
        return _bounded(gw.WCS(steps), params)
    from transforms.wcs import _ideal_to_v2v3, pointing_model, va_model

    msa = params["msa"]
    idl2v = _ideal_to_v2v3(float(msa["v2_ref"]), float(msa["v3_ref"]), float(msa["v3yangle"]),
                           int(msa["vparity"]))
    meta = {k if k.startswith(("wcsinfo.", "velocity_aberration.")) else f"wcsinfo.{k}": v
            for k, v in pointing.items()}
    v2v3 = cf.CompositeFrame([cf.Frame2D(name="v2v3_spatial", axes_order=(0, 1),
                                         unit=(u.arcsec, u.arcsec), axes_names=("v2", "v3")),
                              spec], name="v2v3")
    sky = cf.CelestialFrame(name="sky", axes_order=(0, 1), reference_frame=coord.ICRS())
    world = cf.CompositeFrame([sky, spec_um], name="world")
    to_sky = (va_model(meta) | pointing_model(meta)) & m.Scale(1e6)
    steps += [(slit_frame_out, slit2msa), (msa_frame, idl2v & m.Identity(1)), (v2v3, to_sky),
              (world, None)]
    return _bounded(gw.WCS(steps), params)


def _bounded(w, params: Mapping[str, Any]):
    ny, nx = params["shape"]
    w.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))
    w.array_shape = (ny, nx)
    return w


# --------------------------------------------------------------------------------------------
# Cutouts: where each slit falls on a detector window
# --------------------------------------------------------------------------------------------

def slit_box(slit: SlitGeometry, disperser: Mapping[str, Any], grating: str, filt: str,
             detector: str, window: tuple[int, int, int, int], pad: int = 1
             ) -> tuple[int, int, int, int] | None:
    """The cutout (x0, y0, nx, ny), 0-based in the window, holding the slit's spectrum on
    ``detector`` for a window (xstart, ystart, xsize, ysize; 1-based starts as SUBSTRT):
    the region the slit's [ymin, ymax] x wavelength range covers. None if off the window."""
    lo, hi = wavelength_range(grating, filt)
    cf = pack(disperser)
    lam = np.linspace(lo, hi, 257)
    ys = np.array([slit.ymin, slit.ymax])
    L, YS = np.meshgrid(lam, ys)
    X = np.full(L.size, slit.xc)
    Y = slit.yc + slit.h * YS.ravel()
    xf, yf = _fpa_arrays(cf, X, Y, L.ravel().copy())
    xd, yd = fpa_to_detector(xf, yf, detector, disperser)
    wx0, wy0, wnx, wny = window
    xd = xd - (wx0 - 1)
    yd = yd - (wy0 - 1)
    x0 = max(int(math.floor(np.min(xd))) - pad, 0)
    x1 = min(int(math.ceil(np.max(xd))) + pad, wnx - 1)
    y0 = max(int(math.floor(np.min(yd) + 0.5)) - pad, 0)
    y1 = min(int(math.ceil(np.max(yd) - 0.5)) + pad, wny - 1)
    if x1 < x0 or y1 < y0:
        return None
    return x0, y0, x1 - x0 + 1, y1 - y0 + 1


# --------------------------------------------------------------------------------------------
# Reading the model from reference content
# --------------------------------------------------------------------------------------------

def disperser_from_ref(ref) -> dict[str, Any]:
    """The disperser parameters a ``ref.disperser`` (DisperserModel) carries."""
    d = ref.get("calops.disperser") if ref is not None else None
    if not isinstance(d, Mapping):
        raise NirspecModelError("the disperser reference carries no calops model "
                                "(calops.disperser); jwst's physical disperser model is not "
                                "supported by transforms.instruments.nirspec")
    return dict(d)


def geometry_from_ref(ref) -> dict[str, Any]:
    """The slit/MSA geometry a ``ref.msa`` (MSAModel) carries."""
    g = ref.get("calops.msa") if ref is not None else None
    if not isinstance(g, Mapping):
        raise NirspecModelError("the msa reference carries no calops geometry (calops.msa)")
    return dict(g)


def range_from_ref(ref, grating: str, filt: str) -> tuple[float, float]:
    """[lmin, lmax] (micron) of FILTER_GRATING from a ``ref.wavelengthrange``."""
    keys = [str(k).upper() for k in (ref.get("waverange_selector") or [])]
    key = f"{str(filt).upper()}_{str(grating).upper()}"
    if key not in keys:
        raise NirspecModelError(f"the wavelengthrange reference has no {key}")
    lo, hi = ref.get("wavelengthrange")[keys.index(key)][-2:]
    scale = 1e6 if float(hi) < 1e-3 else 1.0  # meters, as jwst's files
    return float(lo) * scale, float(hi) * scale
