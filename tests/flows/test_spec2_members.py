"""spec2 in the workspace runner gets its level-2 association members (issue #15): the MIRI
LRS ALONG-SLIT-NOD pair of the default program (observation 5), simulated alone, each nod's
spec2 subtracts the other nod (its ``background`` member) as ``transforms.spec2.run_members``
does; the recipe key depends on the member's rate; lineage lists both rates.

Two full-frame MIRI detector1 runs and two spec2 runs (the module fixture): ~75 s on the
shared machine, so the tests on it are slow.
"""

from __future__ import annotations

import pytest

from flows import prefect_env

prefect_env.configure()

NOD1 = "jw01234005001_01101_00001_mirimage"
NOD2 = "jw01234005001_01101_00002_mirimage"


def _calops(*argv: str) -> None:
    from flows.cli import main

    assert main(list(argv)) == 0, argv


@pytest.fixture(scope="module")
def lrs_ws(tmp_path_factory):
    """The default program's LRS nod pair only: uncal files, CRDS cache, a workspace that ran
    ``calops run all --build 11.3`` on them."""
    from catalogs.crds_cache import merged_program_contexts, write_cache
    from store.fits import write_uncal
    from transforms.sim import all_program as AP

    spec = AP.all_program(without=tuple(p for p in AP.SPEC_PARTS if p != "lrs"))
    spec = AP.AllSpec("lrs", (), spec.spectra)
    prog = AP.simulate_all(spec, seed=3)
    top = tmp_path_factory.mktemp("members")
    (top / "uncal").mkdir()
    for e in prog.exposures:
        write_uncal(e.uncal, top / "uncal" / e.name)
    contexts, _ = merged_program_contexts(prog)
    write_cache(top / "crds", contexts)
    home = str(top / "home")
    _calops("--home", home, "init", "--crds", str(top / "crds"))
    _calops("--home", home, "run", "all", str(top / "uncal" / "*.fits"), "--build", "11.3")
    from flows.workspace import Workspace

    return Workspace.resolve(home)


def test_the_rule_makes_each_nod_the_others_background():
    from transforms import registry
    from transforms.sim import slit_program as S

    st = registry.stage("spec2")
    for prog, want in ((S.lrs_program(ngroups=4), {"e0": {"background": ["e1"]}}),
                       (S.mos_program(ngroups=4), {"e0": {"background": ["e2", "e4"],
                                                          "imprint": ["e1", "e3", "e5"]},
                                                   "e1": {}})):  # a leakcal has no members
        metas = {f"e{i}": dict(S.exposure_meta(prog, e)) for i, e in enumerate(prog.exposures)}
        for e, members in want.items():
            assert st.member_exposures(e, metas) == members


@pytest.mark.slow
def test_spec2_in_a_workspace_run_subtracts_the_other_nod(lrs_ws):
    from flows import stages
    from flows.runner import plan_refs
    from store.identity import product_id
    from transforms import spec2

    ws = lrs_ws
    recipe, load = stages.recipe_for(ws, "11.3", "spec2", NOD1)
    rate2 = stages._upstream_output(ws, "11.3", "detector1", NOD2, "rate")
    assert recipe.inputs[f"background:{NOD2}"] == rate2
    science, members = load()
    assert list(members) == ["background"] and len(members["background"]) == 1
    want = spec2.run_members(science, plan_refs(recipe).plan(), members)
    got = ws.catalog.realisations(recipe.output_keys["cal"])
    assert got and got[0] == product_id(want["cal"])
    cal = ws.store.get(got[0])
    assert cal.meta["cal_step.bkg_subtract"] == "COMPLETE"


@pytest.mark.slow
def test_the_recipe_key_changes_with_the_members_rate(lrs_ws):
    from flows import planner, stages
    from flows.runner import plan_stage

    ws = lrs_ws
    recipe, _ = stages.recipe_for(ws, "11.3", "spec2", NOD1)
    plan = planner.plan_run(ws, "11.3", [NOD1], ["spec2"])
    (item,) = [i for i in plan.items if i.stage == "spec2" and i.subject == NOD1]
    assert item.state == planner.HIT and item.recipe.key == recipe.key
    assert not [i for i in plan.items if i.stage == "spec2" and i.subject == NOD2]
    b = ws.builds.get("11.3")
    other = dict(recipe.inputs, **{f"background:{NOD2}": "0" * 64})
    meta = ws.catalog.product_meta(recipe.inputs["input"])
    changed = plan_stage("spec2", NOD1, b, recipe.context, ws.crds_path, meta, other)
    assert changed.key != recipe.key
    assert changed.output_keys["cal"] != recipe.output_keys["cal"]


