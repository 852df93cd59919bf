"""Latent codecs: one class per quantizer family, behind one small interface.

A latent codec turns the analysis latent ``y`` and the hyper-synthesis output into what
the model needs, in the spirit of CompressAI's ``LatentCodec``:

- :meth:`LatentCodec.params` — h_s output → the family's prior parameters (Λ24 / BSQ:
  ``(a, b)`` clamped to the coding range; scalar: ``(means, scales)``);
- :meth:`LatentCodec.quantize` — ``y`` → :class:`Quantized` (the input of g_s with its
  straight-through gradient, what the rate is measured on, and the symbols);
- :meth:`LatentCodec.bits` — the rate in bits per image, **the one place it is computed**:
  training (``LeechCodecModel.forward``), encoder-side refinement
  (:func:`leechcodec.refine.rd_cost`) and the coder's ideal-bits check all call it;
- :meth:`LatentCodec.encode` / :meth:`LatentCodec.decode` — the family's part of the
  ``.lq`` token chunk (the coding functions themselves are the format spec in
  :mod:`leechcodec.coding`).

:data:`LATENT_CODECS` maps a family's name (``ModelConfig.quantizer``, the zoo registry's
``quantizer`` field) to its class; nothing else in the package branches on the name. A
latent codec holds no weights: the modules it declares (:meth:`LatentCodec.modules`) are
registered on the model under their historical names (``quantizer``,
``gaussian_conditional``), so every shipped state dict loads unchanged.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from leechcodec.layers import GaussianConditional, _LowerBoundFunction
from leechcodec.prior import bsq_log_prob, leech_log_prob
from leechcodec.quantizers import BinarySphericalQuantizer, ScalarQuantizer, SphericalLeechQuantizer, normalize_tokens

if TYPE_CHECKING:  # pragma: no cover
    from leechcodec.bitstream.ans import SymbolDecoder, SymbolEncoder
    from leechcodec.models import LeechCodecModel, ModelConfig

__all__ = ["Quantized", "LatentCodec", "Leech24Codec", "BSQCodec", "ScalarCodec", "GainShapeLeech24Codec",
           "LATENT_CODECS", "latent_codec_class", "gain_likelihood", "PARAM_STEP", "A_MAX", "B_MIN", "B_MAX",
           "GAIN_LEVELS", "GAIN_SCALE_MIN"]

#: Grid step of the prior parameters a, b when they define coding probabilities.
PARAM_STEP = 1.0 / 256
#: Their coding range (part of the file format: the coder's integer tables span it).
A_MAX = 16.0
B_MIN, B_MAX = -4.0, 8.0
#: Gain–shape tokens: the coded gain is an integer ``0 ≤ ĝ < GAIN_LEVELS`` (part of the format).
GAIN_LEVELS = 64
#: Lower bound of the gain prior's scale (the coder's smallest table scale, 0.11).
GAIN_SCALE_MIN = 0.11


class Quantized(NamedTuple):
    y_hat: Tensor  # input of g_s: the quantized latent, straight-through gradient to y
    rate_input: Tensor  # what the rate is measured on (codes; the scalar family's noisy or rounded latent)
    indices: Tensor  # the symbols the coder writes


def _float32(t: Tensor) -> torch.autocast:
    """Autocast off on ``t``'s device: under mixed precision only the transforms run in reduced
    precision; quantizers, entropy models and priors take float32 inputs and stay float32."""
    return torch.autocast(t.device.type, enabled=False)


class LatentCodec:
    """The interface (see the module docstring). ``out_bits``: fractional bits of the
    integer hyper-synthesis output in the exact coding path (:mod:`leechcodec.intprior`)."""

    name: ClassVar[str]
    out_bits: ClassVar[int]
    #: The coder profiles (:mod:`leechcodec.bitstream.container`) that can code the family:
    #: 1, the float prior of format 1.0, 2, the exact prior of format 1.1, and 3, its
    #: portable arithmetic (format 1.2).
    profiles: ClassVar[tuple[int, ...]] = (1, 2, 3)

    def __init__(self, config: ModelConfig) -> None:
        self.config = config

    @classmethod
    def token_dim(cls, config: ModelConfig) -> int:
        """Latent channels per token (24 for Λ24 and the scalar family's channel groups)."""
        return 24

    @classmethod
    def param_channels(cls, config: ModelConfig) -> int:
        """Output channels of h_s, the prior's parameters per latent position (here two per
        latent channel: Λ24 / BSQ ``(a, b)``, scalar ``(μ, σ)``); a family with parameters of
        another shape, e.g. a per-token gain, says so here."""
        return 2 * config.latent_channels

    def modules(self) -> dict[str, nn.Module]:
        """Modules the model registers under these names (state-dict keys)."""
        raise NotImplementedError

    def params(self, model: LeechCodecModel, z_hat: Tensor) -> tuple[Tensor, ...]:
        """h_s output → the family's prior parameters (:meth:`split` of ``model.h_s(z_hat)``)."""
        return self.split(model.h_s(z_hat))

    def split(self, raw: Tensor) -> tuple[Tensor, ...]:
        """``(B, param_channels, h, w)`` → the family's prior parameters, clamped to their coding range."""
        raise NotImplementedError

    def quantize(self, model: LeechCodecModel, y: Tensor, params: tuple[Tensor, Tensor],
                 training: bool) -> Quantized:
        raise NotImplementedError

    def bits(self, model: LeechCodecModel, rate_input: Tensor, params: tuple[Tensor, Tensor]) -> Tensor:
        """``(B,)`` bits of the quantized latent of every image under the prior."""
        raise NotImplementedError

    def unquantized(self, y: Tensor) -> Tensor:
        """What g_s would get without quantization (the quantization warm-up blends it in)."""
        return y.float()

    def encode(self, model: LeechCodecModel, y: Tensor, sym: np.ndarray, profile: int,
               grid: tuple[int, int], enc: SymbolEncoder) -> None:
        raise NotImplementedError

    def decode(self, model: LeechCodecModel, sym: np.ndarray, profile: int, grid: tuple[int, int],
               dec: SymbolDecoder, prior_device: str | None) -> tuple[Tensor, dict[str, np.ndarray]]:
        """``(ŷ (1, C, h', w'), coding parameters)``."""
        raise NotImplementedError


class _SphericalCodec(LatentCodec):
    """Λ24 and BSQ: unit-norm tokens, an exact coordinate-factorized prior with parameters
    ``(a, b)`` per token coordinate on the :data:`PARAM_STEP` grid."""

    out_bits = 8

    def split(self, raw: Tensor) -> tuple[Tensor, Tensor]:
        a, b = raw.chunk(2, dim=1)
        return a.clamp(-A_MAX, A_MAX), b.clamp(B_MIN, B_MAX)

    def quantize(self, model: LeechCodecModel, y: Tensor, params, training: bool) -> Quantized:
        with _float32(y):
            q = model.quantizer(y.float())
        return Quantized(q.y_hat, q.codes, q.indices)

    def _log_prob(self, a: Tensor, b: Tensor, codes: Tensor) -> Tensor:
        """Natural-log probabilities of ``(n, D)`` tokens."""
        raise NotImplementedError

    def unquantized(self, y: Tensor) -> Tensor:
        return normalize_tokens(y, self.token_dim(self.config))

    def bits(self, model: LeechCodecModel, rate_input: Tensor, params) -> Tensor:
        a, b = params
        with _float32(a):
            return -model.token_log_prob(a.float(), b.float(), rate_input).sum(1) / math.log(2)

    def decode(self, model, sym, profile, grid, dec, prior_device):
        from leechcodec import coding as codec

        ai, bi = codec._token_params(model, sym, profile, grid, prior_device)
        idx = self._decode_indices(ai, bi, dec, profile)
        y_hat = model.quantizer.dequantize(torch.from_numpy(idx).reshape(1, model.config.tokens, *grid))
        return y_hat, {"A": ai, "B": bi, "symbols": idx}

    def encode(self, model, y, sym, profile, grid, enc) -> None:
        from leechcodec import coding as codec

        idx = codec._token_indices(model, y)
        ai, bi = codec._token_params(model, sym, profile, grid)
        self._encode_indices(idx, ai, bi, enc, profile)


class Leech24Codec(_SphericalCodec):
    """Λ24-SQ: the nearest of the 196,560 unit Leech minimal vectors per 24-channel token."""

    name = "leech24"

    def modules(self) -> dict[str, nn.Module]:
        return {"quantizer": SphericalLeechQuantizer()}

    def _log_prob(self, a, b, codes):
        return leech_log_prob(a, b, codes)

    def _encode_indices(self, idx, ai, bi, enc, profile) -> None:
        from leechcodec import coding as codec

        codec._code_leech(idx, ai, bi, enc, profile)

    def _decode_indices(self, ai, bi, dec, profile) -> np.ndarray:
        from leechcodec import coding as codec

        return codec._decode_leech(ai, bi, dec, profile)


class BSQCodec(_SphericalCodec):
    """BSQ: ``sign(u)/√L`` per L-channel token; the prior is σ(2a) per sign (b cancels)."""

    name = "bsq"

    @classmethod
    def token_dim(cls, config: ModelConfig) -> int:
        return config.bsq_dim

    def modules(self) -> dict[str, nn.Module]:
        return {"quantizer": BinarySphericalQuantizer(self.config.bsq_dim)}

    def _log_prob(self, a, b, codes):
        return bsq_log_prob(a, codes)

    def _encode_indices(self, idx, ai, bi, enc, profile) -> None:
        from leechcodec import coding as codec

        enc.add(codec._bsq_bits(idx, self.config.bsq_dim), codec._bsq_probs(ai, profile))

    def _decode_indices(self, ai, bi, dec, profile) -> np.ndarray:
        from leechcodec import coding as codec

        dim = self.config.bsq_dim
        bits = dec.read(codec._bsq_probs(ai, profile)).reshape(-1, dim)
        return (bits << np.arange(dim, dtype=np.int64)).sum(1)


class ScalarCodec(LatentCodec):
    """The usual learned-codec baseline: every channel rounded around a predicted mean, with
    a Gaussian prior (mean-scale hyperprior). The training rate is that of ``y`` plus uniform
    noise (additive-noise proxy); in evaluation and refinement, that of the rounded latent
    ``round(y − μ) + μ`` (straight-through). The coder puts the scale on a fixed table."""

    name = "scalar"
    out_bits = 16

    def modules(self) -> dict[str, nn.Module]:
        # Rate only (the coder builds its own tables): scales are lower-bounded at 0.11 and
        # likelihoods at 1e-9, CompressAI's defaults.
        return {"quantizer": ScalarQuantizer(), "gaussian_conditional": GaussianConditional(None)}

    def split(self, raw: Tensor) -> tuple[Tensor, Tensor]:
        means, scales = raw.chunk(2, dim=1)
        return means, scales

    def quantize(self, model: LeechCodecModel, y: Tensor, params, training: bool) -> Quantized:
        means = params[0].float()
        with _float32(y):
            y = y.float()
            q = model.quantizer(y - means)
            y_hat = q.y_hat + means
            rate_input = y + torch.empty_like(y).uniform_(-0.5, 0.5) if training else y_hat
        return Quantized(y_hat, rate_input, q.indices)

    def bits(self, model: LeechCodecModel, rate_input: Tensor, params) -> Tensor:
        means, scales = (t.float() for t in params)
        with _float32(rate_input):
            lik = model.gaussian_conditional.likelihood(rate_input.float(), scales, means)
            return -torch.log2(lik).flatten(1).sum(1)

    def encode(self, model, y, sym, profile, grid, enc) -> None:
        from leechcodec import coding as codec

        means, scale_idx = codec._gaussian_params(model, sym, profile, grid)
        codec._code_scalar(codec._scalar_integers(model, y, means), scale_idx, enc, profile)

    def decode(self, model, sym, profile, grid, dec, prior_device):
        from leechcodec import coding as codec

        means, scale_idx = codec._gaussian_params(model, sym, profile, grid, prior_device)
        q = codec._decode_scalar(scale_idx, dec, profile)
        y_hat = model.quantizer.dequantize(torch.from_numpy(q).reshape(means.shape)) + means
        return y_hat, {"means": means.numpy().ravel(), "scale_index": scale_idx, "symbols": q}


def gain_likelihood(n: Tensor, mu: Tensor, sigma: Tensor) -> Tensor:
    """Probability of the integer gains ``n`` (any float tensor of integer values, straight-
    through gradients allowed) under a Gaussian ``N(μ, σ²)`` discretized to the integers
    ``0..GAIN_LEVELS − 1`` with both tails folded onto the end points:
    ``P(0) = Φ((½ − μ)/σ)``, ``P(n) = Φ((n + ½ − μ)/σ) − Φ((n − ½ − μ)/σ)``,
    ``P(GAIN_LEVELS − 1) = 1 − Φ((GAIN_LEVELS − 1.5 − μ)/σ)``. ``σ`` is bounded below by
    :data:`GAIN_SCALE_MIN`; the result by 1e-9 (as CompressAI bounds likelihoods). Both bounds
    pass the gradient that pushes back up (:class:`leechcodec.layers.LowerBound`), so a σ
    driven below the bound can return: with a plain clamp, tokens whose σ sat at the bound
    kept it, and the shipped q0 pays the coder's maximum of 24 bits for 1 % of its gains
    (``bench/micro/gain_shape_stats.py``). The values are the clamp's. The difference is taken
    on the tail that is small (upper tails above the mean), so probabilities far from the
    mean keep their precision."""
    sigma = _LowerBoundFunction.apply(sigma, sigma.new_tensor(GAIN_SCALE_MIN))
    big = torch.full_like(n, 1e4)
    lo = torch.where(n <= 0, -big, (n - 0.5 - mu) / sigma)
    hi = torch.where(n >= GAIN_LEVELS - 1, big, (n + 0.5 - mu) / sigma)
    ndtr = torch.special.ndtr
    p = torch.where(n >= mu, ndtr(-lo) - ndtr(-hi), ndtr(hi) - ndtr(lo))
    return _LowerBoundFunction.apply(p, p.new_tensor(1e-9))


class GainShapeLeech24Codec(Leech24Codec):
    """Gain–shape Λ24: every 24-channel token ``t`` becomes ``ĝ · v/√32``, where ``v`` is the
    Λ24-SQ codeword of ``t/‖t‖`` (the shape, with the exact Λ24 prior of the spherical
    family) and ``ĝ = s · min(round(‖t‖ / s), GAIN_LEVELS − 1)`` a gain of step
    ``s = 2^-gain_frac_bits`` (1 unless the model says otherwise), its level an integer with a
    hyperprior-conditioned discretized Gaussian (:func:`gain_likelihood`, parameters
    ``(μ, σ)`` per token). A token with ``ĝ = 0`` is zero and its shape is not coded.

    h_s gives ``(a, b)`` per latent channel, as for Λ24-SQ, then ``(μ, σ)`` per token. The
    training rate is the rate the coder pays: the gains' bits plus the shape bits of the
    tokens with ``ĝ > 0``. Gradients: the gain's rounding is straight-through (in g_s's
    input and in the gain's rate), the shape's as in Λ24-SQ; the indicator ``ĝ > 0`` that
    switches a shape's bits on passes the gradient of ``clamp(‖t‖, 0, 1)``, so a token whose
    norm is below 1 feels what its shape costs and can learn to be dropped.

    Only the exact prior (coder profiles 2 and 3, formats 1.1 and 1.2) codes it; the integer h_s has 16
    fractional bits here, and ``(A, B)`` are rounded from it exactly (:mod:`leechcodec.coding`).
    """

    name = "leech24gs"
    out_bits = 16
    profiles = (2, 3)

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        #: Training only: the gain's rate sees ``‖t‖ + U(−½, ½)`` (as the scalar family's rate
        #: sees its latent) instead of the straight-through rounded gain. Set by ``leechcodec
        #: train --gain-noise``; the coder and g_s always get the rounded gain.
        self.gain_noise = False

    @property
    def gain_step(self) -> float:
        """The size of one gain level in ‖t‖: ``2^-gain_frac_bits`` (exact in float)."""
        return 2.0 ** -self.config.gain_frac_bits

    @classmethod
    def param_channels(cls, config: ModelConfig) -> int:
        return 2 * config.latent_channels + 2 * config.tokens

    def split(self, raw: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        m, k = self.config.latent_channels, self.config.tokens
        a, b, mu, sigma = raw.split([m, m, k, k], dim=1)
        return a.clamp(-A_MAX, A_MAX), b.clamp(B_MIN, B_MAX), mu, sigma

    def quantize(self, model: LeechCodecModel, y: Tensor, params, training: bool) -> Quantized:
        """``rate_input`` is ``(B, 24k + 2k, h, w)``: the shape codes (straight-through), the
        gains ĝ (straight-through) and the shape-bit indicator; ``indices`` is ``(B, 2k, h, w)``:
        the shape indices (0 where ĝ = 0), then the gains."""
        with _float32(y):
            y = y.float()
            bsz, c, h, w = y.shape
            k = self.config.tokens
            q = model.quantizer(y)
            g = self.gains(y)
            n = torch.round(g.detach()).clamp(0, GAIN_LEVELS - 1)
            g_hat = g + (n - g).detach()
            y_hat = (q.y_hat.reshape(bsz, k, c // k, h, w) * (g_hat * self.gain_step)[:, :, None]).reshape(y.shape)
            soft = g.clamp(0, 1)
            coded = (n > 0).float()
            mask = coded + (soft - soft.detach())
            indices = torch.cat([q.indices * coded.long(), n.long()], 1)
            g_rate = g + torch.empty_like(g).uniform_(-0.5, 0.5) if training and self.gain_noise else g_hat
            return Quantized(y_hat, torch.cat([q.codes, g_rate, mask], 1), indices)

    def gains(self, y: Tensor) -> Tensor:
        """Token norms in gain steps, ``‖t‖ / gain_step``, ``(B, k, h, w)`` float32 (the
        encoder rounds them; the gradient stays finite at 0)."""
        bsz, c, h, w = y.shape
        k = self.config.tokens
        norm = y.float().reshape(bsz, k, c // k, h, w).square().sum(2).clamp_min(1e-24).sqrt()
        return norm / self.gain_step

    def unquantized(self, y: Tensor) -> Tensor:
        return y.float()

    def bits(self, model: LeechCodecModel, rate_input: Tensor, params) -> Tensor:
        a, b, mu, sigma = (t.float() for t in params)
        m, k = self.config.latent_channels, self.config.tokens
        with _float32(a):
            codes, g_hat, mask = rate_input.float().split([m, k, k], dim=1)
            shape_bits = -model.token_log_prob(a, b, codes) / math.log(2)  # (B, k·h·w), token order
            gain_bits = -torch.log2(gain_likelihood(g_hat, mu, sigma))
            return (shape_bits * mask.flatten(1)).sum(1) + gain_bits.flatten(1).sum(1)

    def encode(self, model, y, sym, profile, grid, enc) -> None:
        from leechcodec import coding as codec

        codec._require_exact_profile(self.name, profile)
        idx = codec._token_indices(model, y)
        gains = codec._token_gains(model, y)
        if model.context is None:
            codec._code_gain_shape(gains, idx, codec._gain_shape_params(model, sym, grid), enc, profile)
            return
        # checkerboard: the anchors with the hyperprior's parameters, then the rest with the context's
        raw = codec._gain_shape_raw(model, sym, grid)
        anchors = codec._anchor_tokens(self.config.tokens, grid)
        first = codec._gain_shape_tokens(model, raw)
        codec._code_gain_shape(gains[anchors], idx[anchors], tuple(p[anchors] for p in first), enc, profile)
        second = codec._context_params(model, raw, idx, gains)
        codec._code_gain_shape(gains[~anchors], idx[~anchors], tuple(p[~anchors] for p in second), enc, profile)

    def decode(self, model, sym, profile, grid, dec, prior_device):
        from leechcodec import coding as codec

        codec._require_exact_profile(self.name, profile)
        if model.context is None:
            params = codec._gain_shape_params(model, sym, grid, prior_device)
            gains, idx = codec._decode_gain_shape(params, dec, profile)
        else:
            raw = codec._gain_shape_raw(model, sym, grid, prior_device)
            anchors = codec._anchor_tokens(self.config.tokens, grid)
            first = codec._gain_shape_tokens(model, raw)
            gains = np.zeros(int(anchors.size), dtype=np.int64)
            idx = np.zeros_like(gains)
            gains[anchors], idx[anchors] = codec._decode_gain_shape(tuple(p[anchors] for p in first), dec, profile)
            second = codec._context_params(model, raw, idx, gains, prior_device)
            gains[~anchors], idx[~anchors] = codec._decode_gain_shape(tuple(p[~anchors] for p in second), dec,
                                                                      profile)
            params = tuple(np.where(anchors.reshape((-1,) + (1,) * (f.ndim - 1)), f, s) for f, s in zip(first, second))
        ai, bi, mu_idx, scale_idx = params
        k = model.config.tokens
        unit = model.quantizer.dequantize(torch.from_numpy(idx).reshape(1, k, *grid))
        g = torch.from_numpy(gains.astype(np.float32) * np.float32(self.gain_step)).reshape(1, k, 1, *grid)
        y_hat = (unit.reshape(1, k, -1, *grid) * g).reshape(unit.shape)
        return y_hat, {"A": ai, "B": bi, "gain_mean_index": mu_idx, "scale_index": scale_idx, "gains": gains,
                       "symbols": idx}


#: Family name → latent codec class. Register a new family here.
LATENT_CODECS: dict[str, type[LatentCodec]] = {
    c.name: c for c in (Leech24Codec, BSQCodec, ScalarCodec, GainShapeLeech24Codec)}


def latent_codec_class(name: str) -> type[LatentCodec]:
    try:
        return LATENT_CODECS[name]
    except KeyError:
        raise ValueError(f"unknown quantizer family {name!r}; expected one of {', '.join(LATENT_CODECS)}") from None
