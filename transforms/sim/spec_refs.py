"""The spectroscopic truth that references sample: flats, path losses, bar shadows, the photometric
response, and the reference models the spec2 steps read (JWST layouts, ``store.spec_references``).

**Flats** (``NirspecFlats``, ``lrs_flat``) are continuous functions of wavelength and position;
the simulator multiplies them into the light at each pixel's nominal wavelength, the references
tabulate them, and flat_field interpolates the tables back (its error is measured, not
assumed zero):

- F-flat (fore optics): fixed slits a fast variation per slit; the MSA a per-shutter factor
  linear in wavelength (a 2-plane cube per quadrant, exact under flat_field's linear
  interpolation) times a fast variation per quadrant. Its 1-D error vector is 0.3%.
- S-flat (spectrograph): fast variation per slit (FS) or one for the MSA, times a smooth
  image (FS) or a 2-plane cube (MSA).
- D-flat (detector): the detector's pixel flat (``transforms.sim.references``, the same value
  the stage-1 simulator uses) times a per-pixel linear wavelength slope (2 planes) times a
  fast variation.

Fast variations are ``1 + 0.02 sin(2 pi lam / P + phi) + 0.01 (lam - 2.5)``, ``P`` and
``phi`` drawn from the seed and the component's name, tabulated every 5 nm.

**Path loss**: ``spectra.point_transmission`` on grids of source positions (21 x 21 across a
fixed slit or shutter; 21 x 61 over a 1x3 slitlet), the uniform loss ``spectra.diffraction_loss``.
**Bar shadow**: the uniform illumination of 1 and 3 open shutters through the detector blur.
**Photom**: ``1 / response`` (NIRSpec, MJy per DN/s) or ``1 / (response x pixel solid angle)``
(MIRI LRS, MJy/sr per DN/s), with PHOTMJ the median and RELRESPONSE the shape.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms.instruments.miri import lrs as L
from transforms.instruments.nirspec import slits as N
from transforms.model import DataModel
from transforms.sim import spectra as SP

USEAFTER = "2022-01-01T00:00:00"
AUTHOR = "calops simulator"
PEDIGREE = "INFLIGHT 2023-01-01 2023-12-31"
FAST_STEP = 0.005  # micron, fast-variation tables
FAST_GRID = np.round(np.arange(0.55, 15.0 + FAST_STEP / 2, FAST_STEP), 6)
LAM_C = 2.5
FFLAT_ERROR = 0.003


ASDF_MODEL_TYPES = ("DisperserModel", "MSAModel", "WavelengthrangeModel", "WaveCorrModel")


def file_suffix(model: DataModel) -> str:
    """The extension a reference of this kind is written with (JWST's formats: ASDF for the
    NIRSpec WCS models and distortion, JSON for msaoper/extract1d, FITS otherwise)."""
    if model.kind in ("ref.msaoper", "ref.extract1d"):
        return ".json"
    if model.get("model_type") in ASDF_MODEL_TYPES or model.kind == "ref.distortion":
        return ".asdf"
    return ".fits"


def _rng(seed: int, *parts: Any) -> np.random.Generator:
    return np.random.default_rng([int(seed)] + [zlib.crc32(str(p).encode()) for p in parts])


def fast_variation(seed: int, tag: str, lam) -> np.ndarray:
    r = _rng(seed, "fast", tag)
    period = r.uniform(0.4, 0.9)
    phi = r.uniform(0.0, 2 * math.pi)
    lam = np.asarray(lam, np.float64)
    return 1.0 + 0.02 * np.sin(2 * math.pi * lam / period + phi) + 0.01 * (lam - LAM_C)


def _smooth2d(seed: int, tag: str, x, y, amp: float = 0.02) -> np.ndarray:
    """A smooth field ~1 +- amp over the 2048-pixel detector (or MSA shutter indices)."""
    r = _rng(seed, "smooth", tag)
    a, b, c, d, p1, p2 = r.uniform(-1, 1, 6)
    x = np.asarray(x, np.float64) / 2048.0
    y = np.asarray(y, np.float64) / 2048.0
    return 1.0 + amp * (0.5 * a * x + 0.5 * b * y + c * np.cos(2 * math.pi * (x + p1))
                        * np.cos(2 * math.pi * (y + p2)) * 0.5 + 0.25 * d * x * y)


@dataclass(frozen=True)
class NirspecFlats:
    """The true NIRSpec flat-field components (continuous)."""

    seed: int
    # detector -> (pixel flat over a window, its 0-based x and y origin)
    detector_flat: Mapping[str, tuple[np.ndarray, int, int]] | None = None

    def fflat_fs(self, slit: str, filt: str, lam) -> np.ndarray:
        return fast_variation(self.seed, f"F-{slit}-{filt}", lam)

    def fflat_mos_fast(self, quadrant: int, filt: str, lam) -> np.ndarray:
        return fast_variation(self.seed, f"F-Q{quadrant}-{filt}", lam)

    def fflat_mos_image(self, quadrant: int, filt: str, row, col, lam) -> np.ndarray:
        g = _smooth2d(self.seed, f"FQ{quadrant}-{filt}", np.asarray(row) * 5.6,
                      np.asarray(col) * 12.0, 0.03)
        s = 0.01 * (_smooth2d(self.seed, f"FQs{quadrant}-{filt}", np.asarray(row) * 5.6,
                              np.asarray(col) * 12.0, 1.0) - 1.0)
        return g * (1.0 + s * (np.asarray(lam, np.float64) - LAM_C))

    def fflat_mos(self, quadrant: int, filt: str, row, col, lam) -> np.ndarray:
        return (self.fflat_mos_image(quadrant, filt, row, col, lam)
                * self.fflat_mos_fast(quadrant, filt, lam))

    def sflat_fast(self, detector: str, grating: str, filt: str, key: str, lam) -> np.ndarray:
        return fast_variation(self.seed, f"S-{detector}-{grating}-{filt}-{key}", lam)

    def sflat_image(self, detector: str, grating: str, filt: str, x, y, lam=None,
                    mos: bool = False) -> np.ndarray:
        img = _smooth2d(self.seed, f"S-{detector}-{grating}-{filt}", x, y, 0.02)
        if not mos:
            return img
        s = 0.01 * (_smooth2d(self.seed, f"Ss-{detector}-{grating}-{filt}", x, y, 1.0) - 1.0)
        return img * (1.0 + s * (np.asarray(lam, np.float64) - LAM_C))

    def sflat(self, detector, grating, filt, key, x, y, lam, mos: bool) -> np.ndarray:
        return (self.sflat_image(detector, grating, filt, x, y, lam, mos)
                * self.sflat_fast(detector, grating, filt, "ANY" if mos else key, lam))

    def dflat_pixel(self, detector: str, x, y) -> np.ndarray:
        return window_value((self.detector_flat or {}).get(detector), x, y)

    def dflat_slope(self, detector: str, x, y) -> np.ndarray:
        return 0.008 * (_smooth2d(self.seed, f"Ds-{detector}", x, y, 1.0) - 1.0)

    def dflat_fast(self, detector: str, lam) -> np.ndarray:
        return fast_variation(self.seed, f"D-{detector}", lam)

    def dflat(self, detector: str, x, y, lam) -> np.ndarray:
        lam = np.asarray(lam, np.float64)
        return (self.dflat_pixel(detector, x, y)
                * (1.0 + self.dflat_slope(detector, x, y) * (lam - LAM_C))
                * self.dflat_fast(detector, lam))


def window_value(win: tuple[np.ndarray, int, int] | None, x, y) -> np.ndarray:
    """Values of a windowed per-pixel array at full-frame pixels (x, y); 1 outside it."""
    shape = np.broadcast(np.asarray(x), np.asarray(y)).shape
    if win is None:
        return np.ones(shape)
    a, x0, y0 = win
    xi = np.asarray(x).astype(np.int64) - x0
    yi = np.asarray(y).astype(np.int64) - y0
    inside = (xi >= 0) & (yi >= 0) & (xi < a.shape[1]) & (yi < a.shape[0])
    out = np.ones(shape)
    out[inside] = a[yi[inside], xi[inside]]
    return out


def lrs_flat(seed: int, x, y, detector_flat: tuple[np.ndarray, int, int] | None = None
             ) -> np.ndarray:
    """The MIRI LRS flat (full-frame pixel coordinates): pixel flat times illumination."""
    f = _smooth2d(seed, "LRS-flat", np.asarray(x) * 2.0, np.asarray(y) * 2.0, 0.02)
    return f * window_value(detector_flat, x, y)


# --------------------------------------------------------------------------------------------
# Photometric response
# --------------------------------------------------------------------------------------------

def nirspec_response(disperser: Mapping[str, Any], filt: str, lam, gain: float) -> np.ndarray:
    """DN/s per pixel column for 1 MJy at ``lam`` (the point-source response, no slit loss)."""
    cf = N.pack(disperser)
    lam = np.asarray(lam, np.float64)
    u = np.array([N.u_of_lam(cf, float(v)) for v in lam.ravel()]).reshape(lam.shape)
    dl = (N.lam_from_u(cf, u + 0.5) - N.lam_from_u(cf, u - 0.5))
    return SP.response(N.throughput(disperser, filt, lam), lam, dl, gain)


def lrs_throughput(lam) -> np.ndarray:
    lam = np.asarray(lam, np.float64)
    t = 0.35 * np.exp(-0.5 * ((lam - 8.0) / 3.5) ** 2)
    return t / (1.0 + np.exp(-(lam - 4.6) / 0.1)) / (1.0 + np.exp((lam - 13.8) / 0.15))


def lrs_response(params: Mapping[str, Any], lam, gain: float) -> np.ndarray:
    lam = np.asarray(lam, np.float64)
    y = L.row_of_lam(params, lam)
    dl = L.lam_of_row(params, y - 0.5) - L.lam_of_row(params, y + 0.5)
    return SP.response(lrs_throughput(lam), lam, dl, gain)


# --------------------------------------------------------------------------------------------
# Reference models
# --------------------------------------------------------------------------------------------

# references serving both slit modes: one EXP_TYPE and the P_EXP_TY pattern (as CRDS files)
_BOTH = {"exposure.type": "NRS_FIXEDSLIT", "exposure.p_exptype": "NRS_FIXEDSLIT|NRS_MSASPEC|"}


def _meta(reftype: str, model_type: str, instrument: str, description: str,
          **extra: Any) -> dict[str, Any]:
    m = {"reftype": reftype.upper(), "model_type": model_type, "telescope": "JWST",
         "instrument.name": instrument, "useafter": USEAFTER, "pedigree": PEDIGREE,
         "author": AUTHOR, "description": description}
    m.update({k: v for k, v in extra.items() if v is not None})
    return m


def _pad(rows: Sequence[np.ndarray], n: int, fill: float = 0.0) -> np.ndarray:
    out = np.full((len(rows), n), fill, np.float32)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def _fast_table(prefix: str, names: Sequence[str], lams: Sequence[np.ndarray],
                vals: Sequence[np.ndarray], errs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    n = max(len(v) for v in lams)
    return {f"{prefix}.slit_name": np.array(list(names)),
            f"{prefix}.nelem": np.array([len(v) for v in lams], np.int32),
            f"{prefix}.wavelength": _pad(lams, n), f"{prefix}.data": _pad(vals, n),
            f"{prefix}.error": _pad(errs, n)}


def _grid(lo: float, hi: float) -> np.ndarray:
    g = FAST_GRID[(FAST_GRID >= lo - 0.05) & (FAST_GRID <= hi + 0.05)]
    return g


def _window_meta(window: tuple[int, int, int, int] | None) -> dict[str, Any]:
    if window is None:
        return {}
    x0, y0, nx, ny = window
    return {"subarray.name": "GENERIC" if (nx, ny) != (2048, 2048) else "FULL",
            "subarray.xstart": int(x0), "subarray.ystart": int(y0),
            "subarray.xsize": int(nx), "subarray.ysize": int(ny)}


def nirspec_fflat(flats: NirspecFlats, grating: str, filt: str, exp_type: str) -> DataModel:
    """FFLAT: NirspecFlatModel (fixed slits: a fast variation per slit) or NirspecQuadFlatModel
    (MSA: per quadrant a 2-plane cube over the shutters and a fast variation)."""
    lo, hi = N.wavelength_range(grating, filt)
    lam = _grid(lo, hi)
    if exp_type == "NRS_MSASPEC":
        arrays: dict[str, np.ndarray] = {}
        planes = np.array([lo, hi], np.float64)
        rows, cols = np.meshgrid(np.arange(1, N.NROWS_Q + 1), np.arange(1, N.NCOLS_Q + 1))
        for q in range(4):
            cube = np.stack([flats.fflat_mos_image(q + 1, filt, rows, cols, p) for p in planes])
            pre = f"quadrants.{q}"
            arrays[f"{pre}.data"] = cube.astype(np.float32)
            arrays[f"{pre}.dq"] = np.zeros(cube.shape, np.uint32)
            arrays[f"{pre}.err"] = np.full(cube.shape, FFLAT_ERROR, np.float32)
            arrays[f"{pre}.wavelength.wavelength"] = planes.astype(np.float32)
            arrays.update(_fast_table(f"{pre}.flat_table", ["ANY"], [lam],
                                      [flats.fflat_mos_fast(q + 1, filt, lam)],
                                      [np.full(lam.size, FFLAT_ERROR)]))
        return DataModel("ref.fflat", arrays, _meta(
            "fflat", "NirspecQuadFlatModel", "NIRSPEC", "NIRSpec MOS F-flat (simulated)",
            **{"instrument.grating": grating, "instrument.filter": filt,
               "exposure.type": exp_type}))
    names = list(N.msa_geometry()["fixed_slits"])
    arrays = _fast_table("flat_table", names, [lam] * len(names),
                         [flats.fflat_fs(s, filt, lam) for s in names],
                         [np.full(lam.size, FFLAT_ERROR)] * len(names))
    return DataModel("ref.fflat", arrays, _meta(
        "fflat", "NirspecFlatModel", "NIRSPEC", "NIRSpec FS F-flat (simulated)",
        **{"instrument.grating": grating, "instrument.filter": filt,
           "exposure.type": exp_type}))


def nirspec_sflat(flats: NirspecFlats, detector: str, grating: str, filt: str, exp_type: str,
                  window: tuple[int, int, int, int]) -> DataModel:
    """SFLAT (NirspecFlatModel) over a window (x0, y0, nx, ny; 1-based starts)."""
    lo, hi = N.wavelength_range(grating, filt)
    lam = _grid(lo, hi)
    x0, y0, nx, ny = window
    y, x = np.mgrid[y0 - 1:y0 - 1 + ny, x0 - 1:x0 - 1 + nx]
    mos = exp_type == "NRS_MSASPEC"
    if mos:
        planes = np.array([lo, hi])
        data = np.stack([flats.sflat_image(detector, grating, filt, x, y, p, True)
                         for p in planes]).astype(np.float32)
        # jwst reads an MSA S-flat's DQ and ERR as cubes like its SCI
        arrays = {"data": data, "dq": np.zeros(data.shape, np.uint32),
                  "err": np.full(data.shape, 0.001, np.float32),
                  "wavelength.wavelength": planes.astype(np.float32)}
        arrays.update(_fast_table("flat_table", ["ANY"], [lam],
                                  [flats.sflat_fast(detector, grating, filt, "ANY", lam)],
                                  [np.zeros(lam.size)]))
    else:
        names = list(N.msa_geometry()["fixed_slits"])
        arrays = {"data": flats.sflat_image(detector, grating, filt, x, y).astype(np.float32),
                  "dq": np.zeros((ny, nx), np.uint32),
                  "err": np.full((ny, nx), 0.001, np.float32)}
        arrays.update(_fast_table("flat_table", names, [lam] * len(names),
                                  [flats.sflat_fast(detector, grating, filt, s, lam)
                                   for s in names], [np.zeros(lam.size)] * len(names)))
    return DataModel("ref.sflat", arrays, _meta(
        "sflat", "NirspecFlatModel", "NIRSPEC", "NIRSpec S-flat (simulated)",
        **{"instrument.detector": detector, "instrument.grating": grating,
           "instrument.filter": filt, "exposure.type": exp_type}, **_window_meta(window)))


def nirspec_dflat(flats: NirspecFlats, detector: str, window: tuple[int, int, int, int],
                  lrange: tuple[float, float] = (0.6, 5.3)) -> DataModel:
    """DFLAT (NirspecFlatModel): 2 wavelength planes over a window and a fast variation."""
    lam = _grid(*lrange)
    x0, y0, nx, ny = window
    y, x = np.mgrid[y0 - 1:y0 - 1 + ny, x0 - 1:x0 - 1 + nx]
    planes = np.array(lrange, np.float64)
    pix = flats.dflat_pixel(detector, x, y)
    slope = flats.dflat_slope(detector, x, y)
    data = np.stack([pix * (1.0 + slope * (p - LAM_C)) for p in planes]).astype(np.float32)
    arrays = {"data": data, "dq": np.zeros((ny, nx), np.uint32),
              "err": np.full((ny, nx), 0.001, np.float32),
              "wavelength.wavelength": planes.astype(np.float32)}
    arrays.update(_fast_table("flat_table", ["ANY"], [lam], [flats.dflat_fast(detector, lam)],
                              [np.zeros(lam.size)]))
    return DataModel("ref.dflat", arrays, _meta(
        "dflat", "NirspecFlatModel", "NIRSPEC", "NIRSpec D-flat (simulated)",
        **{"instrument.detector": detector, **_BOTH},
        **_window_meta(window)))


def nirspec_photom(exp_type: str, configs: Sequence[tuple[str, str]], gain: float,
                   nelem: int = 600) -> DataModel:
    """PHOTOM (NrsFsPhotomModel / NrsMosPhotomModel): PHOTMJ x RELRESPONSE(lam) = 1/response."""
    fs = exp_type == "NRS_FIXEDSLIT"
    rows = []
    for grating, filt in configs:
        d = N.disperser_params(grating)
        lo, hi = N.wavelength_range(grating, filt)
        lam = np.linspace(lo - 0.02, hi + 0.02, nelem)
        conv = 1.0 / nirspec_response(d, filt, lam, gain)
        photmj = float(np.median(conv))
        for slit in (list(N.msa_geometry()["fixed_slits"]) if fs else [None]):
            rows.append((filt, grating, slit, photmj, lam, conv / photmj))
    arrays = {"phot_table.filter": np.array([r[0] for r in rows]),
              "phot_table.grating": np.array([r[1] for r in rows]),
              "phot_table.photmj": np.array([r[3] for r in rows], np.float32),
              "phot_table.uncertainty": np.array([0.02 * r[3] for r in rows], np.float32),
              "phot_table.nelem": np.array([len(r[4]) for r in rows], np.int16),
              "phot_table.wavelength": _pad([r[4] for r in rows], nelem),
              "phot_table.relresponse": _pad([r[5] for r in rows], nelem),
              "phot_table.reluncertainty": _pad([0.01 * r[5] for r in rows], nelem)}
    if fs:
        arrays["phot_table.slit"] = np.array([r[2] for r in rows])
    return DataModel("ref.photom", arrays, _meta(
        "photom", "NrsFsPhotomModel" if fs else "NrsMosPhotomModel", "NIRSPEC",
        f"NIRSpec {'FS' if fs else 'MOS'} photometric response (simulated)",
        **{"exposure.type": exp_type}))


def nirspec_area(exp_type: str) -> DataModel:
    """AREA (NirspecSlitAreaModel / NirspecMosAreaModel): the solid angle of a pixel within an
    aperture, open width x the pixel height along the slit (arcsec^2)."""
    g = N.msa_geometry()
    by = N.disperser_params("G140M")["by"]
    if exp_type == "NRS_MSASPEC":
        q, r, c = np.meshgrid(np.arange(1, 5), np.arange(1, N.NROWS_Q + 1),
                              np.arange(1, N.NCOLS_Q + 1), indexing="ij")
        arrays = {"area_table.quadrant": q.ravel().astype(np.int16),
                  "area_table.shutter_x": r.ravel().astype(np.int16),
                  "area_table.shutter_y": c.ravel().astype(np.int16),
                  "area_table.pixarea": np.full(q.size, g["open_x"] / by, np.float32)}
        mt = "NirspecMosAreaModel"
    else:
        names = list(g["fixed_slits"])
        arrays = {"area_table.slit_id": np.array(names),
                  "area_table.pixarea": np.array([g["fixed_slits"][s]["width"] / by
                                                  for s in names], np.float32)}
        mt = "NirspecSlitAreaModel"
    return DataModel("ref.area", arrays, _meta("area", mt, "NIRSPEC",
                                               "NIRSpec pixel solid angle per aperture",
                                               **{"exposure.type": exp_type}))


def _ps_grid(instrument: str, lam: np.ndarray, width: float, ivals: Sequence, xs: np.ndarray,
             ys: np.ndarray, w_units: float, h_units: float) -> np.ndarray:
    """Point-source transmission (nlam, ny, nx) at slit-frame positions xs (across, units of
    ``w_units`` arcsec) and ys (along, units of ``h_units``)."""
    out = np.empty((lam.size, ys.size, xs.size), np.float32)
    for j, yv in enumerate(ys):
        for i, xv in enumerate(xs):
            out[:, j, i] = SP.point_transmission(instrument, lam, xv * w_units, yv * h_units,
                                                 width, ivals)
    return out


def nirspec_pathloss(exp_type: str, nlam: int = 120) -> DataModel:
    """PATHLOSS (PathlossModel): per aperture the point-source transmission on a grid of
    positions (wavelengths in meters, as jwst reads them) and the uniform transmission."""
    g = N.msa_geometry()
    lam = np.linspace(0.55, 5.35, nlam)
    arrays: dict[str, np.ndarray] = {}
    meta = _meta("pathloss", "PathlossModel", "NIRSPEC", "NIRSpec path loss (simulated)",
                 **{"exposure.type": exp_type})
    if exp_type == "NRS_MSASPEC":
        w, h, py = g["open_x"], g["open_y"], g["pitch_y"] / g["open_y"]
        aps = [("MOS1X1", 1, np.linspace(-0.5, 0.5, 21), [(-0.5 * h, 0.5 * h)]),
               ("MOS1X3", 3, np.linspace(-1.5, 1.5, 61),
                [((c * py - 0.5) * h, (c * py + 0.5) * h) for c in (-1, 0, 1)])]
    else:
        aps = []
        for name, fs in g["fixed_slits"].items():
            aps.append((name, 1, np.linspace(-0.5, 0.5, 21),
                        [(-0.5 * fs["height"], 0.5 * fs["height"])]))
    xs = np.linspace(-0.5, 0.5, 21)
    for i, (name, nsh, ys, ivals) in enumerate(aps):
        if exp_type == "NRS_MSASPEC":
            w, h = g["open_x"], g["open_y"]
        else:
            w, h = g["fixed_slits"][name]["width"], g["fixed_slits"][name]["height"]
        pre = f"apertures.{i}"
        arrays[f"{pre}.pointsource_data"] = _ps_grid("NIRSPEC", lam, w, ivals, xs, ys, w, h)
        arrays[f"{pre}.pointsource_err"] = np.zeros_like(arrays[f"{pre}.pointsource_data"])
        arrays[f"{pre}.uniform_data"] = SP.diffraction_loss("NIRSPEC", lam, w).astype(np.float32)
        arrays[f"{pre}.uniform_err"] = np.zeros(lam.size, np.float32)
        meta.update({f"{pre}.name": name, f"{pre}.shutters": nsh,
                     f"{pre}.pointsource_wcs.crpix1": 1.0, f"{pre}.pointsource_wcs.crval1": -0.5,
                     f"{pre}.pointsource_wcs.cdelt1": float(xs[1] - xs[0]),
                     f"{pre}.pointsource_wcs.crpix2": 1.0,
                     f"{pre}.pointsource_wcs.crval2": float(ys[0]),
                     f"{pre}.pointsource_wcs.cdelt2": float(ys[1] - ys[0]),
                     f"{pre}.pointsource_wcs.crpix3": 1.0,
                     f"{pre}.pointsource_wcs.crval3": float(lam[0] * 1e-6),
                     f"{pre}.pointsource_wcs.cdelt3": float((lam[1] - lam[0]) * 1e-6),
                     f"{pre}.uniform_wcs.crpix1": 1.0,
                     f"{pre}.uniform_wcs.crval1": float(lam[0] * 1e-6),
                     f"{pre}.uniform_wcs.cdelt1": float((lam[1] - lam[0]) * 1e-6)})
    return DataModel("ref.pathloss", arrays, meta)


def lrs_pathloss(params: Mapping[str, Any], nlam: int = 60) -> DataModel:
    """PATHLOSS (MirLrsPathlossModel): multiplicative corrections 1/transmission on a grid of
    target offsets from the slit reference pixel (columns along the slit, rows across it),
    rows of decreasing wavelength as the real file."""
    ps, wid, ln = params["pscale"], params["width"], params["length"]
    lam = np.linspace(14.0, 4.0, nlam)
    dx = np.arange(-24.0, 24.5, 1.0)  # pixels along the slit (detector x)
    dy = np.arange(-3.0, 3.01, 0.25)  # pixels across the slit (detector y)
    grid = np.empty((lam.size, dy.size, dx.size), np.float32)
    for j, yv in enumerate(dy):
        for i, xv in enumerate(dx):
            t = SP.point_transmission("MIRI", lam, yv * ps, xv * ps, wid,
                                      [(-0.5 * ln, 0.5 * ln)])
            grid[:, j, i] = 1.0 / np.maximum(t, 1e-3)
    arrays = {"pathloss_table.wavelength": lam.astype(np.float32),
              "pathloss_table.pathloss": grid,
              "pathloss_table.pathloss_err": np.zeros_like(grid)}
    meta = _meta("pathloss", "MirLrsPathlossModel", "MIRI", "MIRI LRS path loss (simulated)",
                 **{"exposure.type": "MIR_LRS-FIXEDSLIT", "instrument.detector": "MIRIMAGE",
                    "wcsinfo.crpix1": 1.0, "wcsinfo.crval1": float(dx[0]),
                    "wcsinfo.cdelt1": 1.0, "wcsinfo.crpix2": 1.0, "wcsinfo.crval2": float(dy[0]),
                    "wcsinfo.cdelt2": 0.25, "wcsinfo.ctype1": "PIXEL",
                    "wcsinfo.ctype2": "PIXEL"})
    return DataModel("ref.pathloss", arrays, meta)


def bar_shadow_profile(y_pitch, lam, open_shutters: Sequence[int], blur_pix: float,
                       geometry: Mapping[str, Any] | None = None) -> np.ndarray:
    """What a detector pixel centred at ``y_pitch`` (shutter pitches from the reference
    shutter's centre) records of a uniform source through shutters ``open_shutters`` (pitch
    offsets): the open intervals blurred by the detector blur and integrated over the pixel
    (1 where nothing shadows), as the simulator renders it."""
    g = geometry or N.msa_geometry()
    by = N.disperser_params("G140M")["by"]
    ppx = by * g["pitch_y"]  # pixels per pitch
    half = 0.5 * g["open_y"] / g["pitch_y"] * ppx
    y = np.asarray(y_pitch, np.float64) * ppx
    s = float(blur_pix)

    def G(t):
        from scipy.special import ndtr

        z = t / s
        return s * (z * ndtr(z) + np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi))

    prof = np.zeros(np.broadcast(y, np.asarray(lam)).shape)
    for c in open_shutters:
        a, b = c * ppx - half, c * ppx + half
        prof = prof + (G(y + 0.5 - a) - G(y - 0.5 - a)) - (G(y + 0.5 - b) - G(y - 0.5 - b))
    return prof


def nirspec_barshadow() -> DataModel:
    """BARSHADOW (BarshadowModel): data1x1 and data1x3, 1001 rows over -1..+1 pitch and 101
    wavelength columns (CRVAL1/CDELT1 in meters, as the slit frame; CDELT2 = 1/500 pitch per
    row)."""
    y = (np.arange(1001) - 500) / 500.0
    lam = 0.6 + np.arange(101) * 0.047
    Y, Lm = np.meshgrid(y, lam, indexing="ij")
    blur = float(SP.BLUR_PIXELS["NIRSPEC"])
    d11 = bar_shadow_profile(Y, Lm, (0,), blur).astype(np.float32)
    d13 = bar_shadow_profile(Y, Lm, (-1, 0, 1), blur).astype(np.float32)
    arrays = {"data1x1": d11, "var1x1": np.zeros_like(d11), "data1x3": d13,
              "var1x3": np.zeros_like(d13)}
    meta = _meta("barshadow", "BarshadowModel", "NIRSPEC", "NIRSpec bar shadow (simulated)",
                 **{"exposure.type": "NRS_MSASPEC", "crval1": 0.6e-6, "cdelt1": 0.047e-6,
                    "crval2": -1.0, "cdelt2": 1.0 / 500.0})
    return DataModel("ref.barshadow", arrays, meta)


def nirspec_wavecorr() -> DataModel:
    """WAVECORR (WaveCorrModel): per fixed slit and for the MOS, the zero-point offset in
    pixels vs (wavelength [m], source position in the aperture) that moves a point source back
    to the slit centre's wavelength scale: ``-ax w xpos``."""
    g = N.msa_geometry()
    ax = N.disperser_params("G140M")["ax"]
    aps = {name: fs["width"] for name, fs in g["fixed_slits"].items()}
    aps["MOS"] = g["open_x"]
    tabs = {}
    for name, w in aps.items():
        tabs[name] = {"lam_m": [0.5e-6, 15.0e-6], "xpos": [-0.5, 0.5],
                      "offset": [[ax * w * 0.5, -ax * w * 0.5]] * 2, "width": float(w)}
    return DataModel("ref.wavecorr", {}, _meta(
        "wavecorr", "WaveCorrModel", "NIRSPEC", "NIRSpec wavelength zero-point (simulated)",
        **{**_BOTH, "calops.wavecorr": tabs}))


