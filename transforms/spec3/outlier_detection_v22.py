"""outlier_detection 2.2: version 2.1 (images as 1.0, slits in jwst's spec mode, IFU in its
ifu mode) with the slit singles drizzled on resample_spec 1.1's grid (2.0 and 2.1 use 1.0's).

The grid is the version's, not the plan's: a step's output depends only on its inputs,
parameters, references and version, so its recipe key says everything that made it. On NIRSpec
slits the two grids are the same, so the flags are 2.1's; on MIRI LRS (a full-frame cal)
resample_spec 1.1 anchors the grid on the slit's pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

from transforms import spectral as S
from transforms.ifu import is_ifu_exposure
from transforms.image3 import outlier_detection as v1
from transforms.model import DataModel
from transforms.registry import register
from transforms.spec2 import resample_spec as rs
from transforms.spec2 import resample_spec_v11  # noqa: F401  (its Resampler)
from transforms.spec3 import outlier_detection as v2
from transforms.spec3.outlier_detection_ifu import outlier_ifu


@register("outlier_detection", "2.2", "spec3", v1.OutlierParams, (), keyword="S_OUTLIR")
def outlier_detection(cals: Sequence[DataModel], refs: dict, params: v1.OutlierParams
                      ) -> tuple[DataModel, ...]:
    """Flag outliers: images as 1.0, slits as 2.0 on resample_spec 1.1's grid, IFU images in
    ifu mode."""
    cals = tuple(cals)
    if cals and all(is_ifu_exposure(m.meta) for m in cals):
        return outlier_ifu(cals, params)
    if cals and S.is_spectral_image(cals[0]):
        return v2.spectral_outliers(cals, params, rs.resampler("1.1"))
    return v1.outlier_detection(cals, refs, params)
