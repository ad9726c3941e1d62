"""``calops step STEP FILE...``: one step on files, as jwst's ``strun`` runs one (flows/filelevel.py)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

USAGE = """calops step STEP FILE... [options]

Run one step on each file, with no workspace (jwst's `strun jwst.flatfield.FlatFieldStep f.fits`).
STEP: a calops step name (flat_field) or jwst's class (FlatFieldStep, jwst.flatfield.FlatFieldStep).

options (in any order, before or after the files):
  -o, --output-dir DIR       where to write (default .); files get jwst's step suffix (_flatfieldstep)
  --override-REFTYPE PATH    use this reference file (or N/A) instead of CRDS's; jwst's
                             --override_REFTYPE=PATH works too
  --param NAME=VALUE         a step parameter (repeatable); jwst's --NAME=VALUE works too
  --config FILE              parameters from jwst's ASDF step configuration, or TOML
  --crds PATH                the CRDS cache (default $CRDS_PATH)
  --context jwst_NNNN.pmap   the CRDS context (default $CRDS_CONTEXT, else the cache's operational one)
  --home HOME [--build B]    also record in this workspace; run its operations build (or B)

Parameters apply in jwst's order: defaults < CRDS pars-<step> < --config < command line.
"""


def register(sub: Any) -> None:
    register_file_command(sub, "step", "step name or jwst class", USAGE,
                          "run one step on files (jwst's strun habit; no workspace needed)")


def register_file_command(sub: Any, name: str, what: str, usage: str, help_: str) -> None:
    """``calops step`` / ``calops stage``: NAME, then files and jwst-style options in any order
    (parsed by flows.filelevel, not argparse)."""
    p = sub.add_parser(name, help=help_, usage=usage, add_help=False,
                       description=f"See `calops {name} --help`.")
    p.add_argument("target", nargs="?", help=what)
    p.add_argument("-h", "--help", action="store_true", dest="show_help")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=lambda args: run_file_command(args, name, usage))


def run_file_command(args: Any, name: str, usage: str) -> int:
    from flows import filelevel

    rest = list(args.args or [])
    if args.show_help or args.target is None or "-h" in rest or "--help" in rest:
        print(usage)
        return 0 if args.show_help or rest else 2
    opts = filelevel.parse_args(rest, home=getattr(args, "home", None))
    run = filelevel.run_step if name == "step" else filelevel.run_stage
    written, s = run(args.target, opts, f"calops {name} " + " ".join([args.target] + rest))
    report(written, s)
    return 0


def report(written: list, s: Any) -> None:
    for w in s.warnings:
        print(f"calops: warning: {w}", file=sys.stderr)
    builds = ", ".join(s.labels or [s.build.name])
    where = (f"recorded in {s.ws.root} under build {builds}" if s.ws is not None
             else "file-level build")
    print(f"{len(written)} file(s) written ({where}, CRDS context {s.context}):")
    for w in written:
        print(f"  {w}")
