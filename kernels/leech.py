"""The 196,560 minimal vectors of the Leech lattice Λ24: index bijection and exact search.

Codewords are handled in integer coordinates (squared norm 32; divide by √32 for unit
vectors). Every codeword has one of three shapes, built on the Golay tables of
``leechcodec.kernels.golay`` (whose orderings this module inherits).

Index bijection (part of the .lq file format; never change it)
----------------------------------------------------------------
``idx in [0, 196560)`` splits into ``(shape, major, minor)``:

- Shape 0, (±4)² 0²², 1,104 words, ``idx in [0, 1104)``: ``idx = r*4 + b``. ``r in [0, 276)``
  is the rank of the position pair ``i < j`` in lexicographic order ((0,1), (0,2), ...,
  (0,23), (1,2), ..., (22,23)), i.e. ``r = 23*i - i*(i-1)/2 + (j - i - 1)``.
  ``v_i = -4`` if bit 0 of ``b`` is set else +4; ``v_j = -4`` if bit 1 of ``b`` else +4;
  other coordinates 0. ``major = r``, ``minor = b``.
- Shape 1, (±2)⁸ 0¹⁶, 97,152 words, ``idx in [1104, 98256)``: ``idx = 1104 + o*128 + b``.
  ``o`` is the octad rank (``golay.OCTAD_POSITIONS`` order), with support positions
  ``p_0 < ... < p_7``. For ``k in 0..6``, ``v_{p_k} = -2`` if bit ``k`` of ``b`` else +2;
  ``v_{p_7} = -2`` iff ``popcount(b)`` is odd (even number of minus signs overall); other
  coordinates 0. ``major = o``, ``minor = b``.
- Shape 2, ∓3 (±1)²³, 98,304 words, ``idx in [98256, 196560)``: ``idx = 98256 + m*24 + j``
  with Golay codeword ``c = golay.GOLAY_WORDS[m]``;
  ``v_i = (-1)**c_i * (-3 if i == j else +1)``. ``major = m``, ``minor = j``.

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

import functools
import math

import numba
import numpy as np

from leechcodec.kernels import golay

__all__ = [
    "NUM_CODEWORDS",
    "SHAPE_OFFSETS",
    "SHAPE_SIZES",
    "PAIRS",
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

NUM_CODEWORDS: int = 196560
SHAPE_OFFSETS: tuple[int, int, int, int] = (0, 1104, 98256, 196560)
#: per shape: (number of majors, number of minors)
SHAPE_SIZES: tuple[tuple[int, int], ...] = ((276, 4), (759, 128), (4096, 24))

_OFF1 = SHAPE_OFFSETS[1]
_OFF2 = SHAPE_OFFSETS[2]


def _build_pairs() -> np.ndarray:
    pairs = np.array([(i, j) for i in range(24) for j in range(i + 1, 24)], dtype=np.int64)
    pairs.setflags(write=False)
    return pairs


#: ``PAIRS[r] = (i, j)``, the position pair of rank ``r``, shape ``(276, 2)`` int64.
PAIRS: np.ndarray = _build_pairs()
#: ``PAIR_RANK[i, j]`` for ``i < j`` (``-1`` elsewhere), shape ``(24, 24)`` int64.
PAIR_RANK: np.ndarray = np.full((24, 24), -1, dtype=np.int64)
PAIR_RANK[PAIRS[:, 0], PAIRS[:, 1]] = np.arange(276)
PAIR_RANK.setflags(write=False)

# Generator in reduced row-echelon form with pivots 0..11: bits 0..11 of a Golay mask are
# its message, bits 12..23 are ``_QMAP[message]``.
if not np.array_equal(golay.GOLAY_MASKS & 0xFFF, np.arange(4096)):
    raise RuntimeError("Golay generator pivots are not columns 0..11")
_QMAP: np.ndarray = (golay.GOLAY_MASKS >> 12).astype(np.int64)
_GOLAY_MASKS = np.ascontiguousarray(golay.GOLAY_MASKS, dtype=np.int64)
_OCTAD_MASKS = np.ascontiguousarray(golay.OCTAD_MASKS, dtype=np.int64)
_OCTAD_POS = np.ascontiguousarray(golay.OCTAD_POSITIONS, dtype=np.int64)
for _t in (_QMAP, _GOLAY_MASKS, _OCTAD_MASKS, _OCTAD_POS):
    _t.setflags(write=False)
del _t


# ----------------------------------------------------------------------------- index split


def split_index(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split indices ``(N,)`` into ``(shape, major, minor)``, each ``(N,)`` int64.

    ``major``: pair rank / octad rank / Golay message; ``minor``: sign bits / sign bits /
    position of the ∓3 (see the module docstring).
    """
    idx = _as_indices(idx)
    shape = np.searchsorted(np.asarray(SHAPE_OFFSETS[1:3]), idx, side="right").astype(np.int64)
    local = idx - np.asarray(SHAPE_OFFSETS, dtype=np.int64)[shape]
    n_minor = np.array([s[1] for s in SHAPE_SIZES], dtype=np.int64)[shape]
    return shape, local // n_minor, local % n_minor


