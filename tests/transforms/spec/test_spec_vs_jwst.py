"""calops' spectroscopy steps against jwst 3.0's, run on the same inputs: calops' own files
(written by ``store.spec_products`` with their gwcs), opened in stdatamodels and given to
jwst's steps in process, offline (CRDS serverless, every reference given as an override).

- pixel_replace: jwst's ``PixelReplacement`` on the same arrays (fit_profile within jwst's
  Nelder-Mead tolerance, mingrad exactly);
- resample_spec: jwst's ResampleSpecStep on calops' cal file (same grid size, identical
  wavelength table, column sums within the shear x tilt term calops corrects, the source at the
  same sky position);
- extract_1d: jwst's Extract1dStep on calops' s2d (NIRSpec FS with a background region;
  MIRI LRS placed by its dither position) with calops' JSON extract1d reference: the same
  aperture and the same fluxes;
- combine_1d: jwst's Combine1dStep on calops' x1d files: the same combined spectrum.
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

import spec_synth as T  # noqa: E402

from store import fits as F  # noqa: E402
from transforms import dq as DQ  # noqa: E402
from transforms import spectral as S  # noqa: E402
from transforms.spec2 import extract_1d as ex  # noqa: E402
from transforms.spec2 import pixel_replace as pr  # noqa: E402
from transforms.spec2 import resample_spec as rs  # noqa: E402
from transforms.spec3 import combine_1d as cb  # noqa: E402

pytest.importorskip("jwst")
dm = pytest.importorskip("stdatamodels.jwst.datamodels")




def _open(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dm.open(path)


def _jwst_extract(model, ref_path):
    from jwst.extract_1d.extract_1d_step import Extract1dStep

    st = Extract1dStep()
    for rt in st.reference_file_types:
        setattr(st, f"override_{rt}", ref_path if rt == "extract1d" else "N/A")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return st.run(model)


# --- pixel_replace -----------------------------------------------------------------------------

def _bad_slit():
    rng = np.random.default_rng(5)
    s = T.make_slit(T.SlitSpec(source_ypos=0.0, shape=(31, 120)), rng, noise=2e-12)
    a = {k: np.array(v, copy=True) for k, v in s.arrays.items()}
    # errors small enough that the trace has S/N > 5: profiles are normalised and scaled
    a["var_rnoise"] = np.full(a["data"].shape, (2e-12) ** 2, np.float32)
    a["err"] = np.sqrt(a["var_rnoise"] + a["var_poisson"] * 1e-6).astype(np.float32)
    a["var_poisson"] = (a["var_poisson"] * 1e-6).astype(np.float32)
    row = int(round(15 + 60 * 0.01 + 60 ** 2 * 1.5e-5))
    # several adjacent pixels in the trace core of one column (the build 10.0 fix's case),
    # scattered ones elsewhere, and a NON_SCIENCE pixel
    for j, i in [(row - 1, 60), (row, 60), (row + 1, 60), (row, 61), (5, 20), (25, 90)]:
        a["dq"][j, i] |= DQ.DO_NOT_USE
        a["data"][j, i] = np.nan
    a["dq"][3, 40] |= DQ.DO_NOT_USE | DQ.PIXEL["NON_SCIENCE"]
    return a, row


def test_pixel_replace_fit_profile_and_mingrad_match_jwst():
    from jwst.pixel_replace.pixel_replace import PixelReplaceArrays, PixelReplacement

    a, row = _bad_slit()

    def jw(alg):
        arrs = PixelReplaceArrays(data=a["data"].copy(), dq=a["dq"].copy(), err=a["err"].copy(),
                                  var_poisson=a["var_poisson"].copy(),
                                  var_rnoise=a["var_rnoise"].copy(),
                                  var_flat=a["var_flat"].copy(), trace_model=None,
                                  dispersion_direction=1)
        r = PixelReplacement(None, algorithm=alg)
        return getattr(r, alg)(arrs)

    mine = pr.fit_profile(a, 1, 3)
    theirs = jw("fit_profile")
    assert np.array_equal(mine["dq"], theirs.dq)
    rep = (a["dq"] & DQ.DO_NOT_USE) != 0
    np.testing.assert_allclose(mine["data"][rep], theirs.data[rep], rtol=2e-3, atol=0)
    np.testing.assert_array_equal(mine["data"][~rep], theirs.data[~rep])
    for k in ("err", "var_rnoise", "var_poisson"):
        np.testing.assert_allclose(mine[k][rep], getattr(theirs, k)[rep], rtol=4e-3)
    # the core of the trace is restored: the replaced peak is within 3 % of the truth
    truth = T.make_slit(T.SlitSpec(source_ypos=0.0, shape=(31, 120))).arrays["data"]
    assert abs(mine["data"][row, 60] / truth[row, 60] - 1) < 0.03
    m2 = pr.mingrad(a)
    t2 = jw("mingrad")
    for k in ("data", "dq", "err", "var_rnoise", "var_poisson", "var_flat"):
        np.testing.assert_array_equal(m2[k], getattr(t2, k))


# --- resample_spec -----------------------------------------------------------------------------

def _fs_cal():
    rng = np.random.default_rng(9)
    return T.cal_product([T.make_slit(T.SlitSpec(source_ypos=0.15), rng, noise=1e-13)])


def test_resample_spec_matches_jwst(jwst_offline, tmp_path):
    from jwst.resample.resample_spec_step import ResampleSpecStep

    cal = _fs_cal()
    path = F.write_product(cal, tmp_path / "jw01234003001_01101_00001_nrs1_cal.fits",
                           wcs=S.file_wcs(cal))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ResampleSpecStep().run(_open(path)).slits[0]
    mine = S.slits(rs.resample_spec(cal, {}, rs.ResampleSpecParams()))[0]
    assert theirs.data.shape == mine.shape
    np.testing.assert_array_equal(theirs.wavelength[0], mine.arrays["wavelength"][0])
    cm = np.nansum(mine.arrays["data"].astype(float), axis=0)
    cj = np.nansum(theirs.data.astype(float), axis=0)
    inner = slice(4, -4)
    # calops divides by the pixels' extent along the iso-wavelength line (shear x tilt <= 1e-3)
    np.testing.assert_allclose(cm[inner], cj[inner], rtol=1.5e-3)
    # the source lands at the same place on the sky
    def peak_sky(data, w):
        col = data.shape[1] // 2
        prof = np.nan_to_num(data[:, col].astype(float))
        y = float(np.sum(np.arange(prof.size) * prof) / prof.sum())
        ra, dec, _ = w(col, y)
        return ra, dec
    rj, dj = peak_sky(theirs.data, theirs.meta.wcs)
    rm, dmm = peak_sky(mine.arrays["data"], S.slit_gwcs(mine))
    sep = math.hypot((rj - rm) * math.cos(math.radians(dj)), dj - dmm) * 3600
    assert sep < 0.01, sep


# --- extract_1d --------------------------------------------------------------------------------

FS_APER = [{"id": "ANY", "region_type": "target", "extract_width": 7, "use_source_posn": True,
            "bkg_coeff": [[0.5], [5.5], [28.5], [33.5]], "bkg_order": 1}]


def test_extract_1d_matches_jwst_on_calops_s2d(jwst_offline, tmp_path):
    cal = _fs_cal()
    s2d = rs.resample_spec(cal, {}, rs.ResampleSpecParams())
    ref = ex.extract1d_ref(FS_APER)
    ref_path = str(F.write_reference(ref, tmp_path / "jwst_nirspec_extract1d_0001.json"))
    path = F.write_product(s2d, tmp_path / "jw01234003001_01101_00001_nrs1_s2d.fits",
                           wcs=S.file_wcs(s2d))
    theirs = _jwst_extract(_open(path), ref_path).spec[0]
    mine = S.spectra(ex.extract_1d(s2d, {"extract1d": ref}, ex.Extract1dParams()))[0]
    t = theirs.spec_table
    np.testing.assert_allclose(t["WAVELENGTH"], mine["wavelength"], rtol=1e-12)
    for col in ("FLUX", "FLUX_ERROR", "BACKGROUND", "NPIXELS", "FLUX_VAR_RNOISE"):
        np.testing.assert_allclose(t[col], mine[col.lower()], rtol=1e-6, atol=1e-30, err_msg=col)
    for k in ("extraction_ystart", "extraction_ystop", "extraction_xstart", "extraction_xstop"):
        assert getattr(theirs, k) == pytest.approx(mine.get(k), abs=1e-9), k


def test_extract_1d_matches_jwst_for_miri_lrs_placed_by_the_dither(jwst_offline, tmp_path):
    from test_spec_validation import LRS_REF, _lrs

    cal, _ = _lrs(noise=2e-12)
    s2d = rs.resample_spec(cal, {}, rs.ResampleSpecParams())
    ref_path = str(F.write_reference(LRS_REF, tmp_path / "jwst_miri_extract1d_0001.json"))
    path = F.write_product(s2d, tmp_path / "jw01234005001_01101_00001_mirimage_s2d.fits",
                           wcs=S.file_wcs(s2d))
    jm = _open(path)
    assert type(jm).__name__ == "SlitModel"
    theirs = _jwst_extract(jm, ref_path).spec[0]
    mine = S.spectra(ex.extract_1d(s2d, {"extract1d": LRS_REF}, ex.Extract1dParams()))[0]
    np.testing.assert_allclose(theirs.spec_table["FLUX"], mine["flux"], rtol=1e-6)
    assert theirs.extraction_xstart == pytest.approx(mine.get("extraction_xstart"), abs=1e-6)


# --- combine_1d --------------------------------------------------------------------------------

def test_combine_1d_matches_jwst(jwst_offline, tmp_path):
    from jwst.combine_1d.combine_1d_step import Combine1dStep
    from jwst.datamodels import ModelContainer

    x1ds = []
    for k, (lam0, t) in enumerate(((0.95, 1000.0), (0.9512, 500.0), (1.05, 800.0))):
        rng = np.random.default_rng(20 + k)
        sl = T.make_slit(T.SlitSpec(dispersion=(lam0, 2.0e-3, 1.0e-7), source_ypos=0.0),
                         rng, noise=1e-12)
        cal = T.cal_product([sl], **{"exposure.exposure_time": t})
        x1ds.append(ex.extract_1d(rs.resample_spec(cal, {}, rs.ResampleSpecParams()),
                                  {"extract1d": ex.extract1d_ref(FS_APER)}, ex.Extract1dParams()))
    paths = [F.write_product(x, tmp_path / f"x{k}_x1d.fits", wcs=S.file_wcs(x))
             for k, x in enumerate(x1ds)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = Combine1dStep().run(ModelContainer([_open(p) for p in paths])).spec[0]
    mine = S.spectra(cb.combine_1d(tuple(x1ds), {}, cb.Combine1dParams()))[0]
    t = theirs.spec_table
    np.testing.assert_allclose(t["WAVELENGTH"], mine["wavelength"], rtol=1e-12)
    for col in ("FLUX", "ERROR", "WEIGHT", "N_INPUT", "SURF_BRIGHT"):
        np.testing.assert_allclose(t[col], mine[col.lower()], rtol=1e-10, err_msg=col)


# --- resample_spec 1.1 on a MIRI LRS cal (issue #15) ---------------------------------------------

def test_resample_spec_11_maps_the_lrs_trace_to_the_source_as_jwst_does(jwst_offline, tmp_path):
    """A simulated MIRI LRS cal (full frame, the spec2 front half on specsim's rate) through
    jwst's ResampleSpecStep and calops' resample_spec: the trace of 1.1's s2d maps to the true
    source position within 0.1" (as jwst's does) and to jwst's wavelength; 1.0's s2d carried
    the cal's full-frame WCS (~33" off). jwst's LRS assign_wcs bounds the WCS to the slit and
    sets S_REGION; calops' cal file has the full-frame bounding box and no S_REGION, so the
    test gives the jwst model both (from the slit box), as jwst's assign_wcs would."""
    from jwst.resample.resample_spec_step import ResampleSpecStep

    sys.path.insert(0, str(_HERE.parent / "spec2"))
    import spec2_helpers as H

    from transforms import registry
    from transforms.instruments.miri import lrs as L

    prog = H.lrs_single()
    cal = H.run(prog, prog.exposures[0])
    src = prog.source(1)
    path = F.write_product(cal, tmp_path / "jw01234005001_01101_00001_mirimage_cal.fits",
                           wcs=S.file_wcs(cal))
    jm = _open(path)
    x0, y0, nx, ny = L.slit_box(dict(S.slits(cal)[0].get("wcs")), pad=0)
    jm.meta.wcs.bounding_box = ((x0 - 0.5, x0 + nx - 0.5), (y0 - 0.5, y0 + ny - 0.5))
    xs = np.arange(x0, x0 + nx, dtype=float)
    r, d, lam = jm.meta.wcs(xs, np.full(nx, y0 + ny // 2, float), with_bounding_box=False)
    ok = np.isfinite(r) & np.isfinite(lam)
    corners = [(r[ok][0], d[ok][0]), (r[ok][-1], d[ok][-1])] * 2
    jm.meta.wcsinfo.s_region = "POLYGON ICRS  " + " ".join(f"{a:.9f} {b:.9f}"
                                                           for a, b in corners)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ResampleSpecStep().run(jm)

    def trace(data):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prof = np.nanmedian(np.asarray(data, float), axis=0)  # spatial along x
        i = int(np.nanargmax(prof))
        ii = np.arange(i - 3, i + 4)
        w = np.clip(prof[ii], 0, None)
        return float(np.sum(ii * w) / w.sum())

    def sep(ra, dec):
        return math.hypot((ra - src.ra) * math.cos(math.radians(src.dec)), dec - src.dec) * 3600

    row = theirs.data.shape[0] // 2
    rj, dj, lj = theirs.meta.wcs(trace(theirs.data), row)
    assert sep(rj, dj) < 0.1
    got = {}
    for v in ("1.0", "1.1"):
        spec = registry.get("resample_spec", v)
        s2d = spec.apply(cal, {}, spec.make_params())
        data = S.slits(s2d)[0].arrays["data"]
        assert data.shape[0] == theirs.data.shape[0]  # the same wavelength sampling
        got[v] = S.file_wcs(s2d)[None](trace(data), row)
    ra, dec, lam = got["1.1"]
    assert sep(ra, dec) < 0.1, sep(ra, dec)
    assert lam == pytest.approx(lj, rel=1e-6)
    assert sep(*got["1.0"][:2]) > 10  # 1.0: the cal's full-frame WCS at s2d pixel indices
