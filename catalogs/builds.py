"""Builds as data: TOML manifests, their lifecycle, and the step plan a build pins.

A build names a pipeline version, an SDP version, a CRDS context and per-step pins (version,
skip, parameter overrides). The manifests shipped in ``catalogs/builds/`` seed a workspace's
``builds/`` directory; from then on the workspace copy is the current state and every lifecycle
change is also returned as an event for the catalog's append-only ``build_events`` table.

Lifecycle: development -> candidate -> operations -> archived (a candidate may also be archived
unpromoted). One operations build at a time: promoting a candidate archives the current one.
Candidate and operations builds pin a fixed context (never "latest"), and an archived build runs
nothing new while its products stay queryable.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from store.errors import CalopsError
from transforms import registry

STATUSES = ("development", "candidate", "operations", "archived")
NEXT_STATUS = {"development": "candidate", "candidate": "operations", "operations": "archived"}
SHIPPED = Path(__file__).parent / "builds"
_CONTEXT = re.compile(r"^jwst_\d{4}\.pmap$")
_NAME = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]*$")


class BuildError(CalopsError):
    """A manifest that is malformed, unknown, or a lifecycle change that is not allowed."""


@dataclass(frozen=True)
class StepPin:
    version: str | None = None
    skip: bool | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Build:
    name: str
    status: str
    pipeline_version: str
    sdp_version: str
    crds_context: str
    candidate_date: str | None = None
    operations_date: str | None = None
    archived_date: str | None = None
    description: str = ""
    steps: Mapping[str, StepPin] = field(default_factory=dict)

    @property
    def fixed_context(self) -> bool:
        return self.crds_context != "latest"

    def as_dict(self) -> dict[str, Any]:
        """The manifest as plain data (what `calops build show --format json` prints)."""
        out = {k: getattr(self, k) for k in (
            "name", "status", "pipeline_version", "sdp_version", "crds_context",
            "candidate_date", "operations_date", "archived_date", "description")}
        out["steps"] = {
            s: {k: v for k, v in (("version", p.version), ("skip", p.skip),
                                  ("params", dict(p.params)), ("note", p.note)) if v not in (None, "", {})}
            for s, p in sorted(self.steps.items())
        }
        return out


@dataclass(frozen=True)
class PlannedStep:
    """One step of a stage as a build runs it."""

    spec: registry.StepSpec
    params: Any
    skip: bool


# --- reading and writing manifests -------------------------------------------------------------

def parse_manifest(text: str, source: str = "<manifest>") -> Build:
    """A Build from TOML text; every problem is reported with the manifest's name."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"{source}: not valid TOML ({exc})") from None
    missing = [k for k in ("name", "status", "pipeline_version", "sdp_version", "crds_context")
               if k not in raw]
    if missing:
        raise BuildError(f"{source}: missing {', '.join(missing)}")
    known = {"name", "status", "pipeline_version", "sdp_version", "crds_context", "candidate_date",
             "operations_date", "archived_date", "description", "steps"}
    extra = sorted(set(raw) - known)
    if extra:
        raise BuildError(f"{source}: unknown field(s) {', '.join(extra)}")
    steps = {}
    for step, pin in (raw.get("steps") or {}).items():
        bad = sorted(set(pin) - {"version", "skip", "params", "note"})
        if bad:
            raise BuildError(f"{source}: step {step} has unknown field(s) {', '.join(bad)}")
        steps[step] = StepPin(
            version=None if pin.get("version") is None else str(pin["version"]),
            skip=pin.get("skip"),
            params=dict(pin.get("params") or {}),
            note=str(pin.get("note", "")),
        )
    b = Build(
        name=str(raw["name"]), status=str(raw["status"]),
        pipeline_version=str(raw["pipeline_version"]), sdp_version=str(raw["sdp_version"]),
        crds_context=str(raw["crds_context"]),
        candidate_date=_date(raw.get("candidate_date")),
        operations_date=_date(raw.get("operations_date")),
        archived_date=_date(raw.get("archived_date")),
        description=str(raw.get("description", "")), steps=steps,
    )
    validate(b, source)
    return b


def _date(v: Any) -> str | None:
    return None if v is None else str(v)


def validate(b: Build, source: str = "<manifest>") -> None:
    """Check a build against the lifecycle rules and the step registry."""
    if not _NAME.match(b.name):
        raise BuildError(f"{source}: build name {b.name!r} must be letters, digits, '.', '_' or '-'")
    if b.status not in STATUSES:
        raise BuildError(f"{source}: status {b.status!r} is not one of {', '.join(STATUSES)}")
    if b.crds_context != "latest" and not _CONTEXT.match(b.crds_context):
        raise BuildError(f"{source}: crds_context {b.crds_context!r} must be like jwst_0001.pmap "
                         "or 'latest'")
    if b.status in ("candidate", "operations") and not b.fixed_context:
        raise BuildError(f"{source}: a {b.status} build must pin a fixed CRDS context, not 'latest'")
    for step, pin in b.steps.items():
        spec = registry.get(step, pin.version)  # unknown step/version -> UnknownStep listing them
        spec.make_params(pin.params)  # unknown parameter -> UnknownStep listing them


def dump_manifest(b: Build) -> str:
    """TOML text for a build (the subset of TOML that manifests use)."""
    lines = []
    for k, v in b.as_dict().items():
        if k != "steps" and v not in (None, ""):
            lines.append(f"{k} = {_toml(v)}")
    for step, pin in b.as_dict()["steps"].items():
        lines += ["", f"[steps.{step}]"] + [f"{k} = {_toml(v)}" for k, v in pin.items()]
    return "\n".join(lines) + "\n"


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    raise BuildError(f"cannot write {type(v).__name__} value {v!r} into a manifest")


