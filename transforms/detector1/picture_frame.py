"""picture_frame: remove NIRSpec's thermal "picture frame" (a glow brightest at the detector
edges that changes from exposure to exposure), as jwst 3.0's PictureFrameStep does on a ramp.

NIRSpec full frame only (other exposures: SKIPPED, as in jwst; single-group ramps too); JWST
skips the step by default. Between jump and clean_flicker_noise:

1. a draft rate: the ramp fitted with ramp_fit 1.1 and its gain/readnoise references;
2. a background mask: pixels whose draft rate is finite and non-zero, then clipped to the
   background (sigma-clipped stats of the masked rate, 3-sigma, median centre: keep
   centre - 3 sigma .. centre + ``n_sigma`` sigma), as clean_flicker_noise's ``clip_to_background``;
3. the centre region (rows and columns 76..1983) and the edge region (4..74 and 1985..2042)
   of that mask; medians of the reference slope image over both;
4. every group minus group 0: its centre and edge medians give a scale
   ``(centre - edge) / (centre_ref - edge_ref)`` and the correction
   ``scale * (reference - edge_ref) + edge``, subtracted from that group (group 0 unchanged).

The correction takes the edge-region background level out with the glow, as jwst's does.
``mask_science_regions`` (slit/slice/open-shutter footprints from assign_wcs and msaflagopen)
needs the spectral WCS, which stage 1 does not have here: the mask is the clipped draft rate
alone, which is what jwst falls back to when no WCS can be assigned. ``save_mask`` and
``save_correction`` are output options (ignored: transforms write no files).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms.model import DataModel
from transforms.registry import register

from . import ramp_fit_v11
from ._subarray import apply_by_copy, need_ref

NAME = "picture_frame"
VERSION = "1.0"
LOWER_EDGE = (4, 75)
UPPER_EDGE = (1985, 2043)
CENTER = (76, 1984)


@dataclass(frozen=True)
class PictureFrameParams:
    """jwst 3.0's PictureFrameStep parameters and defaults (skip: registry default)."""

    mask_science_regions: bool = True
    n_sigma: float = 2.0
    save_mask: bool = False
    save_correction: bool = False


def region_masks(background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centre, edge) background pixels of a full frame, as jwst's _region_masks."""
    y, x = np.mgrid[: background.shape[0], : background.shape[1]]
    centre = background & (y >= CENTER[0]) & (y < CENTER[1]) & (x >= CENTER[0]) & (x < CENTER[1])
    outside = ((y < LOWER_EDGE[0]) | (y >= UPPER_EDGE[1]) | (x < LOWER_EDGE[0])
               | (x >= UPPER_EDGE[1]))
    band = ((y >= LOWER_EDGE[0]) & (y < LOWER_EDGE[1])) | ((y >= UPPER_EDGE[0]) & (y < UPPER_EDGE[1])) \
        | ((x >= LOWER_EDGE[0]) & (x < LOWER_EDGE[1])) | ((x >= UPPER_EDGE[0]) & (x < UPPER_EDGE[1]))
    return centre, background & band & ~outside


def background_mask(rate: np.ndarray, n_sigma: float) -> np.ndarray:
    """True where the draft rate is background (see the module doc, step 2)."""
    mask = np.isfinite(rate) & (rate != 0)
    if not mask.any() or n_sigma <= 0:
        return mask
    img = rate.astype(np.float64)
    v = img[mask]
    for _ in range(5):  # astropy's sigma_clipped_stats(sigma=3): median centre, std
        c, sd = np.median(v), v.std()
        keep = (v >= c - 3.0 * sd) & (v <= c + 3.0 * sd)
        if keep.all():
            break
        v = v[keep]
    centre, std = float(np.median(v)), float(v.std())
    mask &= (img >= centre - 3.0 * std) & (img <= centre + n_sigma * std)
    return mask


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: PictureFrameParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Subtract the scaled picture-frame pattern from every group after the first."""
    skipped = {f"cal_step.{NAME}": "SKIPPED"}
    if (str(meta.get("instrument.name", "")).upper() != "NIRSPEC"
            or str(meta.get("subarray.name", "")).upper() != "FULL"):
        return skipped
    data = arrays["data"]
    if data.shape[1] < 2:
        return skipped
    ref = need_ref(refs, "pictureframe", NAME)
    slope = np.asarray(ref["data"], np.float32)
    ramp = DataModel("ramp", {k: arrays[k] for k in ("data", "groupdq", "pixeldq")}, dict(meta))
    rate, _ = ramp_fit_v11.fit_ramps(ramp, refs)
    bkg = background_mask(np.asarray(rate["data"]), float(params.n_sigma))
    centre, edge = region_masks(bkg)
    if not centre.any() or not edge.any():
        return skipped
    c_ref = np.nanmedian(slope[centre])
    e_ref = np.nanmedian(slope[edge])
    diff = slope - e_ref
    for i in range(data.shape[0]):
        zero = data[i, 0].copy()
        for g in range(1, data.shape[1]):
            image = data[i, g] - zero
            mc = np.nanmedian(image[centre])
            me = np.nanmedian(image[edge])
            scale = (mc - me) / (c_ref - e_ref)
            correction = scale * diff + me
            image += zero - correction
            data[i, g] = image
    return {f"cal_step.{NAME}": "COMPLETE"}


@register(NAME, VERSION, "detector1", PictureFrameParams, ("pictureframe", "gain", "readnoise"),
          keyword="S_PCTFRM", inplace=apply_inplace, skip_by_default=True,
          instruments=("NIRSPEC",), exec_only=("save_mask", "save_correction"))
def apply(model: DataModel, refs: Mapping[str, DataModel], params: PictureFrameParams) -> DataModel:
    """Remove NIRSpec's thermal picture frame (full frame), scaled to each group."""
    return apply_by_copy(model, refs, params, NAME, apply_inplace)
