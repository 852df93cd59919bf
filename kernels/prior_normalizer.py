"""Per-token numba routines of the exact Leech prior: the normalizer and the word weights.

The prior's family and API are in :mod:`leechcodec.kernels.leech_prior`; this module holds
the per-token arithmetic its batch kernels run (one token's logits ``ft`` ``(24, 9)``
float64 at a time, every sum in a fixed order).

Normalizer (exact). With ``g_i(v) = f_i(v) − f_i(0)``, ``F0 = Σ_i f_i(0)``, ``Z = Z0+Z1+Z2``:

- ``Z0 = e^F0 Σ_{i<j} h_i h_j``, ``log h_i = logaddexp(g_i(4), g_i(−4))``. ``P(pair)`` is
  the normalized term; ``P(b | pair) ∝ exp(f_i(±4) + f_j(±4))``.
- ``Z1 = e^F0 Σ_o E_o``, ``E_o`` the sum of ``Π_{i∈o} e^{g_i(±2)}`` over the 128
  even-sign patterns of octad o. Per coordinate let ``M_i = max(g_i(2), g_i(−2))``, ``t_i =
  |g_i(2) − g_i(−2)|``, ``w_i = e^{−t_i}``. Relative to the octad's best pattern (log weight
  ``X_o = Σ_{i∈o} M_i``, minus-count parity π_o) a pattern flips a set S and weighs
  ``Π_S w_i``, so ``E_o = e^{X_o} Σ_{|S| ≡ π_o (mod 2)} Π_S w_i``. The parity-restricted
  sum is an (even, odd) recursion over the 8 positions, ``(E, O) ← (E + O·w, O + E·w)``
  from ``(1, 0)``, with only positive terms (the textbook ``½[Π(a+b) + Π(a−b)]`` cancels
  catastrophically when π_o = 1 and the logits are large). Since disjoint sets combine as
  ``(E, O)·(E', O') = (EE' + OO', EO' + OE')``, (E, O) is tabulated per 6-coordinate
  group and subset (4 × 64 entries, by doubling, together with Σ M_i, min t_i, max w_i) and
  each octad combines its 4 subsets. For π_o = 1 the result is ``O = w_*·Q_o`` with ``w_*``
  the octad's largest w (smallest gap ``t_*``) and ``Q_o ∈ [1, 128]``:
  ``log E_o = X_o − t_* + log Q_o``; for π_o = 0, ``Q_o = E ∈ [1, 128]``. ``O / w_*`` is
  accurate while ``w_* ≥ 1e-150`` (lost terms are below 1e-158); otherwise (all 8 gaps
  > 345 nats) the octad reruns the recursion on ``(E, O / w_*)`` with ``w_i / w_*`` by exp.
  ``P(o) ∝ e^{X_o − π_o t_*} Q_o``; ``P(b | o) ∝ exp Σ_k f_{p_k}(v_{p_k})``.
- ``Z2 = Σ_m e^{A_m} B_m`` with ``s = (−1)^c``, ``A_m = Σ_i f_i(s_i)``, ``B_m = Σ_j
  e^{d_j(s_j)}``, ``d_j(σ) = f_j(−3σ) − f_j(σ)``: per Golay word its sign logits and a
  24-term sum. ``P(m) ∝ e^{A_m} B_m``, ``P(j | m) ∝ e^{d_j(s_j)}``.

The 4,096×24 part (the hot loop). The generator in ``golay`` is systematic: codeword bits
0..11 are the message m and bits 12..23 are ``π(m) = mP``, linear over GF(2), so ``π(m) =
PL[m & 63] ^ PH[m >> 6]``. Split the 24 coordinates into 4 groups of 6 (message low/high,
parity low/high); per group, 64-entry tables built by doubling give Σ f_i(s_i) and
Σ e^{d_j(s_j) − D} (D the largest of the 48 d's) over the group, so a word costs 4 lookups
and 3 adds per quantity instead of 24 terms. With ``b'_m = B_m e^{−D}``:

0. Tier 0 (no exp per word): ``e^{A_m − Aref} = Π_g e^{T_g(x_g) − max T_g}`` with ``Aref =
   Σ_g max T_g`` (the unconstrained sign optimum); ``W_m = e^{A_m − Aref}·b'_m``, ``S = Σ
   W_m``, ``log Z2 = Aref + D + log S``, ``P(m) = W_m / S``. Kept when S ≥ e^-60: the best
   Golay word is within ~60 nats of the optimum — for every token of ``bench_prior``'s
   Gaussian family (s ∈ [0.6, 2], 6–9 bits of entropy per token); much sharper priors
   (s ≲ 0.3, under a bit per token) take tier 1 or 2.
1. Tier 1: ``A_m`` summed for all words; its max and first argmax m* are the Golay
   maximum-likelihood decoding of the sign logits. The same product with the group factors
   referenced at m* instead, ``W_m = e^{A_m − max A}·b'_m``, ``log Z2 = max A + D + log S``;
   kept when ``Aref − max A ≤ 450`` and S ≥ e^-150.
2. Exact tier, for any f: ``b_m`` = the word's largest d (max of 4 group maxima),
   ``Y = max_m (A_m + b_m)`` (so S ≥ 1); exp references ``r_0 > r_1 > …`` are taken
   greedily from the sorted d's, 500 nats apart, and word m uses the smallest ``r_k ≥
   b_m``: ``W_m = e^{A_m + r_k − Y}·Σ_j e^{d_j(s_j) − r_k}`` (one exp per word).

Flush thresholds (the constants below) keep every product a normal double — libm and the
FPU are ~10× slower on subnormals — and drop only words with P < 1e-30 of the row, so
shape-2 major entries below 1e-30 may read 0; everything else is exact to rounding.

Measured here (one thread, µs per token, Gaussian-shaped f, on a shared 2-core machine
under load, so ±30%): shapes 0 / 1 / 2 about 2 / 8 / 10 (tier 0); tiers 1 and 2 about 25
and 40 including the failed attempts before them. For comparison, a plain 24-term loop per
word for A and B with one exp per word costs 68–89, 4,096 libm exps alone 18, and a BLAS
``A = d·Gᵀ`` over a batch 4 for A alone and 14 with one exp per word (BLAS summation order
is also not fixed across builds).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from leechcodec.kernels.index_layout import PAIRS
from leechcodec.kernels.leech_index import GOLAY_MASKS as _MASKS  # (4096,) 24-bit codewords
from leechcodec.kernels.leech_index import OCTAD_MASKS as _OCTAD_MASKS  # (759,) 24-bit
from leechcodec.kernels.leech_index import OCTAD_POS as _OCT  # (759, 8)

# Shape-2 flush thresholds (nats). Tier 0 flushes group factors below e^-_CUT0 and B-sums
# below _BCUT0 (so kept products are ≥ e^-670) and is kept when S ≥ e^-_LIM0.
# Tier 1 runs when Σ_g max_g − max A ≤ _GATE1
# (so every group factor is ≤ e^450), drops words with A_m < max A − _CUT1 or B_m e^-D <
# e^-_BCUT1 (a kept word's partial products are ≥ e^-680, normal) and is kept when
# S ≥ e^-_LIM1, so a dropped word has P < 24e^{150−230} < 1e-33.
_CUT0, _LIM0 = 135.0, 60.0  # tier 0: 4·135 + 130 ≤ 708;  24e^{60−135}, e^{60−130} < 1e-30
_BCUT0 = float(np.exp(-130.0))
_SMIN0 = float(np.exp(-_LIM0))
_GATE1, _CUT1, _LIM1 = 450.0, 230.0, 150.0
_BCUT1 = float(np.exp(-230.0))
_SMIN1 = float(np.exp(-_LIM1))
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
def _exp(x):
    """exp(x) for x ≤ 0, flushed to 0 below e^-708 (libm's subnormal path is ~10× slower)."""
    return np.exp(x) if x >= _EXP_MIN else 0.0


@njit(cache=True)
def _normalize_exp(w):
    """In place: w <- exp(w - max w); returns (max, sum)."""
    mx = -np.inf
    for k in range(w.shape[0]):
        mx = max(mx, w[k])
    s = 0.0
    for k in range(w.shape[0]):
        e = _exp(w[k] - mx)
        w[k] = e
        s += e
    return mx, s


@njit(cache=True)
def _shape0(ft, f0, w):
    """Pair weights into w (276,) (unnormalized, max 1); returns (log Z0, sum of w)."""
    lh = np.empty(24)
    for i in range(24):
        a = ft[i, _P4] - ft[i, _Z]
        b = ft[i, _M4] - ft[i, _Z]
        lh[i] = max(a, b) + np.log1p(_exp(-abs(a - b)))
    for r in range(276):
        w[r] = lh[PAIRS[r, 0]] + lh[PAIRS[r, 1]]
    mx, s = _normalize_exp(w)
    return f0 + mx + np.log(s), s


@njit(cache=True)
def _shape1(ft, f0, w):
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
            v = _exp(-gap[i])
            for x in range(1 << k):
                y = x + (1 << k)
                tx[g, y] = tx[g, x] + b
                tmin[g, y] = min(tmin[g, x], gap[i])
                tmax[g, y] = max(tmax[g, x], v)
                te[g, y] = te[g, x] + to[g, x] * v
                to[g, y] = to[g, x] + te[g, x] * v
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
                    even, odd = even + odd * (ws * _exp(-gap[i])), odd + even * _exp(ts - gap[i])
                q[o] = odd
            y -= ts
        else:
            q[o] = e01 * e23 + o01 * o23
        w[o] = y
        mx = max(mx, y)
    s = 0.0
    for o in range(759):
        e = _exp(w[o] - mx) * q[o]
        w[o] = e
        s += e
    return f0 + mx + np.log(s), s


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
def _shape2(ft, w, abuf):
    """Golay-word weights into w (4096,) (unnormalized); returns (log Z2, sum of w, tier).

    Tiers 0 and 1 multiply per-group exp tables (no exp per word), referenced at the group
    maxima resp. at the best word m*; tier 2 (:func:`_shape2_exact`) is exact for any f.
    abuf receives A_m (tiers 1 and 2).
    """
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
        ep[i] = _exp(dp[i] - dmax)
        em[i] = _exp(dm[i] - dmax)
    tb = _group_tables(ep, em, np.empty((4, 64)))
    ea = np.empty((4, 64))
    aref = 0.0
    for g in range(4):
        mx = -np.inf
        for x in range(64):
            mx = max(mx, ta[g, x])
        aref += mx
        for x in range(64):
            ea[g, x] = np.exp(ta[g, x] - mx) if ta[g, x] - mx >= -_CUT0 else 0.0
    part = np.zeros(64)  # column partial sums: fixed summation order, vectorizable
    for hi in range(64):  # tier 0: group factors referenced at their maxima
        a1 = ea[1, hi]
        b1 = tb[1, hi]
        ph = _PH[hi]
        for lo in range(64):
            p = _PL[lo] ^ ph
            b = (tb[0, lo] + b1) + (tb[2, p & 63] + tb[3, p >> 6])
            e = ((ea[0, lo] * a1) * (ea[2, p & 63] * ea[3, p >> 6])) * (b if b >= _BCUT0 else 0.0)
            w[hi * 64 + lo] = e
            part[lo] += e
    s = _sum(part)
    if s >= _SMIN0:
        return aref + dmax + np.log(s), s, 0
    colmax = np.full(64, -np.inf)
    for hi in range(64):
        a1 = ta[1, hi]
        ph = _PH[hi]
        for lo in range(64):
            p = _PL[lo] ^ ph
            a = (ta[0, lo] + a1) + (ta[2, p & 63] + ta[3, p >> 6])
            abuf[hi * 64 + lo] = a
            colmax[lo] = max(colmax[lo], a)
    amax = -np.inf
    for lo in range(64):
        amax = max(amax, colmax[lo])
    mstar = 0
    while abuf[mstar] != amax:  # the first best word
        mstar += 1
    if aref - amax <= _GATE1:  # tier 1: group factors referenced at the best word m*
        ps = _PL[mstar & 63] ^ _PH[mstar >> 6]
        xs = (mstar & 63, mstar >> 6, ps & 63, ps >> 6)
        for g in range(4):
            r = ta[g, xs[g]]
            for x in range(64):
                ea[g, x] = _exp(ta[g, x] - r)  # ≤ e^_GATE1
        part[:] = 0.0
        for hi in range(64):
            a1 = ea[1, hi]
            b1 = tb[1, hi]
            ph = _PH[hi]
            for lo in range(64):
                p = _PL[lo] ^ ph
                m = hi * 64 + lo
                e = 0.0
                if abuf[m] - amax >= -_CUT1:
                    b = (tb[0, lo] + b1) + (tb[2, p & 63] + tb[3, p >> 6])
                    if b >= _BCUT1:
                        e = ((ea[0, lo] * a1) * (ea[2, p & 63] * ea[3, p >> 6])) * b
                w[m] = e
                part[lo] += e
        s = _sum(part)
        if s >= _SMIN1:
            return amax + dmax + np.log(s), s, 1
    z, s = _shape2_exact(dp, dm, w, abuf)
    return z, s, 2


@njit(cache=True)
def _sum(x):
    s = 0.0
    for k in range(x.shape[0]):
        s += x[k]
    return s


@njit(cache=True)
def _shape2_exact(dp, dm, w, abuf):
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
            ep[i] = _exp(min(dp[i] - refs[k], 0.0))
            em[i] = _exp(min(dm[i] - refs[k], 0.0))
        _group_tables(ep, em, tb[k])
    ymax = -np.inf
    for hi in range(64):
        ph = _PH[hi]
        for lo in range(64):
            p = _PL[lo] ^ ph
            m = hi * 64 + lo
            bm = max(max(tmax[0, lo], tmax[1, hi]), max(tmax[2, p & 63], tmax[3, p >> 6]))
            ymax = max(ymax, abuf[m] + bm)
    s = 0.0
    for hi in range(64):
        ph = _PH[hi]
        for lo in range(64):
            p = _PL[lo] ^ ph
            m = hi * 64 + lo
            bm = max(max(tmax[0, lo], tmax[1, hi]), max(tmax[2, p & 63], tmax[3, p >> 6]))
            e = 0.0
            if abuf[m] + bm - ymax >= -_YCUT2:
                k = 0
                while refs[k] - _RSPAN > bm:
                    k += 1
                b = (tb[k, 0, lo] + tb[k, 1, hi]) + (tb[k, 2, p & 63] + tb[k, 3, p >> 6])
                e = np.exp(abuf[m] + refs[k] - ymax) * b
            w[m] = e
            s += e
    return ymax + np.log(s), s


@njit(cache=True)
def _lse3(a, b, c):
    mx = max(a, max(b, c))
    return mx + np.log((_exp(a - mx) + _exp(b - mx)) + _exp(c - mx))


@njit(cache=True)
def _token_parts(ft, w0, w1, w2, abuf, out):
    """out[:4] = (log Z0, log Z1, log Z2, log Z); out[4:7] = the sums of w0, w1, w2."""
    f0 = _f0sum(ft)
    out[0], out[4] = _shape0(ft, f0, w0)
    out[1], out[5] = _shape1(ft, f0, w1)
    out[2], out[6], _ = _shape2(ft, w2, abuf)
    out[3] = _lse3(out[0], out[1], out[2])


@njit(cache=True)
def _minor_row(ft, shape, major, out):
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
    _, s = _normalize_exp(out)
    for k in range(out.shape[0]):
        out[k] = out[k] / s
