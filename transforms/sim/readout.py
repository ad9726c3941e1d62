"""Readout patterns, subarrays and exposure timing of the NIRCam, NIRISS, NIRSpec and MIRI
detectors.

The numbers are JWST's: a pattern averages ``nframes`` frames into each group and drops
``groupgap`` frames between groups. A frame takes ``tframe = (xsize/namps + 12) * (ysize + 1) *
10 us`` (10 us per pixel, 12 overhead pixels per row per output, one extra row); for full frame
(4 outputs) that is 10.73676 s. ``tgroup = (nframes + groupgap) * tframe``. NIRSpec reads along y
(the formula takes ysize as the fast length) and its IRS2 patterns take 14.58889 s per full frame
(transforms/instruments/nirspec/detector.py). MIRI (1032x1024,
4 interleaved outputs, single-frame groups) takes its frame times from its row clocks
(transforms/instruments/miri/detector.py): 2.77504 s for full frame FAST.
"""

from __future__ import annotations

from dataclasses import dataclass

from transforms.instruments.miri import detector as _miri

PIXEL_TIME_S = 10e-6
ROW_OVERHEAD_PIXELS = 12
FULL_SIZE = 2048
REF_BORDER = 4
NRS_IRS2_FRAME_TIME = 14.58889  # s (instruments.nirspec.detector.FRAME_TIME_IRS2)


class ReadoutError(ValueError):
    """An unknown readout pattern or subarray, or an impossible exposure timing."""


@dataclass(frozen=True)
class ReadPattern:
    """A readout pattern: frames averaged per group and frames dropped between groups."""

    name: str
    nframes: int
    groupgap: int
    max_ngroups: int


@dataclass(frozen=True)
class Subarray:
    """A detector window, 1-based origin as SUBSTRT1/2, with its number of outputs."""

    name: str
    xstart: int
    ystart: int
    xsize: int
    ysize: int
    noutputs: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """(rows, columns) of this window in 0-based full-frame coordinates."""
        return (slice(self.ystart - 1, self.ystart - 1 + self.ysize),
                slice(self.xstart - 1, self.xstart - 1 + self.xsize))


@dataclass(frozen=True)
class Timing:
    """The timing of one exposure (seconds)."""

    tframe: float
    tgroup: float
    nframes: int
    groupgap: int
    ngroups: int
    nints: int

    @property
    def integration_time(self) -> float:
        """EFFINTTM as JWST defines it: ngroups * tgroup - groupgap * tframe."""
        return self.ngroups * self.tgroup - self.groupgap * self.tframe

    @property
    def exposure_time(self) -> float:
        """EFFEXPTM: time from the first to the last group mean, summed over integrations."""
        return (self.ngroups - 1) * self.tgroup * self.nints

    @property
    def duration(self) -> float:
        """Total time including one reset frame per integration."""
        return (self.integration_time + self.tframe) * self.nints

    def frame_of_group(self, g: int) -> int:
        """0-based index of the first frame of group ``g`` within its integration."""
        return g * (self.nframes + self.groupgap)

    @property
    def nframes_per_integration(self) -> int:
        """Frames read in one integration (the trailing gap is not read)."""
        return self.ngroups * (self.nframes + self.groupgap) - self.groupgap

    def group_mean_time(self, g: int) -> float:
        """Mean exposure time (s after reset) of the frames averaged into group ``g``."""
        return self.tframe * (self.frame_of_group(g) + (self.nframes + 1) / 2.0)


_NIRCAM_PATTERNS = {
    "RAPID": (1, 0, 10), "BRIGHT1": (1, 1, 10), "BRIGHT2": (2, 0, 10), "SHALLOW2": (2, 3, 10),
    "SHALLOW4": (4, 1, 10), "MEDIUM2": (2, 8, 10), "MEDIUM8": (8, 2, 10), "DEEP2": (2, 18, 20),
    "DEEP8": (8, 12, 20),
}
_NIRISS_PATTERNS = {"NISRAPID": (1, 0, 200), "NIS": (4, 0, 50)}
_NIRSPEC_PATTERNS = {"NRSRAPID": (1, 0, 100), "NRSRAPIDD1": (1, 1, 100), "NRSRAPIDD2": (1, 2, 100),
                     "NRSRAPIDD6": (1, 6, 100), "NRS": (4, 0, 100), "NRSIRS2RAPID": (1, 0, 200),
                     "NRSIRS2": (5, 0, 50)}

