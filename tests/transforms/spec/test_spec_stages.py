"""The spec2 and spec3 stage declarations and chains: what they read and make, their step
orders (jwst 3.0's), the S_* keywords of their steps, how skipped steps and background members
are handled, and that steps not registered yet simply drop out of plans."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

import spec_synth as T  # noqa: E402
from test_spec_validation import REF, _fs_exposure, _plan  # noqa: E402

from transforms import plans, registry  # noqa: E402
from transforms import spectral as S  # noqa: E402
from transforms.registry import PlannedStep  # noqa: E402


def test_stage_declarations():
    s2, s3 = registry.stage("spec2"), registry.stage("spec3")
    assert (s2.subject, s2.reads, s2.outputs) == (
        "exposure", ("detector1:rate", "exposure:pointing"), ("cal", "s2d", "x1d"))
    assert set(s2.exp_types) == {"NRS_FIXEDSLIT", "NRS_MSASPEC", "MIR_LRS-FIXEDSLIT",
                                 "NRS_IFU", "MIR_MRS"}  # IFU: tests/transforms/ifu
    assert (s3.subject, s3.reads, s3.outputs) == ("association", ("spec2:cal",),
                                                  ("s2d", "x1d", "c1d"))
    assert s3.associate is not None
    # jwst 3.0's Spec2Pipeline order: the leakcal imprint before the background, extract_2d,
    # srctype and wavecorr before flat_field, then photom, pixel_replace, resample, extract
    o = s2.steps
    for a, b in (("assign_wcs", "msa_flagging"), ("imprint_subtract", "bkg_subtract"),
                 ("extract_2d", "srctype"), ("srctype", "wavecorr"), ("wavecorr", "flat_field"),
                 ("flat_field", "pathloss"), ("barshadow", "photom"), ("photom", "pixel_replace"),
                 ("pixel_replace", "resample_spec"), ("resample_spec", "extract_1d")):
        assert o.index(a) < o.index(b), (a, b)
    assert s3.steps == ("master_background", "outlier_detection", "pixel_replace",
                        "resample_spec", "cube_build", "extract_1d", "spectral_leak",
                        "combine_1d")  # cube_build, spectral_leak: IFU only
    assert registry.stages()["spec3"].upstream == ("spec2",)
    assert s2.calibrates({"exposure.type": "NRS_MSASPEC"})
    assert not s2.calibrates({"exposure.type": "NRC_IMAGE"})
    assert not registry.stage("image2").calibrates({"exposure.type": "NRS_FIXEDSLIT"})


def test_step_declarations_and_keywords():
    kw = registry.keywords()
    assert kw["pixel_replace"] == "S_PXREPL" and kw["resample_spec"] == "S_RESAMP"
    assert kw["extract_1d"] == "S_EXTR1D" and kw["master_background"] == "S_MSBSUB"
    assert kw["combine_1d"] == "S_COMB1D" and kw["outlier_detection"] == "S_OUTLIR"
    assert registry.get("pixel_replace").skip_by_default  # jwst runs it only when asked
    assert registry.get("extract_1d", "1.0").optional_reftypes == ("extract1d",)
    assert registry.get("extract_1d").optional_reftypes[0] == "extract1d"  # 1.1: + apcorr
    assert registry.steps()["outlier_detection"][:2] == ["1.0", "2.0"]
    p = registry.get("resample_spec").make_params()
    assert (p.pixfrac, p.kernel, p.weight_type, p.pixel_scale_ratio) == (1.0, "square", "ivm", 1.0)
    assert registry.get("pixel_replace").make_params().algorithm == "mingrad"


def test_default_plans_keep_the_order_and_drop_unregistered_steps():
    nrs = {"instrument.name": "NIRSPEC", "exposure.type": "NRS_FIXEDSLIT"}
    names = [p.name for p in plans.default_plan("spec2", {}, meta=nrs)]
    assert [n for n in names if n != "cube_build"][-3:] == ["pixel_replace", "resample_spec",
                                                             "extract_1d"]
    assert all(n in registry.steps() for n in names)
    miri = {"instrument.name": "MIRI", "exposure.type": "MIR_LRS-FIXEDSLIT"}
    plan3 = plans.default_plan("spec3", {}, meta=miri)
    # every spec3 step but the cube and the MRS leak, which apply to IFU modes only
    assert [p.name for p in plan3] == [n for n in registry.stage("spec3").steps
                                       if n not in ("cube_build", "spectral_leak")]
    mrs = {"instrument.name": "MIRI", "exposure.type": "MIR_MRS"}
    assert {"cube_build", "spectral_leak"} <= {p.name for p in
                                               plans.default_plan("spec3", {}, meta=mrs)}
    assert next(p for p in plan3 if p.name == "outlier_detection").spec.version in ("2.0", "2.1", "2.2")
    plans.check_plan("spec3", plan3, miri)


def test_spec2_chain_outputs_and_skips():
    from transforms import spec2

    cal = T.cal_product([T.make_slit(T.SlitSpec())], **{"cal_step.photom": "COMPLETE"})
    rate = cal.replace(kind="rate")
    out = spec2.run(rate, _plan("spec2", {"extract1d": REF}, pixel_replace={"algorithm":
                                                                            "fit_profile"}))
    assert out["cal"].kind == "cal" and out["cal"].get("cal_step.pixel_replace") is None
    assert out["s2d"].get("cal_step.pixel_replace") == "SKIPPED"  # skipped by default
    assert out["s2d"].get("cal_step.resample_spec") == "COMPLETE"
    # resample_spec skipped: the x1d is extracted from the (unrectified) cal
    plan = [p if p.name != "resample_spec" else PlannedStep(p.spec, p.params, True, p.refs)
            for p in _plan("spec2", {"extract1d": REF})]
    out2 = spec2.run(rate, plan)
    assert "s2d" not in out2 and out2["x1d"].get("cal_step.extract_1d") == "COMPLETE"
    a, b = S.spectra(out["x1d"])[0], S.spectra(out2["x1d"])[0]
    m = np.isfinite(a["flux"]) & np.isfinite(b["flux"])
    assert np.nanmedian(b["flux"][m] / a["flux"][m]) == pytest.approx(1.0, abs=0.01)
    with pytest.raises(spec2.Spec2Error, match="rate"):
        spec2.run(cal.replace(kind="i2d"), [])


def test_spec3_drops_background_members_whether_or_not_master_background_runs():
    from transforms import spec3

    rng = np.random.default_rng(2)
    sci = _fs_exposure("S200A1", 0, rng)
    bkg = T.cal_product([T.make_slit(T.SlitSpec(source_ypos=None, background=2e-9), rng)],
                        **{"observation.bkgdtarg": True})
    plan = _plan("spec3", {"extract1d": REF})
    out = spec3.run((sci, bkg), plan)
    assert len(out["crf"]) == 1 and out["crf"][0].get("cal_step.master_background") == \
        "COMPLETE"
    skipped = [PlannedStep(p.spec, p.params, p.name == "master_background", p.refs)
               for p in plan]
    out2 = spec3.run((sci, bkg), skipped)
    assert len(out2["crf"]) == 1
    assert out2["crf"][0].get("cal_step.master_background") == "SKIPPED"
    with pytest.raises(spec3.Spec3Error, match="science member"):
        spec3.run((bkg,), skipped)
