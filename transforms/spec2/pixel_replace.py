"""pixel_replace: estimate the flux of bad pixels in 2-D spectra before resampling/extraction.

jwst 3.0's PixelReplaceStep (skipped by default; ``algorithm`` default ``mingrad``):

- ``fit_profile`` (the algorithm build 10.0 ran): for every cross-dispersion profile (column
  for horizontal dispersion) holding DO_NOT_USE pixels, the profiles within
  ``n_adjacent_cols`` on either side (those with any good pixel) are each normalised by their
  peak |value| (unity when no pixel of them reaches S/N 5), their per-pixel median is the
  model profile, and the model is scaled to the good pixels of the current profile. The
  **build 10.0 normalisation fix**: the scale is fitted to the *good* pixels only (the
  current profile is normalised by the maximum of its unflagged pixels), so flagged pixels in
  the trace core, at the profile peak, no longer drag the normalisation down. jwst fits the
  scale with Nelder-Mead on the mean squared error of |current| - s |model|; calops takes that
  least-squares minimum exactly (``s = sum |c||m| / sum m^2``), where jwst stops within its
  1e-4 tolerance. Errors and variances (as errors) of replaced pixels come from the same
  scaled median of the neighbours' normalised errors. Replaced pixels lose DO_NOT_USE and gain
  FLUX_ESTIMATED; flagged NON_SCIENCE pixels are not replaced (their data become NaN, as jwst).
- ``mingrad``: a NaN pixel (not within 2 pixels of the edge, as jwst's padding does) takes the
  mean of its two neighbours along the direction (spectral or spatial) of smallest absolute
  gradient; variances are interpolated as errors.
- ``trace_model``: pixels with a value in the slit's ``trace_model`` array take it (errors
  interpolated along the wavelength), the rest go through ``mingrad``; without a trace model
  it is ``mingrad``, as in jwst.

The profile fit is one numba kernel over the columns of a slit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from transforms import dq as DQ
from transforms import spectral as S
from transforms.model import DataModel
from transforms.registry import register

DO_NOT_USE = np.uint32(DQ.DO_NOT_USE)
NON_SCIENCE = np.uint32(DQ.PIXEL["NON_SCIENCE"])
FLUX_ESTIMATED = np.uint32(DQ.PIXEL["FLUX_ESTIMATED"])
_ERRS = ("err", "var_poisson", "var_rnoise", "var_flat")


class PixelReplaceError(ValueError):
    """Bad pixel_replace parameters or input."""


@dataclass(frozen=True)
class PixelReplaceParams:
    """jwst 3.0 PixelReplaceStep parameters (spec defaults)."""

    algorithm: str = "mingrad"
    n_adjacent_cols: int = 3
    output_use_model: bool = True


# --------------------------------------------------------------------------------------------
# fit_profile
# --------------------------------------------------------------------------------------------

@njit(nogil=True, cache=True)
def _nanmax_abs(a):
    m = np.nan
    for v in a:
        if math.isfinite(v):
            av = abs(v)
            if not (av <= m):  # NaN-safe max
                m = av
    return m


@njit(nogil=True, cache=True)
def _nanmedian(a):
    n = 0
    tmp = np.empty(a.size)
    for v in a:
        if not math.isnan(v):
            tmp[n] = v
            n += 1
    if n == 0:
        return np.nan
    return np.median(tmp[:n])


@njit(nogil=True, cache=True)
def _fit_profile(data, errs, has, dq, nadj, od, odq, oerrs):
    """jwst's fit_profile on a slit in the working frame (profiles are columns).

    data (ny, nx) f8; errs (4, ny, nx) f8 = err, var_poisson, var_rnoise, var_flat (variances
    as given; ``has`` says which exist); dq (ny, nx) u4. Outputs od/odq/oerrs are copies of the
    inputs, updated in place. Returns the number of pixels replaced."""
    ny, nx = data.shape
    r0, r1, c0, c1 = ny, -1, nx, -1
    for j in range(ny):
        for i in range(nx):
            if (dq[j, i] & DO_NOT_USE) == 0:
                r0 = min(r0, j)
                r1 = max(r1, j)
                c0 = min(c0, i)
                c1 = max(c1, i)
    if r1 < 0:
        return 0
    r1 += 1
    c1 += 1
    nr = r1 - r0
    valid = np.zeros(nx, np.bool_)
    todo = np.zeros(nx, np.bool_)
    for i in range(c0, c1):
        nbad = 0
        nns = 0
        for j in range(r0, r1):
            d = dq[j, i]
            if d & NON_SCIENCE:
                d = NON_SCIENCE
            if d & DO_NOT_USE:
                nbad += 1
            if d & NON_SCIENCE:
                nns += 1
        if nbad + nns == nr:
            continue
        valid[i] = True
        if nbad > 0:
            todo[i] = True
    nrep = 0
    adj = np.empty(2 * nadj + 1, np.int64)
    for ind in range(c0, c1):
        if not todo[ind]:
            continue
        na = 0
        for a in range(ind - nadj, ind + nadj + 1):
            if a != ind and 0 <= a < nx and valid[a]:
                adj[na] = a
                na += 1
        if na == 0:
            continue
        prof = np.empty((nr, na))
        snrmax = np.nan
        for q in range(na):
            a = adj[q]
            for r in range(nr):
                j = r0 + r
                if dq[j, a] & DO_NOT_USE:
                    prof[r, q] = np.nan
                else:
                    prof[r, q] = data[j, a]
                    e = errs[0, j, a]
                    snr = abs(data[j, a] / e) if e != 0.0 else (np.inf if data[j, a] != 0.0
                                                               else np.nan)
                    if math.isfinite(snr) or snr == np.inf:
                        if not (snr <= snrmax):
                            snrmax = snr
        scale = np.empty(na)
        for q in range(na):
            scale[q] = _nanmax_abs(prof[:, q])
        if not (snrmax >= 5.0):  # jwst: nanmax(snr) < 5 -> unity scaling (NaN -> unity too)
            for q in range(na):
                scale[q] = 1.0
        med = np.empty(nr)
        row = np.empty(na)
        for r in range(nr):
            for q in range(na):
                row[q] = prof[r, q] / scale[q]
            med[r] = _nanmedian(row)
        nerr = np.full((4, nr), np.nan)
        for k in range(4):
            if not has[k]:
                continue
            for r in range(nr):
                j = r0 + r
                for q in range(na):
                    a = adj[q]
                    if dq[j, a] & DO_NOT_USE:
                        row[q] = np.nan
                    else:
                        v = errs[k, j, a]
                        e = math.sqrt(v) if (k > 0 and v >= 0) else (np.nan if k > 0 else v)
                        row[q] = e / scale[q]
                nerr[k, r] = _nanmedian(row)
        # the current profile, flagged pixels masked
        cur = np.empty(nr)
        ngood = 0
        cmax = -np.inf
        for r in range(nr):
            j = r0 + r
            if dq[j, ind] & DO_NOT_USE:
                cur[r] = np.nan
            else:
                cur[r] = data[j, ind]
                if not math.isnan(cur[r]):
                    ngood += 1
                    if cur[r] > cmax:
                        cmax = cur[r]
        if ngood == 0:
            continue
        med_scale = _nanmedian(scale)
        mmax = -1.0
        nmax = -1.0
        for r in range(nr):
            if not math.isnan(cur[r]):
                if math.isfinite(med[r]) and abs(med[r]) > mmax:
                    mmax = abs(med[r])
                nc = abs(cur[r] / cmax)
                if nc > nmax:
                    nmax = nc
        if med_scale != 1.0 and 0.0 <= mmax < 1e20 and nmax < 1e20:
            # least-squares minimum of sum(|c/cmax| - s |m|)^2 over the good pixels
            sxy = 0.0
            sxx = 0.0
            x0 = -np.inf
            for r in range(nr):
                if math.isnan(cur[r]):
                    continue
                nc = cur[r] / cmax
                if nc > x0:
                    x0 = nc
                if math.isfinite(med[r]):
                    sxy += abs(nc) * abs(med[r])
                    sxx += med[r] * med[r]
            ns = sxy / sxx if sxx > 0.0 else abs(x0)
            sc = cmax
        else:
            ns = 1.0
            sc = 1.0
        f = ns * sc
        for r in range(nr):
            j = r0 + r
            d = dq[j, ind]
            rep = (d & DO_NOT_USE) != 0 and (d & NON_SCIENCE) == 0
            if rep:
                v = med[r] * f
                od[j, ind] = v
                if not math.isnan(v):
                    odq[j, ind] = d ^ DO_NOT_USE ^ FLUX_ESTIMATED
                    nrep += 1
                for k in range(4):
                    if has[k]:
                        e = nerr[k, r] * f
                        oerrs[k, j, ind] = e if k == 0 else e * e
            else:
                od[j, ind] = cur[r]
    return nrep


def fit_profile(arrays: dict[str, np.ndarray], dispaxis: int, n_adjacent_cols: int
                ) -> dict[str, np.ndarray]:
    """The fit_profile algorithm on one 2-D spectrum (new arrays)."""
    t = dispaxis == S.VERTICAL

    def tr(a):
        return np.ascontiguousarray(a.T) if t else np.ascontiguousarray(a)

    data = tr(np.asarray(arrays["data"], np.float64))
    shape = data.shape
    dq = tr(np.asarray(arrays.get("dq", np.zeros(shape, np.uint32)), np.uint32))
    has = np.array([k in arrays for k in _ERRS])
    errs = np.stack([tr(np.asarray(arrays[k], np.float64)) if k in arrays
                     else np.full(shape, np.nan) for k in _ERRS])
    od, odq, oerrs = data.copy(), dq.copy(), errs.copy()
    _fit_profile(data, errs, has, dq, int(n_adjacent_cols), od, odq, oerrs)
    out = dict(arrays)
    out["data"] = tr(od).astype(np.asarray(arrays["data"]).dtype)
    out["dq"] = tr(odq)
    for k, name in enumerate(_ERRS):
        if has[k]:
            out[name] = tr(oerrs[k]).astype(np.asarray(arrays[name]).dtype)
    return out


# --------------------------------------------------------------------------------------------
# mingrad and trace_model
# --------------------------------------------------------------------------------------------

def mingrad(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """jwst's mingrad on one 2-D spectrum (new arrays)."""
    out = {k: np.array(v, copy=True) for k, v in arrays.items()}
    data = out["data"]
    ny, nx = data.shape
    yy, xx = np.mgrid[:ny, :nx]
    pad = 1
    yi, xi = np.nonzero(~np.isfinite(data) & (yy > pad) & (yy < ny - pad) & (xx > pad)
                        & (xx < nx - pad))
    if yi.size == 0:
        return out
    with np.errstate(invalid="ignore"):
        diffs = np.array([np.abs(data[yi, xi - 1] - data[yi, xi + 1]),
                          np.abs(data[yi - 1, xi] - data[yi + 1, xi])])
    diffs = np.where(np.isnan(diffs), np.inf, diffs)
    mask = ~np.all(np.isinf(diffs), axis=0)
    ind = np.argmin(diffs, axis=0)[mask]
    col = np.arange(yi.size)[mask]
    for name in ("data", "err", "var_poisson", "var_rnoise", "var_flat"):
        a = out.get(name)
        if a is None:
            continue
        with np.errstate(invalid="ignore"):
            src = np.sqrt(a) if name.startswith("var") else a
            interp = np.array([(src[yi, xi - 1] + src[yi, xi + 1]) / 2.0,
                               (src[yi - 1, xi] + src[yi + 1, xi]) / 2.0])
            if name.startswith("var"):
                interp = interp ** 2
        a[yi[mask], xi[mask]] = interp[ind, col]
    if "dq" in out:
        dq = out["dq"]
        orig = dq[yi, xi]
        rm = mask & ((orig & DO_NOT_USE) != 0) & ((orig & NON_SCIENCE) == 0)
        dq[yi[rm], xi[rm]] -= DO_NOT_USE
        dq[yi[mask], xi[mask]] |= FLUX_ESTIMATED
    return out


