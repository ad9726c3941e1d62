"""numba kernels of jump 1.1: a generalised-least-squares step test on each pixel's ramp.

Under the null hypothesis a pixel's first differences ``d`` (pooled over integrations) are
``r * 1 + e`` with covariance, per integration, ``C = a T + b P``:

- ``T`` the read noise of the groups seen by their differences (2 on the diagonal, -1 next to
  it: adjacent differences share a group), ``a = rn_cds**2 / (2 nframes) + excess`` DN**2 the
  variance of one group's read (``excess``: correlated read noise that does not average down
  over the frames of a group, measured on the exposure by ``excess_kernel``);
- ``P`` the Poisson covariance of the differences for one electron per frame time, exact for
  frame-averaged groups (``nframes`` frames, ``groupgap`` dropped; adjacent differences share
  the charge of the frames inside a group), ``b = max(mean d, 0) * tframe / (gain * tgroup)``
  (the mean of the usable differences: a median is noisier and, being correlated with the
  difference under test, doubles the false alarms at 4 sigma in the read-noise limit).

A jump ``A`` in difference ``k`` changes the generalised-least-squares residuals by ``A W e_k``
(``W = C^-1 - C^-1 1 1^T C^-1 / 1^T C^-1 1``: the unknown rate removed), so the most powerful
test statistic for a jump at ``k`` is ``z_k = (W d)_k / sqrt(W_kk)``, a unit normal under the
null whatever the read/Poisson mix. In the read-noise limit it uses every group around the
jump and gains up to ~1.3x in significance over a single difference (10 groups); in the Poisson
limit it is the single-difference test.

Pass 1 (``detect_kernel``, parallel over rows) first screens every pixel whose differences are
all usable, vectorised over the row: its covariance is ``a (T + rho P)`` with ``rho = b/a``,
``(T + rho P)^-1 = V (L + rho)^-1 V^T`` with the generalised eigenvectors ``V`` of (T, P)
computed once per exposure (``exposure_basis``), and the residual chi-square ``d'Wd`` costs
~n**2 flops; since every test statistic is at most ``sqrt(d'Wd)``, a pixel under the threshold
is settled (~96% of a clean exposure). The others, and pixels with an unusable difference
(SATURATED, DO_NOT_USE, NaN), take the exact path: the covariance of their usable differences
(the sub-matrix) is Cholesky-factorised per integration and every test evaluated. The largest ``z`` is flagged while it
exceeds the threshold for the number of usable differences, then removed and the test repeated
(as stcal iterates). Pass 2 (neighbours, after-jump flags, DO_NOT_USE/SATURATED clean-up) is
jump 1.0's ``post_kernel``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from transforms.dq import DO_NOT_USE, JUMP_DET, SATURATED

_BAD = DO_NOT_USE | SATURATED


def poisson_unit(ngroups: int, nframes: int, groupgap: int) -> np.ndarray:
    """Covariance of the ``ngroups - 1`` first differences of one integration for a Poisson
    signal of one electron per frame time (frames averaged into groups as read)."""
    per = nframes + groupgap
    frames = [np.arange(g * per, g * per + nframes, dtype=np.float64) for g in range(ngroups)]
    cg = np.empty((ngroups, ngroups))
    for k in range(ngroups):
        for m in range(ngroups):
            cg[k, m] = np.minimum(frames[k][:, None], frames[m][None, :]).mean()
    nd = ngroups - 1
    dmat = np.zeros((nd, ngroups))
    for k in range(nd):
        dmat[k, k] = -1.0
        dmat[k, k + 1] = 1.0
    return dmat @ cg @ dmat.T


def read_unit(nd: int) -> np.ndarray:
    """Covariance of ``nd`` first differences for unit read-noise variance per group."""
    t = 2.0 * np.eye(nd)
    for k in range(nd - 1):
        t[k, k + 1] = t[k + 1, k] = -1.0
    return t


def exposure_basis(ngroups: int, nframes: int, groupgap: int):
    """(T, P, eigenvalues, V): ``T V = P V diag(eigenvalues)``, ``V^T P V = I``."""
    nd = max(ngroups - 1, 1)
    t = read_unit(nd)
    p = poisson_unit(max(ngroups, 2), nframes, groupgap)[:nd, :nd]
    lo = np.linalg.cholesky(p)
    li = np.linalg.inv(lo)
    lam, w = np.linalg.eigh(li @ t @ li.T)
    v = li.T @ w
    return (np.ascontiguousarray(t), np.ascontiguousarray(p), np.ascontiguousarray(lam),
            np.ascontiguousarray(v))


TILE = 64  # pixels: the excess read noise is measured per TILE x TILE tile
_HBINS = 2000  # histogram of q = s**2 / model over [0, 10): 0.005 bins (median ~0.45)
_HMAX = 10.0
_ROW_STEP = 8  # the excess is measured on every 8th row (8 rows of a tile: ~4000 samples)


@njit(nogil=True, cache=True, parallel=True)
def excess_kernel(data, gdq, gain2d, rn2d, nframes, tframe, tgroup, tmat, pmat):
    """Per TILE x TILE tile, the extra read variance of one group (DN**2) the exposure shows
    beyond ``rn**2 / (2 nframes)``, from the second differences ``s`` of faint pixels whose
    groups are all usable (every 8th row): ``f = median(s**2 / model) / 0.4549`` (0.4549: the
    median of a chi-square with one degree of freedom; a median, so jumps barely move it),
    excess ``(f - 1) * mean model read variance`` (f floored at 0.5). Correlated read noise
    (1/f) does not average down over a group's frames and its residual after refpix varies
    over the detector: hence tiles. Tiles with fewer than 400 samples take the whole
    exposure's value. Medians from histograms (O(tiles) memory)."""
    nints, ngroups, ny, nx = data.shape
    nd = ngroups - 1
    nty = (ny + TILE - 1) // TILE
    ntx = (nx + TILE - 1) // TILE
    out = np.zeros((nty, ntx))
    if nd < 2:
        return out
    tss = tmat[1, 1] + tmat[0, 0] - 2.0 * tmat[0, 1]
    hist = np.zeros((nty, ntx, _HBINS + 1), np.int32)
    asum = np.zeros((nty, ntx))
    acnt = np.zeros((nty, ntx))
    scale = _HBINS / _HMAX
    for ty in prange(nty):
        dif = np.empty(nd)
        for y in range(ty * TILE, min(ny, ty * TILE + TILE), _ROW_STEP):
            for x in range(nx):
                tx = x // TILE
                gn = float(gain2d[y, x])
                rn = float(rn2d[y, x])
                if not (gn > 0.0) or not (rn > 0.0) or math.isinf(gn) or math.isinf(rn):
                    continue
                a = rn * rn / (2.0 * nframes)
                ok = True
                s = 0.0
                for i in range(nints):
                    for g in range(ngroups):
                        if gdq[i, g, y, x] & _BAD:
                            ok = False
                    for g in range(1, ngroups):
                        v = float(data[i, g, y, x]) - float(data[i, g - 1, y, x])
                        if not math.isfinite(v):
                            ok = False
                        s += v
                if not ok:
                    continue
                med = s / (nints * nd)
                b = med * tframe / (gn * tgroup) if med > 0.0 else 0.0
                used = False
                for i in range(nints):
                    for g in range(1, ngroups):
                        dif[g - 1] = float(data[i, g, y, x]) - float(data[i, g - 1, y, x])
                    for k in range(nd - 1):
                        pss = pmat[k + 1, k + 1] + pmat[k, k] - 2.0 * pmat[k, k + 1]
                        if b * pss > 0.5 * a * tss:
                            continue  # Poisson-dominated: says little about read noise
                        sk = dif[k + 1] - dif[k]
                        j = int(sk * sk / (a * tss + b * pss) * scale)
                        hist[ty, tx, min(j, _HBINS)] += 1
                        used = True
                if used:
                    asum[ty, tx] += a
                    acnt[ty, tx] += 1.0
    tot = np.zeros(_HBINS + 1, np.int64)
    at = 0.0
    an = 0.0
    for ty in range(nty):
        for tx in range(ntx):
            tot += hist[ty, tx]
            at += asum[ty, tx]
            an += acnt[ty, tx]
    glob = _excess_of(tot, at / an if an > 0 else 0.0, 400)
    for ty in range(nty):
        for tx in range(ntx):
            am = asum[ty, tx] / acnt[ty, tx] if acnt[ty, tx] > 0 else 0.0
            e = _excess_of(hist[ty, tx], am, 400)
            out[ty, tx] = e if not math.isnan(e) else (glob if not math.isnan(glob) else 0.0)
    return out


