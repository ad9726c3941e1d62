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
    # stage 1 on every instrument of `calops simulate --without mos --without ifu` (12 exposures)
    assert re.search(r"first run: build 11\.1\.1.*\n\s+detector1\s+12 tasks", text)
    assert "MIRI MIR_LRS-FIXEDSLIT" in text and "NIRSPEC NRS_FIXEDSLIT" in text
    reissue = text.split("7. A reissued exposure")[1]
    assert re.search(r"detector1\s+1 tasks\s+1 hits", reissue)
    assert re.search(r"image2\s+1 tasks\s+0 hits\s+1 computed", reissue)
    assert "failed" in text and not re.search(r"[1-9]\d* failed", text)
    html = (out / "report.html").read_text()
    assert "<img" in html and "Changes by cause" in html
    _assert_spectra_story(text, out / "home", html)
    assert (out / "home" / "calops.toml").exists()
    # a directory the demo did not make is refused, and left as it was
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    assert main(["demo", "--out", str(foreign)]) == 2
    assert (foreign / "keep.txt").exists()


def _assert_spectra_story(text: str, home, html: str) -> None:
    """FS and LRS went through spec2 (and FS's association through spec3) under both builds;
    the candidate's new photom recomputed the spectra from photom on, on the same rates; the
    diff names the spectra that moved, by the ratio of the two photom files (truth)."""
    import json
    from pathlib import Path

    import numpy as np

    from flows.runner import load_reference
    from flows.workspace import Workspace
    from transforms import spectral as S

    n_spec = len(re.findall(r"\n  (?:FS|LRS)\s+\S+: stage 1 gave", text))
    assert n_spec >= 2  # one FS and one LRS observation at least
    for label in ("first run: build 11.1.1", "candidate run: build 11.2"):
        block = text.split(label)[1]
        assert re.search(rf"spec2\s+{n_spec} tasks\s+0 hits\s+{n_spec} computed", block), label
        assert re.search(r"spec3\s+(\d+) tasks\s+0 hits\s+\1 computed", block), label
    assert re.search(r"photom\s+jwst_nirspec_photom_\d+\.fits -> jwst_nirspec_photom_\d+", text)
    for mode in ("FS", "LRS"):  # same rate, steps before photom the same recipes, photom on new
        m = re.search(rf"\n  {mode}\s+\S+: stage 1 gave the same rate; spec2 (\d+) steps with "
                      r"11\.1\.1's recipes \(assign_wcs \.\. \w+\), \d+ new \(photom, ", text)
        assert m and int(m[1]) >= 5, mode
    ws = Workspace(home)
    crds = Path(ws.crds_path)
    rows = ws.catalog.sql(
        "SELECT DISTINCT subject, product_id FROM run_steps WHERE build = '11.1.1' AND "
        "stage = 'spec2' AND status = 'ok' AND product_id LIKE '{%'").to_pylist()
    assert len(rows) == n_spec
    moved = text.split("spectra that moved")[1]
    for r in rows:
        mode = "FS" if r["subject"].endswith("_nrs1") else "LRS"
        olds = re.findall(r"photom\s+(jwst_\w+_photom_\d+\.fits) -> (jwst_\w+_photom_\d+\.fits)",
                          text.split("candidate run")[0])
        inst = "nirspec" if mode == "FS" else "miri"
        old, new = next((a, b) for a, b in olds if f"_{inst}_" in a)
        pa, pb = (load_reference(str(next(crds.rglob(f)))) for f in (old, new))
        n = int(pa.arrays["phot_table.nelem"][0])
        lam = np.asarray(pa.arrays["phot_table.wavelength"][0][:n], float)
        ra = np.asarray(pa.arrays["phot_table.relresponse"][0][:n], float)
        rb = np.asarray(pb.arrays["phot_table.relresponse"][0][:n], float)
        keep = ra != 0
        o = np.argsort(lam[keep])
        x1d = ws.store.get(json.loads(r["product_id"])["x1d"])
        (sp,) = S.spectra(x1d)
        w = np.asarray(sp.columns["wavelength"], float)
        f = np.asarray(sp.columns["flux"], float)
        ok = np.isfinite(w) & np.isfinite(f) & (f != 0)
        ratio = (rb / np.where(keep, ra, 1.0))[keep][o]
        truth = float(np.median(np.interp(w[ok], lam[keep][o], ratio)))
        got = re.search(rf"\n    {mode}\s+{re.escape(sp.name)}\s+spec2\s+x1d\s+median (\S+)\s+"
                        rf"blue (\S+)\s+red (\S+).*{r['subject']}", moved)
        assert got, (mode, sp.name)
        assert abs(float(got[1]) - truth) < 0.002, (mode, got[1], truth)
        assert abs(truth - 1) > 0.02  # a few percent: well over the noise of identical data
        blue, red = float(got[2]), float(got[3])
        assert abs(red - blue) > 0.02  # the wavelength structure of the change shows
    assert re.search(r"\n    FS\s+s\d{5}\s+spec3\s+c1d\s+median 1\.0[23]", moved)
    assert "Spectra" in html or "spectra" in html
