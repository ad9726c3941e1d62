"""`calops export BUILD OUTDIR`: a build's products as JWST files with provenance keywords."""

from __future__ import annotations

from typing import Any

from flows.workspace import from_args


def register(sub: Any) -> None:
    p = sub.add_parser("export", help="write a build's products as JWST FITS/ECSV files",
                       description="Write the rate, rateints, cal, i2d and catalog products of "
                                   "BUILD's latest runs into OUTDIR with JWST names and "
                                   "provenance keywords (CAL_VER, CRDS_CTX, SDP_VER, EPH_TYPE, "
                                   "R_*, CO_PID, CO_RKEY), and the associations of its stage-3 "
                                   "products as JWST _asn.json files. File names are made of "
                                   "letters, digits, '.', '_' and '-' only; existing files are "
                                   "not replaced without --overwrite.")
    p.add_argument("build")
    p.add_argument("outdir")
    p.add_argument("--kind", action="append", choices=("rate", "rateints", "cal", "i2d", "catalog"),
                   help="only these kinds (repeatable; default all)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files that exist already (default: refuse, write nothing)")
    p.add_argument("--no-asn", dest="associations", action="store_false",
                   help="do not write the stage-3 associations as _asn.json files")
    p.set_defaults(func=cmd_export)


def cmd_export(args: Any) -> int:
    from flows.export import SUFFIX, export_build

    ws = from_args(args)
    ws.builds.get(args.build)  # unknown build -> a clear error
    paths = export_build(ws, args.build, args.outdir, tuple(args.kind or SUFFIX),
                         overwrite=args.overwrite, associations=args.associations)
    for p in paths:
        print(p)
    print(f"{len(paths)} file(s) written to {args.outdir}")
    return 0
