"""Builds as data: TOML manifests, their lifecycle, and the step plan a build pins.

A build names a pipeline version, an SDP version, a CRDS context and per-step pins (version,
skip, parameter overrides). The manifests shipped in ``catalogs/builds/`` seed a workspace's
``builds/`` directory; from then on the workspace copy is the current state and every lifecycle
change is also returned as an event for the catalog's append-only ``build_events`` table.

Lifecycle: development -> candidate -> operations -> archived (a candidate may also be archived
unpromoted). One operations build at a time: promoting a candidate archives the current one.
Candidate and operations builds pin a fixed context (never "latest"), and an archived build runs
nothing new while its products stay queryable.

Locks: a build that leaves development is resolved into a lock (``<name>.lock.json`` beside the
manifest, its hash in the manifest's ``lock`` field): for every stage, its step orders, and for
every step the exact version, skip flag and every science parameter with defaults written out.
Candidate, operations and archived builds run exactly their lock, so registering a new transform
version or changing a default never changes them. Development builds float: their plan is the
lock resolved afresh from the registry each time (and each run records the plan it used).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from store.errors import CalopsError
from store.identity import hash_bytes
from transforms import registry
from transforms.registry import PlannedStep

STATUSES = ("development", "candidate", "operations", "archived")
NEXT_STATUS = {"development": "candidate", "candidate": "operations", "operations": "archived"}
SHIPPED = Path(__file__).parent / "builds"
LOCKED = ("candidate", "operations", "archived")
LOCK_VERSION = 1
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
    lock_hash: str | None = None  # the manifest's ``lock`` field
    lock: Mapping[str, Any] | None = field(default=None, compare=False)  # the lock's content

    @property
    def fixed_context(self) -> bool:
        return self.crds_context != "latest"

    @property
    def locked(self) -> bool:
        return self.lock is not None

    def manifest_dict(self) -> dict[str, Any]:
        """The manifest as plain data: its fields and per-step pins (what the TOML holds)."""
        out = {k: getattr(self, k) for k in (
            "name", "status", "pipeline_version", "sdp_version", "crds_context",
            "candidate_date", "operations_date", "archived_date", "description")}
        out["lock"] = self.lock_hash
        out["pins"] = {
            s: {k: v for k, v in (("version", p.version), ("skip", p.skip),
                                  # TOML has no null: a None parameter is written as absent
                                  ("params", {n: x for n, x in p.params.items() if x is not None}),
                                  ("note", p.note)) if v not in (None, "", {})}
            for s, p in sorted(self.steps.items())
        }
        return out

    def as_dict(self) -> dict[str, Any]:
        """The build as `calops build show NAME --json` prints it: the manifest's fields,
        whether it is locked, and every step of every stage as it runs
        (``{stage: {step: {"version", "skip", "params"}}}``, from the lock or, for a
        development build, resolved from the registry now)."""
        out = self.manifest_dict()
        out["locked"] = self.locked
        out["steps"] = {st: dict(v["steps"]) for st, v in effective_lock(self)["stages"].items()}
        return out


# --- reading and writing manifests -------------------------------------------------------------

def parse_manifest(text: str, source: str = "<manifest>", lock_text: str | None = None) -> Build:
    """A Build from TOML text (and its lock's JSON text, if it has one); every problem is
    reported with the manifest's name."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"{source}: not valid TOML ({exc})") from None
    missing = [k for k in ("name", "status", "pipeline_version", "sdp_version", "crds_context")
               if k not in raw]
    if missing:
        raise BuildError(f"{source}: missing {', '.join(missing)}")
    known = {"name", "status", "pipeline_version", "sdp_version", "crds_context", "candidate_date",
             "operations_date", "archived_date", "description", "steps", "lock"}
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
        lock_hash=None if raw.get("lock") is None else str(raw["lock"]),
    )
    if b.lock_hash is not None:
        if lock_text is None:
            raise BuildError(f"{source}: names lock {b.lock_hash} but its lock file "
                             f"{b.name}.lock.json is missing; restore it from a backup")
        if lock_hash(lock_text) != b.lock_hash:
            raise BuildError(f"{source}: the lock file {b.name}.lock.json does not match the "
                             f"manifest's lock hash (it was changed); restore it from a backup")
        try:
            lock = json.loads(lock_text)
        except json.JSONDecodeError as exc:
            raise BuildError(f"{b.name}.lock.json: not valid JSON ({exc})") from None
        b = replace(b, lock=lock)
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
    if b.status in LOCKED and b.lock is None:
        raise BuildError(f"{source}: a {b.status} build must carry its lock (a lock field and "
                         f"{b.name}.lock.json); only development builds float")
    if b.lock is not None:
        _check_lock(b, source)
        return  # a locked build's pins were resolved when it was locked
    for step, pin in b.steps.items():
        try:
            spec = registry.get(step, pin.version)
            spec.make_params(pin.params)
        except registry.UnknownStep as exc:
            raise BuildError(f"{source}: {exc}") from None