def nirspec_disperser(grating: str) -> DataModel:
    """DISPERSER (DisperserModel, ASDF): jwst's fields with nominal values (calops' model does
    not use them) and the calops disperser parameters under ``calops.disperser``."""
    d = N.disperser_params(grating)
    g = str(grating).upper()
    groove = 0.0 if g == "PRISM" else 1.0e-3 / (d["d"] * 1e-6 * 1e3)
    meta = _meta("disperser", "DisperserModel", "NIRSPEC", f"NIRSpec {g} disperser (calops model)",
                 **{"instrument.grating": g, **_BOTH,
                    "groovedensity": float(groove), "theta_x": 0.0, "theta_y": 0.0,
                    "theta_z": 0.0, "tilt_x": 0.0, "tilt_y": 0.0, "angle": 0.0,
                    "calops.disperser": d})
    return DataModel("ref.disperser", {}, meta)


def nirspec_msa() -> DataModel:
    """MSA (MSAModel, ASDF): the slit and shutter geometry under ``calops.msa``."""
    return DataModel("ref.msa", {}, _meta(
        "msa", "MSAModel", "NIRSPEC", "NIRSpec MSA and fixed-slit geometry (calops model)",
        **{**_BOTH, "calops.msa": N.msa_geometry()}))


def nirspec_wavelengthrange() -> DataModel:
    """WAVELENGTHRANGE (WavelengthrangeModel, ASDF): [lmin, lmax] in meters per FILTER_GRATING."""
    keys = [f"{f}_{g}" for g, f in N.WAVELENGTH_RANGES]
    ranges = [[lo * 1e-6, hi * 1e-6] for lo, hi in N.WAVELENGTH_RANGES.values()]
    return DataModel("ref.wavelengthrange", {}, _meta(
        "wavelengthrange", "WavelengthrangeModel", "NIRSPEC", "NIRSpec wavelength ranges",
        **{**_BOTH, "waverange_selector": keys,
           "wavelengthrange": ranges, "order": [-1] * len(keys),
           "wavelength_units": "m"}))


