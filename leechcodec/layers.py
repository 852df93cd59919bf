"""GDN and the two entropy models of a scale hyperprior, without importing CompressAI.

The codec's transforms use three layers that CompressAI made standard (Ballé et al. 2016,
"Density Modeling of Images Using a Generalized Normalization Transformation"; Ballé et
al. 2018, "Variational image compression with a scale hyperprior"):

- :class:`GDN` — generalized divisive normalization (``inverse=True``: its inverse, IGDN),
- :class:`EntropyBottleneck` — the factorized density of the hyper-latents ``z``,
- :class:`GaussianConditional` — the conditional Gaussian of the scalar family's latents.

They are written here so that encoding and decoding load torch alone: importing CompressAI
costs about 3 s (it imports scipy.stats, torch_geometric and torch._dynamo) for three small
modules. Parameter and buffer names, shapes and reparametrizations are CompressAI's
(``compressai.layers.GDN``, ``compressai.entropy_models``, version 1.2), so every shipped
state dict loads unchanged, and ``tests/test_layers.py`` checks values and gradients
against CompressAI's layers.

Forward passes are sync-free: no host copy, no data-dependent shapes. The one-off
:meth:`EntropyBottleneck.update` (run by the exporter after training, never by the codec)
builds the integer CDF tables with :func:`pmf_to_quantized_cdf`, the rule of CompressAI's
C++ helper of that name (which came from ryg_rans), written here in numpy and tested equal
to it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LowerBound", "NonNegativeParametrizer", "GDN", "EntropyBottleneck", "GaussianConditional",
           "pmf_to_quantized_cdf"]


def pmf_to_quantized_cdf(pmf, precision: int = 16) -> np.ndarray:
    """A probability table → a strictly increasing integer CDF from 0 to ``2**precision``.

    ``pmf`` (n,) is rounded to float32, scaled by ``2**precision`` and rounded half away
    from zero; the counts are rescaled to the total ``2**precision`` (integer division),
    summed, and the last entry set to the total. Every symbol left with no range then takes
    one count from the symbol with the smallest range above one (the first such, scanning
    from symbol 0), shifting the entries in between. Returns ``(n + 1,)`` int64.
    """
    p = np.asarray(pmf, dtype=np.float32)
    total_range = 1 << precision
    scaled = p * np.float32(total_range)  # exact: a power-of-two scale
    counts = np.where(scaled >= 0, np.floor(scaled + np.float32(0.5)), np.ceil(scaled - np.float32(0.5)))
    counts = [int(c) for c in np.maximum(counts, 0)]
    total = sum(counts)
    if total <= 0:
        raise ValueError("the probability table sums to zero")
    cdf = [0]
    for c in counts:
        cdf.append(cdf[-1] + total_range * c // total)
    cdf[-1] = total_range
    for i in range(len(cdf) - 1):
        if cdf[i] == cdf[i + 1]:
            freqs = [cdf[j + 1] - cdf[j] for j in range(len(cdf) - 1)]
            best = min((f, j) for j, f in enumerate(freqs) if f > 1)[1]
            if best < i:
                for j in range(best + 1, i + 1):
                    cdf[j] -= 1
            else:
                for j in range(i + 1, best + 1):
                    cdf[j] += 1
    return np.array(cdf, dtype=np.int64)


class _LowerBoundFunction(torch.autograd.Function):
    """``max(x, bound)`` whose gradient passes where ``x`` is above the bound or the
    gradient pushes ``x`` up towards it (so a parameter stuck at the bound can leave it)."""

    @staticmethod
    def forward(ctx, x: Tensor, bound: Tensor) -> Tensor:
        ctx.save_for_backward(x, bound)
        return torch.max(x, bound)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, bound = ctx.saved_tensors
        return ((x >= bound) | (grad < 0)) * grad, None


class LowerBound(nn.Module):
    """``max(x, bound)`` with the pass-through gradient of :class:`_LowerBoundFunction`."""

    bound: Tensor

    def __init__(self, bound: float) -> None:
        super().__init__()
        self.register_buffer("bound", torch.tensor([float(bound)]))

    def forward(self, x: Tensor) -> Tensor:
        return _LowerBoundFunction.apply(x, self.bound)


class NonNegativeParametrizer(nn.Module):
    """``θ ↦ max(θ, √(minimum + p))² − p`` with pedestal ``p = 2**-36``: a parameter that
    stays at least ``minimum`` and keeps a useful gradient near zero."""

    pedestal: Tensor

    def __init__(self, minimum: float = 0.0, reparam_offset: float = 2**-18) -> None:
        super().__init__()
        self.minimum = float(minimum)
        self.register_buffer("pedestal", torch.tensor([float(reparam_offset) ** 2]))
        self.lower_bound = LowerBound((self.minimum + float(reparam_offset) ** 2) ** 0.5)

    def init(self, x: Tensor) -> Tensor:
        """The parameter value that represents ``x``."""
        return torch.sqrt(torch.max(x + self.pedestal, self.pedestal))

    def forward(self, x: Tensor) -> Tensor:
        return self.lower_bound(x) ** 2 - self.pedestal


class GDN(nn.Module):
    """``y_i = x_i / √(β_i + Σ_j γ_ij x_j²)`` per pixel; ``inverse=True`` multiplies instead."""

    def __init__(self, in_channels: int, inverse: bool = False, beta_min: float = 1e-6,
                 gamma_init: float = 0.1) -> None:
        super().__init__()
        self.inverse = bool(inverse)
        self.beta_reparam = NonNegativeParametrizer(minimum=beta_min)
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(in_channels)))
        self.gamma_reparam = NonNegativeParametrizer()
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(in_channels)))

    def weights(self) -> tuple[Tensor, Tensor]:
        """``(β (C,), γ (C, C, 1, 1))``: the effective parameters, as a 1×1 convolution."""
        c = self.beta.shape[0]
        return self.beta_reparam(self.beta), self.gamma_reparam(self.gamma).reshape(c, c, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        beta, gamma = self.weights()
        norm = F.conv2d(x**2, gamma, beta)
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))


class _EntropyModel(nn.Module):
    """What the two entropy models share: the likelihood floor and the integer CDF tables
    (``_quantized_cdf``, ``_offset``, ``_cdf_length``; filled by ``update``, stored in the
    weights file, read by the coder)."""

    _offset: Tensor
    _quantized_cdf: Tensor
    _cdf_length: Tensor

    def __init__(self, likelihood_bound: float = 1e-9, entropy_coder_precision: int = 16) -> None:
        super().__init__()
        self.entropy_coder_precision = int(entropy_coder_precision)
        self.use_likelihood_bound = likelihood_bound > 0
        if self.use_likelihood_bound:
            self.likelihood_lower_bound = LowerBound(likelihood_bound)
        self.register_buffer("_offset", torch.zeros(0, dtype=torch.int32))
        self.register_buffer("_quantized_cdf", torch.zeros(0, dtype=torch.int32))
        self.register_buffer("_cdf_length", torch.zeros(0, dtype=torch.int32))

    @property
    def offset(self) -> Tensor:
        return self._offset

    @property
    def quantized_cdf(self) -> Tensor:
        return self._quantized_cdf

    @property
    def cdf_length(self) -> Tensor:
        return self._cdf_length

    def _bound(self, likelihood: Tensor) -> Tensor:
        return self.likelihood_lower_bound(likelihood) if self.use_likelihood_bound else likelihood

    @staticmethod
    def _noisy_or_rounded(x: Tensor, training: bool, means: Tensor | None) -> Tensor:
        """Training: ``x + U(−½, ½)``; otherwise ``round(x − μ) + μ`` (ties to even)."""
        if training:
            return x + torch.empty_like(x).uniform_(-0.5, 0.5)
        return x.round() if means is None else (x - means).round() + means

    def _pmf_to_cdf(self, pmf: Tensor, tail_mass: Tensor, pmf_length: Tensor, max_length: int) -> Tensor:
        cdf = torch.zeros((len(pmf_length), max_length + 2), dtype=torch.int32)
        for i, p in enumerate(pmf.detach().cpu()):
            q = pmf_to_quantized_cdf(torch.cat((p[: int(pmf_length[i])], tail_mass[i].detach().cpu())).numpy(),
                                     self.entropy_coder_precision)
            cdf[i, : len(q)] = torch.from_numpy(q.astype(np.int32))
        return cdf.to(pmf.device)


class EntropyBottleneck(_EntropyModel):
    """Factorized density of ``z`` per channel: a monotone cumulative built from small
    per-channel dense layers (softplus weights, tanh gates), as in Ballé et al. 2018,
    appendix 6.1. Medians and the tail quantiles are the learned ``quantiles``
    (``(C, 1, 3)``), trained by the auxiliary :meth:`loss`."""

    def __init__(self, channels: int, tail_mass: float = 1e-9, init_scale: float = 10.0,
                 filters: tuple[int, ...] = (3, 3, 3, 3), **kwargs) -> None:
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.filters = tuple(int(f) for f in filters)
        self.init_scale = float(init_scale)
        self.tail_mass = float(tail_mass)
        dims = (1, *self.filters, 1)
        scale = self.init_scale ** (1 / (len(self.filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(self.filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.empty(channels, dims[i + 1], 1).uniform_(-0.5, 0.5)))
            if i < len(self.filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))
        self.quantiles = nn.Parameter(
            torch.tensor([-self.init_scale, 0.0, self.init_scale]).repeat(channels, 1, 1))
        target = math.log(2 / self.tail_mass - 1)
        self.register_buffer("target", torch.tensor([-target, 0.0, target]))

    def _get_medians(self) -> Tensor:
        return self.quantiles[:, :, 1:2]

    def medians(self) -> Tensor:
        """``(C,)``: the per-channel medians, around which ``z`` is rounded."""
        return self.quantiles[:, 0, 1]

    def _logits_cumulative(self, inputs: Tensor, stop_gradient: bool) -> Tensor:
        logits = inputs
        for i in range(len(self.filters) + 1):
            matrix, bias = self.matrices[i], self.biases[i]
            if stop_gradient:
                matrix, bias = matrix.detach(), bias.detach()
            logits = torch.matmul(F.softplus(matrix), logits) + bias
            if i < len(self.filters):
                factor = self.factors[i].detach() if stop_gradient else self.factors[i]
                logits = logits + torch.tanh(factor) * torch.tanh(logits)
        return logits

    def _likelihood(self, inputs: Tensor, stop_gradient: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """``(C, 1, N)`` values → (mass of ``[v − ½, v + ½]``, lower logits, upper logits)."""
        lower = self._logits_cumulative(inputs - 0.5, stop_gradient)
        upper = self._logits_cumulative(inputs + 0.5, stop_gradient)
        return torch.sigmoid(upper) - torch.sigmoid(lower), lower, upper

    def likelihood(self, z_hat: Tensor) -> Tensor:
        """Probabilities of ``ẑ`` ``(B, C, ...)`` (floored at the likelihood bound), same shape."""
        perm = (1, 0, *range(2, z_hat.ndim))  # (B, C, ...) ↔ (C, B, ...): its own inverse
        zc = z_hat.permute(*perm)
        lik, _, _ = self._likelihood(zc.reshape(zc.shape[0], 1, -1))
        return self._bound(lik).reshape(zc.shape).permute(*perm)

    def forward(self, x: Tensor, training: bool | None = None) -> tuple[Tensor, Tensor]:
        """``(B, C, ...)`` → ``(x̂, likelihoods)``: noisy in training, rounded around the
        medians otherwise."""
        training = self.training if training is None else training
        perm = (1, 0, *range(2, x.ndim))
        xc = x.permute(*perm).contiguous()
        values = xc.reshape(xc.shape[0], 1, -1)
        outputs = self._noisy_or_rounded(values, training, self._get_medians())
        lik, _, _ = self._likelihood(outputs)
        lik = self._bound(lik)
        outputs = outputs.reshape(xc.shape).permute(*perm).contiguous()
        return outputs, lik.reshape(xc.shape).permute(*perm).contiguous()

    def loss(self) -> Tensor:
        """Auxiliary loss that moves ``quantiles`` to the tail-mass targets."""
        logits = self._logits_cumulative(self.quantiles, stop_gradient=True)
        return torch.abs(logits - self.target).sum()

    def update(self, force: bool = False) -> bool:
        """Build the integer CDF tables from the current density (after training)."""
        if self._offset.numel() > 0 and not force:
            return False
        medians = self.quantiles[:, 0, 1]
        minima = torch.ceil(medians - self.quantiles[:, 0, 0]).int().clamp(min=0)
        maxima = torch.ceil(self.quantiles[:, 0, 2] - medians).int().clamp(min=0)
        self._offset = -minima
        pmf_start = medians - minima
        pmf_length = maxima + minima + 1
        max_length = int(pmf_length.max())
        samples = torch.arange(max_length, device=pmf_start.device)[None, :] + pmf_start[:, None, None]
        pmf, lower, upper = self._likelihood(samples, stop_gradient=True)
        tail_mass = torch.sigmoid(lower[:, 0, :1]) + torch.sigmoid(-upper[:, 0, -1:])
        self._quantized_cdf = self._pmf_to_cdf(pmf[:, 0, :], tail_mass, pmf_length, max_length)
        self._cdf_length = pmf_length + 2
        return True


class GaussianConditional(_EntropyModel):
    """Discretized Gaussian ``N(μ, σ²)`` on integers around ``μ``, with ``σ`` floored at
    ``scale_bound``. The codec builds its own exact tables for the scalar family
    (``leechcodec.codec``); the buffers here keep CompressAI's state-dict keys."""

    def __init__(self, scale_table: list[float] | tuple[float, ...] | None, scale_bound: float = 0.11,
                 tail_mass: float = 1e-9, **kwargs) -> None:
        super().__init__(**kwargs)
        if scale_table and (list(scale_table) != sorted(scale_table) or min(scale_table) <= 0):
            raise ValueError(f"scale_table must be positive and sorted, got {scale_table}")
        if scale_bound <= 0:
            raise ValueError(f"scale_bound must be positive, got {scale_bound}")
        self.tail_mass = float(tail_mass)
        self.lower_bound_scale = LowerBound(scale_bound)
        self.register_buffer("scale_table", torch.tensor([float(s) for s in scale_table or ()]))
        self.register_buffer("scale_bound", torch.tensor([float(scale_bound)]))

    @staticmethod
    def _standardized_cumulative(x: Tensor) -> Tensor:
        return 0.5 * torch.erfc(-(2**-0.5) * x)

    def _likelihood(self, inputs: Tensor, scales: Tensor, means: Tensor | None = None) -> Tensor:
        values = torch.abs(inputs if means is None else inputs - means)
        scales = self.lower_bound_scale(scales)
        upper = self._standardized_cumulative((0.5 - values) / scales)
        lower = self._standardized_cumulative((-0.5 - values) / scales)
        return upper - lower

    def likelihood(self, y_hat: Tensor, scales: Tensor, means: Tensor | None = None) -> Tensor:
        """Probabilities of ``ŷ`` (floored at the likelihood bound)."""
        return self._bound(self._likelihood(y_hat, scales, means))

    def forward(self, inputs: Tensor, scales: Tensor, means: Tensor | None = None,
                training: bool | None = None) -> tuple[Tensor, Tensor]:
        """``(ŷ, likelihoods)``: ``ŷ`` noisy in training, ``round(y − μ) + μ`` otherwise."""
        training = self.training if training is None else training
        outputs = self._noisy_or_rounded(inputs, training, means)
        return outputs, self.likelihood(outputs, scales, means)
