"""g_a and g_s for coding, over tiles so that memory is bounded by a tile.

Large images do not fit the plain forward pass: for 8192×8192 pixels, one 64-channel
activation of g_a or g_s at half resolution is 4.3 GB in float32. :func:`analyze` and
:func:`synthesize` run the transforms on square tiles of the latent grid, each with
:data:`HALO` latent rows and columns of context on every side, and keep only the tile's
own part. The halo covers the receptive field (g_a reaches about 30 pixels, g_s about 2
latent rows, with four 5×5 layers at strides 2), so a tile computes the same function as
the whole image; only float rounding can differ (the convolution backend may sum in
another order for another tensor size), so decoded pixels differ from an untiled decode
by at most ±1 and there is no seam (``bench/micro/bench_codec.py --large`` measures PSNR next
to tile borders against the rest, and the difference from an untiled decode). Images of
at most :data:`TILE_PIXELS` pixels run in one piece.

Tile sides come from :data:`TILE_BYTES`, the size of the largest activation of a tile
with its halo.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from leechcodec.layers import GDN
from leechcodec.progress import track

__all__ = ["TILE_PIXELS", "HALO", "TILE_BYTES", "run_transform", "analyze", "synthesize", "tiles"]

#: Images with more (padded) pixels than this are coded in strips.
TILE_PIXELS = 1 << 22
#: Latent rows of context above and below each strip.
HALO = 4
#: Bytes of a tile's largest activation (float32, the widest layer at half resolution).
TILE_BYTES = 1 << 26
#: Above this many latent elements, GDN layers run in place over row strips.
LEAN_GDN_ELEMENTS = 1 << 26
_SCALE = 16  # pixels per latent row


def run_transform(layers: torch.nn.Sequential, x: torch.Tensor, stage: str | None = None) -> torch.Tensor:
    """Apply ``g_a`` or ``g_s`` in one piece. GDN is pointwise in space, so on large tensors
    it runs in place over strips of rows (same math, bounded temporaries). ``stage``: report
    the layers as the steps of that progress stage."""
    for layer in (layers if stage is None else track(layers, stage)):
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


def tiles(n_rows: int, n_cols: int, side: int, halo: int):
    """Cover an ``n_rows × n_cols`` grid with ``side × side`` tiles; yields
    ``(r0, r1, c0, c1, lo_r, hi_r, lo_c, hi_c)``: the tile, and the tile grown by ``halo``
    on every side (clipped to the grid) that is computed to produce it."""
    for r0 in range(0, n_rows, side):
        r1 = min(n_rows, r0 + side)
        for c0 in range(0, n_cols, side):
            c1 = min(n_cols, c0 + side)
            yield r0, r1, c0, c1, max(0, r0 - halo), min(n_rows, r1 + halo), max(0, c0 - halo), min(n_cols, c1 + halo)


def _tile_side(model) -> int:
    """Latent rows (and columns) per tile: the widest activation (half resolution, 8×8
    values per latent position) of a tile with its halo within TILE_BYTES."""
    per_latent = 4 * model.config.channels * (_SCALE // 2) ** 2
    return max(1, math.isqrt(TILE_BYTES // per_latent) - 2 * HALO)


def _pixels(rgb: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> torch.Tensor:
    """Pixels ``rows × cols`` of ``rgb``, replicate-padded (indices past the end repeat the
    last row or column): ``(1, 3, len(rows), len(cols))`` float32 in [0, 1]."""
    h, w = rgb.shape[:2]
    part = rgb[np.minimum(rows, h - 1)][:, np.minimum(cols, w - 1)]
    return torch.from_numpy(np.ascontiguousarray(part)).permute(2, 0, 1)[None].float() / 255


@torch.no_grad()
def analyze(model, rgb: np.ndarray, ph: int, pw: int) -> torch.Tensor:
    """``g_a`` of the ``(H, W, 3)`` uint8 image replicate-padded to ``(ph, pw)`` (multiples of
    16): ``(1, C, ph/16, pw/16)`` float32."""
    hy, wy = ph // _SCALE, pw // _SCALE
    if ph * pw <= TILE_PIXELS:
        return run_transform(model.g_a, _pixels(rgb, np.arange(ph), np.arange(pw)), "analysis")
    y = torch.empty(1, model.config.latent_channels, hy, wy)
    for r0, r1, c0, c1, lo_r, hi_r, lo_c, hi_c in track(list(tiles(hy, wy, _tile_side(model), HALO)), "analysis"):
        x = _pixels(rgb, np.arange(lo_r * _SCALE, hi_r * _SCALE), np.arange(lo_c * _SCALE, hi_c * _SCALE))
        y[:, :, r0:r1, c0:c1] = run_transform(model.g_a, x)[:, :, r0 - lo_r : r1 - lo_r, c0 - lo_c : c1 - lo_c]
    return y


def _to_uint8(x_hat: torch.Tensor) -> np.ndarray:
    return (x_hat[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


@torch.no_grad()
def synthesize(model, y_hat: torch.Tensor, height: int, width: int) -> np.ndarray:
    """``g_s`` of ``(1, C, h, w)`` latents, cropped to ``height × width``: ``(H, W, 3)`` uint8."""
    hy, wy = y_hat.shape[2:]
    if hy * wy * _SCALE * _SCALE <= TILE_PIXELS:
        return _to_uint8(run_transform(model.g_s, y_hat, "synthesis")[:, :, :height, :width])
    out = np.empty((height, width, 3), dtype=np.uint8)
    for r0, r1, c0, c1, lo_r, hi_r, lo_c, hi_c in track(list(tiles(hy, wy, _tile_side(model), HALO)), "synthesis"):
        top, bottom = r0 * _SCALE, min(r1 * _SCALE, height)
        left, right = c0 * _SCALE, min(c1 * _SCALE, width)
        if top >= bottom or left >= right:
            continue
        part = run_transform(model.g_s, y_hat[:, :, lo_r:hi_r, lo_c:hi_c])
        out[top:bottom, left:right] = _to_uint8(
            part[:, :, top - lo_r * _SCALE : bottom - lo_r * _SCALE, left - lo_c * _SCALE : right - lo_c * _SCALE])
    return out
