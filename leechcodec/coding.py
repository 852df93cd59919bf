"""The coding path of a model: image → the two .lq chunks and back (the format's coding spec).

:meth:`LeechCodecModel.compress` and :meth:`LeechCodecModel.decompress` call
:func:`encode` and :func:`decode`; :mod:`leechcodec.codec` frames the chunks in the
container and finds the model a file names.

Three coder profiles (``bitstream/container.py``). Profile 3 (format 1.2, written by
default) computes every number that decides a probability exactly or with the portable
arithmetic of :mod:`leechcodec.kernels.xmath` (IEEE ``+ − × ÷`` in a fixed order: the same
bits on every machine). Profile 2 (format 1.1) is profile 3 with the platform's libm in
place of ``xmath`` (``exp``/``log``/``log1p`` in the Λ24 kernels, ``erf``/``erfc`` in
steps 4 and 5); profile 1 (format 1.0) has a float prior. Both are still decoded. Where
the profiles differ, the list says so; "profile 2" below includes profile 3 unless it
says otherwise.

0. Padding. Profile 2: the image is replicate-padded at the bottom and right to a multiple
   of 16 pixels (the latent grid ``h' × w'`` is ``padded / 16``), and for h_a the latent is
   replicate-padded to a multiple of 4; ẑ is ``⌈h'/4⌉ × ⌈w'/4⌉`` and the prior network's
   output (4× ẑ) is cropped to ``h' × w'``. Profile 1: the image is padded to a multiple
   of 64.
1. Hyper-latents ẑ: CompressAI's EntropyBottleneck integer CDF tables (frozen in the
   weights file), one categorical per channel; symbols are clamped to each table's range,
   so no escape codes are needed (the decoder uses the clamped values too).
2. The prior network h_s maps ẑ to per-token parameters (a, b). Profile 2: the integer
   network of :mod:`leechcodec.intprior` (ẑ as integers, fixed-point weights and
   activations, exact in any arithmetic order) gives A, B directly on the grid
   ``PARAM_STEP``, clamped to ``|A| ≤ 4096``, ``−1024 ≤ B ≤ 2048``. Profile 1: float32 h_s,
   (a, b) clamped and rounded to the grid. The logit table f[i, v] = (A_i·v −
   B_i·v²)·PARAM_STEP is exact in float64.
3. Λ24 tokens, hierarchically (alphabets ≤ 4,096), in blocks of 4,096 tokens (token order
   of ``LeechCodecModel.tokens_of``): per block, all shapes; then, per shape, the majors
   (pair / octad / Golay word); then, per shape, the minors (signs / signs / position),
   each with its exact conditional probability from ``leechcodec.kernels.leech_prior``
   (float64 in one fixed order per token, ``portable=True`` in profile 3; profiles 2 and 3
   exponentiate the shape log-probabilities with the kernels' scalar ``exp``, profile 1
   with numpy's). BSQ tokens: one binary symbol
   per bit, p(+1) = σ(2A·PARAM_STEP): profile 2 takes it from a table of correctly rounded
   values (decimal arithmetic), profile 1 computes it with numpy's ``exp``.
4. Scalar latents (mean-scale Gaussian prior): the prior network maps ẑ to ``(μ, σ)`` per
   latent channel and position (profile 2: integers ``M, S`` on the grid 2**-16, ``μ = M·2**-16``
   rounded once to float32, ``σ = S·2**-16`` exact in float64); the coded integer is
   ``q = round(y − μ)`` and the decoder rebuilds ``ŷ = q + μ`` (float32). σ is
   replaced by an entry of the fixed table :data:`SCALE_TABLE` (CompressAI's
   ``get_scale_table()``: ``σ_j = exp(log 0.11 + j·(log 256 − log 0.11)/63)``, j = 0..63,
   frozen as the float64 bit patterns in this module),
   the nearest in log scale: ``j`` = the number of geometric midpoints
   ``exp(log 0.11 + (i + ½)·(log 256 − log 0.11)/63)``, i = 0..62, that are < σ (compared in
   float64; σ ≤ 0.11 → 0, σ ≥ 256 → 63). Rounding to the nearest entry costs about 0.1% of
   the latent rate over the exact σ; CompressAI's rule, rounding up, costs 1.5–2.6% (measured
   on a small trained model). Index ``j`` defines one categorical over
   ``2·L_j + 2`` symbols: ``q ∈ [−L_j, L_j]`` with ``L_j = ⌈6.11·σ_j⌉`` (symbol ``q + L_j``),
   probability ``Φ((q + ½)/σ_j) − Φ((q − ½)/σ_j)``, and an escape (symbol ``2·L_j + 1``)
   with the two tails' mass ``2·Φ(−(L_j + ½)/σ_j)`` (float64, from ``erfc`` and, for
   ``q = 0``, ``erf``: ``xmath``'s in profile 3, ``math``'s in profile 2). The rows
   depend on the table value only. Latents are taken in C order of ``(24·k, h, w)`` and
   coded in 64 groups, ``j = 0..63``, each in that order. Escaped latents (lossless: every
   ``|y − μ| < 2**31 − 1`` codes; the encoder refuses larger or non-finite latents) follow, in the
   same order, as ``u = q + 2**31``: first all high 16-bit halves, then all low halves,
   each uniform over 65,536 values.

5. Gain–shape Λ24 tokens (family ``leech24gs``; profile 2 only). The integer h_s output
   has 16 fractional bits for all its channels: ``(A, B)`` per latent channel, then ``(M, S)``
   per token. ``A = ⌊(out + 128) / 256⌋`` (the 1/256 grid of step 2, rounding half up; same
   for B), then the clamps of step 2. The gain prior's mean is ``μ = I/16`` with
   ``I = ⌊(M + 2**11) / 2**12⌋`` clamped to ``[−128, 16·(GAIN_LEVELS + 8)]``; its scale is
   the :data:`SCALE_TABLE` entry chosen from ``σ = S·2**-16`` as in step 4. Each token first
   codes its gain level ``ĝ ∈ [0, GAIN_LEVELS)`` (all tokens, token order, blocks of 4,096) with
   the folded discretized Gaussian of ``leechcodec.latent_codecs.gain_likelihood`` at
   ``(I/16, σ_j)``, float64 from ``erfc`` as in step 4 (upper tails above the mean). Then the
   tokens with ``ĝ > 0``, in token order, code their shapes as in step 3. The decoder
   rebuilds ``ŷ = ĝ·s · v/√32`` (float32), ``s = 2^-gain_frac_bits`` the model's gain step
   (1 by default), and 0 where ``ĝ = 0``.
6. Checkerboard context (gain–shape models with ``context = "checkerboard"``). The tokens at
   the anchors, latent positions ``(i, j)`` with ``i + j`` even, are coded first, as in step 5
   (gains, then the shapes of those with ``ĝ > 0``, token order restricted to the anchors),
   with the parameters of the integer h_s output ``out``. Then the integer context of
   :mod:`leechcodec.intprior` reads the anchors' ``ĝ·v`` and ``ĝ`` (integers; 0 elsewhere) and ``out``
   and gives a correction ``Δ`` with the same 16 fractional bits; the other tokens are coded
   the same way with the parameters of ``out + Δ`` (the sum in int64, then step 5's rounding
   and clamps).

The ANS stream holds the groups in that order (decode order); chunk 0 of the container is
the hyper stream, chunk 1 the token (scalar: latent) stream.

Grey images (format 1.1): an input whose three channels are equal is coded like any RGB
image and marked channel mode 1; the decoder returns ``(R + G + B + 1) // 3`` of its decoded
channels in all three (the CLI writes a one-channel PNG), so a grey photo never comes back
tinted.
"""

