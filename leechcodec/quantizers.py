"""Quantizer modules: Spherical Leech (Λ24-SQ), Binary Spherical (BSQ) and scalar rounding.

Λ24-SQ and BSQ take a latent ``(B, D·k, H, W)``, cut the channels into ``k`` groups of ``D``
(token ``t`` of a position is channels ``[D·t, D·t + D)``), L2-normalize every token and
snap it to the nearest unit codeword. Gradients pass by the straight-through estimator.

Both return a :class:`QuantizerOutput` with

- ``y_hat``  ``(B, D·k, H, W)``: unit codewords (STE gradient to the input),
- ``codes``  ``(B, D·k, H, W)``: the same codewords in integer coordinates
  (Λ24: ``y_hat·√32``, entries in {−4..4}; BSQ: ``y_hat·√L``, entries ±1), STE gradient,
- ``indices`` ``(B, k, H, W)`` int64 codeword indices,

and have an exact inverse ``dequantize(indices) -> y_hat``.

:class:`ScalarQuantizer` (the scalar family's baseline) rounds every channel to the
nearest integer (ties to even); its ``y_hat`` and ``codes`` are those integers (STE
gradient) and its ``indices`` the same integers as int64, of the input's shape.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from leechcodec.kernels import golay
from leechcodec.kernels.index_layout import NUM_CODEWORDS, join, pair_rank
from leechcodec.leech_search import leech_codewords_torch, leech_search_torch

__all__ = ["QuantizerOutput", "SphericalLeechQuantizer", "BinarySphericalQuantizer", "ScalarQuantizer",
           "leech_search_torch"]

LEECH_DIM = 24
LEECH_NORM2 = 32
NUM_LEECH = NUM_CODEWORDS


class QuantizerOutput(NamedTuple):
    y_hat: Tensor
    codes: Tensor
    indices: Tensor


def _to_tokens(y: Tensor, dim: int) -> tuple[Tensor, tuple[int, int, int, int]]:
    """``(B, dim·k, H, W)`` → ``(B·k·H·W, dim)`` tokens ordered (B, k, H, W)."""
    if y.ndim != 4 or y.shape[1] % dim:
        raise ValueError(f"expected a (B, {dim}·k, H, W) latent, got shape {tuple(y.shape)}")
    bsz, c, h, w = y.shape
    k = c // dim
    tokens = y.reshape(bsz, k, dim, h, w).permute(0, 1, 3, 4, 2).reshape(-1, dim)
    return tokens, (bsz, k, h, w)


def _from_tokens(tokens: Tensor, shape: tuple[int, int, int, int]) -> Tensor:
    bsz, k, h, w = shape
    dim = tokens.shape[1]
    return tokens.reshape(bsz, k, h, w, dim).permute(0, 1, 4, 2, 3).reshape(bsz, k * dim, h, w)


def _normalize(tokens: Tensor) -> Tensor:
    return tokens / tokens.norm(dim=1, keepdim=True).clamp_min(1e-12)


def normalize_tokens(y: Tensor, dim: int) -> Tensor:
    """L2-normalize every ``dim``-channel token of a ``(B, dim·k, H, W)`` latent."""
    bsz, c, h, w = y.shape
    return nn.functional.normalize(y.reshape(bsz, c // dim, dim, h, w), dim=2, eps=1e-12).reshape(y.shape)


def _ste_output(u: Tensor, codes: Tensor, scale: float, shape, indices: Tensor) -> QuantizerOutput:
    """Straight-through outputs whose *values* are exactly the codewords (integer codes stay
    integers) and whose gradient is the identity with respect to the normalized tokens."""
    through = u - u.detach()
    y_hat = _from_tokens(codes / scale + through, shape)
    codes_ste = _from_tokens(codes + scale * through, shape)
    return QuantizerOutput(y_hat, codes_ste, indices.reshape(shape))


class _LeechTables(nn.Module):
    """Constant tables of the reference search (non-persistent buffers, rebuilt from code)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.from_numpy(golay.GOLAY_WORDS.astype(np.float32))
        self.register_buffer("signs", 1 - 2 * g, persistent=False)  # (4096, 24)
        self.register_buffer("octad_pos", torch.from_numpy(golay.OCTAD_POSITIONS.copy()), persistent=False)


_TABLES: _LeechTables | None = None


def _leech_tables(device: torch.device) -> _LeechTables:
    global _TABLES
    if _TABLES is None:
        _TABLES = _LeechTables()
    return _TABLES.to(device)


