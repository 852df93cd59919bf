"""Exact prior over the 196,560 Leech codewords (DESIGN §3): the numba kernels.

Family. Per token a table ``f`` ``(24, 9)`` float64, ``f[i, v + 4]`` the logit of
coordinate ``i`` taking the integer value ``v ∈ {−4..4}``; ``ℓ(v) = Σ_i f_i(v_i)`` and
``p(v) = exp ℓ(v) / Z`` over the codewords ``v`` (integer coordinates, squared norm 32).

Index layout: :mod:`leechcodec.kernels.index_layout` (part of the .lq format; ``idx =
offset[shape] + major·K'[shape] + minor``). The coder codes shape (3-way), then major given
shape, then minor given (shape, major); this module gives the three distributions.

The per-token arithmetic (exact normalizer, the tiers of the 4,096×24 part, flush
thresholds, measured speed) is specified in :mod:`leechcodec.kernels.prior_normalizer`;
the ``*_numpy`` twins are in :mod:`leechcodec.kernels.leech_prior_numpy` (re-exported here).

Determinism. No fastmath, float64, and every sum runs in a fixed order inside one token,
so results do not depend on the thread count; the encoder table builder
(:func:`coding_tables`) and the decoder calls (:func:`shape_log_probs`,
:func:`major_probs`, :func:`minor_probs`) run the same per-token routines and agree
bit for bit. The ``*_numpy`` twins are the readable spec (log-domain recursions and plain
log-sum-exp over each word's 24 terms) and agree to rounding. Bit-identity across machines also
needs the same libm ``exp``/``log``/``log1p`` (numba calls the platform's; it does not use
SVML here and contracts no FMAs without fastmath).

Logits must be finite with ``|f| ≤ 1e6``. Probabilities below ~1e-300 (shape-2 majors:
below 1e-30 of the row) may come out as 0; the coder floors them.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from leechcodec.kernels.index_layout import MAJOR_SIZES, MINOR_SIZES, NUM_CODEWORDS, PAIRS
from leechcodec.kernels.index_layout import SHAPE_OFFSETS as _LAYOUT_OFFSETS
from leechcodec.kernels.leech_index import GOLAY_MASKS, OCTAD_POS, fill_codeword
from leechcodec.kernels.leech_prior_numpy import (
    coding_tables_numpy,
    log_partition_numpy,
    log_prob_numpy,
    major_probs_numpy,
    minor_probs_numpy,
    shape_log_probs_numpy,
)
from leechcodec.kernels.prior_io import (
    MAX_ABS_LOGIT,
    CodingTables,
    check_f,
    check_ints,
    check_shape,
    coding_layout,
)
from leechcodec.kernels.prior_normalizer import _minor_row, _shape0, _shape1, _shape2, _token_parts

__all__ = [
    "N_CODEWORDS", "SHAPE_OFFSETS", "MAJOR_SIZES", "MINOR_SIZES", "PAIRS", "MAX_ABS_LOGIT", "CodingTables",
    "log_partition", "shape_log_probs", "major_probs", "minor_probs", "log_prob", "coding_tables",
    "log_partition_numpy", "shape_log_probs_numpy", "major_probs_numpy", "minor_probs_numpy",
    "log_prob_numpy", "coding_tables_numpy", "exp_rows",
]

N_CODEWORDS = NUM_CODEWORDS
#: first index of each shape
SHAPE_OFFSETS = _LAYOUT_OFFSETS[:3]


# ----------------------------------------------------------------------------- batch kernels


@njit(cache=True)
def _logit_of_index(ft, idx):
    """ℓ(v) = Σ_i f_i(v_i) for the codeword of index idx, summed in order i = 0..23."""
    v = np.zeros(24, np.int64)
    fill_codeword(idx, PAIRS, OCTAD_POS, GOLAY_MASKS, v)
    s = 0.0
    for i in range(24):
        s += ft[i, v[i] + 4]
    return s


@njit(parallel=True, cache=True)
def _parts_nb(f):
    n = f.shape[0]
    out = np.empty((n, 7))
    for t in prange(n):
        _token_parts(f[t], np.empty(276), np.empty(759), np.empty(4096), np.empty(4096), out[t])
    return out


@njit(parallel=True, cache=True)
def _major_nb(f, shape):
    n = f.shape[0]
    out = np.empty((n, MAJOR_SIZES[0] if shape == 0 else (MAJOR_SIZES[1] if shape == 1 else MAJOR_SIZES[2])))
    for t in prange(n):
        row = out[t]
        if shape == 0:
            _, s = _shape0(f[t], 0.0, row)
        elif shape == 1:
            _, s = _shape1(f[t], 0.0, row)
        else:
            _, s, _ = _shape2(f[t], row, np.empty(4096))
        for k in range(row.shape[0]):
            row[k] = row[k] / s
    return out


@njit(parallel=True, cache=True)
def _minor_nb(f, shape, major):
    n = f.shape[0]
    out = np.empty((n, MINOR_SIZES[0] if shape == 0 else (MINOR_SIZES[1] if shape == 1 else MINOR_SIZES[2])))
    for t in prange(n):
        _minor_row(f[t], shape, major[t], out[t])
    return out


@njit(parallel=True, cache=True)
def _log_prob_nb(f, idx):
    n = f.shape[0]
    out = np.empty(n)
    for t in prange(n):
        parts = np.empty(7)
        _token_parts(f[t], np.empty(276), np.empty(759), np.empty(4096), np.empty(4096), parts)
        out[t] = _logit_of_index(f[t], idx[t]) - parts[3]
    return out


@njit(parallel=True, cache=True)
def _coding_nb(f, shape, major, row, shape_logp, maj0, maj1, maj2, min0, min1, min2):
    for t in prange(f.shape[0]):
        w0 = np.empty(276)
        w1 = np.empty(759)
        w2 = np.empty(4096)
        parts = np.empty(7)
        _token_parts(f[t], w0, w1, w2, np.empty(4096), parts)
        for k in range(3):
            shape_logp[t, k] = parts[k] - parts[3]
        s = shape[t]
        r = row[t]
        w, dst = (w0, maj0[r]) if s == 0 else ((w1, maj1[r]) if s == 1 else (w2, maj2[r]))
        for k in range(w.shape[0]):
            dst[k] = w[k] / parts[4 + s]
        _minor_row(f[t], s, major[t], min0[r] if s == 0 else (min1[r] if s == 1 else min2[r]))


# ----------------------------------------------------------------------------- public (numba)


def log_partition(f: np.ndarray) -> np.ndarray:
    """log Z, ``(N,)`` float64, for logits ``f`` ``(N, 24, 9)``."""
    return _parts_nb(check_f(f))[:, 3].copy()


def shape_log_probs(f: np.ndarray) -> np.ndarray:
    """log P(shape), ``(N, 3)`` float64."""
    parts = _parts_nb(check_f(f))
    return parts[:, :3] - parts[:, 3:4]


def exp_rows(x: np.ndarray) -> np.ndarray:
    """``exp`` of a float64 array through the kernels' scalar ``exp`` (the one every table
    here uses), not numpy's vectorized one, whose last bit can differ between CPUs."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    return _exp_nb(x.ravel()).reshape(x.shape)


