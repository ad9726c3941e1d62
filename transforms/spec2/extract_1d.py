"""extract_1d: box extraction of 1-D spectra from 2-D spectra (s2d, or cal) -> x1d.

jwst 3.0's Extract1dStep for slit spectra (NIRSpec FS/MOS, MIRI LRS), box extraction:

- **Apertures** come from the ``extract1d`` reference (the JWST JSON layout, held as a
  ``ref.extract1d`` model whose meta ``apertures`` is the JSON list): the first aperture whose
  ``id`` is the slit name or ``ANY`` (region_type ``target``) gives ``xstart/xstop/ystart/
  ystop``, ``extract_width``, ``src_coeff``/``bkg_coeff`` (polynomial limits, in pixels or of
  wavelength by ``independent_var``), ``bkg_fit``/``bkg_order``/``smoothing_length`` and
  ``use_source_posn``. Without a reference the whole slit is extracted (jwst's default).
  Limits are inclusive with partial weights for fractional pixels, as jwst's
  ``_set_weight_from_limits``; limit precedence as ``box_profile``.
- **Aperture placement (build 10.0)**: with ``use_source_posn`` (default on for point sources
  of NRS_FIXEDSLIT, NRS_MSASPEC, MIR_LRS-FIXEDSLIT) the aperture is moved by ``location -
  nominal centre`` at the middle of the dispersion range, where the location is, for NIRSpec
  MOS and FS, the row at which the slit frame's y equals the planned ``source_ypos`` (the APT/
  MPT position in the slit, not the source RA/Dec), and for MIRI LRS the position along the
  slit of the exposure's dither/nod pointing ``dither.dithered_ra/dec``. A trace (the location
  at every dispersion element) is kept for apertures given by a width; ``position_offset``
  moves everything further.
- **Background**: ``bkg_coeff`` regions are fitted per dispersion element (polynomial of
  ``bkg_order`` in the normalised cross-dispersion coordinate, or mean, or median), after an
  optional boxcar of ``smoothing_length`` along the dispersion; the fit is subtracted and its
  variance propagated as jwst's ``_fit_background_for_box_extraction`` does.
- **Output columns**: the weighted sum (flux) and its read-noise/Poisson/flat variances, the
  surface brightness (sum / npixels), background, npixels; fluxes in Jy (``sum * 1e6`` for
  NIRSpec point sources in MJy, ``sum * pixel solid angle * 1e6`` for MJy/sr), DN/s if photom
  did not run; DO_NOT_USE where the flux is NaN; only dispersion elements with a wavelength.

The per-column sums and background fits are one numba kernel. Optimal extraction needs a PSF
reference calops does not have: as jwst without one, ``extraction_type`` falls back to box.
``apply_apcorr`` is accepted; without an ``apcorr`` reference (calops has none) nothing is
applied, as in jwst when the reference is N/A.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from transforms import dq as DQ
from transforms import spectral as S
from transforms.model import DataModel
from transforms.registry import register

SRCPOS_EXPTYPES = ("MIR_LRS-FIXEDSLIT", "NRS_FIXEDSLIT", "NRS_MSASPEC", "NRS_BRIGHTOBJ")
ANY = "ANY"


class Extract1dError(ValueError):
    """Bad extract_1d parameters, reference or input."""


@dataclass(frozen=True)
class Extract1dParams:
    """jwst 3.0 Extract1dStep parameters that apply to slit spectra (spec defaults)."""

    subtract_background: bool | None = None
    apply_apcorr: bool = True
    extraction_type: str | None = "box"
    use_source_posn: bool | None = None
    position_offset: float = 0.0
    model_nod_pair: bool = True
    optimize_psf_location: bool = True
    smoothing_length: int | None = None
    bkg_fit: str | None = None
    bkg_order: int | None = None
    log_increment: int = 50
    save_profile: bool = False
    save_scene_model: bool = False
    save_residual_image: bool = False


# --------------------------------------------------------------------------------------------
# The extract1d reference
# --------------------------------------------------------------------------------------------

def extract1d_ref(apertures: Sequence[Mapping[str, Any]], instrument: str = "NIRSPEC",
                  exp_type: str = "NRS_FIXEDSLIT", **meta: Any) -> DataModel:
    """A ``ref.extract1d`` model holding JWST-layout apertures (``{"apertures": [...]}``)."""
    return DataModel("ref.extract1d", {}, {
        "reftype": "EXTRACT1D", "instrument.name": instrument, "exposure.type": exp_type,
        "apertures": [dict(a) for a in apertures], "pedigree": "GROUND",
        "description": "calops extraction apertures", "author": "calops",
        "useafter": "2022-01-01T00:00:00", **meta})


def default_apertures(exp_type: str) -> list[dict[str, Any]]:
    """Apertures in the spirit of the operational JWST references (used by the simulator's
    CRDS cache and the tests): a box of ``extract_width`` pixels centred on the planned source
    position, background from the slit ends.

    NIRSpec FS/MOS (s2d, dispersion along x): 5 px; MIRI LRS (dispersion along y): 9 px, as
    the operational reference's aperture (its nod pairs are background-subtracted in
    stage 2, so no background region)."""
    exp_type = str(exp_type).upper()
    if exp_type == "MIR_LRS-FIXEDSLIT":
        return [{"id": "MIR_LRS-FIXEDSLIT", "region_type": "target", "disp_axis": 2,
                 "extract_width": 9, "use_source_posn": True}]
    return [{"id": ANY, "region_type": "target", "disp_axis": 1, "extract_width": 5,
             "use_source_posn": True, "bkg_order": 0}]


def _apertures(refs: Mapping[str, DataModel]) -> list[Mapping[str, Any]] | None:
    ref = (refs or {}).get("extract1d")
    if ref is None:
        return None
    aps = ref.get("apertures")
    if not isinstance(aps, (list, tuple)):
        raise Extract1dError("the extract1d reference has no 'apertures' list (the JWST JSON "
                             "layout); regenerate it")
    return list(aps)


def get_extract_parameters(apertures: list[Mapping[str, Any]] | None, shape: tuple[int, int],
                           slitname: str, exp_type: str, params: Extract1dParams,
                           use_source_posn: bool | None) -> dict[str, Any] | None:
    """jwst's ``get_extract_parameters`` for box extraction; None when no aperture matches."""
    ny, nx = shape  # in the products' orientation
    ep: dict[str, Any]
    if apertures is None:
        return {"xstart": 0, "xstop": nx - 1, "ystart": 0, "ystop": ny - 1,
                "extract_width": None, "src_coeff": None, "bkg_coeff": None,
                "smoothing_length": 0, "bkg_fit": None, "bkg_order": 0,
                "subtract_background": False, "use_source_posn": False,
                "position_offset": 0.0, "independent_var": "pixel", "trace": None}
    for aper in apertures:
        aid = aper.get("id")
        if aid is None or aid == "dummy" or not (aid == slitname or aid == ANY or slitname == ANY):
            continue
        if aper.get("region_type", "target") != "target":
            continue
        ep = {"xstart": aper.get("xstart", 0), "xstop": aper.get("xstop", nx - 1),
              "ystart": aper.get("ystart", 0), "ystop": aper.get("ystop", ny - 1),
              "src_coeff": copy.deepcopy(aper.get("src_coeff")),
              "bkg_coeff": copy.deepcopy(aper.get("bkg_coeff"))}
        sub = params.subtract_background
        bkg_fit, bkg_order = params.bkg_fit, params.bkg_order
        if ep["bkg_coeff"] is not None and sub is None:
            sub = True
        if sub:
            ep["subtract_background"] = True
            if bkg_fit is not None:
                if bkg_fit == "mean":
                    bkg_fit, bkg_order = "poly", 0
                ep["bkg_fit"] = bkg_fit
            else:
                ep["bkg_fit"] = aper.get("bkg_fit", "poly")
        else:
            ep["subtract_background"] = False
            ep["bkg_fit"] = None
        ep["independent_var"] = str(aper.get("independent_var", "pixel")).lower()
        ep["bkg_order"] = aper.get("bkg_order", 0) if bkg_order is None else bkg_order
        usp = use_source_posn
        if usp is None:
            usp = aper.get("use_source_posn")
            if usp is None:
                usp = exp_type in SRCPOS_EXPTYPES
        ep["use_source_posn"] = bool(usp)
        ep["position_offset"] = float(params.position_offset)
        ep["trace"] = None
        ep["extract_width"] = aper.get("extract_width")
        sm = aper.get("smoothing_length", 0) if params.smoothing_length is None \
            else params.smoothing_length
        sm = int(round(sm))
        if sm != 0:
            if sm < 3:
                sm = 0
            elif sm % 2 == 0:
                sm -= 1
        ep["smoothing_length"] = sm
        return ep
    return None


