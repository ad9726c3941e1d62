"""Spectroscopy against truth: synthetic slits with a known spectrum, trace and wavelengths
(``spec_synth``) through resample_spec and extract_1d (stage 2) and the stage-3 chain.

- point-source spectrophotometry within 2 % of the true spectrum in the continuum (NIRSpec
  FS with a tilted, curved trace and sheared iso-wavelength lines; MIRI LRS with vertical
  dispersion);
- emission-line centroids within 0.1 pixel of the true wavelengths;
- build 10.0 aperture placement: NIRSpec from the planned ``source_ypos``, MIRI LRS from the
  dither/nod pointing (``dither.dithered_ra/dec``), not from the target coordinates;
- resample_spec conserves flux (per-pixel flux density and surface brightness, at several
  output pixel scales);
- the S200A1 + S200A2 combination: one source, both slits, both wavelength ranges, named as
  build 10.0 names it.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

import spec_synth as T  # noqa: E402

from store.spec_products import split_by_source  # noqa: E402
from transforms import registry  # noqa: E402
from transforms import spectral as S  # noqa: E402
from transforms.registry import PlannedStep  # noqa: E402
from transforms.spec2 import extract_1d as ex  # noqa: E402
from transforms.spec2 import resample_spec as rs  # noqa: E402

REF = ex.extract1d_ref([{"id": "ANY", "extract_width": 11, "use_source_posn": True}])
LRS_REF = ex.extract1d_ref([{"id": "MIR_LRS-FIXEDSLIT", "extract_width": 11,
                             "use_source_posn": True}], instrument="MIRI",
                           exp_type="MIR_LRS-FIXEDSLIT")


def _plan(stage: str, refs=None, **overrides) -> list[PlannedStep]:
    """Only the steps this work provides (the front half is specsim's)."""
    names = {"spec2": ("pixel_replace", "resample_spec", "extract_1d"),
             "spec3": ("master_background", "outlier_detection", "pixel_replace",
                       "resample_spec", "extract_1d", "combine_1d")}[stage]
    out = []
    for n in names:
        spec = registry.get(n)
        out.append(PlannedStep(spec, spec.make_params(overrides.get(n)),
                               spec.skip_by_default, (refs or {}) if n == "extract_1d" else {}))
    return out


def spec2(cal, ref=REF, **overrides):
    from transforms import spec2 as stage

    return stage.run(cal, _plan("spec2", {"extract1d": ref}, **overrides))


def _continuum_mask(w: np.ndarray, nsig: float = 6.0) -> np.ndarray:
    m = np.isfinite(w)
    for l0, _, sig in T.LINES:
        m &= np.abs(w - l0) > nsig * sig
    return m


def _interior(n: int, edge: int = 4) -> np.ndarray:
    m = np.zeros(n, bool)
    m[edge:n - edge] = True
    return m


@pytest.mark.parametrize("ypos", [0.0, 0.3, -0.25])
def test_nirspec_point_source_spectrophotometry_within_2pc(ypos):
    rng = np.random.default_rng(1)
    sl = T.make_slit(T.SlitSpec(source_ypos=ypos), rng, noise=5e-13)
    out = spec2(T.cal_product([sl]))
    sp = S.spectra(out["x1d"])[0]
    w, f = sp["wavelength"], sp["flux"]
    m = _continuum_mask(w) & _interior(w.size) & np.isfinite(f)
    ratio = f[m] / T.spectrum(w[m])
    assert m.sum() > 150
    assert np.all(np.abs(ratio - 1) < 0.02), np.abs(ratio - 1).max()
    assert abs(np.median(ratio) - 1) < 0.003
    assert out["cal"].kind == "cal" and out["s2d"].kind == "s2d" and out["x1d"].kind == "x1d"
    assert out["x1d"].get("cal_step.extract_1d") == "COMPLETE"


def test_nirspec_aperture_follows_the_planned_source_position_not_the_slit_centre():
    """build 10.0: the planned position in the slit (source_ypos) places the aperture."""
    sl = T.make_slit(T.SlitSpec(source_ypos=0.3))
    cal = T.cal_product([sl], **{"target.ra": 10.0, "target.dec": 10.0})  # wrong on purpose
    placed = S.spectra(spec2(cal)["x1d"])[0]
    nominal = S.spectra(spec2(cal, extract_1d={"use_source_posn": False})["x1d"])[0]
    w = placed["wavelength"]
    m = _continuum_mask(w) & _interior(w.size)
    truth = T.spectrum(w[m])
    assert np.all(np.abs(placed["flux"][m] / truth - 1) < 0.02)
    assert np.median(nominal["flux"][m] / truth) < 0.5  # the slit centre misses the source
    # the aperture is centred on the source's row of the s2d
    s2d = S.slits(spec2(cal)["s2d"])[0]
    p = s2d.get("wcs")
    row = (0.3 - p["slit_y0"]) / p["dslit_y"]
    centre = 0.5 * (placed.get("extraction_ystart") + placed.get("extraction_ystop")) - 1
    assert abs(centre - row) < 0.01


def _lrs(dither_offset_pix: float = 0.0, ypos: float = 0.1, noise: float = 0.0):
    """A MIRI LRS slit: dispersion along y, data in MJy/sr, the dither pointing on the source
    (or ``dither_offset_pix`` pixels away from it along the slit)."""
    omega = 2.8e-13
    sp = T.SlitSpec(name="MIR_LRS-FIXEDSLIT", shape=(41, 300), trace=(20.0, 0.005, 0.0),
                    dispersion=(5.0, 0.02, 0.0), shear=0.0, slit_pix=8.0, scale=0.11,
                    pa=-84.0, source_ypos=ypos, sigma=1.3, disp_axis=2,
                    spectrum=lambda lam: 2e-3 * (1 + 0.05 * (lam - 8.0)))
    rng = np.random.default_rng(3)
    sl = T.make_slit(sp, rng, noise=noise)
    a = dict(sl.arrays)
    for k in ("data", "err"):
        a[k] = (np.asarray(a[k], np.float64) / omega).astype(np.float32)
    for k in ("var_rnoise", "var_poisson", "var_flat"):
        a[k] = (np.asarray(a[k], np.float64) / omega ** 2).astype(np.float32)
    sl = sl.replace(arrays=a, meta={"bunit_data": "MJy/sr"})
    s = (ypos * sp.slit_pix + dither_offset_pix) * sp.scale
    pa = math.radians(sp.pa)
    dra, ddec = S.tan_to_sky(s * math.sin(pa), s * math.cos(pa), sp.ra, sp.dec)
    meta = T.base_meta("MIR_LRS-FIXEDSLIT", **{"photometry.pixelarea_steradians": omega,
                                               "dither.dithered_ra": float(dra),
                                               "dither.dithered_dec": float(ddec),
                                               "target.ra": 1.0, "target.dec": 2.0,
                                               "wcsinfo.dispersion_direction": 2,
                                               "target.source_type": "POINT"})
    from transforms.model import DataModel

    return S.with_slits(DataModel("cal", {}, meta), [sl], kind="cal", single=True), sp


def test_miri_lrs_point_source_spectrophotometry_within_2pc():
    cal, sp = _lrs(noise=2e-12)
    assert not S.is_multislit(cal) and S.slits(cal)[0].dispaxis == 2
    out = spec2(cal, ref=LRS_REF)
    assert not S.is_multislit(out["s2d"])  # a single slit stays a SlitModel
    spec = S.spectra(out["x1d"])[0]
    w, f = spec["wavelength"], spec["flux"]
    m = _interior(w.size, 6) & np.isfinite(f)
    ratio = f[m] / sp.spectrum(w[m])
    assert np.all(np.abs(ratio - 1) < 0.02), np.abs(ratio - 1).max()
    assert spec.get("dispersion_direction") == 2


def test_miri_lrs_aperture_follows_the_dither_position():
    """build 10.0: the dither/nod pointing (dithered_ra/dec) places the LRS aperture; a
    pointing 9 pixels away from the source moves the aperture off it."""
    good, sp = _lrs()
    off, _ = _lrs(dither_offset_pix=9.0)
    f_good = S.spectra(spec2(good, ref=LRS_REF)["x1d"])[0]
    f_off = S.spectra(spec2(off, ref=LRS_REF)["x1d"])[0]
    m = _interior(f_good["wavelength"].size, 6)
    truth = sp.spectrum(f_good["wavelength"][m])
    assert np.all(np.abs(f_good["flux"][m] / truth - 1) < 0.02)
    assert np.median(f_off["flux"][m] / truth) < 0.05
    c_good = 0.5 * (f_good.get("extraction_xstart") + f_good.get("extraction_xstop"))
    c_off = 0.5 * (f_off.get("extraction_xstart") + f_off.get("extraction_xstop"))
    assert abs(abs(c_off - c_good) - 9.0 * sp.scale / S.slits(spec2(good, ref=LRS_REF)["s2d"])[0]
               .get("wcs")["ds"]) < 0.05


def _centroid_pix(w: np.ndarray, f: np.ndarray, cont: np.ndarray, l0: float, sig: float
                  ) -> float:
    idx = np.arange(w.size, dtype=float)
    m = np.abs(w - l0) < 4 * sig
    line = f[m] - cont[m]
    return float(np.sum(idx[m] * line) / np.sum(line))


def test_line_centroids_within_a_tenth_of_a_pixel():
    out = spec2(T.cal_product([T.make_slit(T.SlitSpec(source_ypos=0.1))]))
    sp = S.spectra(out["x1d"])[0]
    w, f = sp["wavelength"], sp["flux"]
    cont = T.continuum(w)
    idx = np.arange(w.size, dtype=float)
    for l0, _, sig in T.LINES:
        got = _centroid_pix(w, f, cont, l0, sig)
        # the truth line sampled the same way (at the extracted wavelengths)
        truth = _centroid_pix(w, T.spectrum(w), cont, l0, sig)
        want = float(np.interp(l0, w, idx))
        assert abs(got - truth) < 0.1, (l0, got, truth)
        assert abs(got - want) < 0.1, (l0, got, want)


@pytest.mark.parametrize("ratio", [1.0, 0.5, 2.0])
def test_resample_spec_conserves_flux_density(ratio):
    """Per-pixel flux density (MJy): the sum over output rows at each wavelength is the
    source's F_nu, at any output pixel scale."""
    cal = T.cal_product([T.make_slit(T.SlitSpec(source_ypos=0.0, sigma=1.5))])
    s2d = S.slits(rs.resample_spec(cal, {}, rs.ResampleSpecParams(pixel_scale_ratio=ratio)))[0]
    lam = np.asarray(s2d.arrays["wavelength"][0], np.float64)
    col = np.nansum(np.asarray(s2d.arrays["data"], np.float64), axis=0) * 1e6
    m = _continuum_mask(lam) & _interior(lam.size)
    assert np.all(np.abs(col[m] / T.spectrum(lam[m]) - 1) < 0.003)
    ds_in = s2d.get("wcs")["ds"] * ratio
    assert abs(ds_in - 0.1) < 1e-3  # the input scale (0.1") over the ratio


def test_resample_spec_conserves_surface_brightness():
    """A uniform surface brightness stays uniform; integrated over the slit it is conserved."""
    sp = T.SlitSpec(source_ypos=None, background=3.0)
    sl = T.make_slit(sp)
    sl = sl.replace(meta={"bunit_data": "MJy/sr"})
    cal = T.cal_product([sl])
    s2d = S.slits(rs.resample_spec(cal, {}, rs.ResampleSpecParams(pixel_scale_ratio=0.5)))[0]
    d = np.asarray(s2d.arrays["data"], np.float64)
    full = np.asarray(s2d.arrays["wht"]) > 0
    inner = full & np.roll(full, 1, 0) & np.roll(full, -1, 0)
    assert np.allclose(d[inner], 3.0, rtol=1e-5)


def _fs_exposure(primary: str, k: int, rng) -> tuple:
    """One fixed-slit exposure with the primary target in ``primary`` (S200A1 or S200A2);
    the other slit sees empty sky. S200A2 covers redder wavelengths than S200A1."""
    slits = []
    for name, lam0, dec_off in (("S200A1", 0.95, 0.0), ("S200A2", 1.20, 0.0)):
        holds = name == primary
        sid = 1 if holds else (12 if primary == "S200A1" else 21)
        spec = T.SlitSpec(name=name, dispersion=(lam0, 2.0e-3, 1.0e-7), source_id=sid,
                          source_ypos=0.0 if holds else None,
                          dec=-27.78 if holds else -27.78 + 0.001 * (1 if k else -1))
        slits.append(T.make_slit(spec, rng, noise=1e-12))
    return T.cal_product(slits, **{"instrument.fixed_slit": primary,
                                   "observation.exposure_number": str(k + 1)})


def test_s200a1_and_s200a2_combine_into_one_source_covering_both_ranges():
    from transforms import spec3

    rng = np.random.default_rng(7)
    cals = (_fs_exposure("S200A1", 0, rng), _fs_exposure("S200A2", 1, rng))
    out = spec3.run(cals, _plan("spec3", {"extract1d": REF}))
    names = S.slit_names(out["s2d"])
    assert names == ["s00001", "s00012", "s00021"]
    src = S.slits(out["s2d"])[0]
    assert src.get("product.slit_name") == "s200a1-s200a2"
    lam = np.asarray(src.arrays["wavelength"][0])
    assert lam.min() < 0.96 and lam.max() > 1.66  # both slits' ranges in one grid
    for product in (out["x1d"], out["c1d"]):
        sp = {s.name: s for s in S.spectra(product)}["s00001"]
        w, f = sp["wavelength"], sp["flux"]
        assert w.min() < 0.97 and w.max() > 1.65
        m = _continuum_mask(w) & np.isfinite(f)
        m &= (np.abs(w - 0.95) > 0.01) & (np.abs(w - 1.68) > 0.01)
        ratio = f[m] / T.spectrum(w[m])
        assert np.all(np.abs(ratio - 1) < 0.02), (product.kind, np.abs(ratio - 1).max())
    c1 = {s.name: s for s in S.spectra(out["c1d"])}["s00001"]
    overlap = (c1["wavelength"] > 1.22) & (c1["wavelength"] < 1.41)
    assert np.all(c1["n_input"][overlap] == 2) and np.all(c1["n_input"][c1["wavelength"] < 1.15] == 1)
    template = "jw01234-o003_{source_id}_nirspec_f100lp-g140h-{slit_name}"
    files = [n for n, _ in split_by_source(out["x1d"], template)]
    assert files == ["jw01234-o003_s00001_nirspec_f100lp-g140h-s200a1-s200a2",
                     "jw01234-o003_s00012_nirspec_f100lp-g140h-s200a2",
                     "jw01234-o003_s00021_nirspec_f100lp-g140h-s200a1"]


def _lrs_nod(ypos: float, k: int):
    """One MIRI LRS nod: the source (fixed on the sky) at ``ypos`` in the slit; the slit centre
    moves on the sky from nod to nod; dithered_ra/dec is the source position."""
    omega = 2.8e-13
    src_ra, src_dec, pa, scale, slit_pix = 80.5, -69.5, -84.0, 0.11, 8.0
    s = -ypos * slit_pix * scale  # slit centre relative to the source, along the slit
    a = math.radians(pa)
    cra, cdec = S.tan_to_sky(s * math.sin(a), s * math.cos(a), src_ra, src_dec)
    sp = T.SlitSpec(name="MIR_LRS-FIXEDSLIT", shape=(41, 300), trace=(20.0, 0.005, 0.0),
                    dispersion=(5.0, 0.02, 0.0), shear=0.0, slit_pix=slit_pix, scale=scale,
                    pa=pa, ra=float(cra), dec=float(cdec), source_ypos=ypos, sigma=1.3,
                    disp_axis=2, spectrum=lambda lam: 2e-3 * (1 + 0.05 * (lam - 8.0)))
    sl = T.make_slit(sp, np.random.default_rng(40 + k), noise=2e-12)
    arr = dict(sl.arrays)
    for key in ("data", "err"):
        arr[key] = (np.asarray(arr[key], np.float64) / omega).astype(np.float32)
    for key in ("var_rnoise", "var_poisson", "var_flat"):
        arr[key] = (np.asarray(arr[key], np.float64) / omega ** 2).astype(np.float32)
    sl = sl.replace(arrays=arr, meta={"bunit_data": "MJy/sr"})
    meta = T.base_meta("MIR_LRS-FIXEDSLIT", **{
        "photometry.pixelarea_steradians": omega, "dither.dithered_ra": src_ra,
        "dither.dithered_dec": src_dec, "wcsinfo.dispersion_direction": 2,
        "target.source_type": "POINT", "observation.exposure_number": str(k + 1),
        "dither.primary_type": "ALONG-SLIT-NOD"})
    from transforms.model import DataModel

    return S.with_slits(DataModel("cal", {}, meta), [sl], kind="cal", single=True), sp


def test_miri_lrs_nods_combine_on_the_sky_in_stage_3():
    from transforms import spec3

    (a, sp), (b, _) = _lrs_nod(0.25, 0), _lrs_nod(-0.25, 1)
    out = spec3.run((a, b), _plan("spec3", {"extract1d": LRS_REF}))
    s2d = out["s2d"]
    assert not S.is_multislit(s2d)  # one source: a SlitModel
    d = np.asarray(s2d["data"], np.float64)
    prof = np.nansum(d, axis=0)
    # one trace (the nods land on the same sky position), not two
    peak = int(np.argmax(prof))
    assert np.all(prof[np.abs(np.arange(prof.size) - peak) > 4] < 0.05 * prof[peak])
    for product in (out["x1d"], out["c1d"]):
        spec = S.spectra(product)[0]
        w, f = spec["wavelength"], spec["flux"]
        m = _interior(w.size, 6) & np.isfinite(f)
        ratio = f[m] / sp.spectrum(w[m])
        assert np.all(np.abs(ratio - 1) < 0.02), (product.kind, np.abs(ratio - 1).max())
    assert np.all(S.spectra(out["c1d"])[0]["n_input"] == 2)
