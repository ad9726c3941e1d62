"""A NIRSpec MOS exposure's MSA metadata file (MSAMETFL) is found beside its uncal, as jwst's
assign_wcs finds it, and read into the stored pixels; a glob of uncal files that also matches
the ``_msa.fits`` does not ingest it as an exposure."""

from __future__ import annotations

from transforms.model import DataModel

SHUTTERS = [{"slitlet_id": 1, "msa_metadata_id": 1, "shutter_quadrant": 3, "shutter_row": 40,
             "shutter_column": c, "source_id": 10, "background": "N" if c == 6 else "Y",
             "shutter_state": "OPEN", "estimated_source_in_shutter_x": 0.5 if c == 6 else None,
             "estimated_source_in_shutter_y": 0.5 if c == 6 else None,
             "dither_point_index": 1, "primary_source": "Y" if c == 6 else "N",
             "fixed_slit": "NONE"} for c in (5, 6, 7)]
SOURCES = [{"program": 1234, "source_id": 10, "source_name": "src10", "alias": "S10",
            "ra": 53.1, "dec": -27.8, "preimage_id": "NONE", "stellarity": 1.0}]


def _uncal(**meta):
    return DataModel("uncal", {}, {"exposure.type": "NRS_MSASPEC",
                                   "instrument.msa_metadata_file": "jw01234006001_01_msa.fits",
                                   **meta})


def test_the_msa_file_beside_the_uncal_is_read_into_its_meta(tmp_path):
    from flows.ingest import with_msa_metadata
    from store.spec_references import read_msa_metafile, write_msa_metafile

    uncal_path = tmp_path / "jw01234006001_01101_00001_nrs1_uncal.fits"
    m = _uncal()
    assert with_msa_metadata(m, uncal_path) is m  # no file there: unchanged
    write_msa_metafile({"msa.shutter_info": SHUTTERS, "msa.source_info": SOURCES},
                       tmp_path / "jw01234006001_01_msa.fits")
    got = with_msa_metadata(m, uncal_path)
    want = read_msa_metafile(tmp_path / "jw01234006001_01_msa.fits")
    assert got.meta["msa.shutter_info"] == want["msa.shutter_info"]
    assert [r["shutter_column"] for r in got.meta["msa.shutter_info"]] == [5, 6, 7]
    assert got.meta["msa.source_info"][0]["source_name"] == "src10"
    assert "msa.shutter_info" not in m.meta  # the input is not changed
    # metadata already in the uncal wins; other exposure types are left alone
    own = _uncal(**{"msa.shutter_info": [], "msa.source_info": []})
    assert with_msa_metadata(own, uncal_path) is own
    fs = DataModel("uncal", {}, {"exposure.type": "NRS_FIXEDSLIT"})
    assert with_msa_metadata(fs, uncal_path) is fs


def test_a_glob_of_uncal_files_leaves_the_msa_file_out(tmp_path):
    from flows.commands.run_cmds import _expand

    for name in ("jw01234006001_01101_00001_nrs1_uncal.fits", "jw01234006001_01_msa.fits"):
        (tmp_path / name).write_bytes(b"")
    assert [p.rsplit("/", 1)[1] for p in _expand([str(tmp_path / "*.fits")])] == [
        "jw01234006001_01101_00001_nrs1_uncal.fits"]