@njit(nogil=True, cache=True)
def _excess_of(h, amean, nmin):
    n = 0
    for c in h:
        n += c
    if n < nmin:
        return math.nan
    half = 0.5 * n
    acc = 0.0
    med = math.nan
    for j in range(h.size - 1):
        if acc + h[j] >= half and h[j] > 0:
            med = (j + (half - acc) / h[j]) * _HMAX / (h.size - 1)
            break
        acc += h[j]
    if math.isnan(med):
        return math.nan
    f = med / 0.454936423119572
    return (max(f, 0.5) - 1.0) * amean


@njit(nogil=True, cache=True)
def _pair_z(uk, uk1, vk, vk1, mkk, mk1, mkk1, s1, s2):
    """(z, GLS amplitude) of an event during the group between differences k and k+1 (same
    integration): the jump ``A`` in ``e_{k+1}`` tested with the rate and the share the group
    caught (``e_k - e_{k+1}``) as nuisances. Inner products under ``M = C^-1``: u = M d,
    v = M 1, mkk / mk1 / mkk1 = M[k,k] / M[k+1,k+1] / M[k,k+1], s1 = 1'M d, s2 = 1'M 1."""
    g12 = vk - vk1  # <1, x>, x = e_k - e_{k+1}
    g22 = mkk - 2.0 * mkk1 + mk1  # <x, x>
    det = s2 * g22 - g12 * g12
    if not (det > 0.0):
        return 0.0, 0.0
    ah1 = vk1  # <1, h>, h = e_{k+1}
    ah2 = mkk1 - mk1  # <x, h>
    ad1 = s1  # <1, d>
    ad2 = uk - uk1  # <x, d>
    # a' G^-1 b with G = [[s2, g12], [g12, g22]]
    hd = (ah1 * (g22 * ad1 - g12 * ad2) + ah2 * (s2 * ad2 - g12 * ad1)) / det
    hh = (ah1 * (g22 * ah1 - g12 * ah2) + ah2 * (s2 * ah2 - g12 * ah1)) / det
    num = uk1 - hd
    den = mk1 - hh
    if not (den > 0.0):
        return 0.0, 0.0
    return num / math.sqrt(den), num / den


