"""JWST file names: build, parse, round trip, refuse what is not one."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.names import BadName, association_filename, jwst_filename, opt_elem, parse_filename

META = {
    "observation.program_number": "01234", "observation.observation_number": "001",
    "observation.visit_number": "001", "observation.visit_group": "01",
    "observation.sequence_id": "1", "observation.activity_id": "01",
    "observation.exposure_number": "00001", "instrument.detector": "NRCA1",
    "instrument.name": "NIRCAM", "instrument.filter": "F200W", "instrument.pupil": "CLEAR",
}


def test_exposure_name_as_jwst_writes_it():
    assert jwst_filename(META, "rate") == "jw01234001001_01101_00001_nrca1_rate.fits"
    assert jwst_filename(META, "cat").endswith("_cat.ecsv")


def test_numbers_are_zero_padded():
    meta = dict(META, **{"observation.program_number": 1234, "observation.exposure_number": 7})
    assert jwst_filename(meta, "uncal") == "jw01234001001_01101_00007_nrca1_uncal.fits"


def test_association_name_sorts_optical_elements():
    assert association_filename(META, "i2d") == "jw01234-o001_t001_nircam_clear-f200w_i2d.fits"
    assert association_filename(META, "cat", target=22).endswith("_t022_nircam_clear-f200w_cat.ecsv")
    assert opt_elem(None, None) == "clear"
    assert opt_elem("F444W", "F405N") == "f405n-f444w"


@settings(max_examples=25, deadline=None)
@given(
    p=st.integers(0, 99999), o=st.integers(0, 999), v=st.integers(0, 999), g=st.integers(0, 99),
    s=st.integers(0, 9), a=st.integers(0, 99), e=st.integers(0, 99999),
    det=st.sampled_from(["NRCA1", "NRCB4", "NRCALONG", "NIS", "GUIDER1"]),
    suffix=st.sampled_from(["uncal", "rate", "rateints", "cal", "i2d"]),
)
def test_exposure_name_round_trips(p, o, v, g, s, a, e, det, suffix):
    meta = {
        "observation.program_number": f"{p:05d}", "observation.observation_number": f"{o:03d}",
        "observation.visit_number": f"{v:03d}", "observation.visit_group": f"{g:02d}",
        "observation.sequence_id": str(s), "observation.activity_id": f"{a:02d}",
        "observation.exposure_number": f"{e:05d}", "instrument.detector": det,
    }
    name = jwst_filename(meta, suffix)
    parsed = parse_filename("/some/dir/" + name)
    assert parsed.pop("suffix") == suffix
    assert parsed.pop("kind") == "exposure"
    assert parsed == meta


def test_association_name_round_trips():
    parsed = parse_filename(association_filename(META, "i2d", target=3))
    assert parsed["observation.program_number"] == "01234"
    assert parsed["target"] == "003"
    assert parsed["instrument.name"] == "NIRCAM"
    assert parsed["opt_elem"] == "clear-f200w"
    assert parsed["suffix"] == "i2d"


@pytest.mark.parametrize("name", [
    "jw1234001001_01101_00001_nrca1_rate.fits",  # program too short
    "jw01234001001_01101_00001_nrca1_rate.txt",
    "rate.fits", "", "jw01234001001_01101_00001__rate.fits",
])
def test_parse_refuses_non_jwst_names(name):
    with pytest.raises(BadName, match="not a JWST file name"):
        parse_filename(name)


def test_build_refuses_missing_or_oversized_fields():
    meta = dict(META)
    del meta["observation.visit_group"]
    with pytest.raises(BadName, match="observation.visit_group"):
        jwst_filename(meta, "rate")
    with pytest.raises(BadName, match="observation.program_number"):
        jwst_filename(dict(META, **{"observation.program_number": "123456"}), "rate")
    with pytest.raises(BadName, match="suffix"):
        jwst_filename(META, "Rate")
