"""resample_spec 1.1: version 1.0 whose s2d carries its own grid's WCS, anchored on the slit.

Two flaws of 1.0 show on a MIRI LRS cal, the full imager frame (an ImageModel whose WCS
parameters are top-level ``wcs.*`` keys, with sky positions on every pixel and wavelengths
only in the slit box); NIRSpec's slit cutouts have neither (issue #15):

- **the s2d keeps the cal's WCS.** 1.0 builds the s2d from the cal's metadata with
  ``spectral.with_slits``, which keeps a base's top-level ``wcs.*`` over the slit's own
  ``wcs``: a single-slit s2d (LRS, per exposure and combined) thus carried the cal's
  full-frame detector model, evaluated at s2d pixel indices. The trace's column (~13) mapped
  to detector column 13, ~33" from the source, and extract_1d's ``locate`` found no target
  (the aperture stayed at the s2d's centre: between a nod's positive and negative traces).
  1.1 drops the input's ``wcs.*`` from the s2d's metadata, so it carries the grid's ``s2d``
  WCS (``spectral.s2d_gwcs``).
- **the grid's anchor is taken over the whole detector row.** 1.0's ``build_grid`` puts the
  tangent point ``ra0``/``dec0`` at the mean sky position of the reference column's pixels
  with a finite RA/Dec, and fits the slit direction (``pa``) and input scale over them; the
  reference column is the middle one (for LRS a detector row outside the band, with no slit
  pixel). The grid was still right (the LRS rows run along the slit, so the mean lies on the
  slit's line, 22" along it, and ``s0`` compensates), but its anchor was off the slit. 1.1
  uses only pixels that also have a finite wavelength: the middle column when it crosses the
  slit, else the middle of the columns that do; the tangent point, the slit direction and
  scale and the slit-y fit come from the slit's pixels of that column.

Everything else (the wavelength table, the drizzle, flux conventions, products) is 1.0's. On
inputs whose sky positions are finite only inside the slit and that carry their WCS per slit
(NIRSpec FS and MOS cutouts, analytic slits) the two versions give the same products.
"""

from __future__ import annotations

from transforms.model import DataModel
from transforms.registry import register
from transforms.spec2 import resample_spec as v10

RESAMPLER = v10.RESAMPLERS.setdefault("1.1", v10.Resampler("1.1", slit_only=True,
                                                               own_wcs=True))


@register("resample_spec", "1.1", "spec2", v10.ResampleSpecParams, (), keyword="S_RESAMP",
          exec_only=("in_memory", "blendheaders"), instruments=("NIRSPEC", "MIRI"))
def resample_spec(model, refs: dict, params: v10.ResampleSpecParams) -> DataModel:
    """Rectify 2-D spectra onto a wavelength x slit-offset grid (s2d) anchored on the slit's
    own pixels; a tuple of exposures (stage 3) gives one s2d slit per source."""
    if isinstance(model, DataModel):
        return RESAMPLER.resample_exposure(model, params)
    return RESAMPLER.resample_sources(tuple(model), params)