@njit(nogil=True, cache=True)
def _exact(vals, at_i, at_g, n, nints, a, b, tmat, pmat, cmat, lmat, u, v, dg, od):
    """For the n usable differences (pooled, in (integration, group) order) with covariance
    a T + b P per integration (Cholesky per integration): ``u = C^-1 d``, ``v = C^-1 1``,
    ``dg = diag(C^-1)``, ``od[k] = C^-1[k, k+1]`` (0 across integrations); returns
    (ok, 1' C^-1 d, 1' C^-1 1); ok False when C is not positive definite."""
    s1 = 0.0
    s2 = 0.0
    start = 0
    for i in range(nints):
        m = 0
        while start + m < n and at_i[start + m] == i:
            m += 1
        if m == 0:
            continue
        for p in range(m):
            gp = at_g[start + p] - 1
            for q in range(p + 1):
                gq = at_g[start + q] - 1
                cmat[p, q] = a * tmat[gp, gq] + b * pmat[gp, gq]
        # Cholesky (lower) in lmat
        for p in range(m):
            for q in range(p + 1):
                acc = cmat[p, q]
                for r in range(q):
                    acc -= lmat[p, r] * lmat[q, r]
                if p == q:
                    if not (acc > 0.0):
                        return False, 0.0, 0.0
                    lmat[p, p] = math.sqrt(acc)
                else:
                    lmat[p, q] = acc / lmat[q, q]
        # inverse of L (lower) in cmat
        for p in range(m):
            cmat[p, p] = 1.0 / lmat[p, p]
            for q in range(p):
                acc = 0.0
                for r in range(q, p):
                    acc -= lmat[p, r] * cmat[r, q]
                cmat[p, q] = acc / lmat[p, p]
        # Li d and Li 1 in lmat's first two columns (L is not needed once Li is built;
        # lmat is (nd, nd) with nd >= 2: jump runs on 3 or more groups)
        for r in range(m):
            wd = 0.0
            w1 = 0.0
            for q in range(r + 1):
                wd += cmat[r, q] * vals[start + q]
                w1 += cmat[r, q]
            lmat[r, 0] = wd
            lmat[r, 1] = w1
        # C^-1 = Li' Li
        for p in range(m):
            uu = 0.0
            vv = 0.0
            dd = 0.0
            oo = 0.0
            for r in range(p, m):
                li_rp = cmat[r, p]
                uu += li_rp * lmat[r, 0]
                vv += li_rp * lmat[r, 1]
                dd += li_rp * li_rp
                if p + 1 < m and r >= p + 1:
                    oo += li_rp * cmat[r, p + 1]
            u[start + p] = uu
            v[start + p] = vv
            dg[start + p] = dd
            od[start + p] = oo if p + 1 < m else 0.0
            s1 += uu
            s2 += vv
        start += m
    return s2 > 0.0, s1, s2


