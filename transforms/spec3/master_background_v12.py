"""master_background 1.2: version 1.1 (slit spectra as 1.0; IFU associations) with the
background exposures of slit spectra rectified on resample_spec 1.1's grid (1.0 and 1.1 use
1.0's).

The grid is the version's, not the plan's: a step's output depends only on its inputs,
parameters, references and version, so its recipe key says everything that made it. On NIRSpec
slits the two grids are the same, so the products are 1.1's; on MIRI LRS (a full-frame cal)
resample_spec 1.1 anchors the grid on the slit's pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

from transforms.ifu import is_ifu_exposure
from transforms.model import DataModel
from transforms.registry import register
from transforms.spec2 import resample_spec as rs
from transforms.spec2 import resample_spec_v11  # noqa: F401  (its Resampler)
from transforms.spec3 import master_background as v10
from transforms.spec3.master_background_ifu import master_background_ifu


@register("master_background", "1.2", "spec3", v10.MasterBackgroundParams, (),
          keyword="S_MSBSUB", exec_only=("save_background", "output_use_model"),
          instruments=("NIRSPEC", "MIRI"))
def master_background(models: Sequence[DataModel], refs: dict,
                      params: v10.MasterBackgroundParams) -> tuple[DataModel, ...]:
    """Subtract the master background of the background members (slits as 1.0 on
    resample_spec 1.1's grid; IFU as 1.1)."""
    models = tuple(models)
    if models and all(is_ifu_exposure(m.meta) for m in models):
        return master_background_ifu(models, refs, params)
    if params.user_background:
        return v10.master_background(models, refs, params)  # 1.0's error
    return v10.subtract_master(models, params, rs.resampler("1.1"))
