"""Distortion metrics on 8-bit RGB images.

Both metrics take the original and the decoded image as ``(H, W, 3) uint8`` arrays and
compare them on RGB with peak 255, the convention of CompressAI's published results:

- :func:`psnr_rgb`: PSNR of the mean squared error over all pixels and all three
  channels, ``10·log10(255² / MSE)``; ``inf`` for identical images.
- :func:`ms_ssim_rgb`: MS-SSIM (Wang, Simoncelli, Bovik 2003) from ``pytorch-msssim``:
  Gaussian window 11, σ = 1.5, 5 scales with the standard weights, computed per channel
  and averaged over R, G, B. It needs a smaller side of at least 161 pixels (four 2×
  downsamplings of an 11-tap window); smaller images get ``None``.

Dataset values are means of the per-image values (as CompressAI reports them).
Both are checked in ``tests/bench`` against independent implementations.
"""

from __future__ import annotations

import math

import numpy as np

MS_SSIM_MIN_SIDE = 161
"""Smallest image side for which MS-SSIM is defined with the standard settings."""


def _check_pair(original: np.ndarray, decoded: np.ndarray) -> None:
    if original.shape != decoded.shape:
        raise ValueError(f"shape mismatch: original {original.shape}, decoded {decoded.shape}")
    if original.ndim != 3 or original.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) RGB arrays, got {original.shape}")
    if original.dtype != np.uint8 or decoded.dtype != np.uint8:
        raise ValueError(f"expected uint8 arrays, got {original.dtype} and {decoded.dtype}")


def mse_rgb(original: np.ndarray, decoded: np.ndarray) -> float:
    """Mean squared error over all pixels and channels of two ``(H, W, 3) uint8`` images."""
    _check_pair(original, decoded)
    diff = original.astype(np.int32) - decoded.astype(np.int32)
    return float(np.mean(np.square(diff, dtype=np.int64), dtype=np.float64))


def psnr_rgb(original: np.ndarray, decoded: np.ndarray) -> float:
    """PSNR in dB on RGB with peak 255; ``inf`` when the images are identical."""
    mse = mse_rgb(original, decoded)
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)


def ms_ssim_rgb(original: np.ndarray, decoded: np.ndarray) -> float | None:
    """MS-SSIM on RGB (data range 255) via pytorch-msssim, float32.

    Returns ``None`` when the smaller image side is below :data:`MS_SSIM_MIN_SIDE`.
    """
    _check_pair(original, decoded)
    if min(original.shape[:2]) < MS_SSIM_MIN_SIDE:
        return None
    import torch
    from pytorch_msssim import ms_ssim

    x = torch.from_numpy(np.ascontiguousarray(original.transpose(2, 0, 1))).float()[None]
    y = torch.from_numpy(np.ascontiguousarray(decoded.transpose(2, 0, 1))).float()[None]
    with torch.no_grad():
        return float(ms_ssim(x, y, data_range=255.0, size_average=True))


def ms_ssim_db(value: float) -> float:
    """MS-SSIM expressed in dB, ``-10·log10(1 - value)`` (the usual RD-plot axis)."""
    if value >= 1.0:
        return math.inf
    return -10.0 * math.log10(1.0 - value)
