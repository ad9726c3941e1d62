"""persistence: flag the groups that fall in a persistence window (jwst 3.0 semantics).

jwst 3.0 replaced the trap-model persistence *correction* (trapsfilled, trapdensity, trappars
and persat references) with *flagging*, skipped by default in Detector1Pipeline, with no
reference files. When run:

- ``persistence_time`` (s) is the length of a window; without it (None, the default) or with
  a value <= 0 the step does nothing and records ``FAILED``;
- a pixel's window opens at the first SATURATED group of each integration (and, with
  ``dn_threshold``, at any group whose data exceed it and that is not already in a window) and
  ends ``persistence_time`` seconds later; windows run across integrations (and, with a carried
  state, across exposures); every group inside an open window gets PERSISTENCE (and DO_NOT_USE
  with ``persistence_dnu``);
- group times: the integration's start (INT_TIMES ``int_start_MJD_UTC`` when the product has
  that table, else the exposure start plus ``i * integration_time``), plus ``group_time`` per
  group, in Unix-epoch seconds, float64 as jwst computes them (equal flags, tested).

The state carried between exposures (jwst: ``persistence_array_file`` in, ``save_persistence``
out, an ASDF file of window end times per detector) is, in calops, a pure value:
``flag_persistence(..., state=previous)`` returns the new per-pixel window-end array. A step is a
function of its inputs, so carrying it through a pipeline run would make the previous exposure's
state (a product, like the exposure's own inputs) an input of the next exposure's recipe, in
time order per detector; the runner does not do that (it would serialise a detector's
exposures). The registered step therefore always starts from no open windows, which is jwst's
behaviour without ``persistence_array_file`` (the only one its pipeline runs by default), and
refuses the two file parameters with a message saying so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit, prange

from transforms import dq as DQ
from transforms.detector1._subarray import check_ramp
from transforms.model import DataModel
from transforms.registry import register

NAME = "persistence"
VERSION = "1.0"
MJD_UNIX = 40587.0  # MJD of 1970-01-01


@dataclass(frozen=True)
class PersistenceParams:
    """jwst 3.0's persistence parameters and defaults (the step is skipped by default)."""

    save_persistence: str | None = None
    persistence_time: int | None = None
    dn_threshold: float | None = None
    persistence_array_file: str | None = None
    persistence_dnu: bool = False

    def __post_init__(self) -> None:
        if self.save_persistence is not None or self.persistence_array_file is not None:
            raise ValueError(
                "persistence: save_persistence / persistence_array_file name files and "
                "transforms read and write none; the window state is the value "
                "transforms.detector1.persistence.flag_persistence takes and returns")


def mjd_to_epoch(mjd: float) -> float:
    """Unix-epoch seconds of an MJD (jwst's ``mjd_to_epoch``)."""
    return (mjd - MJD_UNIX) * 86400.0


@njit(nogil=True, cache=True, parallel=True)
def _flag(data, gdq, state, starts, group_time, ptime, use_thr, thr, flag):
    nints, ngroups, ny, nx = gdq.shape
    sat = np.uint8(DQ.SATURATED)
    for y in prange(ny):
        for x in range(nx):
            pa = state[y, x]
            for i in range(nints):
                t = starts[i]
                nsat = 0
                for g in range(ngroups):
                    t = t + group_time
                    if pa < t:
                        pa = 0.0
                    wend = t + ptime
                    if gdq[i, g, y, x] & sat:
                        nsat += 1
                    if nsat == 1:
                        pa = wend
                    if use_thr and data[i, g, y, x] > thr and not (pa > 0.0):
                        pa = wend
                    if pa != 0.0 and pa - wend > 0.0:  # jwst: no backwards windows
                        pa = 0.0
                    if pa > 0.0:
                        gdq[i, g, y, x] |= flag
            state[y, x] = pa


