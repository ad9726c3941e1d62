"""Prefect events calops emits, so automations can react to new data.

``calops ingest`` emits ``calops.exposure.ingested`` for every new or reissued exposure when a
Prefect server is configured (``PREFECT_API_URL``); without one nothing is emitted and no
temporary server is started just for that. ``calops serve --on-ingest`` attaches an automation
that reprocesses stale exposures when such an event arrives.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

INGESTED = "calops.exposure.ingested"


def emit_ingested(home: str, ingested: Iterable[Any]) -> int:
    """One event per new or reissued exposure; returns how many were emitted."""
    if not os.environ.get("PREFECT_API_URL"):
        return 0
    from prefect.events import emit_event

    n = 0
    for res in ingested:
        if res.status == "unchanged":
            continue
        emit_event(event=INGESTED,
                   resource={"prefect.resource.id": f"calops.exposure.{res.exposure_id}",
                             "prefect.resource.name": res.exposure_id},
                   payload={"home": home, "exposure_id": res.exposure_id,
                            "version": res.version, "status": res.status})
        n += 1
    return n
