"""The default program of ``calops simulate``: exposures of all four instruments in one program.

``all_program()`` composes sub-programs that exist on their own (with the options below):

- ``small_program`` — NIRCam and NIRISS imaging (observations 1, 2; 7 exposures);
- ``miri_program`` — MIRI imaging, its SUB256 dither pair (observation 3; 2 exposures of 10
  groups x 2 integrations);
- ``fs_program`` — one NIRSpec fixed-slit exposure (S200A1 in SUBS200A1, 64x2048, NRS readout,
  ``FS_NGROUPS`` groups, no nod), observation 4;
- ``lrs_program`` — a MIRI LRS fixed-slit ALONG-SLIT-NOD pair (FULL 1024x1032 as the mode
  requires, FASTR1, ``LRS_NGROUPS`` groups), observation 5: jwst's LRS spec3 association takes
  nodded exposures only, so the pair is what gives it (and its combined products);
- ``mos_program`` — one NIRSpec MOS exposure (FULL 2048x2048; NRS readout, ``MOS_NGROUPS``
  groups; ``MOS_SOURCES`` sources in 3-shutter slitlets plus a background slitlet and a
  failed-open shutter; its MSA metadata as ``msa.*`` meta, which ``calops simulate`` writes to
  the ``_msa.fits`` file MSAMETFL names), observation 6. No nods and no leakcal (imprint)
  exposures (three more full frames each); no MSA leak either;
- ``ifu_program.mrs_program`` — a MIRI MRS 2-point dither, MIRIFUSHORT band SHORT (channels
  1A + 2A), FULL FASTR1, ``ifu_program.MRS_NGROUPS`` groups, observation 7;
- ``ifu_program.nrs_ifu_program`` — a NIRSpec IFU 2-point dither, NRS1 G235M/F170LP, FULL
  NRSRAPID, ``ifu_program.NRS_IFU_NGROUPS`` groups, observation 8.

``all_program(without=("mos", "ifu", ...))`` leaves spectroscopic parts out (``SPEC_PARTS``;
``calops simulate --without mos``; ``"ifu"`` is both IFU observations, full-frame ramps that
cost minutes to simulate and calibrate): ``calops demo`` runs without MOS and IFU. The other
spectroscopic parts and the MIRI imaging subset are kept small so that the demo stays about
as fast as it was with NIRCam + NIRISS alone.

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
serves both modes), so the imaging part uses it too. Likewise the fixed-slit part shares the MOS
part's NIRSpec D-flat and its detector1 files that the rmaps select without SUBARRAY
(``share_nirspec_references``: full-detector files, as JWST's).
"""

from __future__ import annotations

import re
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
MOS_OBSERVATION = 6
FS_NGROUPS = 5
LRS_NGROUPS = 4
MOS_NGROUPS = 3
MOS_SOURCES = 2
SPEC_PARTS = ("fs", "lrs", "mos", "ifu")  # the spectroscopic parts ``all_program(without=...)`` names
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
                mos_ngroups: int = MOS_NGROUPS, without: tuple[str, ...] = (),
                **overrides: Any) -> AllSpec:
    """The default program; ``without`` leaves spectroscopic parts out (names in
    ``SPEC_PARTS``: ``calops demo`` leaves out ``"mos"`` and ``"ifu"``); ``overrides`` apply to
    the imaging sub-programs (e.g. ``pointing_error_arcsec``)."""
    unknown = sorted(set(without) - set(SPEC_PARTS))
    if unknown:
        raise ProgramError(f"unknown part(s) {unknown} to leave out; the parts are "
                           f"{', '.join(SPEC_PARTS)}")
    spectra = {
        "fs": lambda: renumber(SPG.fs_program(nod=None, ngroups=fs_ngroups), FS_OBSERVATION),
        "lrs": lambda: renumber(SPG.lrs_program(nod=True, ngroups=lrs_ngroups),
                                LRS_OBSERVATION),
        "mos": lambda: renumber(SPG.mos_program(nsources=MOS_SOURCES, nod=False, imprint=False,
                                                msa_leak=0.0,
                                                ngroups=mos_ngroups), MOS_OBSERVATION),
    }
    parts = {k: make() for k, make in spectra.items() if k not in without}
    ifu = () if "ifu" in without else _ifu_parts()
    if "fs" in parts and "mos" in parts:  # one CRDS cache: the NIRSpec files they share
        parts["fs"] = share_nirspec_references(parts["fs"], parts["mos"])
    miri = miri_program(**overrides)
    miri = replace(miri, exposures=miri.exposures[:MIRI_IMAGING_EXPOSURES])
    return AllSpec("all", (small_program(**overrides), miri), tuple(parts.values()) + ifu)


def share_nirspec_references(fs: SPG.SpecProgramSpec, mos: SPG.SpecProgramSpec
                             ) -> SPG.SpecProgramSpec:
    """The fixed-slit part made to share the MOS part's NIRSpec references where the real
    rmaps cannot tell the two apart: the D-flat (selected by DETECTOR only) over the MOS
    reference window, which holds the fixed slits' subarray rows, and the detector1 files
    selected without SUBARRAY (mask, saturation, linearity, gain, readnoise) over the full
    detector, as JWST's are (the steps cut them to the subarray). The same seed then gives
    both parts the same content, one file each."""
    return replace(fs, ref_window=mos.ref_window, full_frame_refs=True)


