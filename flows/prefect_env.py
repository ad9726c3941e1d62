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


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the parent dies."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the atexit stop still runs on a normal exit
        pass


class PrefectUnavailable(Exception):
    """No Prefect server could be started (a full disk, a port, a broken install)."""


class TemporaryServer:
    """A Prefect API server for one calops command, when no PREFECT_API_URL is set.

    Prefect would start one by itself, but a SIGKILLed parent leaves that server running;
    this one is started with the parent-death signal set, so it dies with the command however
    the command ends. Its database lives in the workspace (``PREFECT_HOME``)."""

    def __init__(self, home: str | None = None, timeout: float | None = None):
        self.home, self.proc, self.url = home, None, None
        self.timeout = timeout or float(os.environ.get(
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", DEFAULTS[
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]))

    def __enter__(self) -> "TemporaryServer":
        return self.start().ready()

    def start(self) -> "TemporaryServer":
        """Start the server without waiting for it (``ready`` waits): it boots while the
        caller does other work."""
        if os.environ.get("PREFECT_API_URL") or self.proc is not None:
            return self  # a server is configured (or started): use it
        import socket
        import subprocess
        import sys

        import prefect

        configure(self.home)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
               "PREFECT__SERVER_FINAL": "1"}
        log_dir = os.environ.get("PREFECT_HOME") or os.path.join(os.path.expanduser("~"),
                                                                 ".prefect")
        os.makedirs(log_dir, exist_ok=True)
        self.log = os.path.join(log_dir, "calops-server.log")  # never a pipe: it could fill up
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent),
             "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "error", "--lifespan", "on"],
            env=env, preexec_fn=_die_with_parent, stdout=log, stderr=log)
        log.close()
        self.url = f"http://127.0.0.1:{port}/api"
        return self

    def ready(self) -> "TemporaryServer":
        """Wait until the started server answers, then point this process at it."""
        if self.proc is None:
            return self
        import time

        import httpx

        end = time.monotonic() + self.timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                with open(self.log, "rb") as f:
                    lines = f.read().decode(errors="replace").strip().splitlines()
                last = lines[-1].split(" - ")[-1] if lines else f"exit {self.proc.returncode}"
                raise PrefectUnavailable(
                    f"the temporary Prefect server could not start ({last}; is the disk "
                    f"full? log: {self.log}); free space, or point PREFECT_API_URL at a server")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            self.__exit__()
            raise PrefectUnavailable(
                f"the temporary Prefect server did not answer within {self.timeout:.0f} s "
                f"(log: {self.log}); raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS or "
                "point PREFECT_API_URL at a server")
        os.environ["PREFECT_API_URL"] = self.url
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        if os.environ.get("PREFECT_API_URL") == self.url:
            del os.environ["PREFECT_API_URL"]
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except Exception:  # noqa: BLE001
            self.proc.kill()
        self.proc = None
