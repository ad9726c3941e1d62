"""outlier_detection (imaging): flag what one exposure has and the others do not.

As JWST's imaging mode: each exposure is drizzled alone onto a common mosaic grid
(``resample_data``; otherwise the inputs must already share a grid), the median of those
"singles" is taken where each has enough weight (``maskpt`` x its mean weight), the median is
blotted back to each exposure's frame, and a pixel is an outlier where
``|data - sky - blot|`` exceeds ``snr1*err + scale1*|d blot|`` and, next to such a pixel, exceeds
``snr2*err + scale2*|d blot|`` (``|d blot|``: the largest absolute difference to a neighbour,
which keeps sharp stars from being flagged by interpolation errors). Flagged pixels get
OUTLIER | DO_NOT_USE; data are left as they are.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms.model import DataModel
from transforms.registry import register


class OutlierError(ValueError):
    """Bad outlier_detection parameters or inputs."""


@dataclass(frozen=True)
class OutlierParams:
    """JWST outlier_detection parameters (spec defaults) used by the imaging mode."""

    weight_type: str = "ivm"
    pixfrac: float = 1.0
    kernel: str = "square"
    fillval: str = "NAN"
    maskpt: float = 0.7
    snr: str = "5.0 4.0"
    scale: str = "1.2 0.7"
    backg: float = 0.0
    kernel_size: str = "7 7"
    threshold_percent: float = 99.8
    rolling_window_width: int = 25
    ifu_second_check: bool = False
    resample_data: bool = True
    good_bits: str = "~DO_NOT_USE"
    pixmap_stepsize: float = 1.0
    pixmap_order: int = 1


def _pair(text: str, what: str) -> tuple[float, float]:
    try:
        vals = [float(v) for v in str(text).split()]
    except ValueError:
        vals = []
    if len(vals) != 2:
        raise OutlierError(f"outlier_detection {what} must be two numbers like '5.0 4.0', "
                           f"got {text!r}")
    return vals[0], vals[1]


def _fill(fillval: str) -> float:
    try:
        return float(fillval)
    except ValueError as exc:
        if str(fillval).upper() in ("NAN", "INDEF"):
            return float("nan")
        raise OutlierError(f"fillval must be a number or 'NAN', got {fillval!r}") from exc


# --------------------------------------------------------------------------------------------
# Pure array pieces


def abs_deriv(a: np.ndarray) -> np.ndarray:
    """Largest absolute difference of each pixel to its 4 neighbours (NaN-safe: NaN -> 0)."""
    a = np.asarray(a, dtype=np.float32)
    out = np.zeros_like(a)
    if a.size == 0:
        return out
    dy = np.abs(np.diff(a, axis=0))
    dx = np.abs(np.diff(a, axis=1))
    dy = np.where(np.isfinite(dy), dy, 0)
    dx = np.where(np.isfinite(dx), dx, 0)
    out[1:] = np.maximum(out[1:], dy)
    out[:-1] = np.maximum(out[:-1], dy)
    out[:, 1:] = np.maximum(out[:, 1:], dx)
    out[:, :-1] = np.maximum(out[:, :-1], dx)
    return out


def flag_outliers(data: np.ndarray, err: np.ndarray, blot: np.ndarray, snr: tuple[float, float],
                  scale: tuple[float, float], backg: float = 0.0) -> np.ndarray:
    """Boolean outlier mask of ``data`` against the blotted median ``blot`` (same frame)."""
    e = np.nan_to_num(np.asarray(err, dtype=np.float32))
    deriv = abs_deriv(blot)
    with np.errstate(invalid="ignore"):
        diff = np.abs(np.asarray(data, np.float32) - np.asarray(blot, np.float32) - backg)
        strong = diff > scale[0] * deriv + snr[0] * e
        weak = diff > scale[1] * deriv + snr[1] * e
    from scipy import ndimage  # imported where used: every stage run imports this module

    near_strong = ndimage.binary_dilation(strong, structure=np.ones((3, 3), bool))
    return near_strong & weak & np.isfinite(diff)


def weight_threshold(wht: np.ndarray, maskpt: float) -> float:
    """``maskpt`` x the (3-sigma clipped) mean of the non-zero weights."""
    from astropy.stats import sigma_clip

    w = np.asarray(wht, dtype=np.float64)
    w = w[np.isfinite(w) & (w > 0)]
    if w.size == 0:
        return math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(np.mean(sigma_clip(w, sigma=3, maxiters=5, masked=False))) * maskpt


def median_of_singles(scis: list[np.ndarray], whts: list[np.ndarray], maskpt: float) -> np.ndarray:
    """Per-pixel median of the singles, each ignored where its weight is below threshold."""
    if not scis:
        raise OutlierError("median_of_singles needs at least one image")
    stack = np.empty((len(scis),) + np.shape(scis[0]), dtype=np.float32)
    for k, (s, w) in enumerate(zip(scis, whts)):
        thr = weight_threshold(w, maskpt)
        stack[k] = np.where((np.asarray(w) >= thr) & (np.asarray(w) > 0), s, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(stack, axis=0).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Drizzling exposures


def good_pixels(model: DataModel, good_bits: str) -> np.ndarray:
    from transforms.image3.tweakreg import good_mask

    ok = np.isfinite(model["data"])
    if "dq" in model.arrays:
        ok &= good_mask(np.asarray(model["dq"]), good_bits)
    return ok


def weight_map(model: DataModel, weight_type: str, good_bits: str) -> np.ndarray:
    """Drizzle weights: 1/var_rnoise ("ivm") or exposure time ("exptime"), 0 on bad pixels."""
    ok = good_pixels(model, good_bits)
    if weight_type == "ivm":
        if "var_rnoise" in model.arrays:
            v = np.asarray(model["var_rnoise"], dtype=np.float32)
            good = ok & np.isfinite(v) & (v > 0)
            w = np.zeros(v.shape, np.float32)
            w[good] = 1.0 / v[good]
            return w
        return ok.astype(np.float32)
    if weight_type == "exptime":
        t = float(model.get("exposure.exposure_time")
                  or model.get("exposure.effective_exposure_time") or 1.0)
        return ok.astype(np.float32) * np.float32(t)
    raise OutlierError(f"weight_type must be 'ivm' or 'exptime', got {weight_type!r}")


def sky_free(model: DataModel) -> np.ndarray:
    """The data with the skymatch level removed if it has not been subtracted yet."""
    d = np.asarray(model["data"], dtype=np.float32)
    if model.get("background.subtracted") is False and model.get("background.level"):
        return d - np.float32(model.get("background.level"))
    return d


def common_grid(cals: tuple[DataModel, ...], pixel_scale_ratio: float = 1.0,
                pixel_scale: float | None = None, rotation: float | None = None,
                crval=None, output_shape=None, crpix=None) -> dict[str, Any]:
    """Tangent-plane grid meta (``wcs.tangent_plane_meta``) covering every exposure."""
    from transforms.resample import mosaic_grid
    from transforms.wcs import wcs_of

    return mosaic_grid([wcs_of(m) for m in cals], [m.shape for m in cals],
                       pixel_scale=pixel_scale, pixel_scale_ratio=pixel_scale_ratio,
                       rotation=rotation, crval=crval, output_shape=output_shape, crpix=crpix)


def _grid_wcs(grid_meta: dict):
    from transforms.wcs import wcs_of

    shape = tuple(grid_meta["wcs.tangent_plane"]["shape"])
    return wcs_of(grid_meta), shape


# --------------------------------------------------------------------------------------------
# The step


def _check(cals: tuple[DataModel, ...], p: OutlierParams) -> None:
    if p.kernel not in ("square", "point"):
        raise OutlierError(f"outlier_detection kernel must be 'square' or 'point', "
                           f"got {p.kernel!r}")
    if not 0.0 < p.pixfrac <= 1.0:
        raise OutlierError(f"pixfrac must be in (0, 1], got {p.pixfrac}")
    if p.weight_type not in ("ivm", "exptime"):
        raise OutlierError(f"weight_type must be 'ivm' or 'exptime', got {p.weight_type!r}")
    for m in cals:
        if np.ndim(m["data"]) != 2:
            raise OutlierError(f"outlier_detection needs 2-D cal images, got {m!r}")
    if not p.resample_data and len({m.shape for m in cals}) > 1:
        raise OutlierError("resample_data=False needs exposures on one pixel grid (same shape); "
                           "set resample_data=True")


def medians_in_frames(cals: tuple[DataModel, ...], p: OutlierParams) -> list[np.ndarray]:
    """The median image, in each exposure's own pixel frame."""
    if not p.resample_data:
        scis = [sky_free(m) for m in cals]
        whts = [weight_map(m, p.weight_type, p.good_bits) for m in cals]
        med = median_of_singles(scis, whts, p.maskpt)
        return [med] * len(cals)
    from transforms.resample import blot, drizzle
    from transforms.wcs import wcs_of

    grid = common_grid(cals)
    out_wcs, shape = _grid_wcs(grid)
    scis, whts = [], []
    for m in cals:
        sci, wht, _ = drizzle([(sky_free(m), weight_map(m, p.weight_type, p.good_bits),
                                wcs_of(m))], out_wcs, shape, pixfrac=p.pixfrac,
                              kernel=p.kernel, fillval=float("nan"))
        scis.append(sci)
        whts.append(wht)
    med = median_of_singles(scis, whts, p.maskpt)
    return [blot(med, out_wcs, wcs_of(m), m.shape) for m in cals]