def trace_model(arrays: dict[str, np.ndarray], dispaxis: int) -> dict[str, np.ndarray]:
    """jwst's trace_model replacement, then mingrad for what remains."""
    tm = arrays.get("trace_model")
    if tm is None:
        return mingrad(arrays)
    out = {k: np.array(v, copy=True) for k, v in arrays.items()}
    rep = ~np.isfinite(out["data"]) & np.isfinite(tm)
    if not rep.any():
        return mingrad(out)
    out["data"][rep] = tm[rep]
    if "dq" in out:
        dq = out["dq"]
        rm = rep & ((dq & DO_NOT_USE) != 0)
        dq[rm] ^= DO_NOT_USE
        dq[rep] |= FLUX_ESTIMATED
    yi, xi = np.nonzero(rep)
    for name in _ERRS:
        a = out.get(name)
        if a is None:
            continue
        e = np.sqrt(a) if name.startswith("var") else a.copy()
        e[yi, xi] = np.nan
        if dispaxis == S.HORIZONTAL:
            for row in np.unique(yi):
                v = e[row]
                ok = np.isfinite(v)
                if ok.any():
                    fix = xi[yi == row]
                    v[fix] = np.interp(fix, np.flatnonzero(ok), v[ok])
        else:
            for c in np.unique(xi):
                v = e[:, c]
                ok = np.isfinite(v)
                if ok.any():
                    fix = yi[xi == c]
                    v[fix] = np.interp(fix, np.flatnonzero(ok), v[ok])
        out[name] = (e ** 2 if name.startswith("var") else e).astype(a.dtype)
    return mingrad(out)


