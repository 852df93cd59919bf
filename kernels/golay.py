"""The extended binary Golay code G24 [24, 12, 8] and its 759 octads, built from first principles.

Construction: the binary quadratic-residue code of length 23 is spanned by the 23 cyclic
shifts of the indicator of the quadratic residues mod 23 together with the all-ones word;
appending an overall parity bit gives G24. The span is reduced to a generator matrix in
reduced row-echelon form (pivot columns ascending), which fixes a canonical encoding
``message m in [0, 4096) -> codeword = XOR of rows k with bit k of m set``.

Orderings fixed here are part of the .lq file format (through the Leech index bijection):

- ``GOLAY_WORDS[m]`` is the codeword of message ``m`` as a ``(24,)`` uint8 0/1 vector; bit
  ``i`` of ``GOLAY_MASKS[m]`` is coordinate ``i``.
- ``OCTADS`` are the 759 weight-8 codewords sorted by their 24-bit mask, ascending;
  ``OCTAD_POSITIONS[o]`` lists the 8 support positions of octad ``o`` in ascending order.

All tables are rebuilt from code at import (a few milliseconds) and are read-only.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "GENERATOR",
    "GOLAY_WORDS",
    "GOLAY_MASKS",
    "OCTAD_MASKS",
    "OCTAD_POSITIONS",
    "OCTAD_INDICATOR",
    "golay_encode",
]

_N = 24
_K = 12


def _quadratic_residues(p: int) -> list[int]:
    return sorted({(x * x) % p for x in range(1, p)})


def _build_generator() -> np.ndarray:
    """Return the 12x24 generator of G24 in reduced row-echelon form, uint8 0/1."""
    qr = _quadratic_residues(23)
    base = np.zeros(23, dtype=np.uint8)
    base[qr] = 1
    rows = [np.roll(base, k) for k in range(23)] + [np.ones(23, dtype=np.uint8)]
    m = np.array(rows, dtype=np.uint8)
    parity = m.sum(axis=1, keepdims=True) % 2
    m = np.concatenate([m, parity.astype(np.uint8)], axis=1)
    # Gaussian elimination over GF(2) to reduced row-echelon form.
    m = m.copy()
    pivot_row = 0
    for col in range(_N):
        hits = np.nonzero(m[pivot_row:, col])[0]
        if hits.size == 0:
            continue
        r = pivot_row + hits[0]
        m[[pivot_row, r]] = m[[r, pivot_row]]
        for other in range(m.shape[0]):
            if other != pivot_row and m[other, col]:
                m[other] ^= m[pivot_row]
        pivot_row += 1
        if pivot_row == m.shape[0]:
            break
    gen = m[:pivot_row]
    if gen.shape != (_K, _N):
        raise RuntimeError(f"Golay construction gave rank {gen.shape[0]}, expected {_K}")
    return gen


def golay_encode(messages: np.ndarray) -> np.ndarray:
    """Encode messages ``(n,)`` ints in [0, 4096) to codewords ``(n, 24)`` uint8."""
    messages = np.asarray(messages, dtype=np.int64)
    bits = (messages[:, None] >> np.arange(_K, dtype=np.int64)) & 1
    return ((bits @ GENERATOR.astype(np.int64)) % 2).astype(np.uint8)


GENERATOR: np.ndarray = _build_generator()
GOLAY_WORDS: np.ndarray = golay_encode(np.arange(1 << _K))
GOLAY_MASKS: np.ndarray = (GOLAY_WORDS.astype(np.int64) << np.arange(_N, dtype=np.int64)).sum(axis=1)

_weights = GOLAY_WORDS.sum(axis=1)
OCTAD_MASKS: np.ndarray = np.sort(GOLAY_MASKS[_weights == 8])
OCTAD_INDICATOR: np.ndarray = ((OCTAD_MASKS[:, None] >> np.arange(_N, dtype=np.int64)) & 1).astype(np.uint8)
OCTAD_POSITIONS: np.ndarray = np.array(
    [np.nonzero(row)[0] for row in OCTAD_INDICATOR], dtype=np.int64
)

for _table in (GENERATOR, GOLAY_WORDS, GOLAY_MASKS, OCTAD_MASKS, OCTAD_INDICATOR, OCTAD_POSITIONS):
    _table.setflags(write=False)
del _table, _weights
