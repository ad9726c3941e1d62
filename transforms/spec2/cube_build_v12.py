"""cube_build 1.2: 1.1 with the sky grid centred on every pixel of the band, as jwst 3.0.

1.0 and 1.1 take the sky cube's footprint (crval, the number of spaxels) from the centres of
the *good* pixels only (finite data and error, not DO_NOT_USE / NON_SCIENCE). jwst 3.0 takes it
from the WCS of every pixel of the channel's (MIRI, ``cube_build_wcs_util.find_corners_miri``)
or slice's (NIRSpec) region, whatever the data. Two consequences, found by the property tests
(``tests/transforms/ifu/test_ifu_edge_cases.py``):

- the grid moved with the data: blanking one edge slice of an MRS channel 1 exposure moved
  crval by 0.07" in RA and 0.06" in Dec, and a flagged pixel at the field's edge can shift it;
- an exposure with no good pixel in the band (all NaN or all DO_NOT_USE) raised
  ``CubeBuildError: no valid pixel maps onto the sky``; jwst writes an empty cube.

1.2 takes the footprint from every pixel of the band (label > 0, the instrument model's
slices), so the grid depends on the pointing and the instrument only, and an exposure without
good pixels gives a cube of NaN voxels flagged DO_NOT_USE. Where the band's extreme pixels are
good (every simulated exposure with data at the field's edges) 1.2 gives 1.1's cube exactly.
internal_cal is 1.1's. Parameters: 1.0's (jwst 3.0's CubeBuildStep).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from transforms.model import DataModel
from transforms.registry import register
from transforms.spec2 import cube_build as v10
from transforms.spec2 import cube_build_v11 as v11

NAME, VERSION = "cube_build", "1.2"

_Sky = namedtuple("_Sky", "ra dec")


def _footprint(members) -> list[_Sky]:
    """The sky centres of every pixel of each member's band (whatever its data)."""
    out = []
    for model, band in members:
        params = v10.I.wcs_params(model)
        mod = v10.I.instrument_module(params)
        px = v10.I.pixels(model)
        sel = mod.band_mask(params, px, band) & px.valid
        ra, dec = v10.I.local_to_radec(model.meta, px.label[sel], px.alpha[sel], px.beta[sel])
        out.append(_Sky(np.asarray(ra, np.float64), np.asarray(dec, np.float64)))
    return out


@register(NAME, VERSION, "spec2", v10.CubeBuildParams, ("cubepar",), keyword="S_IFUCUB",
          exec_only=("output_use_model", "suffix", "debug_spaxel"),
          instruments=("MIRI", "NIRSPEC"), exp_types=("MIR_MRS", "NRS_IFU"))
def cube_build(models, refs: dict, params: v10.CubeBuildParams) -> DataModel:
    """Build spectral cubes from IFU images (one, or a tuple: dithers, channels, bands)."""
    if isinstance(models, DataModel):
        models = (models,)
    return v10.I.cube_product(v10.build(tuple(models), refs, params, v11._internal_geometry,
                                        footprint=_footprint))
