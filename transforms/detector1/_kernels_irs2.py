"""NIRSpec IRS2 reference correction: the algorithm of jwst's irs2_subtract_reference, fast.

Given a science-frame IRS2 ramp (nints, ngroups, 3200, 2048) and the IRS2 ``refpix`` reference
(Fourier coefficients ``alpha`` for the reference output and ``beta`` for the interleaved
reference pixels, one complex spectrum of 712 x 2048 samples per output, and a DQ table of
permanently bad interleaved reference pixels), per integration and in the detector frame:

1. the per-pixel mean over groups (``b_offset``) is taken out;
2. each output is laid out in time order, 712 samples a row (``IRS2Layout``), the reversed
   outputs flipped;
3. a straight line in time, fitted to the 8 reference rows of each output and group, is
   removed (frame-boundary drifts);
4. the reference output's gaps are filled: cosine-weighted interpolation, then three rounds of
   Fourier projection through a filter that keeps low and near-Nyquist frequencies;
5. for each output k the correction ``IFFT(beta_k * FFT(refs_k) + alpha_k * FFT(refout))`` (the
   interleaved reference samples spread over their blocks, every other sample zero) is
   subtracted from its normal pixels;
6. the normal pixels are kept (2048 x 2048) and ``b_offset`` is added back.

Bad interleaved reference pixels are handled before that, by the caller's choice of
generation: ``flag_bad_refpix`` + ``replace_refpix`` + ``clobber_ref`` (jwst >= 1.12, build 10.0:
robust sigma-clipped tests of every pair's difference, mean and scatter, bad pairs replaced by
the average of their neighbours), or ``clobber_ref_v1`` + ``rm_intermittent_badpix_v1`` (jwst
1.11, before build 10.0: relative thresholds on the last group, nearest good pixel).

Differences from jwst that do not change the result beyond float32 rounding: real FFTs with the
Hermitian part of alpha/beta (jwst keeps the real part of a complex inverse FFT, which is the
same thing), the reference output's transform computed once per group instead of once per
output, statistics in float64.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from transforms.instruments.nirspec.detector import IRS2Layout

BAD_REF_PIXEL = np.uint32(1 << 17)
DO_NOT_USE = np.uint32(1)
ROW4PLUS4 = np.array([0, 1, 2, 3, 2044, 2045, 2046, 2047], dtype=np.int64)


# --------------------------------------------------------------------------------------------
# Bad interleaved reference pixels: build 10.0+ (jwst 3.0's flag_bad_refpix / replace_refpix)
# --------------------------------------------------------------------------------------------

@njit(nogil=True, cache=True, parallel=True)
def _pair_stats(d, rows, out_d, out_m, out_s):
    """For each reference row ``ri`` of a science-frame integration (ngroups, 3200, nx):
    mean |row[ri+1] - row[ri]|, and mean and std of rows ri, ri+1 together (all groups)."""
    ng, _, nx = d.shape
    for k in prange(rows.size):
        ri = rows[k]
        sd = 0.0
        s = 0.0
        for g in range(ng):
            a = d[g, ri]
            b = d[g, ri + 1]
            for x in range(nx):
                sd += abs(np.float64(b[x]) - np.float64(a[x]))
                s += np.float64(a[x]) + np.float64(b[x])
        n = ng * nx
        m = s / (2 * n)
        v = 0.0
        for g in range(ng):
            a = d[g, ri]
            b = d[g, ri + 1]
            for x in range(nx):
                v += (a[x] - m) ** 2 + (b[x] - m) ** 2
        out_d[k] = sd / n
        out_m[k] = m
        out_s[k] = np.sqrt(v / (2 * n))


def sigma_clipped_mean_std(x: np.ndarray, sigma: float, maxiters: int = 5) -> tuple[float, float]:
    """astropy's sigma_clipped_stats (median centre, std, both sides, up to 5 rounds)."""
    v = np.asarray(x, np.float64)
    v = v[np.isfinite(v)]
    for _ in range(maxiters):
        if v.size == 0:
            break
        c, s = np.median(v), v.std()
        keep = (v >= c - s * sigma) & (v <= c + s * sigma)
        if keep.all():
            break
        v = v[keep]
    if v.size == 0:
        return np.nan, np.nan
    return float(v.mean()), float(v.std())