from __future__ import annotations

import decimal
import functools
import math
from typing import NamedTuple

import numpy as np
import torch

from leechcodec import intprior, tiling
from leechcodec.bitstream import ans, container
from leechcodec.kernels import leech, leech_prior, xmath
from leechcodec.latent_codecs import A_MAX, B_MAX, B_MIN, GAIN_LEVELS, PARAM_STEP
from leechcodec.models import LeechCodecModel, pad_to_multiple
from leechcodec.progress import track

__all__ = ["Encoded", "encode", "decode", "SCALE_TABLE", "PROFILES", "LATENT_STRIDE"]

_ROWS = 4096  # tokens per probability-table batch (bounds memory: 4096 × 4096 float64 = 128 MiB)

# The table and its midpoints as bit patterns: the values ``math.exp``/``math.log`` of
# glibc gave for the formulas below when formats 1.0 and 1.1 were written (54 of the 64
# entries differ in the last bits from the correctly rounded formula, and another libm
# gives yet others). Written out, they are the same everywhere; test_scalar checks them
# against the formulas to 1e-14.
_SCALE_HEX = """
    0x1.c28f5c28f5c2ap-4 0x1.fd8f2837ff12dp-4 0x1.20245ef9396dfp-3 0x1.45df8ca5aff37p-3
    0x1.708b8ff98cb5bp-3 0x1.a0ce0917714e6p-3 0x1.d7624847133a6p-3 0x1.0a8e127ee2a44p-2
    0x1.2d759a0d689b4p-2 0x1.54ef34e78414ap-2 0x1.81941aa46bd97p-2 0x1.b411930b6897fp-2
    0x1.ed2b96a48a651p-2 0x1.16dfe3ada4c92p-1 0x1.3b64665db0b12p-1 0x1.64b11069659abp-1
    0x1.93662e3c7c2b3p-1 0x1.c83909d4f04f6p-1 0x1.01fb5534acfc6p+0 0x1.23c378199ba9dp+0
    0x1.49f80c36f4ff5p+0 0x1.752d5b97cf7f9p+0 0x1.a60b1b4562de4p+0 0x1.dd4ef636066b8p+0
    0x1.0de7b6bc7affcp+1 0x1.313f8c641bbd7p+1 0x1.59382a1011efap+1 0x1.866cb4519f527p+1
    0x1.b98ca077cb5bdp+1 0x1.f35e5d9413e9dp+1 0x1.1a612b56336c0p+2 0x1.3f5b2ce3e70b4p+2
    0x1.692cb88555e3fp+2 0x1.98781e690d1d4p+2 0x1.cdf4efd95949ap+2 0x1.053963dd4f05ap+3
    0x1.276e382b0abefp+3 0x1.4e1db954457ddp+3 0x1.79de0e83183c3p+3 0x1.ab590859ecefbp+3
    0x1.e34eb410de865p+3 0x1.114c22710fe4cp+4 0x1.3515af8956695p+4 0x1.5d8ee8afb3b6ep+4
    0x1.8b54e5a19c036p+4 0x1.bf195037b0930p+4 0x1.f9a515f99e34ap+4 0x1.1dedb9ff18f64p+5
    0x1.435eb4754ff3cp+5 0x1.6db6cd382c114p+5 0x1.9d9a5eb485809p+5 0x1.d3c348d5bcfe9p+5
    0x1.0881e13c43637p+6 0x1.2b24c4ab26bccp+6 0x1.5250be6407bf5p+6 0x1.7e9dd8af256cdp+6
    0x1.b0b8069044e94p+6 0x1.e961bf2cc5b43p+6 0x1.14bb784b37cd6p+7 0x1.38f82ab64d931p+7
    0x1.61f39d227a7cap+7 0x1.904ce0bf7c348p+7 0x1.c4b7db07f491fp+7 0x1.ffffffffffff6p+7
"""
_BOUND_HEX = """
    0x1.df2701e9e5e91p-4 0x1.0ef2a49c73689p-3 0x1.326d6e57286ddp-3 0x1.5a8d93ce0808ap-3
    0x1.87eed300fc8a4p-3 0x1.bb414ec51c0f5p-3 0x1.f54c3a6adb9d9p-3 0x1.1b786f74de5e4p-2
    0x1.409702a535c9bp-2 0x1.6a91e9c89d56cp-2 0x1.9a0c1593aad01p-2 0x1.cfbdccdbd1001p-2
    0x1.063bbbeb2d4abp-1 0x1.2892648008ebcp-1 0x1.4f6827f89ef2ep-1 0x1.7b53c1fe5f642p-1
    0x1.acffab2504023p-1 0x1.e52cae93c93a5p-1 0x1.125a6b2984b35p+0 0x1.36475ccb55afap+0
    0x1.5ee89ced146b1p+0 0x1.8cdbdea888e90p+0 0x1.c0d37b8ab335ap+0 0x1.fb9927d1a353ep+0
    0x1.1f0880a7ea5adp+1 0x1.449e8269dd74dp+1 0x1.6f207bc00a472p+1 0x1.9f3369a1cdda3p+1
    0x1.d591e3cdcd17dp+1 0x1.098778831f168p+2 0x1.2c4c9d119be2bp+2 0x1.539f5433125c2p+2
    0x1.80183e8ce30d5p+2 0x1.b263f9307e0a2p+2 0x1.eb45bb9581695p+2 0x1.15cd26a77fc5cp+3
    0x1.3a2daf7c6f9d9p+3 0x1.6351a9adb166ep+3 0x1.91d8c3bb36345p+3 0x1.c67795095324dp+3
    0x1.00fd2d68f1c01p+4 0x1.22a4086f4b16ep+4 0x1.48b2f908a2936p+4 0x1.73bdb7290e9aap+4
    0x1.a46b52a1831a9p+4 0x1.db78bb8d8885ap+4 0x1.0cddcfd4e012ap+5 0x1.3012d3d8c8765p+5
    0x1.57e410ab88154p+5 0x1.84ec1206e02dfp+5 0x1.b7d9a05ebcc32p+5 0x1.f1726746fa60cp+5
    0x1.194afa574d0aap+6 0x1.3e208e4926182p+6 0x1.67c8e7271640ep+6 0x1.96e5b537c6920p+6
    0x1.cc2dd4ed373c8p+6 0x1.04380a5295179p+7 0x1.264b2bad059fbp+7 0x1.4cd49037f032ep+7
    0x1.7869cb306242ap+7 0x1.a9b405ece99dep+7 0x1.e17290719da8cp+7
"""
#: Gaussian scales of the scalar family's coder (CompressAI's ``get_scale_table()``,
#: ``exp(log 0.11 + i·(log 256 − log 0.11)/63)``, i = 0..63), float64.
SCALE_TABLE = np.array([float.fromhex(h) for h in _SCALE_HEX.split()])
SCALE_TABLE.setflags(write=False)
#: Geometric midpoints between neighbouring table scales (``i + ½`` in the formula): σ maps
#: to the nearest entry in log scale.
_SCALE_BOUNDS = np.array([float.fromhex(h) for h in _BOUND_HEX.split()])
_SCALE_BOUNDS.setflags(write=False)
_TAIL_STDS = 6.11  # support half-width L_j = ⌈6.11·σ_j⌉: tails beyond hold ≈ 1e-9 (escape)
_ESCAPE_OFFSET = 1 << 31  # escaped latents are coded as u = q + 2**31 in two 16-bit halves
#: Coder profiles this codec writes and reads, with the format version each is written as.
PROFILES = {container.PROFILE_ANS32_P24: (1, 0), container.PROFILE_EXACT_ANS32_P24: (1, 1),
            container.PROFILE_PORTABLE_ANS32_P24: (1, 2)}
