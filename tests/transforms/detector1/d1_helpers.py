"""Small exposures for the detector1 tests: simulator-made (with truth) and hand-made."""

from __future__ import annotations

import numpy as np

from transforms import dq as DQ
from transforms.model import DataModel

try:  # the simulator, written alongside detector1
    from transforms.sim import readout as sim_readout
    from transforms.sim import references as sim_refs
    from transforms.sim.detector import Effects, synthesize
    HAVE_SIM = True
except ImportError:  # pragma: no cover - only before the simulator exists
    HAVE_SIM = False

USEAFTER = "2022-01-01T00:00:00"


def exposure_meta(sub, tim, instrument="NIRCAM", detector="NRCA1", readpatt="RAPID") -> dict:
    """The uncal metadata the detector1 steps read."""
    return {
        "instrument.name": instrument, "instrument.detector": detector,
        "exposure.readpatt": readpatt, "exposure.nframes": tim.nframes,
        "exposure.groupgap": tim.groupgap, "exposure.ngroups": tim.ngroups,
        "exposure.nints": tim.nints, "exposure.frame_time": tim.tframe,
        "exposure.group_time": tim.tgroup, "exposure.frame_divisor": tim.nframes,
        "subarray.name": sub.name, "subarray.xstart": sub.xstart, "subarray.ystart": sub.ystart,
        "subarray.xsize": sub.xsize, "subarray.ysize": sub.ysize, "subarray.fastaxis": -1,
        "subarray.slowaxis": 2, "exposure.noutputs": sub.noutputs,
    }


def sim_exposure(sub=None, readpatt="RAPID", ngroups=5, nints=1, seed=7, effects=None,
                 rate_e=None, detector="NRCA1", full_refs=False):
    """(uncal, refs, truth, props) of a simulated NIRCam window; refs cover the window unless
    ``full_refs`` (then they are full-frame and the steps must cut them)."""
    sub = sub or sim_readout.subarray("NIRCAM", "SUB64P")
    tim = sim_readout.timing("NIRCAM", readpatt, sub, ngroups, nints)
    props = sim_refs.detector_properties(detector, seed, sub)
    if rate_e is None:
        rate_e = np.full((sub.ysize, sub.xsize), 5.0)
    rng = np.random.default_rng(seed)
    data, truth = synthesize(np.asarray(rate_e, float), props, sub, tim, rng,
                             effects or Effects.noiseless())
    uncal = DataModel("uncal", {"data": data}, exposure_meta(sub, tim, readpatt=readpatt))
    rprops = sim_refs.detector_properties(detector, seed) if full_refs else props
    nframes_dark = tim.nframes_per_integration + 5
    refs = {
        "mask": sim_refs.mask_ref(rprops, USEAFTER),
        "saturation": sim_refs.saturation_ref(rprops, USEAFTER),
        "superbias": sim_refs.superbias_ref(rprops, USEAFTER),
        "linearity": sim_refs.linearity_ref(rprops, USEAFTER),
        "dark": sim_refs.dark_ref(rprops, USEAFTER, tim.tframe, nframes_dark, "NRC_IMAGE"),
        "gain": sim_refs.gain_ref(rprops, USEAFTER),
        "readnoise": sim_refs.readnoise_ref(rprops, USEAFTER),
        "flat": sim_refs.flat_ref(rprops, USEAFTER, "F200W", "CLEAR"),
    }
    if sim_refs.ipc_kernel(detector) is not None:  # undoes the simulator's IPC
        refs["ipc"] = sim_refs.ipc_ref(rprops, USEAFTER)
    return uncal, refs, truth, props, tim


def ramp(data, groupdq=None, pixeldq=None, **meta) -> DataModel:
    """A hand-made ramp product around a float data cube."""
    data = np.asarray(data, np.float32)
    nints, ngroups, ny, nx = data.shape
    gdq = np.zeros(data.shape, np.uint8) if groupdq is None else np.asarray(groupdq, np.uint8)
    pdq = np.zeros((ny, nx), np.uint32) if pixeldq is None else np.asarray(pixeldq, np.uint32)
    m = {"exposure.nframes": 1, "exposure.groupgap": 0, "exposure.ngroups": ngroups,
         "exposure.nints": nints, "exposure.frame_time": 10.0, "exposure.group_time": 10.0,
         "subarray.xstart": 1, "subarray.ystart": 1, "subarray.xsize": nx,
         "subarray.ysize": ny, "instrument.name": "NIRCAM", "instrument.detector": "NRCA1"}
    m.update(meta)
    return DataModel("ramp", {"data": data, "groupdq": gdq, "pixeldq": pdq}, m)


def ref(reftype: str, **arrays) -> DataModel:
    return DataModel(f"ref.{reftype}", {k: np.asarray(v) for k, v in arrays.items()},
                     {"reftype": reftype})


def snapshot(model: DataModel) -> dict[str, np.ndarray]:
    """Copies of a model's arrays, to prove later that it was not mutated."""
    return {k: np.array(v, copy=True) for k, v in model.arrays.items()}


def same(model: DataModel, snap: dict[str, np.ndarray]) -> bool:
    return set(model.arrays) == set(snap) and all(
        np.array_equal(model[k], v, equal_nan=True) for k, v in snap.items())


SAT = DQ.SATURATED
DNU = DQ.DO_NOT_USE
