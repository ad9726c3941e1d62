"""Numeric comparison of two products, for regression diffs between builds.

Pure: two ``DataModel``s in, a ``ModelDiff`` out; nothing is read, nothing mutated.

The tolerance test is astropy's ``FITSDiff(a, b)`` / JWST's regression-test rule: a pixel of a
float array is within tolerance when ``|a - b| <= atol + rtol * |b|``, with JWST's regtest
defaults ``rtol=1e-5, atol=1e-7``, overridable per array. Integer, boolean and other arrays are
compared exactly (as FITSDiff does). Non-finite values have an explicit policy, each case counted
separately: NaN in both at the same pixel is equal by default (``nan_equal=False`` makes it a
difference); NaN in only one is a difference; +Inf against +Inf (or -Inf against -Inf) is equal;
any other pairing with an Inf is a difference. DQ arrays (``dq``, ``pixeldq``, ``groupdq``) are
compared bitwise and every flag gained or lost is counted by its name (``transforms.dq``).
Catalogs are compared source by source after matching positions on the sky.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numba import njit

from transforms import dq as dqflags
from transforms.model import DataModel

# JWST regression-test defaults (jwst/regtest/conftest.py fitsdiff_default_kwargs).
DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-7
DQ_ARRAYS = ("dq", "pixeldq", "groupdq")
# Metadata keys that name things rather than measure them (the references a recipe used are
# attributed from the recipe tables; dates and versions change with every run).
DEFAULT_IGNORE_META = ("date", "*.date", "ref_file.*", "calibration_software_*", "cal_ver",
                       "crds.*", "*.crds_ver", "*.crds_ctx")
# Histogram of log10|a - b| for finite, non-zero differences: 1-dex bins from 1e-12 to 1e6.
HIST_LO, HIST_STEP, HIST_NBINS = -12.0, 1.0, 18


class CompareError(ValueError):
    """Bad comparison settings or inputs that cannot be compared."""


@dataclass(frozen=True)
class Tolerance:
    """``|a - b| <= atol + rtol * |b|``."""

    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL

    def __post_init__(self) -> None:
        for name in ("rtol", "atol"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise CompareError(f"{name} must be a finite number >= 0, got {v!r}")


@dataclass(frozen=True)
class CompareConfig:
    """How two products are compared; the defaults are JWST's regression-test ones."""

    tolerance: Tolerance = Tolerance()
    per_array: Mapping[str, Tolerance] = field(default_factory=dict)  # array/column -> tolerance
    nan_equal: bool = True  # NaN at the same place in both counts as equal (counted apart)
    max_fraction_over: float = 0.0  # a product fails when an array has more pixels over
    dq_arrays: tuple[str, ...] = DQ_ARRAYS
    ignore_arrays: tuple[str, ...] = ()
    ignore_meta: tuple[str, ...] = DEFAULT_IGNORE_META
    match_radius_arcsec: float = 0.1  # catalogs: sources further apart are unmatched
    ra_col: str = "sky_centroid_ra"
    dec_col: str = "sky_centroid_dec"
    catalog_ignore_columns: tuple[str, ...] = ("label",)

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_fraction_over <= 1.0:
            raise CompareError(f"max_fraction_over must be in [0, 1], got {self.max_fraction_over}")
        if not self.match_radius_arcsec > 0:
            raise CompareError(f"match_radius_arcsec must be > 0, got {self.match_radius_arcsec}")
        for k, t in self.per_array.items():
            if not isinstance(t, Tolerance):
                raise CompareError(f"per_array[{k!r}] must be a Tolerance, got {type(t).__name__}")

    def tol(self, name: str) -> Tolerance:
        return self.per_array.get(name, self.tolerance)