@pytest.mark.slow
def test_lineage_of_the_cal_lists_both_rates(lrs_ws):
    from flows import stages

    ws = lrs_ws
    recipe, _ = stages.recipe_for(ws, "11.3", "spec2", NOD1)
    rates = {stages._upstream_output(ws, "11.3", "detector1", e, "rate") for e in (NOD1, NOD2)}
    first = next(s for s in recipe.steps if not s.skip)
    rows = ws.catalog.sql("SELECT input_id FROM recipe_inputs WHERE recipe_key = ?",
                          [first.key]).to_pylist()
    assert rates <= {r["input_id"] for r in rows}


@pytest.mark.parametrize("state, want", [("failed", "failed"), ("miss", "waits")])
def test_a_members_detector1_failure_fails_the_spec2_with_its_reason(state, want):
    """Planned without a workspace: nod 2's detector1 failed (or must run first), so nod 1's
    spec2 cannot run (or waits), naming the member; no exception."""
    from flows import planner
    from transforms import registry

    p = planner._Planner.__new__(planner._Planner)
    p.rows = {e: {"pixels_id": f"px{e[-10:]}", "pointing_id": f"pt{e[-10:]}"}
              for e in (NOD1, NOD2)}
    p.members, p.left_out, p.metas = {}, {}, {}  # no metadata: no build/mode refusal applies
    p.state = {("detector1", NOD1): planner.Item("detector1", NOD1, planner.HIT,
                                                 outputs={"rate": "rate1"}),
               ("detector1", NOD2): planner.Item("detector1", NOD2, state,
                                                 cause="ValueError: boom")}
    p.exposure_members = {("spec2", NOD1): {"background": [NOD2]}}
    item, inputs = p._inputs(registry.stage("spec2"), NOD1)
    assert item.state == want and inputs == {}
    assert (f"background member {NOD2} has no detector1:rate (ValueError: boom)"
            if want == "failed" else f"waits for detector1 of {NOD2}") == item.cause


# --- the file-level runner on a level-2 association (calops stage calwebb_spec2 asn.json) ---

def _level2_asn(rates: dict[str, str], background: bool = True) -> dict:
    """A level-2 spec association as jwst's association generator writes one for a nod pair:
    one product per science exposure, the other nod as its ``background`` member."""
    products = []
    for e, f in rates.items():
        members = [{"expname": f, "exptype": "science", "exposerr": None,
                    "asn_candidate": "[('o005', 'observation')]"}]
        if background:
            members += [{"expname": g, "exptype": "background", "exposerr": None,
                         "asn_candidate": "[('o005', 'observation')]"}
                        for o, g in rates.items() if o != e]
        products.append({"name": e, "members": members})
    return {"asn_type": "spec2", "asn_rule": "Asn_Lv2SpecSpecial", "version_id": None,
            "code_version": "3.0.0", "degraded_status": "No known degraded exposures in "
            "association.", "program": "01234", "constraints": "none", "asn_id": "o005",
            "target": "t001", "asn_pool": "jw01234_pool", "products": products}


@pytest.fixture(scope="module")
def lrs_asn(lrs_ws, tmp_path_factory):
    """The nod pair's rates as ``calops export`` writes them, with the level-2 association."""
    import json

    d = tmp_path_factory.mktemp("lrs_asn")
    _calops("--home", str(lrs_ws.root), "export", "11.3", str(d), "--kind", "rate")
    rates = {e: f"{e}_rate.fits" for e in (NOD1, NOD2)}
    assert all((d / f).is_file() for f in rates.values()), sorted(p.name for p in d.iterdir())
    (d / "jw01234-o005_spec2_00001_asn.json").write_text(json.dumps(_level2_asn(rates),
                                                                    indent=4))
    return d / "jw01234-o005_spec2_00001_asn.json"


