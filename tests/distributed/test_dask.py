"""The flows on Prefect's Dask task runner against a local dask.distributed cluster, with the
store and catalog on S3: the products and the catalog rows do not depend on where tasks ran."""

from __future__ import annotations

import os
import shutil


BUILD = "11.1.1"
STAGES = ("detector1", "image2")
# What the catalog says about the work itself (times, run ids and hosts legitimately differ).
CONTENT_QUERIES = {
    "realisations": "SELECT DISTINCT recipe_key, product_id FROM realisations",
    "products": "SELECT DISTINCT product_id, kind, meta_json, subject FROM products",
    "recipes": "SELECT DISTINCT recipe_key, step, step_version, params_json FROM recipes",
    "recipe_inputs": "SELECT DISTINCT recipe_key, role, input_id FROM recipe_inputs",
    "recipe_refs": "SELECT DISTINCT recipe_key, reftype, filename, ref_hash FROM recipe_refs",
    "run_steps": "SELECT DISTINCT stage, subject, step, recipe_key, product_id, cache_hit, status "
                 "FROM run_steps",
}


def content(ws) -> dict[str, set]:
    return {name: {tuple(sorted(r.items())) for r in ws.catalog.sql(q).to_pylist()}
            for name, q in CONTENT_QUERIES.items()}


def run_flow(ws, runner: str, exposures: list[str], run_id: str) -> list[dict]:
    from flows import flows

    proc = flows.process.with_options(task_runner=flows.task_runner(runner))
    return proc(str(ws.root), BUILD, exposures, run_id=run_id, stages=list(STAGES))


def test_dask_on_s3_matches_threads_on_disk(dask_cluster, dist_sim_dir, tmp_path,
                                            make_s3_workspace, monkeypatch):
    from flows.workspace import Workspace
    from flows.ingest import ingest_file

    def ingest_all(ws):
        return [ingest_file(ws, f, 'ingest').exposure_id
                for f in sorted((dist_sim_dir / 'uncal').glob('*.fits'))]

    local, _ = Workspace.init(tmp_path / "local")
    shutil.rmtree(local.crds_path)
    shutil.copytree(dist_sim_dir / "crds", local.crds_path)
    remote = make_s3_workspace("remote", crds=str(dist_sim_dir / "crds"))
    exposures = ingest_all(local)
    assert ingest_all(remote) == exposures

    threaded = run_flow(local, "threads", exposures, "threads")
    monkeypatch.setenv("CALOPS_DASK", dask_cluster.scheduler_address)
    on_dask = run_flow(remote, "dask", exposures, "dask")

    for res in (threaded, on_dask):
        assert [r["status"] for r in res] == ["ok"] * len(STAGES) * len(exposures), res
        assert not any(r["hit"] for r in res)
    key = lambda r: (r["stage"], r["subject"])  # noqa: E731
    assert {key(r): r["outputs"] for r in on_dask} == {key(r): r["outputs"] for r in threaded}
    # The tasks really ran on the cluster's worker processes, not in this one.
    workers = {w.pid for w in dask_cluster.workers.values() if hasattr(w, "pid")}
    assert workers and os.getpid() not in workers
    # The catalog rows describing the work are the same, row for row.
    assert content(remote) == content(local)
    from catalogs.recovery import product_ids

    assert remote.store.verify() == [] and sorted(product_ids(remote.store)) == sorted(
        product_ids(local.store))  # record objects hold run ids and times: they differ
    # A second run on the cluster is all hits: the hit check sees what the workers recorded.
    again = run_flow(remote, "dask", exposures, "dask-again")
    assert all(r["hit"] for r in again) and {key(r): r["outputs"] for r in again} == \
        {key(r): r["outputs"] for r in threaded}
