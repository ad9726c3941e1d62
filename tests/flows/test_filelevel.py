"""File-level runs (`calops step`, `calops stage`): a jwst user's habits, no workspace needed.

The truth here is calops's own workspace runner: a file-level stage under a build that pins
nothing computes the same recipe keys and product ids as the runner does for the same inputs,
references and parameters; overrides, N/A, parameter sources and association files change what
they should and are recorded in the files' headers.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from flows import filelevel
from flows.cli import main

NRC = ("jw01234001001_01101_00001_nrca1", "jw01234001001_01101_00002_nrca1")


def _uncal(sim_dir: Path, eid: str) -> str:
    return str(sim_dir / "uncal" / f"{eid}_uncal.fits")


def _workspace(root: Path, sim_dir: Path, ingest: bool):
    from flows.ingest import ingest_file
    from flows.workspace import Workspace

    ws, _ = Workspace.init(root)
    shutil.rmtree(ws.crds_path)
    shutil.copytree(sim_dir / "crds", ws.crds_path)
    for f in sorted((sim_dir / "uncal").glob("*.fits")) if ingest else ():
        ingest_file(ws, f, "test")
    return ws


def _calops(*argv: str) -> None:
    rc = main([str(a) for a in argv])
    assert rc == 0, f"calops {' '.join(map(str, argv))} exited {rc}"


@pytest.fixture(scope="module")
def staged(sim_dir, tmp_path_factory):
    """detector1 and image2 of the NIRCam dither pair, file-level (options before the files)."""
    out = tmp_path_factory.mktemp("filelevel")
    for eid in NRC:
        _calops("stage", "detector1", "--crds", sim_dir / "crds", "-o", out / "d1",
                _uncal(sim_dir, eid))
    _calops("stage", "calwebb_image2", *sorted((out / "d1").glob("*_rate.fits")),
            "--crds", sim_dir / "crds", "--output_dir", out / "i2")
    return out


def test_stage_outputs_are_jwst_named_with_file_level_provenance(staged):
    rates = sorted(p.name for p in (staged / "d1").iterdir())
    assert rates == sorted(f"{e}_{s}.fits" for e in NRC for s in ("rate", "rateints"))
    assert sorted(p.name for p in (staged / "i2").iterdir()) == sorted(
        f"{e}_{s}.fits" for e in NRC for s in ("cal", "i2d"))
    h = fits.getheader(staged / "i2" / f"{NRC[0]}_cal.fits")
    sci = fits.getheader(staged / "i2" / f"{NRC[0]}_cal.fits", "SCI")
    assert h["CO_BUILD"] == "file-level" and h["CAL_VER"].startswith("calops-")
    assert h["CRDS_CTX"] == "jwst_0003.pmap"  # the cache's operational context
    assert h["R_FLAT"].startswith("crds://jwst_nircam_flat_") and h["S_FLAT"] == "COMPLETE"
    assert h["CO_PID"].startswith("sha256:") and h["CO_RKEY"].startswith("sha256:")
    assert "RA_REF" in sci and "EPH_TYPE" in sci  # the pointing is in the file
    r = fits.getheader(staged / "d1" / f"{NRC[0]}_rate.fits", "SCI")
    assert r["RA_REF"] == sci["RA_REF"]


def test_file_level_stage_equals_the_workspace_runner(staged, sim_dir, tmp_path):
    """Same build plan, references and inputs -> the runner's recipe keys and product ids."""
    from catalogs.builds import Build, dump_manifest
    from flows import stages

    ws = _workspace(tmp_path / "home", sim_dir, ingest=True)
    plain = Build("plain", "development", "x", "y", "latest")  # pins nothing, as file-level
    Path(ws.builds.dir, "plain.toml").write_text(dump_manifest(plain))  # (seeds the book)
    for stage, f, sfx in (("detector1", "d1", "rate"), ("image2", "i2", "cal")):
        out = stages.run(ws, "plain", stage, NRC[0], "t")
        assert out.status == "ok", out.error
        recipe, _ = stages.recipe_for(ws, "plain", stage, NRC[0])
        h = fits.getheader(staged / f / f"{NRC[0]}_{sfx}.fits")
        assert h["CO_PID"] == out.outputs[sfx]
        assert h["CO_RKEY"] == recipe.output_keys[sfx]


