"""spectral_leak 1.0: correct MIRI MRS channel 3A for the 6 um light leaking into it
(jwst 3.0's SpectralLeakStep).

Given the stage-3 x1d of an MRS association (one spectrum per cube): the channel 1B spectrum
(a ``ch1-medium`` cube, or a multi-band channel-1 cube covering 6 um) and the channel 3A one
(``ch3-short``, or a multi-band channel-3 cube covering 12 um); for point sources only, the 3A
flux (and the residual-fringe-corrected ``rf_flux``) loses ``leak(lambda) = F_1B(lambda / 2) x
frac_leak(lambda)`` (the mrsptcorr reference's LEAKCOR table). Without both spectra, for
extended sources, or for other data: SKIPPED.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transforms import spectral as S
from transforms.model import DataModel
from transforms.registry import register

NAME, VERSION = "spectral_leak", "1.0"


@dataclass(frozen=True)
class SpectralLeakParams:
    """jwst 3.0 SpectralLeakStep has no parameters."""


def _find(specs, channel: str, band: str, wave: float):
    for sp in specs:
        n = str(sp.name).lower()
        if n == f"ch{channel}-{band}":
            return sp
    for sp in specs:
        n = str(sp.name).lower()
        w = sp["wavelength"]
        if n.startswith(f"ch{channel}-") and w.size and np.nanmin(w) < wave < np.nanmax(w):
            return sp
    return None


@register(NAME, VERSION, "spec3", SpectralLeakParams, (), keyword="S_SPLEAK",
          optional_reftypes=("mrsptcorr",), instruments=("MIRI",), exp_types=("MIR_MRS",))
def spectral_leak(x1d: DataModel, refs: dict, params: SpectralLeakParams) -> DataModel:
    """MRS point sources: subtract channel 1B's second-order leak from channel 3A."""
    skipped = x1d.replace(meta={"cal_step.spectral_leak": "SKIPPED"})
    if str(x1d.get("exposure.type", "")).upper() != "MIR_MRS":
        return skipped
    ref = (refs or {}).get("mrsptcorr")
    specs = S.spectra(x1d)
    ch1b = _find(specs, "1", "medium", 6.0)
    ch3a = _find(specs, "3", "short", 12.0)
    if ref is None or ch1b is None or ch3a is None:
        return skipped
    if str(ch3a.get("source_type", "")).upper() == "EXTENDED":
        return skipped
    lw = np.asarray(ref.arrays["leakcor_table.wavelength"], np.float64)
    lf = np.asarray(ref.arrays["leakcor_table.frac_leak"], np.float64)
    w3 = np.asarray(ch3a["wavelength"], np.float64)
    w1 = np.asarray(ch1b["wavelength"], np.float64)
    frac = np.interp(w3, lw, lf)
    cols = dict(ch3a.columns)
    for c in ("flux", "rf_flux"):
        if c in cols and c in ch1b.columns:
            f1 = np.asarray(ch1b[c], np.float64)
            ok = np.isfinite(f1)
            leak = np.interp(w3, 2.0 * w1[ok], f1[ok]) * frac if ok.sum() > 1 else 0.0
            cols[c] = np.asarray(cols[c], np.float64) - leak
    out = [S.Spectrum(sp.name, cols if sp.name == ch3a.name else sp.columns, sp.meta)
           for sp in specs]
    return S.spectra_product("x1d", x1d.meta, out, meta={"cal_step.spectral_leak": "COMPLETE"})
