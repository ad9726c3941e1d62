"""Cubes in build diffs: an s3d that changed between two builds is compared cube by cube and
plane by plane (catalogs.diff DEEP_COMPARISONS -> transforms.compare_cube), recorded as
``cube_ratio:<cube>`` / ``cube_max_abs:<cube>`` rows, and drawn in the HTML report
(flows.report_cube: collapsed images, per-plane statistics, the worst spaxel's spectrum).

The builds are run with the real runner and a toy IFU spec2 chain (as test_diff_spec.py does
for x1d): the photom response of the two builds differs by 2 % over planes 10-14 only, the
scene is a point source on a faint extended background, so the truth is known: 5 planes
moved, their median ratio is 1.02, the others 1.0, and the spaxel that changed most is the
source's."""

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
from transforms import compare_cube as CC  # noqa: E402
from transforms import ifu as IFU  # noqa: E402
from transforms import registry  # noqa: E402
from transforms.model import DataModel  # noqa: E402

SUBJECT = "jw01234005001_01101_00001_nrs1"
NZ, NY, NX = 40, 15, 20
SOURCE = (7, 12)  # (y, x)
PLANES = (10, 15)  # photom of the candidate build differs on planes 10..14


def _scene() -> np.ndarray:
    w = 1.0 + np.arange(NZ) * 0.01
    yy, xx = np.mgrid[:NY, :NX]
    psf = np.exp(-((yy - SOURCE[0]) ** 2 + (xx - SOURCE[1]) ** 2) / (2 * 0.8 ** 2))
    return (0.05 + 10.0 * psf[None] * (1 + 0.3 * np.sin(w * 9))[:, None, None]).astype(np.float32)


def _cube(scale: float, planes=PLANES) -> DataModel:
    d = _scene()
    d[planes[0]:planes[1]] *= scale
    d[:, 0, 0] = np.nan  # an edge spaxel without data, in both
    meta = {"instrument.name": "NIRSPEC", "exposure.type": "NRS_IFU", "wcsinfo.crval3": 1.0,
            "wcsinfo.crpix3": 1.0, "wcsinfo.cdelt3": 0.01}
    arrays = {"data": d, "err": np.full_like(d, 0.01), "dq": np.zeros(d.shape, np.uint32),
              "weightmap": np.ones_like(d), "wavelength": 1.0 + np.arange(NZ) * 0.01}
    return IFU.cube_product([IFU.Cube("prism-clear", arrays, meta)])


def _spec2(rate: DataModel, steps) -> dict[str, DataModel]:
    p = next(s.params for s, _ in steps if s.name == "photom")
    cube = _cube(p["scale"], tuple(p["planes"]))
    if p.get("bands"):  # a multi-cube product: each cube's meta under cube.<name>.
        (c,) = IFU.cubes(cube)
        cube = IFU.cube_product([IFU.Cube(n, c.arrays, c.meta) for n in p["bands"]])
    return {"s3d": cube}


def _plan(build_name: str, params: dict, raw_id: str) -> runner.StageRecipe:
    ins = {"input": raw_id}
    sr = runner.StepRecipe("photom", "1", params, ins, {}, {}, False)
    sr.planned = registry.PlannedStep(types.SimpleNamespace(name="photom", recipe=sr), params)
    sr.key = recipe_key("photom", "1", params, ins, {})
    return runner.StageRecipe("spec2", SUBJECT, build_name, "jwst_0001.pmap", [sr], ins,
                              {"s3d": runner.output_key(sr.key, "s3d")})


