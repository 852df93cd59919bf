"""Plain-numpy twins of the exact Leech prior (:mod:`leechcodec.kernels.leech_prior`).

The readable spec and the test oracle: log-domain recursions and a plain log-sum-exp over
each word's 24 terms, with the kernels' signatures; they agree with the kernels to rounding.
"""

from __future__ import annotations

import numpy as np

from leechcodec.kernels.golay import GOLAY_WORDS
from leechcodec.kernels.index_layout import MAJOR_SIZES, NUM_CODEWORDS, PAIRS, split_index
from leechcodec.kernels.prior_io import CodingTables, check_f, check_ints, check_shape, coding_layout
from leechcodec.kernels.prior_kernels import _M1, _M2, _M3, _M4, _OCT, _P1, _P2, _P3, _P4, _Z

__all__ = ["log_partition_numpy", "shape_log_probs_numpy", "major_probs_numpy", "minor_probs_numpy",
           "log_prob_numpy", "coding_tables_numpy"]

_GW = GOLAY_WORDS.astype(bool)  # (4096, 24)
_CHUNK = 16  # tokens per chunk for the (chunk, 4096, 24) temporaries


def _lse(x: np.ndarray, axis: int = -1) -> np.ndarray:
    mx = x.max(axis=axis, keepdims=True)
    return (mx + np.log(np.exp(x - mx).sum(axis=axis, keepdims=True))).squeeze(axis)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _word_log_weights_numpy(f: np.ndarray, shape: int) -> np.ndarray:
    """Unnormalized log P(shape, major): (N, 276) / (N, 759) / (N, 4096)."""
    g = f - f[:, :, _Z:_Z + 1]
    f0 = f[:, :, _Z].sum(axis=1)[:, None]
    if shape == 0:
        lh = np.logaddexp(g[:, :, _P4], g[:, :, _M4])
        return f0 + lh[:, PAIRS[:, 0]] + lh[:, PAIRS[:, 1]]
    if shape == 1:  # log-domain (even, odd) recursion over the octad's 8 positions
        gp, gm = g[:, _OCT, _P2], g[:, _OCT, _M2]  # (N, 759, 8)
        even, odd = gp[..., 0], gm[..., 0]
        for k in range(1, 8):
            even, odd = (np.logaddexp(even + gp[..., k], odd + gm[..., k]),
                         np.logaddexp(even + gm[..., k], odd + gp[..., k]))
        return f0 + even
    out = np.empty((f.shape[0], 4096))
    for a in range(0, f.shape[0], _CHUNK):
        fc = f[a:a + _CHUNK, None, :, :]  # (n, 1, 24, 9)
        sign_logit = np.where(_GW, fc[..., _M1], fc[..., _P1])  # f_i(s_i), (n, 4096, 24)
        d = np.where(_GW, fc[..., _P3], fc[..., _M3]) - sign_logit  # d_j(s_j)
        out[a:a + _CHUNK] = sign_logit.sum(axis=-1) + _lse(d, axis=-1)
    return out


def _log_z_parts_numpy(f: np.ndarray) -> np.ndarray:
    return np.stack([_lse(_word_log_weights_numpy(f, s)) for s in range(3)], axis=1)


def log_partition_numpy(f: np.ndarray) -> np.ndarray:
    """Numpy twin of :func:`leech_prior.log_partition`."""
    return _lse(_log_z_parts_numpy(check_f(f)))


def shape_log_probs_numpy(f: np.ndarray) -> np.ndarray:
    """Numpy twin of :func:`leech_prior.shape_log_probs`."""
    parts = _log_z_parts_numpy(check_f(f))
    return parts - _lse(parts)[:, None]


def major_probs_numpy(f: np.ndarray, shape: int) -> np.ndarray:
    """Numpy twin of :func:`leech_prior.major_probs`."""
    return _softmax(_word_log_weights_numpy(check_f(f), check_shape(shape)))


def _codewords_numpy(shape: int, major: np.ndarray) -> np.ndarray:
    """All codewords of (shape, major): (N, K', 24) int64, minor along axis 1."""
    n = len(major)
    if shape == 0:
        v = np.zeros((n, 4, 24), np.int64)
        b = np.arange(4)
        rows = np.arange(n)[:, None]
        v[rows, b, PAIRS[major, 0][:, None]] = np.where(b & 1, -4, 4)
        v[rows, b, PAIRS[major, 1][:, None]] = np.where(b & 2, -4, 4)
        return v
    if shape == 1:
        bits = (np.arange(128)[:, None] >> np.arange(7)) & 1  # (128, 7)
        minus = np.concatenate([bits, bits.sum(axis=1, keepdims=True) & 1], axis=1)  # (128, 8)
        v = np.zeros((n, 128, 24), np.int64)
        v[np.arange(n)[:, None, None], np.arange(128)[None, :, None], _OCT[major][:, None, :]] = 2 - 4 * minus
        return v
    s = 1 - 2 * GOLAY_WORDS[major].astype(np.int64)  # (N, 24)
    return s[:, None, :] * np.where(np.eye(24, dtype=bool), -3, 1)[None]


def _logits_of_codewords(f: np.ndarray, v: np.ndarray) -> np.ndarray:
    """ℓ for codewords v (N, K, 24) under f (N, 24, 9): (N, K)."""
    n = f.shape[0]
    return f[np.arange(n)[:, None, None], np.arange(24), v + 4].sum(axis=-1)


def minor_probs_numpy(f: np.ndarray, shape: int, major: np.ndarray) -> np.ndarray:
    """Numpy twin of :func:`leech_prior.minor_probs`."""
    f = check_f(f)
    shape = check_shape(shape)
    major = check_ints(major, f.shape[0], MAJOR_SIZES[shape], "major")
    return _softmax(_logits_of_codewords(f, _codewords_numpy(shape, major)))


def log_prob_numpy(f: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Numpy twin of :func:`leech_prior.log_prob`."""
    f = check_f(f)
    idx = check_ints(idx, f.shape[0], NUM_CODEWORDS, "idx")
    shape, major, minor = split_index(idx)
    ell = np.empty(len(idx))
    for s in range(3):
        pos = np.flatnonzero(shape == s)
        v = _codewords_numpy(s, major[pos])[np.arange(len(pos)), minor[pos]]
        ell[pos] = _logits_of_codewords(f[pos], v[:, None, :])[:, 0]
    return ell - log_partition_numpy(f)


def coding_tables_numpy(f: np.ndarray, idx: np.ndarray) -> CodingTables:
    """Numpy twin of :func:`leech_prior.coding_tables`."""
    f, idx, shape, major, minor, positions, _ = coding_layout(f, idx)
    maj = tuple(major_probs_numpy(f[p], s) for s, p in enumerate(positions))
    mnr = tuple(minor_probs_numpy(f[p], s, major[p]) for s, p in enumerate(positions))
    return CodingTables(shape_log_probs_numpy(f), shape, major, minor, positions, maj, mnr)
