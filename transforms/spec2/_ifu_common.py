"""Helpers the IFU steps share (spec2 and spec3): exposure type, references, arithmetic on the
science arrays with variances, jwst's NaN/DO_NOT_USE consistency."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms.ifu import IFU_EXP_TYPES, is_cube, is_ifu_exposure
from transforms.model import DataModel

NON_SCIENCE = DQ.PIXEL["NON_SCIENCE"]
VARIANCES = ("var_poisson", "var_rnoise", "var_flat")

__all__ = ["IFU_EXP_TYPES", "NON_SCIENCE", "VARIANCES", "exp_type", "is_cube",
           "is_ifu_exposure", "match_nans_and_flags", "need_ref", "scaled", "IfuStepError"]


class IfuStepError(ValueError):
    """An IFU step that cannot run on its input."""


def exp_type(model: DataModel | Mapping[str, Any]) -> str:
    meta = model.meta if isinstance(model, DataModel) else model
    return str(meta.get("exposure.type", "")).upper()


def need_ref(refs: Mapping[str, DataModel] | None, reftype: str, step: str) -> DataModel:
    r = (refs or {}).get(reftype)
    if r is None:
        raise IfuStepError(f"{step}: the IFU exposure needs a {reftype} reference (none was "
                           "selected for it)")
    return r


def scaled(model: DataModel, factor: np.ndarray, divide: bool = False
           ) -> dict[str, np.ndarray]:
    """data and err multiplied (divided) by ``factor``, variances by its square (float32)."""
    f = np.asarray(factor, np.float64)
    out = {}
    for k in ("data", "err") + VARIANCES:
        a = model.arrays.get(k)
        if a is None:
            continue
        a = np.asarray(a, np.float64)
        if k.startswith("var"):
            v = a / (f * f) if divide else a * f * f
        else:
            v = a / f if divide else a * f
        out[k] = v.astype(np.float32)
    return out


def match_nans_and_flags(arrays: dict[str, np.ndarray], dq: np.ndarray) -> dict[str, np.ndarray]:
    """jwst's ``match_nans_and_flags``: DO_NOT_USE wherever data is NaN, NaN in data, err and
    variances wherever DO_NOT_USE is set."""
    dq = np.asarray(dq).astype(np.uint32)
    bad = (dq & DQ.DO_NOT_USE) != 0
    for k in ("data", "err") + VARIANCES:
        a = arrays.get(k)
        if a is not None:
            bad |= ~np.isfinite(a) if k == "data" else False
    dq = np.where(bad, dq | DQ.DO_NOT_USE, dq).astype(np.uint32)
    out = dict(arrays)
    for k in ("data", "err") + VARIANCES:
        a = out.get(k)
        if a is not None:
            a = np.array(a, dtype=np.float32, copy=True)
            a[bad] = np.nan
            out[k] = a
    out["dq"] = dq
    return out


def base_step(name: str, versions: tuple[str, ...]):
    """The first registered version of ``name`` among ``versions`` (the version an IFU-aware
    version hands non-IFU data to), or None."""
    from transforms import registry

    for v in versions:
        try:
            return registry.get(name, v)
        except registry.UnknownStep:
            continue
    return None


def delegate(name: str, versions: tuple[str, ...], model: Any, refs: Any, params: Any,
             what: str) -> Any:
    """Run the first registered of ``versions`` of step ``name`` on non-IFU data, with the
    parameters it knows (its defaults for the others)."""
    import dataclasses

    spec = base_step(name, versions)
    if spec is None:
        raise IfuStepError(f"{name}: {what} needs {name} {' or '.join(versions)}, which is not "
                           "registered in this build of calops")
    known = {f.name for f in dataclasses.fields(spec.params)}
    values = dataclasses.asdict(params) if dataclasses.is_dataclass(params) else dict(params)
    p = spec.params(**{k: v for k, v in values.items() if k in known})
    return spec.apply(model, refs, p)
