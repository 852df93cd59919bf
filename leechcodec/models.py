"""The leechcodec model: analysis/synthesis transforms, a quantizer and a hyperprior.

    x ─ g_a ─► y (B, D·k, H/16, W/16) ─ quantizer ─► codes, indices ─ g_s ─► x̂
                     └ h_a ─► z ─ EntropyBottleneck ─► ẑ ─ h_s ─► 2 parameters per latent channel

Four quantizer families share every transform (g_a, g_s, h_a, h_s, EntropyBottleneck):

- ``leech24`` (Λ24-SQ) and ``bsq``: the prior over each token's codewords is the exact
  coordinate-factorized family of :mod:`leechcodec.prior`; its parameters ``(a, b)`` are
  clamped to a fixed range so that the coder can put them on an integer grid
  (:data:`PARAM_STEP`).
- ``scalar``, the usual learned-codec baseline: every latent channel is rounded to an
  integer around a predicted mean, with a Gaussian prior (mean-scale hyperprior: h_s gives
  ``(means, scales)``, so h_s is the same network as for the other families). Training
  takes the rate from a ``GaussianConditional`` (additive uniform noise; leechcodec.layers) and
  feeds g_s the straight-through rounded latent ``round(y − μ) + μ``, as CompressAI's
  newer models do; in eval mode the rate is that of the rounded latent. The coder puts the
  scale on a fixed table (:mod:`leechcodec.coding`), so it pays the training rate up to
  that quantization of the scale.
- ``leech24gs`` (gain–shape Λ24): each token is an integer gain times a Λ24-SQ shape; h_s
  gives ``(a, b)`` per latent channel and a Gaussian ``(μ, σ)`` per token for the gain, and
  a token whose gain is 0 codes no shape (:class:`leechcodec.latent_codecs.GainShapeLeech24Codec`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from leechcodec.latent_codecs import A_MAX, B_MAX, B_MIN, LATENT_CODECS, PARAM_STEP, _float32, latent_codec_class
from leechcodec.layers import GDN
from leechcodec.layers import EntropyBottleneck as _Bottleneck

__all__ = ["ModelConfig", "ModelOutput", "LeechCodecModel", "EntropyBottleneck", "CheckerboardContext", "QUANTIZERS",
           "CONTEXTS", "PARAM_STEP", "A_MAX", "B_MIN", "B_MAX", "pad_to_multiple", "anchor_mask"]

#: The quantizer families, by their names in configs, checkpoints and the zoo registry.
QUANTIZERS = tuple(LATENT_CODECS)
#: Context models (``ModelConfig.context``): none, or :class:`CheckerboardContext`.
CONTEXTS = ("", "checkerboard")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture; stored inside every checkpoint (never inferred from tensor shapes)."""

    quantizer: str = "leech24"  # one of QUANTIZERS
    tokens: int = 8  # tokens per latent position (k)
    bsq_dim: int = 18  # L for BSQ tokens
    channels: int = 64  # N, width of g_a / g_s
    hyper_channels: int = 64  # width and channels of the hyper-latent z
    gain_frac_bits: int = 0  # gain–shape only: the gain's step is 2^-gain_frac_bits of ‖t‖
    context: str = ""  # "" (hyperprior only) or "checkerboard" (CheckerboardContext; leech24gs only)

    def __post_init__(self) -> None:
        latent_codec_class(self.quantizer)  # refuses an unknown family
        if not 0 <= self.gain_frac_bits <= 4 or (self.gain_frac_bits and self.quantizer != "leech24gs"):
            raise ValueError(f"gain_frac_bits {self.gain_frac_bits}: 0 to 4, and only for the leech24gs family")
        if self.context not in CONTEXTS:
            raise ValueError(f"unknown context model {self.context!r}; expected one of {', '.join(map(repr, CONTEXTS))}")
        if self.context and self.quantizer != "leech24gs":
            # A context reads ŷ before the prior's parameters exist: the family's quantizer must
            # not depend on them (the scalar family rounds around the predicted means).
            raise ValueError(f"the {self.context} context is for the leech24gs family, not {self.quantizer}")

    @property
    def token_dim(self) -> int:
        """Latent channels per token D: 24 for Λ24, L for BSQ. A scalar "token" is a group of
        24 channels, each rounded on its own: ``tokens`` then means the same latent width
        (24·k channels) as for Λ24."""
        return latent_codec_class(self.quantizer).token_dim(self)

    @property
    def latent_channels(self) -> int:
        return self.token_dim * self.tokens

    def to_dict(self) -> dict:
        """The fields; ``gain_frac_bits`` and ``context`` (added later) only when they are set,
        so the configurations, and the file identities hashed from them, of older models stay as
        they were."""
        d = asdict(self)
        for key in ("gain_frac_bits", "context"):
            if not d[key]:
                del d[key]
        return d


