"""Λ24 quantizer core at the numpy level: tokens -> codeword indices -> codewords.

The stable entry point for the rest of leechcodec (torch modules, prior, bitstream). It
imports numpy and numba only, never torch. The index bijection, tie rule and search are
specified in :mod:`leechcodec.kernels.leech`; in short:

- ``leech_quantize(x)``: for each row of ``x`` ``(N, 24)`` float16/32/64, the index of the
  codeword with the largest inner product with the (unnormalized) row, i.e. the nearest
  unit codeword to the normalized row. Ties go to the smallest index; the zero vector
  gives index 0. Integer dtypes, NaN, inf and wrong shapes raise ``ValueError``.
- ``leech_codewords(indices)``: the integer codewords ``(N, 24)`` int8, squared norm 32
  (divide by ``sqrt(32)`` for unit vectors).
- ``split_index`` / ``join_index``: the hierarchical ``(shape, major, minor)`` split used
  by the entropy coder.
"""

from __future__ import annotations

import numpy as np

from leechcodec.kernels.leech import (
    NUM_CODEWORDS,
    SHAPE_OFFSETS,
    SHAPE_SIZES,
    index_to_codeword,
    join_index,
    search_numba,
    split_index,
)

__all__ = [
    "NUM_CODEWORDS",
    "SHAPE_OFFSETS",
    "SHAPE_SIZES",
    "leech_quantize",
    "leech_codewords",
    "split_index",
    "join_index",
]


def leech_quantize(x: np.ndarray) -> np.ndarray:
    """Nearest-codeword indices: ``(N, 24)`` float16/32/64 -> ``(N,)`` int64 in [0, 196560).

    Exact structured search (numba, parallel over tokens). Raises ``ValueError`` for
    non-float dtypes, shapes other than ``(N, 24)``, NaN or inf.
    """
    return search_numba(x)


def leech_codewords(indices: np.ndarray) -> np.ndarray:
    """Integer codewords of indices: ``(N,)`` int -> ``(N, 24)`` int8, squared norm 32.

    Raises ``ValueError`` for non-integer dtypes, shapes other than ``(N,)`` or indices
    outside [0, 196560).
    """
    return index_to_codeword(indices)
