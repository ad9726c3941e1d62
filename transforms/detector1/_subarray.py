"""Cut full-detector reference arrays to an exposure's subarray, and the shared plumbing that
lets every detector1 step run either as a pure ``apply`` or in place on the chain's buffer.

References are full-detector arrays; an exposure may be a subarray described by the 1-based
``subarray.xstart``/``ystart`` and ``xsize``/``ysize`` metadata (as in JWST files). A
matching reference is used as is; a window of a larger one is copied (C-contiguous).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from transforms.model import DataModel


class SubarrayMismatch(ValueError):
    """A reference array that does not cover the exposure's subarray."""


class MissingReference(KeyError):
    """A step was called without a reference it needs."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def subarray_window(meta: Mapping[str, Any], shape: tuple[int, int]) -> tuple[slice, slice]:
    """The (rows, cols) slices of the full detector covered by an exposure of image ``shape``."""
    ny, nx = int(shape[0]), int(shape[1])
    x0 = int(meta.get("subarray.xstart") or 1) - 1
    y0 = int(meta.get("subarray.ystart") or 1) - 1
    xs = int(meta.get("subarray.xsize") or nx)
    ys = int(meta.get("subarray.ysize") or ny)
    if (ys, xs, ny) == (2048, nx, 3200):  # NIRSpec IRS2: 3200 raw rows, SUBSIZE2 says 2048
        ys = ny
    if (ys, xs) != (ny, nx):
        raise SubarrayMismatch(
            f"subarray.xsize/ysize ({xs}x{ys}) do not match the data's image shape ({nx}x{ny}); "
            "fix the exposure metadata"
        )
    if x0 < 0 or y0 < 0:
        raise SubarrayMismatch(f"subarray xstart/ystart must be >= 1, got {x0 + 1}/{y0 + 1}")
    return slice(y0, y0 + ny), slice(x0, x0 + nx)


def cut(ref: np.ndarray, meta: Mapping[str, Any], shape: tuple[int, int],
        what: str = "reference", ref_meta: Mapping[str, Any] | None = None) -> np.ndarray:
    """``ref[..., rows, cols]`` matching the exposure (C-contiguous: a window is copied, which
    is small, so that numba kernels see one array layout and compile once).

    ``ref`` covers the full detector unless ``ref_meta`` gives its own 1-based
    ``subarray.xstart/ystart`` (a subarray reference). Returned unchanged when it already
    matches. Raises SubarrayMismatch when the reference does not cover the exposure."""
    ref = np.asarray(ref)
    shape = (int(shape[0]), int(shape[1]))
    if ref.ndim < 2:
        raise SubarrayMismatch(f"{what} must be at least 2-D, got shape {ref.shape}")
    rx = int((ref_meta or {}).get("subarray.xstart") or 1) - 1
    ry = int((ref_meta or {}).get("subarray.ystart") or 1) - 1
    rows, cols = subarray_window(meta, shape)
    if ref.shape[-2:] == shape and (ref_meta is None or (ry, rx) == (rows.start, cols.start)
                                    or "subarray.xstart" not in ref_meta):
        return ref
    r0, c0 = rows.start - ry, cols.start - rx
    if r0 < 0 or c0 < 0 or r0 + shape[0] > ref.shape[-2] or c0 + shape[1] > ref.shape[-1]:
        raise SubarrayMismatch(
            f"{what} of shape {ref.shape[-2:]} at detector offset (row {ry}, col {rx}) does not "
            f"cover the exposure's rows {rows.start}:{rows.stop}, cols {cols.start}:{cols.stop}; "
            "use a full-frame reference or one covering the subarray"
        )
    return np.ascontiguousarray(ref[..., r0:r0 + shape[0], c0:c0 + shape[1]])


def cut_ref(ref: DataModel, name: str, meta: Mapping[str, Any],
            shape: tuple[int, int]) -> np.ndarray:
    """Array ``name`` of reference model ``ref`` cut to the exposure (honours the ref's window)."""
    return cut(ref[name], meta, shape, f"{ref.kind} {name}", ref.meta)


def need_ref(refs: Mapping[str, DataModel], reftype: str, step: str) -> DataModel:
    """The reference model of ``reftype`` or a clear error naming the step."""
    ref = refs.get(reftype) if refs else None
    if ref is None:
        raise MissingReference(
            f"step {step} needs a {reftype!r} reference "
            f"(refs has: {', '.join(refs or {}) or 'none'});"
            " resolve it through CRDS or skip the step"
        )
    return ref


def check_ramp(model: DataModel, step: str) -> None:
    """Refuse anything that is not a 4-D ramp with groupdq/pixeldq."""
    if model.kind != "ramp":
        raise ValueError(f"step {step} takes a 'ramp' product, got {model.kind!r}; "
                         "run dq_init first")
    for name in ("data", "groupdq", "pixeldq"):
        if name not in model.arrays:
            raise ValueError(f"step {step}: ramp is missing its {name!r} array")
    if model["data"].ndim != 4:
        raise ValueError(f"step {step}: ramp data must be 4-D (nints, ngroups, ny, nx), "
                         f"got shape {model['data'].shape}")
    shape = model["data"].shape
    if model["groupdq"].shape != shape or model["pixeldq"].shape != shape[-2:]:
        raise ValueError(f"step {step}: groupdq {model['groupdq'].shape} / pixeldq "
                         f"{model['pixeldq'].shape} do not match data {shape}")


# Arrays a ramp buffer may hold; the chain owns writable copies of these.
RAMP_ARRAYS = ("data", "groupdq", "pixeldq", "zeroframe")


def writable_arrays(model: DataModel) -> dict[str, np.ndarray]:
    """Writable copies of the ramp arrays (the one copy a pure ``apply`` makes)."""
    return {k: np.array(model.arrays[k], copy=True) for k in RAMP_ARRAYS if k in model.arrays}


def apply_by_copy(
    model: DataModel,
    refs: Mapping[str, DataModel],
    params: Any,
    step: str,
    inplace: Callable[..., dict[str, Any]],
) -> DataModel:
    """The pure ``apply`` of a step: copy the ramp arrays, run its in-place kernel, wrap up."""
    check_ramp(model, step)
    arrays = writable_arrays(model)
    meta_updates = inplace(arrays, refs, params, model.meta)
    if meta_updates.get(f"cal_step.{step}") == "SKIPPED":
        return model.replace(meta=meta_updates)  # nothing changed: share the input's arrays
    return model.replace(arrays=arrays, meta=meta_updates)
