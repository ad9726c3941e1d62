"""Stage-3 spectroscopic associations and product names: the build 10.0 rules and names of
the seed release notes (SOURCEID codes, S200A1 + S200A2 combined, per-source MOS names,
target-based MIRI LRS names)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transforms.associations import AssociationError
from transforms.associations_spec import (fill_product_name, fs_slit_group, fs_source_id,
                                          source_field, spec3_associations)


def _exp(name: str, exp_type: str = "NRS_FIXEDSLIT", **kw):
    m = {"filename": f"{name}_cal.fits", "observation.program_number": "1234",
         "observation.observation_number": "3", "instrument.name": "NIRSPEC",
         "instrument.filter": "F100LP", "instrument.grating": "G140H", "exposure.type": exp_type,
         "target.catalog_name": "STAR"}
    if exp_type == "NRS_FIXEDSLIT":
        m["instrument.fixed_slit"] = "S200A1"
    m.update(kw)
    return m


def test_fixed_slit_sourceid_codes_of_build_10():
    assert fs_source_id("S200A1", "S200A1") == 1
    assert fs_source_id("S200A1", "S200A2") == 12
    assert fs_source_id("S200A2", "S200A1") == 21
    assert fs_source_id("S400A1", "S200A1") == 31
    assert fs_source_id("S400A1", "S400A1") == 1
    with pytest.raises(AssociationError, match="unknown NIRSpec fixed slit"):
        fs_source_id("S999", "S200A1")


def test_s200a1_and_s200a2_primaries_share_one_association_others_do_not():
    exps = [_exp("jw01234003001_01101_00001_nrs1", **{"instrument.fixed_slit": "S200A1"}),
            _exp("jw01234003001_01101_00002_nrs1", **{"instrument.fixed_slit": "S200A2"}),
            _exp("jw01234003001_01101_00003_nrs1", **{"instrument.fixed_slit": "S400A1"}),
            _exp("jw01234003001_01101_00004_nrs1", **{"instrument.grating": "G235H",
                                                      "instrument.filter": "F170LP"})]
    asns = spec3_associations(exps)
    by = {a["products"][0]["name"]: a for a in asns}
    fs = by["jw01234-o003_{source_id}_nirspec_f100lp-g140h-{slit_name}{primary:s200a1+s200a2}"]
    assert fill_product_name(fs["products"][0]["name"], "s00001", "s200a1-s200a2") == \
        "jw01234-o003_s00001_nirspec_f100lp-g140h-s200a1-s200a2"
    assert fs_slit_group("S200A2") == fs_slit_group("S200A1") != fs_slit_group("S400A1")
    names = {m["expname"] for a in asns for m in a["products"][0]["members"]}
    assert len(names) == 4
    members = [m["expname"] for m in fs["products"][0]["members"]]
    s200 = [a for a in asns if a["constraints"].get("fxd_slit") == "s200a1|s200a2"
            and a["constraints"]["opt_elem"] == "f100lp-g140h"]
    assert len(s200) == 1 and len(s200[0]["products"][0]["members"]) == 2
    assert all(a["asn_type"] == "spec3" and a["asn_rule"] == "candidate_Asn_Lv3NRSFSS"
               for a in asns)
    assert members  # every association has members
    assert "jw01234-o003_{source_id}_nirspec_f170lp-g235h-{slit_name}" in by


def test_seed_product_names_are_filled_per_source():
    t = "jw01234-o003_{source_id}_nirspec_f100lp-g140h-{slit_name}"
    assert (fill_product_name(t, source_field(1), "s200a1-s200a2") + "_x1d.fits"
            == "jw01234-o003_s00001_nirspec_f100lp-g140h-s200a1-s200a2_x1d.fits")
    assert (fill_product_name(t, source_field(fs_source_id("S400A1", "S200A1")), "s200a1")
            + "_x1d.fits" == "jw01234-o003_s00031_nirspec_f100lp-g140h-s200a1_x1d.fits")
    assert (fill_product_name(t, source_field(fs_source_id("S400A1", "S400A1")), "s400a1")
            == "jw01234-o003_s00001_nirspec_f100lp-g140h-s400a1")


def test_mos_is_per_source_and_lrs_is_per_target():
    exps = [_exp("jw01234003001_01101_00001_nrs1", "NRS_MSASPEC",
                 **{"instrument.filter": "F170LP", "instrument.grating": "G235M"}),
            _exp("jw01234003001_01101_00002_nrs2", "NRS_MSASPEC",
                 **{"instrument.filter": "F170LP", "instrument.grating": "G235M"}),
            _exp("jw01234005001_01101_00001_mirimage", "MIR_LRS-FIXEDSLIT",
                 **{"instrument.name": "MIRI", "instrument.filter": "P750L",
                    "instrument.grating": None, "observation.observation_number": "5",
                    "dither.primary_type": "ALONG-SLIT-NOD"}),
            _exp("jw01234005001_01101_00002_mirimage", "MIR_LRS-FIXEDSLIT",
                 **{"instrument.name": "MIRI", "instrument.filter": "P750L",
                    "instrument.grating": None, "observation.observation_number": "5",
                    "dither.primary_type": "ALONG-SLIT-NOD"})]
    asns = spec3_associations(exps)
    names = sorted(a["products"][0]["name"] for a in asns)
    assert names == ["jw01234-o003_{source_id}_nirspec_f170lp-g235m",
                     "jw01234-o005_t001_miri_p750l"]
    assert all(len(a["products"][0]["members"]) == 2 for a in asns)
    assert fill_product_name(names[0], source_field(42)) == \
        "jw01234-o003_s00042_nirspec_f170lp-g235m"


def test_background_exposures_join_as_background_members_and_tso_imaging_are_left_out():
    exps = [_exp("jw01234003001_01101_00001_nrs1"),
            _exp("jw01234004001_01101_00001_nrs1", **{"observation.bkgdtarg": True,
                                                      "observation.observation_number": "4"}),
            _exp("jw01234003001_01101_00002_nrs1", **{"visit.tsovisit": True}),
            _exp("jw01234003001_01101_00003_nrcb1", "NRC_IMAGE")]
    (asn,) = spec3_associations(exps)
    mem = asn["products"][0]["members"]
    assert [m["exptype"] for m in mem] == ["science", "background"]
    assert mem[1]["expname"].startswith("jw01234004001")


def test_lrs_without_a_nod_pattern_is_not_a_spec3_target_association():
    e = _exp("jw01234005001_01101_00001_mirimage", "MIR_LRS-FIXEDSLIT",
             **{"instrument.name": "MIRI", "instrument.filter": "P750L",
                "dither.primary_type": "CYCLING"})
    assert spec3_associations([e]) == []


def test_missing_metadata_is_a_clear_error():
    e = _exp("jw01234003001_01101_00001_nrs1")
    del e["instrument.fixed_slit"]
    with pytest.raises(AssociationError, match="fixed_slit"):
        spec3_associations([e])


@given(st.permutations(list(range(4))))
def test_associations_do_not_depend_on_input_order(order):
    exps = [_exp(f"jw01234003001_01101_0000{k}_nrs1",
                 **{"instrument.fixed_slit": ("S200A1", "S200A2", "S400A1", "S200A2")[k]})
            for k in range(4)]
    a = spec3_associations(exps)
    b = spec3_associations([exps[i] for i in order])
    key = [(x["products"][0]["name"], x["constraints"]["fxd_slit"],
            sorted(m["expname"] for m in x["products"][0]["members"])) for x in a]
    key_b = [(x["products"][0]["name"], x["constraints"]["fxd_slit"],
              sorted(m["expname"] for m in x["products"][0]["members"])) for x in b]
    assert key == key_b
