"""Numba kernels of the exact Leech prior: per-token normalizer and word weights, and the
batch kernels the API in :mod:`leechcodec.kernels.leech_prior` calls (one token's logits
``ft`` ``(24, 9)`` float64 at a time, every sum in a fixed order). The arithmetic is
specified in that module's docstring.

Every kernel takes a last argument ``p``: true for the portable arithmetic (coder profile
3: ``exp``/``log``/``log1p`` of :mod:`leechcodec.kernels.xmath`, the same bits on every
machine), false for the platform's libm (profile 2, as format 1.1 was written).
"""

from __future__ import annotations

import numpy as np
from leechcodec.kernels import xmath
from leechcodec.kernels._jit import njit, prange

from leechcodec.kernels.index_layout import MAJOR_SIZES, MINOR_SIZES, PAIRS
from leechcodec.kernels.leech_index import GOLAY_MASKS, OCTAD_MASKS, OCTAD_POS, fill_codeword

_MASKS = GOLAY_MASKS  # (4096,) 24-bit codewords
_OCTAD_MASKS = OCTAD_MASKS  # (759,) 24-bit
_OCT = OCTAD_POS  # (759, 8)

# Shape-2 flush thresholds (nats). Tier 0 flushes group factors below e^-_CUT0 and B-sums
# below _BCUT0 (so kept products are ≥ e^-670) and is kept when S ≥ e^-_LIM0.
# Tier 1 runs when Σ_g max_g − max A ≤ _GATE1
# (so every group factor is ≤ e^450), drops words with A_m < max A − _CUT1 or B_m e^-D <
# e^-_BCUT1 (a kept word's partial products are ≥ e^-680, normal) and is kept when
# S ≥ e^-_LIM1, so a dropped word has P < 24e^{150−230} < 1e-33.
# The four e^-x thresholds are written out as bit patterns: they decide which tier a token
# takes, so they must not follow the last bit of whatever exp the importing machine has
# (the values numpy's exp gave when format 1.1 was written; e^-230 is one ulp off the
# correctly rounded value, which is harmless).
_CUT0, _LIM0 = 135.0, 60.0  # tier 0: 4·135 + 130 ≤ 708;  24e^{60−135}, e^{60−130} < 1e-30
_BCUT0 = float.fromhex("0x1.5d9ec4ada7938p-188")  # e^-130
_SMIN0 = float.fromhex("0x1.5ae191a99585ap-87")  # e^-_LIM0
_GATE1, _CUT1, _LIM1 = 450.0, 230.0, 150.0
_BCUT1 = float.fromhex("0x1.220be9ff8e557p-332")  # e^-230
_SMIN1 = float.fromhex("0x1.82e16284f5ec5p-217")  # e^-_LIM1
_YCUT2 = 75.0  # exact path: drop words with P < 24e^-75 < 1e-31 (S ≥ 1)
_RSPAN = 500.0  # exact path: spacing of its exp references
_WSTAR_MIN = 1e-150  # w_k / w_* is exact enough only when w_* is not tiny
_EXP_MIN = -708.0  # e^-708 ≈ 3.3e-308 is still a normal double

if not np.array_equal(_MASKS & 4095, np.arange(4096)):
    raise RuntimeError("leech_prior needs the systematic Golay generator (bits 0..11 = message)")
_PL = _MASKS[np.arange(64)] >> 12  # parity bits of message bits 0..5
_PH = _MASKS[np.arange(64) << 6] >> 12  # parity bits of message bits 6..11

# Column of value v in f: v + 4.
_M4, _M3, _M2, _M1, _Z, _P1, _P2, _P3, _P4 = range(9)


@njit(cache=True)
def _f0sum(ft):
    s = 0.0
    for i in range(24):
        s += ft[i, _Z]
    return s


