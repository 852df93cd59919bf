"""Constant tables and the input contract shared by the three Λ24 searches.

The numba search (:mod:`leechcodec.kernels.leech`), its numpy twin
(:mod:`leechcodec.kernels.search_reference`) and the torch search
(:mod:`leechcodec.leech_search`) read the same tables, built here once from the Golay
tables of :mod:`leechcodec.kernels.golay`.
"""

from __future__ import annotations

import numpy as np

from leechcodec.kernels import golay
from leechcodec.kernels.leech_index import OCTAD_MASKS, OCTAD_POS

__all__ = ["as_tokens", "HALF_Q", "HALF_SIGN", "OCTAD_CHUNKS", "OCTAD_POS_T"]

# Generator in reduced row-echelon form with pivots 0..11: bits 0..11 of a Golay mask are
# its message, bits 12..23 are ``_QMAP[message]``.
if not np.array_equal(golay.GOLAY_MASKS & 0xFFF, np.arange(4096)):
    raise RuntimeError("Golay generator pivots are not columns 0..11")
_QMAP: np.ndarray = (golay.GOLAY_MASKS >> 12).astype(np.int64)

# Golay word m < 2048 (message bit 11 clear) and its complement m ^ 0xFFF (mask ^ 0xFFFFFF)
# share |S|: S(complement) = -S(m). The sign sums over coordinates 0..10 and 12..22
# (coordinates 11 and 23 taken positive) are 2048-entry tables; the non-pivot half of
# word m is tn[HALF_Q[m]] times HALF_SIGN[m].
#: ``(2048,)`` int64: the table entry of the non-pivot half of word ``m``
HALF_Q: np.ndarray = np.where(_QMAP[:2048] & 0x800, _QMAP[:2048] ^ 0xFFF, _QMAP[:2048])
#: ``(2048,)`` float64: its sign, ±1
HALF_SIGN: np.ndarray = np.where(_QMAP[:2048] & 0x800, -1.0, 1.0)
#: octad support split in three 8-bit chunks (coordinates 0..7, 8..15, 16..23), (3, 768);
#: columns 759.. are empty padding (their sum 0 never beats a best score >= 0)
OCTAD_CHUNKS: np.ndarray = np.zeros((3, 768), dtype=np.int64)
OCTAD_CHUNKS[:, :759] = [(OCTAD_MASKS >> (8 * c)) & 255 for c in range(3)]
#: octad positions transposed, ``(8, 759)`` int64
OCTAD_POS_T = np.ascontiguousarray(OCTAD_POS.T)
for _t in (_QMAP, HALF_Q, HALF_SIGN, OCTAD_CHUNKS, OCTAD_POS_T):
    _t.setflags(write=False)
del _t


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
