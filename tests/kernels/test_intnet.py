"""Integer networks: exact against Python-integer brute force, independent of summation order."""

from __future__ import annotations

import numpy as np
import pytest

from leechcodec.kernels import intnet


def _layer(rng, transposed: bool, cin: int = 3, cout: int = 4, k: int = 5, stride: int = 2, relu: bool = True,
           in_bits: int = 8, out_bits: int = 12, in_bound: int = 1 << 14, scale: float = 0.3) -> intnet.IntLayer:
    shape = (cin, cout, k, k) if transposed else (cout, cin, k, k)
    w = rng.normal(0, scale, shape).astype(np.float32)
    b = rng.normal(0, 1, cout).astype(np.float32)
    hi = (1 << 24) - 1
    return intnet.quantize_layer(w, b, transposed=transposed, stride=stride, padding=k // 2,
                                 output_padding=stride - 1 if transposed else 0, relu=relu, in_bits=in_bits,
                                 out_bits=out_bits, in_bound=in_bound, lo=0 if relu else -hi, hi=hi)


def _brute(x: np.ndarray, layer: intnet.IntLayer) -> np.ndarray:
    """The layer with Python integers and explicit loops (the definition, no BLAS)."""
    w = layer.weight.astype(np.int64)
    cin, h, wd = x.shape
    k, s, p = w.shape[-1], layer.stride, layer.padding
    xi = [[[int(min(max(v, -layer.in_bound), layer.in_bound)) for v in row] for row in ch] for ch in x]
    if layer.transposed:
        op = layer.output_padding
        ho, wo = (h - 1) * s - 2 * p + k + op, (wd - 1) * s - 2 * p + k + op
        acc = [[[int(layer.bias[c])] * wo for _ in range(ho)] for c in range(layer.out_channels)]
        for ci in range(cin):
            for i in range(h):
                for j in range(wd):
                    for ty in range(k):
                        for tx in range(k):
                            oy, ox = s * i + ty - p, s * j + tx - p
                            if 0 <= oy < ho and 0 <= ox < wo:
                                for c in range(layer.out_channels):
                                    acc[c][oy][ox] += int(w[ci, c, ty, tx]) * xi[ci][i][j]
    else:
        ho, wo = (h + 2 * p - k) // s + 1, (wd + 2 * p - k) // s + 1
        acc = [[[int(layer.bias[c])] * wo for _ in range(ho)] for c in range(layer.out_channels)]
        for c in range(layer.out_channels):
            for oy in range(ho):
                for ox in range(wo):
                    total = 0
                    for ci in range(cin):
                        for ty in range(k):
                            for tx in range(k):
                                iy, ix = s * oy + ty - p, s * ox + tx - p
                                if 0 <= iy < h and 0 <= ix < wd:
                                    total += int(w[c, ci, ty, tx]) * xi[ci][iy][ix]
                    acc[c][oy][ox] += total
    out = np.empty((layer.out_channels, ho, wo), dtype=np.int64)
    for c in range(layer.out_channels):
        sh = int(layer.shift[c])
        for oy in range(ho):
            for ox in range(wo):
                v = acc[c][oy][ox]
                v = (v + (1 << (sh - 1))) >> sh if sh else v  # round half up
                if layer.relu:
                    v = max(v, 0)
                out[c, oy, ox] = min(max(v, layer.lo), layer.hi)
    return out


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("stride", [1, 2])
def test_layer_matches_python_integer_brute_force(transposed, stride):
    rng = np.random.default_rng(stride + 2 * transposed)
    layer = _layer(rng, transposed, stride=stride, relu=not transposed)
    x = rng.integers(-(1 << 13), 1 << 13, size=(3, 5, 4))
    x[0, 0, 0] = 1 << 20  # beyond the input bound: clamped by both
    got = intnet.layer_forward(x, layer)
    assert np.array_equal(got.astype(np.int64), _brute(x, layer))


def test_quantization_rules():
    rng = np.random.default_rng(0)
    layer = _layer(rng, False, scale=3.0)
    w = np.abs(layer.weight)
    assert w.max() <= 2**intnet.WEIGHT_BITS and np.array_equal(layer.weight, np.round(layer.weight))
    # Each output channel uses its range: the largest weight is in [2**14, 2**15].
    assert np.all(w.max(axis=(1, 2, 3)) >= 2 ** (intnet.WEIGHT_BITS - 1))
    assert np.all(layer.shift >= 0)
    assert layer.accumulator_bound() < intnet.EXACT_LIMIT
    zero = intnet.quantize_layer(np.zeros((2, 1, 3, 3), np.float32), np.zeros(2, np.float32), transposed=False,
                                 stride=1, padding=1, output_padding=0, relu=False, in_bits=8, out_bits=8,
                                 in_bound=100, lo=-100, hi=100)
    assert not zero.weight.any()


def test_a_bound_that_could_round_is_refused():
    w = np.ones((1, 64, 5, 5), np.float32)
    with pytest.raises(ValueError, match="reaches 2\\*\\*53"):
        intnet.quantize_layer(w, np.zeros(1, np.float32), transposed=False, stride=1, padding=2, output_padding=0,
                              relu=False, in_bits=8, out_bits=8, in_bound=1 << 40, lo=-1, hi=1)


def test_summation_order_cannot_change_the_result():
    """Permuting input channels reorders every accumulation; the integers stay the same
    (a float32 network would differ in the last bits)."""
    rng = np.random.default_rng(1)
    layer = _layer(rng, False, cin=64, cout=8, stride=1, in_bound=1 << 24)
    x = rng.integers(-(1 << 24), 1 << 24, size=(64, 6, 7))
    perm = rng.permutation(64)
    permuted = intnet.IntLayer(**{**layer.__dict__, "weight": layer.weight[:, perm]})
    assert np.array_equal(intnet.layer_forward(x, layer), intnet.layer_forward(x[perm], permuted))


def test_network_input_must_be_integers():
    rng = np.random.default_rng(2)
    net = intnet.IntNetwork((_layer(rng, True),), 8, 12)
    with pytest.raises(ValueError, match="integer-valued"):
        intnet.forward(net, np.full((3, 2, 2), 0.5))
    assert intnet.forward(net, np.ones((3, 2, 2), dtype=np.int64)).dtype == np.int64
