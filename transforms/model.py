"""The one data-model type every step takes and returns.

A product is its ``kind``, its named arrays and its science metadata. Metadata keys are the
stdatamodels schema paths without the leading ``meta.`` (``"instrument.name"``,
``"exposure.readpatt"``, ``"wcsinfo.ra_ref"``, ``"cal_step.jump"``, ``"ref_file.gain"``...),
values are JSON scalars or small lists/dicts of them. Array names are the stdatamodels
attribute names (``data``, ``dq``, ``err``, ``groupdq``, ``pixeldq``, ``var_poisson``,
``var_rnoise``, ``var_flat``, ``zeroframe``, ``area``, ``wht``, ``con``; table columns for a
catalog). Arrays are held as read-only views, so a step that forgets to copy fails loudly
instead of mutating its caller's data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

# Product kinds. Reference files are "ref.<reftype>" (e.g. "ref.gain").
KINDS = ("uncal", "ramp", "rate", "rateints", "cal", "i2d", "catalog", "pointing", "asn")


def _readonly(a: np.ndarray) -> np.ndarray:
    v = np.asarray(a).view()
    v.flags.writeable = False
    return v


@dataclass(frozen=True, eq=False)
class DataModel:
    """An immutable product: kind + named arrays + JSON-able metadata."""

    kind: str
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not self.kind:
            raise ValueError("DataModel.kind must be a non-empty string")
        arrays = {str(k): _readonly(v) for k, v in self.arrays.items()}
        object.__setattr__(self, "arrays", MappingProxyType(arrays))
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def get(self, key: str, default: Any = None) -> Any:
        """A metadata value by its dotted schema path."""
        return self.meta.get(key, default)

    def require(self, *keys: str) -> list[Any]:
        """Metadata values that must be present; a clear error names the missing ones."""
        missing = [k for k in keys if self.meta.get(k) is None]
        if missing:
            raise KeyError(f"{self.kind} product is missing metadata: {', '.join(missing)}")
        return [self.meta[k] for k in keys]

    def replace(
        self,
        kind: str | None = None,
        arrays: Mapping[str, np.ndarray] | None = None,
        meta: Mapping[str, Any] | None = None,
        drop: tuple[str, ...] = (),
    ) -> "DataModel":
        """A new model: arrays and meta are merged over this one's, names in ``drop`` removed."""
        new_arrays = {k: v for k, v in self.arrays.items() if k not in drop}
        new_arrays.update(arrays or {})
        new_meta = {k: v for k, v in self.meta.items() if k not in drop}
        new_meta.update(meta or {})
        return DataModel(kind or self.kind, new_arrays, new_meta)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.arrays["data"].shape) if "data" in self.arrays else ()

    def __repr__(self) -> str:
        arrs = ", ".join(f"{k}:{v.dtype}{list(v.shape)}" for k, v in self.arrays.items())
        return f"DataModel({self.kind!r}, arrays=[{arrs}], meta={len(self.meta)} keys)"


class Handoff:
    """A model given away to a chain: the chain ``take``s it and the box forgets it, so the
    chain can let the model (and its arrays) go as soon as it has no more use for it, e.g.
    detector1 once the uncal's pixels are in its ramp buffer. The model is not modified."""

    def __init__(self, model: DataModel):
        self._model: DataModel | None = model

    def take(self) -> DataModel:
        model, self._model = self._model, None
        if model is None:
            raise ValueError("this Handoff was already taken; hand each run its own")
        return model

    @staticmethod
    def unwrap(value: "DataModel | Handoff") -> DataModel:
        """The model of ``value`` (taken from it when it is a Handoff)."""
        return value.take() if isinstance(value, Handoff) else value

