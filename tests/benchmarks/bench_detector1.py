"""Benchmark: the whole detector1 chain on a full-frame 2048x2048, 10-group, 1-integration
NIRCam exposure against jwst 3.0's Detector1Pipeline on the SAME uncal file and CRDS cache, in
the same process and the same run; wall times after a warm-up run of each (numba kernels
loaded, jwst and its references' code imported), and memory.

Run by hand (not collected by pytest):

    PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_detector1.py [--repeat 3]
        [--jwst-repeat 1] [--no-jwst] [--cores all] [--ngroups 10] [--workdir DIR]
    .venv/bin/python tests/benchmarks/bench_detector1.py --synthetic [--with-cfn] [--reference]
    .venv/bin/python tests/benchmarks/bench_detector1.py --validate   # truth numbers of the docs

Inputs: the simulated full-frame NRCA1 RAPID exposure and the CRDS cache of its references that
bench_detector1_memory.py writes (once, cached under ``$TMPDIR/calops-bench-d1mem-<ngroups>``).
calops plans the stage as ``calops stage calwebb_detector1`` does (the file-level build: newest
step versions, JWST defaults; references picked in the cache; a step whose reference is N/A is
skipped), and jwst runs ``Detector1Pipeline`` with ``CRDS_PATH`` at the same cache (no server,
no overrides; FIELD-NOTES.md), so both run the steps the cache has references for; the steps
each ran are printed from the products' ``cal_step`` (S_*) statuses. Times:

- ``calops chain``: ``transforms.detector1.run`` on the uncal already read, references loaded;
- ``calops read + refs + chain``: the same plus reading the uncal and every reference file
  (what jwst's ``run(path)`` also does), no output written;
- ``jwst``: ``Detector1Pipeline().run(uncal_path)`` with ``save_results = False`` (it reads
  the uncal and the references, runs, returns the rate model), logging at WARNING.

``--synthetic``: the older in-memory inputs (``make_inputs``, no files, no jwst), for
``--with-cfn`` and ``--reference`` (stcal/jwst equivalents of single steps).

Memory: ``peak RSS`` is the process's maximum resident set (inputs + references + chain);
``chain peak alloc`` is tracemalloc's peak of new allocations during one chain run (numpy
reports its buffers to tracemalloc), i.e. what the chain itself needs on top of its inputs.
Process peaks against jwst's are measured by bench_detector1_memory.py (one child each).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc

import numpy as np

from transforms.detector1 import default_plan, run
from transforms.model import DataModel
from transforms.sim import references as R


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_inputs(ngroups: int, seed: int = 1):
    props = R.detector_properties("NRCA1", seed)
    ua = "2022-01-01T00:00:00"
    tframe = 10.73676
    refs = {
        "mask": R.mask_ref(props, ua), "saturation": R.saturation_ref(props, ua),
        "superbias": R.superbias_ref(props, ua), "linearity": R.linearity_ref(props, ua),
        "dark": R.dark_ref(props, ua, tframe, ngroups, "NRC_IMAGE"),
        "gain": R.gain_ref(props, ua), "readnoise": R.readnoise_ref(props, ua),
        "flat": R.flat_ref(props, ua, "F200W", "CLEAR"),
        "ipc": R.ipc_ref(props, ua),
    }
    rng = np.random.default_rng(seed)
    rate = rng.gamma(2.0, 5.0, (2048, 2048)).astype(np.float32)  # DN per group
    rate[rng.random((2048, 2048)) < 1e-3] = 5000.0  # some pixels saturate part-way
    data = np.empty((1, ngroups, 2048, 2048), np.uint16)
    for g in range(ngroups):
        v = props.superbias + rate * (g + 1) + rng.normal(0, 9, (2048, 2048))
        data[0, g] = np.clip(np.rint(v), 0, 65535)
    meta = {"instrument.name": "NIRCAM", "instrument.detector": "NRCA1",
            "exposure.readpatt": "RAPID", "exposure.nframes": 1, "exposure.groupgap": 0,
            "exposure.ngroups": ngroups, "exposure.nints": 1, "exposure.frame_time": tframe,
            "exposure.group_time": tframe, "subarray.name": "FULL", "subarray.xstart": 1,
            "subarray.ystart": 1, "subarray.xsize": 2048, "subarray.ysize": 2048,
            "subarray.fastaxis": -1, "subarray.slowaxis": 2}
    return DataModel("uncal", {"data": data}, meta), refs


def time_chain(uncal, plan, repeat):
    per_step: dict[str, float] = {}
    last = [time.perf_counter()]

    def on_step(name, _snap):
        now = time.perf_counter()
        per_step[name] = min(per_step.get(name, 1e9), now - last[0])
        last[0] = now

    walls = []
    for _ in range(repeat):
        last[0] = t0 = time.perf_counter()
        run(uncal, plan, on_step=on_step)
        walls.append(time.perf_counter() - t0)
    tracemalloc.start()
    run(uncal, plan)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return walls, per_step, peak / 2**20


def reference_timings(uncal, refs):
    """stcal/jwst versions of saturation, superbias, refpix, linearity, dark on the same data."""
    from stcal.dark_current.dark_sub import average_dark_frames_3d  # noqa: F401
    from stcal.linearity.linearity import linearity_correction
    from stcal.saturation.saturation import flag_saturated_pixels
    from transforms import dq as DQ
    out = {}
    data = uncal["data"].astype(np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    pdq = np.zeros(data.shape[-2:], np.uint32)
    t = time.perf_counter()
    flag_saturated_pixels(data, gdq, pdq, np.array(refs["saturation"]["data"]),
                          np.array(refs["saturation"]["dq"]), 65535.0, DQ.PIXEL, 1,
                          read_pattern=[[g + 1] for g in range(data.shape[1])],
                          bias=np.array(refs["superbias"]["data"]))
    out["saturation (stcal)"] = time.perf_counter() - t
    t = time.perf_counter()
    data -= refs["superbias"]["data"]
    out["superbias (numpy, as jwst)"] = time.perf_counter() - t
    try:
        from jwst.refpix.reference_pixels import correct_model
        from stdatamodels.jwst import datamodels as dm
        m = dm.RampModel(data=data, groupdq=gdq, pixeldq=pdq | refs["mask"]["dq"])
        for k, v in {"instrument.name": "NIRCAM", "instrument.detector": "NRCA1",
                     "subarray.name": "FULL", "subarray.xstart": 1, "subarray.ystart": 1,
                     "subarray.xsize": 2048, "subarray.ysize": 2048, "subarray.fastaxis": -1,
                     "subarray.slowaxis": 2, "exposure.readpatt": "RAPID",
                     "exposure.noutputs": 4, "exposure.type": "NRC_IMAGE"}.items():
            obj = m.meta
            *path, leaf = k.split(".")
            for p in path:
                obj = getattr(obj, p)
            setattr(obj, leaf, v)
        t = time.perf_counter()
        correct_model(m, True, True, 11, 1.0, True,
                      {"refpix_algorithm": "median", "sirs_kernel_model": None, "sigreject": 4.0,
                       "gaussmooth": 1.0, "halfwidth": 30}, 3.0)
        out["refpix (jwst)"] = time.perf_counter() - t
        data = m.data
    except ImportError:
        pass
    t = time.perf_counter()
    linearity_correction(data, gdq, pdq, np.array(refs["linearity"]["coeffs"]),
                         np.array(refs["linearity"]["dq"]), DQ.PIXEL)
    out["linearity (stcal)"] = time.perf_counter() - t
    t = time.perf_counter()
    data -= refs["dark"]["data"][: data.shape[1]]
    out["dark_current (numpy, as stcal)"] = time.perf_counter() - t
    return out


def validate() -> None:
    """The end-to-end truth numbers of docs/detector1.md (simulated SUB160/SUB320 exposures)."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transforms" / "detector1"))
    from d1_helpers import sim_exposure
    from transforms.detector1 import clean_flicker_noise as cfn
    from transforms.detector1 import dq_init, superbias
    from transforms.sim import readout
    from transforms.sim.detector import Effects
    for patt, ng in (("RAPID", 10), ("MEDIUM8", 5), ("DEEP8", 4)):
        for label, eff in (("noiseless", Effects.noiseless()), ("all effects", Effects())):
            sub = readout.subarray("NIRCAM", "SUB160")
            rate = np.full((160, 160), 50.0 if patt != "RAPID" else 2000.0)
            uncal, refs, truth, props, _ = sim_exposure(sub, patt, ngroups=ng, effects=eff,
                                                        rate_e=rate)
            out = run(uncal, default_plan(refs))["rate"]
            sci = ~props.refpix & (props.flat > 0)
            want = (truth.light_rate_dn + truth.dark_rate_dn)[sci]
            rel = (out["data"][sci] - want) / want
            med = np.nanmedian(rel)
            print(f"{patt} ngroups={ng} {label}: median relative error {med:+.2e}, robust "
                  f"scatter {1.4826 * np.nanmedian(np.abs(rel - med)):.2e}, "
                  f"finite {np.isfinite(rel).mean():.4f}")
    sub = readout.subarray("NIRCAM", "SUB320")
    rate = np.full((320, 320), 200.0)
    yy, xx = np.mgrid[:320, :320]
    for y0, x0 in np.random.default_rng(3).uniform(10, 310, (12, 2)):
        rate += 2e5 * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / 8.0)
    eff = Effects.noiseless(read_noise=True, one_over_f=True, one_over_f_rms=3.0)
    uncal, refs, truth, _, tim = sim_exposure(sub, "RAPID", ngroups=6, effects=eff, rate_e=rate)
    m = superbias.apply(dq_init.apply(uncal, refs, dq_init.DQInitParams()), refs,
                        superbias.SuperbiasParams())
    out = cfn.apply(m, {}, cfn.CleanFlickerNoiseParams())
    per_group = (truth.light_rate_dn + truth.dark_rate_dn) * tim.tgroup
    bg = rate < 300

    def row_power(model):
        d = np.diff(model["data"][0].astype(np.float64), axis=0) - per_group[None]
        d = np.where(bg[None], d, np.nan)
        return np.mean([np.nanvar(np.nanmedian(x, axis=1)) for x in d])

    p0, p1 = row_power(m), row_power(out)
    print(f"clean_flicker_noise SUB320, 1/f rms 3 DN: variance of row medians of the group "
          f"differences {p0:.3f} -> {p1:.3f} DN^2 (x{p1 / p0:.3f})")


