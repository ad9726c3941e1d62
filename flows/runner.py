"""The step runner: one stage for one subject (an exposure or an association) under one build.

Recipe keys are computed before any work: each step's key hashes its name, version, every
parameter, its input identity (the previous step's key, or a stored product's id) and the
content hashes of the reference files CRDS picked from the build's context. A stage's outputs
are addressed by ``output_key(last_key, name)``. If every output key has a realisation whose
stored object re-verifies, the stage is a hit and nothing runs. Otherwise the inputs are loaded
(verified), the chain runs in memory, outputs are stored (verified on write) and then, in one
catalog batch, the recipes, inputs, references, products, realisations and run steps are
recorded. Objects are written before rows, so no row ever points at a missing object.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Mapping, Sequence
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catalogs import builds as buildlib
from catalogs import crds_resolve
from catalogs.recipes import (  # noqa: F401  (re-exported: the runner's vocabulary)
    NewProduct,
    Rows,
    StageOutcome,
    StageRecipe,
    StepRecipe,
    output_key,
    stage_rows,
)
from store import fits
from store.errors import CalopsError
from store.identity import hash_file, recipe_keyer
from transforms import registry
from transforms.model import DataModel
from transforms.registry import PlannedStep

if TYPE_CHECKING:
    from flows.workspace import Workspace


class RunError(CalopsError):
    """A stage that cannot run: missing inputs, an archived build, a failed step."""


# --- references ------------------------------------------------------------------------------

@lru_cache(maxsize=512)
def _ref_hash(path: str, size: int, mtime_ns: int) -> str:
    return hash_file(path)


def reference_identity(path: str) -> tuple[str, str]:
    """(file name, content hash) of a reference file; CRDS never reuses a name, so memoise
    (on size and modification time: a file replaced in place is hashed again)."""
    st = os.stat(path)
    return os.path.basename(path), _ref_hash(str(path), st.st_size, st.st_mtime_ns)


_REF_LOCK = threading.Lock()
# A reference model stays shared while anything holds it (concurrent stage runs of one
# process read one copy); small ones (subarray references) are also kept for later runs.
# Full-frame ones are not: a long-lived process must not hold gigabytes of references
# (a full-frame NIRCam dark alone is 350 MB), and one stage run drops each reference after
# the last step that reads it (``PlanRefs``), which is what keeps its peak memory low.
_LIVE: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_KEEP: OrderedDict = OrderedDict()  # (path, mtime) -> model, small references only
KEEP_MAX_BYTES = 4 * 2**20  # per reference
KEEP_MAX_COUNT = 64


def _nbytes(model: DataModel) -> int:
    return sum(getattr(a, "nbytes", 0) for a in model.arrays.values())


def load_reference(path: str, arrays: tuple[str, ...] | None = None) -> DataModel:
    """The reference file ``path`` as a model (read once while it is in use; see ``_LIVE``);
    ``arrays``: only those arrays (``StepSpec.ref_arrays``)."""
    key = (str(path), Path(path).stat().st_mtime_ns, arrays)
    with _REF_LOCK:  # asdf.open (distortion files) is not thread-safe: one reader at a time
        model = _LIVE.get(key)
        if model is None:
            model = fits.read_reference(path, arrays)
            _LIVE[key] = model
        if key in _KEEP:
            _KEEP.move_to_end(key)
        elif _nbytes(model) <= KEEP_MAX_BYTES:
            _KEEP[key] = model
            while len(_KEEP) > KEEP_MAX_COUNT:
                _KEEP.popitem(last=False)
        return model


class PlanRefs:
    """The references of one stage run, read when a step first asks for one and dropped
    once the last step that reads it has run (``done(step)``, called from the chain's
    ``on_step``). Which file each step reads is fixed by the recipe, so the models the
    steps see are the ones an eager load would give; only when they are in memory changes."""

    def __init__(self, steps: Sequence[tuple[PlannedStep, Mapping[str, str]]]):
        self._steps = list(steps)
        self._uses: dict[tuple, int] = {}
        for planned, paths in self._steps:
            if not planned.skip:
                for key in _keys(planned, paths):
                    self._uses[key] = self._uses.get(key, 0) + 1
        self._memo: dict[tuple, DataModel] = {}
        self._done: set[int] = set()
        self._lock = threading.Lock()

    def plan(self) -> list[PlannedStep]:
        return [dataclasses.replace(planned, refs=_StepRefs(self, paths, planned.spec))
                for planned, paths in self._steps]

    def get(self, path: str, arrays: tuple[str, ...] | None = None) -> DataModel:
        with self._lock:
            model = self._memo.get((path, arrays))
            if model is None:
                model = self._memo[(path, arrays)] = load_reference(path, arrays)
            return model

    def done(self, step: str) -> None:
        """``step`` has run: forget the references no later step reads."""
        with self._lock:
            for i, (planned, paths) in enumerate(self._steps):
                if i in self._done or planned.skip or planned.spec.name != step:
                    continue
                self._done.add(i)
                for key in _keys(planned, paths):
                    self._uses[key] -= 1
                    if self._uses[key] <= 0:
                        self._memo.pop(key, None)
                break

    def loaded(self) -> list[str]:
        """Paths currently held (tests)."""
        return sorted({p for p, _ in self._memo})


def _keys(planned: PlannedStep, paths: Mapping[str, str]) -> set[tuple]:
    return {(p, planned.spec.arrays_of(rt)) for rt, p in paths.items()}


def plan_refs(recipe: StageRecipe) -> PlanRefs:
    """The lazily read references of a recipe's steps."""
    return PlanRefs([(s.planned, s.ref_paths) for s in recipe.steps])