# --------------------------------------------------------------------------------------------
# Apertures (working frame: dispersion along axis 1, cross-dispersion index = row)
# --------------------------------------------------------------------------------------------

def _poly(coeff: Sequence[float], x: np.ndarray) -> np.ndarray:
    """jwst's ``create_poly``: c0 + c1 x + c2 x^2 ..."""
    out = np.zeros_like(x, dtype=np.float64)
    for c in reversed(list(coeff)):
        out = out * x + float(c)
    return out


def set_weight_from_limits(profile: np.ndarray, idx: np.ndarray, lower, upper,
                           allow_partial: bool = True) -> None:
    """jwst's ``_set_weight_from_limits`` (in place): 1 inside the inclusive limits, the
    covered fraction at the pixels the limits cut."""
    with np.errstate(invalid="ignore"):
        profile[(idx >= lower) & (idx <= upper)] = 1.0
        if allow_partial:
            for w in (idx - lower + 1, upper - idx + 1):
                w = np.broadcast_to(w, profile.shape)
                t = (w > 0) & (w < 1) & (profile < w)
                profile[t] = w[t]


def box_profile(shape: tuple[int, int], ep: Mapping[str, Any], wl: np.ndarray,
                coefficients: str = "src_coeff") -> tuple[np.ndarray, float, float]:
    """jwst's ``box_profile`` in the working frame: (profile, mean lower, mean upper)."""
    ny, nx = shape
    yidx, xidx = np.mgrid[:ny, :nx]
    dval = yidx.astype(np.float64)
    xs, xe = ep["disp_start"], ep["disp_stop"]
    ys, ye = ep["xd_start"], ep["xd_stop"]
    allow = not (coefficients == "bkg_coeff" and ep.get("bkg_fit") == "median")
    profile = np.zeros(shape)
    lower = upper = None
    coeffs = ep.get(coefficients)
    if coeffs is not None:
        ival = wl if ep["independent_var"].startswith("wavelength") else xidx.astype(np.float64)
        if len(coeffs) % 2:
            raise Extract1dError(f"{coefficients} must alternate lower and upper limit "
                                 "polynomials")
        for i in range(0, len(coeffs), 2):
            lo = _poly(coeffs[i], ival) + 0.5
            hi = _poly(coeffs[i + 1], ival) - 0.5
            set_weight_from_limits(profile, dval, lo, hi, allow)
            ml, mu = float(np.nanmean(lo)), float(np.nanmean(hi))
            lower = ml if lower is None else min(lower, ml)
            upper = mu if upper is None else max(upper, mu)
    elif ep.get("extract_width") is not None and ep.get("trace") is not None:
        width = float(ep["extract_width"])
        lo = np.asarray(ep["trace"], np.float64)[None, :] - (width - 1.0) / 2.0
        hi = lo + width - 1
        set_weight_from_limits(profile, dval, lo, hi)
        with np.errstate(invalid="ignore"):
            lower, upper = float(np.nanmean(lo)), float(np.nanmean(hi))
    elif ep.get("extract_width") is not None:
        width = float(ep["extract_width"])
        middle = (ys + ye) / 2.0
        lower = middle - (width - 1.0) / 2.0
        upper = lower + width - 1
        set_weight_from_limits(profile, dval, lower, upper)
    else:
        lower, upper = float(ys), float(ye)
        set_weight_from_limits(profile, dval, lower, upper)
    profile[:, : max(int(math.ceil(xs)), 0)] = 0
    profile[:, int(math.floor(xe)) + 1:] = 0
    return profile, float(lower), float(upper)