PATTERNS: dict[str, dict[str, ReadPattern]] = {
    "NIRCAM": {k: ReadPattern(k, *v) for k, v in _NIRCAM_PATTERNS.items()},
    "NIRISS": {k: ReadPattern(k, *v) for k, v in _NIRISS_PATTERNS.items()},
    "NIRSPEC": {k: ReadPattern(k, *v) for k, v in _NIRSPEC_PATTERNS.items()},
    "MIRI": {k: ReadPattern(k, 1, 0, 1000) for k in _miri.PATTERNS},  # one frame per group
}

# Imaging subarrays, sized and placed like JWST's (NIRCam SUBnnnP sit at the corner with the
# reference border; NIRISS SUBnnn at the top-left corner as in the SIAF).
SUBARRAYS: dict[str, dict[str, Subarray]] = {
    "NIRCAM": {
        "FULL": Subarray("FULL", 1, 1, 2048, 2048, 4),
        "SUB64P": Subarray("SUB64P", 1, 1, 64, 64, 1),
        "SUB160P": Subarray("SUB160P", 1, 1, 160, 160, 1),
        "SUB400P": Subarray("SUB400P", 1, 1, 400, 400, 1),
        "SUB160": Subarray("SUB160", 1, 1, 160, 160, 1),
        "SUB320": Subarray("SUB320", 1, 1, 320, 320, 1),
        "SUB640": Subarray("SUB640", 1, 1, 640, 640, 1),
    },
    "NIRISS": {
        "FULL": Subarray("FULL", 1, 1, 2048, 2048, 4),
        "SUB64": Subarray("SUB64", 1, 1985, 64, 64, 1),
        "SUB128": Subarray("SUB128", 1, 1921, 128, 128, 1),
        "SUB256": Subarray("SUB256", 1, 1793, 256, 256, 1),
    },
    # NIRSpec (science frame, NRS1's SUBSTRT2; NRS2's: instruments.nirspec.detector). Windows
    # span x (dispersion); the fast axis is y. SUBS1600A1 is not a SUBARRAY value: S1600A1 is
    # read with SUB2048/SUB1024A/B/SUB512 (BOTS) windows.
    "NIRSPEC": {n: Subarray(n, x0, y0, xs, ys, 4 if n == "FULL" else 1) for n, (x0, y0, xs, ys) in {
        "FULL": (1, 1, 2048, 2048), "ALLSLITS": (1, 897, 2048, 256),
        "SUBS200A1": (1, 1054, 2048, 64), "SUBS200A2": (1, 1018, 2048, 64),
        "SUBS200B1": (1, 918, 2048, 64), "SUBS400A1": (1, 978, 2048, 64),
        "SUB2048": (1, 963, 2048, 32), "SUB1024A": (1, 963, 1024, 32),
        "SUB1024B": (1025, 963, 1024, 32), "SUB512": (1025, 963, 512, 32),
        "SUB512S": (1025, 971, 512, 16), "SUB32": (1399, 975, 32, 32)}.items()},
    "MIRI": {n: Subarray(n, m.xstart, m.ystart, m.xsize, m.ysize, 4)  # interleaved outputs
             for n, m in _miri.SUBARRAYS.items()},
}

# Full-frame frame times as the instrument teams quote them.
_FULL_FRAME_TIME = {"NIRCAM": 10.73676, "NIRISS": 10.7368, "NIRSPEC": 10.73677}


def _instrument(instrument: str) -> str:
    key = instrument.upper()
    if key not in PATTERNS:
        raise ReadoutError(f"unknown instrument {instrument!r}; the simulator knows "
                           f"{', '.join(PATTERNS)}")
    return key


