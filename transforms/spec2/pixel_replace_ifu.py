"""pixel_replace for IFU images: a pure function pixel_replace 1.1 calls for MIR_MRS and
NRS_IFU (jwst 3.0's IFUImageModel branch).

- ``mingrad`` (build 10.0's MRS method, jwst's default) and ``trace_model`` (IFU images have
  no trace model: mingrad): over the whole detector, every NaN pixel (not on the outer pixel
  frame) gets the mean of the pair of neighbours (left/right or up/down) with the smaller
  absolute difference; pairs with a NaN are not used; a replaced pixel loses DO_NOT_USE
  (unless NON_SCIENCE) and gains FLUX_ESTIMATED; variances are interpolated as their square
  roots. (``transforms.spec2.pixel_replace.mingrad``, the same function slits use.)
- ``fit_profile``: slice by slice (the slice label map of the instrument model), every other
  pixel made NaN/DO_NOT_USE|NON_SCIENCE, jwst's profile fit along the dispersion (MRS
  vertical, NIRSpec horizontal), the result kept inside the slice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms import ifu as I
from transforms.model import DataModel
from transforms.spec2 import pixel_replace as v10

ARRAYS = ("data", "dq", "err", "var_poisson", "var_rnoise", "var_flat")


def pixel_replace_ifu(model: DataModel, refs: Any, params: Any) -> DataModel:
    arrays = {k: np.array(model[k], copy=True) for k in ARRAYS if k in model.arrays}
    if params.algorithm in ("mingrad", "trace_model"):
        out = v10.mingrad(arrays)
    else:
        px = I.pixels(model)
        mod = I.instrument_module(I.wcs_params(model))
        dispaxis = 2 if mod.DISPERSION_AXIS == 0 else 1
        out = {k: np.array(v, copy=True) for k, v in arrays.items()}
        non = np.uint32(DQ.DO_NOT_USE | DQ.PIXEL["NON_SCIENCE"])
        for lab in np.unique(px.label[px.valid]):
            inside = px.label == lab
            ys, xs = np.nonzero(inside)
            y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
            box = inside[y0:y1, x0:x1]
            sub = {}
            for k, v in arrays.items():
                a = np.array(v[y0:y1, x0:x1], copy=True)
                if k == "dq":
                    a = np.where(box, a, a | non).astype(np.uint32)
                else:
                    a = np.where(box, a, np.nan).astype(a.dtype)
                sub[k] = a
            res = v10.fit_profile(sub, dispaxis, params.n_adjacent_cols)
            for k in out:
                tgt = out[k][y0:y1, x0:x1]
                tgt[box] = res[k][box]
    return model.replace(arrays={k: out[k] for k in out},
                         meta={"cal_step.pixel_replace": "COMPLETE"})