def join_index(shape: np.ndarray, major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """Inverse of :func:`split_index`: ``(N,)`` ints each -> indices ``(N,)`` int64."""
    shape, major, minor = (np.asarray(a) for a in (shape, major, minor))
    for name, a in (("shape", shape), ("major", major), ("minor", minor)):
        if a.dtype.kind not in "iu":
            raise ValueError(f"{name} must be an integer array, got dtype {a.dtype}")
    shape, major, minor = np.broadcast_arrays(*(a.astype(np.int64) for a in (shape, major, minor)))
    if np.any((shape < 0) | (shape > 2)):
        raise ValueError("shape must be 0, 1 or 2")
    sizes = np.array(SHAPE_SIZES, dtype=np.int64)[shape]
    if np.any((major < 0) | (major >= sizes[..., 0]) | (minor < 0) | (minor >= sizes[..., 1])):
        raise ValueError("major/minor out of range for their shape")
    return np.asarray(SHAPE_OFFSETS, dtype=np.int64)[shape] + major * sizes[..., 1] + minor


def _as_indices(idx: np.ndarray) -> np.ndarray:
    idx = np.asarray(idx)
    if idx.dtype.kind not in "iu":
        raise ValueError(f"indices must be an integer array, got dtype {idx.dtype}")
    if idx.ndim != 1:
        raise ValueError(f"indices must have shape (N,), got {idx.shape}")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= NUM_CODEWORDS):
        raise ValueError(f"indices must lie in [0, {NUM_CODEWORDS})")
    return idx


# ------------------------------------------------------------------- index <-> codeword


@numba.njit(cache=True)
def _index_to_codeword_kernel(idx, pairs, octad_pos, golay_masks, out):
    for t in range(idx.shape[0]):
        k = idx[t]
        for i in range(24):
            out[t, i] = 0
        if k < 1104:
            r = k >> 2
            out[t, pairs[r, 0]] = -4 if k & 1 else 4
            out[t, pairs[r, 1]] = -4 if k & 2 else 4
        elif k < 98256:
            o = (k - 1104) >> 7
            b = (k - 1104) & 127
            par = 0
            for q in range(7):
                bit = (b >> q) & 1
                par ^= bit
                out[t, octad_pos[o, q]] = -2 if bit else 2
            out[t, octad_pos[o, 7]] = -2 if par else 2
        else:
            m = (k - 98256) // 24
            j = (k - 98256) % 24
            mask = golay_masks[m]
            for i in range(24):
                v = -3 if i == j else 1
                out[t, i] = -v if (mask >> i) & 1 else v


def index_to_codeword(idx: np.ndarray) -> np.ndarray:
    """Codewords of indices: ``(N,)`` int in [0, 196560) -> ``(N, 24)`` int8 (numba)."""
    idx = _as_indices(idx)
    out = np.empty((idx.shape[0], 24), dtype=np.int8)
    _index_to_codeword_kernel(idx, PAIRS, _OCTAD_POS, _GOLAY_MASKS, out)
    return out