LATENT_STRIDE = 16  # pixels per latent row and column (g_a's stride)
_QUANTIZE_ELEMENTS = 1 << 22  # latent values per quantizer call in the encoder
_A_INT = round(A_MAX / PARAM_STEP)  # Λ24 / BSQ parameter ranges on the integer grid
_B_INT = (round(B_MIN / PARAM_STEP), round(B_MAX / PARAM_STEP))



class Encoded(NamedTuple):
    """An image coded by a model, before the container frames it."""

    chunks: list  # [hyper stream, token stream] (bytes)
    height: int
    width: int
    padded_height: int
    padded_width: int
    grey: bool  # channel mode 1: the three input channels were equal
    ideal_bits: float  # −Σ log2 p of all coded symbols under the coding probabilities
    hyper_ideal_bits: float


def encode(model: LeechCodecModel, rgb: np.ndarray, profile: int = container.PROFILE_DEFAULT,
           refine: int = 0, lmbda: float = math.nan, refine_lr: float | None = None, progress=None) -> Encoded:
    """Code an ``(H, W, 3)`` uint8 image (see the module docstring, steps 0-4)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown coder profile {profile}")
    rgb = np.asarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    # Profiles 2 and 3 pad the image to a multiple of 16 pixels and the latent to a multiple
    # of 4 rows and columns for h_a (replicating its edge); profile 1 and refinement pad the
    # image to the hyperprior's stride (64).
    pad = LATENT_STRIDE if profile != container.PROFILE_ANS32_P24 and not refine else model.stride
    ph, pw = h + (-h) % pad, w + (-w) % pad
    if refine:
        from leechcodec.refine import DEFAULT_LR, refine_latents

        if not math.isfinite(lmbda):
            raise ValueError("refinement needs the model's λ")
        x = pad_to_multiple(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255, model.stride)
        r = refine_latents(model, x, h, w, lmbda, refine, refine_lr or DEFAULT_LR, progress)
        y, z = r.y, r.z
        del x
    else:
        y = tiling.analyze(model, rgb, ph, pw)
        with torch.no_grad():
            z = model.h_a(pad_to_multiple(y, model.stride // LATENT_STRIDE))
    with torch.no_grad():
        grey = profile != container.PROFILE_ANS32_P24 and _is_grey(rgb)
        hyper = ans.SymbolEncoder()
        sym = _code_hyper(model, z, hyper)
        tokens = ans.SymbolEncoder()
        model.latent_codec.encode(model, y, sym, profile, tuple(y.shape[2:]), tokens)
        return Encoded([hyper.finish(), tokens.finish()], h, w, ph, pw, grey,
                       hyper.ideal_bits + tokens.ideal_bits, hyper.ideal_bits)


@torch.no_grad()
def decode(model: LeechCodecModel, chunks: list, height: int, width: int, padded_height: int, padded_width: int,
           profile: int, grey: bool = False, prior_device: str | None = None) -> tuple[np.ndarray, dict]:
    """``(image (H, W, 3) uint8, coding parameters)`` from the two chunks; refuses a hyper
    chunk too short for its symbols before the large work."""
    ph, pw = padded_height, padded_width
    pad = model.stride if profile == container.PROFILE_ANS32_P24 else LATENT_STRIDE
    if ph % pad or pw % pad:
        raise container.LqFormatError("inconsistent padding in header")
    grid = (ph // LATENT_STRIDE, pw // LATENT_STRIDE)
    hyper_shape = (model.config.hyper_channels, -(-ph // model.stride), -(-pw // model.stride))
    _check_hyper_chunk(model, hyper_shape, len(chunks[0]))
    hyper = ans.SymbolDecoder(chunks[0])
    sym = _decode_hyper(model, hyper_shape, hyper)
    hyper.finish()
    tokens = ans.SymbolDecoder(chunks[1])
    y_hat, params = model.latent_codec.decode(model, sym, profile, grid, tokens, prior_device)
    tokens.finish()
    image = tiling.synthesize(model, y_hat, height, width)
    if grey:
        mean = ((image.astype(np.uint16).sum(axis=2) + 1) // 3).astype(np.uint8)
        image = np.repeat(mean[:, :, None], 3, axis=2)
    return image, {"hyper_symbols": sym, **params}


def _hyper_tables(model: LeechCodecModel) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    eb = model.entropy_bottleneck
    cdf = eb._quantized_cdf.numpy().astype(np.int64)
    lengths = eb._cdf_length.numpy().astype(np.int64)
    offsets = eb._offset.numpy().astype(np.int64)
    medians = eb.quantiles[:, 0, 1].detach().double().numpy()
    return cdf, lengths, offsets, medians


def _hyper_pmf(cdf: np.ndarray, length: int) -> np.ndarray:
    """Probabilities of a channel's symbols (the overflow bin dropped)."""
    freq = np.diff(cdf[:length]).astype(np.float64)[:-1]
    return freq / freq.sum()


