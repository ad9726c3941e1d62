"""assign_wcs 2.1: version 2.0 (slits; imaging through 1.0) plus the IFU modes.

MIR_MRS and NRS_IFU exposures get the slice-by-slice IFU WCS of ``assign_wcs_ifu``; every
other exposure is handed to version 2.0 (the slit spectroscopy version, which passes imaging
to 1.0 unchanged) when it is registered, else imaging to 1.0 directly, so imaging and slit
products are exactly those of the versions below.
"""

from __future__ import annotations

from transforms.image2 import assign_wcs as v10
from transforms.registry import register
from transforms.spec2._ifu_common import delegate, exp_type, is_ifu_exposure
from transforms.spec2.assign_wcs_ifu import assign_wcs_ifu

NAME, VERSION = "assign_wcs", "2.1"
IMAGING = ("NRC_IMAGE", "NIS_IMAGE", "MIR_IMAGE", "NRS_IMAGE", "FGS_IMAGE", "NRC_TACQ",
           "NRS_TACQ", "MIR_TACQ")


@register(NAME, VERSION, "spec2", v10.AssignWcsParams, ("distortion",), keyword="S_WCS",
          optional_reftypes=("disperser", "msa", "wavelengthrange", "specwcs", "regions",
                             "ifufore", "ifuslicer", "ifupost"))
def assign_wcs(model, refs, params):
    """Imaging as 1.0, slits as 2.0, MIRI MRS and NIRSpec IFU: the IFU slice WCS."""
    if is_ifu_exposure(model.meta):
        return assign_wcs_ifu(model, refs, params)
    versions = ("2.0", "1.0") if exp_type(model) not in IMAGING else ("1.0",)
    return delegate(NAME, versions, model, refs, params, f"{exp_type(model)} data")