def index_to_codeword_numpy(idx: np.ndarray) -> np.ndarray:
    """Plain-numpy twin of :func:`index_to_codeword`."""
    idx = _as_indices(idx)
    out = np.zeros((idx.shape[0], 24), dtype=np.int8)
    shape, major, minor = split_index(idx)
    rows = np.nonzero(shape == 0)[0]
    i, j, b = PAIRS[major[rows], 0], PAIRS[major[rows], 1], minor[rows]
    out[rows, i] = np.where(b & 1, -4, 4)
    out[rows, j] = np.where(b & 2, -4, 4)
    rows = np.nonzero(shape == 1)[0]
    bits = (minor[rows, None] >> np.arange(7)) & 1
    bits = np.concatenate([bits, bits.sum(axis=1, keepdims=True) & 1], axis=1)
    out[rows[:, None], _OCTAD_POS[major[rows]]] = np.where(bits == 1, -2, 2)
    rows = np.nonzero(shape == 2)[0]
    signs = 1 - 2 * golay.GOLAY_WORDS[major[rows]].astype(np.int8)
    mags = np.where(np.arange(24) == minor[rows, None], -3, 1).astype(np.int8)
    out[rows] = signs * mags
    return out


@numba.njit(cache=True, inline="always")
def _parity7(b):
    p = 0
    for q in range(7):
        p ^= (b >> q) & 1
    return p


@numba.njit(cache=True)
def _codeword_to_index_kernel(v, pair_rank, octad_masks, golay_masks, out):
    for t in range(v.shape[0]):
        out[t] = -1
        nz = 0
        nzmask = 0
        negmask = 0
        n4 = 0
        n2 = 0
        n3 = 0
        n1 = 0
        j3 = -1
        ok = True
        for i in range(24):
            x = v[t, i]
            if x != 0:
                nz += 1
                nzmask |= 1 << i
            if x < 0:
                negmask |= 1 << i
            a = abs(x)
            if a == 4:
                n4 += 1
            elif a == 2:
                n2 += 1
            elif a == 3:
                n3 += 1
                j3 = i
            elif a == 1:
                n1 += 1
            elif a != 0:
                ok = False
        if not ok:
            continue
        if nz == 2 and n4 == 2:
            first = -1
            second = -1
            for i in range(24):
                if (nzmask >> i) & 1:
                    if first < 0:
                        first = i
                    else:
                        second = i
            b = ((negmask >> first) & 1) | (((negmask >> second) & 1) << 1)
            out[t] = pair_rank[first, second] * 4 + b
        elif nz == 8 and n2 == 8:
            o = np.searchsorted(octad_masks, nzmask)
            if o >= octad_masks.shape[0] or octad_masks[o] != nzmask:
                continue
            b = 0
            cnt = 0
            for i in range(24):
                if (nzmask >> i) & 1:
                    neg = (negmask >> i) & 1
                    if cnt < 7:
                        b |= neg << cnt
                    elif neg != _parity7(b):
                        ok = False
                    cnt += 1
            if ok:
                out[t] = 1104 + o * 128 + b
        elif nz == 24 and n3 == 1 and n1 == 23:
            cmask = negmask ^ (1 << j3)
            m = cmask & 0xFFF
            if golay_masks[m] == cmask:
                out[t] = 98256 + m * 24 + j3


def _as_codewords(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v)
    if v.dtype.kind not in "iu":
        raise ValueError(f"codewords must be an integer array, got dtype {v.dtype}")
    if v.ndim != 2 or v.shape[1] != 24:
        raise ValueError(f"codewords must have shape (N, 24), got {v.shape}")
    return np.ascontiguousarray(v, dtype=np.int64)


def _raise_bad(out: np.ndarray) -> None:
    bad = np.nonzero(out < 0)[0]
    if bad.size:
        raise ValueError(f"{bad.size} row(s) are not Leech minimal vectors (first: row {bad[0]})")


def codeword_to_index(v: np.ndarray) -> np.ndarray:
    """Indices of codewords: ``(N, 24)`` int (norm² 32) -> ``(N,)`` int64 (numba).

    Raises ``ValueError`` if any row is not one of the 196,560 minimal vectors.
    """
    v = _as_codewords(v)
    out = np.empty(v.shape[0], dtype=np.int64)
    _codeword_to_index_kernel(v, PAIR_RANK, _OCTAD_MASKS, _GOLAY_MASKS, out)
    _raise_bad(out)
    return out


