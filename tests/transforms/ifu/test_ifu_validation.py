"""Issue #16's "Validated" targets for the IFU cubes, each measured against the simulator's
closed-form truth (``transforms.sim.ifu_scene``) and asserted (docs/ifu.md, "Validation"):

1. cube flux conserved within 0.5 % (cal -> cube; drizzle and emsm; skyalign and ifualign);
2. line centroids give velocity maps within 10 km/s of the rotating source's truth;
3. the cube WCS (its gwcs as stdatamodels reads it, and the FITS header as astropy reads it)
   maps a known point source to its true RA/Dec/lambda within 0.1 spaxel (0.1 plane);
4. residual_fringe reduces the simulator's known residual fringe at least 5x.

Where a target is not met (EMSM flux), the failing cases are ``xfail(strict=True)`` with the
measured number, and jwst 3.0's EMSM cube of the same cal is shown to hold the same flux.

The cal the cubes are built from is the simulator's own calibrated surface brightness (noiseless
``truth.calibrated``, or the noisy rate through the true conversion ``1 / (R Omega dlambda)``):
the cubes are then compared with what went into them, with no other step's error in between.
Every exposure is a full-frame simulation (2-25 s each on the shared box): slow.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
from scipy.ndimage import binary_erosion

from transforms import ifu as I
from transforms import registry
from transforms.sim import ifu_mrs as SM
from transforms.sim import ifu_nirspec as SN
from transforms.sim import ifu_scene as SC
from transforms.spectral import sky_to_tan, tan_to_sky

pytestmark = pytest.mark.slow

CB = "1.2"  # the newest cube_build (1.2 = 1.1 where every pixel of the band is good: here)
MRS_DITHERS = ((0.0, 0.0), (0.52, 0.09), (0.09, 0.52), (0.61, 0.61))  # V2/V3 arcsec
NRS_DITHERS = ((0.0, 0.0), (0.25, 0.05), (0.05, 0.25), (0.3, 0.3))


def _apply(name, version, model, refs, **kw):
    s = registry.get(name, version)
    return s.apply(model, refs, s.make_params(kw) if kw else s.make_params())


def _cal(inst: str, scene, *, noise: bool = False, dither: int = 0, ndither: int = 1,
         seed: int = 1, **effects):
    """(cal, truth, refs, optics) of one exposure: assign_wcs' model holding the simulator's
    calibrated surface brightness (noiseless) or the noisy rate through the true conversion."""
    if inst == "MIRI":
        spec0 = SM.MrsExposureSpec()
        off = MRS_DITHERS[dither]
        spec = dataclasses.replace(spec0, dither=off, dither_position=dither + 1,
                                   dither_total=ndither, exposure=dither + 1)
        rate, truth = SM.simulate_rate(spec, scene, seed=seed,
                                       effects=SM.MrsEffects.none(noise=noise, **effects))
        refs = _cal.refs.setdefault("MIRI", SM.mrs_references(spec.detector, spec.band, seed))
        optics = SM.OPTICS
        resp = SM.response
    else:
        spec0 = SN.NrsIfuExposureSpec()
        spec = dataclasses.replace(spec0, dither=NRS_DITHERS[dither],
                                   dither_position=dither + 1, dither_total=ndither,
                                   exposure=dither + 1)
        eff = SN.NrsIfuEffects.none(noise=noise, **effects)
        rate, truth = SN.simulate_rate(spec, scene, seed=seed, effects=eff)
        refs = _cal.refs.setdefault("NIRSPEC", SN.nrs_ifu_references(seed, eff))
        optics = SN.optics(spec.grating)

        def resp(lam, g=spec.grating):
            return SN.response(lam, g)
    m = _apply("assign_wcs", "2.1", rate, refs)
    px = I.pixels(m)
    ok = px.valid & np.isfinite(truth.calibrated)
    conv = np.full(px.label.shape, np.nan)
    conv[ok] = 1.0 / (resp(px.lam[ok]) * px.dalpha[ok] * px.dbeta[ok] * px.dlam[ok])
    if noise:
        data = np.asarray(rate["data"], np.float64) * conv
        err = np.asarray(rate["err"], np.float64) * conv
    else:
        data = truth.calibrated
        err = np.where(ok, 1e-3 * np.abs(truth.calibrated) + 1e-6, np.nan)
    dq = np.where(ok & np.isfinite(data), 0, 1).astype(np.uint32)
    cal = m.replace(arrays={**m.arrays, "data": data.astype(np.float32),
                            "err": err.astype(np.float32), "dq": dq},
                    meta={"bunit_data": "MJy/sr", "bunit_err": "MJy/sr"})
    return cal, truth, refs, optics


_cal.refs = {}


def _pixel_flux(cal, lo: float, hi: float, channel: str | None) -> float:
    """sum over the cal's pixels (centre in [lo, hi)) of S x solid angle x wavelength width
    (MJy/sr arcsec^2 micron)."""
    px = I.pixels(cal)
    c = np.asarray(cal["data"], np.float64)
    sel = px.valid & np.isfinite(c) & (px.lam >= lo) & (px.lam < hi)
    if channel is not None:
        sel &= px.label // 100 == int(channel)
    return float(np.sum(c[sel] * px.dalpha[sel] * px.dbeta[sel] * px.dlam[sel]))


def flux_ratio(cube, cals, channel: str | None, edge: int = 20) -> float:
    """Cube flux (voxels x volume) / mean cal flux over the same wavelengths (the cube's
    planes but ``edge`` at each end of the band)."""
    d = np.nan_to_num(np.asarray(cube["data"], np.float64))
    me = cube.meta
    lam = np.asarray(cube["wavelength"], np.float64)
    z1, z2 = edge, lam.size - edge
    half = me["wcsinfo.cdelt3"] / 2
    lo, hi = lam[z1] - half, lam[z2 - 1] + half
    vox = d[z1:z2].sum() * abs(me["wcsinfo.cdelt1"] * me["wcsinfo.cdelt2"]) * 3600.0 ** 2 * \
        me["wcsinfo.cdelt3"]
    pix = np.mean([_pixel_flux(c, lo, hi, channel) for c in cals])
    return vox / pix


def _no_background(scene):
    return dataclasses.replace(scene, background_mjysr=0.0)


def _mrs_scene():
    s = SM.MrsExposureSpec()
    return SC.default_scene(s.ra, s.dec)


def _nrs_scene():
    s = SN.NrsIfuExposureSpec()
    return SC.nirspec_scene(s.ra, s.dec)


# --------------------------------------------------------------------------------------------
# 1. flux conservation
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mrs_one():
    return [_cal("MIRI", _no_background(_mrs_scene()))[0]]


@pytest.fixture(scope="module")
def mrs_four():
    return [_cal("MIRI", _no_background(_mrs_scene()), dither=i, ndither=4)[0]
            for i in range(4)]


@pytest.fixture(scope="module")
def nrs_one():
    return [_cal("NIRSPEC", _no_background(_nrs_scene()))[0]]


@pytest.fixture(scope="module")
def nrs_four():
    return [_cal("NIRSPEC", _no_background(_nrs_scene()), dither=i, ndither=4)[0]
            for i in range(4)]


FLUX = {}  # measured ratios (printed with -s)


@pytest.mark.parametrize("coord", ["skyalign", "ifualign"])
def test_drizzle_cube_conserves_flux(mrs_one, nrs_one, mrs_four, coord):
    """Drizzle: one exposure and four dithers, MRS channels 1 and 2 and NIRSpec G140M
    (measured when written: 1.0003-1.0013)."""
    cb = registry.get("cube_build", CB)
    for inst, cals, chans in (("MRS", mrs_one, "12"), ("MRS x4", mrs_four, "12"),
                              ("NRS", nrs_one, (None,))):
        for ch in chans:
            kw = {"weighting": "drizzle", "coord_system": coord}
            if ch:
                kw["channel"] = ch
            cube = cb.apply(tuple(cals), _cal.refs["MIRI" if "MRS" in inst else "NIRSPEC"],
                            cb.make_params(kw))
            r = flux_ratio(cube, cals, ch)
            FLUX[(inst, ch, "drizzle", coord)] = r
            print(f"\nflux drizzle {coord} {inst} ch{ch}: {r:.5f}")
            assert abs(r - 1) < 0.005, (inst, ch, coord, r)


# EMSM is a distance-weighted average of the surface brightness around each voxel centre, not
# an overlap-weighted one: measured (4 dithers) ch1 skyalign 0.996, ifualign 0.964; ch2
# skyalign 0.987, ifualign 1.023. With one exposure it leaves holes (no pixel within the
# ROI, as jwst: jwst does not enlarge the EMSM ROI below 4 files): 0.94 / 0.88 ifualign.
EMSM_NOT_MET = {("1", "ifualign"), ("2", "skyalign"), ("2", "ifualign")}


@pytest.mark.parametrize("ch,coord", [
    pytest.param(ch, coord, marks=pytest.mark.xfail(
        strict=True, reason="EMSM is not flux conserving (measured; docs/ifu.md)"))
    if (ch, coord) in EMSM_NOT_MET else (ch, coord)
    for ch in "12" for coord in ("skyalign", "ifualign")])
def test_emsm_cube_conserves_flux_mrs(mrs_four, ch, coord):
    """EMSM on the four-point dither the default ROIs are made for."""
    cb = registry.get("cube_build", CB)
    cube = cb.apply(tuple(mrs_four), _cal.refs["MIRI"],
                    cb.make_params({"weighting": "emsm", "coord_system": coord, "channel": ch}))
    r = flux_ratio(cube, mrs_four, ch)
    print(f"\nflux emsm {coord} MRS x4 ch{ch}: {r:.5f}")
    assert abs(r - 1) < 0.005, r


@pytest.mark.xfail(strict=True, reason="EMSM is not flux conserving: NIRSpec 4 dithers "
                   "measured 1.0093 (skyalign), 1.0090 (ifualign); docs/ifu.md")
@pytest.mark.parametrize("coord", ["skyalign", "ifualign"])
def test_emsm_cube_conserves_flux_nirspec(nrs_four, coord):
    cb = registry.get("cube_build", CB)
    cube = cb.apply(tuple(nrs_four), _cal.refs["NIRSPEC"],
                    cb.make_params({"weighting": "emsm", "coord_system": coord}))
    r = flux_ratio(cube, nrs_four, None)
    print(f"\nflux emsm {coord} NRS x4: {r:.5f}")
    assert abs(r - 1) < 0.005, r


# --------------------------------------------------------------------------------------------
# 2. velocity maps
# --------------------------------------------------------------------------------------------

def _voxel_sky(meta, ny, nx):
    c1, c2 = meta["wcsinfo.cdelt1"] * 3600.0, meta["wcsinfo.cdelt2"] * 3600.0
    x = (np.arange(nx) + 1.0 - meta["wcsinfo.crpix1"]) * c1
    y = (np.arange(ny) + 1.0 - meta["wcsinfo.crpix2"]) * c2
    xx, yy = np.meshgrid(x, y)
    rot = math.degrees(math.atan2(meta["wcsinfo.pc1_2"], -meta["wcsinfo.pc1_1"]))
    return I.std_to_radec(xx, yy, meta["wcsinfo.crval1"], meta["wcsinfo.crval2"], rot)


def velocity_map(cube, ln: SC.Line, ex: SC.ExtendedSource, optics: SC.Optics,
                 vmax: float = 250.0):
    """(measured, true) line-of-sight velocity (km/s) and line flux per spaxel: the line's
    first moment over +-(5 sigma + vmax) after a linear continuum from the 20 planes either
    side; the truth is the centroid velocity after the PSF at the spaxel centre."""
    d = np.asarray(cube["data"], np.float64)
    lam = np.asarray(cube["wavelength"], np.float64)
    nz, ny, nx = d.shape
    lc = SC.line_center(ln, ex.v_sys)
    sig = math.hypot(float(optics.lsf_sigma(lc)), lc * ln.sigma_kms / SC.C_KMS)
    half = 5 * sig + lc * vmax / SC.C_KMS
    dl = float(np.median(np.diff(lam)))
    win = np.abs(lam - lc) < half
    side = (np.abs(lam - lc) >= half) & (np.abs(lam - lc) < half + 20 * dl)
    sp = d.reshape(nz, -1)
    finite = np.all(np.isfinite(sp[win | side]), axis=0) & np.any(sp[win] != 0, axis=0)
    sp = np.where(np.isfinite(sp), sp, 0.0)
    A = np.stack([np.ones(side.sum()), lam[side] - lc], 1)
    coef, *_ = np.linalg.lstsq(A, sp[side], rcond=None)
    line = sp[win] - (coef[0][None, :] + coef[1][None, :] * (lam[win] - lc)[:, None])
    flux = line.sum(0)
    cen = (line * lam[win][:, None]).sum(0) / np.where(flux != 0, flux, 1.0)
    v = (cen / ln.rest - 1.0) * SC.C_KMS
    ra, dec = _voxel_sky(cube.meta, ny, nx)
    vt = SC.velocity_truth(ex, ln, ra, dec, optics).ravel()
    inner = binary_erosion(finite.reshape(ny, nx), iterations=1).ravel()
    return v, vt, np.where(finite & inner, flux, np.nan)


VEL_CASES = [("MIRI", "1", 5.511), ("MIRI", "2", 8.025), ("NIRSPEC", None, 1.2822)]


@pytest.mark.parametrize("inst,ch,rest", VEL_CASES)
def test_velocity_map_within_10_kms(inst, ch, rest):
    """One noisy exposure (every spaxel where the line's flux is >= 20 % of its peak, the
    field's edge spaxels out), drizzle, skyalign and ifualign: the velocity error's median and
    rms within 10 km/s (measured when written: rms MRS ch1 3.7 / 3.5 km/s, ch2 6.7 / 9.4,
    NIRSpec 6.0 / 6.1; medians within 0.8 km/s)."""
    scene = _mrs_scene() if inst == "MIRI" else _nrs_scene()
    cal, _, refs, optics = _cal(inst, scene, noise=True)
    ex = scene.extended[0]
    (ln,) = [x for x in ex.lines if x.rest == rest]
    cb = registry.get("cube_build", CB)
    for coord in ("skyalign", "ifualign"):
        kw = {"coord_system": coord}
        if ch:
            kw["channel"] = ch
        cube = cb.apply(cal, refs, cb.make_params(kw))
        v, vt, flux = velocity_map(cube, ln, ex, optics)
        sel = np.isfinite(flux) & (flux >= 0.2 * np.nanmax(flux))
        dv = v[sel] - vt[sel]
        rms = float(np.sqrt(np.mean(dv ** 2)))
        print(f"\nvelocity {inst} ch{ch} {rest} {coord}: n {sel.sum()} median "
              f"{np.median(dv):.2f} rms {rms:.2f} p90 {np.percentile(np.abs(dv), 90):.2f} "
              f"max {np.abs(dv).max():.2f} km/s; truth {vt[sel].min():.0f}..{vt[sel].max():.0f}")
        assert sel.sum() > 50
        assert np.ptp(vt[sel]) > 100  # the map spans the rotation
        assert abs(np.median(dv)) < 10 and rms < 10, (coord, np.median(dv), rms)


# --------------------------------------------------------------------------------------------
# 3. the cube WCS
# --------------------------------------------------------------------------------------------

def _gauss2(p, x, y):
    a, x0, y0, s, b = p
    return a * np.exp(-0.5 * ((x - x0) ** 2 + (y - y0) ** 2) / s ** 2) + b


def point_source_pixel(cube, ps: SC.PointSource):
    """(x, y, z) zero-based: the point source's centroid in the continuum image (2-D
    Gaussian fit) and its line's first moment along the wavelength axis (planes)."""
    from scipy.optimize import least_squares

    d = np.asarray(cube["data"], np.float64)
    nz, ny, nx = d.shape
    lam = np.asarray(cube["wavelength"], np.float64)
    lines = [SC.line_center(x, ps.v_kms) for x in ps.lines]
    zs = [z for z in range(30, nz - 30) if min(abs(lam[z] - c) for c in lines) > 0.02]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        img = np.nanmean(d[zs], axis=0)
    yy, xx = np.mgrid[:ny, :nx]
    j, i = np.unravel_index(np.nanargmax(img), img.shape)
    w = (np.abs(yy - j) <= 4) & (np.abs(xx - i) <= 4) & np.isfinite(img)
    fit = least_squares(lambda p: _gauss2(p, xx[w], yy[w]) - img[w],
                        [img[j, i], i, j, 1.5, 0.0])
    x0, y0 = float(fit.x[1]), float(fit.x[2])
    ln = next(x for x in ps.lines if lam[30] < x.rest < lam[-30])
    zc = int(np.argmin(np.abs(lam - SC.line_center(ln, ps.v_kms))))
    ap = (xx - x0) ** 2 + (yy - y0) ** 2 < 16
    sp = np.nansum(d[:, ap], axis=1)
    win = np.arange(zc - 8, zc + 9)
    side = np.r_[zc - 20:zc - 10, zc + 11:zc + 21]
    line = sp[win] - np.polyval(np.polyfit(side, sp[side], 1), win)
    z0 = float(np.sum(line * win) / np.sum(line))
    return x0, y0, z0, ln


