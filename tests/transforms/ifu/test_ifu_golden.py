"""Golden product ids of the IFU step versions (assign_wcs 2.1, msa_flagging 1.1, straylight,
flat_field 2.1, fringe, photom 2.1, residual_fringe, pixel_replace 1.1, cube_build 1.0 and 1.1,
extract_1d 1.1, master_background 1.1, outlier_detection 2.1, spectral_leak): a silent change
to their output fails here (then add a new version of the step).

Inputs are made here without the renderer, bit-identical on every CPU: the instrument models'
pixel maps are arithmetic only (no trigonometry), the data are dyadic functions of each pixel's
slice, alpha and wavelength, finite on three slices only (so the steps run in a second). Steps
whose output goes through the sky projection (assign_wcs's S_REGION, cube_build,
extract_1d), an FFT (straylight), ``pow`` (photom's time correction) or least squares
(residual_fringe) are pinned in canonical form (float64 to 32 bits, float32 arrays to 16;
extract_1d's sums 16 bits; S_REGION strings left out), as resample's are. The other spec2
steps carry assign_wcs's sky-projected metadata, so they are pinned in canonical form too;
spectral_leak (arithmetic on a fixed x1d) exactly.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import pytest

_HERE = Path(__file__).resolve().parent
for p in (str(_HERE), str(_HERE.parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

from golden_ids import Canon, check, ids_of  # noqa: E402

from transforms import dq as DQ  # noqa: E402
from transforms import registry  # noqa: E402
from transforms.instruments.miri import mrs  # noqa: E402
from transforms.instruments.nirspec import ifu as N  # noqa: E402
from transforms.model import DataModel  # noqa: E402
from transforms.sim import ifu_mrs as SM  # noqa: E402
from transforms.sim import ifu_nirspec as SN  # noqa: E402
from transforms import spectral as S  # noqa: E402

pytest.importorskip("store.identity", reason="product ids come from store.identity")

SKY = Canon(bits=32, float32=False)
SKY32 = Canon(bits=16, float32=True)
# extract_1d's aperture sums: measured with OpenBLAS Sandybridge and numpy's AVX loops off, 8 of
# 1156 float64 values moved by up to 2.6e-9 relative (pixels on the aperture/annulus edge);
# 16 bits (1.5e-5 relative) makes a flip ~2e-4 likely per noisy value.
X1D = Canon(bits=16, float32=True)


def _quant(a: np.ndarray, q: float = 2.0 ** -10) -> np.ndarray:
    return (np.round(np.asarray(a, np.float64) / q) * q).astype(np.float32)


def _step(name: str, version: str):
    spec = registry.get(name, version)
    return spec, spec.make_params()


@functools.cache
def mrs_rate() -> DataModel:
    """A noiseless MRS rate: DN/s a dyadic function of the pixel's slice, alpha and
    wavelength on slices 105-107 of channel 1 and 205 of channel 2 (NaN elsewhere), a
    pedestal of 2^-5 everywhere (the straylight step measures it), a few flagged pixels."""
    meta = SM.exposure_meta(SM.MrsExposureSpec())
    p = mrs.mrs_params("MIRIFUSHORT", "SHORT")
    px = mrs.pixels(p)
    keep = np.isin(px.label, (105, 106, 107, 205))
    val = 4.0 + 2.0 * np.exp2(-np.where(keep, px.alpha, 0.0) ** 2) + 0.25 * np.where(
        keep, px.lam, 0.0)
    data = np.where(keep, _quant(val), np.float32(2.0 ** -5)).astype(np.float32)
    dq = np.zeros(data.shape, np.uint32)
    dq[:, :4] = dq[:, 1028:] = DQ.DO_NOT_USE | DQ.REFERENCE_PIXEL
    ys, xs = np.nonzero(keep)
    for k in (11, 503, 2001):
        dq[ys[k], xs[k]] |= DQ.DO_NOT_USE
        data[ys[k], xs[k]] = np.nan
    var = np.full(data.shape, 2.0 ** -12, np.float32)
    return DataModel("rate", {"data": data, "dq": dq, "err": np.sqrt(2 * var).astype(np.float32),
                              "var_poisson": var, "var_rnoise": var},
                     {**meta, "bunit_data": "DN/s"})


@functools.cache
def mrs_refs() -> dict:
    return SM.mrs_references("MIRIFUSHORT", "SHORT", 0, SM.MrsEffects())


def _apply(name, version, model, refs=None):
    spec, params = _step(name, version)
    return spec.apply(model, mrs_refs() if refs is None else refs, params)


@functools.cache
def mrs_cal():
    m = _apply("assign_wcs", "2.1", mrs_rate())
    for n, v in (("straylight", "1.0"), ("flat_field", "2.1"), ("fringe", "1.0"),
                 ("photom", "2.1")):
        m = _apply(n, v, m)
    return m


@functools.cache
def mrs_s3d():
    spec, _ = _step("cube_build", "1.0")
    return spec.apply(mrs_cal(), mrs_refs(), spec.make_params({"channel": "1"}))


def _nrs_rate() -> DataModel:
    meta = SN.exposure_meta(SN.NrsIfuExposureSpec())
    p = N.nrs_ifu_params("NRS1", "G140M", "F100LP")
    px = N.pixels(p)
    keep = np.isin(px.label, (5, 6, 7))
    val = 3.0 + np.exp2(-np.where(keep, px.alpha, 0.0) ** 2) + np.where(keep, px.lam, 0.0)
    data = np.where(keep, _quant(val), np.float32(np.nan)).astype(np.float32)
    dq = np.zeros(data.shape, np.uint32)
    var = np.full(data.shape, 2.0 ** -12, np.float32)
    return DataModel("rate", {"data": data, "dq": dq, "err": np.sqrt(2 * var).astype(np.float32),
                              "var_poisson": var, "var_rnoise": var},
                     {**meta, "bunit_data": "DN/s"})


@functools.cache
def nrs_refs() -> dict:
    return SN.nrs_ifu_references(0, SN.NrsIfuEffects())


def _no_sregion(m: DataModel) -> DataModel:
    return m.replace(drop=("wcsinfo.s_region",))


def _case_assign_wcs():
    return _no_sregion(_apply("assign_wcs", "2.1", mrs_rate())), SKY


def _case_assign_wcs_nrs():
    return _no_sregion(_apply("assign_wcs", "2.1", _nrs_rate(), nrs_refs())), SKY


def _case_msa_flagging():
    m = _apply("assign_wcs", "2.1", _nrs_rate(), nrs_refs())
    return _no_sregion(_apply("msa_flagging", "1.1", m, nrs_refs())), SKY


@functools.cache
def nrs_cal() -> DataModel:
    m = _apply("assign_wcs", "2.1", _nrs_rate(), nrs_refs())
    m = _apply("flat_field", "2.1", m, nrs_refs())
    return _apply("photom", "2.1", m, nrs_refs())


def _case_nrs_flat_photom():
    return _no_sregion(nrs_cal()), SKY32


def _case_straylight():
    m = _apply("assign_wcs", "2.1", mrs_rate())
    return _no_sregion(_apply("straylight", "1.0", m)), SKY32


def _case_flat_field():
    m = _apply("assign_wcs", "2.1", mrs_rate())
    return _no_sregion(_apply("flat_field", "2.1", m)), SKY


def _case_fringe():
    m = _apply("assign_wcs", "2.1", mrs_rate())
    return _no_sregion(_apply("fringe", "1.0", m)), SKY


def _case_photom():
    return _no_sregion(mrs_cal()), SKY32


def _case_residual_fringe():
    return _no_sregion(_apply("residual_fringe", "1.0", mrs_cal())), SKY32


def _case_pixel_replace():
    spec, _ = _step("pixel_replace", "1.1")
    out = spec.apply(mrs_cal(), {}, spec.make_params({"algorithm": "mingrad"}))
    return _no_sregion(out), SKY32


def _case_cube_build():
    return _no_sregion(mrs_s3d()), SKY32


def _case_cube_build_internal_cal():
    """1.1: the NIRSpec internal_cal cube (1.0 raised ZeroDivisionError on it)."""
    spec, _ = _step("cube_build", "1.1")
    out = spec.apply(nrs_cal(), nrs_refs(), spec.make_params({"coord_system": "internal_cal"}))
    return _no_sregion(out), SKY32


def _case_extract_1d():
    spec, _ = _step("extract_1d", "1.1")
    return spec.apply(mrs_s3d(), mrs_refs(), spec.make_params({"ifu_rfcorr": False})), X1D


def _exposures():
    a = mrs_cal()
    d = np.array(a["data"])
    b = a.replace(arrays={"data": (d + np.float32(0.5)).astype(np.float32)},
                  meta={"dither.position_number": 2})
    bk = a.replace(arrays={"data": np.where(np.isfinite(d), np.float32(0.75), d)},
                   meta={"observation.bkgdtarg": True})
    return (a, b, bk)


def _case_master_background():
    spec, _ = _step("master_background", "1.1")
    out = spec.apply(_exposures(), {}, spec.make_params())
    return tuple(_no_sregion(m) for m in out), SKY32


def _case_outlier_detection():
    spec, _ = _step("outlier_detection", "2.1")
    out = spec.apply(_exposures()[:2], {}, spec.make_params())
    return tuple(_no_sregion(m) for m in out), SKY32


def _case_spectral_leak():
    w1 = np.linspace(5.66, 6.63, 64)
    w3 = np.linspace(11.55, 13.47, 96)
    cols = lambda w, f: {"wavelength": w, "flux": f, "rf_flux": f * 0.5}  # noqa: E731
    x1d = S.spectra_product("x1d", {"exposure.type": "MIR_MRS", "instrument.name": "MIRI"}, [
        S.Spectrum("ch1-medium", cols(w1, 1.0 + w1 / 8.0), {"source_type": "POINT"}),
        S.Spectrum("ch3-short", cols(w3, 2.0 + w3 / 16.0), {"source_type": "POINT"})])
    spec, _ = _step("spectral_leak", "1.0")
    return spec.apply(x1d, {"mrsptcorr": SM.ptcorr_reference()}, spec.make_params()), None


CASES = {
    "assign_wcs==2.1": _case_assign_wcs,
    "assign_wcs==2.1#nrs_ifu": _case_assign_wcs_nrs,
    "msa_flagging==1.1": _case_msa_flagging,
    "straylight==1.0": _case_straylight,
    "flat_field==2.1": _case_flat_field,
    "flat_field==2.1#nrs_ifu_photom": _case_nrs_flat_photom,
    "fringe==1.0": _case_fringe,
    "photom==2.1": _case_photom,
    "residual_fringe==1.0": _case_residual_fringe,
    "pixel_replace==1.1": _case_pixel_replace,
    "cube_build==1.0": _case_cube_build,
    "cube_build==1.1": _case_cube_build_internal_cal,
    "extract_1d==1.1": _case_extract_1d,
    "master_background==1.1": _case_master_background,
    "outlier_detection==2.1": _case_outlier_detection,
    "spectral_leak==1.0": _case_spectral_leak,
}
PINNED = tuple(CASES)  # the keys of tests/transforms/golden_ids.py this file pins


@pytest.mark.parametrize("key", PINNED)
def test_golden_product_id(key):
    out, canon = CASES[key]()
    check({key: ids_of(out, canon)})


def test_canonical_forms_still_see_a_small_change():
    """The rounding hides CPU noise, not a real change: the cube and the x1d of a cal scaled by
    1 + 2^-8 have other canonical ids."""
    from golden_ids import GOLDEN

    cal = mrs_cal()
    d = np.array(cal["data"])
    cal2 = cal.replace(arrays={"data": (d * np.float32(1 + 2.0 ** -8)).astype(np.float32)})
    spec, _ = _step("cube_build", "1.0")
    s3d = spec.apply(cal2, mrs_refs(), spec.make_params({"channel": "1"}))
    assert ids_of(_no_sregion(s3d), SKY32) != GOLDEN["cube_build==1.0"]
    x1 = registry.get("extract_1d", "1.1")
    x1d = x1.apply(s3d, mrs_refs(), x1.make_params({"ifu_rfcorr": False}))
    assert ids_of(x1d, X1D) != GOLDEN["extract_1d==1.1"]


def test_cube_build_1_1_gives_1_0s_cubes_outside_internal_cal():
    """1.1 changes only the NIRSpec internal_cal grid: 1.0's golden input (an MRS skyalign
    cube) gives 1.0's pinned id through 1.1."""
    from golden_ids import GOLDEN

    spec, _ = _step("cube_build", "1.1")
    s3d = spec.apply(mrs_cal(), mrs_refs(), spec.make_params({"channel": "1"}))
    assert ids_of(_no_sregion(s3d), SKY32) == GOLDEN["cube_build==1.0"]


