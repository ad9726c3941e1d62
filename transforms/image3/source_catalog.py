"""source_catalog: segmentation and aperture photometry of the stage-3 mosaic.

As JWST's ``source_catalog`` (segmentation star finder): a background map (``bkg_boxsize``),
a Gaussian-smoothed detection image (``kernel_fwhm``), ``photutils.segmentation`` detection
(``snr_threshold``, ``npixels``) and deblending, isophotal and centroid measurements from
``photutils.segmentation.SourceCatalog``, then circular-aperture photometry at three
encircled-energy radii (``aperture_ee1/2/3``) with a local background annulus, an aperture
correction to total flux, concentration indices and the ``is_extended`` star/galaxy flag.

Aperture radii and corrections come from an ``apcorr`` reference (``refs["apcorr"]``: arrays
``eefraction``, ``radius`` [pixels of the instrument], ``apcorr``, plus ``skyin``/``skyout`` in
meta, as JWST's NIRCam apcorr table for the product's filter/pupil). Without one, the
encircled-energy curve is measured from the mosaic's brightest compact sources (a growth curve
out to 6 x ``kernel_fwhm``); with no usable star either, a Gaussian PSF of ``kernel_fwhm``.

Fluxes are in Jy (data in MJy/sr x pixel area), magnitudes AB. The output is a ``catalog``
DataModel whose arrays are the table columns, named as JWST's ``_cat.ecsv``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from transforms.model import DataModel
from transforms.registry import register

AB_ZEROPOINT_JY = 3631.0


class SourceCatalogError(ValueError):
    """Bad source_catalog parameters or inputs."""


@dataclass(frozen=True)
class SourceCatalogParams:
    """JWST source_catalog parameters (spec defaults) for the segmentation finder."""

    starfinder: str = "segmentation"  # only "segmentation" (JWST's default) is implemented
    bkg_boxsize: int = 1000
    kernel_fwhm: float = 2.0
    snr_threshold: float = 3.0
    npixels: int = 25
    connectivity: int = 8
    nlevels: int = 32
    contrast: float = 0.001
    multithresh_mode: str = "exponential"
    localbkg_width: int = 0
    apermask_method: str = "correct"
    deblend: bool = True
    aperture_ee1: int = 30
    aperture_ee2: int = 50
    aperture_ee3: int = 70
    ci1_star_threshold: float = 2.0
    ci2_star_threshold: float = 1.8


@dataclass(frozen=True)
class ApertureTable:
    """EE fraction -> radius (mosaic pixels) and aperture correction, plus the sky annulus."""

    radii: dict[int, float]
    apcorr: dict[int, float]
    skyin: float
    skyout: float
    source: str


# --------------------------------------------------------------------------------------------
# Units


def pixel_area_sr(model: DataModel) -> float:
    """Solid angle of one mosaic pixel (from the tangent-plane grid, else photometry meta)."""
    tp = model.get("wcs.tangent_plane")
    if tp and tp.get("pixel_scale_arcsec"):
        s = float(tp["pixel_scale_arcsec"]) / (3600.0 * 180.0 / math.pi)
        return s * s
    area = model.get("photometry.pixelarea_steradians")
    if area:
        return float(area)
    raise SourceCatalogError("cannot convert to Jy: the mosaic has neither wcs.tangent_plane nor "
                             "photometry.pixelarea_steradians metadata")


def abmag(flux_jy: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux_jy > 0, -2.5 * np.log10(flux_jy / AB_ZEROPOINT_JY), np.nan)


def abmag_err(flux: np.ndarray, err: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, 2.5 / math.log(10) * err / flux, np.nan)


# --------------------------------------------------------------------------------------------
# Apertures


def gaussian_ee_radius(ee: float, fwhm: float) -> float:
    """Radius enclosing fraction ``ee`` of a circular Gaussian of ``fwhm``."""
    sigma = fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    return sigma * math.sqrt(-2.0 * math.log(1.0 - ee))


def _aper_sums(data: np.ndarray, x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    from photutils.aperture import CircularAperture, aperture_photometry

    t = aperture_photometry(data, CircularAperture(np.column_stack([x, y]), r=r), method="exact")
    return np.asarray(t["aperture_sum"], dtype=np.float64)


def growth_curve(data: np.ndarray, x: np.ndarray, y: np.ndarray, rmax: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Median normalised encircled-energy curve of sources at (x, y) out to ``rmax``.

    Returns (radii, ee, index of the sources used); None when no source has a positive total.
    """
    if x.size == 0:
        return None
    radii = np.linspace(0.5, rmax, 48)
    c = np.array([_aper_sums(data, x, y, r) for r in radii])  # (nr, nsrc)
    total = c[-1]
    ok = np.isfinite(total) & (total > 0) & np.all(np.isfinite(c), axis=0)
    if not ok.any():
        return None
    ee = np.median(c[:, ok] / total[ok], axis=1)
    return radii, np.maximum.accumulate(ee), np.flatnonzero(ok)


