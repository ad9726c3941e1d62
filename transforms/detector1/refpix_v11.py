"""refpix 1.1: 1.0 for traditional near-IR readouts (bit for bit), NIRSpec IRS2, MIRI dispatch.

- Traditional near-IR readouts (NIRCam, NIRISS, NIRSpec NRS*/NRSRAPID*): refpix 1.0's kernel
  unchanged (the same function is called), so 1.0 and 1.1 give identical products.
- NIRSpec IRS2 (a raw frame of 3200 science rows, ``instruments.nirspec.detector``): as jwst
  3.0 does it (``_kernels_irs2``): bad interleaved reference pixels found with the robust
  tests of build 10.0 (each pair's mean |difference|, mean and scatter against sigma-clipped
  statistics of every pair of its output, ``ovr_corr_mitigation_ftr`` sigmas; flagged
  BAD_REF_PIXEL | DO_NOT_USE) and replaced by the average of the pairs one block away, then the
  reference file's bad pairs likewise, then the Fourier correction with the reference's
  alpha/beta. The interleaved reference pixels and the reference output are then removed:
  data, groupdq and pixeldq become (..., 2048, 2048), as after jwst's refpix, and every later
  step sees an ordinary full frame. The zero frame, if any, keeps its normal rows.
  ``irs2_mean_subtraction`` and ``preserve_irs2_refpix`` (for making IRS2 biases) are refused.
- MIRI: dispatched to ``refpix_miri.correct_miri`` (jwst 3.0's MIRI reference columns).

The IRS2 reference is the optional ``refpix`` reftype (N/A for traditional readouts in CRDS);
an IRS2 exposure without one is refused (jwst marks the step SKIPPED and leaves a 3200-row ramp
that its later steps cannot use).

``refpix`` 0.9 (refpix_v09.py) is the same with the IRS2 bad-pixel handling of jwst 1.11
(before build 10.0), for archived builds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from transforms.instruments.nirspec import detector as nrs
from transforms.model import DataModel
from transforms.registry import register

from . import _kernels_irs2 as k2
from . import refpix_miri
from ._subarray import apply_by_copy
from .refpix import RefPixParams
from .refpix import apply_inplace as near_ir_inplace

NAME = "refpix"
VERSION = "1.1"
ROBUST, LEGACY = "robust", "legacy"  # the IRS2 bad-reference-pixel generations
EXPECTED_ROWS = 2 * 712 * 2048


def irs2_coefficients(ref: DataModel) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(alpha_h, beta_h, dq_table) of an IRS2 reference: the Hermitian halves of the complex
    spectra stored as interleaved (real, imaginary) float32 columns alpha_0..3, beta_0..3."""
    by_lower = {k.lower(): k for k in ref.arrays}  # FITS column names are case-blind
    cols = {}
    for name in ("alpha", "beta"):
        rows = []
        for i in range(4):
            key = f"irs2_table.{name}_{i}"
            if key not in by_lower:
                raise ValueError(f"refpix: the IRS2 reference has no {key} column; it is not an "
                                 "IRS2 refpix reference")
            v = np.asarray(ref[by_lower[key]], np.float32)
            if v.size != EXPECTED_ROWS:
                raise ValueError(f"refpix: the IRS2 reference has {v.size} rows; it must have "
                                 f"{EXPECTED_ROWS} (2 x 712 x 2048)")
            rows.append(v[0::2] + 1j * v[1::2])
        cols[name] = k2.hermitian_half(np.array(rows, np.complex64))
    table = {c: np.asarray(ref[by_lower[f"dq_table.{c}"]]) for c in ("output", "odd_even", "mask")
             if f"dq_table.{c}" in by_lower}
    return cols["alpha"], cols["beta"], table if len(table) == 3 else {}


