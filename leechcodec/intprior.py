"""The exact prior path of coder profiles 2 and 3: hyper-latents ẑ → integer h_s → coding parameters.

Everything that decides a coding probability in a profile-2 or -3 ``.lq`` file comes from here:

1. ẑ as integers with :data:`Z_BITS` fractional bits: ``Ẑ_c = 2**8 · (symbol + offset_c) +
   M_c`` with ``M_c = round_half_even(median_c · 2**8)`` (the EntropyBottleneck median on
   the 1/256 grid; the symbols and offsets are the frozen CDF tables' integers).
2. h_s quantized after training (:mod:`leechcodec.kernels.intnet`): hidden activations with
   :data:`HIDDEN_BITS` fractional bits, clamped to ``[0, 2**HIDDEN_CLAMP_BITS)`` in real
   units; the output on the family's grid: 2**-8 (= ``PARAM_STEP``) for the Λ24 / BSQ
   parameters ``(A, B)``, 2**-16 for the scalar family's ``(means, scales)`` and for all the
   gain–shape family's outputs (``leechcodec.coding`` rounds its ``(A, B)`` to 2**-8 exactly).
3. The family's own clamps on those integers (Λ24 / BSQ: ``|A| ≤ A_MAX·256``,
   ``B_MIN·256 ≤ B ≤ B_MAX·256``).

Every partial sum is an integer below 2**53 in float64, so the result is the same for any
thread count, BLAS, convolution backend, instruction set or device: :func:`hyper_synthesis`
runs the numpy specification (:func:`leechcodec.kernels.intnet.forward`) and
:func:`hyper_synthesis_torch` the same integers in torch (CPU or CUDA, float64 matrix
products); the tests hold them equal. The float h_s the model trained with differs from
this by the quantization of weights and activations (measured rate cost in the README).
"""

from __future__ import annotations

import math
import weakref
from fractions import Fraction

import numpy as np
import torch
from torch import Tensor, nn

from leechcodec.kernels import intnet
from leechcodec.latent_codecs import LATENT_CODECS
from leechcodec.tiling import tiles

__all__ = ["Z_BITS", "HIDDEN_BITS", "HIDDEN_CLAMP_BITS", "OUT_BITS", "integer_hyper_synthesis", "z_integers",
           "integer_context", "context_correction", "context_correction_torch", "context_tiles", "anchors",
           "CTX_IN_BOUND",
           "hyper_synthesis", "hyper_synthesis_tiles", "hyper_synthesis_torch", "TILE_BYTES"]

