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

Pass 1 (``detect_kernel``, parallel over rows): a pixel whose differences are all usable takes
the fast path: ``C`` is the same matrix up to ``rho = b/a`` for every such pixel, so
``(T + rho P)^-1 = V (L + rho)^-1 V^T`` with the generalised eigenvectors ``V`` of (T, P)
computed once per exposure (``exposure_basis``), and ``z`` costs ~3 n**2 flops, vectorised over
the row's columns. A pixel with a candidate, an unusable difference (SATURATED, DO_NOT_USE,
NaN) or a flagged jump takes the exact path: the covariance of its usable differences (the
sub-matrix) is Cholesky-factorised per integration. The largest ``z`` is flagged while it
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
_HBINS = 1600  # histogram of log10(q) over [-8, 4): 0.0075 dex bins
_HLO, _HHI = -8.0, 4.0


@njit(nogil=True, cache=True, parallel=True)
def excess_kernel(data, gdq, gain2d, rn2d, nframes, tframe, tgroup, tmat, pmat):
    """Per TILE x TILE tile, the extra read variance of one group (DN**2) the exposure shows
    beyond ``rn**2 / (2 nframes)``, from the second differences ``s`` of faint pixels whose
    groups are all usable: ``f = median(s**2 / model) / 0.4549`` (0.4549: the median of a
    chi-square with one degree of freedom; a median, so jumps barely move it), excess
    ``(f - 1) * median model read variance`` (f floored at 0.5). Correlated read noise (1/f)
    does not average down over a group's frames and its residual after refpix varies over the
    detector: hence tiles. Tiles with fewer than 400 samples take the whole exposure's value.
    Medians from log-spaced histograms (O(tiles) memory)."""
    nints, ngroups, ny, nx = data.shape
    nd = ngroups - 1
    nty = (ny + TILE - 1) // TILE
    ntx = (nx + TILE - 1) // TILE
    out = np.zeros((nty, ntx))
    if nd < 2:
        return out
    tss = tmat[1, 1] + tmat[0, 0] - 2.0 * tmat[0, 1]
    hist = np.zeros((nty, ntx, _HBINS), np.int32)
    ahist = np.zeros((nty, ntx, _HBINS), np.int32)
    scale = _HBINS / (_HHI - _HLO)
    for ty in prange(nty):
        dif = np.empty(nd)
        for y in range(ty * TILE, min(ny, ty * TILE + TILE)):
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
                        q = sk * sk / (a * tss + b * pss)
                        j = int((math.log10(q) - _HLO) * scale) if q > 0.0 else 0
                        j = min(max(j, 0), _HBINS - 1)
                        hist[ty, tx, j] += 1
                        used = True
                if used:
                    j = int((math.log10(a) - _HLO) * scale)
                    ahist[ty, tx, min(max(j, 0), _HBINS - 1)] += 1
    tot = np.zeros(_HBINS, np.int64)
    atot = np.zeros(_HBINS, np.int64)
    for ty in range(nty):
        for tx in range(ntx):
            tot += hist[ty, tx]
            atot += ahist[ty, tx]
    glob = _excess_of(tot, atot, 400)
    for ty in range(nty):
        for tx in range(ntx):
            e = _excess_of(hist[ty, tx], ahist[ty, tx], 400)
            out[ty, tx] = e if not math.isnan(e) else (glob if not math.isnan(glob) else 0.0)
    return out


@njit(nogil=True, cache=True)
def _hist_median(h):
    n = 0
    for c in h:
        n += c
    half = 0.5 * n
    acc = 0.0
    for j in range(h.size):
        if acc + h[j] >= half and h[j] > 0:
            frac = (half - acc) / h[j]
            return 10.0 ** (_HLO + (j + frac) * (_HHI - _HLO) / h.size)
        acc += h[j]
    return math.nan


@njit(nogil=True, cache=True)
def _excess_of(h, ah, nmin):
    n = 0
    for c in h:
        n += c
    if n < nmin:
        return math.nan
    f = _hist_median(h) / 0.454936423119572
    return (max(f, 0.5) - 1.0) * _hist_median(ah)