@register("outlier_detection", "1.0", "image3", OutlierParams, (), keyword="S_OUTLIR")
def outlier_detection(cals: tuple[DataModel, ...], refs: dict, params: OutlierParams
                      ) -> tuple[DataModel, ...]:
    """Flag outliers (OUTLIER | DO_NOT_USE) against the median of the other exposures."""
    cals = tuple(cals)
    snr = _pair(params.snr, "snr")
    scale = _pair(params.scale, "scale")
    _check(cals, params)
    if len(cals) < 2:  # JWST: nothing to compare against
        return tuple(m.replace(meta={"cal_step.outlier_detection": "SKIPPED"}) for m in cals)
    blots = medians_in_frames(cals, params)
    out = []
    flag = np.uint32(DQ.OUTLIER | DQ.DO_NOT_USE)
    for m, b in zip(cals, blots):
        err = np.asarray(m["err"]) if "err" in m.arrays else np.zeros(m.shape, np.float32)
        mask = flag_outliers(sky_free(m), err, b, snr, scale, params.backg)
        mask &= good_pixels(m, params.good_bits)
        dq = np.asarray(m["dq"]) if "dq" in m.arrays else np.zeros(m.shape, np.uint32)
        new_dq = np.where(mask, dq | flag, dq).astype(np.uint32)
        out.append(m.replace(arrays={"dq": new_dq},
                             meta={"cal_step.outlier_detection": "COMPLETE",
                                   "outlier_detection.nflagged": int(mask.sum())}))
    return tuple(out)