def aperture_table(data: np.ndarray, cat_x: np.ndarray, cat_y: np.ndarray, isolated: np.ndarray,
                   flux: np.ndarray, p: SourceCatalogParams, apcorr_ref: DataModel | None,
                   pixel_scale_ratio: float = 1.0) -> ApertureTable:
    """Radii and corrections for the three EE apertures (reference, growth curve, or Gaussian)."""
    ees = (p.aperture_ee1, p.aperture_ee2, p.aperture_ee3)
    for ee in ees:
        if not 0 < ee < 100:
            raise SourceCatalogError(f"aperture_ee values must be percentages in (0, 100), "
                                     f"got {ee}")
    if not ees[0] < ees[1] < ees[2]:
        raise SourceCatalogError(f"aperture_ee1 < ee2 < ee3 is required, got {ees}")
    if apcorr_ref is not None:
        try:
            eef = np.asarray(apcorr_ref["eefraction"], dtype=np.float64)
            rad = np.asarray(apcorr_ref["radius"], dtype=np.float64) / pixel_scale_ratio
            cor = np.asarray(apcorr_ref["apcorr"], dtype=np.float64)
        except KeyError as exc:
            raise SourceCatalogError("apcorr reference needs eefraction, radius and apcorr "
                                     "arrays") from exc
        order = np.argsort(eef)
        radii = {ee: float(np.interp(ee / 100, eef[order], rad[order])) for ee in ees}
        corr = {ee: float(np.interp(ee / 100, eef[order], cor[order])) for ee in ees}
        skyin = float(apcorr_ref.get("skyin") or 2.0 * radii[ees[2]]) / pixel_scale_ratio
        skyout = float(apcorr_ref.get("skyout") or 3.0 * radii[ees[2]]) / pixel_scale_ratio
        return ApertureTable(radii, corr, skyin, skyout, "apcorr reference")
    rmax = 6.0 * p.kernel_fwhm
    ny, nx = data.shape
    inside = (cat_x > rmax) & (cat_x < nx - 1 - rmax) & (cat_y > rmax) & (cat_y < ny - 1 - rmax)
    pick = np.flatnonzero(isolated & inside & np.isfinite(flux))
    pick = pick[np.argsort(-flux[pick])][:20]
    curve = growth_curve(np.nan_to_num(data), cat_x[pick], cat_y[pick], rmax) if pick.size >= 3 \
        else None
    if curve is not None:
        r, ee, used = curve
        radii = {e: float(np.interp(e / 100, ee, r)) for e in ees}
        # the correction is measured at the chosen radius itself (no interpolation bias)
        d = np.nan_to_num(data)
        xs, ys = cat_x[pick][used], cat_y[pick][used]
        total = _aper_sums(d, xs, ys, rmax)
        corr = {e: float(1.0 / np.median(_aper_sums(d, xs, ys, radii[e]) / total)) for e in ees}
        return ApertureTable(radii, corr, rmax, rmax + 2 * p.kernel_fwhm,
                             f"growth curve of {used.size} sources")
    radii = {e: gaussian_ee_radius(e / 100, p.kernel_fwhm) for e in ees}
    return ApertureTable(radii, {e: 100.0 / e for e in ees}, rmax, rmax + 2 * p.kernel_fwhm,
                         "gaussian psf of kernel_fwhm")


