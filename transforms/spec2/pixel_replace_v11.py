"""pixel_replace 1.1: version 1.0 for slits (unchanged) plus IFU images
(``pixel_replace_ifu``: mingrad over the detector, build 10.0's MRS method; fit_profile slice
by slice)."""

from __future__ import annotations

from transforms.registry import register
from transforms.spec2 import pixel_replace as v10
from transforms.spec2._ifu_common import is_ifu_exposure
from transforms.spec2.pixel_replace_ifu import pixel_replace_ifu

NAME, VERSION = "pixel_replace", "1.1"


@register(NAME, VERSION, "spec2", v10.PixelReplaceParams, (), keyword="S_PXREPL",
          skip_by_default=True, exec_only=("output_use_model",))
def pixel_replace(model, refs, params):
    """Replace flagged pixels of 2-D spectra (slits as 1.0; IFU images over the detector)."""
    if params.algorithm not in ("fit_profile", "mingrad", "trace_model"):
        raise v10.PixelReplaceError(f"pixel_replace algorithm must be fit_profile, mingrad or "
                                    f"trace_model, got {params.algorithm!r}")
    if not isinstance(model, (tuple, list)) and is_ifu_exposure(model.meta) and \
            model.get("wcs.ifu") is not None:
        return pixel_replace_ifu(model, refs, params)
    return v10.pixel_replace(model, refs, params)
