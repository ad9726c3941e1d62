"""The IFU observations of the default program (``sim.ifu_program``): their references are
selected on the parameters of the real JWST rmaps, written in stdatamodels' formats, and the
parts can be left out of ``all_program``."""

from __future__ import annotations

import pytest

from transforms.sim import all_program as AP
from transforms.sim import ifu_program as IFU


@pytest.mark.parametrize("inst", sorted(IFU.IFU_SELECTORS))
def test_selectors_are_the_real_rmap_parameters(inst):
    from catalogs.crds_cache import parkey_to_meta, spec_for

    for rt, keys in IFU.IFU_SELECTORS[inst].items():
        real = tuple(parkey_to_meta(k) for k in spec_for(inst, rt)["parkey"][0])
        assert keys == real, (inst, rt, real)


def test_asdf_layouts_are_stores():
    from store.ifu_references import ASDF_MODELS

    assert set(IFU.ASDF_MODEL_TYPES) == set(ASDF_MODELS)


def test_all_program_has_the_ifu_observations_unless_left_out():
    with_ifu = AP.all_program()
    without = AP.all_program(without=("ifu",))
    ifu = [s for s in with_ifu.spectra if isinstance(s, IFU.IfuProgramSpec)]
    assert [(s.instrument, {e.observation for e in s.exposures}) for s in ifu] == [
        ("MIRI", {IFU.MRS_OBSERVATION}), ("NIRSPEC", {IFU.NRS_IFU_OBSERVATION})]
    assert all(len(s.exposures) == 2 for s in ifu)
    assert without.spectra == tuple(s for s in with_ifu.spectra if s not in ifu)
    assert without.imaging == with_ifu.imaging
