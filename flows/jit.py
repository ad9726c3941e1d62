"""numba's JIT seen from the CLI: where compiled kernels are cached, compiling them ahead
(``calops warmup``), and saying so when a command has to compile them.

calops' kernels are numba functions with ``cache=True``: the first run on a fresh install
compiles them (tens of seconds), every later process loads them from the cache (milliseconds).

Cache location, first found wins:
1. ``$NUMBA_CACHE_DIR`` when set (numba's own variable);
2. ``[numba] cache_dir`` of the workspace's ``calops.toml`` (relative to that file), e.g.
   ``cache_dir = "numba-cache"`` or a folder every worker machine mounts;
3. numba's default: a ``__pycache__`` folder beside each module (or a per-user folder when the
   install is read-only).
``configure(argv)`` runs first thing in ``calops`` (before the command modules import numba)
and exports the folder as ``NUMBA_CACHE_DIR``, so process-pool workers started by the command
share it; give Dask workers on other machines the same variable. A cache entry is valid for
the same calops source files, numba version and CPU model; a container image built with
``calops warmup`` should set ``NUMBA_CPU_NAME=generic`` at build and at run time if it runs on
other CPUs than the one it was built on.

``announce()`` prints "compiling kernels, first run only" once (stderr) when the kernels a
science command needs are not in the cache, or when numba starts compiling in this process.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

ENV = "NUMBA_CACHE_DIR"
MESSAGE = "compiling kernels, first run only (`calops warmup` does it ahead of time)"


# ------------------------------------------------------------------------------------------------
# cache location
# ------------------------------------------------------------------------------------------------

def _home_from_argv(argv: Sequence[str]) -> str | None:
    """The value of ``--home PATH`` / ``--home=PATH`` anywhere in argv (the parser accepts it
    before and after the command name)."""
    for k, a in enumerate(argv):
        if a == "--home" and k + 1 < len(argv):
            return argv[k + 1]
        if a.startswith("--home="):
            return a.split("=", 1)[1]
    return None


def configured_cache_dir(home: str | os.PathLike | None) -> Path | None:
    """``[numba] cache_dir`` of the workspace at ``home`` (resolved against the config file's
    folder), or None when there is no workspace, no such setting or the file does not parse
    (the command itself reports a broken config)."""
    from flows.workspace import CONFIG_NAME, home_path

    cfg = home_path(home) / CONFIG_NAME
    try:
        config = tomllib.loads(cfg.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    value = config.get("numba", {}).get("cache_dir")
    if not value:
        return None
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else (cfg.parent / path).absolute()


def configure(argv: Sequence[str] | None = None, home: str | os.PathLike | None = None
              ) -> str | None:
    """Choose the numba cache folder (see the module doc) and export it as $NUMBA_CACHE_DIR;
    returns it, or None for numba's default. Call before numba is imported: kernels imported
    earlier keep the folder they were given."""
    if os.environ.get(ENV):
        return os.environ[ENV]
    if home is None and argv is not None:
        home = _home_from_argv(argv)
    path = configured_cache_dir(home)
    if path is None:
        return None
    os.environ[ENV] = str(path)
    if "numba" in sys.modules:  # late: at least kernels defined from now on use it
        import numba

        numba.config.CACHE_DIR = str(path)
    return str(path)


# ------------------------------------------------------------------------------------------------
# "compiling kernels" notice
# ------------------------------------------------------------------------------------------------

# Kernels every science run calls: if these have no cache entry, the run will compile.
SENTINELS = (
    ("transforms.detector1._kernels_ramp", "_fit_rows"),
    ("transforms.detector1._kernels_jump", "_detect_rows"),
    ("transforms.detector1.dq_init", "_convert_rows"),
)

_lock = threading.Lock()
_said = False
_listener: Any = None
_stream: TextIO | None = None  # where the notice goes (None: sys.stderr at the time)


def _say() -> None:
    global _said
    with _lock:
        if _said:
            return
        _said = True
    print(f"calops: {MESSAGE}", file=_stream or sys.stderr, flush=True)


def _has_cache_entry(dispatcher: Any) -> bool | None:
    """Whether ``dispatcher``'s cache index lists a compiled version for the current source
    (None when that cannot be told: no caching, another numba)."""
    try:
        cache_file = dispatcher._cache._cache_file
        return bool(cache_file._load_index())
    except Exception:
        return None


def cold_kernels(sentinels: Sequence[tuple[str, str]] = SENTINELS) -> list[str]:
    """The sentinel kernels with nothing in the numba cache (imports their modules)."""
    import importlib

    cold = []
    for module, name in sentinels:
        try:
            disp = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
        if _has_cache_entry(disp) is False:
            cold.append(f"{module}.{name}")
    return cold


def announce(stream: TextIO | None = None) -> bool:
    """Print the notice now when the kernels are not cached, and in any case the first time
    numba compiles something in this process; at most once per process. Returns whether it
    was printed now."""
    global _listener, _stream
    from numba.core import event

    _stream = stream
    if _listener is None:
        class _Once(event.Listener):
            def on_start(self, ev: Any) -> None:
                _say()

            def on_end(self, ev: Any) -> None:
                pass

        _listener = _Once()
        event.register("numba:compile", _listener)
    if cold_kernels():
        _say()
        return True
    return False


def reset_notice() -> None:
    """Forget that the notice was printed, and where it went (tests)."""
    global _said, _stream
    _said = False
    _stream = None


# ------------------------------------------------------------------------------------------------
# warm-up: compile every kernel once
# ------------------------------------------------------------------------------------------------

class Compiles:
    """Count numba compilations while active (``numba:compile`` events, nested ones too)."""

    def __init__(self) -> None:
        self.count = 0
        self.names: list[str] = []

    def __enter__(self) -> "Compiles":
        from numba.core import event

        outer = self

        class _Count(event.Listener):
            def on_start(self, ev: Any) -> None:
                pass

            def on_end(self, ev: Any) -> None:
                outer.count += 1
                f = ev.data["dispatcher"].py_func
                outer.names.append(f"{f.__module__}.{f.__qualname__}")

        self._listener = _Count()
        event.register("numba:compile", self._listener)
        return self

    def __exit__(self, *exc: Any) -> None:
        from numba.core import event

        event.unregister("numba:compile", self._listener)


def _nircam_exposure(size: int, ngroups: int, nints: int, *, nframes: int = 1, groupgap: int = 0,
                     zeroframe: bool = False, seed: int = 1) -> tuple[Any, dict[str, Any]]:
    """A small simulated-looking NIRCam window exposure (numpy only) and its references;
    ``nframes``/``groupgap`` as the readout pattern averages and drops frames."""
    import numpy as np

    from transforms.model import DataModel
    from transforms.sim import readout
    from transforms.sim import references as R

    ua = "2022-01-01T00:00:00"
    sub = readout.custom_subarray(1, 1, size, size, 1, f"SUB{size}")
    tframe = readout.frame_time("NIRCAM", sub)  # any number of groups here
    tgroup = (nframes + groupgap) * tframe
    props = R.detector_properties("NRCA1", seed, sub)
    refs = {
        "mask": R.mask_ref(props, ua), "saturation": R.saturation_ref(props, ua),
        "superbias": R.superbias_ref(props, ua), "linearity": R.linearity_ref(props, ua),
        "dark": R.dark_ref(props, ua, tframe, ngroups * (nframes + groupgap) + 5, "NRC_IMAGE"),
        "gain": R.gain_ref(props, ua), "readnoise": R.readnoise_ref(props, ua),
        "flat": R.flat_ref(props, ua, "F200W", "CLEAR"), "ipc": R.ipc_ref(props, ua),
    }
    rng = np.random.default_rng(seed)
    rate = rng.gamma(2.0, 50.0, (size, size))
    rate.flat[:: max(size // 3, 1)] = 2.0e4  # a few pixels saturate part-way
    g = np.arange(1, ngroups + 1)[None, :, None, None]
    data = props.superbias[None, None] + rate[None, None] * g
    data = data + rng.normal(0.0, 10.0, (nints, ngroups, size, size))
    data[:, ngroups // 2:, size // 2, size // 2] += 3000.0  # a cosmic ray
    arrays = {"data": np.clip(np.rint(data), 0, 65535).astype(np.uint16)}
    if zeroframe:
        arrays["zeroframe"] = arrays["data"][:, 0].astype(np.uint16)
    meta = {"instrument.name": "NIRCAM", "instrument.detector": "NRCA1",
            "exposure.type": "NRC_IMAGE",
            "exposure.readpatt": {1: "RAPID", 2: "BRIGHT2"}.get(nframes, "MEDIUM8"),
            "exposure.nframes": nframes, "exposure.groupgap": groupgap,
            "exposure.ngroups": ngroups, "exposure.nints": nints,
            "exposure.frame_time": tframe, "exposure.group_time": tgroup,
            "exposure.frame_divisor": nframes, "exposure.noutputs": sub.noutputs,
            "subarray.name": sub.name, "subarray.xstart": sub.xstart,
            "subarray.ystart": sub.ystart, "subarray.xsize": sub.xsize,
            "subarray.ysize": sub.ysize, "subarray.fastaxis": -1, "subarray.slowaxis": 2}
    return DataModel("uncal", arrays, meta), refs


# Parameters that switch on code the defaults leave out (compiled only when used).
_ALL_ON = {"jump": {"after_jump_flag_dn1": 10.0, "after_jump_flag_time1": 30.0,
                    "after_jump_flag_dn2": 1000.0, "after_jump_flag_time2": 60.0,
                    "expand_large_events": True}}


def _detector1_plans(refs: dict[str, Any], meta: dict[str, Any]) -> tuple[list[Any], list[str]]:
    """The default plan (JWST's skips and defaults), then plans that between them run every
    registered version of every detector1 step that applies to ``meta``, none skipped and the
    optional code paths on; steps needing references not in ``refs`` are skipped and named."""
    from transforms import registry
    from transforms.detector1 import default_plan
    from transforms.registry import PlannedStep

    versions = registry.steps()
    order = [n for n in registry.stage("detector1").order_for(meta) if n in versions]
    missing: list[str] = []
    plans = [default_plan(refs, meta=meta)]
    for k in range(max(len(versions[n]) for n in order)):
        plan = []
        for name in order:
            spec = registry.get(name, versions[name][min(k, len(versions[name]) - 1)])
            if not spec.applies_to(meta):
                continue
            lack = [r for r in spec.reftypes if r not in refs]
            if lack and k == 0:
                missing.append(f"{name} (needs {', '.join(lack)})")
            step_refs = {r: refs[r] for r in spec.reftypes + spec.optional_reftypes if r in refs}
            plan.append(PlannedStep(spec, spec.make_params(_ALL_ON.get(name)), bool(lack),
                                    step_refs))
        plans.append(plan)
    return plans, missing


def warm_detector1() -> list[str]:
    """Every detector1 step (all versions; skipped-by-default steps and optional paths too) on
    small exposures: several integrations (large enough for dq_init's kernel), a zero frame, a
    grouped readout (frames averaged), a ramp longer than the fast paths take, and full-frame
    reference pixels."""
    import numpy as np

    from transforms.detector1 import refpix, run

    notes: list[str] = []
    for size, ngroups, nints, nframes, zf in ((64, 8, 2, 1, False), (16, 3, 1, 1, True),
                                              (16, 5, 1, 2, False), (8, 30, 1, 1, False)):
        uncal, refs = _nircam_exposure(size, ngroups, nints, nframes=nframes, zeroframe=zf)
        plans, missing = _detector1_plans(refs, dict(uncal.meta))
        notes += [m for m in missing if m not in notes]
        for plan in plans:
            run(uncal, plan)
    # full frame: refpix's amplifier/side-column path (only 2048x2048 takes it)
    full = 2048
    arrays = {"data": np.random.default_rng(0).normal(1.0e4, 10.0, (1, 2, full, full)
                                                       ).astype(np.float32),
              "groupdq": np.zeros((1, 2, full, full), np.uint8),
              "pixeldq": np.zeros((full, full), np.uint32)}
    refpix.apply_inplace(arrays, {}, refpix.RefPixParams(), {"subarray.fastaxis": -1})
    return [f"not warmed: {m}" for m in notes]


class _Identity:
    """A WCS whose pixel and sky coordinates coincide (the kernels only see the arrays)."""

    @staticmethod
    def forward_transform(x: Any, y: Any) -> tuple[Any, Any]:
        return x + 0.25, y - 0.25

    @staticmethod
    def backward_transform(x: Any, y: Any) -> tuple[Any, Any]:
        return x, y


def warm_resample() -> list[str]:
    """Drizzle (square and point kernels, with variances) and blot on tiny images."""
    import numpy as np

    from transforms import resample

    rng = np.random.default_rng(0)
    data = rng.random((12, 10)).astype(np.float32)
    wht = np.ones((12, 10), np.float32)
    var = {"var_rnoise": np.full((12, 10), 0.1, np.float32),
           "var_poisson": np.full((12, 10), 0.2, np.float32)}
    for kernel in resample.KERNELS:
        resample.drizzle_images([(data, wht, _Identity(), var), (data, wht, _Identity(), None)],
                                _Identity(), (14, 12), kernel=kernel)
    resample.blot(data, _Identity(), _Identity(), (12, 10))
    return []


def warm_compare() -> list[str]:
    """The diff kernels for the arrays products hold: read-only arrays read back from the store
    (float32 science, int32 context, uint32/uint8 DQ), and the writable float64 and boolean
    columns of source catalogs."""
    import numpy as np

    from transforms import compare

    def pair(dtype: Any, writable: bool) -> tuple[np.ndarray, np.ndarray]:
        a = np.arange(12).reshape(3, 4).astype(dtype)
        b = a.copy()
        a.flags.writeable = b.flags.writeable = writable
        return a, b

    for dtype, writable in ((np.float32, False), (np.float64, False), (np.float64, True),
                            (np.int32, False), (np.bool_, True), (np.bool_, False),
                            (np.uint8, False)):
        compare.compare_arrays(*pair(dtype, writable))
    for dtype in (np.uint32, np.uint8):
        compare.compare_dq(*pair(dtype, False))
    return []


def warm_simulator() -> list[str]:
    """The simulator's kernels (``calops simulate``, the demo)."""
    import numpy as np

    from transforms.sim import detector

    coeffs = np.zeros((4, 3, 3), np.float32)
    coeffs[1] = 1.0
    detector.invert_linearity(np.ones((3, 3), np.float32), coeffs)
    return []


# name -> (what it compiles, function returning notes). ``calops warmup`` runs them in order.
GROUPS: dict[str, tuple[str, Callable[[], list[str]]]] = {
    "detector1": ("ramps to rates: every step and version", warm_detector1),
    "resample": ("drizzle and blot (image2, image3)", warm_resample),
    "compare": ("diff kernels", warm_compare),
    "simulator": ("the simulator", warm_simulator),
}


def warmup(groups: Sequence[str] | None = None) -> Iterator[tuple[str, float, int, list[str]]]:
    """Compile the kernels of ``groups`` (default: all), one group at a time; yields
    (group, seconds, kernels compiled, notes)."""
    names = list(GROUPS) if not groups else list(groups)
    unknown = [g for g in names if g not in GROUPS]
    if unknown:
        raise ValueError(f"unknown kernel group(s) {', '.join(unknown)}; "
                         f"known: {', '.join(GROUPS)}")
    for name in names:
        t0 = time.perf_counter()
        with Compiles() as c:
            notes = GROUPS[name][1]()
        yield name, time.perf_counter() - t0, c.count, notes


__all__ = ["ENV", "GROUPS", "MESSAGE", "Compiles", "announce", "cold_kernels", "configure",
           "configured_cache_dir", "warmup"]
