"""ANS coding: round trips, golden words, the information bound, and stream-end checks."""

from __future__ import annotations

import subprocess
import sys
import time
import tracemalloc

import constriction
import numpy as np
import pytest

from leechcodec.bitstream import ans
from leechcodec.bitstream.ans import (
    MAX_ALPHABET,
    AnsDecodeError,
    SymbolDecoder,
    SymbolEncoder,
    quantized_frequencies,
)

TOTAL = 1 << 24


def softmax_rows(rng: np.random.Generator, n: int, k: int, temperature: float = 3.0) -> np.ndarray:
    logits = rng.normal(size=(n, k)) * temperature
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def sample(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cdf[:, -1]
    return np.minimum((cdf < u[:, None]).sum(axis=1), probs.shape[1] - 1)


def dependent_probs(previous: np.ndarray, k: int) -> np.ndarray:
    """Rows that depend on earlier decoded symbols (a stand-in for a context model)."""
    grid = np.arange(k)[None, :]
    centre = (previous[:, None] * 7) % k
    return np.exp(-0.5 * ((grid - centre) / 2.0) ** 2) + 1e-3 * (grid % 3 == 0)


def test_round_trip_dependent_groups():
    rng = np.random.default_rng(0)
    shape_probs = softmax_rows(rng, 500, 3)
    shape = sample(rng, shape_probs)
    octad_probs = dependent_probs(shape, 759)
    octad = sample(rng, octad_probs)
    sign_probs = dependent_probs(octad, 128)
    signs = sample(rng, sign_probs)
    position = rng.integers(0, 24, 500)

    enc = SymbolEncoder()
    enc.add(shape, shape_probs)
    enc.add(octad, octad_probs)
    enc.add(np.array([], dtype=np.int64), np.ones((0, 5)))
    enc.add(np.zeros(7, dtype=np.int64), np.ones((7, 1)))  # 1-symbol alphabet: free
    enc.add(signs, sign_probs)
    enc.add_uniform(position, 24)
    enc.add(np.array([1, 0]), np.array([[0.5, 0.5], [0.9, 0.1]]))
    assert enc.num_symbols == 500 * 4 + 2
    data = enc.finish()

    dec = SymbolDecoder(data)
    got_shape = dec.read(shape_probs)
    got_octad = dec.read(dependent_probs(got_shape, 759))
    assert dec.read(np.ones((0, 5))).shape == (0,)
    assert np.array_equal(dec.read(np.ones((7, 1))), np.zeros(7))
    got_signs = dec.read(dependent_probs(got_octad, 128))
    got_position = dec.read_uniform(500, 24)
    got_last = dec.read(np.array([[0.5, 0.5], [0.9, 0.1]]))
    dec.finish()
    for want, got in [(shape, got_shape), (octad, got_octad), (signs, got_signs), (position, got_position)]:
        assert got.dtype == np.int64
        assert np.array_equal(want, got)
    assert list(got_last) == [1, 0]


def test_golden_words():
    enc = SymbolEncoder()
    enc.add(
        np.array([0, 4, 1]),
        np.array([[0.3, 0.1, 0.1, 0.3, 0.2], [0.1, 0.4, 0.2, 0.1, 0.2], [0.4, 0.2, 0.1, 0.2, 0.1]]),
    )
    enc.add(np.array([1, 0]), np.array([[0.0, 1.0], [0.25, 0.75]]))
    enc.add_uniform(np.array([5, 0, 23]), 24)
    data = enc.finish()
    assert list(np.frombuffer(data, dtype="<u4")) == [390393813, 18000]
    assert data.hex() == "d5ef441750460000"  # little-endian words, whatever the host


def test_empty_stream_is_the_terminator_word():
    data = SymbolEncoder().finish()
    assert data == (1 << 24).to_bytes(4, "little")
    SymbolDecoder(data).finish()


@pytest.mark.parametrize("k", [3, 24, 276, 4096])
def test_information_bound(k):
    """8 * bytes >= information content under the quantized model, and <= 1.01 x it + 64 bits."""
    rng = np.random.default_rng(k)
    n, batch = 10_000, max(1, (1 << 21) // k)
    base = softmax_rows(rng, 32, k, temperature=2.0)
    base[:, ::5] = 0.0  # zero-probability symbols get the floor
    base[:, 1] = np.maximum(base[:, 1], 1e-3)
    enc, batches, info = SymbolEncoder(), [], 0.0
    for start in range(0, n, batch):
        rows = base[rng.integers(0, len(base), min(batch, n - start))]
        symbols = sample(rng, rows)
        enc.add(symbols, rows)
        freq = quantized_frequencies(rows)[np.arange(len(rows)), symbols]
        info += float(np.sum(24 - np.log2(freq)))
        batches.append((symbols, rows))
    data = enc.finish()
    assert enc.ideal_bits == pytest.approx(info, rel=1e-12)
    assert enc.float_ideal_bits == pytest.approx(enc.ideal_bits, rel=0.01)  # 24-bit quantization costs little
    bits = 8 * len(data)
    assert enc.ideal_bits <= bits <= 1.01 * enc.ideal_bits + 64

    dec = SymbolDecoder(data)
    for symbols, rows in batches:
        assert np.array_equal(dec.read(rows), symbols)
    dec.finish()


def test_zero_probability_symbol_is_encodable():
    probs = np.array([[0.5, 0.5, 0.0, 0.0]] * 1000)
    symbols = np.full(1000, 2)
    enc = SymbolEncoder()
    enc.add(symbols, probs)
    assert enc.float_ideal_bits == np.inf
    assert enc.ideal_bits == 24 * 1000  # frequency 1 of 2**24: the floor
    data = enc.finish()
    assert 8 * len(data) <= 24 * 1000 + 64
    dec = SymbolDecoder(data)
    assert np.array_equal(dec.read(probs), symbols)
    dec.finish()
    assert quantized_frequencies(probs)[0].tolist() == [TOTAL // 2 - 1, TOTAL // 2 - 1, 1, 1]


def test_tiny_and_huge_scales_round_trip():
    rng = np.random.default_rng(5)
    rows = softmax_rows(rng, 300, 40)
    rows[:100] *= 1e-280
    rows[100:200] *= 1e280
    rows[200:, 3] = 1e-300
    symbols = rng.integers(0, 40, 300)
    enc = SymbolEncoder()
    enc.add(symbols, rows)
    dec = SymbolDecoder(enc.finish())
    assert np.array_equal(dec.read(rows), symbols)
    dec.finish()


def test_quantized_model_matches_constriction_decoder():
    """Probe constriction's quantile function with crafted one-word states.

    From state ``2**24 + u`` (u < 2**24) decoding returns the symbol whose interval holds
    ``u`` and leaves state ``freq + u - left``, which reveals constriction's interval.
    """
    rng = np.random.default_rng(7)
    family = constriction.stream.model.Categorical(perfect=False)
    for trial in range(60):
        k = int(rng.choice([2, 3, 24, 276, 4096]))
        row = rng.random(k) ** rng.uniform(1, 40)
        row[rng.random(k) < 0.3] = 0.0
        row[0] += 1e-9
        row *= 10.0 ** rng.uniform(-200, 200)
        freq = quantized_frequencies(row[None])[0]
        assert freq.min() >= 1 and freq.sum() == TOTAL
        left = np.concatenate([[0], np.cumsum(freq)])
        for symbol in rng.integers(0, k, 4):
            for u in (left[symbol], left[symbol + 1] - 1):
                coder = constriction.stream.stack.AnsCoder(np.array([TOTAL + u], dtype=np.uint32))
                assert coder.decode(family, row[None].copy())[0] == symbol
                words = coder.get_compressed()
                state = int(words[0]) if len(words) else 0
                assert state == freq[symbol] + u - left[symbol]


def test_decode_in_fresh_process(tmp_path):
    rng = np.random.default_rng(11)
    probs = softmax_rows(rng, 2000, 276)
    symbols = sample(rng, probs)
    enc = SymbolEncoder()
    enc.add(symbols, probs)
    enc.add_uniform(symbols % 128, 128)
    payload = tmp_path / "payload.bin"
    payload.write_bytes(enc.finish())
    np.save(tmp_path / "symbols.npy", symbols)
    script = f"""
import numpy as np
from leechcodec.bitstream.ans import SymbolDecoder
rng = np.random.default_rng(11)
logits = rng.normal(size=(2000, 276)) * 3.0
p = np.exp(logits - logits.max(axis=1, keepdims=True))
probs = p / p.sum(axis=1, keepdims=True)
dec = SymbolDecoder(open({str(payload)!r}, "rb").read())
got = dec.read(probs)
mod = dec.read_uniform(2000, 128)
dec.finish()
want = np.load({str(tmp_path / "symbols.npy")!r})
assert np.array_equal(got, want) and np.array_equal(mod, want % 128)
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def make_stream(n: int = 50, k: int = 6, seed: int = 3):
    rng = np.random.default_rng(seed)
    probs = softmax_rows(rng, n, k)
    symbols = sample(rng, probs)
    enc = SymbolEncoder()
    enc.add(symbols, probs)
    return enc.finish(), probs, symbols


def test_reading_more_symbols_than_written_is_detected():
    data, probs, _ = make_stream()
    dec = SymbolDecoder(data)
    dec.read(probs)
    with pytest.raises(AnsDecodeError, match="exhausted inside this group"):
        dec.read(probs[:1])
    dec = SymbolDecoder(data)
    with pytest.raises(AnsDecodeError, match="exhausted"):
        dec.read(np.concatenate([probs] * 20))


@pytest.mark.parametrize("p_first", [0.5, 1 - 1e-6, 1 - 2.0**-23])
def test_reads_past_the_end_stop_within_one_block(p_first):
    """Near-certain symbols cost almost no bits, so a reader past the end could decode them
    forever; the state check stops it inside the first block (here: one block of rows)."""
    data = SymbolEncoder().finish()  # an empty stream: the terminator only, 4 bytes
    assert len(data) == 4
    rows = ans._block_rows(2)
    probs = np.broadcast_to(np.array([p_first, 1 - p_first]), (rows, 2))
    with pytest.raises(AnsDecodeError, match="exhausted inside this group"):
        SymbolDecoder(data).read(probs)
    with pytest.raises(AnsDecodeError, match="exhausted inside this group"):
        SymbolDecoder(data).read_uniform(ans._block_rows(65536), 65536)


def test_reading_fewer_symbols_than_written_is_detected():
    data, probs, _ = make_stream()
    dec = SymbolDecoder(data)
    dec.read(probs[:-1])
    with pytest.raises(AnsDecodeError, match="does not end where expected"):
        dec.finish()


def test_probability_mismatch_is_detected():
    data, probs, _ = make_stream(n=400, k=24)
    perturbed = probs.copy()
    perturbed[:, 0] *= 1.5
    dec = SymbolDecoder(data)
    with pytest.raises(AnsDecodeError):
        dec.read(perturbed)
        dec.finish()


@pytest.mark.parametrize(
    "payload, message",
    [(b"", "empty ANS payload"), (b"\x01\x02\x03", "not a whole number"), (b"\x05\x00\x00\x00" + bytes(4), "invalid")],
)
def test_malformed_payloads(payload, message):
    with pytest.raises(AnsDecodeError, match=message):
        SymbolDecoder(payload)


def test_errors_are_value_errors():
    assert issubclass(AnsDecodeError, ValueError)


def test_invalid_inputs():
    enc = SymbolEncoder()
    with pytest.raises(ValueError, match="0..2"):
        enc.add(np.array([3]), np.ones((1, 3)))
    with pytest.raises(ValueError, match="2 symbols but 1"):
        enc.add(np.array([0, 1]), np.ones((1, 3)))
    with pytest.raises(ValueError, match="negative or NaN"):
        enc.add(np.array([0]), np.array([[0.5, -0.1, 0.6]]))
    with pytest.raises(ValueError, match="negative or NaN"):
        enc.add(np.array([0]), np.array([[0.5, np.nan, 0.6]]))
    with pytest.raises(ValueError, match="sums to 0.0"):
        enc.add(np.array([0]), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="sums to 1e-300"):
        enc.add(np.array([0]), np.array([[1e-300, 0.0]]))
    with pytest.raises(ValueError, match="sums to inf"):
        enc.add(np.array([0]), np.array([[1e308, 1e308]]))
    with pytest.raises(ValueError, match="alphabet size"):
        enc.add(np.zeros(1, dtype=int), np.ones((1, MAX_ALPHABET + 1)))
    with pytest.raises(ValueError, match="integer"):
        enc.add(np.array([0.0]), np.ones((1, 3)))
    dec = SymbolDecoder(SymbolEncoder().finish())
    with pytest.raises(ValueError, match="sums to"):
        dec.read(np.zeros((1, 3)))


def test_large_group_is_blocked_and_fast():
    """One group of 10,000 rows x 4,096 symbols (a 328 MB float64 array if materialized)
    is handled in blocks of rows: bounded memory, no per-symbol Python loop."""
    rng = np.random.default_rng(13)
    n = 10_000
    rows = np.broadcast_to(softmax_rows(rng, 1, 4096), (n, 4096))  # zero-copy view
    symbols = sample(rng, rows[:n])
    start = time.perf_counter()
    tracemalloc.start()
    try:
        enc = SymbolEncoder()
        enc.add(symbols, rows)
        data = enc.finish()
        dec = SymbolDecoder(data)
        got = dec.read(rows)
        dec.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.array_equal(got, symbols)
    assert peak < 64 << 20
    assert time.perf_counter() - start < 30
