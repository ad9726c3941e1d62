"""The jwst ecosystem on calops's files, unmodified: jwst 3.0's own pipelines and `crds bestrefs`
run on calops's generated CRDS cache and exports as they are, and agree with calops.

- ``calops stage detector1`` on an uncal, with override references written by stdatamodels'
  reference models, against jwst's Detector1Pipeline on the same files (same overrides; every
  other reference type from the generated cache, which answers N/A where JWST's would).
- jwst's Image2Pipeline on a calops-exported rate with CRDS_PATH at calops's cache and no
  overrides: its cal equals calops's cal, bit for bit.
- `crds bestrefs` on the uncal files, every reference type, no error.

jwst runs in a child interpreter with the offline CRDS environment of FIELD-NOTES.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

pytest.importorskip("jwst", reason="jwst is the test-only reference implementation")

from flows.cli import main  # noqa: E402

EXP = "jw01234001001_01101_00001_nrca1"
JUMP_DET = 4


def _crds_env(crds: Path, context: str) -> dict[str, str]:
    return {"CRDS_PATH": str(crds), "CRDS_MODE": "local", "CRDS_OBSERVATORY": "jwst",
            "CRDS_SERVER_URL": "https://localhost:9/jwst-serverless-mode",
            "CRDS_READONLY_CACHE": "1", "CRDS_CONTEXT": context}


def _jwst(run_python, code: str, crds: Path, context: str, timeout: float = 600) -> str:
    r = run_python(textwrap.dedent(code), timeout=timeout, **_crds_env(crds, context))
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert r.returncode == 0, out[-4000:]
    return out


STDATAMODELS = {"mask": "MaskModel", "saturation": "SaturationModel",
                "superbias": "SuperBiasModel", "linearity": "LinearityModel",
                "dark": "DarkModel", "gain": "GainModel", "readnoise": "ReadnoiseModel"}


def _stdatamodels_refs(uncal: Path, crds: Path, context: str, outdir: Path) -> dict[str, str]:
    """The references CRDS picks for the exposure, rewritten from scratch with stdatamodels'
    reference models (arrays and the header keywords stdatamodels has): files a jwst user
    could have made, with no calops metadata in them."""
    from stdatamodels.jwst import datamodels as dm

    from catalogs.crds_resolve import resolve
    from store import fits as F

    paths = resolve(F.read_uncal(uncal).meta, list(STDATAMODELS), context, crds)
    out = {}
    for rt, cls in STDATAMODELS.items():
        ref = F.read_reference(paths[rt])
        m = getattr(dm, cls)(**{k: np.array(v) for k, v in ref.arrays.items() if "." not in k})
        for key, value in ref.meta.items():
            if value is None or isinstance(value, (dict, list)):
                continue
            obj, (*path, leaf) = m.meta, key.split(".")
            try:
                for p in path:
                    obj = getattr(obj, p)
                setattr(obj, leaf, value)
            except (AttributeError, KeyError, ValueError, TypeError):
                pass  # calops-only metadata: not in the stdatamodels schema
        m.meta.reftype, m.meta.author, m.meta.pedigree = rt.upper(), "test", "DUMMY"
        m.meta.description, m.meta.useafter = f"{rt} (stdatamodels)", "2022-01-01T00:00:00"
        out[rt] = str(outdir / f"my_{rt}.fits")
        m.save(out[rt])
        m.close()
    return out


@pytest.mark.slow
def test_stage_detector1_agrees_with_jwst_detector1pipeline(sim_dir, tmp_path, run_python):
    """Measured here: every pixel finite in both or neither; DQ identical except JUMP_DET on
    0.2% of the pixels (calops's jump test statistic uses the read-noise reference,
    docs/validation.md); elsewhere rates within 1.4e-5 DN/s (float32 rounding; ipc runs on
    both sides since the simulator's cache has an ipc reference), ERR and VAR_RNOISE within
    4e-7, VAR_POISSON within 2e-5 relative or 1.4e-5 absolute where it is near zero."""
    crds, ctx = sim_dir / "crds", "jwst_0003.pmap"
    uncal = sim_dir / "uncal" / f"{EXP}_uncal.fits"
    refs = _stdatamodels_refs(uncal, crds, ctx, tmp_path)
    for f in refs.values():  # no calops node: calops reads them as any jwst reference
        assert "ASDF" not in fits.open(f) or b"calops" not in fits.getdata(f, "ASDF").tobytes()
    argv = ["stage", "detector1", str(uncal), "--crds", str(crds), "--context", ctx,
            "-o", str(tmp_path / "calops")]
    for rt, f in refs.items():
        argv += [f"--override-{rt}", f]
    assert main(argv) == 0
    _jwst(run_python, f"""
        import json
        from jwst.pipeline import Detector1Pipeline
        refs = json.loads({json.dumps(json.dumps(refs))})
        p = Detector1Pipeline()
        for name in p.step_defs:  # the same overrides; the rest from the calops cache
            step = getattr(p, name)
            for rt in step.reference_file_types:
                if rt in refs:
                    setattr(step, "override_" + rt, refs[rt])
        p.save_results = True
        p.output_dir = {str(tmp_path / "jwst")!r}
        p.run({str(uncal)!r})
        """, crds, ctx)
    a = fits.open(tmp_path / "calops" / f"{EXP}_rate.fits")
    b = fits.open(tmp_path / "jwst" / f"{EXP}_rate.fits")
    for kw in ("S_DQINIT", "S_SATURA", "S_IPC", "S_SUPERB", "S_REFPIX", "S_LINEAR", "S_DARK",
               "S_JUMP", "S_RAMP"):
        assert a[0].header[kw] == b[0].header[kw] == "COMPLETE", kw
    assert a[0].header["R_DARK"] == "my_dark.fits"
    da, db = a["SCI"].data, b["SCI"].data
    assert np.array_equal(np.isfinite(da), np.isfinite(db))
    dqa, dqb = a["DQ"].data, b["DQ"].data
    assert not np.any((dqa ^ dqb) & ~np.uint32(JUMP_DET)), "DQ differs beyond JUMP_DET"
    assert np.mean(dqa != dqb) < 0.01, np.mean(dqa != dqb)
    same = np.isfinite(da) & (dqa == dqb)  # where both found the same jumps
    assert np.allclose(da[same], db[same], rtol=1e-6, atol=2e-5), \
        np.quantile(np.abs(da - db)[same], [0.5, 0.99, 1])  # float32 rounding, no more
    for ext in ("ERR", "VAR_RNOISE", "VAR_POISSON"):
        x, y = a[ext].data[same], b[ext].data[same]
        assert np.allclose(x, y, rtol=5e-5, atol=2e-5), (ext, np.max(np.abs(x - y)))


@pytest.mark.slow
def test_jwst_image2_on_an_exported_rate_equals_calops_cal(sim_ws, tmp_path, run_python):
    """No override, no parameter: jwst's reference prefetch and every step find what they need
    (or N/A) in calops's cache, and the cal is calops's, bit for bit."""
    from flows import stages
    from flows.export import export_build

    for st in ("detector1", "image2"):
        assert stages.run(sim_ws, "11.1.1", st, EXP, "t").status == "ok"
    out = tmp_path / "export"
    export_build(sim_ws, "11.1.1", out)
    _jwst(run_python, f"""
        from jwst.pipeline import Image2Pipeline
        p = Image2Pipeline()
        p.save_results = True
        p.output_dir = {str(tmp_path / "jwst")!r}
        p.run({str(out / f"{EXP}_rate.fits")!r})
        """, Path(sim_ws.crds_path), "jwst_0001.pmap")
    a = fits.open(out / f"{EXP}_cal.fits")
    b = fits.open(tmp_path / "jwst" / f"{EXP}_cal.fits")
    for ext in ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
        assert np.array_equal(a[ext].data, b[ext].data, equal_nan=True), ext
    for kw in ("S_WCS", "S_FLAT", "S_PHOTOM", "R_FLAT", "R_PHOTOM", "R_AREA", "R_DISTOR"):
        assert a[0].header[kw] == b[0].header[kw], kw
    assert b[0].header["R_FILOFF"] == "N/A"  # answered N/A by the calops cache
    from stdatamodels.jwst import datamodels as dm

    with dm.open(out / f"{EXP}_cal.fits") as ma, dm.open(tmp_path / "jwst" / f"{EXP}_cal.fits") as mb:
        y, x = np.mgrid[0:160:40, 0:160:40]
        ra_a, dec_a = ma.meta.wcs(x, y)
        ra_b, dec_b = mb.meta.wcs(x, y)
        assert np.allclose(ra_a, ra_b, atol=1e-9, rtol=0) and np.allclose(dec_a, dec_b,
                                                                          atol=1e-9, rtol=0)


def test_crds_bestrefs_runs_on_the_generated_cache(sim_dir):
    """`crds bestrefs` on every simulated uncal, every reference type: the dark rmap selects on
    NOUTPUTS as jwst's datamodels supply it, and every type calops has no file of is N/A."""
    files = sorted(str(f) for f in (sim_dir / "uncal").glob("*_uncal.fits"))
    env = {**__import__("os").environ, **_crds_env(sim_dir / "crds", "jwst_0003.pmap")}
    r = subprocess.run([sys.executable, "-m", "crds.bestrefs", "--files", *files,
                        "--new-context", "jwst_0003.pmap", "--print-new-references"],
                       capture_output=True, text=True, timeout=600, env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "0 errors" in out, out[-3000:]
    lines = [line.split() for line in r.stdout.splitlines() if line.startswith(files[0])]
    got = {row[2]: row[-1] for row in lines}
    assert got["dark"].startswith("jwst_nircam_dark_") and got["wavelengthrange"] == "n/a"
    assert got["fflat"] == "n/a" and got["specwcs"] == "n/a"
