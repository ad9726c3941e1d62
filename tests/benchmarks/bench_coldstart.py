"""Benchmark: the first run on a fresh install (empty numba cache) against a warm one.

Each measurement runs in a new Python process whose ``NUMBA_CACHE_DIR`` points at a temporary
folder: the first process finds it empty and compiles every kernel it calls (cold); a second
process on the same folder loads them from the cache (warm, what every later command sees).
The child also times a second run in its own process (in memory, nothing to load) and lists
the kernels that took longest to compile (numba's ``numba:compile`` events; "self" excludes the
kernels compiled inside it).

Run by hand (not collected by pytest):

    .venv/bin/python tests/benchmarks/bench_coldstart.py [--size 1024] [--ngroups 10]
        [--nints 1] [--top 15] [--demo] [--warmup]

``--demo`` also times ``calops demo`` on a fresh output folder, cold and warm (it simulates,
runs detector1, image2 and image3 under two builds, reissues an exposure and diffs: every
kernel the product calls). ``--warmup`` times ``calops warmup`` into the empty cache and then
detector1 against that cache (what a container image built with ``calops warmup`` sees).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------------
# child: one detector1 run (cold or warm cache), compile events recorded
# ------------------------------------------------------------------------------------------------

def _inputs(size: int, ngroups: int, nints: int, seed: int = 1):
    """A NIRCam window exposure and its references, made with numpy only (the simulator has
    kernels of its own, which would be compiled before the measurement)."""
    import numpy as np

    from transforms.model import DataModel
    from transforms.sim import readout
    from transforms.sim import references as R

    ua = "2022-01-01T00:00:00"
    sub = readout.custom_subarray(1, 1, size, size, 4 if size % 4 == 0 else 1, f"SUB{size}")
    tim = readout.timing("NIRCAM", "RAPID", sub, ngroups, nints)
    props = R.detector_properties("NRCA1", seed, sub)
    refs = {
        "mask": R.mask_ref(props, ua), "saturation": R.saturation_ref(props, ua),
        "superbias": R.superbias_ref(props, ua), "linearity": R.linearity_ref(props, ua),
        "dark": R.dark_ref(props, ua, tim.tframe, tim.nframes_per_integration + 5, "NRC_IMAGE"),
        "gain": R.gain_ref(props, ua), "readnoise": R.readnoise_ref(props, ua),
        "flat": R.flat_ref(props, ua, "F200W", "CLEAR"),
    }
    rng = np.random.default_rng(seed)
    rate = rng.gamma(2.0, 5.0, (size, size)).astype(np.float32)  # DN per group
    rate[rng.random((size, size)) < 1e-3] = 5000.0  # some pixels saturate part-way
    data = np.empty((nints, ngroups, size, size), np.uint16)
    for i in range(nints):
        cr = np.zeros((size, size), np.float32)
        for g in range(ngroups):
            cr[rng.random((size, size)) < 2e-4] += 800.0  # cosmic rays: the jump paths run
            v = props.superbias + rate * (g + 1) + cr + rng.normal(0, 9, (size, size))
            data[i, g] = np.clip(np.rint(v), 0, 65535)
    meta = {"instrument.name": "NIRCAM", "instrument.detector": "NRCA1",
            "exposure.readpatt": "RAPID", "exposure.nframes": tim.nframes,
            "exposure.groupgap": tim.groupgap, "exposure.ngroups": ngroups,
            "exposure.nints": nints, "exposure.frame_time": tim.tframe,
            "exposure.group_time": tim.tgroup, "exposure.frame_divisor": tim.nframes,
            "exposure.noutputs": sub.noutputs, "subarray.name": sub.name,
            "subarray.xstart": 1, "subarray.ystart": 1, "subarray.xsize": size,
            "subarray.ysize": size, "subarray.fastaxis": -1, "subarray.slowaxis": 2}
    return DataModel("uncal", {"data": data}, meta), refs


class _CompileTimes:
    """Per kernel: total and self compile time (s of process CPU, so that a busy machine does
    not inflate it), from numba's nested compile events."""

    def __init__(self) -> None:
        from numba.core import event

        class L(event.Listener):
            def on_start(inner, ev):  # noqa: N805
                self.stack.append([time.process_time(), 0.0])

            def on_end(inner, ev):  # noqa: N805
                t0, child = self.stack.pop()
                dt = time.process_time() - t0
                if self.stack:
                    self.stack[-1][1] += dt
                disp = ev.data["dispatcher"]
                name = f"{disp.py_func.__module__}.{disp.py_func.__qualname__}"
                tot, own, n = self.kernels.get(name, (0.0, 0.0, 0))
                self.kernels[name] = (tot + dt, own + dt - child, n + 1)
                if not name.startswith("numba."):
                    self.sigs.setdefault(name, []).append(str(ev.data["args"]))

        self.stack: list[list[float]] = []
        self.kernels: dict[str, tuple[float, float, int]] = {}
        self.sigs: dict[str, list[str]] = {}
        self.listener = L()
        event.register("numba:compile", self.listener)


