"""Stage 2 imaging: assign_wcs -> flat_field -> photom -> resample (rate -> cal, i2d).

``run(rate, plan)`` chains the steps of a plan (``PlannedStep``s in stage order, as the runner
builds them from a build); a skipped step records
``cal_step.<name> = SKIPPED``. The ``cal`` product is the result before resample; resample, when
in the plan and not skipped, makes the ``i2d`` (not for 3-D rateints, which JWST does not
resample).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from transforms.associations import IMAGING_EXP_TYPES
from transforms.image2 import (  # noqa: F401 (register)
    assign_wcs,
    flat_field,
    photom,
    resample,
    resample_v11,
)
from transforms.image2._common import Image2Error
from transforms.model import DataModel
from transforms.plans import OnStep, PlanError, check_plan
from transforms.registry import PlannedStep, Stage, register_stage

__all__ = ["run", "Image2Error", "STAGE"]


def run(rate: DataModel, plan: Sequence[PlannedStep], on_step: OnStep | None = None
        ) -> dict[str, DataModel]:
    """Run the image2 steps of ``plan`` on a rate; returns ``{"cal": ..., ["i2d": ...]}``."""
    if rate.kind not in ("rate", "rateints", "cal"):
        raise Image2Error(f"image2 takes a rate product, got kind {rate.kind!r}")
    try:
        check_plan("image2", plan, rate.meta)
    except PlanError as exc:
        raise Image2Error(f"image2 plan: {exc}") from None
    model = rate
    out: dict[str, DataModel] = {}
    for p in plan:
        spec, params, refs, skip = p.spec, p.params, p.refs, p.skip
        if spec.name == "resample":
            cal = model.replace(kind="cal") if model.kind == "rate" else model
            out["cal"] = cal
            if skip:
                pass
            elif np.ndim(cal["data"]) != 2:  # rateints -> calints: JWST does not resample them
                out["cal"] = cal.replace(meta={"cal_step.resample": "SKIPPED"})
            else:
                out["i2d"] = spec.apply(cal, refs or {}, params)
        elif skip:
            model = model.replace(meta={f"cal_step.{spec.name}": "SKIPPED"})
        else:
            model = spec.apply(model, refs or {}, params)
        if on_step is not None:
            on_step(spec.name, lambda m=model: m)
    if "cal" not in out:
        out["cal"] = model.replace(kind="cal") if model.kind == "rate" else model
    return out


STAGE = register_stage(Stage(
    name="image2", subject="exposure", reads=("detector1:rate", "exposure:pointing"),
    outputs=("cal", "i2d"), steps=("assign_wcs", "flat_field", "photom", "resample"),
    exp_types=tuple(sorted(IMAGING_EXP_TYPES)), run=run,
    doc="count rates -> calibrated images (calwebb_image2)"))
