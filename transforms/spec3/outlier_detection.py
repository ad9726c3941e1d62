"""outlier_detection 2.0: version 1.0's imaging algorithm, plus jwst's ``spec`` mode for slits.

Imaging exposures go to ``transforms.image3.outlier_detection.outlier_detection`` (1.0)
unchanged, so their products are identical to 1.0's. Slit spectra (NIRSpec FS/MOS, MIRI LRS;
jwst's ``outlier_detection.spec``): for every source, each exposure's slit is rectified alone
onto the source's common resample_spec grid (the "singles", with ``pixfrac``/``kernel``/
``weight_type`` of this step), their median is taken where each single's weight reaches
``maskpt`` x its mean weight, the median (and the median of the singles' errors) is
interpolated back to every input pixel, and a pixel is an outlier where ``|data - blot|``
exceeds ``snr1 * blot_err + scale1 * |d blot|`` and, next to such a pixel, ``snr2 * blot_err +
scale2 * |d blot|`` (1.0's ``flag_outliers``). Flagged pixels get OUTLIER | DO_NOT_USE.
With ``resample_data = False`` the inputs must share one pixel grid and the median is taken
directly. A source seen in fewer than two exposures is left alone, as jwst does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from transforms import dq as DQ
from transforms import spectral as S
from transforms.image3 import outlier_detection as v1
from transforms.model import DataModel
from transforms.registry import register
from transforms.resample import _bilinear
from transforms.spec2 import resample_spec as rs

_FLAG = np.uint32(DQ.OUTLIER | DQ.DO_NOT_USE)


def _blot(img: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    out = np.empty(u.shape, np.float64)
    _bilinear(np.asarray(img, np.float64), np.asarray(u, np.float64),
              np.asarray(v, np.float64), float("nan"), out)
    return out


def spectral_outliers(cals: tuple[DataModel, ...], p: v1.OutlierParams,
                      resampler: rs.Resampler | None = None) -> tuple[DataModel, ...]:
    """Flag outliers of slit spectra against the per-source median of the other exposures,
    the singles on ``resampler``'s grid (a resample_spec version's; 2.0 and 2.1: 1.0's)."""
    grids = resampler or rs.resampler("1.0")
    snr = v1._pair(p.snr, "snr")
    scale = v1._pair(p.scale, "scale")
    if p.kernel not in ("square", "point"):
        raise v1.OutlierError(f"outlier_detection kernel must be 'square' or 'point', got "
                              f"{p.kernel!r}")
    if len(cals) < 2:
        return tuple(m.replace(meta={"cal_step.outlier_detection": "SKIPPED"}) for m in cals)
    rp = rs.ResampleSpecParams(pixfrac=p.pixfrac, kernel=p.kernel, weight_type=p.weight_type)
    new_dq: dict[tuple[int, str], np.ndarray] = {}
    counts: dict[int, int] = {}
    index = {id(m): k for k, m in enumerate(cals)}
    for _, members in rs.group_by_source(cals):
        if len(members) < 2:
            continue
        pieces = [rs.piece(s, m.meta) for s, m in members]
        if p.resample_data:
            grid = grids.build_grid(pieces, rp)
            scis, whts, errs = [], [], []
            for pc in pieces:
                d = rs.drizzle(grid, [pc], rp, float("nan"))
                scis.append(d.sci)
                whts.append(d.wht)
                var = sum((d.variances[x].astype(np.float64) for x in d.variances),
                          np.zeros(d.sci.shape))
                errs.append(np.sqrt(var).astype(np.float32) if d.variances
                            else np.full(d.sci.shape, np.nan, np.float32))
            med = v1.median_of_singles(scis, whts, p.maskpt)
            med_err = v1.median_of_singles(errs, whts, p.maskpt)
            blots, blot_errs = [], []
            for pc in pieces:
                u, v = rs.pixmap(grid, pc)
                blots.append(_blot(med, u, v))
                blot_errs.append(_blot(med_err, u, v))
        else:
            shapes = {pc.data.shape for pc in pieces}
            if len(shapes) > 1:
                raise v1.OutlierError("resample_data=False needs the exposures of a source on "
                                      "one pixel grid (same shape); set resample_data=True")
            scis = [pc.data for pc in pieces]
            whts = [rs._weight(pc, p.weight_type) for pc in pieces]
            med = v1.median_of_singles(scis, whts, p.maskpt)
            blots = [med] * len(pieces)
            errs = [np.asarray(pc.slit.arrays.get("err", np.zeros(pc.slit.shape)), np.float32)
                    for pc in pieces]
            errs = [e.T if pc.transposed else e for e, pc in zip(errs, pieces)]
            blot_errs = [v1.median_of_singles(errs, whts, p.maskpt)] * len(pieces)
        for pc, (s, m), b, be in zip(pieces, members, blots, blot_errs):
            data = pc.data.astype(np.float32)
            bg = float(m.get("background.level") or 0.0) \
                if m.get("background.subtracted") is False else 0.0
            mask = v1.flag_outliers(data - np.float32(bg), np.nan_to_num(be), b, snr, scale,
                                    p.backg)
            mask &= pc.good
            dq = np.where(mask, pc.dq | _FLAG, pc.dq).astype(np.uint32)
            if pc.transposed:
                dq, mask = np.ascontiguousarray(dq.T), mask.T
            k = index[id(m)]
            new_dq[(k, s.name)] = dq
            counts[k] = counts.get(k, 0) + int(mask.sum())
    out = []
    for k, m in enumerate(cals):
        sl = [s.replace(arrays={"dq": new_dq[(k, s.name)]}) if (k, s.name) in new_dq else s
              for s in S.slits(m)]
        out.append(S.with_slits(m, sl, meta={"cal_step.outlier_detection": "COMPLETE",
                                             "outlier_detection.nflagged": counts.get(k, 0)}))
    return tuple(out)


@register("outlier_detection", "2.0", "spec3", v1.OutlierParams, (), keyword="S_OUTLIR")
def outlier_detection(cals: Sequence[DataModel], refs: dict, params: v1.OutlierParams
                      ) -> tuple[DataModel, ...]:
    """Flag outliers (OUTLIER | DO_NOT_USE): 1.0 for images, jwst's spec mode for slits."""
    cals = tuple(cals)
    if cals and S.is_spectral_image(cals[0]):
        return spectral_outliers(cals, params)
    return v1.outlier_detection(cals, refs, params)
