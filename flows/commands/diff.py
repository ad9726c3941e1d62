"""``calops diff A B``: compare every product of two builds, attribute, record, report, gate."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from flows.workspace import from_args
from store.errors import CalopsError
from transforms.compare import DEFAULT_IGNORE_META, CompareConfig, CompareError, Tolerance


def register(sub: Any) -> None:
    p = sub.add_parser(
        "diff", help="compare two builds' products; exit 1 if a difference exceeds tolerance",
        description="Pair the products of build A and build B by subject, stage and kind; "
                    "products with equal ids are identical without reading them, others are "
                    "compared numerically (|a-b| <= atol + rtol*|b|, DQ bit by bit, catalogs "
                    "source by source) and attributed to what differs in their recipes. "
                    "Results are stored as rows of the catalog's diffs table. Exit status: 0 "
                    "when nothing exceeds tolerance, 1 when something does (or a product of A "
                    "is missing in B, unless accepted), 2 on error. See docs/diff.md.")
    p.add_argument("build_a", metavar="A", help="the baseline build")
    p.add_argument("build_b", metavar="B", help="the candidate build")
    p.add_argument("--where", metavar="SQL",
                   help="only products matching this SQL condition over subject, stage, kind, "
                        "instrument, detector, filter, exp_type, program, product_id, meta_json "
                        "(e.g. \"instrument = 'NIRISS'\")")
    p.add_argument("--format", "-f", choices=("text", "json"), default="text",
                   help="terminal output (default text)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the text/JSON output to FILE")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    p.add_argument("--rtol", type=float, default=None, help="relative tolerance (default 1e-5)")
    p.add_argument("--atol", type=float, default=None, help="absolute tolerance (default 1e-7)")
    p.add_argument("--tol", action="append", default=[], metavar="ARRAY=RTOL,ATOL",
                   help="tolerance for one array or catalog column, e.g. err=1e-3,1e-5 "
                        "(repeatable)")
    p.add_argument("--nan", choices=("equal", "differ"), default="equal",
                   help="NaN at the same place in both: equal (default) or a difference")
    p.add_argument("--max-fraction", type=float, default=0.0, metavar="F",
                   help="fraction of an array's elements allowed over tolerance (default 0)")
    p.add_argument("--ignore-array", action="append", default=[], metavar="NAME",
                   help="do not compare this array (repeatable)")
    p.add_argument("--ignore-meta", action="append", default=[], metavar="PATTERN",
                   help="metadata keys (fnmatch pattern) not to compare, added to the defaults "
                        f"({', '.join(DEFAULT_IGNORE_META)})")
    p.add_argument("--match-radius", type=float, default=0.1, metavar="ARCSEC",
                   help="catalogs: sources further apart are unmatched (default 0.1)")
    p.add_argument("--images", type=int, default=5, metavar="N",
                   help="HTML: draw the N worst pairs large (default 5)")
    p.add_argument("--thumbnails", choices=("over", "changed", "none"), default="over",
                   help="HTML: thumbnails (B, B-A, B/A, DQ change; catalog plots) of every pair "
                        "over tolerance (default), of every pair that changed, or none")
    p.add_argument("--no-record", action="store_true",
                   help="do not store the results in the catalog")
    p.add_argument("--accept", action="append", nargs="?", const="", default=None,
                   metavar="CAUSE",
                   help="accept as the new baseline the over-tolerance pairs whose every root "
                        "cause CAUSE names: part of a cause as printed under 'by cause' (a "
                        "reference file, a parameter), a step (stage.step), or 'all'. "
                        "Repeatable; recorded with --who and --why in the diffs table. Pairs "
                        "not accepted still fail the gate")
    p.add_argument("--who", help="who accepts (default: the login name)")
    p.add_argument("--why", help="why the difference is accepted (required with --accept)")
    p.set_defaults(func=cmd_diff)


def parse_tol(items: list[str]) -> dict[str, Tolerance]:
    """``["err=1e-3,1e-5"]`` -> ``{"err": Tolerance(1e-3, 1e-5)}``; a clear error otherwise."""
    out = {}
    for item in items:
        name, sep, vals = item.partition("=")
        parts = vals.split(",")
        try:
            if not sep or not name or len(parts) != 2:
                raise ValueError
            out[name.strip()] = Tolerance(float(parts[0]), float(parts[1]))
        except (ValueError, CompareError):
            raise CalopsError(f"--tol {item!r}: expected ARRAY=RTOL,ATOL with numbers >= 0, "
                              "e.g. --tol err=1e-3,1e-5") from None
    return out


def config_from_args(args: argparse.Namespace) -> CompareConfig:
    try:
        tol = Tolerance(1e-5 if args.rtol is None else args.rtol,
                        1e-7 if args.atol is None else args.atol)
        return CompareConfig(tolerance=tol, per_array=parse_tol(args.tol),
                             nan_equal=args.nan == "equal", max_fraction_over=args.max_fraction,
                             ignore_arrays=tuple(args.ignore_array),
                             ignore_meta=DEFAULT_IGNORE_META + tuple(args.ignore_meta),
                             match_radius_arcsec=args.match_radius)
    except CompareError as exc:
        raise CalopsError(str(exc)) from None


def cmd_diff(args: argparse.Namespace) -> int:
    from catalogs import diff as D
    from flows import report

    if args.accept is not None:
        if not all(a.strip() for a in args.accept):
            raise CalopsError("--accept needs a CAUSE: part of a cause as printed under 'by "
                              "cause' (e.g. a reference file name), a step (stage.step), or "
                              "'all' for every over-tolerance pair")
        if not (args.why or "").strip():
            raise CalopsError("--accept needs --why TEXT (and --who NAME, default the login name)")
    config = config_from_args(args)
    ws = from_args(args)
    bd = D.diff_builds(ws.catalog, ws.store, args.build_a, args.build_b, args.where, config,
                       n_images=max(0, args.images) if args.html else 0,
                       thumbnails=args.thumbnails if args.html else "none")
    if not args.no_record:
        D.record(ws.catalog, bd)
    if args.accept is not None:
        who = args.who or getpass.getuser()
        plan = D.accept(ws.catalog, bd, who, args.why, args.accept)
        msg = [f"accepted {len(plan.pairs)} pair(s) as the new baseline ({who}: {args.why})"]
        msg += [f"  cause: {c}" for c in plan.causes]
        if plan.partial:
            msg.append(f"not accepted, {len(plan.partial)} pair(s) also changed for another cause:")
            msg += [f"  {p.subject}/{p.stage}/{p.kind}: {'; '.join(o)}" for p, o in plan.partial]
        print("\n".join(msg), file=sys.stderr)
    text = report.to_json(bd) if args.format == "json" else report.text_summary(bd)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    if args.html:
        page = report.html_report(bd, n_worst=max(0, args.images), catalog=ws.catalog,
                                  store=ws.store)
        with open(args.html, "w") as f:
            f.write(page)
        print(f"wrote {args.html} ({len(page.encode()) / 1e6:.1f} MB)", file=sys.stderr)
    return 1 if bd.failed else 0
