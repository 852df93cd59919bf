"""The index bijection of Λ24's 196,560 minimal vectors: index <-> integer codeword.

The layout is :mod:`leechcodec.kernels.index_layout` (part of the .lq file format).
``index_to_codeword`` and ``codeword_to_index`` are numba kernels; the ``*_numpy``
functions are their plain-numpy twins (same signatures, same outputs). The numba helpers
``join_nb``, ``split_nb`` and ``fill_codeword`` are called by kernels in other files; the
kernels' on-disk cache is keyed by all kernel sources (:mod:`leechcodec.kernels._jit`), so an
edit here recompiles those callers too.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from leechcodec.kernels._jit import njit
from leechcodec.kernels import golay
from leechcodec.kernels.index_layout import (
    NUM_CODEWORDS,
    PAIR_RANK,
    PAIRS,
    as_indices,
    join,
    split,
    split_index,
)

__all__ = [
    "index_to_codeword",
    "index_to_codeword_numpy",
    "codeword_to_index",
    "codeword_to_index_numpy",
    "all_codewords",
    "join_nb",
    "split_nb",
    "fill_codeword",
]

#: :func:`index_layout.join` and :func:`index_layout.split`, compiled for the kernels
join_nb = njit(cache=True, inline="always")(join)
split_nb = njit(cache=True, inline="always")(split)

GOLAY_MASKS = np.ascontiguousarray(golay.GOLAY_MASKS, dtype=np.int64)
OCTAD_MASKS = np.ascontiguousarray(golay.OCTAD_MASKS, dtype=np.int64)
OCTAD_POS = np.ascontiguousarray(golay.OCTAD_POSITIONS, dtype=np.int64)
for _t in (GOLAY_MASKS, OCTAD_MASKS, OCTAD_POS):
    _t.setflags(write=False)
del _t


# ----------------------------------------------------------------------------- index -> codeword


@njit(cache=True)
def fill_codeword(k, pairs, octad_pos, golay_masks, v):
    """Write the codeword of index ``k`` into ``v`` (24,) (any integer dtype); ``pairs``,
    ``octad_pos`` and ``golay_masks`` are :data:`PAIRS`, :data:`OCTAD_POS`, :data:`GOLAY_MASKS`."""
    shape, major, minor = split_nb(k)
    for i in range(24):
        v[i] = 0
    if shape == 0:
        v[pairs[major, 0]] = -4 if minor & 1 else 4
        v[pairs[major, 1]] = -4 if minor & 2 else 4
    elif shape == 1:
        par = 0
        for q in range(7):
            bit = (minor >> q) & 1
            par ^= bit
            v[octad_pos[major, q]] = -2 if bit else 2
        v[octad_pos[major, 7]] = -2 if par else 2
    else:
        mask = golay_masks[major]
        for i in range(24):
            s = -3 if i == minor else 1
            v[i] = -s if (mask >> i) & 1 else s


@njit(cache=True)
def _index_to_codeword_kernel(idx, pairs, octad_pos, golay_masks, out):
    for t in range(idx.shape[0]):
        fill_codeword(idx[t], pairs, octad_pos, golay_masks, out[t])


def index_to_codeword(idx: np.ndarray) -> np.ndarray:
    """Codewords of indices: ``(N,)`` int in [0, 196560) -> ``(N, 24)`` int8 (numba)."""
    idx = as_indices(idx)
    out = np.empty((idx.shape[0], 24), dtype=np.int8)
    _index_to_codeword_kernel(idx, PAIRS, OCTAD_POS, GOLAY_MASKS, out)
    return out


def index_to_codeword_numpy(idx: np.ndarray) -> np.ndarray:
    """Plain-numpy twin of :func:`index_to_codeword`."""
    idx = as_indices(idx)
    out = np.zeros((idx.shape[0], 24), dtype=np.int8)
    shape, major, minor = split_index(idx)
    rows = np.nonzero(shape == 0)[0]
    i, j, b = PAIRS[major[rows], 0], PAIRS[major[rows], 1], minor[rows]
    out[rows, i] = np.where(b & 1, -4, 4)
    out[rows, j] = np.where(b & 2, -4, 4)
    rows = np.nonzero(shape == 1)[0]
    bits = (minor[rows, None] >> np.arange(7)) & 1
    bits = np.concatenate([bits, bits.sum(axis=1, keepdims=True) & 1], axis=1)
    out[rows[:, None], OCTAD_POS[major[rows]]] = np.where(bits == 1, -2, 2)
    rows = np.nonzero(shape == 2)[0]
    signs = 1 - 2 * golay.GOLAY_WORDS[major[rows]].astype(np.int8)
    mags = np.where(np.arange(24) == minor[rows, None], -3, 1).astype(np.int8)
    out[rows] = signs * mags
    return out


@functools.lru_cache(maxsize=1)
def all_codewords() -> np.ndarray:
    """All 196,560 codewords in index order, ``(196560, 24)`` int8, read-only (cached)."""
    cw = index_to_codeword(np.arange(NUM_CODEWORDS, dtype=np.int64))
    cw.setflags(write=False)
    return cw


# ----------------------------------------------------------------------------- codeword -> index


@njit(cache=True, inline="always")
def _parity7(b):
    p = 0
    for q in range(7):
        p ^= (b >> q) & 1
    return p


@njit(cache=True)
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
            out[t] = join_nb(0, pair_rank[first, second], b)
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
                out[t] = join_nb(1, o, b)
        elif nz == 24 and n3 == 1 and n1 == 23:
            cmask = negmask ^ (1 << j3)
            m = cmask & 0xFFF
            if golay_masks[m] == cmask:
                out[t] = join_nb(2, m, j3)


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
    _codeword_to_index_kernel(v, PAIR_RANK, OCTAD_MASKS, GOLAY_MASKS, out)
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
        out[rows] = join(0, PAIR_RANK[ij[:, 0], ij[:, 1]], neg[:, 0] + 2 * neg[:, 1])
    # shape 1
    rows = np.nonzero((nz == 8) & ((a == 2).sum(axis=1) == 8))[0]
    if rows.size:
        o = np.minimum(np.searchsorted(OCTAD_MASKS, nzmask[rows]), OCTAD_MASKS.size - 1)
        good = OCTAD_MASKS[o] == nzmask[rows]
        neg = (v[rows[:, None], OCTAD_POS[o]] < 0).astype(np.int64)
        good &= neg.sum(axis=1) % 2 == 0
        b = neg[:, :7] @ (np.int64(1) << np.arange(7, dtype=np.int64))
        out[rows[good]] = join(1, o[good], b[good])
    # shape 2
    rows = np.nonzero((nz == 24) & ((a == 3).sum(axis=1) == 1) & ((a == 1).sum(axis=1) == 23))[0]
    if rows.size:
        j = np.argmax(a[rows] == 3, axis=1)
        cmask = negmask[rows] ^ (np.int64(1) << j)
        m = cmask & 0xFFF
        good = GOLAY_MASKS[m] == cmask
        out[rows[good]] = join(2, m[good], j[good])
    _raise_bad(out)
    return out