def _code_hyper(model: LeechCodecModel, z: torch.Tensor, enc: ans.SymbolEncoder) -> np.ndarray:
    """Code the hyper-latents; returns their CDF-table symbols ``(C, h, w)`` int64."""
    cdf, lengths, offsets, medians = _hyper_tables(model)
    zn = z[0].double().numpy()  # (C, h, w)
    sym = np.empty(zn.shape, dtype=np.int64)
    for c in range(zn.shape[0]):
        n_sym = int(lengths[c]) - 2
        sym[c] = np.clip(np.round(zn[c] - medians[c]) - offsets[c], 0, n_sym - 1)
        pmf = _hyper_pmf(cdf[c], int(lengths[c]))
        enc.add(sym[c].ravel(), np.broadcast_to(pmf, (sym[c].size, pmf.size)))
    return sym


def _decode_hyper(model: LeechCodecModel, shape: tuple[int, int, int], dec: ans.SymbolDecoder) -> np.ndarray:
    cdf, lengths, _, _ = _hyper_tables(model)
    c_n, h, w = shape
    sym = np.empty(shape, dtype=np.int64)
    for c in range(c_n):
        pmf = _hyper_pmf(cdf[c], int(lengths[c]))
        sym[c] = dec.read(np.broadcast_to(pmf, (h * w, pmf.size))).reshape(h, w)
    return sym


def _check_hyper_chunk(model: LeechCodecModel, shape: tuple[int, int, int], n_bytes: int) -> None:
    """Refuse a hyper chunk too short for its symbols: each symbol of channel c costs at least
    ``−log2(max_freq_c / 2**24)`` bits, and an ANS stream of ``n`` bytes holds at most
    ``8·n`` bits of information (the terminator's 24 bits among them)."""
    cdf, lengths, _, _ = _hyper_tables(model)
    least = 0.0
    for c in range(shape[0]):
        freq = ans.quantized_frequencies(_hyper_pmf(cdf[c], int(lengths[c]))[None])[0]
        least += shape[1] * shape[2] * (ans.PRECISION - math.log2(int(freq.max())))
    if least > 8 * n_bytes:
        raise container.LqFormatError(
            f"hyper chunk of {n_bytes:,} bytes cannot hold the {shape[0] * shape[1] * shape[2]:,} symbols of a "
            f"{shape[2] * 64}x{shape[1] * 64} (padded) image: they need at least {least / 8:,.0f} bytes")


def _z_hat_float(model: LeechCodecModel, sym: np.ndarray) -> torch.Tensor:
    """Profile 1: ẑ = symbol + offset + median, float32 ``(1, C, h, w)``."""
    _, _, offsets, medians = _hyper_tables(model)
    z_hat = (sym + offsets[:, None, None]) + medians[:, None, None]
    return torch.from_numpy(z_hat)[None].float()


