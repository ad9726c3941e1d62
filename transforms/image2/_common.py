"""Helpers shared by the image2 steps: reference subarray cuts and NaN/DO_NOT_USE agreement."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from transforms import dq as dqf
from transforms.model import DataModel


class Image2Error(ValueError):
    """Bad input to an image2 step (missing arrays, references or metadata)."""


def need_ref(refs: Mapping[str, DataModel], reftype: str, step: str) -> DataModel:
    """The reference ``reftype`` or a clear error naming the step that needs it."""
    ref = refs.get(reftype) if refs else None
    if ref is None:
        raise Image2Error(f"{step} needs a '{reftype}' reference; resolve it through CRDS "
                          "or skip the step")
    return ref


def need_arrays(model: DataModel, step: str, *names: str) -> None:
    missing = [n for n in names if n not in model.arrays]
    if missing:
        raise Image2Error(f"{step}: input {model.kind} lacks arrays {', '.join(missing)}")
    if np.ndim(model["data"]) not in (2, 3):
        raise Image2Error(f"{step}: expected an image (2-D) or rateints (3-D) data array, "
                          f"got shape {np.shape(model['data'])}")


def cut_ref(arr: np.ndarray, ref_meta: Mapping[str, Any], sci_meta: Mapping[str, Any],
            shape: tuple[int, int], what: str) -> np.ndarray:
    """The part of a reference image under the science subarray (a view).

    A reference of the science shape is used as is; otherwise its own ``subarray.xstart/ystart``
    (default 1: full frame) locate it on the detector, as JWST's ``get_subarray_model``.
    """
    ny, nx = shape
    if arr.shape[-2:] == (ny, nx):
        return arr
    sx = int(sci_meta.get("subarray.xstart") or 1)
    sy = int(sci_meta.get("subarray.ystart") or 1)
    rx = int(ref_meta.get("subarray.xstart") or 1)
    ry = int(ref_meta.get("subarray.ystart") or 1)
    x0, y0 = sx - rx, sy - ry
    if x0 < 0 or y0 < 0 or y0 + ny > arr.shape[-2] or x0 + nx > arr.shape[-1]:
        raise Image2Error(f"{what} reference ({arr.shape[-1]}x{arr.shape[-2]} at {rx},{ry}) does "
                          f"not cover the science subarray ({nx}x{ny} at {sx},{sy})")
    return arr[..., y0:y0 + ny, x0:x0 + nx]


def match_nans_and_flags(arrays: dict[str, np.ndarray]) -> None:
    """Make NaN and DO_NOT_USE agree across data/err/variances/dq (in place on new arrays)."""
    names = [n for n in ("data", "err", "var_poisson", "var_rnoise", "var_flat") if n in arrays]
    bad = np.zeros(arrays["data"].shape, bool)
    for n in names:
        bad |= np.isnan(arrays[n])
    if "dq" in arrays:
        bad |= (arrays["dq"] & dqf.DO_NOT_USE) != 0
        arrays["dq"] = arrays["dq"] | np.where(bad, np.uint32(dqf.DO_NOT_USE), np.uint32(0))
    for n in names:
        arrays[n] = np.where(bad, np.float32(np.nan), arrays[n]).astype(np.float32)
