"""Every registered step version has a pinned golden product id, and every pinned id is asserted.

DESIGN.md: "A golden test per step pins the product_id of a small fixed input, so a silent
change fails CI." This meta-test reads ``transforms.registry.steps()`` and the one table
``golden_ids.GOLDEN``: a new step (or a new version of one) without a golden fails here, as does
a golden no test asserts (each golden test file declares the keys it pins as ``PINNED``).
It also checks the canonical-form helpers the golden tests use, and runs every golden test once
more with other CPU kernels (OpenBLAS without FMA/AVX2, numpy without its AVX2/AVX-512 loops)
to show that the pinned ids do not depend on the machine's SIMD paths.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from golden_ids import GOLDEN, Canon, canonical, key, round_bits, split_key  # noqa: E402

from transforms import registry  # noqa: E402
from transforms.model import DataModel  # noqa: E402

identity = pytest.importorskip("store.identity", reason="product ids come from store.identity")

GOLDEN_FILES = sorted(_HERE.glob("**/test_*golden*.py"))
GOLDEN_FILES = [p for p in GOLDEN_FILES if p.name != Path(__file__).name]


def _pinned_by_file() -> dict[str, tuple[str, ...]]:
    """Each golden test file's ``PINNED`` keys (the module is loaded under a private name)."""
    out = {}
    for path in GOLDEN_FILES:
        if str(path.parent) not in sys.path:  # its sibling helpers (image2_helpers...)
            sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location(f"_golden_meta_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        pinned = getattr(mod, "PINNED", None)
        assert pinned, f"{path.relative_to(_HERE)} has no PINNED tuple of the golden keys it checks"
        out[str(path.relative_to(_HERE))] = tuple(pinned)
    return out


def test_every_registered_step_version_has_a_golden_id():
    missing = [key(name, v) for name, versions in registry.steps().items() for v in versions
               if not GOLDEN.get(key(name, v))]
    assert not missing, (
        f"no golden product id for {', '.join(missing)}: add a golden test on a small fixed "
        f"input and pin its id in tests/transforms/golden_ids.py (DESIGN.md, 'Identity')")


def test_every_golden_names_a_registered_step_and_is_well_formed():
    registered = {(n, v) for n, vs in registry.steps().items() for v in vs}
    for k, ids in GOLDEN.items():
        name, version = split_key(k)
        assert (name, version) in registered, (
            f"golden {k!r} names no registered step version; remove it from golden_ids.py or "
            f"register {name} {version}")
        ids = (ids,) if isinstance(ids, str) else ids
        assert ids and all(identity.is_id(i) for i in ids), (
            f"golden {k!r} is not a product id: {ids}")


def test_every_golden_is_asserted_by_exactly_one_golden_test():
    by_file = _pinned_by_file()
    assert len(by_file) >= 4, f"golden test files not found: {GOLDEN_FILES}"
    owners: dict[str, list[str]] = {}
    for f, keys in by_file.items():
        for k in keys:
            owners.setdefault(k, []).append(f)
    unknown = sorted(set(owners) - set(GOLDEN))
    assert not unknown, f"golden tests pin keys missing from golden_ids.GOLDEN: {unknown}"
    unasserted = sorted(set(GOLDEN) - set(owners))
    assert not unasserted, f"golden ids no golden test asserts (add them to a PINNED): {unasserted}"
    twice = {k: fs for k, fs in owners.items() if len(fs) > 1}
    assert not twice, f"golden keys pinned by more than one file: {twice}"


def test_distinct_steps_have_distinct_golden_ids():
    """Two steps with one id would mean a golden that pins nothing the step did."""
    seen: dict[str, str] = {}
    for k, ids in GOLDEN.items():
        for i in (ids,) if isinstance(ids, str) else ids:
            assert i not in seen, f"{k} and {seen[i]} pin the same product id {i}"
            seen[i] = k


# --- the canonical form ----------------------------------------------------------------------

finite64 = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=6), elements=finite64),
       st.integers(4, 52))
def test_round_bits_is_a_bounded_idempotent_copy(a, bits):
    before = a.copy()
    r = round_bits(a, bits)
    assert np.array_equal(a, before)  # the input is not touched
    assert r.dtype == np.float64 and r.shape == a.shape
    assert np.array_equal(round_bits(r, bits), r)  # idempotent
    with np.errstate(over="ignore", invalid="ignore"):
        err = np.abs(r - a)
        ok = (err <= np.abs(a) * 2.0 ** -bits) | ~np.isfinite(r)
    assert np.all(ok | (np.abs(a) > 1e300))  # within half a unit of the last kept bit


