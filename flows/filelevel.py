"""File-level runs: one step or one stage on files, as a jwst user runs ``strun``.

``calops step STEP FILE...`` and ``calops stage STAGE FILE|ASN.json...`` need no workspace:

- **Build.** Without ``--home``, a ``file-level`` pseudo build: every step at the registry's
  newest version with JWST's defaults (``CO_BUILD = "file-level"`` in the files). With
  ``--home``, the workspace's operations build (or ``--build``).
- **References** come from CRDS: the cache named by ``--crds``, else the workspace's (with
  ``--home``), else ``$CRDS_PATH``; the context from ``--context``, else the build's pin (in a
  workspace, the newest for a 'latest' build, as the runner), else ``$CRDS_CONTEXT``, else the
  cache's operational context (``server_config``), else its newest. Any reference type
  can be overridden (``--override-flat my_flat.fits``, ``--override_flat=...``,
  ``--steps.flat_field.override_flat=...``), or set to ``N/A``. As in jwst, a step whose
  reference is N/A is skipped.
- **Parameters**, lowest to highest precedence as jwst's stpipe applies them: the build's (JWST
  defaults), the CRDS ``pars-<step>`` references of the context (for a stage: each step's, then
  the ``pars-<stage>pipeline``'s ``steps`` section), a ``--config`` file (jwst's ASDF step
  configuration, or TOML), then the command line (``--param NAME=VALUE``, for a stage
  ``--param STEP.NAME=VALUE`` or jwst's ``--steps.STEP.NAME=VALUE``; ``calops step`` also takes
  jwst's ``--NAME=VALUE``). stpipe's own parameters (``save_results``, ``output_dir``...) are
  ignored; ``skip`` is honoured.
- **Outputs** are JWST-named files in ``-o DIR`` (default ``.``): a stage writes its products
  (``_rate``, ``_rateints``, ``_cal``, ``_i2d``, ``_cat.ecsv``, spectra), a step its result with
  jwst's suffix (``_flatfieldstep``). Their headers carry the provenance: CAL_VER, CO_BUILD,
  CRDS_CTX, R_* (``crds://<file>`` for CRDS's choice, the file name for an override, N/A), S_*,
  CO_PID/CO_RKEY (the product id and recipe key, computed as a workspace would), and CO_NOTE
  saying what was overridden and where each changed parameter came from.
- **Workspace.** With ``--home`` the run is also recorded: inputs stored (an uncal is ingested),
  recipes, products and realisations in the catalog. A run that uses the build as it is goes
  under the build (the same recipes ``calops run`` makes: they are hits when already made); a
  customised one (overrides, parameters, config, pars-* files) goes under the development build
  ``file-level`` of that workspace, created from the build on first use, so the build's own
  products and exports stay the build's.

Inputs: an uncal (detector1), a rate (image2/spec2), cal files or a jwst association JSON
(image3/spec3: every ``science`` member of each product, and for spec3 its ``background``
members for master_background; names from the product's ``name``). A level-2 association
(spec2) gives one exposure per science member, with the product's ``background`` (nods) and
``imprint`` (leakcal) members, as jwst's Spec2Pipeline: the member types a stage reads are
declared by the stage (``Stage.asn_exptypes``), the members are read under the roles the
workspace runner gives them (``Stage.member_reads``) and the chain is the runner's
(``flows.stages.chain_of``), so the cal is the one ``calops run`` makes with the same members.
Member types a stage does not read (spec2's ``selfcal``, ``sourcecat``, ``target_acquisition``:
steps calops does not have) are named in a warning; a missing member file stops the command
before anything runs.
"""

from __future__ import annotations

import ast
import dataclasses
import glob
import json
import os
import tomllib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalogs import builds as buildlib
from catalogs import crds_resolve
from catalogs.recipes import StageOutcome, StageRecipe, StepRecipe, output_key
from store import fits
from store.errors import CalopsError
from transforms import registry
from transforms.model import DataModel, Handoff
from transforms.registry import PlannedStep

FILE_LEVEL = "file-level"
NA = crds_resolve.NOT_APPLICABLE
POINTING_PREFIXES = ("wcsinfo.", "pointing.", "velocity_aberration.", "ephemeris.")
# stpipe's parameters of every step: how to run and save, not what to compute (ignored here;
# ``skip`` is honoured)
STPIPE_GENERIC = frozenset({
    "pre_hooks", "post_hooks", "output_file", "output_dir", "output_ext", "output_use_model",
    "output_use_index", "save_results", "suffix", "search_output_file", "input_dir",
    "save_calibrated_ramp", "save_bsub", "save_opt", "class", "name", "steps",
})


class FileLevelError(CalopsError):
    """A file-level run that cannot start as asked (the message says what to do)."""


# --- names -------------------------------------------------------------------------------------

def _squash(text: str) -> str:
    return text.lower().replace("_", "").replace("-", "")


def step_name(text: str) -> str:
    """A calops step name from what a jwst user types: ``flat_field``, ``FlatFieldStep`` or
    ``jwst.flatfield.FlatFieldStep``."""
    key = _squash(str(text).rsplit(".", 1)[-1])
    if key.endswith("step") and key != "step":
        key = key[:-4]
    for name in registry.steps():
        if _squash(name) == key:
            return name
    raise FileLevelError(f"unknown step {text!r}; steps: {', '.join(sorted(registry.steps()))}")


def stage_name(text: str) -> str:
    """A calops stage from ``detector1``, ``calwebb_detector1`` or ``Detector1Pipeline``."""
    key = _squash(str(text).rsplit(".", 1)[-1]).replace("calwebb", "").replace("pipeline", "")
    for name in registry.stage_names():
        if _squash(name) == key:
            return name
    raise FileLevelError(f"unknown stage {text!r}; stages: {', '.join(registry.stage_names())}")


def pars_reftype(step: str) -> str:
    """jwst's CRDS reference type of a step's parameters: ``pars-<class name lower>``."""
    return f"pars-{_squash(step)}step"


def pipeline_pars_reftype(stage: str) -> str:
    return f"pars-{_squash(stage)}pipeline"


def step_suffix(step: str) -> str:
    """The file suffix jwst gives a step run on its own (its class name, lower case)."""
    return f"{_squash(step)}step"


# --- the command line ----------------------------------------------------------------------------

@dataclass
class Options:
    """What a ``calops step``/``calops stage`` command line asked for."""

    files: list[str] = field(default_factory=list)
    outdir: str = "."
    config: str | None = None
    crds: str | None = None
    context: str | None = None
    home: str | None = None
    build: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)  # reftype -> path or N/A
    params: dict[str, dict[str, str]] = field(default_factory=dict)  # step -> name -> text
    loose: list[tuple[str, str]] = field(default_factory=list)  # --NAME=VALUE (step only)
    help: bool = False


_VALUED = {"-o": "outdir", "--output-dir": "outdir", "--output_dir": "outdir",
           "--config": "config", "--crds": "crds", "--context": "context", "--home": "home",
           "--build": "build", "-b": "build"}


