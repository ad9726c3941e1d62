"""bkg_subtract: subtract the nod (or dedicated) background exposures, as jwst's BackgroundStep
for slit spectroscopy (the step alias in calwebb_spec2 is ``bkg_subtract``).

The step takes the science exposure and its background members:
``apply((science, background1, ...), refs, params)``; without background members it is
SKIPPED, as jwst. The backgrounds are averaged pixel by pixel with a sigma-clipped mean
(``sigma``, ``maxiters`` as astropy's ``sigma_clip`` over the members; NaN where every member
is NaN), their DQ OR-ed; the average is subtracted from the science data and its DQ OR-ed into
the science DQ. As jwst 3.0, the science err and variances are not changed. NIRSpec backgrounds
whose grating tilt (GWA_XTIL/GWA_YTIL) differs from the science's make the step SKIPPED.

``nod_backgrounds`` is jwst's association rule for nodded NIRSpec FS/MOS and MIRI LRS: every
other nod position of the same target becomes a background member, except (NIRSpec) one that
shares the science's primary dither point, or for S1600A1 5-point patterns the nearest ones
(build 11's fix of nod-flux oversubtraction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms.model import DataModel
from transforms.registry import register
from transforms.spec2._common import Spec2Error

NAME, VERSION = "bkg_subtract", "1.0"


@dataclass(frozen=True)
class BkgSubtractParams:
    """jwst 3.0 BackgroundStep spec. The WFSS/SOSS parameters and ``bkg_list`` (file names:
    calops passes background members as inputs) are accepted for pinning compatibility."""

    bkg_list: tuple[str, ...] | None = None
    save_combined_background: bool = False
    sigma: float = 3.0
    maxiters: int | None = None
    soss_source_percentile: float = 35.0
    soss_bkg_percentile: tuple[float, float] | None = None
    wfss_mmag_extract: float | None = None
    wfss_mask: str | None = None
    wfss_maxiter: int = 5
    wfss_rms_stop: float = 0.0
    wfss_outlier_percent: float = 1.0


def clipped_mean(stack: np.ndarray, sigma: float, maxiters: int | None) -> np.ndarray:
    """astropy's ``sigma_clip(stack, sigma, maxiters, axis=0).mean(axis=0)`` (median centre,
    standard deviation), vectorised; NaN where nothing survives."""
    a = np.array(stack, dtype=np.float64)
    mask = ~np.isfinite(a)
    it = 0
    while maxiters is None or it < maxiters:
        it += 1
        with np.errstate(invalid="ignore"):
            m = np.where(mask, np.nan, a)
            cen = np.nanmedian(m, axis=0)
            std = np.nanstd(m, axis=0)
            new = mask | (np.abs(a - cen) > sigma * std)
        if np.array_equal(new, mask):
            break
        mask = new
    with np.errstate(invalid="ignore"):
        cnt = (~mask).sum(axis=0)
        s = np.where(mask, 0.0, a).sum(axis=0)
        return np.where(cnt > 0, s / np.maximum(cnt, 1), np.nan)


def average_background(backgrounds: Sequence[DataModel], shape: tuple[int, ...],
                       sigma: float, maxiters: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(clipped mean data, OR of DQ) of the background members (same window required)."""
    for b in backgrounds:
        if np.shape(b["data"])[-2:] != tuple(shape[-2:]):
            raise Spec2Error(f"{NAME}: a background member is {np.shape(b['data'])}, the "
                             f"science {tuple(shape)}; nods must share the window")
    stack = np.stack([np.asarray(b["data"], np.float64) for b in backgrounds])
    dq = np.zeros(shape[-2:], np.uint32)
    for b in backgrounds:
        if "dq" in b.arrays:
            bq = np.asarray(b["dq"]).astype(np.uint32)
            dq |= np.bitwise_or.reduce(bq, axis=0) if bq.ndim == 3 else bq
    if stack.ndim == 4:  # rateints: average each member's integrations first
        stack = np.stack([clipped_mean(s, sigma, maxiters) for s in stack])
    return clipped_mean(stack, sigma, maxiters), dq


@register(NAME, VERSION, "spec2", BkgSubtractParams, (), keyword="S_BKDSUB",
          exec_only=("save_combined_background",))
def bkg_subtract(model, refs, params: BkgSubtractParams) -> DataModel:
    """Subtract the sigma-clipped mean of the background members (nods)."""
    models = tuple(model) if isinstance(model, (tuple, list)) else (model,)
    science, backgrounds = models[0], models[1:]
    if not backgrounds:
        return science.replace(meta={"cal_step.bkg_subtract": "SKIPPED"})
    if str(science.get("instrument.name") or "").upper() == "NIRSPEC":
        tilt = (science.get("instrument.gwa_xtilt"), science.get("instrument.gwa_ytilt"))
        for b in backgrounds:
            bt = (b.get("instrument.gwa_xtilt"), b.get("instrument.gwa_ytilt"))
            if None not in tilt + bt and not np.allclose(tilt, bt, atol=1e-8, rtol=0):
                return science.replace(meta={"cal_step.bkg_subtract": "SKIPPED"})
    data = np.asarray(science["data"], np.float64)
    bkg, bdq = average_background(backgrounds, data.shape, params.sigma, params.maxiters)
    out = {"data": (data - bkg).astype(np.float32)}
    if "dq" in science.arrays:
        out["dq"] = np.asarray(science["dq"]).astype(np.uint32) | bdq
    return science.replace(arrays=out, meta={"cal_step.bkg_subtract": "COMPLETE"})


def nod_background_overlap(science: Mapping[str, Any], background: Mapping[str, Any]) -> bool:
    """jwst's ``nod_background_overlap`` on exposure metadata (True: not a usable background)."""
    et = str(science.get("exposure.type") or "").upper()
    if et not in ("NRS_FIXEDSLIT", "NRS_MSASPEC"):
        return False
    if science.get("target.catalog_name") != background.get("target.catalog_name"):
        return True
    try:
        n = int(science["dither.total_points"])
        p, q = int(science["dither.position_number"]), int(background["dither.position_number"])
        sub = int(science.get("dither.subpixel_total_points") or 1)
        bsub = int(background.get("dither.subpixel_total_points") or 1)
    except (KeyError, TypeError, ValueError):
        return et == "NRS_FIXEDSLIT"
    if sub == 0 or bsub == 0:
        return et == "NRS_FIXEDSLIT"
    sp, bp = (p - 1) // sub, (q - 1) // bsub
    if sp == bp:
        return True
    if et == "NRS_MSASPEC":
        return False
    slit = str(science.get("instrument.fixed_slit") or "").upper()
    return slit == "S1600A1" and n // sub == 5 and abs(sp - bp) <= 1


def nod_backgrounds(science: Mapping[str, Any], candidates: Sequence[Mapping[str, Any]]
                    ) -> list[int]:
    """Indices of the ``candidates`` (other exposures of the same observation and nod
    pattern) that jwst's level-2 nod association makes background members of ``science``."""
    out = []
    key = ("observation.program_number", "observation.observation_number",
           "exposure.type", "instrument.grating", "instrument.filter",
           "instrument.fixed_slit", "dither.primary_type")
    for i, c in enumerate(candidates):
        if c is science or c.get("filename") == science.get("filename"):
            continue
        if any(c.get(k) != science.get(k) for k in key):
            continue
        if c.get("calops.leakcal"):
            continue
        if "NOD" not in str(science.get("dither.primary_type") or "").upper() \
                and "SLITLET" not in str(science.get("dither.primary_type") or "").upper():
            continue
        if not nod_background_overlap(science, c):
            out.append(i)
    return out
