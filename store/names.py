"""JWST file names: build them from metadata and parse them back.

Exposure products:  ``jw<ppppp><ooo><vvv>_<gg><s><aa>_<eeeee>_<detector>_<suffix>.fits``
(e.g. ``jw01234001001_01101_00001_nrca1_rate.fits``). Stage-3 association products:
``jw<ppppp>-o<ooo>_t<ttt>_<instrument>_<opt_elem>_<suffix>.fits`` where ``opt_elem`` is the
filter and pupil, lower case, sorted and joined with ``-`` as the JWST association rules do
(``clear-f200w``). Catalogs end in ``.ecsv``.

Names that come from data (an exposure's file name, an association's name built from header
values such as FILTER and PUPIL) are never trusted as file names: ``safe_name`` keeps only
``[A-Za-z0-9._-]`` and ``safe_path`` refuses anything that would land outside its directory.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any


from store.errors import CalopsError


class BadName(CalopsError, ValueError):
    """A file name or metadata that does not make a JWST file name."""


_EXPOSURE = re.compile(
    r"^jw(?P<program>\d{5})(?P<observation>\d{3})(?P<visit>\d{3})"
    r"_(?P<visit_group>\d{2})(?P<sequence_id>\d)(?P<activity_id>[0-9a-z]{2})"
    r"_(?P<exposure>\d{5})_(?P<detector>[a-z0-9]+)_(?P<suffix>[a-z0-9]+)\.(?P<ext>fits|ecsv|asdf)$"
)
_ASSOCIATION = re.compile(
    r"^jw(?P<program>\d{5})-o(?P<observation>\d{3})_t(?P<target>\d{3})"
    r"_(?P<instrument>[a-z]+)_(?P<opt_elem>[a-z0-9-]+)_(?P<suffix>[a-z0-9]+)"
    r"\.(?P<ext>fits|ecsv|asdf)$"
)

# meta key -> (width, regex) of each exposure-name field
_FIELDS = (
    ("observation.program_number", 5), ("observation.observation_number", 3),
    ("observation.visit_number", 3), ("observation.visit_group", 2),
    ("observation.sequence_id", 1), ("observation.activity_id", 2),
    ("observation.exposure_number", 5),
)

_EMPTY_OPT = {"", "none", "n/a", "null", "any"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
MAX_NAME = 150


def safe_name(text: Any, max_len: int = MAX_NAME) -> str:
    """A file-name component from any text, built from a whitelist: letters, digits, ``.``,
    ``_`` and ``-`` (ASCII). Anything else (``/``, ``\\``, spaces, non-ASCII, control
    characters) becomes ``_``; leading dots and dashes go (no hidden files, no ``..``, no
    option-like names). A name that had to change gets ``-<8 hex>`` of the original's sha256,
    so two different texts never give the same name. Already-safe names are unchanged."""
    original = str(text)
    name = _UNSAFE.sub("_", original).lstrip(".-_")[:max_len].rstrip(".")
    if name != original or not name:
        digest = hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        name = f"{name or 'unnamed'}-{digest}"
    return name


def safe_path(directory: str | os.PathLike, name: str) -> Path:
    """``directory / name`` after checking that ``name`` is one whitelisted component and that
    the result is directly inside ``directory`` (symlinks resolved); BadName otherwise."""
    if not _SAFE_NAME.fullmatch(name or "") or len(name) > 255:
        raise BadName(f"{name!r} is not a safe file name (letters, digits, '.', '_', '-')")
    d = Path(directory)
    path = d / name
    if path.parent.resolve() != d.resolve() or os.sep in name or (os.altsep and os.altsep in name):
        raise BadName(f"{name!r} would be written outside {d}")
    return path


def _field(meta: Mapping[str, Any], key: str, width: int) -> str:
    value = meta.get(key)
    if value is None:
        raise BadName(f"cannot build a JWST file name: metadata {key!r} is missing")
    text = str(value).strip().lower()
    if text.isdigit():
        text = text.zfill(width)
    if len(text) != width or not text.isalnum():
        raise BadName(f"cannot build a JWST file name: {key}={value!r} is not {width} characters")
    return text


def _ext(suffix: str) -> str:
    return "ecsv" if suffix == "cat" else "fits"


def jwst_filename(meta: Mapping[str, Any], suffix: str) -> str:
    """The exposure file name for ``meta`` with ``suffix`` (uncal, rate, rateints, cal, ...)."""
    if not re.fullmatch(r"[a-z0-9]+", suffix or ""):
        raise BadName(f"file name suffix {suffix!r} must be lower-case letters and digits")
    p, o, v, g, s, a, e = (_field(meta, k, w) for k, w in _FIELDS)
    det = str(meta.get("instrument.detector") or "").strip().lower()
    if not re.fullmatch(r"[a-z0-9]+", det):
        raise BadName(f"cannot build a JWST file name: instrument.detector={det!r} is not usable")
    return f"jw{p}{o}{v}_{g}{s}{a}_{e}_{det}_{suffix}.{_ext(suffix)}"


def opt_elem(filter_: str | None, pupil: str | None) -> str:
    """The optical-element part of a stage-3 name: sorted, lower case, joined with '-'."""
    elems = [str(x).strip().lower() for x in (filter_, pupil) if x is not None]
    elems = sorted(x for x in elems if x not in _EMPTY_OPT)
    bad = [x for x in elems if not re.fullmatch(r"[a-z0-9]+", x)]
    if bad:
        raise BadName(f"cannot build an association name: optical element {bad[0]!r} must be "
                      "letters and digits")
    return "-".join(elems) or "clear"


def association_filename(meta: Mapping[str, Any], suffix: str, target: int | str = 1) -> str:
    """The stage-3 product name ``jw<ppppp>-o<ooo>_t<ttt>_<instrument>_<opt_elem>_<suffix>``."""
    if not re.fullmatch(r"[a-z0-9]+", suffix or ""):
        raise BadName(f"file name suffix {suffix!r} must be lower-case letters and digits")
    p = _field(meta, "observation.program_number", 5)
    o = _field(meta, "observation.observation_number", 3)
    t = str(target).zfill(3)
    if not (t.isdigit() and len(t) == 3):
        raise BadName(f"association target number {target!r} must be 1-999")
    inst = str(meta.get("instrument.name") or "").strip().lower()
    if not inst.isalpha():
        raise BadName("cannot build an association name: instrument.name is missing")
    opt = opt_elem(meta.get("instrument.filter"), meta.get("instrument.pupil"))
    return f"jw{p}-o{o}_t{t}_{inst}_{opt}_{suffix}.{_ext(suffix)}"


def parse_filename(name: str) -> dict[str, str]:
    """The fields of an exposure or association file name (directories are ignored).

    Exposure names give ``meta``-style keys (``observation.program_number``, ...,
    ``instrument.detector`` in upper case) plus ``suffix``; association names give
    ``observation.program_number``, ``observation.observation_number``, ``target``,
    ``instrument.name``, ``opt_elem`` and ``suffix``. Anything else raises BadName.
    """
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    m = _EXPOSURE.match(base)
    if m:
        d = m.groupdict()
        return {
            "observation.program_number": d["program"],
            "observation.observation_number": d["observation"],
            "observation.visit_number": d["visit"],
            "observation.visit_group": d["visit_group"],
            "observation.sequence_id": d["sequence_id"],
            "observation.activity_id": d["activity_id"],
            "observation.exposure_number": d["exposure"],
            "instrument.detector": d["detector"].upper(),
            "suffix": d["suffix"],
            "kind": "exposure",
        }
    m = _ASSOCIATION.match(base)
    if m:
        d = m.groupdict()
        return {
            "observation.program_number": d["program"],
            "observation.observation_number": d["observation"],
            "target": d["target"],
            "instrument.name": d["instrument"].upper(),
            "opt_elem": d["opt_elem"],
            "suffix": d["suffix"],
            "kind": "association",
        }
    raise BadName(
        f"{base!r} is not a JWST file name (expected jw<ppppp><ooo><vvv>_<gg><s><aa>_<eeeee>_"
        f"<detector>_<suffix>.fits or jw<ppppp>-o<ooo>_t<ttt>_<instrument>_<opt>_<suffix>.fits)"
    )