class _StepRefs(Mapping):
    """One step's reftype -> model mapping over a ``PlanRefs`` (models read on access)."""

    def __init__(self, owner: PlanRefs, paths: Mapping[str, str], spec: registry.StepSpec):
        self._owner, self._paths, self._spec = owner, dict(paths), spec

    def __getitem__(self, reftype: str) -> DataModel:
        return self._owner.get(self._paths[reftype], self._spec.arrays_of(reftype))

    def __iter__(self):
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def __contains__(self, reftype: object) -> bool:
        return reftype in self._paths


# --- recipes ---------------------------------------------------------------------------------

def plan_stage(
    stage: str,
    subject: str,
    build: buildlib.Build,
    context: str,
    crds_path: str,
    meta: Mapping[str, Any],
    inputs: Mapping[str, str],
    memo: dict | None = None,
) -> StageRecipe:
    """Every step's recipe key for a stage, computed before any work. A planner that plans
    many subjects passes one ``memo`` dict: the build's steps per instrument, their science
    parameters and encoded keyers are then worked out once."""
    memo = {} if memo is None else memo
    # plans differ by instrument (step orders) and by mode (steps declaring exp_types, as
    # cube_build; modes a build does not calibrate): memoised per both
    inst = "/".join(str(meta.get(k) or "").upper() for k in ("instrument.name", "exposure.type"))
    if ("plan", stage, inst) not in memo:
        memo[("plan", stage, inst)] = buildlib.plan(build, stage, meta)
    planned = memo[("plan", stage, inst)]
    paths = crds_resolve.resolve_with_optional(
        meta, sorted({r for p in planned if not p.skip for r in p.spec.reftypes}),
        sorted({r for p in planned if not p.skip for r in p.spec.optional_reftypes}),
        context, crds_path)
    paths = {r: p for r, p in paths.items() if p and p != crds_resolve.NOT_APPLICABLE}
    skeleton = _skeleton(memo, stage, inst, planned, paths)
    steps: list[StepRecipe] = []
    prev_key = None
    for p, params, refs_for, refs, key_of in skeleton:
        sr = StepRecipe(name=p.spec.name, version=p.spec.version, params=params,
                        inputs=dict(inputs) if prev_key is None else {"input": prev_key},
                        refs=refs, ref_paths=refs_for, skip=p.skip, planned=p)
        if key_of is not None:
            sr.key = prev_key = key_of(sr.inputs)
        steps.append(sr)
    run_keys = [s.key for s in steps if not s.skip]
    if not run_keys:
        raise RunError(f"build {build.name} skips every step of {stage}; nothing to run")
    return StageRecipe(stage, subject, build.name, context, steps, dict(inputs),
                       {o: output_key(run_keys[-1], o)
                        for o in registry.stage(stage).outputs_for(meta)})


def _skeleton(memo: dict, stage: str, inst: str, planned: list[PlannedStep],
              paths: Mapping[str, str]) -> list[tuple]:
    """Per step: (planned step, science params, reference paths, reference identities, key as
    a function of the inputs or None if skipped). Subjects that share their references share
    the skeleton: only their input ids differ."""
    memo_key = ("skeleton", stage, inst, tuple(sorted(paths.items())))
    if memo_key not in memo:
        out = []
        for p in planned:
            refs_for = {r: paths[r] for r in p.spec.reftypes + p.spec.optional_reftypes
                        if r in paths}
            refs = {r: reference_identity(path) for r, path in refs_for.items()}
            params = p.spec.science_params(p.params)
            key_of = None if p.skip else recipe_keyer(p.spec.name, p.spec.version,
                                                      params).bound(refs)
            out.append((p, params, refs_for, refs, key_of))
        memo[memo_key] = out
    return memo[memo_key]


# --- peak memory -----------------------------------------------------------------------------

class PeakRSS:
    """Samples the process's resident set size while a stage runs (Linux /proc)."""

    def __init__(self, interval: float = 0.01):
        self.interval, self.peak = interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss() -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * 4096
        except OSError:
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakRSS":
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


