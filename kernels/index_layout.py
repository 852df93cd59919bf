"""Index layout of the 196,560 minimal vectors of Λ24: part of the .lq file format.

This module is the one definition of the layout. The search kernels, the codeword
bijection, the exact prior, the torch quantizers, the encoder (which splits indices into
symbols) and the decoder (which joins them back) all use it. Never change it: every .lq
file depends on it.

Codewords are in integer coordinates (squared norm 32). Every codeword has one of three
shapes, built on the Golay tables of :mod:`leechcodec.kernels.golay` (whose orderings the
layout inherits). An index ``idx in [0, 196560)`` is ``SHAPE_OFFSETS[shape] +
major * MINOR_SIZES[shape] + minor``:

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

The coder codes shape (3-way), then major given shape, then minor given (shape, major).

:func:`join` and :func:`pair_rank` are plain arithmetic: they take Python ints, numpy
arrays or torch tensors alike. The numba kernels compile :func:`join` and :func:`split`
(``numba.njit`` of these very functions, in :mod:`leechcodec.kernels.leech_index`), so the
arithmetic is written once. :func:`split_index` and
:func:`join_index` are the validated array forms the coder uses.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "NUM_CODEWORDS",
    "SHAPE_OFFSETS",
    "MAJOR_SIZES",
    "MINOR_SIZES",
    "SHAPE_SIZES",
    "PAIRS",
    "PAIR_RANK",
    "pair_rank",
    "join",
    "split",
    "split_index",
    "join_index",
    "as_indices",
]

NUM_CODEWORDS: int = 196_560
#: first index of each shape, and the end of the last one
SHAPE_OFFSETS: tuple[int, int, int, int] = (0, 1_104, 98_256, 196_560)
#: per shape: number of majors (pair ranks, octads, Golay messages)
MAJOR_SIZES: tuple[int, int, int] = (276, 759, 4096)
#: per shape: number of minors (sign bits, sign bits, position of the ∓3)
MINOR_SIZES: tuple[int, int, int] = (4, 128, 24)
#: per shape: (number of majors, number of minors)
SHAPE_SIZES: tuple[tuple[int, int], ...] = tuple(zip(MAJOR_SIZES, MINOR_SIZES))


def pair_rank(i, j):
    """Rank of the position pair ``i < j`` in lexicographic order (ints or integer arrays)."""
    return 23 * i - i * (i - 1) // 2 + (j - i - 1)


def join(shape: int, major, minor):
    """Index of ``(shape, major, minor)`` for one shape ``0``, ``1`` or ``2`` (unchecked;
    ``major`` and ``minor`` ints or integer arrays of any kind)."""
    return SHAPE_OFFSETS[shape] + major * MINOR_SIZES[shape] + minor


def split(idx: int) -> tuple[int, int, int]:
    """``(shape, major, minor)`` of one index (an int in [0, 196560), unchecked)."""
    shape = 0 if idx < SHAPE_OFFSETS[1] else (1 if idx < SHAPE_OFFSETS[2] else 2)
    local = idx - SHAPE_OFFSETS[shape]
    return shape, local // MINOR_SIZES[shape], local % MINOR_SIZES[shape]


def _build_pairs() -> tuple[np.ndarray, np.ndarray]:
    pairs = np.array([(i, j) for i in range(24) for j in range(i + 1, 24)], dtype=np.int64)
    rank = np.full((24, 24), -1, dtype=np.int64)
    rank[pairs[:, 0], pairs[:, 1]] = np.arange(len(pairs))
    if not np.array_equal(pair_rank(pairs[:, 0], pairs[:, 1]), np.arange(len(pairs))):
        raise RuntimeError("pair_rank disagrees with the lexicographic pair order")
    pairs.setflags(write=False)
    rank.setflags(write=False)
    return pairs, rank


#: ``PAIRS[r] = (i, j)``, the position pair of rank ``r``, shape ``(276, 2)`` int64;
#: ``PAIR_RANK[i, j]`` its rank for ``i < j`` (``-1`` elsewhere), shape ``(24, 24)`` int64.
PAIRS, PAIR_RANK = _build_pairs()


def as_indices(idx: np.ndarray) -> np.ndarray:
    """Validate codeword indices ``(N,)`` of an integer dtype in [0, 196560); return int64.

    Raises ``ValueError`` otherwise.
    """
    idx = np.asarray(idx)
    if idx.dtype.kind not in "iu":
        raise ValueError(f"indices must be an integer array, got dtype {idx.dtype}")
    if idx.ndim != 1:
        raise ValueError(f"indices must have shape (N,), got {idx.shape}")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= NUM_CODEWORDS):
        raise ValueError(f"indices must lie in [0, {NUM_CODEWORDS})")
    return idx


def split_index(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split indices ``(N,)`` into ``(shape, major, minor)``, each ``(N,)`` int64.

    ``major``: pair rank / octad rank / Golay message; ``minor``: sign bits / sign bits /
    position of the ∓3 (see the module docstring).
    """
    idx = as_indices(idx)
    shape = np.searchsorted(np.asarray(SHAPE_OFFSETS[1:3]), idx, side="right").astype(np.int64)
    local = idx - np.asarray(SHAPE_OFFSETS, dtype=np.int64)[shape]
    n_minor = np.asarray(MINOR_SIZES, dtype=np.int64)[shape]
    return shape, local // n_minor, local % n_minor


def join_index(shape: np.ndarray, major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """Inverse of :func:`split_index`: ``(N,)`` ints each -> indices ``(N,)`` int64.

    Raises ``ValueError`` for non-integer arrays and out-of-range symbols.
    """
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
