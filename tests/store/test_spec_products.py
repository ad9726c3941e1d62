"""Spectroscopic files: every layout round-trips to the same product id, opens in stdatamodels
as the right model class and validates, carries the slit/spectrum keywords and gwcs jwst
reads; files jwst writes are read too; the extract1d JSON reference; per-source splitting."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transforms" / "spec"))

import spec_synth as T  # noqa: E402

from store import fits as F  # noqa: E402
from store import spec_products as SP  # noqa: E402
from store.identity import product_id  # noqa: E402
from transforms import spectral as S  # noqa: E402
from transforms.model import DataModel  # noqa: E402
from transforms.spec2 import extract_1d as ex  # noqa: E402
from transforms.spec2 import resample_spec as rs  # noqa: E402
from transforms.spec3 import combine_1d as cb  # noqa: E402

dm = pytest.importorskip("stdatamodels.jwst.datamodels")
REF = ex.extract1d_ref([{"id": "ANY", "extract_width": 7, "use_source_posn": True}])


def _open(p):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dm.open(p)


def _products():
    s1 = T.make_slit(T.SlitSpec(shape=(15, 60), trace=(7.0, 0.01, 0.0), slit_pix=10.0))
    s2 = T.make_slit(T.SlitSpec(name="S200A2", shape=(15, 60), trace=(7.0, 0.0, 0.0),
                                slit_pix=10.0, source_id=12, source_ypos=None))
    cal = T.cal_product([s1, s2], **{"instrument.fixed_slit": "S200A1"})
    s2d = rs.resample_spec(cal, {}, rs.ResampleSpecParams())
    x1d = ex.extract_1d(s2d, {"extract1d": REF}, ex.Extract1dParams())
    c1d_multi = cb.combine_1d((x1d,), {}, cb.Combine1dParams())
    sp = S.spectra(x1d)[0]
    c1d_single = S.spectra_product("c1d", x1d.meta, [S.Spectrum(
        "s", {"wavelength": sp["wavelength"], "flux": sp["flux"], "error": sp["flux_error"],
              "surf_bright": sp["surf_bright"], "sb_error": sp["sb_error"], "dq": sp["dq"],
              "weight": np.ones(sp["flux"].size), "n_input": np.ones(sp["flux"].size)},
        {"source_id": 1})], single=True)
    lrs = S.with_slits(DataModel("cal", {}, T.base_meta("MIR_LRS-FIXEDSLIT")),
                       [s1.replace(meta={"dispersion_direction": 2})], kind="cal", single=True)
    s2d_single = rs.resample_spec(lrs, {}, rs.ResampleSpecParams())
    return {"cal": (cal, "MultiSlitModel"), "s2d": (s2d, "MultiSlitModel"),
            "x1d": (x1d, "MultiSpecModel"), "c1d_multi": (c1d_multi, "MultiCombinedSpecModel"),
            "c1d_single": (c1d_single, "CombinedSpecModel"), "lrs_cal": (lrs, "ImageModel"),
            "s2d_single": (s2d_single, "SlitModel")}


PRODUCTS = _products()


@pytest.mark.parametrize("which", list(PRODUCTS))
def test_round_trip_same_id_and_stdatamodels_opens_and_validates(which, tmp_path):
    model, cls = PRODUCTS[which]
    suffix = {"c1d_multi": "c1d", "c1d_single": "c1d", "lrs_cal": "cal",
              "s2d_single": "s2d"}.get(which, which)
    path = F.write_product(model, tmp_path / f"jw01234003001_01101_00001_nrs1_{suffix}.fits",
                           provenance={"build": "11.3", "product_id": product_id(model)},
                           wcs=S.file_wcs(model))
    back = F.read_product(path)
    assert back.kind == model.kind and product_id(back) == product_id(model)
    d = _open(path)
    assert type(d).__name__ == cls
    d.validate()
    if cls == "MultiSlitModel":
        for k, s in enumerate(S.slits(model)):
            js = d.slits[k]
            assert js.name == s.name and js.source_id == s.get("source_id")
            assert js.meta.wcsinfo.dispersion_direction == s.dispaxis
            np.testing.assert_array_equal(js.data, s.arrays["data"])
            np.testing.assert_array_equal(js.wavelength, s.arrays["wavelength"])
            # the gwcs jwst reads is the one calops computes with
            ra, dec, lam = js.meta.wcs(3.0, 4.0)
            g = S.geometry(s)
            assert lam == pytest.approx(float(g.wavelength[4, 3]), rel=1e-6)
            assert ra == pytest.approx(float(g.ra[4, 3]), abs=1e-9)
    if cls == "MultiSpecModel":
        assert [s.name for s in d.spec] == S.spectrum_names(model)
        sp = S.spectra(model)[0]
        t = d.spec[0].spec_table
        np.testing.assert_array_equal(t["FLUX"], sp["flux"])
        assert t.columns["FLUX"].unit == "Jy" and t["DQ"].dtype == np.uint32
        assert d.spec[0].extraction_ystart == pytest.approx(sp.get("extraction_ystart"))
        assert d.spec[0].meta.wcs is not None
    if cls == "SlitModel":
        assert d.meta.wcs is not None and d.wavelength.shape == d.data.shape
    assert F.read_provenance(path)["calops.build"] == "11.3"


def test_files_jwst_writes_are_read(tmp_path):
    m = dm.MultiSlitModel()
    m.meta.instrument.name = "NIRSPEC"
    m.meta.exposure.type = "NRS_FIXEDSLIT"
    for name in ("S200A1", "S400A1"):
        s = dm.SlitModel(data=np.ones((4, 9), np.float32))
        s.name, s.source_id, s.source_type = name, 1, "POINT"
        s.wavelength = np.ones((4, 9), np.float32)
        m.slits.append(s)
    m.save(tmp_path / "j_cal.fits")
    back = F.read_product(tmp_path / "j_cal.fits")
    assert back.kind == "cal" and S.slit_names(back) == ["S200A1", "S400A1"]
    assert back.get("slit.S400A1.srctype") == "POINT" and back["S200A1:data"].shape == (4, 9)
    x = dm.MultiSpecModel()
    tab = np.zeros(5, dtype=dm.SpecModel().get_dtype("spec_table"))
    tab["WAVELENGTH"] = np.arange(5.0)
    x.spec.append(dm.SpecModel(spec_table=tab))
    x.spec[0].name = "S200A1"
    x.save(tmp_path / "j_x1d.fits")
    bx = F.read_product(tmp_path / "j_x1d.fits")
    assert bx.kind == "x1d" and S.spectrum_names(bx) == ["S200A1"]
    assert bx["S200A1:dq"].dtype == np.uint32


def test_extract1d_reference_is_jwst_json(tmp_path):
    import json

    p = F.write_reference(REF, tmp_path / "jwst_nirspec_extract1d_0001.json")
    doc = json.loads(p.read_text())
    assert doc["apertures"][0]["extract_width"] == 7 and doc["reftype"] == "EXTRACT1D"
    assert product_id(F.read_reference(p)) == product_id(REF)
    # a JWST reference without the calops node
    (tmp_path / "jw.json").write_text(json.dumps({"apertures": [{"id": "S200A1"}],
                                                  "instrument": "NIRSPEC"}))
    r = F.read_reference(tmp_path / "jw.json")
    assert r.kind == "ref.extract1d" and r.get("apertures") == [{"id": "S200A1"}]


def test_stage3_products_split_into_jwst_named_per_source_files(tmp_path):
    from test_spec_validation import REF as VREF
    from test_spec_validation import _fs_exposure, _plan

    from transforms import spec3

    rng = np.random.default_rng(3)
    out = spec3.run((_fs_exposure("S200A1", 0, rng), _fs_exposure("S200A2", 1, rng)),
                    _plan("spec3", {"extract1d": VREF}))
    tmpl = "jw01234-o003_{source_id}_nirspec_f100lp-g140h-{slit_name}"
    for kind, cls in (("s2d", "SlitModel"), ("x1d", "MultiSpecModel"),
                      ("c1d", "CombinedSpecModel")):
        parts = SP.split_by_source(out[kind], tmpl)
        assert [n for n, _ in parts][0] == "jw01234-o003_s00001_nirspec_f100lp-g140h-s200a1-s200a2"
        name, m = parts[0]
        p = F.write_product(m, tmp_path / f"{name}_{kind}.fits", wcs=S.file_wcs(m))
        assert type(_open(p)).__name__ == cls
        assert product_id(F.read_product(p)) == product_id(m)
    # a stage-2 product stays whole
    assert len(SP.split_by_source(PRODUCTS["x1d"][0], "jw01234003001_01101_00001_nrs1")) == 1


def test_bad_models_are_refused(tmp_path):
    cal = PRODUCTS["cal"][0]
    bad = cal.replace(arrays={"S200A1:data": cal["S200A1:data"].astype(np.float64)})
    with pytest.raises(F.BadModel, match="float32"):
        F.write_product(bad, tmp_path / "x_cal.fits")
    with pytest.raises(F.BadModel, match="apertures"):
        F.write_reference(DataModel("ref.extract1d", {}, {}), tmp_path / "e.json")
