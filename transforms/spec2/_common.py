"""Helpers shared by the spec2 front-half steps: the multi-slit data model convention, exposure
types, reference lookups and NaN/DO_NOT_USE agreement.

The data model (docs/spectroscopy.md, "Data model"): a multi-slit product has meta ``slits``
(slit names in order), arrays ``<slit>:<plane>`` and per-slit meta ``slit.<slit>.<key>``; a
single spectral image (MIRI LRS) is an ordinary 2-D product with a ``wavelength`` array and
``wcs.*`` meta.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from transforms.image2._common import match_nans_and_flags  # noqa: F401 (re-exported)
from transforms.model import DataModel

NIRSPEC_SLIT_TYPES = ("NRS_FIXEDSLIT", "NRS_MSASPEC")
MIRI_LRS_TYPES = ("MIR_LRS-FIXEDSLIT",)
SPECTRAL_TYPES = NIRSPEC_SLIT_TYPES + MIRI_LRS_TYPES
VARIANCES = ("var_poisson", "var_rnoise", "var_flat")
SCIENCE = ("data", "err") + VARIANCES


class Spec2Error(ValueError):
    """Bad input to a spec2 step (missing arrays, references or metadata)."""


def exp_type(model: DataModel) -> str:
    return str(model.get("exposure.type") or "").upper()


def need_ref(refs: Mapping[str, DataModel] | None, reftype: str, step: str) -> DataModel:
    ref = (refs or {}).get(reftype)
    if ref is None:
        raise Spec2Error(f"{step} needs a '{reftype}' reference; resolve it through CRDS or "
                         "skip the step")
    return ref


def is_multislit(model: DataModel) -> bool:
    return "slits" in model.meta


def slit_names(model: DataModel) -> list[str]:
    return [str(s) for s in model.get("slits") or []]


def slit_arrays(model: DataModel, name: str) -> dict[str, np.ndarray]:
    pre = f"{name}:"
    return {k[len(pre):]: v for k, v in model.arrays.items() if k.startswith(pre)}


def slit_meta(model: DataModel, name: str) -> dict[str, Any]:
    pre = f"slit.{name}."
    out = {k[len(pre):]: v for k, v in model.meta.items() if k.startswith(pre)}
    out.setdefault("name", name)
    return out


def update_slits(model: DataModel, updates: Mapping[str, tuple[Mapping[str, np.ndarray],
                                                                 Mapping[str, Any]]],
                 meta: Mapping[str, Any] | None = None) -> DataModel:
    """A new product with per-slit arrays/meta replaced: ``{name: (arrays, meta)}``."""
    arrays: dict[str, np.ndarray] = {}
    m: dict[str, Any] = {}
    for name, (a, s) in updates.items():
        arrays.update({f"{name}:{k}": v for k, v in a.items()})
        m.update({f"slit.{name}.{k}": v for k, v in s.items()})
    m.update(meta or {})
    return model.replace(arrays=arrays, meta=m)


def multislit(base: DataModel, slits: Iterable[tuple[str, Mapping[str, np.ndarray],
                                                      Mapping[str, Any]]],
              kind: str, meta: Mapping[str, Any] | None = None,
              drop_prefixes: tuple[str, ...] = ()) -> DataModel:
    """A multi-slit product of ``base``'s top-level meta (minus ``drop_prefixes``) and slits."""
    top = {k: v for k, v in base.meta.items()
           if not k.startswith(("slit.",) + drop_prefixes) and k != "slits"}
    arrays: dict[str, np.ndarray] = {}
    names = []
    for name, a, s in slits:
        if ":" in name:
            raise Spec2Error(f"slit name {name!r} cannot contain ':'")
        names.append(name)
        arrays.update({f"{name}:{k}": v for k, v in a.items()})
        top.update({f"slit.{name}.{k}": v for k, v in s.items()})
    top["slits"] = names
    top.update(meta or {})
    return DataModel(kind, arrays, top)


def srctype_of(model: DataModel, slit: Mapping[str, Any] | None, override: str | None) -> str:
    """The source type a step acts on: the step's ``source_type`` parameter, else the slit's
    ``srctype``, else the exposure's ``target.source_type``."""
    if override:
        return str(override).upper()
    st = (slit or {}).get("srctype") or model.get("target.source_type")
    return str(st or "").upper()


def scale_arrays(arrays: Mapping[str, np.ndarray], factor: np.ndarray, inverse: bool
                 ) -> dict[str, np.ndarray]:
    """``data``/``err`` divided (or, ``inverse``, multiplied) by ``factor``, variances by its
    square: the arithmetic of pathloss/barshadow/photom."""
    f = np.asarray(factor, np.float64)
    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for n in ("data", "err"):
            if n in arrays:
                a = np.asarray(arrays[n], np.float64)
                out[n] = (a * f if inverse else a / f).astype(np.float32)
        for n in VARIANCES:
            if n in arrays and np.size(arrays[n]):
                a = np.asarray(arrays[n], np.float64)
                out[n] = (a * f * f if inverse else a / (f * f)).astype(np.float32)
    if "dq" in arrays:
        out["dq"] = np.asarray(arrays["dq"]).astype(np.uint32)
    return out


def also_members(spec: Any, members: Mapping[str, list[DataModel]], mem: Iterable[DataModel],
                 refs: Mapping[str, Any], params: Any) -> dict[str, list[DataModel]]:
    """``members`` after a member step that took ``mem`` (its own role's members): each member
    of a role the step declares in ``also_members`` also run through it as ``(member, *mem)``
    (jwst subtracts the imprint from each background nod); without ``mem``, unchanged."""
    mem = tuple(mem)
    if not mem or not spec.also_members:
        return dict(members)
    return {k: [spec.apply((m, *mem), refs, params) for m in ms]
            if k in spec.also_members else ms for k, ms in members.items()}
