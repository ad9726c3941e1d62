"""The HTML diff report renders in headless Chromium with every image loaded.

A copy of the report gets a small script that, on ``load``, writes how many ``<img>`` decoded
(``naturalWidth > 0``) into a ``data-images-loaded`` attribute; ``chromium --dump-dom`` prints the
DOM after load. A control page with a corrupt PNG proves the check can fail. The workspace is
filled by flows.runner.run_stage with the toy chain of tests/catalogs/test_diff.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from flows import report

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (CI: apt-get install -y chromium)")

PROBE = """<script>window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-loaded', ok + '/' + imgs.length);
});</script>"""


def loaded_images(page, tmp_path) -> tuple[int, int]:
    """(decoded, total) images of an HTML file as headless Chromium sees it."""
    probe = page.with_name(page.stem + "-probe.html")
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    res = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-extensions", "--no-first-run", f"--user-data-dir={tmp_path / 'chrome-profile'}",
         "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120)
    m = re.search(r'data-images-loaded="(\d+)/(\d+)"', res.stdout)
    assert m, f"no load marker in Chromium's DOM (exit {res.returncode}): {res.stderr[-500:]}"
    return int(m.group(1)), int(m.group(2))


def _world_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "catalogs" / "test_diff.py"
    spec = importlib.util.spec_from_file_location("calops_diff_world_chromium", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def diff_result(tmp_path_factory):
    from catalogs import diff as D
    from flows.workspace import Workspace

    W = _world_module()
    ws, _ = Workspace.init(tmp_path_factory.mktemp("chromium") / "home")
    raw = W.raw_inputs(ws)
    W.run_build(ws, "base", W.BASE_BUILD, raw)
    W.run_build(ws, "newdark", W.variant(refs={"NIRCAM": {"dark": "jwst_nircam_dark_0002.fits"}}),
                raw)
    return D.diff_builds(ws.catalog, ws.store, "base", "newdark", n_images=4)


def test_report_renders_with_every_image_loaded(diff_result, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(report.html_report(diff_result, n_worst=4))
    expected = sum(1 for p in diff_result.worst(4) if p.images)
    assert expected >= 2
    assert loaded_images(page, tmp_path) == (expected, expected)


def test_the_check_sees_a_broken_image(diff_result, tmp_path):
    page = tmp_path / "broken.html"
    good = report.html_report(diff_result, n_worst=4)
    # corrupt the first embedded PNG: it must then fail to decode
    bad = re.sub(r"data:image/png;base64,[A-Za-z0-9+/]{40}", "data:image/png;base64," + "A" * 40,
                 good, count=1)
    assert bad != good
    page.write_text(bad)
    ok, total = loaded_images(page, tmp_path)
    assert total >= 2 and ok == total - 1
