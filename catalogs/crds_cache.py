"""Write a local CRDS cache: pmap -> imaps -> rmaps in the real mapping syntax + reference files.

Layout (what the ``crds`` library expects of a cache, see docs/crds.md)::

    <root>/mappings/jwst/jwst_0001.pmap, jwst_<instr>_0001.imap, jwst_<instr>_<reftype>_0001.rmap
    <root>/references/jwst/<instr>/jwst_<instr>_<reftype>_0001.fits (.asdf for distortion)
    <root>/config/jwst/server_config, ref_cache_subdir_mode

Each rmap uses the parameter keys of the real JWST rmap spec shipped in ``crds/jwst/specs``
(plus the ``META.OBSERVATION.DATE/TIME`` UseAfter keys when the spec has none: operational
JWST rmaps select on dates). A reftype whose only reference is ``N/A`` with no match keys is
written as ``'N/A'`` in the imap, as real contexts do for reftypes an instrument does not use
(MIRI's superbias); so is every other JWST reference type the context has no references of
(``jwst_reftypes``: specwcs, wavelengthrange, fflat, pars-* ...), so that jwst's reference
prefetch and ``crds bestrefs`` get N/A where a real context answers N/A (docs/crds.md). The
spec's ``rmap_relevance`` is kept (N/A for the modes a type does not apply to). Mappings carry a correct ``sha1sum``. Mapping serials: a mapping
keeps its name while its content is unchanged; a changed one gets the next serial, so context
2 shares every unchanged rmap/imap with context 1, as real CRDS contexts do.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

OBSERVATORY = "jwst"
DATE_KEYS = ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME")
# Parameter keys misspelt in the shipped spec, and the key the rmaps calops writes use instead.
# The NIRCam dark spec (derived from jwst_nircam_dark_0024.rmap) selects on
# ``META.EXPOSUIRE.NOUTPUTS``: no data model has that path, so jwst
# (``model.get_crds_parameters()``) and ``crds bestrefs`` (which reads the FITS header through
# the same paths) always send it as UNDEFINED, and an rmap can only match it with N/A. calops's
# darks differ by the number of outputs (a real need: SUBGRISM darks come with 1 and 4), so
# the generated rmaps spell the key as the data model does (``NOUTPUTS``), which jwst and crds
# bestrefs both supply. A real cache that keeps the misspelt key is read as jwst reads it.
PARKEY_FIXES = {"META.EXPOSUIRE.NOUTPUTS": "META.EXPOSURE.NOUTPUTS"}
# Parameter keys whose spelling differs from the data model path: the 2013 specs of the
# NIRSpec/MIRI spectroscopic WCS references (disperser, msa, wavelengthrange, fore, fpa, ...)
# spell EXP_TYPE under INSTRUMENT.
PARKEY_ALIASES: dict[str, str] = {"META.INSTRUMENT.EXP_TYPE": "exposure.type"}
# Header fields of the shipped specs that the generated rmaps keep: ``rmap_relevance`` makes
# CRDS answer N/A for modes a reference type does not apply to (MIRI specwcs for MIR_IMAGE);
# ``extra_keys`` names the parameters it reads that are not match keys (CRDS rewrites only
# required parameters in the expression, so without them the rmap does not load).
SPEC_HEADER_KEEP = ("rmap_relevance", "extra_keys")
# Pseudo reference types of the specs that are never asked for.
_NOT_REFTYPES = frozenset({"all"})
# Parameters the operational rmaps select on beyond the shipped spec (the specs are the rmaps'
# 2013 starting points): NIRSpec masks, read noise and darks differ between the traditional and
# the IRS2 readout (an IRS2 mask is 3200 rows; CRDS's certifier allows that for mask, saturation
# and readnoise), so their rmaps match READPATT too.
PARKEY_EXTRA = {("nirspec", r): ("META.EXPOSURE.READPATT",) for r in ("mask", "readnoise", "dark")}
# NIRSpec AREA references differ between fixed slits (a row per slit) and the MSA (a row per
# shutter), as the operational rmap selects them on EXP_TYPE.
PARKEY_EXTRA[("nirspec", "area")] = ("META.EXPOSURE.TYPE",)


class CrdsCacheError(ValueError):
    """A cache that cannot be written as asked."""


@dataclass(frozen=True)
class CacheRef:
    """One reference in a context: its file, the values it matches and its UseAfter date."""

    reftype: str
    instrument: str
    filename: str  # or "N/A": the reftype does not apply to this selection
    match: Mapping[str, str]  # data-model key ("instrument.detector") -> value; absent = N/A
    useafter: str  # ISO date-time
    model: Any = None  # a ref.<reftype> DataModel to write, or None if the file exists


@dataclass(frozen=True)
class ContextSpec:
    """The references of one context; contexts are numbered 1, 2, ... in list order."""

    references: tuple[CacheRef, ...]


def parkey_to_meta(parkey: str) -> str:
    """``META.INSTRUMENT.DETECTOR`` -> ``instrument.detector`` (the calops meta key)."""
    if parkey in PARKEY_ALIASES:
        return PARKEY_ALIASES[parkey]
    p = parkey.lower()
    return p.removeprefix("meta.")


def spec_for(instrument: str, reftype: str) -> dict[str, Any]:
    """The shipped JWST rmap spec of (instrument, reftype), parkey with UseAfter dates."""
    from crds.core import reftypes

    defs = reftypes.get_types_object(OBSERVATORY).unified_defs
    try:
        spec = dict(defs[instrument.lower()][reftype.lower()])
    except KeyError:
        raise CrdsCacheError(f"CRDS has no JWST rmap spec for {instrument} {reftype}") from None
    parkey = tuple(tuple(PARKEY_FIXES.get(k, k) for k in t) for t in spec["parkey"])
    extra = PARKEY_EXTRA.get((instrument.lower(), reftype.lower()), ())
    parkey = (parkey[0] + tuple(k for k in extra if k not in parkey[0]),) + parkey[1:]
    if len(parkey) == 1:
        parkey = parkey + (DATE_KEYS,)
    spec["parkey"] = parkey
    return spec


def jwst_reftypes(instrument: str | None = None) -> tuple[str, ...]:
    """Every reference type a JWST context answers for (the union over the instruments of the
    shipped specs, ``pars-*`` step parameter types included): what jwst's steps may ask for any
    instrument (the Detector1Pipeline's reference prefetch asks NIRCam for ``emicorr`` and
    ``rscd``). Real imaps list them all, N/A where an instrument has none."""
    from crds.core import reftypes

    defs = reftypes.get_types_object(OBSERVATORY).unified_defs
    insts = [i for i in defs if i not in ("all", "system")]
    if instrument is not None and instrument.lower() not in insts:
        raise CrdsCacheError(f"CRDS knows no JWST instrument {instrument!r}")
    return tuple(sorted({r for i in insts for r in defs[i] if r not in _NOT_REFTYPES}))


def sha1_of_mapping(text: str) -> str:
    """The sha1sum CRDS checks: SHA-1 of the text without the lines containing 'sha1sum'."""
    body = "".join(line for line in text.splitlines(keepends=True) if "sha1sum" not in line)
    return hashlib.sha1(body.encode("utf-8")).hexdigest()


def _render(header: Mapping[str, Any], selector: str) -> str:
    lines = ["header = {\n"]
    for k in sorted(header):
        lines.append(f"    {k!r} : {header[k]!r},\n")
    lines.append("}\n\n")
    text = "".join(lines) + selector
    return text.replace("'sha1sum' : 'TBD'", f"'sha1sum' : {sha1_of_mapping(text)!r}")


def _useafter(date: str) -> str:
    d = date.replace("T", " ")
    if len(d) == 10:
        d += " 00:00:00"
    return d[:19]


def rmap_text(name: str, instrument: str, reftype: str, refs: Sequence[CacheRef]) -> str:
    """An rmap: Match on the spec's parameter keys, then UseAfter on the observation date."""
    spec = spec_for(instrument, reftype)
    match_keys, date_keys = spec["parkey"][0], spec["parkey"][1]
    groups: dict[tuple[str, ...], dict[str, str]] = {}
    for r in refs:
        unknown = sorted(set(r.match) - {parkey_to_meta(k) for k in match_keys})
        if unknown:
            raise CrdsCacheError(f"{r.filename}: match keys {unknown} are not parameters of the "
                                 f"JWST {instrument.upper()} {reftype} rmap ({', '.join(match_keys)})")
        key = tuple(str(r.match.get(parkey_to_meta(k), "N/A")) for k in match_keys)
        ua = groups.setdefault(key, {})
        date = _useafter(r.useafter)
        if date in ua and ua[date] != r.filename:
            raise CrdsCacheError(f"{instrument} {reftype}: {ua[date]} and {r.filename} both match "
                                 f"{key} from {date}")
        ua[date] = r.filename
    sel = ["selector = Match({\n"]
    for key in sorted(groups):
        k = repr(key[0]) if len(key) == 1 else repr(key)
        sel.append(f"    {k} : UseAfter({{\n")
        for date in sorted(groups[key]):
            sel.append(f"        {date!r} : {groups[key][date]!r},\n")
        sel.append("    }),\n")
    sel.append("})\n")
    header = {
        "classes": ("Match", "UseAfter"),
        "derived_from": "generated by calops.catalogs.crds_cache",
        "file_ext": spec.get("file_ext", ".fits"),
        "filekind": reftype.upper(),
        "filetype": spec.get("filetype", reftype.upper()),
        "instrument": instrument.upper(),
        "mapping": "REFERENCE",
        "name": name,
        "observatory": "JWST",
        "parkey": (tuple(match_keys), tuple(date_keys)),
        "sha1sum": "TBD",
        "suffix": spec.get("suffix", reftype),
        "text_descr": spec.get("text_descr", reftype),
    }
    header.update({k: spec[k] for k in SPEC_HEADER_KEEP if spec.get(k)})
    return _render(header, "".join(sel))


