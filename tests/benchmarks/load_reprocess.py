"""Load test: push a few hundred small exposures through `reprocess` and report throughput,
orchestration overhead as a share of wall time, and catalog query latency as the catalog grows.

Run by hand (not collected by pytest):

    .venv/bin/python tests/benchmarks/load_reprocess.py --exposures 200 --rounds 4 \
        --out /tmp/calops-load [--runner threads|processes|dask] [--workers 2] [--json out.json]
        [--compact-each-round]

Each round ingests ``exposures/rounds`` new exposures (cheap variants of a simulated NIRCam
dither pair: fresh seeded noise in the pixels, their own observation/exposure numbers, four
exposures per stage-3 association) and then reprocesses EVERY current exposure under the
build, as an operator would: the old ones are hits, the new ones run all three stages. After
each round the catalog's common queries are timed (median of 5) on a fresh Catalog object and
on a warm one. At the end the catalog is compacted and the queries timed again.

Overhead share = 1 - (sum of in-task stage wall times / workers) / flow wall time: the part of
the wall time not spent inside stages (Prefect, scheduling, hit checks' catalog lookups,
catalog writes, idle workers).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from flows import prefect_env  # noqa: E402  (offline, quiet Prefect defaults first)

prefect_env.configure()
os.environ.setdefault("CRDS_MODE", "local")

BUILD = "11.1.1"
PER_ASSOCIATION = 4


def make_exposures(out: Path, n: int, seed: int) -> tuple[list[Path], Path]:
    """``n`` uncal files and a CRDS cache; variants of a simulated dither pair."""
    import numpy as np

    from catalogs.crds_cache import contexts_from_program, write_cache
    from store.fits import write_uncal
    from transforms.sim.program import simulate_program, small_program

    spec = small_program()
    spec = replace(spec, exposures=spec.exposures[:2], nstars=30, ngalaxies=5)
    program = simulate_program(spec, seed)
    write_cache(out / "crds", contexts_from_program(program))
    (out / "uncal").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        t = program.exposures[i % 2].uncal
        obs, exp = 100 + i // PER_ASSOCIATION, i % PER_ASSOCIATION + 1
        name = f"jw01234{obs:03d}001_01101_{exp:05d}_nrca1_uncal.fits"
        data = t.arrays["data"]
        noisy = np.clip(data.astype(np.int32) + rng.integers(-2, 3, data.shape), 0, 65535)
        meta = {"observation.observation_number": f"{obs:03d}",
                "observation.exposure_number": f"{exp:05d}",
                "observation.visit_id": f"01234{obs:03d}001", "filename": name}
        m = t.replace(arrays={"data": noisy.astype(np.uint16)}, meta=meta)
        paths.append(Path(write_uncal(m, out / "uncal" / name)))
    return paths, out / "crds"


def timed(fn, repeat: int = 5) -> float:
    """Median wall time of ``fn()`` in milliseconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def query_latency(ws) -> dict[str, float]:
    """Median latency (ms) of the questions the runner and users ask most."""
    from catalogs.catalog import Catalog

    cat = ws.catalog
    key = cat.sql("SELECT recipe_key FROM realisations LIMIT 1").column(0)[0].as_py()
    pid = cat.sql("SELECT product_id FROM products WHERE kind = 'cal' LIMIT 1").column(0)[0].as_py()
    q = {
        "realisations(key) warm": lambda: cat.realisations(key),
        "realisations(key) cold": lambda: Catalog(ws.catalog_url).realisations(key),
        "current_exposure_ids": lambda: cat.current_exposure_ids(),
        "stale_exposure_ids": lambda: cat.stale_exposure_ids(BUILD),
        "product_meta(pid)": lambda: cat.product_meta(pid),
        "run_steps by stage (agg)": lambda: cat.sql(
            "SELECT stage, count(*), sum(wall_s) FROM run_steps GROUP BY stage"),
        "lineage edges of a product": lambda: cat.sql(
            "SELECT * FROM lineage_edges WHERE child = ?", [pid]),
    }
    return {name: round(timed(fn), 1) for name, fn in q.items()}


