"""Stage 3 spectroscopy (calwebb_spec3 for NIRSpec FS/MOS and MIRI LRS fixed slit):
the cal exposures of an association -> s2d, x1d and c1d holding every source.

Step order, jwst 3.0's Spec3Pipeline order of the steps calops has: master_background,
outlier_detection (2.0: jwst's spec mode), pixel_replace, resample_spec, extract_1d, combine_1d.

- master_background subtracts the master background of the association's background members
  and returns the science exposures (when it is skipped the background members are dropped all
  the same, as jwst's ``split_container``).
- resample_spec (given the tuple of exposures) rectifies every source onto one grid per source:
  the ``s2d`` holds one slit per source, named by its source key (``s00001``), with
  ``product.source_id``/``product.slit_name`` filling the association's product-name template.
- extract_1d extracts one spectrum per source from the s2d: the ``x1d``.
- combine_1d combines, per source, the spectra of every exposure (each rectified and extracted
  alone with the plan's resample_spec and extract_1d settings): the ``c1d``. (jwst 3.0 makes a
  c1d only for modes it does not resample; calops makes one for every mode, as build 10.0's
  operations products include combined spectra, and so that the S200A1 + S200A2 combination
  is also visible exposure by exposure.)

The per-exposure extraction for combine_1d rectifies with the plan's resample_spec version
(1.0 when the plan has none), as combine_1d's inputs come after resample_spec in the chain.
The steps before resample_spec that rectify take their grid from their own version
(outlier_detection 2.0/2.1 and master_background 1.0/1.1 use 1.0's; 2.2 and 1.2 use 1.1's), so
each step's output is a function of its own recipe, and the locked builds that pin the older
versions make the products they always made.

``calops export`` writes one JWST-named file per source and product.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from transforms import spectral as S
from transforms.associations_spec import SPEC3_EXP_TYPES, spec3_associations
from transforms.model import DataModel
from transforms.plans import OnStep, PlanError, check_plan
from transforms.registry import PlannedStep, Stage, register_stage
from transforms.spec2 import extract_1d as ex
from transforms.spec2 import resample_spec as rs
from transforms.spec3 import combine_1d, master_background, outlier_detection  # noqa: F401
from transforms.spec3 import (_ifu_chain3, master_background_v11,  # noqa: F401
                              master_background_v12, outlier_detection_v21,
                              outlier_detection_v22, spectral_leak)
from transforms.ifu import IFU_EXP_TYPES, is_ifu_exposure

__all__ = ["STAGE", "STEPS", "Spec3Error", "run"]

STEPS = ("master_background", "outlier_detection", "pixel_replace", "resample_spec",
         "cube_build", "extract_1d", "spectral_leak", "combine_1d")
# integral-field associations make cubes (s3d) and their spectra, no s2d or c1d
MODE_OUTPUTS = {"NRS_IFU": ("s3d", "x1d"), "MIR_MRS": ("s3d", "x1d")}


class Spec3Error(ValueError):
    """A spec3 plan or input that cannot run."""


def _skip(models: tuple[DataModel, ...], name: str) -> tuple[DataModel, ...]:
    return tuple(m.replace(meta={f"cal_step.{name}": "SKIPPED"}) for m in models)


def exposure_spectra(models: Sequence[DataModel], rparams: rs.ResampleSpecParams,
                     eparams: ex.Extract1dParams, refs: Mapping[str, DataModel],
                     resampler: rs.Resampler | None = None) -> tuple[DataModel, ...]:
    """Each exposure rectified (by ``resampler``: the planned resample_spec version's; None:
    1.0's) and extracted alone, its spectra tagged with their source's product fields (what
    combine_1d combines)."""
    resampler = resampler or rs.resampler("1.0")
    fields = {key: rs.slit_name_field(members) for key, members in rs.group_by_source(models)}
    out = []
    for m in models:
        keys = {s.name: (rs.S.source_key(s) if S.is_multislit(m) else "target")
                for s in S.slits(m)}
        x1d = ex.extract_model(resampler.resample_exposure(m, rparams), refs, eparams)
        specs = []
        for sp in S.spectra(x1d):
            key = keys.get(sp.name, "target")
            specs.append(S.Spectrum(sp.name, sp.columns, {
                **sp.meta, "product.source_id": key, "product.slit_name": fields.get(key, "")}))
        out.append(S.spectra_product("x1d", x1d.meta, specs))
    return tuple(out)


_STEP_PRODUCT = {"resample_spec": "s2d", "extract_1d": "x1d", "combine_1d": "c1d"}


def run(cals: Sequence[DataModel], plan: Sequence[PlannedStep], on_step: OnStep | None = None
        ) -> dict[str, Any]:
    """Run the spec3 steps of ``plan`` on an association's cal exposures."""
    cals = tuple(cals)
    if not cals:
        raise Spec3Error("spec3 needs at least one cal exposure")
    bad = [m.kind for m in cals if m.kind != "cal"]
    if bad:
        raise Spec3Error(f"spec3 takes cal products, got kinds {sorted(set(bad))}")
    if all(is_ifu_exposure(m.meta) for m in cals):  # MIR_MRS, NRS_IFU: cubes
        try:
            check_plan("spec3", plan, cals[0].meta)
        except PlanError as exc:
            raise Spec3Error(f"spec3 plan: {exc}") from None
        if not master_background.split(cals)[0]:
            raise Spec3Error("spec3: the association has no science member")
        return _ifu_chain3.run_ifu3(cals, plan, on_step)
    plan = [p for p in plan if p.spec.name not in ("cube_build", "spectral_leak")]
    if not all(S.is_spectral_image(m) for m in cals):
        raise Spec3Error("spec3 takes 2-D spectra (slits, or images with a wavelength array)")
    try:
        check_plan("spec3", plan, cals[0].meta)
    except PlanError as exc:
        raise Spec3Error(f"spec3 plan: {exc}") from None
    by = {p.spec.name: p for p in plan}
    # combine_1d's singles are rectified as the planned resample_spec does (1.0 without one)
    rversion = by["resample_spec"].spec.version if "resample_spec" in by else "1.0"
    models = cals
    if "master_background" not in by or by["master_background"].skip:
        models = master_background.split(models)[0]
        if not models:
            raise Spec3Error("spec3: the association has no science member")
    out: dict[str, Any] = {}
    for p in plan:
        spec, params, refs, skip = p.spec, p.params, p.refs or {}, p.skip
        name = spec.name
        if name == "resample_spec":
            out["s2d"] = None if skip else spec.apply(models, refs, params)
        elif name == "extract_1d":
            if not skip and out.get("s2d") is not None:
                out["x1d"] = spec.apply(out["s2d"], refs, params)
        elif name == "combine_1d":
            if not skip:
                rp = by["resample_spec"].params if "resample_spec" in by else \
                    rs.ResampleSpecParams()
                ep = by["extract_1d"] if "extract_1d" in by else None
                singles = exposure_spectra(models, rp, ep.params if ep else ex.Extract1dParams(),
                                           (ep.refs or {}) if ep else {},
                                           rs.resampler(rversion))
                out["c1d"] = spec.apply(singles, refs, params)
        elif name == "pixel_replace":
            models = _skip(models, name) if skip else tuple(spec.apply(m, refs, params)
                                                            for m in models)
        elif skip:
            models = _skip(models, name)
        else:
            models = tuple(spec.apply(models, refs, params))
        if on_step is not None:  # one product per step: resample_spec's s2d, extract_1d's x1d,
            # combine_1d's c1d; the steps before them change a set of exposures (no snapshot)
            on_step(name, lambda o=out.get(_STEP_PRODUCT.get(name, "")): o)
    out["crf"] = models
    return out


STAGE = register_stage(Stage(
    name="spec3", subject="association", reads=("spec2:cal",), outputs=("s2d", "x1d", "c1d"),
    steps=STEPS, exp_types=SPEC3_EXP_TYPES + IFU_EXP_TYPES, run=run,
    associate=spec3_associations, mode_outputs=MODE_OUTPUTS,
    asn_exptypes=("science", "background"),
    doc="calibrated spectra of an association -> per-source rectified, extracted and combined "
        "spectra (calwebb_spec3)"))
