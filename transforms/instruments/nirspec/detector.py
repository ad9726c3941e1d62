"""The NIRSpec detectors NRS1 and NRS2: geometry, outputs, readout and the IRS2 layout.

One model for the steps (refpix, saturation, dq_init on IRS2 frames) and the simulator.

**Frames.** A NIRSpec file is in the *science* (DMS) frame: dispersion runs along +x on both
detectors, NRS1 holding the shorter wavelengths, NRS2 the longer ones to its right. The
*detector* frame is the one the SIDECAR reads: rows of 2048 pixels read along +x (the fast
axis), four outputs of 512 columns each, reference pixels 4 deep on every edge. The two
detectors are mounted rotated by 180 degrees relative to each other, so

- NRS1: science = detector transposed (FASTAXIS=2, SLOWAXIS=1): science (y, x) = detector (x, y);
- NRS2: science = detector transposed and rotated by 180 deg (FASTAXIS=-2, SLOWAXIS=-1):
  science (y, x) = detector (R-1-x, C-1-y) for a detector array of R rows and C columns.

These are the orientations jwst's refpix uses (irs2_subtract_reference). In the science frame
the outputs are therefore 512-*row* stripes, read along y (NRS2: along -y). On the focal plane
the science frames of the two detectors are side by side along x with a gap of
``FPA_GAP_PIXELS`` (modelled: 2.74 mm of 18 um pixels; not a SIAF value).

**Traditional readout** (NRSRAPID, NRS, NRSRAPIDD*): 10 us per pixel, 12 pixels of row
overhead per output; a frame of a window whose fast axis has ``nfast`` pixels over ``nout``
outputs and ``nslow`` rows takes ``(nfast/nout + 12) * (nslow + 1) * 10 us`` (10.73677 s for
full frame; 0.90156 s for SUB2048).

**IRS2 readout** (NRSIRS2RAPID, NRSIRS2; full frame only): in each output, after every
``n``=16 normal pixels the readout steps out to read ``r``=4 interleaved reference pixels, and a
fifth output (the *reference output*) is read alongside. A raw IRS2 frame in the detector frame
is 2048 rows x 3200 columns: columns 0-639 are the reference output, then 640 columns per output
(512 normal + 128 interleaved reference pixels); outputs 0 (refout), 2 and 4 are read right to
left. In time order each row of an output is 712 samples: 32 blocks of (16 normal + 1 jump +
4 reference + 1 jump) pixels and 8 pixels of new-row overhead (``IRS2Layout``); a frame takes
``(712 * 2048 + 714) * 10 us`` = 14.58889 s. In the science frame the IRS2 axis is y: an IRS2
uncal is (..., 3200, 2048) while SUBSIZE2 stays 2048. jwst's refpix removes the interleaved
pixels and the reference output, after which the ramp is (..., 2048, 2048).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

DETECTORS = ("NRS1", "NRS2")
FULL = 2048  # pixels on a side of the light-sensitive array + reference border
NREF = 4  # reference pixels on each edge
NAMP = 4  # science outputs
AMP_WIDTH = FULL // NAMP
PIXEL_TIME_S = 10e-6
ROW_OVERHEAD = 12  # pixels per row per output, traditional readout
FRAME_TIME_FULL = 10.73677  # s, traditional full frame (4 outputs)
FRAME_TIME_IRS2 = 14.58889  # s, IRS2 full frame
FPA_GAP_PIXELS = 152  # modelled gap between NRS1 and NRS2 along science x
AXES = {"NRS1": (2, 1), "NRS2": (-2, -1)}  # (FASTAXIS, SLOWAXIS)
IRS2_PATTERNS = ("NRSIRS2RAPID", "NRSIRS2")

# SUBSTRT2 of the fixed-slit / BOTS subarrays on NRS2 (the readout table holds NRS1's). Values
# for the G140/G235/G395H/PRISM set of ESA-JWST-SCI-NRS-TN-2018-002 (G395M shifts them a little).
SUBARRAY_YSTART_NRS2 = {
    "ALLSLITS": 895, "SUBS200A1": 930, "SUBS200A2": 966, "SUBS200B1": 1068, "SUBS400A1": 1006,
    "SUB2048": 1055, "SUB1024A": 1055, "SUB1024B": 1055, "SUB512": 1055, "SUB512S": 1063,
    "SUB32": 975,
}


def check_detector(detector: str) -> str:
    d = str(detector).upper()
    if d not in DETECTORS:
        raise ValueError(f"not a NIRSpec detector: {detector!r}; NIRSpec has {', '.join(DETECTORS)}")
    return d


def axes(detector: str) -> tuple[int, int]:
    """(FASTAXIS, SLOWAXIS) as the level-1b header gives them."""
    return AXES[check_detector(detector)]


def to_detector(a: np.ndarray, detector: str) -> np.ndarray:
    """The detector-frame view of a science-frame array (last two axes; no copy)."""
    t = np.swapaxes(a, -1, -2)
    return t[..., ::-1, ::-1] if check_detector(detector) == "NRS2" else t


def to_science(a: np.ndarray, detector: str) -> np.ndarray:
    """The science-frame view of a detector-frame array (last two axes; no copy)."""
    if check_detector(detector) == "NRS2":
        a = a[..., ::-1, ::-1]
    return np.swapaxes(a, -1, -2)


def detector_to_science_coords(row, col, det_shape: tuple[int, int], detector: str):
    """Science (y, x) of detector (row, col) in an array of detector shape (R, C)."""
    row, col = np.asarray(row), np.asarray(col)
    if check_detector(detector) == "NRS2":
        r, c = det_shape
        return c - 1 - col, r - 1 - row
    return col, row


def fpa_origin(detector: str) -> tuple[int, int]:
    """Science-frame (x, y) offset of a detector's pixel (0, 0) in the NRS1+NRS2 mosaic."""
    return (0, 0) if check_detector(detector) == "NRS1" else (FULL + FPA_GAP_PIXELS, 0)


