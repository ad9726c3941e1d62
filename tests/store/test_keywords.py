"""The meta key <-> FITS keyword table agrees with the stdatamodels schemas it was taken from."""

from __future__ import annotations

import pytest

from store import keywords as kw

datamodels = pytest.importorskip(
    "stdatamodels.jwst.datamodels", reason="stdatamodels (test-only dependency) is not installed")
from stdatamodels.schema import walk_schema  # noqa: E402

_SCHEMA_TYPES = {"string": str, "integer": int, "number": float, "boolean": bool}


def _schema_keywords(*model_names: str) -> dict[str, tuple[str, str, str | None]]:
    """schema path -> (FITS keyword, header, schema type) over the given models' schemas."""
    out: dict[str, tuple[str, str, str | None]] = {}

    def cb(sub, path, combiner, ctx, recurse):
        if isinstance(sub, dict) and "fits_keyword" in sub:
            out[".".join(str(p) for p in path)] = (
                sub["fits_keyword"], sub.get("fits_hdu", "PRIMARY"), sub.get("type"))

    for name in model_names:
        walk_schema(getattr(datamodels, name)().schema, cb)
    return out


@pytest.fixture(scope="module")
def product_schema():
    return _schema_keywords("ImageModel", "CubeModel", "Level1bModel")


@pytest.fixture(scope="module")
def reference_schema():
    return _schema_keywords("FlatModel", "DarkModel", "PixelAreaModel", "DistortionModel",
                            "ReadnoiseModel", "ResetModel")


def _check(entries, schema):
    bad = []
    for e in entries:
        if e.schema_path is None:
            continue
        found = schema.get(e.schema_path)
        if found is None:
            bad.append(f"{e.key}: {e.schema_path} not in the schema")
            continue
        keyword, hdu, typ = found
        if keyword != e.keyword or hdu != e.hdu:
            bad.append(f"{e.key}: table says {e.hdu}/{e.keyword}, schema says {hdu}/{keyword}")
        if typ is not None and _SCHEMA_TYPES.get(typ) is not e.type:
            bad.append(f"{e.key}: table type {e.type.__name__}, schema type {typ}")
    return bad


def test_every_product_keyword_matches_the_schema(product_schema):
    assert _check(kw.KEYWORDS, product_schema) == []


def test_every_reference_keyword_matches_the_schema(reference_schema):
    assert _check(kw.REFERENCE, reference_schema) == []


def test_every_registered_step_declares_a_cal_step_keyword_of_the_schema(product_schema):
    """Each step's S_* keyword is spelled as stdatamodels' core schema spells it, under
    meta.cal_step (dark_current -> S_DARK, the schema's cal_step.dark_sub)."""
    from transforms import registry

    by_keyword = {v[0]: path for path, v in product_schema.items()
                  if path.startswith("meta.cal_step.")}
    keys = kw.product_table()
    for step, keyword in registry.keywords().items():
        assert keyword in by_keyword, f"{step}: {keyword} is not a cal_step keyword of the schema"
        assert keys[f"cal_step.{step}"].keyword == keyword
    assert by_keyword["S_DARK"] == "meta.cal_step.dark_sub"
    assert keys["cal_step.dark_current"].keyword == "S_DARK"


def test_ref_files_are_all_in_the_table(product_schema):
    keys = kw.by_key()
    for reftype, keyword in kw.REF_FILE.items():
        name = kw.REF_SCHEMA_NAME.get(reftype, reftype)  # MSAOPER: ref_file.badshutter
        assert product_schema[f"meta.ref_file.{name}.name"][0] == keyword
        assert keys[f"ref_file.{reftype}"].keyword == keyword


@pytest.mark.parametrize("table", [kw.KEYWORDS, kw.REFERENCE], ids=["products", "references"])
def test_keywords_are_short_and_unique(table):
    assert all(len(e.keyword) <= 8 for e in table), "HIERARCH keywords are not wanted"
    assert len({(e.hdu, e.keyword) for e in table}) == len(table)
    assert len({e.key for e in table}) == len(table)
    assert {e.hdu for e in table} <= {"PRIMARY", "SCI"}


def test_required_and_provenance_keys_have_keywords():
    keys = kw.by_key()
    assert set(kw.UNCAL_REQUIRED) <= set(keys)
    assert set(kw.PROVENANCE_ALIASES.values()) <= set(keys)
    assert set(kw.PROVENANCE_ONLY) <= set(keys)
    assert keys["calops.product_id"].keyword == "CO_PID"
    assert keys["calops.recipe_key"].keyword == "CO_RKEY"
    # only calops's own provenance keywords are outside the stdatamodels schema
    assert {e.key for e in kw.KEYWORDS if e.schema_path is None} == {
        "calops.product_id", "calops.recipe_key", "calops.build", "calops.note"}


def test_the_keywords_the_brief_names_are_present():
    keys = kw.by_key()
    expected = {
        "instrument.name": "INSTRUME", "exposure.readpatt": "READPATT", "wcsinfo.ra_ref": "RA_REF",
        "velocity_aberration.scale_factor": "VA_SCALE", "ephemeris.type": "EPH_TYPE",
        "data_processing_software_version": "SDP_VER", "subarray.xstart": "SUBSTRT1",
        "calibration_software_version": "CAL_VER", "ref_file.crds.context_used": "CRDS_CTX",
        "pointing.pa_v3": "PA_V3", "bunit_data": "BUNIT", "photometry.pixelarea_steradians":
        "PIXAR_SR",
    }
    assert {k: keys[k].keyword for k in expected} == expected
