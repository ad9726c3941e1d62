"""Issue #15's "done when", as a user types it: ``calops simulate`` (the default program) +
``calops run all --build 11.3`` on a fresh workspace + ``calops export`` give, for NIRSpec
fixed slit (observation 4), the MIRI LRS nod pair (5) and NIRSpec MOS (6), the spec2
``cal``/``s2d``/``x1d`` of every exposure and the spec3 ``s2d``/``x1d``/``c1d`` of every
source, under JWST names, opening in stdatamodels as the right models; the spectra match the
simulator's truth in the continuum.

Only the spectroscopic exposures are run (``calops run all`` on their files): the imaging
parts have their own end-to-end tests. ~3-5 min on the shared 2-core machine (the MOS part is
one full-frame NIRSpec exposure): slow.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from flows import prefect_env

prefect_env.configure()
dm = pytest.importorskip("stdatamodels.jwst.datamodels")

pytestmark = pytest.mark.slow

SPEC2 = {  # exposure -> the model each spec2 product opens as
    "jw01234004001_01101_00001_nrs1": {"cal": "MultiSlitModel", "s2d": "MultiSlitModel",
                                       "x1d": "MultiSpecModel"},
    "jw01234005001_01101_00001_mirimage": {"cal": "ImageModel", "s2d": "SlitModel",
                                           "x1d": "MultiSpecModel"},
    "jw01234005001_01101_00002_mirimage": {"cal": "ImageModel", "s2d": "SlitModel",
                                           "x1d": "MultiSpecModel"},
    "jw01234006001_01101_00001_nrs1": {"cal": "MultiSlitModel", "s2d": "MultiSlitModel",
                                       "x1d": "MultiSpecModel"},
}
SPEC3 = {  # stage-3 product name (per source) -> (observation, source id)
    "jw01234-o004_s00001_nirspec_f100lp-g140m-s200a1": (4, 1),
    "jw01234-o005_t002_miri_p750l": (5, 1),  # t002: the association's second target
    "jw01234-o006_s00010_nirspec_f100lp-g140m": (6, 10),  # point source
    "jw01234-o006_s00011_nirspec_f100lp-g140m": (6, 11),  # extended galaxy
    "jw01234-o006_b00003_nirspec_f100lp-g140m": (6, 3),  # the background-only slitlet
}
SPEC3_MODELS = {"s2d": "SlitModel", "x1d": "MultiSpecModel", "c1d": "CombinedSpecModel"}


def _calops(*argv: str) -> None:
    from flows.cli import main

    code = main(list(argv))
    if code != 0:  # not an AssertionError: a broken setup is an error, not a failed check
        raise RuntimeError(f"calops {' '.join(argv)} exited {code}")


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    top = tmp_path_factory.mktemp("specall")
    sim, home, out = top / "sim", str(top / "home"), top / "out"
    _calops("simulate", str(sim), "--seed", "3", "--without", "ifu")  # IFU: its own test
    _calops("--home", home, "init", "--crds", str(sim / "crds"))
    # the spectroscopic files; the glob also matches the MOS _msa.fits, which ingest skips
    _calops("--home", home, "run", "all", str(sim / "uncal" / "jw0123400[456]*.fits"),
            "--build", "11.3")
    _calops("--home", home, "export", "11.3", str(out))
    return sim, home, out


def _open(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dm.open(path)


def test_simulate_writes_the_msa_file_beside_the_mos_uncal_and_ingest_reads_it(done):
    from flows.workspace import Workspace
    from store.fits import read_uncal
    from store.spec_references import read_msa_metafile

    sim, home, _ = done
    uncal = read_uncal(sim / "uncal" / "jw01234006001_01101_00001_nrs1_uncal.fits")
    assert uncal.meta["instrument.msa_metadata_file"] == "jw01234006001_01_msa.fits"
    assert "msa.shutter_info" not in uncal.meta  # as a JWST uncal: the file holds it
    msa = read_msa_metafile(sim / "uncal" / "jw01234006001_01_msa.fits")
    assert {r["source_id"] for r in msa["msa.source_info"]} == {10, 11}
    ws = Workspace.resolve(home)
    exp = ws.catalog.current_exposure("jw01234006001_01101_00001_nrs1")
    pixels = ws.catalog.product_meta(exp["pixels_id"])
    assert pixels["msa.shutter_info"] == msa["msa.shutter_info"]


def test_spec2_and_spec3_products_export_under_jwst_names_and_open_in_stdatamodels(done):
    _, _, out = done
    for stem, kinds in SPEC2.items():
        for kind, model in kinds.items():
            m = _open(out / f"{stem}_{kind}.fits")
            assert type(m).__name__ == model, (stem, kind, type(m).__name__)
    for name in SPEC3:
        for kind, model in SPEC3_MODELS.items():
            m = _open(out / f"{name}_{kind}.fits")
            assert type(m).__name__ == model, (name, kind, type(m).__name__)
    # MOS spec2: the two sources' slitlets and the background-only one
    cal = _open(out / "jw01234006001_01101_00001_nrs1_cal.fits")
    assert sorted(s.source_id for s in cal.slits)[-2:] == [10, 11]
    # LRS stage 3 combined the nods: two inputs per wavelength over the band
    c1d = _open(out / "jw01234-o005_t002_miri_p750l_c1d.fits")
    assert np.median(np.asarray(c1d.spec_table["N_INPUT"])) == 2
    asns = {p.name for p in out.glob("*_asn.json")}
    assert {"jw01234-o004_nirspec_f100lp-g140m_asn.json",
            "jw01234-o005_t002_miri_p750l_asn.json",
            "jw01234-o006_nirspec_f100lp-g140m_asn.json"} <= asns, asns
    lrs = json.loads((out / "jw01234-o005_t002_miri_p750l_asn.json").read_text())
    assert len(lrs["products"][0]["members"]) == 2


def _truth_fnu(observation: int, source_id: int, lam_um: np.ndarray):
    from transforms.sim.all_program import all_program

    part = {4: "fs", 5: "lrs", 6: "mos"}[observation]
    spec = next(s for s in all_program().spectra if s.name == part)
    src = next(s for s in spec.sources if s.id == source_id)
    return src, src.spectrum.fnu(lam_um) * 1e6  # MJy -> Jy


# Point sources' continuum (lines masked, 5-10 um for LRS), median of x1d / expected F_nu.
# The expectation is the true F_nu times what the program itself declares:
# - build 11.3 follows the latest context, jwst_0002.pmap, the candidate's, whose FS and LRS
#   photom are deliberately recalibrated (``all_program.SPEC_RESPONSE_CHANGES``: FS x1.03 rising
#   2% to the red, LRS x0.96 falling 3%): calibrated spectra move by that factor;
# - LRS: the simulated extract1d box (11 px, 1.22") holds 95-99% of the PSF (its halo, 12% of
#   the light at 5x the core's width, reaches past it) and calops' cache has no APCORR: the
#   expectation keeps the fraction of the simulator's PSF inside the extraction box, relative to
#   what the slit passes (pathloss corrects to the whole slit).
# FS and MOS are one exposure each, with no nod and no background region in the simulated
# extract1d reference, so the sky (and detector pedestal) in the box stays in: FS +2.5% (seed 3),
# MOS +1.4%. Measured, seed 3 (pytest -s): x1d/truth FS 1.063, MOS 1.014, LRS spec3 0.948,
# per nod 0.951, 0.951; over the expectation FS 1.03, LRS ~0.98-1.0.
POINT = {"jw01234-o004_s00001_nirspec_f100lp-g140m-s200a1": 0.05,
         "jw01234-o006_s00010_nirspec_f100lp-g140m": 0.05,
         "jw01234-o005_t002_miri_p750l": 0.02}
LRS_NOD_ARCSEC = 0.94  # each nod's source sits this far from the slit centre (along it)


def _response_change(sim, obs: int, lam: np.ndarray) -> np.ndarray:
    """The factor jwst_0002.pmap's recalibrated photom puts on calibrated spectra (1 where the
    mode's photom did not change)."""
    from store import spec_references as SR
    from transforms.sim.all_program import SPEC_RESPONSE_CHANGES

    exp_type = {4: "NRS_FIXEDSLIT", 5: "MIR_LRS-FIXEDSLIT", 6: "NRS_MSASPEC"}[obs]
    change = next((c for c in SPEC_RESPONSE_CHANGES if c.exp_type == exp_type), None)
    if change is None:
        return np.ones_like(lam)
    sel = json.loads((sim / "truth" / "expected_references.json").read_text())["jwst_0002.pmap"]
    stem = {4: "jw01234004001", 5: "jw01234005001", 6: "jw01234006001"}[obs]
    name = next(v["photom"] for k, v in sel.items() if k.startswith(stem))
    path = next((sim / "crds" / "references").rglob(name))
    w = np.asarray(SR.read(path).arrays["phot_table.wavelength"], float)
    w = w[np.isfinite(w) & (w > 0)]
    return change.factor(lam, w.min(), w.max())


