"""The README's first command: `calops demo` runs the whole story and says where it wrote."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.slow


def test_demo_runs_end_to_end(tmp_path, capsys):
    from flows.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    # every stage of both builds ran, the rerun was all hits, the reissue reused stage 1
    assert re.search(r"second run: build 11\.1\.1.*\n\s+detector1\s+(\d+) tasks\s+\1 hits", text)
    # stage 1 on every instrument of `calops simulate --without mos` (12 exposures)
    assert re.search(r"first run: build 11\.1\.1.*\n\s+detector1\s+12 tasks", text)
    assert "MIRI MIR_LRS-FIXEDSLIT" in text and "NIRSPEC NRS_FIXEDSLIT" in text
    reissue = text.split("7. A reissued exposure")[1]
    assert re.search(r"detector1\s+1 tasks\s+1 hits", reissue)
    assert re.search(r"image2\s+1 tasks\s+0 hits\s+1 computed", reissue)
    assert "failed" in text and not re.search(r"[1-9]\d* failed", text)
    html = (out / "report.html").read_text()
    assert "<img" in html and "Changes by cause" in html
    assert (out / "home" / "calops.toml").exists()
    # a directory the demo did not make is refused, and left as it was
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    assert main(["demo", "--out", str(foreign)]) == 2
    assert (foreign / "keep.txt").exists()
