"""`calops build list|show|new|promote|archive`: builds as data, with their lifecycle."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow as pa

from catalogs import builds as buildlib
from flows.commands import emit
from flows.workspace import from_args
from transforms import registry


def register(sub: Any) -> None:
    p = sub.add_parser("build", help="list, show, create, promote or archive builds",
                       description="Builds pin a pipeline version, an SDP version, a CRDS context "
                                   "and per-step versions, skips and parameters (docs/builds.md).")
    bsub = p.add_subparsers(dest="build_command", metavar="ACTION", required=True)

    q = bsub.add_parser("list", help="every build with its status and context")
    q.add_argument("--format", "-f", choices=("table", "csv", "json"), default="table")
    q.set_defaults(func=cmd_list)

    q = bsub.add_parser("show", help="one build's manifest and the step plan it pins")
    q.add_argument("name")
    q.add_argument("--format", "-f", choices=("text", "json", "toml"), default="text")
    q.add_argument("--json", dest="format", action="store_const", const="json",
                   help="same as --format json")
    q.set_defaults(func=cmd_show)

    q = bsub.add_parser("new", help="a development build copied from another")
    q.add_argument("name")
    q.add_argument("--from", dest="base", help="build to copy (default: the operations build)")
    q.add_argument("--context", help="CRDS context to pin (e.g. jwst_0003.pmap, or latest)")
    q.add_argument("--description", default="")
    q.add_argument("--why", default="")
    q.set_defaults(func=cmd_new)

    for action, helptext in (("promote", "development -> candidate -> operations"),
                             ("archive", "retire a candidate or operations build")):
        q = bsub.add_parser(action, help=helptext)
        q.add_argument("name")
        q.add_argument("--who", default="")
        q.add_argument("--why", default="")
        q.set_defaults(func=cmd_promote if action == "promote" else cmd_archive)


def _today() -> str:
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def cmd_list(args: Any) -> int:
    ws = from_args(args)
    rows = [{"build": b.name, "status": b.status, "pipeline": b.pipeline_version,
             "sdp_ver": b.sdp_version, "crds_context": b.crds_context,
             "candidate": b.candidate_date or "", "operations": b.operations_date or ""}
            for b in ws.builds.all()]
    emit(pa.Table.from_pylist(rows), args.format, None)
    return 0


def cmd_show(args: Any) -> int:
    ws = from_args(args)
    b = ws.builds.get(args.name)
    if args.format == "json":
        print(json.dumps(b.as_dict(), indent=2))
        return 0
    if args.format == "toml":
        print(buildlib.dump_manifest(b), end="")
        return 0
    print(f"build {b.name}  ({b.status})")
    for k in ("pipeline_version", "sdp_version", "crds_context", "candidate_date",
              "operations_date", "archived_date", "description"):
        v = getattr(b, k)
        if v:
            print(f"  {k:<17} {v}")
    print(f"  {'locked':<17} " + (f"yes ({b.lock_hash})" if b.locked else
                                   "no: a development build floats to the newest versions"))
    for stage in registry.stage_names():
        print(f"\n  {stage}")
        try:
            planned = buildlib.plan(b, stage)
        except buildlib.BuildError as exc:
            print(f"    ({exc})")
            continue
        for p in planned:
            pin = b.steps.get(p.spec.name)
            changed = pin.params if pin else {}
            extra = "  ".join(f"{k}={v!r}" for k, v in changed.items())
            flag = "skip" if p.skip else "run "
            print(f"    {flag} {p.spec.name:<20} v{p.spec.version:<6} {extra}")
            if pin and pin.note:
                print(f"         {'':<20} # {pin.note}")
    return 0


def _record(ws: Any, events: list[dict], b: buildlib.Build) -> None:
    """The events, and the new state of every build they touched (one promotion can archive
    the previous operations build too)."""
    now = dt.datetime.now(dt.timezone.utc)
    with ws.catalog.batch("build-cli") as batch:
        buildlib.record_events(events, batch.add)
        for name in sorted({e["build"] for e in events} | {b.name}):
            cur = ws.builds.get(name)
            batch.add("builds", {"name": cur.name, "status": cur.status,
                                 "manifest_json": json.dumps(cur.as_dict(), sort_keys=True),
                                 "recorded_at": now})


def cmd_new(args: Any) -> int:
    ws = from_args(args)
    b, events = ws.builds.new(args.name, args.base, args.context, args.description, why=args.why)
    _record(ws, events, b)
    print(f"created development build {b.name} (context {b.crds_context})")
    return 0


def cmd_promote(args: Any) -> int:
    ws = from_args(args)
    b, events = ws.builds.promote(args.name, _today(), args.who, args.why)
    _record(ws, events, b)
    for e in events:
        print(f"{e['build']}: {e['from_status']} -> {e['to_status']}")
    return 0


def cmd_archive(args: Any) -> int:
    ws = from_args(args)
    b, events = ws.builds.archive(args.name, _today(), args.who, args.why)
    _record(ws, events, b)
    print(f"{b.name}: archived (its products stay queryable)")
    return 0