@njit(nogil=True, cache=True)
def _cov(a, b, tmat, pmat, g1, g2, h1, h2):
    """Covariance of two elements, each one difference (index g1 / h1) or the sum of two
    (second index g2 / h2 >= 0)."""
    c = a * tmat[g1, h1] + b * pmat[g1, h1]
    if h2 >= 0:
        c += a * tmat[g1, h2] + b * pmat[g1, h2]
    if g2 >= 0:
        c += a * tmat[g2, h1] + b * pmat[g2, h1]
        if h2 >= 0:
            c += a * tmat[g2, h2] + b * pmat[g2, h2]
    return c


@njit(nogil=True, cache=True)
def _exact(ev, ei, eg1, eg2, n, nints, a, b, tmat, pmat, cmat, lmat, u, v, dg, z, asig):
    """z of each of the n elements (differences, or sums of two adjacent ones; pooled,
    ordered by integration), exact: Cholesky per integration; and ``asig``: the jump's
    generalised-least-squares amplitude in units of its element's noise (what JWST's
    neighbour thresholds are in). False when the covariance is not positive definite."""
    s1 = 0.0
    s2 = 0.0
    start = 0
    for i in range(nints):
        m = 0
        while start + m < n and ei[start + m] == i:
            m += 1
        if m == 0:
            continue
        for p in range(m):
            for q in range(m):
                cmat[p, q] = _cov(a, b, tmat, pmat, eg1[start + p], eg2[start + p],
                                  eg1[start + q], eg2[start + q])
        # Cholesky (lower) in lmat
        for p in range(m):
            for q in range(p + 1):
                acc = cmat[p, q]
                for r in range(q):
                    acc -= lmat[p, r] * lmat[q, r]
                if p == q:
                    if not (acc > 0.0):
                        return False
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
        # C^-1 = Li^T Li: u = C^-1 d, v = C^-1 1, dg = diag(C^-1)
        for p in range(m):
            uu = 0.0
            vv = 0.0
            dd = 0.0
            for r in range(p, m):
                li_rp = cmat[r, p]
                wd = 0.0
                w1 = 0.0
                for q in range(r + 1):
                    wd += cmat[r, q] * ev[start + q]
                    w1 += cmat[r, q] * (2.0 if eg2[start + q] >= 0 else 1.0)
                uu += li_rp * wd
                vv += li_rp * w1
                dd += li_rp * li_rp
            u[start + p] = uu
            v[start + p] = vv
            dg[start + p] = dd
            h = 2.0 if eg2[start + p] >= 0 else 1.0  # a sum of two differences: twice the rate
            s1 += h * uu
            s2 += h * vv
        start += m
    if not (s2 > 0.0):
        return False
    r = s1 / s2
    for k in range(n):
        var = dg[k] - v[k] * v[k] / s2
        sd = math.sqrt(_cov(a, b, tmat, pmat, eg1[k], eg2[k], eg1[k], eg2[k]))
        if var > 0.0:
            wd = u[k] - v[k] * r
            z[k] = wd / math.sqrt(var)
            asig[k] = wd / var / sd
        else:
            z[k] = 0.0
            asig[k] = 0.0
    return True


@njit(nogil=True, cache=True)
def _merged_z(vals, at_i, at_g, n, p, nints, a, b, tmat, pmat, bufs2):
    """z (and amplitude significance) of an event during the group between differences p and
    p+1 (pooled indices, same integration, adjacent groups): the two differences summed into
    one (the group the event split is left out), tested with every other difference."""
    ev, ei, eg1, eg2, cmat, lmat, u, v, dg, z, asig = bufs2
    m = 0
    k = 0
    while k < n:
        ev[m] = vals[k]
        ei[m] = at_i[k]
        eg1[m] = at_g[k] - 1
        eg2[m] = -1
        if k == p:
            ev[m] += vals[k + 1]
            eg2[m] = at_g[k + 1] - 1
            k += 1
        m += 1
        k += 1
    if not _exact(ev, ei, eg1, eg2, m, nints, a, b, tmat, pmat, cmat, lmat, u, v, dg, z, asig):
        return 0.0, 0.0
    return z[p], asig[p]


