"""numba kernel for ordinary-least-squares ramp fitting with optimal (Fixsen) weighting.

One call fits every pixel of a ramp, parallel over image rows. The definitions follow stcal's
OLS_C (its C extension documents them): segments are runs of good groups that may start with a
JUMP_DET group; segment slopes are optimally weighted OLS fits whose weight exponent depends on
the segment's signal-to-noise ratio; segments and integrations are combined by inverse read-noise
variance; VAR_POISSON uses the pixel's median first-difference rate; one-group ramps, the
zero frame and suppress_one_group behave as in stcal. Arithmetic is float64 per pixel, outputs
float32. CHARGELOSS groups get stcal's read-noise recomputation (``_chargeloss_rnoise``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from transforms.dq import (CHARGELOSS, DO_NOT_USE, JUMP_DET, NO_GAIN_VALUE, PERSISTENCE,
                           SATURATED)

LARGE_VARIANCE = 1.0e6
_NOT_PERS = np.uint8(0xFF ^ PERSISTENCE)


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


@njit(nogil=True, cache=True)
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


@njit(nogil=True, cache=True)
def _median_finite(vals, n):
    """Median of n finite values by rank counting: branch-free, fast for short ramps."""
    if n > 24:
        return np.median(vals[:n])
    h = n >> 1
    lo = 0.0
    hi = 0.0
    for k in range(n):
        v = vals[k]
        r = 0
        for j in range(n):
            r += (vals[j] < v) | ((vals[j] == v) & (j < k))
        if r == h:
            hi = v
        if r == h - 1:
            lo = v
    if n & 1:
        return hi
    return 0.5 * (lo + hi)


@njit(nogil=True, cache=True)
def _nan_last_median(vals, n):
    """Median of the finite entries among vals[:n] (reordered in place), stcal-style: the mean of
    the two middle values for an even count, NaN when there is none."""
    m = 0
    for k in range(n):  # finite values to the front
        v = vals[k]
        if not math.isnan(v):
            vals[m] = v
            m += 1
    if m == 0:
        return math.nan
    if m > 24:
        return np.median(vals[:m])  # quickselect: long ramps stay O(n)
    for k in range(1, m):  # insertion sort: fastest for short ramps
        v = vals[k]
        j = k
        while j > 0 and vals[j - 1] > v:
            vals[j] = vals[j - 1]
            j -= 1
        vals[j] = v
    if m == 1:
        return vals[0]
    h = m >> 1
    if m & 1:
        return vals[h]
    return 0.5 * (vals[h] + vals[h - 1])


@njit(nogil=True, cache=True)
def _chargeloss_rnoise(y, x, qrow, nints, ngroups, g_lo, g_hi, suppress1g, is0, iszf, rn_e, gain,
                       group_time, frame_time, one_group_time, vr_int, seg_s, seg_e, i_vr, r_vr):
    """stcal's CHARGELOSS pass: VAR_RNOISE recomputed from the segments the ramp would have
    without its CHARGELOSS (and their DO_NOT_USE) flags; slopes and ERR are left as they are."""
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
        nseg = 0
        in_seg = False
        start = 0
        maxlen = 0
        prev = np.uint8(0)
        for g in range(ngroups + 1):
            if g < ngroups:
                o = qrow[i, g, x]
                if g < g_lo or g > g_hi:
                    o |= DO_NOT_USE
                if o & CHARGELOSS:
                    o ^= toggle
                q = o & _NOT_PERS
            else:
                q = np.uint8(1)  # sentinel: closes the last segment
            if q == 0 and g < ngroups:
                if not in_seg:
                    start = g
                    if g > 0 and prev == JUMP_DET:
                        start = g - 1
                    in_seg = True
            elif in_seg:
                seg_s[nseg] = start
                seg_e[nseg] = g
                maxlen = max(maxlen, g - start)
                nseg += 1
                in_seg = False
            prev = q
        if nseg >= 2:
            if maxlen < 2:
                nseg = 1
            else:
                k2 = 0
                for k in range(nseg):
                    if seg_e[k] - seg_s[k] > 1:
                        seg_s[k2] = seg_s[k]
                        seg_e[k2] = seg_e[k]
                        k2 += 1
                nseg = k2
        inv = 0.0
        for k in range(nseg):
            ln = seg_e[k] - seg_s[k]
            if ln == 1:
                timing = group_time
                if not suppress1g:
                    if is0[i]:
                        timing = one_group_time
                    elif iszf[i]:
                        timing = frame_time
                sv = 12.0 * (rn_e / timing) ** 2 / (6.0 * gain * gain)
            elif ln == 2:
                sv = 12.0 * (rn_e / group_time) ** 2 / (6.0 * gain * gain)
            elif gain > 0.0:
                sv = 12.0 * (rn_e / group_time) ** 2 / ((ln * ln * ln - ln) * gain * gain)
            else:
                sv = 0.0
            if sv > 0.0:
                inv += 1.0 / sv
        v = 1.0 / inv if inv > 0.0 else math.inf
        i_vr[i, y, x] = 0.0 if v >= LARGE_VARIANCE else v
        evar += inv
    if evar > 0.0:
        r_vr[y, x] = 1.0 / evar
    if r_vr[y, x] >= LARGE_VARIANCE:
        r_vr[y, x] = 0.0


@njit(nogil=True, cache=True)
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
    gain = np.empty(nx)
    rn_e = np.empty(nx)
    mp = np.zeros(nx)
    s32 = np.float32(math.sqrt(2.0 * nframes))
    for x in range(nx):
        gain[x] = float(gain2d[y, x])
        rn_e[x] = float(np.float32(rn2d[y, x]) * np.float32(gain2d[y, x]) / s32)
    dif = np.empty((nd, nx))
    rank = np.empty(nx, np.int64)
    lo = np.empty(nx)
    hi = np.empty(nx)
    for i in range(nints):
        for k in range(nd):
            for x in range(nx):
                dif[k, x] = (float(drow[i, k + 1, x]) - float(drow[i, k, x])) * inv_tg
        for k in range(nd):
            rank[:] = 0
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
    vp = np.empty(nx)
    vr = np.empty(nx)
    for x in range(nx):
        mrate = mp[x] / nints
        dc = float(dark2d[y, x])
        mpois = (mrate + dc) if mrate > 0.0 else dc
        vp[x] = mpois / (group_time * gain[x] * (ln - 1.0))
        vr[x] = 12.0 * (rn_e[x] / group_time) ** 2 / ((ln * ln * ln - ln) * gain[x] * gain[x])
    sy = np.empty(nx)
    sxy = np.empty(nx)
    pidx = np.empty(nx, np.int64)
    r_ip = np.zeros(nx)
    r_ir = np.zeros(nx)
    r_num = np.zeros(nx)
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
            vp_out = 1.0 / inv_p if inv_p > 0.0 else 0.0
            if vp_out >= LARGE_VARIANCE:
                vp_out = 0.0
            vr_out = 1.0 / inv_r
            if vr_out >= LARGE_VARIANCE:
                vr_out = 0.0
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
        v_p = r_ip[x]
        if v_p > 0.0:
            v_p = 1.0 / v_p
        if v_p >= LARGE_VARIANCE or v_p < 0.0:
            v_p = 0.0
        v_r = r_ir[x]
        if v_r > 0.0:
            v_r = 1.0 / v_r
        if v_r >= LARGE_VARIANCE:
            v_r = 0.0
        err = math.sqrt(v_p + v_r)
        slope = r_num[x]
        if not math.isnan(slope):
            slope = slope * v_r
        r_slope[y, x] = slope
        r_dq[y, x] = pdq[y, x]
        r_vp[y, x] = v_p
        r_vr[y, x] = v_r
        r_err[y, x] = err


@njit(nogil=True, cache=True)
def _fit_row(y, data, gdq, pdq, gain2d, rn2d, dark2d, zframe, has_zf, suppress1g,
             frame_time, group_time, nframes, g_lo, g_hi, wtab,
             r_slope, r_dq, r_vp, r_vr, r_err, i_slope, i_dq, i_vp, i_vr, i_err):
    nints, ngroups = data.shape[0], data.shape[1]
    nx = data.shape[3]
    one_group_time = (nframes + 1.0) * frame_time / 2.0
    inv_tg = 1.0 / group_time
    wsum = np.zeros((wtab.shape[0], 3), np.float64)
    if ngroups >= 3:
        for pi in range(wtab.shape[0]):
            for j in range(ngroups):
                w = wtab[pi, ngroups, j]
                wsum[pi, 0] += w
                wsum[pi, 1] += j * w
                wsum[pi, 2] += j * j * w
    invalid = DO_NOT_USE | SATURATED
    dq = np.empty((nints, ngroups), np.uint8)
    d = np.empty((nints, ngroups), np.float64)
    scratch = np.empty(max(ngroups, 1), np.float64)
    seg_s = np.empty(ngroups, np.int64)
    seg_e = np.empty(ngroups, np.int64)
    is0 = np.zeros(nints, np.bool_)
    iszf = np.zeros(nints, np.bool_)
    cnt_sat = np.zeros(nints, np.int64)
    cnt_dnu_sat = np.zeros(nints, np.int64)
    idq = np.zeros(nints, np.uint32)
    vr_int = np.zeros(nints, np.float64)
    # one contiguous copy of this row's groups: the 4-D cube is read once, in order
    drow = np.empty((nints, ngroups, nx), np.float32)
    qrow = np.empty((nints, ngroups, nx), np.uint8)
    for i in range(nints):
        for g in range(ngroups):
            drow[i, g, :] = data[i, g, y, :]
            qrow[i, g, :] = gdq[i, g, y, :]
    fastm = np.zeros(nx, np.bool_)
    if ngroups >= 3 and g_lo == 0 and g_hi == ngroups - 1 and ngroups - 1 <= 24:
        for x in range(nx):
            fastm[x] = gain2d[y, x] > 0.0 and (pdq[y, x] & invalid) == 0
        for i in range(nints):
            for g in range(ngroups):
                for x in range(nx):
                    if qrow[i, g, x] != 0 or not math.isfinite(drow[i, g, x]):
                        fastm[x] = False
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
        fast = ngroups >= 3 and g_lo == 0 and g_hi == ngroups - 1 and gain > 0.0 \
            and (pix & invalid) == 0
        if fast:
            for i in range(nints):
                for g in range(ngroups):
                    if qrow[i, g, x] != 0 or not math.isfinite(drow[i, g, x]):
                        fast = False
        if fast:
            # no flags anywhere: one full-length segment per integration
            rate_dq = pix
            r_inv_p = 0.0
            r_inv_r = 0.0
            r_num = 0.0
            dnu_cnt = 0
            sat_cnt = 0
            set_sat = False
            acc = 0.0
            for i in range(nints):
                for k in range(ngroups - 1):
                    scratch[k] = (float(drow[i, k + 1, x]) - float(drow[i, k, x])) * inv_tg
                acc += _median_finite(scratch, ngroups - 1)
            mrate = acc / nints
            mpois = (mrate + dc) if mrate > 0.0 else dc
            ln = ngroups
            vp = mpois / (group_time * gain * (ln - 1.0))
            vr = 12.0 * (rn_e / group_time) ** 2 / ((ln * ln * ln - ln) * gain * gain)
            for i in range(nints):
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
                slope = (sw * sxy - sx * sy) / (sw * sxx - sx * sx) / group_time
                inv_r = 1.0 / vr
                inv_p = 1.0 / vp if vp > 0.0 else 0.0
                inv_e = 1.0 / (vp + vr)
                num = slope / vr
                vp_out = 1.0 / inv_p if inv_p > 0.0 else 0.0
                if vp_out >= LARGE_VARIANCE:
                    vp_out = 0.0
                vr_out = 1.0 / inv_r
                if vr_out >= LARGE_VARIANCE:
                    vr_out = 0.0
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
        else:
            # ---- gather, suppress one-group ramps, zero frame ----
            for i in range(nints):
                ngood = 0
                for g in range(ngroups):
                    q = qrow[i, g, x]
                    if g < g_lo or g > g_hi:
                        q |= DO_NOT_USE
                    dq[i, g] = q
                    if (q & _NOT_PERS) == 0:
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
                    rate_dq |= np.uint32(JUMP_DET)
                if pers:
                    idq[i] |= np.uint32(PERSISTENCE)
                    rate_dq |= np.uint32(PERSISTENCE)
            # ---- median rate ----
            if ngroups == 1:
                acc = 0.0
                for i in range(nints):
                    acc += d[i, 0] / one_group_time
                mrate = acc / nints
            else:
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
                        mr = _nan_last_median(scratch, ngroups - 1)
                    if math.isnan(mr):
                        mr = 0.0
                    acc += mr
                mrate = acc / nints
            mpois = (mrate + dc) if mrate > 0.0 else dc
            # ---- per integration ----
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
                    # segments: runs of GOOD groups, a JUMP-only group opens the next one
                    nseg = 0
                    in_seg = False
                    start = 0
                    maxlen = 0
                    for g in range(ngroups):
                        q = dq[i, g] & _NOT_PERS
                        if q == 0:
                            if not in_seg:
                                start = g
                                if g > 0 and (dq[i, g - 1] & _NOT_PERS) == JUMP_DET:
                                    start = g - 1
                                in_seg = True
                        elif in_seg:
                            seg_s[nseg] = start
                            seg_e[nseg] = g
                            maxlen = max(maxlen, g - start)
                            nseg += 1
                            in_seg = False
                    if in_seg:
                        seg_s[nseg] = start
                        seg_e[nseg] = ngroups
                        maxlen = max(maxlen, ngroups - start)
                        nseg += 1
                    if nseg >= 2:
                        if maxlen < 2:
                            nseg = 1
                        else:
                            k2 = 0
                            for k in range(nseg):
                                if seg_e[k] - seg_s[k] > 1:
                                    seg_s[k2] = seg_s[k]
                                    seg_e[k2] = seg_e[k]
                                    k2 += 1
                            nseg = k2
                    inv_r = 0.0
                    inv_p = 0.0
                    inv_e = 0.0
                    num = 0.0
                    for k in range(nseg):
                        s0 = seg_s[k]
                        ln = seg_e[k] - s0
                        if ln == 1:
                            timing = group_time
                            if not suppress1g:
                                if is0[i]:
                                    timing = one_group_time
                                elif iszf[i]:
                                    timing = frame_time
                            slope = d[i, s0] / timing
                            vp = mpois / (timing * gain)
                            vr = 12.0 * (rn_e / timing) ** 2 / (6.0 * gain * gain)
                        elif ln == 2:
                            slope = (d[i, s0 + 1] - d[i, s0]) / group_time
                            vp = mpois / (group_time * gain)
                            vr = 12.0 * (rn_e / group_time) ** 2 / (6.0 * gain * gain)
                        else:
                            rng = d[i, s0 + ln - 1] - d[i, s0]
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
                                v = d[i, s0 + j]
                                if math.isnan(v):
                                    v = 0.0
                                sw += w
                                sx += xv * w
                                sxx += xv * xv * w
                                sy += v * w
                                sxy += v * xv * w
                            slope = (sw * sxy - sx * sy) / (sw * sxx - sx * sx) / group_time
                            vp = mpois / (group_time * gain * (ln - 1.0))
                            if gain > 0.0:
                                vr = (12.0 * (rn_e / group_time) ** 2
                                      / ((ln * ln * ln - ln) * gain * gain))
                            else:
                                vr = 0.0
                        inv_r += 1.0 / vr
                        if vp > 0.0:
                            inv_p += 1.0 / vp
                        inv_e += 1.0 / (vp + vr)
                        num += slope / vr
                    if nseg > 0:
                        if inv_p > 0.0:
                            vp_out = 1.0 / inv_p
                        if vp_out >= LARGE_VARIANCE:
                            vp_out = 0.0
                        vr_out = 1.0 / inv_r
                        if vr_out >= LARGE_VARIANCE:
                            vr_out = 0.0
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
        # ---- exposure ----
        if dnu_cnt == nints:
            rate_dq |= np.uint32(DO_NOT_USE)
        if sat_cnt == nints:
            rate_dq |= np.uint32(SATURATED)
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
        r_slope[y, x] = slope
        r_dq[y, x] = rate_dq
        r_vp[y, x] = vp
        r_vr[y, x] = vr
        if not fast:
            _chargeloss_rnoise(y, x, qrow, nints, ngroups, g_lo, g_hi, suppress1g, is0, iszf,
                               rn_e, gain, group_time, frame_time, one_group_time, vr_int,
                               seg_s, seg_e, i_vr, r_vr)
        r_err[y, x] = err


@njit(nogil=True, cache=True, parallel=True)
def fit_ramps_kernel(data, gdq, pdq, gain2d, rn2d, dark2d, zframe, has_zf, suppress1g,
                     frame_time, group_time, nframes, g_lo, g_hi, wtab,
                     r_slope, r_dq, r_vp, r_vr, r_err, i_slope, i_dq, i_vp, i_vr, i_err):
    """Fit all pixels; outputs are written into the preallocated rate/rateints arrays."""
    ny = data.shape[2]
    for y in prange(ny):
        _fit_row(y, data, gdq, pdq, gain2d, rn2d, dark2d, zframe, has_zf, suppress1g,
                 frame_time, group_time, nframes, g_lo, g_hi, wtab,
                 r_slope, r_dq, r_vp, r_vr, r_err, i_slope, i_dq, i_vp, i_vr, i_err)