def _check_lock(b: Build, source: str) -> None:
    """A lock names only registered step versions and parameters they have."""
    lock = b.lock or {}
    if lock.get("lock_version") != LOCK_VERSION or not isinstance(lock.get("stages"), dict):
        raise BuildError(f"{source}: its lock is not a calops lock of version {LOCK_VERSION}")
    for stage, ls in lock["stages"].items():
        for name, e in ls.get("steps", {}).items():
            try:
                registry.get(name, e["version"]).make_params(e["params"])
            except registry.UnknownStep as exc:
                raise BuildError(f"{source}: its lock pins what this calops does not have "
                                 f"({stage}: {exc})") from None
            except (KeyError, TypeError):
                raise BuildError(f"{source}: lock entry {stage}.{name} is malformed") from None


def dump_manifest(b: Build) -> str:
    """TOML text for a build (the subset of TOML that manifests use)."""
    lines = []
    d = b.manifest_dict()
    for k, v in d.items():
        if k != "pins" and v not in (None, ""):
            lines.append(f"{k} = {_toml(v)}")
    for step, pin in d["pins"].items():
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


# --- locks and the plans they give -------------------------------------------------------------

def lock_text(lock: Mapping[str, Any]) -> str:
    """The canonical JSON text of a lock (what ``<name>.lock.json`` holds, and is hashed)."""
    return json.dumps(lock, sort_keys=True, indent=1, ensure_ascii=True) + "\n"


def lock_hash(text: str) -> str:
    return hash_bytes(text.encode("utf-8"))


def resolve_lock(b: Build) -> dict[str, Any]:
    """What ``b`` runs, resolved from the registry now: for every declared stage its step orders
    and, for every step, version (the pin, else the newest), skip and every science
    parameter (defaults written out). Steps declared by a stage but not implemented yet are
    left out (they are not part of any build until they exist)."""
    known = registry.steps()
    stages: dict[str, Any] = {}
    for st in registry.stages().values():
        entries: dict[str, Any] = {}
        for name in st.all_steps:
            pin = b.steps.get(name, StepPin())
            if name not in known and pin.version is None:
                continue
            try:
                spec = registry.get(name, pin.version)
                params = spec.make_params(pin.params)
            except registry.UnknownStep as exc:
                raise BuildError(f"build {b.name}: {exc}") from None
            skip = pin.skip if pin.skip is not None else spec.skip_by_default
            entries[name] = {"version": spec.version, "skip": bool(skip),
                             "params": json.loads(json.dumps(spec.science_params(params)))}
        orders = {"*": [n for n in st.steps if n in entries]}
        for inst, order in sorted(st.orders.items()):
            orders[inst] = [n for n in order if n in entries]
        stages[st.name] = {"orders": orders, "steps": entries}
    return {"lock_version": LOCK_VERSION, "build": b.name, "stages": stages}


def effective_lock(b: Build) -> Mapping[str, Any]:
    """The lock a build runs: its own if locked, else resolved from the registry now."""
    return b.lock if b.lock is not None else resolve_lock(b)


