"""NIRSpec: the NRS1/NRS2 detectors (``detector``); spectral models live beside it."""