def aperture_center(profile: np.ndarray, middle_pix: int | None = None) -> tuple[float, float]:
    """jwst's ``aperture_center`` (working frame): (cross-dispersion centre, dispersion centre)."""
    w = np.where(profile > 0, profile, 0.0)
    yidx, xidx = np.mgrid[:profile.shape[0], :profile.shape[1]]
    if middle_pix is not None:
        sl, w = yidx[:, middle_pix], w[:, middle_pix]
    else:
        sl = yidx
    if np.sum(w) == 0:
        w = np.ones_like(w)
    c = float(np.average(sl, weights=w))
    d = float(middle_pix) if middle_pix is not None else float(np.average(xidx, weights=
                                                                           np.broadcast_to(w, xidx.shape)))
    return c, d


def shift_by_offset(offset: float, ep: dict[str, Any], update_trace: bool = True) -> None:
    for key in ("src_coeff", "bkg_coeff"):
        if ep.get(key) is not None:
            for c in ep[key]:
                c[0] = float(c[0]) + offset
    ep["xd_start"] = ep["xd_start"] + offset
    ep["xd_stop"] = ep["xd_stop"] + offset
    if update_trace and ep.get("trace") is not None:
        ep["trace"] = np.asarray(ep["trace"]) + offset


# --------------------------------------------------------------------------------------------
# Source location (build 10.0)
# --------------------------------------------------------------------------------------------

