"""g_a and g_s for coding, over strips of rows so that memory is bounded by a strip.

Large images do not fit the plain forward pass: for 8192×8192 pixels, one 64-channel
activation of g_a or g_s at half resolution is 4.3 GB in float32. :func:`analyze` and
:func:`synthesize` run the transforms on horizontal strips of latent rows, each with
:data:`HALO` latent rows of context on both sides, and keep only the strip's own rows.
The halo covers the receptive field (g_a reaches about 30 pixels, g_s about 3 latent rows,
with four 5×5 layers at strides 2), so a strip computes the same function as the whole
image; only float rounding can differ (the convolution backend may sum in another order
for another tensor size): decoded pixels differ from an untiled decode by at most ±1, and
there is no seam (``bench/portability.py`` measures PSNR at strip borders against the
interior). Images of at most :data:`TILE_PIXELS` pixels run in one piece.

Strip heights come from :data:`STRIP_BYTES`, the size of the largest activation of a strip.
"""

from __future__ import annotations

import numpy as np
import torch
from compressai.layers import GDN

__all__ = ["TILE_PIXELS", "HALO", "STRIP_BYTES", "run_transform", "analyze", "synthesize"]

#: Images with more (padded) pixels than this are coded in strips.
TILE_PIXELS = 1 << 22
#: Latent rows of context above and below each strip.
HALO = 4
#: Bytes of a strip's largest activation (float32, the widest layer at half resolution).
STRIP_BYTES = 1 << 27
#: Above this many latent elements, GDN layers run in place over row strips.
LEAN_GDN_ELEMENTS = 1 << 26
_SCALE = 16  # pixels per latent row


def run_transform(layers: torch.nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Apply ``g_a`` or ``g_s`` in one piece. GDN is pointwise in space, so on large tensors
    it runs in place over strips of rows (same math, bounded temporaries)."""
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


def _strip_rows(model, latent_width: int) -> int:
    """Latent rows per strip: the widest activation (half resolution) within STRIP_BYTES."""
    per_row = 4 * model.config.channels * (_SCALE // 2) * latent_width * (_SCALE // 2)
    return max(1, STRIP_BYTES // per_row - 2 * HALO)


def _strips(n_rows: int, rows: int):
    for r0 in range(0, n_rows, rows):
        r1 = min(n_rows, r0 + rows)
        yield r0, r1, max(0, r0 - HALO), min(n_rows, r1 + HALO)


def _pixels(rgb: np.ndarray, rows: np.ndarray, pw: int) -> torch.Tensor:
    """Pixel rows ``rows`` of ``rgb`` replicate-padded to width ``pw`` (rows past the end
    repeat the last row): ``(1, 3, len(rows), pw)`` float32 in [0, 1]."""
    h, w = rgb.shape[:2]
    cols = np.minimum(np.arange(pw), w - 1)
    strip = rgb[np.minimum(rows, h - 1)][:, cols]
    return torch.from_numpy(np.ascontiguousarray(strip)).permute(2, 0, 1)[None].float() / 255


@torch.no_grad()
def analyze(model, rgb: np.ndarray, ph: int, pw: int) -> torch.Tensor:
    """``g_a`` of the ``(H, W, 3)`` uint8 image replicate-padded to ``(ph, pw)`` (multiples of
    16): ``(1, C, ph/16, pw/16)`` float32."""
    hy, wy = ph // _SCALE, pw // _SCALE
    if ph * pw <= TILE_PIXELS:
        return run_transform(model.g_a, _pixels(rgb, np.arange(ph), pw))
    y = torch.empty(1, model.config.latent_channels, hy, wy)
    for r0, r1, lo, hi in _strips(hy, _strip_rows(model, wy)):
        part = run_transform(model.g_a, _pixels(rgb, np.arange(lo * _SCALE, hi * _SCALE), pw))
        y[:, :, r0:r1] = part[:, :, r0 - lo : r1 - lo]
    return y


def _to_uint8(x_hat: torch.Tensor) -> np.ndarray:
    return (x_hat[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


@torch.no_grad()
def synthesize(model, y_hat: torch.Tensor, height: int, width: int) -> np.ndarray:
    """``g_s`` of ``(1, C, h, w)`` latents, cropped to ``height × width``: ``(H, W, 3)`` uint8."""
    hy, wy = y_hat.shape[2:]
    if hy * wy * _SCALE * _SCALE <= TILE_PIXELS:
        return _to_uint8(run_transform(model.g_s, y_hat)[:, :, :height, :width])
    out = np.empty((height, width, 3), dtype=np.uint8)
    for r0, r1, lo, hi in _strips(hy, _strip_rows(model, wy)):
        if r0 * _SCALE >= height:
            break
        part = run_transform(model.g_s, y_hat[:, :, lo:hi])
        rows = slice((r0 - lo) * _SCALE, min(r1 * _SCALE, height) - lo * _SCALE)
        out[r0 * _SCALE : min(r1 * _SCALE, height)] = _to_uint8(part[:, :, rows, :width])
    return out