@njit(nogil=True, cache=True)
def _pixel_exact(y, x, drow, qrow, gdq, gain, rn_var_a, rn_var0, tframe, tgroup, tmat, pmat,
                 thr, sided, split, nb_min, nb_max, src, bufs):
    """The iterative exact test of one pixel; returns the number of jumps flagged.

    Each round tests every usable difference (one jump there) and, when ``split`` (frames
    averaged in groups: a hit during a group's frames is shared by its two differences), every
    adjacent pair (an event during the group between them); the most significant above the
    threshold is flagged (a pair: both differences), removed, and the test repeated. JWST's
    neighbour rule takes a jump's amplitude in units of its difference's nominal noise
    (``rn_var0``: the read-noise reference's, without the measured excess; as stcal's)."""
    vals, at_i, at_g, cmat, lmat, u, v, dg, od = bufs
    nints, ngroups, _ = drow.shape
    n = 0
    for i in range(nints):
        for g in range(1, ngroups):
            if (qrow[i, g, x] & _BAD) or (qrow[i, g - 1, x] & _BAD) or (qrow[i, g, x] & JUMP_DET):
                continue
            val = float(drow[i, g, x]) - float(drow[i, g - 1, x])
            if math.isfinite(val):
                vals[n] = val
                at_i[n] = i
                at_g[n] = g
                n += 1
    count = 0
    while n >= 2:
        mean = 0.0
        for k in range(n):
            mean += vals[k]
        mean /= n
        b = mean * tframe / (gain * tgroup) if mean > 0.0 else 0.0
        ok, s1, s2 = _exact(vals, at_i, at_g, n, nints, rn_var_a, b, tmat, pmat, cmat, lmat,
                            u, v, dg, od)
        if not ok:
            break
        best = -1
        bz = -1.0
        bamp = 0.0
        pair = False
        for k in range(n):
            var = dg[k] - v[k] * v[k] / s2
            if not (var > 0.0):
                continue
            wd = u[k] - v[k] * s1 / s2
            t = wd / math.sqrt(var)
            if sided != 1:
                t = abs(t)
            if t > bz:
                bz, best, bamp, pair = t, k, wd / var, False
        if split and n >= 3:
            for k in range(n - 1):
                if at_i[k + 1] != at_i[k] or at_g[k + 1] != at_g[k] + 1:
                    continue
                zm, am = _pair_z(u[k], u[k + 1], v[k], v[k + 1], dg[k], dg[k + 1], od[k],
                                 s1, s2)
                t = zm if sided == 1 else abs(zm)
                if t > bz:
                    bz, best, bamp, pair = t, k, am, True
        if best < 0 or not (bz > thr[n]):
            break
        nflag = 2 if pair else 1
        rate_o = 0.0  # a shared hit: each difference's own share, against the others' rate
        if pair and n > 2:
            for k in range(n):
                if k != best and k != best + 1:
                    rate_o += vals[k]
            rate_o /= n - 2
        for j in range(best, best + nflag):
            i = at_i[j]
            g = at_g[j]
            gdq[i, g, y, x] |= JUMP_DET
            gj = g - 1
            sd0 = math.sqrt(rn_var0 * tmat[gj, gj] + b * pmat[gj, gj])
            # JWST's neighbour rule on the jump this difference got (a shared hit: its share)
            sj = (vals[j] - rate_o) / sd0 if pair else bamp / sd0
            if sj > nb_min and sj < nb_max:  # in difference-noise units (JWST's)
                src[i, g, y, x] = 1
        count += 1
        for k in range(best, n - nflag):  # keep the (integration, group) order
            vals[k] = vals[k + nflag]
            at_i[k] = at_i[k + nflag]
            at_g[k] = at_g[k + nflag]
        n -= nflag
    return count


