"""Resolve reference files for an exposure through the ``crds`` library, fully offline.

``resolve(meta, reftypes, context, crds_path)`` builds a CRDS header from calops metadata (the
rmaps' ``META.*`` parameter keys, values from the data-model paths), asks
``crds`` for the best references of the named context in the cache at ``crds_path``, and
returns their paths in that cache. CRDS is configured only for the duration of the call
(``CRDS_PATH``, ``CRDS_MODE=local``, a serverless ``CRDS_SERVER_URL``, ``CRDS_READONLY_CACHE``),
under a lock, and the previous environment and crds module state are restored afterwards, so
two caches can be used in one process. Nothing contacts a server.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from catalogs.crds_cache import parkey_to_meta

OBSERVATORY = "jwst"
_LOCK = threading.RLock()
_ENV = ("CRDS_PATH", "CRDS_MODE", "CRDS_SERVER_URL", "CRDS_READONLY_CACHE", "CRDS_OBSERVATORY",
        "CRDS_MAPPATH", "CRDS_REFPATH", "CRDS_CFGPATH", "CRDS_PATH_SINGLE", "CRDS_CONTEXT")
SERVERLESS_URL = "https://serverless-mode.calops.invalid"
_MAPPINGS: dict[tuple[str, str, float], Any] = {}

try:
    from store.errors import CalopsError as _Base
except ImportError:  # pragma: no cover
    _Base = Exception  # type: ignore[misc,assignment]


class CrdsResolutionError(_Base, LookupError):
    """A reference that could not be chosen: names the context, reftype and exposure."""


NOT_APPLICABLE = "N/A"


@contextlib.contextmanager
def crds_environment(crds_path: str | os.PathLike) -> Iterator[None]:
    """Point crds at a local cache for the duration of the block; restore everything after."""
    from crds.core import config

    with _LOCK:
        saved = {k: os.environ.get(k) for k in _ENV}
        saved_mode = config.CRDS_REF_SUBDIR_MODE
        try:
            for k in _ENV:
                os.environ.pop(k, None)
            os.environ["CRDS_PATH"] = os.fspath(Path(crds_path).resolve())
            os.environ["CRDS_MODE"] = "local"
            os.environ["CRDS_SERVER_URL"] = SERVERLESS_URL
            os.environ["CRDS_READONLY_CACHE"] = "1"
            os.environ["CRDS_OBSERVATORY"] = OBSERVATORY
            config.CRDS_REF_SUBDIR_MODE = "None"  # re-read this cache's layout
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            config.CRDS_REF_SUBDIR_MODE = saved_mode


def _exposure_name(meta: Mapping[str, Any]) -> str:
    return str(meta.get("filename") or meta.get("observation.obs_id") or "<unnamed exposure>")


def _load_context(context: str, crds_path: str | os.PathLike) -> Any:
    """The context's mapping tree, loaded without crds's by-name cache (caches differ)."""
    from crds.core import rmap

    root = Path(crds_path).resolve()
    pmap = root / "mappings" / OBSERVATORY / context
    if not context.endswith(".pmap") or not pmap.exists():
        have = sorted(p.name for p in (root / "mappings" / OBSERVATORY).glob("*.pmap"))
        raise CrdsResolutionError(f"CRDS context {context!r} is not in the cache {root} "
                                  f"(contexts there: {', '.join(have) or 'none'})")
    key = (str(root), context, pmap.stat().st_mtime)
    if key not in _MAPPINGS:
        try:
            _MAPPINGS[key] = rmap.load_mapping(context)
        except Exception as exc:
            raise CrdsResolutionError(f"CRDS context {context} in {root} cannot be loaded: "
                                      f"{exc}") from exc
    return _MAPPINGS[key]


def crds_header(meta: Mapping[str, Any], parkeys: Iterable[str]) -> dict[str, str]:
    """The CRDS header for ``parkeys`` from calops meta; missing values are UNDEFINED."""
    out: dict[str, str] = {}
    for k in parkeys:
        if k == "REFTYPE":
            continue
        v = meta.get(parkey_to_meta(k))
        out[k] = "UNDEFINED" if v is None else str(v)
    if out.get("META.OBSERVATION.TIME", "UNDEFINED") != "UNDEFINED":
        out["META.OBSERVATION.TIME"] = out["META.OBSERVATION.TIME"][:8]
    return out


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}")
_RESOLVED: dict[tuple, dict[str, str]] = {}
_SELECTION: dict[tuple, tuple] = {}  # (root, context, mtime, instrument, reftypes) -> ...
_ROOTS: dict[str, str] = {}
_RAW: dict[tuple, tuple] = {}  # the raw metadata values a selection reads -> its memo key
_NO_SELECTION: dict[tuple, str] = {}  # memo key -> why CRDS selected nothing
_CHECKED: dict[tuple, float] = {}  # memo key -> when its files were last seen in the cache
CHECK_EVERY_S = 5.0


def _present(memo: tuple, paths: Mapping[str, str]) -> bool:
    """Whether a memoised selection's files are (still) in the cache; looked at again at most
    every CHECK_EVERY_S seconds (a planner resolves thousands of exposures a second)."""
    import time

    now = time.monotonic()
    if now - _CHECKED.get(memo, -1e9) < CHECK_EVERY_S:
        return True
    ok = all(v == NOT_APPLICABLE or os.path.exists(v) for v in paths.values())
    if ok:
        _CHECKED[memo] = now
    return ok


def _header(meta: Mapping[str, Any], parkeys: Iterable[str], instrument: str) -> dict[str, str]:
    """The conditioned CRDS header CRDS selects with."""
    from crds.core import utils

    header = crds_header(meta, list(parkeys) + ["META.INSTRUMENT.NAME"])
    header["META.INSTRUMENT.NAME"] = instrument
    return dict(utils.condition_header(header))  # CRDS's own value normalisation
_USEAFTER: dict[tuple, tuple[str, ...]] = {}


def _useafter_dates(imap: Any, reftypes: Iterable[str], root: str) -> tuple[str, ...]:
    """Every UseAfter date of these reftypes' rmaps, sorted (``YYYY-MM-DD HH:MM:SS``)."""
    key = (id(imap), tuple(reftypes))
    if key not in _USEAFTER:
        dates: set[str] = set()
        for rt in reftypes:
            try:
                name = imap.get_rmap(rt).filename
            except Exception:  # a reftype the context does not have: nothing to bucket
                continue
            text = (Path(root) / "mappings" / OBSERVATORY / name).read_text()
            dates.update(d.replace("T", " ") for d in _DATE.findall(text))
        _USEAFTER[key] = tuple(sorted(dates))
    return _USEAFTER[key]


