"""`calops serve`: serve the Prefect deployments defined in flows/deployments.py."""

from __future__ import annotations

import os
from typing import Any

from flows.workspace import from_args


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the calops Prefect deployments",
                       description="Register and serve the deployments (process, reprocess, "
                                   "one per stage) with the Prefect API named by "
                                   "PREFECT_API_URL; runs them when triggered. Ctrl-C stops.")
    p.add_argument("--build", help="default build for triggered runs")
    p.add_argument("--limit", type=int, help="maximum concurrent flow runs")
    p.add_argument("--cron", metavar="EXPR",
                   help="also reprocess new and reissued exposures on this cron schedule "
                        "(e.g. '0 3 * * *'): deployment calops-new-data")
    p.add_argument("--on-ingest", action="store_true",
                   help="also reprocess as soon as `calops ingest` reports new data "
                        "(a Prefect automation on the calops.exposure.ingested event)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: Any) -> int:
    from flows.deployments import serve

    ws = from_args(args)
    if not os.environ.get("PREFECT_API_URL"):
        print("calops: note: PREFECT_API_URL is not set; Prefect will use a temporary local "
              "server (start one with `prefect server start` to see runs in the UI)")
    serve(home=str(ws.root), build=args.build, limit=args.limit, cron=args.cron,
          on_ingest=args.on_ingest)
    return 0