@pytest.mark.slow
def test_file_level_spec2_on_a_level2_asn_equals_the_workspace_runner(lrs_ws, lrs_asn,
                                                                      tmp_path):
    """``calops stage calwebb_spec2 asn.json``: one cal per science member, each with the
    other nod subtracted (S_BKDSUB COMPLETE), the same product id and recipe key as the
    workspace runner's; recorded with --home, the recipe is the workspace's (a hit)."""
    import numpy as np
    from astropy.io import fits

    from flows import stages

    ws = lrs_ws
    jwst_asn = pytest.importorskip("jwst.associations")
    with open(lrs_asn) as fh:  # a valid jwst association (its schema)
        assert len(jwst_asn.load_asn(fh)["products"]) == 2
    recipe, _ = stages.recipe_for(ws, "11.3", "spec2", NOD1)
    _calops("stage", "calwebb_spec2", str(lrs_asn), "--crds", ws.crds_path,
            "--context", recipe.context, "-o", str(tmp_path / "out"))
    _calops("--home", str(ws.root), "export", "11.3", str(tmp_path / "ws"), "--kind", "cal")
    for nod in (NOD1, NOD2):
        recipe, _ = stages.recipe_for(ws, "11.3", "spec2", nod)
        want = ws.catalog.realisations(recipe.output_keys["cal"])[0]
        path = tmp_path / "out" / f"{nod}_cal.fits"
        h = fits.getheader(path)
        assert h["S_BKDSUB"] == "COMPLETE"
        assert h["CO_PID"] == want and h["CO_RKEY"] == recipe.output_keys["cal"]
        with fits.open(path) as a, fits.open(tmp_path / "ws" / f"{nod}_cal.fits") as b:
            for ext in ("SCI", "ERR", "DQ"):
                np.testing.assert_array_equal(a[ext].data, b[ext].data)
    _calops("stage", "spec2", str(lrs_asn), "--home", str(ws.root), "--build", "11.3",
            "-o", str(tmp_path / "home"))
    h = fits.getheader(tmp_path / "home" / f"{NOD1}_cal.fits")
    assert h["CO_PID"] == ws.catalog.realisations(h["CO_RKEY"])[0]
    assert h["CO_PID"] == fits.getheader(tmp_path / "out" / f"{NOD1}_cal.fits")["CO_PID"]


