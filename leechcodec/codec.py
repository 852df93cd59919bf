"""Compress and decompress images with a zoo model into .lq files.

Coding (all probabilities from one deterministic float64 CPU path):

1. Hyper-latents ẑ: CompressAI's EntropyBottleneck integer CDF tables (frozen in the
   weights file), one categorical per channel; symbols are clamped to each table's range,
   so no escape codes are needed (the decoder uses the clamped values too).
2. The prior network maps ẑ to per-token parameters (a, b); they are rounded to the grid
   ``PARAM_STEP`` (integers), and the logit table f[i, v] = (A_i·v − B_i·v²)·PARAM_STEP is
   exact in float64.
3. Λ24 tokens, hierarchically (alphabets ≤ 4,096), in blocks of 4,096 tokens (token order
   of ``LeechCodecModel.tokens_of``): per block, all shapes; then, per shape, the majors
   (pair / octad / Golay word); then, per shape, the minors (signs / signs / position),
   each with its exact conditional probability from ``leechcodec.kernels.leech_prior``.
   BSQ tokens: one binary symbol per bit, p(+1) = σ(2a).

The ANS stream holds the groups in that order (decode order); chunk 0 of the container is
the hyper stream, chunk 1 the token stream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from compressai.layers import GDN

from leechcodec.bitstream import ans, container
from leechcodec.kernels import leech, leech_prior
from leechcodec.models import PARAM_STEP, LeechCodecModel, pad_to_multiple
from leechcodec.zoo import ZooEntry, entry_from_key, load_model

__all__ = ["encode_image", "decode_image", "EncodeResult", "compress", "decompress", "FORMAT_CHANNELS"]

FORMAT_CHANNELS = 3
_ROWS = 4096  # tokens per probability-table batch (bounds memory: 4096 × 4096 float64 = 128 MiB)


@dataclass(frozen=True)
class EncodeResult:
    data: bytes
    height: int
    width: int
    ideal_bits: float  # −Σ log2 p of all coded symbols under the float64 model
    seconds: float

    @property
    def bpp(self) -> float:
        return 8 * len(self.data) / (self.height * self.width)


#: Above this many latent elements, GDN layers run in place over row strips (large images).
LEAN_GDN_ELEMENTS = 1 << 26


def _run_transform(layers: torch.nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Apply ``g_a`` or ``g_s`` for coding. GDN is pointwise in space, so on large tensors it
    runs in place over strips of rows (same math; bounded temporaries): peak memory for a
    3840×2160 image stays well below what the plain forward pass needs."""
    for layer in layers:
        if isinstance(layer, GDN) and x.numel() > LEAN_GDN_ELEMENTS:
            c = x.shape[1]
            beta = layer.beta_reparam(layer.beta)
            gamma = layer.gamma_reparam(layer.gamma).reshape(c, c, 1, 1)
            rows = max(1, (1 << 22) // (c * x.shape[3]))
            for r in range(0, x.shape[2], rows):
                strip = x[:, :, r : r + rows]
                norm = torch.nn.functional.conv2d(strip * strip, gamma, beta)
                strip.mul_(torch.sqrt(norm) if layer.inverse else torch.rsqrt(norm))
        else:
            x = layer(x)
    return x


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


def _code_hyper(model: LeechCodecModel, z: torch.Tensor, enc: ans.SymbolEncoder) -> torch.Tensor:
    cdf, lengths, offsets, medians = _hyper_tables(model)
    zn = z[0].double().numpy()  # (C, h, w)
    z_hat = np.empty_like(zn)
    for c in range(zn.shape[0]):
        n_sym = int(lengths[c]) - 2
        sym = np.clip(np.round(zn[c] - medians[c]) - offsets[c], 0, n_sym - 1).astype(np.int64).ravel()
        pmf = _hyper_pmf(cdf[c], int(lengths[c]))
        enc.add(sym, np.broadcast_to(pmf, (sym.size, pmf.size)))
        z_hat[c] = (sym.reshape(zn.shape[1:]) + offsets[c]) + medians[c]
    return torch.from_numpy(z_hat)[None].float()


def _decode_hyper(model: LeechCodecModel, shape: tuple[int, int, int], dec: ans.SymbolDecoder) -> torch.Tensor:
    cdf, lengths, offsets, medians = _hyper_tables(model)
    c_n, h, w = shape
    z_hat = np.empty(shape, dtype=np.float64)
    for c in range(c_n):
        pmf = _hyper_pmf(cdf[c], int(lengths[c]))
        sym = dec.read(np.broadcast_to(pmf, (h * w, pmf.size)))
        z_hat[c] = (sym.reshape(h, w) + offsets[c]) + medians[c]
    return torch.from_numpy(z_hat)[None].float()


def _logit_tables(model: LeechCodecModel, z_hat: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Integer grid parameters ``(n_tokens, D)`` of A and B, in the quantizer's token order."""
    with torch.no_grad():
        a, b = model.prior_params(z_hat)
    ai = torch.round(model.tokens_of(a)[0].double() / PARAM_STEP).numpy().astype(np.int64)
    bi = torch.round(model.tokens_of(b)[0].double() / PARAM_STEP).numpy().astype(np.int64)
    return ai, bi


def _leech_f(ai: np.ndarray, bi: np.ndarray) -> np.ndarray:
    """f ``(n, 24, 9)`` float64 with f[n, i, v+4] = (A·v − B·v²)·PARAM_STEP, exact."""
    v = np.arange(-4, 5, dtype=np.int64)
    f = ai[:, :, None] * v - bi[:, :, None] * v * v
    return np.ascontiguousarray(f.astype(np.float64) * PARAM_STEP)


def _bsq_probs(ai: np.ndarray) -> np.ndarray:
    """``(n·L, 2)`` probabilities of bit 0 (v = +1) and bit 1 (v = −1); p(+1) = σ(2a)."""
    p_plus = 1.0 / (1.0 + np.exp(-2.0 * ai.astype(np.float64).ravel() * PARAM_STEP))
    return np.stack([p_plus, 1.0 - p_plus], axis=1)


def _rows(n: int):
    for start in range(0, n, _ROWS):
        yield slice(start, min(n, start + _ROWS))


def _code_leech(idx: np.ndarray, f: np.ndarray, enc: ans.SymbolEncoder) -> None:
    """Tokens in blocks of ``_ROWS``; per block: shapes, then majors and minors per shape."""
    for rows in _rows(len(idx)):
        t = leech_prior.coding_tables(f[rows], idx[rows])
        enc.add(t.shape, np.exp(t.shape_logp))
        for s in range(3):
            enc.add(t.major[t.positions[s]], t.major_probs[s])
        for s in range(3):
            enc.add(t.minor[t.positions[s]], t.minor_probs[s])


def _decode_leech(f: np.ndarray, dec: ans.SymbolDecoder) -> np.ndarray:
    out = np.empty(f.shape[0], dtype=np.int64)
    for rows in _rows(f.shape[0]):
        fb = f[rows]
        shape = dec.read(np.exp(leech_prior.shape_log_probs(fb)))
        major = np.zeros_like(shape)
        minor = np.zeros_like(shape)
        sel = [np.flatnonzero(shape == s) for s in range(3)]
        for s in range(3):
            major[sel[s]] = dec.read(leech_prior.major_probs(fb[sel[s]], s))
        for s in range(3):
            minor[sel[s]] = dec.read(leech_prior.minor_probs(fb[sel[s]], s, major[sel[s]]))
        out[rows] = leech.join_index(shape, major, minor)
    return out


def _bsq_bits(idx: np.ndarray, dim: int) -> np.ndarray:
    return ((idx[:, None] >> np.arange(dim, dtype=np.int64)) & 1).ravel()


@torch.no_grad()
def compress(model: LeechCodecModel, entry: ZooEntry, rgb: np.ndarray) -> EncodeResult:
    """Encode an ``(H, W, 3)`` uint8 image into .lq bytes."""
    t0 = time.perf_counter()
    h, w = rgb.shape[:2]
    x = pad_to_multiple(torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255, model.stride)
    ph, pw = x.shape[2:]
    y = _run_transform(model.g_a, x)
    del x
    indices = model.quantizer(y).indices  # (1, k, h', w')
    z = model.h_a(y)
    hyper = ans.SymbolEncoder()
    z_hat = _code_hyper(model, z, hyper)
    ai, bi = _logit_tables(model, z_hat)
    idx = indices[0].reshape(-1).numpy().astype(np.int64)
    tokens = ans.SymbolEncoder()
    if model.config.quantizer == "leech24":
        _code_leech(idx, _leech_f(ai, bi), tokens)
    else:
        bits = _bsq_bits(idx, model.config.bsq_dim)
        tokens.add(bits, _bsq_probs(ai))
    chunks = [hyper.finish(), tokens.finish()]
    header = container.LqHeader(
        model_key=entry.key, weights_sha256_prefix=container.weights_hash_prefix(entry.sha256), height=h, width=w,
        pad_bottom=ph - h, pad_right=pw - w, coder_profile=container.PROFILE_ANS32_P24,
    )
    data = container.pack(header, chunks)
    return EncodeResult(data, h, w, hyper.ideal_bits + tokens.ideal_bits, time.perf_counter() - t0)


@torch.no_grad()
def decompress(data: bytes) -> np.ndarray:
    """Decode .lq bytes to an ``(H, W, 3)`` uint8 image; the model comes from the file."""
    header, chunks = container.unpack(data)
    entry = entry_from_key(header.model_key)
    if container.weights_hash_prefix(entry.sha256) != header.weights_sha256_prefix:
        raise container.LqFormatError(
            f"file was written with other weights for {entry.key} (hash prefix "
            f"{header.weights_sha256_prefix.hex()}, installed {entry.sha256[:16]})")
    if header.coder_profile != container.PROFILE_ANS32_P24 or len(chunks) != 2:
        raise container.LqFormatError(f"unsupported coder profile {header.coder_profile} / {len(chunks)} chunks")
    _, model = load_model(entry.name, entry.quality)
    ph, pw = header.padded_height, header.padded_width
    if ph % model.stride or pw % model.stride or header.pad_top or header.pad_left:
        raise container.LqFormatError("inconsistent padding in header")
    hyper = ans.SymbolDecoder(chunks[0])
    z_hat = _decode_hyper(model, (model.config.hyper_channels, ph // 64, pw // 64), hyper)
    hyper.finish()
    ai, bi = _logit_tables(model, z_hat)
    k = model.config.tokens
    tokens = ans.SymbolDecoder(chunks[1])
    if model.config.quantizer == "leech24":
        idx = _decode_leech(_leech_f(ai, bi), tokens)
    else:
        dim = model.config.bsq_dim
        bits = tokens.read(_bsq_probs(ai)).reshape(-1, dim)
        idx = (bits << np.arange(dim, dtype=np.int64)).sum(1)
    tokens.finish()
    indices = torch.from_numpy(idx).reshape(1, k, ph // 16, pw // 16)
    x_hat = _run_transform(model.g_s, model.quantizer.dequantize(indices))
    img = (x_hat[0, :, : header.height, : header.width].clamp(0, 1) * 255).round().to(torch.uint8)
    return img.permute(1, 2, 0).numpy()


def encode_image(rgb: np.ndarray, model: str | None = None, quality: int | None = None) -> bytes:
    """Encode an ``(H, W, 3)`` uint8 array with a zoo model; returns the .lq bytes."""
    from leechcodec.zoo import DEFAULT_MODEL

    entry, net = load_model(model or DEFAULT_MODEL, quality)
    return compress(net, entry, rgb).data


def decode_image(data: bytes) -> np.ndarray:
    """Decode .lq bytes to an ``(H, W, 3)`` uint8 array."""
    return decompress(data)