@njit(cache=True)
def _exp(x, p):
    """exp(x), flushed to 0 below e^-708 (libm's subnormal path is ~10× slower): the
    portable one of :mod:`~leechcodec.kernels.xmath` when ``p``, else the platform's."""
    if x < _EXP_MIN:
        return 0.0
    return xmath.exp(x) if p else np.exp(x)


@njit(cache=True)
def _log(x, p):
    return xmath.log(x) if p else np.log(x)


@njit(cache=True)
def _log1p(x, p):
    return xmath.log1p(x) if p else np.log1p(x)


@njit(cache=True)
def _normalize_exp(w, p):
    """In place: w <- exp(w - max w); returns (max, sum)."""
    mx = -np.inf
    for k in range(w.shape[0]):
        mx = max(mx, w[k])
    s = 0.0
    for k in range(w.shape[0]):
        e = _exp(w[k] - mx, p)
        w[k] = e
        s += e
    return mx, s


@njit(cache=True)
def _shape0(ft, f0, w, p):
    """Pair weights into w (276,) (unnormalized, max 1); returns (log Z0, sum of w)."""
    lh = np.empty(24)
    for i in range(24):
        a = ft[i, _P4] - ft[i, _Z]
        b = ft[i, _M4] - ft[i, _Z]
        lh[i] = max(a, b) + _log1p(_exp(-abs(a - b), p), p)
    for r in range(276):
        w[r] = lh[PAIRS[r, 0]] + lh[PAIRS[r, 1]]
    mx, s = _normalize_exp(w, p)
    return f0 + mx + _log(s, p), s


@njit(cache=True)
def _octad_group_tables(ft, tx, tmin, tmax, te, to, gap, p):
    """Per 6-coordinate group g and subset x (``(4, 64)`` each, built by doubling): ``tx`` =
    Σ M_i, ``tmin`` = min t_i, ``tmax`` = max w_i, ``(te, to)`` = the even/odd flip sums;
    ``gap`` (24,) receives t_i. Returns the mask of coordinates whose best sign is −."""
    negmask = 0
    for g in range(4):
        tx[g, 0] = 0.0
        tmin[g, 0] = np.inf
        tmax[g, 0] = 0.0
        te[g, 0] = 1.0
        to[g, 0] = 0.0
        for k in range(6):
            i = 6 * g + k
            gp = ft[i, _P2] - ft[i, _Z]
            gm = ft[i, _M2] - ft[i, _Z]
            if gm > gp:
                negmask |= 1 << i
            b = max(gp, gm)
            gap[i] = abs(gp - gm)
            v = _exp(-gap[i], p)
            for x in range(1 << k):
                y = x + (1 << k)
                tx[g, y] = tx[g, x] + b
                tmin[g, y] = min(tmin[g, x], gap[i])
                tmax[g, y] = max(tmax[g, x], v)
                te[g, y] = te[g, x] + to[g, x] * v
                to[g, y] = to[g, x] + te[g, x] * v
    return negmask


