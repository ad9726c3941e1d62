"""Stage 2 imaging: assign_wcs -> flat_field -> photom -> resample (rate -> cal, i2d).

``run(rate, plan)`` chains the steps of a plan, a sequence of ``(StepSpec, params, refs,
skip)`` in stage order (as built by the runner from the registry); a skipped step records
``cal_step.<name> = SKIPPED``. The ``cal`` product is the result before resample; resample, when
in the plan and not skipped, makes the ``i2d`` (not for 3-D rateints, which JWST does not
resample).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from transforms.image2 import assign_wcs, flat_field, photom, resample  # noqa: F401 (register)
from transforms.image2._common import Image2Error
from transforms.model import DataModel
from transforms.registry import STAGES

__all__ = ["run", "Image2Error"]


def run(rate: DataModel, plan: Sequence[tuple[Any, Any, Mapping[str, DataModel], bool]]
        ) -> dict[str, DataModel]:
    """Run the image2 steps of ``plan`` on a rate; returns ``{"cal": ..., ["i2d": ...]}``."""
    if rate.kind not in ("rate", "rateints", "cal"):
        raise Image2Error(f"image2 takes a rate product, got kind {rate.kind!r}")
    order = STAGES["image2"]
    names = [spec.name for spec, *_ in plan]
    unknown = [n for n in names if n not in order]
    if unknown:
        raise Image2Error(f"image2 plan has steps not in the stage: {', '.join(unknown)}")
    if names != sorted(names, key=order.index):
        raise Image2Error(f"image2 plan is out of order: {names}; expected order {list(order)}")
    model = rate
    out: dict[str, DataModel] = {}
    for spec, params, refs, skip in plan:
        if spec.name == "resample":
            cal = model.replace(kind="cal") if model.kind == "rate" else model
            out["cal"] = cal
            if skip:
                pass
            elif np.ndim(cal["data"]) != 2:  # rateints -> calints: JWST does not resample them
                out["cal"] = cal.replace(meta={"cal_step.resample": "SKIPPED"})
            else:
                out["i2d"] = spec.apply(cal, refs or {}, params)
            continue
        if skip:
            model = model.replace(meta={f"cal_step.{spec.name}": "SKIPPED"})
            continue
        model = spec.apply(model, refs or {}, params)
    if "cal" not in out:
        out["cal"] = model.replace(kind="cal") if model.kind == "rate" else model
    return out
