"""Reissued level-1b exposures: a new version, and `reprocess --stale` recomputes only what
depends on what changed (issue 8).

The scenario below is built ONCE per test session (real simulate -> ingest -> flow runs through
the CLI) and shared with tests/catalogs/test_questions.py and test_prov.py, which load this file
by path and call ``load_scenario``: whoever comes second finds the finished scenario on disk.

Story: four simulated exposures (three NIRCam in one stage-3 association, one NIRISS) are run
under build 11.1.1; exposure A gets a definitive-ephemeris reissue (same pixels) and
``reprocess --stale``; exposure B gets a reissue with new pixels and ``reprocess --stale``;
then a development build from 11.1.1 with CRDS context jwst_0002.pmap runs everything (what
``calops affected`` predicted is saved first), and that build is promoted to operations
(archiving 11.1.1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SCENARIO_FILE = "scenario.json"
BUILD = "11.1.1"
CTX_BUILD = "h7ctx"
NEW_CONTEXT = "jwst_0002.pmap"
EXPOSURE_INDICES = (0, 1, 3, 5)  # of the simulator's small program: NRCA1 x3 (obs 1), NIS
SEED = 7


def _main(*argv: str) -> int:
    from flows.cli import main

    return main([str(a) for a in argv])


def ask(home: str, *argv: str) -> tuple[int, str]:
    """Run ``calops --home HOME ARGV...``; (exit code, what it printed on stdout)."""
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = _main("--home", home, *argv)
    return rc, buf.getvalue()


def _latest_run(ws: Any) -> str:
    return ws.catalog.sql("SELECT run_id FROM latest_runs ORDER BY started_at DESC "
                          "LIMIT 1").column(0)[0].as_py()


def build_scenario(base: Path) -> dict[str, Any]:
    """Run the story once under ``base``; later calls read ``base/scenario.json``."""
    done = base / SCENARIO_FILE
    if done.exists():
        return json.loads(done.read_text())
    from catalogs import questions
    from catalogs.crds_cache import contexts_from_program, write_cache
    from flows.prefect_env import configure
    from flows.workspace import Workspace
    from store.fits import write_uncal
    from transforms.sim.program import program_spec, reissue, simulate_program

    base.mkdir(parents=True, exist_ok=True)
    configure(str(base))
    home = base / "home"
    ws, _ = Workspace.init(home)
    small = program_spec("small")
    spec = program_spec("small", exposures=tuple(small.exposures[i] for i in EXPOSURE_INDICES))
    prog = simulate_program(spec, SEED)
    write_cache(ws.crds_path, contexts_from_program(prog))
    (base / "uncal").mkdir(exist_ok=True)
    files = [write_uncal(e.uncal, base / "uncal" / e.truth.name) for e in prog.exposures]
    rec: dict[str, Any] = {"home": str(home), "rc": {}, "runs": {}, "stale": {}}
    # The simulator's truth: the file CRDS must pick, per context, exposure and reftype.
    rec["expected_refs"] = {f"jwst_{i + 1:04d}.pmap": {
        name.replace("_uncal.fits", ""): dict(refs) for name, refs in exp.items()}
        for i, exp in enumerate(prog.expected)}
    rec["rc"]["ingest"] = _main("--home", home, "ingest", *files)
    rec["rc"]["initial"] = _main("--home", home, "run", "all", "--build", BUILD)
    rec["runs"]["initial"] = _latest_run(ws)
    rec["exposures"] = ws.catalog.current_exposure_ids()

    def reissue_and_reprocess(exposure: Any, kind: str) -> str:
        d = base / f"reissue-{kind}"
        d.mkdir(exist_ok=True)
        path = write_uncal(reissue(exposure, kind, program=prog).uncal, d / exposure.truth.name)
        rec["rc"][f"ingest-{kind}"] = _main("--home", home, "ingest", path)
        rec["stale"][kind] = ws.catalog.stale_exposure_ids(BUILD)
        rec["rc"][kind] = _main("--home", home, "reprocess", "--stale", "--build", BUILD)
        rec["runs"][kind] = _latest_run(ws)
        return exposure.truth.name.replace("_uncal.fits", "")

    rec["eph_exposure"] = reissue_and_reprocess(prog.exposures[0], "ephemeris")
    rec["pix_exposure"] = reissue_and_reprocess(prog.exposures[1], "pixels")

    # What a new context would change, predicted before anything runs; then run it.
    rec["rc"]["build-new"] = _main("--home", home, "build", "new", CTX_BUILD, "--from", BUILD,
                                   "--context", NEW_CONTEXT)
    predicted = questions.affected(ws.catalog, ws.builds.get(BUILD), NEW_CONTEXT, ws.crds_path)
    rec["affected"] = sorted({(r["subject"], r["stage"]) for r in predicted.to_pylist()})
    rec["rc"]["ctx"] = _main("--home", home, "run", "all", "--build", CTX_BUILD)
    rec["runs"]["ctx"] = _latest_run(ws)
    # The new-context build goes to operations as operators would take it: candidate (its lock
    # is what it ran), a recorded successful candidate run (all hits), then operations, which
    # archives 11.1.1 (docs/builds.md: promotion needs that candidate run).
    rec["rc"]["candidate"] = _main("--home", home, "build", "promote", CTX_BUILD)
    rec["rc"]["candidate-run"] = _main("--home", home, "reprocess", "--build", CTX_BUILD)
    rec["rc"]["promote"] = _main("--home", home, "build", "promote", CTX_BUILD)
    # `build promote` records the promoted build only; record every manifest (11.1.1 archived).
    questions.record_builds(ws.catalog, ws.builds.all())
    done.write_text(json.dumps(rec, indent=1))
    return rec


def load_scenario(tmp_path_factory: Any) -> tuple[Any, dict[str, Any]]:
    """(workspace, record) of the session's shared scenario. A developer may set
    $CALOPS_TEST_SCENARIO to a directory to keep (and reuse) a built scenario across sessions;
    delete it after changing the flows."""
    import os

    from flows.workspace import Workspace

    keep = os.environ.get("CALOPS_TEST_SCENARIO")
    base = Path(keep) if keep else tmp_path_factory.getbasetemp() / "calops-h7-scenario"
    rec = build_scenario(base)
    return Workspace(rec["home"]), rec


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    return load_scenario(tmp_path_factory)


def _steps(ws: Any, run_id: str) -> list[dict]:
    return ws.catalog.sql("SELECT * FROM run_steps WHERE run_id = $1 ORDER BY subject, stage, "
                          "step", [run_id]).to_pylist()


def _outputs(ws: Any, run_id: str, subject: str, stage: str) -> dict[str, str]:
    rows = [r for r in _steps(ws, run_id) if r["subject"] == subject and r["stage"] == stage
            and r["status"] == "ok" and r["product_id"]]
    assert rows, f"{stage} of {subject} did not succeed in run {run_id}"
    return json.loads(rows[0]["product_id"])


def _stage_hits(ws: Any, run_id: str) -> dict[tuple[str, str], bool]:
    out: dict[tuple[str, str], bool] = {}
    for r in _steps(ws, run_id):
        if r["status"] == "ok":
            out[(r["subject"], r["stage"])] = bool(r["cache_hit"])
    return out


def test_every_run_of_the_story_succeeded(scenario):
    ws, rec = scenario
    assert rec["rc"] == {k: 0 for k in rec["rc"]}, rec["rc"]
    assert len(rec["exposures"]) == len(EXPOSURE_INDICES)
    failed = ws.catalog.sql("SELECT stage, subject, error FROM run_steps "
                            "WHERE status = 'failed'").to_pylist()
    assert failed == []


def test_reissue_is_a_new_version_never_an_overwrite(scenario):
    ws, rec = scenario
    rows = ws.catalog.sql("SELECT * FROM exposures WHERE exposure_id = $1 ORDER BY version",
                          [rec["eph_exposure"]]).to_pylist()
    assert [r["version"] for r in rows] == [1, 2]
    old, new = rows
    assert new["supersedes"] == 1 and old["supersedes"] is None
    assert (old["eph_type"], new["eph_type"]) == ("PREDICTED", "DEFINITIVE")
    assert old["sdp_ver"] != new["sdp_ver"]
    assert old["pixels_id"] == new["pixels_id"] and old["pointing_id"] != new["pointing_id"]
    # Both versions' payloads are still stored.
    assert ws.store.has(old["pointing_id"]) and ws.store.has(new["pointing_id"])
    pix = ws.catalog.sql("SELECT * FROM exposures WHERE exposure_id = $1 ORDER BY version",
                         [rec["pix_exposure"]]).to_pylist()
    assert [r["version"] for r in pix] == [1, 2] and pix[0]["pixels_id"] != pix[1]["pixels_id"]
    assert ws.catalog.current_exposure(rec["eph_exposure"])["version"] == 2


def test_stale_selects_only_the_reissued_exposure(scenario):
    _, rec = scenario
    assert rec["stale"] == {"ephemeris": [rec["eph_exposure"]], "pixels": [rec["pix_exposure"]]}


def test_pointing_only_reissue_recomputes_no_stage1_work(scenario):
    ws, rec = scenario
    eid, run = rec["eph_exposure"], rec["runs"]["ephemeris"]
    hits = _stage_hits(ws, run)
    assert hits[(eid, "detector1")] is True
    assert hits[(eid, "image2")] is False  # assign_wcs reads the pointing: recomputed
    # No stage-1 product was made by this run, and the rate is the one of the first run.
    made = ws.catalog.sql("SELECT p.kind FROM realisations r JOIN products p USING (product_id) "
                          "WHERE r.run_id = $1", [run]).column(0).to_pylist()
    assert made and not {"rate", "rateints"} & set(made)
    assert (_outputs(ws, run, eid, "detector1")
            == _outputs(ws, rec["runs"]["initial"], eid, "detector1"))
    new_cal = _outputs(ws, run, eid, "image2")["cal"]
    assert new_cal != _outputs(ws, rec["runs"]["initial"], eid, "image2")["cal"]
    # The new cal was made from the definitive pointing.
    pointing = ws.catalog.current_exposure(eid)["pointing_id"]
    from catalogs.lineage import upstream

    assert pointing in upstream(ws.catalog, new_cal).column("id").to_pylist()
    # Exposures that were not reissued were not touched at all.
    subjects = {r["subject"] for r in _steps(ws, run) if r["stage"] != "image3"}
    assert subjects == {eid}


def test_pixel_reissue_recomputes_everything_downstream(scenario):
    ws, rec = scenario
    eid, run, first = rec["pix_exposure"], rec["runs"]["pixels"], rec["runs"]["initial"]
    hits = _stage_hits(ws, run)
    assert hits[(eid, "detector1")] is False and hits[(eid, "image2")] is False
    asn = [s for (s, st) in hits if st == "image3"]
    assert len(asn) == 1 and hits[(asn[0], "image3")] is False
    for stage, name in (("detector1", "rate"), ("image2", "cal"), ("image3", "i2d")):
        subject = asn[0] if stage == "image3" else eid
        assert _outputs(ws, run, subject, stage)[name] != _outputs(ws, first, subject, stage)[name]


def test_association_keeps_all_members_after_a_stale_reprocess(scenario):
    """Reprocessing one reissued member must rebuild the whole association, not a
    one-member association of just the stale exposure."""
    ws, rec = scenario
    run = rec["runs"]["pixels"]
    asn = next(r["subject"] for r in _steps(ws, run) if r["stage"] == "image3")
    nircam = sorted(e for e in rec["exposures"] if e.endswith("_nrca1"))
    assert ws.catalog.association_members(asn) == nircam
    key = next(r["recipe_key"] for r in _steps(ws, run)
               if r["stage"] == "image3" and r["status"] == "ok" and r["recipe_key"])
    first = ws.catalog.sql("WITH RECURSIVE up(k) AS (SELECT CAST($1 AS VARCHAR) UNION "
                           "SELECT i.input_id FROM up JOIN recipe_inputs i ON i.recipe_key = up.k)"
                           " SELECT DISTINCT role FROM recipe_inputs WHERE recipe_key IN "
                           "(SELECT k FROM up) AND role LIKE 'member:%'", [key]).column(0)
    assert sorted(r.removeprefix("member:") for r in first.to_pylist()) == nircam
