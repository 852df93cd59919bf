"""ANS coding of integer symbols with per-symbol categorical distributions.

Coder profile 1 of the ``.lq`` container: constriction's stack ANS coder
(``constriction.stream.stack.AnsCoder``, 32-bit words, 24-bit probabilities) with the
categorical model family ``constriction.stream.model.Categorical(perfect=False)``.

Usage: the encoder is given groups of symbols in *decode* order, so that a later
group's distributions may depend on earlier groups' decoded values::

    enc = SymbolEncoder()
    enc.add(shape, shape_probs)                  # (n,) ints, (n, 3) float64
    enc.add(octad, octad_probs_given_shape)      # (m,) ints, (m, 759)
    payload = enc.finish()

    dec = SymbolDecoder(payload)
    shape = dec.read(shape_probs)
    octad = dec.read(octad_probs_given_shape)    # built from the decoded `shape`
    dec.finish()                                 # checks the end of the stream

Probability model (bit-exact, part of the format)
-------------------------------------------------
A row ``p`` of ``K`` float64 values (>= 0, with a finite sum of at least ``2**-990``;
it need not sum to 1) becomes integer frequencies over ``2**24`` exactly as
constriction's lazy ``perfect=False`` categorical model does::

    c[i]   = p[0] + ... + p[i-1]        (sequential float64 sums, c[0] = 0)
    scale  = (2**24 - K) / (p[0] + ... + p[K-1])
    left_i = floor(c[i] * scale) + i    for i < K,   left_K = 2**24
    freq_i = left_{i+1} - left_i        (>= 1 for every symbol)

This is the floor: every symbol of the alphabet, including those given probability 0,
costs at most 24 bits and can always be coded. Encoder and decoder must pass the
*same* float64 rows; integer frequency tables (cast to float64) work unchanged.
:func:`quantized_frequencies` reproduces the table for inspection.

Uniform groups (:meth:`SymbolEncoder.add_uniform`) use constriction's ``Uniform``
model: ``freq = 2**24 // K`` for every symbol but the last, which takes the rest.

Stream layout
-------------
The payload is the coder's ``uint32`` words, little-endian (constriction's order).
Before any data the encoder pushes a two-symbol terminator (symbols ``[0, 1]`` of the
row ``[0.0, 1.0]``, decoded last, in that order) that puts the coder state at exactly
``2**24``; this costs 24 bits per stream. A valid stream therefore never runs dry before
the terminator, and :meth:`SymbolDecoder.finish` passes only if the state is exactly
``2**24`` with no words left. Reading more symbols than were written is always caught
(the first extra read drops the state below ``2**24``, and with no words left it never
climbs back; the reader checks the state after every block of at most 2**20 table
entries, so it stops within one block of the end, whatever the symbols' probabilities);
reading fewer, or with probabilities that differ from the writer's, is
caught unless the garbage decode happens to end on exactly that state.
Bit-level corruption is the container checksum's job (ANS decodes garbage silently).

Memory and speed
----------------
The encoder computes each symbol's interval ``[left_s, left_{s+1})`` when the group is
added and keeps only that (16 bytes per symbol), not the rows; :meth:`SymbolEncoder.finish`
hands constriction 2- or 3-entry integer rows that quantize to exactly those intervals.
The decoder hands constriction the real rows. The tests probe constriction's decoder to
pin the two together. Rows are processed in blocks of at most 2**20 floats, one
vectorized call per block. Alphabets have 1 to 65,536 symbols (a 1-symbol alphabet
costs nothing and writes nothing).
"""

from __future__ import annotations

import math

import constriction
import numpy as np

__all__ = [
    "PRECISION",
    "MAX_ALPHABET",
    "AnsDecodeError",
    "SymbolEncoder",
    "SymbolDecoder",
    "quantized_frequencies",
]

PRECISION = 24
_TOTAL = 1 << PRECISION
MAX_ALPHABET = 1 << 16
_BLOCK_FLOATS = 1 << 20
_TERMINATOR_ROWS = np.array([[0.0, 1.0], [0.0, 1.0]])
_TERMINATOR_SYMBOLS = np.array([0, 1], dtype=np.int32)
_MIN_TOTAL = 2.0**-990  # keeps (2**24 - K) / sum finite