def codeword_to_index_numpy(v: np.ndarray) -> np.ndarray:
    """Plain-numpy twin of :func:`codeword_to_index`."""
    v = _as_codewords(v)
    n = v.shape[0]
    out = np.full(n, -1, dtype=np.int64)
    pw = np.int64(1) << np.arange(24, dtype=np.int64)
    a = np.abs(v)
    nzmask = (v != 0).astype(np.int64) @ pw
    negmask = (v < 0).astype(np.int64) @ pw
    nz = (v != 0).sum(axis=1)
    # shape 0
    rows = np.nonzero((nz == 2) & ((a == 4).sum(axis=1) == 2))[0]
    if rows.size:
        ij = np.sort(np.argsort(a[rows] == 0, axis=1, kind="stable")[:, :2], axis=1)
        neg = v[rows[:, None], ij] < 0
        out[rows] = PAIR_RANK[ij[:, 0], ij[:, 1]] * 4 + neg[:, 0] + 2 * neg[:, 1]
    # shape 1
    rows = np.nonzero((nz == 8) & ((a == 2).sum(axis=1) == 8))[0]
    if rows.size:
        o = np.minimum(np.searchsorted(_OCTAD_MASKS, nzmask[rows]), _OCTAD_MASKS.size - 1)
        good = _OCTAD_MASKS[o] == nzmask[rows]
        neg = (v[rows[:, None], _OCTAD_POS[o]] < 0).astype(np.int64)
        good &= neg.sum(axis=1) % 2 == 0
        b = neg[:, :7] @ (np.int64(1) << np.arange(7, dtype=np.int64))
        out[rows[good]] = 1104 + o[good] * 128 + b[good]
    # shape 2
    rows = np.nonzero((nz == 24) & ((a == 3).sum(axis=1) == 1) & ((a == 1).sum(axis=1) == 23))[0]
    if rows.size:
        j = np.argmax(a[rows] == 3, axis=1)
        cmask = negmask[rows] ^ (np.int64(1) << j)
        m = cmask & 0xFFF
        good = _GOLAY_MASKS[m] == cmask
        out[rows[good]] = 98256 + m[good] * 24 + j[good]
    _raise_bad(out)
    return out


@functools.lru_cache(maxsize=1)
def all_codewords() -> np.ndarray:
    """All 196,560 codewords in index order, ``(196560, 24)`` int8, read-only (cached)."""
    cw = index_to_codeword(np.arange(NUM_CODEWORDS, dtype=np.int64))
    cw.setflags(write=False)
    return cw


# --------------------------------------------------------------------------------- search


def as_tokens(x: np.ndarray) -> np.ndarray:
    """Validate search input ``(N, 24)`` float16/32/64, finite; return C-contiguous float64.

    Raises ``ValueError`` on any other rank, width or dtype, and on NaN or inf.
    """
    x = np.asarray(x)
    if x.dtype not in (np.float16, np.float32, np.float64):
        raise ValueError(f"tokens must be float16/float32/float64, got dtype {x.dtype}")
    if x.ndim != 2 or x.shape[1] != 24:
        raise ValueError(f"tokens must have shape (N, 24), got {x.shape}")
    x = np.ascontiguousarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError("tokens contain NaN or inf")
    return x


# Search tables. Golay word m < 2048 (message bit 11 clear) and its complement
# m ^ 0xFFF (mask ^ 0xFFFFFF) share |S|: S(complement) = -S(m). The sign sums over
# coordinates 0..10 and 12..22 (coordinates 11 and 23 taken positive) are 2048-entry
# tables; the non-pivot half of word m is tn[_HALF_Q[m]] times _HALF_SIGN[m].
_HALF_Q: np.ndarray = np.where(_QMAP[:2048] & 0x800, _QMAP[:2048] ^ 0xFFF, _QMAP[:2048])
_HALF_SIGN: np.ndarray = np.where(_QMAP[:2048] & 0x800, -1.0, 1.0)
#: octad support split in three 8-bit chunks (coordinates 0..7, 8..15, 16..23), (3, 768);
#: columns 759.. are empty padding (their sum 0 never beats a best score >= 0)
_OCTAD_CHUNKS: np.ndarray = np.zeros((3, 768), dtype=np.int64)
_OCTAD_CHUNKS[:, :759] = [(_OCTAD_MASKS >> (8 * c)) & 255 for c in range(3)]
_OCTAD_POS_T = np.ascontiguousarray(_OCTAD_POS.T)
for _t in (_HALF_Q, _HALF_SIGN, _OCTAD_CHUNKS, _OCTAD_POS_T):
    _t.setflags(write=False)
del _t


@numba.njit(cache=True)
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


@numba.njit(cache=True)
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


@numba.njit(cache=True)
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


@numba.njit(cache=True)
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


