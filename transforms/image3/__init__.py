"""Stage 3 imaging: tweakreg -> skymatch -> outlier_detection -> resample -> source_catalog.

``run(cals, plan)`` chains the steps of a plan, a sequence of ``(StepSpec, params, refs, skip)``
in stage order (as the runner builds it from the registry). The first three steps take and
return the tuple of cal exposures; ``resample`` (the registered step, ``transforms.resample``'s
drizzle) makes the i2d from them, with each exposure's skymatch level removed first when it was
not subtracted (as JWST's resample does); ``source_catalog`` measures the i2d. A skipped step
records ``cal_step.<name> = SKIPPED``. Returns ``{"i2d", "catalog", "crf"}`` where ``crf`` are
the exposures after outlier detection (JWST's ``_crf`` products).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from transforms.image3 import outlier_detection, skymatch, source_catalog, tweakreg  # noqa: F401
from transforms.model import DataModel
from transforms.registry import STAGES

__all__ = ["run", "Image3Error"]


class Image3Error(ValueError):
    """An image3 plan or input that cannot run."""


def _skip(models: tuple[DataModel, ...], name: str) -> tuple[DataModel, ...]:
    return tuple(m.replace(meta={f"cal_step.{name}": "SKIPPED"}) for m in models)


def _sky_removed(m: DataModel) -> DataModel:
    level = m.get("background.level")
    if m.get("background.subtracted") is False and level:
        data = (np.asarray(m["data"]) - np.float32(level)).astype(np.float32)
        return m.replace(arrays={"data": data}, meta={"background.subtracted": True})
    return m


def _entry(p: Any) -> tuple[Any, Any, Mapping[str, DataModel], bool]:
    """A plan entry as (spec, params, refs, skip): a 4-tuple or an object with those fields
    (such as ``transforms.detector1.pipeline.PlannedStep``)."""
    if hasattr(p, "spec") and hasattr(p, "params"):
        return p.spec, p.params, getattr(p, "refs", None) or {}, bool(getattr(p, "skip", False))
    try:
        spec, params, refs, skip = p
    except (TypeError, ValueError) as exc:
        raise Image3Error(f"an image3 plan entry must be (spec, params, refs, skip), got "
                          f"{type(p).__name__}") from exc
    return spec, params, refs or {}, bool(skip)


def run(cals: Sequence[DataModel], plan: Sequence[Any]) -> dict[str, Any]:
    """Run the image3 steps of ``plan`` on an association's cal exposures."""
    cals = tuple(cals)
    plan = [_entry(p) for p in plan]
    if not cals:
        raise Image3Error("image3 needs at least one cal exposure")
    bad = [m.kind for m in cals if m.kind != "cal"]
    if bad:
        raise Image3Error(f"image3 takes cal products, got kinds {sorted(set(bad))}")
    order = STAGES["image3"]
    names = [spec.name for spec, *_ in plan]
    unknown = [n for n in names if n not in order]
    if unknown:
        raise Image3Error(f"image3 plan has steps not in the stage: {', '.join(unknown)}")
    if names != sorted(names, key=order.index):
        raise Image3Error(f"image3 plan is out of order: {names}; expected order {list(order)}")
    if "resample" not in names or "source_catalog" not in names:
        raise Image3Error("an image3 plan needs resample and source_catalog entries (they may be "
                          "skipped)")
    models = cals
    out: dict[str, Any] = {}
    for spec, params, refs, skip in plan:
        if spec.name == "resample":
            out["crf"] = models
            if skip:
                out["i2d"] = None
                continue
            out["i2d"] = spec.apply(tuple(_sky_removed(m) for m in models), refs or {}, params)
            continue
        if spec.name == "source_catalog":
            if skip or out.get("i2d") is None:
                out["catalog"] = None
                continue
            out["catalog"] = spec.apply(out["i2d"], refs or {}, params)
            continue
        models = _skip(models, spec.name) if skip else tuple(spec.apply(models, refs or {},
                                                                        params))
    return out