class AnsDecodeError(ValueError):
    """The compressed data does not decode consistently with the reader's model."""


def _model_family():
    return constriction.stream.model.Categorical(perfect=False)


def _block_rows(alphabet: int) -> int:
    return max(1, _BLOCK_FLOATS // alphabet)


def _as_probs(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs)
    if probs.ndim != 2:
        raise ValueError(f"probabilities must have shape (n, K), got {probs.shape}")
    if not np.issubdtype(probs.dtype, np.floating) and not np.issubdtype(probs.dtype, np.integer):
        raise ValueError(f"probabilities must be float64 (or exactly convertible), got {probs.dtype}")
    if not 1 <= probs.shape[1] <= MAX_ALPHABET:
        raise ValueError(f"alphabet size {probs.shape[1]} is outside 1..{MAX_ALPHABET}")
    return probs


def _as_symbols(symbols: np.ndarray, n: int | None, alphabet: int) -> np.ndarray:
    symbols = np.asarray(symbols)
    if symbols.ndim != 1 or not np.issubdtype(symbols.dtype, np.integer):
        raise ValueError(f"symbols must be a 1-d integer array, got {symbols.dtype} {symbols.shape}")
    if n is not None and len(symbols) != n:
        raise ValueError(f"{len(symbols)} symbols but {n} probability rows")
    if len(symbols) and (symbols.min() < 0 or symbols.max() >= alphabet):
        raise ValueError(f"symbols must lie in 0..{alphabet - 1}, got {symbols.min()}..{symbols.max()}")
    return symbols.astype(np.int64)


def _blocks(probs: np.ndarray):
    """Yield ``(start, block, cumsum, scale)`` over row blocks, validating every row.

    Rows must be >= 0 with a finite sum of at least ``2**-990`` (so ``scale`` is finite).
    ``cumsum`` is the sequential row prefix sum, exactly the sums constriction forms.
    """
    k = probs.shape[1]
    step = _block_rows(k)
    for start in range(0, len(probs), step):
        block = np.ascontiguousarray(probs[start : start + step], dtype=np.float64)
        nonneg = block >= 0  # also rejects NaN
        if not nonneg.all():
            bad = start + int(np.flatnonzero(~nonneg.all(axis=1))[0])
            raise ValueError(f"probability row {bad} has a negative or NaN entry")
        with np.errstate(over="ignore"):
            cumsum = np.cumsum(block, axis=1)
        totals = cumsum[:, -1]
        ok = np.isfinite(totals) & (totals >= _MIN_TOTAL)
        if not ok.all():
            bad = int(np.flatnonzero(~ok)[0])
            raise ValueError(f"probability row {start + bad} sums to {totals[bad]!r}; need a finite sum >= 2**-990")
        yield start, block, cumsum, (_TOTAL - k) / totals


def quantized_frequencies(probs: np.ndarray) -> np.ndarray:
    """The integer model the coder uses for each row: ``(n, K) float64 -> (n, K) int64``.

    Every entry is >= 1 and every row sums to ``2**24``.
    """
    probs = _as_probs(probs)
    n, k = probs.shape
    out = np.empty((n, k), dtype=np.int64)
    if k == 1:
        out[:] = _TOTAL
        return out
    offsets = np.arange(k, dtype=np.int64)
    for start, block, cumsum, scale in _blocks(probs):
        left = np.zeros_like(block)
        np.multiply(cumsum[:, :-1], scale[:, None], out=left[:, 1:])
        cdf = np.floor(left).astype(np.int64) + offsets
        out[start : start + len(block), :-1] = np.diff(cdf, axis=1)
        out[start : start + len(block), -1] = _TOTAL - cdf[:, -1]
    return out


def _intervals(symbols: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Each symbol's interval ``[left, left + freq)`` in the quantized model ((n,) int64 each),
    and the information content under the float rows (inf if a coded symbol has p = 0)."""
    k = probs.shape[1]
    left = np.empty(len(symbols), dtype=np.int64)
    freq = np.empty(len(symbols), dtype=np.int64)
    float_bits = 0.0
    for start, block, cumsum, scale in _blocks(probs):
        sym = symbols[start : start + len(block)]
        rows = np.arange(len(block))
        below = np.where(sym > 0, cumsum[rows, np.maximum(sym - 1, 0)], 0.0)
        lo = np.floor(below * scale).astype(np.int64) + sym
        hi = np.floor(cumsum[rows, sym] * scale).astype(np.int64) + sym + 1
        hi[sym == k - 1] = _TOTAL
        left[start : start + len(block)] = lo
        freq[start : start + len(block)] = hi - lo
        with np.errstate(divide="ignore"):
            float_bits -= float(np.sum(np.log2(block[rows, sym] / cumsum[:, -1])))
    return left, freq, float_bits


def _proxy_rows(left: np.ndarray, freq: np.ndarray, alphabet: int) -> tuple[np.ndarray, np.ndarray]:
    """Small rows that constriction quantizes to exactly the interval ``[left, left + freq)``.

    Rows of integers summing to ``2**24 - width`` quantize with ``scale == 1``, so slot j
    of a width-w row gets ``left = a_0 + ... + a_{j-1} + j``. Width 2 serves K == 2;
    otherwise width 3: slot 0 for the first interval, slot 2 for the last, slot 1 between.
    """
    n = len(left)
    if alphabet == 2:
        slot = (left > 0).astype(np.int32)
        a = np.where(slot == 0, freq - 1, left - 1)
        rows = np.stack([a, _TOTAL - 2 - a], axis=1)
        return slot, rows.astype(np.float64)
    slot = np.ones(n, dtype=np.int32)
    slot[left == 0] = 0
    slot[left + freq == _TOTAL] = 2
    rows = np.zeros((n, 3), dtype=np.int64)
    first, middle, last = slot == 0, slot == 1, slot == 2
    rows[first, 0] = freq[first] - 1
    rows[middle, 0] = left[middle] - 1
    rows[middle, 1] = freq[middle] - 1
    rows[last, 0] = left[last] - 2
    rows[:, 2] = _TOTAL - 3 - rows[:, 0] - rows[:, 1]
    return slot, rows.astype(np.float64)


def _uniform_intervals(symbols: np.ndarray, alphabet: int) -> tuple[np.ndarray, np.ndarray]:
    per_bin = _TOTAL // alphabet
    left = symbols * per_bin
    freq = np.full(len(symbols), per_bin, dtype=np.int64)
    freq[symbols == alphabet - 1] = _TOTAL - (alphabet - 1) * per_bin
    return left, freq


class SymbolEncoder:
    """Collects groups of symbols in decode order; :meth:`finish` codes them all.

    Only each symbol's integer interval is kept (16 bytes per symbol), never the rows.
    """

    def __init__(self) -> None:
        self._groups: list[tuple[np.ndarray, np.ndarray, int]] = []
        self._ideal_bits = 0.0
        self._float_ideal_bits = 0.0
        self._num_symbols = 0

    def add(self, symbols: np.ndarray, probs: np.ndarray) -> None:
        """Append a group: ``symbols (n,) int`` coded with ``probs (n, K) float64`` rows."""
        probs = _as_probs(probs)
        symbols = _as_symbols(symbols, len(probs), probs.shape[1])
        if len(symbols) == 0 or probs.shape[1] == 1:
            return
        left, freq, float_bits = _intervals(symbols, probs)
        self._float_ideal_bits += float_bits
        self._push(left, freq, probs.shape[1])

    def add_uniform(self, symbols: np.ndarray, alphabet_size: int) -> None:
        """Append a group of symbols, each uniform over ``alphabet_size`` values."""
        if not 1 <= alphabet_size <= MAX_ALPHABET:
            raise ValueError(f"alphabet size {alphabet_size} is outside 1..{MAX_ALPHABET}")
        symbols = _as_symbols(symbols, None, alphabet_size)
        if len(symbols) == 0 or alphabet_size == 1:
            return
        self._float_ideal_bits += len(symbols) * math.log2(alphabet_size)
        self._push(*_uniform_intervals(symbols, alphabet_size), alphabet_size)

    def _push(self, left: np.ndarray, freq: np.ndarray, alphabet: int) -> None:
        self._groups.append((left, freq, alphabet))
        self._ideal_bits += float(np.sum(PRECISION - np.log2(freq)))
        self._num_symbols += len(left)

    @property
    def num_symbols(self) -> int:
        """Symbols added so far (1-symbol alphabets excluded: they are not coded)."""
        return self._num_symbols

    @property
    def ideal_bits(self) -> float:
        """Information content under the quantized model the coder uses: −Σ log2(freq / 2**24)."""
        return self._ideal_bits

    @property
    def float_ideal_bits(self) -> float:
        """Information content under the given float rows, −Σ log2(p / Σp); inf if some p is 0."""
        return self._float_ideal_bits

    def finish(self) -> bytes:
        """Code every group (last group first, since ANS is a stack); little-endian words."""
        family = _model_family()
        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse(_TERMINATOR_SYMBOLS, family, _TERMINATOR_ROWS)
        for left, freq, alphabet in reversed(self._groups):
            width = 2 if alphabet == 2 else 3
            step = _block_rows(width)
            for start in reversed(range(0, len(left), step)):
                slot, rows = _proxy_rows(left[start : start + step], freq[start : start + step], alphabet)
                coder.encode_reverse(slot, family, rows)
        return coder.get_compressed().astype("<u4", copy=False).tobytes()


class SymbolDecoder:
    """Reads the groups back in the order they were added, from ``data`` (bytes)."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        data = bytes(data)
        if not data:
            raise AnsDecodeError("empty ANS payload (a valid one holds at least one word)")
        if len(data) % 4:
            raise AnsDecodeError(f"ANS payload is {len(data)} bytes, not a whole number of 32-bit words")
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        try:
            self._coder = constriction.stream.stack.AnsCoder(words)
        except ValueError as exc:
            raise AnsDecodeError(f"invalid ANS payload: {exc}") from None
        self._family = _model_family()

    def _check_not_past_end(self, what: str) -> None:
        # A valid stream keeps the state at or above 2**24 until its terminator is read (the
        # encoder starts there, and coding never lowers the state), so fewer than 24 valid
        # bits means that the reader has run past the data. num_valid_bits() is O(1).
        if self._coder.num_valid_bits() < PRECISION:
            raise AnsDecodeError(f"compressed data exhausted {what}: fewer symbols were written than read")

    def read(self, probs: np.ndarray) -> np.ndarray:
        """Decode one group: ``probs (n, K) float64`` (the encoder's rows) -> ``(n,) int64``."""
        probs = _as_probs(probs)
        n, k = probs.shape
        if n == 0 or k == 1:
            return np.zeros(n, dtype=np.int64)
        out = np.empty(n, dtype=np.int64)
        self._check_not_past_end("before this group")
        for start, block, _, _ in _blocks(probs):
            out[start : start + len(block)] = self._coder.decode(self._family, block)
            self._check_not_past_end("inside this group")
        return out

    def read_uniform(self, n: int, alphabet_size: int) -> np.ndarray:
        """Decode ``n`` symbols written by :meth:`SymbolEncoder.add_uniform` -> ``(n,) int64``."""
        if not 1 <= alphabet_size <= MAX_ALPHABET:
            raise ValueError(f"alphabet size {alphabet_size} is outside 1..{MAX_ALPHABET}")
        if n == 0 or alphabet_size == 1:
            return np.zeros(n, dtype=np.int64)
        self._check_not_past_end("before this group")
        model = constriction.stream.model.Uniform(alphabet_size)
        out = np.empty(n, dtype=np.int64)
        step = _block_rows(alphabet_size)
        for start in range(0, n, step):
            out[start : start + step] = self._coder.decode(model, min(step, n - start))
            self._check_not_past_end("inside this group")
        return out

    def finish(self) -> None:
        """Check that the stream ends here: the terminator comes next and nothing after it."""
        self._check_not_past_end("before the terminator")
        symbols = self._coder.decode(self._family, _TERMINATOR_ROWS)
        if not np.array_equal(symbols, _TERMINATOR_SYMBOLS) or not self._coder.is_empty():
            raise AnsDecodeError(
                "ANS stream does not end where expected: the reader's symbol counts or "
                "probabilities differ from the writer's, or the data is corrupt"
            )
