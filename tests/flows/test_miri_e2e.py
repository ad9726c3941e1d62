"""MIRI imaging end to end: simulated uncal files, the generated CRDS cache (real MIRI rmap
parameters), ingest, detector1 -> image2 -> image3 under the development build 11.3."""

from __future__ import annotations

import shutil

import numpy as np
import pytest



@pytest.fixture(scope="module")
def miri_ws(tmp_path_factory):
    """A workspace holding the small MIRI program (MIRI's own effects off: the steps that
    correct them are tested in tests/transforms/detector1) and its truth."""
    from catalogs.crds_cache import contexts_from_program, write_cache
    from flows.ingest import ingest_file
    from flows.workspace import Workspace
    from store.fits import write_uncal
    from transforms.sim.miri import MiriEffects
    from transforms.sim.program import miri_program, simulate_program

    prog = simulate_program(miri_program(miri=MiriEffects.off()), seed=3)
    d = tmp_path_factory.mktemp("miri")
    (d / "uncal").mkdir()
    for e in prog.exposures:
        write_uncal(e.uncal, d / "uncal" / e.truth.name)
    write_cache(d / "crds", contexts_from_program(prog))
    ws, _ = Workspace.init(d / "home")
    shutil.rmtree(ws.crds_path)
    shutil.copytree(d / "crds", ws.crds_path)
    for f in sorted((d / "uncal").glob("*.fits")):
        ingest_file(ws, f, "ingest")
    return ws, prog


def test_miri_imaging_runs_every_stage_under_the_development_build(miri_ws):
    from flows import stages

    ws, prog = miri_ws
    exps = ws.catalog.current_exposure_ids()
    assert len(exps) == 3
    out = {}
    for stage in ("detector1", "image2", "image3"):
        subjects = stages.subjects(ws, stage, exps)
        assert subjects, f"no {stage} subject for MIR_IMAGE"
        for s in subjects:
            res = stages.run(ws, "11.3", stage, s, "r1")
            assert res.status == "ok", (stage, s, res.error)
            out[(stage, s)] = res
    # detector1 ran MIRI's order with MIRI's references (superbias is N/A for MIRI)
    for eid in exps:
        rate = ws.store.get(out[("detector1", eid)].outputs["rate"])
        assert rate.meta["instrument.name"] == "MIRI"
        for step in ("dark_current", "lastframe", "reset", "rscd"):  # through CRDS
            assert rate.get(f"cal_step.{step}") == "COMPLETE", step
        assert rate.get("cal_step.emicorr") == "SKIPPED"  # jwst's default
        assert "cal_step.superbias" not in rate.meta
        e = next(x for x in prog.exposures if x.truth.name.startswith(eid))
        truth = e.truth.light_rate_dn
        good = (rate["dq"] & 1) == 0
        assert good.mean() > 0.99
        if e.spec.subarray == "SUB256":
            bright = good & (truth > np.percentile(truth, 95))
            rel = np.median((rate["data"] - truth)[bright] / truth[bright])
            pull = ((rate["data"] - truth) / rate["err"])[good]
            assert abs(rel) < 0.005, rel
            assert 0.9 < np.std(pull) < 1.2
        cal = ws.store.get(out[("image2", eid)].outputs["cal"])
        assert cal.meta["bunit_data"] == "MJy/sr"
        assert cal.meta["photometry.conversion_megajanskys"] == pytest.approx(0.233, rel=1e-6)
    (i3,) = [r for (st, _), r in out.items() if st == "image3"]
    assert {"i2d", "catalog"} <= set(i3.outputs)
    cat = ws.store.get(i3.outputs["catalog"])
    assert len(next(iter(cat.arrays.values()))) >= 10  # the field's sources are found