@njit(cache=True)
def _shape1(ft, f0, w, p):
    """Octad weights into w (759,) (unnormalized); returns (log Z1, sum of w).

    Per 6-coordinate group and subset x (64 entries, built by doubling): Σ M_i, min t_i,
    max w_i and the even/odd flip sums (E, O); an octad combines its 4 group subsets with
    (E, O)·(E', O') = (EE' + OO', EO' + OE'). All terms are positive. Odd-parity octads
    use O / w_*, exact while w_* ≥ 1e-150; below that the scaled recursion runs instead.
    """
    tx = np.empty((4, 64))
    tmin = np.empty((4, 64))
    tmax = np.empty((4, 64))
    te = np.empty((4, 64))
    to = np.empty((4, 64))
    gap = np.empty(24)
    negmask = _octad_group_tables(ft, tx, tmin, tmax, te, to, gap, p)
    q = np.empty(759)
    mx = -np.inf
    for o in range(759):
        mask = _OCTAD_MASKS[o]
        x0 = mask & 63
        x1 = (mask >> 6) & 63
        x2 = (mask >> 12) & 63
        x3 = mask >> 18
        e01 = te[0, x0] * te[1, x1] + to[0, x0] * to[1, x1]
        o01 = te[0, x0] * to[1, x1] + to[0, x0] * te[1, x1]
        e23 = te[2, x2] * te[3, x3] + to[2, x2] * to[3, x3]
        o23 = te[2, x2] * to[3, x3] + to[2, x2] * te[3, x3]
        y = (tx[0, x0] + tx[1, x1]) + (tx[2, x2] + tx[3, x3])
        pm = mask & negmask
        pm ^= pm >> 16
        pm ^= pm >> 8
        pm ^= pm >> 4
        pm ^= pm >> 2
        pm ^= pm >> 1
        if pm & 1:  # odd best pattern: odd flip sets, scaled by w_* = e^{-t_*}
            ts = min(min(tmin[0, x0], tmin[1, x1]), min(tmin[2, x2], tmin[3, x3]))
            ws = max(max(tmax[0, x0], tmax[1, x1]), max(tmax[2, x2], tmax[3, x3]))
            if ws >= _WSTAR_MIN:
                q[o] = (e01 * o23 + o01 * e23) / ws
            else:
                even = 1.0
                odd = 0.0
                for k in range(8):
                    i = _OCT[o, k]
                    even, odd = even + odd * (ws * _exp(-gap[i], p)), odd + even * _exp(ts - gap[i], p)
                q[o] = odd
            y -= ts
        else:
            q[o] = e01 * e23 + o01 * o23
        w[o] = y
        mx = max(mx, y)
    s = 0.0
    for o in range(759):
        e = _exp(w[o] - mx, p) * q[o]
        w[o] = e
        s += e
    return f0 + mx + _log(s, p), s


@njit(cache=True)
def _group_tables(v0, v1, out):
    """out[g, x] = Σ_{k<6} (v1 if bit k of x else v0)[6g + k], summed in order k = 0..5."""
    for g in range(4):
        out[g, 0] = 0.0
        for k in range(6):
            a = v0[6 * g + k]
            b = v1[6 * g + k]
            for x in range(1 << k):
                out[g, x + (1 << k)] = out[g, x] + b
                out[g, x] = out[g, x] + a
    return out


@njit(cache=True)
def _shape2(ft, w, abuf, p):
    """Golay-word weights into w (4096,) (unnormalized); returns (log Z2, sum of w, tier).

    Tiers 0 and 1 multiply per-group exp tables (no exp per word), referenced at the group
    maxima resp. at the best word m*; tier 2 (:func:`_shape2_exact`) is exact for any f.
    abuf receives A_m (tiers 1 and 2).
    """
    dp, dm, dmax, ta, tb = _sign_tables(ft, p)
    aref, s = _tier0(ta, tb, w, p)
    if s >= _SMIN0:
        return aref + dmax + _log(s, p), s, 0
    amax, mstar = _word_logits(ta, abuf)
    if aref - amax <= _GATE1:
        s = _tier1(ta, tb, abuf, amax, mstar, w, p)
        if s >= _SMIN1:
            return amax + dmax + _log(s, p), s, 1
    z, s = _shape2_exact(dp, dm, w, abuf, p)
    return z, s, 2


@njit(cache=True)
def _sign_tables(ft, p):
    """``d_j(±1)`` as ``dp``, ``dm`` (24,), their maximum D, and the group tables ``ta`` of
    Σ f_i(s_i) and ``tb`` of Σ e^{d_j(s_j) − D}, ``(4, 64)`` each."""
    fp = np.empty(24)
    fm = np.empty(24)
    dp = np.empty(24)
    dm = np.empty(24)
    dmax = -np.inf
    for i in range(24):
        fp[i] = ft[i, _P1]
        fm[i] = ft[i, _M1]
        dp[i] = ft[i, _M3] - ft[i, _P1]
        dm[i] = ft[i, _P3] - ft[i, _M1]
        dmax = max(dmax, max(dp[i], dm[i]))
    ta = _group_tables(fp, fm, np.empty((4, 64)))
    ep = np.empty(24)
    em = np.empty(24)
    for i in range(24):
        ep[i] = _exp(dp[i] - dmax, p)
        em[i] = _exp(dm[i] - dmax, p)
    tb = _group_tables(ep, em, np.empty((4, 64)))
    return dp, dm, dmax, ta, tb