# --------------------------------------------------------------------------------------------
# The step
# --------------------------------------------------------------------------------------------

def replace_slit(arrays: dict[str, np.ndarray], dispaxis: int, p: PixelReplaceParams
                 ) -> dict[str, np.ndarray]:
    """One slit's arrays with bad pixels replaced (2-D, or 3-D integration by integration)."""
    data = np.asarray(arrays["data"])
    if data.ndim == 3:
        outs = [replace_slit({k: (np.asarray(v)[i] if np.ndim(v) == 3 else v)
                              for k, v in arrays.items()}, dispaxis, p)
                for i in range(data.shape[0])]
        return {k: (np.stack([o[k] for o in outs]) if np.ndim(arrays[k]) == 3 else arrays[k])
                for k in arrays}
    if data.ndim != 2 or data.size == 0:
        return dict(arrays)
    if p.algorithm == "fit_profile":
        return fit_profile(arrays, dispaxis, p.n_adjacent_cols)
    if p.algorithm == "mingrad":
        return mingrad(arrays)
    return trace_model(arrays, dispaxis)


@register("pixel_replace", "1.0", "spec2", PixelReplaceParams, (), keyword="S_PXREPL",
          skip_by_default=True, exec_only=("output_use_model",))
def pixel_replace(model: DataModel, refs: dict, params: PixelReplaceParams) -> DataModel:
    """Replace flagged pixels of 2-D spectra by estimates (FLUX_ESTIMATED)."""
    if params.algorithm not in ("fit_profile", "mingrad", "trace_model"):
        raise PixelReplaceError(f"pixel_replace algorithm must be fit_profile, mingrad or "
                                f"trace_model, got {params.algorithm!r}")
    if params.n_adjacent_cols < 1:
        raise PixelReplaceError(f"n_adjacent_cols must be >= 1, got {params.n_adjacent_cols}")
    if not S.is_spectral_image(model) and "data" not in model.arrays:
        raise PixelReplaceError(f"pixel_replace needs 2-D spectra, got {model!r}")
    out = []
    for s in S.slits(model):
        new = replace_slit(dict(s.arrays), s.dispaxis, params)
        out.append(s.replace(arrays=new))
    return S.with_slits(model, out, meta={"cal_step.pixel_replace": "COMPLETE"})
