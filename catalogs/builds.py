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

import contextlib
import datetime as dt
import json
import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
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


class ModeRefused(BuildError):
    """A build whose lock predates the steps an exposure's mode needs (``MODE_STEPS``)."""


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
        development build, resolved from the registry now), and the modes it does not
        calibrate with why (``{stage: {EXP_TYPE: reason}}``, see ``MODE_STEPS``)."""
        out = self.manifest_dict()
        out["locked"] = self.locked
        out["steps"] = {st: dict(v["steps"]) for st, v in effective_lock(self)["stages"].items()}
        out["modes_refused"] = {st: {m: why for m, why in ms.items() if why}
                                for st, ms in modes(self).items()}
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
    for k in ("name", "status", "pipeline_version", "sdp_version", "crds_context", "description",
              "lock"):
        if isinstance(raw.get(k), (dict, list)):
            raise BuildError(f"{source}: {k} must be a single value, not a "
                             f"{'table' if isinstance(raw[k], dict) else 'list'}")
    known = {"name", "status", "pipeline_version", "sdp_version", "crds_context", "candidate_date",
             "operations_date", "archived_date", "description", "steps", "lock"}
    extra = sorted(set(raw) - known)
    if extra:
        raise BuildError(f"{source}: unknown field(s) {', '.join(extra)}")
    steps = {}
    if not isinstance(raw.get("steps") or {}, dict):
        raise BuildError(f"{source}: steps must be a table of [steps.<name>] sections")
    for step, pin in (raw.get("steps") or {}).items():
        if not isinstance(pin, dict):
            raise BuildError(f"{source}: step {step} must be a [steps.{step}] table, not "
                             f"{type(pin).__name__}")
        bad = sorted(set(pin) - {"version", "skip", "params", "note"})
        if bad:
            raise BuildError(f"{source}: step {step} has unknown field(s) {', '.join(bad)}")
        if not isinstance(pin.get("params") or {}, dict):
            raise BuildError(f"{source}: step {step}: params must be a table "
                             "(params = { name = value })")
        if pin.get("skip") is not None and not isinstance(pin["skip"], bool):
            raise BuildError(f"{source}: step {step}: skip must be true or false, not "
                             f"{pin['skip']!r}")
        if isinstance(pin.get("version"), (dict, list, bool)):
            raise BuildError(f"{source}: step {step}: version must be a string like \"1.0\"")
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
        if not isinstance(lock, dict):
            raise BuildError(f"{b.name}.lock.json: not a calops lock (a JSON object)")
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
        if not isinstance(ls, dict) or not isinstance(ls.get("steps", {}), dict) \
                or not isinstance(ls.get("orders", {"*": []}), dict):
            raise BuildError(f"{source}: lock entry {stage} is malformed")
        for name, e in ls.get("steps", {}).items():
            try:
                registry.get(name, e["version"]).make_params(e["params"])
            except registry.UnknownStep as exc:
                raise BuildError(f"{source}: its lock pins what this calops does not have "
                                 f"({stage}: {exc})") from None
            except (KeyError, TypeError, AttributeError):
                raise BuildError(f"{source}: lock entry {stage}.{name} is malformed") from None
        orders = ls.get("orders", {})
        for inst, order in orders.items():
            if not isinstance(order, list) or any(n not in ls.get("steps", {}) for n in order):
                raise BuildError(f"{source}: lock order {stage}.{inst} names steps the lock "
                                 "does not pin")
        if "*" not in orders:
            raise BuildError(f"{source}: lock entry {stage} has no default step order")


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


# --- the modes a build calibrates -------------------------------------------------------------
# A mode (EXP_TYPE) that calibrates only from some step versions on: per stage, the modes and
# the first version of each step that handles them (earlier versions refuse those exposures
# deep inside a step, e.g. assign_wcs 2.0: "EXP_TYPE NRS_IFU has no spectral model"). Whether
# a build calibrates a mode is then read from its lock: every listed step is there, at that
# version or newer. A build that does not is refused per exposure at planning, in one line.
# Declared once, as data; a new mode (or a mode's new step) is one entry.
MODE_STEPS: Mapping[str, Mapping[tuple[str, ...], Mapping[str, str]]] = {
    "spec2": {("MIR_MRS", "NRS_IFU"): {"assign_wcs": "2.1", "flat_field": "2.1",
                                       "photom": "2.1", "cube_build": "1.0"}},
    "spec3": {("MIR_MRS", "NRS_IFU"): {"outlier_detection": "2.1", "cube_build": "1.0"}},
}
# what the steps of a mode are called in a refusal
MODE_FAMILY = {"MIR_MRS": "IFU", "NRS_IFU": "IFU"}


def mode_refusal(b: Build, stage: str, exp_type: str, others: Iterable[Build] = ()) -> str | None:
    """Why ``b`` does not calibrate mode ``exp_type`` in ``stage`` (its lock predates the step
    versions ``MODE_STEPS`` lists for it), or None when it does. ``others`` (the workspace's
    builds) name, in the line, those that do calibrate it."""
    mode = str(exp_type or "").upper()
    need = next((v for modes, v in MODE_STEPS.get(stage, {}).items() if mode in modes), None)
    ls = effective_lock(b)["stages"].get(stage)
    if need is None or ls is None:
        return None
    old = []
    for step, first in need.items():
        have = ls["steps"].get(step, {}).get("version")
        if have is None or _version_key(have) < _version_key(first):
            old.append(f"{step} {have or 'absent'} < {first}")
    if not old:
        return None
    family = MODE_FAMILY.get(mode, mode)
    can = sorted((o.name for o in others if o.name != b.name and o.status != "archived"
                  and mode_refusal(o, stage, mode) is None), key=_version_key)
    use = (f"use {' or '.join(can)}" if can else "use a development build") + \
        " or a build locked after them"
    return (f"build {b.name} does not calibrate {mode}: its lock predates the {family} steps "
            f"({', '.join(old)}); {use}")


def modes(b: Build) -> dict[str, dict[str, str | None]]:
    """Per stage, every mode ``MODE_STEPS`` declares and why ``b`` refuses it (None: it
    calibrates it): what ``calops build show`` lists."""
    return {stage: {m: mode_refusal(b, stage, m) for ms in table for m in ms}
            for stage, table in MODE_STEPS.items()}


def plan(b: Build, stage: str, meta: Mapping[str, Any] | None = None) -> list[PlannedStep]:
    """Every step of ``stage`` as ``b`` runs it for a product with ``meta`` (its instrument
    picks the step order; steps that do not apply to it are left out). A mode the build does
    not calibrate (``mode_refusal``) is refused with one line."""
    try:
        registry.stage(stage)
    except registry.UnknownStep as exc:
        raise BuildError(str(exc)) from None
    ls = effective_lock(b)["stages"].get(stage)
    if ls is None:
        raise BuildError(f"build {b.name} was locked before stage {stage} existed, so it cannot "
                         f"run it; use a newer build")
    why = mode_refusal(b, stage, str((meta or {}).get("exposure.type") or ""))
    if why:
        raise ModeRefused(why)
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
    """The builds of one workspace: a directory of manifests, seeded from the shipped ones.

    Given the workspace's ``catalog`` (and ``store``), the book is tamper-evident
    (docs/integrity.md): every lifecycle change records the manifest's content hash
    (``manifest_hash``) in the catalog's ``builds`` table, its events in ``build_events`` and a
    copy of the manifest and its lock in the store; ``get`` refuses a candidate, operations or
    archived manifest whose content no longer matches what was recorded, naming the file. A
    change is recorded before the manifest file is replaced (the new file waits as
    ``.<name>.toml.pending``), so a writer killed in between leaves a change that the next
    reader completes, never a manifest that looks tampered with. Without a catalog (a bare
    directory, as in unit tests) manifests are read as they are.
    """

    def __init__(self, directory: str | os.PathLike, catalog: Any = None, store: Any = None):
        self.dir = Path(directory)
        self.catalog = catalog
        self.store = store
        self.seeded: list[str] = []
        if not self.dir.exists() and self._seed():
            self.seeded = [f.name[:-5] for f in sorted(SHIPPED.glob("*.toml"))]
            if catalog is not None:
                self._record_seeds()

    def _seed(self) -> bool:
        """Copy the shipped manifests into a new builds directory, all at once (a directory
        renamed into place), so a concurrent reader never sees half of them; False if another
        process or thread seeded it first."""
        import shutil
        import uuid

        self.dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.dir.parent / f".{self.dir.name}.seed-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            for f in sorted(SHIPPED.glob("*.toml")) + sorted(SHIPPED.glob("*.lock.json")):
                (tmp / f.name).write_text(f.read_text())
            try:
                os.rename(tmp, self.dir)
            except OSError:
                if self.dir.is_dir():
                    return False
                raise
            return True
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def names(self) -> list[str]:
        """Every build name that has a manifest here (readable or not)."""
        return sorted((f.name[:-5] for f in self.dir.glob("*.toml")), key=_version_key)

    def all(self) -> list[Build]:
        """Every build; a bad manifest is an error naming it (see ``survey`` to list around)."""
        return [self.get(n) for n in self.names()]

    def survey(self) -> tuple[list[Build], dict[str, str]]:
        """Every readable build, and for each unreadable (or tampered) one its one-line
        problem."""
        good, bad = [], {}
        recorded = self._recorded_or_none()
        for n in self.names():
            try:
                good.append(self.get(n, _recorded=recorded))
            except CalopsError as exc:
                bad[n] = str(exc)
        return good, bad

    def get(self, name: str, _recorded: Any = None) -> Build:
        path = self.dir / f"{name}.toml"
        if not _NAME.match(name) or not path.exists():
            known = ", ".join(self.names()) or "(none)"
            raise BuildError(f"unknown build {name!r}; known builds: {known}")
        b = self._parse(name)
        if self.catalog is not None:
            b = self._check_recorded(b, path, self._recorded() if _recorded is None else _recorded)
        return b

    def _parse(self, name: str, path: Path | None = None) -> Build:
        path = path or self.dir / f"{name}.toml"
        lock_path = self.dir / f"{name}.lock.json"
        try:
            text = path.read_text()
            lock = lock_path.read_text() if lock_path.exists() else None
        except (OSError, UnicodeDecodeError) as exc:
            raise BuildError(f"{path.name}: cannot be read ({exc})") from None
        b = parse_manifest(text, f"{self.dir.name}/{name}.toml", lock)
        if b.name != name:
            raise BuildError(f"{self.dir.name}/{name}.toml: names build {b.name!r}; a manifest's "
                             "file name must be its build name")
        return b

    def operations(self) -> Build | None:
        """The operations build (manifests that cannot be read or were tampered with are not
        candidates for it; `calops build list` names them)."""
        good, _ = self.survey()
        ops = [b for b in good if b.status == "operations"]
        if len(ops) > 1:
            raise BuildError(f"{len(ops)} builds say they are operations "
                             f"({', '.join(b.name for b in ops)}); only one can be: see "
                             "`calops build list` and docs/builds.md")
        return ops[0] if ops else None

    # --- tamper evidence ----------------------------------------------------------------------

    def _recorded(self) -> Mapping[str, tuple[str | None, str | None]]:
        from catalogs import lifecycle

        return lifecycle.recorded_manifests(self.catalog)

    def _recorded_or_none(self) -> Any:
        if self.catalog is None:
            return None
        try:
            return self._recorded()
        except CalopsError:
            return None  # each get() then reports the catalog's problem itself

    def _check_recorded(self, b: Build, path: Path,
                        recorded: Mapping[str, tuple[str | None, str | None]]) -> Build:
        """``b`` if its manifest is what the catalog recorded (or, never recorded, the shipped
        one), else a BuildError naming the file. Development manifests are edited by hand."""
        h = manifest_hash(b)
        rec = recorded.get(b.name)
        where = f"{self.dir.name}/{path.name}"
        if rec is None or rec[1] is None:
            shipped = _shipped(b.name)
            guarded = b.status in LOCKED or (shipped is not None and shipped[0] in LOCKED) \
                or (rec is not None and rec[0] in LOCKED)
            if not guarded or (shipped is not None and shipped[1] == h):
                return b
            raise BuildError(f"{where}: a {b.status} build that the catalog has no record of"
                             f"{' and that differs from the shipped manifest' if shipped else ''}; "
                             "builds leave development only through `calops build promote` (if "
                             f"this manifest is right, record it: calops build adopt {b.name} "
                             "--why ...)")
        status, want = rec
        if b.status not in LOCKED and status not in LOCKED:
            return b
        if h == want:
            return b
        forward = self._roll_forward(b.name, want)
        if forward is not None:
            return forward
        raise BuildError(f"{where} was changed by hand since the catalog recorded it as {status} "
                         f"(recorded {want[:19]}…, now {h[:19]}…): it is refused; a {status} "
                         "build changes only through `calops build` (`calops repair` restores "
                         "the recorded manifest)")

    def _roll_forward(self, name: str, want: str) -> Build | None:
        """Finish a lifecycle change whose catalog record was written but whose manifest file
        was not replaced yet (the writer was killed in between): the pending file is the
        recorded one."""
        pending = self.dir / f".{name}.toml.pending"
        if not pending.exists():
            return None
        try:
            b = self._parse(name, pending)
        except BuildError:
            return None
        if manifest_hash(b) != want:
            return None
        with contextlib.suppress(FileNotFoundError):
            os.replace(pending, self.dir / f"{name}.toml")
        return b

    def _record_seeds(self) -> None:
        """Record the shipped manifests just copied here (best effort: an unrecorded shipped
        manifest is still recognised by its content)."""
        try:
            builds = [self._parse(n) for n in self.seeded]
            events = [_event(b.name, "seeded", None, b.status, "", "copied from the shipped "
                             "manifests") for b in builds]
            self._commit(builds, events)
        except (CalopsError, OSError):
            pass

    # --- lifecycle ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def changing(self) -> Iterator[None]:
        """One lifecycle change at a time in this workspace (an exclusive lock on
        ``.lifecycle.lock`` in the builds directory)."""
        import fcntl

        with open(self.dir / ".lifecycle.lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def new(self, name: str, base: str | None = None, crds_context: str | None = None,
            description: str = "", who: str = "", why: str = "") -> tuple[Build, list[Event]]:
        """A development build, copied from ``base`` (default: the operations build)."""
        if not _NAME.match(name or ""):
            raise BuildError(f"build name {name!r} must be letters, digits, '.', '_' or '-' "
                             "(starting with a letter or digit)")
        with self.changing():
            if (self.dir / f"{name}.toml").exists():
                raise BuildError(f"build {name!r} exists already; pick a new name")
            src = self.get(base) if base else self.operations()
            if src is None:
                raise BuildError("no operations build to copy from; name one with --from")
            # a copy runs what its base runs (the base's lock, pinned), and then floats only
            # where its manifest is edited: "the new context alone" must mean just that
            b = replace(src, steps=pins_of(src) if src.lock is not None else src.steps,
                        name=name, status="development", candidate_date=None,
                        operations_date=None, archived_date=None,
                        crds_context=crds_context or src.crds_context,
                        description=description or f"Development build from {src.name}.",
                        lock_hash=None, lock=None)
            validate(b, name)
            events = [_event(b.name, "created", None, "development", who, why or f"from {src.name}")]
            self._commit([b], events)
        return b, events

    def promote(self, name: str, today: str, who: str = "", why: str = "") -> tuple[Build, list[Event]]:
        """Move a build one step along the lifecycle; to operations archives the current one."""
        with self.changing():
            b = self.get(name)
            to = NEXT_STATUS.get(b.status)
            if b.status == "archived":
                raise BuildError(f"build {name} is archived: only development and candidate "
                                 "builds can be promoted; to bring back the previous operations "
                                 "build use `calops build rollback`")
            if to is None or to == "archived":
                raise BuildError(f"build {name} is {b.status}; only development and candidate "
                                 "builds can be promoted (use `calops build archive` to retire one)")
            if not b.fixed_context:
                raise BuildError(f"build {name} follows the 'latest' CRDS context; pin a fixed "
                                 "context (e.g. jwst_0002.pmap) before it can become a candidate")
            changed, events = [], []
            if to == "operations":
                current = self.operations()
                if current is not None:
                    old = replace(current, status="archived", archived_date=today)
                    changed.append(old)
                    events.append(_event(current.name, "archived", "operations", "archived", who,
                                         f"superseded by {name}"))
                b = replace(b, status=to, operations_date=today)
            else:  # leaving development: freeze what it runs
                b = lock_build(replace(b, status=to, candidate_date=today))
            changed.append(b)
            events.append(_event(name, "promoted", NEXT_INV[to], to, who, why))
            self._commit(changed, events)
        return b, events

    def archive(self, name: str, today: str, who: str = "", why: str = "") -> tuple[Build, list[Event]]:
        with self.changing():
            b = self.get(name)
            if b.status == "archived":
                raise BuildError(f"build {name} is archived already")
            if b.status == "development":
                raise BuildError(f"build {name} is a development build; only candidate and "
                                 "operations builds are archived")
            old = b.status
            b = replace(b, status="archived", archived_date=today)
            events = [_event(name, "archived", old, "archived", who, why)]
            self._commit([b], events)
        return b, events

    def rollback(self, today: str, to: str | None = None, who: str = "", why: str = "",
                 previous: Callable[[Build], str | None] | None = None
                 ) -> tuple[Build, Build, list[Event]]:
        """Restore the previous operations build: it goes from archived back to operations,
        and the current operations build goes back to candidate (its lock kept: it can be
        promoted again after a new successful candidate run). ``to`` names the build to
        restore (default: ``previous(current)``, else the archived build that was most
        recently operations). Returns (restored, demoted, events)."""
        with self.changing():
            current = self.operations()
            if current is None:
                raise BuildError("there is no operations build to roll back")
            target_name = to or (previous(current) if previous else None) or \
                self._last_operations(exclude=current.name)
            if not target_name:
                raise BuildError(f"no earlier operations build to roll back to from "
                                 f"{current.name}; name one with --to")
            target = self.get(target_name)
            if target.name == current.name:
                raise BuildError(f"build {target.name} is the operations build already")
            if target.status != "archived" or not target.operations_date:
                raise BuildError(f"build {target.name} is {target.status} and was never in "
                                 "operations; a rollback restores an archived build that was "
                                 "(promote a candidate instead)")
            demoted = replace(current, status="candidate", operations_date=None)
            restored = replace(target, status="operations", archived_date=None,
                               operations_date=today)
            why = why or f"rollback from {current.name}"
            events = [_event(current.name, "rolled_back", "operations", "candidate", who, why),
                      _event(target.name, "restored", "archived", "operations", who, why)]
            self._commit([demoted, restored], events)
        return restored, demoted, events

    def adopt(self, name: str, who: str = "", why: str = "") -> tuple[Build, list[Event]]:
        """Record a manifest as it is now (an operator's explicit, recorded acceptance of a
        hand edit); refused if it would leave more than one operations build."""
        if not why:
            raise BuildError("say why this manifest is adopted as it is: --why ...")
        with self.changing():
            b = self._parse(name) if (self.dir / f"{name}.toml").exists() else self.get(name)
            if b.status == "operations":
                others = [o.name for o in self.survey()[0]
                          if o.status == "operations" and o.name != name]
                if others:
                    raise BuildError(f"cannot adopt {name} as operations: {', '.join(others)} "
                                     "is the operations build (one at a time)")
            events = [_event(name, "adopted", None, b.status, who, why)]
            self._commit([b], events)
        return b, events

    def _last_operations(self, exclude: str) -> str | None:
        good, _ = self.survey()
        past = [b for b in good if b.status == "archived" and b.operations_date and b.name != exclude]
        past.sort(key=lambda b: (b.operations_date or "", _version_key(b.name)))
        return past[-1].name if past else None

    def _commit(self, changed: list[Build], events: list[Event]) -> None:
        """Write ``changed`` manifests. With a catalog: each new manifest waits as a pending
        file, the change is recorded (store copy, then catalog rows: the commit point), and
        only then are the manifests replaced; if recording fails nothing changed."""
        if self.catalog is None:
            for b in changed:
                self._write(b)
            return
        from catalogs import lifecycle

        staged: list[tuple[Build, Path]] = []
        try:
            for b in changed:
                if b.lock is not None:
                    _atomic_write(self.dir / f"{b.name}.lock.json", lock_text(b.lock))
                pending = self.dir / f".{b.name}.toml.pending"
                _atomic_write(pending, dump_manifest(b))
                staged.append((b, pending))
            lifecycle.record_change(self.catalog, self.store, changed, events)
        except OSError as exc:
            for _, p in staged:
                with contextlib.suppress(OSError):
                    p.unlink()
            raise BuildError(f"cannot record the change of build(s) "
                             f"{', '.join(b.name for b in changed)}: {_os_reason(exc)}; "
                             "nothing was changed") from exc
        except BaseException:
            for _, p in staged:
                with contextlib.suppress(OSError):
                    p.unlink()
            raise
        for b, pending in staged:
            try:
                os.replace(pending, self.dir / f"{b.name}.toml")
            except FileNotFoundError:  # a reader finished it for us (see _roll_forward)
                pass

    def _write(self, b: Build) -> None:
        """Atomic replace: a reader never sees a half-written manifest. The lock is written
        first, so a manifest never names a lock that is not there."""
        if b.lock is not None:
            _atomic_write(self.dir / f"{b.name}.lock.json", lock_text(b.lock))
        _atomic_write(self.dir / f"{b.name}.toml", dump_manifest(b))


MANIFEST_KEYS = ("name", "status", "pipeline_version", "sdp_version", "crds_context",
                 "candidate_date", "operations_date", "archived_date", "description", "lock",
                 "pins")


def manifest_hash(b: Build | Mapping[str, Any]) -> str:
    """The hash recorded for a manifest: sha256 of the canonical JSON of its content (every
    field and pin, and the lock's hash, so the lock file is covered too). Formatting and
    comments do not count; any change of meaning does. A mapping is a recorded
    ``manifest_json`` (``Build.as_dict``), whose manifest fields give the same hash."""
    d = b.manifest_dict() if isinstance(b, Build) else {k: b.get(k) for k in MANIFEST_KEYS}
    text = json.dumps({k: d.get(k) for k in MANIFEST_KEYS}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True, default=str)
    return hash_bytes(text.encode("utf-8"))


_SHIPPED_CACHE: dict[str, tuple[str, str] | None] = {}


def _shipped(name: str) -> tuple[str, str] | None:
    """(status, manifest hash) of the shipped manifest of that name, if there is one."""
    if name not in _SHIPPED_CACHE:
        path = SHIPPED / f"{name}.toml"
        out = None
        if path.exists():
            lock = SHIPPED / f"{name}.lock.json"
            try:
                b = parse_manifest(path.read_text(), path.name,
                                   lock.read_text() if lock.exists() else None)
                out = (b.status, manifest_hash(b))
            except BuildError:
                out = None
        _SHIPPED_CACHE[name] = out
    return _SHIPPED_CACHE[name]


def _os_reason(exc: OSError) -> str:
    if exc.errno is not None and exc.strerror:
        return f"[Errno {exc.errno}] {exc.strerror}"
    return " ".join(str(exc).split()) or type(exc).__name__


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
