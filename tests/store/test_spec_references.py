"""Spectroscopic references and the MSA metadata file: written in stdatamodels' layouts
(stdatamodels opens them as the right model), read back with the same identity, deterministic;
files without calops' node (as jwst writes them) read from their tree."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from astropy.io import fits

from store import fits as F
from store import spec_references as R
from store.identity import product_id
from transforms.instruments.miri import lrs as L
from transforms.sim import references as rf
from transforms.sim import spec_refs as S
from transforms.wcs import distortion_params

WIN = (1, 1054, 200, 64)


def _lrs_params():
    dist = distortion_params(rf.distortion_ref(rf.detector_spec("MIRIMAGE"),
                                               "2022-01-01T00:00:00", "MIR_IMAGE"))
    spec = L.specwcs_content(S.lrs_specwcs())
    return L.lrs_params(spec, dist, "MIR_LRS-FIXEDSLIT", {"xstart": 1, "ystart": 1},
                        (1024, 1032)), dist


def _refs():
    flats = S.NirspecFlats(3)
    p, dist = _lrs_params()
    return {
        "fflat-fs": (S.nirspec_fflat(flats, "G140M", "F100LP", "NRS_FIXEDSLIT"),
                     "NirspecFlatModel"),
        "fflat-mos": (S.nirspec_fflat(flats, "G235M", "F170LP", "NRS_MSASPEC"),
                      "NirspecQuadFlatModel"),
        "sflat-fs": (S.nirspec_sflat(flats, "NRS1", "G140M", "F100LP", "NRS_FIXEDSLIT", WIN),
                     "NirspecFlatModel"),
        "sflat-mos": (S.nirspec_sflat(flats, "NRS1", "G140M", "F100LP", "NRS_MSASPEC", WIN),
                      "NirspecFlatModel"),
        "dflat": (S.nirspec_dflat(flats, "NRS1", WIN), "NirspecFlatModel"),
        "pathloss-fs": (S.nirspec_pathloss("NRS_FIXEDSLIT", nlam=12), "PathlossModel"),
        "pathloss-mos": (S.nirspec_pathloss("NRS_MSASPEC", nlam=12), "PathlossModel"),
        "pathloss-lrs": (S.lrs_pathloss(p, nlam=8), "MirLrsPathlossModel"),
        "barshadow": (S.nirspec_barshadow(), "BarshadowModel"),
        "photom-fs": (S.nirspec_photom("NRS_FIXEDSLIT", [("G140M", "F100LP")], 1.0, 50),
                      "NrsFsPhotomModel"),
        "photom-mos": (S.nirspec_photom("NRS_MSASPEC", [("G140M", "F100LP"),
                                                        ("PRISM", "CLEAR")], 1.0, 50),
                       "NrsMosPhotomModel"),
        "photom-lrs": (S.lrs_photom(p, 5.5, 2.9e-13, nelem=40), "MirLrsPhotomModel"),
        "area-fs": (S.nirspec_area("NRS_FIXEDSLIT"), "NirspecSlitAreaModel"),
        "specwcs": (S.lrs_specwcs(distortion=dist), "MiriLRSSpecwcsModel"),
        "disperser": (S.nirspec_disperser("PRISM"), "DisperserModel"),
        "msa": (S.nirspec_msa(), "MSAModel"),
        "wavelengthrange": (S.nirspec_wavelengthrange(), "WavelengthrangeModel"),
        "wavecorr": (S.nirspec_wavecorr(), "WaveCorrModel"),
    }


REFS = _refs()


@pytest.mark.parametrize("key", sorted(REFS))
def test_reference_round_trips_and_opens_in_stdatamodels(key, tmp_path):
    from stdatamodels.jwst import datamodels as dm

    model, cls = REFS[key]
    ext = R.reference_suffix(model)
    p = F.write_reference(model, tmp_path / f"a{ext}")
    back = F.read_reference(p)
    assert back.kind == model.kind
    assert product_id(back) == product_id(model)
    p2 = F.write_reference(model, tmp_path / "b" / f"a{ext}")
    if ext == ".fits":
        assert p.read_bytes() == p2.read_bytes()  # deterministic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = getattr(dm, cls)(str(p))
        assert type(m).__name__ == cls
        m.validate()
        if cls == "NrsFsPhotomModel":
            assert m.phot_table["relresponse"].shape == (5, 50)
        if cls == "NirspecQuadFlatModel":
            assert len(m.quadrants) == 4 and m.quadrants[2].data.shape == (2, 171, 365)
        if cls == "PathlossModel":
            assert m.apertures[0].pointsource_data.ndim == 3
            assert m.apertures[0].pointsource_wcs.crval3 < 1e-5  # meters, as jwst reads
        if cls == "WaveCorrModel":
            z = m.apertures[0].zero_point_offset
            assert np.isfinite(z(1.5e-6, 0.3))
        if cls == "MiriLRSSpecwcsModel":
            assert m.meta.x_ref == pytest.approx(L.IMX) and len(m.wavetable) > 500


def test_json_references(tmp_path):
    msaoper = S.nirspec_msaoper([(3, 330, 60)], [(1, 10, 20)])
    p = F.write_reference(msaoper, tmp_path / "m.json")
    doc = json.loads(p.read_text())
    assert doc["reftype"] == "MSAOPER" and doc["msaoper"][0]["state"] == "open"
    assert product_id(F.read_reference(p)) == product_id(msaoper)
    ex = S.extract1d("MIR_LRS-FIXEDSLIT")
    p = F.write_reference(ex, tmp_path / "e.json")
    assert json.loads(p.read_text())["apertures"][0]["disp_axis"] == 2
    assert product_id(F.read_reference(p)) == product_id(ex)
    # a file without calops' node reads from its JSON
    doc.pop("calops")
    (tmp_path / "raw.json").write_text(json.dumps(doc))
    raw = F.read_reference(tmp_path / "raw.json")
    assert raw.kind == "ref.msaoper" and raw.get("msaoper")[1]["Q"] == 1


def test_file_without_calops_node_reads_from_its_tree(tmp_path):
    model, _ = REFS["pathloss-mos"]
    p = F.write_reference(model, tmp_path / "p.fits")
    with fits.open(p) as h:
        fits.HDUList([x.copy() for x in h if x.name != "ASDF"]).writeto(tmp_path / "j.fits")
    back = F.read_reference(tmp_path / "j.fits")
    assert back.kind == "ref.pathloss" and back.get("model_type") == "PathlossModel"
    for k in ("apertures.0.pointsource_data", "apertures.1.uniform_data"):
        assert np.array_equal(back[k], model[k])
    assert back.get("apertures.1.name") == "MOS1X3"
    assert back.get("apertures.0.pointsource_wcs.cdelt2") == pytest.approx(0.05)


def test_wavecorr_tables_read_back_from_jwst_layout(tmp_path):
    import asdf

    model, _ = REFS["wavecorr"]
    p = F.write_reference(model, tmp_path / "w.asdf")
    with asdf.open(p) as af:
        tree = {k: v for k, v in af.tree.items() if k not in ("calops", "calops_model")}
        asdf.AsdfFile(tree).write_to(tmp_path / "j.asdf")
    back = F.read_reference(tmp_path / "j.asdf")
    z = back.get("apertures.0.zero_point_offset")
    assert np.allclose(np.asarray(z["lookup_table"]),
                       np.asarray(model.get("calops.wavecorr")["S200A1"]["offset"]))


def test_msa_metafile_round_trip(tmp_path):
    meta = {"observation.program_number": "01234",
            "msa.shutter_info": [
                {"slitlet_id": 1, "msa_metadata_id": 1, "shutter_quadrant": 3,
                 "shutter_row": 40, "shutter_column": c, "source_id": 10,
                 "background": "N" if c == 6 else "Y", "shutter_state": "OPEN",
                 "estimated_source_in_shutter_x": 0.45 if c == 6 else None,
                 "estimated_source_in_shutter_y": 0.6 if c == 6 else None,
                 "dither_point_index": 2, "primary_source": "Y" if c == 6 else "N",
                 "fixed_slit": "NONE"} for c in (5, 6, 7)],
            "msa.source_info": [{"program": 1234, "source_id": 10, "source_name": "src10",
                                 "alias": "S10", "ra": 53.1, "dec": -27.8,
                                 "preimage_id": "NONE", "stellarity": 1.0}]}
    p = R.write_msa_metafile(meta, tmp_path / "x_msa.fits")
    with fits.open(p) as h:
        assert h["SHUTTER_INFO"].data["shutter_column"].tolist() == [5, 6, 7]
        assert np.isnan(h["SHUTTER_INFO"].data["estimated_source_in_shutter_x"][0])
    back = R.read_msa_metafile(p)
    assert back["msa.shutter_info"][1]["estimated_source_in_shutter_y"] == pytest.approx(0.6)
    assert back["msa.shutter_info"][0]["estimated_source_in_shutter_y"] is None
    assert back["msa.source_info"][0]["source_name"] == "src10"
