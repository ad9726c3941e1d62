"""The science: pure functions, numba kernels, data models and the simulator.

Nothing here imports another calops room, reads a file, a clock, the environment or an
unseeded random generator (see docs/design.md).
"""