@pytest.fixture(scope="module")
def diffed(tmp_path_factory):
    from flows.workspace import Workspace

    ws, _ = Workspace.init(tmp_path_factory.mktemp("cubediff") / "home")
    rate = DataModel("rate", {"data": np.ones((4, 4), np.float32)},
                     {"instrument.name": "NIRSPEC", "exposure.type": "NRS_IFU"})
    rid = ws.store.put(rate)
    with ws.catalog.batch("ingest") as b:
        b.add("products", {"product_id": rid, "kind": "rate", "subject": SUBJECT,
                           "meta_json": json.dumps(dict(rate.meta), sort_keys=True)})

    def chain(data, plan, on_step):
        return _spec2(data, [(p.spec.recipe, None) for p in plan])

    # "same" repeats base's recipe under another build name: the same product, identical
    for name, scale, bands in (("base", 1.0, None), ("cand", 1.02, None), ("same", 1.0, None),
                               ("bands", 1.0, ["ch1-short", "ch2-short"])):
        params = {"scale": scale, "planes": list(PLANES), **({"bands": bands} if bands else {})}
        out = runner.run_stage(ws, _plan(name, params, rid), lambda: ws.store.get(rid), chain,
                               f"run-{name}")
        assert out.status == "ok", out.error
    return ws, D.diff_builds(ws.catalog, ws.store, "base", "cand")


def test_a_changed_cube_is_compared_plane_by_plane(diffed):
    _, bd = diffed
    (p,) = [p for p in bd.pairs if p.kind == "s3d"]
    assert p.status == "over" and p.cubes is not None and p.spectra is None
    (c,) = p.cubes.pairs
    assert c.name == "prism-clear" and c.moved
    assert c.moved_planes == ((10, 14),) and c.n_planes_moved == 5 and c.n_planes == NZ
    assert c.ratio_worst == pytest.approx(1.02, rel=1e-6)
    assert c.ratio_hi == pytest.approx(1.02, rel=1e-6) and c.ratio_lo == pytest.approx(1.0)
    assert c.ratio_median == pytest.approx(1.0)  # 35 of 40 planes did not move
    np.testing.assert_allclose(c.planes["ratio"][10:15], 1.02, rtol=1e-6)
    np.testing.assert_allclose(np.delete(c.planes["ratio"], range(10, 15)), 1.0)
    assert c.worst_spaxel == SOURCE and c.spaxel_ratio_median == pytest.approx(1.0)
    assert 10 <= c.worst_plane <= 14 and c.worst_wavelength == pytest.approx(
        1.0 + c.worst_plane * 0.01)
    # the largest change is 2 % of the source's peak in the moved planes
    src = _scene()[10:15, SOURCE[0], SOURCE[1]]
    assert c.max_abs == pytest.approx(0.02 * src.max(), rel=1e-4)
    assert c.nan_only_a == c.nan_only_b == 0 and c.wl_max_shift == 0.0
    # the collapsed difference peaks at the source
    d = c.plot["collapsed_diff"]
    assert np.unravel_index(np.nanargmax(d), d.shape) == SOURCE
    assert p.to_dict()["cubes"]["moved"] == ["prism-clear"]


def test_cube_rows_let_sql_find_the_cubes_that_moved(diffed):
    ws, bd = diffed
    D.record(ws.catalog, bd)
    con = ws.catalog.connect()
    try:
        got = con.execute(
            "SELECT subject, metric, value, detail_json FROM diffs WHERE diff_id = ? AND "
            "metric LIKE 'cube_ratio:%' AND abs(value - 1) > 0.01", [bd.diff_id]).fetchall()
        n_max = con.execute("SELECT count(*) FROM diffs WHERE diff_id = ? AND metric = "
                            "'cube_max_abs:prism-clear' AND value > 0", [bd.diff_id]).fetchone()
    finally:
        con.close()
    (subject, metric, value, detail), = got
    assert (subject, metric) == (SUBJECT, "cube_ratio:prism-clear")
    assert value == pytest.approx(1.02, rel=1e-6) and n_max == (1,)
    det = json.loads(detail)
    assert det["moved_planes"] == [[10, 14]] and det["worst_spaxel"] == list(SOURCE)


