"""flat_field for IFU exposures: a pure function flat_field 2.1 calls for MIR_MRS and NRS_IFU.

- **MIRI MRS**: the 2-D flat of the detector and band, with version 1.0's arithmetic (data and
  variances divided, VAR_FLAT from the flat's error, NO_FLAT_FIELD | DO_NOT_USE where the flat
  is bad; the MRS flat flags the pixels between slices NON_SCIENCE).
- **NIRSpec IFU**: as jwst's ``nirspec_ifu``: at every pixel of a slice, the product of the
  D flat (detector, interpolated in wavelength), the S flat (the IFU's spectrograph flat per
  pixel and wavelength) and the F flat (the fore optics: per slice, a fast-varying table in
  wavelength), each a calops NirspecFlatModel-style reference (``instruments.nirspec.ifu``
  documents the layouts); pixels outside the flats' wavelength range get NO_FLAT_FIELD |
  DO_NOT_USE.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms import ifu as I
from transforms.image2 import flat_field as v10
from transforms.model import DataModel
from transforms.spec2._ifu_common import IfuStepError, exp_type, match_nans_and_flags, need_ref


def flat_field_ifu(model: DataModel, refs: Mapping[str, DataModel], params: Any) -> DataModel:
    et = exp_type(model)
    if et == "MIR_MRS":
        need_ref(refs, "flat", "flat_field")
        return v10.flat_field(model, refs, params)
    if et == "NRS_IFU":
        return _nirspec_ifu(model, refs, params)
    raise IfuStepError(f"flat_field_ifu: {et} is not an IFU exposure type")


def _nirspec_ifu(model: DataModel, refs: Mapping[str, DataModel], params: Any) -> DataModel:
    from transforms.instruments.nirspec import ifu as N

    px = I.pixels(model)
    flat, ferr, fdq = N.flat_at_pixels({k: refs.get(k) for k in ("fflat", "sflat", "dflat")},
                                       model.meta, px)
    bad = ~(np.isfinite(flat) & (flat > 0))
    fdq = np.where(bad & px.valid, fdq | DQ.NO_FLAT_FIELD | DQ.DO_NOT_USE, fdq)
    f = np.where(bad, 1.0, flat)
    inverse = bool(getattr(params, "inverse", False))
    data = np.asarray(model["data"], np.float64)
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", over="ignore"):
        out["data"] = data * f if inverse else data / f
        for v in ("var_poisson", "var_rnoise"):
            if v in model.arrays:
                a = np.asarray(model[v], np.float64)
                out[v] = a * f * f if inverse else a / (f * f)
        out["var_flat"] = np.zeros_like(data) if inverse else \
            out["data"] ** 2 / (f * f) * np.where(bad, 0.0, ferr) ** 2
        parts = [out[v] for v in ("var_poisson", "var_rnoise", "var_flat") if v in out]
        out["err"] = np.sqrt(np.sum(parts, axis=0))
    out = {k: v.astype(np.float32) for k, v in out.items()}
    dq = np.asarray(model["dq"]).astype(np.uint32) | fdq.astype(np.uint32)
    out = match_nans_and_flags(out, dq)
    return model.replace(arrays=out, meta={"cal_step.flat_field": "COMPLETE"})
