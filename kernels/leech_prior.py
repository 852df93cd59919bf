"""Exact prior over the 196,560 Leech codewords (DESIGN §3): specification and API.

Family. Per token a table ``f`` ``(24, 9)`` float64, ``f[i, v + 4]`` the logit of
coordinate ``i`` taking the integer value ``v ∈ {−4..4}``; ``ℓ(v) = Σ_i f_i(v_i)`` and
``p(v) = exp ℓ(v) / Z`` over the codewords ``v`` (integer coordinates, squared norm 32).

Index layout: :mod:`leechcodec.kernels.index_layout` (part of the .lq format; ``idx =
offset[shape] + major·K'[shape] + minor``). The coder codes shape (3-way), then major given
shape, then minor given (shape, major); this module gives the three distributions.

The numba code is in :mod:`leechcodec.kernels.prior_kernels`; the ``*_numpy`` twins are in
:mod:`leechcodec.kernels.leech_prior_numpy` (re-exported here).

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

Flush thresholds (the constants in ``prior_kernels``) keep every product a normal double —
libm and the FPU are ~10× slower on subnormals — and drop only words with P < 1e-30 of the
row, so shape-2 major entries below 1e-30 may read 0; everything else is exact to rounding.

Measured here (one thread, µs per token, Gaussian-shaped f, on a shared 2-core machine
under load, so ±30%): shapes 0 / 1 / 2 about 2 / 8 / 10 (tier 0); tiers 1 and 2 about 25
and 40 including the failed attempts before them. For comparison, a plain 24-term loop per
word for A and B with one exp per word costs 68–89, 4,096 libm exps alone 18, and a BLAS
``A = d·Gᵀ`` over a batch 4 for A alone and 14 with one exp per word (BLAS summation order
is also not fixed across builds).

Determinism. No fastmath, float64, and every sum runs in a fixed order inside one token,
so results do not depend on the thread count; the encoder table builder
(:func:`coding_tables`) and the decoder calls (:func:`shape_log_probs`,
:func:`major_probs`, :func:`minor_probs`) run the same per-token routines and agree
bit for bit. The ``*_numpy`` twins are the readable spec (log-domain recursions and plain
log-sum-exp over each word's 24 terms) and agree to rounding.

Across machines: with ``portable=True`` (the default; coder profile 3) every ``exp``,
``log`` and ``log1p`` is :mod:`leechcodec.kernels.xmath`'s, built from IEEE ``+ − × ÷``
alone, so the tables are the same bits on any IEEE-754 machine; numba contracts no FMAs
without fastmath, and running the same kernels as plain Python (``NUMBA_DISABLE_JIT=1``)
gives the same bits (tested). ``portable=False`` (profile 2, format 1.1 as written) calls the
platform's libm instead, whose last bit can differ between libms and CPUs.

Logits must be finite with ``|f| ≤ 1e6``. Probabilities below ~1e-300 (shape-2 majors:
below 1e-30 of the row) may come out as 0; the coder floors them.
"""

from __future__ import annotations

import numpy as np

from leechcodec.kernels.index_layout import MAJOR_SIZES, MINOR_SIZES, NUM_CODEWORDS, PAIRS
from leechcodec.kernels.index_layout import SHAPE_OFFSETS as _LAYOUT_OFFSETS
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
from leechcodec.kernels.prior_kernels import _coding_nb, _exp_nb, _log_prob_nb, _major_nb, _minor_nb, _parts_nb

__all__ = [
    "N_CODEWORDS", "SHAPE_OFFSETS", "MAJOR_SIZES", "MINOR_SIZES", "PAIRS", "MAX_ABS_LOGIT",
    "CodingTables",
    "log_partition", "shape_log_probs", "major_probs", "minor_probs", "log_prob", "coding_tables",
    "log_partition_numpy", "shape_log_probs_numpy", "major_probs_numpy", "minor_probs_numpy",
    "log_prob_numpy", "coding_tables_numpy", "exp_rows",
]

N_CODEWORDS = NUM_CODEWORDS
#: first index of each shape
SHAPE_OFFSETS = _LAYOUT_OFFSETS[:3]


# ----------------------------------------------------------------------------- public (numba)


def log_partition(f: np.ndarray, *, portable: bool = True) -> np.ndarray:
    """log Z, ``(N,)`` float64, for logits ``f`` ``(N, 24, 9)``."""
    return _parts_nb(check_f(f), bool(portable))[:, 3].copy()


def shape_log_probs(f: np.ndarray, *, portable: bool = True) -> np.ndarray:
    """log P(shape), ``(N, 3)`` float64."""
    parts = _parts_nb(check_f(f), bool(portable))
    return parts[:, :3] - parts[:, 3:4]


def exp_rows(x: np.ndarray, *, portable: bool = True) -> np.ndarray:
    """``exp`` of a float64 array through the kernels' scalar ``exp`` (the one every table
    here uses), not numpy's vectorized one, whose last bit can differ between CPUs."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    return _exp_nb(x.ravel(), bool(portable)).reshape(x.shape)


def major_probs(f: np.ndarray, shape: int, *, portable: bool = True) -> np.ndarray:
    """P(major | shape), ``(N, K)`` float64 with K = 276 / 759 / 4096."""
    return _major_nb(check_f(f), check_shape(shape), bool(portable))


def minor_probs(f: np.ndarray, shape: int, major: np.ndarray, *, portable: bool = True) -> np.ndarray:
    """P(minor | shape, major), ``(N, K')`` float64 with K' = 4 / 128 / 24; major ``(N,)``."""
    f = check_f(f)
    shape = check_shape(shape)
    return _minor_nb(f, shape, check_ints(major, f.shape[0], MAJOR_SIZES[shape], "major"), bool(portable))


def log_prob(f: np.ndarray, idx: np.ndarray, *, portable: bool = True) -> np.ndarray:
    """log p(codeword idx), ``(N,)`` float64; idx ``(N,)`` int in [0, 196560)."""
    f = check_f(f)
    return _log_prob_nb(f, check_ints(idx, f.shape[0], NUM_CODEWORDS, "idx"), bool(portable))


def coding_tables(f: np.ndarray, idx: np.ndarray, *, portable: bool = True) -> CodingTables:
    """Encoder tables for tokens with known indices, in one pass per token.

    Bit-identical to ``shape_log_probs(f)``, ``major_probs(f[pos_s], s)`` and
    ``minor_probs(f[pos_s], s, major[pos_s])`` (the decoder's calls) with the same
    ``portable``.
    """
    f, idx, shape, major, minor, positions, row = coding_layout(f, idx)
    shape_logp = np.empty((len(idx), 3))
    maj = tuple(np.empty((len(p), k)) for p, k in zip(positions, MAJOR_SIZES))
    mnr = tuple(np.empty((len(p), k)) for p, k in zip(positions, MINOR_SIZES))
    _coding_nb(f, shape, major, row, shape_logp, *maj, *mnr, bool(portable))
    return CodingTables(shape_logp, shape, major, minor, positions, maj, mnr)