def irs2_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                 params: RefPixParams, meta: Mapping[str, Any], generation: str,
                 step: str = NAME) -> dict[str, Any]:
    """The IRS2 correction of the ramp buffer; replaces its arrays by the 2048-row ones."""
    det = nrs.check_detector(str(meta.get("instrument.detector", "")))
    if params.preserve_irs2_refpix:
        raise ValueError(f"{step}: preserve_irs2_refpix (for making IRS2 biases) is not "
                         "supported; leave it False")
    if getattr(params, "irs2_mean_subtraction", False):
        raise ValueError(f"{step}: irs2_mean_subtraction is not implemented; leave it False")
    ref = refs.get("refpix") if refs else None
    if ref is None:
        raise ValueError(f"{step}: an IRS2 exposure needs the IRS2 'refpix' reference (CRDS "
                         "selects it on DETECTOR and READPATT); none was given")
    layout = nrs.layout_from_meta(meta)
    alpha, beta, table = irs2_coefficients(ref)
    data, pdq, gdq = arrays["data"], arrays["pixeldq"], arrays["groupdq"]
    if data.shape[-2] != layout.nx or data.shape[-1] != nrs.FULL:
        raise ValueError(f"{step}: an IRS2 frame is {layout.nx} x {nrs.FULL} (science rows x "
                         f"columns), got {data.shape[-2:]}")
    det_view = nrs.to_detector(data, det)  # a view: changes reach ``data``
    if generation == ROBUST:
        bad = k2.flag_bad_refpix(data, pdq, layout, float(params.ovr_corr_mitigation_ftr))
        pdq[bad] |= k2.BAD_REF_PIXEL | k2.DO_NOT_USE
        k2.replace_flagged(data, bad, layout)
        if table:
            ref_flags = np.any(nrs.to_detector(pdq, det) & k2.BAD_REF_PIXEL, axis=0)
            k2.clobber_ref(det_view, table, ref_flags, layout)
        fill = k2.fill_filter(layout, nrs.FULL, np.float64).astype(np.float32)
    else:
        if table:
            k2.clobber_ref_v1(det_view, table, layout)
            k2.rm_intermittent_badpix_v1(det_view, layout, float(params.ovr_corr_mitigation_ftr))
        fill = k2.fill_filter(layout, nrs.FULL, np.float32).astype(np.float32)
    out = np.empty(data.shape[:2] + (nrs.FULL, nrs.FULL), np.float32)
    for i in range(data.shape[0]):
        out[i] = k2.subtract_reference(data[i], det, alpha, beta, layout, fill)
    rows = layout.science_mask(det)
    arrays["data"] = out
    arrays["pixeldq"] = np.ascontiguousarray(pdq[rows])
    arrays["groupdq"] = np.ascontiguousarray(gdq[..., rows, :])
    if arrays.get("zeroframe") is not None:
        arrays["zeroframe"] = np.ascontiguousarray(arrays["zeroframe"][..., rows, :])
    return {f"cal_step.{NAME}": "COMPLETE"}


def miri_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                 params: RefPixParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """MIRI: jwst 3.0's MIRI reference-column correction (``refpix_miri.correct_miri``)."""
    return refpix_miri.correct_miri(arrays, params, meta)


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: RefPixParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Reference-pixel correction of the ramp buffer (its arrays may be replaced: IRS2)."""
    if str(meta.get("instrument.name", "")).upper() == "MIRI":
        return miri_inplace(arrays, refs, params, meta)
    if nrs.is_irs2_shape(arrays["data"].shape):
        return irs2_inplace(arrays, refs, params, meta, ROBUST)
    return near_ir_inplace(arrays, refs, params, meta)


@register(NAME, VERSION, "detector1", RefPixParams, (), optional_reftypes=("refpix",),
          keyword="S_REFPIX", inplace=apply_inplace)
def apply(model: DataModel, refs: Mapping[str, DataModel], params: RefPixParams) -> DataModel:
    """Reference-pixel correction: 1.0's near-IR one, NIRSpec IRS2 (robust bad-pixel rejection)."""
    return apply_by_copy(model, refs, params, NAME, apply_inplace)