def test_asn_json_as_jwst_writes_it(staged, sim_dir, tmp_path):
    """stage 3 from an association file (members relative to it) makes the same products as
    from the cal files (associated by JWST's rule); the names come from the product name."""
    asn = {"asn_type": "image3", "asn_rule": "candidate_Asn_Lv3Image", "asn_id": "o001",
           "asn_pool": "test", "program": "01234", "target": "t001",
           "version_id": None, "code_version": "3.0.0", "degraded_status": "No known degraded "
           "exposures in association.", "constraints": "none",
           "products": [{"name": "jw01234-o001_t001_nircam_clear-f150w", "members": [
               {"expname": f"{e}_cal.fits", "exptype": "science", "exposerr": None,
                "asn_candidate": "('o001', 'observation')"} for e in NRC]
               + [{"expname": "not_there_bkg.fits", "exptype": "background"}]}]}
    d = tmp_path / "asn"
    d.mkdir()
    for e in NRC:
        shutil.copy(staged / "i2" / f"{e}_cal.fits", d)
    (d / "jw01234-o001_image3_00001_asn.json").write_text(json.dumps(asn, indent=4))
    _calops("stage", "image3", d / "jw01234-o001_image3_00001_asn.json", "--crds",
            sim_dir / "crds", "-o", tmp_path / "a")
    _calops("stage", "Image3Pipeline", *sorted(d.glob("*_cal.fits")), "--crds", sim_dir / "crds",
            "-o", tmp_path / "b")
    name = "jw01234-o001_t001_nircam_clear-f150w"
    for sfx in ("i2d.fits", "cat.ecsv"):
        assert (tmp_path / "a" / f"{name}_{sfx}").is_file()
    ha = fits.getheader(tmp_path / "a" / f"{name}_i2d.fits")
    hb = fits.getheader(tmp_path / "b" / f"{name}_i2d.fits")
    assert ha["CO_PID"] == hb["CO_PID"] and ha["CO_RKEY"] == hb["CO_RKEY"]


def test_overrides_and_na_are_recorded_as_such(staged, sim_dir, tmp_path):
    """An override's file name goes to R_*, its path to CO_NOTE; N/A skips the step that needs
    it (S_* SKIPPED, R_* N/A) as jwst does. A copy of CRDS's own file computes the same
    product (its name, part of the recipe, makes another recipe key)."""
    rate = staged / "d1" / f"{NRC[0]}_rate.fits"
    crds_flat = fits.getheader(staged / "i2" / f"{NRC[0]}_cal.fits")["R_FLAT"][len("crds://"):]
    mine = tmp_path / "my_flat.fits"
    shutil.copy(sim_dir / "crds" / "references" / "jwst" / "nircam" / crds_flat, mine)
    _calops("stage", "image2", rate, "--crds", sim_dir / "crds", "-o", tmp_path / "o",
            f"--override_flat={mine}", "--override-photom", "N/A")
    h = fits.getheader(tmp_path / "o" / f"{NRC[0]}_cal.fits")
    assert h["R_FLAT"] == "my_flat.fits" and h["R_PHOTOM"] == "N/A"
    assert h["S_FLAT"] == "COMPLETE" and h["S_PHOTOM"] == "SKIPPED"
    assert str(mine) in h["CO_NOTE"] and "photom=N/A" in h["CO_NOTE"]
    assert "photom skipped: photom is N/A" in h["CO_NOTE"]
    _calops("stage", "image2", rate, "--crds", sim_dir / "crds", "-o", tmp_path / "p",
            "--steps.flat_field.override_flat", mine)
    base = fits.getheader(staged / "i2" / f"{NRC[0]}_cal.fits")
    h2 = fits.getheader(tmp_path / "p" / f"{NRC[0]}_cal.fits")
    assert h2["CO_PID"] == base["CO_PID"] and h2["CO_RKEY"] != base["CO_RKEY"]


