"""Exact, differentiable priors over quantizer codewords (torch).

The prior network predicts, for every token, two numbers per coordinate, ``a_i`` and
``b_i``, that define coordinate-factorized logits over the integer coordinates of the
codewords (DESIGN §3):

    ℓ(v) = Σ_i f_i(v_i),   f_i(v) = a_i·v − b_i·v²,    p(v) = exp ℓ(v) / Z.

This is an exponential family with sufficient statistics v and v²; a Gaussian in integer
coordinates, f_i(v) = −(v − m_i)²/(2 s_i²), is the special case a = m/s², b = 1/(2s²), and
allowing any real ``b`` also lets a coordinate prefer large magnitudes. ``f`` is smooth in
``v``, so the rate passes a useful gradient through the straight-through estimator.

Λ24 (integer coordinates, squared norm 32) — Z is exact, split by codeword shape:

- 4²:    Σ_{i<j} h_i h_j with log h_i = −16 b_i + log 2cosh(4 a_i);
- 2⁸:    Σ_octads ½ Π_{i∈O} e^{−4 b_i} 2cosh(2 a_i) · (1 + Π_{i∈O} tanh(2 a_i));
- 3·1²³: Σ_{Golay c} exp(Σ_i (s_i a_i − b_i)) · Σ_j exp(−8 b_j − 4 s_j a_j),  s = (−1)^c.

The Golay sums are three (N, 24) × (24, 4096) products per batch; the inner Σ_j is
computed as G·E¹ + (1 − G)·E⁰ so that no term cancels. The numba kernels in
``leechcodec.kernels.leech_prior`` compute the same quantities in float64 for coding.

BSQ (codewords sign(u)/√L, integer coordinates ±1): v² = 1, so b drops out and the
bits are independent with p(v_i = +1) = σ(2 a_i); the same (a, b) interface serves both.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from leechcodec.kernels import golay

__all__ = ["leech_log_partition", "leech_log_prob", "bsq_log_prob", "factorized_logits"]

_LOG_HALF = math.log(0.5)


def _constant(table, dtype, device) -> Tensor:
    return torch.as_tensor(table.copy(), dtype=dtype, device=device)


_cache: dict = {}


def _tables(dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    key = (dtype, str(device))
    if key not in _cache:
        g = _constant(golay.GOLAY_WORDS, dtype, device)  # (4096, 24)
        octads = _constant(golay.OCTAD_INDICATOR, dtype, device)  # (759, 24)
        i, j = torch.triu_indices(24, 24, offset=1, device=device)  # 276 pairs, lexicographic
        _cache[key] = (g.T.contiguous(), (1 - g).T.contiguous(), octads.T.contiguous(), i, j)
    return _cache[key]


def _log2cosh(x: Tensor) -> Tensor:
    ax = x.abs()
    return ax + torch.log1p(torch.exp(-2 * ax))


def leech_log_partition(a: Tensor, b: Tensor) -> Tensor:
    """log Z over the 196,560 Λ24 codewords.

    Args:
        a, b: ``(N, 24)`` float tensors, the per-coordinate natural parameters.

    Returns:
        ``(N,)`` log Z, exact up to floating-point rounding.
    """
    octad_t, pi, pj = _tables(a.dtype, a.device)[2:]
    # Shape 4²: all 276 pairs.
    lh = -16 * b + _log2cosh(4 * a)
    s0 = torch.logsumexp(lh[:, pi] + lh[:, pj], dim=1)
    # Shape 2⁸: 759 octads, with the even-sign constraint through the tanh product.
    la = -4 * b + _log2cosh(2 * a)
    r = torch.tanh(2 * a)
    log_abs_r = torch.log(r.abs().clamp_min(1e-30))
    negative = (r < 0).to(a.dtype)
    parity = torch.remainder(negative @ octad_t, 2)  # (N, 759) count of negative factors mod 2
    prod_r = (1 - 2 * parity) * torch.exp(log_abs_r @ octad_t)
    s1 = torch.logsumexp(_LOG_HALF + la @ octad_t + torch.log((1 + prod_r).clamp_min(1e-30)), dim=1)
    # Shape 3·1²³: 4096 Golay sign patterns s = 1 − 2c (hand-written backward, chunked).
    s2 = _GolayTerm.apply(a, b)
    return torch.logsumexp(torch.stack([s0, s1, s2], dim=1), dim=1)


_CHUNK = 512


def _golay_chunk(a: Tensor, b: Tensor, gt: Tensor, gbar_t: Tensor):
    """Shape-3·1²³ pieces for a chunk of tokens: log-sum, softmax weights W and P/S (V)."""
    outer = -2 * (a @ gt)  # Σ_i s_i a_i without the constant Σ_i a_i
    big = outer.amax(dim=1, keepdim=True)
    p = torch.exp(outer - big)
    e_plus = -8 * b - 4 * a  # c_j = 0 (s_j = +1)
    e_minus = -8 * b + 4 * a  # c_j = 1 (s_j = −1)
    m = torch.maximum(e_plus, e_minus).amax(dim=1, keepdim=True)
    e_plus, e_minus = torch.exp(e_plus - m), torch.exp(e_minus - m)
    inner = e_minus @ gt + e_plus @ gbar_t
    total = (p * inner).sum(dim=1, keepdim=True)
    value = torch.log(total) + big + m + a.sum(1, keepdim=True) - b.sum(1, keepdim=True)
    return value[:, 0], p, inner, total, e_plus, e_minus


class _GolayTerm(torch.autograd.Function):
    """log Σ_c exp(Σ_i s_i a_i − b_i) Σ_j exp(−8 b_j − 4 s_j a_j) over the 4096 Golay words.

    Forward and backward run in token chunks and recompute the (chunk, 4096) products
    instead of storing them: autograd's version keeps several N×4096 tensors alive.
    """

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        gt, gbar_t = _tables(a.dtype, a.device)[:2]
        ctx.save_for_backward(a, b)
        return torch.cat([_golay_chunk(ac, bc, gt, gbar_t)[0] for ac, bc in zip(a.split(_CHUNK), b.split(_CHUNK))])

    @staticmethod
    def backward(ctx, grad: Tensor):
        a, b = ctx.saved_tensors
        gt, gbar_t = _tables(a.dtype, a.device)[:2]
        ga, gb = [], []
        for ac, bc, gc in zip(a.split(_CHUNK), b.split(_CHUNK), grad.split(_CHUNK)):
            _, p, inner, total, e_plus, e_minus = _golay_chunk(ac, bc, gt, gbar_t)
            v = p / total  # ∂/∂inner
            w = v * inner  # ∂/∂outer (softmax weights over the Golay words)
            vg, vgbar = v @ gt.T, v @ gbar_t.T  # (n, 24)
            da = 1 - 2 * (w @ gt.T) + 4 * e_minus * vg - 4 * e_plus * vgbar
            db = -1 - 8 * e_minus * vg - 8 * e_plus * vgbar
            ga.append(da * gc[:, None])
            gb.append(db * gc[:, None])
        return torch.cat(ga), torch.cat(gb)


def factorized_logits(a: Tensor, b: Tensor, v: Tensor) -> Tensor:
    """ℓ(v) = Σ_i a_i v_i − b_i v_i² for ``(N, D)`` parameters and codes; returns ``(N,)``."""
    return (a * v - b * v * v).sum(dim=1)


def leech_log_prob(a: Tensor, b: Tensor, v: Tensor) -> Tensor:
    """Exact log p(v) of integer-coordinate Λ24 codes ``v`` ``(N, 24)``; returns ``(N,)``.

    ``v`` may carry a straight-through gradient; its values must be codewords.
    """
    return factorized_logits(a, b, v) - leech_log_partition(a, b)


def bsq_log_prob(a: Tensor, v: Tensor) -> Tensor:
    """Exact log p(v) of BSQ codes ``v`` ∈ {±1}^L ``(N, L)`` under independent bits; ``(N,)``."""
    return torch.nn.functional.logsigmoid(2 * a * v).sum(dim=1)
