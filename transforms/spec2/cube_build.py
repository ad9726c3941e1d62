"""cube_build 1.0: IFU images -> spectral cubes (jwst 3.0's CubeBuildStep, build 10.0 options).

Input: one IFU cal (spec2) or a tuple of them (spec3: dithers, channels, bands). Output: an
``s3d`` product holding one cube per output band (``transforms.ifu`` layout; a single cube is
a plain IFUCubeModel-shaped product).

- **Which cubes** (``channel``, ``band`` for MIRI; ``grating``, ``filter`` for NIRSpec;
  ``output_type``): ``band`` one cube per channel + sub-band (grating + filter); ``channel``
  one per MIRI channel with all its bands; ``grating`` one per NIRSpec grating; ``multi`` one
  cube of everything (then, as jwst, a non-linear wavelength axis from the cubepar
  multichannel table unless ``scalew`` is given); naming a channel/band/grating/filter makes
  one cube of the selection (jwst's "user" type).
- **Sampling**: spaxel size from the cubepar reference (the smallest over the bands), or
  ``scalexy`` (square spaxels, build 10.0); spectral step from cubepar or ``scalew``;
  wavelength limits from cubepar or ``wavemin``/``wavemax``.
- **Frame** (``coord_system``): ``skyalign`` (north up, or rotated by ``cube_pa``),
  ``ifualign`` (axis 1 along the first exposure's along-slice direction), ``internal_cal``
  (the instrument's local frame, one exposure and one band: MIRI alpha/beta in arcsec is
  refused, as jwst refuses it; NIRSpec slicer plane in metres with one spaxel per slice across
  and half a slice along, the build 10.0 scale and orientation). The tangent point is the
  centre of the data's footprint or (``ra_center``, ``dec_center``); ``nspax_x``/``nspax_y``
  (odd; an even value is made odd, as jwst) fix the spatial size about it.
- **Weighting**: ``drizzle`` (default): each detector pixel's footprint on the sky (the
  quadrilateral of its corners: along-slice edges from the model, across-slice the slice
  width) times its wavelength interval; the voxel value is the overlap-weighted mean, so flux
  (surface brightness x area x wavelength) is conserved. ``emsm``/``msm``: the point cloud
  weighted by distance within the regions of interest (``rois``, ``roiw``, ``weight_power``
  and the cubepar softrad/scalerad), as jwst's C code.
- **Quality**: covered voxels 0; uncovered NON_SCIENCE | DO_NOT_USE, and uncovered voxels
  inside the footprint holes (DO_NOT_USE) unless ``skip_dqflagging`` (spec2, as jwst); MIRI's
  spectral-tear planes at band ends cleared; NaN where DO_NOT_USE; ``err`` = the weighted
  error; ``weightmap`` = the number of contributing pixels.

The cube's WCS is the FITS/gwcs cube WCS jwst writes (``transforms.ifu.cube_gwcs``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms import ifu as I
from transforms.model import DataModel
from transforms.registry import register
from transforms.spec2 import _cube_kernels as K

NAME, VERSION = "cube_build", "1.0"
NON_SCIENCE = DQ.PIXEL["NON_SCIENCE"]
ARCSEC2_SR = (math.pi / 180.0 / 3600.0) ** 2
MIRI_CHANNELS = ("1", "2", "3", "4")
MIRI_BANDS = ("short", "medium", "long")
NRS_GRATINGS = ("g140m", "g140h", "g235m", "g235h", "g395m", "g395h", "prism")
NRS_FILTERS = ("f070lp", "f100lp", "f170lp", "f290lp", "clear")


class CubeBuildError(ValueError):
    """A cube_build request that cannot be carried out."""


@dataclass(frozen=True)
class CubeBuildParams:
    """jwst 3.0 CubeBuildStep spec (defaults as jwst's)."""

    channel: str = "all"
    band: str = "all"
    grating: str = "all"
    filter: str = "all"
    output_type: str = "band"
    linear_wave: bool = True
    scalexy: float = 0.0
    scalew: float = 0.0
    weighting: str = "drizzle"
    coord_system: str = "skyalign"
    ra_center: float | None = None
    dec_center: float | None = None
    cube_pa: float | None = None
    nspax_x: int | None = None
    nspax_y: int | None = None
    rois: float = 0.0
    roiw: float = 0.0
    weight_power: float = 2.0
    wavemin: float | None = None
    wavemax: float | None = None
    skip_dqflagging: bool = False
    output_use_model: bool = True
    suffix: str = "s3d"
    offset_file: str | None = None
    debug_spaxel: str = "-1 -1 -1"


# --------------------------------------------------------------------------------------------
# Bands and which cubes to make
# --------------------------------------------------------------------------------------------

def exposure_bands(meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(par1, par2) bands an exposure covers: MIRI (channel, band), NIRSpec (grating,
    filter), lower case as jwst's master table."""
    inst = str(meta.get("instrument.name", "")).upper()
    if inst == "MIRI":
        chans = str(meta.get("instrument.channel") or "")
        band = str(meta.get("instrument.band") or "").lower()
        return [(c, band) for c in sorted(chans)]
    if inst == "NIRSPEC":
        return [(str(meta.get("instrument.grating") or "").lower(),
                 str(meta.get("instrument.filter") or "").lower())]
    raise CubeBuildError(f"cube_build: {inst or 'unknown'} data is not MIRI MRS or NIRSpec IFU")


def _choices(value: str, valid: Sequence[str], what: str) -> list[str] | None:
    v = str(value).strip().lower()
    if v == "all":
        return None
    items = [s.strip().strip("[]'\" ") for s in v.split(",") if s.strip()]
    bad = [s for s in items if s not in valid]
    if bad:
        raise CubeBuildError(f"cube_build {what} {bad} is not one of {', '.join(valid)}")
    return items


def plan_cubes(metas: Sequence[Mapping[str, Any]], params: CubeBuildParams
               ) -> list[list[tuple[str, str]]]:
    """The cubes to make: each a list of (par1, par2) bands, as jwst's ``number_cubes``."""
    inst = str(metas[0].get("instrument.name", "")).upper()
    present: list[tuple[str, str]] = []
    for m in metas:
        for b in exposure_bands(m):
            if b not in present:
                present.append(b)
    user = False
    if inst == "MIRI":
        chans = _choices(params.channel, MIRI_CHANNELS, "channel")
        bands = _choices(params.band, MIRI_BANDS, "band")
        user = chans is not None or bands is not None
        order = [(c, b) for c in MIRI_CHANNELS for b in MIRI_BANDS]
        sel = [p for p in order if p in present and (chans is None or p[0] in chans)
               and (bands is None or p[1] in bands)]
        if not sel:
            raise CubeBuildError("cube_build: the data cover none of the requested channels "
                                 "and bands; change channel/band")
    else:
        gr = _choices(params.grating, NRS_GRATINGS, "grating")
        fi = _choices(params.filter, NRS_FILTERS, "filter")
        if (gr is None) != (fi is None):
            raise CubeBuildError("cube_build: give both grating and filter, or neither")
        user = gr is not None
        sel = [p for p in present if (gr is None or p[0] in gr) and (fi is None or p[1] in fi)]
        if not sel:
            raise CubeBuildError("cube_build: the data cover none of the requested gratings "
                                 "and filters")
    out_type = "user" if user else params.output_type
    if out_type not in ("band", "channel", "grating", "multi", "user"):
        raise CubeBuildError(f"cube_build output_type must be band, channel, grating or multi, "
                             f"got {params.output_type!r}")
    if out_type in ("multi", "user"):
        return [sel]
    if out_type == "band":
        return [[p] for p in sel]
    groups: dict[str, list[tuple[str, str]]] = {}
    for p in sel:
        groups.setdefault(p[0], []).append(p)
    return list(groups.values())


def cube_name(inst: str, bands: Sequence[tuple[str, str]], internal: bool = False) -> str:
    """jwst's cube suffix without its underscore: ``ch1-short``, ``ch1-2-shortmedium``,
    ``g140m-f100lp``."""
    if inst == "MIRI":
        chans = []
        for c, _ in bands:
            if c not in chans:
                chans.append(c)
        subs = sorted({b for _, b in bands})[::-1]
        name = "ch" + "-".join(chans) + "-" + "".join(subs)
    else:
        name = "-".join(f"{g}-{f}" for g, f in bands)
    return name + ("_internal" if internal else "")


# --------------------------------------------------------------------------------------------
# The cubepar reference
# --------------------------------------------------------------------------------------------

def _col(ref: DataModel, table: str, col: str) -> np.ndarray | None:
    for k in (f"{table}.{col}", f"{table}.{col.upper()}", f"{table}.{col.lower()}"):
        if k in ref.arrays:
            return np.asarray(ref.arrays[k])
    return None


def band_pars(ref: DataModel, inst: str, band: tuple[str, str], weighting: str
              ) -> dict[str, float]:
    """A band's row of the cubepar tables: spaxel size, spectral step, wave min/max and the
    weighting's ROIs."""
    p1, p2 = band
    if inst == "MIRI":
        k1, k2 = "channel", "band"
    else:
        k1, k2 = "disperser", "filter"
    out: dict[str, float] = {}
    c1, c2 = _col(ref, "ifucubepars_table", k1), _col(ref, "ifucubepars_table", k2)
    if c1 is None or c2 is None:
        raise CubeBuildError("the cubepar reference has no ifucubepars_table")
    rows = [i for i in range(len(c1)) if str(c1[i]).strip().lower() == p1
            and str(c2[i]).strip().lower() == p2]
    if not rows:
        raise CubeBuildError(f"the cubepar reference has no row for {p1} {p2}")
    r = rows[0]
    for col, key in (("spaxelsize", "spaxel"), ("spectralstep", "step"), ("wavemin", "wmin"),
                     ("wavemax", "wmax")):
        out[key] = float(_col(ref, "ifucubepars_table", col)[r])
    tab = {"msm": "ifucubepars_msm_table", "emsm": "ifucubepars_emsm_table"}.get(weighting)
    if tab is not None:
        t1, t2 = _col(ref, tab, k1), _col(ref, tab, k2)
        rr = [i for i in range(len(t1)) if str(t1[i]).strip().lower() == p1
              and str(t2[i]).strip().lower() == p2]
        if rr:
            i = rr[0]
            out["rois"] = float(_col(ref, tab, "roispatial")[i])
            out["roiw"] = float(_col(ref, tab, "roispectral")[i])
            if weighting == "msm":
                out["power"] = float(_col(ref, tab, "power")[i])
                out["softrad"] = float(_col(ref, tab, "softrad")[i])
            else:
                out["scalerad"] = float(_col(ref, tab, "scalerad")[i])
    return out


def _wave_table(ref: DataModel, inst: str, bands, weighting: str) -> dict[str, np.ndarray]:
    """The non-linear wavelength table (and its ROI columns) for a multi-band cube."""
    if inst == "MIRI":
        tab = {"msm": "ifucubepars_multichannel_msm_wavetable",
               "emsm": "ifucubepars_multichannel_emsm_wavetable",
               "drizzle": "ifucubepars_multichannel_driz_wavetable"}[weighting]
    else:
        kind = ("prism" if bands[0][0] == "prism" else "high" if bands[0][0].endswith("h")
                else "med")
        tab = f"ifucubepars_{kind}_{'driz' if weighting == 'drizzle' else weighting}_wavetable"
    w = _col(ref, tab, "wavelength")
    if w is None:
        raise CubeBuildError(f"the cubepar reference has no {tab} for a non-linear cube")
    out = {"wavelength": np.asarray(w, np.float64).ravel()}
    for c in ("roispatial", "roispectral", "power", "softrad", "scalerad"):
        v = _col(ref, tab, c)
        if v is not None:
            out[c] = np.asarray(v, np.float64).ravel()
    return out


# --------------------------------------------------------------------------------------------
# Pixels of an exposure in a band, mapped to the cube
# --------------------------------------------------------------------------------------------

@dataclass
class Mapped:
    """The usable pixels of one exposure and band: detector (x, y), flux, err, wavelength,
    dwave, centre and corner sky positions."""

    flux: np.ndarray
    err: np.ndarray
    wave: np.ndarray
    dwave: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    corners: list[np.ndarray]  # local a1, b1, ..., a4, b4 (internal: the internal frame's)
    local: tuple[np.ndarray, np.ndarray]  # alpha, beta of the centres
    label: np.ndarray
    meta: Mapping[str, Any]


def map_pixels(model: DataModel, band: tuple[str, str], internal: bool = False) -> Mapped:
    """The good pixels of ``model`` in ``band`` with their sky (or, ``internal``, local)
    centres and footprint corners."""
    params = I.wcs_params(model)
    mod = I.instrument_module(params)
    px = I.pixels(model)
    sel = mod.band_mask(params, px, band)
    data = np.asarray(model.arrays["data"])
    err = np.asarray(model.arrays.get("err", np.zeros_like(data)))
    dq = np.asarray(model.arrays.get("dq", np.zeros(data.shape, np.uint32)))
    good = (sel & np.isfinite(data) & np.isfinite(err)
            & ((dq & (DQ.DO_NOT_USE | NON_SCIENCE)) == 0))
    yy, xx = np.nonzero(good)
    lab = px.label[yy, xx]
    x = xx.astype(np.float64)
    y = yy.astype(np.float64)
    h = 0.4999
    alpha, beta, lam = px.alpha[yy, xx], px.beta[yy, xx], px.lam[yy, xx]
    half_b = 0.5 * px.dbeta[yy, xx]
    if mod.DISPERSION_AXIS == 0:  # wavelength along y (MRS)
        a1, _, _ = mod.eval_points(params, lab, x - h, y)
        a2, _, _ = mod.eval_points(params, lab, x + h, y)
        _, _, w1 = mod.eval_points(params, lab, x, y - h)
        _, _, w2 = mod.eval_points(params, lab, x, y + h)
    else:  # along x (NIRSpec): the along-slice edges at y +- 0.49 (jwst)
        a1, _, _ = mod.eval_points(params, lab, x, y - 0.49)
        a2, _, _ = mod.eval_points(params, lab, x, y + 0.49)
        _, _, w1 = mod.eval_points(params, lab, x - h, y)
        _, _, w2 = mod.eval_points(params, lab, x + h, y)
    dwave = np.abs(w2 - w1)
    # corners in jwst's order: (a1, b-), (a1, b+), (a2, b+), (a2, b-)
    pts_a = np.concatenate([alpha, a1, a1, a2, a2])
    pts_b = np.concatenate([beta, beta - half_b, beta + half_b, beta + half_b, beta - half_b])
    n = alpha.size
    if internal:
        pts_a, pts_b = mod.local_to_internal(params, pts_a, pts_b)
        ca, cb = pts_a[:n], pts_b[:n]
    else:
        ca, cb = I.local_to_radec(model.meta, lab, alpha, beta)
    corners = [pts_a[n:2 * n], pts_b[n:2 * n], pts_a[2 * n:3 * n], pts_b[2 * n:3 * n],
               pts_a[3 * n:4 * n], pts_b[3 * n:4 * n], pts_a[4 * n:], pts_b[4 * n:]]
    return Mapped(data[yy, xx].astype(np.float64), err[yy, xx].astype(np.float64),
                  lam.astype(np.float64), dwave, ca, cb, corners, (alpha, beta), lab,
                  model.meta)


# --------------------------------------------------------------------------------------------
# Cube geometry
# --------------------------------------------------------------------------------------------

@dataclass
class Geometry:
    crval1: float
    crval2: float
    rot: float | None
    cdelt1: float
    cdelt2: float
    naxis1: int
    naxis2: int
    x0: float  # centre coordinate of spaxel 0 along axis 1 (arcsec, or local units)
    y0: float
    crpix1: float
    crpix2: float
    zc: np.ndarray
    zlo: np.ndarray
    zhi: np.ndarray
    zw: np.ndarray
    linear: bool
    cdelt3: float | None
    internal: bool = False


def _circmean_ra(a: float, b: float) -> float:
    ang = np.radians([a, b])
    return float(np.degrees(math.atan2(np.sin(ang).mean(), np.cos(ang).mean())) % 360.0)


def _wave_axis(lmin: float, lmax: float, step: float | None, table: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool, float | None]:
    if table is None:
        n = int(math.ceil((lmax - lmin) / step))
        if n < 1:
            raise CubeBuildError(f"cube_build: empty wavelength range {lmin}-{lmax}")
        zc = lmin + step / 2.0 + np.arange(n) * step
        zw = np.full(n, step)
        return zc, zc - step / 2.0, zc + step / 2.0, zw, True, step
    zc = np.asarray(table, np.float64)
    zw = np.empty(zc.size)
    zw[:-1] = np.diff(zc)
    zw[-1] = zw[-2] if zc.size > 1 else 1.0
    # jwst drizzles a non-linear plane over [zc - w/2, zc + w/2] with w the forward step
    return zc, zc - zw / 2.0, zc + zw / 2.0, zw, False, None


def _sky_geometry(mapped: Sequence[Mapped], scale: float, params: CubeBuildParams,
                  rot: float | None) -> tuple[float, float, int, int, float, float]:
    """crval and spatial size as jwst's ``set_geometry`` (footprint from the extreme pixel
    centres, a symmetric cube about the tangent point)."""
    ras = np.concatenate([m.ra for m in mapped])
    decs = np.concatenate([m.dec for m in mapped])
    ok = np.isfinite(ras) & np.isfinite(decs)
    ras, decs = ras[ok], decs[ok]
    if ras.size == 0:
        raise CubeBuildError("cube_build: no valid pixel maps onto the sky")
    wrap = ras.max() - ras.min() > 180.0
    rw = np.where(ras > 180.0, ras - 360.0, ras) if wrap else ras
    i1, i2, j1, j2 = np.argmin(rw), np.argmax(rw), np.argmin(decs), np.argmax(decs)
    ca = np.array([ras[i1], ras[i2], ras[j1], ras[j2]])
    cb = np.array([decs[i1], decs[i2], decs[j1], decs[j2]])
    crval1 = _circmean_ra(float(rw.min()) % 360.0, float(rw.max()) % 360.0) \
        if params.ra_center is None else float(params.ra_center)
    crval2 = (float(decs.min()) + float(decs.max())) / 2.0 if params.dec_center is None \
        else float(params.dec_center)
    xi, eta = I.radec_to_std(ca, cb, crval1, crval2, rot)
    na = math.ceil(float(np.max(np.abs(xi))) / scale) + 1
    nb = math.ceil(float(np.max(np.abs(eta))) / scale) + 1
    if params.nspax_x is not None:
        na = int(_odd(params.nspax_x) / 2)
    if params.nspax_y is not None:
        nb = int(_odd(params.nspax_y) / 2)
    return crval1, crval2, 2 * na + 1, 2 * nb + 1, float(na), float(nb)


def _odd(n: int) -> int:
    n = int(n)
    if n < 1:
        raise CubeBuildError(f"cube_build nspax must be a positive odd number, got {n}")
    return n if n % 2 else n + 1


def ifualign_angle(model: DataModel, band: tuple[str, str]) -> float:
    """jwst's ifualign rotation: 90 + the position angle of the along-slice axis."""
    params = I.wcs_params(model)
    mod = I.instrument_module(params)
    px = I.pixels(model)
    sel = mod.band_mask(params, px, band)
    lab = int(np.median(px.label[sel])) if sel.any() else int(px.label[px.valid][0])
    ra, dec = I.local_to_radec(model.meta, np.array([lab, lab]), np.array([0.0, 2.0]),
                               np.array([0.0, 0.0]))
    dra = (ra[1] - ra[0]) * math.cos(math.radians(dec[0]))
    ddec = dec[1] - dec[0]
    return float(90.0 + math.degrees(math.atan2(dra, ddec)))


# --------------------------------------------------------------------------------------------
# Building one cube
# --------------------------------------------------------------------------------------------

def build_cube(models: Sequence[DataModel], bands: Sequence[tuple[str, str]],
               ref: DataModel, params: CubeBuildParams, internal_geometry=None,
               footprint=None) -> I.Cube:
    """One cube of ``bands`` from every model covering them (``internal_geometry``: the
    internal_cal grid function, this version's ``_internal_geometry`` unless a later version
    gives its own; ``footprint(members)``: the sky points the grid is centred on, the good
    pixels' centres unless a later version gives its own)."""
    inst = str(models[0].get("instrument.name", "")).upper()
    members = [(m, b) for b in bands for m in models if b in exposure_bands(m.meta)]
    internal = params.coord_system == "internal_cal"
    weighting = "emsm" if internal and params.weighting != "drizzle" else params.weighting
    if weighting not in ("drizzle", "emsm", "msm"):
        raise CubeBuildError(f"cube_build weighting must be drizzle, emsm or msm, got "
                             f"{params.weighting!r}")
    if params.coord_system not in ("skyalign", "world", "ifualign", "internal_cal"):
        raise CubeBuildError(f"cube_build coord_system must be skyalign, ifualign or "
                             f"internal_cal, got {params.coord_system!r}")
    if internal:
        if inst == "MIRI":
            raise CubeBuildError("The 'internal_cal' coordinate system is not supported for "
                                 "MIRI; use coord_system=ifualign")
        if len(members) != 1 or len(bands) != 1:
            raise CubeBuildError("internal_cal cubes are built from a single exposure and a "
                                 "single band (use output_type=band and one exposure)")
    bp = [band_pars(ref, inst, b, weighting) for b in bands]
    scale = min(p["spaxel"] for p in bp) if params.scalexy == 0 else float(params.scalexy)
    lmin = min(p["wmin"] for p in bp) if params.wavemin is None else float(params.wavemin)
    lmax = max(p["wmax"] for p in bp) if params.wavemax is None else float(params.wavemax)
    linear = params.linear_wave and params.output_type != "multi" or params.scalew != 0
    if len(bands) > 1 and params.output_type == "multi" and params.scalew == 0:
        linear = False
    step = None
    table = None
    roi_tab = None
    if linear:
        step = min(p["step"] for p in bp) if params.scalew == 0 else float(params.scalew)
    else:
        roi_tab = _wave_table(ref, inst, bands, weighting)
        w = roi_tab["wavelength"]
        imin = int(np.argmin(np.abs(w - lmin)))
        imax = int(np.argmin(np.abs(w - lmax)))
        if imin > 1 and w[imin] > lmin:
            imin -= 1
        if imax < w.size - 1 and lmax > w[imax]:
            imax += 1
        roi_tab = {k: v[imin:imax + 1] for k, v in roi_tab.items()}
        table = roi_tab["wavelength"]
    zc, zlo, zhi, zw, linear, cdelt3 = _wave_axis(lmin, lmax, step, table)
    # the point cloud's ROIs and weights
    nfiles = len(members)
    rois = float(params.rois) or min(p.get("rois", scale) for p in bp)
    if params.rois == 0 and nfiles < 4 and weighting != "emsm":
        rois *= 1.5  # jwst: the default ROI is for four dithers
    roiw = float(params.roiw) or min(p.get("roiw", 2 * (cdelt3 or 0.001)) for p in bp)
    power = float(params.weight_power) or min(p.get("power", 2.0) for p in bp)
    softrad = min(p.get("softrad", 0.01) for p in bp)
    scalerad = min(p.get("scalerad", 0.5 * scale) for p in bp)
    # map every member's pixels
    mapped = [map_pixels(m, b, internal) for m, b in members]
    rot = None
    if params.coord_system == "ifualign":
        rot = ifualign_angle(members[0][0], members[0][1])
    elif params.cube_pa is not None:
        rot = float(params.cube_pa)
    if internal:
        geo = (internal_geometry or _internal_geometry)(mapped, zc, zlo, zhi, zw, linear,
                                                        cdelt3)
    else:
        crval1, crval2, nx, ny, na, nb = _sky_geometry(
            mapped if footprint is None else footprint(members), scale, params, rot)
        geo = Geometry(crval1, crval2, rot, scale, scale, nx, ny, -na * scale, -nb * scale,
                       na + 1.0, nb + 1.0, zc, zlo, zhi, zw, linear, cdelt3)
    nz, ny, nx = geo.zc.size, geo.naxis2, geo.naxis1
    ncube = nz * ny * nx
    sflux, sweight = np.zeros(ncube), np.zeros(ncube)
    svar, siflux = np.zeros(ncube), np.zeros(ncube)
    for mp in mapped:
        if mp.wave.size == 0:
            continue
        if weighting == "drizzle" or internal:
            tol = float(np.max(geo.zhi - geo.zlo)) + float(np.max(mp.dwave))
        else:
            tol = roiw if linear else float(np.max(roi_tab["roispectral"]))
        keep = (mp.wave >= geo.zc[0] - tol) & (mp.wave <= geo.zc[-1] + tol)
        if internal:
            cx = [c[keep] for c in mp.corners]  # already in the internal frame
        else:
            n_keep = int(keep.sum())
            lab = np.concatenate([mp.label[keep]] * 4)
            ca = np.concatenate([mp.corners[2 * i][keep] for i in range(4)])
            cb = np.concatenate([mp.corners[2 * i + 1][keep] for i in range(4)])
            xi, eta = I.local_to_std(mp.meta, lab, ca, cb, geo.crval1, geo.crval2, geo.rot)
            cx = []
            for i in range(4):
                cx += [xi[i * n_keep:(i + 1) * n_keep], eta[i * n_keep:(i + 1) * n_keep]]
        f, e, w, dw = mp.flux[keep], mp.err[keep], mp.wave[keep], mp.dwave[keep]
        if weighting == "drizzle" or internal:
            K.drizzle(*cx, w, dw, f, e, geo.x0, geo.cdelt1, nx, geo.y0, geo.cdelt2, ny,
                      geo.zlo, geo.zhi, sflux, sweight, svar, siflux)
        else:
            xi, eta = I.local_to_std(mp.meta, mp.label[keep], mp.local[0][keep],
                                     mp.local[1][keep], geo.crval1, geo.crval2, geo.rot)
            n = w.size
            if linear:
                r_s, r_w = np.full(n, rois), np.full(n, roiw)
                pw, sr, sc = np.full(n, power), np.full(n, softrad), np.full(n, scalerad)
            else:
                idx = np.abs(roi_tab["wavelength"][None, :] - w[:, None]).argmin(axis=1) \
                    if n else np.zeros(0, int)
                r_s = roi_tab["roispatial"][idx] * (1.5 if nfiles < 4 else 1.0)
                r_w = roi_tab["roispectral"][idx]
                pw = roi_tab.get("power", np.full(roi_tab["wavelength"].size, power))[idx]
                sr = roi_tab.get("softrad", np.full(roi_tab["wavelength"].size, softrad))[idx]
                sc = roi_tab.get("scalerad", np.full(roi_tab["wavelength"].size, scalerad))[idx]
            K.pointcloud(xi, eta, w, f, e, r_s, r_w, pw, sr, sc, weighting == "emsm",
                         geo.x0, geo.cdelt1, nx, geo.y0, geo.cdelt2, ny, geo.zc, geo.zw,
                         sflux, sweight, svar, siflux)
    good = siflux > 0
    flux = np.zeros(ncube)
    var = np.zeros(ncube)
    flux[good] = sflux[good] / sweight[good]
    var[good] = svar[good] / (sweight[good] * sweight[good])
    dq = K.final_dq(sweight, nz, ny, nx, not params.skip_dqflagging, DQ.DO_NOT_USE,
                    NON_SCIENCE)
    flux = flux.reshape(nz, ny, nx)
    var = var.reshape(nz, ny, nx)
    wmap = siflux.reshape(nz, ny, nx)
    dq = dq.reshape(nz, ny, nx)
    if inst == "MIRI":
        _tear_planes(flux, var, wmap, dq)
    dnu = (dq & DQ.DO_NOT_USE) != 0
    flux[dnu] = np.nan
    var[dnu] = np.nan
    meta = _cube_meta(members, bands, geo, params, weighting, rois, roiw, power, internal,
                      inst)
    arrays = {"data": flux.astype(np.float32), "dq": dq.astype(np.uint32),
              "err": np.sqrt(var).astype(np.float32), "weightmap": wmap.astype(np.float32),
              "wavelength": geo.zc.astype(np.float32)}
    meta["wcsinfo.s_region"] = _s_region(meta, arrays)
    return I.Cube(cube_name(inst, bands, internal), arrays, meta)


def _tear_planes(flux, var, wmap, dq) -> None:
    """jwst's MIRI quality cut: planes whose good-voxel count falls below 75% of the 3rd
    percentile of the non-empty planes' counts are cleared."""
    ngood = (dq == 0).reshape(dq.shape[0], -1).sum(axis=1)
    nz = ngood > 0
    if not nz.any():
        return
    pct = np.percentile(ngood[nz], 3)
    low = np.flatnonzero(nz & (ngood < 0.75 * pct))
    for k in low:
        flux[k] = 0.0
        wmap[k] = 0.0
        var[k] = 0.0
        dq[k] = DQ.DO_NOT_USE | NON_SCIENCE


def _internal_geometry(mapped, zc, zlo, zhi, zw, linear, cdelt3) -> Geometry:
    """NIRSpec internal_cal: the slicer plane (metres), one spaxel per slice across (axis 1),
    half that along (axis 2), a symmetric along-slice axis (build 10.0's fix)."""
    m = mapped[0]
    across = np.concatenate([m.corners[1], m.corners[3], m.corners[5], m.corners[7]])
    along = np.concatenate([m.corners[0], m.corners[2], m.corners[4], m.corners[6]])
    across, along = across[np.isfinite(across)], along[np.isfinite(along)]
    b_min, b_max = float(across.min()), float(across.max())
    nslice = int(round((b_max - b_min) / float(np.median(np.abs(m.corners[3] - m.corners[1])))))
    return internal_grid(b_min, b_max, nslice, along, zc, zlo, zhi, zw, linear, cdelt3)


def internal_grid(b_min: float, b_max: float, nslice: int, along: np.ndarray, zc, zlo, zhi,
                  zw, linear, cdelt3) -> Geometry:
    """The internal_cal grid over slicer-plane extent [b_min, b_max] across (``nslice``
    spaxels) and a symmetric along-slice axis at half that step covering ``along``."""
    c1 = (b_max - b_min) / nslice
    c2 = c1 / 2.0
    alimit = max(abs(float(along.min())), abs(float(along.max())))
    n1 = math.ceil(alimit / c2)
    ny = 2 * n1 + 1
    a_min = -(n1 * c2) - c2 / 2.0
    b_center = (b_max + b_min) / 2.0
    b_lo = b_center - nslice / 2.0 * c1
    return Geometry(b_lo, a_min, None, c1, c2, nslice, ny, b_lo + c1 / 2.0, a_min + c2 / 2.0,
                    0.5, 0.5, zc, zlo, zhi, zw, linear, cdelt3, internal=True)


def _cube_meta(members, bands, geo: Geometry, params: CubeBuildParams, weighting: str,
               rois: float, roiw: float, power: float, internal: bool, inst: str
               ) -> dict[str, Any]:
    first = members[0][0]
    drop = ("wcs.", "wcsinfo.", "slit.", "cal_step.")
    meta = {k: v for k, v in first.meta.items() if not k.startswith(drop)}
    meta.update({k: v for k, v in first.meta.items() if k.startswith("cal_step.")})
    for k in ("wcsinfo.roll_ref", "wcsinfo.dispersion_direction"):
        if k in first.meta:
            meta[k] = first.meta[k]
    if inst == "MIRI":
        meta["instrument.channel"] = "".join(sorted({c for c, _ in bands}))
        subs = sorted({b for _, b in bands})
        meta["instrument.band"] = subs[0].upper() if len(subs) == 1 else "MULTIPLE"
    else:
        gr = sorted({g for g, _ in bands})
        fi = sorted({f for _, f in bands})
        meta["instrument.grating"] = gr[0].upper() if len(gr) == 1 else "MULTIPLE"
        meta["instrument.filter"] = fi[0].upper() if len(fi) == 1 else "MULTIPLE"
    c1, c2 = geo.cdelt1, geo.cdelt2
    rot = 0.0 if geo.rot is None else geo.rot
    r = math.radians(rot)
    meta.update({
        "model_type": "IFUCubeModel",
        "wcsinfo.crval1": geo.crval1, "wcsinfo.crval2": geo.crval2,
        "wcsinfo.crpix1": geo.crpix1, "wcsinfo.crpix2": geo.crpix2,
        "wcsinfo.cdelt1": c1 / 3600.0, "wcsinfo.cdelt2": c2 / 3600.0,
        "wcsinfo.ctype1": "RA---TAN", "wcsinfo.ctype2": "DEC--TAN",
        "wcsinfo.cunit1": "deg", "wcsinfo.cunit2": "deg", "wcsinfo.cunit3": "um",
        "wcsinfo.wcsaxes": 3,
        "wcsinfo.pc1_1": -math.cos(r), "wcsinfo.pc1_2": math.sin(r), "wcsinfo.pc1_3": 0.0,
        "wcsinfo.pc2_1": math.sin(r), "wcsinfo.pc2_2": math.cos(r), "wcsinfo.pc2_3": 0.0,
        "wcsinfo.pc3_1": 0.0, "wcsinfo.pc3_2": 0.0, "wcsinfo.pc3_3": 1.0,
        "photometry.pixelarea_arcsecsq": c1 * c2,
        "photometry.pixelarea_steradians": c1 * c2 * ARCSEC2_SR,
        "ifu.flux_extension": "SCI", "ifu.error_extension": "ERR", "ifu.error_type": "ERR",
        "ifu.dq_extension": "DQ", "ifu.weighting": weighting,
        "ifu.weight_power": float(power) if weighting == "msm" else 0.0,
        "ifu.roi_spatial": float(rois) if weighting != "drizzle" else 0.0,
        "ifu.roi_wave": float(roiw) if weighting != "drizzle" else 0.0,
        "ifu.coord_system": "skyalign" if params.coord_system == "world"
        else params.coord_system,
        "ifu.nexposures": len({id(m) for m, _ in members}),
        "cal_step.cube_build": "COMPLETE",
        "bunit_data": first.get("bunit_data") or "MJy/sr",
        "bunit_err": first.get("bunit_err") or first.get("bunit_data") or "MJy/sr",
    })
    if geo.linear:
        meta.update({"wcsinfo.crval3": float(geo.zc[0]), "wcsinfo.cdelt3": float(geo.cdelt3),
                     "wcsinfo.crpix3": 1.0, "wcsinfo.ctype3": "WAVE"})
    else:
        meta.update({"wcsinfo.crval3": 1.0, "wcsinfo.crpix3": 1.0, "wcsinfo.ctype3": "WAVE-TAB",
                     "wcsinfo.ps3_0": "WCS-TABLE", "wcsinfo.ps3_1": "wavelength"})
    if weighting == "drizzle":
        meta["ifu.weighting"] = "drizzle"
    if internal:
        meta.update({"wcsinfo.cdelt1": c1, "wcsinfo.cdelt2": c2,
                     "wcsinfo.pc1_1": 1.0, "wcsinfo.pc1_2": 0.0, "wcsinfo.pc2_1": 0.0,
                     "wcsinfo.pc2_2": 1.0, "wcsinfo.cunit1": "meter", "wcsinfo.cunit2": "meter",
                     "wcsinfo.ctype1": "NRSSLICERX", "wcsinfo.ctype2": "NRSSLICERY",
                     "ifu.weight_power": 0.0, "ifu.roi_wave": 0.0, "ifu.roi_spatial": 0.0,
                     "photometry.pixelarea_arcsecsq": None,
                     "photometry.pixelarea_steradians": None})
    return {k: v for k, v in meta.items() if v is not None}


def _s_region(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> str:
    """The cube's spatial footprint (its four outer spaxel corners)."""
    if str(meta.get("wcsinfo.ctype1")) != "RA---TAN":
        return ""
    nz, ny, nx = arrays["data"].shape
    c1 = float(meta["wcsinfo.cdelt1"]) * 3600.0
    c2 = float(meta["wcsinfo.cdelt2"]) * 3600.0
    x = (np.array([-0.5, nx - 0.5, nx - 0.5, -0.5]) + 1.0 - meta["wcsinfo.crpix1"]) * c1
    y = (np.array([-0.5, -0.5, ny - 0.5, ny - 0.5]) + 1.0 - meta["wcsinfo.crpix2"]) * c2
    rot = math.degrees(math.atan2(meta["wcsinfo.pc1_2"], -meta["wcsinfo.pc1_1"]))
    ra, dec = I.std_to_radec(x, y, meta["wcsinfo.crval1"], meta["wcsinfo.crval2"],
                             rot if abs(rot) > 0 else None)
    return "POLYGON ICRS " + " ".join(f"{a:.9f} {d:.9f}" for a, d in zip(ra, dec))


# --------------------------------------------------------------------------------------------
# The step
# --------------------------------------------------------------------------------------------

def build(models: Sequence[DataModel], refs: Mapping[str, DataModel], params: CubeBuildParams,
          internal_geometry=None, footprint=None) -> list[I.Cube]:
    """Every cube the parameters ask for from ``models``."""
    if params.offset_file is not None:
        raise CubeBuildError("cube_build: calops reads no offset file (transforms read no files);"
                             " leave offset_file unset")
    if not models:
        raise CubeBuildError("cube_build needs at least one IFU exposure")
    for m in models:
        if not I.is_ifu_image(m) or m.get("wcs.ifu") is None:
            raise CubeBuildError("cube_build takes IFU cal images with their instrument model "
                                 "(assign_wcs first)")
    insts = {str(m.get("instrument.name", "")).upper() for m in models}
    if len(insts) != 1:
        raise CubeBuildError(f"cube_build: one instrument per cube, got {sorted(insts)}")
    ref = refs.get("cubepar")
    if ref is None:
        raise CubeBuildError("The cubepar reference file is required.")
    return [build_cube(models, bands, ref, params, internal_geometry, footprint)
            for bands in plan_cubes([m.meta for m in models], params)]


@register(NAME, VERSION, "spec2", CubeBuildParams, ("cubepar",), keyword="S_IFUCUB",
          exec_only=("output_use_model", "suffix", "debug_spaxel"),
          instruments=("MIRI", "NIRSPEC"), exp_types=("MIR_MRS", "NRS_IFU"))
def cube_build(models, refs: dict, params: CubeBuildParams) -> DataModel:
    """Build spectral cubes from IFU images (one, or a tuple: dithers, channels, bands)."""
    if isinstance(models, DataModel):
        models = (models,)
    return I.cube_product(build(tuple(models), refs, params))