def nirspec_msaoper(failed_open: Sequence[tuple[int, int, int]],
                    failed_closed: Sequence[tuple[int, int, int]] = ()) -> DataModel:
    """MSAOPER (JSON): failed-open and failed-closed shutters (Q, x = row, y = column)."""
    rows = [{"Q": q, "x": x, "y": y, "state": "open", "Internal state": "open",
             "TA state": "open", "Dead": "no"} for q, x, y in failed_open]
    rows += [{"Q": q, "x": x, "y": y, "state": "closed", "Internal state": "closed",
              "TA state": "closed", "Dead": "yes"} for q, x, y in failed_closed]
    return DataModel("ref.msaoper", {}, _meta(
        "msaoper", "", "NIRSPEC", "NIRSpec MSA operability (simulated)",
        **{"exposure.type": "NRS_MSASPEC", "msaoper": rows}))


def extract1d(exp_type: str) -> DataModel:
    """EXTRACT1D (JSON apertures): a box on the planned source position, wide enough for the
    PSF halo (calops has no apcorr reference)."""
    if exp_type.startswith("MIR_LRS"):
        aps = [{"id": "MIR_LRS-FIXEDSLIT", "region_type": "target", "disp_axis": 2,
                "extract_width": 11, "use_source_posn": True}]
        inst = "MIRI"
    else:
        aps = [{"id": "ANY", "region_type": "target", "disp_axis": 1, "extract_width": 11,
                "use_source_posn": True, "bkg_order": 0}]
        inst = "NIRSPEC"
    return DataModel("ref.extract1d", {}, _meta(
        "extract1d", "", inst, "extraction apertures (simulated)",
        **{"exposure.type": exp_type, "apertures": aps}))


