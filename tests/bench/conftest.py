"""Shared fixtures for the benchmark-harness tests: small generated images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def smooth_image(height: int, width: int, seed: int) -> np.ndarray:
    """A photo-like ``(H, W, 3) uint8`` image: smooth gradients, an edge and mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.empty((height, width, 3))
    for c in range(3):
        fx, fy, ph = rng.uniform(0.01, 0.08, 2).tolist() + [rng.uniform(0, 6.28)]
        img[..., c] = 128 + 70 * np.sin(fx * xx + ph) * np.cos(fy * yy)
    img[:, width // 2:, 1] += 40.0
    img += rng.normal(0, 6, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


@pytest.fixture
def small_rgb() -> np.ndarray:
    return smooth_image(48, 64, seed=1)


def write_png(path: Path, rgb: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(rgb).save(path)
    return path


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Two PNGs: a 64×48 one and a 176×168 one (large enough for MS-SSIM)."""
    folder = tmp_path / "images"
    folder.mkdir()
    write_png(folder / "a.png", smooth_image(48, 64, seed=2))
    write_png(folder / "b.png", smooth_image(168, 176, seed=3))
    return folder