@njit(nogil=True, cache=True)
def _crossings(coord, target, out):
    """For every column of ``coord`` (rows, columns), the fractional row at which its finite
    values, monotonic along the column, equal ``target`` (linear between rows; NaN when the
    column is not monotonic or does not bracket it)."""
    ny, nx = coord.shape
    for i in range(nx):
        out[i] = np.nan
        first = -1
        last = -1
        for j in range(ny):
            if math.isfinite(coord[j, i]):
                if first < 0:
                    first = j
                last = j
        if first < 0 or first == last:
            continue
        inc = coord[last, i] > coord[first, i]
        prev = -1
        ok = True
        for j in range(first, last + 1):
            v = coord[j, i]
            if not math.isfinite(v):
                continue
            if prev >= 0:
                pv = coord[prev, i]
                if (inc and v < pv) or ((not inc) and v > pv):
                    ok = False
                    break
            prev = j
        if not ok:
            continue
        prev = -1
        for j in range(first, last + 1):
            v = coord[j, i]
            if not math.isfinite(v):
                continue
            if v == target:
                out[i] = j
                break
            if prev >= 0:
                pv = coord[prev, i]
                if (pv - target) * (v - target) < 0:
                    out[i] = prev + (target - pv) / (v - pv) * (j - prev)
                    break
            prev = j


def _crossing(values: np.ndarray, target: float) -> float:
    """Fractional row at which a (monotonic) column of values equals ``target``."""
    out = np.empty(1)
    _crossings(np.ascontiguousarray(np.asarray(values, np.float64)[:, None]), float(target),
               out)
    return float(out[0])


def _along_slit(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float) -> np.ndarray:
    """Signed offset (arcsec) of each pixel of a (rows, columns) array from (ra0, dec0),
    measured along the slit (the direction of increasing row, per column)."""
    xi, eta = S.sky_to_tan(ra, dec, ra0, dec0)
    dxi = np.gradient(xi, axis=0) if xi.shape[0] > 1 else np.zeros_like(xi)
    deta = np.gradient(eta, axis=0) if eta.shape[0] > 1 else np.ones_like(eta)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.hypot(dxi, deta)
        ux, uy = dxi / norm, deta / norm
    # one direction per column: the median of its rows (NaN off the slit, without numpy's
    # warning: warnings.catch_warnings is not thread-safe and let it through under calops run)
    with np.errstate(all="ignore"):
        ux = S.column_reduce(np.nanmedian, ux)[None, :]
        uy = S.column_reduce(np.nanmedian, uy)[None, :]
    return xi * ux + eta * uy


def locate(slit: S.Slit, geom: S.Geometry, meta: Mapping[str, Any], exp_type: str,
           transposed: bool) -> tuple[int, float, float, np.ndarray] | None:
    """(middle dispersion pixel, its wavelength, cross-dispersion location there, trace) of
    the planned source position, or None when it cannot be placed on the slit (jwst's
    ``location_from_wcs``; working frame)."""
    def tr(a):
        return None if a is None else (np.asarray(a).T if transposed else np.asarray(a))

    lam = tr(geom.wavelength)
    ny, nx = lam.shape
    middle = int(round((nx - 1) / 2.0))
    with np.errstate(all="ignore"):
        col = lam[:, middle]
        middle_wl = float(np.nanmean(col)) if np.isfinite(col).any() else float("nan")
    if exp_type.startswith("NRS"):
        ypos = slit.get("source_ypos")
        sy = tr(geom.slit_y)
        if ypos is None or sy is None:
            return None
        coord, target = sy, float(ypos)
    elif exp_type == "MIR_LRS-FIXEDSLIT":
        dra, ddec = meta.get("dither.dithered_ra"), meta.get("dither.dithered_dec")
        if dra is None or ddec is None or not geom.sky:
            return None
        coord = _along_slit(tr(geom.ra), tr(geom.dec), float(dra), float(ddec))
        target = 0.0
    else:
        return None
    trace = np.empty(nx)
    _crossings(np.ascontiguousarray(coord, dtype=np.float64), float(target), trace)
    location = float(trace[middle])
    if not math.isfinite(location) or location < -0.5 or location > ny - 0.5:
        return None
    return middle, middle_wl, location, trace