def catalog_files(ws) -> int:
    from catalogs.schema import TABLES

    return sum(len(ws.catalog.files(t)) for t in TABLES)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exposures", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--out", default="/tmp/calops-load")
    ap.add_argument("--runner", default="threads", choices=("threads", "processes", "dask"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--compact-each-round", action="store_true",
                    help="compact the catalog after every round (as an operator's cron would)")
    args = ap.parse_args(argv)

    from flows import flows
    from flows.ingest import ingest_file
    from flows.workspace import Workspace

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    files, crds = make_exposures(out / "sim", args.exposures, args.seed)
    print(f"simulated {len(files)} exposures in {time.perf_counter() - t0:.1f} s", flush=True)
    ws, _ = Workspace.init(out / "home")
    shutil.rmtree(ws.crds_path)
    shutil.copytree(crds, ws.crds_path)
    runner = flows.task_runner(args.runner, args.workers)
    process = flows.process.with_options(task_runner=runner)

    t0 = time.perf_counter()  # an empty flow: Prefect's start-up, kept out of round 1
    process(str(ws.root), BUILD, [], run_id="load-warmup")
    startup = round(time.perf_counter() - t0, 1)
    print(f"prefect start-up (empty flow) {startup} s", flush=True)

    rounds = []
    per_round = -(-len(files) // args.rounds)
    for r in range(args.rounds):
        batch = files[r * per_round:(r + 1) * per_round]
        t0 = time.perf_counter()
        rid = uuid.uuid4().hex[:8]
        for f in batch:
            ingest_file(ws, f, rid)
        t_ingest = time.perf_counter() - t0
        exposures = ws.catalog.current_exposure_ids()
        t0 = time.perf_counter()
        res = process(str(ws.root), BUILD, exposures, run_id=f"load{r}")
        wall = time.perf_counter() - t0
        ok = [x for x in res if x["status"] == "ok"]
        misses = [x for x in ok if not x["hit"]]
        in_tasks = sum(x.get("wall_s", 0.0) for x in res)
        row = {
            "round": r + 1, "new_exposures": len(batch), "exposures": len(exposures),
            "tasks": len(res), "misses": len(misses), "hits": len(ok) - len(misses),
            "failed": len(res) - len(ok), "ingest_s": round(t_ingest, 1),
            "wall_s": round(wall, 1),
            "new_exposures_per_min": round(60 * len(batch) / wall, 1),
            "tasks_per_s": round(len(res) / wall, 2),
            "in_task_s": round(in_tasks, 1),
            "overhead_share": round(max(0.0, 1 - in_tasks / args.workers / wall), 3),
            "catalog_files": catalog_files(ws),
            "objects": sum(1 for _ in ws.store.ids()),
            "query_ms": query_latency(ws),
        }
        if args.compact_each_round:
            t0 = time.perf_counter()
            ws.catalog.compact()
            row["compact_s"] = round(time.perf_counter() - t0, 1)
            row["catalog_files_after_compact"] = catalog_files(ws)
            row["query_ms_after_compact"] = query_latency(ws)
        errors = sorted({x.get("error", "")[:120] for x in res if x["status"] != "ok"})
        if errors:
            row["errors"] = errors[:5]
        rounds.append(row)
        print(json.dumps(row), flush=True)

    # All hits: the pure cost of orchestration plus the hit checks.
    exposures = ws.catalog.current_exposure_ids()
    t0 = time.perf_counter()
    res = process(str(ws.root), BUILD, exposures, run_id="load-hits")
    wall = time.perf_counter() - t0
    hits = {"tasks": len(res), "hits": sum(bool(x["hit"]) for x in res), "wall_s": round(wall, 1),
            "ms_per_task": round(1e3 * wall / max(1, len(res)), 1)}
    print("all-hits rerun", json.dumps(hits), flush=True)
    t0 = time.perf_counter()
    ws.catalog.compact()
    compact_s = time.perf_counter() - t0
    after = {"compact_s": round(compact_s, 1), "catalog_files": catalog_files(ws),
             "query_ms": query_latency(ws)}
    print("after compaction", json.dumps(after), flush=True)
    result = {"args": vars(args), "prefect_startup_s": startup, "rounds": rounds, "all_hits": hits, "compacted": after,
              "cpu_count": os.cpu_count(), "load_avg_end": os.getloadavg()}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
