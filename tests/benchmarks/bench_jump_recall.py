"""Benchmark (run by hand): jump recall per amplitude bin and false flags, calops vs stcal.

Simulates exposures with the project simulator (tests/jump_recall.py: every effect on, cosmic
rays as tracks with charge diffusion, IPC, 1/f...), calibrates them with calops' detector1 steps
up to jump, and runs calops' jump 1.0 and 1.1 and stcal's jump (jwst 3.0's JumpStep defaults)
on the same ramps with the same gain and read-noise arrays. Prints, per configuration, the
recall in bins of the group-difference noise sqrt(2 RN**2/nframes + Poisson counts of one
group) and the false-flag rates of clean pixels, with the JWST defaults (neighbour flagging on)
and without neighbour flagging (the detection statistic alone), and each jump's wall time.

    .venv/bin/python tests/benchmarks/bench_jump_recall.py                  # full frames, 2 configs
    .venv/bin/python tests/benchmarks/bench_jump_recall.py --configs legacy,main --size 1024
    .venv/bin/python tests/benchmarks/bench_jump_recall.py --size 512 --boost 4 --seeds 3

Configurations: ``main`` (NRCA1 MEDIUM8 10 groups: what jump 1.1 was developed on),
``untuned`` (NRCA5, SHALLOW4, 6 groups x 2 integrations, read noise x1.3, sky 2 e-/s, cosmic-ray
deposits halved: never used while developing), ``legacy`` (main on the 1.0 simulator's
cosmic rays: point-like hits, no IPC: the "before" of the harder simulator) and ``rapid``
(main read RAPID). Full frames take ~5 minutes per configuration on a loaded 2-core machine
and ~8 GB; --size 512 with --boost 4 is a quicker look. Windows are read through one output,
so their frame time grows with their area: 1024x1024 integrates as long as a full frame
(10.62 s against 10.74 s frames) and gets its cosmic-ray density with --boost 1 (the
docs/validation.md table: --configs main,untuned --size 1024 --boost 1 --seeds 2, 2.5 min,
2.5 GB); 512x512 (2.69 s frames) needs --boost 4 for it.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: jump_recall

import jump_recall as J

from transforms.sim.detector import Effects

CONFIGS = {
    "main": J.MAIN,
    "untuned": J.UNTUNED,
    "legacy": replace(J.MAIN, name="legacy: main on the 1.0 simulator's point-like hits, no IPC",
                      effects=Effects(cr_model="point", ipc=False)),
    "rapid": replace(J.MAIN, name="rapid: NRCA1 full frame RAPID 10 groups", readpatt="RAPID"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="main,untuned")
    ap.add_argument("--size", type=int, default=2048, help="square window (2048: full frame)")
    ap.add_argument("--boost", type=float, default=1.0, help="cosmic-ray rate multiplier")
    ap.add_argument("--seeds", type=int, default=1)
    args = ap.parse_args()
    # warm the numba kernels up on a tiny case (compilation is not what is timed)
    tiny = J.simulate_case(replace(J.MAIN, size=32), 1)
    J.run_calops(tiny, "1.0"), J.run_calops(tiny, "1.1")
    print(J.header())
    for key in args.configs.split(","):
        case = replace(CONFIGS[key], size=args.size, cr_boost=args.boost)
        acc: dict[str, dict] = {}
        times: dict[str, float] = {}
        for seed in range(1, args.seeds + 1):
            sim = J.simulate_case(case, seed)
            maps = J.truth_maps(sim)
            for nb in (True, False):
                runs = (("calops jump 1.0",
                         lambda s=sim, n=nb: J.run_calops(s, "1.0", flag_4_neighbors=n)),
                        ("calops jump 1.1",
                         lambda s=sim, n=nb: J.run_calops(s, "1.1", flag_4_neighbors=n)),
                        ("stcal (jwst 3.0)",
                         lambda s=sim, n=nb: J.run_stcal(s, flag_4_neighbors=n)))
                for label, fn in runs:
                    t = time.perf_counter()
                    gdq = fn()
                    times[label] = times.get(label, 0.0) + (time.perf_counter() - t) / 2
                    _accumulate(acc, f"{label}{'' if nb else ', no neighbours'}",
                                J.score(sim, gdq, maps))
        print(f"| **{case.name}** ({case.size}x{case.size}, cosmic rays x{args.boost:g}, "
              f"{args.seeds} seed(s)) |" + " |" * (len(J.BINS) + 3))
        for label, a in acc.items():
            print(J.format_rows(label, _total(a)))
        print("jump wall time per run: " + ", ".join(f"{k} {v / args.seeds:.1f} s"
                                                     for k, v in times.items()))


def _accumulate(acc: dict, label: str, r: dict) -> None:
    a = acc.setdefault(label, {"bins": {}, "fp": 0.0, "fg": 0.0, "n": 0, "fi": 0.0, "ni": 0})
    for k, (rate, n) in r["bins"].items():
        h, t = a["bins"].get(k, (0.0, 0))
        a["bins"][k] = (h + (rate * n if n else 0.0), t + n)
    a["fp"] += r["false_pixel"] * r["clean_pixels"]
    a["fg"] += r["false_group"] * r["clean_pixels"]
    a["n"] += r["clean_pixels"]
    a["fi"] += r["false_isolated"] * r["isolated_pixels"]
    a["ni"] += r["isolated_pixels"]


def _total(a: dict) -> dict:
    return {"bins": {k: (h / t if t else float("nan"), t) for k, (h, t) in a["bins"].items()},
            "false_pixel": a["fp"] / max(a["n"], 1), "false_group": a["fg"] / max(a["n"], 1),
            "false_isolated": a["fi"] / max(a["ni"], 1)}


if __name__ == "__main__":
    main()
