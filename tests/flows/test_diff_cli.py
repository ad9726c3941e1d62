"""``calops diff``: exit status for CI gating, text/JSON/HTML output, --where, --accept.

The workspace is filled by the real flows.runner.run_stage with the toy chain of
tests/catalogs/test_diff.py (loaded from its path: test directories are not packages).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from flows.cli import main

_HERE = Path(__file__).resolve().parent


def load_world_module():
    spec = importlib.util.spec_from_file_location(
        "calops_diff_world", _HERE.parent / "catalogs" / "test_diff.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while it is executed
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    from flows.workspace import Workspace

    W = load_world_module()
    ws, _ = Workspace.init(tmp_path_factory.mktemp("diffcli") / "home")
    raw = W.raw_inputs(ws)
    W.run_build(ws, "base", W.BASE_BUILD, raw)
    W.run_build(ws, "newdark", W.variant(refs={"NIRCAM": {"dark": "jwst_nircam_dark_0002.fits"}}), raw)
    W.run_build(ws, "tiny", W.variant(params={"photom": {"scale": 1.0 + 2e-7}}), raw)
    W.run_build(ws, "nisflat", W.variant(refs={"NIRISS": {"flat": "jwst_niriss_flat_0002.fits"}}), raw)
    return str(ws.root)


def test_over_tolerance_exits_1_with_a_readable_summary(home, capsys):
    assert main(["--home", home, "diff", "base", "newdark"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("calops diff base -> newdark")
    head = next(i for i, ln in enumerate(lines) if ln.startswith("pairs"))
    assert lines[head + 2].split() == ["14", "4", "0", "0", "10", "0", "0"]
    assert "reference dark (detector1.dark_current)" in out
    assert "result: FAIL (10 over tolerance" in out
    # the cause summary has labelled columns
    cause_head = next(i for i, ln in enumerate(lines) if ln.strip().startswith("pairs  over"))
    assert lines[cause_head].split() == ["pairs", "over", "accepted", "within", "only", "in", "A",
                                         "only", "in", "B", "cause"]
    assert lines[cause_head + 2].split()[:6] == ["10", "10", "0", "0", "0", "0"]
    assert "accept one cause: calops diff base newdark --accept jwst_nircam_dark_0002.fits" in out


def test_within_tolerance_exits_0_and_tolerances_are_configurable(home, capsys):
    assert main(["--home", home, "diff", "base", "tiny"]) == 0
    assert "result: PASS" in capsys.readouterr().out
    assert main(["--home", home, "diff", "base", "tiny", "--rtol", "0", "--atol", "0"]) == 1
    capsys.readouterr()
    # a per-array tolerance loose enough for every array that changes passes again
    assert main(["--home", home, "diff", "base", "tiny", "--rtol", "0", "--atol", "0",
                 "--tol", "data=1e-5,0", "--tol", "aper_total_flux=1e-5,0",
                 "--tol", "wht=0,0"]) == 0


def test_json_output_and_where(home, capsys):
    assert main(["--home", home, "diff", "base", "nisflat", "--format", "json",
                 "--where", "instrument = 'NIRISS' AND stage = 'image2'"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["build_a"] == "base" and d["failed"] is True
    assert {p["subject"] for p in d["pairs"]} == {"jw03_nis"}
    assert {p["status"] for p in d["pairs"]} == {"over"}
    assert list(d["groups"]) == ["reference flat (image2.flat_field): jwst_niriss_flat_0001.fits "
                                 "-> jwst_niriss_flat_0002.fits"]
    arr = d["pairs"][0]["diff"]["arrays"]["data"]
    assert arr["n_over"] == arr["n"] > 0 and arr["rtol"] == 1e-5


def test_results_are_rows_sql_can_ask(home, capsys):
    main(["--home", home, "diff", "base", "nisflat"])
    capsys.readouterr()
    assert main(["--home", home, "sql", "--format", "json",
                 "SELECT count(DISTINCT subject || product_kind) AS n, "
                 "json_extract_string(detail_json, '$.cause') AS why FROM diffs "
                 "WHERE build_a = 'base' AND build_b = 'nisflat' AND metric = 'cause' "
                 "AND json_extract_string(detail_json, '$.instrument') = 'NIRISS' GROUP BY why"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [{"n": 2, "why": "reference flat (image2.flat_field): "
                                    "jwst_niriss_flat_0001.fits -> jwst_niriss_flat_0002.fits"}]


def test_html_report_is_self_contained(home, tmp_path, capsys):
    import re

    page = tmp_path / "r.html"
    assert main(["--home", home, "diff", "base", "newdark", "--html", str(page), "--images", "3",
                 "--no-record", "--format", "json"]) == 1
    d = json.loads(capsys.readouterr().out)
    text = page.read_text()
    # nothing from the network: no external scripts, styles, images or links
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", text)
    assert "<script src" not in text and "<link" not in text
    kinds = re.findall(r"data-kind='(\w+)'", text)
    over = [p for p in d["pairs"] if p["status"] == "over"]
    images = [p for p in over if p["kind"] != "catalog"]
    # thumbnails of every over-tolerance pair (B, B - A, B / A, DQ where there is a DQ array;
    # a catalog as plots), and the 3 worst pairs large
    worst = sorted(over, key=lambda p: -p["score"])[:3]
    large = [p for p in worst if p["kind"] != "catalog"]
    assert len(large) == 2
    has_dq = lambda ps: sum(1 for p in ps if "dq" in p["diff"]["arrays"])  # noqa: E731
    assert kinds.count("diff") == len(images) + len(large)
    assert kinds.count("ratio") == len(images) + len(large)
    assert kinds.count("dq") == has_dq(images) + has_dq(large) > 0
    assert kinds.count("hist") == len(large)
    assert kinds.count("catalog") == 2  # its gallery card and its worst-pair plots
    for title in ("Changes by cause", "By reference file", "By step", "By instrument", "Products",
                  "Gallery", "worst pairs", "Catalogs", "Products in detail"):
        assert title in text, title
    # every product links to a section with its full ids, the lineage command and its tree
    for p in d["pairs"]:
        assert f"calops lineage {p['product_b']}" in text
        assert f"href='#p{d['pairs'].index(p)}'" in text
    cal = next(p for p in over if p["kind"] == "cal")
    assert f"lineage of B</summary><pre>cal {cal['product_b'][:19]}" in text
    assert "jwst_nircam_dark_0002.fits" in text


def test_accept_needs_a_scope_and_gates_only_what_was_accepted(tmp_path, capsys):
    from flows.workspace import Workspace

    W = load_world_module()
    ws, _ = Workspace.init(tmp_path / "home")
    raw = W.raw_inputs(ws)
    W.run_build(ws, "base", W.BASE_BUILD, raw)
    W.run_build(ws, "cand", W.variant(refs={"NIRCAM": {"dark": "jwst_nircam_dark_0002.fits"},
                                            "NIRISS": {"flat": "jwst_niriss_flat_0002.fits"}}), raw)
    home = str(ws.root)
    assert main(["--home", home, "diff", "base", "cand", "--accept", "--why", "x"]) == 2
    assert "--accept needs a CAUSE" in capsys.readouterr().err
    assert main(["--home", home, "diff", "base", "cand", "--accept", "nisflat"]) == 2
    assert "--why" in capsys.readouterr().err
    assert main(["--home", home, "diff", "base", "cand", "--accept", "jwst_miri_flat.fits",
                 "--why", "x"]) == 2
    assert "names no cause" in capsys.readouterr().err
    # accepting the NIRISS flat leaves the NIRCam dark failing the gate
    assert main(["--home", home, "diff", "base", "cand", "--accept",
                 "jwst_niriss_flat_0002.fits", "--who", "ana",
                 "--why", "flat 0002 fixes the NIRISS vignetting"]) == 1
    cap = capsys.readouterr()
    assert "accepted 2 pair(s)" in cap.err and "result: FAIL (10 over tolerance" in cap.out
    assert main(["--home", home, "diff", "base", "cand"]) == 1
    assert "2 accepted" in capsys.readouterr().out
    assert main(["--home", home, "diff", "base", "cand", "--accept", "detector1.dark_current",
                 "--why", "new darks"]) == 0
    capsys.readouterr()
    assert main(["--home", home, "diff", "base", "cand"]) == 0
    assert "result: PASS" in capsys.readouterr().out
    main(["--home", home, "sql", "--format", "json",
          "SELECT who, why FROM build_events WHERE event = 'diff_accepted' ORDER BY \"at\""])
    ev = json.loads(capsys.readouterr().out)
    assert len(ev) == 2 and ev[0]["who"] == "ana" and "vignetting" in ev[0]["why"]
    assert "jwst_niriss_flat_0002.fits" in ev[0]["why"]


def test_bad_arguments_are_one_line_errors(home, capsys):
    assert main(["--home", home, "diff", "base", "nosuch"]) == 2
    assert "no recorded runs" in capsys.readouterr().err
    assert main(["--home", home, "diff", "base", "tiny", "--tol", "data=abc"]) == 2
    assert "ARRAY=RTOL,ATOL" in capsys.readouterr().err
    assert main(["--home", home, "diff", "base", "tiny", "--rtol", "-1"]) == 2
    assert "rtol must be" in capsys.readouterr().err


def test_other_modules_add_sections_to_the_report(home, monkeypatch):
    """The hook for e.g. flows/report_spec.py: a module named in SECTION_MODULES gives
    section(ctx) -> (anchor, title, html); a section that raises is reported, not fatal."""
    import types

    from catalogs import diff as D
    from flows import report
    from flows.workspace import Workspace

    ws = Workspace.resolve(home)
    bd = D.diff_builds(ws.catalog, ws.store, "base", "nisflat", n_images=0, thumbnails="none")
    good = types.ModuleType("calops_test_section")
    good.section = lambda ctx: ("spectra", "Spectra", "<h2>Spectra</h2><p>"
                                + ctx.e(f"{len(ctx.bd.pairs)} pairs & more") + "</p>")
    bad = types.ModuleType("calops_test_broken")
    bad.section = lambda ctx: 1 / 0
    monkeypatch.setitem(sys.modules, "calops_test_section", good)
    monkeypatch.setitem(sys.modules, "calops_test_broken", bad)
    monkeypatch.setattr(report, "SECTION_MODULES", ("calops_test_section", "calops_test_broken"))
    page = report.html_report(bd)
    assert "<a href='#spectra'>Spectra</a>" in page
    assert "<section id='spectra'><h2>Spectra</h2><p>14 pairs &amp; more</p></section>" in page
    assert "could not be drawn: ZeroDivisionError" in page
    # placed before the per-product details
    assert page.index("id='spectra'") < page.index("id='details'")
