"""master_background for IFU associations (a pure function master_background 1.1 calls when
the science exposures are MIR_MRS or NRS_IFU).

As jwst 3.0's MasterBackgroundStep for IFU data, for a uniform background: the background
members' spectra (jwst: a cube of each, extracted as an extended source, combined) are made
directly from their calibrated pixels: per channel/band (MIRI) or grating/filter (NIRSpec),
every good pixel's surface brightness binned in wavelength (bins of the band's median pixel
width), a sigma-clipped mean per bin over all background exposures (sources in the
background field are clipped), smoothed by a moving median of ``median_kernel``; each science
pixel gets the master spectrum interpolated at its wavelength subtracted (0 and DO_NOT_USE
beyond the spectrum's range). Skipped (``SKIPPED``) when the association has no background
member, or every science exposure had its background subtracted in stage 2 (unless
``force_subtract``). Returns the science exposures; ``master_background.spectrum`` records the
master spectrum's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms import ifu as I
from transforms.model import DataModel
from transforms.spec2._ifu_common import NON_SCIENCE

_BAD = DQ.DO_NOT_USE | NON_SCIENCE


def _bands(m: DataModel) -> list[tuple[str, np.ndarray]]:
    """(band key, pixel mask) of an exposure: MIRI channel+band, NIRSpec grating/filter."""
    px = I.pixels(m)
    if str(m.get("instrument.name")).upper() == "MIRI":
        band = str(m.get("instrument.band"))
        return [(f"{ch}{band}", (px.label // 100) == int(ch))
                for ch in sorted({int(v) // 100 for v in np.unique(px.label[px.valid])})]
    return [(f"{m.get('instrument.grating')}/{m.get('instrument.filter')}", px.valid)]


def master_spectrum(bkgs: Sequence[DataModel], median_kernel: int = 1
                    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """band key -> (wavelength, surface brightness) of the background members."""
    from scipy.signal import medfilt

    pooled: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for m in bkgs:
        px = I.pixels(m)
        data = np.asarray(m["data"], np.float64)
        good = np.isfinite(data) & ((np.asarray(m["dq"]) & _BAD) == 0)
        for key, sel in _bands(m):
            s = sel & good
            pooled.setdefault(key, []).append((px.lam[s], data[s], px.dlam[s]))
    out = {}
    for key, parts in pooled.items():
        lam = np.concatenate([p[0] for p in parts])
        sb = np.concatenate([p[1] for p in parts])
        dl = float(np.median(np.concatenate([p[2] for p in parts])))
        if lam.size == 0 or not dl > 0:
            continue
        edges = np.arange(lam.min(), lam.max() + dl, dl)
        idx = np.clip(np.searchsorted(edges, lam, side="right") - 1, 0, edges.size - 2)
        order = np.argsort(idx, kind="stable")
        idx, v = idx[order], sb[order]
        starts = np.searchsorted(idx, np.arange(edges.size - 1))
        ends = np.searchsorted(idx, np.arange(edges.size - 1), side="right")
        mean = np.full(edges.size - 1, np.nan)
        for b in range(edges.size - 1):
            x = v[starts[b]:ends[b]]
            if x.size == 0:
                continue
            for _ in range(5):
                med, std = np.median(x), np.std(x)
                keep = np.abs(x - med) <= 3.0 * std if std > 0 else np.ones(x.size, bool)
                if keep.all():
                    break
                x = x[keep]
            mean[b] = float(np.mean(x))
        centre = 0.5 * (edges[:-1] + edges[1:])
        ok = np.isfinite(mean)
        w, f = centre[ok], mean[ok]
        k = int(median_kernel)
        if k > 1 and f.size:
            k = k if k % 2 else k - 1
            f = medfilt(f, k)
        out[key] = (w, f)
    return out


def subtract(m: DataModel, master: dict[str, tuple[np.ndarray, np.ndarray]]) -> DataModel:
    px = I.pixels(m)
    data = np.array(m["data"], np.float64)
    dq = np.array(m["dq"]).astype(np.uint32)
    bkg = np.zeros(data.shape)
    for key, sel in _bands(m):
        if key not in master:
            continue
        w, f = master[key]
        lam = px.lam[sel]
        inside = (lam >= w[0]) & (lam <= w[-1])
        b = np.where(inside, np.interp(lam, w, f), 0.0)
        bkg[sel] = b
        d = dq[sel]
        dq[sel] = np.where(inside, d, d | DQ.DO_NOT_USE)
    data = data - bkg
    data[(dq & DQ.DO_NOT_USE) != 0] = np.nan
    return m.replace(arrays={"data": data.astype(np.float32), "dq": dq},
                     meta={"cal_step.master_background": "COMPLETE"})


def master_background_ifu(models: Sequence[DataModel], refs: Any, params: Any
                          ) -> tuple[DataModel, ...]:
    from transforms.spec3.master_background import split

    sci, bkg = split(models)
    done = all(m.get("cal_step.bkg_subtract") == "COMPLETE"
               or m.get("cal_step.master_background") == "COMPLETE" for m in sci)
    if params.user_background is not None:
        raise ValueError("master_background: calops reads no user_background file (transforms "
                         "read no files); leave it None")
    if not bkg or (done and not params.force_subtract):
        return tuple(m.replace(meta={"cal_step.master_background": "SKIPPED"}) for m in sci)
    master = master_spectrum(bkg, params.median_kernel)
    out = []
    for m in sci:
        s = subtract(m, master)
        out.append(s.replace(meta={"master_background.spectrum": {
            k: int(v[0].size) for k, v in sorted(master.items())}}))
    return tuple(out)
