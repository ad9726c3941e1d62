"""outlier_detection for IFU exposures: jwst 3.0's ``ifu`` mode (a pure function
outlier_detection 2.1 calls for MIR_MRS and NRS_IFU).

Per detector, over its exposures: each exposure's absolute differences to its two neighbours
along the spatial axis (MIRI: along x, across the slices' columns; NIRSpec: along y), the
smaller of the two, DO_NOT_USE pixels NaN; the minimum over exposures (a pixel bad in every
exposure: a bad pixel the mask does not know); normalised by its median filter
(``kernel_size``, odd, jwst's ``scipy.signal.medfilt``) floored at a third of its median; the
pixels above the ``threshold_percent`` percentile of the normalised map (the 4-pixel frame left
out of the percentile) become OUTLIER | DO_NOT_USE (and NaN) in **every** exposure of the
detector; ``ifu_second_check`` also flags where the minimum is NaN. Fewer than two exposures:
SKIPPED, as jwst.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms.model import DataModel
from transforms.spec2._ifu_common import match_nans_and_flags

_FLAG = np.uint32(DQ.OUTLIER | DQ.DO_NOT_USE)


def _kernel(text: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in str(text).split())
    except ValueError:
        raise ValueError(f"outlier_detection kernel_size must be two integers like '7 7', "
                         f"got {text!r}") from None
    return a + (1 - a % 2), b + (1 - b % 2)


def outlier_ifu(models: Sequence[DataModel], params: Any) -> tuple[DataModel, ...]:
    from scipy.signal import medfilt

    models = tuple(models)
    if len(models) < 2:
        return tuple(m.replace(meta={"cal_step.outlier_detection": "SKIPPED"}) for m in models)
    kx, ky = _kernel(params.kernel_size)
    inst = str(models[0].get("instrument.name", "")).upper()
    diffaxis = 1 if inst == "MIRI" else 0
    by_det: dict[str, list[int]] = {}
    for i, m in enumerate(models):
        by_det.setdefault(str(m.get("instrument.detector", "")).lower(), []).append(i)
    flags: dict[int, np.ndarray] = {}
    for det, idx in by_det.items():
        diffs = []
        for i in idx:
            sci = np.array(models[i]["data"], np.float64)
            bad = (np.asarray(models[i]["dq"]) & DQ.DO_NOT_USE) != 0
            sci[bad] = np.nan
            left = np.abs(np.diff(sci, axis=diffaxis, prepend=0))
            right = np.abs(np.flip(np.diff(np.flip(sci, axis=diffaxis), axis=diffaxis,
                                           prepend=0), axis=diffaxis))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                diffs.append(np.nanmin(np.stack([left, right]), axis=0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            minarr = np.nanmin(np.stack(diffs), axis=0)
            norm = medfilt(minarr, (kx, ky))  # jwst: kernel_size as given, on (ny, nx)
            floor = np.nanmedian(minarr) / 3.0
            norm[norm < floor] = floor
            ratio = minarr / norm
            ny, nx = ratio.shape
            pct = np.nanpercentile(ratio[4:ny - 4, 4:nx - 4], params.threshold_percent)
        hit = ratio > pct
        if params.ifu_second_check:
            hit |= np.isnan(minarr)
        for i in idx:
            flags[i] = hit
    out = []
    for i, m in enumerate(models):
        hit = flags[i]
        dq = np.where(hit, np.asarray(m["dq"]) | _FLAG, np.asarray(m["dq"])).astype(np.uint32)
        arrays = {k: m.arrays[k] for k in ("data", "err", "var_poisson", "var_rnoise",
                                           "var_flat") if k in m.arrays}
        arrays = match_nans_and_flags(arrays, dq)
        out.append(m.replace(arrays=arrays, meta={"cal_step.outlier_detection": "COMPLETE",
                                                  "outlier_detection.nflagged":
                                                      int(hit.sum())}))
    return tuple(out)