Z_BITS = 8
HIDDEN_BITS = 12
HIDDEN_CLAMP_BITS = 12
#: Output precision per quantizer family (fractional bits; ``LatentCodec.out_bits``).
OUT_BITS = {name: cls.out_bits for name, cls in LATENT_CODECS.items()}
_OUT_CLAMP = 1 << 40  # the last layer's own clamp (families clamp further)

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _hyper_integer_tables(model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(offsets, lengths, M)`` int64 per hyper channel (``M``: medians on the 1/256 grid)."""
    eb = model.entropy_bottleneck
    offsets = eb._offset.numpy().astype(np.int64)
    lengths = eb._cdf_length.numpy().astype(np.int64)
    medians = eb.quantiles[:, 0, 1].detach().float().numpy().astype(np.float64)
    return offsets, lengths, np.round(np.ldexp(medians, Z_BITS)).astype(np.int64)


def z_integers(model, symbols: np.ndarray) -> np.ndarray:
    """Hyper symbols ``(C, h, w)`` int64 (CDF-table symbols) → ẑ integers ``(C, h, w)`` int64."""
    offsets, _, m = _hyper_integer_tables(model)
    return ((symbols + offsets[:, None, None]) << Z_BITS) + m[:, None, None]


def integer_hyper_synthesis(model) -> intnet.IntNetwork:
    """The model's h_s as an :class:`~leechcodec.kernels.intnet.IntNetwork` (built once per model)."""
    net = _CACHE.get(model)
    if net is None:
        net = _build(model)
        _CACHE[model] = net
    return net


def _build(model) -> intnet.IntNetwork:
    offsets, lengths, m = _hyper_integer_tables(model)
    # ẑ is bounded by the CDF tables: symbols lie in [0, length − 2).
    z_bound = int(np.max(np.maximum(np.abs(offsets), np.abs(offsets + lengths)) << Z_BITS) + np.max(np.abs(m)))
    out_bits = model.latent_codec.out_bits
    modules = list(model.h_s)
    convs = [i for i, mod in enumerate(modules) if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d))]
    layers = []
    in_bits, in_bound = Z_BITS, z_bound
    for n, i in enumerate(convs):
        mod = modules[i]
        last = n == len(convs) - 1
        relu = i + 1 < len(modules) and isinstance(modules[i + 1], nn.ReLU)
        if not all(isinstance(mod_j, nn.ReLU) for mod_j in modules[i + 1 : (convs[n + 1] if not last else None)]):
            raise ValueError("integer h_s supports convolutions, transposed convolutions and ReLUs only")
        if mod.dilation != (1, 1) or mod.groups != 1 or mod.stride[0] != mod.stride[1] or mod.padding[0] != mod.padding[1]:
            raise ValueError("integer h_s supports square strides and paddings, no dilation or groups")
        bits = out_bits if last else HIDDEN_BITS
        hi = _OUT_CLAMP if last else (1 << (HIDDEN_CLAMP_BITS + HIDDEN_BITS)) - 1
        layer = intnet.quantize_layer(
            mod.weight.detach().float().numpy(), mod.bias.detach().float().numpy(),
            transposed=isinstance(mod, nn.ConvTranspose2d), stride=mod.stride[0], padding=mod.padding[0],
            output_padding=mod.output_padding[0] if isinstance(mod, nn.ConvTranspose2d) else 0, relu=relu,
            in_bits=in_bits, out_bits=bits, in_bound=in_bound, lo=0 if relu else -hi, hi=hi)
        layers.append(layer)
        in_bits, in_bound = bits, hi
    return intnet.IntNetwork(tuple(layers), Z_BITS, out_bits)


def hyper_synthesis(model, z_int: np.ndarray) -> np.ndarray:
    """ẑ integers ``(C, h, w)`` → h_s output integers ``(2·C_y, 4h, 4w)`` int64 (numpy spec)."""
    return intnet.forward(integer_hyper_synthesis(model), z_int)


#: Bytes of a tile's work in h_s (its widest output with a few int64/float64 copies).
TILE_BYTES = 1 << 26


