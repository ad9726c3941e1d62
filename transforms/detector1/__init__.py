"""Stage 1 (detector-level) steps and the chain that runs them: uncal -> rate, rateints.

Importing this package registers every detector1 step with ``transforms.registry`` and declares
the stage. Steps are pure ``apply(model, refs, params)`` functions; most also declare an
in-place kernel that ``run`` (pipeline.py) drives on a single ramp buffer. The step orders are
jwst 3.0's ``Detector1Pipeline``: one for the near-IR detectors and one for MIRI. See
docs/detector1.md.
"""

from __future__ import annotations

from transforms.registry import Stage, register_stage

from . import (  # noqa: F401  (imported for registration)
    charge_migration,
    charge_migration_v09,
    clean_flicker_noise,
    dark_current,
    dq_init,
    emicorr,
    firstframe,
    gain_scale,
    group_scale,
    ipc,
    jump,
    jump_v11,
    lastframe,
    linearity,
    persistence,
    picture_frame,
    ramp_fit,
    ramp_fit_v11,
    refpix,
    refpix_v09,
    refpix_v11,
    reset,
    rscd,
    saturation,
    superbias,
)
from .pipeline import PlannedStep, PlanError, default_plan, run

NEAR_IR_ORDER = ("group_scale", "dq_init", "saturation", "ipc", "superbias", "refpix", "linearity",
           "dark_current", "charge_migration", "jump", "picture_frame", "clean_flicker_noise",
           "persistence", "ramp_fit", "gain_scale")
MIRI_ORDER = ("group_scale", "dq_init", "emicorr", "saturation", "ipc", "firstframe", "lastframe",
        "reset", "linearity", "rscd", "dark_current", "refpix", "charge_migration", "jump",
        "picture_frame", "clean_flicker_noise", "persistence", "ramp_fit", "gain_scale")

STAGE = register_stage(Stage(
    name="detector1", subject="exposure", reads=("exposure:pixels",),
    outputs=("rate", "rateints"), steps=NEAR_IR_ORDER, orders={"MIRI": MIRI_ORDER}, run=run,
    doc="ramps -> count rates (calwebb_detector1)"))

__all__ = ["PlannedStep", "PlanError", "STAGE", "default_plan", "run"]
