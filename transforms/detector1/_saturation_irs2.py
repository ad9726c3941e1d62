"""Saturation flagging of a NIRSpec IRS2 ramp, as jwst's irs2_flag_saturation does it.

Only the normal pixels are tested, against the (2048 x 2048) saturation reference; the
interleaved reference pixels and the reference output are never flagged. Per group: SATURATED
where the group reached the threshold, carried to every later group; AD_FLOOR | DO_NOT_USE where
it is <= 0 (that group only); saturation grown by ``n_pix_grow_sat`` (a box). With
``use_readpatt``, group 2 is flagged SATURATED (not DO_NOT_USE, and without the frame-averaged
"partial saturation" pass of traditional readouts) where group 3 saturated though group 1's
rate could not have, and group 2's jump from group 1 is larger than the room left over
``nframes``. The reference's DQ goes into the normal rows of pixeldq.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms.instruments.nirspec import detector as nrs
from transforms.model import DataModel

_SAT = np.uint8(DQ.SATURATED)
_FLOOR = np.uint8(DQ.AD_FLOOR | DQ.DO_NOT_USE)


def flag(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel], params: Any,
         meta: Mapping[str, Any], thresh: np.ndarray, sdq: np.ndarray, grow) -> None:
    """In place on the IRS2 ramp buffer; ``thresh``/``sdq`` as saturation.prepare_thresholds
    gives them for the 2048 x 2048 normal pixels, ``grow(plane, n)`` the box growth."""
    det = nrs.check_detector(str(meta.get("instrument.detector", "")))
    rows = nrs.layout_from_meta(meta).science_mask(det)
    data, gdq, pdq = arrays["data"], arrays["groupdq"], arrays["pixeldq"]
    nints, ngroups = data.shape[:2]
    nframes = int(meta.get("exposure.nframes") or 1)
    n = int(params.n_pix_grow_sat)
    bias = np.float32(0.0)
    if refs.get("superbias") is not None:
        b = np.asarray(refs["superbias"]["data"], np.float32)
        bias = b[rows] if b.shape[-2] == data.shape[-2] else b
    for i in range(nints):
        cum = np.zeros(thresh.shape, np.uint8)
        for g in range(ngroups):
            sci = data[i, g][rows]
            hit = np.where(sci >= thresh, _SAT, np.uint8(0))
            if g == 2 and params.use_readpatt:
                g0 = data[i, 0][rows]
                first = (g0 - bias) / np.float64(0.5 * (1 + nframes)) * (3 * nframes) + bias
                m = first < thresh
                m &= (data[i, 1][rows] - g0) > (thresh - g0) / np.float32(nframes)
                m &= (hit & _SAT) != 0
                two = np.where(m, _SAT, np.uint8(0))
                if n > 0:
                    grow(two, n)
                plane = gdq[i, 1]
                plane[rows] |= two
            if n > 0:
                grow(hit, n)
            cum |= hit
            plane = gdq[i, g]
            plane[rows] |= cum | np.where(sci <= 0, _FLOOR, np.uint8(0))
    zf = arrays.get("zeroframe")
    if zf is not None:
        for i in range(zf.shape[0]):
            z = zf[i][rows]
            zdq = np.where(z >= thresh, _SAT, np.uint8(0))
            if n > 0:
                grow(zdq, n)
            zdq |= np.where(z <= 0, _FLOOR, np.uint8(0))
            z[zdq != 0] = 0.0
            zf[i][rows] = z
    pdq[rows] |= sdq