def _prior_tiles(model: LeechCodecModel, sym: np.ndarray, grid: tuple[int, int], device: str | None):
    """Profile 2: the integer h_s output over tiles, cropped to the latent grid ``(h', w')``
    (h_s upsamples ẑ by 4; the grid may be up to 3 rows and columns smaller): yields
    ``(r0, r1, c0, c1, out (2·C_y, r1 − r0, c1 − c0) int64)``."""
    tiles = intprior.hyper_synthesis_tiles(model, intprior.z_integers(model, sym), device)
    for r0, r1, c0, c1, out in track(tiles, "prior"):
        r1, c1 = min(r1, grid[0]), min(c1, grid[1])
        if r0 < r1 and c0 < c1:
            yield r0, r1, c0, c1, out[:, : r1 - r0, : c1 - c0]


def _token_params(model: LeechCodecModel, sym: np.ndarray, profile: int, grid: tuple[int, int],
                  device: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Λ24 / BSQ: integer grid parameters ``(n_tokens, D)`` int16 of A and B, token order,
    for the latent grid ``(h', w')`` (``device``: the torch integer path on that device
    instead of the numpy spec)."""
    if profile == container.PROFILE_ANS32_P24:
        return _logit_tables(model, _z_hat_float(model, sym))
    m, dim = model.config.latent_channels, model.quantizer.dim
    k = m // dim
    a = np.empty((k, *grid, dim), dtype=np.int16)  # token order: (k, rows, cols) × D
    b = np.empty_like(a)
    for r0, r1, c0, c1, out in _prior_tiles(model, sym, grid, device):
        a[:, r0:r1, c0:c1], b[:, r0:r1, c0:c1] = _grid_ab(out, k, dim, model.latent_codec.out_bits)
    return a.reshape(-1, dim), b.reshape(-1, dim)


def _grid_ab(out: np.ndarray, k: int, dim: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """``(A, B)`` of one prior tile, ``(k, rows, cols, D)`` token order, from the first
    ``2·k·D`` channels of the integer h_s output ``out`` (``bits`` fractional bits): rounded
    half up to the 1/256 grid when ``bits`` > 8 (step 5), then clamped (step 2)."""
    m = k * dim
    ab = out[: 2 * m]
    if bits > 8:
        ab = (ab + (1 << (bits - 9))) >> (bits - 8)  # ⌊(out + 2^(bits−9)) / 2^(bits−8)⌋
    shape = (k, dim, *out.shape[1:])
    a = np.clip(ab[:m], -_A_INT, _A_INT).reshape(shape).transpose(0, 2, 3, 1)
    b = np.clip(ab[m:], *_B_INT).reshape(shape).transpose(0, 2, 3, 1)
    return a, b


def _gaussian_params(model: LeechCodecModel, sym: np.ndarray, profile: int, grid: tuple[int, int],
                     device: str | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """Scalar family: means ``(1, C, h', w')`` float32 and scale-table indices ``(n,)`` int64
    (C order of ``(C, h', w')``) for the latent grid ``(h', w')``."""
    if profile == container.PROFILE_ANS32_P24:
        means, scales = model.gaussian_params(_z_hat_float(model, sym))
        return means, _scale_indices(scales)
    m, bits = model.config.latent_channels, model.latent_codec.out_bits
    means = np.empty((m, *grid), dtype=np.float32)
    idx = np.empty((m, *grid), dtype=np.int8)
    for r0, r1, c0, c1, out in _prior_tiles(model, sym, grid, device):
        means[:, r0:r1, c0:c1] = np.ldexp(out[:m].astype(np.float64), -bits)  # one rounding to float32
        scales = np.ldexp(out[m:].astype(np.float64), -bits)  # exact: |out| < 2**53
        idx[:, r0:r1, c0:c1] = np.searchsorted(_SCALE_BOUNDS, scales.ravel(), side="left").reshape(scales.shape)
    return torch.from_numpy(means)[None], idx.reshape(-1).astype(np.int64)


def _logit_tables(model: LeechCodecModel, z_hat: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Profile 1 (float h_s): integer grid parameters ``(n_tokens, D)`` of A and B, token order."""
    with torch.no_grad():
        a, b = model.prior_params(z_hat)
    ai = torch.round(model.tokens_of(a)[0].double() / PARAM_STEP).numpy().astype(np.int16)
    bi = torch.round(model.tokens_of(b)[0].double() / PARAM_STEP).numpy().astype(np.int16)
    return ai, bi


def _leech_f(ai: np.ndarray, bi: np.ndarray) -> np.ndarray:
    """f ``(n, 24, 9)`` float64 with f[n, i, v+4] = (A·v − B·v²)·PARAM_STEP, exact."""
    v = np.arange(-4, 5, dtype=np.int64)
    f = ai[:, :, None].astype(np.int64) * v - bi[:, :, None].astype(np.int64) * v * v
    return np.ascontiguousarray(f.astype(np.float64) * PARAM_STEP)


def _bsq_probs(ai: np.ndarray, profile: int) -> np.ndarray:
    """``(n·L, 2)`` probabilities of bit 0 (v = +1) and bit 1 (v = −1); p(+1) = σ(2a).

    Profile 2 looks σ up in :func:`_sigmoid_table` (correctly rounded, the same on every
    machine); profile 1 used numpy's ``exp``, whose last bit can depend on the CPU."""
    if profile == container.PROFILE_ANS32_P24:
        p_plus = 1.0 / (1.0 + np.exp(-2.0 * ai.astype(np.float64).ravel() * PARAM_STEP))
    else:
        p_plus = _sigmoid_table()[ai.ravel().astype(np.int64) + _A_INT]
    return np.stack([p_plus, 1.0 - p_plus], axis=1)


@functools.lru_cache(maxsize=1)
def _sigmoid_table() -> np.ndarray:
    """σ(2A/256) for A = −A_MAX·256..A_MAX·256, float64, each correctly rounded (decimal
    arithmetic at 40 digits, then one rounding to float64)."""
    ctx = decimal.Context(prec=40)
    two_over_step = decimal.Decimal(2) / decimal.Decimal(256)
    table = np.array([float(ctx.divide(1, 1 + ctx.exp(-a * two_over_step))) for a in range(-_A_INT, _A_INT + 1)])
    table.setflags(write=False)
    return table


def _rows(n: int, stage: str):
    for start in track(range(0, n, _ROWS), stage):
        yield slice(start, min(n, start + _ROWS))


def _portable(profile: int) -> bool:
    """Whether ``profile`` computes its probabilities with :mod:`leechcodec.kernels.xmath`."""
    return profile == container.PROFILE_PORTABLE_ANS32_P24


def _shape_probs(shape_logp: np.ndarray, profile: int) -> np.ndarray:
    """Shape probabilities from their logs: numpy's exp in profile 1, the kernels' scalar one
    in profiles 2 (libm) and 3 (portable); numpy's vectorized exp can differ in the last bit
    between CPUs."""
    if profile == container.PROFILE_ANS32_P24:
        return np.exp(shape_logp)
    return leech_prior.exp_rows(shape_logp, portable=_portable(profile))


def _code_leech(idx: np.ndarray, ai: np.ndarray, bi: np.ndarray, enc: ans.SymbolEncoder, profile: int) -> None:
    """Tokens in blocks of ``_ROWS``; per block: shapes, then majors and minors per shape."""
    portable = _portable(profile)
    for rows in _rows(len(idx), "entropy coding"):
        t = leech_prior.coding_tables(_leech_f(ai[rows], bi[rows]), idx[rows], portable=portable)
        enc.add(t.shape, _shape_probs(t.shape_logp, profile))
        for s in range(3):
            enc.add(t.major[t.positions[s]], t.major_probs[s])
        for s in range(3):
            enc.add(t.minor[t.positions[s]], t.minor_probs[s])


def _decode_leech(ai: np.ndarray, bi: np.ndarray, dec: ans.SymbolDecoder, profile: int) -> np.ndarray:
    out = np.empty(ai.shape[0], dtype=np.int64)
    portable = _portable(profile)
    for rows in _rows(ai.shape[0], "entropy decoding"):
        fb = _leech_f(ai[rows], bi[rows])
        shape = dec.read(_shape_probs(leech_prior.shape_log_probs(fb, portable=portable), profile))
        major = np.zeros_like(shape)
        minor = np.zeros_like(shape)
        sel = [np.flatnonzero(shape == s) for s in range(3)]
        for s in range(3):
            major[sel[s]] = dec.read(leech_prior.major_probs(fb[sel[s]], s, portable=portable))
        for s in range(3):
            minor[sel[s]] = dec.read(leech_prior.minor_probs(fb[sel[s]], s, major[sel[s]], portable=portable))
        out[rows] = leech.join_index(shape, major, minor)
    return out


def _bsq_bits(idx: np.ndarray, dim: int) -> np.ndarray:
    return ((idx[:, None] >> np.arange(dim, dtype=np.int64)) & 1).ravel()


def _erf_pair(portable: bool):
    """``(erf, erfc)``: :mod:`leechcodec.kernels.xmath`'s when ``portable`` (profile 3), the
    platform's (``math``) otherwise (profiles 1 and 2)."""
    return (xmath.erf, xmath.erfc) if portable else (math.erf, math.erfc)


@functools.lru_cache(maxsize=None)
def _gaussian_row(j: int, portable: bool) -> tuple[int, np.ndarray]:
    """``(L, row)``: support half-width and the ``(2L + 2,)`` float64 probabilities of
    ``q = −L..L`` then the escape, for the table scale ``SCALE_TABLE[j]``; ``portable``
    as in :func:`_erf_pair`."""
    erf, erfc = _erf_pair(portable)
    sigma = float(SCALE_TABLE[j])
    half_width = math.ceil(_TAIL_STDS * sigma)
    c = 1.0 / (sigma * math.sqrt(2.0))
    tail = [0.5 * erfc((v + 0.5) * c) for v in range(half_width + 1)]  # P(Y > v + ½)
    side = [max(0.0, tail[v - 1] - tail[v]) for v in range(1, half_width + 1)]  # q = 1..L
    row = np.array(side[::-1] + [erf(0.5 * c)] + side + [2.0 * tail[-1]])
    row.setflags(write=False)
    return half_width, row


def _scale_indices(scales: torch.Tensor) -> np.ndarray:
    """Table index of every scale: C-order ``(n,)`` int64 from ``(1, C, h, w)`` float32."""
    s = scales[0].double().numpy().ravel()
    return np.searchsorted(_SCALE_BOUNDS, s, side="left").astype(np.int64)


def _scale_groups(scale_idx: np.ndarray, profile: int):
    """Yield ``(L, row, positions)`` per used table index, in index order; positions ascending."""
    portable = _portable(profile)
    order = np.argsort(scale_idx, kind="stable")
    bounds = np.searchsorted(scale_idx[order], np.arange(len(SCALE_TABLE) + 1))
    for j in range(len(SCALE_TABLE)):
        if bounds[j + 1] > bounds[j]:
            yield *_gaussian_row(j, portable), order[bounds[j] : bounds[j + 1]]


def _code_scalar(q: np.ndarray, scale_idx: np.ndarray, enc: ans.SymbolEncoder, profile: int) -> None:
    """Integers ``q (n,)`` int64 (``|q| < 2**31``) with their table indices ``(n,)``."""
    escaped = np.zeros(len(q), dtype=bool)
    for half_width, row, pos in _scale_groups(scale_idx, profile):
        qj = q[pos]
        esc = np.abs(qj) > half_width
        escaped[pos[esc]] = True
        enc.add(np.where(esc, 2 * half_width + 1, qj + half_width), np.broadcast_to(row, (len(pos), len(row))))
    u = q[escaped] + _ESCAPE_OFFSET
    enc.add_uniform(u >> 16, 1 << 16)
    enc.add_uniform(u & 0xFFFF, 1 << 16)


def _decode_scalar(scale_idx: np.ndarray, dec: ans.SymbolDecoder, profile: int) -> np.ndarray:
    q = np.empty(len(scale_idx), dtype=np.int64)
    escaped = np.zeros(len(q), dtype=bool)
    for half_width, row, pos in _scale_groups(scale_idx, profile):
        sym = dec.read(np.broadcast_to(row, (len(pos), len(row))))
        q[pos] = sym - half_width
        escaped[pos[sym == 2 * half_width + 1]] = True
    n_esc = int(escaped.sum())
    hi = dec.read_uniform(n_esc, 1 << 16)
    lo = dec.read_uniform(n_esc, 1 << 16)
    q[escaped] = ((hi << 16) | lo) - _ESCAPE_OFFSET
    return q


def _scalar_integers(model: LeechCodecModel, y: torch.Tensor, means: torch.Tensor) -> np.ndarray:
    """``round(y − μ)`` in C order, ``(n,)`` int64; refuses latents the format cannot hold."""
    r = y - means
    if not torch.isfinite(r).all() or r.abs().max() >= _ESCAPE_OFFSET - 1:
        raise ValueError("scalar latents are non-finite or too large to code (|y − μ| ≥ 2**31 − 1)")
    return model.quantizer(r).indices[0].reshape(-1).numpy()


def _is_grey(rgb: np.ndarray) -> bool:
    """Whether the three channels are equal (a grey input, converted to RGB on load)."""
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))


