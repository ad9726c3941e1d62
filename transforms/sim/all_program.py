"""The default program of ``calops simulate``: exposures of all four instruments in one program.

``all_program()`` composes sub-programs that exist on their own, unchanged:

- ``small_program`` — NIRCam and NIRISS imaging (observations 1, 2; 7 exposures);
- ``miri_program`` — MIRI imaging, its SUB256 dither pair (observation 3; 2 exposures of 10
  groups x 2 integrations);
- ``fs_program`` — one NIRSpec fixed-slit exposure (S200A1 in SUBS200A1, 64x2048, NRS readout,
  ``FS_NGROUPS`` groups, no nod), observation 4;
- ``lrs_program`` — one MIRI LRS fixed-slit exposure (FULL 1024x1032 as the mode requires,
  FASTR1, ``LRS_NGROUPS`` groups, no nod), observation 5;
- ``ifu_program.mrs_program`` — a MIRI MRS 2-point dither, MIRIFUSHORT band SHORT (channels
  1A + 2A), FULL FASTR1, ``ifu_program.MRS_NGROUPS`` groups, observation 7;
- ``ifu_program.nrs_ifu_program`` — a NIRSpec IFU 2-point dither, NRS1 G235M/F170LP, FULL
  NRSRAPID, ``ifu_program.NRS_IFU_NGROUPS`` groups, observation 8.

The IFU parts are full-frame ramps (the modes have no subarray) and cost minutes to simulate
and calibrate: ``all_program(ifu=False)`` (``calops simulate --no-ifu``) leaves them out.

The slit parts and the MIRI imaging subset are kept small so that ``calops demo``, which
runs this program without its IFU parts, stays about as fast as it was with NIRCam + NIRISS
alone.

The spectroscopic parts are simulated at level ``uncal`` so stage 1 runs on them; their
detector1 references (``SpecExposure.stage1_refs``) become ``RefFile`` entries whose CRDS
selection uses every parameter of the real rmap that the exposure has a value for
(``STAGE1_SELECTORS``), so they are selected for those exposures only; the IFU parts' spec2/3
references likewise (``ifu_program.IFU_SELECTORS``).

``simulate_all`` returns each part's references per context as it made them; merging them into
one CRDS cache (file names that collide, the same selection twice) is the catalog's job
(``catalogs.crds_cache.merge_contexts``). One resolution happens here because it is about the
science, not the cache: the MIRI imager distortion of the LRS part is the imaging part's model
declared for ``MIR_IMAGE|MIR_LRS-FIXEDSLIT`` (as in JWST's contexts, one imager distortion
serves both modes), so the imaging part uses it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from transforms.model import DataModel
from transforms.sim import slit_program as SPG
from transforms.sim.program import (
    Program,
    ProgramError,
    ProgramSpec,
    RefFile,
    miri_program,
    simulate_program,
    small_program,
)

FS_OBSERVATION = 4
LRS_OBSERVATION = 5
FS_NGROUPS = 5
LRS_NGROUPS = 4
MIRI_IMAGING_EXPOSURES = 2  # miri_program's SUB256 dither pair (not its BRIGHTSKY exposure)

# The parameters of the real JWST rmaps (crds/jwst/specs) a spectroscopic exposure's detector1
# reference is selected on: every one the exposure has a value for.
_DET, _FLT, _RP, _SUB, _GRT = ("instrument.detector", "instrument.filter", "exposure.readpatt",
                               "subarray.name", "instrument.grating")
STAGE1_SELECTORS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "NIRSPEC": {
        "mask": (_DET, _FLT, _RP), "saturation": (_DET, _FLT), "linearity": (_DET, _FLT),
        "gain": (_DET, _FLT), "readnoise": (_DET, _FLT, _RP),
        "superbias": (_DET, _RP, _SUB, _GRT), "dark": (_DET, _FLT, _SUB, _GRT, _RP),
    },
    "MIRI": {
        "mask": (_DET, _FLT, _SUB, _RP), "saturation": (_DET, _FLT), "linearity": (_DET, _FLT),
        "readnoise": (_DET, _FLT), "gain": (_DET, _FLT, _SUB), "dark": (_DET, _FLT, _RP, _SUB),
        "reset": (_DET, _SUB, _RP), "rscd": (_DET,), "emicorr": (),
    },
}


@dataclass(frozen=True)
class AllSpec:
    """The imaging and spectroscopic sub-programs of the default program."""

    name: str
    imaging: tuple[ProgramSpec, ...]
    spectra: tuple[SPG.SpecProgramSpec, ...]


@dataclass(frozen=True)
class AllExposure:
    """One exposure of the composed program: its file name, level-1b model and truth
    (``program.ExposureTruth`` for imaging, ``slit_program.SpecTruth`` for spectra)."""

    name: str
    uncal: DataModel
    truth: Any
    part: str


@dataclass(frozen=True)
class AllProgram:
    spec: AllSpec
    seed: int
    imaging: tuple[Program, ...]
    spectra: tuple[SPG.SpecProgram, ...]
    exposures: tuple[AllExposure, ...]
    # per part (imaging parts first, then spectra), per context: the part's references
    parts: tuple[tuple[tuple[RefFile, ...], ...], ...]
    # per part, per context: exposure name -> reftype -> file name (the part's own names)
    expected: tuple[tuple[Mapping[str, Mapping[str, str]], ...], ...]


def renumber(spec: SPG.SpecProgramSpec, observation: int) -> SPG.SpecProgramSpec:
    """The spectroscopic program with every exposure in ``observation`` (file names of a
    composed program must not collide)."""
    return replace(spec, exposures=tuple(replace(e, observation=observation)
                                         for e in spec.exposures))


def all_program(fs_ngroups: int = FS_NGROUPS, lrs_ngroups: int = LRS_NGROUPS,
                ifu: bool = True, **overrides: Any) -> AllSpec:
    """The default program; ``overrides`` apply to the imaging sub-programs
    (e.g. ``pointing_error_arcsec``); ``ifu=False`` leaves out the IFU observations
    (7: MIRI MRS, 8: NIRSpec IFU), the most expensive parts."""
    fs = renumber(SPG.fs_program(nod=None, ngroups=fs_ngroups), FS_OBSERVATION)
    lrs = renumber(SPG.lrs_program(nod=False, ngroups=lrs_ngroups), LRS_OBSERVATION)
    miri = miri_program(**overrides)
    miri = replace(miri, exposures=miri.exposures[:MIRI_IMAGING_EXPOSURES])
    return AllSpec("all", (small_program(**overrides), miri), (fs, lrs) + _ifu_parts(ifu))


def _ifu_parts(ifu: bool) -> tuple[Any, ...]:
    """The IFU observations of the default program (``sim.ifu_program``), or none."""
    if not ifu:
        return ()
    from transforms.sim import ifu_program as IFU

    return (IFU.mrs_program(), IFU.nrs_ifu_program())


def same_content(a: Any, b: Any, ignore_meta: tuple[str, ...] = ()) -> bool:
    """Two reference models hold the same content (kind, arrays bit for bit, metadata)."""
    if a is b:
        return True
    if a is None or b is None or type(a) is not type(b):
        return False
    if not isinstance(a, DataModel):
        return bool(a == b)
    if a.kind != b.kind or set(a.arrays) != set(b.arrays):
        return False
    for k, x in a.arrays.items():
        y = b.arrays[k]
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            x, y = np.asarray(x), np.asarray(y)
            if x.dtype != y.dtype or x.shape != y.shape:
                return False
            if not np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"):
                return False
        elif not (x is y or x == y):
            return False
    ma = {k: v for k, v in a.meta.items() if k not in ignore_meta}
    mb = {k: v for k, v in b.meta.items() if k not in ignore_meta}
    if set(ma) != set(mb):
        return False
    try:
        return all(_eq(ma[k], mb[k]) for k in ma)
    except Exception:  # noqa: BLE001 - an uncomparable value is a difference
        return False


def _eq(x: Any, y: Any) -> bool:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return np.array_equal(np.asarray(x), np.asarray(y))
    r = x == y
    return bool(r.all()) if isinstance(r, np.ndarray) else bool(r)


def _stage1_refs(sp: SPG.SpecProgram) -> tuple[list[RefFile], dict[str, dict[str, RefFile]]]:
    """The detector1 references of a spectroscopic program's uncal exposures as RefFiles (one
    per distinct content and selection) and, per exposure, the one selected per reftype."""
    inst = sp.spec.instrument.upper()
    table = STAGE1_SELECTORS[inst]
    out: list[RefFile] = []
    count: dict[str, int] = {}
    per_exp: dict[str, dict[str, RefFile]] = {}
    for ex in sp.exposures:
        meta = ex.model.meta
        sel: dict[str, RefFile] = {}
        for rt, model in sorted((ex.stage1_refs or {}).items()):
            if rt not in table:
                raise ProgramError(f"no CRDS selectors declared for {inst} {rt}; add them to "
                                   "STAGE1_SELECTORS")
            match = {k: str(meta[k]) for k in table[rt] if meta.get(k) not in (None, "")}
            hit = next((r for r in out if r.reftype == rt and dict(r.match) == match
                        and same_content(r.model, model)), None)
            if hit is None:
                count[rt] = count.get(rt, 0) + 1
                ext = "asdf" if rt in ("distortion", "emicorr") else "fits"
                hit = RefFile(rt, inst, f"jwst_{inst.lower()}_{rt}_{count[rt]:04d}.{ext}",
                              model, match, str(model.get("useafter") or SPG.R.USEAFTER))
                out.append(hit)
            sel[rt] = hit
        per_exp[ex.truth.name] = sel
    return out, per_exp


def _spec_expected(sp: SPG.SpecProgram, stage1: Mapping[str, Mapping[str, RefFile]]
                   ) -> dict[str, dict[str, str]]:
    """Per exposure the file CRDS must select per reftype (stage 1 and the spec2 files)."""
    out = {}
    for ex in sp.exposures:
        want = {rt: r.filename for rt, r in stage1[ex.truth.name].items()}
        for rt, model in sp.refs.get(ex.truth.name, {}).items():
            want[rt] = next(r.filename for r in sp.references if r.model is model)
        out[ex.truth.name] = want
    return out


def _share_imager_distortion(imaging: list[list[tuple[RefFile, ...]]],
                             spec_refs: list[RefFile]) -> list[list[tuple[RefFile, ...]]]:
    """Use the LRS part's MIRI imager distortion for MIRI imaging too when it is the same model
    declared for more exposure types (JWST's contexts have one imager distortion)."""
    lrs = [r for r in spec_refs if r.instrument == "MIRI" and r.reftype == "distortion"]
    if not lrs:
        return imaging
    wide = lrs[0]
    types = set(str(wide.model.get("exposure.type") or "").split("|"))
    out = []
    for ctxs in imaging:
        new_ctxs = []
        for refs in ctxs:
            new = []
            for r in refs:
                if (r.instrument == "MIRI" and r.reftype == "distortion" and r.model is not None
                        and set(str(r.model.get("exposure.type") or "").split("|")) <= types
                        and same_content(r.model, wide.model, ignore_meta=("exposure.type",))):
                    r = replace(r, model=wide.model)
                new.append(r)
            new_ctxs.append(tuple(new))
        out.append(new_ctxs)
    return out


def _simulate_part(job: tuple[str, Any, int]) -> Any:
    kind, s, seed = job
    if kind == "imaging":
        return simulate_program(s, seed)
    from transforms.sim import ifu_program as IFU

    if isinstance(s, IFU.IfuProgramSpec):
        return IFU.simulate_ifu_program(s, seed)
    return SPG.simulate_spec_program(s, seed, level="uncal")


def simulate_all(spec: AllSpec | None = None, seed: int = 0, map_fn: Any = map) -> AllProgram:
    """Simulate every part of the default program (the same seed for each part). The parts
    are independent: ``map_fn`` (e.g. a thread pool's ``map``, given by the caller) may
    simulate them concurrently; the result does not depend on it."""
    spec = spec or all_program()
    jobs = [("imaging", s, seed) for s in spec.imaging] + [("spectra", s, seed)
                                                           for s in spec.spectra]
    # the LRS full frame first: with a pool, the longest part starts at once
    order = sorted(range(len(jobs)), key=lambda i: jobs[i][0] == "imaging")
    done = dict(zip(order, map_fn(_simulate_part, [jobs[i] for i in order])))
    parts = [done[i] for i in range(len(jobs))]
    imaging = tuple(parts[:len(spec.imaging)])
    spectra = tuple(parts[len(spec.imaging):])
    exposures: list[AllExposure] = []
    for s, p in zip(spec.imaging, imaging):
        exposures += [AllExposure(e.truth.name, e.uncal, e.truth, s.name) for e in p.exposures]
    for s, p in zip(spec.spectra, spectra):
        exposures += [AllExposure(e.truth.name, e.model, e.truth, s.name) for e in p.exposures]
    names = [e.name for e in exposures]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ProgramError(f"exposures of two sub-programs share file names {dup}; give them "
                           "different observation numbers")
    spec_parts, spec_expected, all_spec_refs = [], [], []
    for p in spectra:
        s1, per_exp = _stage1_refs(p)
        refs = tuple(p.references) + tuple(s1)
        all_spec_refs += list(refs)
        exp = _spec_expected(p, per_exp)
        ncontexts = len(imaging[0].contexts) if imaging else 2
        spec_parts.append(tuple(refs for _ in range(ncontexts)))
        spec_expected.append(tuple(exp for _ in range(ncontexts)))
    img_parts = _share_imager_distortion([list(p.contexts) for p in imaging], all_spec_refs)
    parts = tuple(tuple(c) for c in img_parts) + tuple(spec_parts)
    expected = tuple(tuple(p.expected) for p in imaging) + tuple(spec_expected)
    return AllProgram(spec, seed, imaging, spectra, tuple(exposures), parts, expected)
