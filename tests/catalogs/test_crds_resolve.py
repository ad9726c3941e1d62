"""Offline resolution through the crds library against the generated cache."""

import os

import pytest

from catalogs.crds_cache import contexts_from_program, write_cache
from catalogs.crds_resolve import CrdsResolutionError, context_diff, resolve
from transforms.sim.program import simulate_program


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    from catalogs.crds_cache import write_reference_file as write_reference

    prog = simulate_program("small", seed=2)
    root = tmp_path_factory.mktemp("crds")
    write_cache(root, contexts_from_program(prog), write_reference=write_reference)
    return prog, root


@pytest.mark.parametrize("ctx", [0, 1])
def test_each_exposure_resolves_to_the_expected_files(cache, ctx):
    prog, root = cache
    context = f"jwst_{ctx + 1:04d}.pmap"
    before = {k: v for k, v in os.environ.items() if k.startswith("CRDS")}
    for e in prog.exposures:
        want = prog.expected[ctx][e.truth.name]
        got = resolve(e.uncal.meta, list(want), context, root)
        assert {k: os.path.basename(v) for k, v in got.items()} == want
        inst = e.uncal.meta["instrument.name"].lower()
        assert all(os.path.dirname(p) == str(root.resolve() / "references" / "jwst" / inst)
                   for p in got.values())
    assert {k: v for k, v in os.environ.items() if k.startswith("CRDS")} == before


def test_written_references_read_back(cache):
    from store.fits import read_reference

    prog, root = cache
    e = prog.exposures[0]
    got = resolve(e.uncal.meta, ["flat", "dark", "linearity"], "jwst_0002.pmap", root)
    flat = read_reference(got["flat"])
    assert flat.kind == "ref.flat" and flat.get("instrument.detector") == "NRCA1"
    assert read_reference(got["linearity"])["coeffs"].shape[0] == 4


def test_errors_name_context_reftype_exposure(cache):
    prog, root = cache
    meta = dict(prog.exposures[0].uncal.meta)
    with pytest.raises(CrdsResolutionError, match="jwst_0009.pmap"):
        resolve(meta, ["flat"], "jwst_0009.pmap", root)
    early = dict(meta, **{"observation.date": "2019-01-01"})
    with pytest.raises(CrdsResolutionError, match=r"no flat reference for jw01234001001"):
        resolve(early, ["flat"], "jwst_0001.pmap", root)
    other = dict(meta, **{"instrument.filter": "F444W"})
    with pytest.raises(CrdsResolutionError, match="jwst_0001.pmap.*flat"):
        resolve(other, ["flat"], "jwst_0001.pmap", root)
    flat = resolve(meta, ["flat"], "jwst_0001.pmap", root)["flat"]
    os.rename(flat, flat + ".moved")
    try:
        with pytest.raises(CrdsResolutionError, match="not in the cache"):
            resolve(meta, ["flat"], "jwst_0001.pmap", root)
    finally:
        os.rename(flat + ".moved", flat)


def test_context_diff_lists_changed_references(cache):
    _, root = cache
    rows = context_diff("jwst_0001.pmap", "jwst_0002.pmap", root)
    kinds = {(r["instrument"], r["reftype"], r["change"]) for r in rows}
    assert ("nircam", "flat", "added") in kinds and ("nircam", "flat", "deleted") in kinds
    assert ("niriss", "dark", "added") in kinds
    assert all(r["reftype"] in ("flat", "dark") for r in rows)
    assert context_diff("jwst_0001.pmap", "jwst_0001.pmap", root) == []


def test_two_caches_in_one_process_stay_apart(cache, tmp_path):
    prog, root = cache
    ctx1_only = contexts_from_program(prog)[:1]
    write_cache(tmp_path, ctx1_only, write_reference=lambda m, p: open(p, "w").close())
    meta = prog.exposures[2].uncal.meta
    a = resolve(meta, ["flat", "dark"], "jwst_0001.pmap", tmp_path)
    b = resolve(meta, ["flat", "dark"], "jwst_0002.pmap", root)
    assert all(p.startswith(str(tmp_path.resolve())) for p in a.values())
    assert all(p.startswith(str(root.resolve())) for p in b.values())
    assert os.path.basename(a["flat"]) != os.path.basename(b["flat"])
    with pytest.raises(CrdsResolutionError, match="contexts there: jwst_0001.pmap"):
        resolve(meta, ["flat"], "jwst_0002.pmap", tmp_path)


