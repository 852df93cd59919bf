"""Plain-numpy twin of the numba Λ24 search, and the brute-force test oracle.

:func:`search_numpy` scores every candidate with the same float64 operations as
:func:`leechcodec.kernels.leech.search_numba`, unpruned, so the two agree bit for bit
(the readable spec of the kernel). :func:`search_bruteforce` takes the argmax of the
inner products with all 196,560 codewords (ties to the smallest index). The tie rule and
accepted inputs are those of :mod:`leechcodec.kernels.leech`.
"""

from __future__ import annotations

import functools

import numpy as np

from leechcodec.kernels import golay
from leechcodec.kernels.index_layout import NUM_CODEWORDS, PAIR_RANK, join
from leechcodec.kernels.leech_index import GOLAY_MASKS, OCTAD_POS, all_codewords
from leechcodec.kernels.search_tables import HALF_Q, HALF_SIGN, OCTAD_CHUNKS, as_tokens

__all__ = ["search_numpy", "search_bruteforce", "adversarial_tokens"]


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
    """Indices ``(n,)`` of rows ``x`` ``(n, 24)`` float64: each shape's best score, then the
    best shape (ties to the smaller shape) and its minor."""
    e = np.frexp(np.abs(x).max(axis=1))[1]
    xs = np.ldexp(x, -e[:, None])
    sc0, i, j = _best_pair_numpy(xs)
    best1, o1 = _best_octad_numpy(xs)
    best2, m2 = _best_word_numpy(xs)
    shape = np.where((sc0 >= best1) & (sc0 >= best2), 0, np.where(best1 >= best2, 1, 2))
    neg = xs < 0
    out = np.empty(x.shape[0], dtype=np.int64)
    rows = np.nonzero(shape == 0)[0]
    i, j = i[rows], j[rows]
    out[rows] = join(0, PAIR_RANK[i, j], neg[rows, i] + 2 * neg[rows, j])
    rows = np.nonzero(shape == 1)[0]
    out[rows] = join(1, o1[rows], _octad_signs_numpy(xs[rows], o1[rows]))
    rows = np.nonzero(shape == 2)[0]
    signed = np.where(golay.GOLAY_WORDS[m2[rows]] == 1, -xs[rows], xs[rows])
    jj = np.argmax(signed == signed.min(axis=1, keepdims=True), axis=1)
    out[rows] = join(2, m2[rows], jj)
    return out


