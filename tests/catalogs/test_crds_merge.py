"""Merging the contexts of programs simulated apart into one cache (``merge_contexts``): file
names that collide are renumbered, a shared file is kept once, and two contents for the same
selection are refused."""

import numpy as np
import pytest

from catalogs.crds_cache import (
    CacheRef,
    ContextSpec,
    CrdsCacheError,
    merge_contexts,
    rename_expected,
)
from transforms.model import DataModel

UA = "2022-01-01T00:00:00"


def _model(value: float, **meta) -> DataModel:
    return DataModel("ref.mask", {"dq": np.full((2, 2), value, np.float32)},
                     {"reftype": "MASK", **meta})


def _ref(name, match, model, reftype="mask", inst="MIRI"):
    return CacheRef(reftype, inst, name, match, UA, model)


def _part(*refs):
    return [ContextSpec(tuple(refs)), ContextSpec(tuple(refs))]


def test_colliding_names_with_other_content_are_renumbered():
    a = _ref("jwst_miri_mask_0001.fits", {"instrument.detector": "MIRIMAGE"}, _model(1))
    b = _ref("jwst_miri_mask_0001.fits", {"instrument.detector": "MIRIMAGE",
                                          "subarray.name": "FULL"}, _model(2))
    c = _ref("jwst_miri_mask_0002.fits", {"instrument.detector": "MIRIMAGE",
                                          "subarray.name": "SUB64"}, _model(3))
    ctxs, renames = merge_contexts([_part(a), _part(b, c)])
    assert renames == [{}, {"jwst_miri_mask_0001.fits": "jwst_miri_mask_0003.fits"}]
    names = [r.filename for r in ctxs[0].references]
    assert names == ["jwst_miri_mask_0001.fits", "jwst_miri_mask_0003.fits",
                     "jwst_miri_mask_0002.fits"]
    assert ctxs[0].references[1].model is b.model and ctxs[1] == ctxs[0]
    exp = rename_expected({"x_uncal.fits": {"mask": "jwst_miri_mask_0001.fits"}}, renames[1])
    assert exp == {"x_uncal.fits": {"mask": "jwst_miri_mask_0003.fits"}}


def test_same_content_and_selection_is_one_file():
    a = _ref("jwst_miri_rscd_0001.fits", {"instrument.detector": "MIRIMAGE",
                                          "instrument.filter": "N/A"}, _model(1), "rscd")
    b = _ref("jwst_miri_rscd_0007.fits", {"instrument.detector": "MIRIMAGE"}, _model(1), "rscd")
    ctxs, renames = merge_contexts([_part(a), _part(b)])
    assert renames[1] == {"jwst_miri_rscd_0007.fits": "jwst_miri_rscd_0001.fits"}
    assert [r.filename for r in ctxs[0].references] == ["jwst_miri_rscd_0001.fits"]


def test_same_selection_with_other_content_is_refused():
    a = _ref("jwst_miri_distortion_0001.asdf", {"instrument.detector": "MIRIMAGE"},
             _model(1, **{"exposure.type": "MIR_IMAGE"}), "distortion")
    b = _ref("jwst_miri_distortion_0001.asdf", {"instrument.detector": "MIRIMAGE"},
             _model(1, **{"exposure.type": "MIR_IMAGE|MIR_LRS-FIXEDSLIT"}), "distortion")
    with pytest.raises(CrdsCacheError, match="both match .* with different content"):
        merge_contexts([_part(a), _part(b)])


def test_parts_need_the_same_number_of_contexts():
    a = _ref("jwst_miri_mask_0001.fits", {"instrument.detector": "MIRIMAGE"}, _model(1))
    with pytest.raises(CrdsCacheError, match="numbers of contexts"):
        merge_contexts([_part(a), [ContextSpec((a,))]])


def test_default_program_shares_the_imager_distortion_and_names_spec_stage1_refs():
    """The composition (no simulation: only the pure helpers) gives the spectroscopic
    exposures' detector1 references selections of the real rmap parameters."""
    from catalogs.crds_cache import spec_for
    from transforms.sim.all_program import STAGE1_SELECTORS, all_program

    spec = all_program()
    names = {(s.name, e.observation) for s in spec.spectra for e in s.exposures}
    assert names == {("fs", 4), ("lrs", 5), ("mos", 6), ("mrs", 7), ("nrs_ifu", 8)}
    assert [e.pattern for s in spec.spectra if s.name == "lrs" for e in s.exposures] == \
        ["ALONG-SLIT-NOD"] * 2  # a nod pair: its spec3 association exists
    assert [s.name for s in all_program(without=("mos", "ifu")).spectra] == ["fs", "lrs"]
    assert {e.observation for s in spec.imaging for e in s.exposures} == {1, 2, 3}
    for inst, table in STAGE1_SELECTORS.items():
        for rt, keys in table.items():
            parkeys = {k.lower().removeprefix("meta.") for k in spec_for(inst, rt)["parkey"][0]}
            assert set(keys) <= parkeys, (inst, rt)
