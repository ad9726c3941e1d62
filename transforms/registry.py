"""Steps and stages, declared once, as data: several versions of one transform live side by side.

A **step** version is registered with everything the rest of calops needs to know about it:
its name and declared version, its parameter dataclass (defaults as in JWST), the CRDS reftypes
it reads, its ``S_*`` keyword, its entry points and which parameters only say *how* to compute
(``exec_only``: left out of recipe keys and locks, e.g. ``maximum_cores``). The entry points
are the pure ``apply(model, refs, params) -> DataModel`` (stage 3: a tuple of models in), an
optional in-place kernel ``inplace(arrays, refs, params, meta) -> meta updates`` that a chain
may drive on a buffer it owns, and ramp fitting's ``fit(ramp, refs, params) -> (rate,
rateints)``. The version must be bumped whenever the output can change for the same inputs (a
golden test pins each one).

A **stage** is declared once by its package (``transforms/<stage>/__init__.py`` calls
``register_stage``): its name, its subject (an exposure or an association), what it reads,
the products it makes, its step order (per instrument where JWST's differs), the exposure types
it calibrates and its pure chain function. Flows, runner, builds and CLI loop over this table.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


# Instruments with near-IR HgCdTe detectors (the steps written for them only).
NEAR_IR = ("NIRCAM", "NIRISS", "NIRSPEC", "FGS")


class UnknownStep(LookupError):
    """A step, version, stage or parameter that the registry does not have."""


# --- steps -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StepSpec:
    """One registered version of a step."""

    name: str
    version: str
    stage: str  # the stage whose package defines it (a step may also run in other stages)
    params: type  # a frozen dataclass; its defaults are JWST's
    reftypes: tuple[str, ...]
    apply: Callable[..., Any]
    keyword: str  # the S_* status keyword, spelled as stdatamodels' core schema spells it
    doc: str = ""
    optional_reftypes: tuple[str, ...] = ()  # used when the context has them, else not
    inplace: Callable[..., Any] | None = None
    fit: Callable[..., Any] | None = None
    exec_only: frozenset[str] = frozenset()
    skip_by_default: bool = False  # JWST runs it only when asked (a build's pin turns it on)
    instruments: frozenset[str] | None = None  # None: every instrument the stage sees
    exp_types: frozenset[str] | None = None  # None: every mode (EXP_TYPE) the stage sees
    # reftype -> the only arrays of that reference the step reads (a runner may leave the
    # others unread: a full-frame dark's ERR is 160 MB no step uses); absent: every array
    ref_arrays: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # member roles of an exposure stage's association (``Stage.members``) that the chain also
    # runs this step on, each member as the subject with the same other members, before any
    # later step takes them (spec2's imprint_subtract 1.1: the background nods, as jwst)
    also_members: tuple[str, ...] = ()

    def arrays_of(self, reftype: str) -> tuple[str, ...] | None:
        """The arrays of ``reftype`` the step reads; None: all of them."""
        return dict(self.ref_arrays).get(reftype)

    def make_params(self, overrides: Mapping[str, Any] | None = None) -> Any:
        """The step's parameters with overrides applied; unknown names are refused."""
        overrides = dict(overrides or {})
        known = {f.name for f in dataclasses.fields(self.params)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise UnknownStep(
                f"step {self.name} {self.version} has no parameter {', '.join(unknown)}; "
                f"it has: {', '.join(sorted(known)) or '(none)'}"
            )
        try:
            return self.params(**overrides)
        except (TypeError, ValueError) as exc:
            raise UnknownStep(f"step {self.name} {self.version}: {exc}") from None

    def science_params(self, params: Any) -> dict[str, Any]:
        """Every parameter that can change the output (defaults included): what a recipe key
        and a lock record. Execution-only parameters are left out."""
        values = dataclasses.asdict(params) if dataclasses.is_dataclass(params) else dict(params)
        return {k: v for k, v in values.items() if k not in self.exec_only}

    def applies_to(self, meta: Mapping[str, Any]) -> bool:
        """Whether this step runs at all for a product of this instrument and mode (a
        product that does not say its mode keeps every step)."""
        if self.instruments is not None and \
                str(meta.get("instrument.name", "")).upper() not in self.instruments:
            return False
        mode = str(meta.get("exposure.type") or "").upper()
        return self.exp_types is None or not mode or mode in self.exp_types


@dataclass(frozen=True)
class PlannedStep:
    """One step of a stage as it will run: its spec, parameters, skip flag and (once
    resolved) its reference models by reftype. The one plan-entry type every room uses."""

    spec: StepSpec
    params: Any
    skip: bool = False
    refs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name


_REGISTRY: dict[tuple[str, str], StepSpec] = {}


def register(
    name: str, version: str, stage: str, params: type, reftypes: tuple[str, ...] = (), *,
    keyword: str,
    optional_reftypes: tuple[str, ...] = (),
    inplace: Callable[..., Any] | None = None,
    fit: Callable[..., Any] | None = None,
    exec_only: Sequence[str] = (),
    skip_by_default: bool = False,
    instruments: Sequence[str] | None = None,
    exp_types: Sequence[str] | None = None,
    ref_arrays: Mapping[str, Sequence[str]] | None = None,
    also_members: Sequence[str] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``fn`` (the pure ``apply``) as version ``version`` of ``name``."""
    if not dataclasses.is_dataclass(params):
        raise TypeError(f"params of {name} must be a dataclass")
    if not (isinstance(keyword, str) and keyword.startswith("S_") and len(keyword) <= 8):
        raise TypeError(f"step {name}: keyword must be its S_* FITS keyword, got {keyword!r}")
    fields = {f.name for f in dataclasses.fields(params)}
    if ref_arrays and set(ref_arrays) - set(reftypes) - set(optional_reftypes):
        raise TypeError(f"step {name}: ref_arrays names reftypes it does not read "
                        f"{sorted(set(ref_arrays) - set(reftypes) - set(optional_reftypes))}")
    if set(exec_only) - fields:
        raise TypeError(f"step {name}: exec_only names unknown parameters "
                        f"{sorted(set(exec_only) - fields)}")

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        key = (name, version)
        if key in _REGISTRY and _REGISTRY[key].apply is not fn:
            raise ValueError(f"step {name} version {version} is registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        _REGISTRY[key] = StepSpec(
            name, version, stage, params, tuple(reftypes), fn, keyword, doc,
            tuple(optional_reftypes), inplace, fit, frozenset(exec_only), skip_by_default,
            None if instruments is None else frozenset(i.upper() for i in instruments),
            None if exp_types is None else frozenset(t.upper() for t in exp_types),
            tuple(sorted((k, tuple(v)) for k, v in (ref_arrays or {}).items())),
            tuple(also_members))
        _STEPS.clear()
        return fn

    return deco


_STEPS: dict[str, list[str]] = {}  # cache of steps(), emptied by every registration


def steps() -> dict[str, list[str]]:
    """Every registered step name with its versions, oldest first."""
    _load_all()
    if not _STEPS or sum(map(len, _STEPS.values())) != len(_REGISTRY):
        _STEPS.clear()
        for name, version in sorted(_REGISTRY, key=lambda k: (k[0], _vkey(k[1]))):
            _STEPS.setdefault(name, []).append(version)
    return {k: list(v) for k, v in _STEPS.items()}


def get(name: str, version: str | None = None) -> StepSpec:
    """A step spec; the newest version when none is named. Unknowns list what exists."""
    if version is not None and (name, version) in _REGISTRY:
        return _REGISTRY[(name, version)]
    _load_all()
    steps()
    versions = _STEPS.get(name)
    if not versions:
        raise UnknownStep(f"unknown step {name!r}; known steps: {', '.join(sorted(_STEPS))}")
    if version is None:
        version = versions[-1]
    if (name, version) not in _REGISTRY:
        raise UnknownStep(
            f"step {name!r} has no version {version!r}; it has: {', '.join(versions)}"
        )
    return _REGISTRY[(name, version)]


def keywords() -> dict[str, str]:
    """Step name -> its S_* keyword (every version of a step shares one keyword)."""
    _load_all()
    return {name: spec.keyword for (name, _), spec in sorted(_REGISTRY.items())}


def _vkey(v: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in v.split("."))


# --- stages ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline, declared by its package.

    ``reads`` names the stored products the stage starts from, for its subject:
    ``"exposure:pixels"`` / ``"exposure:pointing"`` (what ingest stored) or
    ``"<stage>:<output>"`` (an earlier stage's product; for an association stage, of every
    member). ``steps`` is the step order; ``orders`` overrides it per instrument where JWST's
    pipeline runs another order (MIRI's detector1). ``exp_types`` are fnmatch patterns of the
    EXP_TYPE values the stage calibrates. ``run(data, plan, on_step) -> {output: DataModel}``
    is the pure chain; ``associate(metas) -> [JWST association dicts]`` forms the subjects of
    an association stage from its members' metadata.
    """

    name: str
    subject: str  # "exposure" | "association"
    reads: tuple[str, ...]
    outputs: tuple[str, ...]
    steps: tuple[str, ...]
    run: Callable[..., Mapping[str, Any]]
    exp_types: tuple[str, ...] = ("*",)
    orders: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    associate: Callable[..., list[dict]] | None = None
    doc: str = ""
    # EXP_TYPE pattern -> the products this stage makes for such exposures, where they differ
    # from ``outputs`` (an IFU exposure's spec2 makes an s3d cube, a slit's an s2d)
    mode_outputs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # association stages: why an exposure cannot be a member (None: it can); such a member is
    # left out with that reason recorded, and the others still combine
    excludes: Callable[[Mapping[str, Any]], str | None] | None = None
    # exposure stages: the level-2 association rule ``members(science, candidates) -> {role:
    # [indices of candidates]}`` (candidates: every current exposure's metadata with its
    # ``filename``). The stage then also reads, for each member, what it reads for the subject
    # (input roles ``<role>:<exposure>`` and ``<role>:<exposure>:<what>``), so its recipe
    # depends on the members' products, and ``run`` is called with ``members={role:
    # [DataModel]}`` (spec2: the nod backgrounds and leakcal imprints)
    members: Callable[..., Mapping[str, Sequence[int]]] | None = None
    # the member types (jwst's ``exptype``) the stage reads from an association file, as
    # jwst's pipeline does: ``science`` always; for an exposure stage with ``members``, the
    # other types are its member roles (spec2: the ``background`` nods, the ``imprint``
    # leakcals); for an association stage, members it combines besides the science (spec3:
    # ``background`` for master_background). Members of other types are not read.
    asn_exptypes: tuple[str, ...] = ("science",)

    def __post_init__(self) -> None:
        if "science" not in self.asn_exptypes:
            raise ValueError(f"stage {self.name}: asn_exptypes must include science")
        if self.subject not in ("exposure", "association"):
            raise ValueError(f"stage {self.name}: subject must be exposure or association")
        if self.subject == "association" and self.associate is None:
            raise ValueError(f"stage {self.name}: an association stage needs an associate rule")
        if self.subject == "association" and self.members is not None:
            raise ValueError(f"stage {self.name}: members are a rule of exposure stages")

    @property
    def all_steps(self) -> tuple[str, ...]:
        """Every step name any of the stage's orders runs (first-seen order)."""
        seen: dict[str, None] = dict.fromkeys(self.steps)
        for order in self.orders.values():
            seen.update(dict.fromkeys(order))
        return tuple(seen)

    def order_for(self, meta: Mapping[str, Any] | None) -> tuple[str, ...]:
        """The step order for a product of this instrument."""
        inst = str((meta or {}).get("instrument.name", "")).upper()
        return self.orders.get(inst, self.steps)

    def exclusion(self, meta: Mapping[str, Any]) -> str | None:
        """Why an exposure with this metadata is left out of this stage's associations."""
        return self.excludes(meta) if self.excludes is not None else None

    def outputs_for(self, meta: Mapping[str, Any] | None) -> tuple[str, ...]:
        """The products this stage makes for a subject with this metadata."""
        exp_type = str((meta or {}).get("exposure.type", "")).upper()
        for pattern, outs in self.mode_outputs.items():
            if fnmatch.fnmatchcase(exp_type, pattern):
                return tuple(outs)
        return self.outputs

    def calibrates(self, meta: Mapping[str, Any]) -> bool:
        """Whether an exposure of this EXP_TYPE goes through this stage."""
        exp_type = str(meta.get("exposure.type", "")).upper()
        return any(fnmatch.fnmatchcase(exp_type, p) for p in self.exp_types)

    def member_exposures(self, subject: str, metas: Mapping[str, Mapping[str, Any]]
                         ) -> dict[str, list[str]]:
        """The ``members`` rule applied to ``subject`` among ``metas`` (exposure -> metadata,
        every current exposure): role -> member exposures (sorted)."""
        if self.members is None or subject not in metas:
            return {}
        names = sorted(metas)
        cands = [{**metas[n], "filename": n} for n in names]
        found = self.members(cands[names.index(subject)], cands)
        return {role: sorted(names[i] for i in idx) for role, idx in found.items() if idx}

    def member_reads(self, role: str, exposure: str) -> list[tuple[str, str]]:
        """(input role, source) of what the stage reads for one member: ``<role>:<exposure>``
        for the first read, ``<role>:<exposure>:<what>`` for the others (pointing)."""
        return [(f"{role}:{exposure}" if i == 0 else f"{role}:{exposure}:{src.split(':', 1)[1]}",
                 src) for i, src in enumerate(self.reads)]

    @property
    def upstream(self) -> tuple[str, ...]:
        """Stages whose products this one reads."""
        return tuple(r.split(":", 1)[0] for r in self.reads if not r.startswith("exposure:"))


_STAGES: dict[str, Stage] = {}


_ORDERED: dict[str, Stage] = {}  # cache of stages(), emptied by every declaration


def register_stage(stage: Stage) -> Stage:
    """Declare a stage (called once by the stage's package)."""
    old = _STAGES.get(stage.name)
    if old is not None and old.run is not stage.run:
        raise ValueError(f"stage {stage.name} is declared twice")
    _STAGES[stage.name] = stage
    _ORDERED.clear()
    return stage


def stages() -> dict[str, Stage]:
    """Every declared stage, upstream before downstream (the order a run goes in)."""
    _load_all()
    if len(_ORDERED) == len(_STAGES):
        return dict(_ORDERED)
    done: dict[str, Stage] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in path:
            raise ValueError(f"stages read each other in a cycle: {' -> '.join(path + (name,))}")
        st = _STAGES[name]
        for up in st.upstream:
            if up not in _STAGES:
                raise ValueError(f"stage {name} reads from unknown stage {up}")
            visit(up, path + (name,))
        done[name] = st

    for name in sorted(_STAGES, key=_stage_rank):
        visit(name, ())
    _ORDERED.clear()
    _ORDERED.update(done)
    return done


def _stage_rank(name: str) -> tuple[int, str]:
    return (1 if name.endswith("3") else 0, name)


def stage(name: str) -> Stage:
    """A declared stage; unknowns list what exists."""
    if name in _ORDERED:
        return _ORDERED[name]
    table = stages()
    if name not in table:
        raise UnknownStep(f"unknown stage {name!r}; stages: {', '.join(table)}")
    return table[name]


def stage_names() -> tuple[str, ...]:
    return tuple(stages())


# --- loading -----------------------------------------------------------------------------------

_LOADED = False


def _load_all() -> None:
    """Import every stage package under transforms/ so its registrations run."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True  # set first: a stage package that asks the registry while loading is fine
    import transforms

    for mod in pkgutil.iter_modules(transforms.__path__):
        if not mod.ispkg or mod.name.startswith("_") or mod.name in _NOT_STAGES:
            continue
        pkg = importlib.import_module(f"transforms.{mod.name}")
        if getattr(pkg, "STAGE", None) is None:
            _LOADED = False
            raise ImportError(f"transforms/{mod.name} is a package but declares no STAGE; "
                              f"stage packages declare one, others are listed in _NOT_STAGES")


# Packages of transforms/ that are not stages (shared science, instruments, the simulator).
_NOT_STAGES = frozenset({"sim", "instruments", "common"})
