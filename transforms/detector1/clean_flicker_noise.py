"""clean_flicker_noise: fit and remove 1/f (flicker) noise from each group difference.

JWST's algorithm, ``fit_method="median"`` flavour, on a ramp:

1. a draft rate image (here: per pixel the median of its usable group differences) is
   sigma-clipped (``n_sigma``, robust MAD sigma, iterated) into a scene mask: True where the
   pixel only sees background; DO_NOT_USE and non-finite pixels are never background (image
   statistics are taken on a regular grid of at most 2**18 pixels, every pixel below that);
2. for every integration and group difference ``d = group[j+1] - group[j]``: drop pixels whose
   group j+1 is DO_NOT_USE or JUMP_DET, subtract the background (median of the masked
   difference, ``background_method="median"``; nothing for None), clip what is more than
   ``n_sigma`` from 0 (sigma from the lower half, JWST's ``lower_half_only``), and take the
   median of each line along the detector's fast axis (per row for NIRCam/NIRISS, per column
   when ``subarray.slowaxis`` is +-1), per 512-pixel amplifier when ``fit_by_channel``;
3. the stripes are summed over differences and subtracted from each group, so a group is the
   cleaned previous group plus its cleaned difference, as in JWST. Group 0 is not changed.

With ``apply_flat_field`` the differences are divided by the flat (reference "flat") before
fitting, so the removed pattern is stripes x flat. Options that need other reference data or
are not implemented here (fft fitting, model/median_image backgrounds, science-region masks,
user masks, histogram sigma, per-integration masks, autoparam) raise NotImplementedError.
JWST skips this step by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from transforms import dq as DQ
from transforms.detector1._kernels_threads import for_rows
from transforms.model import DataModel
from transforms.registry import NEAR_IR, register

from ._subarray import apply_by_copy, cut_ref

NAME = "clean_flicker_noise"
VERSION = "1.0"
_MAD = 1.4826


@dataclass(frozen=True)
class CleanFlickerNoiseParams:
    """JWST clean_flicker_noise parameters and defaults (save_* are output options: ignored)."""

    autoparam: bool = False
    fit_method: str = "median"
    fit_by_channel: bool = False
    background_method: str | None = "median"
    background_box_size: tuple[int, int] | None = None
    mask_science_regions: bool = False
    apply_flat_field: bool = False
    n_sigma: float = 2.0
    fit_histogram: bool = False
    single_mask: bool = True
    user_mask: str | None = None
    save_mask: bool = False
    save_background: bool = False
    save_noise: bool = False


def _check(params: CleanFlickerNoiseParams) -> None:
    unsupported = {
        "fit_method": params.fit_method != "median",
        "background_method": params.background_method not in ("median", None, "None"),
        "autoparam": params.autoparam,
        "mask_science_regions": params.mask_science_regions,
        "fit_histogram": params.fit_histogram,
        "single_mask": not params.single_mask,
        "user_mask": params.user_mask is not None,
    }
    bad = [k for k, v in unsupported.items() if v]
    if bad:
        raise NotImplementedError(
            f"clean_flicker_noise: {', '.join(f'{k}={getattr(params, k)!r}' for k in bad)} is not "
            "implemented; use fit_method='median', background_method='median' or None and the "
            "other defaults")
    if not params.n_sigma > 0:
        raise ValueError(f"clean_flicker_noise: n_sigma must be > 0, got {params.n_sigma}")


@njit(nogil=True, cache=True, error_model="numpy")
def _small_median(buf, m):
    """Median of buf[:m] (m >= 1) by insertion sort: fast for the few group differences."""
    for i in range(1, m):
        v = buf[i]
        j = i - 1
        while j >= 0 and buf[j] > v:
            buf[j + 1] = buf[j]
            j -= 1
        buf[j + 1] = v
    h = m // 2
    return buf[h] if m % 2 else 0.5 * (buf[h - 1] + buf[h])


@njit(nogil=True, cache=True, error_model="numpy")
def _draft_rate_rows(row0, row1, data, gdq, bad, out):
    nints, ng, ny, nx = data.shape
    nd = max(nints * (ng - 1), 1)
    for y in range(row0, row1):
        buf = np.empty((nx, nd))
        cnt = np.zeros(nx, dtype=np.int64)
        for i in range(nints):
            for j in range(ng - 1):
                for x in range(nx):
                    if (gdq[i, j, y, x] & bad) == 0 and (gdq[i, j + 1, y, x] & bad) == 0:
                        d = data[i, j + 1, y, x] - data[i, j, y, x]
                        if d == d:
                            buf[x, cnt[x]] = d
                            cnt[x] += 1
        for x in range(nx):
            m = cnt[x]
            if m == 0:
                out[y, x] = np.nan
            elif m <= 64:
                out[y, x] = _small_median(buf[x], m)
            else:
                out[y, x] = np.median(buf[x, :m])


def _draft_rate(data, gdq, bad, out):
    """Per pixel: median over integrations and groups of the usable group differences."""
    for_rows(_draft_rate_rows, data.shape[2], data, gdq, bad, out)


@njit(nogil=True, cache=True, error_model="numpy")
def _line_medians_rows(row0, row1, img, mask, bkg, clip, nchan, out):
    ny, nx = img.shape
    width = nx // nchan
    for r in range(row0, row1):
        buf = np.empty(width + nx % nchan)
        for c in range(nchan):
            x0 = c * width
            x1 = nx if c == nchan - 1 else x0 + width
            m = 0
            for x in range(x0, x1):
                v = img[r, x] - bkg
                if mask[r, x] and v == v and abs(v) <= clip:
                    buf[m] = v
                    m += 1
            out[r, c] = np.median(buf[:m]) if m > 0 else 0.0


def _line_medians(img, mask, bkg, clip, nchan, out):
    """out[r, c] = median over line r, chunk c of img - bkg where mask, finite and within
    +-clip (0 when nothing is usable)."""
    for_rows(_line_medians_rows, img.shape[0], img, mask, bkg, clip, nchan, out)


@njit(nogil=True, cache=True, error_model="numpy")
def _subtract_lines_rows(row0, row1, plane, cum, nchan, flat, use_flat):
    ny, nx = plane.shape
    width = nx // nchan
    for r in range(row0, row1):
        for x in range(nx):
            c = min(x // width, nchan - 1)
            s = cum[r, c]
            plane[r, x] -= s * flat[r, x] if use_flat else s


def _subtract_lines(plane, cum, nchan, flat, use_flat):
    for_rows(_subtract_lines_rows, plane.shape[0], plane, cum, nchan, flat, use_flat)


def _sample(img: np.ndarray, mask: np.ndarray, max_samples: int = 1 << 18) -> np.ndarray:
    """The usable values of ``img`` on a regular grid of at most ~max_samples pixels (all of
    them for small images): robust statistics of a 4-Mpixel image do not need every pixel."""
    step = max(1, int(np.ceil(np.sqrt(img.size / max_samples))))
    sub, m = img[::step, ::step], mask[::step, ::step]
    vals = sub[m]
    return vals[np.isfinite(vals)]


def scene_mask(rate: np.ndarray, usable: np.ndarray, n_sigma: float,
               iterations: int = 5) -> np.ndarray:
    """True where the draft rate looks like background: iterated robust (MAD) sigma clipping,
    thresholds found on a regular sample, applied to every pixel."""
    usable = usable & np.isfinite(rate)
    vals = _sample(rate, usable)
    lo, hi = -np.inf, np.inf
    for _ in range(iterations):
        if vals.size < 2:
            break
        med = np.median(vals)
        sigma = _MAD * np.median(np.abs(vals - med))
        if not sigma > 0:
            break
        lo, hi = med - n_sigma * sigma, med + n_sigma * sigma
        keep = (vals >= lo) & (vals <= hi)
        if keep.all():
            break
        vals = vals[keep]
    return usable & (rate >= lo) & (rate <= hi)


def fit_stripes(diff: np.ndarray, mask: np.ndarray, params: CleanFlickerNoiseParams,
                nchan: int) -> np.ndarray:
    """The (nlines, nchan) 1/f pattern of one group difference (lines along the fast axis)."""
    out = np.zeros((diff.shape[0], nchan))
    vals = _sample(diff, mask)
    if vals.size == 0:
        return out
    bkg = float(np.median(vals)) if params.background_method not in (None, "None") else 0.0
    low = vals[vals <= bkg].astype(np.float64) - bkg
    clip = np.inf
    if low.size > 1:
        sigma = float(np.sqrt(np.mean(low ** 2)))
        if sigma > 0:
            clip = params.n_sigma * sigma
    _line_medians(diff, mask, np.float32(bkg), clip, nchan, out)
    return out


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: CleanFlickerNoiseParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Remove the fitted 1/f pattern from the ramp buffer in place."""
    _check(params)
    data, gdq, pdq = arrays["data"], arrays["groupdq"], arrays["pixeldq"]
    nints, ngroups, ny, nx = data.shape
    if ngroups < 2:
        return {f"cal_step.{NAME}": "SKIPPED"}
    by_cols = abs(int(meta.get("subarray.slowaxis") or 2)) == 1
    flat = np.ones((ny, nx), np.float32)
    use_flat = bool(params.apply_flat_field and refs.get("flat") is not None)
    if params.apply_flat_field and not use_flat:
        raise ValueError("clean_flicker_noise: apply_flat_field needs a 'flat' reference")
    if use_flat:
        flat = np.array(cut_ref(refs["flat"], "data", meta, (ny, nx)), np.float32)
        flat[~np.isfinite(flat) | (flat <= 0)] = 1.0
    bad = np.uint8(DQ.DO_NOT_USE | DQ.SATURATED | DQ.JUMP_DET)
    rate = np.empty((ny, nx), np.float32)
    _draft_rate(data, gdq, bad, rate)
    mask = scene_mask(rate, (pdq & np.uint32(DQ.DO_NOT_USE)) == 0, params.n_sigma)
    t = (lambda a: a.T) if by_cols else (lambda a: a)
    nline = nx if by_cols else ny
    along = ny if by_cols else nx
    nchan = 4 if (params.fit_by_channel and along == 2048) else 1
    skip = np.uint8(DQ.DO_NOT_USE | DQ.JUMP_DET)
    for i in range(nints):
        cum = np.zeros((nline, nchan))
        prev = np.array(data[i, 0], copy=True)
        for j in range(ngroups - 1):
            cur = np.array(data[i, j + 1], copy=True)
            diff = cur - prev
            if use_flat:
                diff /= flat
            m = mask & ((gdq[i, j + 1] & skip) == 0)
            cum += fit_stripes(t(diff), t(m), params, nchan)
            _subtract_lines(t(data[i, j + 1]), cum, nchan, t(flat), use_flat)
            prev = cur
    return {f"cal_step.{NAME}": "COMPLETE"}


@register(NAME, VERSION, "detector1", CleanFlickerNoiseParams, ("flat",),
          keyword="S_CLNFNS", inplace=apply_inplace, skip_by_default=True,
          instruments=NEAR_IR)
def apply(model: DataModel, refs: Mapping[str, DataModel],
          params: CleanFlickerNoiseParams) -> DataModel:
    """Fit and remove per-line 1/f noise from the group differences of a ramp."""
    return apply_by_copy(model, refs, params, NAME, apply_inplace)
