"""Golden product ids of the spectroscopy steps (pixel_replace, resample_spec, extract_1d,
master_background, outlier_detection 2.0, combine_1d): a silent change to their output fails
here (then add a new version of the step).

Inputs are built here from analytic slits (``spec_synth``) and made bit-identical on every CPU:
the trace and dispersion polynomials have dyadic coefficients, rendered data are rounded to
2**-10, noise is integers / 256. Each step gets its own fixed input.

resample_spec and master_background map pixels through sky positions (numpy's SIMD
sin/cos/arctan2 differ in the last bit between CPU generations) and fit the slit direction by
least squares, so their outputs are pinned in canonical form as resample 1.0's are: float64
values to 32 significant bits, float32 arrays to 12 (``golden_ids.Canon``). extract_1d on a
fixed s2d and combine_1d are arithmetic (pinned exactly but for the sky position of the
aperture, 32 bits); pixel_replace (fit_profile: medians and a closed-form scale; mingrad:
neighbour means) and outlier_detection 2.0's DQ flags are pinned exactly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

_HERE = Path(__file__).resolve().parent
for p in (str(_HERE), str(_HERE.parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

import spec_synth as T  # noqa: E402
from golden_ids import Canon, golden_cases, ids_of  # noqa: E402

from transforms import dq as DQ  # noqa: E402
from transforms import spectral as S  # noqa: E402
from transforms.image3.outlier_detection import OutlierParams  # noqa: E402
from transforms.model import DataModel  # noqa: E402
from transforms.spec2.extract_1d import Extract1dParams, extract1d_ref, extract_1d  # noqa: E402
from transforms.spec2.pixel_replace import PixelReplaceParams, pixel_replace  # noqa: E402
from transforms.spec2.resample_spec import ResampleSpecParams, resample_spec  # noqa: E402
from transforms.spec3.combine_1d import Combine1dParams, combine_1d  # noqa: E402
from transforms.spec3.master_background import (MasterBackgroundParams,  # noqa: E402
                                                master_background)
from transforms.spec3.outlier_detection import outlier_detection  # noqa: E402

pytest.importorskip("store.identity", reason="product ids come from store.identity")

GOLD = dict(shape=(21, 96), trace=(10.0, 2.0 ** -6, 2.0 ** -14), dispersion=(1.0, 2.0 ** -9, 0.0),
            shear=2.0 ** -5, slit_pix=16.0, scale=0.125, ra=53.125, dec=-27.75, pa=0.0)


def _quantised(slit: S.Slit, scale: float = 2.0 ** 32) -> S.Slit:
    """Data and variances rounded to dyadic values; data in units of ~1 (golden inputs need
    no realism, only bit-identity)."""
    a = dict(slit.arrays)
    a["data"] = (np.round(np.asarray(a["data"], np.float64) * scale * 1024.0) / 1024.0
                 ).astype(np.float32)
    var = np.full(slit.shape, 2.0 ** -12, np.float32)
    a.update(var_rnoise=var, var_poisson=var, err=np.sqrt(2 * var))
    return slit.replace(arrays=a)


def _slit(seed: int, name: str = "S200A1", ypos: float = 0.125, **kw) -> S.Slit:
    rng = np.random.default_rng(seed)
    sp = T.SlitSpec(name=name, source_ypos=ypos, **{**GOLD, **kw})
    s = _quantised(T.make_slit(sp))
    d = np.asarray(s.arrays["data"], np.float64) + rng.integers(-8, 9, s.shape) / 256.0
    return s.replace(arrays={"data": d.astype(np.float32)})


def _pixel_replace(algorithm: str):
    s = _slit(21)
    a = dict(s.arrays)
    dq, data = a["dq"].copy(), a["data"].copy()
    for j, i in ((12, 30), (13, 30), (12, 31), (5, 60), (14, 61), (13, 62)):
        dq[j, i] |= DQ.DO_NOT_USE
        data[j, i] = np.nan
    a["dq"], a["data"] = dq, data
    cal = T.cal_product([s.replace(arrays=a)])
    return pixel_replace(cal, {}, PixelReplaceParams(algorithm=algorithm))


def _resample_spec():
    cal = T.cal_product([_slit(22), _slit(23, name="S200A2", ypos=-0.25, trace=(9.0, 0.0, 0.0))])
    return resample_spec(cal, {}, ResampleSpecParams())


def _s2d_fixed() -> DataModel:
    """A rectified slit written directly (no resampling): a Gaussian trace at row 11.25 on a
    background of 1/8, a linear wavelength table."""
    ny, nx = 23, 80
    rng = np.random.default_rng(24)
    y = np.arange(ny)[:, None]
    prof = np.exp(-0.5 * ((y - 11.25) / 1.25) ** 2)
    data = np.round((40.0 * prof + 0.125) * 1024.0) / 1024.0 + rng.integers(-8, 9, (ny, nx)) / 256.0
    lam = np.broadcast_to(1.0 + np.arange(nx) * 2.0 ** -9, (ny, nx)).astype(np.float32)
    params = {"model": S.S2D, "disp_axis": 1, "s0": -1.375, "ds": 0.125, "ra0": 53.125,
              "dec0": -27.75, "pa": 0.0, "slit_y0": -0.6875, "dslit_y": 0.0625, "nspatial": ny}
    var = np.full((ny, nx), 2.0 ** -12, np.float32)
    slit = S.Slit("S200A1", {"data": data.astype(np.float32), "dq": np.zeros((ny, nx), np.uint32),
                             "err": np.sqrt(var), "var_rnoise": var, "var_poisson": var,
                             "var_flat": np.zeros((ny, nx), np.float32), "wavelength": lam},
                  {"name": "S200A1", "source_id": 1, "source_ypos": 0.0, "source_xpos": 0.0,
                   "srctype": "POINT", "dispersion_direction": 1, "wcs": params,
                   "bunit_data": "MJy"})
    base = DataModel("s2d", {}, T.base_meta())
    return S.with_slits(base, [slit], kind="s2d", single=False)


def _extract_1d():
    ref = extract1d_ref([{"id": "ANY", "extract_width": 5, "use_source_posn": True,
                          "bkg_coeff": [[0.5], [4.5], [18.5], [22.5]], "bkg_order": 1}])
    return extract_1d(_s2d_fixed(), {"extract1d": ref}, Extract1dParams())


def _x1d(seed: int, lam0: float, t: float) -> DataModel:
    rng = np.random.default_rng(seed)
    n = 64
    w = lam0 + np.arange(n) * 2.0 ** -8
    f = 1.0 + np.round(rng.random(n) * 256) / 1024.0
    cols = {"wavelength": w, "flux": f, "flux_error": np.full(n, 2.0 ** -6),
            "surf_bright": f / 4, "sb_error": np.full(n, 2.0 ** -8),
            "dq": np.zeros(n, np.uint32)}
    sp = S.Spectrum("S200A1", cols, {"source_id": 1, "source_type": "POINT"})
    return S.spectra_product("x1d", {**T.base_meta(), "exposure.exposure_time": t}, [sp])


def _combine_1d():
    return combine_1d((_x1d(31, 1.0, 512.0), _x1d(32, 1.0 + 2.0 ** -9, 256.0),
                       _x1d(33, 1.125, 256.0)), {}, Combine1dParams())


def _master_background():
    sci = T.cal_product([_slit(41)])
    bkg_slit = _slit(42, ypos=None)
    a = dict(bkg_slit.arrays)
    a["data"] = (np.asarray(a["data"], np.float64) + 0.5).astype(np.float32)
    bkg = T.cal_product([bkg_slit.replace(arrays=a)], **{"observation.bkgdtarg": True})
    return master_background((sci, bkg), {}, MasterBackgroundParams())


def _spectral_exposures(seed: int, n: int = 3) -> tuple[DataModel, ...]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        s = _slit(seed + k)
        a = dict(s.arrays)
        d = np.asarray(a["data"], np.float64).copy()
        iy, ix = rng.integers(3, 18, 5), rng.integers(5, 90, 5)
        d[iy, ix] += 64.0  # cosmic rays
        a["data"] = d.astype(np.float32)
        out.append(T.cal_product([s.replace(arrays=a)], **{"observation.exposure_number": str(k)}))
    return tuple(out)


def _outlier_detection_spec():
    return outlier_detection(_spectral_exposures(51), {}, OutlierParams())


# How each output is canonicalised before hashing (None: exact). See the module docstring.
CASES = {
    "pixel_replace==1.0": (lambda: _pixel_replace("fit_profile"), None),
    "pixel_replace==1.0#mingrad": (lambda: _pixel_replace("mingrad"), None),
    "resample_spec==1.0": (_resample_spec, Canon(bits=12, float32=True)),
    "extract_1d==1.0": (_extract_1d, Canon(bits=32)),
    "combine_1d==1.0": (_combine_1d, None),
    "master_background==1.0": (_master_background, Canon(bits=12, float32=True)),
    "outlier_detection==2.0": (_outlier_detection_spec, None),
}
PINNED = tuple(CASES)  # the keys of tests/transforms/golden_ids.py this file pins


_first, test_golden_product_id = golden_cases(CASES)


def test_outlier_detection_2_0_gives_1_0s_products_for_images():
    """2.0 calls 1.0 unchanged for imaging: the image3 golden input gives 1.0's pinned ids."""
    from golden_ids import GOLDEN

    sys.path.insert(0, str(_HERE.parent / "image3"))
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_img3_golden", _HERE.parent / "image3" / "test_image3_golden.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    _, truths = mod._program(seed=13, pointing_error=False, n_cr=12)
    out = outlier_detection(truths, {}, OutlierParams())
    assert ids_of(out) == GOLDEN["outlier_detection==1.0"]