def integration_starts(meta: Mapping[str, Any], nints: int,
                       int_start_mjd: np.ndarray | None = None) -> np.ndarray:
    """Epoch seconds at which each integration starts, as jwst takes them: INT_TIMES'
    ``int_start_MJD_UTC`` where the table has the integration, else the exposure start plus
    ``i * integration_time``."""
    out = np.empty(nints)
    n_tab = 0 if int_start_mjd is None else len(int_start_mjd)
    t0 = None
    for i in range(nints):
        if i < n_tab:
            out[i] = mjd_to_epoch(float(int_start_mjd[i]))
            continue
        if t0 is None:
            start = meta.get("exposure.start_time")
            itime = meta.get("exposure.integration_time")
            if start is None or itime is None:
                raise KeyError("persistence: the ramp needs exposure.start_time and "
                               "exposure.integration_time (or an INT_TIMES table)")
            t0, itime = mjd_to_epoch(float(start)), float(itime)
        out[i] = t0 + i * itime
    return out


def flag_persistence(data: np.ndarray, groupdq: np.ndarray, meta: Mapping[str, Any],
                     params: PersistenceParams, state: np.ndarray | None = None,
                     int_start_mjd: np.ndarray | None = None) -> tuple[str, np.ndarray | None]:
    """Flag ``groupdq`` in place; returns (status, the window-end state after the exposure).

    ``state`` (float64 epoch seconds per pixel, 0 = no window) is the previous exposure's
    returned state, or None (no open windows). The inputs other than ``groupdq`` are not
    modified."""
    ptime = params.persistence_time
    if ptime is None or ptime <= 0:
        return "FAILED", None
    nints, ngroups, ny, nx = groupdq.shape
    if data.shape != groupdq.shape:
        raise ValueError(f"persistence: data {data.shape} and groupdq {groupdq.shape} differ")
    gt = meta.get("exposure.group_time")
    if gt is None:
        raise KeyError("persistence: the ramp needs exposure.group_time")
    st = np.zeros((ny, nx)) if state is None else np.array(state, np.float64, copy=True)
    if st.shape != (ny, nx):
        raise ValueError(f"persistence: state {st.shape} does not match the image {(ny, nx)}")
    starts = integration_starts(meta, nints, int_start_mjd)
    flag = DQ.PERSISTENCE | (DQ.DO_NOT_USE if params.persistence_dnu else 0)
    use_thr = params.dn_threshold is not None
    d = np.ascontiguousarray(data, dtype=np.float32)
    _flag(d, groupdq, st, starts, float(gt), float(ptime), use_thr,
          float(params.dn_threshold) if use_thr else 0.0, np.uint8(flag))
    return "COMPLETE", st


def apply_inplace(arrays: dict[str, np.ndarray], refs: Mapping[str, DataModel],
                  params: PersistenceParams, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Flag persistence windows in ``arrays['groupdq']``, starting from no open windows."""
    status, _ = flag_persistence(arrays["data"], arrays["groupdq"], meta, params,
                                 int_start_mjd=arrays.get("int_times.int_start_MJD_UTC"))
    return {f"cal_step.{NAME}": status}


@register(NAME, VERSION, "detector1", PersistenceParams, (), keyword="S_PERSIS",
          inplace=apply_inplace, skip_by_default=True)
def apply(model: DataModel, refs: Mapping[str, DataModel], params: PersistenceParams
          ) -> DataModel:
    """Flag groups inside persistence windows (PERSISTENCE); FAILED without persistence_time."""
    check_ramp(model, NAME)
    gdq = np.array(model["groupdq"], dtype=np.uint8, copy=True)
    status, _ = flag_persistence(model["data"], gdq, model.meta, params,
                                 int_start_mjd=model.arrays.get("int_times.int_start_MJD_UTC"))
    meta = {f"cal_step.{NAME}": status}
    if status != "COMPLETE":
        return model.replace(meta=meta)
    return model.replace(arrays={"groupdq": gdq}, meta=meta)
