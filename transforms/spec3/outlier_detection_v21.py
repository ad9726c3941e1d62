"""outlier_detection 2.1: version 2.0 (imaging through 1.0; jwst's spec mode for slits) plus
jwst's ``ifu`` mode for MIRI MRS and NIRSpec IFU exposures (``outlier_detection_ifu``)."""

from __future__ import annotations

from collections.abc import Sequence

from transforms.ifu import is_ifu_exposure
from transforms.image3 import outlier_detection as v1
from transforms.model import DataModel
from transforms.registry import register
from transforms.spec3 import outlier_detection as v2
from transforms.spec3.outlier_detection_ifu import outlier_ifu


@register("outlier_detection", "2.1", "spec3", v1.OutlierParams, (), keyword="S_OUTLIR")
def outlier_detection(cals: Sequence[DataModel], refs: dict, params: v1.OutlierParams
                      ) -> tuple[DataModel, ...]:
    """Flag outliers: images as 1.0, slits as 2.0 (spec mode), IFU images (ifu mode)."""
    cals = tuple(cals)
    if cals and all(is_ifu_exposure(m.meta) for m in cals):
        return outlier_ifu(cals, params)
    return v2.outlier_detection(cals, refs, params)
