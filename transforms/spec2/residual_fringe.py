"""residual_fringe 1.0: fit and remove the MIRI MRS residual fringes column by column
(jwst 3.0's ResidualFringeStep; skipped by default, as in jwst).

For MIR_MRS (anything else unchanged), for every slice of every channel and every detector
column through it (a spectrum along the dispersion, in wavenumber ``s = 1 / lambda``):

1. the continuum ``C(s)``: a least-squares cubic B-spline (``scipy.interpolate.make_lsq_spline``
   -> ``scipy.interpolate.BSpline``, build 10.0's change from astropy's Spline1D) with
   interior knots every three fringe periods;
2. the fringe: ``r(s) = d / C - 1`` fitted by ``(a0 + a1 u) cos(2 pi f s) + (b0 + b1 u)
   sin(2 pi f s)`` (``u`` the normalised wavenumber: an amplitude and phase drifting along the
   column) by linear least squares, the frequency ``f`` searched within the fringefreq
   reference's ``ffreq +- dffreq`` of the channel (the best of 41 trial frequencies); the fit
   is kept only if its amplitude is below the reference's ``max_amp`` and it reduces the
   residual rms;
3. ``d / (1 + fringe)``, the continuum refitted once on the corrected column and the fringe
   refitted on that.

Columns with fewer than 40 good pixels, a median signal-to-noise below 10 or fewer than
``min_nfringes`` fringe periods are left as they are. ``ignore_region_min/max`` (wavelength
ranges, micron) are masked from the fits. Variances are divided by the square of the same
factor. The measured amplitude before/after is recorded per channel
(``residual_fringe.amplitude``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from transforms import ifu as I
from transforms.model import DataModel
from transforms.registry import register
from transforms.spec2._ifu_common import exp_type, match_nans_and_flags

NAME, VERSION = "residual_fringe", "1.0"


@dataclass(frozen=True)
class ResidualFringeParams:
    """jwst 3.0 ResidualFringeStep spec (``skip`` defaults to True there: skip_by_default)."""

    save_intermediate_results: bool = False
    search_output_file: bool = False
    ignore_region_min: tuple[float, ...] | None = None
    ignore_region_max: tuple[float, ...] | None = None


def freq_table(ref: DataModel | None, band: str | None = None, label: int | None = None
               ) -> dict[str, float]:
    """The fringe fit's frequency (1 / period in wavenumber, 1/um), search half-range,
    minimum number of periods, minimum S/N and largest accepted amplitude for one slice,
    from the fringefreq reference (FringeFreqModel: ``rfc_freq_<band>_table`` rows by slice
    label, ``max_amp_table``); defaults without a reference."""
    out = {"ffreq": 1.0 / 0.0015, "dffreq": 100.0, "min_nfringes": 6, "max_amp": 0.2,
           "min_snr": 10.0}
    if ref is None or band is None:
        return out
    t = f"rfc_freq_{str(band).lower()}_table"
    sl = ref.arrays.get(f"{t}.slice")
    if sl is None:
        return out
    rows = np.flatnonzero(np.asarray(sl, np.float64) == float(label)) if label else []
    if len(rows):
        r = int(rows[0])
        for k in ("ffreq", "dffreq", "min_nfringes", "min_snr"):
            a = ref.arrays.get(f"{t}.{k}")
            if a is not None:
                out[k] = float(np.asarray(a)[r])
    amp = ref.arrays.get("max_amp_table.amplitude")
    if amp is not None and np.size(amp):
        out["max_amp"] = float(np.max(np.asarray(amp, np.float64)))
    return out


def _design(s: np.ndarray, f: float) -> np.ndarray:
    u = (s - s.mean()) / max(np.ptp(s), 1e-12)
    c, sn = np.cos(2 * np.pi * f * s), np.sin(2 * np.pi * f * s)
    return np.stack([c, u * c, sn, u * sn], axis=1)


def _continuum(s: np.ndarray, d: np.ndarray, w: np.ndarray, period: float) -> np.ndarray:
    from scipy.interpolate import make_lsq_spline

    k = 3
    span = s[-1] - s[0]
    nint = max(1, int(span / (3.0 * period)))
    inner = np.linspace(s[0], s[-1], nint + 1)[1:-1]
    t = np.concatenate([[s[0]] * (k + 1), inner, [s[-1]] * (k + 1)])
    try:
        spl = make_lsq_spline(s, d, t, k=k, w=w)
    except (ValueError, np.linalg.LinAlgError):
        return np.polyval(np.polyfit(s, d, 3, w=w), s)
    return spl(s)


def _line_mask(r: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Points of ``r`` (relative residual) that belong to emission/absorption lines: beyond
    5 robust sigma of the residual, grown by 3 points (lines are not fringes)."""
    good = w > 0
    if good.sum() < 10:
        return np.zeros(r.size, bool)
    med = np.median(r[good])
    mad = 1.4826 * np.median(np.abs(r[good] - med)) or 1e-12
    bad = np.abs(r - med) > 5.0 * mad
    if bad.any():
        grown = bad.copy()
        for k in range(1, 4):
            grown[k:] |= bad[:-k]
            grown[:-k] |= bad[k:]
        bad = grown
    return bad


