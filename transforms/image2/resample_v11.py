"""resample 1.1: version 1.0's drizzle with an interpolated pixel map and a faster kernel.

Version 1.0 maps every input pixel corner through the full WCS (half of its time) and runs a
serial kernel that was 2-3x slower than the C ``drizzle`` package jwst uses. 1.1 evaluates the
WCS on a coarse grid and interpolates the detector -> output map in between (cubic; the step is
the coarsest whose measured error is <= ``pixmap_tolerance`` output pixels at 9 check points
per coarse cell), and drizzles with a column-wise overlap kernel that builds corner rows on
the fly (``transforms.drizzle_fast``). On a full NIRCam frame into a mosaic grid the map error
is ~1e-8 output pixel and the output agrees with 1.0 to ~1e-7 of the peak (see
docs/benchmarks.md). The outputs differ from 1.0's in the last bits, so this is a new version
beside 1.0; builds that pin 1.0 reproduce their products exactly.

Parameters: 1.0's (JWST 3.0's ResampleStep), with JWST's pixel-map options honoured:
``pixmap_stepsize > 1`` evaluates the WCS every that many pixels and interpolates with
``pixmap_order`` (1 bilinear, 3 cubic) without an error test, as JWST does. With the default
``pixmap_stepsize = 1`` (where JWST evaluates every pixel), 1.1 chooses the step itself from
``pixmap_tolerance`` (calops; 1e-3 output pixel; 0 evaluates every corner exactly, JWST's
default behaviour).
"""

from __future__ import annotations

from dataclasses import dataclass

from transforms import drizzle_fast as F
from transforms import resample as R
from transforms.image2 import resample as v10
from transforms.image2._common import Image2Error
from transforms.model import DataModel
from transforms.registry import register

NAME, VERSION = "resample", "1.1"


@dataclass(frozen=True)
class ResampleParams(v10.ResampleParams):
    """1.0's parameters (JWST's), plus ``pixmap_tolerance``: the largest interpolation error
    of the pixel map accepted when the step is chosen automatically (output pixels; 0: exact
    map at every corner)."""

    pixmap_tolerance: float = F.DEFAULT_TOL


def resample_params(p: ResampleParams) -> dict:
    """Keyword arguments of ``transforms.drizzle_fast.resample_models`` from step parameters."""
    kw = v10.resample_params(p)
    if p.pixmap_order not in F.ORDERS:
        raise Image2Error(f"resample pixmap_order must be 1 or 3, got {p.pixmap_order}")
    if not p.pixmap_tolerance >= 0:
        raise Image2Error(f"resample pixmap_tolerance must be >= 0 output pixels, got "
                          f"{p.pixmap_tolerance}")
    if p.pixmap_stepsize > 1:
        kw.update(order=int(p.pixmap_order), step=float(p.pixmap_stepsize),
                  tol=float(p.pixmap_tolerance))
    else:
        kw.update(order=3, step=None, tol=float(p.pixmap_tolerance))
    return kw


@register(NAME, VERSION, "image2", ResampleParams, (), keyword="S_RESAMP")
def resample(model, refs, params: ResampleParams) -> DataModel:
    """Drizzle a cal image (or a tuple of them, for stage 3) into an i2d mosaic (fast map)."""
    models = tuple(model) if isinstance(model, (tuple, list)) else (model,)
    try:
        return F.resample_models(models, **resample_params(params))
    except R.ResampleError as exc:
        raise Image2Error(f"{NAME}: {exc}") from exc