def test_identical_cubes_give_no_difference(diffed):
    ws, _ = diffed
    bd = D.diff_builds(ws.catalog, ws.store, "base", "same")
    (p,) = [p for p in bd.pairs if p.kind == "s3d"]
    assert p.status == "identical" and p.cubes is None
    assert not [r for r in D.rows(bd) if r["metric"].startswith("cube_")]
    # and compared as cubes (equal content under two ids), nothing moved
    c = CC.compare_cubes(_cube(1.0), _cube(1.0))
    (cp,) = c.pairs
    assert not cp.moved and not c.moved and cp.n_over == 0 and cp.max_abs == 0.0
    assert cp.moved_planes == () and cp.ratio_worst == 1.0 and cp.plot == {}
    assert cp.worst_spaxel == (-1, -1)


def test_where_and_instrument_read_a_multi_cube_products_first_cube(diffed):
    """A multi-cube s3d keeps its meta under cube.<name>.: --where exp_type/instrument still
    select it (the first cube's values)."""
    ws, _ = diffed
    con = ws.catalog.connect()
    try:
        got = D.build_products(con, "bands", "exp_type = 'NRS_IFU' AND kind = 's3d'")
    finally:
        con.close()
    (p,) = got.values()
    assert p.instrument == "NIRSPEC" and p.kind == "s3d"


def test_multi_cube_products_pair_by_band_and_shapes_are_structural():
    def band(name, scale, nz=NZ):
        m = _cube(scale)
        arrays = {k: (v[:nz] if np.ndim(v) else v) for k, v in m.arrays.items()}
        return IFU.Cube(name, arrays, {k: v for k, v in m.meta.items() if k != "cube.name"})

    a = IFU.cube_product([band("ch1-short", 1.0), band("ch2-short", 1.0), band("ch3", 1.0)])
    b = IFU.cube_product([band("ch1-short", 1.0), band("ch2-short", 1.02),
                          band("ch4", 1.0)])
    cd = CC.compare_cubes(a, b)
    assert [p.name for p in cd.moved] == ["ch2-short"] and cd.only_a == ("ch3",) \
        and cd.only_b == ("ch4",)
    b2 = IFU.cube_product([band("ch1-short", 1.0, nz=30), band("ch2-short", 1.0)])
    (s, ok) = CC.compare_cubes(a, b2).pairs
    assert s.moved and "shape" in s.note and not ok.moved


def test_the_report_draws_the_cubes_that_moved(diffed):
    from flows.report import html_report

    _, bd = diffed
    page = html_report(bd)
    assert "<h2>Cubes</h2>" in page and "prism-clear" in page
    assert "per-plane statistics of prism-clear" in page
    assert "spectra of " in page  # the worst spaxel's spectrum, A over B and the ratio
    assert page.count("mean over λ") >= 3 and "10–14" in page
    assert "could not be drawn" not in page


def test_the_cube_pictures_render_in_chromium(diffed, tmp_path):
    """Every picture of the page decodes in headless Chromium and the cube's pictures show
    real variation (tests/flows/test_report_chromium.py's probe)."""
    import importlib.util

    from flows.report import html_report

    path = Path(__file__).resolve().parents[1] / "flows" / "test_report_chromium.py"
    spec = importlib.util.spec_from_file_location("calops_chromium_probe_cube", path)
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    if probe.CHROMIUM is None:
        pytest.skip("headless Chromium is not installed")
    _, bd = diffed
    page = tmp_path / "cube.html"
    page.write_text(html_report(bd))
    imgs = probe.measured_images(page, tmp_path)
    assert imgs and all(i["ok"] for i in imgs), imgs
    # collapsed A, B (data) and B - A (diff), then the per-plane and the spaxel plots
    kinds = [i["kind"] for i in imgs]
    assert kinds.count("data") >= 2 and "diff" in kinds and kinds.count(None) >= 2
    assert all(probe.varies({**i, "kind": i["kind"] or "plot"}) for i in imgs
               if i["uniform"] != "1"), imgs
