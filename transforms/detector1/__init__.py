"""Stage 1 (detector-level) steps and the chain that runs them: uncal -> rate, rateints.

Importing this package registers every detector1 step with ``transforms.registry``. Steps are
pure ``apply(model, refs, params)`` functions; each also exposes ``apply_inplace`` so that
``run`` (pipeline.py) can drive them on a single ramp buffer. See docs/detector1.md.
"""

from __future__ import annotations

from . import (  # noqa: F401  (imported for registration)
    charge_migration,
    charge_migration_v09,
    clean_flicker_noise,
    dark_current,
    dq_init,
    gain_scale,
    group_scale,
    jump,
    linearity,
    ramp_fit,
    ramp_fit_v11,
    refpix,
    saturation,
    superbias,
)
from .pipeline import PlannedStep, PlanError, default_plan, run

__all__ = ["PlannedStep", "PlanError", "default_plan", "run"]
