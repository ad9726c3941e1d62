"""Benchmark: peak memory (and wall time) of a process running calops' detector1 against one
running jwst 3.0's Detector1Pipeline, on the SAME full-frame files, in the same run.

Run by hand (not collected by pytest):

    PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_detector1_memory.py
        [--workdir DIR] [--ngroups 10] [--repeat 2] [--no-jwst] [--keep]

What it does:

1. Once per work dir: simulates one full-frame 2048x2048 NIRCam NRCA1 RAPID exposure
   (``--ngroups`` groups, 1 integration, full-frame references) and writes its uncal file and
   a CRDS cache holding its references (``calops simulate``'s writers), under ``--workdir``
   (default ``$TMPDIR/calops-bench-d1mem-<ngroups>``; reused while it exists).
2. Each measured program runs in its own child process; its peak resident set is the child's
   ``VmHWM`` (/proc/self/status, the kernel's high-water mark of that process's memory since
   its exec), which the child prints as it exits. (``ru_maxrss`` from ``wait4`` would not do:
   Linux carries the forking parent's resident set into the child's ``ru_maxrss``.)
   - ``idle``: ``calops stage --help`` (the CLI's start-up), and a process that only imports
     what a stage run imports before it reads a file (every stage package, numba, astropy,
     crds): the floor under any ``calops stage`` run;
   - ``calops``: ``calops stage calwebb_detector1 <uncal> --crds <cache> -o <dir>``, exactly
     as a user runs it (read the uncal, pick the references in CRDS, run the chain, write
     ``_rate``/``_rateints``). The first run is a warm-up (numba cache); the best of the
     ``--repeat`` following runs is reported;
   - ``jwst``: jwst 3.0's ``Detector1Pipeline().run(<uncal>)`` with ``CRDS_PATH`` at the
     same cache (no server, no overrides: the cache answers N/A where a real context would),
     writing the same two products; run once, at ``nice -n 10``.
3. Prints each peak, the ratio calops/jwst, and the speed ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXP = "jw01234001001_01101_00001_nrca1"


def prepare(work: Path, ngroups: int, seed: int = 0) -> tuple[Path, Path]:
    """(uncal path, CRDS cache) of the benchmark exposure, written once."""
    uncal_dir, crds = work / "uncal", work / "crds"
    done = work / "READY"
    if done.exists():
        return next(uncal_dir.glob("*_uncal.fits")), crds
    from dataclasses import replace

    from catalogs.crds_cache import contexts_from_program, write_cache
    from store.fits import write_uncal
    from transforms.sim import program as P

    e = P.ExposureSpec("NRCA1", "F200W", "CLEAR", "RAPID", "FULL", ngroups, 1,
                       "2024-03-10T04:00:00")
    spec = replace(P.program_spec("full"), exposures=(e,), nstars=300, ngalaxies=300)
    t = time.perf_counter()
    prog = P.simulate_program(spec, seed)
    uncal_dir.mkdir(parents=True, exist_ok=True)
    ex = prog.exposures[0]
    path = write_uncal(ex.uncal, uncal_dir / ex.truth.name)
    write_cache(crds, contexts_from_program(prog))
    done.write_text("ok\n")
    print(f"simulated and wrote {path.name} + CRDS cache in {time.perf_counter() - t:.0f} s")
    return Path(path), crds


def measure(argv: list[str], env: dict[str, str], nice: int = 0) -> tuple[float, float, str]:
    """(wall s, peak RSS MiB, stderr tail) of one child process."""
    t = time.perf_counter()
    pre = (lambda: os.nice(nice)) if nice else None
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=pre)
    # read the pipes before waiting (a full pipe would block the child)
    out, err = p.stdout.read(), p.stderr.read()
    p.wait()
    wall = time.perf_counter() - t
    text = err.decode(errors="replace")
    if p.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed ({p.returncode}):\n"
                           f"{(out.decode(errors='replace') + text)[-3000:]}")
    hwm = [ln for ln in text.splitlines() if ln.startswith(HWM)]
    return wall, int(hwm[-1].split()[1]) / 1024, text[-500:]


HWM = "CALOPS-BENCH-VmHWM"
# prepended to every child's code: print the process's VmHWM (kB) on stderr at exit
REPORT = ("import atexit, sys\n"
          "def _hwm():\n"
          "    with open('/proc/self/status') as f:\n"
          "        kb = [ln.split()[1] for ln in f if ln.startswith('VmHWM')][0]\n"
          f"    sys.stderr.write('{HWM} ' + kb + '\\n')\n"
          "atexit.register(_hwm)\n")


# what `calops stage` imports before it reads a file (every stage package registers its steps)
IMPORTS = ("from flows import cli, filelevel, runner\n"
           "from transforms import registry\n"
           "registry.stages()\n")


def calops_argv(*args: str) -> list[str]:
    return [sys.executable, "-c", REPORT + "from flows.cli import main\n"
            "sys.exit(main(sys.argv[1:]))", *args]


def jwst_code(uncal: Path, outdir: Path) -> str:
    return REPORT + textwrap.dedent(f"""
        import logging
        logging.disable(logging.WARNING)
        from jwst.pipeline import Detector1Pipeline
        p = Detector1Pipeline()
        p.save_results = True
        p.output_dir = {str(outdir)!r}
        p.run({str(uncal)!r})
        """)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--ngroups", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-jwst", action="store_true", help="skip the jwst run")
    ap.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--keep", action="store_true", help="keep the products written")
    a = ap.parse_args()
    work = Path(a.workdir or Path(tempfile.gettempdir()) / f"calops-bench-d1mem-{a.ngroups}")
    if not (work / "READY").exists():  # simulate in a child: this process stays small
        subprocess.run([sys.executable, __file__, "--prepare-only", "--workdir", str(work),
                        "--ngroups", str(a.ngroups)], check=True)
    uncal, crds = prepare(work, a.ngroups)
    if a.prepare_only:
        return
    size = uncal.stat().st_size / 2**20
    print(f"uncal {uncal} ({size:.0f} MiB), CRDS cache {crds}")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update({"CRDS_PATH": str(crds), "CRDS_MODE": "local", "CRDS_OBSERVATORY": "jwst",
                "CRDS_SERVER_URL": "https://localhost:9/jwst-serverless-mode",
                "CRDS_READONLY_CACHE": "1", "CRDS_CONTEXT": "jwst_0001.pmap",
                "STPIPE_DISABLE_CRDS_STEPPARS": "True", "DO_NOT_TRACK": "1"})
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)

    cli = measure(calops_argv("stage", "--help"), env)[1]
    idle = measure([sys.executable, "-c", REPORT + IMPORTS], env)[1]
    print(f"idle: `calops stage --help` peak RSS {cli:.0f} MiB; a process with a stage run's "
          f"imports (every stage package, numba, astropy, crds) {idle:.0f} MiB")
    args = ["stage", "calwebb_detector1", str(uncal), "--crds", str(crds),
            "--context", "jwst_0001.pmap", "-o", str(out / "calops")]
    w0, p0, _ = measure(calops_argv(*args), env)
    print(f"calops warm-up run: {w0:.1f} s, peak RSS {p0:.0f} MiB")
    runs = [measure(calops_argv(*args), env)[:2] for _ in range(a.repeat)]
    wall = min(r[0] for r in runs)
    peak = min(r[1] for r in runs)
    print(f"calops stage calwebb_detector1: best {wall:.1f} s wall (whole process: start-up, "
          f"read, CRDS, chain, write), peak RSS {peak:.0f} MiB "
          f"(runs: {', '.join(f'{r[0]:.1f} s/{r[1]:.0f} MiB' for r in runs)})")
    if not a.no_jwst:
        jw, jp, _ = measure([sys.executable, "-c", jwst_code(uncal, out / "jwst")], env, nice=10)
        print(f"jwst Detector1Pipeline (same files, same references, nice 10): {jw:.1f} s "
              f"wall, peak RSS {jp:.0f} MiB")
        print(f"ratio calops/jwst peak RSS: {peak / jp:.3f} (aim < 0.25); above the idle "
              f"process: {(peak - idle) / jp:.3f}; jwst/calops wall: {jw / wall:.1f}x")
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f} on {} cores"
          .format(*os.getloadavg(), os.cpu_count()))
    if not a.keep:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
