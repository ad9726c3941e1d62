"""One model per instrument: detector geometry and readout, spectral and imaging WCS models.

``transforms/instruments/<inst>/`` holds one module per concern (``detector.py``, ``slits.py``,
``ifu.py`` ...). Steps and the simulator import the same model, so the truth the simulator
puts on a detector is what the steps take off it.
"""
