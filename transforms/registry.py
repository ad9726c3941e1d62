"""Registry of versioned steps: several versions of one transform live side by side.

A step is registered with its name, declared version, parameter dataclass (defaults as in
JWST), the CRDS reftypes it reads, the stage it belongs to, and the pure function that applies
it: ``apply(model, refs, params) -> DataModel``, where ``refs`` maps reftype -> DataModel.
Stage-3 steps take a tuple of models instead of one. The version must be bumped whenever the
output can change for the same inputs (a golden test pins each one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


# The order of steps in each stage, as in the JWST near-IR imaging pipelines.
STAGES: dict[str, tuple[str, ...]] = {
    "detector1": ("group_scale", "dq_init", "saturation", "superbias", "refpix", "linearity",
                  "dark_current", "charge_migration", "jump", "clean_flicker_noise", "ramp_fit",
                  "gain_scale"),
    "image2": ("assign_wcs", "flat_field", "photom", "resample"),
    "image3": ("tweakreg", "skymatch", "outlier_detection", "resample", "source_catalog"),
}

# Steps that the JWST pipelines skip unless asked (a build's pin can turn them on).
SKIP_BY_DEFAULT: frozenset[str] = frozenset({"clean_flicker_noise", "charge_migration"})


class UnknownStep(LookupError):
    """A step, version or parameter that the registry does not have."""


@dataclass(frozen=True)
class StepSpec:
    name: str
    version: str
    stage: str  # "detector1" | "image2" | "image3"
    params: type  # a frozen dataclass; its defaults are JWST's
    reftypes: tuple[str, ...]
    apply: Callable[..., Any]
    doc: str = ""
    optional_reftypes: tuple[str, ...] = ()  # used when the context has them, else not

    def make_params(self, overrides: Mapping[str, Any] | None = None) -> Any:
        """The step's parameters with overrides applied; unknown names are refused."""
        overrides = dict(overrides or {})
        known = {f.name for f in dataclasses.fields(self.params)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise UnknownStep(
                f"step {self.name} {self.version} has no parameter {', '.join(unknown)}; "
                f"it has: {', '.join(sorted(known)) or '(none)'}"
            )
        return self.params(**overrides)


_REGISTRY: dict[tuple[str, str], StepSpec] = {}


def register(
    name: str, version: str, stage: str, params: type, reftypes: tuple[str, ...] = (),
    optional_reftypes: tuple[str, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``fn`` as version ``version`` of step ``name``."""
    if not dataclasses.is_dataclass(params):
        raise TypeError(f"params of {name} must be a dataclass")

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        key = (name, version)
        if key in _REGISTRY and _REGISTRY[key].apply is not fn:
            raise ValueError(f"step {name} version {version} is registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        _REGISTRY[key] = StepSpec(name, version, stage, params, tuple(reftypes), fn, doc,
                                  tuple(optional_reftypes))
        return fn

    return deco


def steps() -> dict[str, list[str]]:
    """Every registered step name with its versions, oldest first."""
    _load_all()
    out: dict[str, list[str]] = {}
    for name, version in sorted(_REGISTRY, key=lambda k: (k[0], _vkey(k[1]))):
        out.setdefault(name, []).append(version)
    return out


def get(name: str, version: str | None = None) -> StepSpec:
    """A step spec; the newest version when none is named. Unknowns list what exists."""
    _load_all()
    versions = steps().get(name)
    if not versions:
        raise UnknownStep(f"unknown step {name!r}; known steps: {', '.join(sorted(steps()))}")
    if version is None:
        version = versions[-1]
    if (name, version) not in _REGISTRY:
        raise UnknownStep(
            f"step {name!r} has no version {version!r}; it has: {', '.join(versions)}"
        )
    return _REGISTRY[(name, version)]


def _vkey(v: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in v.split("."))


def _load_all() -> None:
    """Import the step modules so their @register decorators run."""
    import importlib

    for mod in ("transforms.detector1", "transforms.image2", "transforms.image3"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:  # a stage not written yet
            if exc.name != mod:
                raise
