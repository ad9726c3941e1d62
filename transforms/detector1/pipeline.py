"""The detector1 chain: uncal -> rate + rateints, in memory, on one ramp buffer.

``run(uncal, plan)`` converts the uncal once (``dq_init.to_ramp``: the only uint16 -> float32
copy of the 4-D ramp), then drives each planned step's in-place kernel
(``apply_inplace(arrays, refs, params, meta) -> meta updates``) on that buffer. A step module
without an in-place entry point is called through its pure ``apply`` on a read-only, zero-copy
view of the buffer and its new arrays are copied back. Ramp fitting reads the buffer in place
(``fit_ramps``); steps after it (gain_scale) run on the rate and rateints products.

After each step ``on_step(name, snapshot)`` is called; ``snapshot()`` materialises the product
at that point (a copy of the ramp, or the rate after ramp fitting) only if the caller asks.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transforms import registry
from transforms.model import DataModel
from transforms.registry import StepSpec

from . import dq_init

STAGE = "detector1"
ORDER = registry.STAGES[STAGE]


class PlanError(ValueError):
    """A detector1 plan that cannot run (wrong stage, order, duplicates, no ramp_fit)."""


@dataclass(frozen=True)
class PlannedStep:
    """One step of a plan: its registered spec, parameters, resolved references and skip."""

    spec: StepSpec
    params: Any
    refs: Mapping[str, DataModel] = field(default_factory=dict)
    skip: bool = False


OnStep = Callable[[str, Callable[[], DataModel]], None]


def default_plan(refs: Mapping[str, DataModel],
                 overrides: Mapping[str, Mapping[str, Any]] | None = None,
                 skip: Mapping[str, bool] | None = None) -> list[PlannedStep]:
    """A plan of the newest registered version of every detector1 step, JWST defaults,
    ``refs`` (reftype -> model) handed to each step that declares the reftype."""
    overrides, skip = dict(overrides or {}), dict(skip or {})
    known = registry.steps()
    plan = []
    for name in ORDER:
        if name not in known:
            continue
        spec = registry.get(name)
        step_refs = {r: refs[r] for r in spec.reftypes if r in refs}
        plan.append(PlannedStep(spec, spec.make_params(overrides.get(name)), step_refs,
                                bool(skip.get(name, name in registry.SKIP_BY_DEFAULT))))
    return plan


def _validate(plan: Sequence[PlannedStep]) -> None:
    names = []
    for p in plan:
        if not isinstance(p, PlannedStep):
            raise PlanError(f"plan entries must be PlannedStep, got {type(p).__name__}")
        if p.spec.stage != STAGE:
            raise PlanError(f"step {p.spec.name} belongs to stage {p.spec.stage}, not {STAGE}")
        if p.spec.name not in ORDER:
            raise PlanError(f"step {p.spec.name} is not a {STAGE} step ({', '.join(ORDER)})")
        names.append(p.spec.name)
    if len(set(names)) != len(names):
        raise PlanError(f"a step appears twice in the plan: {names}")
    idx = [ORDER.index(n) for n in names]
    if idx != sorted(idx):
        raise PlanError(f"plan steps out of order: {names}; the order is {', '.join(ORDER)}")
    rf = [p for p in plan if p.spec.name == "ramp_fit"]
    if not rf or rf[0].skip:
        raise PlanError("the detector1 plan needs ramp_fit (not skipped) to make rate/rateints")


def _module(spec: StepSpec):
    mod = sys.modules.get(spec.apply.__module__)
    return mod if mod is not None else importlib.import_module(spec.apply.__module__)


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


def run(uncal: DataModel, plan: Sequence[PlannedStep],
        on_step: OnStep | None = None) -> dict[str, DataModel]:
    """Run the planned detector1 steps on ``uncal``; returns {"rate": ..., "rateints": ...}.

    The uncal is never modified. Skipped steps get ``cal_step.<name> = "SKIPPED"``."""
    _validate(plan)
    arrays = dq_init.to_ramp(uncal)
    meta: dict[str, Any] = dict(uncal.meta)
    products: dict[str, DataModel] | None = None

    def snapshot() -> DataModel:
        if products is not None:
            return products["rate"]
        return DataModel("ramp", {k: v.copy() for k, v in arrays.items()}, dict(meta))

    for step in plan:
        name = step.spec.name
        mod = _module(step.spec)
        if step.skip:
            meta[f"cal_step.{name}"] = "SKIPPED"
            if products is not None:
                products = {k: v.replace(meta={f"cal_step.{name}": "SKIPPED"})
                            for k, v in products.items()}
        elif products is not None:  # after ramp_fit: rate and rateints
            products = {k: step.spec.apply(v, step.refs, step.params)
                        for k, v in products.items()}
        elif name == "ramp_fit":
            rate, rateints = mod.fit_ramps(_ramp_view(arrays, meta), step.refs, step.params)
            products = {"rate": rate, "rateints": rateints}
        elif hasattr(mod, "apply_inplace"):
            meta.update(mod.apply_inplace(arrays, step.refs, step.params, meta))
        else:
            result = step.spec.apply(_ramp_view(arrays, meta), step.refs, step.params)
            _adopt(arrays, result)
            meta.update(result.meta)
        if on_step is not None:
            on_step(name, snapshot)
    assert products is not None  # _validate guarantees ramp_fit
    return products