# --- the plan a build pins for a stage ----------------------------------------------------------

def plan(b: Build, stage: str) -> list[PlannedStep]:
    """Every step of ``stage`` with the version, parameters and skip flag this build pins."""
    if stage not in registry.STAGES:
        raise BuildError(f"unknown stage {stage!r}; stages: {', '.join(registry.STAGES)}")
    out = []
    for name in registry.STAGES[stage]:
        pin = b.steps.get(name, StepPin())
        spec = registry.get(name, pin.version)
        skip = pin.skip if pin.skip is not None else name in registry.SKIP_BY_DEFAULT
        out.append(PlannedStep(spec, spec.make_params(pin.params), bool(skip)))
    return out


# --- the workspace's book of builds ------------------------------------------------------------

Event = dict[str, Any]


class BuildBook:
    """The builds of one workspace: a directory of manifests, seeded from the shipped ones."""

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        if not self.dir.exists():
            self.dir.mkdir(parents=True)
            for f in sorted(SHIPPED.glob("*.toml")):
                (self.dir / f.name).write_text(f.read_text())

    def all(self) -> list[Build]:
        builds = [parse_manifest(f.read_text(), f.name) for f in sorted(self.dir.glob("*.toml"))]
        return sorted(builds, key=lambda b: _version_key(b.name))

    def get(self, name: str) -> Build:
        path = self.dir / f"{name}.toml"
        if not path.exists():
            known = ", ".join(b.name for b in self.all()) or "(none)"
            raise BuildError(f"unknown build {name!r}; known builds: {known}")
        return parse_manifest(path.read_text(), path.name)

    def operations(self) -> Build | None:
        ops = [b for b in self.all() if b.status == "operations"]
        return ops[0] if ops else None

    def new(self, name: str, base: str | None = None, crds_context: str | None = None,
            description: str = "", who: str = "", why: str = "") -> tuple[Build, list[Event]]:
        """A development build, copied from ``base`` (default: the operations build)."""
        if (self.dir / f"{name}.toml").exists():
            raise BuildError(f"build {name!r} exists already; pick a new name")
        src = self.get(base) if base else self.operations()
        if src is None:
            raise BuildError("no operations build to copy from; name one with --from")
        b = replace(src, name=name, status="development", candidate_date=None,
                    operations_date=None, archived_date=None,
                    crds_context=crds_context or src.crds_context,
                    description=description or f"Development build from {src.name}.")
        validate(b, name)
        self._write(b)
        return b, [_event(b.name, "created", None, "development", who, why or f"from {src.name}")]

    def promote(self, name: str, today: str, who: str = "", why: str = "") -> tuple[Build, list[Event]]:
        """Move a build one step along the lifecycle; to operations archives the current one."""
        b = self.get(name)
        to = NEXT_STATUS.get(b.status)
        if to is None or to == "archived":
            raise BuildError(f"build {name} is {b.status}; only development and candidate builds "
                             "can be promoted (use `calops build archive` to retire one)")
        if not b.fixed_context:
            raise BuildError(f"build {name} follows the 'latest' CRDS context; pin a fixed context "
                             "(e.g. jwst_0002.pmap) before it can become a candidate")
        events = []
        if to == "operations":
            current = self.operations()
            if current is not None:
                _, ev = self.archive(current.name, today, who, f"superseded by {name}")
                events += ev
            b = replace(b, status=to, operations_date=today)
        else:
            b = replace(b, status=to, candidate_date=today)
        self._write(b)
        events.append(_event(name, "promoted", NEXT_INV[to], to, who, why))
        return b, events

    def archive(self, name: str, today: str, who: str = "", why: str = "") -> tuple[Build, list[Event]]:
        b = self.get(name)
        if b.status == "archived":
            raise BuildError(f"build {name} is archived already")
        if b.status == "development":
            raise BuildError(f"build {name} is a development build; only candidate and operations "
                             "builds are archived")
        old = b.status
        b = replace(b, status="archived", archived_date=today)
        self._write(b)
        return b, [_event(name, "archived", old, "archived", who, why)]

    def _write(self, b: Build) -> None:
        """Atomic replace: a reader never sees a half-written manifest."""
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{b.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(dump_manifest(b))
        os.replace(tmp, self.dir / f"{b.name}.toml")


NEXT_INV = {v: k for k, v in NEXT_STATUS.items()}


def require_runnable(b: Build) -> None:
    """Refuse new work under an archived build (its products stay queryable)."""
    if b.status == "archived":
        raise BuildError(f"build {b.name} is archived: it runs nothing new (its products stay "
                         "queryable); run under the operations or a candidate build instead")


def resolve_context(b: Build, available: Iterable[str]) -> str:
    """The context a build runs with: its pin, or the newest available for 'latest'."""
    available = sorted(available)
    if b.fixed_context:
        if available and b.crds_context not in available:
            raise BuildError(f"build {b.name} pins CRDS context {b.crds_context}, which the CRDS "
                             f"cache does not have (it has: {', '.join(available)})")
        return b.crds_context
    if not available:
        raise BuildError(f"build {b.name} follows 'latest' but the CRDS cache has no context")
    return available[-1]


def _event(build: str, event: str, frm: str | None, to: str, who: str, why: str) -> Event:
    return {"build": build, "event": event, "from_status": frm, "to_status": to,
            "at": dt.datetime.now(dt.timezone.utc), "who": who or _whoami(), "why": why}


def _whoami() -> str:
    return os.environ.get("USER") or os.environ.get("LOGNAME") or "unknown"


def _version_key(name: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.]", name))


def record_events(events: list[Event], add: Callable[[str, dict], None]) -> None:
    """Hand lifecycle events to a catalog batch's ``add(table, row)``."""
    for e in events:
        add("build_events", e)
