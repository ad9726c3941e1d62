"""MIRI: the MIRIMAGE, MIRIFULONG and MIRIFUSHORT detectors (``detector``)."""
