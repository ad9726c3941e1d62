"""The spec2 front half against the simulator's truth.

- flat_field + pathloss + photom recover a point source's true flux density within 2% in the
  continuum (NIRSpec FS with its nod pair, MIRI LRS), measured with a plain row/column sum;
- the path loss correction for a source off the slit centre is within 1% of the true slit
  transmission at every wavelength;
- nod subtraction leaves no background above the noise (MIRI LRS, bright thermal sky);
- wavecorr puts an off-centre source's lines back at their true wavelengths;
- assign_wcs/extract_2d follow build 10.0's SOURCEID and source-position rules and the LRS
  dithered position; the slit WCS rebuilt from the product gives the product's wavelengths.
"""

from __future__ import annotations

import numpy as np
import pytest

import spec2_helpers as H
from transforms.instruments import slit_wcs
from transforms.sim import spectra as SP


def test_fs_nod_pair_recovers_the_true_flux_density():
    prog = H.fs_nod()
    a, b = prog.exposures
    cal = H.run(prog, a, {"background": [b.model]})
    arr, sm = H.slit(cal, "S200A1")
    assert sm["source_id"] == 1 and sm["srctype"] == "POINT" and sm["bunit_data"] == "MJy"
    data = arr["data"].astype(float)
    prof = np.nansum(data[:, 200:1200], axis=1)
    r0 = int(np.nanargmax(prof))
    # the planned position (from the nod offset) is where the trace is
    ny = data.shape[0]
    ys, _ = __import__("transforms.instruments.nirspec.slits", fromlist=["x"]).pixel_coords(
        sm["wcs"], np.full(ny, 700.0), np.arange(ny, dtype=float))
    assert abs(ys[r0] - sm["source_ypos"]) < 0.05
    flux, lam = H.extract_rows(data, arr["wavelength"].astype(float), r0, 6)
    src = prog.source(1)
    ok = H.continuum_mask(lam, src.spectrum, 0.01) & np.isfinite(flux)
    ratio = flux[ok] / src.spectrum.fnu(lam[ok])
    assert np.median(ratio) == pytest.approx(1.0, abs=0.02)
    # binned by 50 columns the ratio stays within 2% across the band
    nb = ok.sum() // 50
    binned = np.median(ratio[:nb * 50].reshape(nb, 50), axis=1)
    assert np.all(np.abs(binned - 1.0) < 0.02)