def pattern(instrument: str, name: str) -> ReadPattern:
    """The readout pattern ``name`` of ``instrument`` (e.g. NIRCAM MEDIUM8)."""
    inst = _instrument(instrument)
    try:
        return PATTERNS[inst][name.upper()]
    except KeyError:
        raise ReadoutError(f"unknown {inst} readout pattern {name!r}; known: "
                           f"{', '.join(PATTERNS[inst])}") from None


def subarray(instrument: str, name: str) -> Subarray:
    """A named subarray of ``instrument`` (FULL, SUB64P, SUB160, SUB64, ...)."""
    inst = _instrument(instrument)
    try:
        return SUBARRAYS[inst][name.upper()]
    except KeyError:
        raise ReadoutError(f"unknown {inst} subarray {name!r}; known: "
                           f"{', '.join(SUBARRAYS[inst])}") from None


def custom_subarray(xstart: int, ystart: int, xsize: int, ysize: int,
                    noutputs: int = 1, name: str = "GENERIC") -> Subarray:
    """A window on the 2048x2048 detector, validated (1-based origin)."""
    if xsize < 1 or ysize < 1:
        raise ReadoutError(f"subarray size must be positive, got {xsize}x{ysize}")
    if xstart < 1 or ystart < 1 or xstart + xsize - 1 > FULL_SIZE or ystart + ysize - 1 > FULL_SIZE:
        raise ReadoutError(f"subarray {xsize}x{ysize} at ({xstart},{ystart}) does not fit the "
                           f"{FULL_SIZE}x{FULL_SIZE} detector")
    if noutputs not in (1, 4) or (noutputs == 4 and xsize % 4):
        raise ReadoutError(f"noutputs must be 1, or 4 with xsize divisible by 4; got {noutputs}")
    return Subarray(name, int(xstart), int(ystart), int(xsize), int(ysize), int(noutputs))


def frame_time(instrument: str, sub: Subarray) -> float:
    """TFRAME (s) of one frame read of ``sub`` through its outputs."""
    inst = _instrument(instrument)
    if inst == "MIRI":  # FAST; timing() gives SLOW its own
        return _miri.frame_time(sub.name, sub.xsize, sub.ysize, "FAST")
    if sub.xsize == FULL_SIZE and sub.ysize == FULL_SIZE and sub.noutputs == 4:
        return _FULL_FRAME_TIME[inst]
    if inst == "NIRSPEC":  # fast axis along y
        return ((sub.ysize / sub.noutputs + ROW_OVERHEAD_PIXELS) * (sub.xsize + 1) * PIXEL_TIME_S)
    return ((sub.xsize / sub.noutputs + ROW_OVERHEAD_PIXELS) * (sub.ysize + 1) * PIXEL_TIME_S)


def timing(instrument: str, readpatt: str, sub: Subarray, ngroups: int, nints: int) -> Timing:
    """The timing of an exposure; refuses group counts the pattern does not allow."""
    p = pattern(instrument, readpatt)
    if not 1 <= ngroups <= p.max_ngroups:
        raise ReadoutError(f"{readpatt} allows 1..{p.max_ngroups} groups, got {ngroups}")
    if nints < 1:
        raise ReadoutError(f"nints must be >= 1, got {nints}")
    tf = frame_time(instrument, sub)
    if p.name.startswith("NRSIRS2"):  # IRS2: full frame only, its own frame time
        if (sub.xsize, sub.ysize) != (FULL_SIZE, FULL_SIZE):
            raise ReadoutError(f"{readpatt} reads full frame only, not {sub.name}")
        tf = NRS_IRS2_FRAME_TIME
    if _instrument(instrument) == "MIRI":
        tf = _miri.frame_time(sub.name, sub.xsize, sub.ysize, p.name)
    return Timing(tf, (p.nframes + p.groupgap) * tf, p.nframes, p.groupgap, int(ngroups),
                  int(nints))


def amplifier_columns(sub: Subarray) -> list[tuple[int, int]]:
    """Column ranges (0-based, within the window) read by each output, in output order
    (contiguous stripes: MIRI's interleaved outputs are ``instruments.miri.detector.amplifiers``)."""
    if sub.noutputs == 1:
        return [(0, sub.xsize)]
    w = sub.xsize // sub.noutputs
    return [(i * w, (i + 1) * w) for i in range(sub.noutputs)]