def parse_args(argv: Sequence[str], home: str | None = None) -> Options:
    """Options and files in any order, jwst's spellings included (``--override_flat=F``,
    ``--steps.jump.rejection_threshold=5``, ``--output_dir=D``)."""
    opts = Options(home=home)
    args = list(argv)
    i = 0

    def value(flag: str, inline: str | None) -> str:
        nonlocal i
        if inline is not None:
            return inline
        if i + 1 >= len(args):
            raise FileLevelError(f"{flag} needs a value")
        i += 1
        return args[i]

    while i < len(args):
        tok = args[i]
        if tok in ("-h", "--help"):
            opts.help = True
        elif tok == "--":
            opts.files += args[i + 1:]
            break
        elif tok.startswith("-") and tok != "-":
            flag, eq, inline = tok.partition("=")
            inline_v = inline if eq else None
            if flag in _VALUED:
                setattr(opts, _VALUED[flag], value(flag, inline_v))
            elif flag == "--param" or flag == "-p":
                name, eq2, v = value(flag, inline_v).partition("=")
                if not eq2:
                    raise FileLevelError(f"--param takes NAME=VALUE (STEP.NAME=VALUE for a "
                                         f"stage), got {name!r}")
                step, dot, pname = name.rpartition(".")
                opts.params.setdefault(step if dot else "", {})[pname] = v
            elif flag.startswith(("--override-", "--override_")):
                opts.overrides[flag[11:].lower()] = value(flag, inline_v)
            elif flag.startswith("--steps."):
                parts = flag[8:].split(".")
                if len(parts) != 2:
                    raise FileLevelError(f"{flag}: use --steps.STEP.NAME=VALUE")
                step, pname = parts
                v = value(flag, inline_v)
                if pname.startswith("override_"):
                    opts.overrides[pname[9:].lower()] = v
                else:
                    opts.params.setdefault(step, {})[pname] = v
            elif flag.startswith("--") and len(flag) > 2:
                opts.loose.append((flag[2:].replace("-", "_"), value(flag, inline_v)))
            else:
                raise FileLevelError(f"unknown option {tok}")
        else:
            opts.files.append(tok)
        i += 1
    for rt, v in list(opts.overrides.items()):
        if str(v).strip().upper() == "N/A":
            opts.overrides[rt] = NA
        else:
            p = Path(v).expanduser()
            if not p.is_file():
                raise FileLevelError(f"--override-{rt}: {v} is not a file (give a reference "
                                     "file, or N/A to skip what needs it)")
            opts.overrides[rt] = str(p.resolve())
    return opts


# --- inputs --------------------------------------------------------------------------------------

