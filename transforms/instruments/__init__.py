"""One model per instrument: detector geometry and readout, spectral and imaging WCS models.

``transforms/instruments/<inst>/`` holds one module per concern (``detector.py``, ``slits.py``,
``ifu.py`` ...). Steps and the simulator import the same model, so the truth the simulator
puts on a detector is what the steps take off it.
"""


def slit_wcs(params):
    """The gwcs of a spectral slit (or spectral image) from its ``wcs`` parameters, by their
    ``model``: ``calops.nirspec_slit`` (``nirspec.slits``) or ``calops.miri_lrs`` (``miri.lrs``).
    ``transforms.spectral`` hands every instrument model here."""
    model = dict(params).get("model")
    if model == "calops.nirspec_slit":
        from transforms.instruments.nirspec.slits import slit_gwcs

        return slit_gwcs(params)
    if model == "calops.miri_lrs":
        from transforms.instruments.miri.lrs import lrs_gwcs

        return lrs_gwcs(params)
    raise ValueError(f"no instrument model builds a WCS of model {model!r}")
