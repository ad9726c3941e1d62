"""`calops build list|show|new|promote|archive|rollback|adopt`: builds as data, with their
lifecycle (docs/builds.md) and its integrity (docs/integrity.md)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

import pyarrow as pa

from catalogs import builds as buildlib
from catalogs import lifecycle
from flows.commands import emit
from flows.workspace import from_args
from transforms import registry


def register(sub: Any) -> None:
    p = sub.add_parser("build", help="list, show, create, promote, archive or roll back builds",
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

    q = bsub.add_parser("rollback", help="restore the previous operations build",
                        description="Restore the build that was operations before the current "
                                    "one (archived -> operations); the current one goes back to "
                                    "candidate. Recorded with who and why (docs/builds.md).")
    q.add_argument("--to", help="the archived build to restore (default: the previous "
                                "operations build)")
    q.add_argument("--who", default="")
    q.add_argument("--why", required=True, help="why (recorded in build_events)")
    q.set_defaults(func=cmd_rollback)

    q = bsub.add_parser("adopt", help="record a hand-edited manifest as it is (recorded)",
                        description="Record NAME's manifest as it is now, accepting a hand edit "
                                    "that `calops` refuses as tampered; the adoption is an event "
                                    "with who and why. Refused if it would make two operations "
                                    "builds.")
    q.add_argument("name")
    q.add_argument("--who", default="")
    q.add_argument("--why", required=True)
    q.set_defaults(func=cmd_adopt)


def _today() -> str:
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def cmd_list(args: Any) -> int:
    """Every readable build; each manifest that cannot be read (or was changed by hand) is one
    error line naming it, the others still list, and the exit code is 1."""
    ws = from_args(args)
    good, bad = ws.builds.survey()
    rows = [{"build": b.name, "status": b.status, "pipeline": b.pipeline_version,
             "sdp_ver": b.sdp_version, "crds_context": b.crds_context,
             "candidate": b.candidate_date or "", "operations": b.operations_date or ""}
            for b in good]
    schema = pa.schema([(c, pa.string()) for c in ("build", "status", "pipeline", "sdp_ver",
                                                     "crds_context", "candidate", "operations")])
    emit(pa.Table.from_pylist(rows, schema=schema), args.format, None)
    for name, problem in bad.items():
        print(f"calops: error: build {name}: {problem}", file=sys.stderr)
    return 1 if bad else 0


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
    refused = sorted({f"{m} ({st})" for st, ms in buildlib.modes(b).items()
                      for m, why in ms.items() if why})
    if refused:  # its lock predates the steps these modes need (buildlib.MODE_STEPS)
        print(f"  {'not calibrated':<17} {', '.join(refused)}: its lock predates their steps")
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


def cmd_new(args: Any) -> int:
    ws = from_args(args)
    if args.context and args.context != "latest":
        if not buildlib._CONTEXT.match(args.context):
            raise buildlib.BuildError(f"--context {args.context!r} must be like jwst_0001.pmap "
                                      "or 'latest'")
        have = ws.crds_contexts()
        if args.context not in have:
            raise buildlib.BuildError(f"CRDS context {args.context} is not in the CRDS cache "
                                      f"{ws.crds_path} (it has: {', '.join(have) or 'none'}); "
                                      "sync the cache or pick one it has")
    b, _ = ws.builds.new(args.name, args.base, args.context, args.description, why=args.why)
    print(f"created development build {b.name} (context {b.crds_context})")
    return 0


def cmd_promote(args: Any) -> int:
    """Promotion checks: leaving development (and entering operations) needs a context that
    resolves for every current exposure; entering operations needs a recorded successful
    candidate run (catalogs/lifecycle.py)."""
    ws = from_args(args)
    b = ws.builds.get(args.name)
    checks = []
    if b.status in ("development", "candidate") and b.fixed_context:
        done = lifecycle.check_context(ws.catalog, ws.crds_path, b)
        checks.append(f"context {done['context']} resolves for {done['exposures']} exposure(s)")
    if b.status == "candidate":
        ev = lifecycle.candidate_evidence(ws.catalog, b)
        checks.append(f"{ev['ok_runs']} successful candidate run(s) cover "
                      f"{ev['exposures']} exposure(s)")
    b, events = ws.builds.promote(args.name, _today(), args.who, args.why)
    for e in events:
        print(f"{e['build']}: {e['from_status']} -> {e['to_status']}")
    for c in checks:
        print(f"  checked: {c}")
    return 0


def cmd_archive(args: Any) -> int:
    ws = from_args(args)
    b, _ = ws.builds.archive(args.name, _today(), args.who, args.why)
    print(f"{b.name}: archived (its products stay queryable)")
    return 0


def cmd_rollback(args: Any) -> int:
    ws = from_args(args)
    book = ws.builds
    current = book.operations()
    target = args.to or (lifecycle.previous_operations(ws.catalog, current) if current else None)
    if target:
        lifecycle.check_context(ws.catalog, ws.crds_path, book.get(target))
    restored, demoted, _ = book.rollback(
        _today(), to=target, who=args.who, why=args.why,
        previous=lambda cur: lifecycle.previous_operations(ws.catalog, cur))
    print(f"{restored.name}: archived -> operations (restored)")
    print(f"{demoted.name}: operations -> candidate (rolled back: {args.why})")
    return 0


def cmd_adopt(args: Any) -> int:
    ws = from_args(args)
    b, _ = ws.builds.adopt(args.name, args.who, args.why)
    print(f"{b.name}: recorded as it is ({b.status}); hash {buildlib.manifest_hash(b)}")
    return 0