def lrs_specwcs(table: Mapping[str, np.ndarray] | None = None, distortion=None) -> DataModel:
    """SPECWCS (MiriLRSSpecwcsModel): reference pixels, slit corners in V2/V3, WAVETABLE."""
    tab = table or L.default_wavetable()
    arrays = {f"wavetable.{k}": np.asarray(v, np.float64) for k, v in tab.items()}
    meta = _meta("specwcs", "MiriLRSSpecwcsModel", "MIRI", "MIRI LRS wavelength table (simulated)",
                 **{"instrument.detector": "MIRIMAGE", "instrument.filter": L.FILTER,
                    "exposure.type": "MIR_LRS-FIXEDSLIT", "x_ref": L.IMX, "y_ref": L.IMY,
                    "x_ref_slitless": L.IMX_SLITLESS, "y_ref_slitless": L.IMY_SLITLESS,
                    "subarray.name": "FULL"})
    if distortion is not None:
        spec = {"x_ref": L.IMX, "y_ref": L.IMY, "x_ref_slitless": L.IMX_SLITLESS,
                "y_ref_slitless": L.IMY_SLITLESS, "wavetable": tab}
        p = L.lrs_params(spec, distortion, "MIR_LRS-FIXEDSLIT", {"xstart": 1, "ystart": 1},
                         (1024, 1032))
        v2, v3 = L.slit_vertices_v2v3(p)
        meta.update({f"v2_vert{i + 1}": v2[i] for i in range(4)})
        meta.update({f"v3_vert{i + 1}": v3[i] for i in range(4)})
    return DataModel("ref.specwcs", arrays, meta)


