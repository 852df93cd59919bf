"""Argument checks and the output record shared by the exact Leech prior and its numpy twins."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from leechcodec.kernels.index_layout import NUM_CODEWORDS, split_index

__all__ = ["MAX_ABS_LOGIT", "CodingTables", "check_f", "check_ints", "check_shape", "coding_layout"]

#: the largest |logit| accepted
MAX_ABS_LOGIT = 1e6


def check_f(f) -> np.ndarray:
    """Logits ``(N, 24, 9)``, real, finite, ``|f| ≤ MAX_ABS_LOGIT`` -> C-contiguous float64."""
    arr = np.asarray(f)
    if arr.ndim != 3 or arr.shape[1:] != (24, 9):
        raise ValueError(f"f must have shape (N, 24, 9), got {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"f must be real, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError("f contains NaN or infinite values")
    if arr.size and np.abs(arr).max() > MAX_ABS_LOGIT:
        raise ValueError(f"|f| exceeds {MAX_ABS_LOGIT:g}")
    return arr


def check_ints(x, n: int, upper: int, name: str) -> np.ndarray:
    """Integers ``(n,)`` in ``[0, upper)`` -> C-contiguous int64 (``name`` for the error)."""
    arr = np.asarray(x)
    if arr.shape != (n,) or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise ValueError(f"{name} must be an integer array of shape ({n},), got {arr.dtype} {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= upper):
        raise ValueError(f"{name} out of range [0, {upper})")
    return arr


def check_shape(shape) -> int:
    """A shape 0, 1 or 2 (an int, not a bool) -> int."""
    if isinstance(shape, bool) or not isinstance(shape, (int, np.integer)) or shape not in (0, 1, 2):
        raise ValueError(f"shape must be 0, 1 or 2, got {shape!r}")
    return int(shape)


class CodingTables(NamedTuple):
    """Everything the encoder codes for a batch of tokens (rows grouped by shape)."""

    shape_logp: np.ndarray  # (N, 3) log P(shape)
    shape: np.ndarray  # (N,) int64
    major: np.ndarray  # (N,) int64
    minor: np.ndarray  # (N,) int64
    positions: tuple  # 3 x (N_s,) int64: token positions of each shape, ascending
    major_probs: tuple  # (N_0, 276), (N_1, 759), (N_2, 4096): P(major | shape) per token
    minor_probs: tuple  # (N_0, 4), (N_1, 128), (N_2, 24): P(minor | shape, major) per token


def coding_layout(f, idx):
    """Checked ``f`` and ``idx``, their symbols, each shape's token positions and each token's
    row within its shape."""
    f = check_f(f)
    idx = check_ints(idx, f.shape[0], NUM_CODEWORDS, "idx")
    shape, major, minor = split_index(idx)
    positions = tuple(np.flatnonzero(shape == s) for s in range(3))
    row = np.empty(len(idx), np.int64)
    for pos in positions:
        row[pos] = np.arange(len(pos))
    return f, idx, shape, major, minor, positions, row