# --------------------------------------------------------------------------------------------
# The numba kernel: background fit and box sums, column by column
# --------------------------------------------------------------------------------------------

@njit(nogil=True, cache=True)
def _smooth_rows(img, length):
    """NaN-aware boxcar of ``length`` (odd) along axis 1, edges extended (astropy convolve
    with boundary='extend' and NaN interpolation)."""
    ny, nx = img.shape
    out = np.empty_like(img)
    h = length // 2
    for j in range(ny):
        for i in range(nx):
            s = 0.0
            n = 0
            for k in range(-h, h + 1):
                ii = min(max(i + k, 0), nx - 1)
                v = img[j, ii]
                if math.isfinite(v):
                    s += v
                    n += 1
            out[j, i] = s / n if n > 0 else np.nan
    return out


@njit(nogil=True, cache=True)
def _extract(image, smoothed, vrn, vph, vfl, profile, bgprof, mode, order, out):
    """Per dispersion element i (column): fit the background (mode 0 none, 1 polynomial of
    ``order`` in y in [-1, 1], 2 median) on pixels with bgprof != 0, subtract it, and sum the
    profile-weighted image and variances. ``out`` rows: flux, var_rn, var_ph, var_fl, bkg,
    bvar_rn, bvar_ph, bvar_fl, npixels (filled in place)."""
    ny, nx = image.shape
    npar = order + 1
    ys = np.empty(ny)
    for j in range(ny):
        ys[j] = -1.0 + 2.0 * j / (ny - 1) if ny > 1 else -1.0
    basis = np.empty((ny, npar))
    for j in range(ny):
        b = 1.0
        for k in range(npar):
            basis[j, k] = b
            b *= ys[j]
    bkg = np.zeros(ny)
    pw = np.zeros(ny)
    for i in range(nx):
        for j in range(ny):
            bkg[j] = 0.0
            pw[j] = 0.0
        bv0 = 0.0
        bv1 = 0.0
        bv2 = 0.0
        if mode == 1:
            mat = np.zeros((npar, npar))
            vec = np.zeros(npar)
            for j in range(ny):
                ok = (bgprof[j, i] != 0.0 and math.isfinite(smoothed[j, i])
                      and math.isfinite(image[j, i])
                      and math.isfinite(vrn[j, i] + vph[j, i] + vfl[j, i]))
                if not ok:
                    continue
                for a in range(npar):
                    vec[a] += basis[j, a] * smoothed[j, i]
                    for c in range(npar):
                        mat[a, c] += basis[j, a] * basis[j, c]
            usable = False
            for a in range(npar):
                if mat[a, a] > 0.0:
                    usable = True
            if usable:  # jwst: solve only when cond(mat) < 1e10 (symmetric: eigenvalue ratio)
                ev = np.abs(np.linalg.eigvalsh(mat))
                usable = ev.min() > 0.0 and ev.max() / ev.min() < 1e10
            if usable:
                cov = np.linalg.inv(mat)
                coef = cov @ vec
                for j in range(ny):
                    s = 0.0
                    for a in range(npar):
                        s += coef[a] * basis[j, a]
                    bkg[j] = s
                # sum over source pixels of their basis: the weights of each background pixel
                bm = np.zeros(npar)
                for j in range(ny):
                    if profile[j, i] != 0.0:
                        for a in range(npar):
                            bm[a] += profile[j, i] * basis[j, a]
                t = cov @ bm
                for j in range(ny):
                    ok = (bgprof[j, i] != 0.0 and math.isfinite(smoothed[j, i])
                          and math.isfinite(image[j, i])
                          and math.isfinite(vrn[j, i] + vph[j, i] + vfl[j, i]))
                    if ok:
                        s = 0.0
                        for a in range(npar):
                            s += t[a] * basis[j, a]
                        pw[j] = s
                for j in range(ny):
                    if pw[j] != 0.0:
                        w2 = pw[j] * pw[j]
                        if math.isfinite(vrn[j, i]):
                            bv0 += vrn[j, i] * w2
                        if math.isfinite(vph[j, i]):
                            bv1 += vph[j, i] * w2
                        if math.isfinite(vfl[j, i]):
                            bv2 += vfl[j, i] * w2
        elif mode == 2:
            vals = np.empty(ny)
            n = 0
            nw = 0
            for j in range(ny):
                if bgprof[j, i] != 0.0 and math.isfinite(smoothed[j, i]):
                    vals[n] = smoothed[j, i]
                    n += 1
                if (bgprof[j, i] != 0.0 and math.isfinite(image[j, i])
                        and math.isfinite(vrn[j, i] + vph[j, i] + vfl[j, i])):
                    nw += 1
            med = np.median(vals[:n]) if n > 0 else np.nan
            for j in range(ny):
                bkg[j] = med
            npix = 0.0
            for j in range(ny):
                npix += profile[j, i]
            if nw > 0:
                for j in range(ny):
                    if (bgprof[j, i] != 0.0 and math.isfinite(image[j, i])
                            and math.isfinite(vrn[j, i] + vph[j, i] + vfl[j, i])):
                        w2 = 1.0 / (nw * nw)
                        bv0 += vrn[j, i] * w2
                        bv1 += vph[j, i] * w2
                        bv2 += vfl[j, i] * w2
            k = 1.2 * 1.2 * npix * npix
            bv0 *= k
            bv1 *= k
            bv2 *= k
        f = 0.0
        v0 = 0.0
        v1 = 0.0
        v2 = 0.0
        b = 0.0
        npx = 0.0
        for j in range(ny):
            w = profile[j, i]
            if w == 0.0:
                continue
            x = image[j, i] - bkg[j]
            if not math.isfinite(x):
                continue
            f += x * w
            npx += w
            w2 = w * w
            if math.isfinite(vrn[j, i]):
                v0 += vrn[j, i] * w2
            if math.isfinite(vph[j, i]):
                v1 += vph[j, i] * w2
            if math.isfinite(vfl[j, i]):
                v2 += vfl[j, i] * w2
            if math.isfinite(bkg[j]):
                b += bkg[j] * w
        out[0, i] = f if npx > 1e-8 else np.nan
        out[1, i] = v0 + bv0
        out[2, i] = v1 + bv1
        out[3, i] = v2 + bv2
        out[4, i] = b
        out[5, i] = bv0
        out[6, i] = bv1
        out[7, i] = bv2
        out[8, i] = npx