def lrs_photom(params: Mapping[str, Any], gain: float, pixar_sr: float,
               subarrays: Sequence[str] = ("FULL", "SLITLESSPRISM"), nelem: int = 400
               ) -> DataModel:
    """PHOTOM (MirLrsPhotomModel): PHOTMJSR x RELRESPONSE = 1 / (response x pixel solid angle)."""
    lam = np.linspace(4.0, 14.0, nelem)
    conv = 1.0 / (lrs_response(params, lam, gain) * pixar_sr)
    conv = np.where(np.isfinite(conv), conv, 0.0)
    photmjsr = float(np.median(conv[conv > 0]))
    n = len(subarrays)
    arrays = {"phot_table.filter": np.array([L.FILTER] * n),
              "phot_table.subarray": np.array(list(subarrays)),
              "phot_table.photmjsr": np.full(n, photmjsr, np.float32),
              "phot_table.uncertainty": np.full(n, 0.02 * photmjsr, np.float32),
              "phot_table.nelem": np.full(n, nelem, np.int16),
              "phot_table.wavelength": np.tile(lam.astype(np.float32), (n, 1)),
              "phot_table.relresponse": np.tile((conv / photmjsr).astype(np.float32), (n, 1)),
              "phot_table.reluncertainty": np.zeros((n, nelem), np.float32)}
    return DataModel("ref.photom", arrays, _meta(
        "photom", "MirLrsPhotomModel", "MIRI", "MIRI LRS photometric response (simulated)",
        **{"instrument.detector": "MIRIMAGE", "instrument.filter": L.FILTER,
           "exposure.type": "MIR_LRS-FIXEDSLIT",
           "photometry.pixelarea_steradians": float(pixar_sr),
           "photometry.pixelarea_arcsecsq": float(pixar_sr / SP.ARCSEC2_SR)}))