def _best_pair_numpy(xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shape 0 for scaled rows ``xs`` ``(n, 24)``: score ``(n,)`` and the pair ``i < j``."""
    r = np.arange(xs.shape[0])
    a = np.abs(xs)
    i1 = np.argmax(a, axis=1)
    a_other = a.copy()
    a_other[r, i1] = -1.0
    i2 = np.argmax(a_other, axis=1)
    return 4.0 * (a[r, i1] + a[r, i2]), np.minimum(i1, i2), np.maximum(i1, i2)


def _best_octad_numpy(xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shape 1 for scaled rows ``xs`` ``(n, 24)``: best score and first best octad, ``(n,)`` each."""
    a = np.abs(xs)
    neg = xs < 0
    sa = [_doubling_np(a[:, 8 * c : 8 * c + 8], 0.0, np.add) for c in range(3)]
    ch = OCTAD_CHUNKS[:, :759]
    s1 = (sa[0][:, ch[0]] + sa[1][:, ch[1]]) + sa[2][:, ch[2]]
    odd = neg[:, OCTAD_POS].sum(axis=2) & 1
    amin8 = a[:, OCTAD_POS].min(axis=2)
    sc1 = np.where(odd == 1, 2.0 * s1 - 4.0 * amin8, 2.0 * s1)
    o1 = np.argmax(sc1, axis=1)
    return sc1[np.arange(xs.shape[0]), o1], o1


def _best_word_numpy(xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shape 2 for scaled rows ``xs`` ``(n, 24)``: best score and first best Golay word."""
    n = xs.shape[0]
    a = np.abs(xs)
    negmask = (xs < 0).astype(np.int64) @ (np.int64(1) << np.arange(24, dtype=np.int64))
    s_half = np.zeros(n)
    for k in range(12):
        s_half = s_half + xs[:, k]
    tp = _doubling_np(xs[:, :11], s_half, lambda t, v: t - 2.0 * v)
    s_half = np.zeros(n)
    for k in range(12, 24):
        s_half = s_half + xs[:, k]
    tn = _doubling_np(xs[:, 12:23], s_half, lambda t, v: t - 2.0 * v)
    s_word = np.empty((n, 4096))
    s_word[:, :2048] = tp + HALF_SIGN * np.take(tn, HALF_Q, axis=1)
    s_word[:, 2048:] = -s_word[:, 2047::-1]  # word m ^ 0xFFF = 4095 - m
    # mx_c[err_c] with err = mask ^ negmask: permute each table by negmask's chunk, then
    # look it up at the (constant) chunk of the Golay mask.
    big = np.zeros((n, 4096))
    for c in range(4):
        mx = _doubling_np(a[:, 6 * c : 6 * c + 6], 0.0, lambda w, v: np.where(w > v, w, v))
        neg_c = (negmask[:, None] >> (6 * c)) & 63
        mx = np.take_along_axis(mx, np.arange(64)[None, :] ^ neg_c, axis=1)
        big = np.maximum(big, np.take(mx, (GOLAY_MASKS >> (6 * c)) & 63, axis=1))
    lo = -big
    # the one word with mask == negmask (if any) has no negative s_j x_j: lo = min |x|
    m0 = negmask & 0xFFF
    hit = np.nonzero(GOLAY_MASKS[m0] == negmask)[0]
    lo[hit, m0[hit]] = a[hit].min(axis=1)
    sc2 = s_word - 4.0 * lo
    m2 = np.argmax(sc2, axis=1)
    return sc2[np.arange(n), m2], m2


def _octad_signs_numpy(xs: np.ndarray, o: np.ndarray) -> np.ndarray:
    """Vectorized ``_octad_signs``: rows ``xs`` (n, 24), octads ``o`` (n,) -> ``b`` (n,)."""
    r = np.arange(xs.shape[0])[:, None]
    pos = OCTAD_POS[o]
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


def adversarial_tokens(n: int, seed: int) -> np.ndarray:
    """Test oracle input for the searches: ``n`` float64 tokens ``(n, 24)`` full of exact and near ties, ten kinds in turn:

    scaled codewords (by powers of two), sums of two and of three codewords (midpoints:
    many codewords of equal score), small integers in [−2, 2], ±1/±3 patterns, dyadic
    eighths with half the coordinates zero, three repeated magnitudes with random signs,
    Gaussians with 20 % zeros and 10 % negative zeros, midpoints perturbed by 1e-7, and
    half codewords plus ±1/8 steps.
    """
    rng = np.random.default_rng(seed)
    cb = all_codewords().astype(np.float64)
    k = -(-n // 10)
    i, j, m = (rng.integers(0, NUM_CODEWORDS, k) for _ in range(3))
    gauss = rng.standard_normal((k, 24))
    gauss[rng.random((k, 24)) < 0.2] = 0.0
    gauss[rng.random((k, 24)) < 0.1] = -0.0
    mags = np.take_along_axis(rng.choice([0.25, 0.5, 0.75], (k, 3)), rng.integers(0, 3, (k, 24)), 1)
    parts = [
        cb[i] * np.ldexp(1.0, rng.integers(-30, 30, k))[:, None],
        cb[i] + cb[j],
        cb[i] + cb[j] + cb[m],
        rng.integers(-2, 3, (k, 24)).astype(np.float64),
        rng.choice([-1.0, 1.0], (k, 24)) * rng.choice([1.0, 3.0], (k, 24)),
        rng.integers(-8, 9, (k, 24)) / 8 * (rng.random((k, 24)) < 0.5),
        rng.choice([-1.0, 1.0], (k, 24)) * mags,
        gauss,
        cb[i] + cb[j] + 1e-7 * rng.standard_normal((k, 24)),
        cb[m] * 0.5 + rng.integers(-1, 2, (k, 24)) * 0.125,
    ]
    return np.stack(parts, 1).reshape(-1, 24)[:n]