def child_demo(args: argparse.Namespace) -> None:
    """``calops demo`` in this process, compile events recorded (the threads task runner runs
    its tasks in this process)."""
    t0 = time.perf_counter()
    rec = _CompileTimes()
    from flows.cli import main as cli

    with open(os.devnull, "w") as null:
        old, sys.stdout = sys.stdout, null
        try:
            rc = cli(["demo", "--out", args.child_demo])
        finally:
            sys.stdout = old
    if rc:
        sys.exit(f"calops demo failed with exit code {rc}")
    print(json.dumps({"wall_s": time.perf_counter() - t0, "kernels": rec.kernels,
                      "sigs": rec.sigs}))


def child(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    import numba  # noqa: F401

    rec = _CompileTimes()
    from transforms.detector1 import default_plan, run
    t_import = time.perf_counter() - t0
    uncal, refs = _inputs(args.size, args.ngroups, args.nints)
    plan = default_plan(refs, meta=uncal.meta)
    t = time.perf_counter()
    first = run(uncal, plan)
    t_first = time.perf_counter() - t
    t = time.perf_counter()
    run(uncal, plan)
    t_second = time.perf_counter() - t
    print(json.dumps({"import_s": t_import, "first_s": t_first, "second_s": t_second,
                      "kernels": rec.kernels, "sigs": rec.sigs,
                      "rate_sum": float(__import__("numpy").nansum(first["rate"]["data"]))}))


# ------------------------------------------------------------------------------------------------
# parent
# ------------------------------------------------------------------------------------------------

def _env(cache: str) -> dict[str, str]:
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = cache
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    for k, v in (("DO_NOT_TRACK", "1"), ("PREFECT_SERVER_ANALYTICS_ENABLED", "false"),
                 ("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"),
                 ("CRDS_MODE", "local")):
        env.setdefault(k, v)
    return env


def _child(cache: str, a: argparse.Namespace, demo_out: str | None = None) -> tuple[dict, float]:
    cmd = [sys.executable, __file__, "--child", "--size", str(a.size), "--ngroups",
           str(a.ngroups), "--nints", str(a.nints)]
    if demo_out:
        cmd = [sys.executable, __file__, "--child-demo", demo_out]
    t = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, env=_env(cache), capture_output=True, text=True)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode:
        sys.exit(f"child failed:\n{out.stderr}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["cpu_s"] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return res, wall


def _calops(cache: str, *argv: str) -> float:
    exe = Path(sys.executable).with_name("calops")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "flows.cli"]
    t = time.perf_counter()
    out = subprocess.run(cmd + list(argv), env=_env(cache), capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode:
        sys.exit(f"calops {' '.join(argv)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return wall


def _cache_files(cache: str) -> int:
    return sum(1 for _ in Path(cache).rglob("*.nbi"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-demo", metavar="OUT", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=1024, help="exposure is size x size pixels")
    ap.add_argument("--ngroups", type=int, default=10)
    ap.add_argument("--nints", type=int, default=1)
    ap.add_argument("--top", type=int, default=15, help="kernels listed by compile time")
    ap.add_argument("--demo", action="store_true", help="also time `calops demo` cold and warm")
    ap.add_argument("--no-detector1", action="store_true", help="skip the detector1 timing")
    ap.add_argument("--sigs", action="store_true",
                    help="also list the signatures each calops kernel was compiled for")
    ap.add_argument("--warmup", action="store_true",
                    help="also time `calops warmup`, then detector1 on the cache it filled")
    a = ap.parse_args()
    if a.child:
        child(a)
        return
    if a.child_demo:
        child_demo(a)
        return
    if not a.no_detector1:
        detector1(a)
    if a.warmup:
        warmup(a)
    if a.demo:
        demo(a)


def _signatures(res: dict) -> None:
    for name, sigs in sorted(res.get("sigs", {}).items()):
        for sig in sigs:
            print(f"    {name}{sig}")


def _top(kernels: dict, n: int) -> None:
    ranked = sorted(kernels.items(), key=lambda kv: -kv[1][1])
    total_self = sum(v[1] for v in kernels.values())
    print(f"  {len(kernels)} kernels compiled, {total_self:.1f} s CPU in all; top {n} by own "
          "compile time (CPU):")
    for name, (tot, own, k) in ranked[:n]:
        print(f"    {own:7.2f}s own {tot:7.2f}s with callees  x{k}  {name}")


def warmup(a: argparse.Namespace) -> None:
    """`calops warmup` into an empty cache, then detector1 (and the demo with --demo) on it:
    what a container image built with `calops warmup` sees; nothing should compile."""
    print(f"calops warmup; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="calops-numba-") as cache, \
            tempfile.TemporaryDirectory(prefix="calops-demo-") as out:
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        w = _calops(cache, "warmup")
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        print(f"  calops warmup into an empty cache: {w:.1f} s wall, {cpu:.1f} s CPU")
        after, after_wall = _child(cache, a)
        print(f"  then detector1: first run {after['first_s']:.2f} s, process {after_wall:.1f} s; "
              f"kernels compiled: {sorted(after['kernels']) or 'none'}")
        if a.demo:
            res, wall = _child(cache, a, demo_out=str(Path(out) / "demo"))
            print(f"  then calops demo: {wall:.1f} s wall, {res['cpu_s']:.1f} s CPU; kernels "
                  f"compiled: {sorted(res['kernels']) or 'none'}")


def demo(a: argparse.Namespace) -> None:
    print(f"calops demo; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="calops-numba-") as cache, \
            tempfile.TemporaryDirectory(prefix="calops-demo-") as out:
        runs = [_child(cache, a, demo_out=str(Path(out) / "demo")) for _ in range(2)]
        (cold, cold_wall), (warm, warm_wall) = runs
        print(f"  fresh install (empty numba cache): {cold_wall:.1f} s wall, "
              f"{cold['cpu_s']:.1f} s CPU; warm cache: {warm_wall:.1f} s wall, "
              f"{warm['cpu_s']:.1f} s CPU; kernels compiled when warm: {len(warm['kernels'])}")
        _top(cold["kernels"], a.top)
        if a.sigs:
            _signatures(cold)


def detector1(a: argparse.Namespace) -> None:
    print(f"detector1 on a {a.size}x{a.size} exposure, {a.ngroups} groups, {a.nints} "
          f"integration(s); load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="calops-numba-") as cache:
        cold, cold_wall = _child(cache, a)
        warm, warm_wall = _child(cache, a)
        assert cold["rate_sum"] == warm["rate_sum"], "cold and warm results differ"
        print(f"{'':34}{'cold cache':>12}{'warm cache':>12}")
        for label, key in (("import transforms.detector1", "import_s"),
                           ("first detector1 run", "first_s"),
                           ("second run, same process", "second_s")):
            print(f"  {label:<32}{cold[key]:>11.2f}s{warm[key]:>11.2f}s")
        print(f"  {'whole process (wall)':<32}{cold_wall:>11.2f}s{warm_wall:>11.2f}s")
        print(f"  {'whole process (CPU)':<32}{cold['cpu_s']:>11.2f}s{warm['cpu_s']:>11.2f}s")
        print(f"  kernels compiled when warm: {len(warm['kernels'])}; cache index files: "
              f"{_cache_files(cache)}")
        _top(cold["kernels"], a.top)
        if a.sigs:
            _signatures(cold)


if __name__ == "__main__":
    main()