@njit(cache=True)
def _tier0(ta, tb, w, p):
    """Tier 0, group factors referenced at their maxima: W_m into w; returns (Aref, S)."""
    ea = np.empty((4, 64))
    aref = 0.0
    for g in range(4):
        mx = -np.inf
        for x in range(64):
            mx = max(mx, ta[g, x])
        aref += mx
        for x in range(64):
            ea[g, x] = _exp(ta[g, x] - mx, p) if ta[g, x] - mx >= -_CUT0 else 0.0
    part = np.zeros(64)  # column partial sums: fixed summation order, vectorizable
    for hi in range(64):
        a1 = ea[1, hi]
        b1 = tb[1, hi]
        ph = _PH[hi]
        for lo in range(64):
            par = _PL[lo] ^ ph
            b = (tb[0, lo] + b1) + (tb[2, par & 63] + tb[3, par >> 6])
            e = ((ea[0, lo] * a1) * (ea[2, par & 63] * ea[3, par >> 6])) * (b if b >= _BCUT0 else 0.0)
            w[hi * 64 + lo] = e
            part[lo] += e
    return aref, _sum(part)


@njit(cache=True)
def _word_logits(ta, abuf):
    """A_m of every word into abuf (4096,); returns (max A, the first word m* reaching it)."""
    colmax = np.full(64, -np.inf)
    for hi in range(64):
        a1 = ta[1, hi]
        ph = _PH[hi]
        for lo in range(64):
            par = _PL[lo] ^ ph
            a = (ta[0, lo] + a1) + (ta[2, par & 63] + ta[3, par >> 6])
            abuf[hi * 64 + lo] = a
            colmax[lo] = max(colmax[lo], a)
    amax = -np.inf
    for lo in range(64):
        amax = max(amax, colmax[lo])
    mstar = 0
    while abuf[mstar] != amax:  # the first best word
        mstar += 1
    return amax, mstar


@njit(cache=True)
def _tier1(ta, tb, abuf, amax, mstar, w, p):
    """Tier 1, group factors referenced at the best word m*: W_m into w; returns S."""
    ea = np.empty((4, 64))
    ps = _PL[mstar & 63] ^ _PH[mstar >> 6]
    xs = (mstar & 63, mstar >> 6, ps & 63, ps >> 6)
    for g in range(4):
        r = ta[g, xs[g]]
        for x in range(64):
            ea[g, x] = _exp(ta[g, x] - r, p)  # ≤ e^_GATE1
    part = np.zeros(64)
    for hi in range(64):
        a1 = ea[1, hi]
        b1 = tb[1, hi]
        ph = _PH[hi]
        for lo in range(64):
            par = _PL[lo] ^ ph
            m = hi * 64 + lo
            e = 0.0
            if abuf[m] - amax >= -_CUT1:
                b = (tb[0, lo] + b1) + (tb[2, par & 63] + tb[3, par >> 6])
                if b >= _BCUT1:
                    e = ((ea[0, lo] * a1) * (ea[2, par & 63] * ea[3, par >> 6])) * b
            w[m] = e
            part[lo] += e
    return _sum(part)


@njit(cache=True)
def _sum(x):
    s = 0.0
    for k in range(x.shape[0]):
        s += x[k]
    return s


