"""`calops demo`: the quarterly-build story on simulated data, in one command.

A fresh workspace; `calops simulate`'s default program (dithered NIRCam, NIRISS and MIRI
imaging, a NIRSpec fixed-slit and a MIRI LRS observation) with its truth and a generated CRDS
cache (context 2 brings new darks and flats, and a recalibrated photometric response for FS and
LRS: ``all_program.SPEC_RESPONSE_CHANGES``); the program processed under the operations build
(NIRCam and NIRISS through detector1, image2, image3; FS and LRS through detector1, spec2 and,
where an association forms, spec3; MIRI imaging through detector1; other modes, e.g. MOS, only
ingested); the candidate build run beside it, reusing what it can (the spectra's rates are the
same, their spec2 recipes differ from photom on, which the demo shows step by step); one
exposure reissued with a definitive ephemeris and reprocessed incrementally; a regression diff
of operations against candidate with an HTML report, and the spectra that moved named with their
flux ratios (median, blue and red ends); and the provenance questions operators ask, answered
from the catalog. Every number printed comes from this run.
"""

from __future__ import annotations

import importlib
import json
import shutil
import threading
import time
import uuid
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flows.workspace import Workspace
from store.errors import CalopsError

MARKER = ".calops-demo"
# The stages the demo runs, chosen by EXP_TYPE: detector1, image2 and image3 on the NIRCam and
# NIRISS imaging; detector1, spec2 and spec3 on the NIRSpec fixed-slit and MIRI LRS spectra (the
# planner sends each exposure through the stages its mode selects); stage 1 alone on MIRI
# imaging. Other modes (e.g. NIRSpec MOS) are ingested, not processed: it keeps the demo about
# as fast as it was before they joined; `calops run all` takes every exposure through all.
STAGES = ["detector1", "image2", "image3", "spec2", "spec3"]
STORY_EXP_TYPES = ("NRC_IMAGE", "NIS_IMAGE", "NRS_FIXEDSLIT", "MIR_LRS-FIXEDSLIT")
STAGE1_ONLY_EXP_TYPES = ("MIR_IMAGE",)
SPEC_MODES = {"NRS_FIXEDSLIT": "FS", "MIR_LRS-FIXEDSLIT": "LRS"}  # how the summary names them
SIM_THREADS = 2  # the sub-programs are simulated side by side (numpy and numba release the GIL)


def _say(msg: str = "") -> None:
    print(msg, flush=True)


def _section(title: str) -> None:
    _say(f"\n== {title} " + "=" * max(0, 74 - len(title)))


