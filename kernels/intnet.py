"""Integer convolution networks: the exact, portable path for everything that decides a
coding probability (Ballé, Johnston and Minnen, "Integer Networks for Data Compression
with Latent-Variable Models", ICLR 2019, in the fixed-point form below).

A float network (convolutions, transposed convolutions, ReLUs) is quantized after training
into an :class:`IntNetwork`. Every tensor it computes holds integers; a value ``X`` with
``F`` fractional bits stands for the real number ``X / 2**F``.

Quantization (from the float32 weights; part of the ``.lq`` format, profiles 2 and 3)
-----------------------------------------------------------------------------------
For layer ``l`` with input precision ``F_in`` and output precision ``F_out``, and every
output channel ``c``:

- ``e_c = WEIGHT_BITS − E_c``, where ``max_i |w_{c,i}| = m · 2**E_c`` with ``½ ≤ m < 1``
  (``math.frexp``; ``E_c = 0`` for an all-zero channel), so the integer weights
  ``W_{c,i} = round_half_even(w_{c,i} · 2**e_c)`` satisfy ``|W| ≤ 2**WEIGHT_BITS``;
  ``e_c`` is raised to ``F_out − F_in`` if it is smaller (the shift below must be ≥ 0).
- ``bias_c = round_half_even(b_c · 2**(F_in + e_c))``.
- The accumulator ``acc_c = bias_c + Σ W_{c,i} · X_i`` has ``F_in + e_c`` fractional bits;
  the output is ``Y_c = (acc_c + 2**(s_c − 1)) >> s_c`` (round half up) with
  ``s_c = F_in + e_c − F_out`` (``Y_c = acc_c`` when ``s_c = 0``), then ReLU (hidden
  layers) and a clamp to the layer's integer range.

float32 → float64 conversion, multiplication by a power of two and round-half-even are
exact in IEEE arithmetic, so every machine derives the same integers from the same weights.

Evaluation (why the result cannot depend on the machine)
--------------------------------------------------------
Accumulators are float64 arrays of integers. Each layer's bound ``max_c (|bias_c| +
Σ_i |W_{c,i}|) · max|X|`` is checked when the network is built to stay below
``2**53`` (:data:`EXACT_LIMIT`), so every partial sum, in any order, by any BLAS, thread
count, SIMD width or device, is an exactly representable integer: the sum is exact and
the result is bit-identical everywhere. Inputs are clamped to the declared input range
first, and every layer clamps its output, so no input (a crafted file included) can break
the bound. Requantization runs in int64.

A convolution is computed as one matrix product per kernel tap (``k²`` products of
``(C_out, C_in) × (C_in, H·W)``), accumulated into the output; a transposed convolution
scatters each tap's product into a strided slice. Memory is the input, the output and one
tap's product. :func:`forward` is the numpy implementation (the specification);
``leechcodec.intprior`` runs the same integers in torch (CPU or GPU) and must agree exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["WEIGHT_BITS", "EXACT_LIMIT", "IntLayer", "IntNetwork", "quantize_layer", "forward", "layer_forward"]

#: Integer weights satisfy ``|W| ≤ 2**WEIGHT_BITS``.
WEIGHT_BITS = 15
#: Every partial sum of an accumulator stays strictly below this (float64 integers are exact).
EXACT_LIMIT = 2.0**53


@dataclass(frozen=True)
class IntLayer:
    """One integer layer. ``weight``: conv ``(C_out, C_in, k, k)``, transposed conv
    ``(C_in, C_out, k, k)`` (torch's layouts), float64 integers; ``bias (C_out,)`` float64
    integers; ``shift (C_out,)`` int64 ≥ 0; output clamped to ``[lo, hi]`` after the ReLU."""

    transposed: bool
    weight: np.ndarray
    bias: np.ndarray
    shift: np.ndarray
    stride: int
    padding: int
    output_padding: int
    relu: bool
    lo: int
    hi: int
    in_bound: int  # the largest |input| this layer accepts (inputs are clamped to it)

    @property
    def out_channels(self) -> int:
        return self.weight.shape[1] if self.transposed else self.weight.shape[0]

    def accumulator_bound(self) -> float:
        """Largest possible |partial sum| (must be < :data:`EXACT_LIMIT`)."""
        w = np.abs(self.weight)
        per_out = (w.sum(axis=(0, 2, 3)) if self.transposed else w.sum(axis=(1, 2, 3))) * float(self.in_bound)
        return float(np.max(per_out + np.abs(self.bias)))


@dataclass(frozen=True)
class IntNetwork:
    """A chain of :class:`IntLayer`; input with ``in_bits`` fractional bits, clamped to
    ``[-in_bound, in_bound]``; output with ``out_bits`` fractional bits."""

    layers: tuple[IntLayer, ...]
    in_bits: int
    out_bits: int


def quantize_layer(weight: np.ndarray, bias: np.ndarray, *, transposed: bool, stride: int, padding: int,
                   output_padding: int, relu: bool, in_bits: int, out_bits: int, in_bound: int, lo: int,
                   hi: int) -> IntLayer:
    """Quantize one float32 layer (torch layouts) as the module docstring specifies.

    Raises ``ValueError`` if the accumulator bound reaches :data:`EXACT_LIMIT`."""
    w = np.asarray(weight, dtype=np.float32).astype(np.float64)
    b = np.asarray(bias, dtype=np.float32).astype(np.float64)
    per_out = np.abs(w).max(axis=(0, 2, 3)) if transposed else np.abs(w).max(axis=(1, 2, 3))
    exps = np.array([math.frexp(float(m))[1] for m in per_out], dtype=np.int64)
    e = np.maximum(WEIGHT_BITS - exps, out_bits - in_bits)
    scale = np.ldexp(1.0, e)  # exact powers of two, (C_out,)
    wq = np.round(w * (scale[None, :, None, None] if transposed else scale[:, None, None, None]))
    bq = np.round(b * np.ldexp(1.0, e + in_bits))
    layer = IntLayer(transposed, wq, bq, (in_bits + e - out_bits).astype(np.int64), stride, padding,
                     output_padding, relu, int(lo), int(hi), int(in_bound))
    bound = layer.accumulator_bound()
    if not bound < EXACT_LIMIT:
        raise ValueError(f"integer layer accumulator bound 2**{math.log2(bound):.1f} reaches 2**53")
    return layer


def _requantize(acc: np.ndarray, layer: IntLayer) -> np.ndarray:
    """float64 integer accumulator ``(C, H, W)`` → float64 integer output of the layer."""
    a = acc.astype(np.int64)
    s = layer.shift[:, None, None]
    half = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), 0)
    y = (a + half) >> s
    if layer.relu:
        y = np.maximum(y, 0)
    return np.clip(y, layer.lo, layer.hi).astype(np.float64)


def _conv_acc(x: np.ndarray, layer: IntLayer) -> np.ndarray:
    c, h, w = x.shape
    k, s, p = layer.weight.shape[-1], layer.stride, layer.padding
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    xp = np.zeros((c, h + 2 * p, w + 2 * p))
    xp[:, p : p + h, p : p + w] = x
    taps = np.ascontiguousarray(layer.weight.transpose(2, 3, 0, 1))  # (k, k, C_out, C_in): BLAS operands
    acc = np.empty((layer.out_channels, ho * wo))
    acc[:] = layer.bias[:, None]
    for ty in range(k):
        for tx in range(k):
            if not taps[ty, tx].any():  # a tap of zero weights adds nothing (the checkerboard's context)
                continue
            tap = np.ascontiguousarray(xp[:, ty : ty + s * (ho - 1) + 1 : s, tx : tx + s * (wo - 1) + 1 : s])
            acc += taps[ty, tx] @ tap.reshape(c, -1)
    return acc.reshape(-1, ho, wo)


def _deconv_acc(x: np.ndarray, layer: IntLayer) -> np.ndarray:
    c, h, w = x.shape
    k, s, p, op = layer.weight.shape[-1], layer.stride, layer.padding, layer.output_padding
    ho, wo = (h - 1) * s - 2 * p + k + op, (w - 1) * s - 2 * p + k + op
    full = np.zeros((layer.out_channels, (h - 1) * s + k + op, (w - 1) * s + k + op))
    taps = np.ascontiguousarray(layer.weight.transpose(2, 3, 1, 0))  # (k, k, C_out, C_in)
    flat = np.ascontiguousarray(x).reshape(c, -1)
    for ty in range(k):
        for tx in range(k):
            prod = (taps[ty, tx] @ flat).reshape(-1, h, w)
            full[:, ty : ty + s * (h - 1) + 1 : s, tx : tx + s * (w - 1) + 1 : s] += prod
    acc = full[:, p : p + ho, p : p + wo]
    return acc + layer.bias[:, None, None]


def layer_forward(x: np.ndarray, layer: IntLayer) -> np.ndarray:
    """One layer on ``(C_in, H, W)`` float64 integers (clamped to the layer's input range)."""
    x = np.clip(np.asarray(x, dtype=np.float64), -layer.in_bound, layer.in_bound)
    acc = _deconv_acc(x, layer) if layer.transposed else _conv_acc(x, layer)
    return _requantize(acc, layer)


def forward(net: IntNetwork, x: np.ndarray) -> np.ndarray:
    """Run the network on ``(C, H, W)`` integers (any integer or integer-valued float dtype);
    returns ``(C_out, H', W')`` int64 with ``net.out_bits`` fractional bits."""
    y = np.asarray(x, dtype=np.float64)
    if not np.array_equal(y, np.round(y)):
        raise ValueError("integer network input must be integer-valued")
    for layer in net.layers:
        y = layer_forward(y, layer)
    return y.astype(np.int64)
