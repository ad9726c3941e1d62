"""msa_flagging for NIRSpec IFU exposures: a pure function msa_flagging 1.1 calls for NRS_IFU.

As jwst's MSAFlagOpenStep for NRS_IFU: every MSA shutter the msaoper reference lists as open
in ``state``, ``Internal state`` or ``TA state`` lets light through the closed MSA onto the
IFU's detector area; the pixels its dispersed light reaches (the IFU model's MSA-plane map,
``instruments.nirspec.ifu.failed_open_mask``, the same map the simulator lights) get
MSA_FAILED_OPEN. As jwst, the flag alone: the pixels are not made DO_NOT_USE.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms import ifu as I
from transforms.model import DataModel
from transforms.spec2._ifu_common import IfuStepError, need_ref

FAILED_OPEN = DQ.PIXEL["MSA_FAILED_OPEN"]
FLAGGABLE_STATES = ("Internal state", "TA state", "state")


def failed_open_shutters(ref: DataModel) -> list[tuple[int, int, int]]:
    rows = ref.get("msaoper")
    if isinstance(rows, str):
        rows = json.loads(rows)
    if not isinstance(rows, (list, tuple)):
        raise IfuStepError("msa_flagging: the msaoper reference has no 'msaoper' list")
    return [(int(r["Q"]), int(r["x"]), int(r["y"])) for r in rows
            if any(str(r.get(s, "")).lower() == "open" for s in FLAGGABLE_STATES)]


def msa_flagging_ifu(model: DataModel, refs: Mapping[str, DataModel], params: Any
                     ) -> DataModel:
    from transforms.instruments.nirspec import ifu as N

    if "dq" not in model.arrays:
        raise IfuStepError("msa_flagging: the exposure has no dq array")
    shutters = failed_open_shutters(need_ref(refs, "msaoper", "msa_flagging"))
    mask = N.failed_open_mask(I.wcs_params(model), shutters, model["dq"].shape)
    dq = np.where(mask, np.asarray(model["dq"]) | np.uint32(FAILED_OPEN),
                  np.asarray(model["dq"])).astype(np.uint32)
    return model.replace(arrays={"dq": dq}, meta={"cal_step.msa_flagging": "COMPLETE"})
