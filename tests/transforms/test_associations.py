"""Stage-3 associations: grouping rules and JWST-style product names."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.associations import (AssociationError, crf_filename, image3_associations,
                                     opt_element, product_name)


def _exp(n, obs="001", filt="F200W", pupil="CLEAR", exp_type="NRC_IMAGE", target="NGC 1", **kw):
    m = {"filename": f"jw01234{obs}001_01101_{n:05d}_nrca1_cal.fits",
         "observation.program_number": "01234", "observation.observation_number": obs,
         "instrument.name": "NIRCAM", "instrument.filter": filt, "instrument.pupil": pupil,
         "exposure.type": exp_type, "target.catalog_name": target}
    m.update(kw)
    return m


def test_product_names_follow_jwst():
    assert product_name("1234", "1", 1, "NIRCAM", "F200W", "CLEAR") == \
        "jw01234-o001_t001_nircam_clear-f200w"
    assert product_name(2736, 7, 12, "MIRI", "F770W", None) == "jw02736-o007_t012_miri_f770w"
    assert opt_element("F444W", "F470N") == "f444w-f470n"
    assert opt_element("N/A", "") == "clear"
    with pytest.raises(AssociationError, match="integers"):
        product_name("abc", 1, 1, "NIRCAM", "F200W", "CLEAR")


def test_grouping_by_observation_filter_and_target():
    exps = [_exp(1), _exp(2), _exp(3, filt="F150W"), _exp(4, obs="002"),
            _exp(5, target="NGC 2"), _exp(6, exp_type="NRC_TSIMAGE"),
            _exp(7, **{"observation.bkgdtarg": True}), _exp(8, exp_type="NRS_FIXEDSLIT")]
    asns = image3_associations(exps, pool="test_pool")
    names = {a["products"][0]["name"]: [m["expname"] for m in a["products"][0]["members"]]
             for a in asns}
    assert names == {
        "jw01234-o001_t001_nircam_clear-f200w": [exps[0]["filename"], exps[1]["filename"]],
        "jw01234-o001_t001_nircam_clear-f150w": [exps[2]["filename"]],
        "jw01234-o002_t001_nircam_clear-f200w": [exps[3]["filename"]],
        "jw01234-o001_t002_nircam_clear-f200w": [exps[4]["filename"]],
    }
    a = asns[0]
    assert a["asn_type"] == "image3" and a["asn_pool"] == "test_pool"
    assert a["asn_id"].startswith("o") and a["program"] == "01234"
    assert all(m["exptype"] == "science" for m in a["products"][0]["members"])


def test_explicit_target_id_wins_and_missing_metadata_is_named():
    asns = image3_associations([_exp(1, **{"target.target_id": 7})])
    assert asns[0]["products"][0]["name"] == "jw01234-o001_t007_nircam_clear-f200w"
    bad = _exp(1)
    del bad["instrument.filter"]
    with pytest.raises(AssociationError, match="instrument.filter"):
        image3_associations([bad])


def test_crf_names():
    assert crf_filename("jw01234001001_01101_00001_nrca1_cal.fits", "o001") == \
        "jw01234001001_01101_00001_nrca1_o001_crf.fits"


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["001", "002"]), st.sampled_from(["F200W", "F150W"]),
                          st.sampled_from(["NRC_IMAGE", "NRC_TSIMAGE"])), max_size=12),
       st.randoms(use_true_random=False))
def test_every_imaging_exposure_lands_in_exactly_one_product(spec, rnd):
    exps = [_exp(i, obs=o, filt=f, exp_type=t) for i, (o, f, t) in enumerate(spec)]
    before = copy.deepcopy(exps)
    asns = image3_associations(exps)
    assert exps == before  # inputs untouched
    members = [m["expname"] for a in asns for m in a["products"][0]["members"]]
    imaging = [e["filename"] for e in exps if e["exposure.type"] == "NRC_IMAGE"]
    assert sorted(members) == sorted(imaging)
    shuffled = list(exps)
    rnd.shuffle(shuffled)
    names = sorted(a["products"][0]["name"] for a in image3_associations(shuffled))
    assert names == sorted(a["products"][0]["name"] for a in asns)  # order-independent