def imap_text(name: str, instrument: str, rmaps: Mapping[str, str]) -> str:
    header = {"derived_from": "generated by calops.catalogs.crds_cache",
              "instrument": instrument.upper(), "mapping": "INSTRUMENT", "name": name,
              "observatory": "JWST", "parkey": ("REFTYPE",), "sha1sum": "TBD"}
    sel = "selector = {\n" + "".join(f"    {k!r} : {rmaps[k]!r},\n" for k in sorted(rmaps)) + "}\n"
    return _render(header, sel)


def pmap_text(name: str, imaps: Mapping[str, str]) -> str:
    header = {"derived_from": "generated by calops.catalogs.crds_cache", "mapping": "PIPELINE",
              "name": name, "observatory": "JWST", "parkey": ("META.INSTRUMENT.NAME",),
              "sha1sum": "TBD"}
    sel = "selector = {\n" + "".join(f"    {k!r} : {imaps[k]!r},\n" for k in sorted(imaps)) + "}\n"
    return _render(header, sel)


def _body(text: str) -> str:
    """Mapping text without its name and checksum, to tell changed content from unchanged."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if "sha1sum" not in line and "'name'" not in line)


def _server_config(context: str, mappings: Iterable[str]) -> str:
    cfg = {"observatory": OBSERVATORY, "operational_context": context, "edit_context": context,
           "bad_files_list": [], "force_remote_mode": False, "last_synced": "calops",
           "mappings": sorted(mappings), "crds_version": {"str": "calops-generated"}}
    return repr(cfg) + "\n"


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_cache(root: str | os.PathLike, contexts: Sequence[ContextSpec],
                write_reference=None) -> list[str]:
    """Write the mappings of every context and the reference files they name; return the paths.

    ``write_reference(model, path)`` writes one reference (default ``write_reference_file``).
    The operational context in ``server_config`` is the last one.
    """
    if not contexts:
        raise CrdsCacheError("write_cache needs at least one context")
    if write_reference is None:
        write_reference = write_reference_file
    root = Path(root)
    mapdir = root / "mappings" / OBSERVATORY
    written: list[str] = []
    serial: dict[tuple, int] = {}
    prev_text: dict[tuple, tuple[str, str]] = {}  # key -> (body, name) of the last version
    all_mappings: list[str] = []
    models: dict[str, CacheRef] = {}

    def emit(key: tuple, make) -> str:
        """Name + write a mapping; reuse the previous name when the content is unchanged."""
        draft = make("DRAFT")
        if key in prev_text and prev_text[key][0] == _body(draft):
            return prev_text[key][1]
        serial[key] = serial.get(key, 0) + 1
        stem = "_".join(("jwst",) + key)
        name = f"{stem}_{serial[key]:04d}.{ {1: 'pmap', 2: 'imap', 3: 'rmap'}[len(key) + 1] }"
        name = name.replace(" ", "")
        text = make(name)
        _write_text(mapdir / name, text)
        written.append(str(mapdir / name))
        all_mappings.append(name)
        prev_text[key] = (_body(draft), name)
        return name

    pmaps = []
    for n, ctx in enumerate(contexts, start=1):
        by_inst: dict[str, dict[str, list[CacheRef]]] = {}
        for r in ctx.references:
            by_inst.setdefault(r.instrument.lower(), {}).setdefault(r.reftype.lower(), []).append(r)
            old = models.get(r.filename)
            if old is not None and old is not r and (old.model is not r.model):
                if old.match != r.match or old.useafter != r.useafter:
                    raise CrdsCacheError(f"{r.filename} is used with two different selections")
            models.setdefault(r.filename, r)
        imaps = {}
        for inst in sorted(by_inst):
            # every JWST reference type, N/A unless this context has references of it (as a
            # real context answers, so jwst's prefetch and `crds bestrefs` run unchanged)
            rmaps = dict.fromkeys(jwst_reftypes(inst), "N/A")
            for rt in sorted(by_inst[inst]):
                refs = by_inst[inst][rt]
                if all(r.filename.upper() == "N/A" and not r.match for r in refs):
                    rmaps[rt] = "N/A"  # the reftype does not apply to the instrument at all
                    continue
                rmaps[rt] = emit((inst, rt), lambda nm, i=inst, t=rt, rr=refs:
                                 rmap_text(nm, i, t, rr))
            imaps[inst.upper()] = emit((inst,), lambda nm, i=inst, rm=rmaps: imap_text(nm, i, rm))
        pname = f"jwst_{n:04d}.pmap"
        text = pmap_text(pname, imaps)
        _write_text(mapdir / pname, text)
        written.append(str(mapdir / pname))
        all_mappings.append(pname)
        pmaps.append(pname)
    for fname, r in sorted(models.items()):
        if fname.upper() == "N/A":  # "does not apply" in an rmap: no file
            continue
        path = root / "references" / OBSERVATORY / r.instrument.lower() / fname
        if r.model is None:
            if not path.exists():
                raise CrdsCacheError(f"{fname} has no model to write and is not in {path.parent}")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        write_reference(r.model, path)
        written.append(str(path))
    cfg = root / "config" / OBSERVATORY
    _write_text(cfg / "server_config", _server_config(pmaps[-1], all_mappings))
    _write_text(cfg / "ref_cache_subdir_mode", "instrument\n")
    written += [str(cfg / "server_config"), str(cfg / "ref_cache_subdir_mode")]
    return written


def contexts_from_program(program: Any) -> list[ContextSpec]:
    """The ContextSpecs of a simulated ``transforms.sim.program.Program``."""
    return contexts_from_refs(program.contexts)


def contexts_from_refs(contexts: Iterable[Iterable[Any]]) -> list[ContextSpec]:
    """The ContextSpecs of per-context ``transforms.sim.program.RefFile`` lists."""
    out = []
    for refs in contexts:
        out.append(ContextSpec(tuple(
            CacheRef(r.reftype, r.instrument, r.filename, dict(r.match), r.useafter, r.model)
            for r in refs)))
    return out


def _selection(r: CacheRef) -> tuple:
    """What an rmap selects a reference on: instrument, reftype, the match without its N/A
    values (an absent key is N/A in the rmap) and the UseAfter date."""
    match = tuple(sorted((k, str(v)) for k, v in r.match.items() if str(v).upper() != "N/A"))
    return (r.instrument.lower(), r.reftype.lower(), match, _useafter(r.useafter))


_SERIAL = re.compile(r"^(?P<stem>.*_)(?P<n>\d{4})(?P<ext>\.[A-Za-z0-9]+)$")


def merge_contexts(parts: Sequence[Sequence[ContextSpec]]
                   ) -> tuple[list[ContextSpec], list[dict[str, str]]]:
    """One cache from programs simulated apart: context i is the union of every part's
    context i. Returns the merged contexts and, per part, the file names it renamed.

    - A file name two parts both use for different content (or another selection) is renamed
      in the later part to the next free serial of its ``jwst_<instr>_<reftype>_NNNN`` stem.
    - A reference with the same content and the same selection as an earlier part's (e.g. the
      MIRI RSCD of imaging and LRS) is that earlier file.
    - Two different contents for the same selection (instrument, reftype, match, UseAfter) in
      one context are refused: CRDS could not tell them apart; give them a selector that does
      (a subarray, readout pattern or exposure type the rmap selects on).
    """
    from transforms.sim.all_program import same_content

    if not parts:
        raise CrdsCacheError("merge_contexts needs at least one part")
    ncontexts = {len(p) for p in parts}
    if len(ncontexts) != 1:
        raise CrdsCacheError(f"the parts have different numbers of contexts {sorted(ncontexts)}")
    used: set[str] = {r.filename for p in parts for c in p for r in c.references}
    serials: dict[tuple[str, str], int] = {}
    for name in used:
        m = _SERIAL.match(name)
        if m:
            key = (m["stem"], m["ext"])
            serials[key] = max(serials.get(key, 0), int(m["n"]))
    taken: dict[str, CacheRef] = {}  # merged file name -> its reference
    by_sel: dict[tuple, list[CacheRef]] = {}
    renames: list[dict[str, str]] = []
    for part in parts:
        rn: dict[str, str] = {}
        seen: dict[str, CacheRef] = {}
        for ctx in part:
            for r in ctx.references:
                if r.filename.upper() == "N/A" or r.filename in seen:
                    continue
                seen[r.filename] = r
                sel = _selection(r)
                twin = next((t for t in by_sel.get(sel, ()) if same_content(t.model, r.model)),
                            None)
                if twin is not None:  # the same file already: share it
                    if twin.filename != r.filename:
                        rn[r.filename] = twin.filename
                    continue
                name = r.filename
                if name in taken:
                    m = _SERIAL.match(name)
                    if not m:
                        raise CrdsCacheError(f"{name} is used by two parts with different "
                                             "content and has no serial to renumber")
                    key = (m["stem"], m["ext"])
                    serials[key] = serials.get(key, 0) + 1
                    name = f"{m['stem']}{serials[key]:04d}{m['ext']}"
                    rn[r.filename] = name
                merged = replace(r, filename=name)
                taken[name] = merged
                by_sel.setdefault(sel, []).append(merged)
        renames.append(rn)
    contexts = []
    for i in range(next(iter(ncontexts))):
        refs: list[CacheRef] = []
        names: dict[tuple, str] = {}
        have: set[tuple] = set()
        for part, rn in zip(parts, renames):
            for r in part[i].references:
                fname = rn.get(r.filename, r.filename)
                m = taken.get(fname, r) if fname.upper() != "N/A" else r
                sel = _selection(m)
                if (fname, sel) in have:
                    continue
                other = names.get(sel)
                if other is not None and other != fname:
                    raise CrdsCacheError(
                        f"{m.instrument} {m.reftype}: {other} and {fname} both match "
                        f"{dict(sel[2]) or '(any)'} from {sel[3]} with different content; give "
                        "them a selector of the rmap that tells their exposures apart")
                names[sel] = fname
                have.add((fname, sel))
                refs.append(m)
        contexts.append(ContextSpec(tuple(refs)))
    return contexts, renames


def rename_expected(expected: Mapping[str, Mapping[str, str]], renames: Mapping[str, str]
                    ) -> dict[str, dict[str, str]]:
    """An ``expected`` table (exposure -> reftype -> file) with a part's renamed files."""
    return {ex: {rt: renames.get(f, f) for rt, f in sel.items()} for ex, sel in expected.items()}