# --------------------------------------------------------------------------------------------
# One slit
# --------------------------------------------------------------------------------------------

def _source_type(slit: S.Slit, meta: Mapping[str, Any]) -> str | None:
    st = slit.get("srctype") or slit.get("source_type") or meta.get("target.source_type")
    return None if st is None else str(st).upper()


def _nearest(a: np.ndarray | None, y: float, x: float) -> float | None:
    if a is None or not (math.isfinite(y) and math.isfinite(x)):
        return None
    j = min(max(int(round(y)), 0), a.shape[0] - 1)
    i = min(max(int(round(x)), 0), a.shape[1] - 1)
    v = float(a[j, i])
    return v if math.isfinite(v) else None


def extract_slit(slit: S.Slit, meta: Mapping[str, Any], apertures, params: Extract1dParams
                 ) -> S.Spectrum | None:
    """The 1-D spectrum of one slit (None when it has no valid data, as jwst skips it)."""
    exp_type = str(meta.get("exposure.type") or "").upper()
    shape = slit.shape
    if len(shape) != 2:
        raise Extract1dError(f"extract_1d: slit {slit.name} has {len(shape)}-D data; only 2-D "
                             "spectra are extracted")
    if params.extraction_type not in ("box", "optimal", None):
        raise Extract1dError(f"extraction_type must be 'box', 'optimal' or None, got "
                             f"{params.extraction_type!r}")
    if params.bkg_fit not in (None, "poly", "mean", "median"):
        raise Extract1dError(f"bkg_fit must be poly, mean, median or None, got {params.bkg_fit!r}")
    if params.bkg_order is not None and params.bkg_order < 0:
        raise Extract1dError(f"bkg_order must be >= 0, got {params.bkg_order}")
    photom = str(meta.get("cal_step.photom") or "").upper() == "COMPLETE"
    inst = str(meta.get("instrument.name") or "").upper()
    srctype = _source_type(slit, meta)
    usp = params.use_source_posn
    if srctype != "POINT" and usp is None:
        usp = False
    name = str(slit.get("name") or slit.name)
    ep = get_extract_parameters(apertures, shape, name, exp_type, params, usp)
    if ep is None:
        raise Extract1dError(f"extract_1d: the extract1d reference has no aperture for slit "
                             f"{name!r} (nor 'ANY')")
    disp = slit.dispaxis
    t = disp == S.VERTICAL
    if t:
        ep.update(disp_start=ep["ystart"], disp_stop=ep["ystop"], xd_start=ep["xstart"],
                  xd_stop=ep["xstop"])
    else:
        ep.update(disp_start=ep["xstart"], disp_stop=ep["xstop"], xd_start=ep["ystart"],
                  xd_stop=ep["ystop"])

    def tr(a):
        return None if a is None else (np.ascontiguousarray(np.asarray(a).T) if t
                                       else np.asarray(a))

    geom = S.geometry(slit, meta)
    wl = tr(geom.wavelength).astype(np.float64)
    wshape = wl.shape
    if ep["use_source_posn"]:
        loc = locate(slit, geom, meta, exp_type, t)
        if loc is not None:
            middle, _, location, trace = loc
            nom_c, _ = aperture_center(box_profile(wshape, ep, wl)[0], middle)
            shift_by_offset(location - nom_c, ep, update_trace=False)
            ep["trace"] = trace
    off = float(ep.get("position_offset") or 0.0)
    if off:
        shift_by_offset(off, ep, update_trace=True)
    profile, lower, upper = box_profile(wshape, ep, wl)
    profile[~np.isfinite(wl)] = 0.0
    nz = np.flatnonzero(profile.sum(axis=0) > 0)
    left, right = (int(nz[0]), int(nz[-1])) if nz.size else (None, None)
    bgprof = None
    if ep["subtract_background"] and ep.get("bkg_coeff") is not None:
        bgprof, _, _ = box_profile(wshape, ep, wl, "bkg_coeff")
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.isfinite(wl) & (profile > 0)
        wsum = np.where(m, profile, 0.0).sum(axis=0)
        wavelength = np.where(wsum > 0, np.where(m, wl * profile, 0.0).sum(axis=0)
                              / np.where(wsum > 0, wsum, 1.0), np.nan)
    valid = np.isfinite(wavelength)
    if not valid.any():
        return None
    image = tr(np.asarray(slit.arrays["data"], np.float64))
    dq = slit.arrays.get("dq")
    if dq is not None:  # jwst's match_nans_and_flags: DO_NOT_USE pixels are NaN
        image = np.where((tr(np.asarray(dq)) & DQ.DO_NOT_USE) != 0, np.nan, image)
    zeros = np.zeros(wshape)
    var = [tr(np.asarray(slit.arrays[v], np.float64)) if v in slit.arrays and
           slit.arrays[v].shape == shape else zeros for v in ("var_rnoise", "var_poisson",
                                                              "var_flat")]
    mode, order = 0, 0
    if bgprof is not None:
        if ep["bkg_fit"] == "median":
            mode = 2
        elif ep["bkg_fit"] in ("poly", "mean", None):
            mode, order = 1, int(ep["bkg_order"] if ep["bkg_fit"] == "poly" else 0)
    smoothed = image
    if bgprof is not None and ep["smoothing_length"] > 1:
        smoothed = _smooth_rows(np.ascontiguousarray(image), int(ep["smoothing_length"]))
    out = np.zeros((9, wshape[1]))
    _extract(np.ascontiguousarray(image), np.ascontiguousarray(smoothed),
             *(np.ascontiguousarray(v) for v in var), np.ascontiguousarray(profile),
             np.ascontiguousarray(bgprof if bgprof is not None else zeros), mode, order, out)
    sum_flux, f_rn, f_ph, f_fl, bkg, b_rn, b_ph, b_fl, npix = out
    npt = np.where(npix > 0, npix, 1.0)
    surf = sum_flux / npt
    sb_ph, sb_rn, sb_fl = f_ph / npt ** 2, f_rn / npt ** 2, f_fl / npt ** 2
    background = bkg / npt
    b_ph, b_rn, b_fl = b_ph / npt ** 2, b_rn / npt ** 2, b_fl / npt ** 2
    area = slit.get("pixelarea_steradians") or meta.get("photometry.pixelarea_steradians")
    omega = float(area) if (photom and area) else 1.0
    if photom and srctype == "POINT" and inst == "NIRSPEC":
        flux = sum_flux * 1e6
        f_ph, f_rn, f_fl = f_ph * 1e12, f_rn * 1e12, f_fl * 1e12
        surf = np.zeros_like(surf)
        sb_ph = sb_rn = sb_fl = np.zeros_like(surf)
        background = background / omega
        b_ph, b_rn, b_fl = b_ph / omega ** 2, b_rn / omega ** 2, b_fl / omega ** 2
    elif photom:
        flux = sum_flux * omega * 1e6
        f_ph, f_rn, f_fl = (x * omega ** 2 * 1e12 for x in (f_ph, f_rn, f_fl))
    else:
        flux = sum_flux
    err = np.sqrt(f_ph + f_rn + f_fl)
    sb_err = np.sqrt(sb_ph + sb_rn + sb_fl)
    b_err = np.sqrt(b_ph + b_rn + b_fl)
    dqo = np.where(np.isnan(flux), np.uint32(DQ.DO_NOT_USE), np.uint32(0)).astype(np.uint32)
    cols = {"wavelength": wavelength, "flux": flux, "flux_error": err,
            "flux_var_poisson": f_ph, "flux_var_rnoise": f_rn, "flux_var_flat": f_fl,
            "surf_bright": surf, "sb_error": sb_err, "sb_var_poisson": sb_ph,
            "sb_var_rnoise": sb_rn, "sb_var_flat": sb_fl, "dq": dqo, "background": background,
            "bkgd_error": b_err, "bkgd_var_poisson": b_ph, "bkgd_var_rnoise": b_rn,
            "bkgd_var_flat": b_fl, "npixels": npix}
    cols = {k: (np.asarray(v)[valid].astype(np.uint32) if k == "dq"
                else np.asarray(v, np.float64)[valid].copy()) for k, v in cols.items()}
    # sky position at the aperture centre (profile-weighted)
    cy, cx = aperture_center(profile)
    ra, dec = _nearest(tr(geom.ra), cy, cx), _nearest(tr(geom.dec), cy, cx)
    smeta: dict[str, Any] = {"name": name, "spectral_order": 1, "dispersion_direction": disp,
                             "source_type": srctype, "slit_ra": ra, "slit_dec": dec,
                             "detector": meta.get("instrument.detector"),
                             "extraction_type": "box"}
    for k in ("slitlet_id", "source_id", "source_name", "source_alias", "source_xpos",
              "source_ypos", "source_ra", "source_dec", "shutter_state", "quadrant",
              "stellarity", "product.source_id", "product.slit_name", "n_inputs"):
        if slit.get(k) is not None:
            smeta[k] = slit.get(k)
    lo1 = lower + 1 if lower is not None and math.isfinite(lower) else None
    hi1 = upper + 1 if upper is not None and math.isfinite(upper) else None
    l1 = left + 1 if left is not None else None
    r1 = right + 1 if right is not None else None
    if disp == S.HORIZONTAL:
        smeta.update(extraction_xstart=l1, extraction_xstop=r1, extraction_ystart=lo1,
                     extraction_ystop=hi1)
    else:
        smeta.update(extraction_xstart=lo1, extraction_xstop=hi1, extraction_ystart=l1,
                     extraction_ystop=r1)
    smeta["flux_unit"] = "Jy" if photom else "DN/s"
    smeta["sb_unit"] = "MJy/sr" if photom else "DN/s"
    smeta = {k: (float(v) if isinstance(v, (np.floating,)) else v) for k, v in smeta.items()
             if v is not None}
    return S.Spectrum(str(slit.name), cols, smeta)


