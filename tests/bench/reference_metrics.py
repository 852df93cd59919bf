"""Independent reference implementations used as test oracles for bench.metrics.

MS-SSIM after Wang, Simoncelli & Bovik (2003), written from the paper, not from
pytorch-msssim: a full 2-D 11×11 Gaussian window (σ = 1.5) applied as a 'valid'
correlation by summing shifted arrays, float64 throughout, K1 = 0.01, K2 = 0.03,
L = 255, five scales with weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 2×2 mean
downsampling between scales. Contrast-structure terms at scales 1–4 and the full SSIM at
scale 5, each per channel; the per-channel products are averaged over R, G, B. Only for
images whose sides stay even through the four downsamplings (multiples of 16).
"""

from __future__ import annotations

import numpy as np

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    xx, yy = np.meshgrid(ax, ax, indexing="ij")
    w = np.exp(-(xx**2 + yy**2) / (2.0 * sigma**2))
    return w / w.sum()


def filter_valid(img: np.ndarray, window: np.ndarray) -> np.ndarray:
    kh, kw = window.shape
    h, w = img.shape[0] - kh + 1, img.shape[1] - kw + 1
    out = np.zeros((h, w), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            out += window[i, j] * img[i:i + h, j:j + w]
    return out


def ssim_terms(x: np.ndarray, y: np.ndarray, data_range: float = 255.0) -> tuple[float, float]:
    """Mean SSIM and mean contrast-structure term of two 2-D float64 channels."""
    win = gaussian_window()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = filter_valid(x, win), filter_valid(y, win)
    vx = filter_valid(x * x, win) - mx * mx
    vy = filter_valid(y * y, win) - my * my
    cxy = filter_valid(x * y, win) - mx * my
    cs = (2.0 * cxy + c2) / (vx + vy + c2)
    lum = (2.0 * mx * my + c1) / (mx * mx + my * my + c1)
    return float(np.mean(lum * cs)), float(np.mean(cs))


def downsample(x: np.ndarray) -> np.ndarray:
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def ms_ssim_reference(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM of two ``(H, W, 3) uint8`` images, averaged over channels."""
    assert a.shape[0] % 16 == 0 and a.shape[1] % 16 == 0
    values = []
    for c in range(3):
        x, y = a[..., c].astype(np.float64), b[..., c].astype(np.float64)
        prod = 1.0
        for level, weight in enumerate(WEIGHTS):
            s, cs = ssim_terms(x, y)
            if level < len(WEIGHTS) - 1:
                prod *= max(cs, 0.0) ** weight
                x, y = downsample(x), downsample(y)
            else:
                prod *= max(s, 0.0) ** weight
        values.append(prod)
    return float(np.mean(values))


def psnr_reference(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR from the per-channel sums of squared errors (float64), peak 255."""
    sse = sum(float(np.sum((a[..., c].astype(np.float64) - b[..., c]) ** 2)) for c in range(3))
    mse = sse / a.size
    return 20.0 * np.log10(255.0) - 10.0 * np.log10(mse)
