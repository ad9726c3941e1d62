"""JWST data-quality bits, exactly as stdatamodels.dqflags defines them."""

from __future__ import annotations

import numpy as np

PIXEL: dict[str, int] = {
    "GOOD": 0,
    "DO_NOT_USE": 1 << 0,
    "SATURATED": 1 << 1,
    "JUMP_DET": 1 << 2,
    "DROPOUT": 1 << 3,
    "OUTLIER": 1 << 4,
    "PERSISTENCE": 1 << 5,
    "AD_FLOOR": 1 << 6,
    "CHARGELOSS": 1 << 7,
    "RESERVED": 1 << 8,  # UNRELIABLE_ERROR in older stdatamodels
    "NON_SCIENCE": 1 << 9,
    "DEAD": 1 << 10,
    "HOT": 1 << 11,
    "WARM": 1 << 12,
    "LOW_QE": 1 << 13,
    "RC": 1 << 14,
    "TELEGRAPH": 1 << 15,
    "NONLINEAR": 1 << 16,
    "BAD_REF_PIXEL": 1 << 17,
    "NO_FLAT_FIELD": 1 << 18,
    "NO_GAIN_VALUE": 1 << 19,
    "NO_LIN_CORR": 1 << 20,
    "NO_SAT_CHECK": 1 << 21,
    "UNRELIABLE_BIAS": 1 << 22,
    "UNRELIABLE_DARK": 1 << 23,
    "UNRELIABLE_SLOPE": 1 << 24,
    "UNRELIABLE_FLAT": 1 << 25,
    "OPEN": 1 << 26,
    "ADJ_OPEN": 1 << 27,
    "FLUX_ESTIMATED": 1 << 28,
    "MSA_FAILED_OPEN": 1 << 29,
    "OTHER_BAD_PIXEL": 1 << 30,
    "REFERENCE_PIXEL": 1 << 31,
}

GROUP: dict[str, int] = {
    name: PIXEL[name]
    for name in ("GOOD", "DO_NOT_USE", "SATURATED", "JUMP_DET", "DROPOUT", "PERSISTENCE",
                 "AD_FLOOR", "CHARGELOSS")
}

# Module-level constants for use inside numba kernels (globals are frozen at compile time).
GOOD = 0
DO_NOT_USE = PIXEL["DO_NOT_USE"]
SATURATED = PIXEL["SATURATED"]
JUMP_DET = PIXEL["JUMP_DET"]
DROPOUT = PIXEL["DROPOUT"]
OUTLIER = PIXEL["OUTLIER"]
PERSISTENCE = PIXEL["PERSISTENCE"]
AD_FLOOR = PIXEL["AD_FLOOR"]
CHARGELOSS = PIXEL["CHARGELOSS"]
RESERVED = PIXEL["RESERVED"]
DEAD = PIXEL["DEAD"]
HOT = PIXEL["HOT"]
WARM = PIXEL["WARM"]
NONLINEAR = PIXEL["NONLINEAR"]
NO_FLAT_FIELD = PIXEL["NO_FLAT_FIELD"]
NO_GAIN_VALUE = PIXEL["NO_GAIN_VALUE"]
NO_LIN_CORR = PIXEL["NO_LIN_CORR"]
NO_SAT_CHECK = PIXEL["NO_SAT_CHECK"]
UNRELIABLE_BIAS = PIXEL["UNRELIABLE_BIAS"]
UNRELIABLE_DARK = PIXEL["UNRELIABLE_DARK"]
UNRELIABLE_SLOPE = PIXEL["UNRELIABLE_SLOPE"]
UNRELIABLE_FLAT = PIXEL["UNRELIABLE_FLAT"]
OTHER_BAD_PIXEL = PIXEL["OTHER_BAD_PIXEL"]
REFERENCE_PIXEL = PIXEL["REFERENCE_PIXEL"]

PIXELDQ_DTYPE = np.uint32
GROUPDQ_DTYPE = np.uint8


def names(value: int, table: dict[str, int] = PIXEL) -> list[str]:
    """The flag names set in one DQ value, lowest bit first."""
    return [n for n, bit in table.items() if bit and int(value) & bit]


def bits(*flag_names: str) -> int:
    """The DQ value with the named flags set."""
    out = 0
    for n in flag_names:
        out |= PIXEL[n]
    return out