CRDS_ENV = {"CRDS_MODE": "local", "CRDS_OBSERVATORY": "jwst",
            "CRDS_SERVER_URL": "https://localhost:9/jwst-serverless-mode",
            "CRDS_READONLY_CACHE": "1", "CRDS_CONTEXT": "jwst_0001.pmap",
            "STPIPE_DISABLE_CRDS_STEPPARS": "True", "DO_NOT_TRACK": "1"}


def file_inputs(ngroups: int, workdir: str | None):
    """(uncal path, CRDS cache) of bench_detector1_memory.py's exposure (simulated once, in a
    child process, and reused)."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    import bench_detector1_memory as M

    work = Path(workdir or Path(tempfile.gettempdir()) / f"calops-bench-d1mem-{ngroups}")
    if not (work / "READY").exists():
        subprocess.run([sys.executable, str(here / "bench_detector1_memory.py"),
                        "--prepare-only", "--workdir", str(work), "--ngroups", str(ngroups)],
                       check=True)
    return M.prepare(work, ngroups)


def calops_plan(uncal, crds: str, cores: str | None, read=None):
    """The detector1 plan ``calops stage calwebb_detector1`` runs on ``uncal`` (file-level
    build, references chosen in the cache, N/A skips), references read (with ``read``:
    path, arrays -> model; default flows.runner.load_reference)."""
    import dataclasses

    from catalogs import builds as buildlib
    from flows import filelevel as FL

    if read is None:
        from flows.runner import load_reference as read
    meta = dict(uncal.meta)
    planned = buildlib.plan(FL.pseudo_build(), "detector1", meta)
    if cores:
        planned = [dataclasses.replace(p, params=dataclasses.replace(p.params,
                                                                     maximum_cores=cores))
                   if hasattr(p.params, "maximum_cores") else p for p in planned]
    planned, paths, _ = FL.choose_references(planned, meta, CRDS_ENV["CRDS_CONTEXT"], crds, {})
    return [dataclasses.replace(p, refs={rt: read(paths[rt], p.spec.arrays_of(rt))
                                         for rt in p.spec.reftypes + p.spec.optional_reftypes
                                         if paths.get(rt) not in (None, FL.NA)})
            if not p.skip else p for p in planned]


# calops step name -> the name of its status in jwst's cal_step schema, where they differ
JWST_STATUS = {"dark_current": "dark_sub"}


def statuses(meta) -> dict[str, str]:
    """step -> COMPLETE/SKIPPED from a calops product's cal_step metadata, named as jwst's
    cal_step schema names them."""
    return {JWST_STATUS.get(k.split(".", 1)[1], k.split(".", 1)[1]): str(v)
            for k, v in meta.items() if k.startswith("cal_step.") and v is not None}


def jwst_runs(path: str, cores: str | None, repeat: int) -> tuple[list[float], dict[str, str]]:
    """Wall times of ``repeat`` Detector1Pipeline runs on ``path`` after one warm-up run, and
    the cal_step statuses of its rate product."""
    import logging

    logging.disable(logging.WARNING)
    from jwst.pipeline import Detector1Pipeline

    def once():
        pipe = Detector1Pipeline()
        pipe.save_results = False
        if cores:
            pipe.jump.maximum_cores = cores
            pipe.ramp_fit.maximum_cores = cores
        t = time.perf_counter()
        out = pipe.run(path)
        dt = time.perf_counter() - t
        done = {k: str(v) for k, v in out.meta.cal_step.instance.items()}
        out.close()
        return dt, done

    t, done = once()
    print(f"jwst warm-up run (imports, first reads): {t:.1f} s")
    walls = [once()[0] for _ in range(repeat)]
    return walls, done


def compare_files(a) -> None:
    """calops' chain and jwst's pipeline on the same uncal file and CRDS cache, same process."""
    path, crds = file_inputs(a.ngroups, a.workdir)
    os.environ.update({**CRDS_ENV, "CRDS_PATH": str(crds)})
    from store import fits as F

    print(f"uncal {path} ({path.stat().st_size / 2**20:.0f} MiB), CRDS cache {crds}")
    uncal = F.read_uncal(path)
    plan = calops_plan(uncal, str(crds), a.cores)
    t = time.perf_counter()
    out = run(uncal, plan)
    print(f"calops warm-up run (numba cache load/compile): {time.perf_counter() - t:.2f} s")
    ours = statuses(out["rate"].meta)
    del out
    walls, per_step, peak_alloc = time_chain(uncal, plan, a.repeat)
    whole = []
    for _ in range(a.repeat):
        t = time.perf_counter()
        u = F.read_uncal(path)
        run(u, calops_plan(u, str(crds), a.cores, read=F.read_reference))
        whole.append(time.perf_counter() - t)
        del u
    ran = [n for n, v in ours.items() if v == "COMPLETE"]
    print(f"calops steps run: {', '.join(ran)}")
    print(f"calops chain: best {min(walls):.2f} s, median {np.median(walls):.2f} s over "
          f"{len(walls)} runs; read + refs + chain: best {min(whole):.2f} s")
    for name, dt in per_step.items():
        print(f"  {name:22s} {dt * 1000:8.1f} ms")
    print(f"chain peak alloc {peak_alloc:.0f} MB")
    load0 = os.getloadavg()
    if a.no_jwst:
        return
    jw, theirs = jwst_runs(str(path), a.cores, a.jwst_repeat)
    jran = [n for n, v in theirs.items() if v == "COMPLETE"]
    print(f"jwst steps run: {', '.join(jran)}")
    only_j = sorted(set(jran) - set(ran))
    only_c = sorted(set(ran) - set(jran))
    print("same steps on both sides" if not (only_j or only_c) else
          f"steps NOT shared: jwst only {only_j}, calops only {only_c}")
    print(f"jwst Detector1Pipeline.run: best {min(jw):.1f} s over {len(jw)} run(s) "
          f"({', '.join(f'{w:.1f}' for w in jw)})")
    print(f"ratio jwst / calops: {min(jw) / min(walls):.1f}x (chain), "
          f"{min(jw) / min(whole):.1f}x (read + refs + chain); best against best")
    print("load average (1, 5, 15 min) before jwst: {:.2f} {:.2f} {:.2f}, after: "
          "{:.2f} {:.2f} {:.2f}, on {} cores".format(*load0, *os.getloadavg(), os.cpu_count()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ngroups", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3, help="timed calops runs")
    ap.add_argument("--jwst-repeat", type=int, default=1,
                    help="timed jwst runs (after one warm-up run; ~20 s each when idle)")
    ap.add_argument("--no-jwst", action="store_true", help="skip jwst")
    ap.add_argument("--workdir", default=None, help="where the simulated files are kept")
    ap.add_argument("--synthetic", action="store_true",
                    help="in-memory synthetic inputs instead of the files (no jwst)")
    ap.add_argument("--with-cfn", action="store_true",
                    help="--synthetic: also run clean_flicker_noise")
    ap.add_argument("--reference", action="store_true",
                    help="--synthetic: time stcal/jwst equivalents of single steps")
    ap.add_argument("--cores", default=None,
                    help='maximum_cores for jump and ramp_fit, both sides (JWST default "1"; '
                         '"all")')
    ap.add_argument("--validate", action="store_true",
                    help="print the end-to-end truth numbers of docs/detector1.md and exit")
    a = ap.parse_args()
    if a.validate:
        validate()
        return
    if not a.synthetic:
        compare_files(a)
        return
    t = time.perf_counter()
    uncal, refs = make_inputs(a.ngroups)
    print(f"inputs built in {time.perf_counter() - t:.1f} s; RSS {rss_mb():.0f} MB "
          f"(uncal {uncal['data'].nbytes / 2**20:.0f} MB, references "
          f"{sum(v.nbytes for r in refs.values() for v in r.arrays.values()) / 2**20:.0f} MB)")
    skip = {"clean_flicker_noise": not a.with_cfn}
    over = ({n: {"maximum_cores": a.cores} for n in ("jump", "ramp_fit")} if a.cores else {})
    plan = default_plan(refs, overrides=over, skip=skip)
    t = time.perf_counter()
    run(uncal, plan)
    print(f"warm-up run (numba cache load/compile): {time.perf_counter() - t:.2f} s")
    base = rss_mb()
    walls, per_step, peak_alloc = time_chain(uncal, plan, a.repeat)
    print(f"steps run: {', '.join(p.spec.name for p in plan if not p.skip)}")
    print(f"chain wall time: best {min(walls):.2f} s, median {np.median(walls):.2f} s "
          f"over {len(walls)} runs")
    for name, dt in per_step.items():
        print(f"  {name:22s} {dt * 1000:8.1f} ms")
    print(f"RSS before the run {base:.0f} MB; chain peak alloc {peak_alloc:.0f} MB; "
          f"process peak RSS {peak_rss_mb():.0f} MB")
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f} on {} cores; timings move with it"
          .format(*os.getloadavg(), os.cpu_count()))
    if a.reference:
        for k, v in reference_timings(uncal, refs).items():
            print(f"  reference {k:32s} {v:7.2f} s")


if __name__ == "__main__":
    main()