class ModelOutput(NamedTuple):
    x_hat: Tensor  # (B, 3, H, W)
    token_bits: Tensor  # (B,) bits of all tokens (scalar: of all latents) of each image under the prior
    hyper_bits: Tensor  # (B,) bits of the hyper-latents
    indices: Tensor  # (B, k, h, w) int64 codeword indices; scalar: (B, 24·k, h, w) integers round(y − μ);
    # gain–shape: (B, 2k, h, w), the shape indices (0 where the gain is 0), then the gains


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Replicate-pad ``(B, C, H, W)`` at the bottom and right to multiples of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return nn.functional.pad(x, (0, pw, 0, ph), mode="replicate") if (ph or pw) else x


class EntropyBottleneck(_Bottleneck):
    """The factorized density of ``z`` (:class:`leechcodec.layers.EntropyBottleneck`, whose
    ``forward`` permutes by constant axes and needs no host synchronization).

    ``sync_free = False`` permutes the way CompressAI's ``forward`` does, through an index
    tensor on the input's device unpacked into ``permute`` (one device-to-host copy per
    axis, 12 per training step on CUDA): the old training step, kept reachable to measure it
    side by side. Values and gradients are the same either way.
    """

    sync_free = True

    def forward(self, x: Tensor, training: bool | None = None) -> tuple[Tensor, Tensor]:
        """``(B, C, ...)`` → ``(x̂, likelihoods)``, both ``(B, C, ...)``: noisy in training
        mode, rounded around the medians otherwise."""
        if self.sync_free:
            return super().forward(x, training)
        training = self.training if training is None else training
        perm = torch.cat((torch.tensor([1, 0], device=x.device), torch.arange(2, x.ndim, device=x.device)))
        xc = x.permute(*perm).contiguous()
        values = xc.reshape(xc.size(0), 1, -1)
        outputs = self._noisy_or_rounded(values, training, self._get_medians())
        likelihood = self._bound(self._likelihood(outputs)[0])
        outputs = outputs.reshape(xc.shape).permute(*perm).contiguous()
        return outputs, likelihood.reshape(xc.shape).permute(*perm).contiguous()


def anchor_mask(h: int, w: int, device: torch.device | str | None = None) -> Tensor:
    """``(1, 1, h, w)`` bool: the checkerboard's anchors, the latent positions ``(i, j)`` with
    ``i + j`` even (counted from the image's top-left latent)."""
    i = torch.arange(h, device=device)[:, None]
    j = torch.arange(w, device=device)[None, :]
    return ((i + j) % 2 == 0)[None, None]


#: ``ep`` reads the hyperprior's output clamped to ±RAW_BOUND (far outside the parameters'
#: ranges), so that an integer version of it has a bounded input.
RAW_BOUND = 128.0


