"""Plans: the ordered steps a stage's chain runs, checked against the stage's declaration.

The runner builds plans from a build (catalogs/builds.py); tests, benchmarks and file-level
commands build them from the registry's newest versions with ``default_plan``. Every chain
checks its plan with ``check_plan`` before it touches data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from transforms import registry
from transforms.model import DataModel
from transforms.registry import PlannedStep

# Called after each step with its name and a function that materialises the product then.
OnStep = Callable[[str, Callable[[], DataModel]], None]


class PlanError(ValueError):
    """A plan that cannot run: a step of another stage, out of order, twice, or wrong type."""


def default_plan(stage: str, refs: Mapping[str, DataModel],
                 overrides: Mapping[str, Mapping[str, Any]] | None = None,
                 skip: Mapping[str, bool] | None = None,
                 meta: Mapping[str, Any] | None = None) -> list[PlannedStep]:
    """The newest version of every step of ``stage`` (in the order for ``meta``'s instrument),
    JWST defaults, each step given the references it declares from ``refs``."""
    overrides, skip = dict(overrides or {}), dict(skip or {})
    known = registry.steps()
    plan = []
    for name in registry.stage(stage).order_for(meta):
        if name not in known:
            continue
        spec = registry.get(name)
        if meta is not None and not spec.applies_to(meta):
            continue
        step_refs = {r: refs[r] for r in spec.reftypes + spec.optional_reftypes if r in refs}
        plan.append(PlannedStep(spec, spec.make_params(overrides.get(name)),
                                bool(skip.get(name, spec.skip_by_default)), step_refs))
    return plan


def check_plan(stage: str, plan: Sequence[PlannedStep], meta: Mapping[str, Any] | None = None
               ) -> None:
    """Refuse a plan whose entries are not PlannedSteps of ``stage``, in its order, once each."""
    order = registry.stage(stage).order_for(meta)
    names = []
    for p in plan:
        if not isinstance(p, PlannedStep):
            raise PlanError(f"plan entries must be PlannedStep, got {type(p).__name__}")
        if p.spec.name not in order:
            raise PlanError(f"step {p.spec.name} is not a {stage} step ({', '.join(order)})")
        names.append(p.spec.name)
    if len(set(names)) != len(names):
        raise PlanError(f"a step appears twice in the plan: {names}")
    idx = [order.index(n) for n in names]
    if idx != sorted(idx):
        raise PlanError(f"plan steps out of order: {names}; the order is {', '.join(order)}")