# --- running ---------------------------------------------------------------------------------

Chain = Callable[[Any, Sequence[PlannedStep], Callable[[str, Callable[[], DataModel]], None] | None],
                 Mapping[str, Any]]


def find_hit(ws: Workspace, recipe: StageRecipe, verify: bool = True) -> tuple[dict[str, str], str, list[str]]:
    """Product ids for every output if all are realised and intact, else ({}, why not, the
    corrupt objects found on the way)."""
    found: dict[str, str] = {}
    corrupt: list[str] = []
    for name, key in recipe.output_keys.items():
        pids = ws.catalog.realisations(key)
        if not pids:
            return {}, "no realisation of this recipe", corrupt
        good = [p for p in pids if ws.store.has(p)]
        if not good:
            return {}, f"stored object of {name} is missing", corrupt
        if verify:
            problems = {p: ws.store.check(p) for p in good}
            corrupt += [p for p, why in problems.items() if why]
            good = [p for p, why in problems.items() if not why]
            if not good:
                return {}, f"stored object of {name} is corrupt", corrupt
        found[name] = good[0]
    return found, "all outputs realised", corrupt


def run_stage(
    ws: Workspace,
    recipe: StageRecipe,
    load_inputs: Callable[[], Any],
    chain: Chain,
    run_id: str,
    save_intermediates: bool = False,
    force: bool = False,
    sink: list[Rows] | None = None,
) -> StageOutcome:
    """Run (or reuse) one stage for one subject and record what happened: in the catalog at
    once, or, given a ``sink``, as rows appended to it (a flow writes a layer's rows in one
    batch). Objects are stored before their rows exist either way."""
    out = StageOutcome(recipe.stage, recipe.subject, recipe.build)
    t0 = time.perf_counter()
    if not force:
        found, why, corrupt = find_hit(ws, recipe)
        if found:
            out.outputs, out.hit, out.reason = found, True, "hit: " + why
            out.wall_s = time.perf_counter() - t0
            _record(ws, sink, run_id, stage_rows(run_id, recipe, out))
            return out
        out.reason = "miss: " + why
        for pid in corrupt:  # keep the bad bytes aside so the recomputed object can be stored
            ws.store.quarantine(pid)
    else:
        out.reason = "miss: forced"

    step_times: dict[str, float] = {}
    intermediates: dict[str, DataModel] = {}
    last = [time.perf_counter()]

    def on_step(name: str, snapshot: Callable[[], DataModel]) -> None:
        now = time.perf_counter()
        step_times[name] = now - last[0]
        last[0] = now
        if save_intermediates:
            model = snapshot()
            if model is not None:  # a step that changes a set of exposures has no one product
                intermediates[name] = model

    try:
        with PeakRSS() as mem:
            data = load_inputs()
            last[0] = time.perf_counter()
            refs = plan_refs(recipe)
            plan = refs.plan()

            def on_step_refs(name: str, snapshot: Callable[[], DataModel]) -> None:
                on_step(name, snapshot)
                refs.done(name)

            products = chain(data, plan, on_step_refs)
            del plan, refs
            new_products: dict[str, NewProduct] = {}
            for name, key in recipe.output_keys.items():
                model = products.get(name)
                if model is not None:
                    new_products[name] = NewProduct(ws.store.put(model), model.kind,
                                                    model.meta, key)
            keys = {s.name: s.key for s in recipe.steps}
            for step, model in intermediates.items():
                new_products[f"intermediate:{step}"] = NewProduct(
                    ws.store.put(model), model.kind, model.meta, keys[step])
        out.peak_mem_bytes = mem.peak
    except CalopsError as exc:
        return _failed(ws, sink, recipe, out, run_id, str(exc), t0)
    except Exception as exc:  # a failing exposure fails its own stage, recorded with its error
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return _failed(ws, sink, recipe, out, run_id, detail, t0)
    out.outputs = {n: p.product_id for n, p in new_products.items()
                   if not n.startswith("intermediate:")}
    out.wall_s = time.perf_counter() - t0
    _record(ws, sink, run_id, stage_rows(run_id, recipe, out, new_products, step_times))
    return out


def _failed(ws: Workspace, sink: list[Rows] | None, recipe: StageRecipe, out: StageOutcome,
            run_id: str, error: str, t0: float) -> StageOutcome:
    out.status, out.error = "failed", error.splitlines()[-1] if error else "failed"
    out.wall_s = time.perf_counter() - t0
    _record(ws, sink, run_id, stage_rows(run_id, recipe, out))
    return out


def _record(ws: Workspace, sink: list[Rows] | None, run_id: str, rows: Rows) -> None:
    if sink is None:
        ws.catalog.record(rows, run_id)
    else:
        sink.append(rows)
