"""cube_build 1.1: version 1.0 with NIRSpec ``internal_cal`` cubes that build.

1.0's internal_cal grid (``cube_build._internal_geometry``) read the pixel corners' across- and
along-slice coordinates the wrong way round: ``map_pixels`` returns the internal frame's
corners as (x_slice, y_slice) pairs, across the slice first (``nirspec.ifu.local_to_internal``),
but the grid took the second of each pair as across. Its slice width was then the difference
of two corners on the same along-slice edge, zero, and every NIRSpec internal_cal request
raised ZeroDivisionError. 1.1 takes across = x_slice, along = y_slice, and the slice width =
the across extent of a pixel's corners; the grid is then the build 10.0 one 1.0 meant (one
spaxel per slice across, half that along, symmetric along-slice axis).

Every other request (skyalign, ifualign, MIRI, drizzle/emsm/msm) runs 1.0's code unchanged and
gives 1.0's output; only the request 1.0 could not serve differs, so a build pinning 1.0
reproduces its products exactly. Parameters: 1.0's (jwst 3.0's CubeBuildStep).
"""

from __future__ import annotations


import numpy as np

from transforms.model import DataModel
from transforms.registry import register
from transforms.spec2 import cube_build as v10

NAME, VERSION = "cube_build", "1.1"


def _internal_geometry(mapped, zc, zlo, zhi, zw, linear, cdelt3) -> v10.Geometry:
    """NIRSpec internal_cal: the slicer plane (metres), one spaxel per slice across (axis 1,
    x_slice), half that along (axis 2, y_slice), a symmetric along-slice axis."""
    m = mapped[0]
    across = np.concatenate([m.corners[0], m.corners[2], m.corners[4], m.corners[6]])
    along = np.concatenate([m.corners[1], m.corners[3], m.corners[5], m.corners[7]])
    across, along = across[np.isfinite(across)], along[np.isfinite(along)]
    if across.size == 0:
        raise v10.CubeBuildError("cube_build internal_cal: no valid pixel in the band")
    width = np.abs(m.corners[2] - m.corners[0])  # corner 1 (b-) to corner 2 (b+)
    width = float(np.median(width[np.isfinite(width)]))
    b_min, b_max = float(across.min()), float(across.max())
    nslice = max(1, round((b_max - b_min) / width))
    return v10.internal_grid(b_min, b_max, nslice, along, zc, zlo, zhi, zw, linear, cdelt3)


@register(NAME, VERSION, "spec2", v10.CubeBuildParams, ("cubepar",), keyword="S_IFUCUB",
          exec_only=("output_use_model", "suffix", "debug_spaxel"),
          instruments=("MIRI", "NIRSPEC"), exp_types=("MIR_MRS", "NRS_IFU"))
def cube_build(models, refs: dict, params: v10.CubeBuildParams) -> DataModel:
    """Build spectral cubes from IFU images (one, or a tuple: dithers, channels, bands)."""
    if isinstance(models, DataModel):
        models = (models,)
    return v10.I.cube_product(v10.build(tuple(models), refs, params, _internal_geometry))