@numba.njit(cache=True)
def _parity24(v):
    v ^= v >> 16
    v ^= v >> 8
    v ^= v >> 4
    v ^= v >> 2
    v ^= v >> 1
    return v & 1


@numba.njit(cache=True)
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


@numba.njit(cache=True)
def _lowest_bit(low):
    """Position of the single set bit of ``low`` in [1, 2**31] (de Bruijn multiplication;
    no overflow, so it also runs as plain Python)."""
    return _DEBRUIJN_POS[((low * _DEBRUIJN) & 0xFFFFFFFF) >> 27]


@numba.njit(cache=True)
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
        return major * 4 + (xs[i] < 0) + 2 * (xs[j] < 0)
    if shape == 1:
        return 1104 + major * 128 + _octad_signs(xs, a, octad_post[:, major])
    mask = golay_masks[major]
    lo = _word_min(mask ^ negmask, amin, mx)
    for i in range(24):
        v = -xs[i] if (mask >> i) & 1 else xs[i]
        if v == lo:
            return 98256 + major * 24 + i
    return -1  # unreachable for finite input


@numba.njit(cache=True)
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
    _OCTAD_CHUNKS,
    _OCTAD_MASKS,
    _OCTAD_POS_T,
    _GOLAY_MASKS,
    _HALF_Q.astype(np.uint64),
    _HALF_SIGN,
    PAIR_RANK,
)


@numba.njit(parallel=True, cache=True)
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


# ------------------------------------------------------------------------ numpy twin, oracle


def _doubling_np(cols: np.ndarray, init: np.ndarray, step) -> np.ndarray:
    """Tables ``t[:, u]`` over the bits ``u`` of ``cols`` (n, K), built like the numba loops:
    ``t[:, 0] = init``, ``t[:, u + 2**k] = step(t[:, u], cols[:, k])`` for ``u < 2**k``."""
    n, kk = cols.shape
    t = np.empty((n, 1 << kk))
    t[:, 0] = init
    h = 1
    for k in range(kk):
        t[:, h : 2 * h] = step(t[:, :h], cols[:, k : k + 1])
        h *= 2
    return t


def _search_chunk_numpy(x: np.ndarray) -> np.ndarray:
    n = x.shape[0]
    r = np.arange(n)
    e = np.frexp(np.abs(x).max(axis=1))[1]
    xs = np.ldexp(x, -e[:, None])
    a = np.abs(xs)
    neg = xs < 0
    negmask = neg.astype(np.int64) @ (np.int64(1) << np.arange(24, dtype=np.int64))
    # shape 0
    i1 = np.argmax(a, axis=1)
    a_other = a.copy()
    a_other[r, i1] = -1.0
    i2 = np.argmax(a_other, axis=1)
    sc0 = 4.0 * (a[r, i1] + a[r, i2])
    # shape 1
    sa = [_doubling_np(a[:, 8 * c : 8 * c + 8], 0.0, np.add) for c in range(3)]
    ch = _OCTAD_CHUNKS[:, :759]
    s1 = (sa[0][:, ch[0]] + sa[1][:, ch[1]]) + sa[2][:, ch[2]]
    odd = neg[:, _OCTAD_POS].sum(axis=2) & 1
    amin8 = a[:, _OCTAD_POS].min(axis=2)
    sc1 = np.where(odd == 1, 2.0 * s1 - 4.0 * amin8, 2.0 * s1)
    o1 = np.argmax(sc1, axis=1)
    best1 = sc1[r, o1]
    # shape 2
    s_half = np.zeros(n)
    for k in range(12):
        s_half = s_half + xs[:, k]
    tp = _doubling_np(xs[:, :11], s_half, lambda t, v: t - 2.0 * v)
    s_half = np.zeros(n)
    for k in range(12, 24):
        s_half = s_half + xs[:, k]
    tn = _doubling_np(xs[:, 12:23], s_half, lambda t, v: t - 2.0 * v)
    s_word = np.empty((n, 4096))
    s_word[:, :2048] = tp + _HALF_SIGN * np.take(tn, _HALF_Q, axis=1)
    s_word[:, 2048:] = -s_word[:, 2047::-1]  # word m ^ 0xFFF = 4095 - m
    # mx_c[err_c] with err = mask ^ negmask: permute each table by negmask's chunk, then
    # look it up at the (constant) chunk of the Golay mask.
    big = np.zeros((n, 4096))
    for c in range(4):
        mx = _doubling_np(a[:, 6 * c : 6 * c + 6], 0.0, lambda w, v: np.where(w > v, w, v))
        neg_c = (negmask[:, None] >> (6 * c)) & 63
        mx = np.take_along_axis(mx, np.arange(64)[None, :] ^ neg_c, axis=1)
        big = np.maximum(big, np.take(mx, (_GOLAY_MASKS >> (6 * c)) & 63, axis=1))
    lo = -big
    # the one word with mask == negmask (if any) has no negative s_j x_j: lo = min |x|
    m0 = negmask & 0xFFF
    hit = np.nonzero(_GOLAY_MASKS[m0] == negmask)[0]
    lo[hit, m0[hit]] = a[hit].min(axis=1)
    sc2 = s_word - 4.0 * lo
    m2 = np.argmax(sc2, axis=1)
    best2 = sc2[r, m2]
    # best shape; ties go to the smaller shape
    shape = np.where((sc0 >= best1) & (sc0 >= best2), 0, np.where(best1 >= best2, 1, 2))
    out = np.empty(n, dtype=np.int64)
    # minors
    rows = np.nonzero(shape == 0)[0]
    i = np.minimum(i1[rows], i2[rows])
    j = np.maximum(i1[rows], i2[rows])
    out[rows] = PAIR_RANK[i, j] * 4 + neg[rows, i] + 2 * neg[rows, j]
    rows = np.nonzero(shape == 1)[0]
    out[rows] = 1104 + o1[rows] * 128 + _octad_signs_numpy(xs[rows], o1[rows])
    rows = np.nonzero(shape == 2)[0]
    signed = np.where(golay.GOLAY_WORDS[m2[rows]] == 1, -xs[rows], xs[rows])
    jj = np.argmax(signed == signed.min(axis=1, keepdims=True), axis=1)
    out[rows] = 98256 + m2[rows] * 24 + jj
    return out