def _leech_search_torch_reference(x: Tensor, chunk: int = 1024) -> Tensor:
    """The previous torch search, kept as the baseline of ``bench_search``: ``(N, 24)`` → ``(N,)``.

    It builds an ``(n, 4096, 24)`` tensor per chunk and indexes with boolean masks (host
    syncs); same answer as the kernel except on exact ties.
    """
    t = _leech_tables(x.device)
    out = []
    for xs in x.float().split(chunk):
        ax = xs.abs()
        # 4²
        top, arg = ax.topk(2, dim=1)
        score0 = 4 * top.sum(1)
        i, j = arg.min(1).values, arg.max(1).values
        rank = pair_rank(i, j)
        rows = torch.arange(xs.shape[0], device=xs.device)
        b0 = (xs[rows, i] < 0).long() + 2 * (xs[rows, j] < 0).long()
        idx0 = join(0, rank, b0)
        # 2⁸
        g = xs[:, t.octad_pos]  # (n, 759, 8)
        ag = g.abs()
        neg = g < 0
        odd = neg.sum(2) % 2
        mn, amin = ag.min(2)
        score1 = 2 * ag.sum(2) - 4 * mn * odd
        o = score1.argmax(1)
        score1 = score1.gather(1, o[:, None])[:, 0]
        negs = neg[rows, o].clone()
        flip = odd[rows, o].bool()
        am = amin[rows, o]
        negs[rows[flip], am[flip]] = ~negs[rows[flip], am[flip]]
        bits1 = (negs[:, :7].long() << torch.arange(7, device=xs.device)).sum(1)
        idx1 = join(1, o, bits1)
        # 3·1²³
        sx = xs[:, None, :] * t.signs[None]  # (n, 4096, 24)
        mn2, jmin = sx.min(2)
        score2 = sx.sum(2) - 4 * mn2
        m = score2.argmax(1)
        score2 = score2.gather(1, m[:, None])[:, 0]
        idx2 = join(2, m, jmin[rows, m])
        scores = torch.stack([score0, score1, score2], 1)
        best = scores.argmax(1)
        out.append(torch.stack([idx0, idx1, idx2], 1).gather(1, best[:, None])[:, 0])
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=x.device)


def _leech_search(tokens: Tensor) -> Tensor:
    """The numba kernel on CPU (about 10× the torch search there), the sync-free torch search
    elsewhere; the same indices either way."""
    if tokens.device.type == "cpu":
        from leechcodec.kernels.leech import search_numba

        return torch.from_numpy(search_numba(tokens.detach().double().numpy()))
    return leech_search_torch(tokens)


class SphericalLeechQuantizer(nn.Module):
    """Λ24-SQ: nearest of the 196,560 unit Leech minimal vectors, per 24-channel token."""

    dim = LEECH_DIM
    num_codewords = NUM_LEECH
    scale = math.sqrt(LEECH_NORM2)

    def forward(self, y: Tensor) -> QuantizerOutput:
        tokens, shape = _to_tokens(y, self.dim)
        u = _normalize(tokens)
        indices = _leech_search(u).to(u.device)
        codes = leech_codewords_torch(indices).to(u.dtype)
        return _ste_output(u, codes, self.scale, shape, indices)

    def quantize(self, y: Tensor) -> tuple[Tensor, Tensor]:
        out = self.forward(y)
        return out.y_hat, out.indices

    def dequantize(self, indices: Tensor) -> Tensor:
        """``(B, k, H, W)`` int64 → unit codewords ``(B, 24·k, H, W)``."""
        codes = leech_codewords_torch(indices.reshape(-1))
        return _from_tokens(codes / self.scale, tuple(indices.shape))


class BinarySphericalQuantizer(nn.Module):
    """BSQ: ``sign(u)/√L`` per L-channel token; index = the L sign bits (bit i set iff u_i < 0)."""

    def __init__(self, dim: int = 18) -> None:
        super().__init__()
        if not 1 <= dim <= 62:
            raise ValueError(f"BSQ token length must be in [1, 62], got {dim}")
        self.dim = dim
        self.num_codewords = 2**dim
        self.scale = math.sqrt(dim)

    def forward(self, y: Tensor) -> QuantizerOutput:
        tokens, shape = _to_tokens(y, self.dim)
        u = _normalize(tokens)
        codes = torch.where(u < 0, -1.0, 1.0).to(u.dtype)
        bits = (u.detach() < 0).long() << torch.arange(self.dim, device=u.device)
        return _ste_output(u, codes, self.scale, shape, bits.sum(1))

    def quantize(self, y: Tensor) -> tuple[Tensor, Tensor]:
        out = self.forward(y)
        return out.y_hat, out.indices

    def dequantize(self, indices: Tensor) -> Tensor:
        bits = (indices.reshape(-1, 1) >> torch.arange(self.dim, device=indices.device)) & 1
        return _from_tokens((1 - 2 * bits.float()) / self.scale, tuple(indices.shape))


class ScalarQuantizer(nn.Module):
    """Uniform scalar quantization: ``round(y)`` per channel, straight-through gradient.

    The model applies it to ``y − μ`` (mean-scale prior); values are exactly the integers.
    """

    def forward(self, y: Tensor) -> QuantizerOutput:
        q = torch.round(y.detach())
        y_hat = q + (y - y.detach())  # value exactly q, gradient the identity
        return QuantizerOutput(y_hat, y_hat, q.to(torch.int64))

    def quantize(self, y: Tensor) -> tuple[Tensor, Tensor]:
        out = self.forward(y)
        return out.y_hat, out.indices

    def dequantize(self, indices: Tensor) -> Tensor:
        """``(B, C, H, W)`` int64 → the same integers as float32."""
        return indices.to(torch.float32)
