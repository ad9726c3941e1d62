"""numba kernels for ordinary-least-squares ramp fitting with optimal (Fixsen) weighting.

One call fits every pixel of a ramp, rows spread over threads (``for_rows``). The definitions
follow stcal's OLS_C (its C extension documents them): segments are runs of good groups that may
start with a JUMP_DET group; segment slopes are optimally weighted OLS fits whose weight
exponent depends on the segment's signal-to-noise ratio; segments and integrations are combined
by inverse read-noise variance; VAR_POISSON uses the pixel's median first-difference rate;
one-group ramps, the zero frame and suppress_one_group behave as in stcal. Arithmetic is float64
per pixel, outputs float32. CHARGELOSS groups get stcal's read-noise recomputation
(``_chargeloss_rnoise``).

The work is split into small kernels with one job each, called per row by ``_fit_rows``:
``_fast_row`` (unflagged pixels, vectorised over columns), ``_fit_clean_pixel`` (an unflagged
pixel the fast path did not take), and for the others ``_gather`` (groups, one-group
suppression, zero frame), ``_median_rate`` (the rate VAR_POISSON uses), ``_fit_integrations``
(each integration's segments found by ``segments``, fitted by ``_segment_fit`` and combined),
``_exposure`` (integrations combined, DQ) and ``_chargeloss_rnoise``. Segment finding and the
medians are shared with the jump kernels (``_kernels_common``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from transforms.detector1._kernels_common import (NOT_PERS, SHORT, copy_row, median,
                                                  nan_last_median, segments)
from transforms.detector1._kernels_threads import for_rows
from transforms.dq import (CHARGELOSS, DO_NOT_USE, JUMP_DET, NO_GAIN_VALUE, PERSISTENCE,
                           SATURATED)

LARGE_VARIANCE = 1.0e6
_NOT_PERS = NOT_PERS


POWERS = (0.0, 0.4, 1.0, 3.0, 6.0, 10.0)


def weight_table(ngroups: int) -> np.ndarray:
    """Optimal weights |(j - mid)/mid| ** P for every SNR power P and segment length, rounded
    to float32 as stcal's powf: table[power index, length, j]. ``math.pow`` in double then one
    rounding keeps the table identical on every CPU (numpy's SIMD float32 power may not be)."""
    tab = np.zeros((len(POWERS), ngroups + 1, max(ngroups, 1)), np.float64)
    for ln in range(3, ngroups + 1):
        mid = (ln - 1) / 2.0
        for j in range(ln):
            base = float(np.float32(abs((j - mid) / mid)))
            for k, p in enumerate(POWERS):
                tab[k, ln, j] = float(np.float32(math.pow(base, p)))
    return tab


@njit(nogil=True, cache=True, error_model="numpy")
def _power_index(snr: float) -> int:
    if snr < 5.0:
        return 0
    if snr < 10.0:
        return 1
    if snr < 20.0:
        return 2
    if snr < 50.0:
        return 3
    if snr < 100.0:
        return 4
    return 5


@njit(nogil=True, cache=True, error_model="numpy")
def _weight_sums(wtab, ngroups):
    """Sums of the full-length weights and their first and second moments, per SNR power."""
    wsum = np.zeros((wtab.shape[0], 3), np.float64)
    if ngroups >= 3:
        for pi in range(wtab.shape[0]):
            for j in range(ngroups):
                w = wtab[pi, ngroups, j]
                wsum[pi, 0] += w
                wsum[pi, 1] += j * w
                wsum[pi, 2] += j * j * w
    return wsum


@njit(nogil=True, cache=True, error_model="numpy")
def _int_var_out(inv_p, inv_r):
    """An integration's (VAR_POISSON, VAR_RNOISE) from the summed inverse variances of its
    segments; LARGE_VARIANCE and above reported as 0."""
    vp_out = 1.0 / inv_p if inv_p > 0.0 else 0.0
    if vp_out >= LARGE_VARIANCE:
        vp_out = 0.0
    vr_out = 1.0 / inv_r
    if vr_out >= LARGE_VARIANCE:
        vr_out = 0.0
    return vp_out, vr_out


@njit(nogil=True, cache=True, error_model="numpy")
def _exposure_var(r_inv_p, r_inv_r):
    """The exposure's (VAR_POISSON, VAR_RNOISE) from the integrations' inverse variances."""
    vp = r_inv_p
    if vp > 0.0:
        vp = 1.0 / vp
    if vp >= LARGE_VARIANCE or vp < 0.0:
        vp = 0.0
    vr = r_inv_r
    if vr > 0.0:
        vr = 1.0 / vr
    if vr >= LARGE_VARIANCE:
        vr = 0.0
    return vp, vr


@njit(nogil=True, cache=True, error_model="numpy")
def _seg_timing(ln, is0, iszf, suppress1g, frame_time, group_time, one_group_time):
    """The time a segment's slope divides by: a one-group segment of a ramp with only its
    first group good (or only its zero frame) uses that read's time, unless suppressed."""
    timing = group_time
    if ln == 1 and not suppress1g:
        if is0:
            timing = one_group_time
        elif iszf:
            timing = frame_time
    return timing


@njit(nogil=True, cache=True, error_model="numpy")
def _rnoise_var(ln, timing, group_time, rn_e, gain):
    """Read-noise variance of a segment's slope (stcal's, for ``ln`` groups)."""
    if ln == 1:
        return 12.0 * (rn_e / timing) ** 2 / (6.0 * gain * gain)
    if ln == 2:
        return 12.0 * (rn_e / group_time) ** 2 / (6.0 * gain * gain)
    if gain > 0.0:
        return 12.0 * (rn_e / group_time) ** 2 / ((ln * ln * ln - ln) * gain * gain)
    return 0.0


@njit(nogil=True, cache=True, error_model="numpy")
def _chargeloss_rnoise(y, x, qrow, g_lo, g_hi, suppress1g, is0, iszf, rn_e, gain, group_time,
                       frame_time, one_group_time, vr_int, cq, seg_s, seg_e, i_vr, r_vr):
    """stcal's CHARGELOSS pass: VAR_RNOISE recomputed from the segments the ramp would have
    without its CHARGELOSS (and their DO_NOT_USE) flags; slopes and ERR are left as they are."""
    nints, ngroups, _ = qrow.shape
    any_cl = False
    for i in range(nints):
        for g in range(ngroups):
            if qrow[i, g, x] & CHARGELOSS:
                any_cl = True
    if not any_cl:
        return
    toggle = np.uint8(DO_NOT_USE | CHARGELOSS)
    evar = 0.0
    for i in range(nints):
        has_cl = False
        for g in range(ngroups):
            if qrow[i, g, x] & CHARGELOSS:
                has_cl = True
        if not has_cl:
            if vr_int[i] > 0.0:
                evar += 1.0 / vr_int[i]
            continue
        for g in range(ngroups):
            o = qrow[i, g, x]
            if g < g_lo or g > g_hi:
                o |= DO_NOT_USE
            if o & CHARGELOSS:
                o ^= toggle
            cq[g] = o
        nseg = segments(cq, ngroups, seg_s, seg_e)
        inv = 0.0
        for k in range(nseg):
            ln = seg_e[k] - seg_s[k]
            timing = _seg_timing(ln, is0[i], iszf[i], suppress1g, frame_time, group_time,
                                 one_group_time)
            sv = _rnoise_var(ln, timing, group_time, rn_e, gain)
            if sv > 0.0:
                inv += 1.0 / sv
        v = 1.0 / inv if inv > 0.0 else math.inf
        i_vr[i, y, x] = 0.0 if v >= LARGE_VARIANCE else v
        evar += inv
    if evar > 0.0:
        r_vr[y, x] = 1.0 / evar
    if r_vr[y, x] >= LARGE_VARIANCE:
        r_vr[y, x] = 0.0


@njit(nogil=True, cache=True, error_model="numpy")
def _fast_mask(y, drow, qrow, gain2d, pdq, fastm):
    """fastm[x]: pixel x of row ``y`` has a good gain, no bad pixel flag, and no flagged or
    non-finite group (it takes ``_fast_row``)."""
    nints, ngroups, nx = drow.shape
    invalid = DO_NOT_USE | SATURATED
    for x in range(nx):
        fastm[x] = gain2d[y, x] > 0.0 and (pdq[y, x] & invalid) == 0
    for i in range(nints):
        for g in range(ngroups):
            for x in range(nx):
                if qrow[i, g, x] != 0 or not math.isfinite(drow[i, g, x]):
                    fastm[x] = False


@njit(nogil=True, cache=True, error_model="numpy")
def _fast_row(y, drow, fastm, gain2d, rn2d, pdq, dark2d, nframes, group_time, wtab, wsum,
              r_slope, r_dq, r_vp, r_vr, r_err, i_slope, i_dq, i_vp, i_vr, i_err):
    """Pixels of row ``y`` with no flagged group (``fastm``), all at once: the loops run over
    columns, so the compiler vectorises them. Same arithmetic, in the same order, as the
    per-pixel path would use."""
    nints, ngroups, nx = drow.shape
    nd = ngroups - 1
    ln = ngroups
    inv_tg = 1.0 / group_time
    h = nd >> 1
    gain = np.empty(nx, np.float64)
    rn_e = np.empty(nx, np.float64)
    mp = np.zeros(nx, np.float64)
    s32 = np.float32(math.sqrt(2.0 * nframes))
    for x in range(nx):
        gain[x] = float(gain2d[y, x])
        rn_e[x] = float(np.float32(rn2d[y, x]) * np.float32(gain2d[y, x]) / s32)
    dif = np.empty((nd, nx), np.float64)
    rank = np.empty(nx, np.int64)
    lo = np.empty(nx, np.float64)
    hi = np.empty(nx, np.float64)
    for i in range(nints):
        for k in range(nd):
            for x in range(nx):
                dif[k, x] = (float(drow[i, k + 1, x]) - float(drow[i, k, x])) * inv_tg
        for k in range(nd):
            for x in range(nx):
                rank[x] = 0
            for j in range(nd):
                for x in range(nx):
                    rank[x] += (dif[j, x] < dif[k, x]) | ((dif[j, x] == dif[k, x]) & (j < k))
            for x in range(nx):
                if rank[x] == h:
                    hi[x] = dif[k, x]
                if rank[x] == h - 1:
                    lo[x] = dif[k, x]
        for x in range(nx):
            mp[x] += hi[x] if nd & 1 else 0.5 * (lo[x] + hi[x])
    vp = np.empty(nx, np.float64)
    vr = np.empty(nx, np.float64)
    for x in range(nx):
        mrate = mp[x] / nints
        dc = float(dark2d[y, x])
        mpois = (mrate + dc) if mrate > 0.0 else dc
        vp[x] = mpois / (group_time * gain[x] * (ln - 1.0))
        vr[x] = 12.0 * (rn_e[x] / group_time) ** 2 / ((ln * ln * ln - ln) * gain[x] * gain[x])
    sy = np.empty(nx, np.float64)
    sxy = np.empty(nx, np.float64)
    pidx = np.empty(nx, np.int64)
    r_ip = np.zeros(nx, np.float64)
    r_ir = np.zeros(nx, np.float64)
    r_num = np.zeros(nx, np.float64)
    for i in range(nints):
        for x in range(nx):
            d0 = float(drow[i, 0, x])
            rng = float(drow[i, ln - 1, x]) - d0
            den = rn_e[x] * rn_e[x] + rng * gain[x]
            snr = 0.0
            if den > 0.0:
                snr = max(rng * gain[x] / math.sqrt(den), 0.0)
            pidx[x] = _power_index(snr)
            sy[x] = 0.0
            sxy[x] = 0.0
        for j in range(ln):
            for x in range(nx):
                wv = wtab[pidx[x], ln, j] * float(drow[i, j, x])
                sy[x] += wv
                sxy[x] += wv * j
        for x in range(nx):
            if not fastm[x]:
                continue
            pi = pidx[x]
            sw = wsum[pi, 0]
            sx = wsum[pi, 1]
            sxx = wsum[pi, 2]
            slope = (sw * sxy[x] - sx * sy[x]) / (sw * sxx - sx * sx) / group_time
            inv_r = 1.0 / vr[x]
            inv_p = 1.0 / vp[x] if vp[x] > 0.0 else 0.0
            inv_e = 1.0 / (vp[x] + vr[x])
            num = slope / vr[x]
            vp_out, vr_out = _int_var_out(inv_p, inv_r)
            ve = 1.0 / inv_e
            i_slope[i, y, x] = num * vr_out
            i_dq[i, y, x] = pdq[y, x]
            i_vp[i, y, x] = vp_out
            i_vr[i, y, x] = vr_out
            i_err[i, y, x] = 0.0 if ve > LARGE_VARIANCE else math.sqrt(ve)
            r_ip[x] += inv_p
            r_ir[x] += inv_r
            r_num[x] += num
    for x in range(nx):
        if not fastm[x]:
            continue
        v_p, v_r = _exposure_var(r_ip[x], r_ir[x])
        err = math.sqrt(v_p + v_r)
        slope = r_num[x]
        if not math.isnan(slope):
            slope = slope * v_r
        r_slope[y, x] = slope
        r_dq[y, x] = pdq[y, x]
        r_vp[y, x] = v_p
        r_vr[y, x] = v_r
        r_err[y, x] = err


@njit(nogil=True, cache=True, error_model="numpy")
def _unflagged(drow, qrow, x):
    """Whether column x has no flagged and no non-finite group in any integration."""
    nints, ngroups, _ = drow.shape
    for i in range(nints):
        for g in range(ngroups):
            if qrow[i, g, x] != 0 or not math.isfinite(drow[i, g, x]):
                return False
    return True


@njit(nogil=True, cache=True, error_model="numpy")
def _clean_slope(drow, i, x, ln, rn_e, gain, group_time, wtab, wsum):
    """Optimally weighted slope of integration i of column x, one full-length segment."""
    d0 = float(drow[i, 0, x])
    rng = float(drow[i, ln - 1, x]) - d0
    den = rn_e * rn_e + rng * gain
    snr = 0.0
    if den > 0.0:
        snr = max(rng * gain / math.sqrt(den), 0.0)
    pi = _power_index(snr)
    sy = 0.0
    sxy = 0.0
    for j in range(ln):
        wv = wtab[pi, ln, j] * float(drow[i, j, x])
        sy += wv
        sxy += wv * j
    sw = wsum[pi, 0]
    sx = wsum[pi, 1]
    sxx = wsum[pi, 2]
    return (sw * sxy - sx * sy) / (sw * sxx - sx * sx) / group_time


@njit(nogil=True, cache=True, error_model="numpy")
def _fit_clean_pixel(y, x, drow, gain, rn_e, dc, pix, group_time, wtab, wsum, scratch, vr_int,
                     i_slope, i_dq, i_vp, i_vr, i_err, long):
    """A pixel with no flag anywhere (that ``_fast_row`` did not take): one full-length segment
    per integration. Writes the rateints values; returns the exposure's sums (inverse
    Poisson variance, inverse read-noise variance, weighted slopes)."""
    nints, ngroups, _ = drow.shape
    inv_tg = 1.0 / group_time
    acc = 0.0
    for i in range(nints):
        for k in range(ngroups - 1):
            scratch[k] = (float(drow[i, k + 1, x]) - float(drow[i, k, x])) * inv_tg
        acc += median(scratch, ngroups - 1, long)
    mrate = acc / nints
    mpois = (mrate + dc) if mrate > 0.0 else dc
    ln = ngroups
    vp = mpois / (group_time * gain * (ln - 1.0))
    vr = 12.0 * (rn_e / group_time) ** 2 / ((ln * ln * ln - ln) * gain * gain)
    r_inv_p = 0.0
    r_inv_r = 0.0
    r_num = 0.0
    for i in range(nints):
        slope = _clean_slope(drow, i, x, ln, rn_e, gain, group_time, wtab, wsum)
        inv_r = 1.0 / vr
        inv_p = 1.0 / vp if vp > 0.0 else 0.0
        inv_e = 1.0 / (vp + vr)
        num = slope / vr
        vp_out, vr_out = _int_var_out(inv_p, inv_r)
        ve = 1.0 / inv_e
        i_slope[i, y, x] = num * vr_out
        i_dq[i, y, x] = pix
        i_vp[i, y, x] = vp_out
        i_vr[i, y, x] = vr_out
        vr_int[i] = vr_out
        i_err[i, y, x] = 0.0 if ve > LARGE_VARIANCE else math.sqrt(ve)
        r_inv_p += inv_p
        r_inv_r += inv_r
        r_num += num
    return r_inv_p, r_inv_r, r_num


@njit(nogil=True, cache=True, error_model="numpy")
def _gather(y, x, drow, qrow, zframe, has_zf, suppress1g, g_lo, g_hi, pix, dq, d, is0, iszf,
            cnt_sat, cnt_dnu_sat, idq):
    """Column x's groups into ``dq``/``d`` (outside the group window DO_NOT_USE, SATURATED
    values NaN), one-group ramps suppressed, the zero frame used where no group is good; per
    integration its counts and DQ. Returns the JUMP_DET/PERSISTENCE bits of the rate DQ."""
    nints, ngroups, _ = drow.shape
    invalid = DO_NOT_USE | SATURATED
    bits = np.uint32(0)
    for i in range(nints):
        ngood = 0
        for g in range(ngroups):
            q = qrow[i, g, x]
            if g < g_lo or g > g_hi:
                q |= DO_NOT_USE
            dq[i, g] = q
            if (q & NOT_PERS) == 0:
                ngood += 1
        if suppress1g and ngood == 1:
            for g in range(ngroups):
                dq[i, g] |= DO_NOT_USE
        cnt_good = 0
        cnt_sat[i] = 0
        cnt_dnu_sat[i] = 0
        jump = False
        pers = False
        for g in range(ngroups):
            q = dq[i, g]
            if q & JUMP_DET:
                jump = True
            if q & PERSISTENCE:
                pers = True
            if q == 0:
                cnt_good += 1
            if q & invalid:
                cnt_dnu_sat[i] += 1
            if q & SATURATED:
                d[i, g] = math.nan
                cnt_sat[i] += 1
            else:
                d[i, g] = drow[i, g, x]
        is0[i] = False
        iszf[i] = False
        if not suppress1g:
            if cnt_good == 1 and dq[i, 0] == 0:
                is0[i] = True
            elif cnt_good == 0 and has_zf:
                z = float(zframe[i, y, x])
                if z != 0.0:
                    d[i, 0] = z
                    dq[i, 0] = 0
                    cnt_dnu_sat[i] -= 1
                    if cnt_sat[i] == ngroups:
                        cnt_sat[i] -= 1
                    iszf[i] = True
        idq[i] = pix
        if jump:
            idq[i] |= np.uint32(JUMP_DET)
            bits |= np.uint32(JUMP_DET)
        if pers:
            idq[i] |= np.uint32(PERSISTENCE)
            bits |= np.uint32(PERSISTENCE)
    return bits


@njit(nogil=True, cache=True, error_model="numpy")
def _median_rate(dq, d, is0, iszf, frame_time, group_time, one_group_time, scratch, long):
    """The pixel's rate for VAR_POISSON: the mean over integrations of the median first
    difference of usable groups (a one-group or zero-frame ramp: its single read's rate)."""
    nints, ngroups = d.shape
    if ngroups == 1:
        acc = 0.0
        for i in range(nints):
            acc += d[i, 0] / one_group_time
        return acc / nints
    acc = 0.0
    for i in range(nints):
        if is0[i]:
            mr = d[i, 0] / one_group_time
        elif iszf[i]:
            mr = d[i, 0] / frame_time
        else:
            loc0 = math.nan if dq[i, 0] & DO_NOT_USE else d[i, 0] / group_time
            all_nan = True
            for k in range(ngroups - 1):
                if dq[i, k + 1] & JUMP_DET:
                    v = math.nan
                else:
                    a = math.nan if dq[i, k] & DO_NOT_USE else d[i, k] / group_time
                    b = (math.nan if dq[i, k + 1] & DO_NOT_USE
                         else d[i, k + 1] / group_time)
                    v = b - a
                scratch[k] = v
                if not math.isnan(v):
                    all_nan = False
            if all_nan and not math.isnan(loc0):
                scratch[0] = loc0
            mr = nan_last_median(scratch, ngroups - 1, long)
        if math.isnan(mr):
            mr = 0.0
        acc += mr
    return acc / nints


@njit(nogil=True, cache=True, error_model="numpy")
def _segment_fit(di, s0, ln, timing, group_time, mpois, rn_e, gain, wtab):
    """(slope, VAR_POISSON, VAR_RNOISE) of the segment di[s0:s0+ln]: one group, its read over
    ``timing``; two, their difference; more, the optimally weighted OLS slope (weights chosen
    by the segment's SNR; NaN values count as 0)."""
    if ln == 1:
        slope = di[s0] / timing
        vp = mpois / (timing * gain)
    elif ln == 2:
        slope = (di[s0 + 1] - di[s0]) / group_time
        vp = mpois / (group_time * gain)
    else:
        rng = di[s0 + ln - 1] - di[s0]
        den = rn_e * rn_e + rng * gain
        snr = 0.0
        if den > 0.0 and gain != 0.0:
            snr = max(rng * gain / math.sqrt(den), 0.0)
        pi = _power_index(snr)
        sw = 0.0
        sx = 0.0
        sxx = 0.0
        sy = 0.0
        sxy = 0.0
        for j in range(ln):
            w = wtab[pi, ln, j]
            xv = float(j + s0)
            v = di[s0 + j]
            if math.isnan(v):
                v = 0.0
            sw += w
            sx += xv * w
            sxx += xv * xv * w
            sy += v * w
            sxy += v * xv * w
        slope = (sw * sxy - sx * sy) / (sw * sxx - sx * sx) / group_time
        vp = mpois / (group_time * gain * (ln - 1.0))
    return slope, vp, _rnoise_var(ln, timing, group_time, rn_e, gain)


@njit(nogil=True, cache=True, error_model="numpy")
def _fit_integrations(y, x, dq, d, is0, iszf, cnt_sat, cnt_dnu_sat, idq, suppress1g,
                      frame_time, group_time, one_group_time, mpois, rn_e, gain, wtab, seg_s,
                      seg_e, vr_int, i_slope, i_dq, i_vp, i_vr, i_err):
    """Every integration of a gathered pixel: its DQ (saturated at the first group, or no
    usable group: DO_NOT_USE), its segments fitted and combined by inverse variance, slope and
    variances written to the rateints; returns the exposure's sums and counts (inv_p, inv_r,
    num, DO_NOT_USE ints, SATURATED ints, any saturation)."""
    nints, ngroups = d.shape
    invalid = DO_NOT_USE | SATURATED
    r_inv_p = 0.0
    r_inv_r = 0.0
    r_num = 0.0
    dnu_cnt = 0
    sat_cnt = 0
    set_sat = False
    for i in range(nints):
        s_out = 0.0
        vp_out = 0.0
        vr_out = 0.0
        err_out = 0.0
        q_out = idq[i]
        if dq[i, 0] & SATURATED:
            q_out |= np.uint32(DO_NOT_USE | SATURATED)
        elif cnt_dnu_sat[i] == ngroups:
            q_out |= np.uint32(DO_NOT_USE)
            if cnt_sat[i] == ngroups:
                q_out |= np.uint32(SATURATED)
        else:
            nseg = segments(dq[i], ngroups, seg_s, seg_e)
            inv_r = 0.0
            inv_p = 0.0
            inv_e = 0.0
            num = 0.0
            for k in range(nseg):  # segments combined by inverse variance
                s0 = seg_s[k]
                ln = seg_e[k] - s0
                timing = _seg_timing(ln, is0[i], iszf[i], suppress1g, frame_time, group_time,
                                     one_group_time)
                slope, vp, vr = _segment_fit(d[i], s0, ln, timing, group_time, mpois, rn_e,
                                             gain, wtab)
                inv_r += 1.0 / vr
                if vp > 0.0:
                    inv_p += 1.0 / vp
                inv_e += 1.0 / (vp + vr)
                num += slope / vr
            if nseg > 0:
                vp_out, vr_out = _int_var_out(inv_p, inv_r)
                if q_out & invalid:
                    s_out = math.nan
                    vp_out = 0.0
                    vr_out = 0.0
                else:
                    s_out = num * vr_out
                    ve = 1.0 / inv_e
                    err_out = 0.0 if ve > LARGE_VARIANCE else math.sqrt(ve)
                if inv_p > 0.0:
                    r_inv_p += inv_p
                r_inv_r += inv_r
                r_num += num
        if q_out & DO_NOT_USE:
            dnu_cnt += 1
            s_out = math.nan
        if q_out & SATURATED:
            sat_cnt += 1
            s_out = math.nan
        if cnt_sat[i] > 0:
            q_out |= np.uint32(SATURATED)
            set_sat = True
        i_slope[i, y, x] = s_out
        i_dq[i, y, x] = q_out
        i_vp[i, y, x] = vp_out
        i_vr[i, y, x] = vr_out
        vr_int[i] = vr_out
        i_err[i, y, x] = err_out
    return r_inv_p, r_inv_r, r_num, dnu_cnt, sat_cnt, set_sat


@njit(nogil=True, cache=True, error_model="numpy")
def _exposure(rate_dq, r_inv_p, r_inv_r, r_num, dnu_cnt, sat_cnt, set_sat, nints):
    """The rate of a pixel from its integrations: (slope, DQ, VAR_POISSON, VAR_RNOISE, ERR)."""
    invalid = DO_NOT_USE | SATURATED
    if dnu_cnt == nints:
        rate_dq |= np.uint32(DO_NOT_USE)
    if sat_cnt == nints:
        rate_dq |= np.uint32(SATURATED)
    vp, vr = _exposure_var(r_inv_p, r_inv_r)
    err = math.sqrt(vp + vr)
    slope = r_num
    if rate_dq & invalid:
        slope = math.nan
        vp = 0.0
        vr = 0.0
        err = 0.0
    if set_sat:
        rate_dq |= np.uint32(SATURATED)
    if not math.isnan(slope):
        slope = slope * vr
    return slope, rate_dq, vp, vr, err


@njit(nogil=True, cache=True, error_model="numpy")
def _fit_rows(y0, y1, data, gdq, pdq, gain2d, rn2d, dark2d, zframe, has_zf, suppress1g,
              frame_time, group_time, nframes, g_lo, g_hi, wtab,
              r_slope, r_dq, r_vp, r_vr, r_err, i_slope, i_dq, i_vp, i_vr, i_err, long):
    """Every pixel of rows y0..y1-1, row by row: unflagged pixels all at once (``_fast_row``),
    the others one by one (gather, median rate, segments per integration, exposure,
    CHARGELOSS pass). Scratch buffers are allocated once and fully rewritten for each pixel.
    The kernels it calls are one level deep (two at most): numba optimises a kernel's callees
    again at every level above them, so a shallow tree compiles faster.

    ``long`` (None or True, see _kernels_common): True for ramps of more than SHORT + 1 groups
    (long medians; unflagged pixels one by one, as ``_fast_row`` takes at most that). The
    CHARGELOSS pass has no such switch: operations builds run charge_migration, so most runs
    need it, and a second variant of this kernel would cost more than it saves."""
    nints, ngroups = data.shape[0], data.shape[1]
    nx = data.shape[3]
    one_group_time = (nframes + 1.0) * frame_time / 2.0
    wsum = _weight_sums(wtab, ngroups)
    invalid = DO_NOT_USE | SATURATED
    dq = np.empty((nints, ngroups), np.uint8)
    d = np.empty((nints, ngroups), np.float64)
    scratch = np.empty(max(ngroups, 1), np.float64)
    seg_s = np.empty(ngroups, np.int64)
    seg_e = np.empty(ngroups, np.int64)
    cq = np.empty(ngroups, np.uint8)
    is0 = np.empty(nints, np.bool_)  # these per-integration values are set for each pixel
    iszf = np.empty(nints, np.bool_)  # (by _gather, _fit_integrations or _fit_clean_pixel)
    cnt_sat = np.empty(nints, np.int64)  # before they are read
    cnt_dnu_sat = np.empty(nints, np.int64)
    idq = np.empty(nints, np.uint32)
    vr_int = np.empty(nints, np.float64)
    drow = np.empty((nints, ngroups, nx), np.float32)
    qrow = np.empty((nints, ngroups, nx), np.uint8)
    window = g_lo == 0 and g_hi == ngroups - 1
    use_fast_row = ngroups >= 3 and window and ngroups - 1 <= SHORT
    fastm = np.zeros(nx, np.bool_)  # stays False unless _fast_mask runs (on every row)
    for y in range(y0, y1):
        copy_row(data, gdq, y, drow, qrow)
        if use_fast_row:
            _fast_mask(y, drow, qrow, gain2d, pdq, fastm)
            _fast_row(y, drow, fastm, gain2d, rn2d, pdq, dark2d, nframes, group_time, wtab, wsum,
                      r_slope, r_dq, r_vp, r_vr, r_err, i_slope, i_dq, i_vp, i_vr, i_err)
        for x in range(nx):
            if fastm[x]:
                continue
            gain = float(gain2d[y, x])
            pix = np.uint32(pdq[y, x])
            if not (gain > 0.0):
                pix |= np.uint32(DO_NOT_USE | NO_GAIN_VALUE)
            rn_e = float(np.float32(rn2d[y, x]) * np.float32(gain2d[y, x])
                         / np.float32(math.sqrt(2.0 * nframes)))
            dc = float(dark2d[y, x])
            rate_dq = pix
            fast = False
            r_inv_p = 0.0
            r_inv_r = 0.0
            r_num = 0.0
            dnu_cnt = np.int64(0)
            sat_cnt = np.int64(0)
            set_sat = False
            if long is not None:  # unflagged pixel of a ramp too long for _fast_row
                fast = ngroups >= 3 and window and gain > 0.0 and (pix & invalid) == 0 \
                    and _unflagged(drow, qrow, x)
                if fast:
                    r_inv_p, r_inv_r, r_num = _fit_clean_pixel(
                        y, x, drow, gain, rn_e, dc, pix, group_time, wtab, wsum, scratch,
                        vr_int, i_slope, i_dq, i_vp, i_vr, i_err, long)
            if not fast:
                rate_dq |= _gather(y, x, drow, qrow, zframe, has_zf, suppress1g, g_lo, g_hi, pix,
                                   dq, d, is0, iszf, cnt_sat, cnt_dnu_sat, idq)
                mrate = _median_rate(dq, d, is0, iszf, frame_time, group_time, one_group_time,
                                     scratch, long)
                mpois = (mrate + dc) if mrate > 0.0 else dc
                r_inv_p, r_inv_r, r_num, dnu_cnt, sat_cnt, set_sat = _fit_integrations(
                    y, x, dq, d, is0, iszf, cnt_sat, cnt_dnu_sat, idq, suppress1g, frame_time,
                    group_time, one_group_time, mpois, rn_e, gain, wtab, seg_s, seg_e, vr_int,
                    i_slope, i_dq, i_vp, i_vr, i_err)
            slope, rate_dq, vp, vr, err = _exposure(rate_dq, r_inv_p, r_inv_r, r_num, dnu_cnt,
                                                    sat_cnt, set_sat, nints)
            r_slope[y, x] = slope
            r_dq[y, x] = rate_dq
            r_vp[y, x] = vp
            r_vr[y, x] = vr
            if not fast:
                _chargeloss_rnoise(y, x, qrow, g_lo, g_hi, suppress1g, is0, iszf, rn_e, gain,
                                   group_time, frame_time, one_group_time, vr_int, cq, seg_s,
                                   seg_e, i_vr, r_vr)
            r_err[y, x] = err


def fit_ramps_kernel(data, gdq, pdq, gain2d, rn2d, dark2d, zframe, has_zf, suppress1g,
                     frame_time, group_time, nframes, g_lo, g_hi, wtab,
                     r_slope, r_dq, r_vp, r_vr, r_err, i_slope, i_dq, i_vp, i_vr, i_err):
    """Fit all pixels; outputs are written into the preallocated rate/rateints arrays. Rows are
    spread over ``current_threads()`` threads (``_kernels_threads.for_rows``)."""
    long = True if data.shape[1] - 1 > SHORT else None
    for_rows(_fit_rows, data.shape[2], data, gdq, pdq, gain2d, rn2d, dark2d, zframe, has_zf,
             suppress1g, frame_time, group_time, nframes, g_lo, g_hi, wtab,
             r_slope, r_dq, r_vp, r_vr, r_err, i_slope, i_dq, i_vp, i_vr, i_err, long)