def fit_column(s: np.ndarray, d: np.ndarray, w: np.ndarray, freq: dict[str, float]
               ) -> np.ndarray | None:
    """The fringe factor ``1 + fringe(s)`` of one column (``s`` increasing), or None. Lines
    (``_line_mask``) are left out of the fits; the factor is defined everywhere."""
    f0, df = freq["ffreq"], freq["dffreq"]
    period = 1.0 / f0
    if (s[-1] - s[0]) / period < freq["min_nfringes"]:
        return None
    factor = np.ones_like(d)
    ww = np.array(w, np.float64, copy=True)
    for it in range(3):
        cont = _continuum(s, d / factor, ww, period)
        ok = cont > 0
        if ok.sum() < 20:
            return None
        r = np.where(ok, d / np.where(ok, cont, 1.0) - 1.0, 0.0)
        if it == 0:
            ww = np.where(_line_mask(r, ww), 0.0, ww)
            continue
        ww_ok = np.where(ok, ww, 0.0)
        best = None
        for f in np.linspace(f0 - df, f0 + df, 41):
            A = _design(s, f) * np.sqrt(ww_ok)[:, None]
            coef, *_ = np.linalg.lstsq(A, r * np.sqrt(ww_ok), rcond=None)
            res = float(np.sum(ww_ok * (r - _design(s, f) @ coef) ** 2))
            if best is None or res < best[0]:
                best = (res, f, coef)
        res, f, coef = best
        model = _design(s, f) @ coef
        amp = float(np.max(np.hypot(coef[0] + coef[1] * np.array([-0.5, 0.5]),
                                    coef[2] + coef[3] * np.array([-0.5, 0.5]))))
        if amp > freq["max_amp"] or res >= float(np.sum(ww_ok * r * r)):
            return None
        factor = 1.0 + model
    return factor


def correct(model: DataModel, ref: DataModel | None, params: ResidualFringeParams
            ) -> tuple[np.ndarray, dict[str, list[float]]]:
    """The per-pixel fringe factor of an MRS exposure (1 where nothing was fitted) and the
    fitted amplitudes per channel."""
    px = I.pixels(model)
    data = np.asarray(model["data"], np.float64)
    err = np.asarray(model.arrays.get("err", np.ones(data.shape)), np.float64)
    factor = np.ones(data.shape)
    ignore = np.zeros(data.shape, bool)
    if params.ignore_region_min and params.ignore_region_max:
        for lo, hi in zip(params.ignore_region_min, params.ignore_region_max):
            ignore |= (px.lam >= lo) & (px.lam <= hi)
    amps: dict[str, list[float]] = {}
    band = str(model.get("instrument.band") or "")
    for lab in np.unique(px.label[px.valid]):
        ch = str(int(lab) // 100)
        freq = freq_table(ref, band, int(lab))
        ys, xs = np.nonzero(px.label == lab)
        for x in np.unique(xs):
            rows = ys[xs == x]
            lam = px.lam[rows, x]
            d, e = data[rows, x], err[rows, x]
            good = np.isfinite(d) & np.isfinite(e) & (e > 0) & ~ignore[rows, x]
            if good.sum() < 40:
                continue
            if np.median(d[good] / e[good]) < freq["min_snr"]:
                continue
            s = 1.0 / lam[good]
            order = np.argsort(s)
            fac = fit_column(s[order], d[good][order], 1.0 / e[good][order] ** 2 /
                             np.mean(1.0 / e[good] ** 2), freq)
            if fac is None:
                continue
            col = np.ones(rows.size)
            tmp = np.ones(good.sum())
            tmp[order] = fac
            col[good] = tmp
            # pixels of the column not fitted (ignored, bad) get the nearest factor
            if (~good).any():
                col[~good] = np.interp(1.0 / lam[~good], s[order], fac)
            factor[rows, x] = col
            amps.setdefault(ch, []).append(float(np.std(fac) * math.sqrt(2.0)))
    return factor, amps


@register(NAME, VERSION, "spec2", ResidualFringeParams, (), keyword="S_RESFRI",
          optional_reftypes=("fringefreq", "regions"), skip_by_default=True,
          exec_only=("save_intermediate_results", "search_output_file"), instruments=("MIRI",))
def residual_fringe(model: DataModel, refs: dict, params: ResidualFringeParams) -> DataModel:
    """MRS: fit and divide out the residual fringes column by column."""
    if exp_type(model) != "MIR_MRS":
        return model
    factor, amps = correct(model, (refs or {}).get("fringefreq"), params)
    arrays = {}
    for k in ("data", "err", "var_poisson", "var_rnoise", "var_flat"):
        a = model.arrays.get(k)
        if a is None:
            continue
        a = np.asarray(a, np.float64)
        arrays[k] = (a / factor ** 2 if k.startswith("var") else a / factor).astype(np.float32)
    arrays = match_nans_and_flags(arrays, model["dq"])
    summary = {ch: float(np.median(v)) for ch, v in sorted(amps.items())}
    return model.replace(arrays=arrays, meta={"cal_step.residual_fringe": "COMPLETE",
                                              "residual_fringe.amplitude": summary})