@njit(cache=True)
def _shape2_exact(dp, dm, w, abuf, p):
    """Shape-2 weights for any f (abuf holds A_m): W_m = e^{A_m + r_k − Y}·Σ_j e^{d_j(s_j) − r_k}.

    ``b_m`` = the word's largest d (max of 4 group maxima) and ``Y = max_m (A_m + b_m)``,
    so S ≥ 1. References ``r_0 > r_1 > …`` are picked greedily from the sorted 48 d's so
    that every d lies in some ``[r_k − _RSPAN, r_k]``; word m uses the smallest ``r_k ≥
    b_m``, hence its B-sum lies in [e^-_RSPAN, 24] and its exp factor in [e^-_YCUT2,
    e^_RSPAN]. Words with ``A_m + b_m < Y − _YCUT2`` (P < 24e^-_YCUT2) are set to 0.
    """
    tmax = np.empty((4, 64))
    for g in range(4):
        tmax[g, 0] = -np.inf
        for k in range(6):
            for x in range(1 << k):
                tmax[g, x + (1 << k)] = max(tmax[g, x], dm[6 * g + k])
                tmax[g, x] = max(tmax[g, x], dp[6 * g + k])
    vals = np.sort(np.concatenate((dp, dm)))[::-1]
    refs = np.empty(48)
    nref = 0
    for v in vals:
        if nref == 0 or v < refs[nref - 1] - _RSPAN:
            refs[nref] = v
            nref += 1
    tb = np.empty((nref, 4, 64))
    ep = np.empty(24)
    em = np.empty(24)
    for k in range(nref):  # e^{d − r_k}; entries with d > r_k are never read for ref k
        for i in range(24):
            ep[i] = _exp(min(dp[i] - refs[k], 0.0), p)
            em[i] = _exp(min(dm[i] - refs[k], 0.0), p)
        _group_tables(ep, em, tb[k])
    ymax = -np.inf
    for hi in range(64):
        ph = _PH[hi]
        for lo in range(64):
            par = _PL[lo] ^ ph
            m = hi * 64 + lo
            bm = max(max(tmax[0, lo], tmax[1, hi]), max(tmax[2, par & 63], tmax[3, par >> 6]))
            ymax = max(ymax, abuf[m] + bm)
    s = 0.0
    for hi in range(64):
        ph = _PH[hi]
        for lo in range(64):
            par = _PL[lo] ^ ph
            m = hi * 64 + lo
            bm = max(max(tmax[0, lo], tmax[1, hi]), max(tmax[2, par & 63], tmax[3, par >> 6]))
            e = 0.0
            if abuf[m] + bm - ymax >= -_YCUT2:
                k = 0
                while refs[k] - _RSPAN > bm:
                    k += 1
                b = (tb[k, 0, lo] + tb[k, 1, hi]) + (tb[k, 2, par & 63] + tb[k, 3, par >> 6])
                e = _exp(abuf[m] + refs[k] - ymax, p) * b  # exponent ≥ −_YCUT2: never flushed
            w[m] = e
            s += e
    return ymax + _log(s, p), s


@njit(cache=True)
def _lse3(a, b, c, p):
    mx = max(a, max(b, c))
    return mx + _log((_exp(a - mx, p) + _exp(b - mx, p)) + _exp(c - mx, p), p)


@njit(cache=True)
def _token_parts(ft, w0, w1, w2, abuf, out, p):
    """out[:4] = (log Z0, log Z1, log Z2, log Z); out[4:7] = the sums of w0, w1, w2."""
    f0 = _f0sum(ft)
    out[0], out[4] = _shape0(ft, f0, w0, p)
    out[1], out[5] = _shape1(ft, f0, w1, p)
    out[2], out[6], _ = _shape2(ft, w2, abuf, p)
    out[3] = _lse3(out[0], out[1], out[2], p)


