"""Faults of whole runs: a `calops run` killed at a random moment, two reprocess runs at once,
an object deleted behind the catalog's back, an ingest on a full disk.

The killed and concurrent runs are real `calops` processes reporting to one Prefect API server
(started once per module); SIGKILL goes to the child's whole process group, as when a node dies.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

from flows import stages
from flows.cli import main

BUILD = "11.1.1"


def n_objects(ws) -> int:
    """Stored products and inputs (record objects, the catalog's copies in the store, aside)."""
    from catalogs.recovery import product_ids

    return len(product_ids(ws.store))


def assert_consistent(ws) -> None:
    """No partial object; every products/realisations row names an intact object; every
    realisation has its products row; no recipe realised as two different products."""
    assert ws.store.verify() == []
    pids = ws.catalog.sql("SELECT product_id FROM products UNION "
                          "SELECT product_id FROM realisations").column(0).to_pylist()
    bad = {p: ws.store.check(p) for p in pids if ws.store.check(p)}
    assert not bad, f"rows pointing at missing or corrupt objects: {bad}"
    orphans = ws.catalog.sql("SELECT count(*) FROM realisations WHERE product_id NOT IN "
                             "(SELECT product_id FROM products)").column(0)[0].as_py()
    assert orphans == 0
    assert ws.catalog.sql("SELECT count(*) FROM nondeterministic_recipes").column(0)[0].as_py() == 0


def outputs_by_run(ws, run_id: str) -> dict[tuple[str, str], dict]:
    rows = ws.catalog.sql("SELECT DISTINCT stage, subject, product_id FROM run_steps "
                          "WHERE run_id = ? AND status = 'ok' AND product_id IS NOT NULL",
                          [run_id]).to_pylist()
    return {(r["stage"], r["subject"]): json.loads(r["product_id"]) for r in rows}


def run_ids(ws) -> list[str]:
    return ws.catalog.sql("SELECT run_id FROM latest_runs WHERE status = 'ok' "
                          "ORDER BY started_at").column(0).to_pylist()


def output_of(proc) -> tuple[str, str]:
    proc.out_file.seek(0)
    proc.err_file.seek(0)
    return proc.out_file.read(), proc.err_file.read()


def wait(proc, timeout: float = 600) -> tuple[str, str]:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return output_of(proc)


def test_sigkill_at_a_random_moment_then_rerun_completes(fault_workspace, calops_proc):
    start = calops_proc
    ws = fault_workspace
    before = n_objects(ws)
    proc = start("--home", str(ws.root), "run", "all", "--build", BUILD)
    # The moment: a seeded random time after the run's first stored product (so the kill lands
    # while stages are computing, storing or recording, not during Prefect's start-up).
    deadline = time.monotonic() + 600
    while n_objects(ws) == before:
        assert proc.poll() is None, f"run ended before the kill: {output_of(proc)}"
        assert time.monotonic() < deadline, "the run stored nothing in 600 s"
        time.sleep(0.05)
    time.sleep(random.Random(8).uniform(0.0, 1.5))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    killed = ws.catalog.sql("SELECT status FROM latest_runs").column(0).to_pylist()
    assert killed == ["running"], "the run finished before the kill: the test proved nothing"

    assert_consistent(ws)
    ws.store.clean_tmp()
    # Rerun: completes everything, reusing whatever the killed run recorded.
    proc = start("--home", str(ws.root), "run", "all", "--build", BUILD)
    out, err = wait(proc)
    assert proc.returncode == 0, out + err[-3000:]
    assert "failed 0" in out
    assert_consistent(ws)
    rerun = outputs_by_run(ws, run_ids(ws)[-1])
    assert {s for s, _ in rerun} == {"detector1", "image2", "image3"}
    assert len(rerun) == 5  # two exposures through stages 1 and 2, one association
    # One product per (exposure, output) across both runs: no duplicates, nothing lost.
    per_key = ws.catalog.sql(
        "SELECT recipe_key, count(DISTINCT product_id) AS n FROM realisations "
        "GROUP BY recipe_key").to_pylist()
    assert per_key and all(r["n"] == 1 for r in per_key)
    for (stage, subject), outs in rerun.items():
        if stage == "image3":
            continue
        recipe, _ = stages.recipe_for(ws, BUILD, stage, subject)
        for name, pid in outs.items():
            assert ws.catalog.realisations(recipe.output_keys[name]) == [pid]


def test_two_concurrent_reprocess_runs_agree_and_do_not_duplicate(fault_workspace, calops_proc):
    start = calops_proc
    ws = fault_workspace
    argv = ("--home", str(ws.root), "reprocess", "--build", BUILD)
    procs = [start(*argv) for _ in range(2)]
    outs = [wait(p) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, out + err[-3000:]
    assert_consistent(ws)
    a, b = run_ids(ws)[-2:]
    oa, ob = outputs_by_run(ws, a), outputs_by_run(ws, b)
    assert oa and oa == ob  # the same product ids, whichever run computed them
    assert {s for s, _ in oa} >= {"detector1", "image2"}
    # Realisations are a log (one row per run that recorded one); as a relation they are the
    # DISTINCT (recipe_key, product_id) pairs, and each recipe_key has exactly one product.
    per_key = ws.catalog.sql(
        "SELECT recipe_key, count(DISTINCT product_id) AS n FROM realisations "
        "GROUP BY recipe_key").to_pylist()
    assert all(r["n"] == 1 for r in per_key)
    for (stage, subject), outs in oa.items():
        if stage == "image3":
            continue
        recipe, _ = stages.recipe_for(ws, BUILD, stage, subject)
        for name, pid in outs.items():
            assert ws.catalog.realisations(recipe.output_keys[name]) == [pid]


def test_deleted_object_is_detected_and_recomputed(fault_workspace, capsys):
    ws = fault_workspace
    eid = ws.catalog.current_exposure_ids()[0]
    first = stages.run(ws, BUILD, "detector1", eid, "r1")
    assert first.status == "ok", first.error
    pid = first.outputs["rate"]
    os.unlink(ws.store.path_of(pid))  # behind the catalog's back
    assert main(["--home", str(ws.root), "verify"]) == 1
    assert f"BAD {pid}: recorded in the catalog but missing" in capsys.readouterr().out
    again = stages.run(ws, BUILD, "detector1", eid, "r2")
    assert not again.hit and "missing" in again.reason
    assert again.outputs == first.outputs  # recomputed, bit-identical
    assert ws.store.check(pid) is None
    assert main(["--home", str(ws.root), "verify"]) == 0
    third = stages.run(ws, BUILD, "detector1", eid, "r3")
    assert third.hit and third.outputs == first.outputs
    assert_consistent(ws)


def _limit_file_size(nbytes: int):
    def pre():
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return pre


def test_ingest_on_a_full_store_is_one_line_and_loses_nothing(tmp_path, fault_sim_dir, calops_proc):
    start = calops_proc
    from flows.ingest import ingest_file
    from flows.workspace import Workspace

    ws, _ = Workspace.init(tmp_path / "home")
    first, second = sorted((fault_sim_dir / "uncal").glob("*.fits"))
    ingest_file(ws, first, "before")
    objects, rows = sorted(ws.store.ids()), ws.catalog.count("exposures")
    proc = start("--home", str(ws.root), "ingest", str(second), preexec_fn=_limit_file_size(64 * 1024))
    out, err = wait(proc, 300)
    assert proc.returncode == 2, out + err
    errors = [ln for ln in err.splitlines() if ln.startswith("calops: error:")]
    assert len(errors) == 1 and "cannot write object" in errors[0]
    assert "File too large" in errors[0] and "Traceback" not in err
    assert sorted(ws.store.ids()) == objects and ws.store.verify() == []
    assert ws.catalog.count("exposures") == rows
    assert not [p for p in Path(ws.store_url).rglob(".tmp-*")]
