"""combine_1d: combine the 1-D spectra of each source into one (c1d).

jwst 3.0's Combine1dStep: for every source (and spectral order) the output wavelengths are the
union of the inputs' wavelengths binned in groups of the number of spectra that cover them
(``count_input`` / ``compute_output_wl``: clumps of nearly equal wavelengths are averaged);
each input pixel not DO_NOT_USE (and with a finite flux) goes to the nearest output pixel
(interpolated through the output wavelength table), and the output is the weighted mean with
weights the exposure's ``exptime_key`` value (``exposure_time``, ``integration_time`` or
``unit_weight``); errors ``sqrt(sum (w e)^2) / sum w``; DQ the OR of the inputs used; output
elements no input reached are dropped. ``sigma_clip`` clips inputs further than that many
median absolute deviations from the median (of weighted fluxes), as jwst.

Input: a tuple of x1d products (one per exposure) or one x1d with several spectra; spectra are
grouped by ``product.source_id`` (set by stage 3), else by ``source_id``. Output: a c1d with one
spectrum per source (``spectra`` = source keys), or the single-source CombinedSpecModel layout
when the input names no sources.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms import spectral as S
from transforms.model import DataModel
from transforms.registry import register

SPEC_META = ("source_id", "dispersion_direction", "source_type", "source_ra", "source_dec",
             "spectral_order", "product.source_id", "product.slit_name", "name")


class Combine1dError(ValueError):
    """Bad combine_1d parameters or inputs."""


@dataclass(frozen=True)
class Combine1dParams:
    """jwst 3.0 Combine1dStep parameters (spec defaults)."""

    exptime_key: str = "exposure_time"
    sigma_clip: float | None = None


def check_exptime(key: str) -> str:
    k = str(key).lower()
    if k.startswith("integration") or k == "effinttm":
        return "integration_time"
    if k.startswith("exposure") or k == "effexptm":
        return "exposure_time"
    return "unit_weight"


def count_input(wls: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """jwst's ``count_input``: every input wavelength (sorted) and how many inputs cover it."""
    use = [np.asarray(w, np.float64) for w in wls if len(w) > 1]
    if not use:
        raise Combine1dError("combine_1d needs spectra with at least two wavelengths")
    wl = np.sort(np.concatenate(use))
    n = np.zeros(wl.size, np.int64)
    for w in use:
        if w[1] > w[0]:
            lo, hi = w[0] - 0.5 * (w[1] - w[0]), w[-1] + 0.5 * (w[-1] - w[-2])
        elif w[1] < w[0]:
            lo, hi = w[-1] - 0.5 * (w[-2] - w[-1]), w[0] + 0.5 * (w[0] - w[1])
        else:
            continue
        n += (wl >= lo) & (wl < hi)
    return wl, np.maximum(n, 1)


def compute_output_wl(wl: np.ndarray, n_in: np.ndarray) -> np.ndarray:
    """jwst's ``compute_output_wl`` (clumps of overlapping wavelengths averaged, gaps filled
    with block means)."""
    nwl = wl.size
    sigma = np.full(nwl, 9999.0)
    mean_wl = np.full(nwl, -99.0)
    temp = np.full(nwl, -99.0)
    for k in range(nwl):
        n = int(n_in[k])
        if n == 1:
            sigma[k] = 0.0
            mean_wl[k] = wl[k]
            temp[k] = wl[k]
        else:
            k1 = k + n // 2 + 1
            k0 = k1 - n
            if k0 >= 0 and k1 <= nwl:
                sigma[k] = wl[k0:k1].std()
                mean_wl[k] = wl[k0:k1].mean()
                if sigma[k] == 0.0:
                    temp[k] = mean_wl[k]
    cutoff = 0.8
    for k in range(nwl):
        if sigma[k] > 0.0:
            if k == 0:
                ok = nwl > 1 and sigma[k] < cutoff * sigma[1]
            elif k == nwl - 1:
                ok = sigma[k] < cutoff * sigma[nwl - 2]
            else:
                ok = sigma[k] < cutoff * (sigma[k - 1] + sigma[k + 1]) / 2.0
            if ok:
                temp[k] = mean_wl[k]
    i = 0
    while i < nwl:
        n = int(n_in[i])
        middle = n // 2
        if i + middle < nwl:
            n = int(n_in[i + middle])
            if i + n < nwl:
                low, high = max(i - 1, 0), min(i + n + 1, nwl - 1)
                if temp[low:high].max() <= 0.0:
                    temp[i] = wl[i:i + n].mean()
        i += max(n, 1)
    return np.sort(temp[temp > 0.0])


@dataclass(frozen=True)
class _In:
    spec: S.Spectrum
    weight: float


def _usable(sp: S.Spectrum) -> bool:
    f = np.asarray(sp.columns.get("flux", []), np.float64)
    w = np.asarray(sp.columns.get("wavelength", []), np.float64)
    if f.size == 0 or not np.isfinite(f).any():
        return False
    if w.size < 2:
        return True
    d = np.diff(w)
    return bool(np.all(d > 0) or np.all(d < 0))