def hyper_synthesis_tiles(model, z_int: np.ndarray, device: str | torch.device | None = None):
    """:func:`hyper_synthesis` over tiles of ẑ, so that memory is bounded by a tile
    (``device``: compute with torch on that device instead of the numpy spec; same integers).

    Yields ``(r0, r1, c0, c1, out)``: ``out`` is ``(2·C_y, r1 − r0, c1 − c0)`` int64, that
    part of the whole output. Each tile is computed from its ẑ plus a halo that covers h_s's
    receptive field (:func:`_halo`); the network is exact, so tiles equal the whole."""
    net = integer_hyper_synthesis(model)
    up = _upsampling(net)
    halo = _halo(net)
    per_z = 8 * 4 * up * up * max(layer.out_channels for layer in net.layers)
    side = max(1, math.isqrt(TILE_BYTES // per_z) - 2 * halo)
    for r0, r1, c0, c1, lo_r, hi_r, lo_c, hi_c in tiles(*z_int.shape[1:], side, halo):
        part = z_int[:, lo_r:hi_r, lo_c:hi_c]
        out = intnet.forward(net, part) if device is None else hyper_synthesis_torch(model, part, device)
        yield (up * r0, up * r1, up * c0, up * c1,
               out[:, up * (r0 - lo_r) : up * (r1 - lo_r), up * (c0 - lo_c) : up * (c1 - lo_c)])


def _upsampling(net: intnet.IntNetwork) -> int:
    up = 1
    for layer in net.layers:
        up = up * layer.stride if layer.transposed else up // layer.stride
    return up


def _halo(net: intnet.IntNetwork) -> int:
    """ẑ rows (and columns) on each side that cover the receptive field, plus one: a layer
    reads ``max(p, k − 1 − p)`` input rows beyond an output's own position (divided by the
    stride for a transposed convolution), counted at ẑ's resolution."""
    reach, res = Fraction(0), Fraction(1)  # res: the layer's input resolution relative to ẑ
    for layer in net.layers:
        k, p = layer.weight.shape[-1], layer.padding
        radius = Fraction(max(p, k - 1 - p), layer.stride if layer.transposed else 1)
        reach += math.ceil(radius) / res
        res = res * layer.stride if layer.transposed else res / layer.stride
    return math.ceil(reach) + 1


def _torch_layer(x: Tensor, layer: intnet.IntLayer) -> Tensor:
    dev = x.device
    w = torch.from_numpy(layer.weight).to(dev)
    x = x.clamp(-layer.in_bound, layer.in_bound)
    c, h, wd = x.shape
    k, s, p = layer.weight.shape[-1], layer.stride, layer.padding
    if layer.transposed:
        op = layer.output_padding
        ho, wo = (h - 1) * s - 2 * p + k + op, (wd - 1) * s - 2 * p + k + op
        full = torch.zeros(layer.out_channels, (h - 1) * s + k + op, (wd - 1) * s + k + op, dtype=torch.float64,
                           device=dev)
        flat = x.reshape(c, -1)
        for ty in range(k):
            for tx in range(k):
                prod = (w[:, :, ty, tx].T @ flat).reshape(-1, h, wd)
                full[:, ty : ty + s * (h - 1) + 1 : s, tx : tx + s * (wd - 1) + 1 : s] += prod
        acc = full[:, p : p + ho, p : p + wo] + torch.from_numpy(layer.bias).to(dev)[:, None, None]
    else:
        ho, wo = (h + 2 * p - k) // s + 1, (wd + 2 * p - k) // s + 1
        xp = nn.functional.pad(x, (p, p, p, p))
        acc = torch.from_numpy(layer.bias).to(dev)[:, None].repeat(1, ho * wo)
        for ty in range(k):
            for tx in range(k):
                if not layer.weight[:, :, ty, tx].any():  # adds nothing, as in the numpy spec
                    continue
                tap = xp[:, ty : ty + s * (ho - 1) + 1 : s, tx : tx + s * (wo - 1) + 1 : s].reshape(c, -1)
                acc += w[:, :, ty, tx] @ tap
        acc = acc.reshape(-1, ho, wo)
    a = acc.to(torch.int64)
    shift = torch.from_numpy(layer.shift).to(dev)[:, None, None]
    half = torch.where(shift > 0, torch.ones_like(shift) << (shift - 1).clamp(min=0), torch.zeros_like(shift))
    y = (a + half) >> shift
    if layer.relu:
        y = y.clamp(min=0)
    return y.clamp(layer.lo, layer.hi).to(torch.float64)


@torch.no_grad()
def hyper_synthesis_torch(model, z_int: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """The same integers as :func:`hyper_synthesis`, computed with torch on ``device``."""
    net = integer_hyper_synthesis(model)
    x = torch.from_numpy(np.asarray(z_int, dtype=np.float64)).to(device)
    for layer in net.layers:  # float64 products: no TF32 on any device
        x = _torch_layer(x, layer)
    return x.to(torch.int64).cpu().numpy()


# ---------------------------------------------------------------------------------------------
# The checkerboard context (ModelConfig.context = "checkerboard", gain–shape family)
# ---------------------------------------------------------------------------------------------
#
# The context's float layers read ŷ = ĝ·s·v/√32 (ĝ the gain level, s the gain step, v the
# Leech codeword's integer coordinates) and the tokens' gains ‖ŷ_t‖ = ĝ·s. The integer
# version reads Ŷ = ĝ·v and ĝ, integers with |Ŷ| ≤ 63·4, and folds s/√32 and s into the first
# layer's weights (float64 products, rounded to float32 like every weight; IEEE-exact
# operations). Its layers:
#
# - ctx (5 × 5, no ReLU): [Ŷ, ĝ] with the non-anchors zeroed → HIDDEN_BITS, clamped to ±2**24; its
#   taps at even offsets (they read only non-anchors from a non-anchor) are zero and skipped;
# - ep[0] (1 × 1, ReLU) on the h_s output rounded half up from out_bits to HIDDEN_BITS and
#   clamped to ±RAW_BOUND (the float model clamps it there too), then ctx's output;
# - ep[2] (1 × 1) → the family's out_bits, the correction added to the h_s output at the
#   non-anchors: parameters of the second pass are the integer sum.

CTX_IN_BOUND = 63 * 4  # |ĝ · v_i|: gains below GAIN_LEVELS = 64, Λ24 minimal-vector coordinates within ±4
_CTX_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def integer_context(model) -> tuple[intnet.IntLayer, intnet.IntLayer, intnet.IntLayer]:
    """The model's context as integer layers ``(ctx, ep0, ep1)`` (built once per model)."""
    layers = _CTX_CACHE.get(model)
    if layers is None:
        layers = _CTX_CACHE[model] = _build_context(model)
    return layers


def _build_context(model) -> tuple[intnet.IntLayer, intnet.IntLayer, intnet.IntLayer]:
    from leechcodec.models import RAW_BOUND

    cm = model.context
    hi = (1 << (HIDDEN_CLAMP_BITS + HIDDEN_BITS)) - 1
    raw_bound = int(RAW_BOUND) << HIDDEN_BITS
    scale = model.latent_codec.gain_step / model.quantizer.scale  # s/√32 in float64, as the float model divides

    def layer(mod, weight, *, relu, in_bits, out_bits, in_bound, lo, hi_):
        return intnet.quantize_layer(
            weight, mod.bias.detach().float().numpy(), transposed=False, stride=1, padding=mod.padding[0],
            output_padding=0, relu=relu, in_bits=in_bits, out_bits=out_bits, in_bound=in_bound, lo=lo, hi=hi_)

    w = cm.ctx.weight.detach().double().numpy()
    c = model.config.latent_channels
    w[:, :c] *= scale  # the tokens' ĝ·v → ŷ
    w[:, c:] *= model.latent_codec.gain_step  # their ĝ → ‖ŷ_t‖
    k = w.shape[-1]
    dy, dx = np.indices((k, k)) - k // 2
    w = w * ((dy + dx) % 2 == 1)  # the taps at even offsets read non-anchors, which are 0: dropped
    ctx = layer(cm.ctx, w, relu=False, in_bits=0, out_bits=HIDDEN_BITS, in_bound=CTX_IN_BOUND, lo=-hi, hi_=hi)
    ep0 = layer(cm.ep[0], cm.ep[0].weight.detach().float().numpy(), relu=True, in_bits=HIDDEN_BITS,
                out_bits=HIDDEN_BITS, in_bound=max(hi, raw_bound), lo=0, hi_=hi)
    out_bits = model.latent_codec.out_bits
    ep1 = layer(cm.ep[2], cm.ep[2].weight.detach().float().numpy(), relu=False, in_bits=HIDDEN_BITS,
                out_bits=out_bits, in_bound=hi, lo=-_OUT_CLAMP, hi_=_OUT_CLAMP)
    return ctx, ep0, ep1


def anchors(grid, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """``(h, w)`` bool: the checkerboard's anchors (``i + j`` even on the whole latent grid) in a
    part of the grid whose first row and column are ``origin``."""
    i, j = np.indices(tuple(grid))
    return (i + j + origin[0] + origin[1]) % 2 == 0


def _raw_input(raw, out_bits: int, xp):
    """The h_s output (``out_bits`` fractional bits) as ep[0] reads it: HIDDEN_BITS, ±RAW_BOUND."""
    from leechcodec.models import RAW_BOUND

    shift = out_bits - HIDDEN_BITS
    bound = int(RAW_BOUND) << HIDDEN_BITS
    return xp.clip((raw + (1 << (shift - 1))) >> shift, -bound, bound)


def context_correction(model, raw: np.ndarray, y_int: np.ndarray, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The context's correction ``(P, h, w)`` int64 (``out_bits`` fractional bits) from the h_s
    output ``raw`` ``(P, h, w)`` int64 and ``[Ŷ, ĝ]`` ``(C + k, h, w)`` int64 (``Ŷ = ĝ·v`` per token
    channel, then the k gains), of which only the anchors are read: the numpy specification.
    It is added to ``raw`` at the non-anchors (its values at the anchors are not used, and are
    not the float layers' there: the taps that only anchors read are dropped). ``origin``: the
    grid position of the arrays' first row and column (a tile's)."""
    ctx, ep0, ep1 = integer_context(model)
    r = _raw_input(np.asarray(raw, dtype=np.int64), model.latent_codec.out_bits, np).astype(np.float64)
    c = intnet.layer_forward(y_int * anchors(y_int.shape[1:], origin), ctx)
    hidden = intnet.layer_forward(np.concatenate([r, c]), ep0)
    return intnet.layer_forward(hidden, ep1).astype(np.int64)


@torch.no_grad()
def context_correction_torch(model, raw: np.ndarray, y_int: np.ndarray, device: str | torch.device = "cpu",
                             origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The same integers as :func:`context_correction`, computed with torch on ``device``."""
    ctx, ep0, ep1 = integer_context(model)
    r = _raw_input(torch.from_numpy(np.asarray(raw, dtype=np.int64)).to(device), model.latent_codec.out_bits, torch)
    y = torch.from_numpy(np.asarray(y_int, dtype=np.float64) * anchors(y_int.shape[1:], origin)).to(device)
    c = _torch_layer(y, ctx)
    hidden = _torch_layer(torch.cat([r.to(torch.float64), c]), ep0)
    return _torch_layer(hidden, ep1).to(torch.int64).cpu().numpy()


#: Halo of the context's tiles: its 5 × 5 layer reads 2 positions beyond a tile.
CONTEXT_HALO = 2


def context_tiles(model, raw: np.ndarray, y_int: np.ndarray, device: str | torch.device | None = None) -> np.ndarray:
    """:func:`context_correction` (``device``: :func:`context_correction_torch`) over tiles of
    the latent grid, so that memory is bounded by a tile; the same integers as the whole."""
    _, h, w = raw.shape
    ctx, ep0, _ = integer_context(model)
    per = 8 * 4 * (raw.shape[0] + ctx.weight.shape[1] + 2 * ctx.out_channels + ep0.out_channels)
    side = max(1, math.isqrt(TILE_BYTES // per) - 2 * CONTEXT_HALO)
    out = np.empty_like(raw, dtype=np.int64)
    for r0, r1, c0, c1, lo_r, hi_r, lo_c, hi_c in tiles(h, w, side, CONTEXT_HALO):
        part_raw, part_y = raw[:, lo_r:hi_r, lo_c:hi_c], y_int[:, lo_r:hi_r, lo_c:hi_c]
        part = (context_correction(model, part_raw, part_y, (lo_r, lo_c)) if device is None
                else context_correction_torch(model, part_raw, part_y, device, (lo_r, lo_c)))
        out[:, r0:r1, c0:c1] = part[:, r0 - lo_r : r1 - lo_r, c0 - lo_c : c1 - lo_c]
    return out
