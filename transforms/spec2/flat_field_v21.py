"""flat_field 2.1: version 2.0 (NIRSpec slits; imaging and MIRI LRS through 1.0) plus the
IFU modes (``flat_field_ifu``): MIRI MRS with its 2-D flat (1.0's arithmetic), NIRSpec IFU
with the F, S and D flats at each pixel's wavelength."""

from __future__ import annotations

from transforms.image2 import flat_field as v10
from transforms.registry import register
from transforms.spec2._ifu_common import delegate, exp_type, is_ifu_exposure
from transforms.spec2.flat_field_ifu import flat_field_ifu

NAME, VERSION = "flat_field", "2.1"
_SLIT_TYPES = ("NRS_FIXEDSLIT", "NRS_MSASPEC", "MIR_LRS-FIXEDSLIT")


@register(NAME, VERSION, "spec2", v10.FlatFieldParams, ("flat",), keyword="S_FLAT",
          optional_reftypes=("fflat", "sflat", "dflat"))
def flat_field(model, refs, params):
    """Imaging as 1.0, slits as 2.0, IFU: the MRS flat or the NIRSpec IFU F/S/D flats."""
    if is_ifu_exposure(model.meta):
        return flat_field_ifu(model, refs, params)
    versions = ("2.0", "1.0") if exp_type(model) in _SLIT_TYPES else ("1.0",)
    return delegate(NAME, versions, model, refs, params, f"{exp_type(model)} data")
