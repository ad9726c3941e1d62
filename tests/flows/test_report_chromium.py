"""The HTML diff report renders in headless Chromium with real pictures in it.

A copy of the report gets a small script that, on ``load``, draws every ``<img>`` on a canvas
and measures what the browser decoded: its size, how many distinct colours it has, the spread
of its luminance and the fraction of near-white pixels. ``chromium --dump-dom`` prints the DOM
after load, with those measures as JSON. Every picture must decode; a picture the report does
not flag as uniform (``data-uniform='0'``) must show real variation; one it flags as uniform (a
map with one value, e.g. B − A of a constant offset) must indeed be one colour, so the flag
cannot hide a blank image. A control page with a corrupt PNG proves the check can fail. The
workspace is filled by flows.runner.run_stage with the toy chain of tests/catalogs/test_diff.py,
under a candidate that changes a dark, a flat, a jump threshold and the photometric scale, so
differences, ratios, DQ changes and catalog shifts all appear.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from flows import report

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (CI: apt-get install -y chromium)")

PROBE = """<script>window.addEventListener('load', function () {
  var out = Array.prototype.map.call(document.images, function (img) {
    var r = {kind: img.getAttribute('data-kind'), uniform: img.getAttribute('data-uniform'),
             ok: img.complete && img.naturalWidth > 0, w: img.naturalWidth, h: img.naturalHeight};
    if (!r.ok) return r;
    var c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    var g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    var d = g.getImageData(0, 0, c.width, c.height).data, n = d.length / 4;
    var colours = new Set(), s = 0, s2 = 0, white = 0;
    for (var i = 0; i < d.length; i += 4) {
      if (colours.size < 1000) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      var y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
      s += y; s2 += y * y; white += y > 245 ? 1 : 0;
    }
    r.colours = colours.size; r.std = Math.sqrt(Math.max(0, s2 / n - (s / n) * (s / n)));
    r.white = white / n;
    return r;
  });
  var el = document.createElement('script');
  el.type = 'application/json'; el.id = 'probe-out';
  el.textContent = JSON.stringify(out);
  document.body.appendChild(el);
});</script>"""


def measured_images(page, tmp_path) -> list[dict]:
    """What headless Chromium decoded of each image of an HTML file (see PROBE)."""
    probe = page.with_name(page.stem + "-probe.html")
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    res = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-extensions", "--no-first-run", f"--user-data-dir={tmp_path / 'chrome-profile'}",
         "--virtual-time-budget=20000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=180)
    m = re.search(r'<script type="application/json" id="probe-out">(.*?)</script>', res.stdout, re.S)
    assert m, f"no probe output in Chromium's DOM (exit {res.returncode}): {res.stderr[-500:]}"
    return json.loads(m.group(1))


def varies(i: dict) -> bool:
    """Real pixel variation: several colours (a DQ change map is categorical: unchanged and
    gained a flag are two), a luminance spread, not all white."""
    return (i["colours"] >= (2 if i["kind"] == "dq" else 3) and i["std"] >= 3.0
            and i["white"] < 0.98)


def _world_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "catalogs" / "test_diff.py"
    spec = importlib.util.spec_from_file_location("calops_diff_world_chromium", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while it is executed
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
    W.run_build(ws, "mixed", W.variant(
        refs={"NIRCAM": {"dark": "jwst_nircam_dark_0002.fits"},
              "NIRISS": {"flat": "jwst_niriss_flat_0002.fits"}},
        params={"jump": {"rejection_threshold": 20.0}, "photom": {"scale": 1.01}}), raw)
    bd = D.diff_builds(ws.catalog, ws.store, "base", "mixed", n_images=4)
    return bd, ws


@pytest.fixture(scope="module")
def page(diff_result, tmp_path_factory):
    bd, ws = diff_result
    path = tmp_path_factory.mktemp("page") / "report.html"
    path.write_text(report.html_report(bd, n_worst=4, catalog=ws.catalog))
    return path


def test_every_picture_decodes_and_shows_what_it_claims(diff_result, page, tmp_path):
    bd, _ = diff_result
    imgs = measured_images(page, tmp_path)
    over = [p for p in bd.pairs if p.status == "over"]
    assert len(over) >= 10
    # pictures of every over-tolerance pair: 3 or 4 thumbnails per image pair, plots per catalog
    assert len(imgs) >= 3 * len(over)
    bad = [i for i in imgs if not i["ok"]]
    assert not bad, bad
    for i in imgs:
        if i["uniform"] == "0":  # real pixel variation: not blank, not a single colour
            assert varies(i), i
        else:  # flagged uniform (a constant map): then it is one colour indeed
            assert i["colours"] <= 2, i
    varied = {i["kind"] for i in imgs if i["uniform"] == "0"}
    assert varied >= {"data", "diff", "ratio", "dq", "hist", "catalog"}, varied
    # the large pictures of the worst pairs are large
    assert max(i["w"] for i in imgs if i["kind"] == "diff") >= 250
    assert max(i["w"] for i in imgs if i["kind"] == "catalog") >= 800


def test_the_check_sees_a_broken_image(page, tmp_path):
    broken = tmp_path / "broken.html"
    good = page.read_text()
    # corrupt the first embedded PNG: it must then fail to decode
    bad = re.sub(r"data:image/png;base64,[A-Za-z0-9+/]{40}", "data:image/png;base64," + "A" * 40,
                 good, count=1)
    assert bad != good
    broken.write_text(bad)
    imgs = measured_images(broken, tmp_path)
    assert len(imgs) >= 2 and sum(not i["ok"] for i in imgs) == 1


def test_the_check_sees_a_blank_image(page, tmp_path):
    """A picture drawn blank (the old linear stretch set by an outlier) fails the check."""
    import base64

    import numpy as np

    blank = base64.b64encode(report.png_bytes(np.full((96, 96, 3), 255, np.uint8))).decode()
    text = page.read_text()
    m = re.search(r"data-kind='diff' data-uniform='0' src='data:image/png;base64,[^']+'", text)
    assert m
    swapped = text.replace(m.group(0), "data-kind='diff' data-uniform='0' "
                                       f"src='data:image/png;base64,{blank}'", 1)
    out = tmp_path / "blank.html"
    out.write_text(swapped)
    imgs = measured_images(out, tmp_path)
    flat = [i for i in imgs if i["uniform"] == "0" and not varies(i)]
    assert len(flat) == 1 and flat[0]["kind"] == "diff"
