"""``calops diff``: exit status for CI gating, text/JSON/HTML output, --where, --accept.

The workspace is filled by the real flows.runner.run_stage with the toy chain of
tests/catalogs/test_diff.py (loaded from its path: test directories are not packages).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from flows.cli import main

_HERE = Path(__file__).resolve().parent


def load_world_module():
    spec = importlib.util.spec_from_file_location(
        "calops_diff_world", _HERE.parent / "catalogs" / "test_diff.py")
    mod = importlib.util.module_from_spec(spec)
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
    page = tmp_path / "r.html"
    assert main(["--home", home, "diff", "base", "newdark", "--html", str(page), "--images", "3",
                 "--no-record"]) == 1
    text = page.read_text()
    # the three worst: the association's catalog (a table, no picture), its i2d and a rate
    assert text.count("<h3>") == 3
    assert text.count("data:image/png;base64,") == 2
    assert "sources: " in text and "matched within" in text
    assert "http://" not in text and "https://" not in text and "<script" not in text
    assert "Changes by cause" in text and "jwst_nircam_dark_0002.fits" in text


def test_accept_records_a_baseline_and_later_diffs_pass(home, capsys):
    assert main(["--home", home, "diff", "base", "nisflat", "--accept"]) == 2
    assert "--why" in capsys.readouterr().err
    assert main(["--home", home, "diff", "base", "nisflat", "--accept", "--who", "ana",
                 "--why", "flat 0002 fixes the NIRISS vignetting"]) == 0
    capsys.readouterr()
    assert main(["--home", home, "diff", "base", "nisflat"]) == 0
    out = capsys.readouterr().out
    assert "result: PASS" in out and "2 accepted" in out
    main(["--home", home, "sql", "--format", "json",
          "SELECT who, why FROM build_events WHERE event = 'diff_accepted'"])
    ev = json.loads(capsys.readouterr().out)
    assert ev[0]["who"] == "ana" and "vignetting" in ev[0]["why"]


def test_bad_arguments_are_one_line_errors(home, capsys):
    assert main(["--home", home, "diff", "base", "nosuch"]) == 2
    assert "no recorded runs" in capsys.readouterr().err
    assert main(["--home", home, "diff", "base", "tiny", "--tol", "data=abc"]) == 2
    assert "ARRAY=RTOL,ATOL" in capsys.readouterr().err
    assert main(["--home", home, "diff", "base", "tiny", "--rtol", "-1"]) == 2
    assert "rtol must be" in capsys.readouterr().err