def flag_bad_refpix(data: np.ndarray, pixeldq: np.ndarray, layout: IRS2Layout,
                    n_sigma: float) -> np.ndarray:
    """Rows (science frame, 3200) of interleaved reference pixels that are intermittently bad,
    plus those already flagged BAD_REF_PIXEL: jwst's flag_bad_refpix(flag_only=True). Each
    pair (ri, ri+1) of each output (the reference output too) is tested per integration on
    the mean |difference|, the mean and the scatter against sigma-clipped statistics of all
    pairs of that output; a pair more than ``n_sigma`` above is bad in every integration."""
    nints = data.shape[0]
    ny = data.shape[-2]
    amp = ny // 5
    period = layout.n + layout.r
    initial = np.any(pixeldq & BAD_REF_PIXEL, axis=1)
    mask_bad = initial.copy()
    starts = np.arange(layout.n // 2, amp, period)
    pairs = (starts[:, None] + np.arange(0, layout.r, 2)[None, :]).ravel()
    for k in range(5):
        rows = (pairs + k * amp).astype(np.int64)
        for j in range(nints):
            int_bad = initial.copy()
            good = ~(int_bad[rows] | int_bad[rows + 1])
            use = rows[good]
            if use.size == 0:
                continue
            d = np.empty(use.size)
            m = np.empty(use.size)
            s = np.empty(use.size)
            _pair_stats(data[j], use, d, m, s)
            for stat in (d, m, s):
                mu, sd = sigma_clipped_mean_std(stat, n_sigma)
                high = (stat - mu) > n_sigma * sd
                int_bad[use[high]] = True
                int_bad[use[high] + 1] = True
            mask_bad |= int_bad
    return mask_bad


def is_interleaved_rows(ny: int, layout: IRS2Layout) -> np.ndarray:
    """Rows that flag_bad_refpix visits: the interleaved positions of all 5 sections."""
    out = np.zeros(ny, bool)
    amp = ny // 5
    for k in range(5):
        for start in range(layout.n // 2, amp, layout.n + layout.r):
            out[k * amp + start:k * amp + start + layout.r] = True
    return out


def replace_refpix(bad: int, data: np.ndarray, bad_mask: np.ndarray, is_irs2: np.ndarray,
                   lo: int, hi: int, layout: IRS2Layout, axis: int) -> None:
    """jwst's replace_refpix: the mean of the same-parity reference pixels one block below and
    above (whichever are good), else a good neighbour 2 pixels away, else 0. In place on
    ``data`` (4-D) along ``axis`` (-2 science frame, -1 detector frame)."""
    period = layout.n + layout.r
    take = (lambda i: data[..., i, :]) if axis == -2 else (lambda i: data[..., i])
    neighbor = None
    if bad - 2 >= lo and is_irs2[bad - 2] and not bad_mask[bad - 2]:
        neighbor = bad - 2
    elif bad + 2 < hi and is_irs2[bad + 2] and not bad_mask[bad + 2]:
        neighbor = bad + 2
    v1 = take(bad - period) if bad - period >= lo and not bad_mask[bad - period] else None
    v2 = take(bad + period) if bad + period < hi and not bad_mask[bad + period] else None
    if v1 is not None and v2 is not None:
        value = (v1 + v2) / np.float32(2.0)
    elif v1 is not None:
        value = v1.copy()
    elif v2 is not None:
        value = v2.copy()
    elif neighbor is not None:
        value = take(neighbor).copy()
    else:
        value = 0.0
    if axis == -2:
        data[..., bad, :] = value
    else:
        data[..., bad] = value


def replace_flagged(data: np.ndarray, mask_bad: np.ndarray, layout: IRS2Layout) -> None:
    """jwst's flag_bad_refpix(replace_only=True): replace every flagged row, section by
    section, in order (a replacement may use an earlier one)."""
    ny = data.shape[-2]
    amp = ny // 5
    is_irs2 = is_interleaved_rows(ny, layout)
    for k in range(5):
        lo = k * amp
        for bad in np.flatnonzero(mask_bad[lo:lo + amp]) + lo:
            replace_refpix(int(bad), data, mask_bad, is_irs2, lo, lo + amp, layout, axis=-2)


def decode_mask(mask: int) -> list[int]:
    """Bits set in a DQ-table MASK value, lowest first (jwst >= 1.12)."""
    return [b for b in range(32) if int(mask) >> b & 1]


def clobber_ref(det: np.ndarray, table: dict[str, np.ndarray], ref_flags: np.ndarray,
                layout: IRS2Layout) -> None:
    """jwst's clobber_ref (>= 1.12): the pairs the reference's DQ table marks bad and that are
    not flagged yet are flagged and replaced (detector frame, in place)."""
    nx = det.shape[-1]
    w = nx // 5
    is_irs2 = ~layout.mask().copy()
    is_irs2[:w] = is_irs2[2 * w:3 * w]
    for out, oe, mask in zip(table["output"], table["odd_even"], table["mask"]):
        out, oe = int(out), int(oe)
        offset = out * w
        oe_row = 3 - oe if out % 2 == 0 else oe
        new = []
        for k in decode_mask(mask):
            ref = offset + layout.n // 2 + k * (layout.n + layout.r) + 2 * (oe_row - 1)
            for p in (ref, ref + 1):
                if not ref_flags[p]:
                    new.append(p)
                    ref_flags[p] = True
        for p in new:
            replace_refpix(p, det, ref_flags, is_irs2, offset, offset + w, layout, axis=-1)


# --------------------------------------------------------------------------------------------
# Bad interleaved reference pixels before build 10.0 (jwst 1.11)
# --------------------------------------------------------------------------------------------

def clobber_ref_v1(det: np.ndarray, table: dict[str, np.ndarray], layout: IRS2Layout) -> None:
    """jwst 1.11's clobber_ref: the DQ table's bad pairs are set to 0 (bits counted along the
    readout direction, i.e. reversed for the even outputs)."""
    w = det.shape[-1] // 5
    for out, oe, mask in zip(table["output"], table["odd_even"], table["mask"]):
        out, oe = int(out), int(oe)
        oe_row = 3 - oe if out % 2 == 0 else oe
        bits = decode_mask(mask)
        if out % 2 == 0:
            bits = sorted(31 - b for b in bits)
        for k in bits:
            ref = out * w + layout.n // 2 + k * (layout.n + layout.r) + 2 * (oe_row - 1)
            det[..., ref:ref + 2] = 0.0


def rm_intermittent_badpix_v1(det: np.ndarray, layout: IRS2Layout, factor: float) -> int:
    """jwst 1.11's rm_intermittent_badpix: on the last group of the last integration, per
    section, reference columns whose mean exceeds ``factor`` x the mean of means, whose std
    exceeds ``factor`` x the mean std, or whose pair's |odd - even| exceeds ``factor`` x the
    mean |difference| are replaced (all groups) by the nearest good column of the same parity.
    Columns that clobber_ref zeroed are left out. Returns the number replaced."""
    nx = det.shape[-1]
    amp = nx // 5
    last = np.asarray(det[-1, -1], np.float64)
    total = 0
    for k in range(5):
        off = k * amp
        ref_pix, means, stds, diffs, rp2check = [], [], [], [], []
        for start in range(layout.n // 2, amp, layout.n + layout.r):
            pair = 0
            rp_odd = rp_even = 0.0
            odd_pix = even_pix = -1
            for i in range(4):
                ri = off + start + i
                m = last[:, ri].mean()
                s = last[:, ri].std()
                if m != 0.0:
                    ref_pix.append(ri)
                    means.append(m)
                    stds.append(s)
                if ri % 2:
                    odd_pix, rp_odd = ri, m
                else:
                    even_pix, rp_even = ri, m
                pair += 1
                if pair == 2:
                    if rp_odd != 0.0 and rp_even != 0.0:
                        diffs.append(rp_odd - rp_even)
                        rp2check += [even_pix, odd_pix]
                    pair = 0
        if not ref_pix:
            continue
        diffs_a = np.abs(np.array(diffs))
        rp2check.sort()
        bad = set()
        if diffs_a.size:
            for j in np.flatnonzero(diffs_a > factor * diffs_a.mean()):
                first = diffs.index(diffs[j])  # jwst's lookup: the first equal difference
                bad.update((rp2check[2 * first], rp2check[2 * first] + 1))
        ref_a = np.array(ref_pix)
        means_a, stds_a = np.array(means), np.array(stds)
        bad.update(ref_a[means_a > factor * means_a.mean()].tolist())
        bad.update(ref_a[stds_a > factor * stds_a.mean()].tolist())
        bad = sorted(b for b in bad if b in set(ref_pix))
        total += len(bad)
        remaining = [rp for rp in ref_pix if rp not in set(bad)]
        even = np.array([rp for rp in remaining if rp % 2 == 0])
        odd = np.array([rp for rp in remaining if rp % 2 == 1])
        for b in bad:
            pool = even if b % 2 == 0 else odd
            if pool.size == 0:
                continue
            det[..., b] = det[..., int(pool[np.argmin(np.abs(pool - b))])]
    return total


# --------------------------------------------------------------------------------------------
# The correction itself
# --------------------------------------------------------------------------------------------

@njit(nogil=True, cache=True, parallel=True)
def _time_order(sci, srow, slot, scol, d0, b_off):
    """One science-frame integration (ng, 3200, 2048) -> time order d0 (5, ng, 2048, 712), the
    per-pixel mean over groups taken out and kept in b_off (2048, 3200, detector frame).
    Detector pixel (row y, column c) is science pixel (srow[c], scol[y]); it was read at time
    slot slot[c] of row y."""
    ng = sci.shape[0]
    nrow = b_off.shape[0]
    ncol = b_off.shape[1]
    w = ncol // 5
    for c in prange(ncol):
        k = c // w
        sl = slot[c]
        sr = srow[c]
        for y in range(nrow):
            sc = scol[y]
            s = 0.0
            for g in range(ng):
                s += sci[g, sr, sc]
            b = s / ng
            b_off[y, c] = b
            for g in range(ng):
                d0[k, g, y, sl] = np.float32(sci[g, sr, sc] - b)


@njit(nogil=True, cache=True, parallel=True)
def _remove_slopes(d0, rows, t_centre, row_len):
    """Fit a + b t to the nonzero samples of the 8 reference rows of each (output, group)
    and subtract it (float32 arithmetic as jwst) from every nonzero sample."""
    nsec, ng, ny, nr = d0.shape
    for q in prange(nsec * ng):
        i = q // ng
        g = q % ng
        n = 0
        sx = 0.0
        sy = 0.0
        sxx = 0.0
        sxy = 0.0
        for rr in range(rows.size):
            r = rows[rr]
            for s in range(nr):
                v = d0[i, g, r, s]
                if v != 0.0:
                    t = np.float64(np.float32(r * row_len + s) - t_centre)
                    n += 1
                    sx += t
                    sy += v
                    sxx += t * t
                    sxy += t * v
        a = np.float32(0.0)
        b = np.float32(0.0)
        if n > 0:
            mx = sx / n
            my = sy / n
            slope = (sxy - n * mx * my) / (sxx - n * mx * mx)
            a = np.float32(my - slope * mx)
            b = np.float32(slope)
        for y in range(ny):
            for s in range(nr):
                v = d0[i, g, y, s]
                if v != 0.0:
                    t = np.float32(np.float32(y * row_len + s) - t_centre)
                    d0[i, g, y, s] = v - np.float32(a + np.float32(t * b))


@njit(nogil=True, cache=True, parallel=True)
def _scatter_refs(d0k, ht, hs, out):
    """out (ng, ny, 712) = 0 except out[..., ht] = d0k[..., hs] (the references spread)."""
    ng, ny, nr = d0k.shape
    for q in prange(ng * ny):
        g = q // ny
        y = q % ny
        o = out[g, y]
        for s in range(nr):
            o[s] = 0.0
        for j in range(ht.size):
            o[ht[j]] = d0k[g, y, hs[j]]


@njit(nogil=True, cache=True, parallel=True)
def _combine(rk, ro, beta, alpha, out):
    """out = beta * rk + alpha * ro (complex half spectra)."""
    for i in prange(out.size):
        out[i] = beta[i] * rk[i] + alpha[i] * ro[i]


@njit(nogil=True, cache=True, parallel=True)
def _subtract_normal(d0k, corr, hnorm1):
    ng, ny, nr = d0k.shape
    for q in prange(ng * ny):
        g = q // ny
        y = q % ny
        for j in range(hnorm1.size):
            s = hnorm1[j]
            d0k[g, y, s] = d0k[g, y, s] - np.float32(corr[g, y * nr + s])


@njit(nogil=True, cache=True, parallel=True)
def _assemble(d0, hnorm1, b_off, normal_cols, out):
    """out (ng, ny, 2048), detector frame: the normal pixels of outputs 1-4 (2 and 4 read
    backwards) plus b_offset at the normal columns."""
    _, ng, ny, _ = d0.shape
    w = hnorm1.size
    for q in prange(ng * ny):
        g = q // ny
        y = q % ny
        for k in range(1, 5):
            for j in range(w):
                jj = w - 1 - j if k % 2 == 0 else j
                x = (k - 1) * w + jj
                out[g, y, x] = np.float32(d0[k, g, y, hnorm1[j]] + b_off[y, normal_cols[x]])


def fill_filter(layout: IRS2Layout, ny: int, dtype) -> np.ndarray:
    """jwst's fill_bad_regions filter [1, cos, 0, cos, 1] on the half spectrum (rfft bins)."""
    n, r, pad, row = layout.n, layout.r, layout.pad, layout.row
    elen = 110000 // (n + r + 2)
    blen = (512 + 512 // n * (r + 2) + pad) // (n + r + 2) * ny // 2 - elen // 2
    a1 = (np.cos(np.arange(elen, dtype=dtype) * np.pi / float(elen)) + 1.0) / 2.0
    a2 = np.concatenate((np.ones(blen, dtype), a1, np.zeros(row * ny // 2 - 2 * blen - 2 * elen,
                                                            dtype), a1[::-1], np.ones(blen, dtype)))
    # full filter: concat(a2, roll(a2, -1)[::-1]); its first half + 1 is a2 then aa[N/2] = a2[0]
    return np.concatenate((a2, a2[:1])).astype(np.float64)


def hermitian_half(spec: np.ndarray) -> np.ndarray:
    """Half spectrum (N/2 + 1 bins) of the Hermitian part of a full complex spectrum: the
    filter that real(ifft(spec * fft(x))) applies to a real x."""
    n = spec.shape[-1]
    rev = np.conj(np.roll(spec[..., ::-1], 1, axis=-1))  # conj(spec[-f])
    return (0.5 * (spec + rev))[..., : n // 2 + 1].astype(np.complex64)


def subtract_reference(sci_int: np.ndarray, detector: str, alpha_h: np.ndarray,
                       beta_h: np.ndarray, layout: IRS2Layout, fill: np.ndarray,
                       workers: int = 1) -> np.ndarray:
    """One integration (ngroups, 3200, 2048, science frame, float32) -> its corrected normal
    pixels (ngroups, 2048, 2048) in the science frame. ``alpha_h``/``beta_h`` (4, N/2+1) from
    ``hermitian_half``; ``fill`` from ``fill_filter``."""
    from scipy import fft

    ng, nirs, nsci = sci_int.shape
    ny, nx = nsci, nirs  # detector frame (2048, 3200)
    row = layout.row
    nrs2 = detector == "NRS2"
    # detector column c <-> science row; detector row y <-> science column
    cols = np.arange(nx)
    col_of = (nx - 1 - cols) if nrs2 else cols
    ys = np.arange(ny)
    w = layout.width
    k = cols // w
    j = cols % w
    jj = np.where(k % 2 == 0, w - 1 - j, j)
    slot = layout.slot[jj].astype(np.int64)
    scol = ((ny - 1 - ys) if nrs2 else ys).astype(np.int64)
    d0 = np.zeros((5, ng, ny, row), np.float32)
    b_off = np.empty((ny, nx), np.float64)
    _time_order(sci_int, col_of.astype(np.int64), slot, scol, d0, b_off)
    t = np.arange(ny * row, dtype=np.float32)
    t_centre = np.float32(t.mean(dtype=np.float64))
    _remove_slopes(d0, ROW4PLUS4, t_centre, row)
    hnorm1 = layout.hnorm1.astype(np.int64)
    active = [kk for kk in range(1, 5) if beta_h[kk - 1].any() or alpha_h[kk - 1].any()]
    if alpha_h[[kk - 1 for kk in active]].any():
        _fill_refout(d0, layout, fill, ng, ny, workers)
    n = ny * row
    ro = fft.rfft(d0[0].reshape(ng, n), axis=1, workers=workers) if active else None
    ht, hs = _ht_hs(layout)
    rk = np.empty((ng, ny, row), np.float32)
    for kk in active:  # outputs with zero coefficients get an exact zero correction
        _scatter_refs(d0[kk], ht, hs, rk)
        rkf = fft.rfft(rk.reshape(ng, n), axis=1, workers=workers)
        spec = np.empty_like(ro)
        for g in range(ng):
            _combine(rkf[g], ro[g], beta_h[kk - 1], alpha_h[kk - 1], spec[g])
        corr = fft.irfft(spec, n=n, axis=1, workers=workers)
        _subtract_normal(d0[kk], corr, hnorm1)
    out = np.empty((ng, ny, 4 * layout.hnorm1.size), np.float32)
    normal_cols = np.flatnonzero(layout.mask()).astype(np.int64)
    _assemble(d0, hnorm1, b_off, normal_cols, out)
    from transforms.instruments.nirspec.detector import to_science

    return np.ascontiguousarray(to_science(out, detector))


def _fill_refout(d0, layout, fill, ng, ny, workers):
    """jwst's replace_bad_pixels + fill_bad_regions on the reference output (d0[0], in place):
    cosine-weighted interpolation of the unread samples, then three rounds of Fourier
    projection keeping the read ones."""
    from scipy import fft
    from scipy.ndimage import convolve1d

    row = layout.row
    wts = np.sin(np.arange(1, 32, dtype=np.float32) / 32.0 * np.pi)
    hm = np.zeros(row, bool)
    hm[layout.hnorm1] = True
    known = np.broadcast_to(hm, (ny, row)).ravel()
    for g in range(ng):
        dat = d0[0, g].reshape(-1)
        m = (dat != 0.0).astype(np.float32)
        num = convolve1d(dat, wts, mode="wrap")
        den = convolve1d(m, wts, mode="wrap")
        z = den == 0.0
        num = np.where(z, np.float32(0.0), num)
        den = np.where(z, np.float32(1.0), den)
        dat += (num / den) * (np.float32(1.0) - m)
        keep = dat[known].copy()
        p = dat.copy()
        for _ in range(3):
            p = fft.irfft(fft.rfft(p, workers=workers) * fill, n=p.size,
                          workers=workers).astype(np.float32)
            p[known] = keep
        dat[:] = p


def _ht_hs(layout: IRS2Layout) -> tuple[np.ndarray, np.ndarray]:
    """jwst's ht (where each spread reference sample goes) and hs (which sample it is)."""
    n, r = layout.n, layout.r
    n0, n1 = 512 // n, n + r + 2
    ht = np.arange(n0 * n1, dtype=np.int64).reshape(n0, n1)
    ht[:, 0:(n - r) // 2 + 1] = -1
    ht[:, n // 2 + 1 + 3 * r // 2:] = -1
    hs = ht.copy()
    ht = ht[ht >= 0]
    indr = np.arange(r).reshape(2, r // 2).T
    two = np.concatenate((indr, indr), axis=1).ravel() + n // 2 + 1
    hs[:, n // 2 + 1 - r // 2: n // 2 + 1 + r // 2 + r] = hs[:, two]
    hs = hs[hs >= 0]
    if r % 4 == 2:
        hs = hs.reshape(-1, 2)[:, ::-1].ravel()
    return ht, hs
