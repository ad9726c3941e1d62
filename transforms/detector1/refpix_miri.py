"""MIRI reference-pixel correction (jwst 3.0's MIRI refpix), as a function the refpix step calls.

MIRI has no reference rows: each of its 4 interleaved outputs (column mod 4) has one reference
column on each side of the full frame (columns ``a`` and ``1028 + a``,
``instruments.miri.detector``). jwst's algorithm, full frame only:

1. in every integration the first group is subtracted from every group (so the correction
   follows drifts *relative to the first read*);
2. for every later group, output ``a`` and row parity (rows 0, 2, 4... and 1, 3, 5... when
   ``odd_even_rows``, else all rows), the sigma-clipped mean (``siglimit``, scipy's sigmaclip,
   reference pixels flagged DO_NOT_USE left out) of the left and of the right reference column
   is taken; their average is subtracted from every pixel of that output and row parity,
   reference columns included;
3. the first group is added back.

If a reference value cannot be formed (every reference pixel of an output/parity/side flagged
DO_NOT_USE), jwst stops correcting from that group on (later groups and integrations are left
as they are) and still reports COMPLETE; so does this. Subarrays: SKIPPED (jwst skips MIRI
subarrays). The near-IR parameters of refpix (odd_even_columns, side pixels, IRS2, SIRS) do
not apply to MIRI and are ignored. MIRI has no zero frame. Arithmetic as jwst's: the
difference from the first group is rounded to float32, the reference values are float64
clipped means, the correction is done in float32 and the first group added back in float64
then rounded.

**Contract** (for the refpix step, which dispatches MIRI exposures here):

``correct_miri(arrays, params, meta) -> dict``: ``arrays`` is the chain's writable ramp
buffer (``data`` float32 (nints, ngroups, ny, nx), ``pixeldq`` uint32 (ny, nx); other entries
are not touched); ``params`` is any object with ``odd_even_rows`` (bool) and ``siglimit``
(float) attributes (refpix's RefPixParams); ``meta`` the product metadata (``subarray.*``,
``instrument.name``). ``arrays["data"]`` is corrected in place; nothing else is written. It
returns the metadata updates: ``{"cal_step.refpix": "COMPLETE" | "SKIPPED"}``. It raises
ValueError for a product that is not MIRI. ``apply_miri(model, params)`` is the pure
wrapper (copies the ramp arrays, returns a new model).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numba import njit

from transforms.detector1._subarray import check_ramp, writable_arrays
from transforms.detector1.refpix import _clipped_mean
from transforms.instruments.miri import detector as md
from transforms.model import DataModel

NAME = "refpix"
md_NAMP = md.NAMP  # outputs; a module global numba freezes at compile time


@njit(nogil=True, cache=True)
def _refvalue(diff, pdq, col, par, stride, siglimit, buf):
    """Clipped mean of one reference column over the rows ``par::stride`` (DO_NOT_USE out)."""
    ny = diff.shape[0]
    m = 0
    for r in range(par, ny, stride):
        if (pdq[r, col] & 1) == 0:
            buf[m] = diff[r, col]
            m += 1
    if m == 0:
        return np.nan
    return _clipped_mean(buf, m, siglimit)


@njit(nogil=True, cache=True)
def _correct_integration(stack, pdq, odd_even_rows, siglimit, diff, bad):
    """One integration (ngroups, ny, nx), in place. ``bad[0]`` is jwst's sticky
    bad-reference-pixel flag: once set, nothing more is corrected. ``diff`` is scratch."""
    ng, ny, nx = stack.shape
    first = stack[0].copy()
    stride = 2 if odd_even_rows else 1
    buf = np.empty(ny, np.float64)
    sig = np.empty((md_NAMP, 2))
    for g in range(1, ng):
        if bad[0]:
            return
        plane = stack[g]
        for r in range(ny):
            for c in range(nx):
                diff[r, c] = np.float32(np.float64(plane[r, c]) - np.float64(first[r, c]))
        for a in range(md_NAMP):
            for par in range(stride):
                left = _refvalue(diff, pdq, a, par, stride, siglimit, buf)
                right = _refvalue(diff, pdq, nx - md_NAMP + a, par, stride, siglimit, buf)
                if left != left or right != right:
                    bad[0] = True
                sig[a, par] = 0.5 * (left + right)
        if bad[0]:
            return
        for r in range(ny):
            p = r % stride
            for c in range(nx):
                v = np.float32(diff[r, c] - np.float32(sig[c % md_NAMP, p]))
                plane[r, c] = np.float32(np.float64(v) + np.float64(first[r, c]))


def correct_miri(arrays: dict[str, np.ndarray], params: Any,
                 meta: Mapping[str, Any]) -> dict[str, Any]:
    """Correct ``arrays["data"]`` in place with MIRI's reference columns (module doc)."""
    if str(meta.get("instrument.name", "")).upper() != "MIRI":
        raise ValueError(f"refpix_miri: {meta.get('instrument.name')!r} is not a MIRI product; "
                         "near-IR reference pixels are refpix's own algorithm")
    data, pdq = arrays["data"], arrays["pixeldq"]
    nints, ngroups, ny, nx = data.shape
    if not md.is_full_frame((ny, nx)):
        return {f"cal_step.{NAME}": "SKIPPED"}  # jwst skips MIRI subarrays
    siglimit = float(params.siglimit)
    if not siglimit > 0:
        raise ValueError(f"refpix: siglimit must be positive, got {params.siglimit}")
    diff = np.empty((ny, nx), np.float32)
    bad = np.zeros(1, np.bool_)
    rdq = pdq.view()
    rdq.flags.writeable = False
    for i in range(nints):
        _correct_integration(data[i], rdq, bool(params.odd_even_rows), siglimit, diff, bad)
    return {f"cal_step.{NAME}": "COMPLETE"}


def apply_miri(model: DataModel, params: Any) -> DataModel:
    """The pure form: a new ramp model with MIRI's reference-pixel correction applied."""
    check_ramp(model, NAME)
    arrays = writable_arrays(model)
    updates = correct_miri(arrays, params, model.meta)
    if updates[f"cal_step.{NAME}"] == "SKIPPED":
        return model.replace(meta=updates)
    return model.replace(arrays=arrays, meta=updates)
