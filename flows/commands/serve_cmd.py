"""`calops serve`: serve the Prefect deployments defined in flows/deployments.py."""

from __future__ import annotations

import os
from typing import Any

from flows.workspace import from_args


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the calops Prefect deployments",
                       description="Register and serve the deployments (process, reprocess, "
                                   "detector1, image2, image3) with the Prefect API named by "
                                   "PREFECT_API_URL; runs them when triggered. Ctrl-C stops.")
    p.add_argument("--build", help="default build for triggered runs")
    p.add_argument("--limit", type=int, help="maximum concurrent flow runs")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: Any) -> int:
    from flows.deployments import serve

    ws = from_args(args)
    if not os.environ.get("PREFECT_API_URL"):
        print("calops: note: PREFECT_API_URL is not set; Prefect will use a temporary local "
              "server (start one with `prefect server start` to see runs in the UI)")
    serve(home=str(ws.root), build=args.build, limit=args.limit)
    return 0
