"""Spectra in build diffs: an x1d that changed between two builds is compared spectrum by
spectrum (catalogs.diff -> transforms.compare_spec), recorded as ``spec_ratio:<spectrum>`` rows,
and drawn in the HTML report (flows.report_spec: overlay and ratio per spectrum that moved).

The builds are run with the real runner and a toy spec2 chain (as tests/catalogs/test_diff.py
does for imaging): a photom scale that differs by 1 % between the two builds."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from catalogs import diff as D  # noqa: E402
from flows import runner  # noqa: E402
from store.identity import recipe_key  # noqa: E402
from transforms import registry  # noqa: E402
from transforms import spectral as S  # noqa: E402
from transforms.model import DataModel  # noqa: E402

SUBJECT = "jw01234003001_01101_00001_nrs1"


def _spec2(rate: DataModel, steps) -> dict[str, DataModel]:
    scale = next(s.params["scale"] for s, _ in steps if s.name == "photom")
    w = 1.0 + np.arange(120) * 2e-3
    f = (1e-3 * (1 + np.sin(w * 20) ** 2) * scale)
    sp = S.Spectrum("S200A1", {"wavelength": w, "flux": f, "flux_error": f * 0.01,
                               "dq": np.zeros(w.size, np.uint32)}, {"source_id": 1})
    x1d = S.spectra_product("x1d", dict(rate.meta), [sp])
    return {"x1d": x1d}


def _plan(build_name: str, scale: float, raw_id: str) -> runner.StageRecipe:
    params = {"scale": scale}
    ins = {"input": raw_id}
    sr = runner.StepRecipe("photom", "1", params, ins, {}, {}, False)
    sr.planned = registry.PlannedStep(types.SimpleNamespace(name="photom", recipe=sr), params)
    sr.key = recipe_key("photom", "1", params, ins, {})
    return runner.StageRecipe("spec2", SUBJECT, build_name, "jwst_0001.pmap", [sr], ins,
                              {o: runner.output_key(sr.key, o)
                               for o in registry.stage("spec2").outputs})


@pytest.fixture(scope="module")
def diffed(tmp_path_factory):
    from flows.workspace import Workspace

    ws, _ = Workspace.init(tmp_path_factory.mktemp("specdiff") / "home")
    rate = DataModel("rate", {"data": np.ones((4, 4), np.float32)},
                     {"instrument.name": "NIRSPEC", "exposure.type": "NRS_FIXEDSLIT"})
    rid = ws.store.put(rate)
    with ws.catalog.batch("ingest") as b:
        b.add("products", {"product_id": rid, "kind": "rate", "subject": SUBJECT,
                           "meta_json": json.dumps(dict(rate.meta), sort_keys=True)})

    def chain(data, plan, on_step):
        return _spec2(data, [(p.spec.recipe, None) for p in plan])

    for name, scale in (("base", 1.0), ("cand", 1.01)):
        out = runner.run_stage(ws, _plan(name, scale, rid), lambda: ws.store.get(rid), chain,
                               f"run-{name}")
        assert out.status == "ok", out.error
    return ws, D.diff_builds(ws.catalog, ws.store, "base", "cand")


def test_a_changed_x1d_is_compared_spectrum_by_spectrum(diffed):
    _, bd = diffed
    (p,) = [p for p in bd.pairs if p.kind == "x1d"]
    assert p.status == "over" and p.spectra is not None
    (sp,) = p.spectra.pairs
    assert sp.name == "S200A1" and sp.moved
    assert sp.ratio_median == pytest.approx(1.01) and sp.wl_shift_pix == 0.0
    assert p.to_dict()["spectra"]["moved"] == ["S200A1"]
    rows = [r for r in D.rows(bd) if r["metric"].startswith("spec_ratio:")]
    assert len(rows) == 1 and rows[0]["value"] == pytest.approx(1.01)
    assert json.loads(rows[0]["detail_json"])["wl_shift_pix"] == 0.0


def test_the_report_draws_the_spectra_that_moved(diffed):
    from flows.report import html_report

    _, bd = diffed
    page = html_report(bd)
    assert "<h2>Spectra</h2>" in page
    assert "spectra of " in page and "data:image/png;base64," in page
    assert "S200A1" in page


def test_the_svg_fallback_draws_both_panels():
    from flows import report_spec

    w = np.linspace(1, 2, 50)
    svg = report_spec._svg({"wavelength": w, "a": np.ones(50), "b": np.ones(50) * 1.1})
    assert svg.count("<polyline") == 3
