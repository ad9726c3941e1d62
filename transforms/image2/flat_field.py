"""flat_field: divide by the pixel flat, with JWST's DQ rules and VAR_FLAT.

As ``jwst.flatfield.flat_field.apply_flat_field`` (imaging): flat pixels that are NaN, zero or
flagged NO_FLAT_FIELD get DO_NOT_USE|NO_FLAT_FIELD and a flat value of 1; then
``data /= flat``, ``var_flat = data_flat**2 / flat**2 * flat_err**2``, ``var_poisson`` and
``var_rnoise`` are divided by ``flat**2``, ``err = sqrt(var_poisson + var_rnoise + var_flat)``,
the flat's DQ is OR-ed in, and NaN/DO_NOT_USE are made to agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transforms import dq as dqf
from transforms.image2._common import (Image2Error, cut_ref, match_nans_and_flags, need_arrays,
                                       need_ref)
from transforms.model import DataModel
from transforms.registry import register

NAME, VERSION = "flat_field", "1.0"


@dataclass(frozen=True)
class FlatFieldParams:
    """JWST flat_field spec (imaging). ``user_supplied_flat`` must be resolved by the runner into
    the ``flat`` reference; ``save_interpolated_flat`` is NIRSpec-only and has no effect here."""

    save_interpolated_flat: bool = False
    user_supplied_flat: str | None = None
    inverse: bool = False


def prepare_flat(flat: np.ndarray, flat_dq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flat with bad pixels set to 1, flat DQ with DO_NOT_USE|NO_FLAT_FIELD where bad)."""
    bad_flag = np.uint32(dqf.DO_NOT_USE | dqf.NO_FLAT_FIELD)
    dq = flat_dq.astype(np.uint32)
    dq = dq | np.where(np.isnan(flat) | (flat == 0), bad_flag, np.uint32(0))
    dq = dq | np.where(dq & dqf.NO_FLAT_FIELD, np.uint32(dqf.DO_NOT_USE), np.uint32(0))
    f = np.where(dq & dqf.DO_NOT_USE, np.float32(1.0), flat).astype(np.float32)
    return f, dq


@register(NAME, VERSION, "image2", FlatFieldParams, ("flat",), keyword="S_FLAT")
def flat_field(model: DataModel, refs, params: FlatFieldParams) -> DataModel:
    """Flat-field an image: SCI/ERR/variances divided, VAR_FLAT added, bad flat -> NO_FLAT_FIELD."""
    need_arrays(model, NAME, "data", "dq")
    ref = need_ref(refs, "flat", NAME)
    if "data" not in ref.arrays:
        raise Image2Error(f"{NAME}: the flat reference has no data array")
    data = np.asarray(model["data"], dtype=np.float32)
    shape = data.shape[-2:]
    if ref["data"].shape[-2] < shape[0] or ref["data"].shape[-1] < shape[1]:
        # JWST skips the step when the flat is smaller than the science data.
        return model.replace(meta={"cal_step.flat_field": "SKIPPED"})
    flat = cut_ref(np.asarray(ref["data"], np.float32), ref.meta, model.meta, shape, "flat")
    fdq = (cut_ref(np.asarray(ref["dq"]), ref.meta, model.meta, shape, "flat")
           if "dq" in ref.arrays else np.zeros(shape, np.uint32))
    ferr = (cut_ref(np.asarray(ref["err"], np.float32), ref.meta, model.meta, shape, "flat")
            if "err" in ref.arrays else np.zeros(shape, np.float32))
    f, fdq = prepare_flat(flat, fdq)
    f2 = f * f
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", over="ignore"):
        if not params.inverse:
            out["data"] = data / f
            out["var_flat"] = out["data"] ** 2 / f2 * ferr ** 2
            for v in ("var_poisson", "var_rnoise"):
                if v in model.arrays:
                    out[v] = np.asarray(model[v], np.float32) / f2
        else:
            out["data"] = data * f
            out["var_flat"] = np.zeros_like(out["data"])
            for v in ("var_poisson", "var_rnoise"):
                if v in model.arrays:
                    out[v] = np.asarray(model[v], np.float32) * f2
        parts = [out[v] for v in ("var_poisson", "var_rnoise") if v in out]
        if not params.inverse:
            parts.append(out["var_flat"])
        if parts:
            out["err"] = np.sqrt(np.sum(parts, axis=0))
        elif "err" in model.arrays:
            e = np.asarray(model["err"], np.float32)
            out["err"] = np.sqrt(e ** 2 / f2 + out["var_flat"]) if not params.inverse else e * f
    out["dq"] = np.asarray(model["dq"]).astype(np.uint32) | fdq
    out = {k: (v.astype(np.float32) if k != "dq" else v) for k, v in out.items()}
    match_nans_and_flags(out)
    return model.replace(arrays=out, meta={"cal_step.flat_field": "COMPLETE"})
