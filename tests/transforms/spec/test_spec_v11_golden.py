"""Golden product ids of resample_spec 1.1 and of the step versions that rectify on the planned
resample_spec grid (outlier_detection 2.2, master_background 1.2), and what 1.1 fixes.

The input is shaped as a MIRI LRS cal is (issue #15): one slit in a single spectral image
whose WCS parameters are top-level ``wcs.*`` keys, dispersion along y, sky positions on every
pixel and wavelengths only in a box (the slit; its band misses the middle row). resample_spec
1.0's s2d keeps that input WCS and anchors its grid on the whole middle row; 1.1's s2d carries
its own grid's WCS, anchored on the slit's pixels, and maps the trace to the source's true sky
position. On NIRSpec-shaped inputs (sky positions only in the slit, the WCS per slit) 1.1,
outlier_detection 2.2 and master_background 1.2 give 1.0's, 2.0's and 1.0's pinned products.

Inputs are dyadic as ``test_spec_golden``'s; outputs pinned in the same canonical forms.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

_HERE = Path(__file__).resolve().parent
for p in (str(_HERE), str(_HERE.parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

import spec_synth as T  # noqa: E402
from golden_ids import Canon, GOLDEN, golden_cases, ids_of  # noqa: E402

from transforms import registry  # noqa: E402
from transforms import spectral as S  # noqa: E402
from transforms.image3.outlier_detection import OutlierParams  # noqa: E402
from transforms.model import DataModel  # noqa: E402
from transforms.spec2 import resample_spec as rs  # noqa: E402
from transforms.spec2.resample_spec_v11 import resample_spec as resample_spec_v11  # noqa: E402
from transforms.spec3.master_background import MasterBackgroundParams  # noqa: E402
from transforms.spec3.master_background_v12 import master_background  # noqa: E402
from transforms.spec3.outlier_detection_v22 import outlier_detection  # noqa: E402

pytest.importorskip("store.identity", reason="product ids come from store.identity")

# dispersion along x here, transposed to vertical (LRS) by make_slit: (spatial, dispersion)
LRS = dict(shape=(33, 96), trace=(16.0, 2.0 ** -6, 0.0), dispersion=(5.0, 2.0 ** -5, 0.0),
           shear=0.0, slit_pix=16.0, scale=0.125, ra=53.125, dec=-27.75, pa=-56.0,
           disp_axis=2, sigma=1.25)
BOX = (slice(52, 96), slice(6, 27))  # (dispersion rows, spatial columns) with a wavelength
YPOS = 0.1875  # the source, slit units along the slit


def _lrs_cal(seed: int, ypos: float | None = YPOS, sky: float = 0.0, **meta) -> DataModel:
    """An LRS-shaped single-slit cal (see the module docstring), data dyadic."""
    rng = np.random.default_rng(seed)
    sl = T.make_slit(T.SlitSpec(name="MIR_LRS-FIXEDSLIT", source_ypos=ypos, **LRS))
    a = dict(sl.arrays)
    d = np.round(np.asarray(a["data"], np.float64) * 2.0 ** 32 * 1024.0) / 1024.0
    d = d + sky + rng.integers(-8, 9, d.shape) / 256.0
    lam = np.full(d.shape, np.nan, np.float32)
    lam[BOX] = np.asarray(a["wavelength"], np.float32)[BOX]
    var = np.full(d.shape, 2.0 ** -12, np.float32)
    a.update(data=d.astype(np.float32), wavelength=lam, var_rnoise=var, var_poisson=var,
             err=np.sqrt(2 * var))
    params = sl.meta["wcs"]
    smeta = {k: v for k, v in sl.meta.items() if k != "wcs"}
    top = T.base_meta("MIR_LRS-FIXEDSLIT", **{
        "wcsinfo.dispersion_direction": 2, "target.source_type": "POINT",
        **{f"wcs.{k}": v for k, v in params.items()}, **meta})
    return S.with_slits(DataModel("cal", {}, top), [sl.replace(arrays=a, meta=smeta)],
                        kind="cal", single=True)


def _true_source() -> tuple[float, float]:
    s = YPOS * LRS["slit_pix"] * LRS["scale"]
    pa = math.radians(LRS["pa"])
    ra, dec = S.tan_to_sky(s * math.sin(pa), s * math.cos(pa), LRS["ra"], LRS["dec"])
    return float(ra), float(dec)


def _resample_spec():
    return resample_spec_v11(_lrs_cal(61), {}, rs.ResampleSpecParams())


def _lrs_exposures(seed: int, n: int = 3) -> tuple[DataModel, ...]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        m = _lrs_cal(seed + k, **{"observation.exposure_number": str(k)})
        d = np.asarray(m["data"], np.float64).copy()
        iy, ix = rng.integers(55, 94, 5), rng.integers(8, 25, 5)
        d[iy, ix] += 64.0  # cosmic rays, in the slit
        out.append(m.replace(arrays={"data": d.astype(np.float32)}))
    return tuple(out)


def _outlier_detection():
    return outlier_detection(_lrs_exposures(71), {}, OutlierParams())


def _master_background():
    sci = _lrs_cal(81, sky=0.5)
    bkg = _lrs_cal(82, ypos=None, sky=0.5, **{"observation.bkgdtarg": True})
    return master_background((sci, bkg), {}, MasterBackgroundParams(force_subtract=True))


CASES = {
    "resample_spec==1.1": (_resample_spec, Canon(bits=12, float32=True)),
    "outlier_detection==2.2": (_outlier_detection, None),
    "master_background==1.2": (_master_background, Canon(bits=12, float32=True)),
}
PINNED = tuple(CASES)  # the keys of tests/transforms/golden_ids.py this file pins


_first, test_golden_product_id = golden_cases(CASES)


def _trace_sky(s2d: DataModel) -> tuple[float, float]:
    """The sky position the s2d's own WCS (as exported) gives the trace's centroid."""
    sl = S.slits(s2d)[0]
    d = np.asarray(sl.arrays["data"], np.float64)
    prof = np.nanmedian(d, axis=0)  # dispersion along y: columns are the spatial axis
    i = int(np.nanargmax(prof))
    ii = np.arange(i - 3, i + 4)
    w = np.clip(prof[ii], 0, None)
    c = float(np.sum(ii * w) / w.sum())
    ra, dec, _ = S.file_wcs(s2d)[None](c, d.shape[0] // 2 + 20)
    return float(ra), float(dec)


def _sep(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot((a[0] - b[0]) * math.cos(math.radians(b[1])), a[1] - b[1]) * 3600.0


def test_v11_s2d_maps_the_trace_to_the_true_source_position_and_v10_did_not():
    cal = _lrs_cal(61)
    truth = _true_source()
    v10 = rs.resample_spec(cal, {}, rs.ResampleSpecParams())
    v11 = _first("resample_spec==1.1")
    assert v10.get("wcs.model") == S.ANALYTIC  # 1.0: the cal's WCS, at s2d pixel indices
    assert v11.get("wcs.model") is None and S.slits(v11)[0].get("wcs")["model"] == S.S2D
    assert _sep(_trace_sky(v11), truth) < 0.01
    assert _sep(_trace_sky(v10), truth) > 0.5
    # the grid's anchor is on the slit (1.0: the middle row's mean, off the band)
    g = S.slits(v11)[0].get("wcs")
    box_sky = S.geometry(S.slits(cal)[0], cal.meta)
    ok = np.isfinite(S.slits(cal)[0].arrays["wavelength"])
    d = [_sep((g["ra0"], g["dec0"]), (r, de))
         for r, de in zip(box_sky.ra[ok], box_sky.dec[ok])]
    assert min(d) < 0.1
    # the rectified data are 1.0's (the same pixels on the same along-slit offsets)
    a0, a1 = (np.asarray(S.slits(m)[0].arrays["data"], float) for m in (v10, v11))
    assert a0.shape == a1.shape
    np.testing.assert_allclose(np.nansum(a1, axis=1), np.nansum(a0, axis=1), rtol=1e-5,
                               atol=1e-3)


def test_on_nirspec_inputs_the_new_versions_give_the_old_products():
    """Sky positions only in the slit and the WCS per slit: 1.1 = 1.0, 2.2 = 2.0, 1.2 = 1.0."""
    import test_spec_golden as G

    spec = registry.get("resample_spec", "1.1")
    s2d = spec.apply(T.cal_product([G._slit(22), G._slit(23, name="S200A2", ypos=-0.25,
                                                          trace=(9.0, 0.0, 0.0))]),
                     {}, rs.ResampleSpecParams())
    assert ids_of(s2d, Canon(bits=12, float32=True)) == GOLDEN["resample_spec==1.0"]
    out = outlier_detection(G._spectral_exposures(51), {}, OutlierParams())
    assert ids_of(out) == GOLDEN["outlier_detection==2.0"]
    sci = T.cal_product([G._slit(41)])
    bkg_slit = G._slit(42, ypos=None)
    a = dict(bkg_slit.arrays)
    a["data"] = (np.asarray(a["data"], np.float64) + 0.5).astype(np.float32)
    bkg = T.cal_product([bkg_slit.replace(arrays=a)], **{"observation.bkgdtarg": True})
    mb = master_background((sci, bkg), {}, MasterBackgroundParams())
    assert ids_of(mb, Canon(bits=12, float32=True)) == GOLDEN["master_background==1.0"]


def test_every_step_is_a_function_of_its_recipe_alone():
    """No step version takes anything beyond (input, refs, params): what a chain would pass
    besides (e.g. the plan's resample_spec version) is not in the step's recipe key, so two
    plans would record different products under one key. outlier_detection 2.2 and
    master_background 1.2 take resample_spec 1.1's grid from their own version."""
    import inspect

    specs = [registry.get(n, v) for n, vs in registry.steps().items() for v in vs]
    extra = {f"{s.name}=={s.version}": [p.name for p in list(
        inspect.signature(s.apply).parameters.values())[3:]] for s in specs}
    assert {k: v for k, v in extra.items() if v} == {}
    assert rs.resampler("1.0").own_wcs is False and rs.resampler("1.1").own_wcs is True
    with pytest.raises(rs.ResampleSpecError, match="no version"):
        rs.resampler("9.9")