@pytest.mark.parametrize("key,name,version,attr", [
    ("pixel_replace==1.0", "pixel_replace", "1.1", "pixel_replace"),
    ("pixel_replace==1.0#mingrad", "pixel_replace", "1.1", "pixel_replace"),
    ("extract_1d==1.0", "extract_1d", "1.1", "extract_1d"),
    ("master_background==1.0", "master_background", "1.1", "master_background"),
    ("outlier_detection==2.0", "outlier_detection", "2.1", "outlier_detection"),
])
def test_ifu_versions_give_the_slit_versions_products(key, name, version, attr, monkeypatch):
    """The IFU-aware versions hand slit spectra to the versions below unchanged: the slit
    golden inputs give those versions' pinned ids (so slit products do not change)."""
    import importlib.util

    from golden_ids import GOLDEN

    path = _HERE.parent / "spec" / "test_spec_golden.py"
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("_spec_golden_for_ifu", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    new = registry.get(name, version)

    def call(model, refs, params):
        return new.apply(model, refs, new.params(**{
            k: v for k, v in params.__dict__.items() if k in new.params.__dataclass_fields__}))

    monkeypatch.setattr(mod, attr, call)
    make, canon = mod.CASES[key]
    assert ids_of(make(), canon) == GOLDEN[key]