def _fresh(out: Path) -> Path:
    """The demo's output directory, emptied only if an earlier demo made it."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise CalopsError(f"{out} exists and was not made by `calops demo`; choose another "
                              "directory with --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by calops demo; safe to delete\n")
    return out


def _stage_counts(results: list[dict]) -> str:
    rows = []
    for stage in STAGES:
        rs = [r for r in results if r["stage"] == stage]
        if rs:
            c = Counter("failed" if r["status"] != "ok" else ("hit" if r["hit"] else "miss")
                        for r in rs)
            rows.append(f"    {stage:<10} {len(rs):>3} tasks   {c['hit']:>3} hits   "
                        f"{c['miss']:>3} computed   {c['failed']:>3} failed")
    return "\n".join(rows)


def _process(home: str, build: str, label: str, exposures: list[str] | None = None,
             stage1_only: list[str] | None = None) -> list[dict]:
    """``exposures`` through STAGES (those their modes select), ``stage1_only`` through
    detector1; one block of counts."""
    from flows import flows

    t0 = time.perf_counter()
    results = flows.process(home, build, exposures, STAGES)
    if stage1_only:
        results += flows.process(home, build, stage1_only, ["detector1"])
    _say(f"  {label}: build {build}, {time.perf_counter() - t0:.1f} s")
    _say(_stage_counts(results))
    for r in results:
        if r["status"] != "ok":
            _say(f"    FAILED {r['stage']} {r['subject']}: {r['error']}")
    return results


def _spec_recipes(ws: Workspace, ops: str, cand: str, spectra: dict[str, str]) -> list[str]:
    """Per spectroscopic exposure: did the candidate reuse its stage 1, and which spec2 steps
    have the operations build's recipes (same step, parameters, input and references) and
    which are new."""
    from transforms import registry

    if not spectra:
        return []
    t = ws.catalog.sql(
        "SELECT DISTINCT subject, build, stage, step, recipe_key, product_id FROM run_steps "
        "WHERE status = 'ok' AND build IN (?, ?) AND stage IN ('detector1', 'spec2') "
        "AND subject IN (SELECT unnest(?::VARCHAR[]))", [ops, cand, list(spectra)]).to_pylist()
    order = registry.stage("spec2").steps
    out = []
    for eid, mode in spectra.items():
        keys = {b: {r["step"]: r["recipe_key"] for r in t
                    if r["subject"] == eid and r["build"] == b and r["stage"] == "spec2"}
                for b in (ops, cand)}
        rate = {b: {json.loads(r["product_id"]).get("rate") for r in t
                    if r["subject"] == eid and r["build"] == b and r["stage"] == "detector1"
                    and str(r["product_id"] or "").startswith("{")} for b in (ops, cand)}
        steps = [s for s in order if s in keys[ops] and s in keys[cand]]
        same = [s for s in steps if keys[ops][s] == keys[cand][s]]
        new = [s for s in steps if keys[ops][s] != keys[cand][s]]
        d1_txt = ("stage 1 gave the same rate" if rate[ops] and rate[ops] == rate[cand]
                  else "stage 1 gave a new rate")
        out.append(f"  {mode:<4} {eid}: {d1_txt}; spec2 {len(same)} steps with {ops}'s "
                   f"recipes ({_span(same)}), {len(new)} new ({', '.join(new) or 'none'})")
    return out


def _span(steps: list[str]) -> str:
    return "none" if not steps else steps[0] if len(steps) == 1 else f"{steps[0]} .. {steps[-1]}"


def moved_spectra(ws: Workspace, bd) -> list[dict]:
    """The 1-D spectra of the diff that moved: mode (FS, LRS, by the exposures' EXP_TYPE),
    spectrum, stage, kind, subject and the flux ratio B / A (median; at the blue and red ends:
    the median over the first and last tenth of the compared wavelengths)."""
    import numpy as np

    pairs = [p for p in bd.pairs if p.spectra is not None]
    metas = ws.catalog.product_metas([p.product_a for p in pairs if p.product_a])
    out = []
    for p in pairs:
        et = str(metas.get(p.product_a, {}).get("exposure.type") or "")
        mode = SPEC_MODES.get(et) or {"NIRSPEC": "FS", "MIRI": "LRS"}.get(p.instrument or "", "?")
        for sp in p.spectra.moved:
            w = np.asarray(sp.plot.get("wavelength", []), float)
            with np.errstate(invalid="ignore", divide="ignore"):
                r = np.asarray(sp.plot.get("b", []), float) / np.asarray(sp.plot.get("a", []), float)
            ok = np.isfinite(w) & np.isfinite(r)
            w, r = w[ok], r[ok][np.argsort(w[ok])]
            k = max(1, r.size // 10)
            out.append({"mode": mode, "spectrum": sp.name, "stage": p.stage, "kind": p.kind,
                        "subject": p.subject, "ratio_median": sp.ratio_median,
                        "ratio_blue": float(np.median(r[:k])) if r.size else float("nan"),
                        "ratio_red": float(np.median(r[-k:])) if r.size else float("nan"),
                        "wl_shift_pix": sp.wl_shift_pix})
    return sorted(out, key=lambda m: (m["mode"], m["stage"], m["kind"], m["spectrum"]))


def _sql(ws: Workspace, title: str, query: str, params: list | None = None, max_rows: int = 8) -> None:
    from flows.commands import format_table

    _say(f"\n  -- {title}")
    _say("  " + " ".join(query.split()))
    table = ws.catalog.sql(query, params)
    if table.num_rows > max_rows:
        table = table.slice(0, max_rows)
    _say("\n".join("    " + line for line in format_table(table, max_width=34).splitlines()))


def run_demo(out: str | Path = "demo-output", seed: int = 1) -> int:
    """Run the whole story; returns 0 when every stage of every build ran."""
    from flows import prefect_env

    # numpy's notes on wavelength columns with no finite value (outside a slit) are not news
    for msg in ("All-NaN slice encountered", "Mean of empty slice"):
        warnings.filterwarnings("ignore", msg, RuntimeWarning)
    out = _fresh(Path(out).absolute())
    home = out / "home"
    prefect_env.configure(str(home))
    server = prefect_env.TemporaryServer(str(home)).start()  # boots while the sky is simulated
    threading.Thread(target=importlib.import_module, args=("flows.flows",), daemon=True).start()
    try:
        return _story(out, home, seed, server)
    finally:
        server.__exit__()


def _story(out: Path, home: Path, seed: int, server) -> int:
    from catalogs.crds_cache import merged_program_contexts, write_cache
    from flows.ingest import ingest_file
    from flows.workspace import Workspace
    from store.fits import write_uncal
    from transforms.sim.all_program import all_program, simulate_all
    from transforms.sim.program import reissue

    t_start = time.perf_counter()
    _section("1. A fresh workspace and a simulated program")
    ws, _ = Workspace.init(home)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(SIM_THREADS) as pool:  # the parts are independent
        prog = simulate_all(all_program(without=("mos", "ifu")), seed=seed,
                           map_fn=pool.map)  # no full-frame MOS, IFU
    t_sim = time.perf_counter() - t0
    sim = out / "sim"
    (sim / "uncal").mkdir(parents=True)
    files = [write_uncal(e.uncal, sim / "uncal" / e.name) for e in prog.exposures]
    t0 = time.perf_counter()
    write_cache(ws.crds_path, merged_program_contexts(prog)[0])
    t_cache = time.perf_counter() - t0
    sources = [dict(s.as_dict(), program=p.spec.name) for p in prog.imaging for s in p.sources]
    (sim / "sources.json").write_text(json.dumps(sources, indent=1))
    modes = Counter((e.uncal.get("instrument.name"), e.uncal.get("exposure.type"))
                    for e in prog.exposures)
    _say(f"  workspace   {home}")
    _say(f"  program     {prog.imaging[0].spec.program_id}: {len(files)} exposures "
         f"({', '.join(f'{n} {i} {t}' for (i, t), n in sorted(modes.items()))}), "
         f"{len(sources)} sources with known positions and fluxes; simulated in {t_sim:.1f} s")
    _say(f"  CRDS cache  {ws.crds_path}: contexts {', '.join(sorted(ws.crds_contexts()))} "
         f"(context 2: new darks and flats, a recalibrated FS and LRS photom); written in "
         f"{t_cache:.1f} s")
    rid = uuid.uuid4().hex[:8]
    t0 = time.perf_counter()
    story, stage1, spectra = [], [], {}  # exposure ids: every stage, stage 1 only; spec modes
    for f, e in zip(files, prog.exposures):
        eid = ingest_file(ws, f, rid).exposure_id
        et = e.uncal.get("exposure.type")
        if et in STORY_EXP_TYPES:
            story.append(eid)
        elif et in STAGE1_ONLY_EXP_TYPES:
            stage1.append(eid)
        if et in SPEC_MODES:
            spectra[eid] = SPEC_MODES[et]
    _say(f"  ingested    {len(files)} uncal files (pixels and pointing stored apart) in "
         f"{time.perf_counter() - t0:.1f} s")

    _section("2. The builds")
    for b in ws.builds.all():
        _say(f"  {b.name:<8} {b.status:<12} context {b.crds_context:<15} {b.description}")
    ops, cand = ws.builds.operations().name, "11.2"

    _section("3. Process the program under the operations build")
    server.ready()
    res_ops = _process(str(home), ops, "first run", story, stage1)

    n_img = len(story) - len(spectra)
    _say(f"  (stage 1 on {len(story) + len(stage1)} exposures, MIRI with emicorr, rscd, firstframe,\n"
         f"   lastframe, reset; image2/image3 on the {n_img} NIRCam + NIRISS ones; spec2/spec3 on\n"
         f"   the {len(spectra)} NIRSpec fixed-slit and MIRI LRS spectra. `calops run all` takes MIRI\n"
         "   imaging through image2/3 too)")
    if any(r["status"] != "ok" for r in res_ops):
        _say("\n  The first run failed (errors above); stopping here. Outputs so far: " + str(out))
        return 1

    _section("4. Run it again: everything is already realised")
    _process(str(home), ops, "second run", story, stage1)

    _section("5. The candidate build: new context, workarounds dropped")
    from catalogs import questions

    cand_build = ws.builds.get(cand)
    aff = questions.affected(ws.catalog, ws.builds.get(ops), cand_build.crds_context,
                             ws.crds_path).to_pylist()
    changed_refs = sorted({(r["reftype"], r["old_file"], r["new_file"]) for r in aff
                           if r.get("new_file") and r.get("old_file") != r.get("new_file")})
    _say(f"  before running: context {cand_build.crds_context} would change "
         f"{len({(r['subject'], r['stage']) for r in aff})} stage runs of {ops} "
         "(calops affected):")
    for reftype, old_f, new_f in changed_refs:
        _say(f"    {reftype:<8} {old_f} -> {new_f}")
    res_cand = _process(str(home), cand, "candidate run", story, stage1)
    _say("  (stage 1 recomputes where 11.2's new darks or its saturation fix change the ramps;\n"
         "   the spectra's detector1 references are the same in both contexts)")
    for line in _spec_recipes(ws, ops, cand, spectra):
        _say(line)

    _section(f"6. Regression diff: {ops} -> {cand}")
    from catalogs import diff as difflib
    from flows import report

    bd = difflib.diff_builds(ws.catalog, ws.store, ops, cand)
    difflib.record(ws.catalog, bd)
    html = out / "report.html"
    html.write_text(report.html_report(bd))
    _say("\n".join("  " + line for line in report.text_summary(bd).splitlines()))
    moved = moved_spectra(ws, bd)
    _say(f"\n  spectra that moved (flux ratio {cand} / {ops}: median, and at the blue and red "
         "ends):" if moved else "\n  spectra that moved: none")
    for m in moved:
        _say(f"    {m['mode']:<4} {m['spectrum']:<16} {m['stage']:<6} {m['kind']:<4} "
             f"median {m['ratio_median']:.3f}  blue {m['ratio_blue']:.3f}  red "
             f"{m['ratio_red']:.3f}  max |dλ| {m['wl_shift_pix']:.3f} pix  {m['subject']}")
    _say(f"  HTML report: {html} (spectra: overlay and ratio plots per moved spectrum)")

    _section("7. A reissued exposure: definitive ephemeris, new SDP version")
    e0 = prog.imaging[0].exposures[0]
    re = reissue(e0, "ephemeris")
    (sim / "reissue").mkdir()
    path = write_uncal(re.uncal, sim / "reissue" / e0.truth.name)
    got = ingest_file(ws, path, uuid.uuid4().hex[:8])
    _say(f"  {got.exposure_id}: version {got.version} ({got.status}; changed: "
         f"{', '.join(got.changed)})")
    stale = ws.catalog.stale_exposure_ids(ops)
    _say(f"  stale under {ops}: {', '.join(stale) or 'none'}")
    _process(str(home), ops, "incremental reprocess", stale)
    _say("  (stage 1 reused: the pixels did not change; assign_wcs onward recomputed)")

    _section("8. Provenance questions, answered by SQL over the catalog")
    pred = questions.predicted_ephemeris(ws.catalog).to_pylist()
    _say(f"\n  -- products whose lineage includes a predicted ephemeris (calops ask "
         f"predicted-ephemeris): {len(pred)}")
    bad = next(f for _, f, _ in changed_refs) if changed_refs else None
    if bad:
        hit = questions.uses_reference(ws.catalog, bad, descendants=True)
        _say(f"  -- products made with {bad} and everything made from them "
             f"(calops ask uses-reference {bad} --descendants): {hit.num_rows}")
    _sql(ws, "products per build and kind",
         "SELECT build, o.key AS kind, count(DISTINCT o.value) AS products FROM "
         "(SELECT DISTINCT build, product_id FROM run_steps WHERE status = 'ok' "
         "AND product_id LIKE '{%') s, json_each(s.product_id) o GROUP BY ALL ORDER BY ALL",
         max_rows=12)
    _sql(ws, "stage runs reused (hits) and computed, per build",
         "SELECT build, stage, count(DISTINCT (run_id, subject)) FILTER (WHERE cache_hit) AS hits, "
         "count(DISTINCT (run_id, subject)) FILTER (WHERE NOT cache_hit) AS computed "
         "FROM run_steps WHERE status = 'ok' GROUP BY ALL ORDER BY ALL", max_rows=12)
    _sql(ws, "exposure versions (the reissue supersedes, never overwrites)",
         "SELECT exposure_id, version, eph_type, sdp_ver, supersedes FROM exposures "
         "ORDER BY exposure_id, version")
    _sql(ws, "which reference files changed between the builds' recipes",
         "SELECT rr.reftype, s.build, count(DISTINCT rr.filename) AS files, "
         "string_agg(DISTINCT rr.filename, ' ') AS names FROM run_steps s "
         "JOIN recipe_refs rr USING (recipe_key) WHERE rr.reftype IN ('dark', 'flat', 'photom') "
         "GROUP BY ALL ORDER BY ALL")
    _sql(ws, "nondeterministic recipes (one recipe, two products): should be none",
         "SELECT * FROM nondeterministic_recipes")

    failed = [r for r in res_ops + res_cand if r["status"] != "ok"]
    _section("Done")
    _say(f"  {time.perf_counter() - t_start:.0f} s in all. Outputs under {out}:")
    _say(f"    home/         the workspace (store, catalog, builds); try "
         f"`calops --home {home} sql \"select * from runs\"`")
    _say("    sim/          the simulated uncal files, the reissue and the true sources")
    _say(f"    report.html   the regression report {ops} -> {cand}")
    return 1 if failed else 0
