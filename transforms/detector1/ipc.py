"""ipc: correct interpixel capacitance by convolving every group with the IPC reference kernel.

jwst 3.0 semantics (``jwst.ipc.ipc_corr``): the ``ipc`` reference holds a *deconvolution*
kernel, either 2-D (``(kh, kw)``, usually 3x3, the same for every pixel) or 4-D
(``(kh, kw, ny, nx)``: a kernel per pixel, cut to the exposure's subarray). Each group of each
integration is convolved with it over the science region only: reference pixels are neither
used nor changed, and pixels beyond the science region count as zero. The reference rows and
columns are the detector's 4-pixel border as the subarray sees it (near-IR: rows and columns
< 4 or >= 2044 of the full frame; MIRI: columns < 4 and >= 1028, no reference rows). The step
runs on the raw ramp (before superbias), touches only ``data`` (not the zero frame, as jwst).
Results equal jwst's bit for bit (same float32 operations in the same order; tested).

Without an ``ipc`` reference (the context answers N/A or has none) the step is SKIPPED, as jwst
does for N/A. NIRSpec IRS2-format data are refused (jwst de-interleaves their reference pixels
first; not implemented). Kernel in ``_kernels_ipc``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms.detector1._kernels_ipc import convolve_planes
from transforms.detector1._kernels_threads import readonly
from transforms.detector1._subarray import apply_by_copy, cut_ref
from transforms.model import DataModel
from transforms.registry import register

NAME = "ipc"
VERSION = "1.0"
NIR_SIZE = 2048
MIRI_REF_EDGE = 1028  # MIRI: columns >= 1028 (1-based 1029..1032) are reference columns
REF_BORDER = 4


@dataclass(frozen=True)
class IPCParams:
    """jwst's ipc step has no parameters."""


def reference_border(meta: Mapping[str, Any], shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """(bottom rows, top rows, left columns, right columns) of reference pixels in an exposure
    of image ``shape`` (jwst's ``get_num_ref_pixels``)."""
    ny, nx = int(shape[0]), int(shape[1])
    x0 = int(meta.get("subarray.xstart") or 1) - 1
    y0 = int(meta.get("subarray.ystart") or 1) - 1
    xs = int(meta.get("subarray.xsize") or nx)
    ys = int(meta.get("subarray.ysize") or ny)
    left = max(0, REF_BORDER - x0)
    if str(meta.get("instrument.name", "")).upper() == "MIRI":
        return 0, 0, left, max(0, x0 + xs - MIRI_REF_EDGE)
    edge = NIR_SIZE - REF_BORDER
    return (max(0, REF_BORDER - y0), max(0, y0 + ys - edge), left, max(0, x0 + xs - edge))


def is_irs2(meta: Mapping[str, Any]) -> bool:
    return "IRS2" in str(meta.get("exposure.readpatt", "")).upper()


def kernel_for(ref: DataModel, meta: Mapping[str, Any], shape: tuple[int, int],
               border: tuple[int, int, int, int]) -> tuple[np.ndarray, bool]:
    """The kernel as the convolution takes it: 4-D float32 ``(kh, kw, ky, kx)`` and whether it
    is per pixel (then cut to the exposure and to its science region)."""
    if "data" not in ref.arrays:
        raise ValueError("ipc: the ipc reference has no 'data' array (the kernel)")
    k = np.asarray(ref["data"])
    if k.ndim == 2:
        if k.shape[0] < 1 or k.shape[1] < 1:
            raise ValueError(f"ipc: the ipc kernel is empty ({k.shape})")
        return readonly(k[:, :, None, None], np.float32), False
    if k.ndim != 4:
        raise ValueError(f"ipc: the ipc reference kernel must be 2-D (kh, kw) or 4-D "
                         f"(kh, kw, ny, nx), got shape {k.shape}")
    k = cut_ref(ref, "data", meta, shape)  # honours a subarray reference's own window
    b, t, lft, r = border
    ny, nx = shape
    return readonly(k[:, :, b:ny - t, lft:nx - r], np.float32), True


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: IPCParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Convolve the ramp buffer's ``data`` with the IPC kernel in place; SKIPPED without one."""
    ref = (refs or {}).get("ipc")
    if ref is None:
        return {f"cal_step.{NAME}": "SKIPPED"}
    if is_irs2(meta):
        raise ValueError("ipc: IRS2-format (NIRSpec IRS2) ramps are not supported; skip the ipc "
                         "step for them (jwst's NIRSpec contexts give no IPC reference)")
    data = arrays["data"]
    if data.ndim != 4 or data.dtype != np.float32 or not data.flags.c_contiguous:
        raise ValueError(f"ipc: data must be a C-contiguous float32 (nints, ngroups, ny, nx) "
                         f"array, got {data.dtype} {data.shape}")
    nints, ngroups, ny, nx = data.shape
    border = reference_border(meta, (ny, nx))
    b, t, lft, r = border
    sny, snx = ny - b - t, nx - lft - r
    kernel, per_pixel = kernel_for(ref, meta, (ny, nx), border)
    if sny > 0 and snx > 0 and data.size:
        convolve_planes(data.reshape(nints * ngroups, ny, nx), kernel, per_pixel, b, sny, lft,
                        snx)
    return {f"cal_step.{NAME}": "COMPLETE"}


@register(NAME, VERSION, "detector1", IPCParams, (), keyword="S_IPC",
          optional_reftypes=("ipc",), inplace=apply_inplace)
def apply(model: DataModel, refs: Mapping[str, DataModel], params: IPCParams) -> DataModel:
    """Correct interpixel capacitance: convolve each group with the IPC reference kernel."""
    if (refs or {}).get("ipc") is None:  # nothing to do: no copy
        return model.replace(meta={f"cal_step.{NAME}": "SKIPPED"})
    return apply_by_copy(model, refs, params, NAME, apply_inplace)
