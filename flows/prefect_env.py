"""Offline, quiet defaults for Prefect, set before prefect is first imported.

Nothing here overrides what the user set: with PREFECT_API_URL pointing at a server, runs go
there; without it Prefect starts a temporary local server, which on a busy 2-core machine can
take longer than Prefect's default start-up timeout (shared/FIELD-NOTES.md).
"""

from __future__ import annotations

import os

DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_TASKS_DEFAULT_NO_CACHE": "true",
    # INFO reaches the Prefect API (the UI shows each run's summary); the terminal shows
    # warnings only, so calops' own progress stays readable
    "PREFECT_LOGGING_LEVEL": "INFO",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
}


def configure(home: str | None = None) -> None:
    """Set the defaults; with a workspace, keep Prefect's own database inside it."""
    for k, v in DEFAULTS.items():
        os.environ.setdefault(k, v)
    if home and "PREFECT_HOME" not in os.environ and "PREFECT_API_URL" not in os.environ:
        os.environ["PREFECT_HOME"] = os.path.join(home, ".prefect")


configure()