def test_a_wrong_override_or_parameter_is_refused_in_one_line(staged, sim_dir, capsys):
    rate = staged / "d1" / f"{NRC[0]}_rate.fits"
    gain = next((sim_dir / "crds" / "references" / "jwst" / "nircam").glob("*gain*"))
    assert main(["stage", "image2", str(rate), "--crds", str(sim_dir / "crds"),
                 "--override-flat", str(gain)]) == 2
    assert "is a gain reference (REFTYPE GAIN), not flat" in capsys.readouterr().err
    assert main(["step", "flat_field", str(rate), "--crds", str(sim_dir / "crds"),
                 "--param", "no_such=1"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"command line: step flat_field [\d.]+ has no parameter 'no_such'", err)
    assert main(["stage", "image2", str(rate), "--crds", str(sim_dir / "crds"),
                 "--steps.nope.x=1"]) == 2
    assert main(["stage", "image3", str(rate), "--crds", str(sim_dir / "crds")]) == 2
    assert "image3 combines cal files" in capsys.readouterr().err


def test_step_habits(staged, sim_dir, tmp_path):
    """jwst's class names, --NAME=VALUE, _<step>step suffixes, ramp fitting's two products
    (_0_rampfitstep, _1_rampfitstep) and a skipped step's file."""
    crds = str(sim_dir / "crds")
    out = tmp_path / "s"
    _calops("step", "jwst.jump.JumpStep", _uncal(sim_dir, NRC[0]), "--crds", crds, "-o", out,
            "--rejection_threshold=5")
    jump = out / f"{NRC[0]}_jumpstep.fits"
    h = fits.getheader(jump)
    assert h["DATAMODL"] == "RampModel" and h["S_JUMP"] == "COMPLETE"
    assert "jump.rejection_threshold=5.0 (command line)" in h["CO_NOTE"]
    _calops("step", "RampFitStep", jump, "--crds", crds, "-o", out)
    assert (out / f"{NRC[0]}_0_rampfitstep.fits").is_file()
    assert fits.getheader(out / f"{NRC[0]}_1_rampfitstep.fits")["DATAMODL"] == "CubeModel"
    _calops("step", "flat_field", staged / "d1" / f"{NRC[0]}_rate.fits", "--crds", crds,
            "-o", out, "--override-flat", "N/A")
    h = fits.getheader(out / f"{NRC[0]}_flatfieldstep.fits")
    assert h["S_FLAT"] == "SKIPPED" and h["R_FLAT"] == "N/A"
    _calops("step", "flat_field", staged / "d1" / f"{NRC[0]}_rate.fits", "--crds", crds,
            "-o", out)
    a = fits.getdata(out / f"{NRC[0]}_flatfieldstep.fits", "SCI")
    rate = fits.getdata(staged / "d1" / f"{NRC[0]}_rate.fits", "SCI")
    ok = np.isfinite(a) & np.isfinite(rate) & (rate != 0)
    assert ok.sum() > 1000 and not np.allclose(a[ok], rate[ok])  # the flat was applied


def _pars_cache(sim_program, root: Path) -> None:
    """The simulated context 1 plus pars-jumpstep and pars-detector1pipeline references."""
    from catalogs.crds_cache import CacheRef, contexts_from_program, write_cache
    from store.steppars import StepPars

    c1 = contexts_from_program(sim_program)[0]
    meta = {"reftype": "pars-jumpstep", "instrument": {"name": "NIRCAM"},
            "useafter": "2022-01-01T00:00:00", "author": "test", "pedigree": "DUMMY",
            "telescope": "JWST", "origin": "test", "description": "jump parameters"}
    jump = StepPars("jwst.jump.jump_step.JumpStep", "jump",
                    {"rejection_threshold": 5, "flag_4_neighbors": False,
                     "save_results": False, "maximum_cores": "1", "no_such_parameter": 3},
                    meta=meta)
    pipe = StepPars("jwst.pipeline.Detector1Pipeline", "Detector1Pipeline",
                    {"save_calibrated_ramp": False},
                    {"jump": StepPars("jwst.jump.jump_step.JumpStep", "jump",
                                      {"rejection_threshold": 6.5}),
                     "ipc": StepPars("jwst.ipc.ipc_step.IPCStep", "ipc", {"skip": True})},
                    meta={**meta, "reftype": "pars-detector1pipeline"})
    refs = c1.references + (
        CacheRef("pars-jumpstep", "NIRCAM", "jwst_nircam_pars-jumpstep_0001.asdf", {},
                 "2022-01-01T00:00:00", jump),
        CacheRef("pars-detector1pipeline", "NIRCAM",
                 "jwst_nircam_pars-detector1pipeline_0001.asdf", {}, "2022-01-01T00:00:00",
                 pipe))
    write_cache(root, [replace(c1, references=refs)])


def test_parameters_in_jwst_precedence(sim_program, sim_dir, tmp_path):
    """defaults < CRDS pars-<step> < CRDS pars-<pipeline> steps < --config < command line,
    each value's source in CO_NOTE; parameters calops has not are reported, not used."""
    crds = tmp_path / "crds"
    _pars_cache(sim_program, crds)
    uncal = _uncal(sim_dir, NRC[0])
    cfg = tmp_path / "d1.toml"
    cfg.write_text("[steps.jump]\nmin_jump_area = 7\n[steps.ramp_fit]\nsuppress_one_group = "
                   "false\n")

    def note(*extra):
        out = tmp_path / f"o{len(list(tmp_path.iterdir()))}"
        _calops("stage", "detector1", uncal, "--crds", crds, "-o", out, *extra)
        return fits.getheader(out / f"{NRC[0]}_rate.fits")["CO_NOTE"]

    n = note()
    assert "jump.rejection_threshold=6.5 (CRDS jwst_nircam_pars-detector1pipeline_0001.asdf)" in n
    assert "jump.flag_4_neighbors=False (CRDS jwst_nircam_pars-jumpstep_0001.asdf)" in n
    n = note("--config", cfg, "--steps.jump.rejection_threshold=8")
    assert "jump.rejection_threshold=8.0 (command line)" in n
    assert "jump.min_jump_area=7.0 (config d1.toml)" in n
    assert "ramp_fit.suppress_one_group=False (config d1.toml)" in n
    # the same parameters from a jwst ASDF configuration file
    from store.steppars import StepPars, write_step_pars

    asdf_cfg = write_step_pars(StepPars("jwst.pipeline.Detector1Pipeline", "Detector1Pipeline",
                                        {}, {"jump": StepPars("jwst.jump.JumpStep", "jump",
                                                              {"min_jump_area": 7.0})}),
                               tmp_path / "d1.asdf")
    assert "jump.min_jump_area=7.0 (config d1.asdf)" in note("--config", asdf_cfg)
    # a step on its own reads only its own pars file
    out = tmp_path / "step"
    _calops("step", "jump", uncal, "--crds", crds, "-o", out)
    n = fits.getheader(out / f"{NRC[0]}_jumpstep.fits")["CO_NOTE"]
    assert "jump.rejection_threshold=5.0 (CRDS jwst_nircam_pars-jumpstep_0001.asdf)" in n


def test_pars_warnings_name_what_calops_ignores(sim_program, tmp_path, sim_dir, capsys):
    crds = tmp_path / "crds"
    _pars_cache(sim_program, crds)
    _calops("step", "jump", _uncal(sim_dir, NRC[0]), "--crds", crds, "-o", tmp_path / "o")
    err = capsys.readouterr().err
    assert re.search(r"step jump [\d.]+ has no parameter 'no_such_parameter' \(ignored\)", err)
    assert "save_results" not in err  # stpipe's own parameters are not parameters of the science


def test_home_records_under_the_build_or_file_level(sim_dir, tmp_path, capsys):
    """With --home: the build's own plan is recorded under the build (the runner then finds
    it a hit), a customised run under the development build file-level."""
    from flows import planner

    ws = _workspace(tmp_path / "home", sim_dir, ingest=False)
    uncal = _uncal(sim_dir, NRC[0])
    _calops("stage", "detector1", uncal, "--home", ws.root, "-o", tmp_path / "a")
    plan = planner.plan_run(ws, "11.1.1", [NRC[0]], ["detector1"])
    assert [i.state for i in plan.items] == ["hit"]
    h = fits.getheader(tmp_path / "a" / f"{NRC[0]}_rate.fits")
    assert h["CO_BUILD"] == "11.1.1" and h["CRDS_CTX"] == "jwst_0001.pmap"
    assert h["CO_PID"] == plan.items[0].outputs["rate"]
    _calops("stage", "detector1", uncal, "--home", ws.root, "-o", tmp_path / "b",
            "--param", "jump.rejection_threshold=5")
    h = fits.getheader(tmp_path / "b" / f"{NRC[0]}_rate.fits")
    assert h["CO_BUILD"] == "file-level"
    assert ws.builds.get("file-level").status == "development"
    rows = ws.catalog.sql("SELECT build, status FROM latest_runs ORDER BY started_at").to_pylist()
    assert [(r["build"], r["status"]) for r in rows] == [("11.1.1", "ok"), ("file-level", "ok")]
    assert ws.catalog.realisations(h["CO_RKEY"]) == [h["CO_PID"]]
    jumps = ws.catalog.sql("SELECT params_json FROM recipes WHERE step = 'jump'").to_pylist()
    assert sorted(json.loads(r["params_json"])["rejection_threshold"] for r in jumps) == [4.0, 5.0]
    assert "recorded in" in capsys.readouterr().out


def test_parse_args_takes_jwst_spellings():
    o = filelevel.parse_args(["a.fits", "--steps.jump.rejection_threshold=5", "-o", "d",
                              "--param", "flat_field.inverse=true", "b.fits",
                              "--override_flat=N/A", "--steps.dq_init.override_mask=N/A",
                              "--output_dir=e", "--save_results=True"])
    assert o.files == ["a.fits", "b.fits"] and o.outdir == "e"
    assert o.params == {"jump": {"rejection_threshold": "5"}, "flat_field": {"inverse": "true"}}
    assert o.overrides == {"flat": "N/A", "mask": "N/A"}
    assert o.loose == [("save_results", "True")]
    assert filelevel.step_name("jwst.flatfield.FlatFieldStep") == "flat_field"
    assert filelevel.step_name("RampFitStep") == "ramp_fit"
    assert filelevel.stage_name("calwebb_detector1") == "detector1"
    assert filelevel.stage_name("jwst.pipeline.Image3Pipeline") == "image3"
    assert filelevel.pars_reftype("dq_init") == "pars-dqinitstep"
    assert filelevel.pipeline_pars_reftype("detector1") == "pars-detector1pipeline"


def test_home_records_stage2_and_stage3_from_files(staged, sim_dir, tmp_path):
    """A rate file and an association of cal files, recorded with their inputs: every product
    is realised by the recipe its header names, and its inputs are products of the catalog."""
    ws = _workspace(tmp_path / "home", sim_dir, ingest=False)
    _calops("stage", "image2", staged / "d1" / f"{NRC[0]}_rate.fits", "--home", ws.root,
            "-o", tmp_path / "i2")
    h = fits.getheader(tmp_path / "i2" / f"{NRC[0]}_cal.fits")
    assert h["CO_BUILD"] == "11.1.1" and h["CRDS_CTX"] == "jwst_0001.pmap"
    assert ws.catalog.realisations(h["CO_RKEY"]) == [h["CO_PID"]]
    kinds = ws.catalog.sql("SELECT kind FROM products ORDER BY kind").column(0).to_pylist()
    assert {"rate", "pointing", "cal", "i2d"} <= set(kinds)
    asn = {"asn_type": "image3", "products": [{"name": "jw01234-o001_t001_nircam_clear-f150w",
           "members": [{"expname": str(staged / "i2" / f"{e}_cal.fits"), "exptype": "science"}
                       for e in NRC]}]}
    (tmp_path / "a_asn.json").write_text(json.dumps(asn))
    _calops("stage", "image3", tmp_path / "a_asn.json", "--home", ws.root, "-o", tmp_path / "i3")
    h3 = fits.getheader(tmp_path / "i3" / "jw01234-o001_t001_nircam_clear-f150w_i2d.fits")
    assert ws.catalog.realisations(h3["CO_RKEY"]) == [h3["CO_PID"]]
    assert ws.catalog.association_members("jw01234-o001_t001_nircam_clear-f150w") == list(NRC)
    runs = ws.catalog.sql("SELECT status FROM latest_runs").column(0).to_pylist()
    assert runs == ["ok", "ok"]


def test_spec3_from_an_association_names_files_per_source(sim_dir, tmp_path):
    """A spectroscopic stage 3 from an asn JSON: the product-name template jwst's spec3
    associations carry is filled per source, as `calops export` does."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transforms" / "spec"))
    from test_spec_validation import _fs_exposure

    from store import fits as F

    rng = np.random.default_rng(11)
    names = []
    for i, slit in enumerate(("S200A1", "S200A2")):
        names.append(f"jw01234003001_01101_0000{i + 1}_nrs1_cal.fits")
        F.write_product(_fs_exposure(slit, i, rng), tmp_path / names[-1])
    asn = {"asn_type": "spec3", "products": [{
        "name": "jw01234-o003_{source_id}_nirspec_f100lp-g140h-{slit_name}",
        "members": [{"expname": n, "exptype": "science"} for n in names]}]}
    (tmp_path / "spec3_asn.json").write_text(json.dumps(asn))
    _calops("stage", "spec3", tmp_path / "spec3_asn.json", "--crds", sim_dir / "crds",
            "-o", tmp_path / "out")
    got = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "jw01234-o003_s00001_nirspec_f100lp-g140h-s200a1-s200a2_x1d.fits" in got
    assert "jw01234-o003_s00021_nirspec_f100lp-g140h-s200a1_s2d.fits" in got
    assert len(got) == 9
    h = fits.getheader(tmp_path / "out" / got[0])
    assert h["CO_BUILD"] == "file-level" and h["S_COMB1D"] in ("COMPLETE", "SKIPPED")


def test_a_secondary_reference_that_is_na_does_not_skip_the_step(tmp_path):
    """jwst's saturation reads a superbias when the context has one and runs without it where
    it is N/A (MIRI): only the saturation reference being N/A skips it. (The file-level build
    skipped MIRI saturation until superbias became its optional reference, unlike the
    workspace runner.)"""
    from transforms import registry
    from transforms.registry import PlannedStep

    spec = registry.get("saturation", "1.0")
    assert spec.reftypes == ("saturation",) and "superbias" in spec.optional_reftypes
    sat = tmp_path / "sat.fits"
    sat.write_bytes(b"")
    step = PlannedStep(spec, spec.params())
    plan, paths, notes = filelevel.choose_references(
        [step], {}, "jwst_0001.pmap", str(tmp_path), {"saturation": str(sat), "superbias": "N/A"})
    assert not plan[0].skip and paths == {"saturation": str(sat), "superbias": "N/A"}, notes
    plan, _, notes = filelevel.choose_references(
        [step], {}, "jwst_0001.pmap", str(tmp_path), {"saturation": "N/A", "superbias": "N/A"})
    assert plan[0].skip and notes == ["saturation skipped: saturation is N/A"]


def _sky_exposure(k: int, rng, source: bool, sky: float):
    """A NIRSpec S200A1 fixed-slit cal of a sky ``sky`` MJy/pixel (and a point source)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transforms" / "spec"))
    import spec_synth as T

    spec = T.SlitSpec(name="S200A1", source_id=1, source_ypos=0.0 if source else None,
                      background=sky)
    return T.cal_product([T.make_slit(spec, rng, noise=1e-12)], **{
        "instrument.fixed_slit": "S200A1", "observation.exposure_number": str(k + 1)})


def test_spec3_asn_background_members_feed_master_background(sim_dir, tmp_path, capsys):
    """jwst's Spec3Pipeline reads an association's ``science`` and ``background`` members and
    master_background subtracts the background members' sky from the science: so does
    ``calops stage spec3 asn.json`` (the background member is no product source); without
    the background member the sky stays and master_background is SKIPPED. image3 reads
    science members only (as jwst's ModelLibrary(asn_exptypes=["science"]))."""
    from store import fits as F
    from transforms import spectral as S

    sky = 3e-6
    rng = np.random.default_rng(5)
    names = [f"jw01234003001_01101_0000{i + 1}_nrs1_cal.fits" for i in range(3)]
    for i, n in enumerate(names):
        F.write_product(_sky_exposure(i, rng, source=i < 2, sky=sky), tmp_path / n)
    template = "jw01234-o003_{source_id}_nirspec_f100lp-g140h-{slit_name}"
    got = {}
    for label, bkg in (("with", True), ("without", False)):
        members = [{"expname": n, "exptype": "science"} for n in names[:2]]
        if bkg:
            members.append({"expname": names[2], "exptype": "background"})
        asn = {"asn_type": "spec3", "products": [{"name": template, "members": members}]}
        (tmp_path / f"{label}_asn.json").write_text(json.dumps(asn))
        _calops("stage", "spec3", tmp_path / f"{label}_asn.json", "--crds", sim_dir / "crds",
                "-o", tmp_path / label)
        (s2d,) = (tmp_path / label).glob("*_s2d.fits")
        assert s2d.name == "jw01234-o003_s00001_nirspec_f100lp-g140h-s200a1_s2d.fits"
        got[label] = (fits.getheader(s2d)["S_MSBSUB"],
                      float(np.nanmedian(S.slits(F.read_product(s2d))[0].arrays["data"])))
    assert got["without"][0] == "SKIPPED" and got["without"][1] == pytest.approx(sky, rel=0.2)
    assert got["with"][0] == "COMPLETE" and abs(got["with"][1]) < 0.05 * sky, got