@njit(nogil=True, cache=True)
def _pixel_exact(y, x, drow, qrow, gdq, gain, rn_var_a, tframe, tgroup, tmat, pmat, thr, sided,
                 split, nb_min, nb_max, src, bufs, bufs2):
    """The iterative exact test of one pixel; returns the number of jumps flagged.

    Each round tests every usable difference (one jump there) and, when ``split`` (frames
    averaged in groups: a hit during a group's frames is shared by its two differences), every
    adjacent pair (an event during the group between them); the most significant above the
    threshold is flagged (a pair: both differences), removed, and the test repeated."""
    vals, at_i, at_g, e1, e2, cmat, lmat, u, v, dg, z, asig = bufs
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
        for k in range(n):
            e1[k] = at_g[k] - 1
            e2[k] = -1
        if not _exact(vals, at_i, e1, e2, n, nints, rn_var_a, b, tmat, pmat, cmat, lmat, u, v,
                      dg, z, asig):
            break
        best = -1
        bz = -1.0
        bsig = 0.0
        for k in range(n):
            t = z[k] if sided == 1 else abs(z[k])
            if t > bz:
                bz = t
                best = k
                bsig = asig[k]
        pair = False
        if split and n >= 3:
            for k in range(n - 1):
                if at_i[k + 1] != at_i[k] or at_g[k + 1] != at_g[k] + 1:
                    continue
                zm, sm = _merged_z(vals, at_i, at_g, n, k, nints, rn_var_a, b, tmat, pmat,
                                   bufs2)
                t = zm if sided == 1 else abs(zm)
                if t > bz:
                    bz = t
                    best = k
                    bsig = sm
                    pair = True
        if best < 0 or not (bz > thr[n]):
            break
        nflag = 2 if pair else 1
        for j in range(best, best + nflag):
            i = at_i[j]
            g = at_g[j]
            gdq[i, g, y, x] |= JUMP_DET
            if bsig > nb_min and bsig < nb_max:  # in difference-noise units (JWST's)
                src[i, g, y, x] = 1
        count += 1
        for k in range(best, n - nflag):  # keep the (integration, group) order
            vals[k] = vals[k + nflag]
            at_i[k] = at_i[k + nflag]
            at_g[k] = at_g[k + nflag]
        n -= nflag
    return count


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
    # --- fast path, vectorised over the row: pixels whose differences are all usable ---
    fast = np.ones(nx, np.bool_)
    a = np.empty(nx)
    rho = np.zeros(nx)
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
    med = np.zeros(nx)
    for k in range(ntot):
        for x in range(nx):
            med[x] += dif[k, x]
    for x in range(nx):
        med[x] /= ntot
    for x in range(nx):
        gn = float(gain2d[y, x])
        if fast[x] and med[x] > 0.0:
            rho[x] = med[x] * tframe / (gn * tgroup) / a[x]
    # (T + rho P)^-1 = V diag(1/(lam + rho)) V^T, per integration block; z of every difference
    w1 = np.zeros((nd, nx))  # C^-1 1 (times a)
    dgm = np.zeros((nd, nx))  # diag C^-1 (times a)
    u = np.zeros((ntot, nx))  # C^-1 d (times a)
    proj = np.empty(nx)
    inv = np.empty((nd, nx))
    for j in range(nd):
        for x in range(nx):
            inv[j, x] = 1.0 / (lam[j] + rho[x])
    for j in range(nd):
        c1 = 0.0
        for k in range(nd):
            c1 += vmat[k, j]
        for k in range(nd):
            vkj = vmat[k, j]
            for x in range(nx):
                w1[k, x] += vkj * c1 * inv[j, x]
                dgm[k, x] += vkj * vkj * inv[j, x]
    for i in range(nints):
        for j in range(nd):
            proj[:] = 0.0
            for k in range(nd):
                vkj = vmat[k, j]
                for x in range(nx):
                    proj[x] += vkj * dif[i * nd + k, x]
            for k in range(nd):
                vkj = vmat[k, j]
                for x in range(nx):
                    u[i * nd + k, x] += vkj * proj[x] * inv[j, x]
    s1 = np.zeros(nx)
    s2 = np.zeros(nx)
    for k in range(nd):
        for x in range(nx):
            s2[x] += w1[k, x]
    for i in range(nints):
        for k in range(nd):
            for x in range(nx):
                s1[x] += u[i * nd + k, x]
    for x in range(nx):
        s2[x] *= nints
    bz = np.full(nx, -1.0)
    for i in range(nints):
        for k in range(nd):
            for x in range(nx):
                var = dgm[k, x] - w1[k, x] * w1[k, x] / s2[x] if s2[x] > 0.0 else 0.0
                # (T + rho P)^-1 is a C^-1: z = a (W d)_k / sqrt(a W_kk * a)
                t = (u[i * nd + k, x] - w1[k, x] * s1[x] / s2[x]) / math.sqrt(var * a[x]) \
                    if var > 0.0 else 0.0
                if sided != 1:
                    t = abs(t)
                if t > bz[x]:
                    bz[x] = t
    if split and nd >= 3:  # screen for a hit shared by two differences: their sum's excess
        for k in range(nd - 1):
            vs = 2.0 * tmat[k, k + 1] + tmat[k, k] + tmat[k + 1, k + 1]
            ps = 2.0 * pmat[k, k + 1] + pmat[k, k] + pmat[k + 1, k + 1]
            for i in range(nints):
                for x in range(nx):
                    sm = dif[i * nd + k, x] + dif[i * nd + k + 1, x] - 2.0 * med[x]
                    t = sm / math.sqrt(a[x] * (vs + rho[x] * ps))
                    if sided != 1:
                        t = abs(t)
                    if t + 1.0 > bz[x]:
                        bz[x] = t + 1.0  # a looser screen: the exact path decides
    # --- exact path: candidates and pixels with unusable or flagged differences ---
    vals = np.empty(ntot)
    at_i = np.empty(ntot, np.int64)
    at_g = np.empty(ntot, np.int64)
    e1 = np.empty(ntot, np.int64)
    e2 = np.empty(ntot, np.int64)
    cmat = np.empty((nd, nd))
    lmat = np.zeros((nd, nd))
    uu = np.empty(ntot)
    vv = np.empty(ntot)
    dg = np.empty(ntot)
    z = np.empty(ntot)
    asig = np.empty(ntot)
    bufs = (vals, at_i, at_g, e1, e2, cmat, lmat, uu, vv, dg, z, asig)
    bufs2 = (np.empty(ntot), np.empty(ntot, np.int64), np.empty(ntot, np.int64),
             np.empty(ntot, np.int64), np.empty((nd, nd)), np.zeros((nd, nd)), np.empty(ntot),
             np.empty(ntot), np.empty(ntot), np.empty(ntot), np.empty(ntot))
    count = 0
    for x in range(nx):
        if fast[x] and not (bz[x] > thr[ntot]):
            continue
        gn = float(gain2d[y, x])
        rn = float(rn2d[y, x])
        if not (gn > 0.0) or not (rn >= 0.0) or math.isinf(gn) or math.isinf(rn):
            continue
        aa = rn * rn / (2.0 * nframes) + excess[y // TILE, x // TILE]
        if not (aa > 0.0):
            continue
        count += _pixel_exact(y, x, drow, qrow, gdq, gn, aa, tframe, tgroup, tmat, pmat, thr,
                              sided, split, nb_min, nb_max, src, bufs, bufs2)
    ncr[y] = count


@njit(nogil=True, cache=True, parallel=True)
def detect_kernel(data, gdq, gain2d, rn2d, nframes, excess, tframe, tgroup, tmat, pmat, lam,
                  vmat, thr, sided, split, nb_min, nb_max, src, ncr):
    """Pass 1: flag primary jumps in ``gdq``; mark neighbour-flag sources in ``src``.
    ``thr[n]`` is the threshold for n usable differences (pooled)."""
    for y in prange(data.shape[2]):
        _detect_row(y, data, gdq, gain2d, rn2d, nframes, excess, tframe, tgroup, tmat, pmat,
                    lam, vmat, thr, sided, split, nb_min, nb_max, src, ncr)