@dataclass(frozen=True)
class ArrayDiff:
    """One array (or catalog column) of the pair."""

    name: str
    mode: str  # "float", "exact", "dq", "structural"
    shape_a: tuple[int, ...]
    shape_b: tuple[int, ...]
    dtype_a: str
    dtype_b: str
    n: int = 0  # elements compared
    n_over: int = 0  # elements over tolerance (or differing, for exact/dq)
    n_equal: int = 0  # elements exactly equal (or both NaN/same Inf)
    max_abs: float = 0.0  # over elements where both are finite
    max_rel: float = 0.0  # |a-b|/|b| where both finite and b != 0
    mean_abs: float = 0.0
    nan_both: int = 0
    nan_only_a: int = 0
    nan_only_b: int = 0
    inf_both: int = 0  # the same signed Inf in both
    inf_mismatch: int = 0  # an Inf against anything else
    rtol: float = 0.0
    atol: float = 0.0
    hist_counts: tuple[int, ...] = ()  # [<lo, bins..., >=hi] of log10|a-b| (finite, non-zero)
    dq_gained: Mapping[str, int] = field(default_factory=dict)  # flag -> pixels set only in b
    dq_lost: Mapping[str, int] = field(default_factory=dict)  # flag -> pixels set only in a
    note: str = ""

    @property
    def frac_over(self) -> float:
        return self.n_over / self.n if self.n else (1.0 if self.mode == "structural" else 0.0)

    def over(self, max_fraction: float = 0.0) -> bool:
        """Over tolerance: a structural difference, or more than ``max_fraction`` of the
        elements over tolerance (for DQ: with changed flags)."""
        if self.mode == "structural":
            return True
        return self.n_over > 0 and self.frac_over > max_fraction

    def summary(self) -> str:
        if self.mode == "structural":
            return f"{self.name}: {self.note}"
        if self.mode == "dq":
            parts = [f"+{k} {v}" for k, v in self.dq_gained.items()]
            parts += [f"-{k} {v}" for k, v in self.dq_lost.items()]
            return f"{self.name}: {self.n_over} of {self.n} pixels changed flags ({', '.join(parts)})"
        s = (f"{self.name}: {self.n_over} of {self.n} over tolerance "
             f"(max |Δ| {self.max_abs:.3g}, max rel {self.max_rel:.3g})")
        extra = [f"{k} {v}" for k, v in (("NaN only in a", self.nan_only_a),
                                         ("NaN only in b", self.nan_only_b),
                                         ("NaN in both", self.nan_both),
                                         ("Inf mismatch", self.inf_mismatch)) if v]
        return s + (f" [{', '.join(extra)}]" if extra else "")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["dq_gained"], d["dq_lost"] = dict(self.dq_gained), dict(self.dq_lost)
        d["frac_over"] = self.frac_over
        d["hist_edges_log10"] = hist_edges().tolist()
        return d


@dataclass(frozen=True)
class CatalogDiff:
    """Two source catalogues matched on the sky."""

    n_a: int
    n_b: int
    n_matched: int
    radius_arcsec: float
    max_sep_arcsec: float
    columns: Mapping[str, ArrayDiff]

    @property
    def n_only_a(self) -> int:
        return self.n_a - self.n_matched

    @property
    def n_only_b(self) -> int:
        return self.n_b - self.n_matched

    def to_dict(self) -> dict[str, Any]:
        return {"n_a": self.n_a, "n_b": self.n_b, "n_matched": self.n_matched,
                "n_only_a": self.n_only_a, "n_only_b": self.n_only_b,
                "radius_arcsec": self.radius_arcsec, "max_sep_arcsec": self.max_sep_arcsec,
                "columns": {k: v.to_dict() for k, v in self.columns.items()}}