def test_not_applicable_reftype_is_reported(tmp_path, cache):
    from catalogs.crds_cache import CacheRef, ContextSpec
    from catalogs.crds_resolve import NOT_APPLICABLE

    prog, _ = cache
    meta = prog.exposures[0].uncal.meta
    refs = (CacheRef("area", "NIRCAM", "N/A", {"instrument.detector": "NRCA1",
                                                  "instrument.filter": "F150W",
                                                  "instrument.pupil": "CLEAR"}, "2022-01-01"),
            CacheRef("gain", "NIRCAM", "jwst_nircam_gain_0001.fits",
                     {"instrument.detector": "NRCA1"}, "2022-01-01", object()))
    write_cache(tmp_path, [ContextSpec(refs)], write_reference=lambda m, p: open(p, "w").close())
    got = resolve(meta, ["area", "gain"], "jwst_0001.pmap", tmp_path)
    assert got["area"] == NOT_APPLICABLE and got["gain"].endswith("jwst_nircam_gain_0001.fits")


def test_matches_crds_getreferences(cache):
    """The crds top-level API (what the jwst pipeline calls) picks the same files."""
    import crds

    from catalogs.crds_resolve import crds_environment, crds_header

    prog, root = cache
    for e in (prog.exposures[0], prog.exposures[-1]):
        want = prog.expected[1][e.truth.name]
        keys = ["META.INSTRUMENT.NAME", "META.INSTRUMENT.DETECTOR", "META.INSTRUMENT.FILTER",
                "META.INSTRUMENT.PUPIL", "META.INSTRUMENT.CHANNEL", "META.EXPOSURE.TYPE",
                "META.EXPOSURE.READPATT", "META.SUBARRAY.NAME", "META.EXPOSURE.NOUTPUTS",
                "META.OBSERVATION.DATE", "META.OBSERVATION.TIME"]
        header = crds_header(e.uncal.meta, keys)
        with crds_environment(root):
            got = crds.getreferences(header, reftypes=list(want), context="jwst_0002.pmap",
                                     observatory="jwst")
        assert {k: os.path.basename(v) for k, v in got.items()} == want


def test_reference_files_validate_in_stdatamodels(cache):
    import warnings

    dm = pytest.importorskip("stdatamodels.jwst.datamodels",
                             reason="stdatamodels is the test-only reference implementation")
    _, root = cache
    files = sorted((root / "references" / "jwst").glob("*/*"))
    assert len(files) >= 22
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        for f in files:
            with dm.open(f, strict_validation=True) as m:
                m.validate()
                assert m.meta.reftype.lower() == f.name.split("_")[2]


@pytest.mark.parametrize("order", ["early-first", "late-first"])
def test_memoised_selection_honours_useafter_dates(cache, order):
    """Resolution is memoised per selector with the date bucketed by the rmaps' UseAfter dates:
    the same exposure before and after context 2's later dark gets the two darks, whichever
    is asked first, and repeated asks give the same answer."""
    prog, root = cache
    base = dict(prog.exposures[0].uncal.meta)
    early = dict(base, **{"observation.date": "2024-05-01"})
    late = dict(base, **{"observation.date": "2024-07-01"})
    asks = [early, late] if order == "early-first" else [late, early]
    got = {}
    for _ in range(2):
        for m in asks:
            d = os.path.basename(resolve(m, ["dark"], "jwst_0002.pmap", root)["dark"])
            assert got.setdefault(m["observation.date"], d) == d
    assert got["2024-05-01"] != got["2024-07-01"]



def test_a_recycled_object_id_never_answers_for_another_reftype_list(cache, monkeypatch):
    """The slow path replaces a reftype list's memoised selection (a re-resolve); a freed
    selection's object id can then come back as another list's. Memo keys must not rest on
    such ids: with every id the same (a recycled id, made certain), gain and linearity, which
    select on the same parameters, still get their own files (seen once as 'needs the
    ifupost reference' in a full run)."""
    from catalogs import crds_resolve as CR

    prog, root = cache
    meta = dict(prog.exposures[0].uncal.meta)
    monkeypatch.setattr(CR, "id", lambda obj: 0, raising=False)
    monkeypatch.setattr(CR, "_SELECTION", {})
    monkeypatch.setattr(CR, "_RAW", {})
    monkeypatch.setattr(CR, "_RESOLVED", {})
    for _ in range(2):
        for rts in (["gain"], ["linearity"], ["gain", "linearity"]):
            assert sorted(resolve(meta, rts, "jwst_0001.pmap", root)) == rts
