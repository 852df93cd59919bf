"""The 196,560 minimal vectors of the Leech lattice Λ24: exact nearest-codeword search.

This is the package's entry point for Λ24: besides the numba search defined here it
re-exports the index layout (:mod:`leechcodec.kernels.index_layout`, part of the .lq file
format), the index bijection (:mod:`leechcodec.kernels.leech_index`) and the search's numpy
twin and oracle (:mod:`leechcodec.kernels.search_reference`).

Codewords are handled in integer coordinates (squared norm 32; divide by √32 for unit
vectors). Every codeword has one of three shapes, built on the Golay tables of
``leechcodec.kernels.golay``; ``idx in [0, 196560)`` splits into ``(shape, major, minor)``
as :mod:`leechcodec.kernels.index_layout` specifies.

Search
------
``search_*(x)`` returns, for each row of ``x`` ``(N, 24)``, the index of the codeword with
the largest inner product ``<v, x>`` with the *unnormalized* row (the same codeword as the
nearest unit codeword to the normalized row). Three implementations give the same
answer: ``search_numba`` (structured, parallel over tokens), ``search_numpy`` (its plain
numpy twin, identical arithmetic, hence identical output bit for bit), and
``search_bruteforce`` (chunked matmul against :func:`all_codewords`, the test oracle).

How ``search_numba`` works, per token: shape 0 from the two largest ``|x_i|``; shape 1
from octad sums of ``|x|`` (three 8-bit subset-sum tables), screened with the bound
``2 sum|x|``; shape 2 from the sign sums ``S(m) = sum_i (-1)^c_i x_i`` of the 2048 Golay
words with message bit 11 clear (two 11-bit doubling tables: coordinates 0..11 carry the
message bits, the other half is looked up through a fixed permutation), their complements
having ``-S``; words are screened with the bound ``S + 4 max|x|`` and scored exactly with
6-bit subset-max tables. Candidates are compared by (score, index), and a screen only
drops candidates whose score is below the current best, so pruning never changes the
result. ``search_numpy`` scores every candidate with the same operations, unpruned.

Tie rule: among codewords of maximal inner product, the **smallest index** wins. The
structured kernels compute scores in float64 after scaling each row by an exact power of
two (largest ``|x_i|`` in [0.5, 1)); whenever these float64 computations are exact (e.g.
inputs that are integers or halves of moderate size, possibly scaled by a power of two)
the scores are exact and the tie rule holds exactly. For general inputs, scores that
differ by less than a few ulps may be ordered differently from exact arithmetic (and from
the brute-force oracle); ``search_numba`` and ``search_numpy`` still agree exactly.
The zero vector scores 0 against every codeword and therefore returns index 0.
Rows whose entries span more than ~2**1000 in magnitude may lose their tiniest entries
to underflow in the scaling (documented limitation; irrelevant for real data).

Accepted inputs: ``(N, 24)`` arrays of dtype float16/float32/float64, finite. Integer,
bool, complex and other dtypes, NaN, inf and wrong shapes raise ``ValueError``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from leechcodec.kernels._jit import njit
from leechcodec.kernels.index_layout import (
    NUM_CODEWORDS,
    PAIR_RANK,
    PAIRS,
    SHAPE_OFFSETS,
    SHAPE_SIZES,
    join_index,
    split_index,
)
from leechcodec.kernels.leech_index import (
    GOLAY_MASKS,
    OCTAD_MASKS,
    all_codewords,
    codeword_to_index,
    codeword_to_index_numpy,
    index_to_codeword,
    index_to_codeword_numpy,
    join_nb,
)
from leechcodec.kernels.search_reference import search_bruteforce, search_numpy
from leechcodec.kernels.search_tables import HALF_Q, HALF_SIGN, OCTAD_CHUNKS, OCTAD_POS_T, as_tokens

__all__ = [
    "NUM_CODEWORDS",
    "SHAPE_OFFSETS",
    "SHAPE_SIZES",
    "PAIRS",
    "PAIR_RANK",
    "split_index",
    "join_index",
    "index_to_codeword",
    "index_to_codeword_numpy",
    "codeword_to_index",
    "codeword_to_index_numpy",
    "all_codewords",
    "as_tokens",
    "search_numba",
    "search_numpy",
    "search_bruteforce",
]



@njit(cache=True)
def _scale(xr, xs):
    """``xs = xr * 2**-e`` (correctly rounded, exact unless it underflows), where ``e``
    puts max |xr| in [0.5, 1); a zero row stays zero."""
    amax = 0.0
    for i in range(24):
        v = abs(xr[i])
        if v > amax:
            amax = v
    e = math.frexp(amax)[1]
    if -1021 <= e <= 1021:
        f = math.ldexp(1.0, -e)
        for i in range(24):
            xs[i] = xr[i] * f
    else:
        for i in range(24):
            xs[i] = math.ldexp(xr[i], -e)


@njit(cache=True)
def _sign_sums(xs, off, t):
    """``t[u] = sum_k (-1)**u_k * xs[off + k]`` over ``k in 0..11`` for all 11-bit ``u``
    (coordinate ``off + 11`` always +). Doubling in a fixed order, mirrored by numpy."""
    s = 0.0
    for k in range(12):
        s += xs[off + k]
    t[0] = s
    h = 1
    for k in range(11):
        v2 = 2.0 * xs[off + k]
        for u in range(h):
            t[u + h] = t[u] - v2
        h *= 2


@njit(cache=True)
def _subset_max(a, mx):
    """``mx[c, u] = max(0, max{a[6c + k] : bit k of u})`` for the four 6-bit chunks."""
    for c in range(4):
        mx[c, 0] = 0.0
        h = 1
        for k in range(6):
            v = a[6 * c + k]
            for u in range(h):
                w = mx[c, u]
                mx[c, u + h] = w if w > v else v
            h *= 2


@njit(cache=True)
def _subset_sums(a, sa):
    """``sa[c, u] = sum{a[8c + k] : bit k of u}`` (ascending k) for the three 8-bit chunks."""
    for c in range(3):
        sa[c, 0] = 0.0
        h = 1
        for k in range(8):
            v = a[8 * c + k]
            for u in range(h):
                sa[c, u + h] = sa[c, u] + v
            h *= 2


@njit(cache=True)
def _parity24(v):
    v ^= v >> 16
    v ^= v >> 8
    v ^= v >> 4
    v ^= v >> 2
    v ^= v >> 1
    return v & 1


@njit(cache=True)
def _word_min(err, amin, mx):
    """``min_j s_j x_j`` for a Golay word whose sign flips ``err = mask ^ negmask``."""
    if err == 0:
        return amin
    lo01 = max(mx[0, err & 63], mx[1, (err >> 6) & 63])
    lo23 = max(mx[2, (err >> 12) & 63], mx[3, err >> 18])
    return -max(lo01, lo23)


_DEBRUIJN = 0x077CB531
_DEBRUIJN_POS = np.zeros(32, dtype=np.int64)
_DEBRUIJN_POS[((_DEBRUIJN << np.arange(32, dtype=np.int64)) & 0xFFFFFFFF) >> 27] = np.arange(32)
_DEBRUIJN_POS.setflags(write=False)


@njit(cache=True)
def _lowest_bit(low):
    """Position of the single set bit of ``low`` in [1, 2**31] (de Bruijn multiplication;
    no overflow, so it also runs as plain Python)."""
    return _DEBRUIJN_POS[((low * _DEBRUIJN) & 0xFFFFFFFF) >> 27]


@njit(cache=True)
def _search_token(xr, xs, a, sa, mx, s1, tp, tn, tables):
    """Index of the best codeword for one row ``xr`` (24,) float64.

    Scratch: ``xs``, ``a`` (24,), ``sa`` (3, 256), ``mx`` (4, 64), ``s1`` (768,), ``tp``,
    ``tn`` (2048,); ``tables``: the constant ``_TABLES``.
    """
    octad_chunks, octad_masks, octad_post, golay_masks, half_q, half_sign, pair_rank = tables
    _scale(xr, xs)
    negmask = 0
    for i in range(24):
        a[i] = abs(xs[i])
        if xs[i] < 0:
            negmask |= 1 << i
    # A candidate replaces the best if its score is larger, or equal with a smaller index;
    # bounds skip only candidates whose score is below the best.
    # Shape 0: the two largest |x_i| (first occurrences).
    i1 = 0
    for i in range(1, 24):
        if a[i] > a[i1]:
            i1 = i
    i2 = 1 if i1 == 0 else 0
    for i in range(24):
        if i != i1 and a[i] > a[i2]:
            i2 = i
    amax = a[i1]
    best = 4.0 * (a[i1] + a[i2])
    shape = 0
    major = pair_rank[min(i1, i2), max(i1, i2)]
    # Shape 1 (octads in index order): 2 sum|x|, minus 4 min|x| if an odd number of x < 0.
    _subset_sums(a, sa)
    # Octad sums from three 8-bit chunk lookups, screened 32 at a time with the bound
    # 2 sum|x| (a vectorizable bit mask); flagged octads are scored in index order.
    for blk in range(0, 768, 32):
        flags = 0
        for k in range(32):
            o = blk + k
            s = (sa[0, octad_chunks[0, o]] + sa[1, octad_chunks[1, o]]) + sa[2, octad_chunks[2, o]]
            s1[o] = s
            flags |= np.int64(2.0 * s > best) << k
        while flags:
            low = flags & -flags
            flags ^= low
            o = blk + _lowest_bit(low)
            sc = 2.0 * s1[o]
            if _parity24(negmask & octad_masks[o]):
                amin = np.inf
                for k in range(8):
                    v = a[octad_post[k, o]]
                    if v < amin:
                        amin = v
                sc -= 4.0 * amin
            if sc > best:
                best = sc
                shape = 1
                major = o
    # Shape 2: S(m) - 4 min_j s_j x_j, s = (-1)^c, S(m) = sum_i s_i x_i, and
    # min_j s_j x_j = -max{|x_j| : s_j x_j < 0} (min |x| if none) >= -max|x|.
    _sign_sums(xs, 0, tp)
    _sign_sums(xs, 12, tn)
    _subset_max(a, mx)
    amin = a[0]
    for i in range(1, 24):
        if a[i] < amin:
            amin = a[i]
    a4 = 4.0 * amax
    # Word m < 2048 has S = tp[m] (after the lookup below), its complement m ^ 0xFFF has
    # -S. Screen both with the bound S + 4 max|x|, 32 pairs at a time (vectorizable bit
    # masks), then score the flagged words exactly.
    for m in range(2048):
        tp[m] = tp[m] + half_sign[m] * tn[half_q[m]]
    for blk in range(0, 2048, 32):
        fpos = 0
        fneg = 0
        for k in range(32):
            s = tp[blk + k]
            fpos |= np.int64(s + a4 >= best) << k
            fneg |= np.int64(a4 - s >= best) << k
        for flip in range(2):
            flags = fneg if flip else fpos
            while flags:
                low = flags & -flags
                flags ^= low
                m = blk + _lowest_bit(low)
                s = tp[m]
                if flip:
                    m ^= 0xFFF
                    s = -s
                sc = s - 4.0 * _word_min(golay_masks[m] ^ negmask, amin, mx)
                if sc > best or (sc == best and shape == 2 and m < major):
                    best = sc
                    shape = 2
                    major = m
    # Minor part of the winner.
    if shape == 0:
        i, j = min(i1, i2), max(i1, i2)
        return join_nb(0, major, (xs[i] < 0) + 2 * (xs[j] < 0))
    if shape == 1:
        return join_nb(1, major, _octad_signs(xs, a, octad_post[:, major]))
    mask = golay_masks[major]
    lo = _word_min(mask ^ negmask, amin, mx)
    for i in range(24):
        v = -xs[i] if (mask >> i) & 1 else xs[i]
        if v == lo:
            return join_nb(2, major, i)
    return -1  # unreachable for finite input


@njit(cache=True)
def _octad_signs(xs, a, pos):
    """Sign bits ``b`` of the best (smallest-index) sign pattern on one octad ``pos`` (8,)."""
    b = 0
    odd = 0
    for k in range(8):
        neg = 1 if xs[pos[k]] < 0 else 0
        odd ^= neg
        if k < 7:
            b |= neg << k
    if not odd:
        return b
    amin = np.inf
    for k in range(8):
        if a[pos[k]] < amin:
            amin = a[pos[k]]
    # Flip one coordinate of minimal |x|; among those flips the smallest b: clear the
    # highest set bit among candidates 0..6, else flip position 7, else set the lowest bit.
    for k in range(6, -1, -1):
        if a[pos[k]] == amin and (b >> k) & 1:
            return b & ~(1 << k)
    if a[pos[7]] == amin:
        return b
    for k in range(7):
        if a[pos[k]] == amin:
            return b | (1 << k)
    return -1  # unreachable


_BLOCK = 64
# (unsigned lookup indices let numba skip its negative-index wraparound)
_TABLES = (
    OCTAD_CHUNKS,
    OCTAD_MASKS,
    OCTAD_POS_T,
    GOLAY_MASKS,
    HALF_Q.astype(np.uint64),
    HALF_SIGN,
    PAIR_RANK,
)


@njit(parallel=True, cache=True)
def _search_kernel(x, tables, out):
    n = x.shape[0]
    nblk = (n + _BLOCK - 1) // _BLOCK
    for blk in numba.prange(nblk):
        xs = np.empty(24)
        a = np.empty(24)
        sa = np.empty((3, 256))
        mx = np.empty((4, 64))
        s1 = np.empty(768)
        tp = np.empty(2048)
        tn = np.empty(2048)
        for t in range(blk * _BLOCK, min(n, (blk + 1) * _BLOCK)):
            out[t] = _search_token(x[t], xs, a, sa, mx, s1, tp, tn, tables)


def search_numba(x: np.ndarray) -> np.ndarray:
    """Nearest codeword indices, structured search in numba: ``(N, 24)`` float -> ``(N,)`` int64.

    Parallel over tokens (numba threads, ``numba.set_num_threads``); see the module
    docstring for the tie rule. With numba's default ``workqueue`` threading layer, do not
    call it from several Python threads at once.
    """
    x = as_tokens(x)
    out = np.empty(x.shape[0], dtype=np.int64)
    _search_kernel(x, _TABLES, out)
    return out
