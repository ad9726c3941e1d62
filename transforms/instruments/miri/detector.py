"""The MIRI detectors MIRIMAGE, MIRIFULONG and MIRIFUSHORT: geometry, outputs, timing, EMI.

One model for the detector1 steps (refpix, emicorr, rscd, reset) and the simulator.

**Geometry.** Each Si:As detector is read as 1024 rows x 1032 columns. The DMS (science) frame
is the detector frame (FASTAXIS=1, SLOWAXIS=2). Reference pixels are the first and last
``NREF_COLS`` = 4 columns of every row (0-3 and 1028-1031, 0-based); there are no reference
rows. Subarrays are windows of this frame, 1-based origin SUBSTRT1/2 as in the headers.

**Outputs.** Four outputs read interleaved columns: the output (amplifier) of full-frame column
``c`` (0-based) is ``c % 4``. All four sample at once, so a row of a window ``nx`` columns wide
takes ``nx/4`` samples, ``nsamples`` pixel clocks each (1 for FAST, 9 for SLOW); each output
thus has one reference column on each side (columns ``a`` and ``1028 + a``), which is what the
MIRI reference-pixel correction uses.

**Timing.** One pixel clock is 10 us. A row costs ``rowclocks`` clocks (samples plus overhead;
JWST's values per subarray, ``SUBARRAYS``; 2333 for full frame SLOW); rows outside a window are
skipped at ``RESET_ROW_CLOCKS`` = 7 clocks each, so a frame takes
``ny * rowclocks + (1024 - ny) * 7`` clocks (277504 = 2.77504 s for full frame FAST; 29952 for
SUB256). MIRI groups are single frames (NFRAMES=1, GROUPGAP=0): TGROUP = TFRAME.

**EMI.** Electromagnetic interference adds a periodic signal to what every output samples. The
pixel at window row ``j``, column ``x`` of group ``g`` in integration ``i`` is sampled at clock
``t = i * T_int + g * F + j * rowclocks + (x // 4) * nsamples``, with ``F`` the frame clocks and
``T_int = ngroups * F`` (``+ F`` for the R1 patterns, which reset once more between
integrations): jwst's emicorr timing model (its joint algorithm). A source of frequency ``f``
has a period of ``1 / (f * 10 us)`` clocks; its signal is ``A * w((t / period + phi) mod 1)`` for
a unit waveform ``w``. ``EMI_FREQUENCIES`` are the documented frequencies (jwst's emicorr docs
and tests: 390.625 Hz and 10.039216 Hz; 218.52055 Hz from its code), ``emi_frequencies`` says
which apply to a subarray/pattern/detector (the reference file's ``subarray_cases``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DETECTORS = ("MIRIMAGE", "MIRIFULONG", "MIRIFUSHORT")
NROWS = 1024
NCOLS = 1032
NREF_COLS = 4
NAMP = 4
PIXEL_CLOCK_S = 10e-6
RESET_ROW_CLOCKS = 7  # clocks per row outside a subarray window (4 + 3)
FULL_SLOW_ROWCLOCKS = 2333


class MiriError(ValueError):
    """An unknown MIRI subarray, readout pattern or detector, or an impossible window."""


@dataclass(frozen=True)
class MiriSubarray:
    """A MIRI window (1-based origin as SUBSTRT1/2) and its FAST row clocks."""

    name: str
    xstart: int
    ystart: int
    xsize: int
    ysize: int
    rowclocks: int


# JWST's MIRI subarrays (SIAF placement; imaging, LRS, coronagraphy) and their row clocks
# (jwst.emicorr's table: frame clocks = ysize * rowclocks + (1024 - ysize) * 7).
SUBARRAYS: dict[str, MiriSubarray] = {n: MiriSubarray(n, *v) for n, v in {
    "FULL": (1, 1, 1032, 1024, 271),
    "BRIGHTSKY": (457, 51, 512, 512, 162),
    "SUB256": (413, 51, 256, 256, 96),
    "SUB128": (1, 889, 136, 128, 44),
    "SUB64": (1, 779, 72, 64, 28),
    "SLITLESSPRISM": (1, 529, 72, 416, 28),
    "MASK1065": (1, 19, 288, 224, 82),
    "MASK1140": (1, 245, 288, 224, 82),
    "MASK1550": (1, 467, 288, 224, 82),
    "MASKLYOT": (1, 717, 320, 304, 90),
}.items()}
SUBARRAY_ALIASES = {"SUBPRISM": "SLITLESSPRISM"}  # the old name of the LRS slitless window


@dataclass(frozen=True)
class MiriPattern:
    """A MIRI readout pattern: samples per pixel and whether integrations get an extra reset."""

    name: str
    nsamples: int
    extra_reset: bool
    speed: str  # "FAST" or "SLOW" (what the EMI reference's subarray cases are keyed by)


PATTERNS: dict[str, MiriPattern] = {
    "FAST": MiriPattern("FAST", 1, False, "FAST"),
    "SLOW": MiriPattern("SLOW", 9, False, "SLOW"),
    "FASTR1": MiriPattern("FASTR1", 1, True, "FAST"),
    "SLOWR1": MiriPattern("SLOWR1", 9, True, "SLOW"),
}

# The documented EMI frequencies (Hz), named as in jwst's EMICORR reference.
EMI_FREQUENCIES: dict[str, float] = {
    "Hz390": 390.625,
    "Hz218": 218.52055,
    "Hz10": 10.039216,
    **{f"Hz10_slow_{d}": 10.039216 for d in DETECTORS},
}


def subarray(name: str) -> MiriSubarray:
    """A named MIRI subarray (FULL, BRIGHTSKY, SUB256, SLITLESSPRISM, MASK1550, ...)."""
    key = SUBARRAY_ALIASES.get(str(name).upper(), str(name).upper())
    try:
        return SUBARRAYS[key]
    except KeyError:
        raise MiriError(f"unknown MIRI subarray {name!r}; known: {', '.join(SUBARRAYS)}") from None


def pattern(name: str) -> MiriPattern:
    """A MIRI readout pattern (FAST, SLOW, FASTR1, SLOWR1)."""
    try:
        return PATTERNS[str(name).upper()]
    except KeyError:
        raise MiriError(f"unknown MIRI readout pattern {name!r}; known: "
                        f"{', '.join(PATTERNS)}") from None


def check_window(xstart: int, ystart: int, xsize: int, ysize: int) -> None:
    """Refuse a window that does not fit the 1032 x 1024 frame (1-based origin)."""
    if xsize < 1 or ysize < 1 or xstart < 1 or ystart < 1 \
            or xstart + xsize - 1 > NCOLS or ystart + ysize - 1 > NROWS:
        raise MiriError(f"window {xsize}x{ysize} at ({xstart},{ystart}) does not fit the MIRI "
                        f"{NCOLS}x{NROWS} frame")


def row_clocks(name: str, xsize: int, readpatt: str) -> int:
    """Clocks per row of a window: JWST's value for a named subarray; for another window the
    rule of the small subarrays, ``xsize/4 + 10`` (times 9 samples for SLOW)."""
    p = pattern(readpatt)
    key = SUBARRAY_ALIASES.get(str(name).upper(), str(name).upper())
    if key == "FULL" and p.speed == "SLOW":
        return FULL_SLOW_ROWCLOCKS
    if p.speed == "SLOW":
        raise MiriError(f"MIRI reads subarrays in FAST mode only, not {readpatt} ({name})")
    if key in SUBARRAYS:
        return SUBARRAYS[key].rowclocks
    return int(np.ceil(xsize / NAMP)) + 10


def frame_clocks(ysize: int, rowclocks: int) -> int:
    """Pixel clocks of one frame of a window ``ysize`` rows high."""
    if not 1 <= ysize <= NROWS:
        raise MiriError(f"a MIRI window has 1..{NROWS} rows, got {ysize}")
    return int(ysize * rowclocks + (NROWS - ysize) * RESET_ROW_CLOCKS)


def frame_time(name: str, xsize: int, ysize: int, readpatt: str) -> float:
    """TFRAME (s) of a window read with ``readpatt`` (2.77504 s for full frame FAST)."""
    return frame_clocks(ysize, row_clocks(name, xsize, readpatt)) * PIXEL_CLOCK_S


def integration_clocks(ngroups: int, fclocks: int, readpatt: str) -> int:
    """Clocks from the start of one integration to the start of the next (jwst's EMI model)."""
    return int(ngroups * fclocks + (fclocks if pattern(readpatt).extra_reset else 0))


def amplifiers(xstart: int, xsize: int) -> np.ndarray:
    """The output (0-3) that reads each column of a window: full-frame column mod 4."""
    return ((int(xstart) - 1 + np.arange(int(xsize))) % NAMP).astype(np.int64)


def reference_columns(xstart: int, xsize: int) -> np.ndarray:
    """Whether each column of a window is a reference column (full-frame 0-3 or 1028-1031)."""
    c = int(xstart) - 1 + np.arange(int(xsize))
    return (c < NREF_COLS) | (c >= NCOLS - NREF_COLS)


def reference_mask(xstart: int, ystart: int, xsize: int, ysize: int) -> np.ndarray:
    """(ysize, xsize) bool: the reference pixels of a window (whole reference columns)."""
    check_window(xstart, ystart, xsize, ysize)
    return np.broadcast_to(reference_columns(xstart, xsize)[None, :], (ysize, xsize)).copy()


def is_full_frame(meta_or_shape) -> bool:
    """Whether a product (its meta, or an image shape) covers the whole 1032 x 1024 frame."""
    if isinstance(meta_or_shape, tuple):
        return tuple(meta_or_shape[-2:]) == (NROWS, NCOLS)
    m = meta_or_shape
    return (int(m.get("subarray.xstart") or 1), int(m.get("subarray.ystart") or 1),
            int(m.get("subarray.xsize") or 0), int(m.get("subarray.ysize") or 0)) \
        == (1, 1, NCOLS, NROWS)


def read_clocks(ysize: int, xsize: int, rowclocks: int, nsamples: int) -> np.ndarray:
    """(ysize, xsize) int64: the clock at which each pixel of a frame is sampled, from the
    frame's first sample (the four columns of one sample share it)."""
    j = np.arange(int(ysize), dtype=np.int64)[:, None]
    k = (np.arange(int(xsize), dtype=np.int64) // NAMP)[None, :]
    return j * int(rowclocks) + k * int(nsamples)


def period_clocks(frequency_hz: float) -> float:
    """The EMI period in pixel clocks."""
    return 1.0 / (float(frequency_hz) * PIXEL_CLOCK_S)


def emi_frequencies(subarray_name: str, readpatt: str, detector: str) -> list[str]:
    """Names of the EMI frequencies that affect a subarray / pattern / detector (what the
    EMICORR reference's ``subarray_cases`` hold): full frame sees the 10 Hz line only (its frame
    time is in phase with 390 Hz), subarrays 390 Hz and 10 Hz, the LRS slitless window also
    218 Hz. SLOW reads see the detector's own 10 Hz waveform."""
    key = SUBARRAY_ALIASES.get(str(subarray_name).upper(), str(subarray_name).upper())
    p = pattern(readpatt)
    ten = "Hz10" if p.speed == "FAST" else f"Hz10_slow_{str(detector).upper()}"
    if key == "FULL":
        return [ten]
    out = ["Hz390", ten]
    if key == "SLITLESSPRISM":
        out.insert(1, "Hz218")
    return out


def emi_subarray_cases() -> dict:
    """The ``subarray_cases`` of an EMICORR reference, jwst's layout: per subarray name
    (``FULL_FAST``/``FULL_SLOW`` for full frame) its rowclocks, frameclocks and frequency names
    (``freqs.FAST`` a list, ``freqs.SLOW`` a list per detector)."""
    cases: dict = {}
    for name, sub in SUBARRAYS.items():
        if name == "FULL":
            continue
        cases[name] = {
            "rowclocks": sub.rowclocks, "frameclocks": frame_clocks(sub.ysize, sub.rowclocks),
            "freqs": {"FAST": emi_frequencies(name, "FAST", DETECTORS[0]),
                      "SLOW": {d: emi_frequencies(name, "SLOW", d) for d in DETECTORS}}}
    full = SUBARRAYS["FULL"]
    for speed, rc in (("FAST", full.rowclocks), ("SLOW", FULL_SLOW_ROWCLOCKS)):
        freqs: dict = {"SLOW": {d: emi_frequencies("FULL", "SLOW", d) for d in DETECTORS}}
        if speed == "FAST":
            freqs["FAST"] = emi_frequencies("FULL", "FAST", DETECTORS[0])
        cases[f"FULL_{speed}"] = {"rowclocks": rc, "frameclocks": frame_clocks(NROWS, rc),
                                  "freqs": freqs}
    return cases