def _selector(header: Mapping[str, str], dates: tuple[str, ...]) -> tuple:
    """What CRDS selects on, with the observation date replaced by how many UseAfter dates
    precede it: two exposures with equal selectors get the same references."""
    obs = f"{header.get('META.OBSERVATION.DATE', '')} {header.get('META.OBSERVATION.TIME', '')}"
    rest = tuple(sorted((k, v) for k, v in header.items()
                        if k not in ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME")))
    return rest + (("useafter-bucket", bisect.bisect_right(dates, obs.strip())),)


def resolve_with_optional(meta: Mapping[str, Any], required: Iterable[str],
                          optional: Iterable[str], context: str,
                          crds_path: str | os.PathLike) -> dict[str, str]:
    """``resolve`` for the required reftypes (an error if CRDS cannot select one), plus each
    optional one the context has (a step that can do without it when it has none)."""
    required = list(required)
    paths = resolve(meta, required, context, crds_path) if required else {}
    for r in optional:
        try:
            paths.update(resolve(meta, [r], context, crds_path))
        except CrdsResolutionError:
            pass
    return paths


def resolve(meta: Mapping[str, Any], reftypes: Iterable[str], context: str,
            crds_path: str | os.PathLike) -> dict[str, str]:
    """Reference file path per reftype for one exposure, or ``"N/A"`` where none applies.

    Memoised per distinct selector (the parameter values the rmaps select on, the observation
    date bucketed by the rmaps' UseAfter dates), so a reprocess of many exposures asks CRDS once
    per configuration and date range."""
    from crds.core import config

    reftypes = [r.lower() for r in reftypes]
    exp = _exposure_name(meta)
    if not reftypes:
        return {}
    instrument = str(meta.get("instrument.name") or "").upper()
    if not instrument:
        raise CrdsResolutionError(f"{exp}: metadata has no instrument.name; CRDS cannot select")
    root = _ROOTS.get(str(crds_path)) or _ROOTS.setdefault(str(crds_path),
                                                           str(Path(crds_path).resolve()))
    try:
        stamp = os.stat(os.path.join(root, "mappings", OBSERVATORY, context)).st_mtime_ns
    except OSError:
        stamp = None  # reported by _load_context below
    skey = (root, context, stamp, instrument, tuple(reftypes))
    selection = _SELECTION.get(skey)
    if selection is not None:  # the fast path: no environment juggling, no mapping walk
        ctx_id, parkeys, dates = selection
        # keyed by the selection's key, not id(selection): the slow path below replaces the
        # selection tuple, and a freed tuple's id can come back as another reftype list's
        raw = (skey, tuple(meta.get(parkey_to_meta(k)) for k in parkeys))
        memo = _RAW.get(raw)
        if memo is None:
            header = _header(meta, parkeys, instrument)
            memo = (root, context, ctx_id, tuple(reftypes), _selector(header, dates))
            if len(_RAW) < 200_000:
                _RAW[raw] = memo
        hit = _RESOLVED.get(memo)
        if hit is not None and _present(memo, hit):
            return dict(hit)
        if memo in _NO_SELECTION:  # CRDS said no for an identical selection: say it again
            raise CrdsResolutionError(f"{exp}: {_NO_SELECTION[memo]}")
    with crds_environment(crds_path):
        ctx = _load_context(context, crds_path)
        try:
            imap = ctx.get_imap(instrument)
        except Exception as exc:
            raise CrdsResolutionError(f"context {context} has no instrument {instrument} "
                                      f"(for {exp})") from exc
        parkeys: set[str] = set()
        for rt in reftypes:
            try:
                parkeys.update(imap.get_rmap(rt).get_required_parkeys())
            except Exception:
                pass
        dates = _useafter_dates(imap, reftypes, root)
        _SELECTION[skey] = (id(ctx), tuple(sorted(parkeys)), dates)
        header = _header(meta, tuple(sorted(parkeys)), instrument)
        memo = (root, context, id(ctx), tuple(reftypes), _selector(header, dates))
        hit = _RESOLVED.get(memo)
        if hit is not None and _present(memo, hit):
            return dict(hit)
        try:
            best = ctx.get_best_references(header, include=reftypes)
        except Exception as exc:
            raise CrdsResolutionError(f"context {context}: CRDS failed for {exp}: {exc}") from exc
        out: dict[str, str] = {}
        for rt in reftypes:
            val = best.get(rt)
            if val is None or str(val).upper().startswith("NOT FOUND"):
                if val is not None and "n/a" in str(val).lower():
                    out[rt] = NOT_APPLICABLE
                    continue
                detail = val or "reftype not in the context"
                why = (f"context {context}: no {rt} reference ({detail}; header "
                       f"{ {k: header[k] for k in sorted(header)} })")
                if len(_NO_SELECTION) < 100_000:
                    _NO_SELECTION[memo] = why
                raise CrdsResolutionError(f"context {context}: no {rt} reference for {exp} "
                                          f"({val or 'reftype not in the context'}; header "
                                          f"{ {k: header[k] for k in sorted(header)} })")
            if str(val).upper() == "N/A":
                out[rt] = NOT_APPLICABLE
                continue
            path = config.locate_file(str(val), OBSERVATORY)
            if not os.path.exists(path):
                raise CrdsResolutionError(f"context {context}: {rt} for {exp} is {val}, which "
                                          f"is not in the cache (looked for {path}); nothing "
                                          "is downloaded in offline mode")
            out[rt] = path
        _RESOLVED[memo] = dict(out)
    return out


def _names(imap: Any, reftype: str, have: set[str]) -> set[str]:
    """The files an imap's rmap of ``reftype`` names (none where the imap says N/A)."""
    if reftype not in have:
        return set()
    try:
        return set(imap.get_rmap(reftype).reference_names())
    except Exception:  # N/A (or OMIT) at the instrument level: no rmap, no files
        return set()


def context_diff(ctx_a: str, ctx_b: str, crds_path: str | os.PathLike) -> list[dict[str, str]]:
    """Reference files that differ between two contexts: one row per change.

    Rows: ``{"instrument", "reftype", "change": added|deleted|replaced, "old", "new"}``.
    """
    with crds_environment(crds_path):
        a = _load_context(ctx_a, crds_path)
        b = _load_context(ctx_b, crds_path)
        rows = []
        for inst in sorted(set(a.selections) | set(b.selections)):
            ia = a.selections.get(inst)
            ib = b.selections.get(inst)
            ta = set(ia.selections) if ia else set()
            tb = set(ib.selections) if ib else set()
            for rt in sorted(ta | tb):
                fa, fb = _names(ia, rt, ta), _names(ib, rt, tb)
                for f in sorted(fa - fb):
                    rows.append({"instrument": inst, "reftype": rt, "change": "deleted",
                                 "old": f, "new": ""})
                for f in sorted(fb - fa):
                    rows.append({"instrument": inst, "reftype": rt, "change": "added",
                                 "old": "", "new": f})
        return rows
