"""Context 2 of the default program recalibrates the FS and LRS photometric responses: a new
photom file per mode, selected like the old one, whose relative response is the old one times
the declared factor (and nothing else changes)."""

from __future__ import annotations

import numpy as np

from catalogs.crds_cache import contexts_from_refs, merge_contexts
from transforms.model import DataModel
from transforms.sim.all_program import (
    SPEC_RESPONSE_CHANGES,
    ResponseChange,
    changed_response,
    recalibrated_photom,
)
from transforms.sim.program import RefFile


def _photom(exp_type: str, lo: float, hi: float, nelem: int = 50, pad: int = 10) -> DataModel:
    lam = np.zeros((2, nelem + pad), np.float32)
    rel = np.zeros_like(lam)
    lam[:, :nelem] = np.linspace(lo, hi, nelem)
    rel[:, :nelem] = 1.0 + 0.1 * np.sin(lam[:, :nelem])
    return DataModel("ref.photom", {"phot_table.wavelength": lam,
                                    "phot_table.relresponse": rel,
                                    "phot_table.nelem": np.full(2, nelem, np.int16)},
                     {"reftype": "PHOTOM", "exposure.type": exp_type, "description": "sim"})


def _ref(name: str, model: DataModel | None, match: dict, reftype: str = "photom") -> RefFile:
    inst = "MIRI" if "miri" in name else "NIRSPEC"
    return RefFile(reftype, inst, name, model, match, "2022-01-01T00:00:00")


def test_declared_changes_are_a_few_percent_with_wavelength_structure():
    modes = {c.exp_type for c in SPEC_RESPONSE_CHANGES}
    assert modes == {"NRS_FIXEDSLIT", "MIR_LRS-FIXEDSLIT"}
    for c in SPEC_RESPONSE_CHANGES:
        assert 0.005 < abs(c.scale - 1) < 0.1 and c.tilt != 0


def test_changed_response_multiplies_the_used_elements_only():
    old = _photom("NRS_FIXEDSLIT", 0.9, 1.9)
    ch = ResponseChange("NRS_FIXEDSLIT", 1.03, 0.02)
    new = changed_response(old, ch)
    lam, a = old.arrays["phot_table.wavelength"], old.arrays["phot_table.relresponse"]
    a_before = a.copy()
    b = new.arrays["phot_table.relresponse"]
    used = lam > 0
    np.testing.assert_allclose(b[used] / a[used], ch.factor(lam[used], 0.9, 1.9), rtol=1e-6)
    assert np.isclose((b / np.where(used, a, 1))[0, 0], 1.03 * 0.98, rtol=1e-6)
    assert np.isclose((b / np.where(used, a, 1))[0, 49], 1.03 * 1.02, rtol=1e-6)
    assert np.array_equal(b[~used], a[~used])
    assert b.dtype == a.dtype and np.array_equal(a, a_before)  # the input is not changed
    assert "recalibrated" in new.get("description")


def test_recalibrated_photom_renames_selects_alike_and_leaves_the_rest():
    fs = _photom("NRS_FIXEDSLIT", 0.9, 1.9)
    mos = _photom("NRS_MSASPEC", 0.9, 1.9)
    lrs = _photom("MIR_LRS-FIXEDSLIT", 4.0, 14.0)
    refs = (_ref("jwst_nirspec_photom_0001.fits", fs, {"exposure.type": "NRS_FIXEDSLIT"}),
            _ref("jwst_nirspec_photom_0002.fits", mos, {"exposure.type": "NRS_MSASPEC"}),
            _ref("jwst_nirspec_flat_0001.fits", fs, {"exposure.type": "NRS_FIXEDSLIT"}, "flat"),
            _ref("N/A", None, {"exposure.type": "NRS_FIXEDSLIT"}, "barshadow"),
            _ref("jwst_miri_photom_0001.fits", lrs, {"instrument.filter": "P750L"}))
    expected = {"fs_uncal.fits": {"photom": "jwst_nirspec_photom_0001.fits",
                                  "flat": "jwst_nirspec_flat_0001.fits"},
                "mos_uncal.fits": {"photom": "jwst_nirspec_photom_0002.fits"},
                "lrs_uncal.fits": {"photom": "jwst_miri_photom_0001.fits"}}
    new, exp = recalibrated_photom(refs, expected, SPEC_RESPONSE_CHANGES)
    names = [r.filename for r in new]
    assert names == ["jwst_nirspec_photom_0003.fits", "jwst_nirspec_photom_0002.fits",
                     "jwst_nirspec_flat_0001.fits", "N/A", "jwst_miri_photom_0002.fits"]
    for a, b in zip(refs, new):
        assert (a.match, a.useafter, a.reftype) == (b.match, b.useafter, b.reftype)
    assert new[1] is refs[1] and new[2] is refs[2] and new[3] is refs[3]  # MOS, flat, N/A kept
    assert exp == {"fs_uncal.fits": {"photom": "jwst_nirspec_photom_0003.fits",
                                     "flat": "jwst_nirspec_flat_0001.fits"},
                   "mos_uncal.fits": {"photom": "jwst_nirspec_photom_0002.fits"},
                   "lrs_uncal.fits": {"photom": "jwst_miri_photom_0002.fits"}}
    # one cache of both contexts: the old file in context 1 only, the new one in context 2 only
    merged, _ = merge_contexts([contexts_from_refs((refs, new))])
    c1 = {r.filename for r in merged[0].references}
    c2 = {r.filename for r in merged[1].references}
    assert "jwst_nirspec_photom_0001.fits" in c1 - c2
    assert "jwst_nirspec_photom_0003.fits" in c2 - c1
    assert "jwst_miri_photom_0002.fits" in c2 - c1 and "jwst_miri_photom_0001.fits" in c1 - c2