def output_of_science_row(y, detector: str) -> np.ndarray:
    """Output (0-3) that reads full-frame science row ``y`` (outputs are row stripes)."""
    d = check_detector(detector)
    y = np.asarray(y)
    det_col = y if d == "NRS1" else FULL - 1 - y
    return det_col // AMP_WIDTH


def frame_time(nfast: int, nslow: int, noutputs: int) -> float:
    """Traditional-readout frame time (s) of a window (fast-axis and slow-axis lengths)."""
    if (nfast, nslow, noutputs) == (FULL, FULL, NAMP):
        return FRAME_TIME_FULL
    return (nfast / noutputs + ROW_OVERHEAD) * (nslow + 1) * PIXEL_TIME_S


def is_irs2_pattern(readpatt: str | None) -> bool:
    return str(readpatt or "").upper() in IRS2_PATTERNS


def is_irs2_shape(shape) -> bool:
    """Whether an array is in the raw IRS2 format (jwst's pipe_utils.is_irs2 test)."""
    return max(int(shape[-1]), int(shape[-2])) > FULL


# --------------------------------------------------------------------------------------------
# IRS2
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class IRS2Layout:
    """Where each pixel of one IRS2 output sits in the detector row and in time.

    Layout positions ``j`` (0..639) count along an output in readout order (a reversed output
    is flipped first). Normal pixels sit at ``hnorm`` and are read at time slots ``hnorm1``;
    interleaved reference pixels at ``href``, read at ``href1`` (slots within a row of
    ``row`` = 712 samples; the other slots are jumps and the new-row overhead)."""

    n: int = 16  # NRS_NORM
    r: int = 4  # NRS_REF
    pad: int = 8  # new-row overhead in pixel times

    @property
    def row(self) -> int:
        return (self.n + self.r + 2) * AMP_WIDTH // self.n + self.pad

    @property
    def width(self) -> int:
        """Columns of one output in the raw frame (640)."""
        return AMP_WIDTH + AMP_WIDTH // self.n * self.r

    @property
    def nx(self) -> int:
        """Columns of the raw frame in the detector frame (3200)."""
        return 5 * self.width

    @property
    def hnorm(self) -> np.ndarray:
        i = np.arange(AMP_WIDTH)
        return i + self.r * ((i + self.n // 2) // self.n)

    @property
    def hnorm1(self) -> np.ndarray:
        i = np.arange(AMP_WIDTH)
        return i + (self.r + 2) * ((i + self.n // 2) // self.n)

    @property
    def href(self) -> np.ndarray:
        i = np.arange(AMP_WIDTH // self.n * self.r)
        return i + self.n * (i // self.r) + self.n // 2

    @property
    def href1(self) -> np.ndarray:
        i = np.arange(AMP_WIDTH // self.n * self.r)
        return i + (self.n + 2) * (i // self.r) + self.n // 2 + 1

    @property
    def slot(self) -> np.ndarray:
        """Time slot of each layout position of an output (640 ints)."""
        s = np.empty(self.width, np.int64)
        s[self.hnorm] = self.hnorm1
        s[self.href] = self.href1
        return s

    def sector_is_reversed(self, k: int) -> bool:
        """Outputs 0 (reference output), 2 and 4 are read right to left."""
        return k % 2 == 0

    def mask(self) -> np.ndarray:
        """(3200,) bool over detector-frame columns: True for a normal pixel (jwst's
        make_irs2_mask); the reference output and interleaved reference pixels are False."""
        return _mask(self.n, self.r)

    def interleaved(self) -> np.ndarray:
        """(3200,) bool: True for the interleaved reference columns of outputs 1-4."""
        m = ~self.mask()
        m[: self.width] = False
        return m

    def science_mask(self, detector: str) -> np.ndarray:
        """The mask over science-frame rows (the IRS2 axis): reversed for NRS2."""
        m = self.mask()
        return m[::-1].copy() if check_detector(detector) == "NRS2" else m


@lru_cache(maxsize=8)
def _mask(n: int, r: int) -> np.ndarray:
    lay = IRS2Layout(n, r)
    m = np.ones(lay.nx, dtype=bool)
    m[: lay.width] = False
    block = np.ones(lay.width, dtype=bool)
    block[lay.href] = False
    for k in range(1, 5):
        m[k * lay.width:(k + 1) * lay.width] = block[::-1] if lay.sector_is_reversed(k) else block
    m.flags.writeable = False
    return m


def layout_from_meta(meta) -> IRS2Layout:
    """The layout of an exposure (NRS_NORM/NRS_REF, jwst's defaults 16/4 when absent)."""
    n = meta.get("exposure.nrs_normal") or 16
    r = meta.get("exposure.nrs_reference") or 4
    return IRS2Layout(int(n), int(r))


def from_irs2(a: np.ndarray, detector: str, layout: IRS2Layout = IRS2Layout()) -> np.ndarray:
    """The normal pixels of a science-frame IRS2 array (..., 3200, nx) -> (..., 2048, nx)."""
    return a[..., layout.science_mask(detector), :]


def to_irs2(dst: np.ndarray, normal: np.ndarray, detector: str,
            layout: IRS2Layout = IRS2Layout()) -> None:
    """Write normal pixels back into a science-frame IRS2 array in place."""
    dst[..., layout.science_mask(detector), :] = normal