WCS_CASES = [("MIRI", "1"), ("MIRI", "2"), ("NIRSPEC", None)]


@pytest.mark.parametrize("inst,ch", WCS_CASES)
def test_cube_wcs_maps_point_source_to_truth(inst, ch, tmp_path):
    """A point source alone, 0.23" E and 0.17" S of the pointing (noiseless): its centroid
    in the cube, through the s3d file's gwcs (stdatamodels) and its FITS WCS (astropy),
    lands within 0.1 spaxel of its RA/Dec and its line within 0.1 plane of its wavelength
    (measured when written: MRS 0.012-0.065 spaxel, 0.004 plane)."""
    from astropy.io import fits
    from astropy.wcs import WCS
    from stdatamodels.jwst import datamodels

    from store import fits as F

    base = _mrs_scene() if inst == "MIRI" else _nrs_scene()
    s = SM.MrsExposureSpec() if inst == "MIRI" else SN.NrsIfuExposureSpec()
    ra, dec = tan_to_sky(np.array([0.23]), np.array([-0.17]), s.ra, s.dec)
    ps = dataclasses.replace(base.points[0], ra=float(ra[0]), dec=float(dec[0]))
    cal, _, refs, _ = _cal(inst, SC.IfuScene((ps,), (), 0.0))
    cb = registry.get("cube_build", CB)
    for coord in ("skyalign", "ifualign"):
        kw = {"coord_system": coord}
        if ch:
            kw["channel"] = ch
        cube = cb.apply(cal, refs, cb.make_params(kw))
        x0, y0, z0, ln = point_source_pixel(cube, ps)
        path = F.write_product(cube, tmp_path / f"{coord}_s3d.fits", wcs=I.file_wcs(cube))
        with datamodels.IFUCubeModel(str(path)) as cm:
            r1, d1, l1 = (float(v) for v in cm.meta.wcs(x0, y0, z0))
        aw = WCS(fits.getheader(path, "SCI"))
        assert aw.wcs.cunit[2] == "m"
        r2, d2, l2 = (float(v) for v in aw.all_pix2world(x0, y0, z0, 0))
        l2 *= 1e6
        scale = abs(cube.meta["wcsinfo.cdelt1"]) * 3600.0
        cd3 = cube.meta["wcsinfo.cdelt3"]
        lc = SC.line_center(ln, ps.v_kms)
        for who, r, d, lam in (("gwcs", r1, d1, l1), ("astropy", r2, d2, l2)):
            dx, dy = sky_to_tan(np.array([r]), np.array([d]), ps.ra, ps.dec)
            pos = float(np.hypot(dx[0], dy[0])) / scale
            dz = (lam - lc) / cd3
            print(f"\nwcs {inst} ch{ch} {coord} {who}: {pos:.4f} spaxel, {dz:+.4f} plane")
            assert pos < 0.1 and abs(dz) < 0.1, (coord, who, pos, dz)


