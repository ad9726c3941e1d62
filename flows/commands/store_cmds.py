"""Workspace, store and catalog commands: init, sql, lineage, verify, repair, compact."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import pyarrow as pa

from flows.commands import FORMATS, emit
from flows.workspace import Workspace, from_args
from store.errors import CalopsError


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="create a workspace (store, catalog, config)",
                       description="Create a workspace at PATH (default: --home, $CALOPS_HOME, "
                                   "./calops-home). Re-running on a workspace keeps it as is.")
    p.add_argument("path", nargs="?", help="workspace directory")
    p.add_argument("--crds", metavar="DIR",
                   help="use this CRDS cache (e.g. one written by `calops simulate`, or a real "
                        "one) instead of the workspace's own crds/ directory")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("sql", help="run a read-only SQL query on the catalog",
                       description="Run one read-only SQL statement over the catalog views "
                                   "(SELECT/WITH/SHOW/DESCRIBE/EXPLAIN). Use '-' to read it "
                                   "from stdin. Tables: see docs/catalog.md or `SHOW TABLES`.")
    p.add_argument("query", help="the SQL statement, or - for stdin")
    _output_args(p)
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("lineage", help="the provenance tree of a product or recipe",
                       description="Everything ID was made from (or, with --down, everything "
                                   "made from it). ID may be a unique prefix.")
    p.add_argument("id", help="product id or recipe key (or a unique prefix)")
    p.add_argument("--down", action="store_true", help="downstream instead of upstream")
    p.add_argument("--depth", type=int, default=500, help="maximum depth (default 500)")
    p.add_argument("--full-ids", action="store_true", help="print ids in full in the tree")
    p.add_argument("--no-verify", action="store_true",
                   help="do not re-hash the stored objects of the products in the tree")
    _output_args(p, default="tree")
    p.set_defaults(func=cmd_lineage)

    p = sub.add_parser("verify", help="check every stored object and catalog file; exit 1 if "
                                      "any is bad",
                       description="Re-hash every object in the store and every catalog file "
                                   "(against the checksum recorded when it was written), check "
                                   "that no catalog file the index lists is gone, that every "
                                   "product the catalog records is present (unless "
                                   "tombstoned), and that no build manifest was changed by "
                                   "hand. Names each bad file; exit code 1 if any "
                                   "(docs/integrity.md).")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("repair", help="set bad catalog files and objects aside and rebuild "
                                      "what the store holds",
                       description="Quarantine bad catalog files (to catalog/_quarantine/) and "
                                   "corrupt objects (to store/quarantine/), rebuild the rows "
                                   "they held from the record objects in the store, restore "
                                   "hand-edited manifests from their recorded copies, and say "
                                   "exactly what could not be rebuilt. Exit 1 if something "
                                   "was lost (docs/integrity.md).")
    p.set_defaults(func=cmd_repair)

    p = sub.add_parser("compact", help="merge each catalog table's files into one",
                       description="Merge a table's Parquet files into one, proving every row "
                                   "is kept before the originals are removed.")
    p.add_argument("table", nargs="?", help="one table (default: all)")
    p.set_defaults(func=cmd_compact)


def _output_args(p: argparse.ArgumentParser, default: str = "table") -> None:
    choices = FORMATS if default == "table" else ("tree",) + FORMATS
    p.add_argument("--format", "-f", choices=choices, default=default,
                   help=f"output format (default {default})")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (needed for parquet)")
    p.add_argument("--max-width", type=int, default=40,
                   help="cut table cells wider than this (0: never; default 40)")


def cmd_init(args: argparse.Namespace) -> int:
    ws, created = Workspace.init(args.path or args.home, crds_path=args.crds)
    verb = "initialised" if created else "already initialised:"
    print(f"{verb} workspace {ws.root}\n  store   {ws.store_url}\n  catalog {ws.catalog_url}\n"
          f"  crds    {ws.crds_path}")
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    query = sys.stdin.read() if args.query == "-" else args.query
    ws = from_args(args)
    emit(ws.catalog.sql(query), args.format, args.output, args.max_width)
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    from catalogs import lineage

    ws = from_args(args)
    walk = lineage.downstream if args.down else lineage.upstream
    rows = walk(ws.catalog, args.id, args.depth)
    if not args.no_verify:
        rows = lineage.flag(rows, ws.store)
    if args.format == "tree":
        text = lineage.format_tree(rows, full_ids=args.full_ids) + "\n"
        if args.output:
            with open(args.output, "w") as f:
                f.write(text)
        else:
            sys.stdout.write(text)
    else:
        emit(rows, args.format, args.output, args.max_width)
    bad = [r for r in rows.to_pylist() if r.get("problem")] if not args.no_verify else []
    if bad:
        print(f"calops: error: {len(bad)} product(s) in this lineage fail verification ("
              + ", ".join(f"{lineage.short(r['id'])}… {r['problem']}" for r in bad[:3])
              + "); see `calops verify`, `calops repair`", file=sys.stderr)
        return 1
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    ws = from_args(args)
    n = 0
    problems: list[tuple[str, str]] = []
    for ident in ws.store.ids():
        n += 1
        problem = ws.store.check(ident)
        if problem:
            problems.append((ident, problem))
    files, counts = ws.catalog.check_files()
    for p in files:
        problems.append((f"catalog file {p.name}", p.problem))
    # cross-checks over the files that are intact
    ws.catalog.exclude([p.path for p in files if p.kind in ("corrupt", "unreadable")])
    referenced = ws.catalog.sql(
        "SELECT product_id FROM products UNION SELECT product_id FROM realisations "
        "EXCEPT SELECT product_id FROM tombstones ORDER BY product_id").column(0).to_pylist()
    for pid in referenced:
        try:
            if not ws.store.has(pid):
                problems.append((pid, f"recorded in the catalog but missing from the store "
                                      f"({ws.store.path_of(pid)})"))
        except CalopsError as exc:
            problems.append((pid, str(exc)))
    _, bad_builds = ws.builds.survey()
    for name, problem in bad_builds.items():
        problems.append((f"build {name}", problem))
    for ident, problem in problems:
        print(f"BAD {ident}: {problem}")
    legacy = f"; {counts['legacy']} written before checksums (read in full)" if counts["legacy"] else ""
    print(f"verified {n} object(s) in {ws.store_url} and {counts['files']} catalog file(s)"
          f"{legacy}: {'all intact' if not problems else f'{len(problems)} problem(s)'}")
    if problems:
        print("calops: error: verification found problems; `calops repair` sets bad files "
              "aside and rebuilds what the store holds", file=sys.stderr)
    return 1 if problems else 0


def cmd_repair(args: argparse.Namespace) -> int:
    from catalogs.recovery import repair

    ws = from_args(args)
    rep = repair(ws.catalog, ws.store, ws.builds_dir)
    for line in rep.lines():
        print(line)
    lost = rep.lost() or rep.missing_objects or rep.bad_records or any(
        "restore it from a backup" in m for m in rep.manifests)
    if rep.clean:
        print("nothing to repair: every catalog file and object is intact")
    elif not lost:
        print("repaired: nothing was lost")
    else:
        print("calops: error: repaired what could be repaired; some information was lost "
              "(listed above)", file=sys.stderr)
    return 1 if lost else 0


def cmd_compact(args: argparse.Namespace) -> int:
    ws = from_args(args)
    results = ws.catalog.compact(args.table)
    table = pa.Table.from_pylist([r.__dict__ for r in results])
    emit(table, "table")
    return 0
