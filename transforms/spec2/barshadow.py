"""barshadow: correct MOS slitlets of extended sources for the shadows of the MSA bars.

As jwst 3.0's BarShadowStep: for a slitlet of a uniform (extended) source the shadow is built
from the BARSHADOW reference's half-shutter elements (``data1x1``: one open shutter between
closed ones; ``data1x3``: the middle of three open shutters; 1001 rows over -1..+1 shutter
pitch, 101 wavelength columns) following the slitlet's ``shutter_state`` (first, open/closed
pairs, last), then interpolated bilinearly at each pixel's slit-frame y (from the slit WCS,
divided by ``slit_yscale`` into pitches, origin at the fiducial shutter ``x``) and wavelength;
data, err and variances are divided by it (``inverse`` multiplies), kept as the ``barshadow``
plane. Point sources (``source_type`` overrides) and empty slitlets are left alone
(``barshadow`` of ones, ``barshadow_corrected`` False). NIRSpec MOS only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from transforms.instruments.nirspec import slits as N
from transforms.model import DataModel
from transforms.registry import register
from transforms.spec2._common import (Spec2Error, exp_type, match_nans_and_flags, need_ref,
                                      scale_arrays, slit_arrays, slit_meta, slit_names,
                                      srctype_of, update_slits)

NAME, VERSION = "barshadow", "1.0"
SLITRATIO = 1.15


@dataclass(frozen=True)
class BarshadowParams:
    """jwst 3.0 BarShadowStep spec."""

    inverse: bool = False
    source_type: str | None = None


def shutter_elements(ref: DataModel) -> dict[str, np.ndarray]:
    d11 = np.asarray(ref["data1x1"], np.float64)
    d13 = np.asarray(ref["data1x3"], np.float64)
    return {"first": d11[:501], "open_open": d13[:501], "open_closed": d11[500:],
            "closed_open": d11[:501], "closed_closed": np.nanmin(d11) * np.ones((501, 101)),
            "last": d11[501:]}


def build_shadow(elements: Mapping[str, np.ndarray], state: str) -> np.ndarray:
    """The shadow of a slitlet (500 rows per shutter, half a shutter beyond each end)."""
    n = len(state)
    shadow = np.zeros((n * 500 + 500, elements["first"].shape[1]))
    shadow[0:501] = elements["first"]
    row = 500
    last = "open"
    for ch in state[1:]:
        this = "closed" if ch == "0" else "open"
        e = elements[f"{last}_{this}"]
        shadow[row] = 0.5 * (shadow[row] + e[0])
        shadow[row + 1:row + e.shape[0]] = e[1:]
        row += e.shape[0] - 1
        last = this
    e = elements["last"]
    shadow[row:row + e.shape[0]] = e
    return shadow


def slit_shadow(ref: DataModel, sm: Mapping, shape: tuple[int, int]) -> np.ndarray:
    """The bar shadow at every pixel of one slitlet cutout."""
    state = str(sm.get("shutter_state") or "")
    p = sm.get("wcs")
    if not isinstance(p, Mapping):
        raise Spec2Error(f"{NAME}: slitlet {sm.get('name')} has no WCS; run extract_2d")
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    yslit, lam = N.pixel_coords(dict(p), x, y, masked=False)
    yscale = float(sm.get("slit_yscale") or SLITRATIO)
    yslit = yslit / yscale
    shadow = build_shadow(shutter_elements(ref), state)
    w0, dw = float(ref.get("crval1")), float(ref.get("cdelt1"))
    if 0 < abs(w0) < 1e-3:  # meters, as jwst's slit frame and the reference files
        lam = lam * 1e-6
    height = 1.0 / float(ref.get("cdelt2"))
    fid = len(state) - state.find("x")
    yrow = shadow.shape[0] - height * fid + yslit * height
    wcol = (lam - w0) / dw
    from scipy import ndimage  # imported where used: every stage run imports this module

    return ndimage.map_coordinates(shadow, [yrow, wcol], cval=np.nan, order=1, mode="nearest")


@register(NAME, VERSION, "spec2", BarshadowParams, ("barshadow",), keyword="S_BARSHA",
          instruments=("NIRSPEC",))
def barshadow(model: DataModel, refs, params: BarshadowParams) -> DataModel:
    """Divide extended-source MOS slitlets by the MSA bar shadow."""
    if exp_type(model) != "NRS_MSASPEC" or not slit_names(model):
        return model.replace(meta={"cal_step.barshadow": "SKIPPED"})
    ref = need_ref(refs, "barshadow", NAME)
    ups = {}
    for name in slit_names(model):
        arrays = slit_arrays(model, name)
        sm = slit_meta(model, name)
        shape = np.shape(arrays.get("data", np.zeros((0, 0))))[-2:]
        uniform = srctype_of(model, sm, params.source_type) != "POINT"
        if not uniform or not sm.get("shutter_state") or 0 in shape:
            ups[name] = ({"barshadow": np.ones(shape, np.float32)},
                         {"barshadow_corrected": False})
            continue
        shadow = slit_shadow(ref, sm, shape)
        out = scale_arrays(arrays, shadow, params.inverse)
        match_nans_and_flags(out)
        out["barshadow"] = shadow.astype(np.float32)
        ups[name] = (out, {"barshadow_corrected": True})
    return update_slits(model, ups, {"cal_step.barshadow": "COMPLETE"})
