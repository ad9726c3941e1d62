"""photom 2.1: version 2.0 (slits; imaging through 1.0) plus the IFU modes (``photom_ifu``):
MIRI MRS per-pixel conversion with the build 10.0 time-dependent correction, NIRSpec IFU per
wavelength, both in MJy/sr."""

from __future__ import annotations

from transforms.image2 import photom as v10
from transforms.registry import register
from transforms.spec2._ifu_common import delegate, exp_type, is_ifu_exposure
from transforms.spec2.photom_ifu import photom_ifu

NAME, VERSION = "photom", "2.1"
_SLIT_TYPES = ("NRS_FIXEDSLIT", "NRS_MSASPEC", "MIR_LRS-FIXEDSLIT")


@register(NAME, VERSION, "spec2", v10.PhotomParams, ("photom",), keyword="S_PHOTOM",
          optional_reftypes=("area",))
def photom(model, refs, params):
    """Imaging as 1.0, slits as 2.0, IFU to MJy/sr (MRS: with the time correction)."""
    if is_ifu_exposure(model.meta):
        return photom_ifu(model, refs, params)
    versions = ("2.0", "1.0") if exp_type(model) in _SLIT_TYPES else ("1.0",)
    return delegate(NAME, versions, model, refs, params, f"{exp_type(model)} data")
