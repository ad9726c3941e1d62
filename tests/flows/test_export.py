"""Exported files carry their provenance and open as the right stdatamodels models."""

from __future__ import annotations

from astropy.io import fits

from flows import stages
from flows.export import export_build


def test_export_writes_jwst_files_with_provenance(sim_ws, tmp_path):
    eid = sim_ws.catalog.current_exposure_ids()[0]
    for stage in ("detector1", "image2"):
        assert stages.run(sim_ws, "11.1.1", stage, eid, "r").status == "ok"
    paths = export_build(sim_ws, "11.1.1", tmp_path / "out")
    names = sorted(p.name for p in paths)
    assert names == sorted(f"{eid}_{s}.fits" for s in ("rate", "rateints", "cal", "i2d"))
    cal = tmp_path / "out" / f"{eid}_cal.fits"
    h = fits.getheader(cal)
    assert h["CAL_VER"] == "1.16.1" and h["CO_BUILD"] == "11.1.1"  # the pipeline version
    assert h["CRDS_CTX"] == "jwst_0001.pmap" and h["CRDS_VER"]
    assert h["R_FLAT"].startswith("crds://") and h["R_DARK"].startswith("crds://")
    assert h["CO_PID"].startswith("sha256:") and h["CO_RKEY"].startswith("sha256:")
    assert h["SDP_VER"]
    assert fits.getheader(cal, "SCI")["EPH_TYPE"] == "PREDICTED"  # the SCI header, as in JWST
    from stdatamodels.jwst import datamodels

    with datamodels.open(cal) as m:
        assert type(m).__name__ == "ImageModel"
        assert m.meta.wcs is not None
        ra, dec = m.meta.wcs(10, 10)
        assert abs(dec) <= 90
    # the exported content is the stored product: re-reading gives the same id
    from store.fits import read_product
    from store.identity import product_id

    assert product_id(read_product(cal)) == h["CO_PID"]


def test_an_exported_rate_is_what_jwst_expects_of_a_rate(sim_ws, tmp_path):
    """S_* keywords as stdatamodels spells them (S_DARK), CAL_VER = the pipeline version, and the
    uncal's pointing and ephemeris keywords, which jwst's assign_wcs needs; the file's content
    is still the stored product."""
    from stdatamodels.jwst import datamodels

    from store.fits import read_product
    from store.identity import product_id
    from transforms import registry

    eid = sim_ws.catalog.current_exposure_ids()[0]
    assert stages.run(sim_ws, "11.1.1", "detector1", eid, "r").status == "ok"
    paths = export_build(sim_ws, "11.1.1", tmp_path / "out", kinds=("rate", "rateints"))
    for path in paths:
        h, sci = fits.getheader(path), fits.getheader(path, "SCI")
        for key in ("V2_REF", "V3_REF", "RA_REF", "DEC_REF", "ROLL_REF", "EPH_TYPE"):
            assert key in sci, (path.name, key)
        with datamodels.open(path) as m:
            assert m.meta.cal_step.dark_sub == "COMPLETE"
            assert m.meta.calibration_software_version == "1.16.1"
            assert m.meta.wcsinfo.roll_ref is not None and m.meta.ephemeris.type == "PREDICTED"
        ran = [p for p in registry.stage("detector1").steps if f"cal_step.{p}" in
               read_product(path).meta]
        for step in ran:  # every step that recorded a status has its keyword in the file
            assert h[registry.get(step).keyword] in ("COMPLETE", "SKIPPED"), step
        assert product_id(read_product(path)) == h["CO_PID"]
