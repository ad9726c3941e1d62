"""Small simulated MIRI exposures with their references and truth, and the detector1 plan
with MIRI's reference-pixel correction (until refpix 1.1 dispatches MIRI to it)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from transforms.detector1 import default_plan, refpix_miri
from transforms.detector1 import run as run_chain
from transforms.detector1.refpix import RefPixParams
from transforms.model import DataModel
from transforms.registry import PlannedStep, StepSpec
from transforms.sim import miri as sm
from transforms.sim import readout as ro
from transforms.sim import references as rf
from transforms.sim.detector import Effects

UA = "2022-01-01T00:00:00"

# A temporary refpix version whose in-place kernel is MIRI's (refpix 1.1 will dispatch to it).
MIRI_REFPIX = StepSpec(
    "refpix", "miri-test", "detector1", RefPixParams, (),
    lambda model, refs, params: refpix_miri.apply_miri(model, params), "S_REFPIX",
    inplace=lambda arrays, refs, params, meta: refpix_miri.correct_miri(arrays, params, meta))


@dataclass(frozen=True)
class MiriExposure:
    uncal: DataModel
    refs: dict[str, DataModel]
    truth: Any  # RampTruth
    props: rf.DetectorProps

    @property
    def light_rate_dn(self) -> np.ndarray:
        return self.truth.light_rate_dn


def window(name: str = "SLITLESSPRISM", ysize: int | None = 64):
    """A named MIRI subarray, optionally cut to its first ``ysize`` rows (kept small)."""
    sub = ro.subarray("MIRI", name)
    return replace(sub, ysize=ysize) if ysize and name != "FULL" else sub


def exposure(miri: sm.MiriEffects = sm.MiriEffects(), effects: Effects = Effects(
        cosmic_rays=False), sub=None, ngroups: int = 10, nints: int = 2, seed: int = 3,
        readpatt: str = "FAST", rate_e: np.ndarray | None = None) -> MiriExposure:
    """A MIRIMAGE exposure of ``sub`` (default: 64 rows of SLITLESSPRISM) with its references."""
    sub = sub or window()
    tim = ro.timing("MIRI", readpatt, sub, ngroups, nints)
    props = rf.detector_properties("MIRIMAGE", seed, sub)
    if rate_e is None:
        rng = np.random.default_rng(seed + 1)
        rate_e = rng.lognormal(np.log(300.0), 1.0, (sub.ysize, sub.xsize))
    data, truth = sm.synthesize(np.asarray(rate_e, float), props, sub, tim,
                                np.random.default_rng(seed), effects, miri,
                                readpatt=readpatt, seed=seed)
    meta = {
        "instrument.name": "MIRI", "instrument.detector": "MIRIMAGE", "exposure.type": "MIR_IMAGE",
        "exposure.readpatt": readpatt, "exposure.nframes": 1, "exposure.groupgap": 0,
        "exposure.ngroups": ngroups, "exposure.nints": nints, "exposure.frame_time": tim.tframe,
        "exposure.group_time": tim.tgroup, "exposure.frame_divisor": 1,
        "subarray.name": sub.name, "subarray.xstart": sub.xstart, "subarray.ystart": sub.ystart,
        "subarray.xsize": sub.xsize, "subarray.ysize": sub.ysize, "subarray.fastaxis": 1,
        "subarray.slowaxis": 2, **sm.exposure_extras(readpatt)}
    uncal = DataModel("uncal", {"data": data}, meta)
    refs = {
        "mask": rf.mask_ref(props, UA), "saturation": rf.saturation_ref(props, UA),
        "linearity": rf.linearity_ref(props, UA), "gain": rf.gain_ref(props, UA),
        "readnoise": rf.readnoise_ref(props, UA),
        "dark": sm.dark_ref(props, UA, tim, readpatt, ngroups, seed, miri),
        "reset": sm.reset_ref(props, UA, readpatt, ngroups, seed, miri),
        "rscd": sm.rscd_ref(UA), "emicorr": sm.emicorr_ref(UA),
    }
    return MiriExposure(uncal, refs, truth, props)


def plan(e: MiriExposure, skip: dict[str, bool] | None = None, miri_refpix: bool = True,
         overrides: dict | None = None) -> list[PlannedStep]:
    """jwst 3.0's MIRI detector1 plan (its skip defaults unless ``skip`` says otherwise)."""
    p = default_plan(e.refs, overrides=overrides, skip=skip, meta=e.uncal.meta)
    if miri_refpix:
        p = [PlannedStep(MIRI_REFPIX, RefPixParams(), s.skip, {}) if s.name == "refpix" else s
             for s in p]
    return p


def rate_vs_truth(e: MiriExposure, plan_: list[PlannedStep], bright_percentile: float = 90.0
                  ) -> dict[str, float]:
    """Run the chain; median relative error on bright pixels, median error, pull statistics."""
    rate = run_chain(e.uncal, plan_)["rate"]
    truth = e.light_rate_dn
    good = ((rate["dq"] & 1) == 0) & ~e.props.refpix
    bright = good & (truth > np.percentile(truth[good], bright_percentile))
    err = (rate["data"] - truth).astype(np.float64)
    pull = (err / rate["err"])[good]
    return {"rel_bright": float(np.median(err[bright] / truth[bright])),
            "median_err": float(np.median(err[good])), "pull_median": float(np.median(pull)),
            "pull_std": float(np.std(pull)), "good": float(good.mean()), "rate": rate}
