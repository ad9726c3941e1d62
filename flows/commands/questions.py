"""Provenance questions: `calops ask ...`, `calops provenance`, `calops affected`,
`calops export-prov` (docs/cookbook.md; the SQL lives in catalogs/questions.py)."""

from __future__ import annotations

import sys
from typing import Any

from catalogs import questions as q
from flows.commands import FORMATS, emit
from flows.workspace import Workspace, from_args
from store.errors import CalopsError

ASK = {
    "predicted-ephemeris": ("products whose lineage includes a PREDICTED ephemeris",
                            q.PREDICTED_EPHEMERIS_SQL),
    "uses-reference": ("products made with a reference file (and, with --descendants, "
                       "everything made from them)", q.USES_REFERENCE_SQL),
    "archived-builds": ("products made or reused by archived builds", q.ARCHIVED_BUILDS_SQL),
    "nondeterministic": ("recipes realised as more than one product (exit 1 if any)",
                         q.NONDETERMINISTIC_SQL),
}


def _output_args(p: Any) -> None:
    p.add_argument("--format", "-f", choices=FORMATS, default="table")
    p.add_argument("-o", "--output", help="write to FILE instead of stdout")
    p.add_argument("--max-width", type=int, default=40,
                   help="cut table cells wider than this (0: never; default 40)")


def register(sub: Any) -> None:
    p = sub.add_parser("ask", help="answer a provenance question (docs/cookbook.md)",
                       description="Answer one of the cookbook's provenance questions over the "
                                   "catalog. --show-sql prints the SQL instead of running it.")
    asub = p.add_subparsers(dest="question", metavar="QUESTION", required=True)
    for name, (helptext, _) in ASK.items():
        a = asub.add_parser(name, help=helptext, description=helptext)
        if name == "uses-reference":
            a.add_argument("reference", metavar="FILE",
                           help="reference file name (or path, or its sha256: content hash)")
            a.add_argument("--descendants", action="store_true",
                           help="also everything made from those products, at any depth")
        a.add_argument("--show-sql", action="store_true", help="print the SQL and exit")
        _output_args(a)
        a.set_defaults(func=cmd_ask)

    p = sub.add_parser("provenance", help="a product's build, context, references, parameters, "
                                          "SDP version and ephemeris type",
                       description="Everything a product was made with: the build(s) that made "
                                   "it, the CRDS context, every reference file and parameter of "
                                   "every step in its lineage, and the SDP version and ephemeris "
                                   "type of each exposure it came from.")
    p.add_argument("product_id", metavar="PRODUCT_ID",
                   help="a product id (a unique prefix will do)")
    p.add_argument("--show-sql", action="store_true", help="print the SQL and exit")
    p.add_argument("--no-verify", action="store_true",
                   help="do not re-hash the stored objects of the product and its lineage")
    _output_args(p)
    p.set_defaults(func=cmd_provenance)

    p = sub.add_parser("affected", help="what a new CRDS context would change, before running",
                       description="Choose every reference again under --context for each "
                                   "current exposure and association as --build last processed "
                                   "them, and list the stages, steps and products that would "
                                   "change (in the spirit of CRDS's affected-datasets).")
    p.add_argument("--context", required=True, help="the new CRDS context, e.g. jwst_0002.pmap")
    p.add_argument("--build", "-b", help="build to compare against (default: the operations build)")
    _output_args(p)
    p.set_defaults(func=cmd_affected)

    p = sub.add_parser("export-prov", help="a product's lineage as W3C PROV-JSON",
                       description="Write the lineage of PRODUCT_ID as a W3C PROV-JSON document "
                                   "(entities: products, intermediates, reference files; "
                                   "activities: recipes; agents: builds).")
    p.add_argument("product_id", metavar="PRODUCT_ID")
    p.add_argument("-o", "--output", help="write to FILE instead of stdout")
    p.set_defaults(func=cmd_export_prov)


def _sync_builds(ws: Workspace) -> None:
    """Questions join on the catalog's builds table: record manifests that changed (only those
    that pass the tamper check; a refused one is left as recorded)."""
    good, _ = ws.builds.survey()
    q.record_builds(ws.catalog, good)


def cmd_ask(args: Any) -> int:
    if args.show_sql:
        print(ASK[args.question][1])
        return 0
    ws = from_args(args)
    if args.question == "predicted-ephemeris":
        table = q.predicted_ephemeris(ws.catalog)
    elif args.question == "uses-reference":
        table = q.uses_reference(ws.catalog, args.reference, args.descendants)
    elif args.question == "archived-builds":
        _sync_builds(ws)
        table = q.archived_builds(ws.catalog)
    else:
        table = q.nondeterministic(ws.catalog)
    emit(table, args.format, args.output, args.max_width)
    return 1 if args.question == "nondeterministic" and table.num_rows else 0


def cmd_provenance(args: Any) -> int:
    if args.show_sql:
        print(q.PROVENANCE_SQL)
        return 0
    ws = from_args(args)
    _sync_builds(ws)
    table = q.provenance(ws.catalog, args.product_id)
    bad = [] if args.no_verify else q.integrity_rows(ws.catalog, ws.store, args.product_id)
    emit(q.with_integrity(table, bad), args.format, args.output, args.max_width)
    if bad:
        print(f"calops: error: {len(bad)} product(s) in this provenance fail verification ("
              + ", ".join(f"{r['name'][:19]}… {r['value']}" for r in bad[:3])
              + "); see `calops verify`", file=sys.stderr)
        return 1
    return 0


def cmd_affected(args: Any) -> int:
    ws = from_args(args)
    if args.context not in ws.crds_contexts():
        raise CalopsError(f"CRDS context {args.context} is not in the workspace's cache "
                          f"{ws.crds_path} (it has: {', '.join(ws.crds_contexts()) or 'none'})")
    if args.build:
        build = ws.builds.get(args.build)
    else:
        build = ws.builds.operations()
        if build is None:
            raise CalopsError("no operations build; name one with --build")
    table = q.affected(ws.catalog, build, args.context, ws.crds_path)
    emit(table, args.format, args.output, args.max_width)
    if args.format == "table" and not args.output:
        stages = {(r["subject"], r["stage"]) for r in table.to_pylist()}
        print(f"{len(stages)} stage run(s) of build {build.name} would change under "
              f"{args.context}", file=sys.stderr)
    return 0


def cmd_export_prov(args: Any) -> int:
    from catalogs.prov import export

    ws = from_args(args)
    _sync_builds(ws)
    text = export(ws.catalog, args.product_id)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0