def test_lrs_recovers_the_true_flux_density():
    prog = H.lrs_single()
    ex = prog.exposures[0]
    cal = H.run(prog, ex)
    assert cal.get("bunit_data") == "MJy/sr"
    data = cal["data"].astype(float)
    prof = np.nansum(data[100:300], axis=0)
    c0 = int(np.nanargmax(prof))
    box = slice(c0 - 22, c0 + 23)  # the whole slit length
    flux = np.nansum(data[:, box], axis=1) * cal.get("photometry.pixelarea_steradians")
    lam = np.nanmean(cal["wavelength"][:, box].astype(float), axis=1)
    src = prog.source(1)
    ok = H.continuum_mask(lam, src.spectrum, 0.4) & (lam > 5) & (lam < 12.5)
    ratio = flux[ok] / src.spectrum.fnu(lam[ok])
    assert np.median(ratio) == pytest.approx(1.0, abs=0.02)
    assert np.all(np.abs(np.median(ratio[: ok.sum() // 10 * 10].reshape(-1, 10), axis=1) - 1)
                  < 0.02)


def test_pathloss_off_centre_within_one_percent_of_the_truth():
    prog = H.fs_offcentre(0.33, 0.17)
    ex = prog.exposures[0]
    cal = H.run(prog, ex)
    arr, sm = H.slit(cal, "S200A1")
    assert sm["pathloss_correction_type"] == "POINT"
    tr = ex.truth.source(1)
    assert tr["x_slit"] == pytest.approx(0.33, abs=1e-6) and tr["y_slit"] == pytest.approx(0.17,
                                                                                         abs=1e-6)
    # the planned position differs from the truth only by what the pointing makes it
    corr = arr["pathloss_point"].astype(float)
    lam = arr["wavelength"].astype(float)
    ok = np.isfinite(corr) & np.isfinite(lam)
    true = SP.point_transmission("NIRSPEC", lam[ok], tr["xi_arcsec"], tr["eta_arcsec"], 0.2,
                                 [(-1.65, 1.65)])
    # the source position the step used: source_xpos/ypos from the target's offsets (0, 0):
    # the target is not the source here, so give the step the true position as jwst's MSA
    # planning would
    assert sm["source_xpos"] == pytest.approx(0.0)
    cal2 = H.run(prog, _with_position(ex, 0.33, 0.17))
    arr2, sm2 = H.slit(cal2, "S200A1")
    corr2 = arr2["pathloss_point"].astype(float)
    lam2 = arr2["wavelength"].astype(float)
    ok2 = np.isfinite(corr2) & np.isfinite(lam2)
    true2 = SP.point_transmission("NIRSPEC", lam2[ok2], tr["xi_arcsec"], tr["eta_arcsec"], 0.2,
                                  [(-1.65, 1.65)])
    rel = corr2[ok2] / true2 - 1.0
    assert np.max(np.abs(rel)) < 0.01
    # the centred correction would be wrong by several percent for this source
    assert np.median(corr[ok] / true - 1.0) > 0.03
    # and the flux comes back
    data = arr2["data"].astype(float)
    r0 = int(np.nanargmax(np.nansum(data[:, 200:1200], axis=1)))
    flux, lam1 = H.extract_rows(data, lam2, r0, 6)
    src = prog.source(1)
    okf = H.continuum_mask(lam1, src.spectrum, 0.01) & np.isfinite(flux)
    assert np.median(flux[okf] / src.spectrum.fnu(lam1[okf])) == pytest.approx(1.0, abs=0.02)


def _with_position(ex, xpos, ypos):
    """The exposure with the target offset put where the source is (XOFFSET/YOFFSET of the
    primary slit's aperture: what APT would have planned), so extract_2d gives it
    source_xpos/ypos."""
    from transforms.instruments.nirspec import slits as N

    fs = N.fixed_slit(N.msa_geometry(), "S200A1")
    return type(ex)(ex.spec, ex.model.replace(meta={"dither.x_offset": xpos * fs["width"],
                                                    "dither.y_offset": ypos * fs["height"]}),
                    ex.truth)


def test_wavecorr_puts_an_off_centre_source_back_on_its_wavelengths():
    prog = H.fs_offcentre(0.33, 0.17)
    ex = _with_position(prog.exposures[0], 0.33, 0.17)
    src = prog.source(1)
    shifts = {}
    for skip in ((), ("wavecorr",)):
        cal = H.run(prog, ex, skip=skip)
        arr, sm = H.slit(cal, "S200A1")
        data = arr["data"].astype(float)
        wl = arr["wavelength"].astype(float)
        r0 = int(np.nanargmax(np.nansum(data[:, 200:1200], axis=1)))
        flux, lam = H.extract_rows(data, wl, r0, 6)
        c = src.spectrum.centroids()[0]  # 1.282 um, 2x the continuum
        win = np.abs(lam - c) < 0.004
        cont = np.median(flux[np.abs(lam - c) < 0.02][:5])
        w = np.clip(flux[win] - cont, 0, None)
        shifts[skip] = float(np.sum(w * lam[win]) / np.sum(w)) - c
    disp = 6.36e-4
    assert abs(shifts[()]) < 0.1 * disp  # < 0.1 pixel after wavecorr
    assert abs(shifts[("wavecorr",)]) > 0.4 * disp  # 0.66 px (0.33 x 2 px slit) without


def test_lrs_nod_subtraction_leaves_no_background():
    """After subtracting the other nod, what remains is the two nods' source light (the truth's
    difference) plus noise: no background above the noise, although the thermal sky is ~10x the
    per-pixel noise."""
    prog = H.lrs_nod()
    a, b = prog.exposures
    cal = H.run(prog, a, {"background": [b.model]},
                skip=("flat_field", "pathloss", "photom"))
    d = cal["data"].astype(float)
    x0, y0, nx, ny = a.truth.apertures[0]["box"]
    region = (slice(y0 + 10, y0 + ny - 10), slice(x0 + 4, x0 + nx - 4))
    src_a = (a.truth.light_dn - a.truth.sky_dn).astype(float)
    src_b = (b.truth.light_dn - b.truth.sky_dn).astype(float)
    expected = (src_a - src_b)[region]
    err = np.hypot(a.model["err"][region], b.model["err"][region]).astype(float)
    sky = a.truth.sky_dn[region]
    inslit = sky > 0.5 * np.median(sky[sky > 0])
    assert np.median(sky[inslit]) > 8 * np.median(err[inslit])  # a real sky was removed
    z = ((d[region] - expected) / err)[inslit]
    n = np.isfinite(z).sum()
    assert n > 3000
    assert abs(np.nanmean(z)) < 4.0 / np.sqrt(n)
    assert np.nanstd(z) == pytest.approx(1.0, abs=0.05)
    # without the subtraction the sky is there at > 10 sigma per pixel on average
    raw = a.model["data"][region].astype(float) - src_a[region]
    assert np.nanmean((raw / err)[inslit]) > 8


def test_fs_sourceid_rules_and_source_positions():
    """Build 10.0: the primary slit has SOURCEID 1, secondary slits 10 x primary + own number;
    the primary's source_xpos/ypos come from XOFFSET/YOFFSET, the others are 0."""
    from dataclasses import replace

    from transforms.sim import slit_program as SPG

    spec = SPG.fs_program(slit="S200A2", subarray="ALLSLITS", nod="3-POINT-NOD")
    spec = replace(spec, exposures=spec.exposures[:1])
    prog = SPG.simulate_spec_program(spec, seed=5)
    ex = prog.exposures[0]
    from transforms.spec2 import assign_wcs_v2, extract_2d

    refs = prog.refs[ex.truth.name]
    a = assign_wcs_v2.assign_wcs(ex.model, refs, assign_wcs_v2.AssignWcsParams())
    e2 = extract_2d.extract_2d(a, refs, extract_2d.Extract2dParams())
    ids = {n: H.slit(e2, n)[1]["source_id"] for n in e2.get("slits")}
    assert ids == {"S200A1": 21, "S200A2": 1, "S400A1": 23, "S1600A1": 24, "S200B1": 25}
    sm = H.slit(e2, "S200A2")[1]
    assert sm["source_ypos"] == pytest.approx(-0.9 / 3.3)
    assert sm["source_xpos"] == pytest.approx(0.0)
    assert all(H.slit(e2, n)[1]["source_ypos"] == 0.0 for n in ids if n != "S200A2")
    # the slit WCS rebuilt from the product gives its wavelength plane
    arr, sm = H.slit(e2, "S400A1")
    w = slit_wcs(sm["wcs"])
    ny, nx = arr["wavelength"].shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    lam = w(xx, yy)[2]
    ok = np.isfinite(arr["wavelength"])
    assert np.allclose(lam[ok], arr["wavelength"][ok], rtol=1e-6)


def test_lrs_dithered_position_and_srctype():
    prog = H.lrs_nod()
    from transforms.spec2 import assign_wcs_v2, srctype

    for ex in prog.exposures:
        refs = prog.refs[ex.truth.name]
        a = assign_wcs_v2.assign_wcs(ex.model, refs, assign_wcs_v2.AssignWcsParams())
        # the nod position on the sky is the target (the telescope put it there)
        assert a.get("dither.dithered_ra") == pytest.approx(prog.spec.ra, abs=1e-7)
        assert a.get("dither.dithered_dec") == pytest.approx(prog.spec.dec, abs=1e-7)
        assert a.get("wcsinfo.dispersion_direction") == 2
        s = srctype.srctype(a, {}, srctype.SrctypeParams())
        assert s.get("target.source_type") == "POINT"
        e = srctype.srctype(a.replace(meta={"target.source_type_apt": None,
                                            "observation.bkgdtarg": True}), {},
                            srctype.SrctypeParams())
        assert e.get("target.source_type") == "EXTENDED"


@pytest.mark.slow
def test_fs_uncal_through_detector1_and_spec2(tmp_path):
    """The same truth at the ramp level: a NIRSpec FS uncal (every detector effect on) through
    calops' detector1 (build 11.3) and the spec2 front half gives the true flux density."""
    import dataclasses

    from catalogs import builds as buildlib
    from transforms import spec2
    from transforms.detector1 import run as detector1
    from transforms.sim import slit_program as SPG

    prog = SPG.simulate_spec_program(SPG.fs_program(nod=None, ngroups=10), seed=5,
                                     level="uncal")
    ex = prog.exposures[0]
    assert ex.model.kind == "uncal" and ex.model["data"].dtype == np.uint16
    build = buildlib.BuildBook(tmp_path / "b").get("11.3")
    plan = [dataclasses.replace(p, refs={r: ex.stage1_refs[r]
                                         for r in p.spec.reftypes + p.spec.optional_reftypes
                                         if r in ex.stage1_refs})
            for p in buildlib.plan(build, "detector1", ex.model.meta)]
    rate = detector1(ex.model, plan)["rate"]
    good = (rate["dq"] & 1) == 0
    assert abs(np.median(rate["data"][good] - ex.truth.light_dn[good])) < 0.05
    cal = spec2.run_members(rate, H.plan_for(prog, ex))["cal"]
    arr, sm = H.slit(cal, "S200A1")
    data = arr["data"].astype(float)
    r0 = int(np.nanargmax(np.nansum(data[:, 200:1200], axis=1)))
    flux, lam = H.extract_rows(data, arr["wavelength"].astype(float), r0, 6)
    src = prog.source(1)
    ok = H.continuum_mask(lam, src.spectrum, 0.01) & np.isfinite(flux)
    assert np.median(flux[ok] / src.spectrum.fnu(lam[ok])) == pytest.approx(1.0, abs=0.03)


def test_whole_spec2_chain_to_x1d_on_the_simulated_fs_nod():
    """The front half with the back half (resample_spec, extract_1d with the simulator's
    extract1d reference: an 11-pixel box at the planned position): the x1d is the truth."""
    from transforms import spec2, spectral

    prog = H.fs_nod()
    a, b = prog.exposures
    out = spec2.run_members(a.model, H.plan_for(prog, a), {"background": [b.model]})
    assert set(out) == {"cal", "s2d", "x1d"}
    (sp,) = spectral.spectra(out["x1d"])
    lam, flux = np.asarray(sp["wavelength"]), np.asarray(sp["flux"])  # Jy
    src = prog.source(1)
    ok = H.continuum_mask(lam, src.spectrum, 0.01) & np.isfinite(flux)
    assert np.median(flux[ok] / (src.spectrum.fnu(lam[ok]) * 1e6)) == pytest.approx(1.0,
                                                                                   abs=0.02)