@settings(max_examples=20, deadline=None)
@given(st.floats(-1e6, 1e6, allow_nan=False), st.integers(-30, 0))
def test_round_bits_quantum_gives_multiples(x, e):
    q = 2.0 ** e
    r = float(round_bits(x, 52, q))
    assert r / q == round(r / q) and abs(r - x) <= q / 2 * (1 + 1e-12)


def test_round_bits_keeps_nan_inf_and_refuses_other_quanta():
    r = round_bits([np.nan, np.inf, -np.inf, 1.0], 8, 2.0 ** -4)
    assert np.isnan(r[0]) and r[1] == np.inf and r[2] == -np.inf and r[3] == 1.0
    with pytest.raises(ValueError, match="power of two"):
        round_bits([1.0], 8, 0.1)


@settings(max_examples=20, deadline=None)
@given(hnp.arrays(np.float32, (3, 4), elements=st.floats(-1e3, 1e3, width=32)),
       hnp.arrays(np.float64, (5,), elements=st.floats(-1e3, 1e3)),
       st.floats(-1e3, 1e3), st.integers(8, 40))
def test_canonical_rounds_only_what_it_says_and_does_not_mutate(a32, a64, x, bits):
    dq = np.arange(12, dtype=np.uint32).reshape(3, 4)
    m = DataModel("cal", {"data": a32, "dq": dq, "col": a64},
                  {"f": x, "nested": {"l": [x, 2, "s"]}, "b": True, "i": 3})
    before = identity.product_id(m)
    c = canonical(m, Canon(bits=bits))
    assert identity.product_id(m) == before
    assert np.array_equal(c["data"], a32) and c["data"].dtype == np.float32  # float32 exact
    assert np.array_equal(c["dq"], dq) and c["dq"].dtype == np.uint32
    assert np.array_equal(c["col"], round_bits(a64, bits))
    assert c.get("f") == float(round_bits(x, bits))
    assert c.get("nested") == {"l": [float(round_bits(x, bits)), 2, "s"]}
    assert c.get("b") is True and c.get("i") == 3
    c32 = canonical(m, Canon(bits=bits, float32=True))
    assert c32["data"].dtype == np.float32
    assert np.array_equal(c32["data"], round_bits(a32, bits).astype(np.float32))
    # canonical is a fixed point: canonicalising twice changes nothing
    assert identity.product_id(canonical(c32, Canon(bits=bits, float32=True))) == \
        identity.product_id(c32)


# --- other CPU kernels ------------------------------------------------------------------------

def _simd_to_disable() -> list[str]:
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:  # pragma: no cover - numpy layout change
        return []
    want = ("AVX512F", "AVX512CD", "AVX512_SKX", "AVX512_CLX", "AVX512_CNL", "AVX512_ICL",
            "AVX512_SPR", "AVX2", "FMA3", "F16C", "AVX")
    return [f for f in want if feats.get(f)]


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="the emulated kernels (OpenBLAS Sandybridge, numpy AVX switches) are "
                           "x86-64 names")
def test_golden_ids_hold_with_other_cpu_kernels(run_python):
    """Run every golden test again in a fresh interpreter with OpenBLAS forced to its
    Sandybridge kernels (AVX, no FMA) and numpy's AVX/AVX2/AVX-512 loops switched off: what a
    different machine would compute. Measured when this was written: exact ids of tweakreg,
    skymatch, source_catalog and resample change under these kernels; their canonical ids and
    every exact id pinned do not."""
    disable = _simd_to_disable()
    files = [str(p) for p in GOLDEN_FILES]
    code = ("import sys, pytest; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', "
            "'-k', 'golden_product_id', *sys.argv[1:]]))")
    env = {"OPENBLAS_CORETYPE": "Sandybridge", "NPY_DISABLE_CPU_FEATURES": " ".join(disable)}
    r = run_python(code.replace("*sys.argv[1:]", ", ".join(repr(f) for f in files)),
                   timeout=300, **env)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert r.returncode == 0, f"golden ids differ with other CPU kernels ({env}):\n{out[-4000:]}"
    assert " passed" in out and "failed" not in out, out[-2000:]