def _ifu_parts() -> tuple[Any, ...]:
    """The IFU observations of the default program (``sim.ifu_program``)."""
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


@dataclass(frozen=True)
class ResponseChange:
    """A recalibrated photometric response of one spectroscopic mode (EXP_TYPE): the PHOTOM
    file's RELRESPONSE times ``scale * (1 + tilt * x)``, x running from -1 to 1 over the
    file's wavelength grid. Calibrated spectra (photom multiplies by the conversion) move by
    that factor: ``scale`` is about their median flux ratio new / old."""

    exp_type: str
    scale: float
    tilt: float

    def factor(self, lam: np.ndarray, lo: float, hi: float) -> np.ndarray:
        x = 2.0 * (np.asarray(lam, np.float64) - lo) / (hi - lo) - 1.0
        return self.scale * (1.0 + self.tilt * x)


# Context 2 (jwst_0002.pmap, the candidate's) replaces the photom of these modes: fixed slit
# +3% (rising 2% to the red end), LRS -4% (falling 3% to the red end). A new file with the same
# UseAfter, as context 2's corrected flats: CRDS selects it under context 2 only.
SPEC_RESPONSE_CHANGES: tuple[ResponseChange, ...] = (
    ResponseChange("NRS_FIXEDSLIT", 1.03, 0.02),
    ResponseChange("MIR_LRS-FIXEDSLIT", 0.96, -0.03),
)
_SERIAL_NAME = re.compile(r"^(?P<stem>.+_)(?P<n>\d{4})(?P<ext>\.[a-z]+)$")


def changed_response(model: DataModel, change: ResponseChange) -> DataModel:
    """The photom reference with its relative response times ``change.factor``."""
    lam = np.asarray(model.arrays["phot_table.wavelength"], np.float64)
    rel = np.asarray(model.arrays["phot_table.relresponse"])
    used = np.isfinite(lam) & (lam > 0)
    if not used.any():
        raise ProgramError(f"the {change.exp_type} photom has no wavelengths to recalibrate")
    f = np.where(used, change.factor(np.where(used, lam, 0.0), lam[used].min(),
                                     lam[used].max()), 1.0)
    desc = (f"{model.get('description') or 'photometric response'}; recalibrated: "
            f"x{change.scale:g} with a {change.tilt:+.0%} tilt blue to red")
    return model.replace(arrays={"phot_table.relresponse": (rel * f).astype(rel.dtype)},
                         meta={"description": desc})


def recalibrated_photom(refs: tuple[RefFile, ...], expected: Mapping[str, Mapping[str, str]],
                        changes: tuple[ResponseChange, ...]
                        ) -> tuple[tuple[RefFile, ...], dict[str, dict[str, str]]]:
    """A spectroscopic part's references and expected selections with each photom whose
    EXP_TYPE ``changes`` names replaced by its recalibrated version under the next free file
    serial of the part (same selection, same UseAfter)."""
    by_type = {c.exp_type: c for c in changes}
    serials: dict[tuple[str, str], int] = {}
    for r in refs:
        m = _SERIAL_NAME.match(r.filename)
        if m:
            key = (m["stem"], m["ext"])
            serials[key] = max(serials.get(key, 0), int(m["n"]))
    out, renamed = [], {}
    for r in refs:
        change = (by_type.get(str(r.model.get("exposure.type") or ""))
                  if r.reftype == "photom" and r.model is not None else None)
        m = _SERIAL_NAME.match(r.filename)
        if change is None or m is None:
            out.append(r)
            continue
        key = (m["stem"], m["ext"])
        serials[key] += 1
        new = replace(r, filename=f"{m['stem']}{serials[key]:04d}{m['ext']}",
                      model=changed_response(r.model, change))
        renamed[r.filename] = new.filename
        out.append(new)
    exp = {name: {rt: renamed.get(f, f) for rt, f in sel.items()}
           for name, sel in expected.items()}
    return tuple(out), exp


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
        ctx_refs, ctx_exp = [refs], [exp]
        for _ in range(1, ncontexts):  # context 2 on: the spectroscopic reference changes
            refs, exp = recalibrated_photom(refs, exp, SPEC_RESPONSE_CHANGES)
            ctx_refs.append(refs)
            ctx_exp.append(exp)
        spec_parts.append(tuple(ctx_refs[:ncontexts]))
        spec_expected.append(tuple(ctx_exp[:ncontexts]))
    img_parts = _share_imager_distortion([list(p.contexts) for p in imaging], all_spec_refs)
    parts = tuple(tuple(c) for c in img_parts) + tuple(spec_parts)
    expected = tuple(tuple(p.expected) for p in imaging) + tuple(spec_expected)
    return AllProgram(spec, seed, imaging, spectra, tuple(exposures), parts, expected)