class CheckerboardContext(nn.Module):
    """A two-pass checkerboard context (He et al., "Checkerboard context model for efficient
    learned image compression", CVPR 2021), added to the hyperprior's output.

    The anchors (:func:`anchor_mask`) are coded first with the hyperprior's parameters
    alone. Every other position then adds a correction computed from the decoded anchors:
    ``ctx``, a 5 × 5 convolution of ``ŷ`` and of its tokens' gains ``‖ŷ_t‖`` (a sign-free view
    of the local energy, which a linear layer of ``ŷ`` alone cannot form), both with the
    non-anchors zeroed (so it reads only anchors: the 4 nearest, then the next ring), and
    ``ep``, two 1 × 1 layers on that and the hyperprior's own output (clamped to
    ±:data:`RAW_BOUND`). Both passes run over the whole latent at once, so decoding stays
    parallel. ``ep``'s last layer starts at zero: a hyperprior model's weights load into a
    context model and code exactly as before until training moves it.
    """

    def __init__(self, latent_channels: int, tokens: int, param_channels: int, hidden: int) -> None:
        super().__init__()
        self.tokens = tokens
        self.ctx = nn.Conv2d(latent_channels + tokens, hidden, 5, padding=2)
        self.ep = nn.Sequential(nn.Conv2d(param_channels + hidden, hidden, 1), nn.ReLU(inplace=True),
                                nn.Conv2d(hidden, param_channels, 1))
        nn.init.zeros_(self.ep[-1].weight)
        nn.init.zeros_(self.ep[-1].bias)

    def forward(self, raw: Tensor, y_hat: Tensor) -> Tensor:
        """h_s output ``raw`` ``(B, P, h, w)`` and ``ŷ`` ``(B, C, h, w)`` → the parameters of every
        position ``(B, P, h, w)``: ``raw`` at the anchors, ``raw`` plus the correction elsewhere."""
        bsz, ch, h, w = y_hat.shape
        anchors = anchor_mask(h, w, device=y_hat.device)
        gains = y_hat.detach().reshape(bsz, self.tokens, ch // self.tokens, h, w).square().sum(2).sqrt()
        c = self.ctx(torch.cat([y_hat, gains.to(y_hat.dtype)], 1) * anchors.to(y_hat.dtype))
        delta = self.ep(torch.cat([raw.clamp(-RAW_BOUND, RAW_BOUND), c.to(raw.dtype)], 1))
        return torch.where(anchors, raw, raw + delta)


def _conv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


def _deconv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=stride, output_padding=stride - 1, padding=k // 2)


class LeechCodecModel(nn.Module):
    """Transforms + quantizer + hyperprior. ``forward`` trains; coding lives in ``leechcodec.codec``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        n, m, nh = config.channels, config.latent_channels, config.hyper_channels
        self.g_a = nn.Sequential(
            _conv(3, n), GDN(n), _conv(n, n), GDN(n), _conv(n, n), GDN(n), _conv(n, m)
        )
        self.g_s = nn.Sequential(
            _deconv(m, n), GDN(n, inverse=True), _deconv(n, n), GDN(n, inverse=True),
            _deconv(n, n), GDN(n, inverse=True), _deconv(n, 3),
        )
        self.h_a = nn.Sequential(
            _conv(m, nh, 3, 1), nn.ReLU(inplace=True), _conv(nh, nh), nn.ReLU(inplace=True), _conv(nh, nh)
        )
        self.h_s = nn.Sequential(
            _deconv(nh, nh), nn.ReLU(inplace=True), _deconv(nh, nh * 3 // 2), nn.ReLU(inplace=True),
            _conv(nh * 3 // 2, latent_codec_class(config.quantizer).param_channels(config), 3, 1),
        )
        self.entropy_bottleneck = EntropyBottleneck(nh)
        #: The context model (``config.context``), or None for the hyperprior alone.
        self.context = (CheckerboardContext(m, config.tokens, latent_codec_class(config.quantizer).param_channels(config),
                                            2 * m)
                        if config.context == "checkerboard" else None)
        #: The quantizer family (:mod:`leechcodec.latent_codecs`); its modules are registered
        #: here under their state-dict names (``quantizer``, ``gaussian_conditional``).
        self.latent_codec = latent_codec_class(config.quantizer)(config)
        for name, module in self.latent_codec.modules().items():
            self.add_module(name, module)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Load weights, resizing the EntropyBottleneck's frozen CDF tables to the stored shapes."""
        eb = self.entropy_bottleneck
        for name in ("_quantized_cdf", "_offset", "_cdf_length"):
            key = f"entropy_bottleneck.{name}"
            if key in state_dict:
                buf = getattr(eb, name)
                buf.resize_(state_dict[key].shape)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    @property
    def stride(self) -> int:
        return 64  # g_a (16) × h_a (4): inputs are padded to a multiple of this

    def prior_params(self, z_hat: Tensor, y_hat: Tensor | None = None) -> tuple[Tensor, ...]:
        """Hyper-synthesis: ẑ → the family's prior parameters, each ``(B, D·k, h, w)``: Λ24 /
        BSQ ``(a, b)`` clamped to the coding range; scalar ``(means, scales)``. A context model
        also needs the quantized latent ``y_hat`` (only its anchors are read)."""
        if self.context is None:
            return self.latent_codec.params(self, z_hat)
        if y_hat is None:
            raise ValueError("a context model's prior parameters need the quantized latent y_hat")
        return self.latent_codec.split(self.context(self.h_s(z_hat), y_hat))

    gaussian_params = prior_params  # the scalar family's name for them

    def quantize_latent(self, y: Tensor, z_hat: Tensor, training: bool):
        """``(Quantized, prior parameters)`` of the latent ``y`` given ``ẑ``: the parameters
        first where the family's quantizer reads them (scalar), the quantized latent first
        where the context reads it (:class:`CheckerboardContext`)."""
        if self.context is None:
            params = self.prior_params(z_hat)
            return self.latent_codec.quantize(self, y, params, training), params
        q = self.latent_codec.quantize(self, y, None, training)  # the family does not read them (ModelConfig)
        return q, self.prior_params(z_hat, q.y_hat)

    def tokens_of(self, t: Tensor) -> Tensor:
        """``(B, D·k, h, w)`` → ``(B, k·h·w, D)`` in the quantizer's token order."""
        bsz, c, h, w = t.shape
        d = self.quantizer.dim
        return t.reshape(bsz, c // d, d, h, w).permute(0, 1, 3, 4, 2).reshape(bsz, -1, d)

    def token_log_prob(self, a: Tensor, b: Tensor, codes: Tensor) -> Tensor:
        """Natural-log probability of every token; inputs ``(B, D·k, h, w)`` → ``(B, k·h·w)``."""
        at, bt, ct = self.tokens_of(a), self.tokens_of(b), self.tokens_of(codes)
        shape = at.shape[:2]
        at, bt, ct = (t.reshape(-1, t.shape[-1]) for t in (at, bt, ct))
        return self.latent_codec._log_prob(at, bt, ct).reshape(shape)

    def compress(self, rgb, profile: int | None = None, refine: int = 0, lmbda: float = math.nan,
                 refine_lr: float | None = None, progress=None):
        """Code an ``(H, W, 3)`` uint8 image into the two chunks of a .lq file
        (:class:`leechcodec.coding.Encoded`; :func:`leechcodec.codec.compress` frames them)."""
        from leechcodec import coding

        profile = coding.container.PROFILE_DEFAULT if profile is None else profile
        return coding.encode(self, rgb, profile, refine, lmbda, refine_lr, progress)

    def decompress(self, chunks, height: int, width: int, padded_height: int, padded_width: int, profile: int,
                   grey: bool = False, prior_device: str | None = None):
        """``(image (H, W, 3) uint8, coding parameters)`` from the chunks of a .lq file."""
        from leechcodec import coding

        return coding.decode(self, chunks, height, width, padded_height, padded_width, profile, grey, prior_device)

    def forward(self, x: Tensor, quant_mix: float = 1.0) -> ModelOutput:
        """Training pass. ``quant_mix`` < 1 (a warm-up) feeds g_s the blend
        ``mix·quantized + (1 − mix)·unquantized`` (Λ24 / BSQ: the unit token; scalar: ``y``);
        the rate is always that of the quantized latent (scalar: of the noisy latent in
        training mode, of the rounded one in eval mode), from ``latent_codec.bits``."""
        y = self.g_a(x)
        z = self.h_a(y)
        with _float32(z):
            z_hat, z_likelihoods = self.entropy_bottleneck(z.float())
        q, params = self.quantize_latent(y, z_hat, self.training)
        y_hat = q.y_hat
        if quant_mix < 1.0:
            y_hat = y_hat + (1.0 - quant_mix) * (self.latent_codec.unquantized(y) - y_hat).detach()
        token_bits = self.latent_codec.bits(self, q.rate_input, params)
        hyper_bits = -torch.log2(z_likelihoods).flatten(1).sum(1)
        return ModelOutput(self.g_s(y_hat), token_bits, hyper_bits, q.indices)
