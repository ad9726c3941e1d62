"""The spec3 chain for IFU associations (MIR_MRS, NRS_IFU), as jwst 3.0's Spec3Pipeline runs
them: master_background, outlier_detection (ifu mode), pixel_replace, cube_build (every
science exposure: dithers, channels, bands), extract_1d (one spectrum per cube), spectral_leak
(MRS). resample_spec and combine_1d are not IFU steps. The products: ``s3d`` (every cube of
the association) and ``x1d``; ``crf`` the calibrated exposures as they went into cube_build.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transforms.model import DataModel
from transforms.plans import OnStep
from transforms.registry import PlannedStep

NOT_FOR_IFU = ("resample_spec", "combine_1d")


def run_ifu3(cals: Sequence[DataModel], plan: Sequence[PlannedStep],
             on_step: OnStep | None = None) -> dict[str, Any]:
    from transforms.spec3 import master_background

    models = tuple(cals)
    by = {p.spec.name: p for p in plan}
    if "master_background" not in by or by["master_background"].skip:
        models = master_background.split(models)[0]
    out: dict[str, Any] = {}
    for p in plan:
        spec, params, refs, skip = p.spec, p.params, p.refs or {}, p.skip
        name = spec.name
        if name in NOT_FOR_IFU:
            continue
        if name == "cube_build":
            if not skip:
                out["s3d"] = spec.apply(models, refs, params)
        elif name == "extract_1d":
            if not skip and out.get("s3d") is not None:
                out["x1d"] = spec.apply(out["s3d"], refs, params)
        elif name == "spectral_leak":
            if out.get("x1d") is not None:
                out["x1d"] = (out["x1d"].replace(meta={"cal_step.spectral_leak": "SKIPPED"})
                              if skip else spec.apply(out["x1d"], refs, params))
        elif name == "pixel_replace":
            models = tuple(m.replace(meta={"cal_step.pixel_replace": "SKIPPED"}) if skip
                           else spec.apply(m, refs, params) for m in models)
        elif skip:
            models = tuple(m.replace(meta={f"cal_step.{name}": "SKIPPED"}) for m in models)
        else:
            models = tuple(spec.apply(models, refs, params))
        if on_step is not None:
            on_step(name, lambda o=out.get("x1d") or out.get("s3d"): o)
    out["crf"] = models
    return out
