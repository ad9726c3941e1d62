"""Hostile inputs to `calops ingest` (and `calops run FILES`): truncated, garbled, mis-shaped,
mis-typed files, missing and wrong keywords, things that are not FITS at all. Each gives one
clear line and exit code 2, and the workspace loses nothing and gains nothing."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from tests.faults.conftest import assert_intact, cli, one_error, snapshot


@pytest.fixture(scope="module")
def plain_uncal(tmp_path_factory, fault_sim_dir) -> Path:
    """A simulated uncal as the SDP writes it: headers only (no calops ASDF extension), so
    every keyword is read from the header."""
    src = sorted((fault_sim_dir / "uncal").glob("*.fits"))[0]
    d = tmp_path_factory.mktemp("plain")
    out = d / src.name
    with fits.open(src) as h:
        keep = fits.HDUList([hdu.copy() for hdu in h if hdu.name != "ASDF"])
        keep.writeto(out, checksum=True)
    return out


def _variant(plain: Path, tmp: Path, edit, name: str | None = None) -> Path:
    out = tmp / (name or plain.name)
    with fits.open(plain) as h:
        hdul = fits.HDUList([hdu.copy() for hdu in h])
    edit(hdul)
    hdul.writeto(out, overwrite=True, checksum=True)
    return out


def _bytes(plain: Path, tmp: Path, edit, name: str | None = None) -> Path:
    out = tmp / (name or plain.name)
    out.write_bytes(edit(plain.read_bytes()))
    return out


def test_the_plain_file_itself_ingests(workspace, plain_uncal):
    """The control: the unmodified file is fine (so every failure below is the mutation's)."""
    rc, out, err = cli("--home", workspace.root, "ingest", plain_uncal)
    assert rc == 0 and "1 new" in out, err


# --- byte-level damage --------------------------------------------------------------------------

BYTE_DAMAGE = {
    "empty": lambda b: b"",
    "ten-bytes": lambda b: b[:10],
    "one-header-block": lambda b: b[:2880],
    "truncated-half": lambda b: b[: len(b) // 2],
    "truncated-last-100": lambda b: b[:-100],
    "truncated-last-block": lambda b: b[:-2880],
    "text": lambda b: b"SIMPLE? no, just some text\n" * 50,
    "random-bytes": lambda b: np.random.default_rng(1).integers(0, 256, 8640, np.uint8).tobytes(),
    "gzip-named-fits": lambda b: gzip.compress(b),
    "garbled-data-bytes": lambda b: b[:20000] + bytes(64) + b[20064:],
    "garbled-header-card": lambda b: b[:2880 + 800] + b"\xff\xfe" * 40 + b[2880 + 880:],
    "no-END-card": lambda b: b.replace(b"END" + b" " * 77, b"XND" + b" " * 77, 1),
    "appended-junk": lambda b: b + b"junk" * 100,
    "zeroed": lambda b: bytes(len(b)),
    "html-error-page": lambda b: b"<html><body>502 Bad Gateway</body></html>\n",
}


@pytest.mark.parametrize("damage", sorted(BYTE_DAMAGE))
def test_damaged_bytes(workspace, plain_uncal, tmp_path, damage):
    before = snapshot(workspace)
    bad = _bytes(plain_uncal, tmp_path, BYTE_DAMAGE[damage])
    rc, out, err = cli("--home", workspace.root, "ingest", bad)
    one_error(rc, err, bad.name)
    assert_intact(workspace, before)


# --- header and layout damage -------------------------------------------------------------------

def _sci(h):
    return h["SCI"]


HEADER_DAMAGE = {
    "no-sci": lambda h: h.pop(h.index_of("SCI")),
    "sci-2d": lambda h: setattr(_sci(h), "data", _sci(h).data[0, 0]),
    "sci-3d": lambda h: setattr(_sci(h), "data", _sci(h).data[0]),
    "sci-5d": lambda h: setattr(_sci(h), "data", _sci(h).data[None]),
    "sci-float32": lambda h: setattr(_sci(h), "data", _sci(h).data.astype(np.float32)),
    "sci-int32": lambda h: setattr(_sci(h), "data", _sci(h).data.astype(np.int32)),
    "sci-uint8": lambda h: setattr(_sci(h), "data", _sci(h).data.astype(np.uint8)),
    "sci-empty": lambda h: setattr(_sci(h), "data", _sci(h).data[:, :0]),
    "ngroups-mismatch": lambda h: h[0].header.set("NGROUPS", 99),
    "nints-mismatch": lambda h: h[0].header.set("NINTS", 7),
    "subsize-mismatch": lambda h: h[0].header.set("SUBSIZE1", 3),
    "ngroups-text": lambda h: h[0].header.set("NGROUPS", "many"),
    "nints-negative": lambda h: h[0].header.set("NINTS", -1),
    "sci-is-a-table": lambda h: h.__setitem__(h.index_of("SCI"), fits.BinTableHDU.from_columns(
        [fits.Column("a", "E", array=np.zeros(3))], name="SCI")),
}


@pytest.mark.parametrize("damage", sorted(HEADER_DAMAGE))
def test_damaged_layout(workspace, plain_uncal, tmp_path, damage):
    before = snapshot(workspace)
    bad = _variant(plain_uncal, tmp_path, HEADER_DAMAGE[damage])
    rc, out, err = cli("--home", workspace.root, "ingest", bad)
    one_error(rc, err, bad.name)
    assert_intact(workspace, before)


REQUIRED = ("INSTRUME", "DETECTOR", "EXP_TYPE", "READPATT", "NFRAMES", "GROUPGAP", "NGROUPS",
            "NINTS", "TFRAME", "TGROUP", "SUBARRAY", "SUBSTRT1", "SUBSTRT2", "SUBSIZE1",
            "SUBSIZE2")


@pytest.mark.parametrize("keyword", REQUIRED)
def test_missing_required_keyword(workspace, plain_uncal, tmp_path, keyword):
    def drop(h):
        for hdu in h:
            hdu.header.remove(keyword, ignore_missing=True, remove_all=True)

    before = snapshot(workspace)
    bad = _variant(plain_uncal, tmp_path, drop)
    rc, out, err = cli("--home", workspace.root, "ingest", bad)
    one_error(rc, err, bad.name)
    assert_intact(workspace, before)


# --- not a file at all ------------------------------------------------------------------------

def test_a_directory(workspace, tmp_path):
    d = tmp_path / "dir_uncal.fits"
    d.mkdir()
    rc, out, err = cli("--home", workspace.root, "ingest", d)
    one_error(rc, err, "dir_uncal.fits")


def test_a_glob_that_matches_nothing(workspace, tmp_path):
    rc, out, err = cli("--home", workspace.root, "ingest", str(tmp_path / "nothing*.fits"))
    one_error(rc, err, "no file matches")


def test_an_unreadable_file(workspace, plain_uncal, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    bad = tmp_path / plain_uncal.name
    bad.write_bytes(plain_uncal.read_bytes())
    bad.chmod(0)
    rc, out, err = cli("--home", workspace.root, "ingest", bad)
    one_error(rc, err)


def test_a_dangling_symlink(workspace, tmp_path):
    link = tmp_path / "gone_uncal.fits"
    link.symlink_to(tmp_path / "nowhere.fits")
    rc, out, err = cli("--home", workspace.root, "ingest", link)
    one_error(rc, err, "gone_uncal.fits")


def test_one_bad_file_among_good_ones_keeps_the_good_ones(workspace, plain_uncal, fault_sim_dir,
                                                            tmp_path):
    """Files are ingested in order; a bad one stops with one line, and those before it stay
    ingested (each is its own recording), nothing half-recorded."""
    good = sorted((fault_sim_dir / "uncal").glob("*.fits"))
    bad = _bytes(plain_uncal, tmp_path, BYTE_DAMAGE["truncated-half"], "zz_bad_uncal.fits")
    rc, out, err = cli("--home", workspace.root, "ingest", good[0], bad, good[1])
    one_error(rc, err, "zz_bad_uncal.fits")
    assert workspace.catalog.current_exposure_ids() == [good[0].name[:-len("_uncal.fits")]]
    assert_intact(workspace)


@pytest.mark.parametrize("name", ["jw01234 café_uncal.fits", "exposure with spaces_uncal.fits",
                                  "-leading-dash_uncal.fits"])
def test_odd_source_names_ingest(workspace, plain_uncal, tmp_path, name):
    """Spaces, non-ASCII and a leading dash in a source file name are fine."""
    f = tmp_path / name
    f.write_bytes(plain_uncal.read_bytes())
    rc, out, err = cli("--home", workspace.root, "ingest", f)
    assert rc == 0, err
    assert workspace.catalog.current_exposure_ids() == [name[: -len("_uncal.fits")]]
    assert_intact(workspace)
