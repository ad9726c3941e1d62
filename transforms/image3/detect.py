"""Star finding and centroids, shared by tweakreg and source_catalog.

A thin, pure layer over photutils' ``IRAFStarFinder`` (the finder JWST's tweakreg uses by
default), so the sharpness/roundness cuts mean exactly what they mean in JWST
(``sharplo``/``sharphi``/``roundlo``/``roundhi``). Bad pixels (a boolean mask, or non-finite
values) never produce a detection. No sources, an empty or tiny image, or an all-masked image
give an empty catalogue, never an error.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from astropy.stats import sigma_clipped_stats

COLUMNS = ("x", "y", "flux", "peak", "sharpness", "roundness")


@dataclass(frozen=True)
class Stars:
    """Detected point sources: pixel centroids (0-based), flux above background, shape stats."""

    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    peak: np.ndarray
    sharpness: np.ndarray
    roundness: np.ndarray

    def __len__(self) -> int:
        return int(self.x.size)

    def take(self, index: np.ndarray) -> "Stars":
        return Stars(*(getattr(self, c)[index] for c in COLUMNS))


def empty_stars() -> Stars:
    return Stars(*(np.zeros(0, dtype=np.float64) for _ in COLUMNS))


def background(data: np.ndarray, mask: np.ndarray, boxsize: int
               ) -> tuple[np.ndarray | float, float]:
    """Background level (scalar, or a map when the image spans several boxes) and its rms."""
    good = data[~mask]
    if good.size < 3:
        return 0.0, 0.0
    ny, nx = data.shape
    if boxsize > 0 and ny >= 2 * boxsize and nx >= 2 * boxsize:
        from photutils.background import Background2D, BkgZoomInterpolator, MedianBackground

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                bkg = Background2D(np.where(mask, 0.0, data), boxsize, mask=mask,
                                   filter_size=(3, 3), bkg_estimator=MedianBackground(),
                                   interpolator=BkgZoomInterpolator(order=1))
            return bkg.background, float(bkg.background_rms_median)
        except ValueError:  # too few good pixels per box: fall back to the global level
            pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, median, std = sigma_clipped_stats(good, sigma=3.0, maxiters=5)
    return float(median), float(std)


def find_stars(
    data: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    snr_threshold: float = 10.0,
    kernel_fwhm: float = 2.5,
    bkg_boxsize: int = 400,
    sigma_radius: float = 1.5,
    minsep_fwhm: float = 0.0,
    sharplo: float = 0.5,
    sharphi: float = 2.0,
    roundlo: float = 0.0,
    roundhi: float = 0.2,
    brightest: int | None = 200,
    peakmax: float | None = None,
) -> Stars:
    """Point sources above ``snr_threshold`` x background rms, brightest first.

    ``mask`` is True on pixels to ignore (bad DQ); non-finite pixels are ignored too.
    Centroids are 0-based pixel coordinates (x along columns).
    """
    if kernel_fwhm <= 0:
        raise ValueError(f"kernel_fwhm must be positive, got {kernel_fwhm}")
    if snr_threshold <= 0:
        raise ValueError(f"snr_threshold must be positive, got {snr_threshold}")
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"find_stars needs a 2-D image, got shape {data.shape}")
    bad = ~np.isfinite(data)
    if mask is not None:
        bad = bad | np.asarray(mask, dtype=bool)
    # The finder's kernel needs room: an image smaller than the kernel has no stars to find.
    min_size = 2 * int(np.ceil(sigma_radius * kernel_fwhm / 2.3548)) + 3
    if data.size == 0 or min(data.shape) < min_size or bad.all():
        return empty_stars()
    bkg, rms = background(data, bad, bkg_boxsize)
    if not rms > 0:
        return empty_stars()
    sub = np.where(bad, 0.0, data - bkg)

    from photutils.detection import IRAFStarFinder

    finder = IRAFStarFinder(
        threshold=snr_threshold * rms,
        fwhm=kernel_fwhm,
        sigma_radius=sigma_radius,
        min_separation=max(minsep_fwhm * kernel_fwhm, 0.0) or None,
        sharpness_range=(sharplo, sharphi),
        roundness_range=(roundlo, roundhi),
        n_brightest=int(brightest) if brightest else None,
        peak_max=peakmax,
        exclude_border=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = finder(sub, mask=bad)
    if table is None or len(table) == 0:
        return empty_stars()
    stars = Stars(
        np.asarray(table["x_centroid"], dtype=np.float64),
        np.asarray(table["y_centroid"], dtype=np.float64),
        np.asarray(table["flux"], dtype=np.float64),
        np.asarray(table["peak"], dtype=np.float64),
        np.asarray(table["sharpness"], dtype=np.float64),
        np.asarray(table["roundness"], dtype=np.float64),
    )
    ok = np.isfinite(stars.x) & np.isfinite(stars.y) & np.isfinite(stars.flux)
    stars = stars.take(np.flatnonzero(ok))
    order = np.lexsort((stars.x, stars.y, -stars.flux))  # deterministic: brightest first
    return stars.take(order)