# --------------------------------------------------------------------------------------------
# Detection


def _background(data: np.ndarray, mask: np.ndarray, boxsize: int):
    from transforms.image3.detect import background

    level, rms = background(data, mask, boxsize)
    return np.broadcast_to(np.asarray(level, np.float64), data.shape), rms


def segment(data: np.ndarray, mask: np.ndarray, p: SourceCatalogParams):
    """(segmentation image or None, background-subtracted data, convolved data, bkg rms)."""
    from astropy.convolution import Gaussian2DKernel, convolve
    from photutils.segmentation import deblend_sources, detect_sources

    bkg, rms = _background(data, mask, p.bkg_boxsize)
    sub = np.where(mask, 0.0, data - bkg)
    sigma = p.kernel_fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    kernel = Gaussian2DKernel(sigma, x_size=int(2 * math.ceil(3 * sigma) + 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conv = convolve(sub, kernel, normalize_kernel=True, boundary="extend")
    conv = np.where(mask | ~np.isfinite(conv), 0.0, conv)
    if not rms > 0 or min(data.shape) < 3:
        return None, sub, conv, rms
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        segm = detect_sources(conv, p.snr_threshold * rms, p.npixels,
                              connectivity=p.connectivity, mask=mask)
        if segm is not None and p.deblend:
            segm = deblend_sources(conv, segm, p.npixels, n_levels=p.nlevels,
                                   contrast=p.contrast, mode=p.multithresh_mode,
                                   connectivity=p.connectivity, progress_bar=False)
    return segm, sub, conv, rms


# --------------------------------------------------------------------------------------------
# The step

_COLUMNS = ("label", "xcentroid", "ycentroid", "sky_centroid_ra", "sky_centroid_dec",
            "aper_bkg_flux", "aper_bkg_flux_err")


def _empty_catalog(mosaic: DataModel, p: SourceCatalogParams, info: dict) -> DataModel:
    names = list(_COLUMNS)
    for ee in (p.aperture_ee1, p.aperture_ee2, p.aperture_ee3):
        names += [f"aper{ee}_flux", f"aper{ee}_flux_err", f"aper{ee}_abmag", f"aper{ee}_abmag_err"]
    names += ["aper_total_flux", "aper_total_flux_err", "aper_total_abmag", "aper_total_abmag_err",
              f"CI_{p.aperture_ee2}_{p.aperture_ee1}", f"CI_{p.aperture_ee3}_{p.aperture_ee2}",
              f"CI_{p.aperture_ee3}_{p.aperture_ee1}", "is_extended", "nn_dist",
              "isophotal_flux", "isophotal_flux_err", "isophotal_abmag", "isophotal_abmag_err",
              "isophotal_area", "semimajor_sigma", "semiminor_sigma", "ellipticity", "orientation"]
    arrays = {n: np.zeros(0, np.int64 if n == "label" else bool if n == "is_extended"
                          else np.float64) for n in names}
    return DataModel("catalog", arrays, _catalog_meta(mosaic, info))


def _catalog_meta(mosaic: DataModel, info: dict) -> dict:
    keep = ("instrument.", "observation.", "program.")
    meta = {k: v for k, v in mosaic.meta.items() if k.startswith(keep)}
    meta.update({"source_catalog." + k: v for k, v in info.items()})
    meta["cal_step.source_catalog"] = "COMPLETE"
    meta["units"] = {"flux": "Jy", "abmag": "mag(AB)", "centroid": "pix (0-based)",
                     "sky_centroid": "deg", "isophotal_area": "pix2"}
    return meta


def _check(mosaic: DataModel, p: SourceCatalogParams) -> None:
    if "data" not in mosaic.arrays or np.ndim(mosaic["data"]) != 2:
        raise SourceCatalogError(f"source_catalog needs a 2-D i2d mosaic, got {mosaic!r}")
    if p.kernel_fwhm <= 0 or p.snr_threshold <= 0 or p.npixels < 1:
        raise SourceCatalogError("kernel_fwhm and snr_threshold must be positive and npixels >= 1")
    if p.starfinder != "segmentation":
        raise SourceCatalogError(f"source_catalog starfinder {p.starfinder!r} is not implemented; "
                                 "calops uses 'segmentation' (JWST's default)")
    if p.connectivity not in (4, 8):
        raise SourceCatalogError(f"connectivity must be 4 or 8, got {p.connectivity}")


@register("source_catalog", "1.0", "image3", SourceCatalogParams,
          optional_reftypes=("apcorr", "abvegaoffset"), keyword="S_SRCCAT")
def source_catalog(mosaic: DataModel, refs: dict, params: SourceCatalogParams) -> DataModel:
    """Segmentation catalogue of the mosaic with aperture photometry in Jy and AB magnitudes."""
    from photutils.aperture import (ApertureStats, CircularAnnulus, CircularAperture,
                                    aperture_photometry)
    from photutils.segmentation import SourceCatalog
    from scipy.spatial import cKDTree

    p = params
    _check(mosaic, p)
    data = np.asarray(mosaic["data"], dtype=np.float64)
    mask = ~np.isfinite(data)
    if "wht" in mosaic.arrays:
        mask |= ~(np.asarray(mosaic["wht"]) > 0)
    err = np.asarray(mosaic["err"], np.float64) if "err" in mosaic.arrays else None
    if err is not None:
        err = np.where(np.isfinite(err) & ~mask, err, 0.0)
    if mask.all() or data.size == 0:
        return _empty_catalog(mosaic, p, {"nsources": 0})
    segm, sub, conv, rms = segment(data, mask, p)
    if segm is None or segm.n_labels == 0:
        return _empty_catalog(mosaic, p, {"nsources": 0, "bkg_rms": float(rms)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cat = SourceCatalog(sub, segm, convolved_data=conv, error=err, mask=mask,
                            local_bkg_width=p.localbkg_width,
                            aperture_mask_method=p.apermask_method)
        x = np.asarray(cat.xcentroid, np.float64)
        y = np.asarray(cat.ycentroid, np.float64)
        label = np.asarray(cat.labels, np.int64)
        iso = np.asarray(cat.segment_flux, np.float64)
        iso_err = (np.asarray(cat.segment_flux_err, np.float64) if err is not None
                   else np.full(x.size, np.nan))
        area = np.asarray(cat.area.value, np.float64)
        a_sig = np.asarray(cat.semimajor_sigma.value, np.float64)
        b_sig = np.asarray(cat.semiminor_sigma.value, np.float64)
        ell = np.asarray(cat.ellipticity.value, np.float64)
        orient = np.asarray(cat.orientation.value, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, label, iso, iso_err, area, a_sig, b_sig, ell, orient = (
        v[ok] for v in (x, y, label, iso, iso_err, area, a_sig, b_sig, ell, orient))
    if x.size == 0:
        return _empty_catalog(mosaic, p, {"nsources": 0, "bkg_rms": float(rms)})
    xy = np.column_stack([x, y])
    nn = cKDTree(xy).query(xy, k=2)[0][:, 1] if x.size > 1 else np.full(1, np.inf)
    ratio = float(mosaic.get("resample.pixel_scale_ratio") or 1.0)
    tab = aperture_table(sub, x, y, nn > 12.0 * p.kernel_fwhm, iso, p, (refs or {}).get("apcorr"),
                         ratio)
    to_jy = pixel_area_sr(mosaic) * 1e6
    good_data = np.where(mask, 0.0, sub)
    # local background per source: sigma-clipped median in the annulus
    ann = CircularAnnulus(xy, r_in=tab.skyin, r_out=tab.skyout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = ApertureStats(sub, ann, mask=mask, sigma_clip=None)
        bkg = np.nan_to_num(np.asarray(st.median, np.float64))
        bkg_err = np.nan_to_num(np.asarray(st.std, np.float64) / np.sqrt(np.maximum(
            np.asarray(st.sum_aper_area.value, np.float64), 1.0)))
    arrays: dict[str, np.ndarray] = {"label": label, "xcentroid": x, "ycentroid": y}
    from transforms.wcs import wcs_of

    try:
        ra, dec = wcs_of(mosaic)(x, y, with_bounding_box=False)
        arrays["sky_centroid_ra"] = np.asarray(ra, np.float64)
        arrays["sky_centroid_dec"] = np.asarray(dec, np.float64)
    except ValueError:  # a mosaic with no WCS keeps pixel positions only
        arrays["sky_centroid_ra"] = np.full(x.size, np.nan)
        arrays["sky_centroid_dec"] = np.full(x.size, np.nan)
    arrays["aper_bkg_flux"] = bkg * to_jy
    arrays["aper_bkg_flux_err"] = bkg_err * to_jy
    fluxes = {}
    for ee in (p.aperture_ee1, p.aperture_ee2, p.aperture_ee3):
        r = tab.radii[ee]
        ap = CircularAperture(xy, r=r)
        t = aperture_photometry(good_data, ap, error=err, mask=mask, method="exact")
        npix = np.pi * r * r
        f = (np.asarray(t["aperture_sum"], np.float64) - bkg * npix) * to_jy
        fe = (np.asarray(t["aperture_sum_err"], np.float64) * to_jy if err is not None
              else np.full(x.size, np.nan))
        fluxes[ee] = (f, fe)
        arrays[f"aper{ee}_flux"] = f
        arrays[f"aper{ee}_flux_err"] = fe
        arrays[f"aper{ee}_abmag"] = abmag(f)
        arrays[f"aper{ee}_abmag_err"] = abmag_err(f, fe)
    e1, e2, e3 = p.aperture_ee1, p.aperture_ee2, p.aperture_ee3
    tot = fluxes[e3][0] * tab.apcorr[e3]
    tot_err = fluxes[e3][1] * tab.apcorr[e3]
    arrays["aper_total_flux"] = tot
    arrays["aper_total_flux_err"] = tot_err
    arrays["aper_total_abmag"] = abmag(tot)
    arrays["aper_total_abmag_err"] = abmag_err(tot, tot_err)
    with np.errstate(divide="ignore", invalid="ignore"):
        ci21 = fluxes[e2][0] / fluxes[e1][0]
        ci32 = fluxes[e3][0] / fluxes[e2][0]
        ci31 = fluxes[e3][0] / fluxes[e1][0]
    arrays[f"CI_{e2}_{e1}"] = ci21
    arrays[f"CI_{e3}_{e2}"] = ci32
    arrays[f"CI_{e3}_{e1}"] = ci31
    # JWST: extended when CI(ee2/ee1) and CI(ee3/ee2) both exceed the stellar thresholds
    with np.errstate(invalid="ignore"):
        arrays["is_extended"] = (ci21 > p.ci1_star_threshold) & (ci32 > p.ci2_star_threshold)
    arrays["nn_dist"] = nn
    arrays["isophotal_flux"] = iso * to_jy
    arrays["isophotal_flux_err"] = iso_err * to_jy
    arrays["isophotal_abmag"] = abmag(iso * to_jy)
    arrays["isophotal_abmag_err"] = abmag_err(iso, iso_err)
    arrays["isophotal_area"] = area
    arrays["semimajor_sigma"] = a_sig
    arrays["semiminor_sigma"] = b_sig
    arrays["ellipticity"] = ell
    arrays["orientation"] = orient
    info = {"nsources": int(x.size), "bkg_rms": float(rms), "aperture_source": tab.source,
            "aperture_radii_pix": {str(k): v for k, v in tab.radii.items()},
            "aperture_corrections": {str(k): v for k, v in tab.apcorr.items()}}
    return DataModel("catalog", arrays, _catalog_meta(mosaic, info))
