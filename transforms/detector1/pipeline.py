"""The detector1 chain: uncal -> rate + rateints, in memory, on one ramp buffer.

``run(uncal, plan)`` converts the uncal once (``dq_init.to_ramp``: the only uint16 -> float32
copy of the 4-D ramp), then drives each planned step's declared in-place kernel
(``spec.inplace(arrays, refs, params, meta) -> meta updates``) on that buffer. A step that
declares none is called through its pure ``apply`` on a read-only, zero-copy view of the
buffer and its new arrays are copied back. Ramp fitting (the step that declares ``fit``) reads
the buffer in place; steps after it (gain_scale) run on the rate and rateints products.

After each step ``on_step(name, snapshot)`` is called; ``snapshot()`` materialises the product
at that point (a copy of the ramp, or the rate after ramp fitting) only if the caller asks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from transforms.model import DataModel, Handoff
from transforms.plans import OnStep, PlanError, check_plan, default_plan as _default_plan
from transforms.registry import PlannedStep

from . import dq_init

STAGE = "detector1"

__all__ = ["PlannedStep", "PlanError", "default_plan", "run"]


def default_plan(refs: Mapping[str, DataModel],
                 overrides: Mapping[str, Mapping[str, Any]] | None = None,
                 skip: Mapping[str, bool] | None = None,
                 meta: Mapping[str, Any] | None = None) -> list[PlannedStep]:
    """The newest version of every detector1 step for ``meta``'s instrument, JWST defaults,
    ``refs`` (reftype -> model) handed to each step that declares the reftype."""
    return _default_plan(STAGE, refs, overrides, skip, meta)


def _validate(plan: Sequence[PlannedStep], meta: Mapping[str, Any]) -> None:
    check_plan(STAGE, plan, meta)
    rf = [p for p in plan if p.spec.fit is not None]
    if not rf or rf[0].skip:
        raise PlanError("the detector1 plan needs ramp_fit (not skipped) to make rate/rateints")


def _ramp_view(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> DataModel:
    """A ramp model over the buffer without copying (its arrays are read-only views)."""
    return DataModel("ramp", arrays, meta)


def _adopt(arrays: dict[str, np.ndarray], result: DataModel) -> None:
    """Bring a pure step's output arrays into the buffer (a copy only if they are new)."""
    for name, new in result.arrays.items():
        old = arrays.get(name)
        if old is not None and np.shares_memory(old, new):
            continue
        if old is not None and old.shape == new.shape and old.dtype == new.dtype:
            np.copyto(old, new)
        else:
            arrays[name] = np.array(new, copy=True)


def run(uncal: DataModel | Handoff, plan: Sequence[PlannedStep],
        on_step: OnStep | None = None) -> dict[str, DataModel]:
    """Run the planned detector1 steps on ``uncal``; returns {"rate": ..., "rateints": ...}.

    The uncal is never modified. Skipped steps get ``cal_step.<name> = "SKIPPED"``. Given as
    a ``Handoff`` it is let go once converted to the ramp buffer (a full frame's uint16
    pixels are 80 MB that the rest of the chain does not need)."""
    uncal = Handoff.unwrap(uncal)
    _validate(plan, uncal.meta)
    arrays = dq_init.to_ramp(uncal)
    meta: dict[str, Any] = dict(uncal.meta)
    del uncal
    products: dict[str, DataModel] | None = None

    def snapshot() -> DataModel:
        if products is not None:
            return products["rate"]
        return DataModel("ramp", {k: v.copy() for k, v in arrays.items()}, dict(meta))

    for step in plan:
        name = step.spec.name
        if step.skip:
            meta[f"cal_step.{name}"] = "SKIPPED"
            if products is not None:
                products = {k: v.replace(meta={f"cal_step.{name}": "SKIPPED"})
                            for k, v in products.items()}
        elif products is not None:  # after ramp_fit: rate and rateints
            products = {k: step.spec.apply(v, step.refs, step.params)
                        for k, v in products.items()}
        elif step.spec.fit is not None:
            rate, rateints = step.spec.fit(_ramp_view(arrays, meta), step.refs, step.params)
            products = {"rate": rate, "rateints": rateints}
        elif step.spec.inplace is not None:
            meta.update(step.spec.inplace(arrays, step.refs, step.params, meta))
        else:
            result = step.spec.apply(_ramp_view(arrays, meta), step.refs, step.params)
            _adopt(arrays, result)
            meta.update(result.meta)
        if on_step is not None:
            on_step(name, snapshot)
    assert products is not None  # _validate guarantees ramp_fit
    return products
