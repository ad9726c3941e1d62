"""Archive scale: plan a reprocess of N exposures, a no-op reprocess, and lineage at 10^6
products, on a synthetic catalog (rows and tiny stored objects; no science runs).

Run by hand (not collected by pytest):

    .venv/bin/python tests/benchmarks/bench_archive.py --exposures 10000 [--lineage-products 1000000]
        [--out /tmp/calops-archive] [--json out.json]

How the archive is made: two simulated NIRCam exposures are ingested for real (their metadata
and the CRDS cache are real); N exposures are then cloned as catalog rows (their own names,
observation and exposure numbers, dates spread over the context's UseAfter ranges). Every stage
output the planner asks for is "made" as a tiny stored object with a realisation row (layer by
layer, as runs would), until a plan is all hits. Then it times: the plan (per exposure-stage),
the no-op reprocess as the CLI does it (plan, hits recorded in one batch, no Prefect), and the
lineage query of a product in a catalog grown to --lineage-products products.
Targets (issue 18): no-op reprocess of 10^4 exposures x 3 stages <= 10 s; planning <= 0.3 ms per
exposure-stage; lineage <= 200 ms at 10^6 products.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from flows import prefect_env  # noqa: E402

prefect_env.configure()

BUILD = "11.1.1"


def seed_workspace(out: Path):
    """A workspace with the two real exposures ingested and a real CRDS cache."""
    from catalogs.crds_cache import contexts_from_program, write_cache
    from flows.ingest import ingest_file
    from flows.workspace import Workspace
    from store.fits import write_uncal
    from transforms.sim.program import simulate_program, small_program

    spec = small_program()
    spec = replace(spec, exposures=spec.exposures[:2], nstars=10, ngalaxies=2)
    program = simulate_program(spec, 1)
    ws, _ = Workspace.init(out / "home")
    shutil.rmtree(ws.crds_path)
    write_cache(ws.crds_path, contexts_from_program(program))
    for e in program.exposures:
        ingest_file(ws, write_uncal(e.uncal, out / e.truth.name), "seed")
    return ws


def clone_exposures(ws, n: int) -> list[str]:
    """``n`` exposures as catalog rows cloned from the seed ones (four per association)."""
    from catalogs.catalog import Batch
    from catalogs.recipes import product_row

    seeds = list(ws.catalog.current_exposures().values())
    metas = ws.catalog.product_metas([s[k] for s in seeds for k in ("pixels_id", "pointing_id")])
    now = dt.datetime.now(dt.timezone.utc)
    batch = Batch("clone")
    ids = []
    for i in range(n):
        s = seeds[i % len(seeds)]
        prog, obs, exp = 1234 + i // 3600, 100 + (i % 3600) // 4, i % 4 + 1  # names unique
        eid = f"jw{prog:05d}{obs:03d}001_01101_{exp:05d}_nrca1"
        day = 10 + (i % 15)
        pm = dict(metas[s["pixels_id"]], **{
            "observation.observation_number": f"{obs:03d}",
            "observation.exposure_number": f"{exp:05d}", "observation.date": f"2024-03-{day:02d}",
            "observation.program_number": f"{prog:05d}"})
        pix, pnt = f"sha256:{uuid.uuid4().hex}{uuid.uuid4().hex}", \
            f"sha256:{uuid.uuid4().hex}{uuid.uuid4().hex}"
        batch.add("products", product_row(pix, "uncal", pm, eid, now))
        batch.add("products", product_row(pnt, "pointing", metas[s["pointing_id"]], eid, now))
        batch.add("exposures", {"exposure_id": eid, "version": 1, "pixels_id": pix,
                                "pointing_id": pnt, "sdp_ver": "2024.3.1",
                                "eph_type": "PREDICTED", "filename": eid + "_uncal.fits",
                                "program": pm["observation.program_number"],
                                "instrument": "NIRCAM", "detector": "NRCA1", "ingested_at": now})
        ids.append(eid)
    ws.catalog.write_batch(batch)
    return ids


def realise_misses(ws, plan) -> int:
    """Make every missed stage's outputs as tiny stored objects with realisation rows."""
    import numpy as np

    from catalogs.catalog import Batch
    from catalogs.recipes import product_row
    from transforms.model import DataModel

    now = dt.datetime.now(dt.timezone.utc)
    batch = Batch("realise")
    n = 0
    tiny = np.zeros(1, np.float32)
    metas = ws.catalog.product_metas([pid for item in plan.items if item.state == "miss"
                                      for pid in item.recipe.inputs.values()])
    for item in plan.items:
        if item.state != "miss":
            continue
        meta = dict(metas.get(next(iter(item.recipe.inputs.values())), {}))
        for name, key in item.recipe.output_keys.items():
            model = DataModel(name, {"data": tiny}, {"recipe": key})
            pid = ws.store.put(model)
            batch.add("products", product_row(pid, name, meta, item.subject, now))
            batch.add("realisations", {"recipe_key": key, "product_id": pid, "run_id": "fake",
                                       "created_at": now})
            n += 1
    ws.catalog.write_batch(batch)
    return n