def combine_group(inputs: Sequence[_In], sigma_clip: float | None = None
                  ) -> dict[str, np.ndarray]:
    """The combined columns of one source's spectra."""
    out_wl = compute_output_wl(*count_input([i.spec["wavelength"] for i in inputs]))
    nel, nsp = out_wl.size, len(inputs)
    flux = np.zeros((nsp, nel))
    ferr = np.zeros((nsp, nel))
    sb = np.zeros((nsp, nel))
    sberr = np.zeros((nsp, nel))
    weight = np.zeros((nsp, nel))
    count = np.zeros((nsp, nel))
    dq = np.zeros(nel, np.uint32)
    pix = np.arange(nel, dtype=np.float64)
    for s, inp in enumerate(inputs):
        c = inp.spec.columns
        wl = np.asarray(c["wavelength"], np.float64)
        k = np.interp(wl, out_wl, pix, left=np.nan, right=np.nan) if nel > 1 else \
            np.where(wl == out_wl[0], 0.0, np.nan)
        f = np.asarray(c["flux"], np.float64)
        idq = np.asarray(c.get("dq", np.zeros(wl.size, np.uint32)), np.uint32)
        fe = np.asarray(c.get("flux_error", np.zeros(wl.size)), np.float64)
        sbi = np.asarray(c.get("surf_bright", np.zeros(wl.size)), np.float64)
        sbe = np.asarray(c.get("sb_error", np.zeros(wl.size)), np.float64)
        for i in range(wl.size):
            if (idq[i] & DQ.DO_NOT_USE) or np.isnan(f[i]) or np.isnan(k[i]):
                continue
            kk = int(round(float(k[i])))
            if kk < 0 or kk >= nel:
                continue
            dq[kk] |= idq[i]
            flux[s, kk] = f[i]
            ferr[s, kk] = fe[i]
            sb[s, kk] = sbi[i]
            sberr[s, kk] = sbe[i]
            weight[s, kk] = inp.weight
            count[s, kk] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if sigma_clip is not None:
            f2 = flux * weight
            miss = (count < 1) | (f2 == 0.0)
            f2[miss] = np.nan
            med = np.nanmedian(f2, axis=0)
            mad = np.nanmedian(np.abs(f2 - med))
            clipped = np.abs(flux * weight - med) > sigma_clip * mad
            flux[clipped] = np.nan
            ferr[clipped] = np.nan
            sb[clipped] = np.nan
            sberr[clipped] = np.nan
            count[clipped] = 0
            weight[clipped] = 0
        sw = np.nansum(weight, axis=0)
        swn = np.where(sw > 0.0, sw, 1.0)
        oflux = np.nansum(flux * weight, axis=0) / swn
        oerr = np.sqrt(np.nansum((ferr * weight) ** 2, axis=0)) / swn
        osb = np.nansum(sb * weight, axis=0) / swn
        osberr = np.sqrt(np.nansum((sberr * weight) ** 2, axis=0)) / swn
        ocount = np.nansum(count, axis=0)
    keep = ocount > 0
    return {"wavelength": out_wl[keep], "flux": oflux[keep], "error": oerr[keep],
            "surf_bright": osb[keep], "sb_error": osberr[keep], "dq": dq[keep],
            "weight": sw[keep], "n_input": ocount[keep]}


def _weight(meta: Mapping[str, Any], key: str, spec: S.Spectrum) -> float:
    if key == "unit_weight":
        return 1.0
    k = f"exposure.{key}"
    v = spec.get(k, meta.get(k))
    if v is None:
        raise Combine1dError(f"combine_1d weights by {key} but spectrum {spec.name} has none "
                             "(set exptime_key='unit_weight')")
    return float(v)


def combine(models: Sequence[DataModel], params: Combine1dParams) -> DataModel:
    """Combine the spectra of ``models`` per source (see the module docstring)."""
    models = tuple(models)
    if not models:
        raise Combine1dError("combine_1d needs at least one x1d product")
    key = check_exptime(params.exptime_key)
    groups: dict[str, list[_In]] = {}
    named = False
    for m in models:
        for sp in S.spectra(m):
            if not _usable(sp):
                continue
            g = sp.get("product.source_id")
            named = named or g is not None
            if g is None:
                sid = sp.get("source_id")
                g = f"s{int(sid):05d}" if sid is not None else "spectrum"
            groups.setdefault(str(g), []).append(_In(sp, _weight(m.meta, key, sp)))
    base = models[0].meta
    if not groups:
        return S.spectra_product("c1d", base, [], meta={"cal_step.combine_1d": "SKIPPED"})
    specs = []
    for g, ins in groups.items():
        cols = combine_group(ins, params.sigma_clip)
        first = ins[0].spec
        meta = {k: first.get(k) for k in SPEC_META if first.get(k) is not None}
        meta["n_spectra"] = len(ins)
        for unit in ("flux_unit", "sb_unit"):
            if first.get(unit) is not None:
                meta[unit] = first.get(unit)
        specs.append(S.Spectrum(g, cols, meta))
    single = len(specs) == 1 and not named
    return S.spectra_product("c1d", base, specs, meta={"cal_step.combine_1d": "COMPLETE"},
                             single=single)


@register("combine_1d", "1.0", "spec3", Combine1dParams, (), keyword="S_COMB1D",
          instruments=("NIRSPEC", "MIRI"))
def combine_1d(x1ds, refs: dict, params: Combine1dParams) -> DataModel:
    """Combine each source's 1-D spectra into one (c1d), weighted by exposure time."""
    if isinstance(x1ds, DataModel):
        x1ds = (x1ds,)
    bad = [m.kind for m in x1ds if m.kind != "x1d"]
    if bad:
        raise Combine1dError(f"combine_1d takes x1d products, got {sorted(set(bad))}")
    return combine(tuple(x1ds), params)
