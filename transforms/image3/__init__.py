"""Stage 3 imaging: tweakreg -> skymatch -> outlier_detection -> resample -> source_catalog.

``run(cals, plan)`` chains the steps of a plan (``PlannedStep``s in stage order, as the runner
builds them from a build). The first three steps take and
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

from transforms.associations import IMAGING_EXP_TYPES, image3_associations
from transforms.image3 import (  # noqa: F401  (imported for registration)
    outlier_detection, skymatch, source_catalog, source_catalog_v11, tweakreg)
from transforms.model import DataModel
from transforms.plans import OnStep, PlanError, check_plan
from transforms.registry import PlannedStep, Stage, register_stage

__all__ = ["run", "Image3Error", "STAGE"]


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


def run(cals: Sequence[DataModel], plan: Sequence[PlannedStep], on_step: OnStep | None = None
        ) -> dict[str, Any]:
    """Run the image3 steps of ``plan`` on an association's cal exposures."""
    cals = tuple(cals)
    if not cals:
        raise Image3Error("image3 needs at least one cal exposure")
    bad = [m.kind for m in cals if m.kind != "cal"]
    if bad:
        raise Image3Error(f"image3 takes cal products, got kinds {sorted(set(bad))}")
    try:
        check_plan("image3", plan, cals[0].meta)
    except PlanError as exc:
        raise Image3Error(f"image3 plan: {exc}") from None
    names = [p.spec.name for p in plan]
    if "resample" not in names or "source_catalog" not in names:
        raise Image3Error("an image3 plan needs resample and source_catalog entries (they may be "
                          "skipped)")
    models = cals
    out: dict[str, Any] = {}
    for p in plan:
        spec, params, refs, skip = p.spec, p.params, p.refs or {}, p.skip
        if spec.name == "resample":
            out["crf"] = models
            out["i2d"] = None if skip else spec.apply(tuple(_sky_removed(m) for m in models),
                                                      refs, params)
        elif spec.name == "source_catalog":
            out["catalog"] = (None if skip or out.get("i2d") is None
                              else spec.apply(out["i2d"], refs, params))
        else:
            models = _skip(models, spec.name) if skip else tuple(spec.apply(models, refs, params))
        if on_step is not None:  # resample's i2d, source_catalog's catalog; the steps
            # before them change a set of exposures (no snapshot)
            on_step(spec.name, lambda o=out.get(_STEP_PRODUCT.get(spec.name, "")): o)
    return out


_STEP_PRODUCT = {"resample": "i2d", "source_catalog": "catalog"}
MIN_MEMBER_PIXELS = 16  # a side shorter than this cannot be aligned or add to a mosaic


def too_small(meta: Mapping[str, Any]) -> str | None:
    """A member too small to align (no sources to match) or to add anything to a mosaic."""
    nx, ny = meta.get("subarray.xsize"), meta.get("subarray.ysize")
    if nx is not None and ny is not None and min(int(nx), int(ny)) < MIN_MEMBER_PIXELS:
        return (f"{nx}x{ny} pixels: too small to align or to add to a mosaic (a side under "
                f"{MIN_MEMBER_PIXELS})")
    return None


STAGE = register_stage(Stage(
    name="image3", subject="association", reads=("image2:cal",), outputs=("i2d", "catalog"),
    steps=("tweakreg", "skymatch", "outlier_detection", "resample", "source_catalog"),
    exp_types=tuple(sorted(IMAGING_EXP_TYPES)), run=run, associate=image3_associations,
    excludes=too_small,
    doc="calibrated images of an association -> mosaic and source catalog (calwebb_image3)"))
