"""straylight 1.0: the MIRI MRS cross-artifact and pedestal correction (jwst 3.0's
StraylightStep), with build 10.0's order: **pedestal first**.

For MIR_MRS exposures (anything else is returned unchanged: jwst skips the step):

1. a first pedestal estimate (sigma-clipped mean and rms, astropy's defaults) in the dark
   columns between the channels (503-516 for channels 1/2, 474-507 for 3/4; rows 50-973);
2. the source image for the model: the data minus that pedestal, zeroed where NaN, flagged
   (DO_NOT_USE, NON_SCIENCE, DEAD, HOT) or below pedestal + 3 rms (detector glow, not light
   through the optics);
3. the cross-artifact model: along every row, each half's columns (0-515 left, 516-1023
   right) spread by the mrsxartcorr kernel of the half's channel and band (a Lorentzian and
   two Gaussian pairs, per-row parameters; ``_straylight_kernels``), zero in the reference
   columns; subtracted;
4. the final pedestal: the sigma-clipped median of the dark columns after the subtraction,
   subtracted from every science column.

``clean_showers`` (cosmic-ray shower cleaning) is not implemented: asking for it is refused.
The model and pedestal are recorded as ``straylight.pedestal`` (DN/s) in meta.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transforms import dq as DQ
from transforms.instruments.miri import mrs
from transforms.model import DataModel
from transforms.registry import register
from transforms.spec2._ifu_common import NON_SCIENCE, IfuStepError, exp_type
from transforms.spec2._straylight_kernels import xart_convolve

NAME, VERSION = "straylight", "1.0"
_MASK_FLAGS = DQ.DO_NOT_USE | NON_SCIENCE | DQ.DEAD | DQ.HOT
_TABLE = {("12", "SHORT"): ("ch1a", "ch2a"), ("12", "MEDIUM"): ("ch1b", "ch2b"),
          ("12", "LONG"): ("ch1c", "ch2c"), ("34", "SHORT"): ("ch4a", "ch3a"),
          ("34", "MEDIUM"): ("ch4b", "ch3b"), ("34", "LONG"): ("ch4c", "ch3c")}
_COLS = ("lor_fwhm", "lor_scale", "gau_fwhm", "gau_xoff", "gau_scale1", "gau_scale2")


@dataclass(frozen=True)
class StraylightParams:
    """jwst 3.0 StraylightStep spec."""

    clean_showers: bool = False
    shower_plane: int = 3
    shower_x_stddev: float = 18.0
    shower_y_stddev: float = 5.0
    shower_low_reject: float = 0.1
    shower_high_reject: float = 99.9
    save_shower_model: bool = False


def _clipped(a: np.ndarray) -> tuple[float, float, float]:
    from astropy.stats import sigma_clipped_stats

    v = a[np.isfinite(a)]
    if v.size == 0:
        return 0.0, 0.0, 0.0
    mean, med, std = sigma_clipped_stats(v)
    return float(mean), float(med), float(std)


def table_of(ref: DataModel, name: str) -> list[np.ndarray] | None:
    cols = [ref.arrays.get(f"{name}_table.{c}") for c in _COLS]
    if any(c is None for c in cols):
        return None
    y = ref.arrays.get(f"{name}_table.yrow")
    out = []
    for c in cols:
        c = np.asarray(c, np.float64)
        if y is not None:  # per detector row, ordered by yrow
            full = np.zeros(1024)
            full[np.asarray(y, int)] = c
            c = full
        out.append(c)
    return out


def correct(model: DataModel, ref: DataModel) -> tuple[np.ndarray, float, np.ndarray]:
    """(corrected data, final pedestal, cross-artifact model) of an MRS exposure."""
    data = np.asarray(model["data"], np.float64)
    ny, nx = data.shape
    dq = np.asarray(model.arrays.get("dq", np.zeros(data.shape, np.uint32)))
    use = np.where(np.isfinite(data), data, 0.0)
    mask = np.isfinite(data) & ((dq & _MASK_FLAGS) == 0)
    chan = "".join(sorted(str(model.get("instrument.channel") or "")))
    band = str(model.get("instrument.band") or "").upper()
    xd1, xd2 = mrs.DARK_COLUMNS.get(chan, (474, 507))
    yd1, yd2 = 50, ny - 50
    ped_guess, _, ped_rms = _clipped(use[yd1:yd2, xd1:xd2])
    mask &= use >= ped_guess + 3.0 * ped_rms
    fimg = np.where(mask, use - ped_guess, 0.0)
    fimg = np.where(fimg < 0.0, 0.0, fimg)
    model_x = np.zeros(data.shape)
    names = _TABLE.get((chan, band))
    if names is not None:
        for name, (lo, hi) in zip(names, ((0, 516), (516, 1024))):
            t = table_of(ref, name)
            if t is not None:
                model_x += xart_convolve(fimg, lo, hi, *t)
    model_x[:, 1028:] = 0.0
    model_x[:, :4] = 0.0
    out = data - model_x
    _, ped, _ = _clipped(out[yd1:yd2, xd1:xd2])
    pedestal = np.full(data.shape, ped)
    pedestal[:, 1028:] = 0.0
    pedestal[:, :4] = 0.0
    return out - pedestal, ped, model_x


@register(NAME, VERSION, "spec2", StraylightParams, (), keyword="S_STRAY",
          optional_reftypes=("mrsxartcorr", "regions"), exec_only=("save_shower_model",),
          instruments=("MIRI",))
def straylight(model: DataModel, refs: dict, params: StraylightParams) -> DataModel:
    """MRS: subtract the detector pedestal, then the cross artifact (build 10.0 order)."""
    if exp_type(model) != "MIR_MRS":
        return model
    if params.clean_showers:
        raise IfuStepError("straylight: clean_showers is not implemented in calops; leave it "
                           "False")
    ref = (refs or {}).get("mrsxartcorr")
    if ref is None:
        return model.replace(meta={"cal_step.straylight": "SKIPPED"})
    out, ped, _ = correct(model, ref)
    return model.replace(arrays={"data": out.astype(np.float32)},
                         meta={"cal_step.straylight": "COMPLETE", "straylight.pedestal": ped})
