"""extract_1d 1.1: version 1.0 for slit spectra (unchanged) plus IFU cubes
(``extract_1d_ifu``: jwst's ifu_extract1d with build 10.0's ``ifu_rscale``,
``ifu_set_srctype`` and the residual fringe correction after the normalisation).

The parameters are 1.0's plus jwst 3.0's IFU ones (their defaults): ``center_xy``,
``ifu_autocen``, ``bkg_sigma_clip``, ``ifu_rfcorr``, ``ifu_set_srctype``, ``ifu_rscale``,
``ifu_covar_scale``; slit spectra see only 1.0's.
"""

from __future__ import annotations

from dataclasses import dataclass

from transforms import ifu as I
from transforms.registry import register
from transforms.spec2 import extract_1d as v10
from transforms.spec2._ifu_common import IfuStepError, delegate
from transforms.spec2.extract_1d_ifu import extract_ifu

NAME, VERSION = "extract_1d", "1.1"


@dataclass(frozen=True)
class Extract1dParams(v10.Extract1dParams):
    """jwst 3.0 Extract1dStep parameters for slits and IFU cubes (spec defaults)."""

    center_xy: tuple[float, float] | None = None
    ifu_autocen: bool = False
    bkg_sigma_clip: float = 3.0
    ifu_rfcorr: bool = True
    ifu_set_srctype: str | None = None
    ifu_rscale: float | None = None
    ifu_covar_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.ifu_set_srctype is not None and str(self.ifu_set_srctype).upper() not in (
                "POINT", "EXTENDED"):
            raise ValueError("extract_1d ifu_set_srctype must be POINT, EXTENDED or None")
        if self.ifu_rscale is not None and not 0.5 <= float(self.ifu_rscale) <= 3.0:
            raise ValueError(f"extract_1d ifu_rscale must be within 0.5-3, got "
                             f"{self.ifu_rscale}")


@register(NAME, VERSION, "spec2", Extract1dParams, (), keyword="S_EXTR1D",
          optional_reftypes=("extract1d", "apcorr"), instruments=("NIRSPEC", "MIRI"),
          exec_only=("log_increment", "save_profile", "save_scene_model",
                     "save_residual_image"))
def extract_1d(model, refs: dict, params: Extract1dParams):
    """Extract 1-D spectra: slits as 1.0; IFU cubes with jwst's IFU aperture photometry."""
    if not isinstance(model, (tuple, list)) and I.is_cube(model):
        return extract_ifu(model, refs, params)
    if isinstance(model, (tuple, list)):
        raise IfuStepError("extract_1d takes one product")
    return delegate(NAME, ("1.0",), model, {k: v for k, v in (refs or {}).items()
                                            if k == "extract1d"}, params, "slit spectra")