@njit(nogil=True, cache=True)
def _fast_max_z(dif, x, nints, nd, a, rho, lam, vmat, c1, sided, split, inv, w1, dgm, odm, u):
    """The largest statistic of an all-usable pixel (every difference, and every adjacent
    pair when ``split``) through the exposure's eigenbasis: exactly what the exact path
    computes for it, in ~5 n**2 flops instead of a Cholesky."""
    for j in range(nd):
        inv[j] = 1.0 / (lam[j] + rho)
    for k in range(nd):
        sw = 0.0
        sd = 0.0
        so = 0.0
        for j in range(nd):
            vkj = vmat[k, j]
            sw += vkj * c1[j] * inv[j]
            sd += vkj * vkj * inv[j]
            if k + 1 < nd:
                so += vkj * vmat[k + 1, j] * inv[j]
        w1[k] = sw
        dgm[k] = sd
        odm[k] = so
    s1 = 0.0
    s2 = 0.0
    for k in range(nd):
        s2 += w1[k]
    s2 *= nints
    for i in range(nints):
        for k in range(nd):
            u[i * nd + k] = 0.0
        for j in range(nd):
            pj = 0.0
            for k in range(nd):
                pj += vmat[k, j] * dif[i * nd + k, x]
            pj *= inv[j]
            for k in range(nd):
                u[i * nd + k] += vmat[k, j] * pj
        for k in range(nd):
            s1 += u[i * nd + k]
    if not (s2 > 0.0):
        return np.inf
    best = -1.0
    sa = math.sqrt(a)
    for i in range(nints):
        for k in range(nd):
            var = dgm[k] - w1[k] * w1[k] / s2
            if var > 0.0:
                t = (u[i * nd + k] - w1[k] * s1 / s2) / math.sqrt(var) / sa
                if sided != 1:
                    t = abs(t)
                if t > best:
                    best = t
        if split:
            for k in range(nd - 1):
                zm, _ = _pair_z(u[i * nd + k], u[i * nd + k + 1], w1[k], w1[k + 1], dgm[k],
                                dgm[k + 1], odm[k], s1, s2)
                t = zm / sa if sided == 1 else abs(zm) / sa
                if t > best:
                    best = t
    return best