@dataclass
class Subject:
    """One exposure (stage 1/2) or one association product (stage 3) to run."""

    name: str  # exposure name (file name without _<suffix>.fits) or association product name
    files: list[str]
    models: list[DataModel]
    association: dict[str, Any] | None = None
    # an exposure stage's level-2 association members by role (spec2: ``background``,
    # ``imprint``): (file, model) each, from the association file's ``exptype``
    members: dict[str, list[tuple[str, DataModel]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # members not read, and why


def expand(patterns: Sequence[str]) -> list[str]:
    out: list[str] = []
    for pat in patterns:
        hits = sorted(glob.glob(os.path.expanduser(pat)))
        if not hits:
            raise FileLevelError(f"no file matches {pat}")
        out += hits
    return out


# jwst's product suffixes that name a file's kind, not its exposure (jwst.lib.suffix has them all;
# a step's own suffix ends in "step")
KNOWN_SUFFIXES = frozenset({
    "uncal", "ramp", "rate", "rateints", "trapsfilled", "cal", "calints", "crf", "crfints",
    "i2d", "s2d", "s3d", "x1d", "x1dints", "c1d", "cat", "segm", "asn", "bsub", "bsubints",
    "psfstack", "psfalign", "psfsub", "ami", "amiavg", "aminorm", "whtlt", "phot", "pool"})


def exposure_stem(path: str) -> str:
    """A file's name without directory, extension and its jwst suffix (``_uncal``, ``_rate``,
    ``_flatfieldstep``...): what jwst names its outputs after."""
    base = Path(path).name
    for ext in (".fits", ".ecsv", ".asdf", ".json"):
        if base.endswith(ext):
            base = base[: -len(ext)]
            break
    stem, sep, suffix = base.rpartition("_")
    if not sep or not (suffix in KNOWN_SUFFIXES or suffix.endswith(("step", "pipeline"))):
        return base
    head, sep2, index = stem.rpartition("_")  # jwst's <name>_<index>_<suffix> (_0_rampfitstep)
    return head if sep2 and index.isdigit() and len(index) < 3 else stem


def _header_meta(path: str, prefixes: tuple[str, ...]) -> dict[str, Any]:
    """Keywords of the table with these meta prefixes, straight from a file's headers (an
    exported calops rate carries its pointing there, outside its stored content)."""
    from astropy.io import fits as afits

    from store.keywords import product_table

    out: dict[str, Any] = {}
    with afits.open(path, memmap=False) as hdul:
        prim = hdul[0].header
        sci = hdul["SCI"].header if "SCI" in hdul else None
        for key, kw in product_table().items():
            if not key.startswith(prefixes):
                continue
            hdr = sci if (kw.hdu == "SCI" and sci is not None and kw.keyword in sci) else prim
            if kw.keyword not in hdr:
                continue
            v = hdr[kw.keyword]
            try:
                out[key] = kw.type(v) if not isinstance(v, bool) or kw.type is bool else v
            except (TypeError, ValueError):
                continue
    return out


def read_input(path: str) -> DataModel:
    """An uncal, ramp, rate, rateints, cal or i2d file (calops's or jwst's) as a DataModel,
    with the pointing keywords of its headers."""
    from astropy.io import fits as afits

    if path.endswith(".ecsv"):
        return fits.read_product(path)
    try:
        datamodl = str(afits.getheader(path, 0).get("DATAMODL", ""))
    except OSError as exc:
        raise FileLevelError(f"{path}: not a FITS file ({exc})") from None
    if datamodl == "Level1bModel" or Path(path).name.endswith("_uncal.fits"):
        model = fits.read_uncal(path)
    else:
        model = fits.read_product(path)
    extra = {k: v for k, v in _header_meta(path, POINTING_PREFIXES).items()
             if k not in model.meta}
    return model.replace(meta=extra) if extra else model


def read_association(path: str) -> dict[str, Any]:
    """A jwst association (``_asn.json``): ``products`` with ``name`` and ``members`` of
    ``expname`` (relative to the association's directory) and ``exptype``."""
    try:
        asn = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise FileLevelError(f"{path}: not a readable association JSON ({exc})") from None
    products = asn.get("products") if isinstance(asn, dict) else None
    if not isinstance(products, list) or not products:
        raise FileLevelError(f"{path}: an association needs a non-empty 'products' list "
                             "(jwst's _asn.json layout)")
    for p in products:
        if not isinstance(p, dict) or not isinstance(p.get("members"), list):
            raise FileLevelError(f"{path}: every product needs 'name' and 'members'")
    return asn


def first_input(files: Sequence[str]) -> str:
    """The first data file of the inputs (an association's first science member)."""
    f = files[0]
    if not f.endswith(".json"):
        return f
    for p in read_association(f)["products"]:
        for m in p["members"]:
            if str(m.get("exptype", "science")).lower() == "science":
                mp = Path(str(m["expname"]))
                return str(mp if mp.is_absolute() else Path(f).parent / mp)
    raise FileLevelError(f"{f}: no science member")


def subjects_of(stage: registry.Stage | None, files: Sequence[str],
                assoc: bool | None = None) -> list[Subject]:
    """The subjects the inputs make: for an association stage (``assoc``), an association
    JSON gives one per product (its science members, and the other member types the stage
    reads: spec3's ``background``) and other files are associated by the stage's own rule
    (JWST's); otherwise every file (every science member) is one exposure, with the product's
    members of the types the stage reads (spec2's ``background`` and ``imprint``, as jwst's
    Spec2Pipeline). Every file is checked before anything runs: a missing member stops the
    command, naming it."""
    if assoc is None:
        assoc = stage is not None and stage.subject == "association"
    wanted = tuple(stage.asn_exptypes) if stage is not None else ("science",)
    asn_files = [f for f in files if f.endswith(".json")]
    plain = [f for f in files if not f.endswith(".json")]
    out: list[Subject] = []
    cache: dict[str, DataModel] = {}  # a member of several products is read once

    def load(path: str) -> DataModel:
        if path not in cache:
            cache[path] = read_input(path)
        return cache[path]

    for f in asn_files:
        asn = read_association(f)
        base = Path(f).parent
        for p in asn["products"]:
            by_type: dict[str, list[str]] = {}
            notes = []
            for m in p["members"]:
                t = str(m.get("exptype", "science")).lower()
                if t not in wanted:
                    notes.append(f"{Path(f).name}: {t} member {m.get('expname')} not used "
                                 f"(calops {stage.name if stage else 'this step'} reads "
                                 f"{', '.join(wanted)} members)")
                    continue
                mp = Path(str(m["expname"]))
                mp = mp if mp.is_absolute() else base / mp
                if not mp.is_file():
                    raise FileLevelError(
                        f"{f}: {t} member {m['expname']} is not at {mp}; put it there (members "
                        "are relative to the association file) or remove it from the "
                        "association")
                by_type.setdefault(t, []).append(str(mp))
            if not by_type.get("science"):
                raise FileLevelError(f"{f}: product {p.get('name')!r} has no science member")
            paths = by_type.pop("science")
            name = str(p.get("name") or exposure_stem(paths[0]))
            if assoc:
                # jwst marks a member's type in the model (asn.exptype); calops's association
                # chains tell a background member by BKGDTARG (master_background)
                extra = [(x, t) for t, xs in by_type.items() for x in xs]
                models = [load(x) for x in paths] + [
                    _as_background(load(x)) if t == "background" else load(x)
                    for x, t in extra]
                out.append(Subject(name, paths + [x for x, _ in extra], models,
                                   {**asn, "products": [p]}, notes=notes))
            else:  # a stage-2 association: each science member is its own exposure
                for x in paths:
                    members = {t: [(y, load(y)) for y in xs if y != x]
                               for t, xs in by_type.items()}
                    out.append(Subject(exposure_stem(x), [x], [load(x)], None,
                                       {t: ms for t, ms in members.items() if ms}, notes))
    models = [(f, read_input(f)) for f in plain]
    if assoc and stage is not None and models:
        metas = [{**m.meta, "filename": exposure_stem(f)} for f, m in models]
        asns = stage.associate([x for x in metas if stage.calibrates(x)])
        if not asns:
            raise FileLevelError(f"no {stage.name} association can be formed from "
                                 f"{len(models)} file(s) (exposure types "
                                 f"{sorted({str(m.get('exposure.type')) for m in metas})}); "
                                 "give an association JSON")
        by_exp = {exposure_stem(f): (f, m) for f, m in models}
        for a in asns:
            for p in a["products"]:
                exps = [str(m["expname"]) for m in p["members"]]
                out.append(Subject(str(p["name"]), [by_exp[e][0] for e in exps],
                                   [by_exp[e][1] for e in exps], {**a, "products": [p]}))
    else:
        out += [Subject(exposure_stem(f), [f], [m], None) for f, m in models]
    if not out:
        raise FileLevelError("no input files given")
    return out


def _as_background(model: DataModel) -> DataModel:
    """A member the association file calls ``background``, as calops's chains know one."""
    from transforms.spec3.master_background import is_background

    return model if is_background(model) else model.replace(
        meta={"observation.bkgdtarg": True})


# --- build and CRDS ------------------------------------------------------------------------------

def calops_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("calops")
    except PackageNotFoundError:
        return "0+unknown"


def pseudo_build() -> buildlib.Build:
    """The ``file-level`` build: the registry's newest version of every step, JWST defaults."""
    return buildlib.Build(name=FILE_LEVEL, status="development",
                          pipeline_version=f"calops-{calops_version()}", sdp_version="",
                          crds_context="latest",
                          description="file-level runs: newest step versions, JWST defaults")


def crds_setup(opts: Options, build: buildlib.Build, ws: Any = None) -> tuple[str, str]:
    """(cache path, context) for a file-level run: ``--crds``, else the workspace's cache with
    ``--home``, else ``$CRDS_PATH``; ``--context``, else the build's pin, else (in a workspace)
    the newest context as the runner picks it, else ``$CRDS_CONTEXT``, the cache's operational
    context (``config/jwst/server_config``) or its newest."""
    path = opts.crds or (ws.crds_path if ws is not None else os.environ.get("CRDS_PATH"))
    if not path:
        raise FileLevelError("no CRDS cache: give --crds PATH or set CRDS_PATH (a real JWST "
                             "cache or one `calops simulate` wrote)")
    root = Path(path).expanduser()
    mapdir = root / "mappings" / "jwst"
    have = sorted(p.name for p in mapdir.glob("*.pmap")) if mapdir.is_dir() else []
    if not have:
        raise FileLevelError(f"{root} is not a CRDS cache with JWST contexts (no "
                             f"mappings/jwst/*.pmap)")
    ctx = opts.context
    if not ctx and build.fixed_context:
        ctx = build.crds_context
    if not ctx and ws is not None:
        ctx = buildlib.resolve_context(build, have)
    if not ctx:
        ctx = os.environ.get("CRDS_CONTEXT")
    if not ctx:
        cfg = root / "config" / "jwst" / "server_config"
        try:
            ctx = ast.literal_eval(cfg.read_text()).get("operational_context")
        except (OSError, ValueError, SyntaxError, AttributeError):
            ctx = None
        ctx = ctx if ctx in have else have[-1]
    if ctx not in have:
        raise FileLevelError(f"CRDS context {ctx} is not in {root} (it has {', '.join(have)})")
    return str(root.resolve()), ctx


# --- parameters ----------------------------------------------------------------------------------

@dataclass
class Layer:
    """Parameters from one source, by calops step name."""

    source: str
    steps: dict[str, dict[str, Any]]
    strict: bool = False  # the command line: unknown names are errors
    strings: bool = False  # values are text to convert to each parameter's type


def _hints(spec: registry.StepSpec) -> dict[str, Any]:
    try:
        return typing.get_type_hints(spec.params)
    except Exception:  # noqa: BLE001 - fall back on the defaults' types
        return {}


def _options(hint: Any) -> tuple[Any, ...]:
    """The alternatives of a ``X | None`` hint (just ``(hint,)`` otherwise)."""
    import types

    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _convert(text: str, hint: Any, default: Any) -> Any:
    """A command-line value as the parameter's type (jwst's spellings: True/False, None)."""
    t = str(text).strip()
    options = _options(hint)
    if t.lower() in ("none", "null") and (type(None) in options or default is None):
        return None
    for opt in options:
        if opt is type(None):
            continue
        base = typing.get_origin(opt) or opt
        if base is bool:
            if t.lower() in ("true", "t", "yes", "1"):
                return True
            if t.lower() in ("false", "f", "no", "0"):
                return False
        elif base is int:
            try:
                return int(t)
            except ValueError:
                continue
        elif base is float:
            try:
                return float(t)
            except ValueError:
                continue
        elif base in (tuple, list):
            try:
                v = ast.literal_eval(t if t.startswith(("(", "[")) else f"({t},)")
                return base(v)
            except (ValueError, SyntaxError):
                continue
        elif base is str:
            return t
    try:
        return ast.literal_eval(t)
    except (ValueError, SyntaxError):
        return t


def _typed(value: Any, hint: Any, default: Any) -> Any:
    """A config/pars value as the parameter's type: an int where a float is declared becomes
    a float (5 and 5.0 must make the same recipe key); lists become tuples where declared."""
    options = _options(hint)
    kinds = {typing.get_origin(o) or o for o in options}
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and float in kinds and int not in kinds:
        return float(value)
    if isinstance(value, list) and tuple in kinds:
        return tuple(tuple(x) if isinstance(x, list) else x for x in value)
    if isinstance(value, str) and str not in kinds and value.strip().lower() in ("none", ""):
        return None if (type(None) in options or default is None) else value
    return value


def apply_layers(planned: Sequence[PlannedStep], layers: Sequence[Layer]
                 ) -> tuple[list[PlannedStep], dict[str, dict[str, str]], list[str]]:
    """The plan with every layer's parameters applied in order; where each changed value came
    from (step -> parameter -> source) and warnings about what was ignored."""
    by_name = {p.spec.name: p for p in planned}
    values: dict[str, dict[str, Any]] = {n: {} for n in by_name}
    skips: dict[str, bool] = {n: p.skip for n, p in by_name.items()}
    sources: dict[str, dict[str, str]] = {n: {} for n in by_name}
    warnings: list[str] = []
    for layer in layers:
        for step, pars in layer.steps.items():
            if step not in by_name:
                msg = f"{layer.source}: step {step} is not part of this run; its parameters " \
                      f"are ignored"
                if layer.strict:
                    raise FileLevelError(msg.replace("are ignored", "cannot apply") +
                                         f" (steps: {', '.join(by_name)})")
                if any(k != "skip" for k in pars):
                    warnings.append(msg)
                continue
            spec = by_name[step].spec
            hints = _hints(spec)
            fields = {f.name: f for f in dataclasses.fields(spec.params)}
            for name, v in pars.items():
                if name == "skip":
                    skips[step] = _convert(v, bool, False) if layer.strings else bool(v)
                    sources[step]["skip"] = layer.source
                    continue
                if name.startswith("override_"):
                    continue  # handled with the references
                if name in STPIPE_GENERIC:
                    continue
                if name not in fields:
                    msg = (f"{layer.source}: step {step} {spec.version} has no parameter "
                           f"{name!r}")
                    if layer.strict:
                        raise FileLevelError(f"{msg}; it has: {', '.join(sorted(fields))}")
                    warnings.append(msg + " (ignored)")
                    continue
                default = fields[name].default
                v = (_convert(v, hints.get(name, type(default)), default) if layer.strings
                     else _typed(v, hints.get(name, type(default)), default))
                values[step][name] = v
                sources[step][name] = layer.source
    out = []
    for p in planned:
        base = dataclasses.asdict(p.params) if dataclasses.is_dataclass(p.params) else dict(p.params)
        changed = {k: v for k, v in values[p.spec.name].items() if base.get(k) != v}
        sources[p.spec.name] = {k: s for k, s in sources[p.spec.name].items()
                                if k in changed or (k == "skip" and skips[p.spec.name] != p.skip)}
        try:
            params = p.spec.make_params({**base, **values[p.spec.name]})
        except registry.UnknownStep as exc:
            raise FileLevelError(str(exc)) from None
        out.append(dataclasses.replace(p, params=params, skip=skips[p.spec.name]))
    return out, {k: v for k, v in sources.items() if v}, warnings


def config_layer(path: str, steps: Sequence[str], single: str | None) -> Layer:
    """A ``--config`` file: jwst's ASDF step configuration (``class``, ``name``,
    ``parameters``, a pipeline's ``steps``), or TOML (a step's parameters at the top or under
    ``[parameters]``; a stage's under ``[steps.<step>]``)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileLevelError(f"--config {path}: no such file")
    source = f"config {p.name}"
    out: dict[str, dict[str, Any]] = {}
    if p.suffix.lower() == ".toml":
        try:
            raw = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise FileLevelError(f"{path}: not valid TOML ({exc})") from None
        for name, pars in (raw.get("steps") or {}).items():
            out.setdefault(_step_or_keep(name), {}).update(pars)
        top = {k: v for k, v in raw.items() if k not in ("steps", "parameters", "class", "name")
               and not isinstance(v, dict)}
        top.update(raw.get("parameters") or {})
        if top and single:
            out.setdefault(single, {}).update(top)
        return Layer(source, out)
    from store.steppars import read_step_pars

    pars = read_step_pars(p)
    if pars.steps:
        for name, sp in pars.steps.items():
            out.setdefault(_step_or_keep(name), {}).update(sp.parameters)
    if single:
        out.setdefault(single, {}).update(pars.parameters)
    return Layer(source, out)


def _step_or_keep(name: str) -> str:
    try:
        return step_name(name)
    except FileLevelError:
        return name  # a jwst step calops has not (reported as ignored)


def crds_pars_layers(steps: Sequence[str], stage: str | None, meta: Mapping[str, Any],
                     context: str, crds_path: str) -> tuple[list[Layer], dict[str, str]]:
    """The context's pars-* references for these steps (each step's, then the stage pipeline's
    ``steps`` section, as stpipe merges them): layers, and reftype -> file used."""
    from store.steppars import read_step_pars

    layers: list[Layer] = []
    used: dict[str, str] = {}

    def lookup(reftype: str) -> str | None:
        try:
            path = crds_resolve.resolve(meta, [reftype], context, crds_path).get(reftype)
        except crds_resolve.CrdsResolutionError:
            return None  # a context without the type: no parameters from it (as stpipe)
        return None if not path or path == NA else path

    for s in steps:
        path = lookup(pars_reftype(s))
        if path:
            used[pars_reftype(s)] = path
            layers.append(Layer(f"CRDS {Path(path).name}",
                                {s: dict(read_step_pars(path).parameters)}))
    if stage is not None:
        path = lookup(pipeline_pars_reftype(stage))
        if path:
            used[pipeline_pars_reftype(stage)] = path
            sp = read_step_pars(path)
            layers.append(Layer(f"CRDS {Path(path).name}",
                                {_step_or_keep(n): dict(x.parameters)
                                 for n, x in sp.steps.items()}))
    return layers, used


def cmdline_layer(opts: Options, single: str | None) -> Layer:
    steps: dict[str, dict[str, Any]] = {}
    for step, pars in opts.params.items():
        if not step:
            if not single:
                raise FileLevelError(f"--param {next(iter(pars))}=...: name the step "
                                     "(--param STEP.NAME=VALUE) in a stage run")
            target = single
        else:
            target = step_name(step)
        steps.setdefault(target, {}).update(pars)
    if opts.loose:
        if not single:
            bad = ", ".join(f"--{k}" for k, _ in opts.loose)
            raise FileLevelError(f"unknown option(s) {bad}; in a stage run give step "
                                 "parameters as --steps.STEP.NAME=VALUE or --param STEP.NAME=VALUE")
        steps.setdefault(single, {}).update(dict(opts.loose))
    return Layer("command line", steps, strict=True, strings=True)


# --- references ----------------------------------------------------------------------------------

def choose_references(planned: Sequence[PlannedStep], meta: Mapping[str, Any], context: str,
                      crds_path: str, overrides: Mapping[str, str]
                      ) -> tuple[list[PlannedStep], dict[str, str], list[str]]:
    """Reference paths (or N/A) per reftype for the steps that run: overrides first, CRDS for
    the rest. A step whose required reference is N/A is skipped, as jwst does. Returns the
    plan (skips applied), the paths, and notes."""
    paths: dict[str, str] = {}
    notes: list[str] = []
    out = []
    used: set[str] = set()
    for p in planned:
        if p.skip:
            out.append(p)
            continue
        need, opt = p.spec.reftypes, p.spec.optional_reftypes
        used.update(need + opt)
        for rt in need + opt:
            if rt in paths:
                continue
            if rt in overrides:
                paths[rt] = overrides[rt]
                continue
            try:
                paths.update(crds_resolve.resolve(meta, [rt], context, crds_path))
            except crds_resolve.CrdsResolutionError as exc:
                if rt in need:
                    raise FileLevelError(f"{p.spec.name} needs a {rt} reference: {exc} "
                                         f"(or give --override-{rt} FILE, or N/A to skip "
                                         f"{p.spec.name})") from None
        missing = [rt for rt in need if paths.get(rt) == NA]
        if missing:
            notes.append(f"{p.spec.name} skipped: {', '.join(missing)} is N/A")
            out.append(dataclasses.replace(p, skip=True))
        else:
            out.append(p)
    unused = sorted(set(overrides) - used)
    if unused:
        notes.append(f"override(s) of {', '.join(unused)} unused: no step of this run reads them")
    return out, paths, notes


def _loaded(paths: Mapping[str, str], spec: registry.StepSpec) -> dict[str, str]:
    return {r: paths[r] for r in spec.reftypes + spec.optional_reftypes
            if paths.get(r) not in (None, NA)}


def check_override(reftype: str, path: str) -> None:
    """An override must be a reference of its type (jwst checks REFTYPE too)."""
    from flows.runner import load_reference

    try:
        model = load_reference(path)
    except CalopsError as exc:
        raise FileLevelError(f"--override-{reftype} {path}: {exc}") from None
    kind = str(model.kind)
    if kind.startswith("ref.") and kind[4:] != reftype:
        raise FileLevelError(f"--override-{reftype} {path} is a {kind[4:]} reference "
                             f"(REFTYPE {kind[4:].upper()}), not {reftype}")


# --- recipes and running -------------------------------------------------------------------------

def make_recipe(label: str, subject: str, build: str, context: str,
                planned: Sequence[PlannedStep], paths: Mapping[str, str],
                inputs: Mapping[str, str], outputs: Sequence[str]) -> StageRecipe:
    """Recipe keys exactly as the runner computes them (flows/runner.py): same inputs, same
    references, same parameters -> same keys; an override file is identified by its content."""
    from flows.runner import reference_identity
    from store.identity import recipe_keyer

    steps: list[StepRecipe] = []
    prev = None
    for p in planned:
        refs_for = _loaded(paths, p.spec)
        refs = {r: reference_identity(path) for r, path in refs_for.items()}
        params = p.spec.science_params(p.params)
        sr = StepRecipe(name=p.spec.name, version=p.spec.version, params=params,
                        inputs=dict(inputs) if prev is None else {"input": prev},
                        refs=refs, ref_paths=refs_for, skip=p.skip, planned=p)
        if not p.skip:
            sr.key = prev = recipe_keyer(p.spec.name, p.spec.version, params)(sr.inputs, refs)
        steps.append(sr)
    if prev is None:
        raise FileLevelError(f"every step of {label} is skipped; nothing to run")
    return StageRecipe(label, subject, build, context, steps, dict(inputs),
                       {o: output_key(prev, o) for o in outputs})


def loaded_plan(recipe: StageRecipe) -> list[PlannedStep]:
    from flows.runner import load_reference

    return [dataclasses.replace(s.planned, refs={r: load_reference(p)
                                                 for r, p in s.ref_paths.items()})
            for s in recipe.steps]


def _split_pointing(model: DataModel) -> tuple[DataModel, DataModel]:
    pointing = {k: v for k, v in model.meta.items() if k.startswith(POINTING_PREFIXES)}
    drop = tuple(pointing) + tuple(k for k in ("data_processing_software_version", "filename",
                                               "date") if k in model.meta)
    return model.replace(drop=drop), DataModel("pointing", {}, pointing)


# --- provenance and output files -----------------------------------------------------------------

def note_text(overrides: Mapping[str, str], param_sources: Mapping[str, Mapping[str, str]],
              planned: Sequence[PlannedStep], notes: Sequence[str], pars_used: Mapping[str, str],
              command: str) -> str:
    parts = [f"file-level run ({command})"]
    if overrides:
        parts.append("overrides: " + ", ".join(
            f"{rt}={'N/A' if p == NA else p}" for rt, p in sorted(overrides.items())))
    by = {p.spec.name: p for p in planned}
    changed = []
    for step, srcs in sorted(param_sources.items()):
        for name, src in sorted(srcs.items()):
            if name == "skip":
                changed.append(f"{step}.skip={by[step].skip} ({src})")
            else:
                v = getattr(by[step].params, name, None)
                changed.append(f"{step}.{name}={v!r} ({src})")
    if changed:
        parts.append("parameters: " + ", ".join(changed))
    if pars_used:
        parts.append("pars: " + ", ".join(Path(p).name for p in pars_used.values()))
    parts += list(notes)
    text = "; ".join(parts)
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)


def provenance(build: buildlib.Build, label: str, context: str, paths: Mapping[str, str],
               overrides: Mapping[str, str], planned: Sequence[PlannedStep],
               extra: Mapping[str, Any], note: str) -> dict[str, Any]:
    """Header provenance of a file-level product (keys store.fits.write_product takes)."""
    import crds

    from store.keywords import PROVENANCE_ALIASES, product_table

    table = product_table()
    prov: dict[str, Any] = {"build": label, "pipeline_version": build.pipeline_version,
                            "crds_context": context, "crds_version": crds.__version__,
                            "note": note}
    for p in planned:
        for rt in p.spec.reftypes + p.spec.optional_reftypes:
            if f"ref_file.{rt}" not in table or rt not in paths:
                continue
            path = paths[rt]
            if path == NA:
                prov[f"ref_file.{rt}"] = "N/A"
            elif rt in overrides:
                prov[f"ref_file.{rt}"] = Path(path).name  # jwst writes an override's file name
            else:
                prov[f"ref_file.{rt}"] = f"crds://{Path(path).name}"
    for k, v in extra.items():
        if v is not None and PROVENANCE_ALIASES.get(k, k) in table:
            prov[k] = v
    return prov


def output_name(meta: Mapping[str, Any], stem: str, suffix: str, association: bool) -> str:
    """The JWST file name of one output: from the exposure's metadata (store/names.py), else
    after the input file (as jwst names outputs)."""
    from store.names import BadName, jwst_filename

    from store.names import parse_filename

    ext = "ecsv" if suffix == "cat" else "fits"
    try:  # an input named as a stage-3 product (jw01234-o001_..._i2d) names its outputs
        association = association or parse_filename(f"{stem}_x.fits")["kind"] == "association"
    except BadName:
        pass
    if not association:
        try:
            return jwst_filename(meta, suffix)
        except BadName:
            pass
    return f"{stem}_{suffix}.{ext}"


def write_output(model: DataModel, outdir: Path, name: str, suffix: str,
                 prov: Mapping[str, Any], meta_for_name: Mapping[str, Any], association: bool
                 ) -> list[Path]:
    from store import spec_products

    if spec_products.handles(model):
        from transforms.spectral import file_wcs

        return [fits.write_product(m, outdir / f"{fname}_{suffix}.fits", provenance=prov,
                                   wcs=file_wcs(m))
                for fname, m in spec_products.split_by_source(model, name)]
    wcs = None
    if model.kind in ("cal", "i2d") and "wcs.kind" in model.meta:
        from transforms.wcs import wcs_of

        wcs = wcs_of(model)
    path = outdir / output_name(meta_for_name, name, suffix, association)
    return [fits.write_product(model, path, provenance=prov, wcs=wcs)]


SUFFIX = {"rate": "rate", "rateints": "rateints", "cal": "cal", "i2d": "i2d", "catalog": "cat",
          "s2d": "s2d", "s3d": "s3d", "x1d": "x1d", "c1d": "c1d"}


# --- the drivers ---------------------------------------------------------------------------------

@dataclass
class Setup:
    """Build, CRDS and workspace of one file-level command."""

    build: buildlib.Build  # whose plan is run
    crds_path: str
    context: str
    ws: Any = None  # flows.workspace.Workspace with --home
    command: str = ""
    warnings: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # the build(s) products were recorded as


def setup(opts: Options, command: str) -> Setup:
    ws = None
    if opts.home:
        from flows.workspace import Workspace

        ws = Workspace.resolve(opts.home)
        if opts.build:
            b = ws.builds.get(opts.build)
        else:
            b = ws.builds.operations()
            if b is None:
                raise FileLevelError(f"{ws.root} has no operations build; name one with --build")
        buildlib.require_runnable(b)
    elif opts.build:
        raise FileLevelError("--build names a workspace's build: give --home too (without a "
                             "workspace the file-level build runs the newest step versions)")
    else:
        b = pseudo_build()
    crds_path, ctx = crds_setup(opts, b, ws)
    for rt, p in opts.overrides.items():
        if p != NA:
            check_override(rt, p)
    return Setup(b, crds_path, ctx, ws, command)


def _pid(model: DataModel) -> str:
    from store.identity import product_id

    return product_id(model)


def _params_for(s: Setup, opts: Options, planned: list[PlannedStep], meta: Mapping[str, Any],
                stage: str | None, single: str | None
                ) -> tuple[list[PlannedStep], dict[str, dict[str, str]], dict[str, str]]:
    names = [p.spec.name for p in planned]
    layers, pars_used = crds_pars_layers(names, stage, meta, s.context, s.crds_path)
    if opts.config:
        layers.append(config_layer(opts.config, names, single))
    layers.append(cmdline_layer(opts, single))
    planned, sources, warns = apply_layers(planned, layers)
    for w in warns:
        if w not in s.warnings:
            s.warnings.append(w)
    return planned, sources, pars_used


def _label(s: Setup, customised: bool) -> str:
    """The build a run is recorded under: the build itself, or (customised, in a workspace)
    the development build ``file-level`` made from it."""
    label = FILE_LEVEL if (s.ws is not None and customised) else s.build.name
    if label not in s.labels:
        s.labels.append(label)
    if label != FILE_LEVEL or s.ws is None:
        return label
    if FILE_LEVEL not in s.ws.builds.names():
        import datetime as dt

        b, events = s.ws.builds.new(
            FILE_LEVEL, base=s.build.name,
            description=f"File-level runs with overrides or parameters (calops step/stage), "
                        f"planned from {s.build.name}; each product's recipe says exactly what "
                        "it ran with.", why="calops step/stage with overrides or parameters")
        with s.ws.catalog.batch("file-level") as batch:
            buildlib.record_events(events, batch.add)
            batch.add("builds", {"name": b.name, "status": b.status,
                                 "manifest_json": json.dumps(b.as_dict(), sort_keys=True),
                                 "recorded_at": dt.datetime.now(dt.timezone.utc)})
    return FILE_LEVEL


def _record_inputs(ws: Any, subject: str, models: Mapping[str, DataModel]) -> dict[str, str]:
    """Store input products the catalog does not know yet (a rate file, cal members) and
    record them; returns their ids by role."""
    from catalogs.recipes import product_row, utcnow

    ids = {role: ws.store.put(m) for role, m in models.items()}
    known = ws.catalog.product_metas(list(ids.values()))
    new = [(ids[r], m) for r, m in models.items() if ids[r] not in known]
    if new:
        with ws.catalog.batch("file-level") as batch:
            for pid, m in new:
                batch.add("products", product_row(pid, m.kind, m.meta, subject, utcnow()))
    return ids


def _check_stage_input(st: registry.Stage, subj: Subject) -> None:
    first = st.reads[0].split(":", 1)
    want = {"exposure": ("uncal", "ramp")}.get(first[0]) or (first[1], "rate", "rateints")
    members = [(f, m) for items in subj.members.values() for f, m in items]
    for f, m in list(zip(subj.files, subj.models)) + members:
        if st.subject == "exposure" and m.kind not in want:
            raise FileLevelError(f"{st.name} runs on {'/'.join(dict.fromkeys(want))} files; "
                                 f"{f} is a {m.kind}")
        if st.subject == "association" and m.kind != first[1]:
            raise FileLevelError(f"{st.name} combines {first[1]} files; {f} is a {m.kind}")
        if not st.calibrates(m.meta):
            exp = m.get("exposure.type")
            other = [x.name for x in registry.stages().values()
                     if x.calibrates(m.meta) and x.subject == st.subject and x.name != st.name]
            raise FileLevelError(f"{st.name} does not calibrate EXP_TYPE {exp} ({f})"
                                 + (f"; {other[0]} does" if other else ""))


class Recorder:
    """The ``runs`` row of a file-level command in a workspace: started on first use,
    finished (ok, partial or failed) when the command ends, even by an error."""

    def __init__(self, s: Setup):
        self.s, self.handle, self.results = s, None, []

    def run_id(self, label: str) -> str:
        from flows import runs

        if self.handle is None:
            runs.close_abandoned(self.s.ws)
            self.handle = runs.start(self.s.ws, label, self.s.command)
        return self.handle.run_id

    def finish(self, error: str | None = None) -> None:
        from flows import runs

        if self.handle is None:
            return
        if error is not None:
            runs.finish(self.handle, "failed", {"error": error})
        elif self.results and all("stage" in r for r in self.results):
            summary = runs.summarise(self.results, sum(r["wall_s"] for r in self.results))
            runs.finish(self.handle, runs.status_of(summary), summary)
        else:
            runs.finish(self.handle, "ok", {"tasks": len(self.results)})
        self.handle = None


def run_stage(stage_text: str, opts: Options, command: str = "calops stage"
              ) -> tuple[list[Path], Setup]:
    """``calops stage``: every subject the inputs make, through the whole stage."""
    stage = stage_name(stage_text)
    st = registry.stage(stage)
    s = setup(opts, command)
    if not opts.files:
        raise FileLevelError(f"give the {stage} input files (or an association JSON)")
    subjects = subjects_of(st, expand(opts.files))
    for subj in subjects:
        _check_stage_input(st, subj)
        s.warnings += [n for n in subj.notes if n not in s.warnings]
    outdir = Path(opts.outdir).expanduser()
    written: list[Path] = []
    rec = Recorder(s)
    try:
        for subj in subjects:
            written += _run_stage_subject(s, st, subj, opts, outdir, rec)
    except BaseException as exc:
        rec.finish(" ".join(str(exc).split()) or type(exc).__name__)
        raise
    rec.finish()
    return written, s


def _run_stage_subject(s: Setup, st: registry.Stage, subj: Subject, opts: Options, outdir: Path,
                       rec: Recorder) -> list[Path]:
    assoc = st.subject == "association"
    first = subj.models[0]
    if assoc:
        meta = {**first.meta, "association.name": subj.name}
        roles = {f"member:{exposure_stem(f)}": m for f, m in zip(subj.files, subj.models)}
        pointing = DataModel("pointing", {}, {})
    else:
        meta = dict(first.meta)
        data, pointing = _split_pointing(first)
        roles = {"input": data}
        if "exposure:pointing" in st.reads[1:]:
            roles["pointing"] = pointing
        # level-2 members read as the workspace runner reads them (Stage.member_reads): the
        # member's rate under <role>:<exposure>, its pointing under <role>:<exposure>:pointing
        for role, items in subj.members.items():
            for f, m in items:
                m_data, m_pointing = _split_pointing(m)
                for r, src in st.member_reads(role, exposure_stem(f)):
                    roles[r] = m_pointing if src == "exposure:pointing" else m_data
    planned = buildlib.plan(s.build, st.name, meta)
    planned, sources, pars_used = _params_for(s, opts, planned, meta, st.name, None)
    planned, paths, notes = choose_references(planned, meta, s.context, s.crds_path,
                                              opts.overrides)
    customised = bool(opts.overrides or sources)
    label = _label(s, customised)
    outputs = st.outputs_for(meta)
    subject = subj.name
    if s.ws is not None:
        from flows import runner

        if st.reads[0] == "exposure:pixels":
            from flows.ingest import ingest_file

            ing = ingest_file(s.ws, subj.files[0], rec.run_id(label))
            ids, subject = {"input": ing.pixels_id}, ing.exposure_id
        else:
            ids = _record_inputs(s.ws, subject, roles)
            if assoc and subj.association:
                kinds = {exposure_stem(str(m["expname"])): str(m.get("exptype", "science"))
                         .lower() for m in subj.association["products"][0]["members"]}
                s.ws.catalog.record_associations([{
                    **subj.association, "products": [{"name": subj.name, "members": [
                        {"expname": exposure_stem(f),
                         "exptype": kinds.get(exposure_stem(f), "science")}
                        for f in subj.files]}]}])
        recipe = make_recipe(st.name, subject, label, s.context, planned, paths, ids, outputs)
        run_id = rec.run_id(label)
        keys = sorted(ids)
        store = s.ws.store
        if assoc:
            load = lambda: tuple(store.get(ids[k]) for k in keys)  # noqa: E731
        else:
            def merged(rs: Sequence[str]) -> DataModel:
                models = [store.get(ids[k]) for k in rs]
                extra: dict[str, Any] = {}
                for m in models[1:]:
                    extra.update(m.meta)
                return models[0].replace(meta=extra) if extra else models[0]

            def load() -> Any:
                science = merged([k for k in ids if ":" not in k])
                if not subj.members:
                    return science
                return science, _member_models(st, subj, merged)
        out = runner.run_stage(s.ws, recipe, load, chain_of(st), run_id)
        rec.results.append(out.as_dict())
        if out.status != "ok":
            raise FileLevelError(f"{st.name} failed for {subject}: {out.error}")
        products = {n: store.get(pid) for n, pid in out.outputs.items()}
        pids = dict(out.outputs)
    else:
        ids = {r: _pid(m) for r, m in roles.items()}
        recipe = make_recipe(st.name, subject, label, s.context, planned, paths, ids, outputs)
        if assoc:
            data_in: Any = tuple(roles[k] for k in sorted(roles))
        else:
            data_in = roles["input"] if "pointing" not in roles else \
                roles["input"].replace(meta=roles["pointing"].meta)
            if subj.members:  # (science, {role: [member]}) as the workspace runner's loader

                def merged(rs: Sequence[str]) -> DataModel:
                    extra: dict[str, Any] = {}
                    for r in rs[1:]:
                        extra.update(roles[r].meta)
                    return roles[rs[0]].replace(meta=extra) if extra else roles[rs[0]]

                data_in = (data_in, _member_models(st, subj, merged))
            if st.reads[0] == "exposure:pixels":  # detector1 lets the uncal's pixels go
                first = DataModel(first.kind, {}, first.meta)  # (once in its ramp buffer)
                subj.models[0] = first
                del data
                roles.clear()
                data_in = Handoff(data_in)
        try:
            from flows.runner import plan_refs

            refs = plan_refs(recipe)  # each reference read when a step needs it, dropped after
            products = dict(chain_of(st)(data_in, refs.plan(), lambda name, _s: refs.done(name)))
            del refs
        except CalopsError:
            raise
        except Exception as exc:  # a science error in this input: one line, as the runner's
            raise FileLevelError(f"{st.name} failed for {subject}: {type(exc).__name__}: "
                                 f"{exc}") from exc
        pids = {n: _pid(products[n]) for n in outputs if products.get(n) is not None}
    _unused_members(s, st, subj, products)
    note = note_text(opts.overrides, sources, planned, notes, pars_used, s.command)
    extra = {"sdp_version": first.get("data_processing_software_version"),
             "eph_type": pointing.get("ephemeris.type") if not assoc else first.get("ephemeris.type")}
    written: list[Path] = []
    for name in outputs:
        model = products.get(name)
        if model is None:
            continue
        prov = provenance(s.build, label, s.context, paths, opts.overrides, planned,
                          {**extra, "product_id": pids[name],
                           "recipe_key": recipe.output_keys[name]}, note)
        if not assoc:
            prov.update({k: v for k, v in pointing.meta.items()
                         if k not in model.meta and v is not None and _has_keyword(k)})
        written += write_output(model, outdir, subj.name, SUFFIX.get(name, name), prov,
                                {**first.meta, **model.meta}, assoc)
    return written


def _unused_members(s: Setup, st: registry.Stage, subj: Subject,
                    products: Mapping[str, Any]) -> None:
    """A warning for each member role whose step did not subtract it (jwst would have: an
    IFU exposure's background, which calops's IFU chain does not take yet; or the step found
    no usable member): the cal says so in its S_* keyword."""
    import importlib

    if not subj.members:
        return
    steps = getattr(importlib.import_module(st.run.__module__), "MEMBER_STEPS", {})
    main = next((m for m in products.values() if isinstance(m, DataModel)), None)
    for step, role in steps.items():
        if role in subj.members and main is not None:
            status = main.meta.get(f"cal_step.{step}") or "not run"
            if status != "COMPLETE":
                s.warnings.append(
                    f"{subj.name}: its {role} member(s) "
                    f"{', '.join(exposure_stem(f) for f, _ in subj.members[role])} were not "
                    f"used: {step} {status}")


def _member_models(st: registry.Stage, subj: Subject, merged: Any) -> dict[str, list[DataModel]]:
    """{role: [member]} of an exposure's level-2 members: each member's reads (Stage.
    member_reads) merged into one model by ``merged``, as flows.stages' loader does."""
    return {role: [merged([r for r, _ in st.member_reads(role, exposure_stem(f))])
                   for f, _ in items] for role, items in subj.members.items()}


def chain_of(st: registry.Stage) -> Any:
    """The stage's chain as the workspace runner calls it (flows.stages.chain_of)."""
    from flows.stages import chain_of as runner_chain

    return runner_chain(st)


def _has_keyword(key: str) -> bool:
    from store.keywords import product_table

    return key in product_table()


def _planned_step(b: buildlib.Build, name: str, meta: Mapping[str, Any]) -> tuple[PlannedStep, str]:
    """The step as the build runs it (its pinned version and parameters), from the stage that
    calibrates this input; else the registry's newest with JWST defaults. Run even where the
    build skips it (you asked for it), unless a parameter source says skip."""
    for st in registry.stages().values():
        if name not in st.all_steps or not st.calibrates(meta):
            continue
        try:
            plan = buildlib.plan(b, st.name, meta)
        except buildlib.BuildError:
            continue
        for p in plan:
            if p.spec.name == name:
                return dataclasses.replace(p, skip=False), st.name
    spec = registry.get(name)
    return PlannedStep(spec, spec.make_params({})), spec.stage


def run_step(step_text: str, opts: Options, command: str = "calops step") -> tuple[list[Path], Setup]:
    """``calops step``: one step on each input file (or on an association's members)."""
    name = step_name(step_text)
    s = setup(opts, command)
    if not opts.files:
        raise FileLevelError(f"give the input file(s) of {name}")
    files = expand(opts.files)
    asn_in = any(f.endswith(".json") for f in files)
    probe = read_input(first_input(files))
    _, stage = _planned_step(s.build, name, probe.meta)
    st = registry.stage(stage)
    assoc_st = next((x for x in registry.stages().values() if x.subject == "association"
                     and name in x.all_steps and x.calibrates(probe.meta)), None)
    if assoc_st is not None and (asn_in or st.subject == "association"):
        st = assoc_st
        # one stage-3 product (an i2d for source_catalog) is the step's input as it is
        assoc = asn_in or not (len(files) == 1 and probe.kind in ("i2d", "s2d", "s3d", "x1d"))
    else:
        assoc = False
    subjects = subjects_of(st, files, assoc)
    outdir = Path(opts.outdir).expanduser()
    written: list[Path] = []
    rec = Recorder(s)
    try:
        for subj in subjects:
            written += _run_step_subject(s, name, subj, assoc, opts, outdir, rec)
    except BaseException as exc:
        rec.finish(" ".join(str(exc).split()) or type(exc).__name__)
        raise
    rec.finish()
    return written, s


def _run_step_subject(s: Setup, name: str, subj: Subject, assoc: bool, opts: Options,
                      outdir: Path, rec: Recorder) -> list[Path]:
    from transforms.detector1.dq_init import to_ramp

    first = subj.models[0]
    meta = {**first.meta, "association.name": subj.name} if assoc else dict(first.meta)
    p0, _ = _planned_step(s.build, name, meta)
    planned, sources, pars_used = _params_for(s, opts, [p0], meta, None, name)
    planned, paths, notes = choose_references(planned, meta, s.context, s.crds_path,
                                              opts.overrides)
    p = planned[0]
    if p.skip:  # as jwst: the input comes back marked SKIPPED (S_* keyword), nothing computed
        return _write_skipped(s, name, subj, assoc, opts, outdir, planned, paths, sources,
                              notes, pars_used)
    if assoc:
        inputs = {f"member:{exposure_stem(f)}": m for f, m in zip(subj.files, subj.models)}
        data_in: Any = tuple(inputs[k] for k in sorted(inputs))
    else:
        data_in = first
        if p.spec.stage == "detector1" and first.kind == "uncal":
            data_in = DataModel("ramp", to_ramp(first), dict(first.meta))  # as jwst's RampModel
        inputs = {"input": first}
    label = _label(s, bool(opts.overrides or sources))
    suffix = step_suffix(name)
    outs = ["rate", "rateints"] if p.spec.fit is not None else [suffix]
    ids = ({r: s.ws.store.put(m) for r, m in inputs.items()} if s.ws is not None
           else {r: _pid(m) for r, m in inputs.items()})
    recipe = make_recipe(f"step {name}", subj.name, label, s.context, planned, paths, ids, outs)
    (p_loaded,) = loaded_plan(recipe)
    try:
        if p.spec.fit is not None:
            rate, rateints = p.spec.fit(data_in, p_loaded.refs, p.params)
            results: dict[str, Any] = {"rate": rate, "rateints": rateints}
        else:
            results = {suffix: p.spec.apply(data_in, p_loaded.refs, p.params)}
    except CalopsError:
        raise
    except Exception as exc:  # a science error in this input: one line, as the runner's
        raise FileLevelError(f"{name} failed on {subj.name}: {type(exc).__name__}: "
                             f"{exc}") from exc
    note = note_text(opts.overrides, sources, planned, notes, pars_used, s.command)
    # (output, file stem, model, suffix, name after the stem rather than the exposure)
    files_out: list[tuple[str, str, DataModel, str, bool]] = []
    for out_name, res in results.items():
        if isinstance(res, tuple):  # a stage-3 step on members: one file per member
            files_out += [(out_name, exposure_stem(f), m, suffix, False)
                          for f, m in zip(subj.files, res)]
        elif p.spec.fit is not None:  # jwst's RampFitStep: _0_rampfitstep, _1_rampfitstep
            files_out.append((out_name, subj.name, res,
                              f"{0 if out_name == 'rate' else 1}_{suffix}", True))
        else:
            files_out.append((out_name, subj.name, res,
                              "cat" if res.kind == "catalog" else suffix, assoc))
    if s.ws is not None:
        _record_step_products(s, rec.run_id(label), recipe,
                              _record_inputs(s.ws, subj.name, inputs), files_out)
        rec.results.append({"step": name, "subject": subj.name})
    written: list[Path] = []
    for out_name, stem, m, sfx, by_stem in files_out:
        prov = provenance(s.build, label, s.context, paths, opts.overrides, planned,
                          {"sdp_version": first.get("data_processing_software_version"),
                           "eph_type": first.get("ephemeris.type"),
                           "product_id": _pid(m), "recipe_key": recipe.output_keys[out_name]},
                          note)
        written += write_output(m, outdir, stem, sfx, prov, m.meta, by_stem)
    return written


def _write_skipped(s: Setup, name: str, subj: Subject, assoc: bool, opts: Options,
                   outdir: Path, planned: list[PlannedStep], paths: Mapping[str, str],
                   sources: Mapping[str, Mapping[str, str]], notes: Sequence[str],
                   pars_used: Mapping[str, str]) -> list[Path]:
    note = note_text(opts.overrides, sources, planned, notes, pars_used, s.command)
    written: list[Path] = []
    suffix = step_suffix(name)
    label = _label(s, False) if s.ws is None else s.build.name
    for f, m in zip(subj.files, subj.models):
        out = m.replace(meta={f"cal_step.{name}": "SKIPPED"})
        prov = provenance(s.build, label, s.context, paths, opts.overrides, planned,
                          {"sdp_version": m.get("data_processing_software_version"),
                           "eph_type": m.get("ephemeris.type"), "product_id": _pid(out)}, note)
        written += write_output(out, outdir, exposure_stem(f), suffix, prov, out.meta, False)
    return written


def _record_step_products(s: Setup, run_id: str, recipe: StageRecipe, ids: Mapping[str, str],
                          files_out: Sequence[tuple[str, str, DataModel, str]]) -> None:
    """A step's products with their recipe (no run_steps row: a step on its own is not a
    stage run, so exports and diffs of the build do not see it)."""
    from catalogs.recipes import NewProduct, stage_rows

    new = {}
    for i, (out_name, _, m, _, _) in enumerate(files_out):
        pid = s.ws.store.put(m)
        new[f"{out_name}#{i}"] = NewProduct(pid, m.kind, m.meta, recipe.output_keys[out_name])
    out = StageOutcome(recipe.stage, recipe.subject, recipe.build,
                       outputs={k: v.product_id for k, v in new.items()})
    rows = stage_rows(run_id, recipe, out, new)
    rows.pop("run_steps", None)
    s.ws.catalog.record(rows, run_id)