def _lrs_box_fraction(lam: np.ndarray, width_px: float) -> np.ndarray:
    """Fraction of the simulator's LRS PSF (with its detector blur) inside an extraction box
    ``width_px`` wide centred on the source, over the fraction the slit passes along its length
    (the source LRS_NOD_ARCSEC from the slit centre)."""
    from transforms.instruments.miri import lrs as L
    from transforms.sim import spectra as SP

    sc, sh, fh = SP.psf_params("MIRI", lam)
    blur = SP.detector_blur("MIRI", lam) * 0.1108
    sc, sh = np.hypot(sc, blur), np.hypot(sh, blur)
    h = 0.5 * width_px * 0.1108
    half = 0.5 * L.SLIT_LENGTH
    return (SP.profile_fraction(-h, h, 0.0, sc, sh, fh)
            / SP.profile_fraction(-half + LRS_NOD_ARCSEC, half + LRS_NOD_ARCSEC, 0.0, sc, sh, fh))


def _ratio(sim, obs: int, sid: int, tab, width_px: float | None = None) -> tuple[float, float]:
    """(median of flux / true F_nu, median of flux / expected F_nu) in the continuum."""
    lam = np.asarray(tab["WAVELENGTH"], float)
    flux = np.asarray(tab["FLUX"], float)
    src, fnu = _truth_fnu(obs, sid, lam)
    ok = np.isfinite(flux) & np.isfinite(lam) & (flux != 0)
    for c in src.spectrum.centroids():
        ok &= np.abs(lam - c) > (0.4 if obs == 5 else 0.01)
    if obs == 5:
        ok &= (lam > 5) & (lam < 10)
    assert ok.sum() > 50
    expected = fnu * _response_change(sim, obs, lam)
    if obs == 5:
        expected = expected * _lrs_box_fraction(lam, width_px)
    return (float(np.median(flux[ok] / fnu[ok])), float(np.median(flux[ok] / expected[ok])))