@njit(nogil=True, cache=True)
def _detect_row(y, data, gdq, gain2d, rn2d, nframes, excess, tframe, tgroup, tmat, pmat, lam,
                vmat, thr, sided, split, nb_min, nb_max, src, ncr):
    nints, ngroups, _, nx = data.shape
    nd = ngroups - 1
    ntot = max(nints * nd, 1)
    drow = np.empty((nints, ngroups, nx), np.float32)
    qrow = np.empty((nints, ngroups, nx), np.uint8)
    for i in range(nints):
        for g in range(ngroups):
            drow[i, g, :] = data[i, g, y, :]
            qrow[i, g, :] = gdq[i, g, y, :]
    # --- screen, vectorised over the row's pixels whose differences are all usable: every
    # test statistic (one difference or a pair, with any nuisance) is at most the square
    # root of the pixel's generalised-least-squares residual chi-square d'Wd (Cauchy-Schwarz),
    # so a pixel with d'Wd <= thr**2 cannot be flagged. Under the null d'Wd is a chi-square
    # with n-1 degrees of freedom: ~4% of pixels (10 groups, threshold 4) go on.
    fast = np.ones(nx, np.bool_)
    a = np.empty(nx)
    for x in range(nx):
        gn = float(gain2d[y, x])
        rn = float(rn2d[y, x])
        good = (gn > 0.0) and (rn >= 0.0) and not math.isinf(gn) and not math.isinf(rn)
        a[x] = rn * rn / (2.0 * nframes) + excess[y // TILE, x // TILE]
        if not good or not (a[x] > 0.0):
            fast[x] = False
            a[x] = 1.0
    dif = np.empty((ntot, nx))
    for i in range(nints):
        for g in range(ngroups):
            for x in range(nx):
                if qrow[i, g, x] & (_BAD | JUMP_DET):
                    fast[x] = False
        for g in range(1, ngroups):
            k = i * nd + g - 1
            for x in range(nx):
                v = float(drow[i, g, x]) - float(drow[i, g - 1, x])
                if not math.isfinite(v):
                    fast[x] = False
                    v = 0.0
                dif[k, x] = v
    # the rate that sets the Poisson variance: the mean difference (a median's noise, being
    # correlated with the differences it is tested on, fattens the tail of z; the mean keeps
    # z a unit normal, see the module doc)
    mean = np.zeros(nx)
    for k in range(ntot):
        for x in range(nx):
            mean[x] += dif[k, x]
    rho = np.zeros(nx)
    for x in range(nx):
        mean[x] /= ntot
        if mean[x] > 0.0:
            rho[x] = mean[x] * tframe / (float(gain2d[y, x]) * tgroup) / a[x]
    # (T + rho P)^-1 = V diag(1/(lam + rho)) V^T for every integration
    q = np.zeros(nx)  # d' (T + rho P)^-1 d
    s1 = np.zeros(nx)  # 1' (T + rho P)^-1 d
    s2 = np.zeros(nx)  # 1' (T + rho P)^-1 1
    proj = np.empty(nx)
    for j in range(nd):
        c1 = 0.0
        for k in range(nd):
            c1 += vmat[k, j]
        lj = lam[j]
        for x in range(nx):
            s2[x] += nints * c1 * c1 / (lj + rho[x])
        for i in range(nints):
            proj[:] = 0.0
            for k in range(nd):
                vkj = vmat[k, j]
                for x in range(nx):
                    proj[x] += vkj * dif[i * nd + k, x]
            for x in range(nx):
                w = 1.0 / (lj + rho[x])
                q[x] += proj[x] * proj[x] * w
                s1[x] += c1 * proj[x] * w
    thr2 = thr[ntot] * thr[ntot]
    c1v = np.zeros(nd)
    for j in range(nd):
        for k in range(nd):
            c1v[j] += vmat[k, j]
    fb = (np.empty(nd), np.empty(nd), np.empty(nd), np.empty(nd), np.empty(ntot))
    # --- exact path: pixels with a statistic over the threshold, and those with unusable or
    # flagged differences ---
    bufs = (np.empty(ntot), np.empty(ntot, np.int64), np.empty(ntot, np.int64),
            np.empty((nd, nd)), np.zeros((nd, nd)), np.empty(ntot), np.empty(ntot),
            np.empty(ntot), np.empty(ntot))
    count = 0
    for x in range(nx):
        if fast[x] and s2[x] > 0.0:
            if (q[x] - s1[x] * s1[x] / s2[x]) / a[x] <= thr2:
                continue  # no statistic can pass
            if not (_fast_max_z(dif, x, nints, nd, a[x], rho[x], lam, vmat, c1v, sided, split,
                                fb[0], fb[1], fb[2], fb[3], fb[4]) > thr[ntot]):
                continue
        gn = float(gain2d[y, x])
        rn = float(rn2d[y, x])
        if not (gn > 0.0) or not (rn >= 0.0) or math.isinf(gn) or math.isinf(rn):
            continue
        a0 = rn * rn / (2.0 * nframes)
        aa = a0 + excess[y // TILE, x // TILE]
        if not (aa > 0.0):
            continue
        count += _pixel_exact(y, x, drow, qrow, gdq, gn, aa, a0, tframe, tgroup, tmat, pmat,
                              thr, sided, split, nb_min, nb_max, src, bufs)
    ncr[y] = count


@njit(nogil=True, cache=True, parallel=True)
def detect_kernel(data, gdq, gain2d, rn2d, nframes, excess, tframe, tgroup, tmat, pmat, lam,
                  vmat, thr, sided, split, nb_min, nb_max, src, ncr):
    """Pass 1: flag primary jumps in ``gdq``; mark neighbour-flag sources in ``src``.
    ``thr[n]`` is the threshold for n usable differences (pooled)."""
    for y in prange(data.shape[2]):
        _detect_row(y, data, gdq, gain2d, rn2d, nframes, excess, tframe, tgroup, tmat, pmat,
                    lam, vmat, thr, sided, split, nb_min, nb_max, src, ncr)