@njit(cache=True)
def _exp_nb(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = np.exp(x[i])
    return out


def major_probs(f: np.ndarray, shape: int) -> np.ndarray:
    """P(major | shape), ``(N, K)`` float64 with K = 276 / 759 / 4096."""
    return _major_nb(check_f(f), check_shape(shape))


def minor_probs(f: np.ndarray, shape: int, major: np.ndarray) -> np.ndarray:
    """P(minor | shape, major), ``(N, K')`` float64 with K' = 4 / 128 / 24; major ``(N,)``."""
    f = check_f(f)
    shape = check_shape(shape)
    return _minor_nb(f, shape, check_ints(major, f.shape[0], MAJOR_SIZES[shape], "major"))


def log_prob(f: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """log p(codeword idx), ``(N,)`` float64; idx ``(N,)`` int in [0, 196560)."""
    f = check_f(f)
    return _log_prob_nb(f, check_ints(idx, f.shape[0], NUM_CODEWORDS, "idx"))


def coding_tables(f: np.ndarray, idx: np.ndarray) -> CodingTables:
    """Encoder tables for tokens with known indices, in one pass per token.

    Bit-identical to ``shape_log_probs(f)``, ``major_probs(f[pos_s], s)`` and
    ``minor_probs(f[pos_s], s, major[pos_s])`` (the decoder's calls).
    """
    f, idx, shape, major, minor, positions, row = coding_layout(f, idx)
    shape_logp = np.empty((len(idx), 3))
    maj = tuple(np.empty((len(p), k)) for p, k in zip(positions, MAJOR_SIZES))
    mnr = tuple(np.empty((len(p), k)) for p, k in zip(positions, MINOR_SIZES))
    _coding_nb(f, shape, major, row, shape_logp, *maj, *mnr)
    return CodingTables(shape_logp, shape, major, minor, positions, maj, mnr)
