"""`calops demo`: the whole story on simulated data (flows/demo.py)."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the quarterly-build story on simulated data",
                       description="Simulate a small program of all four instruments (NIRCam, "
                                   "NIRISS and MIRI imaging, NIRSpec and MIRI LRS spectra), "
                                   "process it under "
                                   "the operations build and a candidate, reissue an exposure, "
                                   "diff the builds and answer provenance questions.")
    p.add_argument("--out", default="demo-output",
                   help="output directory (default ./demo-output; replaced if an earlier demo "
                        "made it)")
    p.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: Any) -> int:
    from flows.demo import run_demo
    from flows.jit import announce

    announce()  # "compiling kernels, first run only" when the JIT will run
    return run_demo(args.out, args.seed)