# --------------------------------------------------------------------------------------------
# 4. residual fringe
# --------------------------------------------------------------------------------------------

def test_residual_fringe_reduced_5x():
    """MRS (MIRIFUSHORT SHORT, the test scene, noise on): the cal holds the simulator's 4 %
    residual fringe (``truth.residual_fringe``) and nothing else; the amplitude of that known
    pattern in cal/truth - 1 (least-squares projection) before and after residual_fringe 1.0
    (measured when written: 0.0402 -> 0.0070, 5.8x over every pixel; 0.0001 over the 83 % of
    the pixels in columns the step fits, 0.0412 in the low-S/N columns it leaves, as jwst)."""
    scene = _mrs_scene()
    cal, truth, refs, _ = _cal("MIRI", scene, noise=True, residual_fringe=0.04)
    out = _apply("residual_fringe", "1.0", cal, refs)
    pat = truth.residual_fringe - 1.0
    ok = np.isfinite(truth.calibrated) & (pat != 0)
    corrected = np.abs(np.asarray(cal["data"], np.float64) / np.asarray(out["data"]) - 1) > 1e-6
    amps, rmss = [], []
    for arr in (cal["data"], out["data"]):
        r = np.asarray(arr, np.float64) / truth.calibrated - 1.0
        g = ok & np.isfinite(r)
        amps.append(float(np.sum(r[g] * pat[g]) / np.sum(pat[g] ** 2) * 0.04))
        rmss.append(float(np.std(r[g])))
    # where the step fitted (columns with S/N >= min_snr, as jwst) vs where it left the column
    fit_amp = []
    for sel in (ok & corrected, ok & ~corrected):
        r = np.asarray(out["data"], np.float64) / truth.calibrated - 1.0
        g = sel & np.isfinite(r)
        fit_amp.append(float(np.sum(r[g] * pat[g]) / np.sum(pat[g] ** 2) * 0.04))
    print(f"\nresidual fringe after, fitted pixels {fit_amp[0]:.4f}, pixels left "
          f"(S/N < min_snr) {fit_amp[1]:.4f}")
    print(f"\nresidual fringe amplitude {amps[0]:.4f} -> {amps[1]:.4f} "
          f"({amps[0] / abs(amps[1]):.1f}x); rms {rmss[0]:.4f} -> {rmss[1]:.4f}; "
          f"pixels corrected {corrected[ok].mean():.3f}")
    assert amps[0] == pytest.approx(0.04, rel=0.02)
    assert abs(amps[1]) * 5 <= amps[0]
    assert abs(fit_amp[0]) * 50 <= amps[0]  # measured 0.0001 where the step fitted


