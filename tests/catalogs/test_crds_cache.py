"""The generated CRDS cache: real mapping syntax, checksums, spec parkeys, shared mappings."""

import os
from dataclasses import replace

import pytest

from catalogs.crds_cache import (CacheRef, ContextSpec, CrdsCacheError, contexts_from_program,
                                 sha1_of_mapping, spec_for, write_cache)
from transforms.sim.program import program_spec, simulate_program


def _touch(model, path):
    open(path, "w").close()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    small = program_spec("small")
    f200 = replace(small.exposures[0], filter="F200W", exposure=9)
    spec = program_spec("small", exposures=tuple(small.exposures[i] for i in (0, 2, 5)) + (f200,))
    prog = simulate_program(spec, seed=1)
    root = tmp_path_factory.mktemp("crds")
    paths = write_cache(root, contexts_from_program(prog), write_reference=_touch)
    return prog, root, paths


def test_layout_and_checksums(cache):
    from crds.core import rmap

    from catalogs.crds_resolve import crds_environment

    prog, root, paths = cache
    maps = sorted(os.listdir(root / "mappings" / "jwst"))
    assert "jwst_0001.pmap" in maps and "jwst_0002.pmap" in maps
    assert (root / "config" / "jwst" / "server_config").exists()
    for name in maps:
        text = (root / "mappings" / "jwst" / name).read_text()
        line = next(l for l in text.splitlines() if "sha1sum" in l)
        assert sha1_of_mapping(text) in line
    with crds_environment(root):
        ctx = rmap.load_mapping("jwst_0002.pmap")  # crds verifies every checksum on load
        assert set(ctx.selections) == {"nircam", "niriss"}
        dark = ctx.get_imap("NIRCAM").get_rmap("dark")
        assert dark.parkey[0] == tuple(spec_for("nircam", "dark")["parkey"][0])


def test_unchanged_mappings_are_shared(cache):
    _, root, _ = cache
    p1 = (root / "mappings" / "jwst" / "jwst_0001.pmap").read_text()
    p2 = (root / "mappings" / "jwst" / "jwst_0002.pmap").read_text()
    assert "jwst_nircam_0001.imap" in p1 and "jwst_nircam_0002.imap" in p2
    i2 = (root / "mappings" / "jwst" / "jwst_nircam_0002.imap").read_text()
    assert "jwst_nircam_gain_0001.rmap" in i2 and "jwst_nircam_flat_0002.rmap" in i2


def test_refuses_wrong_match_keys(tmp_path):
    bad = CacheRef("flat", "NIRISS", "jwst_niriss_flat_0001.fits",
                   {"instrument.detector": "NIS", "exposure.readpatt": "NIS"}, "2022-01-01")
    with pytest.raises(CrdsCacheError, match="not parameters of the JWST NIRISS flat rmap"):
        write_cache(tmp_path, [ContextSpec((bad,))], write_reference=_touch)
    with pytest.raises(CrdsCacheError, match="at least one context"):
        write_cache(tmp_path, [])


def test_one_photom_per_detector_with_every_filter(cache):
    prog, root, _ = cache
    photoms = [r for r in prog.contexts[0] if r.reftype == "photom" and r.instrument == "NIRCAM"]
    assert len(photoms) == 1
    assert sorted(photoms[0].model["phot_table.filter"]) == ["F150W", "F200W"]
    flat = (root / "mappings" / "jwst" / "jwst_nircam_flat_0001.rmap").read_text()
    assert "('NRCA1', 'F150W', 'CLEAR')" in flat and "('NRCA1', 'F200W', 'CLEAR')" in flat


def test_every_jwst_reference_type_is_answered(cache):
    """A generated context answers every reference type JWST's does (jwst's prefetch asks the
    reftypes of every step, e.g. wavelengthrange, emicorr and pars-* for NIRCam imaging): a
    file where calops has one, N/A elsewhere (never 'unknown reference type')."""
    from catalogs.crds_cache import jwst_reftypes
    from catalogs.crds_resolve import NOT_APPLICABLE, resolve

    prog, root, _ = cache
    every = jwst_reftypes()
    assert {"wavelengthrange", "specwcs", "fflat", "filteroffset", "pars-jumpstep",
            "pars-detector1pipeline", "emicorr", "rscd"} <= set(every)
    for e in prog.exposures:
        got = resolve(e.uncal.meta, every, "jwst_0002.pmap", root)
        have = set(prog.expected[1][e.truth.name])
        assert {r for r, p in got.items() if p != NOT_APPLICABLE} == have, e.truth.name
    imap = (root / "mappings" / "jwst" / "jwst_nircam_0002.imap").read_text()
    assert "'wavelengthrange' : 'N/A'" in imap


def test_dark_rmaps_select_on_noutputs_as_jwst_sends_it(cache):
    """The spec's misspelt META.EXPOSUIRE.NOUTPUTS (no data model has it, so jwst and
    `crds bestrefs` always send it UNDEFINED) is written as META.EXPOSURE.NOUTPUTS."""
    _, root, _ = cache
    text = (root / "mappings" / "jwst" / "jwst_nircam_dark_0001.rmap").read_text()
    assert "META.EXPOSURE.NOUTPUTS" in text and "EXPOSUIRE" not in text
