"""NIRSpec references served by the generated CRDS cache with the real rmap parameters."""

from __future__ import annotations

import pytest

from catalogs import crds_resolve
from catalogs.crds_cache import CacheRef, ContextSpec, spec_for, write_cache
from transforms.sim.detector import Effects
from transforms.sim.nirspec import NirspecExposureSpec, cache_entries, simulate_nirspec

STAGE1 = ["mask", "saturation", "superbias", "linearity", "dark", "gain", "readnoise"]


def test_nirspec_rmaps_select_on_readpatt_where_irs2_needs_it():
    for rt in ("mask", "readnoise", "dark", "superbias", "refpix"):
        assert "META.EXPOSURE.READPATT" in spec_for("NIRSPEC", rt)["parkey"][0]
    assert spec_for("NIRSPEC", "pictureframe")["parkey"][0] == ("META.INSTRUMENT.DETECTOR",)
    assert "META.EXPOSURE.READPATT" not in spec_for("NIRCAM", "mask")["parkey"][0]


@pytest.fixture(scope="module")
def nirspec_cache(tmp_path_factory):
    quiet = Effects.noiseless()
    exps = [simulate_nirspec(NirspecExposureSpec(detector=d, subarray=s, ngroups=2, exposure=i),
                             seed=3, effects=quiet)
            for i, (d, s) in enumerate((("NRS1", "SUBS200A1"), ("NRS2", "SUBS200A1"),
                                        ("NRS1", "SUB2048")), start=1)]
    refs = cache_entries(exps)
    root = tmp_path_factory.mktemp("crds")
    write_cache(root, [ContextSpec(tuple(CacheRef(r.reftype, r.instrument, r.filename,
                                                  dict(r.match), r.useafter, r.model)
                                         for r in refs))])
    return root, exps, refs


def test_each_exposure_gets_its_detectors_references(nirspec_cache):
    root, exps, refs = nirspec_cache
    for e in exps:
        got = crds_resolve.resolve(e.uncal.meta, STAGE1 + ["refpix"], "jwst_0001.pmap", root)
        assert got["refpix"] == crds_resolve.NOT_APPLICABLE  # traditional readout
        for rt in STAGE1:
            ref = next(r for r in refs if r.filename == got[rt].rsplit("/", 1)[-1])
            assert ref.match["instrument.detector"] == e.spec.detector
            if rt == "dark":
                assert ref.match["subarray.name"] == e.spec.subarray
    # the two NRS1 windows share everything but the dark (its frame time differs)
    a = crds_resolve.resolve(exps[0].uncal.meta, STAGE1, "jwst_0001.pmap", root)
    c = crds_resolve.resolve(exps[2].uncal.meta, STAGE1, "jwst_0001.pmap", root)
    assert {k for k in STAGE1 if a[k] != c[k]} == {"dark"}


@pytest.mark.slow
def test_irs2_and_traditional_exposures_get_their_own_formats(tmp_path):
    """IRS2 and traditional full frames of one detector: their own mask, superbias, dark and
    read noise (READPATT), the IRS2 refpix coefficients for IRS2 only (N/A otherwise), the
    rest and the picture frame shared."""
    from store.fits import read_reference

    q = Effects.noiseless()
    a = simulate_nirspec(NirspecExposureSpec(detector="NRS1", subarray="FULL",
                                             readpatt="NRSIRS2", ngroups=2), seed=3, effects=q)
    b = simulate_nirspec(NirspecExposureSpec(detector="NRS1", subarray="FULL", readpatt="NRS",
                                             ngroups=2, exposure=2), seed=3, effects=q)
    write_cache(tmp_path, [ContextSpec(tuple(CacheRef(r.reftype, r.instrument, r.filename,
                                                      dict(r.match), r.useafter, r.model)
                                             for r in cache_entries([a, b])))])
    rts = STAGE1 + ["refpix", "pictureframe"]
    ra = crds_resolve.resolve(a.uncal.meta, rts, "jwst_0001.pmap", tmp_path)
    rb = crds_resolve.resolve(b.uncal.meta, rts, "jwst_0001.pmap", tmp_path)
    assert {rt for rt in rts if ra[rt] != rb[rt]} == {"mask", "superbias", "dark", "readnoise",
                                                      "refpix"}
    assert rb["refpix"] == crds_resolve.NOT_APPLICABLE
    assert read_reference(ra["mask"])["dq"].shape == (3200, 2048)
    assert read_reference(rb["mask"])["dq"].shape == (2048, 2048)