def extract_model(model: DataModel, refs: Mapping[str, DataModel], params: Extract1dParams
                  ) -> DataModel:
    """Every slit of a 2-D spectral product extracted: an ``x1d`` (one spectrum per slit that
    has valid data; SKIPPED when none has)."""
    if not S.is_spectral_image(model):
        raise Extract1dError(f"extract_1d needs a 2-D spectral product (s2d or cal with "
                             f"wavelengths); got {model!r}")
    aps = _apertures(refs)
    specs = []
    for s in S.slits(model):
        sp = extract_slit(s, model.meta, aps, params)
        if sp is not None:
            specs.append(sp)
    status = "COMPLETE" if specs else "SKIPPED"
    keep = {k: v for k, v in model.meta.items() if not k.startswith("wcs.")}
    return S.spectra_product("x1d", keep, specs, meta={"cal_step.extract_1d": status})


@register("extract_1d", "1.0", "spec2", Extract1dParams, (), keyword="S_EXTR1D",
          optional_reftypes=("extract1d",), instruments=("NIRSPEC", "MIRI"),
          exec_only=("log_increment", "save_profile", "save_scene_model",
                     "save_residual_image"))
def extract_1d(model: DataModel, refs: dict, params: Extract1dParams) -> DataModel:
    """Box-extract 1-D spectra from 2-D spectra (x1d), the aperture placed on the planned
    source position (build 10.0)."""
    return extract_model(model, refs, params)
