"""master_background 1.1: version 1.0 (slit spectra) plus IFU associations
(``master_background_ifu``)."""

from __future__ import annotations

from collections.abc import Sequence

from transforms.ifu import is_ifu_exposure
from transforms.model import DataModel
from transforms.registry import register
from transforms.spec3 import master_background as v10
from transforms.spec3.master_background_ifu import master_background_ifu


@register("master_background", "1.1", "spec3", v10.MasterBackgroundParams, (),
          keyword="S_MSBSUB", exec_only=("save_background", "output_use_model"),
          instruments=("NIRSPEC", "MIRI"))
def master_background(models: Sequence[DataModel], refs: dict,
                      params: v10.MasterBackgroundParams) -> tuple[DataModel, ...]:
    """Subtract the master background of the background members (slits as 1.0; IFU from the
    background members' calibrated pixels)."""
    models = tuple(models)
    if models and all(is_ifu_exposure(m.meta) for m in models):
        return master_background_ifu(models, refs, params)
    return v10.master_background(models, refs, params)
