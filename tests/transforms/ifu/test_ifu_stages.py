"""The IFU chains through the stages' ``run`` (what flows call): spec2 on an MRS rate with the
default plan gives cal, s3d and x1d equal to the steps applied by hand; spec3 on two dithers
and a background exposure subtracts the master background, drops the background member, builds
one cube per channel and runs spectral_leak; the level-3 association groups them the same way.
Noiseless, artefact-free exposures (``MrsEffects.none``) keep it to seconds."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

from transforms import plans
from transforms.associations_spec import ifu_associations
from transforms.registry import PlannedStep
from transforms.sim import ifu_mrs as SM
from transforms.sim import ifu_scene as SC

EFF = SM.MrsEffects.none()


@functools.cache
def _refs():
    return SM.mrs_references("MIRIFUSHORT", "SHORT", 0, EFF)


def _rate(**kw):
    spec = SM.MrsExposureSpec(**kw)
    return SM.simulate_rate(spec, SC.default_scene(53.16, -27.79), 0, EFF)[0]


def _plan(stage, meta, **params):
    out = []
    for p in plans.default_plan(stage, {}, meta=meta):
        prm = p.params
        if p.name in params:
            prm = dataclasses.replace(prm, **params[p.name])
        if p.name == "straylight":  # no straylight simulated: jwst's step would add error
            out.append(PlannedStep(p.spec, prm, True, _refs()))
        else:
            out.append(PlannedStep(p.spec, prm, p.skip, _refs()))
    return out


def test_spec2_run_gives_the_steps_products():
    from transforms import spec2

    rate = _rate()
    plan = _plan("spec2", rate.meta, cube_build={"channel": "1"})
    names = [p.name for p in plan]
    # jwst 3.0's order: assign_wcs first, the mode-neutral steps, then straylight before the flat
    assert names[0] == "assign_wcs" and "cube_build" in names
    assert names.index("straylight") < names.index("flat_field")
    assert "resample_spec" in names  # in the plan, dropped by the IFU chain
    out = spec2.run(rate, plan)
    assert set(out) == {"cal", "s3d", "x1d"}
    cal = out["cal"]
    assert cal.kind == "cal" and cal.get("cal_step.straylight") == "SKIPPED"
    assert cal.get("cal_step.residual_fringe") == "SKIPPED"  # jwst skips it by default
    assert cal.get("cal_step.photom") == "COMPLETE"
    by = {p.name: p for p in plan}
    m = rate
    for n in ("assign_wcs", "flat_field", "fringe", "photom"):
        m = by[n].spec.apply(m, _refs(), by[n].params)
    assert np.array_equal(np.asarray(cal["data"]), np.asarray(m["data"]), equal_nan=True)
    assert out["s3d"].kind == "s3d" and np.asarray(out["s3d"]["data"]).ndim == 3
    assert out["x1d"].get("cal_step.extract_1d") == "COMPLETE"
    # srctype runs on IFU exposures: the APT type (POINT here) reaches cal, cube and spectrum
    assert rate.get("target.source_type") is None
    assert [out[k].get("target.source_type") for k in ("cal", "s3d", "x1d")] == ["POINT"] * 3


def test_spec3_run_and_association_on_dithers_and_a_background():
    from transforms import spec2, spec3

    metas, cals = [], []
    for i, kw in enumerate(({"dither": (0.0, 0.0), "dither_position": 1, "dither_total": 2},
                            {"dither": (0.3, 0.2), "dither_position": 2, "dither_total": 2,
                             "exposure": 2},
                            {"bkgdtarg": True, "exposure": 3, "ra": 53.2, "dec": -27.75})):
        rate = _rate(**kw)
        plan = [p if p.name not in ("cube_build", "extract_1d")
                else PlannedStep(p.spec, p.params, True, p.refs) for p in _plan("spec2", rate.meta)]
        cals.append(spec2.run(rate, plan)["cal"])
        metas.append(cals[-1].meta)
    (asn,) = ifu_associations(metas)
    kinds = [m["exptype"] for m in asn["products"][0]["members"]]
    assert kinds == ["science", "science", "background"]
    assert asn["asn_rule"] == "candidate_Asn_Lv3MIRMRS"

    plan3 = _plan("spec3", cals[0].meta, cube_build={"channel": "1"})
    out = spec3.run(tuple(cals), plan3)
    assert len(out["crf"]) == 2  # the background member is not a science product
    assert all(m.get("cal_step.master_background") == "COMPLETE" for m in out["crf"])
    assert all(m.get("cal_step.outlier_detection") in ("COMPLETE", "SKIPPED")
               for m in out["crf"])
    assert out["s3d"].kind == "s3d" and out["x1d"].get("cal_step.extract_1d") == "COMPLETE"
    # only channel 1 short: no 1B/3A pair, so spectral_leak has nothing to correct
    assert out["x1d"].get("cal_step.spectral_leak") == "SKIPPED"
    with pytest.raises(spec3.Spec3Error, match="science member"):
        spec3.run((cals[2],), plan3)  # background only: a user error, one line