def _octad_signs_numpy(xs: np.ndarray, o: np.ndarray) -> np.ndarray:
    """Vectorized ``_octad_signs``: rows ``xs`` (n, 24), octads ``o`` (n,) -> ``b`` (n,)."""
    r = np.arange(xs.shape[0])[:, None]
    pos = _OCTAD_POS[o]
    v = xs[r, pos]
    negs = (v < 0).astype(np.int64)
    av = np.abs(v)
    b = negs[:, :7] @ (np.int64(1) << np.arange(7, dtype=np.int64))
    odd = negs.sum(axis=1) % 2 == 1
    cand = av == av.min(axis=1, keepdims=True)
    k = np.arange(7)
    neg_cand = cand[:, :7] & (negs[:, :7] == 1)
    k_clear = np.where(neg_cand, k, -1).max(axis=1)
    k_set = np.where(cand[:, :7], k, 7).min(axis=1)
    flipped = np.where(
        k_clear >= 0,
        b & ~(np.int64(1) << np.maximum(k_clear, 0)),
        np.where(cand[:, 7], b, b | (np.int64(1) << np.minimum(k_set, 6))),
    )
    return np.where(odd, flipped, b)


def search_numpy(x: np.ndarray, chunk: int = 128) -> np.ndarray:
    """Plain-numpy twin of :func:`search_numba` (same arithmetic, identical output).

    ``(N, 24)`` float -> ``(N,)`` int64, processed ``chunk`` rows at a time.
    """
    x = as_tokens(x)
    out = np.empty(x.shape[0], dtype=np.int64)
    for start in range(0, x.shape[0], chunk):
        out[start : start + chunk] = _search_chunk_numpy(x[start : start + chunk])
    return out


@functools.lru_cache(maxsize=1)
def _codebook_t64() -> np.ndarray:
    cb = np.ascontiguousarray(all_codewords().T, dtype=np.float64)
    cb.setflags(write=False)
    return cb


def search_bruteforce(x: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Test oracle: argmax of ``x @ all_codewords().T`` in float64, ``chunk`` rows at a time.

    ``(N, 24)`` float -> ``(N,)`` int64; ties go to the smallest index (first maximum).
    """
    x = as_tokens(x)
    cb = _codebook_t64()
    out = np.empty(x.shape[0], dtype=np.int64)
    for start in range(0, x.shape[0], chunk):
        out[start : start + chunk] = np.argmax(x[start : start + chunk] @ cb, axis=1)
    return out