# --------------------------------------------------------------------------------------------
# EMSM's flux is jwst's: the target fails in the algorithm, not in calops
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("coord", ["skyalign", "ifualign"])
def test_emsm_flux_deficit_is_jwsts(jwst_offline, mrs_one, coord, tmp_path):
    """jwst 3.0's EMSM cube of the same noiseless MRS cal holds the same flux as calops'
    (measured: identical voxels with data, summed flux equal to 2e-12, median voxel difference
    0), so the one-exposure EMSM cube's 1.0045 (skyalign) / 0.942 (ifualign) of the cal's
    flux is jwst's too."""
    pytest.importorskip("jwst")
    from jwst.cube_build import CubeBuildStep

    from store import fits as F

    cal = mrs_one[0]
    refs = _cal.refs["MIRI"]
    path = F.write_product(cal, tmp_path / "mrs_cal.fits", wcs=I.file_wcs(cal))
    cubepar = str(F.write_reference(refs["cubepar"], tmp_path / "cubepar.fits"))
    cb = registry.get("cube_build", CB)
    ours = cb.apply(cal, refs, cb.make_params({"channel": "1", "weighting": "emsm",
                                               "coord_system": coord}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = CubeBuildStep.call(str(path), override_cubepar=cubepar, channel="1",
                                 weighting="emsm", coord_system=coord, output_type="channel")
    theirs = res[0] if not hasattr(res, "data") else res
    a, b = np.asarray(ours["data"], np.float64), np.asarray(theirs.data, np.float64)
    assert a.shape == b.shape
    fa, fb = np.isfinite(a) & (a != 0), np.isfinite(b) & (b != 0)
    assert np.array_equal(fa, fb)
    assert np.nansum(a) / np.nansum(b) == pytest.approx(1.0, abs=1e-9)
    r = flux_ratio(ours, [cal], "1")
    print(f"\nemsm {coord} one MRS exposure: calops = jwst, flux / cal {r:.4f}")
    assert abs(r - 1) > 0.004  # the deficit the target test reports, in both