def _token_indices(model: LeechCodecModel, y: torch.Tensor) -> np.ndarray:
    """Codeword indices ``(k·h'·w',)`` int64 in token order, quantized in blocks of latent
    rows (the quantizer's temporaries are several copies of its input)."""
    k, (h, w) = model.config.tokens, y.shape[2:]
    idx = np.empty((k, h, w), dtype=np.int64)
    rows = max(1, _QUANTIZE_ELEMENTS // (y.shape[1] * w))
    for r0 in track(range(0, h, rows), "quantization"):
        idx[:, r0 : r0 + rows] = model.quantizer(y[:, :, r0 : r0 + rows]).indices[0].numpy()
    return idx.reshape(-1)


def _require_exact_profile(family: str, profile: int) -> None:
    if profile == container.PROFILE_ANS32_P24:
        raise ValueError(f"the {family} family is coded with the exact prior only (coder profiles "
                         f"{container.PROFILE_EXACT_ANS32_P24} and {container.PROFILE_PORTABLE_ANS32_P24}, "
                         f"formats 1.1 and 1.2), not profile {profile}")


_GAIN_MEAN_BITS = 4  # μ on the grid 1/16
_GAIN_MEAN_RANGE = (-8 << _GAIN_MEAN_BITS, (GAIN_LEVELS + 8) << _GAIN_MEAN_BITS)


def _gain_shape_params(model: LeechCodecModel, sym: np.ndarray, grid: tuple[int, int], device: str | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gain–shape family (step 5): ``(A, B)`` ``(n_tokens, 24)`` int16 and the gain prior's
    mean index ``I`` and scale-table index ``j`` ``(n_tokens,)`` int64, token order."""
    k, dim = model.config.tokens, model.quantizer.dim
    a = np.empty((k, *grid, dim), dtype=np.int16)
    b = np.empty_like(a)
    mu = np.empty((k, *grid), dtype=np.int64)
    scale = np.empty((k, *grid), dtype=np.int64)
    for r0, r1, c0, c1, out in _prior_tiles(model, sym, grid, device):
        a[:, r0:r1, c0:c1], b[:, r0:r1, c0:c1], mu[:, r0:r1, c0:c1], scale[:, r0:r1, c0:c1] = _gain_shape_grid(
            model, out)
    return a.reshape(-1, dim), b.reshape(-1, dim), mu.reshape(-1), scale.reshape(-1)


def _gain_shape_grid(model: LeechCodecModel, out: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(A, B)`` ``(k, rows, cols, 24)`` and ``(I, j)`` ``(k, rows, cols)`` from an integer
    h_s output ``out`` ``(P, rows, cols)`` (a tile, or the whole grid)."""
    m, k, dim, bits = model.config.latent_channels, model.config.tokens, model.quantizer.dim, model.latent_codec.out_bits
    mshift = bits - _GAIN_MEAN_BITS
    a, b = _grid_ab(out, k, dim, bits)
    mu = np.clip((out[2 * m : 2 * m + k] + (1 << (mshift - 1))) >> mshift, *_GAIN_MEAN_RANGE)
    sigma = np.ldexp(out[2 * m + k :].astype(np.float64), -bits)  # exact: |out| < 2**53
    scale = np.searchsorted(_SCALE_BOUNDS, sigma.ravel(), side="left").reshape(sigma.shape)
    return a, b, mu, scale


def _gain_shape_raw(model: LeechCodecModel, sym: np.ndarray, grid: tuple[int, int], device: str | None = None
                    ) -> np.ndarray:
    """The whole integer h_s output over the latent grid, ``(P, h', w')`` int64 (the context
    model's passes both start from it)."""
    raw = np.empty((model.latent_codec.param_channels(model.config), *grid), dtype=np.int64)
    for r0, r1, c0, c1, out in _prior_tiles(model, sym, grid, device):
        raw[:, r0:r1, c0:c1] = out
    return raw


def _gain_shape_tokens(model: LeechCodecModel, raw: np.ndarray) -> tuple[np.ndarray, ...]:
    """:func:`_gain_shape_grid` of the whole grid, flattened to token order."""
    a, b, mu, scale = _gain_shape_grid(model, raw)
    dim = model.quantizer.dim
    return a.reshape(-1, dim), b.reshape(-1, dim), mu.reshape(-1), scale.reshape(-1)


def _anchor_tokens(k: int, grid: tuple[int, int]) -> np.ndarray:
    """``(k·h'·w',)`` bool, token order: the tokens at the checkerboard's anchors (``i + j`` even)."""
    return np.broadcast_to(intprior.anchors(grid), (k, *grid)).reshape(-1)


def _context_params(model: LeechCodecModel, raw: np.ndarray, idx: np.ndarray, gains: np.ndarray,
                    device: str | None = None) -> tuple[np.ndarray, ...]:
    """The second pass's parameters, token order: the h_s output plus the integer context's
    correction (:func:`leechcodec.intprior.context_tiles`) from the anchors' ``Ŷ = ĝ·v`` and ``ĝ``
    (the correction reads the anchors only; other tokens' values do not matter)."""
    from leechcodec.leech_search import leech_codewords_torch

    k, dim = model.config.tokens, model.quantizer.dim
    grid = raw.shape[1:]
    codes = leech_codewords_torch(torch.from_numpy(idx)).numpy().astype(np.int64)
    y_int = (codes * gains[:, None]).reshape(k, *grid, dim).transpose(0, 3, 1, 2).reshape(k * dim, *grid)
    y_int = np.concatenate([y_int, gains.reshape(k, *grid)])
    return _gain_shape_tokens(model, raw + intprior.context_tiles(model, raw, y_int, device))


def _code_gain_shape(gains: np.ndarray, idx: np.ndarray, params: tuple[np.ndarray, ...], enc: ans.SymbolEncoder,
                     profile: int) -> None:
    """The gains, then the shapes of the tokens whose gain is not 0."""
    ai, bi, mu_idx, scale_idx = params
    _code_gains(gains, mu_idx, scale_idx, enc, profile)
    coded = gains > 0
    _code_leech(idx[coded], ai[coded], bi[coded], enc, profile)


def _decode_gain_shape(params: tuple[np.ndarray, ...], dec: ans.SymbolDecoder, profile: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``(gains, shape indices)`` (0 where the gain is 0), the inverse of :func:`_code_gain_shape`."""
    ai, bi, mu_idx, scale_idx = params
    gains = _decode_gains(mu_idx, scale_idx, dec, profile)
    coded = gains > 0
    idx = np.zeros(len(gains), dtype=np.int64)
    idx[coded] = _decode_leech(ai[coded], bi[coded], dec, profile)
    return gains, idx


@functools.lru_cache(maxsize=None)
def _gain_row(mean_index: int, j: int, portable: bool) -> np.ndarray:
    """``(GAIN_LEVELS,)`` float64 probabilities of the gains 0..GAIN_LEVELS − 1 under the
    folded discretized Gaussian at ``μ = mean_index/16``, ``σ = SCALE_TABLE[j]``; ``portable``
    as in :func:`_erf_pair`."""
    erfc = _erf_pair(portable)[1]
    mu = math.ldexp(mean_index, -_GAIN_MEAN_BITS)
    c = 1.0 / (float(SCALE_TABLE[j]) * math.sqrt(2.0))
    edges = [n + 0.5 for n in range(GAIN_LEVELS - 1)]  # between gains n and n + 1
    below = [0.0] + [0.5 * erfc(-(x - mu) * c) for x in edges] + [1.0]  # Φ((x − μ)/σ)
    above = [1.0] + [0.5 * erfc((x - mu) * c) for x in edges] + [0.0]  # 1 − Φ((x − μ)/σ)
    row = np.array([max(0.0, above[n] - above[n + 1]) if n >= mu else max(0.0, below[n + 1] - below[n])
                    for n in range(GAIN_LEVELS)])
    row.setflags(write=False)
    return row


def _gain_tables(mu_idx: np.ndarray, scale_idx: np.ndarray, profile: int) -> np.ndarray:
    """``(n, GAIN_LEVELS)`` rows of the tokens' gain priors in coder profile ``profile``."""
    portable = _portable(profile)
    keys, inverse = np.unique(mu_idx * 64 + scale_idx, return_inverse=True)
    rows = np.stack([_gain_row(int(key) // 64, int(key) % 64, portable) for key in keys])
    return rows[inverse.reshape(-1)]


def _code_gains(gains: np.ndarray, mu_idx: np.ndarray, scale_idx: np.ndarray, enc: ans.SymbolEncoder,
                profile: int) -> None:
    for rows in _rows(len(gains), "gains"):
        enc.add(gains[rows], _gain_tables(mu_idx[rows], scale_idx[rows], profile))


def _decode_gains(mu_idx: np.ndarray, scale_idx: np.ndarray, dec: ans.SymbolDecoder, profile: int) -> np.ndarray:
    out = np.empty(len(mu_idx), dtype=np.int64)
    for rows in _rows(len(mu_idx), "gains"):
        out[rows] = dec.read(_gain_tables(mu_idx[rows], scale_idx[rows], profile))
    return out


def _token_gains(model: LeechCodecModel, y: torch.Tensor) -> np.ndarray:
    """The encoder's gain levels ``min(round(‖t‖ / s), GAIN_LEVELS − 1)`` ``(k·h'·w',)`` int64,
    token order (``s`` the model's gain step)."""
    g = model.latent_codec.gains(y)[0]
    if not torch.isfinite(g).all():
        raise ValueError("the latent has non-finite values")
    return torch.round(g).clamp(0, GAIN_LEVELS - 1).to(torch.int64).reshape(-1).numpy()
