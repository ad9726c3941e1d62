"""extract_1d 1.2: version 1.1 with jwst 3.0's IFU background rules (slit spectra: 1.0,
unchanged).

Measured against jwst 3.0's Extract1dStep on the same cube (tests/transforms/ifu/
test_ifu_x1d_vs_jwst.py), 1.1's IFU background differed from jwst's by 4-9 % on NIRSpec IFU
planes (and at some MRS planes): 1.1 keeps the background voxels its own median-centred
iterative clip kept, jwst keeps the voxels within ``mean +- bkg_sigma_clip x std`` of
astropy's ``sigma_clipped_stats`` of the voxels with weight >= 1. 1.2 uses jwst's rule, sums
a point source's background variance over the whole annulus (not only the kept voxels) and,
like jwst for a cube without VAR_* arrays, writes zero variance columns (the errors are the
cube's ERR, as before). Everything else is 1.1's (``extract_1d_ifu``, ``jwst_clip=True``).
"""

from __future__ import annotations

from transforms import ifu as I
from transforms.registry import register
from transforms.spec2._ifu_common import IfuStepError, delegate
from transforms.spec2.extract_1d_ifu import extract_ifu
from transforms.spec2.extract_1d_v11 import Extract1dParams

NAME, VERSION = "extract_1d", "1.2"


@register(NAME, VERSION, "spec2", Extract1dParams, (), keyword="S_EXTR1D",
          optional_reftypes=("extract1d", "apcorr"), instruments=("NIRSPEC", "MIRI"),
          exec_only=("log_increment", "save_profile", "save_scene_model",
                     "save_residual_image"))
def extract_1d(model, refs: dict, params: Extract1dParams):
    """Extract 1-D spectra: slits as 1.0; IFU cubes with jwst 3.0's aperture photometry and
    background clip."""
    if not isinstance(model, (tuple, list)) and I.is_cube(model):
        return extract_ifu(model, refs, params, jwst_clip=True)
    if isinstance(model, (tuple, list)):
        raise IfuStepError("extract_1d takes one product")
    return delegate(NAME, ("1.0",), model, {k: v for k, v in (refs or {}).items()
                                            if k == "extract1d"}, params, "slit spectra")
