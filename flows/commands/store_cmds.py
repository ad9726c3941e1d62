"""Workspace, store and catalog commands: init, sql, lineage, verify, compact."""

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
    _output_args(p, default="tree")
    p.set_defaults(func=cmd_lineage)

    p = sub.add_parser("verify", help="re-hash every stored object; exit 1 if any is bad",
                       description="Re-hash every object in the store and check that every "
                                   "product the catalog records is present (unless "
                                   "tombstoned). Lists problems; exit code 1 if any.")
    p.set_defaults(func=cmd_verify)

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
    if args.format == "tree":
        text = lineage.format_tree(rows, full_ids=args.full_ids) + "\n"
        if args.output:
            with open(args.output, "w") as f:
                f.write(text)
        else:
            sys.stdout.write(text)
    else:
        emit(rows, args.format, args.output, args.max_width)
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
    missing = ws.catalog.sql(
        "SELECT DISTINCT product_id FROM products WHERE product_id NOT IN "
        "(SELECT product_id FROM tombstones) ORDER BY product_id").column(0).to_pylist()
    for pid in missing:
        try:
            if not ws.store.has(pid):
                problems.append((pid, f"recorded in the catalog but missing from the store "
                                      f"({ws.store.path_of(pid)})"))
        except CalopsError as exc:
            problems.append((pid, str(exc)))
    for ident, problem in problems:
        print(f"BAD {ident}: {problem}")
    print(f"verified {n} object(s) in {ws.store_url}: "
          f"{'all intact' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


def cmd_compact(args: argparse.Namespace) -> int:
    ws = from_args(args)
    results = ws.catalog.compact(args.table)
    table = pa.Table.from_pylist([r.__dict__ for r in results])
    emit(table, "table")
    return 0