def merged_program_contexts(program: Any
                            ) -> tuple[list[ContextSpec], dict[str, dict[str, dict[str, str]]]]:
    """One cache's ContextSpecs for a composed program
    (``transforms.sim.all_program.AllProgram``: its parts' references merged by
    ``merge_contexts``) and the file CRDS must select per context name, exposure and reftype."""
    contexts, renames = merge_contexts([contexts_from_refs(c) for c in program.parts])
    expected: dict[str, dict[str, dict[str, str]]] = {}
    for part_expected, rn in zip(program.expected, renames):
        for i, exp in enumerate(part_expected):
            expected.setdefault(f"jwst_{i + 1:04d}.pmap", {}).update(rename_expected(exp, rn))
    return contexts, expected


def write_reference_file(model: Any, path: str | os.PathLike) -> Path:
    """``store.fits.write_reference`` (``store.steppars.write_step_pars`` for a pars-* type's
    ``StepPars``), with the optics a distortion file needs built from the
    model's ``distortion.*`` meta by transforms (store knows bytes, not optics)."""
    from store.fits import write_reference
    from store.steppars import StepPars, write_step_pars
    from transforms.wcs import distortion_model

    if isinstance(model, StepPars):  # a pars-<step> reference: jwst's ASDF step parameters
        return write_step_pars(model, path)

    if model.get("calops.ifu_reference"):  # IFU references: stdatamodels' layouts
        from store import ifu_references
        from transforms.ifu import reference_tree

        return ifu_references.write(model, path, tree=reference_tree(model))
    astro = None
    if model.kind == "ref.distortion" and "asdf_model" not in model.arrays:
        astro = distortion_model(model)
    return write_reference(model, path, astropy_model=astro)
