"""The default program's IFU observations end to end, through the CLI on a fresh workspace:
the MIRI MRS (observation 7) and NIRSpec IFU (observation 8) dithers as ``calops simulate``
writes them (level uncal, their references merged into one CRDS cache), ``calops run all
--build 11.3`` (detector1, spec2, spec3) and ``calops export``: per exposure cal, s3d and x1d,
per observation the combined s3d and x1d, under JWST names, opening in stdatamodels, and the
point source's spectrum as the simulator made it."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # full-frame ramps: minutes on the shared 2-core machine

SEED = 3
BUILD = "11.3"
dm = pytest.importorskip("stdatamodels.jwst.datamodels")


def _main(*argv) -> int:
    from flows.cli import main

    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    from catalogs.crds_cache import merged_program_contexts, write_cache
    from flows.commands.simulate import write_spec_truth
    from flows.prefect_env import configure
    from store.fits import write_uncal
    from transforms.sim import ifu_program as IFU
    from transforms.sim.all_program import AllSpec, simulate_all

    base = tmp_path_factory.mktemp("ifuall")
    configure(str(base))
    # what `calops simulate` writes for these parts (flows/commands/simulate._simulate_all)
    prog = simulate_all(AllSpec("ifu", (), (IFU.mrs_program(), IFU.nrs_ifu_program())), SEED)
    (base / "uncal").mkdir()
    (base / "truth").mkdir()
    files = [write_uncal(e.uncal, base / "uncal" / e.name) for e in prog.exposures]
    for e in prog.exposures:
        write_spec_truth(e.name, e.truth, base / "truth")
    contexts, _ = merged_program_contexts(prog)
    write_cache(base / "crds", contexts)
    home = base / "home"
    rc = {"init": _main("--home", home, "init", "--crds", base / "crds"),
          "ingest": _main("--home", home, "ingest", *files),
          "run": _main("--home", home, "run", "all", "--build", BUILD),
          "export": _main("--home", home, "export", BUILD, base / "out")}
    return base, prog, rc


def _open(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dm.open(path)


def test_run_all_makes_and_exports_cubes_and_spectra(ran):
    base, prog, rc = ran
    assert rc == {"init": 0, "ingest": 0, "run": 0, "export": 0}
    out = base / "out"
    names = {p.name for p in out.iterdir()}
    for e in prog.exposures:
        stem = e.name.replace("_uncal.fits", "")
        for kind in ("rate", "cal", "s3d", "x1d"):
            assert f"{stem}_{kind}.fits" in names, (stem, kind, sorted(names))
        cal = _open(out / f"{stem}_cal.fits")
        assert type(cal).__name__ == "IFUImageModel"
        assert cal.meta.cal_step.photom == "COMPLETE"
    # spec3: one s3d and one x1d per cube, named as jwst's cube_build names them
    cubes = {7: ("miri", ("ch1-short", "ch2-short")), 8: ("nirspec", ("g235m-f170lp",))}
    for obs, (inst, names_) in cubes.items():
        assert f"jw01234-o{obs:03d}_t001_{inst}_asn.json" in names
        for cube in names_:
            for kind, model in (("s3d", "IFUCubeModel"), ("x1d", "MultiSpecModel")):
                n = f"jw01234-o{obs:03d}_t001_{inst}_{cube}_{kind}.fits"
                assert n in names, (n, sorted(names))
                m = _open(out / n)
                assert type(m).__name__.endswith(model), (n, type(m).__name__)
                if kind == "s3d":
                    assert m.data.ndim == 3 and np.isfinite(m.data).any()
                    assert m.meta.wcs is not None


def _spectrum(path: Path) -> tuple[np.ndarray, np.ndarray]:
    m = _open(path)
    spec = m.spec[0].spec_table
    return np.asarray(spec["WAVELENGTH"], float), np.asarray(spec["FLUX"], float)


@pytest.mark.parametrize("name", ("jw01234-o007_t001_miri_ch1-short_x1d.fits",
                                  "jw01234-o007_t001_miri_ch2-short_x1d.fits",
                                  "jw01234-o008_t001_nirspec_g235m-f170lp_x1d.fits"))
def test_combined_x1d_is_the_point_sources_spectrum(ran, name):
    """The spec3 x1d of each combined cube against the simulator's point source (continuum and
    lines through the instrument's LSF, ``ifu_scene.point_spectrum``): median flux ratio
    within 5 %, 5th-95th percentile within 15 % (uncal level, 5 groups: the noise of a 14 s
    MRS / 54 s NIRSpec ramp; docs/ifu.md gives the measured values)."""
    from transforms.sim import ifu_program as IFU
    from transforms.sim import ifu_scene as SC

    base, prog, _ = ran
    obs = int(name[9:12])
    spec = next(s for s in prog.spec.spectra
                if {e.observation for e in s.exposures} == {obs})
    lam, flux = _spectrum(base / "out" / name)
    truth = SC.point_spectrum(IFU.scene(spec).points[0], lam, IFU.optics(spec))
    ok = np.isfinite(flux) & (truth > 0)
    assert ok.sum() > 0.8 * lam.size
    ratio = flux[ok] / truth[ok]
    p5, med, p95 = np.percentile(ratio, [5, 50, 95])
    print(f"{name}: x1d / truth median {med:.4f} (p5 {p5:.3f}, p95 {p95:.3f}), "
          f"{ok.sum()} planes")
    assert abs(med - 1) < 0.05, med
    assert 0.85 < p5 and p95 < 1.15, (p5, p95)
