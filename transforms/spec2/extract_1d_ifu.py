"""extract_1d for IFU cubes: a pure function that extract_1d 1.1 and 1.2 (``jwst_clip``: jwst
3.0's background rules) call for s3d products (jwst 3.0's ``ifu_extract1d`` with build 10.0's changes).

Per cube, per wavelength plane:

- **Source type**: ``ifu_set_srctype`` (MIRI only, build 10.0) overrides the cube's SRCTYPE
  (``target.source_type``; if srctype never ran, the APT type ``target.source_type_apt``),
  else EXTENDED.
- **POINT**: a circular aperture of the extract1d reference's ``radius`` (arcsec, interpolated
  at the plane's wavelength; MIRI: times ``ifu_rscale / 2`` when given, build 10.0: 0.5-3 PSF
  FWHM) centred on ``center_xy`` if given, else (``ifu_autocen``) the brightest source of the
  median-collapsed cube (DAOStarFinder, fwhm 3, 3 sigma), else the spaxel nearest the target
  RA/Dec (jwst's ``locn_from_wcs``; the cube centre when it falls on an edge). Background: the
  reference's annulus, when ``subtract_background`` (the parameter, else the reference) says
  so, from the voxels that survive a sigma clip (``bkg_sigma_clip``) of the plane's covered
  voxels, scaled by the ratio of the aperture and annulus areas counted on the coverage map.
  Overlaps are exact (photutils' geometry, jwst's ``method="exact"`` references).
- **EXTENDED**: the whole plane; the background column is the sigma-clipped plane, no
  subtraction.
- Columns (stdatamodels' spec_table; MIRI also ``rf_flux``, ``rf_surf_bright``,
  ``rf_background``): flux in Jy (sum x spaxel solid angle), surface brightness MJy/sr (mean
  over the aperture's covered area), variances from the cube's ERR (its only error, as jwst),
  times ``ifu_covar_scale^2``; DQ DO_NOT_USE where the aperture covers nothing; wavelengths
  from the cube.
- **MIRI residual fringes** (``ifu_rfcorr``, default on in jwst 3.0): fitted and removed in 1-D
  *after* the normalisation by the aperture area (build 10.0), on the flux, the surface
  brightness and the background, channel by channel (``residual_fringe.fit_column``);
  a column whose fit does not help is left as it is.
- **Aperture correction** (POINT, ``apply_apcorr``, an apcorr reference): the correction at
  the extraction radius, interpolated in wavelength and radius (jwst's ApCorrRadial),
  multiplies flux, surface brightness and their errors (MIRI: the rf columns too).

The spectrum is named after the cube (stage 3: the cube name, e.g. ``ch1-short``); its
``slit_ra``/``slit_dec`` are the aperture centre's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms import ifu as I
from transforms import spectral as S
from transforms.model import DataModel
from transforms.spec2._ifu_common import IfuStepError

SPEC_COLUMNS = S.SPEC_COLUMNS
RF_COLUMNS = ("rf_flux", "rf_surf_bright", "rf_background")


def _interp(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """np.interp with linear extrapolation (scipy's interp1d fill_value="extrapolate")."""
    order = np.argsort(xp)
    xp, fp = np.asarray(xp, np.float64)[order], np.asarray(fp, np.float64)[order]
    out = np.interp(x, xp, fp)
    if xp.size > 1:
        lo, hi = x < xp[0], x > xp[-1]
        out = np.where(lo, fp[0] + (fp[1] - fp[0]) / (xp[1] - xp[0]) * (x - xp[0]), out)
        out = np.where(hi, fp[-1] + (fp[-1] - fp[-2]) / (xp[-1] - xp[-2]) * (x - xp[-1]), out)
    return out


def _circle(shape: tuple[int, int], xc: float, yc: float, r: float) -> np.ndarray:
    from photutils.geometry import circular_overlap_grid

    ny, nx = shape
    if r <= 0:
        return np.zeros(shape)
    return circular_overlap_grid(-0.5 - xc, nx - 0.5 - xc, -0.5 - yc, ny - 0.5 - yc,
                                 nx, ny, float(r), 1, 5)


def _clipped_planes(data: np.ndarray, use: np.ndarray, sigma: float, maxiters: int = 5
                    ) -> np.ndarray:
    """Per plane, the voxels astropy's ``sigma_clipped_stats(sigma=..., maxiters=5)`` keeps
    (median centre, std), among ``use``."""
    nz = data.shape[0]
    a = np.where(use, data, np.nan).reshape(nz, -1).astype(np.float64)
    keep = np.isfinite(a)
    for _ in range(maxiters):
        with np.errstate(invalid="ignore"), _quiet():
            v = np.where(keep, a, np.nan)
            med = np.nanmedian(v, axis=1)
            std = np.nanstd(v, axis=1)
        new = keep & (np.abs(a - med[:, None]) <= sigma * std[:, None])
        if np.array_equal(new, keep):
            break
        keep = new
    return keep.reshape(data.shape)


def _jwst_clipped_planes(data: np.ndarray, wmap: np.ndarray, sigma: float
                         ) -> tuple[np.ndarray, np.ndarray]:
    """jwst 3.0's background clip (``ifu._apply_bkg_sigma_clip``), per plane: astropy's
    ``sigma_clipped_stats(sigma=..., maxiters=5)`` of the voxels with weight >= 1 (jwst clamps
    the weight map at 1 and takes the voxels equal to 1) gives a mean and std; the voxels within
    ``mean +- sigma std`` are kept. Returns (kept, has_stats): a plane with no such voxel is not
    clipped (``has_stats`` False)."""
    from astropy.stats import sigma_clipped_stats

    nz = data.shape[0]
    keep = np.ones(data.shape, bool)
    has = np.zeros(nz, bool)
    for k in range(nz):
        st = data[k][wmap[k] >= 1]
        if st.size == 0:
            continue
        with _quiet():
            mean, _, std = sigma_clipped_stats(st, sigma=sigma, maxiters=5)
        has[k] = True
        d = data[k]
        keep[k] = ~((d < mean - sigma * std) | (d > mean + sigma * std))
    return keep, has


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


def target_spaxel(cube: I.Cube) -> tuple[float, float] | None:
    """jwst's ``locn_from_wcs``: the spaxel whose centre is nearest the target RA/Dec
    (None if none is known or it lies on the cube's edge)."""
    ra, dec = cube.get("target.ra"), cube.get("target.dec")
    if ra is None or dec is None:
        return None
    nz, ny, nx = cube.shape
    m = cube.meta
    if str(m.get("wcsinfo.ctype1")) != "RA---TAN":
        return None
    c1, c2 = float(m["wcsinfo.cdelt1"]) * 3600.0, float(m["wcsinfo.cdelt2"]) * 3600.0
    rot = math.degrees(math.atan2(float(m["wcsinfo.pc1_2"]), -float(m["wcsinfo.pc1_1"])))
    xi, eta = I.radec_to_std(np.array([float(ra)]), np.array([float(dec)]),
                             float(m["wcsinfo.crval1"]), float(m["wcsinfo.crval2"]), rot)
    x = xi[0] / c1 + float(m["wcsinfo.crpix1"]) - 1.0
    y = eta[0] / c2 + float(m["wcsinfo.crpix2"]) - 1.0
    i, j = int(round(x)), int(round(y))
    if i <= 0 or j <= 0 or i >= nx - 1 or j >= ny - 1:
        return None
    return float(i), float(j)


def spaxel_sky(cube: I.Cube, x: float, y: float) -> tuple[float, float]:
    m = cube.meta
    if str(m.get("wcsinfo.ctype1")) != "RA---TAN":
        return float("nan"), float("nan")
    c1, c2 = float(m["wcsinfo.cdelt1"]) * 3600.0, float(m["wcsinfo.cdelt2"]) * 3600.0
    rot = math.degrees(math.atan2(float(m["wcsinfo.pc1_2"]), -float(m["wcsinfo.pc1_1"])))
    xi = (x + 1.0 - float(m["wcsinfo.crpix1"])) * c1
    eta = (y + 1.0 - float(m["wcsinfo.crpix2"])) * c2
    ra, dec = I.std_to_radec(np.array([xi]), np.array([eta]), float(m["wcsinfo.crval1"]),
                             float(m["wcsinfo.crval2"]), rot if abs(rot) > 0 else None)
    return float(ra[0]), float(dec[0])


def _autocenter(cube: I.Cube) -> tuple[float, float] | None:
    from astropy.stats import sigma_clipped_stats
    from photutils.detection import DAOStarFinder

    data = np.asarray(cube.arrays["data"], np.float64)
    w = I.cube_wavelengths(cube.meta, cube.arrays)
    sel = w < 26.0
    with _quiet():
        coll = np.nanmedian(data[sel], axis=0)
    coll = np.where(np.isfinite(coll), coll, 0.0)
    _, med, rms = sigma_clipped_stats(coll)
    if not rms > 0:
        return None
    found = DAOStarFinder(fwhm=3.0, threshold=3 * rms)(coll - med)
    if found is None or len(found) == 0:
        return None
    k = int(np.argmax(np.asarray(found["flux"])))
    return float(found["x_centroid"][k]), float(found["y_centroid"][k])


def source_type(cube: I.Cube, params: Any) -> str:
    st = getattr(params, "ifu_set_srctype", None)
    inst = str(cube.get("instrument.name", "")).upper()
    if st is not None and inst == "MIRI":
        return str(st).upper()
    v = cube.get("target.source_type") or cube.get("target.source_type_apt")
    v = str(v).upper() if v is not None else None
    return v if v in ("POINT", "EXTENDED") else "EXTENDED"


def _ref_table(ref: DataModel | None) -> dict[str, np.ndarray] | None:
    if ref is None:
        return None
    out = {}
    for k in ("wavelength", "radius", "inner_bkg", "outer_bkg"):
        a = ref.arrays.get(f"data.{k}")
        if a is None:
            return None
        out[k] = np.asarray(a, np.float64).ravel()
    return out


def extract_cube(cube: I.Cube, refs: Mapping[str, DataModel], params: Any,
                 jwst_clip: bool = False) -> S.Spectrum:
    """One cube's spectrum (see the module docstring). ``jwst_clip`` (extract_1d 1.2): jwst
    3.0's background clip (``_jwst_clipped_planes``), the point-source background variance over
    the whole annulus, and the variance columns zero for a cube without VAR_* arrays, as jwst;
    False: extract_1d 1.1's rules."""
    data = np.asarray(cube.arrays["data"], np.float64)
    if data.ndim != 3:
        raise IfuStepError(f"extract_1d: an IFU cube is 3-D, got {data.shape}")
    nz, ny, nx = data.shape
    err = np.asarray(cube.arrays.get("err", np.zeros(data.shape)), np.float64)
    var = err * err
    wmap = np.asarray(cube.arrays.get("weightmap", np.isfinite(data).astype(np.float32)))
    covered = wmap > 0
    wave = I.cube_wavelengths(cube.meta, cube.arrays)
    inst = str(cube.get("instrument.name", "")).upper()
    stype = source_type(cube, params)
    ref = (refs or {}).get("extract1d")
    table = _ref_table(ref)
    scale = math.sqrt(float(cube.get("photometry.pixelarea_arcsecsq") or 0.0)) or None
    center_xy = getattr(params, "center_xy", None)
    x_c = y_c = None
    if center_xy is not None:
        if len(center_xy) != 2:
            raise IfuStepError("extract_1d center_xy needs two values (x, y)")
        x_c, y_c = float(center_xy[0]), float(center_xy[1])
    elif stype == "POINT":
        loc = _autocenter(cube) if getattr(params, "ifu_autocen", False) else None
        if loc is None:
            loc = target_spaxel(cube)
        if loc is None:
            x_c, y_c = nx / 2.0, ny / 2.0
        else:
            x_c, y_c = loc
    sub_bkg = False
    radius = np.zeros(nz)
    r_in = np.zeros(nz)
    r_out = np.zeros(nz)
    if stype == "POINT":
        if table is None or scale is None:
            raise IfuStepError("extract_1d: a point source in a cube needs the extract1d "
                               "reference (radius per wavelength) and the cube's spaxel area")
        rad = table["radius"]
        rscale = getattr(params, "ifu_rscale", None)
        if inst == "MIRI" and rscale is not None:
            if not 0.5 <= float(rscale) <= 3.0:
                raise IfuStepError(f"extract_1d ifu_rscale must be 0.5-3, got {rscale}")
            rad = rad * float(rscale) / 2.0
        radius = _interp(wave, table["wavelength"], rad) / scale
        r_in = _interp(wave, table["wavelength"], table["inner_bkg"]) / scale
        r_out = _interp(wave, table["wavelength"], table["outer_bkg"]) / scale
        sub_bkg = bool(ref.get("subtract_background", False))
        if getattr(params, "subtract_background", None) is not None:
            sub_bkg = bool(params.subtract_background)
    else:
        x_c, y_c = nx / 2.0 - 0.5, ny / 2.0 - 0.5
    sigma = float(getattr(params, "bkg_sigma_clip", 3.0))
    if jwst_clip:
        keep, has_stats = _jwst_clipped_planes(data, wmap, sigma)
    else:
        keep = _clipped_planes(data, covered & np.isfinite(data), sigma)
        has_stats = np.ones(nz, bool)
    flux = np.zeros(nz)
    fvar = np.zeros(nz)
    npix = np.ones(nz)
    bkg = np.zeros(nz)
    bvar = np.zeros(nz)
    npix_b = np.ones(nz)
    dq = np.zeros(nz, np.uint32)
    full = np.ones((ny, nx))
    for k in range(nz):
        cov = covered[k]
        good = cov & np.isfinite(data[k])
        d = np.where(good, data[k], 0.0)
        v = np.where(good & np.isfinite(var[k]), var[k], 0.0)
        ap = _circle((ny, nx), x_c, y_c, radius[k]) if stype == "POINT" else full
        area = float(np.sum(ap * cov))
        if area == 0:
            dq[k] = DQ.DO_NOT_USE
            area = float(np.sum(ap)) or 1.0
        npix[k] = area
        flux[k] = float(np.sum(ap * d))
        fvar[k] = float(np.sum(ap * v))
        if stype == "POINT" and sub_bkg and 0 < r_in[k] < r_out[k]:
            ann = _circle((ny, nx), x_c, y_c, r_out[k]) - _circle((ny, nx), x_c, y_c, r_in[k])
            a_area = float(np.sum(ann * cov)) or float(np.sum(ann))
            if a_area > 0:
                use = keep[k] & good
                bkg[k] = float(np.sum(ann * np.where(use, data[k], 0.0)))
                bvar[k] = float(np.sum(ann * np.where(good if jwst_clip else use, v, 0.0)))
                norm = area / a_area
                flux[k] -= bkg[k] * norm
                fvar[k] += bvar[k] * norm * norm
                npix_b[k] = a_area
            else:
                npix_b[k] = 0.0
        elif stype == "EXTENDED" and not has_stats[k]:
            npix_b[k] = 0.0  # jwst: no voxel to clip on, no background
        elif stype == "EXTENDED":
            use = keep[k] & good
            bkg[k] = float(np.sum(np.where(use, data[k], 0.0)))
            bvar[k] = float(np.sum(np.where(use, v, 0.0)))
            npix_b[k] = float(np.sum(use))
        else:
            npix_b[k] = 0.0
    nonan = np.where(npix > 0, npix, 1.0)
    nonan_b = np.where(npix_b > 0, npix_b, 1.0)
    sb = flux / nonan
    sb_var = fvar / nonan ** 2
    bkg_sb = bkg / nonan_b
    bkg_var = bvar / nonan_b ** 2
    sr = float(cube.get("photometry.pixelarea_steradians") or 1.0)
    cols: dict[str, np.ndarray] = {}
    rf = None
    if inst == "MIRI" and getattr(params, "ifu_rfcorr", True):
        rf = (_rf1d(flux, wave, cube), _rf1d(sb, wave, cube), _rf1d(bkg_sb, wave, cube))
    cov2 = float(getattr(params, "ifu_covar_scale", 1.0)) ** 2
    cols["wavelength"] = wave
    cols["flux"] = flux * sr * 1e6
    fvj = fvar * sr * sr * 1e12 * cov2
    cols["flux_error"] = np.sqrt(fvj)
    cols["flux_var_poisson"] = fvj
    cols["flux_var_rnoise"] = np.zeros(nz)
    cols["flux_var_flat"] = np.zeros(nz)
    cols["surf_bright"] = sb
    cols["sb_error"] = np.sqrt(sb_var * cov2)
    cols["sb_var_poisson"] = sb_var * cov2
    cols["sb_var_rnoise"] = np.zeros(nz)
    cols["sb_var_flat"] = np.zeros(nz)
    cols["dq"] = dq
    cols["background"] = bkg_sb
    cols["bkgd_error"] = np.sqrt(bkg_var * cov2)
    cols["bkgd_var_poisson"] = bkg_var * cov2
    cols["bkgd_var_rnoise"] = np.zeros(nz)
    cols["bkgd_var_flat"] = np.zeros(nz)
    cols["npixels"] = npix
    if jwst_clip and "var_poisson" not in cube.arrays:  # jwst: only generalised errors
        for c in ("flux_var_poisson", "sb_var_poisson", "bkgd_var_poisson"):
            cols[c] = np.zeros(nz)
    if inst == "MIRI":
        if rf is None:
            rf = (np.full(nz, np.nan),) * 3
        cols["rf_flux"] = rf[0] * sr * 1e6
        cols["rf_surf_bright"] = rf[1]
        cols["rf_background"] = rf[2]
    if stype == "POINT" and getattr(params, "apply_apcorr", True):
        corr = _apcorr((refs or {}).get("apcorr"), wave, radius * (scale or 1.0))
        if corr is not None:
            for c in ("flux", "flux_error", "surf_bright", "sb_error", "rf_flux",
                      "rf_surf_bright"):
                if c in cols:
                    cols[c] = cols[c] * corr
            for c in ("flux_var_poisson", "flux_var_rnoise", "flux_var_flat",
                      "sb_var_poisson", "sb_var_rnoise", "sb_var_flat"):
                cols[c] = cols[c] * corr * corr
    # NaN wavelengths: flagged, trimmed at the ends (jwst's nans_in_wavelength)
    bad_w = ~np.isfinite(wave)
    cols["dq"] = np.where(bad_w, cols["dq"] | DQ.DO_NOT_USE, cols["dq"]).astype(np.uint32)
    cols["dq"] = np.where(~np.isfinite(cols["flux"]), cols["dq"] | DQ.DO_NOT_USE,
                          cols["dq"]).astype(np.uint32)
    if bad_w.any() and not bad_w.all():
        idx = np.flatnonzero(~bad_w)
        cols = {k: v[idx[0]:idx[-1] + 1] for k, v in cols.items()}
    cols = {k: (np.asarray(v, np.uint32) if k == "dq" else np.asarray(v, np.float64))
            for k, v in cols.items()}
    ra, dec = spaxel_sky(cube, x_c, y_c) if x_c is not None else (float("nan"),) * 2
    meta = {"name": cube.name, "source_type": stype, "slit_ra": ra, "slit_dec": dec,
            "extraction_x": x_c, "extraction_y": y_c,
            "detector": cube.get("instrument.detector"),
            "position_angle": cube.get("aperture.position_angle"),
            "flux_unit": "Jy", "sb_unit": "MJy/sr", "spectral_order": 1,
            "dispersion_direction": cube.get("wcsinfo.dispersion_direction")}
    return S.Spectrum(cube.name, cols, {k: v for k, v in meta.items() if v is not None})


def _channel_ranges(cube: I.Cube, wave: np.ndarray) -> list[tuple[str, np.ndarray]]:
    from transforms.instruments.miri import mrs

    chans = sorted(str(cube.get("instrument.channel") or ""))
    out = []
    for ch in chans:
        if ch not in mrs.CHANNELS:
            continue
        lo = min(mrs.WAVE_RANGE[(ch, b)][0] for b in mrs.BANDS)
        hi = max(mrs.WAVE_RANGE[(ch, b)][1] for b in mrs.BANDS)
        out.append((ch, (wave >= lo) & (wave <= hi)))
    return out


def _rf1d(values: np.ndarray, wave: np.ndarray, cube: I.Cube) -> np.ndarray:
    """The 1-D residual fringe correction of a spectrum, channel by channel; points where no
    fit helped keep their values."""
    from transforms.spec2.residual_fringe import fit_column, freq_table

    out = np.array(values, np.float64, copy=True)
    for ch, sel in _channel_ranges(cube, wave):
        idx = np.flatnonzero(sel & np.isfinite(values) & (values != 0))
        if idx.size < 40:
            continue
        s = 1.0 / wave[idx]
        order = np.argsort(s)
        fac = fit_column(s[order], values[idx][order], np.ones(idx.size), freq_table(None))
        if fac is None:
            continue
        tmp = np.ones(idx.size)
        tmp[order] = fac
        out[idx] = values[idx] / tmp
    return out


def _apcorr(ref: DataModel | None, wave: np.ndarray, radius_arcsec: np.ndarray
            ) -> np.ndarray | None:
    """jwst's ApCorrRadial: interpolate the table in wavelength, then in radius (arcsec)."""
    if ref is None:
        return None
    w = ref.arrays.get("apcorr_table.wavelength")
    r = ref.arrays.get("apcorr_table.radius")
    a = ref.arrays.get("apcorr_table.apcorr")
    if w is None or r is None or a is None:
        return None
    w = np.asarray(w, np.float64).ravel()
    r = np.asarray(r, np.float64)
    a = np.asarray(a, np.float64)
    rr = np.stack([_interp(wave, w, r[i]) for i in range(r.shape[0])])
    aa = np.stack([_interp(wave, w, a[i]) for i in range(a.shape[0])])
    out = np.ones(wave.size)
    for i in range(wave.size):
        out[i] = float(_interp(np.array([radius_arcsec[i]]), rr[:, i], aa[:, i])[0])
    return out


def extract_ifu(model: DataModel, refs: Mapping[str, DataModel], params: Any,
                jwst_clip: bool = False) -> DataModel:
    """The x1d of an s3d product: one spectrum per cube (``jwst_clip``: see extract_cube)."""
    cubes = I.cubes(model)
    specs = [extract_cube(c, refs, params, jwst_clip) for c in cubes]
    base = {k: v for k, v in cubes[0].meta.items() if not k.startswith(("wcsinfo.", "ifu."))}
    base.pop("cube.name", None)
    return S.spectra_product("x1d", base, specs,
                             meta={"cal_step.extract_1d": "COMPLETE", "model_type":
                                   "MRSMultiSpecModel" if str(base.get("instrument.name"))
                                   .upper() == "MIRI" else "MultiSpecModel"})


def cube_names(model: DataModel) -> Sequence[str]:
    return [c.name for c in I.cubes(model)]