@pytest.mark.slow
def test_a_missing_member_stops_the_command_naming_it(lrs_ws, lrs_asn, tmp_path, capsys):
    """A background member that is not there: one line naming it and what to do, exit 2,
    nothing written (not even the other product's cal)."""
    import json

    from flows.cli import main

    asn = json.loads(lrs_asn.read_text())
    asn["products"][1]["members"][1]["expname"] = "jw01234005001_01101_00009_mirimage_rate.fits"
    bad = lrs_asn.parent / "bad_asn.json"
    bad.write_text(json.dumps(asn))
    capsys.readouterr()
    rc = main(["stage", "calwebb_spec2", str(bad), "--crds", lrs_ws.crds_path,
               "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "background member jw01234005001_01101_00009_mirimage_rate.fits is not at" in err[0]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_spec2_reads_the_member_types_its_chain_takes():
    """jwst's Spec2Pipeline uses an association's ``background`` and ``imprint`` members (its
    ``selfcal``, ``sourcecat``/``segmap``/``direct_image`` and ``target_acquisition`` members
    feed steps calops does not have: badpix_selfcal, WFSS, targ_centroid); the stage's
    declared member types are the roles its rule makes and its chain takes."""
    from transforms import registry, spec2

    st = registry.stage("spec2")
    assert set(st.asn_exptypes) == {"science", *spec2._MEMBER_STEPS.values()}
    assert registry.stage("spec3").asn_exptypes == ("science", "background")
    assert registry.stage("image3").asn_exptypes == ("science",)  # as jwst's image3


def test_a_member_the_chain_did_not_subtract_is_a_warning():
    """jwst subtracts an IFU exposure's background members; calops's IFU chain does not take
    members yet: the file-level run says which members went unused and why (the S_* status)."""
    from flows import filelevel as FL
    from transforms import registry
    from transforms.model import DataModel

    st = registry.stage("spec2")
    subj = FL.Subject(NOD1, [f"{NOD1}_rate.fits"], [], None,
                      {"background": [(f"d/{NOD2}_rate.fits", None)]})
    s = FL.Setup(build=None, crds_path="", context="")
    for status, want in (("COMPLETE", []), ("SKIPPED", [
            f"{NOD1}: its background member(s) {NOD2} were not used: bkg_subtract SKIPPED"])):
        s.warnings.clear()
        FL._unused_members(s, st, subj, {"cal": DataModel("cal", {}, {
            "cal_step.bkg_subtract": status})})
        assert s.warnings == want


_JWST_SPEC2 = """
import sys
from jwst.assign_wcs import AssignWcsStep
from jwst.background import BackgroundStep
from jwst.pipeline import Spec2Pipeline

asn, outdir, distortion, specwcs = sys.argv[1:5]
steps = {n: {"skip": True} for n in Spec2Pipeline.step_defs
         if n not in ("assign_wcs", "bkg_subtract")}
steps["assign_wcs"] = {f"override_{rt}": "N/A" for rt in AssignWcsStep.reference_file_types}
steps["assign_wcs"].update(override_distortion=distortion, override_specwcs=specwcs)
steps["bkg_subtract"] = {f"override_{rt}": "N/A" for rt in BackgroundStep.reference_file_types}
Spec2Pipeline.call(asn, output_dir=outdir, save_results=True, steps=steps)
"""


@pytest.mark.slow
def test_jwst_spec2_on_the_same_asn_subtracts_the_same_nod(lrs_ws, lrs_asn, tmp_path):
    """jwst 3.0's Spec2Pipeline on the same level-2 asn (offline, in a child process: the
    calops cache's distortion and specwcs as overrides; every step but assign_wcs and
    bkg_subtract skipped, in calops with a --config as in jwst): each nod's cal is the other
    nod subtracted, and calops's is jwst's bit for bit (SCI, ERR, variances, DQ)."""
    import subprocess
    import sys
    from pathlib import Path

    import numpy as np
    from astropy.io import fits

    pytest.importorskip("jwst")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from jwst_offline import crds_environment

    from transforms import registry

    refs = Path(lrs_ws.crds_path) / "references" / "jwst" / "miri"
    (dist,), (specwcs,) = refs.glob("*_distortion_*.asdf"), refs.glob("*_specwcs_*.fits")
    done = subprocess.run([sys.executable, "-c", _JWST_SPEC2, str(lrs_asn), str(tmp_path / "jwst"),
                           str(dist), str(specwcs)], env=crds_environment(tmp_path / "crds"),
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    skip = [s for s in registry.stage("spec2").steps if s not in ("assign_wcs", "bkg_subtract")]
    (tmp_path / "skip.toml").write_text("".join(f"[steps.{s}]\nskip = true\n" for s in skip))
    _calops("stage", "calwebb_spec2", str(lrs_asn), "--crds", lrs_ws.crds_path,
            "--config", str(tmp_path / "skip.toml"), "-o", str(tmp_path / "calops"))
    for nod in (NOD1, NOD2):
        name = f"{nod}_cal.fits"
        with fits.open(tmp_path / "calops" / name) as a, fits.open(tmp_path / "jwst" / name) as b:
            assert a[0].header["S_BKDSUB"] == b[0].header["S_BKDSUB"] == "COMPLETE"
            for ext in ("SCI", "ERR", "VAR_POISSON", "VAR_RNOISE", "DQ"):
                np.testing.assert_array_equal(a[ext].data, b[ext].data, err_msg=ext)


@pytest.mark.slow
def test_home_runs_a_customised_asn_spec2_with_its_members(lrs_ws, lrs_asn, tmp_path):
    """With --home and a customisation (a --config: the development build ``file-level``) the
    recipe is new, so the workspace runner loads the science and its member from the store
    and runs them: the same cal, recipe key and S_BKDSUB as without a workspace, realised.
    (The first step, assign_wcs, is the build's: its recipe, with the other nod's rate among
    its inputs, is shared with ``calops run``'s.)"""
    from astropy.io import fits

    from flows import stages

    ws = lrs_ws
    cfg = tmp_path / "c.toml"
    cfg.write_text("".join(f"[steps.{s}]\nskip = true\n" for s in
                           ("flat_field", "pathloss", "photom", "resample_spec", "extract_1d")))
    _calops("stage", "spec2", str(lrs_asn), "--crds", ws.crds_path, "--config", str(cfg),
            "--context", stages.recipe_for(ws, "11.3", "spec2", NOD1)[0].context,
            "-o", str(tmp_path / "plain"))
    _calops("stage", "spec2", str(lrs_asn), "--home", str(ws.root), "--build", "11.3",
            "--config", str(cfg), "-o", str(tmp_path / "home"))
    rate2 = stages._upstream_output(ws, "11.3", "detector1", NOD2, "rate")
    for d in ("plain", "home"):
        h = fits.getheader(tmp_path / d / f"{NOD1}_cal.fits")
        assert h["S_BKDSUB"] == "COMPLETE" and h["S_FLAT"] == "SKIPPED"
    a = fits.getheader(tmp_path / "home" / f"{NOD1}_cal.fits")
    b = fits.getheader(tmp_path / "plain" / f"{NOD1}_cal.fits")
    assert a["CO_BUILD"] == "file-level" and (a["CO_PID"], a["CO_RKEY"]) == (b["CO_PID"],
                                                                            b["CO_RKEY"])
    assert ws.catalog.realisations(a["CO_RKEY"]) == [a["CO_PID"]]
    rows = ws.catalog.sql("SELECT input_id FROM recipe_inputs").column(0).to_pylist()
    assert rate2 in rows
