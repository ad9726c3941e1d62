"""Stage 1 (detector-level) steps and the chain that runs them: uncal -> rate, rateints.

Importing this package registers every detector1 step with ``transforms.registry``. Steps are
pure ``apply(model, refs, params)`` functions; each also exposes ``apply_inplace`` so that
``run`` (pipeline.py) can drive them on a single ramp buffer. See docs/detector1.md.
"""

from __future__ import annotations

import importlib

from . import (  # noqa: F401  (imported for registration)
    charge_migration,
    clean_flicker_noise,
    dark_current,
    dq_init,
    group_scale,
    linearity,
    refpix,
    saturation,
    superbias,
)
from .pipeline import PlannedStep, PlanError, default_plan, run

# Steps written by other engineers: registered when their modules exist.
for _mod in ("jump", "ramp_fit", "gain_scale"):
    try:
        importlib.import_module(f"{__name__}.{_mod}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"{__name__}.{_mod}":
            raise

__all__ = ["PlannedStep", "PlanError", "default_plan", "run"]
