"""Spectroscopic references served by the generated CRDS cache with the real rmap parameters:
each NIRSpec FS/MOS and MIRI LRS exposure gets the references its spec2 steps declare, N/A
where the mode has none, and the files read back as the models the simulator made."""

from __future__ import annotations

import pytest

from catalogs import crds_resolve
from catalogs.crds_cache import CacheRef, ContextSpec, spec_for, write_cache
from store.fits import read_reference
from store.identity import product_id
from transforms import plans, registry
from transforms.sim import slit_program as SPG


def test_specs_spell_exp_type_as_products_carry_it():
    from catalogs.crds_cache import parkey_to_meta

    assert "META.INSTRUMENT.EXP_TYPE" in spec_for("NIRSPEC", "disperser")["parkey"][0]
    assert parkey_to_meta("META.INSTRUMENT.EXP_TYPE") == "exposure.type"
    assert "META.EXPOSURE.TYPE" in spec_for("NIRSPEC", "area")["parkey"][0]


def _cache(root, prog):
    write_cache(root, [ContextSpec(tuple(CacheRef(r.reftype, r.instrument, r.filename,
                                                  dict(r.match), r.useafter, r.model)
                                         for r in prog.references))])
    return root


@pytest.fixture(scope="module")
def spec_cache(tmp_path_factory):
    """One cache per program (each program numbers its own reference files)."""
    from dataclasses import replace

    mos = replace(SPG.mos_program(nod=False, imprint=False), ref_window=(1, 1101, 2048, 300))
    progs = [SPG.simulate_spec_program(SPG.fs_program(), seed=1),
             SPG.simulate_spec_program(SPG.lrs_program(), seed=2),
             SPG.simulate_spec_program(mos, seed=3)]
    return [(_cache(tmp_path_factory.mktemp(f"crds{i}"), p), p) for i, p in enumerate(progs)]


def test_every_spec2_reference_resolves(spec_cache):
    for root, prog in spec_cache:
        for ex in prog.exposures:
            meta = ex.model.meta
            want = prog.refs[ex.truth.name]
            for p in plans.default_plan("spec2", {}, meta=meta):
                spec = registry.get(p.name)
                got = crds_resolve.resolve(meta, list(spec.reftypes), "jwst_0001.pmap", root)
                for rt, path in got.items():
                    if rt in want:
                        assert path != crds_resolve.NOT_APPLICABLE, (p.name, rt)
                        assert product_id(read_reference(path)) == product_id(want[rt])
                    else:
                        assert path == crds_resolve.NOT_APPLICABLE, (p.name, rt, path)
                for rt in spec.optional_reftypes:
                    try:
                        got = crds_resolve.resolve(meta, [rt], "jwst_0001.pmap", root)
                    except crds_resolve.CrdsResolutionError:
                        assert rt not in want
                        continue
                    if rt in want:
                        assert product_id(read_reference(got[rt])) == product_id(want[rt])


def test_fs_and_mos_get_their_own_models(spec_cache):
    (rfs, fs), _, (rmos, mos) = spec_cache
    a = crds_resolve.resolve(fs.exposures[0].model.meta, ["photom", "area", "barshadow"],
                             "jwst_0001.pmap", rfs)
    b = crds_resolve.resolve(mos.exposures[0].model.meta, ["photom", "area", "barshadow"],
                             "jwst_0001.pmap", rmos)
    assert a["barshadow"] == crds_resolve.NOT_APPLICABLE
    assert read_reference(b["area"]).get("model_type") == "NirspecMosAreaModel"
    assert read_reference(a["photom"]).get("model_type") == "NrsFsPhotomModel"
    assert read_reference(b["barshadow"]).get("model_type") == "BarshadowModel"