@njit(cache=True)
def _minor_row(ft, shape, major, out, p):
    """P(minor | shape, major) into out (4 / 128 / 24,)."""
    if shape == 0:
        i = PAIRS[major, 0]
        j = PAIRS[major, 1]
        for b in range(4):
            out[b] = ft[i, _M4 if b & 1 else _P4] + ft[j, _M4 if b & 2 else _P4]
    elif shape == 1:
        for b in range(128):
            x = 0.0
            par = 0
            for k in range(8):
                minus = ((b >> k) & 1) if k < 7 else par
                par ^= minus
                x += ft[_OCT[major, k], _M2 if minus else _P2]
            out[b] = x
    else:
        c = _MASKS[major]
        for j in range(24):
            out[j] = ft[j, _P3] - ft[j, _M1] if (c >> j) & 1 else ft[j, _M3] - ft[j, _P1]
    _, s = _normalize_exp(out, p)
    for k in range(out.shape[0]):
        out[k] = out[k] / s


# ----------------------------------------------------------------------------- batch kernels


@njit(cache=True)
def _logit_of_index(ft, idx):
    """ℓ(v) = Σ_i f_i(v_i) for the codeword of index idx, summed in order i = 0..23."""
    v = np.zeros(24, np.int64)
    fill_codeword(idx, PAIRS, _OCT, _MASKS, v)
    s = 0.0
    for i in range(24):
        s += ft[i, v[i] + 4]
    return s


@njit(parallel=True, cache=True)
def _parts_nb(f, p):
    n = f.shape[0]
    out = np.empty((n, 7))
    for t in prange(n):
        _token_parts(f[t], np.empty(276), np.empty(759), np.empty(4096), np.empty(4096), out[t], p)
    return out


@njit(parallel=True, cache=True)
def _major_nb(f, shape, p):
    n = f.shape[0]
    out = np.empty((n, MAJOR_SIZES[0] if shape == 0 else (MAJOR_SIZES[1] if shape == 1 else MAJOR_SIZES[2])))
    for t in prange(n):
        row = out[t]
        if shape == 0:
            _, s = _shape0(f[t], 0.0, row, p)
        elif shape == 1:
            _, s = _shape1(f[t], 0.0, row, p)
        else:
            _, s, _ = _shape2(f[t], row, np.empty(4096), p)
        for k in range(row.shape[0]):
            row[k] = row[k] / s
    return out


@njit(parallel=True, cache=True)
def _minor_nb(f, shape, major, p):
    n = f.shape[0]
    out = np.empty((n, MINOR_SIZES[0] if shape == 0 else (MINOR_SIZES[1] if shape == 1 else MINOR_SIZES[2])))
    for t in prange(n):
        _minor_row(f[t], shape, major[t], out[t], p)
    return out


@njit(parallel=True, cache=True)
def _log_prob_nb(f, idx, p):
    n = f.shape[0]
    out = np.empty(n)
    for t in prange(n):
        parts = np.empty(7)
        _token_parts(f[t], np.empty(276), np.empty(759), np.empty(4096), np.empty(4096), parts, p)
        out[t] = _logit_of_index(f[t], idx[t]) - parts[3]
    return out


@njit(parallel=True, cache=True)
def _coding_nb(f, shape, major, row, shape_logp, maj0, maj1, maj2, min0, min1, min2, p):
    for t in prange(f.shape[0]):
        w0 = np.empty(276)
        w1 = np.empty(759)
        w2 = np.empty(4096)
        parts = np.empty(7)
        _token_parts(f[t], w0, w1, w2, np.empty(4096), parts, p)
        for k in range(3):
            shape_logp[t, k] = parts[k] - parts[3]
        s = shape[t]
        r = row[t]
        w, dst = (w0, maj0[r]) if s == 0 else ((w1, maj1[r]) if s == 1 else (w2, maj2[r]))
        for k in range(w.shape[0]):
            dst[k] = w[k] / parts[4 + s]
        _minor_row(f[t], s, major[t], min0[r] if s == 0 else (min1[r] if s == 1 else min2[r]), p)


@njit(cache=True)
def _exp_nb(x, p):
    """exp of every entry, unflushed: the portable exp when ``p``, else the platform's."""
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = xmath.exp(x[i]) if p else np.exp(x[i])
    return out