@dataclass(frozen=True)
class ModelDiff:
    """Everything that differs between two products, and whether it exceeds tolerance."""

    kind_a: str
    kind_b: str
    arrays: Mapping[str, ArrayDiff]
    meta_changed: Mapping[str, tuple[Any, Any]]
    catalog: CatalogDiff | None
    reasons: tuple[str, ...]  # why it is over tolerance; empty when within
    meta_ignored: tuple[str, ...] = ()  # keys that differ but are not compared (ignore_meta)

    @property
    def over(self) -> bool:
        return bool(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {"kind_a": self.kind_a, "kind_b": self.kind_b, "over": self.over,
                "reasons": list(self.reasons),
                "arrays": {k: v.to_dict() for k, v in self.arrays.items()},
                "meta_changed": {k: [_jsonable(a), _jsonable(b)]
                                 for k, (a, b) in self.meta_changed.items()},
                "catalog": self.catalog.to_dict() if self.catalog else None,
                "meta_ignored": list(self.meta_ignored)}


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def hist_edges() -> np.ndarray:
    """Edges (log10 |a-b|) of the difference histogram's inner bins."""
    return HIST_LO + HIST_STEP * np.arange(HIST_NBINS + 1)


# --- kernels ---------------------------------------------------------------------------------

@njit(nogil=True, cache=True)
def _float_kernel(a, b, rtol, atol, nan_equal, lo, step, nbins):  # pragma: no cover - numba
    """One pass over two flat arrays: counts, extreme differences and a log10 histogram."""
    # counts: over, equal, nan_both, nan_a, nan_b, inf_both, inf_mismatch, finite pairs
    counts = np.zeros(8, np.int64)
    hist = np.zeros(nbins + 2, np.int64)
    max_abs = 0.0
    max_rel = 0.0
    sum_abs = 0.0
    for i in range(a.size):
        x = np.float64(a[i])
        y = np.float64(b[i])
        xn = np.isnan(x)
        yn = np.isnan(y)
        if xn or yn:
            if xn and yn:
                counts[2] += 1
                if nan_equal:
                    counts[1] += 1
                else:
                    counts[0] += 1
            elif xn:
                counts[3] += 1
                counts[0] += 1
            else:
                counts[4] += 1
                counts[0] += 1
            continue
        if np.isinf(x) or np.isinf(y):
            if x == y:
                counts[5] += 1
                counts[1] += 1
            else:
                counts[6] += 1
                counts[0] += 1
            continue
        counts[7] += 1
        d = abs(x - y)
        if d == 0.0:
            counts[1] += 1
            continue
        sum_abs += d
        if d > max_abs:
            max_abs = d
        ay = abs(y)
        if ay > 0.0:
            r = d / ay
            if r > max_rel:
                max_rel = r
        if d > atol + rtol * ay:
            counts[0] += 1
        k = int(np.floor((np.log10(d) - lo) / step)) + 1
        if k < 0:
            k = 0
        elif k > nbins + 1:
            k = nbins + 1
        hist[k] += 1
    return counts, hist, max_abs, max_rel, sum_abs


@njit(nogil=True, cache=True)
def _dq_kernel(a, b):  # pragma: no cover - numba
    """Pixels whose flags differ, and per bit how many pixels gained / lost it."""
    gained = np.zeros(64, np.int64)
    lost = np.zeros(64, np.int64)
    changed = 0
    for i in range(a.size):
        x = np.uint64(a[i])
        y = np.uint64(b[i])
        if x == y:
            continue
        changed += 1
        flip = x ^ y
        for bit in range(64):
            m = np.uint64(1) << np.uint64(bit)
            if flip & m:
                if y & m:
                    gained[bit] += 1
                else:
                    lost[bit] += 1
    return changed, gained, lost


# --- arrays ----------------------------------------------------------------------------------

def _flat(a: np.ndarray) -> np.ndarray:
    """A 1-D view when possible (a copy only for non-contiguous input)."""
    a = np.asarray(a)
    if a.dtype == np.bool_:
        a = a.view(np.uint8)
    return a.reshape(-1)


def _structural(name: str, a: np.ndarray | None, b: np.ndarray | None, note: str) -> ArrayDiff:
    return ArrayDiff(name, "structural",
                     tuple(a.shape) if a is not None else (), tuple(b.shape) if b is not None else (),
                     str(a.dtype) if a is not None else "", str(b.dtype) if b is not None else "",
                     note=note)


def compare_arrays(a: np.ndarray, b: np.ndarray, name: str = "data",
                   tol: Tolerance = Tolerance(), nan_equal: bool = True) -> ArrayDiff:
    """Compare two numeric arrays element by element (floats within ``tol``, others exactly)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return _structural(name, a, b, f"shape differs: {a.shape} vs {b.shape}")
    numeric = {"f", "i", "u", "b"}
    if a.dtype.kind not in numeric or b.dtype.kind not in numeric:
        if a.dtype.kind in numeric or b.dtype.kind in numeric:
            return _structural(name, a, b, f"dtype differs: {a.dtype} vs {b.dtype}")
        neq = int(np.count_nonzero(a != b))
        return ArrayDiff(name, "exact", a.shape, b.shape, str(a.dtype), str(b.dtype),
                         n=int(a.size), n_over=neq, n_equal=int(a.size) - neq)
    is_float = a.dtype.kind == "f" or b.dtype.kind == "f"
    rtol, atol = (tol.rtol, tol.atol) if is_float else (0.0, 0.0)
    counts, hist, max_abs, max_rel, sum_abs = _float_kernel(
        _flat(a), _flat(b), float(rtol), float(atol), bool(nan_equal), HIST_LO, HIST_STEP,
        HIST_NBINS)
    n_diff = int(counts[7]) - (int(counts[1]) - int(counts[2] if nan_equal else 0) - int(counts[5]))
    return ArrayDiff(
        name, "float" if is_float else "exact", a.shape, b.shape, str(a.dtype), str(b.dtype),
        n=int(a.size), n_over=int(counts[0]), n_equal=int(counts[1]), max_abs=float(max_abs),
        max_rel=float(max_rel), mean_abs=float(sum_abs / n_diff) if n_diff > 0 else 0.0,
        nan_both=int(counts[2]), nan_only_a=int(counts[3]), nan_only_b=int(counts[4]),
        inf_both=int(counts[5]), inf_mismatch=int(counts[6]), rtol=float(rtol), atol=float(atol),
        hist_counts=tuple(int(h) for h in hist))


def compare_dq(a: np.ndarray, b: np.ndarray, name: str = "dq") -> ArrayDiff:
    """Bitwise comparison of two DQ arrays, with per-flag counts of pixels gaining/losing it."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return _structural(name, a, b, f"shape differs: {a.shape} vs {b.shape}")
    if a.dtype.kind not in "iub" or b.dtype.kind not in "iub":
        return _structural(name, a, b, f"DQ must be integer, got {a.dtype} and {b.dtype}")
    changed, gained, lost = _dq_kernel(_flat(a), _flat(b))
    table = dqflags.GROUP if name == "groupdq" else dqflags.PIXEL
    by_bit = {bit.bit_length() - 1: n for n, bit in table.items() if bit}

    def named(counts: np.ndarray) -> dict[str, int]:
        return {by_bit.get(i, f"BIT{i}"): int(c) for i, c in enumerate(counts) if c}

    return ArrayDiff(name, "dq", a.shape, b.shape, str(a.dtype), str(b.dtype), n=int(a.size),
                     n_over=int(changed), n_equal=int(a.size) - int(changed),
                     dq_gained=named(gained), dq_lost=named(lost))


# --- metadata --------------------------------------------------------------------------------

def _same_value(x: Any, y: Any, tol: Tolerance) -> bool:
    if isinstance(x, bool) or isinstance(y, bool):
        return x is y or x == y
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            return True
        return x == y or abs(x - y) <= tol.atol + tol.rtol * abs(y)
    return x == y


def compare_meta(a: Mapping[str, Any], b: Mapping[str, Any], ignore: tuple[str, ...] = DEFAULT_IGNORE_META,
                 tol: Tolerance = Tolerance()) -> dict[str, tuple[Any, Any]]:
    """Metadata keys whose values differ (numbers within ``tol`` are equal), ignored keys left out."""
    out = {}
    for k in sorted(set(a) | set(b)):
        if any(fnmatch.fnmatchcase(k, p) for p in ignore):
            continue
        x, y = a.get(k), b.get(k)
        if not _same_value(x, y, tol):
            out[k] = (x, y)
    return out


# --- catalogs --------------------------------------------------------------------------------

def match_sources(ra_a: np.ndarray, dec_a: np.ndarray, ra_b: np.ndarray, dec_b: np.ndarray,
                  radius_arcsec: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one nearest-neighbour matches within ``radius_arcsec``: (index in a, index in b,
    separation in arcsec), a match kept only when each source is the other's nearest."""
    if len(ra_a) == 0 or len(ra_b) == 0:
        e = np.zeros(0, np.int64)
        return e, e, np.zeros(0)
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    ca = SkyCoord(np.asarray(ra_a, float) * u.deg, np.asarray(dec_a, float) * u.deg)
    cb = SkyCoord(np.asarray(ra_b, float) * u.deg, np.asarray(dec_b, float) * u.deg)
    ib, sep_ab, _ = ca.match_to_catalog_sky(cb)  # nearest b for every a
    ia, _, _ = cb.match_to_catalog_sky(ca)  # nearest a for every b
    idx_a = np.arange(len(ca))
    ib = np.atleast_1d(ib)
    sep = np.atleast_1d(sep_ab.arcsec)
    keep = (np.atleast_1d(ia)[ib] == idx_a) & (sep <= radius_arcsec)
    return idx_a[keep], ib[keep], sep[keep]


def sky_radec(m: DataModel, config: CompareConfig = CompareConfig()) -> DataModel:
    """A catalog whose sky positions are jwst's one ``sky_centroid`` column ((n, 2) degrees,
    source_catalog 1.1) seen with ``config.ra_col``/``dec_col`` columns instead, so catalogs
    of either layout match on the sky."""
    sc = m.arrays.get("sky_centroid")
    if sc is None or np.ndim(sc) != 2 or config.ra_col in m.arrays:
        return m
    arrays = {k: v for k, v in m.arrays.items() if k != "sky_centroid"}
    arrays[config.ra_col], arrays[config.dec_col] = sc[:, 0], sc[:, 1]
    return DataModel(m.kind, arrays, m.meta)


def compare_catalogs(a: DataModel, b: DataModel, config: CompareConfig = CompareConfig()) -> CatalogDiff:
    """Match sources on the sky and compare every other column of the matched pairs."""
    a, b = sky_radec(a, config), sky_radec(b, config)
    def nrows(m: DataModel) -> int:
        return len(next(iter(m.arrays.values()))) if m.arrays else 0

    na, nb = nrows(a), nrows(b)
    cols = set(a.arrays) & set(b.arrays)
    if {config.ra_col, config.dec_col} <= cols:
        ia, ib, sep = match_sources(a[config.ra_col], a[config.dec_col], b[config.ra_col],
                                    b[config.dec_col], config.match_radius_arcsec)
        skip = {config.ra_col, config.dec_col}
    elif na == nb:  # no sky positions: rows are compared in order
        ia = ib = np.arange(na)
        sep = np.zeros(0)
        skip = set()
    else:
        raise CompareError(f"catalogs have no {config.ra_col}/{config.dec_col} columns to match "
                           f"on and different lengths ({na} vs {nb}); set ra_col/dec_col")
    columns: dict[str, ArrayDiff] = {}
    for name in sorted(set(a.arrays) | set(b.arrays)):
        if name in skip or name in config.catalog_ignore_columns or name in config.ignore_arrays:
            continue
        if name not in a.arrays or name not in b.arrays:
            columns[name] = _structural(name, a.arrays.get(name), b.arrays.get(name),
                                        f"column only in {'b' if name in b.arrays else 'a'}")
            continue
        columns[name] = compare_arrays(np.asarray(a[name])[ia], np.asarray(b[name])[ib], name,
                                       config.tol(name), config.nan_equal)
    return CatalogDiff(na, nb, int(len(ia)), config.match_radius_arcsec,
                       float(sep.max()) if sep.size else 0.0, columns)


# --- products --------------------------------------------------------------------------------

def compare_models(a: DataModel, b: DataModel, config: CompareConfig = CompareConfig()) -> ModelDiff:
    """Compare product ``a`` (build A) with product ``b`` (build B)."""
    if not isinstance(a, DataModel) or not isinstance(b, DataModel):
        raise CompareError("compare_models needs two DataModels, got "
                           f"{type(a).__name__} and {type(b).__name__}")
    reasons: list[str] = []
    if a.kind != b.kind:
        reasons.append(f"kind differs: {a.kind} vs {b.kind}")
    catalog = None
    arrays: dict[str, ArrayDiff] = {}
    if a.kind == "catalog" and b.kind == "catalog":
        catalog = compare_catalogs(a, b, config)
        if catalog.n_only_a or catalog.n_only_b:
            reasons.append(f"sources: {catalog.n_matched} matched within "
                           f"{catalog.radius_arcsec}\", {catalog.n_only_a} only in a, "
                           f"{catalog.n_only_b} only in b")
        for d in catalog.columns.values():
            if d.over(config.max_fraction_over):
                reasons.append(d.summary())
    else:
        for name in sorted(set(a.arrays) | set(b.arrays)):
            if name in config.ignore_arrays:
                continue
            if name not in a.arrays or name not in b.arrays:
                d = _structural(name, a.arrays.get(name), b.arrays.get(name),
                                f"array only in {'b' if name in b.arrays else 'a'}")
            elif name in config.dq_arrays:
                d = compare_dq(a[name], b[name], name)
            else:
                d = compare_arrays(a[name], b[name], name, config.tol(name), config.nan_equal)
            arrays[name] = d
            if d.over(config.max_fraction_over):
                reasons.append(d.summary())
    meta = compare_meta(a.meta, b.meta, config.ignore_meta, config.tolerance)
    if meta:
        keys = list(meta)
        reasons.append(f"metadata differs: {', '.join(keys[:5])}" + (" ..." if len(keys) > 5 else ""))
    ignored = tuple(k for k in compare_meta(a.meta, b.meta, (), config.tolerance) if k not in meta)
    return ModelDiff(a.kind, b.kind, arrays, meta, catalog, tuple(reasons), ignored)


# --- pictures --------------------------------------------------------------------------------

def _plane(x: np.ndarray, pick: tuple[int, ...]) -> np.ndarray:
    return x[pick] if pick else x


def worst_plane(a: np.ndarray, b: np.ndarray) -> tuple[int, ...]:
    """For arrays of more than two dimensions, the leading index of the 2-D plane with the
    largest finite |a - b| (integration/group); () for 2-D arrays."""
    if a.ndim <= 2:
        return ()
    lead = a.shape[:-2]
    best, best_i = -1.0, (0,) * len(lead)
    for i in np.ndindex(*lead):
        d = np.abs(b[i].astype(np.float64) - a[i].astype(np.float64))
        d = d[np.isfinite(d)]
        m = float(d.max()) if d.size else 0.0
        if m > best:
            best, best_i = m, i
    return tuple(int(v) for v in best_i)


def _blocks(x: np.ndarray, max_size: int) -> tuple[np.ndarray, int]:
    f = max(1, int(math.ceil(max(x.shape) / max_size)))
    ny, nx = (-(-x.shape[0] // f)) * f, (-(-x.shape[1] // f)) * f
    pad = np.full((ny, nx), np.nan, np.float64)
    pad[: x.shape[0], : x.shape[1]] = x
    return pad.reshape(ny // f, f, nx // f, f).transpose(0, 2, 1, 3).reshape(ny // f, nx // f, f * f), f


def difference_image(a: np.ndarray, b: np.ndarray, max_size: int = 512) -> np.ndarray:
    """``b - a`` as a 2-D float32 picture at most ``max_size`` pixels on a side; NaN where either
    value is not finite. Reduced by keeping, in each block, the difference of largest magnitude
    (so a single changed pixel stays visible). Arrays of more dimensions show their worst plane."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim < 2:
        raise CompareError(f"difference_image needs two arrays of one shape with >= 2 "
                           f"dimensions, got {a.shape} and {b.shape}")
    pick = worst_plane(a, b)
    a2, b2 = _plane(a, pick).astype(np.float64), _plane(b, pick).astype(np.float64)
    with np.errstate(invalid="ignore"):
        d = b2 - a2
    d[~(np.isfinite(a2) & np.isfinite(b2))] = np.nan
    blk, f = _blocks(d, max_size)
    if f == 1:
        return d.astype(np.float32)
    filled = np.where(np.isfinite(blk), blk, 0.0)
    k = np.abs(filled).argmax(axis=-1)[..., None]
    out = np.take_along_axis(blk, k, axis=-1)[..., 0]
    allnan = ~np.isfinite(blk).any(axis=-1)
    out[allnan] = np.nan
    return out.astype(np.float32)


def preview(x: np.ndarray, max_size: int = 512, pick: tuple[int, ...] = ()) -> np.ndarray:
    """A 2-D float32 picture of an array at most ``max_size`` on a side (block NaN-mean)."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise CompareError(f"preview needs an array of >= 2 dimensions, got shape {x.shape}")
    x2 = _plane(x, pick or (0,) * (x.ndim - 2)).astype(np.float64)
    x2[~np.isfinite(x2)] = np.nan
    blk, f = _blocks(x2, max_size)
    if f == 1:
        return x2.astype(np.float32)
    cnt = np.isfinite(blk).sum(axis=-1)
    s = np.where(np.isfinite(blk), blk, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, s / np.maximum(cnt, 1), np.nan).astype(np.float32)