def _lrs_width(m) -> float:
    sp = m.spec[0]
    return float(sp.extraction_xstop - sp.extraction_xstart + 1)


@pytest.mark.parametrize("name", sorted(POINT))
def test_stage3_point_source_spectra_match_the_truth_in_the_continuum(done, name):
    sim, _, out = done
    obs, sid = SPEC3[name]
    x1d = _open(out / f"{name}_x1d.fits")
    width = _lrs_width(x1d) if obs == 5 else None  # the c1d combines spectra as wide
    for kind in ("x1d", "c1d"):
        m = x1d if kind == "x1d" else _open(out / f"{name}_{kind}.fits")
        raw, ratio = _ratio(sim, obs, sid, m.spec[0].spec_table if kind == "x1d"
                            else m.spec_table, width)
        print(f"{name} {kind}: x/truth {raw:.3f}, x/expected {ratio:.3f}")  # pytest -s
        assert ratio == pytest.approx(1.0, abs=POINT[name]), (name, kind, raw, ratio)


def test_lrs_per_nod_spec2_x1d_match_the_truth(done):
    """Each nod's own spec2 x1d (the other nod subtracted) holds its positive trace: the
    s2d of resample_spec 1.1 carries its own WCS, so extract_1d places the aperture on the
    nod's dither position (resample_spec 1.0's s2d kept the cal's full-frame WCS: ~0)."""
    sim, _, out = done
    for stem in ("jw01234005001_01101_00001_mirimage", "jw01234005001_01101_00002_mirimage"):
        m = _open(out / f"{stem}_x1d.fits")
        raw, ratio = _ratio(sim, 5, 1, m.spec[0].spec_table, _lrs_width(m))
        print(f"{stem} x1d: x/truth {raw:.3f}, x/expected {ratio:.3f}")
        assert ratio == pytest.approx(1.0, abs=POINT["jw01234-o005_t002_miri_p750l"]), ratio


def test_mos_extended_source_and_background_slitlet(done):
    """The extended galaxy is seen (its x1d holds the part of it in the shutter: positive,
    below its total flux); the background-only slitlet is extracted as its own source."""
    _, _, out = done
    x1d = _open(out / "jw01234-o006_s00011_nirspec_f100lp-g140m_x1d.fits")
    t = x1d.spec[0].spec_table
    lam, flux = np.asarray(t["WAVELENGTH"], float), np.asarray(t["FLUX"], float)
    _, fnu = _truth_fnu(6, 11, lam)
    r = np.nanmedian(flux / fnu)
    assert 0.2 < r < 1.0, r
    assert x1d.spec[0].source_type == "EXTENDED"
    bkg = _open(out / "jw01234-o006_b00003_nirspec_f100lp-g140m_x1d.fits")
    assert np.isfinite(np.asarray(bkg.spec[0].spec_table["FLUX"], float)).any()