def pins_of(b: Build) -> dict[str, StepPin]:
    """Pins that make a development build run exactly what ``b`` runs (every step's version,
    skip and parameters, from its lock): a base for a build that changes one thing."""
    pins: dict[str, StepPin] = {}
    for ls in effective_lock(b)["stages"].values():
        for name, e in ls["steps"].items():
            note = b.steps[name].note if name in b.steps else ""
            pins[name] = StepPin(e["version"], e["skip"], dict(e["params"]), note)
    return pins


def plan(b: Build, stage: str, meta: Mapping[str, Any] | None = None) -> list[PlannedStep]:
    """Every step of ``stage`` as ``b`` runs it for a product with ``meta`` (its instrument
    picks the step order; steps that do not apply to it are left out)."""
    try:
        registry.stage(stage)
    except registry.UnknownStep as exc:
        raise BuildError(str(exc)) from None
    ls = effective_lock(b)["stages"].get(stage)
    if ls is None:
        raise BuildError(f"build {b.name} was locked before stage {stage} existed, so it cannot "
                         f"run it; use a newer build")
    inst = str((meta or {}).get("instrument.name", "")).upper()
    out = []
    for name in ls["orders"].get(inst, ls["orders"]["*"]):
        e = ls["steps"][name]
        pin = b.steps.get(name, StepPin())
        spec = registry.get(name, e["version"])
        if meta is not None and not spec.applies_to(meta):
            continue
        runtime = {k: v for k, v in pin.params.items() if k in spec.exec_only}
        out.append(PlannedStep(spec, spec.make_params({**e["params"], **runtime}), bool(e["skip"])))
    return out


# --- the workspace's book of builds ------------------------------------------------------------

Event = dict[str, Any]


class BuildBook:
    """The builds of one workspace: a directory of manifests, seeded from the shipped ones."""

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        if not self.dir.exists():
            self.dir.mkdir(parents=True)
            for f in sorted(SHIPPED.glob("*.toml")) + sorted(SHIPPED.glob("*.lock.json")):
                (self.dir / f.name).write_text(f.read_text())

    def names(self) -> list[str]:
        """Every build name that has a manifest here (readable or not)."""
        return sorted((f.name[:-5] for f in self.dir.glob("*.toml")), key=_version_key)

    def all(self) -> list[Build]:
        """Every build; a bad manifest is an error naming it (see ``survey`` to list around)."""
        return [self.get(n) for n in self.names()]

    def survey(self) -> tuple[list[Build], dict[str, str]]:
        """Every readable build, and for each unreadable one its one-line problem."""
        good, bad = [], {}
        for n in self.names():
            try:
                good.append(self.get(n))
            except BuildError as exc:
                bad[n] = str(exc)
        return good, bad

    def get(self, name: str) -> Build:
        path = self.dir / f"{name}.toml"
        if not _NAME.match(name) or not path.exists():
            known = ", ".join(self.names()) or "(none)"
            raise BuildError(f"unknown build {name!r}; known builds: {known}")
        lock_path = self.dir / f"{name}.lock.json"
        lock = lock_path.read_text() if lock_path.exists() else None
        b = parse_manifest(path.read_text(), path.name, lock)
        if b.name != name:
            raise BuildError(f"{path.name}: names build {b.name!r}; a manifest's file name must be "
                             "its build name")
        return b

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
                    description=description or f"Development build from {src.name}.",
                    lock_hash=None, lock=None)
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
        else:  # leaving development: freeze what it runs
            b = lock_build(replace(b, status=to, candidate_date=today))
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
        """Atomic replace: a reader never sees a half-written manifest. The lock is written
        first, so a manifest never names a lock that is not there."""
        if b.lock is not None:
            _atomic_write(self.dir / f"{b.name}.lock.json", lock_text(b.lock))
        _atomic_write(self.dir / f"{b.name}.toml", dump_manifest(b))


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def lock_build(b: Build) -> Build:
    """``b`` with its lock resolved from the registry now (what promotion to candidate does)."""
    lock = resolve_lock(b)
    return replace(b, lock=lock, lock_hash=lock_hash(lock_text(lock)))


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
