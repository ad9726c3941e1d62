"""master_background: subtract a master 1-D background, built from the association's dedicated
background exposures, from every science exposure (spec3).

As jwst 3.0's MasterBackgroundStep for slit spectra: the background members (exposures with
``observation.bkgdtarg`` true) are extracted (calops: rectified and box-extracted over the
whole slit, the surface brightness column) and combined with combine_1d's algorithm
(exposure-time weights) into a master spectrum, optionally smoothed by a moving median of
``median_kernel`` (odd; even sizes are rounded down); it is interpolated at every science
pixel's wavelength (0 and DO_NOT_USE outside its range) and subtracted. NIRSpec MOS slits get
no master background in stage 3 (jwst: only ``master_background_mos`` in stage 2 does MOS);
NIRSpec fixed-slit point sources get jwst's point-source correction of the 2-D background
(``pathloss_uniform/pathloss_point * flatfield_uniform/flatfield_point *
photom_point/photom_uniform``) when those per-slit planes are present.

The step is skipped (data unchanged, ``SKIPPED``) when every science exposure already had its
background subtracted in stage 2 (``cal_step.bkg_subtract`` or ``master_background``
COMPLETE) unless ``force_subtract``, or when the association has no background member. Its
output is the science exposures only (the background members are used up here, as jwst's
``split_container``). ``user_background`` (a file) is not supported in a pure step: leave it
None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms import spectral as S
from transforms.model import DataModel
from transforms.registry import register


class MasterBackgroundError(ValueError):
    """Bad master_background parameters or inputs."""


@dataclass(frozen=True)
class MasterBackgroundParams:
    """jwst 3.0 MasterBackgroundStep parameters (spec defaults)."""

    median_kernel: int = 1
    user_background: str | None = None
    save_background: bool = False
    force_subtract: bool = False
    output_use_model: bool = True


def is_background(m: DataModel) -> bool:
    return m.get("observation.bkgdtarg") in (True, "T", "True", "true")


def split(models: Sequence[DataModel]) -> tuple[tuple[DataModel, ...], tuple[DataModel, ...]]:
    """(science, background) members of an association."""
    sci = tuple(m for m in models if not is_background(m))
    bkg = tuple(m for m in models if is_background(m))
    return sci, bkg


def master_spectrum(bkgs: Sequence[DataModel], median_kernel: int = 1, resampler: Any = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(wavelength, surface brightness) of the master background from background exposures,
    rectified by ``resampler`` (a resample_spec version's; 1.0 and 1.1: 1.0's)."""
    from transforms.spec2 import extract_1d as ex
    from transforms.spec2 import resample_spec as rs
    from transforms.spec3 import combine_1d as cb

    x1ds = []
    for m in bkgs:
        # a dedicated background exposure is blank sky: extended (jwst's srctype says so)
        m = S.with_slits(m, [s.replace(meta={"srctype": "EXTENDED"}) for s in S.slits(m)],
                         meta={"target.source_type": "EXTENDED"})
        s2d = (resampler or rs.resampler("1.0")).resample_exposure(m, rs.ResampleSpecParams())
        x1d = ex.extract_model(s2d, {}, ex.Extract1dParams(use_source_posn=False))
        # the surface brightness is what the master combines: put it in the flux column
        specs = [S.Spectrum(sp.name, {**sp.columns, "flux": sp["surf_bright"],
                                      "flux_error": sp["sb_error"]}, {})
                 for sp in S.spectra(x1d)]
        x1ds.append(S.spectra_product("x1d", m.meta, specs))
    ins = [cb._In(sp, float(m.get("exposure.exposure_time") or 1.0))
           for m in x1ds for sp in S.spectra(m) if cb._usable(sp)]
    if not ins:
        raise MasterBackgroundError("the background exposures hold no valid spectrum")
    cols = cb.combine_group(ins)
    wl, sb = cols["wavelength"], cols["surf_bright"]
    k = int(median_kernel)
    if k % 2 == 0:
        k -= 1
    if k > 1:
        from scipy.signal import medfilt  # here: scipy.signal costs ~60 MB at import

        sb = medfilt(sb, kernel_size=[k])
    return wl, sb


def _fs_point_factor(slit: S.Slit) -> np.ndarray | None:
    need = ("pathloss_point", "pathloss_uniform", "flatfield_point", "flatfield_uniform",
            "photom_point", "photom_uniform")
    if not all(n in slit.arrays for n in need):
        return None
    a = {n: np.asarray(slit.arrays[n], np.float64) for n in need}
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((a["pathloss_uniform"] / a["pathloss_point"])
                * (a["flatfield_uniform"] / a["flatfield_point"])
                * (a["photom_point"] / a["photom_uniform"]))


def subtract(model: DataModel, wl_tab: np.ndarray, sb_tab: np.ndarray) -> DataModel:
    """``model`` with the master background expanded to 2-D and subtracted (new arrays)."""
    exp_type = str(model.get("exposure.type") or "").upper()
    lo, hi = float(np.amin(wl_tab)), float(np.amax(wl_tab))
    out = []
    for s in S.slits(model):
        wl = np.asarray(S.geometry(s, model.meta).wavelength, np.float64).copy()
        wl[np.isnan(wl)] = -1.0
        outside = (wl > hi) | (wl < lo)
        wl[outside] = -1.0
        bkg = np.interp(wl, wl_tab, sb_tab, left=0.0, right=0.0)
        dq = np.asarray(s.arrays.get("dq", np.zeros(s.shape, np.uint32)), np.uint32)
        if exp_type == "NRS_MSASPEC":
            bkg = np.zeros_like(bkg)
            outside = np.zeros_like(outside)
        elif exp_type == "NRS_FIXEDSLIT" and str(s.get("srctype") or "").upper() == "POINT":
            f = _fs_point_factor(s)
            if f is not None:
                bkg = bkg * f
        data = (np.asarray(s.arrays["data"], np.float64) - bkg).astype(np.float32)
        dq = np.where(outside, dq | np.uint32(DQ.DO_NOT_USE), dq).astype(np.uint32)
        out.append(s.replace(arrays={"data": data, "dq": dq}))
    return S.with_slits(model, out, meta={"cal_step.master_background": "COMPLETE"})


@register("master_background", "1.0", "spec3", MasterBackgroundParams, (), keyword="S_MSBSUB",
          exec_only=("save_background", "output_use_model"), instruments=("NIRSPEC", "MIRI"))
def master_background(models: Sequence[DataModel], refs: dict, params: MasterBackgroundParams
                      ) -> tuple[DataModel, ...]:
    """Subtract the master background of the association's background exposures; returns the
    science exposures."""
    return subtract_master(models, params)


def subtract_master(models: Sequence[DataModel], params: MasterBackgroundParams,
                    resampler: Any = None) -> tuple[DataModel, ...]:
    """1.0's algorithm, the background exposures rectified by ``resampler`` (None: resample_spec
    1.0's)."""
    if params.user_background:
        raise MasterBackgroundError("master_background user_background (a file) is not "
                                    "supported; leave it None")
    sci, bkg = split(tuple(models))
    if not sci:
        raise MasterBackgroundError("master_background: the association has no science member")
    done = [m.get("cal_step.bkg_subtract") == "COMPLETE"
            or m.get("cal_step.master_background") == "COMPLETE" for m in sci]
    if (any(done) and not params.force_subtract) or not bkg:
        return tuple(m.replace(meta={"cal_step.master_background": "SKIPPED"}) for m in sci)
    wl, sb = master_spectrum(bkg, params.median_kernel, resampler)
    return tuple(subtract(m, wl, sb) for m in sci)