def lineage_catalog(ws, n_products: int) -> str:
    """Grow the catalog by ``n_products`` synthetic products in step chains; return a deep one."""
    import duckdb

    depth = 16
    chains = n_products // depth
    d = Path(ws.catalog_url)
    con = duckdb.connect()
    for table, sql in {
        "products": f"SELECT 'sha256:p' || i AS product_id, 'rate' AS kind, 0::BIGINT AS size_bytes,"
                    f" '{{}}' AS meta_json, 'syn' || (i // {depth}) AS subject,"
                    f" now()::TIMESTAMPTZ AS created_at FROM range({chains * depth}) t(i)",
        "realisations": f"SELECT 'sha256:k' || i AS recipe_key, 'sha256:p' || i AS product_id,"
                        f" 'syn' AS run_id, now()::TIMESTAMPTZ AS created_at"
                        f" FROM range({chains * depth}) t(i)",
        "recipe_inputs": f"SELECT 'sha256:k' || i AS recipe_key, 'input' AS role,"
                         f" 'sha256:p' || (i - 1) AS input_id FROM range({chains * depth}) t(i)"
                         f" WHERE i % {depth} != 0",
    }.items():
        path = d / table / f"synthetic-{uuid.uuid4().hex[:8]}.parquet"
        con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet, COMPRESSION zstd)")
    return f"sha256:p{chains * depth - 1}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exposures", type=int, default=10000)
    ap.add_argument("--lineage-products", type=int, default=1_000_000)
    ap.add_argument("--out", default="/tmp/calops-archive")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    from flows import flows, planner, runs

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    ws = seed_workspace(out)
    t0 = time.perf_counter()
    clone_exposures(ws, args.exposures)
    print(f"cloned {args.exposures} exposures in {time.perf_counter() - t0:.1f} s", flush=True)
    ids = ws.catalog.current_exposure_ids()
    for layer in range(8):
        t0 = time.perf_counter()
        plan = planner.plan_run(ws, BUILD, ids)
        t_plan = time.perf_counter() - t0
        c = {s: dict(v) for s, v in plan.counts().items()}
        made = realise_misses(ws, plan)
        print(f"layer {layer}: plan {t_plan:.2f} s {c}, made {made} outputs", flush=True)
        if not made:
            break
    ws.catalog.compact()
    ws = type(ws)(ws.root)  # a fresh process's view
    n_items = sum(sum(v.values()) for v in plan.counts().values())
    t0 = time.perf_counter()
    plan = planner.plan_run(ws, BUILD, ids)
    t_plan = time.perf_counter() - t0
    t0 = time.perf_counter()  # the no-op reprocess as the CLI does it, Prefect never started
    plan2 = planner.plan_run(ws, BUILD, ws.catalog.current_exposure_ids())
    h = runs.start(ws, BUILD, "bench no-op")
    res = flows.record_hits(ws, plan2, h.run_id)
    runs.finish(h, "ok", runs.summarise(res, 0.0))
    t_noop = time.perf_counter() - t0
    assert not plan2.work() and len(res) == n_items, (plan2.counts(), len(res))
    print(f"plan of {n_items} exposure-stages: {t_plan:.2f} s = "
          f"{1e3 * t_plan / n_items:.3f} ms each; no-op reprocess {t_noop:.2f} s", flush=True)
    if not args.lineage_products:
        return 0
    t0 = time.perf_counter()
    deep = lineage_catalog(ws, args.lineage_products)
    print(f"grew the catalog by {args.lineage_products} products in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    from catalogs.catalog import Catalog
    from catalogs.lineage import upstream

    n_products = ws.catalog.count("products")

    def lineage_ms() -> tuple[float, float, int]:
        cold = time.perf_counter()
        rows = upstream(Catalog(ws.catalog_url), deep)  # a fresh process's catalog
        cold = time.perf_counter() - cold
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            rows = upstream(ws.catalog, deep)
            times.append(time.perf_counter() - t0)
        return 1e3 * sorted(times)[2], 1e3 * cold, rows.num_rows

    warm, cold, n = lineage_ms()
    print(f"lineage of a product 16 steps deep at {n_products} products, as appended: "
          f"{warm:.0f} ms warm, {cold:.0f} ms cold ({n} rows)", flush=True)
    t0 = time.perf_counter()
    ws.catalog.compact()
    print(f"compacted in {time.perf_counter() - t0:.1f} s", flush=True)
    t_lin, t_cold, n = lineage_ms()
    print(f"lineage after compaction (sorted, small row groups): {t_lin:.0f} ms warm, "
          f"{t_cold:.0f} ms cold ({n} rows)", flush=True)
    result = {"exposures": args.exposures, "exposure_stages": n_items, "plan_s": round(t_plan, 3),
              "plan_ms_per_exposure_stage": round(1e3 * t_plan / n_items, 4),
              "noop_reprocess_s": round(t_noop, 3), "products": n_products,
              "lineage_ms_appended": round(warm, 1), "lineage_ms": round(t_lin, 1),
              "lineage_ms_cold": round(t_cold, 1)}
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
